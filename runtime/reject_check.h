/*
 * reject_check.h - failing a job whose every input record was rejected.
 *
 * A job whose records were all rejected by the readers (a wrong
 * text_field, a wrong format, binary input) would otherwise publish an
 * empty output and end "done". The publisher runs this check on the
 * sealed stages before it writes anything under the output.
 */
#ifndef DSP_REJECT_CHECK_H
#define DSP_REJECT_CHECK_H

#include <cjson/cJSON.h>

#include "../core/err.h"
#include "../storage/store.h"
#include "job.h"

/* Check the seals (one per stage, in stage order) of job. When records_in
 * is above zero and every record was rejected, record the job as failed
 * with the top reject reasons and their counts, and set *failed to 1.
 * Otherwise leave the job alone and set *failed to 0. */
dsp_status dsp_reject_check(dsp_store *s, const dsp_job *job, const cJSON *seals, int *failed,
                            dsp_err *err);

#endif
