/*
 * op_sample.c - the `sample` operator: keep a deterministic fraction of the
 * documents. A document is kept when xxh3(key, seed) / 2^64 < rate, where
 * the key is the raw JSON value of the id member (so "7" and 7 differ) or,
 * when the document has no id, its text. Reruns, retries and different
 * batchings keep the same documents, and a different seed draws an
 * independent sample.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "op.h"
#include "op_text.h"

typedef struct {
    double rate;
    uint64_t seed;
    char id_field[128];
} sample_state;

static const dsp_op_option sample_options[] = {
    {"rate", DSP_OPT_FLOAT, "0.1", "fraction of documents to keep, 0..1", 0, 0},
    {"seed", DSP_OPT_INT, "0", "hash seed; a different seed selects a different sample", 0, DSP_OP_INT_MAX_COUNT},
    {"id_field", DSP_OPT_STRING, "\"id\"",
     "member whose value is hashed; documents without it hash their text", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const sample_member_options[] = {"id_field", NULL};

static const char *const sample_reasons[] = {"not_sampled", NULL};

extern const dsp_op_def dsp_op_sample_def;

static dsp_status sample_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                                dsp_err *err)
{
    (void)ctx;
    double rate = dsp_op_opt_number(options, &dsp_op_sample_def, "rate");
    double seed = dsp_op_opt_number(options, &dsp_op_sample_def, "seed");
    const char *id_field = dsp_op_opt_string(options, &dsp_op_sample_def, "id_field");
    if (rate < 0 || rate > 1)
        return dsp_err_set(err, DSP_EINVAL, "option \"rate\" must be in 0..1, got %g", rate);
    if (seed < 0)
        return dsp_err_set(err, DSP_EINVAL, "option \"seed\" must be >= 0");
    if (!id_field || !id_field[0] || strlen(id_field) >= sizeof ((sample_state *)0)->id_field)
        return dsp_err_set(err, DSP_EINVAL, "option \"id_field\" must be 1 to 127 bytes");
    sample_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    s->rate = rate;
    s->seed = (uint64_t)seed;
    strcpy(s->id_field, id_field);
    *state = s;
    return DSP_OK;
}

static dsp_status sample_process(void *state, dsp_batch *b, unsigned char *keep,
                                 dsp_op_counters *c, dsp_err *err)
{
    (void)err;
    const sample_state *s = state;

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        dsp_doc *d = &b->docs[i];
        const char *key;
        size_t key_len;
        if (!dsp_json_find(d->line, d->line_len, s->id_field, &key, &key_len))
            key = dsp_op_doc_text(b, d, &key_len);
        uint64_t h = dsp_hash64(key, key_len, s->seed);
        double u = (double)(h >> 11) * 0x1.0p-53;
        if (u >= s->rate) {
            keep[i] = 0;
            c->removed[0]++;
        }
    }
    return DSP_OK;
}

static void sample_destroy(void *state)
{
    free(state);
}

const dsp_op_def dsp_op_sample_def = {
    .name = "sample",
    .summary = "keep a deterministic hash-based fraction of the documents",
    .wide = 0,
    .options = sample_options,
    .member_options = sample_member_options,
    .reasons = sample_reasons,
    .extra_names = NULL,
    .create = sample_create,
    .process = sample_process,
    .finish = NULL,
    .destroy = sample_destroy,
};
