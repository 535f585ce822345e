/* Tests of core/: buffers, errors, size parsing, hashing. */
#include "../../core/buf.h"
#include "../../core/err.h"
#include "../../core/log.h"
#include "../../core/util.h"
#include "test.h"

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

static void test_log_quote(void)
{
    char q[64];
    CHECK_EQ_STR(dsp_log_quote("plain", q, sizeof q), "plain");
    CHECK_EQ_STR(dsp_log_quote("two words", q, sizeof q), "\"two words\"");
    CHECK_EQ_STR(dsp_log_quote("say \"hi\"", q, sizeof q), "\"say \\\"hi\\\"\"");
}

TEST_MAIN({"buf append and reset", test_buf_append_and_reset},
          {"err prefix", test_err_prefix},
          {"parse size", test_parse_size},
          {"sha256 md5 xxh3", test_hashes},
          {"rand differs after fork", test_rand_differs_after_fork},
          {"log quote", test_log_quote})
