/*
 * op_pii_redact.c - the `pii_redact` operator: replace e-mail addresses,
 * IPv4 and IPv6 addresses and phone numbers with placeholders, and count
 * each kind. It removes nothing. Hand-written scanners, because one pass
 * over the bytes is faster than one regular expression per kind. What
 * counts as each kind:
 *
 *   e-mail  local@domain: the local part of [A-Za-z0-9._%+-], the domain
 *           two or more labels of [A-Za-z0-9-] separated by dots, and a
 *           top-level domain of 2 or more letters.
 *   IPv4    four decimal octets 0..255 without leading zeros, not part of a
 *           longer dotted or alphanumeric token ("1.2.3.4.5", "v1.2.3.4"),
 *           and not right after the word version, ver, v, release, build, ISBN
 *           or ISSN.
 *   IPv6    what inet_pton(AF_INET6) accepts, with at least one digit and
 *           either "::" or eight groups, not inside a longer token.
 *   phone   7 to 15 digits in one of these forms: a leading + and country
 *           code ("+49 30 1234567", "+14155550123", "+1 (415) 555-0123"); an area code in
 *           brackets and a last group of 4 or more digits
 *           ("(415) 555-0123"); 3-3-4 digits with one separator
 *           ("415-555-0123", "415.555.0123", "415 555 0123"); 3-4 digits
 *           with a hyphen ("555-0123"); or a leading 0 trunk prefix with
 *           space or hyphen groups and 9 or more digits ("030 1234567",
 *           "01 23 45 67 89"). Dates (2021-03-04, 04-03-2021), plain digit
 *           runs and numbers after ISBN or ISSN are not phone numbers.
 *
 * Memory: the match list and output buffer live in the state and grow to
 * the largest document, so nothing is allocated per record after warm-up.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/buf.h"
#include "../core/util.h"
#include "op.h"
#include "op_text.h"

enum { PII_EMAIL, PII_IPV4, PII_IPV6, PII_PHONE };

typedef struct {
    size_t start, end;
    int kind;
} pii_match;

typedef struct {
    int enabled[4];
    char *placeholder[4];
    pii_match *matches;
    size_t nmatches, matches_cap;
    dsp_buf out;
    unsigned char byte_class[256]; /* PII_STARTS and PII_JOINS bits per byte */
} pii_state;

/* Bits of pii_state.byte_class. */
enum {
    PII_STARTS = 1, /* may start an address or number: hex digit, '+', '(' or ':' */
    PII_JOINS = 2,  /* continues a token, so no match starts right after it */
};

static const dsp_op_option pii_options[] = {
    {"emails", DSP_OPT_BOOL, "true", "redact e-mail addresses", 0, 0},
    {"ips", DSP_OPT_BOOL, "true", "redact IPv4 and IPv6 addresses", 0, 0},
    {"phones", DSP_OPT_BOOL, "true", "redact phone numbers", 0, 0},
    {"email_placeholder", DSP_OPT_STRING, "\"<EMAIL>\"", "text that replaces an e-mail address", 0, 0},
    {"ip_placeholder", DSP_OPT_STRING, "\"<IP>\"", "text that replaces an IP address", 0, 0},
    {"phone_placeholder", DSP_OPT_STRING, "\"<PHONE>\"", "text that replaces a phone number", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const pii_reasons[] = {NULL};
static const char *const pii_extra[] = {"email", "ipv4", "ipv6", "phone", NULL};

extern const dsp_op_def dsp_op_pii_redact_def;

static void pii_destroy(void *state)
{
    pii_state *s = state;
    if (!s)
        return;
    for (int k = 0; k < 4; k++)
        free(s->placeholder[k]);
    free(s->matches);
    dsp_buf_free(&s->out);
    free(s);
}

static int pii_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int pii_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int pii_is_alnum(char c)
{
    return pii_is_digit(c) || pii_is_alpha(c);
}

static int pii_is_hex(char c)
{
    return pii_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static dsp_status pii_create(const cJSON *options, const dsp_op_ctx *ctx, void **state,
                             dsp_err *err)
{
    (void)ctx;
    const dsp_op_def *def = &dsp_op_pii_redact_def;
    pii_state *s = calloc(1, sizeof *s);
    if (!s)
        return dsp_err_set(err, DSP_ENOMEM, "out of memory");
    s->enabled[PII_EMAIL] = dsp_op_opt_bool(options, def, "emails");
    s->enabled[PII_IPV4] = s->enabled[PII_IPV6] = dsp_op_opt_bool(options, def, "ips");
    s->enabled[PII_PHONE] = dsp_op_opt_bool(options, def, "phones");
    s->placeholder[PII_EMAIL] = dsp_xstrdup(dsp_op_opt_string(options, def, "email_placeholder"));
    s->placeholder[PII_IPV4] = dsp_xstrdup(dsp_op_opt_string(options, def, "ip_placeholder"));
    s->placeholder[PII_IPV6] = dsp_xstrdup(dsp_op_opt_string(options, def, "ip_placeholder"));
    s->placeholder[PII_PHONE] = dsp_xstrdup(dsp_op_opt_string(options, def, "phone_placeholder"));
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        if (pii_is_hex(c) || c == '+' || c == '(' || c == ':')
            s->byte_class[b] |= PII_STARTS;
        if (pii_is_alnum(c) || c == '_' || c == '.' || c == '-' || c == '+' || c == '/' ||
            c == ':' || c == '@')
            s->byte_class[b] |= PII_JOINS;
    }
    *state = s;
    return DSP_OK;
}

static int pii_is_local_char(char c)
{
    return pii_is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static void pii_add(pii_state *s, size_t start, size_t end, int kind)
{
    if (s->nmatches == s->matches_cap) {
        s->matches_cap = s->matches_cap ? 2 * s->matches_cap : 64;
        s->matches = dsp_xrealloc(s->matches, s->matches_cap * sizeof *s->matches);
    }
    s->matches[s->nmatches].start = start;
    s->matches[s->nmatches].end = end;
    s->matches[s->nmatches].kind = kind;
    s->nmatches++;
}

/* Match an e-mail address around the '@' at index at; returns its end or 0
 * and sets *start. */
static size_t pii_email_at(const char *t, size_t len, size_t at, size_t *start)
{
    size_t b = at;
    while (b > 0 && pii_is_local_char(t[b - 1]))
        b--;
    while (b < at && t[b] == '.')
        b++;
    if (b == at || t[at - 1] == '.')
        return 0;

    size_t e = at + 1, labels = 0, last_label = 0;
    for (;;) {
        size_t ls = e;
        while (e < len && (pii_is_alnum(t[e]) || t[e] == '-'))
            e++;
        if (e == ls)
            break;
        labels++;
        last_label = ls;
        if (e + 1 < len && t[e] == '.' && pii_is_alnum(t[e + 1]))
            e++;
        else
            break;
    }
    if (labels < 2)
        return 0;
    size_t tld_len = e - last_label;
    if (tld_len < 2)
        return 0;
    for (size_t i = last_label; i < e; i++)
        if (!pii_is_alpha(t[i]))
            return 0;
    *start = b;
    return e;
}

/* 1 when the word before position i (skipping spaces and a colon) is one
 * that introduces a version or a serial number rather than an address or a
 * phone number. */
static int pii_after_number_word(const char *t, size_t i)
{
    static const char *const words[] = {"version", "ver", "release", "build", "v",
                                        "isbn",    "issn", NULL};
    size_t e = i;
    while (e > 0 && (t[e - 1] == ' ' || t[e - 1] == ':' || t[e - 1] == '\t'))
        e--;
    size_t b = e;
    while (b > 0 && pii_is_alpha(t[b - 1]))
        b--;
    if (b == e || e - b > 7)
        return 0;
    for (int k = 0; words[k]; k++)
        if (strlen(words[k]) == e - b && strncasecmp(words[k], t + b, e - b) == 0)
            return 1;
    return 0;
}

/* IPv4 at i; returns the end or 0. */
static size_t pii_ipv4_at(const char *t, size_t len, size_t i)
{
    size_t p = i;
    for (int octet = 0; octet < 4; octet++) {
        size_t b = p;
        unsigned value = 0;
        while (p < len && pii_is_digit(t[p]) && p - b < 4) {
            value = value * 10 + (unsigned)(t[p] - '0');
            p++;
        }
        size_t n = p - b;
        if (n == 0 || n > 3 || value > 255 || (n > 1 && t[b] == '0'))
            return 0;
        if (octet < 3) {
            if (p >= len || t[p] != '.')
                return 0;
            p++;
        }
    }
    if (p < len && (pii_is_alnum(t[p]) || t[p] == '_'))
        return 0;
    if (p + 1 < len && (t[p] == '.' || t[p] == '-') && pii_is_digit(t[p + 1]))
        return 0;
    if (pii_after_number_word(t, i))
        return 0;
    return p;
}

/* IPv6 at i; returns the end or 0. */
static size_t pii_ipv6_at(const char *t, size_t len, size_t i)
{
    size_t e = i, colons = 0;
    while (e < len && e - i <= 45 && (pii_is_hex(t[e]) || t[e] == ':' || t[e] == '.')) {
        colons += t[e] == ':';
        e++;
    }
    if (colons < 2 || e - i > 45)
        return 0;
    while (e > i && (t[e - 1] == '.' || (t[e - 1] == ':' && !(e - i >= 2 && t[e - 2] == ':'))))
        e--;
    if (e < len && (pii_is_alnum(t[e]) || t[e] == '_'))
        return 0;

    char buf[48];
    size_t n = e - i;
    memcpy(buf, t + i, n);
    buf[n] = '\0';
    int digits = 0, groups = 1, compressed = strstr(buf, "::") != NULL;
    for (size_t k = 0; k < n; k++) {
        digits |= pii_is_digit(buf[k]);
        groups += buf[k] == ':';
    }
    if (!digits || (!compressed && groups < 8))
        return 0;
    unsigned char addr[16];
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return 0;
    return e;
}

/* Phone number at i; returns the end or 0. */
static size_t pii_phone_at(const char *t, size_t len, size_t i)
{
    int groups[16], ngroups = 0, total = 0, plus = 0, paren = 0;
    char seps[16];
    size_t p = i;

    if (t[p] == '+') {
        plus = 1;
        p++;
        /* A country code before an area code in brackets: "+1 (415) ...". */
        size_t b = p;
        while (p < len && p - b < 3 && pii_is_digit(t[p]))
            p++;
        if (p > b && p + 1 < len && t[p] == ' ' && t[p + 1] == '(') {
            groups[ngroups] = (int)(p - b);
            seps[ngroups++] = ' ';
            total += (int)(p - b);
            p++;
        } else {
            p = b;
        }
    }
    if (p < len && t[p] == '(') {
        size_t b = ++p;
        while (p < len && pii_is_digit(t[p]))
            p++;
        if (p >= len || t[p] != ')' || p - b < 2 || p - b > 4)
            return 0;
        groups[ngroups] = (int)(p - b);
        seps[ngroups++] = ')';
        total += (int)(p - b);
        paren = 1;
        p++;
        if (p < len && t[p] == ' ')
            p++;
    }
    for (;;) {
        size_t b = p;
        while (p < len && pii_is_digit(t[p]))
            p++;
        if (p == b)
            return 0;
        if (ngroups == 16)
            return 0;
        groups[ngroups] = (int)(p - b);
        total += (int)(p - b);
        seps[ngroups] = 0;
        if (total > 15)
            return 0;
        if (p + 1 < len && (t[p] == ' ' || t[p] == '-' || t[p] == '.') && pii_is_digit(t[p + 1])) {
            seps[ngroups++] = t[p];
            p++;
            continue;
        }
        ngroups++;
        break;
    }
    if (total < 7 || total > 15)
        return 0;
    if (p < len && (pii_is_alnum(t[p]) || t[p] == '_'))
        return 0;
    if (p + 1 < len && (t[p] == '.' || t[p] == '-' || t[p] == '/') && pii_is_digit(t[p + 1]))
        return 0;

    /* Separators between digit groups, ignoring the bracket group. */
    int first = paren ? 1 : 0;
    char sep = 0;
    int mixed = 0;
    for (int g = first; g < ngroups - 1; g++) {
        if (sep && seps[g] != sep)
            mixed = 1;
        sep = seps[g];
    }
    int n = ngroups - first;
    const int *gr = groups + first;

    if (pii_after_number_word(t, i))
        return 0;
    if (n == 3 && !mixed && ((gr[0] == 4 && gr[1] == 2 && gr[2] == 2) ||
                             (gr[0] == 2 && gr[1] == 2 && gr[2] == 4)))
        return 0; /* a date */
    if (plus)
        return p;
    if (paren && n >= 1 && n <= 3 && gr[n - 1] >= 4)
        return p;
    if (n == 3 && !mixed && gr[0] == 3 && gr[1] == 3 && gr[2] == 4)
        return p;
    if (n == 2 && sep == '-' && gr[0] == 3 && gr[1] == 4)
        return p;
    if (n >= 2 && !mixed && (sep == ' ' || sep == '-') && t[i] == '0' && gr[0] >= 2 &&
        gr[0] <= 5 && total >= 9)
        return p;
    return 0;
}

static void pii_scan(pii_state *s, const char *t, size_t len)
{
    s->nmatches = 0;

    /* E-mail addresses first, so the scan below can skip them. */
    size_t nemail = 0;
    if (s->enabled[PII_EMAIL]) {
        const char *p = t, *end = t + len;
        while ((p = memchr(p, '@', (size_t)(end - p))) != NULL) {
            size_t start, at = (size_t)(p - t);
            size_t e = pii_email_at(t, len, at, &start);
            if (e && (s->nmatches == 0 || start >= s->matches[s->nmatches - 1].end)) {
                pii_add(s, start, e, PII_EMAIL);
                p = t + e;
            } else {
                p++;
            }
        }
        nemail = s->nmatches;
    }

    if (!s->enabled[PII_IPV4] && !s->enabled[PII_PHONE])
        return;
    size_t next_email = 0;
    for (size_t i = 0; i < len; i++) {
        if (next_email < nemail && i >= s->matches[next_email].start) {
            i = s->matches[next_email++].end - 1;
            continue;
        }
        char c = t[i];
        if (!(s->byte_class[(unsigned char)c] & PII_STARTS))
            continue;
        if (i > 0 && (s->byte_class[(unsigned char)t[i - 1]] & PII_JOINS))
            continue;
        size_t limit = next_email < nemail ? s->matches[next_email].start : len;
        size_t e = 0;
        int kind = -1;
        if (s->enabled[PII_IPV4] && pii_is_digit(c) && (e = pii_ipv4_at(t, limit, i)) != 0)
            kind = PII_IPV4;
        else if (s->enabled[PII_IPV6] && (e = pii_ipv6_at(t, limit, i)) != 0)
            kind = PII_IPV6;
        else if (s->enabled[PII_PHONE] && (pii_is_digit(c) || c == '+' || c == '(') &&
                 (e = pii_phone_at(t, limit, i)) != 0)
            kind = PII_PHONE;
        if (kind >= 0) {
            pii_add(s, i, e, kind);
            i = e - 1;
        }
    }
}

static int pii_match_cmp(const void *a, const void *b)
{
    const pii_match *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static dsp_status pii_process(void *state, dsp_batch *b, unsigned char *keep, dsp_op_counters *c,
                              dsp_err *err)
{
    (void)err;
    pii_state *s = state;

    for (size_t i = 0; i < b->n; i++) {
        if (!keep[i])
            continue;
        dsp_doc *d = &b->docs[i];
        size_t len;
        const char *text = dsp_op_doc_text(b, d, &len);
        pii_scan(s, text, len);
        if (s->nmatches == 0)
            continue;

        qsort(s->matches, s->nmatches, sizeof *s->matches, pii_match_cmp);
        dsp_buf_reset(&s->out);
        size_t pos = 0;
        for (size_t m = 0; m < s->nmatches; m++) {
            const pii_match *x = &s->matches[m];
            dsp_buf_append(&s->out, text + pos, x->start - pos);
            dsp_buf_append_str(&s->out, s->placeholder[x->kind]);
            pos = x->end;
            c->extra[x->kind]++;
        }
        dsp_buf_append(&s->out, text + pos, len - pos);
        dsp_doc_set_text(b, d, s->out.data, s->out.len);
    }
    return DSP_OK;
}

const dsp_op_def dsp_op_pii_redact_def = {
    .name = "pii_redact",
    .summary = "replace e-mail addresses, IP addresses and phone numbers with placeholders",
    .wide = 0,
    .options = pii_options,
    .reasons = pii_reasons,
    .extra_names = pii_extra,
    .create = pii_create,
    .process = pii_process,
    .finish = NULL,
    .destroy = pii_destroy,
};
