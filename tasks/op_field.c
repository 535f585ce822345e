/*
 * op_field.c - the `field` filter: keep documents whose top-level member
 * equals a value or is one of a set of values.
 *
 * Matching: a string member matches a string value after JSON decoding. A
 * number member matches a number in "in" when the two are numerically
 * equal. Any other member (number, boolean, null) matches "equals" when its
 * raw JSON text is the same, so {"equals": "200"} matches "status": 200 and
 * {"equals": "true"} matches true. Objects and arrays never match.
 */
#include <stdlib.h>
#include <string.h>

#include "op.h"
#include "op_text.h"

typedef struct {
    char *field;
    cJSON *values;      /* array of strings and numbers to match */
    int keep_missing, invert;
} field_state;

enum { FIELD_MISSING, FIELD_NOT_MATCHED, FIELD_MATCHED };

static const dsp_op_option field_options[] = {
    {"field", DSP_OPT_STRING, "\"\"", "name of the top-level member to test (required)", 0, 0},
    {"equals", DSP_OPT_STRING, NULL, "keep documents whose member equals this value", 0, 0},
    {"in", DSP_OPT_LIST, NULL, "keep documents whose member is one of these strings or numbers", 0, 0},
    {"keep_missing", DSP_OPT_BOOL, "false", "keep documents that lack the member", 0, 0},
    {"invert", DSP_OPT_BOOL, "false", "keep the documents that do not match instead", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const field_member_options[] = {"field", NULL};

static const char *const field_reasons[] = {"missing", "not_matched", "matched", NULL};

extern const dsp_op_def dsp_op_field_def;

static void field_destroy(void *state)
{
    field_state *s = state;
    if (!s)
        return;
    free(s->field);
    cJSON_Delete(s->values);
    free(s);
}

static dsp_status field_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                               dsp_err *err)
{
    (void)ctx;
    const dsp_op_def *def = &dsp_op_field_def;
    const char *name = dsp_op_opt_string(options, def, "field");
    const cJSON *equals = cJSON_GetObjectItemCaseSensitive(options, "equals");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(options, "in");

    if (!name || !name[0])
        return dsp_err_set(err, DSP_EINVAL, "option \"field\" is required (the member to test)");
    if (!equals == !in)
        return dsp_err_set(err, DSP_EINVAL, "set exactly one of the options \"equals\" and \"in\"");
    if (in) {
        const cJSON *v;
        cJSON_ArrayForEach(v, in) {
            if (!cJSON_IsString(v) && !cJSON_IsNumber(v))
                return dsp_err_set(err, DSP_EINVAL,
                                   "option \"in\" may list only strings and numbers");
        }
    }
    field_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    s->field = strdup(name);
    if (equals) {
        s->values = cJSON_CreateArray();
        cJSON_AddItemToArray(s->values, cJSON_Duplicate(equals, 1));
    } else {
        s->values = cJSON_Duplicate(in, 1);
    }
    s->keep_missing = dsp_op_opt_bool(options, def, "keep_missing");
    s->invert = dsp_op_opt_bool(options, def, "invert");
    if (!s->field || !s->values) {
        field_destroy(s);
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    }
    *state = s;
    return DSP_OK;
}

static int field_matches(const field_state *s, dsp_batch *b, const char *raw, size_t raw_len)
{
    const cJSON *v;

    if (raw[0] == '"') {
        size_t n;
        const char *str = memchr(raw, '\\', raw_len) ? NULL : raw + 1;
        if (str) {
            n = raw_len - 2;
        } else {
            str = dsp_json_decode_string(&b->arena, raw, raw_len, &n);
            if (!str)
                return 0;
        }
        cJSON_ArrayForEach(v, s->values) {
            if (cJSON_IsString(v) && strlen(v->valuestring) == n &&
                memcmp(v->valuestring, str, n) == 0)
                return 1;
        }
        return 0;
    }
    if (raw[0] == '{' || raw[0] == '[')
        return 0;

    char *end = NULL;
    char number[64];
    size_t n = raw_len < sizeof number - 1 ? raw_len : sizeof number - 1;
    memcpy(number, raw, n);
    number[n] = '\0';
    double x = strtod(number, &end);
    int is_number = end == number + n && n > 0;
    cJSON_ArrayForEach(v, s->values) {
        if (cJSON_IsNumber(v) && is_number && x == v->valuedouble)
            return 1;
        if (cJSON_IsString(v) && strlen(v->valuestring) == raw_len &&
            memcmp(v->valuestring, raw, raw_len) == 0)
            return 1;
    }
    return 0;
}

static dsp_status field_process(void *state, dsp_batch *b, unsigned char *keep,
                                dsp_op_counters *c, dsp_err *err)
{
    (void)err;
    const field_state *s = state;

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        const dsp_doc *d = &b->docs[i];
        const char *raw;
        size_t raw_len;
        if (!dsp_json_find(d->line, d->line_len, s->field, &raw, &raw_len) || raw_len == 0) {
            if (!s->keep_missing) {
                keep[i] = 0;
                c->removed[FIELD_MISSING]++;
            }
            continue;
        }
        int match = field_matches(s, b, raw, raw_len);
        if (match && s->invert) {
            keep[i] = 0;
            c->removed[FIELD_MATCHED]++;
        } else if (!match && !s->invert) {
            keep[i] = 0;
            c->removed[FIELD_NOT_MATCHED]++;
        }
    }
    return DSP_OK;
}

const dsp_op_def dsp_op_field_def = {
    .name = "field",
    .summary = "keep documents whose top-level member equals a value or is in a set",
    .wide = 0,
    .options = field_options,
    .member_options = field_member_options,
    .reasons = field_reasons,
    .extra_names = NULL,
    .create = field_create,
    .process = field_process,
    .finish = NULL,
    .destroy = field_destroy,
};
