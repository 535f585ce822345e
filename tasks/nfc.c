/*
 * nfc.c - the NFC-stable code point table and NFC by segments (see nfc.h).
 *
 * The table is built from utf8proc's data. A code point B is stable when
 *   - its canonical combining class is 0,
 *   - NFC maps it to itself,
 *   - it never appears after the first position of the full canonical
 *     decomposition of any code point ("marked"), and
 *   - the first code point of its own full decomposition has combining
 *     class 0 and is not marked.
 * If a composition joined a starter A and B into P, the full decomposition
 * of P would be that of A followed by that of B, because a class 0 code
 * point is never reordered. Then B, or the first code point of its
 * decomposition, would be marked. So no composition can join B to what
 * comes before it, and B starts a normalization boundary. The marked set
 * is a superset of the code points that compose backwards, so the table
 * may miss a stable code point but never lists an unstable one.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "../core/util.h"
#include "nfc.h"

#define NFC_CODE_POINTS 0x110000
#define NFC_HANGUL_FIRST 0xAC00
#define NFC_HANGUL_LAST 0xD7A3
/* Room for a full canonical decomposition: Unicode's longest have 4 code
 * points. A longer one makes the table empty (see nfc_build_table). */
#define NFC_MAX_DECOMPOSITION 16

static unsigned char nfc_stable_bits[NFC_CODE_POINTS / 8];
static pthread_once_t nfc_table_once = PTHREAD_ONCE_INIT;

static void nfc_bit_set(unsigned char *bits, uint32_t cp)
{
    bits[cp >> 3] |= (unsigned char)(1u << (cp & 7));
}

static int nfc_bit_get(const unsigned char *bits, uint32_t cp)
{
    return (bits[cp >> 3] >> (cp & 7)) & 1;
}

/* Full canonical decomposition of cp into out; returns its length, 1 with
 * out[0] == cp when cp has none, or -1 when it does not fit in out. */
static utf8proc_ssize_t nfc_decompose(uint32_t cp, utf8proc_int32_t *out)
{
    const utf8proc_property_t *prop = utf8proc_get_property((utf8proc_int32_t)cp);
    int hangul = cp >= NFC_HANGUL_FIRST && cp <= NFC_HANGUL_LAST;
    if (!hangul && (prop->decomp_seqindex == UINT16_MAX || prop->decomp_type != 0)) {
        out[0] = (utf8proc_int32_t)cp;
        return 1;
    }
    int boundclass = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)cp, out,
                                                 NFC_MAX_DECOMPOSITION, UTF8PROC_DECOMPOSE,
                                                 &boundclass);
    return n >= 1 && n <= NFC_MAX_DECOMPOSITION ? n : -1;
}

static int nfc_combining_class(utf8proc_int32_t cp)
{
    return utf8proc_get_property(cp)->combining_class;
}

/* An unexpected decomposition leaves the table empty, so that every text
 * goes through utf8proc whole: slower, never wrong. */
static void nfc_build_table(void)
{
    unsigned char *marked = dsp_xcalloc(NFC_CODE_POINTS / 8, 1);
    utf8proc_int32_t d[NFC_MAX_DECOMPOSITION];

    for (uint32_t cp = 0; cp < NFC_CODE_POINTS; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        utf8proc_ssize_t n = nfc_decompose(cp, d);
        if (n < 0)
            goto out;
        for (utf8proc_ssize_t k = 1; k < n; k++)
            nfc_bit_set(marked, (uint32_t)d[k]);
    }

    for (uint32_t cp = 0; cp < NFC_CODE_POINTS; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        if (nfc_combining_class((utf8proc_int32_t)cp) != 0 || nfc_bit_get(marked, cp))
            continue;
        utf8proc_ssize_t n = nfc_decompose(cp, d);
        if (n < 0)
            continue;
        if (n > 1 || d[0] != (utf8proc_int32_t)cp) {
            if (nfc_combining_class(d[0]) != 0 || nfc_bit_get(marked, (uint32_t)d[0]))
                continue;
            utf8proc_ssize_t m = utf8proc_normalize_utf32(d, n, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (m != 1 || d[0] != (utf8proc_int32_t)cp)
                continue;
        }
        nfc_bit_set(nfc_stable_bits, cp);
    }
out:
    free(marked);
}

const unsigned char *dsp_nfc_stable_table(void)
{
    pthread_once(&nfc_table_once, nfc_build_table);
    return nfc_stable_bits;
}

int dsp_nfc_stable(uint32_t cp)
{
    return dsp_nfc_table_has(dsp_nfc_stable_table(), cp);
}

/* Decode the UTF-8 sequence at p with the validity rules of
 * utf8proc_iterate: returns its length and sets *cp, or returns 0 when it
 * is invalid (overlong, surrogate, above U+10FFFF or truncated). */
static size_t nfc_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t avail = (size_t)(end - p);

    if (c < 0xC2 || c > 0xF4)
        return 0;
    if (c < 0xE0) {
        if (avail < 2 || (p[1] & 0xC0) != 0x80)
            return 0;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return 0;
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return 3;
    }
    if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
        return 0;
    if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
        return 0;
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
          ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    return 4;
}

/* Append utf8proc's NFC of one segment; returns 0 when utf8proc rejects it. */
static int nfc_segment(dsp_nfc_scratch *scratch, dsp_buf *out, const char *seg, size_t len)
{
    const utf8proc_option_t opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    utf8proc_ssize_t n;

    for (;;) {
        n = utf8proc_decompose((const utf8proc_uint8_t *)seg, (utf8proc_ssize_t)len,
                               scratch->codepoints, (utf8proc_ssize_t)scratch->cap, opts);
        if (n < 0)
            return 0;
        if ((size_t)n <= scratch->cap)
            break;
        free(scratch->codepoints);
        scratch->cap = (size_t)n + (size_t)n / 2 + 64;
        scratch->codepoints = dsp_xmalloc(scratch->cap * sizeof *scratch->codepoints);
    }
    utf8proc_ssize_t bytes = utf8proc_reencode(scratch->codepoints, n, opts);
    if (bytes < 0)
        return 0;
    dsp_buf_append(out, scratch->codepoints, (size_t)bytes);
    return 1;
}

/*
 * Walk the text keeping `boundary`, the start of the last stable character
 * (or of the text, or of the end of the last segment). At a character that
 * is not stable, the segment runs from `boundary` to the next stable
 * character, so it contains the starter that the run may compose with.
 * ASCII is stable (a unit test checks this), so ASCII bytes are skipped
 * without a table lookup, 8 at a time where possible.
 */
int dsp_nfc_append(dsp_nfc_scratch *scratch, dsp_buf *out, const char *text, size_t len)
{
    const unsigned char *table = dsp_nfc_stable_table();
    const unsigned char *u = (const unsigned char *)text, *end = u + len;
    size_t copied = 0, boundary = 0, i = 0;

    while (i < len) {
        if (len - i >= 8) {
            uint64_t v;
            memcpy(&v, u + i, 8);
            if ((v & 0x8080808080808080ULL) == 0) {
                boundary = i + 7;
                i += 8;
                continue;
            }
        }
        if (u[i] < 0x80) {
            boundary = i++;
            continue;
        }
        uint32_t cp = 0;
        size_t n = nfc_decode(u + i, end, &cp);
        if (n > 0 && dsp_nfc_table_has(table, cp)) {
            boundary = i;
            i += n;
            continue;
        }

        size_t j = i + (n > 0 ? n : 1);
        while (j < len) {
            if (u[j] < 0x80)
                break;
            n = nfc_decode(u + j, end, &cp);
            if (n > 0 && dsp_nfc_table_has(table, cp))
                break;
            j += n > 0 ? n : 1;
        }
        dsp_buf_append(out, text + copied, boundary - copied);
        if (!nfc_segment(scratch, out, text + boundary, j - boundary))
            return 0;
        copied = boundary = i = j;
    }
    dsp_buf_append(out, text + copied, len - copied);
    return 1;
}

void dsp_nfc_scratch_free(dsp_nfc_scratch *scratch)
{
    free(scratch->codepoints);
    scratch->codepoints = NULL;
    scratch->cap = 0;
}
