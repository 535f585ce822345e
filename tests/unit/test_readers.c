/* Tests of the JSONL reader (tasks/jsonl.c) and decompression
 * (tasks/decompress.c) against real files in a local store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "../../core/util.h"
#include "../../storage/store.h"
#include "../../tasks/decompress.h"
#include "../../tasks/jsonl.h"
#include "test.h"

#ifndef DSP_TEST_DATA
#define DSP_TEST_DATA "tests/data"
#endif

/* ---- helpers ---- */

typedef struct {
    char reasons[64][32];
    uint64_t offsets[64];
    char keys[64][128];
    char members[64][32]; /* "" when the reject names no member */
    size_t n;
} reject_log;

static dsp_status record_reject(void *ctx, const char *reason, const char *key, uint64_t offset,
                                const char *record, size_t record_len, const char *member,
                                dsp_err *err)
{
    (void)record;
    (void)record_len;
    (void)err;
    reject_log *log = ctx;
    if (log->n < 64) {
        snprintf(log->reasons[log->n], sizeof log->reasons[0], "%s", reason);
        snprintf(log->keys[log->n], sizeof log->keys[0], "%s", key);
        snprintf(log->members[log->n], sizeof log->members[0], "%s", member ? member : "");
        log->offsets[log->n] = offset;
    }
    log->n++;
    return DSP_OK;
}

typedef struct {
    char dir[64];
    dsp_store *store;
} temp_store;

static int temp_store_open(temp_store *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/dsp-readers-XXXXXX");
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

static void zstd_append(dsp_buf *out, const char *data, size_t len)
{
    size_t bound = ZSTD_compressBound(len);
    dsp_buf_reserve(out, bound);
    size_t n = ZSTD_compress(out->data + out->len, bound, data, len, 3);
    out->len += n;
}

typedef struct {
    uint64_t docs;
    dsp_status status;
    dsp_err err;
    dsp_jsonl_stats stats;
    dsp_buf texts; /* texts joined with '|' */
} read_result;

/* Read a whole key (or a range) and collect the document texts. */
static void read_range(temp_store *t, const char *key, uint64_t offset, int64_t length,
                       int64_t max_record, size_t read_size, reject_log *rejects,
                       read_result *res)
{
    memset(res, 0, sizeof *res);
    dsp_jsonl_opts opts = {.store = t->store,
                           .key = key,
                           .offset = offset,
                           .length = length,
                           .max_record_bytes = max_record,
                           .read_size = read_size,
                           .reject = rejects ? record_reject : NULL,
                           .reject_ctx = rejects};
    dsp_jsonl_reader *r = NULL;
    res->status = dsp_jsonl_open(&opts, &r, &res->err);
    if (res->status != DSP_OK)
        return;
    dsp_batch b;
    dsp_batch_init(&b, "text");
    int eof = 0;
    while (!eof) {
        res->status = dsp_jsonl_next(r, &b, 1024, 4u << 20, &eof, &res->err);
        if (res->status != DSP_OK)
            break;
        for (size_t i = 0; i < b.n; i++) {
            if (res->texts.len)
                dsp_buf_append_char(&res->texts, '|');
            dsp_buf_append(&res->texts, b.docs[i].text, b.docs[i].text_len);
        }
        res->docs += b.n;
        dsp_batch_reset(&b);
    }
    res->stats = *dsp_jsonl_get_stats(r);
    dsp_batch_free(&b);
    dsp_jsonl_close(r);
}

static void read_all(temp_store *t, const char *key, uint64_t offset, int64_t length,
                     int64_t max_record, reject_log *rejects, read_result *res)
{
    read_range(t, key, offset, length, max_record, 0, rejects, res);
}

/* ---- cases ---- */

static void test_empty_file(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    REQUIRE(put(&t, "empty.jsonl", "", 0) == 0);
    REQUIRE(put(&t, "empty.jsonl.gz", "", 0) == 0);
    dsp_buf gz = DSP_BUF_INIT;
    gzip_append(&gz, "", 0);
    REQUIRE(put(&t, "empty-member.jsonl.gz", gz.data, gz.len) == 0);

    const char *keys[] = {"empty.jsonl", "empty.jsonl.gz", "empty-member.jsonl.gz"};
    for (int i = 0; i < 3; i++) {
        read_result res;
        read_all(&t, keys[i], 0, -1, 0, NULL, &res);
        CHECKF(res.status == DSP_OK, "%s: %s", keys[i], res.err.msg);
        CHECK_EQ_INT(res.docs, 0);
        CHECK_EQ_INT(res.stats.records, 0);
        dsp_buf_free(&res.texts);
    }
    dsp_buf_free(&gz);
    temp_store_close(&t);
}

static void test_gzip_members(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf gz = DSP_BUF_INIT;
    gzip_append(&gz, "{\"text\":\"a\"}\n{\"text\":\"b\"}\n", 26);
    gzip_append(&gz, "", 0);
    /* The second record is split across members. */
    gzip_append(&gz, "{\"text\":\"c\"}\n{\"te", 17);
    gzip_append(&gz, "xt\":\"d\"}", 8);
    REQUIRE(put(&t, "multi.jsonl.gz", gz.data, gz.len) == 0);
    read_result res;
    read_all(&t, "multi.jsonl.gz", 0, -1, 0, NULL, &res);
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    CHECK_EQ_STR(res.texts.data, "a|b|c|d");
    CHECK_EQ_INT(res.stats.bytes_in, gz.len);
    dsp_buf_free(&res.texts);

    /* Cut inside the last member: a corrupt shard naming key and offset. */
    REQUIRE(put(&t, "cut.jsonl.gz", gz.data, gz.len - 5) == 0);
    read_all(&t, "cut.jsonl.gz", 0, -1, 0, NULL, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    CHECKF(strstr(res.err.msg, "cut.jsonl.gz") != NULL, "%s", res.err.msg);
    CHECKF(strstr(res.err.msg, "byte") != NULL, "%s", res.err.msg);
    dsp_buf_free(&res.texts);
    dsp_buf_free(&gz);
    temp_store_close(&t);
}

static void test_zstd_frames(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf zs = DSP_BUF_INIT;
    /* A skippable frame first: magic 0x184D2A50, 4-byte size, payload. */
    const unsigned char skippable[] = {0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'x', 'y', 'z'};
    dsp_buf_append(&zs, skippable, sizeof skippable);
    zstd_append(&zs, "{\"text\":\"one\"}\n", 15);
    zstd_append(&zs, "{\"text\":\"two\"}\n{\"text\":\"thr", 27);
    zstd_append(&zs, "ee\"}\n", 5);
    REQUIRE(put(&t, "frames.jsonl.zst", zs.data, zs.len) == 0);
    read_result res;
    read_all(&t, "frames.jsonl.zst", 0, -1, 0, NULL, &res);
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    CHECK_EQ_STR(res.texts.data, "one|two|three");
    dsp_buf_free(&res.texts);

    /* Cut inside the last frame. */
    REQUIRE(put(&t, "cut.jsonl.zst", zs.data, zs.len - 3) == 0);
    read_all(&t, "cut.jsonl.zst", 0, -1, 0, NULL, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    CHECKF(strstr(res.err.msg, "cut.jsonl.zst") != NULL, "%s", res.err.msg);
    CHECKF(strstr(res.err.msg, "truncated zstd") != NULL, "%s", res.err.msg);
    CHECKF(strstr(res.err.msg, "byte") != NULL, "%s", res.err.msg);
    dsp_buf_free(&res.texts);
    dsp_buf_free(&zs);
    temp_store_close(&t);
}

/* Errors name the object by its full path, not by its base name, so that
 * two inputs with the same name in different directories can be told apart. */
static void test_truncated_gzip_full_path(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf gz = DSP_BUF_INIT;
    gzip_append(&gz, "{\"text\":\"one\"}\n{\"text\":\"two\"}\n", 30);
    REQUIRE(put(&t, "sub1/trunc.jsonl.gz", gz.data, gz.len - 5) == 0);
    read_result res;
    read_all(&t, "sub1/trunc.jsonl.gz", 0, -1, 0, NULL, &res);
    CHECK_EQ_INT(res.status, DSP_ECORRUPT);
    char want[128];
    snprintf(want, sizeof want, "truncated gzip stream in %s/sub1/trunc.jsonl.gz:", t.dir);
    CHECKF(strstr(res.err.msg, want) != NULL, "%s", res.err.msg);
    dsp_buf_free(&res.texts);
    dsp_buf_free(&gz);
    temp_store_close(&t);
}

/* A corrupt block deep inside a multi-block zstd file is reported with the
 * compressed bytes whose decoding failed, not at byte 0. */
static void test_zstd_corrupt_offset(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf plain = DSP_BUF_INIT;
    uint32_t x = 12345;
    while (plain.len < (1u << 20)) {
        dsp_buf_append_str(&plain, "{\"text\":\"");
        for (int i = 0; i < 80; i++) {
            x = x * 1103515245u + 12345u;
            dsp_buf_append_char(&plain, "abcdefghijklmnopqrstuvwxyz    "[(x >> 16) % 30]);
        }
        dsp_buf_append_str(&plain, "\"}\n");
    }
    dsp_buf zs = DSP_BUF_INIT;
    zstd_append(&zs, plain.data, plain.len);
    REQUIRE(zs.len > 300000); /* several 128 KiB blocks */

    int detected = 0;
    for (int k = 1; k <= 7; k++) {
        size_t pos = zs.len * (size_t)k / 8;
        dsp_buf bad = DSP_BUF_INIT;
        dsp_buf_append(&bad, zs.data, zs.len);
        for (size_t i = pos; i < pos + 16; i++)
            bad.data[i] ^= 0x5a;
        REQUIRE(put(&t, "bad.jsonl.zst", bad.data, bad.len) == 0);
        dsp_buf_free(&bad);

        read_result res;
        read_all(&t, "bad.jsonl.zst", 0, -1, 0, NULL, &res);
        dsp_buf_free(&res.texts);
        if (res.status != DSP_ECORRUPT)
            continue; /* zstd need not detect every change of a block's content */
        detected++;
        const char *range = strstr(res.err.msg, "decoding compressed bytes ");
        CHECKF(range != NULL, "%s", res.err.msg);
        if (!range)
            continue;
        unsigned long long lo = 0, hi = 0;
        CHECKF(sscanf(range, "decoding compressed bytes %llu-%llu", &lo, &hi) == 2, "%s",
               res.err.msg);
        CHECKF(lo > 0, "corrupted at %zu: %s", pos, res.err.msg);
        CHECKF(lo <= pos + 15 && hi >= pos, "corrupted at %zu: %s", pos, res.err.msg);
        CHECKF(hi - lo < 140000, "range wider than one block: %s", res.err.msg);
    }
    CHECKF(detected >= 4, "only %d of 7 corruptions detected", detected);
    dsp_buf_free(&zs);
    dsp_buf_free(&plain);
    temp_store_close(&t);
}

static void test_crlf_blank_unterminated(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char *data = "\xef\xbb\xbf{\"text\":\"a\"}\r\n\r\n\n   \n{\"text\":\"b\"}\n\t\r\n"
                       "{\"text\":\"c\"}";
    REQUIRE(put(&t, "mixed.jsonl", data, strlen(data)) == 0);
    reject_log rejects = {0};
    read_result res;
    read_all(&t, "mixed.jsonl", 0, -1, 0, &rejects, &res);
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    CHECK_EQ_STR(res.texts.data, "a|b|c");
    CHECK_EQ_INT(res.stats.records, 3);
    CHECK_EQ_INT(res.stats.blank_lines, 4);
    CHECK_EQ_INT(rejects.n, 0);
    dsp_buf_free(&res.texts);
    temp_store_close(&t);
}

static void test_bad_records(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char lines[] =
        "{\"text\":\"ok1\"}\n"                 /* 0 */
        "{\"text\":\"broken\"\n"               /* 15: invalid JSON */
        "{\"text\":\"n\0ul\"}\n"               /* 32: raw NUL byte in a string */
        "{\"text\":\"bad \xff byte\"}\n"       /* 48: repaired with U+FFFD */
        "{\"t\xffxt\":\"x\",\"text\":\"y\"}\n"  /* 70: invalid UTF-8 in a member name */
        "{\"id\":1}\n"                         /* 94: missing text */
        "{\"text\":42}\n"                      /* 103: text not a string */
        "[1,2]\n"                              /* 115: valid JSON, not an object */
        "{\"text\":\"ok2\"} trailing\n"        /* 121: invalid JSON */
        "{\"text\":\"ok3\"}\n";
    REQUIRE(put(&t, "bad.jsonl", lines, sizeof lines - 1) == 0);
    reject_log rejects = {0};
    read_result res;
    read_all(&t, "bad.jsonl", 0, -1, 0, &rejects, &res);
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    CHECK_EQ_STR(res.texts.data, "ok1|bad \xef\xbf\xbd byte|ok3");
    CHECK_EQ_INT(res.stats.records, 10);
    CHECK_EQ_INT(res.stats.rejected, 7);
    CHECK_EQ_INT(res.stats.utf8_repaired, 1);
    REQUIRE(rejects.n == 7);
    const char *want_reasons[] = {"invalid_json", "invalid_json", "invalid_utf8", "missing_text",
                                  "text_not_string", "not_object", "invalid_json"};
    const uint64_t want_offsets[] = {15, 32, 70, 94, 103, 115, 121};
    char want_source[128];
    snprintf(want_source, sizeof want_source, "%s/bad.jsonl", t.dir);
    for (int i = 0; i < 7; i++) {
        CHECK_EQ_STR(rejects.reasons[i], want_reasons[i]);
        CHECK_EQ_INT(rejects.offsets[i], want_offsets[i]);
        CHECK_EQ_STR(rejects.keys[i], want_source);
    }
    dsp_buf_free(&res.texts);
    temp_store_close(&t);
}

/* A lone UTF-16 surrogate escape stands for no character. The reader
 * replaces it with U+FFFD in the line and the text and counts the record
 * as repaired, as it does for invalid UTF-8. Pairs, escaped backslashes
 * and other escapes stay as they are. */
static void test_lone_surrogates(void)
{
    static const struct {
        const char *line, *text, *repaired_line;
    } cases[] = {
        {"{\"text\":\"a\\ud800b\"}", "a\xef\xbf\xbd" "b", "{\"text\":\"a\xef\xbf\xbd" "b\"}"},
        {"{\"text\":\"a\\udc00\"}", "a\xef\xbf\xbd", "{\"text\":\"a\xef\xbf\xbd\"}"},
        {"{\"text\":\"\\ud800\\u0041\"}", "\xef\xbf\xbd" "A", "{\"text\":\"\xef\xbf\xbd\\u0041\"}"},
        {"{\"text\":\"\\udbff\\ud800\\udc00\"}", "\xef\xbf\xbd\xf0\x90\x80\x80",
         "{\"text\":\"\xef\xbf\xbd\\ud800\\udc00\"}"},
        {"{\"a\":\"\\ud800\",\"text\":\"x\"}", "x", "{\"a\":\"\xef\xbf\xbd\",\"text\":\"x\"}"},
        {"{\"text\":\"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80", NULL},
        {"{\"text\":\"\\\\ud800\"}", "\\ud800", NULL},
    };
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s\n", cases[i].line);
        REQUIRE(put(&t, "s.jsonl", line, strlen(line)) == 0);
        reject_log rejects = {0};
        read_result res;
        read_all(&t, "s.jsonl", 0, -1, 0, &rejects, &res);
        CHECKF(res.status == DSP_OK, "%s: %s", cases[i].line, res.err.msg);
        CHECKF(rejects.n == 0, "%s: rejected as %s", cases[i].line, rejects.reasons[0]);
        CHECKF(res.texts.data && !strcmp(res.texts.data, cases[i].text), "%s: text %s",
               cases[i].line, res.texts.data ? res.texts.data : "(none)");
        CHECKF(res.stats.utf8_repaired == (cases[i].repaired_line ? 1u : 0u),
               "%s: %llu records repaired", cases[i].line,
               (unsigned long long)res.stats.utf8_repaired);
        dsp_buf_free(&res.texts);

        dsp_buf out = DSP_BUF_INIT;
        const char *want = cases[i].repaired_line ? cases[i].repaired_line : cases[i].line;
        dsp_json_repair(cases[i].line, strlen(cases[i].line), &out);
        CHECKF(out.len == strlen(want) && !memcmp(out.data, want, out.len),
               "%s: repaired line %.*s", cases[i].line, (int)out.len, out.data);
        dsp_buf_free(&out);
    }
    temp_store_close(&t);
}

/* The reader finds the text member while it validates a line. Names with
 * escapes, nested members and repeated names must resolve as in
 * dsp_json_find: the first top-level member whose decoded name matches. */
static void test_text_member_lookup(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char lines[] =
        "{\"id\":1,\"text\":\"late\"}\n"                       /* 0 */
        "{\"te\\u0078t\":\"escaped name\",\"text\":\"second\"}\n" /* 23 */
        "{\"meta\":{\"text\":\"nested\"},\"text\":\"top\"}\n"    /* 68 */
        "{\"text\":\"first\",\"text\":\"repeat\"}\n"             /* 108 */
        "{\"a\":\"\\u00e9\",\"text\":\"tab\\there\"}\n"          /* 141 */
        "{\"te\\u0078t\":5}\n"                                  /* 175 */
        "{\"text\":[\"x\"]}\n"                                   /* 191 */
        "{\"meta\":{\"text\":\"x\"}}\n"                           /* 206 */
        "{\"n\":\"\xff\",\"text\":\"after repair\"}\n";           /* 229 */
    REQUIRE(put(&t, "names.jsonl", lines, sizeof lines - 1) == 0);
    reject_log rejects = {0};
    read_result res;
    read_all(&t, "names.jsonl", 0, -1, 0, &rejects, &res);
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    CHECK_EQ_STR(res.texts.data, "late|top|tab\there|after repair");
    CHECK_EQ_INT(res.stats.records, 9);
    CHECK_EQ_INT(res.stats.utf8_repaired, 1);
    REQUIRE(rejects.n == 5);
    const char *want_reasons[] = {"duplicate_key", "duplicate_key", "text_not_string",
                                  "text_not_string", "missing_text"};
    const uint64_t want_offsets[] = {23, 108, 175, 191, 206};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_STR(rejects.reasons[i], want_reasons[i]);
        CHECK_EQ_INT(rejects.offsets[i], want_offsets[i]);
    }
    dsp_buf_free(&res.texts);
    temp_store_close(&t);
}

/* Read key with unique_fields set; returns the texts joined with '|'. */
static void read_unique(temp_store *t, const char *key, const char *const *unique_fields,
                        int skip_text_decode, reject_log *rejects, dsp_buf *texts,
                        uint64_t *records)
{
    dsp_jsonl_opts opts = {.store = t->store,
                           .key = key,
                           .length = -1,
                           .reject = record_reject,
                           .reject_ctx = rejects,
                           .skip_text_decode = skip_text_decode,
                           .unique_fields = unique_fields};
    dsp_jsonl_reader *r = NULL;
    dsp_err err;
    REQUIRE(dsp_jsonl_open(&opts, &r, &err) == DSP_OK);
    dsp_batch b;
    dsp_batch_init(&b, "text");
    int eof = 0;
    while (!eof) {
        dsp_batch_reset(&b);
        REQUIRE(dsp_jsonl_next(r, &b, 1024, 4u << 20, &eof, &err) == DSP_OK);
        for (size_t i = 0; i < b.n; i++) {
            if (texts->len)
                dsp_buf_append_char(texts, '|');
            if (skip_text_decode)
                dsp_buf_append(texts, b.docs[i].line, b.docs[i].line_len);
            else
                dsp_buf_append(texts, b.docs[i].text, b.docs[i].text_len);
        }
    }
    *records = dsp_jsonl_get_stats(r)->records;
    dsp_batch_free(&b);
    dsp_jsonl_close(r);
}

/* A member that the job reads must occur once: operators see the first
 * value, but most JSON parsers take the last one. */
static void test_duplicate_keys(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char lines[] =
        "{\"id\":\"p1\",\"text\":\"harmless\",\"text\":\"Call 555-123-4567\"}\n" /* 0 */
        "{\"text\":\"a\",\"t\\u0065xt\":\"b\"}\n"                     /* 57 */
        "{\"text\":\"kept 1\",\"meta\":{\"text\":\"n\"},\"x\":1,\"x\":2}\n" /* 86 */
        "{\"text\":\"u\",\"url\":\"a\",\"url\":\"b\"}\n"              /* 136 */
        "{\"text\":\"m\",\"meta\":{\"id\":1,\"id\":2}}\n"              /* 169 */
        "{\"text\":\"m\",\"meta\":{\"id\":1},\"meta\":{}}\n"          /* 205 */
        "{\"text\":\"kept 2\",\"meta\":{\"id\":1,\"x\":{\"id\":2}}}\n" /* 244 */
        "{\"text\":\"j\",\"text\":\"k\"\n"                              /* 291 */
        "{\"text\":\"\xff\",\"text\":\"r\"}\n";                         /* 314 */
    REQUIRE(put(&t, "dup.jsonl", lines, sizeof lines - 1) == 0);
    const char *const unique[] = {"url", "meta.id", NULL};

    for (int skip = 0; skip <= 1; skip++) {
        reject_log rejects;
        memset(&rejects, 0, sizeof rejects);
        dsp_buf texts = DSP_BUF_INIT;
        uint64_t records = 0;
        read_unique(&t, "dup.jsonl", unique, skip, &rejects, &texts, &records);
        CHECK_EQ_INT(records, 9);
        if (!skip)
            CHECK_EQ_STR(texts.data, "kept 1|kept 2");
        REQUIRE(rejects.n == 7);
        const char *want_reasons[] = {"duplicate_key", "duplicate_key", "duplicate_key",
                                      "duplicate_key", "duplicate_key", "invalid_json",
                                      "duplicate_key"};
        const char *want_members[] = {"text", "text", "url", "meta.id", "meta", "", "text"};
        const uint64_t want_offsets[] = {0, 57, 136, 169, 205, 291, 314};
        for (int i = 0; i < 7; i++) {
            CHECK_EQ_STR(rejects.reasons[i], want_reasons[i]);
            CHECK_EQ_STR(rejects.members[i], want_members[i]);
            CHECK_EQ_INT(rejects.offsets[i], want_offsets[i]);
        }
        dsp_buf_free(&texts);
    }

    /* Without unique_fields only the text member must be unique. */
    reject_log rejects;
    memset(&rejects, 0, sizeof rejects);
    dsp_buf texts = DSP_BUF_INIT;
    uint64_t records = 0;
    read_unique(&t, "dup.jsonl", NULL, 0, &rejects, &texts, &records);
    CHECK_EQ_STR(texts.data, "kept 1|u|m|m|kept 2");
    CHECK_EQ_INT(rejects.n, 4);
    dsp_buf_free(&texts);
    temp_store_close(&t);
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_huge_line_rejected(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    char path[128];
    snprintf(path, sizeof path, "%s/huge.jsonl", t.dir);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fputs("{\"text\":\"before\"}\n{\"text\":\"", f);
    char *chunk = malloc(1 << 20);
    memset(chunk, 'a', 1 << 20);
    for (int i = 0; i < 100; i++)
        fwrite(chunk, 1, 1 << 20, f);
    free(chunk);
    fputs("\"}\n{\"text\":\"after\"}\n", f);
    fclose(f);

    long rss_before = max_rss_kib();
    reject_log rejects = {0};
    read_result res;
    read_all(&t, "huge.jsonl", 0, -1, 0, &rejects, &res);
    long growth_mib = (max_rss_kib() - rss_before) / 1024;
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    CHECK_EQ_STR(res.texts.data, "before|after");
    REQUIRE(rejects.n == 1);
    CHECK_EQ_STR(rejects.reasons[0], "record_too_large");
    CHECK_EQ_INT(rejects.offsets[0], 18);
    /* The buffer may grow to max_record_bytes (64 MiB), never to the line.
     * AddressSanitizer keeps freed blocks in quarantine, so peak RSS is no
     * measure there. */
#if defined(__SANITIZE_ADDRESS__)
    (void)growth_mib;
#else
    CHECKF(growth_mib < 90, "peak RSS grew by %ld MiB", growth_mib);
#endif
    dsp_buf_free(&res.texts);

    /* A small limit: the same line is skipped with a 1 MiB buffer. */
    rss_before = max_rss_kib();
    memset(&rejects, 0, sizeof rejects);
    read_all(&t, "huge.jsonl", 0, -1, 1 << 20, &rejects, &res);
    CHECK_EQ_STR(res.texts.data, "before|after");
    CHECK_EQ_INT(rejects.n, 1);
    dsp_buf_free(&res.texts);
    temp_store_close(&t);
}

static void test_plain_named_zst(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char *data = "{\"text\":\"plain\"}\n";
    REQUIRE(put(&t, "fake.jsonl.zst", data, strlen(data)) == 0);
    read_result res;
    read_all(&t, "fake.jsonl.zst", 0, -1, 0, NULL, &res);
    CHECKF(res.status == DSP_OK, "%s", res.err.msg);
    CHECK_EQ_STR(res.texts.data, "plain");
    dsp_buf_free(&res.texts);
    temp_store_close(&t);
}

/* Every split of a plain file into consecutive ranges reads each record once. */
static void test_byte_ranges_cover(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf data = DSP_BUF_INIT;
    int nrec = 60;
    for (int i = 0; i < nrec; i++) {
        dsp_buf_printf(&data, "{\"text\":\"r%d", i);
        for (int k = 0; k < (i * 7) % 23; k++)
            dsp_buf_append_char(&data, 'x');
        dsp_buf_append_str(&data, i % 5 == 0 ? "\"}\r\n" : "\"}\n");
        if (i % 11 == 0)
            dsp_buf_append_str(&data, "\n");
    }
    REQUIRE(put(&t, "ranges.jsonl", data.data, data.len) == 0);
    /* The unterminated variant drops the final newline. */
    REQUIRE(put(&t, "ranges-open.jsonl", data.data, data.len - 1) == 0);

    const char *keys[] = {"ranges.jsonl", "ranges-open.jsonl"};
    size_t sizes[] = {data.len, data.len - 1};
    for (int k = 0; k < 2; k++) {
        for (size_t split = 1; split <= sizes[k] + 1; split += (split < 40 ? 1 : 13)) {
            int seen[60] = {0};
            uint64_t total = 0;
            for (uint64_t off = 0; off < sizes[k]; off += split) {
                read_result res;
                /* Small reads move record boundaries across buffer refills. */
                read_range(&t, keys[k], off, (int64_t)split, 0, 61, NULL, &res);
                REQUIRE(res.status == DSP_OK);
                total += res.docs;
                char *save = NULL;
                for (char *tok = res.texts.data ? strtok_r(res.texts.data, "|", &save) : NULL;
                     tok; tok = strtok_r(NULL, "|", &save)) {
                    int id = atoi(tok + 1);
                    if (id >= 0 && id < nrec)
                        seen[id]++;
                }
                dsp_buf_free(&res.texts);
            }
            CHECKF(total == (uint64_t)nrec, "%s split %zu: %llu records", keys[k], split,
                   (unsigned long long)total);
            for (int i = 0; i < nrec; i++)
                CHECKF(seen[i] == 1, "%s split %zu: record %d seen %d times", keys[k], split,
                       i, seen[i]);
        }
    }
    dsp_buf_free(&data);
    temp_store_close(&t);
}

/* A range reads little past its end: only the record that crosses it, in
 * windows sized by the range's average record, so bytes_in stays close to
 * the range size. */
static void test_range_tail_bounded(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf data = DSP_BUF_INIT;
    /* 2 MiB of 1 KiB records, then one 300 KiB record that crosses the end
     * of the last range, then short records again. */
    int nshort = 2048;
    for (int i = 0; i < nshort; i++) {
        dsp_buf_printf(&data, "{\"text\":\"s%d ", i);
        while (data.len % 1024 != 1021)
            dsp_buf_append_char(&data, 'x');
        dsp_buf_append_str(&data, "\"}\n");
    }
    uint64_t long_start = data.len;
    dsp_buf_append_str(&data, "{\"text\":\"long ");
    for (int k = 0; k < 300 * 1024; k++)
        dsp_buf_append_char(&data, 'y');
    dsp_buf_append_str(&data, "\"}\n");
    uint64_t long_end = data.len;
    for (int i = 0; i < 64; i++)
        dsp_buf_printf(&data, "{\"text\":\"after %d\"}\n", i);
    REQUIRE(put(&t, "tail.jsonl", data.data, data.len) == 0);

    /* Ranges end in the middle of a record. */
    const uint64_t split = 16 * 1024 + 512;
    uint64_t total = 0;
    for (uint64_t off = 0; off + split <= long_start; off += split) {
        read_result res;
        read_range(&t, "tail.jsonl", off, (int64_t)split, 0, 0, NULL, &res);
        REQUIRE(res.status == DSP_OK);
        total += res.docs;
        CHECKF(res.stats.bytes_in <= split + 1 + 8 * 1024,
               "range at %llu of %llu bytes read %llu bytes", (unsigned long long)off,
               (unsigned long long)split, (unsigned long long)res.stats.bytes_in);
        dsp_buf_free(&res.texts);
    }
    CHECK_EQ_INT(total, ((long_start / split) * split + 1023) / 1024);

    /* The long record needs several doubling windows. It is read whole, and
     * the reads stop within one window of its end. */
    uint64_t off = long_start - 100;
    read_result res;
    read_range(&t, "tail.jsonl", off, 200, 0, 0, NULL, &res);
    REQUIRE(res.status == DSP_OK);
    CHECK_EQ_INT(res.docs, 1);
    CHECK_EQ_INT(res.texts.len, 5 + 300 * 1024);
    CHECKF(res.stats.bytes_in <= 2 * (long_end - off) + 64 * 1024,
           "long record of %llu bytes read %llu bytes", (unsigned long long)(long_end - off),
           (unsigned long long)res.stats.bytes_in);
    dsp_buf_free(&res.texts);

    dsp_buf_free(&data);
    temp_store_close(&t);
}

static void test_range_on_compressed(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf gz = DSP_BUF_INIT;
    gzip_append(&gz, "{\"text\":\"a\"}\n", 13);
    REQUIRE(put(&t, "r.jsonl.gz", gz.data, gz.len) == 0);
    read_result res;
    read_all(&t, "r.jsonl.gz", 0, 10, 0, NULL, &res);
    CHECK_EQ_INT(res.status, DSP_EINVAL);
    CHECKF(strstr(res.err.msg, "r.jsonl.gz") != NULL, "%s", res.err.msg);
    dsp_buf_free(&res.texts);
    dsp_buf_free(&gz);
    temp_store_close(&t);
}

/* The real samples parse with the record counts of their published sources. */
static void test_real_files(void)
{
    dsp_store *s = NULL;
    dsp_err err;
    REQUIRE(dsp_store_open(DSP_TEST_DATA, NULL, &s, &err) == DSP_OK);
    struct {
        const char *key;
        uint64_t records;
        dsp_compression comp;
    } cases[] = {
        {"cc/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", 697, DSP_COMP_GZIP},
        {"cc/cc_en_head-0091.jsonl.gz", 10, DSP_COMP_GZIP},
        {"cc/cc_en_head-0174.jsonl.gz", 10, DSP_COMP_GZIP},
        {"pile/pile-04.jsonl.zst", 1, DSP_COMP_ZSTD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        temp_store t = {"", s};
        read_result res;
        reject_log rejects = {0};
        read_all(&t, cases[i].key, 0, -1, 0, &rejects, &res);
        CHECKF(res.status == DSP_OK, "%s: %s", cases[i].key, res.err.msg);
        CHECKF(res.docs == cases[i].records, "%s: %llu documents", cases[i].key,
               (unsigned long long)res.docs);
        CHECK_EQ_INT(rejects.n, 0);
        CHECK(res.texts.len > 0);
        dsp_buf_free(&res.texts);
    }
    dsp_store_close(s);
}

static void test_json_validate(void)
{
    struct {
        const char *json;
        int want;
    } cases[] = {
        {"{}", DSP_JSON_VALID},
        {" {\"a\":[1,-2.5e+3,true,false,null,{\"b\":[]}],\"c\":\"\\u00e9\"} ", DSP_JSON_VALID},
        {"{\"a\":01}", DSP_JSON_INVALID},
        {"{\"a\":1,}", DSP_JSON_INVALID},
        {"{\"a\" 1}", DSP_JSON_INVALID},
        {"{\"a\":[1,2}", DSP_JSON_INVALID},
        {"{\"a\":\"\\x\"}", DSP_JSON_INVALID},
        {"{\"a\":tru}", DSP_JSON_INVALID},
        {"{} {}", DSP_JSON_INVALID},
        {"\"text\"", DSP_JSON_NOT_OBJECT},
        {"[1,2,3]", DSP_JSON_NOT_OBJECT},
        {" 42 ", DSP_JSON_NOT_OBJECT},
        {"null", DSP_JSON_NOT_OBJECT},
        {"[1,2", DSP_JSON_INVALID},
        {"42 43", DSP_JSON_INVALID},
        {"", DSP_JSON_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int repair = 0;
        int got = dsp_json_validate(cases[i].json, strlen(cases[i].json), &repair);
        CHECKF(got == cases[i].want, "%s: got %d", cases[i].json, got);
    }
    dsp_buf deep = DSP_BUF_INIT;
    dsp_buf_append_str(&deep, "{\"a\":");
    for (int i = 0; i < 1000; i++)
        dsp_buf_append_char(&deep, '[');
    int repair = 0;
    CHECK_EQ_INT(dsp_json_validate(deep.data, deep.len, &repair), DSP_JSON_INVALID);
    dsp_buf_free(&deep);
}

/*
 * The string scanner reads 64-byte windows, so place each kind of special
 * sequence at every offset from 0 to 140 bytes into a string value, and
 * into a member name, with the result each kind must give wherever it is.
 */
static void test_json_validate_offsets(void)
{
    struct {
        const char *seq;
        int want;
        int want_repair;
    } kinds[] = {
        {"\\n", DSP_JSON_VALID, 0},
        {"\\\"", DSP_JSON_VALID, 0},
        {"\\\\", DSP_JSON_VALID, 0},
        {"\\u00e9", DSP_JSON_VALID, 0},
        {"\\ud83d\\ude00", DSP_JSON_VALID, 0},
        {"\xc3\xa9", DSP_JSON_VALID, 0},                /* 2-byte UTF-8 */
        {"\xe2\x82\xac", DSP_JSON_VALID, 0},           /* 3-byte UTF-8 */
        {"\xf0\x9f\x98\x80", DSP_JSON_VALID, 0},      /* 4-byte UTF-8 */
        {"\xc3", DSP_JSON_VALID, 1},                    /* truncated sequence */
        {"\xed\xa0\x80", DSP_JSON_VALID, 1},           /* UTF-16 surrogate */
        {"\xc0\xaf", DSP_JSON_VALID, 1},                /* overlong form */
        {"\xff", DSP_JSON_VALID, 1},
        {"\\x", DSP_JSON_INVALID, 0},                  /* unknown escape */
        {"\\u00g0", DSP_JSON_INVALID, 0},
        {"\x01", DSP_JSON_INVALID, 0},                  /* raw control byte */
        {"\t", DSP_JSON_INVALID, 0},
    };
    char line[512], name_line[512];
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int pad = 0; pad <= 140; pad++) {
            char filler[160];
            memset(filler, 'a', (size_t)pad);
            filler[pad] = '\0';
            snprintf(line, sizeof line, "{\"id\":1,\"text\":\"%s%s%s\"}", filler, kinds[k].seq,
                     filler);
            int repair = 0;
            int got = dsp_json_validate(line, strlen(line), &repair);
            CHECKF(got == kinds[k].want, "kind %zu at %d in a value: got %d", k, pad, got);
            if (got == DSP_JSON_VALID)
                CHECKF(repair == kinds[k].want_repair, "kind %zu at %d: repair %d", k, pad,
                       repair);

            /* In a member name, invalid UTF-8 is rejected, not repaired. */
            snprintf(name_line, sizeof name_line, "{\"%s%s\":1,\"text\":\"x\"}", filler,
                     kinds[k].seq);
            int want = kinds[k].want_repair ? DSP_JSON_INVALID_NAME_UTF8 : kinds[k].want;
            repair = 0;
            got = dsp_json_validate(name_line, strlen(name_line), &repair);
            CHECKF(got == want, "kind %zu at %d in a name: got %d", k, pad, got);

            /* The same line cut before the closing quote is invalid. */
            size_t cut = strlen("{\"id\":1,\"text\":\"") + (size_t)pad + strlen(kinds[k].seq);
            got = dsp_json_validate(line, cut, &repair);
            CHECKF(got == DSP_JSON_INVALID, "kind %zu at %d, unterminated: got %d", k, pad, got);
        }
    }
}

/* Without text decoding, documents keep their lines, get no text, and the
 * text member is still checked. */
static void test_skip_text_decode(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    const char *data = "{\"id\":1,\"text\":\"a\\nb\"}\n"
                       "{\"id\":2}\n"
                       "{\"id\":3,\"text\":7}\n"
                       "{\"text\":\"\xc3\",\"id\":4}\n";
    REQUIRE(put(&t, "skip.jsonl", data, strlen(data)) == 0);
    reject_log rejects;
    memset(&rejects, 0, sizeof rejects);
    dsp_jsonl_opts opts = {.store = t.store,
                           .key = "skip.jsonl",
                           .length = -1,
                           .reject = record_reject,
                           .reject_ctx = &rejects,
                           .skip_text_decode = 1};
    dsp_jsonl_reader *r = NULL;
    dsp_err err;
    REQUIRE(dsp_jsonl_open(&opts, &r, &err) == DSP_OK);
    dsp_batch b;
    dsp_batch_init(&b, "text");
    int eof = 0;
    while (!eof)
        REQUIRE(dsp_jsonl_next(r, &b, 1024, 4u << 20, &eof, &err) == DSP_OK);
    REQUIRE(b.n == 2);
    CHECK(b.docs[0].text == NULL);
    CHECK_EQ_INT(b.docs[0].text_len, 0);
    CHECK_EQ_INT(b.docs[0].line_len, strlen("{\"id\":1,\"text\":\"a\\nb\"}"));
    CHECK(memcmp(b.docs[0].line, "{\"id\":1,", 8) == 0);
    /* The repaired record keeps its repaired line. */
    CHECK_EQ_INT(b.docs[1].line_len, strlen("{\"text\":\"\xef\xbf\xbd\",\"id\":4}"));
    CHECK(memcmp(b.docs[1].line, "{\"text\":\"\xef\xbf\xbd\"", 12) == 0);
    CHECK(b.docs[1].text == NULL);
    const dsp_jsonl_stats *st = dsp_jsonl_get_stats(r);
    CHECK_EQ_INT(st->records, 4);
    CHECK_EQ_INT(st->rejected, 2);
    CHECK_EQ_INT(st->utf8_repaired, 1);
    CHECK_EQ_INT(rejects.n, 2);
    dsp_batch_free(&b);
    dsp_jsonl_close(r);
    temp_store_close(&t);
}

/* Append every document that a reader with these options returns to lines
 * ("offset:line\n" each), and return the reader's record count. */
static uint64_t read_all_lines(const dsp_jsonl_opts *opts, dsp_buf *lines)
{
    dsp_jsonl_reader *r = NULL;
    dsp_err err;
    if (dsp_jsonl_open(opts, &r, &err) != DSP_OK) {
        CHECKF(0, "open: %s", err.msg);
        return 0;
    }
    dsp_batch b;
    dsp_batch_init(&b, "text");
    int eof = 0;
    while (!eof) {
        dsp_batch_reset(&b);
        if (dsp_jsonl_next(r, &b, 64, 1u << 20, &eof, &err) != DSP_OK) {
            CHECKF(0, "next: %s", err.msg);
            break;
        }
        for (size_t i = 0; i < b.n; i++) {
            dsp_buf_printf(lines, "%llu:", (unsigned long long)b.docs[i].offset);
            dsp_buf_append(lines, b.docs[i].line, b.docs[i].line_len);
            dsp_buf_append_char(lines, '\n');
        }
    }
    uint64_t records = dsp_jsonl_get_stats(r)->records;
    dsp_batch_free(&b);
    dsp_jsonl_close(r);
    return records;
}

/* A trusted reader skips validation but must frame records exactly as the
 * validating reader does: byte order mark, CRLF, blank lines, an
 * unterminated last line and byte ranges. */
static void test_trusted_lines_match(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf data = DSP_BUF_INIT;
    dsp_buf_append_str(&data, "\xef\xbb\xbf{\"id\":0,\"text\":\"first\"}\r\n\n   \n");
    for (int i = 1; i < 200; i++)
        dsp_buf_printf(&data, "{\"id\":%d,\"text\":\"caf\xc3\xa9 %d\\n\"}%s\n", i, i,
                       i % 3 ? "" : "\r");
    dsp_buf_append_str(&data, "{\"id\":200,\"text\":\"last\"}");
    REQUIRE(put(&t, "trusted.jsonl", data.data, data.len) == 0);

    uint64_t ranges[][2] = {{0, 0}, {1, 700}, {700, 3000}, {3000, 0}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        int64_t length = ranges[k][1] ? (int64_t)(ranges[k][1] - ranges[k][0]) : -1;
        dsp_buf want = DSP_BUF_INIT, got = DSP_BUF_INIT;
        dsp_jsonl_opts checked = {.store = t.store,
                                  .key = "trusted.jsonl",
                                  .offset = ranges[k][0],
                                  .length = length,
                                  .read_size = 256,
                                  .skip_text_decode = 1,
                                  .borrow_lines = 1};
        dsp_jsonl_opts trusted = checked;
        trusted.trusted = 1;
        uint64_t want_records = read_all_lines(&checked, &want);
        uint64_t got_records = read_all_lines(&trusted, &got);
        CHECK_EQ_INT(got_records, want_records);
        CHECKF(got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
               "range %zu: trusted lines differ", k);
        CHECK(want.len > 0);
        dsp_buf_free(&want);
        dsp_buf_free(&got);
    }

    /* Trusted lines have no located text, so a reader that would decode it
     * is rejected. */
    dsp_jsonl_opts bad = {.store = t.store, .key = "trusted.jsonl", .length = -1, .trusted = 1};
    dsp_jsonl_reader *r = NULL;
    dsp_err err;
    CHECK(dsp_jsonl_open(&bad, &r, &err) == DSP_EINVAL);
    CHECK(strstr(err.msg, "skip_text_decode") != NULL);
    dsp_buf_free(&data);
    temp_store_close(&t);
}

/* Borrowed lines point into the reader's buffer: each batch must still
 * hold the right bytes when the call returns, with a read buffer smaller
 * than some records so that the buffer is refilled, moved and grown. */
static void test_borrow_lines(void)
{
    temp_store t;
    REQUIRE(temp_store_open(&t) == 0);
    dsp_buf data = DSP_BUF_INIT;
    for (int i = 0; i < 300; i++) {
        dsp_buf_printf(&data, "{\"id\":%d,\"text\":\"", i);
        for (int k = 0; k < (i * 37) % 250; k++)
            dsp_buf_append_char(&data, (char)('a' + (i + k) % 26));
        /* Record 7 has invalid UTF-8, so its repaired line is copied. */
        dsp_buf_append_str(&data, i == 7 ? "\xff\"}\n" : "\"}\n");
    }
    REQUIRE(put(&t, "borrow.jsonl", data.data, data.len) == 0);

    dsp_jsonl_opts opts = {.store = t.store,
                           .key = "borrow.jsonl",
                           .length = -1,
                           .read_size = 100,
                           .skip_text_decode = 1,
                           .borrow_lines = 1};
    dsp_jsonl_reader *r = NULL;
    dsp_err err;
    REQUIRE(dsp_jsonl_open(&opts, &r, &err) == DSP_OK);
    dsp_batch b;
    dsp_batch_init(&b, "text");
    dsp_buf seen = DSP_BUF_INIT;
    int eof = 0, calls = 0;
    while (!eof) {
        dsp_batch_reset(&b);
        REQUIRE(dsp_jsonl_next(r, &b, 64, 1u << 20, &eof, &err) == DSP_OK);
        calls++;
        for (size_t i = 0; i < b.n; i++) {
            dsp_buf_append(&seen, b.docs[i].line, b.docs[i].line_len);
            dsp_buf_append_char(&seen, '\n');
        }
    }
    CHECK(calls > 10);
    CHECK_EQ_INT(dsp_jsonl_get_stats(r)->records, 300);
    CHECK_EQ_INT(dsp_jsonl_get_stats(r)->utf8_repaired, 1);

    /* The input with record 7's invalid byte replaced by U+FFFD. */
    dsp_buf want = DSP_BUF_INIT;
    CHECK_EQ_INT(dsp_utf8_repair(data.data, data.len, &want), 1);
    REQUIRE(seen.len == want.len);
    CHECK(memcmp(seen.data, want.data, want.len) == 0);

    dsp_buf_free(&want);
    dsp_buf_free(&seen);
    dsp_buf_free(&data);
    dsp_batch_free(&b);
    dsp_jsonl_close(r);
    temp_store_close(&t);
}

TEST_MAIN({"empty file", test_empty_file},
          {"gzip members", test_gzip_members},
          {"zstd frames", test_zstd_frames},
          {"truncated gzip full path", test_truncated_gzip_full_path},
          {"zstd corrupt offset", test_zstd_corrupt_offset},
          {"crlf blank unterminated", test_crlf_blank_unterminated},
          {"bad records rejected", test_bad_records},
          {"text member lookup", test_text_member_lookup},
          {"duplicate keys rejected", test_duplicate_keys},
          {"lone surrogates repaired", test_lone_surrogates},
          {"huge line rejected", test_huge_line_rejected},
          {"plain file named zst", test_plain_named_zst},
          {"byte ranges cover once", test_byte_ranges_cover},
          {"range tail bounded", test_range_tail_bounded},
          {"range on compressed", test_range_on_compressed},
          {"real files", test_real_files},
          {"json validate", test_json_validate},
          {"json validate at offsets", test_json_validate_offsets},
          {"skip text decode", test_skip_text_decode},
          {"borrow lines", test_borrow_lines},
          {"trusted lines match", test_trusted_lines_match})
