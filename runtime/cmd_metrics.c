/*
 * cmd_metrics.c - `dspark metrics`: the backlog of a job store as a number
 * that an autoscaler can act on.
 *
 *   dspark metrics show     prints the backlog (text or JSON), no network
 *                           request besides the store's own
 *   dspark metrics publish  sends it to CloudWatch with PutMetricData,
 *                           once or every --interval seconds
 *
 * The published metrics are RunnableTasks (see backlog.h) and ActiveJobs,
 * both with unit Count, in namespace DSpark unless --namespace is given,
 * with the dimensions given by --dimension.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../storage/store.h"
#include "backlog.h"
#include "cli.h"
#include "cloudwatch.h"

#define METRICS_DEFAULT_NAMESPACE "DSpark"

static volatile sig_atomic_t g_metrics_stop;

static void metrics_on_signal(int sig)
{
    (void)sig;
    g_metrics_stop = 1;
}

static void metrics_usage(FILE *f)
{
    fprintf(f,
            "usage: dspark metrics show [--store URI] [--json]\n"
            "       dspark metrics publish [--store URI] [--namespace NS] [--dimension NAME=VALUE]...\n"
            "                              [--interval SECONDS]\n"
            "\n"
            "Count the backlog of a job store: runnable tasks (tasks without a commit in the\n"
            "current stage of every active job, running ones included) and active jobs.\n"
            "'show' prints them; 'publish' sends them to CloudWatch as the metrics\n"
            "RunnableTasks and ActiveJobs (unit Count) for autoscaling on the backlog.\n"
            "\n"
            "  --store URI          job store: s3://bucket/prefix, file:///dir or a directory\n"
            "                       (default: $DSPARK_STORE; required)\n"
            "  --json               show: print {\"schema_version\":1,\"store\",\"active_jobs\",\n"
            "                       \"runnable_tasks\",\"time_ms\"}\n"
            "  --namespace NS       publish: CloudWatch namespace (default " METRICS_DEFAULT_NAMESPACE ")\n"
            "  --dimension N=V      publish: add a dimension to both metrics; repeatable,\n"
            "                       at most %d\n"
            "  --interval S         publish: publish every S seconds until SIGTERM or SIGINT\n"
            "                       (default: publish once and exit)\n"
            "\n"
            "CloudWatch endpoint: AWS_ENDPOINT_URL_CLOUDWATCH, else\n"
            "https://monitoring.$AWS_REGION.amazonaws.com. Credentials and region come from\n"
            "the same places as for S3 stores.\n"
            "exit codes: 0 success, 1 the store or CloudWatch failed, 2 invalid command line\n",
            DSP_CW_MAX_DIMENSIONS);
}

static int metrics_show(dsp_store *store, int json)
{
    dsp_backlog backlog;
    dsp_err err = {0};

    if (dsp_backlog_count(store, &backlog, &err) != DSP_OK) {
        fprintf(stderr, "dspark: metrics show: %s\n", err.msg);
        return DSP_EXIT_FAILED;
    }
    if (!json) {
        printf("store:          %s\nactive jobs:    %zu\nrunnable tasks: %zu\n",
               dsp_store_uri(store), backlog.active_jobs, backlog.runnable_tasks);
        return DSP_EXIT_OK;
    }

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "schema_version", 1);
    cJSON_AddStringToObject(doc, "store", dsp_store_uri(store));
    cJSON_AddNumberToObject(doc, "active_jobs", (double)backlog.active_jobs);
    cJSON_AddNumberToObject(doc, "runnable_tasks", (double)backlog.runnable_tasks);
    cJSON_AddNumberToObject(doc, "time_ms", (double)dsp_now_ms());
    char *text = cJSON_PrintUnformatted(doc);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(doc);
    return DSP_EXIT_OK;
}

/* Count and send once. */
static dsp_status metrics_publish_once(dsp_store *store, const char *ns,
                                       const dsp_cw_dimension *dims, size_t ndims,
                                       dsp_backlog *backlog, dsp_err *err)
{
    dsp_status st = dsp_backlog_count(store, backlog, err);
    if (st != DSP_OK)
        return st;

    dsp_cw_metric metrics[2] = {
        {"RunnableTasks", (double)backlog->runnable_tasks, "Count"},
        {"ActiveJobs", (double)backlog->active_jobs, "Count"},
    };
    return dsp_cw_put_metric_data(ns, metrics, 2, dims, ndims, err);
}

static int metrics_publish(dsp_store *store, const char *ns, const dsp_cw_dimension *dims,
                           size_t ndims, int interval)
{
    dsp_backlog backlog;
    dsp_err err = {0};
    unsigned long failures = 0;

    if (interval <= 0) {
        if (metrics_publish_once(store, ns, dims, ndims, &backlog, &err) != DSP_OK) {
            fprintf(stderr, "dspark: metrics publish: %s\n", err.msg);
            return DSP_EXIT_FAILED;
        }
        DSP_INFO("metrics_published", "namespace=%s runnable_tasks=%zu active_jobs=%zu", ns,
                 backlog.runnable_tasks, backlog.active_jobs);
        return DSP_EXIT_OK;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = metrics_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    DSP_INFO("metrics_start", "store=%s namespace=%s interval_s=%d", dsp_store_uri(store), ns,
             interval);
    while (!g_metrics_stop) {
        int64_t next_ms = dsp_mono_ms() + (int64_t)interval * 1000;

        dsp_err_clear(&err);
        if (metrics_publish_once(store, ns, dims, ndims, &backlog, &err) == DSP_OK) {
            DSP_INFO("metrics_published", "namespace=%s runnable_tasks=%zu active_jobs=%zu", ns,
                     backlog.runnable_tasks, backlog.active_jobs);
        } else {
            /* A publisher keeps running through outages, because the autoscaler
             * keeps its last decision while data points are missing. */
            failures++;
            DSP_ERROR("metrics_publish_failed", "error=%s failures=%lu message=%s",
                      dsp_status_name(err.code), failures, err.msg);
        }
        while (!g_metrics_stop && dsp_mono_ms() < next_ms)
            dsp_sleep_ms(next_ms - dsp_mono_ms() < 200 ? next_ms - dsp_mono_ms() : 200);
    }
    DSP_INFO("metrics_stop", "store=%s failures=%lu", dsp_store_uri(store), failures);
    return DSP_EXIT_OK;
}

int dsp_cmd_metrics(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"namespace", required_argument, NULL, 'n'},
        {"dimension", required_argument, NULL, 'd'},
        {"interval", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    dsp_cw_dimension dims[DSP_CW_MAX_DIMENSIONS];
    char *dim_copies[DSP_CW_MAX_DIMENSIONS];
    size_t ndims = 0;
    const char *store_opt = NULL, *ns = METRICS_DEFAULT_NAMESPACE;
    int json = 0, interval = 0, ns_given = 0, rc = DSP_EXIT_USAGE, opt;
    dsp_store *store = NULL;
    dsp_err err = {0};

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        metrics_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? DSP_EXIT_USAGE : DSP_EXIT_OK;
    }
    const char *action = argv[1];
    int publish = !strcmp(action, "publish");
    if (!publish && strcmp(action, "show") != 0) {
        fprintf(stderr, "dspark: metrics: unknown action '%s'; expected show or publish\n",
                action);
        return DSP_EXIT_USAGE;
    }

    optind = 1;
    while ((opt = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            store_opt = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'n':
            ns = optarg;
            ns_given = 1;
            break;
        case 'd': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1]) {
                fprintf(stderr, "dspark: metrics: invalid --dimension '%s'; expected NAME=VALUE\n",
                        optarg);
                goto out;
            }
            if (ndims == DSP_CW_MAX_DIMENSIONS) {
                fprintf(stderr, "dspark: metrics: more than %d --dimension options\n",
                        DSP_CW_MAX_DIMENSIONS);
                goto out;
            }
            dim_copies[ndims] = dsp_xstrdup(optarg);
            dim_copies[ndims][eq - optarg] = '\0';
            dims[ndims].name = dim_copies[ndims];
            dims[ndims].value = dim_copies[ndims] + (eq - optarg) + 1;
            ndims++;
            break;
        }
        case 'i': {
            long long v;
            if (dsp_cli_parse_int("metrics", "--interval", optarg, 1, 86400, &v) != 0)
                goto out;
            interval = (int)v;
            break;
        }
        case 'h':
            metrics_usage(stdout);
            rc = DSP_EXIT_OK;
            goto out;
        default:
            goto out;
        }
    }
    if (optind < argc - 1) {
        fprintf(stderr, "dspark: metrics: unexpected argument '%s'\n", argv[optind + 1]);
        goto out;
    }
    if (!publish && (ndims || interval || ns_given)) {
        fprintf(stderr, "dspark: metrics show: --namespace, --dimension and --interval are "
                        "options of 'metrics publish'\n");
        goto out;
    }
    if (!store_opt)
        store_opt = dsp_cli_default_store();
    if (!store_opt) {
        fprintf(stderr, "dspark: metrics: no store given; pass --store URI or set DSPARK_STORE\n");
        goto out;
    }

    if (dsp_store_open(store_opt, NULL, &store, &err) != DSP_OK) {
        fprintf(stderr, "dspark: metrics: opening store %s: %s\n", store_opt, err.msg);
        rc = err.code == DSP_EINVAL ? DSP_EXIT_USAGE : DSP_EXIT_FAILED;
        goto out;
    }
    rc = publish ? metrics_publish(store, ns, dims, ndims, interval) : metrics_show(store, json);

out:
    dsp_store_close(store);
    for (size_t i = 0; i < ndims; i++)
        free(dim_copies[i]);
    return rc;
}
