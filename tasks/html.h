/*
 * html.h - HTML to plain text for WARC response records.
 *
 * The input is converted from its declared charset to UTF-8 with iconv,
 * parsed with gumbo (an HTML5 parser, which also decodes entities), and its
 * visible text is written with the line structure kept: block elements and
 * <br> end a line, and runs of white space collapse to one space. Elements
 * that hold no reading text (head, script, style, noscript, template, svg,
 * math, iframe, object, canvas, select, textarea, button) are dropped.
 */
#ifndef DSP_HTML_H
#define DSP_HTML_H

#include <stddef.h>

#include "../core/buf.h"
#include "../core/err.h"

typedef struct dsp_html_converter dsp_html_converter;

dsp_html_converter *dsp_html_new(void);
void dsp_html_free(dsp_html_converter *c);

/*
 * Convert an HTML document to text, replacing out's contents. charset is the
 * one declared by the HTTP Content-Type header, or NULL; without it the
 * charset comes from <meta charset> or <meta http-equiv>, else UTF-8. Bytes
 * that are invalid in the charset become U+FFFD. An unknown charset name is
 * read as UTF-8 with invalid bytes replaced.
 */
dsp_status dsp_html_to_text(dsp_html_converter *c, const char *html, size_t len,
                            const char *charset, dsp_buf *out, dsp_err *err);

/* Find the charset declared by a <meta> tag in the first 4 KiB of html.
 * Writes it lower-cased to out and returns 1, or returns 0. */
int dsp_html_sniff_charset(const char *html, size_t len, char *out, size_t out_size);

#endif
