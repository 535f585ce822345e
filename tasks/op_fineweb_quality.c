/*
 * op_fineweb_quality.c - the `fineweb_quality` filter: FineWeb's own
 * quality rules, from Penedo et al. 2024, "The FineWeb Datasets: Decanting
 * the Web for the Finest Text Data at Scale". Defaults and measures follow
 * datatrove's reference implementation,
 * src/datatrove/pipeline/filters/fineweb_quality_filter.py. On the lines
 * that are not blank, a document is removed when
 *   - fewer than 12% end in punctuation (. ' " ! ?), ("line_punct_ratio")
 *   - more than 67% are at most 30 characters long, ("short_line_ratio")
 *   - more than 1% of the characters (newlines not counted) are in lines
 *     that repeat an earlier line, ("char_dup_ratio")
 *   - there are more than 0.3 newlines per word. ("list_ratio")
 * A document with no non-blank line is removed as "empty". Words are split
 * on whitespace (op_text.h) where datatrove uses a tokenizer.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "op.h"
#include "op_text.h"

typedef struct {
    double line_punct_thr, short_line_thr, char_dup_thr, new_line_thr;
    int short_line_length, line_punct_exclude_zero;
    dsp_text_counter table;
} fw_state;

enum { FW_EMPTY, FW_LINE_PUNCT, FW_SHORT_LINES, FW_CHAR_DUP, FW_LIST };

static const dsp_op_option fw_options[] = {
    {"line_punct_thr", DSP_OPT_FLOAT, "0.12",
     "minimum fraction of lines ending in . ' \" ! or ?; 0 disables", 0, 0},
    {"line_punct_exclude_zero", DSP_OPT_BOOL, "false",
     "keep documents where no line ends in punctuation (skip the rule when the fraction is 0)", 0, 0},
    {"short_line_thr", DSP_OPT_FLOAT, "0.67",
     "maximum fraction of short lines; 1 disables", 0, 0},
    {"short_line_length", DSP_OPT_INT, "30", "a line of at most this many characters is short", 0, DSP_OP_INT_MAX_32},
    {"char_duplicates_ratio", DSP_OPT_FLOAT, "0.01",
     "maximum fraction of characters in duplicated lines; 1 disables", 0, 0},
    {"new_line_ratio", DSP_OPT_FLOAT, "0.3", "maximum newlines per word; 0 disables", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const fw_reasons[] = {"empty", "line_punct_ratio", "short_line_ratio",
                                         "char_dup_ratio", "list_ratio", NULL};

extern const dsp_op_def dsp_op_fineweb_quality_def;

static dsp_status fw_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                            dsp_err *err)
{
    (void)ctx;
    const dsp_op_def *def = &dsp_op_fineweb_quality_def;
    for (const dsp_op_option *o = def->options; o->name; o++)
        if (o->type != DSP_OPT_BOOL && dsp_op_opt_number(options, def, o->name) < 0)
            return dsp_err_set(err, DSP_EINVAL, "option \"%s\" must be >= 0", o->name);
    fw_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    s->line_punct_thr = dsp_op_opt_number(options, def, "line_punct_thr");
    s->line_punct_exclude_zero = dsp_op_opt_bool(options, def, "line_punct_exclude_zero");
    s->short_line_thr = dsp_op_opt_number(options, def, "short_line_thr");
    s->short_line_length = (int)dsp_op_opt_number(options, def, "short_line_length");
    s->char_dup_thr = dsp_op_opt_number(options, def, "char_duplicates_ratio");
    s->new_line_thr = dsp_op_opt_number(options, def, "new_line_ratio");
    *state = s;
    return DSP_OK;
}

static int fw_is_blank(const char *p, size_t n)
{
    size_t i = 0, k;
    while (i < n && (k = dsp_text_space_len(p, n, i)) > 0)
        i += k;
    return i >= n;
}

/* Returns the removal reason for document d, whose text is text[0..len),
 * or -1 to keep it. */
static int fw_check(fw_state *s, dsp_batch *b, dsp_doc *d, const char *text, size_t len)
{
    size_t lines = 0, punct = 0, short_lines = 0, dup_chars = 0, newlines = 0;
    const char *p = text, *end = text + len;

    for (const char *q = text; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        newlines++;
    dsp_text_counter_reset(&s->table, newlines + 1);

    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        if (!fw_is_blank(p, n)) {
            size_t chars = dsp_text_count_chars(p, n);
            char last = p[n - 1];
            lines++;
            if (last == '.' || last == '\'' || last == '"' || last == '!' || last == '?')
                punct++;
            if (chars <= (size_t)s->short_line_length)
                short_lines++;
            if (dsp_text_counter_add(&s->table, dsp_hash64(p, n, 0x51ed270b27ad1d5bull)) > 1)
                dup_chars += chars;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (lines == 0)
        return FW_EMPTY;

    double ratio = (double)punct / (double)lines;
    if (ratio < s->line_punct_thr && !(ratio == 0 && s->line_punct_exclude_zero))
        return FW_LINE_PUNCT;
    if ((double)short_lines / (double)lines > s->short_line_thr)
        return FW_SHORT_LINES;

    size_t chars_no_newlines = dsp_text_count_chars(text, len) - newlines;
    if (chars_no_newlines > 0 && (double)dup_chars / (double)chars_no_newlines > s->char_dup_thr)
        return FW_CHAR_DUP;

    if (s->new_line_thr > 0) {
        size_t words = dsp_op_doc_word_count(b, d);
        if (words == 0 || (double)newlines / (double)words > s->new_line_thr)
            return FW_LIST;
    }
    return -1;
}

static dsp_status fw_process(void *state, dsp_batch *b, unsigned char *keep, dsp_op_counters *c,
                             dsp_err *err)
{
    (void)err;
    fw_state *s = state;

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        size_t len;
        const char *text = dsp_op_doc_text(b, &b->docs[i], &len);
        int reason = fw_check(s, b, &b->docs[i], text, len);
        if (reason >= 0) {
            keep[i] = 0;
            c->removed[reason]++;
        }
    }
    return DSP_OK;
}

static void fw_destroy(void *state)
{
    fw_state *s = state;
    dsp_text_counter_free(&s->table);
    free(s);
}

const dsp_op_def dsp_op_fineweb_quality_def = {
    .name = "fineweb_quality",
    .summary = "FineWeb rules: punctuated lines, short lines, duplicated lines, list-like pages",
    .wide = 0,
    .options = fw_options,
    .reasons = fw_reasons,
    .extra_names = NULL,
    .create = fw_create,
    .process = fw_process,
    .finish = NULL,
    .destroy = fw_destroy,
};
