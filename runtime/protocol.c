/*
 * protocol.c - keys, counted store calls, conditional writes that survive
 * ambiguous responses, the conditional-write probe and task leases.
 *
 * Guarantees: a create or swap reported as DSP_OK means our bytes are the
 * stored object; DSP_EPRECOND means another writer's bytes are. Leases are
 * an optimization only: losing one never makes a result wrong, because
 * commits are create-only and first-wins.
 */
#include "protocol.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"

static _Atomic uint64_t g_requests;

uint64_t dsp_proto_requests(void) { return atomic_load(&g_requests); }
void dsp_proto_count(uint64_t n) { atomic_fetch_add(&g_requests, n); }

dsp_status dsp_proto_check_job_id(const char *id, dsp_err *err)
{
    size_t n = id ? strlen(id) : 0;

    if (n == 0 || n > 64)
        return dsp_err_set(err, DSP_EINVAL, "invalid job id '%s': it must have 1 to 64 characters",
                           id ? id : "");
    if (id[0] == '.' || id[0] == '-')
        return dsp_err_set(err, DSP_EINVAL, "invalid job id '%s': it must not start with '%c'", id,
                           id[0]);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok)
            return dsp_err_set(err, DSP_EINVAL,
                               "invalid job id '%s': character '%c' is not allowed (use letters, "
                               "digits, '.', '_' and '-')",
                               id, c);
    }
    return DSP_OK;
}

char *dsp_proto_job_key(const char *job, const char *name)
{
    return dsp_xasprintf("jobs/%s/%s", job, name);
}

char *dsp_proto_lease_key(const char *job, const char *stage, const char *task)
{
    if (!stage || !*stage)
        return dsp_xasprintf("jobs/%s/leases/%s", job, task);
    return dsp_xasprintf("jobs/%s/leases/%s/%s", job, stage, task);
}

char *dsp_proto_commit_key(const char *job, const char *stage, const char *task)
{
    return dsp_xasprintf("jobs/%s/commits/%s/%s.json", job, stage, task);
}

char *dsp_proto_seal_key(const char *job, const char *stage)
{
    return dsp_xasprintf("jobs/%s/seals/%s.json", job, stage);
}

char *dsp_proto_error_key(const char *job, const char *stage, const char *task,
                          const char *attempt)
{
    return dsp_xasprintf("jobs/%s/errors/%s/%s/%s.json", job, stage, task, attempt);
}

char *dsp_proto_attempt_prefix(const char *job, const char *stage, const char *task,
                               const char *attempt)
{
    return dsp_xasprintf("jobs/%s/attempts/%s/%s/%s", job, stage, task, attempt);
}

char *dsp_proto_active_key(const char *job) { return dsp_xasprintf("active/%s", job); }

dsp_status dsp_proto_get(dsp_store *s, const char *key, dsp_buf *out, dsp_obj_info *info,
                         dsp_err *err)
{
    dsp_proto_count(1);
    return dsp_store_get(s, key, 0, -1, out, info, err);
}

dsp_status dsp_proto_get_json(dsp_store *s, const char *key, cJSON **out, dsp_obj_info *info,
                              dsp_err *err)
{
    dsp_buf b = DSP_BUF_INIT;
    dsp_status st = dsp_proto_get(s, key, &b, info, err);

    *out = NULL;
    if (st == DSP_OK) {
        *out = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
        if (!*out || !cJSON_IsObject(*out)) {
            cJSON_Delete(*out);
            *out = NULL;
            st = dsp_err_set(err, DSP_ECORRUPT, "object %s in %s is not a JSON object", key,
                             dsp_store_uri(s));
        }
    }
    dsp_buf_free(&b);
    return st;
}

dsp_status dsp_proto_put(dsp_store *s, const char *key, const char *body, size_t len,
                         dsp_obj_info *info, dsp_err *err)
{
    dsp_put_opts opts = {DSP_PUT_ALWAYS, NULL, "application/json"};

    dsp_proto_count(1);
    return dsp_store_put(s, key, body, len, &opts, info, err);
}

/* After DSP_EPRECOND: the write counts as ours when the stored bytes equal
 * body (an earlier try of the same request succeeded). */
static dsp_status resolve_precond(dsp_store *s, const char *key, const char *body, size_t len,
                                  dsp_obj_info *info, dsp_err *err)
{
    dsp_buf cur = DSP_BUF_INIT;
    dsp_obj_info ci;
    dsp_err rerr;
    dsp_status st = dsp_proto_get(s, key, &cur, &ci, &rerr);

    if (st == DSP_OK && cur.len == len && memcmp(cur.data, body, len) == 0) {
        if (info)
            *info = ci;
        st = DSP_OK;
    } else if (st == DSP_ENOTFOUND) {
        st = dsp_err_set(err, DSP_ENOTFOUND, "%s in %s was deleted during a conditional write",
                         key, dsp_store_uri(s));
    } else if (st == DSP_OK) {
        st = dsp_err_set(err, DSP_EPRECOND, "conditional write of %s in %s lost to another writer",
                         key, dsp_store_uri(s));
    } else {
        *err = rerr;
    }
    dsp_buf_free(&cur);
    return st;
}

dsp_status dsp_proto_create(dsp_store *s, const char *key, const char *body, size_t len,
                            dsp_obj_info *info, dsp_err *err)
{
    dsp_put_opts opts = {DSP_PUT_IF_ABSENT, NULL, "application/json"};
    dsp_status st;

    dsp_proto_count(1);
    st = dsp_store_put(s, key, body, len, &opts, info, err);
    if (st == DSP_EPRECOND)
        st = resolve_precond(s, key, body, len, info, err);
    return st;
}

dsp_status dsp_proto_swap(dsp_store *s, const char *key, const char *etag, const char *body,
                          size_t len, dsp_obj_info *info, dsp_err *err)
{
    dsp_put_opts opts = {DSP_PUT_IF_MATCH, etag, "application/json"};
    dsp_status st;

    dsp_proto_count(1);
    st = dsp_store_put(s, key, body, len, &opts, info, err);
    if (st == DSP_EPRECOND)
        st = resolve_precond(s, key, body, len, info, err);
    return st;
}

dsp_status dsp_proto_delete(dsp_store *s, const char *const *keys, size_t n, dsp_err *err)
{
    if (n == 0)
        return DSP_OK;
    dsp_proto_count((n + 999) / 1000);
    return dsp_store_delete(s, keys, n, err);
}

dsp_status dsp_proto_list(dsp_store *s, const char *prefix, dsp_list_page *out, dsp_err *err)
{
    dsp_status st;

    memset(out, 0, sizeof *out);
    st = dsp_store_list_all(s, prefix, NULL, out, err);
    dsp_proto_count(st == DSP_OK ? 1 + out->n / 1000 : 1);
    return st;
}

dsp_status dsp_proto_delete_prefix(dsp_store *s, const char *prefix, dsp_err *err)
{
    dsp_list_page page;
    dsp_status st = dsp_proto_list(s, prefix, &page, err);

    if (st != DSP_OK)
        return st;
    if (page.n > 0) {
        const char **keys = dsp_xcalloc(page.n, sizeof *keys);
        for (size_t i = 0; i < page.n; i++)
            keys[i] = page.items[i].key;
        st = dsp_proto_delete(s, keys, page.n, err);
        free(keys);
    }
    dsp_list_page_free(&page);
    return st;
}

dsp_status dsp_proto_probe_conditional(dsp_store *s, dsp_err *err)
{
    /* A key directly under the root: on a local store, a shared probe
     * directory could be pruned by one prober while another creates in it. */
    char *key = dsp_xasprintf("_dspark-probe-%016llx", (unsigned long long)dsp_rand64());
    dsp_put_opts opts = {DSP_PUT_IF_ABSENT, NULL, "text/plain"};
    dsp_status st;

    /* Plain store calls, not dsp_proto_create: the second write's bytes
     * differ on purpose, and a re-read must not turn its failure into success. */
    dsp_proto_count(3);
    st = dsp_store_put(s, key, "first", 5, &opts, NULL, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "conditional-write check (first create-only PUT of %s)", key);
        goto out;
    }
    st = dsp_store_put(s, key, "second", 6, &opts, NULL, err);
    if (st == DSP_OK) {
        st = dsp_err_set(err, DSP_EUNSUPPORTED,
                         "store %s does not enforce conditional writes: a second PUT with "
                         "If-None-Match: * on %s succeeded instead of failing with 412. DSpark "
                         "needs create-only writes for claims and commits, so use a store that "
                         "honours If-None-Match on PUT, or a local directory",
                         dsp_store_uri(s), key);
    } else if (st == DSP_EPRECOND) {
        st = DSP_OK;
    } else {
        dsp_err_prefix(err, "conditional-write check (second create-only PUT of %s)", key);
    }
    {
        const char *keys[1] = {key};
        dsp_err derr;
        dsp_store_delete(s, keys, 1, &derr);
    }
out:
    free(key);
    return st;
}

/* ---- leases ---- */

static int64_t json_int(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static void json_str(const cJSON *o, const char *name, char *dst, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    snprintf(dst, size, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

dsp_status dsp_lease_parse(const char *body, size_t len, dsp_lease *out, dsp_err *err)
{
    cJSON *o = cJSON_ParseWithLength(body, len);
    const cJSON *spec;

    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return dsp_err_set(err, DSP_ECORRUPT, "lease is not a JSON object");
    }
    json_str(o, "stage", out->stage, sizeof out->stage);
    json_str(o, "task", out->task, sizeof out->task);
    json_str(o, "worker", out->worker, sizeof out->worker);
    json_str(o, "attempt", out->attempt, sizeof out->attempt);
    out->started_ms = json_int(o, "started_ms");
    out->expires_ms = json_int(o, "expires_ms");
    spec = cJSON_GetObjectItemCaseSensitive(o, "speculative");
    if (cJSON_IsObject(spec)) {
        json_str(spec, "worker", out->spec_worker, sizeof out->spec_worker);
        json_str(spec, "attempt", out->spec_attempt, sizeof out->spec_attempt);
        out->spec_started_ms = json_int(spec, "started_ms");
    }
    cJSON_Delete(o);
    return DSP_OK;
}

/* The body of the lease as the primary holder writes it. */
static char *lease_body(const dsp_lease *l)
{
    cJSON *o = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(o, "stage", l->stage);
    cJSON_AddStringToObject(o, "task", l->task);
    cJSON_AddStringToObject(o, "worker", l->worker);
    cJSON_AddStringToObject(o, "attempt", l->attempt);
    cJSON_AddNumberToObject(o, "started_ms", (double)l->started_ms);
    cJSON_AddNumberToObject(o, "expires_ms", (double)l->expires_ms);
    if (l->spec_attempt[0]) {
        cJSON *spec = cJSON_AddObjectToObject(o, "speculative");
        cJSON_AddStringToObject(spec, "worker", l->spec_worker);
        cJSON_AddStringToObject(spec, "attempt", l->spec_attempt);
        cJSON_AddNumberToObject(spec, "started_ms", (double)l->spec_started_ms);
    }
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

dsp_status dsp_lease_claim(dsp_store *s, const char *job, const char *stage, const char *task,
                           const char *worker, const char *attempt, int lease_seconds,
                           const dsp_lease *current, int speculative, dsp_lease *out,
                           dsp_err *err)
{
    char *key = dsp_proto_lease_key(job, stage, task);
    int64_t now = dsp_now_ms();
    dsp_lease next;
    dsp_obj_info info;
    char *body;
    dsp_status st;

    memset(&next, 0, sizeof next);
    if (current && speculative) {
        /* Keep the primary holder's fields and add ours. */
        next = *current;
        snprintf(next.spec_worker, sizeof next.spec_worker, "%s", worker);
        snprintf(next.spec_attempt, sizeof next.spec_attempt, "%s", attempt);
        next.spec_started_ms = now;
    } else {
        snprintf(next.stage, sizeof next.stage, "%s", stage);
        snprintf(next.task, sizeof next.task, "%s", task);
        snprintf(next.worker, sizeof next.worker, "%s", worker);
        snprintf(next.attempt, sizeof next.attempt, "%s", attempt);
        next.started_ms = now;
        next.expires_ms = now + (int64_t)lease_seconds * 1000;
    }
    body = lease_body(&next);
    if (current)
        st = dsp_proto_swap(s, key, current->etag, body, strlen(body), &info, err);
    else
        st = dsp_proto_create(s, key, body, strlen(body), &info, err);
    if (st == DSP_ENOTFOUND)
        st = dsp_err_set(err, DSP_EPRECOND, "lease %s disappeared during the claim", key);
    if (st == DSP_OK) {
        snprintf(next.etag, sizeof next.etag, "%s", info.etag);
        next.speculative = current && speculative;
        if (next.speculative) {
            /* From here on this struct describes our attempt. */
            snprintf(next.worker, sizeof next.worker, "%s", worker);
            snprintf(next.attempt, sizeof next.attempt, "%s", attempt);
            next.started_ms = now;
        }
        *out = next;
    }
    free(body);
    free(key);
    return st;
}

dsp_status dsp_lease_renew(dsp_store *s, const char *job, dsp_lease *l, int lease_seconds,
                           dsp_err *err)
{
    char *key = dsp_proto_lease_key(job, l->stage, l->task);
    dsp_status st = DSP_EPRECOND;

    if (l->speculative) {
        /* The primary holder renews the lease; a speculative attempt only
         * needs to stop when the task is committed, which its commit finds. */
        free(key);
        return DSP_OK;
    }
    for (int round = 0; round < 3; round++) {
        dsp_lease next = *l;
        dsp_obj_info info;
        char *body;

        next.expires_ms = dsp_now_ms() + (int64_t)lease_seconds * 1000;
        body = lease_body(&next);
        st = dsp_proto_swap(s, key, l->etag, body, strlen(body), &info, err);
        free(body);
        if (st == DSP_OK) {
            next.speculative = 0;
            snprintf(next.etag, sizeof next.etag, "%s", info.etag);
            *l = next;
            break;
        }
        if (st != DSP_EPRECOND)
            break;

        /* Someone changed the lease. Still ours (a speculative attempt was
         * added)? Then merge its fields and try again on the new ETag. */
        dsp_buf cur = DSP_BUF_INIT;
        dsp_obj_info ci;
        dsp_lease seen;
        st = dsp_proto_get(s, key, &cur, &ci, err);
        if (st == DSP_OK)
            st = dsp_lease_parse(cur.data, cur.len, &seen, err);
        dsp_buf_free(&cur);
        if (st != DSP_OK)
            break;
        if (strcmp(seen.worker, l->worker) != 0 || strcmp(seen.attempt, l->attempt) != 0) {
            st = dsp_err_set(err, DSP_EPRECOND, "lease %s was taken over by worker %s attempt %s",
                             key, seen.worker, seen.attempt);
            break;
        }
        snprintf(l->etag, sizeof l->etag, "%s", ci.etag);
        snprintf(l->spec_worker, sizeof l->spec_worker, "%s", seen.spec_worker);
        snprintf(l->spec_attempt, sizeof l->spec_attempt, "%s", seen.spec_attempt);
        l->spec_started_ms = seen.spec_started_ms;
        st = DSP_EPRECOND;
    }
    free(key);
    return st;
}

void dsp_lease_release(dsp_store *s, const char *job, const dsp_lease *l)
{
    char *key = dsp_proto_lease_key(job, l->stage, l->task);
    dsp_buf cur = DSP_BUF_INIT;
    dsp_lease seen;
    dsp_err err;

    if (!l->speculative && dsp_proto_get(s, key, &cur, NULL, &err) == DSP_OK &&
        dsp_lease_parse(cur.data, cur.len, &seen, &err) == DSP_OK &&
        strcmp(seen.attempt, l->attempt) == 0) {
        /* NOTE: S3 has no conditional DELETE here, so a takeover between the
         * read and the delete loses that lease; the task then only runs again. */
        const char *keys[1] = {key};
        if (dsp_proto_delete(s, keys, 1, &err) != DSP_OK)
            DSP_WARN("lease_release_failed", "key=%s error=%s", key, dsp_status_name(err.code));
    }
    dsp_buf_free(&cur);
    free(key);
}
