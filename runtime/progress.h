/*
 * progress.h - what `dspark run` shows while a job runs and when it ends.
 * On a terminal it redraws a one-line bar (tasks done, MB/s, ETA) in place,
 * otherwise it logs one line every few seconds. A summary follows the end.
 */
#ifndef DSP_PROGRESS_H
#define DSP_PROGRESS_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include "job.h"

typedef struct {
    int tty;                 /* draw a bar on stderr instead of log lines */
    int64_t start_mono;
    int64_t last_line_mono;
    int bar_drawn;
} dsp_progress;

void dsp_progress_init(dsp_progress *p, int tty);
/* Show the progress of stages (job->plan->nstages entries). */
void dsp_progress_show(dsp_progress *p, const dsp_job *job, const dsp_stage_progress *stages);
/* End the bar line, if one was drawn. */
void dsp_progress_end(dsp_progress *p);

/* Print the summary of a finished job from its status document
 * (dsp_job_status_json): the time taken by planning (checking the store,
 * listing inputs, submitting) and by running, documents and bytes in and
 * out, what each operator removed, rejects and throughput over the run.
 * tasks_done_before is the number of tasks committed before this run
 * started. When it is nonzero the counters include work of earlier runs,
 * so the summary reports that the run resumed the job and prints no
 * throughput. */
void dsp_progress_summary(FILE *out, const dsp_job *job, const cJSON *status,
                          double plan_seconds, double run_seconds, size_t tasks_done_before);

#endif
