/* Tests of planner/spec.c: job spec validation, defaults, paths and hash. */
#include <unistd.h>

#include "../../core/util.h"
#include "../../planner/plan.h"
#include "../../tasks/op.h"
#include "test.h"

static dsp_spec *parse_ok(const char *text)
{
    dsp_spec *spec = NULL;
    dsp_err err = {0};
    dsp_status st = dsp_spec_parse(text, strlen(text), "job.json", &spec, &err);
    if (st)
        fprintf(stderr, "  unexpected error: %s\n", err.msg);
    return spec;
}

/* Parse a spec that must fail and check that the message contains want. */
static void expect_error(const char *text, const char *want)
{
    dsp_spec *spec = NULL;
    dsp_err err = {0};
    dsp_status st = dsp_spec_parse(text, strlen(text), "job.json", &spec, &err);
    CHECKF(st == DSP_EINVAL, "spec %s: status %s", text, dsp_status_name(st));
    CHECK(spec == NULL);
    CHECKF(strstr(err.msg, want) != NULL, "message \"%s\" lacks \"%s\"", err.msg, want);
    dsp_spec_free(spec);
}

#define OUT "\"output\":{\"uri\":\"/tmp/out\"}"

static void test_spec_defaults(void)
{
    dsp_spec *spec = parse_ok("{\"name\":\"j1\",\"input\":\"/data/a.jsonl\"," OUT "}");
    REQUIRE(spec != NULL);
    CHECK_EQ_STR(spec->name, "j1");
    CHECK_EQ_INT(spec->ninputs, 1);
    CHECK_EQ_STR(spec->inputs[0], "/data/a.jsonl");
    CHECK_EQ_STR(spec->format, "auto");
    CHECK_EQ_STR(spec->text_field, "text");
    CHECK_EQ_STR(spec->id_field, "id");
    CHECK_EQ_INT(cJSON_GetArraySize(spec->steps), 0);
    CHECK_EQ_STR(spec->output_uri, "/tmp/out");
    CHECK_EQ_STR(spec->output_format, "jsonl.zst");
    CHECK_EQ_INT(spec->output_level, 0);
    CHECK_EQ_INT(spec->target_shard_bytes, 128LL << 20);
    CHECK_EQ_INT(spec->max_attempts, 4);
    CHECK_EQ_INT(spec->lease_seconds, 60);
    CHECK_EQ_INT(spec->target_task_bytes, 64LL << 20);
    CHECK_EQ_INT(spec->speculative, 1);
    CHECK_EQ_INT(spec->max_record_bytes, 64LL << 20);
    CHECK_EQ_INT(strlen(spec->spec_hash), 64);
    dsp_spec_free(spec);
}

static void test_spec_all_fields(void)
{
    dsp_spec *spec = parse_ok(
        "{\"name\":\"cc-clean_2.0\",\"input\":[\"s3://b/cc/*.jsonl.gz\",\"file:///d/x.jsonl\"],"
        "\"format\":\"jsonl\",\"text_field\":\"body\",\"id_field\":\"doc_id\","
        "\"steps\":[{\"op\":\"length\",\"min_words\":5},{\"op\":\"stats\"}],"
        "\"output\":{\"uri\":\"s3://b/out\",\"format\":\"jsonl.gz\",\"level\":6,"
        "\"target_shard_bytes\":\"256MiB\"},"
        "\"options\":{\"max_attempts\":2,\"lease_seconds\":30,\"target_task_bytes\":1048576,"
        "\"speculative\":false,\"max_record_bytes\":\"1MiB\"}}");
    REQUIRE(spec != NULL);
    CHECK_EQ_INT(spec->ninputs, 2);
    CHECK_EQ_STR(spec->inputs[0], "s3://b/cc/*.jsonl.gz");
    CHECK_EQ_STR(spec->inputs[1], "file:///d/x.jsonl");
    CHECK_EQ_STR(spec->format, "jsonl");
    CHECK_EQ_STR(spec->text_field, "body");
    CHECK_EQ_STR(spec->id_field, "doc_id");
    CHECK_EQ_INT(cJSON_GetArraySize(spec->steps), 2);
    CHECK_EQ_STR(spec->output_uri, "s3://b/out");
    CHECK_EQ_STR(spec->output_format, "jsonl.gz");
    CHECK_EQ_INT(spec->output_level, 6);
    CHECK_EQ_INT(spec->target_shard_bytes, 256LL << 20);
    CHECK_EQ_INT(spec->max_attempts, 2);
    CHECK_EQ_INT(spec->lease_seconds, 30);
    CHECK_EQ_INT(spec->target_task_bytes, 1048576);
    CHECK_EQ_INT(spec->speculative, 0);
    CHECK_EQ_INT(spec->max_record_bytes, 1 << 20);
    dsp_spec_free(spec);
}

static void test_spec_zstd_fast_level(void)
{
    dsp_spec *spec = parse_ok("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\","
                              "\"level\":-5}}");
    REQUIRE(spec != NULL);
    CHECK_EQ_STR(spec->output_format, "jsonl.zst");
    CHECK_EQ_INT(spec->output_level, -5);
    dsp_spec_free(spec);
}

static void test_spec_relative_paths(void)
{
    char cwd[4096];
    REQUIRE(getcwd(cwd, sizeof cwd) != NULL);
    dsp_spec *spec = parse_ok("{\"name\":\"j\",\"input\":[\"./in/*.jsonl\",\"x.jsonl\"],"
                              "\"output\":{\"uri\":\"out\"}}");
    REQUIRE(spec != NULL);
    char *want0 = dsp_xasprintf("%s/in/*.jsonl", cwd);
    char *want1 = dsp_xasprintf("%s/x.jsonl", cwd);
    char *want_out = dsp_xasprintf("%s/out", cwd);
    CHECK_EQ_STR(spec->inputs[0], want0);
    CHECK_EQ_STR(spec->inputs[1], want1);
    CHECK_EQ_STR(spec->output_uri, want_out);
    /* The canonical JSON stores the absolute forms too. */
    char *json = dsp_spec_to_json(spec);
    CHECK(strstr(json, want0) != NULL);
    CHECK(strstr(json, want_out) != NULL);
    free(json);
    free(want0);
    free(want1);
    free(want_out);
    dsp_spec_free(spec);
}

static void test_spec_hash_canonical(void)
{
    dsp_spec *a = parse_ok("{\"name\":\"j\",\"input\":\"/d/a.jsonl\","
                           "\"output\":{\"format\":\"jsonl.gz\",\"uri\":\"/o\"}}");
    dsp_spec *b = parse_ok("{ \"output\": {\"uri\": \"/o\", \"format\": \"jsonl.gz\"},\n"
                           "  \"input\": [\"/d/a.jsonl\"], \"name\": \"j\" }");
    dsp_spec *c = parse_ok("{\"name\":\"j\",\"input\":\"/d/b.jsonl\","
                           "\"output\":{\"format\":\"jsonl.gz\",\"uri\":\"/o\"}}");
    REQUIRE(a != NULL);
    REQUIRE(b != NULL);
    REQUIRE(c != NULL);
    CHECK_EQ_STR(a->spec_hash, b->spec_hash);
    CHECK(strcmp(a->spec_hash, c->spec_hash) != 0);
    char *json = dsp_spec_to_json(a);
    CHECK_EQ_STR(json, "{\"input\":[\"/d/a.jsonl\"],\"name\":\"j\","
                       "\"output\":{\"format\":\"jsonl.gz\",\"uri\":\"/o\"}}");
    char hash[65];
    dsp_sha256_hex(json, strlen(json), hash);
    CHECK_EQ_STR(hash, a->spec_hash);
    free(json);
    dsp_spec_free(a);
    dsp_spec_free(b);
    dsp_spec_free(c);
}

static void test_spec_name_errors(void)
{
    expect_error("{\"input\":\"/a\"," OUT "}", "job.json: name: missing required field");
    expect_error("{\"name\":\"a b\",\"input\":\"/a\"," OUT "}", "job.json: name: invalid job name");
    expect_error("{\"name\":7,\"input\":\"/a\"," OUT "}", "job.json: name: expected a string, got 7");
    expect_error("{\"name\":\"\",\"input\":\"/a\"," OUT "}", "job.json: name: must not be empty");
    char text[256];
    snprintf(text, sizeof text, "{\"name\":\"%065d\",\"input\":\"/a\"," OUT "}", 0);
    expect_error(text, "name: invalid job name");
    snprintf(text, sizeof text, "{\"name\":\"%064d\",\"input\":\"/a\"," OUT "}", 0);
    dsp_spec *spec = parse_ok(text);
    CHECK(spec != NULL);
    dsp_spec_free(spec);
}

static void test_spec_unknown_fields(void)
{
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"stpes\":[]}",
                 "job.json: stpes: unknown field; did you mean \"steps\"?");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"inputs\":[]}",
                 "inputs: unknown field; did you mean \"input\"?");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"priority\":1}",
                 "job.json: priority: unknown field");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"lease_second\":5}}",
                 "options.lease_second: unknown field; did you mean \"lease_seconds\"?");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\",\"fromat\":\"x\"}}",
                 "output.fromat: unknown field; did you mean \"format\"?");
    expect_error("{\"name\":\"j\",\"name\":\"k\",\"input\":\"/a\"," OUT "}",
                 "job.json: name: key given twice");
}

static void test_spec_input_errors(void)
{
    expect_error("{\"name\":\"j\"," OUT "}", "job.json: input: missing required field");
    expect_error("{\"name\":\"j\",\"input\":3," OUT "}",
                 "input: expected a URI or a list of URIs, got 3");
    expect_error("{\"name\":\"j\",\"input\":[]," OUT "}", "input: the list is empty");
    expect_error("{\"name\":\"j\",\"input\":[\"/a\",false]," OUT "}",
                 "input[1]: expected a string, got false");
    expect_error("{\"name\":\"j\",\"input\":\"http://h/a.jsonl\"," OUT "}",
                 "input[0]: \"http://h/a.jsonl\": unsupported scheme");
    expect_error("{\"name\":\"j\",\"input\":\"s3:///a.jsonl\"," OUT "}",
                 "input[0]: \"s3:///a.jsonl\" has no bucket name");
    expect_error("{\"name\":\"j\",\"input\":\"file://rel/a\"," OUT "}",
                 "input[0]: \"file://rel/a\": a file:// URI needs an absolute path");
    expect_error("{\"name\":\"j\",\"input\":\"/data/\"," OUT "}",
                 "input[0]: \"/data/\" names a directory");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"format\":\"csv\"," OUT "}",
                 "format: invalid value \"csv\"; expected one of \"auto\", \"jsonl\", \"warc\"");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"text_field\":[]," OUT "}",
                 "text_field: expected a string, got a list");
}

static void test_spec_step_errors(void)
{
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":{}," OUT "}",
                 "job.json: steps: expected a list of steps, got an object");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"length\"},5]," OUT "}",
                 "job.json: steps[1]: expected an object");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"min_words\":3}]," OUT "}",
                 "job.json: steps[0].op: missing required field");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":1}]," OUT "}",
                 "job.json: steps[0].op: expected an operator name, got 1");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"lenght\"}]," OUT "}",
                 "job.json: steps[0].op: unknown operator \"lenght\"; did you mean \"length\"?");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"frobnicate\"}]," OUT "}",
                 "steps[0].op: unknown operator \"frobnicate\"; run 'dspark ops' for the list");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"stats\"},"
                 "{\"op\":\"length\",\"min_words\":\"x\"}]," OUT "}",
                 "job.json: steps[1].min_words: expected an integer, got \"x\"");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"length\",\"min_word\":3}]," OUT "}",
                 "job.json: steps[0].min_word: unknown option of length; did you mean \"min_words\"?");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"length\",\"colour\":3}]," OUT "}",
                 "steps[0].colour: unknown option of length; run 'dspark ops length'");
    /* A value the operator itself rejects fails at parse time too. */
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"exec\",\"command\":[\"cat\"],"
                 "\"timeout_seconds\":-1}]," OUT "}",
                 "job.json: steps[0]");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"exec\",\"command\":[\"cat\"],"
                 "\"timeout_seconds\":-1}]," OUT "}",
                 "timeout_seconds");
    /* exec is valid in a spec: only workers decide whether to run it. */
    dsp_spec *spec = parse_ok("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"exec\","
                              "\"command\":[\"cat\"]}]," OUT "}");
    CHECK(spec != NULL);
    dsp_spec_free(spec);
}

static void test_spec_output_errors(void)
{
    expect_error("{\"name\":\"j\",\"input\":\"/a\"}", "job.json: output: missing required field");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":\"/o\"}",
                 "output: expected an object such as {\"uri\": ...}, got \"/o\"");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{}}",
                 "output.uri: missing required field");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/\"}}",
                 "output.uri: \"/\" is the root directory");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"file:///\"}}",
                 "output.uri: \"file:///\" is the root directory");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o/*\"}}",
                 "output.uri: \"/o/*\" must not contain a glob character ('*' at byte 3)");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"s3://b/x?y\"}}",
                 "must not contain a glob character ('?' at byte 8)");

    /* Keys that publishing would write past the store's limits. */
    char *long_name = dsp_xmalloc(300);
    memset(long_name, 'n', 299);
    long_name[299] = '\0';
    char *text = dsp_xasprintf("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o/%s/x\"}}",
                               long_name);
    expect_error(text, "has 299 bytes, but file names are at most 255 bytes");
    free(text);
    char *long_prefix = dsp_xmalloc(1000);
    memset(long_prefix, 'k', 999);
    long_prefix[999] = '\0';
    text = dsp_xasprintf("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"s3://b/%s\"}}",
                         long_prefix);
    expect_error(text, "its key prefix has 999 bytes, but S3 keys are at most 1024 bytes");
    free(text);
    /* 960 bytes leave room for the longest name below the prefix. */
    long_prefix[960] = '\0';
    text = dsp_xasprintf("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"s3://b/%s\"}}",
                         long_prefix);
    dsp_spec *fits = parse_ok(text);
    CHECK(fits != NULL);
    dsp_spec_free(fits);
    free(text);
    free(long_prefix);
    free(long_name);
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\\nlevel=error\"}}",
                 "output.uri: \"/o\\nlevel=error\" contains a control character");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\\u001b[2J\"}}",
                 "output.uri: \"/o\\x1b[2J\" contains a control character");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\\u007f\"}}",
                 "output.uri: \"/o\\x7f\" contains a control character");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\",\"format\":\"parquet\"}}",
                 "output.format: invalid value \"parquet\"");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\",\"format\":\"jsonl.gz\","
                 "\"level\":12}}",
                 "output.level: 12 is out of range; expected 0 to 9");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\",\"format\":\"jsonl.gz\","
                 "\"level\":-1}}",
                 "output.level: -1 is out of range; expected 0 to 9");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\",\"level\":23}}",
                 "output.level: 23 is out of range");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\",\"level\":-1000000}}",
                 "output.level: -1e+06 is out of range");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\",\"level\":1.5}}",
                 "output.level: expected an integer, got 1.5");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\","
                 "\"target_shard_bytes\":\"12XB\"}}",
                 "output.target_shard_bytes: invalid size \"12XB\"");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\","
                 "\"target_shard_bytes\":0}}",
                 "output.target_shard_bytes: 0 is out of range; expected 1 to "
                 "9000000000000000000 bytes");
}

static void test_spec_option_errors(void)
{
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"max_attempts\":\"x\"}}",
                 "job.json: options.max_attempts: expected an integer, got \"x\"");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"max_attempts\":0}}",
                 "options.max_attempts: 0 is out of range");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"lease_seconds\":2.5}}",
                 "options.lease_seconds: expected an integer, got 2.5");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"speculative\":\"yes\"}}",
                 "options.speculative: expected true or false, got \"yes\"");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"target_task_bytes\":true}}",
                 "options.target_task_bytes: expected a size");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"max_record_bytes\":-5}}",
                 "options.max_record_bytes: -5 is out of range; expected 1 to");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"target_task_bytes\":100}}",
                 "options.target_task_bytes: 100 is too small; use at least 1024 bytes");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":[]}",
                 "options: expected an object, got a list");
}

/* Integers far out of range, in every kind of integer field: spec options,
 * sizes given as numbers or strings, and operator options. */
static void test_spec_integer_ranges(void)
{
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"max_attempts\":1e30}}",
                 "options.max_attempts: 1e+30 is out of range; expected 1 to 100");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"lease_seconds\":1e30}}",
                 "options.lease_seconds: 1e+30 is out of range; expected 5 to 86400");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"target_task_bytes\":1e30}}",
                 "options.target_task_bytes: 1e+30 is out of range; expected 1 "
                 "to 9000000000000000000 bytes");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT
                 ",\"options\":{\"max_record_bytes\":\"1e30\"}}",
                 "options.max_record_bytes: size \"1e30\" is out of range; expected 1 to "
                 "9000000000000000000 bytes");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\","
                 "\"target_shard_bytes\":\"9000000TiB\"}}",
                 "output.target_shard_bytes: size \"9000000TiB\" is out of range");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/o\",\"level\":1e30}}",
                 "output.level: 1e+30 is out of range");

    static const struct {
        const char *step, *want;
    } steps[] = {
        {"{\"op\":\"length\",\"min_chars\":1e30}",
         "steps[0] (length): option \"min_chars\": 1e+30 is out of range; "
         "expected 0 to 1000000000000000"},
        {"{\"op\":\"length\",\"max_words\":-1}",
         "option \"max_words\": -1 is out of range; expected 0 to 1000000000000000"},
        {"{\"op\":\"c4_quality\",\"min_sentences\":3000000000}",
         "option \"min_sentences\": 3000000000 is out of range; expected 0 to 2147483647"},
        {"{\"op\":\"dedup_minhash\",\"ngram\":1e30}",
         "option \"ngram\": 1e+30 is out of range; expected 1 to 64"},
        {"{\"op\":\"repartition\",\"shards\":1e30}",
         "option \"shards\": 1e+30 is out of range; expected 0 to 10000"},
        {"{\"op\":\"sample\",\"rate\":0.5,\"seed\":1e30}",
         "option \"seed\": 1e+30 is out of range"},
        {"{\"op\":\"gopher_repetition\",\"max_lines\":1e30}",
         "option \"max_lines\": 1e+30 is out of range; expected 1 to "
         "4294967294"},
        {"{\"op\":\"langid\",\"max_bytes\":1e30}",
         "option \"max_bytes\": 1e+30 is out of range"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "{\"name\":\"j\",\"input\":\"/a\",\"steps\":[%s]," OUT "}",
                 steps[i].step);
        expect_error(text, steps[i].want);
    }
}

/* Every integer option of every operator declares a range that contains
 * its default, so the registry can check values against it. */
static void test_op_integer_ranges_declared(void)
{
    for (const dsp_op_def *const *def = dsp_op_all(); *def; def++) {
        for (const dsp_op_option *o = (*def)->options; o && o->name; o++) {
            if (o->type != DSP_OPT_INT)
                continue;
            CHECKF(o->min < o->max, "%s.%s: no range declared", (*def)->name, o->name);
            double dflt = o->default_json ? atof(o->default_json) : 0;
            CHECKF(dflt >= o->min, "%s.%s: default below the range", (*def)->name, o->name);
            CHECKF(dflt <= o->max, "%s.%s: default above the range", (*def)->name, o->name);
        }
    }
}

static void test_spec_invalid_json(void)
{
    expect_error("{\"name\":\"j\",\n  \"input\": [\"/a\",]\n}", "job.json:2:");
    expect_error("[1,2]", "job.json: (top level): expected a JSON object, got a list");
    expect_error("", "job.json:1:1: invalid JSON");
    expect_error("{\"name\":\"j\"}\n{}", "job.json:2:1: invalid JSON: text after the spec object");
}

/* A key named twice in any object fails with its JSON path, instead of
 * one of the two values being used without a word. */
static void test_spec_duplicate_keys(void)
{
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"length\"},"
                 "{\"op\":\"length\",\"min_words\":5,\"min_words\":500}]," OUT "}",
                 "job.json: steps[1].min_words: key given twice");
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"output\":{\"uri\":\"/tmp/out\","
                 "\"level\":3,\"level\":19}}",
                 "job.json: output.level: key given twice");
    expect_error("{\"name\":\"j\",\"input\":\"/a\"," OUT ",\"options\":{\"max_attempts\":2,"
                 "\"speculative\":true,\"max_attempts\":9}}",
                 "job.json: options.max_attempts: key given twice");
    /* Also a key that the step would reject as unknown: the repeat is
     * reported first. */
    expect_error("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"length\","
                 "\"colour\":1,\"colour\":2}]," OUT "}",
                 "job.json: steps[0].colour: key given twice");
    /* The same key in different objects is fine. */
    dsp_spec *spec = parse_ok("{\"name\":\"j\",\"input\":\"/a\",\"steps\":[{\"op\":\"length\","
                              "\"min_words\":5},{\"op\":\"length\",\"min_words\":6}]," OUT "}");
    CHECK(spec != NULL);
    dsp_spec_free(spec);
}

TEST_MAIN({"spec defaults", test_spec_defaults},
          {"spec all fields", test_spec_all_fields},
          {"spec zstd fast level", test_spec_zstd_fast_level},
          {"spec relative paths", test_spec_relative_paths},
          {"spec hash canonical", test_spec_hash_canonical},
          {"spec name errors", test_spec_name_errors},
          {"spec unknown fields", test_spec_unknown_fields},
          {"spec input errors", test_spec_input_errors},
          {"spec step errors", test_spec_step_errors},
          {"spec output errors", test_spec_output_errors},
          {"spec option errors", test_spec_option_errors},
          {"spec integer ranges", test_spec_integer_ranges},
          {"op integer ranges declared", test_op_integer_ranges_declared},
          {"spec invalid json", test_spec_invalid_json},
          {"spec duplicate keys", test_spec_duplicate_keys})
