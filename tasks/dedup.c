/*
 * dedup.c - the stages of exact and MinHash dedup (call sequence in
 * dedup.h). Guarantee: the set of removed documents depends only on the
 * documents and their order keys. It is the same for any split of the
 * input into tasks and any number of reduce partitions, because every
 * decision is taken on a whole group (hash, bucket or component) in the
 * shuffle's total order, and "first" means the smallest order key.
 *
 * Shuffle record layouts (all integers big endian):
 *   exact map     key  = hash hi (8) | hash lo (8) | length (8) | order (16)
 *                 value = source task (4)
 *   MinHash map   key  = band (2) | band hash (8) | order (16)
 *                 value = source task (4) | signature (4 * perms, only with verify)
 *   edges         key  = first order (16) | member order (16)
 *                 value = first task (4) | member task (4)
 *   drops         key  = order (16), value empty, partition = source task
 */
#include "dedup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "unionfind.h"

#define EXACT_GROUP_BYTES 24
#define EXACT_KEY_BYTES (EXACT_GROUP_BYTES + DSP_DEDUP_ORDER_SIZE)
#define BAND_GROUP_BYTES 10
#define BAND_KEY_BYTES (BAND_GROUP_BYTES + DSP_DEDUP_ORDER_SIZE)
#define EDGE_KEY_BYTES (2 * DSP_DEDUP_ORDER_SIZE)

static void be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t be32_get(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void dsp_dedup_order_encode(dsp_dedup_order o, unsigned char out[DSP_DEDUP_ORDER_SIZE])
{
    dsp_be64_put(out, o.input);
    dsp_be64_put(out + 8, o.offset);
}

dsp_dedup_order dsp_dedup_order_decode(const unsigned char *in)
{
    dsp_dedup_order o = {dsp_be64_get(in), dsp_be64_get(in + 8)};
    return o;
}

int dsp_dedup_order_cmp(dsp_dedup_order a, dsp_dedup_order b)
{
    if (a.input != b.input)
        return a.input < b.input ? -1 : 1;
    if (a.offset != b.offset)
        return a.offset < b.offset ? -1 : 1;
    return 0;
}

static void stats_add_reader(dsp_dedup_stats *s, const dsp_shuffle_reader *r)
{
    dsp_shuffle_read_stats rs;
    dsp_shuffle_reader_stats(r, &rs);
    s->records += rs.records;
    s->runs_spilled += rs.runs_spilled;
}

/* ======================================================================
 * Exact
 * ====================================================================== */

struct dsp_dedup_exact_map {
    dsp_shuffle_writer *w;
    uint32_t partitions, task;
    int raw;
    dsp_buf norm;
    dsp_dedup_stats stats;
};

dsp_status dsp_dedup_exact_map_open(dsp_store *store, const char *key, uint32_t partitions,
                                    uint32_t task, const dsp_dedup_exact_opts *opts,
                                    dsp_dedup_exact_map **out, dsp_err *err)
{
    dsp_dedup_exact_map *m = dsp_xcalloc(1, sizeof *m);
    m->partitions = partitions;
    m->task = task;
    m->raw = opts ? opts->raw : 0;
    dsp_status st = dsp_shuffle_writer_open(store, key, partitions, opts ? &opts->io.writer : NULL,
                                            &m->w, err);
    if (st != DSP_OK) {
        free(m);
        return st;
    }
    *out = m;
    return DSP_OK;
}

dsp_status dsp_dedup_exact_map_add(dsp_dedup_exact_map *m, const char *text, size_t len,
                                   dsp_dedup_order order, dsp_err *err)
{
    const char *data = text;
    size_t n = len;
    if (!m->raw) {
        dsp_buf_reset(&m->norm);
        dsp_text_normalize(text, len, &m->norm);
        data = m->norm.data ? m->norm.data : "";
        n = m->norm.len;
    }
    XXH128_hash_t h = XXH3_128bits(data, n);
    unsigned char key[EXACT_KEY_BYTES], value[4];
    dsp_be64_put(key, h.high64);
    dsp_be64_put(key + 8, h.low64);
    dsp_be64_put(key + 16, (uint64_t)n);
    dsp_dedup_order_encode(order, key + EXACT_GROUP_BYTES);
    be32_put(value, m->task);
    m->stats.docs++;
    m->stats.records++;
    return dsp_shuffle_writer_add(m->w, dsp_shuffle_partition(h.high64, m->partitions), key,
                                  sizeof key, value, sizeof value, err);
}

dsp_status dsp_dedup_exact_map_close(dsp_dedup_exact_map *m, dsp_dedup_stats *stats,
                                     dsp_err *err)
{
    dsp_status st = dsp_shuffle_writer_close(m->w, NULL, err);
    if (stats)
        *stats = m->stats;
    dsp_buf_free(&m->norm);
    free(m);
    return st;
}

void dsp_dedup_exact_map_abort(dsp_dedup_exact_map *m)
{
    if (!m)
        return;
    dsp_shuffle_writer_abort(m->w);
    dsp_buf_free(&m->norm);
    free(m);
}

/* Add one drop (order key of a removed document) for its source task. */
static dsp_status drop_add(dsp_shuffle_writer *w, uint32_t tasks, uint32_t task,
                           const unsigned char *order, dsp_err *err)
{
    if (task >= tasks)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "dedup: record names source task %u, but there are %u tasks", task,
                           tasks);
    return dsp_shuffle_writer_add(w, task, order, DSP_DEDUP_ORDER_SIZE, NULL, 0, err);
}

dsp_status dsp_dedup_exact_reduce(dsp_store *store, const char *const *map_keys,
                                  const uint64_t *map_sizes, size_t nmaps, uint32_t partitions,
                                  uint32_t partition, const char *drop_key, uint32_t tasks,
                                  const dsp_dedup_io_opts *io, dsp_dedup_stats *stats,
                                  dsp_err *err)
{
    dsp_shuffle_reader *r = NULL;
    dsp_shuffle_writer *w = NULL;
    dsp_dedup_stats s = {0};
    unsigned char group[EXACT_GROUP_BYTES];
    uint64_t group_size = 0;
    dsp_status st = dsp_shuffle_reader_open(store, map_keys, map_sizes, nmaps, partitions,
                                            partition, partition + 1, io ? &io->reader : NULL,
                                            &r, err);
    if (st != DSP_OK)
        goto out;
    st = dsp_shuffle_writer_open(store, drop_key, tasks, io ? &io->writer : NULL, &w, err);
    if (st != DSP_OK)
        goto out;

    dsp_shuffle_rec rec;
    int got;
    while ((got = dsp_shuffle_reader_next(r, &rec, err)) == 1) {
        if (rec.key_len != EXACT_KEY_BYTES || rec.value_len != 4) {
            st = dsp_err_set(err, DSP_ECORRUPT,
                             "exact dedup: record of %zu+%zu bytes, expected %d+4",
                             rec.key_len, rec.value_len, EXACT_KEY_BYTES);
            goto out;
        }
        const unsigned char *k = rec.key;
        if (group_size > 0 && memcmp(group, k, EXACT_GROUP_BYTES) == 0) {
            /* Not the first of its hash: drop it. */
            group_size++;
            s.dropped++;
            st = drop_add(w, tasks, be32_get(rec.value), k + EXACT_GROUP_BYTES, err);
            if (st != DSP_OK)
                goto out;
        } else {
            memcpy(group, k, EXACT_GROUP_BYTES);
            group_size = 1;
            s.groups++;
        }
        if (group_size > s.max_group)
            s.max_group = group_size;
    }
    if (got < 0) {
        st = err->code;
        goto out;
    }
    stats_add_reader(&s, r);
    dsp_shuffle_writer *closing = w;
    w = NULL;
    st = dsp_shuffle_writer_close(closing, NULL, err);

out:
    if (st != DSP_OK)
        dsp_err_prefix(err, "exact dedup reduce of partition %u", partition);
    dsp_shuffle_writer_abort(w);
    dsp_shuffle_reader_close(r);
    if (stats)
        *stats = s;
    return st;
}

/* ======================================================================
 * MinHash
 * ====================================================================== */

static int minhash_verify(const dsp_dedup_minhash_opts *o)
{
    return !o || o->verify >= 0;
}

/* Estimated Jaccard an edge needs: the threshold plus the margin. */
static double minhash_threshold(const dsp_dedup_minhash_opts *o)
{
    double threshold = o && o->threshold > 0 ? o->threshold : 0.8;
    double margin = 0.03;
    if (o && o->margin != 0)
        margin = o->margin > 0 ? o->margin : 0.0;
    return threshold + margin;
}

struct dsp_dedup_minhash_map {
    dsp_shuffle_writer *w;
    dsp_minhash *mh;
    uint32_t partitions, task;
    int verify;
    uint32_t *sig;
    unsigned char *value;
    size_t value_len;
    dsp_dedup_stats stats;
};

void dsp_dedup_minhash_map_abort(dsp_dedup_minhash_map *m)
{
    if (!m)
        return;
    dsp_shuffle_writer_abort(m->w);
    dsp_minhash_free(m->mh);
    free(m->sig);
    free(m->value);
    free(m);
}

dsp_status dsp_dedup_minhash_map_open(dsp_store *store, const char *key, uint32_t partitions,
                                      uint32_t task, const dsp_dedup_minhash_opts *opts,
                                      dsp_dedup_minhash_map **out, dsp_err *err)
{
    dsp_dedup_minhash_map *m = dsp_xcalloc(1, sizeof *m);
    m->partitions = partitions;
    m->task = task;
    m->verify = minhash_verify(opts);
    dsp_status st = dsp_minhash_new(opts ? &opts->params : NULL, &m->mh, err);
    if (st != DSP_OK)
        goto fail;
    size_t perms = dsp_minhash_perms(m->mh);
    m->sig = dsp_xcalloc(perms, sizeof *m->sig);
    m->value_len = 4 + (m->verify ? perms * sizeof(uint32_t) : 0);
    m->value = dsp_xcalloc(1, m->value_len);
    st = dsp_shuffle_writer_open(store, key, partitions, opts ? &opts->io.writer : NULL, &m->w,
                                 err);
    if (st != DSP_OK)
        goto fail;
    *out = m;
    return DSP_OK;
fail:
    dsp_dedup_minhash_map_abort(m);
    return st;
}

dsp_status dsp_dedup_minhash_map_add(dsp_dedup_minhash_map *m, const char *text, size_t len,
                                     dsp_dedup_order order, dsp_err *err)
{
    m->stats.docs++;
    if (dsp_minhash_signature(m->mh, text, len, m->sig) == 0) {
        m->stats.skipped++;
        return DSP_OK;
    }
    unsigned char key[BAND_KEY_BYTES];
    dsp_dedup_order_encode(order, key + BAND_GROUP_BYTES);
    be32_put(m->value, m->task);
    if (m->verify)
        memcpy(m->value + 4, m->sig, dsp_minhash_perms(m->mh) * sizeof(uint32_t));
    int bands = dsp_minhash_bands(m->mh);
    for (int b = 0; b < bands; b++) {
        uint64_t bh = dsp_minhash_band_hash(m->mh, m->sig, b);
        key[0] = (unsigned char)(b >> 8);
        key[1] = (unsigned char)b;
        dsp_be64_put(key + 2, bh);
        dsp_status st = dsp_shuffle_writer_add(m->w, dsp_shuffle_partition(bh, m->partitions),
                                               key, sizeof key, m->value, m->value_len, err);
        if (st != DSP_OK)
            return st;
        m->stats.records++;
    }
    return DSP_OK;
}

dsp_status dsp_dedup_minhash_map_close(dsp_dedup_minhash_map *m, dsp_dedup_stats *stats,
                                       dsp_err *err)
{
    dsp_shuffle_writer *w = m->w;
    m->w = NULL;
    dsp_status st = dsp_shuffle_writer_close(w, NULL, err);
    if (stats)
        *stats = m->stats;
    dsp_dedup_minhash_map_abort(m);
    return st;
}

dsp_status dsp_dedup_minhash_bands(dsp_store *store, const char *const *map_keys,
                                   const uint64_t *map_sizes, size_t nmaps,
                                   uint32_t partitions, uint32_t partition,
                                   const char *edge_key, const dsp_dedup_minhash_opts *opts,
                                   dsp_dedup_stats *stats, dsp_err *err)
{
    dsp_shuffle_reader *r = NULL;
    dsp_shuffle_writer *w = NULL;
    dsp_minhash *mh = NULL;
    dsp_dedup_stats s = {0};
    int verify = minhash_verify(opts);
    double threshold = minhash_threshold(opts);
    unsigned char group[BAND_GROUP_BYTES];
    unsigned char edge[EDGE_KEY_BYTES], tasks[8];
    uint32_t *first_sig = NULL;
    uint64_t group_size = 0;

    dsp_status st = dsp_minhash_new(opts ? &opts->params : NULL, &mh, err);
    if (st != DSP_OK)
        goto out;
    size_t perms = dsp_minhash_perms(mh);
    size_t value_len = 4 + (verify ? perms * sizeof(uint32_t) : 0);
    first_sig = dsp_xcalloc(perms, sizeof *first_sig);
    st = dsp_shuffle_reader_open(store, map_keys, map_sizes, nmaps, partitions, partition,
                                 partition + 1, opts ? &opts->io.reader : NULL, &r, err);
    if (st != DSP_OK)
        goto out;
    st = dsp_shuffle_writer_open(store, edge_key, 1, opts ? &opts->io.writer : NULL, &w, err);
    if (st != DSP_OK)
        goto out;

    dsp_shuffle_rec rec;
    int got;
    uint32_t member_sig[DSP_MINHASH_MAX_PERMS];
    while ((got = dsp_shuffle_reader_next(r, &rec, err)) == 1) {
        if (rec.key_len != BAND_KEY_BYTES || rec.value_len != value_len) {
            st = dsp_err_set(err, DSP_ECORRUPT,
                             "MinHash bands: record of %zu+%zu bytes, expected %d+%zu (do the "
                             "map and band stages use the same bands, rows and verify options?)",
                             rec.key_len, rec.value_len, BAND_KEY_BYTES, value_len);
            goto out;
        }
        const unsigned char *k = rec.key, *v = rec.value;
        if (group_size == 0 || memcmp(group, k, BAND_GROUP_BYTES) != 0) {
            /* First member of a new bucket: it becomes the star's centre. */
            memcpy(group, k, BAND_GROUP_BYTES);
            memcpy(edge, k + BAND_GROUP_BYTES, DSP_DEDUP_ORDER_SIZE);
            memcpy(tasks, v, 4);
            if (verify)
                memcpy(first_sig, v + 4, perms * sizeof(uint32_t));
            group_size = 1;
            s.groups++;
            continue;
        }
        group_size++;
        if (group_size > s.max_group)
            s.max_group = group_size;
        s.candidates++;
        if (verify) {
            memcpy(member_sig, v + 4, perms * sizeof(uint32_t));
            if (dsp_minhash_similarity(first_sig, member_sig, perms) < threshold)
                continue;
        }
        memcpy(edge + DSP_DEDUP_ORDER_SIZE, k + BAND_GROUP_BYTES, DSP_DEDUP_ORDER_SIZE);
        memcpy(tasks + 4, v, 4);
        st = dsp_shuffle_writer_add(w, 0, edge, sizeof edge, tasks, sizeof tasks, err);
        if (st != DSP_OK)
            goto out;
        s.edges++;
    }
    if (got < 0) {
        st = err->code;
        goto out;
    }
    stats_add_reader(&s, r);
    dsp_shuffle_writer *closing = w;
    w = NULL;
    st = dsp_shuffle_writer_close(closing, NULL, err);

out:
    if (st != DSP_OK)
        dsp_err_prefix(err, "MinHash band stage of partition %u", partition);
    dsp_shuffle_writer_abort(w);
    dsp_shuffle_reader_close(r);
    dsp_minhash_free(mh);
    free(first_sig);
    if (stats)
        *stats = s;
    return st;
}

/* ======================================================================
 * MinHash components
 *
 * In memory: a union-find over the documents with edges, capped at half
 * the budget. When a node does not fit, the task reads the edge files
 * again and alternates the large-star and small-star operations of
 * Kiveris et al. (2014) over the undirected edge list. Each round is one
 * external sort through tasks/shuffle.h's local sorter. Every component
 * ends as a star whose centre is its smallest order key. Both ways write
 * the drops in ascending order key and the clusters by (representative,
 * member), so their outputs are byte-identical.
 * ====================================================================== */

#define COMP_NODE_BYTES DSP_DEDUP_ORDER_SIZE
/* Far above the rounds measured: 20 for a path of 6,000 nodes in random
 * key order (tests/unit/test_components.c). Reaching it means a bug. */
#define COMP_MAX_ROUNDS 1000
/* Uncompressed bytes per frame of the drop file, unless io->writer sets a
 * budget. */
#define COMP_DROP_FRAME (256u << 10)
/* A cluster line goes to the store in pieces of about this size. */
#define COMP_LINE_FLUSH (64u << 10)

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
 * peaks. Each shuffle reader or sorter gets an eighth: at most three are
 * live at once (or the edge reader next to the union-find), and each may
 * keep up to twice its budget resident, because its buffers grow by
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
    dsp_status st = dsp_shuffle_writer_close(drops, NULL, err);
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

static dsp_status comp_drop(comp_ctx *c, const unsigned char *order, uint32_t tag, dsp_err *err)
{
    c->s.dropped++;
    return drop_add(c->drops, c->tasks, tag, order, err);
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
    stats_add_reader(&c->s, r);
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
    stats_add_reader(&c->s, r);
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
    comp_cursor g = {.r = graph};
    unsigned char node[COMP_NODE_BYTES];
    int have_node = 0;
    int gg = comp_cursor_next(&g, err);
    dsp_shuffle_rec rec;
    int got = 0;
    dsp_status st = DSP_OK;
    while (gg >= 0 && (got = dsp_shuffle_reader_next(tags, &rec, err)) == 1) {
        if (rec.key_len != COMP_NODE_BYTES || rec.value_len != 4)
            return dsp_err_set(err, DSP_ECORRUPT, "components sort returned a %zu+%zu-byte node",
                               rec.key_len, rec.value_len);
        if (have_node && memcmp(node, rec.key, COMP_NODE_BYTES) == 0)
            continue; /* the same node again, from another edge */
        memcpy(node, rec.key, COMP_NODE_BYTES);
        have_node = 1;
        uint32_t tag = be32_get(rec.value);
        if (gg == 1 && memcmp(g.cur, node, COMP_NODE_BYTES) < 0)
            return dsp_err_set(err, DSP_ECORRUPT,
                               "components: star node (%llu, %llu) has no source task",
                               (unsigned long long)dsp_be64_get(g.cur),
                               (unsigned long long)dsp_be64_get(g.cur + 8));
        if (gg != 1 || memcmp(g.cur, node, COMP_NODE_BYTES) != 0) {
            comp_cluster_begin(c, node);
            st = comp_cluster_end(c, err);
        } else if (memcmp(g.cur + COMP_NODE_BYTES, node, COMP_NODE_BYTES) < 0) {
            st = comp_drop(c, node, tag, err);
            gg = comp_cursor_next(&g, err);
        } else {
            comp_cluster_begin(c, node);
            while (st == DSP_OK && gg == 1 && memcmp(g.cur, node, COMP_NODE_BYTES) == 0) {
                st = comp_member(c, g.cur + COMP_NODE_BYTES, err);
                gg = comp_cursor_next(&g, err);
            }
            if (st == DSP_OK)
                st = comp_cluster_end(c, err);
        }
        if (st != DSP_OK)
            return st;
    }
    if (gg < 0 || got < 0)
        return err->code;
    if (gg == 1)
        return dsp_err_set(err, DSP_ECORRUPT,
                           "components: star node (%llu, %llu) has no source task",
                           (unsigned long long)dsp_be64_get(g.cur),
                           (unsigned long long)dsp_be64_get(g.cur + 8));
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

/* ======================================================================
 * Filter
 * ====================================================================== */

struct dsp_dedup_drops {
    dsp_shuffle_reader *r;
    int have;             /* cur is the next drop not yet passed */
    int done;
    dsp_dedup_order cur, last;
    int asked;
    uint64_t count;
};

dsp_status dsp_dedup_drops_open(dsp_store *store, const char *const *drop_keys,
                                const uint64_t *drop_sizes, size_t ndrops, uint32_t tasks,
                                uint32_t task, const dsp_shuffle_reader_opts *opts,
                                dsp_dedup_drops **out, dsp_err *err)
{
    dsp_dedup_drops *d = dsp_xcalloc(1, sizeof *d);
    dsp_status st = dsp_shuffle_reader_open(store, drop_keys, drop_sizes, ndrops, tasks, task,
                                            task + 1, opts, &d->r, err);
    if (st != DSP_OK) {
        free(d);
        dsp_err_prefix(err, "opening drop list of task %u", task);
        return st;
    }
    dsp_shuffle_read_stats rs;
    dsp_shuffle_reader_stats(d->r, &rs);
    d->count = rs.records;
    *out = d;
    return DSP_OK;
}

int dsp_dedup_drops_contains(dsp_dedup_drops *d, dsp_dedup_order order, dsp_err *err)
{
    if (d->asked && dsp_dedup_order_cmp(order, d->last) < 0) {
        dsp_err_set(err, DSP_EINVAL,
                    "dedup filter: order key (%llu, %llu) after (%llu, %llu); documents must "
                    "come in ascending order key",
                    (unsigned long long)order.input, (unsigned long long)order.offset,
                    (unsigned long long)d->last.input, (unsigned long long)d->last.offset);
        return -1;
    }
    d->asked = 1;
    d->last = order;
    for (;;) {
        if (!d->have) {
            if (d->done)
                return 0;
            dsp_shuffle_rec rec;
            int got = dsp_shuffle_reader_next(d->r, &rec, err);
            if (got < 0)
                return -1;
            if (got == 0) {
                d->done = 1;
                return 0;
            }
            if (rec.key_len != DSP_DEDUP_ORDER_SIZE) {
                dsp_err_set(err, DSP_ECORRUPT, "dedup filter: drop record key of %zu bytes",
                            rec.key_len);
                return -1;
            }
            d->cur = dsp_dedup_order_decode(rec.key);
            d->have = 1;
        }
        int c = dsp_dedup_order_cmp(d->cur, order);
        if (c > 0)
            return 0;
        d->have = 0;
        if (c == 0)
            return 1;
        /* A drop for a document the caller never asked about: skip it. */
    }
}

uint64_t dsp_dedup_drops_count(const dsp_dedup_drops *d)
{
    return d->count;
}

void dsp_dedup_drops_close(dsp_dedup_drops *d)
{
    if (!d)
        return;
    dsp_shuffle_reader_close(d->r);
    free(d);
}
