/*
 * pipeline_bench.c - benchmark driver for the data path. It reads one
 * zstd, gzip or plain JSONL file through the project's JSONL reader and
 * runs a list of operator steps over batches the way a map task does (keep
 * flags, compaction after each step). The surviving documents are written
 * as zstd JSONL (level 3). It prints one JSON object with the record
 * counts, the bytes read, CPU seconds, peak RSS and each step's counters.
 *
 *   pipeline_bench --steps '[{"op":"normalize"}]' --input FILE --output FILE.zst
 *
 * bench/pipeline_bench.sh builds and runs it until `dspark run` exists.
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zstd.h>

#include "core/buf.h"
#include "core/util.h"
#include "storage/store.h"
#include "tasks/jsonl.h"
#include "tasks/op.h"

#define BENCH_BATCH_DOCS 1024
#define BENCH_BATCH_BYTES (8u << 20)

typedef struct {
    FILE *file;
    ZSTD_CCtx *cctx;
    char *out;
    size_t out_cap;
    uint64_t bytes;
} bench_writer;

static int bench_write(bench_writer *w, const char *data, size_t len, ZSTD_EndDirective end)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->out, w->out_cap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, end);
        if (ZSTD_isError(left)) {
            fprintf(stderr, "pipeline_bench: zstd: %s\n", ZSTD_getErrorName(left));
            return -1;
        }
        if (out.pos && fwrite(w->out, 1, out.pos, w->file) != out.pos) {
            perror("pipeline_bench: write");
            return -1;
        }
        w->bytes += out.pos;
        if (end == ZSTD_e_continue ? in.pos == in.size : left == 0)
            return 0;
    }
}

static void bench_usage(void)
{
    fprintf(stderr, "usage: pipeline_bench --steps JSON_ARRAY --input FILE --output FILE.zst\n");
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

    dsp_err err = {0};
    cJSON *steps = cJSON_Parse(steps_json);
    if (!cJSON_IsArray(steps)) {
        fprintf(stderr, "pipeline_bench: --steps must be a JSON array\n");
        return 2;
    }
    int nsteps = cJSON_GetArraySize(steps);
    dsp_op_instance *ops = dsp_xcalloc((size_t)nsteps + 1, sizeof *ops);
    dsp_op_ctx ctx = {0, "text"};
    for (int i = 0; i < nsteps; i++) {
        if (dsp_op_instantiate(cJSON_GetArrayItem(steps, i), i, &ctx, &ops[i], &err) != DSP_OK) {
            fprintf(stderr, "pipeline_bench: %s\n", err.msg);
            return 2;
        }
    }

    char *dir_copy = dsp_xstrdup(input), *base_copy = dsp_xstrdup(input);
    dsp_store *store = NULL;
    if (dsp_store_open(dirname(dir_copy), NULL, &store, &err) != DSP_OK) {
        fprintf(stderr, "pipeline_bench: %s\n", err.msg);
        return 1;
    }
    dsp_jsonl_opts opts = {.store = store, .key = basename(base_copy), .length = -1};
    dsp_jsonl_reader *reader = NULL;
    if (dsp_jsonl_open(&opts, &reader, &err) != DSP_OK) {
        fprintf(stderr, "pipeline_bench: %s\n", err.msg);
        return 1;
    }

    bench_writer w = {0};
    w.file = fopen(output, "wb");
    if (!w.file) {
        perror(output);
        return 1;
    }
    w.cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(w.cctx, ZSTD_c_compressionLevel, 3);
    w.out_cap = ZSTD_CStreamOutSize();
    w.out = dsp_xmalloc(w.out_cap);

    dsp_batch batch;
    dsp_batch_init(&batch, "text");
    unsigned char *keep = dsp_xmalloc(BENCH_BATCH_DOCS);
    dsp_buf line = DSP_BUF_INIT;
    uint64_t records_in = 0, records_out = 0;
    double cpu0 = dsp_cpu_seconds();
    int eof = 0;
    while (!eof) {
        dsp_batch_reset(&batch);
        if (dsp_jsonl_next(reader, &batch, BENCH_BATCH_DOCS, BENCH_BATCH_BYTES, &eof, &err) != DSP_OK) {
            fprintf(stderr, "pipeline_bench: %s\n", err.msg);
            return 1;
        }
        records_in += batch.n;
        for (int i = 0; i < nsteps && batch.n > 0; i++) {
            memset(keep, 1, batch.n);
            ops[i].counters.in += batch.n;
            if (ops[i].def->process(ops[i].state, &batch, keep, &ops[i].counters, &err) != DSP_OK) {
                fprintf(stderr, "pipeline_bench: step %d (%s): %s\n", i, ops[i].def->name, err.msg);
                return 1;
            }
            dsp_batch_compact(&batch, keep);
            ops[i].counters.out += batch.n;
        }
        dsp_buf_reset(&line);
        for (size_t d = 0; d < batch.n; d++) {
            dsp_doc_serialize(&batch, &batch.docs[d], &line);
            dsp_buf_append_char(&line, '\n');
        }
        records_out += batch.n;
        if (line.len && bench_write(&w, line.data, line.len, ZSTD_e_continue) != 0)
            return 1;
    }
    if (bench_write(&w, "", 0, ZSTD_e_end) != 0 || fclose(w.file) != 0)
        return 1;
    double cpu = dsp_cpu_seconds() - cpu0;

    const dsp_jsonl_stats *st = dsp_jsonl_get_stats(reader);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    cJSON *res = cJSON_CreateObject();
    cJSON_AddNumberToObject(res, "records_in", (double)records_in);
    cJSON_AddNumberToObject(res, "records_out", (double)records_out);
    cJSON_AddNumberToObject(res, "rejected", (double)st->rejected);
    cJSON_AddNumberToObject(res, "bytes_in_raw", (double)st->bytes_in_raw);
    cJSON_AddNumberToObject(res, "bytes_out", (double)w.bytes);
    cJSON_AddNumberToObject(res, "cpu_seconds", cpu);
    cJSON_AddNumberToObject(res, "mb_per_cpu_second", cpu > 0 ? st->bytes_in_raw / 1e6 / cpu : 0);
    cJSON_AddNumberToObject(res, "peak_rss_mib", ru.ru_maxrss / 1024.0);
    cJSON *counters = cJSON_AddArrayToObject(res, "steps");
    for (int i = 0; i < nsteps; i++) {
        cJSON *o = dsp_op_counters_json(ops[i].def, &ops[i].counters);
        cJSON_AddStringToObject(o, "op", ops[i].def->name);
        cJSON_AddItemToArray(counters, o);
    }
    char *text = cJSON_PrintUnformatted(res);
    printf("%s\n", text);

    free(text);
    cJSON_Delete(res);
    for (int i = 0; i < nsteps; i++)
        dsp_op_instance_free(&ops[i]);
    free(ops);
    cJSON_Delete(steps);
    dsp_buf_free(&line);
    free(keep);
    dsp_batch_free(&batch);
    dsp_jsonl_close(reader);
    dsp_store_close(store);
    ZSTD_freeCCtx(w.cctx);
    free(w.out);
    free(dir_copy);
    free(base_copy);
    return 0;
}
