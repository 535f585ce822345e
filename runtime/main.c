/*
 * main.c - the `dspark` command line: dispatch to a subcommand.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "cli.h"

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("dspark %s\n", DSP_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

static const dsp_command commands[] = {
    {"run", dsp_cmd_run, "plan a job and run it with local worker processes"},
    {"submit", dsp_cmd_submit, "publish a job to a store for workers to run"},
    {"worker", dsp_cmd_worker, "run tasks of the jobs in a store"},
    {"jobs", dsp_cmd_jobs, "list the jobs in a store with their state, newest first"},
    {"status", dsp_cmd_status, "show a job's progress, counters and errors"},
    {"wait", dsp_cmd_wait, "wait for a job to finish; the exit code says how"},
    {"cancel", dsp_cmd_cancel, "cancel a job"},
    {"gc", dsp_cmd_gc, "delete a finished job's intermediate files"},
    {"report", dsp_cmd_report, "print the curation report of a published output"},
    {"explain", dsp_cmd_explain, "show the stages, tasks and request cost of a job"},
    {"ops", dsp_cmd_ops, "list operators and their options"},
    {"ls", dsp_cmd_ls, "list objects under a URI"},
    {"cat", dsp_cmd_cat, "write an object (or a byte range) to stdout"},
    {"cp", dsp_cmd_cp, "copy between local files and stores"},
    {"rm", dsp_cmd_rm, "delete objects"},
    {"doctor", dsp_cmd_doctor, "check that a store supports what DSpark needs"},
    {"metrics", dsp_cmd_metrics, "count a store's runnable tasks; publish them to CloudWatch"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "show this help"},
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("usage: dspark [--log-format text|json] COMMAND [OPTIONS]\n\n"
           "DSpark curates LLM pre-training data on object storage.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %-9s %s\n", commands[i].name, commands[i].summary);
    printf("\nRun 'dspark COMMAND --help' for a command's options.\n"
           "Environment: DSPARK_STORE (default --store), DSPARK_LOG_LEVEL, DSPARK_LOG_FORMAT,\n"
           "DSPARK_FAULTS (fault injection), and the usual AWS_* variables for S3.\n");
    return 0;
}

const char *dsp_cli_default_store(void)
{
    const char *s = getenv("DSPARK_STORE");
    return s && *s ? s : NULL;
}

int dsp_cli_parse_int(const char *command, const char *option, const char *text, long long min,
                      long long max, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (end == text || *end || errno == ERANGE || v < min || v > max) {
        fprintf(stderr, "dspark %s: invalid %s '%s': expected an integer from %lld to %lld\n",
                command, option, text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    dsp_err err;

    /* Global options before the command: --log-format text|json overrides
     * DSPARK_LOG_FORMAT for this process and the workers it starts, so it
     * is read before the variable is checked. */
    while (argc >= 2 && !strncmp(argv[1], "--log-format", 12)) {
        const char *fmt = NULL;
        int used = 1;
        if (argv[1][12] == '=')
            fmt = argv[1] + 13;
        else if (argv[1][12] == '\0' && argc >= 3)
            fmt = argv[2], used = 2;
        if (!fmt || (strcmp(fmt, "text") != 0 && strcmp(fmt, "json") != 0)) {
            fprintf(stderr, "dspark: invalid --log-format '%s'; expected text or json\n",
                    fmt ? fmt : "");
            return DSP_EXIT_USAGE;
        }
        setenv("DSPARK_LOG_FORMAT", fmt, 1);
        argv[used] = argv[0];
        argv += used;
        argc -= used;
    }
    if (dsp_log_init(&err) != DSP_OK) {
        fprintf(stderr, "dspark: %s\n", err.msg);
        return DSP_EXIT_USAGE;
    }
    if (argc < 2) {
        cmd_help(0, NULL);
        return DSP_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h"))
        return cmd_help(0, NULL);
    if (!strcmp(name, "--version"))
        return cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "dspark: unknown command '%s'; run 'dspark help' for the list\n", name);
    return DSP_EXIT_USAGE;
}
