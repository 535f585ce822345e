/*
 * langid_cld2.h - a C interface to CLD2, Google's Compact Language
 * Detector 2 (Debian package libcld2-dev), for the `langid` operator.
 */
#ifndef DSP_LANGID_CLD2_H
#define DSP_LANGID_CLD2_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char code[16];      /* ISO 639-1 code where one exists ("en", "he", "zh"), else
                           CLD2's code; "un" when unknown */
    int percent;        /* share of the scored text bytes in that language, 0..100 */
    int reliable;       /* CLD2's is_reliable flag */
    double normalized_score; /* CLD2's score relative to typical text; near 1.0 is normal */
    int text_bytes;     /* letter bytes CLD2 scored */
} dsp_cld2_result;

/* Detect the main language of plain UTF-8 text. Texts longer than INT_MAX
 * bytes are cut to their first INT_MAX bytes. Never fails: for invalid UTF-8
 * CLD2 returns UNKNOWN_LANGUAGE, reported as "un" with percent 0. */
void dsp_cld2_detect(const char *text, size_t len, dsp_cld2_result *out);

/* Return 1 when `code` is a language code that dsp_cld2_detect can report
 * (after the same ISO 639-1 mapping, so "he", not "iw"), else 0. */
int dsp_cld2_known_code(const char *code);

#ifdef __cplusplus
}
#endif

#endif
