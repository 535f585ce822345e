/*
 * decompress.c - gzip, zstd or plain bytes from a store reader.
 *
 * One input buffer of in_size bytes is reused for the life of the stream.
 * gzip goes through zlib inflate, reset at the end of each member so that
 * concatenated members (as written by pigz, bgzip or per-record WARC
 * compression) read as one stream. zstd goes through ZSTD_decompressStream,
 * which itself continues across concatenated and skippable frames. The end
 * of the source inside a member or frame is DSP_ECORRUPT, never a short read.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "../core/buf.h"
#include "../core/util.h"
#include "decompress.h"

struct dsp_dstream {
    dsp_reader *src;
    char *key;
    uint64_t base_offset;
    char *in;
    size_t in_cap, in_pos, in_len;
    int src_eof;
    dsp_compression comp;

    z_stream z;
    int z_ready;
    int gz_in_member;

    ZSTD_DStream *zd;
    size_t zstd_hint;      /* last ZSTD_decompressStream result: 0 at a frame end */
    size_t zstd_first_in;  /* input size ZSTD_initDStream recommends for a frame start */
    uint64_t frame_start;  /* object offset of the current zstd frame */

    uint64_t bytes_in, bytes_out;
};

dsp_compression dsp_compression_detect(const void *data, size_t n)
{
    const unsigned char *p = data;
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return DSP_COMP_GZIP;
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return DSP_COMP_ZSTD;
    /* Skippable frames have the magic 0x184D2A50..0x184D2A5F, little endian. */
    if (n >= 4 && (p[0] & 0xf0) == 0x50 && p[1] == 0x2a && p[2] == 0x4d && p[3] == 0x18)
        return DSP_COMP_ZSTD;
    return DSP_COMP_NONE;
}

const char *dsp_compression_name(dsp_compression c)
{
    switch (c) {
    case DSP_COMP_GZIP: return "gzip";
    case DSP_COMP_ZSTD: return "zstd";
    default: return "none";
    }
}

/* Object offset of the next unconsumed compressed byte. */
static uint64_t consumed_offset(const dsp_dstream *s)
{
    return s->base_offset + s->bytes_in - (s->in_len - s->in_pos);
}

/* Refill the input buffer when it is empty; sets src_eof at the end. */
static dsp_status fill(dsp_dstream *s, dsp_err *err)
{
    if (s->in_pos < s->in_len || s->src_eof)
        return DSP_OK;
    size_t got = 0;
    dsp_status st = dsp_reader_read(s->src, s->in, s->in_cap, &got, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "reading %s at byte %llu", s->key,
                       (unsigned long long)consumed_offset(s));
        return st;
    }
    s->in_pos = 0;
    s->in_len = got;
    s->bytes_in += got;
    if (got == 0)
        s->src_eof = 1;
    return DSP_OK;
}

/* Move unconsumed bytes to the front and read more after them until at
 * least `want` bytes are buffered or the source ends. */
static dsp_status fill_at_least(dsp_dstream *s, size_t want, dsp_err *err)
{
    while (s->in_len - s->in_pos < want && !s->src_eof) {
        size_t have = s->in_len - s->in_pos;
        memmove(s->in, s->in + s->in_pos, have);
        s->in_pos = 0;
        s->in_len = have;
        size_t got = 0;
        dsp_status st = dsp_reader_read(s->src, s->in + have, s->in_cap - have, &got, err);
        if (st != DSP_OK) {
            dsp_err_prefix(err, "reading %s at byte %llu", s->key,
                           (unsigned long long)consumed_offset(s));
            return st;
        }
        s->in_len += got;
        s->bytes_in += got;
        if (got == 0)
            s->src_eof = 1;
    }
    return DSP_OK;
}

dsp_status dsp_dstream_open(dsp_reader *src, const char *key, uint64_t base_offset,
                            size_t in_size, dsp_dstream **out, dsp_err *err)
{
    dsp_dstream *s = dsp_xcalloc(1, sizeof *s);
    s->src = src;
    s->key = dsp_xstrdup(key ? key : "(unnamed)");
    s->base_offset = base_offset;
    s->in_cap = in_size ? in_size : (1u << 20);
    s->in = dsp_xmalloc(s->in_cap);

    dsp_status st = fill_at_least(s, 4, err);
    if (st != DSP_OK)
        goto fail;
    s->comp = dsp_compression_detect(s->in + s->in_pos, s->in_len - s->in_pos);
    if (s->comp == DSP_COMP_GZIP) {
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) {
            st = dsp_err_set(err, DSP_ENOMEM, "inflateInit2 failed for %s", s->key);
            goto fail;
        }
        s->z_ready = 1;
    } else if (s->comp == DSP_COMP_ZSTD) {
        s->zd = ZSTD_createDStream();
        if (!s->zd) {
            st = dsp_err_set(err, DSP_ENOMEM, "ZSTD_createDStream failed for %s", s->key);
            goto fail;
        }
        s->zstd_first_in = ZSTD_initDStream(s->zd);
        if (ZSTD_isError(s->zstd_first_in) || s->zstd_first_in == 0)
            s->zstd_first_in = ZSTD_DStreamInSize();
        s->zstd_hint = 0;
    }
    *out = s;
    return DSP_OK;

fail:
    dsp_dstream_close(s);
    return st;
}

static dsp_status read_plain(dsp_dstream *s, char *buf, size_t cap, size_t *got, dsp_err *err)
{
    *got = 0;
    if (s->in_pos == s->in_len && !s->src_eof && cap >= s->in_cap) {
        /* Large reads go straight into the caller's buffer. */
        size_t n = 0;
        dsp_status st = dsp_reader_read(s->src, buf, cap, &n, err);
        if (st != DSP_OK) {
            dsp_err_prefix(err, "reading %s at byte %llu", s->key,
                           (unsigned long long)consumed_offset(s));
            return st;
        }
        s->bytes_in += n;
        if (n == 0)
            s->src_eof = 1;
        *got = n;
        return DSP_OK;
    }
    dsp_status st = fill(s, err);
    if (st != DSP_OK)
        return st;
    size_t n = s->in_len - s->in_pos;
    if (n > cap)
        n = cap;
    memcpy(buf, s->in + s->in_pos, n);
    s->in_pos += n;
    *got = n;
    return DSP_OK;
}

static dsp_status read_gzip(dsp_dstream *s, char *buf, size_t cap, size_t *got, dsp_err *err)
{
    size_t produced = 0;
    while (produced == 0) {
        dsp_status st;
        if (!s->gz_in_member) {
            /* Between members: the end of the source, or another gzip header. */
            st = fill_at_least(s, 2, err);
            if (st != DSP_OK)
                return st;
            size_t avail = s->in_len - s->in_pos;
            if (avail == 0)
                break;
            const unsigned char *p = (const unsigned char *)s->in + s->in_pos;
            if (avail < 2 || p[0] != 0x1f || p[1] != 0x8b)
                return dsp_err_set(err, DSP_ECORRUPT,
                                   "corrupt gzip stream in %s: unexpected bytes after a member "
                                   "at byte %llu",
                                   s->key, (unsigned long long)consumed_offset(s));
            inflateReset(&s->z);
            s->gz_in_member = 1;
        }
        st = fill(s, err);
        if (st != DSP_OK)
            return st;
        if (s->in_pos == s->in_len)
            return dsp_err_set(err, DSP_ECORRUPT,
                               "truncated gzip stream in %s: input ends inside a member at "
                               "byte %llu",
                               s->key, (unsigned long long)consumed_offset(s));
        s->z.next_in = (Bytef *)(s->in + s->in_pos);
        s->z.avail_in = (uInt)(s->in_len - s->in_pos);
        s->z.next_out = (Bytef *)(buf + produced);
        s->z.avail_out = (uInt)(cap - produced);
        int ret = inflate(&s->z, Z_NO_FLUSH);
        s->in_pos = s->in_len - s->z.avail_in;
        produced = cap - s->z.avail_out;
        if (ret == Z_STREAM_END) {
            s->gz_in_member = 0;
            continue;
        }
        if (ret != Z_OK && ret != Z_BUF_ERROR)
            return dsp_err_set(err, DSP_ECORRUPT, "corrupt gzip stream in %s at byte %llu: %s",
                               s->key, (unsigned long long)consumed_offset(s),
                               s->z.msg ? s->z.msg : "inflate failed");
    }
    *got = produced;
    return DSP_OK;
}

/* Name the compressed bytes the failing call was given, in which zstd
 * detected the error. A checksum mismatch names the whole frame instead. */
static dsp_status zstd_error(const dsp_dstream *s, size_t ret, size_t fed, dsp_err *err)
{
    uint64_t from = consumed_offset(s);
    if (ZSTD_getErrorCode(ret) == ZSTD_error_checksum_wrong)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "corrupt zstd stream in %s: the frame at bytes %llu-%llu does not "
                           "match its checksum",
                           s->key, (unsigned long long)s->frame_start,
                           (unsigned long long)(from + fed - 1));
    return dsp_err_set(err, DSP_ECORRUPT,
                       "corrupt zstd stream in %s at byte %llu: decoding compressed bytes "
                       "%llu-%llu failed (frame starts at byte %llu): %s",
                       s->key, (unsigned long long)from, (unsigned long long)from,
                       (unsigned long long)(from + fed - 1), (unsigned long long)s->frame_start,
                       ZSTD_getErrorName(ret));
}

static dsp_status read_zstd(dsp_dstream *s, char *buf, size_t cap, size_t *got, dsp_err *err)
{
    size_t produced = 0;
    while (produced == 0) {
        dsp_status st = fill(s, err);
        if (st != DSP_OK)
            return st;
        if (s->in_pos == s->in_len) {
            if (s->zstd_hint != 0)
                return dsp_err_set(err, DSP_ECORRUPT,
                                   "truncated zstd stream in %s: input ends inside a frame at "
                                   "byte %llu",
                                   s->key, (unsigned long long)consumed_offset(s));
            break;
        }
        if (s->zstd_hint == 0)
            s->frame_start = consumed_offset(s);
        /* Give each call only the input size zstd returned as its hint
         * (about one block), so that a failing call pins the error to that
         * block's bytes. zstd reports no position on error, and input->pos
         * stays where the failing call started. */
        size_t want = s->zstd_hint ? s->zstd_hint : s->zstd_first_in;
        size_t in_end = s->in_len - s->in_pos > want ? s->in_pos + want : s->in_len;
        ZSTD_inBuffer in = {s->in, in_end, s->in_pos};
        ZSTD_outBuffer out = {buf, cap, 0};
        size_t ret = ZSTD_decompressStream(s->zd, &out, &in);
        if (ZSTD_isError(ret))
            return zstd_error(s, ret, in_end - s->in_pos, err);
        s->in_pos = in.pos;
        s->zstd_hint = ret;
        produced = out.pos;
    }
    *got = produced;
    return DSP_OK;
}

dsp_status dsp_dstream_read(dsp_dstream *s, void *buf, size_t cap, size_t *got, dsp_err *err)
{
    *got = 0;
    if (cap == 0)
        return DSP_OK;
    if (cap > (1u << 30))
        cap = 1u << 30; /* zlib counts in uInt */
    dsp_status st;
    switch (s->comp) {
    case DSP_COMP_GZIP: st = read_gzip(s, buf, cap, got, err); break;
    case DSP_COMP_ZSTD: st = read_zstd(s, buf, cap, got, err); break;
    default: st = read_plain(s, buf, cap, got, err); break;
    }
    s->bytes_out += *got;
    return st;
}

dsp_status dsp_dstream_continue(dsp_dstream *s, dsp_reader *src, dsp_err *err)
{
    if (s->comp != DSP_COMP_NONE)
        return dsp_err_set(err, DSP_EINVAL, "cannot continue a %s stream of %s past its range",
                           dsp_compression_name(s->comp), s->key);
    s->src = src;
    s->src_eof = 0;
    return DSP_OK;
}

dsp_compression dsp_dstream_compression(const dsp_dstream *s)
{
    return s->comp;
}

uint64_t dsp_dstream_bytes_in(const dsp_dstream *s)
{
    return s->bytes_in;
}

uint64_t dsp_dstream_bytes_out(const dsp_dstream *s)
{
    return s->bytes_out;
}

void dsp_dstream_close(dsp_dstream *s)
{
    if (!s)
        return;
    if (s->z_ready)
        inflateEnd(&s->z);
    if (s->zd)
        ZSTD_freeDStream(s->zd);
    free(s->in);
    free(s->key);
    free(s);
}

dsp_status dsp_object_lines(dsp_store *s, const char *key, dsp_line_fn fn, void *ctx,
                            dsp_err *err)
{
    dsp_reader *reader = NULL;
    dsp_dstream *stream = NULL;
    dsp_buf line = DSP_BUF_INIT;
    char *chunk = dsp_xmalloc(65536);
    uint64_t lineno = 0;
    size_t got;
    dsp_status st = dsp_store_reader_open(s, key, 0, -1, NULL, &reader, err);

    if (st == DSP_OK)
        st = dsp_dstream_open(reader, key, 0, 0, &stream, err);
    while (st == DSP_OK) {
        st = dsp_dstream_read(stream, chunk, 65536, &got, err);
        if (st != DSP_OK || got == 0)
            break;
        const char *p = chunk, *end = chunk + got;
        while (p < end && st == DSP_OK) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            dsp_buf_append(&line, p, (size_t)((nl ? nl : end) - p));
            if (!nl)
                break;
            lineno++;
            if (line.len > 0)
                st = fn(ctx, line.data, line.len, lineno, err);
            dsp_buf_reset(&line);
            p = nl + 1;
        }
    }
    if (st == DSP_OK && line.len > 0)
        st = fn(ctx, line.data, line.len, lineno + 1, err);
    if (st == DSP_ECANCELLED)
        st = DSP_OK;
    if (stream)
        dsp_dstream_close(stream);
    if (reader)
        dsp_reader_close(reader);
    dsp_buf_free(&line);
    free(chunk);
    return st;
}
