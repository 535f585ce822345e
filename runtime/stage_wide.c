/*
 * stage_wide.c - tasks of the stages the planner makes for dedup_exact,
 * dedup_minhash and repartition (planner/plan.c, plan_wide_layouts), run
 * through tasks/dedup.h and tasks/repartition.h.
 *
 * Stage kinds and what one task does (M source tasks, P partitions):
 *   map or dedup_filter feeding a shuffle: runs its pipeline as usual and,
 *     for every surviving document, adds it to the next wide operator's
 *     dedup map. Besides its shards it writes <attempt>/shuffle.bin (the
 *     dedup map's shuffle file) and <attempt>/order.bin (the 16-byte order
 *     key of each written document, in output order). Its shards use
 *     WIDE_INTERMEDIATE_LEVEL. Before a repartition shuffle, which carries
 *     whole lines and order keys, it writes neither shards nor order.bin
 *     (and sort_map writes no shards). A map stage
 *     with no step before a dedup step or a sort, whose inputs are all
 *     JSONL, writes neither shards nor order.bin but <attempt>/inputs.direct,
 *     a marker with its reader's reject and repair counts (see
 *     wide_map_direct).
 *   dedup_exact_reduce, partition p: reads partition p of every
 *     shuffle.bin and writes <attempt>/drops.bin (M partitions).
 *   minhash_bands, partition p: writes <attempt>/edges.bin.
 *   minhash_components, one task: reads every edges.bin and writes
 *     <attempt>/drops.bin, and with the step's "clusters" option
 *     <attempt>/clusters-step<i>.jsonl (i: the step's index in the job).
 *   dedup_filter, task t: re-reads the shards that source task t committed,
 *     drops the documents whose order key is in drops.bin, and runs the
 *     narrow steps after the wide one. When source task t committed
 *     inputs.direct, it re-reads that map task's input ranges instead, with
 *     the job's reader settings. It sets skip_rejects because the map task
 *     already wrote and counted the rejects, and it takes order keys from
 *     the inputs as the map stage does. When the marker counts no reject
 *     and no repair, the lines are not validated again. Output and
 *     counters do not change.
 *   repartition_reduce, shard p: reads partition p of every shuffle.bin
 *     (whole document lines) and writes them, in input order, as the
 *     job's output shards.
 *   Sort ("by": "sort"): the pipeline stage writes sample.bin, the sort
 *     keys of about 1 in WIDE_SAMPLE_RATE documents, instead of a shuffle.
 *     sort_boundaries (one task) writes boundaries.bin, the shards - 1
 *     quantiles of all samples. sort_map, task t, re-reads source task t's
 *     shards, or its input ranges after an inputs.direct marker as
 *     dedup_filter does, into a range shuffle.bin, and sort_reduce writes
 *     each range sorted by (key, order key) like repartition_reduce.
 *
 * Order keys: (index of the input object in the map stage's sorted input
 * list, byte offset of the record in it). A filter stage takes each
 * document's key from its source task's order.bin (or from the inputs it
 * re-reads), so a second wide
 * operator still orders documents by where they sat in the job's input.
 * Survivors therefore depend only on the input, not on the number of
 * workers, tasks or partitions.
 *
 * Every earlier output is found through the seals of the stages this one
 * depends on, and every output goes under the attempt prefix. The commit
 * protocol (first commit wins, losers deleted) therefore covers the
 * intermediates too, and no seal names an abandoned attempt's shuffle.bin.
 */
#include "stage_wide.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../tasks/dedup.h"
#include "../tasks/input_cache.h"
#include "../tasks/json_key.h"
#include "../tasks/op_dedup.h"
#include "../tasks/op_repartition.h"
#include "../tasks/repartition.h"
#include "../tasks/writer.h"
#include "commit.h"

#define WIDE_SHUFFLE_NAME "shuffle.bin"
#define WIDE_ORDER_NAME "order.bin"
#define WIDE_DROPS_NAME "drops.bin"
#define WIDE_EDGES_NAME "edges.bin"
#define WIDE_SAMPLE_NAME "sample.bin"
#define WIDE_BOUNDS_NAME "boundaries.bin"
/* Empty marker a map task commits in place of data shards and order.bin
 * when its dedup_filter task is to re-read the task's inputs. */
#define WIDE_DIRECT_NAME "inputs.direct"
/* Sort keys longer than this are cut, so that the escaped key and the order
 * key fit the shuffle's 65,535-byte key limit. Documents whose keys agree
 * on this prefix sort in input order. */
#define WIDE_SORT_KEY_MAX 16384
/* One document in WIDE_SAMPLE_RATE goes into the sort sample, picked by a
 * hash of its order key so that the sample does not depend on the tasks.
 * NOTE: the one sort_boundaries task holds the whole sample in memory, so
 * it grows with the input; very large jobs need a lower rate or a cap. */
#define WIDE_SAMPLE_RATE 8
/* zstd (or gzip) level of shards that only a later stage of the job reads.
 * On the 100-byte records of bench/sort_bench.sh, zstd 1.5.4 level 1 ran
 * about 3 times faster than level 3, and its output was 2% smaller. */
#define WIDE_INTERMEDIATE_LEVEL 1
/* clusters-step<i>.jsonl: publish.c copies it to _dedup/clusters/step<i>.jsonl. */
#define WIDE_CLUSTERS_PREFIX "clusters-step"

/* ---- stage kinds ---- */

static int wide_is_pipeline(const char *kind)
{
    return !strcmp(kind, "map") || !strcmp(kind, "dedup_filter");
}

static int wide_is_shuffle_reader(const char *kind)
{
    return !strcmp(kind, "dedup_exact_reduce") || !strcmp(kind, "minhash_bands") ||
           !strcmp(kind, "repartition_reduce") || !strcmp(kind, "sort_reduce");
}

int dsp_wide_kind_supported(const char *kind)
{
    return wide_is_pipeline(kind) || wide_is_shuffle_reader(kind) ||
           !strcmp(kind, "minhash_components") || !strcmp(kind, "sort_boundaries") ||
           !strcmp(kind, "sort_map");
}

/* The stage after `stage` when it reads a shuffle that `stage` must write. */
static const dsp_plan_stage *wide_next_shuffle(const dsp_plan *plan, const dsp_plan_stage *stage)
{
    size_t next = (size_t)stage->index + 1;
    if (next >= plan->nstages)
        return NULL;
    const char *kind = plan->stages[next].kind;
    if (!wide_is_shuffle_reader(kind) && strcmp(kind, "sort_boundaries") != 0)
        return NULL;
    return &plan->stages[next];
}

int dsp_wide_stage_needed(const dsp_plan *plan, const dsp_plan_stage *stage)
{
    return strcmp(stage->kind, "map") != 0 || wide_next_shuffle(plan, stage) != NULL;
}

/* Index of a stage's first step in the job's step list: the steps of the
 * pipeline stages before it, because reduce stages only repeat a wide step
 * that the following filter stage lists again. */
static int wide_first_step_index(const dsp_plan *plan, const dsp_plan_stage *stage)
{
    int n = 0;
    for (int s = 0; s < stage->index; s++)
        if (wide_is_pipeline(plan->stages[s].kind))
            n += cJSON_GetArraySize(plan->stages[s].steps);
    return n;
}

/* op_counters with empty objects for the steps before `index`, so that
 * counters merged by position across stages land on the right step. */
static cJSON *wide_counters_at(int index, cJSON *counters)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < index; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateObject());
    cJSON_AddItemToArray(arr, counters);
    return arr;
}

/* ---- seals ---- */

/* Keys and sizes of the file named `name` in every task of a sealed stage,
 * in task order. Each committed task must have one. */
static dsp_status wide_sealed_files(dsp_store *store, const char *job, const dsp_plan_stage *dep,
                                    const char *name, char ***keys, uint64_t **sizes,
                                    size_t *n, dsp_err *err)
{
    cJSON *seal = NULL;
    dsp_status st = dsp_seal_read(store, job, dep->id, &seal, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "seal of stage %s", dep->id);
        return st;
    }
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(seal, "tasks");
    size_t count = (size_t)cJSON_GetArraySize(tasks);
    *keys = dsp_xcalloc(count ? count : 1, sizeof **keys);
    *sizes = dsp_xcalloc(count ? count : 1, sizeof **sizes);
    *n = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks) {
        const cJSON *f, *found = NULL;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(t, "files")) {
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(f, "key");
            const char *slash = cJSON_IsString(k) ? strrchr(k->valuestring, '/') : NULL;
            if (slash && !strcmp(slash + 1, name))
                found = f;
        }
        if (!found) {
            const cJSON *tid = cJSON_GetObjectItemCaseSensitive(t, "task");
            st = dsp_err_set(err, DSP_ECORRUPT,
                             "seal of stage %s: task %s committed no %s; the plan and the "
                             "seal do not match",
                             dep->id, cJSON_IsString(tid) ? tid->valuestring : "?", name);
            break;
        }
        (*keys)[*n] = dsp_xstrdup(cJSON_GetObjectItemCaseSensitive(found, "key")->valuestring);
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(found, "size");
        (*sizes)[*n] = cJSON_IsNumber(size) ? (uint64_t)size->valuedouble : 0;
        (*n)++;
    }
    cJSON_Delete(seal);
    return st;
}

static void wide_free_keys(char **keys, uint64_t *sizes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(sizes);
}

/* ---- result files ---- */

/* Append an object written under the attempt prefix to res->files with
 * its hex SHA-256, which the caller computed while writing it. */
static dsp_status wide_add_file(dsp_store *store, dsp_pipeline_result *res, const char *key,
                                uint64_t records, const char *sha256, dsp_err *err)
{
    dsp_obj_info info;
    dsp_status st = dsp_store_head(store, key, &info, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "reading the size of %s", key);
        return st;
    }
    res->files = dsp_xrealloc(res->files, (res->nfiles + 1) * sizeof *res->files);
    dsp_output_file *f = &res->files[res->nfiles++];
    memset(f, 0, sizeof *f);
    f->key = dsp_xstrdup(key);
    f->size = info.size;
    f->records = records;
    snprintf(f->sha256, sizeof f->sha256, "%s", sha256 ? sha256 : "");
    res->bytes_out += info.size;
    return DSP_OK;
}

/* Append a published file to res->files with the SHA-256 of its bytes,
 * read back from the store. */
static dsp_status wide_add_hashed_file(dsp_store *store, dsp_pipeline_result *res,
                                       const char *key, uint64_t records, dsp_err *err)
{
    dsp_buf buf = DSP_BUF_INIT;
    char sha[65];
    dsp_status st = dsp_store_get(store, key, 0, -1, &buf, NULL, err);
    if (st == DSP_OK) {
        dsp_sha256_hex(buf.data, buf.len, sha);
        st = wide_add_file(store, res, key, records, sha, err);
    } else {
        dsp_err_prefix(err, "reading %s", key);
    }
    dsp_buf_free(&buf);
    return st;
}

/* ---- pipeline stages: map, dedup_filter and sort_map ---- */

typedef struct {
    dsp_store *store;
    /* map stage: global input index of each of the task's inputs */
    const dsp_plan_task *task;
    uint64_t *input_index;
    size_t cursor;
    /* filter stage: order keys of the source task's documents (NULL when
     * `direct`: the task re-reads the map task's inputs), and drops */
    int direct;
    int direct_trusted;        /* the map task rejected and repaired no record */
    cJSON *direct_cache;       /* the marker's "cache" array, or NULL */
    char *direct_prefix;       /* the map task attempt's output prefix */
    unsigned char *orders;
    size_t norders;
    dsp_dedup_drops *drops;
    uint64_t dropped;
    /* next shuffle, when this stage feeds one */
    dsp_dedup_exact_map *exact;
    dsp_dedup_minhash_map *minhash;
    dsp_repart_map *repart;
    int sort;                  /* repart is in range mode, keyed by wide_sort_key */
    int typed_hash;            /* hash mode hashes w->field's type and value, not its text */
    int sampling;              /* collect sort keys into `sample` instead */
    dsp_buf sample;
    uint64_t samples;
    dsp_buf bounds_buf;        /* boundaries.bin; bounds point into it */
    const char **bounds;
    size_t *bound_lens;
    size_t nbounds;
    dsp_buf line;
    dsp_buf key;
    const char *field;
    uint64_t missing_field;    /* documents without the member, or with null */
    uint64_t null_field;       /* of those, the ones with null */
    dsp_arena arena;
    dsp_buf order_out;
    int skip_order;            /* direct and repartition map tasks write no order.bin */
} wide_pipe;

/* Global input index of each input of map task `task`: the position of its
 * object among the distinct objects of stage 0 in task order, which is the
 * planner's sorted URI order. */
static uint64_t *wide_input_indexes(const dsp_plan_stage *map, const dsp_plan_task *task)
{
    uint64_t *idx = dsp_xcalloc(task->ninputs ? task->ninputs : 1, sizeof *idx);
    const dsp_plan_input *prev = NULL;
    uint64_t n = 0;
    for (size_t t = 0; t < map->ntasks; t++) {
        const dsp_plan_task *cur = &map->tasks[t];
        for (size_t j = 0; j < cur->ninputs; j++) {
            const dsp_plan_input *in = &cur->inputs[j];
            if (prev && (strcmp(prev->key, in->key) || strcmp(prev->uri_root, in->uri_root)))
                n++;
            prev = in;
            if (cur == task)
                idx[j] = n;
        }
        if (cur == task)
            break;
    }
    return idx;
}

static dsp_status wide_doc_order(wide_pipe *w, const dsp_doc *d, dsp_dedup_order *o,
                                 dsp_err *err)
{
    if (w->orders) {
        if (d->seq >= w->norders)
            return dsp_err_set(err, DSP_ECORRUPT,
                               "document %llu of the source task has no order key (%s holds "
                               "%zu keys)",
                               (unsigned long long)d->seq, WIDE_ORDER_NAME, w->norders);
        *o = dsp_dedup_order_decode(w->orders + d->seq * DSP_DEDUP_ORDER_SIZE);
        return DSP_OK;
    }
    const dsp_plan_task *t = w->task;
    while (w->cursor < t->ninputs && strcmp(d->source, t->inputs[w->cursor].key) != 0)
        w->cursor++;
    if (w->cursor >= t->ninputs)
        return dsp_err_set(err, DSP_EINVAL, "document at offset %llu comes from %s, which is "
                           "not among the task's inputs in order",
                           (unsigned long long)d->offset, d->source);
    o->input = w->input_index[w->cursor];
    o->offset = d->offset;
    return DSP_OK;
}

static dsp_status wide_pre_filter(void *ctx, dsp_batch *b, unsigned char *keep, dsp_err *err)
{
    wide_pipe *w = ctx;
    for (size_t i = 0; i < b->n; i++) {
        dsp_dedup_order o;
        dsp_status st = wide_doc_order(w, &b->docs[i], &o, err);
        if (st != DSP_OK)
            return st;
        int r = dsp_dedup_drops_contains(w->drops, o, err);
        if (r < 0)
            return err->code ? err->code : DSP_EIO;
        if (r) {
            keep[i] = 0;
            w->dropped++;
        }
    }
    return DSP_OK;
}

/* Build the sort key of a document line (see dsp_json_sort_key). */
static void wide_sort_key(wide_pipe *w, const char *line, size_t len, dsp_buf *out)
{
    const char *val;
    size_t vlen;
    dsp_buf_reset(out);
    dsp_arena_reset(&w->arena);
    if (!dsp_json_find_path(line, len, w->field, &val, &vlen))
        val = NULL;
    dsp_json_sort_key(&w->arena, val, vlen, WIDE_SORT_KEY_MAX, out);
}

/* Whether the document with this encoded order key joins the sample. */
static int wide_sample_picks(const unsigned char *order)
{
    return XXH3_64bits(order, DSP_DEDUP_ORDER_SIZE) % WIDE_SAMPLE_RATE == 0;
}

/* Add the sort key of a picked document to the sample. */
static void wide_sample(wide_pipe *w, const char *line, size_t len)
{
    wide_sort_key(w, line, len, &w->key);
    unsigned char n[2] = {(unsigned char)(w->key.len >> 8), (unsigned char)w->key.len};
    dsp_buf_append(&w->sample, n, sizeof n);
    dsp_buf_append(&w->sample, w->key.data, w->key.len);
    w->samples++;
}

/* Add a document to the repartition shuffle, keyed by the xxh3-64 hash of
 * its line or of one member's raw JSON value (empty when missing), so keys
 * stay 8 bytes whatever the document size. */
static dsp_status wide_emit_repartition(wide_pipe *w, const dsp_batch *b, const dsp_doc *d,
                                        dsp_dedup_order o, dsp_err *err)
{
    dsp_buf_reset(&w->line);
    dsp_doc_serialize(b, d, &w->line);
    if (w->sort) {
        wide_sort_key(w, w->line.data, w->line.len, &w->key);
        return dsp_repart_map_add(w->repart, w->key.data, w->key.len, o, w->line.data,
                                  w->line.len, err);
    }
    const char *val = w->line.data;
    size_t vlen = w->line.len;
    if (w->field && !dsp_json_find_path(w->line.data, w->line.len, w->field, &val, &vlen)) {
        w->missing_field++;
        val = "";
        vlen = 0;
    } else if (w->field && w->typed_hash) {
        /* The type byte first, so that the string "1" and the number 1
         * differ, then the bytes that identify the value within its type. */
        dsp_buf_reset(&w->key);
        dsp_arena_reset(&w->arena);
        dsp_buf_append(&w->key, "\0", 1);
        w->key.data[0] = (char)dsp_json_value_bytes(&w->arena, val, vlen, &w->key);
        val = w->key.data;
        vlen = w->key.len;
    }
    unsigned char key[8];
    dsp_be64_put(key, XXH3_64bits(val, vlen));
    return dsp_repart_map_add(w->repart, key, sizeof key, o, w->line.data, w->line.len, err);
}

/* Add a document to the dedup_exact shuffle, keyed by the typed value of
 * its member w->field. */
static dsp_status wide_emit_field(wide_pipe *w, const dsp_doc *d, dsp_dedup_order o,
                                  dsp_err *err)
{
    const char *val;
    size_t vlen;
    if (!dsp_json_find_path(d->line, d->line_len, w->field, &val, &vlen)) {
        /* Without a value there is nothing to compare: keep the document. */
        w->missing_field++;
        return DSP_OK;
    }
    dsp_buf_reset(&w->key);
    dsp_arena_reset(&w->arena);
    dsp_json_type type = dsp_json_value_bytes(&w->arena, val, vlen, &w->key);
    if (type == DSP_JSON_TYPE_NULL) {
        w->missing_field++;
        w->null_field++;
        return DSP_OK;
    }
    return dsp_dedup_exact_map_add_value(w->exact, type, w->key.data, w->key.len, o, err);
}

static dsp_status wide_emit(void *ctx, const dsp_batch *b, const dsp_doc *d, dsp_err *err)
{
    wide_pipe *w = ctx;
    dsp_dedup_order o;
    dsp_status st = wide_doc_order(w, d, &o, err);
    if (st != DSP_OK)
        return st;
    unsigned char enc[DSP_DEDUP_ORDER_SIZE];
    dsp_dedup_order_encode(o, enc);
    if (!w->skip_order)
        dsp_buf_append(&w->order_out, enc, sizeof enc);
    if (w->repart)
        return wide_emit_repartition(w, b, d, o, err);
    if (w->sampling) {
        if (!wide_sample_picks(enc))
            return DSP_OK;
        dsp_buf_reset(&w->line);
        dsp_doc_serialize(b, d, &w->line);
        wide_sample(w, w->line.data, w->line.len);
        return DSP_OK;
    }

    if (w->field)
        return wide_emit_field(w, d, o, err);
    const char *text = d->text ? d->text : "";
    size_t len = d->text ? d->text_len : 0;
    (void)b;
    if (w->exact)
        return dsp_dedup_exact_map_add(w->exact, text, len, o, err);
    return dsp_dedup_minhash_map_add(w->minhash, text, len, o, err);
}

/*
 * The inputs.direct marker contains the map task's reader counts as
 * {"rejected": N, "repaired": N}. When both are 0, every non-blank input
 * line was a valid record, so the dedup_filter or sort_map task re-reads
 * the lines without validating them again. An empty or unreadable marker only turns that off.
 * Its "cache" array has, for each input, null or the length and xxh3 hash
 * of the input cache entry the map task wrote (tasks/input_cache.h).
 */
static dsp_status wide_read_direct_marker(dsp_store *store, const char *key, wide_pipe *w,
                                          dsp_err *err)
{
    dsp_buf buf = DSP_BUF_INIT;
    dsp_status st = dsp_store_get(store, key, 0, -1, &buf, NULL, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "reading %s", key);
        dsp_buf_free(&buf);
        return st;
    }
    cJSON *marker = buf.len ? cJSON_ParseWithLength(buf.data, buf.len) : NULL;
    const cJSON *rejected = cJSON_GetObjectItemCaseSensitive(marker, "rejected");
    const cJSON *repaired = cJSON_GetObjectItemCaseSensitive(marker, "repaired");
    w->direct_trusted = cJSON_IsNumber(rejected) && rejected->valuedouble == 0 &&
                        cJSON_IsNumber(repaired) && repaired->valuedouble == 0;
    cJSON *cache = cJSON_DetachItemFromObjectCaseSensitive(marker, "cache");
    if (cJSON_IsArray(cache)) {
        w->direct_cache = cache;
        const char *slash = strrchr(key, '/');
        w->direct_prefix = dsp_xstrndup(key, slash ? (size_t)(slash - key) : 0);
    } else {
        cJSON_Delete(cache);
    }
    cJSON_Delete(marker);
    dsp_buf_free(&buf);
    return DSP_OK;
}

/* Write the inputs.direct marker of a map task (see wide_read_direct_marker). */
static dsp_status wide_write_direct_marker(dsp_store *store, const char *key, size_t ninputs,
                                           dsp_pipeline_result *res, dsp_err *err)
{
    cJSON *marker = cJSON_CreateObject();
    cJSON_AddNumberToObject(marker, "rejected", (double)res->records_rejected);
    cJSON_AddNumberToObject(marker, "repaired", (double)res->records_repaired);
    cJSON *cache = cJSON_AddArrayToObject(marker, "cache");
    for (size_t i = 0; i < ninputs; i++) {
        const dsp_input_cached *c = res->cached ? &res->cached[i] : NULL;
        if (!c || !c->ok) {
            cJSON_AddItemToArray(cache, cJSON_CreateNull());
            continue;
        }
        /* Hex strings, because JSON numbers lose 64-bit precision. */
        char bytes[24], hash[24];
        snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)c->bytes);
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)c->hash);
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "bytes", bytes);
        cJSON_AddStringToObject(entry, "xxh3", hash);
        cJSON_AddItemToArray(cache, entry);
    }
    char *body = cJSON_PrintUnformatted(marker);
    cJSON_Delete(marker);
    size_t n = strlen(body);
    char sha[65];
    dsp_sha256_hex(body, n, sha);
    dsp_status st = dsp_store_put(store, key, body, n, NULL, NULL, err);
    free(body);
    if (st == DSP_OK)
        st = wide_add_file(store, res, key, 0, sha, err);
    if (st != DSP_OK)
        dsp_err_prefix(err, "writing %s", key);
    return st;
}

/* Set *ref to the input cache entry of input i of the direct map task,
 * when the marker lists one. wide_free_cache_refs frees the name. */
static void wide_use_cache_entry(const wide_pipe *w, const char *job, size_t i,
                                 dsp_input_cache_ref *ref)
{
    const cJSON *entry = cJSON_GetArrayItem(w->direct_cache, (int)i);
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(entry, "bytes");
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(entry, "xxh3");
    if (!cJSON_IsString(bytes) || !cJSON_IsString(hash) || !w->direct_prefix)
        return;
    ref->name = dsp_input_cache_name(job, w->direct_prefix, i);
    ref->bytes = strtoull(bytes->valuestring, NULL, 10);
    ref->hash = strtoull(hash->valuestring, NULL, 16);
}

/* Remove the input cache entries that refs[0..n) name, or only free the
 * names when remove is 0. */
static void wide_free_cache_refs(dsp_input_cache_ref *refs, size_t n, int remove)
{
    for (size_t i = 0; refs && i < n; i++) {
        if (refs[i].name && remove)
            dsp_input_cache_remove(refs[i].name);
        free(refs[i].name);
        refs[i].name = NULL;
    }
}

/* Read source task t's order.bin and data shards from the source stage's
 * seal; *shards get the task's data files in order. */
static dsp_status wide_load_source(dsp_store *store, const char *job,
                                   const dsp_plan_stage *source, size_t t, wide_pipe *w,
                                   dsp_input_range **shards, size_t *nshards, dsp_err *err)
{
    cJSON *seal = NULL;
    dsp_status st = dsp_seal_read(store, job, source->id, &seal, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "seal of stage %s", source->id);
        return st;
    }
    const cJSON *commit = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(seal, "tasks"),
                                             (int)t);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(commit, "files");
    size_t n = (size_t)cJSON_GetArraySize(files);
    const char *order_key = NULL, *direct_key = NULL;
    *shards = dsp_xcalloc(n ? n : 1, sizeof **shards);
    *nshards = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(f, "key");
        if (!cJSON_IsString(k))
            continue;
        const char *slash = strrchr(k->valuestring, '/');
        const char *base = slash ? slash + 1 : k->valuestring;
        if (!strcmp(base, WIDE_ORDER_NAME)) {
            order_key = k->valuestring;
        } else if (!strcmp(base, WIDE_DIRECT_NAME)) {
            w->direct = 1;
            direct_key = k->valuestring;
        } else if (!strncmp(base, "part-", 5)) {
            /* Data shards, as the pipeline names them. */
            dsp_input_range *in = &(*shards)[(*nshards)++];
            in->uri_root = dsp_store_uri(store);
            in->key = dsp_xstrdup(k->valuestring);
            in->offset = 0;
            in->length = -1;
        }
    }
    if (w->direct) {
        if (strcmp(source->kind, "map") != 0 || t >= source->ntasks || *nshards > 0)
            st = dsp_err_set(err, DSP_ECORRUPT, "seal of stage %s: task %zu committed %s, but "
                             "the stage is not a map stage without data shards",
                             source->id, t, WIDE_DIRECT_NAME);
        else
            st = wide_read_direct_marker(store, direct_key, w, err);
        goto out;
    }
    if (!order_key) {
        st = dsp_err_set(err, DSP_ECORRUPT, "seal of stage %s: task %zu committed no %s",
                         source->id, t, WIDE_ORDER_NAME);
        goto out;
    }
    dsp_buf buf = DSP_BUF_INIT;
    st = dsp_store_get(store, order_key, 0, -1, &buf, NULL, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "reading %s", order_key);
        dsp_buf_free(&buf);
        goto out;
    }
    if (buf.len % DSP_DEDUP_ORDER_SIZE != 0) {
        st = dsp_err_set(err, DSP_ECORRUPT, "%s: %zu bytes is not a multiple of %d", order_key,
                         buf.len, DSP_DEDUP_ORDER_SIZE);
        dsp_buf_free(&buf);
        goto out;
    }
    w->norders = buf.len / DSP_DEDUP_ORDER_SIZE;
    w->orders = (unsigned char *)dsp_buf_detach(&buf, NULL);
out:
    cJSON_Delete(seal);
    return st;
}

/*
 * Decide whether a map task feeding a dedup shuffle or a sort's sampling
 * skips its data shards, so that its dedup_filter or sort_map task re-reads
 * the task's inputs. That needs a stage without steps, because the later
 * task then reads back exactly the documents the reader produced, and
 * inputs that are all JSONL. WARC inputs keep the shards, because a
 * re-read would convert every HTML page to text again.
 */
static dsp_status wide_map_direct(const dsp_plan_stage *stage, const dsp_plan_stage *next,
                                  const dsp_pipeline_config *cfg, const dsp_input_range *inputs,
                                  size_t ninputs, int *direct, dsp_err *err)
{
    *direct = 0;
    if (strcmp(stage->kind, "map") != 0 || cJSON_GetArraySize(stage->steps) != 0)
        return DSP_OK;
    if (strcmp(next->kind, "dedup_exact_reduce") != 0 && strcmp(next->kind, "minhash_bands") != 0 &&
        strcmp(next->kind, "sort_boundaries") != 0)
        return DSP_OK;
    if (cfg->format == DSP_FMT_WARC)
        return DSP_OK;
    for (size_t i = 0; i < ninputs && cfg->format == DSP_FMT_AUTO; i++) {
        dsp_input_format fmt;
        const dsp_obj_info *expect = cfg->input_versions ? &cfg->input_versions[i] : NULL;
        dsp_status st = dsp_pipeline_detect_format(&inputs[i], expect, &fmt, err);
        if (st != DSP_OK) {
            dsp_err_prefix(err, "detecting the format of %s", inputs[i].key);
            return st;
        }
        if (fmt != DSP_FMT_JSONL)
            return DSP_OK;
    }
    *direct = 1;
    return DSP_OK;
}

/* Open the dedup map for the shuffle that `next` reads. */
static dsp_status wide_open_map(dsp_store *store, const dsp_pipeline_config *cfg,
                                const dsp_plan_stage *next, const dsp_plan_task *task,
                                wide_pipe *w, char **key, dsp_err *err)
{
    const cJSON *step = cJSON_GetArrayItem(next->steps, 0);
    uint32_t parts = (uint32_t)next->ntasks;
    *key = dsp_xasprintf("%s/%s", cfg->out_prefix, WIDE_SHUFFLE_NAME);
    if (!strcmp(next->kind, "repartition_reduce") || !strcmp(next->kind, "sort_reduce") ||
        !strcmp(next->kind, "sort_boundaries")) {
        uint32_t shards;
        int sort;
        dsp_status st = dsp_op_repartition_config(step, &w->field, &sort, &shards, err);
        if (st != DSP_OK)
            return st;
        w->typed_hash = dsp_op_repartition_typed_hash(step);
        if (!strcmp(next->kind, "sort_boundaries")) {
            w->sampling = 1;
            return DSP_OK;
        }
        dsp_repart_opts opts;
        memset(&opts, 0, sizeof opts);
        opts.mode = DSP_REPART_HASH;
        if (!strcmp(next->kind, "sort_reduce")) {
            w->sort = 1;
            opts.mode = DSP_REPART_RANGE;
            opts.boundaries = w->bounds;
            opts.boundary_lens = w->bound_lens;
            opts.nboundaries = w->nbounds;
        }
        return dsp_repart_map_open(store, *key, parts, &opts, &w->repart, err);
    }
    if (!strcmp(next->kind, "dedup_exact_reduce")) {
        dsp_dedup_exact_opts opts;
        dsp_status st = dsp_op_dedup_exact_config(step, &w->field, &opts, err);
        if (st != DSP_OK)
            return st;
        return dsp_dedup_exact_map_open(store, *key, parts, (uint32_t)task->index, &opts,
                                        &w->exact, err);
    }
    dsp_dedup_minhash_opts opts;
    dsp_status st = dsp_op_dedup_minhash_plan_config(step, &opts, err);
    if (st != DSP_OK)
        return st;
    return dsp_dedup_minhash_map_open(store, *key, parts, (uint32_t)task->index, &opts,
                                      &w->minhash, err);
}

/* Drop files of the reduce stage a filter stage depends on. */
static dsp_status wide_open_drops(dsp_store *store, const char *job, const dsp_plan *plan,
                                  const dsp_plan_stage *stage, size_t t, uint32_t tasks,
                                  wide_pipe *w, dsp_err *err)
{
    const dsp_plan_stage *reduce = &plan->stages[stage->deps[0]];
    char **keys = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0;
    dsp_status st = wide_sealed_files(store, job, reduce, WIDE_DROPS_NAME, &keys, &sizes, &n,
                                      err);
    if (st == DSP_OK)
        st = dsp_dedup_drops_open(store, (const char *const *)keys, sizes, n, tasks,
                                  (uint32_t)t, NULL, &w->drops, err);
    wide_free_keys(keys, sizes, n);
    return st;
}

/* Parse a file of (u16 big-endian length, bytes) records: sample.bin and
 * boundaries.bin. Keys point into buf. */
static dsp_status wide_parse_keys(const char *name, const dsp_buf *buf, const char ***keys,
                                  size_t **lens, size_t *n, dsp_err *err)
{
    const unsigned char *p = (const unsigned char *)buf->data;
    size_t count = 0, pos = 0;

    /* Count and check first, so the arrays grow once per file. */
    while (pos < buf->len) {
        if (buf->len - pos < 2)
            return dsp_err_set(err, DSP_ECORRUPT, "%s: truncated length at byte %zu", name, pos);
        size_t len = (size_t)p[pos] << 8 | p[pos + 1];
        if (buf->len - pos - 2 < len)
            return dsp_err_set(err, DSP_ECORRUPT, "%s: key of %zu bytes at byte %zu passes the "
                               "end", name, len, pos);
        pos += 2 + len;
        count++;
    }
    *keys = dsp_xrealloc(*keys, (*n + count + 1) * sizeof **keys);
    *lens = dsp_xrealloc(*lens, (*n + count + 1) * sizeof **lens);
    pos = 0;
    while (pos < buf->len) {
        size_t len = (size_t)p[pos] << 8 | p[pos + 1];
        (*keys)[*n] = buf->data + pos + 2;
        (*lens)[*n] = len;
        (*n)++;
        pos += 2 + len;
    }
    return DSP_OK;
}

/* The shard boundaries that the sort_boundaries stage committed. */
static dsp_status wide_load_bounds(dsp_store *store, const char *job,
                                   const dsp_plan_stage *bounds_stage, wide_pipe *w,
                                   dsp_err *err)
{
    char **keys = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0;
    dsp_status st = wide_sealed_files(store, job, bounds_stage, WIDE_BOUNDS_NAME, &keys, &sizes,
                                      &n, err);
    if (st == DSP_OK && n != 1)
        st = dsp_err_set(err, DSP_ECORRUPT, "stage %s committed %zu %s files, expected 1",
                         bounds_stage->id, n, WIDE_BOUNDS_NAME);
    if (st == DSP_OK)
        st = dsp_store_get(store, keys[0], 0, -1, &w->bounds_buf, NULL, err);
    if (st == DSP_OK)
        st = wide_parse_keys(keys[0], &w->bounds_buf, &w->bounds, &w->bound_lens, &w->nbounds,
                             err);
    wide_free_keys(keys, sizes, n);
    return st;
}

typedef struct {
    const char *key;
    size_t len;
} wide_key;

static int wide_key_cmp(const void *a, const void *b)
{
    const wide_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Return DSP_ECANCELLED once the worker has set the task's cancel flag (a
 * cancelled job, a lost lease or a stopping worker). */
static dsp_status wide_check_cancel(const dsp_pipeline_config *cfg, const dsp_plan_stage *stage,
                                    dsp_err *err)
{
    if (cfg->cancel && *cfg->cancel)
        return dsp_err_set(err, DSP_ECANCELLED, "stage %s (%s): task cancelled", stage->id,
                           stage->kind);
    return DSP_OK;
}

/* sort_boundaries: sort every task's key sample and write the shards - 1
 * quantiles of it as boundaries.bin. Equal quantiles give empty shards.
 * It reads only the samples (about 1 key in 8). Like the shuffle reducers
 * it stops at a cancel: before each sample GET and before the write. */
static dsp_status wide_run_boundaries(dsp_store *store, const char *job, const dsp_plan *plan,
                                      const dsp_plan_stage *stage, const dsp_pipeline_config *cfg,
                                      dsp_pipeline_result *res, dsp_err *err)
{
    if ((size_t)stage->index + 2 >= plan->nstages)
        return dsp_err_set(err, DSP_ECORRUPT, "stage %s (sort_boundaries) is not followed by "
                           "sort_map and sort_reduce", stage->id);
    const dsp_plan_stage *dep = &plan->stages[stage->deps[0]];
    size_t shards = plan->stages[stage->index + 2].ntasks;
    char **files = NULL;
    uint64_t *sizes = NULL;
    size_t nfiles = 0, nkeys = 0;
    const char **keys = NULL;
    size_t *lens = NULL;
    dsp_buf *bufs = NULL;
    dsp_buf out = DSP_BUF_INIT;
    wide_key *sorted = NULL;
    char *out_key = dsp_xasprintf("%s/%s", cfg->out_prefix, WIDE_BOUNDS_NAME);
    dsp_status st = wide_sealed_files(store, job, dep, WIDE_SAMPLE_NAME, &files, &sizes, &nfiles,
                                      err);
    if (st != DSP_OK)
        goto out;
    bufs = dsp_xcalloc(nfiles ? nfiles : 1, sizeof *bufs);
    for (size_t i = 0; i < nfiles && st == DSP_OK; i++) {
        st = wide_check_cancel(cfg, stage, err);
        if (st == DSP_OK)
            st = dsp_store_get(store, files[i], 0, -1, &bufs[i], NULL, err);
        if (st == DSP_OK)
            st = wide_parse_keys(files[i], &bufs[i], &keys, &lens, &nkeys, err);
    }
    if (st != DSP_OK)
        goto out;
    sorted = dsp_xcalloc(nkeys ? nkeys : 1, sizeof *sorted);
    for (size_t i = 0; i < nkeys; i++) {
        sorted[i].key = keys[i];
        sorted[i].len = lens[i];
    }
    qsort(sorted, nkeys, sizeof *sorted, wide_key_cmp);
    for (size_t p = 1; p < shards; p++) {
        const char *k = "";
        size_t len = 0;
        if (nkeys > 0) {
            size_t at = p * nkeys / shards;
            k = sorted[at > 0 ? at - 1 : 0].key;
            len = sorted[at > 0 ? at - 1 : 0].len;
        }
        unsigned char n[2] = {(unsigned char)(len >> 8), (unsigned char)len};
        dsp_buf_append(&out, n, sizeof n);
        dsp_buf_append(&out, k, len);
    }
    st = wide_check_cancel(cfg, stage, err);
    if (st != DSP_OK)
        goto out;
    char sha[65];
    dsp_sha256_hex(out.data, out.len, sha);
    st = dsp_store_put(store, out_key, out.data, out.len, NULL, NULL, err);
    if (st == DSP_OK)
        st = wide_add_file(store, res, out_key, shards - 1, sha, err);
    if (st != DSP_OK)
        goto out;
    res->records_in = nkeys;
    res->op_counters = cJSON_CreateArray();
    DSP_INFO("sort_boundaries", "samples=%zu shards=%zu", nkeys, shards);
out:
    for (size_t i = 0; bufs && i < nfiles; i++)
        dsp_buf_free(&bufs[i]);
    free(bufs);
    free(sorted);
    free(keys);
    free(lens);
    dsp_buf_free(&out);
    wide_free_keys(files, sizes, nfiles);
    free(out_key);
    return st;
}

static dsp_status wide_run_pipeline(dsp_store *store, const char *job, const dsp_plan *plan,
                                    const dsp_plan_stage *stage, const dsp_plan_task *task,
                                    const dsp_pipeline_config *base,
                                    const dsp_input_range *inputs, dsp_pipeline_result *res,
                                    dsp_err *err)
{
    int filter = !strcmp(stage->kind, "dedup_filter");
    int sort_map = !strcmp(stage->kind, "sort_map");
    const dsp_plan_stage *next = wide_next_shuffle(plan, stage);
    dsp_pipeline_config cfg = *base;
    wide_pipe w;
    dsp_input_range *shards = NULL;
    size_t nshards = 0, ninputs = task->ninputs;
    dsp_input_range *direct_in = NULL;
    dsp_input_cache_ref *direct_cache = NULL;
    dsp_obj_info *direct_versions = NULL;
    int map_direct = 0;
    cJSON *steps = NULL;
    char *shuffle_key = NULL, *order_key = NULL, *marker_key = NULL;
    dsp_status st = DSP_OK;

    memset(&w, 0, sizeof w);
    w.store = store;
    w.task = task;
    dsp_arena_init(&w.arena, 64 << 10);

    if (filter || sort_map) {
        if (stage->ndeps != 2) {
            st = dsp_err_set(err, DSP_ECORRUPT, "stage %s (%s) must depend on two stages, not %zu",
                             stage->id, stage->kind, stage->ndeps);
            goto out;
        }
        const dsp_plan_stage *source = &plan->stages[stage->deps[1]];
        st = wide_load_source(store, job, source, (size_t)task->index, &w, &shards, &nshards,
                              err);
        if (st == DSP_OK && filter)
            st = wide_open_drops(store, job, plan, stage, (size_t)task->index,
                                 (uint32_t)source->ntasks, &w, err);
        if (st == DSP_OK && sort_map)
            st = wide_load_bounds(store, job, &plan->stages[stage->deps[0]], &w, err);
        if (st != DSP_OK)
            goto out;
        /* The shards are our own JSONL output; the wide step is not run here. */
        steps = cJSON_CreateArray();
        for (const cJSON *s = stage->steps->child ? stage->steps->child->next : NULL; s;
             s = s->next)
            cJSON_AddItemReferenceToArray(steps, (cJSON *)s);
        cfg.steps = steps;
        cfg.format = DSP_FMT_JSONL;
        if (filter)
            cfg.pre_filter = wide_pre_filter;
        inputs = shards;
        ninputs = nshards;
        cfg.input_versions = NULL; /* our own shards, listed by the seal */
        if (w.direct) {
            /* Re-read the map task's inputs with the job's reader settings.
             * The map task already wrote and counted their rejects, and
             * order keys come from the inputs as in the map stage. */
            const dsp_plan_task *src = &source->tasks[task->index];
            direct_in = dsp_xcalloc(src->ninputs ? src->ninputs : 1, sizeof *direct_in);
            direct_cache = dsp_xcalloc(src->ninputs ? src->ninputs : 1, sizeof *direct_cache);
            direct_versions = dsp_plan_task_versions(src);
            for (size_t i = 0; i < src->ninputs; i++) {
                direct_in[i].uri_root = src->inputs[i].uri_root;
                direct_in[i].key = src->inputs[i].key;
                direct_in[i].offset = src->inputs[i].offset;
                direct_in[i].length = src->inputs[i].length;
                wide_use_cache_entry(&w, job, i, &direct_cache[i]);
            }
            w.task = src;
            w.input_index = wide_input_indexes(source, src);
            cfg.format = base->format;
            cfg.skip_rejects = 1;
            cfg.trusted_input = w.direct_trusted;
            cfg.input_versions = direct_versions;
            cfg.input_cache = direct_cache;
            inputs = direct_in;
            ninputs = src->ninputs;
        }
    } else {
        w.input_index = wide_input_indexes(&plan->stages[0], task);
    }
    if (next) {
        st = wide_open_map(store, base, next, task, &w, &shuffle_key, err);
        if (st != DSP_OK)
            goto out;
        cfg.emit = wide_emit;
        /* The shuffle of sort_map and of a hash or field repartition carries
         * whole lines, so no later stage reads this stage's shards. Other
         * shards here are re-read by a dedup_filter or sort_map stage and
         * never published, so they get the fast intermediate level. */
        if (!filter && !sort_map)
            st = wide_map_direct(stage, next, base, inputs, ninputs, &map_direct, err);
        if (st != DSP_OK)
            goto out;
        /* repartition_reduce takes order keys from the shuffle, so only a
         * stage whose shards a later stage re-reads needs order.bin. */
        w.skip_order = map_direct || w.repart;
        if (w.repart || map_direct)
            cfg.emit_only = 1;
        else if (base->level == 0 || base->level > WIDE_INTERMEDIATE_LEVEL)
            cfg.level = WIDE_INTERMEDIATE_LEVEL; /* keeps zstd's faster negative levels */
        /* Repartition and sampling read whole lines, never d->text. */
        cfg.hooks_skip_text = w.repart || w.sampling;
        /* The dedup_filter or sort_map task re-reads these inputs. */
        if (map_direct)
            cfg.cache_job = job;
    } else if (filter) {
        cfg.hooks_skip_text = 1; /* wide_pre_filter reads only order keys */
    }
    cfg.hook_ctx = &w;

    st = dsp_pipeline_run(&cfg, inputs, ninputs, res, err);
    /* Each entry has one reader, this task. After a failure a retry may
     * still use it, and the job's end removes what is left. */
    if (st == DSP_OK)
        wide_free_cache_refs(direct_cache, ninputs, 1);
    if (st != DSP_OK)
        goto out;

    if (filter) {
        uint64_t in = res->records_in - res->records_rejected;
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "in", (double)in);
        cJSON_AddNumberToObject(c, "out", (double)(in - w.dropped));
        cJSON *removed = cJSON_AddObjectToObject(c, "removed");
        cJSON_AddNumberToObject(removed, "duplicate", (double)w.dropped);
        cJSON *arr = wide_counters_at(wide_first_step_index(plan, stage), c);
        cJSON *item;
        while ((item = cJSON_DetachItemFromArray(res->op_counters, 0)) != NULL)
            cJSON_AddItemToArray(arr, item);
        cJSON_Delete(res->op_counters);
        res->op_counters = arr;
        DSP_INFO("dedup_filtered", "dropped=%llu expected=%llu direct=%d trusted=%d",
                 (unsigned long long)w.dropped,
                 (unsigned long long)dsp_dedup_drops_count(w.drops), w.direct,
                 cfg.trusted_input);
        if (w.dropped != dsp_dedup_drops_count(w.drops)) {
            st = dsp_err_set(err, DSP_ECORRUPT,
                             "the drop list names %llu documents of this task but %llu were "
                             "found in its source shards",
                             (unsigned long long)dsp_dedup_drops_count(w.drops),
                             (unsigned long long)w.dropped);
            goto out;
        }
    }
    if (w.sampling) {
        char sha[65];
        char *sample_key = dsp_xasprintf("%s/%s", base->out_prefix, WIDE_SAMPLE_NAME);
        dsp_sha256_hex(w.sample.data, w.sample.len, sha);
        st = dsp_store_put(store, sample_key, w.sample.data, w.sample.len, NULL, NULL, err);
        if (st == DSP_OK)
            st = wide_add_file(store, res, sample_key, w.samples, sha, err);
        if (st != DSP_OK)
            dsp_err_prefix(err, "writing %s", sample_key);
        free(sample_key);
        if (st != DSP_OK)
            goto out;
    }
    if (next && !w.sampling) {
        dsp_dedup_stats ds = {0};
        if (w.exact) {
            st = dsp_dedup_exact_map_close(w.exact, &ds, err);
        } else if (w.minhash) {
            st = dsp_dedup_minhash_map_close(w.minhash, &ds, err);
        } else {
            dsp_shuffle_write_stats ws = {0};
            st = dsp_repart_map_close_stats(w.repart, &ws, err);
            ds.records = res->records_out;
            memcpy(ds.sha256, ws.sha256, sizeof ds.sha256);
        }
        w.exact = NULL;
        w.minhash = NULL;
        w.repart = NULL;
        if (st != DSP_OK)
            goto out;
        if (w.missing_field)
            DSP_WARN("dedup_field_missing", "field=%s documents=%llu null=%llu", w.field,
                     (unsigned long long)w.missing_field, (unsigned long long)w.null_field);
        st = wide_add_file(store, res, shuffle_key, ds.records, ds.sha256, err);
        if (st != DSP_OK)
            goto out;
    }
    if (map_direct) {
        marker_key = dsp_xasprintf("%s/%s", base->out_prefix, WIDE_DIRECT_NAME);
        st = wide_write_direct_marker(store, marker_key, ninputs, res, err);
    } else if (next && !sort_map && !w.skip_order) {
        char sha[65];
        order_key = dsp_xasprintf("%s/%s", base->out_prefix, WIDE_ORDER_NAME);
        dsp_sha256_hex(w.order_out.data, w.order_out.len, sha);
        st = dsp_store_put(store, order_key, w.order_out.data, w.order_out.len, NULL, NULL,
                           err);
        if (st == DSP_OK)
            st = wide_add_file(store, res, order_key, w.order_out.len / DSP_DEDUP_ORDER_SIZE,
                               sha, err);
        if (st != DSP_OK)
            dsp_err_prefix(err, "writing %s", order_key);
    }
out:
    if (w.exact)
        dsp_dedup_exact_map_abort(w.exact);
    if (w.minhash)
        dsp_dedup_minhash_map_abort(w.minhash);
    if (w.repart)
        dsp_repart_map_abort(w.repart);
    if (w.drops)
        dsp_dedup_drops_close(w.drops);
    for (size_t i = 0; i < nshards; i++)
        free((char *)shards[i].key);
    free(shards);
    wide_free_cache_refs(direct_cache, ninputs, 0);
    free(direct_cache);
    free(direct_in);
    free(direct_versions);
    cJSON_Delete(w.direct_cache);
    free(w.direct_prefix);
    cJSON_Delete(steps);
    free(w.orders);
    free(w.input_index);
    dsp_arena_free(&w.arena);
    dsp_buf_free(&w.order_out);
    dsp_buf_free(&w.line);
    dsp_buf_free(&w.key);
    dsp_buf_free(&w.sample);
    dsp_buf_free(&w.bounds_buf);
    free(w.bounds);
    free(w.bound_lens);
    free(shuffle_key);
    free(order_key);
    free(marker_key);
    return st;
}

/* ---- reduce stages ---- */

static dsp_status wide_run_reduce(dsp_store *store, const char *job, const dsp_plan *plan,
                                  const dsp_plan_stage *stage, const dsp_plan_task *task,
                                  const dsp_pipeline_config *cfg, dsp_pipeline_result *res,
                                  dsp_err *err)
{
    const dsp_plan_stage *dep = &plan->stages[stage->deps[0]];
    const cJSON *step = cJSON_GetArrayItem(stage->steps, 0);
    int components = !strcmp(stage->kind, "minhash_components");
    const char *in_name = components ? WIDE_EDGES_NAME : WIDE_SHUFFLE_NAME;
    const char *out_name = !strcmp(stage->kind, "minhash_bands") ? WIDE_EDGES_NAME
                                                                  : WIDE_DROPS_NAME;
    char **keys = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0;
    char *out_key = dsp_xasprintf("%s/%s", cfg->out_prefix, out_name);
    char *clusters_key = NULL;
    dsp_dedup_stats ds = {0};
    /* The shuffle reader polls the worker's cancel flag, so a cancelled job,
     * a lost lease or a stopping worker ends the reduce without a commit. */
    dsp_dedup_io_opts io;
    memset(&io, 0, sizeof io);
    io.reader.cancel = cfg->cancel;
    dsp_status st = wide_sealed_files(store, job, dep, in_name, &keys, &sizes, &n, err);
    if (st != DSP_OK)
        goto out;
    const char *const *ck = (const char *const *)keys;
    uint32_t p = (uint32_t)task->index;
    if (!strcmp(stage->kind, "dedup_exact_reduce")) {
        st = dsp_dedup_exact_reduce(store, ck, sizes, n, (uint32_t)stage->ntasks, p, out_key,
                                    (uint32_t)n, &io, &ds, err);
    } else {
        dsp_dedup_minhash_opts opts;
        st = dsp_op_dedup_minhash_plan_config(step, &opts, err);
        if (st != DSP_OK)
            goto out;
        opts.io.reader.cancel = cfg->cancel;
        if (!components) {
            st = dsp_dedup_minhash_bands(store, ck, sizes, n, (uint32_t)stage->ntasks, p, out_key,
                                         &opts, &ds, err);
        } else {
            /* The drop file has one partition per task of the stage that
             * wrote the shuffle, two stages back. */
            const dsp_plan_stage *source = &plan->stages[dep->deps[0]];
            if (dsp_op_opt_bool(step, &dsp_op_dedup_minhash_def, "clusters"))
                clusters_key = dsp_xasprintf("%s/%s%d.jsonl", cfg->out_prefix,
                                             WIDE_CLUSTERS_PREFIX,
                                             wide_first_step_index(plan, stage));
            st = dsp_dedup_minhash_components(store, ck, sizes, n, out_key,
                                              (uint32_t)source->ntasks, clusters_key, &opts.io, &ds,
                                              err);
        }
    }
    if (st != DSP_OK)
        goto out;
    if (clusters_key) {
        st = wide_add_hashed_file(store, res, clusters_key, ds.components, err);
        if (st != DSP_OK)
            goto out;
    }
    uint64_t records = !strcmp(out_name, WIDE_EDGES_NAME) ? ds.edges : ds.dropped;
    st = wide_add_file(store, res, out_key, records, ds.sha256, err);
    if (st != DSP_OK)
        goto out;

    res->records_in = ds.records;
    cJSON *c = cJSON_CreateObject();
    cJSON *extra = cJSON_AddObjectToObject(c, "extra");
    if (!strcmp(stage->kind, "dedup_exact_reduce")) {
        cJSON_AddNumberToObject(extra, "distinct", (double)ds.groups);
    } else if (!components) {
        cJSON_AddNumberToObject(extra, "buckets", (double)ds.groups);
        cJSON_AddNumberToObject(extra, "candidates", (double)ds.candidates);
        cJSON_AddNumberToObject(extra, "edges", (double)ds.edges);
    } else {
        cJSON_AddNumberToObject(extra, "clusters", (double)ds.components);
    }
    res->op_counters = wide_counters_at(wide_first_step_index(plan, stage), c);
    DSP_INFO("dedup_reduced", "kind=%s records=%llu groups=%llu dropped=%llu runs_spilled=%llu",
             stage->kind, (unsigned long long)ds.records, (unsigned long long)ds.groups,
             (unsigned long long)ds.dropped, (unsigned long long)ds.runs_spilled);
out:
    wide_free_keys(keys, sizes, n);
    free(out_key);
    free(clusters_key);
    return st;
}

/* ---- repartition ---- */

typedef struct {
    dsp_shard_writer *out;
    uint64_t records;
} wide_repart_out;

static dsp_status wide_repart_write(void *ctx, const char *line, size_t len, dsp_err *err)
{
    wide_repart_out *o = ctx;
    o->records++;
    return dsp_shard_writer_write(o->out, line, len, err);
}

/* Shard p of the output: the lines of partition p of every shuffle.bin, in
 * the job's input order, written as compressed JSONL shards. */
static dsp_status wide_run_repartition(dsp_store *store, const char *job, const dsp_plan *plan,
                                       const dsp_plan_stage *stage, const dsp_plan_task *task,
                                       const dsp_pipeline_config *cfg, dsp_pipeline_result *res,
                                       dsp_err *err)
{
    const dsp_plan_stage *dep = &plan->stages[stage->deps[0]];
    char **keys = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0;
    wide_repart_out o = {NULL, 0};
    dsp_codec codec;
    dsp_status st = dsp_codec_parse(cfg->out_format, &codec, err);
    if (st == DSP_OK)
        st = wide_sealed_files(store, job, dep, WIDE_SHUFFLE_NAME, &keys, &sizes, &n, err);
    if (st != DSP_OK)
        goto out;
    dsp_shard_writer_opts wopts = {store, cfg->out_prefix, NULL, codec, cfg->level,
                                   cfg->target_shard_bytes};
    st = dsp_shard_writer_open(&wopts, &o.out, err);
    if (st != DSP_OK)
        goto out;
    dsp_shuffle_reader_opts ropts;
    memset(&ropts, 0, sizeof ropts);
    ropts.cancel = cfg->cancel;
    st = dsp_repart_reduce(store, (const char *const *)keys, sizes, n, (uint32_t)stage->ntasks,
                           (uint32_t)task->index, &ropts, wide_repart_write, &o, err);
    if (st == DSP_OK) {
        st = dsp_shard_writer_close(o.out, &res->files, &res->nfiles, err);
    } else {
        dsp_output_file *files = NULL;
        size_t nfiles = 0;
        dsp_shard_writer_abort(o.out, &files, &nfiles);
        res->files = files;
        res->nfiles = nfiles;
    }
    if (st != DSP_OK)
        goto out;

    res->records_in = o.records;
    res->records_out = o.records;
    for (size_t i = 0; i < res->nfiles; i++)
        res->bytes_out += res->files[i].size;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "in", (double)o.records);
    cJSON_AddNumberToObject(c, "out", (double)o.records);
    cJSON_AddObjectToObject(c, "removed");
    res->op_counters = wide_counters_at(wide_first_step_index(plan, stage), c);
out:
    wide_free_keys(keys, sizes, n);
    return st;
}

dsp_status dsp_wide_run_task(dsp_store *store, const char *job, const dsp_plan *plan,
                             const dsp_plan_stage *stage, const dsp_plan_task *task,
                             const dsp_pipeline_config *cfg, const dsp_input_range *inputs,
                             dsp_pipeline_result *res, dsp_err *err)
{
    if (!dsp_wide_kind_supported(stage->kind))
        return dsp_err_set(err, DSP_EUNSUPPORTED, "stage %s has kind %s, which this runtime "
                           "cannot run", stage->id, stage->kind);
    if (wide_is_pipeline(stage->kind) || !strcmp(stage->kind, "sort_map"))
        return wide_run_pipeline(store, job, plan, stage, task, cfg, inputs, res, err);
    if (stage->ndeps < 1)
        return dsp_err_set(err, DSP_ECORRUPT, "stage %s (%s) depends on no stage", stage->id,
                           stage->kind);
    dsp_status st;
    if (!strcmp(stage->kind, "repartition_reduce") || !strcmp(stage->kind, "sort_reduce"))
        st = wide_run_repartition(store, job, plan, stage, task, cfg, res, err);
    else if (!strcmp(stage->kind, "sort_boundaries"))
        st = wide_run_boundaries(store, job, plan, stage, cfg, res, err);
    else
        st = wide_run_reduce(store, job, plan, stage, task, cfg, res, err);
    if (st != DSP_OK) {
        /* Remove what this attempt wrote; the worker discards the prefix too. */
        dsp_pipeline_result_free(res);
    }
    return st;
}
