/*
 * run_pool.c - the local worker processes of `dspark run`: start, reap and
 * replace them (see run_pool.h).
 *
 * A worker is this binary run again (/proc/self/exe) as `dspark worker`.
 * A dead worker needs no cleanup here: its task leases expire and other
 * workers take the tasks over, counting the lost attempts against
 * max_attempts. So a task that kills every worker that runs it still fails
 * the job through max_attempts, and max_restarts only has to stop workers
 * that die before they finish any task.
 */
#include "run_pool.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"

static pid_t spawn_worker(const dsp_run_pool *p)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    pid_t pid;

    if (n <= 0)
        return -1;
    self[n] = '\0';
    /* Unwritten stdio buffers would otherwise be written twice. */
    fflush(NULL);
    pid = fork();
    if (pid != 0)
        return pid;
    char *args[] = {self,
                    "worker",
                    "--store",
                    p->store_uri,
                    "--job",
                    p->job_id,
                    "--exit-when-finished",
                    p->allow_exec ? "--allow-exec" : NULL,
                    NULL};
    execv(self, args);
    fprintf(stderr, "dspark: cannot start a worker (%s): %s\n", self, strerror(errno));
    _exit(127);
}

/* Describe a wait status for a message: "exited with status 1" or
 * "was killed by signal 9 (SIGKILL)". */
static void describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status)) {
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        const char *name = sigabbrev_np(WTERMSIG(status));
        snprintf(buf, size, "was killed by signal %d (SIG%s)", WTERMSIG(status),
                 name ? name : "?");
    } else {
        snprintf(buf, size, "ended with wait status %d", status);
    }
}

void dsp_run_pool_start(dsp_run_pool *p, const char *store_uri, const char *job_id, int n,
                        int allow_exec, int max_restarts)
{
    memset(p, 0, sizeof *p);
    p->store_uri = dsp_xstrdup(store_uri);
    p->job_id = dsp_xstrdup(job_id);
    p->allow_exec = allow_exec;
    p->n = n;
    p->max_restarts = max_restarts;
    p->pids = dsp_xcalloc((size_t)n, sizeof *p->pids);
    p->dead = dsp_xcalloc((size_t)n, sizeof *p->dead);
    p->dead_status = dsp_xcalloc((size_t)n, sizeof *p->dead_status);
    for (int i = 0; i < n; i++) {
        p->pids[i] = spawn_worker(p);
        if (p->pids[i] < 0) {
            fprintf(stderr, "dspark: cannot start worker %d: %s\n", i, strerror(errno));
            p->pids[i] = 0;
        }
    }
}

int dsp_run_pool_reap(dsp_run_pool *p)
{
    int alive = 0;

    for (int i = 0; i < p->n; i++) {
        if (p->pids[i] <= 0)
            continue;
        int status;
        pid_t r = waitpid(p->pids[i], &status, WNOHANG);
        if (r != p->pids[i]) {
            alive++;
            continue;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            p->pids[i] = 0;
            continue;
        }
        if (p->signalled) {
            /* Stopped by run itself, so not a death to report or replace. */
            char how[96];
            describe_status(status, how, sizeof how);
            DSP_INFO("worker_stopped", "job=%s worker_pid=%d status=\"%s\"", p->job_id,
                     (int)p->pids[i], how);
            p->pids[i] = 0;
            continue;
        }
        if (WIFSIGNALED(status))
            DSP_WARN("worker_died", "job=%s worker_pid=%d signal=%d signal_name=SIG%s", p->job_id,
                     (int)p->pids[i], WTERMSIG(status),
                     sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
        else
            DSP_WARN("worker_died", "job=%s worker_pid=%d exit_status=%d", p->job_id,
                     (int)p->pids[i], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        p->dead[i] = p->pids[i];
        p->dead_status[i] = status;
        p->pids[i] = 0;
    }
    return alive;
}

void dsp_run_pool_progress(dsp_run_pool *p, size_t committed)
{
    if (committed > p->committed) {
        p->committed = committed;
        p->restarts = 0;
    }
}

dsp_status dsp_run_pool_replace(dsp_run_pool *p, dsp_err *err)
{
    for (int i = 0; i < p->n; i++) {
        if (!p->dead[i])
            continue;
        if (p->restarts >= p->max_restarts) {
            char how[96];
            describe_status(p->dead_status[i], how, sizeof how);
            return dsp_err_set(err, DSP_EIO,
                               "%d workers were replaced with no task committed in between, "
                               "the limit (--workers plus the job's max_attempts), and then "
                               "worker pid %d %s",
                               p->restarts, (int)p->dead[i], how);
        }
        pid_t pid = spawn_worker(p);
        if (pid < 0) {
            return dsp_err_set(err, DSP_EIO, "cannot start a worker to replace pid %d: %s",
                               (int)p->dead[i], strerror(errno));
        }
        p->restarts++;
        DSP_WARN("worker_replaced", "job=%s dead_worker_pid=%d worker_pid=%d restarts=%d "
                 "max_restarts=%d", p->job_id, (int)p->dead[i], (int)pid, p->restarts,
                 p->max_restarts);
        p->dead[i] = 0;
        p->pids[i] = pid;
    }
    return DSP_OK;
}

void dsp_run_pool_signal(dsp_run_pool *p, int sig)
{
    p->signalled = 1;
    for (int i = 0; i < p->n; i++)
        if (p->pids[i] > 0)
            kill(p->pids[i], sig);
}

int dsp_run_pool_stop(dsp_run_pool *p, int grace_ms)
{
    int killed = 0;

    dsp_run_pool_signal(p, SIGTERM);
    for (int waited = 0; dsp_run_pool_reap(p) > 0; waited += 100) {
        if (waited >= grace_ms && !killed) {
            for (int i = 0; i < p->n; i++) {
                if (p->pids[i] <= 0)
                    continue;
                DSP_WARN("worker_killed", "job=%s worker_pid=%d reason=\"still running %d ms "
                         "after SIGTERM\"", p->job_id, (int)p->pids[i], grace_ms);
                kill(p->pids[i], SIGKILL);
                killed++;
            }
        }
        dsp_sleep_ms(100);
    }
    return killed;
}

void dsp_run_pool_free(dsp_run_pool *p)
{
    free(p->pids);
    free(p->dead);
    free(p->dead_status);
    free(p->store_uri);
    free(p->job_id);
    memset(p, 0, sizeof *p);
}
