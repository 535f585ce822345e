/*
 * doc.c - arenas, batches and the minimal JSON handling of documents.
 *
 * The data path never builds a JSON tree. dsp_json_find() walks the
 * top-level members of one object and returns the raw bytes of a value, and
 * dsp_json_decode_string() turns a raw string into UTF-8.
 * dsp_doc_serialize() copies unchanged lines byte for byte. In a changed
 * line it keeps every member in order, replaces the text value in place and
 * drops the members that an operator added again, which are appended.
 *
 * Guarantees: strings produced here are valid UTF-8 (invalid input bytes
 * become U+FFFD), and after the arena reaches its working size a batch
 * allocates nothing per record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "doc.h"

/* ---- arena ---- */

struct dsp_arena_block {
    dsp_arena_block *next;
    size_t size; /* usable bytes in data */
    size_t used;
    size_t last; /* offset of the most recent allocation, for dsp_arena_shrink */
    _Alignas(8) char data[];
};

#define ARENA_DEFAULT_BLOCK (1u << 20)

void dsp_arena_init(dsp_arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
}

static dsp_arena_block *arena_new_block(size_t size)
{
    dsp_arena_block *blk = dsp_xmalloc(sizeof *blk + size);
    blk->next = NULL;
    blk->size = size;
    blk->used = 0;
    blk->last = 0;
    return blk;
}

void *dsp_arena_alloc(dsp_arena *a, size_t n)
{
    size_t need = (n + 7) & ~(size_t)7;
    if (need == 0)
        need = 8;
    dsp_arena_block *blk = a->head;
    if (!blk || blk->size - blk->used < need) {
        size_t size = need > a->block_size ? need : a->block_size;
        blk = arena_new_block(size);
        blk->next = a->head;
        a->head = blk;
    }
    void *p = blk->data + blk->used;
    blk->last = blk->used;
    blk->used += need;
    return p;
}

void dsp_arena_shrink(dsp_arena *a, void *p, size_t n)
{
    dsp_arena_block *blk = a->head;
    if (!blk || (char *)p != blk->data + blk->last)
        return;
    size_t keep = (n + 7) & ~(size_t)7;
    if (keep == 0)
        keep = 8;
    if (blk->last + keep < blk->used)
        blk->used = blk->last + keep;
}

char *dsp_arena_strndup(dsp_arena *a, const char *s, size_t n)
{
    char *p = dsp_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/*
 * Keep one block. When the batch used more than the largest block holds,
 * replace it with one block of the total size, so that the next batch of
 * the same shape fits without allocating.
 */
void dsp_arena_reset(dsp_arena *a)
{
    dsp_arena_block *largest = NULL;
    size_t total = 0;
    for (dsp_arena_block *blk = a->head; blk; blk = blk->next) {
        total += blk->used;
        if (!largest || blk->size > largest->size)
            largest = blk;
    }
    dsp_arena_block *blk = a->head;
    while (blk) {
        dsp_arena_block *next = blk->next;
        if (blk != largest)
            free(blk);
        blk = next;
    }
    a->head = largest;
    if (!largest)
        return;
    if (total > largest->size) {
        free(largest);
        a->head = arena_new_block(total);
        return;
    }
    largest->next = NULL;
    largest->used = 0;
    largest->last = 0;
}

void dsp_arena_free(dsp_arena *a)
{
    dsp_arena_block *blk = a->head;
    while (blk) {
        dsp_arena_block *next = blk->next;
        free(blk);
        blk = next;
    }
    a->head = NULL;
}

/* ---- batch ---- */

void dsp_batch_init(dsp_batch *b, const char *text_field)
{
    b->docs = NULL;
    b->n = 0;
    b->cap = 0;
    dsp_arena_init(&b->arena, 0);
    b->text_field = text_field ? text_field : "text";
}

void dsp_batch_reset(dsp_batch *b)
{
    b->n = 0;
    dsp_arena_reset(&b->arena);
}

void dsp_batch_free(dsp_batch *b)
{
    free(b->docs);
    b->docs = NULL;
    b->n = b->cap = 0;
    dsp_arena_free(&b->arena);
}

dsp_doc *dsp_batch_push_borrowed(dsp_batch *b, const char *line, size_t len,
                                 const char *source, uint64_t offset)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->docs = dsp_xrealloc(b->docs, b->cap * sizeof *b->docs);
    }
    dsp_doc *d = &b->docs[b->n++];
    memset(d, 0, sizeof *d);
    d->line = line;
    d->line_len = len;
    d->source = source;
    d->offset = offset;
    return d;
}

dsp_doc *dsp_batch_push(dsp_batch *b, const char *line, size_t len, const char *source,
                        uint64_t offset)
{
    char *copy = dsp_arena_strndup(&b->arena, line, len);
    return dsp_batch_push_borrowed(b, copy, len, source, offset);
}

void dsp_batch_compact(dsp_batch *b, const unsigned char *keep)
{
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        if (w != i)
            b->docs[w] = b->docs[i];
        w++;
    }
    b->n = w;
}

/* ---- JSON scanning ---- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p points at an opening quote; returns the byte after the closing quote,
 * or NULL when the string is not terminated. */
/* Word-at-a-time tests: whether any byte of v equals c, or needs the slow
 * path of the string decoder (backslash, control byte or non-ASCII). Both
 * can report a false match only in a word that also has a true one. */
#define BYTES_ONES 0x0101010101010101ULL
#define BYTES_HIGHS 0x8080808080808080ULL

static uint64_t word_has_byte(uint64_t v, unsigned char c)
{
    uint64_t x = v ^ (BYTES_ONES * c);
    return (x - BYTES_ONES) & ~x & BYTES_HIGHS;
}

static int word_needs_decoding(uint64_t v)
{
    uint64_t found = word_has_byte(v, '\\');
    found |= (v - BYTES_ONES * 0x20) & ~v & BYTES_HIGHS;
    found |= v & BYTES_HIGHS;
    return found != 0;
}

/* First quote or backslash in [p, end), or end. */
static const char *find_quote_or_backslash(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        if (word_has_byte(v, '"') | word_has_byte(v, '\\'))
            break;
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\')
        p++;
    return p;
}

/* p points at an opening quote; returns the byte after the closing quote,
 * or NULL when the string is not terminated. */
static const char *skip_string(const char *p, const char *end)
{
    p++;
    while (p < end) {
        const char *q = find_quote_or_backslash(p, end);
        if (q >= end)
            return NULL;
        if (*q == '"')
            return q + 1;
        p = q + 2; /* backslash and the escaped byte */
    }
    return NULL;
}

/* Skip one value of any kind; returns the byte after it or NULL. */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                p = skip_string(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                depth--;
                if (depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *start = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\n' && *p != '\r')
        p++;
    return p > start ? p : NULL;
}

/*
 * Member iterator over "key":value pairs separated by commas, starting after
 * the '{' (or at the start of an extra-members list). Returns 1 and fills
 * the member, 0 at the end of the list, -1 on malformed input.
 */
typedef struct {
    const char *p, *end;
    int first;
} member_iter;

typedef struct {
    const char *key; /* raw, without quotes */
    size_t key_len;
    const char *val;
    size_t val_len;
    const char *start; /* first byte of the member (the key's quote) */
} member;

static int member_next(member_iter *it, member *m)
{
    const char *p = skip_ws(it->p, it->end);
    if (p >= it->end || *p == '}')
        return 0;
    if (!it->first) {
        if (*p != ',')
            return -1;
        p = skip_ws(p + 1, it->end);
    }
    if (p >= it->end || *p != '"')
        return -1;
    m->start = p;
    const char *kend = skip_string(p, it->end);
    if (!kend)
        return -1;
    m->key = p + 1;
    m->key_len = (size_t)(kend - 1 - m->key);
    p = skip_ws(kend, it->end);
    if (p >= it->end || *p != ':')
        return -1;
    p = skip_ws(p + 1, it->end);
    const char *vend = skip_value(p, it->end);
    if (!vend)
        return -1;
    m->val = p;
    m->val_len = (size_t)(vend - p);
    it->p = vend;
    it->first = 0;
    return 1;
}

/* Compare a raw key (possibly with escapes) with a plain name. Keys with
 * escapes are rare, so they take a slow path through the string decoder. */
static int key_equals(const char *raw, size_t raw_len, const char *name, size_t name_len)
{
    if (!memchr(raw, '\\', raw_len))
        return raw_len == name_len && memcmp(raw, name, name_len) == 0;
    char quoted[512];
    if (raw_len + 2 > sizeof quoted)
        return 0;
    quoted[0] = '"';
    memcpy(quoted + 1, raw, raw_len);
    quoted[raw_len + 1] = '"';
    dsp_arena scratch;
    dsp_arena_init(&scratch, 4096);
    size_t decoded_len = 0;
    char *decoded = dsp_json_decode_string(&scratch, quoted, raw_len + 2, &decoded_len);
    int eq = decoded && decoded_len == name_len && memcmp(decoded, name, name_len) == 0;
    dsp_arena_free(&scratch);
    return eq;
}

static int object_iter_init(member_iter *it, const char *line, size_t line_len)
{
    const char *end = line + line_len;
    const char *p = skip_ws(line, end);
    if (p >= end || *p != '{')
        return -1;
    it->p = p + 1;
    it->end = end;
    it->first = 1;
    return 0;
}

static int json_find_n(const char *line, size_t line_len, const char *name, size_t name_len,
                       const char **val, size_t *len)
{
    member_iter it;
    if (object_iter_init(&it, line, line_len) != 0)
        return 0;
    member m;
    while (member_next(&it, &m) == 1) {
        if (key_equals(m.key, m.key_len, name, name_len)) {
            *val = m.val;
            *len = m.val_len;
            return 1;
        }
    }
    return 0;
}

int dsp_json_find(const char *line, size_t line_len, const char *name, const char **val,
                  size_t *len)
{
    return json_find_n(line, line_len, name, strlen(name), val, len);
}

int dsp_json_find_path(const char *line, size_t line_len, const char *path, const char **val,
                       size_t *len)
{
    if (json_find_n(line, line_len, path, strlen(path), val, len))
        return 1;
    const char *obj = line;
    size_t obj_len = line_len;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t seg_len = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!dot && seg == path)
            return 0; /* no dot: the whole-name lookup above already failed */
        if (seg_len == 0 || !json_find_n(obj, obj_len, seg, seg_len, &obj, &obj_len))
            return 0;
        if (!dot) {
            *val = obj;
            *len = obj_len;
            return 1;
        }
        seg = dot + 1;
    }
}

size_t dsp_json_count_member(const char *line, size_t line_len, const char *name,
                             size_t name_len)
{
    member_iter it;
    if (object_iter_init(&it, line, line_len) != 0)
        return 0;
    member m;
    size_t count = 0;
    while (member_next(&it, &m) == 1) {
        if (key_equals(m.key, m.key_len, name, name_len))
            count++;
    }
    return count;
}

int dsp_json_path_is_unique(const char *line, size_t line_len, const char *path)
{
    size_t whole = dsp_json_count_member(line, line_len, path, strlen(path));
    if (whole > 0)
        return whole == 1;
    const char *obj = line;
    size_t obj_len = line_len;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t seg_len = dot ? (size_t)(dot - seg) : strlen(seg);
        if (seg_len == 0)
            return 1;
        size_t count = dsp_json_count_member(obj, obj_len, seg, seg_len);
        if (count > 1)
            return 0;
        if (count == 0 || !dot || !json_find_n(obj, obj_len, seg, seg_len, &obj, &obj_len))
            return 1;
        seg = dot + 1;
    }
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when invalid. */
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
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

#define DECODE_INVALID ((size_t)-1)
#define DECODE_GROWS ((size_t)-2)

/*
 * Decode the escape at *pp (a backslash) into out and move *pp past it.
 * \uXXXX is 6 bytes (12 for a surrogate pair) and yields at most 4, so the
 * output is never longer than the escape. Returns the bytes written, or
 * DECODE_INVALID.
 */
static size_t decode_escape(const char **pp, const char *end, char *out)
{
    const char *p = *pp;
    if (p + 1 >= end)
        return DECODE_INVALID;
    char e = p[1];
    p += 2;
    size_t n = 1;
    switch (e) {
    case '"': out[0] = '"'; break;
    case '\\': out[0] = '\\'; break;
    case '/': out[0] = '/'; break;
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    case 'u': {
        uint32_t cp;
        if (end - p < 4 || hex4(p, &cp) != 0)
            return DECODE_INVALID;
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, &lo) == 0 &&
                lo >= 0xDC00 && lo <= 0xDFFF) {
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
                cp = 0xFFFD; /* unpaired high surrogate */
            }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = 0xFFFD; /* unpaired low surrogate */
        }
        n = utf8_put(out, cp);
        break;
    }
    default:
        return DECODE_INVALID;
    }
    *pp = p;
    return n;
}

/*
 * Decode [p, end) into out. Without invalid UTF-8 the output is never longer
 * than the input, so out needs end - p bytes plus a terminator. An invalid
 * byte becomes U+FFFD (3 bytes). With may_grow set, out must have room for
 * 3 bytes per input byte. Without it, the function returns DECODE_GROWS at
 * the first invalid byte.
 * Returns the decoded length, or DECODE_INVALID for an invalid string.
 */
static size_t decode_into(char *out, int may_grow, const char *p, const char *end)
{
    size_t o = 0;
    while (p < end) {
        /* Copy the run of bytes that need no decoding, a word at a time. */
        const char *run = p;
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            if (word_needs_decoding(v))
                break;
            p += 8;
        }
        while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 && *p != '\\')
            p++;
        memcpy(out + o, run, (size_t)(p - run));
        o += (size_t)(p - run);
        if (p >= end)
            break;

        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            size_t n = decode_escape(&p, end, out + o);
            if (n == DECODE_INVALID)
                return DECODE_INVALID;
            o += n;
            continue;
        }
        if (c < 0x20)
            return DECODE_INVALID; /* raw control characters are not allowed in JSON strings */
        size_t n = utf8_seq_len((const unsigned char *)p, (const unsigned char *)end);
        if (n) {
            memcpy(out + o, p, n);
            o += n;
            p += n;
            continue;
        }
        if (!may_grow)
            return DECODE_GROWS;
        memcpy(out + o, REPLACEMENT, 3);
        o += 3;
        p++;
    }
    out[o] = '\0';
    return o;
}

/*
 * The output is first sized like the input, which suffices unless invalid
 * UTF-8 must be replaced. Only then is it decoded again into 3 bytes per
 * input byte, because one invalid byte becomes U+FFFD (3 bytes).
 */
char *dsp_json_decode_string(dsp_arena *a, const char *raw, size_t raw_len, size_t *out_len)
{
    if (raw_len < 2 || raw[0] != '"' || raw[raw_len - 1] != '"')
        return NULL;
    const char *p = raw + 1;
    const char *end = raw + raw_len - 1;
    size_t body = (size_t)(end - p);

    char *out = dsp_arena_alloc(a, body + 1);
    size_t n = decode_into(out, 0, p, end);
    if (n == DECODE_GROWS) {
        out = dsp_arena_alloc(a, body * 3 + 1);
        n = decode_into(out, 1, p, end);
    }
    if (n == DECODE_INVALID)
        return NULL;
    if (out_len)
        *out_len = n;
    return out;
}

/*
 * Decode the body [p, end) of a string that dsp_json_validate() accepted
 * without repair: its UTF-8 is valid and it contains no raw control byte, so
 * only escapes need work. The runs between backslashes are found with
 * memchr and copied whole. The output is never longer than the input.
 * Returns the decoded length, or DECODE_INVALID for a bad escape.
 */
static size_t decode_valid_into(char *out, const char *p, const char *end)
{
    size_t o = 0;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        memcpy(out + o, p, run);
        o += run;
        if (!bs)
            break;
        p = bs;
        size_t n = decode_escape(&p, end, out + o);
        if (n == DECODE_INVALID)
            return DECODE_INVALID;
        o += n;
    }
    out[o] = '\0';
    return o;
}

char *dsp_json_decode_valid_string(dsp_arena *a, const char *raw, size_t raw_len,
                                   size_t *out_len)
{
    if (raw_len < 2 || raw[0] != '"' || raw[raw_len - 1] != '"')
        return NULL;
    char *out = dsp_arena_alloc(a, raw_len - 1);
    size_t n = decode_valid_into(out, raw + 1, raw + raw_len - 1);
    if (n == DECODE_INVALID)
        return NULL;
    if (out_len)
        *out_len = n;
    return out;
}

/* ---- JSON encoding ---- */

/* Write s as a JSON string with quotes into dst, which must have room for
 * 6 bytes per input byte plus 2; returns the bytes written. */
static size_t json_escape(char *dst, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;
    size_t o = 0;
    dst[o++] = '"';
    while (p < end) {
        /* Skip the run of bytes that need no escaping, a word at a time. */
        const unsigned char *run = p;
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            if (word_needs_decoding(v) || word_has_byte(v, '"'))
                break;
            p += 8;
        }
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run) {
            memcpy(dst + o, run, (size_t)(p - run));
            o += (size_t)(p - run);
        }
        if (p >= end)
            break;
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t n = utf8_seq_len(p, end);
            if (n) {
                memcpy(dst + o, p, n);
                o += n;
                p += n;
            } else {
                memcpy(dst + o, REPLACEMENT, 3);
                o += 3;
                p++;
            }
            continue;
        }
        dst[o++] = '\\';
        switch (c) {
        case '"': dst[o++] = '"'; break;
        case '\\': dst[o++] = '\\'; break;
        case '\n': dst[o++] = 'n'; break;
        case '\r': dst[o++] = 'r'; break;
        case '\t': dst[o++] = 't'; break;
        case '\b': dst[o++] = 'b'; break;
        case '\f': dst[o++] = 'f'; break;
        default:
            dst[o++] = 'u';
            dst[o++] = '0';
            dst[o++] = '0';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
        p++;
    }
    dst[o++] = '"';
    return o;
}

void dsp_json_encode_string(dsp_buf *out, const char *s, size_t len)
{
    dsp_buf_reserve(out, len * 6 + 2);
    out->len += json_escape(out->data + out->len, s, len);
    out->data[out->len] = '\0';
}

/* ---- documents ---- */

/*
 * A member that an earlier step added under the same name is dropped, so
 * that a name occurs once even when two steps add it (two langid steps, or
 * a stats `field` named "lang"). Extra names are all written by
 * json_escape, so their raw forms compare exactly.
 */
void dsp_doc_add_field(dsp_batch *b, dsp_doc *d, const char *name, const char *value_json)
{
    size_t name_len = strlen(name);
    size_t value_len = strlen(value_json);
    size_t cap = d->extra_len + 1 + name_len * 6 + 2 + 1 + value_len + 1;
    char *buf = dsp_arena_alloc(&b->arena, cap);
    size_t key_len = json_escape(buf, name, name_len); /* the raw key, quotes included */
    char *key = dsp_arena_strndup(&b->arena, buf, key_len);
    size_t o = 0;
    if (d->extra_len) {
        member_iter it = {d->extra, d->extra + d->extra_len, 1};
        member m;
        while (member_next(&it, &m) == 1) {
            if (m.key_len + 2 == key_len && memcmp(m.key, key + 1, m.key_len) == 0)
                continue;
            size_t len = (size_t)(m.val + m.val_len - m.start);
            memcpy(buf + o, m.start, len);
            o += len;
            buf[o++] = ',';
        }
    }
    memcpy(buf + o, key, key_len);
    o += key_len;
    buf[o++] = ':';
    memcpy(buf + o, value_json, value_len);
    o += value_len;
    buf[o] = '\0';
    d->extra = buf;
    d->extra_len = o;
}

void dsp_doc_set_text(dsp_batch *b, dsp_doc *d, const char *text, size_t len)
{
    d->text = dsp_arena_strndup(&b->arena, text, len);
    d->text_len = len;
    d->text_changed = 1;
    d->words = NULL;
}

/* Whether the extra-members list has a member named like the input member
 * with this raw key. A raw key with escapes is decoded first, so
 * "l\u0061ng" matches an added "lang". */
static int extra_has_key(const dsp_doc *d, const char *raw_key, size_t raw_len)
{
    if (!d->extra_len)
        return 0;
    int escaped = memchr(raw_key, '\\', raw_len) != NULL;
    dsp_arena scratch;
    const char *name = raw_key;
    size_t name_len = raw_len;
    if (escaped) {
        dsp_arena_init(&scratch, raw_len + 64);
        char *quoted = dsp_arena_alloc(&scratch, raw_len + 2);
        quoted[0] = '"';
        memcpy(quoted + 1, raw_key, raw_len);
        quoted[raw_len + 1] = '"';
        name = dsp_json_decode_string(&scratch, quoted, raw_len + 2, &name_len);
        if (!name) {
            dsp_arena_free(&scratch);
            return 0;
        }
    }
    member_iter it = {d->extra, d->extra + d->extra_len, 1};
    member m;
    int found = 0;
    while (!found && member_next(&it, &m) == 1)
        found = key_equals(m.key, m.key_len, name, name_len);
    if (escaped)
        dsp_arena_free(&scratch);
    return found;
}

/*
 * Write the original line when nothing changed. Otherwise write the original
 * members in order with the text value replaced, skip members that the
 * extra list defines again, and append the extra members. A changed text
 * without a text member in the line is appended as a new member.
 */
void dsp_doc_serialize(const dsp_batch *b, const dsp_doc *d, dsp_buf *out)
{
    if (!d->text_changed && d->extra_len == 0) {
        dsp_buf_append(out, d->line, d->line_len);
        return;
    }
    const char *text_field = b->text_field ? b->text_field : "text";
    size_t text_field_len = strlen(text_field);
    int wrote_text = 0;
    int count = 0;

    dsp_buf_append_char(out, '{');
    member_iter it;
    if (object_iter_init(&it, d->line, d->line_len) == 0) {
        member m;
        while (member_next(&it, &m) == 1) {
            int is_text = key_equals(m.key, m.key_len, text_field, text_field_len);
            if (is_text && wrote_text)
                continue; /* a duplicate text member */
            if (!is_text && extra_has_key(d, m.key, m.key_len))
                continue;
            if (count++)
                dsp_buf_append_char(out, ',');
            if (is_text && d->text_changed) {
                dsp_buf_append(out, m.start, (size_t)(m.key + m.key_len + 1 - m.start));
                dsp_buf_append_char(out, ':');
                dsp_json_encode_string(out, d->text ? d->text : "", d->text ? d->text_len : 0);
                wrote_text = 1;
                continue;
            }
            if (is_text)
                wrote_text = 1;
            dsp_buf_append(out, m.start, (size_t)(m.val + m.val_len - m.start));
        }
    }
    if (d->text_changed && !wrote_text) {
        if (count++)
            dsp_buf_append_char(out, ',');
        dsp_json_encode_string(out, text_field, text_field_len);
        dsp_buf_append_char(out, ':');
        dsp_json_encode_string(out, d->text ? d->text : "", d->text ? d->text_len : 0);
    }
    if (d->extra_len) {
        if (count++)
            dsp_buf_append_char(out, ',');
        dsp_buf_append(out, d->extra, d->extra_len);
    }
    dsp_buf_append_char(out, '}');
}
