/*
 * op_registry.c - the table of operators and the generic option handling
 * every operator shares.
 *
 * The registry checks a step object {"op": NAME, ...options} before an
 * operator sees it: the name must be registered, every other key must be a
 * declared option, and each value must have the declared type (BOOL a JSON
 * boolean, INT an integral number, FLOAT any number, STRING a string, LIST
 * an array). Operators then read options through the accessors below, which
 * fall back to the declared default, so a default lives in one place: the
 * operator's option table, which `dspark ops` also prints.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "op.h"
#include "op_text.h"


extern const dsp_op_def dsp_op_normalize_def;
extern const dsp_op_def dsp_op_langid_def;
extern const dsp_op_def dsp_op_gopher_quality_def;
extern const dsp_op_def dsp_op_gopher_repetition_def;
extern const dsp_op_def dsp_op_c4_quality_def;
extern const dsp_op_def dsp_op_fineweb_quality_def;
extern const dsp_op_def dsp_op_length_def;
extern const dsp_op_def dsp_op_field_def;
extern const dsp_op_def dsp_op_stats_def;
extern const dsp_op_def dsp_op_sample_def;
extern const dsp_op_def dsp_op_pii_redact_def;
extern const dsp_op_def dsp_op_exec_def;
extern const dsp_op_def dsp_op_dedup_exact_def;
extern const dsp_op_def dsp_op_dedup_minhash_def;
extern const dsp_op_def dsp_op_repartition_def;

/* In the order `dspark ops` lists them. */
static const dsp_op_def *const op_registry[] = {
    &dsp_op_normalize_def,
    &dsp_op_langid_def,
    &dsp_op_gopher_quality_def,
    &dsp_op_gopher_repetition_def,
    &dsp_op_c4_quality_def,
    &dsp_op_fineweb_quality_def,
    &dsp_op_length_def,
    &dsp_op_pii_redact_def,
    &dsp_op_field_def,
    &dsp_op_stats_def,
    &dsp_op_sample_def,
    &dsp_op_exec_def,
    &dsp_op_dedup_exact_def,
    &dsp_op_dedup_minhash_def,
    &dsp_op_repartition_def,
    NULL,
};

const dsp_op_def *const *dsp_op_all(void)
{
    return op_registry;
}

const dsp_op_def *dsp_op_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; op_registry[i]; i++)
        if (strcmp(op_registry[i]->name, name) == 0)
            return op_registry[i];
    return NULL;
}

static const dsp_op_option *op_find_option(const dsp_op_def *def, const char *name)
{
    for (const dsp_op_option *o = def->options; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

static const char *op_type_name(dsp_opt_type t)
{
    switch (t) {
    case DSP_OPT_BOOL: return "a boolean";
    case DSP_OPT_INT: return "an integer";
    case DSP_OPT_FLOAT: return "a number";
    case DSP_OPT_STRING: return "a string";
    case DSP_OPT_LIST: return "an array";
    }
    return "?";
}

static int op_value_has_type(const cJSON *v, dsp_opt_type t)
{
    switch (t) {
    case DSP_OPT_BOOL:
        return cJSON_IsBool(v);
    case DSP_OPT_INT:
        return cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
               floor(v->valuedouble) == v->valuedouble;
    case DSP_OPT_FLOAT:
        return cJSON_IsNumber(v) && isfinite(v->valuedouble);
    case DSP_OPT_STRING:
        return cJSON_IsString(v);
    case DSP_OPT_LIST:
        return cJSON_IsArray(v);
    }
    return 0;
}

dsp_status dsp_op_validate(const cJSON *step, int index, dsp_err *err)
{
    if (!cJSON_IsObject(step))
        return dsp_err_set(err, DSP_EINVAL, "steps[%d]: expected an object {\"op\": NAME, ...}",
                           index);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(step, "op");
    if (!cJSON_IsString(op))
        return dsp_err_set(err, DSP_EINVAL,
                           "steps[%d]: missing string member \"op\" (run `dspark ops` for the list)",
                           index);
    const dsp_op_def *def = dsp_op_find(op->valuestring);
    if (!def)
        return dsp_err_set(err, DSP_EINVAL,
                           "steps[%d]: unknown operator \"%s\" (run `dspark ops` for the list)",
                           index, op->valuestring);

    const cJSON *item;
    cJSON_ArrayForEach(item, step) {
        if (strcmp(item->string, "op") == 0)
            continue;
        const dsp_op_option *o = op_find_option(def, item->string);
        if (!o)
            return dsp_err_set(err, DSP_EINVAL,
                               "steps[%d] (%s): unknown option \"%s\" (run `dspark ops %s`)",
                               index, def->name, item->string, def->name);
        if (!op_value_has_type(item, o->type))
            return dsp_err_set(err, DSP_EINVAL, "steps[%d] (%s): option \"%s\" must be %s",
                               index, def->name, o->name, op_type_name(o->type));
        if (o->type == DSP_OPT_INT && (item->valuedouble < o->min || item->valuedouble > o->max))
            return dsp_err_set(err, DSP_EINVAL,
                               "steps[%d] (%s): option \"%s\": %.17g is out of range; "
                               "expected %.0f to %.0f",
                               index, def->name, o->name, item->valuedouble, o->min, o->max);
    }
    return DSP_OK;
}

dsp_status dsp_op_instantiate(const cJSON *step, int index, const dsp_op_ctx *ctx,
                              dsp_op_instance *out, dsp_err *err)
{
    memset(out, 0, sizeof *out);
    dsp_status st = dsp_op_validate(step, index, err);
    if (st != DSP_OK)
        return st;

    const dsp_op_def *def =
        dsp_op_find(cJSON_GetObjectItemCaseSensitive(step, "op")->valuestring);
    void *state = NULL;
    st = def->create(step, ctx, &state, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "steps[%d] (%s)", index, def->name);
        return st;
    }
    out->def = def;
    out->state = state;
    return DSP_OK;
}

void dsp_op_instance_free(dsp_op_instance *inst)
{
    if (!inst)
        return;
    if (inst->def && inst->def->destroy && inst->state)
        inst->def->destroy(inst->state);
    inst->def = NULL;
    inst->state = NULL;
}

/*
 * Parsed defaults. Every option's default_json is parsed once, on first use,
 * into one cJSON object per operator. The trees live until exit, so
 * dsp_op_opt_string can return pointers into them.
 */
static pthread_once_t op_defaults_once = PTHREAD_ONCE_INIT;
static cJSON *op_defaults_root;

static void op_parse_defaults(void)
{
    op_defaults_root = cJSON_CreateObject();
    for (size_t i = 0; op_registry[i]; i++) {
        cJSON *per_op = cJSON_AddObjectToObject(op_defaults_root, op_registry[i]->name);
        for (const dsp_op_option *o = op_registry[i]->options; o && o->name; o++) {
            cJSON *v = o->default_json ? cJSON_Parse(o->default_json) : NULL;
            cJSON_AddItemToObject(per_op, o->name, v ? v : cJSON_CreateNull());
        }
    }
}

static const cJSON *op_default_value(const dsp_op_def *def, const char *name)
{
    pthread_once(&op_defaults_once, op_parse_defaults);
    const cJSON *per_op = cJSON_GetObjectItemCaseSensitive(op_defaults_root, def->name);
    return per_op ? cJSON_GetObjectItemCaseSensitive(per_op, name) : NULL;
}

static const cJSON *op_option_value(const cJSON *options, const dsp_op_def *def,
                                    const char *name)
{
    const cJSON *v = options ? cJSON_GetObjectItemCaseSensitive(options, name) : NULL;
    if (v)
        return v;
    return op_default_value(def, name);
}

double dsp_op_opt_number(const cJSON *options, const dsp_op_def *def, const char *name)
{
    const cJSON *v = op_option_value(options, def, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

int dsp_op_opt_bool(const cJSON *options, const dsp_op_def *def, const char *name)
{
    const cJSON *v = op_option_value(options, def, name);
    return cJSON_IsTrue(v) ? 1 : 0;
}

const char *dsp_op_opt_string(const cJSON *options, const dsp_op_def *def, const char *name)
{
    const cJSON *v = op_option_value(options, def, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

cJSON *dsp_op_opt_json(const cJSON *options, const dsp_op_def *def, const char *name)
{
    const cJSON *v = op_option_value(options, def, name);
    return v ? cJSON_Duplicate(v, 1) : NULL;
}

cJSON *dsp_op_counters_json(const dsp_op_def *def, const dsp_op_counters *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "in", (double)c->in);
    cJSON_AddNumberToObject(o, "out", (double)c->out);
    cJSON *removed = cJSON_AddObjectToObject(o, "removed");
    for (size_t i = 0; def->reasons && def->reasons[i] && i < DSP_OP_MAX_REASONS; i++)
        cJSON_AddNumberToObject(removed, def->reasons[i], (double)c->removed[i]);
    cJSON *extra = cJSON_AddObjectToObject(o, "extra");
    for (size_t i = 0; def->extra_names && def->extra_names[i] && i < DSP_OP_MAX_REASONS; i++)
        cJSON_AddNumberToObject(extra, def->extra_names[i], (double)c->extra[i]);
    return o;
}

const char **dsp_op_read_fields(const cJSON *steps)
{
    size_t n = 0, cap = 4;
    const char **fields = dsp_xmalloc(cap * sizeof *fields);
    const cJSON *step;
    cJSON_ArrayForEach(step, steps)
    {
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(step, "op");
        const dsp_op_def *def = cJSON_IsString(op) ? dsp_op_find(op->valuestring) : NULL;
        if (!def)
            continue;
        for (size_t i = 0; def->member_options && def->member_options[i]; i++) {
            const char *value = dsp_op_opt_string(step, def, def->member_options[i]);
            if (!value || !value[0])
                continue;
            if (n + 1 == cap) {
                cap *= 2;
                fields = dsp_xrealloc(fields, cap * sizeof *fields);
            }
            fields[n++] = value;
        }
    }
    fields[n] = NULL;
    return fields;
}
