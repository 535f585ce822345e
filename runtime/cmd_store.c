/*
 * cmd_store.c - the storage commands: ls, cat, cp, rm and doctor.
 *
 * An object argument is either a URI with a scheme (s3://bucket/key,
 * file:///abs/path), a key inside the store given by --store or
 * $DSPARK_STORE, or, when no store is set, a local path. cp is the
 * exception: it copies between two full addresses, so its plain arguments
 * are always local paths and "-" means stdin or stdout.
 *
 * Data is streamed through dsp_reader and dsp_writer in 1 MiB buffers, so
 * objects of any size pass through bounded memory. The exception is
 * cp --if-absent (see copy_if_absent).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../storage/store.h"
#include "cli.h"

#define STREAM_CHUNK (1u << 20)
/* Multipart parts in flight for cp. One copy owns the process, so it can
 * afford twice the store default: 8 parts of 8 MiB plus the one being
 * filled. With 4, a 1 GiB PUT to RGW on a 2-core VM ran at about 0.76x
 * curl's single PUT; with 8 at about 0.95x (bench/RESULTS.md). */
#define COPY_PARALLEL_PARTS 8
/* cp --if-absent sends one create-only PUT, so the source is held in memory. */
#define IF_ABSENT_MAX ((size_t)256 << 20)

/* ---- addressing -------------------------------------------------------- */

/* An object or prefix resolved to an open store and a key inside it. */
typedef struct {
    dsp_store *store;
    char *key; /* "" for the whole store */
} store_target;

static void target_free(store_target *t)
{
    dsp_store_close(t->store);
    free(t->key);
    t->store = NULL;
    t->key = NULL;
}

/* Whether arg starts with "scheme://". Any scheme counts, so that an
 * unsupported one (http://) is rejected as a URI instead of being taken as
 * a key in the default store. */
static int has_uri_scheme(const char *arg)
{
    const char *p = arg;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9' && p > arg) || *p == '+' ||
           *p == '-' || *p == '.')
        p++;
    return p > arg && !strncmp(p, "://", 3);
}

/* Map a store error to the command's exit code. */
static int exit_code_for(dsp_status rc)
{
    if (rc == DSP_ENOTFOUND)
        return DSP_EXIT_NOTFOUND;
    if (rc == DSP_EINVAL)
        return DSP_EXIT_USAGE;
    return DSP_EXIT_FAILED;
}

static int fail(const char *cmd, const dsp_err *err)
{
    fprintf(stderr, "dspark %s: %s\n", cmd, err->msg);
    return exit_code_for(err->code);
}

/*
 * Resolve arg into a store and a key. With as_prefix set, a URI or local
 * path that names a directory (or "s3://bucket") resolves to the whole
 * store with an empty key. Otherwise the last path component is the key.
 */
static dsp_status resolve(const char *arg, const char *store_uri, int as_prefix,
                          store_target *t, dsp_err *err)
{
    char *root = NULL;
    dsp_status rc;

    memset(t, 0, sizeof *t);
    if (!has_uri_scheme(arg) && store_uri) {
        rc = dsp_store_open(store_uri, NULL, &t->store, err);
        if (rc == DSP_OK)
            t->key = dsp_xstrdup(arg);
        return rc;
    }

    if (as_prefix && !strncmp(arg, "s3://", 5)) {
        const char *slash = strchr(arg + 5, '/');
        root = slash ? dsp_xstrndup(arg, (size_t)(slash - arg)) : dsp_xstrdup(arg);
        t->key = dsp_xstrdup(slash ? slash + 1 : "");
    } else if (as_prefix) {
        const char *path = !strncmp(arg, "file://", 7) ? arg + 7 : arg;
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            root = dsp_xstrdup(arg);
            t->key = dsp_xstrdup("");
        }
    }
    if (!root) {
        rc = dsp_uri_split(arg, &root, &t->key, err);
        if (rc != DSP_OK)
            return rc;
    }
    rc = dsp_store_open(root, NULL, &t->store, err);
    free(root);
    if (rc != DSP_OK) {
        free(t->key);
        t->key = NULL;
    }
    return rc;
}

/*
 * Open a reader on t's key. S3 returns the same response to a HEAD of a
 * missing object and a HEAD in a missing bucket: 404 without a body. So on
 * DSP_ENOTFOUND a one-key listing distinguishes the two, and a missing bucket
 * is reported as NoSuchBucket with its name.
 */
static dsp_status open_object_reader(const store_target *t, uint64_t offset, int64_t length,
                                     dsp_reader **r, dsp_err *err)
{
    dsp_status rc = dsp_store_reader_open(t->store, t->key, offset, length, NULL, r, err);
    if (rc != DSP_ENOTFOUND || strcmp(dsp_store_kind(t->store), "s3") != 0)
        return rc;
    dsp_list_page page;
    dsp_err list_err;
    dsp_status list_rc = dsp_store_list_page(t->store, "", NULL, NULL, 1, &page, &list_err);
    if (list_rc == DSP_OK) {
        dsp_list_page_free(&page);
        return rc;
    }
    if (!strstr(list_err.msg, "NoSuchBucket"))
        return rc;
    const char *bucket = dsp_store_uri(t->store) + strlen("s3://");
    char *name = dsp_store_object_name(t->store, t->key);
    rc = dsp_err_set(err, list_err.code,
                     "read %s: bucket '%.*s' does not exist (listing it returned HTTP 404 "
                     "NoSuchBucket); check the bucket name and AWS_ENDPOINT_URL",
                     name, (int)strcspn(bucket, "/"), bucket);
    free(name);
    return rc;
}

static const char *store_option(const char *from_command_line)
{
    return from_command_line ? from_command_line : dsp_cli_default_store();
}

static void format_mtime(int64_t mtime_ms, char *out, size_t cap)
{
    time_t t = (time_t)(mtime_ms / 1000);
    struct tm tm;
    if (mtime_ms <= 0 || !gmtime_r(&t, &tm)) {
        snprintf(out, cap, "%19s", "-");
        return;
    }
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

/* ---- ls ---------------------------------------------------------------- */

static void ls_usage(FILE *to)
{
    fprintf(to,
            "usage: dspark ls [PREFIX|URI] [--store URI] [--recursive] [--json]\n"
            "\n"
            "List objects whose keys start with PREFIX (a key prefix in the store) or\n"
            "under URI (s3://bucket/prefix, file:///dir, or a local directory).\n"
            "Without --recursive, keys below the next '/' are shown once as a common\n"
            "prefix ending in '/'. Sizes are in bytes, times in UTC.\n"
            "\n"
            "  --store URI     store to list (default: $DSPARK_STORE)\n"
            "  -r, --recursive list every key, not one level\n"
            "  --json          print one JSON document: objects and prefixes\n");
}

static void ls_print_json(const store_target *t, const dsp_list_page *all)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "store", dsp_store_uri(t->store));
    cJSON_AddStringToObject(doc, "prefix", t->key);
    cJSON *objects = cJSON_AddArrayToObject(doc, "objects");
    for (size_t i = 0; i < all->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", all->items[i].key);
        cJSON_AddNumberToObject(o, "size", (double)all->items[i].size);
        cJSON_AddStringToObject(o, "etag", all->items[i].etag);
        cJSON_AddNumberToObject(o, "mtime_ms", (double)all->items[i].mtime_ms);
        cJSON_AddItemToArray(objects, o);
    }
    cJSON *prefixes = cJSON_AddArrayToObject(doc, "prefixes");
    for (size_t i = 0; i < all->nprefixes; i++)
        cJSON_AddItemToArray(prefixes, cJSON_CreateString(all->prefixes[i]));
    char *text = cJSON_Print(doc);
    puts(text);
    free(text);
    cJSON_Delete(doc);
}

/* Print the listing one page at a time, so memory stays bounded however
 * many keys the store holds. */
static dsp_status ls_print_pages(const store_target *t, const char *delimiter, dsp_err *err)
{
    char *token = NULL;
    dsp_status rc;

    do {
        dsp_list_page page;
        rc = dsp_store_list_page(t->store, t->key, delimiter, token, 1000, &page, err);
        free(token);
        token = NULL;
        if (rc != DSP_OK)
            break;

        /* Both arrays are in S3 order; merge them for one sorted listing. */
        size_t i = 0, j = 0;
        while (i < page.n || j < page.nprefixes) {
            int take_prefix = i == page.n || (j < page.nprefixes &&
                                              strcmp(page.prefixes[j], page.items[i].key) < 0);
            if (take_prefix) {
                printf("%19s %12s %s\n", "", "PRE", page.prefixes[j++]);
                continue;
            }
            char when[32];
            format_mtime(page.items[i].mtime_ms, when, sizeof when);
            printf("%s %12llu %s\n", when, (unsigned long long)page.items[i].size,
                   page.items[i].key);
            i++;
        }
        token = page.next_token ? dsp_xstrdup(page.next_token) : NULL;
        dsp_list_page_free(&page);
    } while (token);
    return rc;
}

int dsp_cmd_ls(int argc, char **argv)
{
    static const struct option options[] = {
        {"store", required_argument, NULL, 's'},
        {"recursive", no_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *store = NULL;
    int recursive = 0, json = 0, c;

    while ((c = getopt_long(argc, argv, "rh", options, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'r': recursive = 1; break;
        case 'j': json = 1; break;
        case 'h': ls_usage(stdout); return DSP_EXIT_OK;
        default: ls_usage(stderr); return DSP_EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dspark ls: expected at most one PREFIX or URI, got %d\n",
                argc - optind);
        return DSP_EXIT_USAGE;
    }
    store = store_option(store);
    const char *arg = optind < argc ? argv[optind] : NULL;
    if (!arg && !store) {
        fprintf(stderr, "dspark ls: missing URI: give one, or set --store or DSPARK_STORE\n");
        return DSP_EXIT_USAGE;
    }

    store_target t;
    dsp_err err;
    dsp_status rc = resolve(arg ? arg : "", store, 1, &t, &err);
    if (rc != DSP_OK)
        return fail("ls", &err);

    const char *delimiter = recursive ? NULL : "/";
    if (json) {
        /* NOTE: --json builds one document, so the whole listing is kept
         * in memory. The text output streams page by page. */
        dsp_list_page all;
        rc = dsp_store_list_all(t.store, t.key, delimiter, &all, &err);
        if (rc == DSP_OK) {
            ls_print_json(&t, &all);
            dsp_list_page_free(&all);
        }
    } else {
        rc = ls_print_pages(&t, delimiter, &err);
    }
    target_free(&t);
    return rc == DSP_OK ? DSP_EXIT_OK : fail("ls", &err);
}

/* ---- cat --------------------------------------------------------------- */

static void cat_usage(FILE *to)
{
    fprintf(to,
            "usage: dspark cat KEY|URI [--store URI] [--range START-END]\n"
            "\n"
            "Write an object, or a byte range of it, to stdout.\n"
            "\n"
            "  --store URI          store that KEY is in (default: $DSPARK_STORE)\n"
            "  --range START-END    bytes START to END inclusive, counted from 0, as in an\n"
            "                       HTTP Range header; 'START-' reads to the end. An END\n"
            "                       past the end of the object reads to its end. A START\n"
            "                       at or past the end is an error (exit 2), as S3 responds\n"
            "                       to such a range with 416 Range Not Satisfiable.\n");
}

/* Parse "START-END" or "START-" into offset and length (-1 = to the end). */
static int parse_range(const char *text, uint64_t *offset, int64_t *length)
{
    char *end;
    errno = 0;
    unsigned long long start = strtoull(text, &end, 10);
    if (errno || end == text || *end != '-' || text[0] == '-')
        return -1;
    const char *rest = end + 1;
    *offset = start;
    if (!*rest) {
        *length = -1;
        return 0;
    }
    unsigned long long last = strtoull(rest, &end, 10);
    if (errno || *end || rest[0] == '-' || last < start)
        return -1;
    *length = (int64_t)(last - start + 1);
    return 0;
}

/* Reject a range whose first byte is not in the object, for which S3
 * responds with 416, with the same error on every store. */
static dsp_status check_range(const store_target *t, const char *range, uint64_t offset,
                              uint64_t size, dsp_err *err)
{
    if (offset < size)
        return DSP_OK;
    char *name = dsp_store_object_name(t->store, t->key);
    dsp_status rc;
    if (size == 0)
        rc = dsp_err_set(err, DSP_EINVAL,
                         "invalid --range %s for %s: the object is empty, so no range can be "
                         "read", range, name);
    else
        rc = dsp_err_set(err, DSP_EINVAL,
                         "invalid --range %s for %s: the object is %llu bytes, so START must "
                         "be at most %llu",
                         range, name, (unsigned long long)size, (unsigned long long)(size - 1));
    free(name);
    return rc;
}

/* Copy everything a reader yields to a stdio stream. */
static dsp_status pump_to_file(dsp_reader *r, FILE *out, const char *what, dsp_err *err)
{
    char *buf = dsp_xmalloc(STREAM_CHUNK);
    dsp_status rc = DSP_OK;
    for (;;) {
        size_t got;
        rc = dsp_reader_read(r, buf, STREAM_CHUNK, &got, err);
        if (rc != DSP_OK || got == 0)
            break;
        if (fwrite(buf, 1, got, out) != got) {
            rc = dsp_err_set(err, DSP_EIO, "writing %s failed: %s", what, strerror(errno));
            break;
        }
    }
    free(buf);
    if (rc == DSP_OK && fflush(out) != 0)
        rc = dsp_err_set(err, DSP_EIO, "writing %s failed: %s", what, strerror(errno));
    return rc;
}

int dsp_cmd_cat(int argc, char **argv)
{
    static const struct option options[] = {
        {"store", required_argument, NULL, 's'},
        {"range", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *store = NULL, *range = NULL;
    uint64_t offset = 0;
    int64_t length = -1;
    int c;

    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'r':
            range = optarg;
            if (parse_range(optarg, &offset, &length) != 0) {
                fprintf(stderr,
                        "dspark cat: invalid --range '%s': expected START-END or START- in "
                        "bytes, with END >= START\n",
                        optarg);
                return DSP_EXIT_USAGE;
            }
            break;
        case 'h': cat_usage(stdout); return DSP_EXIT_OK;
        default: cat_usage(stderr); return DSP_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "dspark cat: expected one KEY or URI\n");
        cat_usage(stderr);
        return DSP_EXIT_USAGE;
    }

    store_target t;
    dsp_err err;
    dsp_reader *r = NULL;
    dsp_status rc = resolve(argv[optind], store_option(store), 0, &t, &err);
    if (rc != DSP_OK)
        return fail("cat", &err);
    rc = open_object_reader(&t, offset, length, &r, &err);
    if (rc == DSP_OK && range)
        rc = check_range(&t, range, offset, dsp_reader_info(r)->size, &err);
    if (rc == DSP_OK)
        rc = pump_to_file(r, stdout, "stdout", &err);
    dsp_reader_close(r);
    target_free(&t);
    return rc == DSP_OK ? DSP_EXIT_OK : fail("cat", &err);
}

/* ---- cp ---------------------------------------------------------------- */

static void cp_usage(FILE *to)
{
    fprintf(to,
            "usage: dspark cp SRC DST [--if-absent]\n"
            "\n"
            "Copy one object. SRC and DST are each s3://bucket/key, file:///abs/path, a\n"
            "local path, or '-' for stdin (SRC) or stdout (DST). A DST ending in '/', or\n"
            "naming an existing local directory, receives SRC's last path component.\n"
            "Copies stream in 1 MiB chunks, so any size works; a copy within one store\n"
            "is done by the store itself. cp ignores --store and $DSPARK_STORE because\n"
            "both ends are full addresses.\n"
            "\n"
            "  --if-absent   create DST only if it does not exist (a create-only PUT);\n"
            "                exits 1 when DST exists. Holds SRC in memory, so SRC may\n"
            "                be at most 256 MiB.\n");
}

/* Open SRC as a reader; "-" returns with *r NULL and reads stdin instead. */
static dsp_status cp_open_source(const char *arg, store_target *t, dsp_reader **r, dsp_err *err)
{
    *r = NULL;
    memset(t, 0, sizeof *t);
    if (!strcmp(arg, "-"))
        return DSP_OK;
    dsp_status rc = resolve(arg, NULL, 0, t, err);
    if (rc == DSP_OK)
        rc = open_object_reader(t, 0, -1, r, err);
    return rc;
}

/* The destination address: DST itself, or DST/basename(SRC) when DST is a
 * directory. */
static char *cp_destination(const char *src, const char *dst)
{
    size_t n = strlen(dst);
    struct stat st;
    int is_dir = n > 0 && dst[n - 1] == '/';
    const char *local = !strncmp(dst, "file://", 7) ? dst + 7 : dst;

    if (!is_dir && strncmp(dst, "s3://", 5) != 0 && stat(local, &st) == 0 && S_ISDIR(st.st_mode))
        is_dir = 1;
    if (!is_dir || !strcmp(src, "-"))
        return dsp_xstrdup(dst);
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    return dsp_xasprintf("%s%s%s", dst, dst[n - 1] == '/' ? "" : "/", base);
}

/* Read all of SRC (reader or stdin) into memory and create DST with a
 * create-only PUT. */
static dsp_status copy_if_absent(dsp_reader *r, const store_target *dst, dsp_err *err)
{
    dsp_buf data = DSP_BUF_INIT;
    char *chunk = dsp_xmalloc(STREAM_CHUNK);
    dsp_status rc = DSP_OK;

    for (;;) {
        size_t got = 0;
        if (r) {
            rc = dsp_reader_read(r, chunk, STREAM_CHUNK, &got, err);
            if (rc != DSP_OK)
                goto out;
        } else {
            got = fread(chunk, 1, STREAM_CHUNK, stdin);
            if (got == 0 && ferror(stdin)) {
                rc = dsp_err_set(err, DSP_EIO, "reading stdin failed: %s", strerror(errno));
                goto out;
            }
        }
        if (got == 0)
            break;
        if (data.len + got > IF_ABSENT_MAX) {
            rc = dsp_err_set(err, DSP_EINVAL,
                             "--if-absent holds the source in memory and accepts at most "
                             "256 MiB; copy without --if-absent instead");
            goto out;
        }
        dsp_buf_append(&data, chunk, got);
    }
    dsp_put_opts opts = {.cond = DSP_PUT_IF_ABSENT};
    rc = dsp_store_put(dst->store, dst->key, data.data ? data.data : "", data.len, &opts, NULL,
                       err);
out:
    free(chunk);
    dsp_buf_free(&data);
    return rc;
}

/* Stream SRC (reader or stdin) into a writer for DST. */
static dsp_status copy_stream(dsp_reader *r, const store_target *dst, dsp_err *err)
{
    dsp_writer *w = NULL;
    char *chunk = dsp_xmalloc(STREAM_CHUNK);
    dsp_writer_opts opts = {.parallel = COPY_PARALLEL_PARTS};
    dsp_status rc = dsp_store_writer_open(dst->store, dst->key, &opts, &w, err);

    while (rc == DSP_OK) {
        size_t got = 0;
        if (r) {
            rc = dsp_reader_read(r, chunk, STREAM_CHUNK, &got, err);
        } else {
            got = fread(chunk, 1, STREAM_CHUNK, stdin);
            if (got == 0 && ferror(stdin))
                rc = dsp_err_set(err, DSP_EIO, "reading stdin failed: %s", strerror(errno));
        }
        if (rc != DSP_OK || got == 0)
            break;
        rc = dsp_writer_write(w, chunk, got, err);
    }
    if (w && rc == DSP_OK)
        rc = dsp_writer_close(w, NULL, err);
    else if (w)
        dsp_writer_abort(w);
    free(chunk);
    return rc;
}

int dsp_cmd_cp(int argc, char **argv)
{
    static const struct option options[] = {
        {"if-absent", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int if_absent = 0, c;

    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 'a': if_absent = 1; break;
        case 'h': cp_usage(stdout); return DSP_EXIT_OK;
        default: cp_usage(stderr); return DSP_EXIT_USAGE;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "dspark cp: expected SRC and DST\n");
        cp_usage(stderr);
        return DSP_EXIT_USAGE;
    }
    const char *src = argv[optind];
    char *dst_arg = cp_destination(src, argv[optind + 1]);
    store_target from, to;
    dsp_reader *r = NULL;
    dsp_err err;
    dsp_status rc = cp_open_source(src, &from, &r, &err);

    memset(&to, 0, sizeof to);
    if (rc != DSP_OK)
        goto out;

    if (!strcmp(dst_arg, "-")) {
        if (if_absent) {
            rc = dsp_err_set(&err, DSP_EINVAL, "--if-absent needs an object as DST, not stdout");
            goto out;
        }
        if (r)
            rc = pump_to_file(r, stdout, "stdout", &err);
        else
            rc = dsp_err_set(&err, DSP_EINVAL, "SRC and DST are both '-'");
        goto out;
    }
    rc = resolve(dst_arg, NULL, 0, &to, &err);
    if (rc != DSP_OK)
        goto out;

    if (r && !if_absent && !strcmp(dsp_store_uri(from.store), dsp_store_uri(to.store))) {
        /* Both ends in one store: let the store copy. */
        dsp_reader_close(r);
        r = NULL;
        rc = dsp_store_copy(to.store, from.key, to.key, NULL, &err);
    } else if (if_absent) {
        rc = copy_if_absent(r, &to, &err);
    } else {
        rc = copy_stream(r, &to, &err);
    }
out:
    if (r)
        dsp_reader_close(r);
    target_free(&from);
    target_free(&to);
    free(dst_arg);
    if (rc == DSP_EPRECOND) {
        fprintf(stderr, "dspark cp: %s: not copied because it already exists\n",
                argv[optind + 1]);
        return DSP_EXIT_FAILED;
    }
    return rc == DSP_OK ? DSP_EXIT_OK : fail("cp", &err);
}

/* ---- rm ---------------------------------------------------------------- */

static void rm_usage(FILE *to)
{
    fprintf(to,
            "usage: dspark rm KEY|URI... [--store URI] [--recursive]\n"
            "\n"
            "Delete objects. Deleting a key that does not exist is not an error.\n"
            "A KEY that is empty or only '/' is rejected, also with --recursive, so an\n"
            "unset shell variable cannot delete the whole store. To delete every object\n"
            "in a store, name the store as a URI (file:///abs/dir or s3://bucket/prefix):\n"
            "dspark rm --recursive file:///abs/dir\n"
            "\n"
            "  --store URI     store that KEY is in (default: $DSPARK_STORE)\n"
            "  -r, --recursive delete every object under each KEY/ or URI/ (or the whole\n"
            "                  store when the URI names its root)\n");
}

/* Delete every key under KEY/ one listing page at a time. Each page's
 * last key is the continuation token, so deleting it does not disturb the
 * next page. */
static dsp_status rm_recursive(const store_target *t, dsp_err *err, size_t *deleted)
{
    size_t n = strlen(t->key);
    char *prefix = n == 0 || t->key[n - 1] == '/' ? dsp_xstrdup(t->key)
                                                  : dsp_xasprintf("%s/", t->key);
    char *token = NULL;
    dsp_status rc;

    do {
        dsp_list_page page;
        rc = dsp_store_list_page(t->store, prefix, NULL, token, 1000, &page, err);
        free(token);
        token = NULL;
        if (rc != DSP_OK)
            break;
        const char **keys = dsp_xcalloc(page.n + 1, sizeof *keys);
        for (size_t i = 0; i < page.n; i++)
            keys[i] = page.items[i].key;
        rc = dsp_store_delete(t->store, keys, page.n, err);
        if (rc == DSP_OK)
            *deleted += page.n;
        free(keys);
        token = rc == DSP_OK && page.next_token ? dsp_xstrdup(page.next_token) : NULL;
        dsp_list_page_free(&page);
    } while (token);
    free(prefix);
    return rc;
}

/* Reject a non-recursive rm of a key that is not an object but has objects
 * under KEY/ (a local directory, or an S3 "folder"), because deleting it
 * would exit 0 and delete nothing. Costs a HEAD and, when that finds
 * nothing, a one-key listing. An empty local directory passes. */
static dsp_status rm_check_not_prefix(const store_target *t, const char *arg, dsp_err *err)
{
    size_t n = strlen(t->key);
    if (n > 0 && t->key[n - 1] != '/') {
        dsp_status rc = dsp_store_head(t->store, t->key, NULL, err);
        if (rc != DSP_ENOTFOUND)
            return rc;
    }
    char *prefix = n == 0 || t->key[n - 1] == '/' ? dsp_xstrdup(t->key)
                                                  : dsp_xasprintf("%s/", t->key);
    dsp_list_page page;
    dsp_status rc = dsp_store_list_page(t->store, prefix, NULL, NULL, 1, &page, err);
    free(prefix);
    if (rc != DSP_OK)
        return rc;
    size_t found = page.n;
    dsp_list_page_free(&page);
    if (found > 0)
        return dsp_err_set(err, DSP_EINVAL,
                           "'%s' is a prefix (directory) with objects under it, not an object; "
                           "to delete everything under it, run: dspark rm --recursive '%s'",
                           arg, arg);
    return DSP_OK;
}

/* Reject an argument that is empty, or a KEY (no URI scheme, in the store
 * of --store) that is only '/'. Both name the root of the store and
 * can come from an unset shell variable ("$PREFIX"). */
static dsp_status rm_check_key(const char *arg, const char *store, dsp_err *err)
{
    int root_key = store && !has_uri_scheme(arg) && arg[strspn(arg, "/")] == '\0';
    if (arg[0] && !root_key)
        return DSP_OK;
    if (!store)
        return dsp_err_set(err, DSP_EINVAL, "invalid KEY or URI '%s': it is empty", arg);

    /* The fix names the store by its URI, because a plain path would be
     * read as a key in the store of --store or DSPARK_STORE. */
    dsp_store *s = NULL;
    dsp_err open_err;
    int opened = dsp_store_open(store, NULL, &s, &open_err) == DSP_OK;
    dsp_err_set(err, DSP_EINVAL,
                "invalid KEY '%s': an empty key or a key of only '/' names every object in "
                "the store %s, so rm rejects it. To delete the whole store, name it as a URI: "
                "dspark rm --recursive '%s'",
                arg, opened ? dsp_store_uri(s) : store, opened ? dsp_store_uri(s) : store);
    if (opened)
        dsp_store_close(s);
    return DSP_EINVAL;
}

int dsp_cmd_rm(int argc, char **argv)
{
    static const struct option options[] = {
        {"store", required_argument, NULL, 's'},
        {"recursive", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *store = NULL;
    int recursive = 0, c;

    while ((c = getopt_long(argc, argv, "rh", options, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'r': recursive = 1; break;
        case 'h': rm_usage(stdout); return DSP_EXIT_OK;
        default: rm_usage(stderr); return DSP_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "dspark rm: expected at least one KEY or URI\n");
        rm_usage(stderr);
        return DSP_EXIT_USAGE;
    }
    store = store_option(store);

    size_t deleted = 0;
    for (int i = optind; i < argc; i++) {
        store_target t;
        dsp_err err;
        if (rm_check_key(argv[i], store, &err) != DSP_OK)
            return fail("rm", &err);
        dsp_status rc = resolve(argv[i], store, recursive, &t, &err);
        int whole_fs = rc == DSP_OK && recursive && !t.key[0] &&
                       !strcmp(dsp_store_uri(t.store), "file:///");
        if (whole_fs) {
            rc = dsp_err_set(&err, DSP_EINVAL,
                             "'%s' is the root of the file system, and rm --recursive will not "
                             "delete every file on the machine",
                             argv[i]);
        } else if (rc == DSP_OK && recursive) {
            rc = rm_recursive(&t, &err, &deleted);
        } else if (rc == DSP_OK) {
            rc = rm_check_not_prefix(&t, argv[i], &err);
            if (rc == DSP_OK) {
                const char *keys[] = {t.key};
                rc = dsp_store_delete(t.store, keys, 1, &err);
                deleted += rc == DSP_OK;
            }
        }
        target_free(&t);
        if (rc != DSP_OK)
            return fail("rm", &err);
    }
    if (recursive)
        fprintf(stderr, "dspark rm: deleted %zu object%s\n", deleted, deleted == 1 ? "" : "s");
    return DSP_EXIT_OK;
}

/* ---- doctor ------------------------------------------------------------ */

static void doctor_usage(FILE *to)
{
    fprintf(to,
            "usage: dspark doctor [--store URI | URI]\n"
            "\n"
            "Check that a store supports what DSpark needs: list, put, get, ranged get,\n"
            "create-only and compare-and-swap PUTs, streaming (multipart) writes and\n"
            "delete. Works under a scratch prefix '_dspark_doctor/' that it removes\n"
            "afterwards, prints one line per check, and exits 1 when a check fails.\n"
            "\n"
            "  --store URI   store to check (default: $DSPARK_STORE)\n");
}

typedef struct {
    dsp_store *s;
    char prefix[64];
    int failures;
    char lacks[DSP_ERR_MSG_MAX + 256]; /* first missing feature, for the summary */
    char meaning[256];
} doctor;

static void doctor_report(doctor *d, const char *check, int ok, const char *detail,
                          const char *meaning)
{
    printf("%-16s %-6s %s\n", check, ok ? "ok" : "FAIL", detail ? detail : "");
    fflush(stdout);
    if (!ok) {
        if (d->failures == 0) {
            snprintf(d->lacks, sizeof d->lacks, "%s", detail ? detail : check);
            snprintf(d->meaning, sizeof d->meaning, "%s", meaning);
        }
        d->failures++;
    }
}

static char *doctor_key(const doctor *d, const char *name)
{
    return dsp_xasprintf("%s%s", d->prefix, name);
}

static void doctor_basic(doctor *d)
{
    dsp_err err;
    dsp_list_page page;
    dsp_buf buf = DSP_BUF_INIT;
    char detail[DSP_ERR_MSG_MAX + 256];
    const char *body = "dspark doctor: 0123456789";
    const char *basic = "DSpark cannot read or write its data on this store";
    char *key = doctor_key(d, "basic");

    dsp_status rc = dsp_store_list_page(d->s, d->prefix, NULL, NULL, 10, &page, &err);
    if (rc == DSP_OK)
        dsp_list_page_free(&page);
    snprintf(detail, sizeof detail, "list failed: %s", err.msg);
    doctor_report(d, "list", rc == DSP_OK, rc == DSP_OK ? "" : detail, basic);

    rc = dsp_store_put(d->s, key, body, strlen(body), NULL, NULL, &err);
    snprintf(detail, sizeof detail, "put failed: %s", err.msg);
    doctor_report(d, "put", rc == DSP_OK, rc == DSP_OK ? "" : detail, basic);

    rc = dsp_store_get(d->s, key, 0, -1, &buf, NULL, &err);
    int ok = rc == DSP_OK && buf.len == strlen(body) && !memcmp(buf.data, body, buf.len);
    if (rc != DSP_OK)
        snprintf(detail, sizeof detail, "get failed: %s", err.msg);
    else
        snprintf(detail, sizeof detail, "get returned %zu bytes that differ from the %zu put",
                 buf.len, strlen(body));
    doctor_report(d, "get", ok, ok ? "" : detail, basic);

    rc = dsp_store_get(d->s, key, 15, 4, &buf, NULL, &err);
    ok = rc == DSP_OK && buf.len == 4 && !memcmp(buf.data, "0123", 4);
    if (ok) {
        rc = dsp_store_get(d->s, key, 1000, 10, &buf, NULL, &err);
        ok = rc == DSP_OK && buf.len == 0;
        snprintf(detail, sizeof detail,
                 "a range past the end returned %s with %zu bytes, expected 0 bytes",
                 dsp_status_name(rc), buf.len);
    } else if (rc != DSP_OK) {
        snprintf(detail, sizeof detail, "ranged get failed: %s", err.msg);
    } else {
        snprintf(detail, sizeof detail, "bytes 15-18 came back as %zu wrong bytes", buf.len);
    }
    doctor_report(d, "ranged get", ok, ok ? "" : detail,
                  "DSpark splits large inputs and reads shuffle slices with ranged GETs");
    dsp_buf_free(&buf);
    free(key);
}

static void doctor_conditional(doctor *d)
{
    dsp_err err;
    char detail[DSP_ERR_MSG_MAX + 256];
    const char *unsafe =
        "DSpark commits tasks and takes leases with conditional PUTs, so on this store two "
        "workers could both commit one task: jobs cannot run safely";
    char *key = doctor_key(d, "create-only");
    dsp_put_opts create = {.cond = DSP_PUT_IF_ABSENT};

    dsp_status first = dsp_store_put(d->s, key, "first", 5, &create, NULL, &err);
    snprintf(detail, sizeof detail, "the first create-only PUT failed: %s", err.msg);
    if (first == DSP_OK) {
        dsp_status second = dsp_store_put(d->s, key, "second", 6, &create, NULL, &err);
        if (second == DSP_OK)
            snprintf(detail, sizeof detail,
                     "conditional writes are not enforced: two create-only PUTs both "
                     "succeeded");
        else if (second != DSP_EPRECOND)
            snprintf(detail, sizeof detail,
                     "the second create-only PUT failed with %s instead of a precondition "
                     "failure: %s",
                     dsp_status_name(second), err.msg);
        first = second == DSP_EPRECOND ? DSP_OK : DSP_EPRECOND;
    }
    doctor_report(d, "create-only", first == DSP_OK, first == DSP_OK ? "" : detail, unsafe);
    free(key);

    key = doctor_key(d, "compare-and-swap");
    dsp_obj_info v1, v2;
    dsp_status rc = dsp_store_put(d->s, key, "v1", 2, NULL, &v1, &err);
    if (rc == DSP_OK)
        rc = dsp_store_put(d->s, key, "v2", 2, NULL, &v2, &err);
    if (rc != DSP_OK) {
        snprintf(detail, sizeof detail, "put failed: %s", err.msg);
        doctor_report(d, "compare-and-swap", 0, detail, unsafe);
        free(key);
        return;
    }
    dsp_put_opts stale = {.cond = DSP_PUT_IF_MATCH, .if_match = v1.etag};
    dsp_put_opts current = {.cond = DSP_PUT_IF_MATCH, .if_match = v2.etag};
    dsp_status with_stale = dsp_store_put(d->s, key, "stale", 5, &stale, NULL, &err);
    int ok = 0;
    if (with_stale == DSP_OK) {
        snprintf(detail, sizeof detail,
                 "conditional writes are not enforced: a compare-and-swap PUT with a stale "
                 "ETag succeeded");
    } else if (with_stale != DSP_EPRECOND) {
        snprintf(detail, sizeof detail,
                 "a compare-and-swap PUT with a stale ETag failed with %s instead of a "
                 "precondition failure: %s",
                 dsp_status_name(with_stale), err.msg);
    } else if (dsp_store_put(d->s, key, "v3", 2, &current, NULL, &err) != DSP_OK) {
        snprintf(detail, sizeof detail,
                 "a compare-and-swap PUT with the current ETag failed: %s", err.msg);
    } else {
        ok = 1;
    }
    doctor_report(d, "compare-and-swap", ok, ok ? "" : detail, unsafe);
    free(key);
}

static void doctor_streaming(doctor *d)
{
    /* 12 MiB in 5 MiB parts: three parts, the last one short, as S3
     * requires every part but the last to be at least 5 MiB. */
    const size_t total = (size_t)12 << 20;
    dsp_writer_opts opts = {.part_size = (size_t)5 << 20};
    dsp_writer *w = NULL;
    dsp_err err;
    dsp_buf buf = DSP_BUF_INIT;
    char detail[DSP_ERR_MSG_MAX + 256] = "";
    char *key = doctor_key(d, "streaming");
    char *chunk = dsp_xmalloc(STREAM_CHUNK);
    int ok = 0;

    dsp_status rc = dsp_store_writer_open(d->s, key, &opts, &w, &err);
    for (size_t off = 0; rc == DSP_OK && off < total; off += STREAM_CHUNK) {
        memset(chunk, 'a' + (int)(off / STREAM_CHUNK), STREAM_CHUNK);
        rc = dsp_writer_write(w, chunk, STREAM_CHUNK, &err);
    }
    if (rc == DSP_OK) {
        dsp_obj_info info;
        rc = dsp_writer_close(w, &info, &err);
        w = NULL;
        if (rc == DSP_OK)
            rc = dsp_store_get(d->s, key, (size_t)11 << 20, 2, &buf, NULL, &err);
        if (rc == DSP_OK && info.size == total && buf.len == 2 && !memcmp(buf.data, "ll", 2))
            ok = 1;
        else if (rc == DSP_OK)
            snprintf(detail, sizeof detail,
                     "a 12 MiB streaming write read back wrong (size %llu)",
                     (unsigned long long)info.size);
    }
    if (w)
        dsp_writer_abort(w);
    if (rc != DSP_OK)
        snprintf(detail, sizeof detail, "streaming write failed: %s", err.msg);
    doctor_report(d, "streaming write", ok, detail,
                  "DSpark writes every task output with streaming (multipart) uploads");
    free(chunk);
    dsp_buf_free(&buf);
    free(key);
}

static void doctor_delete(doctor *d)
{
    dsp_err err;
    dsp_list_page all;
    char detail[DSP_ERR_MSG_MAX + 256] = "";
    int ok = 0;

    dsp_status rc = dsp_store_list_all(d->s, d->prefix, NULL, &all, &err);
    if (rc == DSP_OK) {
        const char **keys = dsp_xcalloc(all.n + 1, sizeof *keys);
        for (size_t i = 0; i < all.n; i++)
            keys[i] = all.items[i].key;
        rc = dsp_store_delete(d->s, keys, all.n, &err);
        free(keys);
        dsp_list_page_free(&all);
    }
    if (rc == DSP_OK)
        rc = dsp_store_list_all(d->s, d->prefix, NULL, &all, &err);
    if (rc == DSP_OK) {
        ok = all.n == 0;
        snprintf(detail, sizeof detail, "%zu objects remain after delete", all.n);
        dsp_list_page_free(&all);
    } else {
        snprintf(detail, sizeof detail, "delete failed: %s", err.msg);
    }
    doctor_report(d, "delete", ok, ok ? "" : detail,
                  "DSpark deletes losing attempts and intermediate files");
}

int dsp_cmd_doctor(int argc, char **argv)
{
    static const struct option options[] = {
        {"store", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *store = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'h': doctor_usage(stdout); return DSP_EXIT_OK;
        default: doctor_usage(stderr); return DSP_EXIT_USAGE;
        }
    }
    if (optind < argc && !store)
        store = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "dspark doctor: unexpected argument '%s'\n", argv[optind]);
        return DSP_EXIT_USAGE;
    }
    store = store_option(store);
    if (!store) {
        fprintf(stderr, "dspark doctor: missing store: give --store URI or set DSPARK_STORE\n");
        return DSP_EXIT_USAGE;
    }

    doctor d = {0};
    dsp_err err;
    if (dsp_store_open(store, NULL, &d.s, &err) != DSP_OK)
        return fail("doctor", &err);
    snprintf(d.prefix, sizeof d.prefix, "_dspark_doctor/%016llx/",
             (unsigned long long)dsp_rand64());

    printf("store %s (%s), scratch prefix %s\n", dsp_store_uri(d.s), dsp_store_kind(d.s),
           d.prefix);
    printf("%-16s %-6s %s\n", "check", "result", "detail");
    doctor_basic(&d);
    doctor_conditional(&d);
    doctor_streaming(&d);
    doctor_delete(&d);
    dsp_store_close(d.s);

    if (d.failures) {
        fprintf(stderr, "dspark doctor: %s is not usable: %s. %s.\n", store, d.lacks, d.meaning);
        return DSP_EXIT_FAILED;
    }
    printf("all checks passed: DSpark can run jobs on %s\n", store);
    return DSP_EXIT_OK;
}
