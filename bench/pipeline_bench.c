/*
 * pipeline_bench.c - benchmark driver for the data path. It runs one map
 * task with dsp_pipeline_run: the input is one zstd, gzip or plain JSONL
 * file, the steps come from the command line, and the output is zstd JSONL
 * in a scratch directory used as a local store. It prints one JSON object
 * with the record counts, bytes, CPU seconds, peak RSS and each step's
 * counters.
 *
 *   pipeline_bench --steps '[{"op":"normalize"}]' --input FILE --output DIR
 *
 * bench/pipeline_bench.sh builds and runs it until `dspark run` exists.
 */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/util.h"
#include "storage/store.h"
#include "tasks/pipeline.h"

static void bench_usage(void)
{
    fprintf(stderr, "usage: pipeline_bench --steps JSON_ARRAY --input FILE --output DIR\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"steps", required_argument, NULL, 's'},
        {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    const char *steps_json = "[]", *input = NULL, *output = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 's')
            steps_json = optarg;
        else if (c == 'i')
            input = optarg;
        else if (c == 'o')
            output = optarg;
        else {
            bench_usage();
            return 2;
        }
    }
    if (!input || !output) {
        bench_usage();
        return 2;
    }
    cJSON *steps = cJSON_Parse(steps_json);
    if (!cJSON_IsArray(steps)) {
        fprintf(stderr, "pipeline_bench: --steps must be a JSON array\n");
        return 2;
    }

    char abs_input[PATH_MAX];
    if (!realpath(input, abs_input)) {
        perror(input);
        return 2;
    }
    char *dir_copy = dsp_xstrdup(abs_input), *base_copy = dsp_xstrdup(abs_input);
    char *input_root = dsp_xasprintf("file://%s", dirname(dir_copy));

    dsp_err err = {0};
    dsp_store *out_store = NULL;
    if (dsp_store_open(output, NULL, &out_store, &err) != DSP_OK) {
        fprintf(stderr, "pipeline_bench: %s\n", err.msg);
        return 1;
    }
    dsp_input_range range = {input_root, basename(base_copy), 0, -1};
    dsp_pipeline_config cfg = {
        .steps = steps,
        .format = DSP_FMT_JSONL,
        .out_store = out_store,
        .out_prefix = "bench",
        .out_format = "jsonl.zst",
    };
    dsp_pipeline_result res;
    memset(&res, 0, sizeof res);
    if (dsp_pipeline_run(&cfg, &range, 1, &res, &err) != DSP_OK) {
        fprintf(stderr, "pipeline_bench: %s\n", err.msg);
        return 1;
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "records_in", (double)res.records_in);
    cJSON_AddNumberToObject(out, "records_out", (double)res.records_out);
    cJSON_AddNumberToObject(out, "records_rejected", (double)res.records_rejected);
    cJSON_AddNumberToObject(out, "bytes_in_raw", (double)res.bytes_in_raw);
    cJSON_AddNumberToObject(out, "bytes_out", (double)res.bytes_out);
    cJSON_AddNumberToObject(out, "cpu_seconds", res.cpu_seconds);
    cJSON_AddNumberToObject(out, "mb_per_cpu_second",
                            res.cpu_seconds > 0 ? res.bytes_in_raw / 1e6 / res.cpu_seconds : 0);
    cJSON_AddNumberToObject(out, "peak_rss_mib", ru.ru_maxrss / 1024.0);
    if (res.op_counters)
        cJSON_AddItemToObject(out, "steps", cJSON_Duplicate(res.op_counters, 1));
    char *text = cJSON_PrintUnformatted(out);
    printf("%s\n", text);

    free(text);
    cJSON_Delete(out);
    dsp_pipeline_result_free(&res);
    dsp_store_close(out_store);
    cJSON_Delete(steps);
    free(input_root);
    free(dir_copy);
    free(base_copy);
    return 0;
}
