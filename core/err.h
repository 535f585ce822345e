/*
 * err.h - status codes and the caller-owned error struct.
 *
 * Every fallible function in DSpark returns a dsp_status and, on failure,
 * fills a dsp_err supplied by the caller with a message that names the
 * object, key, byte offset or option at fault. The struct is fixed-size so
 * that filling it never allocates and never fails.
 */
#ifndef DSP_ERR_H
#define DSP_ERR_H

#include <stdarg.h>

typedef enum {
    DSP_OK = 0,
    DSP_ENOTFOUND,  /* object, key, file or job does not exist */
    DSP_EPRECOND,   /* conditional write lost: someone else won */
    DSP_ETRANSIENT, /* retriable: 5xx, SlowDown, timeout, reset, short body */
    DSP_EPERM,      /* permanent store error: auth, bad request, forbidden */
    DSP_EINVAL,     /* invalid argument, option, spec or key */
    DSP_EIO,        /* local I/O error */
    DSP_ECORRUPT,   /* corrupt input: truncated stream, broken framing */
    DSP_ENOMEM,
    DSP_ECANCELLED, /* job cancelled or worker asked to stop */
    DSP_EUNSUPPORTED /* the store or build lacks a required feature */
} dsp_status;

#define DSP_ERR_MSG_MAX 1024

typedef struct {
    dsp_status code;
    char msg[DSP_ERR_MSG_MAX];
} dsp_err;

/* Set code and a printf-style message; returns code so callers can write
 * `return dsp_err_set(err, DSP_EINVAL, "...")`. err may be NULL. */
dsp_status dsp_err_set(dsp_err *err, dsp_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
dsp_status dsp_err_setv(dsp_err *err, dsp_status code, const char *fmt, va_list ap);

/* Prefix the existing message with more context ("reading part-3: <old>"). */
void dsp_err_prefix(dsp_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void dsp_err_clear(dsp_err *err);

/* Short lower-case name of a status, for logs and JSON ("not_found"). */
const char *dsp_status_name(dsp_status code);

#endif
