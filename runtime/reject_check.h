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

#include <stdint.h>

#include <cjson/cJSON.h>

#include "../core/err.h"
#include "../storage/store.h"
#include "job.h"

/* Reject reasons counted from reject files (JSONL records with a "reason"
 * member), for messages and for `dspark report`. */
#define DSP_REJECT_REASON_MAX 64

typedef struct {
    char name[DSP_REJECT_REASON_MAX];
    uint64_t count;
} dsp_reject_reason;

typedef struct {
    dsp_reject_reason *items;
    size_t n, cap;
    uint64_t counted; /* records counted so far */
    uint64_t limit;   /* stop counting after this many records; 0 = no limit */
} dsp_reject_tally;

/* Add the reasons of the reject file `key` of s (JSONL, compressed or not)
 * to tally, until its limit. */
dsp_status dsp_reject_tally_file(dsp_store *s, const char *key, dsp_reject_tally *tally,
                                 dsp_err *err);
/* Order the reasons by count, most frequent first, then by name. */
void dsp_reject_tally_sort(dsp_reject_tally *tally);
void dsp_reject_tally_free(dsp_reject_tally *tally);

/* Check the seals (one per stage, in stage order) of job. When records_in
 * is above zero and every record was rejected, record the job as failed
 * with the top reject reasons and their counts, and set *failed to 1.
 * Otherwise leave the job alone and set *failed to 0. */
dsp_status dsp_reject_check(dsp_store *s, const dsp_job *job, const cJSON *seals, int *failed,
                            dsp_err *err);

#endif
