/*
 * log.h - one line per event, key=value pairs (or JSON lines), to stderr.
 *
 * The level comes from DSPARK_LOG_LEVEL (debug, info, warn, error; default
 * info) and the format from DSPARK_LOG_FORMAT (text or json; default text).
 * Messages must never contain secrets: callers redact before logging.
 *
 * Every value is escaped, so no value can end its line, start another
 * key=value pair or change the level or event. The text format quotes a
 * value that is empty or contains a space, '"', '=', '\\', a control byte
 * or invalid UTF-8. Inside the quotes '"' and '\\' get a backslash, newline,
 * carriage return and tab are \n, \r and \t, and every other control byte
 * or byte of invalid UTF-8 is \xNN. JSON lines are valid JSON whatever the
 * bytes: each byte of invalid UTF-8 becomes \ufffd (U+FFFD), because a lone
 * surrogate escape, which could keep the byte, makes strict parsers such
 * as cJSON reject the whole line.
 *
 * In JSON lines, a value that is a decimal integer of at most 2^53 in
 * magnitude is written as a JSON number, so that consumers that parse
 * numbers as doubles read it exactly. Everything else is a string, and so
 * are the id keys (job, stage, task, attempt, worker, key, id), values that
 * the format quotes and values with a %s or %c argument, whatever they
 * look like.
 *
 * Context ids (job, stage, task, attempt) are per thread and are added to
 * every line while set, so a line in a worker always says what it belongs to.
 * A key=value pair that repeats a context id with the same value is dropped.
 */
#ifndef DSP_LOG_H
#define DSP_LOG_H

#include "err.h"

typedef enum { DSP_LOG_DEBUG = 0, DSP_LOG_INFO, DSP_LOG_WARN, DSP_LOG_ERROR } dsp_log_level;

/* Read DSPARK_LOG_LEVEL and DSPARK_LOG_FORMAT; safe to call more than once.
 * An unknown DSPARK_LOG_FORMAT fails with DSP_EINVAL naming the variable
 * and the accepted values, and leaves the format unchanged. An unknown
 * DSPARK_LOG_LEVEL is reported on stderr and leaves the level unchanged. */
dsp_status dsp_log_init(dsp_err *err);
void dsp_log_set_level(dsp_log_level level);
void dsp_log_set_json(int on);
int dsp_log_enabled(dsp_log_level level);

/* Per-thread context; NULL clears a field. */
void dsp_log_context(const char *job, const char *stage, const char *task, const char *attempt);

/* A copy of a thread's context, to carry it to another thread or to set a
 * context for a few lines and then put the old one back. */
typedef struct {
    char job[96], stage[32], task[64], attempt[64];
} dsp_log_ctx;

void dsp_log_context_save(dsp_log_ctx *out);
void dsp_log_context_restore(const dsp_log_ctx *ctx);

/*
 * Log an event. `event` is a short snake_case name ("retry", "task_commit");
 * `fmt` is the rest of the line as space-separated key=value pairs, for
 * example
 *   dsp_log(DSP_LOG_WARN, "retry", "op=%s key=%s attempt=%d", ...).
 * Keys come only from `fmt`. A value is the printf expansion of the text
 * after '=' up to the next space, or of the text inside double quotes when
 * it starts with '"' (message="%s"). Arguments are inserted as they are and
 * escaped when the line is written, so callers pass raw strings. A word of
 * `fmt` without '=' is logged as the value of "msg".
 */
void dsp_log(dsp_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define DSP_DEBUG(ev, ...) do { if (dsp_log_enabled(DSP_LOG_DEBUG)) dsp_log(DSP_LOG_DEBUG, ev, __VA_ARGS__); } while (0)
#define DSP_INFO(ev, ...) dsp_log(DSP_LOG_INFO, ev, __VA_ARGS__)
#define DSP_WARN(ev, ...) dsp_log(DSP_LOG_WARN, ev, __VA_ARGS__)
#define DSP_ERROR(ev, ...) dsp_log(DSP_LOG_ERROR, ev, __VA_ARGS__)

#endif
