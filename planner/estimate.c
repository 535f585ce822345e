/*
 * estimate.c - estimate the S3 requests and request cost of a plan.
 *
 * The model counts one attempt per task (no retries, no speculation) and
 * leaves out idle polling by workers, which depends on how many run:
 *   - input reads: an input range of L bytes takes ceil(L / 8 MiB) ranged
 *     GETs (at least 1), plus 1 to finish the last record when the range
 *     ends before the end of its object;
 *   - shuffle: each task of a stage followed by a wide stage writes one
 *     object (one PUT, or multipart when larger than 8 MiB), and each of
 *     the R partitions reads a slice of each of the M map outputs:
 *     M x R ranged GETs before coalescing. A dedup_filter or sort_map task re-reads
 *     the shards its source task wrote (counted like an input of the
 *     task's bytes) and the source's order file (1 GET); the source task
 *     wrote those shards and the order file (counted like one object of
 *     the task's bytes, plus 1 PUT);
 *   - output: output bytes are taken to be the final stage's input bytes
 *     (an upper bound, because filters only drop records and compression
 *     is not modeled). Each final task writes ceil(bytes / target_shard_bytes)
 *     shards (at least 1): one PUT each up to 8 MiB, else CreateMultipartUpload,
 *     one PUT per 8 MiB part and CompleteMultipartUpload. Publishing copies
 *     each shard to the output prefix (one COPY each);
 *   - coordination, per task: GET spec.json and plan.json (2), GET the
 *     seal of the previous stage (1, stages after the first), create the
 *     lease (1 PUT), renew it every lease_seconds / 3 while the task runs,
 *     create the commit manifest (1 PUT), list the stage's commits to see
 *     whether it was the last (1 LIST per 1,000 tasks of the stage), the
 *     sealer's GET of its manifest (1), and release the lease (1 DELETE).
 *     Per stage: the seal PUT. Per job: spec.json, plan.json, state.json,
 *     _MANIFEST.json and _SUCCESS (5 PUTs).
 * A task runs for 1 s plus its bytes at 50 MiB/s; this is a rough guess
 * for a filter pipeline on one core, not a measurement.
 */
#include <math.h>
#include <string.h>

#include "plan.h"

#define PER_TASK_COORD_GETS 3 /* spec, plan, the sealer's read of the manifest */
#define PER_TASK_COORD_PUTS 2 /* lease create, commit manifest */
#define PER_JOB_COORD_PUTS 5  /* spec, plan, state, _MANIFEST.json, _SUCCESS */

static uint64_t est_ceil_div(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

/* PUT-class requests to write one object of `bytes`. */
static uint64_t est_object_puts(uint64_t bytes)
{
    if (bytes <= DSP_ESTIMATE_CHUNK_BYTES)
        return 1;
    return 2 + est_ceil_div(bytes, DSP_ESTIMATE_CHUNK_BYTES);
}

static double est_task_seconds(uint64_t bytes)
{
    return 1.0 + (double)bytes / (double)DSP_ESTIMATE_TASK_BYTES_PER_S;
}

static void est_input_reads(const dsp_plan_stage *stage, dsp_plan_estimate *e)
{
    const char *last_root = NULL, *last_key = NULL;
    for (size_t t = 0; t < stage->ntasks; t++) {
        const dsp_plan_task *task = &stage->tasks[t];
        for (size_t i = 0; i < task->ninputs; i++) {
            const dsp_plan_input *in = &task->inputs[i];
            uint64_t len = in->length < 0 ? in->size - in->offset : (uint64_t)in->length;
            uint64_t gets = est_ceil_div(len, DSP_ESTIMATE_CHUNK_BYTES);
            e->input_gets += gets ? gets : 1;
            if (in->length >= 0 && in->offset + (uint64_t)in->length < in->size)
                e->input_gets++;
            if (!last_key || strcmp(last_key, in->key) || strcmp(last_root, in->uri_root))
                e->input_objects++;
            last_root = in->uri_root;
            last_key = in->key;
        }
    }
}

static void est_coordination(const dsp_plan_stage *stage, int lease_seconds,
                             dsp_plan_estimate *e)
{
    double renew_every = (double)lease_seconds / DSP_LEASE_RENEW_DIVISOR;
    uint64_t list_pages = est_ceil_div(stage->ntasks ? stage->ntasks : 1, 1000);
    for (size_t t = 0; t < stage->ntasks; t++) {
        double seconds = est_task_seconds(stage->tasks[t].bytes);
        e->task_seconds += seconds;
        if (seconds > e->max_task_seconds)
            e->max_task_seconds = seconds;
        e->coord_gets += PER_TASK_COORD_GETS + (stage->index > 0 ? 1 : 0);
        e->coord_puts += PER_TASK_COORD_PUTS + (uint64_t)floor(seconds / renew_every);
        e->coord_lists += list_pages;
        e->coord_deletes++;
    }
    e->coord_puts++; /* the seal */
}

void dsp_plan_estimate_requests(const dsp_plan *plan, const dsp_spec *spec,
                                dsp_plan_estimate *e)
{
    memset(e, 0, sizeof *e);
    e->coord_puts = PER_JOB_COORD_PUTS;
    uint64_t shard_bytes = spec->target_shard_bytes > 0 ? (uint64_t)spec->target_shard_bytes
                                                        : 128ULL << 20;
    for (size_t s = 0; s < plan->nstages; s++) {
        const dsp_plan_stage *stage = &plan->stages[s];
        if (s == 0)
            est_input_reads(stage, e);
        est_coordination(stage, spec->lease_seconds, e);
        if (!strcmp(stage->kind, "dedup_filter") || !strcmp(stage->kind, "sort_map")) {
            for (size_t t = 0; t < stage->ntasks; t++) {
                uint64_t bytes = stage->tasks[t].bytes;
                e->shuffle_puts += est_object_puts(bytes) + 1;
                e->shuffle_gets += est_ceil_div(bytes ? bytes : 1, DSP_ESTIMATE_CHUNK_BYTES) + 1;
            }
        }
        if (s + 1 < plan->nstages) {
            for (size_t t = 0; t < stage->ntasks; t++)
                e->shuffle_puts += est_object_puts(stage->tasks[t].bytes);
            e->shuffle_gets += (uint64_t)stage->ntasks * plan->stages[s + 1].ntasks;
            continue;
        }
        for (size_t t = 0; t < stage->ntasks; t++) {
            uint64_t bytes = stage->tasks[t].bytes;
            uint64_t shards = est_ceil_div(bytes ? bytes : 1, shard_bytes);
            uint64_t per_shard = shards ? bytes / shards : 0;
            e->output_shards += shards;
            e->output_puts += shards * (est_object_puts(per_shard) + 1); /* +1: publish COPY */
        }
    }
    e->gets = e->input_gets + e->shuffle_gets + e->coord_gets;
    e->puts = e->shuffle_puts + e->output_puts + e->coord_puts + e->coord_lists;
    e->get_usd = (double)e->gets * DSP_ESTIMATE_GET_USD_PER_1000 / 1000.0;
    e->put_usd = (double)e->puts * DSP_ESTIMATE_PUT_USD_PER_1000 / 1000.0;
    e->total_usd = e->get_usd + e->put_usd;
}
