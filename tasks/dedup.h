/*
 * dedup.h - exact and MinHash near-duplicate removal as shuffle stages.
 *
 * Every document carries a global order key (input index, byte offset):
 * the index of its input object in the job's sorted input list and the
 * byte offset of its record in the decompressed input. "First" always means
 * the smallest order key, so which documents survive depends only on the
 * input, never on the number of workers, tasks or partitions. Each
 * document also carries the index of the filter task that will read it
 * again (its "source task"), so drop lists can be shuffled to that task.
 *
 * Call sequence for the runtime (M source tasks, R reduce partitions):
 *
 * Exact dedup, three stages:
 *   1. map, per source task t in 0..M-1:
 *        dsp_dedup_exact_map_open(store, key_t, R, t, opts)
 *        dsp_dedup_exact_map_add(...) for every document, in input order
 *        dsp_dedup_exact_map_close()        -> one shuffle file per task
 *   2. reduce, per partition p in 0..R-1:
 *        dsp_dedup_exact_reduce(store, the M map files, p, drop_key_p, M)
 *        keeps the first document of every hash and writes the order keys
 *        of the others into drop_key_p, a shuffle file with M partitions
 *        (partition t = drops for source task t).
 *   3. filter, per source task t:
 *        dsp_dedup_drops_open(store, the R drop files, M, t)
 *        dsp_dedup_drops_contains(order) for every document, in ascending
 *        order key, while re-reading the task's input; drop on 1.
 *
 * MinHash dedup, four stages:
 *   1. map, per source task t:
 *        dsp_dedup_minhash_map_open/add/close: signatures, and one record
 *        per LSH band (band, band hash) -> order key into R partitions.
 *   2. bands, per partition p:
 *        dsp_dedup_minhash_bands(store, the M map files, p, edge_key_p):
 *        for every bucket (same band and band hash) emits star edges from
 *        the bucket's first document to each other member whose estimated
 *        Jaccard (sketch agreement) reaches threshold + margin, so a bucket
 *        of n documents costs n - 1 edges and O(1) memory, never n^2.
 *   3. components, ONE task:
 *        dsp_dedup_minhash_components(store, the R edge files, drop_key, M,
 *        clusters_key): connected components. A union-find runs in memory
 *        when the nodes fit the components budget, and external
 *        large-star/small-star rounds on local disk run when they do not.
 *        Every component keeps its first document and drops the others.
 *        Writes the drop file (M partitions) and optionally clusters as JSONL.
 *   4. filter, per source task t: as exact stage 3 with the one drop file.
 *
 * Memory: map and reduce stages use the shuffle budgets (spill to local
 * disk). The components task stays within io.components_budget plus
 * DSP_DEDUP_COMPONENTS_OVERHEAD. It keeps one union-find node per document
 * with an edge (24 bytes plus its index share) while they fit half the
 * budget, and otherwise sorts edges on local disk in rounds. Both ways
 * give the same drop file and clusters.
 */
#ifndef DSP_DEDUP_H
#define DSP_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"
#include "json_key.h"
#include "minhash.h"
#include "shuffle.h"

typedef struct {
    uint64_t input;  /* index of the input object in the job's input list */
    uint64_t offset; /* byte offset of the record in the decompressed input */
} dsp_dedup_order;

#define DSP_DEDUP_ORDER_SIZE 16

/* Encode an order key as 16 big-endian bytes, so byte order is key order. */
void dsp_dedup_order_encode(dsp_dedup_order o, unsigned char out[DSP_DEDUP_ORDER_SIZE]);
dsp_dedup_order dsp_dedup_order_decode(const unsigned char *in);
int dsp_dedup_order_cmp(dsp_dedup_order a, dsp_dedup_order b);

typedef struct {
    uint64_t docs;         /* documents seen by a map */
    uint64_t skipped;      /* documents without words (MinHash: no signature) */
    uint64_t records;      /* shuffle records read or written */
    uint64_t groups;       /* exact: distinct hashes; MinHash: buckets */
    uint64_t max_group;    /* largest group or bucket */
    uint64_t candidates;   /* MinHash: bucket members compared with the bucket's first */
    uint64_t edges;        /* MinHash: edges that passed the threshold */
    uint64_t components;   /* MinHash: clusters with two or more documents */
    uint64_t dropped;      /* documents marked for removal */
    uint64_t runs_spilled; /* sorted runs written by shuffle readers */
    uint64_t rounds;       /* MinHash components: external rounds, 0 in memory */
    char sha256[65];       /* hex SHA-256 of the shuffle file the call wrote
                              (map close, reduce, bands, components); "" on error */
} dsp_dedup_stats;

/* Default components budget: the shuffle reader's default budget. */
#define DSP_DEDUP_COMPONENTS_DEFAULT_BUDGET DSP_SHUFFLE_DEFAULT_BUDGET
/* Memory of the components task outside its budget, whatever the input:
 * zstd contexts, I/O buffers and the drop file's 256 KiB frames. An upper
 * bound from measurements on the local store, not derived: the peak RSS
 * growth in tests/unit/test_components.c was about 2.3 MiB with a 1 MiB
 * budget and 3.0 MiB with 4 MiB (glibc 2.36, x86-64).
 * NOTE: on S3, each of the two outputs also buffers one multipart part
 * (8 MiB by default), which this constant does not cover. */
#define DSP_DEDUP_COMPONENTS_OVERHEAD (3u << 20)

typedef struct {
    dsp_shuffle_writer_opts writer;
    dsp_shuffle_reader_opts reader;
    /* Bytes the MinHash components task may hold, shuffle buffers included;
     * 0 = DSP_DEDUP_COMPONENTS_DEFAULT_BUDGET. Its reader budget is
     * capped at an eighth of it. */
    size_t components_budget;
} dsp_dedup_io_opts;

/* ---- exact ---- */

/*
 * Key: xxh3-128 of the normalised text (see dsp_text_normalize) plus its
 * length in bytes. A 64-bit hash over 10^10 documents expects about 3
 * collisions (n^2 / 2^65), and each would silently drop a unique document.
 * At 128 bits the collision probability is about 10^-19.
 * The length costs 8 bytes per record and makes a collision also need
 * equal lengths. Documents whose normalised text is empty (no letters or
 * digits at all) share one key, so only the first of them is kept.
 */
typedef struct {
    int raw;                 /* 1: hash the bytes as given (default for a field
                                such as url); 0: normalise first (default for text) */
    dsp_dedup_io_opts io;
} dsp_dedup_exact_opts;

typedef struct dsp_dedup_exact_map dsp_dedup_exact_map;

dsp_status dsp_dedup_exact_map_open(dsp_store *store, const char *key, uint32_t partitions,
                                    uint32_t task, const dsp_dedup_exact_opts *opts,
                                    dsp_dedup_exact_map **out, dsp_err *err);
dsp_status dsp_dedup_exact_map_add(dsp_dedup_exact_map *m, const char *text, size_t len,
                                   dsp_dedup_order order, dsp_err *err);
/*
 * Add a document keyed by one member's value: `type` and the bytes of
 * dsp_json_value_bytes. The hash covers a type byte before the bytes, so
 * values of different JSON types never compare equal (the string "1" and
 * the number 1, the string "true" and true). Only a string is normalised,
 * and only without opts->raw, because the bytes of the other types are
 * exact encodings that normalising would merge.
 */
dsp_status dsp_dedup_exact_map_add_value(dsp_dedup_exact_map *m, dsp_json_type type,
                                         const char *bytes, size_t len, dsp_dedup_order order,
                                         dsp_err *err);
/* Write the shuffle file and free the map, whatever the result. */
dsp_status dsp_dedup_exact_map_close(dsp_dedup_exact_map *m, dsp_dedup_stats *stats,
                                     dsp_err *err);
void dsp_dedup_exact_map_abort(dsp_dedup_exact_map *m);

dsp_status dsp_dedup_exact_reduce(dsp_store *store, const char *const *map_keys,
                                  const uint64_t *map_sizes, size_t nmaps, uint32_t partitions,
                                  uint32_t partition, const char *drop_key, uint32_t tasks,
                                  const dsp_dedup_io_opts *io, dsp_dedup_stats *stats,
                                  dsp_err *err);

/* ---- MinHash ---- */

typedef struct {
    dsp_minhash_params params; /* ngram 5, 14 bands x 8 rows by default */
    int verify;                /* 1 (default): check estimated Jaccard of each
                                  candidate pair; -1: off */
    double threshold;          /* Jaccard similarity that makes a duplicate; 0 = 0.8 */
    /* Added to threshold for the signature check. The estimate from 112
     * values has a standard deviation of about 0.04 near 0.8, so pairs
     * just below the threshold often pass an unadjusted check. 0 = 0.03,
     * negative = none. On linux-doc 6.1 + 6.12 (bench/dedup_quality.sh)
     * with 4-bit sketches, 0.03 measured precision 0.991 and recall 0.968,
     * and 0.02 measured 0.986 and 0.976. */
    double margin;
    /* Bits per signature value in the sketch that band records carry for
     * the check (dsp_minhash_sketch): 1, 2, 4, 8, 16 or 32; 0 = 4. Every
     * band record of a document carries it, so with 112 values 4 bits
     * cost 56 bytes per record where the whole signature costs 448. 32
     * gives the same edges as comparing whole signatures. */
    int sketch_bits;
    dsp_dedup_io_opts io;
} dsp_dedup_minhash_opts;

typedef struct dsp_dedup_minhash_map dsp_dedup_minhash_map;

dsp_status dsp_dedup_minhash_map_open(dsp_store *store, const char *key, uint32_t partitions,
                                      uint32_t task, const dsp_dedup_minhash_opts *opts,
                                      dsp_dedup_minhash_map **out, dsp_err *err);
dsp_status dsp_dedup_minhash_map_add(dsp_dedup_minhash_map *m, const char *text, size_t len,
                                     dsp_dedup_order order, dsp_err *err);
dsp_status dsp_dedup_minhash_map_close(dsp_dedup_minhash_map *m, dsp_dedup_stats *stats,
                                       dsp_err *err);
void dsp_dedup_minhash_map_abort(dsp_dedup_minhash_map *m);

/* Stage 2: star edges of every bucket in partition `partition`, written to
 * edge_key as a shuffle file with one partition. opts must match the map's. */
dsp_status dsp_dedup_minhash_bands(dsp_store *store, const char *const *map_keys,
                                   const uint64_t *map_sizes, size_t nmaps,
                                   uint32_t partitions, uint32_t partition,
                                   const char *edge_key, const dsp_dedup_minhash_opts *opts,
                                   dsp_dedup_stats *stats, dsp_err *err);

/* Stage 3: components over all edge files; clusters_key may be NULL. Each
 * clusters line is {"representative":[input,offset],"members":[[input,offset],...]}
 * with members in order key order, the representative excluded. */
dsp_status dsp_dedup_minhash_components(dsp_store *store, const char *const *edge_keys,
                                        const uint64_t *edge_sizes, size_t nedges,
                                        const char *drop_key, uint32_t tasks,
                                        const char *clusters_key, const dsp_dedup_io_opts *io,
                                        dsp_dedup_stats *stats, dsp_err *err);

/* ---- filter (both kinds) ---- */

typedef struct dsp_dedup_drops dsp_dedup_drops;

/* Open the drop list of source task `task` from the drop files (each with
 * `tasks` partitions). */
dsp_status dsp_dedup_drops_open(dsp_store *store, const char *const *drop_keys,
                                const uint64_t *drop_sizes, size_t ndrops, uint32_t tasks,
                                uint32_t task, const dsp_shuffle_reader_opts *opts,
                                dsp_dedup_drops **out, dsp_err *err);
/* 1 when the document must be removed, 0 to keep, -1 on error. Calls must
 * come in ascending order key; a smaller key than the previous is an error. */
int dsp_dedup_drops_contains(dsp_dedup_drops *d, dsp_dedup_order order, dsp_err *err);
/* Number of order keys in the list (all of them, including those passed). */
uint64_t dsp_dedup_drops_count(const dsp_dedup_drops *d);
void dsp_dedup_drops_close(dsp_dedup_drops *d);

#endif
