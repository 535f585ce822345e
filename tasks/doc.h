/*
 * doc.h - documents and batches of documents: the unit the data path moves.
 *
 * A document is one JSON object (one JSONL line, or a WARC record converted
 * to one). The hot path never builds a JSON tree: `line` keeps the original
 * object text, and only the fields an operator asks for are located and
 * decoded. When an operator changes the text or adds fields, the writer
 * re-emits the line with the new text value and the extra members appended,
 * and every other member passes through byte for byte.
 *
 * Memory: a batch owns one arena; everything a document points to (line,
 * decoded text, added fields) lives in the arena or in the reader's buffer
 * and is released together when the batch is reset, so no allocation
 * happens per record once the arena has grown to its working size.
 */
#ifndef DSP_DOC_H
#define DSP_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../core/err.h"

/* Bump allocator, reset per batch. */
typedef struct dsp_arena_block dsp_arena_block;
typedef struct {
    dsp_arena_block *head;
    size_t block_size;
} dsp_arena;

void dsp_arena_init(dsp_arena *a, size_t block_size);
void *dsp_arena_alloc(dsp_arena *a, size_t n);   /* 8-byte aligned */
/* Shrink p, the most recent allocation, to its first n bytes and return
 * the rest to the arena. Does nothing when p is not the most recent one. */
void dsp_arena_shrink(dsp_arena *a, void *p, size_t n);
char *dsp_arena_strndup(dsp_arena *a, const char *s, size_t n);
void dsp_arena_reset(dsp_arena *a);               /* keeps the largest block */
void dsp_arena_free(dsp_arena *a);

typedef struct {
    const char *line;   /* the JSON object, without the newline */
    size_t line_len;

    char *text;         /* decoded text field (UTF-8, NUL-terminated), or NULL */
    size_t text_len;
    int text_changed;   /* set by an operator that rewrote text */
    /* Word split of the current text in the batch arena, made by the first
     * operator that asks for it (dsp_op_doc_words in op_text.h). NULL
     * until then. Code that replaces the text must reset it to NULL, as
     * dsp_doc_set_text does. */
    struct dsp_text_words *words;

    /* Members to append to the object, already JSON-encoded, for example
     * "\"lang\":\"en\",\"lang_score\":0.98" (no leading comma). */
    char *extra;
    size_t extra_len;

    const char *source;   /* key of the input object this came from */
    uint64_t offset;      /* byte offset of the record in the (decompressed) input */
    uint64_t seq;         /* position of the record in the task's input order */
} dsp_doc;

typedef struct {
    dsp_doc *docs;
    size_t n, cap;
    dsp_arena arena;
    const char *text_field; /* name of the text member, usually "text" */
} dsp_batch;

void dsp_batch_init(dsp_batch *b, const char *text_field);
void dsp_batch_reset(dsp_batch *b);
void dsp_batch_free(dsp_batch *b);
/* Append a document whose line is copied into the arena; returns it. */
dsp_doc *dsp_batch_push(dsp_batch *b, const char *line, size_t len, const char *source,
                        uint64_t offset);
/* Append a document that points at line instead of a copy. The line is not
 * NUL-terminated, and the caller keeps it valid while the batch uses it. */
dsp_doc *dsp_batch_push_borrowed(dsp_batch *b, const char *line, size_t len,
                                 const char *source, uint64_t offset);
/* Remove documents whose keep[i] is 0, keeping order. */
void dsp_batch_compact(dsp_batch *b, const unsigned char *keep);

/*
 * Find a top-level member of a JSON object line. On success sets *val to the
 * first byte of the raw JSON value and *len to its length, and returns 1;
 * returns 0 when absent. Nested objects and strings are skipped correctly.
 */
int dsp_json_find(const char *line, size_t line_len, const char *name, const char **val,
                  size_t *len);
/*
 * dsp_json_find for a dotted path such as "metadata.url": a top-level
 * member named exactly `path` wins, else each dot-separated name selects a
 * member of the object found so far. Returns 0 when a step is missing or
 * is not an object, or when the path has an empty name ("a..b").
 */
int dsp_json_find_path(const char *line, size_t line_len, const char *path, const char **val,
                       size_t *len);
/* Count the top-level members of a JSON object line whose decoded name is
 * the name_len bytes at name. */
size_t dsp_json_count_member(const char *line, size_t line_len, const char *name,
                             size_t name_len);
/*
 * Return 0 when the lookup of dsp_json_find_path would meet a member name
 * twice: the top-level member named `path`, or when that is absent, a
 * member named by a segment in the object the walk has reached. Returns 1
 * otherwise, also when the path is missing.
 */
int dsp_json_path_is_unique(const char *line, size_t line_len, const char *path);
/* Decode a raw JSON string value (with quotes) into UTF-8, allocated in the
 * arena. Returns NULL on an invalid string (bad escape, unpaired surrogate
 * is replaced by U+FFFD instead). */
char *dsp_json_decode_string(dsp_arena *a, const char *raw, size_t raw_len, size_t *out_len);
/* dsp_json_decode_string for a value inside a line that dsp_json_validate()
 * accepts without repair, such as a repaired copy of a line. It skips the
 * UTF-8 and control-byte checks that validation already made, so it must
 * not see other input. */
char *dsp_json_decode_valid_string(dsp_arena *a, const char *raw, size_t raw_len,
                                   size_t *out_len);
/* Append s as a JSON string (with quotes) to the buffer. */
void dsp_json_encode_string(dsp_buf *out, const char *s, size_t len);

/* Add a member to the document's extra members; value_json is raw JSON. */
void dsp_doc_add_field(dsp_batch *b, dsp_doc *d, const char *name, const char *value_json);
/* Replace the document's text (copied into the arena), mark it changed and
 * drop its word split. */
void dsp_doc_set_text(dsp_batch *b, dsp_doc *d, const char *text, size_t len);
/* Serialize a document as one JSON line (no newline) into out. */
void dsp_doc_serialize(const dsp_batch *b, const dsp_doc *d, dsp_buf *out);

#endif
