/*
 * output_lock.h - the publishing lock of an output prefix.
 *
 * Jobs of different job stores cannot see each other's output claims, so
 * two of them could publish to one output at once and leave parts of both
 * behind one _SUCCESS. Before a publisher changes anything under an output,
 * it takes the lock object <output>/_PUBLISHING with a create-only PUT. The
 * object names the job, its job store and the holder's clock time, and
 * the holder renews that time while it copies. Publishers of the same job
 * share the lock, because they write the same bytes. Another job's lock
 * blocks publishing until its holder releases it after _SUCCESS, or until
 * it has not been renewed for DSP_OUTPUT_LOCK_STALE_MS (a crashed
 * publisher), when a compare-and-swap PUT takes it over.
 *
 * NOTE: a holder that stalls for longer than the stale age (SIGSTOP, a
 * paused VM) and then resumes finishes the batch of copies it was in
 * before its next renewal finds the lock lost. Those copies can replace
 * parts of the job that took the lock over. The stalled publisher then
 * breaks the new holder's lock and deletes a _SUCCESS that names another
 * job (publish.c, lock_lost), so the new holder publishes again or the
 * output shows as incomplete. A _SUCCESS that the new holder writes
 * between those two steps can still vouch for replaced parts, which
 * `dspark report --verify` detects.
 */
#ifndef DSP_OUTPUT_LOCK_H
#define DSP_OUTPUT_LOCK_H

#include "../core/err.h"
#include "../storage/store.h"

#define DSP_OUTPUT_LOCK_NAME "_PUBLISHING"
/* A lock older than this is a crashed publisher's. Holders renew every
 * DSP_OUTPUT_LOCK_STALE_MS / 10, and clocks of the machines involved must
 * agree to well within this. */
#define DSP_OUTPUT_LOCK_STALE_MS (10 * 60 * 1000)

typedef struct dsp_output_lock dsp_output_lock;

/*
 * Take the lock of the output at out_prefix (a key prefix of out, without
 * a trailing '/') for job_id. Returns DSP_EPRECOND, with a message naming
 * the output and the other job and its job store, when another job holds
 * a lock that is not stale.
 */
dsp_status dsp_output_lock_take(dsp_store *out, const char *out_prefix, const char *output_uri,
                                const char *job_id, const char *job_store_uri,
                                dsp_output_lock **lock, dsp_err *err);

/* Renew the lock when force is set or a tenth of the stale age has passed
 * since the last renewal. Returns DSP_EPRECOND when another job holds the
 * lock or it is gone, which means it was taken over and released while
 * this holder stalled, or another publisher of this job finished. */
dsp_status dsp_output_lock_renew(dsp_output_lock *lock, int force, dsp_err *err);

/* Delete the lock object if it names another job, so that its holder's
 * next renewal fails and that publisher starts over. For a holder that
 * lost the lock and may have replaced parts of the new holder's output. */
dsp_status dsp_output_lock_break_other(dsp_output_lock *lock, dsp_err *err);

/* Delete the lock object if it still names this job, and free lock. */
dsp_status dsp_output_lock_release(dsp_output_lock *lock, dsp_err *err);

/* Free lock without touching the lock object (NULL is allowed). */
void dsp_output_lock_free(dsp_output_lock *lock);

#endif
