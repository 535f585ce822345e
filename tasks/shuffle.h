/*
 * shuffle.h - shuffle files: one object per map task, read by reducers
 * with ranged GETs and merged into one sorted stream per partition.
 *
 * A map task with R output partitions writes ONE object, so a shuffle of M
 * maps into R partitions costs M PUTs instead of M x R. Object layout:
 *
 *   [partition 0][partition 1]...[partition R-1][index][footer]
 *
 *   partition p   zero or more zstd frames; decompressed and concatenated
 *                 they hold the partition's records, unsorted. Writers
 *                 set each frame's content checksum, so a reader's zstd
 *                 decoder rejects a corrupted slice.
 *   index         R entries of 32 bytes, little endian:
 *                   u64 offset   byte offset of the partition in the object
 *                   u64 size     compressed bytes (0 for an empty partition)
 *                   u64 records  number of records
 *                   u64 raw      decompressed bytes
 *   footer        40 bytes, little endian:
 *                   char magic[8] "DSPSHUF1"
 *                   u32 version  1
 *                   u32 R        number of partitions
 *                   u64 index_offset
 *                   u64 index_size   R * 32
 *                   u64 index_hash   xxh3-64 (seed 0) of the index bytes
 *
 * A record is (key, value), both byte strings, encoded as
 *   u16 key_len, u32 value_len (little endian), key bytes, value bytes.
 * Reducers return records in ascending order of the key (unsigned bytes,
 * shorter prefix first) and break ties by the value bytes. A partition's
 * order therefore depends only on its contents, never on the number of
 * maps, their order or the reducer's memory budget. Callers encode numbers in keys big
 * endian so that byte order is numeric order.
 *
 * Memory: the writer compresses a partition into a frame whenever its
 * buffers pass the budget and keeps frames in a local spill file; the
 * reader sorts records in memory up to its budget, writes sorted runs to
 * local disk beyond it and merges them at the end.
 */
#ifndef DSP_SHUFFLE_H
#define DSP_SHUFFLE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"

#define DSP_SHUFFLE_MAGIC "DSPSHUF1"
#define DSP_SHUFFLE_VERSION 1
#define DSP_SHUFFLE_FOOTER_SIZE 40
#define DSP_SHUFFLE_INDEX_ENTRY_SIZE 32
#define DSP_SHUFFLE_KEY_MAX 65535
#define DSP_SHUFFLE_DEFAULT_BUDGET (256u << 20)

typedef struct {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
} dsp_shuffle_rec;

/* ---- writer (map side) ---- */

typedef struct {
    size_t memory_budget; /* bytes of uncompressed records buffered before
                             frames go to the spill file; 0 = 256 MiB */
    int level;            /* zstd level; 0 = 1 (fast, intermediate data) */
    const char *tmp_dir;  /* spill directory; NULL = $TMPDIR or /tmp */
} dsp_shuffle_writer_opts;

typedef struct {
    uint64_t records, raw_bytes, object_bytes;
    uint64_t spilled_frames;
    char sha256[65];      /* hex SHA-256 of the whole object, for its commit entry */
} dsp_shuffle_write_stats;

typedef struct dsp_shuffle_writer dsp_shuffle_writer;

dsp_status dsp_shuffle_writer_open(dsp_store *store, const char *key, uint32_t partitions,
                                   const dsp_shuffle_writer_opts *opts,
                                   dsp_shuffle_writer **out, dsp_err *err);
/* Add a record to partition p (p < partitions); key and value are copied. */
dsp_status dsp_shuffle_writer_add(dsp_shuffle_writer *w, uint32_t p, const void *key,
                                  size_t key_len, const void *value, size_t value_len,
                                  dsp_err *err);
/* Write the object (one streaming upload) and free the writer, whatever
 * the result. stats may be NULL. */
dsp_status dsp_shuffle_writer_close(dsp_shuffle_writer *w, dsp_shuffle_write_stats *stats,
                                    dsp_err *err);
/* Free the writer without creating the object. */
void dsp_shuffle_writer_abort(dsp_shuffle_writer *w);

/* ---- reader (reduce side) ---- */

typedef struct {
    size_t memory_budget;     /* bytes of records held for sorting; 0 = 256 MiB */
    size_t max_request_bytes; /* neighbouring slices of one object are merged
                                 into one ranged GET up to this size; 0 = 8 MiB */
    int threads;              /* ranged GETs in flight; 0 = 4 */
    const char *tmp_dir;      /* spill directory; NULL = $TMPDIR or /tmp */
    volatile int *cancel;     /* when set non-zero, open and next fail with
                                 DSP_ECANCELLED at the next ranged GET, slice
                                 or record; NULL = never */
} dsp_shuffle_reader_opts;

typedef struct {
    uint64_t records, raw_bytes, fetched_bytes;
    uint64_t requests;        /* ranged GETs for slices, excluding index reads */
    uint64_t index_requests;  /* HEADs and index GETs */
    uint64_t runs_spilled;
    uint64_t peak_buffered;   /* max bytes of records held in memory at once */
} dsp_shuffle_read_stats;

typedef struct dsp_shuffle_reader dsp_shuffle_reader;

/*
 * Open a sorted stream over partitions [p_begin, p_end) of every map output
 * in keys[0..nkeys). sizes (optional, may be NULL or hold 0) give the object
 * sizes from the map commits and save one HEAD per object. All objects must
 * have `partitions` partitions. Records from all requested partitions are
 * merged into one stream in key order. Fetching, decompression and any
 * spilling happen here; dsp_shuffle_reader_next then only merges.
 */
dsp_status dsp_shuffle_reader_open(dsp_store *store, const char *const *keys,
                                   const uint64_t *sizes, size_t nkeys, uint32_t partitions,
                                   uint32_t p_begin, uint32_t p_end,
                                   const dsp_shuffle_reader_opts *opts,
                                   dsp_shuffle_reader **out, dsp_err *err);
/* Next record in key order; returns 1 with *rec filled, 0 at the end, -1 on
 * error (err filled). rec points into the reader, valid until the next call. */
int dsp_shuffle_reader_next(dsp_shuffle_reader *r, dsp_shuffle_rec *rec, dsp_err *err);
void dsp_shuffle_reader_stats(const dsp_shuffle_reader *r, dsp_shuffle_read_stats *out);
void dsp_shuffle_reader_close(dsp_shuffle_reader *r);

/* ---- local sorter ----
 *
 * A reader without map objects, for external sorts inside one task: records
 * added with dsp_shuffle_sorter_add are sorted in memory up to
 * opts->memory_budget and written to sorted runs in opts->tmp_dir beyond
 * it. After dsp_shuffle_sorter_finish, dsp_shuffle_reader_next returns them
 * in the reader's order, and dsp_shuffle_reader_close frees the sorter.
 */
dsp_shuffle_reader *dsp_shuffle_sorter_open(const dsp_shuffle_reader_opts *opts);
/* Add one record; key and value are copied. No adds after finish. */
dsp_status dsp_shuffle_sorter_add(dsp_shuffle_reader *r, const void *key, size_t key_len,
                                  const void *value, size_t value_len, dsp_err *err);
dsp_status dsp_shuffle_sorter_finish(dsp_shuffle_reader *r, dsp_err *err);

/* Partition of a 64-bit hash among R partitions (uniform, stable). */
static inline uint32_t dsp_shuffle_partition(uint64_t hash, uint32_t partitions)
{
    return (uint32_t)(((unsigned __int128)hash * partitions) >> 64);
}

/* Big-endian helpers for building keys whose byte order is numeric order. */
static inline void dsp_be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}
static inline uint64_t dsp_be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

#endif
