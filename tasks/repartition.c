/*
 * repartition.c - hash and range repartitioning over the shuffle (see
 * repartition.h). Guarantee: a shard's lines and their order depend only
 * on the input lines, their keys and order keys, and the options.
 *
 * Record layout: value = the line. Key in hash mode = order key (16 bytes);
 * in range mode = the sort key in an order-preserving escape (0x00 becomes
 * 0x00 0xFF, then 0x00 0x00 ends it) followed by the order key, so that
 * byte order of records is (sort key, order key) even when one sort key
 * is a prefix of another.
 */
#include "repartition.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/buf.h"
#include "../core/util.h"

struct dsp_repart_map {
    dsp_shuffle_writer *w;
    uint32_t shards;
    dsp_repart_mode mode;
    const char *const *bounds;
    const size_t *bound_lens;
    size_t nbounds;
    dsp_buf key;
};

dsp_status dsp_repart_map_open(dsp_store *store, const char *key, uint32_t shards,
                               const dsp_repart_opts *opts, dsp_repart_map **out, dsp_err *err)
{
    dsp_repart_mode mode = opts ? opts->mode : DSP_REPART_HASH;
    if (mode == DSP_REPART_RANGE && (!opts->boundaries || opts->nboundaries + 1 != shards))
        return dsp_err_set(err, DSP_EINVAL,
                           "repartition %s: range mode needs %u boundaries for %u shards, got %zu",
                           key, shards ? shards - 1 : 0, shards, opts->nboundaries);
    dsp_repart_map *m = dsp_xcalloc(1, sizeof *m);
    m->shards = shards;
    m->mode = mode;
    if (mode == DSP_REPART_RANGE) {
        m->bounds = opts->boundaries;
        m->bound_lens = opts->boundary_lens;
        m->nbounds = opts->nboundaries;
    }
    dsp_status st = dsp_shuffle_writer_open(store, key, shards, opts ? &opts->writer : NULL,
                                            &m->w, err);
    if (st != DSP_OK) {
        free(m);
        return st;
    }
    *out = m;
    return DSP_OK;
}

static int bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* First shard whose upper boundary is >= key; the last shard has none. */
static uint32_t range_shard(const dsp_repart_map *m, const void *key, size_t len)
{
    size_t lo = 0, hi = m->nbounds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (bytes_cmp(m->bounds[mid], m->bound_lens[mid], key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

dsp_status dsp_repart_map_add(dsp_repart_map *m, const void *key, size_t key_len,
                              dsp_dedup_order order, const char *line, size_t len, dsp_err *err)
{
    unsigned char ord[DSP_DEDUP_ORDER_SIZE];
    dsp_dedup_order_encode(order, ord);
    if (m->mode == DSP_REPART_HASH) {
        uint32_t shard = dsp_shuffle_partition(XXH3_64bits(key, key_len), m->shards);
        return dsp_shuffle_writer_add(m->w, shard, ord, sizeof ord, line, len, err);
    }
    dsp_buf_reset(&m->key);
    const unsigned char *k = key;
    for (size_t i = 0; i < key_len; i++) {
        dsp_buf_append_char(&m->key, (char)k[i]);
        if (k[i] == 0)
            dsp_buf_append_char(&m->key, (char)0xff);
    }
    dsp_buf_append(&m->key, "\0\0", 2);
    dsp_buf_append(&m->key, ord, sizeof ord);
    return dsp_shuffle_writer_add(m->w, range_shard(m, key, key_len), m->key.data, m->key.len,
                                  line, len, err);
}

void dsp_repart_map_abort(dsp_repart_map *m)
{
    if (!m)
        return;
    dsp_shuffle_writer_abort(m->w);
    dsp_buf_free(&m->key);
    free(m);
}

dsp_status dsp_repart_map_close(dsp_repart_map *m, dsp_err *err)
{
    return dsp_repart_map_close_stats(m, NULL, err);
}

dsp_status dsp_repart_map_close_stats(dsp_repart_map *m, dsp_shuffle_write_stats *stats,
                                      dsp_err *err)
{
    dsp_shuffle_writer *w = m->w;
    m->w = NULL;
    dsp_repart_map_abort(m);
    return dsp_shuffle_writer_close(w, stats, err);
}

dsp_status dsp_repart_reduce(dsp_store *store, const char *const *map_keys,
                             const uint64_t *map_sizes, size_t nmaps, uint32_t shards,
                             uint32_t shard, const dsp_shuffle_reader_opts *opts,
                             dsp_repart_emit_fn emit, void *ctx, dsp_err *err)
{
    dsp_shuffle_reader *r = NULL;
    dsp_status st = dsp_shuffle_reader_open(store, map_keys, map_sizes, nmaps, shards, shard,
                                            shard + 1, opts, &r, err);
    if (st != DSP_OK)
        return st;
    dsp_shuffle_rec rec;
    int got;
    while ((got = dsp_shuffle_reader_next(r, &rec, err)) == 1) {
        st = emit(ctx, rec.value, rec.value_len, err);
        if (st != DSP_OK)
            break;
    }
    if (got < 0)
        st = err->code;
    if (st != DSP_OK)
        dsp_err_prefix(err, "repartition of shard %u", shard);
    dsp_shuffle_reader_close(r);
    return st;
}
