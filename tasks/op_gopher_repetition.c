/*
 * op_gopher_repetition.c - the `gopher_repetition` filter: remove documents
 * with repeated lines, paragraphs or n-grams, as in Rae et al. 2021,
 * "Scaling Language Models: Methods, Analysis & Insights from Training
 * Gopher" (arXiv:2112.11446), Table A1. The thresholds and the exact
 * measures follow datatrove's reference implementation,
 * src/datatrove/pipeline/filters/gopher_repetition_filter.py. A document
 * is removed when one of these fractions is above its threshold:
 *
 *   duplicate paragraphs, and their characters      0.30, 0.20
 *   duplicate lines, and their characters           0.30, 0.20
 *   characters in the top 2-, 3- and 4-gram         0.20, 0.18, 0.16
 *   characters in duplicate 5- to 10-grams          0.15, 0.14, 0.13,
 *                                                   0.12, 0.11, 0.10
 *
 * Paragraphs are the trimmed text split on runs of 2 or more newlines, and
 * lines the text split on runs of 1 or more newlines.
 * A duplicate is every occurrence after the first. Character fractions
 * divide by the length of the whole text in code points. The top n-gram
 * fraction is the length of the most frequent n-gram (words joined by one
 * space) times its count. For duplicate n-grams, a scan over the word
 * positions adds the length of a repeated n-gram (its words without spaces)
 * and jumps past it, as datatrove does. Words are split on whitespace
 * (op_text.h) where datatrove uses a tokenizer.
 *
 * NOTE: lines, paragraphs and n-grams are compared by 64-bit hashes, so two
 * different strings with the same hash count as equal. Lines and paragraphs
 * hash their bytes with xxh3. An n-gram hashes its words' xxh3 hashes as a
 * polynomial mod 2^64, read in O(1) from prefix sums. At about 2^-64 per
 * pair this does not change decisions in practice.
 *
 * Speed: an n-gram that occurs twice starts with an (n-1)-gram that occurs
 * twice. So the count of 2-grams visits every position and marks those
 * whose 2-gram repeats, the count of 3-grams visits only those and marks
 * the repeated 3-grams, and so on up to 5-grams. The duplicate scans for
 * n = 5..10 add to the counter only at positions with a repeated 5-gram.
 * A skipped position starts an n-gram that occurs once, so it can neither
 * be a repeat nor match a later one, and every result stays as it was.
 *
 * Memory: the per-word arrays and hash tables live in the state and grow to
 * the largest document, so nothing is allocated per record after warm-up.
 * They take about 70 bytes per word and 32 bytes per line, so a document of
 * tens of millions of short words or lines would need more than 1 GiB. So
 * a document with more than max_words words (default 1,000,000) is removed
 * with the reason too_many_words, and one with more than max_lines lines
 * (default 1,000,000) with too_many_lines, before any table is sized for
 * it. With the defaults the tables take at most about 82 MiB (an estimate:
 * 18 bytes per word plus two tables of 2^21 16-byte slots). A job on one
 * document of a million random words peaked 50 MiB above pass-through
 * (peak RSS from /usr/bin/time around `dspark run --workers 1`), and
 * tests/integration/quality_memory.sh checks the bound. datatrove has no
 * such limit. When gopher_quality runs first, it removes every document
 * above 100,000 words, so only the line limit can still apply there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Inline xxh3 for the per-word hashes, because most words are a few bytes
 * and the call into libxxhash costs about as much as the hash. The values
 * equal dsp_hash64's, which calls the same function. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "../core/util.h"
#include "op.h"
#include "op_text.h"

#define GR_TOP_MIN 2
#define GR_TOP_MAX 4
#define GR_DUP_MIN 5
#define GR_DUP_MAX 10

/* Odd multiplier of the n-gram polynomial hash (the 64-bit golden ratio). */
#define GR_BASE 0x9e3779b97f4a7c15ull

/* Slot of the n-gram count table; key 0 marks an empty slot. */
typedef struct {
    uint64_t key;
    uint32_t first; /* position of the first occurrence */
    uint32_t count;
} gr_ngram_slot;

typedef struct {
    size_t max_words, max_lines;
    double dup_para_frac, dup_para_char_frac, dup_line_frac, dup_line_char_frac;
    double top_frac[GR_TOP_MAX + 1];
    double dup_frac[GR_DUP_MAX + 1];

    uint64_t *prefix_hash;  /* polynomial hash of words 0..i-1; n + 1 entries */
    uint64_t *chars_before; /* code points in the words before word i; n + 1 entries */
    unsigned char *marks[2]; /* per word: 1 when the n-gram there occurs more than once */
    size_t words_cap;
    uint64_t base_pow[GR_DUP_MAX + 1]; /* GR_BASE^n mod 2^64 */

    dsp_text_counter table;
    gr_ngram_slot *slots;
    size_t slots_cap;
} gr_state;

enum {
    GR_DUP_PARA, GR_DUP_PARA_CHAR, GR_DUP_LINE, GR_DUP_LINE_CHAR,
    GR_TOP2, GR_TOP3, GR_TOP4,
    GR_DUP5, GR_DUP6, GR_DUP7, GR_DUP8, GR_DUP9, GR_DUP10,
    GR_TOO_MANY_WORDS, GR_TOO_MANY_LINES,
};

static const dsp_op_option gr_options[] = {
    {"dup_para_frac", DSP_OPT_FLOAT, "0.3", "maximum fraction of duplicate paragraphs; 0 disables", 0, 0},
    {"dup_para_char_frac", DSP_OPT_FLOAT, "0.2",
     "maximum fraction of characters in duplicate paragraphs; 0 disables", 0, 0},
    {"dup_line_frac", DSP_OPT_FLOAT, "0.3", "maximum fraction of duplicate lines; 0 disables", 0, 0},
    {"dup_line_char_frac", DSP_OPT_FLOAT, "0.2",
     "maximum fraction of characters in duplicate lines; 0 disables", 0, 0},
    {"top_ngram_fracs", DSP_OPT_LIST, "[0.20,0.18,0.16]",
     "for n = 2, 3, 4: maximum fraction of characters in the most frequent n-gram; 0 disables one", 0, 0},
    {"dup_ngram_fracs", DSP_OPT_LIST, "[0.15,0.14,0.13,0.12,0.11,0.10]",
     "for n = 5..10: maximum fraction of characters in duplicate n-grams; 0 disables one", 0, 0},
    {"max_words", DSP_OPT_INT, "1000000",
     "remove documents with more words than this, which bounds memory (about 70 bytes per word); "
     "at least 1", 1, UINT32_MAX - 1},
    {"max_lines", DSP_OPT_INT, "1000000",
     "remove documents with more lines (runs of newlines + 1) than this, which bounds memory "
     "(about 32 bytes per line); "
     "at least 1", 1, UINT32_MAX - 1},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const gr_reasons[] = {
    "dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac",
    "top_2_gram", "top_3_gram", "top_4_gram",
    "dup_5_gram", "dup_6_gram", "dup_7_gram", "dup_8_gram", "dup_9_gram", "dup_10_gram",
    "too_many_words", "too_many_lines", NULL,
};

extern const dsp_op_def dsp_op_gopher_repetition_def;

static dsp_status gr_read_fracs(const cJSON *options, const char *name, double *out, int first,
                                int last, dsp_err *err)
{
    dsp_status st = DSP_OK;
    cJSON *list = dsp_op_opt_json(options, &dsp_op_gopher_repetition_def, name);
    int expected = last - first + 1;

    if (cJSON_GetArraySize(list) != expected) {
        st = dsp_err_set(err, DSP_EINVAL, "option \"%s\" must list %d numbers (n = %d..%d)", name,
                         expected, first, last);
        goto out;
    }
    for (int i = 0; i < expected; i++) {
        const cJSON *v = cJSON_GetArrayItem(list, i);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1) {
            st = dsp_err_set(err, DSP_EINVAL, "option \"%s\": entry %d must be a number in 0..1",
                             name, i);
            goto out;
        }
        out[first + i] = v->valuedouble;
    }
out:
    cJSON_Delete(list);
    return st;
}

static dsp_status gr_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                            dsp_err *err)
{
    (void)ctx;
    const dsp_op_def *def = &dsp_op_gopher_repetition_def;
    gr_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    s->dup_para_frac = dsp_op_opt_number(options, def, "dup_para_frac");
    s->dup_para_char_frac = dsp_op_opt_number(options, def, "dup_para_char_frac");
    s->dup_line_frac = dsp_op_opt_number(options, def, "dup_line_frac");
    s->dup_line_char_frac = dsp_op_opt_number(options, def, "dup_line_char_frac");
    dsp_status st = DSP_OK;
    double max_words = dsp_op_opt_number(options, def, "max_words");
    double max_lines = dsp_op_opt_number(options, def, "max_lines");
    /* Positions are stored in 32 bits, so neither limit may pass 2^32 - 2. */
    if (max_words < 1 || max_words > (double)(UINT32_MAX - 1))
        st = dsp_err_set(err, DSP_EINVAL, "option \"max_words\" must be in 1..%u, got %g",
                         UINT32_MAX - 1, max_words);
    else if (max_lines < 1 || max_lines > (double)(UINT32_MAX - 1))
        st = dsp_err_set(err, DSP_EINVAL, "option \"max_lines\" must be in 1..%u, got %g",
                         UINT32_MAX - 1, max_lines);
    if (st != DSP_OK) {
        free(s);
        return st;
    }
    s->max_words = (size_t)max_words;
    s->max_lines = (size_t)max_lines;
    st = gr_read_fracs(options, "top_ngram_fracs", s->top_frac, GR_TOP_MIN, GR_TOP_MAX, err);
    if (st == DSP_OK)
        st = gr_read_fracs(options, "dup_ngram_fracs", s->dup_frac, GR_DUP_MIN, GR_DUP_MAX, err);
    if (st != DSP_OK) {
        free(s);
        return st;
    }
    s->base_pow[0] = 1;
    for (int n = 1; n <= GR_DUP_MAX; n++)
        s->base_pow[n] = s->base_pow[n - 1] * GR_BASE;
    *state = s;
    return DSP_OK;
}

/* Duplicate pieces of text separated by runs of at least min_newlines
 * newlines: returns the number of pieces, and sets the number of duplicate
 * pieces and their length in code points. max_pieces is an upper bound on
 * the pieces (see gr_count_line_bound). */
static size_t gr_split_duplicates(gr_state *s, const char *text, size_t len, int min_newlines,
                                  size_t max_pieces, size_t *dups, size_t *dup_chars)
{
    size_t pieces = 0;
    *dups = 0;
    *dup_chars = 0;
    dsp_text_counter_reset(&s->table, max_pieces);

    size_t start = 0, i = 0;
    for (;;) {
        /* Find the next separator: a run of >= min_newlines newlines. */
        size_t sep = len, sep_end = len;
        i = start;
        while (i < len) {
            const char *nl = memchr(text + i, '\n', len - i);
            if (!nl)
                break;
            i = (size_t)(nl - text);
            size_t j = i;
            while (j < len && text[j] == '\n')
                j++;
            if ((int)(j - i) >= min_newlines) {
                sep = i;
                sep_end = j;
                break;
            }
            i = j;
        }
        size_t n = sep - start;
        pieces++;
        if (dsp_text_counter_add(&s->table, dsp_hash64(text + start, n, 0x9e3779b97f4a7c15ull)) > 1) {
            (*dups)++;
            *dup_chars += dsp_text_count_chars(text + start, n);
        }
        if (sep == len)
            break;
        start = sep_end;
    }
    return pieces;
}

/* Upper bound on the lines and paragraphs of the text: runs of newlines + 1. */
static size_t gr_count_line_bound(const char *text, size_t len)
{
    size_t runs = 0;
    const char *p = text, *end = text + len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        runs++;
        while (p < end && *p == '\n')
            p++;
    }
    return runs + 1;
}

/* Fill the per-word arrays from the words of text that `it` iterates over.
 * Returns the number of words, or SIZE_MAX when there are more than
 * s->max_words (the arrays then never grow past max_words entries). */
static size_t gr_collect_words(gr_state *s, const char *text, dsp_text_word_iter *it)
{
    size_t start, wlen, wchars, n = 0;
    while (dsp_text_word_iter_next(it, &start, &wlen, &wchars)) {
        if (n == s->max_words)
            return SIZE_MAX;
        if (n == s->words_cap) {
            s->words_cap = s->words_cap ? 2 * s->words_cap : 4096;
            if (s->words_cap > s->max_words)
                s->words_cap = s->max_words;
            s->prefix_hash =
                dsp_xrealloc(s->prefix_hash, (s->words_cap + 1) * sizeof *s->prefix_hash);
            s->chars_before =
                dsp_xrealloc(s->chars_before, (s->words_cap + 1) * sizeof *s->chars_before);
            s->marks[0] = dsp_xrealloc(s->marks[0], s->words_cap);
            s->marks[1] = dsp_xrealloc(s->marks[1], s->words_cap);
        }
        if (n == 0) {
            s->prefix_hash[0] = 0;
            s->chars_before[0] = 0;
        }
        uint64_t word_hash = XXH3_64bits_withSeed(text + start, wlen, 0);
        s->prefix_hash[n + 1] = s->prefix_hash[n] * GR_BASE + word_hash;
        s->chars_before[n + 1] = s->chars_before[n] + wchars;
        n++;
    }
    return n;
}

/* Hash of the n words starting at i: the polynomial hash of words i..i+n-1,
 * the difference of two prefix hashes, then mixed (the finalizer of
 * MurmurHash3) because the counter indexes its table by the low bits. */
static uint64_t gr_ngram_hash(const gr_state *s, size_t i, int n)
{
    uint64_t h = s->prefix_hash[i + (size_t)n] - s->prefix_hash[i] * s->base_pow[n];
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static size_t gr_ngram_chars(const gr_state *s, size_t i, int n)
{
    return (size_t)(s->chars_before[i + (size_t)n] - s->chars_before[i]);
}

/*
 * Count the n-grams that start at the positions marked in `from` (every
 * position when `from` is NULL), and mark in `to` the positions whose
 * n-gram occurs more than once. `nfrom` is the number of positions marked
 * in `from`, which sizes the table. Sets *top_chars to the characters of
 * the most frequent n-gram (words joined by one space) times its count. On
 * a tie the n-gram that reached the top count first wins. Returns the
 * number of positions marked in `to`.
 */
static size_t gr_count_ngrams(gr_state *s, size_t nwords, int n, const unsigned char *from,
                              size_t nfrom, unsigned char *to, size_t *top_chars)
{
    size_t npos = nwords - (size_t)(n - 1), marked = 0;
    size_t visits = from ? nfrom : npos;
    size_t cap = 64;
    while (cap < 2 * visits)
        cap *= 2;
    if (cap > s->slots_cap) {
        free(s->slots);
        s->slots = dsp_xmalloc(cap * sizeof *s->slots);
        s->slots_cap = cap;
    }
    memset(s->slots, 0, cap * sizeof *s->slots);
    memset(to, 0, npos);

    size_t mask = cap - 1, best_count = 0, best_chars = 0;
    for (size_t i = 0; i < npos && visits > 0; i++) {
        if (from && !from[i])
            continue;
        uint64_t key = gr_ngram_hash(s, i, n);
        if (key == 0)
            key = 1;
        size_t slot = (size_t)key & mask;
        while (s->slots[slot].key != 0 && s->slots[slot].key != key)
            slot = (slot + 1) & mask;
        gr_ngram_slot *e = &s->slots[slot];
        if (e->key == 0) {
            e->key = key;
            e->first = (uint32_t)i;
        } else {
            marked += !to[e->first] + 1;
            to[e->first] = 1;
            to[i] = 1;
        }
        if (++e->count > best_count) {
            best_count = e->count;
            best_chars = gr_ngram_chars(s, i, n) + (size_t)(n - 1);
        }
    }
    /* Without a repeat, every n-gram counts 1 and the first one wins, even
     * when `from` skipped it. */
    if (best_count <= 1) {
        best_count = 1;
        best_chars = gr_ngram_chars(s, 0, n) + (size_t)(n - 1);
    }
    *top_chars = best_count * best_chars;
    return marked;
}

/* Characters in repeated n-grams (words without spaces), skipping past each
 * repeat. Only the positions marked in repeated5 can start a repeated
 * n-gram, so the table contains just those (see the file comment). */
static size_t gr_dup_ngram_chars(gr_state *s, size_t nwords, const unsigned char *repeated5,
                                 size_t nmarked, int n)
{
    size_t repeated = 0, i = 0;
    dsp_text_counter_reset(&s->table, nmarked);
    while (i + (size_t)n <= nwords) {
        if (!repeated5[i]) {
            i++;
            continue;
        }
        uint32_t count = dsp_text_counter_add(&s->table, gr_ngram_hash(s, i, n));
        if (count > 1) {
            repeated += gr_ngram_chars(s, i, n);
            i += (size_t)n;
        } else {
            i++;
        }
    }
    return repeated;
}

static int gr_is_ascii_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Returns the removal reason for document d, whose text is text[0..len),
 * or -1 to keep it. */
static int gr_check(gr_state *s, dsp_batch *batch, dsp_doc *d, const char *text, size_t len)
{
    size_t chars = dsp_text_count_chars(text, len);
    size_t dups, dup_chars, pieces;
    if (chars == 0)
        return -1;

    /* The line and paragraph tables are sized by this bound. */
    size_t max_pieces = gr_count_line_bound(text, len);
    if (max_pieces > s->max_lines)
        return GR_TOO_MANY_LINES;

    /* Paragraphs come from the text with surrounding whitespace removed. */
    size_t b = 0, e = len;
    while (b < e && gr_is_ascii_space(text[b]))
        b++;
    while (e > b && gr_is_ascii_space(text[e - 1]))
        e--;
    pieces = gr_split_duplicates(s, text + b, e - b, 2, max_pieces, &dups, &dup_chars);
    if (s->dup_para_frac > 0 && (double)dups / (double)pieces > s->dup_para_frac)
        return GR_DUP_PARA;
    if (s->dup_para_char_frac > 0 && (double)dup_chars / (double)chars > s->dup_para_char_frac)
        return GR_DUP_PARA_CHAR;

    pieces = gr_split_duplicates(s, text, len, 1, max_pieces, &dups, &dup_chars);
    if (s->dup_line_frac > 0 && (double)dups / (double)pieces > s->dup_line_frac)
        return GR_DUP_LINE;
    if (s->dup_line_char_frac > 0 && (double)dup_chars / (double)chars > s->dup_line_char_frac)
        return GR_DUP_LINE_CHAR;

    dsp_text_word_iter it;
    dsp_op_doc_words_begin(batch, d, &it);
    size_t nwords = gr_collect_words(s, text, &it);
    if (nwords == SIZE_MAX)
        return GR_TOO_MANY_WORDS;
    if (nwords < GR_TOP_MIN)
        return -1;

    /* Count 2- to 5-grams, each over the positions whose shorter n-gram
     * repeats. After the loop, `from` marks the repeated 5-grams. */
    const unsigned char *from = NULL;
    size_t nmarked = 0, top_chars;
    int cur = 0;
    for (int n = GR_TOP_MIN; n <= GR_DUP_MIN && nwords >= (size_t)n; n++) {
        nmarked = gr_count_ngrams(s, nwords, n, from, nmarked, s->marks[cur], &top_chars);
        if (n <= GR_TOP_MAX && s->top_frac[n] > 0 &&
            (double)top_chars / (double)chars > s->top_frac[n])
            return GR_TOP2 + (n - GR_TOP_MIN);
        from = s->marks[cur];
        cur = 1 - cur;
    }
    if (nwords < GR_DUP_MIN)
        return -1;
    for (int n = GR_DUP_MIN; n <= GR_DUP_MAX; n++) {
        if (s->dup_frac[n] <= 0 || nwords < (size_t)n)
            continue;
        size_t repeated = gr_dup_ngram_chars(s, nwords, from, nmarked, n);
        if ((double)repeated / (double)chars > s->dup_frac[n])
            return GR_DUP5 + (n - GR_DUP_MIN);
        /* No n-gram repeats, so no longer one can: each contains one. */
        if (repeated == 0)
            break;
    }
    return -1;
}

static dsp_status gr_process(void *state, dsp_batch *b, unsigned char *keep, dsp_op_counters *c,
                             dsp_err *err)
{
    (void)err;
    gr_state *s = state;

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        size_t len;
        const char *text = dsp_op_doc_text(b, &b->docs[i], &len);
        int reason = gr_check(s, b, &b->docs[i], text, len);
        if (reason >= 0) {
            keep[i] = 0;
            c->removed[reason]++;
        }
    }
    return DSP_OK;
}

static void gr_destroy(void *state)
{
    gr_state *s = state;
    free(s->prefix_hash);
    free(s->chars_before);
    free(s->marks[0]);
    free(s->marks[1]);
    free(s->slots);
    dsp_text_counter_free(&s->table);
    free(s);
}

const dsp_op_def dsp_op_gopher_repetition_def = {
    .name = "gopher_repetition",
    .summary = "Gopher repetition rules: duplicate lines, paragraphs and n-grams",
    .wide = 0,
    .options = gr_options,
    .reasons = gr_reasons,
    .extra_names = NULL,
    .create = gr_create,
    .process = gr_process,
    .finish = NULL,
    .destroy = gr_destroy,
};
