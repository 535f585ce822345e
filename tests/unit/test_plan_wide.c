/*
 * test_plan_wide.c - stages the planner makes for dedup_exact,
 * dedup_minhash and repartition: reduce stages, a filter stage per dedup
 * step, their dependencies and task counts, and the plan.json round trip.
 */
#include <string.h>

#include "../../core/util.h"
#include "../../planner/plan.h"
#include "../../tasks/op_dedup.h"
#include "../../tasks/op_repartition.h"
#include "test.h"

#define MiB (1024ULL * 1024)

static dsp_spec *parse_spec(const char *steps)
{
    char *text = dsp_xasprintf("{\"name\":\"wide\",\"input\":[\"/unused/*.jsonl\"],"
                               "\"steps\":%s,\"output\":{\"uri\":\"/tmp/unused-out\"},"
                               "\"options\":{\"target_task_bytes\":1048576}}",
                               steps);
    dsp_spec *spec = NULL;
    dsp_err err = {0};
    dsp_status st = dsp_spec_parse(text, strlen(text), "test", &spec, &err);
    if (st != DSP_OK)
        fprintf(stderr, "  spec: %s\n", err.msg);
    free(text);
    return spec;
}

/* Five plain 1 MiB objects: five map tasks and five partitions. */
static dsp_plan *plan_five(const dsp_spec *spec)
{
    dsp_plan_object objs[5];
    memset(objs, 0, sizeof objs);
    for (int i = 0; i < 5; i++) {
        objs[i].uri_root = dsp_xstrdup("s3://b");
        objs[i].key = dsp_xasprintf("in/%d.jsonl", i);
        objs[i].size = MiB;
        objs[i].splittable = 1;
    }
    dsp_plan *plan = NULL;
    dsp_err err = {0};
    if (dsp_plan_from_objects(spec, objs, 5, &plan, &err) != DSP_OK)
        fprintf(stderr, "  plan: %s\n", err.msg);
    for (int i = 0; i < 5; i++) {
        free(objs[i].uri_root);
        free(objs[i].key);
    }
    return plan;
}

static void check_stage(const dsp_plan_stage *s, const char *kind, size_t ntasks, int nsteps,
                        int dep0, int dep1)
{
    CHECK_EQ_STR(s->kind, kind);
    CHECK_EQ_INT(s->ntasks, ntasks);
    CHECK_EQ_INT(cJSON_GetArraySize(s->steps), nsteps);
    size_t expected_deps = 0;
    if (dep0 >= 0)
        expected_deps = dep1 >= 0 ? 2 : 1;
    CHECK_EQ_INT(s->ndeps, expected_deps);
    if (dep0 >= 0 && s->ndeps >= 1)
        CHECK_EQ_INT(s->deps[0], dep0);
    if (dep1 >= 0 && s->ndeps >= 2)
        CHECK_EQ_INT(s->deps[1], dep1);
}

static void test_exact_then_minhash_stages(void)
{
    dsp_spec *spec = parse_spec("[{\"op\":\"length\",\"min_words\":2},{\"op\":\"dedup_exact\"},"
                                "{\"op\":\"stats\"},{\"op\":\"dedup_minhash\"},{\"op\":\"stats\"}]");
    REQUIRE(spec != NULL);
    dsp_plan *plan = plan_five(spec);
    REQUIRE(plan != NULL);
    REQUIRE(plan->nstages == 6);
    check_stage(&plan->stages[0], "map", 5, 1, -1, -1);
    check_stage(&plan->stages[1], "dedup_exact_reduce", 5, 1, 0, -1);
    check_stage(&plan->stages[2], "dedup_filter", 5, 2, 1, 0);
    check_stage(&plan->stages[3], "minhash_bands", 5, 1, 2, -1);
    check_stage(&plan->stages[4], "minhash_components", 1, 1, 3, -1);
    check_stage(&plan->stages[5], "dedup_filter", 5, 2, 4, 2);
    /* A filter stage lists its wide step first. */
    const cJSON *first = cJSON_GetArrayItem(plan->stages[5].steps, 0);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(first, "op")->valuestring, "dedup_minhash");
    CHECK_EQ_INT(plan->total_tasks, 5 + 5 + 5 + 5 + 1 + 5);
    CHECK_EQ_INT(plan->stages[2].tasks[3].bytes, MiB);

    char *ja = dsp_plan_to_json(plan);
    dsp_plan *back = NULL;
    dsp_err err = {0};
    REQUIRE(dsp_plan_from_json(ja, strlen(ja), &back, &err) == DSP_OK);
    char *jb = dsp_plan_to_json(back);
    CHECK_EQ_STR(ja, jb);
    CHECK_EQ_STR(back->stages[4].kind, "minhash_components");
    CHECK_EQ_INT(back->stages[5].deps[1], 2);
    free(ja);
    free(jb);
    dsp_plan_free(back);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
}

static void test_leading_dedup_stages(void)
{
    dsp_spec *spec = parse_spec("[{\"op\":\"dedup_exact\",\"field\":\"url\"}]");
    REQUIRE(spec != NULL);
    dsp_plan *plan = plan_five(spec);
    REQUIRE(plan != NULL);
    REQUIRE(plan->nstages == 3);
    check_stage(&plan->stages[0], "map", 5, 0, -1, -1);
    check_stage(&plan->stages[1], "dedup_exact_reduce", 5, 1, 0, -1);
    check_stage(&plan->stages[2], "dedup_filter", 5, 1, 1, 0);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
}

static void test_repartition_stage(void)
{
    dsp_spec *spec = parse_spec("[{\"op\":\"dedup_exact\"},"
                                "{\"op\":\"repartition\",\"shards\":3}]");
    REQUIRE(spec != NULL);
    dsp_plan *plan = plan_five(spec);
    REQUIRE(plan != NULL);
    REQUIRE(plan->nstages == 4);
    check_stage(&plan->stages[2], "dedup_filter", 5, 1, 1, 0);
    /* The repartition stage reads the shuffle that the filter stage wrote. */
    check_stage(&plan->stages[3], "repartition_reduce", 3, 1, 2, -1);
    dsp_plan_free(plan);
    dsp_spec_free(spec);

    /* shards 0: one shard per target_task_bytes of input. */
    spec = parse_spec("[{\"op\":\"repartition\",\"by\":\"field\",\"field\":\"lang\"}]");
    REQUIRE(spec != NULL);
    plan = plan_five(spec);
    REQUIRE(plan != NULL);
    REQUIRE(plan->nstages == 2);
    check_stage(&plan->stages[1], "repartition_reduce", 5, 1, 0, -1);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
}

static void test_sort_stages(void)
{
    dsp_spec *spec = parse_spec("[{\"op\":\"length\"},{\"op\":\"repartition\",\"by\":\"sort\","
                                "\"field\":\"url\",\"shards\":3}]");
    REQUIRE(spec != NULL);
    dsp_plan *plan = plan_five(spec);
    REQUIRE(plan != NULL);
    REQUIRE(plan->nstages == 4);
    check_stage(&plan->stages[0], "map", 5, 1, -1, -1);
    check_stage(&plan->stages[1], "sort_boundaries", 1, 1, 0, -1);
    check_stage(&plan->stages[2], "sort_map", 5, 1, 1, 0);
    check_stage(&plan->stages[3], "sort_reduce", 3, 1, 2, -1);
    CHECK_EQ_INT(plan->stages[2].tasks[4].bytes, MiB);

    char *ja = dsp_plan_to_json(plan);
    dsp_plan *back = NULL;
    dsp_err err = {0};
    REQUIRE(dsp_plan_from_json(ja, strlen(ja), &back, &err) == DSP_OK);
    char *jb = dsp_plan_to_json(back);
    CHECK_EQ_STR(ja, jb);
    free(ja);
    free(jb);
    dsp_plan_free(back);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
}

static void test_repartition_not_last(void)
{
    dsp_spec *spec = parse_spec("[{\"op\":\"repartition\"},{\"op\":\"stats\"}]");
    REQUIRE(spec != NULL);
    dsp_plan_object obj;
    memset(&obj, 0, sizeof obj);
    obj.uri_root = "s3://b";
    obj.key = "in/0.jsonl";
    obj.size = MiB;
    dsp_plan *plan = NULL;
    dsp_err err = {0};
    CHECK(dsp_plan_from_objects(spec, &obj, 1, &plan, &err) == DSP_EINVAL);
    CHECK(strstr(err.msg, "must be the last step") != NULL);
    CHECK(plan == NULL);
    dsp_spec_free(spec);
}

static void test_dedup_estimate_requests(void)
{
    dsp_spec *spec = parse_spec("[{\"op\":\"dedup_exact\"}]");
    REQUIRE(spec != NULL);
    dsp_plan *plan = plan_five(spec);
    REQUIRE(plan != NULL);
    dsp_plan_estimate e;
    dsp_plan_estimate_requests(plan, spec, &e);
    /* Map: 5 shuffle PUTs read as 5 x 5 slices. Reduce: 5 drop files read
     * by 5 filter tasks as 5 x 5 slices. Filter: each task re-reads its
     * source's 1 MiB of shards (1 GET) and order file (1 GET), which the
     * source wrote (1 PUT + 1 PUT). */
    CHECK_EQ_INT(e.shuffle_puts, 5 + 5 + 5 * 2);
    CHECK_EQ_INT(e.shuffle_gets, 25 + 25 + 5 * 2);
    dsp_plan_free(plan);
    dsp_spec_free(spec);
}

static void test_dedup_options_checked(void)
{
    dsp_spec *bad = parse_spec("[{\"op\":\"dedup_minhash\",\"bands\":0}]");
    CHECK(bad == NULL);
    dsp_spec_free(bad);
    bad = parse_spec("[{\"op\":\"dedup_minhash\",\"threshold\":1.5}]");
    CHECK(bad == NULL);
    dsp_spec_free(bad);
    bad = parse_spec("[{\"op\":\"dedup_exact\",\"fields\":\"url\"}]");
    CHECK(bad == NULL);
    dsp_spec_free(bad);
    bad = parse_spec("[{\"op\":\"repartition\",\"by\":\"field\"}]");
    CHECK(bad == NULL);
    dsp_spec_free(bad);
    bad = parse_spec("[{\"op\":\"repartition\",\"by\":\"sort\"}]");
    CHECK(bad == NULL);
    dsp_spec_free(bad);
    bad = parse_spec("[{\"op\":\"repartition\",\"by\":\"range\",\"field\":\"x\"}]");
    CHECK(bad == NULL);
    dsp_spec_free(bad);
}

/* The plan records the MinHash signature scheme, so that workers of a
 * later version with another default compute the same signatures. A
 * planned step without it is read as k permutations, the scheme of the
 * versions before the option. */
static void test_minhash_scheme_pinned(void)
{
    dsp_spec *spec = parse_spec("[{\"op\":\"dedup_minhash\"}]");
    REQUIRE(spec != NULL);
    dsp_plan *plan = plan_five(spec);
    REQUIRE(plan != NULL);
    REQUIRE(plan->nstages == 4);
    for (size_t i = 1; i <= 2; i++) {
        const cJSON *step = cJSON_GetArrayItem(plan->stages[i].steps, 0);
        const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(step, "scheme");
        REQUIRE(cJSON_IsString(scheme));
        CHECK_EQ_STR(scheme->valuestring, "one_permutation");
        dsp_dedup_minhash_opts opts;
        dsp_err err = {0};
        REQUIRE(dsp_op_dedup_minhash_plan_config(step, &opts, &err) == DSP_OK);
        CHECK(opts.params.scheme == DSP_MINHASH_ONE_PERMUTATION);
    }
    dsp_plan_free(plan);
    dsp_spec_free(spec);

    spec = parse_spec("[{\"op\":\"dedup_minhash\",\"scheme\":\"k_permutations\"}]");
    REQUIRE(spec != NULL);
    plan = plan_five(spec);
    REQUIRE(plan != NULL);
    const cJSON *step = cJSON_GetArrayItem(plan->stages[1].steps, 0);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(step, "scheme")->valuestring, "k_permutations");
    dsp_plan_free(plan);
    dsp_spec_free(spec);

    cJSON *old_step = cJSON_Parse("{\"op\":\"dedup_minhash\"}");
    dsp_dedup_minhash_opts opts;
    dsp_err err = {0};
    REQUIRE(dsp_op_dedup_minhash_plan_config(old_step, &opts, &err) == DSP_OK);
    CHECK(opts.params.scheme == DSP_MINHASH_K_PERMUTATIONS);
    REQUIRE(dsp_op_dedup_minhash_config(old_step, &opts, &err) == DSP_OK);
    CHECK(opts.params.scheme == DSP_MINHASH_ONE_PERMUTATION);
    cJSON_Delete(old_step);
}

/* The plan records how repartition by field hashes values. A planned step
 * without "field_hash" is read as hashing the JSON text, as the versions
 * before the option did. */
static void test_repartition_hash_pinned(void)
{
    dsp_spec *spec = parse_spec("[{\"op\":\"repartition\",\"by\":\"field\",\"field\":\"k\"}]");
    REQUIRE(spec != NULL);
    dsp_plan *plan = plan_five(spec);
    REQUIRE(plan != NULL);
    REQUIRE(plan->nstages == 2);
    const cJSON *step = cJSON_GetArrayItem(plan->stages[1].steps, 0);
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(step, "field_hash");
    REQUIRE(cJSON_IsString(hash));
    CHECK_EQ_STR(hash->valuestring, "typed");
    CHECK(dsp_op_repartition_typed_hash(step) == 1);
    dsp_plan_free(plan);
    dsp_spec_free(spec);

    spec = parse_spec(
        "[{\"op\":\"repartition\",\"by\":\"field\",\"field\":\"k\",\"field_hash\":\"text\"}]");
    REQUIRE(spec != NULL);
    plan = plan_five(spec);
    REQUIRE(plan != NULL);
    step = cJSON_GetArrayItem(plan->stages[1].steps, 0);
    CHECK_EQ_STR(cJSON_GetObjectItemCaseSensitive(step, "field_hash")->valuestring, "text");
    CHECK(dsp_op_repartition_typed_hash(step) == 0);
    dsp_plan_free(plan);
    dsp_spec_free(spec);

    cJSON *old_step = cJSON_Parse("{\"op\":\"repartition\",\"by\":\"field\",\"field\":\"k\"}");
    CHECK(dsp_op_repartition_typed_hash(old_step) == 0);
    cJSON_Delete(old_step);

    dsp_spec *bad = parse_spec(
        "[{\"op\":\"repartition\",\"by\":\"field\",\"field\":\"k\",\"field_hash\":\"raw\"}]");
    CHECK(bad == NULL);
    dsp_spec_free(bad);
}

TEST_MAIN({"exact then minhash stages", test_exact_then_minhash_stages},
          {"minhash scheme pinned", test_minhash_scheme_pinned},
          {"repartition hash pinned", test_repartition_hash_pinned},
          {"leading dedup stages", test_leading_dedup_stages},
          {"repartition stage", test_repartition_stage},
          {"repartition not last", test_repartition_not_last},
          {"sort stages", test_sort_stages},
          {"dedup estimate requests", test_dedup_estimate_requests},
          {"dedup options checked", test_dedup_options_checked})
