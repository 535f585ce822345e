/* Tests of the map-stage pipeline (tasks/pipeline.c) and the shard writer
 * (tasks/writer.c): real inputs in a local store, real operators from the
 * registry, and the written shards read back and checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "../../core/util.h"
#include "../../storage/store.h"
#include "../../tasks/input_cache.h"
#include "../../tasks/jsonl.h"
#include "../../tasks/pipeline.h"
#include "../../tasks/writer.h"
#include "test.h"

#ifndef DSP_TEST_DATA
#define DSP_TEST_DATA "tests/data"
#endif

#define CC_KEY "cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"

/* ---- helpers ---- */

typedef struct {
    char dir[64];
    char uri[80];
    dsp_store *store;
    char data_uri[4096];
} temp_store;

static int temp_store_open(temp_store *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/dsp-pipeline-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->uri, sizeof t->uri, "file://%s", t->dir);
    char cwd[2048];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    snprintf(t->data_uri, sizeof t->data_uri, "%s/%s", cwd, DSP_TEST_DATA);
    dsp_err err;
    return dsp_store_open(t->dir, NULL, &t->store, &err) == DSP_OK ? 0 : -1;
}

static void temp_store_close(temp_store *t)
{
    dsp_store_close(t->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", t->dir);
}

static int put(temp_store *t, const char *key, const void *data, size_t len)
{
    dsp_err err;
    return dsp_store_put(t->store, key, data, len, NULL, NULL, &err) == DSP_OK ? 0 : -1;
}

static void config_init(dsp_pipeline_config *cfg, temp_store *t, const char *prefix)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->out_store = t->store;
    cfg->out_prefix = prefix;
}

/* Count the records of one output object by reading it back, and check
 * that its size and SHA-256 match the recorded ones. */
static uint64_t check_output_file(temp_store *t, const dsp_output_file *f)
{
    dsp_buf body = DSP_BUF_INIT;
    dsp_err err;
    if (dsp_store_get(t->store, f->key, 0, -1, &body, NULL, &err) != DSP_OK) {
        CHECKF(0, "get %s: %s", f->key, err.msg);
        return 0;
    }
    CHECK_EQ_INT(body.len, f->size);
    char hex[65];
    dsp_sha256_hex(body.data, body.len, hex);
    CHECK_EQ_STR(hex, f->sha256);
    dsp_buf_free(&body);

    dsp_jsonl_opts opts = {.store = t->store, .key = f->key, .length = -1};
    dsp_jsonl_reader *r = NULL;
    if (dsp_jsonl_open(&opts, &r, &err) != DSP_OK) {
        CHECKF(0, "open %s: %s", f->key, err.msg);
        return 0;
    }
    dsp_batch b;
    dsp_batch_init(&b, "text");
    int eof = 0;
    uint64_t n = 0;
    while (!eof) {
        if (dsp_jsonl_next(r, &b, 1024, 1u << 22, &eof, &err) != DSP_OK) {
            CHECKF(0, "read %s: %s", f->key, err.msg);
            break;
        }
        n += b.n;
        dsp_batch_reset(&b);
    }
    CHECK_EQ_INT(dsp_jsonl_get_stats(r)->rejected, 0);
    dsp_batch_free(&b);
    dsp_jsonl_close(r);
    CHECK_EQ_INT(n, f->records);
    return n;
}

/* Sum of documents removed by all steps, from the counters JSON, checking
 * per step that in - out equals the removed count. */
static uint64_t removed_by_steps(const cJSON *counters)
{
    uint64_t total = 0;
    const cJSON *step;
    cJSON_ArrayForEach(step, counters)
    {
        double in = cJSON_GetObjectItem(step, "in")->valuedouble;
        double out = cJSON_GetObjectItem(step, "out")->valuedouble;
        double removed = 0;
        const cJSON *reason;
        cJSON_ArrayForEach(reason, cJSON_GetObjectItem(step, "removed"))
            removed += reason->valuedouble;
        CHECKF(in - out == removed, "step in %.0f out %.0f removed %.0f", in, out, removed);
        total += (uint64_t)removed;
    }
    return total;
}

static size_t count_keys(temp_store *t, const char *prefix)
{
    dsp_list_page page;
    dsp_err err;
    if (dsp_store_list_all(t->store, prefix, NULL, &page, &err) != DSP_OK)
        return (size_t)-1;
    size_t n = page.n;
    dsp_list_page_free(&page);
    return n;
}

/* ---- cases ---- */

static void test_pipeline_no_steps(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char bad[] = "{\"id\":\"a\",\"text\":\"kept\"}\n"
                       "{\"id\":\"b\",\"text\":\n"
                       "\n"
                       "{\"id\":\"c\"}\n"
                       "{\"id\":\"d\",\"text\":\"also kept\"}";
    REQUIRE(put(&t, "in/bad.jsonl", bad, sizeof bad - 1) == 0);

    dsp_pipeline_config cfg;
    config_init(&cfg, &t, "out/t0");
    dsp_input_range inputs[] = {
        {t.data_uri, CC_KEY, 0, -1},
        {t.uri, "in/bad.jsonl", 0, -1},
    };
    dsp_pipeline_result res;
    dsp_err err;
    dsp_status st = dsp_pipeline_run(&cfg, inputs, 2, &res, &err);
    REQUIRE(st == DSP_OK);
    CHECK_EQ_INT(res.records_in, 697 + 4);
    CHECK_EQ_INT(res.records_out, 697 + 2);
    CHECK_EQ_INT(res.records_rejected, 2);
    CHECK_EQ_INT(res.records_in, res.records_out + res.records_rejected);
    CHECK(res.bytes_in > 1000000);
    CHECK(res.bytes_in_raw > res.bytes_in);
    REQUIRE(res.nfiles == 1);
    CHECK_EQ_STR(res.files[0].key, "out/t0/part-00000.jsonl.zst");
    CHECK_EQ_INT(check_output_file(&t, &res.files[0]), 699);

    /* The rejects file names the reason, the source key and the offset. */
    REQUIRE(res.rejects.key != NULL);
    CHECK_EQ_STR(res.rejects.key, "out/t0/rejects.jsonl.zst");
    CHECK_EQ_INT(res.rejects.records, 2);
    dsp_buf body = DSP_BUF_INIT;
    REQUIRE(dsp_store_get(t.store, res.rejects.key, 0, -1, &body, NULL, &err) == DSP_OK);
    unsigned long long raw_size = ZSTD_getFrameContentSize(body.data, body.len);
    char *plain = NULL;
    size_t plain_len = 0;
    if (raw_size != ZSTD_CONTENTSIZE_UNKNOWN && raw_size != ZSTD_CONTENTSIZE_ERROR) {
        plain = malloc(raw_size + 1);
        plain_len = ZSTD_decompress(plain, raw_size, body.data, body.len);
    } else {
        plain = malloc(1 << 16);
        ZSTD_DStream *ds = ZSTD_createDStream();
        ZSTD_inBuffer in = {body.data, body.len, 0};
        ZSTD_outBuffer out = {plain, (1 << 16) - 1, 0};
        ZSTD_decompressStream(ds, &out, &in);
        plain_len = out.pos;
        ZSTD_freeDStream(ds);
    }
    REQUIRE(!ZSTD_isError(plain_len));
    plain[plain_len] = '\0';
    /* The source is the full path of the input, not its key or base name. */
    char want[256];
    snprintf(want, sizeof want,
             "{\"reason\":\"invalid_json\",\"source\":\"%s/in/bad.jsonl\",\"offset\":25,", t.dir);
    CHECKF(strstr(plain, want) != NULL, "%s", plain);
    snprintf(want, sizeof want,
             "{\"reason\":\"missing_text\",\"source\":\"%s/in/bad.jsonl\",\"offset\":44,", t.dir);
    CHECKF(strstr(plain, want) != NULL, "%s", plain);
    free(plain);
    dsp_buf_free(&body);
    CHECK(cJSON_GetArraySize(res.op_counters) == 0);
    dsp_pipeline_result_free(&res);
    temp_store_close(&t);
}

static void test_pipeline_with_operators(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    cJSON *steps = cJSON_Parse("[{\"op\":\"length\",\"min_words\":100},"
                               "{\"op\":\"stats\"},"
                               "{\"op\":\"sample\",\"rate\":0.5,\"seed\":7}]");
    REQUIRE(steps != NULL);
    dsp_pipeline_config cfg;
    config_init(&cfg, &t, "out/ops");
    cfg.steps = steps;
    dsp_input_range inputs[] = {{t.data_uri, CC_KEY, 0, -1}};
    dsp_pipeline_result res;
    dsp_err err;
    dsp_status st = dsp_pipeline_run(&cfg, inputs, 1, &res, &err);
    REQUIRE(st == DSP_OK);
    REQUIRE(cJSON_GetArraySize(res.op_counters) == 3);
    uint64_t removed = removed_by_steps(res.op_counters);
    CHECK(removed > 0);
    CHECK(res.records_out > 0);
    CHECK_EQ_INT(res.records_in, 697);
    CHECK_EQ_INT(res.records_in, res.records_out + removed + res.records_rejected);
    uint64_t written = 0;
    for (size_t i = 0; i < res.nfiles; i++)
        written += check_output_file(&t, &res.files[i]);
    CHECK_EQ_INT(written, res.records_out);
    CHECK(res.rejects.key == NULL);
    CHECK_EQ_INT(count_keys(&t, "out/ops/rejects"), 0);

    /* The same input and seed give the same output bytes. */
    dsp_pipeline_result again;
    config_init(&cfg, &t, "out/ops2");
    cfg.steps = steps;
    REQUIRE(dsp_pipeline_run(&cfg, inputs, 1, &again, &err) == DSP_OK);
    REQUIRE(again.nfiles == res.nfiles);
    for (size_t i = 0; i < res.nfiles; i++)
        CHECK_EQ_STR(again.files[i].sha256, res.files[i].sha256);
    dsp_pipeline_result_free(&again);
    dsp_pipeline_result_free(&res);
    cJSON_Delete(steps);
    temp_store_close(&t);
}

static void test_pipeline_shards(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char *formats[] = {"jsonl.zst", "jsonl.gz"};
    const char *ext[] = {".jsonl.zst", ".jsonl.gz"};
    for (int k = 0; k < 2; k++) {
        dsp_pipeline_config cfg;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "out/shards%d/", k);
        config_init(&cfg, &t, prefix);
        cfg.out_format = formats[k];
        cfg.target_shard_bytes = 200 << 10;
        cfg.level = 1;
        dsp_input_range inputs[] = {{t.data_uri, CC_KEY, 0, -1}};
        dsp_pipeline_result res;
        dsp_err err;
        REQUIRE(dsp_pipeline_run(&cfg, inputs, 1, &res, &err) == DSP_OK);
        CHECKF(res.nfiles >= 3, "%s: %zu shards", formats[k], res.nfiles);
        uint64_t records = 0, bytes = 0;
        for (size_t i = 0; i < res.nfiles; i++) {
            char want[64];
            snprintf(want, sizeof want, "out/shards%d/part-%05zu%s", k, i, ext[k]);
            CHECK_EQ_STR(res.files[i].key, want);
            if (i + 1 < res.nfiles)
                CHECKF(res.files[i].size >= (200 << 10), "shard %zu is %llu bytes", i,
                       (unsigned long long)res.files[i].size);
            records += check_output_file(&t, &res.files[i]);
            bytes += res.files[i].size;
        }
        CHECK_EQ_INT(records, 697);
        CHECK_EQ_INT(bytes, res.bytes_out);
        CHECK_EQ_INT(count_keys(&t, prefix), res.nfiles);
        dsp_pipeline_result_free(&res);
    }
    temp_store_close(&t);
}

static void test_pipeline_corrupt_input(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    char doc[] = "{\"text\":\"some text that fills a frame\"}\n";
    size_t bound = ZSTD_compressBound(sizeof doc);
    char *frame = malloc(bound);
    size_t n = ZSTD_compress(frame, bound, doc, sizeof doc - 1, 3);
    REQUIRE(put(&t, "in/good.jsonl.zst", frame, n) == 0);
    REQUIRE(put(&t, "in/cut.jsonl.zst", frame, n - 4) == 0);
    free(frame);

    dsp_pipeline_config cfg;
    config_init(&cfg, &t, "out/corrupt");
    cfg.target_shard_bytes = 1; /* a finished shard per record */
    dsp_input_range inputs[] = {{t.uri, "in/good.jsonl.zst", 0, -1},
                                {t.uri, "in/cut.jsonl.zst", 0, -1}};
    dsp_pipeline_result res;
    dsp_err err;
    dsp_status st = dsp_pipeline_run(&cfg, inputs, 2, &res, &err);
    CHECK_EQ_INT(st, DSP_ECORRUPT);
    CHECKF(strstr(err.msg, "in/cut.jsonl.zst") != NULL, "%s", err.msg);
    CHECKF(strstr(err.msg, "byte") != NULL, "%s", err.msg);
    /* The shard finished before the failure is deleted again. */
    CHECK_EQ_INT(count_keys(&t, "out/corrupt"), 0);
    CHECK_EQ_INT(res.nfiles, 0);
    dsp_pipeline_result_free(&res);
    temp_store_close(&t);
}

static void test_pipeline_cancel(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    volatile int cancel = 1;
    dsp_pipeline_config cfg;
    config_init(&cfg, &t, "out/cancel");
    cfg.cancel = &cancel;
    dsp_input_range inputs[] = {{t.data_uri, CC_KEY, 0, -1}};
    dsp_pipeline_result res;
    dsp_err err;
    CHECK_EQ_INT(dsp_pipeline_run(&cfg, inputs, 1, &res, &err), DSP_ECANCELLED);
    CHECK_EQ_INT(count_keys(&t, "out/cancel"), 0);
    dsp_pipeline_result_free(&res);
    temp_store_close(&t);
}

static void test_pipeline_warc_input(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_pipeline_config cfg;
    config_init(&cfg, &t, "out/warc");
    dsp_input_range inputs[] = {{t.data_uri, "warc/CC-MAIN-2020-34-excerpt.warc.gz", 0, -1},
                                {t.data_uri, "warc/sample-0000.warc.gz", 0, -1}};
    dsp_pipeline_result res;
    dsp_err err;
    dsp_status st = dsp_pipeline_run(&cfg, inputs, 2, &res, &err);
    REQUIRE(st == DSP_OK);
    CHECK_EQ_INT(res.records_in, 16 + 22);
    CHECK_EQ_INT(res.records_out, 16 + 22);
    CHECK_EQ_INT(res.warc_skipped, 34 + 26);
    REQUIRE(res.nfiles == 1);
    CHECK_EQ_INT(check_output_file(&t, &res.files[0]), 38);
    dsp_pipeline_result_free(&res);

    /* The id member takes the configured name. */
    config_init(&cfg, &t, "out/warc-id");
    cfg.id_field = "doc_id";
    REQUIRE(dsp_pipeline_run(&cfg, inputs, 1, &res, &err) == DSP_OK);
    REQUIRE(res.nfiles == 1);
    dsp_buf body = DSP_BUF_INIT;
    REQUIRE(dsp_store_get(t.store, res.files[0].key, 0, -1, &body, NULL, &err) == DSP_OK);
    dsp_buf plain = DSP_BUF_INIT;
    dsp_buf_reserve(&plain, 8u << 20);
    size_t n = ZSTD_decompress(plain.data, plain.cap - 1, body.data, body.len);
    if (ZSTD_isError(n)) {
        /* Streamed frames do not record their size; fall back to streaming. */
        ZSTD_DStream *ds = ZSTD_createDStream();
        ZSTD_inBuffer zin = {body.data, body.len, 0};
        ZSTD_outBuffer zout = {plain.data, plain.cap - 1, 0};
        ZSTD_decompressStream(ds, &zout, &zin);
        n = zout.pos;
        ZSTD_freeDStream(ds);
    }
    plain.len = n;
    plain.data[n] = '\0';
    CHECKF(strncmp(plain.data, "{\"doc_id\":\"<urn:uuid:", 21) == 0, "%.80s", plain.data);
    dsp_buf_free(&plain);
    dsp_buf_free(&body);

    /* A WARC input cannot be split into byte ranges. */
    dsp_pipeline_result res2;
    dsp_input_range ranged[] = {{t.data_uri, "warc/sample-0000.warc.gz", 0, 1000}};
    config_init(&cfg, &t, "out/warc2");
    CHECK_EQ_INT(dsp_pipeline_run(&cfg, ranged, 1, &res2, &err), DSP_EINVAL);
    dsp_pipeline_result_free(&res2);
    dsp_pipeline_result_free(&res);
    temp_store_close(&t);
}

static void test_pipeline_byte_ranges(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf data = DSP_BUF_INIT;
    for (int i = 0; i < 500; i++)
        dsp_buf_printf(&data, "{\"id\":%d,\"text\":\"record %d\"}\n", i, i);
    REQUIRE(put(&t, "in/plain.jsonl", data.data, data.len) == 0);
    uint64_t total = 0;
    uint64_t third = data.len / 3;
    for (int part = 0; part < 3; part++) {
        uint64_t offset = part * third;
        int64_t length = part == 2 ? -1 : (int64_t)third;
        dsp_input_range inputs[] = {{t.uri, "in/plain.jsonl", offset, length}};
        char prefix[32];
        snprintf(prefix, sizeof prefix, "out/range%d", part);
        dsp_pipeline_config cfg;
        config_init(&cfg, &t, prefix);
        dsp_pipeline_result res;
        dsp_err err;
        REQUIRE(dsp_pipeline_run(&cfg, inputs, 1, &res, &err) == DSP_OK);
        total += res.records_out;
        dsp_pipeline_result_free(&res);
    }
    CHECK_EQ_INT(total, 500);
    dsp_buf_free(&data);
    temp_store_close(&t);
}

static dsp_status count_emitted(void *ctx, const dsp_batch *b, const dsp_doc *d, dsp_err *err)
{
    (void)b;
    (void)d;
    (void)err;
    (*(uint64_t *)ctx)++;
    return DSP_OK;
}

/* With emit_only every surviving document reaches the emit hook, no data
 * shard is written, and bad records still go to the rejects file. */
static void test_pipeline_emit_only(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char bad[] = "{\"id\":\"a\",\"text\":\"kept\"}\n"
                       "{\"id\":\"b\",\"text\":\n";
    REQUIRE(put(&t, "in/bad.jsonl", bad, sizeof bad - 1) == 0);
    dsp_input_range inputs[] = {
        {t.data_uri, CC_KEY, 0, -1},
        {t.uri, "in/bad.jsonl", 0, -1},
    };
    uint64_t emitted = 0;
    dsp_pipeline_config cfg;
    config_init(&cfg, &t, "out/e0");
    cfg.emit = count_emitted;
    cfg.hook_ctx = &emitted;
    cfg.emit_only = 1;
    dsp_pipeline_result res;
    dsp_err err;
    dsp_status st = dsp_pipeline_run(&cfg, inputs, 2, &res, &err);
    REQUIRE(st == DSP_OK);
    CHECK_EQ_INT(emitted, 697 + 1);
    CHECK_EQ_INT(res.records_out, 697 + 1);
    CHECK_EQ_INT(res.records_rejected, 1);
    CHECK_EQ_INT(res.nfiles, 0);
    CHECK_EQ_INT(count_keys(&t, "out/e0/part-"), 0);
    REQUIRE(res.rejects.key != NULL);
    CHECK_EQ_INT(res.rejects.records, 1);
    CHECK_EQ_INT(res.bytes_out, res.rejects.size);
    dsp_pipeline_result_free(&res);

    config_init(&cfg, &t, "out/e1");
    cfg.emit_only = 1;
    CHECK_EQ_INT(dsp_pipeline_run(&cfg, inputs, 1, &res, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "emit_only") != NULL, "%s", err.msg);
    dsp_pipeline_result_free(&res);
    CHECK_EQ_INT(count_keys(&t, "out/e1"), 0);
    temp_store_close(&t);
}

/* With skip_rejects the bad records leave no rejects file and no count,
 * and the good records are read as without it. */
static void test_pipeline_skip_rejects(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char bad[] = "{\"id\":\"a\",\"text\":\"kept\"}\n"
                       "{\"id\":\"b\",\"text\":\n"
                       "not json\n"
                       "{\"id\":\"c\"}\n"
                       "{\"id\":\"d\",\"text\":\"also kept\"}\n";
    REQUIRE(put(&t, "in/bad.jsonl", bad, sizeof bad - 1) == 0);
    dsp_input_range inputs[] = {
        {t.data_uri, CC_KEY, 0, -1},
        {t.uri, "in/bad.jsonl", 0, -1},
    };
    dsp_pipeline_config cfg;
    config_init(&cfg, &t, "out/s0");
    cfg.skip_rejects = 1;
    dsp_pipeline_result res;
    dsp_err err;
    REQUIRE(dsp_pipeline_run(&cfg, inputs, 2, &res, &err) == DSP_OK);
    CHECK_EQ_INT(res.records_in, 697 + 2);
    CHECK_EQ_INT(res.records_out, 697 + 2);
    CHECK_EQ_INT(res.records_rejected, 0);
    CHECK(res.rejects.key == NULL);
    CHECK_EQ_INT(count_keys(&t, "out/s0/rejects"), 0);
    REQUIRE(res.nfiles == 1);
    CHECK_EQ_INT(check_output_file(&t, &res.files[0]), 699);
    dsp_pipeline_result_free(&res);

    /* Without it, the same input has three rejects. */
    config_init(&cfg, &t, "out/s1");
    REQUIRE(dsp_pipeline_run(&cfg, inputs, 2, &res, &err) == DSP_OK);
    CHECK_EQ_INT(res.records_in, 697 + 5);
    CHECK_EQ_INT(res.records_rejected, 3);
    CHECK(res.rejects.key != NULL);
    dsp_pipeline_result_free(&res);
    temp_store_close(&t);
}

/* dsp_pipeline_detect_format reads WARC from content, not from the name. */
static void test_pipeline_detect_format(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char line[] = "{\"id\":\"a\",\"text\":\"kept\"}\n";
    REQUIRE(put(&t, "in/named.warc.gz", line, sizeof line - 1) == 0);
    struct {
        const char *root, *key;
        dsp_input_format want;
    } cases[] = {
        {t.data_uri, CC_KEY, DSP_FMT_JSONL},
        {t.data_uri, "warc/sample-0000.warc.gz", DSP_FMT_WARC},
        {t.data_uri, "warc/CC-MAIN-2020-34-excerpt.warc.gz", DSP_FMT_WARC},
        {t.uri, "in/named.warc.gz", DSP_FMT_JSONL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dsp_input_range in = {cases[i].root, cases[i].key, 0, -1};
        dsp_input_format fmt = DSP_FMT_AUTO;
        dsp_err err;
        REQUIRE(dsp_pipeline_detect_format(&in, NULL, &fmt, &err) == DSP_OK);
        CHECKF(fmt == cases[i].want, "%s: format %d, expected %d", cases[i].key, (int)fmt,
               (int)cases[i].want);
    }
    dsp_input_range missing = {t.uri, "in/missing.jsonl", 0, -1};
    dsp_input_format fmt;
    dsp_err err;
    CHECK(dsp_pipeline_detect_format(&missing, NULL, &fmt, &err) != DSP_OK);
    temp_store_close(&t);
}

static void test_pipeline_invalid_config(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_input_range inputs[] = {{t.data_uri, CC_KEY, 0, -1}};
    dsp_pipeline_result res;
    dsp_err err;
    dsp_pipeline_config cfg;

    cJSON *steps = cJSON_Parse("[{\"op\":\"no_such_operator\"}]");
    config_init(&cfg, &t, "out/bad");
    cfg.steps = steps;
    CHECK_EQ_INT(dsp_pipeline_run(&cfg, inputs, 1, &res, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "no_such_operator") != NULL, "%s", err.msg);
    dsp_pipeline_result_free(&res);
    cJSON_Delete(steps);

    config_init(&cfg, &t, "out/bad");
    cfg.out_format = "jsonl.bz2";
    CHECK_EQ_INT(dsp_pipeline_run(&cfg, inputs, 1, &res, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "jsonl.bz2") != NULL, "%s", err.msg);
    dsp_pipeline_result_free(&res);

    config_init(&cfg, &t, "out/bad");
    cfg.level = 99;
    CHECK_EQ_INT(dsp_pipeline_run(&cfg, inputs, 1, &res, &err), DSP_EINVAL);
    dsp_pipeline_result_free(&res);

    dsp_input_range missing[] = {{t.uri, "in/none.jsonl", 0, -1}};
    config_init(&cfg, &t, "out/bad");
    CHECK_EQ_INT(dsp_pipeline_run(&cfg, missing, 1, &res, &err), DSP_ENOTFOUND);
    CHECKF(strstr(err.msg, "in/none.jsonl") != NULL, "%s", err.msg);
    dsp_pipeline_result_free(&res);
    CHECK_EQ_INT(count_keys(&t, "out/bad"), 0);
    temp_store_close(&t);
}

/* Inputs and outputs in S3: ranged reads of a plain object, a gzip object,
 * and shards uploaded through the streaming writer. Skips without a server. */
static void test_pipeline_s3_round_trip(void)
{
    const char *endpoint = getenv("AWS_ENDPOINT_URL");
    const char *bucket = getenv("DSPARK_TEST_S3_BUCKET");
    if (!endpoint || !*endpoint || !bucket || !*bucket)
        SKIP("AWS_ENDPOINT_URL or DSPARK_TEST_S3_BUCKET not set");
    char root[256];
    snprintf(root, sizeof root, "s3://%s/dsp-pipeline-test-%d-%016llx", bucket, (int)getpid(),
             (unsigned long long)dsp_rand64());
    dsp_store *s3 = NULL;
    dsp_err err;
    REQUIRE(dsp_store_open(root, NULL, &s3, &err) == DSP_OK);

    dsp_buf data = DSP_BUF_INIT;
    REQUIRE(dsp_read_file(DSP_TEST_DATA "/" CC_KEY, &data, &err) == DSP_OK);
    REQUIRE(dsp_store_put(s3, "in/cc.jsonl.gz", data.data, data.len, NULL, NULL, &err) ==
            DSP_OK);
    dsp_buf_reset(&data);
    for (int i = 0; i < 3000; i++)
        dsp_buf_printf(&data, "{\"id\":%d,\"text\":\"s3 record %d\"}\n", i, i);
    REQUIRE(dsp_store_put(s3, "in/plain.jsonl", data.data, data.len, NULL, NULL, &err) ==
            DSP_OK);

    uint64_t half = data.len / 2;
    dsp_input_range inputs[] = {{root, "in/cc.jsonl.gz", 0, -1},
                                {root, "in/plain.jsonl", 0, (int64_t)half},
                                {root, "in/plain.jsonl", half, -1}};
    dsp_pipeline_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.out_store = s3;
    cfg.out_prefix = "out/t1";
    cfg.target_shard_bytes = 256 << 10;
    dsp_pipeline_result res;
    dsp_status st = dsp_pipeline_run(&cfg, inputs, 3, &res, &err);
    CHECKF(st == DSP_OK, "%s", err.msg);
    CHECK_EQ_INT(res.records_in, 697 + 3000);
    CHECK_EQ_INT(res.records_out, 697 + 3000);
    CHECK(res.nfiles >= 2);

    /* Read every shard back from S3 and compare the hashes. */
    uint64_t records = 0;
    for (size_t i = 0; i < res.nfiles; i++) {
        dsp_buf body = DSP_BUF_INIT;
        REQUIRE(dsp_store_get(s3, res.files[i].key, 0, -1, &body, NULL, &err) == DSP_OK);
        char hex[65];
        dsp_sha256_hex(body.data, body.len, hex);
        CHECK_EQ_STR(hex, res.files[i].sha256);
        CHECK_EQ_INT(body.len, res.files[i].size);
        records += res.files[i].records;
        dsp_buf_free(&body);
    }
    CHECK_EQ_INT(records, res.records_out);
    dsp_pipeline_result_free(&res);

    dsp_list_page all;
    if (dsp_store_list_all(s3, "", NULL, &all, &err) == DSP_OK) {
        const char **keys = dsp_xcalloc(all.n + 1, sizeof *keys);
        for (size_t i = 0; i < all.n; i++)
            keys[i] = all.items[i].key;
        dsp_store_delete(s3, keys, all.n, &err);
        free(keys);
        dsp_list_page_free(&all);
    }
    dsp_buf_free(&data);
    dsp_store_close(s3);
}

/* Read a whole file into a buffer; 0 on success. */
static int slurp(const char *path, dsp_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        dsp_buf_append(out, chunk, n);
    fclose(f);
    return 0;
}

/* A map run with cache_job keeps a compressed input in the input cache.
 * A later run reads the entry in place of the object, with the same result
 * and counters. A damaged entry is removed and the object read instead,
 * and so is a missing one. */
static void test_pipeline_input_cache(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    char cache[128];
    snprintf(cache, sizeof cache, "%s/cache", t.dir);
    /* The cache directory is read once per process, and no earlier case
     * uses the cache. */
    setenv("DSPARK_INPUT_CACHE", cache, 1);
    REQUIRE(dsp_input_cache_dir() != NULL);
    CHECK_EQ_STR(dsp_input_cache_dir(), cache);

    char *gz_path = dsp_xasprintf("%s/%s", DSP_TEST_DATA, CC_KEY);
    dsp_buf gz = DSP_BUF_INIT;
    REQUIRE(slurp(gz_path, &gz) == 0);
    REQUIRE(put(&t, "in/cc.jsonl.gz", gz.data, gz.len) == 0);
    const char plain[] = "{\"id\":\"p\",\"text\":\"plain input\"}\n";
    REQUIRE(put(&t, "in/plain.jsonl", plain, sizeof plain - 1) == 0);
    dsp_obj_info versions[2];
    dsp_err err;
    REQUIRE(dsp_store_head(t.store, "in/cc.jsonl.gz", &versions[0], &err) == DSP_OK);
    REQUIRE(dsp_store_head(t.store, "in/plain.jsonl", &versions[1], &err) == DSP_OK);

    dsp_pipeline_config cfg;
    config_init(&cfg, &t, "out/map");
    cfg.cache_job = "job-1";
    cfg.input_versions = versions;
    dsp_input_range inputs[] = {
        {t.uri, "in/cc.jsonl.gz", 0, -1},
        {t.uri, "in/plain.jsonl", 0, -1},
    };
    dsp_pipeline_result map;
    REQUIRE(dsp_pipeline_run(&cfg, inputs, 2, &map, &err) == DSP_OK);
    REQUIRE(map.cached != NULL);
    CHECK(map.cached[0].ok == 1);
    CHECK(map.cached[1].ok == 0); /* plain objects are read again instead */
    uint64_t plain_raw = sizeof plain - 1;
    CHECK_EQ_INT(map.cached[0].bytes, map.bytes_in_raw - plain_raw);
    char *name = dsp_input_cache_name("job-1", "out/map", 0);
    char *entry = dsp_input_cache_find(name, map.cached[0].bytes);
    REQUIRE(entry != NULL);
    char *plain_name = dsp_input_cache_name("job-1", "out/map", 1);
    CHECK(dsp_input_cache_find(plain_name, plain_raw) == NULL);
    REQUIRE(map.nfiles == 1);

    /* Read back with the object gone from the store: only the entry can
     * supply the documents. */
    dsp_err derr;
    const char *deleted[] = {"in/cc.jsonl.gz"};
    REQUIRE(dsp_store_delete(t.store, deleted, 1, &derr) == DSP_OK);
    dsp_input_cache_ref refs[2] = {{name, map.cached[0].bytes, map.cached[0].hash},
                                   {NULL, 0, 0}};
    config_init(&cfg, &t, "out/again");
    cfg.format = DSP_FMT_JSONL;
    cfg.input_versions = versions;
    cfg.input_cache = refs;
    dsp_pipeline_result again;
    dsp_status st = dsp_pipeline_run(&cfg, inputs, 2, &again, &err);
    CHECKF(st == DSP_OK, "%s", err.msg);
    if (st == DSP_OK) {
        CHECK_EQ_INT(again.records_in, map.records_in);
        CHECK_EQ_INT(again.records_out, map.records_out);
        CHECK_EQ_INT(again.bytes_in, map.bytes_in);
        CHECK_EQ_INT(again.bytes_in_raw, map.bytes_in_raw);
        REQUIRE(again.nfiles == 1);
        CHECK_EQ_STR(again.files[0].sha256, map.files[0].sha256);
        dsp_pipeline_result_free(&again);
    }

    /* One changed byte: the entry fails its check before use, is removed,
     * and the object is read instead, with the same result. */
    CHECK(dsp_input_cache_verify(entry, refs[0].bytes, refs[0].hash) == 1);
    FILE *f = fopen(entry, "r+b");
    REQUIRE(f != NULL);
    fseek(f, 100, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 100, SEEK_SET);
    fputc(c == 'a' ? 'b' : 'a', f);
    fclose(f);
    CHECK(dsp_input_cache_verify(entry, refs[0].bytes, refs[0].hash) == 0);
    REQUIRE(put(&t, "in/cc.jsonl.gz", gz.data, gz.len) == 0);
    config_init(&cfg, &t, "out/damaged");
    cfg.format = DSP_FMT_JSONL;
    cfg.input_cache = refs;
    st = dsp_pipeline_run(&cfg, inputs, 2, &again, &err);
    CHECKF(st == DSP_OK, "%s", err.msg);
    CHECK(access(entry, F_OK) != 0);
    if (st == DSP_OK) {
        REQUIRE(again.nfiles == 1);
        CHECK_EQ_STR(again.files[0].sha256, map.files[0].sha256);
        dsp_pipeline_result_free(&again);
    }

    /* Without the entry the object is read, as before the cache. */
    config_init(&cfg, &t, "out/fallback");
    cfg.format = DSP_FMT_JSONL;
    cfg.input_cache = refs;
    st = dsp_pipeline_run(&cfg, inputs, 2, &again, &err);
    CHECKF(st == DSP_OK, "%s", err.msg);
    if (st == DSP_OK) {
        REQUIRE(again.nfiles == 1);
        CHECK_EQ_STR(again.files[0].sha256, map.files[0].sha256);
        dsp_pipeline_result_free(&again);
    }

    /* A job's entries go together. */
    REQUIRE(dsp_pipeline_run(&(dsp_pipeline_config){.out_store = t.store,
                                                    .out_prefix = "out/map2",
                                                    .cache_job = "job-1"},
                             inputs, 1, &again, &err) == DSP_OK);
    CHECK(again.cached[0].ok == 1);
    char *name2 = dsp_input_cache_name("job-1", "out/map2", 0);
    char *entry2 = dsp_input_cache_find(name2, again.cached[0].bytes);
    CHECK(entry2 != NULL);
    free(entry2);
    char *prefix = dsp_input_cache_job_prefix("job-1");
    dsp_input_cache_remove_prefix(prefix);
    CHECK(dsp_input_cache_find(name2, again.cached[0].bytes) == NULL);
    dsp_pipeline_result_free(&again);

    free(prefix);
    free(name2);
    free(plain_name);
    free(entry);
    free(name);
    dsp_pipeline_result_free(&map);
    dsp_buf_free(&gz);
    free(gz_path);
    unsetenv("DSPARK_INPUT_CACHE");
    temp_store_close(&t);
}

TEST_MAIN({"pipeline no steps", test_pipeline_no_steps},
          {"pipeline input cache", test_pipeline_input_cache},
          {"pipeline with operators", test_pipeline_with_operators},
          {"pipeline shards", test_pipeline_shards},
          {"pipeline corrupt input", test_pipeline_corrupt_input},
          {"pipeline cancel", test_pipeline_cancel},
          {"pipeline warc input", test_pipeline_warc_input},
          {"pipeline byte ranges", test_pipeline_byte_ranges},
          {"pipeline emit only", test_pipeline_emit_only},
          {"pipeline skip rejects", test_pipeline_skip_rejects},
          {"pipeline detect format", test_pipeline_detect_format},
          {"pipeline invalid config", test_pipeline_invalid_config},
          {"pipeline s3 round trip", test_pipeline_s3_round_trip})
