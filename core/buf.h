/*
 * buf.h - growable byte buffer, owned by the caller.
 *
 * Used for object bodies, JSON documents and output lines. The data is kept
 * NUL-terminated (one spare byte past len) so text can be passed to C string
 * functions, but it may also contain NUL bytes. dsp_buf_reset() keeps the
 * allocation so hot loops reuse one buffer instead of allocating per record.
 */
#ifndef DSP_BUF_H
#define DSP_BUF_H

#include <stddef.h>

#include "err.h"

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} dsp_buf;

#define DSP_BUF_INIT {NULL, 0, 0}

/* Ensure room for `extra` more bytes plus the terminator. Aborts the process
 * on allocation failure: DSpark treats out-of-memory as fatal. */
void dsp_buf_reserve(dsp_buf *b, size_t extra);
void dsp_buf_append(dsp_buf *b, const void *data, size_t len);
void dsp_buf_append_str(dsp_buf *b, const char *s);
void dsp_buf_append_char(dsp_buf *b, char c);
void dsp_buf_printf(dsp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dsp_buf_reset(dsp_buf *b);
void dsp_buf_free(dsp_buf *b);
/* Transfer ownership of the bytes to the caller; b becomes empty. */
char *dsp_buf_detach(dsp_buf *b, size_t *len);

#endif
