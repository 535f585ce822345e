/*
 * s3_sigv4.c - AWS Signature Version 4 (header auth) for S3.
 *
 * Follows "Signature Version 4 signing process" in the AWS General
 * Reference: canonical request, string to sign, a signing key derived by
 * chained HMAC-SHA256 over date, region, service and "aws4_request", and
 * the hex HMAC of the string to sign. Headers are signed in lower case,
 * sorted by name, values trimmed with inner runs of spaces collapsed.
 */
#include "s3_sigv4.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../core/util.h"

static int sigv4_is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

void dsp_sigv4_uri_encode(dsp_buf *out, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (sigv4_is_unreserved(*p) || (keep_slash && *p == '/')) {
            dsp_buf_append_char(out, (char)*p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            dsp_buf_append(out, esc, 3);
        }
    }
}

typedef struct {
    char *name;
    char *value;
} sigv4_pair;

static int sigv4_pair_cmp(const void *a, const void *b)
{
    const sigv4_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

void dsp_sigv4_query(dsp_buf *out, const char *const *names, const char *const *values, size_t n)
{
    sigv4_pair *pairs = dsp_xcalloc(n ? n : 1, sizeof *pairs);
    dsp_buf tmp = DSP_BUF_INIT;

    for (size_t i = 0; i < n; i++) {
        dsp_buf_reset(&tmp);
        dsp_sigv4_uri_encode(&tmp, names[i], 0);
        pairs[i].name = dsp_xstrdup(tmp.data ? tmp.data : "");
        dsp_buf_reset(&tmp);
        dsp_sigv4_uri_encode(&tmp, values[i] ? values[i] : "", 0);
        pairs[i].value = dsp_xstrdup(tmp.data ? tmp.data : "");
    }
    qsort(pairs, n, sizeof *pairs, sigv4_pair_cmp);

    dsp_buf_reset(out);
    dsp_buf_append_str(out, "");
    for (size_t i = 0; i < n; i++) {
        if (i)
            dsp_buf_append_char(out, '&');
        dsp_buf_append_str(out, pairs[i].name);
        dsp_buf_append_char(out, '=');
        dsp_buf_append_str(out, pairs[i].value);
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
    dsp_buf_free(&tmp);
}

void dsp_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

typedef struct {
    char name[128];
    const char *value;
} sigv4_hdr;

static int sigv4_hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const sigv4_hdr *)a)->name, ((const sigv4_hdr *)b)->name);
}

/* Append a header value trimmed, with each run of spaces collapsed to one. */
static void sigv4_append_trimmed(dsp_buf *out, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t len = strlen(v);
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    int in_space = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            if (!in_space)
                dsp_buf_append_char(out, ' ');
            in_space = 1;
        } else {
            dsp_buf_append_char(out, v[i]);
            in_space = 0;
        }
    }
}

/* Sorted, lower-cased copy of the headers. The caller frees the array. */
static sigv4_hdr *sigv4_sorted_headers(const dsp_sigv4_request *req)
{
    sigv4_hdr *h = dsp_xcalloc(req->nheaders ? req->nheaders : 1, sizeof *h);
    for (size_t i = 0; i < req->nheaders; i++) {
        size_t j = 0;
        for (; req->headers[i].name[j] && j < sizeof h[i].name - 1; j++) {
            char c = req->headers[i].name[j];
            h[i].name[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        h[i].name[j] = '\0';
        h[i].value = req->headers[i].value;
    }
    qsort(h, req->nheaders, sizeof *h, sigv4_hdr_cmp);
    return h;
}

static void sigv4_signed_headers(const sigv4_hdr *h, size_t n, dsp_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            dsp_buf_append_char(out, ';');
        dsp_buf_append_str(out, h[i].name);
    }
}

void dsp_sigv4_canonical_request(const dsp_sigv4_request *req, dsp_buf *out)
{
    sigv4_hdr *h = sigv4_sorted_headers(req);

    dsp_buf_reset(out);
    dsp_buf_printf(out, "%s\n%s\n%s\n", req->method, req->canonical_uri,
                   req->canonical_query ? req->canonical_query : "");
    for (size_t i = 0; i < req->nheaders; i++) {
        dsp_buf_append_str(out, h[i].name);
        dsp_buf_append_char(out, ':');
        sigv4_append_trimmed(out, h[i].value);
        dsp_buf_append_char(out, '\n');
    }
    dsp_buf_append_char(out, '\n');
    sigv4_signed_headers(h, req->nheaders, out);
    dsp_buf_append_char(out, '\n');
    dsp_buf_append_str(out, req->payload_hash);
    free(h);
}

static void sigv4_hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len);
}

void dsp_sigv4_sign(const dsp_sigv4_signer *signer, const dsp_sigv4_request *req, dsp_buf *out,
                    char *signature_hex)
{
    dsp_buf canonical = DSP_BUF_INIT, to_sign = DSP_BUF_INIT, key = DSP_BUF_INIT;
    char canonical_hash[65], date[9], sig[65];
    unsigned char k[32];

    memcpy(date, signer->amz_date, 8);
    date[8] = '\0';

    dsp_sigv4_canonical_request(req, &canonical);
    dsp_sha256_hex(canonical.data, canonical.len, canonical_hash);
    dsp_buf_printf(&to_sign, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", signer->amz_date,
                   date, signer->region, signer->service, canonical_hash);

    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
    dsp_buf_printf(&key, "AWS4%s", signer->secret_key);
    sigv4_hmac(key.data, key.len, date, k);
    sigv4_hmac(k, 32, signer->region, k);
    sigv4_hmac(k, 32, signer->service, k);
    sigv4_hmac(k, 32, "aws4_request", k);
    sigv4_hmac(k, 32, to_sign.data, k);
    for (int i = 0; i < 32; i++)
        snprintf(sig + 2 * i, 3, "%02x", k[i]);

    sigv4_hdr *h = sigv4_sorted_headers(req);
    dsp_buf_reset(out);
    dsp_buf_printf(out, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=",
                   signer->access_key, date, signer->region, signer->service);
    sigv4_signed_headers(h, req->nheaders, out);
    dsp_buf_printf(out, ", Signature=%s", sig);
    free(h);

    if (signature_hex)
        memcpy(signature_hex, sig, 65);
    /* The derived key and the "AWS4<secret>" buffer are secret material. */
    OPENSSL_cleanse(k, sizeof k);
    if (key.data)
        OPENSSL_cleanse(key.data, key.len);
    dsp_buf_free(&key);
    dsp_buf_free(&canonical);
    dsp_buf_free(&to_sign);
}
