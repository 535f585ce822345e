/*
 * op_dedup.c - the wide operators dedup_exact and dedup_minhash.
 *
 * Both remove every document that duplicates an earlier one, where
 * "earlier" is the global order key of tasks/dedup.h, so the survivors do
 * not depend on the number of workers or tasks. The planner turns each into
 * shuffle stages (planner/plan.c) and the runtime runs those stages
 * (runtime/stage_wide.c). Their `process` callback only rejects a call,
 * because a map stage must never run a wide operator inline.
 */
#include <string.h>

#include "minhash.h"
#include "op_dedup.h"

static const dsp_op_option dedup_exact_options[] = {
    {"field", DSP_OPT_STRING, "\"\"",
     "JSON member to compare, e.g. \"url\", or a dotted path into nested objects, e.g. "
     "\"metadata.url\" (a top-level member with that exact name wins); empty = the "
     "document's text. Documents whose member is missing or null are all kept and counted "
     "in the warning dedup_field_missing. Values of different JSON types never match, so "
     "the string \"1\" differs from the number 1. Numbers match by exact decimal value: "
     "1, 1.0 and 1e0 match, and integers of any length compare exactly. Strings compare "
     "decoded, and arrays and objects by their JSON text without whitespace, so member "
     "order and the spelling of numbers inside them matter", 0, 0},
    {"normalize", DSP_OPT_BOOL, NULL,
     "compare normalised text (lower case, digits as 0, punctuation and spaces as one "
     "separator) instead of the raw bytes; default true for the text, false when field is "
     "set, because normalising would merge distinct values such as /a/1 and /A/2. With a "
     "field it applies to string values only", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const dedup_exact_member_options[] = {"field", NULL};

static const dsp_op_option dedup_minhash_options[] = {
    {"scheme", DSP_OPT_STRING, "\"one_permutation\"",
     "signature scheme: \"one_permutation\" (each shingle hash goes to one of bands x "
     "rows bins, and empty bins are filled by densification) or \"k_permutations\" "
     "(classic MinHash: bands x rows hash functions per shingle, more CPU); both estimate "
     "Jaccard similarity, and signatures of the two do not compare",
     0, 0},
    {"ngram", DSP_OPT_INT, "5",
     "words per shingle; words come from the normalised text (lower case, every digit as 0, "
     "punctuation and spaces as separators), so documents that differ only in numbers, such "
     "as 12 and 47, are near duplicates", 1, 64},
    {"bands", DSP_OPT_INT, "14", "LSH bands; bands x rows signature values per document", 1, DSP_MINHASH_MAX_PERMS},
    {"rows", DSP_OPT_INT, "8", "signature values per LSH band", 1, DSP_MINHASH_MAX_PERMS},
    {"threshold", DSP_OPT_FLOAT, "0.8",
     "estimated Jaccard similarity of the shingle sets that makes two documents duplicates", 0, 0},
    {"verify", DSP_OPT_BOOL, "true",
     "check the estimated similarity of each candidate pair instead of trusting a shared band", 0, 0},
    {"clusters", DSP_OPT_BOOL, "false",
     "also publish the duplicate clusters as JSONL under _dedup/clusters/ in the output, "
     "one line per cluster of [input index, byte offset] keys", 0, 0},
    {"sketch_bits", DSP_OPT_INT, "4",
     "bits of each signature value that band records carry for the check: 1, 2, 4, 8, 16 "
     "or 32; 32 compares whole signatures, 4 costs 56 bytes per band record instead of 448", 1, 32},
    {"components_memory_mb", DSP_OPT_INT, "256",
     "memory budget of the one connected-components task in MiB, its shuffle buffers "
     "included; when the documents with edges do not fit, it sorts edges on local disk in "
     "rounds instead, with the same result", 1, 1048576},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const dedup_reasons[] = {"duplicate", NULL};

dsp_status dsp_op_dedup_exact_config(const cJSON *step, const char **field,
                                     dsp_dedup_exact_opts *opts, dsp_err *err)
{
    (void)err;
    memset(opts, 0, sizeof *opts);
    const char *f = dsp_op_opt_string(step, &dsp_op_dedup_exact_def, "field");
    *field = f && f[0] ? f : NULL;

    /* "normalize" has no single default: the text is normalised unless the
     * step sets it to false, and a field (a URL, an id) is compared as given. */
    const cJSON *normalize = step ? cJSON_GetObjectItemCaseSensitive(step, "normalize") : NULL;
    if (normalize)
        opts->raw = !cJSON_IsTrue(normalize);
    else
        opts->raw = *field != NULL;
    return DSP_OK;
}

dsp_status dsp_op_dedup_minhash_config(const cJSON *step, dsp_dedup_minhash_opts *opts,
                                       dsp_err *err)
{
    const dsp_op_def *def = &dsp_op_dedup_minhash_def;
    double ngram = dsp_op_opt_number(step, def, "ngram");
    double bands = dsp_op_opt_number(step, def, "bands");
    double rows = dsp_op_opt_number(step, def, "rows");
    double threshold = dsp_op_opt_number(step, def, "threshold");

    memset(opts, 0, sizeof *opts);
    const char *scheme = dsp_op_opt_string(step, def, "scheme");
    opts->params.scheme = dsp_minhash_scheme_parse(scheme);
    if (opts->params.scheme == DSP_MINHASH_DEFAULT_SCHEME)
        return dsp_err_set(err, DSP_EINVAL,
                           "option \"scheme\" must be \"one_permutation\" or "
                           "\"k_permutations\", got \"%s\"",
                           scheme ? scheme : "");
    if (ngram < 1 || ngram > 64)
        return dsp_err_set(err, DSP_EINVAL, "option \"ngram\" must be 1 to 64, got %g", ngram);
    if (bands < 1 || rows < 1 || bands * rows > DSP_MINHASH_MAX_PERMS)
        return dsp_err_set(err, DSP_EINVAL,
                           "options \"bands\" (%g) and \"rows\" (%g) must be at least 1 and "
                           "their product at most %d",
                           bands, rows, DSP_MINHASH_MAX_PERMS);
    if (!(threshold > 0 && threshold <= 1))
        return dsp_err_set(err, DSP_EINVAL,
                           "option \"threshold\" must be in (0, 1], got %g", threshold);
    opts->params.ngram = (int)ngram;
    opts->params.bands = (int)bands;
    opts->params.rows = (int)rows;
    opts->threshold = threshold;
    opts->verify = dsp_op_opt_bool(step, def, "verify") ? 1 : -1;
    double bits = dsp_op_opt_number(step, def, "sketch_bits");
    if (bits != 1 && bits != 2 && bits != 4 && bits != 8 && bits != 16 && bits != 32)
        return dsp_err_set(err, DSP_EINVAL,
                           "option \"sketch_bits\" must be 1, 2, 4, 8, 16 or 32, got %g", bits);
    opts->sketch_bits = (int)bits;
    double memory_mb = dsp_op_opt_number(step, def, "components_memory_mb");
    if (!(memory_mb >= 1 && memory_mb <= 1048576))
        return dsp_err_set(err, DSP_EINVAL,
                           "option \"components_memory_mb\" must be 1 to 1048576 (MiB), got %g",
                           memory_mb);
    opts->io.components_budget = (size_t)memory_mb << 20;
    return DSP_OK;
}

dsp_status dsp_op_dedup_minhash_plan_config(const cJSON *step, dsp_dedup_minhash_opts *opts,
                                            dsp_err *err)
{
    dsp_status st = dsp_op_dedup_minhash_config(step, opts, err);
    if (st == DSP_OK && !cJSON_GetObjectItemCaseSensitive(step, "scheme"))
        opts->params.scheme = DSP_MINHASH_K_PERMUTATIONS;
    return st;
}

cJSON *dsp_op_dedup_pin_step(const cJSON *step)
{
    cJSON *copy = cJSON_Duplicate(step, 1);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(step, "op");
    if (cJSON_IsString(op) && !strcmp(op->valuestring, dsp_op_dedup_minhash_def.name) &&
        !cJSON_GetObjectItemCaseSensitive(step, "scheme"))
        cJSON_AddStringToObject(copy, "scheme",
                                dsp_op_opt_string(NULL, &dsp_op_dedup_minhash_def, "scheme"));
    return copy;
}

/* The state is unused: the runtime reads the options from the plan. */
static dsp_status dedup_exact_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                                     dsp_err *err)
{
    const char *field;
    dsp_dedup_exact_opts opts;
    (void)ctx;
    *state = NULL;
    return dsp_op_dedup_exact_config(options, &field, &opts, err);
}

static dsp_status dedup_minhash_create(const cJSON *options, const dsp_op_ctx *ctx,
                                       void **state, dsp_err *err)
{
    dsp_dedup_minhash_opts opts;
    (void)ctx;
    *state = NULL;
    return dsp_op_dedup_minhash_config(options, &opts, err);
}

static dsp_status dedup_process(void *state, dsp_batch *b, unsigned char *keep,
                                dsp_op_counters *c, dsp_err *err)
{
    (void)state;
    (void)b;
    (void)keep;
    (void)c;
    return dsp_err_set(err, DSP_EINVAL,
                       "dedup is a wide operator and runs in its own shuffle stages, "
                       "not inside a map stage");
}

const dsp_op_def dsp_op_dedup_exact_def = {
    .name = "dedup_exact",
    .summary = "remove documents whose text (or a chosen field) equals an earlier document's",
    .wide = 1,
    .options = dedup_exact_options,
    .member_options = dedup_exact_member_options,
    .reasons = dedup_reasons,
    .create = dedup_exact_create,
    .process = dedup_process,
};

const dsp_op_def dsp_op_dedup_minhash_def = {
    .name = "dedup_minhash",
    .summary = "remove near-duplicate documents found with MinHash LSH over word shingles",
    .wide = 1,
    .options = dedup_minhash_options,
    .reasons = dedup_reasons,
    .create = dedup_minhash_create,
    .process = dedup_process,
};
