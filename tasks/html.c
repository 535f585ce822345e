/*
 * html.c - visible text of an HTML page, with its line structure.
 *
 * Steps: pick the charset (HTTP header, else <meta>, else UTF-8), convert
 * to UTF-8 with iconv, parse with gumbo, then walk the tree iteratively (so
 * deeply nested pages cannot overflow the C stack) and write text nodes.
 * gumbo replaces invalid UTF-8 with U+FFFD, so the output is always valid
 * UTF-8. One iconv descriptor is cached per converter for the last charset.
 *
 * NOTE: gumbo allocates its tree per document, so HTML conversion is the one
 * place on the data path that allocates per record. Its parse time also
 * grows faster than linearly with nesting depth (5,000 unclosed levels take
 * about 0.2 s), because scope checks scan the stack of open elements.
 */
#include <ctype.h>
#include <stdio.h>
#include <errno.h>
#include <gumbo.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/util.h"
#include "html.h"

#define SNIFF_BYTES 4096

struct dsp_html_converter {
    char charset[64]; /* charset of the cached descriptor; "" when none */
    iconv_t cd;
    dsp_buf utf8;     /* converted input */
    /* Traversal stack of the tree walk, reused across documents. */
    struct walk_frame *stack;
    size_t stack_cap;
};

struct walk_frame {
    const GumboNode *node;
    unsigned int next_child;
};

dsp_html_converter *dsp_html_new(void)
{
    dsp_html_converter *c = dsp_xcalloc(1, sizeof *c);
    c->cd = (iconv_t)-1;
    return c;
}

void dsp_html_free(dsp_html_converter *c)
{
    if (!c)
        return;
    if (c->cd != (iconv_t)-1)
        iconv_close(c->cd);
    dsp_buf_free(&c->utf8);
    free(c->stack);
    free(c);
}

/* ---- charset ---- */

static int is_charset_char(int ch)
{
    return isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == ':';
}

int dsp_html_sniff_charset(const char *html, size_t len, char *out, size_t out_size)
{
    size_t n = len < SNIFF_BYTES ? len : SNIFF_BYTES;
    const char *p = html;
    const char *end = html + n;
    while (p < end) {
        const char *tag = memchr(p, '<', (size_t)(end - p));
        if (!tag || end - tag < 6)
            return 0;
        p = tag + 1;
        if (strncasecmp(p, "meta", 4) != 0 || !(isspace((unsigned char)p[4]) || p[4] == '/'))
            continue;
        const char *close = memchr(p, '>', (size_t)(end - p));
        const char *tag_end = close ? close : end;
        for (const char *q = p; q + 7 <= tag_end; q++) {
            if (strncasecmp(q, "charset", 7) != 0)
                continue;
            const char *v = q + 7;
            while (v < tag_end && isspace((unsigned char)*v))
                v++;
            if (v >= tag_end || *v != '=')
                continue;
            v++;
            while (v < tag_end && (isspace((unsigned char)*v) || *v == '"' || *v == '\''))
                v++;
            size_t k = 0;
            while (v < tag_end && is_charset_char((unsigned char)*v) && k + 1 < out_size)
                out[k++] = (char)tolower((unsigned char)*v++);
            out[k] = '\0';
            if (k > 0)
                return 1;
        }
        p = tag_end;
    }
    return 0;
}

/* Map a declared name to the one iconv should use, following what browsers
 * do for the common labels (WHATWG Encoding Standard: gb2312 decodes as GBK,
 * latin1 as windows-1252). Returns NULL for UTF-8. */
static const char *iconv_name(const char *declared)
{
    if (!strcasecmp(declared, "utf-8") || !strcasecmp(declared, "utf8") ||
        !strcasecmp(declared, "unicode-1-1-utf-8"))
        return NULL;
    if (!strcasecmp(declared, "gb2312") || !strcasecmp(declared, "gbk") ||
        !strcasecmp(declared, "x-gbk"))
        return "GB18030";
    if (!strcasecmp(declared, "iso-8859-1") || !strcasecmp(declared, "latin1") ||
        !strcasecmp(declared, "us-ascii") || !strcasecmp(declared, "ascii"))
        return "WINDOWS-1252";
    return declared;
}

/* Convert len bytes from charset to UTF-8 into c->utf8. Returns 0, or -1
 * when iconv does not know the charset. */
static int convert_to_utf8(dsp_html_converter *c, const char *charset, const char *in, size_t len)
{
    if (strcasecmp(c->charset, charset) != 0) {
        if (c->cd != (iconv_t)-1)
            iconv_close(c->cd);
        c->charset[0] = '\0';
        c->cd = iconv_open("UTF-8", charset);
        if (c->cd == (iconv_t)-1)
            return -1;
        snprintf(c->charset, sizeof c->charset, "%s", charset);
    } else {
        iconv(c->cd, NULL, NULL, NULL, NULL);
    }

    dsp_buf_reset(&c->utf8);
    dsp_buf_reserve(&c->utf8, len * 2 + 16);
    char *src = (char *)in;
    size_t src_left = len;
    while (src_left > 0) {
        char *dst = c->utf8.data + c->utf8.len;
        size_t dst_left = c->utf8.cap - c->utf8.len - 1;
        size_t rc = iconv(c->cd, &src, &src_left, &dst, &dst_left);
        c->utf8.len = (size_t)(dst - c->utf8.data);
        if (rc != (size_t)-1)
            break;
        if (errno == E2BIG) {
            dsp_buf_reserve(&c->utf8, src_left * 2 + 64);
            continue;
        }
        /* EILSEQ or EINVAL: replace the byte and carry on. */
        dsp_buf_append(&c->utf8, "\xef\xbf\xbd", 3);
        src++;
        src_left--;
        iconv(c->cd, NULL, NULL, NULL, NULL);
    }
    c->utf8.data[c->utf8.len] = '\0';
    return 0;
}

/* ---- text output ---- */

typedef struct {
    dsp_buf *out;
    int pending_space;
    int pending_newline;
    int pre_depth;
} text_writer;

/* Write the separator that collapsed white space or a line break left. */
static void flush_pending(text_writer *w)
{
    if (w->out->len > 0) {
        if (w->pending_newline)
            dsp_buf_append_char(w->out, '\n');
        else if (w->pending_space)
            dsp_buf_append_char(w->out, ' ');
    }
    w->pending_space = w->pending_newline = 0;
}

/* Append text with white space collapsed. Inside <pre>, newlines end lines
 * and spaces and tabs are kept as they are, so code keeps its indentation. */
static void emit_text(text_writer *w, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (w->pre_depth > 0) {
            if (ch == '\n') {
                w->pending_newline = 1;
                continue;
            }
            if (ch == ' ' || ch == '\t') {
                flush_pending(w);
                dsp_buf_append_char(w->out, ch);
                continue;
            }
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f') {
            w->pending_space = 1;
            continue;
        }
        flush_pending(w);
        dsp_buf_append_char(w->out, ch);
    }
}

static void line_break(text_writer *w)
{
    w->pending_newline = 1;
}

/* ---- tree walk ---- */

static int is_dropped(GumboTag tag)
{
    switch (tag) {
    case GUMBO_TAG_HEAD:
    case GUMBO_TAG_SCRIPT:
    case GUMBO_TAG_STYLE:
    case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_SVG:
    case GUMBO_TAG_MATH:
    case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_OBJECT:
    case GUMBO_TAG_EMBED:
    case GUMBO_TAG_CANVAS:
    case GUMBO_TAG_SELECT:
    case GUMBO_TAG_TEXTAREA:
    case GUMBO_TAG_BUTTON:
    case GUMBO_TAG_TITLE:
        return 1;
    default:
        return 0;
    }
}

static int is_block(GumboTag tag)
{
    switch (tag) {
    case GUMBO_TAG_ADDRESS: case GUMBO_TAG_ARTICLE: case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_CAPTION: case GUMBO_TAG_CENTER:
    case GUMBO_TAG_DD: case GUMBO_TAG_DETAILS: case GUMBO_TAG_MENU:
    case GUMBO_TAG_DIV: case GUMBO_TAG_DL: case GUMBO_TAG_DT:
    case GUMBO_TAG_FIELDSET: case GUMBO_TAG_FIGCAPTION: case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FOOTER: case GUMBO_TAG_FORM: case GUMBO_TAG_H1:
    case GUMBO_TAG_H2: case GUMBO_TAG_H3: case GUMBO_TAG_H4:
    case GUMBO_TAG_H5: case GUMBO_TAG_H6: case GUMBO_TAG_HEADER:
    case GUMBO_TAG_HGROUP: case GUMBO_TAG_HR: case GUMBO_TAG_LEGEND:
    case GUMBO_TAG_LI: case GUMBO_TAG_MAIN: case GUMBO_TAG_NAV:
    case GUMBO_TAG_OL: case GUMBO_TAG_P: case GUMBO_TAG_PRE:
    case GUMBO_TAG_SECTION: case GUMBO_TAG_SUMMARY: case GUMBO_TAG_TABLE:
    case GUMBO_TAG_TBODY: case GUMBO_TAG_TFOOT: case GUMBO_TAG_THEAD:
    case GUMBO_TAG_TR: case GUMBO_TAG_UL: case GUMBO_TAG_BODY:
        return 1;
    default:
        return 0;
    }
}

static void push_frame(dsp_html_converter *c, size_t *depth, const GumboNode *node)
{
    if (*depth == c->stack_cap) {
        c->stack_cap = c->stack_cap ? c->stack_cap * 2 : 64;
        c->stack = dsp_xrealloc(c->stack, c->stack_cap * sizeof *c->stack);
    }
    c->stack[*depth].node = node;
    c->stack[*depth].next_child = 0;
    (*depth)++;
}

static void walk(dsp_html_converter *c, const GumboNode *root, text_writer *w)
{
    size_t depth = 0;
    push_frame(c, &depth, root);
    while (depth > 0) {
        struct walk_frame *f = &c->stack[depth - 1];
        const GumboNode *node = f->node;
        const GumboVector *children = NULL;
        if (node->type == GUMBO_NODE_DOCUMENT)
            children = &node->v.document.children;
        else if (node->type == GUMBO_NODE_ELEMENT || node->type == GUMBO_NODE_TEMPLATE)
            children = &node->v.element.children;

        if (f->next_child == 0 && node->type == GUMBO_NODE_ELEMENT) {
            GumboTag tag = node->v.element.tag;
            if (is_block(tag) || tag == GUMBO_TAG_BR)
                line_break(w);
            else if (tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH)
                w->pending_space = 1;
            if (tag == GUMBO_TAG_PRE)
                w->pre_depth++;
        }

        if (children && f->next_child < children->length) {
            const GumboNode *child = children->data[f->next_child++];
            if (child->type == GUMBO_NODE_TEXT || child->type == GUMBO_NODE_CDATA ||
                child->type == GUMBO_NODE_WHITESPACE) {
                const char *t = child->v.text.text;
                emit_text(w, t, strlen(t));
            } else if (child->type == GUMBO_NODE_ELEMENT) {
                if (!is_dropped(child->v.element.tag))
                    push_frame(c, &depth, child);
            }
            continue;
        }

        if (node->type == GUMBO_NODE_ELEMENT) {
            GumboTag tag = node->v.element.tag;
            if (is_block(tag))
                line_break(w);
            if (tag == GUMBO_TAG_PRE)
                w->pre_depth--;
        }
        depth--;
    }
}

dsp_status dsp_html_to_text(dsp_html_converter *c, const char *html, size_t len,
                            const char *charset, dsp_buf *out, dsp_err *err)
{
    char sniffed[64];
    const char *declared = charset;
    if (!declared || !*declared)
        declared = dsp_html_sniff_charset(html, len, sniffed, sizeof sniffed) ? sniffed : NULL;

    const char *input = html;
    size_t input_len = len;
    const char *name = declared ? iconv_name(declared) : NULL;
    if (name && convert_to_utf8(c, name, html, len) == 0) {
        input = c->utf8.data;
        input_len = c->utf8.len;
    }

    /* Parse errors are not recorded: gumbo 0.10 copies the stack of open
     * elements into each error, which is quadratic on deeply nested pages. */
    GumboOptions options = kGumboDefaultOptions;
    options.max_errors = 0;
    GumboOutput *doc = gumbo_parse_with_options(&options, input, input_len);
    if (!doc)
        return dsp_err_set(err, DSP_ENOMEM, "gumbo failed to parse %zu bytes of HTML", len);
    dsp_buf_reset(out);
    text_writer w = {out, 0, 0, 0};
    walk(c, doc->document, &w);
    gumbo_destroy_output(&options, doc);
    if (out->data)
        out->data[out->len] = '\0';
    return DSP_OK;
}
