/*
 * input_cache.h - a local disk cache of decompressed inputs, shared by the
 * worker processes of one machine.
 *
 * A dedup or sort job whose map stage has no steps reads its compressed
 * inputs twice: the map task to compute keys, and the dedup_filter or
 * sort_map task to write the survivors. The map task keeps the bytes it
 * decompressed in a cache entry, and the later task reads them back when
 * it runs on the same machine, instead of decompressing the input again.
 * Any other machine, or a missing entry, reads the input from the store
 * as before, so the cache changes only the cost, never the result.
 *
 * The directory is $DSPARK_INPUT_CACHE, or dspark-input-cache-<uid> in
 * $TMPDIR (/tmp when unset); DSPARK_INPUT_CACHE=off turns the cache off.
 * It is created with mode 0700, and a directory that the user does not
 * own is not used. An entry is written under a temporary name and renamed
 * when complete. Before using an entry, its reader checks the length and
 * xxh3 hash that the map task committed, and a damaged entry is removed
 * and the input read from the store. A write stops, and the entry is
 * removed, when it fails or would leave less than
 * DSP_INPUT_CACHE_MIN_FREE_PERCENT of the file system free.
 */
#ifndef DSP_INPUT_CACHE_H
#define DSP_INPUT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define DSP_INPUT_CACHE_MIN_FREE_PERCENT 10
/* Entries written longer ago than this are removed by dsp_input_cache_sweep. */
#define DSP_INPUT_CACHE_MAX_AGE_SECONDS (24 * 3600)

/* The cache directory, created on first use; NULL when the cache is off
 * or the directory cannot be used (logged once). */
const char *dsp_input_cache_dir(void);

/* Name of the entry of input `index` of the map task attempt whose output
 * prefix is `attempt_prefix`, in job `job`. Entries of one job share the
 * prefix that dsp_input_cache_job_prefix returns. Caller frees both. */
char *dsp_input_cache_name(const char *job, const char *attempt_prefix, size_t index);
char *dsp_input_cache_job_prefix(const char *job);

typedef struct dsp_input_cache_writer dsp_input_cache_writer;

/* Start writing entry `name`. Returns NULL when the cache is off or the
 * file system is short of space; the caller then caches nothing. */
dsp_input_cache_writer *dsp_input_cache_create(const char *name);
/* Append bytes. A failed write abandons the entry; later calls do nothing. */
void dsp_input_cache_write(dsp_input_cache_writer *w, const void *data, size_t len);
/* Finish the entry and free w. Returns 1 with the entry's length and xxh3
 * hash when it is in place, 0 when it was abandoned. */
int dsp_input_cache_commit(dsp_input_cache_writer *w, uint64_t *bytes, uint64_t *hash);
/* Remove the partial entry and free w. */
void dsp_input_cache_discard(dsp_input_cache_writer *w);

/* Path of entry `name` when it exists with `bytes` bytes, else NULL.
 * Caller frees. */
char *dsp_input_cache_find(const char *name, uint64_t bytes);
/* Return 1 when the file at path has `bytes` bytes with xxh3 hash `hash`.
 * Reading an entry costs far less than decompressing its input again. */
int dsp_input_cache_verify(const char *path, uint64_t bytes, uint64_t hash);
void dsp_input_cache_remove(const char *name);
/* Remove every entry whose name starts with prefix (a job's entries). */
void dsp_input_cache_remove_prefix(const char *prefix);
/* Remove entries and partial files older than
 * DSP_INPUT_CACHE_MAX_AGE_SECONDS, left by tasks that lost their commit or
 * workers that died. */
void dsp_input_cache_sweep(void);

#endif
