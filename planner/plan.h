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
#include "../tasks/op.h"

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
    int lease_seconds;        /* default 60; renewed every DSP_LEASE_RENEW_DIVISOR-th of it */
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
    char kind[32];        /* "map", "dedup_exact_reduce", "minhash_bands",
                             "minhash_components", "dedup_filter", or the name
                             of a wide operator without a shuffle layout */
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

/* The canonical spec JSON that spec_hash covers (caller frees): the parsed
 * spec with object keys sorted and relative local paths made absolute,
 * printed without whitespace. Defaults are not filled in. */
char *dsp_spec_to_json(const dsp_spec *spec);

/*
 * Task inputs. A task reads its inputs in order. An input with a byte range
 * (offset > 0 or length >= 0 and less than the object) owns the records that
 * START inside [offset, offset+length): the reader skips the partial record
 * at the start unless offset is 0, and reads past the end to finish the last
 * record it owns. Only plain (uncompressed) JSONL objects are split.
 *
 * Expand inputs by listing, split into tasks, cut stages. The same spec and
 * the same listing give the same plan.
 */
dsp_status dsp_plan_build(const dsp_spec *spec, dsp_plan **out, dsp_err *err);

/*
 * Reject a job store whose own keys (jobs/, active/, outputs/) an input
 * glob could match, because the job would read the store's intermediate
 * files as input. Also reject a store inside the output, and an output
 * inside the store's own keys. Checked on the URIs alone; store_uri is as
 * given to --store, a relative path resolving against the working
 * directory.
 */
dsp_status dsp_plan_check_store(const dsp_spec *spec, const char *store_uri, dsp_err *err);

/* The planned size and ETag of each input of a task, one per input, for
 * dsp_pipeline_config.input_versions (caller frees). */
dsp_obj_info *dsp_plan_task_versions(const dsp_plan_task *task);

/* One listed input object, before splitting. */
typedef struct {
    char *uri_root;         /* store root URI the key is relative to */
    char *key;
    uint64_t size;
    char etag[DSP_ETAG_MAX];
    int splittable;         /* 1: plain JSONL that may be split into byte ranges */
} dsp_plan_object;

/* The two halves of dsp_plan_build, exposed so tests can feed a listing:
 * dsp_plan_expand lists the stores, matches the globs and decides which
 * objects are splittable (reading the first 4 bytes of a plain-named object
 * larger than target_task_bytes); dsp_plan_from_objects sorts the objects
 * (in place), packs or splits them into tasks and cuts stages. */
dsp_status dsp_plan_expand(const dsp_spec *spec, dsp_plan_object **objs, size_t *nobjs,
                           dsp_err *err);
dsp_status dsp_plan_from_objects(const dsp_spec *spec, dsp_plan_object *objs, size_t nobjs,
                                 dsp_plan **out, dsp_err *err);
void dsp_plan_objects_free(dsp_plan_object *objs, size_t nobjs);

/* Match a whole key against a glob: '*' and '?' stop at '/', "[a-z]" and
 * "[!x]" match one character, "**" matches across '/', and "**" followed by
 * '/' matches zero or more whole directory levels.
 * Returns 1 on a match. */
int dsp_glob_match(const char *pattern, const char *key);

/* Return 1 when some key that starts with prefix could match the glob.
 * NOTE: a pattern tail that no key can match (an empty set) still counts
 * as a match, so the answer errs on the side of 1. */
int dsp_glob_match_prefix(const char *pattern, const char *prefix);

/* Stage cutting on the wide flags of a pipeline's steps: fills stage_of[i]
 * with the stage index of step i and returns the number of stages. Stage 0
 * always reads the job's inputs, so a pipeline that starts with a wide
 * operator gets an empty map stage first; an empty pipeline gets one stage. */
size_t dsp_plan_cut_stages(const int *wide, size_t nsteps, size_t *stage_of);

/* Test hook: replace the operator lookup the planner uses to find each
 * step's definition (NULL restores dsp_op_find), so tests can plan with
 * operators the registry lacks. Not thread-safe. Validation in
 * dsp_spec_parse() still uses the registry. */
void dsp_plan_set_op_lookup(const dsp_op_def *(*lookup)(const char *name));
/* Deterministic JSON (caller frees). */
char *dsp_plan_to_json(const dsp_plan *plan);
dsp_status dsp_plan_from_json(const char *text, size_t len, dsp_plan **out, dsp_err *err);
void dsp_plan_free(dsp_plan *plan);

/*
 * Request and cost estimate for `dspark explain`. Counts follow the model
 * written in estimate.c. Costs use AWS S3 Standard list prices (us-east-1):
 * GET-class $0.0004 and PUT-class (PUT, COPY, POST, LIST) $0.005 per 1,000.
 * DELETE is free.
 */
typedef struct {
    uint64_t input_objects;    /* distinct input objects */
    uint64_t input_gets;       /* ranged GETs reading the inputs */
    uint64_t shuffle_puts;     /* PUT-class requests writing map outputs for wide stages */
    uint64_t shuffle_gets;     /* ranged GETs of reducers reading them */
    uint64_t output_puts;      /* PUT-class requests writing and publishing the output */
    uint64_t output_shards;    /* estimated output objects */
    uint64_t coord_gets, coord_puts, coord_lists, coord_deletes;
    uint64_t gets, puts;       /* totals; puts includes LISTs */
    double get_usd, put_usd, total_usd;
    double max_task_seconds;   /* estimated duration of the longest task */
    double task_seconds;       /* estimated sum of all task durations */
} dsp_plan_estimate;

/* Assumptions of the model, also printed by explain. */
/* A worker renews a task's lease every lease_seconds / DSP_LEASE_RENEW_DIVISOR,
 * so two renewals can fail before the lease expires. */
#define DSP_LEASE_RENEW_DIVISOR 3

#define DSP_ESTIMATE_CHUNK_BYTES (8ULL << 20)   /* ranged GET and multipart part size */
#define DSP_ESTIMATE_TASK_BYTES_PER_S (50ULL << 20)
#define DSP_ESTIMATE_GET_USD_PER_1000 0.0004
#define DSP_ESTIMATE_PUT_USD_PER_1000 0.005

void dsp_plan_estimate_requests(const dsp_plan *plan, const dsp_spec *spec,
                                dsp_plan_estimate *out);

#endif
