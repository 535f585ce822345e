/*
 * publish.h - finishing a job: the final stage's committed files are
 * published under the job's output URI with deterministic names, then
 * _MANIFEST.json, then _SUCCESS, then state.json "done".
 *
 * Every step is idempotent (copies of immutable files to fixed names, a
 * manifest whose bytes depend only on the seals, a create-only _SUCCESS),
 * so two workers racing or a worker dying half-way leave a correct output
 * once any publisher finishes. Readers trust an output only with _SUCCESS.
 * A publisher that finds the job cancelled or failed stops before the next
 * batch of copies, _MANIFEST.json or _SUCCESS, and returns DSP_ECANCELLED.
 */
#ifndef DSP_PUBLISH_H
#define DSP_PUBLISH_H

#include "../core/err.h"
#include "../storage/store.h"
#include "job.h"

#define DSP_MANIFEST_SCHEMA_VERSION 1

/* Publish a job whose final stage is sealed, and record it as done. */
dsp_status dsp_publish_job(dsp_store *s, const dsp_job *job, dsp_err *err);

/* Check that the output prefix contains only objects that DSpark
 * publishes, so a job meant for it can publish there. Returns DSP_EPRECOND
 * with a message naming the output and up to three other objects. */
dsp_status dsp_publish_check_output(dsp_store *job_store, const char *output_uri,
                                    dsp_err *err);

/* Delete attempt files of a finished job that no winning commit names
 * (those of losing, crashed or cancelled attempts). */
dsp_status dsp_publish_sweep_attempts(dsp_store *s, const dsp_job *job, dsp_err *err);

#endif
