/*
 * s3_stream.c - streaming writer (multipart upload) and reader (ranged GETs
 * with read-ahead) for the S3 backend.
 *
 * Writer: data is buffered up to part_size. An object that fits in one part
 * goes as a single PUT at close. A larger one becomes a multipart upload
 * with up to `parallel` parts in flight on one curl multi handle, which a
 * background thread drives, so parts upload while the caller fills the
 * next one. Part buffers take at most (parallel + 1) x part_size, because
 * the caller waits for a free slot before it hands over a full one. Each
 * part is retried on its own after a transient error. Any failure, and
 * dsp_writer_abort(), aborts the upload, so no partial object is visible.
 * Conditional writes never go through here because Ceph RGW ignores
 * conditions on CompleteMultipartUpload.
 *
 * Reader: a HEAD fixes size and ETag, then `readahead` ranged GETs stay in
 * flight and are delivered in order. Each GET carries If-Match with that
 * ETag, so an object replaced mid-read fails with DSP_EPRECOND instead of
 * mixing two versions. When the caller passes the size and ETag the job was
 * planned with, the reader uses them instead of a HEAD, and a 412 becomes
 * DSP_EINVAL naming both versions (one HEAD fetches the current one).
 *
 * Threads: only the writer's upload thread touches its curl multi handle
 * and the requests of slots in SLOT_BUSY. The caller and the thread share
 * the slot states, the part ETags and the first error under `lock`. The
 * thread logs with the log context (job, stage, task, attempt) of the
 * thread that started it.
 *
 * NOTE: reader transfers make progress only inside read calls, and a
 * retry's backoff sleep pauses the other transfers of the same writer or
 * reader.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "s3_impl.h"
#include "s3_sigv4.h"

#define S3_MIN_PART (5u * 1024 * 1024)
#define S3_DEFAULT_PART (8u * 1024 * 1024)
#define S3_MAX_PART (5ull * 1024 * 1024 * 1024)
#define S3_MAX_PARTS 10000
#define S3_DEFAULT_PARALLEL 4
#define S3_MAX_PARALLEL 64

/* ---- writer ---- */

/* IDLE: free for the caller. QUEUED: filled by the caller, waiting for the
 * upload thread to start it. BUSY: owned by the upload thread. */
typedef enum { SLOT_IDLE = 0, SLOT_QUEUED, SLOT_BUSY } slot_state;

typedef struct {
    dsp_s3_req req;
    dsp_buf data;
    int part_number;
    slot_state state;
    dsp_retry_state retry;
    dsp_buf query;
} s3_part;

typedef struct {
    dsp_writer base;
    dsp_s3_store *s;
    char *full;
    char *content_type;
    size_t part_size;
    int parallel;
    dsp_buf cur;
    uint64_t total;
    char *upload_id;
    CURLM *multi;
    s3_part *parts;
    int next_part;
    char (*etags)[DSP_ETAG_MAX]; /* indexed by part number */
    size_t etags_cap;
    int failed;
    dsp_err first_err;
    int max_in_flight; /* most parts uploading at once, for the debug log */

    pthread_mutex_t lock;
    pthread_cond_t changed; /* a slot went back to SLOT_IDLE, or the writer failed */
    pthread_t thread;
    int thread_running;
    int thread_stop;
    dsp_log_ctx log_ctx; /* the caller's, for the upload thread's lines */
} s3_writer;

/* Record the first error. The caller holds w->lock. */
static void writer_fail(s3_writer *w, const dsp_err *e)
{
    if (!w->failed)
        w->first_err = *e;
    w->failed = 1;
    pthread_cond_broadcast(&w->changed);
}

/* Give a BUSY slot back to the caller, failing the writer when e is set. */
static void writer_release_slot(s3_writer *w, s3_part *p, const dsp_err *e)
{
    pthread_mutex_lock(&w->lock);
    if (e)
        writer_fail(w, e);
    p->state = SLOT_IDLE;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

static int writer_failed(s3_writer *w)
{
    pthread_mutex_lock(&w->lock);
    int failed = w->failed;
    pthread_mutex_unlock(&w->lock);
    return failed;
}

/* Start an attempt of a BUSY slot's part on the multi handle. Upload
 * thread only. */
static void writer_start_part(s3_writer *w, s3_part *p)
{
    dsp_err e;
    for (;;) {
        dsp_status st = dsp_s3_req_start(w->s, &p->req, &e);
        if (st == DSP_OK && p->req.easy) {
            curl_multi_add_handle(w->multi, p->req.easy);
            pthread_mutex_lock(&w->lock);
            int busy = 0;
            for (int i = 0; i < w->parallel; i++)
                busy += w->parts[i].state == SLOT_BUSY;
            if (busy > w->max_in_flight)
                w->max_in_flight = busy;
            pthread_mutex_unlock(&w->lock);
            return;
        }
        /* An injected fault failed the attempt before it was sent. */
        char t[1200];
        if (!dsp_retry_again(&p->retry, &e, "put part", dsp_s3_target(w->s, w->full, t, sizeof t))) {
            writer_release_slot(w, p, &e);
            return;
        }
        atomic_fetch_add(&w->s->base.stats.retries, 1);
    }
}

/* Finish a transfer of a BUSY slot: store its ETag, retry it, or fail the
 * writer. Upload thread only. */
static void writer_part_done(s3_writer *w, s3_part *p, CURLcode rc)
{
    dsp_err e;
    curl_multi_remove_handle(w->multi, p->req.easy);
    dsp_status st = dsp_s3_req_finish(w->s, &p->req, rc, &e);
    if (st == DSP_OK) {
        if (!p->req.etag[0]) {
            dsp_err_set(&e, DSP_EPERM, "put part %d of %s: the response has no ETag",
                        p->part_number, w->full);
            writer_release_slot(w, p, &e);
            return;
        }
        pthread_mutex_lock(&w->lock);
        memcpy(w->etags[p->part_number], p->req.etag, DSP_ETAG_MAX);
        pthread_mutex_unlock(&w->lock);
        writer_release_slot(w, p, NULL);
        return;
    }
    char t[1200];
    dsp_err_prefix(&e, "part %d", p->part_number);
    if (!writer_failed(w) &&
        dsp_retry_again(&p->retry, &e, "put part", dsp_s3_target(w->s, w->full, t, sizeof t))) {
        atomic_fetch_add(&w->s->base.stats.retries, 1);
        writer_start_part(w, p);
        return;
    }
    writer_release_slot(w, p, &e);
}

/* Start queued parts, move transfers forward and wait up to 1 s for
 * activity or a wakeup. Upload thread only. */
static void writer_drive(s3_writer *w)
{
    int running = 0, left = 0;
    CURLMsg *m;

    for (int i = 0; i < w->parallel; i++) {
        s3_part *p = &w->parts[i];
        pthread_mutex_lock(&w->lock);
        int queued = p->state == SLOT_QUEUED;
        if (queued)
            p->state = SLOT_BUSY;
        pthread_mutex_unlock(&w->lock);
        if (queued)
            writer_start_part(w, p);
    }
    curl_multi_perform(w->multi, &running);
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        dsp_s3_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        for (int i = 0; i < w->parallel; i++) {
            if (&w->parts[i].req == r) {
                writer_part_done(w, &w->parts[i], m->data.result);
                break;
            }
        }
    }
    curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
}

static void *writer_thread_main(void *arg)
{
    s3_writer *w = arg;
    dsp_log_context_restore(&w->log_ctx);
    for (;;) {
        pthread_mutex_lock(&w->lock);
        int stop = w->thread_stop;
        pthread_mutex_unlock(&w->lock);
        if (stop)
            return NULL;
        writer_drive(w);
    }
}

/* Stop and join the upload thread. Transfers still in flight stay on the
 * multi handle, which the caller then owns. */
static void writer_stop_thread(s3_writer *w)
{
    if (!w->thread_running)
        return;
    pthread_mutex_lock(&w->lock);
    w->thread_stop = 1;
    pthread_mutex_unlock(&w->lock);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    w->thread_running = 0;
}

/* Wait until every handed-over part has finished or the writer failed.
 * The caller holds w->lock. */
static void writer_wait_idle(s3_writer *w)
{
    for (;;) {
        int pending = 0;
        for (int i = 0; i < w->parallel; i++)
            pending += w->parts[i].state != SLOT_IDLE;
        if (!pending || w->failed)
            return;
        pthread_cond_wait(&w->changed, &w->lock);
    }
}

static dsp_status writer_create_upload(s3_writer *w, dsp_err *err)
{
    dsp_s3_req r;
    dsp_s3_req_init(&r, "create multipart upload", DSP_FOP_MPU, &w->s->base.stats.mpu_other,
                    "POST", w->full);
    r.query = "uploads=";
    if (w->content_type)
        dsp_s3_req_header(&r, "content-type", w->content_type);
    dsp_status st = dsp_s3_req_run(w->s, &r, err);
    if (st == DSP_OK) {
        char id[1024];
        if (!r.resp.len || !dsp_s3_xml_get(r.resp.data, r.resp.data + r.resp.len, "UploadId", id,
                                          sizeof id) || !id[0])
            st = dsp_err_set(err, DSP_EPERM, "create multipart upload %s: no UploadId in the "
                             "response", w->full);
        else
            w->upload_id = dsp_xstrdup(id);
    }
    dsp_s3_req_free(&r);
    return st;
}

/* Hand the filled buffer to a free slot for the upload thread, waiting
 * while every slot is in use. */
static dsp_status writer_flush_part(s3_writer *w, dsp_err *err)
{
    if (!w->upload_id) {
        dsp_status st = writer_create_upload(w, err);
        if (st != DSP_OK)
            return st;
    }
    if (!w->thread_running) {
        dsp_log_context_save(&w->log_ctx);
        int rc = pthread_create(&w->thread, NULL, writer_thread_main, w);
        if (rc != 0)
            return dsp_err_set(err, DSP_ENOMEM, "writer %s: cannot start the upload thread: %s",
                               w->full, strerror(rc));
        w->thread_running = 1;
    }
    if (w->next_part > S3_MAX_PARTS)
        return dsp_err_set(err, DSP_EINVAL, "writer %s: more than %d parts; use a larger "
                           "part_size", w->full, S3_MAX_PARTS);

    s3_part *p = NULL;
    pthread_mutex_lock(&w->lock);
    while (!w->failed) {
        for (int i = 0; i < w->parallel && !p; i++)
            if (w->parts[i].state == SLOT_IDLE)
                p = &w->parts[i];
        if (p)
            break;
        pthread_cond_wait(&w->changed, &w->lock);
    }
    if (w->failed) {
        *err = w->first_err;
        pthread_mutex_unlock(&w->lock);
        return err->code;
    }

    /* Grown under the lock because the upload thread stores ETags in it. */
    if ((size_t)w->next_part >= w->etags_cap) {
        size_t cap = w->etags_cap ? 2 * w->etags_cap : 64;
        w->etags = dsp_xrealloc(w->etags, cap * sizeof *w->etags);
        memset(w->etags + w->etags_cap, 0, (cap - w->etags_cap) * sizeof *w->etags);
        w->etags_cap = cap;
    }
    pthread_mutex_unlock(&w->lock);

    /* The slot is IDLE, so the upload thread does not touch it. */
    dsp_buf tmp = p->data;
    p->data = w->cur;
    w->cur = tmp;
    dsp_buf_reset(&w->cur);
    p->part_number = w->next_part++;

    char num[16];
    snprintf(num, sizeof num, "%d", p->part_number);
    const char *names[] = {"partNumber", "uploadId"};
    const char *values[] = {num, w->upload_id};
    dsp_sigv4_query(&p->query, names, values, 2);

    dsp_s3_req_free(&p->req);
    dsp_s3_req_init(&p->req, "put part", DSP_FOP_MPU, &w->s->base.stats.mpu_parts, "PUT", w->full);
    p->req.count_bytes = 1;
    p->req.query = p->query.data;
    p->req.body = p->data.data;
    p->req.body_len = p->data.len;
    dsp_retry_begin(&p->retry, &w->s->base.retry);
    pthread_mutex_lock(&w->lock);
    p->state = SLOT_QUEUED;
    pthread_mutex_unlock(&w->lock);
    curl_multi_wakeup(w->multi);

    /* Keep under 10,000 parts for very large objects: double the part size
     * every 1,000 parts. */
    if ((w->next_part - 1) % 1000 == 0 && w->part_size * 2 <= S3_MAX_PART)
        w->part_size *= 2;
    return DSP_OK;
}

/* DSP_OK, or the writer's first error copied into err. */
static dsp_status writer_check(s3_writer *w, dsp_err *err)
{
    pthread_mutex_lock(&w->lock);
    dsp_status st = DSP_OK;
    if (w->failed) {
        *err = w->first_err;
        st = err->code;
    }
    pthread_mutex_unlock(&w->lock);
    return st;
}

static dsp_status s3_writer_write(dsp_writer *base, const void *data, size_t len, dsp_err *err)
{
    s3_writer *w = (s3_writer *)base;
    const char *p = data;

    dsp_status st = writer_check(w, err);
    if (st != DSP_OK)
        return st;
    while (len) {
        if (w->cur.len >= w->part_size) {
            st = writer_flush_part(w, err);
            if (st != DSP_OK)
                return st;
        }
        size_t room = w->part_size - w->cur.len;
        size_t n = len < room ? len : room;
        if (w->cur.cap < w->part_size + 1)
            dsp_buf_reserve(&w->cur, w->part_size - w->cur.len);
        dsp_buf_append(&w->cur, p, n);
        p += n;
        len -= n;
        w->total += n;
    }
    return writer_check(w, err);
}

static void writer_abort_upload(s3_writer *w)
{
    writer_stop_thread(w);
    for (int i = 0; i < w->parallel; i++) {
        s3_part *p = &w->parts[i];
        if (p->state == SLOT_QUEUED)
            p->state = SLOT_IDLE;
        if (p->state == SLOT_BUSY && p->req.easy) {
            dsp_err e;
            curl_multi_remove_handle(w->multi, p->req.easy);
            dsp_s3_req_finish(w->s, &p->req, CURLE_ABORTED_BY_CALLBACK, &e);
            p->state = SLOT_IDLE;
        }
    }
    if (!w->upload_id)
        return;

    const char *names[] = {"uploadId"};
    const char *values[] = {w->upload_id};
    dsp_buf q = DSP_BUF_INIT;
    dsp_sigv4_query(&q, names, values, 1);
    dsp_s3_req r;
    dsp_err e;
    dsp_s3_req_init(&r, "abort multipart upload", DSP_FOP_MPU, &w->s->base.stats.mpu_other,
                    "DELETE", w->full);
    r.query = q.data;
    dsp_status st = dsp_s3_req_run(w->s, &r, &e);
    if (st != DSP_OK && st != DSP_ENOTFOUND) {
        DSP_ERROR("s3_abort_failed", "key=%s upload_id=%s error=%s", w->full, w->upload_id,
                  e.msg);
    } else {
        DSP_DEBUG("s3_upload_aborted", "key=%s upload_id=%s", w->full, w->upload_id);
    }
    dsp_s3_req_free(&r);
    dsp_buf_free(&q);
}

static void writer_free(s3_writer *w)
{
    writer_stop_thread(w);
    for (int i = 0; i < w->parallel; i++) {
        dsp_s3_req_free(&w->parts[i].req);
        dsp_buf_free(&w->parts[i].data);
        dsp_buf_free(&w->parts[i].query);
    }
    if (w->multi)
        curl_multi_cleanup(w->multi);
    free(w->parts);
    free(w->etags);
    dsp_buf_free(&w->cur);
    free(w->upload_id);
    free(w->content_type);
    free(w->full);
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static dsp_status writer_put_single(s3_writer *w, dsp_obj_info *info, dsp_err *err)
{
    dsp_s3_req r;
    char md5[33];
    dsp_s3_req_init(&r, "put", DSP_FOP_PUT, &w->s->base.stats.put, "PUT", w->full);
    r.count_bytes = 1;
    r.body = w->cur.data;
    r.body_len = w->cur.len;
    if (w->content_type)
        dsp_s3_req_header(&r, "content-type", w->content_type);
    dsp_status st = dsp_s3_req_run(w->s, &r, err);
    if (st == DSP_OK && info) {
        memset(info, 0, sizeof *info);
        info->size = w->cur.len;
        dsp_md5_hex(w->cur.data ? w->cur.data : "", w->cur.len, md5);
        snprintf(info->etag, sizeof info->etag, "%s", r.etag[0] ? r.etag : md5);
        info->mtime_ms = dsp_now_ms();
    }
    dsp_s3_req_free(&r);
    return st;
}

static dsp_status writer_complete(s3_writer *w, dsp_obj_info *info, dsp_err *err)
{
    dsp_buf body = DSP_BUF_INIT, q = DSP_BUF_INIT;
    int nparts = w->next_part - 1;
    dsp_retry_state rs;
    dsp_status st;
    char t[1200];
    int ambiguous = 0;

    dsp_buf_append_str(&body, "<CompleteMultipartUpload>");
    for (int i = 1; i <= nparts; i++)
        dsp_buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>", i,
                       w->etags[i]);
    dsp_buf_append_str(&body, "</CompleteMultipartUpload>");
    const char *names[] = {"uploadId"};
    const char *values[] = {w->upload_id};
    dsp_sigv4_query(&q, names, values, 1);

    dsp_s3_req r;
    dsp_s3_req_init(&r, "complete multipart upload", DSP_FOP_MPU, &w->s->base.stats.mpu_other,
                    "POST", w->full);
    r.query = q.data;
    r.body = body.data;
    r.body_len = body.len;
    dsp_s3_req_header(&r, "content-type", "application/xml");

    dsp_retry_begin(&rs, &w->s->base.retry);
    for (;;) {
        st = dsp_s3_req_attempt(w->s, &r, err);
        if (st == DSP_OK) {
            /* The 200 header can be followed by an <Error> body. */
            char code[128], msg[512];
            const char *b = r.resp.data, *e = r.resp.data + r.resp.len;
            if (r.resp.len && strstr(b, "<Error>") &&
                dsp_s3_xml_get(b, e, "Code", code, sizeof code)) {
                dsp_s3_xml_get(b, e, "Message", msg, sizeof msg);
                st = dsp_err_set(err, DSP_ETRANSIENT, "complete multipart upload %s: %s: %s",
                                 dsp_s3_target(w->s, w->full, t, sizeof t), code, msg);
            } else {
                dsp_s3_xml_get(b, e, "ETag", r.etag, sizeof r.etag);
                size_t n = strlen(r.etag);
                if (n >= 2 && r.etag[0] == '"') {
                    memmove(r.etag, r.etag + 1, n - 2);
                    r.etag[n - 2] = '\0';
                }
            }
        } else if (ambiguous && r.status == 404) {
            /* NoSuchUpload after an attempt whose response was lost: that
             * attempt most likely completed the upload. Accept it when the
             * object has our size and a multipart ETag with our part count.
             * NOTE: this cannot tell our upload from a concurrent writer's
             * upload of the same size and part count. */
            dsp_obj_info seen;
            dsp_err herr;
            char suffix[16];
            snprintf(suffix, sizeof suffix, "-%d", nparts);
            dsp_s3_req hr;
            dsp_s3_req_init(&hr, "head", DSP_FOP_HEAD, &w->s->base.stats.head, "HEAD", w->full);
            if (dsp_s3_req_run(w->s, &hr, &herr) == DSP_OK && hr.content_length == (int64_t)w->total) {
                snprintf(seen.etag, sizeof seen.etag, "%s", hr.etag);
                size_t n = strlen(seen.etag), k = strlen(suffix);
                if (n > k && strcmp(seen.etag + n - k, suffix) == 0) {
                    snprintf(r.etag, sizeof r.etag, "%s", seen.etag);
                    st = DSP_OK;
                }
            }
            dsp_s3_req_free(&hr);
        }
        if (st == DSP_OK)
            break;
        if (st == DSP_ETRANSIENT && r.reached_server)
            ambiguous = 1;
        if (!dsp_retry_again(&rs, err, "complete multipart upload",
                             dsp_s3_target(w->s, w->full, t, sizeof t)))
            break;
        atomic_fetch_add(&w->s->base.stats.retries, 1);
    }
    if (st == DSP_OK && !r.etag[0]) {
        /* Ceph RGW 16 returns an empty <ETag></ETag>, so read it with a HEAD. */
        dsp_s3_req hr;
        dsp_err herr;
        dsp_s3_req_init(&hr, "head", DSP_FOP_HEAD, &w->s->base.stats.head, "HEAD", w->full);
        if (dsp_s3_req_run(w->s, &hr, &herr) == DSP_OK)
            snprintf(r.etag, sizeof r.etag, "%s", hr.etag);
        dsp_s3_req_free(&hr);
    }
    DSP_DEBUG("s3_upload_complete", "key=%s parts=%d max_in_flight=%d bytes=%llu status=%s",
              w->full, nparts, w->max_in_flight, (unsigned long long)w->total,
              dsp_status_name(st));
    if (st == DSP_OK && info) {
        memset(info, 0, sizeof *info);
        info->size = w->total;
        snprintf(info->etag, sizeof info->etag, "%s", r.etag);
        info->mtime_ms = dsp_now_ms();
    }
    dsp_s3_req_free(&r);
    dsp_buf_free(&body);
    dsp_buf_free(&q);
    return st;
}

static dsp_status s3_writer_close(dsp_writer *base, dsp_obj_info *info, dsp_err *err)
{
    s3_writer *w = (s3_writer *)base;
    dsp_status st = writer_check(w, err);

    if (st != DSP_OK)
        goto out;
    if (!w->upload_id) {
        st = writer_put_single(w, info, err);
        goto out;
    }
    if (w->cur.len) {
        st = writer_flush_part(w, err);
        if (st != DSP_OK)
            goto out;
    }
    pthread_mutex_lock(&w->lock);
    writer_wait_idle(w);
    pthread_mutex_unlock(&w->lock);
    st = writer_check(w, err);
    if (st != DSP_OK)
        goto out;
    writer_stop_thread(w);
    st = writer_complete(w, info, err);

out:
    if (st != DSP_OK) {
        char t[1200];
        dsp_err_prefix(err, "writing %s", dsp_s3_target(w->s, w->full, t, sizeof t));
        writer_abort_upload(w);
    }
    writer_free(w);
    return st;
}

static void s3_writer_abort(dsp_writer *base)
{
    s3_writer *w = (s3_writer *)base;
    writer_abort_upload(w);
    writer_free(w);
}

static const struct dsp_writer_ops s3_writer_ops = {s3_writer_write, s3_writer_close,
                                                    s3_writer_abort};

dsp_status dsp_s3_writer_open(dsp_store *store, const char *key, const dsp_writer_opts *opts,
                              dsp_writer **out, dsp_err *err)
{
    dsp_s3_store *s = (dsp_s3_store *)store;
    s3_writer *w = dsp_xcalloc(1, sizeof *w);

    (void)err;
    w->base.ops = &s3_writer_ops;
    w->s = s;
    w->full = dsp_s3_full_key(s, key);
    w->content_type = opts && opts->content_type ? dsp_xstrdup(opts->content_type) : NULL;
    w->part_size = opts && opts->part_size ? opts->part_size : S3_DEFAULT_PART;
    if (w->part_size < S3_MIN_PART)
        w->part_size = S3_MIN_PART; /* S3 and RGW reject smaller non-final parts */
    w->parallel = opts && opts->parallel > 0 ? opts->parallel : S3_DEFAULT_PARALLEL;
    if (w->parallel > S3_MAX_PARALLEL)
        w->parallel = S3_MAX_PARALLEL;
    w->parts = dsp_xcalloc((size_t)w->parallel, sizeof *w->parts);
    w->next_part = 1;
    w->multi = curl_multi_init();
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->changed, NULL);
    *out = &w->base;
    return DSP_OK;
}

/* ---- reader ---- */

typedef enum { CHUNK_IDLE = 0, CHUNK_BUSY, CHUNK_DONE, CHUNK_FAILED } chunk_state;

typedef struct {
    dsp_s3_req req;
    dsp_buf data;
    uint64_t offset, len;
    chunk_state state;
    dsp_retry_state retry;
    dsp_err err;
    char range[64];
} s3_chunk;

typedef struct {
    dsp_reader base;
    dsp_s3_store *s;
    char *full;
    uint64_t start, end; /* byte range [start, end) of the object */
    size_t chunk_size;
    int readahead;
    uint64_t nchunks;
    uint64_t next_start; /* next chunk index to request */
    uint64_t cur;        /* chunk index being delivered */
    size_t cur_pos;
    s3_chunk *chunks;    /* chunk i lives in chunks[i % readahead] */
    CURLM *multi;
    char *key;           /* as the caller gave it, for messages */
    int planned;         /* info is the planned version, not a HEAD response */
} s3_reader;

static void reader_start_chunk(s3_reader *rd, s3_chunk *c)
{
    for (;;) {
        dsp_s3_req_start(rd->s, &c->req, &c->err);
        if (c->req.easy) {
            curl_multi_add_handle(rd->multi, c->req.easy);
            c->state = CHUNK_BUSY;
            return;
        }
        char t[1200];
        if (!dsp_retry_again(&c->retry, &c->err, "get", dsp_s3_target(rd->s, rd->full, t, sizeof t))) {
            c->state = CHUNK_FAILED;
            return;
        }
        atomic_fetch_add(&rd->s->base.stats.retries, 1);
    }
}

static void reader_request(s3_reader *rd, uint64_t index)
{
    s3_chunk *c = &rd->chunks[index % (uint64_t)rd->readahead];
    c->offset = rd->start + index * rd->chunk_size;
    c->len = rd->end - c->offset < rd->chunk_size ? rd->end - c->offset : rd->chunk_size;
    snprintf(c->range, sizeof c->range, "bytes=%llu-%llu", (unsigned long long)c->offset,
             (unsigned long long)(c->offset + c->len - 1));
    dsp_buf_reset(&c->data);
    dsp_buf_reserve(&c->data, c->len);
    dsp_s3_req_free(&c->req);
    dsp_s3_req_init(&c->req, "get", DSP_FOP_GET, &rd->s->base.stats.get, "GET", rd->full);
    c->req.count_bytes = 1;
    c->req.sink = &c->data;
    dsp_s3_req_header(&c->req, "range", c->range);
    if (rd->base.info.etag[0])
        dsp_s3_req_header(&c->req, "if-match", rd->base.info.etag);
    dsp_retry_begin(&c->retry, &rd->s->base.retry);
    reader_start_chunk(rd, c);
}

static void reader_chunk_done(s3_reader *rd, s3_chunk *c, CURLcode rc)
{
    curl_multi_remove_handle(rd->multi, c->req.easy);
    dsp_status st = dsp_s3_req_finish(rd->s, &c->req, rc, &c->err);
    if (st == DSP_OK && c->data.len != c->len)
        st = dsp_err_set(&c->err, DSP_ETRANSIENT, "get %s: range at byte %llu returned %zu "
                         "bytes, expected %llu", rd->full, (unsigned long long)c->offset,
                         c->data.len, (unsigned long long)c->len);
    if (st == DSP_OK) {
        c->state = CHUNK_DONE;
        return;
    }
    char t[1200];
    if (dsp_retry_again(&c->retry, &c->err, "get", dsp_s3_target(rd->s, rd->full, t, sizeof t))) {
        atomic_fetch_add(&rd->s->base.stats.retries, 1);
        dsp_buf_reset(&c->data);
        reader_start_chunk(rd, c);
        return;
    }
    if (st == DSP_EPRECOND)
        dsp_err_prefix(&c->err, "object changed while reading (ETag %s)", rd->base.info.etag);
    c->state = CHUNK_FAILED;
}

static void reader_drive(s3_reader *rd, int block)
{
    int running = 0, left = 0;
    CURLMsg *m;

    if (block)
        curl_multi_poll(rd->multi, NULL, 0, 1000, NULL);
    curl_multi_perform(rd->multi, &running);
    while ((m = curl_multi_info_read(rd->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        dsp_s3_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        for (int i = 0; i < rd->readahead; i++) {
            if (&rd->chunks[i].req == r) {
                reader_chunk_done(rd, &rd->chunks[i], m->data.result);
                break;
            }
        }
    }
}

/* A GET with the planned ETag as If-Match failed with 412: fetch the current
 * size and ETag for the message. `cause` is returned when the HEAD fails. */
static dsp_status reader_changed_error(s3_reader *rd, const dsp_err *cause, dsp_err *err)
{
    dsp_s3_req r;
    dsp_obj_info now = {0};

    dsp_s3_req_init(&r, "head", DSP_FOP_HEAD, &rd->s->base.stats.head, "HEAD", rd->full);
    dsp_status st = dsp_s3_req_run(rd->s, &r, err);
    if (st == DSP_OK) {
        now.size = r.content_length > 0 ? (uint64_t)r.content_length : 0;
        snprintf(now.etag, sizeof now.etag, "%s", r.etag);
        st = dsp_store_changed_error(&rd->s->base, rd->key, &now, &rd->base.info, err);
    } else {
        *err = *cause;
        st = err->code;
    }
    dsp_s3_req_free(&r);
    return st;
}

static dsp_status s3_reader_read(dsp_reader *base, void *buf, size_t cap, size_t *got, dsp_err *err)
{
    s3_reader *rd = (s3_reader *)base;
    char *outp = buf;

    *got = 0;
    while (*got < cap && rd->cur < rd->nchunks) {
        while (rd->next_start < rd->nchunks && rd->next_start < rd->cur + (uint64_t)rd->readahead)
            reader_request(rd, rd->next_start++);

        s3_chunk *c = &rd->chunks[rd->cur % (uint64_t)rd->readahead];
        while (c->state == CHUNK_BUSY)
            reader_drive(rd, 1);
        if (c->state == CHUNK_FAILED) {
            if (c->err.code == DSP_EPRECOND && rd->planned)
                return reader_changed_error(rd, &c->err, err);
            *err = c->err;
            return err->code;
        }
        size_t n = c->data.len - rd->cur_pos;
        if (n > cap - *got)
            n = cap - *got;
        memcpy(outp + *got, c->data.data + rd->cur_pos, n);
        *got += n;
        rd->cur_pos += n;
        if (rd->cur_pos == c->data.len) {
            c->state = CHUNK_IDLE;
            rd->cur++;
            rd->cur_pos = 0;
        }
    }
    if (rd->next_start > rd->cur)
        reader_drive(rd, 0);
    return DSP_OK;
}

static void s3_reader_close(dsp_reader *base)
{
    s3_reader *rd = (s3_reader *)base;
    for (int i = 0; i < rd->readahead; i++) {
        s3_chunk *c = &rd->chunks[i];
        if (c->state == CHUNK_BUSY) {
            dsp_err e;
            curl_multi_remove_handle(rd->multi, c->req.easy);
            dsp_s3_req_finish(rd->s, &c->req, CURLE_ABORTED_BY_CALLBACK, &e);
        }
        dsp_s3_req_free(&c->req);
        dsp_buf_free(&c->data);
    }
    if (rd->multi)
        curl_multi_cleanup(rd->multi);
    free(rd->chunks);
    free(rd->full);
    free(rd->key);
    free(rd);
}

static const struct dsp_reader_ops s3_reader_ops = {s3_reader_read, s3_reader_close};

dsp_status dsp_s3_reader_open(dsp_store *store, const char *key, uint64_t offset, int64_t length,
                              const dsp_reader_opts *opts, dsp_reader **out, dsp_err *err)
{
    dsp_s3_store *s = (dsp_s3_store *)store;
    s3_reader *rd = dsp_xcalloc(1, sizeof *rd);
    dsp_s3_req r;

    *out = NULL;
    rd->base.ops = &s3_reader_ops;
    rd->s = s;
    rd->full = dsp_s3_full_key(s, key);
    rd->key = dsp_xstrdup(key);

    /* The planned version replaces the HEAD when the range is not empty,
     * because then at least one GET carries its ETag as If-Match. */
    const dsp_obj_info *expect = opts ? opts->expect : NULL;
    if (expect && expect->etag[0] && offset < expect->size && length != 0) {
        rd->base.info = *expect;
        rd->base.info.mtime_ms = 0;
        rd->planned = 1;
    } else {
        dsp_s3_req_init(&r, "head", DSP_FOP_HEAD, &s->base.stats.head, "HEAD", rd->full);
        dsp_status st = dsp_s3_req_run(s, &r, err);
        if (st != DSP_OK) {
            dsp_s3_req_free(&r);
            free(rd->full);
            free(rd->key);
            free(rd);
            return st;
        }
        rd->base.info.size = r.content_length > 0 ? (uint64_t)r.content_length : 0;
        snprintf(rd->base.info.etag, sizeof rd->base.info.etag, "%s", r.etag);
        rd->base.info.mtime_ms = r.mtime_ms;
        dsp_s3_req_free(&r);
    }

    uint64_t size = rd->base.info.size;
    rd->start = offset < size ? offset : size;
    rd->end = size;
    if (length >= 0 && rd->start + (uint64_t)length < size)
        rd->end = rd->start + (uint64_t)length;
    rd->chunk_size = opts && opts->chunk_size ? opts->chunk_size : S3_DEFAULT_PART;
    rd->readahead = opts && opts->readahead > 0 ? opts->readahead : S3_DEFAULT_PARALLEL;
    if (rd->readahead > S3_MAX_PARALLEL)
        rd->readahead = S3_MAX_PARALLEL;
    rd->nchunks = (rd->end - rd->start + rd->chunk_size - 1) / rd->chunk_size;
    rd->chunks = dsp_xcalloc((size_t)rd->readahead, sizeof *rd->chunks);
    rd->multi = curl_multi_init();
    *out = &rd->base;
    return DSP_OK;
}
