/*
 * plan_json.c - write and read plan.json.
 *
 * The writer prints directly into a buffer in a fixed field order, so the
 * same plan always gives the same bytes, and dsp_plan_from_json() followed
 * by dsp_plan_to_json() gives them back exactly. To stay compact for jobs
 * with 100,000 inputs, store roots are listed once and each task input is
 * a 6-element list:
 *
 *   {"format":"dspark-plan/1","job":NAME,"spec_hash":HEX,
 *    "total_bytes":N,"total_tasks":N,"roots":[URI,...],
 *    "stages":[{"id":"s0","kind":"map","deps":[],"bytes":N,"steps":[...],
 *               "tasks":[{"id":"t00000","bytes":N,
 *                         "inputs":[[ROOT_INDEX,KEY,OFFSET,LENGTH,SIZE,ETAG],...]}]}]}
 *
 * LENGTH is -1 for "to the end of the object". Numbers are integers below
 * 2^53, so they survive cJSON's doubles exactly.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/util.h"
#include "plan.h"

#define PLAN_FORMAT "dspark-plan/1"

static void plan_json_string(dsp_buf *b, const char *s)
{
    dsp_buf_append_char(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': dsp_buf_append_str(b, "\\\""); break;
        case '\\': dsp_buf_append_str(b, "\\\\"); break;
        case '\n': dsp_buf_append_str(b, "\\n"); break;
        case '\r': dsp_buf_append_str(b, "\\r"); break;
        case '\t': dsp_buf_append_str(b, "\\t"); break;
        default:
            if (*p < 0x20)
                dsp_buf_printf(b, "\\u%04x", *p);
            else
                dsp_buf_append_char(b, (char)*p);
        }
    }
    dsp_buf_append_char(b, '"');
}

typedef struct {
    const char **roots;
    size_t n, cap;
    size_t last; /* index of the last hit: inputs of a task usually share a root */
} plan_roots;

static size_t plan_root_index(plan_roots *r, const char *root)
{
    if (r->n && !strcmp(r->roots[r->last], root))
        return r->last;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->roots[i], root))
            return r->last = i;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->roots = dsp_xrealloc(r->roots, r->cap * sizeof *r->roots);
    }
    r->roots[r->n] = root;
    return r->last = r->n++;
}

char *dsp_plan_to_json(const dsp_plan *plan)
{
    plan_roots roots = {0};
    for (size_t s = 0; s < plan->nstages; s++)
        for (size_t t = 0; t < plan->stages[s].ntasks; t++)
            for (size_t i = 0; i < plan->stages[s].tasks[t].ninputs; i++)
                plan_root_index(&roots, plan->stages[s].tasks[t].inputs[i].uri_root);

    dsp_buf b = DSP_BUF_INIT;
    dsp_buf_append_str(&b, "{\"format\":\"" PLAN_FORMAT "\",\"job\":");
    plan_json_string(&b, plan->job_name);
    dsp_buf_append_str(&b, ",\"spec_hash\":");
    plan_json_string(&b, plan->spec_hash);
    dsp_buf_printf(&b, ",\"total_bytes\":%" PRIu64 ",\"total_tasks\":%zu,\"roots\":[",
                   plan->total_bytes, plan->total_tasks);
    for (size_t i = 0; i < roots.n; i++) {
        if (i)
            dsp_buf_append_char(&b, ',');
        plan_json_string(&b, roots.roots[i]);
    }
    dsp_buf_append_str(&b, "],\"stages\":[");
    for (size_t s = 0; s < plan->nstages; s++) {
        const dsp_plan_stage *stage = &plan->stages[s];
        if (s)
            dsp_buf_append_char(&b, ',');
        dsp_buf_append_str(&b, "{\"id\":");
        plan_json_string(&b, stage->id);
        dsp_buf_append_str(&b, ",\"kind\":");
        plan_json_string(&b, stage->kind);
        dsp_buf_append_str(&b, ",\"deps\":[");
        for (size_t d = 0; d < stage->ndeps; d++)
            dsp_buf_printf(&b, "%s%d", d ? "," : "", stage->deps[d]);
        dsp_buf_printf(&b, "],\"bytes\":%" PRIu64 ",\"steps\":", stage->bytes);
        char *steps = stage->steps ? cJSON_PrintUnformatted(stage->steps) : NULL;
        dsp_buf_append_str(&b, steps ? steps : "[]");
        free(steps);
        dsp_buf_append_str(&b, ",\"tasks\":[");
        for (size_t t = 0; t < stage->ntasks; t++) {
            const dsp_plan_task *task = &stage->tasks[t];
            if (t)
                dsp_buf_append_char(&b, ',');
            dsp_buf_append_str(&b, "{\"id\":");
            plan_json_string(&b, task->id);
            dsp_buf_printf(&b, ",\"bytes\":%" PRIu64 ",\"inputs\":[", task->bytes);
            for (size_t i = 0; i < task->ninputs; i++) {
                const dsp_plan_input *in = &task->inputs[i];
                dsp_buf_printf(&b, "%s[%zu,", i ? "," : "", plan_root_index(&roots, in->uri_root));
                plan_json_string(&b, in->key);
                dsp_buf_printf(&b, ",%" PRIu64 ",%" PRId64 ",%" PRIu64 ",", in->offset,
                               in->length, in->size);
                plan_json_string(&b, in->etag);
                dsp_buf_append_char(&b, ']');
            }
            dsp_buf_append_str(&b, "]}");
        }
        dsp_buf_append_str(&b, "]}");
    }
    dsp_buf_append_str(&b, "]}");
    free(roots.roots);
    return dsp_buf_detach(&b, NULL);
}

/* ---- reading ---- */

static dsp_status plan_json_u64(const cJSON *v, const char *path, uint64_t *out, dsp_err *err)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble > 9007199254740992.0)
        return dsp_err_set(err, DSP_ECORRUPT, "plan.json: %s: expected a whole number", path);
    *out = (uint64_t)v->valuedouble;
    return DSP_OK;
}

static dsp_status plan_json_str(const cJSON *v, const char *path, char *out, size_t size,
                                dsp_err *err)
{
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "plan.json: %s: expected a string of at most %zu bytes", path,
                           size - 1);
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return DSP_OK;
}

static dsp_status plan_json_input(const cJSON *v, char *const *roots, size_t nroots,
                                  const char *path, dsp_plan_input *in, dsp_err *err)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 6)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "plan.json: %s: expected [root, key, offset, length, size, etag]",
                           path);
    const cJSON *root = v->child, *key = root->next, *off = key->next, *len = off->next,
                *size = len->next, *etag = size->next;
    uint64_t root_index;
    dsp_status st = plan_json_u64(root, path, &root_index, err);
    if (st)
        return st;
    if (root_index >= nroots)
        return dsp_err_set(err, DSP_ECORRUPT, "plan.json: %s: root index %" PRIu64
                           " is past the %zu roots", path, root_index, nroots);
    if (!cJSON_IsString(key) || !key->valuestring[0])
        return dsp_err_set(err, DSP_ECORRUPT, "plan.json: %s: expected a key", path);
    if ((st = plan_json_u64(off, path, &in->offset, err)) ||
        (st = plan_json_u64(size, path, &in->size, err)) ||
        (st = plan_json_str(etag, path, in->etag, sizeof in->etag, err)))
        return st;
    if (!cJSON_IsNumber(len) || len->valuedouble < -1 ||
        len->valuedouble != floor(len->valuedouble))
        return dsp_err_set(err, DSP_ECORRUPT, "plan.json: %s: invalid length", path);
    in->length = (int64_t)len->valuedouble;
    in->uri_root = dsp_xstrdup(roots[root_index]);
    in->key = dsp_xstrdup(key->valuestring);
    return DSP_OK;
}

static dsp_status plan_json_task(const cJSON *v, char *const *roots, size_t nroots,
                                 size_t s, size_t t, dsp_plan_task *task, dsp_err *err)
{
    char path[96];
    snprintf(path, sizeof path, "stages[%zu].tasks[%zu]", s, t);
    if (!cJSON_IsObject(v))
        return dsp_err_set(err, DSP_ECORRUPT, "plan.json: %s: expected an object", path);
    task->index = (int)t;
    dsp_status st = plan_json_str(cJSON_GetObjectItemCaseSensitive(v, "id"), path, task->id,
                                  sizeof task->id, err);
    if (st || (st = plan_json_u64(cJSON_GetObjectItemCaseSensitive(v, "bytes"), path,
                                  &task->bytes, err)))
        return st;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(v, "inputs");
    if (!cJSON_IsArray(inputs))
        return dsp_err_set(err, DSP_ECORRUPT, "plan.json: %s.inputs: expected a list", path);
    task->ninputs = (size_t)cJSON_GetArraySize(inputs);
    task->inputs = dsp_xcalloc(task->ninputs ? task->ninputs : 1, sizeof *task->inputs);
    size_t i = 0;
    for (const cJSON *in = inputs->child; in; in = in->next, i++) {
        char ipath[128];
        snprintf(ipath, sizeof ipath, "%s.inputs[%zu]", path, i);
        if ((st = plan_json_input(in, roots, nroots, ipath, &task->inputs[i], err)))
            return st;
    }
    return DSP_OK;
}

static dsp_status plan_json_stage(const cJSON *v, char *const *roots, size_t nroots, size_t s,
                                  dsp_plan_stage *stage, dsp_err *err)
{
    char path[48];
    snprintf(path, sizeof path, "stages[%zu]", s);
    if (!cJSON_IsObject(v))
        return dsp_err_set(err, DSP_ECORRUPT, "plan.json: %s: expected an object", path);
    stage->index = (int)s;
    dsp_status st;
    if ((st = plan_json_str(cJSON_GetObjectItemCaseSensitive(v, "id"), path, stage->id,
                            sizeof stage->id, err)) ||
        (st = plan_json_str(cJSON_GetObjectItemCaseSensitive(v, "kind"), path, stage->kind,
                            sizeof stage->kind, err)) ||
        (st = plan_json_u64(cJSON_GetObjectItemCaseSensitive(v, "bytes"), path, &stage->bytes,
                            err)))
        return st;
    const cJSON *deps = cJSON_GetObjectItemCaseSensitive(v, "deps");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(v, "steps");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(v, "tasks");
    if (!cJSON_IsArray(deps) || !cJSON_IsArray(steps) || !cJSON_IsArray(tasks))
        return dsp_err_set(err, DSP_ECORRUPT,
                           "plan.json: %s: expected lists \"deps\", \"steps\" and \"tasks\"",
                           path);
    stage->steps = cJSON_Duplicate(steps, 1);
    stage->ndeps = (size_t)cJSON_GetArraySize(deps);
    stage->deps = dsp_xcalloc(stage->ndeps ? stage->ndeps : 1, sizeof *stage->deps);
    size_t i = 0;
    for (const cJSON *d = deps->child; d; d = d->next, i++) {
        uint64_t dep;
        if ((st = plan_json_u64(d, path, &dep, err)))
            return st;
        if (dep >= s)
            return dsp_err_set(err, DSP_ECORRUPT,
                               "plan.json: %s: depends on stage %" PRIu64 ", which is not earlier",
                               path, dep);
        stage->deps[i] = (int)dep;
    }
    stage->ntasks = (size_t)cJSON_GetArraySize(tasks);
    stage->tasks = dsp_xcalloc(stage->ntasks ? stage->ntasks : 1, sizeof *stage->tasks);
    size_t t = 0;
    for (const cJSON *task = tasks->child; task; task = task->next, t++)
        if ((st = plan_json_task(task, roots, nroots, s, t, &stage->tasks[t], err)))
            return st;
    return DSP_OK;
}

dsp_status dsp_plan_from_json(const char *text, size_t len, dsp_plan **out, dsp_err *err)
{
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root)
        return dsp_err_set(err, DSP_ECORRUPT, "plan.json: invalid JSON near byte %td",
                           cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - text : (ptrdiff_t)0);
    dsp_plan *plan = dsp_xcalloc(1, sizeof *plan);
    char **roots = NULL;
    size_t nroots = 0;
    dsp_status st = DSP_OK;
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, PLAN_FORMAT)) {
        st = dsp_err_set(err, DSP_ECORRUPT, "plan.json: format: expected \"%s\"", PLAN_FORMAT);
        goto done;
    }
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(root, "job");
    if (!cJSON_IsString(job)) {
        st = dsp_err_set(err, DSP_ECORRUPT, "plan.json: job: expected a string");
        goto done;
    }
    plan->job_name = dsp_xstrdup(job->valuestring);
    uint64_t total_tasks;
    if ((st = plan_json_str(cJSON_GetObjectItemCaseSensitive(root, "spec_hash"), "spec_hash",
                            plan->spec_hash, sizeof plan->spec_hash, err)) ||
        (st = plan_json_u64(cJSON_GetObjectItemCaseSensitive(root, "total_bytes"),
                            "total_bytes", &plan->total_bytes, err)) ||
        (st = plan_json_u64(cJSON_GetObjectItemCaseSensitive(root, "total_tasks"),
                            "total_tasks", &total_tasks, err)))
        goto done;
    plan->total_tasks = (size_t)total_tasks;

    const cJSON *jroots = cJSON_GetObjectItemCaseSensitive(root, "roots");
    const cJSON *stages = cJSON_GetObjectItemCaseSensitive(root, "stages");
    if (!cJSON_IsArray(jroots) || !cJSON_IsArray(stages) || cJSON_GetArraySize(stages) == 0) {
        st = dsp_err_set(err, DSP_ECORRUPT,
                         "plan.json: expected lists \"roots\" and \"stages\" (non-empty)");
        goto done;
    }
    roots = dsp_xcalloc((size_t)cJSON_GetArraySize(jroots) + 1, sizeof *roots);
    for (const cJSON *r = jroots->child; r; r = r->next) {
        if (!cJSON_IsString(r)) {
            st = dsp_err_set(err, DSP_ECORRUPT, "plan.json: roots[%zu]: expected a string",
                             nroots);
            goto done;
        }
        roots[nroots++] = r->valuestring;
    }
    plan->nstages = (size_t)cJSON_GetArraySize(stages);
    plan->stages = dsp_xcalloc(plan->nstages, sizeof *plan->stages);
    size_t s = 0, counted = 0;
    for (const cJSON *stage = stages->child; stage; stage = stage->next, s++) {
        if ((st = plan_json_stage(stage, roots, nroots, s, &plan->stages[s], err)))
            goto done;
        counted += plan->stages[s].ntasks;
    }
    if (counted != plan->total_tasks)
        st = dsp_err_set(err, DSP_ECORRUPT,
                         "plan.json: total_tasks is %zu but the stages hold %zu tasks",
                         plan->total_tasks, counted);
done:
    free(roots);
    cJSON_Delete(root);
    if (st) {
        dsp_plan_free(plan);
        return st;
    }
    *out = plan;
    return DSP_OK;
}
