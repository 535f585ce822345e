/*
 * pipeline.h - run a fused stage of narrow operators over a task's inputs.
 *
 * This is the entry point the runtime calls for a map task: read each input
 * range (format detected from the first bytes unless forced), run the
 * batches through the operators in order, and write the surviving documents
 * as compressed JSONL shards under out_prefix, plus a rejects file for bad
 * records. Output names are deterministic: <out_prefix>/part-NNNNN.<ext>
 * with NNNNN counting from 0 within the task.
 *
 * Counters reconcile: records read = records written + removed by each
 * operator + rejected.
 */
#ifndef DSP_PIPELINE_H
#define DSP_PIPELINE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../storage/store.h"
#include "op.h"

typedef enum {
    DSP_FMT_AUTO = 0,
    DSP_FMT_JSONL,      /* plain, gzip or zstd: detected from the first bytes */
    DSP_FMT_WARC        /* WARC/WET, plain or gzip */
} dsp_input_format;

typedef struct {
    const char *uri_root; /* store root of the input, e.g. "s3://bucket" or "file:///data" */
    const char *key;      /* key within that store */
    uint64_t offset;      /* byte range of a plain JSONL file; 0 and -1 for whole */
    int64_t length;       /* -1 = to the end */
} dsp_input_range;

/* An entry of the local input cache (tasks/input_cache.h) with a whole
 * object's decompressed bytes, and their length and xxh3 hash; name NULL
 * for none. */
typedef struct {
    char *name;
    uint64_t bytes, hash;
} dsp_input_cache_ref;

/* Cache entry that a pipeline wrote for one input; ok 0 = none. */
typedef struct {
    int ok;
    uint64_t bytes, hash;
} dsp_input_cached;

typedef struct {
    char *key;            /* key within the output store */
    uint64_t size;
    uint64_t records;
    char sha256[65];
} dsp_output_file;

typedef struct {
    const cJSON *steps;      /* array of {"op": NAME, ...options}; narrow ops only */
    dsp_input_format format;
    const char *text_field;  /* default "text" */
    const char *id_field;    /* default "id" */
    int64_t max_record_bytes;/* default 64 MiB */

    dsp_store *out_store;
    const char *out_prefix;  /* e.g. jobs/J/attempts/s0/t00003/a-xyz */
    const char *out_format;  /* "jsonl.zst" (default) or "jsonl.gz" */
    int level;               /* compression level; 0 = default (zstd 3, gzip 6) */
    int64_t target_shard_bytes; /* compressed bytes per shard; default 128 MiB */

    int allow_exec;
    volatile int *cancel;    /* when set non-zero, stop with DSP_ECANCELLED */

    /* Optional hooks for stages around a shuffle (runtime/stage_wide.c);
     * NULL when unused. pre_filter sees each batch before the steps and
     * sets keep[i] = 0 for documents to drop; those documents are counted
     * by the hook's owner, not in any step's counters. emit sees every
     * surviving document after the steps, in output order. */
    dsp_status (*pre_filter)(void *ctx, dsp_batch *b, unsigned char *keep, dsp_err *err);
    dsp_status (*emit)(void *ctx, const dsp_batch *b, const dsp_doc *d, dsp_err *err);
    void *hook_ctx;
    /* Non-zero: the hooks never read d->text, so the reader decodes no text
     * unless a step needs it. */
    int hooks_skip_text;
    /* Non-zero: surviving documents go to emit only, and no data shards are
     * written (the rejects file still is). Needs emit. */
    int emit_only;
    /* Non-zero: the records the reader rejects are skipped. No rejects file
     * is written, and neither records_in nor records_rejected counts them.
     * For a second pass over inputs whose rejects an earlier stage wrote. */
    int skip_rejects;
    /* Optional, one per input: size and ETag of the whole object when the
     * job was planned. A task whose input is now another version fails with
     * DSP_EINVAL, because the input changed after submit. */
    const dsp_obj_info *input_versions;
    /* Optional, one per input: a cache entry to read in place of the
     * object when the entry exists with the recorded length and hash. An
     * entry that does not match is removed and the object read instead.
     * An entry that changes while it is read fails the task with DSP_EIO
     * after it is removed, so that a retry reads the object. */
    const dsp_input_cache_ref *input_cache;
    /* Non-zero: JSONL lines are passed on without validation when no step
     * reads the text. For a second pass over inputs whose first pass
     * rejected and repaired no record. */
    int trusted_input;
    /* Optional, NULL-terminated: members besides the text field that the
     * job's steps read (dsp_op_read_fields). JSONL records with one of
     * them twice are rejected as duplicate_key. Every pass over the same
     * input must get the same list, so that trusted_input and
     * skip_rejects agree with the first pass. */
    const char *const *unique_fields;
    /* Optional: the job id. Each whole compressed JSONL input i is then
     * kept in the local input cache as entry
     * dsp_input_cache_name(cache_job, out_prefix, i), and res->cached
     * records which entries were written. */
    const char *cache_job;
} dsp_pipeline_config;

typedef struct {
    uint64_t records_in, records_out, records_rejected;
    /* Records kept after the reader replaced their invalid UTF-8 with U+FFFD
     * (JSONL string values and WET conversion records). */
    uint64_t records_repaired;
    uint64_t bytes_in;          /* bytes read from the store (compressed) */
    uint64_t bytes_in_raw;      /* decompressed input bytes */
    uint64_t bytes_out;         /* compressed bytes written */
    uint64_t warc_skipped;      /* WARC records skipped (non-HTML, non-200, request, ...) */
    dsp_output_file *files;     /* data shards in order */
    size_t nfiles;
    dsp_output_file rejects;    /* key NULL when there were no rejects */
    cJSON *op_counters;         /* array, one object per step, in step order */
    double cpu_seconds;
    dsp_input_cached *cached;   /* one per input when cache_job is set, else NULL */
} dsp_pipeline_result;

dsp_status dsp_pipeline_run(const dsp_pipeline_config *cfg, const dsp_input_range *inputs,
                            size_t ninputs, dsp_pipeline_result *res, dsp_err *err);
void dsp_pipeline_result_free(dsp_pipeline_result *res);

/* The format dsp_pipeline_run would read `in` as under DSP_FMT_AUTO: WARC
 * when its first decompressed bytes are "WARC/", else JSONL. expect
 * (optional) is the planned version, as in input_versions. */
dsp_status dsp_pipeline_detect_format(const dsp_input_range *in, const dsp_obj_info *expect,
                                      dsp_input_format *fmt, dsp_err *err);

#endif
