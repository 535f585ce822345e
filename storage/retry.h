/*
 * retry.h - capped exponential backoff with full jitter.
 *
 * Attempt n (1-based) sleeps a uniform random time in [0, min(cap, base*2^n)]
 * before retrying, as in the AWS architecture blog's "Exponential Backoff
 * and Jitter" (2015). A request stops retrying after max_attempts attempts
 * or once max_total_ms have passed since its first attempt.
 */
#ifndef DSP_RETRY_H
#define DSP_RETRY_H

#include <stdint.h>

#include "../core/err.h"

typedef struct {
    int max_attempts;     /* total attempts including the first; default 8 */
    int64_t base_ms;      /* default 50 */
    int64_t cap_ms;       /* default 5,000 */
    int64_t max_total_ms; /* default 120,000 */
} dsp_retry_policy;

/* Defaults, with DSPARK_RETRY_MAX_ATTEMPTS honoured when set. */
void dsp_retry_default(dsp_retry_policy *p);

typedef struct {
    const dsp_retry_policy *policy;
    int attempt;      /* attempts made so far */
    int64_t start_ms; /* monotonic */
} dsp_retry_state;

void dsp_retry_begin(dsp_retry_state *st, const dsp_retry_policy *p);
/*
 * Decide after a failed attempt whether to try again. Returns 1 after
 * sleeping the backoff (and logging a "retry" line with op, target and the
 * error), 0 when the error is not transient or the budget is spent.
 */
int dsp_retry_again(dsp_retry_state *st, const dsp_err *err, const char *op, const char *target);

#endif
