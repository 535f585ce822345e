/*
 * reject_check.c - fail a job in which every input record was rejected.
 *
 * The check runs in the publisher once every stage is sealed and before
 * anything is written under the output, so such a job ends "failed" with
 * no output instead of "done" with an empty one. The message names the
 * most frequent reject reasons, counted from the reject files that the
 * tasks committed, and hints at text_field and format. A job in which only
 * some records were rejected is left alone.
 */
#include "reject_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../tasks/decompress.h"

/* Reject records counted for the message. Past this many the counts cover
 * only the first records, and the message states that. */
#define REJECT_COUNT_MAX 100000
/* Reasons named in the message, most frequent first. */
#define REJECT_TOP_REASONS 3

static double seal_sum(const cJSON *seal, const char *field)
{
    const cJSON *t;
    double sum = 0;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(seal, "tasks")) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, field);
        if (cJSON_IsNumber(v))
            sum += v->valuedouble;
    }
    return sum;
}

static void tally_add(dsp_reject_tally *tally, const char *name, size_t len)
{
    if (len >= DSP_REJECT_REASON_MAX)
        len = DSP_REJECT_REASON_MAX - 1;
    tally->counted++;
    for (size_t i = 0; i < tally->n; i++) {
        if (strlen(tally->items[i].name) == len && !memcmp(tally->items[i].name, name, len)) {
            tally->items[i].count++;
            return;
        }
    }
    if (tally->n == tally->cap) {
        tally->cap = tally->cap ? tally->cap * 2 : 8;
        tally->items = dsp_xrealloc(tally->items, tally->cap * sizeof *tally->items);
    }
    dsp_reject_reason *r = &tally->items[tally->n++];
    memcpy(r->name, name, len);
    r->name[len] = '\0';
    r->count = 1;
}

/* Count the reason of one reject record, a JSON object whose "reason"
 * member is a plain string without escapes. */
static void tally_line(dsp_reject_tally *tally, const char *line, size_t len)
{
    static const char field[] = "\"reason\":\"";
    const char *end = line + len;
    const char *p = memmem(line, len, field, sizeof field - 1);

    if (!p) {
        tally_add(tally, "unknown", 7);
        return;
    }
    p += sizeof field - 1;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q) {
        tally_add(tally, "unknown", 7);
        return;
    }
    tally_add(tally, p, (size_t)(q - p));
}

/* Whether the tally still counts: its limit (0 = none) is not reached. */
static int tally_open(const dsp_reject_tally *tally)
{
    return tally->limit == 0 || tally->counted < tally->limit;
}

static dsp_status tally_one(void *ctx, const char *line, size_t len, uint64_t lineno,
                            dsp_err *err)
{
    dsp_reject_tally *tally = ctx;
    (void)lineno;
    (void)err;
    if (!tally_open(tally))
        return DSP_ECANCELLED;
    tally_line(tally, line, len);
    return DSP_OK;
}

dsp_status dsp_reject_tally_file(dsp_store *s, const char *key, dsp_reject_tally *tally,
                                 dsp_err *err)
{
    if (!tally_open(tally))
        return DSP_OK;
    return dsp_object_lines(s, key, tally_one, tally, err);
}

static int compare_reasons(const void *a, const void *b)
{
    const dsp_reject_reason *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->name, y->name);
}

void dsp_reject_tally_sort(dsp_reject_tally *tally)
{
    if (tally->n > 1)
        qsort(tally->items, tally->n, sizeof *tally->items, compare_reasons);
}

void dsp_reject_tally_free(dsp_reject_tally *tally)
{
    free(tally->items);
    memset(tally, 0, sizeof *tally);
}

dsp_status dsp_reject_check(dsp_store *s, const dsp_job *job, const cJSON *seals, int *failed,
                            dsp_err *err)
{
    dsp_reject_tally tally = {.limit = REJECT_COUNT_MAX};
    const char *first_key = NULL;
    dsp_buf message = DSP_BUF_INIT;
    cJSON *extra = NULL;
    dsp_status st = DSP_OK;
    double records_in = seal_sum(cJSON_GetArrayItem(seals, 0), "records_in");
    double rejected = 0;
    const cJSON *seal;

    *failed = 0;
    cJSON_ArrayForEach(seal, seals)
        rejected += seal_sum(seal, "records_rejected");
    if (records_in <= 0 || rejected < records_in)
        return DSP_OK;

    cJSON_ArrayForEach(seal, seals) {
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(seal, "tasks")) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "rejects");
            const cJSON *key = cJSON_GetObjectItemCaseSensitive(f, "key");
            if (!cJSON_IsString(key) || tally.counted >= REJECT_COUNT_MAX)
                continue;
            if (!first_key)
                first_key = key->valuestring;
            st = dsp_reject_tally_file(s, key->valuestring, &tally, err);
            if (st != DSP_OK) {
                dsp_err_prefix(err, "counting the reject reasons of job %s", job->id);
                goto out;
            }
        }
    }
    dsp_reject_tally_sort(&tally);

    dsp_buf_printf(&message, "every input record was rejected (%.0f of %.0f)", rejected,
                   records_in);
    if (tally.n > 0) {
        dsp_buf_append_str(&message, "; top reasons:");
        for (size_t i = 0; i < tally.n && i < REJECT_TOP_REASONS; i++)
            dsp_buf_printf(&message, "%s %s %llu", i ? "," : "", tally.items[i].name,
                           (unsigned long long)tally.items[i].count);
        if (tally.counted >= REJECT_COUNT_MAX)
            dsp_buf_printf(&message, " (counted over the first %d rejects)", REJECT_COUNT_MAX);
    }
    dsp_buf_printf(&message,
                   "; check text_field (\"%s\") and format (\"%s\") in the spec against the "
                   "input. No output was published",
                   job->spec->text_field ? job->spec->text_field : "text",
                   job->spec->format ? job->spec->format : "auto");
    if (first_key)
        dsp_buf_printf(&message, "; the rejected records are in the job store, e.g. %s",
                       first_key);

    extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "message", message.data);
    cJSON_AddNumberToObject(extra, "records_in", records_in);
    cJSON_AddNumberToObject(extra, "records_rejected", rejected);
    cJSON *reasons = cJSON_AddObjectToObject(extra, "reject_reasons");
    for (size_t i = 0; i < tally.n; i++)
        cJSON_AddNumberToObject(reasons, tally.items[i].name, (double)tally.items[i].count);

    DSP_WARN("job_all_rejected", "job=%s records_in=%.0f records_rejected=%.0f top_reason=%s",
             job->id, records_in, rejected, tally.n ? tally.items[0].name : "unknown");
    st = dsp_job_finish(s, job->id, DSP_JOB_FAILED, extra, NULL, err);
    if (st == DSP_OK)
        *failed = 1;
out:
    cJSON_Delete(extra);
    dsp_buf_free(&message);
    dsp_reject_tally_free(&tally);
    return st;
}
