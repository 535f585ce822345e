/*
 * json_key.c - byte keys of single JSON values (see json_key.h).
 *
 * Number keys. A nonzero number is sign x 0.d1 d2 ... dn x 10^E with
 * d1 and dn not zero, which is unique for each decimal value. Its key is
 *   class byte      0x01 negative, 0x02 zero, 0x03 positive
 *   E               8 bytes big endian, sign bit flipped, so byte order is
 *                   numeric order
 *   d1 ... dn       ASCII digits
 * and for a negative number every byte after the class byte is inverted
 * and 0xFF ends the digits. Among positives with the same E a larger
 * digit string (or a longer one with the same prefix) is a larger value,
 * so memcmp order is numeric order. The inversion reverses that order
 * for negatives, and the 0xFF end byte sorts above every inverted digit
 * (0xC6 to 0xCF), so -0.12 sorts after -0.123 as it must.
 */
#include "json_key.h"

#include <stdint.h>
#include <string.h>

#include "shuffle.h"

/* Bound of the decimal exponent of a number key. Any number of digits
 * (bounded by max_record_bytes) added to it still fits an int64_t. */
#define NUMBER_MAX_EXPONENT 1000000000000000LL

#define NUMBER_CLASS_NEGATIVE 0x01
#define NUMBER_CLASS_ZERO 0x02
#define NUMBER_CLASS_POSITIVE 0x03

/* Type bytes that lead a sort key, in sort order. */
#define SORT_MISSING 0x00
#define SORT_NUMBER 0x01
#define SORT_STRING 0x02
#define SORT_OTHER 0x03

dsp_json_type dsp_json_type_of(const char *val, size_t len)
{
    if (len == 0)
        return DSP_JSON_TYPE_INVALID;
    switch (val[0]) {
    case '"':
        return DSP_JSON_TYPE_STRING;
    case '{':
        return DSP_JSON_TYPE_OBJECT;
    case '[':
        return DSP_JSON_TYPE_ARRAY;
    case 't':
    case 'f':
        return DSP_JSON_TYPE_BOOL;
    case 'n':
        return DSP_JSON_TYPE_NULL;
    default:
        if (val[0] == '-' || (val[0] >= '0' && val[0] <= '9'))
            return DSP_JSON_TYPE_NUMBER;
        return DSP_JSON_TYPE_INVALID;
    }
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t skip_digits(const char *s, size_t i, size_t len)
{
    while (i < len && is_digit(s[i]))
        i++;
    return i;
}

/* The parts of a JSON number token: [int_start, int_end) are the integer
 * digits, [frac_start, frac_end) the fraction digits (empty when there is
 * no '.'), and exponent the value after 'e', clamped. */
typedef struct {
    int negative;
    size_t int_start, int_end;
    size_t frac_start, frac_end;
    int64_t exponent;
} number_parts;

/* Parse the exponent that starts at tok[i], just after 'e' or 'E'.
 * Returns the index after it, or 0 when it has no digits. */
static size_t parse_exponent(const char *tok, size_t i, size_t len, int64_t *exponent)
{
    int negative = 0;
    if (i < len && (tok[i] == '+' || tok[i] == '-'))
        negative = tok[i++] == '-';
    size_t start = i;
    int64_t value = 0;
    for (; i < len && is_digit(tok[i]); i++)
        if (value < NUMBER_MAX_EXPONENT)
            value = value * 10 + (tok[i] - '0');
    if (i == start)
        return 0;
    if (value > NUMBER_MAX_EXPONENT)
        value = NUMBER_MAX_EXPONENT;
    *exponent = negative ? -value : value;
    return i;
}

/* Split a JSON number token into its parts. Returns 0 when tok is not
 * one. Leading zeros such as "01", which JSON forbids, are accepted. */
static int parse_number(const char *tok, size_t len, number_parts *p)
{
    memset(p, 0, sizeof *p);
    size_t i = 0;
    if (len > 0 && tok[0] == '-') {
        p->negative = 1;
        i = 1;
    }
    p->int_start = i;
    i = p->int_end = skip_digits(tok, i, len);
    if (p->int_end == p->int_start)
        return 0;
    p->frac_start = p->frac_end = i;
    if (i < len && tok[i] == '.') {
        p->frac_start = i + 1;
        i = p->frac_end = skip_digits(tok, i + 1, len);
        if (p->frac_end == p->frac_start)
            return 0;
    }
    if (i < len && (tok[i] == 'e' || tok[i] == 'E')) {
        i = parse_exponent(tok, i + 1, len, &p->exponent);
        if (i == 0)
            return 0;
    }
    return i == len;
}

int dsp_json_number_key(const char *tok, size_t len, dsp_buf *out)
{
    number_parts p;
    if (!parse_number(tok, len, &p))
        return 0;

    /* The significant digits run from the first to the last nonzero digit,
     * across the '.' when there is one. */
    size_t end = p.frac_end > p.frac_start ? p.frac_end : p.int_end;
    size_t first = p.int_start;
    while (first < end && (tok[first] == '0' || tok[first] == '.'))
        first++;
    if (first == end) {
        dsp_buf_append_char(out, NUMBER_CLASS_ZERO);
        return 1;
    }
    size_t last = end - 1;
    while (tok[last] == '0' || tok[last] == '.')
        last--;

    /* Zeros skipped before `first`, not counting the '.' between them. */
    int64_t leading_zeros = (int64_t)(first - p.int_start) - (first > p.int_end ? 1 : 0);
    int64_t e = (int64_t)(p.int_end - p.int_start) - leading_zeros + p.exponent;

    unsigned char invert = p.negative ? 0xFF : 0x00;
    unsigned char be[8];
    dsp_be64_put(be, ((uint64_t)e ^ (1ULL << 63)));
    for (size_t k = 0; k < sizeof be; k++)
        be[k] ^= invert;
    dsp_buf_append_char(out, (char)(p.negative ? NUMBER_CLASS_NEGATIVE : NUMBER_CLASS_POSITIVE));
    dsp_buf_append(out, be, sizeof be);
    for (size_t k = first; k <= last; k++)
        if (tok[k] != '.')
            dsp_buf_append_char(out, (char)((unsigned char)tok[k] ^ invert));
    if (p.negative)
        dsp_buf_append_char(out, (char)0xFF);
    return 1;
}

void dsp_json_minify(const char *val, size_t len, dsp_buf *out)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = val[i];
        if (in_string) {
            dsp_buf_append_char(out, c);
            if (c == '\\' && i + 1 < len)
                dsp_buf_append_char(out, val[++i]);
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        if (c == '"')
            in_string = 1;
        dsp_buf_append_char(out, c);
    }
}

static int token_is(const char *val, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(val, word, len) == 0;
}

dsp_json_type dsp_json_value_bytes(dsp_arena *arena, const char *val, size_t len, dsp_buf *out)
{
    dsp_json_type type = dsp_json_type_of(val, len);
    switch (type) {
    case DSP_JSON_TYPE_STRING: {
        size_t text_len;
        const char *text = dsp_json_decode_string(arena, val, len, &text_len);
        if (text) {
            dsp_buf_append(out, text, text_len);
            return type;
        }
        break;
    }
    case DSP_JSON_TYPE_NUMBER:
        if (dsp_json_number_key(val, len, out))
            return type;
        break;
    case DSP_JSON_TYPE_BOOL:
        if (token_is(val, len, "true") || token_is(val, len, "false")) {
            dsp_buf_append(out, val, len);
            return type;
        }
        break;
    case DSP_JSON_TYPE_NULL:
        if (token_is(val, len, "null"))
            return type;
        break;
    case DSP_JSON_TYPE_ARRAY:
    case DSP_JSON_TYPE_OBJECT:
        dsp_json_minify(val, len, out);
        return type;
    case DSP_JSON_TYPE_INVALID:
        break;
    }
    dsp_buf_append(out, val, len);
    return DSP_JSON_TYPE_INVALID;
}

/* Cut out to at most `len` bytes, keeping the buffer NUL-terminated. */
static void buf_truncate(dsp_buf *out, size_t len)
{
    if (out->len > len) {
        out->len = len;
        out->data[len] = '\0';
    }
}

void dsp_json_sort_key(dsp_arena *arena, const char *val, size_t len, size_t max, dsp_buf *out)
{
    if (!val || token_is(val, len, "null")) {
        dsp_buf_append_char(out, SORT_MISSING);
        return;
    }
    size_t start = out->len;
    dsp_json_type type = dsp_json_type_of(val, len);
    if (type == DSP_JSON_TYPE_NUMBER) {
        dsp_buf_append_char(out, SORT_NUMBER);
        if (dsp_json_number_key(val, len, out)) {
            buf_truncate(out, start + 1 + max);
            return;
        }
        buf_truncate(out, start);
    }
    if (type == DSP_JSON_TYPE_STRING) {
        size_t text_len;
        const char *text = dsp_json_decode_string(arena, val, len, &text_len);
        if (text) {
            dsp_buf_append_char(out, SORT_STRING);
            dsp_buf_append(out, text, text_len < max ? text_len : max);
            return;
        }
    }
    dsp_buf_append_char(out, SORT_OTHER);
    dsp_buf_append(out, val, len < max ? len : max);
}
