/*
 * test_fault.c - the fault-injection spec parser and picker (fault.h).
 */
#include <pthread.h>
#include <string.h>

#include "core/util.h"
#include "storage/fault.h"
#include "test.h"

static void test_parse_valid(void)
{
    static const char *const specs[] = {
        "op=any,error=503,rate=0.2",
        "op=get,error=reset,rate=0.01;op=put+cput,error=500,rate=0.5",
        "error=timeout,rate=1",
        "op=cput,error=cput500,rate=0.3;seed=42",
        "op=any,error=nocond,rate=1",
        "op=list,error=truncate,rate=0;",
        "op=mpu+copy+delete+head,error=403,rate=0.001,seed=9",
        "op=get,error=delay,rate=1,key=/shuffle.bin,delay_ms=250",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        dsp_fault *f = NULL;
        dsp_err err;
        dsp_status rc = dsp_fault_parse(specs[i], &f, &err);
        CHECKF(rc == DSP_OK, "spec '%s': %s", specs[i], err.msg);
        CHECK(rc != DSP_OK || f != NULL);
        dsp_fault_free(f);
    }
}

static void test_parse_invalid(void)
{
    static const struct {
        const char *spec;
        const char *in_message; /* the part the message must name */
    } cases[] = {
        {"op=gte,error=503,rate=0.1", "gte"},
        {"op=get,error=504,rate=0.1", "504"},
        {"op=get,error=503,rate=1.5", "1.5"},
        {"op=get,error=503,rate=abc", "abc"},
        {"op=get,error=503", "missing rate"},
        {"op=get,rate=0.1", "missing error"},
        {"op=get,error=503,rate=0.1,color=red", "color"},
        {"op=get,error,rate=0.1", "error"},
        {"op=get,error=cput500,rate=0.1", "op=cput"},
        {"op=any,error=503,rate=0.1;op=head,error=nope,rate=1", "op=head,error=nope,rate=1"},
        {"seed=x", "seed"},
        {"op=get,error=503,rate=1,delay_ms=10", "delay_ms applies only"},
        {"op=get,error=delay,rate=1,delay_ms=-5", "-5"},
        {"op=get,error=delay,rate=1,key=", "key must be"},
        {"", "no rules"},
        {";;", "no rules"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dsp_fault *f = NULL;
        dsp_err err = {0};
        dsp_status rc = dsp_fault_parse(cases[i].spec, &f, &err);
        CHECKF(rc == DSP_EINVAL, "spec '%s' was accepted", cases[i].spec);
        CHECK(f == NULL);
        CHECKF(strstr(err.msg, cases[i].in_message) != NULL, "spec '%s': message '%s'",
               cases[i].spec, err.msg);
    }
}

static void test_pick_rate(void)
{
    dsp_fault *f = NULL;
    dsp_err err;
    REQUIRE(dsp_fault_parse("op=get,error=503,rate=0.2;seed=1", &f, &err) == DSP_OK);
    int hits = 0;
    const int draws = 100000;
    for (int i = 0; i < draws; i++)
        hits += dsp_fault_pick(f, DSP_FOP_GET) == DSP_FAULT_503;
    /* Binomial(100000, 0.2) has a standard deviation of about 126. */
    CHECKF(hits > 19000 && hits < 21000, "%d hits", hits);
    CHECK_EQ_INT(dsp_fault_count(f), hits);
    dsp_fault_free(f);
}

static void test_pick_op_filter(void)
{
    dsp_fault *f = NULL;
    dsp_err err;
    REQUIRE(dsp_fault_parse("op=get+list,error=500,rate=1", &f, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_GET), DSP_FAULT_500);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_LIST), DSP_FAULT_500);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_PUT), DSP_FAULT_NONE);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_CPUT), DSP_FAULT_NONE);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_MPU), DSP_FAULT_NONE);
    CHECK_EQ_INT(dsp_fault_count(f), 2);
    dsp_fault_free(f);

    /* nocond means nothing to a GET, even under op=any. */
    REQUIRE(dsp_fault_parse("op=any,error=nocond,rate=1", &f, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_GET), DSP_FAULT_NONE);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_PUT), DSP_FAULT_NONE);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_CPUT), DSP_FAULT_NOCOND);
    dsp_fault_free(f);

    CHECK_EQ_INT(dsp_fault_pick(NULL, DSP_FOP_GET), DSP_FAULT_NONE);
    CHECK_EQ_INT(dsp_fault_count(NULL), 0);
}

static void test_pick_first_rule_wins(void)
{
    dsp_fault *f = NULL;
    dsp_err err;
    REQUIRE(dsp_fault_parse("op=put,error=403,rate=1;op=any,error=503,rate=1", &f, &err) ==
            DSP_OK);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_PUT), DSP_FAULT_403);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_GET), DSP_FAULT_503);
    dsp_fault_free(f);
}

static void test_seed_reproducible(void)
{
    dsp_fault *a = NULL, *b = NULL, *c = NULL;
    dsp_err err;
    const char *spec = "op=any,error=reset,rate=0.3;seed=12345";
    REQUIRE(dsp_fault_parse(spec, &a, &err) == DSP_OK);
    REQUIRE(dsp_fault_parse(spec, &b, &err) == DSP_OK);
    REQUIRE(dsp_fault_parse("op=any,error=reset,rate=0.3;seed=54321", &c, &err) == DSP_OK);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 1000; i++) {
        dsp_fault_kind ka = dsp_fault_pick(a, DSP_FOP_HEAD);
        same_ab &= ka == dsp_fault_pick(b, DSP_FOP_HEAD);
        same_ac &= ka == dsp_fault_pick(c, DSP_FOP_HEAD);
    }
    CHECK(same_ab);
    CHECK(!same_ac);
    dsp_fault_free(a);
    dsp_fault_free(b);
    dsp_fault_free(c);
}

typedef struct {
    dsp_fault *f;
    int hits;
} pick_job;

static void *pick_many(void *arg)
{
    pick_job *job = arg;
    for (int i = 0; i < 50000; i++)
        job->hits += dsp_fault_pick(job->f, DSP_FOP_DELETE) != DSP_FAULT_NONE;
    return NULL;
}

static void test_pick_threads(void)
{
    dsp_fault *f = NULL;
    dsp_err err;
    REQUIRE(dsp_fault_parse("op=delete,error=timeout,rate=0.5", &f, &err) == DSP_OK);
    pthread_t threads[4];
    pick_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (pick_job){f, 0};
        pthread_create(&threads[i], NULL, pick_many, &jobs[i]);
    }
    int hits = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        hits += jobs[i].hits;
    }
    CHECK_EQ_INT(dsp_fault_count(f), hits);
    CHECKF(hits > 98000 && hits < 102000, "%d hits of 200000", hits);
    dsp_fault_free(f);
}

static void test_kind_names(void)
{
    CHECK_EQ_STR(dsp_fault_kind_name(DSP_FAULT_503), "503");
    CHECK_EQ_STR(dsp_fault_kind_name(DSP_FAULT_CPUT500), "cput500");
    CHECK_EQ_STR(dsp_fault_kind_name(DSP_FAULT_NOCOND), "nocond");
    CHECK_EQ_STR(dsp_fault_kind_name(DSP_FAULT_NONE), "none");
}

/* A key= rule fires only for keys containing its text, and a delay sleeps
 * and then lets the next rule decide. */
static void test_pick_key_and_delay(void)
{
    dsp_fault *f = NULL;
    dsp_err err;
    REQUIRE(dsp_fault_parse("op=get,error=delay,rate=1,key=shuffle,delay_ms=200;"
                            "op=get,error=503,rate=1,key=/b/",
                            &f, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_fault_pick(f, DSP_FOP_GET), DSP_FAULT_NONE);
    CHECK_EQ_INT(dsp_fault_pick_key(f, DSP_FOP_GET, "a/order.bin"), DSP_FAULT_NONE);
    CHECK_EQ_INT(dsp_fault_pick_key(f, DSP_FOP_GET, "x/b/y"), DSP_FAULT_503);
    CHECK_EQ_INT(dsp_fault_pick_key(f, DSP_FOP_HEAD, "x/shuffle.bin"), DSP_FAULT_NONE);
    int64_t start = dsp_mono_ms();
    CHECK_EQ_INT(dsp_fault_pick_key(f, DSP_FOP_GET, "t1/shuffle.bin"), DSP_FAULT_NONE);
    int64_t slept = dsp_mono_ms() - start;
    CHECKF(slept >= 200, "the delay rule slept %lld ms, expected 200", (long long)slept);
    start = dsp_mono_ms();
    CHECK_EQ_INT(dsp_fault_pick_key(f, DSP_FOP_GET, "t1/b/shuffle.bin"), DSP_FAULT_503);
    slept = dsp_mono_ms() - start;
    CHECKF(slept >= 200, "the delay before a 503 slept %lld ms, expected 200", (long long)slept);
    CHECK_EQ_INT(dsp_fault_count(f), 4);
    dsp_fault_free(f);
}

TEST_MAIN({"parse valid specs", test_parse_valid},
          {"parse rejects invalid specs", test_parse_invalid},
          {"pick follows rate", test_pick_rate},
          {"pick filters by op", test_pick_op_filter},
          {"pick first rule wins", test_pick_first_rule_wins},
          {"pick by key with delay", test_pick_key_and_delay},
          {"seed makes picks reproducible", test_seed_reproducible},
          {"pick from threads", test_pick_threads},
          {"kind names", test_kind_names})
