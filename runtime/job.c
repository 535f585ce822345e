/*
 * job.c - submitting, loading, finishing and inspecting jobs in a store.
 *
 * Guarantees: every submission step is create-only or an overwrite with
 * the same bytes, so concurrent or retried submissions of one spec under
 * one id publish exactly one job. The final state is create-only, so a job
 * ends once (done, failed or cancelled) and never changes afterwards.
 */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "commit.h"
#include "protocol.h"
#include "publish.h"
#include "stage_wide.h"

#define STATUS_MAX_ERRORS 100

/* Age after which an output claim whose job has no spec.json counts as a
 * crashed submission that another job may take over. A live submission
 * writes its spec a few requests after its claim, so a younger claim
 * belongs to a concurrent submission and decides the race.
 * NOTE: the age compares the claimer's clock with the reader's, so clocks
 * skewed by more than this shift when a crashed claim can be taken over. */
#define CLAIM_TAKEOVER_MS 60000

const char *dsp_job_state_name(dsp_job_state st)
{
    switch (st) {
    case DSP_JOB_DONE: return "done";
    case DSP_JOB_FAILED: return "failed";
    case DSP_JOB_CANCELLED: return "cancelled";
    default: return "running";
    }
}

int dsp_job_state_from_name(const char *name, dsp_job_state *out)
{
    static const dsp_job_state states[] = {DSP_JOB_RUNNING, DSP_JOB_DONE, DSP_JOB_FAILED,
                                           DSP_JOB_CANCELLED};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        if (!strcmp(name, dsp_job_state_name(states[i]))) {
            *out = states[i];
            return 0;
        }
    }
    return -1;
}

static dsp_job_state state_from_name(const char *name)
{
    dsp_job_state st;
    return dsp_job_state_from_name(name, &st) == 0 ? st : DSP_JOB_RUNNING;
}

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

char *dsp_job_default_id(const dsp_spec *spec)
{
    const char *name = spec->name && *spec->name ? spec->name : "job";
    char clean[41];
    size_t n = 0;

    for (const char *p = name; *p && n < sizeof clean - 1; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        clean[n++] = ok ? c : '-';
    }
    clean[n] = '\0';
    if (clean[0] == '.' || clean[0] == '-')
        clean[0] = 'j';
    return dsp_xasprintf("%s-%.12s", clean, spec->spec_hash);
}

/* The output URI as an absolute location, so two jobs naming the same
 * directory differently still collide. */
static char *absolute_output(const char *uri)
{
    char cwd[4096];

    if (strstr(uri, "://") || uri[0] == '/' || !getcwd(cwd, sizeof cwd))
        return dsp_xstrdup(uri);
    return dsp_xasprintf("%s/%s", cwd, uri);
}

/*
 * Read the output URI of job id from its spec.json into *output, as an
 * absolute location (malloc'ed, NULL when the spec names none). Returns
 * DSP_ENOTFOUND when the job has no spec.json yet.
 */
static dsp_status read_job_output(dsp_store *s, const char *id, char **output, dsp_err *err)
{
    char *key = dsp_proto_job_key(id, "spec.json");
    cJSON *spec = NULL;
    dsp_status st = dsp_proto_get_json(s, key, &spec, NULL, err);

    *output = NULL;
    if (st == DSP_OK) {
        const cJSON *uri = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(spec, "output"), "uri");
        if (cJSON_IsString(uri))
            *output = absolute_output(uri->valuestring);
    }
    cJSON_Delete(spec);
    free(key);
    return st;
}

/* Claim the output for job id in outputs/<sha256 of the URI>. NOTE: the
 * claim lives in the job store, so jobs submitted to different job stores
 * can still write the same output. */
static dsp_status claim_output(dsp_store *s, const char *id, const char *output, dsp_err *err)
{
    char *abs = absolute_output(output);
    char hash[65];
    char *key, *body;
    char *owner_output = NULL; /* the output that the claim's job writes, when known */
    int owner_elsewhere = 0;
    cJSON *o = cJSON_CreateObject(), *seen = NULL;
    dsp_obj_info info;
    dsp_status st;

    dsp_sha256_hex(abs, strlen(abs), hash);
    key = dsp_xasprintf("outputs/%s", hash);
    cJSON_AddStringToObject(o, "job", id);
    cJSON_AddStringToObject(o, "output", abs);
    cJSON_AddNumberToObject(o, "claimed_ms", (double)dsp_now_ms());
    body = cJSON_PrintUnformatted(o);

    st = dsp_proto_create(s, key, body, strlen(body), NULL, err);
    if (st != DSP_EPRECOND)
        goto out;
    st = dsp_proto_get_json(s, key, &seen, &info, err);
    if (st != DSP_OK)
        goto out;
    const char *owner = json_string(seen, "job");
    if (!strcmp(owner, id)) {
        st = DSP_OK;
        goto out;
    }
    dsp_job_state other;
    st = dsp_job_read_state(s, owner, &other, NULL, err);
    if (st == DSP_ENOTFOUND) {
        other = DSP_JOB_RUNNING;
        st = DSP_OK;
    }
    if (st != DSP_OK)
        goto out;
    if (other == DSP_JOB_RUNNING) {
        dsp_err spec_err;
        dsp_status spec_status = read_job_output(s, owner, &owner_output, &spec_err);
        /* A spec.json that cannot be read counts as existing, so the claim
         * keeps blocking the output. */
        int owner_exists = spec_status != DSP_ENOTFOUND;
        /* spec.json is create-only, so an owner whose spec writes another
         * output never writes this one. Its claim is left over from a
         * submit that lost the race for the job id to another spec. */
        owner_elsewhere = spec_status == DSP_OK && owner_output && strcmp(owner_output, abs) != 0;
        /* A claim whose job never got its spec written is either a
         * submission running right now, which owns the output, or, once
         * older than CLAIM_TAKEOVER_MS, a crashed one that owns nothing.
         * The claim's own timestamp is preferred to the store's mtime. */
        double claimed_ms = json_number(seen, "claimed_ms");
        if (claimed_ms <= 0)
            claimed_ms = (double)info.mtime_ms;
        int owner_submitting = !owner_exists && claimed_ms > 0 &&
                               (double)dsp_now_ms() - claimed_ms < CLAIM_TAKEOVER_MS;
        if ((owner_exists && !owner_elsewhere) || owner_submitting) {
            st = dsp_err_set(err, DSP_EPRECOND,
                             "output %s is the output of unfinished job %s; wait for it "
                             "('dspark wait %s'), cancel it, or choose another output",
                             abs, owner, owner);
            goto out;
        }
    }
    st = dsp_proto_swap(s, key, info.etag, body, strlen(body), NULL, err);
    if (st == DSP_EPRECOND)
        dsp_err_prefix(err, "output %s was claimed by another job at the same time", abs);
    if (st == DSP_OK && owner_elsewhere)
        DSP_INFO("output_claim_replaced", "job=%s output=%s previous_job=%s "
                 "previous_job_output=%s",
                 id, abs, owner, owner_output);
out:
    free(owner_output);
    cJSON_Delete(seen);
    cJSON_Delete(o);
    free(body);
    free(key);
    free(abs);
    return st;
}

/* Check that job id still owns its output claim after its spec and plan are
 * written. A submission that stalled for longer than CLAIM_TAKEOVER_MS
 * between claim and spec can have lost the claim to another job. It is
 * then finished as failed before it enters the active index, so no worker
 * runs it. */
static dsp_status confirm_output_claim(dsp_store *s, const char *id, const char *output,
                                       dsp_err *err)
{
    char *abs = absolute_output(output);
    char hash[65];
    char *key;
    cJSON *seen = NULL;
    dsp_status st;

    dsp_sha256_hex(abs, strlen(abs), hash);
    key = dsp_xasprintf("outputs/%s", hash);
    st = dsp_proto_get_json(s, key, &seen, NULL, err);
    if (st != DSP_OK)
        goto out;
    const char *owner = json_string(seen, "job");
    if (!strcmp(owner, id))
        goto out;

    char *message = dsp_xasprintf("output %s was claimed by job %s while job %s was being "
                                  "submitted; submit again once %s is finished, or choose "
                                  "another output",
                                  abs, owner, id, owner);
    cJSON *extra = cJSON_CreateObject();
    dsp_err ferr;
    cJSON_AddStringToObject(extra, "message", message);
    if (dsp_job_finish(s, id, DSP_JOB_FAILED, extra, NULL, &ferr) != DSP_OK)
        DSP_WARN("job_finish_failed", "job=%s message=\"%s\"", id, ferr.msg);
    cJSON_Delete(extra);
    st = dsp_err_set(err, DSP_EPRECOND, "%s", message);
    free(message);
out:
    cJSON_Delete(seen);
    free(key);
    free(abs);
    return st;
}

static dsp_status check_stages(const dsp_plan *plan, dsp_err *err)
{
    for (size_t i = 0; i < plan->nstages; i++) {
        /* Stage kinds the runtime cannot run (wide operators without a
         * shuffle layout) are rejected here, so they do not fail later in a
         * worker. */
        if (!dsp_wide_kind_supported(plan->stages[i].kind))
            return dsp_err_set(err, DSP_EUNSUPPORTED,
                               "stage %s (%s) needs a shuffle that this build's runtime does "
                               "not run; jobs may use narrow operators, dedup_exact, "
                               "dedup_minhash and repartition",
                               plan->stages[i].id, plan->stages[i].kind);
    }
    return DSP_OK;
}

dsp_status dsp_job_submit(dsp_store *s, const dsp_spec *spec, const char *id, int *created,
                          dsp_err *err)
{
    char *spec_key = dsp_proto_job_key(id, "spec.json");
    char *plan_key = dsp_proto_job_key(id, "plan.json");
    char *active_key = dsp_proto_active_key(id);
    char *spec_text = dsp_spec_to_json(spec);
    char *plan_text = NULL;
    dsp_plan *plan = NULL;
    dsp_buf cur = DSP_BUF_INIT;
    dsp_job_state state = DSP_JOB_RUNNING;
    dsp_status st;

    *created = 0;
    st = dsp_proto_check_job_id(id, err);
    if (st != DSP_OK)
        goto out;

    /* An existing job: the same spec is a no-op, another spec is rejected. */
    st = dsp_proto_get(s, spec_key, &cur, NULL, err);
    if (st == DSP_OK) {
        if (cur.len != strlen(spec_text) || memcmp(cur.data, spec_text, cur.len) != 0) {
            st = dsp_err_set(err, DSP_EPRECOND,
                             "job %s already exists with a different spec; submit under another "
                             "--job-id (or omit it to get one derived from the spec)",
                             id);
            goto out;
        }
        st = dsp_job_read_state(s, id, &state, NULL, err);
        if (st != DSP_OK || state != DSP_JOB_RUNNING)
            goto out;
        dsp_obj_info pi;
        if (dsp_store_head(s, plan_key, &pi, err) == DSP_OK) {
            /* Complete an interrupted submission: the index entry is cheap. */
            st = dsp_proto_put(s, active_key, "{}", 2, NULL, err);
            goto out;
        }
    } else if (st != DSP_ENOTFOUND) {
        goto out;
    }

    st = dsp_plan_check_store(spec, dsp_store_uri(s), err);
    if (st == DSP_OK)
        st = dsp_plan_build(spec, &plan, err);
    if (st != DSP_OK) {
        /* An input that matches no object makes the spec invalid (exit 2,
         * as from explain), not a missing job (exit 5). */
        if (st == DSP_ENOTFOUND)
            st = err->code = DSP_EINVAL;
        dsp_err_prefix(err, "planning job %s", id);
        goto out;
    }
    st = check_stages(plan, err);
    if (st != DSP_OK)
        goto out;
    /* Publishing fails on objects that DSpark did not write, so such an
     * object fails the submission before any task runs. Publishing checks
     * again, for objects added while the job runs. */
    st = dsp_publish_check_output(s, spec->output_uri, err);
    if (st != DSP_OK)
        goto out;
    st = claim_output(s, id, spec->output_uri, err);
    if (st != DSP_OK)
        goto out;

    st = dsp_proto_create(s, spec_key, spec_text, strlen(spec_text), NULL, err);
    if (st == DSP_OK) {
        *created = 1;
    } else if (st == DSP_EPRECOND) {
        st = dsp_err_set(err, DSP_EPRECOND,
                         "job %s was submitted at the same time with a different spec", id);
        goto out;
    } else {
        goto out;
    }
    plan_text = dsp_plan_to_json(plan);
    st = dsp_proto_create(s, plan_key, plan_text, strlen(plan_text), NULL, err);
    if (st == DSP_EPRECOND) {
        /* A concurrent submission of the same spec planned first; its plan
         * is the job's plan. */
        *created = 0;
        st = DSP_OK;
    }
    if (st != DSP_OK)
        goto out;
    st = confirm_output_claim(s, id, spec->output_uri, err);
    if (st != DSP_OK)
        goto out;
    st = dsp_proto_put(s, active_key, "{}", 2, NULL, err);
    if (st == DSP_OK && *created)
        DSP_INFO("job_submitted", "job=%s stages=%zu tasks=%zu bytes=%llu", id, plan->nstages,
                 plan->total_tasks, (unsigned long long)plan->total_bytes);
out:
    dsp_plan_free(plan);
    dsp_buf_free(&cur);
    free(plan_text);
    free(spec_text);
    free(active_key);
    free(plan_key);
    free(spec_key);
    return st;
}

dsp_status dsp_job_load(dsp_store *s, const char *id, dsp_job **out, dsp_err *err)
{
    char *spec_key = dsp_proto_job_key(id, "spec.json");
    char *plan_key = dsp_proto_job_key(id, "plan.json");
    dsp_buf b = DSP_BUF_INIT;
    dsp_job *job = dsp_xcalloc(1, sizeof *job);
    dsp_status st;

    *out = NULL;
    job->id = dsp_xstrdup(id);
    st = dsp_proto_get(s, spec_key, &b, NULL, err);
    if (st == DSP_ENOTFOUND)
        dsp_err_set(err, DSP_ENOTFOUND, "job %s not found in %s", id, dsp_store_uri(s));
    if (st != DSP_OK)
        goto out;
    st = dsp_spec_parse(b.data, b.len, spec_key, &job->spec, err);
    if (st != DSP_OK)
        goto out;
    st = dsp_proto_get(s, plan_key, &b, NULL, err);
    if (st == DSP_ENOTFOUND)
        dsp_err_set(err, DSP_ENOTFOUND, "job %s has no plan yet (submission in progress)", id);
    if (st != DSP_OK)
        goto out;
    st = dsp_plan_from_json(b.data, b.len, &job->plan, err);
    if (st != DSP_OK)
        dsp_err_prefix(err, "reading %s", plan_key);
out:
    if (st == DSP_OK)
        *out = job;
    else
        dsp_job_free(job);
    dsp_buf_free(&b);
    free(plan_key);
    free(spec_key);
    return st;
}

void dsp_job_free(dsp_job *job)
{
    if (!job)
        return;
    dsp_spec_free(job->spec);
    dsp_plan_free(job->plan);
    free(job->id);
    free(job);
}

dsp_status dsp_job_read_state(dsp_store *s, const char *id, dsp_job_state *out, cJSON **state,
                              dsp_err *err)
{
    char *key = dsp_proto_job_key(id, "state.json");
    cJSON *o = NULL;
    dsp_status st = dsp_proto_get_json(s, key, &o, NULL, err);

    *out = DSP_JOB_RUNNING;
    if (state)
        *state = NULL;
    if (st == DSP_ENOTFOUND) {
        st = DSP_OK;
    } else if (st == DSP_OK) {
        *out = state_from_name(json_string(o, "state"));
        if (state) {
            *state = o;
            o = NULL;
        }
    }
    cJSON_Delete(o);
    free(key);
    return st;
}

dsp_status dsp_job_finish(dsp_store *s, const char *id, dsp_job_state st_new, const cJSON *extra,
                          dsp_job_state *actual, dsp_err *err)
{
    char *key = dsp_proto_job_key(id, "state.json");
    char *active_key = dsp_proto_active_key(id);
    cJSON *o = cJSON_CreateObject();
    char *body;
    dsp_status st;

    cJSON_AddNumberToObject(o, "schema_version", DSP_PROTO_SCHEMA_VERSION);
    cJSON_AddStringToObject(o, "job", id);
    cJSON_AddStringToObject(o, "state", dsp_job_state_name(st_new));
    cJSON_AddNumberToObject(o, "time_ms", (double)dsp_now_ms());
    if (extra)
        for (const cJSON *f = extra->child; f; f = f->next)
            cJSON_AddItemToObject(o, f->string, cJSON_Duplicate(f, 1));
    body = cJSON_PrintUnformatted(o);

    if (actual)
        *actual = st_new;
    st = dsp_proto_create(s, key, body, strlen(body), NULL, err);
    if (st == DSP_OK) {
        DSP_INFO("job_finished", "job=%s state=%s", id, dsp_job_state_name(st_new));
    } else if (st == DSP_EPRECOND) {
        dsp_job_state seen;
        st = dsp_job_read_state(s, id, &seen, NULL, err);
        if (st == DSP_OK && actual)
            *actual = seen;
    }
    if (st == DSP_OK) {
        const char *keys[1] = {active_key};
        dsp_err derr;
        if (dsp_proto_delete(s, keys, 1, &derr) != DSP_OK)
            DSP_WARN("index_delete_failed", "job=%s key=%s error=%s", id, active_key, derr.msg);
    }
    free(body);
    cJSON_Delete(o);
    free(active_key);
    free(key);
    return st;
}

/* Index of a task id ("t00042") in a stage, or -1. */
static long task_index(const dsp_plan_stage *stage, const char *id, size_t len)
{
    char buf[32];
    char *end;
    long n;

    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, id, len);
    buf[len] = '\0';
    n = strtol(buf + 1, &end, 10);
    if (*end == '\0' && n >= 0 && (size_t)n < stage->ntasks && !strcmp(stage->tasks[n].id, buf))
        return n;
    for (size_t i = 0; i < stage->ntasks; i++)
        if (!strcmp(stage->tasks[i].id, buf))
            return (long)i;
    return -1;
}

/* Task id of a key under prefix: the path segment after the prefix, with
 * ".json" removed when the segment is the last one. */
static long key_task(const dsp_plan_stage *stage, const char *key, const char *prefix)
{
    const char *t = key + strlen(prefix);
    size_t len = strcspn(t, "/");

    if (t[len] == '\0' && len > 5 && !strcmp(t + len - 5, ".json"))
        len -= 5;
    return task_index(stage, t, len);
}

dsp_status dsp_job_progress(dsp_store *s, const dsp_job *job, dsp_stage_progress *stages,
                            dsp_err *err)
{
    int64_t now = dsp_now_ms();
    int64_t lease_ms = (int64_t)job->spec->lease_seconds * 1000;
    int max_attempts = job->spec->max_attempts > 0 ? job->spec->max_attempts : 4;
    dsp_status st = DSP_OK;

    for (size_t si = 0; si < job->plan->nstages && st == DSP_OK; si++) {
        const dsp_plan_stage *stage = &job->plan->stages[si];
        dsp_stage_progress *p = &stages[si];
        unsigned char *done = dsp_xcalloc(stage->ntasks + 1, 1);
        int *fails = dsp_xcalloc(stage->ntasks + 1, sizeof *fails);
        const char *kinds[3] = {"commits", "leases", "errors"};

        memset(p, 0, sizeof *p);
        p->tasks = stage->ntasks;
        p->bytes = stage->bytes;
        for (int k = 0; k < 3 && st == DSP_OK; k++) {
            char *prefix = dsp_xasprintf("jobs/%s/%s/%s/", job->id, kinds[k], stage->id);
            dsp_list_page page;
            st = dsp_proto_list(s, prefix, &page, err);
            for (size_t i = 0; st == DSP_OK && i < page.n; i++) {
                long t = key_task(stage, page.items[i].key, prefix);
                if (t < 0)
                    continue;
                if (k == 0 && !done[t]) {
                    done[t] = 1;
                    p->committed++;
                    p->bytes_committed += stage->tasks[t].bytes;
                } else if (k == 1 && !done[t] && now - page.items[i].mtime_ms < lease_ms) {
                    p->running++;
                } else if (k == 2) {
                    p->failed_attempts++;
                    if (!done[t] && ++fails[t] == max_attempts)
                        p->failed_tasks++;
                }
            }
            if (st == DSP_OK)
                dsp_list_page_free(&page);
            free(prefix);
        }
        free(fails);
        free(done);
    }
    return st;
}

static void add_number(cJSON *o, const char *name, double v)
{
    cJSON *cur = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsNumber(cur))
        cJSON_SetNumberValue(cur, cur->valuedouble + v);
    else
        cJSON_AddNumberToObject(o, name, v);
}

static void merge_object(cJSON *sum, const cJSON *add)
{
    for (const cJSON *f = add->child; f; f = f->next) {
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(sum, f->string);
        if (cJSON_IsNumber(f))
            add_number(sum, f->string, f->valuedouble);
        else if (cJSON_IsObject(f) && cJSON_IsObject(cur))
            merge_object(cur, f);
        else if (!cur)
            cJSON_AddItemToObject(sum, f->string, cJSON_Duplicate(f, 1));
    }
}

void dsp_job_merge_counters(cJSON *sum, const cJSON *op_counters)
{
    int i = 0;

    if (!cJSON_IsArray(op_counters))
        return;
    for (const cJSON *step = op_counters->child; step; step = step->next, i++) {
        cJSON *cur = cJSON_GetArrayItem(sum, i);
        if (!cur)
            cJSON_AddItemToArray(sum, cJSON_Duplicate(step, 1));
        else if (cJSON_IsObject(cur) && cJSON_IsObject(step))
            merge_object(cur, step);
    }
}

/* Numeric counters of the status document, summed over commit manifests. */
static const char *const status_counter_fields[] = {
    "records_in", "records_out", "records_rejected", "records_utf8_repaired", "bytes_in",
    "bytes_out", "cpu_seconds", "requests", "coord_requests", "retries"};

/* Add one commit manifest of `stage` to the status counters. In a job with
 * shuffle stages, later stages re-read intermediates, so the input side
 * comes from stage 0 and the output side from the last stage only. */
static void add_commit(cJSON *counters, const cJSON *c, const dsp_plan *plan,
                       const dsp_plan_stage *stage)
{
    int first = stage->index == 0, last = (size_t)stage->index + 1 == plan->nstages;
    for (size_t i = 0; i < sizeof status_counter_fields / sizeof status_counter_fields[0]; i++) {
        const char *field = status_counter_fields[i];
        /* A dedup filter stage re-reads the inputs and repairs them again. */
        int input_side = !strcmp(field, "records_in") || !strcmp(field, "bytes_in") ||
                         !strcmp(field, "records_utf8_repaired");
        int output_side = !strcmp(field, "records_out") || !strcmp(field, "bytes_out");
        if ((input_side && !first) || (output_side && !last))
            continue;
        add_number(counters, field, json_number(c, field));
    }
    dsp_job_merge_counters(cJSON_GetObjectItemCaseSensitive(counters, "operators"),
                           cJSON_GetObjectItemCaseSensitive(c, "op_counters"));
}

/* Add the commits of a stage, from its seal when there is one. */
static dsp_status stage_counters(dsp_store *s, const dsp_job *job, const dsp_plan_stage *stage,
                                 cJSON *counters, int *sealed, dsp_err *err)
{
    cJSON *seal = NULL;
    dsp_status st = dsp_seal_read(s, job->id, stage->id, &seal, err);

    *sealed = st == DSP_OK;
    if (st == DSP_OK) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(seal, "tasks"))
            add_commit(counters, c, job->plan, stage);
        cJSON_Delete(seal);
        return DSP_OK;
    }
    if (st != DSP_ENOTFOUND)
        return st;

    char *prefix = dsp_xasprintf("jobs/%s/commits/%s/", job->id, stage->id);
    dsp_list_page page;
    st = dsp_proto_list(s, prefix, &page, err);
    free(prefix);
    if (st != DSP_OK)
        return st;
    for (size_t i = 0; i < page.n && st == DSP_OK; i++) {
        cJSON *c = NULL;
        st = dsp_proto_get_json(s, page.items[i].key, &c, NULL, err);
        if (st == DSP_OK)
            add_commit(counters, c, job->plan, stage);
        cJSON_Delete(c);
    }
    dsp_list_page_free(&page);
    return st;
}

static dsp_status collect_errors(dsp_store *s, const dsp_job *job, cJSON *errors, dsp_err *err)
{
    char *prefix = dsp_xasprintf("jobs/%s/errors/", job->id);
    dsp_list_page page;
    dsp_status st = dsp_proto_list(s, prefix, &page, err);

    free(prefix);
    if (st != DSP_OK)
        return st;
    /* The newest errors matter most when there are many. */
    size_t first = page.n > STATUS_MAX_ERRORS ? page.n - STATUS_MAX_ERRORS : 0;
    for (size_t i = first; i < page.n && st == DSP_OK; i++) {
        cJSON *e = NULL;
        st = dsp_proto_get_json(s, page.items[i].key, &e, NULL, err);
        if (st == DSP_ENOTFOUND) {
            st = DSP_OK; /* removed by gc meanwhile */
            continue;
        }
        if (st == DSP_OK)
            cJSON_AddItemToArray(errors, e);
    }
    dsp_list_page_free(&page);
    return st;
}

dsp_status dsp_job_status_json(dsp_store *s, const char *id, cJSON **out, dsp_err *err)
{
    dsp_job *job = NULL;
    cJSON *doc = NULL, *final = NULL;
    dsp_stage_progress *prog = NULL;
    dsp_job_state state;
    dsp_status st;

    *out = NULL;
    st = dsp_job_load(s, id, &job, err);
    if (st != DSP_OK)
        return st;
    st = dsp_job_read_state(s, id, &state, &final, err);
    if (st != DSP_OK)
        goto out;
    prog = dsp_xcalloc(job->plan->nstages, sizeof *prog);
    st = dsp_job_progress(s, job, prog, err);
    if (st != DSP_OK)
        goto out;

    doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "schema_version", DSP_STATUS_SCHEMA_VERSION);
    cJSON_AddStringToObject(doc, "job", id);
    cJSON_AddStringToObject(doc, "state", dsp_job_state_name(state));
    cJSON_AddStringToObject(doc, "output", job->spec->output_uri);
    cJSON_AddStringToObject(doc, "spec_hash", job->spec->spec_hash);

    cJSON *stages = cJSON_AddArrayToObject(doc, "stages");
    cJSON *counters = cJSON_AddObjectToObject(doc, "counters");
    /* Every documented counter is present from submit on, as zero until a
     * commit adds to it. */
    for (size_t i = 0; i < sizeof status_counter_fields / sizeof status_counter_fields[0]; i++)
        cJSON_AddNumberToObject(counters, status_counter_fields[i], 0);
    cJSON_AddArrayToObject(counters, "operators");
    for (size_t i = 0; i < job->plan->nstages && st == DSP_OK; i++) {
        const dsp_plan_stage *stage = &job->plan->stages[i];
        cJSON *o = cJSON_CreateObject();
        int sealed = 0;
        cJSON_AddItemToArray(stages, o);
        st = stage_counters(s, job, stage, counters, &sealed, err);
        cJSON_AddStringToObject(o, "id", stage->id);
        cJSON_AddStringToObject(o, "kind", stage->kind);
        cJSON_AddNumberToObject(o, "tasks", (double)prog[i].tasks);
        cJSON_AddNumberToObject(o, "committed", (double)prog[i].committed);
        cJSON_AddNumberToObject(o, "running", (double)prog[i].running);
        cJSON_AddNumberToObject(o, "failed_attempts", (double)prog[i].failed_attempts);
        cJSON_AddNumberToObject(o, "failed_tasks", (double)prog[i].failed_tasks);
        cJSON_AddBoolToObject(o, "sealed", sealed);
        cJSON_AddNumberToObject(o, "bytes", (double)prog[i].bytes);
        cJSON_AddNumberToObject(o, "bytes_committed", (double)prog[i].bytes_committed);
    }
    if (st != DSP_OK)
        goto out;
    st = collect_errors(s, job, cJSON_AddArrayToObject(doc, "errors"), err);
    if (st != DSP_OK)
        goto out;
    if (final) {
        cJSON_AddItemToObject(doc, "final", final);
        final = NULL;
    } else {
        cJSON_AddNullToObject(doc, "final");
    }
    *out = doc;
    doc = NULL;
out:
    cJSON_Delete(doc);
    cJSON_Delete(final);
    free(prog);
    dsp_job_free(job);
    return st;
}
