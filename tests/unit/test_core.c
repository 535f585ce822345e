/* Tests of core/: buffers, errors, size parsing, hashing. */
#include "../../core/buf.h"
#include "../../core/err.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_buf_append_and_reset(void)
{
    dsp_buf b = DSP_BUF_INIT;
    dsp_buf_append_str(&b, "hello");
    dsp_buf_printf(&b, " %d", 42);
    CHECK_EQ_STR(b.data, "hello 42");
    CHECK_EQ_INT(b.len, 8);
    dsp_buf_reset(&b);
    CHECK_EQ_INT(b.len, 0);
    CHECK(b.cap > 0);
    for (int i = 0; i < 100000; i++)
        dsp_buf_append_char(&b, 'x');
    CHECK_EQ_INT(b.len, 100000);
    CHECK(b.data[b.len] == '\0');
    dsp_buf_free(&b);
}

static void test_err_prefix(void)
{
    dsp_err e;
    CHECK(dsp_err_set(&e, DSP_ENOTFOUND, "key %s missing", "a/b") == DSP_ENOTFOUND);
    dsp_err_prefix(&e, "reading %s", "job");
    CHECK_EQ_STR(e.msg, "reading job: key a/b missing");
    CHECK_EQ_STR(dsp_status_name(e.code), "not_found");
}

static void test_parse_size(void)
{
    CHECK_EQ_INT(dsp_parse_size("1000"), 1000);
    CHECK_EQ_INT(dsp_parse_size("64MiB"), 64LL << 20);
    CHECK_EQ_INT(dsp_parse_size("512k"), 512LL << 10);
    CHECK_EQ_INT(dsp_parse_size("1G"), 1LL << 30);
    CHECK_EQ_INT(dsp_parse_size("2GB"), 2LL << 30);
    CHECK_EQ_INT(dsp_parse_size("abc"), -1);
    CHECK_EQ_INT(dsp_parse_size("-5"), -1);
    CHECK_EQ_INT(dsp_parse_size("5x"), -1);
    CHECK_EQ_INT(dsp_parse_size(""), -1);
    CHECK_EQ_INT(dsp_parse_size("1e30"), -2);
    CHECK_EQ_INT(dsp_parse_size("9000000TiB"), -2);
    CHECK_EQ_INT(dsp_parse_size("nan"), -1);
    CHECK_EQ_INT(dsp_parse_size("NaN MiB"), -1);
}

static void test_format_utc_ms(void)
{
    char buf[40];
    CHECK_EQ_STR(dsp_format_utc_ms(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
    CHECK_EQ_STR(dsp_format_utc_ms(1764915276038LL, buf, sizeof buf), "2025-12-05T06:14:36.038Z");
    CHECK_EQ_STR(dsp_format_utc_ms(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
}

static void check_escaped(const char *in, int keep_newlines, const char *want)
{
    char *got = dsp_escape_control(in, keep_newlines);
    CHECK_EQ_STR(got, want);
    free(got);
}

static void test_escape_control(void)
{
    check_escaped("", 0, "");
    check_escaped("plain/name-1.jsonl.gz", 0, "plain/name-1.jsonl.gz");
    check_escaped("tr\nlevel=error", 0, "tr\\nlevel=error");
    check_escaped("a\rb\tc", 0, "a\\rb\\tc");
    check_escaped("\x1b[2J", 0, "\\x1b[2J");
    check_escaped("del\x7f", 0, "del\\x7f");
    check_escaped("\x01", 0, "\\x01");
    check_escaped("caf\xc3\xa9", 0, "caf\xc3\xa9");
    check_escaped("line1\nline2\x1b", 1, "line1\nline2\\x1b");
    CHECK(dsp_has_control("a\x1b") == 1);
    CHECK(dsp_has_control("a\x7f") == 1);
    CHECK(dsp_has_control("caf\xc3\xa9") == 0);
}

static void test_hashes(void)
{
    char hex[65], md5[33];
    dsp_sha256_hex("abc", 3, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    dsp_md5_hex("", 0, md5);
    CHECK_EQ_STR(md5, "d41d8cd98f00b204e9800998ecf8427e");
    dsp_sha256 *h = dsp_sha256_new();
    dsp_sha256_update(h, "a", 1);
    dsp_sha256_update(h, "bc", 2);
    dsp_sha256_final_hex(h, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(dsp_hash64("x", 1, 0) == dsp_hash64("x", 1, 0));
    CHECK(dsp_hash64("x", 1, 0) != dsp_hash64("x", 1, 1));
}

static void test_rand_differs_after_fork(void)
{
    int fds[2];
    uint64_t parent_first = dsp_rand64(); /* seed the parent's generator */
    (void)parent_first;
    REQUIRE(pipe(fds) == 0);
    for (int i = 0; i < 2; i++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            uint64_t v = dsp_rand64();
            ssize_t n = write(fds[1], &v, sizeof v);
            _exit(n == (ssize_t)sizeof v ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status));
        CHECK_EQ_INT(WEXITSTATUS(status), 0);
    }
    uint64_t a = 0, b = 0;
    CHECK(read(fds[0], &a, sizeof a) == (ssize_t)sizeof a);
    CHECK(read(fds[0], &b, sizeof b) == (ssize_t)sizeof b);
    CHECK(a != b);
    close(fds[0]);
    close(fds[1]);
}

/* Run fn with stderr sent to a temporary file and return what it wrote
 * (malloc'ed, NUL-terminated). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/dsp-log-test-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    unlink(path);
    int saved = dup(STDERR_FILENO);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);

    off_t size = lseek(fd, 0, SEEK_END);
    char *text = dsp_xcalloc(1, (size_t)size + 1);
    if (pread(fd, text, (size_t)size, 0) != size)
        text[0] = '\0';
    close(fd);
    return text;
}

static size_t count_of(const char *haystack, const char *needle)
{
    size_t n = 0;
    for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Values that try to end their line, add pairs or change the level and
 * event: quotes, backslashes, newlines, control bytes and invalid UTF-8. */
static const char *const hostile_values[] = {
    "x\" level=debug event=forged y.jsonl.gz",
    "Traceback (most recent call last):\n  File \"/tmp/step.py\", line 3\n"
    "ValueError: bad \\\"quote\\\"\r\n",
    "tab\there=1 \\ end\\",
    "bell\a esc\x1b del\x7f nul-free",
    "bad utf-8 \xff\xfe and \xed\xa0\x80 and \xc3",
    "caf\xc3\xa9 \xe2\x82\xac",
    "",
    "level=error",
    "\n",
};
static const size_t n_hostile = sizeof hostile_values / sizeof hostile_values[0];

static size_t hostile_index;

static void log_hostile_value(void)
{
    const char *v = hostile_values[hostile_index];
    DSP_WARN("task_failed", "key=%s attempt_number=%d message=\"%s\" tail=%s", v, 1, v, v);
}

/* Decode one text-format value at *p into out and move *p past it. */
static void decode_text_value(const char **p, dsp_buf *out)
{
    const char *s = *p;
    if (*s != '"') {
        while (*s && *s != ' ' && *s != '\n')
            dsp_buf_append_char(out, *s++);
        *p = s;
        return;
    }
    for (s++; *s && *s != '"'; s++) {
        if (*s != '\\') {
            dsp_buf_append_char(out, *s);
            continue;
        }
        s++;
        if (*s == 'n')
            dsp_buf_append_char(out, '\n');
        else if (*s == 'r')
            dsp_buf_append_char(out, '\r');
        else if (*s == 't')
            dsp_buf_append_char(out, '\t');
        else if (*s == 'x') {
            char hex[3] = {s[1], s[2], '\0'};
            dsp_buf_append_char(out, (char)strtol(hex, NULL, 16));
            s += 2;
        } else {
            dsp_buf_append_char(out, *s);
        }
    }
    *p = *s == '"' ? s + 1 : s;
}

/* The text format quotes and escapes every hostile value, so the line is
 * one line, has each key once and decodes to the exact values. */
static void test_log_text_escapes(void)
{
    for (hostile_index = 0; hostile_index < n_hostile; hostile_index++) {
        const char *v = hostile_values[hostile_index];
        char *line = capture_stderr(log_hostile_value);
        REQUIRE(line != NULL);
        char *nl = strchr(line, '\n');
        CHECKF(nl != NULL && nl[1] == '\0', "value %zu: not one line: %s", hostile_index, line);

        const char *keys[] = {"ts", "level", "event", "pid", "key", "attempt_number", "message", "tail"};
        size_t nkeys = 0;
        dsp_buf value = DSP_BUF_INIT;
        for (const char *p = line; *p && *p != '\n' && nkeys < 8;) {
            const char *eq = strchr(p, '=');
            REQUIRE(eq != NULL);
            CHECKF((size_t)(eq - p) == strlen(keys[nkeys]) && !memcmp(p, keys[nkeys], strlen(keys[nkeys])),
                   "value %zu: key %zu is not %s: %s", hostile_index, nkeys, keys[nkeys], line);
            p = eq + 1;
            dsp_buf_reset(&value);
            decode_text_value(&p, &value);
            if (nkeys == 1)
                CHECKF(strcmp(value.data ? value.data : "", "warn") == 0, "value %zu: %s", hostile_index, line);
            if (nkeys == 2)
                CHECKF(strcmp(value.data ? value.data : "", "task_failed") == 0, "value %zu: %s", hostile_index, line);
            if (nkeys == 4 || nkeys == 6 || nkeys == 7)
                CHECKF(value.len == strlen(v) && !memcmp(value.data ? value.data : "", v, value.len),
                       "value %zu, key %s: decoded value differs: %s", hostile_index, keys[nkeys], line);
            nkeys++;
            if (*p == ' ')
                p++;
            else
                CHECKF(*p == '\n', "value %zu: junk after key %s: %s", hostile_index, keys[nkeys - 1], p);
        }
        CHECKF(nkeys == 8, "value %zu: %zu keys: %s", hostile_index, nkeys, line);
        dsp_buf_free(&value);
        free(line);
    }
}

static void log_json_hostile(void)
{
    DSP_WARN("task_failed", "key=%s message=\"%s\" count=%d", "x\" level=debug event=forged y.jsonl.gz",
             "Traceback:\n  File \"a.py\"\nbad \\ \x01 \xff\xed\xa0\x80 caf\xc3\xa9", 7);
}

/* JSON lines escape quotes, backslashes and control bytes, keep valid
 * UTF-8 as it is and write each byte of invalid UTF-8 as \ufffd. The
 * integration test log_escape.sh parses such lines with Python. */
static void test_log_json_escapes(void)
{
    dsp_log_set_json(1);
    char *line = capture_stderr(log_json_hostile);
    dsp_log_set_json(0);
    REQUIRE(line != NULL);

    CHECKF(strstr(line, "\"level\":\"warn\",\"event\":\"task_failed\"") != NULL, "%s", line);
    CHECKF(strstr(line, ",\"key\":\"x\\\" level=debug event=forged y.jsonl.gz\",") != NULL, "%s", line);
    CHECKF(strstr(line, ",\"message\":\"Traceback:\\n  File \\\"a.py\\\"\\nbad \\\\ \\u0001 "
                        "\\ufffd\\ufffd\\ufffd\\ufffd caf\xc3\xa9\",") != NULL, "%s", line);
    CHECKF(strstr(line, ",\"count\":7}\n") != NULL, "%s", line);
    CHECKF(strchr(line, '\n')[1] == '\0', "%s", line);
    free(line);
}

static void log_typed_values(void)
{
    dsp_log_context("2024", "s0", "t00001", "a1-x");
    DSP_INFO("typed", "count=42 neg=-7 zero=0 lead=007 max=1000000000000000 "
                      "big=9007199254740993 ratio=1.5 id=123 worker=55 job=2024 "
                      "message=\"two words\"");
    dsp_log_context(NULL, NULL, NULL, NULL);
}

/* JSON lines write integers as numbers, up to 2^53, and ids as strings. */
static void test_log_json_numbers(void)
{
    dsp_log_set_json(1);
    char *line = capture_stderr(log_typed_values);
    dsp_log_set_json(0);
    REQUIRE(line != NULL);

    CHECKF(strstr(line, "\"pid\":") && !strstr(line, "\"pid\":\""), "%s", line);
    CHECKF(strstr(line, "\"count\":42,") != NULL, "%s", line);
    CHECKF(strstr(line, "\"neg\":-7,") != NULL, "%s", line);
    CHECKF(strstr(line, "\"zero\":0,") != NULL, "%s", line);
    CHECKF(strstr(line, "\"lead\":\"007\"") != NULL, "%s", line);
    CHECKF(strstr(line, "\"max\":1000000000000000,") != NULL, "%s", line);
    CHECKF(strstr(line, "\"big\":\"9007199254740993\"") != NULL, "%s", line);
    CHECKF(strstr(line, "\"ratio\":\"1.5\"") != NULL, "%s", line);
    CHECKF(strstr(line, "\"id\":\"123\"") != NULL, "%s", line);
    CHECKF(strstr(line, "\"worker\":\"55\"") != NULL, "%s", line);
    CHECKF(strstr(line, "\"message\":\"two words\"") != NULL, "%s", line);
    CHECKF(count_of(line, "\"job\":\"2024\"") == 1, "%s", line);
    free(line);
}

static void log_job_failed(void)
{
    dsp_log_context("job-1", "s0", "t00001", "a1-x");
    DSP_ERROR("job_failed", "job=job-1 stage=s0 task=t00001 attempt=a1-x max_attempts=3");
    DSP_INFO("other_job", "job=job-2 detail=x");
    dsp_log_context(NULL, NULL, NULL, NULL);
    DSP_INFO("no_context", "job=job-1 stage=s0");
}

/* An id that the log context already put on the line is not repeated. An
 * id with another value stays, and so do ids on a line without context. */
static void test_log_context_not_repeated(void)
{
    char *text = capture_stderr(log_job_failed);
    REQUIRE(text != NULL);
    char *second = strchr(text, '\n');
    REQUIRE(second != NULL);
    *second++ = '\0';
    char *third = strchr(second, '\n');
    REQUIRE(third != NULL);
    *third++ = '\0';

    CHECKF(count_of(text, " job=job-1") == 1, "%s", text);
    CHECKF(count_of(text, " stage=s0") == 1, "%s", text);
    CHECKF(count_of(text, " task=t00001") == 1, "%s", text);
    CHECKF(count_of(text, " attempt=a1-x") == 1, "%s", text);
    CHECKF(strstr(text, " max_attempts=3") != NULL, "%s", text);
    CHECKF(strstr(second, " job=job-1") && strstr(second, " job=job-2"), "%s", second);
    CHECKF(strstr(third, " job=job-1 stage=s0") != NULL, "%s", third);
    free(text);
}

/* An unknown DSPARK_LOG_FORMAT is rejected with an error that names the
 * variable and the accepted values. Known values in any case are accepted. */
static void test_log_format_variable(void)
{
    dsp_err err;

    setenv("DSPARK_LOG_FORMAT", "yaml", 1);
    CHECK_EQ_INT(dsp_log_init(&err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "DSPARK_LOG_FORMAT") != NULL, "%s", err.msg);
    CHECKF(strstr(err.msg, "'yaml'") != NULL, "%s", err.msg);
    CHECKF(strstr(err.msg, "text or json") != NULL, "%s", err.msg);

    const char *accepted[] = {"json", "JSON", "text", "Text", ""};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        setenv("DSPARK_LOG_FORMAT", accepted[i], 1);
        CHECKF(dsp_log_init(&err) == DSP_OK, "'%s': %s", accepted[i], err.msg);
    }
    unsetenv("DSPARK_LOG_FORMAT");
    dsp_log_set_json(0);
}

TEST_MAIN({"buf append and reset", test_buf_append_and_reset},
          {"format utc ms", test_format_utc_ms},
          {"escape control", test_escape_control},
          {"err prefix", test_err_prefix},
          {"parse size", test_parse_size},
          {"sha256 md5 xxh3", test_hashes},
          {"rand differs after fork", test_rand_differs_after_fork},
          {"log text escapes", test_log_text_escapes},
          {"log json escapes", test_log_json_escapes},
          {"log json numbers", test_log_json_numbers},
          {"log context not repeated", test_log_context_not_repeated},
          {"log format variable", test_log_format_variable})
