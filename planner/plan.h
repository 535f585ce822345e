/*
 * plan.h - job specs and plans.
 *
 * dsp_spec is a validated job spec. dsp_plan is what the planner makes of
 * it: stages of tasks, each task a pure function of its descriptor (input
 * ranges with ETags, stage, index). The plan is serialized once to
 * jobs/<job>/plan.json and never changes; workers only read it.
 *
 * Determinism: the same spec and the same input listing give the same plan
 * JSON, byte for byte (inputs are sorted, ids are derived from indexes).
 */
#ifndef DSP_PLAN_H
#define DSP_PLAN_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"

typedef struct {
    char *name;
    char **inputs;            /* URIs with globs, as written */
    size_t ninputs;
    char *format;             /* "auto", "jsonl", "warc" */
    char *text_field;         /* default "text" */
    char *id_field;           /* default "id" */
    cJSON *steps;             /* array of step objects, owned */
    char *output_uri;         /* "s3://b/out" or a local path */
    char *output_format;      /* "jsonl.zst" or "jsonl.gz" */
    int output_level;         /* 0 = default */
    int64_t target_shard_bytes;
    int max_attempts;         /* default 4 */
    int lease_seconds;        /* default 60 */
    int64_t target_task_bytes;/* default 64 MiB */
    int speculative;          /* default 1 */
    int64_t max_record_bytes; /* default 64 MiB */
    char spec_hash[65];       /* SHA-256 of the canonical spec JSON */
    cJSON *json;              /* the spec as parsed, owned */
} dsp_spec;

/* Parse and validate; errors name the field ("steps[2].min_words: must be
 * a number"). `source` names the file for messages. */
dsp_status dsp_spec_parse(const char *text, size_t len, const char *source, dsp_spec **out,
                          dsp_err *err);
void dsp_spec_free(dsp_spec *spec);

typedef struct {
    char *uri_root;   /* store root URI of the input */
    char *key;
    uint64_t offset;
    int64_t length;   /* -1: to the end of the object */
    uint64_t size;    /* size of the whole object */
    char etag[DSP_ETAG_MAX];
} dsp_plan_input;

typedef struct {
    int index;
    char id[16];          /* "t00042" */
    dsp_plan_input *inputs;
    size_t ninputs;
    uint64_t bytes;       /* input bytes this task reads */
} dsp_plan_task;

typedef struct {
    int index;
    char id[8];           /* "s0" */
    char kind[16];        /* "map", or the wide operator's kind */
    cJSON *steps;         /* the fused steps of this stage, owned */
    int *deps;            /* indexes of stages this one reads */
    size_t ndeps;
    dsp_plan_task *tasks;
    size_t ntasks;
    uint64_t bytes;
} dsp_plan_stage;

typedef struct {
    char *job_name;
    char spec_hash[65];
    dsp_plan_stage *stages;
    size_t nstages;
    uint64_t total_bytes;
    size_t total_tasks;
} dsp_plan;

/* Expand inputs by listing, split into tasks, cut stages. */
dsp_status dsp_plan_build(const dsp_spec *spec, dsp_plan **out, dsp_err *err);
/* Deterministic JSON (caller frees). */
char *dsp_plan_to_json(const dsp_plan *plan);
dsp_status dsp_plan_from_json(const char *text, size_t len, dsp_plan **out, dsp_err *err);
void dsp_plan_free(dsp_plan *plan);

#endif
