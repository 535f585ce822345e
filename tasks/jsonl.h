/*
 * jsonl.h - streaming reader of JSON Lines, plain, gzip or zstd.
 *
 * The reader fills batches of documents from one object or one byte range
 * of a plain object. Memory stays bounded whatever the input: one read
 * buffer that grows up to max_record_bytes, and records longer than that
 * are skipped in streaming fashion and rejected.
 *
 * Byte ranges (plain input only): the task reading [offset, offset+length)
 * owns exactly the records whose first byte lies in the range, so that
 * consecutive ranges read every record exactly once.
 *
 * Bad records are not fatal: each goes to the reject callback with its
 * reason, key and byte offset. The reasons are invalid_json (not valid
 * JSON), not_object (valid JSON but not an object, such as [1,2] or 42),
 * invalid_utf8 (in a member name), record_too_large (over
 * max_record_bytes), missing_text and text_not_string (the text member),
 * and duplicate_key. A record gets duplicate_key when the text member or
 * a member in unique_fields occurs twice, or a member along one of their
 * dotted paths does.
 * Invalid UTF-8 and lone UTF-16 surrogate escapes (\ud800 without its low
 * half) inside strings are repaired with U+FFFD, and the record is counted
 * as repaired. Blank lines are skipped and not counted as records, and a
 * UTF-8 byte order mark at the start of the input is ignored.
 */
#ifndef DSP_JSONL_H
#define DSP_JSONL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../storage/store.h"
#include "doc.h"

/*
 * Receives one rejected record: reason (snake_case, e.g. "invalid_json"),
 * the source key, the decompressed byte offset of the record, up to the
 * first record_len bytes of it, and the member name at fault (for
 * duplicate_key) or NULL. A failure stops the reader.
 */
typedef dsp_status (*dsp_reject_fn)(void *ctx, const char *reason, const char *key,
                                    uint64_t offset, const char *record, size_t record_len,
                                    const char *member, dsp_err *err);

#define DSP_DEFAULT_MAX_RECORD_BYTES (64LL << 20)
/* Maximum number of member names, the text field included, that the
 * reader checks for duplicates. A dotted path counts twice. */
#define DSP_JSONL_MAX_UNIQUE 32

typedef struct {
    dsp_store *store;
    const char *key;
    uint64_t offset;         /* start of the byte range; 0 for the whole object */
    int64_t length;          /* -1 = to the end of the object */
    int64_t max_record_bytes;/* 0 = DSP_DEFAULT_MAX_RECORD_BYTES */
    size_t read_size;        /* bytes per read from the store; 0 = 4 MiB */
    dsp_reject_fn reject;    /* may be NULL: rejects are only counted */
    void *reject_ctx;
    /* Nonzero: still check that the text member exists and is a string,
     * but leave d->text NULL and text_len 0. For callers that pass lines
     * through without reading the text. */
    int skip_text_decode;
    /* Nonzero: d->line points into the reader's buffer instead of a copy
     * in the batch arena, and is not NUL-terminated. Such documents stay
     * valid only until the next dsp_jsonl_next or dsp_jsonl_close, and a
     * call returns early rather than move the buffer under them. */
    int borrow_lines;
    /* Optional: size and ETag of the object when the job was planned. The
     * reader fails with DSP_EINVAL when the object is another version. */
    const dsp_obj_info *expect;
    /* Nonzero: every non-blank line is a record, passed on without JSON
     * validation. Only for a second pass over input whose first pass
     * rejected and repaired no record; needs skip_text_decode. */
    int trusted;
    /* Optional, NULL-terminated: members besides the text field that the
     * job reads, as top-level names or dotted paths ("metadata.url"). A
     * record in which one of them occurs twice is rejected as
     * duplicate_key, like one with two text members. */
    const char *const *unique_fields;
    /* Optional: read the bytes from data_key in data_store instead, for
     * example a local copy of the object. Documents and rejects still name
     * key and the object of key in store. */
    dsp_store *data_store;
    const char *data_key;
    /* Optional, for a whole object only (offset 0, length -1): receives
     * every byte the reader reads, after decompression, in order. */
    void (*tee)(void *ctx, const char *data, size_t len);
    void *tee_ctx;
} dsp_jsonl_opts;

typedef struct {
    uint64_t records;        /* non-blank lines owned by this reader */
    uint64_t rejected;
    uint64_t blank_lines;
    uint64_t utf8_repaired;  /* records with invalid UTF-8 replaced by U+FFFD */
    uint64_t bytes_in;       /* bytes read from the store */
    uint64_t bytes_in_raw;   /* decompressed bytes */
} dsp_jsonl_stats;

typedef struct dsp_jsonl_reader dsp_jsonl_reader;

dsp_status dsp_jsonl_open(const dsp_jsonl_opts *opts, dsp_jsonl_reader **out, dsp_err *err);
/*
 * Append up to max_docs documents (or about max_bytes of lines) to b, each
 * with its text decoded unless skip_text_decode is set. *eof is set when the input is exhausted; a call
 * may return no documents without being at the end.
 */
dsp_status dsp_jsonl_next(dsp_jsonl_reader *r, dsp_batch *b, size_t max_docs, size_t max_bytes,
                          int *eof, dsp_err *err);
const dsp_jsonl_stats *dsp_jsonl_get_stats(const dsp_jsonl_reader *r);
/* 1 when the object is gzip- or zstd-compressed. */
int dsp_jsonl_compressed(const dsp_jsonl_reader *r);
void dsp_jsonl_close(dsp_jsonl_reader *r);

/* Results of dsp_json_validate. DSP_JSON_NOT_OBJECT is a valid JSON value
 * other than an object, such as [1,2], 42 or "s". */
enum { DSP_JSON_VALID = 0, DSP_JSON_INVALID, DSP_JSON_INVALID_NAME_UTF8, DSP_JSON_NOT_OBJECT };

/*
 * Check that line is one JSON object (RFC 8259 syntax, nesting depth at most
 * 512). Sets *needs_repair when strings contain invalid UTF-8 or a lone
 * UTF-16 surrogate escape, which dsp_json_repair() replaces.
 */
int dsp_json_validate(const char *line, size_t len, int *needs_repair);
/*
 * Check a line as the reader checks a record, for lines that come from
 * elsewhere, such as the output of an exec command. Returns NULL for a
 * valid record, else the reject reason: invalid_json, not_object,
 * missing_text, text_not_string, duplicate_key (two members named
 * text_field), or invalid_utf8, which here also covers invalid UTF-8 and
 * lone surrogate escapes in string values, because nothing repairs them.
 */
const char *dsp_jsonl_check_line(const char *line, size_t len, const char *text_field);
/* Append the valid JSON line to out with each invalid UTF-8 byte and each
 * lone surrogate escape (\ud800 without a low surrogate escape after it,
 * or a lone \udc00) replaced by U+FFFD, and return the number replaced. */
size_t dsp_json_repair(const char *line, size_t len, dsp_buf *out);
/* Append s to out with each invalid UTF-8 byte replaced by U+FFFD, and
 * return the number of bytes replaced. */
size_t dsp_utf8_repair(const char *s, size_t len, dsp_buf *out);

#endif
