/*
 * op_text.h - text helpers shared by the operators: one definition of a
 * word, the word split that a document keeps for all operators, counts of
 * characters and lines, and a reusable occurrence counter.
 *
 * A word is a maximal run of characters that are not whitespace, the same
 * split as Python's str.split() with no argument. Whitespace is ASCII \t \n \v \f \r, space, 0x1C-0x1F,
 * and the Unicode spaces U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
 * U+2029, U+202F, U+205F and U+3000. Text without spaces between words
 * (Chinese, Japanese, Thai) therefore counts one word per run.
 */
#ifndef DSP_OP_TEXT_H
#define DSP_OP_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "doc.h"

/* Length in bytes of the whitespace character at s[i], or 0 when s[i] does
 * not start one. */
size_t dsp_text_space_len(const char *s, size_t len, size_t i);

/* Find the next word at or after *pos. Returns 1 and sets *start, *wlen and
 * *pos (past the word), or returns 0 when no word is left. */
int dsp_text_next_word(const char *s, size_t len, size_t *pos, size_t *start, size_t *wlen);

size_t dsp_text_count_words(const char *s, size_t len);

/* Unicode code points in valid UTF-8 (bytes that are not continuation
 * bytes, so invalid input gives an estimate). */
size_t dsp_text_count_chars(const char *s, size_t len);

/* Lines separated by \n; a trailing \n does not start a new line, and empty
 * text has 0 lines. */
size_t dsp_text_count_lines(const char *s, size_t len);

/*
 * Occurrence counts of 64-bit keys (hashes of lines, paragraphs or n-grams)
 * in an open-addressing table that is reused across documents. Key 0 is
 * stored as 1.
 */
typedef struct {
    uint64_t key; /* 0 = empty slot */
    uint64_t count;
} dsp_text_counter_slot;

typedef struct {
    dsp_text_counter_slot *slots;
    size_t cap, mask;
} dsp_text_counter;

/* Empty the table and size it for up to n distinct keys. Only the part in
 * use is cleared, so a small document after a large one stays cheap. */
void dsp_text_counter_reset(dsp_text_counter *t, size_t n);
/* Count one occurrence of key and return its count so far. */
uint32_t dsp_text_counter_add(dsp_text_counter *t, uint64_t key);
void dsp_text_counter_free(dsp_text_counter *t);

/* One word of a text: byte offset, length in bytes and in code points. */
typedef struct {
    uint32_t start, len, chars;
} dsp_text_word;

/*
 * The word split of one version of a document's text, shared by the
 * operators that read words (gopher_quality, gopher_repetition, c4_quality,
 * fineweb_quality, stats, length) so that the text is split once.
 * `complete` is 0 when the text has more than DSP_TEXT_WORDS_MAX words or
 * 4 GiB or more, and then `words` is empty.
 */
typedef struct dsp_text_words {
    const dsp_text_word *words;
    size_t n;
    int complete;
} dsp_text_words;

/* Words kept per document: 12 bytes each, so at most 12 MB of the batch
 * arena for one document. */
#define DSP_TEXT_WORDS_MAX 1000000

/* Returns the document's word split, made in the batch arena on the first
 * call after the text was set (see dsp_doc.words). */
const dsp_text_words *dsp_op_doc_words(dsp_batch *b, dsp_doc *d);

/* Iterator over the words of a document's text. It reads the word split
 * when that is complete and splits the text as it goes otherwise. */
typedef struct {
    const dsp_text_word *next, *end; /* remaining words of a complete split */
    const char *text;                /* the text, when splitting as it goes */
    size_t len, pos;
} dsp_text_word_iter;

void dsp_op_doc_words_begin(dsp_batch *b, dsp_doc *d, dsp_text_word_iter *it);
int dsp_text_word_iter_split_next(dsp_text_word_iter *it, size_t *start, size_t *len,
                                  size_t *chars);

/* Set the next word's byte offset, byte length and length in code points,
 * and return 1, or return 0 after the last word. */
static inline int dsp_text_word_iter_next(dsp_text_word_iter *it, size_t *start, size_t *len,
                                          size_t *chars)
{
    if (it->text)
        return dsp_text_word_iter_split_next(it, start, len, chars);
    if (it->next == it->end)
        return 0;
    *start = it->next->start;
    *len = it->next->len;
    *chars = it->next->chars;
    it->next++;
    return 1;
}

/* Number of words of the document's text, from its word split when it has
 * one, else counted without storing a split. */
size_t dsp_op_doc_word_count(dsp_batch *b, dsp_doc *d);

/* The document's text: d->text when the pipeline already decoded it, else
 * the batch's text member located in the line and decoded into the arena
 * (and stored in d->text). A missing or non-string member, or one that does
 * not decode, gives "" with length 0. */
const char *dsp_op_doc_text(dsp_batch *b, dsp_doc *d, size_t *len);

#endif
