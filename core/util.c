/* util.c - see util.h. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static void oom(size_t n)
{
    fprintf(stderr, "dspark: out of memory allocating %zu bytes\n", n);
    abort();
}

void *dsp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *dsp_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *dsp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *dsp_xstrdup(const char *s)
{
    return dsp_xstrndup(s, strlen(s));
}

char *dsp_xstrndup(const char *s, size_t n)
{
    char *p = dsp_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *dsp_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return out;
}

int64_t dsp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dsp_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dsp_sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

double dsp_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void to_hex(const unsigned char *d, unsigned n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void digest_hex(const EVP_MD *md, const void *data, size_t len, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(data, len, d, &n, md, NULL);
    to_hex(d, n, out);
}

void dsp_sha256_hex(const void *data, size_t len, char out[65])
{
    digest_hex(EVP_sha256(), data, len, out);
}

void dsp_md5_hex(const void *data, size_t len, char out[33])
{
    digest_hex(EVP_md5(), data, len, out);
}

struct dsp_sha256 {
    EVP_MD_CTX *ctx;
};

dsp_sha256 *dsp_sha256_new(void)
{
    dsp_sha256 *h = dsp_xmalloc(sizeof *h);
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx)
        oom(sizeof(void *));
    EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
    return h;
}

void dsp_sha256_update(dsp_sha256 *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->ctx, data, len);
}

void dsp_sha256_final_hex(dsp_sha256 *h, char out[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(h->ctx, d, &n);
    to_hex(d, n, out);
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

uint64_t dsp_hash64(const void *data, size_t len, uint64_t seed)
{
    return XXH3_64bits_withSeed(data, len, seed);
}

static __thread uint64_t t_rng[2];
static __thread pid_t t_rng_pid; /* process that seeded t_rng */

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dsp_rand64(void)
{
    /* xoroshiro128+. A forked child inherits the parent's state, so the
     * generator is seeded again whenever the process id changes. Without
     * that, every child of one parent would draw the same ids. */
    pid_t pid = getpid();
    if (pid != t_rng_pid) {
        t_rng[0] = t_rng[1] = 0;
        t_rng_pid = pid;
    }
    if (!t_rng[0] && !t_rng[1]) {
        if (getrandom(t_rng, sizeof t_rng, 0) != (ssize_t)sizeof t_rng) {
            t_rng[0] = (uint64_t)dsp_now_ms() ^ ((uint64_t)getpid() << 32);
            t_rng[1] = (uint64_t)(uintptr_t)&t_rng ^ 0x9e3779b97f4a7c15ULL;
        }
        if (!t_rng[0] && !t_rng[1])
            t_rng[0] = 1;
    }
    uint64_t s0 = t_rng[0], s1 = t_rng[1];
    uint64_t r = s0 + s1;
    s1 ^= s0;
    t_rng[0] = rotl(s0, 24) ^ s1 ^ (s1 << 16);
    t_rng[1] = rotl(s1, 37);
    return r;
}

dsp_status dsp_read_file(const char *path, dsp_buf *b, dsp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dsp_err_set(err, errno == ENOENT ? DSP_ENOTFOUND : DSP_EIO,
                           "cannot open %s: %s", path, strerror(errno));
    dsp_buf_reset(b);
    for (;;) {
        dsp_buf_reserve(b, 65536);
        ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return dsp_err_set(err, DSP_EIO, "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        b->len += (size_t)n;
    }
    b->data[b->len] = '\0';
    close(fd);
    return DSP_OK;
}

dsp_status dsp_write_file_atomic(const char *path, const void *data, size_t len, dsp_err *err)
{
    char *tmp = dsp_xasprintf("%s.tmp.%d.%llx", path, (int)getpid(),
                              (unsigned long long)(dsp_rand64() & 0xffffffffULL));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        dsp_err_set(err, DSP_EIO, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return DSP_EIO;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    free(tmp);
    return DSP_OK;
fail:
    dsp_err_set(err, DSP_EIO, "cannot write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return DSP_EIO;
}

int64_t dsp_parse_size(const char *s)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) /* !(v >= 0) also catches NaN */
        return -1;
    while (*end == ' ')
        end++;
    double mul = 1;
    switch (tolower((unsigned char)*end)) {
    case '\0': break;
    case 'b': end--; break;
    case 'k': mul = 1024.0; break;
    case 'm': mul = 1024.0 * 1024; break;
    case 'g': mul = 1024.0 * 1024 * 1024; break;
    case 't': mul = 1024.0 * 1024 * 1024 * 1024; break;
    default: return -1;
    }
    if (*end) {
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            return -1;
    }
    v *= mul;
    if (v > (double)DSP_SIZE_MAX)
        return -2;
    return (int64_t)v;
}

const char *dsp_format_utc_ms(int64_t ms, char *buf, size_t size)
{
    time_t seconds = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = (int)(ms - (int64_t)seconds * 1000);
    struct tm tm;
    char date[32];

    if (!gmtime_r(&seconds, &tm) || !strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(buf, size, "%lld ms since the epoch", (long long)ms);
        return buf;
    }
    snprintf(buf, size, "%s.%03dZ", date, millis);
    return buf;
}

const char *dsp_format_bytes(double bytes, char *buf, size_t size)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f B", bytes);
    else
        snprintf(buf, size, "%.1f %s", bytes, units[u]);
    return buf;
}

char *dsp_escape_control(const char *s, int keep_newlines)
{
    dsp_buf b = DSP_BUF_INIT;
    char hex[5];

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == '\n' && keep_newlines)
            dsp_buf_append_char(&b, '\n');
        else if (c == '\n')
            dsp_buf_append(&b, "\\n", 2);
        else if (c == '\r')
            dsp_buf_append(&b, "\\r", 2);
        else if (c == '\t')
            dsp_buf_append(&b, "\\t", 2);
        else if (c < 0x20 || c == 0x7F) {
            snprintf(hex, sizeof hex, "\\x%02x", c);
            dsp_buf_append(&b, hex, 4);
        } else {
            dsp_buf_append_char(&b, (char)c);
        }
    }
    dsp_buf_append_char(&b, '\0');
    return b.data;
}

int dsp_has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return 1;
    return 0;
}
