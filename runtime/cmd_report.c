/*
 * cmd_report.c - `dspark report`: the curation report of a published output.
 *
 * The report needs only the output itself, so it works after `dspark gc`
 * and on an output copied elsewhere. It reads _MANIFEST.json for the totals
 * and each step's counters, the reject files for their reasons, and the
 * MinHash cluster files (_dedup/clusters/) for the cluster sizes. It prints
 * what each step removed and why, what text was kept (from a `stats`
 * step), and how large the duplicate clusters were; --json prints the same
 * as one JSON document (report_schema_version 1).
 *
 * An output whose _SUCCESS is missing or names another job than its
 * manifest is refused: its files may be half replaced. So is one where a
 * file the manifest lists is missing or has another size, and with
 * --verify one whose bytes do not match the manifest's SHA-256 or that
 * contains part files the manifest does not list.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../core/buf.h"
#include "../core/util.h"
#include "../storage/store.h"
#include "../tasks/decompress.h"
#include "cli.h"
#include "reject_check.h"

#define REPORT_SCHEMA_VERSION 1
/* Cluster size classes are 2, 3-4, 5-8 and so on. The last class has no upper
 * bound. */
#define CLUSTER_CLASSES 20

typedef struct {
    uint64_t clusters;   /* clusters with at least one removed member */
    uint64_t documents;  /* documents in them, representatives included */
    uint64_t largest;    /* documents in the largest cluster */
    uint64_t largest_rep[2]; /* its representative: input index, byte offset */
    uint64_t classes[CLUSTER_CLASSES][2]; /* per size class: clusters, documents */
} cluster_sizes;

static void report_help(FILE *f)
{
    fprintf(f,
            "usage: dspark report [--json] [--verify] OUTPUT\n\n"
            "Print the curation report of a published output (a local directory or an\n"
            "s3:// URI): documents and bytes in and out, what each step removed and why,\n"
            "the kept text counted by a `stats` step, the sizes of the duplicate clusters\n"
            "of dedup_minhash steps with \"clusters\": true, and the reasons of rejected\n"
            "records. It reads only files under OUTPUT.\n\n"
            "  --json     print one JSON document instead of text\n"
            "  --verify   also read every listed file and check its SHA-256, and fail on\n"
            "             part files that _MANIFEST.json does not list\n\n"
            "Exit codes: 0 printed, 1 the output is incomplete, damaged or unreadable,\n"
            "2 usage, "
            "5 OUTPUT has no _MANIFEST.json.\n");
}

static double num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The size class of a cluster of n >= 2 documents: 0 for 2, 1 for 3-4,
 * 2 for 5-8, and so on. */
static int cluster_class(uint64_t n)
{
    int c = 0;
    for (uint64_t top = 2; top < n && c < CLUSTER_CLASSES - 1; top *= 2)
        c++;
    return c;
}

/* The clusters file being read and the sizes counted so far. */
typedef struct {
    cluster_sizes *sizes;
    const char *key;
} cluster_read;

/* Count one line of a clusters file:
 * {"representative":[i,o],"members":[[i,o],...]}. */
static dsp_status cluster_line(void *ctx, const char *line, size_t len, uint64_t lineno,
                               dsp_err *err)
{
    const cluster_read *cr = ctx;
    cluster_sizes *cs = cr->sizes;
    const char *key = cr->key;
    cJSON *o = cJSON_ParseWithLength(line, len);
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(o, "representative");
    const cJSON *members = cJSON_GetObjectItemCaseSensitive(o, "members");
    dsp_status st = DSP_OK;

    if (!cJSON_IsArray(rep) || cJSON_GetArraySize(rep) != 2 || !cJSON_IsArray(members)) {
        st = dsp_err_set(err, DSP_ECORRUPT,
                         "%s line %llu: not a cluster record (representative and members)", key,
                         (unsigned long long)lineno);
        goto out;
    }
    uint64_t n = 1 + (uint64_t)cJSON_GetArraySize(members);
    if (n < 2)
        goto out;
    cs->clusters++;
    cs->documents += n;
    int c = cluster_class(n);
    cs->classes[c][0]++;
    cs->classes[c][1] += n;
    if (n > cs->largest) {
        cs->largest = n;
        cs->largest_rep[0] = (uint64_t)cJSON_GetArrayItem(rep, 0)->valuedouble;
        cs->largest_rep[1] = (uint64_t)cJSON_GetArrayItem(rep, 1)->valuedouble;
    }
out:
    cJSON_Delete(o);
    return st;
}

/* Add the clusters of one clusters file (JSONL, compressed or not). */
static dsp_status cluster_file(dsp_store *s, const char *key, cluster_sizes *cs, dsp_err *err)
{
    cluster_read cr = {cs, key};
    return dsp_object_lines(s, key, cluster_line, &cr, err);
}

/* Read key of s as a JSON document. */
static dsp_status read_json(dsp_store *s, const char *key, cJSON **out, dsp_err *err)
{
    dsp_buf body = DSP_BUF_INIT;
    dsp_status st = dsp_store_get(s, key, 0, -1, &body, NULL, err);

    *out = NULL;
    if (st == DSP_OK) {
        *out = cJSON_ParseWithLength(body.data ? body.data : "", body.len);
        if (!*out)
            st = dsp_err_set(err, DSP_ECORRUPT, "%s: not valid JSON (near byte %zu)", key,
                             (size_t)(cJSON_GetErrorPtr() && body.data
                                          ? cJSON_GetErrorPtr() - body.data
                                          : 0));
    }
    dsp_buf_free(&body);
    return st;
}

static int list_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const dsp_list_entry *)a)->key, ((const dsp_list_entry *)b)->key);
}

/* SHA-256 of the whole object key, read as a stream. */
static dsp_status object_sha256(dsp_store *s, const char *key, char hex[65], dsp_err *err)
{
    dsp_reader *reader = NULL;
    dsp_sha256 *h = dsp_sha256_new();
    char *chunk = dsp_xmalloc(1 << 20);
    size_t got;
    dsp_status st = dsp_store_reader_open(s, key, 0, -1, NULL, &reader, err);

    while (st == DSP_OK) {
        st = dsp_reader_read(reader, chunk, 1 << 20, &got, err);
        if (st != DSP_OK || got == 0)
            break;
        dsp_sha256_update(h, chunk, got);
    }
    dsp_sha256_final_hex(h, hex);
    if (reader)
        dsp_reader_close(reader);
    free(chunk);
    return st;
}

/* Whether an output object's name (relative to the output) is one of the
 * data files that a manifest lists: parts, reject parts and clusters. */
static int data_file_name(const char *rel)
{
    return !strncmp(rel, "part-", 5) || !strncmp(rel, "_rejects/part-", 14) ||
           !strncmp(rel, "_dedup/clusters/", 16);
}

static int manifest_lists(const cJSON *m, const char *rel)
{
    static const char *const lists[] = {"files", "rejects", "dedup_clusters"};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(m, lists[l])) {
            const char *name = str(f, "name");
            if (name && !strcmp(name, rel))
                return 1;
        }
    }
    return 0;
}

/* Print each data file under the output that the manifest does not list,
 * one line each, and fail with their count. Such a file is not part of the
 * dataset the manifest describes, but a reader globbing part-* reads it. */
static dsp_status check_unlisted(const dsp_list_page *page, const char *dir, const char *where,
                                 const cJSON *m, dsp_err *err)
{
    size_t dlen = strlen(dir), n = 0;

    for (size_t i = 0; i < page->n; i++) {
        const char *rel = page->items[i].key + dlen;
        if (!data_file_name(rel) || manifest_lists(m, rel))
            continue;
        fprintf(stderr, "dspark report: %s/%s is not listed in _MANIFEST.json\n", where, rel);
        n++;
    }
    if (n == 0)
        return DSP_OK;
    return dsp_err_set(err, DSP_ECORRUPT,
                       "%s contains %zu data file%s that _MANIFEST.json does not list (named "
                       "above); remove them, or publish the output again",
                       where, n, n == 1 ? "" : "s");
}

/* Check that every file the manifest lists (data, rejects, clusters) is
 * under the output with the listed size, and with verify also with the
 * listed SHA-256 and that no data file is missing from the manifest. The
 * first mismatch is returned as DSP_ECORRUPT. */
static dsp_status check_files(dsp_store *s, const char *prefix, const char *where,
                              const cJSON *m, int verify, dsp_err *err)
{
    static const char *const lists[] = {"files", "rejects", "dedup_clusters"};
    char *dir = dsp_xasprintf("%s/", prefix);
    dsp_list_page page;
    dsp_status st = dsp_store_list_all(s, dir, NULL, &page, err);

    if (st != DSP_OK) {
        free(dir);
        return st;
    }
    qsort(page.items, page.n, sizeof *page.items, list_entry_cmp);
    for (size_t l = 0; l < sizeof lists / sizeof lists[0] && st == DSP_OK; l++) {
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(m, lists[l])) {
            const char *name = str(f, "name");
            if (!name)
                continue;
            char *key = dsp_xasprintf("%s%s", dir, name);
            dsp_list_entry probe = {.key = key};
            const dsp_list_entry *e = bsearch(&probe, page.items, page.n, sizeof *page.items,
                                              list_entry_cmp);
            const char *want = str(f, "sha256");
            char got[65];
            if (!e) {
                st = dsp_err_set(err, DSP_ECORRUPT,
                                 "%s/%s is listed in _MANIFEST.json but missing", where, name);
            } else if ((double)e->size != num(f, "size")) {
                st = dsp_err_set(err, DSP_ECORRUPT,
                                 "%s/%s is %llu bytes but _MANIFEST.json lists %.0f", where, name,
                                 (unsigned long long)e->size, num(f, "size"));
            } else if (verify && want && want[0]) {
                st = object_sha256(s, key, got, err);
                if (st == DSP_OK && strcmp(got, want) != 0)
                    st = dsp_err_set(err, DSP_ECORRUPT,
                                     "%s/%s has SHA-256 %s but _MANIFEST.json lists %s", where,
                                     name, got, want);
            }
            free(key);
            if (st != DSP_OK)
                break;
        }
    }
    if (st == DSP_OK && verify)
        st = check_unlisted(&page, dir, where, m, err);
    /* The totals the report prints must agree with the files. */
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive(m, "totals");
    double records = 0, files = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(m, "files")) {
        records += num(f, "records");
        files++;
    }
    if (st == DSP_OK && (records != num(totals, "records_out") || files != num(totals, "files")))
        st = dsp_err_set(err, DSP_ECORRUPT,
                         "%s/_MANIFEST.json: totals name %.0f records in %.0f files, but its "
                         "files list %.0f records in %.0f files",
                         where, num(totals, "records_out"), num(totals, "files"), records, files);
    dsp_list_page_free(&page);
    free(dir);
    return st;
}

/* The report as JSON: built first, then printed as JSON or as text. */
static cJSON *report_build(const cJSON *m, const dsp_reject_tally *rejects,
                           const cluster_sizes *cs, int have_clusters)
{
    cJSON *r = cJSON_CreateObject();
    const cJSON *totals = cJSON_GetObjectItemCaseSensitive(m, "totals");
    double rin = num(totals, "records_in");

    cJSON_AddNumberToObject(r, "report_schema_version", REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(r, "job", str(m, "job") ? str(m, "job") : "");
    cJSON_AddStringToObject(r, "name", str(m, "name") ? str(m, "name") : "");
    cJSON_AddStringToObject(r, "output", str(m, "output") ? str(m, "output") : "");
    cJSON_AddStringToObject(r, "dspark_version",
                            str(m, "dspark_version") ? str(m, "dspark_version") : "");
    cJSON *docs = cJSON_AddObjectToObject(r, "documents");
    cJSON_AddNumberToObject(docs, "in", rin);
    cJSON_AddNumberToObject(docs, "out", num(totals, "records_out"));
    cJSON_AddNumberToObject(docs, "rejected", num(totals, "records_rejected"));
    cJSON_AddNumberToObject(docs, "utf8_repaired", num(totals, "records_utf8_repaired"));
    cJSON *bytes = cJSON_AddObjectToObject(r, "bytes");
    cJSON_AddNumberToObject(bytes, "in", num(totals, "bytes_in"));
    cJSON_AddNumberToObject(bytes, "out", num(totals, "bytes_out"));
    cJSON_AddNumberToObject(r, "files", num(totals, "files"));

    cJSON *steps = cJSON_AddArrayToObject(r, "steps");
    const cJSON *op, *kept_text = NULL;
    int i = 0;
    cJSON_ArrayForEach(op, cJSON_GetObjectItemCaseSensitive(m, "operators")) {
        cJSON *s = cJSON_CreateObject();
        double in = num(op, "in"), out = num(op, "out");
        cJSON_AddNumberToObject(s, "step", ++i);
        cJSON_AddStringToObject(s, "op", str(op, "op") ? str(op, "op") : "");
        cJSON_AddNumberToObject(s, "in", in);
        cJSON_AddNumberToObject(s, "out", out);
        cJSON_AddNumberToObject(s, "removed", in - out);
        cJSON_AddNumberToObject(s, "removed_share_of_input", rin > 0 ? (in - out) / rin : 0);
        cJSON *reasons = cJSON_AddObjectToObject(s, "reasons");
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(op, "removed"))
            if (cJSON_IsNumber(v) && v->valuedouble > 0)
                cJSON_AddNumberToObject(reasons, v->string, v->valuedouble);
        const cJSON *extra = cJSON_GetObjectItemCaseSensitive(op, "extra");
        cJSON_AddItemToObject(s, "counts",
                              cJSON_IsObject(extra) ? cJSON_Duplicate(extra, 1)
                                                    : cJSON_CreateObject());
        cJSON_AddItemToArray(steps, s);
        if (str(op, "op") && !strcmp(str(op, "op"), "stats"))
            kept_text = extra;
    }

    /* The last stats step counted the text that reached it. */
    if (kept_text)
        cJSON_AddItemToObject(r, "kept_text", cJSON_Duplicate(kept_text, 1));
    else
        cJSON_AddNullToObject(r, "kept_text");

    if (have_clusters) {
        cJSON *d = cJSON_AddObjectToObject(r, "duplicate_clusters");
        cJSON_AddNumberToObject(d, "clusters", (double)cs->clusters);
        cJSON_AddNumberToObject(d, "documents", (double)cs->documents);
        cJSON_AddNumberToObject(d, "removed", (double)(cs->documents - cs->clusters));
        cJSON_AddNumberToObject(d, "largest", (double)cs->largest);
        cJSON *rep = cJSON_AddArrayToObject(d, "largest_representative");
        cJSON_AddItemToArray(rep, cJSON_CreateNumber((double)cs->largest_rep[0]));
        cJSON_AddItemToArray(rep, cJSON_CreateNumber((double)cs->largest_rep[1]));
        cJSON *sizes = cJSON_AddArrayToObject(d, "sizes");
        uint64_t lo = 2, hi = 2;
        for (int c = 0; c < CLUSTER_CLASSES; c++, lo = hi + 1, hi *= 2) {
            if (!cs->classes[c][0])
                continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "min_size", (double)lo);
            if (c < CLUSTER_CLASSES - 1)
                cJSON_AddNumberToObject(e, "max_size", (double)hi);
            else
                cJSON_AddNullToObject(e, "max_size");
            cJSON_AddNumberToObject(e, "clusters", (double)cs->classes[c][0]);
            cJSON_AddNumberToObject(e, "documents", (double)cs->classes[c][1]);
            cJSON_AddItemToArray(sizes, e);
        }
    } else {
        cJSON_AddNullToObject(r, "duplicate_clusters");
    }

    cJSON *rj = cJSON_AddObjectToObject(r, "reject_reasons");
    for (size_t k = 0; k < rejects->n; k++)
        cJSON_AddNumberToObject(rj, rejects->items[k].name, (double)rejects->items[k].count);
    return r;
}

static void print_count_list(FILE *f, const cJSON *obj, const char *open, const char *close)
{
    const cJSON *v;
    int first = 1;
    cJSON_ArrayForEach(v, obj) {
        if (!cJSON_IsNumber(v) || v->valuedouble == 0)
            continue;
        fprintf(f, "%s%s %.0f", first ? open : ", ", v->string, v->valuedouble);
        first = 0;
    }
    if (!first)
        fputs(close, f);
}

static void report_print(FILE *f, const cJSON *r, const char *where)
{
    const cJSON *docs = cJSON_GetObjectItemCaseSensitive(r, "documents");
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(r, "bytes");
    double rin = num(docs, "in"), rout = num(docs, "out");
    char b1[32], b2[32];

    fprintf(f, "curation report for %s\n", where);
    fprintf(f, "  job        %s (%s, dspark %s)\n", str(r, "job"), str(r, "name"),
            str(r, "dspark_version"));
    fprintf(f, "  documents  %.0f in, %.0f out (%.1f%% kept), %.0f rejected\n", rin, rout,
            rin > 0 ? 100.0 * rout / rin : 0.0, num(docs, "rejected"));
    if (num(docs, "utf8_repaired") > 0)
        fprintf(f, "  repaired   %.0f documents had invalid UTF-8, replaced with U+FFFD\n",
                num(docs, "utf8_repaired"));
    fprintf(f, "  bytes      %s in, %s out in %.0f file%s\n",
            dsp_format_bytes(num(bytes, "in"), b1, sizeof b1),
            dsp_format_bytes(num(bytes, "out"), b2, sizeof b2), num(r, "files"),
            num(r, "files") == 1 ? "" : "s");

    fprintf(f, "\nwhat each step removed (share of the input documents)\n");
    fprintf(f, "  %-4s %-20s %12s %12s %12s %7s  %s\n", "step", "operator", "in", "out",
            "removed", "share", "reasons");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(r, "steps")) {
        fprintf(f, "  %-4.0f %-20s %12.0f %12.0f %12.0f %6.1f%%", num(s, "step"), str(s, "op"),
                num(s, "in"), num(s, "out"), num(s, "removed"),
                100.0 * num(s, "removed_share_of_input"));
        print_count_list(f, cJSON_GetObjectItemCaseSensitive(s, "reasons"), "  ", "");
        fputc('\n', f);
    }

    const cJSON *kt = cJSON_GetObjectItemCaseSensitive(r, "kept_text");
    fprintf(f, "\nkept text\n");
    if (cJSON_IsObject(kt))
        fprintf(f, "  %.0f documents, %.0f words, %.0f characters, %.0f lines, %s of UTF-8\n",
                num(kt, "docs"), num(kt, "words"), num(kt, "chars"), num(kt, "lines"),
                dsp_format_bytes(num(kt, "bytes"), b1, sizeof b1));
    else
        fprintf(f, "  not counted: add {\"op\": \"stats\"} as the last step to count words "
                   "and characters\n");

    const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "duplicate_clusters");
    if (cJSON_IsObject(d)) {
        const cJSON *rep = cJSON_GetObjectItemCaseSensitive(d, "largest_representative");
        fprintf(f, "\nnear-duplicate clusters (dedup_minhash)\n");
        fprintf(f, "  %.0f clusters hold %.0f documents; %.0f removed, one kept per cluster\n",
                num(d, "clusters"), num(d, "documents"), num(d, "removed"));
        if (num(d, "clusters") > 0) {
            fprintf(f, "  %-12s %12s %12s\n", "size", "clusters", "documents");
            const cJSON *e;
            cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "sizes")) {
                char range[48];
                const cJSON *mx = cJSON_GetObjectItemCaseSensitive(e, "max_size");
                if (!cJSON_IsNumber(mx))
                    snprintf(range, sizeof range, "%.0f+", num(e, "min_size"));
                else if (mx->valuedouble == num(e, "min_size"))
                    snprintf(range, sizeof range, "%.0f", mx->valuedouble);
                else
                    snprintf(range, sizeof range, "%.0f-%.0f", num(e, "min_size"),
                             mx->valuedouble);
                fprintf(f, "  %-12s %12.0f %12.0f\n", range, num(e, "clusters"),
                        num(e, "documents"));
            }
            fprintf(f, "  largest: %.0f documents; its representative is input %.0f, "
                       "byte %.0f\n",
                    num(d, "largest"), cJSON_GetArrayItem(rep, 0)->valuedouble,
                    cJSON_GetArrayItem(rep, 1)->valuedouble);
        }
    }

    const cJSON *rj = cJSON_GetObjectItemCaseSensitive(r, "reject_reasons");
    if (num(docs, "rejected") > 0) {
        fprintf(f, "\nrejected records (in _rejects/)\n ");
        print_count_list(f, rj, " ", "");
        fputc('\n', f);
    }
}

int dsp_cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"verify", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, verify = 0, c, rc = DSP_EXIT_FAILED;
    dsp_store *store = NULL;
    char *root = NULL, *prefix = NULL, *uri = NULL, *key = NULL;
    cJSON *manifest = NULL, *report = NULL;
    dsp_reject_tally rejects = {0};
    cluster_sizes cs = {0};
    dsp_buf success = DSP_BUF_INIT;
    dsp_err err;
    dsp_status st;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j') {
            json = 1;
        } else if (c == 'v') {
            verify = 1;
        } else if (c == 'h') {
            report_help(stdout);
            return DSP_EXIT_OK;
        } else {
            report_help(stderr);
            return DSP_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dspark report: expected one OUTPUT (a published output directory or "
                        "s3:// URI)\n");
        return DSP_EXIT_USAGE;
    }
    const char *where = argv[optind];
    uri = dsp_xstrdup(where);
    for (size_t n = strlen(uri); n > 1 && uri[n - 1] == '/';)
        uri[--n] = '\0';

    st = dsp_uri_split(uri, &root, &prefix, &err);
    if (st == DSP_OK)
        st = dsp_store_open(root, NULL, &store, &err);
    if (st != DSP_OK)
        goto fail;

    key = dsp_xasprintf("%s/_MANIFEST.json", prefix);
    st = read_json(store, key, &manifest, &err);
    if (st == DSP_ENOTFOUND) {
        fprintf(stderr, "dspark report: %s has no _MANIFEST.json; is it the output of a "
                        "finished job?\n", where);
        rc = DSP_EXIT_NOTFOUND;
        goto out;
    }
    if (st != DSP_OK)
        goto fail;
    if (num(manifest, "schema_version") != 1) {
        fprintf(stderr, "dspark report: %s/_MANIFEST.json has schema_version %.0f; this "
                        "dspark reads version 1\n", where, num(manifest, "schema_version"));
        goto out;
    }
    const char *job = str(manifest, "job");

    /* _SUCCESS contains the id of the job that published the output. */
    free(key);
    key = dsp_xasprintf("%s/_SUCCESS", prefix);
    st = dsp_store_get(store, key, 0, -1, &success, NULL, &err);
    if (st == DSP_ENOTFOUND) {
        fprintf(stderr, "dspark report: %s is incomplete because it has no _SUCCESS. The job "
                        "may still be publishing it, or failed while publishing\n", where);
        goto out;
    }
    if (st == DSP_OK &&
        (!job || success.len != strlen(job) || memcmp(success.data, job, success.len))) {
        fprintf(stderr, "dspark report: %s is incomplete because its _SUCCESS names job "
                        "\"%.*s\", not the job of its manifest (\"%s\"). Another job may be "
                        "publishing to the same output\n",
                where, (int)(success.len > 200 ? 200 : success.len),
                success.data ? success.data : "", job ? job : "");
        goto out;
    }
    if (st != DSP_OK)
        goto fail;

    st = check_files(store, prefix, where, manifest, verify, &err);
    if (st != DSP_OK)
        goto fail;

    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(manifest, "rejects")) {
        if (!str(f, "name"))
            continue;
        free(key);
        key = dsp_xasprintf("%s/%s", prefix, str(f, "name"));
        st = dsp_reject_tally_file(store, key, &rejects, &err);
        if (st != DSP_OK)
            goto fail;
    }
    dsp_reject_tally_sort(&rejects);

    const cJSON *clusters = cJSON_GetObjectItemCaseSensitive(manifest, "dedup_clusters");
    cJSON_ArrayForEach(f, clusters) {
        if (!str(f, "name"))
            continue;
        free(key);
        key = dsp_xasprintf("%s/%s", prefix, str(f, "name"));
        st = cluster_file(store, key, &cs, &err);
        if (st != DSP_OK)
            goto fail;
    }

    report = report_build(manifest, &rejects, &cs, cJSON_IsArray(clusters));
    if (json) {
        char *text = cJSON_Print(report);
        printf("%s\n", text);
        free(text);
    } else {
        report_print(stdout, report, where);
    }
    rc = DSP_EXIT_OK;
    goto out;

fail:
    fprintf(stderr, "dspark report: %s\n", err.msg);
    rc = st == DSP_ENOTFOUND ? DSP_EXIT_NOTFOUND : DSP_EXIT_FAILED;
out:
    cJSON_Delete(report);
    cJSON_Delete(manifest);
    dsp_reject_tally_free(&rejects);
    dsp_buf_free(&success);
    if (store)
        dsp_store_close(store);
    free(key);
    free(root);
    free(prefix);
    free(uri);
    return rc;
}
