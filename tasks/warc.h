/*
 * warc.h - streaming reader of WARC 1.0 and 1.1 files (WARC and WET).
 *
 * Input is plain or gzip, either one gzip member per record or the whole
 * file in one member. Each record is framed by its version line, header
 * fields, a blank line, Content-Length bytes of block and two CRLFs. A
 * record that breaks this framing fails the read with DSP_ECORRUPT, and the
 * message names the key and the byte offset in the decompressed stream.
 *
 * Documents come from two record types. A "conversion" record (WET) gives
 * its block as the text. A "response" record whose HTTP status is 200 and
 * whose Content-Type is text/html or application/xhtml+xml is converted to
 * text with tasks/html.h. Every other record (request, metadata, warcinfo,
 * resource, non-HTML or non-200 responses) is skipped and counted. Each
 * document is one JSON object with the members id (WARC-Record-ID), url
 * (WARC-Target-URI), date (WARC-Date) and text, where the id and text
 * members take the names the job configures.
 */
#ifndef DSP_WARC_H
#define DSP_WARC_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"
#include "doc.h"
#include "jsonl.h"

typedef struct {
    dsp_store *store;
    const char *key;
    int64_t max_record_bytes; /* larger document records are rejected; 0 = 64 MiB */
    size_t read_size;         /* bytes per read from the store; 0 = 4 MiB */
    dsp_reject_fn reject;     /* may be NULL: rejects are only counted */
    void *reject_ctx;
    const char *id_field;     /* name of the id member; NULL = "id" */
    /* Optional: size and ETag of the object when the job was planned. The
     * reader fails with DSP_EINVAL when the object is another version. */
    const dsp_obj_info *expect;
} dsp_warc_opts;

typedef struct {
    uint64_t records;   /* documents produced plus rejected */
    uint64_t rejected;
    uint64_t skipped;   /* records that are not documents */
    uint64_t utf8_repaired; /* conversion records with invalid UTF-8 replaced by U+FFFD */
    uint64_t bytes_in;  /* bytes read from the store */
    uint64_t bytes_in_raw;
} dsp_warc_stats;

typedef struct dsp_warc_reader dsp_warc_reader;

dsp_status dsp_warc_open(const dsp_warc_opts *opts, dsp_warc_reader **out, dsp_err *err);
/* Append up to max_docs documents (or about max_bytes of text) to b; *eof
 * is set at the end of the input. The document text field is named after
 * b->text_field. */
dsp_status dsp_warc_next(dsp_warc_reader *r, dsp_batch *b, size_t max_docs, size_t max_bytes,
                         int *eof, dsp_err *err);
const dsp_warc_stats *dsp_warc_get_stats(const dsp_warc_reader *r);
void dsp_warc_close(dsp_warc_reader *r);

#endif
