/*
 * test_ops_exec.c - the exec operator with real child processes: rejected
 * without allow_exec, a working command (sed, python3), dropped documents,
 * and commands that fail, write bad JSON or invalid records, write the
 * wrong number of lines, write without end or run too long, commands
 * that leave background processes running, and the masking of
 * credentials in their stderr.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../core/secret.h"
#include "../../storage/s3_creds.h"
#include "ops_helpers.h"
#include "test.h"

static void fill(dsp_batch *b)
{
    dsp_batch_init(b, "text");
    ops_push_text(b, "1", "hello world", 11);
    ops_push_text(b, "2", "second document", 15);
    ops_push_text(b, "3", "drop me", 7);
}

static void test_exec_rejected_without_allow(void)
{
    dsp_batch b;
    ops_run r;
    fill(&b);
    CHECK(ops_run_step(&r, "{\"op\":\"exec\",\"command\":[\"cat\"]}", &b, 0) == DSP_EPERM);
    CHECK(strstr(r.err.msg, "--allow-exec") != NULL);
    CHECK(strstr(r.err.msg, "steps[0] (exec)") != NULL);
    dsp_batch_free(&b);
}

static void test_exec_sed_rewrites(void)
{
    dsp_batch b;
    ops_run r;
    dsp_buf line = DSP_BUF_INIT;
    fill(&b);
    REQUIRE(ops_run_step(&r, "{\"op\":\"exec\",\"command\":[\"sed\",\"s/world/WORLD/\"]}", &b,
                         1) == DSP_OK);
    CHECK_EQ_INT(r.inst.counters.out, 3);
    dsp_doc_serialize(&b, &b.docs[0], &line);
    CHECK_EQ_STR(line.data, "{\"id\":\"1\",\"text\":\"hello WORLD\"}");
    CHECK_EQ_STR(b.docs[0].text, "hello WORLD");
    dsp_buf_free(&line);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

/* Output records get the checks that the reader applies to input: the
 * task fails with the command, the line number and the reason (the
 * pipeline adds the step). */
static void test_exec_invalid_records(void)
{
    static const struct {
        const char *line; /* output line 2, between two valid records */
        const char *reason;
    } cases[] = {
        {"{\"id\":1}", "missing_text"},
        {"{\"text\":42}", "text_not_string"},
        {"{\"text\":\"a\",\"text\":\"b\"}", "duplicate_key"},
        {"{\"text\":\"a\",\"t\\u0065xt\":\"b\"}", "duplicate_key"},
        {"{\"text\":\"\xff\"}", "invalid_utf8"},
        {"{\"text\":\"\\ud800\"}", "invalid_utf8"},
        {"[1]", "not_object"},
        {"not json", "invalid_json"},
    };
    char path[] = "/tmp/dsp-exec-out-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    char step[256];
    snprintf(step, sizeof step,
             "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\",\"cat >/dev/null; cat %s\"]}", path);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        REQUIRE(f != NULL);
        fprintf(f, "{\"text\":\"ok\"}\n%s\n{\"text\":\"ok\"}\n", cases[i].line);
        fclose(f);
        dsp_batch b;
        ops_run r;
        fill(&b);
        CHECKF(ops_run_step(&r, step, &b, 1) == DSP_ECORRUPT, "case %zu: %s", i, r.err.msg);
        CHECKF(strstr(r.err.msg, "exec sh: output line 2 is not a valid record") != NULL,
               "case %zu: %s", i, r.err.msg);
        CHECKF(strstr(r.err.msg, cases[i].reason) != NULL, "case %zu: %s lacks %s", i,
               r.err.msg, cases[i].reason);
        dsp_op_instance_free(&r.inst);
        dsp_batch_free(&b);
    }
    unlink(path);
}

static void test_exec_python_maps_and_drops(void)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        SKIP("python3 is not installed");
    static const char script[] =
        "import json,sys\n"
        "for line in sys.stdin:\n"
        "    d = json.loads(line)\n"
        "    if d['text'].startswith('drop'):\n"
        "        print('null')\n"
        "        continue\n"
        "    d['text'] = d['text'][::-1]\n"
        "    d['n'] = len(d['text'])\n"
        "    print(json.dumps(d))\n";
    dsp_batch b;
    ops_run r;
    fill(&b);

    cJSON *step = cJSON_CreateObject();
    cJSON_AddStringToObject(step, "op", "exec");
    cJSON *cmd = cJSON_AddArrayToObject(step, "command");
    cJSON_AddItemToArray(cmd, cJSON_CreateString("python3"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString(script));
    char *json = cJSON_PrintUnformatted(step);
    cJSON_Delete(step);

    REQUIRE(ops_run_step(&r, json, &b, 1) == DSP_OK);
    free(json);
    CHECK(r.keep[0]);
    CHECK(r.keep[1]);
    CHECK(!r.keep[2]);
    CHECK_EQ_INT(r.inst.counters.removed[0], 1);
    /* The new line replaces the document, and its text is decoded again. */
    CHECK_EQ_STR(ops_text(&b, 0), "dlrow olleh");
    const char *raw;
    size_t raw_len;
    CHECK(dsp_json_find(b.docs[1].line, b.docs[1].line_len, "n", &raw, &raw_len));
    CHECK_EQ_INT(raw_len, 2);
    CHECK(memcmp(raw, "15", 2) == 0);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_exec_failing_command(void)
{
    dsp_batch b;
    ops_run r;
    fill(&b);
    CHECK(ops_run_step(&r,
                       "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\","
                       "\"cat >/dev/null; echo 'model file missing' >&2; exit 3\"]}",
                       &b, 1) == DSP_EIO);
    CHECK(strstr(r.err.msg, "exited with status 3") != NULL);
    CHECK(strstr(r.err.msg, "model file missing") != NULL);
    dsp_op_instance_free(&r.inst);

    /* A command that does not exist fails the same way (exit 127). */
    CHECK(ops_run_step(&r, "{\"op\":\"exec\",\"command\":[\"/nonexistent/dspark-tool\"]}", &b,
                       1) == DSP_EIO);
    CHECK(strstr(r.err.msg, "status 127") != NULL);
    CHECK(strstr(r.err.msg, "cannot run /nonexistent/dspark-tool") != NULL);
    dsp_op_instance_free(&r.inst);

    /* A command that exits without reading its input must not kill the
     * test with SIGPIPE. */
    CHECK(ops_run_step(&r, "{\"op\":\"exec\",\"command\":[\"false\"]}", &b, 1) == DSP_EIO);
    CHECK(strstr(r.err.msg, "status 1") != NULL);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_exec_bad_output(void)
{
    dsp_batch b;
    ops_run r;
    fill(&b);
    CHECK(ops_run_step(&r,
                       "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\","
                       "\"cat >/dev/null; echo '{\\\"text\\\":\\\"x\\\"}'; echo 'not json'; echo '{}'\"]}",
                       &b, 1) == DSP_ECORRUPT);
    CHECK(strstr(r.err.msg, "output line 2 is not a valid record (invalid_json") != NULL);
    CHECK(strstr(r.err.msg, "not json") != NULL);
    dsp_op_instance_free(&r.inst);

    CHECK(ops_run_step(&r, "{\"op\":\"exec\",\"command\":[\"head\",\"-n\",\"1\"]}", &b, 1) ==
          DSP_ECORRUPT);
    CHECK(strstr(r.err.msg, "wrote 1 lines for 3 documents") != NULL);
    dsp_op_instance_free(&r.inst);

    CHECK(ops_run_step(&r, "{\"op\":\"exec\",\"command\":[\"sed\",\"p\"]}", &b, 1) ==
          DSP_ECORRUPT);
    CHECK(strstr(r.err.msg, "more lines") != NULL);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

/* The command runs without the credential variables, and a secret that
 * its stderr contains anyway is masked in the error message. */
static void test_exec_no_credentials(void)
{
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN"};
    char *saved[5];
    for (int i = 0; i < 5; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        setenv(vars[i], "exec-test-secret-value", 1);
    }
    setenv("DSP_EXEC_TEST_KEPT", "kept", 1);

    dsp_batch b;
    ops_run r;
    fill(&b);
    CHECK(ops_run_step(&r,
                       "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\",\"cat >/dev/null; "
                       "env | grep -c exec-test-secret >&2; echo other=$DSP_EXEC_TEST_KEPT >&2; "
                       "exit 3\"]}",
                       &b, 1) == DSP_EIO);
    /* grep -c prints 0: no variable of the command has the secret. */
    CHECKF(strstr(r.err.msg, "stderr: 0\nother=kept") != NULL, "%s", r.err.msg);
    dsp_op_instance_free(&r.inst);

    CHECK(ops_run_step(&r,
                       "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\",\"cat >/dev/null; "
                       "echo leaked exec-test-secret-value. >&2; exit 3\"]}",
                       &b, 1) == DSP_EIO);
    CHECKF(strstr(r.err.msg, "exec-test-secret-value") == NULL, "%s", r.err.msg);
    CHECKF(strstr(r.err.msg, "leaked ***.") != NULL, "%s", r.err.msg);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);

    for (int i = 0; i < 5; i++) {
        if (saved[i])
            setenv(vars[i], saved[i], 1);
        else
            unsetenv(vars[i]);
        free(saved[i]);
    }
    unsetenv("DSP_EXEC_TEST_KEPT");
}

/* A command that writes without end fails the task as soon as it passes
 * the number of documents, without a timeout: the task would otherwise
 * buffer its output until the command exits. */
static void test_exec_endless_lines(void)
{
    dsp_batch b;
    ops_run r;
    fill(&b);
    CHECK(ops_run_step(&r,
                       "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\","
                       "\"yes '{\\\"text\\\":\\\"x\\\"}'\"]}",
                       &b, 1) == DSP_ECORRUPT);
    CHECKF(strstr(r.err.msg, "exec sh: wrote more lines than the 3 documents it was given") !=
               NULL,
           "%s", r.err.msg);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

/* Output lines may be as long as the job's max_record_bytes and no
 * longer, and an endless line fails the task at once. */
static void test_exec_max_line(void)
{
    dsp_op_ctx ctx = {1, "text", NULL, 64};
    dsp_batch b;
    ops_run r;
    /* {"text":"<53 x>"} is 64 bytes. */
    char step[512], text[54];
    memset(text, 'x', 53);
    text[53] = '\0';
    snprintf(step, sizeof step,
             "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\",\"cat >/dev/null; "
             "for i in 1 2 3; do echo '{\\\"text\\\":\\\"%s\\\"}'; done\"]}",
             text);
    fill(&b);
    REQUIRE(ops_run_step_ctx(&r, step, &b, &ctx) == DSP_OK);
    CHECK_EQ_STR(ops_text(&b, 2), text);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);

    /* One byte more. */
    snprintf(step, sizeof step,
             "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\",\"cat >/dev/null; "
             "for i in 1 2 3; do echo '{\\\"text\\\":\\\"%sx\\\"}'; done\"]}",
             text);
    fill(&b);
    CHECK(ops_run_step_ctx(&r, step, &b, &ctx) == DSP_ECORRUPT);
    CHECKF(strstr(r.err.msg, "exec sh: output line 1 is longer than 64 bytes") != NULL, "%s",
           r.err.msg);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);

    fill(&b);
    CHECK(ops_run_step_ctx(&r,
                           "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\","
                           "\"exec tr '\\\\0' x </dev/zero\"]}",
                           &b, &ctx) == DSP_ECORRUPT);
    CHECKF(strstr(r.err.msg, "exec sh: output line 1 is longer than 64 bytes") != NULL, "%s",
           r.err.msg);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

/* Fails the test if msg contains DSP_SECRET_MIN_LEN or more bytes in a
 * row of secret. */
static void check_no_secret_part(const char *msg, const char *secret, const char *label)
{
    size_t n = strlen(secret);
    for (size_t i = 0; i + DSP_SECRET_MIN_LEN <= n; i++)
        CHECKF(memmem(msg, strlen(msg), secret + i, DSP_SECRET_MIN_LEN) == NULL,
               "%s: bytes %zu to %zu of the secret in: %s", label, i, i + DSP_SECRET_MIN_LEN,
               msg);
}

/* The stderr that the command writes is kept as a tail of 1 KiB. A
 * secret that the end of that tail cuts, or that the command's output
 * cuts, is masked all the same. */
static void test_exec_mask_cut_secret(void)
{
    static const char secret[] = "exec-test-cut-secret/0123456789abcdefXYZ";
    const char *saved = getenv("AWS_SECRET_ACCESS_KEY");
    char *saved_copy = saved ? strdup(saved) : NULL;
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);

    char path[] = "/tmp/dsp-exec-stderr-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    char step[256];
    snprintf(step, sizeof step,
             "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\","
             "\"cat >/dev/null; cat %s >&2; exit 1\"]}",
             path);

    /* The last 1 KiB starts 16 bytes into the secret. */
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < 4016; i++)
        fputc('p', f);
    fputs(secret, f);
    for (int i = 0; i < 1000; i++)
        fputc('q', f);
    fclose(f);
    dsp_batch b;
    ops_run r;
    fill(&b);
    CHECK(ops_run_step(&r, step, &b, 1) == DSP_EIO);
    CHECKF(strstr(r.err.msg, "***qqq") != NULL, "%s", r.err.msg);
    check_no_secret_part(r.err.msg, secret, "cut by the tail");
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);

    /* The command's stderr ends with the first 20 bytes of the secret. */
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "writing the key: %.20s", secret);
    fclose(f);
    fill(&b);
    CHECK(ops_run_step(&r, step, &b, 1) == DSP_EIO);
    CHECKF(strstr(r.err.msg, "writing the key: ***") != NULL, "%s", r.err.msg);
    check_no_secret_part(r.err.msg, secret, "cut by the command");
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);

    unlink(path);
    if (saved_copy)
        setenv("AWS_SECRET_ACCESS_KEY", saved_copy, 1);
    else
        unsetenv("AWS_SECRET_ACCESS_KEY");
    free(saved_copy);
}

/* Credentials that the S3 client reads from the profile file, with no
 * credential variables set, are masked in the command's stderr. */
static void test_exec_mask_profile_credentials(void)
{
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN", "AWS_PROFILE",
                                       "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "HOME"};
    enum { NVARS = sizeof vars / sizeof vars[0] };
    static const char access_key[] = "AKIAEXECTESTPROFILE1";
    static const char secret_key[] = "exec-test-profile-secret/abcdefghij0123456";
    char *saved[NVARS];
    for (int i = 0; i < NVARS; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }

    char home[] = "/tmp/dsp-exec-home-XXXXXX", path[256];
    REQUIRE(mkdtemp(home) != NULL);
    snprintf(path, sizeof path, "%s/.aws", home);
    REQUIRE(mkdir(path, 0700) == 0);
    snprintf(path, sizeof path, "%s/.aws/credentials", home);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", access_key,
            secret_key);
    fclose(f);
    setenv("HOME", home, 1);

    dsp_s3_creds_chain *chain = NULL;
    dsp_err err;
    REQUIRE(dsp_s3_creds_chain_open(NULL, &chain, &err) == DSP_OK);
    CHECK_EQ_STR(dsp_s3_creds_chain_source(chain), "profile");

    dsp_batch b;
    ops_run r;
    fill(&b);
    CHECK(ops_run_step(&r,
                       "{\"op\":\"exec\",\"command\":[\"sh\",\"-c\","
                       "\"cat >/dev/null; cat $HOME/.aws/credentials >&2; exit 1\"]}",
                       &b, 1) == DSP_EIO);
    CHECKF(strstr(r.err.msg, "aws_secret_access_key = ***") != NULL, "%s", r.err.msg);
    CHECKF(strstr(r.err.msg, "aws_access_key_id = ***") != NULL, "%s", r.err.msg);
    check_no_secret_part(r.err.msg, secret_key, "profile secret key");
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
    dsp_s3_creds_chain_free(chain);

    unlink(path);
    snprintf(path, sizeof path, "%s/.aws", home);
    rmdir(path);
    rmdir(home);
    for (int i = 0; i < NVARS; i++) {
        if (saved[i])
            setenv(vars[i], saved[i], 1);
        else
            unsetenv(vars[i]);
        free(saved[i]);
    }
}

static void test_exec_timeout(void)
{
    dsp_batch b;
    ops_run r;
    fill(&b);
    CHECK(ops_run_step(&r,
                       "{\"op\":\"exec\",\"command\":[\"sleep\",\"30\"],\"timeout_seconds\":0.3}",
                       &b, 1) == DSP_EIO);
    CHECK(strstr(r.err.msg, "timed out after 0.3 seconds") != NULL);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

/* Build an exec step that runs `sh -c script` with timeout_seconds. The
 * caller frees it. */
static char *sh_step(const char *script, double timeout_seconds)
{
    cJSON *step = cJSON_CreateObject();
    cJSON_AddStringToObject(step, "op", "exec");
    cJSON *cmd = cJSON_AddArrayToObject(step, "command");
    cJSON_AddItemToArray(cmd, cJSON_CreateString("sh"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(cmd, cJSON_CreateString(script));
    cJSON_AddNumberToObject(step, "timeout_seconds", timeout_seconds);
    char *json = cJSON_PrintUnformatted(step);
    cJSON_Delete(step);
    return json;
}

/* Read the pids in path, one per line, into pids. Returns how many. */
static size_t read_pids(const char *path, pid_t *pids, size_t max)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int pid;
    if (!f)
        return 0;
    while (n < max && fscanf(f, "%d", &pid) == 1)
        pids[n++] = (pid_t)pid;
    fclose(f);
    return n;
}

/* The process exists and is not a zombie (PID 1 of a container may
 * never reap orphans). */
static int process_running(pid_t pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *comm_end = strrchr(stat, ')');
    return comm_end && comm_end[1] == ' ' && comm_end[2] != 'Z';
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The command's exit ends the batch: a background process that it leaves
 * running, with or without its stdout or stderr open, is stopped at once,
 * and the batch succeeds. One that ignores SIGTERM gets SIGKILL after the
 * 2 s grace period. */
static void test_exec_background_process(void)
{
    static const struct {
        const char *script; /* %s is the file that gets the background pid */
        const char *label;
        double min_seconds;
    } cases[] = {
        {"sleep 300 & echo $! >%s; exec cat", "stdout and stderr open", 0},
        {"sleep 300 >/dev/null & echo $! >%s; exec cat", "stderr open", 0},
        {"sleep 300 >/dev/null 2>&1 & echo $! >%s; exec cat", "no pipe open", 0},
        {"trap '' TERM; sleep 300 & echo $! >%s; exec cat", "ignores SIGTERM", 1.9},
    };
    char path[] = "/tmp/dsp-exec-pids-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char script[256];
        snprintf(script, sizeof script, cases[i].script, path);
        char *step = sh_step(script, 60);
        dsp_batch b;
        ops_run r;
        fill(&b);
        double start = seconds_now();
        dsp_status st = ops_run_step(&r, step, &b, 1);
        double elapsed = seconds_now() - start;
        free(step);

        CHECKF(st == DSP_OK, "%s: %s", cases[i].label, r.err.msg);
        CHECKF(elapsed < 10, "%s: took %.1f s", cases[i].label, elapsed);
        CHECKF(elapsed >= cases[i].min_seconds, "%s: took only %.1f s", cases[i].label,
               elapsed);
        if (st == DSP_OK) {
            CHECK_EQ_INT(r.inst.counters.out, 3);
            CHECK_EQ_STR(ops_text(&b, 0), "hello world");
            CHECK_EQ_STR(ops_text(&b, 2), "drop me");
        }
        pid_t pid;
        CHECKF(read_pids(path, &pid, 1) == 1, "%s: no pid in %s", cases[i].label, path);
        if (read_pids(path, &pid, 1) == 1 && process_running(pid)) {
            CHECKF(0, "%s: background process %d still runs", cases[i].label, (int)pid);
            kill(pid, SIGKILL);
        }
        dsp_op_instance_free(&r.inst);
        dsp_batch_free(&b);
    }
    unlink(path);
}

/* A command that exits with lines missing while its background processes
 * keep stdout open fails at once, and the message names the processes that
 * were stopped. So does one that exits non-zero. */
static void test_exec_background_failures(void)
{
    char path[] = "/tmp/dsp-exec-pids-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    char script[256];
    snprintf(script, sizeof script,
             "sleep 300 & echo $! >>%s; sleep 300 & echo $! >>%s; head -n 1", path, path);
    char *step = sh_step(script, 60);
    dsp_batch b;
    ops_run r;
    fill(&b);
    double start = seconds_now();
    CHECK(ops_run_step(&r, step, &b, 1) == DSP_ECORRUPT);
    double elapsed = seconds_now() - start;
    free(step);
    CHECKF(elapsed < 10, "lines missing: took %.1f s", elapsed);
    CHECKF(strstr(r.err.msg, "exec sh: wrote 1 lines for 3 documents") != NULL, "%s",
           r.err.msg);
    CHECKF(strstr(r.err.msg, "it exited and left 2 processes running (pids ") != NULL, "%s",
           r.err.msg);
    CHECKF(strstr(r.err.msg, "which were stopped") != NULL, "%s", r.err.msg);
    pid_t pids[2];
    CHECK(read_pids(path, pids, 2) == 2);
    for (size_t i = 0; i < read_pids(path, pids, 2); i++) {
        char pid[16];
        snprintf(pid, sizeof pid, "%d", (int)pids[i]);
        CHECKF(strstr(r.err.msg, pid) != NULL, "pid %s not in: %s", pid, r.err.msg);
        if (process_running(pids[i])) {
            CHECKF(0, "lines missing: background process %d still runs", (int)pids[i]);
            kill(pids[i], SIGKILL);
        }
    }
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);

    snprintf(script, sizeof script, "sleep 300 & echo $! >%s; cat >/dev/null; exit 3", path);
    step = sh_step(script, 60);
    fill(&b);
    start = seconds_now();
    CHECK(ops_run_step(&r, step, &b, 1) == DSP_EIO);
    elapsed = seconds_now() - start;
    free(step);
    CHECKF(elapsed < 10, "exit status 3: took %.1f s", elapsed);
    CHECKF(strstr(r.err.msg, "exec sh: exited with status 3") != NULL, "%s", r.err.msg);
    CHECK(read_pids(path, pids, 1) == 1);
    if (read_pids(path, pids, 1) == 1 && process_running(pids[0])) {
        CHECKF(0, "exit status 3: background process %d still runs", (int)pids[0]);
        kill(pids[0], SIGKILL);
    }
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
    unlink(path);
}

static void test_exec_invalid_options(void)
{
    dsp_batch b;
    ops_run r;
    fill(&b);
    CHECK(ops_run_step(&r, "{\"op\":\"exec\"}", &b, 1) == DSP_EINVAL);
    CHECK(strstr(r.err.msg, "\"command\" is required") != NULL);
    CHECK(ops_run_step(&r, "{\"op\":\"exec\",\"command\":[\"tr\", 3]}", &b, 1) == DSP_EINVAL);
    dsp_batch_free(&b);
}

TEST_MAIN({"exec rejected without allow", test_exec_rejected_without_allow},
          {"exec sed rewrites", test_exec_sed_rewrites},
          {"exec invalid records", test_exec_invalid_records},
          {"exec without credentials", test_exec_no_credentials},
          {"exec python maps and drops", test_exec_python_maps_and_drops},
          {"exec failing command", test_exec_failing_command},
          {"exec bad output", test_exec_bad_output},
          {"exec endless lines", test_exec_endless_lines},
          {"exec max line length", test_exec_max_line},
          {"exec masks cut secret", test_exec_mask_cut_secret},
          {"exec masks profile credentials", test_exec_mask_profile_credentials},
          {"exec timeout", test_exec_timeout},
          {"exec background process", test_exec_background_process},
          {"exec background failures", test_exec_background_failures},
          {"exec invalid options", test_exec_invalid_options})
