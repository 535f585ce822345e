/*
 * op.h - the operator registry.
 *
 * An operator is a named step of a job's pipeline. Narrow operators
 * (filters, maps, redaction) process one batch at a time and are fused into
 * one stage; wide operators (dedup, sort, repartition) need a shuffle and
 * start a new stage. Each operator declares its options with defaults and
 * help text, and the reasons for which it removes documents, so counters
 * and `dspark ops` come from one table.
 */
#ifndef DSP_OP_H
#define DSP_OP_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../core/err.h"
#include "doc.h"

typedef enum { DSP_OPT_BOOL, DSP_OPT_INT, DSP_OPT_FLOAT, DSP_OPT_STRING, DSP_OPT_LIST } dsp_opt_type;

/* Upper bounds for DSP_OPT_INT ranges: the largest int, for values an
 * operator keeps in an int, and 10^15 for counts. 10^15 is below 2^53, so
 * a JSON number (a double) represents every integer up to it exactly, and cJSON
 * prints it without rounding. */
#define DSP_OP_INT_MAX_32 2147483647.0
#define DSP_OP_INT_MAX_COUNT 1000000000000000.0

typedef struct {
    const char *name;
    dsp_opt_type type;
    const char *default_json; /* default as JSON text, e.g. "0.1", "[\"en\"]" */
    const char *help;         /* what it sets, with its unit */
    double min, max;          /* DSP_OPT_INT only: the allowed values, inclusive */
} dsp_op_option;

#define DSP_OP_MAX_REASONS 16

typedef struct {
    uint64_t in, out;
    uint64_t removed[DSP_OP_MAX_REASONS]; /* indexed like dsp_op_def.reasons */
    uint64_t extra[DSP_OP_MAX_REASONS];   /* operator-specific counts, e.g. PII per kind */
} dsp_op_counters;

typedef struct dsp_op_ctx {
    int allow_exec;         /* the worker was started with --allow-exec */
    const char *text_field;
    volatile int *cancel;   /* set non-zero when the task must stop; may be NULL */
    /* The job's options.max_record_bytes: the longest record an operator
     * may produce; 0 = DSP_DEFAULT_MAX_RECORD_BYTES (64 MiB). */
    int64_t max_record_bytes;
} dsp_op_ctx;

typedef struct {
    const char *name;
    const char *summary;
    int wide;                         /* needs a shuffle stage */
    const dsp_op_option *options;     /* terminated by {NULL} */
    const char *const *reasons;       /* removal reasons, NULL-terminated */
    const char *const *extra_names;   /* names of extra counters, NULL-terminated, or NULL */
    /* String options whose value names a member that the operator reads
     * from each record, NULL-terminated, or NULL (see dsp_op_read_fields). */
    const char *const *member_options;
    /* Validate options (unknown keys are rejected by the registry first)
     * and build the operator's state. */
    dsp_status (*create)(const cJSON *options, const dsp_op_ctx *ctx, void **state, dsp_err *err);
    /* Process a batch in place: set keep[i] = 0 for removed documents and
     * count them in c->removed[reason]. The caller compacts and counts in/out. */
    dsp_status (*process)(void *state, dsp_batch *b, unsigned char *keep, dsp_op_counters *c,
                          dsp_err *err);
    /* Called once at the end of the input (may be NULL). */
    dsp_status (*finish)(void *state, dsp_err *err);
    void (*destroy)(void *state);
} dsp_op_def;

/* Look up an operator by name; NULL when unknown. */
const dsp_op_def *dsp_op_find(const char *name);
/* All registered operators, NULL-terminated. */
const dsp_op_def *const *dsp_op_all(void);

/* An instantiated step: definition, state and counters. */
typedef struct {
    const dsp_op_def *def;
    void *state;
    dsp_op_counters counters;
} dsp_op_instance;

/* Check a step object {"op": NAME, ...options}: known name, known option
 * names with the right types, and integer options within their range.
 * Errors name the step index and option. */
dsp_status dsp_op_validate(const cJSON *step, int index, dsp_err *err);
dsp_status dsp_op_instantiate(const cJSON *step, int index, const dsp_op_ctx *ctx,
                              dsp_op_instance *out, dsp_err *err);
void dsp_op_instance_free(dsp_op_instance *inst);
/* Option accessors that fall back to the declared default. */
double dsp_op_opt_number(const cJSON *options, const dsp_op_def *def, const char *name);
int dsp_op_opt_bool(const cJSON *options, const dsp_op_def *def, const char *name);
/* Returns a pointer into options or into a static default; do not free. */
const char *dsp_op_opt_string(const cJSON *options, const dsp_op_def *def, const char *name);
/* The option's value, or its parsed default (caller deletes with cJSON_Delete). */
cJSON *dsp_op_opt_json(const cJSON *options, const dsp_op_def *def, const char *name);

/*
 * Collect the members that the steps read from each record: the non-empty
 * values (or defaults) of the options in member_options, such as the
 * `field` of dedup_exact. Returns a NULL-terminated array, which the
 * caller frees with free(); its strings point into steps or into static
 * defaults. Steps must have passed dsp_op_validate.
 */
const char **dsp_op_read_fields(const cJSON *steps);

/* Counters as JSON: {"in":..,"out":..,"removed":{reason:n},"extra":{..}}. */
cJSON *dsp_op_counters_json(const dsp_op_def *def, const dsp_op_counters *c);

#endif
