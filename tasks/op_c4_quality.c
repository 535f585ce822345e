/*
 * op_c4_quality.c - the `c4_quality` operator: the line and page rules used
 * to build C4, from Raffel et al. 2020, "Exploring the Limits of Transfer
 * Learning with a Unified Text-to-Text Transformer" (JMLR 21). Defaults and
 * the order of the checks follow datatrove's
 * src/datatrove/pipeline/filters/c4_filters.py (C4QualityFilter), which
 * ports the TensorFlow Datasets C4 code.
 *
 * Each line (split on \n, surrounding whitespace removed) is dropped when
 *   - it has a word longer than 1,000 characters,
 *   - it does not end in terminal punctuation (. ! ? ") or ends in "...",
 *   - it has fewer than 3 words,
 *   - it contains "javascript" (any case),
 *   - it contains a policy phrase: "terms of use", "privacy policy",
 *     "cookie policy", "uses cookies", "use of cookies", "use cookies".
 * Wikipedia-style citations ("[1]", "[edit]", "[citation needed]") are
 * removed from a line before the punctuation check. The whole page is
 * removed when a line that passed the checks above contains "lorem ipsum"
 * or a curly bracket '{', or when the kept lines hold fewer than 5
 * sentences. The text is rewritten with the kept lines joined by \n.
 *
 * NOTE: sentences are counted as runs of . ! ? followed by whitespace, a
 * closing quote or bracket, or the end of the line, with at least one per
 * kept line. datatrove uses NLTK's Punkt tokenizer, which also splits on
 * other cues, so counts can differ on abbreviations such as "e.g. this".
 */
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "op.h"
#include "op_text.h"

typedef struct {
    int min_words_per_line, min_sentences, max_word_length;
    int terminal_punct, javascript, policy, lorem_ipsum, curly_bracket, citations;
    dsp_buf line;   /* the current line after citation removal */
    dsp_buf lower;  /* its ASCII lower-case copy */
    dsp_buf out;    /* the kept lines */
} c4_state;

enum { C4_FEW_SENTENCES, C4_LOREM_IPSUM, C4_CURLY_BRACKET };
enum { C4X_LONG_WORD, C4X_NO_PUNCT, C4X_FEW_WORDS, C4X_JAVASCRIPT, C4X_POLICY, C4X_KEPT };

static const dsp_op_option c4_options[] = {
    {"min_words_per_line", DSP_OPT_INT, "3", "drop lines with fewer words; 0 disables", 0, DSP_OP_INT_MAX_32},
    {"min_sentences", DSP_OPT_INT, "5", "remove pages with fewer sentences in kept lines; 0 disables", 0, DSP_OP_INT_MAX_32},
    {"max_word_length", DSP_OPT_INT, "1000",
     "drop lines with a word longer than this many characters; 0 disables", 0, DSP_OP_INT_MAX_32},
    {"filter_terminal_punct", DSP_OPT_BOOL, "true",
     "drop lines that do not end in . ! ? or \" (or end in ...)", 0, 0},
    {"filter_javascript", DSP_OPT_BOOL, "true", "drop lines that contain \"javascript\"", 0, 0},
    {"filter_policy", DSP_OPT_BOOL, "true", "drop lines with terms-of-use and cookie phrases", 0, 0},
    {"filter_lorem_ipsum", DSP_OPT_BOOL, "true", "remove pages that contain \"lorem ipsum\"", 0, 0},
    {"filter_curly_bracket", DSP_OPT_BOOL, "true", "remove pages that contain '{'", 0, 0},
    {"remove_citations", DSP_OPT_BOOL, "true",
     "remove [1], [edit] and [citation needed] from lines", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const c4_reasons[] = {"too_few_sentences", "lorem_ipsum", "curly_bracket", NULL};
static const char *const c4_extra[] = {"lines_too_long_word", "lines_no_terminal_punct",
                                       "lines_too_few_words", "lines_javascript",
                                       "lines_policy", "lines_kept", NULL};

static const char *const c4_policy_phrases[] = {
    "terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
    "use cookies", NULL,
};

extern const dsp_op_def dsp_op_c4_quality_def;

static dsp_status c4_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                            dsp_err *err)
{
    (void)ctx;
    const dsp_op_def *def = &dsp_op_c4_quality_def;
    const char *ints[] = {"min_words_per_line", "min_sentences", "max_word_length"};
    for (int i = 0; i < 3; i++)
        if (dsp_op_opt_number(options, def, ints[i]) < 0)
            return dsp_err_set(err, DSP_EINVAL, "option \"%s\" must be >= 0", ints[i]);
    c4_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    s->min_words_per_line = (int)dsp_op_opt_number(options, def, "min_words_per_line");
    s->min_sentences = (int)dsp_op_opt_number(options, def, "min_sentences");
    s->max_word_length = (int)dsp_op_opt_number(options, def, "max_word_length");
    s->terminal_punct = dsp_op_opt_bool(options, def, "filter_terminal_punct");
    s->javascript = dsp_op_opt_bool(options, def, "filter_javascript");
    s->policy = dsp_op_opt_bool(options, def, "filter_policy");
    s->lorem_ipsum = dsp_op_opt_bool(options, def, "filter_lorem_ipsum");
    s->curly_bracket = dsp_op_opt_bool(options, def, "filter_curly_bracket");
    s->citations = dsp_op_opt_bool(options, def, "remove_citations");
    *state = s;
    return DSP_OK;
}

/* Length of a citation starting at p ("[123]", "[]", "[edit]",
 * "[citation needed]"), or 0. */
static size_t c4_citation_len(const char *p, const char *end)
{
    if (*p != '[')
        return 0;
    const char *q = p + 1;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    if (q < end && *q == ']')
        return (size_t)(q - p) + 1;
    static const char *const words[] = {"[edit]", "[citation needed]"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(end - p) >= n && memcmp(p, words[i], n) == 0)
            return n;
    }
    return 0;
}

static size_t c4_count_sentences(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '.' && s[i] != '!' && s[i] != '?')
            continue;
        size_t j = i;
        while (j < n && (s[j] == '.' || s[j] == '!' || s[j] == '?'))
            j++;
        while (j < n && (s[j] == '"' || s[j] == '\'' || s[j] == ')' || s[j] == ']'))
            j++;
        if (j == n || s[j] == ' ' || s[j] == '\t')
            count++;
        i = j - 1;
    }
    return count ? count : 1;
}

static int c4_ends_with_terminal(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    char last = s[n - 1];
    if (last != '.' && last != '!' && last != '?' && last != '"')
        return 0;
    return !(n >= 3 && memcmp(s + n - 3, "...", 3) == 0);
}

/* Process one line with `words` words, one of them longer than
 * max_word_length characters when long_word is set. Returns a page removal
 * reason, or -1 when the line was handled (kept or dropped). Kept lines are
 * appended to s->out. */
static int c4_line(c4_state *s, const char *p, size_t n, size_t words, int long_word,
                   size_t *sentences, dsp_op_counters *c)
{
    /* Strip whitespace around the line. */
    size_t k;
    while (n > 0 && (k = dsp_text_space_len(p, n, 0)) > 0) {
        p += k;
        n -= k;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;

    if (long_word) {
        c->extra[C4X_LONG_WORD]++;
        return -1;
    }
    /* Most lines fail the punctuation rule. Removing citations cannot
     * change a last character other than ']', so such a line is dropped
     * here without copying it. */
    if (s->terminal_punct) {
        char last = n > 0 ? p[n - 1] : '\0';
        if (last != '.' && last != '!' && last != '?' && last != '"' && last != ']') {
            c->extra[C4X_NO_PUNCT]++;
            return -1;
        }
    }

    dsp_buf_reset(&s->line);
    if (s->citations) {
        const char *q = p, *end = p + n;
        while (q < end) {
            const char *bracket = memchr(q, '[', (size_t)(end - q));
            if (!bracket) {
                dsp_buf_append(&s->line, q, (size_t)(end - q));
                break;
            }
            dsp_buf_append(&s->line, q, (size_t)(bracket - q));
            size_t cl = c4_citation_len(bracket, end);
            if (cl == 0) {
                dsp_buf_append_char(&s->line, '[');
                cl = 1;
            }
            q = bracket + cl;
        }
    } else {
        dsp_buf_append(&s->line, p, n);
    }
    const char *line = s->line.data ? s->line.data : "";
    size_t len = s->line.len;

    if (s->terminal_punct && !c4_ends_with_terminal(line, len)) {
        c->extra[C4X_NO_PUNCT]++;
        return -1;
    }
    if (words < (size_t)s->min_words_per_line) {
        c->extra[C4X_FEW_WORDS]++;
        return -1;
    }

    dsp_buf_reset(&s->lower);
    dsp_buf_reserve(&s->lower, len);
    for (size_t i = 0; i < len; i++) {
        char ch = line[i];
        s->lower.data[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    s->lower.len = len;
    const char *lower = s->lower.data;

    if (s->lorem_ipsum && memmem(lower, len, "lorem ipsum", 11))
        return C4_LOREM_IPSUM;
    if (s->javascript && memmem(lower, len, "javascript", 10)) {
        c->extra[C4X_JAVASCRIPT]++;
        return -1;
    }
    if (s->curly_bracket && memchr(line, '{', len))
        return C4_CURLY_BRACKET;
    if (s->policy) {
        for (int i = 0; c4_policy_phrases[i]; i++) {
            if (memmem(lower, len, c4_policy_phrases[i], strlen(c4_policy_phrases[i]))) {
                c->extra[C4X_POLICY]++;
                return -1;
            }
        }
    }

    *sentences += c4_count_sentences(line, len);
    if (s->out.len > 0)
        dsp_buf_append_char(&s->out, '\n');
    dsp_buf_append(&s->out, line, len);
    c->extra[C4X_KEPT]++;
    return -1;
}

/* Returns the page removal reason, or -1 to keep the page. `it` iterates
 * over the words of text, which never span a newline. */
static int c4_check(c4_state *s, const char *text, size_t len, dsp_text_word_iter *it,
                    dsp_op_counters *c)
{
    size_t sentences = 0;
    const char *p = text, *end = text + len;
    size_t wstart = 0, wlen, wchars;
    int have_word = dsp_text_word_iter_next(it, &wstart, &wlen, &wchars);

    dsp_buf_reset(&s->out);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t line_end = (size_t)(e - text), words = 0;
        int long_word = 0;
        while (have_word && wstart < line_end) {
            words++;
            if (s->max_word_length > 0 && wchars > (size_t)s->max_word_length)
                long_word = 1;
            have_word = dsp_text_word_iter_next(it, &wstart, &wlen, &wchars);
        }
        int reason = c4_line(s, p, (size_t)(e - p), words, long_word, &sentences, c);
        if (reason >= 0)
            return reason;
        p = nl ? nl + 1 : end;
    }
    if (s->min_sentences > 0 && sentences < (size_t)s->min_sentences)
        return C4_FEW_SENTENCES;
    return -1;
}

static dsp_status c4_process(void *state, dsp_batch *b, unsigned char *keep, dsp_op_counters *c,
                             dsp_err *err)
{
    (void)err;
    c4_state *s = state;

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        dsp_doc *d = &b->docs[i];
        size_t len;
        const char *text = dsp_op_doc_text(b, d, &len);
        dsp_text_word_iter it;
        dsp_op_doc_words_begin(b, d, &it);
        int reason = c4_check(s, text, len, &it, c);
        if (reason >= 0) {
            keep[i] = 0;
            c->removed[reason]++;
            continue;
        }
        if (s->out.len != len || (len > 0 && memcmp(s->out.data, text, len) != 0))
            dsp_doc_set_text(b, d, s->out.data ? s->out.data : "", s->out.len);
    }
    return DSP_OK;
}

static void c4_destroy(void *state)
{
    c4_state *s = state;
    dsp_buf_free(&s->line);
    dsp_buf_free(&s->lower);
    dsp_buf_free(&s->out);
    free(s);
}

const dsp_op_def dsp_op_c4_quality_def = {
    .name = "c4_quality",
    .summary = "C4 rules: keep punctuated lines, drop boilerplate, remove lorem ipsum and code pages",
    .wide = 0,
    .options = c4_options,
    .reasons = c4_reasons,
    .extra_names = c4_extra,
    .create = c4_create,
    .process = c4_process,
    .finish = NULL,
    .destroy = c4_destroy,
};
