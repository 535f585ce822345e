/*
 * decompress.h - a decompressing byte stream over a store reader.
 *
 * The compression is detected from the first bytes of the object, never
 * from its name: gzip (1f 8b), zstd (28 b5 2f fd, or a skippable frame
 * 5X 2a 4d 18), otherwise the bytes pass through unchanged. Concatenated
 * gzip members and concatenated zstd frames are read as one stream. A
 * stream that ends inside a member or frame fails with DSP_ECORRUPT and a
 * message naming the key and the compressed byte offset.
 */
#ifndef DSP_DECOMPRESS_H
#define DSP_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"

typedef enum { DSP_COMP_NONE = 0, DSP_COMP_GZIP, DSP_COMP_ZSTD } dsp_compression;

/* Detect the compression from the first n bytes (n >= 4 for zstd). */
dsp_compression dsp_compression_detect(const void *data, size_t n);
/* "none", "gzip" or "zstd". */
const char *dsp_compression_name(dsp_compression c);

typedef struct dsp_dstream dsp_dstream;

/*
 * Open a stream over src, which stays owned by the caller and must outlive
 * the stream. key is used in error messages only. base_offset is the
 * object offset of src's first byte, so that errors report object offsets.
 * in_size is the read size from src (0 = 1 MiB).
 */
dsp_status dsp_dstream_open(dsp_reader *src, const char *key, uint64_t base_offset,
                            size_t in_size, dsp_dstream **out, dsp_err *err);
/* Read up to cap decompressed bytes; *got = 0 means the end of the stream. */
dsp_status dsp_dstream_read(dsp_dstream *s, void *buf, size_t cap, size_t *got, dsp_err *err);
/* Continue a plain stream from another reader whose first byte follows the
 * last byte of the previous one (used to finish a record past a range end).
 * Fails with DSP_EINVAL on a compressed stream. */
dsp_status dsp_dstream_continue(dsp_dstream *s, dsp_reader *src, dsp_err *err);
dsp_compression dsp_dstream_compression(const dsp_dstream *s);
/* Bytes consumed from the source readers so far. */
uint64_t dsp_dstream_bytes_in(const dsp_dstream *s);
/* Decompressed bytes returned so far. */
uint64_t dsp_dstream_bytes_out(const dsp_dstream *s);
void dsp_dstream_close(dsp_dstream *s);

/* Called by dsp_object_lines for each non-empty line (without its newline)
 * and its 1-based number. Return DSP_OK to go on, DSP_ECANCELLED to stop
 * early without an error, or any other status to fail with it. */
typedef dsp_status (*dsp_line_fn)(void *ctx, const char *line, size_t len, uint64_t lineno,
                                  dsp_err *err);

/* Stream the whole object key of s (plain, gzip or zstd) and call fn for
 * each of its lines, the last one also without a trailing newline. For
 * small JSONL side files such as rejects and clusters, not the data path. */
dsp_status dsp_object_lines(dsp_store *s, const char *key, dsp_line_fn fn, void *ctx,
                            dsp_err *err);

#endif
