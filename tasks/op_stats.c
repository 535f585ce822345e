/*
 * op_stats.c - the `stats` operator: counts characters (Unicode code
 * points), words (op_text.h), lines and UTF-8 bytes of each document's text,
 * adds the totals to the extra counters that feed the job summary, and
 * optionally adds the per-document counts as a member
 * "stats": {"chars":..,"words":..,"lines":..,"bytes":..}. It removes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op.h"
#include "op_text.h"

typedef struct {
    int add_field;
    char field[128];
} stats_state;

enum { STATS_DOCS, STATS_CHARS, STATS_WORDS, STATS_LINES, STATS_BYTES };

static const dsp_op_option stats_options[] = {
    {"add_field", DSP_OPT_BOOL, "false", "add the per-document counts as a JSON member", 0, 0},
    {"field", DSP_OPT_STRING, "\"stats\"", "name of that member when add_field is true", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const stats_reasons[] = {NULL};
static const char *const stats_extra[] = {"docs", "chars", "words", "lines", "bytes", NULL};

extern const dsp_op_def dsp_op_stats_def;

static dsp_status stats_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                               dsp_err *err)
{
    const char *field = dsp_op_opt_string(options, &dsp_op_stats_def, "field");
    if (!field || !field[0] || strlen(field) >= sizeof ((stats_state *)0)->field)
        return dsp_err_set(err, DSP_EINVAL, "option \"field\" must be 1 to 127 bytes");
    int add_field = dsp_op_opt_bool(options, &dsp_op_stats_def, "add_field");
    if (add_field && ctx && ctx->text_field && strcmp(field, ctx->text_field) == 0)
        return dsp_err_set(err, DSP_EINVAL, "option \"field\" is \"%s\", the job's text_field; "
                           "choose another name for the counts member", field);
    stats_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    s->add_field = add_field;
    strcpy(s->field, field);
    *state = s;
    return DSP_OK;
}

static dsp_status stats_process(void *state, dsp_batch *b, unsigned char *keep,
                                dsp_op_counters *c, dsp_err *err)
{
    (void)err;
    const stats_state *s = state;
    char value[160];

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        size_t len;
        const char *text = dsp_op_doc_text(b, &b->docs[i], &len);
        size_t chars = dsp_text_count_chars(text, len);
        size_t words = dsp_op_doc_word_count(b, &b->docs[i]);
        size_t lines = dsp_text_count_lines(text, len);
        c->extra[STATS_DOCS]++;
        c->extra[STATS_CHARS] += chars;
        c->extra[STATS_WORDS] += words;
        c->extra[STATS_LINES] += lines;
        c->extra[STATS_BYTES] += len;
        if (s->add_field) {
            snprintf(value, sizeof value, "{\"chars\":%zu,\"words\":%zu,\"lines\":%zu,\"bytes\":%zu}",
                     chars, words, lines, len);
            dsp_doc_add_field(b, &b->docs[i], s->field, value);
        }
    }
    return DSP_OK;
}

static void stats_destroy(void *state)
{
    free(state);
}

const dsp_op_def dsp_op_stats_def = {
    .name = "stats",
    .summary = "count characters, words, lines and bytes per document and in total",
    .wide = 0,
    .options = stats_options,
    .reasons = stats_reasons,
    .extra_names = stats_extra,
    .create = stats_create,
    .process = stats_process,
    .finish = NULL,
    .destroy = stats_destroy,
};
