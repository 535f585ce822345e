/*
 * op_repartition.h - the wide operator `repartition` and the translation of
 * its step options.
 *
 * {"op": "repartition", "by": "hash"|"field"|"sort", "field": NAME,
 * "shards": N} writes the job's output as N shards. With "hash" a
 * document's shard comes from a hash of its whole JSON line, with "field"
 * from a hash of one top-level member, so documents with equal values share
 * a shard. Inside a shard documents keep the job's input order. With "sort"
 * the shards are ranges of the member's value, each sorted by it (ties in
 * input order), so the shards in order are one global sort. The planner
 * gives hash and field one reduce stage of N tasks, and sort a sampling
 * pass before it (planner/plan.c); runtime/stage_wide.c runs them through
 * tasks/repartition.h.
 */
#ifndef DSP_OP_REPARTITION_H
#define DSP_OP_REPARTITION_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../core/err.h"
#include "op.h"

extern const dsp_op_def dsp_op_repartition_def;

/* Options of a repartition step. *field is the member to hash or sort by,
 * or NULL to hash the whole line; *sort is 1 for "by": "sort"; *shards is 0
 * when the planner picks the count. */
dsp_status dsp_op_repartition_config(const cJSON *step, const char **field, int *sort,
                                     uint32_t *shards, dsp_err *err);

/*
 * Copy a repartition step for the plan with "field_hash" set to the default
 * when the spec leaves it out. Workers of one job then hash field values
 * alike even when their versions differ in the default.
 */
cJSON *dsp_op_repartition_pin_step(const cJSON *step);

/* Return 1 when a planned step hashes typed field values. A step planned
 * before the option existed has no "field_hash" and hashed the JSON text. */
int dsp_op_repartition_typed_hash(const cJSON *planned_step);

#endif
