/*
 * output_lock.c - the publishing lock of an output prefix (see
 * output_lock.h).
 */
#include "output_lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"

/* Rounds of read and conditional write before giving up on a lock that
 * keeps changing under us. */
#define LOCK_ROUNDS 5

struct dsp_output_lock {
    dsp_store *out; /* not owned */
    char *key;
    char *output_uri;
    char *job_id;
    char *job_store_uri;
    int64_t renewed_ms; /* wall clock of the last write by this holder; 0 = none */
};

/* The lock object as read from the store. */
typedef struct {
    int found;
    char job[256];
    char job_store[1024];
    int64_t time_ms; /* the holder's clock at its last write; 0 = unknown */
    char etag[DSP_ETAG_MAX];
} lock_seen;

static char *lock_body(const dsp_output_lock *l, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "job", l->job_id);
    cJSON_AddStringToObject(o, "job_store", l->job_store_uri);
    cJSON_AddNumberToObject(o, "time_ms", (double)now);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return body;
}

/* Read the lock object into *seen. A body that is not a lock (damaged, or
 * written by something else) counts as another job's lock that was last
 * written at the object's modification time, or stale when that is
 * unknown. */
static dsp_status lock_read(dsp_output_lock *l, lock_seen *seen, dsp_err *err)
{
    dsp_buf body = DSP_BUF_INIT;
    dsp_obj_info info;
    memset(seen, 0, sizeof *seen);
    dsp_status st = dsp_store_get(l->out, l->key, 0, -1, &body, &info, err);
    if (st == DSP_ENOTFOUND) {
        dsp_buf_free(&body);
        return DSP_OK;
    }
    if (st != DSP_OK) {
        dsp_buf_free(&body);
        return st;
    }
    seen->found = 1;
    snprintf(seen->etag, sizeof seen->etag, "%s", info.etag);
    seen->time_ms = info.mtime_ms;
    cJSON *o = cJSON_ParseWithLength(body.data ? body.data : "", body.len);
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(o, "job");
    const cJSON *store = cJSON_GetObjectItemCaseSensitive(o, "job_store");
    const cJSON *time = cJSON_GetObjectItemCaseSensitive(o, "time_ms");
    if (cJSON_IsString(job) && cJSON_IsString(store) && cJSON_IsNumber(time)) {
        snprintf(seen->job, sizeof seen->job, "%s", job->valuestring);
        snprintf(seen->job_store, sizeof seen->job_store, "%s", store->valuestring);
        seen->time_ms = (int64_t)time->valuedouble;
    } else {
        snprintf(seen->job, sizeof seen->job, "(unknown)");
        snprintf(seen->job_store, sizeof seen->job_store, "(unknown)");
    }
    cJSON_Delete(o);
    dsp_buf_free(&body);
    return DSP_OK;
}

static dsp_status lock_put(dsp_output_lock *l, dsp_put_cond cond, const char *etag, dsp_err *err)
{
    int64_t now = dsp_now_ms();
    char *body = lock_body(l, now);
    dsp_put_opts opts = {cond, etag, "application/json"};
    dsp_status st = dsp_store_put(l->out, l->key, body, strlen(body), &opts, NULL, err);
    free(body);
    if (st == DSP_OK)
        l->renewed_ms = now;
    return st;
}

static dsp_status lock_held_elsewhere(const dsp_output_lock *l, const lock_seen *seen,
                                      int64_t age_ms, dsp_err *err)
{
    return dsp_err_set(err, DSP_EPRECOND,
                       "output %s is being published by job %s of job store %s (its lock "
                       "%s was renewed %lld s ago); two jobs must not publish to one output "
                       "at once. Wait for that job to finish and run this one again, or "
                       "choose another output. A lock that is not renewed for %d s counts "
                       "as abandoned; if that job is known to have stopped, delete %s/%s "
                       "to go on at once",
                       l->output_uri, seen->job, seen->job_store, DSP_OUTPUT_LOCK_NAME,
                       (long long)(age_ms / 1000), DSP_OUTPUT_LOCK_STALE_MS / 1000,
                       l->output_uri, DSP_OUTPUT_LOCK_NAME);
}

dsp_status dsp_output_lock_take(dsp_store *out, const char *out_prefix, const char *output_uri,
                                const char *job_id, const char *job_store_uri,
                                dsp_output_lock **lock, dsp_err *err)
{
    dsp_output_lock *l = dsp_xcalloc(1, sizeof *l);
    l->out = out;
    l->key = dsp_xasprintf("%s/%s", out_prefix, DSP_OUTPUT_LOCK_NAME);
    l->output_uri = dsp_xstrdup(output_uri);
    l->job_id = dsp_xstrdup(job_id);
    l->job_store_uri = dsp_xstrdup(job_store_uri);
    *lock = NULL;

    dsp_status st = DSP_OK;
    for (int round = 0; round < LOCK_ROUNDS; round++) {
        st = lock_put(l, DSP_PUT_IF_ABSENT, NULL, err);
        if (st != DSP_EPRECOND)
            goto done;
        lock_seen seen;
        st = lock_read(l, &seen, err);
        if (st != DSP_OK)
            goto done;
        if (!seen.found)
            continue; /* released since the PUT */
        if (!strcmp(seen.job, job_id))
            goto done; /* another publisher of this job has it: share it */
        int64_t age = dsp_now_ms() - seen.time_ms;
        if (age < DSP_OUTPUT_LOCK_STALE_MS) {
            st = lock_held_elsewhere(l, &seen, age, err);
            goto done;
        }
        st = lock_put(l, DSP_PUT_IF_MATCH, seen.etag, err);
        if (st == DSP_OK) {
            DSP_WARN("output_lock_taken_over", "job=%s output=%s previous_job=%s "
                     "previous_job_store=%s age_s=%lld", job_id, output_uri, seen.job,
                     seen.job_store, (long long)(age / 1000));
            goto done;
        }
        if (st != DSP_EPRECOND && st != DSP_ENOTFOUND)
            goto done;
    }
    st = dsp_err_set(err, DSP_EPRECOND,
                     "output %s: the publishing lock %s changed %d times while this job "
                     "tried to take it; another job publishes there",
                     output_uri, DSP_OUTPUT_LOCK_NAME, LOCK_ROUNDS);
done:
    if (st != DSP_OK) {
        dsp_output_lock_free(l);
        return st;
    }
    *lock = l;
    return DSP_OK;
}

dsp_status dsp_output_lock_renew(dsp_output_lock *l, int force, dsp_err *err)
{
    if (!force && l->renewed_ms && dsp_now_ms() - l->renewed_ms < DSP_OUTPUT_LOCK_STALE_MS / 10)
        return DSP_OK;
    for (int round = 0; round < LOCK_ROUNDS; round++) {
        lock_seen seen;
        dsp_status st = lock_read(l, &seen, err);
        if (st != DSP_OK)
            return st;
        if (!seen.found)
            return dsp_err_set(err, DSP_EPRECOND,
                               "the publishing lock of output %s is gone: another publisher "
                               "released it, after taking it over from this one while it "
                               "stalled for over %d s, or after publishing this job itself",
                               l->output_uri, DSP_OUTPUT_LOCK_STALE_MS / 1000);
        if (strcmp(seen.job, l->job_id) != 0)
            return dsp_err_set(err, DSP_EPRECOND,
                               "job %s of job store %s took over the publishing lock of "
                               "output %s, so this job stopped publishing; its output is "
                               "incomplete until one of the two jobs runs again",
                               seen.job, seen.job_store, l->output_uri);
        st = lock_put(l, DSP_PUT_IF_MATCH, seen.etag, err);
        if (st != DSP_EPRECOND && st != DSP_ENOTFOUND)
            return st;
    }
    return dsp_err_set(err, DSP_EPRECOND,
                       "output %s: the publishing lock %s changed %d times while this job "
                       "renewed it",
                       l->output_uri, DSP_OUTPUT_LOCK_NAME, LOCK_ROUNDS);
}

dsp_status dsp_output_lock_break_other(dsp_output_lock *l, dsp_err *err)
{
    lock_seen seen;
    dsp_status st = lock_read(l, &seen, err);
    if (st == DSP_OK && seen.found && strcmp(seen.job, l->job_id) != 0) {
        const char *keys[1] = {l->key};
        st = dsp_store_delete(l->out, keys, 1, err);
        if (st == DSP_OK)
            DSP_WARN("output_lock_broken", "job=%s output=%s holder=%s holder_job_store=%s "
                     "reason=\"this job's stalled publisher may have replaced parts after "
                     "losing the lock, so the holder must publish again\"",
                     l->job_id, l->output_uri, seen.job, seen.job_store);
    }
    return st;
}

dsp_status dsp_output_lock_release(dsp_output_lock *l, dsp_err *err)
{
    lock_seen seen;
    dsp_status st = lock_read(l, &seen, err);
    if (st == DSP_OK && seen.found && !strcmp(seen.job, l->job_id)) {
        const char *keys[1] = {l->key};
        st = dsp_store_delete(l->out, keys, 1, err);
    }
    dsp_output_lock_free(l);
    return st;
}

void dsp_output_lock_free(dsp_output_lock *l)
{
    if (!l)
        return;
    free(l->key);
    free(l->output_uri);
    free(l->job_id);
    free(l->job_store_uri);
    free(l);
}
