/*
 * run_pool.h - the local worker processes of `dspark run`.
 *
 * The pool starts N `dspark worker --job ID --exit-when-finished`
 * processes, reaps them, and replaces a worker that died (killed by a
 * signal or exited non-zero: a crash, kill -9, the OOM killer). Workers
 * that exit with status 0 were stopped or saw the job end, so they are not
 * replaced. Replacements are bounded: after max_restarts of them with no
 * task committed in between, the next death is an error, so workers that
 * die at once every time do not restart forever.
 */
#ifndef DSP_RUN_POOL_H
#define DSP_RUN_POOL_H

#include <stddef.h>
#include <sys/types.h>

#include "../core/err.h"

typedef struct {
    char *store_uri;
    char *job_id;
    int allow_exec;
    int n;                  /* worker slots */
    pid_t *pids;            /* per slot: the running worker, or 0 */
    pid_t *dead;            /* per slot: a worker that died and awaits a replacement, or 0 */
    int *dead_status;       /* per slot: the wait status of that worker */
    int max_restarts;       /* replacements allowed with no task committed in between */
    int restarts;           /* replacements since the last new commit */
    size_t committed;       /* tasks committed at the last dsp_run_pool_progress */
    int signalled;          /* run sent its workers a signal to stop them */
} dsp_run_pool;

/* Start n workers of job_id on the store. A worker that cannot be forked
 * is reported on stderr and its slot stays empty. */
void dsp_run_pool_start(dsp_run_pool *p, const char *store_uri, const char *job_id, int n,
                        int allow_exec, int max_restarts);

/* Reap the workers that exited and log those that died with their pid and
 * exit status or signal. Returns the number still running. */
int dsp_run_pool_reap(dsp_run_pool *p);

/* Record the number of committed tasks of the job: when it grew since the
 * last call, the restart count starts again from 0. */
void dsp_run_pool_progress(dsp_run_pool *p, size_t committed);

/* Start a replacement for every worker that died. Fails with DSP_EIO, and
 * a message naming the last dead worker, when the replacements since the
 * last commit have reached max_restarts. */
dsp_status dsp_run_pool_replace(dsp_run_pool *p, dsp_err *err);

/* Send sig to every running worker to stop it. From then on reaping logs
 * an exited worker as worker_stopped at info level, not as worker_died. */
void dsp_run_pool_signal(dsp_run_pool *p, int sig);

/* Send SIGTERM to every running worker and wait for them to exit. Those
 * still running after grace_ms get SIGKILL. Returns how many got it. */
int dsp_run_pool_stop(dsp_run_pool *p, int grace_ms);

void dsp_run_pool_free(dsp_run_pool *p);

#endif
