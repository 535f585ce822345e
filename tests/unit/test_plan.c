/* Tests of the planner: glob matching, expansion against a real local store
 * (and S3 when configured), splitting, packing, stages, determinism and
 * the plan.json round trip. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/util.h"
#include "../../planner/plan.h"
#include "test.h"

#define MiB (1024ULL * 1024)

/* ---- helpers ---- */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/dspark-test-plan-XXXXXX";
    char *dir = mkdtemp(tmpl);
    return dir ? dsp_xstrdup(dir) : NULL;
}

static void remove_tree(const char *dir)
{
    char *cmd = dsp_xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", dir);
    free(cmd);
}

/* Write `size` bytes to dir/rel, creating parent directories. The content
 * starts with `head` (may be NULL) and is padded with JSONL lines. */
static int write_file(const char *dir, const char *rel, size_t size, const void *head,
                      size_t head_len)
{
    char *path = dsp_xasprintf("%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    free(path);
    if (fd < 0)
        return -1;
    char *data = dsp_xmalloc(size + 1);
    static const char line[] = "{\"id\":\"x\",\"text\":\"hello world\"}\n";
    for (size_t i = 0; i < size; i++)
        data[i] = line[i % (sizeof line - 1)];
    if (head)
        memcpy(data, head, head_len < size ? head_len : size);
    ssize_t w = write(fd, data, size);
    free(data);
    close(fd);
    return w == (ssize_t)size ? 0 : -1;
}

/* A sparse file of `size` bytes (reads as zeros, so not compressed). */
static int write_sparse(const char *dir, const char *rel, off_t size)
{
    char *path = dsp_xasprintf("%s/%s", dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    free(path);
    if (fd < 0)
        return -1;
    int rc = ftruncate(fd, size);
    close(fd);
    return rc;
}

static dsp_spec *spec_for(const char *inputs_json, const char *options_json, const char *steps)
{
    char *text = dsp_xasprintf("{\"name\":\"t\",\"input\":%s,\"steps\":%s,"
                               "\"output\":{\"uri\":\"/tmp/dspark-test-plan-out\"},"
                               "\"options\":%s}",
                               inputs_json, steps ? steps : "[]",
                               options_json ? options_json : "{}");
    dsp_spec *spec = NULL;
    dsp_err err = {0};
    if (dsp_spec_parse(text, strlen(text), "test.json", &spec, &err))
        fprintf(stderr, "  spec error: %s\n", err.msg);
    free(text);
    return spec;
}

static dsp_plan *build(const dsp_spec *spec, dsp_err *err)
{
    dsp_plan *plan = NULL;
    if (dsp_plan_build(spec, &plan, err))
        return NULL;
    return plan;
}

/* Every byte of every input object is covered exactly once, in URI order. */
static void check_coverage(const dsp_plan *plan, size_t want_objects, uint64_t want_bytes)
{
    const dsp_plan_stage *s0 = &plan->stages[0];
    size_t objects = 0;
    uint64_t bytes = 0, next_offset = 0;
    char *last_uri = NULL;
    for (size_t t = 0; t < s0->ntasks; t++) {
        uint64_t task_bytes = 0;
        for (size_t i = 0; i < s0->tasks[t].ninputs; i++) {
            const dsp_plan_input *in = &s0->tasks[t].inputs[i];
            uint64_t len = in->length < 0 ? in->size - in->offset : (uint64_t)in->length;
            char *uri = dsp_uri_join(in->uri_root, in->key);
            if (!last_uri || strcmp(last_uri, uri)) {
                CHECKF(in->offset == 0, "%s starts at %llu", uri, (unsigned long long)in->offset);
                if (last_uri)
                    CHECKF(strcmp(last_uri, uri) < 0, "%s after %s", uri, last_uri);
                objects++;
            } else {
                CHECKF(in->offset == next_offset, "%s range at %llu, expected %llu", uri,
                       (unsigned long long)in->offset, (unsigned long long)next_offset);
            }
            next_offset = in->offset + len;
            CHECK(next_offset <= in->size);
            free(last_uri);
            last_uri = uri;
            bytes += len;
            task_bytes += len;
        }
        CHECK_EQ_INT(task_bytes, s0->tasks[t].bytes);
    }
    free(last_uri);
    CHECK_EQ_INT(objects, want_objects);
    CHECK_EQ_INT(bytes, want_bytes);
    CHECK_EQ_INT(plan->total_bytes, want_bytes);
}

/* ---- glob ---- */

static void test_glob_match_table(void)
{
    static const struct {
        const char *pattern, *key;
        int match;
    } cases[] = {
        {"*.jsonl", "a.jsonl", 1},
        {"*.jsonl", "a.jsonl.gz", 0},
        {"*.jsonl", "d/a.jsonl", 0},
        {"d/*.jsonl", "d/a.jsonl", 1},
        {"part-?.jsonl", "part-1.jsonl", 1},
        {"part-?.jsonl", "part-10.jsonl", 0},
        {"part-?.jsonl", "part-/.jsonl", 0},
        {"part-[0-4].jsonl", "part-3.jsonl", 1},
        {"part-[0-4].jsonl", "part-7.jsonl", 0},
        {"part-[!0-4].jsonl", "part-7.jsonl", 1},
        {"part-[^0-4].jsonl", "part-3.jsonl", 0},
        {"part-[ab].jsonl", "part-b.jsonl", 1},
        {"**/*.gz", "a.gz", 1},
        {"**/*.gz", "x/y/z/a.gz", 1},
        {"**/*.gz", "x/y/a.zst", 0},
        {"cc/**/part-*.gz", "cc/part-1.gz", 1},
        {"cc/**/part-*.gz", "cc/2019/07/part-1.gz", 1},
        {"cc/**/part-*.gz", "ccx/part-1.gz", 0},
        {"cc/**", "cc/a/b/c", 1},
        {"cc/**", "cd/a", 0},
        {"exact.jsonl", "exact.jsonl", 1},
        {"exact.jsonl", "exact.jsonl2", 0},
        {"a\\*b", "a*b", 1},
        {"a\\*b", "axb", 0},
        {"[unclosed", "[unclosed", 1},
        {"", "", 1},
        {"*", "", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECKF(dsp_glob_match(cases[i].pattern, cases[i].key) == cases[i].match,
               "pattern %s key %s", cases[i].pattern, cases[i].key);
}

/* Could some key under the prefix match the glob? */
static void test_glob_prefix_table(void)
{
    static const struct {
        const char *pattern, *prefix;
        int match;
    } cases[] = {
        {"/tmp/tw/ov/**", "/tmp/tw/ov/out/", 1},
        {"/tmp/tw/ov/**/*.jsonl", "/tmp/tw/ov/out/", 1},
        {"/tmp/tw/ov/*", "/tmp/tw/ov/out/", 0},
        {"/tmp/tw/ov/*/*", "/tmp/tw/ov/out/", 1},
        {"/tmp/tw/ov/*.jsonl", "/tmp/tw/ov/out/", 0},
        {"/tmp/tw/ov/out/part-*", "/tmp/tw/ov/out/", 1},
        {"/tmp/tw/ov/o?t/*", "/tmp/tw/ov/out/", 1},
        {"/tmp/tw/ov/[a-n]*/*", "/tmp/tw/ov/out/", 0},
        {"/tmp/tw/in/**", "/tmp/tw/out/", 0},
        {"/tmp/tw/out", "/tmp/tw/out/", 0},
        {"/tmp/tw/out/x.jsonl", "/tmp/tw/out/", 1},
        {"s3://b/data/**", "s3://b/data/clean/", 1},
        {"s3://b/data/**", "s3://other/data/clean/", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECKF(dsp_glob_match_prefix(cases[i].pattern, cases[i].prefix) == cases[i].match,
               "pattern %s prefix %s", cases[i].pattern, cases[i].prefix);
}

/* ---- stage cutting ---- */

static void test_stage_cutting(void)
{
    size_t stage_of[8];
    /* (length, stats) both narrow: one fused stage. */
    int narrow[] = {0, 0};
    CHECK_EQ_INT(dsp_plan_cut_stages(narrow, 2, stage_of), 1);
    CHECK_EQ_INT(stage_of[0], 0);
    CHECK_EQ_INT(stage_of[1], 0);
    /* filter, dedup (wide), filter, sort (wide), filter. */
    int mixed[] = {0, 1, 0, 1, 0};
    CHECK_EQ_INT(dsp_plan_cut_stages(mixed, 5, stage_of), 3);
    CHECK_EQ_INT(stage_of[0], 0);
    CHECK_EQ_INT(stage_of[1], 1);
    CHECK_EQ_INT(stage_of[2], 1);
    CHECK_EQ_INT(stage_of[3], 2);
    CHECK_EQ_INT(stage_of[4], 2);
    /* A leading wide operator still needs a map stage to read the inputs. */
    int leading[] = {1, 0};
    CHECK_EQ_INT(dsp_plan_cut_stages(leading, 2, stage_of), 2);
    CHECK_EQ_INT(stage_of[0], 1);
    CHECK_EQ_INT(stage_of[1], 1);
    /* Two wide operators in a row: each gets its own stage. */
    int twice[] = {1, 1};
    CHECK_EQ_INT(dsp_plan_cut_stages(twice, 2, stage_of), 3);
    CHECK_EQ_INT(stage_of[1], 2);
    CHECK_EQ_INT(dsp_plan_cut_stages(NULL, 0, stage_of), 1);
}

static void test_narrow_steps_fused(void)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    REQUIRE(write_file(dir, "a.jsonl", 100, NULL, 0) == 0);
    char *inputs = dsp_xasprintf("\"%s/*.jsonl\"", dir);
    dsp_spec *spec = spec_for(inputs, NULL, "[{\"op\":\"length\",\"min_words\":2},{\"op\":\"stats\"}]");
    REQUIRE(spec != NULL);
    dsp_err err = {0};
    dsp_plan *plan = build(spec, &err);
    CHECKF(plan != NULL, "%s", err.msg);
    if (plan) {
        CHECK_EQ_INT(plan->nstages, 1);
        CHECK_EQ_STR(plan->stages[0].kind, "map");
        CHECK_EQ_STR(plan->stages[0].id, "s0");
        CHECK_EQ_INT(plan->stages[0].ndeps, 0);
        CHECK_EQ_INT(cJSON_GetArraySize(plan->stages[0].steps), 2);
        CHECK_EQ_INT(plan->total_tasks, 1);
    }
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    free(inputs);
    remove_tree(dir);
    free(dir);
}

/* A wide operator the registry does not have, planned through the
 * lookup hook. */
static const dsp_op_def fake_wide_def = {.name = "fake_dedup", .summary = "test only", .wide = 1};

static const dsp_op_def *fake_lookup(const char *name)
{
    if (!strcmp(name, "fake_dedup"))
        return &fake_wide_def;
    return dsp_op_find(name);
}

static void test_wide_stage_cut(void)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%d.jsonl", i);
        REQUIRE(write_file(dir, name, 3000, NULL, 0) == 0);
    }
    char *inputs = dsp_xasprintf("\"%s/*.jsonl\"", dir);
    dsp_spec *spec = spec_for(inputs, "{\"target_task_bytes\":4096}",
                              "[{\"op\":\"length\",\"min_words\":2}]");
    REQUIRE(spec != NULL);
    /* length | fake_dedup | stats | fake_dedup */
    cJSON_AddItemToArray(spec->steps, cJSON_Parse("{\"op\":\"fake_dedup\"}"));
    cJSON_AddItemToArray(spec->steps, cJSON_Parse("{\"op\":\"stats\"}"));
    cJSON_AddItemToArray(spec->steps, cJSON_Parse("{\"op\":\"fake_dedup\"}"));
    dsp_plan_set_op_lookup(fake_lookup);
    dsp_err err = {0};
    dsp_plan *plan = build(spec, &err);
    dsp_plan_set_op_lookup(NULL);
    REQUIRE(plan != NULL);
    CHECK_EQ_INT(plan->nstages, 3);
    REQUIRE(plan->nstages == 3);
    const dsp_plan_stage *s0 = &plan->stages[0], *s1 = &plan->stages[1], *s2 = &plan->stages[2];
    CHECK_EQ_STR(s0->kind, "map");
    CHECK_EQ_INT(cJSON_GetArraySize(s0->steps), 1);
    CHECK_EQ_INT(s0->ntasks, 10); /* 3,000 bytes is at least half of 4,096: one task each */
    CHECK_EQ_STR(s1->kind, "fake_dedup");
    CHECK_EQ_STR(s1->id, "s1");
    CHECK_EQ_INT(cJSON_GetArraySize(s1->steps), 2);
    REQUIRE(s1->ndeps == 1);
    CHECK_EQ_INT(s1->deps[0], 0);
    /* 30,000 input bytes over a 4,096 target: ceil = 8 partitions. */
    CHECK_EQ_INT(s1->ntasks, 8);
    CHECK_EQ_INT(s1->bytes, 30000);
    uint64_t sum = 0;
    for (size_t t = 0; t < s1->ntasks; t++) {
        CHECK_EQ_INT(s1->tasks[t].ninputs, 0);
        CHECK(s1->tasks[t].bytes == 3750);
        sum += s1->tasks[t].bytes;
    }
    CHECK_EQ_INT(sum, 30000);
    CHECK_EQ_STR(s2->kind, "fake_dedup");
    CHECK_EQ_INT(s2->deps[0], 1);
    CHECK_EQ_INT(cJSON_GetArraySize(s2->steps), 1);
    CHECK_EQ_INT(plan->total_tasks, 10 + 8 + 8);

    /* The multi-stage plan survives the JSON round trip too. */
    char *ja = dsp_plan_to_json(plan);
    dsp_plan *back = NULL;
    REQUIRE(dsp_plan_from_json(ja, strlen(ja), &back, &err) == DSP_OK);
    char *jb = dsp_plan_to_json(back);
    CHECK_EQ_STR(ja, jb);
    CHECK_EQ_INT(back->stages[2].deps[0], 1);

    /* Shuffle requests: each map task writes one object and every
     * partition reads a slice of each map output. */
    dsp_plan_estimate e;
    dsp_plan_estimate_requests(plan, spec, &e);
    CHECK_EQ_INT(e.shuffle_puts, 10 + 8);
    CHECK_EQ_INT(e.shuffle_gets, 10 * 8 + 8 * 8);
    CHECK_EQ_INT(e.input_objects, 10);
    CHECK_EQ_INT(e.input_gets, 10);
    CHECK_EQ_INT(e.output_shards, 8);
    /* 3 GETs per task, plus the previous stage's seal after stage 0. */
    CHECK_EQ_INT(e.coord_gets, 26 * 3 + 16);
    CHECK_EQ_INT(e.coord_puts, 5 + 26 * 2 + 3);
    free(ja);
    free(jb);
    dsp_plan_free(back);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    free(inputs);
    remove_tree(dir);
    free(dir);
}

static void test_estimate_large_objects(void)
{
    /* One 100 MiB .gz (whole) and one 100 MiB plain file, default targets. */
    dsp_plan_object objs[2];
    memset(objs, 0, sizeof objs);
    objs[0].uri_root = dsp_xstrdup("s3://b");
    objs[0].key = dsp_xstrdup("a.jsonl.gz");
    objs[0].size = 100 * MiB;
    objs[1].uri_root = dsp_xstrdup("s3://b");
    objs[1].key = dsp_xstrdup("b.jsonl");
    objs[1].size = 100 * MiB;
    objs[1].splittable = 1;
    dsp_spec *spec = spec_for("\"/unused\"", "{\"lease_seconds\":10}", NULL);
    REQUIRE(spec != NULL);
    dsp_plan *plan = NULL;
    dsp_err err = {0};
    REQUIRE(dsp_plan_from_objects(spec, objs, 2, &plan, &err) == DSP_OK);
    /* The .gz is one task, the plain file two ranges of 50 MiB. */
    CHECK_EQ_INT(plan->stages[0].ntasks, 3);
    dsp_plan_estimate e;
    dsp_plan_estimate_requests(plan, spec, &e);
    /* 100 MiB / 8 MiB = 13 GETs, 2 x (50 MiB: 7 GETs) + 1 to finish the
     * first range's last record. */
    CHECK_EQ_INT(e.input_gets, 13 + 7 + 7 + 1);
    /* Output: each task writes one shard (under 128 MiB) by multipart:
     * create + parts + complete, plus one publish COPY. */
    CHECK_EQ_INT(e.output_puts, (2 + 13 + 1) + 2 * (2 + 7 + 1));
    /* A 100 MiB task takes 1 + 2 s; renewals every 5 s: none. */
    CHECK(e.max_task_seconds > 2.9);
    CHECK(e.max_task_seconds < 3.1);
    CHECK_EQ_INT(e.coord_puts, 5 + 3 * 2 + 1);

    /* A 4 TiB plain file at a 1 KiB target would be 4 billion tasks. */
    objs[1].size = 4ULL << 40;
    dsp_spec *tiny = spec_for("\"/unused\"", "{\"target_task_bytes\":1024}", NULL);
    REQUIRE(tiny != NULL);
    dsp_plan *huge = NULL;
    CHECK(dsp_plan_from_objects(tiny, objs, 2, &huge, &err) == DSP_EINVAL);
    CHECK(huge == NULL);
    CHECKF(strstr(err.msg, "raise target_task_bytes") != NULL, "%s", err.msg);
    dsp_spec_free(tiny);
    double want = (double)e.gets * 0.0004 / 1000 + (double)e.puts * 0.005 / 1000;
    CHECK(e.total_usd > want - 1e-12);
    CHECK(e.total_usd < want + 1e-12);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    for (int i = 0; i < 2; i++) {
        free(objs[i].uri_root);
        free(objs[i].key);
    }
}

/* ---- expansion ---- */

static void test_expand_local_globs(void)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    const char *files[] = {"a.jsonl", "b.jsonl", "c.jsonl.gz", "sub/d.jsonl", "sub/deep/e.jsonl",
                           "part-1.jsonl", "part-2.jsonl", "part-x.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        REQUIRE(write_file(dir, files[i], 10 + i, NULL, 0) == 0);

    static const struct {
        const char *glob;
        size_t count;
    } cases[] = {
        {"*.jsonl", 5},        {"**/*.jsonl", 7}, {"part-?.jsonl", 3}, {"part-[0-9].jsonl", 2},
        {"sub/**", 2},         {"*.gz", 1},       {"a.jsonl", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *inputs = dsp_xasprintf("\"%s/%s\"", dir, cases[i].glob);
        dsp_spec *spec = spec_for(inputs, NULL, NULL);
        REQUIRE(spec != NULL);
        dsp_plan_object *objs = NULL;
        size_t n = 0;
        dsp_err err = {0};
        dsp_status st = dsp_plan_expand(spec, &objs, &n, &err);
        CHECKF(st == DSP_OK, "%s: %s", cases[i].glob, err.msg);
        CHECKF(n == cases[i].count, "%s matched %zu, expected %zu", cases[i].glob, n,
               cases[i].count);
        for (size_t j = 0; j < n; j++) {
            CHECK(strncmp(objs[j].uri_root, "file://", 7) == 0);
            CHECK(objs[j].size >= 10);
            CHECK(objs[j].etag[0] != '\0');
        }
        dsp_plan_objects_free(objs, n);
        dsp_spec_free(spec);
        free(inputs);
    }

    /* Two globs that overlap: each object appears once in the plan. */
    char *inputs = dsp_xasprintf("[\"%s/*.jsonl\",\"%s/a.jsonl\",\"%s/sub/*.jsonl\"]", dir, dir, dir);
    dsp_spec *spec = spec_for(inputs, NULL, NULL);
    REQUIRE(spec != NULL);
    dsp_err err = {0};
    dsp_plan *plan = build(spec, &err);
    CHECKF(plan != NULL, "%s", err.msg);
    if (plan)
        check_coverage(plan, 6, 10 + 11 + 13 + 15 + 16 + 17);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    free(inputs);
    remove_tree(dir);
    free(dir);
}

static void test_expand_no_match(void)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    REQUIRE(write_file(dir, "data/a.jsonl", 10, NULL, 0) == 0);
    char *inputs = dsp_xasprintf("[\"%s/data/*.jsonl\",\"%s/data/*.warc.gz\"]", dir, dir);
    dsp_spec *spec = spec_for(inputs, NULL, NULL);
    REQUIRE(spec != NULL);
    dsp_err err = {0};
    dsp_plan *plan = build(spec, &err);
    CHECK(plan == NULL);
    CHECK(err.code == DSP_ENOTFOUND);
    CHECKF(strstr(err.msg, "input[1]") && strstr(err.msg, "/data/*.warc.gz\" matches no object"),
           "%s", err.msg);
    dsp_spec_free(spec);
    free(inputs);

    /* A directory named without a glob gets a hint. */
    inputs = dsp_xasprintf("\"%s/data\"", dir);
    spec = spec_for(inputs, NULL, NULL);
    REQUIRE(spec != NULL);
    plan = build(spec, &err);
    CHECK(plan == NULL);
    CHECKF(strstr(err.msg, "1 objects are below it") && strstr(err.msg, "/data/**"), "%s",
           err.msg);
    dsp_spec_free(spec);
    free(inputs);

    /* A root directory that does not exist. */
    inputs = dsp_xasprintf("\"%s/missing/*.jsonl\"", dir);
    spec = spec_for(inputs, NULL, NULL);
    REQUIRE(spec != NULL);
    plan = build(spec, &err);
    CHECK(plan == NULL);
    CHECKF(strstr(err.msg, "input[0]") != NULL, "%s", err.msg);
    dsp_spec_free(spec);
    free(inputs);
    remove_tree(dir);
    free(dir);
}

static void test_expand_s3(void)
{
    const char *bucket = getenv("DSPARK_TEST_S3_BUCKET");
    if (!bucket || !getenv("AWS_ENDPOINT_URL"))
        SKIP("no S3 server (set AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET)");
    char *root = dsp_xasprintf("s3://%s", bucket);
    dsp_store *s = NULL;
    dsp_err err = {0};
    if (dsp_store_open(root, NULL, &s, &err) == DSP_EUNSUPPORTED) {
        free(root);
        SKIP("%s", err.msg);
    }
    REQUIRE(s != NULL);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "test-plan-%llx", (unsigned long long)dsp_rand64());
    const char *keys[] = {"a.jsonl", "b.jsonl.gz", "x/c.jsonl", "x/y/d.jsonl"};
    for (size_t i = 0; i < 4; i++) {
        char *key = dsp_xasprintf("%s/%s", prefix, keys[i]);
        CHECKF(dsp_store_put(s, key, "{}\n", 3, NULL, NULL, &err) == DSP_OK, "%s", err.msg);
        free(key);
    }
    char *inputs = dsp_xasprintf("[\"s3://%s/%s/**/*.jsonl\"]", bucket, prefix);
    dsp_spec *spec = spec_for(inputs, NULL, NULL);
    REQUIRE(spec != NULL);
    dsp_plan *plan = build(spec, &err);
    CHECKF(plan != NULL, "%s", err.msg);
    if (plan) {
        check_coverage(plan, 3, 9);
        CHECK(strncmp(plan->stages[0].tasks[0].inputs[0].uri_root, "s3://", 5) == 0);
    }
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    free(inputs);

    inputs = dsp_xasprintf("[\"s3://%s/%s/*.zst\"]", bucket, prefix);
    spec = spec_for(inputs, NULL, NULL);
    REQUIRE(spec != NULL);
    plan = build(spec, &err);
    CHECK(plan == NULL);
    CHECKF(strstr(err.msg, "matches no object") != NULL, "%s", err.msg);
    dsp_spec_free(spec);
    free(inputs);

    for (size_t i = 0; i < 4; i++) {
        char *key = dsp_xasprintf("%s/%s", prefix, keys[i]);
        const char *k = key;
        dsp_store_delete(s, &k, 1, &err);
        free(key);
    }
    dsp_store_close(s);
    free(root);
}

/* ---- splitting and packing ---- */

static void test_split_large_plain_file(void)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    const off_t size = 200 * 1000 * 1000;
    REQUIRE(write_sparse(dir, "big.jsonl", size) == 0);
    char *inputs = dsp_xasprintf("\"%s/big.jsonl\"", dir);
    dsp_spec *spec = spec_for(inputs, NULL, NULL); /* default target: 64 MiB */
    REQUIRE(spec != NULL);
    dsp_err err = {0};
    dsp_plan *plan = build(spec, &err);
    REQUIRE(plan != NULL);
    const dsp_plan_stage *s0 = &plan->stages[0];
    CHECK_EQ_INT(s0->ntasks, 3);
    for (size_t t = 0; t < s0->ntasks; t++) {
        REQUIRE(s0->tasks[t].ninputs == 1);
        const dsp_plan_input *in = &s0->tasks[t].inputs[0];
        CHECK(in->length > 0);
        CHECK((uint64_t)in->length <= 64 * MiB);
        CHECK((uint64_t)in->length >= 60 * MiB);
        CHECK_EQ_INT(in->size, size);
    }
    check_coverage(plan, 1, (uint64_t)size);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    free(inputs);
    remove_tree(dir);
    free(dir);
}

static void test_pack_small_files(void)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "small-%03d.jsonl", i);
        REQUIRE(write_file(dir, name, 1000, NULL, 0) == 0);
    }
    char *inputs = dsp_xasprintf("\"%s/*.jsonl\"", dir);
    dsp_spec *spec = spec_for(inputs, "{\"target_task_bytes\":\"32KiB\"}", NULL);
    REQUIRE(spec != NULL);
    dsp_err err = {0};
    dsp_plan *plan = build(spec, &err);
    REQUIRE(plan != NULL);
    const dsp_plan_stage *s0 = &plan->stages[0];
    /* 100 x (1000 + 32) cost bytes over a 32 KiB target: 4 tasks of 25. */
    CHECK_EQ_INT(s0->ntasks, 4);
    for (size_t t = 0; t < s0->ntasks; t++) {
        CHECK_EQ_INT(s0->tasks[t].ninputs, 25);
        CHECK_EQ_INT(s0->tasks[t].bytes, 25000);
        CHECK_EQ_INT(s0->tasks[t].inputs[0].length, -1);
    }
    check_coverage(plan, 100, 100000);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    free(inputs);
    remove_tree(dir);
    free(dir);
}

static void test_pack_balance(void)
{
    /* A listing only: 37 files of 3 KiB, one empty file, a 200 KiB .gz
     * and 500 empty files, with a 16 KiB target. */
    size_t n = 0;
    dsp_plan_object objs[600];
    memset(objs, 0, sizeof objs);
    for (int i = 0; i < 37; i++, n++) {
        objs[n].key = dsp_xasprintf("a/%03d.jsonl", i);
        objs[n].size = 3072;
        objs[n].splittable = 1;
    }
    objs[n].key = dsp_xstrdup("a/empty.jsonl");
    objs[n++].splittable = 1;
    objs[n].key = dsp_xstrdup("b/big.jsonl.gz");
    objs[n++].size = 200 * 1024;
    for (int i = 0; i < 500; i++, n++)
        objs[n].key = dsp_xasprintf("c/%03d.jsonl", i);
    for (size_t i = 0; i < n; i++) {
        objs[i].uri_root = dsp_xstrdup("file:///data");
        snprintf(objs[i].etag, sizeof objs[i].etag, "e%zu", i);
    }
    dsp_spec *spec = spec_for("\"/unused\"", "{\"target_task_bytes\":\"16KiB\"}", NULL);
    REQUIRE(spec != NULL);
    dsp_plan *plan = NULL;
    dsp_err err = {0};
    REQUIRE(dsp_plan_from_objects(spec, objs, n, &plan, &err) == DSP_OK);
    const dsp_plan_stage *s0 = &plan->stages[0];
    /* Cost per object at this target: 16 KiB / 1024 = 16 bytes. The first
     * run (37 x 3,088 + 16 = 114,272) packs into ceil(/16,384) = 7 tasks,
     * the .gz is alone, and the 500 empty files (cost 8,000) make one. */
    CHECK_EQ_INT(s0->ntasks, 9);
    uint64_t target = 16 * 1024;
    size_t inputs = 0;
    for (size_t t = 0; t < s0->ntasks; t++) {
        const dsp_plan_task *task = &s0->tasks[t];
        CHECKF(task->ninputs > 0, "task %zu is empty", t);
        inputs += task->ninputs;
        if (!strcmp(task->inputs[0].key, "b/big.jsonl.gz")) {
            CHECK_EQ_INT(t, 7);
            CHECK_EQ_INT(task->ninputs, 1);
            CHECK_EQ_INT(task->inputs[0].length, -1);
        } else if (t < 7) {
            /* Balanced shares of 114,272 / 7 = 16,325 cost bytes each. */
            CHECKF(task->bytes >= 4 * 3072 && task->bytes <= target * 3 / 2,
                   "task %zu has %llu bytes", t, (unsigned long long)task->bytes);
        }
    }
    CHECK_EQ_INT(inputs, n);
    CHECK_EQ_INT(s0->tasks[8].ninputs, 500);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    for (size_t i = 0; i < n; i++) {
        free(objs[i].key);
        free(objs[i].uri_root);
    }
}

static void test_compressed_files_whole(void)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    static const unsigned char gzip_magic[] = {0x1f, 0x8b, 0x08, 0x00};
    static const unsigned char zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};
    REQUIRE(write_file(dir, "a.jsonl.gz", 5000, gzip_magic, 4) == 0);
    REQUIRE(write_file(dir, "b.jsonl.zst", 5000, zstd_magic, 4) == 0);
    REQUIRE(write_file(dir, "c.warc.gz", 5000, gzip_magic, 4) == 0);
    /* Mislabeled: named .jsonl but gzip inside. */
    REQUIRE(write_file(dir, "d.jsonl", 5000, gzip_magic, 4) == 0);
    REQUIRE(write_file(dir, "e.jsonl", 5000, NULL, 0) == 0);
    char *inputs = dsp_xasprintf("\"%s/*\"", dir);
    dsp_spec *spec = spec_for(inputs, "{\"target_task_bytes\":2000}", NULL);
    REQUIRE(spec != NULL);
    dsp_err err = {0};
    dsp_plan *plan = build(spec, &err);
    REQUIRE(plan != NULL);
    const dsp_plan_stage *s0 = &plan->stages[0];
    /* Four whole files, then e.jsonl split into 3 ranges of 1667 bytes. */
    CHECK_EQ_INT(s0->ntasks, 7);
    const char *whole[] = {"a.jsonl.gz", "b.jsonl.zst", "c.warc.gz", "d.jsonl"};
    for (size_t t = 0; t < 4 && t < s0->ntasks; t++) {
        CHECK_EQ_INT(s0->tasks[t].ninputs, 1);
        CHECK_EQ_STR(s0->tasks[t].inputs[0].key, whole[t]);
        CHECK_EQ_INT(s0->tasks[t].inputs[0].offset, 0);
        CHECK_EQ_INT(s0->tasks[t].inputs[0].length, -1);
    }
    for (size_t t = 4; t < s0->ntasks; t++) {
        CHECK_EQ_STR(s0->tasks[t].inputs[0].key, "e.jsonl");
        CHECK_EQ_INT(s0->tasks[t].inputs[0].offset, (t - 4) * 1667);
        CHECK_EQ_INT(s0->tasks[t].inputs[0].length, t < 6 ? 1667 : 5000 - 2 * 1667);
    }
    check_coverage(plan, 5, 25000);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
    free(inputs);
    remove_tree(dir);
    free(dir);
}

/* ---- determinism and JSON ---- */

static void make_tree(const char *dir)
{
    for (int i = 0; i < 60; i++) {
        char name[64];
        snprintf(name, sizeof name, "d%d/part-%02d.jsonl", i % 3, i);
        if (write_file(dir, name, 100 + (size_t)i * 37, NULL, 0) != 0)
            fprintf(stderr, "  could not write %s\n", name);
    }
    if (write_file(dir, "d0/z.jsonl.gz", 4000, "\x1f\x8b", 2) != 0)
        fprintf(stderr, "  could not write z.jsonl.gz\n");
}

static void test_plan_deterministic(void)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    make_tree(dir);
    char *inputs = dsp_xasprintf("[\"%s/**/*.jsonl\",\"%s/d0/*.gz\"]", dir, dir);
    dsp_spec *spec = spec_for(inputs, "{\"target_task_bytes\":1500}", "[{\"op\":\"stats\"}]");
    REQUIRE(spec != NULL);
    dsp_err err = {0};
    dsp_plan *a = build(spec, &err);
    dsp_plan *b = build(spec, &err);
    REQUIRE(a != NULL);
    REQUIRE(b != NULL);
    char *ja = dsp_plan_to_json(a), *jb = dsp_plan_to_json(b);
    CHECK_EQ_STR(ja, jb);

    /* Shuffle the listing: the plan must not change. */
    dsp_plan_object *objs;
    size_t n;
    REQUIRE(dsp_plan_expand(spec, &objs, &n, &err) == DSP_OK);
    CHECK_EQ_INT(n, 61);
    for (int round = 0; round < 3; round++) {
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = dsp_rand64() % (i + 1);
            dsp_plan_object tmp = objs[i];
            objs[i] = objs[j];
            objs[j] = tmp;
        }
        dsp_plan *c = NULL;
        REQUIRE(dsp_plan_from_objects(spec, objs, n, &c, &err) == DSP_OK);
        char *jc = dsp_plan_to_json(c);
        CHECK_EQ_STR(ja, jc);
        free(jc);
        dsp_plan_free(c);
    }
    dsp_plan_objects_free(objs, n);
    free(ja);
    free(jb);
    dsp_plan_free(a);
    dsp_plan_free(b);
    dsp_spec_free(spec);
    free(inputs);
    remove_tree(dir);
    free(dir);
}

static void test_plan_json_round_trip(void)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    make_tree(dir);
    REQUIRE(write_file(dir, "q\"uote\\ d.jsonl", 5000, NULL, 0) == 0);
    char *inputs = dsp_xasprintf("[\"%s/**\"]", dir);
    dsp_spec *spec = spec_for(inputs, "{\"target_task_bytes\":2000}",
                              "[{\"op\":\"length\",\"min_words\":3}]");
    REQUIRE(spec != NULL);
    dsp_err err = {0};
    dsp_plan *a = build(spec, &err);
    REQUIRE(a != NULL);
    char *ja = dsp_plan_to_json(a);
    dsp_plan *b = NULL;
    REQUIRE(dsp_plan_from_json(ja, strlen(ja), &b, &err) == DSP_OK);
    char *jb = dsp_plan_to_json(b);
    CHECK_EQ_STR(ja, jb);
    CHECK_EQ_STR(b->job_name, a->job_name);
    CHECK_EQ_STR(b->spec_hash, spec->spec_hash);
    CHECK_EQ_INT(b->nstages, a->nstages);
    CHECK_EQ_INT(b->total_tasks, a->total_tasks);
    CHECK_EQ_INT(b->total_bytes, a->total_bytes);
    for (size_t s = 0; s < a->nstages && s < b->nstages; s++) {
        const dsp_plan_stage *x = &a->stages[s], *y = &b->stages[s];
        CHECK_EQ_STR(x->id, y->id);
        CHECK_EQ_STR(x->kind, y->kind);
        CHECK_EQ_INT(x->ntasks, y->ntasks);
        CHECK(cJSON_Compare(x->steps, y->steps, 1));
        for (size_t t = 0; t < x->ntasks && t < y->ntasks; t++) {
            CHECK_EQ_STR(x->tasks[t].id, y->tasks[t].id);
            CHECK_EQ_INT(x->tasks[t].index, y->tasks[t].index);
            CHECK_EQ_INT(x->tasks[t].bytes, y->tasks[t].bytes);
            REQUIRE(x->tasks[t].ninputs == y->tasks[t].ninputs);
            for (size_t i = 0; i < x->tasks[t].ninputs; i++) {
                const dsp_plan_input *p = &x->tasks[t].inputs[i], *q = &y->tasks[t].inputs[i];
                CHECK_EQ_STR(p->uri_root, q->uri_root);
                CHECK_EQ_STR(p->key, q->key);
                CHECK_EQ_INT(p->offset, q->offset);
                CHECK_EQ_INT(p->length, q->length);
                CHECK_EQ_INT(p->size, q->size);
                CHECK_EQ_STR(p->etag, q->etag);
            }
        }
    }
    free(ja);
    free(jb);
    dsp_plan_free(a);
    dsp_plan_free(b);
    dsp_spec_free(spec);
    free(inputs);
    remove_tree(dir);
    free(dir);
}

static void test_plan_json_rejects_corrupt(void)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{", "invalid JSON"},
        {"{\"format\":\"other\"}", "format"},
        {"{\"format\":\"dspark-plan/1\",\"job\":\"j\",\"spec_hash\":\"h\",\"total_bytes\":1,"
         "\"total_tasks\":1,\"roots\":[],\"stages\":[{\"id\":\"s0\",\"kind\":\"map\",\"deps\":[],"
         "\"bytes\":1,\"steps\":[],\"tasks\":[{\"id\":\"t00000\",\"bytes\":1,"
         "\"inputs\":[[0,\"k\",0,-1,1,\"e\"]]}]}]}",
         "stages[0].tasks[0].inputs[0]: root index 0 is past the 0 roots"},
        {"{\"format\":\"dspark-plan/1\",\"job\":\"j\",\"spec_hash\":\"h\",\"total_bytes\":1,"
         "\"total_tasks\":5,\"roots\":[\"/r\"],\"stages\":[{\"id\":\"s0\",\"kind\":\"map\","
         "\"deps\":[],\"bytes\":1,\"steps\":[],\"tasks\":[]}]}",
         "total_tasks is 5 but the stages hold 0 tasks"},
        {"{\"format\":\"dspark-plan/1\",\"job\":\"j\",\"spec_hash\":\"h\",\"total_bytes\":1,"
         "\"total_tasks\":0,\"roots\":[],\"stages\":[{\"id\":\"s0\",\"kind\":\"map\","
         "\"deps\":[0],\"bytes\":1,\"steps\":[],\"tasks\":[]}]}",
         "stages[0]: depends on stage 0, which is not earlier"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dsp_plan *plan = NULL;
        dsp_err err = {0};
        dsp_status st = dsp_plan_from_json(cases[i].json, strlen(cases[i].json), &plan, &err);
        CHECK(st == DSP_ECORRUPT);
        CHECK(plan == NULL);
        CHECKF(strstr(err.msg, cases[i].want) != NULL, "\"%s\" lacks \"%s\"", err.msg,
               cases[i].want);
    }
}

/* The job store check compares normalised locations: doubled slashes and
 * ".." do not hide a store under an input glob, and a long path is not
 * damaged on the way (the output below is /tmp/dspark-test-plan-out). */
static void test_store_check_paths(void)
{
    static const struct {
        const char *input, *store;
        int rejected;
    } cases[] = {
        {"\"/data//x/../in/**\"", "/data/in/st", 1},
        {"\"/data/in/**\"", "file:///data//in/./st/", 1},
        {"\"/data/in/*.jsonl\"", "/data/in", 0},
        {"\"/data/in/**\"", "/data/other-store-with-a-long-name", 0},
        {"\"/data/in/**\"", "/tmp/dspark-test-plan-out/x/..", 1},
        {"\"/data/in/**\"", "/tmp/dspark-test-plan-out-store", 0},
        {"\"/data/in/**\"", "/tmp/dspark-test-plan-out/../dspark-test-plan-out/jobs/../st", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dsp_spec *spec = spec_for(cases[i].input, NULL, NULL);
        REQUIRE(spec != NULL);
        dsp_err err = {0};
        dsp_status st = dsp_plan_check_store(spec, cases[i].store, &err);
        CHECKF((st != DSP_OK) == cases[i].rejected, "input %s, store %s: status %d, %s",
               cases[i].input, cases[i].store, (int)st, err.msg);
        dsp_spec_free(spec);
    }
}

TEST_MAIN({"glob match table", test_glob_match_table},
          {"store check paths", test_store_check_paths},
          {"glob prefix table", test_glob_prefix_table},
          {"stage cutting", test_stage_cutting},
          {"narrow steps fused", test_narrow_steps_fused},
          {"wide stage cut", test_wide_stage_cut},
          {"estimate large objects", test_estimate_large_objects},
          {"expand local globs", test_expand_local_globs},
          {"expand no match", test_expand_no_match},
          {"expand s3", test_expand_s3},
          {"split large plain file", test_split_large_plain_file},
          {"pack small files", test_pack_small_files},
          {"pack balance", test_pack_balance},
          {"compressed files whole", test_compressed_files_whole},
          {"plan deterministic", test_plan_deterministic},
          {"plan json round trip", test_plan_json_round_trip},
          {"plan json rejects corrupt", test_plan_json_rejects_corrupt})
