/*
 * store.h - the object-store interface that every other layer uses.
 *
 * A store is opened from a URI and addresses objects by key relative to the
 * URI's prefix:
 *   /abs/dir, rel/dir, file:///abs/dir   local directory (embedded default)
 *   s3://bucket[/prefix]                 S3-compatible server; endpoint,
 *                                        region and credentials from the
 *                                        AWS_* environment (see s3_creds.h)
 *
 * Guarantees every backend keeps:
 *   - put is atomic: readers see the old object or the whole new one.
 *   - DSP_PUT_IF_ABSENT succeeds for exactly one of any number of
 *     concurrent writers; the others get DSP_EPRECOND.
 *   - DSP_PUT_IF_MATCH succeeds only when the current ETag equals the one
 *     given; otherwise DSP_EPRECOND (DSP_ENOTFOUND when the key is gone).
 *   - a streaming writer makes nothing visible until dsp_writer_close()
 *     succeeds; dsp_writer_abort() leaves no object and no parts behind.
 *   - listings come back in S3 order (ascending unsigned bytes of the key).
 *   - transient errors (5xx, SlowDown, timeouts, resets, short bodies) are
 *     retried inside the backend with capped exponential backoff and full
 *     jitter. An error that reaches the caller is final.
 *   - a handle may be used from several threads at once.
 *
 * Errors name the operation, the store URI and the key.
 */
#ifndef DSP_STORE_H
#define DSP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../core/err.h"

typedef struct dsp_store dsp_store;
typedef struct dsp_writer dsp_writer;
typedef struct dsp_reader dsp_reader;

#define DSP_ETAG_MAX 128

typedef struct {
    uint64_t size;
    char etag[DSP_ETAG_MAX]; /* opaque, without surrounding quotes */
    int64_t mtime_ms;        /* 0 when unknown */
} dsp_obj_info;

typedef enum {
    DSP_PUT_ALWAYS = 0, /* plain overwrite */
    DSP_PUT_IF_ABSENT,  /* create-only: If-None-Match: * */
    DSP_PUT_IF_MATCH    /* compare-and-swap: If-Match: <etag> */
} dsp_put_cond;

typedef struct {
    dsp_put_cond cond;
    const char *if_match;     /* ETag for DSP_PUT_IF_MATCH */
    const char *content_type; /* NULL: application/octet-stream */
} dsp_put_opts;

/* Settings that override the environment; any field may be 0/NULL. */
typedef struct {
    const char *endpoint;   /* S3 endpoint URL, e.g. http://127.0.0.1:7480 */
    const char *region;     /* S3 region, e.g. us-east-1 */
    const char *faults;     /* fault-injection spec, see fault.h; else DSPARK_FAULTS */
    int path_style;         /* 1 forces path-style; 0 or -1 picks automatically (path-style
                             * when an endpoint is set or the bucket has dots) */
    int max_attempts;       /* retries of transient errors; 0 = default */
} dsp_store_config;

dsp_status dsp_store_open(const char *uri, const dsp_store_config *cfg, dsp_store **out,
                          dsp_err *err);
void dsp_store_close(dsp_store *s);
/* The URI the store was opened with, normalized ("file:///abs", "s3://b/p"). */
const char *dsp_store_uri(const dsp_store *s);
/* "local" or "s3". */
const char *dsp_store_kind(const dsp_store *s);

/*
 * Split a full object URI ("s3://bucket/a/b.json", "/data/x.jsonl.gz") into
 * the root to open a store with and the key inside it. For local paths the
 * root is the parent directory. Both outputs are malloc'ed.
 */
dsp_status dsp_uri_split(const char *uri, char **root, char **key, dsp_err *err);
/* Join a store URI and a key into a full object URI (malloc'ed). */
char *dsp_uri_join(const char *root, const char *key);
/* Name an object of s for messages and reject records: "s3://bucket/p/key"
 * for S3, the absolute path for a local store (malloc'ed). */
char *dsp_store_object_name(const dsp_store *s, const char *key);

/* Read [offset, offset+length) into out (replacing its contents); length -1
 * reads to the end. A range past the end returns 0 bytes, not an error.
 * info (optional) receives size and ETag of the whole object. */
dsp_status dsp_store_get(dsp_store *s, const char *key, uint64_t offset, int64_t length,
                         dsp_buf *out, dsp_obj_info *info, dsp_err *err);
dsp_status dsp_store_head(dsp_store *s, const char *key, dsp_obj_info *info, dsp_err *err);
/* Put a whole object. opts may be NULL (unconditional). info (optional)
 * receives the new ETag and size. */
dsp_status dsp_store_put(dsp_store *s, const char *key, const void *data, size_t len,
                         const dsp_put_opts *opts, dsp_obj_info *info, dsp_err *err);
/* Server-side copy (CopyObject for S3, a hard link or copy for local). */
dsp_status dsp_store_copy(dsp_store *s, const char *src_key, const char *dst_key,
                          dsp_obj_info *info, dsp_err *err);
/* Delete keys; missing keys are not an error. Batched (1,000 per request). */
dsp_status dsp_store_delete(dsp_store *s, const char *const *keys, size_t n, dsp_err *err);

typedef struct {
    char *key;
    uint64_t size;
    char etag[DSP_ETAG_MAX];
    int64_t mtime_ms;
} dsp_list_entry;

typedef struct {
    dsp_list_entry *items;
    size_t n;
    char **prefixes; /* common prefixes when a delimiter was given */
    size_t nprefixes;
    char *next_token; /* NULL when this was the last page */
} dsp_list_page;

/* One page of at most max_keys (0 = backend default, at most 1,000) keys
 * under prefix, after continuation token `token` (NULL for the first). */
dsp_status dsp_store_list_page(dsp_store *s, const char *prefix, const char *delimiter,
                               const char *token, size_t max_keys, dsp_list_page *page,
                               dsp_err *err);
/* All pages concatenated into one. */
dsp_status dsp_store_list_all(dsp_store *s, const char *prefix, const char *delimiter,
                              dsp_list_page *out, dsp_err *err);
void dsp_list_page_free(dsp_list_page *page);

typedef struct {
    size_t part_size;   /* bytes per multipart part; 0 = default (8 MiB) */
    int parallel;       /* parts in flight; 0 = default (4) */
    const char *content_type;
} dsp_writer_opts;

dsp_status dsp_store_writer_open(dsp_store *s, const char *key, const dsp_writer_opts *opts,
                                 dsp_writer **out, dsp_err *err);
dsp_status dsp_writer_write(dsp_writer *w, const void *data, size_t len, dsp_err *err);
/* Make the object visible and free the writer, whatever the result. */
dsp_status dsp_writer_close(dsp_writer *w, dsp_obj_info *info, dsp_err *err);
/* Discard everything written and free the writer. */
void dsp_writer_abort(dsp_writer *w);

typedef struct {
    size_t chunk_size; /* bytes per ranged GET; 0 = default (8 MiB) */
    int readahead;     /* ranged GETs in flight; 0 = default (4) */
    /* Optional: size and ETag of the object when the job was planned. A
     * reader then returns only bytes of that version: when the object has
     * another size or ETag, the open or a read fails with DSP_EINVAL naming
     * the key, both sizes and both ETags. An empty etag checks the size only.
     * With an ETag the S3 backend skips its HEAD and sends the ETag as
     * If-Match on every ranged GET; the local backend compares it at open
     * and keeps that version open. */
    const dsp_obj_info *expect;
} dsp_reader_opts;

/* Stream [offset, offset+length) of an object; length -1 = to the end. */
dsp_status dsp_store_reader_open(dsp_store *s, const char *key, uint64_t offset, int64_t length,
                                 const dsp_reader_opts *opts, dsp_reader **out, dsp_err *err);
/* Read up to cap bytes; *got = 0 means end of range. */
dsp_status dsp_reader_read(dsp_reader *r, void *buf, size_t cap, size_t *got, dsp_err *err);
/* Size of the whole object and its ETag, as seen when the reader opened. */
const dsp_obj_info *dsp_reader_info(const dsp_reader *r);
void dsp_reader_close(dsp_reader *r);

/* Request and retry counters since the store was opened. */
typedef struct {
    uint64_t get, head, put, list, del, copy, mpu_parts, mpu_other;
    uint64_t retries;
    uint64_t bytes_in, bytes_out;
} dsp_store_stats;
void dsp_store_get_stats(const dsp_store *s, dsp_store_stats *out);

#endif
