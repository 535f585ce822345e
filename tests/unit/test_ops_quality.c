/*
 * test_ops_quality.c - the quality filters (gopher_quality,
 * gopher_repetition, c4_quality, fineweb_quality) on real Common Crawl
 * documents and on edge cases.
 *
 * tests/data/ops/cc-snippets.jsonl contains 13 documents copied from the
 * dolma test file CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz.
 * Each expected decision below was checked by reading the document; the
 * comment says what decides it.
 */
#include <stdlib.h>
#include <string.h>

#include "ops_helpers.h"
#include "test.h"

enum {
    DOC_BLOG_EN,      /* "Do you LOL?": a personal blog post in English prose */
    DOC_WIKI_STUB,    /* "User Tools / Site Tools / This topic does not exist yet": 35 words */
    DOC_NEWS_FR,      /* French news list with bullet items */
    DOC_FORUM_NAV,    /* "Bugs": forum navigation, "Edited:/Comments: 0/Tags:" 4 times */
    DOC_BALLADS,      /* Bodleian ballad catalogue: "Title:/Authors:/Themes:" records */
    DOC_WIKI_TEMPLATE,/* wiki help page about {{templates}} */
    DOC_DIFF_SV,      /* Swedish wiki diff page with markup */
    DOC_HEBREW,       /* Hebrew Wikipedia article ("פול") with English names */
    DOC_AZ_ARABIC,    /* South Azerbaijani Wikipedia stub in Arabic script */
    DOC_CHINESE,      /* Traditional Chinese health article */
    DOC_KOREAN,       /* Korean article on household accounts */
    DOC_JAPANESE,     /* Japanese product news (no spaces between words) */
    DOC_SAARLAND,     /* German university page with C1 control characters */
    DOC_COUNT
};

static int load_snippets(dsp_batch *b)
{
    dsp_batch_init(b, "text");
    return ops_load_jsonl(b, "ops/cc-snippets.jsonl");
}

typedef struct {
    int doc;
    const char *expected;
} decision;

static void check_decisions(const char *step, const decision *table, size_t n)
{
    dsp_batch b;
    int count = load_snippets(&b);
    if (count != DOC_COUNT) {
        CHECK_EQ_INT(count, DOC_COUNT);
        dsp_batch_free(&b);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *got = ops_decide(step, &b, (size_t)table[i].doc);
        CHECKF(strcmp(got, table[i].expected) == 0, "%s on document %d: expected %s, got %s", step,
               table[i].doc, table[i].expected, got);
    }
    dsp_batch_free(&b);
}

static void test_gopher_quality_real(void)
{
    static const decision table[] = {
        /* Long English prose with many stop words. */
        {DOC_BLOG_EN, "kept"},
        /* 35 whitespace-separated words, below 50. */
        {DOC_WIKI_STUB, "too_few_words"},
        /* French: none of the, be, to, of, and, that, have, with. */
        {DOC_NEWS_FR, "too_few_stop_words"},
        /* The article names English titles ("the", "of" 7 times), so the
         * English stop word rule passes on Hebrew text. */
        {DOC_HEBREW, "kept"},
        /* Chinese has no spaces: the whole text splits into few "words". */
        {DOC_CHINESE, "too_few_words"},
        /* Korean separates words with spaces but has no English stop words. */
        {DOC_KOREAN, "too_few_stop_words"},
        /* Japanese runs of 20+ characters without spaces: mean word length > 10. */
        {DOC_JAPANESE, "mean_word_length_high"},
    };
    check_decisions("{\"op\":\"gopher_quality\"}", table, sizeof table / sizeof table[0]);
}

static void test_gopher_repetition_real(void)
{
    static const decision table[] = {
        {DOC_BLOG_EN, "kept"},
        /* 25 lines, 9 of them repeat "Edited: 21 Jun 2018 17:18 by: drdhddv333",
         * "Comments: 0" or "Tags:": 0.36 > 0.30. */
        {DOC_FORUM_NAV, "dup_line_frac"},
        {DOC_HEBREW, "kept"},
        {DOC_KOREAN, "kept"},
    };
    check_decisions("{\"op\":\"gopher_repetition\"}", table, sizeof table / sizeof table[0]);
}

static void test_c4_quality_real(void)
{
    static const decision table[] = {
        {DOC_BLOG_EN, "kept"},
        /* Only one line ends in punctuation: fewer than 5 sentences. */
        {DOC_WIKI_STUB, "too_few_sentences"},
        /* A kept line explains "{{Template}}" syntax, so the page goes. */
        {DOC_WIKI_TEMPLATE, "curly_bracket"},
        /* Hebrew sentences end in '.', and there are enough of them. */
        {DOC_HEBREW, "kept"},
        /* Chinese sentences end in U+3002, not in . ! ? or ". */
        {DOC_CHINESE, "too_few_sentences"},
        {DOC_JAPANESE, "too_few_sentences"},
    };
    check_decisions("{\"op\":\"c4_quality\"}", table, sizeof table / sizeof table[0]);
}

static void test_c4_quality_rewrites_lines(void)
{
    dsp_batch b;
    ops_run r;
    REQUIRE(load_snippets(&b) == DOC_COUNT);
    REQUIRE(ops_run_step(&r, "{\"op\":\"c4_quality\"}", &b, 0) == DSP_OK);
    CHECK(r.keep[DOC_BLOG_EN]);

    const char *text = ops_text(&b, DOC_BLOG_EN);
    /* The date line has no terminal punctuation; the title has 3 words and
     * ends in '?', so it stays. */
    CHECK(strstr(text, "Tuesday, July 12, 2011") == NULL);
    CHECK(strncmp(text, "Do you LOL?\n", 12) == 0);
    CHECK(strstr(text, "Is this normal?") != NULL);
    /* Blank lines are gone: lines are joined by single newlines. */
    CHECK(strstr(text, "\n\n") == NULL);
    CHECK(b.docs[DOC_BLOG_EN].text_changed);

    int kept = ops_name_index(r.inst.def->extra_names, "lines_kept");
    REQUIRE(kept >= 0);
    CHECK(r.inst.counters.extra[kept] > 0);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_c4_quality_citations_at_end(void)
{
    /* Line ends decide the punctuation rule after citations are removed:
     * "[1]" after a full stop keeps a line, "x..[2]." ends in an ellipsis
     * once "[2]" goes, and a bracket that is no citation does not count. */
    const char *text = "The first sentence ends here.[1]\n"
                       "This second sentence trails off..[2].\n"
                       "A third line ends in a bracket [note]\n"
                       "The fourth line is fine as it is.\n"
                       "No punctuation at the end of this one\n"
                       "Empty lines follow\n\n\n"
                       "And the last sentence has \"quotes.\"";
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    ops_push_text(&b, "citations", text, strlen(text));
    REQUIRE(ops_run_step(&r, "{\"op\":\"c4_quality\",\"min_sentences\":1}", &b, 0) == DSP_OK);
    CHECK(r.keep[0]);
    CHECK_EQ_STR(ops_text(&b, 0), "The first sentence ends here.\n"
                                  "The fourth line is fine as it is.\n"
                                  "And the last sentence has \"quotes.\"");
    int no_punct = ops_name_index(r.inst.def->extra_names, "lines_no_terminal_punct");
    int kept = ops_name_index(r.inst.def->extra_names, "lines_kept");
    REQUIRE(no_punct >= 0);
    REQUIRE(kept >= 0);
    CHECK_EQ_INT(r.inst.counters.extra[no_punct], 6);
    CHECK_EQ_INT(r.inst.counters.extra[kept], 3);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_fineweb_quality_real(void)
{
    static const decision table[] = {
        {DOC_BLOG_EN, "kept"},
        /* 4 of 5 non-blank lines have at most 30 characters. */
        {DOC_WIKI_STUB, "short_line_ratio"},
        /* 1 of 25 lines ends in punctuation: 0.04 < 0.12. */
        {DOC_FORUM_NAV, "line_punct_ratio"},
        /* Catalogue records: field lines without final punctuation. */
        {DOC_BALLADS, "line_punct_ratio"},
        {DOC_CHINESE, "line_punct_ratio"},
        {DOC_KOREAN, "kept"},
    };
    check_decisions("{\"op\":\"fineweb_quality\"}", table, sizeof table / sizeof table[0]);
}

/* Edge cases: every filter on the same small set of unusual texts. */
typedef struct {
    const char *id;
    const char *text;
} edge_doc;

static const edge_doc edge_docs[] = {
    {"empty", ""},
    {"one word", "hello"},
    {"punctuation", "!!! ??? ... ;;; --- ,,,"},
    {"arabic",
     "اللغة العربية هي أكثر اللغات السامية تحدثا، وإحدى أكثر اللغات انتشارا في العالم. "
     "يتحدثها أكثر من 467 مليون نسمة. ويتوزع متحدثوها في الوطن العربي، بالإضافة إلى العديد "
     "من المناطق الأخرى المجاورة."},
    {"cjk", "中文是世界上使用人数最多的语言之一。汉字是一种表意文字。日本語も漢字を使います。"},
};

static void check_edge(const char *step, const char *const expected[5])
{
    dsp_batch b;
    dsp_batch_init(&b, "text");
    for (size_t i = 0; i < 5; i++)
        ops_push_text(&b, edge_docs[i].id, edge_docs[i].text, strlen(edge_docs[i].text));
    for (size_t i = 0; i < 5; i++) {
        const char *got = ops_decide(step, &b, i);
        CHECKF(strcmp(got, expected[i]) == 0, "%s on %s: expected %s, got %s", step,
               edge_docs[i].id, expected[i], got);
    }
    dsp_batch_free(&b);
}

static void test_gopher_quality_edges(void)
{
    /* Empty, one word and punctuation have fewer than 50 words; the Arabic
     * and CJK texts too (about 30 words, and one space-free run). */
    static const char *const expected[5] = {"too_few_words", "too_few_words", "too_few_words",
                                            "too_few_words", "too_few_words"};
    check_edge("{\"op\":\"gopher_quality\"}", expected);
}

static void test_gopher_repetition_edges(void)
{
    /* Empty text has nothing to measure and one word has no 2-gram. In the
     * 6-word punctuation text the "most frequent" 2-gram occurs once, but
     * "!!! ???" is 7 of 23 characters (0.30 > 0.20): like datatrove, the
     * rule also applies to n-grams seen once, so very short texts fail it. */
    static const char *const expected[5] = {"kept", "kept", "top_2_gram", "kept", "kept"};
    check_edge("{\"op\":\"gopher_repetition\"}", expected);
}

static void test_c4_quality_edges(void)
{
    /* No line qualifies: empty, 1 word, ellipsis and U+3002 endings. The
     * Arabic text ends in '.' but has only 2 sentences. */
    static const char *const expected[5] = {"too_few_sentences", "too_few_sentences",
                                            "too_few_sentences", "too_few_sentences",
                                            "too_few_sentences"};
    check_edge("{\"op\":\"c4_quality\"}", expected);
}

static void test_fineweb_quality_edges(void)
{
    /* Empty has no non-blank line. "hello" does not end in punctuation, and
     * the punctuation text ends in ','. The one-line Arabic text ends in '.',
     * is longer than 30 characters and has no newline, so it is kept. The
     * CJK text ends in U+3002, which is not in the list. */
    static const char *const expected[5] = {"empty", "line_punct_ratio", "line_punct_ratio",
                                            "kept", "line_punct_ratio"};
    check_edge("{\"op\":\"fineweb_quality\"}", expected);
}

static void test_one_mib_repeated_line(void)
{
    size_t len;
    char *text = ops_repeat_line("The cat sat on the mat and looked at the dog.\n", 1 << 20, &len);
    dsp_batch b;
    dsp_batch_init(&b, "text");
    ops_push_text(&b, "repeated", text, len);
    free(text);

    /* About 230,000 words, above the 100,000 maximum. */
    CHECK_EQ_STR(ops_decide("{\"op\":\"gopher_quality\"}", &b, 0), "too_many_words");
    /* One paragraph, so the first failing rule is the duplicate line one. */
    CHECK_EQ_STR(ops_decide("{\"op\":\"gopher_repetition\"}", &b, 0), "dup_line_frac");
    /* Every line is a proper sentence: C4 has no repetition rule. */
    CHECK_EQ_STR(ops_decide("{\"op\":\"c4_quality\"}", &b, 0), "kept");
    /* All but the first line repeat it: far above 1% of the characters. */
    CHECK_EQ_STR(ops_decide("{\"op\":\"fineweb_quality\"}", &b, 0), "char_dup_ratio");
    dsp_batch_free(&b);
}

static void test_gopher_repetition_limits(void)
{
    /* 20 distinct words on 4 lines. In so short a text the first 4-gram is
     * above its top n-gram fraction, so those rules are off here. */
    const char *text = "alpha bravo charlie delta echo\nfoxtrot golf hotel india juliet\n"
                       "kilo lima mike november oscar\npapa quebec romeo sierra tango";
#define GR_STEP(limit) "{\"op\":\"gopher_repetition\",\"top_ngram_fracs\":[0,0,0]" limit "}"
    dsp_batch b;
    dsp_batch_init(&b, "text");
    ops_push_text(&b, "distinct", text, strlen(text));

    CHECK_EQ_STR(ops_decide(GR_STEP(""), &b, 0), "kept");
    CHECK_EQ_STR(ops_decide(GR_STEP(",\"max_words\":20"), &b, 0), "kept");
    CHECK_EQ_STR(ops_decide(GR_STEP(",\"max_words\":19"), &b, 0), "too_many_words");
    CHECK_EQ_STR(ops_decide(GR_STEP(",\"max_lines\":4"), &b, 0), "kept");
    CHECK_EQ_STR(ops_decide(GR_STEP(",\"max_lines\":3"), &b, 0), "too_many_lines");
#undef GR_STEP
    dsp_batch_free(&b);
}

static void test_gopher_repetition_blank_lines(void)
{
    /* A run of newlines, however long, counts as one line break, so 1 MiB
     * of blank lines between two lines stays within max_lines 2. */
    size_t len;
    char *text = ops_repeat_line("\n", 1 << 20, &len);
    memcpy(text, "first", 5);
    memcpy(text + len - 6, "second", 6);
    dsp_batch b;
    dsp_batch_init(&b, "text");
    ops_push_text(&b, "blank", text, len);
    free(text);
    CHECK_EQ_STR(ops_decide("{\"op\":\"gopher_repetition\",\"max_lines\":2}", &b, 0), "kept");
    dsp_batch_free(&b);
}

static void test_quality_options_change_decision(void)
{
    dsp_batch b;
    REQUIRE(load_snippets(&b) == DOC_COUNT);
    /* With min_words lowered to 30, the 35-word stub passes: "You've
     * followed a link to a topic that doesn't exist yet" has 2 stop words. */
    CHECK_EQ_STR(ops_decide("{\"op\":\"gopher_quality\",\"min_words\":30}", &b, DOC_WIKI_STUB),
                 "kept");
    /* Turning the duplicate line rules off leaves the n-gram rules. */
    CHECK(strcmp(ops_decide("{\"op\":\"gopher_repetition\",\"dup_line_frac\":0}", &b,
                            DOC_FORUM_NAV),
                 "dup_line_frac") != 0);
    dsp_batch_free(&b);
}

static void test_quality_invalid_options(void)
{
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    CHECK(ops_run_step(&r, "{\"op\":\"gopher_quality\",\"min_words\":-1}", &b, 0) == DSP_EINVAL);
    CHECK(strstr(r.err.msg, "min_words") != NULL);
    CHECK(ops_run_step(&r, "{\"op\":\"gopher_repetition\",\"top_ngram_fracs\":[0.2]}", &b, 0) ==
          DSP_EINVAL);
    CHECK(strstr(r.err.msg, "top_ngram_fracs") != NULL);
    CHECK(ops_run_step(&r, "{\"op\":\"gopher_repetition\",\"max_words\":0}", &b, 0) ==
          DSP_EINVAL);
    CHECK(strstr(r.err.msg, "max_words") != NULL);
    CHECK(ops_run_step(&r, "{\"op\":\"gopher_repetition\",\"max_lines\":-3}", &b, 0) ==
          DSP_EINVAL);
    CHECK(strstr(r.err.msg, "max_lines") != NULL);
    CHECK(ops_run_step(&r, "{\"op\":\"c4_quality\",\"min_sentences\":\"5\"}", &b, 0) == DSP_EINVAL);
    CHECK(strstr(r.err.msg, "min_sentences") != NULL);
    dsp_batch_free(&b);
}

TEST_MAIN({"gopher_quality real documents", test_gopher_quality_real},
          {"gopher_repetition real documents", test_gopher_repetition_real},
          {"c4_quality real documents", test_c4_quality_real},
          {"c4_quality rewrites kept lines", test_c4_quality_rewrites_lines},
          {"c4_quality citations at line end", test_c4_quality_citations_at_end},
          {"fineweb_quality real documents", test_fineweb_quality_real},
          {"gopher_quality edge cases", test_gopher_quality_edges},
          {"gopher_repetition edge cases", test_gopher_repetition_edges},
          {"c4_quality edge cases", test_c4_quality_edges},
          {"fineweb_quality edge cases", test_fineweb_quality_edges},
          {"filters on 1 MiB repeated line", test_one_mib_repeated_line},
          {"gopher_repetition word and line limits", test_gopher_repetition_limits},
          {"gopher_repetition blank line runs", test_gopher_repetition_blank_lines},
          {"quality options change decisions", test_quality_options_change_decision},
          {"quality invalid options rejected", test_quality_invalid_options})
