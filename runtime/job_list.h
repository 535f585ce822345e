/*
 * job_list.h - the jobs of a store, as `dspark jobs` lists them.
 *
 * Listing stays cheap on a store with thousands of jobs: one delimited
 * LIST of jobs/ per 1,000 jobs, then a GET of each job's state.json and,
 * for every job that passes the state filter, a GET of its spec.json. No
 * plan, commit, lease or error record is read, so the cost does not grow
 * with the number of tasks of a job.
 */
#ifndef DSP_JOB_LIST_H
#define DSP_JOB_LIST_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"
#include "job.h"

/* Version of the `dspark jobs --json` document. */
#define DSP_JOBS_SCHEMA_VERSION 1

/* One job of a store. */
typedef struct {
    char *id;
    dsp_job_state state;  /* DSP_JOB_RUNNING when state.json is missing */
    int64_t submitted_ms; /* mtime of spec.json; 0 when spec.json is missing */
    char *output;         /* output.uri of spec.json; NULL when spec.json is missing */
    int64_t finished_ms;  /* time_ms of state.json; 0 for a running job */
    int64_t records_out;  /* records_out of state.json; -1 unless the job is done */
    char *message;        /* message of state.json (a failed job's error), or NULL */
} dsp_job_entry;

/* Jobs, newest submission first. */
typedef struct {
    dsp_job_entry *items;
    size_t n;
} dsp_job_list;

/*
 * List the jobs under jobs/ in s, newest submission first (ties by id).
 * only_state < 0 keeps every job, otherwise only jobs in that dsp_job_state;
 * spec.json is not read for the others. A prefix under jobs/ that is not
 * a valid job id is skipped with a warning in the log. A missing local store
 * directory is DSP_ENOTFOUND.
 */
dsp_status dsp_job_list_read(dsp_store *s, int only_state, dsp_job_list *out, dsp_err *err);
void dsp_job_list_free(dsp_job_list *list);

/*
 * Build the `dspark jobs --json` document (schema_version 1):
 *   {"schema_version":1, "store", "state_filter" (a state name or null),
 *    "jobs":[{"job", "state", "submitted", "submitted_ms", "output",
 *             "finished", "finished_ms", "records_out", "message"}]}
 * Times are ISO-8601 UTC strings and milliseconds since the epoch. Unknown
 * values are null: submit time and output without spec.json, finish time
 * for a running job, records_out unless the job is done, message unless
 * state.json has one.
 */
cJSON *dsp_job_list_json(const dsp_store *s, int only_state, const dsp_job_list *list);

#endif
