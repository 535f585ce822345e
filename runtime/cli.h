/*
 * cli.h - the `dspark` subcommands. Each takes argc/argv starting at the
 * subcommand name (argv[0] = "ls"), parses its own options with
 * getopt_long, and returns the process exit code (see DSP_EXIT_*).
 */
#ifndef DSP_CLI_H
#define DSP_CLI_H

/* Exit codes shared by all commands; `wait` and `run` document these. */
#define DSP_EXIT_OK 0
#define DSP_EXIT_FAILED 1     /* job failed, or the command failed */
#define DSP_EXIT_USAGE 2      /* invalid command line or spec */
#define DSP_EXIT_CANCELLED 3  /* job was cancelled */
#define DSP_EXIT_TIMEOUT 4    /* wait --timeout passed before the job finished */
#define DSP_EXIT_NOTFOUND 5   /* no such job or object */
#define DSP_EXIT_TERMINATED 143 /* run stopped by SIGTERM (128 + 15); the job is unfinished */

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} dsp_command;

/* Storage commands (cmd_store.c). */
int dsp_cmd_ls(int argc, char **argv);
int dsp_cmd_cat(int argc, char **argv);
int dsp_cmd_cp(int argc, char **argv);
int dsp_cmd_rm(int argc, char **argv);
int dsp_cmd_doctor(int argc, char **argv);

/* Planning (cmd_explain.c). */
int dsp_cmd_explain(int argc, char **argv);

/* Jobs and workers (cmd_job.c). */
int dsp_cmd_run(int argc, char **argv);
int dsp_cmd_submit(int argc, char **argv);
int dsp_cmd_worker(int argc, char **argv);
int dsp_cmd_status(int argc, char **argv);
int dsp_cmd_jobs(int argc, char **argv);
int dsp_cmd_wait(int argc, char **argv);
int dsp_cmd_cancel(int argc, char **argv);
int dsp_cmd_gc(int argc, char **argv);

/* The curation report of a published output (cmd_report.c). */
int dsp_cmd_report(int argc, char **argv);

/* Backlog metrics for autoscaling (cmd_metrics.c). */
int dsp_cmd_metrics(int argc, char **argv);

/* Operators (cmd_ops.c). */
int dsp_cmd_ops(int argc, char **argv);

/* The --store option's default: $DSPARK_STORE, else NULL. */
const char *dsp_cli_default_store(void);

/* Parse the decimal integer `text` of option `option` (such as "--slots")
 * of `command` into *out. Returns 0, or -1 after printing an error that
 * names the option, the value and the range min..max to stderr. */
int dsp_cli_parse_int(const char *command, const char *option, const char *text, long long min,
                      long long max, long long *out);

#endif
