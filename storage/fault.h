/*
 * fault.h - fault injection for every store backend.
 *
 * Enabled by DSPARK_FAULTS (or dsp_store_config.faults). Each backend calls
 * dsp_fault_pick() once per attempt of each request and turns the result
 * into the failure a real server or network would produce. So the retry and
 * "re-read and decide" paths run as they would against a real server.
 *
 * Spec: rules separated by ';', each a comma-separated list of
 *   op=get|head|put|cput|list|delete|copy|mpu|any (several joined with '+')
 *   error=503|500|reset|timeout|truncate|cput500|nocond|403|delay
 *   rate=0.2                  probability per attempt
 *   seed=N                    optional, for reproducible runs
 *   key=TEXT                  optional: the rule applies only to requests
 *                             whose key contains TEXT (GET requests only,
 *                             because only they pass their key)
 *   delay_ms=N                with error=delay: how long to wait (default
 *                             1000)
 * e.g. DSPARK_FAULTS="op=any,error=503,rate=0.2;op=get,error=reset,rate=0.01"
 *
 * cput500 performs the conditional PUT and then reports HTTP 500 (what
 * Ceph RGW 16 may answer to a conditional PUT that raced), so the caller
 * must re-read to learn whether it won. nocond makes conditional PUTs
 * behave like a store without conditional writes (the condition is
 * ignored), which `dspark doctor` and `dspark run` must detect. delay
 * sleeps delay_ms and then lets the request run (the later rules still
 * apply), which makes a stage slow without failing it.
 */
#ifndef DSP_FAULT_H
#define DSP_FAULT_H

#include "../core/err.h"

typedef struct dsp_fault dsp_fault;

typedef enum {
    DSP_FOP_GET = 0,
    DSP_FOP_HEAD,
    DSP_FOP_PUT,      /* unconditional PUT */
    DSP_FOP_CPUT,     /* conditional PUT */
    DSP_FOP_LIST,
    DSP_FOP_DELETE,
    DSP_FOP_COPY,
    DSP_FOP_MPU,      /* multipart create, part upload, complete, abort */
    DSP_FOP_COUNT
} dsp_fault_op;

typedef enum {
    DSP_FAULT_NONE = 0,
    DSP_FAULT_503,      /* return 503 SlowDown without sending the request */
    DSP_FAULT_500,      /* return 500 InternalError without sending it */
    DSP_FAULT_RESET,    /* connection reset before a response */
    DSP_FAULT_TIMEOUT,  /* request timed out */
    DSP_FAULT_TRUNCATE, /* send it, but cut the response body short */
    DSP_FAULT_CPUT500,  /* apply the conditional PUT, then return 500 */
    DSP_FAULT_NOCOND,   /* ignore the PUT's condition */
    DSP_FAULT_403,      /* return 403 AccessDenied (permanent) */
    DSP_FAULT_DELAY     /* sleep, then send the request; never returned by a pick */
} dsp_fault_kind;

dsp_status dsp_fault_parse(const char *spec, dsp_fault **out, dsp_err *err);
void dsp_fault_free(dsp_fault *f);
/* Pick the fault for one attempt. A NULL f never injects one. Safe to call
 * from several threads at once. */
dsp_fault_kind dsp_fault_pick(dsp_fault *f, dsp_fault_op op);
/* dsp_fault_pick for a request on `key`, so that rules with key= can
 * fire. A NULL key matches only rules without key=. */
dsp_fault_kind dsp_fault_pick_key(dsp_fault *f, dsp_fault_op op, const char *key);
const char *dsp_fault_kind_name(dsp_fault_kind k);
/* Injected faults so far, for tests and logs. */
unsigned long dsp_fault_count(const dsp_fault *f);

#endif
