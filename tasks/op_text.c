/*
 * op_text.c - the helpers operators share (see op_text.h): the word split,
 * character and line counts, the occurrence counter and access to a
 * document's text and its word split. ASCII bytes are classified by a table
 * lookup or, when a whole text is split, 64 at a time with SSE2. Only lead
 * bytes that may start a Unicode space are decoded further.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../core/util.h"
#include "op_text.h"

static const unsigned char text_ascii_space[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1,
    [0x1C] = 1, [0x1D] = 1, [0x1E] = 1, [0x1F] = 1,
};

size_t dsp_text_space_len(const char *s, size_t len, size_t i)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[i];

    if (c < 0x80)
        return text_ascii_space[c];
    if (c == 0xC2 && i + 1 < len)
        return (u[i + 1] == 0x85 || u[i + 1] == 0xA0) ? 2 : 0;
    if (i + 2 >= len)
        return 0;
    unsigned char c1 = u[i + 1], c2 = u[i + 2];
    if (c == 0xE1)
        return (c1 == 0x9A && c2 == 0x80) ? 3 : 0;                 /* U+1680 */
    if (c == 0xE2 && c1 == 0x80)
        return (c2 <= 0x8A || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF) ? 3 : 0;
    if (c == 0xE2 && c1 == 0x81)
        return c2 == 0x9F ? 3 : 0;                                  /* U+205F */
    if (c == 0xE3)
        return (c1 == 0x80 && c2 == 0x80) ? 3 : 0;                 /* U+3000 */
    return 0;
}

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "text_plain_prefix assumes a little-endian target"
#endif

/*
 * Count the leading bytes of p[0..7] that are ASCII above 0x20, so cannot
 * start a space. The "has less than" bit trick can flag a byte after a
 * flagged one, but never before it, so the lowest flag is exact.
 */
static size_t text_plain_prefix(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t flags = (((v - ones * 0x21) & ~v) | v) & highs;
    return flags ? (size_t)__builtin_ctzll(flags) / 8 : 8;
}

int dsp_text_next_word(const char *s, size_t len, size_t *pos, size_t *start, size_t *wlen)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = *pos, n;

    /* ASCII bytes are classified inline; only bytes >= 0x80 may start a
     * multi-byte space and go through dsp_text_space_len. */
    while (i < len) {
        if (u[i] < 0x80) {
            if (!text_ascii_space[u[i]])
                break;
            i++;
        } else if ((n = dsp_text_space_len(s, len, i)) > 0) {
            i += n;
        } else {
            break;
        }
    }
    if (i >= len) {
        *pos = len;
        return 0;
    }
    size_t b = i;
    while (i < len) {
        if (len - i >= 8) {
            size_t plain = text_plain_prefix(u + i);
            i += plain;
            if (plain == 8)
                continue;
        }
        if (u[i] < 0x80) {
            if (text_ascii_space[u[i]])
                break;
        } else if (dsp_text_space_len(s, len, i) > 0) {
            break;
        }
        i++;
    }
    *start = b;
    *wlen = i - b;
    *pos = i;
    return 1;
}

size_t dsp_text_count_chars(const char *s, size_t len)
{
    const uint64_t highs = 0x8080808080808080ULL;
    size_t n = len, i = 0;

    /* Subtract the continuation bytes (10xxxxxx), 8 bytes at a time: shifting
     * left by one moves bit 6 of each byte under its bit 7. The multiply sums
     * the eight 0-or-1 bytes into the top byte, because without -mpopcnt
     * __builtin_popcountll is a call into libgcc. */
    for (; len - i >= 8; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        uint64_t continuation = (v & ~(v << 1) & highs) >> 7;
        n -= (size_t)((continuation * 0x0101010101010101ULL) >> 56);
    }
    for (; i < len; i++)
        n -= ((unsigned char)s[i] & 0xC0) == 0x80;
    return n;
}

size_t dsp_text_count_lines(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    size_t n = 0;
    const char *p = s, *end = s + len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return s[len - 1] == '\n' ? n : n + 1;
}

const char *dsp_op_doc_text(dsp_batch *b, dsp_doc *d, size_t *len)
{
    if (d->text) {
        *len = d->text_len;
        return d->text;
    }
    const char *field = b->text_field ? b->text_field : "text";
    const char *raw;
    size_t raw_len, out_len = 0;
    char *text = NULL;
    if (dsp_json_find(d->line, d->line_len, field, &raw, &raw_len) && raw_len >= 2 &&
        raw[0] == '"')
        text = dsp_json_decode_string(&b->arena, raw, raw_len, &out_len);
    if (!text) {
        *len = 0;
        return "";
    }
    d->text = text;
    d->text_len = out_len;
    *len = out_len;
    return text;
}

/* Bit masks of one 64-byte block: bit i describes byte i. */
typedef struct {
    uint64_t space; /* ASCII whitespace */
    uint64_t lead;  /* 0xC2, 0xE1, 0xE2 or 0xE3, which may start a Unicode space */
    uint64_t cont;  /* UTF-8 continuation byte (10xxxxxx) */
} text_block;

static void text_block_masks(const unsigned char *p, text_block *m)
{
#if defined(__SSE2__)
    /* Signed compares: bytes >= 0x80 are negative, so they fall outside
     * the ASCII ranges, and the continuation bytes 0x80..0xBF are exactly
     * those below -64 (0xC0). */
    const __m128i space = _mm_set1_epi8(' ');
    const __m128i tab_low = _mm_set1_epi8(8), tab_high = _mm_set1_epi8(14);
    const __m128i sep_low = _mm_set1_epi8(0x1B), sep_high = _mm_set1_epi8(0x20);
    const __m128i c2 = _mm_set1_epi8((char)0xC2), e1 = _mm_set1_epi8((char)0xE1);
    const __m128i e2 = _mm_set1_epi8((char)0xE2), e3 = _mm_set1_epi8((char)0xE3);
    const __m128i cont_limit = _mm_set1_epi8((char)0xC0);
    m->space = m->lead = m->cont = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i ws = _mm_cmpeq_epi8(v, space);
        ws = _mm_or_si128(ws, _mm_and_si128(_mm_cmpgt_epi8(v, tab_low), _mm_cmplt_epi8(v, tab_high)));
        ws = _mm_or_si128(ws, _mm_and_si128(_mm_cmpgt_epi8(v, sep_low), _mm_cmplt_epi8(v, sep_high)));
        __m128i lead = _mm_or_si128(_mm_cmpeq_epi8(v, c2), _mm_cmpeq_epi8(v, e1));
        lead = _mm_or_si128(lead, _mm_or_si128(_mm_cmpeq_epi8(v, e2), _mm_cmpeq_epi8(v, e3)));
        __m128i cont = _mm_cmplt_epi8(v, cont_limit);
        m->space |= (uint64_t)(unsigned)_mm_movemask_epi8(ws) << (16 * k);
        m->lead |= (uint64_t)(unsigned)_mm_movemask_epi8(lead) << (16 * k);
        m->cont |= (uint64_t)(unsigned)_mm_movemask_epi8(cont) << (16 * k);
    }
#else
    m->space = m->lead = m->cont = 0;
    for (int i = 0; i < 64; i++) {
        unsigned char c = p[i];
        uint64_t bit = (uint64_t)1 << i;
        if (c < 0x80 && text_ascii_space[c])
            m->space |= bit;
        if (c == 0xC2 || c == 0xE1 || c == 0xE2 || c == 0xE3)
            m->lead |= bit;
        if ((c & 0xC0) == 0x80)
            m->cont |= bit;
    }
#endif
}

/* Returns the number of set bits in v, without calling libgcc's popcount
 * (see dsp_text_count_chars). */
static size_t text_popcount(uint64_t v)
{
    v = v - ((v >> 1) & 0x5555555555555555ULL);
    v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (size_t)((v * 0x0101010101010101ULL) >> 56);
}

/*
 * Split text into words, the same words as dsp_text_next_word, 64 bytes at
 * a time: one mask marks the whitespace of a block, and the words start
 * and end where the mask changes. Only the bytes that may start a Unicode
 * space are decoded. A space's continuation bytes are never such a lead
 * byte, so each lead byte can be tested on its own, and a space that runs
 * past the block marks its last bytes in the next one.
 *
 * Fills out[0..max) when out is not NULL. Returns the number of words, or
 * SIZE_MAX when out is not NULL and there are more than max.
 */
static size_t text_scan_words(const char *s, size_t len, dsp_text_word *out, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char tail[64];
    size_t n = 0, word_start = 0, cont_at_start = 0, cont_before = 0;
    uint64_t in_word = 0, spill = 0;

    for (size_t base = 0; base < len; base += 64) {
        const unsigned char *p = u + base;
        size_t avail = len - base;
        if (avail < 64) {
            /* Pad the last block with spaces, which end a word at len. */
            memcpy(tail, p, avail);
            memset(tail + avail, ' ', 64 - avail);
            p = tail;
        }
        text_block m;
        text_block_masks(p, &m);
        m.space |= spill;
        spill = 0;
        while (m.lead) {
            int i = __builtin_ctzll(m.lead);
            m.lead &= m.lead - 1;
            size_t k = base + (size_t)i < len ? dsp_text_space_len(s, len, base + (size_t)i) : 0;
            if (k == 0)
                continue;
            uint64_t run = ((uint64_t)1 << k) - 1;
            m.space |= run << i;
            if ((size_t)i + k > 64)
                spill = run >> (64 - i);
        }

        uint64_t word = ~m.space;
        uint64_t after_word = (word << 1) | in_word; /* bit i: byte i - 1 is in a word */
        uint64_t starts = word & ~after_word;
        uint64_t ends = m.space & after_word;
        if (!out) {
            n += text_popcount(starts);
        } else {
            uint64_t events = starts | ends;
            while (events) {
                int i = __builtin_ctzll(events);
                uint64_t bit = (uint64_t)1 << i;
                events &= events - 1;
                size_t cont = m.cont ? cont_before + text_popcount(m.cont & (bit - 1)) : cont_before;
                if (starts & bit) {
                    word_start = base + (size_t)i;
                    cont_at_start = cont;
                    continue;
                }
                if (n == max)
                    return SIZE_MAX;
                size_t wlen = base + (size_t)i - word_start;
                out[n].start = (uint32_t)word_start;
                out[n].len = (uint32_t)wlen;
                out[n].chars = (uint32_t)(wlen - (cont - cont_at_start));
                n++;
            }
        }
        cont_before += text_popcount(m.cont);
        in_word = word >> 63;
    }
    /* No padding ended the last word when the length is a multiple of 64. */
    if (in_word && out) {
        if (n == max)
            return SIZE_MAX;
        size_t wlen = len - word_start;
        out[n].start = (uint32_t)word_start;
        out[n].len = (uint32_t)wlen;
        out[n].chars = (uint32_t)(wlen - (cont_before - cont_at_start));
        n++;
    }
    return n;
}

size_t dsp_text_count_words(const char *s, size_t len)
{
    return text_scan_words(s, len, NULL, 0);
}

const dsp_text_words *dsp_op_doc_words(dsp_batch *b, dsp_doc *d)
{
    if (d->words)
        return d->words;
    size_t len;
    const char *text = dsp_op_doc_text(b, d, &len);
    dsp_text_words *split = dsp_arena_alloc(&b->arena, sizeof *split);
    split->words = NULL;
    split->n = 0;
    split->complete = 0;

    /* Words and the spaces between them take at least 2n - 1 bytes, so a
     * short text gets an array for that bound, shrunk to the words found.
     * A text that may have more words than a split keeps is counted first,
     * so that a text of too many words takes no arena memory. */
    size_t max = len / 2 + 1;
    if (len < UINT32_MAX && max > DSP_TEXT_WORDS_MAX)
        max = text_scan_words(text, len, NULL, 0);
    if (len < UINT32_MAX && max <= DSP_TEXT_WORDS_MAX) {
        dsp_text_word *words = dsp_arena_alloc(&b->arena, (max > 0 ? max : 1) * sizeof *words);
        size_t n = text_scan_words(text, len, words, max);
        dsp_arena_shrink(&b->arena, words, n * sizeof *words);
        split->words = words;
        split->n = n;
        split->complete = 1;
    }
    d->words = split;
    return split;
}

void dsp_op_doc_words_begin(dsp_batch *b, dsp_doc *d, dsp_text_word_iter *it)
{
    const dsp_text_words *split = dsp_op_doc_words(b, d);
    it->next = it->end = NULL;
    it->text = NULL;
    it->len = it->pos = 0;
    if (split->complete) {
        if (split->n > 0) {
            it->next = split->words;
            it->end = split->words + split->n;
        }
        return;
    }
    it->text = dsp_op_doc_text(b, d, &it->len);
}

int dsp_text_word_iter_split_next(dsp_text_word_iter *it, size_t *start, size_t *len,
                                  size_t *chars)
{
    if (!dsp_text_next_word(it->text, it->len, &it->pos, start, len))
        return 0;
    *chars = dsp_text_count_chars(it->text + *start, *len);
    return 1;
}

size_t dsp_op_doc_word_count(dsp_batch *b, dsp_doc *d)
{
    if (d->words && d->words->complete)
        return d->words->n;
    size_t len;
    const char *text = dsp_op_doc_text(b, d, &len);
    return dsp_text_count_words(text, len);
}

void dsp_text_counter_reset(dsp_text_counter *t, size_t n)
{
    size_t cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    if (cap > t->cap) {
        free(t->slots);
        t->slots = dsp_xmalloc(cap * sizeof *t->slots);
        t->cap = cap;
    }
    memset(t->slots, 0, cap * sizeof *t->slots);
    t->mask = cap - 1;
}

uint32_t dsp_text_counter_add(dsp_text_counter *t, uint64_t key)
{
    if (key == 0)
        key = 1;
    size_t i = (size_t)(key ^ (key >> 29)) & t->mask;
    while (t->slots[i].key != 0 && t->slots[i].key != key)
        i = (i + 1) & t->mask;
    t->slots[i].key = key;
    return (uint32_t)++t->slots[i].count;
}

void dsp_text_counter_free(dsp_text_counter *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->mask = 0;
}
