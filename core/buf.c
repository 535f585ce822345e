/* buf.c - see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void dsp_buf_reserve(dsp_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap < ((size_t)1 << 30) ? cap * 2 : cap + ((size_t)1 << 30);
    b->data = dsp_xrealloc(b->data, cap);
    b->cap = cap;
}

void dsp_buf_append(dsp_buf *b, const void *data, size_t len)
{
    dsp_buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void dsp_buf_append_str(dsp_buf *b, const char *s) { dsp_buf_append(b, s, strlen(s)); }

void dsp_buf_append_char(dsp_buf *b, char c)
{
    dsp_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void dsp_buf_printf(dsp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    dsp_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dsp_buf_reset(dsp_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void dsp_buf_free(dsp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *dsp_buf_detach(dsp_buf *b, size_t *len)
{
    char *d = b->data;
    if (!d)
        d = dsp_xcalloc(1, 1);
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
