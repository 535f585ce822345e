/*
 * test_store_conformance.c - one suite of store.h guarantees, run against
 * every backend: always against a local directory, and against S3 when
 * AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET are set. Each S3 case works
 * under its own unique prefix and deletes everything it wrote.
 *
 * The cases shorten the retry backoff through store_impl.h so the fault
 * workload finishes in seconds; the number of attempts stays the default.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "storage/store.h"
#include "storage/store_impl.h"
#include "test.h"

#define MIB (1024u * 1024u)

/* ---- opening a fresh store per case ------------------------------------ */

static char *g_local_dir;

/* Open a fresh, empty store of the given kind. Returns NULL with *skip set
 * and the reason in skip_reason when S3 is not configured or its backend is
 * not built yet. */
static char skip_reason[DSP_ERR_MSG_MAX];

static dsp_store *open_fresh(const char *kind, const char *faults, int *skip)
{
    dsp_store_config cfg = {.faults = faults};
    dsp_store *s = NULL;
    dsp_err err;
    char *uri;

    *skip = 0;
    if (!strcmp(kind, "local")) {
        char tmpl[] = "/tmp/dsp-conformance-XXXXXX";
        if (!mkdtemp(tmpl)) {
            perror("mkdtemp");
            return NULL;
        }
        free(g_local_dir);
        g_local_dir = dsp_xstrdup(tmpl);
        uri = dsp_xasprintf("%s/store", tmpl);
    } else {
        const char *endpoint = getenv("AWS_ENDPOINT_URL");
        const char *bucket = getenv("DSPARK_TEST_S3_BUCKET");
        if (!endpoint || !*endpoint || !bucket || !*bucket) {
            *skip = 1;
            snprintf(skip_reason, sizeof skip_reason,
                     "AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET are not set");
            return NULL;
        }
        uri = dsp_xasprintf("s3://%s/dsp-conformance-%d-%016llx", bucket, (int)getpid(),
                            (unsigned long long)dsp_rand64());
    }
    dsp_status rc = dsp_store_open(uri, &cfg, &s, &err);
    free(uri);
    if (rc == DSP_EUNSUPPORTED) {
        *skip = 1;
        snprintf(skip_reason, sizeof skip_reason, "%s", err.msg);
        return NULL;
    }
    if (rc != DSP_OK) {
        fprintf(stderr, "  open failed: %s\n", err.msg);
        return NULL;
    }
    s->retry.base_ms = 2;
    s->retry.cap_ms = 50;
    return s;
}

/* Delete every key the case left behind, then close the store. */
static void close_and_clean(dsp_store *s)
{
    dsp_list_page all;
    dsp_err err;

    if (!s)
        return;
    if (dsp_store_list_all(s, "", NULL, &all, &err) == DSP_OK) {
        const char **keys = dsp_xcalloc(all.n + 1, sizeof *keys);
        for (size_t i = 0; i < all.n; i++)
            keys[i] = all.items[i].key;
        if (all.n && dsp_store_delete(s, keys, all.n, &err) != DSP_OK)
            fprintf(stderr, "  cleanup failed: %s\n", err.msg);
        free(keys);
        dsp_list_page_free(&all);
    }
    dsp_store_close(s);
    if (g_local_dir) {
        char *cmd = dsp_xasprintf("rm -rf '%s'", g_local_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "  cannot remove %s\n", g_local_dir);
        free(cmd);
        free(g_local_dir);
        g_local_dir = NULL;
    }
}

static const char *g_kind;

#define WITH_STORE(s)                                                                \
    int skip_;                                                                       \
    dsp_store *s = open_fresh(g_kind, NULL, &skip_);                                 \
    if (skip_)                                                                       \
        SKIP("%s", skip_reason);                                    \
    REQUIRE(s != NULL)

/* ---- helpers ----------------------------------------------------------- */

static dsp_status put_str(dsp_store *s, const char *key, const char *value, dsp_obj_info *info)
{
    dsp_err err;
    dsp_status rc = dsp_store_put(s, key, value, strlen(value), NULL, info, &err);
    if (rc != DSP_OK)
        fprintf(stderr, "  put %s: %s\n", key, err.msg);
    return rc;
}

/* Byte i of the large test object: varies with position so a misplaced
 * chunk is caught. */
static unsigned char pattern_byte(uint64_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

typedef struct {
    dsp_store *s;
    char **keys;
    size_t from, to;
    int failures;
} put_job;

static void *put_range(void *arg)
{
    put_job *job = arg;
    for (size_t i = job->from; i < job->to; i++)
        if (put_str(job->s, job->keys[i], job->keys[i], NULL) != DSP_OK)
            job->failures++;
    return NULL;
}

/* Put n keys (each holding its own name) from 8 threads; returns failures. */
static int put_many(dsp_store *s, char **keys, size_t n)
{
    enum { THREADS = 8 };
    pthread_t threads[THREADS];
    put_job jobs[THREADS];
    int failures = 0;

    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (put_job){s, keys, n * t / THREADS, n * (t + 1) / THREADS, 0};
        pthread_create(&threads[t], NULL, put_range, &jobs[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        failures += jobs[t].failures;
    }
    return failures;
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* ---- cases ------------------------------------------------------------- */

static void case_small_round_trip(void)
{
    WITH_STORE(s);
    dsp_err err;
    dsp_obj_info put_info, head_info, get_info;
    dsp_buf buf = DSP_BUF_INIT;

    CHECK_EQ_INT(dsp_store_put(s, "rt/empty", "", 0, NULL, &put_info, &err), DSP_OK);
    CHECK_EQ_INT(put_info.size, 0);
    CHECK_EQ_INT(dsp_store_get(s, "rt/empty", 0, -1, &buf, &get_info, &err), DSP_OK);
    CHECK_EQ_INT(buf.len, 0);
    CHECK_EQ_INT(get_info.size, 0);
    CHECK_EQ_STR(get_info.etag, put_info.etag);

    const char *text = "hello, conformance\n";
    CHECK_EQ_INT(dsp_store_put(s, "rt/small", text, strlen(text), NULL, &put_info, &err), DSP_OK);
    CHECK_EQ_INT(put_info.size, strlen(text));
    CHECK_EQ_INT(dsp_store_head(s, "rt/small", &head_info, &err), DSP_OK);
    CHECK_EQ_INT(head_info.size, strlen(text));
    CHECK_EQ_STR(head_info.etag, put_info.etag);
    CHECK_EQ_INT(dsp_store_get(s, "rt/small", 0, -1, &buf, &get_info, &err), DSP_OK);
    CHECK_EQ_INT(buf.len, strlen(text));
    if (buf.len == strlen(text))
        CHECK(memcmp(buf.data, text, buf.len) == 0);
    CHECK_EQ_STR(get_info.etag, put_info.etag);

    CHECK_EQ_INT(dsp_store_get(s, "rt/missing", 0, -1, &buf, NULL, &err), DSP_ENOTFOUND);
    CHECK_EQ_INT(dsp_store_head(s, "rt/missing", &head_info, &err), DSP_ENOTFOUND);
    CHECK_EQ_INT(dsp_store_put(s, "", "x", 1, NULL, NULL, &err), DSP_EINVAL);

    dsp_buf_free(&buf);
    close_and_clean(s);
}

static void case_large_streaming(void)
{
    WITH_STORE(s);
    const uint64_t size = 100ull * MIB;
    dsp_err err;
    dsp_writer *w = NULL;
    dsp_obj_info info;
    unsigned char *chunk = dsp_xmalloc(MIB);

    REQUIRE(dsp_store_writer_open(s, "big/object.bin", NULL, &w, &err) == DSP_OK);
    for (uint64_t off = 0; off < size; off += MIB) {
        for (uint64_t i = 0; i < MIB; i++)
            chunk[i] = pattern_byte(off + i);
        if (dsp_writer_write(w, chunk, MIB, &err) != DSP_OK) {
            CHECKF(0, "write at %llu: %s", (unsigned long long)off, err.msg);
            dsp_writer_abort(w);
            free(chunk);
            close_and_clean(s);
            return;
        }
    }
    CHECKF(dsp_writer_close(w, &info, &err) == DSP_OK, "%s", err.msg);
    CHECK_EQ_INT(info.size, size);

    dsp_obj_info head;
    CHECK_EQ_INT(dsp_store_head(s, "big/object.bin", &head, &err), DSP_OK);
    CHECK_EQ_INT(head.size, size);

    dsp_reader *r = NULL;
    REQUIRE(dsp_store_reader_open(s, "big/object.bin", 0, -1, NULL, &r, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_reader_info(r)->size, size);
    uint64_t pos = 0, mismatch = UINT64_MAX;
    for (;;) {
        size_t got;
        if (dsp_reader_read(r, chunk, 300000, &got, &err) != DSP_OK) {
            CHECKF(0, "read at %llu: %s", (unsigned long long)pos, err.msg);
            break;
        }
        if (got == 0)
            break;
        for (size_t i = 0; i < got && mismatch == UINT64_MAX; i++)
            if (chunk[i] != pattern_byte(pos + i))
                mismatch = pos + i;
        pos += got;
    }
    dsp_reader_close(r);
    CHECK_EQ_INT(pos, size);
    CHECKF(mismatch == UINT64_MAX, "first wrong byte at %llu", (unsigned long long)mismatch);

    /* A ranged reader across a 1 MiB boundary. */
    uint64_t start = 5 * MIB - 7;
    REQUIRE(dsp_store_reader_open(s, "big/object.bin", start, 100, NULL, &r, &err) == DSP_OK);
    size_t total = 0, got = 0;
    do {
        CHECK_EQ_INT(dsp_reader_read(r, chunk + total, 64, &got, &err), DSP_OK);
        total += got;
    } while (got > 0 && total < 1000);
    dsp_reader_close(r);
    CHECK_EQ_INT(total, 100);
    int same = 1;
    for (size_t i = 0; i < total; i++)
        same &= chunk[i] == pattern_byte(start + i);
    CHECK(same);

    free(chunk);
    close_and_clean(s);
}

static void case_ranges(void)
{
    WITH_STORE(s);
    dsp_err err;
    dsp_buf buf = DSP_BUF_INIT;
    dsp_obj_info info;
    const char *text = "0123456789";

    REQUIRE(put_str(s, "range/obj", text, NULL) == DSP_OK);

    CHECK_EQ_INT(dsp_store_get(s, "range/obj", 2, 3, &buf, &info, &err), DSP_OK);
    CHECK_EQ_STR(buf.data, "234");
    CHECK_EQ_INT(info.size, 10);

    CHECK_EQ_INT(dsp_store_get(s, "range/obj", 7, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_STR(buf.data, "789");

    CHECK_EQ_INT(dsp_store_get(s, "range/obj", 8, 100, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_STR(buf.data, "89");

    CHECK_EQ_INT(dsp_store_get(s, "range/obj", 10, 5, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_INT(buf.len, 0);

    CHECK_EQ_INT(dsp_store_get(s, "range/obj", 1000, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_INT(buf.len, 0);

    CHECK_EQ_INT(dsp_store_get(s, "range/obj", 0, 0, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_INT(buf.len, 0);

    dsp_reader *r = NULL;
    char out[16];
    size_t got = 1;
    REQUIRE(dsp_store_reader_open(s, "range/obj", 50, 10, NULL, &r, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_reader_read(r, out, sizeof out, &got, &err), DSP_OK);
    CHECK_EQ_INT(got, 0);
    dsp_reader_close(r);

    dsp_buf_free(&buf);
    close_and_clean(s);
}

#define LIST_FILES 2000
#define LIST_DIRS 25
#define LIST_PER_DIR 20 /* 2,000 + 25 x 20 = 2,500 keys */

static void case_list_paginated(void)
{
    WITH_STORE(s);
    const size_t n = LIST_FILES + LIST_DIRS * LIST_PER_DIR;
    char **keys = dsp_xcalloc(n, sizeof *keys);
    size_t k = 0;
    dsp_err err;

    /* "f-0001" sorts before "f/..." which sorts before "f0": byte order,
     * not directory order. */
    for (int i = 0; i < LIST_FILES / 2; i++)
        keys[k++] = dsp_xasprintf("ls/f-%04d", i);
    for (int i = 0; i < LIST_FILES / 2; i++)
        keys[k++] = dsp_xasprintf("ls/f0%04d", i);
    for (int d = 0; d < LIST_DIRS; d++)
        for (int i = 0; i < LIST_PER_DIR; i++)
            keys[k++] = dsp_xasprintf("ls/f/%02d/k%02d", d, i);
    REQUIRE(k == n);
    REQUIRE(put_many(s, keys, n) == 0);
    qsort(keys, n, sizeof *keys, compare_str);

    /* Pages of 1,000 without a delimiter: 3 pages, all keys in byte order. */
    size_t seen = 0, pages = 0, out_of_order = 0;
    char *token = NULL;
    do {
        dsp_list_page page;
        dsp_status rc = dsp_store_list_page(s, "ls/", NULL, token, 1000, &page, &err);
        free(token);
        token = NULL;
        REQUIRE(rc == DSP_OK);
        pages++;
        CHECK(page.n <= 1000);
        for (size_t i = 0; i < page.n; i++, seen++)
            if (seen >= n || strcmp(page.items[i].key, keys[seen]) != 0)
                out_of_order++;
        token = page.next_token ? dsp_xstrdup(page.next_token) : NULL;
        dsp_list_page_free(&page);
    } while (token && pages < 10);
    CHECK_EQ_INT(seen, n);
    CHECK_EQ_INT(pages, 3);
    CHECK_EQ_INT(out_of_order, 0);

    /* With the delimiter, the 500 keys under ls/f/ collapse into one
     * common prefix, placed between the "f-" and "f0" keys. */
    dsp_list_page all;
    REQUIRE(dsp_store_list_all(s, "ls/", "/", &all, &err) == DSP_OK);
    CHECK_EQ_INT(all.n, LIST_FILES);
    CHECK_EQ_INT(all.nprefixes, 1);
    if (all.nprefixes == 1)
        CHECK_EQ_STR(all.prefixes[0], "ls/f/");
    dsp_list_page_free(&all);

    /* Small pages with a delimiter: prefixes and keys share max_keys, and
     * the continuation token skips a prefix already returned. */
    REQUIRE(dsp_store_list_all(s, "ls/f/", "/", &all, &err) == DSP_OK);
    CHECK_EQ_INT(all.n, 0);
    CHECK_EQ_INT(all.nprefixes, LIST_DIRS);
    dsp_list_page_free(&all);
    size_t prefixes = 0;
    pages = 0;
    do {
        dsp_list_page page;
        dsp_status rc = dsp_store_list_page(s, "ls/f/", "/", token, 7, &page, &err);
        free(token);
        token = NULL;
        REQUIRE(rc == DSP_OK);
        pages++;
        CHECK(page.n + page.nprefixes <= 7);
        for (size_t i = 0; i < page.nprefixes; i++) {
            char want[32];
            snprintf(want, sizeof want, "ls/f/%02zu/", prefixes + i);
            CHECK_EQ_STR(page.prefixes[i], want);
        }
        prefixes += page.nprefixes;
        token = page.next_token ? dsp_xstrdup(page.next_token) : NULL;
        dsp_list_page_free(&page);
    } while (token && pages < 20);
    CHECK_EQ_INT(prefixes, LIST_DIRS);
    CHECK_EQ_INT(pages, 4);

    /* A prefix that is not a whole path component. */
    REQUIRE(dsp_store_list_all(s, "ls/f0", NULL, &all, &err) == DSP_OK);
    CHECK_EQ_INT(all.n, LIST_FILES / 2);
    dsp_list_page_free(&all);

    free_keys(keys, n);
    close_and_clean(s);
}

static void case_special_keys(void)
{
    WITH_STORE(s);
    static const char *const names[] = {
        "sp/with space",    "sp/plus+sign",  "sp/percent%20x", "sp/equals=value",
        "sp/colon:x",       "sp/tilde~x",    "sp/ünïcødé-日本", "sp/mix a+b%c=d:e~f",
        "sp/paren(1)&'q'",  "sp/semi;comma,",
    };
    const size_t n = sizeof names / sizeof names[0];
    dsp_err err;
    dsp_list_page all;
    dsp_buf buf = DSP_BUF_INIT;

    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(put_str(s, names[i], names[i], NULL), DSP_OK);
    REQUIRE(dsp_store_list_all(s, "sp/", NULL, &all, &err) == DSP_OK);
    CHECK_EQ_INT(all.n, n);
    for (size_t i = 0; i < all.n; i++) {
        int known = 0;
        for (size_t j = 0; j < n; j++)
            known |= !strcmp(all.items[i].key, names[j]);
        CHECKF(known, "listed key '%s' was never written", all.items[i].key);
        if (i > 0)
            CHECK(strcmp(all.items[i - 1].key, all.items[i].key) < 0);
        CHECKF(dsp_store_get(s, all.items[i].key, 0, -1, &buf, NULL, &err) == DSP_OK, "%s",
               err.msg);
        CHECK_EQ_STR(buf.data, all.items[i].key);
    }
    dsp_list_page_free(&all);
    dsp_buf_free(&buf);
    close_and_clean(s);
}

typedef struct {
    dsp_store *s;
    int id;
    dsp_status rc;
} create_job;

static void *create_only(void *arg)
{
    create_job *job = arg;
    dsp_put_opts opts = {.cond = DSP_PUT_IF_ABSENT};
    char body[32];
    dsp_err err;
    snprintf(body, sizeof body, "writer %d", job->id);
    job->rc = dsp_store_put(job->s, "race/lease", body, strlen(body), &opts, NULL, &err);
    if (job->rc != DSP_OK && job->rc != DSP_EPRECOND)
        fprintf(stderr, "  writer %d: %s\n", job->id, err.msg);
    return NULL;
}

static void case_create_only_race(void)
{
    WITH_STORE(s);
    enum { WRITERS = 16 };
    pthread_t threads[WRITERS];
    create_job jobs[WRITERS];
    int winners = 0, losers = 0, winner = -1;

    for (int i = 0; i < WRITERS; i++) {
        jobs[i] = (create_job){s, i, DSP_OK};
        pthread_create(&threads[i], NULL, create_only, &jobs[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(threads[i], NULL);
        if (jobs[i].rc == DSP_OK) {
            winners++;
            winner = i;
        } else if (jobs[i].rc == DSP_EPRECOND) {
            losers++;
        }
    }
    CHECK_EQ_INT(winners, 1);
    CHECK_EQ_INT(losers, WRITERS - 1);

    dsp_buf buf = DSP_BUF_INIT;
    dsp_err err;
    char want[32];
    snprintf(want, sizeof want, "writer %d", winner);
    CHECK_EQ_INT(dsp_store_get(s, "race/lease", 0, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_STR(buf.data, want);
    dsp_buf_free(&buf);
    close_and_clean(s);
}

static void case_compare_and_swap(void)
{
    WITH_STORE(s);
    dsp_err err;
    dsp_obj_info v1, v2, v3;

    REQUIRE(put_str(s, "cas/obj", "version 1", &v1) == DSP_OK);
    REQUIRE(put_str(s, "cas/obj", "version 2", &v2) == DSP_OK);
    CHECK(strcmp(v1.etag, v2.etag) != 0);

    dsp_put_opts stale = {.cond = DSP_PUT_IF_MATCH, .if_match = v1.etag};
    CHECK_EQ_INT(dsp_store_put(s, "cas/obj", "stale", 5, &stale, NULL, &err), DSP_EPRECOND);

    dsp_put_opts current = {.cond = DSP_PUT_IF_MATCH, .if_match = v2.etag};
    CHECKF(dsp_store_put(s, "cas/obj", "version 3", 9, &current, &v3, &err) == DSP_OK, "%s",
           err.msg);
    CHECK(strcmp(v3.etag, v2.etag) != 0);

    /* The swap consumed v2's ETag: a second swap with it fails. */
    CHECK_EQ_INT(dsp_store_put(s, "cas/obj", "again", 5, &current, NULL, &err), DSP_EPRECOND);

    dsp_buf buf = DSP_BUF_INIT;
    CHECK_EQ_INT(dsp_store_get(s, "cas/obj", 0, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_STR(buf.data, "version 3");
    dsp_buf_free(&buf);

    dsp_put_opts absent = {.cond = DSP_PUT_IF_MATCH, .if_match = v3.etag};
    dsp_status rc = dsp_store_put(s, "cas/missing", "x", 1, &absent, NULL, &err);
    CHECKF(rc == DSP_ENOTFOUND || rc == DSP_EPRECOND, "got %s", dsp_status_name(rc));
    close_and_clean(s);
}

typedef struct {
    dsp_store *s;
    int increments;
    int errors;
} counter_job;

/* Add 1 to the number in "cas/counter" `increments` times with
 * read-modify-compare-and-swap, retrying whenever another thread won. */
static void *increment_counter(void *arg)
{
    counter_job *job = arg;
    dsp_buf buf = DSP_BUF_INIT;
    dsp_err err;

    for (int done = 0; done < job->increments && job->errors == 0;) {
        dsp_obj_info info;
        if (dsp_store_get(job->s, "cas/counter", 0, -1, &buf, &info, &err) != DSP_OK) {
            fprintf(stderr, "  counter get: %s\n", err.msg);
            job->errors++;
            break;
        }
        char next[32];
        snprintf(next, sizeof next, "%ld", strtol(buf.data, NULL, 10) + 1);
        dsp_put_opts swap = {.cond = DSP_PUT_IF_MATCH, .if_match = info.etag};
        dsp_status rc = dsp_store_put(job->s, "cas/counter", next, strlen(next), &swap, NULL, &err);
        if (rc == DSP_OK) {
            done++;
        } else if (rc != DSP_EPRECOND) {
            fprintf(stderr, "  counter put: %s\n", err.msg);
            job->errors++;
        }
    }
    dsp_buf_free(&buf);
    return NULL;
}

/* Lost updates would show as a final count below the number of swaps. */
static void case_compare_and_swap_counter(void)
{
    WITH_STORE(s);
    enum { THREADS = 8, EACH = 15 };
    pthread_t threads[THREADS];
    counter_job jobs[THREADS];
    dsp_err err;
    dsp_buf buf = DSP_BUF_INIT;

    REQUIRE(put_str(s, "cas/counter", "0", NULL) == DSP_OK);
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (counter_job){s, EACH, 0};
        pthread_create(&threads[i], NULL, increment_counter, &jobs[i]);
    }
    int errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        errors += jobs[i].errors;
    }
    CHECK_EQ_INT(errors, 0);
    CHECK_EQ_INT(dsp_store_get(s, "cas/counter", 0, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_INT(strtol(buf.data, NULL, 10), THREADS * EACH);
    dsp_buf_free(&buf);
    close_and_clean(s);
}

static void case_aborted_write(void)
{
    WITH_STORE(s);
    dsp_err err;
    dsp_writer *w = NULL;
    char *chunk = dsp_xcalloc(1, MIB);

    REQUIRE(dsp_store_writer_open(s, "abort/obj", NULL, &w, &err) == DSP_OK);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(dsp_writer_write(w, chunk, MIB, &err), DSP_OK);
    dsp_writer_abort(w);
    free(chunk);

    dsp_obj_info info;
    CHECK_EQ_INT(dsp_store_head(s, "abort/obj", &info, &err), DSP_ENOTFOUND);
    dsp_list_page all;
    REQUIRE(dsp_store_list_all(s, "", NULL, &all, &err) == DSP_OK);
    CHECK_EQ_INT(all.n, 0);
    dsp_list_page_free(&all);
    close_and_clean(s);
}

static void case_copy(void)
{
    WITH_STORE(s);
    dsp_err err;
    dsp_obj_info src, dst;
    dsp_buf buf = DSP_BUF_INIT;

    REQUIRE(put_str(s, "copy/src", "copied content", &src) == DSP_OK);
    CHECKF(dsp_store_copy(s, "copy/src", "copy/sub/dst", &dst, &err) == DSP_OK, "%s", err.msg);
    CHECK_EQ_INT(dst.size, src.size);
    CHECK_EQ_INT(dsp_store_get(s, "copy/sub/dst", 0, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_STR(buf.data, "copied content");
    CHECK_EQ_INT(dsp_store_head(s, "copy/sub/dst", &dst, &err), DSP_OK);
    CHECK_EQ_STR(dst.etag, src.etag);

    /* Overwriting the source leaves the copy unchanged. */
    REQUIRE(put_str(s, "copy/src", "new source", NULL) == DSP_OK);
    CHECK_EQ_INT(dsp_store_get(s, "copy/sub/dst", 0, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_STR(buf.data, "copied content");

    CHECK_EQ_INT(dsp_store_copy(s, "copy/missing", "copy/x", NULL, &err), DSP_ENOTFOUND);
    dsp_buf_free(&buf);
    close_and_clean(s);
}

/* Read key from offset to the end with a reader that expects the planned
 * version, 4 bytes per ranged GET; out receives what was read. */
static dsp_status read_planned(dsp_store *s, const char *key, uint64_t offset,
                               const dsp_obj_info *planned, dsp_buf *out, dsp_err *err)
{
    dsp_reader_opts ro = {.chunk_size = 4, .readahead = 2, .expect = planned};
    dsp_reader *r = NULL;
    char chunk[16];
    size_t got;

    dsp_buf_reset(out);
    dsp_status st = dsp_store_reader_open(s, key, offset, -1, &ro, &r, err);
    while (st == DSP_OK) {
        st = dsp_reader_read(r, chunk, sizeof chunk, &got, err);
        if (st != DSP_OK || got == 0)
            break;
        dsp_buf_append(out, chunk, got);
    }
    dsp_reader_close(r);
    return st;
}

/* The message of a changed input names the key and both ETags. */
static void check_changed_message(const dsp_err *err, const char *planned, const char *now)
{
    CHECKF(strstr(err->msg, "plan/obj") != NULL, "key missing: %s", err->msg);
    CHECKF(strstr(err->msg, planned) != NULL, "planned ETag %s missing: %s", planned, err->msg);
    CHECKF(strstr(err->msg, now) != NULL, "current ETag %s missing: %s", now, err->msg);
}

/* A reader given the planned size and ETag returns only bytes of that
 * version. On S3 it sends no HEAD and a rewrite fails the next GET; the
 * local store compares at open and keeps the opened version readable. */
static void case_planned_version(void)
{
    WITH_STORE(s);
    dsp_err err;
    dsp_buf buf = DSP_BUF_INIT;
    dsp_obj_info planned, same_size, shorter;
    dsp_store_stats before, after;
    const char *version_one = "version one 0123456789";
    const int s3 = !strcmp(g_kind, "s3");

    REQUIRE(put_str(s, "plan/obj", version_one, &planned) == DSP_OK);
    dsp_store_get_stats(s, &before);
    CHECKF(read_planned(s, "plan/obj", 0, &planned, &buf, &err) == DSP_OK, "%s", err.msg);
    dsp_store_get_stats(s, &after);
    dsp_buf_append(&buf, "", 1);
    CHECK_EQ_STR(buf.data, version_one);
    if (s3)
        CHECK_EQ_INT(after.head - before.head, 0);

    /* Rewritten with the same size. */
    REQUIRE(put_str(s, "plan/obj", "version two 0123456789", &same_size) == DSP_OK);
    CHECK_EQ_INT(same_size.size, planned.size);
    CHECK_EQ_INT(read_planned(s, "plan/obj", 0, &planned, &buf, &err), DSP_EINVAL);
    check_changed_message(&err, planned.etag, same_size.etag);

    /* Rewritten shorter, and read from an offset past the new end. */
    REQUIRE(put_str(s, "plan/obj", "v3", &shorter) == DSP_OK);
    CHECK_EQ_INT(read_planned(s, "plan/obj", 0, &planned, &buf, &err), DSP_EINVAL);
    check_changed_message(&err, planned.etag, shorter.etag);
    CHECK_EQ_INT(read_planned(s, "plan/obj", 10, &planned, &buf, &err), DSP_EINVAL);
    check_changed_message(&err, planned.etag, shorter.etag);

    /* Rewritten between two reads of the same reader. */
    REQUIRE(put_str(s, "plan/obj", version_one, &planned) == DSP_OK);
    dsp_reader_opts ro = {.chunk_size = 4, .readahead = 1, .expect = &planned};
    dsp_reader *r = NULL;
    char first[4], rest[64];
    size_t got = 0, got_rest = 0;
    REQUIRE(dsp_store_reader_open(s, "plan/obj", 0, -1, &ro, &r, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_reader_read(r, first, sizeof first, &got, &err), DSP_OK);
    CHECK_EQ_INT(got, 4);
    REQUIRE(put_str(s, "plan/obj", "version two 0123456789", &same_size) == DSP_OK);
    dsp_status st = dsp_reader_read(r, rest, sizeof rest, &got_rest, &err);
    if (s3) {
        CHECK_EQ_INT(st, DSP_EINVAL);
        check_changed_message(&err, planned.etag, same_size.etag);
    } else {
        CHECK_EQ_INT(st, DSP_OK);
        CHECK_EQ_INT(got_rest, strlen(version_one) - 4);
        CHECK(memcmp(rest, version_one + 4, strlen(version_one) - 4) == 0);
    }
    dsp_reader_close(r);

    dsp_buf_free(&buf);
    close_and_clean(s);
}

static void case_batch_delete(void)
{
    WITH_STORE(s);
    const size_t n = 2500;
    char **keys = dsp_xcalloc(n + 1, sizeof *keys);
    dsp_err err;

    for (size_t i = 0; i < n; i++)
        keys[i] = dsp_xasprintf("del/%zu/k%zu", i % 7, i);
    REQUIRE(put_many(s, keys, n) == 0);

    dsp_list_page all;
    REQUIRE(dsp_store_list_all(s, "del/", NULL, &all, &err) == DSP_OK);
    CHECK_EQ_INT(all.n, n);
    dsp_list_page_free(&all);

    dsp_store_stats before, after;
    dsp_store_get_stats(s, &before);
    keys[n] = dsp_xstrdup("del/never-written"); /* missing keys are not an error */
    CHECKF(dsp_store_delete(s, (const char *const *)keys, n + 1, &err) == DSP_OK, "%s",
           err.msg);
    dsp_store_get_stats(s, &after);
    CHECK_EQ_INT(after.del - before.del, 3);

    REQUIRE(dsp_store_list_all(s, "del/", NULL, &all, &err) == DSP_OK);
    CHECK_EQ_INT(all.n, 0);
    dsp_list_page_free(&all);
    free_keys(keys, n + 1);
    close_and_clean(s);
}

static void case_request_counters(void)
{
    WITH_STORE(s);
    dsp_err err;
    dsp_obj_info info;
    dsp_buf buf = DSP_BUF_INIT;
    dsp_store_stats before, after;

    dsp_store_get_stats(s, &before);
    REQUIRE(put_str(s, "stats/a", "12345", NULL) == DSP_OK);
    CHECK_EQ_INT(dsp_store_get(s, "stats/a", 1, 2, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_INT(dsp_store_head(s, "stats/a", &info, &err), DSP_OK);
    CHECK_EQ_INT(dsp_store_copy(s, "stats/a", "stats/b", NULL, &err), DSP_OK);
    dsp_list_page page;
    CHECK_EQ_INT(dsp_store_list_page(s, "stats/", NULL, NULL, 0, &page, &err), DSP_OK);
    dsp_list_page_free(&page);
    const char *keys[] = {"stats/a", "stats/b"};
    CHECK_EQ_INT(dsp_store_delete(s, keys, 2, &err), DSP_OK);
    dsp_store_get_stats(s, &after);

    CHECK_EQ_INT(after.put - before.put, 1);
    CHECK_EQ_INT(after.get - before.get, 1);
    CHECK(after.head - before.head >= 1);
    CHECK_EQ_INT(after.copy - before.copy, 1);
    CHECK_EQ_INT(after.list - before.list, 1);
    CHECK_EQ_INT(after.del - before.del, 1);
    CHECK_EQ_INT(after.bytes_out - before.bytes_out, 5);
    CHECK_EQ_INT(after.bytes_in - before.bytes_in, 2);
    CHECK_EQ_INT(after.retries - before.retries, 0);
    dsp_buf_free(&buf);
    close_and_clean(s);
}

/* 500 operations of every kind through a store that fails 20% of attempts
 * with 503 and 1% with a connection reset: every one must succeed. */
static void case_fault_workload(void)
{
    int skip;
    dsp_store *s = open_fresh(g_kind, "op=any,error=503,rate=0.2;op=any,error=reset,rate=0.01;"
                                      "seed=7",
                              &skip);
    if (skip)
        SKIP("%s", skip_reason);
    REQUIRE(s != NULL);
    dsp_log_set_level(DSP_LOG_ERROR); /* one warning per retry would flood the output */

    dsp_err err;
    dsp_buf buf = DSP_BUF_INIT;
    int ops = 0, failures = 0;
    char key[64], body[64], copy_key[64];
    for (int i = 0; ops < 500; i++) {
        dsp_obj_info info;
        snprintf(key, sizeof key, "faults/k%03d", i);
        snprintf(copy_key, sizeof copy_key, "faults/copy%03d", i);
        snprintf(body, sizeof body, "body of %d", i);
        dsp_put_opts create = {.cond = DSP_PUT_IF_ABSENT};

        failures += dsp_store_put(s, key, body, strlen(body), &create, &info, &err) != DSP_OK;
        failures += dsp_store_get(s, key, 0, -1, &buf, NULL, &err) != DSP_OK ||
                    strcmp(buf.data, body) != 0;
        failures += dsp_store_head(s, key, &info, &err) != DSP_OK;
        dsp_put_opts swap = {.cond = DSP_PUT_IF_MATCH, .if_match = info.etag};
        failures += dsp_store_put(s, key, "swapped", 7, &swap, NULL, &err) != DSP_OK;
        failures += dsp_store_copy(s, key, copy_key, NULL, &err) != DSP_OK;
        dsp_list_page page;
        if (dsp_store_list_page(s, "faults/", NULL, NULL, 10, &page, &err) == DSP_OK)
            dsp_list_page_free(&page);
        else
            failures++;
        const char *gone[] = {copy_key};
        failures += dsp_store_delete(s, gone, 1, &err) != DSP_OK;
        ops += 7;
        if (failures) {
            fprintf(stderr, "  operation %d failed: %s\n", ops, err.msg);
            break;
        }
    }
    dsp_store_stats stats;
    dsp_store_get_stats(s, &stats);
    dsp_log_set_level(DSP_LOG_WARN);
    CHECK_EQ_INT(failures, 0);
    CHECK(ops >= 500);
    CHECKF(stats.retries >= 50, "only %llu retries", (unsigned long long)stats.retries);
    dsp_buf_free(&buf);
    close_and_clean(s);
}

/* ---- table: every case once per backend -------------------------------- */

#define BOTH(name, fn)                                                               \
    static void fn##_local(void)                                                     \
    {                                                                                \
        g_kind = "local";                                                            \
        fn();                                                                        \
    }                                                                                \
    static void fn##_s3(void)                                                        \
    {                                                                                \
        g_kind = "s3";                                                               \
        fn();                                                                        \
    }

BOTH("small round trip", case_small_round_trip)
BOTH("large streaming", case_large_streaming)
BOTH("ranges", case_ranges)
BOTH("list paginated", case_list_paginated)
BOTH("special keys", case_special_keys)
BOTH("create-only race", case_create_only_race)
BOTH("compare and swap", case_compare_and_swap)
BOTH("compare and swap counter", case_compare_and_swap_counter)
BOTH("aborted write", case_aborted_write)
BOTH("copy", case_copy)
BOTH("planned version", case_planned_version)
BOTH("batch delete", case_batch_delete)
BOTH("request counters", case_request_counters)
BOTH("fault workload", case_fault_workload)

#define ENTRIES(name, fn) {"local " name, fn##_local}, {"s3 " name, fn##_s3}

TEST_MAIN(ENTRIES("small round trip", case_small_round_trip),
          ENTRIES("large streaming", case_large_streaming),
          ENTRIES("ranges", case_ranges),
          ENTRIES("list paginated", case_list_paginated),
          ENTRIES("special keys", case_special_keys),
          ENTRIES("create-only race", case_create_only_race),
          ENTRIES("compare and swap", case_compare_and_swap),
          ENTRIES("compare and swap counter", case_compare_and_swap_counter),
          ENTRIES("aborted write", case_aborted_write),
          ENTRIES("copy", case_copy),
          ENTRIES("planned version", case_planned_version),
          ENTRIES("batch delete", case_batch_delete),
          ENTRIES("request counters", case_request_counters),
          ENTRIES("fault workload", case_fault_workload))
