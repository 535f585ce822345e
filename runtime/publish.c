/*
 * publish.c - publish a finished job's output: parts, _MANIFEST.json,
 * _SUCCESS, then state.json "done".
 *
 * Names are part-NNNNN.<ext> counted over the final stage's tasks in task
 * order (and, within a task, in the order of its commit), so the output
 * does not depend on how many workers ran or which attempts won. Rejects go
 * to _rejects/part-NNNNN.<ext>, numbered the same way over the tasks that
 * had rejects.
 */
#include "publish.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "commit.h"
#include "output_lock.h"
#include "protocol.h"
#include "reject_check.h"

#define COPY_CHUNK (8u << 20)
#define COPY_THREADS 8 /* copies in flight; each is one request on S3 */
/* Copies between two reads of the job's state, so that a job cancelled
 * during a long publish stops after at most this many more copies. */
#define COPY_BATCH 64

typedef struct {
    dsp_store *job_store;
    dsp_store *out_store;
    char *out_prefix;       /* key prefix in out_store, without trailing '/' */
    char *src_prefix;       /* job store root as a key prefix in out_store, or NULL */
} publish_ctx;

static const char *json_string(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double json_number(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* "jsonl.zst" from ".../part-00003.jsonl.zst". */
static const char *file_ext(const char *key)
{
    const char *base = strrchr(key, '/');
    const char *dot = strchr(base ? base + 1 : key, '.');
    return dot ? dot + 1 : "jsonl";
}

static dsp_status open_output(publish_ctx *c, const char *output_uri, dsp_err *err)
{
    char *uri = dsp_xstrdup(output_uri);
    char *root = NULL;
    size_t n = strlen(uri);
    dsp_status st;

    while (n > 1 && uri[n - 1] == '/')
        uri[--n] = '\0';
    st = dsp_uri_split(uri, &root, &c->out_prefix, err);
    if (st == DSP_OK)
        st = dsp_store_open(root, NULL, &c->out_store, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "opening output %s", output_uri);
        goto out;
    }

    /* When the job store lies inside the output store, files are copied
     * server-side (CopyObject, or copy_file_range(2) on a local directory). */
    const char *ou = dsp_store_uri(c->out_store);
    const char *ju = dsp_store_uri(c->job_store);
    size_t on = strlen(ou);
    if (!strcmp(ou, ju))
        c->src_prefix = dsp_xstrdup("");
    else if (!strncmp(ou, ju, on) && ju[on] == '/')
        c->src_prefix = dsp_xasprintf("%s/", ju + on + 1);
out:
    free(root);
    free(uri);
    return st;
}

static dsp_status stream_copy(publish_ctx *c, const char *src, const char *dst, dsp_err *err)
{
    dsp_reader *r = NULL;
    dsp_writer *w = NULL;
    char *chunk = dsp_xmalloc(COPY_CHUNK);
    dsp_status st = dsp_store_reader_open(c->job_store, src, 0, -1, NULL, &r, err);

    if (st == DSP_OK)
        st = dsp_store_writer_open(c->out_store, dst, NULL, &w, err);
    while (st == DSP_OK) {
        size_t got = 0;
        st = dsp_reader_read(r, chunk, COPY_CHUNK, &got, err);
        if (st != DSP_OK || got == 0)
            break;
        st = dsp_writer_write(w, chunk, got, err);
    }
    if (w) {
        if (st == DSP_OK)
            st = dsp_writer_close(w, NULL, err);
        else
            dsp_writer_abort(w);
    }
    if (r)
        dsp_reader_close(r);
    free(chunk);
    return st;
}

static dsp_status copy_file(publish_ctx *c, const char *src, const char *dst, dsp_err *err)
{
    dsp_status st;

    if (c->src_prefix) {
        char *full = dsp_xasprintf("%s%s", c->src_prefix, src);
        st = dsp_store_copy(c->out_store, full, dst, NULL, err);
        free(full);
    } else {
        st = stream_copy(c, src, dst, err);
    }
    if (st != DSP_OK)
        dsp_err_prefix(err, "publishing %s as %s", src, dst);
    return st;
}


typedef struct {
    char *src, *dst;
} copy_item;

typedef struct {
    publish_ctx *ctx;
    const copy_item *items;
    size_t n;
    atomic_size_t next;
    atomic_int failed;
    pthread_mutex_t lock;
    dsp_err err;            /* the first failure */
} copy_batch;

static void *copy_thread(void *arg)
{
    copy_batch *b = arg;
    dsp_err err;

    for (;;) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n || atomic_load(&b->failed))
            break;
        if (copy_file(b->ctx, b->items[i].src, b->items[i].dst, &err) != DSP_OK) {
            pthread_mutex_lock(&b->lock);
            if (!atomic_exchange(&b->failed, 1))
                b->err = err;
            pthread_mutex_unlock(&b->lock);
            break;
        }
    }
    return NULL;
}

/* Copy every item, COPY_THREADS at a time, because publishing thousands of
 * small parts one request after another dominates the end of a job. */
static dsp_status copy_all(publish_ctx *c, const copy_item *items, size_t n, dsp_err *err)
{
    copy_batch b = {.ctx = c, .items = items, .n = n};
    pthread_t threads[COPY_THREADS];
    size_t nthreads = n < COPY_THREADS ? n : COPY_THREADS;

    atomic_init(&b.next, 0);
    atomic_init(&b.failed, 0);
    pthread_mutex_init(&b.lock, NULL);
    for (size_t i = 0; i < nthreads; i++)
        pthread_create(&threads[i], NULL, copy_thread, &b);
    for (size_t i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&b.lock);
    if (atomic_load(&b.failed)) {
        *err = b.err;
        return err->code;
    }
    return DSP_OK;
}

/*
 * Return DSP_ECANCELLED when the job was cancelled or failed while it
 * published, so that publishing stops before writing `next` and leaves
 * the output without _SUCCESS. A job already done (another publisher of
 * it finished) goes on, because every step of publishing is idempotent.
 */
static dsp_status check_job_running(publish_ctx *c, const dsp_job *job, const char *next,
                                    dsp_err *err)
{
    dsp_job_state state;
    dsp_status st = dsp_job_read_state(c->job_store, job->id, &state, NULL, err);

    if (st != DSP_OK) {
        dsp_err_prefix(err, "reading the state of job %s before publishing %s", job->id, next);
        return st;
    }
    if (state != DSP_JOB_CANCELLED && state != DSP_JOB_FAILED)
        return DSP_OK;
    return dsp_err_set(err, DSP_ECANCELLED,
                       "job %s is %s, so publishing stopped before %s; output %s has no "
                       "_SUCCESS and is incomplete",
                       job->id, dsp_job_state_name(state), next, job->spec->output_uri);
}

/* Copy every item in batches of COPY_BATCH, checking between batches that
 * the job still runs and renewing the output's publishing lock. */
static dsp_status lock_lost(publish_ctx *c, dsp_output_lock *lock, const dsp_job *job,
                            const char *success_key, dsp_err *err);

static dsp_status copy_batches(publish_ctx *c, const dsp_job *job, dsp_output_lock *lock,
                               const char *success_key, const copy_item *items, size_t n,
                               dsp_err *err)
{
    for (size_t done = 0; done < n; done += COPY_BATCH) {
        size_t count = n - done < COPY_BATCH ? n - done : COPY_BATCH;
        dsp_status st;

        if (done > 0) {
            st = check_job_running(c, job, items[done].dst, err);
            if (st == DSP_OK) {
                st = dsp_output_lock_renew(lock, 0, err);
                if (st == DSP_EPRECOND)
                    st = lock_lost(c, lock, job, success_key, err);
            }
            if (st != DSP_OK)
                return st;
        }
        st = copy_all(c, items + done, count, err);
        if (st != DSP_OK)
            return st;
    }
    return DSP_OK;
}

static void add_copy(copy_item **items, size_t *n, const char *src, char *dst)
{
    *items = dsp_xrealloc(*items, (*n + 1) * sizeof **items);
    (*items)[*n].src = dsp_xstrdup(src);
    (*items)[*n].dst = dst;
    (*n)++;
}

static cJSON *manifest_file(const char *name, const cJSON *f)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "size", json_number(f, "size"));
    cJSON_AddNumberToObject(o, "records", json_number(f, "records"));
    cJSON_AddStringToObject(o, "sha256", json_string(f, "sha256"));
    return o;
}

/* Input objects of the plan with their ETags, each once, in plan order. */
static cJSON *manifest_inputs(const dsp_plan *plan)
{
    cJSON *inputs = cJSON_CreateArray();
    const dsp_plan_stage *stage = &plan->stages[0];
    const char *last_root = "", *last_key = "";

    for (size_t t = 0; t < stage->ntasks; t++) {
        for (size_t i = 0; i < stage->tasks[t].ninputs; i++) {
            const dsp_plan_input *in = &stage->tasks[t].inputs[i];
            /* Ranges of one object are adjacent in a sorted plan. */
            if (!strcmp(in->uri_root, last_root) && !strcmp(in->key, last_key))
                continue;
            cJSON *o = cJSON_CreateObject();
            char *uri = dsp_uri_join(in->uri_root, in->key);
            cJSON_AddStringToObject(o, "uri", uri);
            cJSON_AddStringToObject(o, "etag", in->etag);
            cJSON_AddNumberToObject(o, "size", (double)in->size);
            cJSON_AddItemToArray(inputs, o);
            free(uri);
            last_root = in->uri_root;
            last_key = in->key;
        }
    }
    return inputs;
}

static int name_listed(const cJSON *names, const char *name)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return 1;
    return 0;
}

/* Whether rel is `pattern` ("part-") followed by at least five digits and
 * the extension of an output format (".jsonl.zst" or ".jsonl.gz"): the
 * names that publishing writes, and no others, such as a user's
 * part-00001.jsonl.zst.bak. */
static int part_name(const char *rel, const char *pattern)
{
    size_t n = strlen(pattern);
    if (strncmp(rel, pattern, n) != 0)
        return 0;
    const char *p = rel + n, *digits = p;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p - digits < 5)
        return 0;
    return !strcmp(p, ".jsonl.zst") || !strcmp(p, ".jsonl.gz");
}

/* Whether rel is _dedup/clusters/stepN.jsonl, the name under which the
 * clusters of the dedup_minhash step at index N are published. */
static int clusters_name(const char *rel)
{
    static const char prefix[] = "_dedup/clusters/step";
    if (strncmp(rel, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *p = rel + sizeof prefix - 1;
    if (*p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    return !strcmp(p, ".jsonl");
}

/* Whether an output object's name (relative to the output prefix) is one
 * that DSpark publishes: _MANIFEST.json, _SUCCESS, the publishing lock,
 * part-NNNNN.jsonl.zst (or .jsonl.gz), the same under _rejects/, or
 * _dedup/clusters/stepN.jsonl. Only such objects are ever replaced or
 * deleted. */
static int owned_name(const char *rel)
{
    if (!strcmp(rel, "_MANIFEST.json") || !strcmp(rel, "_SUCCESS") ||
        !strcmp(rel, DSP_OUTPUT_LOCK_NAME))
        return 1;
    if (part_name(rel, "part-") || part_name(rel, "_rejects/part-"))
        return 1;
    return clusters_name(rel);
}

/* Refuse an output prefix that contains objects DSpark did not write,
 * before anything under it changes: publishing replaces the prefix's
 * contents, and a user's own files must never be deleted by it. Sets
 * *foreign and names up to three of them in message. */
static dsp_status check_output_owned(publish_ctx *c, const char *output_uri, int *foreign,
                                     dsp_buf *message, dsp_err *err)
{
    char *prefix = dsp_xasprintf("%s/", c->out_prefix);
    dsp_list_page page;
    dsp_status st = dsp_store_list_all(c->out_store, prefix, NULL, &page, err);
    size_t plen = strlen(prefix), n = 0;

    *foreign = 0;
    if (st == DSP_OK) {
        for (size_t i = 0; i < page.n; i++) {
            const char *rel = page.items[i].key + plen;
            if (owned_name(rel))
                continue;
            if (n < 3)
                dsp_buf_printf(message, "%s%s", n ? ", " : "", rel);
            n++;
        }
        dsp_list_page_free(&page);
    }
    if (n > 0) {
        *foreign = 1;
        char *names = dsp_xstrdup(message->data);
        dsp_buf_reset(message);
        dsp_buf_printf(message,
                       "output %s contains %zu object%s that DSpark did not write (%s%s); "
                       "publishing replaces everything under the output, so choose an empty "
                       "output or remove them",
                       output_uri, n, n == 1 ? "" : "s", names, n > 3 ? ", ..." : "");
        free(names);
    }
    free(prefix);
    return st;
}

/* Reject a local output path that exists and is not a directory, such as
 * a regular file: the part files cannot be created under it, so the
 * publish would fail only after every task has run. S3 keeps an object
 * "out" and keys under "out/" side by side, so it needs no such check. */
static dsp_status check_output_is_dir(const publish_ctx *c, const char *output_uri,
                                      dsp_err *err)
{
    if (strcmp(dsp_store_kind(c->out_store), "local") != 0 || !*c->out_prefix)
        return DSP_OK;

    char *path = dsp_store_object_name(c->out_store, c->out_prefix);
    struct stat st;
    /* lstat catches a dangling symlink, which stat reports as missing. */
    int exists = stat(path, &st) == 0 || lstat(path, &st) == 0;
    dsp_status rc = DSP_OK;
    if (exists && !S_ISDIR(st.st_mode))
        rc = dsp_err_set(err, DSP_EINVAL,
                         "output %s exists and is not a directory; a local output is a "
                         "directory that receives the part files, so choose another output "
                         "or remove it",
                         output_uri);
    free(path);
    return rc;
}

/*
 * Reject a local output directory that this process cannot write to, so
 * that the job fails at submit and not at publish, after every task has
 * run. Publishing creates a missing directory, so then its nearest
 * existing parent is checked. Permission bits miss root, ACLs and
 * read-only mounts, so the check creates and removes an empty file. The
 * file is named like the local store's temporary files, which `dspark gc
 * --temp-older-than` removes if this process dies in between.
 * NOTE: this checks the submitting user on this machine. A worker that
 * runs as another user can still fail at publish.
 */
static dsp_status check_output_writable(const publish_ctx *c, const char *output_uri,
                                        dsp_err *err)
{
    if (strcmp(dsp_store_kind(c->out_store), "local") != 0 || !*c->out_prefix)
        return DSP_OK;

    char *dir = dsp_store_object_name(c->out_store, c->out_prefix);
    struct stat st;
    dsp_status rc = DSP_OK;

    while (stat(dir, &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
        /* The path is absolute, so the walk ends at "/" at the latest. */
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        if (slash == dir) {
            dir[1] = '\0';
            break;
        }
        *slash = '\0';
    }
    if (stat(dir, &st) != 0) {
        rc = dsp_err_set(err, errno == EACCES ? DSP_EPERM : DSP_EIO,
                         "output %s: stat of %s failed: %s", output_uri, dir, strerror(errno));
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = dsp_err_set(err, DSP_EINVAL,
                         "output %s cannot be created because %s is not a directory; choose "
                         "another output",
                         output_uri, dir);
        goto out;
    }

    char *probe = dsp_xasprintf("%s/.dsp-tmp.%ld.%016llx", strcmp(dir, "/") ? dir : "",
                                (long)getpid(), (unsigned long long)dsp_rand64());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        rc = dsp_err_set(err, e == EACCES || e == EPERM || e == EROFS ? DSP_EPERM : DSP_EIO,
                         "output %s is not writable: cannot create a file in %s: %s; make "
                         "that directory writable for this user or choose another output",
                         output_uri, dir, strerror(e));
    } else {
        close(fd);
        if (unlink(probe) != 0)
            DSP_WARN("output_probe_remove_failed", "output=%s path=%s error=\"%s\"", output_uri,
                     probe, strerror(errno));
    }
    free(probe);
out:
    free(dir);
    return rc;
}

dsp_status dsp_publish_check_output(dsp_store *job_store, const char *output_uri, dsp_err *err)
{
    publish_ctx c = {job_store, NULL, NULL, NULL};
    dsp_buf message = DSP_BUF_INIT;
    int foreign = 0;
    dsp_status st = open_output(&c, output_uri, err);

    if (st == DSP_OK)
        st = check_output_is_dir(&c, output_uri, err);
    if (st == DSP_OK)
        st = check_output_writable(&c, output_uri, err);
    if (st == DSP_OK) {
        st = check_output_owned(&c, output_uri, &foreign, &message, err);
        if (st != DSP_OK)
            dsp_err_prefix(err, "listing output %s", output_uri);
    }
    if (st == DSP_OK && foreign)
        st = dsp_err_set(err, DSP_EPRECOND, "%s", message.data);
    dsp_buf_free(&message);
    free(c.src_prefix);
    free(c.out_prefix);
    if (c.out_store)
        dsp_store_close(c.out_store);
    return st;
}

/* Remove objects under the output prefix that this job did not write
 * (a previous job's extra parts), so the prefix contains exactly the files of
 * the manifest. Only names that DSpark publishes are removed. */
static dsp_status remove_stale(publish_ctx *c, const cJSON *names, dsp_err *err)
{
    char *prefix = dsp_xasprintf("%s/", c->out_prefix);
    dsp_list_page page;
    dsp_status st = dsp_store_list_all(c->out_store, prefix, NULL, &page, err);

    if (st == DSP_OK) {
        const char **stale = dsp_xcalloc(page.n + 1, sizeof *stale);
        size_t n = 0, plen = strlen(prefix);
        for (size_t i = 0; i < page.n; i++) {
            const char *rel = page.items[i].key + plen;
            if (strcmp(rel, "_MANIFEST.json") && strcmp(rel, "_SUCCESS") &&
                strcmp(rel, DSP_OUTPUT_LOCK_NAME) && owned_name(rel) &&
                !name_listed(names, rel))
                stale[n++] = page.items[i].key;
        }
        if (n > 0) {
            DSP_WARN("output_stale_removed", "output=%s objects=%zu", prefix, n);
            st = dsp_store_delete(c->out_store, stale, n, err);
        }
        free(stale);
        dsp_list_page_free(&page);
    }
    free(prefix);
    return st;
}

/* Whether the output's _SUCCESS exists. Sets *ours when it names job_id,
 * and copies its first 200 bytes to other. */
static int success_exists(publish_ctx *c, const char *key, const char *job_id, int *ours,
                          char *other, size_t other_size)
{
    dsp_buf cur = DSP_BUF_INIT;
    dsp_err gerr;
    int found = dsp_store_get(c->out_store, key, 0, -1, &cur, NULL, &gerr) == DSP_OK;
    *ours = found && cur.len == strlen(job_id) && !memcmp(cur.data, job_id, cur.len);
    snprintf(other, other_size, "%.*s", (int)(cur.len < 200 ? cur.len : 200),
             cur.data ? cur.data : "");
    dsp_buf_free(&cur);
    return found;
}

/*
 * Handle a lost publishing lock: a renewal returned DSP_EPRECOND with err
 * set. When _SUCCESS names this job, another publisher of it finished, and
 * this one stops quietly (DSP_ECANCELLED). Otherwise this publisher
 * stalled while another job took the lock over, and its last batch of
 * copies may have replaced parts of that job's output. So it deletes the
 * other job's lock, which makes that publisher start over at its next
 * renewal, and a _SUCCESS of another job, which can no longer vouch for
 * the parts. Returns DSP_EPRECOND then, so this publish is retried.
 */
static dsp_status lock_lost(publish_ctx *c, dsp_output_lock *lock, const dsp_job *job,
                            const char *success_key, dsp_err *err)
{
    char other[256];
    int ours;
    if (success_exists(c, success_key, job->id, &ours, other, sizeof other) && ours)
        return dsp_err_set(err, DSP_ECANCELLED,
                           "another publisher of job %s finished publishing output %s",
                           job->id, job->spec->output_uri);
    dsp_err lerr;
    if (dsp_output_lock_break_other(lock, &lerr) != DSP_OK)
        DSP_WARN("output_lock_break_failed", "job=%s output=%s error=\"%s\"", job->id,
                 job->spec->output_uri, lerr.msg);
    /* Checked after breaking the lock, so that a holder that wrote its
     * _SUCCESS in the meantime is caught too. */
    if (success_exists(c, success_key, job->id, &ours, other, sizeof other) && !ours) {
        const char *keys[1] = {success_key};
        if (dsp_store_delete(c->out_store, keys, 1, &lerr) != DSP_OK)
            DSP_WARN("output_success_delete_failed", "job=%s output=%s error=\"%s\"", job->id,
                     job->spec->output_uri, lerr.msg);
        DSP_ERROR("output_damaged", "job=%s output=%s other_job=%s message=\"this job's "
                  "publisher stalled and lost the output's lock, and may have replaced parts "
                  "of the other job's output; its _SUCCESS was deleted, so run that job or "
                  "this one again\"",
                  job->id, job->spec->output_uri, other);
    }
    return DSP_EPRECOND;
}

/*
 * Remove the output's _MANIFEST.json unless it names this job, before any
 * part is copied. A manifest of an earlier job lists that job's sizes and
 * SHA-256s, which no longer match once some parts are replaced, so a
 * publish that fails midway must not leave it behind. A manifest of this
 * job stays, because every publisher of one job writes the same one.
 */
static dsp_status remove_old_manifest(publish_ctx *c, const dsp_job *job, dsp_err *err)
{
    char *key = dsp_xasprintf("%s/_MANIFEST.json", c->out_prefix);
    dsp_buf body = DSP_BUF_INIT;
    dsp_status st = dsp_store_get(c->out_store, key, 0, -1, &body, NULL, err);

    if (st == DSP_ENOTFOUND) {
        st = DSP_OK;
    } else if (st == DSP_OK) {
        cJSON *old = cJSON_ParseWithLength(body.data ? body.data : "", body.len);
        const cJSON *old_job = cJSON_GetObjectItemCaseSensitive(old, "job");
        const char *previous = cJSON_IsString(old_job) ? old_job->valuestring : "(unknown)";
        if (strcmp(previous, job->id) != 0) {
            const char *keys[1] = {key};
            DSP_INFO("output_manifest_removed", "job=%s output=%s previous_job=%s", job->id,
                     job->spec->output_uri, previous);
            st = dsp_store_delete(c->out_store, keys, 1, err);
        }
        cJSON_Delete(old);
    }
    if (st != DSP_OK)
        dsp_err_prefix(err, "removing the earlier manifest of output %s", job->spec->output_uri);
    dsp_buf_free(&body);
    free(key);
    return st;
}

/* Put each step's operator name first in its counters ("op": "langid"), so
 * that the manifest alone shows which step removed what. */
static void name_operators(cJSON *operators, const cJSON *steps)
{
    int i = 0;
    cJSON *o;
    cJSON_ArrayForEach(o, operators) {
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(steps, i++), "op");
        if (!cJSON_IsObject(o) || !cJSON_IsString(op) ||
            cJSON_GetObjectItemCaseSensitive(o, "op"))
            continue;
        cJSON_AddStringToObject(o, "op", op->valuestring);
        cJSON_InsertItemInArray(o, 0, cJSON_DetachItemFromObjectCaseSensitive(o, "op"));
    }
}

/*
 * Log that this job replaces the output that job `previous` (the body of
 * the output's _SUCCESS) published. A rerun in the same job store does that
 * on purpose, so it is logged at info level. A previous job that this job
 * store does not know ran from another job store, whose output claim this
 * store cannot see, so that replacement is a warning.
 */
static void log_replaced_output(dsp_store *s, const dsp_job *job, const char *previous)
{
    dsp_err err;
    int known = 0;
    if (dsp_proto_check_job_id(previous, &err) == DSP_OK) {
        char *spec_key = dsp_proto_job_key(previous, "spec.json");
        dsp_obj_info info;
        known = dsp_store_head(s, spec_key, &info, &err) == DSP_OK;
        free(spec_key);
    } else {
        previous = "(not a job id)";
    }
    if (known)
        DSP_INFO("output_replaced", "job=%s output=%s previous_job=%s", job->id,
                 job->spec->output_uri, previous);
    else
        DSP_WARN("output_replaced", "job=%s output=%s previous_job=%s detail=\"the previous "
                 "job is not in this job store; two job stores publish to one output\"",
                 job->id, job->spec->output_uri, previous);
}

dsp_status dsp_publish_job(dsp_store *s, const dsp_job *job, dsp_err *err)
{
    const dsp_plan *plan = job->plan;
    publish_ctx c = {s, NULL, NULL, NULL};
    cJSON *seals = cJSON_CreateArray();
    cJSON *manifest = cJSON_CreateObject(), *names = cJSON_CreateArray();
    cJSON *files, *rejects, *totals, *operators, *extra = NULL, *clusters = NULL;
    char *body = NULL, *key = NULL;
    const char *success_body;
    int part = 0, reject_part = 0;
    copy_item *copies = NULL;
    size_t ncopies = 0;
    dsp_output_lock *lock = NULL;
    dsp_status st;

    for (size_t i = 0; i < plan->nstages; i++) {
        cJSON *seal = NULL;
        st = dsp_seal_read(s, job->id, plan->stages[i].id, &seal, err);
        if (st != DSP_OK)
            goto out;
        cJSON_AddItemToArray(seals, seal);
    }

    /* A job that rejected every input record fails here, before anything
     * under the output changes. */
    int rejected_all = 0;
    st = dsp_reject_check(s, job, seals, &rejected_all, err);
    if (st != DSP_OK || rejected_all)
        goto out;

    st = open_output(&c, job->spec->output_uri, err);
    if (st == DSP_OK)
        st = check_output_is_dir(&c, job->spec->output_uri, err);
    if (st != DSP_OK)
        goto out;
    {
        int foreign = 0;
        dsp_buf message = DSP_BUF_INIT;
        st = check_output_owned(&c, job->spec->output_uri, &foreign, &message, err);
        if (st == DSP_OK && foreign) {
            /* The job's id stays failed, so a retry needs a new job. */
            dsp_buf_printf(&message, ". No output was published; once they are removed, "
                                     "run the spec again (dspark run, or dspark submit with "
                                     "a new --job-id)");
            extra = cJSON_CreateObject();
            cJSON_AddStringToObject(extra, "message", message.data);
            DSP_ERROR("output_not_owned", "job=%s message=\"%s\"", job->id, message.data);
            st = dsp_job_finish(s, job->id, DSP_JOB_FAILED, extra, NULL, err);
        }
        dsp_buf_free(&message);
        if (st != DSP_OK || foreign)
            goto out;
    }

    /* Jobs of other job stores may publish to this output too. The job
     * whose lock is not ours fails at once, before anything changes. */
    st = dsp_output_lock_take(c.out_store, c.out_prefix, job->spec->output_uri, job->id,
                              dsp_store_uri(s), &lock, err);
    if (st == DSP_EPRECOND) {
        extra = cJSON_CreateObject();
        cJSON_AddStringToObject(extra, "message", err->msg);
        DSP_ERROR("output_locked", "job=%s message=\"%s\"", job->id, err->msg);
        st = dsp_job_finish(s, job->id, DSP_JOB_FAILED, extra, NULL, err);
        goto out;
    }
    if (st != DSP_OK)
        goto out;

    /* A _SUCCESS from an earlier job must not vouch for a half-replaced
     * output. */
    success_body = job->id;
    key = dsp_xasprintf("%s/_SUCCESS", c.out_prefix);
    st = check_job_running(&c, job, "the parts", err);
    if (st != DSP_OK)
        goto out;
    {
        char previous[256];
        int ours;
        if (success_exists(&c, key, job->id, &ours, previous, sizeof previous) && !ours) {
            log_replaced_output(s, job, previous);
            const char *keys[1] = {key};
            st = dsp_store_delete(c.out_store, keys, 1, err);
            if (st != DSP_OK)
                goto out;
        }
    }
    st = remove_old_manifest(&c, job, err);
    if (st != DSP_OK)
        goto out;

    cJSON_AddNumberToObject(manifest, "schema_version", DSP_MANIFEST_SCHEMA_VERSION);
    cJSON_AddStringToObject(manifest, "job", job->id);
    cJSON_AddStringToObject(manifest, "name", job->spec->name ? job->spec->name : "");
    cJSON_AddStringToObject(manifest, "spec_hash", job->spec->spec_hash);
    cJSON_AddStringToObject(manifest, "dspark_version", DSP_VERSION);
    cJSON_AddStringToObject(manifest, "output", job->spec->output_uri);
    files = cJSON_AddArrayToObject(manifest, "files");
    rejects = cJSON_AddArrayToObject(manifest, "rejects");
    totals = cJSON_AddObjectToObject(manifest, "totals");
    operators = cJSON_CreateArray();

    /* Totals: input side from the first stage, output side from the last. */
    const cJSON *first = cJSON_GetArrayItem(seals, 0);
    const cJSON *last = cJSON_GetArrayItem(seals, (int)plan->nstages - 1);
    double rin = 0, bin = 0, rout = 0, bout = 0, rrej = 0, rfix = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(first, "tasks")) {
        rin += json_number(t, "records_in");
        bin += json_number(t, "bytes_in");
        rfix += json_number(t, "records_utf8_repaired");
    }
    for (size_t i = 0; i < plan->nstages; i++) {
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(seals, (int)i),
                                                               "tasks")) {
            rrej += json_number(t, "records_rejected");
            dsp_job_merge_counters(operators, cJSON_GetObjectItemCaseSensitive(t, "op_counters"));
        }
    }

    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(last, "tasks")) {
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(t, "files")) {
            char name[64];
            snprintf(name, sizeof name, "part-%05d.%s", part++, file_ext(json_string(f, "key")));
            add_copy(&copies, &ncopies, json_string(f, "key"),
                     dsp_xasprintf("%s/%s", c.out_prefix, name));
            cJSON_AddItemToArray(files, manifest_file(name, f));
            cJSON_AddItemToArray(names, cJSON_CreateString(name));
            rout += json_number(f, "records");
            bout += json_number(f, "size");
        }
    }
    for (size_t i = 0; i < plan->nstages; i++) {
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(seals, (int)i),
                                                               "tasks")) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "rejects");
            if (!cJSON_IsObject(f))
                continue;
            char name[80];
            snprintf(name, sizeof name, "_rejects/part-%05d.%s", reject_part++,
                     file_ext(json_string(f, "key")));
            add_copy(&copies, &ncopies, json_string(f, "key"),
                     dsp_xasprintf("%s/%s", c.out_prefix, name));
            cJSON_AddItemToArray(rejects, manifest_file(name, f));
            cJSON_AddItemToArray(names, cJSON_CreateString(name));
        }
    }
    /* Duplicate clusters of dedup_minhash steps with "clusters": true, which
     * their minhash_components task wrote as clusters-step<i>.jsonl. */
    for (size_t i = 0; i < plan->nstages; i++) {
        if (strcmp(plan->stages[i].kind, "minhash_components") != 0)
            continue;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(seals, (int)i),
                                                               "tasks")) {
            const cJSON *f;
            cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(t, "files")) {
                const char *src = json_string(f, "key");
                const char *base = strrchr(src, '/');
                base = base ? base + 1 : src;
                if (strncmp(base, "clusters-", 9) != 0)
                    continue;
                char name[96];
                snprintf(name, sizeof name, "_dedup/clusters/%s", base + 9);
                add_copy(&copies, &ncopies, src, dsp_xasprintf("%s/%s", c.out_prefix, name));
                if (!clusters)
                    clusters = cJSON_AddArrayToObject(manifest, "dedup_clusters");
                cJSON_AddItemToArray(clusters, manifest_file(name, f));
                cJSON_AddItemToArray(names, cJSON_CreateString(name));
            }
        }
    }
    cJSON_AddNumberToObject(totals, "files", part);
    cJSON_AddNumberToObject(totals, "records_in", rin);
    cJSON_AddNumberToObject(totals, "records_out", rout);
    cJSON_AddNumberToObject(totals, "records_rejected", rrej);
    cJSON_AddNumberToObject(totals, "records_utf8_repaired", rfix);
    cJSON_AddNumberToObject(totals, "bytes_in", bin);
    cJSON_AddNumberToObject(totals, "bytes_out", bout);
    name_operators(operators, job->spec->steps);
    cJSON_AddItemToObject(manifest, "operators", operators);
    cJSON_AddItemToObject(manifest, "inputs", manifest_inputs(plan));

    st = copy_batches(&c, job, lock, key, copies, ncopies, err);
    if (st != DSP_OK)
        goto out;
    st = remove_stale(&c, names, err);
    if (st != DSP_OK)
        goto out;

    /* A cancel (or a failure recorded by another worker) stops publishing
     * before _MANIFEST.json and again before _SUCCESS, so such a job has no
     * _SUCCESS. NOTE: a cancel between the second check and the _SUCCESS
     * PUT (one GET and one PUT apart) still leaves a complete output with
     * _SUCCESS. state.json then stays "cancelled", because the final state
     * is create-only and the cancel wrote it first. */
    st = check_job_running(&c, job, "_MANIFEST.json", err);
    if (st != DSP_OK)
        goto out;
    body = cJSON_Print(manifest);
    {
        char *mkey = dsp_xasprintf("%s/_MANIFEST.json", c.out_prefix);
        dsp_put_opts opts = {DSP_PUT_ALWAYS, NULL, "application/json"};
        st = dsp_store_put(c.out_store, mkey, body, strlen(body), &opts, NULL, err);
        free(mkey);
        if (st != DSP_OK)
            goto out;
    }
    st = check_job_running(&c, job, "_SUCCESS", err);
    if (st == DSP_OK) {
        st = dsp_output_lock_renew(lock, 1, err);
        if (st == DSP_EPRECOND)
            st = lock_lost(&c, lock, job, key, err);
    }
    if (st != DSP_OK)
        goto out;
    {
        dsp_put_opts opts = {DSP_PUT_IF_ABSENT, NULL, "text/plain"};
        st = dsp_store_put(c.out_store, key, success_body, strlen(success_body), &opts, NULL, err);
        if (st == DSP_EPRECOND) {
            /* Fine when another publisher of this job got there first. */
            char other[256];
            int ours;
            if (success_exists(&c, key, job->id, &ours, other, sizeof other) && !ours)
                st = dsp_err_set(err, DSP_EPRECOND,
                                 "output %s: _SUCCESS names job %s, not this job %s",
                                 job->spec->output_uri, other, job->id);
            else
                st = DSP_OK;
        }
        if (st != DSP_OK)
            goto out;
    }
    DSP_INFO("job_published", "job=%s output=%s files=%d rejects=%d records_out=%.0f", job->id,
             job->spec->output_uri, part, reject_part, rout);
    {
        dsp_err lerr;
        if (dsp_output_lock_release(lock, &lerr) != DSP_OK)
            DSP_WARN("output_lock_release_failed", "job=%s output=%s error=\"%s\"", job->id,
                     job->spec->output_uri, lerr.msg);
        lock = NULL;
    }

    /* Losing attempts go before the job is marked done. A publisher that
     * dies during the sweep leaves the job running, so the next publisher
     * sweeps again. A done job then has only winning attempts left, unless
     * a stalled worker writes one later. */
    {
        dsp_err serr;
        if (dsp_publish_sweep_attempts(s, job, &serr) != DSP_OK)
            DSP_WARN("attempt_sweep_failed", "job=%s error=%s", job->id, serr.msg);
    }
    extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "output", job->spec->output_uri);
    cJSON_AddNumberToObject(extra, "files", part);
    cJSON_AddNumberToObject(extra, "records_out", rout);
    st = dsp_job_finish(s, job->id, DSP_JOB_DONE, extra, NULL, err);
out:
    if (lock) {
        /* A failed or stopped publish lets other jobs publish at once. */
        dsp_err lerr;
        if (dsp_output_lock_release(lock, &lerr) != DSP_OK)
            DSP_WARN("output_lock_release_failed", "job=%s output=%s error=\"%s\"", job->id,
                     job->spec->output_uri, lerr.msg);
    }
    for (size_t i = 0; i < ncopies; i++) {
        free(copies[i].src);
        free(copies[i].dst);
    }
    free(copies);
    cJSON_Delete(extra);
    cJSON_Delete(names);
    cJSON_Delete(manifest);
    cJSON_Delete(seals);
    free(body);
    free(key);
    free(c.src_prefix);
    free(c.out_prefix);
    if (c.out_store)
        dsp_store_close(c.out_store);
    return st;
}

dsp_status dsp_publish_sweep_attempts(dsp_store *s, const dsp_job *job, dsp_err *err)
{
    cJSON *keep = cJSON_CreateObject();
    char *prefix = dsp_xasprintf("jobs/%s/attempts/", job->id);
    dsp_list_page page = {0};
    dsp_status st = DSP_OK;

    /* The attempt prefixes of the winning commits, from the seals. */
    for (size_t i = 0; i < job->plan->nstages && st == DSP_OK; i++) {
        const dsp_plan_stage *stage = &job->plan->stages[i];
        cJSON *seal = NULL;
        const cJSON *t;
        st = dsp_seal_read(s, job->id, stage->id, &seal, err);
        if (st != DSP_OK)
            break;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(seal, "tasks")) {
            char *ap = dsp_proto_attempt_prefix(job->id, json_string(t, "stage"),
                                                json_string(t, "task"),
                                                json_string(t, "attempt"));
            char *with_slash = dsp_xasprintf("%s/", ap);
            cJSON_AddTrueToObject(keep, with_slash);
            free(with_slash);
            free(ap);
        }
        cJSON_Delete(seal);
    }
    if (st != DSP_OK)
        goto out;
    st = dsp_proto_list(s, prefix, &page, err);
    if (st != DSP_OK)
        goto out;

    const char **stale = dsp_xcalloc(page.n + 1, sizeof *stale);
    size_t n = 0;
    for (size_t i = 0; i < page.n; i++) {
        /* jobs/<job>/attempts/<stage>/<task>/<attempt>/<file> */
        const char *k = page.items[i].key;
        const char *p = k + strlen(prefix);
        int slashes = 0;
        while (*p && slashes < 3)
            if (*p++ == '/')
                slashes++;
        char *ap = dsp_xstrndup(k, (size_t)(p - k));
        if (!cJSON_GetObjectItemCaseSensitive(keep, ap))
            stale[n++] = k;
        free(ap);
    }
    if (n > 0) {
        DSP_INFO("attempts_swept", "job=%s objects=%zu", job->id, n);
        st = dsp_proto_delete(s, stale, n, err);
    }
    free(stale);
    dsp_list_page_free(&page);
out:
    free(prefix);
    cJSON_Delete(keep);
    return st;
}
