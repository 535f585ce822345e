/*
 * store.c - open a store from its URI and dispatch every call to its backend.
 *
 * This file holds only what all backends share: URI parsing, key
 * validation, request counters, concatenating list pages, and splitting
 * deletes into batches of 1,000 keys. A valid key is non-empty and at most
 * DSP_KEY_MAX bytes long. It cannot contain a NUL because it is a C string. Retries and fault simulation live in the
 * backends, because only they know which step of a request failed. The
 * backends also count the requests of streaming readers and writers
 * (parts, ranged GETs), which these wrappers cannot see.
 */
#include "store_impl.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"

/* S3 limits keys to 1,024 bytes of UTF-8. */
#define DSP_KEY_MAX 1024
#define DSP_DELETE_BATCH 1000

static atomic_int fault_warned;

static dsp_status check_key(const dsp_store *s, const char *op, const char *key, dsp_err *err)
{
    if (!key || !*key)
        return dsp_err_set(err, DSP_EINVAL, "%s %s: the key is empty", op, s->uri);
    size_t len = strnlen(key, DSP_KEY_MAX + 1);
    if (len > DSP_KEY_MAX)
        return dsp_err_set(err, DSP_EINVAL,
                           "%s %s: key '%.64s...' is longer than %d bytes", op, s->uri, key,
                           DSP_KEY_MAX);
    return DSP_OK;
}

static int has_scheme(const char *uri, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncmp(uri, scheme, n) == 0 && strncmp(uri + n, "://", 3) == 0;
}

/* Return the length of a "scheme://" prefix, or 0 when uri has none. */
static size_t scheme_len(const char *uri)
{
    const char *p = uri;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '-' || *p == '.')
        p++;
    if (p > uri && strncmp(p, "://", 3) == 0)
        return (size_t)(p - uri);
    return 0;
}

/* Turn "file:///abs" or a plain path into a local directory path, or reject. */
static dsp_status local_dir_of(const char *uri, const char **dir, dsp_err *err)
{
    if (has_scheme(uri, "file")) {
        const char *path = uri + strlen("file://");
        if (path[0] != '/')
            return dsp_err_set(err, DSP_EINVAL,
                               "invalid store URI '%s': a file URI needs an absolute path "
                               "(file:///abs/dir) and no host",
                               uri);
        *dir = path;
        return DSP_OK;
    }
    *dir = uri;
    return DSP_OK;
}

dsp_status dsp_store_open(const char *uri, const dsp_store_config *cfg, dsp_store **out,
                          dsp_err *err)
{
    static const dsp_store_config no_config = {0};
    dsp_store *s = NULL;
    dsp_status rc;

    *out = NULL;
    if (!cfg)
        cfg = &no_config;
    if (!uri || !*uri)
        return dsp_err_set(err, DSP_EINVAL,
                           "missing store URI: give a directory, file:///abs/dir or "
                           "s3://bucket/prefix (or set DSPARK_STORE)");

    if (has_scheme(uri, "s3")) {
        rc = dsp_s3_open(uri + strlen("s3://"), cfg, &s, err);
    } else if (has_scheme(uri, "file") || scheme_len(uri) == 0) {
        const char *dir = NULL;
        rc = local_dir_of(uri, &dir, err);
        if (rc == DSP_OK)
            rc = dsp_local_open(dir, &s, err);
    } else {
        return dsp_err_set(err, DSP_EINVAL,
                           "unsupported store URI '%s': expected a directory path, "
                           "file:///abs/dir or s3://bucket/prefix",
                           uri);
    }
    if (rc != DSP_OK)
        return rc;

    dsp_retry_default(&s->retry);
    if (cfg->max_attempts > 0)
        s->retry.max_attempts = cfg->max_attempts;

    const char *spec = cfg->faults ? cfg->faults : getenv("DSPARK_FAULTS");
    if (spec && *spec) {
        rc = dsp_fault_parse(spec, &s->faults, err);
        if (rc != DSP_OK) {
            dsp_err_prefix(err, "opening %s", s->uri);
            dsp_store_close(s);
            return rc;
        }
        if (atomic_exchange(&fault_warned, 1) == 0) {
            DSP_WARN("fault_injection_on", "store=%s spec=%s", s->uri, spec);
        }
    }
    *out = s;
    return DSP_OK;
}

void dsp_store_close(dsp_store *s)
{
    if (!s)
        return;
    dsp_fault_free(s->faults);
    s->faults = NULL;
    s->ops->close(s);
}

const char *dsp_store_uri(const dsp_store *s)
{
    return s->uri;
}

const char *dsp_store_kind(const dsp_store *s)
{
    return s->ops->kind;
}

dsp_status dsp_uri_split(const char *uri, char **root, char **key, dsp_err *err)
{
    *root = NULL;
    *key = NULL;
    if (!uri || !*uri)
        return dsp_err_set(err, DSP_EINVAL, "missing object URI");

    if (has_scheme(uri, "s3")) {
        const char *bucket = uri + strlen("s3://");
        const char *slash = strchr(bucket, '/');
        if (!slash || slash == bucket || !slash[1])
            return dsp_err_set(err, DSP_EINVAL,
                               "invalid object URI '%s': expected s3://bucket/key", uri);
        *root = dsp_xstrndup(uri, (size_t)(slash - uri));
        *key = dsp_xstrdup(slash + 1);
        return DSP_OK;
    }
    if (scheme_len(uri) != 0 && !has_scheme(uri, "file"))
        return dsp_err_set(err, DSP_EINVAL,
                           "unsupported object URI '%s': expected a path, file:///abs/path or "
                           "s3://bucket/key",
                           uri);

    const char *path = NULL;
    dsp_status rc = local_dir_of(uri, &path, err);
    if (rc != DSP_OK)
        return rc;
    size_t prefix_len = (size_t)(path - uri);
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *root = dsp_xstrdup(".");
        *key = dsp_xstrdup(path);
        return DSP_OK;
    }
    if (!slash[1])
        return dsp_err_set(err, DSP_EINVAL,
                           "invalid object URI '%s': it ends with '/', so it names a "
                           "directory, not an object",
                           uri);
    if (slash == path)
        *root = dsp_xasprintf("%.*s/", (int)prefix_len, uri);
    else
        *root = dsp_xstrndup(uri, (size_t)(slash - uri));
    *key = dsp_xstrdup(slash + 1);
    return DSP_OK;
}

char *dsp_uri_join(const char *root, const char *key)
{
    size_t n = strlen(root);
    if (n > 0 && root[n - 1] == '/')
        return dsp_xasprintf("%s%s", root, key);
    return dsp_xasprintf("%s/%s", root, key);
}

char *dsp_store_object_name(const dsp_store *s, const char *key)
{
    const char *root = s->uri;
    if (strncmp(root, "file://", 7) == 0)
        root += 7;
    return dsp_uri_join(root, key);
}

dsp_status dsp_store_get(dsp_store *s, const char *key, uint64_t offset, int64_t length,
                         dsp_buf *out, dsp_obj_info *info, dsp_err *err)
{
    dsp_status rc = check_key(s, "get", key, err);
    if (rc != DSP_OK)
        return rc;
    atomic_fetch_add(&s->stats.get, 1);
    rc = s->ops->get(s, key, offset, length, out, info, err);
    if (rc == DSP_OK)
        atomic_fetch_add(&s->stats.bytes_in, out->len);
    return rc;
}

dsp_status dsp_store_head(dsp_store *s, const char *key, dsp_obj_info *info, dsp_err *err)
{
    dsp_status rc = check_key(s, "head", key, err);
    if (rc != DSP_OK)
        return rc;
    atomic_fetch_add(&s->stats.head, 1);
    return s->ops->head(s, key, info, err);
}

dsp_status dsp_store_put(dsp_store *s, const char *key, const void *data, size_t len,
                         const dsp_put_opts *opts, dsp_obj_info *info, dsp_err *err)
{
    dsp_status rc = check_key(s, "put", key, err);
    if (rc != DSP_OK)
        return rc;
    if (opts && opts->cond == DSP_PUT_IF_MATCH && (!opts->if_match || !*opts->if_match))
        return dsp_err_set(err, DSP_EINVAL, "put %s key %s: compare-and-swap without an ETag",
                           s->uri, key);
    atomic_fetch_add(&s->stats.put, 1);
    rc = s->ops->put(s, key, data, len, opts, info, err);
    if (rc == DSP_OK)
        atomic_fetch_add(&s->stats.bytes_out, len);
    return rc;
}

dsp_status dsp_store_copy(dsp_store *s, const char *src_key, const char *dst_key,
                          dsp_obj_info *info, dsp_err *err)
{
    dsp_status rc = check_key(s, "copy", src_key, err);
    if (rc == DSP_OK)
        rc = check_key(s, "copy", dst_key, err);
    if (rc != DSP_OK)
        return rc;
    atomic_fetch_add(&s->stats.copy, 1);
    return s->ops->copy(s, src_key, dst_key, info, err);
}

dsp_status dsp_store_delete(dsp_store *s, const char *const *keys, size_t n, dsp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        dsp_status rc = check_key(s, "delete", keys[i], err);
        if (rc != DSP_OK)
            return rc;
    }
    for (size_t done = 0; done < n; done += DSP_DELETE_BATCH) {
        size_t batch = n - done < DSP_DELETE_BATCH ? n - done : DSP_DELETE_BATCH;
        atomic_fetch_add(&s->stats.del, 1);
        dsp_status rc = s->ops->delete_batch(s, keys + done, batch, err);
        if (rc != DSP_OK)
            return rc;
    }
    return DSP_OK;
}

dsp_status dsp_store_list_page(dsp_store *s, const char *prefix, const char *delimiter,
                               const char *token, size_t max_keys, dsp_list_page *page,
                               dsp_err *err)
{
    memset(page, 0, sizeof *page);
    if (max_keys == 0 || max_keys > 1000)
        max_keys = 1000;
    if (delimiter && !*delimiter)
        delimiter = NULL;
    if (token && !*token)
        token = NULL;
    atomic_fetch_add(&s->stats.list, 1);
    return s->ops->list_page(s, prefix ? prefix : "", delimiter, token, max_keys, page, err);
}

dsp_status dsp_store_list_all(dsp_store *s, const char *prefix, const char *delimiter,
                              dsp_list_page *out, dsp_err *err)
{
    size_t cap_items = 0, cap_prefixes = 0;
    char *token = NULL;
    dsp_status rc = DSP_OK;

    memset(out, 0, sizeof *out);
    for (;;) {
        dsp_list_page page;
        rc = dsp_store_list_page(s, prefix, delimiter, token, 1000, &page, err);
        free(token);
        token = NULL;
        if (rc != DSP_OK)
            break;

        if (out->n + page.n > cap_items) {
            cap_items = (out->n + page.n) * 2;
            out->items = dsp_xrealloc(out->items, cap_items * sizeof *out->items);
        }
        if (page.n)
            memcpy(out->items + out->n, page.items, page.n * sizeof *page.items);
        out->n += page.n;
        if (out->nprefixes + page.nprefixes > cap_prefixes) {
            cap_prefixes = (out->nprefixes + page.nprefixes) * 2;
            out->prefixes = dsp_xrealloc(out->prefixes, cap_prefixes * sizeof *out->prefixes);
        }
        if (page.nprefixes)
            memcpy(out->prefixes + out->nprefixes, page.prefixes,
                   page.nprefixes * sizeof *page.prefixes);
        out->nprefixes += page.nprefixes;

        /* The entries now belong to out; free only the page's arrays. */
        token = page.next_token;
        free(page.items);
        free(page.prefixes);
        if (!token)
            break;
    }
    if (rc != DSP_OK)
        dsp_list_page_free(out);
    return rc;
}

void dsp_list_page_free(dsp_list_page *page)
{
    if (!page)
        return;
    for (size_t i = 0; i < page->n; i++)
        free(page->items[i].key);
    for (size_t i = 0; i < page->nprefixes; i++)
        free(page->prefixes[i]);
    free(page->items);
    free(page->prefixes);
    free(page->next_token);
    memset(page, 0, sizeof *page);
}

dsp_status dsp_store_writer_open(dsp_store *s, const char *key, const dsp_writer_opts *opts,
                                 dsp_writer **out, dsp_err *err)
{
    static const dsp_writer_opts defaults = {0};
    *out = NULL;
    dsp_status rc = check_key(s, "write", key, err);
    if (rc != DSP_OK)
        return rc;
    return s->ops->writer_open(s, key, opts ? opts : &defaults, out, err);
}

dsp_status dsp_writer_write(dsp_writer *w, const void *data, size_t len, dsp_err *err)
{
    if (len == 0)
        return DSP_OK;
    return w->ops->write(w, data, len, err);
}

dsp_status dsp_writer_close(dsp_writer *w, dsp_obj_info *info, dsp_err *err)
{
    return w->ops->close(w, info, err);
}

void dsp_writer_abort(dsp_writer *w)
{
    if (w)
        w->ops->abort(w);
}

/* A planned input that no longer exists is a permanent error (DSP_EINVAL),
 * like one that changed: retrying the task cannot bring it back. */
static dsp_status store_deleted_error(const dsp_store *s, const char *key,
                                      const dsp_obj_info *planned, dsp_err *err)
{
    char *name = dsp_store_object_name(s, key);
    dsp_status rc = dsp_err_set(err, DSP_EINVAL,
                                "input %s was deleted after the job was planned, when it was "
                                "%llu bytes with ETag %s; restore it, or run the spec as a new "
                                "job (dspark run, or dspark submit with a new --job-id) to plan "
                                "without it",
                                name, (unsigned long long)planned->size,
                                planned->etag[0] ? planned->etag : "(not recorded)");
    free(name);
    return rc;
}

dsp_status dsp_store_reader_open(dsp_store *s, const char *key, uint64_t offset, int64_t length,
                                 const dsp_reader_opts *opts, dsp_reader **out, dsp_err *err)
{
    static const dsp_reader_opts defaults = {0};
    *out = NULL;
    dsp_status rc = check_key(s, "read", key, err);
    if (rc != DSP_OK)
        return rc;
    if (!opts)
        opts = &defaults;
    rc = s->ops->reader_open(s, key, offset, length, opts, out, err);
    if (rc == DSP_ENOTFOUND && opts->expect)
        return store_deleted_error(s, key, opts->expect, err);
    if (rc == DSP_OK && opts->expect && !dsp_store_info_matches(&(*out)->info, opts->expect)) {
        rc = dsp_store_changed_error(s, key, &(*out)->info, opts->expect, err);
        dsp_reader_close(*out);
        *out = NULL;
    }
    return rc;
}

int dsp_store_info_matches(const dsp_obj_info *now, const dsp_obj_info *planned)
{
    if (now->size != planned->size)
        return 0;
    return !planned->etag[0] || strcmp(now->etag, planned->etag) == 0;
}

dsp_status dsp_store_changed_error(const dsp_store *s, const char *key, const dsp_obj_info *now,
                                   const dsp_obj_info *planned, dsp_err *err)
{
    char *name = dsp_store_object_name(s, key);
    dsp_status rc = dsp_err_set(err, DSP_EINVAL,
                                "input %s changed after the job was planned: it is now %llu "
                                "bytes with ETag %s, but was %llu bytes with ETag %s when the "
                                "job was planned; run it as a new job (dspark run, or dspark submit "
                                "with a new --job-id) to read the new version",
                                name, (unsigned long long)now->size,
                                now->etag[0] ? now->etag : "(none)",
                                (unsigned long long)planned->size,
                                planned->etag[0] ? planned->etag : "(not recorded)");
    free(name);
    return rc;
}

dsp_status dsp_reader_read(dsp_reader *r, void *buf, size_t cap, size_t *got, dsp_err *err)
{
    *got = 0;
    if (cap == 0)
        return DSP_OK;
    return r->ops->read(r, buf, cap, got, err);
}

const dsp_obj_info *dsp_reader_info(const dsp_reader *r)
{
    return &r->info;
}

void dsp_reader_close(dsp_reader *r)
{
    if (r)
        r->ops->close(r);
}

void dsp_store_get_stats(const dsp_store *s, dsp_store_stats *out)
{
    dsp_store *m = (dsp_store *)s; /* atomic_load needs a non-const object */
    out->get = atomic_load(&m->stats.get);
    out->head = atomic_load(&m->stats.head);
    out->put = atomic_load(&m->stats.put);
    out->list = atomic_load(&m->stats.list);
    out->del = atomic_load(&m->stats.del);
    out->copy = atomic_load(&m->stats.copy);
    out->mpu_parts = atomic_load(&m->stats.mpu_parts);
    out->mpu_other = atomic_load(&m->stats.mpu_other);
    out->retries = atomic_load(&m->stats.retries);
    out->bytes_in = atomic_load(&m->stats.bytes_in);
    out->bytes_out = atomic_load(&m->stats.bytes_out);
}
