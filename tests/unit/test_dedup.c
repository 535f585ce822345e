/* Tests of tasks/dedup.c. The exact and MinHash stages run end to end on
 * the local store in a temporary directory, with the input split into 1 to
 * 4 simulated tasks and 1 to 7 reduce partitions. Inputs are real Common
 * Crawl text, real kernel documentation in two versions and synthetic edits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>

#include <cjson/cJSON.h>

#include "../../core/buf.h"
#include "../../core/util.h"
#include "../../storage/store.h"
#include "../../tasks/dedup.h"
#include "test.h"

typedef struct {
    char **text;
    size_t *len;
    dsp_dedup_order *order;
    size_t n;
} corpus;

static void corpus_free(corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->text[i]);
    free(c->text);
    free(c->len);
    free(c->order);
    memset(c, 0, sizeof *c);
}

static void corpus_add(corpus *c, const char *text, size_t len, uint64_t input, uint64_t offset)
{
    c->text = realloc(c->text, (c->n + 1) * sizeof *c->text);
    c->len = realloc(c->len, (c->n + 1) * sizeof *c->len);
    c->order = realloc(c->order, (c->n + 1) * sizeof *c->order);
    c->text[c->n] = malloc(len + 1);
    memcpy(c->text[c->n], text, len);
    c->text[c->n][len] = '\0';
    c->len[c->n] = len;
    c->order[c->n].input = input;
    c->order[c->n].offset = offset;
    c->n++;
}

/* Load the text members of a gzip JSONL file; the order key is (input,
 * byte offset of the line in the decompressed file). */
static int corpus_load(corpus *c, const char *path, uint64_t input)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return -1;
    dsp_buf all = DSP_BUF_INIT;
    char chunk[65536];
    int n;
    while ((n = gzread(f, chunk, sizeof chunk)) > 0)
        dsp_buf_append(&all, chunk, (size_t)n);
    gzclose(f);
    size_t off = 0;
    while (off < all.len) {
        char *nl = memchr(all.data + off, '\n', all.len - off);
        size_t end = nl ? (size_t)(nl - all.data) : all.len;
        char save = all.data[end];
        all.data[end] = '\0';
        cJSON *j = cJSON_Parse(all.data + off);
        all.data[end] = save;
        cJSON *t = j ? cJSON_GetObjectItem(j, "text") : NULL;
        if (t && cJSON_IsString(t))
            corpus_add(c, t->valuestring, strlen(t->valuestring), input, off);
        cJSON_Delete(j);
        off = end + 1;
    }
    dsp_buf_free(&all);
    return 0;
}

static char tmp_root[256];

static dsp_store *open_tmp_store(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/dsp-test-dedup-XXXXXX");
    if (!mkdtemp(tmp_root))
        return NULL;
    dsp_store *s = NULL;
    dsp_err err;
    if (dsp_store_open(tmp_root, NULL, &s, &err) != DSP_OK)
        return NULL;
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

/* First document of task t when n documents are split into `tasks`
 * contiguous tasks. */
static size_t task_start(size_t n, uint32_t tasks, uint32_t t)
{
    return (size_t)((uint64_t)n * t / tasks);
}

static char **make_keys(const char *fmt, const char *run, uint32_t n)
{
    char **keys = calloc(n ? n : 1, sizeof *keys);
    for (uint32_t i = 0; i < n; i++)
        keys[i] = dsp_xasprintf(fmt, run, i);
    return keys;
}

static void free_keys(char **keys, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* Stage 3/4 shared by both kinds: each task reads its drop list and marks
 * keep[i]. Returns the number of documents dropped, or -1. */
static long run_filter(dsp_store *s, const corpus *c, uint32_t tasks, char **drop_keys,
                       size_t ndrops, unsigned char *keep)
{
    long dropped = 0;
    for (uint32_t t = 0; t < tasks; t++) {
        dsp_dedup_drops *d;
        dsp_err err;
        if (dsp_dedup_drops_open(s, (const char *const *)drop_keys, NULL, ndrops, tasks, t, NULL,
                                 &d, &err) != DSP_OK) {
            fprintf(stderr, "  drops open: %s\n", err.msg);
            return -1;
        }
        for (size_t i = task_start(c->n, tasks, t); i < task_start(c->n, tasks, t + 1); i++) {
            int r = dsp_dedup_drops_contains(d, c->order[i], &err);
            if (r < 0) {
                fprintf(stderr, "  drops contains: %s\n", err.msg);
                dsp_dedup_drops_close(d);
                return -1;
            }
            keep[i] = !r;
            dropped += r;
        }
        dsp_dedup_drops_close(d);
    }
    return dropped;
}

/* Add document i of c to an exact map: its text, or with `values` the
 * typed bytes of the raw JSON value that c->text[i] contains. */
static dsp_status exact_add(dsp_dedup_exact_map *m, const corpus *c, size_t i, int values,
                            dsp_err *err)
{
    if (!values)
        return dsp_dedup_exact_map_add(m, c->text[i], c->len[i], c->order[i], err);
    dsp_arena arena;
    dsp_arena_init(&arena, 4096);
    dsp_buf bytes = DSP_BUF_INIT;
    dsp_json_type type = dsp_json_value_bytes(&arena, c->text[i], c->len[i], &bytes);
    dsp_status st = dsp_dedup_exact_map_add_value(m, type, bytes.data ? bytes.data : "",
                                                  bytes.len, c->order[i], err);
    dsp_buf_free(&bytes);
    dsp_arena_free(&arena);
    return st;
}

/* Run exact dedup over c with `tasks` source tasks and `parts` partitions.
 * It compares texts, or typed JSON values with `values`. Fills keep[] and
 * returns the number dropped, or -1 on error. */
static long run_exact_mode(dsp_store *s, const corpus *c, uint32_t tasks, uint32_t parts,
                           int raw, int values, unsigned char *keep)
{
    char run[64];
    snprintf(run, sizeof run, "exact-%u-%u-%d%s", tasks, parts, raw, values ? "-values" : "");
    char **maps = make_keys("%s/map-%u", run, tasks), **drops = make_keys("%s/drop-%u", run, parts);
    dsp_dedup_exact_opts o = {.raw = raw};
    dsp_err err;
    long result = -1;
    for (uint32_t t = 0; t < tasks; t++) {
        dsp_dedup_exact_map *m;
        if (dsp_dedup_exact_map_open(s, maps[t], parts, t, &o, &m, &err) != DSP_OK)
            goto out;
        for (size_t i = task_start(c->n, tasks, t); i < task_start(c->n, tasks, t + 1); i++)
            if (exact_add(m, c, i, values, &err) != DSP_OK) {
                dsp_dedup_exact_map_abort(m);
                goto out;
            }
        if (dsp_dedup_exact_map_close(m, NULL, &err) != DSP_OK)
            goto out;
    }
    for (uint32_t p = 0; p < parts; p++)
        if (dsp_dedup_exact_reduce(s, (const char *const *)maps, NULL, tasks, parts, p, drops[p],
                                   tasks, &o.io, NULL, &err) != DSP_OK)
            goto out;
    result = run_filter(s, c, tasks, drops, parts, keep);
out:
    if (result < 0 && err.msg[0])
        fprintf(stderr, "  exact dedup: %s\n", err.msg);
    free_keys(maps, tasks);
    free_keys(drops, parts);
    return result;
}

static long run_exact(dsp_store *s, const corpus *c, uint32_t tasks, uint32_t parts, int raw,
                      unsigned char *keep)
{
    return run_exact_mode(s, c, tasks, parts, raw, 0, keep);
}

/* Run MinHash dedup; clusters (optional) receives the clusters JSONL. */
static long run_minhash(dsp_store *s, const corpus *c, uint32_t tasks, uint32_t parts,
                        const dsp_dedup_minhash_opts *o, unsigned char *keep, dsp_buf *clusters,
                        dsp_dedup_stats *band_stats)
{
    char run[64];
    snprintf(run, sizeof run, "minhash-%u-%u", tasks, parts);
    char **maps = make_keys("%s/map-%u", run, tasks), **edges = make_keys("%s/edge-%u", run, parts);
    char *drop = dsp_xasprintf("%s/drop", run), *ckey = dsp_xasprintf("%s/clusters.jsonl", run);
    dsp_err err = {0};
    long result = -1;
    for (uint32_t t = 0; t < tasks; t++) {
        dsp_dedup_minhash_map *m;
        if (dsp_dedup_minhash_map_open(s, maps[t], parts, t, o, &m, &err) != DSP_OK)
            goto out;
        for (size_t i = task_start(c->n, tasks, t); i < task_start(c->n, tasks, t + 1); i++)
            if (dsp_dedup_minhash_map_add(m, c->text[i], c->len[i], c->order[i], &err) != DSP_OK) {
                dsp_dedup_minhash_map_abort(m);
                goto out;
            }
        if (dsp_dedup_minhash_map_close(m, NULL, &err) != DSP_OK)
            goto out;
    }
    if (band_stats)
        memset(band_stats, 0, sizeof *band_stats);
    for (uint32_t p = 0; p < parts; p++) {
        dsp_dedup_stats st;
        if (dsp_dedup_minhash_bands(s, (const char *const *)maps, NULL, tasks, parts, p, edges[p],
                                    o, &st, &err) != DSP_OK)
            goto out;
        if (band_stats) {
            band_stats->edges += st.edges;
            band_stats->candidates += st.candidates;
            band_stats->runs_spilled += st.runs_spilled;
            if (st.max_group > band_stats->max_group)
                band_stats->max_group = st.max_group;
        }
    }
    dsp_dedup_stats cs;
    if (dsp_dedup_minhash_components(s, (const char *const *)edges, NULL, parts, drop, tasks, ckey,
                                     o ? &o->io : NULL, &cs, &err) != DSP_OK)
        goto out;
    if (band_stats)
        band_stats->components = cs.components;
    if (clusters && dsp_store_get(s, ckey, 0, -1, clusters, NULL, &err) != DSP_OK)
        goto out;
    result = run_filter(s, c, tasks, &drop, 1, keep);
out:
    if (result < 0 && err.msg[0])
        fprintf(stderr, "  MinHash dedup: %s\n", err.msg);
    free_keys(maps, tasks);
    free_keys(edges, parts);
    free(drop);
    free(ckey);
    return result;
}

static const char *cc_path = "tests/data/cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz";
static const char *linux_doc_path = "tests/data/linux-doc/linux-doc-6.1-6.12-sample.jsonl.gz";

static const corpus *sort_corpus;

static int index_by_text(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    size_t la = sort_corpus->len[a], lb = sort_corpus->len[b];
    int c = memcmp(sort_corpus->text[a], sort_corpus->text[b], la < lb ? la : lb);
    if (c)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Count exact duplicates without hashing: sort document indices by text
 * and count the members after the first of each run. The first of a run
 * (lowest index) is the one that must survive. */
static size_t count_duplicates_by_sort(const corpus *c, unsigned char *expect_keep)
{
    size_t *idx = malloc((c->n + 1) * sizeof *idx);
    for (size_t i = 0; i < c->n; i++)
        idx[i] = i;
    sort_corpus = c;
    qsort(idx, c->n, sizeof *idx, index_by_text);
    size_t dups = 0;
    for (size_t i = 0; i < c->n; i++) {
        int same = i > 0 && c->len[idx[i]] == c->len[idx[i - 1]] &&
                   memcmp(c->text[idx[i]], c->text[idx[i - 1]], c->len[idx[i]]) == 0;
        expect_keep[idx[i]] = !same;
        dups += same;
    }
    free(idx);
    return dups;
}

static void test_exact_matches_sorted_count(void)
{
    corpus c = {0};
    REQUIRE(corpus_load(&c, cc_path, 0) == 0);
    CHECK_EQ_INT(c.n, 697);
    unsigned char *expect = calloc(c.n, 1), *keep = calloc(c.n, 1);
    size_t dups = count_duplicates_by_sort(&c, expect);
    /* 35 was also counted with python3: len(texts) - len(Counter(texts)). */
    CHECK_EQ_INT(dups, 35);
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    CHECK_EQ_INT(run_exact(s, &c, 2, 3, 1, keep), (long)dups);
    CHECK(memcmp(keep, expect, c.n) == 0);
    /* Normalisation folds case, digits and punctuation, so it can only
     * find more duplicates, never fewer. */
    long normalised = run_exact(s, &c, 2, 3, 0, keep);
    CHECK(normalised >= (long)dups);
    close_tmp_store(s);
    free(expect);
    free(keep);
    corpus_free(&c);
}

static void test_exact_same_for_any_split(void)
{
    corpus c = {0};
    REQUIRE(corpus_load(&c, cc_path, 0) == 0);
    REQUIRE(corpus_load(&c, linux_doc_path, 1) == 0);
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    unsigned char *base = calloc(c.n, 1), *keep = calloc(c.n, 1);
    long dropped = run_exact(s, &c, 1, 1, 0, base);
    CHECK(dropped > 0);
    const uint32_t splits[][2] = {{2, 2}, {4, 4}, {4, 1}, {1, 4}, {3, 7}};
    for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
        CHECK_EQ_INT(run_exact(s, &c, splits[k][0], splits[k][1], 0, keep), dropped);
        CHECKF(memcmp(keep, base, c.n) == 0, "tasks %u partitions %u", splits[k][0],
               splits[k][1]);
    }
    close_tmp_store(s);
    free(base);
    free(keep);
    corpus_free(&c);
}

static void test_exact_empty_and_single(void)
{
    corpus c = {0};
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    unsigned char keep[2] = {9, 9};
    CHECK_EQ_INT(run_exact(s, &c, 1, 1, 0, keep), 0);
    CHECK_EQ_INT(run_exact(s, &c, 3, 2, 0, keep), 0);
    corpus_add(&c, "only one", 8, 0, 0);
    CHECK_EQ_INT(run_exact(s, &c, 1, 2, 0, keep), 0);
    CHECK_EQ_INT(keep[0], 1);
    /* Two tasks but one document: the second task has no input. */
    CHECK_EQ_INT(run_exact(s, &c, 2, 2, 0, keep), 0);
    CHECK_EQ_INT(keep[0], 1);
    /* The same text in a later document is dropped, the first kept. */
    corpus_add(&c, "Only  ONE!", 10, 0, 100);
    CHECK_EQ_INT(run_exact(s, &c, 2, 2, 0, keep), 1);
    CHECK_EQ_INT(keep[0], 1);
    CHECK_EQ_INT(keep[1], 0);
    CHECK_EQ_INT(run_exact(s, &c, 2, 2, 1, keep), 0);
    close_tmp_store(s);
    corpus_free(&c);
}

static void test_exact_values_typed(void)
{
    /* Raw JSON values in input order, and whether each survives when the
     * values are compared raw (the default for a field): values of
     * different types never match, and numbers match by value. */
    static const struct {
        const char *value;
        int kept;
    } cases[] = {
        {"1", 1},
        {"\"1\"", 1},
        {"1.0", 0},
        {"10e-1", 0},
        {"\"1.0\"", 1},
        {"2", 1},
        {"9007199254740993", 1},
        {"9007199254740992", 1},
        {"true", 1},
        {"\"true\"", 1},
        {"true", 0},
        {"\"null\"", 1},
        {"[1, 2]", 1},
        {"[1,2]", 0},
        {"\"[1,2]\"", 1},
        {"{\"a\": 1}", 1},
        {"{\"a\":1}", 0},
        {"\"Page A\"", 1},
        {"\"page  a!\"", 1},
    };
    size_t n = sizeof cases / sizeof cases[0];
    corpus c = {0};
    for (size_t i = 0; i < n; i++)
        corpus_add(&c, cases[i].value, strlen(cases[i].value), 0, i * 10);
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    unsigned char keep[sizeof cases / sizeof cases[0]];
    CHECK(run_exact_mode(s, &c, 2, 3, 1, 1, keep) >= 0);
    for (size_t i = 0; i < n; i++)
        CHECKF(keep[i] == cases[i].kept, "value %s: kept %d, expected %d", cases[i].value,
               keep[i], cases[i].kept);

    /* Normalised: "page  a!" matches "Page A", but the numbers 1 and 2 do
     * not match although normalising turns every digit into 0. */
    CHECK(run_exact_mode(s, &c, 1, 1, 0, 1, keep) >= 0);
    CHECK_EQ_INT(keep[n - 1], 0);
    CHECK_EQ_INT(keep[5], 1);
    CHECK_EQ_INT(keep[6], 1);
    close_tmp_store(s);
    corpus_free(&c);
}

/* n random letter-only words, built from a fixed seed. */
static void random_words(dsp_buf *b, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        if (b->len)
            dsp_buf_append_char(b, ' ');
        size_t len = 3 + (*state >> 60) % 6;
        for (size_t j = 0; j < len; j++) {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            dsp_buf_append_char(b, (char)('a' + *state % 26));
        }
    }
}

static void test_minhash_controlled_edits(void)
{
    /* A' is A shifted by 50 of 1004 words (exact Jaccard 0.905); B' is B
     * shifted by 333 (exact Jaccard 0.50); C shares nothing. */
    uint64_t st = 4242;
    dsp_buf a = DSP_BUF_INIT, b = DSP_BUF_INIT, other = DSP_BUF_INIT;
    random_words(&a, 1054, &st);
    random_words(&b, 1337, &st);
    random_words(&other, 800, &st);
    size_t wa[1100], wb[1400], na = 0, nb = 0;
    wa[na++] = 0;
    for (size_t i = 0; i < a.len; i++)
        if (a.data[i] == ' ')
            wa[na++] = i + 1;
    wb[nb++] = 0;
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i] == ' ')
            wb[nb++] = i + 1;
    corpus c = {0};
    corpus_add(&c, a.data, wa[1004] - 1, 0, 0);
    corpus_add(&c, b.data, wb[1004] - 1, 0, 10);
    corpus_add(&c, other.data, other.len, 0, 20);
    corpus_add(&c, a.data + wa[50], a.len - wa[50], 0, 30);
    corpus_add(&c, b.data + wb[333], b.len - wb[333], 0, 40);
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    unsigned char keep[5];
    dsp_buf clusters = DSP_BUF_INIT;
    CHECK_EQ_INT(run_minhash(s, &c, 2, 2, NULL, keep, &clusters, NULL), 1);
    CHECK_EQ_INT(keep[0], 1);
    CHECK_EQ_INT(keep[1], 1);
    CHECK_EQ_INT(keep[2], 1);
    CHECK_EQ_INT(keep[3], 0);
    CHECK_EQ_INT(keep[4], 1);
    CHECK_EQ_STR(clusters.data, "{\"representative\":[0,0],\"members\":[[0,30]]}\n");
    dsp_buf_free(&clusters);
    close_tmp_store(s);
    corpus_free(&c);
    dsp_buf_free(&a);
    dsp_buf_free(&b);
    dsp_buf_free(&other);
}

/* Real versions of the same kernel documents: whenever the two versions
 * are near-identical the later one goes, and clearly rewritten documents
 * both stay. The exact Jaccard decides which pairs are clear cases. */
static void test_minhash_linux_doc_versions(void)
{
    corpus c = {0};
    REQUIRE(corpus_load(&c, linux_doc_path, 0) == 0);
    REQUIRE(c.n == 120);
    dsp_minhash *m;
    dsp_err err;
    REQUIRE(dsp_minhash_new(NULL, &m, &err) == DSP_OK);
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    unsigned char keep[120];
    long dropped = run_minhash(s, &c, 3, 4, NULL, keep, NULL, NULL);
    CHECK(dropped > 30);
    int clear_dups = 0, clear_distinct = 0;
    for (size_t i = 0; i + 1 < c.n; i += 2) {
        /* Exact Jaccard of the shingle sets of the pair. */
        const uint64_t *h;
        size_t na = dsp_minhash_shingles(m, c.text[i], c.len[i], &h);
        uint64_t *sa = malloc((na + 1) * sizeof *sa);
        memcpy(sa, h, na * sizeof *sa);
        size_t nb = dsp_minhash_shingles(m, c.text[i + 1], c.len[i + 1], &h);
        size_t inter = 0, uniq_b = 0;
        for (size_t y = 0; y < nb; y++) {
            int dup_in_b = 0;
            for (size_t z = 0; z < y && !dup_in_b; z++)
                dup_in_b = h[z] == h[y];
            if (dup_in_b)
                continue;
            uniq_b++;
            for (size_t x = 0; x < na; x++)
                if (sa[x] == h[y]) {
                    inter++;
                    break;
                }
        }
        size_t uniq_a = 0;
        for (size_t x = 0; x < na; x++) {
            int seen = 0;
            for (size_t z = 0; z < x && !seen; z++)
                seen = sa[z] == sa[x];
            uniq_a += !seen;
        }
        double j = (double)inter / (double)(uniq_a + uniq_b - inter);
        free(sa);
        CHECKF(keep[i] == 1, "doc %zu (the 6.1 version) must be kept", i);
        if (j >= 0.92) {
            clear_dups++;
            CHECKF(keep[i + 1] == 0, "pair %zu: Jaccard %.3f but the copy was kept", i / 2, j);
        } else if (j < 0.6) {
            clear_distinct++;
            CHECKF(keep[i + 1] == 1, "pair %zu: Jaccard %.3f but the copy was dropped", i / 2, j);
        }
    }
    CHECK(clear_dups > 30);
    CHECK(clear_distinct >= 4);
    close_tmp_store(s);
    dsp_minhash_free(m);
    corpus_free(&c);
}

static void test_minhash_same_for_any_split(void)
{
    corpus c = {0};
    REQUIRE(corpus_load(&c, linux_doc_path, 0) == 0);
    REQUIRE(corpus_load(&c, cc_path, 1) == 0);
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    unsigned char *base = calloc(c.n, 1), *keep = calloc(c.n, 1);
    dsp_buf base_clusters = DSP_BUF_INIT, clusters = DSP_BUF_INIT;
    long dropped = run_minhash(s, &c, 1, 1, NULL, base, &base_clusters, NULL);
    CHECK(dropped > 30);
    const uint32_t splits[][2] = {{2, 2}, {4, 4}, {4, 1}, {1, 4}};
    for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
        CHECK_EQ_INT(run_minhash(s, &c, splits[k][0], splits[k][1], NULL, keep, &clusters, NULL),
                     dropped);
        CHECKF(memcmp(keep, base, c.n) == 0, "tasks %u partitions %u", splits[k][0],
               splits[k][1]);
        CHECK(clusters.len == base_clusters.len &&
              memcmp(clusters.data, base_clusters.data, clusters.len) == 0);
    }
    dsp_buf_free(&base_clusters);
    dsp_buf_free(&clusters);
    close_tmp_store(s);
    free(base);
    free(keep);
    corpus_free(&c);
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* 10,000 near copies of one document fall into the same buckets. Star
 * edges keep the edge count linear, and with 1 MiB shuffle budgets the
 * ~70 MB of band records must go through spill files, not memory. */
static void test_minhash_giant_cluster_bounded(void)
{
    enum { COPIES = 10000, WORDS = 300 };
    uint64_t st = 99;
    dsp_buf base = DSP_BUF_INIT;
    random_words(&base, WORDS, &st);
    size_t starts[WORDS + 1], nw = 0;
    starts[nw++] = 0;
    for (size_t i = 0; i < base.len; i++)
        if (base.data[i] == ' ')
            starts[nw++] = i + 1;
    corpus c = {0};
    dsp_buf doc = DSP_BUF_INIT;
    for (size_t k = 0; k < COPIES; k++) {
        /* Replace word k % WORDS with "edited", so 5 of 296 shingles change. */
        size_t w = k % WORDS;
        dsp_buf_reset(&doc);
        dsp_buf_append(&doc, base.data, starts[w]);
        dsp_buf_append_str(&doc, "edited");
        if (w + 1 < WORDS) {
            dsp_buf_append_char(&doc, ' ');
            dsp_buf_append_str(&doc, base.data + starts[w + 1]);
        }
        corpus_add(&c, doc.data, doc.len, k / 5000, k % 5000 * 1000);
    }
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    dsp_dedup_minhash_opts o = {0};
    o.io.reader.memory_budget = 1u << 20;
    o.io.writer.memory_budget = 1u << 20;
    unsigned char *keep = calloc(COPIES, 1);
    dsp_dedup_stats bs;
    long rss_before = max_rss_kib();
    long dropped = run_minhash(s, &c, 2, 2, &o, keep, NULL, &bs);
    long rss_growth_mib = (max_rss_kib() - rss_before) / 1024;
    if (getenv("DSPARK_TEST_VERBOSE"))
        fprintf(stderr, "  peak RSS growth %ld MiB\n", rss_growth_mib);
    CHECK_EQ_INT(dropped, COPIES - 1);
    CHECK_EQ_INT(keep[0], 1);
    CHECK_EQ_INT(bs.components, 1);
    CHECK(bs.max_group > 1000);
    CHECKF(bs.edges < 14 * COPIES, "edges %llu", (unsigned long long)bs.edges);
    CHECK(bs.runs_spilled > 10);
#ifndef __SANITIZE_ADDRESS__
    /* AddressSanitizer's shadow memory and quarantine inflate RSS, so the
     * bound is checked in the plain build only. */
    CHECKF(rss_growth_mib < 48, "peak RSS grew by %ld MiB", rss_growth_mib);
#else
    (void)rss_growth_mib;
#endif
    free(keep);
    close_tmp_store(s);
    corpus_free(&c);
    dsp_buf_free(&base);
    dsp_buf_free(&doc);
}

static void test_drops_reject_unordered_keys(void)
{
    corpus c = {0};
    corpus_add(&c, "same text here", 14, 0, 0);
    corpus_add(&c, "same text here", 14, 0, 50);
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    unsigned char keep[2];
    REQUIRE(run_exact(s, &c, 1, 1, 0, keep) == 1);
    dsp_dedup_drops *d;
    dsp_err err;
    const char *key = "exact-1-1-0/drop-0";
    REQUIRE(dsp_dedup_drops_open(s, &key, NULL, 1, 1, 0, NULL, &d, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_dedup_drops_count(d), 1);
    dsp_dedup_order o50 = {0, 50}, o10 = {0, 10};
    CHECK_EQ_INT(dsp_dedup_drops_contains(d, o50, &err), 1);
    CHECK_EQ_INT(dsp_dedup_drops_contains(d, o10, &err), -1);
    CHECK(strstr(err.msg, "ascending") != NULL);
    dsp_dedup_drops_close(d);
    close_tmp_store(s);
    corpus_free(&c);
}

static void test_minhash_rejects_sketch_bits(void)
{
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    dsp_dedup_minhash_opts o = {.sketch_bits = 3};
    dsp_dedup_minhash_map *m = NULL;
    dsp_err err;
    CHECK(dsp_dedup_minhash_map_open(s, "bits/map-0", 1, 0, &o, &m, &err) == DSP_EINVAL);
    CHECK(strstr(err.msg, "sketch_bits 3") != NULL);
    const char *key = "bits/map-0";
    CHECK(dsp_dedup_minhash_bands(s, &key, NULL, 1, 1, 0, "bits/edges-0", &o, NULL, &err) ==
          DSP_EINVAL);
    CHECK(strstr(err.msg, "sketch_bits 3") != NULL);
    close_tmp_store(s);
}

TEST_MAIN({"exact matches sorted count", test_exact_matches_sorted_count},
          {"exact same for any split", test_exact_same_for_any_split},
          {"exact empty and single", test_exact_empty_and_single},
          {"exact values typed", test_exact_values_typed},
          {"minhash controlled edits", test_minhash_controlled_edits},
          {"minhash linux-doc versions", test_minhash_linux_doc_versions},
          {"minhash same for any split", test_minhash_same_for_any_split},
          {"minhash giant cluster bounded", test_minhash_giant_cluster_bounded},
          {"drops reject unordered keys", test_drops_reject_unordered_keys},
          {"minhash rejects sketch bits", test_minhash_rejects_sketch_bits})
