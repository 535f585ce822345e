/*
 * plan.c - turn a validated job spec into stages of tasks.
 *
 * Expansion: each input glob is split into a store root (its longest
 * literal directory) and a key pattern; the store is listed once under the
 * pattern's literal key prefix and the keys are matched with
 * dsp_glob_match(). A glob that matches nothing is an error. Directory
 * marker keys (ending in '/') are skipped.
 *
 * Splitting and packing (target T = options.target_task_bytes):
 *   - A plain JSONL object larger than T is split into n = ceil(size / T)
 *     byte ranges of equal length (the last may be shorter), one task each.
 *     Plain means: named *.jsonl, *.ndjson or *.json (or any name without a
 *     compression or WARC suffix when format is "jsonl"), and its first 4
 *     bytes are not a gzip, zstd, bzip2 or xz magic number. A mislabeled
 *     compressed object is kept whole.
 *   - Any other object is one piece, read whole. TODO: split .warc.gz
 *     objects (one gzip member per record) at member boundaries.
 *   - A whole piece whose cost is at least T/2 gets a task of its own.
 *     Each maximal run of smaller pieces (in URI order) is packed into
 *     k = ceil(run_cost / T) tasks of about run_cost / k each: a piece goes
 *     to the task in whose share its cost midpoint falls. The cost of a
 *     piece is its size plus T/1024 bytes for the per-object request, so
 *     empty objects are spread too and no task holds more than about 1,024
 *     objects. Tasks are contiguous in URI order, no packed task exceeds
 *     about 1.5 T, and the runs are never all put in one task while
 *     other tasks are empty.
 *
 * Stages: stage 0 is a map stage that reads the inputs and runs the
 * narrow steps up to the first wide operator. A wide operator with a
 * shuffle layout (plan_wide_layouts: dedup_exact, dedup_minhash,
 * repartition) adds its reduce stages and, for dedup, a dedup_filter stage
 * that holds it and the narrow steps after it (see plan_wide_layouts for
 * the dependencies). Any other
 * wide operator starts one stage, named after the operator, holding it and
 * the narrow steps after it, and depending on the stage before. A
 * partitioned stage has
 * P = clamp(ceil(job input bytes / T), 1, DSP_PLAN_MAX_PARTITIONS)
 * partition tasks, because filters before it only shrink the data, so the
 * job's input size bounds each partition's share at about T. Their byte
 * counts are estimates.
 *
 * Determinism: objects are sorted by full URI and deduplicated, so the
 * plan does not depend on listing order or on which glob found an object.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../tasks/op.h"
#include "../tasks/op_dedup.h"
#include "../tasks/op_repartition.h"
#include "plan.h"

#define DSP_PLAN_MAX_PARTITIONS 10000
/* Upper bound on the tasks of the input stage, so that a tiny target on a
 * large input fails with a message instead of exhausting memory. */
#define DSP_PLAN_MAX_TASKS 1000000

/* ---- expansion ---- */

static int plan_has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcmp(s + ls - lx, suffix);
}

static int plan_named_compressed(const char *key)
{
    static const char *const suffixes[] = {".gz", ".zst", ".zstd", ".bz2", ".xz", ".lz4", NULL};
    for (size_t i = 0; suffixes[i]; i++)
        if (plan_has_suffix(key, suffixes[i]))
            return 1;
    return 0;
}

static int plan_named_plain_jsonl(const char *key, const char *format)
{
    if (!strcmp(format, "warc"))
        return 0;
    if (plan_has_suffix(key, ".jsonl") || plan_has_suffix(key, ".ndjson") ||
        plan_has_suffix(key, ".json"))
        return 1;
    return !strcmp(format, "jsonl") && !plan_named_compressed(key) &&
           !plan_has_suffix(key, ".warc") && !plan_has_suffix(key, ".wet") &&
           !plan_has_suffix(key, ".wat");
}

/* 1 when the bytes start like a gzip, zstd, bzip2 or xz stream. */
static int plan_magic_compressed(const unsigned char *b, size_t n)
{
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return 1;
    if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
        return 1;
    if (n >= 3 && b[0] == 'B' && b[1] == 'Z' && b[2] == 'h')
        return 1;
    if (n >= 4 && b[0] == 0xfd && b[1] == '7' && b[2] == 'z' && b[3] == 'X')
        return 1;
    return 0;
}

typedef struct {
    char *root;
    dsp_store *store;
} plan_open_store;

typedef struct {
    plan_open_store *stores;
    size_t nstores;
    dsp_plan_object *objs;
    size_t n, cap;
} plan_expansion;

static dsp_status plan_get_store(plan_expansion *x, const char *root, dsp_store **out,
                                 dsp_err *err)
{
    for (size_t i = 0; i < x->nstores; i++)
        if (!strcmp(x->stores[i].root, root)) {
            *out = x->stores[i].store;
            return DSP_OK;
        }
    dsp_store *s;
    dsp_status st = dsp_store_open(root, NULL, &s, err);
    if (st)
        return st;
    x->stores = dsp_xrealloc(x->stores, (x->nstores + 1) * sizeof *x->stores);
    x->stores[x->nstores].root = dsp_xstrdup(root);
    x->stores[x->nstores].store = s;
    x->nstores++;
    *out = s;
    return DSP_OK;
}

/*
 * Split an input URI into the root to open (its longest literal directory,
 * at least "s3://bucket" or "/") and the key pattern below it.
 */
static void plan_split_glob(const char *uri, char **root, const char **pattern)
{
    size_t base = 0; /* the root never ends before this offset */
    if (!strncmp(uri, "s3://", 5)) {
        const char *slash = strchr(uri + 5, '/');
        base = slash ? (size_t)(slash - uri) : strlen(uri);
    } else if (!strncmp(uri, "file://", 7)) {
        base = 7;
    }
    size_t literal = strcspn(uri, "*?[\\");
    size_t dir_end = base;
    for (size_t i = base; i < literal; i++)
        if (uri[i] == '/')
            dir_end = i;
    if (dir_end == base && uri[base] == '/' && base == 0) {
        /* "/x*": the root is the file system root. */
        *root = dsp_xstrdup("/");
        *pattern = uri + 1;
        return;
    }
    if (dir_end == base && base == 7) {
        *root = dsp_xstrdup("file:///");
        *pattern = uri + 8;
        return;
    }
    *root = dsp_xstrndup(uri, dir_end);
    *pattern = uri[dir_end] == '/' ? uri + dir_end + 1 : uri + dir_end;
}

static void plan_add_object(plan_expansion *x, const char *root, const dsp_list_entry *e,
                            int splittable)
{
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 256;
        x->objs = dsp_xrealloc(x->objs, x->cap * sizeof *x->objs);
    }
    dsp_plan_object *o = &x->objs[x->n++];
    memset(o, 0, sizeof *o);
    o->uri_root = dsp_xstrdup(root);
    o->key = dsp_xstrdup(e->key);
    o->size = e->size;
    snprintf(o->etag, sizeof o->etag, "%s", e->etag);
    o->splittable = splittable;
}

/* Decide whether a listed object may be split, reading its first 4 bytes
 * only when it is named like plain JSONL and is large enough to split. */
static dsp_status plan_check_splittable(const dsp_spec *spec, dsp_store *s, const char *root,
                                        const dsp_list_entry *e, int *splittable,
                                        dsp_buf *head, dsp_err *err)
{
    *splittable = 0;
    if (!plan_named_plain_jsonl(e->key, spec->format))
        return DSP_OK;
    if (e->size <= (uint64_t)spec->target_task_bytes) {
        *splittable = 1; /* never split, so its content does not matter here */
        return DSP_OK;
    }
    dsp_status st = dsp_store_get(s, e->key, 0, 4, head, NULL, err);
    if (st) {
        dsp_err_prefix(err, "reading the first bytes of %s/%s", root, e->key);
        return st;
    }
    if (plan_magic_compressed((const unsigned char *)head->data, head->len)) {
        DSP_WARN("plan_input_compressed", "root=%s key=%s size=%" PRIu64
                 " note=\"named like plain JSONL but compressed; read whole\"",
                 root, e->key, e->size);
        return DSP_OK;
    }
    *splittable = 1;
    return DSP_OK;
}

static dsp_status plan_expand_one(const dsp_spec *spec, plan_expansion *x, size_t index,
                                  dsp_buf *head, dsp_err *err)
{
    const char *uri = spec->inputs[index];
    char *root = NULL;
    const char *pattern;
    plan_split_glob(uri, &root, &pattern);
    dsp_list_page page = {0};
    int glob = strcspn(pattern, "*?[\\") != strlen(pattern);
    char *prefix = dsp_xstrndup(pattern, strcspn(pattern, "*?[\\"));
    dsp_store *s;
    dsp_status st = plan_get_store(x, root, &s, err);
    if (st)
        goto done;
    /* NOTE: on a local store, a file under the prefix that cannot be read
     * fails this listing even when the pattern would not match it. */
    if ((st = dsp_store_list_all(s, prefix, NULL, &page, err)))
        goto done;
    const char *store_root = dsp_store_uri(s);
    size_t matched = 0, below = 0;
    for (size_t i = 0; i < page.n; i++) {
        const dsp_list_entry *e = &page.items[i];
        size_t klen = strlen(e->key);
        if (klen == 0 || e->key[klen - 1] == '/')
            continue;
        if (!dsp_glob_match(pattern, e->key)) {
            if (!glob && !strncmp(e->key, prefix, strlen(prefix)) && e->key[strlen(prefix)] == '/')
                below++;
            continue;
        }
        int splittable;
        if ((st = plan_check_splittable(spec, s, store_root, e, &splittable, head, err)))
            goto done;
        plan_add_object(x, store_root, e, splittable);
        matched++;
    }
    if (matched == 0) {
        if (below)
            st = dsp_err_set(err, DSP_ENOTFOUND,
                             "input[%zu]: \"%s\" matches no object, but %zu objects are below "
                             "it; use \"%s/**\" to read them",
                             index, uri, below, uri);
        else
            st = dsp_err_set(err, DSP_ENOTFOUND, "input[%zu]: \"%s\" matches no object", index,
                             uri);
    }
done:
    if (st && err->msg[0] && strncmp(err->msg, "input[", 6))
        dsp_err_prefix(err, "input[%zu] \"%s\"", index, uri);
    dsp_list_page_free(&page);
    free(prefix);
    free(root);
    return st;
}

dsp_status dsp_plan_expand(const dsp_spec *spec, dsp_plan_object **objs, size_t *nobjs,
                           dsp_err *err)
{
    plan_expansion x = {0};
    dsp_buf head = DSP_BUF_INIT;
    dsp_status st = DSP_OK;
    *objs = NULL;
    *nobjs = 0;
    for (size_t i = 0; i < spec->ninputs && !st; i++)
        st = plan_expand_one(spec, &x, i, &head, err);
    for (size_t i = 0; i < x.nstores; i++) {
        dsp_store_close(x.stores[i].store);
        free(x.stores[i].root);
    }
    free(x.stores);
    dsp_buf_free(&head);
    if (st) {
        dsp_plan_objects_free(x.objs, x.n);
        return st;
    }
    *objs = x.objs;
    *nobjs = x.n;
    return DSP_OK;
}

void dsp_plan_objects_free(dsp_plan_object *objs, size_t nobjs)
{
    for (size_t i = 0; i < nobjs; i++) {
        free(objs[i].uri_root);
        free(objs[i].key);
    }
    free(objs);
}

/* ---- splitting and packing ---- */

typedef struct {
    dsp_plan_object *obj;
    char *uri; /* root + "/" + key, the sort key */
} plan_sorted;

static int plan_sorted_cmp(const void *a, const void *b)
{
    const plan_sorted *x = a, *y = b;
    int c = strcmp(x->uri, y->uri);
    if (c)
        return c;
    /* The same object reached through two roots: prefer the longer root. */
    return strcmp(y->obj->uri_root, x->obj->uri_root);
}

typedef struct {
    const dsp_plan_object *obj;
    uint64_t offset;
    int64_t length; /* -1: whole object */
    uint64_t bytes;
    uint64_t cost;
    int alone; /* gets a task of its own */
} plan_piece;

typedef struct {
    dsp_plan_task *tasks;
    size_t n, cap;
} plan_task_list;

static dsp_plan_task *plan_new_task(plan_task_list *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->tasks = dsp_xrealloc(l->tasks, l->cap * sizeof *l->tasks);
    }
    dsp_plan_task *t = &l->tasks[l->n];
    memset(t, 0, sizeof *t);
    t->index = (int)l->n;
    snprintf(t->id, sizeof t->id, "t%05d", t->index);
    l->n++;
    return t;
}

static void plan_task_add_pieces(dsp_plan_task *t, const plan_piece *p, size_t n)
{
    t->inputs = dsp_xcalloc(n, sizeof *t->inputs);
    t->ninputs = n;
    for (size_t i = 0; i < n; i++) {
        dsp_plan_input *in = &t->inputs[i];
        in->uri_root = dsp_xstrdup(p[i].obj->uri_root);
        in->key = dsp_xstrdup(p[i].obj->key);
        in->offset = p[i].offset;
        in->length = p[i].length;
        in->size = p[i].obj->size;
        snprintf(in->etag, sizeof in->etag, "%s", p[i].obj->etag);
        t->bytes += p[i].bytes;
    }
}

/* Pack pieces[0..n) (all small) into ceil(cost / target) contiguous tasks
 * by cost midpoint; see the file comment. */
static void plan_pack_run(plan_task_list *l, const plan_piece *p, size_t n, uint64_t target)
{
    if (n == 0)
        return;
    uint64_t run_cost = 0;
    for (size_t i = 0; i < n; i++)
        run_cost += p[i].cost;
    uint64_t k = (run_cost + target - 1) / target;
    if (k == 0)
        k = 1;
    size_t start = 0;
    uint64_t current = 0, before = 0;
    for (size_t i = 0; i < n; i++) {
        /* Twice the midpoint, to stay in integers. */
        unsigned __int128 mid2 = (unsigned __int128)(2 * before + p[i].cost);
        uint64_t bucket = (uint64_t)(mid2 * k / (2 * (unsigned __int128)run_cost));
        if (bucket >= k)
            bucket = k - 1;
        if (bucket != current && i > start) {
            plan_task_add_pieces(plan_new_task(l), p + start, i - start);
            start = i;
        }
        current = bucket;
        before += p[i].cost;
    }
    plan_task_add_pieces(plan_new_task(l), p + start, n - start);
}

static void plan_make_pieces(const dsp_spec *spec, plan_sorted *sorted, size_t n,
                             plan_piece **out, size_t *nout)
{
    uint64_t target = (uint64_t)spec->target_task_bytes;
    uint64_t object_cost = target / 1024 ? target / 1024 : 1;
    size_t cap = n + 16, count = 0;
    plan_piece *pieces = dsp_xmalloc(cap * sizeof *pieces);
    for (size_t i = 0; i < n; i++) {
        const dsp_plan_object *o = sorted[i].obj;
        uint64_t parts = 1, len = o->size;
        if (o->splittable && o->size > target) {
            parts = (o->size + target - 1) / target;
            len = (o->size + parts - 1) / parts;
        }
        if (count + parts > cap) {
            cap = (count + parts) * 2;
            pieces = dsp_xrealloc(pieces, cap * sizeof *pieces);
        }
        for (uint64_t j = 0; j < parts; j++) {
            plan_piece *p = &pieces[count++];
            p->obj = o;
            if (parts == 1) {
                p->offset = 0;
                p->length = -1;
                p->bytes = o->size;
            } else {
                p->offset = j * len;
                p->bytes = j + 1 < parts ? len : o->size - j * len;
                p->length = (int64_t)p->bytes;
            }
            p->cost = p->bytes + object_cost;
            p->alone = parts > 1 || p->cost >= target / 2;
        }
    }
    *out = pieces;
    *nout = count;
}

static int plan_uri_equal(const plan_sorted *a, const plan_sorted *b)
{
    return !strcmp(a->uri, b->uri);
}

static dsp_status plan_make_input_tasks(const dsp_spec *spec, dsp_plan_object *objs,
                                        size_t nobjs, plan_task_list *tasks, dsp_err *err)
{
    uint64_t target = (uint64_t)spec->target_task_bytes;
    uint64_t max_pieces = 0;
    for (size_t i = 0; i < nobjs; i++)
        max_pieces += objs[i].splittable && objs[i].size > target
                          ? (objs[i].size + target - 1) / target
                          : 1;
    if (max_pieces > DSP_PLAN_MAX_TASKS)
        return dsp_err_set(err, DSP_EINVAL,
                           "options.target_task_bytes: %" PRIu64 " bytes would make up to %" PRIu64
                           " tasks, more than the limit of %d; raise target_task_bytes",
                           target, max_pieces, DSP_PLAN_MAX_TASKS);

    plan_sorted *sorted = dsp_xmalloc((nobjs ? nobjs : 1) * sizeof *sorted);
    for (size_t i = 0; i < nobjs; i++) {
        sorted[i].obj = &objs[i];
        sorted[i].uri = dsp_uri_join(objs[i].uri_root, objs[i].key);
    }
    qsort(sorted, nobjs, sizeof *sorted, plan_sorted_cmp);
    size_t unique = 0;
    for (size_t i = 0; i < nobjs; i++) {
        if (unique && plan_uri_equal(&sorted[unique - 1], &sorted[i])) {
            free(sorted[i].uri);
            continue;
        }
        sorted[unique++] = sorted[i];
    }

    plan_piece *pieces;
    size_t npieces;
    plan_make_pieces(spec, sorted, unique, &pieces, &npieces);
    size_t run_start = 0;
    for (size_t i = 0; i <= npieces; i++) {
        if (i < npieces && !pieces[i].alone)
            continue;
        plan_pack_run(tasks, pieces + run_start, i - run_start, target);
        if (i < npieces)
            plan_task_add_pieces(plan_new_task(tasks), pieces + i, 1);
        run_start = i + 1;
    }
    free(pieces);
    for (size_t i = 0; i < unique; i++)
        free(sorted[i].uri);
    free(sorted);
    return DSP_OK;
}

/* ---- stages ---- */

static const dsp_op_def *(*plan_op_lookup)(const char *name) = dsp_op_find;

void dsp_plan_set_op_lookup(const dsp_op_def *(*lookup)(const char *name))
{
    plan_op_lookup = lookup ? lookup : dsp_op_find;
}

size_t dsp_plan_cut_stages(const int *wide, size_t nsteps, size_t *stage_of)
{
    size_t stage = 0;
    for (size_t i = 0; i < nsteps; i++) {
        if (wide[i])
            stage++;
        stage_of[i] = stage;
    }
    return stage + 1;
}

/*
 * Shuffle stages of the wide operators the runtime knows how to run
 * (runtime/stage_wide.c). A segment [wide, narrow...] of a dedup operator
 * becomes its reduce stages, each depending on the one before, then a
 * "dedup_filter" stage with one task per task of the pipeline stage that
 * fed the shuffle. The filter stage holds the segment's steps, wide step
 * first, and depends on the last reduce stage and on that pipeline stage.
 * repartition becomes one "repartition_reduce" stage of `shards` tasks (P
 * when 0) that writes the output itself, so it must be the last step. With
 * "by": "sort" it becomes "sort_boundaries" (one task, reading the pipeline
 * stage's key samples), "sort_map" (one task per pipeline task, depending
 * on both) and "sort_reduce" (`shards` tasks) instead.
 */
typedef struct {
    const char *op;
    const char *kinds[2];  /* reduce stages in order, NULL-terminated */
    int single[2];         /* 1: the stage has one task instead of P */
    int filter;            /* 1: a dedup_filter stage follows */
} plan_wide_layout;

static const plan_wide_layout plan_wide_layouts[] = {
    {"dedup_exact", {"dedup_exact_reduce", NULL}, {0, 0}, 1},
    {"dedup_minhash", {"minhash_bands", "minhash_components"}, {0, 1}, 1},
    {"repartition", {"repartition_reduce", NULL}, {0, 0}, 0},
};

static const plan_wide_layout *plan_find_layout(const char *op)
{
    for (size_t i = 0; i < sizeof plan_wide_layouts / sizeof plan_wide_layouts[0]; i++)
        if (!strcmp(plan_wide_layouts[i].op, op))
            return &plan_wide_layouts[i];
    return NULL;
}

/* Append a stage with `ntasks` input-less tasks sharing `total` bytes. */
static dsp_plan_stage *plan_add_stage(dsp_plan *plan, size_t *cap, const char *kind,
                                      size_t ntasks, uint64_t total)
{
    if (plan->nstages == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        plan->stages = dsp_xrealloc(plan->stages, *cap * sizeof *plan->stages);
    }
    dsp_plan_stage *stage = &plan->stages[plan->nstages];
    memset(stage, 0, sizeof *stage);
    stage->index = (int)plan->nstages;
    snprintf(stage->id, sizeof stage->id, "s%u", (unsigned)(plan->nstages % 1000000));
    snprintf(stage->kind, sizeof stage->kind, "%s", kind);
    stage->steps = cJSON_CreateArray();
    stage->ntasks = ntasks;
    stage->tasks = dsp_xcalloc(ntasks ? ntasks : 1, sizeof *stage->tasks);
    for (size_t t = 0; t < ntasks; t++) {
        dsp_plan_task *task = &stage->tasks[t];
        task->index = (int)t;
        snprintf(task->id, sizeof task->id, "t%05d", (int)t);
        /* Share the estimate so that the tasks add up to it. */
        task->bytes = total / ntasks + (t < total % ntasks ? 1 : 0);
        stage->bytes += task->bytes;
    }
    plan->nstages++;
    plan->total_tasks += ntasks;
    return stage;
}

static void plan_set_deps(dsp_plan_stage *stage, int a, int b)
{
    stage->ndeps = b >= 0 ? 2 : 1;
    stage->deps = dsp_xmalloc(stage->ndeps * sizeof *stage->deps);
    stage->deps[0] = a;
    if (b >= 0)
        stage->deps[1] = b;
}

static dsp_status plan_make_stages(const dsp_spec *spec, dsp_plan *plan,
                                   plan_task_list *input_tasks, dsp_err *err)
{
    size_t nsteps = (size_t)cJSON_GetArraySize(spec->steps);
    int *wide = dsp_xcalloc(nsteps ? nsteps : 1, sizeof *wide);
    size_t *stage_of = dsp_xcalloc(nsteps ? nsteps : 1, sizeof *stage_of);
    const char **names = dsp_xcalloc(nsteps ? nsteps : 1, sizeof *names);
    dsp_status st = DSP_OK;
    size_t i = 0;
    for (const cJSON *step = spec->steps->child; step; step = step->next, i++) {
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(step, "op");
        const dsp_op_def *def = cJSON_IsString(op) ? plan_op_lookup(op->valuestring) : NULL;
        if (!def) {
            st = dsp_err_set(err, DSP_EINVAL, "steps[%zu]: unknown operator", i);
            goto done;
        }
        wide[i] = def->wide;
        names[i] = def->name;
    }
    /* Segment k holds the steps with stage_of == k: segment 0 the narrow
     * steps before the first wide operator, every later one a wide
     * operator and the narrow steps after it. */
    size_t nsegments = dsp_plan_cut_stages(wide, nsteps, stage_of);

    uint64_t total = 0;
    for (size_t t = 0; t < input_tasks->n; t++)
        total += input_tasks->tasks[t].bytes;
    uint64_t target = (uint64_t)spec->target_task_bytes;
    /* NOTE: total counts stored bytes, so compressed inputs (often 3-5x
     * smaller than their JSONL) give wide stages fewer partitions than
     * their decompressed size would need. */
    uint64_t parts = (total + target - 1) / target;
    if (parts < 1)
        parts = 1;
    if (parts > DSP_PLAN_MAX_PARTITIONS)
        parts = DSP_PLAN_MAX_PARTITIONS;

    size_t cap = 0;
    int pipeline_stage = 0; /* the stage whose tasks read documents last */
    for (size_t seg = 0; seg < nsegments; seg++) {
        const plan_wide_layout *layout = NULL;
        const char *kind = "map";
        dsp_plan_stage *stage;

        i = 0;
        for (const cJSON *step = spec->steps->child; step; step = step->next, i++)
            if (stage_of[i] == seg && wide[i] && seg > 0) {
                kind = names[i];
                layout = plan_find_layout(names[i]);
                break;
            }
        if (seg == 0) {
            stage = plan_add_stage(plan, &cap, "map", 0, 0);
            free(stage->tasks);
            stage->tasks = input_tasks->tasks;
            stage->ntasks = input_tasks->n;
            input_tasks->tasks = NULL;
            input_tasks->n = 0;
            stage->bytes = total;
            plan->total_tasks += stage->ntasks;
        } else if (layout && !layout->filter) {
            if (i + 1 < nsteps) {
                st = dsp_err_set(err, DSP_EINVAL,
                                 "steps[%zu] (%s) must be the last step, because it writes the "
                                 "output itself; move the steps after it before it",
                                 i, names[i]);
                goto done;
            }
            const cJSON *wide_step = cJSON_GetArrayItem(spec->steps, (int)i);
            const cJSON *shards = cJSON_GetObjectItemCaseSensitive(wide_step, "shards");
            size_t n = (size_t)parts;
            if (cJSON_IsNumber(shards) && shards->valuedouble >= 1 &&
                shards->valuedouble <= DSP_PLAN_MAX_PARTITIONS)
                n = (size_t)shards->valuedouble;
            const cJSON *by = cJSON_GetObjectItemCaseSensitive(wide_step, "by");
            if (cJSON_IsString(by) && !strcmp(by->valuestring, "sort")) {
                /* A sample of the sort keys picks the shard boundaries, then
                 * sort_map re-reads each pipeline task's output into the
                 * range shuffle that sort_reduce merges. */
                int source = pipeline_stage;
                stage = plan_add_stage(plan, &cap, "sort_boundaries", 1, total);
                cJSON_AddItemToArray(stage->steps, cJSON_Duplicate(wide_step, 1));
                plan_set_deps(stage, source, -1);
                int bounds = stage->index;
                stage = plan_add_stage(plan, &cap, "sort_map", plan->stages[source].ntasks, 0);
                for (size_t t = 0; t < stage->ntasks; t++)
                    stage->tasks[t].bytes = plan->stages[source].tasks[t].bytes;
                stage->bytes = plan->stages[source].bytes;
                cJSON_AddItemToArray(stage->steps, cJSON_Duplicate(wide_step, 1));
                plan_set_deps(stage, bounds, source);
                int sort_map = stage->index;
                stage = plan_add_stage(plan, &cap, "sort_reduce", n, total);
                plan_set_deps(stage, sort_map, -1);
            } else {
                int prev = pipeline_stage;
                stage = plan_add_stage(plan, &cap, layout->kinds[0], n, total);
                plan_set_deps(stage, prev, -1);
            }
        } else if (layout) {
            const cJSON *wide_step = cJSON_GetArrayItem(spec->steps, (int)i);
            for (size_t k = 0; k < 2 && layout->kinds[k]; k++) {
                size_t n = layout->single[k] ? 1 : (size_t)parts;
                int prev = (int)plan->nstages - 1;
                stage = plan_add_stage(plan, &cap, layout->kinds[k], n, total);
                cJSON_AddItemToArray(stage->steps, dsp_op_dedup_pin_step(wide_step));
                plan_set_deps(stage, prev, -1);
            }
            int last_reduce = (int)plan->nstages - 1;
            stage = plan_add_stage(plan, &cap, "dedup_filter",
                                   plan->stages[pipeline_stage].ntasks, 0);
            /* Each filter task reads what its source task wrote. */
            for (size_t t = 0; t < stage->ntasks; t++)
                stage->tasks[t].bytes = plan->stages[pipeline_stage].tasks[t].bytes;
            stage->bytes = plan->stages[pipeline_stage].bytes;
            plan_set_deps(stage, last_reduce, pipeline_stage);
            pipeline_stage = stage->index;
        } else {
            /* A wide operator without a shuffle layout: one stage of P
             * partition tasks, which the runtime rejects at submit. */
            int prev = (int)plan->nstages - 1;
            stage = plan_add_stage(plan, &cap, kind, (size_t)parts, total);
            plan_set_deps(stage, prev, -1);
        }
        /* A filter stage gets its wide step first, which names its counters. */
        i = 0;
        for (const cJSON *step = spec->steps->child; step; step = step->next, i++) {
            if (stage_of[i] != seg)
                continue;
            if (!strcmp(names[i], dsp_op_repartition_def.name))
                cJSON_AddItemToArray(stage->steps, dsp_op_repartition_pin_step(step));
            else
                cJSON_AddItemToArray(stage->steps, cJSON_Duplicate(step, 1));
        }
    }
    plan->total_bytes = total;
done:
    free(wide);
    free(stage_of);
    free(names);
    return st;
}

dsp_status dsp_plan_from_objects(const dsp_spec *spec, dsp_plan_object *objs, size_t nobjs,
                                 dsp_plan **out, dsp_err *err)
{
    *out = NULL;
    dsp_plan *plan = dsp_xcalloc(1, sizeof *plan);
    plan->job_name = dsp_xstrdup(spec->name);
    memcpy(plan->spec_hash, spec->spec_hash, sizeof plan->spec_hash);
    plan_task_list tasks = {0};
    dsp_status st = plan_make_input_tasks(spec, objs, nobjs, &tasks, err);
    if (!st)
        st = plan_make_stages(spec, plan, &tasks, err);
    for (size_t t = 0; t < tasks.n; t++) {
        for (size_t j = 0; j < tasks.tasks[t].ninputs; j++) {
            free(tasks.tasks[t].inputs[j].uri_root);
            free(tasks.tasks[t].inputs[j].key);
        }
        free(tasks.tasks[t].inputs);
    }
    free(tasks.tasks);
    if (st) {
        dsp_plan_free(plan);
        return st;
    }
    *out = plan;
    return DSP_OK;
}

/* Remove empty and "." segments from an absolute path in place, and let
 * ".." remove the segment before it, as the kernel does without symbolic
 * links. A trailing slash is kept. */
static void plan_normalize_path(char *path)
{
    size_t len = strlen(path);
    int trailing = len > 1 && path[len - 1] == '/';
    /* out never passes p: each kept segment is written with the '/' before
     * it, and p has consumed that separator already. */
    char *out = path + 1;
    const char *p = path + 1;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* an empty or "." segment */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (out > path + 1 && out[-1] != '/')
                out--;
            if (out > path + 1)
                out--; /* the '/' before the removed segment */
        } else {
            if (out > path + 1)
                *out++ = '/';
            memmove(out, p, n);
            out += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    if (trailing && out > path + 1)
        *out++ = '/';
    *out = '\0';
}

/* Replace the longest existing directory prefix of an absolute path that
 * contains no glob character by its real path, so that symbolic links
 * compare as their targets. */
static char *plan_resolve_links(char *path)
{
    size_t literal = strcspn(path, "*?[\\");
    for (size_t cut = literal; cut > 1; cut--) {
        if (path[cut] != '/' && path[cut] != '\0')
            continue;
        char saved = path[cut];
        path[cut] = '\0';
        char *real = realpath(path, NULL);
        path[cut] = saved;
        if (!real)
            continue;
        char *joined = dsp_xasprintf("%s%s", strcmp(real, "/") ? real : "", path + cut);
        free(real);
        free(path);
        return joined;
    }
    return path;
}

/* Write a URI or local path as one comparable location. S3 URIs stay as
 * written, because their keys may contain "//" and "..". Local paths
 * become absolute, without "file://", "." and ".." segments or doubled
 * slashes, and with symbolic links in their existing part resolved. */
static char *plan_location(const char *uri)
{
    char cwd[4096];
    char *loc;

    if (!strncmp(uri, "s3://", 5))
        return dsp_xstrdup(uri);
    if (!strncmp(uri, "file://", 7))
        uri += 7;
    if (uri[0] == '/' || !getcwd(cwd, sizeof cwd))
        loc = dsp_xstrdup(uri);
    else
        loc = dsp_xasprintf("%s/%s", cwd, uri);
    if (loc[0] != '/')
        return loc;
    plan_normalize_path(loc);
    return plan_resolve_links(loc);
}

/* Reject an output whose objects an input glob could match: a second run
 * of the job would read the first run's parts, manifest and _SUCCESS back
 * as input. Checked on the URIs alone, before any listing. */
static dsp_status plan_check_output_outside_inputs(const dsp_spec *spec, dsp_err *err)
{
    char *output = plan_location(spec->output_uri);
    size_t len = strlen(output);
    dsp_status st = DSP_OK;

    while (len > 1 && output[len - 1] == '/')
        output[--len] = '\0';
    char *prefix = dsp_xasprintf("%s/", output);
    for (size_t i = 0; i < spec->ninputs && st == DSP_OK; i++) {
        char *input = plan_location(spec->inputs[i]);
        if (dsp_glob_match_prefix(input, prefix))
            st = dsp_err_set(err, DSP_EINVAL,
                             "output %s lies under input[%zu] \"%s\": the input glob can "
                             "match the job's own output files, so a later run would read them "
                             "back; choose an output outside the inputs or narrow the glob",
                             spec->output_uri, i, spec->inputs[i]);
        free(input);
    }
    free(prefix);
    free(output);
    return st;
}

/* Return 1 when location a is b or lies under it, comparing whole path
 * segments. Trailing slashes are ignored. */
static int plan_location_within(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la >= lb && !strncmp(a, b, lb) && (la == lb || a[lb] == '/');
}

/* Key prefixes of the job store's own objects (docs/internals.md, "Keys in
 * the job store"). NOTE: the conditional-write probe's key
 * _dspark-probe-<16 hex> is left out, because a glob such as *.jsonl
 * could match some key with that prefix, though never the probe's; the
 * probe exists only for a moment while a worker starts. */
static const char *const plan_store_prefixes[] = {"jobs/", "active/", "outputs/",
                                                  "_dspark_doctor/", NULL};

dsp_status dsp_plan_check_store(const dsp_spec *spec, const char *store_uri, dsp_err *err)
{
    char *store = plan_location(store_uri);
    char *output = plan_location(spec->output_uri);
    dsp_status st = DSP_OK;

    size_t len = strlen(store);
    while (len > 1 && store[len - 1] == '/')
        store[--len] = '\0';
    /* A store inside the output is replaced or counted as foreign files by
     * publishing; an output inside the store's own keys mixes with them. */
    int overlap = plan_location_within(store, output);
    for (size_t k = 0; !overlap && plan_store_prefixes[k]; k++) {
        char *keys = dsp_xasprintf("%s/%s", store, plan_store_prefixes[k]);
        size_t n = strlen(keys);
        overlap = !strncmp(output, keys, n) ||
                  (keys[n - 1] == '/' && !strncmp(output, keys, n - 1) && output[n - 1] == '\0');
        free(keys);
    }
    if (overlap)
        st = dsp_err_set(err, DSP_EINVAL,
                         "output %s and job store %s overlap: publishing would mix the "
                         "store's files with the output, or count them as files DSpark did "
                         "not write; use separate locations (--store or the output uri)",
                         spec->output_uri, store);

    for (size_t i = 0; i < spec->ninputs && st == DSP_OK; i++) {
        char *input = plan_location(spec->inputs[i]);
        for (size_t k = 0; plan_store_prefixes[k] && st == DSP_OK; k++) {
            char *keys = dsp_xasprintf("%s/%s", store, plan_store_prefixes[k]);
            if (dsp_glob_match_prefix(input, keys))
                st = dsp_err_set(err, DSP_EINVAL,
                                 "job store %s lies under input[%zu] \"%s\": the input glob can "
                                 "match the store's shuffle files and earlier jobs' outputs, "
                                 "which would be read as input; use a store outside the inputs "
                                 "(--store or DSPARK_STORE) or narrow the glob",
                                 store, i, spec->inputs[i]);
            free(keys);
        }
        free(input);
    }
    free(output);
    free(store);
    return st;
}

dsp_status dsp_plan_build(const dsp_spec *spec, dsp_plan **out, dsp_err *err)
{
    dsp_plan_object *objs;
    size_t n;
    *out = NULL;
    int64_t started = dsp_mono_ms();
    dsp_status st = plan_check_output_outside_inputs(spec, err);
    if (st)
        return st;
    st = dsp_plan_expand(spec, &objs, &n, err);
    if (st)
        return st;
    int64_t listed = dsp_mono_ms();
    st = dsp_plan_from_objects(spec, objs, n, out, err);
    dsp_plan_objects_free(objs, n);
    if (st)
        return st;
    DSP_DEBUG("plan_built", "job=%s objects=%zu stages=%zu tasks=%zu bytes=%" PRIu64
             " list_ms=%" PRId64 " plan_ms=%" PRId64,
             spec->name, n, (*out)->nstages, (*out)->total_tasks, (*out)->total_bytes,
             listed - started, dsp_mono_ms() - listed);
    return DSP_OK;
}

dsp_obj_info *dsp_plan_task_versions(const dsp_plan_task *task)
{
    dsp_obj_info *versions = dsp_xcalloc(task->ninputs + 1, sizeof *versions);
    for (size_t i = 0; i < task->ninputs; i++) {
        versions[i].size = task->inputs[i].size;
        snprintf(versions[i].etag, sizeof versions[i].etag, "%s", task->inputs[i].etag);
    }
    return versions;
}

void dsp_plan_free(dsp_plan *plan)
{
    if (!plan)
        return;
    for (size_t s = 0; s < plan->nstages; s++) {
        dsp_plan_stage *stage = &plan->stages[s];
        for (size_t t = 0; t < stage->ntasks; t++) {
            dsp_plan_task *task = &stage->tasks[t];
            for (size_t j = 0; j < task->ninputs; j++) {
                free(task->inputs[j].uri_root);
                free(task->inputs[j].key);
            }
            free(task->inputs);
        }
        free(stage->tasks);
        free(stage->deps);
        cJSON_Delete(stage->steps);
    }
    free(plan->stages);
    free(plan->job_name);
    free(plan);
}
