/*
 * cmd_explain.c - `dspark explain JOB.json`: plan a job without running it
 * and print its stages, task sizes, input bytes and an estimate of the S3
 * requests it makes and what they cost (see planner/estimate.c for the
 * model). Nothing is written to any store; --plan-out writes the plan
 * JSON to a local file.
 *
 * Exit codes: 0 planned, 2 for an invalid command line, an invalid spec or
 * an input glob that matches nothing, 1 for any other failure (a store
 * that cannot be listed, an unreadable file).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "../planner/plan.h"
#include "cli.h"

typedef struct {
    uint64_t min, median, max;
} explain_sizes;

static int explain_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Min, median (the lower middle value) and max task bytes of a stage. */
static explain_sizes explain_task_sizes(const dsp_plan_stage *stage)
{
    explain_sizes r = {0, 0, 0};
    if (stage->ntasks == 0)
        return r;
    uint64_t *v = dsp_xmalloc(stage->ntasks * sizeof *v);
    for (size_t t = 0; t < stage->ntasks; t++)
        v[t] = stage->tasks[t].bytes;
    qsort(v, stage->ntasks, sizeof *v, explain_u64_cmp);
    r.min = v[0];
    r.median = v[(stage->ntasks - 1) / 2];
    r.max = v[stage->ntasks - 1];
    free(v);
    return r;
}

/* "length,stats" (or "-") for a stage's steps. */
static void explain_step_names(const dsp_plan_stage *stage, dsp_buf *out)
{
    dsp_buf_reset(out);
    for (const cJSON *step = stage->steps ? stage->steps->child : NULL; step; step = step->next) {
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(step, "op");
        if (out->len)
            dsp_buf_append_char(out, ',');
        dsp_buf_append_str(out, cJSON_IsString(op) ? op->valuestring : "?");
    }
    if (!out->len)
        dsp_buf_append_str(out, "-");
}

static const char *explain_bytes(uint64_t n, char *buf, size_t size)
{
    return dsp_format_bytes((double)n, buf, size);
}

static void explain_print_text(const dsp_spec *spec, const dsp_plan *plan,
                               const dsp_plan_estimate *e, const char *store)
{
    char b1[32], b2[32], b3[32], b4[32];
    printf("job %s (spec sha256 %.16s)\n", plan->job_name, plan->spec_hash);
    printf("inputs: %" PRIu64 " objects, %s (%" PRIu64 " bytes)\n", e->input_objects,
           explain_bytes(plan->total_bytes, b1, sizeof b1), plan->total_bytes);
    printf("output: %s (%s, shards of about %s)\n", spec->output_uri, spec->output_format,
           explain_bytes((uint64_t)spec->target_shard_bytes, b1, sizeof b1));
    if (store)
        printf("store: %s\n", store);
    printf("\nstages: %zu, tasks: %zu\n", plan->nstages, plan->total_tasks);
    printf("  %-5s %-18s %-5s %7s %11s %11s %11s %11s  %s\n", "stage", "kind", "deps", "tasks",
           "min", "median", "max", "input", "steps");
    dsp_buf names = DSP_BUF_INIT;
    for (size_t s = 0; s < plan->nstages; s++) {
        const dsp_plan_stage *stage = &plan->stages[s];
        explain_sizes sz = explain_task_sizes(stage);
        char deps[32] = "-";
        if (stage->ndeps == 1)
            snprintf(deps, sizeof deps, "s%d", stage->deps[0]);
        else if (stage->ndeps >= 2)
            snprintf(deps, sizeof deps, "s%d,s%d", stage->deps[0], stage->deps[1]);
        explain_step_names(stage, &names);
        printf("  %-5s %-18s %-5s %7zu %11s %11s %11s %11s  %s%s\n", stage->id, stage->kind, deps,
               stage->ntasks, explain_bytes(sz.min, b1, sizeof b1),
               explain_bytes(sz.median, b2, sizeof b2), explain_bytes(sz.max, b3, sizeof b3),
               explain_bytes(stage->bytes, b4, sizeof b4), names.data,
               s > 0 ? "  (sizes estimated)" : "");
    }
    dsp_buf_free(&names);

    printf("\nS3 requests (estimate, one attempt per task):\n");
    printf("  %-26s %12" PRIu64 " GET\n", "input reads", e->input_gets);
    printf("  %-26s %12" PRIu64 " PUT\n", "shuffle writes", e->shuffle_puts);
    printf("  %-26s %12" PRIu64 " GET\n", "shuffle reads", e->shuffle_gets);
    printf("  %-26s %12" PRIu64 " PUT/COPY (%" PRIu64 " shards)\n", "output writes",
           e->output_puts, e->output_shards);
    printf("  %-26s %12" PRIu64 " GET %" PRIu64 " PUT %" PRIu64 " LIST %" PRIu64 " DELETE\n",
           "coordination", e->coord_gets, e->coord_puts, e->coord_lists, e->coord_deletes);
    printf("  %-26s %12" PRIu64 " GET-class  $%.6f\n", "total", e->gets, e->get_usd);
    printf("  %-26s %12" PRIu64 " PUT-class  $%.6f\n", "", e->puts, e->put_usd);
    printf("  %-26s %12s            $%.6f\n", "cost", "", e->total_usd);
    printf("\nassumptions: AWS S3 Standard list prices ($%.4f per 1,000 GET, $%.3f per 1,000 "
           "PUT, COPY or LIST);\n"
           "%s per ranged GET and multipart part; output bytes = input bytes; a task takes 1 s\n"
           "plus its bytes at %s/s (longest %.0f s, %.0f task-seconds in all); leases renewed\n"
           "every %.0f s; per task 3-4 GETs, 2 PUTs plus renewals, 1 LIST per 1,000 tasks of its\n"
           "stage. Local stores cost nothing: the cost assumes every store is S3.\n",
           DSP_ESTIMATE_GET_USD_PER_1000, DSP_ESTIMATE_PUT_USD_PER_1000,
           explain_bytes(DSP_ESTIMATE_CHUNK_BYTES, b1, sizeof b1),
           explain_bytes(DSP_ESTIMATE_TASK_BYTES_PER_S, b2, sizeof b2), e->max_task_seconds,
           e->task_seconds, (double)spec->lease_seconds / DSP_LEASE_RENEW_DIVISOR);
}

static cJSON *explain_json(const dsp_spec *spec, const dsp_plan *plan, const dsp_plan_estimate *e,
                           const char *store)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "job", plan->job_name);
    cJSON_AddStringToObject(root, "spec_hash", plan->spec_hash);
    if (store)
        cJSON_AddStringToObject(root, "store", store);
    cJSON *inputs = cJSON_AddObjectToObject(root, "inputs");
    cJSON_AddNumberToObject(inputs, "objects", (double)e->input_objects);
    cJSON_AddNumberToObject(inputs, "bytes", (double)plan->total_bytes);
    cJSON *output = cJSON_AddObjectToObject(root, "output");
    cJSON_AddStringToObject(output, "uri", spec->output_uri);
    cJSON_AddStringToObject(output, "format", spec->output_format);
    cJSON_AddNumberToObject(output, "target_shard_bytes", (double)spec->target_shard_bytes);
    cJSON_AddNumberToObject(root, "total_tasks", (double)plan->total_tasks);
    cJSON *stages = cJSON_AddArrayToObject(root, "stages");
    for (size_t s = 0; s < plan->nstages; s++) {
        const dsp_plan_stage *stage = &plan->stages[s];
        cJSON *js = cJSON_CreateObject();
        cJSON_AddStringToObject(js, "id", stage->id);
        cJSON_AddStringToObject(js, "kind", stage->kind);
        cJSON *deps = cJSON_AddArrayToObject(js, "deps");
        for (size_t d = 0; d < stage->ndeps; d++)
            cJSON_AddItemToArray(deps, cJSON_CreateNumber(stage->deps[d]));
        cJSON *steps = cJSON_AddArrayToObject(js, "steps");
        for (const cJSON *step = stage->steps ? stage->steps->child : NULL; step;
             step = step->next) {
            const cJSON *op = cJSON_GetObjectItemCaseSensitive(step, "op");
            cJSON_AddItemToArray(steps, cJSON_CreateString(cJSON_IsString(op) ? op->valuestring
                                                                               : "?"));
        }
        explain_sizes sz = explain_task_sizes(stage);
        cJSON_AddNumberToObject(js, "tasks", (double)stage->ntasks);
        cJSON *tb = cJSON_AddObjectToObject(js, "task_bytes");
        cJSON_AddNumberToObject(tb, "min", (double)sz.min);
        cJSON_AddNumberToObject(tb, "median", (double)sz.median);
        cJSON_AddNumberToObject(tb, "max", (double)sz.max);
        cJSON_AddNumberToObject(js, "input_bytes", (double)stage->bytes);
        cJSON_AddBoolToObject(js, "estimated", s > 0);
        cJSON_AddItemToArray(stages, js);
    }
    cJSON *req = cJSON_AddObjectToObject(root, "requests");
    cJSON_AddNumberToObject(req, "input_get", (double)e->input_gets);
    cJSON_AddNumberToObject(req, "shuffle_put", (double)e->shuffle_puts);
    cJSON_AddNumberToObject(req, "shuffle_get", (double)e->shuffle_gets);
    cJSON_AddNumberToObject(req, "output_put", (double)e->output_puts);
    cJSON_AddNumberToObject(req, "output_shards", (double)e->output_shards);
    cJSON_AddNumberToObject(req, "coordination_get", (double)e->coord_gets);
    cJSON_AddNumberToObject(req, "coordination_put", (double)e->coord_puts);
    cJSON_AddNumberToObject(req, "coordination_list", (double)e->coord_lists);
    cJSON_AddNumberToObject(req, "coordination_delete", (double)e->coord_deletes);
    cJSON_AddNumberToObject(req, "get_class", (double)e->gets);
    cJSON_AddNumberToObject(req, "put_class", (double)e->puts);
    cJSON *cost = cJSON_AddObjectToObject(root, "cost_usd");
    cJSON_AddNumberToObject(cost, "get", e->get_usd);
    cJSON_AddNumberToObject(cost, "put", e->put_usd);
    cJSON_AddNumberToObject(cost, "total", e->total_usd);
    cJSON *as = cJSON_AddObjectToObject(root, "assumptions");
    cJSON_AddNumberToObject(as, "get_usd_per_1000", DSP_ESTIMATE_GET_USD_PER_1000);
    cJSON_AddNumberToObject(as, "put_usd_per_1000", DSP_ESTIMATE_PUT_USD_PER_1000);
    cJSON_AddNumberToObject(as, "chunk_bytes", (double)DSP_ESTIMATE_CHUNK_BYTES);
    cJSON_AddNumberToObject(as, "task_bytes_per_second", (double)DSP_ESTIMATE_TASK_BYTES_PER_S);
    cJSON_AddNumberToObject(as, "lease_renew_seconds",
                            (double)spec->lease_seconds / DSP_LEASE_RENEW_DIVISOR);
    cJSON_AddNumberToObject(as, "max_task_seconds", e->max_task_seconds);
    cJSON_AddNumberToObject(as, "task_seconds", e->task_seconds);
    return root;
}

static void explain_usage(FILE *f)
{
    fprintf(f, "usage: dspark explain JOB.json [--store URI] [--json] [--plan-out FILE]\n\n"
               "Plan a job without running it: list its inputs, print its stages and\n"
               "tasks, and estimate its S3 requests and their cost.\n\n"
               "  --store URI  coordination store the job would be submitted to\n"
               "               (default $DSPARK_STORE); shown in the output\n"
               "  --json       print the plan summary and estimate as JSON\n"
               "  --plan-out FILE  also write the full plan (plan.json) to FILE\n"
               "  -h, --help   show this help\n");
}

int dsp_cmd_explain(int argc, char **argv)
{
    static const struct option options[] = {
        {"store", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"plan-out", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *store = dsp_cli_default_store();
    const char *plan_out = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'j': json = 1; break;
        case 'p': plan_out = optarg; break;
        case 'h': explain_usage(stdout); return DSP_EXIT_OK;
        default: explain_usage(stderr); return DSP_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dspark explain: expected one job spec file, got %d arguments\n",
                argc - optind);
        explain_usage(stderr);
        return DSP_EXIT_USAGE;
    }
    const char *path = argv[optind];
    dsp_buf text = DSP_BUF_INIT;
    dsp_err err = {0};
    dsp_spec *spec = NULL;
    dsp_plan *plan = NULL;
    int rc = DSP_EXIT_FAILED;
    if (dsp_read_file(path, &text, &err)) {
        fprintf(stderr, "dspark explain: %s\n", err.msg);
        rc = err.code == DSP_ENOTFOUND ? DSP_EXIT_USAGE : DSP_EXIT_FAILED;
        goto done;
    }
    if (dsp_spec_parse(text.data, text.len, path, &spec, &err)) {
        char *msg = dsp_escape_control(err.msg, 0);
        fprintf(stderr, "dspark explain: %s\n", msg);
        free(msg);
        rc = DSP_EXIT_USAGE;
        goto done;
    }
    /* Without --store, check the store that run and submit would use. */
    char *default_store = store ? NULL : dsp_xstrdup("./.dspark");
    dsp_status checked = dsp_plan_check_store(spec, store ? store : default_store, &err);
    free(default_store);
    if (checked || dsp_plan_build(spec, &plan, &err)) {
        char *msg = dsp_escape_control(err.msg, 0);
        fprintf(stderr, "dspark explain: %s: %s\n", path, msg);
        free(msg);
        rc = err.code == DSP_ENOTFOUND || err.code == DSP_EINVAL ? DSP_EXIT_USAGE
                                                                 : DSP_EXIT_FAILED;
        goto done;
    }
    if (plan_out) {
        char *plan_json = dsp_plan_to_json(plan);
        dsp_status st = dsp_write_file_atomic(plan_out, plan_json, strlen(plan_json), &err);
        free(plan_json);
        if (st) {
            fprintf(stderr, "dspark explain: writing the plan: %s\n", err.msg);
            goto done;
        }
    }
    dsp_plan_estimate e;
    dsp_plan_estimate_requests(plan, spec, &e);
    if (json) {
        cJSON *out = explain_json(spec, plan, &e, store);
        char *s = cJSON_Print(out);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(out);
    } else {
        explain_print_text(spec, plan, &e, store);
    }
    rc = DSP_EXIT_OK;
done:
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    dsp_buf_free(&text);
    return rc;
}
