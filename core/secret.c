/*
 * secret.c - the registry of credentials to mask (secret.h).
 */
#include "secret.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static pthread_mutex_t secret_lock = PTHREAD_MUTEX_INITIALIZER;
static char *secret_values[DSP_SECRET_MAX_COUNT];
static size_t secret_count;

void dsp_secret_add(const char *value)
{
    if (!value || strlen(value) < DSP_SECRET_MIN_LEN)
        return;
    pthread_mutex_lock(&secret_lock);
    for (size_t i = 0; i < secret_count; i++) {
        if (strcmp(secret_values[i], value) == 0) {
            pthread_mutex_unlock(&secret_lock);
            return;
        }
    }
    if (secret_count == DSP_SECRET_MAX_COUNT) {
        free(secret_values[0]);
        memmove(secret_values, secret_values + 1, (secret_count - 1) * sizeof *secret_values);
        secret_count--;
    }
    secret_values[secret_count++] = dsp_xstrdup(value);
    pthread_mutex_unlock(&secret_lock);
}

size_t dsp_secret_max_len(void)
{
    size_t max = 0;
    pthread_mutex_lock(&secret_lock);
    for (size_t i = 0; i < secret_count; i++) {
        size_t n = strlen(secret_values[i]);
        if (n > max)
            max = n;
    }
    pthread_mutex_unlock(&secret_lock);
    return max;
}

/* Replace every occurrence of secret in b with "***". */
static void secret_replace(dsp_buf *b, const char *secret)
{
    size_t n = strlen(secret);
    dsp_buf masked = DSP_BUF_INIT;
    const char *p = b->data, *end = b->data + b->len, *hit;

    while ((hit = memmem(p, (size_t)(end - p), secret, n)) != NULL) {
        dsp_buf_append(&masked, p, (size_t)(hit - p));
        dsp_buf_append_str(&masked, "***");
        p = hit + n;
    }
    if (p == b->data) {
        dsp_buf_free(&masked);
        return;
    }
    dsp_buf_append(&masked, p, (size_t)(end - p));
    dsp_buf_free(b);
    *b = masked;
}

/* Replace the longest end of b, of at least DSP_SECRET_MIN_LEN bytes,
 * that is the start of secret. */
static void secret_replace_cut(dsp_buf *b, const char *secret)
{
    size_t n = strlen(secret);
    size_t k = n - 1 < b->len ? n - 1 : b->len;

    for (; k >= DSP_SECRET_MIN_LEN; k--) {
        if (memcmp(b->data + b->len - k, secret, k) == 0) {
            b->len -= k;
            b->data[b->len] = '\0';
            dsp_buf_append_str(b, "***");
            return;
        }
    }
}

void dsp_secret_mask(dsp_buf *b)
{
    if (!b->data)
        return;
    pthread_mutex_lock(&secret_lock);
    for (size_t i = 0; i < secret_count; i++) {
        secret_replace(b, secret_values[i]);
        secret_replace_cut(b, secret_values[i]);
    }
    pthread_mutex_unlock(&secret_lock);
}
