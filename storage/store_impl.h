/*
 * store_impl.h - what a backend implements. Only storage/ includes this.
 *
 * store.c owns dispatch and the parts common to all backends (URI parsing,
 * list_all, batching deletes into groups of 1,000, statistics); a backend
 * fills a dsp_store_ops table and embeds struct dsp_store first in its own
 * handle struct.
 *
 * Retries live inside the backend (because a multipart upload must retry a
 * single part, not the whole object). Each attempt of each request first
 * asks the fault layer (fault.h) whether to fail, so injected faults travel
 * through exactly the code paths that real ones do.
 */
#ifndef DSP_STORE_IMPL_H
#define DSP_STORE_IMPL_H

#include <stdatomic.h>

#include "fault.h"
#include "retry.h"
#include "store.h"

struct dsp_store_ops {
    const char *kind;
    dsp_status (*get)(dsp_store *s, const char *key, uint64_t offset, int64_t length,
                      dsp_buf *out, dsp_obj_info *info, dsp_err *err);
    dsp_status (*head)(dsp_store *s, const char *key, dsp_obj_info *info, dsp_err *err);
    dsp_status (*put)(dsp_store *s, const char *key, const void *data, size_t len,
                      const dsp_put_opts *opts, dsp_obj_info *info, dsp_err *err);
    dsp_status (*copy)(dsp_store *s, const char *src, const char *dst, dsp_obj_info *info,
                       dsp_err *err);
    /* n <= 1000 */
    dsp_status (*delete_batch)(dsp_store *s, const char *const *keys, size_t n, dsp_err *err);
    dsp_status (*list_page)(dsp_store *s, const char *prefix, const char *delimiter,
                            const char *token, size_t max_keys, dsp_list_page *page,
                            dsp_err *err);
    dsp_status (*writer_open)(dsp_store *s, const char *key, const dsp_writer_opts *opts,
                              dsp_writer **out, dsp_err *err);
    dsp_status (*reader_open)(dsp_store *s, const char *key, uint64_t offset, int64_t length,
                              const dsp_reader_opts *opts, dsp_reader **out, dsp_err *err);
    void (*close)(dsp_store *s);
};

struct dsp_store {
    const struct dsp_store_ops *ops;
    char *uri;              /* normalized, no trailing slash */
    dsp_fault *faults;      /* NULL when fault injection is off */
    dsp_retry_policy retry;
    struct {
        _Atomic uint64_t get, head, put, list, del, copy, mpu_parts, mpu_other;
        _Atomic uint64_t retries, bytes_in, bytes_out;
    } stats;
};

struct dsp_writer_ops {
    dsp_status (*write)(dsp_writer *w, const void *data, size_t len, dsp_err *err);
    dsp_status (*close)(dsp_writer *w, dsp_obj_info *info, dsp_err *err);
    void (*abort)(dsp_writer *w);
};

struct dsp_writer {
    const struct dsp_writer_ops *ops;
};

struct dsp_reader_ops {
    dsp_status (*read)(dsp_reader *r, void *buf, size_t cap, size_t *got, dsp_err *err);
    void (*close)(dsp_reader *r);
};

struct dsp_reader {
    const struct dsp_reader_ops *ops;
    dsp_obj_info info;
};

/* Return 1 when an object's size and ETag match the planned ones. An empty
 * planned ETag compares the size only. */
int dsp_store_info_matches(const dsp_obj_info *now, const dsp_obj_info *planned);
/* Set DSP_EINVAL for an input that no longer is the version the job's plan
 * lists, naming the object, both sizes and both ETags. */
dsp_status dsp_store_changed_error(const dsp_store *s, const char *key, const dsp_obj_info *now,
                                   const dsp_obj_info *planned, dsp_err *err);

/* Backend constructors, called by dsp_store_open(). `rest` is the URI
 * without its scheme. They set ops and uri; store.c sets faults and retry. */
dsp_status dsp_local_open(const char *dir, dsp_store **out, dsp_err *err);
dsp_status dsp_s3_open(const char *bucket_and_prefix, const dsp_store_config *cfg,
                       dsp_store **out, dsp_err *err);

#endif
