/* Tests of the MinHash components stage (tasks/dedup_components.c) and its
 * union-find.
 * Generated graphs go through both the in-memory union-find and the
 * external large-star/small-star rounds, which must write byte-identical
 * drop files and clusters. A giant cluster of 10,000 edited copies of a
 * real kernel document must stay within the components memory budget. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cjson/cJSON.h>

#include "../../core/buf.h"
#include "../../core/util.h"
#include "../../storage/store.h"
#include "../../tasks/dedup.h"
#include "../../tasks/unionfind.h"
#include "test.h"

#define GRAPH_TASKS 5
#define GRAPH_FILES 3
#define TINY_BUDGET (64u << 10)

static char tmp_root[64];

static dsp_store *open_tmp_store(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/dsp-test-components-XXXXXX");
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

static uint64_t rng_next(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* ---- generated graphs ---- */

typedef struct {
    uint32_t *a, *b;
    size_t n, cap;
    uint32_t nodes; /* ids are 0..nodes-1 */
} graph;

static void graph_add(graph *g, uint32_t a, uint32_t b)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 1024;
        g->a = realloc(g->a, g->cap * sizeof *g->a);
        g->b = realloc(g->b, g->cap * sizeof *g->b);
    }
    g->a[g->n] = a;
    g->b[g->n] = b;
    g->n++;
    if (a >= g->nodes)
        g->nodes = a + 1;
    if (b >= g->nodes)
        g->nodes = b + 1;
}

static void graph_free(graph *g)
{
    free(g->a);
    free(g->b);
    memset(g, 0, sizeof *g);
}

/* Order key of node id: scattered over inputs so that key order differs
 * from id order; the source task is the input index. */
static dsp_dedup_order node_order(uint32_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    dsp_dedup_order o = {h % GRAPH_TASKS, (h >> 20) * 64 + id};
    return o;
}

/* Write g's edges over GRAPH_FILES edge files in the bands stage's layout,
 * each edge in a random direction. */
static int graph_write(dsp_store *s, const graph *g, char **keys, uint64_t seed)
{
    dsp_shuffle_writer *w[GRAPH_FILES] = {0};
    dsp_err err;
    int ok = 1;
    for (int f = 0; f < GRAPH_FILES && ok; f++)
        ok = dsp_shuffle_writer_open(s, keys[f], 1, NULL, &w[f], &err) == DSP_OK;
    for (size_t i = 0; i < g->n && ok; i++) {
        uint32_t x = g->a[i], y = g->b[i];
        if (rng_next(&seed) & 1) {
            x = g->b[i];
            y = g->a[i];
        }
        dsp_dedup_order ox = node_order(x), oy = node_order(y);
        unsigned char key[32], value[8];
        dsp_dedup_order_encode(ox, key);
        dsp_dedup_order_encode(oy, key + 16);
        for (int k = 0; k < 4; k++) {
            value[k] = (unsigned char)(ox.input >> (24 - 8 * k));
            value[4 + k] = (unsigned char)(oy.input >> (24 - 8 * k));
        }
        ok = dsp_shuffle_writer_add(w[i % GRAPH_FILES], 0, key, sizeof key, value, sizeof value,
                                    &err) == DSP_OK;
    }
    for (int f = 0; f < GRAPH_FILES; f++) {
        if (ok && w[f])
            ok = dsp_shuffle_writer_close(w[f], NULL, &err) == DSP_OK;
        else
            dsp_shuffle_writer_abort(w[f]);
        w[f] = NULL;
    }
    if (!ok)
        fprintf(stderr, "  writing edges: %s\n", err.msg);
    return ok ? 0 : -1;
}

/* Components of g counted with a plain array union-find, independent of
 * tasks/unionfind.c: *components over nodes with an edge, *members the
 * nodes that are not their component's smallest key. */
static void graph_reference(const graph *g, uint64_t *components, uint64_t *members)
{
    uint32_t *parent = malloc(g->nodes * sizeof *parent);
    unsigned char *seen = calloc(g->nodes, 1);
    for (uint32_t i = 0; i < g->nodes; i++)
        parent[i] = i;
    for (size_t i = 0; i < g->n; i++) {
        uint32_t x = g->a[i], y = g->b[i];
        seen[x] = seen[y] = 1;
        while (parent[x] != x)
            x = parent[x];
        while (parent[y] != y)
            y = parent[y];
        if (x < y)
            parent[y] = x;
        else if (y < x)
            parent[x] = y;
    }
    *components = *members = 0;
    for (uint32_t i = 0; i < g->nodes; i++) {
        if (!seen[i])
            continue;
        if (parent[i] == i)
            (*components)++;
        else
            (*members)++;
    }
    free(parent);
    free(seen);
}

typedef struct {
    dsp_dedup_stats stats;
    dsp_buf drops, clusters;
} comp_result;

static int run_components(dsp_store *s, char **edge_keys, size_t nedges, size_t budget,
                          const char *name, comp_result *out)
{
    char *drop_key = dsp_xasprintf("%s/drops.bin", name);
    char *clusters_key = dsp_xasprintf("%s/clusters.jsonl", name);
    dsp_dedup_io_opts io = {.components_budget = budget};
    dsp_err err = {0};
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (dsp_dedup_minhash_components(s, (const char *const *)edge_keys, NULL, nedges, drop_key,
                                     GRAPH_TASKS, clusters_key, &io, &out->stats,
                                     &err) != DSP_OK)
        goto done;
    if (dsp_store_get(s, drop_key, 0, -1, &out->drops, NULL, &err) != DSP_OK)
        goto done;
    if (dsp_store_get(s, clusters_key, 0, -1, &out->clusters, NULL, &err) != DSP_OK)
        goto done;
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "  components %s: %s\n", name, err.msg);
    free(drop_key);
    free(clusters_key);
    return rc;
}

static void result_free(comp_result *r)
{
    dsp_buf_free(&r->drops);
    dsp_buf_free(&r->clusters);
}

static int same_bytes(const dsp_buf *a, const dsp_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Every clusters line names a representative smaller than its members,
 * which ascend; lines ascend by representative. */
static int clusters_well_ordered(const dsp_buf *clusters, uint64_t *lines)
{
    *lines = 0;
    double prev_input = -1, prev_offset = -1;
    size_t off = 0;
    while (off < clusters->len) {
        char *nl = memchr(clusters->data + off, '\n', clusters->len - off);
        if (!nl)
            return 0;
        cJSON *j = cJSON_ParseWithLength(clusters->data + off, (size_t)(nl - clusters->data) - off);
        off = (size_t)(nl - clusters->data) + 1;
        cJSON *rep = j ? cJSON_GetObjectItem(j, "representative") : NULL;
        cJSON *members = j ? cJSON_GetObjectItem(j, "members") : NULL;
        if (!rep || !members) {
            cJSON_Delete(j);
            return 0;
        }
        double ri = cJSON_GetArrayItem(rep, 0)->valuedouble;
        double ro = cJSON_GetArrayItem(rep, 1)->valuedouble;
        int ok = ri > prev_input || (ri == prev_input && ro > prev_offset);
        double pi = ri, po = ro;
        cJSON *m;
        cJSON_ArrayForEach(m, members)
        {
            double mi = cJSON_GetArrayItem(m, 0)->valuedouble;
            double mo = cJSON_GetArrayItem(m, 1)->valuedouble;
            ok = ok && (mi > pi || (mi == pi && mo > po));
            pi = mi;
            po = mo;
        }
        prev_input = ri;
        prev_offset = ro;
        cJSON_Delete(j);
        if (!ok)
            return 0;
        (*lines)++;
    }
    return 1;
}

/* Run g through both paths and compare them with each other and with the
 * reference counts. */
static void check_both_paths(const graph *g, uint64_t seed)
{
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    char *keys[GRAPH_FILES];
    for (int f = 0; f < GRAPH_FILES; f++)
        keys[f] = dsp_xasprintf("edges-%d.bin", f);
    comp_result mem, ext;
    memset(&mem, 0, sizeof mem);
    memset(&ext, 0, sizeof ext);
    int written = graph_write(s, g, keys, seed);
    CHECK(written == 0);
    if (written == 0) {
        CHECK(run_components(s, keys, GRAPH_FILES, 0, "memory", &mem) == 0);
        CHECK(run_components(s, keys, GRAPH_FILES, TINY_BUDGET, "external", &ext) == 0);
    }
    uint64_t components, members, lines;
    graph_reference(g, &components, &members);
    CHECK_EQ_INT(mem.stats.rounds, 0);
    CHECKF(ext.stats.rounds > 0 || g->n == 0, "a %u-byte budget did not force the external path",
           TINY_BUDGET);
    CHECK_EQ_INT(mem.stats.components, components);
    CHECK_EQ_INT(mem.stats.dropped, members);
    CHECK_EQ_INT(ext.stats.components, components);
    CHECK_EQ_INT(ext.stats.dropped, members);
    CHECK_EQ_INT(ext.stats.edges, g->n);
    CHECKF(same_bytes(&mem.drops, &ext.drops), "drop files differ (%zu and %zu bytes)",
           mem.drops.len, ext.drops.len);
    CHECKF(same_bytes(&mem.clusters, &ext.clusters), "clusters differ (%zu and %zu bytes)",
           mem.clusters.len, ext.clusters.len);
    CHECK(clusters_well_ordered(&ext.clusters, &lines));
    CHECK_EQ_INT(lines, components);
    if (getenv("DSPARK_TEST_VERBOSE"))
        fprintf(stderr, "  nodes %u edges %zu components %llu rounds %llu\n", g->nodes, g->n,
                (unsigned long long)components, (unsigned long long)ext.stats.rounds);
    result_free(&mem);
    result_free(&ext);
    for (int f = 0; f < GRAPH_FILES; f++)
        free(keys[f]);
    close_tmp_store(s);
}

/* A random permutation of 0..n-1. */
static uint32_t *permutation(uint32_t n, uint64_t *seed)
{
    uint32_t *p = malloc(n * sizeof *p);
    for (uint32_t i = 0; i < n; i++)
        p[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)(rng_next(seed) % i);
        uint32_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

static void test_components_chain(void)
{
    /* A path through 6,000 nodes in random key order: the longest
     * distance for label propagation. */
    uint64_t seed = 11;
    uint32_t *p = permutation(6000, &seed);
    graph g = {0};
    for (uint32_t i = 0; i + 1 < 6000; i++)
        graph_add(&g, p[i], p[i + 1]);
    check_both_paths(&g, seed);
    graph_free(&g);
    free(p);
}

static void test_components_star(void)
{
    /* The centre has the largest key, so every leaf is smaller than it. */
    graph g = {0};
    for (uint32_t i = 0; i < 4000; i++)
        graph_add(&g, 4000, i);
    check_both_paths(&g, 12);
    graph_free(&g);
}

static void test_components_giant(void)
{
    /* 12,000 nodes: a random tree plus as many random extra edges and
     * repeated edges, as many bands of near copies would give. */
    enum { N = 12000 };
    uint64_t seed = 13;
    uint32_t *p = permutation(N, &seed);
    graph g = {0};
    for (uint32_t i = 1; i < N; i++)
        graph_add(&g, p[i], p[rng_next(&seed) % i]);
    for (uint32_t i = 0; i < N; i++)
        graph_add(&g, (uint32_t)(rng_next(&seed) % N), (uint32_t)(rng_next(&seed) % N));
    for (uint32_t i = 0; i < N / 2; i++) {
        size_t e = rng_next(&seed) % g.n;
        graph_add(&g, g.a[e], g.b[e]);
    }
    check_both_paths(&g, seed);
    graph_free(&g);
    free(p);
}

static void test_components_many_small(void)
{
    /* 3,000 pairs and triangles, a few self loops and repeats. */
    uint64_t seed = 14;
    graph g = {0};
    uint32_t next = 0;
    for (int c = 0; c < 3000; c++) {
        uint32_t size = 2 + (uint32_t)(rng_next(&seed) % 2);
        for (uint32_t k = 1; k < size; k++)
            graph_add(&g, next, next + k);
        if (size == 3)
            graph_add(&g, next + 1, next + 2);
        if (c % 100 == 0)
            graph_add(&g, next, next);
        if (c % 7 == 0)
            graph_add(&g, next + 1, next);
        next += size;
    }
    /* A node whose only edge is a loop is a cluster of its own. */
    graph_add(&g, next, next);
    check_both_paths(&g, seed);
    graph_free(&g);
}

static void test_components_empty(void)
{
    graph g = {0};
    check_both_paths(&g, 15);
}

static void test_unionfind_limit(void)
{
    dsp_uf *uf = dsp_uf_new();
    dsp_uf_set_limit(uf, 256u << 10);
    uint32_t last = 0;
    uint64_t added = 0;
    for (uint64_t i = 0; i < 1000000; i++) {
        last = dsp_uf_node(uf, i, 7, 0);
        if (last == DSP_UF_FULL)
            break;
        added++;
    }
    CHECK(last == DSP_UF_FULL);
    CHECK(added > 1000);
    CHECKF(dsp_uf_bytes(uf) + 4 * dsp_uf_count(uf) <= (256u << 10), "%zu bytes",
           dsp_uf_bytes(uf));
    /* Existing nodes are still found after the limit is reached. */
    CHECK_EQ_INT(dsp_uf_node(uf, 5, 7, 0), 5);
    dsp_uf_union(uf, 9, 3);
    dsp_uf_union(uf, 3, 1000);
    CHECK_EQ_INT(dsp_uf_find(uf, 1000), 3);
    CHECK_EQ_INT(dsp_uf_find(uf, 9), 3);
    dsp_uf_free(uf);
}

/* ---- giant cluster of a real document ---- */

static const char *linux_doc_path = "tests/data/linux-doc/linux-doc-6.1-6.12-sample.jsonl.gz";

/* The first document of path with at least min_words words. */
static int load_long_doc(const char *path, size_t min_words, dsp_buf *out)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return -1;
    char *line = malloc(1 << 22);
    int rc = -1;
    while (rc && gzgets(f, line, 1 << 22)) {
        cJSON *j = cJSON_Parse(line);
        cJSON *t = j ? cJSON_GetObjectItem(j, "text") : NULL;
        if (t && cJSON_IsString(t)) {
            size_t words = 0;
            for (const char *c = t->valuestring; *c; c++)
                words += (*c == ' ' || *c == '\n');
            if (words >= min_words) {
                dsp_buf_append_str(out, t->valuestring);
                rc = 0;
            }
        }
        cJSON_Delete(j);
    }
    free(line);
    gzclose(f);
    return rc;
}

/* Build 10,000 copies of the document, each with one word replaced at a
 * different position, and run the map and band stages into edge files.
 * Runs in a child process so that the parent's heap stays small for the
 * memory measurement. */
static int build_giant_edges(dsp_store *s, char **edge_keys, uint32_t parts)
{
    enum { COPIES = 10000, TASKS = 2 };
    dsp_buf base = DSP_BUF_INIT, doc = DSP_BUF_INIT;
    if (load_long_doc(linux_doc_path, 400, &base) != 0)
        return -1;
    size_t *starts = malloc((base.len + 1) * sizeof *starts), nw = 0;
    starts[nw++] = 0;
    for (size_t i = 0; i + 1 < base.len; i++)
        if (base.data[i] == ' ')
            starts[nw++] = i + 1;
    dsp_dedup_minhash_opts o = {0};
    o.io.reader.memory_budget = 1u << 20;
    o.io.writer.memory_budget = 1u << 20;
    dsp_err err = {0};
    int rc = -1;
    char map_key[TASKS][32];
    for (uint32_t t = 0; t < TASKS; t++) {
        snprintf(map_key[t], sizeof map_key[t], "giant/map-%u", t);
        dsp_dedup_minhash_map *m;
        if (dsp_dedup_minhash_map_open(s, map_key[t], parts, t, &o, &m, &err) != DSP_OK)
            goto out;
        for (size_t k = t * COPIES / TASKS; k < (t + 1) * COPIES / TASKS; k++) {
            size_t w = 1 + k * 7919 % (nw - 2);
            dsp_buf_reset(&doc);
            dsp_buf_append(&doc, base.data, starts[w]);
            dsp_buf_printf(&doc, "edited%zu ", k);
            dsp_buf_append(&doc, base.data + starts[w + 1], base.len - starts[w + 1]);
            dsp_dedup_order order = {t, k * 4096};
            if (dsp_dedup_minhash_map_add(m, doc.data, doc.len, order, &err) != DSP_OK) {
                dsp_dedup_minhash_map_abort(m);
                goto out;
            }
        }
        if (dsp_dedup_minhash_map_close(m, NULL, &err) != DSP_OK)
            goto out;
    }
    const char *maps[TASKS] = {map_key[0], map_key[1]};
    for (uint32_t p = 0; p < parts; p++)
        if (dsp_dedup_minhash_bands(s, maps, NULL, TASKS, parts, p, edge_keys[p], &o, NULL,
                                    &err) != DSP_OK)
            goto out;
    rc = 0;
out:
    if (rc && err.msg[0])
        fprintf(stderr, "  building the giant cluster: %s\n", err.msg);
    free(starts);
    dsp_buf_free(&base);
    dsp_buf_free(&doc);
    return rc;
}

static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

typedef struct {
    int ok;
    uint64_t rounds, components, dropped;
    long growth_kib;
} giant_report;

/* Run the components stage in a child process with the peak RSS reset
 * first, and report how far the peak grew above the starting RSS. */
static giant_report measure_components(dsp_store *s, char **warm_keys, char **edge_keys,
                                       uint32_t parts, size_t budget, const char *name)
{
    giant_report rep = {0};
    int fds[2];
    if (pipe(fds) != 0)
        return rep;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        giant_report r = {0};
        /* Run both paths once on a small graph first, so that the code
         * pages of zstd, the store and the sorter that the child faults in
         * do not count as growth. */
        comp_result warm;
        if (run_components(s, warm_keys, GRAPH_FILES, TINY_BUDGET, "giant/warm", &warm) != 0)
            _exit(1);
        result_free(&warm);
        /* Return the free heap pages left by earlier tests to the kernel, so
         * that reusing them counts as growth too. */
        malloc_trim(0);
        FILE *clear = fopen("/proc/self/clear_refs", "w");
        if (clear) {
            fputs("5", clear); /* reset VmHWM to the current RSS */
            fclose(clear);
        }
        long before = status_kib("VmRSS");
        comp_result res;
        r.ok = clear && run_components(s, edge_keys, parts, budget, name, &res) == 0;
        r.growth_kib = status_kib("VmHWM") - before;
        r.rounds = res.stats.rounds;
        r.components = res.stats.components;
        r.dropped = res.stats.dropped;
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    if (pid > 0 && read(fds[0], &rep, sizeof rep) != (ssize_t)sizeof rep)
        rep.ok = 0;
    close(fds[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return rep;
}

static void test_components_giant_real_bounded(void)
{
    enum { PARTS = 2 };
    dsp_store *s = open_tmp_store();
    REQUIRE(s);
    char *keys[PARTS];
    for (int p = 0; p < PARTS; p++)
        keys[p] = dsp_xasprintf("giant/edges-%d.bin", p);
    pid_t pid = fork();
    if (pid == 0)
        _exit(build_giant_edges(s, keys, PARTS) == 0 ? 0 : 1);
    int wstatus = 0;
    REQUIRE(pid > 0);
    REQUIRE(waitpid(pid, &wstatus, 0) == pid);
    REQUIRE(WIFEXITED(wstatus));
    REQUIRE(WEXITSTATUS(wstatus) == 0);
    char *warm_keys[GRAPH_FILES];
    for (int f = 0; f < GRAPH_FILES; f++)
        warm_keys[f] = dsp_xasprintf("giant/warm-%d.bin", f);
    graph warm = {0};
    for (uint32_t i = 1; i < 3000; i++)
        graph_add(&warm, i, i / 2);
    REQUIRE(graph_write(s, &warm, warm_keys, 16) == 0);
    graph_free(&warm);

    /* 10,000 union-find nodes do not fit in half of 1 MiB, so that run
     * takes the external path, and 4 MiB keeps them in memory. The fixed
     * overhead that dedup.h documents is allowed on top of the budget. */
    static const struct {
        size_t budget;
        int external;
    } runs[] = {{1u << 20, 1}, {4u << 20, 0}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "giant/run-%zu", i);
        giant_report r = measure_components(s, warm_keys, keys, PARTS, runs[i].budget, name);
        CHECK(r.ok);
        CHECK_EQ_INT(r.components, 1);
        CHECK_EQ_INT(r.dropped, 9999);
        CHECK_EQ_INT(r.rounds > 0, runs[i].external);
        if (getenv("DSPARK_TEST_VERBOSE"))
            fprintf(stderr, "  budget %zu KiB: rounds %llu, peak RSS growth %ld KiB\n",
                    runs[i].budget >> 10, (unsigned long long)r.rounds, r.growth_kib);
#ifndef __SANITIZE_ADDRESS__
        /* AddressSanitizer's shadow memory and quarantine inflate RSS, so the
         * bound is checked in the plain build only. */
        CHECK(r.growth_kib > 0);
        CHECKF((size_t)r.growth_kib * 1024 <= runs[i].budget + DSP_DEDUP_COMPONENTS_OVERHEAD,
               "peak RSS grew by %ld KiB with a %zu KiB budget", r.growth_kib,
               runs[i].budget >> 10);
#endif
    }
    dsp_buf a = DSP_BUF_INIT, b = DSP_BUF_INIT;
    dsp_err err;
    CHECK(dsp_store_get(s, "giant/run-0/drops.bin", 0, -1, &a, NULL, &err) == DSP_OK);
    CHECK(dsp_store_get(s, "giant/run-1/drops.bin", 0, -1, &b, NULL, &err) == DSP_OK);
    CHECK(a.len > 0);
    CHECK(same_bytes(&a, &b));
    dsp_buf_reset(&a);
    dsp_buf_reset(&b);
    CHECK(dsp_store_get(s, "giant/run-0/clusters.jsonl", 0, -1, &a, NULL, &err) == DSP_OK);
    CHECK(dsp_store_get(s, "giant/run-1/clusters.jsonl", 0, -1, &b, NULL, &err) == DSP_OK);
    CHECK(a.len > 0);
    CHECK(same_bytes(&a, &b));
    dsp_buf_free(&a);
    dsp_buf_free(&b);
    for (int p = 0; p < PARTS; p++)
        free(keys[p]);
    for (int f = 0; f < GRAPH_FILES; f++)
        free(warm_keys[f]);
    close_tmp_store(s);
}

TEST_MAIN({"components chain", test_components_chain},
          {"components star", test_components_star},
          {"components giant random graph", test_components_giant},
          {"components many small", test_components_many_small},
          {"components empty", test_components_empty},
          {"unionfind byte limit", test_unionfind_limit},
          {"components giant real cluster bounded", test_components_giant_real_bounded})
