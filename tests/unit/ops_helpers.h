/*
 * ops_helpers.h - helpers for the operator tests: load JSONL fixtures into a
 * batch, build documents from text, and run one step over a batch the way
 * the pipeline does (keep[] starts at 1, in/out counted by the caller).
 */
#ifndef DSP_OPS_HELPERS_H
#define DSP_OPS_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/buf.h"
#include "../../tasks/op.h"

#define OPS_MAX_DOCS 64

/* Path of a file under tests/data, from $DSPARK_ROOT or the current
 * directory (tests/run.sh runs from the repository root). */
static inline const char *ops_data_path(const char *rel, char *buf, size_t size)
{
    const char *root = getenv("DSPARK_ROOT");
    snprintf(buf, size, "%s/tests/data/%s", root && *root ? root : ".", rel);
    return buf;
}

/* Append every line of a JSONL file to the batch; returns the count or -1. */
static inline int ops_load_jsonl(dsp_batch *b, const char *rel)
{
    char path[4096];
    FILE *f = fopen(ops_data_path(rel, path, sizeof path), "r");
    if (!f) {
        fprintf(stderr, "  cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int count = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            n--;
        dsp_batch_push(b, line, (size_t)n, rel, 0);
        count++;
    }
    free(line);
    fclose(f);
    return count;
}

/* Append a document {"id": id, "text": text}. */
static inline dsp_doc *ops_push_text(dsp_batch *b, const char *id, const char *text, size_t len)
{
    dsp_buf line = DSP_BUF_INIT;
    dsp_buf_append_str(&line, "{\"id\":");
    dsp_json_encode_string(&line, id, strlen(id));
    dsp_buf_append_str(&line, ",\"text\":");
    dsp_json_encode_string(&line, text, len);
    dsp_buf_append_char(&line, '}');
    dsp_doc *d = dsp_batch_push(b, line.data, line.len, "test", 0);
    dsp_buf_free(&line);
    return d;
}

typedef struct {
    dsp_op_instance inst;
    unsigned char keep[OPS_MAX_DOCS];
    dsp_err err;
    dsp_status status;
} ops_run;

/* Instantiate step_json with ctx and run it once over b. Returns the
 * status of instantiation or processing; r->keep contains the decisions. */
static inline dsp_status ops_run_step_ctx(ops_run *r, const char *step_json, dsp_batch *b,
                                          const dsp_op_ctx *ctx)
{
    cJSON *step = cJSON_Parse(step_json);
    memset(r, 0, sizeof *r);
    if (!step) {
        r->status = DSP_EINVAL;
        snprintf(r->err.msg, sizeof r->err.msg, "test step is not JSON: %s", step_json);
        return r->status;
    }
    r->status = dsp_op_instantiate(step, 0, ctx, &r->inst, &r->err);
    cJSON_Delete(step);
    if (r->status != DSP_OK)
        return r->status;
    memset(r->keep, 1, sizeof r->keep);
    r->status = r->inst.def->process(r->inst.state, b, r->keep, &r->inst.counters, &r->err);
    r->inst.counters.in += b->n;
    for (size_t i = 0; i < b->n; i++)
        r->inst.counters.out += r->keep[i];
    return r->status;
}

/* Run step_json once over b with the text field "text" and the default
 * max_record_bytes. */
static inline dsp_status ops_run_step(ops_run *r, const char *step_json, dsp_batch *b, int allow_exec)
{
    dsp_op_ctx ctx = {allow_exec, "text", NULL, 0};
    return ops_run_step_ctx(r, step_json, b, &ctx);
}

/* Index of a removal reason or extra counter by name, or -1. */
static inline int ops_name_index(const char *const *names, const char *name)
{
    for (int i = 0; names && names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* The reason that removed document i when it is the only document of its
 * batch: runs the step on a one-document copy. Returns "kept" when kept. */
static inline const char *ops_decide(const char *step_json, dsp_batch *src, size_t i)
{
    static char reason[64];
    dsp_batch one;
    ops_run r;
    dsp_batch_init(&one, "text");
    dsp_batch_push(&one, src->docs[i].line, src->docs[i].line_len, "test", 0);
    if (ops_run_step(&r, step_json, &one, 0) != DSP_OK) {
        snprintf(reason, sizeof reason, "error: %.50s", r.err.msg);
    } else if (r.keep[0]) {
        snprintf(reason, sizeof reason, "kept");
    } else {
        snprintf(reason, sizeof reason, "removed without a reason");
        for (int k = 0; r.inst.def->reasons[k]; k++)
            if (r.inst.counters.removed[k])
                snprintf(reason, sizeof reason, "%s", r.inst.def->reasons[k]);
    }
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&one);
    return reason;
}

/* Text of document i after the step, NUL-terminated. */
static inline const char *ops_text(dsp_batch *b, size_t i)
{
    return b->docs[i].text ? b->docs[i].text : "";
}

/* A text of about `bytes` bytes made of one line repeated. */
static inline char *ops_repeat_line(const char *line, size_t bytes, size_t *len)
{
    size_t n = strlen(line);
    size_t count = bytes / n + 1;
    char *s = malloc(count * n + 1);
    for (size_t i = 0; i < count; i++)
        memcpy(s + i * n, line, n);
    s[count * n] = '\0';
    *len = count * n;
    return s;
}

#endif
