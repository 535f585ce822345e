/*
 * stage_wide.h - tasks of the stages around a shuffle (dedup_exact,
 * dedup_minhash, repartition), called by the worker in place of
 * dsp_pipeline_run.
 */
#ifndef DSP_STAGE_WIDE_H
#define DSP_STAGE_WIDE_H

#include "../core/err.h"
#include "../planner/plan.h"
#include "../storage/store.h"
#include "../tasks/pipeline.h"

/* 1 when the runtime can run every task of this stage kind. */
int dsp_wide_kind_supported(const char *kind);

/* 1 when a task of `stage` must go through dsp_wide_run_task: the stage is
 * not a plain map stage, or it feeds a shuffle. */
int dsp_wide_stage_needed(const dsp_plan *plan, const dsp_plan_stage *stage);

/*
 * Run one task of a stage for which dsp_wide_stage_needed() is 1. cfg is
 * the map-task configuration the worker built (out_prefix is the attempt
 * prefix, and every output goes under it); inputs are the task's input
 * ranges. Reads earlier stages only through their seals. Fills res like
 * dsp_pipeline_run, so the worker commits it the same way.
 */
dsp_status dsp_wide_run_task(dsp_store *store, const char *job, const dsp_plan *plan,
                             const dsp_plan_stage *stage, const dsp_plan_task *task,
                             const dsp_pipeline_config *cfg, const dsp_input_range *inputs,
                             dsp_pipeline_result *res, dsp_err *err);

#endif
