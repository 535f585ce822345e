/*
 * test_ops_text.c - the operator registry and the operators that map or
 * select documents without judging quality: normalize, langid, length,
 * stats, field and sample. Real documents come from
 * tests/data/ops/cc-snippets.jsonl (see test_ops_quality.c for the list).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "../../tasks/nfc.h"
#include "../../tasks/op_text.h"
#include "ops_helpers.h"
#include "test.h"

enum {
    DOC_BLOG_EN = 0,
    DOC_NEWS_FR = 2,
    DOC_DIFF_SV = 6,
    DOC_HEBREW = 7,
    DOC_CHINESE = 9,
    DOC_KOREAN = 10,
    DOC_JAPANESE = 11,
    DOC_SAARLAND = 12,
    DOC_COUNT = 13
};

/* ---- registry ---- */

static void test_registry_lists_every_operator(void)
{
    static const char *const names[] = {"normalize", "langid", "gopher_quality",
                                        "gopher_repetition", "c4_quality", "fineweb_quality",
                                        "length", "field", "pii_redact", "stats", "sample",
                                        "exec", "dedup_exact", "dedup_minhash",
                                        "repartition"};
    size_t n = 0;
    for (const dsp_op_def *const *d = dsp_op_all(); *d; d++)
        n++;
    CHECK_EQ_INT(n, sizeof names / sizeof names[0]);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const dsp_op_def *def = dsp_op_find(names[i]);
        REQUIRE(def != NULL);
        CHECK_EQ_STR(def->name, names[i]);
        CHECK(def->process != NULL);
        CHECK(def->create != NULL);
        CHECK(def->reasons != NULL);
    }
    CHECK(dsp_op_find("no_such_op") == NULL);
    CHECK(dsp_op_find(NULL) == NULL);
}

static void test_registry_defaults_parse(void)
{
    for (const dsp_op_def *const *d = dsp_op_all(); *d; d++) {
        int reasons = 0;
        for (const dsp_op_option *o = (*d)->options; o->name; o++) {
            CHECKF(o->help && o->help[0], "%s.%s has no help", (*d)->name, o->name);
            if (!o->default_json)
                continue;
            cJSON *v = cJSON_Parse(o->default_json);
            CHECKF(v != NULL, "%s.%s default %s is not JSON", (*d)->name, o->name,
                   o->default_json);
            cJSON_Delete(v);
        }
        while ((*d)->reasons[reasons])
            reasons++;
        CHECKF(reasons <= DSP_OP_MAX_REASONS, "%s has %d reasons", (*d)->name, reasons);
    }
    const dsp_op_def *gq = dsp_op_find("gopher_quality");
    CHECK(dsp_op_opt_number(NULL, gq, "min_words") == 50);
    cJSON *opts = cJSON_Parse("{\"min_words\": 7}");
    CHECK(dsp_op_opt_number(opts, gq, "min_words") == 7);
    cJSON_Delete(opts);
    CHECK_EQ_STR(dsp_op_opt_string(NULL, dsp_op_find("pii_redact"), "email_placeholder"),
                 "<EMAIL>");
}

static void test_registry_rejects_bad_steps(void)
{
    static const struct {
        const char *step;
        const char *message_part;
    } cases[] = {
        {"[1]", "expected an object"},
        {"{\"min_words\": 3}", "missing string member \"op\""},
        {"{\"op\": \"gopher\"}", "unknown operator \"gopher\""},
        {"{\"op\": \"length\", \"min_char\": 3}", "unknown option \"min_char\""},
        {"{\"op\": \"length\", \"min_chars\": 2.5}", "\"min_chars\" must be an integer"},
        {"{\"op\": \"langid\", \"keep\": \"en\"}", "\"keep\" must be an array"},
        {"{\"op\": \"normalize\", \"nfc\": 1}", "\"nfc\" must be a boolean"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *step = cJSON_Parse(cases[i].step);
        dsp_err err = {0};
        REQUIRE(step != NULL);
        CHECK(dsp_op_validate(step, 3, &err) == DSP_EINVAL);
        CHECKF(strstr(err.msg, cases[i].message_part) != NULL, "%s: message \"%s\"",
               cases[i].step, err.msg);
        CHECKF(strstr(err.msg, "steps[3]") != NULL, "%s: message \"%s\"", cases[i].step,
               err.msg);
        cJSON_Delete(step);
    }
}

static void test_registry_counters_json(void)
{
    const dsp_op_def *def = dsp_op_find("pii_redact");
    dsp_op_counters c;
    memset(&c, 0, sizeof c);
    c.in = 5;
    c.out = 5;
    c.extra[0] = 2;
    c.extra[3] = 1;
    cJSON *j = dsp_op_counters_json(def, &c);
    char *text = cJSON_PrintUnformatted(j);
    CHECK_EQ_STR(text, "{\"in\":5,\"out\":5,\"removed\":{},\"extra\":{\"email\":2,\"ipv4\":0,"
                       "\"ipv6\":0,\"phone\":1}}");
    free(text);
    cJSON_Delete(j);

    def = dsp_op_find("length");
    memset(&c, 0, sizeof c);
    c.in = 3;
    c.out = 1;
    c.removed[0] = 2;
    j = dsp_op_counters_json(def, &c);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "removed"), "too_few_chars")->valuedouble == 2);
    cJSON_Delete(j);
}

/* ---- normalize ---- */

static void check_normalized(const char *step, const char *in, const char *expected)
{
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    ops_push_text(&b, "n", in, strlen(in));
    if (ops_run_step(&r, step, &b, 0) != DSP_OK) {
        CHECKF(0, "%s failed: %s", step, r.err.msg);
    } else {
        CHECKF(strcmp(ops_text(&b, 0), expected) == 0, "%s on \"%s\": got \"%s\", expected \"%s\"",
               step, in, ops_text(&b, 0), expected);
        CHECK(r.keep[0]);
    }
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_normalize_parts(void)
{
    const char *all = "{\"op\":\"normalize\"}";
    check_normalized(all, "a\r\nb\rc", "a\nb\nc");
    check_normalized(all, "  x \t  y  \n", "x y");
    check_normalized(all, "one  \ntwo\t\nthree", "one\ntwo\nthree");
    check_normalized(all, "bell\x07 and nul-free \x1b[0m", "bell and nul-free [0m");
    check_normalized(all, "tab\tinside", "tab inside");
    /* U+0065 U+0301 (e + combining acute) composes to U+00E9. */
    check_normalized(all, "caf\x65\xCC\x81", "caf\xC3\xA9");
    /* U+212B ANGSTROM SIGN is a singleton that NFC maps to U+00C5. */
    check_normalized(all, "\xE2\x84\xAB", "\xC3\x85");
    /* Hangul jamo L + V compose to one syllable (U+1100 U+1161 -> U+AC00). */
    check_normalized(all, "\xE1\x84\x80\xE1\x85\xA1", "\xEA\xB0\x80");
    check_normalized(all, "", "");

    check_normalized("{\"op\":\"normalize\",\"nfc\":false}", "caf\x65\xCC\x81", "caf\x65\xCC\x81");
    check_normalized("{\"op\":\"normalize\",\"whitespace\":false}", "a  b", "a  b");
    check_normalized("{\"op\":\"normalize\",\"line_endings\":false}", "a\r\nb", "a\r\nb");
    check_normalized("{\"op\":\"normalize\",\"trim\":false,\"whitespace\":false}", " a ", " a ");
    check_normalized("{\"op\":\"normalize\",\"drop_control\":false}", "a\x07", "a\x07");
}

/* normalize removes U+FEFF at the start of the text, a byte-order mark
 * (also repeated, or before spaces that trim then removes), and keeps it
 * elsewhere like the other format characters. bom:false keeps it. */
static void test_normalize_bom(void)
{
    const char *all = "{\"op\":\"normalize\"}";
    check_normalized(all, "\xEF\xBB\xBFhello", "hello");
    check_normalized(all, "\xEF\xBB\xBF\xEF\xBB\xBFhello", "hello");
    check_normalized(all, "\xEF\xBB\xBF  hello", "hello");
    check_normalized(all, "\xEF\xBB\xBF", "");
    check_normalized(all, "a\xEF\xBB\xBF" "b", "a\xEF\xBB\xBF" "b");
    check_normalized(all, "a\xE2\x80\x8B" "b", "a\xE2\x80\x8B" "b");
    check_normalized("{\"op\":\"normalize\",\"bom\":false}", "\xEF\xBB\xBFhello",
                     "\xEF\xBB\xBFhello");
}

/* The whitespace and trim parts of normalize, written plainly, for ASCII
 * text without CR or controls. */
static size_t reference_whitespace(const char *in, size_t len, char *out)
{
    size_t o = 0;
    int pending_space = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == ' ' || ch == '\t') {
            pending_space = 1;
        } else if (ch == '\n') {
            pending_space = 0;
            out[o++] = '\n';
        } else {
            if (pending_space)
                out[o++] = ' ';
            pending_space = 0;
            out[o++] = ch;
        }
    }
    size_t b = 0;
    while (b < o && (out[b] == ' ' || out[b] == '\n'))
        b++;
    while (o > b && (out[o - 1] == ' ' || out[o - 1] == '\n'))
        o--;
    memmove(out, out + b, o - b);
    out[o - b] = '\0';
    return o - b;
}

static void test_normalize_whitespace_random(void)
{
    /* Long runs that normalize leaves alone (words, single spaces and
     * newlines) are broken now and then by a double space, a tab or a space
     * before a newline. So the breaks fall at every offset of the 64-byte
     * blocks that normalize scans at once. */
    static const char *const clean[] = {"a", "word", "x.", " ", "\n", "~", "(1)", " b"};
    static const char *const breaking[] = {"  ", "\t", " \n", "\t ", " "};
    uint64_t seed = 99;
    dsp_batch b;
    dsp_batch_init(&b, "text");
    for (int round = 0; round < 3000; round++) {
        char text[2048], expected[2048];
        size_t len = 0;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int count = (int)((seed >> 33) % 400);
        for (int k = 0; k < count; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t pick = seed >> 33;
            const char *p = pick % 16 == 0
                                ? breaking[(pick / 16) % (sizeof breaking / sizeof breaking[0])]
                                : clean[(pick / 16) % (sizeof clean / sizeof clean[0])];
            memcpy(text + len, p, strlen(p));
            len += strlen(p);
        }
        reference_whitespace(text, len, expected);
        dsp_batch_reset(&b);
        ops_push_text(&b, "n", text, len);
        ops_run r;
        REQUIRE(ops_run_step(&r, "{\"op\":\"normalize\"}", &b, 0) == DSP_OK);
        CHECKF(strcmp(ops_text(&b, 0), expected) == 0, "round %d: got \"%s\", expected \"%s\"",
               round, ops_text(&b, 0), expected);
        dsp_op_instance_free(&r.inst);
    }
    dsp_batch_free(&b);
}

static void test_normalize_stable_ranges(void)
{
    /* Every code point that normalize treats as NFC-stable must have
     * combining class 0 and map to itself under NFC, alone and after a
     * letter that takes many combining marks. */
    static const char *const before[] = {"a", "e", "A", "\xD0\xB8", "\xE3\x81\x8B",
                                         "\xE1\x84\x80", NULL};
    size_t checked = 0;
    for (uint32_t cp = 0x20; cp < 0x10000; cp++) {
        if ((cp >= 0xD800 && cp <= 0xDFFF) || !dsp_nfc_stable(cp))
            continue;
        checked++;
        const utf8proc_property_t *prop = utf8proc_get_property((utf8proc_int32_t)cp);
        if (prop->combining_class != 0) {
            CHECKF(0, "U+%04X has combining class %d", cp, prop->combining_class);
            continue;
        }
        utf8proc_uint8_t enc[8];
        utf8proc_ssize_t n = utf8proc_encode_char((utf8proc_int32_t)cp, enc);
        for (size_t k = 0; before[k]; k++) {
            char in[16];
            size_t bl = strlen(before[k]);
            memcpy(in, before[k], bl);
            memcpy(in + bl, enc, (size_t)n);
            in[bl + (size_t)n] = '\0';
            utf8proc_uint8_t *out = utf8proc_NFC((const utf8proc_uint8_t *)in);
            if (!out || strcmp((const char *)out, in) != 0)
                CHECKF(0, "NFC changes %s followed by U+%04X", before[k], cp);
            free(out);
        }
    }
    CHECK(checked > 30000); /* the CJK and Hangul blocks alone hold 32,164 */
}

static void test_nfc_table_known_points(void)
{
    /* ASCII must be stable: dsp_nfc_append skips it without a lookup. */
    for (uint32_t cp = 0; cp < 0x80; cp++)
        CHECKF(dsp_nfc_stable(cp), "U+%04X", cp);
    /* Precomposed letters, Greek with tonos, CJK punctuation, the
     * prolonged sound mark and Hangul syllables are stable. */
    static const uint32_t stable[] = {0x00E9, 0x03B1, 0x03AC, 0x3002, 0x30FC, 0xAC00, 0x1F50E};
    for (size_t i = 0; i < sizeof stable / sizeof stable[0]; i++)
        CHECKF(dsp_nfc_stable(stable[i]), "U+%04X", stable[i]);
    /* A combining mark, Hangul V and T jamo, an Oriya vowel sign that
     * composes with the letter before it, two singletons and a surrogate. */
    static const uint32_t unstable[] = {0x0301, 0x1161, 0x11A8, 0x0B3E, 0x212B, 0x2126, 0xD800};
    for (size_t i = 0; i < sizeof unstable / sizeof unstable[0]; i++)
        CHECKF(!dsp_nfc_stable(unstable[i]), "U+%04X", unstable[i]);
    CHECK(!dsp_nfc_stable(0x110000));
}

/* Code points that take part in canonical compositions: every code point
 * with a canonical decomposition and every part of one, plus a few
 * stable letters and spaces. */
static size_t nfc_alphabet(utf8proc_int32_t *out, size_t cap)
{
    static const utf8proc_int32_t extra[] = {'a', 'e', ' ', '\n', 0x3B1, 0x4E2D, 0x200B};
    size_t n = 0;
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        out[n++] = extra[i];
    for (utf8proc_int32_t cp = 0; cp < 0x30000 && n + 8 < cap; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        utf8proc_int32_t d[16];
        int boundclass = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char(cp, d, 16, UTF8PROC_DECOMPOSE, &boundclass);
        if (k < 1 || k > 16 || (k == 1 && d[0] == cp))
            continue;
        out[n++] = cp;
        for (utf8proc_ssize_t j = 0; j < k; j++)
            out[n++] = d[j];
    }
    return n;
}

static void test_nfc_segments_match_utf8proc(void)
{
    /* Random strings over the code points that compose must give the same
     * NFC by segments as utf8proc gives for the whole string. */
    size_t cap = 80000;
    utf8proc_int32_t *alphabet = malloc(cap * sizeof *alphabet);
    REQUIRE(alphabet != NULL);
    size_t n = nfc_alphabet(alphabet, cap);
    CHECK(n > 5000);

    dsp_nfc_scratch scratch = {NULL, 0};
    dsp_buf out = DSP_BUF_INIT;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    size_t mismatches = 0;
    for (int round = 0; round < 100000; round++) {
        utf8proc_uint8_t text[128];
        size_t len = 0;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int chars = 1 + (int)((seed >> 33) % 10);
        for (int c = 0; c < chars; c++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            len += (size_t)utf8proc_encode_char(alphabet[(seed >> 33) % n], text + len);
        }
        text[len] = 0;
        utf8proc_uint8_t *expected = utf8proc_NFC(text);
        REQUIRE(expected != NULL);
        dsp_buf_reset(&out);
        CHECK(dsp_nfc_append(&scratch, &out, (const char *)text, len));
        if (out.len != strlen((const char *)expected) ||
            memcmp(out.data, expected, out.len) != 0) {
            if (mismatches++ < 5)
                CHECKF(0, "NFC by segments differs for \"%s\"", (const char *)text);
        }
        free(expected);
    }
    CHECK_EQ_INT(mismatches, 0);
    dsp_buf_free(&out);
    dsp_nfc_scratch_free(&scratch);
    free(alphabet);
}

static void test_nfc_segments_invalid_utf8(void)
{
    dsp_nfc_scratch scratch = {NULL, 0};
    dsp_buf out = DSP_BUF_INIT;
    /* Valid text before and after an invalid byte still fails, as utf8proc
     * fails on the whole text. */
    CHECK(!dsp_nfc_append(&scratch, &out, "caf\x65\xCC\x81 \xFF ok", 10));
    dsp_buf_reset(&out);
    CHECK(!dsp_nfc_append(&scratch, &out, "plain \xED\xA0\x80", 9));
    dsp_buf_reset(&out);
    CHECK(dsp_nfc_append(&scratch, &out, "caf\x65\xCC\x81", 6));
    CHECK_EQ_STR(out.data, "caf\xC3\xA9");
    dsp_buf_free(&out);
    dsp_nfc_scratch_free(&scratch);
}

static void test_normalize_invalid_utf8(void)
{
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    dsp_doc *d = ops_push_text(&b, "bad", "", 0);
    /* Put raw bytes in the decoded text, as an upstream operator could. */
    static const char raw[] = "a\xff" "b\xe2\x82" "c\xed\xa0\x80" "d";
    d->text = dsp_arena_strndup(&b.arena, raw, sizeof raw - 1);
    d->text_len = sizeof raw - 1;

    REQUIRE(ops_run_step(&r, "{\"op\":\"normalize\"}", &b, 0) == DSP_OK);
    /* 0xFF, a truncated 3-byte sequence and an encoded surrogate: each
     * becomes one U+FFFD. */
    CHECK_EQ_STR(ops_text(&b, 0), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD" "d");
    int invalid = ops_name_index(r.inst.def->extra_names, "invalid_utf8");
    REQUIRE(invalid >= 0);
    CHECK_EQ_INT(r.inst.counters.extra[invalid], 3);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_normalize_real_controls(void)
{
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    REQUIRE(ops_load_jsonl(&b, "ops/cc-snippets.jsonl") == DOC_COUNT);
    REQUIRE(ops_run_step(&r, "{\"op\":\"normalize\"}", &b, 0) == DSP_OK);

    /* The Saarland page quotes with C1 controls U+0084 and U+0093
     * (Windows-1252 quotes decoded as Latin-1); both are removed. */
    const char *text = ops_text(&b, DOC_SAARLAND);
    CHECK(strstr(text, "\xC2\x84") == NULL);
    CHECK(strstr(text, "\xC2\x93") == NULL);
    CHECK(strstr(text, "Foto: Homburg Blick") != NULL);
    int dropped = ops_name_index(r.inst.def->extra_names, "control_dropped");
    CHECK_EQ_INT(r.inst.counters.extra[dropped], 2);

    /* Right-to-left and CJK text is already NFC: only whitespace changes. */
    for (int i = DOC_HEBREW; i <= DOC_JAPANESE; i++) {
        CHECK(strstr(ops_text(&b, (size_t)i), "  ") == NULL);
        CHECK(ops_text(&b, (size_t)i)[0] != ' ');
    }
    CHECK_EQ_INT(r.inst.counters.out, DOC_COUNT);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_normalize_repeated_line(void)
{
    size_t len;
    char *text = ops_repeat_line("Already clean line of text.\n", 1 << 20, &len);
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    ops_push_text(&b, "big", text, len);
    REQUIRE(ops_run_step(&r, "{\"op\":\"normalize\"}", &b, 0) == DSP_OK);
    /* Only the final newline is trimmed. */
    CHECK_EQ_INT(b.docs[0].text_len, len - 1);
    CHECK(memcmp(ops_text(&b, 0), text, len - 1) == 0);
    free(text);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

/* ---- langid ---- */

static void test_langid_real(void)
{
    static const struct {
        int doc;
        const char *lang;
    } cases[] = {
        {DOC_BLOG_EN, "en"}, {DOC_NEWS_FR, "fr"}, {DOC_HEBREW, "he"}, {DOC_CHINESE, "zh"},
        {DOC_KOREAN, "ko"},  {DOC_JAPANESE, "ja"},
    };
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    REQUIRE(ops_load_jsonl(&b, "ops/cc-snippets.jsonl") == DOC_COUNT);
    REQUIRE(ops_run_step(&r, "{\"op\":\"langid\"}", &b, 0) == DSP_OK);

    dsp_buf line = DSP_BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char expected[64];
        snprintf(expected, sizeof expected, "\"lang\":\"%s\"", cases[i].lang);
        dsp_buf_reset(&line);
        dsp_doc_serialize(&b, &b.docs[cases[i].doc], &line);
        CHECKF(strstr(line.data, expected) != NULL, "document %d: expected %s in %.300s",
               cases[i].doc, expected, line.data + (line.len > 300 ? line.len - 300 : 0));
        CHECK(r.keep[cases[i].doc]);
    }
    /* The Swedish diff page mixes Swedish, English and wiki markup: CLD2
     * gives Swedish only about half of the text, below 0.65. */
    CHECK(!r.keep[DOC_DIFF_SV]);
    int low = ops_name_index(r.inst.def->reasons, "low_score");
    CHECK(r.inst.counters.removed[low] >= 1);
    dsp_buf_free(&line);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_langid_keep_list(void)
{
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    REQUIRE(ops_load_jsonl(&b, "ops/cc-snippets.jsonl") == DOC_COUNT);
    REQUIRE(ops_run_step(&r, "{\"op\":\"langid\",\"keep\":[\"en\",\"he\"]}", &b, 0) == DSP_OK);
    CHECK(r.keep[DOC_BLOG_EN]);
    CHECK(r.keep[DOC_HEBREW]);
    CHECK(!r.keep[DOC_NEWS_FR]);
    CHECK(!r.keep[DOC_CHINESE]);
    int not_kept = ops_name_index(r.inst.def->reasons, "language_not_kept");
    CHECK(r.inst.counters.removed[not_kept] >= 5);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_langid_keep_unknown_code(void)
{
    static const char *const steps[] = {
        "{\"op\":\"langid\",\"keep\":[\"en\",\"english\"]}",
        "{\"op\":\"langid\",\"keep\":[\"EN\"]}",
        "{\"op\":\"langid\",\"keep\":[\"iw\"]}",
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        cJSON *step = cJSON_Parse(steps[i]);
        dsp_op_ctx ctx = {1, "text", NULL, 0};
        dsp_op_instance inst;
        dsp_err err = {0};
        REQUIRE(step != NULL);
        CHECKF(dsp_op_instantiate(step, 0, &ctx, &inst, &err) == DSP_EINVAL, "%s accepted",
               steps[i]);
        CHECKF(strstr(err.msg, "is not a language code that CLD2 reports") != NULL,
               "%s: message \"%s\"", steps[i], err.msg);
        cJSON_Delete(step);
    }
    /* Codes CLD2 reports under their current ISO 639-1 names are accepted. */
    cJSON *ok = cJSON_Parse("{\"op\":\"langid\",\"keep\":[\"he\",\"zh\",\"id\",\"un\"]}");
    dsp_op_ctx ctx = {1, "text", NULL, 0};
    dsp_op_instance inst;
    dsp_err err = {0};
    REQUIRE(ok != NULL);
    CHECKF(dsp_op_instantiate(ok, 0, &ctx, &inst, &err) == DSP_OK, "message \"%s\"", err.msg);
    dsp_op_instance_free(&inst);
    cJSON_Delete(ok);
}

static void test_langid_edges(void)
{
    static const char arabic[] =
        "اللغة العربية هي أكثر اللغات السامية تحدثا، وإحدى أكثر اللغات انتشارا في العالم. "
        "يتحدثها أكثر من 467 مليون نسمة.";
    dsp_batch b;
    ops_run r;
    dsp_buf line = DSP_BUF_INIT;
    dsp_batch_init(&b, "text");
    ops_push_text(&b, "empty", "", 0);
    ops_push_text(&b, "punct", "!!! ??? ...", 11);
    ops_push_text(&b, "arabic", arabic, strlen(arabic));
    REQUIRE(ops_run_step(&r, "{\"op\":\"langid\",\"min_score\":0}", &b, 0) == DSP_OK);

    dsp_doc_serialize(&b, &b.docs[0], &line);
    CHECK(strstr(line.data, "\"lang\":\"un\",\"lang_score\":0.0000") != NULL);
    dsp_buf_reset(&line);
    dsp_doc_serialize(&b, &b.docs[1], &line);
    CHECK(strstr(line.data, "\"lang\":\"un\"") != NULL);
    dsp_buf_reset(&line);
    dsp_doc_serialize(&b, &b.docs[2], &line);
    CHECK(strstr(line.data, "\"lang\":\"ar\"") != NULL);
    /* min_score 0 keeps everything, unknown languages included. */
    CHECK_EQ_INT(r.inst.counters.out, 3);
    dsp_op_instance_free(&r.inst);

    /* With the default 0.65, the texts without letters go. */
    dsp_batch_reset(&b);
    ops_push_text(&b, "empty", "", 0);
    REQUIRE(ops_run_step(&r, "{\"op\":\"langid\"}", &b, 0) == DSP_OK);
    CHECK(!r.keep[0]);
    dsp_op_instance_free(&r.inst);
    dsp_buf_free(&line);
    dsp_batch_free(&b);
}

/* The members that langid added to document i, as one string. */
static const char *langid_fields(dsp_batch *b, size_t i, char *out, size_t size)
{
    snprintf(out, size, "%.*s", (int)b->docs[i].extra_len, b->docs[i].extra);
    return out;
}

static void test_langid_cache_same_result(void)
{
    /* Each snippet twice in one batch: the second copy comes from the
     * cache and must get the fields that a fresh instance gives. Two
     * texts of the same length in different languages must not share. */
    static const char english[] = "The committee will publish its last report on the "
                                  "budget next week, after the new vote.";
    static const char german[] = "Der Ausschuss legt den Bericht zum Haushalt in der "
                                 "neuen Woche vor, kurz nach der Wahl.";
    REQUIRE(strlen(english) == strlen(german));
    dsp_batch twice, once;
    ops_run r_twice, r_once;
    dsp_batch_init(&twice, "text");
    dsp_batch_init(&once, "text");
    REQUIRE(ops_load_jsonl(&twice, "ops/cc-snippets.jsonl") == DOC_COUNT);
    REQUIRE(ops_load_jsonl(&twice, "ops/cc-snippets.jsonl") == DOC_COUNT);
    ops_push_text(&twice, "en", english, strlen(english));
    ops_push_text(&twice, "de", german, strlen(german));
    REQUIRE(ops_load_jsonl(&once, "ops/cc-snippets.jsonl") == DOC_COUNT);
    REQUIRE(ops_run_step(&r_twice, "{\"op\":\"langid\",\"min_score\":0}", &twice, 0) == DSP_OK);
    REQUIRE(ops_run_step(&r_once, "{\"op\":\"langid\",\"min_score\":0}", &once, 0) == DSP_OK);

    char first[256], second[256], fresh[256];
    for (size_t i = 0; i < DOC_COUNT; i++) {
        langid_fields(&twice, i, first, sizeof first);
        langid_fields(&twice, DOC_COUNT + i, second, sizeof second);
        langid_fields(&once, i, fresh, sizeof fresh);
        CHECK_EQ_STR(second, fresh);
        CHECK_EQ_STR(first, fresh);
    }
    CHECK(strstr(langid_fields(&twice, 2 * DOC_COUNT, first, sizeof first), "\"en\"") != NULL);
    CHECK(strstr(langid_fields(&twice, 2 * DOC_COUNT + 1, second, sizeof second), "\"de\"") !=
          NULL);
    dsp_op_instance_free(&r_twice.inst);
    dsp_op_instance_free(&r_once.inst);
    dsp_batch_free(&twice);
    dsp_batch_free(&once);
}

/* ---- length and stats ---- */

static void test_length_limits(void)
{
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    ops_push_text(&b, "short", "tiny", 4);
    ops_push_text(&b, "cjk", "中文中文中文", strlen("中文中文中文"));  /* 6 chars, 18 bytes, 1 word */
    ops_push_text(&b, "words", "one two three four five six", 27);
    ops_push_text(&b, "empty", "", 0);
    REQUIRE(ops_run_step(&r, "{\"op\":\"length\",\"min_chars\":5,\"max_chars\":10,\"max_words\":5}",
                         &b, 0) == DSP_OK);
    CHECK(!r.keep[0]);      /* 4 < 5 characters */
    CHECK(r.keep[1]);       /* 6 characters counted as code points, not 18 bytes */
    CHECK(!r.keep[2]);      /* 27 > 10 characters */
    CHECK(!r.keep[3]);
    CHECK_EQ_INT(r.inst.counters.removed[ops_name_index(r.inst.def->reasons, "too_few_chars")], 2);
    CHECK_EQ_INT(r.inst.counters.removed[ops_name_index(r.inst.def->reasons, "too_many_chars")], 1);
    dsp_op_instance_free(&r.inst);

    REQUIRE(ops_run_step(&r, "{\"op\":\"length\",\"min_words\":2,\"max_words\":5}", &b, 0) == DSP_OK);
    CHECK(!r.keep[0]);
    CHECK(!r.keep[1]);
    CHECK(!r.keep[2]);      /* 6 > 5 words */
    CHECK_EQ_INT(r.inst.counters.removed[ops_name_index(r.inst.def->reasons, "too_many_words")], 1);
    dsp_op_instance_free(&r.inst);

    CHECK(ops_run_step(&r, "{\"op\":\"length\",\"min_chars\":10,\"max_chars\":5}", &b, 0) ==
          DSP_EINVAL);
    CHECK(strstr(r.err.msg, "min_chars") != NULL);
    dsp_batch_free(&b);
}

static void test_stats_counts(void)
{
    dsp_batch b;
    ops_run r;
    dsp_buf line = DSP_BUF_INIT;
    dsp_batch_init(&b, "text");
    /* 15 characters, 17 bytes (two 2-byte letters), 3 words, 2 lines. */
    ops_push_text(&b, "a", "h\xC3\xA9llo w\xC3\xB6rld\nfoo", 17);
    /* U+3000 IDEOGRAPHIC SPACE separates words: 5 characters, 13 bytes,
     * 3 words, 1 line. */
    ops_push_text(&b, "b", "一\xE3\x80\x80二 三", strlen("一\xE3\x80\x80二 三"));
    ops_push_text(&b, "c", "", 0);
    REQUIRE(ops_run_step(&r, "{\"op\":\"stats\",\"add_field\":true}", &b, 0) == DSP_OK);

    const dsp_op_def *def = r.inst.def;
    CHECK_EQ_INT(r.inst.counters.extra[ops_name_index(def->extra_names, "docs")], 3);
    CHECK_EQ_INT(r.inst.counters.extra[ops_name_index(def->extra_names, "chars")], 15 + 5);
    CHECK_EQ_INT(r.inst.counters.extra[ops_name_index(def->extra_names, "words")], 3 + 3);
    CHECK_EQ_INT(r.inst.counters.extra[ops_name_index(def->extra_names, "lines")], 2 + 1);
    CHECK_EQ_INT(r.inst.counters.extra[ops_name_index(def->extra_names, "bytes")], 17 + 13);
    dsp_doc_serialize(&b, &b.docs[0], &line);
    CHECK(strstr(line.data, "\"stats\":{\"chars\":15,\"words\":3,\"lines\":2,\"bytes\":17}") != NULL);
    CHECK_EQ_INT(r.inst.counters.out, 3);
    dsp_buf_free(&line);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

/* ---- field and sample ---- */

static void push_line(dsp_batch *b, const char *line)
{
    dsp_batch_push(b, line, strlen(line), "test", 0);
}

static void test_field_matching(void)
{
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    push_line(&b, "{\"text\":\"a\",\"lang\":\"en\",\"status\":200}");
    push_line(&b, "{\"text\":\"b\",\"lang\":\"de\",\"status\":404}");
    push_line(&b, "{\"text\":\"c\",\"lang\":\"e\\u006e\",\"status\":200.0}");
    push_line(&b, "{\"text\":\"d\",\"meta\":{\"lang\":\"en\"}}");

    REQUIRE(ops_run_step(&r, "{\"op\":\"field\",\"field\":\"lang\",\"equals\":\"en\"}", &b, 0) ==
            DSP_OK);
    CHECK(r.keep[0]);
    CHECK(!r.keep[1]);
    CHECK(r.keep[2]);   /* the escaped "e\u006e" decodes to "en" */
    CHECK(!r.keep[3]);  /* only top-level members count */
    CHECK_EQ_INT(r.inst.counters.removed[ops_name_index(r.inst.def->reasons, "missing")], 1);
    dsp_op_instance_free(&r.inst);

    REQUIRE(ops_run_step(&r, "{\"op\":\"field\",\"field\":\"status\",\"in\":[200,301]}", &b, 0) ==
            DSP_OK);
    CHECK(r.keep[0]);
    CHECK(!r.keep[1]);
    CHECK(r.keep[2]);   /* 200.0 == 200 */
    dsp_op_instance_free(&r.inst);

    REQUIRE(ops_run_step(&r,
                         "{\"op\":\"field\",\"field\":\"lang\",\"in\":[\"en\"],\"invert\":true,"
                         "\"keep_missing\":true}",
                         &b, 0) == DSP_OK);
    CHECK(!r.keep[0]);
    CHECK(r.keep[1]);
    CHECK(r.keep[3]);
    dsp_op_instance_free(&r.inst);

    CHECK(ops_run_step(&r, "{\"op\":\"field\",\"field\":\"lang\"}", &b, 0) == DSP_EINVAL);
    CHECK(strstr(r.err.msg, "equals") != NULL);
    CHECK(ops_run_step(&r, "{\"op\":\"field\",\"equals\":\"x\"}", &b, 0) == DSP_EINVAL);
    dsp_batch_free(&b);
}

static void test_sample_deterministic(void)
{
    dsp_batch b;
    ops_run first, second, other_seed;
    unsigned char kept_first[OPS_MAX_DOCS];
    dsp_batch_init(&b, "text");
    for (int i = 0; i < OPS_MAX_DOCS; i++) {
        char line[96];
        snprintf(line, sizeof line, "{\"id\":\"doc-%d\",\"text\":\"text %d\"}", i, i);
        push_line(&b, line);
    }
    REQUIRE(ops_run_step(&first, "{\"op\":\"sample\",\"rate\":0.5}", &b, 0) == DSP_OK);
    memcpy(kept_first, first.keep, sizeof kept_first);
    REQUIRE(ops_run_step(&second, "{\"op\":\"sample\",\"rate\":0.5}", &b, 0) == DSP_OK);
    CHECK(memcmp(kept_first, second.keep, (size_t)OPS_MAX_DOCS) == 0);
    /* 64 documents at rate 0.5: the count is binomial, 32 +- 4 per sigma. */
    CHECK(first.inst.counters.out >= 16);
    CHECK(first.inst.counters.out <= 48);

    REQUIRE(ops_run_step(&other_seed, "{\"op\":\"sample\",\"rate\":0.5,\"seed\":7}", &b, 0) == DSP_OK);
    CHECK(memcmp(kept_first, other_seed.keep, (size_t)OPS_MAX_DOCS) != 0);
    dsp_op_instance_free(&first.inst);
    dsp_op_instance_free(&second.inst);
    dsp_op_instance_free(&other_seed.inst);

    ops_run r;
    REQUIRE(ops_run_step(&r, "{\"op\":\"sample\",\"rate\":0}", &b, 0) == DSP_OK);
    CHECK_EQ_INT(r.inst.counters.out, 0);
    dsp_op_instance_free(&r.inst);
    REQUIRE(ops_run_step(&r, "{\"op\":\"sample\",\"rate\":1}", &b, 0) == DSP_OK);
    CHECK_EQ_INT(r.inst.counters.out, OPS_MAX_DOCS);
    dsp_op_instance_free(&r.inst);
    CHECK(ops_run_step(&r, "{\"op\":\"sample\",\"rate\":1.5}", &b, 0) == DSP_EINVAL);
    dsp_batch_free(&b);
}

static void test_sample_same_in_other_batch(void)
{
    /* The decision depends on the id only, not on the batch it is in. */
    dsp_batch all, one;
    ops_run r_all, r_one;
    dsp_batch_init(&all, "text");
    dsp_batch_init(&one, "text");
    for (int i = 0; i < 20; i++) {
        char line[96];
        snprintf(line, sizeof line, "{\"id\":%d,\"text\":\"same text\"}", i);
        push_line(&all, line);
    }
    push_line(&one, "{\"id\":13,\"text\":\"other text\"}");
    REQUIRE(ops_run_step(&r_all, "{\"op\":\"sample\",\"rate\":0.3}", &all, 0) == DSP_OK);
    REQUIRE(ops_run_step(&r_one, "{\"op\":\"sample\",\"rate\":0.3}", &one, 0) == DSP_OK);
    CHECK_EQ_INT(r_all.keep[13], r_one.keep[0]);
    dsp_op_instance_free(&r_all.inst);
    dsp_op_instance_free(&r_one.inst);
    dsp_batch_free(&all);
    dsp_batch_free(&one);
}

TEST_MAIN({"registry lists every operator", test_registry_lists_every_operator},
          {"registry defaults parse", test_registry_defaults_parse},
          {"registry rejects bad steps", test_registry_rejects_bad_steps},
          {"registry counters json", test_registry_counters_json},
          {"normalize each part", test_normalize_parts},
          {"normalize bom", test_normalize_bom},
          {"normalize whitespace random text", test_normalize_whitespace_random},
          {"normalize stable ranges", test_normalize_stable_ranges},
          {"nfc table known points", test_nfc_table_known_points},
          {"nfc segments match utf8proc", test_nfc_segments_match_utf8proc},
          {"nfc segments invalid utf8", test_nfc_segments_invalid_utf8},
          {"normalize invalid utf8", test_normalize_invalid_utf8},
          {"normalize real control characters", test_normalize_real_controls},
          {"normalize 1 MiB repeated line", test_normalize_repeated_line},
          {"langid real documents", test_langid_real},
          {"langid keep list", test_langid_keep_list},
          {"langid keep unknown code", test_langid_keep_unknown_code},
          {"langid edge cases", test_langid_edges},
          {"langid cache same result", test_langid_cache_same_result},
          {"length limits", test_length_limits},
          {"stats counts", test_stats_counts},
          {"field matching", test_field_matching},
          {"sample deterministic", test_sample_deterministic},
          {"sample same in other batch", test_sample_same_in_other_batch})
