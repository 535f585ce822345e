/*
 * worker.c - the worker loop.
 *
 * Threads: `slots` task threads and one heartbeat thread. A task thread
 * takes the scheduler lock, finds work (a task to claim, a stage to seal, a
 * job to publish), releases the lock and runs it. The heartbeat thread
 * renews the leases of running work every lease_seconds/3, and checks the
 * state of their jobs so that a cancelled job or a lost lease stops the
 * pipeline through its cancel flag.
 *
 * Scheduling reads listings of commits/, leases/ and errors/ of a job's
 * first unsealed stage and claims from that snapshot in a random order, so
 * workers rarely collide. After a few lost claims it lists again. The
 * request cost per task is one lease PUT and one commit PUT plus a share of
 * the listings. Leases of committed tasks are left for `gc`.
 *
 * Correctness does not depend on any of this: commits are create-only and
 * first-wins, and nothing reads an attempt's files except through its
 * winning commit.
 */
#include "worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../storage/store.h"
#include "../tasks/input_cache.h"
#include "../tasks/pipeline.h"
#include "commit.h"
#include "job.h"
#include "protocol.h"
#include "publish.h"
#include "stage_wide.h"

#define MISSES_BEFORE_RELIST 3
#define RELIST_MIN_MS 200
#define SPECULATE_SHARE 0.75      /* committed share of a stage before speculating */
#define SPECULATE_FACTOR 2        /* times the median task duration */
#define SPECULATE_MIN_MS 10000
#define SPECULATE_CHECK_MS 2000
#define SPECULATE_MAX_PROBES 4    /* leases read per speculation check */
#define STATE_CHECK_MAX_MS 2000
#define JOBS_REFRESH_MS 2000
#define RETRY_BASE_MS 1000
#define RETRY_CAP_MS 30000

static volatile sig_atomic_t g_stop;

void dsp_worker_stop(void) { g_stop = 1; }

typedef struct {
    char *id;
    dsp_job *job;
    int max_attempts, lease_seconds;
    volatile int finished;        /* final state seen or job left the index */
    size_t stage;                 /* first stage not known to be sealed */

    /* Snapshot of the current stage from its last listing. */
    int64_t listed_mono;
    int *fresh;                   /* unclaimed tasks, shuffled */
    size_t nfresh, fresh_pos;
    int *expired;                 /* tasks whose lease looks expired */
    size_t nexpired, expired_pos;
    int *live;                    /* tasks with a live lease */
    size_t nlive;
    int *failures;                /* failed attempts per task */
    size_t committed;
    int misses;

    int committed_since_listing;  /* this worker committed after the last listing */
    int64_t *durations;           /* ms of commits seen in the current stage */
    size_t ndurations, capdurations;
    int durations_fetched;
    int64_t speculate_mono, publish_mono;
} job_entry;

typedef struct {
    job_entry *je;
    int publish;                  /* publish the job instead of a task */
    size_t stage, task;
    int failures;                 /* failed attempts before this one */
    dsp_lease lease;
} work_item;

typedef struct running_task {
    job_entry *je;
    dsp_lease lease;
    volatile int cancel;
    volatile int lost;
    int64_t renewed_mono, state_mono;
    struct running_task *next;
} running_task;

static struct {
    dsp_worker_config cfg;
    dsp_store *store;
    char worker_id[DSP_PROTO_ID_MAX];

    pthread_mutex_t lock;         /* jobs and scheduling */
    job_entry **jobs;
    size_t njobs;
    int64_t jobs_listed_mono;

    pthread_mutex_t run_lock;     /* running list */
    running_task *running;
    int nrunning;
    int64_t last_work_mono;
    volatile int exit;

    pthread_mutex_t stats_lock;   /* request attribution to commits */
    dsp_store_stats last_stats;
    uint64_t last_coord;
} W;

/* ---- helpers ---- */

static void sleep_interruptible(int64_t ms)
{
    int64_t end = dsp_mono_ms() + ms;
    while (!g_stop && !W.exit && dsp_mono_ms() < end)
        dsp_sleep_ms(ms < 100 ? ms : 100);
}

static void make_attempt_id(char *out, size_t size, int number, int speculative)
{
    snprintf(out, size, "a%d%s-%08llx", number, speculative ? "s" : "",
             (unsigned long long)(dsp_rand64() & 0xffffffffu));
}

static uint64_t stats_total(const dsp_store_stats *s)
{
    return s->get + s->head + s->put + s->list + s->del + s->copy + s->mpu_parts + s->mpu_other;
}

static int64_t median_ms(int64_t *v, size_t n)
{
    /* Insertion sort: n is the number of commits seen, small in practice. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            int64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n ? v[n / 2] : 0;
}

static void add_duration(job_entry *je, int64_t ms)
{
    if (je->ndurations == je->capdurations) {
        je->capdurations = je->capdurations ? je->capdurations * 2 : 16;
        je->durations = dsp_xrealloc(je->durations, je->capdurations * sizeof *je->durations);
    }
    je->durations[je->ndurations++] = ms;
}

static void reset_snapshot(job_entry *je)
{
    free(je->fresh);
    free(je->expired);
    free(je->live);
    free(je->failures);
    je->fresh = je->expired = je->live = je->failures = NULL;
    je->nfresh = je->fresh_pos = je->nexpired = je->expired_pos = je->nlive = 0;
    je->committed = 0;
    je->misses = 0;
}

static void job_entry_free(job_entry *je)
{
    reset_snapshot(je);
    free(je->durations);
    dsp_job_free(je->job);
    free(je->id);
    free(je);
}

/* ---- jobs ---- */

static job_entry *find_job(const char *id)
{
    for (size_t i = 0; i < W.njobs; i++)
        if (!strcmp(W.jobs[i]->id, id))
            return W.jobs[i];
    return NULL;
}

static job_entry *add_job(const char *id)
{
    dsp_job *job = NULL;
    dsp_err err;
    dsp_status st = dsp_job_load(W.store, id, &job, &err);

    if (st != DSP_OK) {
        if (st != DSP_ENOTFOUND)
            DSP_WARN("job_load_failed", "job=%s error=%s message=\"%s\"", id, dsp_status_name(st),
                     err.msg);
        return NULL;
    }
    job_entry *je = dsp_xcalloc(1, sizeof *je);
    je->id = dsp_xstrdup(id);
    je->job = job;
    je->max_attempts = job->spec->max_attempts > 0 ? job->spec->max_attempts : 4;
    je->lease_seconds = job->spec->lease_seconds > 0 ? job->spec->lease_seconds : 60;
    W.jobs = dsp_xrealloc(W.jobs, (W.njobs + 1) * sizeof *W.jobs);
    W.jobs[W.njobs++] = je;
    DSP_INFO("job_found", "job=%s stages=%zu tasks=%zu", id, job->plan->nstages,
             job->plan->total_tasks);
    return je;
}

/* Stop working on a job. No task of it reads its input cache entries any
 * more, so they are removed. */
static void mark_job_finished(job_entry *je)
{
    je->finished = 1;
    char *prefix = dsp_input_cache_job_prefix(je->id);
    dsp_input_cache_remove_prefix(prefix);
    free(prefix);
}

/* Mark a job finished when its state.json records a final state. */
static void check_job_state(job_entry *je)
{
    dsp_job_state state;
    dsp_err err;

    if (dsp_job_read_state(W.store, je->id, &state, NULL, &err) == DSP_OK &&
        state != DSP_JOB_RUNNING) {
        DSP_INFO("job_final_seen", "job=%s state=%s", je->id, dsp_job_state_name(state));
        mark_job_finished(je);
    }
}

static void refresh_jobs(void)
{
    dsp_err err;

    W.jobs_listed_mono = dsp_mono_ms();
    if (W.cfg.job) {
        job_entry *je = find_job(W.cfg.job);
        if (!je)
            je = add_job(W.cfg.job);
        if (je && !je->finished)
            check_job_state(je);
        return;
    }

    dsp_list_page page;
    if (dsp_proto_list(W.store, "active/", &page, &err) != DSP_OK) {
        DSP_WARN("job_list_failed", "error=%s message=\"%s\"", dsp_status_name(err.code), err.msg);
        return;
    }

    /* Jobs that left the index are finished. Those with no running work
     * are freed, so a long-lived worker does not keep every plan it ever
     * ran. A finished job still listed stays, so it is not loaded again. */
    size_t kept = 0;
    for (size_t i = 0; i < W.njobs; i++) {
        job_entry *je = W.jobs[i];
        char *key = dsp_proto_active_key(je->id);
        int listed = 0, running = 0;
        for (size_t k = 0; k < page.n && !listed; k++)
            listed = !strcmp(page.items[k].key, key);
        free(key);
        if (!listed && !je->finished) {
            mark_job_finished(je);
            DSP_INFO("job_inactive", "job=%s reason=left_the_active_index", je->id);
        }
        pthread_mutex_lock(&W.run_lock);
        for (running_task *rt = W.running; rt && !running; rt = rt->next)
            running = rt->je == je;
        pthread_mutex_unlock(&W.run_lock);
        if (!listed && !running)
            job_entry_free(je);
        else
            W.jobs[kept++] = je;
    }
    W.njobs = kept;

    for (size_t k = 0; k < page.n; k++) {
        const char *id = page.items[k].key + strlen("active/");
        if (!find_job(id))
            add_job(id);
    }
    dsp_list_page_free(&page);
}

/* Record the job as failed because a task used up its attempts. */
static void fail_job(job_entry *je, const char *stage, const char *task, const char *attempt,
                     const char *code, const char *message)
{
    cJSON *extra = cJSON_CreateObject();
    dsp_job_state actual;
    dsp_err err;

    cJSON_AddStringToObject(extra, "stage", stage);
    cJSON_AddStringToObject(extra, "task", task);
    cJSON_AddStringToObject(extra, "attempt", attempt);
    cJSON_AddStringToObject(extra, "code", code);
    cJSON_AddStringToObject(extra, "message", message);

    /* The failing attempt's ids go on the line through the log context,
     * which a task thread has already set to them, so they appear once. */
    dsp_log_ctx saved;
    dsp_log_context_save(&saved);
    dsp_log_context(je->id, stage, task, attempt);
    if (dsp_job_finish(W.store, je->id, DSP_JOB_FAILED, extra, &actual, &err) != DSP_OK)
        DSP_ERROR("job_fail_record_failed", "error=\"%s\"", err.msg);
    else
        DSP_ERROR("job_failed", "max_attempts=%d", je->max_attempts);
    dsp_log_context_restore(&saved);
    mark_job_finished(je);
    cJSON_Delete(extra);
}

/* The job failed for good when a task has no attempts left: read its
 * newest error and record it in state.json. */
static void fail_job_from_errors(job_entry *je, const dsp_plan_stage *stage, size_t t)
{
    char *prefix = dsp_xasprintf("jobs/%s/errors/%s/%s/", je->id, stage->id, stage->tasks[t].id);
    dsp_list_page page;
    cJSON *e = NULL;
    dsp_err err;

    if (dsp_proto_list(W.store, prefix, &page, &err) == DSP_OK) {
        size_t newest = 0;
        for (size_t i = 1; i < page.n; i++)
            if (page.items[i].mtime_ms > page.items[newest].mtime_ms)
                newest = i;
        if (page.n > 0)
            dsp_proto_get_json(W.store, page.items[newest].key, &e, NULL, &err);
        dsp_list_page_free(&page);
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "attempt");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    fail_job(je, stage->id, stage->tasks[t].id, cJSON_IsString(a) ? a->valuestring : "",
             cJSON_IsString(c) ? c->valuestring : "", cJSON_IsString(m) ? m->valuestring : "");
    cJSON_Delete(e);
    free(prefix);
}

/* ---- stage snapshot ---- */

static long task_of_key(const dsp_plan_stage *stage, const char *key, const char *prefix)
{
    const char *t = key + strlen(prefix);
    size_t len = strcspn(t, "/");
    char id[32];

    if (t[len] == '\0' && len > 5 && !strcmp(t + len - 5, ".json"))
        len -= 5;
    if (len == 0 || len >= sizeof id)
        return -1;
    memcpy(id, t, len);
    id[len] = '\0';
    long n = strtol(id + 1, NULL, 10);
    if (n >= 0 && (size_t)n < stage->ntasks && !strcmp(stage->tasks[n].id, id))
        return n;
    for (size_t i = 0; i < stage->ntasks; i++)
        if (!strcmp(stage->tasks[i].id, id))
            return (long)i;
    return -1;
}

static dsp_status list_kind(job_entry *je, const dsp_plan_stage *stage, const char *kind,
                            dsp_list_page *page, char **prefix, dsp_err *err)
{
    *prefix = dsp_xasprintf("jobs/%s/%s/%s/", je->id, kind, stage->id);
    return dsp_proto_list(W.store, *prefix, page, err);
}

/* Seal the current stage when every task is committed. Returns 1 when the
 * stage is sealed (by us or someone else). */
static int read_lease(const char *job, const char *stage, const char *task, dsp_lease *out);

static int seal_stage(job_entry *je, const dsp_plan_stage *stage)
{
    char *key = dsp_proto_seal_key(je->id, stage->id);
    dsp_obj_info info;
    dsp_err err;
    dsp_status st;

    dsp_proto_count(1);
    st = dsp_store_head(W.store, key, &info, &err);
    if (st == DSP_ENOTFOUND) {
        /* Sealing reads every commit of the stage, so one worker does it
         * under a lease and the others pick up its seal at their next
         * listing. NOTE: the seal lease is not renewed. A stage whose
         * commits take longer than lease_seconds to read may be sealed
         * twice, which is harmless because both seals have the same bytes. */
        char attempt[DSP_PROTO_ID_MAX];
        dsp_lease lease, cur;
        make_attempt_id(attempt, sizeof attempt, 1, 0);
        st = dsp_lease_claim(W.store, je->id, stage->id, "_seal", W.worker_id, attempt,
                             je->lease_seconds, NULL, 0, &lease, &err);
        if (st == DSP_EPRECOND && read_lease(je->id, stage->id, "_seal", &cur) &&
            cur.expires_ms < dsp_now_ms())
            st = dsp_lease_claim(W.store, je->id, stage->id, "_seal", W.worker_id, attempt,
                                 je->lease_seconds, &cur, 0, &lease, &err);
        if (st == DSP_EPRECOND) {
            free(key);
            return 0;
        }
        if (st == DSP_OK) {
            st = dsp_seal_write(W.store, je->id, stage, &err);
            if (st != DSP_OK)
                dsp_lease_release(W.store, je->id, &lease);
        }
    }
    if (st != DSP_OK)
        DSP_WARN("seal_failed", "job=%s stage=%s error=%s message=\"%s\"", je->id, stage->id,
                 dsp_status_name(st), err.msg);
    free(key);
    return st == DSP_OK;
}

/*
 * List the current stage and rebuild the snapshot. Returns 1 when the
 * stage turned out to be sealed (the caller moves on), 0 otherwise.
 */
static int list_stage(job_entry *je)
{
    const dsp_plan_stage *stage = &je->job->plan->stages[je->stage];
    size_t n = stage->ntasks;
    unsigned char *committed = dsp_xcalloc(n + 1, 1);
    int64_t *lease_mtime = dsp_xcalloc(n + 1, sizeof *lease_mtime);
    int64_t *error_mtime = dsp_xcalloc(n + 1, sizeof *error_mtime);
    int64_t now = dsp_now_ms();
    int64_t lease_ms = (int64_t)je->lease_seconds * 1000;
    dsp_list_page page;
    char *prefix = NULL;
    dsp_err err;
    int sealed = 0;

    reset_snapshot(je);
    je->failures = dsp_xcalloc(n + 1, sizeof *je->failures);
    je->listed_mono = dsp_mono_ms();

    if (list_kind(je, stage, "commits", &page, &prefix, &err) != DSP_OK)
        goto list_failed;
    for (size_t i = 0; i < page.n; i++) {
        long t = task_of_key(stage, page.items[i].key, prefix);
        if (t >= 0 && !committed[t]) {
            committed[t] = 1;
            je->committed++;
        }
    }
    dsp_list_page_free(&page);
    free(prefix);
    prefix = NULL;

    if (je->committed == n) {
        sealed = seal_stage(je, stage);
        goto out;
    }

    if (list_kind(je, stage, "leases", &page, &prefix, &err) != DSP_OK)
        goto list_failed;
    for (size_t i = 0; i < page.n; i++) {
        long t = task_of_key(stage, page.items[i].key, prefix);
        if (t >= 0)
            lease_mtime[t] = page.items[i].mtime_ms ? page.items[i].mtime_ms : now;
    }
    dsp_list_page_free(&page);
    free(prefix);
    prefix = NULL;

    if (list_kind(je, stage, "errors", &page, &prefix, &err) != DSP_OK)
        goto list_failed;
    for (size_t i = 0; i < page.n; i++) {
        long t = task_of_key(stage, page.items[i].key, prefix);
        if (t < 0 || committed[t])
            continue;
        je->failures[t]++;
        if (page.items[i].mtime_ms > error_mtime[t])
            error_mtime[t] = page.items[i].mtime_ms;
    }
    dsp_list_page_free(&page);

    je->fresh = dsp_xcalloc(n + 1, sizeof *je->fresh);
    je->expired = dsp_xcalloc(n + 1, sizeof *je->expired);
    je->live = dsp_xcalloc(n + 1, sizeof *je->live);
    for (size_t t = 0; t < n; t++) {
        if (committed[t])
            continue;
        if (je->failures[t] >= je->max_attempts) {
            fail_job_from_errors(je, stage, t);
            goto out;
        }
        if (lease_mtime[t]) {
            /* A renewal rewrites the lease, so an old mtime means an
             * expired lease, and the lease body has the exact expiry.
             * NOTE: both compare the store's or another worker's clock
             * with ours, so clocks must agree to well within a lease. */
            if (now - lease_mtime[t] > lease_ms)
                je->expired[je->nexpired++] = (int)t;
            else
                je->live[je->nlive++] = (int)t;
            continue;
        }
        if (je->failures[t] > 0) {
            int shift = je->failures[t] - 1 < 5 ? je->failures[t] - 1 : 5;
            int64_t backoff = RETRY_BASE_MS << shift;
            if (backoff > RETRY_CAP_MS)
                backoff = RETRY_CAP_MS;
            if (now - error_mtime[t] < backoff)
                continue;
        }
        je->fresh[je->nfresh++] = (int)t;
    }
    /* Fisher-Yates, so workers listing at the same time claim in
     * different orders. */
    for (size_t i = je->nfresh; i > 1; i--) {
        size_t j = (size_t)(dsp_rand64() % i);
        int tmp = je->fresh[i - 1];
        je->fresh[i - 1] = je->fresh[j];
        je->fresh[j] = tmp;
    }
    goto out;

list_failed:
    DSP_WARN("stage_list_failed", "job=%s stage=%s error=%s message=\"%s\"", je->id, stage->id,
             dsp_status_name(err.code), err.msg);
out:
    free(prefix);
    free(error_mtime);
    free(lease_mtime);
    free(committed);
    return sealed;
}

/* ---- claims ---- */

static int claim_fresh(job_entry *je, size_t t, work_item *w)
{
    const dsp_plan_stage *stage = &je->job->plan->stages[je->stage];
    char attempt[DSP_PROTO_ID_MAX];
    dsp_err err;
    dsp_status st;

    make_attempt_id(attempt, sizeof attempt, je->failures[t] + 1, 0);
    st = dsp_lease_claim(W.store, je->id, stage->id, stage->tasks[t].id, W.worker_id, attempt,
                         je->lease_seconds, NULL, 0, &w->lease, &err);
    if (st != DSP_OK) {
        if (st != DSP_EPRECOND)
            DSP_WARN("claim_failed", "job=%s stage=%s task=%s error=%s message=\"%s\"", je->id,
                     stage->id, stage->tasks[t].id, dsp_status_name(st), err.msg);
        return 0;
    }
    w->je = je;
    w->stage = je->stage;
    w->task = t;
    w->failures = je->failures[t];
    return 1;
}

/* Read a lease; 0 when it is gone or unreadable. */
static int read_lease(const char *job, const char *stage, const char *task, dsp_lease *out)
{
    char *key = dsp_proto_lease_key(job, stage, task);
    dsp_buf b = DSP_BUF_INIT;
    dsp_obj_info info;
    dsp_err err;
    int ok = dsp_proto_get(W.store, key, &b, &info, &err) == DSP_OK &&
             dsp_lease_parse(b.data, b.len, out, &err) == DSP_OK;

    if (ok)
        snprintf(out->etag, sizeof out->etag, "%s", info.etag);
    dsp_buf_free(&b);
    free(key);
    return ok;
}

static dsp_status put_error_record(job_entry *je, const char *stage, const char *task,
                                   const char *attempt, int number, const char *worker,
                                   const char *code, const char *message, int create_only);

/* Record an attempt whose worker died as failed with code "worker_lost".
 * DSP_OK when this call created the record; DSP_EPRECOND when the attempt
 * already had one (it recorded its own error before its worker died). */
static dsp_status record_lost_attempt(job_entry *je, const char *stage, const char *task,
                                      const dsp_lease *lost)
{
    char message[512], expired[40];
    int number = 0;

    sscanf(lost->attempt, "a%d", &number);
    snprintf(message, sizeof message,
             "attempt %s on worker %s stopped renewing its lease without finishing "
             "(lease expired at %s); the worker crashed, was killed or lost the store",
             lost->attempt, lost->worker,
             dsp_format_utc_ms(lost->expires_ms, expired, sizeof expired));
    return put_error_record(je, stage, task, lost->attempt, number, lost->worker, "worker_lost",
                            message, 1);
}

/* 1 when the task has a commit (a lost attempt may still have committed). */
static int task_committed(job_entry *je, const char *stage, const char *task)
{
    char *key = dsp_proto_commit_key(je->id, stage, task);
    dsp_obj_info info;
    dsp_err err;

    dsp_proto_count(1);
    int found = dsp_store_head(W.store, key, &info, &err) == DSP_OK;
    free(key);
    return found;
}

/* Fail the job because a task used up its attempts, the last one lost
 * with its worker. The message counts the lost attempts among the task's
 * error records (a few GETs, once per failed job). */
static void fail_job_lost_worker(job_entry *je, const char *stage, const char *task,
                                 const dsp_lease *lost, int failures)
{
    char *prefix = dsp_xasprintf("jobs/%s/errors/%s/%s/", je->id, stage, task);
    dsp_list_page page;
    dsp_err err;
    int nlost = 0;

    if (dsp_proto_list(W.store, prefix, &page, &err) == DSP_OK) {
        for (size_t i = 0; i < page.n; i++) {
            cJSON *e = NULL;
            if (dsp_proto_get_json(W.store, page.items[i].key, &e, NULL, &err) == DSP_OK) {
                const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
                if (cJSON_IsString(c) && !strcmp(c->valuestring, "worker_lost"))
                    nlost++;
            }
            cJSON_Delete(e);
        }
        dsp_list_page_free(&page);
    }
    if (nlost < 1)
        nlost = 1;
    char *message;
    if (nlost >= failures)
        message = dsp_xasprintf("task %s/%s lost its worker %d times; last attempt %s on worker "
                                "%s; the task may crash or exhaust memory",
                                stage, task, nlost, lost->attempt, lost->worker);
    else
        message = dsp_xasprintf("task %s/%s lost its worker %d times and failed %d other "
                                "attempts with errors; last attempt %s on worker %s; the task "
                                "may crash or exhaust memory",
                                stage, task, nlost, failures - nlost, lost->attempt, lost->worker);
    fail_job(je, stage, task, lost->attempt, "worker_lost", message);
    free(message);
    free(prefix);
}

static int claim_expired(job_entry *je, size_t t, work_item *w)
{
    const dsp_plan_stage *stage = &je->job->plan->stages[je->stage];
    const char *task = stage->tasks[t].id;
    char attempt[DSP_PROTO_ID_MAX];
    dsp_lease cur;
    dsp_err err;
    dsp_status st;

    if (!read_lease(je->id, stage->id, task, &cur)) {
        /* Gone since the listing (committed, failed or released). */
        return claim_fresh(je, t, w);
    }
    if (cur.expires_ms > dsp_now_ms())
        return 0;
    /* The expired attempt stopped renewing without releasing its lease, so
     * its worker died (a crash, kill -9, the OOM killer) or lost the store.
     * It counts against max_attempts like an attempt that recorded an
     * error, so a task that kills every worker that runs it fails the job.
     * Ours is numbered after it. */
    make_attempt_id(attempt, sizeof attempt, je->failures[t] + 2, 0);
    st = dsp_lease_claim(W.store, je->id, stage->id, task, W.worker_id, attempt,
                         je->lease_seconds, &cur, 0, &w->lease, &err);
    if (st != DSP_OK)
        return 0;
    DSP_INFO("lease_taken_over", "job=%s stage=%s task=%s from_worker=%s from_attempt=%s", je->id,
             stage->id, task, cur.worker, cur.attempt);
    int failures = je->failures[t];
    if (record_lost_attempt(je, stage->id, task, &cur) == DSP_OK)
        failures++;
    if (failures >= je->max_attempts) {
        if (!task_committed(je, stage->id, task))
            fail_job_lost_worker(je, stage->id, task, &cur, failures);
        dsp_lease_release(W.store, je->id, &w->lease);
        return 0;
    }
    w->je = je;
    w->stage = je->stage;
    w->task = t;
    w->failures = failures;
    return 1;
}

/* Median duration of the stage's commits: this worker's own, else a few
 * read from the store once. */
static int64_t stage_median_ms(job_entry *je, const dsp_plan_stage *stage)
{
    if (je->ndurations == 0 && !je->durations_fetched) {
        char *prefix = dsp_xasprintf("jobs/%s/commits/%s/", je->id, stage->id);
        dsp_list_page page;
        dsp_err err;
        je->durations_fetched = 1;
        if (dsp_proto_list(W.store, prefix, &page, &err) == DSP_OK) {
            for (size_t i = 0; i < page.n && i < 5; i++) {
                cJSON *c = NULL;
                if (dsp_proto_get_json(W.store, page.items[i].key, &c, NULL, &err) == DSP_OK) {
                    const cJSON *d = cJSON_GetObjectItemCaseSensitive(c, "duration_ms");
                    if (cJSON_IsNumber(d))
                        add_duration(je, (int64_t)d->valuedouble);
                }
                cJSON_Delete(c);
            }
            dsp_list_page_free(&page);
        }
        free(prefix);
    }
    return median_ms(je->durations, je->ndurations);
}

/* Start a second attempt of a straggler: most of the stage is committed
 * and a live attempt has run much longer than the median. */
static int claim_speculative(job_entry *je, work_item *w)
{
    const dsp_plan_stage *stage = &je->job->plan->stages[je->stage];
    int64_t now_mono = dsp_mono_ms();

    if (!je->job->spec->speculative || je->nlive == 0 ||
        (double)je->committed < SPECULATE_SHARE * (double)stage->ntasks ||
        now_mono - je->speculate_mono < SPECULATE_CHECK_MS)
        return 0;
    je->speculate_mono = now_mono;

    int64_t median = stage_median_ms(je, stage);
    int64_t threshold = median * SPECULATE_FACTOR;
    if (threshold < SPECULATE_MIN_MS)
        threshold = SPECULATE_MIN_MS;

    for (size_t i = 0; i < je->nlive && i < SPECULATE_MAX_PROBES; i++) {
        size_t t = (size_t)je->live[i];
        const char *task = stage->tasks[t].id;
        dsp_lease cur;
        char attempt[DSP_PROTO_ID_MAX];
        dsp_err err;

        if (!read_lease(je->id, stage->id, task, &cur) || cur.spec_attempt[0] ||
            !strcmp(cur.worker, W.worker_id) || dsp_now_ms() - cur.started_ms < threshold)
            continue;
        make_attempt_id(attempt, sizeof attempt, je->failures[t] + 1, 1);
        if (dsp_lease_claim(W.store, je->id, stage->id, task, W.worker_id, attempt,
                            je->lease_seconds, &cur, 1, &w->lease, &err) != DSP_OK)
            continue;
        DSP_INFO("speculative_attempt", "job=%s stage=%s task=%s running_ms=%lld median_ms=%lld "
                 "primary_attempt=%s", je->id, stage->id, task,
                 (long long)(dsp_now_ms() - cur.started_ms), (long long)median, cur.attempt);
        w->je = je;
        w->stage = je->stage;
        w->task = t;
        w->failures = je->failures[t];
        return 1;
    }
    return 0;
}

static int claim_publish(job_entry *je, work_item *w)
{
    char attempt[DSP_PROTO_ID_MAX];
    dsp_lease cur;
    dsp_err err;
    int64_t now_mono = dsp_mono_ms();
    dsp_status st;

    if (now_mono - je->publish_mono < W.cfg.poll_ms)
        return 0;
    je->publish_mono = now_mono;
    check_job_state(je);
    if (je->finished)
        return 0;

    make_attempt_id(attempt, sizeof attempt, 1, 0);
    st = dsp_lease_claim(W.store, je->id, "", "_publish", W.worker_id, attempt,
                         je->lease_seconds, NULL, 0, &w->lease, &err);
    if (st == DSP_EPRECOND && read_lease(je->id, "", "_publish", &cur) &&
        cur.expires_ms < dsp_now_ms())
        st = dsp_lease_claim(W.store, je->id, "", "_publish", W.worker_id, attempt,
                             je->lease_seconds, &cur, 0, &w->lease, &err);
    if (st != DSP_OK)
        return 0;
    w->je = je;
    w->publish = 1;
    return 1;
}

/* Find work in one job; called with W.lock held. */
static int job_next(job_entry *je, work_item *w)
{
    const dsp_plan *plan = je->job->plan;
    int listings = 0;

    while (!je->finished) {
        if (je->stage >= plan->nstages)
            return claim_publish(je, w);

        int exhausted = je->fresh_pos >= je->nfresh && je->expired_pos >= je->nexpired;
        int64_t since = dsp_mono_ms() - je->listed_mono;
        /* A commit of ours may have been the stage's last one, so an
         * exhausted snapshot is listed again at once to seal without delay. */
        if (!je->failures || je->misses >= MISSES_BEFORE_RELIST ||
            (exhausted && (since >= RELIST_MIN_MS || je->committed_since_listing))) {
            je->committed_since_listing = 0;
            /* Bounded, so a store that rejects every claim is not hammered. */
            if (listings >= 3)
                return 0;
            if (list_stage(je)) {
                je->stage++;
                je->ndurations = 0;
                je->durations_fetched = 0;
                reset_snapshot(je);
                continue;
            }
            listings++;
            if (je->finished)
                return 0;
        }

        while (je->fresh_pos < je->nfresh && je->misses < MISSES_BEFORE_RELIST) {
            size_t t = (size_t)je->fresh[je->fresh_pos++];
            if (claim_fresh(je, t, w)) {
                je->misses = 0;
                return 1;
            }
            je->misses++;
        }
        while (je->expired_pos < je->nexpired) {
            size_t t = (size_t)je->expired[je->expired_pos++];
            if (claim_expired(je, t, w))
                return 1;
        }
        if (je->misses >= MISSES_BEFORE_RELIST)
            continue;
        return claim_speculative(je, w);
    }
    return 0;
}

static int find_work(work_item *w)
{
    int64_t since = dsp_mono_ms() - W.jobs_listed_mono;

    memset(w, 0, sizeof *w);
    /* Listing the index also notices cancelled jobs (they leave it), so it
     * runs every JOBS_REFRESH_MS even while there is work. */
    if (since >= JOBS_REFRESH_MS)
        refresh_jobs();
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < W.njobs; i++)
            if (!W.jobs[i]->finished && job_next(W.jobs[i], w))
                return 1;
        if (pass == 0 && dsp_mono_ms() - W.jobs_listed_mono >= W.cfg.poll_ms)
            refresh_jobs();
        else
            break;
    }
    return 0;
}

/* ---- running work ---- */

static running_task *register_running(job_entry *je, const dsp_lease *lease)
{
    running_task *rt = dsp_xcalloc(1, sizeof *rt);
    rt->je = je;
    rt->lease = *lease;
    rt->renewed_mono = rt->state_mono = dsp_mono_ms();
    pthread_mutex_lock(&W.run_lock);
    rt->next = W.running;
    W.running = rt;
    W.nrunning++;
    W.last_work_mono = dsp_mono_ms();
    pthread_mutex_unlock(&W.run_lock);
    return rt;
}

static void unregister_running(running_task *rt)
{
    pthread_mutex_lock(&W.run_lock);
    for (running_task **p = &W.running; *p; p = &(*p)->next)
        if (*p == rt) {
            *p = rt->next;
            break;
        }
    W.nrunning--;
    W.last_work_mono = dsp_mono_ms();
    pthread_mutex_unlock(&W.run_lock);
    free(rt);
}

/* Write the error record of one attempt. With create_only an existing
 * record is kept and DSP_EPRECOND returned, so an attempt is counted once. */
static dsp_status put_error_record(job_entry *je, const char *stage, const char *task,
                                   const char *attempt, int number, const char *worker,
                                   const char *code, const char *message, int create_only)
{
    char *key = dsp_proto_error_key(je->id, stage, task, attempt);
    cJSON *o = cJSON_CreateObject();
    char *body;
    dsp_err err;
    dsp_status st;

    cJSON_AddNumberToObject(o, "schema_version", DSP_PROTO_SCHEMA_VERSION);
    cJSON_AddStringToObject(o, "job", je->id);
    cJSON_AddStringToObject(o, "stage", stage);
    cJSON_AddStringToObject(o, "task", task);
    cJSON_AddStringToObject(o, "attempt", attempt);
    cJSON_AddNumberToObject(o, "attempt_number", number);
    cJSON_AddStringToObject(o, "worker", worker);
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", message);
    cJSON_AddNumberToObject(o, "time_ms", (double)dsp_now_ms());
    body = cJSON_PrintUnformatted(o);
    if (create_only)
        st = dsp_proto_create(W.store, key, body, strlen(body), NULL, &err);
    else
        st = dsp_proto_put(W.store, key, body, strlen(body), NULL, &err);
    if (st != DSP_OK && st != DSP_EPRECOND)
        DSP_ERROR("error_record_failed", "key=%s message=\"%s\"", key, err.msg);
    free(body);
    cJSON_Delete(o);
    free(key);
    return st;
}

static void record_error(job_entry *je, const char *stage, const char *task,
                         const char *attempt, int number, const dsp_err *terr)
{
    put_error_record(je, stage, task, attempt, number, W.worker_id, dsp_status_name(terr->code),
                     terr->msg, 0);
}

static dsp_input_format input_format(const char *name)
{
    if (name && !strcmp(name, "jsonl"))
        return DSP_FMT_JSONL;
    if (name && !strcmp(name, "warc"))
        return DSP_FMT_WARC;
    return DSP_FMT_AUTO;
}

/* Requests since the previous commit of this process: summed over all
 * commits they add up to the process's requests, whatever the slots. */
static void take_request_share(uint64_t *total, uint64_t *coord, uint64_t *retries)
{
    dsp_store_stats now;

    pthread_mutex_lock(&W.stats_lock);
    dsp_store_get_stats(W.store, &now);
    uint64_t c = dsp_proto_requests();
    *total = stats_total(&now) - stats_total(&W.last_stats) + 1; /* + the commit PUT */
    *coord = c - W.last_coord + 1;
    *retries = now.retries - W.last_stats.retries;
    W.last_stats = now;
    W.last_coord = c;
    pthread_mutex_unlock(&W.stats_lock);
}

static void discard_attempt(job_entry *je, const char *stage, const char *task,
                            const char *attempt)
{
    dsp_err err;
    if (dsp_commit_discard(W.store, je->id, stage, task, attempt, &err) != DSP_OK)
        DSP_WARN("attempt_discard_failed", "prefix=jobs/%s/attempts/%s/%s/%s message=\"%s\"",
                 je->id, stage, task, attempt, err.msg);
}

static void commit_task(job_entry *je, const dsp_plan_stage *stage, const dsp_plan_task *task,
                        const dsp_lease *lease, int64_t started_ms,
                        const dsp_pipeline_result *res)
{
    dsp_commit_meta meta = {je->id, stage->id, task->id, lease->attempt, W.worker_id,
                            started_ms, dsp_now_ms(), 0, 0, 0};
    cJSON *manifest, *winner = NULL;
    dsp_err err;
    int won = 0;

    take_request_share(&meta.requests, &meta.coord_requests, &meta.retries);
    manifest = dsp_commit_build(&meta, res);
    if (dsp_commit_write(W.store, manifest, &won, &winner, &err) != DSP_OK) {
        /* Unknown whether the commit exists: keep the files, because a
         * commit that did land names them; the sweep at publish removes
         * them otherwise. */
        DSP_ERROR("commit_failed", "message=\"%s\"", err.msg);
    } else if (won) {
        DSP_INFO("task_committed", "records_in=%llu records_out=%llu duration_ms=%lld requests=%llu",
                 (unsigned long long)res->records_in, (unsigned long long)res->records_out,
                 (long long)(meta.finished_ms - started_ms), (unsigned long long)meta.requests);
        pthread_mutex_lock(&W.lock);
        if (je->stage < je->job->plan->nstages &&
            !strcmp(je->job->plan->stages[je->stage].id, stage->id)) {
            add_duration(je, meta.finished_ms - started_ms);
            je->committed_since_listing = 1;
        }
        pthread_mutex_unlock(&W.lock);
    } else {
        const cJSON *wa = cJSON_GetObjectItemCaseSensitive(winner, "attempt");
        DSP_INFO("commit_rejected", "winner=%s", cJSON_IsString(wa) ? wa->valuestring : "?");
        discard_attempt(je, stage->id, task->id, lease->attempt);
    }
    cJSON_Delete(winner);
    cJSON_Delete(manifest);
}

/*
 * Errors that fail the same way on every attempt, so the task fails the job
 * at once: an invalid step or option (an exec step on a worker without
 * --allow-exec), an input that changed after planning, a feature the build
 * or store lacks, a permanent store error (AccessDenied, NoSuchBucket) and
 * corrupt data (a truncated zstd or gzip stream, broken WARC framing, an
 * exec command that breaks its output protocol). Corrupt data does not heal
 * on a retry: a read cut short never reaches a decoder as corrupt input,
 * because the stores retry short bodies as transient errors and the input
 * is checked against its planned ETag. Transient store errors and local
 * I/O errors are retried up to max_attempts.
 */
static int is_permanent_error(dsp_status st)
{
    return st == DSP_EINVAL || st == DSP_EUNSUPPORTED || st == DSP_EPERM || st == DSP_ECORRUPT;
}

static void run_task(work_item *w, running_task *rt)
{
    job_entry *je = w->je;
    const dsp_spec *spec = je->job->spec;
    const dsp_plan_stage *stage = &je->job->plan->stages[w->stage];
    const dsp_plan_task *task = &stage->tasks[w->task];
    char *prefix = dsp_proto_attempt_prefix(je->id, stage->id, task->id, w->lease.attempt);
    dsp_input_range *inputs = dsp_xcalloc(task->ninputs + 1, sizeof *inputs);
    dsp_pipeline_result res;
    dsp_err err;
    int64_t started = dsp_now_ms();

    dsp_log_context(je->id, stage->id, task->id, w->lease.attempt);
    /* The log context adds job, stage, task and attempt to every line. */
    DSP_INFO("task_start", "inputs=%zu bytes=%llu speculative=%d", task->ninputs,
             (unsigned long long)task->bytes, w->lease.speculative ? 1 : 0);
    for (size_t i = 0; i < task->ninputs; i++) {
        inputs[i].uri_root = task->inputs[i].uri_root;
        inputs[i].key = task->inputs[i].key;
        inputs[i].offset = task->inputs[i].offset;
        inputs[i].length = task->inputs[i].length;
    }

    dsp_pipeline_config cfg = {0};
    cfg.steps = stage->steps;
    cfg.format = input_format(spec->format);
    cfg.text_field = spec->text_field;
    cfg.id_field = spec->id_field;
    /* From all steps, wide ones included, so that every stage that reads
     * the job's inputs rejects the same records. */
    const char **read_fields = dsp_op_read_fields(spec->steps);
    cfg.unique_fields = read_fields;
    cfg.max_record_bytes = spec->max_record_bytes;
    cfg.out_store = W.store;
    cfg.out_prefix = prefix;
    cfg.out_format = spec->output_format;
    cfg.level = spec->output_level;
    cfg.target_shard_bytes = spec->target_shard_bytes;
    cfg.allow_exec = W.cfg.allow_exec;
    cfg.cancel = &rt->cancel;
    /* Inputs must still be the versions listed when the job was planned. */
    dsp_obj_info *versions = dsp_plan_task_versions(task);
    cfg.input_versions = versions;

    memset(&res, 0, sizeof res);
    dsp_err_clear(&err);
    dsp_status st = dsp_wide_stage_needed(je->job->plan, stage)
                        ? dsp_wide_run_task(W.store, je->id, je->job->plan, stage, task, &cfg,
                                            inputs, &res, &err)
                        : dsp_pipeline_run(&cfg, inputs, task->ninputs, &res, &err);

    if (st == DSP_OK) {
        /* A finished task is committed even when the worker is stopping or
         * its lease was lost: the first commit wins either way. */
        commit_task(je, stage, task, &w->lease, started, &res);
    } else if (rt->cancel || st == DSP_ECANCELLED) {
        const char *reason = "worker_stopping";
        if (rt->lost)
            reason = "lease_lost";
        else if (je->finished)
            reason = "job_finished";
        DSP_INFO("task_abandoned", "reason=%s", reason);
        discard_attempt(je, stage->id, task->id, w->lease.attempt);
        if (!rt->lost)
            dsp_lease_release(W.store, je->id, &w->lease);
    } else {
        int number = w->failures + 1;
        int permanent = is_permanent_error(st);
        DSP_WARN("task_failed", "attempt_number=%d max_attempts=%d permanent=%d error=%s "
                 "message=\"%s\"", number, je->max_attempts, permanent, dsp_status_name(st),
                 err.msg);
        record_error(je, stage->id, task->id, w->lease.attempt, number, &err);
        discard_attempt(je, stage->id, task->id, w->lease.attempt);
        if (permanent) {
            char *message = dsp_xasprintf("%s (a permanent error, so the task was not retried)",
                                          err.msg);
            fail_job(je, stage->id, task->id, w->lease.attempt, dsp_status_name(st), message);
            free(message);
        } else if (number >= je->max_attempts) {
            fail_job(je, stage->id, task->id, w->lease.attempt, dsp_status_name(st), err.msg);
        } else if (!w->lease.speculative) {
            /* Free the task for a retry once its backoff has passed. */
            dsp_lease_release(W.store, je->id, &w->lease);
        }
    }
    dsp_pipeline_result_free(&res);
    unregister_running(rt);
    dsp_log_context(NULL, NULL, NULL, NULL);
    free(versions);
    free(read_fields);
    free(inputs);
    free(prefix);
}

static void run_publish(work_item *w, running_task *rt)
{
    job_entry *je = w->je;
    dsp_err err;

    dsp_status st = dsp_publish_job(W.store, je->job, &err);
    if (st == DSP_OK) {
        mark_job_finished(je);
    } else if (st == DSP_ECANCELLED) {
        /* The job was cancelled or failed elsewhere: not a publish failure. */
        DSP_WARN("publish_stopped", "job=%s message=\"%s\"", je->id, err.msg);
        mark_job_finished(je);
        dsp_lease_release(W.store, je->id, &w->lease);
    } else {
        /* Failed publishes count against max_attempts like a task's, through
         * error records under errors/_publish/_publish/, so a publish that
         * cannot succeed (a full disk, denied access) fails the job instead
         * of being retried forever. */
        char *prefix = dsp_xasprintf("jobs/%s/errors/_publish/_publish/", je->id);
        dsp_list_page page;
        dsp_err lerr;
        int number = 1;
        if (dsp_proto_list(W.store, prefix, &page, &lerr) == DSP_OK) {
            number = (int)page.n + 1;
            dsp_list_page_free(&page);
        }
        free(prefix);
        int permanent = is_permanent_error(err.code);
        DSP_ERROR("publish_failed", "job=%s attempt_number=%d max_attempts=%d permanent=%d "
                  "error=%s message=\"%s\"", je->id, number, je->max_attempts, permanent,
                  dsp_status_name(err.code), err.msg);
        record_error(je, "_publish", "_publish", w->lease.attempt, number, &err);
        if (permanent || number >= je->max_attempts)
            fail_job(je, "_publish", "_publish", w->lease.attempt, dsp_status_name(err.code),
                     err.msg);
        else
            dsp_lease_release(W.store, je->id, &w->lease);
    }
    unregister_running(rt);
}

/* ---- threads ---- */

static void *heartbeat_main(void *arg)
{
    (void)arg;
    while (!W.exit) {
        int64_t now = dsp_mono_ms();

        pthread_mutex_lock(&W.run_lock);
        for (running_task *rt = W.running; rt; rt = rt->next) {
            job_entry *je = rt->je;
            int64_t period = (int64_t)je->lease_seconds * 1000 / DSP_LEASE_RENEW_DIVISOR;
            int64_t state_period = period < STATE_CHECK_MAX_MS ? period : STATE_CHECK_MAX_MS;
            dsp_err err;

            if (rt->lost || rt->cancel)
                continue;
            if (now - rt->state_mono >= state_period) {
                /* Cancelled or failed elsewhere: stop working on it. */
                rt->state_mono = now;
                check_job_state(je);
                if (je->finished) {
                    rt->cancel = 1;
                    continue;
                }
            }
            if (now - rt->renewed_mono < period)
                continue;
            rt->renewed_mono = now;
            dsp_status st = dsp_lease_renew(W.store, je->id, &rt->lease, je->lease_seconds, &err);
            if (st == DSP_EPRECOND || st == DSP_ENOTFOUND) {
                DSP_WARN("lease_lost", "job=%s stage=%s task=%s attempt=%s message=\"%s\"", je->id,
                         rt->lease.stage, rt->lease.task, rt->lease.attempt, err.msg);
                rt->lost = 1;
                rt->cancel = 1;
            } else if (st != DSP_OK) {
                DSP_WARN("lease_renew_failed", "job=%s task=%s error=%s message=\"%s\"", je->id,
                         rt->lease.task, dsp_status_name(st), err.msg);
            }
        }
        if (g_stop)
            for (running_task *rt = W.running; rt; rt = rt->next)
                rt->cancel = 1;
        pthread_mutex_unlock(&W.run_lock);
        dsp_sleep_ms(200);
    }
    return NULL;
}

static int should_exit(void)
{
    if (g_stop || W.exit)
        return 1;
    if (W.cfg.job && W.cfg.exit_when_finished) {
        pthread_mutex_lock(&W.lock);
        job_entry *je = find_job(W.cfg.job);
        int done = je && je->finished;
        pthread_mutex_unlock(&W.lock);
        if (done)
            return 1;
    }
    if (W.cfg.idle_exit_seconds > 0) {
        pthread_mutex_lock(&W.run_lock);
        int idle = W.nrunning == 0 &&
                   dsp_mono_ms() - W.last_work_mono >= (int64_t)W.cfg.idle_exit_seconds * 1000;
        pthread_mutex_unlock(&W.run_lock);
        if (idle) {
            DSP_INFO("worker_idle_exit", "worker=%s idle_seconds=%d", W.worker_id,
                     W.cfg.idle_exit_seconds);
            return 1;
        }
    }
    return 0;
}

static void *slot_main(void *arg)
{
    (void)arg;
    while (!should_exit()) {
        work_item w;
        running_task *rt = NULL;
        pthread_mutex_lock(&W.lock);
        int found = find_work(&w);
        /* Registered before the lock is released, so refresh_jobs never
         * frees a job that a slot is about to run. */
        if (found)
            rt = register_running(w.je, &w.lease);
        pthread_mutex_unlock(&W.lock);
        if (!found) {
            sleep_interruptible(W.cfg.poll_ms / 2 + (int64_t)(dsp_rand64() % (uint64_t)W.cfg.poll_ms));
            continue;
        }
        if (w.publish)
            run_publish(&w, rt);
        else
            run_task(&w, rt);
    }
    W.exit = 1;
    return NULL;
}

dsp_status dsp_worker_run(const dsp_worker_config *cfg, dsp_err *err)
{
    pthread_t heartbeat, *slots = NULL;
    char host[64];
    dsp_status st;
    int nslots;

    memset(&W, 0, sizeof W);
    W.cfg = *cfg;
    if (W.cfg.poll_ms <= 0)
        W.cfg.poll_ms = 1000;
    nslots = W.cfg.slots > 0 ? W.cfg.slots : 1;
    pthread_mutex_init(&W.lock, NULL);
    pthread_mutex_init(&W.run_lock, NULL);
    pthread_mutex_init(&W.stats_lock, NULL);
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    snprintf(W.worker_id, sizeof W.worker_id, "%s-%d-%04llx", host, (int)getpid(),
             (unsigned long long)(dsp_rand64() & 0xffff));

    st = dsp_store_open(cfg->store_uri, NULL, &W.store, err);
    if (st != DSP_OK)
        return st;
    st = dsp_proto_probe_conditional(W.store, err);
    if (st != DSP_OK)
        goto out;
    dsp_store_get_stats(W.store, &W.last_stats);
    W.last_coord = dsp_proto_requests();
    W.last_work_mono = dsp_mono_ms();
    W.jobs_listed_mono = dsp_mono_ms() - W.cfg.poll_ms;

    DSP_INFO("worker_start", "worker=%s store=%s slots=%d idle_exit=%d job=%s", W.worker_id,
             dsp_store_uri(W.store), nslots, W.cfg.idle_exit_seconds, cfg->job ? cfg->job : "*");
    dsp_input_cache_sweep();
    pthread_create(&heartbeat, NULL, heartbeat_main, NULL);
    slots = dsp_xcalloc((size_t)nslots, sizeof *slots);
    for (int i = 0; i < nslots; i++)
        pthread_create(&slots[i], NULL, slot_main, NULL);
    for (int i = 0; i < nslots; i++)
        pthread_join(slots[i], NULL);
    W.exit = 1;
    pthread_join(heartbeat, NULL);
    dsp_store_stats stats;
    dsp_store_get_stats(W.store, &stats);
    DSP_INFO("worker_stop", "worker=%s reason=%s requests=%llu coord_requests=%llu retries=%llu",
             W.worker_id, g_stop ? "signal" : "idle_or_finished",
             (unsigned long long)stats_total(&stats), (unsigned long long)dsp_proto_requests(),
             (unsigned long long)stats.retries);
out:
    free(slots);
    for (size_t i = 0; i < W.njobs; i++)
        job_entry_free(W.jobs[i]);
    free(W.jobs);
    dsp_store_close(W.store);
    return st;
}
