/* log.c - see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
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

typedef struct {
    char job[96], stage[32], task[64], attempt[64];
} log_ctx;
static __thread log_ctx t_ctx;

void dsp_log_init(void)
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
    if (fmt)
        g_json = !strcasecmp(fmt, "json");
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

/* Write the key=value text as JSON members; a quoted value keeps its
 * escapes undone. Anything that does not parse as key=value goes to "msg". */
static void kv_to_json(FILE *out, const char *kv)
{
    const char *p = kv;

    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *key = p;
        while (*p && *p != '=' && *p != ' ')
            p++;
        if (*p != '=') {
            fputs(",\"msg\":\"", out);
            json_escape(out, key, strlen(key));
            fputc('"', out);
            return;
        }
        size_t klen = (size_t)(p - key);
        p++;
        fputs(",\"", out);
        json_escape(out, key, klen);
        fputs("\":\"", out);
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) {
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
            if (*p == '"')
                p++;
        } else {
            const char *v = p;
            while (*p && *p != ' ')
                p++;
            json_escape(out, v, (size_t)(p - v));
        }
        fputc('"', out);
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
        fprintf(out, ",\"pid\":\"%d\"", (int)getpid());
        if (t_ctx.job[0]) fprintf(out, ",\"job\":\"%s\"", t_ctx.job);
        if (t_ctx.stage[0]) fprintf(out, ",\"stage\":\"%s\"", t_ctx.stage);
        if (t_ctx.task[0]) fprintf(out, ",\"task\":\"%s\"", t_ctx.task);
        if (t_ctx.attempt[0]) fprintf(out, ",\"attempt\":\"%s\"", t_ctx.attempt);
        kv_to_json(out, body);
        fputs("}\n", out);
    } else {
        fprintf(out, "ts=%s level=%s event=%s pid=%d", ts, level_name(level), event, (int)getpid());
        if (t_ctx.job[0]) fprintf(out, " job=%s", t_ctx.job);
        if (t_ctx.stage[0]) fprintf(out, " stage=%s", t_ctx.stage);
        if (t_ctx.task[0]) fprintf(out, " task=%s", t_ctx.task);
        if (t_ctx.attempt[0]) fprintf(out, " attempt=%s", t_ctx.attempt);
        if (body[0])
            fprintf(out, " %s", body);
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
