/*
 * writer.c - sharded, compressed JSONL output through dsp_writer.
 *
 * One compressor context and one output buffer serve every shard: zstd is
 * reset per shard with ZSTD_CCtx_reset, gzip with deflateReset, so a shard
 * is one complete zstd frame or gzip member. The shard size is measured in
 * compressed bytes handed to the store. The compressor holds back up to one
 * block of input (128 KiB for zstd), so a shard ends at most that much
 * after crossing the target.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "../core/util.h"
#include "writer.h"

#define OUT_BUF_BYTES (1u << 20)

struct dsp_shard_writer {
    dsp_store *store;
    char *prefix;
    char *single_key;
    dsp_codec codec;
    int level;
    int64_t target;

    ZSTD_CCtx *zc;
    z_stream z;
    int z_ready;
    char *out;

    dsp_writer *cur;      /* open shard, NULL between shards */
    char *cur_key;
    uint64_t cur_size, cur_records;
    dsp_sha256 *cur_sha;

    size_t next_index;
    dsp_output_file *files;
    size_t nfiles, files_cap;
    uint64_t total_bytes;
};

dsp_status dsp_codec_parse(const char *out_format, dsp_codec *codec, dsp_err *err)
{
    if (!out_format || !strcmp(out_format, "jsonl.zst")) {
        *codec = DSP_CODEC_ZSTD;
        return DSP_OK;
    }
    if (!strcmp(out_format, "jsonl.gz")) {
        *codec = DSP_CODEC_GZIP;
        return DSP_OK;
    }
    return dsp_err_set(err, DSP_EINVAL,
                       "invalid output format \"%s\": expected \"jsonl.zst\" or \"jsonl.gz\"",
                       out_format);
}

dsp_status dsp_shard_writer_open(const dsp_shard_writer_opts *opts, dsp_shard_writer **out,
                                 dsp_err *err)
{
    dsp_shard_writer *w = dsp_xcalloc(1, sizeof *w);
    w->store = opts->store;
    w->codec = opts->codec;
    w->target = opts->target_shard_bytes > 0 ? opts->target_shard_bytes : DSP_DEFAULT_SHARD_BYTES;
    if (opts->single_key) {
        w->single_key = dsp_xstrdup(opts->single_key);
    } else {
        const char *prefix = opts->prefix ? opts->prefix : "";
        size_t n = strlen(prefix);
        while (n > 0 && prefix[n - 1] == '/')
            n--;
        w->prefix = dsp_xstrndup(prefix, n);
    }
    w->out = dsp_xmalloc(OUT_BUF_BYTES);

    dsp_status st = DSP_OK;
    if (w->codec == DSP_CODEC_ZSTD) {
        w->level = opts->level ? opts->level : 3;
        if (w->level < ZSTD_minCLevel() || w->level > ZSTD_maxCLevel()) {
            st = dsp_err_set(err, DSP_EINVAL, "invalid zstd level %d: expected %d to %d",
                             opts->level, ZSTD_minCLevel(), ZSTD_maxCLevel());
            goto fail;
        }
        w->zc = ZSTD_createCCtx();
        if (!w->zc) {
            st = dsp_err_set(err, DSP_ENOMEM, "ZSTD_createCCtx failed");
            goto fail;
        }
        ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, w->level);
        ZSTD_CCtx_setParameter(w->zc, ZSTD_c_checksumFlag, 1);
    } else {
        w->level = opts->level ? opts->level : 6;
        if (w->level < 1 || w->level > 9) {
            st = dsp_err_set(err, DSP_EINVAL, "invalid gzip level %d: expected 1 to 9",
                             opts->level);
            goto fail;
        }
        if (deflateInit2(&w->z, w->level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            st = dsp_err_set(err, DSP_ENOMEM, "deflateInit2 failed");
            goto fail;
        }
        w->z_ready = 1;
    }
    *out = w;
    return DSP_OK;

fail:
    dsp_shard_writer_abort(w, NULL, NULL);
    return st;
}

/* Hand compressed bytes to the open shard. */
static dsp_status emit(dsp_shard_writer *w, size_t n, dsp_err *err)
{
    if (n == 0)
        return DSP_OK;
    dsp_status st = dsp_writer_write(w->cur, w->out, n, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "writing %s", w->cur_key);
        return st;
    }
    dsp_sha256_update(w->cur_sha, w->out, n);
    w->cur_size += n;
    w->total_bytes += n;
    return DSP_OK;
}

/* Compress data into the open shard; `end` finishes the frame or member. */
static dsp_status compress_into_shard(dsp_shard_writer *w, const char *data, size_t len,
                                      int end, dsp_err *err)
{
    dsp_status st;
    if (w->codec == DSP_CODEC_ZSTD) {
        ZSTD_inBuffer in = {data, len, 0};
        ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
        for (;;) {
            ZSTD_outBuffer o = {w->out, OUT_BUF_BYTES, 0};
            size_t remaining = ZSTD_compressStream2(w->zc, &o, &in, mode);
            if (ZSTD_isError(remaining))
                return dsp_err_set(err, DSP_EIO, "zstd compression of %s failed: %s",
                                   w->cur_key, ZSTD_getErrorName(remaining));
            st = emit(w, o.pos, err);
            if (st != DSP_OK)
                return st;
            if (end ? remaining == 0 : in.pos == in.size)
                return DSP_OK;
        }
    }
    w->z.next_in = (Bytef *)data;
    w->z.avail_in = (uInt)len;
    for (;;) {
        w->z.next_out = (Bytef *)w->out;
        w->z.avail_out = OUT_BUF_BYTES;
        int ret = deflate(&w->z, end ? Z_FINISH : Z_NO_FLUSH);
        if (ret == Z_STREAM_ERROR)
            return dsp_err_set(err, DSP_EIO, "gzip compression of %s failed", w->cur_key);
        st = emit(w, OUT_BUF_BYTES - w->z.avail_out, err);
        if (st != DSP_OK)
            return st;
        if (end ? ret == Z_STREAM_END : (w->z.avail_in == 0 && w->z.avail_out != 0))
            return DSP_OK;
    }
}

static dsp_status start_shard(dsp_shard_writer *w, dsp_err *err)
{
    if (w->single_key) {
        w->cur_key = dsp_xstrdup(w->single_key);
    } else {
        const char *ext = w->codec == DSP_CODEC_ZSTD ? "jsonl.zst" : "jsonl.gz";
        w->cur_key = w->prefix[0] ? dsp_xasprintf("%s/part-%05zu.%s", w->prefix, w->next_index,
                                                  ext)
                                  : dsp_xasprintf("part-%05zu.%s", w->next_index, ext);
    }
    w->next_index++;
    dsp_writer_opts wopts = {0, 0, w->codec == DSP_CODEC_ZSTD ? "application/zstd"
                                                             : "application/gzip"};
    dsp_status st = dsp_store_writer_open(w->store, w->cur_key, &wopts, &w->cur, err);
    if (st != DSP_OK) {
        free(w->cur_key);
        w->cur_key = NULL;
        w->cur = NULL;
        return st;
    }
    w->cur_sha = dsp_sha256_new();
    w->cur_size = w->cur_records = 0;
    if (w->codec == DSP_CODEC_ZSTD)
        ZSTD_CCtx_reset(w->zc, ZSTD_reset_session_only);
    else
        deflateReset(&w->z);
    return DSP_OK;
}

/* Free the key and hash of the open shard after its writer is gone. */
static void release_shard(dsp_shard_writer *w)
{
    if (w->cur_sha) {
        char unused[65];
        dsp_sha256_final_hex(w->cur_sha, unused); /* also frees the hash */
    }
    free(w->cur_key);
    w->cur = NULL;
    w->cur_key = NULL;
    w->cur_sha = NULL;
}

/* Drop the open shard: abort its store writer so nothing becomes visible. */
static void discard_shard(dsp_shard_writer *w)
{
    if (!w->cur)
        return;
    dsp_writer_abort(w->cur);
    release_shard(w);
}

static dsp_status finish_shard(dsp_shard_writer *w, dsp_err *err)
{
    dsp_status st = compress_into_shard(w, NULL, 0, 1, err);
    if (st != DSP_OK) {
        discard_shard(w);
        return st;
    }
    /* dsp_writer_close frees the writer whatever the result. */
    st = dsp_writer_close(w->cur, NULL, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "closing %s", w->cur_key);
        release_shard(w);
        return st;
    }
    if (w->nfiles == w->files_cap) {
        w->files_cap = w->files_cap ? w->files_cap * 2 : 8;
        w->files = dsp_xrealloc(w->files, w->files_cap * sizeof *w->files);
    }
    dsp_output_file *f = &w->files[w->nfiles++];
    f->key = w->cur_key;
    f->size = w->cur_size;
    f->records = w->cur_records;
    dsp_sha256_final_hex(w->cur_sha, f->sha256);
    w->cur = NULL;
    w->cur_key = NULL;
    w->cur_sha = NULL;
    return DSP_OK;
}

dsp_status dsp_shard_writer_write(dsp_shard_writer *w, const char *line, size_t len,
                                  dsp_err *err)
{
    dsp_status st;
    if (!w->cur) {
        st = start_shard(w, err);
        if (st != DSP_OK)
            return st;
    }
    st = compress_into_shard(w, line, len, 0, err);
    if (st == DSP_OK)
        st = compress_into_shard(w, "\n", 1, 0, err);
    if (st != DSP_OK)
        return st;
    w->cur_records++;
    if (!w->single_key && w->cur_size >= (uint64_t)w->target)
        return finish_shard(w, err);
    return DSP_OK;
}

uint64_t dsp_shard_writer_bytes(const dsp_shard_writer *w)
{
    return w->total_bytes;
}

static void free_writer(dsp_shard_writer *w)
{
    if (w->zc)
        ZSTD_freeCCtx(w->zc);
    if (w->z_ready)
        deflateEnd(&w->z);
    free(w->out);
    free(w->prefix);
    free(w->single_key);
    free(w);
}

static void hand_over_files(dsp_shard_writer *w, dsp_output_file **files, size_t *nfiles)
{
    if (files) {
        *files = w->files;
        *nfiles = w->nfiles;
        return;
    }
    for (size_t i = 0; i < w->nfiles; i++)
        free(w->files[i].key);
    free(w->files);
}

dsp_status dsp_shard_writer_close(dsp_shard_writer *w, dsp_output_file **files, size_t *nfiles,
                                  dsp_err *err)
{
    dsp_status st = DSP_OK;
    if (w->cur)
        st = finish_shard(w, err);
    hand_over_files(w, files, nfiles);
    free_writer(w);
    return st;
}

void dsp_shard_writer_abort(dsp_shard_writer *w, dsp_output_file **files, size_t *nfiles)
{
    if (!w)
        return;
    discard_shard(w);
    hand_over_files(w, files, nfiles);
    free_writer(w);
}
