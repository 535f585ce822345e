/*
 * test_local.c - what only the local backend must get right: keys that
 * would escape the root, create-only between separate processes, hidden
 * temporary files, ETags stable across processes, and injected
 * faults travelling through the same paths as real ones.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"
#include "core/util.h"
#include "storage/store.h"
#include "storage/store_impl.h"
#include "test.h"

static char g_dir[64];

/* Open a store in a fresh directory; faults may be NULL. */
static dsp_store *open_local(const char *faults)
{
    dsp_store_config cfg = {.faults = faults};
    dsp_store *s = NULL;
    dsp_err err;

    snprintf(g_dir, sizeof g_dir, "/tmp/dsp-local-XXXXXX");
    if (!mkdtemp(g_dir))
        return NULL;
    char *root = dsp_xasprintf("%s/root", g_dir);
    if (dsp_store_open(root, &cfg, &s, &err) != DSP_OK)
        fprintf(stderr, "  open %s: %s\n", root, err.msg);
    free(root);
    if (s) {
        s->retry.base_ms = 1;
        s->retry.cap_ms = 5;
    }
    return s;
}

static void close_local(dsp_store *s)
{
    dsp_store_close(s);
    char *cmd = dsp_xasprintf("rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  cannot remove %s\n", g_dir);
    free(cmd);
}

/* Count directory entries under dir (recursively) whose name starts with
 * prefix. */
static int count_names(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (!strncmp(de->d_name, prefix, strlen(prefix)))
            n++;
        if (de->d_type == DT_DIR) {
            char *child = dsp_xasprintf("%s/%s", dir, de->d_name);
            n += count_names(child, prefix);
            free(child);
        }
    }
    closedir(d);
    return n;
}

static void test_traversal_rejected(void)
{
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    static const char *const bad[] = {
        "../escape",  "a/../../escape", "/etc/passwd", "a//b",       "a/./b",
        "a/",         ".",              "..",          "x/..",       ".dsp-tmp.1",
        "a/.dsp-locks/1",
    };
    dsp_err err;
    dsp_buf buf = DSP_BUF_INIT;
    dsp_obj_info info;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        CHECK_EQ_INT(dsp_store_put(s, bad[i], "x", 1, NULL, NULL, &err), DSP_EINVAL);
        CHECKF(strstr(err.msg, bad[i]) != NULL, "message '%s' does not name key '%s'", err.msg,
               bad[i]);
        CHECK_EQ_INT(dsp_store_get(s, bad[i], 0, -1, &buf, NULL, &err), DSP_EINVAL);
        CHECK_EQ_INT(dsp_store_head(s, bad[i], &info, &err), DSP_EINVAL);
        CHECK_EQ_INT(dsp_store_copy(s, "fine", bad[i], NULL, &err), DSP_EINVAL);
        const char *keys[] = {bad[i]};
        CHECK_EQ_INT(dsp_store_delete(s, keys, 1, &err), DSP_EINVAL);
        dsp_writer *w = NULL;
        CHECK_EQ_INT(dsp_store_writer_open(s, bad[i], NULL, &w, &err), DSP_EINVAL);
        CHECK(w == NULL);
    }

    /* Nothing was written next to the root or above it. */
    char *outside = dsp_xasprintf("%s/escape", g_dir);
    struct stat st;
    CHECK(stat(outside, &st) != 0);
    free(outside);
    dsp_buf_free(&buf);
    close_local(s);
}

static void test_process_create_only(void)
{
    enum { PROCS = 8 };
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    char *root = dsp_xasprintf("%s/root", g_dir);
    int gate[2];
    REQUIRE(pipe(gate) == 0);

    pid_t pids[PROCS];
    for (int i = 0; i < PROCS; i++) {
        pids[i] = fork();
        REQUIRE(pids[i] >= 0);
        if (pids[i] == 0) {
            /* Each child opens its own handle and waits at the gate, so the
             * puts start together. Exit 0 = won, 1 = lost, 2 = error. */
            dsp_store *cs = NULL;
            dsp_err err;
            char c, body[32];
            close(gate[1]);
            if (dsp_store_open(root, NULL, &cs, &err) != DSP_OK)
                _exit(2);
            (void)read(gate[0], &c, 1);
            snprintf(body, sizeof body, "process %d", i);
            dsp_put_opts opts = {.cond = DSP_PUT_IF_ABSENT};
            dsp_status rc = dsp_store_put(cs, "jobs/x/commit.json", body, strlen(body), &opts,
                                          NULL, &err);
            if (rc == DSP_OK)
                _exit(0);
            _exit(rc == DSP_EPRECOND ? 1 : 2);
        }
    }
    close(gate[0]);
    close(gate[1]); /* opens the gate: every read returns 0 */

    int winners = 0, losers = 0, winner = -1;
    for (int i = 0; i < PROCS; i++) {
        int status;
        REQUIRE(waitpid(pids[i], &status, 0) == pids[i]);
        REQUIRE(WIFEXITED(status));
        if (WEXITSTATUS(status) == 0) {
            winners++;
            winner = i;
        } else if (WEXITSTATUS(status) == 1) {
            losers++;
        }
    }
    CHECK_EQ_INT(winners, 1);
    CHECK_EQ_INT(losers, PROCS - 1);

    dsp_buf buf = DSP_BUF_INIT;
    dsp_err err;
    char want[32];
    snprintf(want, sizeof want, "process %d", winner);
    CHECK_EQ_INT(dsp_store_get(s, "jobs/x/commit.json", 0, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_STR(buf.data, want);
    CHECK_EQ_INT(count_names(root, ".dsp-tmp"), 0);
    dsp_buf_free(&buf);
    free(root);
    close_local(s);
}

/* Add 1 to the number in key "counter" n times with compare-and-swap,
 * retrying when another process won. Returns 0 on success. */
static int increment_in_child(const char *root, int n)
{
    dsp_store *s = NULL;
    dsp_err err;
    dsp_buf buf = DSP_BUF_INIT;

    if (dsp_store_open(root, NULL, &s, &err) != DSP_OK)
        return 1;
    for (int done = 0; done < n;) {
        dsp_obj_info info;
        if (dsp_store_get(s, "counter", 0, -1, &buf, &info, &err) != DSP_OK) {
            fprintf(stderr, "  child get: %s\n", err.msg);
            return 1;
        }
        char next[32];
        snprintf(next, sizeof next, "%ld", strtol(buf.data, NULL, 10) + 1);
        dsp_put_opts swap = {.cond = DSP_PUT_IF_MATCH, .if_match = info.etag};
        dsp_status rc = dsp_store_put(s, "counter", next, strlen(next), &swap, NULL, &err);
        if (rc == DSP_OK) {
            done++;
        } else if (rc != DSP_EPRECOND) {
            fprintf(stderr, "  child put: %s\n", err.msg);
            return 1;
        }
    }
    return 0;
}

static void test_process_compare_and_swap(void)
{
    enum { PROCS = 4, EACH = 25 };
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    char *root = dsp_xasprintf("%s/root", g_dir);
    dsp_err err;
    REQUIRE(dsp_store_put(s, "counter", "0", 1, NULL, NULL, &err) == DSP_OK);

    pid_t pids[PROCS];
    for (int i = 0; i < PROCS; i++) {
        pids[i] = fork();
        REQUIRE(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(increment_in_child(root, EACH));
    }
    int failed = 0;
    for (int i = 0; i < PROCS; i++) {
        int status;
        REQUIRE(waitpid(pids[i], &status, 0) == pids[i]);
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    CHECK_EQ_INT(failed, 0);

    /* A lost update would leave the counter below PROCS x EACH. */
    dsp_buf buf = DSP_BUF_INIT;
    CHECK_EQ_INT(dsp_store_get(s, "counter", 0, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_INT(strtol(buf.data, NULL, 10), PROCS * EACH);
    dsp_buf_free(&buf);
    free(root);
    close_local(s);
}

static void test_listing_hides_internal_files(void)
{
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    char *root = dsp_xasprintf("%s/root", g_dir);
    dsp_err err;
    dsp_obj_info info;

    REQUIRE(dsp_store_put(s, "a/one", "1", 1, NULL, &info, &err) == DSP_OK);
    dsp_put_opts swap = {.cond = DSP_PUT_IF_MATCH, .if_match = info.etag};
    REQUIRE(dsp_store_put(s, "a/one", "2", 1, &swap, NULL, &err) == DSP_OK);
    dsp_writer *w = NULL;
    REQUIRE(dsp_store_writer_open(s, "a/pending", NULL, &w, &err) == DSP_OK);
    REQUIRE(dsp_writer_write(w, "partial", 7, &err) == DSP_OK);

    /* The temporary file exists on disk... */
    CHECK_EQ_INT(count_names(root, ".dsp-tmp"), 1);

    /* ...but no listing shows them. */
    const char *delimiters[] = {NULL, "/"};
    for (int d = 0; d < 2; d++) {
        dsp_list_page all;
        REQUIRE(dsp_store_list_all(s, "", delimiters[d], &all, &err) == DSP_OK);
        for (size_t i = 0; i < all.n; i++)
            CHECKF(strstr(all.items[i].key, ".dsp-") == NULL, "listed %s", all.items[i].key);
        for (size_t i = 0; i < all.nprefixes; i++)
            CHECKF(strstr(all.prefixes[i], ".dsp-") == NULL, "listed %s", all.prefixes[i]);
        CHECK_EQ_INT(all.n, d == 0 ? 1 : 0);
        CHECK_EQ_INT(all.nprefixes, d == 0 ? 0 : 1);
        dsp_list_page_free(&all);
    }

    CHECK_EQ_INT(dsp_writer_close(w, NULL, &err), DSP_OK);
    CHECK_EQ_INT(count_names(root, ".dsp-tmp"), 0);
    dsp_list_page all;
    REQUIRE(dsp_store_list_all(s, "a/", NULL, &all, &err) == DSP_OK);
    CHECK_EQ_INT(all.n, 2);
    dsp_list_page_free(&all);
    free(root);
    close_local(s);
}

/* List prefix in s and return the status, with the message in err. */
static dsp_status list_status(dsp_store *s, const char *prefix, const char *delimiter,
                              dsp_err *err)
{
    dsp_list_page all;
    dsp_status rc = dsp_store_list_all(s, prefix, delimiter, &all, err);
    if (rc == DSP_OK)
        dsp_list_page_free(&all);
    return rc;
}

/* A symlink whose target is missing, or that loops, would silently drop
 * an input file if the listing skipped it. */
static void test_listing_fails_on_broken_link(void)
{
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    dsp_err err;
    REQUIRE(dsp_store_put(s, "in/a.jsonl", "{}\n", 3, NULL, NULL, &err) == DSP_OK);
    REQUIRE(dsp_store_put(s, "other/b.jsonl", "{}\n", 3, NULL, NULL, &err) == DSP_OK);
    char *link = dsp_xasprintf("%s/root/in/c.jsonl", g_dir);
    REQUIRE(symlink("missing.jsonl", link) == 0);

    CHECK_EQ_INT(list_status(s, "in/", NULL, &err), DSP_ENOTFOUND);
    CHECKF(strstr(err.msg, link) && strstr(err.msg, "dangling symlink") &&
               strstr(err.msg, "missing.jsonl"),
           "%s", err.msg);
    /* Naming the link as the whole prefix fails the same way. */
    CHECK_EQ_INT(list_status(s, "in/c.jsonl", NULL, &err), DSP_ENOTFOUND);

    /* Listings that never reach the link still succeed, and so does a
     * delimiter listing that folds it into the common prefix "in/". */
    CHECKF(list_status(s, "other/", NULL, &err) == DSP_OK, "%s", err.msg);
    CHECKF(list_status(s, "", "/", &err) == DSP_OK, "%s", err.msg);

    /* A link in the place of a directory that the prefix names. */
    char *dir_link = dsp_xasprintf("%s/root/gone", g_dir);
    REQUIRE(symlink("missing-dir", dir_link) == 0);
    CHECK_EQ_INT(list_status(s, "gone/x/", NULL, &err), DSP_ENOTFOUND);
    CHECKF(strstr(err.msg, dir_link) && strstr(err.msg, "dangling symlink"), "%s", err.msg);

    /* A link to itself cannot be followed either. */
    REQUIRE(unlink(link) == 0);
    REQUIRE(symlink("c.jsonl", link) == 0);
    CHECK(list_status(s, "in/", NULL, &err) != DSP_OK);
    CHECKF(strstr(err.msg, link) && strstr(err.msg, "cannot follow symlink"), "%s", err.msg);

    /* Once the link is gone the listing works again. */
    REQUIRE(unlink(link) == 0);
    CHECKF(list_status(s, "in/", NULL, &err) == DSP_OK, "%s", err.msg);
    free(dir_link);
    free(link);
    close_local(s);
}

/* A file that the lister may not read fails the listing with DSP_EPERM.
 * Root reads mode 000 files, so when run as root the listing runs in a
 * child process that switches to the user nobody. */
static void test_listing_fails_on_unreadable_file(void)
{
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    dsp_err err;
    REQUIRE(dsp_store_put(s, "in/a.jsonl", "{}\n", 3, NULL, NULL, &err) == DSP_OK);
    REQUIRE(dsp_store_put(s, "in/b.jsonl", "{}\n", 3, NULL, NULL, &err) == DSP_OK);
    char *root = dsp_xasprintf("%s/root", g_dir);
    char *path = dsp_xasprintf("%s/in/b.jsonl", root);
    REQUIRE(chmod(g_dir, 0755) == 0);
    REQUIRE(chmod(path, 0) == 0);

    const struct passwd *nobody = getpwnam("nobody");
    if (geteuid() == 0 && !nobody) {
        free(path);
        free(root);
        close_local(s);
        SKIP("running as root and no user 'nobody' to list as");
    }

    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* Exit 0 with the message on the pipe when the listing failed
         * with DSP_EPERM, 1 when it succeeded, 2 for any other result,
         * and 3 to 5 when the child could not run the listing. */
        close(out[0]);
        if (geteuid() == 0 && (setgid(nobody->pw_gid) != 0 || setuid(nobody->pw_uid) != 0))
            _exit(3);
        dsp_store *cs = NULL;
        dsp_err cerr;
        if (dsp_store_open(root, NULL, &cs, &cerr) != DSP_OK)
            _exit(4);
        dsp_status rc = list_status(cs, "in/", NULL, &cerr);
        if (write(out[1], cerr.msg, strlen(cerr.msg)) < 0)
            _exit(5);
        if (rc == DSP_EPERM)
            _exit(0);
        if (rc == DSP_OK)
            _exit(1);
        _exit(2);
    }
    close(out[1]);
    char msg[DSP_ERR_MSG_MAX + 1];
    ssize_t got = read(out[0], msg, sizeof msg - 1);
    msg[got > 0 ? got : 0] = '\0';
    close(out[0]);
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECKF(WEXITSTATUS(status) == 0, "child exit %d: %s", WEXITSTATUS(status), msg);
    CHECKF(strstr(msg, path) && strstr(msg, "Permission denied"), "%s", msg);

    free(path);
    free(root);
    close_local(s);
}

static void test_key_conflict(void)
{
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    dsp_err err;

    REQUIRE(dsp_store_put(s, "a", "file", 4, NULL, NULL, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_store_put(s, "a/b", "x", 1, NULL, NULL, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "cannot hold both") != NULL, "%s", err.msg);

    REQUIRE(dsp_store_put(s, "d/e", "x", 1, NULL, NULL, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_store_put(s, "d", "x", 1, NULL, NULL, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "cannot hold both") != NULL, "%s", err.msg);

    /* Once d/e is deleted, its empty directory goes too and "d" is free. */
    const char *keys[] = {"d/e"};
    REQUIRE(dsp_store_delete(s, keys, 1, &err) == DSP_OK);
    CHECKF(dsp_store_put(s, "d", "x", 1, NULL, NULL, &err) == DSP_OK, "%s", err.msg);

    dsp_obj_info info;
    CHECK_EQ_INT(dsp_store_head(s, "a/b", &info, &err), DSP_ENOTFOUND);
    close_local(s);
}

/* The ETag the local store gives to content: XXH3 128-bit, big-endian hex. */
static void expected_etag(const char *data, size_t len, char out[33])
{
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, XXH3_128bits(data, len));
    for (size_t i = 0; i < sizeof canon.digest; i++)
        snprintf(out + 2 * i, 3, "%02x", canon.digest[i]);
}

static void test_etag_across_processes(void)
{
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    char *root = dsp_xasprintf("%s/root", g_dir);
    dsp_err err;
    dsp_obj_info put_info;
    const char *body = "the same bytes";

    REQUIRE(dsp_store_put(s, "etag/obj", body, strlen(body), NULL, &put_info, &err) == DSP_OK);
    char want[33];
    expected_etag(body, strlen(body), want);
    CHECK_EQ_STR(put_info.etag, want);

    /* The streaming writer computes the same ETag for the same bytes. */
    dsp_writer *w = NULL;
    REQUIRE(dsp_store_writer_open(s, "etag/streamed", NULL, &w, &err) == DSP_OK);
    REQUIRE(dsp_writer_write(w, body, 5, &err) == DSP_OK);
    REQUIRE(dsp_writer_write(w, body + 5, strlen(body) - 5, &err) == DSP_OK);
    dsp_obj_info streamed;
    REQUIRE(dsp_writer_close(w, &streamed, &err) == DSP_OK);
    CHECK_EQ_STR(streamed.etag, want);

    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dsp_store *cs = NULL;
        dsp_obj_info info;
        close(out[0]);
        if (dsp_store_open(root, NULL, &cs, &err) != DSP_OK ||
            dsp_store_head(cs, "etag/obj", &info, &err) != DSP_OK)
            _exit(2);
        (void)write(out[1], info.etag, strlen(info.etag));
        _exit(0);
    }
    close(out[1]);
    char seen[64] = "";
    ssize_t n = read(out[0], seen, sizeof seen - 1);
    close(out[0]);
    int status;
    waitpid(pid, &status, 0);
    CHECK(n == 32);
    CHECK_EQ_STR(seen, want);

    /* Without the stored xattr the ETag is recomputed to the same value. */
    char *path = dsp_xasprintf("%s/etag/obj", root);
    (void)removexattr(path, "user.dspark.etag-xxh3");
    dsp_obj_info info;
    CHECK_EQ_INT(dsp_store_head(s, "etag/obj", &info, &err), DSP_OK);
    CHECK_EQ_STR(info.etag, want);

    /* A file edited in place gets a fresh ETag, not the stale one. */
    FILE *f = fopen(path, "a");
    REQUIRE(f != NULL);
    fputs(" and more", f);
    fclose(f);
    CHECK_EQ_INT(dsp_store_head(s, "etag/obj", &info, &err), DSP_OK);
    expected_etag("the same bytes and more", 23, want);
    CHECK_EQ_STR(info.etag, want);
    free(path);
    free(root);
    close_local(s);
}

static void test_cput500_rereads(void)
{
    dsp_store *s = open_local("op=cput,error=cput500,rate=1");
    REQUIRE(s != NULL);
    dsp_err err;
    dsp_put_opts create = {.cond = DSP_PUT_IF_ABSENT};

    /* Every conditional PUT lands and then reports 500. The re-read finds
     * our ETag, so the first writer still learns that it won. */
    CHECKF(dsp_store_put(s, "lease", "mine", 4, &create, NULL, &err) == DSP_OK, "%s", err.msg);
    CHECK_EQ_INT(dsp_store_put(s, "lease", "theirs", 6, &create, NULL, &err), DSP_EPRECOND);
    dsp_buf buf = DSP_BUF_INIT;
    CHECK_EQ_INT(dsp_store_get(s, "lease", 0, -1, &buf, NULL, &err), DSP_OK);
    CHECK_EQ_STR(buf.data, "mine");
    dsp_store_stats stats;
    dsp_store_get_stats(s, &stats);
    CHECK(stats.retries >= 1);
    dsp_buf_free(&buf);
    close_local(s);
}

static void test_nocond_ignores_condition(void)
{
    dsp_store *s = open_local("op=cput,error=nocond,rate=1");
    REQUIRE(s != NULL);
    dsp_err err;
    dsp_put_opts create = {.cond = DSP_PUT_IF_ABSENT};

    CHECK_EQ_INT(dsp_store_put(s, "lease", "first", 5, &create, NULL, &err), DSP_OK);
    CHECK_EQ_INT(dsp_store_put(s, "lease", "second", 6, &create, NULL, &err), DSP_OK);
    close_local(s);
}

static void test_403_not_retried(void)
{
    dsp_store *s = open_local("op=get,error=403,rate=1");
    REQUIRE(s != NULL);
    dsp_err err;
    dsp_buf buf = DSP_BUF_INIT;

    REQUIRE(dsp_store_put(s, "k", "v", 1, NULL, NULL, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_store_get(s, "k", 0, -1, &buf, NULL, &err), DSP_EPERM);
    CHECKF(strstr(err.msg, "403") != NULL, "%s", err.msg);
    dsp_store_stats stats;
    dsp_store_get_stats(s, &stats);
    CHECK_EQ_INT(stats.retries, 0);
    dsp_buf_free(&buf);
    close_local(s);
}

static void test_truncate_retried(void)
{
    dsp_store *s = open_local("op=get,error=truncate,rate=0.5;seed=3");
    REQUIRE(s != NULL);
    dsp_log_set_level(DSP_LOG_ERROR);
    dsp_err err;
    dsp_buf buf = DSP_BUF_INIT;
    const char *body = "0123456789abcdef";

    REQUIRE(dsp_store_put(s, "k", body, strlen(body), NULL, NULL, &err) == DSP_OK);
    for (int i = 0; i < 20; i++) {
        CHECKF(dsp_store_get(s, "k", 0, -1, &buf, NULL, &err) == DSP_OK, "%s", err.msg);
        CHECK_EQ_STR(buf.data, body);
    }
    dsp_store_stats stats;
    dsp_store_get_stats(s, &stats);
    CHECK(stats.retries >= 1);

    /* The streaming reader delivers every byte despite short reads. */
    dsp_reader *r = NULL;
    REQUIRE(dsp_store_reader_open(s, "k", 0, -1, NULL, &r, &err) == DSP_OK);
    char got_all[64];
    size_t total = 0, got = 0;
    do {
        CHECK_EQ_INT(dsp_reader_read(r, got_all + total, sizeof got_all - total, &got, &err),
                     DSP_OK);
        total += got;
    } while (got > 0);
    dsp_reader_close(r);
    CHECK_EQ_INT(total, strlen(body));
    if (total == strlen(body))
        CHECK(memcmp(got_all, body, total) == 0);
    dsp_log_set_level(DSP_LOG_WARN);
    dsp_buf_free(&buf);
    close_local(s);
}

/* A reader fails on a file edited in place while it reads, and keeps
 * reading the old version of a file replaced by a put. */
static void test_reader_sees_edit_in_place(void)
{
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    dsp_err err;
    char body[8192];
    memset(body, 'a', sizeof body);
    REQUIRE(dsp_store_put(s, "edited", body, sizeof body, NULL, NULL, &err) == DSP_OK);
    REQUIRE(dsp_store_put(s, "replaced", body, sizeof body, NULL, NULL, &err) == DSP_OK);

    dsp_reader *r = NULL;
    char buf[4096];
    size_t got = 0;
    REQUIRE(dsp_store_reader_open(s, "edited", 0, -1, NULL, &r, &err) == DSP_OK);
    REQUIRE(dsp_reader_read(r, buf, 1000, &got, &err) == DSP_OK);
    CHECK_EQ_INT(got, 1000);

    /* Same size, new bytes and a modification time one second later. */
    char *path = dsp_xasprintf("%s/root/edited", g_dir);
    int fd = open(path, O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pwrite(fd, "EDIT", 4, 5000) == 4);
    struct stat sb;
    REQUIRE(fstat(fd, &sb) == 0);
    struct timespec times[2] = {sb.st_atim, sb.st_mtim};
    times[1].tv_sec += 1;
    REQUIRE(futimens(fd, times) == 0);
    close(fd);
    free(path);

    CHECK_EQ_INT(dsp_reader_read(r, buf, sizeof buf, &got, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "modified while it was read") != NULL, "%s", err.msg);
    CHECKF(strstr(err.msg, "edited") != NULL, "%s", err.msg);
    dsp_reader_close(r);

    REQUIRE(dsp_store_reader_open(s, "replaced", 0, -1, NULL, &r, &err) == DSP_OK);
    REQUIRE(dsp_reader_read(r, buf, 1000, &got, &err) == DSP_OK);
    char other[8192];
    memset(other, 'b', sizeof other);
    REQUIRE(dsp_store_put(s, "replaced", other, sizeof other, NULL, NULL, &err) == DSP_OK);
    size_t total = got;
    for (;;) {
        dsp_status st = dsp_reader_read(r, buf, sizeof buf, &got, &err);
        CHECKF(st == DSP_OK, "%s", err.msg);
        if (st != DSP_OK || got == 0)
            break;
        CHECK(buf[0] == 'a');
        CHECK(buf[got - 1] == 'a');
        total += got;
    }
    CHECK_EQ_INT(total, sizeof body);
    dsp_reader_close(r);
    close_local(s);
}

typedef struct {
    dsp_store *s;
    int id;
    int failures;
} churn_job;

/* Put and delete a key whose parent directories every other thread also
 * creates and removes. */
static void *churn(void *arg)
{
    churn_job *job = arg;
    char key[64];
    dsp_err err;

    snprintf(key, sizeof key, "churn/x/y/t%d", job->id);
    for (int i = 0; i < 200; i++) {
        if (dsp_store_put(job->s, key, "v", 1, NULL, NULL, &err) != DSP_OK) {
            fprintf(stderr, "  put %s: %s\n", key, err.msg);
            job->failures++;
        }
        const char *keys[] = {key};
        if (dsp_store_delete(job->s, keys, 1, &err) != DSP_OK) {
            fprintf(stderr, "  delete %s: %s\n", key, err.msg);
            job->failures++;
        }
    }
    return NULL;
}

static void test_put_delete_churn(void)
{
    enum { THREADS = 4 };
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    pthread_t threads[THREADS];
    churn_job jobs[THREADS];

    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (churn_job){s, i, 0};
        pthread_create(&threads[i], NULL, churn, &jobs[i]);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        failures += jobs[i].failures;
    }
    CHECK_EQ_INT(failures, 0);

    /* Every key was deleted, so the directories are gone too. */
    char *churn_dir = dsp_xasprintf("%s/root/churn", g_dir);
    struct stat st;
    CHECK(stat(churn_dir, &st) != 0);
    free(churn_dir);
    close_local(s);
}

static void test_root_under_file(void)
{
    dsp_store *s = open_local(NULL);
    REQUIRE(s != NULL);
    dsp_err err;
    REQUIRE(dsp_store_put(s, "plain", "x", 1, NULL, NULL, &err) == DSP_OK);

    /* A root that is a file is rejected at open... */
    char *file_root = dsp_xasprintf("%s/root/plain", g_dir);
    dsp_store *bad = NULL;
    CHECK_EQ_INT(dsp_store_open(file_root, NULL, &bad, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "not a directory") != NULL, "%s", err.msg);

    /* ...and a root below a file fails its first write with a message
     * that names the file. */
    char *below = dsp_xasprintf("%s/sub", file_root);
    REQUIRE(dsp_store_open(below, NULL, &bad, &err) == DSP_OK);
    CHECK_EQ_INT(dsp_store_put(bad, "k", "x", 1, NULL, NULL, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, file_root) != NULL, "%s", err.msg);
    dsp_store_close(bad);
    free(below);
    free(file_root);
    close_local(s);
}

/* Streaming writes and reads retry their own injected failures, so the
 * bytes come out exactly as written. */
static void test_streaming_under_faults(void)
{
    dsp_store *s = open_local("op=mpu+get+head,error=503,rate=0.3;seed=11");
    REQUIRE(s != NULL);
    dsp_log_set_level(DSP_LOG_ERROR);
    dsp_err err;
    dsp_writer *w = NULL;
    char chunk[4096];

    REQUIRE(dsp_store_writer_open(s, "stream/obj", NULL, &w, &err) == DSP_OK);
    int write_failures = 0;
    for (int i = 0; i < 256; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        write_failures += dsp_writer_write(w, chunk, sizeof chunk, &err) != DSP_OK;
    }
    CHECK_EQ_INT(write_failures, 0);
    dsp_obj_info info;
    CHECKF(dsp_writer_close(w, &info, &err) == DSP_OK, "%s", err.msg);
    CHECK_EQ_INT(info.size, 256 * sizeof chunk);

    dsp_reader *r = NULL;
    REQUIRE(dsp_store_reader_open(s, "stream/obj", 0, -1, NULL, &r, &err) == DSP_OK);
    size_t total = 0, got = 0, wrong = 0;
    do {
        CHECK_EQ_INT(dsp_reader_read(r, chunk, 1000, &got, &err), DSP_OK);
        for (size_t i = 0; i < got; i++)
            wrong += chunk[i] != 'a' + (int)(((total + i) / 4096) % 26);
        total += got;
    } while (got > 0);
    dsp_reader_close(r);
    CHECK_EQ_INT(total, 256 * sizeof chunk);
    CHECK_EQ_INT(wrong, 0);

    dsp_store_stats stats;
    dsp_store_get_stats(s, &stats);
    CHECKF(stats.retries >= 50, "only %llu retries", (unsigned long long)stats.retries);
    dsp_log_set_level(DSP_LOG_WARN);
    close_local(s);
}

static void test_uri_forms(void)
{
    dsp_store *s = NULL;
    dsp_err err;

    CHECK_EQ_INT(dsp_store_open("http://127.0.0.1/x", NULL, &s, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "http://127.0.0.1/x") != NULL, "%s", err.msg);
    CHECK_EQ_INT(dsp_store_open("file://host/x", NULL, &s, &err), DSP_EINVAL);
    CHECK_EQ_INT(dsp_store_open("", NULL, &s, &err), DSP_EINVAL);

    REQUIRE(dsp_store_open("file:///tmp/dsp-uri-test//sub/", NULL, &s, &err) == DSP_OK);
    CHECK_EQ_STR(dsp_store_uri(s), "file:///tmp/dsp-uri-test/sub");
    CHECK_EQ_STR(dsp_store_kind(s), "local");
    dsp_store_close(s);

    dsp_store_config cfg = {.faults = "op=get,error=bogus,rate=1"};
    CHECK_EQ_INT(dsp_store_open("/tmp/dsp-uri-test", &cfg, &s, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "bogus") != NULL, "%s", err.msg);

    char *root, *key;
    REQUIRE(dsp_uri_split("s3://bucket/a/b.json", &root, &key, &err) == DSP_OK);
    CHECK_EQ_STR(root, "s3://bucket");
    CHECK_EQ_STR(key, "a/b.json");
    free(root);
    free(key);
    REQUIRE(dsp_uri_split("/data/x.jsonl.gz", &root, &key, &err) == DSP_OK);
    CHECK_EQ_STR(root, "/data");
    CHECK_EQ_STR(key, "x.jsonl.gz");
    free(root);
    free(key);
    REQUIRE(dsp_uri_split("file:///x", &root, &key, &err) == DSP_OK);
    CHECK_EQ_STR(root, "file:///");
    CHECK_EQ_STR(key, "x");
    free(root);
    free(key);
    REQUIRE(dsp_uri_split("rel.txt", &root, &key, &err) == DSP_OK);
    CHECK_EQ_STR(root, ".");
    CHECK_EQ_STR(key, "rel.txt");
    free(root);
    free(key);
    CHECK_EQ_INT(dsp_uri_split("s3://bucket", &root, &key, &err), DSP_EINVAL);
    CHECK_EQ_INT(dsp_uri_split("/data/dir/", &root, &key, &err), DSP_EINVAL);

    char *joined = dsp_uri_join("s3://bucket/prefix", "a/b");
    CHECK_EQ_STR(joined, "s3://bucket/prefix/a/b");
    free(joined);
    joined = dsp_uri_join("file:///", "x");
    CHECK_EQ_STR(joined, "file:///x");
    free(joined);
}

TEST_MAIN({"traversal keys rejected", test_traversal_rejected},
          {"create-only across processes", test_process_create_only},
          {"compare-and-swap across processes", test_process_compare_and_swap},
          {"listing hides internal files", test_listing_hides_internal_files},
          {"listing fails on broken link", test_listing_fails_on_broken_link},
          {"listing fails on unreadable file", test_listing_fails_on_unreadable_file},
          {"object and prefix conflict", test_key_conflict},
          {"etag stable across processes", test_etag_across_processes},
          {"cput500 settled by re-read", test_cput500_rereads},
          {"nocond ignores condition", test_nocond_ignores_condition},
          {"403 is not retried", test_403_not_retried},
          {"truncated reads retried", test_truncate_retried},
          {"reader sees edit in place", test_reader_sees_edit_in_place},
          {"put and delete churn", test_put_delete_churn},
          {"streaming under faults", test_streaming_under_faults},
          {"root below a file", test_root_under_file},
          {"store URI forms", test_uri_forms})
