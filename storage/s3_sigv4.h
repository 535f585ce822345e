/*
 * s3_sigv4.h - AWS Signature Version 4 for S3 requests.
 *
 * The caller builds the canonical pieces (encoded path, sorted query, the
 * headers to sign) and this module turns them into the Authorization header
 * value. Pure functions with no I/O, so tests can check them against the
 * published AWS vectors.
 */
#ifndef DSP_S3_SIGV4_H
#define DSP_S3_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "../core/buf.h"

/* SHA-256 of an empty body, the payload hash of every bodiless request. */
#define DSP_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
    const char *name;  /* any case; signed in lower case */
    const char *value; /* leading and trailing spaces are trimmed when signed */
} dsp_sigv4_header;

typedef struct {
    const char *method;          /* "GET", "PUT", ... */
    const char *canonical_uri;   /* already percent-encoded path, e.g. "/b/a%20b" */
    const char *canonical_query; /* from dsp_sigv4_query(), "" when none */
    const dsp_sigv4_header *headers; /* must include host and x-amz-date */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body or "UNSIGNED-PAYLOAD" */
} dsp_sigv4_request;

typedef struct {
    const char *access_key;
    const char *secret_key;
    const char *region;
    const char *service; /* "s3" */
    const char *amz_date; /* "20130524T000000Z" */
} dsp_sigv4_signer;

/*
 * Append s to out percent-encoded as SigV4 requires: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) stay, every other byte becomes %XX in upper case.
 * '/' stays when keep_slash is set (object paths) and is encoded otherwise
 * (query keys and values).
 */
void dsp_sigv4_uri_encode(dsp_buf *out, const char *s, int keep_slash);

/*
 * Build a canonical query string from n name/value pairs (values may be ""
 * or NULL): each side encoded, pairs sorted by encoded name then value,
 * joined with '&'. The result is also the query string to send.
 */
void dsp_sigv4_query(dsp_buf *out, const char *const *names, const char *const *values, size_t n);

/* Format t (UTC) as the x-amz-date value "YYYYMMDDTHHMMSSZ" (17 bytes). */
void dsp_sigv4_amz_date(time_t t, char out[17]);

/* Write the canonical request (for tests and debugging) into out. */
void dsp_sigv4_canonical_request(const dsp_sigv4_request *req, dsp_buf *out);

/*
 * Compute the Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") into out. signature_hex (optional,
 * 65 bytes) receives the bare signature.
 */
void dsp_sigv4_sign(const dsp_sigv4_signer *signer, const dsp_sigv4_request *req, dsp_buf *out,
                    char *signature_hex);

#endif
