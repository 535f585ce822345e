/*
 * warc.c - WARC record framing, HTTP response parsing and document output.
 *
 * The reader keeps one buffer for header blocks (at most MAX_HEADER_BYTES
 * each) and one for the block of a record that becomes a document (at most
 * max_record_bytes). Blocks of skipped records and oversized documents are
 * discarded as they stream past, so memory stays bounded by those limits.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../core/util.h"
#include "decompress.h"
#include "html.h"
#include "warc.h"

#define MAX_HEADER_BYTES (1u << 20)
#define REJECT_PREFIX_BYTES 256

typedef enum { REC_OTHER = 0, REC_RESPONSE, REC_CONVERSION } record_kind;

struct dsp_warc_reader {
    dsp_store *store;
    char *key; /* key within the store, for reads */
    char *uri; /* store root + key, for messages and rejects */
    int64_t max_record;
    size_t read_size;
    dsp_reject_fn reject;
    void *reject_ctx;
    char *id_field;

    dsp_reader *src;
    dsp_dstream *stream;
    int stream_eof;

    char *buf;
    size_t cap, start, len;
    uint64_t buf_offset; /* decompressed offset of buf[0] */
    int done;

    /* Per-record fields, reused. */
    char type[32];
    char id[256];
    char date[64];
    dsp_buf url;
    dsp_buf block;
    dsp_buf payload; /* de-chunked HTTP body */
    dsp_buf text;
    dsp_buf line;
    dsp_html_converter *html;

    dsp_warc_stats stats;
};

dsp_status dsp_warc_open(const dsp_warc_opts *opts, dsp_warc_reader **out, dsp_err *err)
{
    dsp_warc_reader *r = dsp_xcalloc(1, sizeof *r);
    dsp_status st;
    r->store = opts->store;
    r->key = dsp_xstrdup(opts->key);
    r->uri = dsp_store_object_name(opts->store, opts->key);
    r->max_record = opts->max_record_bytes > 0 ? opts->max_record_bytes
                                               : DSP_DEFAULT_MAX_RECORD_BYTES;
    r->read_size = opts->read_size ? opts->read_size : (4u << 20);
    r->reject = opts->reject;
    r->reject_ctx = opts->reject_ctx;
    r->id_field = dsp_xstrdup(opts->id_field ? opts->id_field : "id");
    r->html = dsp_html_new();

    dsp_reader_opts ropts = {r->read_size, 0, opts->expect};
    st = dsp_store_reader_open(r->store, r->key, 0, -1, &ropts, &r->src, err);
    if (st != DSP_OK)
        goto fail;
    st = dsp_dstream_open(r->src, r->uri, 0, r->read_size, &r->stream, err);
    if (st != DSP_OK)
        goto fail;
    r->cap = r->read_size < 65536 ? 65536 : r->read_size;
    r->buf = dsp_xmalloc(r->cap);
    *out = r;
    return DSP_OK;

fail:
    dsp_warc_close(r);
    return st;
}

/* ---- buffered input ---- */

/* Make at least `want` unread bytes available in buf[start..len), growing
 * the buffer if needed. Fewer are available only at the end of input. */
static dsp_status ensure(dsp_warc_reader *r, size_t want, dsp_err *err)
{
    while (r->len - r->start < want && !r->stream_eof) {
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->len - r->start);
            r->buf_offset += r->start;
            r->len -= r->start;
            r->start = 0;
        }
        if (r->cap - r->len < r->read_size / 4 || r->cap < want) {
            size_t ncap = r->cap * 2 > want ? r->cap * 2 : want;
            r->buf = dsp_xrealloc(r->buf, ncap);
            r->cap = ncap;
        }
        size_t got = 0;
        dsp_status st = dsp_dstream_read(r->stream, r->buf + r->len, r->cap - r->len, &got, err);
        if (st != DSP_OK)
            return st;
        if (got == 0)
            r->stream_eof = 1;
        r->len += got;
    }
    return DSP_OK;
}

/* "WARC/1.0" or "WARC/1.1" and its line end. */
#define VERSION_LINE_BYTES 9

/* Whether the first n bytes of a record (n <= VERSION_LINE_BYTES) are a
 * supported version line or, when the input ends early, a prefix of one. */
static int version_line_possible(const char *p, size_t n)
{
    static const char *const versions[] = {"WARC/1.0", "WARC/1.1"};
    for (size_t v = 0; v < 2; v++) {
        size_t m = n < 8 ? n : 8;
        if (memcmp(p, versions[v], m) != 0)
            continue;
        if (n < VERSION_LINE_BYTES || p[8] == '\r' || p[8] == '\n')
            return 1;
    }
    return 0;
}

/* Move n bytes of block into out (when not NULL) or discard them. */
static dsp_status take_bytes(dsp_warc_reader *r, uint64_t n, dsp_buf *out, uint64_t rec_offset,
                             dsp_err *err)
{
    while (n > 0) {
        if (r->start == r->len) {
            r->buf_offset += r->len;
            r->start = r->len = 0;
            dsp_status st = ensure(r, 1, err);
            if (st != DSP_OK)
                return st;
            if (r->len == 0)
                return dsp_err_set(err, DSP_ECORRUPT,
                                   "truncated WARC record in %s at byte %llu: input ends %llu "
                                   "bytes before the end of its Content-Length",
                                   r->uri, (unsigned long long)rec_offset,
                                   (unsigned long long)n);
        }
        size_t chunk = r->len - r->start;
        if (chunk > n)
            chunk = (size_t)n;
        if (out)
            dsp_buf_append(out, r->buf + r->start, chunk);
        r->start += chunk;
        n -= chunk;
    }
    return DSP_OK;
}

/* ---- header parsing ---- */

static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int name_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* Parse "Name: value" lines of a header block [p, end). Calls field() for
 * each; lines without a colon are ignored. */
typedef void (*field_fn)(void *ctx, const char *name, size_t name_len, const char *value,
                         size_t value_len);

static void parse_fields(const char *p, const char *end, field_fn field, void *ctx)
{
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon && colon > p) {
            const char *v = colon + 1;
            const char *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            field(ctx, p, (size_t)(colon - p), v, (size_t)(ve - v));
        }
        p = eol ? eol + 1 : end;
    }
}

typedef struct {
    dsp_warc_reader *r;
    int64_t content_length; /* -1 when missing or invalid */
} warc_fields;

static void on_warc_field(void *ctx, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    warc_fields *f = ctx;
    dsp_warc_reader *r = f->r;
    if (name_is(name, name_len, "WARC-Type")) {
        copy_value(r->type, sizeof r->type, value, value_len);
    } else if (name_is(name, name_len, "WARC-Record-ID")) {
        copy_value(r->id, sizeof r->id, value, value_len);
    } else if (name_is(name, name_len, "WARC-Date")) {
        copy_value(r->date, sizeof r->date, value, value_len);
    } else if (name_is(name, name_len, "WARC-Target-URI")) {
        /* WARC 1.0 writers such as wget put the URI in angle brackets. */
        if (value_len >= 2 && value[0] == '<' && value[value_len - 1] == '>') {
            value++;
            value_len -= 2;
        }
        dsp_buf_reset(&r->url);
        dsp_buf_append(&r->url, value, value_len);
    } else if (name_is(name, name_len, "Content-Length")) {
        int64_t v = 0;
        size_t i = 0;
        for (; i < value_len && value[i] >= '0' && value[i] <= '9' && v < (INT64_MAX / 10 - 9);
             i++)
            v = v * 10 + (value[i] - '0');
        f->content_length = (i > 0 && i == value_len) ? v : -1;
    }
}

typedef struct {
    char content_type[128];
    char transfer_encoding[64];
    char content_encoding[64];
} http_fields;

static void on_http_field(void *ctx, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    http_fields *h = ctx;
    if (name_is(name, name_len, "Content-Type"))
        copy_value(h->content_type, sizeof h->content_type, value, value_len);
    else if (name_is(name, name_len, "Transfer-Encoding"))
        copy_value(h->transfer_encoding, sizeof h->transfer_encoding, value, value_len);
    else if (name_is(name, name_len, "Content-Encoding"))
        copy_value(h->content_encoding, sizeof h->content_encoding, value, value_len);
}

/* Find the blank line that ends a header block: returns the offset of the
 * first body byte, or 0 when there is none. Accepts CRLF and bare LF. */
static size_t header_end(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n')
            return i + 2;
        if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Charset parameter of a Content-Type value, lower-cased, or "". */
static void charset_param(const char *content_type, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = strcasestr(content_type, "charset=");
    if (!p)
        return;
    p += 8;
    if (*p == '"' || *p == '\'')
        p++;
    size_t k = 0;
    while (*p && *p != ';' && *p != '"' && *p != '\'' && *p != ' ' && k + 1 < size)
        out[k++] = (char)((*p >= 'A' && *p <= 'Z') ? *p++ + 32 : *p++);
    out[k] = '\0';
}

static int is_html_type(const char *content_type)
{
    size_t n = strcspn(content_type, ";");
    while (n > 0 && content_type[n - 1] == ' ')
        n--;
    return (n == 9 && strncasecmp(content_type, "text/html", 9) == 0) ||
           (n == 21 && strncasecmp(content_type, "application/xhtml+xml", 21) == 0);
}

/* Decode a chunked HTTP body into out. Returns 0, or -1 when malformed. */
static int dechunk(const char *p, size_t n, dsp_buf *out)
{
    const char *end = p + n;
    dsp_buf_reset(out);
    while (p < end) {
        char *after = NULL;
        unsigned long long size = strtoull(p, &after, 16);
        if (after == p)
            return -1;
        const char *eol = memchr(after, '\n', (size_t)(end - after));
        if (!eol)
            return -1;
        p = eol + 1;
        if (size == 0)
            return 0;
        if (size > (unsigned long long)(end - p))
            return -1;
        dsp_buf_append(out, p, (size_t)size);
        p += size;
        if (p < end && *p == '\r')
            p++;
        if (p < end && *p == '\n')
            p++;
    }
    return 0; /* a body cut before its last chunk keeps what arrived */
}

/* ---- documents ---- */

static dsp_status reject_record(dsp_warc_reader *r, const char *reason, uint64_t offset,
                                const char *data, size_t len, dsp_err *err)
{
    r->stats.records++;
    r->stats.rejected++;
    if (!r->reject)
        return DSP_OK;
    return r->reject(r->reject_ctx, reason, r->uri, offset, data,
                     len > REJECT_PREFIX_BYTES ? REJECT_PREFIX_BYTES : len, NULL, err);
}

static void push_document(dsp_warc_reader *r, dsp_batch *b, uint64_t offset)
{
    dsp_buf *line = &r->line;
    dsp_buf_reset(line);
    dsp_buf_append_char(line, '{');
    dsp_json_encode_string(line, r->id_field, strlen(r->id_field));
    dsp_buf_append_char(line, ':');
    dsp_json_encode_string(line, r->id, strlen(r->id));
    dsp_buf_append_str(line, ",\"url\":");
    dsp_json_encode_string(line, r->url.data ? r->url.data : "", r->url.len);
    dsp_buf_append_str(line, ",\"date\":");
    dsp_json_encode_string(line, r->date, strlen(r->date));
    dsp_buf_append_char(line, ',');
    dsp_json_encode_string(line, b->text_field, strlen(b->text_field));
    dsp_buf_append_char(line, ':');
    dsp_json_encode_string(line, r->text.data ? r->text.data : "", r->text.len);
    dsp_buf_append_char(line, '}');

    dsp_doc *d = dsp_batch_push(b, line->data, line->len, r->key, offset);
    d->text = dsp_arena_strndup(&b->arena, r->text.data ? r->text.data : "", r->text.len);
    d->text_len = r->text.len;
    r->stats.records++;
}

/* Turn the HTTP response in r->block into r->text. Returns 1 for a
 * document, 0 when the response is skipped. */
static int response_text(dsp_warc_reader *r, dsp_err *err, dsp_status *st)
{
    const char *p = r->block.data;
    size_t n = r->block.len;
    *st = DSP_OK;
    if (n < 12 || strncmp(p, "HTTP/", 5) != 0)
        return 0;
    const char *sp = memchr(p, ' ', n < 16 ? n : 16);
    if (!sp || atoi(sp + 1) != 200)
        return 0;
    size_t body = header_end(p, n);
    if (!body)
        return 0;
    http_fields h = {{0}, {0}, {0}};
    parse_fields(p, p + body, on_http_field, &h);
    if (!is_html_type(h.content_type))
        return 0;
    if (h.content_encoding[0] && strcasecmp(h.content_encoding, "identity") != 0) {
        /* NOTE: compressed bodies (Content-Encoding gzip, br, ...) are skipped.
         * Common Crawl stores them decoded and renames the header to
         * X-Crawler-Content-Encoding, which this check does not see. */
        DSP_DEBUG("warc_skip_encoded", "key=%s encoding=%s", r->uri, h.content_encoding);
        return 0;
    }
    const char *html = p + body;
    size_t html_len = n - body;
    if (strcasestr(h.transfer_encoding, "chunked")) {
        if (dechunk(html, html_len, &r->payload) != 0)
            return 0;
        html = r->payload.data ? r->payload.data : "";
        html_len = r->payload.len;
    }
    char charset[64];
    charset_param(h.content_type, charset, sizeof charset);
    *st = dsp_html_to_text(r->html, html, html_len, charset[0] ? charset : NULL, &r->text, err);
    if (*st != DSP_OK) {
        dsp_err_prefix(err, "converting the HTML of %s in %s", r->id, r->uri);
        return 0;
    }
    return 1;
}

/* Read one record; appends a document to b when it is one. Sets r->done at
 * the end of input. */
static dsp_status read_record(dsp_warc_reader *r, dsp_batch *b, dsp_err *err)
{
    dsp_status st = ensure(r, 1, err);
    if (st != DSP_OK)
        return st;
    if (r->start == r->len) {
        r->done = 1;
        return DSP_OK;
    }
    uint64_t rec_offset = r->buf_offset + r->start;

    /* Check the version line first, so that a file in another format is
     * reported as such instead of as a record without a header end. */
    st = ensure(r, VERSION_LINE_BYTES, err);
    if (st != DSP_OK)
        return st;
    size_t head_len = r->len - r->start;
    if (head_len > VERSION_LINE_BYTES)
        head_len = VERSION_LINE_BYTES;
    const char *head = r->buf + r->start;
    if (!version_line_possible(head, head_len)) {
        size_t shown = 0;
        while (shown < head_len && shown < 16 && head[shown] != '\r' && head[shown] != '\n')
            shown++;
        return dsp_err_set(err, DSP_ECORRUPT,
                           "not a WARC record: expected 'WARC/1.x' at byte %llu of %s, found "
                           "\"%.*s\"%s",
                           (unsigned long long)rec_offset, r->uri, (int)shown, head,
                           rec_offset == 0 ? "; for JSONL input, set \"format\" to \"jsonl\" "
                                             "or leave it unset"
                                           : "");
    }

    /* Header block: grow the window until it holds the blank line. */
    size_t hdr_len = 0;
    size_t want = 4096;
    for (;;) {
        st = ensure(r, want, err);
        if (st != DSP_OK)
            return st;
        size_t avail = r->len - r->start;
        hdr_len = header_end(r->buf + r->start, avail);
        if (hdr_len)
            break;
        if (avail < want)
            return dsp_err_set(err, DSP_ECORRUPT,
                               "truncated WARC record in %s at byte %llu: input ends inside "
                               "the header block",
                               r->uri, (unsigned long long)rec_offset);
        if (want >= MAX_HEADER_BYTES)
            return dsp_err_set(err, DSP_ECORRUPT,
                               "invalid WARC record in %s at byte %llu: no end of the header "
                               "block within %u bytes",
                               r->uri, (unsigned long long)rec_offset, MAX_HEADER_BYTES);
        want *= 4;
    }
    const char *hdr = r->buf + r->start;

    r->type[0] = r->id[0] = r->date[0] = '\0';
    dsp_buf_reset(&r->url);
    warc_fields f = {r, -1};
    parse_fields(hdr, hdr + hdr_len, on_warc_field, &f);
    r->start += hdr_len;
    if (f.content_length < 0)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "invalid WARC record in %s at byte %llu: missing or invalid "
                           "Content-Length",
                           r->uri, (unsigned long long)rec_offset);

    record_kind kind = REC_OTHER;
    if (!strcasecmp(r->type, "response"))
        kind = REC_RESPONSE;
    else if (!strcasecmp(r->type, "conversion"))
        kind = REC_CONVERSION;

    int keep = kind != REC_OTHER && f.content_length <= r->max_record;
    dsp_buf_reset(&r->block);
    st = take_bytes(r, (uint64_t)f.content_length, keep ? &r->block : NULL, rec_offset, err);
    if (st != DSP_OK)
        return st;

    /* The block is followed by exactly two CRLFs. */
    uint64_t trailer_offset = r->buf_offset + r->start;
    st = ensure(r, 4, err);
    if (st != DSP_OK)
        return st;
    if (r->len - r->start < 4 || memcmp(r->buf + r->start, "\r\n\r\n", 4) != 0)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "invalid WARC record in %s at byte %llu: expected CRLF CRLF at byte "
                           "%llu after a block of Content-Length %lld; the Content-Length is "
                           "wrong or the record is truncated",
                           r->uri, (unsigned long long)rec_offset,
                           (unsigned long long)trailer_offset, (long long)f.content_length);
    r->start += 4;

    if (kind == REC_OTHER) {
        r->stats.skipped++;
        return DSP_OK;
    }
    if (!keep) {
        DSP_WARN("record_too_large", "key=%s offset=%llu content_length=%lld "
                 "max_record_bytes=%lld", r->uri, (unsigned long long)rec_offset,
                 (long long)f.content_length, (long long)r->max_record);
        return reject_record(r, "record_too_large", rec_offset, r->id, strlen(r->id), err);
    }

    if (kind == REC_CONVERSION) {
        dsp_buf_reset(&r->text);
        if (dsp_utf8_repair(r->block.data ? r->block.data : "", r->block.len, &r->text) > 0)
            r->stats.utf8_repaired++;
    } else {
        int is_doc = response_text(r, err, &st);
        if (st != DSP_OK)
            return st;
        if (!is_doc) {
            r->stats.skipped++;
            return DSP_OK;
        }
    }
    push_document(r, b, rec_offset);
    return DSP_OK;
}

dsp_status dsp_warc_next(dsp_warc_reader *r, dsp_batch *b, size_t max_docs, size_t max_bytes,
                         int *eof, dsp_err *err)
{
    size_t taken = 0, bytes = 0;
    *eof = 0;
    while (!r->done && taken < max_docs && bytes < max_bytes) {
        size_t before = b->n;
        dsp_status st = read_record(r, b, err);
        if (st != DSP_OK)
            return st;
        if (b->n > before) {
            taken++;
            bytes += b->docs[b->n - 1].line_len;
        }
    }
    r->stats.bytes_in = dsp_dstream_bytes_in(r->stream);
    r->stats.bytes_in_raw = dsp_dstream_bytes_out(r->stream);
    if (r->done)
        *eof = 1;
    return DSP_OK;
}

const dsp_warc_stats *dsp_warc_get_stats(const dsp_warc_reader *r)
{
    return &r->stats;
}

void dsp_warc_close(dsp_warc_reader *r)
{
    if (!r)
        return;
    dsp_dstream_close(r->stream);
    if (r->src)
        dsp_reader_close(r->src);
    dsp_html_free(r->html);
    dsp_buf_free(&r->url);
    dsp_buf_free(&r->block);
    dsp_buf_free(&r->payload);
    dsp_buf_free(&r->text);
    dsp_buf_free(&r->line);
    free(r->buf);
    free(r->key);
    free(r->uri);
    free(r->id_field);
    free(r);
}
