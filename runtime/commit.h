/*
 * commit.h - commit manifests and stage seals.
 *
 * A commit manifest (jobs/<job>/commits/<stage>/<task>.json) names the
 * files of one attempt with size, record count and SHA-256, plus counters.
 * It is created with If-None-Match: *, so the first attempt to commit a
 * task wins and every later attempt of that task is a loser that deletes
 * its own files. A seal (jobs/<job>/seals/<stage>.json) lists the winning
 * manifests of all tasks of a stage in task order; it is also create-only,
 * and its bytes depend only on the winning manifests, so racing sealers
 * write the same object.
 */
#ifndef DSP_COMMIT_H
#define DSP_COMMIT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../core/err.h"
#include "../planner/plan.h"
#include "../storage/store.h"
#include "../tasks/pipeline.h"

#define DSP_COMMIT_SCHEMA_VERSION 1

typedef struct {
    const char *job, *stage, *task, *attempt, *worker;
    int64_t started_ms, finished_ms;
    uint64_t requests;        /* all store requests of the attempt, data included */
    uint64_t coord_requests;  /* the coordination share of requests */
    uint64_t retries;
} dsp_commit_meta;

/* Build the manifest of an attempt from its pipeline result (caller frees). */
cJSON *dsp_commit_build(const dsp_commit_meta *meta, const dsp_pipeline_result *res);

/*
 * Create the commit manifest. *won is 1 when ours is the winning commit,
 * 0 when another attempt committed first (DSP_OK in both cases); *winner
 * (optional) receives the winning manifest.
 */
dsp_status dsp_commit_write(dsp_store *s, const cJSON *manifest, int *won, cJSON **winner,
                            dsp_err *err);

/* Delete every object under an attempt prefix (a losing attempt's files). */
dsp_status dsp_commit_discard(dsp_store *s, const char *job, const char *stage,
                              const char *task, const char *attempt, dsp_err *err);

/* Read the winning manifests of every task of the stage and create its seal;
 * DSP_ENOTFOUND when a task has no commit yet. */
dsp_status dsp_seal_write(dsp_store *s, const char *job, const dsp_plan_stage *stage,
                          dsp_err *err);
/* Read a seal; *out is freed by the caller. */
dsp_status dsp_seal_read(dsp_store *s, const char *job, const char *stage, cJSON **out,
                         dsp_err *err);

#endif
