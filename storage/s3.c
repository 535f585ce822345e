/*
 * s3.c - the S3 backend: opening a store on s3://bucket[/prefix] and the
 * whole-object operations (GET, HEAD, PUT, conditional PUT, CopyObject,
 * DeleteObjects, ListObjectsV2).
 *
 * Guarantees on top of s3_http.c's classification and retries:
 *   - a conditional PUT can end with an unknown outcome: a 5xx, a reset or
 *     a timeout after the request went out, or Ceph RGW 16's 500 for a
 *     conditional PUT that lost a race. The backend then reads the key back
 *     and compares its x-amz-meta-dsp-write-id with the random id this call
 *     sent;
 *   - If-Match carries the ETag unquoted because RGW 16 compares it with
 *     the unquoted value;
 *   - a range past the end of an object returns 0 bytes, not an error;
 *   - keys are percent-encoded once in the path, '/' kept, so any key a
 *     listing returns can be read back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "../core/log.h"
#include "../core/util.h"
#include "s3_impl.h"
#include "s3_sigv4.h"

#define S3_LIST_MAX 1000

/* ---- GET / HEAD ---- */

static void s3_fill_info(const dsp_s3_req *r, uint64_t size, dsp_obj_info *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof *info);
    info->size = size;
    snprintf(info->etag, sizeof info->etag, "%s", r->etag);
    info->mtime_ms = r->mtime_ms;
}

static dsp_status s3_head_full(dsp_s3_store *s, const char *full, _Atomic uint64_t *counter,
                               dsp_obj_info *info, dsp_err *err)
{
    dsp_s3_req r;
    dsp_s3_req_init(&r, "head", DSP_FOP_HEAD, counter, "HEAD", full);
    dsp_status st = dsp_s3_req_run(s, &r, err);
    if (st == DSP_OK)
        s3_fill_info(&r, r.content_length > 0 ? (uint64_t)r.content_length : 0, info);
    dsp_s3_req_free(&r);
    return st;
}

static dsp_status s3_head(dsp_store *store, const char *key, dsp_obj_info *info, dsp_err *err)
{
    dsp_s3_store *s = (dsp_s3_store *)store;
    char *full = dsp_s3_full_key(s, key);
    dsp_status st = s3_head_full(s, full, NULL, info, err);
    free(full);
    return st;
}

static dsp_status s3_get(dsp_store *store, const char *key, uint64_t offset, int64_t length,
                         dsp_buf *out, dsp_obj_info *info, dsp_err *err)
{
    dsp_s3_store *s = (dsp_s3_store *)store;
    char *full = dsp_s3_full_key(s, key);
    char range[64];
    dsp_s3_req r;
    dsp_status st;

    dsp_buf_reset(out);
    if (length == 0) {
        /* Nothing to read, but a missing key must still fail. */
        st = s3_head_full(s, full, &s->base.stats.head, info, err);
        free(full);
        return st;
    }

    dsp_s3_req_init(&r, "get", DSP_FOP_GET, NULL, "GET", full);
    r.sink = out;
    if (offset > 0 || length > 0) {
        if (length > 0)
            snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)offset,
                     (unsigned long long)(offset + (uint64_t)length - 1));
        else
            snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)offset);
        dsp_s3_req_header(&r, "range", range);
    }
    st = dsp_s3_req_run(s, &r, err);

    if (st == DSP_EPERM && r.status == 416) {
        /* The range starts at or past the end (this includes every range of
         * a 0-byte object): that reads as 0 bytes. */
        out->len = 0;
        dsp_err_clear(err);
        st = DSP_OK;
        if (info) {
            st = s3_head_full(s, full, &s->base.stats.head, info, err);
        }
    } else if (st == DSP_OK) {
        uint64_t size = r.range_total >= 0 ? (uint64_t)r.range_total : (uint64_t)out->len;
        if (r.status == 200 && r.content_length >= 0)
            size = (uint64_t)r.content_length;
        s3_fill_info(&r, size, info);
    }
    dsp_s3_req_free(&r);
    free(full);
    return st;
}

/* ---- PUT ---- */

/*
 * Read the key back after a conditional PUT whose outcome is unknown.
 * Returns DSP_OK when the stored object carries this attempt's write id
 * (so this writer won), DSP_EPRECOND or DSP_ENOTFOUND when the stored state
 * proves the condition failed, and DSP_ETRANSIENT to try again. The write id
 * is a random x-amz-meta header sent with every conditional PUT, because
 * two writers may send identical bodies and then their ETags match too.
 */
static dsp_status s3_cput_decide(dsp_s3_store *s, const char *full, const dsp_put_opts *opts,
                                 const char *write_id, const char *md5, dsp_obj_info *seen,
                                 dsp_err *err)
{
    dsp_s3_req r;
    char t[1200];
    dsp_s3_target(s, full, t, sizeof t);

    dsp_s3_req_init(&r, "head", DSP_FOP_HEAD, &s->base.stats.head, "HEAD", full);
    dsp_status st = dsp_s3_req_run(s, &r, err);
    memset(seen, 0, sizeof *seen);
    snprintf(seen->etag, sizeof seen->etag, "%s", r.etag);
    int ours = st == DSP_OK && (r.write_id[0] ? strcmp(r.write_id, write_id) == 0
                                              : strcasecmp(r.etag, md5) == 0);
    dsp_s3_req_free(&r);

    if (ours) {
        DSP_INFO("s3_cput_settled", "key=%s outcome=won", full);
        return DSP_OK;
    }
    if (st == DSP_OK && opts->cond == DSP_PUT_IF_ABSENT)
        return dsp_err_set(err, DSP_EPRECOND, "put %s: the key already exists with ETag %s "
                           "(create-only put lost)", t, seen->etag);
    if (st == DSP_OK && opts->cond == DSP_PUT_IF_MATCH && strcmp(seen->etag, opts->if_match) != 0)
        return dsp_err_set(err, DSP_EPRECOND, "put %s: ETag is %s, expected %s (compare-and-swap "
                           "lost)", t, seen->etag, opts->if_match);
    if (st == DSP_ENOTFOUND && opts->cond == DSP_PUT_IF_MATCH)
        return dsp_err_set(err, DSP_ENOTFOUND, "put %s: the key is gone (compare-and-swap on "
                           "ETag %s)", t, opts->if_match);
    if (st == DSP_OK || st == DSP_ENOTFOUND)
        return dsp_err_set(err, DSP_ETRANSIENT, "put %s: outcome unknown and the condition "
                           "still holds", t);
    return st;
}

static dsp_status s3_put(dsp_store *store, const char *key, const void *data, size_t len,
                         const dsp_put_opts *opts, dsp_obj_info *info, dsp_err *err)
{
    static const dsp_put_opts plain = {DSP_PUT_ALWAYS, NULL, NULL};
    dsp_s3_store *s = (dsp_s3_store *)store;
    char *full = dsp_s3_full_key(s, key);
    char md5[33], etag[DSP_ETAG_MAX], t[1200], write_id[40];
    dsp_retry_state rs;
    dsp_s3_req r;
    dsp_status st;
    int ambiguous = 0;

    if (!opts)
        opts = &plain;
    int conditional = opts->cond != DSP_PUT_ALWAYS;
    md5[0] = '\0';
    if (conditional)
        dsp_md5_hex(data, len, md5);

    dsp_s3_req_init(&r, "put", conditional ? DSP_FOP_CPUT : DSP_FOP_PUT, NULL, "PUT", full);
    r.body = data;
    r.body_len = len;
    if (opts->content_type)
        dsp_s3_req_header(&r, "content-type", opts->content_type);
    if (conditional) {
        snprintf(write_id, sizeof write_id, "%016llx%016llx", (unsigned long long)dsp_rand64(),
                 (unsigned long long)dsp_rand64());
        dsp_s3_req_header(&r, "x-amz-meta-dsp-write-id", write_id);
    }
    if (opts->cond == DSP_PUT_IF_ABSENT) {
        dsp_s3_req_header(&r, "if-none-match", "*");
    } else if (opts->cond == DSP_PUT_IF_MATCH) {
        /* Unquoted: Ceph RGW 16 compares If-Match with the bare ETag. */
        const char *v = opts->if_match;
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
            v++;
            n -= 2;
        }
        if (n >= sizeof etag)
            n = sizeof etag - 1;
        memcpy(etag, v, n);
        etag[n] = '\0';
        dsp_s3_req_header(&r, "if-match", etag);
    }

    dsp_retry_begin(&rs, &s->base.retry);
    for (;;) {
        st = dsp_s3_req_attempt(s, &r, err);
        if (st == DSP_OK)
            break;
        if (st == DSP_EPRECOND && opts->cond == DSP_PUT_IF_MATCH && !ambiguous) {
            /* store.h promises DSP_ENOTFOUND when the key to swap is gone. */
            dsp_obj_info seen;
            dsp_err herr;
            if (s3_head_full(s, full, &s->base.stats.head, &seen, &herr) == DSP_ENOTFOUND) {
                st = dsp_err_set(err, DSP_ENOTFOUND, "put %s: the key is gone (compare-and-swap "
                                 "on ETag %s)", dsp_s3_target(s, full, t, sizeof t), etag);
                break;
            }
        }
        if (conditional && st == DSP_EPRECOND && ambiguous) {
            /* An earlier attempt may have been applied; then this 412 is our own. */
            dsp_obj_info seen;
            dsp_err derr;
            if (s3_cput_decide(s, full, opts, write_id, md5, &seen, &derr) == DSP_OK) {
                snprintf(r.etag, sizeof r.etag, "%s", seen.etag);
                st = DSP_OK;
                break;
            }
        }
        if (conditional && st == DSP_ETRANSIENT && r.reached_server) {
            ambiguous = 1;
            dsp_obj_info seen;
            dsp_err derr;
            dsp_status d = s3_cput_decide(s, full, opts, write_id, md5, &seen, &derr);
            if (d == DSP_OK) {
                snprintf(r.etag, sizeof r.etag, "%s", seen.etag);
                st = DSP_OK;
                break;
            }
            if (d == DSP_EPRECOND || d == DSP_ENOTFOUND) {
                *err = derr;
                st = d;
                break;
            }
        }
        if (!dsp_retry_again(&rs, err, "put", dsp_s3_target(s, full, t, sizeof t)))
            break;
        atomic_fetch_add(&s->base.stats.retries, 1);
    }

    if (st == DSP_OK && info) {
        memset(info, 0, sizeof *info);
        info->size = len;
        /* RGW and S3 return the MD5 as ETag for a single PUT; fall back to it
         * when a proxy dropped the header. */
        if (!r.etag[0] && !md5[0])
            dsp_md5_hex(data, len, md5);
        snprintf(info->etag, sizeof info->etag, "%s", r.etag[0] ? r.etag : md5);
        info->mtime_ms = dsp_now_ms();
    }
    dsp_s3_req_free(&r);
    free(full);
    return st;
}

/* ---- CopyObject ---- */

static dsp_status s3_copy(dsp_store *store, const char *src, const char *dst, dsp_obj_info *info,
                          dsp_err *err)
{
    dsp_s3_store *s = (dsp_s3_store *)store;
    char *src_full = dsp_s3_full_key(s, src), *dst_full = dsp_s3_full_key(s, dst);
    dsp_buf source = DSP_BUF_INIT;
    dsp_retry_state rs;
    dsp_s3_req r;
    dsp_status st;
    char t[1200];

    dsp_buf_printf(&source, "/%s/", s->bucket);
    dsp_sigv4_uri_encode(&source, src_full, 1);
    dsp_s3_req_init(&r, "copy", DSP_FOP_COPY, NULL, "PUT", dst_full);
    dsp_s3_req_header(&r, "x-amz-copy-source", source.data);

    dsp_retry_begin(&rs, &s->base.retry);
    for (;;) {
        st = dsp_s3_req_attempt(s, &r, err);
        if (st == DSP_OK) {
            /* CopyObject can fail after its 200 header: the body is then an <Error>. */
            char code[128], msg[512];
            const char *b = r.resp.data, *e = r.resp.data + r.resp.len;
            if (r.resp.len && dsp_s3_xml_get(b, e, "Code", code, sizeof code)) {
                dsp_s3_xml_get(b, e, "Message", msg, sizeof msg);
                st = dsp_err_set(err, DSP_ETRANSIENT, "copy %s to %s: %s: %s",
                                 dsp_s3_target(s, src_full, t, sizeof t), dst_full, code, msg);
            } else {
                dsp_s3_xml_get(b, e, "ETag", r.etag, sizeof r.etag);
            }
        }
        if (st == DSP_OK)
            break;
        if (!dsp_retry_again(&rs, err, "copy", dsp_s3_target(s, dst_full, t, sizeof t)))
            break;
        atomic_fetch_add(&s->base.stats.retries, 1);
    }
    if (st == DSP_ENOTFOUND)
        dsp_err_set(err, DSP_ENOTFOUND, "copy %s: source key not found",
                    dsp_s3_target(s, src_full, t, sizeof t));
    if (st == DSP_OK && info)
        st = s3_head_full(s, dst_full, &s->base.stats.head, info, err);

    dsp_s3_req_free(&r);
    dsp_buf_free(&source);
    free(src_full);
    free(dst_full);
    return st;
}

/* ---- DeleteObjects ---- */

static void s3_base64_md5(const void *data, size_t len, char out[25])
{
    unsigned char digest[16];
    unsigned int n = 0;
    EVP_Digest(data, len, digest, &n, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, digest, 16);
}

static dsp_status s3_delete_batch(dsp_store *store, const char *const *keys, size_t n, dsp_err *err)
{
    dsp_s3_store *s = (dsp_s3_store *)store;
    char **pending = dsp_xcalloc(n ? n : 1, sizeof *pending);
    size_t npending = n;
    dsp_buf body = DSP_BUF_INIT, text = DSP_BUF_INIT, failures = DSP_BUF_INIT;
    dsp_retry_state rs;
    dsp_status st = DSP_OK;
    char md5[25], t[1200];

    for (size_t i = 0; i < n; i++)
        pending[i] = dsp_s3_full_key(s, keys[i]);

    dsp_retry_begin(&rs, &s->base.retry);
    while (npending) {
        dsp_buf_reset(&body);
        dsp_buf_append_str(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                                  "<Delete><Quiet>true</Quiet>");
        /* NOTE: XML 1.0 cannot carry most control characters, so keys that
         * contain them (other than tab, CR and LF) cannot be batch-deleted. */
        for (size_t i = 0; i < npending; i++) {
            dsp_buf_append_str(&body, "<Object><Key>");
            dsp_s3_xml_escape(&body, pending[i]);
            dsp_buf_append_str(&body, "</Key></Object>");
        }
        dsp_buf_append_str(&body, "</Delete>");
        s3_base64_md5(body.data, body.len, md5);

        dsp_s3_req r;
        dsp_s3_req_init(&r, "delete", DSP_FOP_DELETE, NULL, "POST", NULL);
        r.query = "delete=";
        r.body = body.data;
        r.body_len = body.len;
        dsp_s3_req_header(&r, "content-md5", md5);
        dsp_s3_req_header(&r, "content-type", "application/xml");
        st = dsp_s3_req_attempt(s, &r, err);

        if (st == DSP_OK) {
            /* Keep the keys that failed with a retriable code and report the rest. */
            size_t retriable = 0, failed = 0, permanent = 0;
            const char *pos = r.resp.data, *end = r.resp.data + r.resp.len;
            const char *es, *ee;
            char code[128], msg[256];
            dsp_buf_reset(&failures);
            for (size_t i = 0; i < npending; i++) {
                free(pending[i]);
                pending[i] = NULL;
            }
            while (r.resp.len && dsp_s3_xml_next(&pos, end, "Error", &es, &ee)) {
                const char *ks, *ke, *kp = es;
                if (!dsp_s3_xml_next(&kp, ee, "Key", &ks, &ke))
                    continue;
                dsp_s3_xml_text(ks, ke, &text);
                dsp_s3_xml_get(es, ee, "Code", code, sizeof code);
                dsp_s3_xml_get(es, ee, "Message", msg, sizeof msg);
                if (strcmp(code, "NoSuchKey") == 0)
                    continue;
                failed++;
                if (strcmp(code, "InternalError") == 0 || strcmp(code, "SlowDown") == 0 ||
                    strcmp(code, "ServiceUnavailable") == 0) {
                    pending[retriable++] = dsp_xstrdup(text.data);
                } else {
                    permanent++;
                }
                if (failed <= 3)
                    dsp_buf_printf(&failures, "%s%s (%s: %s)", failed > 1 ? ", " : "", text.data,
                                   code, msg);
            }
            npending = retriable;
            if (failed) {
                st = dsp_err_set(err, permanent ? DSP_EPERM : DSP_ETRANSIENT,
                                 "delete in %s: %zu of %zu keys failed, e.g. %s",
                                 dsp_s3_target(s, s->prefix, t, sizeof t), failed, n,
                                 failures.data);
            }
            if (permanent) {
                dsp_s3_req_free(&r);
                break;
            }
        }
        dsp_s3_req_free(&r);
        if (st == DSP_OK)
            break;
        if (!dsp_retry_again(&rs, err, "delete", dsp_s3_target(s, s->prefix, t, sizeof t)))
            break;
        atomic_fetch_add(&s->base.stats.retries, 1);
    }

    for (size_t i = 0; i < n; i++)
        free(pending[i]);
    free(pending);
    dsp_buf_free(&body);
    dsp_buf_free(&text);
    dsp_buf_free(&failures);
    return st;
}

/* ---- ListObjectsV2 ---- */

static int64_t s3_parse_iso8601_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return 0;
    int64_t ms = (int64_t)timegm(&tm) * 1000;
    if (*rest == '.')
        ms += strtol(rest + 1, NULL, 10) % 1000;
    return ms;
}

/* Decode a listed key or prefix and strip the store's prefix from it. */
static char *s3_listed_name(dsp_s3_store *s, const char *vs, const char *ve, int url_encoded,
                            dsp_buf *tmp)
{
    dsp_s3_xml_text(vs, ve, tmp);
    if (url_encoded)
        dsp_s3_url_decode(tmp->data);
    const char *name = tmp->data;
    size_t plen = strlen(s->prefix);
    if (plen && strncmp(name, s->prefix, plen) == 0 && name[plen] == '/')
        name += plen + 1;
    return dsp_xstrdup(name);
}

static dsp_status s3_parse_list(dsp_s3_store *s, const dsp_buf *resp, dsp_list_page *page,
                                dsp_err *err)
{
    const char *b = resp->data, *e = resp->data + resp->len;
    const char *pos, *vs, *ve;
    dsp_buf tmp = DSP_BUF_INIT;
    char field[128];
    size_t cap = 0, pcap = 0;

    if (!b || !strstr(b, "ListBucketResult"))
        return dsp_err_set(err, DSP_ETRANSIENT, "list %s: the response is not a "
                           "ListBucketResult document", s->base.uri);
    char enc[16];
    int url_encoded = dsp_s3_xml_get(b, e, "EncodingType", enc, sizeof enc) && strcmp(enc, "url") == 0;

    pos = b;
    while (dsp_s3_xml_next(&pos, e, "Contents", &vs, &ve)) {
        const char *ks, *ke, *kp = vs;
        if (!dsp_s3_xml_next(&kp, ve, "Key", &ks, &ke))
            continue;
        if (page->n == cap) {
            cap = cap ? 2 * cap : 64;
            page->items = dsp_xrealloc(page->items, cap * sizeof *page->items);
        }
        dsp_list_entry *it = &page->items[page->n++];
        memset(it, 0, sizeof *it);
        it->key = s3_listed_name(s, ks, ke, url_encoded, &tmp);
        if (dsp_s3_xml_get(vs, ve, "Size", field, sizeof field))
            it->size = strtoull(field, NULL, 10);
        if (dsp_s3_xml_get(vs, ve, "ETag", it->etag, sizeof it->etag)) {
            size_t n = strlen(it->etag);
            if (n >= 2 && it->etag[0] == '"' && it->etag[n - 1] == '"') {
                memmove(it->etag, it->etag + 1, n - 2);
                it->etag[n - 2] = '\0';
            }
        }
        if (dsp_s3_xml_get(vs, ve, "LastModified", field, sizeof field))
            it->mtime_ms = s3_parse_iso8601_ms(field);
    }

    pos = b;
    while (dsp_s3_xml_next(&pos, e, "CommonPrefixes", &vs, &ve)) {
        const char *ps, *pe, *pp = vs;
        if (!dsp_s3_xml_next(&pp, ve, "Prefix", &ps, &pe))
            continue;
        if (page->nprefixes == pcap) {
            pcap = pcap ? 2 * pcap : 16;
            page->prefixes = dsp_xrealloc(page->prefixes, pcap * sizeof *page->prefixes);
        }
        page->prefixes[page->nprefixes++] = s3_listed_name(s, ps, pe, url_encoded, &tmp);
    }

    if (dsp_s3_xml_get(b, e, "IsTruncated", field, sizeof field) && strcmp(field, "true") == 0) {
        dsp_buf token = DSP_BUF_INIT;
        pos = b;
        if (dsp_s3_xml_next(&pos, e, "NextContinuationToken", &vs, &ve)) {
            dsp_s3_xml_text(vs, ve, &token);
            page->next_token = dsp_buf_detach(&token, NULL);
        }
        dsp_buf_free(&token);
    }
    dsp_buf_free(&tmp);
    return DSP_OK;
}

static dsp_status s3_list_page(dsp_store *store, const char *prefix, const char *delimiter,
                               const char *token, size_t max_keys, dsp_list_page *page,
                               dsp_err *err)
{
    dsp_s3_store *s = (dsp_s3_store *)store;
    const char *names[6], *values[6];
    char maxk[24];
    size_t n = 0;
    dsp_buf query = DSP_BUF_INIT;
    char *full_prefix = s->prefix[0] ? dsp_xasprintf("%s/%s", s->prefix, prefix)
                                     : dsp_xstrdup(prefix);
    dsp_s3_req r;

    memset(page, 0, sizeof *page);
    if (max_keys == 0 || max_keys > S3_LIST_MAX)
        max_keys = S3_LIST_MAX;
    snprintf(maxk, sizeof maxk, "%zu", max_keys);
    names[n] = "list-type", values[n++] = "2";
    names[n] = "encoding-type", values[n++] = "url";
    names[n] = "max-keys", values[n++] = maxk;
    if (full_prefix[0])
        names[n] = "prefix", values[n++] = full_prefix;
    if (delimiter)
        names[n] = "delimiter", values[n++] = delimiter;
    if (token)
        names[n] = "continuation-token", values[n++] = token;
    dsp_sigv4_query(&query, names, values, n);

    dsp_s3_req_init(&r, "list", DSP_FOP_LIST, NULL, "GET", NULL);
    r.query = query.data;
    r.named_prefix = full_prefix;
    dsp_retry_state rs;
    dsp_status st;
    char t[1200];
    dsp_retry_begin(&rs, &s->base.retry);
    for (;;) {
        st = dsp_s3_req_attempt(s, &r, err);
        if (st == DSP_OK) {
            st = s3_parse_list(s, &r.resp, page, err);
            if (st != DSP_OK)
                dsp_list_page_free(page);
        }
        if (st == DSP_OK)
            break;
        if (!dsp_retry_again(&rs, err, "list", dsp_s3_target(s, full_prefix, t, sizeof t)))
            break;
        atomic_fetch_add(&s->base.stats.retries, 1);
    }
    if (st == DSP_ENOTFOUND)
        st = dsp_err_set(err, DSP_EPERM, "list %s: %s", s->base.uri, err->msg);
    dsp_s3_req_free(&r);
    dsp_buf_free(&query);
    free(full_prefix);
    return st;
}

/* ---- open / close ---- */

static pthread_once_t s3_curl_once = PTHREAD_ONCE_INIT;

static void s3_curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void s3_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr)
{
    (void)handle;
    (void)access;
    dsp_s3_store *s = userptr;
    pthread_mutex_lock(&s->share_locks[data]);
}

static void s3_unlock(CURL *handle, curl_lock_data data, void *userptr)
{
    (void)handle;
    dsp_s3_store *s = userptr;
    pthread_mutex_unlock(&s->share_locks[data]);
}

static void s3_close(dsp_store *store)
{
    dsp_s3_store *s = (dsp_s3_store *)store;
    for (size_t i = 0; i < s->pool_len; i++)
        curl_easy_cleanup(s->pool[i]);
    free(s->pool);
    if (s->share)
        curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->share_locks[i]);
    pthread_mutex_destroy(&s->pool_lock);
    dsp_s3_creds_chain_free(s->creds);
    free(s->bucket);
    free(s->prefix);
    free(s->scheme);
    free(s->host);
    free(s->region);
    free(s->ca_bundle);
    free(s->base.uri);
    free(s);
}

static const struct dsp_store_ops s3_ops = {
    .kind = "s3",
    .get = s3_get,
    .head = s3_head,
    .put = s3_put,
    .copy = s3_copy,
    .delete_batch = s3_delete_batch,
    .list_page = s3_list_page,
    .writer_open = dsp_s3_writer_open,
    .reader_open = dsp_s3_reader_open,
    .close = s3_close,
};

char *dsp_s3_redact_url(const char *url)
{
    const char *sep = strstr(url, "://");
    const char *authority = sep ? sep + 3 : url;
    size_t len = strcspn(authority, "/?#");
    const char *at = NULL;

    for (const char *p = authority; p < authority + len; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return dsp_xstrdup(url);
    return dsp_xasprintf("%.*sREDACTED%s", (int)(authority - url), url, at);
}

/* Split "scheme://host[:port][/path]" into scheme and host[:port]. */
static dsp_status s3_parse_endpoint(const char *endpoint, char **scheme, char **hostport,
                                    dsp_err *err)
{
    /* Errors show the endpoint without its user name and password. */
    char *redacted_endpoint = dsp_s3_redact_url(endpoint);
    dsp_status st = DSP_OK;
    const char *sep = strstr(endpoint, "://");

    if (!sep || (strncmp(endpoint, "http", 4) != 0)) {
        st = dsp_err_set(err, DSP_EINVAL, "invalid S3 endpoint '%s': expected "
                         "http://host[:port] or https://host[:port]", redacted_endpoint);
        goto out;
    }
    *scheme = dsp_xstrndup(endpoint, (size_t)(sep - endpoint));
    if (strcmp(*scheme, "http") != 0 && strcmp(*scheme, "https") != 0) {
        free(*scheme);
        *scheme = NULL;
        st = dsp_err_set(err, DSP_EINVAL, "invalid S3 endpoint '%s': the scheme must be http "
                         "or https", redacted_endpoint);
        goto out;
    }
    const char *h = sep + 3;
    size_t n = strcspn(h, "/?#");
    if (n == 0) {
        free(*scheme);
        *scheme = NULL;
        st = dsp_err_set(err, DSP_EINVAL, "invalid S3 endpoint '%s': missing host", redacted_endpoint);
        goto out;
    }
    *hostport = dsp_xstrndup(h, n);
out:
    free(redacted_endpoint);
    return st;
}

dsp_status dsp_s3_open(const char *bucket_and_prefix, const dsp_store_config *cfg,
                       dsp_store **out, dsp_err *err)
{
    dsp_s3_store *s = dsp_xcalloc(1, sizeof *s);
    dsp_s3_settings settings;
    char *hostport = NULL;
    dsp_status st;

    *out = NULL;
    pthread_once(&s3_curl_once, s3_curl_init);
    pthread_mutex_init(&s->pool_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->share_locks[i], NULL);
    s->base.ops = &s3_ops;

    size_t blen = strcspn(bucket_and_prefix, "/");
    if (blen == 0) {
        st = dsp_err_set(err, DSP_EINVAL, "invalid store URI 's3://%s': missing bucket name "
                         "(expected s3://bucket/prefix)", bucket_and_prefix);
        goto fail;
    }
    s->bucket = dsp_xstrndup(bucket_and_prefix, blen);
    const char *p = bucket_and_prefix + blen;
    while (*p == '/')
        p++;
    s->prefix = dsp_xstrdup(p);
    for (size_t n = strlen(s->prefix); n && s->prefix[n - 1] == '/'; n--)
        s->prefix[n - 1] = '\0';
    s->base.uri = s->prefix[0] ? dsp_xasprintf("s3://%s/%s", s->bucket, s->prefix)
                               : dsp_xasprintf("s3://%s", s->bucket);

    st = dsp_s3_settings_load(&settings, err);
    if (st != DSP_OK)
        goto fail;
    const char *endpoint = (cfg && cfg->endpoint && *cfg->endpoint) ? cfg->endpoint : settings.endpoint;
    s->region = dsp_xstrdup((cfg && cfg->region && *cfg->region) ? cfg->region : settings.region);

    /* Addressing: path_style 1 forces path-style. Both 0 and -1 mean auto,
     * so that a zeroed config works: path-style when an endpoint is set or
     * the bucket name has dots, virtual-hosted for AWS.
     * DSPARK_S3_ADDRESSING=path or =virtual overrides auto. */
    const char *addressing = getenv("DSPARK_S3_ADDRESSING");
    int explicit_endpoint = endpoint[0] != '\0';
    if (cfg && cfg->path_style == 1)
        s->path_style = 1;
    else if (addressing && strcmp(addressing, "virtual") == 0)
        s->path_style = 0;
    else if (addressing && strcmp(addressing, "path") == 0)
        s->path_style = 1;
    else
        s->path_style = explicit_endpoint || strchr(s->bucket, '.') != NULL;

    if (explicit_endpoint) {
        st = s3_parse_endpoint(endpoint, &s->scheme, &hostport, err);
        if (st != DSP_OK)
            goto fail;
    } else {
        s->scheme = dsp_xstrdup("https");
        hostport = dsp_xasprintf("s3.%s.amazonaws.com", s->region);
    }
    s->host = s->path_style ? dsp_xstrdup(hostport) : dsp_xasprintf("%s.%s", s->bucket, hostport);
    /* Large bodies skip the payload hash, as curl and the AWS CLI do for
     * uploads: hashing them costs the client and the server a pass over
     * every byte. TCP (or TLS with https) still protects them in transit.
     * DSPARK_S3_SIGN_PAYLOAD=1 signs every body. */
    const char *sign_all = getenv("DSPARK_S3_SIGN_PAYLOAD");
    s->unsigned_payload_min = (sign_all && strcmp(sign_all, "1") == 0) ? SIZE_MAX : 1024 * 1024;
    if (getenv("AWS_CA_BUNDLE") && *getenv("AWS_CA_BUNDLE"))
        s->ca_bundle = dsp_xstrdup(getenv("AWS_CA_BUNDLE"));

    st = dsp_s3_creds_chain_open(settings.profile, &s->creds, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "opening %s", s->base.uri);
        goto fail;
    }

    s->share = curl_share_init();
    if (!s->share) {
        st = dsp_err_set(err, DSP_ENOMEM, "opening %s: curl_share_init failed", s->base.uri);
        goto fail;
    }
    curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, s3_lock);
    curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, s3_unlock);
    curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

    char *endpoint_url = dsp_xasprintf("%s://%s", s->scheme, s->host);
    char *shown_endpoint = dsp_s3_redact_url(endpoint_url);
    DSP_DEBUG("s3_open", "uri=%s endpoint=%s region=%s addressing=%s credentials=%s",
              s->base.uri, shown_endpoint, s->region, s->path_style ? "path" : "virtual",
              dsp_s3_creds_chain_source(s->creds));
    free(shown_endpoint);
    free(endpoint_url);
    free(hostport);
    *out = &s->base;
    return DSP_OK;

fail:
    free(hostport);
    if (!s->base.uri)
        s->base.uri = dsp_xstrdup("s3://");
    s3_close(&s->base);
    return st;
}
