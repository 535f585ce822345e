/*
 * json_key.h - byte keys of single JSON values, for the wide operators that
 * compare one member of each document: dedup_exact with "field" (equality)
 * and repartition with "by": "sort" (order).
 *
 * Every function takes one raw JSON value as dsp_json_find_path returns it
 * and never builds a tree, so numbers keep every digit of their text.
 */
#ifndef DSP_JSON_KEY_H
#define DSP_JSON_KEY_H

#include <stddef.h>

#include "../core/buf.h"
#include "doc.h"

/* JSON type of a raw value, determined by its first byte. */
typedef enum {
    DSP_JSON_TYPE_INVALID = 0, /* empty, or a first byte that starts no JSON value */
    DSP_JSON_TYPE_NULL,
    DSP_JSON_TYPE_BOOL,
    DSP_JSON_TYPE_NUMBER,
    DSP_JSON_TYPE_STRING,
    DSP_JSON_TYPE_ARRAY,
    DSP_JSON_TYPE_OBJECT,
} dsp_json_type;

dsp_json_type dsp_json_type_of(const char *val, size_t len);

/*
 * Append an exact, order-preserving key of the JSON number `tok` to out.
 * Comparing two keys with memcmp, where a key that is a prefix of the other
 * sorts first, gives the numeric order of the decimal values. Two keys are
 * equal exactly when the values are, so 1, 1.0, 1e0 and 0.1e1 share a key,
 * -0 equals 0, and integers of any length compare exactly.
 * Returns 0 and appends nothing when tok is not a JSON number.
 * NOTE: decimal exponents beyond +-10^15 are clamped to that bound, so two
 * such numbers that differ only beyond it get the same key.
 */
int dsp_json_number_key(const char *tok, size_t len, dsp_buf *out);

/* Append the JSON text of a value with the whitespace between tokens
 * removed. Strings, including their escapes, are copied unchanged. */
void dsp_json_minify(const char *val, size_t len, dsp_buf *out);

/*
 * Append the bytes that identify a value within its type and return the
 * type: a string's decoded UTF-8, a number's dsp_json_number_key, "true" or
 * "false", and an array's or object's dsp_json_minify text. Strings are
 * decoded into the arena. A value that does not parse as its type (never
 * the case on a validated line) appends its raw text and returns
 * DSP_JSON_TYPE_INVALID.
 */
dsp_json_type dsp_json_value_bytes(dsp_arena *arena, const char *val, size_t len, dsp_buf *out);

/*
 * Append the sort key of a member value to out, val NULL when the member is
 * missing. Byte order of keys is the sort order: missing and null (0x00),
 * then numbers by value (0x01 and the dsp_json_number_key), then strings by
 * their decoded UTF-8 bytes (0x02), then any other value by its raw JSON
 * text (0x03). At most max bytes follow the type byte.
 */
void dsp_json_sort_key(dsp_arena *arena, const char *val, size_t len, size_t max, dsp_buf *out);

#endif
