/* Tests of tasks/json_key.c: exact number keys, sort keys and the typed
 * value bytes that dedup_exact compares. */
#include <stdlib.h>
#include <string.h>

#include "../../core/buf.h"
#include "../../tasks/json_key.h"
#include "test.h"

/* memcmp order of two byte strings, a prefix first, as the shuffle sorts. */
static int bytes_cmp(const dsp_buf *a, const dsp_buf *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->data, b->data, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int sign(int c)
{
    return (c > 0) - (c < 0);
}

/* Return the memcmp order (-1, 0 or 1) of the number keys of two tokens, or
 * 99 when either token is not a number. */
static int number_cmp(const char *x, const char *y)
{
    dsp_buf a = DSP_BUF_INIT, b = DSP_BUF_INIT;
    int ok = dsp_json_number_key(x, strlen(x), &a) && dsp_json_number_key(y, strlen(y), &b);
    int c = ok ? bytes_cmp(&a, &b) : 99;
    dsp_buf_free(&a);
    dsp_buf_free(&b);
    return c;
}

static void test_number_key_equal_values(void)
{
    const char *same[][2] = {
        {"1", "1.0"},          {"1", "1e0"},   {"1", "0.1e1"},   {"1", "10E-1"},
        {"100", "1e2"},        {"100", "1E+2"}, {"0", "-0"},      {"0", "0.000"},
        {"0", "0e10"},         {"-2.50", "-25e-1"}, {"0.00123", "1.23e-3"},
        {"18446744073709551616", "1.8446744073709551616e19"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        CHECKF(number_cmp(same[i][0], same[i][1]) == 0, "%s and %s", same[i][0], same[i][1]);
}

/* Ascending values, each strictly greater than the one before, with
 * integers above 2^53 that doubles cannot tell apart. */
static const char *const ascending[] = {
    "-1e400",
    "-18446744073709551617",
    "-9007199254740993",
    "-9007199254740992.5",
    "-9007199254740992",
    "-100",
    "-99.5",
    "-2",
    "-1.5",
    "-1",
    "-0.123",
    "-0.12",
    "-0.1",
    "-1e-400",
    "0",
    "1e-400",
    "0.001",
    "0.1",
    "0.12",
    "0.123",
    "1",
    "1.0000000000000000000001",
    "1.5",
    "2",
    "10",
    "99.5",
    "100",
    "9007199254740992",
    "9007199254740992.5",
    "9007199254740993",
    "12345678901234567001",
    "12345678901234567003",
    "12345678901234567005",
    "18446744073709551616",
    "1e400",
};

static void test_number_key_order(void)
{
    size_t n = sizeof ascending / sizeof ascending[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int want = (i > j) - (i < j);
            CHECKF(sign(number_cmp(ascending[i], ascending[j])) == want, "%s vs %s",
                   ascending[i], ascending[j]);
        }
}

static void test_number_key_rejects_non_numbers(void)
{
    const char *bad[] = {"", "-", "1.", ".5", "1e", "1e+", "--1", "1x", "0x10", "\"1\"",
                         "null", "1.5.2", "+1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dsp_buf out = DSP_BUF_INIT;
        CHECKF(!dsp_json_number_key(bad[i], strlen(bad[i]), &out), "token \"%s\"", bad[i]);
        CHECKF(out.len == 0, "token \"%s\" appended %zu bytes", bad[i], out.len);
        dsp_buf_free(&out);
    }
}

/* The sort key of one raw value, or of a missing member when val is NULL. */
static void sort_key_of(dsp_arena *arena, const char *val, dsp_buf *out)
{
    dsp_buf_reset(out);
    dsp_json_sort_key(arena, val, val ? strlen(val) : 0, 16384, out);
}

static void test_sort_key_type_order(void)
{
    /* Ascending: missing and null tie, then numbers, strings, others. */
    const char *values[] = {NULL, "null", "-5", "3", "12345678901234567890",
                            "\"\"", "\"10\"", "\"9\"", "\"a\\u0062\"", "\"ac\"",
                            "[1]", "false", "true", "{\"a\":1}"};
    size_t n = sizeof values / sizeof values[0];
    dsp_arena arena;
    dsp_arena_init(&arena, 4096);
    dsp_buf a = DSP_BUF_INIT, b = DSP_BUF_INIT;
    for (size_t i = 1; i < n; i++) {
        sort_key_of(&arena, values[i - 1], &a);
        sort_key_of(&arena, values[i], &b);
        int want = i == 1 ? 0 : -1;
        CHECKF(bytes_cmp(&a, &b) == want, "%s vs %s", values[i - 1] ? values[i - 1] : "missing",
               values[i]);
    }
    /* A string compares by its decoded bytes: "a\u0062" is "ab". */
    sort_key_of(&arena, "\"a\\u0062\"", &a);
    sort_key_of(&arena, "\"ab\"", &b);
    CHECK(bytes_cmp(&a, &b) == 0);
    /* Numbers compare by value whatever their spelling. */
    sort_key_of(&arena, "2.50", &a);
    sort_key_of(&arena, "25e-1", &b);
    CHECK(bytes_cmp(&a, &b) == 0);
    dsp_buf_free(&a);
    dsp_buf_free(&b);
    dsp_arena_free(&arena);
}

static void test_sort_key_cut_at_max(void)
{
    dsp_arena arena;
    dsp_arena_init(&arena, 4096);
    dsp_buf out = DSP_BUF_INIT;
    dsp_json_sort_key(&arena, "\"abcdef\"", 8, 3, &out);
    CHECK_EQ_INT(out.len, 4);
    CHECK(memcmp(out.data, "\x02" "abc", 4) == 0);
    dsp_buf_reset(&out);
    dsp_json_sort_key(&arena, "123456789", 9, 5, &out);
    CHECK_EQ_INT(out.len, 6);
    dsp_buf_free(&out);
    dsp_arena_free(&arena);
}

/* The type and bytes of dsp_json_value_bytes for one raw value. */
static dsp_json_type value_of(dsp_arena *arena, const char *val, dsp_buf *out)
{
    dsp_buf_reset(out);
    return dsp_json_value_bytes(arena, val, strlen(val), out);
}

static void test_value_bytes_types(void)
{
    dsp_arena arena;
    dsp_arena_init(&arena, 4096);
    dsp_buf out = DSP_BUF_INIT;
    CHECK_EQ_INT(value_of(&arena, "null", &out), DSP_JSON_TYPE_NULL);
    CHECK_EQ_INT(out.len, 0);
    CHECK_EQ_INT(value_of(&arena, "\"a\\/b\"", &out), DSP_JSON_TYPE_STRING);
    CHECK_EQ_INT(out.len, 3);
    CHECK(memcmp(out.data, "a/b", 3) == 0);
    CHECK_EQ_INT(value_of(&arena, "\"1\"", &out), DSP_JSON_TYPE_STRING);
    CHECK_EQ_INT(out.len, 1);
    CHECK(out.data[0] == '1');
    CHECK_EQ_INT(value_of(&arena, "true", &out), DSP_JSON_TYPE_BOOL);
    CHECK_EQ_INT(out.len, 4);
    CHECK(memcmp(out.data, "true", 4) == 0);
    CHECK_EQ_INT(value_of(&arena, "1", &out), DSP_JSON_TYPE_NUMBER);
    CHECK_EQ_INT(value_of(&arena, "[1, \"a b\" ,\n {\"k\" : null}]", &out), DSP_JSON_TYPE_ARRAY);
    CHECK_EQ_INT(out.len, 20);
    CHECK(memcmp(out.data, "[1,\"a b\",{\"k\":null}]", 20) == 0);
    CHECK_EQ_INT(value_of(&arena, "{ \"q\\\" x\" : 1 }", &out), DSP_JSON_TYPE_OBJECT);
    CHECK_EQ_INT(out.len, 11);
    CHECK(memcmp(out.data, "{\"q\\\" x\":1}", 11) == 0);
    CHECK_EQ_INT(value_of(&arena, "nul", &out), DSP_JSON_TYPE_INVALID);
    CHECK_EQ_INT(out.len, 3);
    CHECK(memcmp(out.data, "nul", 3) == 0);
    CHECK_EQ_INT(value_of(&arena, "1.", &out), DSP_JSON_TYPE_INVALID);
    dsp_buf_free(&out);
    dsp_arena_free(&arena);
}

TEST_MAIN({"number key equal values", test_number_key_equal_values},
          {"number key order", test_number_key_order},
          {"number key rejects non-numbers", test_number_key_rejects_non_numbers},
          {"sort key type order", test_sort_key_type_order},
          {"sort key cut at max", test_sort_key_cut_at_max},
          {"value bytes types", test_value_bytes_types})
