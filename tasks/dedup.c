/*
 * dedup.c - the stages of exact and MinHash dedup (call sequence in
 * dedup.h), except MinHash components, which dedup_components.c runs.
 * Guarantee: the set of removed documents depends only on the
 * documents and their order keys. It is the same for any split of the
 * input into tasks and any number of reduce partitions, because every
 * decision is taken on a whole group (hash, bucket or component) in the
 * shuffle's total order, and "first" means the smallest order key.
 *
 * Shuffle record layouts (all integers big endian):
 *   exact map     key  = hash hi (8) | hash lo (8) | length (8) | order (16)
 *                 value = source task (4)
 *   MinHash map   key  = band (2) | band hash (8) | order (16)
 *                 value = source task (4) | sketch of the signature (perms * sketch
 *                         bits / 8 bytes, only with verify)
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

/* Add the shuffle record of a document whose compared bytes are data. */
static dsp_status exact_add_bytes(dsp_dedup_exact_map *m, const char *data, size_t n,
                                  dsp_dedup_order order, dsp_err *err)
{
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

dsp_status dsp_dedup_exact_map_add(dsp_dedup_exact_map *m, const char *text, size_t len,
                                   dsp_dedup_order order, dsp_err *err)
{
    if (m->raw)
        return exact_add_bytes(m, text, len, order, err);
    dsp_buf_reset(&m->norm);
    dsp_text_normalize(text, len, &m->norm);
    return exact_add_bytes(m, m->norm.data ? m->norm.data : "", m->norm.len, order, err);
}

dsp_status dsp_dedup_exact_map_add_value(dsp_dedup_exact_map *m, dsp_json_type type,
                                         const char *bytes, size_t len, dsp_dedup_order order,
                                         dsp_err *err)
{
    dsp_buf_reset(&m->norm);
    dsp_buf_append_char(&m->norm, (char)type);
    if (type == DSP_JSON_TYPE_STRING && !m->raw)
        dsp_text_normalize(bytes, len, &m->norm);
    else
        dsp_buf_append(&m->norm, bytes, len);
    return exact_add_bytes(m, m->norm.data, m->norm.len, order, err);
}

dsp_status dsp_dedup_exact_map_close(dsp_dedup_exact_map *m, dsp_dedup_stats *stats,
                                     dsp_err *err)
{
    dsp_shuffle_write_stats ws = {0};
    dsp_status st = dsp_shuffle_writer_close(m->w, &ws, err);
    if (stats) {
        *stats = m->stats;
        memcpy(stats->sha256, ws.sha256, sizeof stats->sha256);
    }
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
    dsp_shuffle_write_stats ws = {0};
    st = dsp_shuffle_writer_close(closing, &ws, err);
    memcpy(s.sha256, ws.sha256, sizeof s.sha256);

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

/* Sketch bits of the options, or 0 when they are invalid. */
static int minhash_sketch_bits(const dsp_dedup_minhash_opts *o)
{
    int bits = o && o->sketch_bits ? o->sketch_bits : 4;
    switch (bits) {
    case 1:
    case 2:
    case 4:
    case 8:
    case 16:
    case 32:
        return bits;
    default:
        return 0;
    }
}

/* Bytes of the band record value: source task plus the sketch. */
static size_t minhash_value_len(const dsp_dedup_minhash_opts *o, size_t perms)
{
    if (!minhash_verify(o))
        return 4;
    return 4 + dsp_minhash_sketch_bytes(perms, minhash_sketch_bits(o));
}

struct dsp_dedup_minhash_map {
    dsp_shuffle_writer *w;
    dsp_minhash *mh;
    uint32_t partitions, task;
    int verify, sketch_bits;
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
    m->sketch_bits = minhash_sketch_bits(opts);
    dsp_status st;
    if (m->sketch_bits == 0) {
        st = dsp_err_set(err, DSP_EINVAL, "MinHash map: sketch_bits %d is not 1, 2, 4, 8, 16 or 32",
                         opts->sketch_bits);
        goto fail;
    }
    st = dsp_minhash_new(opts ? &opts->params : NULL, &m->mh, err);
    if (st != DSP_OK)
        goto fail;
    size_t perms = dsp_minhash_perms(m->mh);
    m->sig = dsp_xcalloc(perms, sizeof *m->sig);
    m->value_len = minhash_value_len(opts, perms);
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
        dsp_minhash_sketch(m->sig, dsp_minhash_perms(m->mh), m->sketch_bits, m->value + 4);
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
    dsp_shuffle_write_stats ws = {0};
    dsp_status st = dsp_shuffle_writer_close(w, &ws, err);
    if (stats) {
        *stats = m->stats;
        memcpy(stats->sha256, ws.sha256, sizeof stats->sha256);
    }
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
    int verify = minhash_verify(opts), bits = minhash_sketch_bits(opts);
    double threshold = minhash_threshold(opts);
    unsigned char group[BAND_GROUP_BYTES];
    unsigned char edge[EDGE_KEY_BYTES], tasks[8];
    unsigned char *first_sketch = NULL;
    uint64_t group_size = 0;

    dsp_status st;
    if (bits == 0) {
        st = dsp_err_set(err, DSP_EINVAL, "sketch_bits %d is not 1, 2, 4, 8, 16 or 32",
                         opts->sketch_bits);
        goto out;
    }
    st = dsp_minhash_new(opts ? &opts->params : NULL, &mh, err);
    if (st != DSP_OK)
        goto out;
    size_t perms = dsp_minhash_perms(mh);
    size_t value_len = minhash_value_len(opts, perms);
    size_t sketch_len = value_len - 4;
    first_sketch = dsp_xcalloc(sketch_len + 1, 1);
    st = dsp_shuffle_reader_open(store, map_keys, map_sizes, nmaps, partitions, partition,
                                 partition + 1, opts ? &opts->io.reader : NULL, &r, err);
    if (st != DSP_OK)
        goto out;
    st = dsp_shuffle_writer_open(store, edge_key, 1, opts ? &opts->io.writer : NULL, &w, err);
    if (st != DSP_OK)
        goto out;

    dsp_shuffle_rec rec;
    int got;
    while ((got = dsp_shuffle_reader_next(r, &rec, err)) == 1) {
        if (rec.key_len != BAND_KEY_BYTES || rec.value_len != value_len) {
            st = dsp_err_set(err, DSP_ECORRUPT,
                             "MinHash bands: record of %zu+%zu bytes, expected %d+%zu (do the "
                             "map and band stages use the same bands, rows, verify and "
                             "sketch_bits options?)",
                             rec.key_len, rec.value_len, BAND_KEY_BYTES, value_len);
            goto out;
        }
        const unsigned char *k = rec.key, *v = rec.value;
        if (group_size == 0 || memcmp(group, k, BAND_GROUP_BYTES) != 0) {
            /* First member of a new bucket: it becomes the star's centre. */
            memcpy(group, k, BAND_GROUP_BYTES);
            memcpy(edge, k + BAND_GROUP_BYTES, DSP_DEDUP_ORDER_SIZE);
            memcpy(tasks, v, 4);
            memcpy(first_sketch, v + 4, sketch_len);
            group_size = 1;
            s.groups++;
            continue;
        }
        group_size++;
        if (group_size > s.max_group)
            s.max_group = group_size;
        s.candidates++;
        if (verify && dsp_minhash_sketch_similarity(first_sketch, v + 4, perms, bits) < threshold)
            continue;
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
    dsp_shuffle_write_stats ws = {0};
    st = dsp_shuffle_writer_close(closing, &ws, err);
    memcpy(s.sha256, ws.sha256, sizeof s.sha256);

out:
    if (st != DSP_OK)
        dsp_err_prefix(err, "MinHash band stage of partition %u", partition);
    dsp_shuffle_writer_abort(w);
    dsp_shuffle_reader_close(r);
    dsp_minhash_free(mh);
    free(first_sketch);
    if (stats)
        *stats = s;
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
