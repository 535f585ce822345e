/*
 * op_langid.c - the `langid` operator: detect each document's language with
 * CLD2 (Debian libcld2, through langid_cld2.h) and add the members
 * "lang" (ISO 639-1 code, "un" when unknown) and "lang_score" (0..1).
 *
 * lang_score is the share of the text that CLD2 attributes to the top
 * language (its percent3[0] / 100), and 0 when CLD2 reports the result as
 * not reliable. It is not a probability like fastText's. So the default
 * min_score of 0.65, FineWeb's fastText threshold for English (Penedo et
 * al. 2024), keeps documents that are mostly in one language and reliably
 * detected, which is not the same set that fastText would keep.
 *
 * By default only the first 8 KiB of a text go to CLD2. On 100 MB of the
 * linux-doc benchmark corpus this made the operator about 1.5 times faster
 * and kept the same documents. A document that changes language after its
 * first 8 KiB is classified by its beginning. Against the whole text, with
 * min_score 0.65 after normalize, the keep decision differs for 50 of the
 * first 20,000 documents of the Debian documentation benchmark corpus and 2
 * of the 755 documents of the main job's inputs in tests/data. A 4 KiB cut
 * differs for 313 and 6, and a 2 KiB cut for 506 and 15, so the default
 * stays at 8 KiB.
 *
 * CLD2's result depends only on the bytes it is given, so each instance
 * keeps the results of recent texts in a direct-mapped cache of 65,536
 * slots (4 MiB) keyed by the XXH3 128-bit hash and the length of those
 * bytes. Exact copies then cost one hash. In the Debian documentation
 * corpus, 7,827 of the 86,607 texts that reach langid in the main job's
 * step order are copies of a text still in the cache (13% of the bytes).
 *
 * NOTE: two different texts with the same length and 128-bit hash would
 * share a result. At about 2^-128 per pair, this does not happen in
 * practice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/util.h"
#include "langid_cld2.h"
#include "op.h"
#include "op_text.h"

#define LANGID_MAX_KEEP 64
#define LANGID_CACHE_SLOTS 65536 /* a power of two */

typedef struct {
    XXH128_hash_t key; /* hash of the bytes given to CLD2 */
    size_t len;        /* their length; 0 marks an empty slot */
    dsp_cld2_result result;
} langid_cache_slot;

typedef struct {
    char keep[LANGID_MAX_KEEP][16];
    int nkeep;
    double min_score;
    size_t max_bytes;
    /* LANGID_CACHE_SLOTS slots, allocated on the first detection. Freeing
     * 4 MiB raises glibc's mmap threshold, and with it the task's peak RSS
     * (by 9 to 15 MB in the benchmark jobs). So an instance that only
     * validates a step never allocates them. */
    langid_cache_slot *cache;
} langid_state;

enum { LANGID_NOT_KEPT, LANGID_LOW_SCORE };

static const dsp_op_option langid_options[] = {
    {"keep", DSP_OPT_LIST, "[]",
     "language codes to keep, e.g. [\"en\",\"de\"]; empty keeps every language", 0, 0},
    {"min_score", DSP_OPT_FLOAT, "0.65",
     "minimum lang_score (share of text in the top language, 0..1); 0 disables", 0, 0},
    {"max_bytes", DSP_OPT_INT, "8192",
     "detect on at most the first this many bytes of the text; 0 = the whole text", 0, DSP_OP_INT_MAX_COUNT},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const langid_reasons[] = {"language_not_kept", "low_score", NULL};

extern const dsp_op_def dsp_op_langid_def;

static dsp_status langid_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                                dsp_err *err)
{
    (void)ctx;
    dsp_status st = DSP_OK;
    langid_state *s = calloc(1, sizeof *s);
    cJSON *keep = dsp_op_opt_json(options, &dsp_op_langid_def, "keep");
    if (!s) {
        st = dsp_err_set(err, DSP_ENOMEM, "out of memory");
        goto out;
    }
    s->min_score = dsp_op_opt_number(options, &dsp_op_langid_def, "min_score");
    if (s->min_score < 0 || s->min_score > 1) {
        st = dsp_err_set(err, DSP_EINVAL, "option \"min_score\" must be in 0..1, got %g",
                         s->min_score);
        goto out;
    }
    double max_bytes = dsp_op_opt_number(options, &dsp_op_langid_def, "max_bytes");
    if (max_bytes < 0) {
        st = dsp_err_set(err, DSP_EINVAL, "option \"max_bytes\" must be >= 0");
        goto out;
    }
    s->max_bytes = (size_t)max_bytes;
    const cJSON *item;
    cJSON_ArrayForEach(item, keep) {
        if (!cJSON_IsString(item) || !item->valuestring[0] ||
            strlen(item->valuestring) >= sizeof s->keep[0]) {
            st = dsp_err_set(err, DSP_EINVAL,
                             "option \"keep\" must list language codes such as \"en\"");
            goto out;
        }
        if (!dsp_cld2_known_code(item->valuestring)) {
            st = dsp_err_set(err, DSP_EINVAL,
                             "option \"keep\": \"%s\" is not a language code that CLD2 "
                             "reports; use ISO 639-1 codes such as \"en\" or \"de\"",
                             item->valuestring);
            goto out;
        }
        if (s->nkeep == LANGID_MAX_KEEP) {
            st = dsp_err_set(err, DSP_EINVAL, "option \"keep\" lists more than %d languages",
                             LANGID_MAX_KEEP);
            goto out;
        }
        strcpy(s->keep[s->nkeep++], item->valuestring);
    }
    *state = s;
    s = NULL;
out:
    cJSON_Delete(keep);
    free(s);
    return st;
}

static int langid_is_kept(const langid_state *s, const char *code)
{
    if (s->nkeep == 0)
        return 1;
    for (int i = 0; i < s->nkeep; i++)
        if (strcmp(s->keep[i], code) == 0)
            return 1;
    return 0;
}

/* CLD2's result for text[0..len), from the cache when the same bytes were
 * detected recently. Empty text is detected without the cache, because
 * length 0 marks an empty slot. */
static void langid_detect(langid_state *s, const char *text, size_t len, dsp_cld2_result *r)
{
    if (len == 0) {
        dsp_cld2_detect(text, len, r);
        return;
    }
    if (!s->cache)
        s->cache = dsp_xcalloc(LANGID_CACHE_SLOTS, sizeof *s->cache);
    XXH128_hash_t key = XXH3_128bits(text, len);
    langid_cache_slot *slot = &s->cache[key.low64 & (LANGID_CACHE_SLOTS - 1)];
    if (slot->len == len && XXH128_isEqual(slot->key, key)) {
        *r = slot->result;
        return;
    }
    dsp_cld2_detect(text, len, r);
    slot->key = key;
    slot->len = len;
    slot->result = *r;
}

static dsp_status langid_process(void *state, dsp_batch *b, unsigned char *keep,
                                 dsp_op_counters *c, dsp_err *err)
{
    (void)err;
    langid_state *s = state;
    dsp_cld2_result r;
    char value[48];

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        dsp_doc *d = &b->docs[i];
        size_t len;
        const char *text = dsp_op_doc_text(b, d, &len);
        if (s->max_bytes > 0 && len > s->max_bytes) {
            /* Cut at a character boundary: back up over continuation bytes. */
            len = s->max_bytes;
            while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
                len--;
        }
        langid_detect(s, text, len, &r);
        double score = r.reliable ? r.percent / 100.0 : 0.0;

        snprintf(value, sizeof value, "\"%s\"", r.code);
        dsp_doc_add_field(b, d, "lang", value);
        snprintf(value, sizeof value, "%.4f", score);
        dsp_doc_add_field(b, d, "lang_score", value);

        if (!langid_is_kept(s, r.code)) {
            keep[i] = 0;
            c->removed[LANGID_NOT_KEPT]++;
        } else if (s->min_score > 0 && score < s->min_score) {
            keep[i] = 0;
            c->removed[LANGID_LOW_SCORE]++;
        }
    }
    return DSP_OK;
}

static void langid_destroy(void *state)
{
    langid_state *s = state;
    free(s->cache);
    free(s);
}

const dsp_op_def dsp_op_langid_def = {
    .name = "langid",
    .summary = "detect the language with CLD2, add lang and lang_score, keep chosen languages",
    .wide = 0,
    .options = langid_options,
    .reasons = langid_reasons,
    .extra_names = NULL,
    .create = langid_create,
    .process = langid_process,
    .finish = NULL,
    .destroy = langid_destroy,
};
