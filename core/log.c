/* log.c - see log.h. */
#include "log.h"

#include "buf.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
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


/* Length of the valid UTF-8 sequence at s[0..n), or 0 when s[0] does not
 * start one. Overlong forms, surrogates and code points above U+10FFFF are
 * invalid, as in RFC 3629. */
static size_t utf8_sequence_length(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* Whether a text-format value must be quoted: it is empty, or it contains
 * a byte that would end the value or needs an escape. */
static int text_needs_quotes(const char *v, size_t n)
{
    const unsigned char *s = (const unsigned char *)v;

    if (n == 0)
        return 1;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || c < 0x20 || c == 0x7F)
            return 1;
        size_t len = utf8_sequence_length(s + i, n - i);
        if (len == 0)
            return 1;
        i += len;
    }
    return 0;
}

typedef enum { ESCAPE_TEXT, ESCAPE_JSON } escape_format;

/* Write v[0..n) between double quotes. Both formats escape '"', '\\',
 * newline, carriage return and tab with a backslash. The text format writes
 * other control bytes, DEL and bytes that are not valid UTF-8 as \xNN, which
 * keeps them exactly. JSON writes control bytes as \u00NN and each invalid
 * byte as \ufffd, the replacement character, because a lone surrogate
 * escape that could keep the byte makes strict parsers reject the line. */
static void write_quoted(FILE *out, const char *v, size_t n, escape_format format)
{
    const unsigned char *s = (const unsigned char *)v;

    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = utf8_sequence_length(s + i, n - i);
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\r')
            fputs("\\r", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (format == ESCAPE_TEXT && (c < 0x20 || c == 0x7F || len == 0))
            fprintf(out, "\\x%02x", c);
        else if (format == ESCAPE_JSON && c < 0x20)
            fprintf(out, "\\u%04x", c);
        else if (format == ESCAPE_JSON && len == 0)
            fputs("\\ufffd", out);
        else {
            fwrite(s + i, 1, len, out);
            i += len;
            continue;
        }
        i++;
    }
    fputc('"', out);
}

/* Write a value in the text (logfmt) format, quoted when `quote` is set or
 * the value needs it, so a value can never end its line or start another
 * key=value pair. */
static void write_text_value(FILE *out, const char *v, size_t n, int quote)
{
    if (!quote && !text_needs_quotes(v, n))
        fwrite(v, 1, n, out);
    else
        write_quoted(out, v, n, ESCAPE_TEXT);
}

static void write_json_string(FILE *out, const char *v, size_t n)
{
    write_quoted(out, v, n, ESCAPE_JSON);
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
    size_t i = n > 0 && v[0] == '-' ? 1 : 0;
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

/* One key=value pair of a line's body. Key and value are offsets into the
 * body buffer, and the value contains the exact bytes of the arguments. */
typedef struct {
    size_t key, klen;
    size_t value, vlen;
    int quoted;   /* the format put the value in double quotes */
    int has_text; /* the value contains a %s or %c argument */
} log_pair;

typedef struct {
    dsp_buf text;
    log_pair *pairs;
    size_t n, cap;
} log_body;

/* Format one printf conversion that starts at fmt[0] == '%' and append it
 * to b. Return the position after the conversion. The format attribute
 * of dsp_log() makes the compiler check each argument against its
 * conversion, so the va_arg types below match what the caller passed. */
static const char *append_conversion(dsp_buf *b, const char *fmt, va_list *ap, int *is_text)
{
    char spec[32];
    size_t n = 0;
    const char *p = fmt + 1;
    int width, precision = -1;
    int longs = 0, size_mod = 0, max_mod = 0, diff_mod = 0, long_double = 0;

    spec[n++] = '%';
    while (*p && strchr("-+ #0", *p) && n < sizeof spec - 12)
        spec[n++] = *p++;
    if (*p == '*') {
        width = va_arg(*ap, int);
        n += (size_t)snprintf(spec + n, sizeof spec - n, "%d", width);
        p++;
    }
    while (*p >= '0' && *p <= '9' && n < sizeof spec - 12)
        spec[n++] = *p++;
    if (*p == '.') {
        spec[n++] = *p++;
        if (*p == '*') {
            precision = va_arg(*ap, int);
            if (precision < 0)
                n--; /* a negative precision counts as none */
            else
                n += (size_t)snprintf(spec + n, sizeof spec - n, "%d", precision);
            p++;
        } else {
            precision = 0;
        }
        while (*p >= '0' && *p <= '9' && n < sizeof spec - 12) {
            precision = precision * 10 + (*p - '0');
            spec[n++] = *p++;
        }
    }
    for (;; p++) {
        if (*p == 'h')
            continue; /* char and short arguments are promoted to int */
        else if (*p == 'l')
            longs++;
        else if (*p == 'z')
            size_mod = 1;
        else if (*p == 'j')
            max_mod = 1;
        else if (*p == 't')
            diff_mod = 1;
        else if (*p == 'L')
            long_double = 1;
        else
            break;
    }

    char conv = *p ? *p++ : '%';
    *is_text = conv == 's' || conv == 'c';
    if (conv == 's') {
        const char *s = va_arg(*ap, const char *);
        if (!s)
            s = "(null)";
        size_t len = strlen(s);
        if (precision >= 0 && (size_t)precision < len)
            len = (size_t)precision;
        dsp_buf_append(b, s, len);
        return p;
    }
    if (conv == 'c') {
        dsp_buf_append_char(b, (char)va_arg(*ap, int));
        return p;
    }
    if (conv == '%') {
        dsp_buf_append_char(b, '%');
        return p;
    }

    /* Numbers: rebuild the conversion with a fixed length modifier. */
    if (strchr("diouxX", conv)) {
        int is_signed = conv == 'd' || conv == 'i';
        if (size_mod || max_mod || diff_mod || longs >= 2) {
            long long v;
            unsigned long long u;
            if (size_mod) {
                u = (unsigned long long)va_arg(*ap, size_t);
                v = (long long)u;
            } else if (max_mod) {
                v = (long long)va_arg(*ap, intmax_t);
                u = (unsigned long long)v;
            } else if (diff_mod) {
                v = (long long)va_arg(*ap, ptrdiff_t);
                u = (unsigned long long)v;
            } else {
                v = va_arg(*ap, long long);
                u = (unsigned long long)v;
            }
            memcpy(spec + n, "ll", 2);
            spec[n + 2] = conv;
            spec[n + 3] = '\0';
            if (is_signed)
                dsp_buf_printf(b, spec, v);
            else
                dsp_buf_printf(b, spec, u);
        } else if (longs == 1) {
            long v = va_arg(*ap, long);
            spec[n] = 'l';
            spec[n + 1] = conv;
            spec[n + 2] = '\0';
            if (is_signed)
                dsp_buf_printf(b, spec, v);
            else
                dsp_buf_printf(b, spec, (unsigned long)v);
        } else {
            int v = va_arg(*ap, int);
            spec[n] = conv;
            spec[n + 1] = '\0';
            if (is_signed)
                dsp_buf_printf(b, spec, v);
            else
                dsp_buf_printf(b, spec, (unsigned)v);
        }
        return p;
    }
    if (strchr("fFeEgGaA", conv)) {
        if (long_double) {
            long double v = va_arg(*ap, long double);
            spec[n] = 'L';
            spec[n + 1] = conv;
            spec[n + 2] = '\0';
            dsp_buf_printf(b, spec, v);
        } else {
            double v = va_arg(*ap, double);
            spec[n] = conv;
            spec[n + 1] = '\0';
            dsp_buf_printf(b, spec, v);
        }
        return p;
    }
    if (conv == 'p') {
        dsp_buf_printf(b, "%p", va_arg(*ap, void *));
        return p;
    }
    /* An unknown conversion: write it as it is and take no argument. */
    dsp_buf_append(b, fmt, (size_t)(p - fmt));
    return p;
}

/* Expand the value template at p, which ends at the closing quote when
 * quoted, else at a space or the end of the format. Return the position
 * after it. */
static const char *append_value(log_body *body, log_pair *pair, const char *p, va_list *ap)
{
    pair->value = body->text.len;
    pair->quoted = *p == '"';
    if (pair->quoted)
        p++;
    while (*p) {
        if (pair->quoted && *p == '"') {
            p++;
            break;
        }
        if (!pair->quoted && *p == ' ')
            break;
        if (*p == '%') {
            int is_text = 0;
            p = append_conversion(&body->text, p, ap, &is_text);
            pair->has_text |= is_text;
            continue;
        }
        if (pair->quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
        dsp_buf_append_char(&body->text, *p++);
    }
    pair->vlen = body->text.len - pair->value;
    return p;
}

/* Split the format into key=value pairs and expand each value with its
 * arguments. Keys and the quotes around values come only from the format,
 * never from an argument, so an argument cannot add a pair or end its own
 * value. A word of the format without '=' becomes the value of "msg". */
static void format_body(log_body *body, const char *fmt, va_list *ap)
{
    const char *p = fmt;

    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (body->n == body->cap) {
            body->cap = body->cap ? body->cap * 2 : 16;
            body->pairs = dsp_xrealloc(body->pairs, body->cap * sizeof *body->pairs);
        }
        log_pair *pair = &body->pairs[body->n++];
        memset(pair, 0, sizeof *pair);

        const char *k = p;
        while (*p && *p != '=' && *p != ' ' && *p != '"' && *p != '%')
            p++;
        pair->key = body->text.len;
        if (*p == '=') {
            dsp_buf_append(&body->text, k, (size_t)(p - k));
            pair->klen = (size_t)(p - k);
            p++;
        } else {
            dsp_buf_append_str(&body->text, "msg");
            pair->klen = 3;
            p = k;
        }
        p = append_value(body, pair, p, ap);
    }
}

static int span_equals(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Whether the pair repeats an id of the thread's context with the same
 * value. Such a pair is dropped, because the context already put it on the
 * line: code that runs both inside and outside a task (finishing a job)
 * names the job itself. */
static int repeats_context(const char *key, size_t klen, const char *value, size_t vlen)
{
    const char *ctx = NULL;
    if (span_equals(key, klen, "job"))
        ctx = t_ctx.job;
    else if (span_equals(key, klen, "stage"))
        ctx = t_ctx.stage;
    else if (span_equals(key, klen, "task"))
        ctx = t_ctx.task;
    else if (span_equals(key, klen, "attempt"))
        ctx = t_ctx.attempt;
    return ctx && ctx[0] && span_equals(value, vlen, ctx);
}

/* Write one key and value in the chosen format. A JSON value is a number
 * when the format wrote it without quotes, no %s or %c argument is part of
 * it, it is an integer by is_json_integer() and the key is not an id. */
static void write_pair(FILE *out, const char *key, size_t klen, const char *value, size_t vlen,
                       int quoted, int has_text)
{
    if (g_json) {
        fputc(',', out);
        write_json_string(out, key, klen);
        fputc(':', out);
        if (!quoted && !has_text && !is_id_key(key, klen) && is_json_integer(value, vlen))
            fwrite(value, 1, vlen, out);
        else
            write_json_string(out, value, vlen);
        return;
    }
    fputc(' ', out);
    fwrite(key, 1, klen, out);
    fputc('=', out);
    write_text_value(out, value, vlen, quoted);
}

static void write_context(FILE *out, const char *key, const char *value)
{
    if (value[0])
        write_pair(out, key, strlen(key), value, strlen(value), 0, 1);
}

void dsp_log(dsp_log_level level, const char *event, const char *fmt, ...)
{
    char ts[48];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    log_body body = {DSP_BUF_INIT, NULL, 0, 0};

    if (level < g_level)
        return;
    va_start(ap, fmt);
    format_body(&body, fmt, &ap);
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
        goto out;
    if (g_json) {
        fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", ts, level_name(level));
        write_json_string(out, event, strlen(event));
        fprintf(out, ",\"pid\":%d", (int)getpid());
    } else {
        fprintf(out, "ts=%s level=%s event=", ts, level_name(level));
        write_text_value(out, event, strlen(event), 0);
        fprintf(out, " pid=%d", (int)getpid());
    }
    write_context(out, "job", t_ctx.job);
    write_context(out, "stage", t_ctx.stage);
    write_context(out, "task", t_ctx.task);
    write_context(out, "attempt", t_ctx.attempt);
    for (size_t i = 0; i < body.n; i++) {
        const log_pair *pair = &body.pairs[i];
        const char *key = body.text.data + pair->key;
        const char *value = body.text.data + pair->value;
        if (repeats_context(key, pair->klen, value, pair->vlen))
            continue;
        write_pair(out, key, pair->klen, value, pair->vlen, pair->quoted, pair->has_text);
    }
    fputs(g_json ? "}\n" : "\n", out);
    fclose(out);

    pthread_mutex_lock(&g_lock);
    for (size_t done = 0; done < line_len;) {
        ssize_t w = write(STDERR_FILENO, line + done, line_len - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    pthread_mutex_unlock(&g_lock);
    free(line);
out:
    dsp_buf_free(&body.text);
    free(body.pairs);
}
