/*
 * util.h - small helpers with no dependencies beyond libc and OpenSSL's
 * libcrypto: allocation that aborts on failure, clocks, hashing, and
 * whole-file I/O for local files.
 */
#ifndef DSP_UTIL_H
#define DSP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define DSP_VERSION "0.1.0"

void *dsp_xmalloc(size_t n);
void *dsp_xcalloc(size_t n, size_t size);
void *dsp_xrealloc(void *p, size_t n);
char *dsp_xstrdup(const char *s);
char *dsp_xstrndup(const char *s, size_t n);
char *dsp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall-clock milliseconds since the epoch, and a monotonic clock in ms. */
int64_t dsp_now_ms(void);
int64_t dsp_mono_ms(void);
void dsp_sleep_ms(int64_t ms);
/* CPU seconds used by this process (user + system). */
double dsp_cpu_seconds(void);

/* SHA-256 of data as 64 lower-case hex digits plus NUL (out >= 65 bytes). */
void dsp_sha256_hex(const void *data, size_t len, char out[65]);
/* Incremental SHA-256. */
typedef struct dsp_sha256 dsp_sha256;
dsp_sha256 *dsp_sha256_new(void);
void dsp_sha256_update(dsp_sha256 *h, const void *data, size_t len);
void dsp_sha256_final_hex(dsp_sha256 *h, char out[65]); /* also frees h */

/* MD5 as 32 hex digits (S3 ETags of single-part objects are the MD5). */
void dsp_md5_hex(const void *data, size_t len, char out[33]);

/* 64-bit non-cryptographic hash (xxh3), stable across platforms and runs. */
uint64_t dsp_hash64(const void *data, size_t len, uint64_t seed);

/* Uniform random 64-bit value from a thread-local generator seeded once
 * from the OS; used for jitter and ids, never for secrets. */
uint64_t dsp_rand64(void);

/* Read a whole local file into b (replacing its contents). */
dsp_status dsp_read_file(const char *path, dsp_buf *b, dsp_err *err);
/* Write data to path atomically (temporary file, fsync, rename). */
dsp_status dsp_write_file_atomic(const char *path, const void *data, size_t len, dsp_err *err);

/* Largest size that dsp_parse_size accepts, in bytes (about 8 EiB). */
#define DSP_SIZE_MAX 9000000000000000000LL

/* Parse sizes like "64MiB", "512k", "1G", "1000" (bytes). Returns -1 when
 * invalid and -2 when larger than DSP_SIZE_MAX. Suffixes are binary
 * (k = KiB) with or without "iB"/"B". */
int64_t dsp_parse_size(const char *s);
/* Format ms, milliseconds since the Unix epoch, as an ISO-8601 UTC time
 * such as "2026-12-05T06:14:36.038Z" into buf (25 bytes suffice), and
 * return buf. */
const char *dsp_format_utc_ms(int64_t ms, char *buf, size_t size);
/* Format a byte count as "12.3 MiB" into buf. */
const char *dsp_format_bytes(double bytes, char *buf, size_t size);
/* Return a copy of s, which the caller frees, for human-readable output.
 * Newline, carriage return and tab become \n, \r and \t. Other control
 * bytes (0x00-0x1F, ESC included, and DEL) become \xNN, so a name cannot
 * start a new line or send terminal escape codes. With keep_newlines set,
 * newlines stay as they are for a caller that indents continuation lines. */
char *dsp_escape_control(const char *s, int keep_newlines);
/* Return 1 when s contains a control byte (0x00-0x1F or DEL), else 0. */
int dsp_has_control(const char *s);

#endif
