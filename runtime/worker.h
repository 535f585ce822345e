/*
 * worker.h - the worker loop: claim tasks of the active jobs in a store,
 * run them, commit, seal stages and publish finished jobs.
 *
 * A worker needs nothing but the store: it finds jobs through active/,
 * reads their plans, and coordinates with other workers only through
 * conditional writes (protocol.h). Any number of workers may run at once,
 * start late, be killed or be frozen; a task's output is used only through
 * its winning commit.
 */
#ifndef DSP_WORKER_H
#define DSP_WORKER_H

#include "../core/err.h"

typedef struct {
    const char *store_uri;
    int slots;               /* tasks run at once; default 1 */
    int idle_exit_seconds;   /* exit after this long without work; 0 = never */
    int allow_exec;          /* allow steps that run external programs */
    const char *job;         /* only this job; NULL = every active job */
    int exit_when_finished;  /* with job: exit once it has a final state */
    int poll_ms;             /* pause between listings when idle; default 1,000 */
} dsp_worker_config;

/* Run until stopped (dsp_worker_stop), idle for idle_exit_seconds, or the
 * job of cfg->job finished (with exit_when_finished). */
dsp_status dsp_worker_run(const dsp_worker_config *cfg, dsp_err *err);

/* Ask the running worker to stop: running tasks are abandoned, their files
 * deleted and their leases released. Async-signal-safe. */
void dsp_worker_stop(void);

#endif
