/*
 * dedup_components.c - the MinHash components stage of dedup.h: connected
 * components over the edge files of the band stage, with one task's
 * memory bounded by io->components_budget.
 *
 * In memory: a union-find over the documents with edges, capped at half
 * the budget. When a node does not fit, the task reads the edge files
 * again and alternates the large-star and small-star operations of
 * Kiveris et al. (2014) over the undirected edge list. Each round is one
 * external sort through tasks/shuffle.h's local sorter. Every component
 * ends as a star whose centre is its smallest order key.
 *
 * Guarantee: both ways write the drops in ascending order key and the
 * clusters by (representative, member), so their outputs are
 * byte-identical, whatever the budget.
 *
 * Edge records (integers big endian):
 *   key   = first order (16) | member order (16)
 *   value = first task (4) | member task (4)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "dedup.h"
#include "unionfind.h"

#define EDGE_KEY_BYTES (2 * DSP_DEDUP_ORDER_SIZE)

#define COMP_NODE_BYTES DSP_DEDUP_ORDER_SIZE
/* Far above the rounds measured: 20 for a path of 6,000 nodes in random
 * key order (tests/unit/test_components.c). Reaching it means a bug. */
#define COMP_MAX_ROUNDS 1000
/* Uncompressed bytes per frame of the drop file, unless io->writer sets a
 * budget. */
#define COMP_DROP_FRAME (256u << 10)
/* A cluster line goes to the store in pieces of about this size. */
#define COMP_LINE_FLUSH (64u << 10)

static uint32_t be32_get(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct {
    dsp_writer *w;
    dsp_buf line;
    int members; /* members in the open line */
} comp_clusters;

typedef struct {
    dsp_store *store;
    const char *const *edge_keys;
    const uint64_t *edge_sizes;
    size_t nedges;
    const char *drop_key;
    uint32_t tasks;
    const char *clusters_key;
    dsp_shuffle_reader_opts edge_opts; /* edge files */
    dsp_shuffle_reader_opts sort_opts; /* local sorters of the external path */
    dsp_shuffle_writer_opts drop_opts;
    size_t budget, uf_limit;
    dsp_shuffle_writer *drops;
    comp_clusters clusters;
    dsp_dedup_stats s;
} comp_ctx;

/*
 * Split the budget. The union-find gets half, and counts its own growth
 * peaks. Each shuffle reader or sorter gets an eighth, because at most
 * three are live at once (or the edge reader next to the union-find). Each
 * may also keep up to twice its budget resident: its buffers grow by
 * doubling, glibc's qsort copies the sort index, and freed heap blocks
 * stay resident.
 */
static void comp_ctx_init(comp_ctx *c, const dsp_dedup_io_opts *io)
{
    c->budget = io && io->components_budget ? io->components_budget
                                            : DSP_DEDUP_COMPONENTS_DEFAULT_BUDGET;
    size_t share = c->budget / 8;
    if (io) {
        c->edge_opts = io->reader;
        c->drop_opts = io->writer;
    }
    if (c->edge_opts.memory_budget == 0 || c->edge_opts.memory_budget > share)
        c->edge_opts.memory_budget = share;
    /* Ranged GETs in flight also hold their bytes: at most one share. */
    int threads = c->edge_opts.threads > 0 ? c->edge_opts.threads : 4;
    c->edge_opts.threads = threads;
    size_t request = share / (size_t)threads;
    if (request < (64u << 10))
        request = 64u << 10;
    if (c->edge_opts.max_request_bytes == 0 || c->edge_opts.max_request_bytes > request)
        c->edge_opts.max_request_bytes = request;
    /* The drop file's frame boundaries follow the writer budget, so it must
     * not depend on the components budget, or the bytes would. */
    if (c->drop_opts.memory_budget == 0)
        c->drop_opts.memory_budget = COMP_DROP_FRAME;
    c->sort_opts.memory_budget = share;
    c->sort_opts.tmp_dir = c->edge_opts.tmp_dir;
    c->sort_opts.cancel = c->edge_opts.cancel;
    c->uf_limit = c->budget / 2;
}

static dsp_status comp_check_edge(const dsp_shuffle_rec *rec, dsp_err *err)
{
    if (rec->key_len != EDGE_KEY_BYTES || rec->value_len != 8)
        return dsp_err_set(err, DSP_ECORRUPT, "edge record of %zu+%zu bytes, expected %d+8",
                           rec->key_len, rec->value_len, EDGE_KEY_BYTES);
    return DSP_OK;
}

/* ---- outputs shared by both paths ---- */

static dsp_status comp_outputs_open(comp_ctx *c, dsp_err *err)
{
    dsp_status st = dsp_shuffle_writer_open(c->store, c->drop_key, c->tasks, &c->drop_opts,
                                            &c->drops, err);
    if (st == DSP_OK && c->clusters_key)
        st = dsp_store_writer_open(c->store, c->clusters_key, NULL, &c->clusters.w, err);
    return st;
}

static dsp_status comp_outputs_close(comp_ctx *c, dsp_err *err)
{
    dsp_shuffle_writer *drops = c->drops;
    c->drops = NULL;
    dsp_shuffle_write_stats ws = {0};
    dsp_status st = dsp_shuffle_writer_close(drops, &ws, err);
    memcpy(c->s.sha256, ws.sha256, sizeof c->s.sha256);
    if (st == DSP_OK && c->clusters.w) {
        dsp_writer *w = c->clusters.w;
        c->clusters.w = NULL;
        st = dsp_writer_close(w, NULL, err);
    }
    return st;
}

static void comp_outputs_abort(comp_ctx *c)
{
    dsp_shuffle_writer_abort(c->drops);
    c->drops = NULL;
    if (c->clusters.w)
        dsp_writer_abort(c->clusters.w);
    c->clusters.w = NULL;
    dsp_buf_free(&c->clusters.line);
}

/* Add the order key of a removed document to its source task's partition. */
static dsp_status comp_drop(comp_ctx *c, const unsigned char *order, uint32_t tag, dsp_err *err)
{
    if (tag >= c->tasks)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "edge names source task %u, but there are %u tasks", tag, c->tasks);
    c->s.dropped++;
    return dsp_shuffle_writer_add(c->drops, tag, order, DSP_DEDUP_ORDER_SIZE, NULL, 0, err);
}

static void comp_add_read_stats(comp_ctx *c, const dsp_shuffle_reader *r)
{
    dsp_shuffle_read_stats rs;
    dsp_shuffle_reader_stats(r, &rs);
    c->s.records += rs.records;
    c->s.runs_spilled += rs.runs_spilled;
}

/* Start the clusters line of a component: representative first, members
 * follow in ascending order key through comp_member. */
static void comp_cluster_begin(comp_ctx *c, const unsigned char *rep)
{
    c->s.components++;
    if (!c->clusters.w)
        return;
    dsp_buf_reset(&c->clusters.line);
    dsp_buf_printf(&c->clusters.line, "{\"representative\":[%llu,%llu],\"members\":[",
                   (unsigned long long)dsp_be64_get(rep),
                   (unsigned long long)dsp_be64_get(rep + 8));
    c->clusters.members = 0;
}

static dsp_status comp_member(comp_ctx *c, const unsigned char *member, dsp_err *err)
{
    if (!c->clusters.w)
        return DSP_OK;
    dsp_buf_printf(&c->clusters.line, "%s[%llu,%llu]", c->clusters.members ? "," : "",
                   (unsigned long long)dsp_be64_get(member),
                   (unsigned long long)dsp_be64_get(member + 8));
    c->clusters.members++;
    if (c->clusters.line.len < COMP_LINE_FLUSH)
        return DSP_OK;
    dsp_status st = dsp_writer_write(c->clusters.w, c->clusters.line.data,
                                     c->clusters.line.len, err);
    dsp_buf_reset(&c->clusters.line);
    return st;
}

static dsp_status comp_cluster_end(comp_ctx *c, dsp_err *err)
{
    if (!c->clusters.w)
        return DSP_OK;
    dsp_buf_append_str(&c->clusters.line, "]}\n");
    dsp_status st = dsp_writer_write(c->clusters.w, c->clusters.line.data,
                                     c->clusters.line.len, err);
    dsp_buf_reset(&c->clusters.line);
    return st;
}

/* ---- in memory ---- */

static void comp_uf_order(dsp_uf *uf, uint32_t node, unsigned char out[COMP_NODE_BYTES])
{
    uint64_t hi, lo;
    dsp_uf_key(uf, node, &hi, &lo);
    dsp_be64_put(out, hi);
    dsp_be64_put(out + 8, lo);
}

/* Write drops and clusters from a finished union-find. */
static dsp_status comp_uf_write(comp_ctx *c, dsp_uf *uf, dsp_err *err)
{
    size_t n = dsp_uf_count(uf);
    unsigned char key[COMP_NODE_BYTES];
    const uint32_t *idx = dsp_uf_sorted(uf, 0);
    for (size_t i = 0; i < n; i++) {
        uint32_t node = idx[i];
        if (dsp_uf_find(uf, node) == node)
            continue;
        comp_uf_order(uf, node, key);
        dsp_status st = comp_drop(c, key, dsp_uf_tag(uf, node), err);
        if (st != DSP_OK)
            return st;
    }
    /* Sorted by (root, key): each root leads its component, then members. */
    idx = dsp_uf_sorted(uf, 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t node = idx[i];
        dsp_status st = DSP_OK;
        comp_uf_order(uf, node, key);
        if (dsp_uf_find(uf, node) == node) {
            if (i > 0)
                st = comp_cluster_end(c, err);
            comp_cluster_begin(c, key);
        } else {
            st = comp_member(c, key, err);
        }
        if (st != DSP_OK)
            return st;
    }
    return n > 0 ? comp_cluster_end(c, err) : DSP_OK;
}

/* Components with a union-find. Sets *full and writes nothing when the
 * nodes do not fit c->uf_limit. */
static dsp_status comp_in_memory(comp_ctx *c, int *full, dsp_err *err)
{
    dsp_shuffle_reader *r = NULL;
    dsp_uf *uf = dsp_uf_new();
    dsp_uf_set_limit(uf, c->uf_limit);
    *full = 0;
    dsp_status st = dsp_shuffle_reader_open(c->store, c->edge_keys, c->edge_sizes, c->nedges, 1,
                                            0, 1, &c->edge_opts, &r, err);
    if (st != DSP_OK)
        goto out;
    dsp_shuffle_rec rec;
    int got;
    while ((got = dsp_shuffle_reader_next(r, &rec, err)) == 1) {
        st = comp_check_edge(&rec, err);
        if (st != DSP_OK)
            goto out;
        const unsigned char *k = rec.key, *v = rec.value;
        uint32_t a = dsp_uf_node(uf, dsp_be64_get(k), dsp_be64_get(k + 8), be32_get(v));
        uint32_t b = DSP_UF_FULL;
        if (a != DSP_UF_FULL)
            b = dsp_uf_node(uf, dsp_be64_get(k + 16), dsp_be64_get(k + 24), be32_get(v + 4));
        if (b == DSP_UF_FULL) {
            DSP_INFO("minhash_components_spill", "nodes=%zu budget=%zu edges_read=%llu",
                     dsp_uf_count(uf), c->budget, (unsigned long long)c->s.edges);
            *full = 1;
            goto out;
        }
        dsp_uf_union(uf, a, b);
        c->s.edges++;
    }
    if (got < 0) {
        st = err->code;
        goto out;
    }
    comp_add_read_stats(c, r);
    dsp_shuffle_reader_close(r);
    r = NULL;

    st = comp_outputs_open(c, err);
    if (st == DSP_OK)
        st = comp_uf_write(c, uf, err);
    if (st == DSP_OK)
        st = comp_outputs_close(c, err);
    DSP_INFO("minhash_components", "mode=memory edges=%llu nodes=%zu bytes=%zu components=%llu "
             "dropped=%llu",
             (unsigned long long)c->s.edges, dsp_uf_count(uf), dsp_uf_bytes(uf),
             (unsigned long long)c->s.components, (unsigned long long)c->s.dropped);
out:
    dsp_shuffle_reader_close(r);
    dsp_uf_free(uf);
    return st;
}

/* ---- external ---- */

/* Distinct records of a sorted edge stream (node | neighbour keys), copied
 * out of the reader so that they outlive its next call. */
typedef struct {
    dsp_shuffle_reader *r;
    unsigned char cur[EDGE_KEY_BYTES];
    int have; /* cur contains a record */
} comp_cursor;

/* Advance to the next distinct record; returns 1, 0 at the end, -1 on error. */
static int comp_cursor_next(comp_cursor *cur, dsp_err *err)
{
    dsp_shuffle_rec rec;
    int got;
    while ((got = dsp_shuffle_reader_next(cur->r, &rec, err)) == 1) {
        if (rec.key_len != EDGE_KEY_BYTES) {
            dsp_err_set(err, DSP_ECORRUPT, "components sort returned a %zu-byte key, expected %d",
                        rec.key_len, EDGE_KEY_BYTES);
            return -1;
        }
        if (cur->have && memcmp(cur->cur, rec.key, EDGE_KEY_BYTES) == 0)
            continue;
        memcpy(cur->cur, rec.key, EDGE_KEY_BYTES);
        cur->have = 1;
        return 1;
    }
    cur->have = 0;
    return got;
}

/* Add the undirected edge {x, y} (x != y) as both directed records. */
static dsp_status comp_emit(dsp_shuffle_reader *out, const unsigned char *x,
                            const unsigned char *y, dsp_err *err)
{
    unsigned char rec[EDGE_KEY_BYTES];
    memcpy(rec, x, COMP_NODE_BYTES);
    memcpy(rec + COMP_NODE_BYTES, y, COMP_NODE_BYTES);
    dsp_status st = dsp_shuffle_sorter_add(out, rec, sizeof rec, NULL, 0, err);
    if (st != DSP_OK)
        return st;
    memcpy(rec, y, COMP_NODE_BYTES);
    memcpy(rec + COMP_NODE_BYTES, x, COMP_NODE_BYTES);
    return dsp_shuffle_sorter_add(out, rec, sizeof rec, NULL, 0, err);
}

/* Read the edge files once: every node with its source task into `tags`,
 * every distinct edge in both directions into `graph`. */
static dsp_status comp_load(comp_ctx *c, dsp_shuffle_reader *tags, dsp_shuffle_reader *graph,
                            dsp_err *err)
{
    dsp_shuffle_reader *r = NULL;
    unsigned char prev[EDGE_KEY_BYTES];
    int have_prev = 0;
    dsp_status st = dsp_shuffle_reader_open(c->store, c->edge_keys, c->edge_sizes, c->nedges, 1,
                                            0, 1, &c->edge_opts, &r, err);
    if (st != DSP_OK)
        return st;
    dsp_shuffle_rec rec;
    int got;
    while ((got = dsp_shuffle_reader_next(r, &rec, err)) == 1) {
        st = comp_check_edge(&rec, err);
        if (st != DSP_OK)
            goto out;
        c->s.edges++;
        const unsigned char *k = rec.key, *v = rec.value;
        /* Edges come sorted by their first node, so it repeats: add its
         * tag once per run. The final pass skips the remaining repeats. */
        if (!have_prev || memcmp(prev, k, COMP_NODE_BYTES) != 0)
            st = dsp_shuffle_sorter_add(tags, k, COMP_NODE_BYTES, v, 4, err);
        if (st == DSP_OK)
            st = dsp_shuffle_sorter_add(tags, k + COMP_NODE_BYTES, COMP_NODE_BYTES, v + 4, 4, err);
        if (st != DSP_OK)
            goto out;
        int duplicate = have_prev && memcmp(prev, k, EDGE_KEY_BYTES) == 0;
        memcpy(prev, k, EDGE_KEY_BYTES);
        have_prev = 1;
        if (duplicate || memcmp(k, k + COMP_NODE_BYTES, COMP_NODE_BYTES) == 0)
            continue;
        st = comp_emit(graph, k, k + COMP_NODE_BYTES, err);
        if (st != DSP_OK)
            goto out;
    }
    if (got < 0) {
        st = err->code;
        goto out;
    }
    comp_add_read_stats(c, r);
out:
    dsp_shuffle_reader_close(r);
    return st;
}

/*
 * One round over the sorted edge list `in`, writing the new list to `out`.
 * For each node u with neighbours N(u) (ascending, so the first is the
 * smallest) and m = min(N(u) + u):
 *   large-star: link every neighbour v > u to m;
 *   small-star: link every neighbour v < u, and u itself, to m.
 * *converged is set when `in` is already a set of stars centred on their
 * smallest node: every node has no smaller neighbour (a centre) or exactly
 * one neighbour, which is smaller (a leaf). Both rounds leave such a list
 * unchanged, so `out` is then final as well.
 */
static dsp_status comp_round(dsp_shuffle_reader *in, dsp_shuffle_reader *out, int large,
                             int *converged, dsp_err *err)
{
    comp_cursor cur = {.r = in};
    unsigned char u[COMP_NODE_BYTES], m[COMP_NODE_BYTES];
    int open = 0, has_smaller = 0;
    uint64_t degree = 0;
    dsp_status st = DSP_OK;
    int got;
    *converged = 1;
    while ((got = comp_cursor_next(&cur, err)) == 1) {
        const unsigned char *ku = cur.cur, *kv = cur.cur + COMP_NODE_BYTES;
        if (!open || memcmp(u, ku, COMP_NODE_BYTES) != 0) {
            if (open && has_smaller && degree != 1)
                *converged = 0;
            if (open && !large && memcmp(u, m, COMP_NODE_BYTES) != 0) {
                st = comp_emit(out, u, m, err);
                if (st != DSP_OK)
                    return st;
            }
            memcpy(u, ku, COMP_NODE_BYTES);
            has_smaller = memcmp(kv, u, COMP_NODE_BYTES) < 0;
            memcpy(m, has_smaller ? kv : u, COMP_NODE_BYTES);
            degree = 0;
            open = 1;
        }
        degree++;
        int cmp = memcmp(kv, u, COMP_NODE_BYTES);
        if (large ? cmp > 0 : cmp < 0 && memcmp(kv, m, COMP_NODE_BYTES) != 0) {
            st = comp_emit(out, kv, m, err);
            if (st != DSP_OK)
                return st;
        }
    }
    if (got < 0)
        return err->code;
    if (open && has_smaller && degree != 1)
        *converged = 0;
    if (open && !large && memcmp(u, m, COMP_NODE_BYTES) != 0)
        st = comp_emit(out, u, m, err);
    return st;
}

/* Walk the node list and the final stars together, both in ascending
 * order key: a leaf is dropped, a centre writes its cluster, and a node
 * with no edge but a self loop is a cluster of its own. */
static dsp_status comp_star_write(comp_ctx *c, dsp_shuffle_reader *tags,
                                  dsp_shuffle_reader *graph, dsp_err *err)
{
    comp_cursor stars = {.r = graph};
    unsigned char node[COMP_NODE_BYTES];
    int have_node = 0;
    int star_next = comp_cursor_next(&stars, err);
    dsp_shuffle_rec rec;
    int got = 0;
    dsp_status st = DSP_OK;
    while (star_next >= 0 && (got = dsp_shuffle_reader_next(tags, &rec, err)) == 1) {
        if (rec.key_len != COMP_NODE_BYTES || rec.value_len != 4)
            return dsp_err_set(err, DSP_ECORRUPT, "components sort returned a %zu+%zu-byte node",
                               rec.key_len, rec.value_len);
        if (have_node && memcmp(node, rec.key, COMP_NODE_BYTES) == 0)
            continue; /* the same node again, from another edge */
        memcpy(node, rec.key, COMP_NODE_BYTES);
        have_node = 1;
        uint32_t tag = be32_get(rec.value);
        if (star_next == 1 && memcmp(stars.cur, node, COMP_NODE_BYTES) < 0)
            return dsp_err_set(err, DSP_ECORRUPT,
                               "components: star node (%llu, %llu) has no source task",
                               (unsigned long long)dsp_be64_get(stars.cur),
                               (unsigned long long)dsp_be64_get(stars.cur + 8));
        int in_stars = star_next == 1 && memcmp(stars.cur, node, COMP_NODE_BYTES) == 0;
        if (!in_stars) {
            /* Only self loops: a cluster without members. */
            comp_cluster_begin(c, node);
            st = comp_cluster_end(c, err);
        } else if (memcmp(stars.cur + COMP_NODE_BYTES, node, COMP_NODE_BYTES) < 0) {
            /* A leaf: its one neighbour is the smaller centre. */
            st = comp_drop(c, node, tag, err);
            star_next = comp_cursor_next(&stars, err);
        } else {
            /* A centre: its neighbours are the members, ascending. */
            comp_cluster_begin(c, node);
            while (st == DSP_OK && in_stars) {
                st = comp_member(c, stars.cur + COMP_NODE_BYTES, err);
                star_next = comp_cursor_next(&stars, err);
                in_stars = star_next == 1 && memcmp(stars.cur, node, COMP_NODE_BYTES) == 0;
            }
            if (st == DSP_OK)
                st = comp_cluster_end(c, err);
        }
        if (st != DSP_OK)
            return st;
    }
    if (star_next < 0 || got < 0)
        return err->code;
    if (star_next == 1)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "components: star node (%llu, %llu) has no source task",
                           (unsigned long long)dsp_be64_get(stars.cur),
                           (unsigned long long)dsp_be64_get(stars.cur + 8));
    return DSP_OK;
}

/* Components by large-star/small-star rounds, each an external sort. */
static dsp_status comp_external(comp_ctx *c, dsp_err *err)
{
    dsp_shuffle_reader *tags = dsp_shuffle_sorter_open(&c->sort_opts);
    dsp_shuffle_reader *graph = dsp_shuffle_sorter_open(&c->sort_opts);
    dsp_shuffle_reader *next = NULL;
    dsp_shuffle_read_stats rs;
    dsp_status st = comp_load(c, tags, graph, err);
    if (st == DSP_OK)
        st = dsp_shuffle_sorter_finish(graph, err);
    int converged = 0;
    while (st == DSP_OK && !converged) {
        if (c->s.rounds == COMP_MAX_ROUNDS) {
            st = dsp_err_set(err, DSP_ECORRUPT,
                             "components did not converge in %d rounds", COMP_MAX_ROUNDS);
            break;
        }
        next = dsp_shuffle_sorter_open(&c->sort_opts);
        st = comp_round(graph, next, c->s.rounds % 2 == 0, &converged, err);
        dsp_shuffle_reader_stats(graph, &rs);
        c->s.runs_spilled += rs.runs_spilled;
        DSP_DEBUG("minhash_components_round", "round=%llu kind=%s edges_in=%llu",
                  (unsigned long long)c->s.rounds, c->s.rounds % 2 == 0 ? "large" : "small",
                  (unsigned long long)rs.records / 2);
        dsp_shuffle_reader_close(graph);
        graph = next;
        next = NULL;
        c->s.rounds++;
        if (st == DSP_OK)
            st = dsp_shuffle_sorter_finish(graph, err);
    }
    if (st == DSP_OK)
        st = dsp_shuffle_sorter_finish(tags, err);
    if (st == DSP_OK)
        st = comp_outputs_open(c, err);
    if (st == DSP_OK)
        st = comp_star_write(c, tags, graph, err);
    if (st == DSP_OK)
        st = comp_outputs_close(c, err);
    dsp_shuffle_reader_stats(tags, &rs);
    c->s.runs_spilled += rs.runs_spilled;
    DSP_INFO("minhash_components", "mode=external rounds=%llu edges=%llu nodes_tagged=%llu "
             "components=%llu dropped=%llu",
             (unsigned long long)c->s.rounds, (unsigned long long)c->s.edges,
             (unsigned long long)rs.records, (unsigned long long)c->s.components,
             (unsigned long long)c->s.dropped);
    dsp_shuffle_reader_close(next);
    dsp_shuffle_reader_close(graph);
    dsp_shuffle_reader_close(tags);
    return st;
}

dsp_status dsp_dedup_minhash_components(dsp_store *store, const char *const *edge_keys,
                                        const uint64_t *edge_sizes, size_t nedges,
                                        const char *drop_key, uint32_t tasks,
                                        const char *clusters_key, const dsp_dedup_io_opts *io,
                                        dsp_dedup_stats *stats, dsp_err *err)
{
    comp_ctx c = {
        .store = store,
        .edge_keys = edge_keys,
        .edge_sizes = edge_sizes,
        .nedges = nedges,
        .drop_key = drop_key,
        .tasks = tasks,
        .clusters_key = clusters_key,
    };
    comp_ctx_init(&c, io);
    int full = 0;
    dsp_status st = comp_in_memory(&c, &full, err);
    if (st == DSP_OK && full) {
        memset(&c.s, 0, sizeof c.s);
        st = comp_external(&c, err);
    }
    if (st != DSP_OK)
        dsp_err_prefix(err, "MinHash components");
    comp_outputs_abort(&c);
    if (stats)
        *stats = c.s;
    return st;
}

