/*
 * repartition.h - sort and repartition documents into N output shards
 * through the shuffle (see shuffle.h).
 *
 * Hash mode: shard = a hash of the key, and every shard keeps the input
 * order (the global order key of dedup.h), so the same input gives the
 * same shards for any number of map tasks.
 * Range mode: shard p gets the keys in (boundaries[p-1], boundaries[p]]
 * (byte order), and each shard is sorted by key, ties in input order, so
 * the shards concatenated in order are one global sort. The caller picks
 * the N - 1 boundaries, for example from a sample of the keys.
 *
 * Call sequence: per map task dsp_repart_map_open/add/close, then per
 * shard p dsp_repart_reduce(), which calls `emit` once per line in order.
 */
#ifndef DSP_REPARTITION_H
#define DSP_REPARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"
#include "dedup.h"
#include "shuffle.h"

typedef enum { DSP_REPART_HASH = 0, DSP_REPART_RANGE } dsp_repart_mode;

typedef struct {
    dsp_repart_mode mode;
    const char *const *boundaries; /* range mode: shards - 1 ascending keys */
    const size_t *boundary_lens;
    size_t nboundaries;
    dsp_shuffle_writer_opts writer;
} dsp_repart_opts;

typedef struct dsp_repart_map dsp_repart_map;

dsp_status dsp_repart_map_open(dsp_store *store, const char *key, uint32_t shards,
                               const dsp_repart_opts *opts, dsp_repart_map **out, dsp_err *err);
/* Add one line (a whole JSONL record without its newline) with its sort or
 * hash key and its global order key. */
dsp_status dsp_repart_map_add(dsp_repart_map *m, const void *key, size_t key_len,
                              dsp_dedup_order order, const char *line, size_t len, dsp_err *err);
/* Write the shuffle file and free the map, whatever the result. */
dsp_status dsp_repart_map_close(dsp_repart_map *m, dsp_err *err);
/* dsp_repart_map_close that also fills stats (may be NULL), for the
 * SHA-256 of the shuffle file. */
dsp_status dsp_repart_map_close_stats(dsp_repart_map *m, dsp_shuffle_write_stats *stats,
                                      dsp_err *err);
void dsp_repart_map_abort(dsp_repart_map *m);

typedef dsp_status (*dsp_repart_emit_fn)(void *ctx, const char *line, size_t len, dsp_err *err);

/* Read shard `shard` of every map output and emit its lines in order. */
dsp_status dsp_repart_reduce(dsp_store *store, const char *const *map_keys,
                             const uint64_t *map_sizes, size_t nmaps, uint32_t shards,
                             uint32_t shard, const dsp_shuffle_reader_opts *opts,
                             dsp_repart_emit_fn emit, void *ctx, dsp_err *err);

#endif
