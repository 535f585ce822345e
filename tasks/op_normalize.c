/*
 * op_normalize.c - the `normalize` operator: clean each document's text so
 * later filters and deduplication compare like with like. It removes
 * nothing. Each part can be turned off, and they run in this order:
 *
 *   bom           U+FEFF at the start of the text, a byte-order mark, is
 *                 removed, and so is a run of them. U+FEFF anywhere else is
 *                 kept, because it is a format character (Unicode category
 *                 Cf) and normalize keeps the others too (U+200B, U+200D,
 *                 U+00AD, ...)
 *   fix_utf8      an invalid UTF-8 sequence becomes U+FFFD (one per
 *                 invalid byte, or one per truncated multi-byte sequence)
 *   line_endings  CRLF and a lone CR become LF
 *   drop_control  C0 controls other than \n and \t, DEL and the C1 controls
 *                 U+0080-U+009F are removed
 *   whitespace    a run of spaces and tabs becomes one space, and spaces at
 *                 the end of a line are removed
 *   trim          whitespace at the start and end of the text is removed
 *   nfc           Unicode Normalization Form C (utf8proc). Only runs of
 *                 characters that NFC may change go through utf8proc, with
 *                 the character before them (see nfc.h), and text made only
 *                 of NFC-stable characters, such as ASCII, is left as is
 *
 * The readers hand steps valid UTF-8. The JSONL reader and WET conversion
 * records replace invalid bytes with U+FFFD and count those documents in
 * the job's records_utf8_repaired. HTML goes through gumbo, which replaces
 * them without a count. So fix_utf8 and the invalid_utf8 counter see only
 * text that an earlier step made invalid.
 *
 * Memory: the work buffers live in the operator state and grow to the
 * largest document, so nothing is allocated per record after warm-up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../core/buf.h"
#include "nfc.h"
#include "op.h"
#include "op_text.h"

typedef struct {
    int bom, fix_utf8, line_endings, drop_control, whitespace, trim, nfc;
    const unsigned char *nfc_stable; /* dsp_nfc_stable_table() */
    dsp_buf out;
    dsp_buf nfc_out;                 /* NFC of out, swapped into out */
    dsp_nfc_scratch nfc_scratch;
} normalize_state;

enum { NORM_CHANGED, NORM_INVALID_UTF8, NORM_CONTROL_DROPPED, NORM_NFC_FAILED };

static const dsp_op_option normalize_options[] = {
    {"bom", DSP_OPT_BOOL, "true",
     "remove U+FEFF (byte-order mark) at the start of the text; U+FEFF elsewhere is kept", 0, 0},
    {"fix_utf8", DSP_OPT_BOOL, "true", "replace invalid UTF-8 sequences with U+FFFD", 0, 0},
    {"line_endings", DSP_OPT_BOOL, "true", "turn CRLF and CR into LF", 0, 0},
    {"drop_control", DSP_OPT_BOOL, "true",
     "remove control characters other than newline and tab", 0, 0},
    {"whitespace", DSP_OPT_BOOL, "true",
     "collapse runs of spaces and tabs to one space and strip spaces at line ends", 0, 0},
    {"trim", DSP_OPT_BOOL, "true", "remove whitespace at the start and end of the text", 0, 0},
    {"nfc", DSP_OPT_BOOL, "true", "apply Unicode Normalization Form C", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const normalize_reasons[] = {NULL};
static const char *const normalize_extra[] = {"changed", "invalid_utf8", "control_dropped",
                                              "nfc_failed", NULL};

extern const dsp_op_def dsp_op_normalize_def;

static dsp_status normalize_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                                   dsp_err *err)
{
    (void)ctx;
    normalize_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    s->bom = dsp_op_opt_bool(options, &dsp_op_normalize_def, "bom");
    s->fix_utf8 = dsp_op_opt_bool(options, &dsp_op_normalize_def, "fix_utf8");
    s->line_endings = dsp_op_opt_bool(options, &dsp_op_normalize_def, "line_endings");
    s->drop_control = dsp_op_opt_bool(options, &dsp_op_normalize_def, "drop_control");
    s->whitespace = dsp_op_opt_bool(options, &dsp_op_normalize_def, "whitespace");
    s->trim = dsp_op_opt_bool(options, &dsp_op_normalize_def, "trim");
    s->nfc = dsp_op_opt_bool(options, &dsp_op_normalize_def, "nfc");
    s->nfc_stable = dsp_nfc_stable_table();
    *state = s;
    return DSP_OK;
}

/* Number of bytes of the U+FEFF characters (EF BB BF each) that text
 * starts with. */
static size_t normalize_bom_len(const char *text, size_t len)
{
    size_t n = 0;
    while (len - n >= 3 && memcmp(text + n, "\xEF\xBB\xBF", 3) == 0)
        n += 3;
    return n;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t normalize_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        n = 2;
    else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Number of bytes of an invalid sequence to replace by one U+FFFD: a lead
 * byte and the continuation bytes that follow it, or 1. */
static size_t normalize_invalid_len(const unsigned char *p, const unsigned char *end)
{
    size_t n = 1;
    if (p[0] >= 0xC2 && p[0] < 0xF5)
        while (p + n < end && n < 4 && (p[n] & 0xC0) == 0x80 && normalize_utf8_len(p + n, end) == 0)
            n++;
    return n;
}

static uint32_t normalize_decode(const unsigned char *p, size_t n)
{
    if (n == 2)
        return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    if (n == 3)
        return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
           ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "normalize_plain_prefix assumes a little-endian target"
#endif

/*
 * Count the leading bytes of p[0..7] that are printable ASCII other than
 * space (0x21-0x7E). The borrow of the subtraction and the carry of the
 * addition only reach bytes after a flagged one, so the lowest flag is exact.
 */
static size_t normalize_plain_prefix(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t below = (v - ones * 0x21) & ~v; /* bytes below 0x21 */
    uint64_t above = v + ones;                /* bytes 0x7F and up */
    uint64_t flags = (below | above | v) & highs;
    return flags ? (size_t)__builtin_ctzll(flags) / 8 : 8;
}

static int normalize_is_printable(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7F;
}

#if defined(__SSE2__)
/*
 * Bit i is set when p[i] ends a run (see normalize_ascii_run): a byte other
 * than printable ASCII, newline and space, or a space that printable ASCII
 * does not follow. `next` is the byte after the block.
 */
static uint64_t normalize_run_breaks(const unsigned char *p, unsigned char next)
{
    /* Signed compares: bytes >= 0x80 are negative, so not above 0x20. */
    const __m128i low = _mm_set1_epi8(0x20), high = _mm_set1_epi8(0x7F);
    const __m128i newline = _mm_set1_epi8('\n'), space = _mm_set1_epi8(' ');
    uint64_t printable = 0, newlines = 0, spaces = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i in_range = _mm_and_si128(_mm_cmpgt_epi8(v, low), _mm_cmplt_epi8(v, high));
        printable |= (uint64_t)(unsigned)_mm_movemask_epi8(in_range) << (16 * k);
        newlines |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, newline)) << (16 * k);
        spaces |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, space)) << (16 * k);
    }
    /* Bit i: byte i + 1 is printable. */
    uint64_t next_printable = (printable >> 1) | ((uint64_t)normalize_is_printable(next) << 63);
    return ~(printable | newlines | (spaces & next_printable));
}
#endif

/* Find the end of the run starting at p of printable ASCII, newlines, and
 * single spaces followed by printable ASCII. */
static const unsigned char *normalize_ascii_run(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
    /* 65 bytes so that the byte after each block can be read. */
    while (end - p >= 65) {
        uint64_t breaks = normalize_run_breaks(p, p[64]);
        if (breaks)
            return p + __builtin_ctzll(breaks);
        p += 64;
    }
#endif
    for (;;) {
        while (end - p >= 8) {
            size_t plain = normalize_plain_prefix(p);
            p += plain;
            if (plain < 8)
                break;
        }
        if (p == end)
            return p;
        if (normalize_is_printable(*p) || *p == '\n')
            p++;
        else if (*p == ' ' && end - p >= 2 && normalize_is_printable(p[1]))
            p += 2;
        else
            return p;
    }
}

/*
 * Measure the longest prefix of text that every part leaves as it is. It
 * contains printable ASCII, newlines, single spaces before printable ASCII,
 * and valid UTF-8 that is not a C1 control and, with nfc on, is NFC-stable.
 * Any other byte ends the prefix, so the result may be shorter than
 * possible but never too long. No space is pending after the prefix, so
 * normalize_clean can copy it as is and start there.
 */
static size_t normalize_stable_prefix(const normalize_state *s, const char *text, size_t len)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t i = 0;

    if (s->trim && len > 0 && (u[0] == ' ' || u[0] == '\t' || u[0] == '\n' || u[0] == '\r'))
        return 0;
    if (s->bom && normalize_bom_len(text, len) > 0)
        return 0;
    while (i < len) {
        unsigned char ch = u[i];
        if (normalize_is_printable(ch) || ch == '\n') {
            i = (size_t)(normalize_ascii_run(u + i + 1, u + len) - u);
            continue;
        }
        if (ch == ' ') {
            if (s->whitespace && !(i + 1 < len && normalize_is_printable(u[i + 1])))
                break;
            i++;
            continue;
        }
        if (ch < 0x80)
            break; /* tab, CR, other controls and DEL may change */
        size_t n = normalize_utf8_len(u + i, u + len);
        if (n == 0 || (n == 2 && ch == 0xC2 && u[i + 1] < 0xA0 && s->drop_control))
            break;
        if (s->nfc && !dsp_nfc_table_has(s->nfc_stable, normalize_decode(u + i, n)))
            break;
        i += n;
    }
    return i;
}

/* Run every part except NFC from text into s->out, starting at byte
 * `start`: text[0..start) must be a stable prefix (normalize_stable_prefix)
 * and is copied as is. Sets *needs_nfc when a character outside the
 * NFC-stable ranges was copied. */
static void normalize_clean(normalize_state *s, const char *text, size_t len, size_t start,
                            dsp_op_counters *c, int *needs_nfc)
{
    const unsigned char *p = (const unsigned char *)text + start, *end = (const unsigned char *)text + len;
    dsp_buf *o = &s->out;
    int pending_space = 0;

    /* Each input byte yields at most 3 output bytes (an invalid byte becomes
     * U+FFFD), so one reservation covers the whole loop. */
    dsp_buf_reset(o);
    dsp_buf_reserve(o, 3 * (len - start) + start + 16);
    memcpy(o->data, text, start);
    o->len = start;
    *needs_nfc = 0;
    if (s->bom && start == 0)
        p += normalize_bom_len(text, len);
    while (p < end) {
        unsigned char ch = *p;

        /* Fast path: copy a run of printable ASCII, newlines and single
         * spaces before printable ASCII, which every part leaves as is. */
        if (ch > 0x20 && ch < 0x7F) {
            const unsigned char *q = normalize_ascii_run(p + 1, end);
            if (pending_space)
                o->data[o->len++] = ' ';
            pending_space = 0;
            memcpy(o->data + o->len, p, (size_t)(q - p));
            o->len += (size_t)(q - p);
            p = q;
            continue;
        }

        if (ch >= 0x80) {
            size_t n = normalize_utf8_len(p, end);
            if (n == 0) {
                if (s->fix_utf8) {
                    n = normalize_invalid_len(p, end);
                    c->extra[NORM_INVALID_UTF8]++;
                    if (pending_space)
                        o->data[o->len++] = ' ';
                    pending_space = 0;
                    memcpy(o->data + o->len, "\xEF\xBF\xBD", 3);
                    o->len += 3;
                    p += n;
                    continue;
                }
                n = 1;
            } else if (n == 2 && ch == 0xC2 && p[1] < 0xA0 && s->drop_control) {
                c->extra[NORM_CONTROL_DROPPED]++; /* C1 control U+0080..U+009F */
                p += 2;
                continue;
            }
            if (pending_space)
                o->data[o->len++] = ' ';
            pending_space = 0;
            memcpy(o->data + o->len, p, n);
            o->len += n;
            if (!*needs_nfc &&
                (n == 1 || !dsp_nfc_table_has(s->nfc_stable, normalize_decode(p, n))))
                *needs_nfc = 1; /* n == 1 here is an invalid byte kept as is */
            p += n;
            continue;
        }

        if (ch == '\r' && s->line_endings) {
            ch = '\n';
            if (p + 1 < end && p[1] == '\n')
                p++;
        }
        if (ch == '\n') {
            pending_space = 0;
            o->data[o->len++] = '\n';
            p++;
            continue;
        }
        if ((ch == ' ' || ch == '\t') && s->whitespace) {
            pending_space = 1;
            p++;
            continue;
        }
        if (ch != '\t' && ch != ' ' && (ch < 0x20 || ch == 0x7F) && s->drop_control &&
            !(ch == '\r' && !s->line_endings)) {
            c->extra[NORM_CONTROL_DROPPED]++;
            p++;
            continue;
        }
        if (pending_space)
            o->data[o->len++] = ' ';
        pending_space = 0;
        o->data[o->len++] = (char)ch;
        p++;
    }
    /* A space still pending at the end trails the last line and is dropped. */

    if (s->trim) {
        size_t b = 0, e = o->len;
        while (b < e && (o->data[b] == ' ' || o->data[b] == '\t' || o->data[b] == '\n' ||
                         o->data[b] == '\r'))
            b++;
        while (e > b && (o->data[e - 1] == ' ' || o->data[e - 1] == '\t' ||
                         o->data[e - 1] == '\n' || o->data[e - 1] == '\r'))
            e--;
        memmove(o->data, o->data + b, e - b);
        o->len = e - b;
    }
    o->data[o->len] = '\0';
}

/* Replace s->out with its NFC. Returns 0 and leaves s->out as it was when
 * utf8proc rejects the text (only possible with fix_utf8 off). */
static int normalize_nfc(normalize_state *s)
{
    dsp_buf_reset(&s->nfc_out);
    dsp_buf_reserve(&s->nfc_out, s->out.len);
    if (!dsp_nfc_append(&s->nfc_scratch, &s->nfc_out, s->out.data, s->out.len))
        return 0;
    dsp_buf swap = s->out;
    s->out = s->nfc_out;
    s->nfc_out = swap;
    return 1;
}

static dsp_status normalize_process(void *state, dsp_batch *b, unsigned char *keep,
                                    dsp_op_counters *c, dsp_err *err)
{
    (void)err;
    normalize_state *s = state;

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        dsp_doc *d = &b->docs[i];
        size_t len;
        const char *text = dsp_op_doc_text(b, d, &len);
        int needs_nfc;

        /* Text that is already normal is left in place without a copy.
         * Trim removes a trailing newline, or a trailing space kept with
         * whitespace off, so such text needs the full pass. */
        size_t stable = normalize_stable_prefix(s, text, len);
        if (stable == len &&
            !(s->trim && len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')))
            continue;
        normalize_clean(s, text, len, stable, c, &needs_nfc);
        if (s->nfc && needs_nfc && !normalize_nfc(s))
            c->extra[NORM_NFC_FAILED]++;
        if (s->out.len != len || memcmp(s->out.data, text, len) != 0) {
            dsp_doc_set_text(b, d, s->out.data, s->out.len);
            c->extra[NORM_CHANGED]++;
        }
    }
    return DSP_OK;
}

static void normalize_destroy(void *state)
{
    normalize_state *s = state;
    dsp_buf_free(&s->out);
    dsp_buf_free(&s->nfc_out);
    dsp_nfc_scratch_free(&s->nfc_scratch);
    free(s);
}

const dsp_op_def dsp_op_normalize_def = {
    .name = "normalize",
    .summary = "fix UTF-8, drop control characters, normalize whitespace and line endings, NFC",
    .wide = 0,
    .options = normalize_options,
    .reasons = normalize_reasons,
    .extra_names = normalize_extra,
    .create = normalize_create,
    .process = normalize_process,
    .finish = NULL,
    .destroy = normalize_destroy,
};
