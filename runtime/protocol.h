/*
 * protocol.h - the coordination objects of a job in the store, and the
 * conditional writes that keep them consistent.
 *
 * Layout under the store root (the job store):
 *   jobs/<job>/spec.json                     canonical spec (immutable)
 *   jobs/<job>/plan.json                     stages and tasks (immutable)
 *   jobs/<job>/leases/<stage>/<task>         lease of the running attempt
 *   jobs/<job>/leases/_publish               lease of the worker publishing
 *   jobs/<job>/commits/<stage>/<task>.json   commit manifest, first wins
 *   jobs/<job>/seals/<stage>.json            all winning commits of a stage
 *   jobs/<job>/errors/<stage>/<task>/<attempt>.json
 *   jobs/<job>/attempts/<stage>/<task>/<attempt>/...   task outputs
 *   jobs/<job>/state.json                    done, failed or cancelled
 *   active/<job>                             index of unfinished jobs
 *   outputs/<sha256 of output URI>           which job owns an output
 *
 * Every create-only or compare-and-swap write here re-reads the object when
 * the store returns "precondition failed" and counts the write as won when
 * the stored bytes equal ours. A store may apply a conditional PUT and then
 * fail the response (Ceph RGW can answer 500 to a raced conditional PUT),
 * and its retry then sees its own object; the re-read turns that into the
 * success it was. Bodies that must be told apart (leases) carry a unique
 * attempt id, so equal bytes always mean the same writer.
 */
#ifndef DSP_PROTOCOL_H
#define DSP_PROTOCOL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"

#define DSP_PROTO_SCHEMA_VERSION 1
#define DSP_PROTO_ID_MAX 96

/* Check that id is a valid job id: 1 to 64 characters of [A-Za-z0-9._-],
 * not starting with '.' or '-'. */
dsp_status dsp_proto_check_job_id(const char *id, dsp_err *err);

/* Keys (malloc'ed). */
char *dsp_proto_job_key(const char *job, const char *name);
char *dsp_proto_lease_key(const char *job, const char *stage, const char *task);
char *dsp_proto_commit_key(const char *job, const char *stage, const char *task);
char *dsp_proto_seal_key(const char *job, const char *stage);
char *dsp_proto_error_key(const char *job, const char *stage, const char *task,
                          const char *attempt);
char *dsp_proto_attempt_prefix(const char *job, const char *stage, const char *task,
                               const char *attempt);
char *dsp_proto_active_key(const char *job);

/* Coordination requests this process has made through the helpers below,
 * so commits can report them apart from the task's data requests. */
uint64_t dsp_proto_requests(void);
void dsp_proto_count(uint64_t n);

/* Read an object (counted). */
dsp_status dsp_proto_get(dsp_store *s, const char *key, dsp_buf *out, dsp_obj_info *info,
                         dsp_err *err);
/* Read and parse a JSON object; *out is freed by the caller. */
dsp_status dsp_proto_get_json(dsp_store *s, const char *key, cJSON **out, dsp_obj_info *info,
                              dsp_err *err);
/* Unconditional put (counted). */
dsp_status dsp_proto_put(dsp_store *s, const char *key, const char *body, size_t len,
                         dsp_obj_info *info, dsp_err *err);
/* Create-only put. DSP_EPRECOND when another body is already there. */
dsp_status dsp_proto_create(dsp_store *s, const char *key, const char *body, size_t len,
                            dsp_obj_info *info, dsp_err *err);
/* Compare-and-swap put on etag. DSP_EPRECOND when the object changed to
 * something other than body; DSP_ENOTFOUND when it is gone. */
dsp_status dsp_proto_swap(dsp_store *s, const char *key, const char *etag, const char *body,
                          size_t len, dsp_obj_info *info, dsp_err *err);
/* Delete keys (counted; missing keys are fine). */
dsp_status dsp_proto_delete(dsp_store *s, const char *const *keys, size_t n, dsp_err *err);
/* Delete every object under prefix. */
dsp_status dsp_proto_delete_prefix(dsp_store *s, const char *prefix, dsp_err *err);
/* List all keys under prefix (counted, one request per page). */
dsp_status dsp_proto_list(dsp_store *s, const char *prefix, dsp_list_page *out, dsp_err *err);

/*
 * Check that the store enforces conditional writes: create a scratch key
 * with If-None-Match: * twice; the second must fail with DSP_EPRECOND.
 * Returns DSP_EUNSUPPORTED with an explanation otherwise.
 */
dsp_status dsp_proto_probe_conditional(dsp_store *s, dsp_err *err);

/* A lease on a task (or on publishing, with task "_publish"). */
typedef struct {
    char stage[16];
    char task[32];
    char worker[DSP_PROTO_ID_MAX];
    char attempt[DSP_PROTO_ID_MAX];
    char etag[DSP_ETAG_MAX];
    int64_t started_ms;
    int64_t expires_ms;
    int speculative;        /* this is the second, speculative attempt */
    /* The speculative attempt added to a live lease, if any ("" when none). */
    char spec_worker[DSP_PROTO_ID_MAX];
    char spec_attempt[DSP_PROTO_ID_MAX];
    int64_t spec_started_ms;
} dsp_lease;

/* Parse a lease body; fields not present stay zero. */
dsp_status dsp_lease_parse(const char *body, size_t len, dsp_lease *out, dsp_err *err);

/*
 * Claim a task. With no current lease (current == NULL) the lease is
 * created with If-None-Match: *. With current set, it is an expired lease
 * taken over with If-Match on current->etag, or, when speculative is 1, a
 * live lease to which a speculative attempt is added (the primary holder
 * keeps renewing it). out receives the new lease. DSP_EPRECOND: someone
 * else won the claim.
 */
dsp_status dsp_lease_claim(dsp_store *s, const char *job, const char *stage, const char *task,
                           const char *worker, const char *attempt, int lease_seconds,
                           const dsp_lease *current, int speculative, dsp_lease *out,
                           dsp_err *err);
/* Extend a lease held by l->worker/l->attempt. A concurrent change that
 * keeps us the holder (a speculative claim) is merged and retried.
 * DSP_EPRECOND or DSP_ENOTFOUND: the lease was lost. */
dsp_status dsp_lease_renew(dsp_store *s, const char *job, dsp_lease *l, int lease_seconds,
                           dsp_err *err);
/* Delete the lease if it is still ours (best effort; leases only save work). */
void dsp_lease_release(dsp_store *s, const char *job, const dsp_lease *l);

#endif
