/*
 * op_dedup.h - registry entries of the wide dedup operators and the
 * translation of their step options into tasks/dedup.h options.
 *
 * dedup_exact and dedup_minhash are wide: the planner gives each its own
 * shuffle stages, and runtime/stage_wide.c runs them through dedup.h.
 * Their `process` callback is never used by a map stage.
 */
#ifndef DSP_OP_DEDUP_H
#define DSP_OP_DEDUP_H

#include <cjson/cJSON.h>

#include "../core/err.h"
#include "dedup.h"
#include "op.h"

extern const dsp_op_def dsp_op_dedup_exact_def;
extern const dsp_op_def dsp_op_dedup_minhash_def;

/* Options of a dedup_exact step. *field is the JSON member to hash, or
 * NULL for the document's text; it points into step or a static default. */
dsp_status dsp_op_dedup_exact_config(const cJSON *step, const char **field,
                                     dsp_dedup_exact_opts *opts, dsp_err *err);
/* Options of a dedup_minhash step, except "clusters", which the runtime
 * reads with dsp_op_opt_bool. */
dsp_status dsp_op_dedup_minhash_config(const cJSON *step, dsp_dedup_minhash_opts *opts,
                                       dsp_err *err);
/* The same for a step as a job plan records it. The planner writes the
 * signature scheme into every dedup_minhash step it plans
 * (dsp_op_dedup_pin_step), so all workers of a job compute alike even
 * when a later version changes the default. A planned step without one
 * comes from a version before the option, which used k permutations. */
dsp_status dsp_op_dedup_minhash_plan_config(const cJSON *step, dsp_dedup_minhash_opts *opts,
                                            dsp_err *err);
/* Copy of a wide step for a plan: a dedup_minhash step gets its default
 * "scheme" written out when it has none. Other steps are copied as they
 * are. */
cJSON *dsp_op_dedup_pin_step(const cJSON *step);

#endif
