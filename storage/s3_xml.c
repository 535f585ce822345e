/*
 * s3_xml.c - just enough XML for S3 responses.
 *
 * S3 responses are small, flat, machine-written documents (ListBucketResult,
 * Error, DeleteResult, InitiateMultipartUploadResult, ...), so a scan for
 * <Tag>...</Tag> plus entity decoding is sufficient. It does not handle
 * CDATA, comments inside elements or attributes on the elements it reads,
 * none of which S3, Ceph RGW or MinIO emit in these documents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_impl.h"

int dsp_s3_xml_next(const char **pos, const char *end, const char *tag, const char **vstart,
                    const char **vend)
{
    size_t tlen = strlen(tag);
    const char *p = *pos;

    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || (size_t)(end - lt) < tlen + 2)
            return 0;
        const char *name = lt + 1;
        if (strncmp(name, tag, tlen) != 0 || (name[tlen] != '>' && name[tlen] != '/' && name[tlen] != ' ')) {
            p = lt + 1;
            continue;
        }
        const char *gt = memchr(name, '>', (size_t)(end - name));
        if (!gt)
            return 0;
        if (gt[-1] == '/') { /* <Tag/> */
            *vstart = *vend = gt + 1;
            *pos = gt + 1;
            return 1;
        }
        /* Find the matching close tag; these elements do not nest in themselves
         * except Contents/Error blocks, which never contain their own name. */
        const char *q = gt + 1;
        while (q < end) {
            const char *c = memchr(q, '<', (size_t)(end - q));
            if (!c || (size_t)(end - c) < tlen + 3)
                return 0;
            if (c[1] == '/' && strncmp(c + 2, tag, tlen) == 0 && c[2 + tlen] == '>') {
                *vstart = gt + 1;
                *vend = c;
                *pos = c + 3 + tlen;
                return 1;
            }
            q = c + 1;
        }
        return 0;
    }
    return 0;
}

static int xml_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void xml_append_utf8(dsp_buf *out, unsigned long cp)
{
    char b[4];
    if (cp < 0x80) {
        b[0] = (char)cp;
        dsp_buf_append(out, b, 1);
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        dsp_buf_append(out, b, 2);
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        dsp_buf_append(out, b, 3);
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        dsp_buf_append(out, b, 4);
    }
}

void dsp_s3_xml_text(const char *start, const char *end, dsp_buf *out)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};

    dsp_buf_reset(out);
    dsp_buf_append(out, "", 0);
    for (const char *p = start; p < end; p++) {
        if (*p != '&') {
            dsp_buf_append_char(out, *p);
            continue;
        }
        int done = 0;
        for (size_t i = 0; i < sizeof named / sizeof named[0] && !done; i++) {
            size_t n = strlen(named[i].name);
            if ((size_t)(end - p - 1) >= n && strncmp(p + 1, named[i].name, n) == 0) {
                dsp_buf_append_char(out, named[i].c);
                p += n;
                done = 1;
            }
        }
        if (!done && p + 2 < end && p[1] == '#') {
            const char *q = p + 2;
            int base = 10;
            if (*q == 'x' || *q == 'X') {
                base = 16;
                q++;
            }
            unsigned long cp = 0;
            const char *digits = q;
            while (q < end && *q != ';' && xml_hex(*q) >= 0 && (base == 16 || xml_hex(*q) < 10)) {
                cp = cp * (unsigned long)base + (unsigned long)xml_hex(*q);
                q++;
            }
            if (q < end && *q == ';' && q > digits && cp <= 0x10FFFF) {
                xml_append_utf8(out, cp);
                p = q;
                done = 1;
            }
        }
        if (!done)
            dsp_buf_append_char(out, '&');
    }
}

void dsp_s3_xml_escape(dsp_buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': dsp_buf_append_str(out, "&amp;"); break;
        case '<': dsp_buf_append_str(out, "&lt;"); break;
        case '>': dsp_buf_append_str(out, "&gt;"); break;
        case '"': dsp_buf_append_str(out, "&quot;"); break;
        case '\'': dsp_buf_append_str(out, "&apos;"); break;
        case '\r': dsp_buf_append_str(out, "&#13;"); break;
        case '\n': dsp_buf_append_str(out, "&#10;"); break;
        case '\t': dsp_buf_append_str(out, "&#9;"); break;
        default: dsp_buf_append_char(out, *s);
        }
    }
}

void dsp_s3_url_decode(char *s)
{
    char *w = s;
    for (char *p = s; *p; p++) {
        if (*p == '%' && xml_hex(p[1]) >= 0 && xml_hex(p[2]) >= 0) {
            *w++ = (char)(xml_hex(p[1]) * 16 + xml_hex(p[2]));
            p += 2;
        } else if (*p == '+') {
            *w++ = ' ';
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

int dsp_s3_xml_get(const char *start, const char *end, const char *tag, char *out, size_t cap)
{
    const char *vs, *ve, *pos = start;
    if (!dsp_s3_xml_next(&pos, end, tag, &vs, &ve)) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    dsp_buf b = DSP_BUF_INIT;
    dsp_s3_xml_text(vs, ve, &b);
    snprintf(out, cap, "%s", b.data ? b.data : "");
    dsp_buf_free(&b);
    return 1;
}
