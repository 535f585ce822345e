/*
 * test_protocol.c - the coordination protocol on a real local store:
 * create-only and compare-and-swap writes, the conditional-write probe
 * (also against the fault layer's "nocond" store), leases, commits and
 * seals. When DSPARK_TEST_S3_BUCKET and AWS_ENDPOINT_URL are set, the
 * store tests run against that S3 server too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/util.h"
#include "../../runtime/commit.h"
#include "../../runtime/job.h"
#include "../../runtime/protocol.h"
#include "../../runtime/publish.h"
#include "test.h"

static char tmp_root[256];

static dsp_store *open_local(const char *faults)
{
    dsp_store_config cfg = {0};
    dsp_store *s = NULL;
    dsp_err err;

    snprintf(tmp_root, sizeof tmp_root, "/tmp/dsp-test-protocol-XXXXXX");
    if (!mkdtemp(tmp_root))
        return NULL;
    cfg.faults = faults;
    if (dsp_store_open(tmp_root, &cfg, &s, &err) != DSP_OK) {
        fprintf(stderr, "  open %s: %s\n", tmp_root, err.msg);
        return NULL;
    }
    return s;
}

/* An S3 store under a fresh prefix, or NULL when no server is configured. */
static dsp_store *open_s3(void)
{
    const char *bucket = getenv("DSPARK_TEST_S3_BUCKET");
    dsp_store *s = NULL;
    dsp_err err;

    if (!bucket || !*bucket || !getenv("AWS_ENDPOINT_URL"))
        return NULL;
    char *uri = dsp_xasprintf("s3://%s/test-protocol-%016llx", bucket,
                              (unsigned long long)dsp_rand64());
    if (dsp_store_open(uri, NULL, &s, &err) != DSP_OK)
        fprintf(stderr, "  open %s: %s\n", uri, err.msg);
    free(uri);
    return s;
}

static void close_local(dsp_store *s)
{
    char cmd[300];
    dsp_store_close(s);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", tmp_root);
}

static void test_job_id_rules(void)
{
    dsp_err err;
    CHECK_EQ_INT(dsp_proto_check_job_id("cc-clean-0123abcd", &err), DSP_OK);
    CHECK_EQ_INT(dsp_proto_check_job_id("a.b_c-1", &err), DSP_OK);
    CHECK_EQ_INT(dsp_proto_check_job_id("", &err), DSP_EINVAL);
    CHECK_EQ_INT(dsp_proto_check_job_id("-x", &err), DSP_EINVAL);
    CHECK_EQ_INT(dsp_proto_check_job_id("../etc", &err), DSP_EINVAL);
    CHECK_EQ_INT(dsp_proto_check_job_id("a/b", &err), DSP_EINVAL);
    CHECK(strstr(err.msg, "'/'") != NULL);
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    CHECK_EQ_INT(dsp_proto_check_job_id(long_id, &err), DSP_EINVAL);
}

static void test_keys_layout(void)
{
    char *k;
    k = dsp_proto_lease_key("j", "s0", "t00001");
    CHECK_EQ_STR(k, "jobs/j/leases/s0/t00001");
    free(k);
    k = dsp_proto_lease_key("j", "", "_publish");
    CHECK_EQ_STR(k, "jobs/j/leases/_publish");
    free(k);
    k = dsp_proto_commit_key("j", "s0", "t00001");
    CHECK_EQ_STR(k, "jobs/j/commits/s0/t00001.json");
    free(k);
    k = dsp_proto_seal_key("j", "s1");
    CHECK_EQ_STR(k, "jobs/j/seals/s1.json");
    free(k);
    k = dsp_proto_error_key("j", "s0", "t00002", "a1-ff");
    CHECK_EQ_STR(k, "jobs/j/errors/s0/t00002/a1-ff.json");
    free(k);
    k = dsp_proto_attempt_prefix("j", "s0", "t00002", "a1-ff");
    CHECK_EQ_STR(k, "jobs/j/attempts/s0/t00002/a1-ff");
    free(k);
}

static void check_create_semantics(dsp_store *s)
{
    dsp_obj_info info;
    dsp_err err;

    CHECK_EQ_INT(dsp_proto_create(s, "x/obj", "one", 3, &info, &err), DSP_OK);
    /* Same bytes again: an earlier try of our own write, so it counts as won. */
    CHECK_EQ_INT(dsp_proto_create(s, "x/obj", "one", 3, NULL, &err), DSP_OK);
    /* Different bytes: lost. */
    CHECK_EQ_INT(dsp_proto_create(s, "x/obj", "two", 3, NULL, &err), DSP_EPRECOND);
    CHECK(strstr(err.msg, "x/obj") != NULL);

    dsp_obj_info next;
    CHECK_EQ_INT(dsp_proto_swap(s, "x/obj", info.etag, "three", 5, &next, &err), DSP_OK);
    /* The old ETag no longer matches. */
    CHECK_EQ_INT(dsp_proto_swap(s, "x/obj", info.etag, "four", 4, NULL, &err), DSP_EPRECOND);
    CHECK_EQ_INT(dsp_proto_swap(s, "x/gone", info.etag, "four", 4, NULL, &err), DSP_ENOTFOUND);

    dsp_buf b = DSP_BUF_INIT;
    CHECK_EQ_INT(dsp_proto_get(s, "x/obj", &b, NULL, &err), DSP_OK);
    CHECK_EQ_INT(b.len, 5);
    CHECK(memcmp(b.data, "three", 5) == 0);
    dsp_buf_free(&b);
}

static void test_create_and_swap_local(void)
{
    dsp_store *s = open_local(NULL);
    REQUIRE(s);
    check_create_semantics(s);
    close_local(s);
}

static void test_create_and_swap_s3(void)
{
    dsp_store *s = open_s3();
    if (!s)
        SKIP("no S3 server (set AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET)");
    check_create_semantics(s);
    dsp_err err;
    dsp_proto_delete_prefix(s, "x/", &err);
    dsp_store_close(s);
}

static void test_probe_accepts_local(void)
{
    dsp_store *s = open_local(NULL);
    dsp_err err;
    REQUIRE(s);
    CHECK_EQ_INT(dsp_proto_probe_conditional(s, &err), DSP_OK);
    /* The probe removes its scratch key. */
    dsp_list_page page;
    REQUIRE(dsp_store_list_all(s, "_dspark-probe", NULL, &page, &err) == DSP_OK);
    CHECK_EQ_INT(page.n, 0);
    dsp_list_page_free(&page);
    close_local(s);
}

static void test_probe_rejects_nocond(void)
{
    dsp_store *s = open_local("op=cput,error=nocond,rate=1");
    dsp_err err;
    REQUIRE(s);
    CHECK_EQ_INT(dsp_proto_probe_conditional(s, &err), DSP_EUNSUPPORTED);
    CHECK(strstr(err.msg, "does not enforce conditional writes") != NULL);
    close_local(s);
}

/* A conditional PUT applied and then answered with 500: the retry sees our
 * own object, and the re-read turns that into success. */
static void test_create_survives_cput500(void)
{
    dsp_store *s = open_local("op=cput,error=cput500,rate=1");
    dsp_err err;
    REQUIRE(s);
    dsp_status st = dsp_proto_create(s, "x/commit", "mine", 4, NULL, &err);
    CHECKF(st == DSP_OK, "status %s: %s", dsp_status_name(st), err.msg);
    close_local(s);
}

static void test_lease_claim_renew_takeover(void)
{
    dsp_store *s = open_local(NULL);
    dsp_lease a, b, seen;
    dsp_err err;
    REQUIRE(s);

    REQUIRE(dsp_lease_claim(s, "j", "s0", "t00000", "w1", "a1-1", 60, NULL, 0, &a, &err) ==
            DSP_OK);
    CHECK_EQ_STR(a.worker, "w1");
    CHECK(a.expires_ms > dsp_now_ms());
    /* A second fresh claim loses. */
    CHECK_EQ_INT(dsp_lease_claim(s, "j", "s0", "t00000", "w2", "a1-2", 60, NULL, 0, &b, &err),
                 DSP_EPRECOND);
    CHECK_EQ_INT(dsp_lease_renew(s, "j", &a, 60, &err), DSP_OK);

    /* Speculative attempt added: the primary keeps renewing through it. */
    dsp_buf body = DSP_BUF_INIT;
    dsp_obj_info info;
    REQUIRE(dsp_proto_get(s, "jobs/j/leases/s0/t00000", &body, &info, &err) == DSP_OK);
    REQUIRE(dsp_lease_parse(body.data, body.len, &seen, &err) == DSP_OK);
    snprintf(seen.etag, sizeof seen.etag, "%s", info.etag);
    REQUIRE(dsp_lease_claim(s, "j", "s0", "t00000", "w2", "a1s-3", 60, &seen, 1, &b, &err) ==
            DSP_OK);
    CHECK(b.speculative);
    CHECK_EQ_STR(b.attempt, "a1s-3");
    CHECK_EQ_INT(dsp_lease_renew(s, "j", &a, 60, &err), DSP_OK);
    CHECK_EQ_STR(a.spec_attempt, "a1s-3");

    /* Takeover with the current ETag: the old holder's renewal then fails. */
    REQUIRE(dsp_proto_get(s, "jobs/j/leases/s0/t00000", &body, &info, &err) == DSP_OK);
    REQUIRE(dsp_lease_parse(body.data, body.len, &seen, &err) == DSP_OK);
    snprintf(seen.etag, sizeof seen.etag, "%s", info.etag);
    REQUIRE(dsp_lease_claim(s, "j", "s0", "t00000", "w3", "a1-4", 60, &seen, 0, &b, &err) ==
            DSP_OK);
    CHECK_EQ_INT(dsp_lease_renew(s, "j", &a, 60, &err), DSP_EPRECOND);
    CHECK(strstr(err.msg, "w3") != NULL);

    /* Release deletes only our own lease. */
    dsp_lease_release(s, "j", &a);
    CHECK_EQ_INT(dsp_store_head(s, "jobs/j/leases/s0/t00000", &info, &err), DSP_OK);
    dsp_lease_release(s, "j", &b);
    CHECK_EQ_INT(dsp_store_head(s, "jobs/j/leases/s0/t00000", &info, &err), DSP_ENOTFOUND);
    dsp_buf_free(&body);
    close_local(s);
}

static cJSON *manifest(const char *task, const char *attempt, uint64_t records)
{
    dsp_pipeline_result res;
    dsp_output_file f;
    char key[128];
    memset(&res, 0, sizeof res);
    memset(&f, 0, sizeof f);
    snprintf(key, sizeof key, "jobs/j/attempts/s0/%s/%s/part-00000.jsonl.zst", task, attempt);
    f.key = key;
    f.size = 10;
    f.records = records;
    memset(f.sha256, 'a', 64);
    res.files = &f;
    res.nfiles = 1;
    res.records_in = records;
    res.records_out = records;
    dsp_commit_meta meta = {"j", "s0", task, attempt, "w", 1000, 2000, 5, 3, 0};
    return dsp_commit_build(&meta, &res);
}

static void test_commit_first_wins(void)
{
    dsp_store *s = open_local(NULL);
    dsp_err err;
    int won = 0;
    cJSON *winner = NULL;
    REQUIRE(s);

    cJSON *m1 = manifest("t00000", "a1-1", 7), *m2 = manifest("t00000", "a2-2", 7);
    REQUIRE(dsp_commit_write(s, m1, &won, &winner, &err) == DSP_OK);
    CHECK_EQ_INT(won, 1);
    cJSON_Delete(winner);
    REQUIRE(dsp_commit_write(s, m2, &won, &winner, &err) == DSP_OK);
    CHECK_EQ_INT(won, 0);
    CHECK_EQ_STR(cJSON_GetObjectItem(winner, "attempt")->valuestring, "a1-1");
    cJSON_Delete(winner);

    /* The loser's files go; the winner's stay. */
    REQUIRE(dsp_store_put(s, "jobs/j/attempts/s0/t00000/a2-2/part-00000.jsonl.zst", "x", 1, NULL,
                          NULL, &err) == DSP_OK);
    REQUIRE(dsp_store_put(s, "jobs/j/attempts/s0/t00000/a1-1/part-00000.jsonl.zst", "y", 1, NULL,
                          NULL, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_commit_discard(s, "j", "s0", "t00000", "a2-2", &err), DSP_OK);
    dsp_list_page page;
    REQUIRE(dsp_store_list_all(s, "jobs/j/attempts/", NULL, &page, &err) == DSP_OK);
    CHECK_EQ_INT(page.n, 1);
    if (page.n == 1)
        CHECK(strstr(page.items[0].key, "a1-1") != NULL);
    dsp_list_page_free(&page);
    cJSON_Delete(m1);
    cJSON_Delete(m2);
    close_local(s);
}

static void test_seal_lists_commits(void)
{
    dsp_store *s = open_local(NULL);
    dsp_plan_task tasks[2];
    dsp_plan_stage stage;
    dsp_err err;
    int won;
    REQUIRE(s);

    memset(tasks, 0, sizeof tasks);
    memset(&stage, 0, sizeof stage);
    snprintf(tasks[0].id, sizeof tasks[0].id, "t00000");
    snprintf(tasks[1].id, sizeof tasks[1].id, "t00001");
    snprintf(stage.id, sizeof stage.id, "s0");
    stage.tasks = tasks;
    stage.ntasks = 2;

    cJSON *m0 = manifest("t00000", "a1-1", 3);
    REQUIRE(dsp_commit_write(s, m0, &won, NULL, &err) == DSP_OK);
    /* Not every task committed: no seal. */
    CHECK_EQ_INT(dsp_seal_write(s, "j", &stage, &err), DSP_ENOTFOUND);
    cJSON *m1 = manifest("t00001", "a1-2", 4);
    REQUIRE(dsp_commit_write(s, m1, &won, NULL, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_seal_write(s, "j", &stage, &err), DSP_OK);
    /* A second sealer writes the same bytes and succeeds. */
    CHECK_EQ_INT(dsp_seal_write(s, "j", &stage, &err), DSP_OK);

    cJSON *seal = NULL;
    REQUIRE(dsp_seal_read(s, "j", "s0", &seal, &err) == DSP_OK);
    const cJSON *list = cJSON_GetObjectItem(seal, "tasks");
    CHECK_EQ_INT(cJSON_GetArraySize(list), 2);
    CHECK_EQ_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "task")->valuestring,
                 "t00001");
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "records_out")->valueint, 4);
    cJSON_Delete(seal);
    cJSON_Delete(m0);
    cJSON_Delete(m1);
    close_local(s);
}


/* A spec over two small local JSONL inputs, with its output under dir. */
static dsp_spec *make_spec(const char *dir, const char *out_name, int target)
{
    char path[512];
    dsp_spec *spec = NULL;
    dsp_err err;

    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/in-%d.jsonl", dir, i);
        FILE *f = fopen(path, "w");
        if (!f)
            return NULL;
        for (int d = 0; d < 50; d++)
            fprintf(f, "{\"id\":\"%d-%d\",\"text\":\"document %d of file %d\"}\n", i, d, d, i);
        fclose(f);
    }
    char *text = dsp_xasprintf("{\"name\":\"unit\",\"input\":[\"%s/in-*.jsonl\"],"
                               "\"steps\":[{\"op\":\"length\",\"min_words\":1}],"
                               "\"output\":{\"uri\":\"%s/%s\"},"
                               "\"options\":{\"target_task_bytes\":%d}}",
                               dir, dir, out_name, target);
    if (dsp_spec_parse(text, strlen(text), "unit.json", &spec, &err) != DSP_OK)
        fprintf(stderr, "  spec: %s\n", err.msg);
    free(text);
    return spec;
}

static void test_submit_idempotent(void)
{
    dsp_store *s = open_local(NULL);
    dsp_err err;
    int created = -1;
    REQUIRE(s);
    dsp_spec *spec = make_spec(tmp_root, "out", 1500);
    dsp_spec *other = make_spec(tmp_root, "out", 3000);
    REQUIRE(spec && other);

    char *id = dsp_job_default_id(spec);
    CHECK(strncmp(id, "unit-", 5) == 0);
    CHECK_EQ_INT(strlen(id), 5 + 12);
    CHECK_EQ_INT(dsp_job_submit(s, spec, id, &created, &err), DSP_OK);
    CHECK_EQ_INT(created, 1);
    CHECK_EQ_INT(dsp_job_submit(s, spec, id, &created, &err), DSP_OK);
    CHECK_EQ_INT(created, 0);
    CHECK_EQ_INT(dsp_job_submit(s, other, id, &created, &err), DSP_EPRECOND);
    CHECK(strstr(err.msg, "different spec") != NULL);
    /* Another job onto the output of the unfinished one. */
    CHECK_EQ_INT(dsp_job_submit(s, other, "second", &created, &err), DSP_EPRECOND);
    CHECK(strstr(err.msg, "unfinished job") != NULL);

    dsp_obj_info info;
    char *active = dsp_proto_active_key(id);
    CHECK_EQ_INT(dsp_store_head(s, active, &info, &err), DSP_OK);

    /* Once the first job is final, the output is free again. */
    dsp_job_state actual;
    CHECK_EQ_INT(dsp_job_finish(s, id, DSP_JOB_CANCELLED, NULL, &actual, &err), DSP_OK);
    CHECK_EQ_INT(actual, DSP_JOB_CANCELLED);
    CHECK_EQ_INT(dsp_store_head(s, active, &info, &err), DSP_ENOTFOUND);
    CHECK_EQ_INT(dsp_job_finish(s, id, DSP_JOB_DONE, NULL, &actual, &err), DSP_OK);
    CHECK_EQ_INT(actual, DSP_JOB_CANCELLED);
    CHECK_EQ_INT(dsp_job_submit(s, other, "second", &created, &err), DSP_OK);
    CHECK_EQ_INT(created, 1);

    free(active);
    free(id);
    dsp_spec_free(spec);
    dsp_spec_free(other);
    close_local(s);
}

/* Commit a task by hand: one data file under the attempt, one manifest. */
static void commit_by_hand(dsp_store *s, const char *job, const char *task, const char *attempt,
                           const char *data)
{
    dsp_pipeline_result res;
    dsp_output_file f;
    dsp_err err;
    int won;

    memset(&res, 0, sizeof res);
    memset(&f, 0, sizeof f);
    f.key = dsp_xasprintf("jobs/%s/attempts/s0/%s/%s/part-00000.jsonl.zst", job, task, attempt);
    f.size = strlen(data);
    f.records = 1;
    dsp_sha256_hex(data, f.size, f.sha256);
    dsp_store_put(s, f.key, data, f.size, NULL, NULL, &err);
    res.files = &f;
    res.nfiles = 1;
    res.records_in = 2;
    res.records_out = 1;
    dsp_commit_meta meta = {job, "s0", task, attempt, "w", 0, 1, 2, 1, 0};
    cJSON *m = dsp_commit_build(&meta, &res);
    dsp_commit_write(s, m, &won, NULL, &err);
    cJSON_Delete(m);
    free(f.key);
}

static void test_publish_parts_in_order(void)
{
    dsp_store *s = open_local(NULL);
    dsp_job *job = NULL;
    dsp_err err;
    int created;
    REQUIRE(s);
    dsp_spec *spec = make_spec(tmp_root, "out", 1500);
    REQUIRE(spec);
    REQUIRE(dsp_job_submit(s, spec, "pub", &created, &err) == DSP_OK);
    REQUIRE(dsp_job_load(s, "pub", &job, &err) == DSP_OK);
    REQUIRE(job->plan->nstages == 1);
    const dsp_plan_stage *stage = &job->plan->stages[0];
    CHECK(stage->ntasks >= 2);

    /* Commit tasks in reverse order, and leave a losing attempt's file. */
    for (size_t i = stage->ntasks; i-- > 0;) {
        char data[32];
        snprintf(data, sizeof data, "data of %s", stage->tasks[i].id);
        commit_by_hand(s, "pub", stage->tasks[i].id, "a1-x", data);
    }
    REQUIRE(dsp_store_put(s, "jobs/pub/attempts/s0/t00000/a2-loser/part-00000.jsonl.zst", "z", 1,
                          NULL, NULL, &err) == DSP_OK);
    REQUIRE(dsp_seal_write(s, "pub", stage, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_publish_job(s, job, &err), DSP_OK);
    /* A second publisher (or a retry) changes nothing and succeeds. */
    CHECK_EQ_INT(dsp_publish_job(s, job, &err), DSP_OK);

    char path[512];
    dsp_buf b = DSP_BUF_INIT;
    for (size_t i = 0; i < stage->ntasks; i++) {
        char expect[32];
        snprintf(path, sizeof path, "%s/out/part-%05zu.jsonl.zst", tmp_root, i);
        snprintf(expect, sizeof expect, "data of %s", stage->tasks[i].id);
        CHECKF(dsp_read_file(path, &b, &err) == DSP_OK, "%s", path);
        CHECK(b.len == strlen(expect) && memcmp(b.data, expect, b.len) == 0);
    }
    snprintf(path, sizeof path, "%s/out/_SUCCESS", tmp_root);
    CHECK_EQ_INT(dsp_read_file(path, &b, &err), DSP_OK);
    snprintf(path, sizeof path, "%s/out/_MANIFEST.json", tmp_root);
    REQUIRE(dsp_read_file(path, &b, &err) == DSP_OK);
    cJSON *m = cJSON_Parse(b.data);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(m, "files")), (int)stage->ntasks);
    CHECK_EQ_STR(cJSON_GetObjectItem(m, "spec_hash")->valuestring, spec->spec_hash);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(m, "inputs")), 2);
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "totals"), "records_in")->valueint,
                 2 * (int)stage->ntasks);
    cJSON_Delete(m);

    dsp_job_state state;
    CHECK_EQ_INT(dsp_job_read_state(s, "pub", &state, NULL, &err), DSP_OK);
    CHECK_EQ_INT(state, DSP_JOB_DONE);
    dsp_obj_info info;
    CHECK_EQ_INT(dsp_store_head(s, "jobs/pub/attempts/s0/t00000/a2-loser/part-00000.jsonl.zst",
                                &info, &err),
                 DSP_ENOTFOUND);
    CHECK_EQ_INT(dsp_store_head(s, "jobs/pub/attempts/s0/t00000/a1-x/part-00000.jsonl.zst",
                                &info, &err),
                 DSP_OK);

    cJSON *status = NULL;
    REQUIRE(dsp_job_status_json(s, "pub", &status, &err) == DSP_OK);
    CHECK_EQ_INT(cJSON_GetObjectItem(status, "schema_version")->valueint, 1);
    CHECK_EQ_STR(cJSON_GetObjectItem(status, "state")->valuestring, "done");
    const cJSON *st0 = cJSON_GetArrayItem(cJSON_GetObjectItem(status, "stages"), 0);
    CHECK_EQ_INT(cJSON_GetObjectItem(st0, "committed")->valueint, (int)stage->ntasks);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(st0, "sealed")));
    cJSON_Delete(status);

    dsp_buf_free(&b);
    dsp_job_free(job);
    dsp_spec_free(spec);
    close_local(s);
}

TEST_MAIN({"job id rules", test_job_id_rules},
          {"key layout", test_keys_layout},
          {"create and swap local", test_create_and_swap_local},
          {"create and swap s3", test_create_and_swap_s3},
          {"probe accepts local store", test_probe_accepts_local},
          {"probe rejects nocond store", test_probe_rejects_nocond},
          {"create survives cput500", test_create_survives_cput500},
          {"lease claim renew takeover", test_lease_claim_renew_takeover},
          {"commit first wins", test_commit_first_wins},
          {"seal lists commits", test_seal_lists_commits},
          {"submit is idempotent", test_submit_idempotent},
          {"publish parts in order", test_publish_parts_in_order})
