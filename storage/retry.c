/* retry.c - see retry.h. */
#include "retry.h"

#include <stdlib.h>

#include "../core/log.h"
#include "../core/util.h"

void dsp_retry_default(dsp_retry_policy *p)
{
    const char *env = getenv("DSPARK_RETRY_MAX_ATTEMPTS");
    p->max_attempts = 8;
    p->base_ms = 50;
    p->cap_ms = 5000;
    p->max_total_ms = 120000;
    if (env && atoi(env) > 0)
        p->max_attempts = atoi(env);
}

void dsp_retry_begin(dsp_retry_state *st, const dsp_retry_policy *p)
{
    st->policy = p;
    st->attempt = 0;
    st->start_ms = dsp_mono_ms();
}

int dsp_retry_again(dsp_retry_state *st, const dsp_err *err, const char *op, const char *target)
{
    const dsp_retry_policy *p = st->policy;
    st->attempt++;
    if (err->code != DSP_ETRANSIENT)
        return 0;
    if (st->attempt >= p->max_attempts) {
        DSP_WARN("retry_exhausted", "op=%s target=%s attempts=%d", op, target, st->attempt);
        return 0;
    }
    int64_t ceiling = p->base_ms;
    for (int i = 0; i < st->attempt && ceiling < p->cap_ms; i++)
        ceiling *= 2;
    if (ceiling > p->cap_ms)
        ceiling = p->cap_ms;
    int64_t sleep_ms = (int64_t)(dsp_rand64() % (uint64_t)(ceiling + 1));
    if (dsp_mono_ms() - st->start_ms + sleep_ms > p->max_total_ms) {
        DSP_WARN("retry_exhausted", "op=%s target=%s attempts=%d elapsed_ms=%lld", op, target,
                 st->attempt, (long long)(dsp_mono_ms() - st->start_ms));
        return 0;
    }
    /* The request's attempt number is request_attempt, because a task's
     * log context already puts its attempt id under "attempt". */
    DSP_WARN("retry", "op=%s target=%s request_attempt=%d sleep_ms=%lld error=%s", op, target,
             st->attempt, (long long)sleep_ms, err->msg);
    dsp_sleep_ms(sleep_ms);
    return 1;
}
