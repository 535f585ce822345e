/* err.c - see err.h. */
#include "err.h"

#include <stdio.h>
#include <string.h>

dsp_status dsp_err_setv(dsp_err *err, dsp_status code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

dsp_status dsp_err_set(dsp_err *err, dsp_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dsp_err_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void dsp_err_prefix(dsp_err *err, const char *fmt, ...)
{
    char prefix[DSP_ERR_MSG_MAX];
    char old[DSP_ERR_MSG_MAX];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Both parts fit the message size, so the result may be cut: that is
     * intended, a long error is still readable from its start. */
    size_t plen = strlen(prefix);
    if (plen > sizeof err->msg - 3)
        plen = sizeof err->msg - 3;
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    size_t room = sizeof err->msg - plen - 3;
    size_t olen = strnlen(old, room);
    memcpy(err->msg + plen + 2, old, olen);
    err->msg[plen + 2 + olen] = '\0';
}

void dsp_err_clear(dsp_err *err)
{
    if (err) {
        err->code = DSP_OK;
        err->msg[0] = '\0';
    }
}

const char *dsp_status_name(dsp_status code)
{
    switch (code) {
    case DSP_OK: return "ok";
    case DSP_ENOTFOUND: return "not_found";
    case DSP_EPRECOND: return "precondition_failed";
    case DSP_ETRANSIENT: return "transient";
    case DSP_EPERM: return "permanent";
    case DSP_EINVAL: return "invalid";
    case DSP_EIO: return "io";
    case DSP_ECORRUPT: return "corrupt";
    case DSP_ENOMEM: return "out_of_memory";
    case DSP_ECANCELLED: return "cancelled";
    case DSP_EUNSUPPORTED: return "unsupported";
    }
    return "unknown";
}
