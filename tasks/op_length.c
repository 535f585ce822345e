/*
 * op_length.c - the `length` filter: remove documents whose text has fewer
 * or more characters (Unicode code points) or words than the limits. A limit
 * of 0 is no limit. Words are split as defined in op_text.h, and counted
 * only when a word limit is set.
 */
#include <stdint.h>
#include <stdlib.h>

#include "op.h"
#include "op_text.h"

typedef struct {
    uint64_t min_chars, max_chars, min_words, max_words;
} length_state;

enum { LEN_TOO_FEW_CHARS, LEN_TOO_MANY_CHARS, LEN_TOO_FEW_WORDS, LEN_TOO_MANY_WORDS };

static const dsp_op_option length_options[] = {
    {"min_chars", DSP_OPT_INT, "0", "minimum text length in characters (code points); 0 = no limit", 0, DSP_OP_INT_MAX_COUNT},
    {"max_chars", DSP_OPT_INT, "0", "maximum text length in characters (code points); 0 = no limit", 0, DSP_OP_INT_MAX_COUNT},
    {"min_words", DSP_OPT_INT, "0", "minimum number of whitespace-separated words; 0 = no limit", 0, DSP_OP_INT_MAX_COUNT},
    {"max_words", DSP_OPT_INT, "0", "maximum number of whitespace-separated words; 0 = no limit", 0, DSP_OP_INT_MAX_COUNT},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const length_reasons[] = {
    "too_few_chars", "too_many_chars", "too_few_words", "too_many_words", NULL,
};

extern const dsp_op_def dsp_op_length_def;

static dsp_status length_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                                dsp_err *err)
{
    (void)ctx;
    const char *names[] = {"min_chars", "max_chars", "min_words", "max_words"};
    double v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = dsp_op_opt_number(options, &dsp_op_length_def, names[i]);
        if (v[i] < 0)
            return dsp_err_set(err, DSP_EINVAL, "option \"%s\" must be >= 0, got %.0f",
                               names[i], v[i]);
    }
    if (v[1] > 0 && v[0] > v[1])
        return dsp_err_set(err, DSP_EINVAL, "min_chars (%.0f) is greater than max_chars (%.0f)",
                           v[0], v[1]);
    if (v[3] > 0 && v[2] > v[3])
        return dsp_err_set(err, DSP_EINVAL, "min_words (%.0f) is greater than max_words (%.0f)",
                           v[2], v[3]);
    length_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    s->min_chars = (uint64_t)v[0];
    s->max_chars = (uint64_t)v[1];
    s->min_words = (uint64_t)v[2];
    s->max_words = (uint64_t)v[3];
    *state = s;
    return DSP_OK;
}

static dsp_status length_process(void *state, dsp_batch *b, unsigned char *keep,
                                 dsp_op_counters *c, dsp_err *err)
{
    (void)err;
    const length_state *s = state;
    int need_words = s->min_words > 0 || s->max_words > 0;

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        size_t len;
        const char *text = dsp_op_doc_text(b, &b->docs[i], &len);
        int reason = -1;
        uint64_t chars = dsp_text_count_chars(text, len);
        if (s->min_chars && chars < s->min_chars)
            reason = LEN_TOO_FEW_CHARS;
        else if (s->max_chars && chars > s->max_chars)
            reason = LEN_TOO_MANY_CHARS;
        else if (need_words) {
            uint64_t words = dsp_op_doc_word_count(b, &b->docs[i]);
            if (s->min_words && words < s->min_words)
                reason = LEN_TOO_FEW_WORDS;
            else if (s->max_words && words > s->max_words)
                reason = LEN_TOO_MANY_WORDS;
        }
        if (reason >= 0) {
            keep[i] = 0;
            c->removed[reason]++;
        }
    }
    return DSP_OK;
}

static void length_destroy(void *state)
{
    free(state);
}

const dsp_op_def dsp_op_length_def = {
    .name = "length",
    .summary = "remove documents shorter or longer than limits in characters and words",
    .wide = 0,
    .options = length_options,
    .reasons = length_reasons,
    .extra_names = NULL,
    .create = length_create,
    .process = length_process,
    .finish = NULL,
    .destroy = length_destroy,
};
