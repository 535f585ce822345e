/*
 * cmd_job.c - the job commands: run, submit, worker, status, jobs, wait,
 * cancel and gc. Each parses its options, opens the store and calls job.h,
 * worker.h, publish.h or progress.h; exit codes are the DSP_EXIT_* of cli.h.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../planner/plan.h"
#include "../storage/local_sweep.h"
#include "../storage/store.h"
#include "../tasks/input_cache.h"
#include "cli.h"
#include "job.h"
#include "job_list.h"
#include "progress.h"
#include "protocol.h"
#include "run_pool.h"
#include "worker.h"

#define EXIT_CODES_HELP                                                           \
    "exit codes: 0 success, 1 job failed (or the command failed), 2 invalid\n"    \
    "command line or spec, 3 job cancelled, 4 timeout, 5 no such job\n"

#define STORE_HELP                                                                \
    "  --store URI      job store: s3://bucket/prefix, file:///dir or a directory\n" \
    "                   (default: $DSPARK_STORE, else ./.dspark)\n"

#define RETRY_HELP                                                                    \
    "A failed task is retried up to the spec's max_attempts (default 4), and an\n"      \
    "attempt whose worker died (a crash, kill -9, the OOM killer) counts as failed.\n"  \
    "An error that a retry cannot fix fails the job at once: an invalid step (an\n"    \
    "exec step on a worker without --allow-exec), an input that changed after\n"      \
    "submit, corrupt input (a truncated zstd or gzip stream, broken WARC framing),\n" \
    "a feature the build or store lacks, or a permanent store error (AccessDenied).\n"

/* How long run waits for its workers to exit after it sent them SIGTERM,
 * before it sends SIGKILL: below the 30 s that Kubernetes waits by default
 * between its own SIGTERM and SIGKILL. */
#define RUN_STOP_GRACE_MS 20000

static volatile sig_atomic_t g_interrupted;
static volatile sig_atomic_t g_terminated;

static void on_interrupt(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static void on_terminate(int sig)
{
    (void)sig;
    g_terminated = 1;
}

static void on_worker_signal(int sig)
{
    (void)sig;
    dsp_worker_stop();
}

static void install_handler(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* --store, else $DSPARK_STORE, else ./.dspark made absolute. Commands that
 * write jobs create it when missing, so `run` needs no setup. An empty
 * --store is passed on, so that opening it fails instead of silently
 * using another store. Caller frees. */
static char *store_uri_for(const char *opt, int create)
{
    const char *env = dsp_cli_default_store();
    char cwd[4096];

    if (opt)
        return dsp_xstrdup(opt);
    if (env)
        return dsp_xstrdup(env);
    if (!getcwd(cwd, sizeof cwd))
        return dsp_xstrdup(".dspark");
    char *dir = dsp_xasprintf("%s/.dspark", cwd);
    if (create && mkdir(dir, 0777) != 0 && errno != EEXIST)
        fprintf(stderr, "dspark: cannot create the local store %s: %s\n", dir, strerror(errno));
    return dir;
}

static char *store_uri(const char *opt) { return store_uri_for(opt, 0); }
static char *store_uri_create(const char *opt) { return store_uri_for(opt, 1); }

static int exit_for_status(dsp_status st)
{
    switch (st) {
    case DSP_OK: return DSP_EXIT_OK;
    case DSP_ENOTFOUND: return DSP_EXIT_NOTFOUND;
    case DSP_EINVAL: return DSP_EXIT_USAGE;
    case DSP_ECANCELLED: return DSP_EXIT_CANCELLED;
    default: return DSP_EXIT_FAILED;
    }
}

static int exit_for_state(dsp_job_state st)
{
    switch (st) {
    case DSP_JOB_DONE: return DSP_EXIT_OK;
    case DSP_JOB_CANCELLED: return DSP_EXIT_CANCELLED;
    default: return DSP_EXIT_FAILED;
    }
}

/* Print an error with its control characters escaped, because it may name
 * input files or an output URI (see dsp_escape_control). */
static int fail(const char *what, const dsp_err *err)
{
    char *msg = dsp_escape_control(err->msg, 0);
    fprintf(stderr, "dspark: %s: %s\n", what, msg);
    free(msg);
    return exit_for_status(err->code);
}

static dsp_status open_checked_store(const char *uri, dsp_store **out, int probe, dsp_err *err)
{
    dsp_status st = dsp_store_open(uri, NULL, out, err);
    if (st == DSP_OK && probe) {
        st = dsp_proto_probe_conditional(*out, err);
        if (st != DSP_OK) {
            dsp_store_close(*out);
            *out = NULL;
        }
    }
    return st;
}

static dsp_status load_spec(const char *path, dsp_spec **out, dsp_err *err)
{
    dsp_buf text = DSP_BUF_INIT;
    dsp_status st = dsp_read_file(path, &text, err);

    if (st == DSP_OK)
        st = dsp_spec_parse(text.data, text.len, path, out, err);
    if (st == DSP_ENOTFOUND || st == DSP_EIO)
        err->code = DSP_EINVAL;
    dsp_buf_free(&text);
    return st;
}

/* ---- submit ---- */

/* Check a job id given on the command line, before any store is opened.
 * Print an error naming the command and the option (or JOB) and return
 * nonzero when it is invalid. A value that starts with '-' can be the next
 * option, read as the value of an option whose own value is missing. */
static int check_job_id_arg(const char *command, const char *option, const char *id)
{
    dsp_err err;
    if (dsp_proto_check_job_id(id, &err) == DSP_OK)
        return 0;
    fprintf(stderr, "dspark %s: %s: %s", command, option, err.msg);
    if (id[0] == '-')
        fprintf(stderr, " (is the job id after %s missing?)", option);
    fputc('\n', stderr);
    return 1;
}

static const char submit_help[] =
    "usage: dspark submit JOB.json [--store URI] [--job-id ID]\n\n"
    "Plan a job and publish it to the store for workers to run; print the job id\n"
    "and return at once.\n\n" STORE_HELP
    "  --job-id ID      job id (default: <name>-<first 12 hex digits of the spec's\n"
    "                   SHA-256>, so submitting the same spec again, e.g. from a\n"
    "                   retried CI step, names the same job and does nothing)\n\n"
    "The same spec under the same id is a no-op, also when that job failed: submit\n"
    "with a new --job-id to run it again. A different spec under an existing id is\n"
    "rejected, and so is a job whose output belongs to an unfinished job or\n"
    "contains objects that DSpark did not write.\n"
    EXIT_CODES_HELP;

int dsp_cmd_submit(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, NULL, 's'},
                                         {"job-id", required_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *store_opt = NULL, *id_opt = NULL;
    dsp_spec *spec = NULL;
    dsp_store *store = NULL;
    char *uri = NULL, *id = NULL;
    dsp_err err;
    int c, rc, created = 0;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'j': id_opt = optarg; break;
        case 'h': fputs(submit_help, stdout); return DSP_EXIT_OK;
        default: fputs(submit_help, stderr); return DSP_EXIT_USAGE;
        }
    }
    if (id_opt && check_job_id_arg("submit", "--job-id", id_opt))
        return DSP_EXIT_USAGE;
    if (optind != argc - 1) {
        fputs(submit_help, stderr);
        return DSP_EXIT_USAGE;
    }
    if (load_spec(argv[optind], &spec, &err) != DSP_OK)
        return fail("invalid job spec", &err);
    uri = store_uri_create(store_opt);
    id = id_opt ? dsp_xstrdup(id_opt) : dsp_job_default_id(spec);
    if (open_checked_store(uri, &store, 1, &err) != DSP_OK) {
        rc = fail("cannot use the job store", &err);
        goto out;
    }
    if (dsp_job_submit(store, spec, id, &created, &err) != DSP_OK) {
        rc = fail("submit failed", &err);
        goto out;
    }
    if (!created) {
        /* A finished job never runs again under its id, so print how to
         * rerun a failed or cancelled one. */
        dsp_job_state state = DSP_JOB_RUNNING;
        dsp_err serr;
        if (dsp_job_read_state(store, id, &state, NULL, &serr) == DSP_OK &&
            (state == DSP_JOB_FAILED || state == DSP_JOB_CANCELLED))
            fprintf(stderr, "dspark: job %s already exists with this spec and is %s; nothing "
                            "to do. To run the spec again, submit it with a new --job-id\n",
                    id, dsp_job_state_name(state));
        else
            fprintf(stderr, "dspark: job %s already exists with this spec; nothing to do\n", id);
    }
    printf("%s\n", id);
    rc = DSP_EXIT_OK;
out:
    if (store)
        dsp_store_close(store);
    dsp_spec_free(spec);
    free(id);
    free(uri);
    return rc;
}

/* ---- worker ---- */

static const char worker_help[] =
    "usage: dspark worker [--store URI] [--slots N] [--idle-exit SECONDS] [--allow-exec]\n"
    "                     [--job ID [--exit-when-finished]]\n\n"
    "Run tasks of every active job in the store until stopped. SIGTERM or SIGINT\n"
    "abandons the running tasks (their files are deleted and their leases\n"
    "released, so other workers run them at once) and exits. The commands of\n"
    "their exec steps get SIGTERM, then SIGKILL 2 s later. When a worker dies\n"
    "(a crash, SIGKILL), the kernel sends SIGKILL to its running exec commands,\n"
    "but not to the processes that a command started: those run on until they\n"
    "exit by themselves.\n\n" STORE_HELP
    "  --slots N        tasks run at once (default 1)\n"
    "  --idle-exit S    exit after S seconds without work (default: never)\n"
    "  --allow-exec     allow pipeline steps that run external programs; without\n"
    "                   it, a claimed task with an exec step fails its job, so run\n"
    "                   such workers with --job next to jobs with exec steps\n"
    "  --job ID         run only this job\n"
    "  --exit-when-finished  with --job: exit once the job is done, failed or\n"
    "                   cancelled\n\n" RETRY_HELP "\n"
    "exit codes: 0 stopped normally, 1 the store is unusable, 2 invalid command line\n";

int dsp_cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, NULL, 's'},
                                         {"slots", required_argument, NULL, 'n'},
                                         {"idle-exit", required_argument, NULL, 'i'},
                                         {"allow-exec", no_argument, NULL, 'x'},
                                         {"job", required_argument, NULL, 'j'},
                                         {"exit-when-finished", no_argument, NULL, 'e'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    dsp_worker_config cfg = {0};
    const char *store_opt = NULL;
    char *uri;
    dsp_err err;
    long long value;
    int c, rc;

    cfg.slots = 1;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'n':
            if (dsp_cli_parse_int("worker", "--slots", optarg, 1, 256, &value) != 0)
                return DSP_EXIT_USAGE;
            cfg.slots = (int)value;
            break;
        case 'i':
            if (dsp_cli_parse_int("worker", "--idle-exit", optarg, 0, INT_MAX, &value) != 0)
                return DSP_EXIT_USAGE;
            cfg.idle_exit_seconds = (int)value;
            break;
        case 'x': cfg.allow_exec = 1; break;
        case 'j': cfg.job = optarg; break;
        case 'e': cfg.exit_when_finished = 1; break;
        case 'h': fputs(worker_help, stdout); return DSP_EXIT_OK;
        default: fputs(worker_help, stderr); return DSP_EXIT_USAGE;
        }
    }
    if (cfg.job && check_job_id_arg("worker", "--job", cfg.job))
        return DSP_EXIT_USAGE;
    if (optind != argc) {
        fprintf(stderr, "dspark worker: unexpected argument '%s'\n", argv[optind]);
        return DSP_EXIT_USAGE;
    }
    install_handler(SIGTERM, on_worker_signal);
    install_handler(SIGINT, on_worker_signal);
    /* A closed log pipe (`dspark worker 2>&1 | head`) must not kill a
     * worker in the middle of a task: log writes then fail and are dropped. */
    signal(SIGPIPE, SIG_IGN);
    uri = store_uri_create(store_opt);
    cfg.store_uri = uri;
    rc = dsp_worker_run(&cfg, &err) == DSP_OK ? DSP_EXIT_OK : fail("worker failed", &err);
    free(uri);
    return rc == DSP_EXIT_NOTFOUND ? DSP_EXIT_FAILED : rc;
}

/* ---- run ---- */

static const char run_help[] =
    "usage: dspark run JOB.json [--store URI] [--workers N] [--job-id ID] [--allow-exec]\n\n"
    "Plan a job, publish it and run it with N local worker processes; show\n"
    "progress and print a summary. With no --store and no $DSPARK_STORE it uses\n"
    "./.dspark as a local store and needs no server.\n\n" STORE_HELP
    "  --workers N      worker processes (default: the number of online CPUs)\n"
    "  --job-id ID      job id (default: <name>-<spec hash>-<UTC time>-<4 random hex\n"
    "                   digits>, with the name cut to 29 characters, a new job per\n"
    "                   run; pass the id of an unfinished job to resume it)\n"
    "  --allow-exec     allow pipeline steps that run external programs\n\n"
    "Ctrl-C (SIGINT) cancels the job. SIGTERM, which workflow orchestrators and CI\n"
    "timeouts send, stops the job for a later resume: run stops its workers (they\n"
    "abandon their running tasks and release them), leaves the job unfinished,\n"
    "prints the command that resumes it and exits 143. When run is killed with\n"
    "SIGKILL, its workers finish the job and then exit. A closed output pipe\n"
    "(run ... | head) does not stop the job.\n\n"
    "A worker that dies (a crash, kill -9, the OOM killer) is logged as\n"
    "worker_died, with its pid and exit status or signal, and replaced. After\n"
    "--workers plus max_attempts replacements with no task committed in between,\n"
    "run stops its workers, leaves the job unfinished, prints the command that\n"
    "resumes it and exits 1.\n\n"
    "A job that read records but rejected every one of them (a wrong text_field\n"
    "or format, binary input) fails once its last stage is sealed and before\n"
    "anything is published: status --json shows final.message with the top\n"
    "reject reasons and counts, and final.reject_reasons. A job that rejected\n"
    "only some records succeeds.\n\n"
    RETRY_HELP "\n" EXIT_CODES_HELP
    "and for run: 143 stopped by SIGTERM (the job is unfinished and can be resumed)\n";

/* Build run's default job id: <name>-<spec hash>-<UTC time>-<4 random hex
 * digits>. A long name is cut to the first RUN_ID_NAME_MAX characters so
 * that the id stays within the 64 characters of a job id. The spec hash,
 * time and random digits still make it unique. */
static char *run_default_id(const dsp_spec *spec)
{
    /* 64 minus "-" and 12 hex digits of the hash, "-" and the 16 characters
     * of the time, "-" and 4 hex digits. */
    enum { RUN_ID_NAME_MAX = 64 - 13 - 17 - 5 };
    char *base = dsp_job_default_id(spec);
    size_t hash_at = strlen(base) - 13;
    size_t name_len = hash_at < RUN_ID_NAME_MAX ? hash_at : RUN_ID_NAME_MAX;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char *id = dsp_xasprintf("%.*s%s-%s-%04llx", (int)name_len, base, base + hash_at, stamp,
                             (unsigned long long)(dsp_rand64() & 0xffff));
    free(base);
    return id;
}

/* Print a message that may span lines, such as the stderr of an exec step.
 * Every line after the first is indented by two spaces, so no line of it
 * looks like a log line ("ts=..." or "{...") on the shared stderr. Other
 * control characters are escaped. */
static void print_indented(const char *message)
{
    char *escaped = dsp_escape_control(message, 1);
    for (const char *p = escaped; *p; p++) {
        fputc(*p, stderr);
        if (*p == '\n')
            fputs("  ", stderr);
    }
    free(escaped);
}

/* Print the job's final error (from state.json) for a failed run. */
static void print_failure(dsp_store *store, const char *id)
{
    dsp_job_state st;
    cJSON *state = NULL;
    dsp_err err;

    if (dsp_job_read_state(store, id, &st, &state, &err) == DSP_OK && state) {
        const cJSON *task = cJSON_GetObjectItemCaseSensitive(state, "task");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(state, "message");
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(state, "attempt");
        if (cJSON_IsString(task) && cJSON_IsString(msg)) {
            char *task_text = dsp_escape_control(task->valuestring, 0);
            char *attempt_text = dsp_escape_control(cJSON_IsString(att) ? att->valuestring : "?", 0);
            fprintf(stderr, "dspark: job %s failed: task %s attempt %s: ", id, task_text,
                    attempt_text);
            free(task_text);
            free(attempt_text);
            print_indented(msg->valuestring);
            fputc('\n', stderr);
        } else if (cJSON_IsString(msg)) {
            fprintf(stderr, "dspark: job %s failed: ", id);
            print_indented(msg->valuestring);
            fputc('\n', stderr);
        }
    }
    cJSON_Delete(state);
}

/* Append word to b, in single quotes when the shell would split or expand it. */
static void append_shell_word(dsp_buf *b, const char *word)
{
    if (word[0] && strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                "0123456789_./:=@%+-,") == strlen(word)) {
        dsp_buf_append(b, word, strlen(word));
        return;
    }
    dsp_buf_append_char(b, '\'');
    for (const char *p = word; *p; p++) {
        if (*p == '\'')
            dsp_buf_append(b, "'\\''", 4);
        else
            dsp_buf_append_char(b, *p);
    }
    dsp_buf_append_char(b, '\'');
}

/* Print the command that resumes an unfinished job: run again with its id,
 * the spec's absolute path and the same --allow-exec. */
static void print_resume_command(dsp_store *store, const dsp_job *job, const char *spec_path,
                                 int allow_exec)
{
    char *abs = realpath(spec_path, NULL);
    dsp_buf cmd = DSP_BUF_INIT;

    dsp_buf_append(&cmd, "dspark run ", strlen("dspark run "));
    append_shell_word(&cmd, abs ? abs : spec_path);
    dsp_buf_append(&cmd, " --store ", strlen(" --store "));
    append_shell_word(&cmd, dsp_store_uri(store));
    dsp_buf_append(&cmd, " --job-id ", strlen(" --job-id "));
    append_shell_word(&cmd, job->id);
    if (allow_exec)
        dsp_buf_append(&cmd, " --allow-exec", strlen(" --allow-exec"));
    fprintf(stderr, "dspark: job %s is unfinished; resume it with: %s\n", job->id, cmd.data);
    dsp_buf_free(&cmd);
    free(abs);
}

/* Sum of the committed tasks over all stages. */
static size_t committed_tasks(const dsp_job *job, const dsp_stage_progress *stages)
{
    size_t n = 0;
    for (size_t i = 0; i < job->plan->nstages; i++)
        n += stages[i].committed;
    return n;
}

/* Count the tasks of a resumed job that earlier runs committed. When the
 * store cannot tell, count all of them, so the summary shows no rate
 * rather than a wrong one. */
static size_t tasks_done_before(dsp_store *store, const dsp_job *job)
{
    dsp_stage_progress *stages = dsp_xcalloc(job->plan->nstages, sizeof *stages);
    size_t n = job->plan->total_tasks;
    dsp_err err;

    if (dsp_job_progress(store, job, stages, &err) == DSP_OK)
        n = committed_tasks(job, stages);
    else
        DSP_WARN("progress_read_failed", "job=%s message=\"%s\"", job->id, err.msg);
    free(stages);
    return n;
}

/* Show progress and replace dead workers until the job is final, then
 * print its summary or error. plan_seconds is the time run took before the
 * workers started, and done_before the tasks committed before that. */
static int supervise(dsp_store *store, dsp_job *job, const char *spec_path, dsp_run_pool *pool,
                     double plan_seconds, size_t done_before)
{
    dsp_progress prog;
    dsp_stage_progress *stages = dsp_xcalloc(job->plan->nstages, sizeof *stages);
    dsp_job_state state = DSP_JOB_RUNNING;
    dsp_err err;
    int64_t start = dsp_mono_ms();
    int rc;

    dsp_progress_init(&prog, isatty(STDERR_FILENO));
    while (state == DSP_JOB_RUNNING) {
        if (g_terminated) {
            dsp_progress_end(&prog);
            fprintf(stderr, "dspark: SIGTERM received; stopping the workers of job %s and "
                            "leaving the job unfinished\n", job->id);
            dsp_run_pool_stop(pool, RUN_STOP_GRACE_MS);
            /* The job may have ended since the last look, as when the
             * signal came right after publishing: then end as usual. */
            if (dsp_job_read_state(store, job->id, &state, NULL, &err) != DSP_OK)
                DSP_WARN("state_read_failed", "job=%s message=\"%s\"", job->id, err.msg);
            if (state != DSP_JOB_RUNNING)
                break;
            print_resume_command(store, job, spec_path, pool->allow_exec);
            free(stages);
            return DSP_EXIT_TERMINATED;
        }
        if (g_interrupted) {
            dsp_progress_end(&prog);
            fprintf(stderr, "dspark: interrupted; cancelling job %s\n", job->id);
            dsp_job_finish(store, job->id, DSP_JOB_CANCELLED, NULL, &state, &err);
            break;
        }
        if (dsp_job_progress(store, job, stages, &err) == DSP_OK) {
            dsp_progress_show(&prog, job, stages);
            dsp_run_pool_progress(pool, committed_tasks(job, stages));
        }
        int alive = dsp_run_pool_reap(pool);
        if (dsp_job_read_state(store, job->id, &state, NULL, &err) != DSP_OK)
            DSP_WARN("state_read_failed", "job=%s message=\"%s\"", job->id, err.msg);
        if (state == DSP_JOB_RUNNING && !g_interrupted && !g_terminated) {
            if (dsp_run_pool_replace(pool, &err) != DSP_OK) {
                dsp_progress_end(&prog);
                fprintf(stderr, "dspark: stopping the workers of job %s: %s\n", job->id,
                        err.msg);
                dsp_run_pool_stop(pool, RUN_STOP_GRACE_MS);
                print_resume_command(store, job, spec_path, pool->allow_exec);
                free(stages);
                return DSP_EXIT_FAILED;
            }
            alive = dsp_run_pool_reap(pool);
        }
        /* A SIGTERM to the whole process group also stops the workers: the
         * next round reports it as a SIGTERM to run. */
        if (state == DSP_JOB_RUNNING && alive == 0 && !g_interrupted && !g_terminated) {
            dsp_progress_end(&prog);
            fprintf(stderr, "dspark: all %d workers exited before job %s finished\n", pool->n,
                    job->id);
            print_resume_command(store, job, spec_path, pool->allow_exec);
            free(stages);
            return DSP_EXIT_FAILED;
        }
        dsp_sleep_ms(state == DSP_JOB_RUNNING ? 500 : 0);
    }
    if (dsp_job_progress(store, job, stages, &err) == DSP_OK && state == DSP_JOB_DONE)
        dsp_progress_show(&prog, job, stages);
    dsp_progress_end(&prog);

    double seconds = (double)(dsp_mono_ms() - start) / 1000.0;
    cJSON *status = NULL;
    if (state == DSP_JOB_DONE && dsp_job_status_json(store, job->id, &status, &err) == DSP_OK)
        dsp_progress_summary(stdout, job, status, plan_seconds, seconds,
                             done_before);
    else if (state == DSP_JOB_FAILED)
        print_failure(store, job->id);
    else if (state == DSP_JOB_CANCELLED)
        fprintf(stderr, "dspark: job %s was cancelled\n", job->id);
    cJSON_Delete(status);
    fflush(stdout);

    /* Workers of this job exit by themselves once it is final. */
    int signalled = 0;
    for (int waited = 0; dsp_run_pool_reap(pool) > 0; waited += 100) {
        if (!signalled && (waited >= 30000 || state == DSP_JOB_CANCELLED || g_terminated)) {
            dsp_run_pool_signal(pool, SIGTERM);
            signalled = 1;
        }
        dsp_sleep_ms(100);
    }

    rc = exit_for_state(state);
    free(stages);
    return rc;
}

int dsp_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, NULL, 's'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"job-id", required_argument, NULL, 'j'},
                                         {"allow-exec", no_argument, NULL, 'x'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *store_opt = NULL, *id_opt = NULL;
    long long nworkers = sysconf(_SC_NPROCESSORS_ONLN);
    if (nworkers < 1)
        nworkers = 1;
    if (nworkers > 1024)
        nworkers = 1024;
    int allow_exec = 0, c, rc, created;
    dsp_spec *spec = NULL;
    dsp_store *store = NULL;
    dsp_job *job = NULL;
    dsp_run_pool pool = {0};
    char *uri = NULL, *id = NULL;
    dsp_err err;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'w':
            if (dsp_cli_parse_int("run", "--workers", optarg, 1, 1024, &nworkers) != 0)
                return DSP_EXIT_USAGE;
            break;
        case 'j': id_opt = optarg; break;
        case 'x': allow_exec = 1; break;
        case 'h': fputs(run_help, stdout); return DSP_EXIT_OK;
        default: fputs(run_help, stderr); return DSP_EXIT_USAGE;
        }
    }
    if (id_opt && check_job_id_arg("run", "--job-id", id_opt))
        return DSP_EXIT_USAGE;
    if (optind != argc - 1) {
        fprintf(stderr, "dspark run: expected one JOB.json\n");
        return DSP_EXIT_USAGE;
    }
    /* `dspark run ... | head -1` closes the pipe after one line. Dying of
     * SIGPIPE then would leave the job unfinished and owning its output, so
     * run ignores the signal, loses the rest of its output and keeps
     * supervising. Its workers inherit the setting through exec. */
    signal(SIGPIPE, SIG_IGN);
    /* Installed before submission: a signal that kills run between
     * spec.json and plan.json would leave a job that claims its output and
     * never gets a plan. A signal during submission takes effect after it. */
    install_handler(SIGINT, on_interrupt);
    install_handler(SIGTERM, on_terminate);
    int64_t plan_start = dsp_mono_ms();
    if (load_spec(argv[optind], &spec, &err) != DSP_OK)
        return fail("invalid job spec", &err);
    uri = store_uri_create(store_opt);
    id = id_opt ? dsp_xstrdup(id_opt) : run_default_id(spec);

    /* On a terminal the bar replaces the info lines, also the workers'. */
    if (isatty(STDERR_FILENO) && !getenv("DSPARK_LOG_LEVEL")) {
        setenv("DSPARK_LOG_LEVEL", "warn", 1);
        dsp_log_set_level(DSP_LOG_WARN);
    }
    if (open_checked_store(uri, &store, 1, &err) != DSP_OK) {
        rc = fail("cannot use the job store", &err);
        goto out;
    }
    if (dsp_job_submit(store, spec, id, &created, &err) != DSP_OK) {
        rc = fail("submit failed", &err);
        goto out;
    }
    if (dsp_job_load(store, id, &job, &err) != DSP_OK) {
        rc = fail("cannot read the submitted job", &err);
        goto out;
    }
    fprintf(stderr, "dspark: job %s: %zu task%s in %zu stage%s, %d worker%s, store %s\n", id,
            job->plan->total_tasks, job->plan->total_tasks == 1 ? "" : "s", job->plan->nstages,
            job->plan->nstages == 1 ? "" : "s", (int)nworkers, nworkers == 1 ? "" : "s",
            dsp_store_uri(store));

    if (g_terminated) {
        fprintf(stderr, "dspark: SIGTERM received during submission; leaving job %s "
                        "unfinished\n", id);
        print_resume_command(store, job, argv[optind], allow_exec);
        rc = DSP_EXIT_TERMINATED;
        goto out;
    }
    if (g_interrupted) {
        dsp_job_state state = DSP_JOB_RUNNING;
        fprintf(stderr, "dspark: interrupted; cancelling job %s\n", id);
        if (dsp_job_finish(store, id, DSP_JOB_CANCELLED, NULL, &state, &err) != DSP_OK) {
            rc = fail("cancel failed", &err);
            goto out;
        }
        fprintf(stderr, "dspark: job %s was %s\n", id, dsp_job_state_name(state));
        rc = exit_for_state(state);
        goto out;
    }
    size_t done_before = 0;
    if (!created)
        done_before = tasks_done_before(store, job);
    int max_attempts = job->spec->max_attempts > 0 ? job->spec->max_attempts : 4;
    dsp_run_pool_start(&pool, uri, id, (int)nworkers, allow_exec, (int)nworkers + max_attempts);
    double plan_seconds = (double)(dsp_mono_ms() - plan_start) / 1000.0;
    rc = supervise(store, job, argv[optind], &pool, plan_seconds, done_before);
    /* A job left unfinished may resume and use its input cache entries. */
    if (rc != DSP_EXIT_TERMINATED) {
        char *prefix = dsp_input_cache_job_prefix(id);
        dsp_input_cache_remove_prefix(prefix);
        free(prefix);
    }
out:
    dsp_run_pool_free(&pool);
    dsp_job_free(job);
    if (store)
        dsp_store_close(store);
    dsp_spec_free(spec);
    free(id);
    free(uri);
    return rc;
}

/* ---- status, wait, cancel, gc ---- */

static int parse_job_command(int argc, char **argv, const char *help, const char **store_opt,
                             int *json, double *timeout)
{
    static const struct option opts[] = {{"store", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': *store_opt = optarg; break;
        case 'J':
            if (!json)
                goto usage;
            *json = 1;
            break;
        case 't': {
            char *end;
            if (!timeout)
                goto usage;
            *timeout = strtod(optarg, &end);
            /* The upper bound keeps the timeout in milliseconds within int64_t. */
            if (end == optarg || *end || !(*timeout >= 0 && *timeout <= 1e9)) {
                fprintf(stderr, "dspark: invalid --timeout '%s': expected seconds from 0 to "
                                "1000000000\n", optarg);
                return -DSP_EXIT_USAGE;
            }
            break;
        }
        case 'h': fputs(help, stdout); return -DSP_EXIT_OK - 100;
        default: goto usage;
        }
    }
    if (optind != argc - 1)
        goto usage;
    if (check_job_id_arg(argv[0], "JOB", argv[optind]))
        return -DSP_EXIT_USAGE;
    return optind;
usage:
    fputs(help, stderr);
    return -DSP_EXIT_USAGE;
}

static int job_command_exit(int r) { return r == -100 ? DSP_EXIT_OK : -r; }

static const char status_help[] =
    "usage: dspark status JOB [--store URI] [--json]\n\n"
    "Show a job's stages, tasks done/running/failed, counters and errors.\n"
    "`dspark jobs` lists the jobs of a store with their ids.\n\n" STORE_HELP
    "  --json           print the status document (schema_version 1): job, state,\n"
    "                   output, spec_hash, stages[] (id, kind, tasks, committed,\n"
    "                   running, failed_attempts, failed_tasks, sealed, bytes,\n"
    "                   bytes_committed), counters (records_in, records_out,\n"
    "                   records_rejected, records_utf8_repaired, bytes_in,\n"
    "                   bytes_out, cpu_seconds, requests, coord_requests,\n"
    "                   retries, operators[]), errors[]\n"
    "                   (stage, task, attempt, attempt_number, worker, code,\n"
    "                   message, time_ms) and final (state.json or null)\n"
    "exit codes: 0 the status was printed, whatever the job's state (a failed\n"
    "or cancelled job too: read its state, or use `dspark wait` for an exit code\n"
    "that says how the job ended), 1 the command failed, 2 invalid command line,\n"
    "5 no such job\n";

/* Return member `name` of `o` as a number, or 0 when it is missing or not a
 * number, so a partial document never crashes the printer. */
static double status_number(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Return string member `name` of `o`, or "?" when it is missing. */
static const char *status_string(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

/* Print a string of the status document with its control characters
 * escaped, because it may contain file names and URIs from the spec. */
static void print_escaped(const char *s)
{
    char *escaped = dsp_escape_control(s, 0);
    fputs(escaped, stdout);
    free(escaped);
}

static void print_status_text(const cJSON *doc)
{
    const cJSON *s, *e;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "counters");
    const cJSON *final = cJSON_GetObjectItemCaseSensitive(doc, "final");

    printf("job %s: %s\n", status_string(doc, "job"), status_string(doc, "state"));
    fputs("output: ", stdout);
    print_escaped(status_string(doc, "output"));
    fputc('\n', stdout);
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(doc, "stages")) {
        printf("stage %s (%s): %.0f/%.0f tasks committed, %.0f running, %.0f failed attempts%s\n",
               status_string(s, "id"), status_string(s, "kind"), status_number(s, "committed"),
               status_number(s, "tasks"), status_number(s, "running"),
               status_number(s, "failed_attempts"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "sealed")) ? ", sealed" : "");
    }
    printf("documents in %.0f, out %.0f, rejected %.0f; bytes in %.0f, out %.0f\n",
           status_number(c, "records_in"), status_number(c, "records_out"),
           status_number(c, "records_rejected"), status_number(c, "bytes_in"),
           status_number(c, "bytes_out"));
    if (status_number(c, "records_utf8_repaired") > 0)
        printf("documents with invalid UTF-8 replaced by U+FFFD: %.0f\n",
               status_number(c, "records_utf8_repaired"));
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "errors")) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "stage");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "task");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "attempt");
        char when[40] = "";
        if (status_number(e, "time_ms") > 0)
            dsp_format_utc_ms((int64_t)status_number(e, "time_ms"), when, sizeof when);
        fputs("error ", stdout);
        print_escaped(cJSON_IsString(st) ? st->valuestring : "?");
        fputc('/', stdout);
        print_escaped(cJSON_IsString(t) ? t->valuestring : "?");
        fputs(" attempt ", stdout);
        print_escaped(cJSON_IsString(a) ? a->valuestring : "?");
        printf("%s%s: ", when[0] ? " at " : "", when);
        print_escaped(cJSON_IsString(m) ? m->valuestring : "");
        fputc('\n', stdout);
    }
    if (cJSON_IsObject(final)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(final, "message");
        if (cJSON_IsString(m)) {
            fputs("final error: ", stdout);
            print_escaped(m->valuestring);
            fputc('\n', stdout);
        }
    }
}

int dsp_cmd_status(int argc, char **argv)
{
    const char *store_opt = NULL;
    int json = 0;
    int r = parse_job_command(argc, argv, status_help, &store_opt, &json, NULL);
    dsp_store *store = NULL;
    cJSON *doc = NULL;
    dsp_err err;
    int rc;

    if (r < 0)
        return job_command_exit(r);
    char *uri = store_uri(store_opt);
    if (open_checked_store(uri, &store, 0, &err) != DSP_OK ||
        dsp_job_status_json(store, argv[r], &doc, &err) != DSP_OK) {
        rc = fail("status failed", &err);
        goto out;
    }
    if (json) {
        char *text = cJSON_Print(doc);
        printf("%s\n", text);
        free(text);
    } else {
        print_status_text(doc);
    }
    rc = DSP_EXIT_OK;
out:
    cJSON_Delete(doc);
    if (store)
        dsp_store_close(store);
    free(uri);
    return rc;
}

/* ---- jobs ---- */

static const char jobs_help[] =
    "usage: dspark jobs [--store URI] [--json] [--state running|done|failed|cancelled]\n\n"
    "List the jobs in a store, newest submission first, one line each: id, state,\n"
    "submit time, finish time, records out and output URI. Times are ISO-8601 UTC.\n"
    "The submit time is when spec.json was written (whole seconds on S3). A job is\n"
    "running until it has a final state, also when no worker has started it.\n"
    "Records out is known for done jobs only, because state.json records it when\n"
    "the output is published.\n\n" STORE_HELP
    "  --json           print one document (schema_version 1): store, state_filter,\n"
    "                   jobs[] (job, state, submitted, submitted_ms, output,\n"
    "                   finished, finished_ms, records_out, message); unknown\n"
    "                   values are null\n"
    "  --state STATE    list only the jobs in STATE: running, done, failed or\n"
    "                   cancelled\n\n"
    "Cost: one LIST request per 1,000 jobs, one GET of state.json per job, and one\n"
    "GET of spec.json per job listed, 8 at a time. No plan, commit or lease is read,\n"
    "so the cost does not grow with the tasks of a job: 10,000 jobs take 10 LISTs\n"
    "and at most 20,000 GETs.\n"
    "exit codes: 0 the list was printed (also an empty one), 1 the command failed,\n"
    "2 invalid command line, 5 the store does not exist\n";

static void print_jobs_text(const dsp_job_list *list)
{
    int width = 3;
    char submitted[40], finished[40], records[32];

    for (size_t i = 0; i < list->n; i++) {
        int len = (int)strlen(list->items[i].id);
        if (len > width)
            width = len;
    }
    printf("%-*s  %-9s  %-24s  %-24s  %11s  %s\n", width, "JOB", "STATE", "SUBMITTED",
           "FINISHED", "RECORDS_OUT", "OUTPUT");
    for (size_t i = 0; i < list->n; i++) {
        const dsp_job_entry *e = &list->items[i];
        snprintf(submitted, sizeof submitted, "-");
        snprintf(finished, sizeof finished, "-");
        snprintf(records, sizeof records, "-");
        if (e->submitted_ms > 0)
            dsp_format_utc_ms(e->submitted_ms, submitted, sizeof submitted);
        if (e->state != DSP_JOB_RUNNING && e->finished_ms > 0)
            dsp_format_utc_ms(e->finished_ms, finished, sizeof finished);
        if (e->records_out >= 0)
            snprintf(records, sizeof records, "%lld", (long long)e->records_out);
        printf("%-*s  %-9s  %-24s  %-24s  %11s  ", width, e->id, dsp_job_state_name(e->state),
               submitted, finished, records);
        print_escaped(e->output ? e->output : "-");
        fputc('\n', stdout);
    }
}

int dsp_cmd_jobs(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"state", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *store_opt = NULL;
    int json = 0, only_state = -1, c, rc;
    dsp_job_state state;
    dsp_job_list list = {0};
    dsp_store *store = NULL;
    dsp_err err;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'J': json = 1; break;
        case 'S':
            if (dsp_job_state_from_name(optarg, &state) != 0) {
                fprintf(stderr, "dspark jobs: invalid --state '%s': expected running, done, "
                                "failed or cancelled\n", optarg);
                return DSP_EXIT_USAGE;
            }
            only_state = (int)state;
            break;
        case 'h': fputs(jobs_help, stdout); return DSP_EXIT_OK;
        default: fputs(jobs_help, stderr); return DSP_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "dspark jobs: unexpected argument '%s'; it takes no job id (use "
                        "'dspark status JOB' for one job)\n", argv[optind]);
        return DSP_EXIT_USAGE;
    }
    char *uri = store_uri(store_opt);
    if (open_checked_store(uri, &store, 0, &err) != DSP_OK ||
        dsp_job_list_read(store, only_state, &list, &err) != DSP_OK) {
        rc = fail("jobs failed", &err);
        if (rc == DSP_EXIT_NOTFOUND && !store_opt && !dsp_cli_default_store())
            fprintf(stderr, "dspark jobs: with no --store and no $DSPARK_STORE it reads "
                            "./.dspark; pass --store URI to list another store\n");
        goto out;
    }
    if (json) {
        cJSON *doc = dsp_job_list_json(store, only_state, &list);
        char *text = cJSON_Print(doc);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(doc);
    } else if (list.n == 0) {
        fprintf(stderr, "dspark: no %s%sjobs in %s\n",
                only_state >= 0 ? dsp_job_state_name(only_state) : "",
                only_state >= 0 ? " " : "", dsp_store_uri(store));
    } else {
        print_jobs_text(&list);
    }
    rc = DSP_EXIT_OK;
out:
    dsp_job_list_free(&list);
    if (store)
        dsp_store_close(store);
    free(uri);
    return rc;
}

/* Open the job store at uri and check that job `id` exists there (its
 * spec.json). On failure *out may hold an open store for the caller to
 * close. */
static dsp_status open_job_store(const char *uri, const char *id, int probe, dsp_store **out,
                                 dsp_err *err)
{
    char *spec_key = dsp_proto_job_key(id, "spec.json");
    dsp_obj_info info;
    dsp_status st = open_checked_store(uri, out, probe, err);

    if (st == DSP_OK) {
        st = dsp_store_head(*out, spec_key, &info, err);
        if (st == DSP_ENOTFOUND)
            dsp_err_set(err, DSP_ENOTFOUND, "job %s not found in %s", id,
                        dsp_store_uri(*out));
    }
    free(spec_key);
    return st;
}

static const char wait_help[] =
    "usage: dspark wait JOB [--store URI] [--timeout SECONDS]\n\n"
    "Wait until a job is done, failed or cancelled; the exit code says which.\n\n" STORE_HELP
    "  --timeout S      give up after S seconds with exit code 4 (default: no limit)\n"
    EXIT_CODES_HELP;

int dsp_cmd_wait(int argc, char **argv)
{
    const char *store_opt = NULL;
    double timeout = -1;
    int r = parse_job_command(argc, argv, wait_help, &store_opt, NULL, &timeout);
    dsp_store *store = NULL;
    dsp_job_state state = DSP_JOB_RUNNING;
    dsp_err err;
    int rc = DSP_EXIT_FAILED;
    int64_t start = dsp_mono_ms(), pause = 500;

    if (r < 0)
        return job_command_exit(r);
    const char *id = argv[r];
    char *uri = store_uri(store_opt);

    if (open_job_store(uri, id, 0, &store, &err) != DSP_OK) {
        rc = fail("wait failed", &err);
        goto out;
    }
    for (;;) {
        if (dsp_job_read_state(store, id, &state, NULL, &err) != DSP_OK)
            DSP_WARN("state_read_failed", "job=%s message=\"%s\"", id, err.msg);
        if (state != DSP_JOB_RUNNING)
            break;
        int64_t elapsed = dsp_mono_ms() - start;
        if (timeout >= 0 && elapsed >= (int64_t)(timeout * 1000)) {
            fprintf(stderr, "dspark: job %s still running after %.0f s\n", id, timeout);
            rc = DSP_EXIT_TIMEOUT;
            goto out;
        }
        int64_t left = timeout >= 0 ? (int64_t)(timeout * 1000) - elapsed : pause;
        dsp_sleep_ms(pause < left ? pause : left);
        if (pause < 5000)
            pause += pause / 2;
    }
    fprintf(stderr, "dspark: job %s %s\n", id, dsp_job_state_name(state));
    if (state == DSP_JOB_FAILED)
        print_failure(store, id);
    rc = exit_for_state(state);
out:
    if (store)
        dsp_store_close(store);
    free(uri);
    return rc;
}

static const char cancel_help[] =
    "usage: dspark cancel JOB [--store URI]\n\n"
    "Cancel a job: workers abandon its tasks at their next heartbeat. Cancelling a\n"
    "cancelled job succeeds; a job that is already done or failed stays so (exit 1).\n\n"
    STORE_HELP EXIT_CODES_HELP;

int dsp_cmd_cancel(int argc, char **argv)
{
    const char *store_opt = NULL;
    int r = parse_job_command(argc, argv, cancel_help, &store_opt, NULL, NULL);
    dsp_store *store = NULL;
    dsp_job_state actual;
    dsp_err err;
    int rc;

    if (r < 0)
        return job_command_exit(r);
    const char *id = argv[r];
    char *uri = store_uri(store_opt);

    if (open_job_store(uri, id, 1, &store, &err) != DSP_OK) {
        rc = fail("cancel failed", &err);
        goto out;
    }
    if (dsp_job_finish(store, id, DSP_JOB_CANCELLED, NULL, &actual, &err) != DSP_OK) {
        rc = fail("cancel failed", &err);
        goto out;
    }
    if (actual == DSP_JOB_CANCELLED) {
        fprintf(stderr, "dspark: job %s cancelled\n", id);
        rc = DSP_EXIT_OK;
    } else {
        fprintf(stderr, "dspark: job %s already finished (%s); nothing to cancel\n", id,
                dsp_job_state_name(actual));
        rc = DSP_EXIT_FAILED;
    }
out:
    if (store)
        dsp_store_close(store);
    free(uri);
    return rc;
}

static const char gc_help[] =
    "usage: dspark gc JOB [--store URI]\n"
    "       dspark gc --temp-older-than SECONDS [--store URI]\n\n"
    "Delete the attempt files and leases of a finished job. Its spec, plan,\n"
    "commits, seals, errors and state are kept, so status still works.\n\n"
    "With --temp-older-than, remove instead the hidden temporary files\n"
    "(.dsp-tmp.*) that writers killed in the middle of a put left in a local\n"
    "store, or in a local output directory given as --store: those unchanged for\n"
    "SECONDS whose writer pid no longer runs on this machine. For a directory\n"
    "shared with other hosts, choose SECONDS above the longest put (3600 is a\n"
    "safe start). S3 stores keep no such files.\n\n"
    STORE_HELP EXIT_CODES_HELP;

/* Resolve a store URI to a local directory; NULL for an S3 store. */
static const char *local_store_dir(const char *uri)
{
    if (!strncmp(uri, "s3://", 5))
        return NULL;
    if (!strncmp(uri, "file://", 7))
        return uri + 7;
    return uri;
}

/* dspark gc --temp-older-than SECONDS: sweep a local store's temporary files. */
static int gc_temp_files(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, NULL, 's'},
                                         {"temp-older-than", required_argument, NULL, 'T'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *store_opt = NULL, *age_opt = NULL;
    dsp_local_sweep_stats stats;
    dsp_err err;
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store_opt = optarg; break;
        case 'T': age_opt = optarg; break;
        case 'h': fputs(gc_help, stdout); return DSP_EXIT_OK;
        default: fputs(gc_help, stderr); return DSP_EXIT_USAGE;
        }
    }
    long long age = -1;
    if (optind != argc || !age_opt) {
        fprintf(stderr, "dspark gc: --temp-older-than SECONDS takes no JOB\n");
        return DSP_EXIT_USAGE;
    }
    if (dsp_cli_parse_int("gc", "--temp-older-than", age_opt, 0, INT32_MAX, &age) != 0)
        return DSP_EXIT_USAGE;
    char *uri = store_uri(store_opt);
    const char *dir = local_store_dir(uri);
    if (!dir) {
        fprintf(stderr, "dspark gc: %s is an S3 store, which keeps no temporary files; expire "
                        "incomplete multipart uploads with a bucket lifecycle rule\n", uri);
        free(uri);
        return DSP_EXIT_USAGE;
    }
    if (dsp_local_sweep_temp(dir, age, &stats, &err) != DSP_OK) {
        rc = fail("gc failed", &err);
    } else {
        fprintf(stderr, "dspark: %s: removed %llu temporary files (%llu bytes); kept %llu younger "
                        "than %lld s and %llu whose writer still runs\n", dir,
                (unsigned long long)stats.removed, (unsigned long long)stats.bytes_removed,
                (unsigned long long)stats.kept_young, age,
                (unsigned long long)stats.kept_running);
        rc = DSP_EXIT_OK;
    }
    free(uri);
    return rc;
}

int dsp_cmd_gc(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--temp-older-than", strlen("--temp-older-than")))
            return gc_temp_files(argc, argv);

    const char *store_opt = NULL;
    int r = parse_job_command(argc, argv, gc_help, &store_opt, NULL, NULL);
    dsp_store *store = NULL;
    dsp_job_state state;
    dsp_err err;
    int rc = DSP_EXIT_FAILED;

    if (r < 0)
        return job_command_exit(r);
    const char *id = argv[r];
    char *uri = store_uri(store_opt);

    if (open_job_store(uri, id, 0, &store, &err) != DSP_OK) {
        rc = fail("gc failed", &err);
        goto out;
    }
    if (dsp_job_read_state(store, id, &state, NULL, &err) != DSP_OK) {
        rc = fail("gc failed", &err);
        goto out;
    }
    if (state == DSP_JOB_RUNNING) {
        fprintf(stderr, "dspark: job %s is still running; gc deletes only finished jobs' files "
                        "(cancel it first)\n", id);
        goto out;
    }
    static const char *const dirs[] = {"attempts/", "leases/"};
    for (size_t i = 0; i < 2; i++) {
        char *prefix = dsp_proto_job_key(id, dirs[i]);
        dsp_status st = dsp_proto_delete_prefix(store, prefix, &err);
        free(prefix);
        if (st != DSP_OK) {
            rc = fail("gc failed", &err);
            goto out;
        }
    }
    fprintf(stderr, "dspark: job %s: attempt files and leases deleted\n", id);
    rc = DSP_EXIT_OK;
out:
    if (store)
        dsp_store_close(store);
    free(uri);
    return rc;
}
