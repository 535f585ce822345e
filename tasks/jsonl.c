/*
 * jsonl.c - the JSON Lines reader: newline framing, byte ranges, record
 * validation and rejects.
 *
 * Lines are found with memchr in one read buffer that is reused for the
 * whole input. A record is copied once, into the batch arena, or not at
 * all with borrow_lines, so nothing is allocated per record. Validation
 * reads each line once and finds the text member on the way. The buffer
 * grows only while a single record is longer than it, and never past
 * max_record_bytes + 1. A longer record is rejected and its remaining
 * bytes are discarded as they arrive.
 *
 * For a byte range [offset, end) of a plain object the reader starts at
 * offset - 1. When that byte is a newline, the range starts on a record.
 * Otherwise the bytes up to the first newline belong to the previous range.
 * Records that start before `end` are read to their newline, past `end`
 * through a second store reader when needed.
 */
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../core/log.h"
#include "../core/util.h"
#include "decompress.h"
#include "jsonl.h"

#define JSON_MAX_DEPTH 512
#define REJECT_PREFIX_BYTES 256

/* Tail windows: a record that crosses the range end is usually about as
 * long as the records before it. So the first window past the end fits two
 * records of the range's average length: at least TAIL_MIN_WINDOW, or
 * TAIL_FALLBACK_WINDOW when the range has no whole record. Each next window
 * doubles, up to read_size. Reading the tail with the full read_size
 * would fetch, and count in bytes_in, megabytes per range for a record of a
 * few kilobytes. */
#define TAIL_MIN_WINDOW (4u << 10)
#define TAIL_FALLBACK_WINDOW (64u << 10)

struct dsp_jsonl_reader {
    dsp_store *store;
    char *key;           /* key within the store, for reads */
    char *uri;           /* store root + key, for messages and rejects */
    uint64_t range_end;   /* UINT64_MAX when reading to the end */
    int ranged;
    int64_t max_record;
    size_t read_size;
    dsp_reject_fn reject;
    void *reject_ctx;
    int skip_text_decode;
    int borrow_lines;
    int check_version;       /* the object must still be the version in `expect` */
    dsp_obj_info expect;
    int trusted;             /* lines were validated by an earlier pass */

    /* Names for unique_check: slot 0 is the batch's text field, filled in
     * by take_record, then the top-level names from opts->unique_fields
     * and the first segment of each dotted path. */
    const char *unique_names[DSP_JSONL_MAX_UNIQUE];
    size_t unique_lens[DSP_JSONL_MAX_UNIQUE];
    size_t nunique;
    char **unique_paths;     /* dotted paths, checked level by level */
    size_t npaths;
    char **unique_owned;     /* the copies in unique_names and unique_paths */
    size_t nowned;

    dsp_reader *src;
    dsp_store *data_store; /* where the bytes come from: opts->data_store or store */
    char *data_key;
    void (*tee)(void *ctx, const char *data, size_t len);
    void *tee_ctx;
    dsp_reader *tail_src; /* window past range_end, opened on demand */
    uint64_t tail_next;   /* object offset where the next tail window starts */
    size_t tail_window;   /* length of the next tail window; 0 before the first */
    uint64_t range_start; /* object offset where this reader started */
    dsp_dstream *stream;
    int stream_eof;

    char *buf;
    size_t cap, start, len, scan; /* unread bytes are buf[start, len) */
    uint64_t buf_offset;          /* input offset of buf[0] */

    int skip_leading;             /* discarding the previous range's partial record */
    int skipping;                 /* discarding the rest of an oversized record */
    int done;

    dsp_buf scratch;              /* repaired copy of a record with bad UTF-8 */
    dsp_jsonl_stats stats;
};

/* ---- validation ---- */

static size_t utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t avail = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
            return 0; /* overlong form or UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
            return 0; /* overlong form or above U+10FFFF */
        return 4;
    }
    return 0;
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Whether e may follow a backslash as a one-character JSON escape. */
static int is_simple_escape(unsigned char e)
{
    switch (e) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return 1;
    default:
        return 0;
    }
}

static unsigned hex4(const unsigned char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Length of the \uXXXX escape at q, whose four hex digits are checked:
 * 6, or 12 for a high surrogate escape followed by a low one. Returns 0
 * for a lone surrogate (a high one without its low one, or a low one
 * alone), which stands for no character and is repaired to U+FFFD. */
static size_t unicode_escape_len(const unsigned char *q, const unsigned char *end)
{
    unsigned cp = hex4(q + 2);
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return 0;
    if (cp < 0xD800 || cp > 0xDBFF)
        return 6;
    if (end - q < 12 || q[6] != '\\' || q[7] != 'u' || !is_hex(q[8]) || !is_hex(q[9]) ||
        !is_hex(q[10]) || !is_hex(q[11]))
        return 0;
    unsigned lo = hex4(q + 8);
    return lo >= 0xDC00 && lo <= 0xDFFF ? 12 : 0;
}

/* Bit i is set when p[i] is a special byte for a JSON string, for i < 64:
 * a quote, a backslash, a control byte (< 0x20) or a non-ASCII byte
 * (>= 0x80). Every other byte stands for itself. */
static uint64_t special_mask64(const unsigned char *p)
{
    uint64_t mask = 0;
#if defined(__SSE2__)
    /* A signed compare with 0x20 flags the control bytes and, because they
     * are negative as signed bytes, every byte >= 0x80 as well. */
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
        special = _mm_or_si128(special, _mm_cmplt_epi8(v, space));
        mask |= (uint64_t)(unsigned)_mm_movemask_epi8(special) << (16 * k);
    }
#else
    for (int i = 0; i < 64; i++) {
        unsigned char c = p[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            mask |= (uint64_t)1 << i;
    }
#endif
    return mask;
}

/*
 * Scan a string starting at its opening quote. Returns the result code and
 * leaves *pp after the closing quote.
 *
 * The string is read in windows of 64 bytes. One mask per window marks its
 * special bytes (see special_mask64), and only those are looked at, in
 * order. Bits of bytes that an escape or a UTF-8 sequence already consumed
 * are skipped. The last window of the line is copied into a buffer padded
 * with plain bytes, so no load reads past `end`.
 */
static int scan_string(const unsigned char **pp, const unsigned char *end, int is_name,
                       int *needs_repair)
{
    const unsigned char *p = *pp + 1;
    unsigned char tail[64];
    while (p < end) {
        const unsigned char *window = p;
        size_t avail = (size_t)(end - p);
        const unsigned char *window_end = avail >= 64 ? p + 64 : end;
        uint64_t mask;
        if (avail >= 64) {
            mask = special_mask64(p);
        } else {
            memcpy(tail, p, avail);
            memset(tail + avail, 'a', sizeof tail - avail);
            mask = special_mask64(tail);
        }
        for (; mask; mask &= mask - 1) {
            const unsigned char *q = window + __builtin_ctzll(mask);
            if (q < p)
                continue; /* inside an escape or UTF-8 sequence handled before */
            unsigned char c = *q;
            if (c == '"') {
                *pp = q + 1;
                return DSP_JSON_VALID;
            }
            if (c < 0x20)
                return DSP_JSON_INVALID; /* raw control byte, NUL included */
            if (c == '\\') {
                if (q + 1 >= end)
                    return DSP_JSON_INVALID;
                unsigned char e = q[1];
                if (e == 'u') {
                    if (end - q < 6 || !is_hex(q[2]) || !is_hex(q[3]) || !is_hex(q[4]) ||
                        !is_hex(q[5]))
                        return DSP_JSON_INVALID;
                    size_t n = unicode_escape_len(q, end);
                    if (n == 0) {
                        *needs_repair = 1; /* a lone surrogate */
                        n = 6;
                    }
                    p = q + n;
                } else if (is_simple_escape(e)) {
                    p = q + 2;
                } else {
                    return DSP_JSON_INVALID;
                }
                continue;
            }
            size_t n = utf8_seq_len(q, end);
            if (n == 0) {
                if (is_name)
                    return DSP_JSON_INVALID_NAME_UTF8;
                *needs_repair = 1;
                n = 1;
            }
            p = q + n;
        }
        if (p < window_end)
            p = window_end; /* the rest of the window is plain */
    }
    return DSP_JSON_INVALID; /* no closing quote */
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int scan_number(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return DSP_JSON_INVALID;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return DSP_JSON_INVALID;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return DSP_JSON_INVALID;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return DSP_JSON_INVALID;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    *pp = p;
    return DSP_JSON_VALID;
}

static int scan_literal(const unsigned char **pp, const unsigned char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - *pp) < n || memcmp(*pp, word, n) != 0)
        return DSP_JSON_INVALID;
    *pp += n;
    return DSP_JSON_VALID;
}

/* Outcome of the member search that json_validate_find does on the side. */
typedef enum {
    FIND_MISSING = 0, /* no top-level member has that name */
    FIND_FOUND,       /* *val and *val_len are set */
    FIND_UNKNOWN,     /* a name with escapes came first: ask dsp_json_find */
} find_result;

/*
 * Top-level member names that a record may contain at most once, because
 * the job reads them: names[0] is the text member. json_validate_find
 * compares each top-level name without escapes with every entry, and sets
 * `duplicate` to the index of the first name seen twice. A name with
 * escapes is only flagged in `escaped_name`, and the caller compares the
 * names again with dsp_json_count_member.
 */
typedef struct {
    const char *const *names;
    const size_t *lens;
    size_t n;
    unsigned char seen[DSP_JSONL_MAX_UNIQUE];
    int duplicate;    /* index into names, or -1 */
    int escaped_name; /* a top-level name contains a backslash escape */
} unique_check;

/*
 * Validate like dsp_json_validate and, when uc is not NULL, locate the
 * first top-level member called uc->names[0] in the same pass. *val and
 * *val_len get the raw value, quotes included, when it is a string. For
 * any other value *val points at its first byte and *val_len is 1. Member
 * names with escapes are compared only by dsp_json_find, so one of those
 * before the match makes the result FIND_UNKNOWN. Duplicate names go to
 * uc as described at unique_check.
 */
static int json_validate_find(const char *line, size_t len, int *needs_repair, unique_check *uc,
                              const char **val, size_t *val_len, find_result *found)
{
    const unsigned char *p = (const unsigned char *)line;
    const unsigned char *end = p + len;
    char stack[JSON_MAX_DEPTH];
    int depth = 0;
    int rc;
    int capture = 0; /* the next value belongs to the member searched for */
    int top_object;  /* the line's value is an object, not an array or scalar */
    *needs_repair = 0;
    *found = FIND_MISSING;

    p = skip_ws(p, end);
    if (p >= end)
        return DSP_JSON_INVALID;
    /* Another value is still validated in full, so that a valid [1,2] is
     * distinguished from invalid JSON. */
    top_object = *p == '{';

value:
    p = skip_ws(p, end);
    if (p >= end)
        return DSP_JSON_INVALID;
    if (capture) {
        capture = 0;
        *found = FIND_FOUND;
        *val = (const char *)p;
        *val_len = 1;
        if (*p == '"') {
            rc = scan_string(&p, end, 0, needs_repair);
            *val_len = (size_t)((const char *)p - *val);
            goto after_scan;
        }
    }
    switch (*p) {
    case '{':
    case '[':
        if (depth == JSON_MAX_DEPTH)
            return DSP_JSON_INVALID;
        stack[depth++] = (char)*p;
        p = skip_ws(p + 1, end);
        if (p < end && (*p == '}' || *p == ']')) {
            if ((*p == '}') != (stack[depth - 1] == '{'))
                return DSP_JSON_INVALID;
            depth--;
            p++;
            goto after_value;
        }
        if (stack[depth - 1] == '{')
            goto member_name;
        goto value;
    case '"':
        rc = scan_string(&p, end, 0, needs_repair);
        break;
    case 't':
        rc = scan_literal(&p, end, "true");
        break;
    case 'f':
        rc = scan_literal(&p, end, "false");
        break;
    case 'n':
        rc = scan_literal(&p, end, "null");
        break;
    default:
        rc = scan_number(&p, end);
        break;
    }
after_scan:
    if (rc != DSP_JSON_VALID)
        return rc;

after_value:
    p = skip_ws(p, end);
    if (depth == 0) {
        if (p != end)
            return DSP_JSON_INVALID;
        return top_object ? DSP_JSON_VALID : DSP_JSON_NOT_OBJECT;
    }
    if (p >= end)
        return DSP_JSON_INVALID;
    if (*p == ',') {
        p++;
        if (stack[depth - 1] == '{')
            goto member_name;
        goto value;
    }
    if ((*p == '}' && stack[depth - 1] == '{') || (*p == ']' && stack[depth - 1] == '[')) {
        depth--;
        p++;
        goto after_value;
    }
    return DSP_JSON_INVALID;

member_name:
    p = skip_ws(p, end);
    if (p >= end || *p != '"')
        return DSP_JSON_INVALID;
    const unsigned char *name_start = p + 1;
    rc = scan_string(&p, end, 1, needs_repair);
    if (rc != DSP_JSON_VALID)
        return rc;
    if (uc && depth == 1) {
        size_t raw_len = (size_t)(p - 1 - name_start);
        if (memchr(name_start, '\\', raw_len)) {
            uc->escaped_name = 1;
            if (*found == FIND_MISSING)
                *found = FIND_UNKNOWN;
        } else {
            for (size_t i = 0; i < uc->n; i++) {
                if (raw_len != uc->lens[i] || memcmp(name_start, uc->names[i], raw_len) != 0)
                    continue;
                if (uc->seen[i] && uc->duplicate < 0)
                    uc->duplicate = (int)i;
                uc->seen[i] = 1;
                if (i == 0 && *found == FIND_MISSING)
                    capture = 1;
            }
        }
    }
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return DSP_JSON_INVALID;
    p++;
    goto value;
}

int dsp_json_validate(const char *line, size_t len, int *needs_repair)
{
    const char *val;
    size_t val_len;
    find_result found;
    return json_validate_find(line, len, needs_repair, NULL, &val, &val_len, &found);
}

const char *dsp_jsonl_check_line(const char *line, size_t len, const char *text_field)
{
    size_t text_len = strlen(text_field);
    const char *names[1] = {text_field};
    unique_check uc = {names, &text_len, 1, {0}, -1, 0};
    int needs_repair = 0;
    const char *raw = NULL;
    size_t raw_len = 0;
    find_result found;
    int rc = json_validate_find(line, len, &needs_repair, &uc, &raw, &raw_len, &found);
    if (rc == DSP_JSON_INVALID)
        return "invalid_json";
    if (rc == DSP_JSON_NOT_OBJECT)
        return "not_object";
    if (rc == DSP_JSON_INVALID_NAME_UTF8 || needs_repair)
        return "invalid_utf8";
    if (uc.duplicate >= 0 ||
        (uc.escaped_name && dsp_json_count_member(line, len, text_field, text_len) > 1))
        return "duplicate_key";
    if (found == FIND_UNKNOWN)
        found = dsp_json_find(line, len, text_field, &raw, &raw_len) ? FIND_FOUND : FIND_MISSING;
    if (found == FIND_MISSING)
        return "missing_text";
    if (raw[0] != '"')
        return "text_not_string";
    return NULL;
}

size_t dsp_utf8_repair(const char *s, size_t len, dsp_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;
    size_t replaced = 0;
    dsp_buf_reserve(out, len + len / 2 + 3);
    while (p < end) {
        const unsigned char *run = p;
        size_t n;
        while (p < end && (n = utf8_seq_len(p, end)) != 0)
            p += n;
        dsp_buf_append(out, run, (size_t)(p - run));
        if (p < end) {
            dsp_buf_append(out, "\xef\xbf\xbd", 3);
            p++;
            replaced++;
        }
    }
    return replaced;
}

size_t dsp_json_repair(const char *line, size_t len, dsp_buf *out)
{
    const unsigned char *p = (const unsigned char *)line;
    const unsigned char *end = p + len;
    size_t replaced = 0;

    dsp_buf_reserve(out, len + len / 2 + 3);
    while (p < end) {
        const unsigned char *run = p;
        size_t n;
        while (p < end && *p != '\\' && (n = utf8_seq_len(p, end)) != 0)
            p += n;
        dsp_buf_append(out, run, (size_t)(p - run));
        if (p >= end)
            break;
        if (*p != '\\') {
            n = 0; /* an invalid UTF-8 byte */
            p++;
        } else if (p[1] == 'u') {
            n = unicode_escape_len(p, end);
            if (n == 0)
                p += 6; /* a lone surrogate escape */
        } else {
            n = 2;
        }
        if (n == 0) {
            dsp_buf_append(out, "\xef\xbf\xbd", 3);
            replaced++;
        } else {
            dsp_buf_append(out, p, n);
            p += n;
        }
    }
    return replaced;
}

/* ---- reader ---- */

static char *keep_copy(dsp_jsonl_reader *r, const char *s, size_t len)
{
    char *copy = dsp_xmalloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    r->unique_owned = dsp_xrealloc(r->unique_owned, (r->nowned + 1) * sizeof(char *));
    r->unique_owned[r->nowned++] = copy;
    return copy;
}

/* Add a copy of name to the names that a record may contain once, unless
 * present. Returns -1 when the table is full. */
static int add_unique_name(dsp_jsonl_reader *r, const char *name, size_t len)
{
    for (size_t i = 1; i < r->nunique; i++)
        if (r->unique_lens[i] == len && memcmp(r->unique_names[i], name, len) == 0)
            return 0;
    if (r->nunique == DSP_JSONL_MAX_UNIQUE)
        return -1;
    r->unique_names[r->nunique] = keep_copy(r, name, len);
    r->unique_lens[r->nunique] = len;
    r->nunique++;
    return 0;
}

/*
 * Fill the unique-name table from opts->unique_fields. A dotted path adds
 * its whole name (a top-level member with that exact name wins) and its
 * first segment; deeper segments are checked by dsp_json_path_is_unique.
 */
static dsp_status setup_unique(dsp_jsonl_reader *r, const char *const *fields, dsp_err *err)
{
    r->nunique = 1; /* slot 0: the text field */
    for (size_t i = 0; fields && fields[i]; i++) {
        const char *f = fields[i];
        if (!f[0])
            continue;
        const char *dot = strchr(f, '.');
        int full = add_unique_name(r, f, strlen(f));
        int first = dot ? add_unique_name(r, f, (size_t)(dot - f)) : 0;
        if (full != 0 || first != 0)
            return dsp_err_set(err, DSP_EINVAL, "JSONL reader for %s: more than %d member "
                               "names to check for duplicates", r->uri, DSP_JSONL_MAX_UNIQUE - 1);
        if (dot) {
            r->unique_paths = dsp_xrealloc(r->unique_paths, (r->npaths + 1) * sizeof(char *));
            r->unique_paths[r->npaths++] = keep_copy(r, f, strlen(f));
        }
    }
    return DSP_OK;
}

dsp_status dsp_jsonl_open(const dsp_jsonl_opts *opts, dsp_jsonl_reader **out, dsp_err *err)
{
    dsp_jsonl_reader *r = dsp_xcalloc(1, sizeof *r);
    dsp_status st;
    r->store = opts->store;
    r->key = dsp_xstrdup(opts->key);
    r->uri = dsp_store_object_name(opts->store, opts->key);
    r->max_record = opts->max_record_bytes > 0 ? opts->max_record_bytes
                                               : DSP_DEFAULT_MAX_RECORD_BYTES;
    r->read_size = opts->read_size ? opts->read_size : (4u << 20);
    if (opts->expect) {
        r->check_version = 1;
        r->expect = *opts->expect;
    }
    r->reject = opts->reject;
    r->reject_ctx = opts->reject_ctx;
    r->skip_text_decode = opts->skip_text_decode;
    r->borrow_lines = opts->borrow_lines;
    r->trusted = opts->trusted;
    st = setup_unique(r, opts->unique_fields, err);
    if (st != DSP_OK)
        goto fail;
    if (r->trusted && !r->skip_text_decode) {
        st = dsp_err_set(err, DSP_EINVAL, "JSONL reader for %s: trusted lines need "
                         "skip_text_decode, because their text is not located", r->uri);
        goto fail;
    }
    r->ranged = opts->offset > 0 || opts->length >= 0;
    if (opts->tee && r->ranged) {
        st = dsp_err_set(err, DSP_EINVAL, "JSONL reader for %s: a tee needs the whole object, "
                         "not a byte range", r->uri);
        goto fail;
    }
    r->tee = opts->tee;
    r->tee_ctx = opts->tee_ctx;
    r->data_store = opts->data_store ? opts->data_store : opts->store;
    r->data_key = dsp_xstrdup(opts->data_key ? opts->data_key : opts->key);
    r->range_end = opts->length >= 0 ? opts->offset + (uint64_t)opts->length : UINT64_MAX;
    r->tail_next = r->range_end;

    /* Start one byte early to learn whether the range starts on a record. */
    uint64_t read_from = opts->offset > 0 ? opts->offset - 1 : 0;
    int64_t read_len = opts->length >= 0 ? (int64_t)(r->range_end - read_from) : -1;
    r->skip_leading = opts->offset > 0;
    r->buf_offset = read_from;
    r->range_start = read_from;

    dsp_reader_opts ropts = {r->read_size, 0, r->check_version ? &r->expect : NULL};
    st = dsp_store_reader_open(r->data_store, r->data_key, read_from, read_len, &ropts, &r->src,
                               err);
    if (st != DSP_OK)
        goto fail;
    st = dsp_dstream_open(r->src, r->uri, read_from, r->read_size, &r->stream, err);
    if (st != DSP_OK)
        goto fail;

    dsp_compression comp = dsp_dstream_compression(r->stream);
    if (comp != DSP_COMP_NONE && r->ranged) {
        st = dsp_err_set(err, DSP_EINVAL,
                         "%s is %s-compressed: byte ranges apply only to plain JSONL "
                         "(requested offset %llu, length %lld)",
                         r->uri, dsp_compression_name(comp), (unsigned long long)opts->offset,
                         (long long)opts->length);
        goto fail;
    }
    if (comp == DSP_COMP_NONE && opts->offset == 0 && !opts->data_key) {
        const char *dot = strrchr(r->uri, '.');
        if (dot && (!strcmp(dot, ".zst") || !strcmp(dot, ".zstd") || !strcmp(dot, ".gz")))
            DSP_WARN("input_not_compressed", "key=%s detail=\"name ends in %s but the content "
                     "is not compressed; reading it as plain JSONL\"", r->uri, dot);
    }
    if (comp != DSP_COMP_NONE)
        r->buf_offset = 0;

    r->cap = r->read_size + 1;
    r->buf = dsp_xmalloc(r->cap);
    *out = r;
    return DSP_OK;

fail:
    dsp_jsonl_close(r);
    return st;
}

static dsp_status emit_reject_member(dsp_jsonl_reader *r, const char *reason, uint64_t offset,
                                     const char *record, size_t len, const char *member,
                                     dsp_err *err)
{
    r->stats.rejected++;
    if (!r->reject)
        return DSP_OK;
    if (len > REJECT_PREFIX_BYTES)
        len = REJECT_PREFIX_BYTES;
    return r->reject(r->reject_ctx, reason, r->uri, offset, record, len, member, err);
}

static dsp_status emit_reject(dsp_jsonl_reader *r, const char *reason, uint64_t offset,
                              const char *record, size_t len, dsp_err *err)
{
    return emit_reject_member(r, reason, offset, record, len, NULL, err);
}

/*
 * Return the member name that occurs more than once among those the job
 * reads, or NULL. uc contains what validation found. Names with escapes and
 * the nested levels of dotted paths are compared here, after decoding.
 */
static const char *find_duplicate(dsp_jsonl_reader *r, const char *line, size_t len,
                                  const unique_check *uc)
{
    if (uc->duplicate >= 0)
        return r->unique_names[uc->duplicate];
    if (uc->escaped_name) {
        for (size_t i = 0; i < r->nunique; i++) {
            if (dsp_json_count_member(line, len, r->unique_names[i], r->unique_lens[i]) > 1)
                return r->unique_names[i];
        }
    }
    for (size_t i = 0; i < r->npaths; i++) {
        if (!dsp_json_path_is_unique(line, len, r->unique_paths[i]))
            return r->unique_paths[i];
    }
    return NULL;
}

static dsp_status push_trusted(dsp_jsonl_reader *r, dsp_batch *b, const char *line, size_t len,
                               uint64_t offset)
{
    if (r->borrow_lines)
        dsp_batch_push_borrowed(b, line, len, r->key, offset);
    else
        dsp_batch_push(b, line, len, r->key, offset);
    return DSP_OK;
}

/* Validate one record and append it to the batch, or reject it. */
static dsp_status take_record(dsp_jsonl_reader *r, dsp_batch *b, const char *line, size_t len,
                              uint64_t offset, dsp_err *err)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (offset == 0 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
        line += 3; /* a UTF-8 byte order mark at the start of the file */
        len -= 3;
    }
    if (len > (size_t)r->max_record) {
        r->stats.records++;
        return emit_reject(r, "record_too_large", offset, line, len, err);
    }
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len) {
        r->stats.blank_lines++;
        return DSP_OK;
    }
    r->stats.records++;
    if (r->trusted)
        return push_trusted(r, b, line, len, offset);

    int needs_repair = 0;
    const char *raw = NULL;
    size_t raw_len = 0;
    find_result found;
    if (r->unique_names[0] != b->text_field) {
        r->unique_names[0] = b->text_field;
        r->unique_lens[0] = strlen(b->text_field);
    }
    unique_check uc = {r->unique_names, r->unique_lens, r->nunique, {0}, -1, 0};
    int rc = json_validate_find(line, len, &needs_repair, &uc, &raw, &raw_len, &found);
    if (rc == DSP_JSON_INVALID)
        return emit_reject(r, "invalid_json", offset, line, len, err);
    if (rc == DSP_JSON_NOT_OBJECT)
        return emit_reject(r, "not_object", offset, line, len, err);
    if (rc == DSP_JSON_INVALID_NAME_UTF8)
        return emit_reject(r, "invalid_utf8", offset, line, len, err);
    /* Operators see the first of two members with one name, but most JSON
     * parsers (Python's json, jq) take the last one, so a kept record
     * would pass on a value that no operator checked. */
    const char *dup = find_duplicate(r, line, len, &uc);
    if (dup)
        return emit_reject_member(r, "duplicate_key", offset, line, len, dup, err);
    if (needs_repair) {
        dsp_buf_reset(&r->scratch);
        dsp_json_repair(line, len, &r->scratch);
        line = r->scratch.data;
        len = r->scratch.len;
        r->stats.utf8_repaired++;
        found = FIND_UNKNOWN; /* the value moved in the repaired copy */
    }

    if (found == FIND_UNKNOWN)
        found = dsp_json_find(line, len, b->text_field, &raw, &raw_len) ? FIND_FOUND
                                                                         : FIND_MISSING;
    if (found == FIND_MISSING)
        return emit_reject(r, "missing_text", offset, line, len, err);
    if (raw[0] != '"')
        return emit_reject(r, "text_not_string", offset, line, len, err);

    /* A repaired line lives in the scratch buffer, which the next record
     * reuses, so it is always copied. */
    dsp_doc *d = r->borrow_lines && !needs_repair
                     ? dsp_batch_push_borrowed(b, line, len, r->key, offset)
                     : dsp_batch_push(b, line, len, r->key, offset);
    if (r->skip_text_decode)
        return DSP_OK;
    /* The line passed validation (after repair, if it needed one), so only
     * its escapes need decoding. The text goes to the arena either way. */
    const char *copy_raw = d->line + (raw - line);
    d->text = dsp_json_decode_valid_string(&b->arena, copy_raw, raw_len, &d->text_len);
    if (!d->text) {
        b->n--; /* validated above, so only reachable through a decoder bug */
        return emit_reject(r, "invalid_json", offset, line, len, err);
    }
    return DSP_OK;
}

/* Open the next window past the range end to finish the record that crosses
 * it. Sets *opened to 0 when the object has no bytes left. */
static dsp_status open_tail(dsp_jsonl_reader *r, int *opened, dsp_err *err)
{
    *opened = 0;
    uint64_t size = dsp_reader_info(r->src)->size;
    if (r->tail_next >= size)
        return DSP_OK;
    if (r->tail_window == 0) {
        uint64_t consumed = r->buf_offset + r->start - r->range_start;
        uint64_t want = r->stats.records ? 2 * (consumed / r->stats.records)
                                         : TAIL_FALLBACK_WINDOW;
        if (want < TAIL_MIN_WINDOW)
            want = TAIL_MIN_WINDOW;
        r->tail_window = want < r->read_size ? (size_t)want : r->read_size;
    }
    uint64_t len = size - r->tail_next < r->tail_window ? size - r->tail_next : r->tail_window;

    dsp_reader *next = NULL;
    dsp_reader_opts ropts = {len, 1, r->check_version ? &r->expect : NULL};
    dsp_status st = dsp_store_reader_open(r->data_store, r->data_key, r->tail_next,
                                          (int64_t)len, &ropts, &next, err);
    if (st != DSP_OK)
        return st;
    st = dsp_dstream_continue(r->stream, next, err);
    if (st != DSP_OK) {
        dsp_reader_close(next);
        return st;
    }
    if (r->tail_src)
        dsp_reader_close(r->tail_src);
    r->tail_src = next;
    r->tail_next += len;
    if (r->tail_window < r->read_size / 2)
        r->tail_window *= 2;
    else
        r->tail_window = r->read_size;
    *opened = 1;
    return DSP_OK;
}

/* Read more input after buf[len]; sets stream_eof at the end of input. */
static dsp_status read_more(dsp_jsonl_reader *r, dsp_err *err)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->buf_offset += r->start;
        r->scan -= r->start;
        r->len -= r->start;
        r->start = 0;
    }
    if (r->cap - r->len < r->read_size / 2 && !r->skipping && !r->skip_leading) {
        size_t max_cap = (size_t)r->max_record + 2; /* the record plus '\r' and '\n' */
        if (r->cap < max_cap) {
            size_t ncap = r->cap * 2 > max_cap ? max_cap : r->cap * 2;
            if (ncap < r->len + r->read_size && r->len + r->read_size <= max_cap)
                ncap = r->len + r->read_size;
            r->buf = dsp_xrealloc(r->buf, ncap);
            r->cap = ncap;
        }
    }
    if (r->len == r->cap)
        return DSP_OK; /* the caller detects the oversized record */

    size_t got = 0;
    dsp_status st = dsp_dstream_read(r->stream, r->buf + r->len, r->cap - r->len, &got, err);
    if (st != DSP_OK)
        return st;
    if (got > 0) {
        if (r->tee)
            r->tee(r->tee_ctx, r->buf + r->len, got);
        r->len += got;
        return DSP_OK;
    }
    /* The range is exhausted. A record that started inside it continues. */
    int pending = r->start < r->len || r->skipping;
    if (r->ranged && r->range_end != UINT64_MAX && pending && !r->skip_leading &&
        r->buf_offset + r->start < r->range_end) {
        int opened = 0;
        st = open_tail(r, &opened, err);
        if (st != DSP_OK || opened)
            return st;
    }
    r->stream_eof = 1;
    return DSP_OK;
}

dsp_status dsp_jsonl_next(dsp_jsonl_reader *r, dsp_batch *b, size_t max_docs, size_t max_bytes,
                          int *eof, dsp_err *err)
{
    dsp_status st = DSP_OK;
    size_t taken = 0, bytes = 0;
    *eof = 0;
    while (!r->done && taken < max_docs && bytes < max_bytes) {
        char *nl = memchr(r->buf + r->scan, '\n', r->len - r->scan);
        if (nl) {
            size_t rec_len = (size_t)(nl - (r->buf + r->start));
            uint64_t rec_offset = r->buf_offset + r->start;
            const char *rec = r->buf + r->start;
            r->start = r->scan = (size_t)(nl - r->buf) + 1;
            if (r->skip_leading) {
                r->skip_leading = 0;
                continue;
            }
            if (r->skipping) {
                r->skipping = 0;
                continue;
            }
            if (rec_offset >= r->range_end) {
                r->done = 1;
                break;
            }
            size_t before = b->n;
            st = take_record(r, b, rec, rec_len, rec_offset, err);
            if (st != DSP_OK)
                return st;
            if (b->n > before) {
                taken++;
                bytes += rec_len;
            }
            continue;
        }
        r->scan = r->len;

        if (r->stream_eof) {
            if (r->start < r->len && !r->skip_leading && !r->skipping) {
                uint64_t rec_offset = r->buf_offset + r->start;
                size_t rec_len = r->len - r->start;
                if (rec_offset < r->range_end) {
                    st = take_record(r, b, r->buf + r->start, rec_len, rec_offset, err);
                    if (st != DSP_OK)
                        return st;
                }
            }
            r->start = r->scan = r->len;
            r->done = 1;
            break;
        }

        /* Reading more moves or overwrites the buffer, so borrowed lines
         * go back to the caller first. */
        if (r->borrow_lines && taken > 0)
            break;

        /* No newline in the buffer: discard what is being skipped, or
         * detect a record over the limit, then read more. */
        if (r->skip_leading || r->skipping) {
            r->buf_offset += r->len;
            r->start = r->scan = r->len = 0;
        } else if (r->len - r->start > (size_t)r->max_record) {
            uint64_t rec_offset = r->buf_offset + r->start;
            if (rec_offset >= r->range_end) {
                r->done = 1;
                break;
            }
            r->stats.records++;
            st = emit_reject(r, "record_too_large", rec_offset, r->buf + r->start,
                             r->len - r->start, err);
            if (st != DSP_OK)
                return st;
            DSP_WARN("record_too_large", "key=%s offset=%llu max_record_bytes=%lld", r->uri,
                     (unsigned long long)rec_offset, (long long)r->max_record);
            r->skipping = 1;
            r->buf_offset += r->len;
            r->start = r->scan = r->len = 0;
        }
        st = read_more(r, err);
        if (st != DSP_OK)
            return st;
        if (r->skip_leading && r->stream_eof)
            r->done = 1; /* the range contains no record start */
    }
    if (r->done)
        *eof = 1;
    r->stats.bytes_in = dsp_dstream_bytes_in(r->stream);
    r->stats.bytes_in_raw = dsp_dstream_bytes_out(r->stream);
    return DSP_OK;
}

int dsp_jsonl_compressed(const dsp_jsonl_reader *r)
{
    return r->stream && dsp_dstream_compression(r->stream) != DSP_COMP_NONE;
}

const dsp_jsonl_stats *dsp_jsonl_get_stats(const dsp_jsonl_reader *r)
{
    return &r->stats;
}

void dsp_jsonl_close(dsp_jsonl_reader *r)
{
    if (!r)
        return;
    dsp_dstream_close(r->stream);
    if (r->src)
        dsp_reader_close(r->src);
    if (r->tail_src)
        dsp_reader_close(r->tail_src);
    dsp_buf_free(&r->scratch);
    for (size_t i = 0; i < r->nowned; i++)
        free(r->unique_owned[i]);
    free(r->unique_owned);
    free(r->unique_paths);
    free(r->buf);
    free(r->key);
    free(r->data_key);
    free(r->uri);
    free(r);
}
