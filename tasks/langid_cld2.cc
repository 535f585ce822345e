/*
 * langid_cld2.cc - the C++ side of langid_cld2.h. It calls
 * CLD2::ExtDetectLanguageSummaryCheckUTF8 with is_plain_text = true, no
 * hints and no flags, and copies the top language and its scores out.
 * The text is passed in place, without a copy. CLD2 itself first checks
 * that the text is valid UTF-8 (the CheckUTF8 entry points do, per
 * compact_lang_det.h) and then copies and lowercases each script span (its
 * ScriptScanner). In perf on the quality pipeline these steps
 * took roughly 30% of CLD2's time (an estimate from the symbols
 * GetOneScriptSpan, UTF8GenericReplace, UTF8GenericScan and
 * OffsetMap::Copy), and the public API has no way to skip them.
 */
#include <climits>
#include <cstdio> /* compact_lang_det.h uses FILE without including it */
#include <cstring>

#include <cld2/public/compact_lang_det.h>
#include <cld2/public/encodings.h>

#include "langid_cld2.h"

/* CLD2 returns a few withdrawn ISO 639-1 codes and a script subtag for
 * Traditional Chinese; map them to the current two-letter codes. */
static const char *langid_iso_code(const char *code)
{
    static const char *const map[][2] = {
        {"iw", "he"}, {"in", "id"}, {"ji", "yi"}, {"jw", "jv"}, {"zh-Hant", "zh"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (std::strcmp(code, map[i][0]) == 0)
            return map[i][1];
    return code;
}

extern "C" int dsp_cld2_known_code(const char *code)
{
    if (!code || !code[0])
        return 0;
    if (std::strcmp(code, "un") == 0)
        return 1;
    for (int i = 0; i < CLD2::NUM_LANGUAGES; i++) {
        const char *c = CLD2::LanguageCode(static_cast<CLD2::Language>(i));
        if (c && c[0] && std::strcmp(langid_iso_code(c), code) == 0)
            return 1;
    }
    return 0;
}

extern "C" void dsp_cld2_detect(const char *text, size_t len, dsp_cld2_result *out)
{
    CLD2::CLDHints hints = {NULL, NULL, CLD2::UNKNOWN_ENCODING, CLD2::UNKNOWN_LANGUAGE};
    CLD2::Language language3[3];
    int percent3[3] = {0, 0, 0};
    double normalized_score3[3] = {0.0, 0.0, 0.0};
    int text_bytes = 0;
    bool reliable = false;
    int valid_prefix_bytes = 0;
    int n = len > (size_t)INT_MAX ? INT_MAX : (int)len;

    CLD2::Language lang = CLD2::ExtDetectLanguageSummaryCheckUTF8(
        text, n, true, &hints, 0, language3, percent3, normalized_score3, NULL, &text_bytes,
        &reliable, &valid_prefix_bytes);

    std::memset(out, 0, sizeof *out);
    const char *code = lang == CLD2::UNKNOWN_LANGUAGE ? "un" : CLD2::LanguageCode(lang);
    if (!code || !code[0])
        code = "un";
    code = langid_iso_code(code);
    std::strncpy(out->code, code, sizeof out->code - 1);
    out->percent = lang == CLD2::UNKNOWN_LANGUAGE ? 0 : percent3[0];
    out->reliable = reliable ? 1 : 0;
    out->normalized_score = normalized_score3[0];
    out->text_bytes = text_bytes;
}
