/*
 * pipeline.c - one map task: read inputs, run the fused narrow operators,
 * write the surviving documents.
 *
 * Each input range is read in batches (1,024 documents or 4 MiB of lines,
 * whichever comes first) by the JSONL or WARC reader. Every batch goes
 * through the steps in order. A step marks removed documents in a keep
 * array, then the batch is compacted and the step's in/out counters move.
 * Survivors are serialized into the shard writer. Rejected records go to
 * <out_prefix>/rejects.jsonl.zst, opened on the first reject.
 *
 * Counters reconcile: records_in = records_out + the documents each step
 * removed + records_rejected, plus the documents a pre_filter hook dropped
 * (counted by the hook's owner). With skip_rejects, rejected records are
 * left out of records_in and no rejects file is written. On failure the
 * task aborts its open shards and deletes the ones it finished; a failed
 * delete is logged, not fatal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "../core/log.h"
#include "../core/util.h"
#include "decompress.h"
#include "input_cache.h"
#include "jsonl.h"
#include "pipeline.h"
#include "warc.h"
#include "writer.h"

#define BATCH_DOCS 1024
#define BATCH_BYTES (4u << 20)

typedef struct {
    char *root;
    dsp_store *store;
} cached_store;

typedef struct {
    const dsp_pipeline_config *cfg;
    dsp_op_instance *steps;
    size_t nsteps;
    unsigned char *keep;
    size_t keep_cap;

    cached_store *stores;
    size_t nstores;

    dsp_shard_writer *out;
    dsp_shard_writer *rejects;
    char *rejects_key;
    dsp_buf line;        /* serialized output document */
    dsp_buf reject_line; /* one line of the rejects file */
    uint64_t next_seq;
    dsp_pipeline_result *res;
} run_state;

/* ---- stores ---- */

static dsp_status store_for(run_state *s, const char *root, dsp_store **out, dsp_err *err)
{
    for (size_t i = 0; i < s->nstores; i++) {
        if (!strcmp(s->stores[i].root, root)) {
            *out = s->stores[i].store;
            return DSP_OK;
        }
    }
    dsp_store *store = NULL;
    dsp_status st = dsp_store_open(root, NULL, &store, err);
    if (st != DSP_OK)
        return st;
    s->stores = dsp_xrealloc(s->stores, (s->nstores + 1) * sizeof *s->stores);
    s->stores[s->nstores].root = dsp_xstrdup(root);
    s->stores[s->nstores].store = store;
    s->nstores++;
    *out = store;
    return DSP_OK;
}

/* ---- rejects ---- */

static dsp_status write_reject(void *ctx, const char *reason, const char *key, uint64_t offset,
                               const char *record, size_t record_len, const char *member,
                               dsp_err *err)
{
    run_state *s = ctx;
    dsp_status st;
    if (s->cfg->skip_rejects)
        return DSP_OK; /* an earlier pass over the input wrote it */
    if (!s->rejects) {
        dsp_shard_writer_opts opts = {s->cfg->out_store, NULL, s->rejects_key, DSP_CODEC_ZSTD,
                                      0, 0};
        st = dsp_shard_writer_open(&opts, &s->rejects, err);
        if (st != DSP_OK)
            return st;
    }
    dsp_buf *line = &s->reject_line;
    dsp_buf_reset(line);
    dsp_buf_append_str(line, "{\"reason\":");
    dsp_json_encode_string(line, reason, strlen(reason));
    dsp_buf_append_str(line, ",\"source\":");
    dsp_json_encode_string(line, key, strlen(key));
    if (member) {
        dsp_buf_append_str(line, ",\"member\":");
        dsp_json_encode_string(line, member, strlen(member));
    }
    dsp_buf_printf(line, ",\"offset\":%llu,\"record_prefix\":", (unsigned long long)offset);
    dsp_json_encode_string(line, record, record_len);
    dsp_buf_append_char(line, '}');
    return dsp_shard_writer_write(s->rejects, line->data, line->len, err);
}

/* ---- batches ---- */

static dsp_status run_steps(run_state *s, dsp_batch *b, dsp_err *err)
{
    for (size_t i = 0; i < s->nsteps && b->n > 0; i++) {
        dsp_op_instance *inst = &s->steps[i];
        if (b->n > s->keep_cap) {
            s->keep_cap = b->n;
            s->keep = dsp_xrealloc(s->keep, s->keep_cap);
        }
        memset(s->keep, 1, b->n);
        inst->counters.in += b->n;
        dsp_status st = inst->def->process(inst->state, b, s->keep, &inst->counters, err);
        if (st != DSP_OK) {
            dsp_err_prefix(err, "step %zu (%s)", i, inst->def->name);
            return st;
        }
        dsp_batch_compact(b, s->keep);
        inst->counters.out += b->n;
    }
    return DSP_OK;
}

/* The caller's pre_filter hook, which drops documents before the steps. */
static dsp_status run_pre_filter(run_state *s, dsp_batch *b, dsp_err *err)
{
    if (!s->cfg->pre_filter || b->n == 0)
        return DSP_OK;
    if (b->n > s->keep_cap) {
        s->keep_cap = b->n;
        s->keep = dsp_xrealloc(s->keep, s->keep_cap);
    }
    memset(s->keep, 1, b->n);
    dsp_status st = s->cfg->pre_filter(s->cfg->hook_ctx, b, s->keep, err);
    if (st == DSP_OK)
        dsp_batch_compact(b, s->keep);
    return st;
}

static dsp_status write_batch(run_state *s, dsp_batch *b, dsp_err *err)
{
    for (size_t i = 0; i < b->n; i++) {
        if (s->cfg->emit) {
            dsp_status st = s->cfg->emit(s->cfg->hook_ctx, b, &b->docs[i], err);
            if (st != DSP_OK)
                return st;
        }
        if (!s->out)
            continue; /* emit_only */
        const dsp_doc *d = &b->docs[i];
        dsp_status st;
        if (!d->text_changed && d->extra_len == 0) {
            /* An unchanged document is its original line: skip the copy. */
            st = dsp_shard_writer_write(s->out, d->line, d->line_len, err);
        } else {
            dsp_buf_reset(&s->line);
            dsp_doc_serialize(b, d, &s->line);
            st = dsp_shard_writer_write(s->out, s->line.data, s->line.len, err);
        }
        if (st != DSP_OK)
            return st;
    }
    s->res->records_out += b->n;
    return DSP_OK;
}

/* ---- inputs ---- */

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Decide between JSONL and WARC from the first decompressed bytes. */
static dsp_status detect_format(dsp_store *store, const dsp_input_range *in,
                                const dsp_obj_info *expect, dsp_input_format *fmt,
                                dsp_err *err)
{
    *fmt = DSP_FMT_JSONL;
    if (in->offset > 0)
        return DSP_OK; /* only plain JSONL is split into ranges */
    dsp_reader_opts ropts = {65536, 1, expect};
    dsp_reader *r = NULL;
    dsp_status st = dsp_store_reader_open(store, in->key, 0, 65536, &ropts, &r, err);
    if (st != DSP_OK)
        return st;
    dsp_dstream *ds = NULL;
    char *uri = dsp_store_object_name(store, in->key);
    st = dsp_dstream_open(r, uri, 0, 65536, &ds, err);
    free(uri);
    if (st == DSP_OK) {
        char head[8];
        size_t have = 0;
        while (have < 5 && st == DSP_OK) {
            size_t got = 0;
            st = dsp_dstream_read(ds, head + have, 5 - have, &got, err);
            if (got == 0)
                break;
            have += got;
        }
        /* A 64 KiB prefix of a compressed file ends mid-stream. */
        if (st == DSP_ECORRUPT)
            st = DSP_OK;
        if (have == 5 && memcmp(head, "WARC/", 5) == 0)
            *fmt = DSP_FMT_WARC;
    }
    dsp_dstream_close(ds);
    dsp_reader_close(r);
    if (st == DSP_OK && *fmt == DSP_FMT_JSONL &&
        (has_suffix(in->key, ".warc") || has_suffix(in->key, ".warc.gz")))
        DSP_WARN("input_format", "key=%s detail=\"named like WARC but does not start with "
                 "WARC/; reading it as JSONL\"", in->key);
    return st;
}

dsp_status dsp_pipeline_detect_format(const dsp_input_range *in, const dsp_obj_info *expect,
                                      dsp_input_format *fmt, dsp_err *err)
{
    dsp_store *store = NULL;
    dsp_status st = dsp_store_open(in->uri_root, NULL, &store, err);
    if (st != DSP_OK)
        return st;
    st = detect_format(store, in, expect, fmt, err);
    dsp_store_close(store);
    return st;
}

/* CPU seconds of the calling thread, which runs the whole task except the
 * store's read-ahead and upload threads. */
static double thread_cpu_seconds(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cancelled(const run_state *s)
{
    return s->cfg->cancel && *s->cfg->cancel;
}

/* Whether anything after the reader may read d->text: a step or a hook.
 * Without them the task passes lines through: the text is not decoded, and
 * documents point into the reader's buffer, which stays valid until the
 * next batch is read because write_batch finishes with them first. */
static int needs_text(const run_state *s)
{
    if (s->nsteps > 0)
        return 1;
    return (s->cfg->pre_filter || s->cfg->emit) && !s->cfg->hooks_skip_text;
}

/* ---- local input cache ---- */

/* Tee target of one input: a cache entry being written, or the hash of an
 * entry being read back. */
typedef struct {
    dsp_input_cache_writer *writer;
    XXH3_state_t *hash;
    uint64_t bytes;
} cache_tee;

static void cache_tee_bytes(void *ctx, const char *data, size_t len)
{
    cache_tee *t = ctx;
    if (t->writer)
        dsp_input_cache_write(t->writer, data, len);
    if (t->hash) {
        XXH3_64bits_update(t->hash, data, len);
        t->bytes += len;
    }
}

/* 1 with the cache's store when entry `ref` of input `in` can be read. */
static int cache_source(run_state *s, const dsp_input_range *in, const dsp_input_cache_ref *ref,
                        dsp_store **store, dsp_err *err)
{
    if (!ref || !ref->name || in->offset > 0 || in->length >= 0)
        return 0;
    char *path = dsp_input_cache_find(ref->name, ref->bytes);
    if (!path)
        return 0;
    int intact = dsp_input_cache_verify(path, ref->bytes, ref->hash);
    free(path);
    if (!intact) {
        DSP_WARN("input_cache_damaged", "key=%s entry=%s message=\"the entry does not match "
                 "the length and hash its writer recorded; removed it and reading the input\"",
                 in->key, ref->name);
        dsp_input_cache_remove(ref->name);
        return 0;
    }
    char *root = dsp_xasprintf("file://%s", dsp_input_cache_dir());
    dsp_status st = store_for(s, root, store, err);
    free(root);
    return st == DSP_OK;
}

/* Check a cache entry read in full against its committed length and hash. */
static dsp_status cache_verify(const dsp_input_range *in, const dsp_input_cache_ref *ref,
                               cache_tee *t, dsp_err *err)
{
    uint64_t hash = XXH3_64bits_digest(t->hash);
    if (t->bytes == ref->bytes && hash == ref->hash)
        return DSP_OK;
    dsp_input_cache_remove(ref->name);
    return dsp_err_set(err, DSP_EIO, "input cache entry %s/%s of %s is damaged (%llu bytes, "
                       "xxh3 %016llx; expected %llu bytes, xxh3 %016llx); removed it, so a "
                       "retry reads the input",
                       dsp_input_cache_dir(), ref->name, in->key, (unsigned long long)t->bytes,
                       (unsigned long long)hash, (unsigned long long)ref->bytes,
                       (unsigned long long)ref->hash);
}

static dsp_status run_input(run_state *s, const dsp_input_range *in, size_t index,
                            const dsp_obj_info *expect, dsp_batch *b, dsp_err *err)
{
    const dsp_input_cache_ref *ref = s->cfg->input_cache ? &s->cfg->input_cache[index] : NULL;
    const dsp_pipeline_config *cfg = s->cfg;
    dsp_store *store = NULL;
    dsp_status st = store_for(s, in->uri_root, &store, err);
    if (st != DSP_OK)
        return st;

    dsp_input_format fmt = cfg->format;
    if (fmt == DSP_FMT_AUTO) {
        st = detect_format(store, in, expect, &fmt, err);
        if (st != DSP_OK)
            return st;
    }
    if (fmt == DSP_FMT_WARC && (in->offset > 0 || in->length >= 0)) {
        char *name = dsp_store_object_name(store, in->key);
        st = dsp_err_set(err, DSP_EINVAL,
                         "%s is WARC: byte ranges apply only to plain JSONL (requested "
                         "offset %llu, length %lld)",
                         name, (unsigned long long)in->offset, (long long)in->length);
        free(name);
        return st;
    }

    dsp_jsonl_reader *jr = NULL;
    dsp_warc_reader *wr = NULL;
    cache_tee tee = {NULL, NULL, 0};
    dsp_store *cache_store = NULL;
    int whole = in->offset == 0 && in->length < 0;
    int from_cache = fmt == DSP_FMT_JSONL && cache_source(s, in, ref, &cache_store, err);
    if (from_cache)
        tee.hash = XXH3_createState();
    if (tee.hash)
        XXH3_64bits_reset(tee.hash);
    if (fmt == DSP_FMT_WARC) {
        dsp_warc_opts opts = {store,        in->key, cfg->max_record_bytes, 0,
                              write_reject, s,       cfg->id_field, expect};
        st = dsp_warc_open(&opts, &wr, err);
    } else {
        dsp_jsonl_opts opts = {
            .store = store,
            .key = in->key,
            .offset = in->offset,
            .length = in->length,
            .max_record_bytes = cfg->max_record_bytes,
            .reject = write_reject,
            .reject_ctx = s,
            .skip_text_decode = !needs_text(s),
            /* Each batch is run, written and reset before the next read,
             * so lines can stay in the read buffer. Decoded texts go to
             * the batch arena either way. */
            .borrow_lines = 1,
            /* The cache entry is the planned version, so nothing to check. */
            .expect = from_cache ? NULL : expect,
            .trusted = cfg->trusted_input && !needs_text(s),
            .unique_fields = cfg->unique_fields,
            .data_store = from_cache ? cache_store : NULL,
            .data_key = from_cache ? ref->name : NULL,
            .tee = from_cache || (cfg->cache_job && whole) ? cache_tee_bytes : NULL,
            .tee_ctx = &tee,
        };
        st = dsp_jsonl_open(&opts, &jr, err);
        if (st == DSP_OK && !from_cache && cfg->cache_job && whole && dsp_jsonl_compressed(jr)) {
            char *name = dsp_input_cache_name(cfg->cache_job, cfg->out_prefix, index);
            tee.writer = dsp_input_cache_create(name);
            free(name);
        }
    }
    if (st != DSP_OK) {
        if (tee.hash)
            XXH3_freeState(tee.hash);
        return st;
    }

    int eof = 0;
    while (!eof) {
        if (cancelled(s)) {
            char *name = dsp_store_object_name(store, in->key);
            st = dsp_err_set(err, DSP_ECANCELLED, "task cancelled while reading %s", name);
            free(name);
            break;
        }
        dsp_batch_reset(b);
        if (wr)
            st = dsp_warc_next(wr, b, BATCH_DOCS, BATCH_BYTES, &eof, err);
        else
            st = dsp_jsonl_next(jr, b, BATCH_DOCS, BATCH_BYTES, &eof, err);
        if (st != DSP_OK)
            break;
        for (size_t i = 0; i < b->n; i++)
            b->docs[i].seq = s->next_seq++;
        st = run_pre_filter(s, b, err);
        if (st == DSP_OK)
            st = run_steps(s, b, err);
        if (st == DSP_OK)
            st = write_batch(s, b, err);
        if (st != DSP_OK)
            break;
    }

    dsp_pipeline_result *res = s->res;
    if (wr) {
        const dsp_warc_stats *ws = dsp_warc_get_stats(wr);
        res->records_in += ws->records;
        if (cfg->skip_rejects)
            res->records_in -= ws->rejected;
        else
            res->records_rejected += ws->rejected;
        res->warc_skipped += ws->skipped;
        res->records_repaired += ws->utf8_repaired;
        res->bytes_in += ws->bytes_in;
        res->bytes_in_raw += ws->bytes_in_raw;
        DSP_DEBUG("input_done", "key=%s format=warc records=%llu rejected=%llu skipped=%llu",
                  in->key, (unsigned long long)ws->records, (unsigned long long)ws->rejected,
                  (unsigned long long)ws->skipped);
        dsp_warc_close(wr);
    } else {
        const dsp_jsonl_stats *js = dsp_jsonl_get_stats(jr);
        res->records_in += js->records;
        if (cfg->skip_rejects)
            res->records_in -= js->rejected;
        else
            res->records_rejected += js->rejected;
        res->records_repaired += js->utf8_repaired;
        /* bytes_in counts the stored object also when its cache entry was
         * read, so that counters do not depend on the cache. */
        res->bytes_in += from_cache && expect ? expect->size : js->bytes_in;
        res->bytes_in_raw += js->bytes_in_raw;
        if (from_cache && st == DSP_OK)
            st = cache_verify(in, ref, &tee, err);
        if (from_cache)
            DSP_DEBUG("input_cache_read", "key=%s entry=%s bytes=%llu", in->key, ref->name,
                      (unsigned long long)tee.bytes);
        if (tee.writer && st == DSP_OK && res->cached) {
            dsp_input_cached *c = &res->cached[index];
            c->ok = dsp_input_cache_commit(tee.writer, &c->bytes, &c->hash);
        } else {
            dsp_input_cache_discard(tee.writer);
        }
        if (tee.hash)
            XXH3_freeState(tee.hash);
        if (js->utf8_repaired > 0)
            DSP_INFO("utf8_repaired", "key=%s records=%llu", in->key,
                     (unsigned long long)js->utf8_repaired);
        DSP_DEBUG("input_done", "key=%s format=jsonl records=%llu rejected=%llu blank=%llu",
                  in->key, (unsigned long long)js->records, (unsigned long long)js->rejected,
                  (unsigned long long)js->blank_lines);
        dsp_jsonl_close(jr);
    }
    return st;
}

/* ---- entry point ---- */

static dsp_status create_steps(run_state *s, dsp_err *err)
{
    const cJSON *steps = s->cfg->steps;
    if (!steps)
        return DSP_OK;
    if (!cJSON_IsArray(steps))
        return dsp_err_set(err, DSP_EINVAL, "invalid pipeline: steps must be a JSON array");
    int n = cJSON_GetArraySize(steps);
    s->steps = dsp_xcalloc(n > 0 ? (size_t)n : 1, sizeof *s->steps);
    dsp_op_ctx ctx = {s->cfg->allow_exec, s->cfg->text_field ? s->cfg->text_field : "text",
                      s->cfg->cancel, s->cfg->max_record_bytes};
    for (int i = 0; i < n; i++) {
        const cJSON *step = cJSON_GetArrayItem(steps, i);
        dsp_status st = dsp_op_instantiate(step, i, &ctx, &s->steps[i], err);
        if (st != DSP_OK)
            return st;
        s->nsteps++;
        if (s->steps[i].def->wide)
            return dsp_err_set(err, DSP_EINVAL,
                               "step %d (%s) is a wide operator and cannot run in a map "
                               "pipeline",
                               i, s->steps[i].def->name);
    }
    return DSP_OK;
}

static void delete_outputs(const dsp_pipeline_config *cfg, dsp_output_file *files, size_t n)
{
    if (n == 0)
        return;
    const char **keys = dsp_xcalloc(n, sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = files[i].key;
    dsp_err err;
    if (dsp_store_delete(cfg->out_store, keys, n, &err) != DSP_OK)
        DSP_WARN("output_cleanup_failed", "prefix=%s error=\"%s\"", cfg->out_prefix, err.msg);
    free(keys);
}

static void free_files(dsp_output_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i].key);
    free(files);
}

dsp_status dsp_pipeline_run(const dsp_pipeline_config *cfg, const dsp_input_range *inputs,
                            size_t ninputs, dsp_pipeline_result *res, dsp_err *err)
{
    memset(res, 0, sizeof *res);
    double cpu_start = thread_cpu_seconds();
    run_state s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    s.res = res;
    dsp_batch b;
    dsp_batch_init(&b, cfg->text_field ? cfg->text_field : "text");
    dsp_status st;

    if (!cfg->out_store || !cfg->out_prefix) {
        st = dsp_err_set(err, DSP_EINVAL, "invalid pipeline configuration: missing output "
                                          "store or out_prefix");
        goto done;
    }
    dsp_codec codec;
    st = dsp_codec_parse(cfg->out_format, &codec, err);
    if (st != DSP_OK)
        goto done;
    st = create_steps(&s, err);
    if (st != DSP_OK)
        goto done;

    s.rejects_key = dsp_xasprintf("%s/rejects.jsonl.zst", cfg->out_prefix);
    if (cfg->emit_only && !cfg->emit) {
        st = dsp_err_set(err, DSP_EINVAL, "invalid pipeline configuration: emit_only without "
                                          "an emit hook would drop every document");
        goto done;
    }
    if (!cfg->emit_only) {
        dsp_shard_writer_opts wopts = {cfg->out_store, cfg->out_prefix, NULL, codec, cfg->level,
                                       cfg->target_shard_bytes};
        st = dsp_shard_writer_open(&wopts, &s.out, err);
        if (st != DSP_OK)
            goto done;
    }

    if (cfg->cache_job)
        res->cached = dsp_xcalloc(ninputs ? ninputs : 1, sizeof *res->cached);
    for (size_t i = 0; i < ninputs && st == DSP_OK; i++)
        st = run_input(&s, &inputs[i], i, cfg->input_versions ? &cfg->input_versions[i] : NULL,
                       &b, err);

    for (size_t i = 0; i < s.nsteps && st == DSP_OK; i++) {
        if (s.steps[i].def->finish)
            st = s.steps[i].def->finish(s.steps[i].state, err);
    }

done:;
    /* Close (on success) or abort (on failure) both writers. */
    dsp_output_file *files = NULL, *rej_files = NULL;
    size_t nfiles = 0, nrej = 0;
    if (s.out) {
        if (st == DSP_OK)
            st = dsp_shard_writer_close(s.out, &files, &nfiles, err);
        else
            dsp_shard_writer_abort(s.out, &files, &nfiles);
    }
    if (s.rejects) {
        dsp_err rej_err;
        dsp_status rst = DSP_OK;
        if (st == DSP_OK)
            rst = dsp_shard_writer_close(s.rejects, &rej_files, &nrej, &rej_err);
        else
            dsp_shard_writer_abort(s.rejects, &rej_files, &nrej);
        if (rst != DSP_OK) {
            st = rst;
            *err = rej_err;
        }
    }

    if (st == DSP_OK) {
        res->files = files;
        res->nfiles = nfiles;
        for (size_t i = 0; i < nfiles; i++)
            res->bytes_out += files[i].size;
        if (nrej == 1) {
            res->rejects = rej_files[0];
            res->bytes_out += rej_files[0].size;
            free(rej_files);
        }
        res->op_counters = cJSON_CreateArray();
        for (size_t i = 0; i < s.nsteps; i++)
            cJSON_AddItemToArray(res->op_counters,
                                 dsp_op_counters_json(s.steps[i].def, &s.steps[i].counters));
    } else {
        delete_outputs(cfg, files, nfiles);
        delete_outputs(cfg, rej_files, nrej);
        free_files(files, nfiles);
        free_files(rej_files, nrej);
        res->files = NULL;
        res->nfiles = 0;
    }
    res->cpu_seconds = thread_cpu_seconds() - cpu_start;

    for (size_t i = 0; i < s.nsteps; i++)
        dsp_op_instance_free(&s.steps[i]);
    free(s.steps);
    free(s.keep);
    for (size_t i = 0; i < s.nstores; i++) {
        dsp_store_close(s.stores[i].store);
        free(s.stores[i].root);
    }
    free(s.stores);
    free(s.rejects_key);
    dsp_buf_free(&s.line);
    dsp_buf_free(&s.reject_line);
    dsp_batch_free(&b);
    return st;
}

void dsp_pipeline_result_free(dsp_pipeline_result *res)
{
    if (!res)
        return;
    free_files(res->files, res->nfiles);
    free(res->rejects.key);
    cJSON_Delete(res->op_counters);
    free(res->cached);
    memset(res, 0, sizeof *res);
}
