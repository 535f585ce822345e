/*
 * s3_http.c - one signed S3 request over libcurl, and its retry loop.
 *
 * Every attempt first calls the fault layer and turns an injected fault
 * into the same failure a real server or network produces. It then signs
 * the request with SigV4 and performs it on an easy handle from the store's
 * pool. Easy handles share one connection cache (a curl share handle), so
 * connections are reused across threads and across the curl multi handles
 * of streaming readers and writers.
 *
 * Classification of a failed attempt:
 *   - 404 -> DSP_ENOTFOUND, except NoSuchBucket and NoSuchUpload (DSP_EPERM);
 *   - 412, 409 ConditionalRequestConflict, and any 409 to a request with a
 *     condition -> DSP_EPRECOND;
 *   - 5xx, 429, SlowDown, RequestTimeout, curl network errors and short
 *     bodies -> DSP_ETRANSIENT;
 *   - everything else (403, 400, TLS verification failures) -> DSP_EPERM.
 * Messages name the operation, s3://bucket/key, the HTTP status and the S3
 * error code and message, never a credential.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "../core/log.h"
#include "../core/util.h"
#include "s3_impl.h"
#include "s3_sigv4.h"

void dsp_s3_req_init(dsp_s3_req *r, const char *op, dsp_fault_op fop, _Atomic uint64_t *counter,
                     const char *method, const char *key)
{
    memset(r, 0, sizeof *r);
    r->op = op;
    r->fop = fop;
    r->counter = counter;
    r->method = method;
    r->key = key;
    r->content_length = -1;
    r->range_total = -1;
}

void dsp_s3_req_header(dsp_s3_req *r, const char *name, const char *value)
{
    if (r->nheaders < DSP_S3_MAX_HEADERS) {
        r->header_names[r->nheaders] = name;
        r->header_values[r->nheaders] = value;
        r->nheaders++;
    }
}

void dsp_s3_req_free(dsp_s3_req *r)
{
    dsp_buf_free(&r->resp);
    curl_slist_free_all(r->slist);
    r->slist = NULL;
}

const char *dsp_s3_target(const dsp_s3_store *s, const char *full_key, char *buf, size_t cap)
{
    snprintf(buf, cap, "s3://%s/%s", s->bucket, full_key ? full_key : "");
    return buf;
}

char *dsp_s3_full_key(const dsp_s3_store *s, const char *key)
{
    if (!s->prefix[0])
        return dsp_xstrdup(key);
    return dsp_xasprintf("%s/%s", s->prefix, key);
}

/* ---- easy handle pool ---- */

static CURL *http_take(dsp_s3_store *s)
{
    CURL *c = NULL;
    pthread_mutex_lock(&s->pool_lock);
    if (s->pool_len)
        c = s->pool[--s->pool_len];
    pthread_mutex_unlock(&s->pool_lock);
    if (!c)
        c = curl_easy_init();
    else
        curl_easy_reset(c);
    return c;
}

static void http_give(dsp_s3_store *s, CURL *c)
{
    pthread_mutex_lock(&s->pool_lock);
    if (s->pool_len == s->pool_cap) {
        s->pool_cap = s->pool_cap ? 2 * s->pool_cap : 16;
        s->pool = dsp_xrealloc(s->pool, s->pool_cap * sizeof *s->pool);
    }
    s->pool[s->pool_len++] = c;
    pthread_mutex_unlock(&s->pool_lock);
}

/* ---- callbacks ---- */

static size_t http_on_body(char *data, size_t size, size_t n, void *userdata)
{
    dsp_s3_req *r = userdata;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    dsp_buf *dst = (r->sink && status >= 200 && status < 300) ? r->sink : &r->resp;
    if (dst == &r->resp && r->resp.len > 1024 * 1024 && r->sink)
        return size * n; /* keep at most 1 MiB of an error body */
    dsp_buf_append(dst, data, size * n);
    return size * n;
}

static size_t http_on_upload(char *buf, size_t size, size_t n, void *userdata)
{
    dsp_s3_req *r = userdata;
    size_t left = r->body_len - r->upload_pos;
    size_t k = size * n < left ? size * n : left;
    if (k)
        memcpy(buf, (const char *)r->body + r->upload_pos, k);
    r->upload_pos += k;
    return k;
}

static void http_copy_etag(char *dst, const char *v, size_t len)
{
    while (len && (*v == '"' || *v == ' ')) {
        v++;
        len--;
    }
    while (len && (v[len - 1] == '"' || v[len - 1] == ' ' || v[len - 1] == '\r' || v[len - 1] == '\n'))
        len--;
    if (len >= DSP_ETAG_MAX)
        len = DSP_ETAG_MAX - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

/* Clock skew between this machine and the S3 server, in seconds, above
 * which a warning is logged. Leases and the publishing lock compare times
 * that different machines wrote, so their clocks must agree. The Date
 * header has a resolution of 1 s and arrives after some latency. */
#define HTTP_CLOCK_SKEW_WARN_S 5

/* Warn once per process when the server's Date header differs from this
 * machine's clock by more than HTTP_CLOCK_SKEW_WARN_S. */
static void http_check_clock(const char *date)
{
    static atomic_int warned;
    time_t server = curl_getdate(date, NULL);
    if (server <= 0 || atomic_load(&warned))
        return;
    long long skew = (long long)time(NULL) - (long long)server;
    if (skew >= -HTTP_CLOCK_SKEW_WARN_S && skew <= HTTP_CLOCK_SKEW_WARN_S)
        return;
    if (atomic_exchange(&warned, 1))
        return;
    DSP_WARN("clock_skew", "skew_s=%lld message=\"this machine's clock is %lld s %s the S3 "
             "server's. Workers compare lease expiry times that other machines wrote, so a "
             "skew near lease_seconds makes them take over healthy tasks; synchronize the "
             "clock (NTP)\"",
             skew, skew < 0 ? -skew : skew, skew > 0 ? "ahead of" : "behind");
}

static size_t http_on_header(char *line, size_t size, size_t n, void *userdata)
{
    dsp_s3_req *r = userdata;
    size_t len = size * n;
    char tmp[256];

    if (len > 5 && strncasecmp(line, "ETag:", 5) == 0) {
        http_copy_etag(r->etag, line + 5, len - 5);
    } else if (len > 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
        r->content_length = strtoll(line + 15, NULL, 10);
    } else if (len > 14 && strncasecmp(line, "Content-Range:", 14) == 0) {
        // "bytes 0-9/1234", or "bytes */1234" in a 416 response
        const char *slash = memchr(line, '/', len);
        if (slash && slash[1] != '*')
            r->range_total = strtoll(slash + 1, NULL, 10);
    } else if (len > 24 && strncasecmp(line, "x-amz-meta-dsp-write-id:", 24) == 0) {
        http_copy_etag(r->write_id, line + 24, len - 24);
        r->write_id[sizeof r->write_id - 1] = '\0';
    } else if (len > 5 && strncasecmp(line, "Date:", 5) == 0) {
        size_t k = len - 5 < sizeof tmp - 1 ? len - 5 : sizeof tmp - 1;
        memcpy(tmp, line + 5, k);
        tmp[k] = '\0';
        http_check_clock(tmp);
    } else if (len > 14 && strncasecmp(line, "Last-Modified:", 14) == 0) {
        size_t k = len - 14 < sizeof tmp - 1 ? len - 14 : sizeof tmp - 1;
        memcpy(tmp, line + 14, k);
        tmp[k] = '\0';
        time_t t = curl_getdate(tmp, NULL);
        if (t > 0)
            r->mtime_ms = (int64_t)t * 1000;
    }
    return len;
}

/* ---- one attempt ---- */

static void http_build_url(dsp_s3_store *s, dsp_s3_req *r, dsp_buf *path, dsp_buf *url)
{
    dsp_buf_reset(path);
    dsp_buf_append_str(path, "");
    if (s->path_style) {
        dsp_buf_append_char(path, '/');
        dsp_buf_append_str(path, s->bucket);
        if (r->key) {
            dsp_buf_append_char(path, '/');
            dsp_sigv4_uri_encode(path, r->key, 1);
        }
    } else {
        dsp_buf_append_char(path, '/');
        if (r->key)
            dsp_sigv4_uri_encode(path, r->key, 1);
    }
    dsp_buf_reset(url);
    dsp_buf_printf(url, "%s://%s%s", s->scheme, s->host, path->data);
    if (r->query && r->query[0])
        dsp_buf_printf(url, "?%s", r->query);
}

static dsp_status http_injected(dsp_s3_store *s, dsp_s3_req *r, dsp_err *err)
{
    char t[1200];
    dsp_s3_target(s, r->key ? r->key : r->named_prefix, t, sizeof t);
    switch (r->fault) {
    case DSP_FAULT_503:
        r->status = 503;
        return dsp_err_set(err, DSP_ETRANSIENT, "%s %s: HTTP 503 SlowDown: Please reduce your "
                           "request rate (injected fault)", r->op, t);
    case DSP_FAULT_500:
        r->status = 500;
        return dsp_err_set(err, DSP_ETRANSIENT, "%s %s: HTTP 500 InternalError (injected fault)",
                           r->op, t);
    case DSP_FAULT_RESET:
        return dsp_err_set(err, DSP_ETRANSIENT, "%s %s: connection reset by peer (injected fault)",
                           r->op, t);
    case DSP_FAULT_TIMEOUT:
        return dsp_err_set(err, DSP_ETRANSIENT, "%s %s: request timed out (injected fault)", r->op, t);
    case DSP_FAULT_403:
        r->status = 403;
        return dsp_err_set(err, DSP_EPERM, "%s %s: HTTP 403 AccessDenied: Access Denied "
                           "(injected fault)", r->op, t);
    default:
        return DSP_OK;
    }
}

dsp_status dsp_s3_req_start(dsp_s3_store *s, dsp_s3_req *r, dsp_err *err)
{
    dsp_s3_creds creds;
    dsp_buf path = DSP_BUF_INIT, url = DSP_BUF_INIT, auth = DSP_BUF_INIT, line = DSP_BUF_INIT;
    dsp_sigv4_header hdrs[DSP_S3_MAX_HEADERS + 4];
    char amz_date[17];
    size_t nh = 0;
    dsp_status st;

    /* Reset the outputs of any earlier attempt. */
    r->status = 0;
    r->etag[0] = '\0';
    r->content_length = -1;
    r->range_total = -1;
    r->mtime_ms = 0;
    r->write_id[0] = '\0';
    r->upload_pos = 0;
    r->reached_server = 0;
    dsp_buf_reset(&r->resp);
    if (r->sink)
        r->sink_start = r->sink->len;
    curl_slist_free_all(r->slist);
    r->slist = NULL;
    r->easy = NULL;
    r->start_ms = dsp_mono_ms();
    if (r->counter)
        atomic_fetch_add(r->counter, 1);

    r->fault = r->fop == DSP_FOP_GET ? dsp_fault_pick_key(s->base.faults, r->fop, r->key)
                                     : dsp_fault_pick(s->base.faults, r->fop);
    if (r->fault != DSP_FAULT_NONE)
        DSP_DEBUG("s3_fault", "op=%s key=%s fault=%s", r->op, r->key ? r->key : "",
                  dsp_fault_kind_name(r->fault));
    st = http_injected(s, r, err);
    if (st != DSP_OK || r->fault == DSP_FAULT_403)
        return st;

    st = dsp_s3_creds_chain_get(s->creds, &creds, err);
    if (st != DSP_OK)
        return st;

    if (!r->payload_hash && r->body_len >= s->unsigned_payload_min) {
        r->payload_hash = "UNSIGNED-PAYLOAD";
    } else if (!r->payload_hash) {
        dsp_sha256_hex(r->body ? r->body : "", r->body_len, r->payload_hash_buf);
        r->payload_hash = r->payload_hash_buf;
    }

    http_build_url(s, r, &path, &url);
    dsp_sigv4_amz_date(time(NULL), amz_date);
    hdrs[nh++] = (dsp_sigv4_header){"host", s->host};
    hdrs[nh++] = (dsp_sigv4_header){"x-amz-content-sha256", r->payload_hash};
    hdrs[nh++] = (dsp_sigv4_header){"x-amz-date", amz_date};
    if (creds.session_token[0])
        hdrs[nh++] = (dsp_sigv4_header){"x-amz-security-token", creds.session_token};
    for (int i = 0; i < r->nheaders; i++) {
        /* The nocond fault turns a conditional PUT into a plain one. */
        if (r->fault == DSP_FAULT_NOCOND && (strcmp(r->header_names[i], "if-match") == 0 ||
                                             strcmp(r->header_names[i], "if-none-match") == 0))
            continue;
        hdrs[nh++] = (dsp_sigv4_header){r->header_names[i], r->header_values[i]};
    }
    dsp_sigv4_signer signer = {creds.access_key, creds.secret_key, s->region, "s3", amz_date};
    dsp_sigv4_request sreq = {r->method, path.data, r->query ? r->query : "", hdrs, nh,
                              r->payload_hash};
    dsp_sigv4_sign(&signer, &sreq, &auth, NULL);

    for (size_t i = 0; i < nh; i++) {
        dsp_buf_reset(&line);
        dsp_buf_printf(&line, "%s: %s", hdrs[i].name, hdrs[i].value);
        r->slist = curl_slist_append(r->slist, line.data);
    }
    dsp_buf_reset(&line);
    dsp_buf_printf(&line, "Authorization: %s", auth.data);
    r->slist = curl_slist_append(r->slist, line.data);
    /* An empty Expect stops curl from sending "Expect: 100-continue", which
     * makes some servers drop the ETag of the final response. */
    r->slist = curl_slist_append(r->slist, "Expect:");
    r->slist = curl_slist_append(r->slist, "Accept:");
    if (strcmp(r->method, "POST") == 0 && !r->nheaders)
        r->slist = curl_slist_append(r->slist, "Content-Type:");

    CURL *c = http_take(s);
    r->easy = c;
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    curl_easy_setopt(c, CURLOPT_SHARE, s->share);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* keys may contain "." and ".." segments */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->slist);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    /* A transfer that moves less than 1 byte/s for 60 s counts as timed out. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 128L * 1024);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_bundle)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_bundle);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_PRIVATE, r);

    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, http_on_upload);
        curl_easy_setopt(c, CURLOPT_READDATA, r);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? (const char *)r->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    }

    OPENSSL_cleanse(&creds, sizeof creds);
    if (auth.data)
        OPENSSL_cleanse(auth.data, auth.len);
    if (line.data)
        OPENSSL_cleanse(line.data, line.len);
    dsp_buf_free(&path);
    dsp_buf_free(&url);
    dsp_buf_free(&auth);
    dsp_buf_free(&line);
    return DSP_OK;
}

static int http_is_transient_code(const char *code)
{
    static const char *const codes[] = {"SlowDown", "InternalError", "RequestTimeout",
                                        "ServiceUnavailable", "OperationAborted",
                                        "ThrottlingException", NULL};
    for (int i = 0; codes[i]; i++)
        if (strcmp(code, codes[i]) == 0)
            return 1;
    return 0;
}

static dsp_status http_classify(dsp_s3_store *s, dsp_s3_req *r, dsp_err *err)
{
    char code[128] = "", message[512] = "", t[1200];
    long st = r->status;

    dsp_s3_target(s, r->key ? r->key : r->named_prefix, t, sizeof t);
    if (r->resp.len) {
        const char *b = r->resp.data, *e = r->resp.data + r->resp.len;
        dsp_s3_xml_get(b, e, "Code", code, sizeof code);
        dsp_s3_xml_get(b, e, "Message", message, sizeof message);
    }
    if (!code[0]) {
        /* HEAD responses and some proxies carry no body. */
        const char *guess = st == 404 ? "NoSuchKey" : st == 412 ? "PreconditionFailed"
                          : st == 403 ? "AccessDenied" : st == 503 ? "SlowDown"
                          : st >= 500 ? "InternalError" : "";
        snprintf(code, sizeof code, "%s", guess);
    }
    int conditional = 0;
    for (int i = 0; i < r->nheaders; i++)
        if (strncmp(r->header_names[i], "if-", 3) == 0)
            conditional = 1;

    dsp_status cls;
    if (st == 404 && strcmp(code, "NoSuchBucket") != 0 && strcmp(code, "NoSuchUpload") != 0)
        cls = DSP_ENOTFOUND;
    else if (st == 412 || (st == 409 && (conditional || strcmp(code, "ConditionalRequestConflict") == 0)))
        cls = DSP_EPRECOND;
    else if (st >= 500 || st == 429 || http_is_transient_code(code))
        cls = DSP_ETRANSIENT;
    else
        cls = DSP_EPERM;

    if (strcmp(code, "NoSuchBucket") == 0)
        return dsp_err_set(err, cls,
                           "%s %s: bucket '%s' does not exist (HTTP %ld NoSuchBucket); check the "
                           "bucket name and AWS_ENDPOINT_URL",
                           r->op, t, s->bucket, st);
    const char *hint = "";
    if (strcmp(code, "SignatureDoesNotMatch") == 0)
        hint = "; check the secret access key (AWS_SECRET_ACCESS_KEY or the profile's "
               "aws_secret_access_key) and that it belongs to the access key id";
    else if (strcmp(code, "InvalidAccessKeyId") == 0)
        hint = "; check the access key id (AWS_ACCESS_KEY_ID or the profile's "
               "aws_access_key_id) and that AWS_ENDPOINT_URL names the right server";
    else if (strcmp(code, "RequestTimeTooSkewed") == 0)
        hint = "; the clock of this machine differs from the server's, so correct it (NTP)";
    if (message[0])
        return dsp_err_set(err, cls, "%s %s: HTTP %ld %s: %s%s", r->op, t, st, code, message,
                           hint);
    return dsp_err_set(err, cls, "%s %s: HTTP %ld %s%s", r->op, t, st, code[0] ? code : "error",
                       hint);
}

dsp_status dsp_s3_req_finish(dsp_s3_store *s, dsp_s3_req *r, CURLcode rc, dsp_err *err)
{
    char t[1200];
    dsp_status st = DSP_OK;
    curl_off_t up = 0, down = 0;

    if (!r->easy)
        return DSP_OK;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(r->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
    if (r->count_bytes) {
        atomic_fetch_add(&s->base.stats.bytes_out, (uint64_t)up);
        atomic_fetch_add(&s->base.stats.bytes_in, (uint64_t)down);
    }

    if (dsp_log_enabled(DSP_LOG_DEBUG)) {
        char *url = NULL;
        long new_conns = 0;
        curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
        curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &new_conns);
        char *redacted_url = dsp_s3_redact_url(url ? url : "");
        dsp_log(DSP_LOG_DEBUG, "s3_request", "op=%s method=%s url=%s status=%ld ms=%lld "
                "bytes_out=%lld bytes_in=%lld new_connections=%ld curl=%d", r->op, r->method,
                redacted_url, r->status,
                (long long)(dsp_mono_ms() - r->start_ms), (long long)up, (long long)down,
                new_conns, (int)rc);
        free(redacted_url);
    }
    http_give(s, r->easy);
    r->easy = NULL;
    r->reached_server = 1;

    dsp_s3_target(s, r->key ? r->key : r->named_prefix, t, sizeof t);
    if (rc != CURLE_OK) {
        dsp_status cls = DSP_ETRANSIENT;
        if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
            rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
            cls = DSP_EPERM;
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
            r->reached_server = 0;
        if (r->sink)
            r->sink->len = r->sink_start;
        return dsp_err_set(err, cls, "%s %s: %s (curl error %d)", r->op, t, curl_easy_strerror(rc),
                           (int)rc);
    }
    if (r->status >= 200 && r->status < 300) {
        if (r->fault == DSP_FAULT_TRUNCATE) {
            /* Like a real short body (CURLE_PARTIAL_FILE): the attempt's
             * bytes are discarded and the request is retried. */
            if (r->sink)
                r->sink->len = r->sink_start;
            return dsp_err_set(err, DSP_ETRANSIENT, "%s %s: response body cut short (injected "
                               "fault)", r->op, t);
        }
        if (r->fault == DSP_FAULT_CPUT500 && r->fop == DSP_FOP_CPUT) {
            r->status = 500;
            return dsp_err_set(err, DSP_ETRANSIENT, "%s %s: HTTP 500 InternalError after a "
                               "conditional PUT (injected fault)", r->op, t);
        }
        return DSP_OK;
    }
    if (r->sink)
        r->sink->len = r->sink_start;
    st = http_classify(s, r, err);
    return st;
}

dsp_status dsp_s3_req_attempt(dsp_s3_store *s, dsp_s3_req *r, dsp_err *err)
{
    dsp_status st = dsp_s3_req_start(s, r, err);
    if (st != DSP_OK || !r->easy)
        return st;
    CURLcode rc = curl_easy_perform(r->easy);
    return dsp_s3_req_finish(s, r, rc, err);
}

dsp_status dsp_s3_req_run(dsp_s3_store *s, dsp_s3_req *r, dsp_err *err)
{
    dsp_retry_state rs;
    char t[1200];
    dsp_status st;

    dsp_retry_begin(&rs, &s->base.retry);
    for (;;) {
        st = dsp_s3_req_attempt(s, r, err);
        if (st == DSP_OK)
            return DSP_OK;
        if (!dsp_retry_again(&rs, err, r->op, dsp_s3_target(s, r->key ? r->key : r->named_prefix, t, sizeof t)))
            return st;
        atomic_fetch_add(&s->base.stats.retries, 1);
    }
}
