/*
 * test_s3_rgw.c - the S3 backend against a real server (Ceph RGW started by
 * tests/run.sh or scripts/rgw-up.sh). Every case skips unless
 * AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET are set, and works under its
 * own unique prefix.
 *
 * It covers what the shared conformance suite does not. That is
 * authentication failures and their messages, secrets kept out of logs,
 * and the "re-read and decide" path of conditional PUTs. It also covers
 * multipart upload and abort at scale, and keys with special characters
 * going through LIST and then GET.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "storage/s3_impl.h"
#include "storage/s3_sigv4.h"
#include "storage/store.h"
#include "test.h"

#define MIB (1024u * 1024u)

static char uri[512];

/* Open a store under a fresh prefix; NULL (and the case skips) when no S3
 * server is configured. */
static dsp_store *open_store(const char *faults)
{
    const char *endpoint = getenv("AWS_ENDPOINT_URL");
    const char *bucket = getenv("DSPARK_TEST_S3_BUCKET");
    if (!endpoint || !*endpoint || !bucket || !*bucket)
        return NULL;
    /* Never fall back to the real instance metadata address from a test. */
    if (!getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    snprintf(uri, sizeof uri, "s3://%s/dsp-s3-test-%d-%016llx", bucket, (int)getpid(),
             (unsigned long long)dsp_rand64());
    dsp_store_config cfg = {.faults = faults};
    dsp_store *s = NULL;
    dsp_err err;
    if (dsp_store_open(uri, &cfg, &s, &err) != DSP_OK) {
        fprintf(stderr, "  open %s failed: %s\n", uri, err.msg);
        return NULL;
    }
    /* Short backoff so fault cases finish in seconds. */
    s->retry.base_ms = 5;
    s->retry.cap_ms = 50;
    return s;
}

/* Delete everything under the store's prefix. */
static void wipe(dsp_store *s)
{
    dsp_list_page all;
    dsp_err err;
    if (dsp_store_list_all(s, "", NULL, &all, &err) == DSP_OK) {
        const char **keys = dsp_xcalloc(all.n + 1, sizeof *keys);
        for (size_t i = 0; i < all.n; i++)
            keys[i] = all.items[i].key;
        if (all.n)
            dsp_store_delete(s, keys, all.n, &err);
        free(keys);
        dsp_list_page_free(&all);
    }
}

static int have_s3(void)
{
    const char *e = getenv("AWS_ENDPOINT_URL"), *b = getenv("DSPARK_TEST_S3_BUCKET");
    return e && *e && b && *b;
}

/* ---- capturing stderr ---- */

typedef struct {
    int saved;
    char path[64];
} capture;

static void capture_start(capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/dsp-s3-log-%d.txt", (int)getpid());
    fflush(stderr);
    c->saved = dup(2);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
}

static void capture_stop(capture *c, dsp_buf *out)
{
    dsp_err err;
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    dsp_read_file(c->path, out, &err);
    unlink(c->path);
    if (!out->data)
        dsp_buf_append_str(out, "");
}

/* ---- cases ---- */

static void test_wrong_secret_fails_fast(void)
{
    if (!have_s3())
        SKIP("AWS_ENDPOINT_URL or DSPARK_TEST_S3_BUCKET not set");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    REQUIRE(secret != NULL);
    char *good = dsp_xstrdup(secret);
    const char *wrong = "wrongSecretValue0000000000000000000000000";
    setenv("AWS_SECRET_ACCESS_KEY", wrong, 1);
    dsp_log_set_level(DSP_LOG_DEBUG);

    capture cap;
    dsp_buf log = DSP_BUF_INIT;
    capture_start(&cap);
    dsp_store *s = open_store(NULL);
    dsp_err err;
    memset(&err, 0, sizeof err);
    dsp_status st = DSP_OK;
    int64_t t0 = dsp_mono_ms(), elapsed = 0;
    dsp_store_stats stats = {0};
    if (s) {
        st = dsp_store_put(s, "auth/probe.txt", "x", 1, NULL, NULL, &err);
        elapsed = dsp_mono_ms() - t0;
        dsp_store_get_stats(s, &stats);
        dsp_store_close(s);
    }
    capture_stop(&cap, &log);
    dsp_log_set_level(DSP_LOG_INFO);
    setenv("AWS_SECRET_ACCESS_KEY", good, 1);

    REQUIRE(s != NULL);
    CHECK_EQ_INT(st, DSP_EPERM);
    CHECKF(elapsed < 3000, "took %lld ms", (long long)elapsed);
    CHECK_EQ_INT(stats.retries, 0);
    CHECKF(strstr(err.msg, "SignatureDoesNotMatch") != NULL, "%s", err.msg);
    CHECKF(strstr(err.msg, "check the secret access key") != NULL, "%s", err.msg);
    CHECKF(strstr(err.msg, "auth/probe.txt") != NULL, "%s", err.msg);
    CHECKF(strstr(err.msg, getenv("DSPARK_TEST_S3_BUCKET")) != NULL, "%s", err.msg);
    CHECKF(strstr(err.msg, "put") != NULL, "%s", err.msg);
    CHECK(strstr(err.msg, wrong) == NULL);
    CHECK(strstr(log.data, "event=retry ") == NULL);
    CHECK(strstr(log.data, wrong) == NULL);
    CHECK(strstr(log.data, good) == NULL);
    /* The debug run did log the request, so the checks above saw real output. */
    CHECK(strstr(log.data, "event=s3_request") != NULL);
    CHECK(strstr(log.data, "status=403") != NULL);
    free(good);
    dsp_buf_free(&log);
}

static void test_secret_absent_from_debug_log(void)
{
    if (!have_s3())
        SKIP("AWS_ENDPOINT_URL or DSPARK_TEST_S3_BUCKET not set");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    REQUIRE(secret != NULL);
    setenv("AWS_SESSION_TOKEN", "", 1);
    dsp_log_set_level(DSP_LOG_DEBUG);

    capture cap;
    dsp_buf log = DSP_BUF_INIT, body = DSP_BUF_INIT;
    capture_start(&cap);
    /* Injected 503s make retries (and their log lines) happen too. */
    dsp_store *s = open_store("op=get,error=503,rate=0.5,seed=3");
    dsp_err err;
    dsp_status put_st = DSP_EIO, get_st = DSP_EIO, miss_st = DSP_OK;
    if (s) {
        put_st = dsp_store_put(s, "log/a.txt", "hello", 5, NULL, NULL, &err);
        get_st = dsp_store_get(s, "log/a.txt", 0, -1, &body, NULL, &err);
        miss_st = dsp_store_get(s, "log/missing.txt", 0, -1, &body, NULL, &err);
        wipe(s);
        dsp_store_close(s);
    }
    capture_stop(&cap, &log);
    dsp_log_set_level(DSP_LOG_INFO);
    unsetenv("AWS_SESSION_TOKEN");

    REQUIRE(s != NULL);
    CHECK_EQ_INT(put_st, DSP_OK);
    CHECK_EQ_INT(get_st, DSP_OK);
    CHECK_EQ_INT(miss_st, DSP_ENOTFOUND);
    CHECK(strstr(log.data, "event=s3_request") != NULL);
    /* Requests after the first reuse the pooled connection. */
    CHECK(strstr(log.data, "new_connections=0") != NULL);
    CHECK(strstr(log.data, secret) == NULL);
    CHECK(strstr(log.data, "Signature=") == NULL);
    CHECK(strstr(log.data, "Authorization") == NULL);
    CHECK(strstr(err.msg, secret) == NULL);
    dsp_buf_free(&log);
    dsp_buf_free(&body);
}

static void test_if_match_stale_etag(void)
{
    dsp_store *s = open_store(NULL);
    if (!s)
        SKIP("no S3 server configured");
    dsp_obj_info v1, v2, v3;
    dsp_err err;
    REQUIRE(dsp_store_put(s, "cas/k", "one", 3, NULL, &v1, &err) == DSP_OK);

    dsp_put_opts swap = {DSP_PUT_IF_MATCH, v1.etag, NULL};
    CHECK_EQ_INT(dsp_store_put(s, "cas/k", "two", 3, &swap, &v2, &err), DSP_OK);
    CHECK(strcmp(v1.etag, v2.etag) != 0);

    /* v1's ETag is stale now. */
    CHECK_EQ_INT(dsp_store_put(s, "cas/k", "three", 5, &swap, &v3, &err), DSP_EPRECOND);

    /* A quoted ETag works the same as a bare one. */
    char quoted[DSP_ETAG_MAX + 2];
    snprintf(quoted, sizeof quoted, "\"%s\"", v2.etag);
    dsp_put_opts swap_quoted = {DSP_PUT_IF_MATCH, quoted, NULL};
    CHECK_EQ_INT(dsp_store_put(s, "cas/k", "four", 4, &swap_quoted, &v3, &err), DSP_OK);

    dsp_put_opts create = {DSP_PUT_IF_ABSENT, NULL, NULL};
    CHECK_EQ_INT(dsp_store_put(s, "cas/k", "five", 4, &create, NULL, &err), DSP_EPRECOND);
    CHECK_EQ_INT(dsp_store_put(s, "cas/new", "six", 3, &create, NULL, &err), DSP_OK);

    dsp_put_opts swap_missing = {DSP_PUT_IF_MATCH, v3.etag, NULL};
    CHECK_EQ_INT(dsp_store_put(s, "cas/absent", "seven", 5, &swap_missing, NULL, &err),
                 DSP_ENOTFOUND);

    dsp_buf body = DSP_BUF_INIT;
    CHECK_EQ_INT(dsp_store_get(s, "cas/k", 0, -1, &body, NULL, &err), DSP_OK);
    CHECK_EQ_INT(body.len, 4);
    CHECK(memcmp(body.data, "four", 4) == 0);
    dsp_buf_free(&body);
    wipe(s);
    dsp_store_close(s);
}

static void test_cput500_rereads_and_decides(void)
{
    dsp_store *s = open_store("op=cput,error=cput500,rate=1");
    if (!s)
        SKIP("no S3 server configured");
    dsp_err err;
    dsp_obj_info info, seen;
    char md5[33];

    dsp_put_opts create = {DSP_PUT_IF_ABSENT, NULL, NULL};
    dsp_status st = dsp_store_put(s, "race/lease", "attempt-1", 9, &create, &info, &err);
    CHECKF(st == DSP_OK, "%s", err.msg);
    dsp_md5_hex("attempt-1", 9, md5);
    CHECK_EQ_STR(info.etag, md5);

    /* Another writer's create-only PUT on the same key loses. */
    st = dsp_store_put(s, "race/lease", "attempt-2", 9, &create, NULL, &err);
    CHECK_EQ_INT(st, DSP_EPRECOND);

    dsp_put_opts swap = {DSP_PUT_IF_MATCH, info.etag, NULL};
    st = dsp_store_put(s, "race/lease", "attempt-3", 9, &swap, &info, &err);
    CHECKF(st == DSP_OK, "%s", err.msg);
    CHECK_EQ_INT(dsp_store_head(s, "race/lease", &seen, &err), DSP_OK);
    CHECK_EQ_STR(seen.etag, info.etag);

    /* The ETag of attempt-1 is stale, so the swap fails even though every
     * response is a 500. */
    dsp_put_opts stale = {DSP_PUT_IF_MATCH, md5, NULL};
    CHECK_EQ_INT(dsp_store_put(s, "race/lease", "attempt-4", 9, &stale, NULL, &err), DSP_EPRECOND);
    /* Identical bodies have identical ETags, so only the write id shows
     * the second create-only PUT that it did not win. */
    CHECK_EQ_INT(dsp_store_put(s, "race/same", "same", 4, &create, NULL, &err), DSP_OK);
    CHECK_EQ_INT(dsp_store_put(s, "race/same", "same", 4, &create, NULL, &err), DSP_EPRECOND);
    CHECK(dsp_fault_count(s->faults) >= 5);
    wipe(s);
    dsp_store_close(s);
}

static void fill_pattern(char *buf, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
}

/* ListMultipartUploads under the store's prefix: number of open uploads. */
static int count_open_uploads(dsp_store *store, const char *key)
{
    dsp_s3_store *s = (dsp_s3_store *)store;
    char *full = dsp_s3_full_key(s, key);
    const char *names[] = {"uploads", "prefix"};
    const char *values[] = {"", full};
    dsp_buf q = DSP_BUF_INIT;
    dsp_sigv4_query(&q, names, values, 2);
    dsp_s3_req r;
    dsp_err err;
    dsp_s3_req_init(&r, "list multipart uploads", DSP_FOP_LIST, NULL, "GET", NULL);
    r.query = q.data;
    int n = -1;
    if (dsp_s3_req_run(s, &r, &err) == DSP_OK) {
        n = 0;
        const char *pos = r.resp.data, *end = r.resp.data + r.resp.len, *vs, *ve;
        while (r.resp.len && dsp_s3_xml_next(&pos, end, "Upload", &vs, &ve))
            n++;
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    dsp_s3_req_free(&r);
    dsp_buf_free(&q);
    free(full);
    return n;
}

static void test_multipart_100mib_round_trip(void)
{
    dsp_store *s = open_store(NULL);
    if (!s)
        SKIP("no S3 server configured");
    const size_t total = 100 * MIB, step = MIB;
    char *chunk = dsp_xmalloc(step), *back = dsp_xmalloc(step);
    dsp_sha256 *h_in = dsp_sha256_new(), *h_out = dsp_sha256_new();
    char sum_in[65], sum_out[65];
    dsp_err err;

    dsp_writer *w = NULL;
    dsp_writer_opts wo = {.part_size = 8 * MIB, .parallel = 4};
    REQUIRE(dsp_store_writer_open(s, "big/object.bin", &wo, &w, &err) == DSP_OK);
    int ok = 1;
    for (size_t off = 0; off < total && ok; off += step) {
        fill_pattern(chunk, step, off / step);
        dsp_sha256_update(h_in, chunk, step);
        ok = dsp_writer_write(w, chunk, step, &err) == DSP_OK;
    }
    CHECKF(ok, "%s", err.msg);
    /* Parts were uploaded while writing went on, not all at close. */
    dsp_store_stats mid;
    dsp_store_get_stats(s, &mid);
    CHECKF(mid.mpu_parts >= 8, "parts sent before close: %llu", (unsigned long long)mid.mpu_parts);
    /* The upload thread finishes the 12 full parts while the caller makes
     * no call at all. */
    for (int i = 0; i < 100 && mid.bytes_out < 96 * MIB; i++) {
        dsp_sleep_ms(100);
        dsp_store_get_stats(s, &mid);
    }
    CHECKF(mid.bytes_out >= 96 * MIB, "bytes uploaded before close: %llu",
           (unsigned long long)mid.bytes_out);
    dsp_obj_info info;
    capture cap;
    dsp_buf log = DSP_BUF_INIT;
    dsp_log_set_level(DSP_LOG_DEBUG);
    capture_start(&cap);
    dsp_status st = dsp_writer_close(w, &info, &err);
    capture_stop(&cap, &log);
    dsp_log_set_level(DSP_LOG_INFO);
    CHECKF(st == DSP_OK, "%s", err.msg);
    /* Never more than the 4 allowed parts uploading at once. */
    const char *in_flight = strstr(log.data, "parts=13 max_in_flight=");
    CHECKF(in_flight != NULL, "%s", log.data);
    if (in_flight) {
        int max = atoi(in_flight + strlen("parts=13 max_in_flight="));
        CHECKF(max >= 1 && max <= 4, "max_in_flight=%d", max);
    }
    dsp_buf_free(&log);
    dsp_sha256_final_hex(h_in, sum_in);
    CHECK_EQ_INT(info.size, total);
    CHECKF(strstr(info.etag, "-13") != NULL, "etag %s", info.etag);

    dsp_store_stats stats;
    dsp_store_get_stats(s, &stats);
    CHECK_EQ_INT(stats.mpu_parts, 13);

    dsp_reader *rd = NULL;
    dsp_reader_opts ro = {.chunk_size = 8 * MIB, .readahead = 4};
    REQUIRE(dsp_store_reader_open(s, "big/object.bin", 0, -1, &ro, &rd, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_reader_info(rd)->size, total);
    size_t got = 0, sum = 0;
    do {
        st = dsp_reader_read(rd, back, step, &got, &err);
        if (st != DSP_OK)
            break;
        dsp_sha256_update(h_out, back, got);
        sum += got;
    } while (got);
    CHECKF(st == DSP_OK, "%s", err.msg);
    dsp_reader_close(rd);
    dsp_sha256_final_hex(h_out, sum_out);
    CHECK_EQ_INT(sum, total);
    CHECK_EQ_STR(sum_out, sum_in);
    CHECK_EQ_INT(count_open_uploads(s, "big/"), 0);

    free(chunk);
    free(back);
    wipe(s);
    dsp_store_close(s);
}

static void test_aborted_upload_leaves_nothing(void)
{
    dsp_store *s = open_store(NULL);
    if (!s)
        SKIP("no S3 server configured");
    char *chunk = dsp_xmalloc(MIB);
    dsp_err err;
    dsp_writer *w = NULL;
    dsp_writer_opts wo = {.part_size = 5 * MIB, .parallel = 3};
    REQUIRE(dsp_store_writer_open(s, "abort/object.bin", &wo, &w, &err) == DSP_OK);
    for (int i = 0; i < 23; i++) {
        fill_pattern(chunk, MIB, (uint64_t)i);
        CHECK_EQ_INT(dsp_writer_write(w, chunk, MIB, &err), DSP_OK);
    }
    dsp_store_stats stats;
    dsp_store_get_stats(s, &stats);
    CHECK(stats.mpu_parts >= 3); /* a multipart upload really was open */
    dsp_writer_abort(w);

    dsp_obj_info info;
    CHECK_EQ_INT(dsp_store_head(s, "abort/object.bin", &info, &err), DSP_ENOTFOUND);
    CHECK_EQ_INT(count_open_uploads(s, "abort/"), 0);

    /* A part failing for good aborts the upload from close as well. */
    dsp_store *f = NULL;
    dsp_store_config cfg = {.faults = "op=mpu,error=403,rate=1"};
    char furi[600];
    snprintf(furi, sizeof furi, "%s", uri);
    REQUIRE(dsp_store_open(furi, &cfg, &f, &err) == DSP_OK);
    REQUIRE(dsp_store_writer_open(f, "abort/failed.bin", &wo, &w, &err) == DSP_OK);
    dsp_status st = DSP_OK;
    for (int i = 0; i < 12 && st == DSP_OK; i++)
        st = dsp_writer_write(w, chunk, MIB, &err);
    if (st == DSP_OK)
        st = dsp_writer_close(w, NULL, &err);
    else
        dsp_writer_abort(w);
    CHECK_EQ_INT(st, DSP_EPERM);
    CHECK_EQ_INT(dsp_store_head(s, "abort/failed.bin", &info, &err), DSP_ENOTFOUND);
    dsp_store_close(f);

    free(chunk);
    wipe(s);
    dsp_store_close(s);
}

static void test_special_keys_list_then_get(void)
{
    dsp_store *s = open_store(NULL);
    if (!s)
        SKIP("no S3 server configured");
    static const char *const keys[] = {
        "sp/a b.txt",         "sp/plus+sign",     "sp/percent%41%",  "sp/eq=sign&amp",
        "sp/colon:x;y",       "sp/tilde~",        "sp/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac",
        "sp/angle<>\"quote'", "sp/dir/sub/deep",  "sp/star*?#",      "sp/comma,at@$!",
        "sp/trailing ",       "sp/back\\slash",   "sp/\xf0\x9f\x98\x80",
    };
    const size_t n = sizeof keys / sizeof keys[0];
    dsp_err err;
    for (size_t i = 0; i < n; i++) {
        dsp_status st = dsp_store_put(s, keys[i], keys[i], strlen(keys[i]), NULL, NULL, &err);
        CHECKF(st == DSP_OK, "%s: %s", keys[i], err.msg);
    }

    dsp_list_page page;
    REQUIRE(dsp_store_list_all(s, "sp/", NULL, &page, &err) == DSP_OK);
    CHECK_EQ_INT(page.n, n);
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t j = 0; j < page.n; j++)
            found |= strcmp(page.items[j].key, keys[i]) == 0;
        CHECKF(found, "key %s missing from the listing", keys[i]);
    }
    dsp_buf body = DSP_BUF_INIT;
    for (size_t j = 0; j < page.n; j++) {
        const char *k = page.items[j].key;
        dsp_status st = dsp_store_get(s, k, 0, -1, &body, NULL, &err);
        CHECKF(st == DSP_OK, "%s: %s", k, err.msg);
        CHECKF(body.len == strlen(k) && memcmp(body.data, k, body.len) == 0, "body of %s", k);
    }

    /* Delimiter listing returns the directory as a common prefix. */
    dsp_list_page top;
    REQUIRE(dsp_store_list_page(s, "sp/", "/", NULL, 0, &top, &err) == DSP_OK);
    int has_dir = 0;
    for (size_t j = 0; j < top.nprefixes; j++)
        has_dir |= strcmp(top.prefixes[j], "sp/dir/") == 0;
    CHECK(has_dir);
    dsp_list_page_free(&top);
    dsp_list_page_free(&page);
    dsp_buf_free(&body);
    wipe(s);
    dsp_store_close(s);
}

static void test_ranges_and_empty_object(void)
{
    dsp_store *s = open_store(NULL);
    if (!s)
        SKIP("no S3 server configured");
    dsp_err err;
    dsp_buf b = DSP_BUF_INIT;
    dsp_obj_info info;
    REQUIRE(dsp_store_put(s, "r/five", "01234", 5, NULL, NULL, &err) == DSP_OK);
    REQUIRE(dsp_store_put(s, "r/empty", "", 0, NULL, NULL, &err) == DSP_OK);

    CHECK_EQ_INT(dsp_store_get(s, "r/five", 1, 3, &b, &info, &err), DSP_OK);
    CHECK_EQ_INT(b.len, 3);
    CHECK(memcmp(b.data, "123", 3) == 0);
    CHECK_EQ_INT(info.size, 5);
    CHECK_EQ_INT(dsp_store_get(s, "r/five", 3, 100, &b, NULL, &err), DSP_OK);
    CHECK_EQ_INT(b.len, 2);
    CHECK(memcmp(b.data, "34", 2) == 0);
    CHECK_EQ_INT(dsp_store_get(s, "r/five", 10, 4, &b, &info, &err), DSP_OK);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(info.size, 5);
    CHECK_EQ_INT(dsp_store_get(s, "r/empty", 0, -1, &b, &info, &err), DSP_OK);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(info.size, 0);
    CHECK_EQ_INT(dsp_store_get(s, "r/empty", 0, 10, &b, NULL, &err), DSP_OK);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(dsp_store_get(s, "r/none", 0, 10, &b, NULL, &err), DSP_ENOTFOUND);

    dsp_reader *rd = NULL;
    char buf[16];
    size_t got = 1;
    REQUIRE(dsp_store_reader_open(s, "r/empty", 0, -1, NULL, &rd, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_reader_read(rd, buf, sizeof buf, &got, &err), DSP_OK);
    CHECK_EQ_INT(got, 0);
    dsp_reader_close(rd);
    dsp_buf_free(&b);
    wipe(s);
    dsp_store_close(s);
}

static void test_short_bodies_retried(void)
{
    dsp_store *s = open_store("op=get,error=truncate,rate=0.5,seed=5");
    if (!s)
        SKIP("no S3 server configured");
    const size_t size = 3 * MIB + 17;
    char *data = dsp_xmalloc(size), *back = dsp_xmalloc(size);
    fill_pattern(data, size, 42);
    dsp_err err;
    REQUIRE(dsp_store_put(s, "short/obj", data, size, NULL, NULL, &err) == DSP_OK);

    dsp_buf b = DSP_BUF_INIT;
    for (int i = 0; i < 8; i++) {
        dsp_status st = dsp_store_get(s, "short/obj", 0, -1, &b, NULL, &err);
        CHECKF(st == DSP_OK, "%s", err.msg);
        CHECK_EQ_INT(b.len, size);
        if (b.len == size)
            CHECK(memcmp(b.data, data, size) == 0);
    }

    dsp_reader *rd = NULL;
    dsp_reader_opts ro = {.chunk_size = MIB / 2, .readahead = 3};
    REQUIRE(dsp_store_reader_open(s, "short/obj", 0, -1, &ro, &rd, &err) == DSP_OK);
    size_t total = 0, got = 0;
    dsp_status st;
    do {
        st = dsp_reader_read(rd, back + total, size - total, &got, &err);
        total += got;
    } while (st == DSP_OK && got && total < size);
    CHECKF(st == DSP_OK, "%s", err.msg);
    dsp_reader_close(rd);
    CHECK_EQ_INT(total, size);
    CHECK(memcmp(back, data, size) == 0);

    dsp_store_stats stats;
    dsp_store_get_stats(s, &stats);
    CHECK(stats.retries > 0);
    CHECK(dsp_fault_count(s->faults) > 0);
    free(data);
    free(back);
    dsp_buf_free(&b);
    wipe(s);
    dsp_store_close(s);
}

/* Parts that fail with 503 in the upload thread are retried there, and the
 * object still arrives whole. */
static void test_multipart_parts_retried(void)
{
    dsp_store *s = open_store("op=mpu,error=503,rate=0.3,seed=7");
    if (!s)
        SKIP("no S3 server configured");
    const size_t total = 40 * MIB;
    char *chunk = dsp_xmalloc(MIB);
    dsp_sha256 *h_in = dsp_sha256_new();
    char sum_in[65], sum_back[65];
    dsp_err err;
    dsp_writer *w = NULL;
    dsp_writer_opts wo = {.part_size = 5 * MIB, .parallel = 3};
    REQUIRE(dsp_store_writer_open(s, "retry/object.bin", &wo, &w, &err) == DSP_OK);
    dsp_status st = DSP_OK;
    for (size_t off = 0; off < total && st == DSP_OK; off += MIB) {
        fill_pattern(chunk, MIB, off / MIB);
        dsp_sha256_update(h_in, chunk, MIB);
        st = dsp_writer_write(w, chunk, MIB, &err);
    }
    CHECKF(st == DSP_OK, "%s", err.msg);
    dsp_obj_info info;
    if (st == DSP_OK)
        st = dsp_writer_close(w, &info, &err);
    else
        dsp_writer_abort(w);
    CHECKF(st == DSP_OK, "%s", err.msg);
    dsp_sha256_final_hex(h_in, sum_in);

    dsp_store_stats stats;
    dsp_store_get_stats(s, &stats);
    CHECKF(stats.retries > 0, "retries %llu", (unsigned long long)stats.retries);
    dsp_buf back = DSP_BUF_INIT;
    REQUIRE(dsp_store_get(s, "retry/object.bin", 0, -1, &back, NULL, &err) == DSP_OK);
    CHECK_EQ_INT(back.len, total);
    dsp_sha256_hex(back.data, back.len, sum_back);
    CHECK_EQ_STR(sum_back, sum_in);
    CHECK_EQ_INT(count_open_uploads(s, "retry/"), 0);
    dsp_buf_free(&back);
    free(chunk);
    wipe(s);
    dsp_store_close(s);
}

/* Lines that the upload thread logs (retries of parts) carry the log
 * context of the thread that wrote to the writer, and the retry's own
 * attempt number does not take the "attempt" key of the task. */
static void test_upload_thread_log_context(void)
{
    dsp_store *s = open_store("op=mpu,error=503,rate=0.5,seed=11");
    if (!s)
        SKIP("no S3 server configured");
    char *chunk = dsp_xmalloc(MIB);
    dsp_err err;
    dsp_writer *w = NULL;
    dsp_writer_opts wo = {.part_size = 5 * MIB, .parallel = 2};
    capture cap;
    dsp_buf log = DSP_BUF_INIT;

    dsp_log_context("job-ctx", "s3", "t00007", "a2-ctx");
    capture_start(&cap);
    dsp_status st = dsp_store_writer_open(s, "context/object.bin", &wo, &w, &err);
    for (size_t i = 0; i < 16 && st == DSP_OK; i++) {
        fill_pattern(chunk, MIB, i);
        st = dsp_writer_write(w, chunk, MIB, &err);
    }
    if (st == DSP_OK)
        st = dsp_writer_close(w, NULL, &err);
    else if (w)
        dsp_writer_abort(w);
    capture_stop(&cap, &log);
    dsp_log_context(NULL, NULL, NULL, NULL);
    CHECKF(st == DSP_OK, "%s", err.msg);

    size_t part_retries = 0, without_context = 0;
    for (char *line = log.data; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (strstr(line, "event=retry ") && strstr(line, "op=\"put part\"")) {
            part_retries++;
            if (!strstr(line, " job=job-ctx stage=s3 task=t00007 attempt=a2-ctx "))
                without_context++;
            CHECKF(strstr(line, " request_attempt=") != NULL, "%s", line);
            if (without_context == 1)
                CHECKF(0, "a part retry without the task's ids: %s", line);
        }
        line = end ? end + 1 : NULL;
    }
    CHECKF(part_retries > 0, "no part was retried; log:\n%s", log.data);
    CHECK_EQ_INT(without_context, 0);
    dsp_buf_free(&log);
    free(chunk);
    wipe(s);
    dsp_store_close(s);
}

/* PUT (policy_json non-NULL) or DELETE the bucket policy; 0 on success. */
static int set_bucket_policy(dsp_s3_store *s, const char *policy_json)
{
    dsp_s3_req r;
    dsp_err err;
    dsp_s3_req_init(&r, "bucket policy", DSP_FOP_PUT, NULL, policy_json ? "PUT" : "DELETE",
                    NULL);
    r.query = "policy=";
    if (policy_json) {
        r.body = policy_json;
        r.body_len = strlen(policy_json);
        dsp_s3_req_header(&r, "content-type", "application/json");
    }
    dsp_status st = dsp_s3_req_run(s, &r, &err);
    if (st != DSP_OK)
        fprintf(stderr, "  bucket policy %s: %s\n", policy_json ? "put" : "delete", err.msg);
    dsp_s3_req_free(&r);
    return st == DSP_OK ? 0 : -1;
}

/* A bucket policy that denies s3:DeleteObject under one prefix makes RGW
 * respond to DeleteObjects with a per-key AccessDenied. The batch must fail as
 * permanent, name that key, and still delete the other keys. */
static void test_delete_objects_per_key_error(void)
{
    dsp_store *store = open_store(NULL);
    if (!store)
        SKIP("AWS_ENDPOINT_URL or DSPARK_TEST_S3_BUCKET not set");
    dsp_s3_store *s = (dsp_s3_store *)store;
    dsp_err err;
    const char *keys[] = {"del/a", "locked/b", "del/c"};
    for (size_t i = 0; i < 3; i++)
        REQUIRE(dsp_store_put(store, keys[i], "x", 1, NULL, NULL, &err) == DSP_OK);

    char policy[1024];
    snprintf(policy, sizeof policy,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\","
             "\"Principal\":\"*\",\"Action\":\"s3:DeleteObject\","
             "\"Resource\":\"arn:aws:s3:::%s/%s/locked/*\"}]}",
             s->bucket, s->prefix);
    REQUIRE(set_bucket_policy(s, policy) == 0);

    dsp_status st = dsp_store_delete(store, keys, 3, &err);
    int removed = set_bucket_policy(s, NULL);

    CHECK_EQ_INT(st, DSP_EPERM);
    CHECKF(strstr(err.msg, "locked/b") != NULL, "message: %s", err.msg);
    CHECKF(strstr(err.msg, "AccessDenied") != NULL, "message: %s", err.msg);
    CHECKF(strstr(err.msg, "1 of 3 keys failed") != NULL, "message: %s", err.msg);
    dsp_obj_info info;
    CHECK_EQ_INT(dsp_store_head(store, "del/a", &info, &err), DSP_ENOTFOUND);
    CHECK_EQ_INT(dsp_store_head(store, "del/c", &info, &err), DSP_ENOTFOUND);
    CHECK_EQ_INT(dsp_store_head(store, "locked/b", &info, &err), DSP_OK);
    CHECK_EQ_INT(removed, 0);
    wipe(store);
    dsp_store_close(store);
}

TEST_MAIN({"wrong secret fails fast", test_wrong_secret_fails_fast},
          {"secret absent from debug log", test_secret_absent_from_debug_log},
          {"if-match stale etag", test_if_match_stale_etag},
          {"cput500 rereads and decides", test_cput500_rereads_and_decides},
          {"multipart 100 MiB round trip", test_multipart_100mib_round_trip},
          {"aborted upload leaves nothing", test_aborted_upload_leaves_nothing},
          {"multipart parts retried", test_multipart_parts_retried},
          {"upload thread log context", test_upload_thread_log_context},
          {"special keys list then get", test_special_keys_list_then_get},
          {"ranges and empty object", test_ranges_and_empty_object},
          {"short bodies retried", test_short_bodies_retried},
          {"delete objects per-key error", test_delete_objects_per_key_error})
