/*
 * op_repartition.c - the wide operator `repartition` (see op_repartition.h).
 * Its `process` callback only rejects a call, because a map stage must
 * never run a wide operator inline.
 */
#include "op_repartition.h"

#include <string.h>

/* Same bound as the planner's partition count. */
#define REPARTITION_MAX_SHARDS 10000

static const dsp_op_option repartition_options[] = {
    {"by", DSP_OPT_STRING, "\"hash\"",
     "\"hash\": shard by a hash of the whole document; \"field\": by a hash of `field`; "
     "\"sort\": sort by `field` into ranges (missing and null first, then numbers by exact "
     "decimal value, so integers of any length keep their order, then strings by their "
     "UTF-8 bytes, then other values by their JSON text; ties keep input order)", 0, 0},
    {"field", DSP_OPT_STRING, "\"\"",
     "JSON member to shard or sort by when by is \"field\" or \"sort\", e.g. \"url\", or "
     "a dotted path into nested objects, e.g. \"metadata.url\" (a top-level member with "
     "that exact name wins)", 0, 0},
    {"shards", DSP_OPT_INT, "0",
     "number of output shards; 0 = one per target_task_bytes of input", 0, REPARTITION_MAX_SHARDS},
    {"field_hash", DSP_OPT_STRING, "\"typed\"",
     "what \"by\": \"field\" hashes: \"typed\", the value's JSON type and value, so equal "
     "numbers and strings share a shard (1 and 1.0, \"A\" and \"\\u0041\"), while arrays and "
     "objects compare by their JSON text without whitespace ([1,2] and [1.0,2] differ); "
     "\"text\", the value's JSON text byte for byte",
     0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const repartition_member_options[] = {"field", NULL};

static const char *const repartition_reasons[] = {NULL};

dsp_status dsp_op_repartition_config(const cJSON *step, const char **field, int *sort,
                                     uint32_t *shards, dsp_err *err)
{
    const dsp_op_def *def = &dsp_op_repartition_def;
    const char *by = dsp_op_opt_string(step, def, "by");
    const char *f = dsp_op_opt_string(step, def, "field");
    const char *hash = dsp_op_opt_string(step, def, "field_hash");
    double n = dsp_op_opt_number(step, def, "shards");

    if (!hash || (strcmp(hash, "typed") != 0 && strcmp(hash, "text") != 0))
        return dsp_err_set(err, DSP_EINVAL,
                           "option \"field_hash\" must be \"typed\" or \"text\", got \"%s\"",
                           hash ? hash : "");
    if (n < 0 || n > REPARTITION_MAX_SHARDS)
        return dsp_err_set(err, DSP_EINVAL, "option \"shards\" must be 0 to %d, got %g",
                           REPARTITION_MAX_SHARDS, n);
    *shards = (uint32_t)n;
    *sort = by && !strcmp(by, "sort");
    if (by && !strcmp(by, "hash")) {
        if (f && f[0])
            return dsp_err_set(err, DSP_EINVAL,
                               "option \"field\" (\"%s\") needs \"by\": \"field\"", f);
        *field = NULL;
        return DSP_OK;
    }
    if (by && (!strcmp(by, "field") || *sort)) {
        if (!f || !f[0])
            return dsp_err_set(err, DSP_EINVAL,
                               "\"by\": \"%s\" needs option \"field\" (a member name or dotted path)",
                               by);
        *field = f;
        return DSP_OK;
    }
    return dsp_err_set(err, DSP_EINVAL,
                       "option \"by\" must be \"hash\", \"field\" or \"sort\", got \"%s\"",
                       by ? by : "");
}

int dsp_op_repartition_typed_hash(const cJSON *planned_step)
{
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(planned_step, "field_hash");
    return cJSON_IsString(hash) && !strcmp(hash->valuestring, "typed");
}

cJSON *dsp_op_repartition_pin_step(const cJSON *step)
{
    cJSON *copy = cJSON_Duplicate(step, 1);
    if (!cJSON_GetObjectItemCaseSensitive(step, "field_hash"))
        cJSON_AddStringToObject(copy, "field_hash",
                                dsp_op_opt_string(NULL, &dsp_op_repartition_def, "field_hash"));
    return copy;
}

static dsp_status repartition_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                                     dsp_err *err)
{
    const char *field;
    int sort;
    uint32_t shards;
    (void)ctx;
    *state = NULL;
    return dsp_op_repartition_config(options, &field, &sort, &shards, err);
}

static dsp_status repartition_process(void *state, dsp_batch *b, unsigned char *keep,
                                      dsp_op_counters *c, dsp_err *err)
{
    (void)state;
    (void)b;
    (void)keep;
    (void)c;
    return dsp_err_set(err, DSP_EINVAL,
                       "repartition is a wide operator and runs in its own shuffle stage, "
                       "not inside a map stage");
}

const dsp_op_def dsp_op_repartition_def = {
    .name = "repartition",
    .summary = "write the output as N shards, by a hash of the document or of one field, "
               "or sorted by one field",
    .wide = 1,
    .options = repartition_options,
    .member_options = repartition_member_options,
    .reasons = repartition_reasons,
    .create = repartition_create,
    .process = repartition_process,
};
