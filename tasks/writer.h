/*
 * writer.h - compressed JSONL output, split into shards.
 *
 * A shard writer streams lines through one compressor (zstd or gzip) into
 * dsp_writer objects of the storage layer. In sharded mode it starts a new
 * object <prefix>/part-NNNNN.jsonl.zst (or .jsonl.gz) once the current one
 * has about target_shard_bytes of compressed output, always at a line
 * boundary; in single-object mode every line goes to one key. Nothing is
 * visible in the store until dsp_shard_writer_close() succeeds for that
 * shard, and dsp_shard_writer_abort() leaves no objects of unfinished
 * shards. Each finished object's key, size, record count and SHA-256 of its
 * bytes are recorded.
 */
#ifndef DSP_WRITER_H
#define DSP_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"
#include "pipeline.h"

typedef enum { DSP_CODEC_ZSTD = 0, DSP_CODEC_GZIP } dsp_codec;

#define DSP_DEFAULT_SHARD_BYTES (128LL << 20)

typedef struct {
    dsp_store *store;
    const char *prefix;        /* shards are <prefix>/part-NNNNN.<ext> */
    const char *single_key;    /* when set, write one object with this key instead */
    dsp_codec codec;
    int level;                 /* 0 = default: zstd 3, gzip 6 */
    int64_t target_shard_bytes;/* compressed bytes per shard; 0 = 128 MiB */
} dsp_shard_writer_opts;

typedef struct dsp_shard_writer dsp_shard_writer;

/* Parse "jsonl.zst" or "jsonl.gz" (NULL means jsonl.zst). */
dsp_status dsp_codec_parse(const char *out_format, dsp_codec *codec, dsp_err *err);

dsp_status dsp_shard_writer_open(const dsp_shard_writer_opts *opts, dsp_shard_writer **out,
                                 dsp_err *err);
/* Append one line; the writer adds the newline. */
dsp_status dsp_shard_writer_write(dsp_shard_writer *w, const char *line, size_t len,
                                  dsp_err *err);
/* Finish the open shard and free the writer. On success *files receives the
 * finished objects in order (caller frees each key and the array); no
 * object is created when no line was written. On failure the open shard is
 * aborted, and the objects finished before stay in the store. */
dsp_status dsp_shard_writer_close(dsp_shard_writer *w, dsp_output_file **files, size_t *nfiles,
                                  dsp_err *err);
/* Discard the open shard and free the writer. Returns the finished objects
 * like close, so the caller can delete them. */
void dsp_shard_writer_abort(dsp_shard_writer *w, dsp_output_file **files, size_t *nfiles);
/* Compressed bytes written so far, finished shards and the open one. */
uint64_t dsp_shard_writer_bytes(const dsp_shard_writer *w);

#endif
