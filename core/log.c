/* log.c - see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static dsp_log_level g_level = DSP_LOG_INFO;
static int g_json;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static __thread dsp_log_ctx t_ctx;

dsp_status dsp_log_init(dsp_err *err)
{
    const char *lv = getenv("DSPARK_LOG_LEVEL");
    const char *fmt = getenv("DSPARK_LOG_FORMAT");

    if (lv) {
        if (!strcasecmp(lv, "debug")) g_level = DSP_LOG_DEBUG;
        else if (!strcasecmp(lv, "info")) g_level = DSP_LOG_INFO;
        else if (!strcasecmp(lv, "warn") || !strcasecmp(lv, "warning")) g_level = DSP_LOG_WARN;
        else if (!strcasecmp(lv, "error")) g_level = DSP_LOG_ERROR;
        else fprintf(stderr, "dspark: invalid DSPARK_LOG_LEVEL '%s' (use debug, info, warn or error); using info\n", lv);
    }
    if (fmt && *fmt) {
        if (!strcasecmp(fmt, "json"))
            g_json = 1;
        else if (!strcasecmp(fmt, "text"))
            g_json = 0;
        else
            return dsp_err_set(err, DSP_EINVAL,
                               "invalid DSPARK_LOG_FORMAT '%s': expected text or json", fmt);
    }
    return DSP_OK;
}

void dsp_log_set_level(dsp_log_level level) { g_level = level; }
void dsp_log_set_json(int on) { g_json = on; }
int dsp_log_enabled(dsp_log_level level) { return level >= g_level; }

static void copy_field(char *dst, size_t size, const char *src)
{
    if (!src) {
        dst[0] = '\0';
        return;
    }
    snprintf(dst, size, "%s", src);
}

void dsp_log_context(const char *job, const char *stage, const char *task, const char *attempt)
{
    copy_field(t_ctx.job, sizeof t_ctx.job, job);
    copy_field(t_ctx.stage, sizeof t_ctx.stage, stage);
    copy_field(t_ctx.task, sizeof t_ctx.task, task);
    copy_field(t_ctx.attempt, sizeof t_ctx.attempt, attempt);
}

void dsp_log_context_save(dsp_log_ctx *out) { *out = t_ctx; }
void dsp_log_context_restore(const dsp_log_ctx *ctx) { t_ctx = *ctx; }

const char *dsp_log_quote(const char *value, char *buf, unsigned size)
{
    unsigned o = 0;
    int needs = value[0] == '\0';

    for (const char *p = value; *p && !needs; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\n' || *p == '\t')
            needs = 1;
    if (!needs) {
        size_t n = strnlen(value, size - 1);
        memcpy(buf, value, n);
        buf[n] = '\0';
        return buf;
    }
    if (size < 3) {
        buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const char *p = value; *p && o + 3 < size; p++) {
        if (*p == '"' || *p == '\\') {
            buf[o++] = '\\';
            buf[o++] = *p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static const char *level_name(dsp_log_level l)
{
    switch (l) {
    case DSP_LOG_DEBUG: return "debug";
    case DSP_LOG_INFO: return "info";
    case DSP_LOG_WARN: return "warn";
    case DSP_LOG_ERROR: return "error";
    }
    return "info";
}

/* Append s to out as a JSON string body (without quotes). */
static void json_escape(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
}

/* Keys whose values are names, written as strings even when they look
 * like numbers (a job id "2024"), so every line gives a key the same type. */
static int is_id_key(const char *key, size_t len)
{
    static const char *const ids[] = {"job", "stage", "task", "attempt", "worker", "key", "id"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (strlen(ids[i]) == len && !memcmp(ids[i], key, len))
            return 1;
    return 0;
}

/* Whether v[0..n) is a decimal integer without leading zeros whose
 * magnitude is at most 2^53, up to which a double represents every
 * integer exactly. */
static int is_json_integer(const char *v, size_t n)
{
    size_t i = v[0] == '-' ? 1 : 0;
    if (n == i || n - i > 16 || (v[i] == '0' && n - i > 1))
        return 0;
    uint64_t x = 0;
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    return x <= (UINT64_C(1) << 53);
}

/* One key=value pair of a line's body, as written. A pair with klen 0 is
 * the rest of the body, which did not parse as key=value. */
typedef struct {
    const char *key;
    size_t klen;
    const char *value; /* with its quotes when quoted */
    size_t vlen;
} log_pair;

/* Parse the pair that starts at or after p into *pair. Return the position
 * after it, or NULL at the end of the body. */
static const char *next_pair(const char *p, log_pair *pair)
{
    while (*p == ' ')
        p++;
    if (!*p)
        return NULL;
    pair->key = p;
    while (*p && *p != '=' && *p != ' ')
        p++;
    if (*p != '=') {
        pair->klen = 0;
        pair->value = pair->key;
        pair->vlen = strlen(pair->key);
        return pair->value + pair->vlen;
    }
    pair->klen = (size_t)(p - pair->key);
    pair->value = ++p;
    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1])
                p++;
            p++;
        }
        if (*p == '"')
            p++;
    } else {
        while (*p && *p != ' ')
            p++;
    }
    pair->vlen = (size_t)(p - pair->value);
    return p;
}

static int span_equals(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Whether the pair repeats an id of the thread's context with the same
 * value. Such a pair is dropped, because the context already put it on the
 * line: code that runs both inside and outside a task (finishing a job)
 * names the job itself. */
static int repeats_context(const log_pair *pair)
{
    const char *ctx = NULL;
    if (span_equals(pair->key, pair->klen, "job"))
        ctx = t_ctx.job;
    else if (span_equals(pair->key, pair->klen, "stage"))
        ctx = t_ctx.stage;
    else if (span_equals(pair->key, pair->klen, "task"))
        ctx = t_ctx.task;
    else if (span_equals(pair->key, pair->klen, "attempt"))
        ctx = t_ctx.attempt;
    return ctx && ctx[0] && span_equals(pair->value, pair->vlen, ctx);
}

/* Write a plain value as a JSON number when it is an integer and the key
 * is not an id, else as a JSON string. */
static void write_plain_value(FILE *out, const log_pair *pair)
{
    if (!is_id_key(pair->key, pair->klen) && is_json_integer(pair->value, pair->vlen)) {
        fwrite(pair->value, 1, pair->vlen, out);
        return;
    }
    fputc('"', out);
    json_escape(out, pair->value, pair->vlen);
    fputc('"', out);
}

/* Write a value quoted by dsp_log_quote as a JSON string, with its escapes
 * undone. */
static void write_quoted_value(FILE *out, const log_pair *pair)
{
    const char *p = pair->value + 1, *end = pair->value + pair->vlen;
    if (end > p && end[-1] == '"')
        end--;
    fputc('"', out);
    while (p < end) {
        if (*p == '\\' && p + 1 < end) {
            p++;
            if (*p == 'n') {
                fputs("\\n", out);
                p++;
                continue;
            }
        }
        json_escape(out, p, 1);
        p++;
    }
    fputc('"', out);
}

/* Write the key=value body as JSON members. */
static void body_to_json(FILE *out, const char *body)
{
    log_pair pair;
    for (const char *p = body; (p = next_pair(p, &pair)) != NULL;) {
        if (pair.klen == 0) {
            fputs(",\"msg\":\"", out);
            json_escape(out, pair.value, pair.vlen);
            fputc('"', out);
            return;
        }
        if (repeats_context(&pair))
            continue;
        fputs(",\"", out);
        json_escape(out, pair.key, pair.klen);
        fputs("\":", out);
        if (pair.value[0] == '"')
            write_quoted_value(out, &pair);
        else
            write_plain_value(out, &pair);
    }
}

/* Write the key=value body as text, each pair after a space. */
static void body_to_text(FILE *out, const char *body)
{
    log_pair pair;
    for (const char *p = body; (p = next_pair(p, &pair)) != NULL;) {
        if (pair.klen > 0 && repeats_context(&pair))
            continue;
        fputc(' ', out);
        fwrite(pair.key, 1, (size_t)(pair.value + pair.vlen - pair.key), out);
    }
}

void dsp_log(dsp_log_level level, const char *event, const char *fmt, ...)
{
    char body[4096];
    char ts[48];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level < g_level)
        return;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000) % 1000);

    /* Build the whole line first and send it with one write(2): workers
     * forked by `dspark run` share one stderr, and separate stdio writes
     * from several processes would interleave inside a line. */
    char *line = NULL;
    size_t line_len = 0;
    FILE *out = open_memstream(&line, &line_len);
    if (!out)
        return;
    if (g_json) {
        fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"", ts, level_name(level));
        json_escape(out, event, strlen(event));
        fputc('"', out);
        fprintf(out, ",\"pid\":%d", (int)getpid());
        if (t_ctx.job[0]) fprintf(out, ",\"job\":\"%s\"", t_ctx.job);
        if (t_ctx.stage[0]) fprintf(out, ",\"stage\":\"%s\"", t_ctx.stage);
        if (t_ctx.task[0]) fprintf(out, ",\"task\":\"%s\"", t_ctx.task);
        if (t_ctx.attempt[0]) fprintf(out, ",\"attempt\":\"%s\"", t_ctx.attempt);
        body_to_json(out, body);
        fputs("}\n", out);
    } else {
        fprintf(out, "ts=%s level=%s event=%s pid=%d", ts, level_name(level), event, (int)getpid());
        if (t_ctx.job[0]) fprintf(out, " job=%s", t_ctx.job);
        if (t_ctx.stage[0]) fprintf(out, " stage=%s", t_ctx.stage);
        if (t_ctx.task[0]) fprintf(out, " task=%s", t_ctx.task);
        if (t_ctx.attempt[0]) fprintf(out, " attempt=%s", t_ctx.attempt);
        body_to_text(out, body);
        fputc('\n', out);
    }
    fclose(out);
    pthread_mutex_lock(&g_lock);
    for (size_t done = 0; done < line_len;) {
        ssize_t n = write(STDERR_FILENO, line + done, line_len - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    pthread_mutex_unlock(&g_lock);
    free(line);
}
