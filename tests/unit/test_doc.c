/* Tests of tasks/doc.c: arena, batch, JSON member lookup, string decoding
 * and encoding, and re-serialization of changed documents. */
#include <string.h>

#include "../../core/buf.h"
#include "../../tasks/doc.h"
#include "test.h"

static void test_arena_reuse(void)
{
    dsp_arena a;
    dsp_arena_init(&a, 64);
    char *first = NULL;
    for (int round = 0; round < 3; round++) {
        char *p = dsp_arena_alloc(&a, 10);
        CHECK(((uintptr_t)p & 7) == 0);
        for (int i = 0; i < 100; i++) {
            char *q = dsp_arena_alloc(&a, 13);
            CHECK(((uintptr_t)q & 7) == 0);
            memset(q, 'x', 13);
        }
        if (round == 1)
            first = p;
        if (round == 2)
            CHECK(p == first); /* the grown block is kept and reused */
        dsp_arena_reset(&a);
    }
    char *s = dsp_arena_strndup(&a, "hello world", 5);
    CHECK_EQ_STR(s, "hello");
    char *big = dsp_arena_alloc(&a, 1 << 20);
    memset(big, 1, 1 << 20);
    dsp_arena_free(&a);
}

static void test_arena_shrink(void)
{
    dsp_arena a;
    dsp_arena_init(&a, 4096);
    char *first = dsp_arena_alloc(&a, 64);
    char *second = dsp_arena_alloc(&a, 1000);

    /* Shrinking an older allocation must not free the newer one. */
    dsp_arena_shrink(&a, first, 8);
    char *third = dsp_arena_alloc(&a, 16);
    CHECK(third >= second + 1000);

    /* The most recent allocation gives back its tail, rounded up to 8. */
    char *fourth = dsp_arena_alloc(&a, 512);
    dsp_arena_shrink(&a, fourth, 20);
    char *fifth = dsp_arena_alloc(&a, 8);
    CHECK(fifth == fourth + 24);
    dsp_arena_free(&a);
}

static void test_batch_push_compact(void)
{
    dsp_batch b;
    dsp_batch_init(&b, NULL);
    CHECK_EQ_STR(b.text_field, "text");
    char line[64];
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(line, sizeof line, "{\"i\":%d}", i);
        dsp_doc *d = dsp_batch_push(&b, line, (size_t)n, "k", (uint64_t)i * 10);
        d->seq = (uint64_t)i;
    }
    CHECK_EQ_INT(b.n, 3000);
    unsigned char *keep = calloc(b.n, 1);
    for (size_t i = 0; i < b.n; i++)
        keep[i] = (i % 3) == 0;
    dsp_batch_compact(&b, keep);
    free(keep);
    CHECK_EQ_INT(b.n, 1000);
    CHECK_EQ_STR(b.docs[1].line, "{\"i\":3}");
    CHECK_EQ_INT(b.docs[999].seq, 2997);
    CHECK_EQ_INT(b.docs[999].offset, 29970);
    dsp_batch_reset(&b);
    CHECK_EQ_INT(b.n, 0);
    dsp_batch_free(&b);
}

static void test_json_find(void)
{
    const char *line =
        " { \"meta\": {\"text\": \"nested\", \"a\": [1, \"}\"]}, \"x\\\"y\": 1,"
        " \"n\": -1.5e3 , \"text\" : \"top \\\"level\\\"\", \"t\\u0065xt2\": true }";
    const char *v;
    size_t n;
    REQUIRE(dsp_json_find(line, strlen(line), "text", &v, &n));
    CHECK(n == strlen("\"top \\\"level\\\"\""));
    CHECK(strncmp(v, "\"top \\\"level\\\"\"", n) == 0);
    REQUIRE(dsp_json_find(line, strlen(line), "n", &v, &n));
    CHECK_EQ_INT(n, 6);
    CHECK(strncmp(v, "-1.5e3", 6) == 0);
    REQUIRE(dsp_json_find(line, strlen(line), "meta", &v, &n));
    CHECK(v[0] == '{');
    CHECK(v[n - 1] == '}');
    REQUIRE(dsp_json_find(line, strlen(line), "text2", &v, &n));
    CHECK_EQ_INT(n, 4);
    CHECK(strncmp(v, "true", 4) == 0);
    CHECK(dsp_json_find(line, strlen(line), "a", &v, &n) == 0);
    CHECK(dsp_json_find(line, strlen(line), "missing", &v, &n) == 0);
    CHECK(dsp_json_find("[1,2]", 5, "text", &v, &n) == 0);
    CHECK(dsp_json_find("{\"text\":", 8, "text", &v, &n) == 0);
    CHECK(dsp_json_find("{}", 2, "text", &v, &n) == 0);
}

static void test_decode_string(void)
{
    dsp_arena a;
    dsp_arena_init(&a, 0);
    size_t n;
    char *s = dsp_json_decode_string(&a, "\"plain\"", 7, &n);
    CHECK_EQ_STR(s, "plain");
    CHECK_EQ_INT(n, 5);

    const char *raw = "\"a\\n\\t\\\"\\\\\\/\\u00e9\\ud83d\\ude00\"";
    s = dsp_json_decode_string(&a, raw, strlen(raw), &n);
    CHECK_EQ_STR(s, "a\n\t\"\\/\xc3\xa9\xf0\x9f\x98\x80");

    raw = "\"x\\ud800y\"";
    s = dsp_json_decode_string(&a, raw, strlen(raw), &n);
    CHECK_EQ_STR(s, "x\xef\xbf\xbdy");

    raw = "\"\\u0000z\"";
    s = dsp_json_decode_string(&a, raw, strlen(raw), &n);
    REQUIRE(s != NULL);
    CHECK_EQ_INT(n, 2);
    CHECK(s[0] == '\0');
    CHECK(s[1] == 'z');

    raw = "\"bad\xff\xfe byte\"";
    s = dsp_json_decode_string(&a, raw, strlen(raw), &n);
    CHECK_EQ_STR(s, "bad\xef\xbf\xbd\xef\xbf\xbd byte");

    /* Invalid bytes first, then a long valid run: the output outgrows the
     * input and must not spill into the next arena allocation. */
    char grown_raw[256];
    grown_raw[0] = '"';
    memset(grown_raw + 1, 0xff, 5);
    memset(grown_raw + 6, 'a', 200);
    grown_raw[206] = '"';
    char *grown = dsp_json_decode_string(&a, grown_raw, 207, &n);
    char *next = dsp_json_decode_string(&a, "\"zzzzzzzzzzzzzzzzzzzzzzzzzzzz\"", 30, NULL);
    REQUIRE(grown != NULL);
    REQUIRE(next != NULL);
    CHECK_EQ_INT(n, 215);
    CHECK(memcmp(grown, "\xef\xbf\xbd\xef\xbf\xbd", 6) == 0);
    CHECK(grown[214] == 'a');
    CHECK(grown[215] == '\0');

    CHECK(dsp_json_decode_string(&a, "\"\\q\"", 4, &n) == NULL);
    CHECK(dsp_json_decode_string(&a, "\"\\u12\"", 6, &n) == NULL);
    CHECK(dsp_json_decode_string(&a, "\"a\nb\"", 5, &n) == NULL);
    CHECK(dsp_json_decode_string(&a, "nope", 4, &n) == NULL);
    CHECK(dsp_json_decode_string(&a, "\"", 1, &n) == NULL);
    dsp_arena_free(&a);
}

/* The decoder for validated strings must agree with the general one on
 * every valid string, escapes and surrogates included. */
static void test_decode_valid_string(void)
{
    static const char *const valid[] = {
        "\"\"",
        "\"plain ascii text\"",
        "\"a\\n\\t\\\"\\\\\\/\\u00e9\\ud83d\\ude00\"",
        "\"x\\ud800y\\udc00z\"",
        "\"\\u0000z\"",
        "\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"",
        "\"\\b\\f\\r ends with an escape\\n\"",
        "\"\\\\\\\\\"",
    };
    dsp_arena a;
    dsp_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        size_t len = strlen(valid[i]);
        size_t want_n = 0, got_n = 0;
        char *want = dsp_json_decode_string(&a, valid[i], len, &want_n);
        char *got = dsp_json_decode_valid_string(&a, valid[i], len, &got_n);
        REQUIRE(want != NULL);
        REQUIRE(got != NULL);
        CHECK_EQ_INT(got_n, want_n);
        CHECK(memcmp(got, want, want_n + 1) == 0);
    }
    size_t n;
    CHECK(dsp_json_decode_valid_string(&a, "\"\\q\"", 4, &n) == NULL);
    CHECK(dsp_json_decode_valid_string(&a, "\"\\u12\"", 6, &n) == NULL);
    CHECK(dsp_json_decode_valid_string(&a, "\"ab\\\"", 5, &n) == NULL);
    CHECK(dsp_json_decode_valid_string(&a, "nope", 4, &n) == NULL);
    dsp_arena_free(&a);
}

static void test_encode_string(void)
{
    dsp_buf b = DSP_BUF_INIT;
    dsp_json_encode_string(&b, "a\"b\\c\n\x01\xc3\xa9", 9);
    CHECK_EQ_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
    dsp_buf_reset(&b);
    dsp_json_encode_string(&b, "x\xffy", 3);
    CHECK_EQ_STR(b.data, "\"x\xef\xbf\xbdy\"");
    dsp_buf_reset(&b);
    dsp_json_encode_string(&b, "n\0l", 3);
    CHECK_EQ_STR(b.data, "\"n\\u0000l\"");

    /* Round trip through the decoder. */
    dsp_arena a;
    dsp_arena_init(&a, 0);
    const char *text = "tab\there \"quoted\" \\ back \xe4\xb8\xad\xe6\x96\x87";
    dsp_buf_reset(&b);
    dsp_json_encode_string(&b, text, strlen(text));
    size_t n;
    CHECK_EQ_STR(dsp_json_decode_string(&a, b.data, b.len, &n), text);
    dsp_arena_free(&a);
    dsp_buf_free(&b);
}

static void test_serialize_unchanged(void)
{
    dsp_batch b;
    dsp_batch_init(&b, "text");
    const char *line = "{\"id\": 7,  \"text\":\"keep  spacing\"}";
    dsp_doc *d = dsp_batch_push(&b, line, strlen(line), "k", 0);
    dsp_buf out = DSP_BUF_INIT;
    dsp_doc_serialize(&b, d, &out);
    CHECK_EQ_STR(out.data, line);
    dsp_buf_free(&out);
    dsp_batch_free(&b);
}

static void test_serialize_changed(void)
{
    dsp_batch b;
    dsp_batch_init(&b, "text");
    const char *line = "{\"id\":\"d1\",\"text\":\"old\",\"meta\":{\"lang\":\"x\"},\"lang\":\"de\"}";
    dsp_doc *d = dsp_batch_push(&b, line, strlen(line), "k", 0);
    dsp_doc_set_text(&b, d, "new \"text\"\n", 11);
    CHECK(d->text_changed);
    dsp_doc_add_field(&b, d, "lang", "\"en\"");
    dsp_doc_add_field(&b, d, "lang_score", "0.98");
    CHECK_EQ_STR(d->extra, "\"lang\":\"en\",\"lang_score\":0.98");
    dsp_buf out = DSP_BUF_INIT;
    dsp_doc_serialize(&b, d, &out);
    CHECK_EQ_STR(out.data, "{\"id\":\"d1\",\"text\":\"new \\\"text\\\"\\n\",\"meta\":{\"lang\":\"x\"},"
                           "\"lang\":\"en\",\"lang_score\":0.98}");

    /* Text set on a document without a text member, then an extra member
     * added to an empty object. */
    dsp_doc *e = dsp_batch_push(&b, "{\"id\":1}", 8, "k", 0);
    dsp_doc_set_text(&b, e, "t", 1);
    dsp_buf_reset(&out);
    dsp_doc_serialize(&b, e, &out);
    CHECK_EQ_STR(out.data, "{\"id\":1,\"text\":\"t\"}");
    dsp_doc *f = dsp_batch_push(&b, "{ }", 3, "k", 0);
    dsp_doc_add_field(&b, f, "n", "1");
    dsp_buf_reset(&out);
    dsp_doc_serialize(&b, f, &out);
    CHECK_EQ_STR(out.data, "{\"n\":1}");
    dsp_buf_free(&out);
    dsp_batch_free(&b);
}

/* A member name occurs once in the output: a second step adding the same
 * member replaces the first, and an input member whose decoded name an
 * operator adds is dropped, even when it is written with escapes. */
static void test_serialize_added_once(void)
{
    dsp_batch b;
    dsp_batch_init(&b, "text");
    const char *line = "{\"id\":1,\"l\\u0061ng\":\"xx\",\"text\":\"t\",\"lang_score\":5}";
    dsp_doc *d = dsp_batch_push(&b, line, strlen(line), "k", 0);
    dsp_doc_add_field(&b, d, "lang", "\"de\"");
    dsp_doc_add_field(&b, d, "lang_score", "0.5");
    dsp_doc_add_field(&b, d, "lang", "\"en\"");
    dsp_doc_add_field(&b, d, "lang_score", "0.98");
    CHECK_EQ_STR(d->extra, "\"lang\":\"en\",\"lang_score\":0.98");
    dsp_buf out = DSP_BUF_INIT;
    dsp_doc_serialize(&b, d, &out);
    CHECK_EQ_STR(out.data, "{\"id\":1,\"text\":\"t\",\"lang\":\"en\",\"lang_score\":0.98}");
    dsp_buf_free(&out);
    dsp_batch_free(&b);
}

/* Members are counted by decoded name, and a dotted path is unique when no
 * object along the lookup repeats the name it selects. */
static void test_json_path_unique(void)
{
    const char *line = "{\"a\":{\"b\":1,\"b\":2},\"c\":{\"d\":1},\"e\":1,\"\\u0065\":2,"
                       "\"f.g\":1,\"f\":{\"g\":1,\"g\":2}}";
    size_t len = strlen(line);
    CHECK_EQ_INT(dsp_json_count_member(line, len, "e", 1), 2);
    CHECK_EQ_INT(dsp_json_count_member(line, len, "c", 1), 1);
    CHECK_EQ_INT(dsp_json_count_member(line, len, "z", 1), 0);
    CHECK(!dsp_json_path_is_unique(line, len, "a.b"));
    CHECK(dsp_json_path_is_unique(line, len, "c.d"));
    CHECK(dsp_json_path_is_unique(line, len, "c.x"));
    CHECK(dsp_json_path_is_unique(line, len, "z.y"));
    /* The top-level member named "f.g" wins, so the nested repeat is not read. */
    CHECK(dsp_json_path_is_unique(line, len, "f.g"));
}

/* Dotted paths descend into nested objects, and a top-level member whose
 * name contains the dot wins. Missing steps, non-objects and empty names
 * find nothing. */
static void test_json_find_path(void)
{
    const char *line = "{\"id\":1,\"metadata\":{\"url\":\"http://a/\",\"x\":{\"y\":[1,2]},"
                       "\"n\":7},\"a.b\":\"flat\",\"a\":{\"b\":\"nested\"},\"s\":\"m.n\"}";
    size_t len = strlen(line);
    const char *v;
    size_t n;
    static const struct {
        const char *path;
        const char *value; /* raw JSON, or NULL when not found */
    } cases[] = {
        {"metadata.url", "\"http://a/\""},
        {"metadata.x.y", "[1,2]"},
        {"metadata.n", "7"},
        {"id", "1"},
        {"a.b", "\"flat\""},
        {"metadata.missing", NULL},
        {"metadata.url.z", NULL},
        {"s.m", NULL},
        {"metadata..url", NULL},
        {".metadata", NULL},
        {"metadata.", NULL},
        {"nothing", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int found = dsp_json_find_path(line, len, cases[i].path, &v, &n);
        if (!cases[i].value) {
            CHECKF(!found, "path %s: found '%.*s'", cases[i].path, (int)n, v);
            continue;
        }
        CHECKF(found, "path %s: not found", cases[i].path);
        if (found)
            CHECKF(n == strlen(cases[i].value) && !memcmp(v, cases[i].value, n),
                   "path %s: got '%.*s', expected '%s'", cases[i].path, (int)n, v,
                   cases[i].value);
    }
}

TEST_MAIN({"arena reuse", test_arena_reuse},
          {"arena shrink", test_arena_shrink},
          {"batch push compact", test_batch_push_compact},
          {"json find", test_json_find},
          {"json find dotted path", test_json_find_path},
          {"decode string", test_decode_string},
          {"decode valid string", test_decode_valid_string},
          {"encode string", test_encode_string},
          {"serialize unchanged", test_serialize_unchanged},
          {"serialize changed", test_serialize_changed},
          {"serialize added members once", test_serialize_added_once},
          {"json path unique", test_json_path_unique})
