/*
 * test_ops_words.c - the word split that operators share (dsp_op_doc_words
 * in tasks/op_text.h): it must find the same words as dsp_text_next_word,
 * give every filter the same decisions as splitting the text itself, and be
 * dropped when an operator changes the text.
 *
 * Real documents come from the main job's input
 * tests/data/cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz (697
 * Common Crawl pages in many languages) and tests/data/ops/cc-snippets.jsonl.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../tasks/op_text.h"
#include "ops_helpers.h"
#include "test.h"

#define CC_PAGES "cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"

/* Append every line of a gzip-compressed JSONL file under tests/data to
 * the batch, at most max lines; returns the count or -1. */
static int load_jsonl_gz(dsp_batch *b, const char *rel, int max)
{
    char path[4096];
    gzFile f = gzopen(ops_data_path(rel, path, sizeof path), "rb");
    if (!f) {
        fprintf(stderr, "  cannot open %s\n", path);
        return -1;
    }
    dsp_buf line = DSP_BUF_INIT;
    char chunk[65536];
    int count = 0;
    while (count < max && gzgets(f, chunk, sizeof chunk)) {
        size_t n = strlen(chunk);
        int complete = n > 0 && chunk[n - 1] == '\n';
        dsp_buf_append(&line, chunk, complete ? n - 1 : n);
        if (!complete && !gzeof(f))
            continue;
        if (line.len > 0) {
            dsp_batch_push(b, line.data, line.len, rel, 0);
            count++;
        }
        dsp_buf_reset(&line);
    }
    dsp_buf_free(&line);
    gzclose(f);
    return count;
}

/* The words of text by dsp_text_next_word and dsp_text_count_chars, the
 * definition the shared split must match. */
static size_t reference_words(const char *text, size_t len, dsp_text_word *out, size_t cap)
{
    size_t pos = 0, start, wlen, n = 0;
    while (dsp_text_next_word(text, len, &pos, &start, &wlen) && n < cap) {
        out[n].start = (uint32_t)start;
        out[n].len = (uint32_t)wlen;
        out[n].chars = (uint32_t)dsp_text_count_chars(text + start, wlen);
        n++;
    }
    return n;
}

static void check_split_matches(dsp_batch *b, dsp_doc *d, const char *label)
{
    size_t len;
    const char *text = dsp_op_doc_text(b, d, &len);
    size_t cap = len / 2 + 1;
    dsp_text_word *expected = malloc(cap * sizeof *expected);
    size_t n = reference_words(text, len, expected, cap);

    CHECKF(dsp_text_count_words(text, len) == n, "%s: dsp_text_count_words", label);
    const dsp_text_words *split = dsp_op_doc_words(b, d);
    CHECKF(split->complete, "%s", label);
    CHECKF(split->n == n, "%s: %zu words, expected %zu", label, split->n, n);
    for (size_t i = 0; i < n && i < split->n; i++) {
        const dsp_text_word *got = &split->words[i];
        if (got->start != expected[i].start || got->len != expected[i].len ||
            got->chars != expected[i].chars) {
            CHECKF(0, "%s: word %zu is (%u, %u, %u), expected (%u, %u, %u)", label, i,
                   got->start, got->len, got->chars, expected[i].start, expected[i].len,
                   expected[i].chars);
            break;
        }
    }
    free(expected);
}

static void test_split_real_documents(void)
{
    dsp_batch b;
    dsp_batch_init(&b, "text");
    int count = load_jsonl_gz(&b, CC_PAGES, 1000);
    CHECK_EQ_INT(count, 697);
    int snippets = ops_load_jsonl(&b, "ops/cc-snippets.jsonl");
    CHECK_EQ_INT(snippets, 13);
    for (size_t i = 0; i < b.n; i++) {
        char label[64];
        snprintf(label, sizeof label, "document %zu", i);
        check_split_matches(&b, &b.docs[i], label);
    }
    dsp_batch_free(&b);
}

static void check_text(dsp_batch *b, const char *text, size_t len, const char *label)
{
    dsp_batch_reset(b);
    dsp_doc *d = dsp_batch_push(b, "{}", 2, "test", 0);
    d->text = dsp_arena_strndup(&b->arena, text, len);
    d->text_len = len;
    check_split_matches(b, d, label);
}

static void test_split_block_edges(void)
{
    /* The split reads 64-byte blocks: words and Unicode spaces that meet or
     * cross a block edge, and texts that end exactly on one. */
    char text[200];
    dsp_batch b;
    dsp_batch_init(&b, "text");

    memset(text, 'a', 128);
    check_text(&b, text, 64, "one word of 64 bytes");
    check_text(&b, text, 128, "one word of 128 bytes");
    text[63] = ' ';
    check_text(&b, text, 128, "space at byte 63");
    check_text(&b, text, 64, "space as the last byte");

    /* U+3000 (3 bytes) at each offset around the first block edge. */
    for (size_t at = 60; at <= 64; at++) {
        memset(text, 'b', sizeof text);
        memcpy(text + at, "\xE3\x80\x80", 3);
        char label[64];
        snprintf(label, sizeof label, "U+3000 at byte %zu", at);
        check_text(&b, text, 130, label);
        check_text(&b, text, at + 3, label);
    }
    /* A letter with a continuation byte across the edge (U+00E9 at 63). */
    memset(text, 'c', sizeof text);
    memcpy(text + 63, "\xC3\xA9", 2);
    check_text(&b, text, 100, "U+00E9 across the edge");
    dsp_batch_free(&b);
}

static void test_split_random_text(void)
{
    /* Pieces that exercise the whitespace rules: every kind of space,
     * characters that share a lead byte with a Unicode space but are not
     * one (U+00A9, U+1681, U+200B, U+2030, U+3001), controls that are not
     * spaces, letters and a multi-byte letter. */
    static const char *const pieces[] = {
        "a", "word", "\xC3\xA9t\xC3\xA9", " ", "\t", "\n", "\v", "\f", "\r", "\x1C", "\x1F",
        "\xC2\x85", "\xC2\xA0", "\xC2\xA9", "\xE1\x9A\x80", "\xE1\x9A\x81", "\xE2\x80\x80",
        "\xE2\x80\x8A", "\xE2\x80\x8B", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF",
        "\xE2\x80\xB0", "\xE2\x81\x9F", "\xE3\x80\x80", "\xE3\x80\x81", "\x01", "\x7F",
        "\xE4\xB8\xAD", "abcdefghijklmnopq",
    };
    size_t npieces = sizeof pieces / sizeof pieces[0];
    uint64_t seed = 12345;
    dsp_batch b;
    dsp_batch_init(&b, "text");
    for (int round = 0; round < 4000; round++) {
        char text[4096];
        size_t len = 0;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int count = (int)((seed >> 33) % 200);
        for (int k = 0; k < count; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            const char *p = pieces[(seed >> 33) % npieces];
            memcpy(text + len, p, strlen(p));
            len += strlen(p);
        }
        dsp_batch_reset(&b);
        dsp_doc *d = dsp_batch_push(&b, "{}", 2, "test", 0);
        d->text = dsp_arena_strndup(&b.arena, text, len);
        d->text_len = len;
        char label[64];
        snprintf(label, sizeof label, "random text %d", round);
        check_split_matches(&b, d, label);
    }
    dsp_batch_free(&b);
}

/* Run step over a copy of src->docs[first .. first + n), with the word
 * split made first when `shared` is set and forced to the split-as-you-go
 * path otherwise. The copy is left in *out for the caller to compare and
 * free. */
static void run_with_split(const char *step, dsp_batch *src, size_t first, size_t n, int shared,
                           dsp_batch *out, ops_run *r)
{
    static dsp_text_words incomplete = {NULL, 0, 0};
    dsp_batch_init(out, "text");
    for (size_t i = first; i < first + n; i++) {
        dsp_doc *d = dsp_batch_push(out, src->docs[i].line, src->docs[i].line_len, "test", 0);
        if (shared)
            dsp_op_doc_words(out, d);
        else
            d->words = &incomplete;
    }
    CHECK(ops_run_step(r, step, out, 0) == DSP_OK);
}

static void test_filters_same_with_split(void)
{
    static const char *const steps[] = {
        "{\"op\":\"gopher_quality\"}",
        "{\"op\":\"gopher_quality\",\"min_words\":5,\"min_stop_words\":0}",
        "{\"op\":\"gopher_repetition\"}",
        "{\"op\":\"c4_quality\"}",
        "{\"op\":\"c4_quality\",\"max_word_length\":8}",
        "{\"op\":\"fineweb_quality\"}",
        "{\"op\":\"stats\"}",
        "{\"op\":\"length\",\"min_words\":100}",
    };
    dsp_batch src;
    dsp_batch_init(&src, "text");
    REQUIRE(load_jsonl_gz(&src, CC_PAGES, 1000) == 697);
    REQUIRE(ops_load_jsonl(&src, "ops/cc-snippets.jsonl") == 13);

    /* ops_run_step decides at most OPS_MAX_DOCS documents at a time. */
    size_t kept_docs = 0;
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        for (size_t first = 0; first < src.n; first += OPS_MAX_DOCS) {
            size_t n = src.n - first < OPS_MAX_DOCS ? src.n - first : OPS_MAX_DOCS;
            dsp_batch shared, streamed;
            ops_run with, without;
            run_with_split(steps[k], &src, first, n, 1, &shared, &with);
            run_with_split(steps[k], &src, first, n, 0, &streamed, &without);

            CHECKF(memcmp(with.keep, without.keep, n) == 0, "%s: keep decisions differ",
                   steps[k]);
            CHECKF(memcmp(with.inst.counters.removed, without.inst.counters.removed,
                          sizeof with.inst.counters.removed) == 0,
                   "%s: removal counts differ", steps[k]);
            CHECKF(memcmp(with.inst.counters.extra, without.inst.counters.extra,
                          sizeof with.inst.counters.extra) == 0,
                   "%s: extra counters differ", steps[k]);
            for (size_t i = 0; i < n; i++) {
                dsp_buf a = DSP_BUF_INIT, c = DSP_BUF_INIT;
                dsp_doc_serialize(&shared, &shared.docs[i], &a);
                dsp_doc_serialize(&streamed, &streamed.docs[i], &c);
                CHECKF(a.len == c.len && memcmp(a.data, c.data, a.len) == 0,
                       "%s: document %zu differs", steps[k], first + i);
                dsp_buf_free(&a);
                dsp_buf_free(&c);
                kept_docs += with.keep[i];
            }
            dsp_op_instance_free(&with.inst);
            dsp_op_instance_free(&without.inst);
            dsp_batch_free(&shared);
            dsp_batch_free(&streamed);
        }
    }
    /* Both outcomes occur, so the comparison covers kept and removed pages. */
    CHECK(kept_docs > 100);
    CHECK(kept_docs < 8 * src.n);
    dsp_batch_free(&src);
}

static void test_set_text_drops_split(void)
{
    dsp_batch b;
    dsp_batch_init(&b, "text");
    dsp_doc *d = ops_push_text(&b, "doc", "one two three", 13);
    const dsp_text_words *before = dsp_op_doc_words(&b, d);
    CHECK_EQ_INT(before->n, 3);
    CHECK(d->words == before);

    dsp_doc_set_text(&b, d, "four five", 9);
    CHECK(d->words == NULL);
    const dsp_text_words *after = dsp_op_doc_words(&b, d);
    REQUIRE(after->complete);
    CHECK_EQ_INT(after->n, 2);
    CHECK_EQ_INT(after->words[1].start, 5);
    CHECK_EQ_INT(after->words[1].len, 4);
    CHECK_EQ_INT(dsp_op_doc_word_count(&b, d), 2);
    dsp_batch_free(&b);
}

static void test_operators_drop_split(void)
{
    /* c4_quality drops the short first line, and normalize turns the tab
     * into a space and trims the ends (U+00A0 stays). Each must leave a
     * split that matches its new text. */
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    const char *text = "Short line\nThis line has enough words to be kept by C4.\n"
                       "And this one is a second proper sentence.";
    dsp_doc *d = ops_push_text(&b, "c4", text, strlen(text));
    CHECK_EQ_INT(dsp_op_doc_words(&b, d)->n, 20);
    REQUIRE(ops_run_step(&r, "{\"op\":\"c4_quality\",\"min_sentences\":1}", &b, 0) == DSP_OK);
    CHECK(r.keep[0]);
    CHECK(d->text_changed);
    CHECK(d->words == NULL);
    check_split_matches(&b, d, "after c4_quality");
    CHECK_EQ_INT(dsp_op_doc_words(&b, d)->n, 18);
    dsp_op_instance_free(&r.inst);

    const char *spaced = "  x\ty\xC2\xA0z  ";
    dsp_doc *e = ops_push_text(&b, "normalize", spaced, strlen(spaced));
    CHECK_EQ_INT(dsp_op_doc_words(&b, e)->n, 3);
    REQUIRE(ops_run_step(&r, "{\"op\":\"normalize\"}", &b, 0) == DSP_OK);
    CHECK_EQ_STR(e->text, "x y\xC2\xA0z");
    CHECK(e->words == NULL);
    check_split_matches(&b, e, "after normalize");
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_split_over_limit(void)
{
    /* One more word than a split keeps: the split is marked incomplete,
     * and the iterator and the word count still see every word. */
    size_t words = DSP_TEXT_WORDS_MAX + 1;
    char *text = malloc(2 * words);
    REQUIRE(text != NULL);
    for (size_t i = 0; i < words; i++) {
        text[2 * i] = 'a';
        text[2 * i + 1] = ' ';
    }
    dsp_batch b;
    dsp_batch_init(&b, "text");
    dsp_doc *d = dsp_batch_push(&b, "{}", 2, "test", 0);
    d->text = text;
    d->text_len = 2 * words - 1;

    const dsp_text_words *split = dsp_op_doc_words(&b, d);
    CHECK(!split->complete);
    CHECK_EQ_INT(split->n, 0);
    CHECK_EQ_INT(dsp_op_doc_word_count(&b, d), words);

    dsp_text_word_iter it;
    dsp_op_doc_words_begin(&b, d, &it);
    size_t start, len, chars, seen = 0, last = 0;
    while (dsp_text_word_iter_next(&it, &start, &len, &chars)) {
        seen++;
        last = start;
    }
    CHECK_EQ_INT(seen, words);
    CHECK_EQ_INT(last, 2 * (words - 1));
    dsp_batch_free(&b);
    free(text);
}

TEST_MAIN({"split real documents", test_split_real_documents},
          {"split random text", test_split_random_text},
          {"split block edges", test_split_block_edges},
          {"filters same with shared split", test_filters_same_with_split},
          {"set text drops split", test_set_text_drops_split},
          {"operators drop split", test_operators_drop_split},
          {"split over word limit", test_split_over_limit})
