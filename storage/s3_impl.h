/*
 * s3_impl.h - internals shared by the S3 backend's files: the store handle,
 * one HTTP request with its retry loop (s3_http.c), the small XML reader
 * (s3_xml.c), and the streaming writer and reader (s3_stream.c).
 * Only storage/s3*.c include this.
 */
#ifndef DSP_S3_IMPL_H
#define DSP_S3_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include <curl/curl.h>

#include "../core/buf.h"
#include "s3_creds.h"
#include "store_impl.h"

typedef struct {
    dsp_store base; /* must be first */
    char *bucket;
    char *prefix;       /* key prefix inside the bucket without '/', "" for none */
    char *scheme;       /* "http" or "https" */
    char *host;         /* Host header: host[:port], with the bucket for virtual-hosted */
    int path_style;
    char *region;
    char *ca_bundle;    /* AWS_CA_BUNDLE, or NULL for the system store */
    size_t unsigned_payload_min; /* bodies this large are sent as UNSIGNED-PAYLOAD */
    dsp_s3_creds_chain *creds;

    CURLSH *share; /* shared connection cache, DNS cache and TLS sessions */
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

    pthread_mutex_t pool_lock; /* idle easy handles, reused between requests */
    CURL **pool;
    size_t pool_len, pool_cap;
} dsp_s3_store;

#define DSP_S3_MAX_HEADERS 8

/* One S3 request. Fill the inputs, then dsp_s3_req_run() (synchronous, with
 * retries) or dsp_s3_req_start()/dsp_s3_req_finish() around a curl multi. */
typedef struct {
    /* inputs */
    const char *op;    /* operation name for messages and logs, e.g. "get" */
    dsp_fault_op fop;  /* which fault-injection class this request is */
    _Atomic uint64_t *counter; /* stats counter bumped per attempt, or NULL */
    int count_bytes;           /* add the bytes moved to the store's stats */
    const char *method;
    const char *key;   /* full key in the bucket; NULL for a bucket request */
    const char *named_prefix; /* prefix that messages name for a bucket request, or NULL */
    const char *query; /* canonical query string (dsp_sigv4_query), NULL for none */
    const char *header_names[DSP_S3_MAX_HEADERS]; /* lower case; signed */
    const char *header_values[DSP_S3_MAX_HEADERS];
    int nheaders;
    const void *body;
    size_t body_len;
    const char *payload_hash; /* hex SHA-256 of body; NULL computes it */
    dsp_buf *sink;            /* 2xx response body goes here; NULL: into resp */

    /* per attempt */
    CURL *easy;
    struct curl_slist *slist;
    dsp_fault_kind fault;
    size_t upload_pos;
    size_t sink_start;
    int64_t start_ms;
    char payload_hash_buf[65];

    /* outputs */
    long status;
    char etag[DSP_ETAG_MAX]; /* without quotes */
    int64_t content_length;  /* -1 when absent */
    int64_t range_total;     /* object size from Content-Range, -1 when absent */
    int64_t mtime_ms;
    char write_id[40];       /* x-amz-meta-dsp-write-id of the object, "" when absent */
    dsp_buf resp;            /* error bodies and bodies without a sink */
    int reached_server;      /* the request may have been applied */
} dsp_s3_req;

void dsp_s3_req_init(dsp_s3_req *r, const char *op, dsp_fault_op fop, _Atomic uint64_t *counter,
                     const char *method, const char *key);
void dsp_s3_req_header(dsp_s3_req *r, const char *name, const char *value);
void dsp_s3_req_free(dsp_s3_req *r);

/*
 * Prepare one attempt. Returns DSP_OK with r->easy ready to perform, or the
 * failure an injected fault stands for (r->easy is then NULL and the caller
 * treats it like a finished attempt).
 */
dsp_status dsp_s3_req_start(dsp_s3_store *s, dsp_s3_req *r, dsp_err *err);
/* Classify a performed attempt and release its easy handle. */
dsp_status dsp_s3_req_finish(dsp_s3_store *s, dsp_s3_req *r, CURLcode rc, dsp_err *err);
/* Run one attempt synchronously (start, perform, finish). */
dsp_status dsp_s3_req_attempt(dsp_s3_store *s, dsp_s3_req *r, dsp_err *err);
/* Run attempts with capped exponential backoff until the result is final. */
dsp_status dsp_s3_req_run(dsp_s3_store *s, dsp_s3_req *r, dsp_err *err);

/* "s3://bucket/key" for messages, into buf. */
const char *dsp_s3_target(const dsp_s3_store *s, const char *full_key, char *buf, size_t cap);
/* prefix + "/" + key (malloc'ed). */
char *dsp_s3_full_key(const dsp_s3_store *s, const char *key);
/* Return a copy of url, which the caller frees, with the user name and
 * password of http://user:pass@host replaced by "REDACTED", for logs and
 * error messages. */
char *dsp_s3_redact_url(const char *url);

/* ---- XML (s3_xml.c) ---- */

/* Find the first <tag>...</tag> inside [*pos, end); on success set the
 * content range and move *pos past the closing tag. <tag/> gives "". */
int dsp_s3_xml_next(const char **pos, const char *end, const char *tag, const char **vstart,
                    const char **vend);
/* Decode the XML entities of [start, end) into out (replacing it). */
void dsp_s3_xml_text(const char *start, const char *end, dsp_buf *out);
/* Append s with &, <, >, " and ' escaped. */
void dsp_s3_xml_escape(dsp_buf *out, const char *s);
/* Decode %XX (and '+' as space) in place, for encoding-type=url listings. */
void dsp_s3_url_decode(char *s);
/* Copy the text of the first <tag> in [start, end) into out; 0 when absent. */
int dsp_s3_xml_get(const char *start, const char *end, const char *tag, char *out, size_t cap);

/* ---- streaming (s3_stream.c) ---- */

dsp_status dsp_s3_writer_open(dsp_store *store, const char *key, const dsp_writer_opts *opts,
                              dsp_writer **out, dsp_err *err);
dsp_status dsp_s3_reader_open(dsp_store *store, const char *key, uint64_t offset, int64_t length,
                              const dsp_reader_opts *opts, dsp_reader **out, dsp_err *err);

#endif
