/*
 * commit.c - commit manifests (first writer wins) and stage seals.
 *
 * Readers of task output go through a winning manifest or a seal, never a
 * listing of attempts/, so a zombie attempt's files are invisible even
 * before they are deleted.
 */
#include "commit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "protocol.h"

static cJSON *file_json(const dsp_output_file *f)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "key", f->key);
    cJSON_AddNumberToObject(o, "size", (double)f->size);
    cJSON_AddNumberToObject(o, "records", (double)f->records);
    cJSON_AddStringToObject(o, "sha256", f->sha256);
    return o;
}

cJSON *dsp_commit_build(const dsp_commit_meta *meta, const dsp_pipeline_result *res)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *files = cJSON_CreateArray();

    cJSON_AddNumberToObject(o, "schema_version", DSP_COMMIT_SCHEMA_VERSION);
    cJSON_AddStringToObject(o, "job", meta->job);
    cJSON_AddStringToObject(o, "stage", meta->stage);
    cJSON_AddStringToObject(o, "task", meta->task);
    cJSON_AddStringToObject(o, "attempt", meta->attempt);
    cJSON_AddStringToObject(o, "worker", meta->worker);
    cJSON_AddNumberToObject(o, "started_ms", (double)meta->started_ms);
    cJSON_AddNumberToObject(o, "finished_ms", (double)meta->finished_ms);
    cJSON_AddNumberToObject(o, "duration_ms", (double)(meta->finished_ms - meta->started_ms));
    for (size_t i = 0; i < res->nfiles; i++)
        cJSON_AddItemToArray(files, file_json(&res->files[i]));
    cJSON_AddItemToObject(o, "files", files);
    if (res->rejects.key)
        cJSON_AddItemToObject(o, "rejects", file_json(&res->rejects));
    else
        cJSON_AddNullToObject(o, "rejects");
    cJSON_AddNumberToObject(o, "records_in", (double)res->records_in);
    cJSON_AddNumberToObject(o, "records_out", (double)res->records_out);
    cJSON_AddNumberToObject(o, "records_rejected", (double)res->records_rejected);
    cJSON_AddNumberToObject(o, "bytes_in", (double)res->bytes_in);
    cJSON_AddNumberToObject(o, "bytes_in_raw", (double)res->bytes_in_raw);
    cJSON_AddNumberToObject(o, "bytes_out", (double)res->bytes_out);
    cJSON_AddNumberToObject(o, "warc_skipped", (double)res->warc_skipped);
    cJSON_AddNumberToObject(o, "records_utf8_repaired", (double)res->records_repaired);
    cJSON_AddItemToObject(o, "op_counters", res->op_counters
                                                ? cJSON_Duplicate(res->op_counters, 1)
                                                : cJSON_CreateArray());
    cJSON_AddNumberToObject(o, "cpu_seconds", res->cpu_seconds);
    cJSON_AddNumberToObject(o, "requests", (double)meta->requests);
    cJSON_AddNumberToObject(o, "coord_requests", (double)meta->coord_requests);
    cJSON_AddNumberToObject(o, "retries", (double)meta->retries);
    return o;
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

dsp_status dsp_commit_write(dsp_store *s, const cJSON *manifest, int *won, cJSON **winner,
                            dsp_err *err)
{
    const char *job = str_field(manifest, "job");
    const char *stage = str_field(manifest, "stage");
    const char *task = str_field(manifest, "task");
    char *key = dsp_proto_commit_key(job, stage, task);
    char *body = cJSON_PrintUnformatted(manifest);
    cJSON *seen = NULL;
    dsp_status st;

    *won = 0;
    if (winner)
        *winner = NULL;
    st = dsp_proto_create(s, key, body, strlen(body), NULL, err);
    if (st == DSP_OK) {
        *won = 1;
        if (winner)
            *winner = cJSON_Duplicate(manifest, 1);
        goto out;
    }
    if (st != DSP_EPRECOND)
        goto out;

    /* Lost: read the winner so the caller can log it and so a commit that
     * is ours after all (same attempt id, different bytes) is recognized. */
    st = dsp_proto_get_json(s, key, &seen, NULL, err);
    if (st != DSP_OK)
        goto out;
    *won = strcmp(str_field(seen, "attempt"), str_field(manifest, "attempt")) == 0;
    if (winner) {
        *winner = seen;
        seen = NULL;
    }
out:
    cJSON_Delete(seen);
    free(body);
    free(key);
    return st;
}

dsp_status dsp_commit_discard(dsp_store *s, const char *job, const char *stage,
                              const char *task, const char *attempt, dsp_err *err)
{
    char *prefix = dsp_proto_attempt_prefix(job, stage, task, attempt);
    char *slash = dsp_xasprintf("%s/", prefix);
    dsp_status st = dsp_proto_delete_prefix(s, slash, err);

    free(slash);
    free(prefix);
    return st;
}

dsp_status dsp_seal_write(dsp_store *s, const char *job, const dsp_plan_stage *stage,
                          dsp_err *err)
{
    cJSON *seal = cJSON_CreateObject();
    cJSON *tasks = cJSON_CreateArray();
    char *key = dsp_proto_seal_key(job, stage->id);
    char *body = NULL;
    dsp_status st = DSP_OK;

    cJSON_AddNumberToObject(seal, "schema_version", DSP_COMMIT_SCHEMA_VERSION);
    cJSON_AddStringToObject(seal, "job", job);
    cJSON_AddStringToObject(seal, "stage", stage->id);
    cJSON_AddItemToObject(seal, "tasks", tasks);
    for (size_t i = 0; i < stage->ntasks; i++) {
        char *ckey = dsp_proto_commit_key(job, stage->id, stage->tasks[i].id);
        cJSON *c = NULL;
        st = dsp_proto_get_json(s, ckey, &c, NULL, err);
        free(ckey);
        if (st != DSP_OK)
            goto out;
        cJSON_AddItemToArray(tasks, c);
    }
    body = cJSON_PrintUnformatted(seal);
    st = dsp_proto_create(s, key, body, strlen(body), NULL, err);
    if (st == DSP_EPRECOND) {
        /* Another sealer won with different bytes. Both list the winning
         * commits, which are create-only, so the bytes can differ only if a
         * commit object was replaced by hand. Keep the stored seal and log it. */
        DSP_WARN("seal_differs", "key=%s", key);
        st = DSP_OK;
    }
    if (st == DSP_OK)
        DSP_INFO("stage_sealed", "job=%s stage=%s tasks=%zu", job, stage->id, stage->ntasks);
out:
    free(body);
    free(key);
    cJSON_Delete(seal);
    return st;
}

dsp_status dsp_seal_read(dsp_store *s, const char *job, const char *stage, cJSON **out,
                         dsp_err *err)
{
    char *key = dsp_proto_seal_key(job, stage);
    dsp_status st = dsp_proto_get_json(s, key, out, NULL, err);

    free(key);
    return st;
}
