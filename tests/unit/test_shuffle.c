/* Tests of tasks/shuffle.c against the local store in a temporary
 * directory, and against S3 when AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET
 * are set: round trips, sorted order, empty partitions, request
 * coalescing, spilling on both sides and corruption detection. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "../../core/buf.h"
#include "../../core/util.h"
#include "../../storage/store.h"
#include "../../tasks/repartition.h"
#include "../../tasks/shuffle.h"
#include "test.h"

typedef struct {
    uint32_t part;
    unsigned char key[24];
    size_t key_len;
    char value[64];
    size_t value_len;
} exp_rec;

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Reference order, written independently of the reader: key bytes, then
 * key length, then value bytes, then value length. */
static int exp_cmp(const void *pa, const void *pb)
{
    const exp_rec *a = pa, *b = pb;
    if (a->part != b->part)
        return a->part < b->part ? -1 : 1;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    n = a->value_len < b->value_len ? a->value_len : b->value_len;
    c = memcmp(a->value, b->value, n);
    if (c)
        return c;
    return a->value_len < b->value_len ? -1 : a->value_len > b->value_len;
}

static char tmp_root[256];

static dsp_store *open_tmp_store(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/dsp-test-shuffle-XXXXXX");
    if (!mkdtemp(tmp_root))
        return NULL;
    dsp_store *s = NULL;
    dsp_err err;
    if (dsp_store_open(tmp_root, NULL, &s, &err) != DSP_OK) {
        fprintf(stderr, "  store open: %s\n", err.msg);
        return NULL;
    }
    return s;
}

static void close_tmp_store(dsp_store *s)
{
    dsp_store_close(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", tmp_root);
}

/* Generate n records spread over `parts` partitions; partitions whose index
 * is a multiple of 3 stay empty. Short keys share prefixes on purpose so
 * that ties on the first 8 bytes and on whole keys happen. */
static exp_rec *make_records(size_t n, uint32_t parts, uint64_t seed)
{
    rng_state = seed;
    exp_rec *recs = calloc(n, sizeof *recs);
    for (size_t i = 0; i < n; i++) {
        exp_rec *r = &recs[i];
        do
            r->part = (uint32_t)(rng_next() % parts);
        while (parts > 1 && r->part % 3 == 0);
        r->key_len = 1 + rng_next() % 20;
        for (size_t j = 0; j < r->key_len; j++)
            r->key[j] = (unsigned char)(j < 6 ? 'a' + rng_next() % 3 : rng_next());
        r->value_len = rng_next() % 40;
        for (size_t j = 0; j < r->value_len; j++)
            r->value[j] = (char)('A' + rng_next() % 4);
    }
    return recs;
}

/* Write recs[lo..hi) as one map output. */
static int write_map(dsp_store *s, const char *key, uint32_t parts, const exp_rec *recs,
                     size_t lo, size_t hi, const dsp_shuffle_writer_opts *o,
                     dsp_shuffle_write_stats *ws)
{
    dsp_err err;
    dsp_shuffle_writer *w;
    if (dsp_shuffle_writer_open(s, key, parts, o, &w, &err) != DSP_OK) {
        fprintf(stderr, "  writer open: %s\n", err.msg);
        return -1;
    }
    for (size_t i = lo; i < hi; i++)
        if (dsp_shuffle_writer_add(w, recs[i].part, recs[i].key, recs[i].key_len, recs[i].value,
                                   recs[i].value_len, &err) != DSP_OK) {
            fprintf(stderr, "  writer add: %s\n", err.msg);
            dsp_shuffle_writer_abort(w);
            return -1;
        }
    if (dsp_shuffle_writer_close(w, ws, &err) != DSP_OK) {
        fprintf(stderr, "  writer close: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Read partitions [p0, p1) and compare with the sorted expectation;
 * returns the number of mismatches (0 = equal). */
static int read_and_compare(dsp_store *s, const char *const *keys, const uint64_t *sizes,
                            size_t nkeys, uint32_t parts, uint32_t p0, uint32_t p1,
                            const exp_rec *sorted, size_t n, const dsp_shuffle_reader_opts *o,
                            dsp_shuffle_read_stats *rs)
{
    dsp_err err;
    dsp_shuffle_reader *r;
    if (dsp_shuffle_reader_open(s, keys, sizes, nkeys, parts, p0, p1, o, &r, &err) != DSP_OK) {
        fprintf(stderr, "  reader open: %s\n", err.msg);
        return -1;
    }
    /* Records of several partitions merge into one key order, so build the
     * expectation for the range by re-sorting it without the partition. */
    exp_rec *want = calloc(n ? n : 1, sizeof *want);
    size_t nwant = 0;
    for (size_t i = 0; i < n; i++)
        if (sorted[i].part >= p0 && sorted[i].part < p1) {
            want[nwant] = sorted[i];
            want[nwant++].part = 0;
        }
    qsort(want, nwant, sizeof *want, exp_cmp);
    int bad = 0;
    size_t i = 0;
    dsp_shuffle_rec rec;
    int got;
    while ((got = dsp_shuffle_reader_next(r, &rec, &err)) == 1) {
        if (i >= nwant || rec.key_len != want[i].key_len ||
            memcmp(rec.key, want[i].key, rec.key_len) != 0 ||
            rec.value_len != want[i].value_len ||
            memcmp(rec.value, want[i].value, rec.value_len) != 0)
            bad++;
        i++;
    }
    if (got < 0) {
        fprintf(stderr, "  reader next: %s\n", err.msg);
        bad++;
    }
    if (i != nwant) {
        fprintf(stderr, "  read %zu records, expected %zu\n", i, nwant);
        bad++;
    }
    if (rs)
        dsp_shuffle_reader_stats(r, rs);
    dsp_shuffle_reader_close(r);
    free(want);
    return bad;
}

static void run_round_trip(dsp_store *s, const char *prefix)
{
    enum { N = 5000, MAPS = 3, PARTS = 37 };
    exp_rec *recs = make_records(N, PARTS, 42);
    char keybuf[MAPS][128];
    const char *keys[MAPS];
    for (int m = 0; m < MAPS; m++) {
        snprintf(keybuf[m], sizeof keybuf[m], "%s/map-%d.shuffle", prefix, m);
        keys[m] = keybuf[m];
        REQUIRE(write_map(s, keys[m], PARTS, recs, (size_t)m * N / MAPS,
                          (size_t)(m + 1) * N / MAPS, NULL, NULL) == 0);
    }
    qsort(recs, N, sizeof *recs, exp_cmp);
    for (uint32_t p = 0; p < PARTS; p++)
        CHECKF(read_and_compare(s, keys, NULL, MAPS, PARTS, p, p + 1, recs, N, NULL, NULL) == 0,
               "partition %u", p);
    CHECK(read_and_compare(s, keys, NULL, MAPS, PARTS, 0, PARTS, recs, N, NULL, NULL) == 0);
    CHECK(read_and_compare(s, keys, NULL, MAPS, PARTS, 5, 5, recs, N, NULL, NULL) == 0);
    free(recs);
}

static void test_round_trip_local(void)
{
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    run_round_trip(s, "rt");
    close_tmp_store(s);
}

static void test_round_trip_s3(void)
{
    const char *bucket = getenv("DSPARK_TEST_S3_BUCKET");
    if (!bucket || !getenv("AWS_ENDPOINT_URL"))
        SKIP("AWS_ENDPOINT_URL and DSPARK_TEST_S3_BUCKET not set");
    char uri[512];
    snprintf(uri, sizeof uri, "s3://%s/test-shuffle-%d", bucket, (int)getpid());
    dsp_store *s = NULL;
    dsp_err err;
    dsp_status st = dsp_store_open(uri, NULL, &s, &err);
    if (st == DSP_EUNSUPPORTED)
        SKIP("S3 backend not available: %s", err.msg);
    REQUIRE(st == DSP_OK);
    run_round_trip(s, "rt");

    /* Remove what the test wrote, so repeated runs leave no objects. */
    dsp_list_page page = {0};
    REQUIRE(dsp_store_list_all(s, "rt/", NULL, &page, &err) == DSP_OK);
    CHECK_EQ_INT(page.n, 3);
    const char *keys[8];
    for (size_t i = 0; i < page.n && i < 8; i++)
        keys[i] = page.items[i].key;
    CHECK(dsp_store_delete(s, keys, page.n < 8 ? page.n : 8, &err) == DSP_OK);
    dsp_list_page_free(&page);
    dsp_store_close(s);
}

static void test_empty_partitions_and_maps(void)
{
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    dsp_shuffle_write_stats ws;
    const char *keys[2] = {"empty-a", "empty-b"};
    REQUIRE(write_map(s, keys[0], 8, NULL, 0, 0, NULL, &ws) == 0);
    CHECK_EQ_INT(ws.object_bytes, 8 * DSP_SHUFFLE_INDEX_ENTRY_SIZE + DSP_SHUFFLE_FOOTER_SIZE);
    exp_rec one = {.part = 7, .key = "k", .key_len = 1, .value = "v", .value_len = 1};
    REQUIRE(write_map(s, keys[1], 8, &one, 0, 1, NULL, NULL) == 0);
    CHECK(read_and_compare(s, keys, NULL, 2, 8, 0, 8, &one, 1, NULL, NULL) == 0);
    CHECK(read_and_compare(s, keys, NULL, 1, 8, 0, 8, &one, 0, NULL, NULL) == 0);
    CHECK(read_and_compare(s, keys, NULL, 0, 8, 0, 8, &one, 0, NULL, NULL) == 0);
    close_tmp_store(s);
}

static void test_coalesces_neighbour_slices(void)
{
    enum { N = 2000, MAPS = 4, PARTS = 16 };
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    exp_rec *recs = make_records(N, PARTS, 7);
    char keybuf[MAPS][64];
    const char *keys[MAPS];
    uint64_t sizes[MAPS];
    for (int m = 0; m < MAPS; m++) {
        dsp_shuffle_write_stats ws;
        snprintf(keybuf[m], sizeof keybuf[m], "co/map-%d", m);
        keys[m] = keybuf[m];
        REQUIRE(write_map(s, keys[m], PARTS, recs, (size_t)m * N / MAPS,
                          (size_t)(m + 1) * N / MAPS, NULL, &ws) == 0);
        sizes[m] = ws.object_bytes;
    }
    qsort(recs, N, sizeof *recs, exp_cmp);

    /* All 16 partitions of a map are neighbours: one GET per map for the
     * slices plus one for the index, and no HEAD since sizes are known. */
    dsp_store_stats before, after;
    dsp_shuffle_read_stats rs;
    dsp_store_get_stats(s, &before);
    CHECK(read_and_compare(s, keys, sizes, MAPS, PARTS, 0, PARTS, recs, N, NULL, &rs) == 0);
    dsp_store_get_stats(s, &after);
    CHECK_EQ_INT(after.get - before.get, 2 * MAPS);
    CHECK_EQ_INT(after.head - before.head, 0);
    CHECK_EQ_INT(rs.requests, MAPS);

    /* Without sizes the reader needs one HEAD per map. */
    dsp_store_get_stats(s, &before);
    CHECK(read_and_compare(s, keys, NULL, MAPS, PARTS, 2, 9, recs, N, NULL, &rs) == 0);
    dsp_store_get_stats(s, &after);
    CHECK_EQ_INT(after.head - before.head, MAPS);
    CHECK_EQ_INT(after.get - before.get, 2 * MAPS);

    /* A request cap below the slice size splits the range into several
     * GETs, and the records still come back whole. */
    dsp_shuffle_reader_opts small = {.max_request_bytes = 512, .threads = 3};
    dsp_store_get_stats(s, &before);
    CHECK(read_and_compare(s, keys, sizes, MAPS, PARTS, 0, PARTS, recs, N, &small, &rs) == 0);
    dsp_store_get_stats(s, &after);
    CHECK(rs.requests > 4 * MAPS);
    CHECK_EQ_INT(after.get - before.get, rs.requests + MAPS);
    free(recs);
    close_tmp_store(s);
}

static void test_spill_gives_same_result(void)
{
    enum { N = 40000, MAPS = 2, PARTS = 5 };
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    exp_rec *recs = make_records(N, PARTS, 99);
    const char *keys[MAPS] = {"sp/map-0", "sp/map-1"};
    dsp_shuffle_writer_opts wo = {.memory_budget = 4096};
    dsp_shuffle_write_stats ws;
    REQUIRE(write_map(s, keys[0], PARTS, recs, 0, N / 2, &wo, &ws) == 0);
    CHECK(ws.spilled_frames > 10);
    REQUIRE(write_map(s, keys[1], PARTS, recs, N / 2, N, NULL, NULL) == 0);
    qsort(recs, N, sizeof *recs, exp_cmp);

    dsp_shuffle_read_stats big, tiny;
    dsp_shuffle_reader_opts ro = {.memory_budget = 16384};
    for (uint32_t p = 0; p < PARTS; p++) {
        CHECK(read_and_compare(s, keys, NULL, MAPS, PARTS, p, p + 1, recs, N, NULL, &big) == 0);
        CHECK_EQ_INT(big.runs_spilled, 0);
        CHECK(read_and_compare(s, keys, NULL, MAPS, PARTS, p, p + 1, recs, N, &ro, &tiny) == 0);
        CHECK_EQ_INT(tiny.records, big.records);
        if (big.records > 1000)
            CHECK(tiny.runs_spilled > 5);
        CHECKF(tiny.peak_buffered <= ro.memory_budget, "peak %llu",
               (unsigned long long)tiny.peak_buffered);
    }
    free(recs);
    close_tmp_store(s);
}

static void test_corrupt_file_rejected(void)
{
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    exp_rec *recs = make_records(300, 4, 5);
    const char *key = "bad/map";
    REQUIRE(write_map(s, key, 4, recs, 0, 300, NULL, NULL) == 0);
    dsp_buf body = DSP_BUF_INIT;
    dsp_err err;
    REQUIRE(dsp_store_get(s, key, 0, -1, &body, NULL, &err) == DSP_OK);
    dsp_shuffle_reader *r = NULL;

    /* Wrong partition count. */
    CHECK(dsp_shuffle_reader_open(s, &key, NULL, 1, 5, 0, 5, NULL, &r, &err) == DSP_ECORRUPT);

    /* A flipped bit in the index fails its checksum. */
    body.data[body.len - DSP_SHUFFLE_FOOTER_SIZE - 3] ^= 1;
    REQUIRE(dsp_store_put(s, key, body.data, body.len, NULL, NULL, &err) == DSP_OK);
    CHECK(dsp_shuffle_reader_open(s, &key, NULL, 1, 4, 0, 4, NULL, &r, &err) == DSP_ECORRUPT);
    CHECK(strstr(err.msg, "bad/map") != NULL);
    body.data[body.len - DSP_SHUFFLE_FOOTER_SIZE - 3] ^= 1;

    /* A damaged frame in partition data fails decompression. */
    body.data[20] ^= 0x55;
    body.data[21] ^= 0x55;
    REQUIRE(dsp_store_put(s, key, body.data, body.len, NULL, NULL, &err) == DSP_OK);
    CHECK(dsp_shuffle_reader_open(s, &key, NULL, 1, 4, 0, 4, NULL, &r, &err) != DSP_OK);

    /* A truncated object is too small or has no footer. */
    REQUIRE(dsp_store_put(s, key, body.data, 30, NULL, NULL, &err) == DSP_OK);
    CHECK(dsp_shuffle_reader_open(s, &key, NULL, 1, 4, 0, 4, NULL, &r, &err) == DSP_ECORRUPT);
    dsp_buf_free(&body);
    free(recs);
    close_tmp_store(s);
}

static void test_invalid_arguments(void)
{
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    dsp_err err;
    dsp_shuffle_writer *w = NULL;
    CHECK(dsp_shuffle_writer_open(s, "x", 0, NULL, &w, &err) == DSP_EINVAL);
    REQUIRE(dsp_shuffle_writer_open(s, "x", 2, NULL, &w, &err) == DSP_OK);
    CHECK(dsp_shuffle_writer_add(w, 2, "k", 1, "", 0, &err) == DSP_EINVAL);
    CHECK(strstr(err.msg, "partition 2") != NULL);
    dsp_shuffle_writer_abort(w);
    dsp_obj_info info;
    CHECK(dsp_store_head(s, "x", &info, &err) == DSP_ENOTFOUND);
    dsp_shuffle_reader *r = NULL;
    const char *key = "x";
    CHECK(dsp_shuffle_reader_open(s, &key, NULL, 1, 2, 1, 3, NULL, &r, &err) == DSP_EINVAL);
    CHECK(dsp_shuffle_reader_open(s, &key, NULL, 1, 2, 0, 2, NULL, &r, &err) == DSP_ENOTFOUND);
    close_tmp_store(s);
}

/* ---- repartition ---- */

typedef struct {
    char key[8];
    size_t key_len;
    size_t index; /* input position = order key offset */
} repart_doc;

typedef struct {
    dsp_buf out;
    size_t lines;
} collect_ctx;

static dsp_status collect_line(void *ctx, const char *line, size_t len, dsp_err *err)
{
    (void)err;
    collect_ctx *c = ctx;
    dsp_buf_append(&c->out, line, len);
    dsp_buf_append_char(&c->out, '\n');
    c->lines++;
    return DSP_OK;
}

static repart_doc *make_repart_docs(size_t n)
{
    rng_state = 31337;
    repart_doc *docs = calloc(n, sizeof *docs);
    for (size_t i = 0; i < n; i++) {
        docs[i].key_len = 1 + rng_next() % 4;
        for (size_t j = 0; j < docs[i].key_len; j++)
            docs[i].key[j] = (char)('a' + rng_next() % 5);
        if (i % 17 == 0)
            docs[i].key[docs[i].key_len - 1] = '\0'; /* a NUL byte inside the key */
        docs[i].index = i;
    }
    return docs;
}

static int repart_key_cmp(const void *pa, const void *pb)
{
    const repart_doc *a = pa, *b = pb;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Run maps over `maps` contiguous splits, then every shard; returns the
 * shards' output concatenated in shard order and per-shard line counts. */
static int run_repart(dsp_store *s, const repart_doc *docs, size_t n, uint32_t maps,
                      uint32_t shards, const dsp_repart_opts *o, dsp_buf *all, size_t *counts)
{
    char keys[8][64];
    const char *kp[8];
    dsp_err err;
    for (uint32_t m = 0; m < maps; m++) {
        snprintf(keys[m], sizeof keys[m], "rp-%u-%u-%d/map-%u", maps, shards, (int)o->mode, m);
        kp[m] = keys[m];
        dsp_repart_map *rm;
        if (dsp_repart_map_open(s, kp[m], shards, o, &rm, &err) != DSP_OK)
            return -1;
        for (size_t i = n * m / maps; i < n * (m + 1) / maps; i++) {
            char line[64];
            int len = snprintf(line, sizeof line, "{\"n\":%zu}", docs[i].index);
            dsp_dedup_order ord = {0, docs[i].index};
            if (dsp_repart_map_add(rm, docs[i].key, docs[i].key_len, ord, line, (size_t)len,
                                   &err) != DSP_OK) {
                dsp_repart_map_abort(rm);
                return -1;
            }
        }
        if (dsp_repart_map_close(rm, &err) != DSP_OK)
            return -1;
    }
    for (uint32_t p = 0; p < shards; p++) {
        collect_ctx c = {DSP_BUF_INIT, 0};
        if (dsp_repart_reduce(s, kp, NULL, maps, shards, p, NULL, collect_line, &c, &err) !=
            DSP_OK) {
            fprintf(stderr, "  reduce: %s\n", err.msg);
            return -1;
        }
        dsp_buf_append(all, c.out.data ? c.out.data : "", c.out.len);
        counts[p] = c.lines;
        dsp_buf_free(&c.out);
    }
    return 0;
}

static void test_repartition_range_sorts(void)
{
    enum { N = 3000, SHARDS = 4 };
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    repart_doc *docs = make_repart_docs(N);
    const char *bounds[] = {"b", "c\0", "d"};
    size_t bound_lens[] = {1, 2, 1};
    dsp_repart_opts o = {.mode = DSP_REPART_RANGE, .boundaries = bounds,
                         .boundary_lens = bound_lens, .nboundaries = 3};

    /* Expected: all documents sorted by (key, input position), and the
     * shard of each is the first boundary >= its key. */
    repart_doc *sorted = malloc(N * sizeof *sorted);
    memcpy(sorted, docs, N * sizeof *sorted);
    qsort(sorted, N, sizeof *sorted, repart_key_cmp);
    dsp_buf want = DSP_BUF_INIT;
    size_t want_counts[SHARDS] = {0};
    for (size_t i = 0; i < N; i++) {
        dsp_buf_printf(&want, "{\"n\":%zu}\n", sorted[i].index);
        size_t shard = 0;
        while (shard < 3) {
            repart_doc b = {.key_len = bound_lens[shard], .index = SIZE_MAX};
            memcpy(b.key, bounds[shard], bound_lens[shard]);
            if (repart_key_cmp(&sorted[i], &b) < 0)
                break;
            shard++;
        }
        want_counts[shard]++;
    }
    for (uint32_t maps = 1; maps <= 4; maps *= 2) {
        dsp_buf got = DSP_BUF_INIT;
        size_t counts[SHARDS];
        REQUIRE(run_repart(s, docs, N, maps, SHARDS, &o, &got, counts) == 0);
        CHECKF(got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
               "%u maps: shards are not one global sort", maps);
        for (int p = 0; p < SHARDS; p++)
            CHECK_EQ_INT(counts[p], want_counts[p]);
        dsp_buf_free(&got);
    }
    dsp_repart_map *rm = NULL;
    dsp_err err;
    CHECK(dsp_repart_map_open(s, "x", 3, &o, &rm, &err) == DSP_EINVAL);
    dsp_buf_free(&want);
    free(sorted);
    free(docs);
    close_tmp_store(s);
}

static void test_repartition_hash_keeps_order(void)
{
    enum { N = 2000, SHARDS = 5 };
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    repart_doc *docs = make_repart_docs(N);
    dsp_repart_opts o = {.mode = DSP_REPART_HASH};
    dsp_buf want = DSP_BUF_INIT;
    size_t want_counts[SHARDS] = {0};
    for (uint32_t p = 0; p < SHARDS; p++)
        for (size_t i = 0; i < N; i++)
            if (dsp_shuffle_partition(XXH3_64bits(docs[i].key, docs[i].key_len), SHARDS) == p) {
                dsp_buf_printf(&want, "{\"n\":%zu}\n", docs[i].index);
                want_counts[p]++;
            }
    for (uint32_t maps = 1; maps <= 4; maps *= 2) {
        dsp_buf got = DSP_BUF_INIT;
        size_t counts[SHARDS];
        REQUIRE(run_repart(s, docs, N, maps, SHARDS, &o, &got, counts) == 0);
        CHECKF(got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
               "%u maps: shard contents or order differ", maps);
        for (int p = 0; p < SHARDS; p++) {
            CHECK_EQ_INT(counts[p], want_counts[p]);
            CHECK(counts[p] > 0);
        }
        dsp_buf_free(&got);
    }
    dsp_buf_free(&want);
    free(docs);
    close_tmp_store(s);
}

/* The writer's SHA-256 matches the stored bytes, and one flipped byte in
 * an incompressible record (a raw block, which zstd copies without any
 * structure to break) fails the frame checksum with the key named. */
static void test_flipped_data_byte_rejected(void)
{
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    char value[4000];
    rng_state = 99;
    for (size_t i = 0; i < sizeof value; i++)
        value[i] = (char)rng_next();
    const char *key = "flip/shuffle.bin";
    dsp_err err;
    dsp_shuffle_writer *w = NULL;
    REQUIRE(dsp_shuffle_writer_open(s, key, 1, NULL, &w, &err) == DSP_OK);
    REQUIRE(dsp_shuffle_writer_add(w, 0, "k", 1, value, sizeof value, &err) == DSP_OK);
    dsp_shuffle_write_stats ws;
    REQUIRE(dsp_shuffle_writer_close(w, &ws, &err) == DSP_OK);

    dsp_buf body = DSP_BUF_INIT;
    REQUIRE(dsp_store_get(s, key, 0, -1, &body, NULL, &err) == DSP_OK);
    char sha[65];
    dsp_sha256_hex(body.data, body.len, sha);
    CHECK_EQ_STR(ws.sha256, sha);

    body.data[2000] ^= 0x01;
    REQUIRE(dsp_store_put(s, key, body.data, body.len, NULL, NULL, &err) == DSP_OK);
    dsp_shuffle_reader *r = NULL;
    CHECK_EQ_INT(dsp_shuffle_reader_open(s, &key, NULL, 1, 1, 0, 1, NULL, &r, &err),
                 DSP_ECORRUPT);
    CHECK(r == NULL);
    CHECKF(strstr(err.msg, key) != NULL, "message: %s", err.msg);
    dsp_shuffle_reader_close(r);
    dsp_buf_free(&body);
    close_tmp_store(s);
}

/* A set cancel flag fails open before any slice is read, and a flag set
 * after open fails the next record. */
static void test_reader_cancel(void)
{
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    exp_rec *recs = make_records(500, 4, 11);
    const char *keys[2] = {"cancel-a", "cancel-b"};
    REQUIRE(write_map(s, keys[0], 4, recs, 0, 250, NULL, NULL) == 0);
    REQUIRE(write_map(s, keys[1], 4, recs, 250, 500, NULL, NULL) == 0);

    volatile int cancel = 1;
    dsp_shuffle_reader_opts opts = {.cancel = &cancel};
    dsp_shuffle_reader *r = NULL;
    dsp_err err = {0};
    CHECK_EQ_INT(dsp_shuffle_reader_open(s, keys, NULL, 2, 4, 0, 4, &opts, &r, &err),
                 DSP_ECANCELLED);
    CHECK(r == NULL);
    CHECKF(strstr(err.msg, "cancelled") != NULL, "message: %s", err.msg);

    cancel = 0;
    REQUIRE(dsp_shuffle_reader_open(s, keys, NULL, 2, 4, 0, 4, &opts, &r, &err) == DSP_OK);
    dsp_shuffle_rec rec;
    CHECK_EQ_INT(dsp_shuffle_reader_next(r, &rec, &err), 1);
    cancel = 1;
    CHECK_EQ_INT(dsp_shuffle_reader_next(r, &rec, &err), -1);
    CHECK_EQ_INT(err.code, DSP_ECANCELLED);
    dsp_shuffle_reader_close(r);
    free(recs);
    close_tmp_store(s);
}

/* Keys and values drawn from four byte values, so that many records share
 * their first 8 key bytes, zero padding included. */
typedef struct {
    unsigned char key[12], value[3];
    size_t key_len, value_len;
} sort_rec;

static int sort_rec_cmp(const void *pa, const void *pb)
{
    const sort_rec *a = pa, *b = pb;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c || a->key_len != b->key_len)
        return c ? c : (a->key_len < b->key_len ? -1 : 1);
    n = a->value_len < b->value_len ? a->value_len : b->value_len;
    c = memcmp(a->value, b->value, n);
    if (c || a->value_len != b->value_len)
        return c ? c : (a->value_len < b->value_len ? -1 : 1);
    return 0;
}

/* The sorter orders records by key bytes, then shorter key first, then by
 * value the same way, in memory and across spilled runs. */
static void test_sorter_orders_bytes(void)
{
    static const unsigned char alphabet[4] = {0x00, 0x01, 'a', 0xff};
    enum { N = 20000 };
    sort_rec *recs = calloc(N, sizeof *recs);
    REQUIRE(recs);
    rng_state = 2024;
    for (size_t i = 0; i < N; i++) {
        recs[i].key_len = rng_next() % 13;
        for (size_t k = 0; k < recs[i].key_len; k++)
            recs[i].key[k] = alphabet[rng_next() % 4];
        recs[i].value_len = rng_next() % 4;
        for (size_t k = 0; k < recs[i].value_len; k++)
            recs[i].value[k] = alphabet[rng_next() % 4];
    }
    char tmpl[] = "/tmp/dsp-sorter-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != NULL);
    size_t budgets[2] = {64u << 20, 64u << 10}; /* in memory, then spilled runs */
    for (int round = 0; round < 2; round++) {
        dsp_shuffle_reader_opts opts = {.memory_budget = budgets[round], .tmp_dir = tmpl};
        dsp_shuffle_reader *r = dsp_shuffle_sorter_open(&opts);
        dsp_err err = {0};
        for (size_t i = 0; i < N; i++)
            REQUIRE(dsp_shuffle_sorter_add(r, recs[i].key, recs[i].key_len, recs[i].value,
                                           recs[i].value_len, &err) == DSP_OK);
        REQUIRE(dsp_shuffle_sorter_finish(r, &err) == DSP_OK);
        sort_rec *want = malloc(N * sizeof *want);
        REQUIRE(want);
        memcpy(want, recs, N * sizeof *want);
        qsort(want, N, sizeof *want, sort_rec_cmp);
        size_t i = 0;
        dsp_shuffle_rec rec;
        int rc;
        while ((rc = dsp_shuffle_reader_next(r, &rec, &err)) == 1 && i < N) {
            sort_rec got = {.key_len = rec.key_len, .value_len = rec.value_len};
            memcpy(got.key, rec.key, rec.key_len);
            memcpy(got.value, rec.value, rec.value_len);
            if (sort_rec_cmp(&got, &want[i]) != 0) {
                CHECKF(0, "round %d: record %zu out of order", round, i);
                break;
            }
            i++;
        }
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(i, N);
        dsp_shuffle_read_stats st;
        dsp_shuffle_reader_stats(r, &st);
        if (round == 1)
            CHECK(st.runs_spilled > 1);
        dsp_shuffle_reader_close(r);
        free(want);
    }
    rmdir(tmpl);
    free(recs);
}

TEST_MAIN({"round trip local store", test_round_trip_local},
          {"round trip S3", test_round_trip_s3},
          {"empty partitions and maps", test_empty_partitions_and_maps},
          {"coalesces neighbour slices", test_coalesces_neighbour_slices},
          {"spill gives same result", test_spill_gives_same_result},
          {"corrupt file rejected", test_corrupt_file_rejected},
          {"invalid arguments", test_invalid_arguments},
          {"repartition range sorts", test_repartition_range_sorts},
          {"repartition hash keeps order", test_repartition_hash_keeps_order},
          {"reader stops on cancel", test_reader_cancel},
          {"flipped data byte rejected", test_flipped_data_byte_rejected},
          {"sorter orders bytes", test_sorter_orders_bytes})
