/*
 * job_list.c - list the jobs of a store with their state, submit time,
 * output, finish time and records out.
 *
 * The job ids come from a LIST of jobs/ with delimiter '/', so a job costs
 * one entry of a listing page however many objects it has. The details
 * come from two small objects per job. state.json gives the final state,
 * finish time and records out. spec.json gives the output URI, and its
 * mtime is the submit time, because it is created once, at submission.
 * LIST_THREADS threads read them at once, because for thousands of jobs
 * two GETs per job one after another add up to minutes at S3 latencies.
 */
#include "job_list.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/log.h"
#include "../core/util.h"
#include "protocol.h"

#define LIST_THREADS 8

/* Work shared by the reader threads: entry i is read by the thread that
 * takes index i from `next`. */
typedef struct {
    dsp_store *store;
    int only_state;
    dsp_job_entry *items;
    unsigned char *keep; /* 1 when entry i passes the state filter */
    size_t n;
    atomic_size_t next;
    atomic_int failed;
    pthread_mutex_t lock;
    dsp_err err; /* the first failure */
} list_batch;

/* Fill state, finished_ms, records_out and message of e from state.json. */
static dsp_status read_state(dsp_store *s, dsp_job_entry *e, dsp_err *err)
{
    char *key = dsp_proto_job_key(e->id, "state.json");
    cJSON *doc = NULL;
    dsp_status st = dsp_proto_get_json(s, key, &doc, NULL, err);

    e->state = DSP_JOB_RUNNING;
    e->records_out = -1;
    if (st == DSP_ENOTFOUND) {
        st = DSP_OK;
        goto out;
    }
    if (st != DSP_OK)
        goto out;

    const cJSON *state = cJSON_GetObjectItemCaseSensitive(doc, "state");
    const cJSON *time = cJSON_GetObjectItemCaseSensitive(doc, "time_ms");
    const cJSON *records = cJSON_GetObjectItemCaseSensitive(doc, "records_out");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(doc, "message");
    if (!cJSON_IsString(state) || dsp_job_state_from_name(state->valuestring, &e->state) != 0 ||
        e->state == DSP_JOB_RUNNING) {
        e->state = DSP_JOB_RUNNING;
        st = dsp_err_set(err, DSP_ECORRUPT,
                         "object %s in %s has no valid state (expected done, failed or "
                         "cancelled)", key, dsp_store_uri(s));
        goto out;
    }
    if (cJSON_IsNumber(time))
        e->finished_ms = (int64_t)time->valuedouble;
    if (e->state == DSP_JOB_DONE && cJSON_IsNumber(records))
        e->records_out = (int64_t)records->valuedouble;
    if (cJSON_IsString(message))
        e->message = dsp_xstrdup(message->valuestring);
out:
    cJSON_Delete(doc);
    free(key);
    return st;
}

/* Fill output and submitted_ms of e from spec.json. A missing spec.json
 * leaves both unknown, because a listing must show every job prefix.
 * NOTE: a store copied to another place (aws s3 sync, cp -r) gets new
 * mtimes, so its jobs show the time of the copy as their submit time. */
static dsp_status read_spec(dsp_store *s, dsp_job_entry *e, dsp_err *err)
{
    char *key = dsp_proto_job_key(e->id, "spec.json");
    cJSON *doc = NULL;
    dsp_obj_info info;
    dsp_status st = dsp_proto_get_json(s, key, &doc, &info, err);

    if (st == DSP_ENOTFOUND) {
        DSP_WARN("job_spec_missing", "job=%s key=%s", e->id, key);
        st = DSP_OK;
    } else if (st == DSP_OK) {
        const cJSON *output = cJSON_GetObjectItemCaseSensitive(doc, "output");
        const cJSON *uri = cJSON_GetObjectItemCaseSensitive(output, "uri");
        if (cJSON_IsString(uri))
            e->output = dsp_xstrdup(uri->valuestring);
        else
            st = dsp_err_set(err, DSP_ECORRUPT, "object %s in %s has no output.uri", key,
                             dsp_store_uri(s));
        e->submitted_ms = info.mtime_ms;
    }
    cJSON_Delete(doc);
    free(key);
    return st;
}

static void *read_thread(void *arg)
{
    list_batch *b = arg;
    dsp_err err;

    for (;;) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n || atomic_load(&b->failed))
            break;
        dsp_job_entry *e = &b->items[i];
        dsp_status st = read_state(b->store, e, &err);
        b->keep[i] = b->only_state < 0 || (int)e->state == b->only_state;
        if (st == DSP_OK && b->keep[i])
            st = read_spec(b->store, e, &err);
        if (st != DSP_OK) {
            pthread_mutex_lock(&b->lock);
            if (!atomic_exchange(&b->failed, 1))
                b->err = err;
            pthread_mutex_unlock(&b->lock);
            break;
        }
    }
    return NULL;
}

/* Sort newest submission first, and equal times (S3 keeps whole seconds)
 * by id. */
static int compare_entries(const void *a, const void *b)
{
    const dsp_job_entry *x = a, *y = b;
    if (x->submitted_ms != y->submitted_ms)
        return x->submitted_ms > y->submitted_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void free_entry(dsp_job_entry *e)
{
    free(e->id);
    free(e->output);
    free(e->message);
}

/* A local store is a directory that the first write creates, so listing a
 * missing one would print an empty store for a mistyped path. */
static dsp_status check_store_exists(dsp_store *s, dsp_err *err)
{
    const char *uri = dsp_store_uri(s);
    struct stat st;

    if (strcmp(dsp_store_kind(s), "local") != 0 || strncmp(uri, "file://", 7) != 0)
        return DSP_OK;
    if (stat(uri + 7, &st) == 0)
        return DSP_OK;
    if (errno == ENOENT)
        return dsp_err_set(err, DSP_ENOTFOUND, "store %s does not exist (no directory %s)",
                           uri, uri + 7);
    return dsp_err_set(err, DSP_EIO, "store %s: cannot read directory %s: %s", uri, uri + 7,
                       strerror(errno));
}

/* Read the job ids from the common prefixes jobs/<id>/. */
static dsp_status list_ids(dsp_store *s, dsp_job_list *out, dsp_err *err)
{
    dsp_list_page page;
    dsp_status st = dsp_store_list_all(s, "jobs/", "/", &page, err);

    if (st != DSP_OK) {
        /* S3 reports a missing bucket as an access error; it means the
         * store does not exist, like a missing local directory. */
        if (strstr(err->msg, "NoSuchBucket"))
            err->code = DSP_ENOTFOUND;
        return err->code;
    }
    out->items = dsp_xcalloc(page.nprefixes ? page.nprefixes : 1, sizeof *out->items);
    for (size_t i = 0; i < page.nprefixes; i++) {
        const char *p = page.prefixes[i] + strlen("jobs/");
        char *id = dsp_xstrndup(p, strlen(p) - 1); /* drop the trailing '/' */
        dsp_err id_err;
        if (dsp_proto_check_job_id(id, &id_err) != DSP_OK) {
            DSP_WARN("job_prefix_skipped", "prefix=%s reason=\"%s\"", page.prefixes[i],
                     id_err.msg);
            free(id);
            continue;
        }
        out->items[out->n++].id = id;
    }
    dsp_list_page_free(&page);
    return DSP_OK;
}

dsp_status dsp_job_list_read(dsp_store *s, int only_state, dsp_job_list *out, dsp_err *err)
{
    list_batch b = {.store = s, .only_state = only_state};
    pthread_t threads[LIST_THREADS];
    dsp_job_list all = {0};
    dsp_status st;

    memset(out, 0, sizeof *out);
    st = check_store_exists(s, err);
    if (st == DSP_OK)
        st = list_ids(s, &all, err);
    if (st != DSP_OK)
        return st;

    b.items = all.items;
    b.n = all.n;
    b.keep = dsp_xcalloc(all.n ? all.n : 1, 1);
    atomic_init(&b.next, 0);
    atomic_init(&b.failed, 0);
    pthread_mutex_init(&b.lock, NULL);
    size_t nthreads = all.n < LIST_THREADS ? all.n : LIST_THREADS;
    for (size_t i = 0; i < nthreads; i++)
        pthread_create(&threads[i], NULL, read_thread, &b);
    for (size_t i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&b.lock);

    if (atomic_load(&b.failed)) {
        *err = b.err;
        st = err->code;
    }
    /* Keep the entries that pass the filter, in place. */
    for (size_t i = 0; i < all.n; i++) {
        if (st == DSP_OK && b.keep[i])
            all.items[out->n++] = all.items[i];
        else
            free_entry(&all.items[i]);
    }
    free(b.keep);
    if (st != DSP_OK) {
        free(all.items);
        out->n = 0;
        return st;
    }
    out->items = all.items;
    if (out->n > 1)
        qsort(out->items, out->n, sizeof *out->items, compare_entries);
    return DSP_OK;
}

void dsp_job_list_free(dsp_job_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        free_entry(&list->items[i]);
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* Add name (an ISO-8601 UTC string) and name_ms, or two nulls for 0. */
static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char text[40];
    char *name_ms = dsp_xasprintf("%s_ms", name);

    if (ms > 0) {
        cJSON_AddStringToObject(o, name, dsp_format_utc_ms(ms, text, sizeof text));
        cJSON_AddNumberToObject(o, name_ms, (double)ms);
    } else {
        cJSON_AddNullToObject(o, name);
        cJSON_AddNullToObject(o, name_ms);
    }
    free(name_ms);
}

cJSON *dsp_job_list_json(const dsp_store *s, int only_state, const dsp_job_list *list)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *jobs;

    cJSON_AddNumberToObject(doc, "schema_version", DSP_JOBS_SCHEMA_VERSION);
    cJSON_AddStringToObject(doc, "store", dsp_store_uri(s));
    if (only_state >= 0)
        cJSON_AddStringToObject(doc, "state_filter", dsp_job_state_name(only_state));
    else
        cJSON_AddNullToObject(doc, "state_filter");
    jobs = cJSON_AddArrayToObject(doc, "jobs");
    for (size_t i = 0; i < list->n; i++) {
        const dsp_job_entry *e = &list->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "job", e->id);
        cJSON_AddStringToObject(o, "state", dsp_job_state_name(e->state));
        add_time(o, "submitted", e->submitted_ms);
        if (e->output)
            cJSON_AddStringToObject(o, "output", e->output);
        else
            cJSON_AddNullToObject(o, "output");
        add_time(o, "finished", e->state == DSP_JOB_RUNNING ? 0 : e->finished_ms);
        if (e->records_out >= 0)
            cJSON_AddNumberToObject(o, "records_out", (double)e->records_out);
        else
            cJSON_AddNullToObject(o, "records_out");
        if (e->message)
            cJSON_AddStringToObject(o, "message", e->message);
        else
            cJSON_AddNullToObject(o, "message");
        cJSON_AddItemToArray(jobs, o);
    }
    return doc;
}
