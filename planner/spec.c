/*
 * spec.c - parse and validate job specs.
 *
 * A job spec is a JSON object (see plan.h for the fields). Parsing rejects
 * anything it does not understand: unknown fields at the top level and in
 * "output" and "options" are errors with a did-you-mean suggestion, and
 * every error names the spec file and the field path ("job.json:
 * steps[2].min_words: expected a number, got \"x\"").
 *
 * After validation, relative local paths in "input" and "output.uri" are
 * made absolute against the current directory, object keys are sorted at
 * every level, and the result is the canonical spec: spec->json, printed by
 * dsp_spec_to_json() without whitespace, is what spec_hash (SHA-256) covers.
 * Defaults are not written into the canonical spec, so a spec that spells
 * out a default value hashes differently from one that omits it.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "../core/util.h"
#include "../tasks/op.h"
#include "plan.h"

#define SPEC_NAME_MAX 64

static const char *const top_fields[] = {"name",    "input", "format",  "text_field",
                                         "id_field", "steps", "output", "options", NULL};
static const char *const output_fields[] = {"uri", "format", "level", "target_shard_bytes",
                                            NULL};
static const char *const option_fields[] = {"max_attempts", "lease_seconds",
                                            "target_task_bytes", "speculative",
                                            "max_record_bytes", NULL};

/* Levenshtein distance, capped: strings longer than 63 bytes count as far. */
static size_t spec_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

/* The closest known name within an edit distance of 2 (1 for short names). */
static const char *spec_suggest(const char *name, const char *const *known)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t limit = strlen(name) <= 4 ? 1 : 2;
    for (size_t i = 0; known[i]; i++) {
        size_t d = spec_edit_distance(name, known[i]);
        if (d <= limit && d < best_d) {
            best = known[i];
            best_d = d;
        }
    }
    return best;
}

/* Describe a JSON value for "got ..." in messages, at most ~48 bytes. */
static const char *spec_describe(const cJSON *v, char *buf, size_t size)
{
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsArray(v))
        return "a list";
    if (cJSON_IsNull(v))
        return "null";
    char *text = cJSON_PrintUnformatted(v);
    if (!text)
        return "an unprintable value";
    if (strlen(text) > 40)
        snprintf(buf, size, "%.40s...", text);
    else
        snprintf(buf, size, "%s", text);
    free(text);
    return buf;
}

static dsp_status spec_type_error(dsp_err *err, const char *source, const char *field,
                                  const char *expected, const cJSON *got)
{
    char buf[64];
    return dsp_err_set(err, DSP_EINVAL, "%s: %s: expected %s, got %s", source, field, expected,
                       spec_describe(got, buf, sizeof buf));
}

static dsp_status spec_check_fields(const cJSON *obj, const char *const *known,
                                    const char *source, const char *where, dsp_err *err)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        int found = 0;
        for (size_t i = 0; known[i]; i++)
            if (!strcmp(c->string, known[i]))
                found = 1;
        if (found)
            continue;
        const char *hint = spec_suggest(c->string, known);
        char path[160];
        if (where)
            snprintf(path, sizeof path, "%s.%s", where, c->string);
        else
            snprintf(path, sizeof path, "%s", c->string);
        if (hint)
            return dsp_err_set(err, DSP_EINVAL, "%s: %s: unknown field; did you mean \"%s\"?",
                               source, path, hint);
        return dsp_err_set(err, DSP_EINVAL, "%s: %s: unknown field", source, path);
    }
    return DSP_OK; /* spec_check_duplicates has rejected repeated keys */
}

/* A non-empty string field; *out points into the JSON tree. */
static dsp_status spec_get_string(const cJSON *obj, const char *name, const char *path,
                                  const char *def, const char **out, const char *source,
                                  dsp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) {
        if (!def)
            return dsp_err_set(err, DSP_EINVAL, "%s: %s: missing required field", source, path);
        *out = def;
        return DSP_OK;
    }
    if (!cJSON_IsString(v))
        return spec_type_error(err, source, path, "a string", v);
    if (!v->valuestring[0])
        return dsp_err_set(err, DSP_EINVAL, "%s: %s: must not be empty", source, path);
    *out = v->valuestring;
    return DSP_OK;
}

static dsp_status spec_get_choice(const cJSON *obj, const char *name, const char *path,
                                  const char *def, const char *const *choices, char **out,
                                  const char *source, dsp_err *err)
{
    const char *s;
    dsp_status st = spec_get_string(obj, name, path, def, &s, source, err);
    if (st)
        return st;
    for (size_t i = 0; choices[i]; i++)
        if (!strcmp(s, choices[i])) {
            *out = dsp_xstrdup(s);
            return DSP_OK;
        }
    char list[160] = "";
    for (size_t i = 0; choices[i]; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s\"%s\"", i ? ", " : "", choices[i]);
    }
    return dsp_err_set(err, DSP_EINVAL, "%s: %s: invalid value \"%s\"; expected one of %s",
                       source, path, s, list);
}

static dsp_status spec_get_int(const cJSON *obj, const char *name, const char *path, int def,
                               int min, int max, int *out, const char *source, dsp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) {
        *out = def;
        return DSP_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return spec_type_error(err, source, path, "an integer", v);
    if (v->valuedouble < min || v->valuedouble > max)
        return dsp_err_set(err, DSP_EINVAL, "%s: %s: %g is out of range; expected %d to %d",
                           source, path, v->valuedouble, min, max);
    *out = (int)v->valuedouble;
    return DSP_OK;
}

/* A byte count given as an integer or as a size string ("64MiB"). */
static dsp_status spec_get_size(const cJSON *obj, const char *name, const char *path,
                                int64_t def, int64_t *out, const char *source, dsp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) {
        *out = def;
        return DSP_OK;
    }
    int64_t n = -1;
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble != floor(v->valuedouble))
            return spec_type_error(err, source, path, "a whole number of bytes", v);
        if (v->valuedouble < 1 || v->valuedouble > (double)DSP_SIZE_MAX)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: %s: %.17g is out of range; expected 1 to %lld bytes", source,
                               path, v->valuedouble, DSP_SIZE_MAX);
        n = (int64_t)v->valuedouble;
    } else if (cJSON_IsString(v)) {
        n = dsp_parse_size(v->valuestring);
        if (n == -2)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: %s: size \"%s\" is out of range; expected 1 to %lld bytes",
                               source, path, v->valuestring, DSP_SIZE_MAX);
        if (n < 0)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: %s: invalid size \"%s\"; expected bytes or a size such as "
                               "\"64MiB\"",
                               source, path, v->valuestring);
    } else {
        return spec_type_error(err, source, path, "a size (bytes or a string such as \"64MiB\")",
                               v);
    }
    if (n < 1)
        return dsp_err_set(err, DSP_EINVAL,
                           "%s: %s: size \"%s\" is out of range; expected 1 to %lld bytes",
                           source, path, v->valuestring, DSP_SIZE_MAX);
    *out = n;
    return DSP_OK;
}

static int spec_has_scheme(const char *uri)
{
    const char *p = uri;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    return p > uri && !strncmp(p, "://", 3);
}

/*
 * Check a local path or URI and return it in stored form (malloc'ed):
 * s3:// and file:// URIs unchanged, relative local paths made absolute
 * against the current directory (a leading "./" dropped).
 */
static dsp_status spec_resolve_uri(const char *uri, const char *path, const char *source,
                                   char **out, dsp_err *err)
{
    if (!strncmp(uri, "s3://", 5)) {
        const char *bucket = uri + 5;
        const char *slash = strchr(bucket, '/');
        size_t blen = slash ? (size_t)(slash - bucket) : strlen(bucket);
        if (blen == 0)
            return dsp_err_set(err, DSP_EINVAL, "%s: %s: \"%s\" has no bucket name", source,
                               path, uri);
        if (strcspn(bucket, "*?[") < blen)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: %s: \"%s\": the bucket name must not contain a glob", source,
                               path, uri);
        *out = dsp_xstrdup(uri);
        return DSP_OK;
    }
    if (!strncmp(uri, "file://", 7)) {
        if (uri[7] != '/')
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: %s: \"%s\": a file:// URI needs an absolute path "
                               "(file:///dir/...)",
                               source, path, uri);
        *out = dsp_xstrdup(uri);
        return DSP_OK;
    }
    if (spec_has_scheme(uri))
        return dsp_err_set(err, DSP_EINVAL,
                           "%s: %s: \"%s\": unsupported scheme; use s3://, file:// or a local "
                           "path",
                           source, path, uri);
    if (uri[0] == '/') {
        *out = dsp_xstrdup(uri);
        return DSP_OK;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return dsp_err_set(err, DSP_EIO, "%s: %s: cannot resolve \"%s\": getcwd failed: %s",
                           source, path, uri, strerror(errno));
    const char *rel = uri;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    if (!strcmp(rel, "."))
        rel = "";
    *out = dsp_xasprintf("%s%s%s", cwd, strcmp(cwd, "/") && *rel ? "/" : "", rel);
    return DSP_OK;
}

/*
 * Reject an object that names a key twice, anywhere in the spec. cJSON
 * keeps both members and its lookups return the first, so the second
 * value would be ignored without a word. path is the JSON path of node,
 * such as "steps[2]", or "" for the top level.
 */
static dsp_status spec_check_duplicates(const cJSON *node, const char *path, const char *source,
                                        dsp_err *err)
{
    int index = 0;
    for (const cJSON *c = node->child; c; c = c->next, index++) {
        char child_path[512];
        if (cJSON_IsObject(node)) {
            snprintf(child_path, sizeof child_path, "%s%s%s", path, path[0] ? "." : "",
                     c->string);
            for (const cJSON *prev = node->child; prev != c; prev = prev->next) {
                if (strcmp(prev->string, c->string) == 0)
                    return dsp_err_set(err, DSP_EINVAL,
                                       "%s: %s: key given twice; remove one of the two "
                                       "values, because each key may appear once in an object",
                                       source, child_path);
            }
        } else {
            snprintf(child_path, sizeof child_path, "%s[%d]", path, index);
        }
        dsp_status st = spec_check_duplicates(c, child_path, source, err);
        if (st != DSP_OK)
            return st;
    }
    return DSP_OK;
}

static int spec_name_valid(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return 0;
    return 1;
}

static int spec_key_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

/* Sort object keys at every level (byte order), so printing is canonical. */
static void spec_sort_keys(cJSON *node)
{
    if (!node)
        return;
    for (cJSON *c = node->child; c; c = c->next)
        spec_sort_keys(c);
    if (!cJSON_IsObject(node) || !node->child)
        return;
    size_t n = 0;
    for (cJSON *c = node->child; c; c = c->next)
        n++;
    cJSON **items = dsp_xmalloc(n * sizeof *items);
    n = 0;
    for (cJSON *c = node->child; c; c = c->next)
        items[n++] = c;
    qsort(items, n, sizeof *items, spec_key_cmp);
    for (size_t i = 0; i < n; i++) {
        items[i]->prev = i ? items[i - 1] : items[n - 1]; /* cJSON: head->prev is the tail */
        items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }
    node->child = items[0];
    free(items);
}

static void spec_error_position(const char *text, size_t len, const char *at, int *line,
                                int *col)
{
    *line = 1;
    *col = 1;
    if (!at || at < text || at > text + len)
        return;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static dsp_status spec_parse_input(dsp_spec *spec, cJSON *root, const char *source,
                                   dsp_err *err)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!v)
        return dsp_err_set(err, DSP_EINVAL, "%s: input: missing required field", source);
    if (cJSON_IsString(v)) {
        /* Store a single input as a one-element list so that the canonical
         * form does not depend on how it was written. */
        cJSON *list = cJSON_CreateArray();
        cJSON_AddItemToArray(list, cJSON_CreateString(v->valuestring));
        cJSON_ReplaceItemInObjectCaseSensitive(root, "input", list);
        v = list;
    }
    if (!cJSON_IsArray(v))
        return spec_type_error(err, source, "input", "a URI or a list of URIs", v);
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return dsp_err_set(err, DSP_EINVAL, "%s: input: the list is empty; name at least one "
                                            "URI or glob", source);
    spec->inputs = dsp_xcalloc((size_t)n, sizeof *spec->inputs);
    int i = 0;
    for (cJSON *item = v->child; item; item = item->next, i++) {
        char path[32];
        snprintf(path, sizeof path, "input[%d]", i);
        if (!cJSON_IsString(item))
            return spec_type_error(err, source, path, "a string", item);
        if (!item->valuestring[0])
            return dsp_err_set(err, DSP_EINVAL, "%s: %s: must not be empty", source, path);
        size_t l = strlen(item->valuestring);
        if (item->valuestring[l - 1] == '/')
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: %s: \"%s\" names a directory; add a glob such as \"%s*.jsonl\" "
                               "or \"%s**\"",
                               source, path, item->valuestring, item->valuestring,
                               item->valuestring);
        char *resolved;
        dsp_status st = spec_resolve_uri(item->valuestring, path, source, &resolved, err);
        if (st)
            return st;
        spec->inputs[spec->ninputs++] = resolved;
        cJSON_SetValuestring(item, resolved);
    }
    return DSP_OK;
}

static const char *spec_option_type_name(dsp_opt_type type)
{
    switch (type) {
    case DSP_OPT_BOOL: return "true or false";
    case DSP_OPT_INT: return "an integer";
    case DSP_OPT_FLOAT: return "a number";
    case DSP_OPT_STRING: return "a string";
    case DSP_OPT_LIST: return "a list";
    }
    return "a value";
}

static int spec_option_type_ok(const cJSON *v, dsp_opt_type type)
{
    switch (type) {
    case DSP_OPT_BOOL: return cJSON_IsBool(v);
    case DSP_OPT_INT: return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    case DSP_OPT_FLOAT: return cJSON_IsNumber(v);
    case DSP_OPT_STRING: return cJSON_IsString(v);
    case DSP_OPT_LIST: return cJSON_IsArray(v);
    }
    return 0;
}

/*
 * Check one step: a known operator, and known option names with the
 * declared types (with did-you-mean hints). Then run the registry's own
 * validation and instantiate the step once, so values the operator rejects
 * (a negative threshold, an invalid pattern) fail here rather than on a
 * worker. Instantiation allows exec, because whether a worker may run it
 * is the worker's setting.
 */
static dsp_status spec_check_step(const cJSON *step, int index, const char *path,
                                  const char *op_name, const dsp_spec *spec, const char *source,
                                  dsp_err *err)
{
    const dsp_op_def *def = dsp_op_find(op_name);
    if (!def) {
        const dsp_op_def *const *all = dsp_op_all();
        const char *names[128];
        size_t n = 0;
        for (; all && all[n] && n < 127; n++)
            names[n] = all[n]->name;
        names[n] = NULL;
        const char *hint = spec_suggest(op_name, names);
        if (hint)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: %s.op: unknown operator \"%s\"; did you mean \"%s\"?", source,
                               path, op_name, hint);
        return dsp_err_set(err, DSP_EINVAL,
                           "%s: %s.op: unknown operator \"%s\"; run 'dspark ops' for the list",
                           source, path, op_name);
    }
    for (const cJSON *opt = step->child; opt; opt = opt->next) {
        if (!strcmp(opt->string, "op"))
            continue;
        const dsp_op_option *decl = NULL;
        const char *names[64];
        size_t n = 0;
        for (const dsp_op_option *o = def->options; o && o->name; o++) {
            if (!strcmp(o->name, opt->string))
                decl = o;
            if (n < 63)
                names[n++] = o->name;
        }
        names[n] = NULL;
        char field[160];
        snprintf(field, sizeof field, "%s.%s", path, opt->string);
        if (!decl) {
            const char *hint = spec_suggest(opt->string, names);
            if (hint)
                return dsp_err_set(err, DSP_EINVAL,
                                   "%s: %s: unknown option of %s; did you mean \"%s\"?", source,
                                   field, def->name, hint);
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: %s: unknown option of %s; run 'dspark ops %s' for its options",
                               source, field, def->name, def->name);
        }
        if (!spec_option_type_ok(opt, decl->type))
            return spec_type_error(err, source, field, spec_option_type_name(decl->type), opt);
    }
    dsp_status st = dsp_op_validate(step, index, err);
    if (st) {
        dsp_err_prefix(err, "%s", source);
        return st;
    }
    dsp_op_ctx ctx = {1, spec->text_field, NULL, spec->max_record_bytes};
    dsp_op_instance inst;
    st = dsp_op_instantiate(step, index, &ctx, &inst, err);
    if (st) {
        dsp_err_prefix(err, "%s", source);
        return st;
    }
    dsp_op_instance_free(&inst);
    return DSP_OK;
}

static dsp_status spec_parse_steps(const dsp_spec *spec, cJSON *root, const char *source,
                                   dsp_err *err)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "steps");
    if (!v)
        return DSP_OK;
    if (!cJSON_IsArray(v))
        return spec_type_error(err, source, "steps", "a list of steps", v);
    int i = 0;
    for (cJSON *step = v->child; step; step = step->next, i++) {
        char path[32];
        snprintf(path, sizeof path, "steps[%d]", i);
        if (!cJSON_IsObject(step))
            return spec_type_error(err, source, path, "an object such as {\"op\": NAME}", step);
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(step, "op");
        if (!op)
            return dsp_err_set(err, DSP_EINVAL, "%s: %s.op: missing required field", source,
                               path);
        if (!cJSON_IsString(op)) {
            char op_path[40];
            snprintf(op_path, sizeof op_path, "%s.op", path);
            return spec_type_error(err, source, op_path, "an operator name", op);
        }
        dsp_status st = spec_check_step(step, i, path, op->valuestring, spec, source, err);
        if (st)
            return st;
    }
    return DSP_OK;
}

/* Room for the longest name that publishing writes under the output, such
 * as "_rejects/part-00000.jsonl.zst" or "_dedup/clusters/step12.jsonl",
 * and for a temporary suffix. */
#define SPEC_OUTPUT_SUFFIX_MAX 64

/* Reject an output whose published keys would exceed the store's limits:
 * 1,024 bytes for an S3 key, and 255 bytes for a local path component
 * and 4,095 for a whole local path (Linux NAME_MAX and PATH_MAX - 1).
 * Publishing would otherwise fail only after every task had run. */
static dsp_status spec_check_output_length(const char *resolved, const char *uri,
                                           const char *source, dsp_err *err)
{
    if (!strncmp(resolved, "s3://", 5)) {
        const char *slash = strchr(resolved + 5, '/');
        size_t key = slash ? strlen(slash + 1) : 0;
        if (key + SPEC_OUTPUT_SUFFIX_MAX > 1024)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: output.uri: its key prefix has %zu bytes, but S3 keys are "
                               "at most 1024 bytes and the output needs %d for the names below "
                               "it; use a prefix of at most %d bytes: \"%s\"",
                               source, key, SPEC_OUTPUT_SUFFIX_MAX,
                               1024 - SPEC_OUTPUT_SUFFIX_MAX, uri);
        return DSP_OK;
    }
    const char *path = !strncmp(resolved, "file://", 7) ? resolved + 7 : resolved;
    if (strlen(path) + SPEC_OUTPUT_SUFFIX_MAX > 4095)
        return dsp_err_set(err, DSP_EINVAL,
                           "%s: output.uri: the path has %zu bytes, but paths are at most "
                           "4095 bytes and the output needs %d for the names below it: \"%s\"",
                           source, strlen(path), SPEC_OUTPUT_SUFFIX_MAX, uri);
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n > 255)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s: output.uri: the path component \"%.40s...\" has %zu "
                               "bytes, but file names are at most 255 bytes: \"%s\"",
                               source, p, n, uri);
        p += n;
        while (*p == '/')
            p++;
    }
    return DSP_OK;
}

static dsp_status spec_parse_output(dsp_spec *spec, cJSON *root, const char *source,
                                    dsp_err *err)
{
    static const char *const formats[] = {"jsonl.zst", "jsonl.gz", NULL};
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "output");
    if (!v)
        return dsp_err_set(err, DSP_EINVAL, "%s: output: missing required field", source);
    if (!cJSON_IsObject(v))
        return spec_type_error(err, source, "output", "an object such as {\"uri\": ...}", v);
    dsp_status st = spec_check_fields(v, output_fields, source, "output", err);
    if (st)
        return st;
    const char *uri;
    if ((st = spec_get_string(v, "uri", "output.uri", NULL, &uri, source, err)))
        return st;
    /* The URI appears in status, jobs and error output, where a newline or
     * an escape code could forge lines or control the terminal. */
    if (dsp_has_control(uri)) {
        char *escaped = dsp_escape_control(uri, 0);
        st = dsp_err_set(err, DSP_EINVAL,
                         "%s: output.uri: \"%s\" contains a control character (shown "
                         "escaped); remove it", source, escaped);
        free(escaped);
        return st;
    }
    size_t glob_at = strcspn(uri, "*?[");
    if (glob_at != strlen(uri))
        return dsp_err_set(err, DSP_EINVAL,
                           "%s: output.uri: \"%s\" must not contain a glob character ('%c' at "
                           "byte %zu)", source, uri, uri[glob_at], glob_at);
    if ((st = spec_resolve_uri(uri, "output.uri", source, &spec->output_uri, err)))
        return st;
    if ((st = spec_check_output_length(spec->output_uri, uri, source, err)))
        return st;
    /* Publishing lists and replaces everything under the output, so a
     * file system root is never one. */
    if (!strcmp(spec->output_uri, "/") || !strcmp(spec->output_uri, "file:///") ||
        !strcmp(spec->output_uri, "file://"))
        return dsp_err_set(err, DSP_EINVAL,
                           "%s: output.uri: \"%s\" is the root directory; name a directory "
                           "for the job's output", source, uri);
    cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(v, "uri"), spec->output_uri);
    if ((st = spec_get_choice(v, "format", "output.format", "jsonl.zst", formats,
                              &spec->output_format, source, err)))
        return st;
    /* 0 picks the writer's default (zstd 3, gzip 6). zstd's negative levels
     * are its fast mode (`zstd --fast=N` is level -N). */
    int gzip = !strcmp(spec->output_format, "jsonl.gz");
    int min_level = gzip ? 0 : ZSTD_minCLevel(), max_level = gzip ? 9 : ZSTD_maxCLevel();
    if ((st = spec_get_int(v, "level", "output.level", 0, min_level, max_level,
                           &spec->output_level, source, err)))
        return st;
    return spec_get_size(v, "target_shard_bytes", "output.target_shard_bytes",
                         (int64_t)128 << 20, &spec->target_shard_bytes, source, err);
}

static dsp_status spec_parse_options(dsp_spec *spec, cJSON *root, const char *source,
                                     dsp_err *err)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "options");
    cJSON *empty = NULL;
    if (!v) {
        empty = cJSON_CreateObject();
        v = empty;
    }
    dsp_status st = DSP_OK;
    if (!cJSON_IsObject(v)) {
        st = spec_type_error(err, source, "options", "an object", v);
        goto done;
    }
    if ((st = spec_check_fields(v, option_fields, source, "options", err)))
        goto done;
    if ((st = spec_get_int(v, "max_attempts", "options.max_attempts", 4, 1, 100,
                           &spec->max_attempts, source, err)))
        goto done;
    if ((st = spec_get_int(v, "lease_seconds", "options.lease_seconds", 60, 5, 86400,
                           &spec->lease_seconds, source, err)))
        goto done;
    if ((st = spec_get_size(v, "target_task_bytes", "options.target_task_bytes",
                            (int64_t)64 << 20, &spec->target_task_bytes, source, err)))
        goto done;
    if (spec->target_task_bytes < 1024) {
        st = dsp_err_set(err, DSP_EINVAL,
                         "%s: options.target_task_bytes: %" PRId64 " is too small; use at least "
                         "1024 bytes",
                         source, spec->target_task_bytes);
        goto done;
    }
    if ((st = spec_get_size(v, "max_record_bytes", "options.max_record_bytes",
                            (int64_t)64 << 20, &spec->max_record_bytes, source, err)))
        goto done;
    const cJSON *spec_v = cJSON_GetObjectItemCaseSensitive(v, "speculative");
    spec->speculative = 1;
    if (spec_v) {
        if (!cJSON_IsBool(spec_v)) {
            st = spec_type_error(err, source, "options.speculative", "true or false", spec_v);
            goto done;
        }
        spec->speculative = cJSON_IsTrue(spec_v);
    }
done:
    cJSON_Delete(empty);
    return st;
}

dsp_status dsp_spec_parse(const char *text, size_t len, const char *source, dsp_spec **out,
                          dsp_err *err)
{
    static const char *const formats[] = {"auto", "jsonl", "warc", NULL};
    *out = NULL;
    if (!source)
        source = "spec";
    const char *end = NULL;
    /* NOTE: cJSON 1.7.15 rejects every length-bounded text when asked to
     * require a terminator, so trailing text is checked here instead. */
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int line, col;
    if (!root) {
        spec_error_position(text, len, end ? end : cJSON_GetErrorPtr(), &line, &col);
        return dsp_err_set(err, DSP_EINVAL, "%s:%d:%d: invalid JSON", source, line, col);
    }
    while (end && end < text + len && isspace((unsigned char)*end))
        end++;
    if (end && end < text + len) {
        spec_error_position(text, len, end, &line, &col);
        cJSON_Delete(root);
        return dsp_err_set(err, DSP_EINVAL, "%s:%d:%d: invalid JSON: text after the spec object",
                           source, line, col);
    }
    dsp_spec *spec = dsp_xcalloc(1, sizeof *spec);
    dsp_status st;
    if (!cJSON_IsObject(root)) {
        st = spec_type_error(err, source, "(top level)", "a JSON object", root);
        goto fail;
    }
    if ((st = spec_check_duplicates(root, "", source, err)))
        goto fail;
    if ((st = spec_check_fields(root, top_fields, source, NULL, err)))
        goto fail;

    const char *name;
    if ((st = spec_get_string(root, "name", "name", NULL, &name, source, err)))
        goto fail;
    if (strlen(name) > SPEC_NAME_MAX || !spec_name_valid(name)) {
        st = dsp_err_set(err, DSP_EINVAL,
                         "%s: name: invalid job name \"%s\"; use at most %d characters from "
                         "A-Z a-z 0-9 . _ -",
                         source, name, SPEC_NAME_MAX);
        goto fail;
    }
    spec->name = dsp_xstrdup(name);

    if ((st = spec_parse_input(spec, root, source, err)))
        goto fail;
    if ((st = spec_get_choice(root, "format", "format", "auto", formats, &spec->format, source,
                              err)))
        goto fail;
    const char *field;
    if ((st = spec_get_string(root, "text_field", "text_field", "text", &field, source, err)))
        goto fail;
    spec->text_field = dsp_xstrdup(field);
    if ((st = spec_get_string(root, "id_field", "id_field", "id", &field, source, err)))
        goto fail;
    spec->id_field = dsp_xstrdup(field);
    if ((st = spec_parse_steps(spec, root, source, err)))
        goto fail;
    if ((st = spec_parse_output(spec, root, source, err)))
        goto fail;
    if ((st = spec_parse_options(spec, root, source, err)))
        goto fail;

    spec_sort_keys(root);
    spec->json = root;
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
    spec->steps = steps ? cJSON_Duplicate(steps, 1) : cJSON_CreateArray();
    char *canonical = dsp_spec_to_json(spec);
    dsp_sha256_hex(canonical, strlen(canonical), spec->spec_hash);
    free(canonical);
    *out = spec;
    return DSP_OK;

fail:
    spec->json = root;
    dsp_spec_free(spec);
    return st;
}

char *dsp_spec_to_json(const dsp_spec *spec)
{
    char *text = cJSON_PrintUnformatted(spec->json);
    if (!text) {
        fprintf(stderr, "dspark: out of memory printing the spec\n");
        abort();
    }
    return text;
}

void dsp_spec_free(dsp_spec *spec)
{
    if (!spec)
        return;
    free(spec->name);
    for (size_t i = 0; i < spec->ninputs; i++)
        free(spec->inputs[i]);
    free(spec->inputs);
    free(spec->format);
    free(spec->text_field);
    free(spec->id_field);
    cJSON_Delete(spec->steps);
    free(spec->output_uri);
    free(spec->output_format);
    cJSON_Delete(spec->json);
    free(spec);
}
