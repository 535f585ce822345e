/*
 * job.h - jobs in a store: submission, loading, final state and status.
 *
 * A job is the immutable pair spec.json + plan.json under jobs/<id>/, plus
 * the coordination objects of protocol.h. Submitting is idempotent: the
 * same spec under the same id is a no-op, a different spec under an
 * existing id is rejected, and an output prefix owned by an unfinished job
 * cannot be claimed by another job.
 */
#ifndef DSP_JOB_H
#define DSP_JOB_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../core/err.h"
#include "../planner/plan.h"
#include "../storage/store.h"

#define DSP_STATUS_SCHEMA_VERSION 1

typedef enum {
    DSP_JOB_RUNNING = 0, /* no state.json yet */
    DSP_JOB_DONE,
    DSP_JOB_FAILED,
    DSP_JOB_CANCELLED
} dsp_job_state;

typedef struct {
    char *id;
    dsp_spec *spec;
    dsp_plan *plan;
} dsp_job;

/* "done", "failed", "cancelled" or "running". */
const char *dsp_job_state_name(dsp_job_state st);
/* Parse a name of dsp_job_state_name into *out; -1 for any other name. */
int dsp_job_state_from_name(const char *name, dsp_job_state *out);

/* The default job id: "<spec name>-<first 12 hex digits of the spec hash>"
 * (name reduced to valid id characters), so submitting the same spec twice
 * names the same job (caller frees). */
char *dsp_job_default_id(const dsp_spec *spec);

/*
 * Plan the spec and publish the job: output claim, spec.json, plan.json and
 * the active index entry, each step idempotent. *created is 0 when the same
 * job already existed. Rejects (DSP_EPRECOND) a different spec under the id
 * and an output prefix claimed by another unfinished job.
 */
dsp_status dsp_job_submit(dsp_store *s, const dsp_spec *spec, const char *id, int *created,
                          dsp_err *err);

/* Read spec.json and plan.json; DSP_ENOTFOUND when the job does not exist. */
dsp_status dsp_job_load(dsp_store *s, const char *id, dsp_job **out, dsp_err *err);
void dsp_job_free(dsp_job *job);

/* Read state.json. *state (optional, caller frees) receives its JSON. A job
 * without state.json is DSP_JOB_RUNNING. */
dsp_status dsp_job_read_state(dsp_store *s, const char *id, dsp_job_state *out, cJSON **state,
                              dsp_err *err);
/*
 * Record the final state (create-only: the first final state wins) and
 * remove the job from the active index. extra (optional) is merged into
 * state.json. *actual (optional) receives the state that won.
 */
dsp_status dsp_job_finish(dsp_store *s, const char *id, dsp_job_state st, const cJSON *extra,
                          dsp_job_state *actual, dsp_err *err);

/* Progress of one stage, from listings of commits, leases and errors. */
typedef struct {
    size_t tasks, committed, running, failed_attempts, failed_tasks;
    uint64_t bytes, bytes_committed; /* planned input bytes */
} dsp_stage_progress;

/* Count committed and running tasks of every stage (stages has
 * plan->nstages entries). */
dsp_status dsp_job_progress(dsp_store *s, const dsp_job *job, dsp_stage_progress *stages,
                            dsp_err *err);

/*
 * Build the status document (schema_version 1):
 *   {"schema_version":1, "job", "state", "output", "spec_hash",
 *    "stages":[{"id","kind","tasks","committed","running","failed_attempts",
 *               "failed_tasks","sealed","bytes","bytes_committed"}],
 *    "counters":{"records_in","records_out","records_rejected",
 *                "records_utf8_repaired","bytes_in","bytes_out","cpu_seconds",
 *                "requests","retries",
 *                "operators":[{...per step, summed over commits...}]},
 *    "errors":[{"stage","task","attempt","worker","code","message","time_ms"}],
 *    "final": {...state.json...} or null}
 */
dsp_status dsp_job_status_json(dsp_store *s, const char *id, cJSON **out, dsp_err *err);

/* Sum per-step operator counters: numbers are added field by field, other
 * values are copied from the first commit that has them. */
void dsp_job_merge_counters(cJSON *sum, const cJSON *op_counters);

#endif
