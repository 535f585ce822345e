/*
 * op_exec.c - the `exec` operator: stream documents through an external
 * command as JSONL and read the changed documents back.
 *
 * Contract with the command: it is started once per batch, from the argv
 * in the "command" option (searched in PATH, no shell). It reads one JSON
 * object per line on stdin until end of file. It writes exactly one line
 * per input line to stdout, in the same order. An output line that is a JSON object
 * replaces the document; an empty line or "null" removes it (reason
 * "dropped_by_command"). Because each batch closes stdin before reading the
 * end of stdout, commands that buffer their output (tr, sed, python3)
 * work. The task fails, with the last bytes of the command's stderr in the
 * message, when the command cannot start, exits non-zero, is killed, runs
 * longer than timeout_seconds, writes a line that is not a valid record
 * (a JSON object with the text member once, as a string, and valid UTF-8
 * in every string), or writes a different number of lines. A command that
 * writes more lines than it was given documents, or a line longer than the
 * job's max_record_bytes, is stopped as soon as it does: SIGTERM to its
 * group, then SIGKILL EXEC_STOP_GRACE_MS later. So the output buffered per
 * batch stays below documents * max_record_bytes.
 *
 * The command's exit ends the batch, even when a process that it started
 * still has its stdout or stderr open (`sh -c 'sleep 300 & exec cat'`, a
 * daemon). Output is read for at most EXEC_DRAIN_MS after the exit, and
 * once every line has arrived, only what is already readable. Then the
 * pipes are closed, and the processes still running in the command's
 * process group are stopped: SIGTERM, then SIGKILL when they still run
 * EXEC_STOP_GRACE_MS later. A warning (exec_processes_stopped) names them
 * once per task. The batch then succeeds or fails by the command's exit
 * status and the lines read, so a command must wait for the processes
 * that write its output.
 *
 * The command runs in a process group of its own under a small guard
 * process (exec_guard). When the worker dies for any reason, SIGKILL
 * included, the guard kills the whole group, so the processes that the
 * command started end too, unless they left the group. When the task is cancelled (the worker is
 * stopping, the job was cancelled or the lease was lost), the command's
 * group gets SIGTERM and, EXEC_STOP_GRACE_MS later, SIGKILL, and the task
 * ends with DSP_ECANCELLED.
 *
 * The operator is rejected unless the worker was started with --allow-exec,
 * because a job spec must not run programs on a worker by default.
 *
 * The command's environment lacks the credential variables of the S3
 * client (exec_secret_vars), because its stderr reaches logs, error records
 * in the store and `status --json`. The values of those variables, and
 * the credentials that the S3 client uses (core/secret.h), are replaced by
 * "***" in the captured stderr. NOTE: this does not stop a command from
 * reading ~/.aws/credentials or the instance metadata service, which the
 * worker's user can reach too, and a secret that the command changes
 * (encodes, splits) is not masked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/secret.h"
#include "../core/util.h"
#include "jsonl.h"
#include "op.h"
#include "op_text.h"

#define EXEC_STDERR_TAIL 1024
#define EXEC_STOP_GRACE_MS 2000  /* from SIGTERM to SIGKILL when the command's group is stopped */
#define EXEC_CANCEL_POLL_MS 100  /* how often a running command checks the cancel flag */
#define EXEC_REAP_POLL_MS 10     /* how often a command that closed its output, or a stopped
                                    process group, is checked */
#define EXEC_EXIT_POLL_MS 100    /* how often the command's exit is checked without a pidfd */
#define EXEC_DRAIN_MS 500        /* how long output is still read after the command exits */
#define EXEC_LISTED_PIDS 8       /* max pids of processes left running that a message lists */

extern char **environ;

/* Environment variables that carry credentials: the ones the S3 client
 * reads (storage/s3_creds.c), AWS_SECURITY_TOKEN, the older name of
 * AWS_SESSION_TOKEN, and the token of the ECS container credentials. */
static const char *const exec_secret_vars[] = {
    "AWS_ACCESS_KEY_ID",     "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",    "AWS_CONTAINER_AUTHORIZATION_TOKEN", NULL,
};

typedef struct {
    char **argv;
    int argc;
    double timeout_seconds;
    volatile int *cancel;  /* the task's cancel flag (dsp_op_ctx), or NULL */
    size_t max_line;       /* the job's max_record_bytes: longest output line */
    dsp_buf in, out, errtail;
    /* Per batch: the documents sent, the complete lines read back so far
     * and the length of the line being read. */
    size_t sent, out_lines, line_len;
    /* Per batch: how many processes of the command's process group still
     * ran after the command exited, and the first EXEC_LISTED_PIDS pids. */
    size_t leftovers;
    pid_t leftover_pids[EXEC_LISTED_PIDS];
    int leftovers_logged;  /* the task has logged its exec_processes_stopped warning */
} exec_state;

static const dsp_op_option exec_options[] = {
    {"command", DSP_OPT_LIST, "[]",
     "the command and its arguments, e.g. [\"python3\", \"clean.py\"] (required); it runs "
     "without the credential variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
     "AWS_SESSION_TOKEN, AWS_SECURITY_TOKEN and AWS_CONTAINER_AUTHORIZATION_TOKEN", 0, 0},
    {"timeout_seconds", DSP_OPT_FLOAT, "600",
     "maximum run time of the command per batch, in seconds; 0 = no limit", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const exec_reasons[] = {"dropped_by_command", NULL};

extern const dsp_op_def dsp_op_exec_def;

static void exec_destroy(void *state)
{
    exec_state *s = state;
    if (!s)
        return;
    for (int i = 0; i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    dsp_buf_free(&s->in);
    dsp_buf_free(&s->out);
    dsp_buf_free(&s->errtail);
    free(s);
}

static dsp_status exec_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                              dsp_err *err)
{
    if (!ctx || !ctx->allow_exec)
        return dsp_err_set(err, DSP_EPERM,
                           "the exec operator runs external commands and is disabled; start "
                           "the worker (or dspark run) with --allow-exec to permit it");
    const cJSON *command = cJSON_GetObjectItemCaseSensitive(options, "command");
    int n = cJSON_GetArraySize(command);
    if (!cJSON_IsArray(command) || n == 0)
        return dsp_err_set(err, DSP_EINVAL,
                           "option \"command\" is required: a non-empty array such as [\"tr\", \"a-z\", \"A-Z\"]");
    const cJSON *item;
    cJSON_ArrayForEach(item, command) {
        if (!cJSON_IsString(item) || !item->valuestring[0])
            return dsp_err_set(err, DSP_EINVAL,
                               "option \"command\" must list non-empty strings");
    }
    double timeout = dsp_op_opt_number(options, &dsp_op_exec_def, "timeout_seconds");
    if (timeout < 0)
        return dsp_err_set(err, DSP_EINVAL, "option \"timeout_seconds\" must be >= 0");

    /* The command runs without these variables, but their values are
     * masked in its stderr too, should it find them elsewhere. */
    for (size_t i = 0; exec_secret_vars[i]; i++)
        dsp_secret_add(getenv(exec_secret_vars[i]));

    exec_state *s = dsp_xcalloc(1, sizeof *s);
    s->argv = dsp_xcalloc((size_t)n + 1, sizeof *s->argv);
    cJSON_ArrayForEach(item, command) {
        s->argv[s->argc++] = dsp_xstrdup(item->valuestring);
    }
    s->timeout_seconds = timeout;
    s->cancel = ctx->cancel;
    s->max_line = ctx->max_record_bytes > 0 ? (size_t)ctx->max_record_bytes
                                            : (size_t)DSP_DEFAULT_MAX_RECORD_BYTES;
    *state = s;
    return DSP_OK;
}

/* Append a chunk of stderr to s->errtail. The buffer keeps at least the
 * last EXEC_STDERR_TAIL bytes plus the length of the longest secret, and
 * it is masked before it is trimmed. So a secret is masked whole while it
 * is in the buffer, and the end of a secret that is still being written
 * is kept until the rest arrives. */
static void exec_keep_tail(dsp_buf *b, const char *data, size_t n)
{
    dsp_buf_append(b, data, n);
    size_t keep = EXEC_STDERR_TAIL + dsp_secret_max_len();
    if (b->len > 3 * EXEC_STDERR_TAIL + keep) {
        dsp_secret_mask(b);
        if (b->len > keep) {
            memmove(b->data, b->data + b->len - keep, keep);
            b->len = keep;
            b->data[b->len] = '\0';
        }
    }
}

/* The last EXEC_STDERR_TAIL bytes of stderr, with secrets masked. */
static const char *exec_stderr_tail(exec_state *s)
{
    dsp_buf *b = &s->errtail;
    if (!b->data || b->len == 0)
        return "(no stderr output)";
    dsp_secret_mask(b);
    while (b->len > 0 && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r'))
        b->len--;
    b->data[b->len] = '\0';
    return b->data + (b->len > EXEC_STDERR_TAIL ? b->len - EXEC_STDERR_TAIL : 0);
}

static double exec_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A running command and the limits that stop it. */
typedef struct {
    pid_t pid;            /* the guard's, which ends as the command does; also the
                             id of the command's process group */
    double deadline;      /* timeout_seconds from the start; 0 = none */
    double kill_at;       /* SIGKILL after a SIGTERM's grace period; 0 = not stopping */
    int killed;           /* SIGKILL sent */
    int exited;           /* the guard has exited and was reaped */
    int status;           /* the guard's wait status, the same as the command's */
} exec_child;

/* Signal the command's process group. It contains the command and the
 * processes that it started, unless they made groups of their own. Once
 * the guard is reaped, its pid may belong to another process, so only the
 * group is signalled. */
static void exec_signal(const exec_child *c, int sig)
{
    if (kill(-c->pid, sig) != 0 && !c->exited)
        kill(c->pid, sig);
}

/* Reap the guard if it has exited, without waiting. Returns c->exited.
 * A failed waitpid (ECHILD) counts as an exit with status 0. */
static int exec_reap(exec_child *c)
{
    if (c->exited)
        return 1;
    pid_t r = waitpid(c->pid, &c->status, WNOHANG);
    if (r == c->pid) {
        c->exited = 1;
    } else if (r < 0 && errno != EINTR) {
        c->status = 0;
        c->exited = 1;
    }
    return c->exited;
}

/* Send SIGTERM to the command's group; exec_watch sends SIGKILL
 * EXEC_STOP_GRACE_MS later. */
static void exec_stop(exec_child *c)
{
    exec_signal(c, SIGTERM);
    c->kill_at = exec_now() + EXEC_STOP_GRACE_MS / 1000.0;
}

/* Append a chunk of the command's stdout to s->out. Fails as soon as the
 * output has more lines than the batch has documents or a line longer
 * than s->max_line, so that a command that writes without end cannot
 * fill the worker's memory. */
static dsp_status exec_take_output(exec_state *s, const char *data, size_t n, dsp_err *err)
{
    const char *p = data, *end = data + n;

    while (p < end) {
        if (s->out_lines == s->sent)
            return dsp_err_set(err, DSP_ECORRUPT,
                               "exec %s: wrote more lines than the %zu documents it was given "
                               "(expected one line per input line); stderr: %s",
                               s->argv[0], s->sent, exec_stderr_tail(s));
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len > s->max_line - s->line_len)
            return dsp_err_set(err, DSP_ECORRUPT,
                               "exec %s: output line %zu is longer than %zu bytes "
                               "(options.max_record_bytes of the job); stderr: %s",
                               s->argv[0], s->out_lines + 1, s->max_line, exec_stderr_tail(s));
        s->line_len += len;
        if (nl) {
            s->out_lines++;
            s->line_len = 0;
            p = nl + 1;
        } else {
            p = end;
        }
    }
    dsp_buf_append(&s->out, data, n);
    return DSP_OK;
}

/*
 * Stop the command when it passes its timeout (SIGKILL at once) or when
 * the task is cancelled (SIGTERM, then SIGKILL after EXEC_STOP_GRACE_MS),
 * and set *st and err to say why. Returns how long to wait, in ms, before
 * the next call (-1: no limit).
 */
static int exec_watch(exec_state *s, exec_child *c, dsp_status *st, dsp_err *err)
{
    double now = exec_now();

    if (*st == DSP_OK && c->deadline > 0 && now >= c->deadline) {
        exec_signal(c, SIGKILL);
        c->killed = 1;
        *st = dsp_err_set(err, DSP_EIO,
                          "exec %s: timed out after %g seconds (option timeout_seconds); "
                          "stderr: %s",
                          s->argv[0], s->timeout_seconds, exec_stderr_tail(s));
    }
    if (*st == DSP_OK && s->cancel && *s->cancel) {
        exec_stop(c);
        *st = dsp_err_set(err, DSP_ECANCELLED,
                          "exec %s: stopped with SIGTERM because the task was cancelled",
                          s->argv[0]);
    }
    if (!c->killed && c->kill_at > 0 && now >= c->kill_at) {
        exec_signal(c, SIGKILL);
        c->killed = 1;
    }
    if (c->killed)
        return -1;

    double left = -1;
    if (*st == DSP_OK && c->deadline > 0)
        left = c->deadline - now;
    if (c->kill_at > 0 && (left < 0 || c->kill_at - now < left))
        left = c->kill_at - now;
    int wait_ms = left < 0 ? -1 : (int)(left * 1000) + 1;
    if (*st == DSP_OK && s->cancel && (wait_ms < 0 || wait_ms > EXEC_CANCEL_POLL_MS))
        wait_ms = EXEC_CANCEL_POLL_MS;
    return wait_ms;
}

/* Count the running processes (zombies excluded) of process group pgid
 * by reading /proc, and store the first max of their pids in pids. Without
 * a readable /proc, returns 1 while kill(-pgid, 0) finds the group, which
 * counts zombies too. */
static size_t exec_group_members(pid_t pgid, pid_t *pids, size_t max)
{
    DIR *dir = opendir("/proc");
    if (!dir)
        return kill(-pgid, 0) == 0 ? 1 : 0;

    size_t n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(entry->d_name, &end, 10);
        if (pid <= 0 || *end != '\0')
            continue;
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, stat, sizeof stat - 1);
        close(fd);
        if (len <= 0)
            continue;
        stat[len] = '\0';
        /* "pid (comm) state ppid pgrp ...", where comm may contain spaces
         * and ')' but the fields after it do not. */
        const char *comm_end = strrchr(stat, ')');
        char state;
        int ppid, pgrp;
        if (!comm_end || sscanf(comm_end + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
            continue;
        if (pgrp != pgid || state == 'Z' || state == 'X')
            continue;
        if (n < max)
            pids[n] = (pid_t)pid;
        n++;
    }
    closedir(dir);
    return n;
}

/* Write the pids in s->leftover_pids as "41,42", with ",..." when
 * s->leftovers has more. */
static void exec_format_pids(const exec_state *s, char *out, size_t size)
{
    size_t listed = s->leftovers < EXEC_LISTED_PIDS ? s->leftovers : EXEC_LISTED_PIDS;
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < listed && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%d", i ? "," : "",
                                (int)s->leftover_pids[i]);
    if (s->leftovers > listed && len < size)
        snprintf(out + len, size - len, ",...");
}

/* Wait until no process of group pgid runs or the time `until` (exec_now)
 * passes. Returns 1 when none runs. */
static int exec_wait_group_gone(pid_t pgid, double until)
{
    for (;;) {
        if (exec_group_members(pgid, NULL, 0) == 0)
            return 1;
        if (exec_now() >= until)
            return 0;
        dsp_sleep_ms(EXEC_REAP_POLL_MS);
    }
}

/*
 * Stop the processes that still run in the command's process group after
 * the guard was reaped: SIGTERM, then SIGKILL when they still run at
 * c->kill_at (EXEC_STOP_GRACE_MS after the first SIGTERM). Counts them in
 * s->leftovers, and logs them once per task unless the group was already
 * being stopped because the task failed or was cancelled.
 *
 * The group id stays reserved after the guard is reaped, because Linux
 * frees a pid only when no process uses it as its pid, process group or
 * session id. So kill(-c->pid) reaches only the command's group while a
 * member, zombies included, exists. NOTE: the last member could end
 * between a check and the next signal, and its id be reused in that
 * window, which takes pid_max new processes within a few milliseconds.
 */
static void exec_stop_leftovers(exec_state *s, exec_child *c)
{
    s->leftovers = 0;
    /* A SIGKILL to the group (timeout) reached every process in it. */
    if (c->killed)
        return;
    /* The usual case, without a /proc scan: no process is left in the group. */
    if (kill(-c->pid, 0) != 0)
        return;
    s->leftovers = exec_group_members(c->pid, s->leftover_pids, EXEC_LISTED_PIDS);
    if (s->leftovers == 0)
        return;

    if (c->kill_at == 0) {
        if (!s->leftovers_logged) {
            char pids[EXEC_LISTED_PIDS * 12 + 8];
            exec_format_pids(s, pids, sizeof pids);
            DSP_WARN("exec_processes_stopped",
                     "command=%s processes=%zu pids=%s message=\"the command exited and left "
                     "these processes of its process group running. They get SIGTERM, and "
                     "SIGKILL if they still run %d ms later, and output written after the "
                     "exit is not read. Make the command wait for its children. Later "
                     "batches of this task are not logged\"",
                     s->argv[0], s->leftovers, pids, EXEC_STOP_GRACE_MS);
            s->leftovers_logged = 1;
        }
        kill(-c->pid, SIGTERM);
        c->kill_at = exec_now() + EXEC_STOP_GRACE_MS / 1000.0;
    }
    if (exec_wait_group_gone(c->pid, c->kill_at))
        return;
    kill(-c->pid, SIGKILL);
    c->killed = 1;
    /* So that none of them runs once the batch is over, unless it is in
     * an uninterruptible sleep for longer than this. */
    exec_wait_group_gone(c->pid, exec_now() + EXEC_STOP_GRACE_MS / 1000.0);
}

static int exec_is_secret_var(const char *entry)
{
    for (size_t i = 0; exec_secret_vars[i]; i++) {
        size_t n = strlen(exec_secret_vars[i]);
        if (strncmp(entry, exec_secret_vars[i], n) == 0 && entry[n] == '=')
            return 1;
    }
    return 0;
}

/*
 * The guard: the worker's direct child, leader of the command's process
 * group, with every signal blocked. It waits for the command (its own
 * child) and ends the same way, with the same exit code or signal, so the
 * worker gets the command's status. When the worker dies, the kernel
 * sends the guard EXEC_GUARD_SIGNAL (PR_SET_PDEATHSIG), and the guard
 * sends SIGKILL to the group, itself included: the PR_SET_PDEATHSIG of a
 * command reaches only the command, not the processes it started. The
 * worker's SIGTERM to the group reaches the command and stays pending in
 * the guard; its SIGKILL ends both. Only async-signal-safe calls run here,
 * because the worker has other threads.
 */
#define EXEC_GUARD_SIGNAL SIGUSR1

__attribute__((noreturn)) static void exec_guard(pid_t worker, pid_t command)
{
    /* The guard never calls exec, so close every descriptor it inherited:
     * an open copy of a pipe's write end would keep the command, or the
     * command of another task, from seeing end of file. */
    close_range(0, ~0u, 0);
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, SIGCHLD);
    sigaddset(&wake, EXEC_GUARD_SIGNAL);
    for (;;) {
        int status;
        if (waitpid(command, &status, WNOHANG) == command) {
            if (WIFEXITED(status))
                _exit(WEXITSTATUS(status));
            int sig = WTERMSIG(status);
            /* Die of the same signal, without a core file of the guard. */
            struct rlimit no_core = {0, 0};
            setrlimit(RLIMIT_CORE, &no_core);
            signal(sig, SIG_DFL);
            sigset_t one;
            sigemptyset(&one);
            sigaddset(&one, sig);
            sigprocmask(SIG_UNBLOCK, &one, NULL);
            kill(getpid(), sig);
            _exit(128 + sig);
        }
        if (getppid() != worker) {
            kill(0, SIGKILL);
            _exit(128 + SIGKILL);
        }
        /* A signal that arrived since the checks above is pending, so this
         * returns at once. */
        sigwaitinfo(&wake, NULL);
    }
}

/* Copy the worker's environment without the credential variables. Built
 * before fork, because the child of a threaded process must not allocate. */
static char **exec_child_env(void)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = dsp_xcalloc(n + 1, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!exec_is_secret_var(environ[i]))
            env[k++] = environ[i];
    }
    env[k] = NULL;
    return env;
}

/* Close *fd unless it is -1, and set it to -1. */
static void exec_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Open a pidfd of pid, which poll reports readable once the process
 * exits. Returns -1 on kernels without pidfd_open (before Linux 5.3). */
static int exec_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

/* The worker's ends of the command's pipes and a pidfd of the guard,
 * each -1 once closed. */
typedef struct {
    int in, out, err, pidfd;
    size_t written;  /* bytes of s->in written to the command's stdin */
} exec_pipes;

/*
 * Write s->in to the command's stdin and read its stdout into s->out and
 * its stderr into s->errtail, until both are closed, the command is
 * killed, or the reading after its exit ends (see the file header). Sets
 * *st and err when the timeout, the cancel flag or an output limit stops
 * the command.
 */
static void exec_pump(exec_state *s, exec_child *c, exec_pipes *p, dsp_status *st,
                      dsp_err *err)
{
    double drain_end = 0;
    char chunk[65536];

    while (p->out >= 0 || p->err >= 0) {
        int wait_ms;
        if (!c->exited) {
            wait_ms = exec_watch(s, c, st, err);
            if (c->killed)
                break;
            if (p->pidfd < 0 && (wait_ms < 0 || wait_ms > EXEC_EXIT_POLL_MS))
                wait_ms = EXEC_EXIT_POLL_MS;
        } else {
            /* The command has exited. Read what is left for up to
             * EXEC_DRAIN_MS, in case a process that it started keeps a
             * pipe open, and once every line has arrived, only what is
             * readable now. */
            double left = drain_end - exec_now();
            if (*st != DSP_OK || left <= 0)
                break;
            int complete = s->out_lines == s->sent && s->line_len == 0;
            wait_ms = complete ? 0 : (int)(left * 1000) + 1;
        }
        if ((*st != DSP_OK || c->exited) && p->in >= 0) {
            /* Stopping, or the command has exited: send nothing more, but
             * keep reading, so that a command being stopped does not block
             * on a full pipe before it exits. */
            exec_close(&p->in);
        }

        struct pollfd fds[4];
        int nfds = 0, wi = -1, oi = -1, ei = -1, pi = -1;
        if (p->in >= 0) {
            fds[nfds] = (struct pollfd){p->in, POLLOUT, 0};
            wi = nfds++;
        }
        if (p->out >= 0) {
            fds[nfds] = (struct pollfd){p->out, POLLIN, 0};
            oi = nfds++;
        }
        if (p->err >= 0) {
            fds[nfds] = (struct pollfd){p->err, POLLIN, 0};
            ei = nfds++;
        }
        if (p->pidfd >= 0) {
            fds[nfds] = (struct pollfd){p->pidfd, POLLIN, 0};
            pi = nfds++;
        }
        int ready = poll(fds, (nfds_t)nfds, wait_ms);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            exec_signal(c, SIGKILL);
            c->killed = 1;
            if (*st == DSP_OK)
                *st = dsp_err_set(err, DSP_EIO, "exec %s: poll failed: %s", s->argv[0],
                                  strerror(errno));
            break;
        }
        if (ready == 0 && c->exited)
            break;
        if (wi >= 0 && fds[wi].revents) {
            ssize_t n = write(p->in, s->in.data + p->written, s->in.len - p->written);
            if (n > 0)
                p->written += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || p->written == s->in.len) {
                /* EPIPE: the command stopped reading; its exit status decides. */
                exec_close(&p->in);
            }
        }
        if (oi >= 0 && fds[oi].revents) {
            ssize_t n = read(p->out, chunk, sizeof chunk);
            if (n > 0) {
                /* After an error the output is read only to keep the
                 * command from blocking until it exits, and dropped. */
                if (*st == DSP_OK && (*st = exec_take_output(s, chunk, (size_t)n, err)) != DSP_OK)
                    exec_stop(c);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                exec_close(&p->out);
            }
        }
        if (ei >= 0 && fds[ei].revents) {
            ssize_t n = read(p->err, chunk, sizeof chunk);
            if (n > 0) {
                exec_keep_tail(&s->errtail, chunk, (size_t)n);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                exec_close(&p->err);
            }
        }
        /* Without a pidfd, check the exit at every wakeup. */
        if ((pi < 0 || fds[pi].revents) && exec_reap(c)) {
            drain_end = exec_now() + EXEC_DRAIN_MS / 1000.0;
            exec_close(&p->pidfd);
        }
    }
}

/* Run the command with s->in on stdin; collect stdout in s->out and the
 * end of stderr in s->errtail. */
static dsp_status exec_run(exec_state *s, dsp_err *err)
{
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    dsp_status st = DSP_OK;
    exec_child child = {-1, 0, 0, 0, 0, 0};
    pid_t parent = getpid();
    sigset_t block, old;

    dsp_buf_reset(&s->out);
    dsp_buf_reset(&s->errtail);
    s->out_lines = 0;
    s->line_len = 0;
    s->leftovers = 0;
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
        pipe2(err_pipe, O_CLOEXEC) != 0) {
        st = dsp_err_set(err, DSP_EIO, "exec %s: pipe failed: %s", s->argv[0], strerror(errno));
        goto out;
    }

    /* A command that exits before reading all input must not kill this
     * process with SIGPIPE: block it here and consume it below. */
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);

    char **child_env = exec_child_env();
    child.pid = fork();
    if (child.pid < 0) {
        st = dsp_err_set(err, DSP_EIO, "exec %s: fork failed: %s", s->argv[0], strerror(errno));
        free(child_env);
        goto restore;
    }
    if (child.pid == 0) {
        /* The guard (exec_guard). A process group of its own: stopping the
         * command also stops the processes it starts, and a Ctrl-C on the
         * terminal reaches only the worker, which then stops the command. */
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        setpgid(0, 0);
        /* The kernel sends the signal when the forking thread ends, and
         * task threads live as long as the worker. A worker that died
         * before the prctl call is no longer the parent. */
        if (prctl(PR_SET_PDEATHSIG, EXEC_GUARD_SIGNAL) != 0 || getppid() != parent)
            _exit(127);
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        pid_t guard = getpid();
        pid_t command = fork();
        if (command < 0) {
            dprintf(2, "cannot run %s: fork failed: %s\n", s->argv[0], strerror(errno));
            _exit(127);
        }
        if (command == 0) {
            /* Die with the guard too, should it ever die first. */
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != guard)
                _exit(127);
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            signal(SIGPIPE, SIG_DFL);
            execvpe(s->argv[0], s->argv, child_env);
            dprintf(2, "cannot run %s: %s\n", s->argv[0], strerror(errno));
            _exit(127);
        }
        exec_guard(parent, command);
    }
    free(child_env);
    child_env = NULL;
    /* Also here, so the group exists before any signal below. It fails
     * with EACCES when the child has already run execvp, after its own
     * setpgid. */
    setpgid(child.pid, child.pid);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    in_pipe[0] = out_pipe[1] = err_pipe[1] = -1;
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);

    exec_pipes pipes = {in_pipe[1], out_pipe[0], err_pipe[0], exec_pidfd_open(child.pid), 0};
    in_pipe[1] = out_pipe[0] = err_pipe[0] = -1;
    if (s->in.len == 0)
        exec_close(&pipes.in);
    child.deadline = s->timeout_seconds > 0 ? exec_now() + s->timeout_seconds : 0;
    exec_pump(s, &child, &pipes, &st, err);

    /* Close the pipes before the processes that may keep them open are
     * stopped, so that one that ignores SIGTERM gets SIGPIPE (or EPIPE) when
     * it writes. */
    exec_close(&pipes.in);
    exec_close(&pipes.out);
    exec_close(&pipes.err);
    exec_close(&pipes.pidfd);

    /* A command may close its output and still run: the timeout and the
     * cancel flag apply until it exits. */
    while (!exec_reap(&child)) {
        int wait_ms = exec_watch(s, &child, &st, err);
        dsp_sleep_ms(wait_ms >= 0 && wait_ms < EXEC_REAP_POLL_MS ? wait_ms : EXEC_REAP_POLL_MS);
    }
    exec_stop_leftovers(s, &child);
    int status = child.status;
    if (st == DSP_OK) {
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            st = dsp_err_set(err, DSP_EIO, "exec %s: exited with status %d; stderr: %s",
                             s->argv[0], WEXITSTATUS(status), exec_stderr_tail(s));
        else if (WIFSIGNALED(status))
            st = dsp_err_set(err, DSP_EIO, "exec %s: killed by signal %d; stderr: %s",
                             s->argv[0], WTERMSIG(status), exec_stderr_tail(s));
    }

restore : {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&block, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
out:
    for (int i = 0; i < 2; i++) {
        exec_close(&in_pipe[i]);
        exec_close(&out_pipe[i]);
        exec_close(&err_pipe[i]);
    }
    return st;
}

static int exec_line_is_null(const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\r' || p[n - 1] == '\t'))
        n--;
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    return n == 0 || (n == 4 && memcmp(p, "null", 4) == 0);
}

/* Explanation of a dsp_jsonl_check_line reason, for a command's output. */
static const char *exec_problem_detail(const char *problem)
{
    if (!strcmp(problem, "invalid_json") || !strcmp(problem, "not_object"))
        return "expected one JSON object per line";
    if (!strcmp(problem, "invalid_utf8"))
        return "a string contains invalid UTF-8 or a lone surrogate escape";
    if (!strcmp(problem, "missing_text"))
        return "the text member is missing";
    if (!strcmp(problem, "text_not_string"))
        return "the text member is not a string";
    return "the text member appears twice";
}

/* Set err for a batch whose command wrote only `lines` lines, naming the
 * processes that it left running, and return DSP_ECORRUPT. */
static dsp_status exec_missing_lines(exec_state *s, size_t lines, dsp_err *err)
{
    char leftovers[EXEC_LISTED_PIDS * 12 + 160] = "";
    if (s->leftovers > 0) {
        char pids[EXEC_LISTED_PIDS * 12 + 8];
        exec_format_pids(s, pids, sizeof pids);
        snprintf(leftovers, sizeof leftovers,
                 "; it exited and left %zu process%s running (pid%s %s), which %s stopped, "
                 "and output written after the exit is not read",
                 s->leftovers, s->leftovers == 1 ? "" : "es", s->leftovers == 1 ? "" : "s",
                 pids, s->leftovers == 1 ? "was" : "were");
    }
    return dsp_err_set(err, DSP_ECORRUPT,
                       "exec %s: wrote %zu lines for %zu documents (expected one line per "
                       "input line)%s; stderr: %s",
                       s->argv[0], lines, s->sent, leftovers, exec_stderr_tail(s));
}

static dsp_status exec_process(void *state, dsp_batch *b, unsigned char *keep,
                               dsp_op_counters *c, dsp_err *err)
{
    exec_state *s = state;
    size_t sent = 0;

    dsp_buf_reset(&s->in);
    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        dsp_doc_serialize(b, &b->docs[i], &s->in);
        dsp_buf_append_char(&s->in, '\n');
        sent++;
    }
    if (sent == 0)
        return DSP_OK;
    s->sent = sent;

    dsp_status st = exec_run(s, err);
    if (st != DSP_OK)
        return st;

    const char *p = s->out.data ? s->out.data : "", *end = p + s->out.len;
    size_t line_no = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        if (p >= end)
            return exec_missing_lines(s, line_no, err);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        line_no++;

        dsp_doc *d = &b->docs[i];
        if (exec_line_is_null(p, n)) {
            keep[i] = 0;
            c->removed[0]++;
        } else {
            /* The same checks as for input records: later steps and the
             * writer rely on them. NOTE: other members that the job reads
             * (a dedup field, say) are not checked for duplicates here,
             * because an operator does not know the job's other steps. */
            const char *problem = dsp_jsonl_check_line(p, n, b->text_field);
            if (problem)
                return dsp_err_set(err, DSP_ECORRUPT,
                                   "exec %s: output line %zu is not a valid record (%s: %s): "
                                   "%.*s",
                                   s->argv[0], line_no, problem,
                                   exec_problem_detail(problem), (int)(n < 80 ? n : 80), p);
            d->line = dsp_arena_strndup(&b->arena, p, n);
            d->line_len = n;
            d->text = NULL;
            d->text_len = 0;
            d->text_changed = 0;
            d->words = NULL;
            d->extra = NULL;
            d->extra_len = 0;
            size_t len;
            dsp_op_doc_text(b, d, &len);
        }
        p = nl ? nl + 1 : end;
    }
    if (p < end)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "exec %s: wrote more lines than the %zu documents it was given "
                           "(expected one line per input line)",
                           s->argv[0], sent);
    return DSP_OK;
}

const dsp_op_def dsp_op_exec_def = {
    .name = "exec",
    .summary = "stream documents as JSONL through an external command (needs --allow-exec)",
    .wide = 0,
    .options = exec_options,
    .reasons = exec_reasons,
    .extra_names = NULL,
    .create = exec_create,
    .process = exec_process,
    .finish = NULL,
    .destroy = exec_destroy,
};
