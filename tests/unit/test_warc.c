/* Tests of the WARC reader (tasks/warc.c) and HTML to text conversion
 * (tasks/html.c), on real Common Crawl and wget WARC files and on small
 * hand-written records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../core/util.h"
#include "../../storage/store.h"
#include "../../tasks/html.h"
#include "../../tasks/warc.h"
#include "test.h"

#ifndef DSP_TEST_DATA
#define DSP_TEST_DATA "tests/data"
#endif

/* ---- helpers ---- */

typedef struct {
    char dir[64];
    dsp_store *store;
} temp_store;

static int temp_store_open(temp_store *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/dsp-warc-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    dsp_err err;
    return dsp_store_open(t->dir, NULL, &t->store, &err) == DSP_OK ? 0 : -1;
}

static void temp_store_close(temp_store *t)
{
    dsp_store_close(t->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", t->dir);
}

static int put(temp_store *t, const char *key, const void *data, size_t len)
{
    dsp_err err;
    return dsp_store_put(t->store, key, data, len, NULL, NULL, &err) == DSP_OK ? 0 : -1;
}

static void gzip_append(dsp_buf *out, const char *data, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t bound = deflateBound(&z, len) + 64;
    dsp_buf_reserve(out, bound);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)(out->data + out->len);
    z.avail_out = (uInt)bound;
    deflate(&z, Z_FINISH);
    out->len += bound - z.avail_out;
    deflateEnd(&z);
}

/* Append one WARC record with a correct Content-Length plus `length_error`. */
static void warc_record(dsp_buf *out, const char *type, const char *uri, const char *block,
                        long length_error)
{
    dsp_buf_printf(out,
                   "WARC/1.1\r\nWARC-Type: %s\r\nWARC-Record-ID: <urn:uuid:%s-%zu>\r\n"
                   "WARC-Date: 2024-01-02T03:04:05Z\r\nWARC-Target-URI: %s\r\n"
                   "Content-Length: %ld\r\n\r\n",
                   type, type, out->len, uri, (long)strlen(block) + length_error);
    dsp_buf_append_str(out, block);
    dsp_buf_append_str(out, "\r\n\r\n");
}

typedef struct {
    dsp_status status;
    dsp_err err;
    dsp_warc_stats stats;
    size_t ndocs;
    char *lines[64];
    char *texts[64];
} warc_result;

static void read_warc(dsp_store *s, const char *key, int64_t max_record, warc_result *res)
{
    memset(res, 0, sizeof *res);
    dsp_warc_opts opts = {s, key, max_record, 0, NULL, NULL, NULL, NULL};
    dsp_warc_reader *r = NULL;
    res->status = dsp_warc_open(&opts, &r, &res->err);
    if (res->status != DSP_OK)
        return;
    dsp_batch b;
    dsp_batch_init(&b, "text");
    int eof = 0;
    while (!eof) {
        /* Small batches so that a read stops and resumes between records. */
        res->status = dsp_warc_next(r, &b, 5, 1u << 20, &eof, &res->err);
        if (res->status != DSP_OK)
            break;
        for (size_t i = 0; i < b.n && res->ndocs < 64; i++) {
            res->lines[res->ndocs] = dsp_xstrndup(b.docs[i].line, b.docs[i].line_len);
            res->texts[res->ndocs] = dsp_xstrndup(b.docs[i].text, b.docs[i].text_len);
            res->ndocs++;
        }
        dsp_batch_reset(&b);
    }
    res->stats = *dsp_warc_get_stats(r);
    dsp_batch_free(&b);
    dsp_warc_close(r);
}

static void warc_result_free(warc_result *res)
{
    for (size_t i = 0; i < res->ndocs; i++) {
        free(res->lines[i]);
        free(res->texts[i]);
    }
}

/* Index of the document whose line contains needle, or -1. */
static int find_doc(const warc_result *res, const char *needle)
{
    for (size_t i = 0; i < res->ndocs; i++)
        if (strstr(res->lines[i], needle))
            return (int)i;
    return -1;
}

/* ---- HTML ---- */

static void test_html_structure(void)
{
    dsp_html_converter *c = dsp_html_new();
    dsp_buf out = DSP_BUF_INIT;
    dsp_err err;
    const char *html =
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<script>var x = 'hidden';</script><noscript>enable js</noscript>"
        "<h1>Title  here</h1><p>First   paragraph\n with <b>bold</b> text.</p>"
        "<p>Line one<br>Line two &amp; &lt;three&gt; &eacute;</p>"
        "<svg><text>vector</text></svg><template><p>tpl</p></template>"
        "<ul><li>item a</li><li>item b</li></ul>"
        "<table><tr><td>c1</td><td>c2</td></tr></table></body></html>";
    REQUIRE(dsp_html_to_text(c, html, strlen(html), NULL, &out, &err) == DSP_OK);
    CHECK_EQ_STR(out.data, "Title here\nFirst paragraph with bold text.\nLine one\nLine two & "
                           "<three> \xc3\xa9\nitem a\nitem b\nc1 c2");
    CHECK(strstr(out.data, "hidden") == NULL);
    CHECK(strstr(out.data, "color") == NULL);
    CHECK(strstr(out.data, "vector") == NULL);
    CHECK(strstr(out.data, "tpl") == NULL);
    CHECK(strstr(out.data, "enable js") == NULL);

    const char *pre = "<p>code:</p><pre>if x:\n    y()\n</pre><p>after</p>";
    REQUIRE(dsp_html_to_text(c, pre, strlen(pre), NULL, &out, &err) == DSP_OK);
    CHECK_EQ_STR(out.data, "code:\nif x:\n    y()\nafter");
    dsp_buf_free(&out);
    dsp_html_free(c);
}

static void test_html_charsets(void)
{
    dsp_html_converter *c = dsp_html_new();
    dsp_buf out = DSP_BUF_INIT;
    dsp_err err;
    /* "Привет" in windows-1251, declared by the HTTP header. */
    const char cp1251[] = "<p>\xcf\xf0\xe8\xe2\xe5\xf2</p>";
    REQUIRE(dsp_html_to_text(c, cp1251, strlen(cp1251), "windows-1251", &out, &err) == DSP_OK);
    CHECK_EQ_STR(out.data, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");

    /* The same bytes declared by <meta http-equiv>. */
    const char meta[] = "<html><head><meta http-equiv=\"Content-Type\" "
                        "content=\"text/html; charset=windows-1251\"></head>"
                        "<body>\xcf\xf0\xe8\xe2\xe5\xf2</body></html>";
    REQUIRE(dsp_html_to_text(c, meta, strlen(meta), NULL, &out, &err) == DSP_OK);
    CHECK_EQ_STR(out.data, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");

    /* "中文" in GB2312, declared by <meta charset>. */
    const char gb[] = "<meta charset='gb2312'><p>\xd6\xd0\xce\xc4</p>";
    REQUIRE(dsp_html_to_text(c, gb, strlen(gb), NULL, &out, &err) == DSP_OK);
    CHECK_EQ_STR(out.data, "\xe4\xb8\xad\xe6\x96\x87");

    /* Invalid UTF-8 without a declaration becomes U+FFFD. */
    const char bad[] = "<p>a\xff" "b</p>";
    REQUIRE(dsp_html_to_text(c, bad, strlen(bad), NULL, &out, &err) == DSP_OK);
    CHECK_EQ_STR(out.data, "a\xef\xbf\xbd" "b");

    /* An unknown charset name falls back to UTF-8. */
    const char unknown[] = "<p>caf\xc3\xa9</p>";
    REQUIRE(dsp_html_to_text(c, unknown, strlen(unknown), "x-no-such-charset", &out, &err) ==
            DSP_OK);
    CHECK_EQ_STR(out.data, "caf\xc3\xa9");

    char name[32];
    CHECK(dsp_html_sniff_charset("<META CHARSET=\"UTF-8\">", 22, name, sizeof name));
    CHECK_EQ_STR(name, "utf-8");
    CHECK(!dsp_html_sniff_charset("<p>charset=x</p>", 16, name, sizeof name));
    dsp_buf_free(&out);
    dsp_html_free(c);
}

static void test_html_deep_nesting(void)
{
    dsp_html_converter *c = dsp_html_new();
    dsp_buf html = DSP_BUF_INIT, out = DSP_BUF_INIT;
    dsp_err err;
    for (int i = 0; i < 5000; i++)
        dsp_buf_append_str(&html, "<div><span>");
    dsp_buf_append_str(&html, "deep");
    int64_t start = dsp_mono_ms();
    REQUIRE(dsp_html_to_text(c, html.data, html.len, NULL, &out, &err) == DSP_OK);
    int64_t elapsed = dsp_mono_ms() - start;
    CHECK_EQ_STR(out.data, "deep");
    /* With parse errors recorded, gumbo 0.10 took minutes here. */
    CHECKF(elapsed < 10000, "took %lld ms", (long long)elapsed);
    dsp_buf_free(&html);
    dsp_buf_free(&out);
    dsp_html_free(c);
}

/* ---- WARC framing ---- */

static const char *HTML_RESPONSE =
    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    "<html><body><p>Hello WARC</p></body></html>";

static void test_warc_record_types(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf w = DSP_BUF_INIT;
    warc_record(&w, "warcinfo", "", "software: test\r\n", 0);
    warc_record(&w, "request", "http://a.example/", "GET / HTTP/1.1\r\n\r\n", 0);
    warc_record(&w, "response", "http://a.example/", HTML_RESPONSE, 0);
    warc_record(&w, "response", "http://b.example/",
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\r\n<p>missing</p>", 0);
    warc_record(&w, "response", "http://c.example/",
                "HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4", 0);
    warc_record(&w, "response", "http://d.example/",
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n"
                "\r\n5\r\n<p>ch\r\n9\r\nunked</p>\r\n0\r\n\r\n",
                0);
    warc_record(&w, "metadata", "http://a.example/", "fetchTimeMs: 12\r\n", 0);
    warc_record(&w, "conversion", "http://e.example/", "Plain WET text\nsecond line", 0);

    /* Plain, one gzip member per record, and one member for the file. */
    REQUIRE(put(&t, "plain.warc", w.data, w.len) == 0);
    dsp_buf whole = DSP_BUF_INIT;
    gzip_append(&whole, w.data, w.len);
    REQUIRE(put(&t, "whole.warc.gz", whole.data, whole.len) == 0);
    dsp_buf per = DSP_BUF_INIT;
    const char *p = w.data;
    const char *end = w.data + w.len;
    while (p < end) {
        const char *next = strstr(p + 1, "WARC/1.1\r\n");
        size_t n = next ? (size_t)(next - p) : (size_t)(end - p);
        gzip_append(&per, p, n);
        p += n;
    }
    REQUIRE(put(&t, "per-record.warc.gz", per.data, per.len) == 0);

    const char *keys[] = {"plain.warc", "whole.warc.gz", "per-record.warc.gz"};
    for (int k = 0; k < 3; k++) {
        warc_result res;
        read_warc(t.store, keys[k], 0, &res);
        CHECKF(res.status == DSP_OK, "%s: %s", keys[k], res.err.msg);
        CHECK_EQ_INT(res.ndocs, 3);
        CHECK_EQ_INT(res.stats.records, 3);
        CHECK_EQ_INT(res.stats.skipped, 5);
        if (res.ndocs == 3) {
            CHECK_EQ_STR(res.texts[0], "Hello WARC");
            CHECK_EQ_STR(res.texts[1], "chunked");
            CHECK_EQ_STR(res.texts[2], "Plain WET text\nsecond line");
            CHECK(strstr(res.lines[0], "\"url\":\"http://a.example/\"") != NULL);
            CHECK(strstr(res.lines[0], "\"date\":\"2024-01-02T03:04:05Z\"") != NULL);
            CHECK(strstr(res.lines[0], "\"id\":\"<urn:uuid:response-") != NULL);
            CHECK(strstr(res.lines[0], "\"text\":\"Hello WARC\"") != NULL);
        }
        warc_result_free(&res);
    }
    dsp_buf_free(&w);
    dsp_buf_free(&whole);
    dsp_buf_free(&per);
    temp_store_close(&t);
}

static void test_warc_wrong_length(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf w = DSP_BUF_INIT;
    warc_record(&w, "request", "http://a.example/", "GET / HTTP/1.1\r\n\r\n", 0);
    size_t bad_offset = w.len;
    warc_record(&w, "response", "http://a.example/", HTML_RESPONSE, -7);
    warc_record(&w, "conversion", "http://e.example/", "after", 0);
    REQUIRE(put(&t, "short.warc", w.data, w.len) == 0);

    warc_result res;
    read_warc(t.store, "short.warc", 0, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    CHECKF(strstr(res.err.msg, "short.warc") != NULL, "%s", res.err.msg);
    char at[64];
    snprintf(at, sizeof at, "at byte %zu", bad_offset);
    CHECKF(strstr(res.err.msg, at) != NULL, "%s (expected \"%s\")", res.err.msg, at);
    CHECKF(strstr(res.err.msg, "Content-Length") != NULL, "%s", res.err.msg);
    warc_result_free(&res);

    /* Too long: the block runs into the next record and then past the end. */
    dsp_buf_reset(&w);
    warc_record(&w, "response", "http://a.example/", HTML_RESPONSE, 40);
    REQUIRE(put(&t, "long.warc", w.data, w.len) == 0);
    read_warc(t.store, "long.warc", 0, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    CHECKF(strstr(res.err.msg, "long.warc") != NULL, "%s", res.err.msg);
    CHECKF(strstr(res.err.msg, "byte 0") != NULL, "%s", res.err.msg);
    warc_result_free(&res);

    /* Garbage where a version line should be. */
    REQUIRE(put(&t, "junk.warc", "HTTP/1.1 200 OK\r\n\r\n", 19) == 0);
    read_warc(t.store, "junk.warc", 0, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    CHECKF(strstr(res.err.msg, "not a WARC record") != NULL, "%s", res.err.msg);
    warc_result_free(&res);

    /* A truncated gzip member fails as a corrupt shard as well. */
    dsp_buf gz = DSP_BUF_INIT;
    dsp_buf_reset(&w);
    warc_record(&w, "conversion", "http://e.example/", "text", 0);
    gzip_append(&gz, w.data, w.len);
    REQUIRE(put(&t, "cut.warc.gz", gz.data, gz.len - 6) == 0);
    read_warc(t.store, "cut.warc.gz", 0, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    CHECKF(strstr(res.err.msg, "cut.warc.gz") != NULL, "%s", res.err.msg);
    warc_result_free(&res);
    dsp_buf_free(&gz);
    dsp_buf_free(&w);
    temp_store_close(&t);
}

/* Input in another format fails on its first bytes with "not a WARC
 * record", not as a record whose header block never ends. */
static void test_warc_not_warc_input(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char *jsonl = "{\"id\":\"a\",\"text\":\"one\"}\n{\"id\":\"b\",\"text\":\"two\"}\n";
    REQUIRE(put(&t, "docs.jsonl", jsonl, strlen(jsonl)) == 0);
    warc_result res;
    read_warc(t.store, "docs.jsonl", 0, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    char want[160];
    snprintf(want, sizeof want, "not a WARC record: expected 'WARC/1.x' at byte 0 of %s/docs.jsonl",
             t.dir);
    CHECKF(strstr(res.err.msg, want) != NULL, "%s", res.err.msg);
    CHECKF(strstr(res.err.msg, "header block") == NULL, "%s", res.err.msg);
    warc_result_free(&res);

    /* JSONL after a valid record is named at its own offset. */
    dsp_buf w = DSP_BUF_INIT;
    warc_record(&w, "conversion", "http://e.example/", "first", 0);
    size_t junk_offset = w.len;
    dsp_buf_append_str(&w, jsonl);
    REQUIRE(put(&t, "mixed.warc", w.data, w.len) == 0);
    read_warc(t.store, "mixed.warc", 0, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    snprintf(want, sizeof want, "not a WARC record: expected 'WARC/1.x' at byte %zu of", junk_offset);
    CHECKF(strstr(res.err.msg, want) != NULL, "%s", res.err.msg);
    warc_result_free(&res);

    /* A version line cut short is a truncated record, not another format. */
    dsp_buf_reset(&w);
    warc_record(&w, "conversion", "http://e.example/", "first", 0);
    dsp_buf_append_str(&w, "WARC/1");
    REQUIRE(put(&t, "cut.warc", w.data, w.len) == 0);
    read_warc(t.store, "cut.warc", 0, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    CHECKF(strstr(res.err.msg, "truncated WARC record") != NULL, "%s", res.err.msg);
    warc_result_free(&res);
    dsp_buf_free(&w);
    temp_store_close(&t);
}

static void test_warc_oversized_rejected(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf w = DSP_BUF_INIT, big = DSP_BUF_INIT;
    dsp_buf_append_str(&big, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>");
    for (int i = 0; i < 5000; i++)
        dsp_buf_append_str(&big, "word ");
    dsp_buf_append_str(&big, "</p>");
    warc_record(&w, "response", "http://big.example/", big.data, 0);
    warc_record(&w, "conversion", "http://e.example/", "small", 0);
    REQUIRE(put(&t, "big.warc", w.data, w.len) == 0);
    warc_result res;
    read_warc(t.store, "big.warc", 1000, &res);
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    CHECK_EQ_INT(res.ndocs, 1);
    CHECK_EQ_INT(res.stats.rejected, 1);
    CHECK_EQ_INT(res.stats.records, 2);
    warc_result_free(&res);
    dsp_buf_free(&w);
    dsp_buf_free(&big);
    temp_store_close(&t);
}

/* ---- real files ---- */

static void test_warc_common_crawl(void)
{
    dsp_store *s = NULL;
    dsp_err err;
    REQUIRE(dsp_store_open(DSP_TEST_DATA, NULL, &s, &err) == DSP_OK);
    warc_result res;
    read_warc(s, "warc/CC-MAIN-2020-34-excerpt.warc.gz", 0, &res);
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    /* 50 records: 16 HTML responses with status 200, 17 requests,
     * 16 metadata records and 1 warcinfo. */
    CHECK_EQ_INT(res.ndocs, 16);
    CHECK_EQ_INT(res.stats.skipped, 34);
    CHECK_EQ_INT(res.stats.rejected, 0);

    /* A windows-1251 page, declared in the HTTP header. */
    int i = find_doc(&res, "\"url\":\"http://01spb.ru/company/\"");
    REQUIRE(i >= 0);
    CHECK(strstr(res.texts[i], "Огнетушители углекислотные") != NULL);
    CHECK(strstr(res.texts[i], "<div") == NULL);
    /* A Chinese page without an HTTP charset. */
    i = find_doc(&res, "\"url\":\"http://003338.cn/l41/481397.html\"");
    REQUIRE(i >= 0);
    CHECK(strstr(res.texts[i], "广东省人民政府首页") != NULL);
    CHECK(strstr(res.texts[i], "<script") == NULL);
    warc_result_free(&res);
    dsp_store_close(s);
}

static void test_warc_wget_sample(void)
{
    dsp_store *s = NULL;
    dsp_err err;
    REQUIRE(dsp_store_open(DSP_TEST_DATA, NULL, &s, &err) == DSP_OK);
    warc_result res;
    read_warc(s, "warc/sample-0000.warc.gz", 0, &res);
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    /* 48 records: 22 HTML responses, 22 requests, 2 resources, 1 warcinfo
     * and 1 metadata record. */
    CHECK_EQ_INT(res.ndocs, 22);
    CHECK_EQ_INT(res.stats.skipped, 26);
    int i = find_doc(&res, "\"url\":\"https://soldaini.net/\"");
    REQUIRE(i >= 0);
    CHECK(strstr(res.texts[i], "My name is Luca Soldaini") != NULL);
    CHECK(strstr(res.texts[i], "Hello, visitor! \xf0\x9f\x91\x8b") != NULL);
    warc_result_free(&res);
    dsp_store_close(s);
}

TEST_MAIN({"html structure", test_html_structure},
          {"html charsets", test_html_charsets},
          {"html deep nesting", test_html_deep_nesting},
          {"warc record types", test_warc_record_types},
          {"warc wrong length", test_warc_wrong_length},
          {"warc not warc input", test_warc_not_warc_input},
          {"warc oversized rejected", test_warc_oversized_rejected},
          {"warc common crawl", test_warc_common_crawl},
          {"warc wget sample", test_warc_wget_sample})
