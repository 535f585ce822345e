/*
 * dedup_driver.c - runs the dedup stages of tasks/dedup.h end to end on one
 * local JSONL input, for bench/dedup_bench.sh and bench/dedup_quality.sh.
 *
 *   dedup_driver exact   IN.jsonl[.zst|.gz] OUT.jsonl.zst [PARTITIONS]
 *   dedup_driver minhash IN.jsonl[.zst|.gz] OUT.jsonl.zst [PARTITIONS]
 *   dedup_driver quality IN.jsonl[.zst|.gz] [THRESHOLD]
 *
 * exact and minhash run the map stage over the input, the reduce stages
 * over PARTITIONS partitions (default 4), then the filter pass that reads
 * the input again and writes the surviving lines as zstd JSONL. They print
 * one JSON line with documents, drops, uncompressed input bytes, CPU
 * seconds, wall seconds and peak RSS. All stages run in this process, one
 * after the other, so CPU seconds are the cost of the whole dedup.
 *
 * quality runs MinHash dedup and compares it with exact Jaccard similarity
 * of word 5-gram sets (the same shingles), found with prefix filtering:
 * shingles are ordered by corpus frequency, rarest first, and two sets with
 * Jaccard >= t must share one of the first |s| - ceil(t * |s|) + 1 shingles
 * of each set, so indexing only those prefixes finds every such pair
 * without comparing all pairs. A document is a true duplicate when some
 * earlier document reaches the threshold with it. It prints precision
 * (removed documents that are true duplicates) and recall (true
 * duplicates that were removed).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zstd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../storage/store.h"
#include "../tasks/decompress.h"
#include "../tasks/dedup.h"
#include "../tasks/doc.h"
#include "../tasks/jsonl.h"

typedef struct {
    dsp_store *in_store;
    const char *in_key;
    dsp_store *work;
    char *work_dir;
    uint32_t parts;
    uint64_t raw_bytes;
} driver;

/* CPU seconds per phase: map pass, reduce stages, filter pass. */
static double phase_cpu[3];

static void die(const char *what, const dsp_err *err)
{
    fprintf(stderr, "dedup_driver: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

typedef dsp_status (*doc_fn)(void *ctx, dsp_doc *d, dsp_err *err);

/* Stream every document of the input through fn. */
static void for_each_doc(driver *dv, doc_fn fn, void *ctx)
{
    dsp_jsonl_opts o = {.store = dv->in_store, .key = dv->in_key, .length = -1};
    dsp_jsonl_reader *r;
    dsp_err err;
    if (dsp_jsonl_open(&o, &r, &err) != DSP_OK)
        die("open input", &err);
    dsp_batch b;
    dsp_batch_init(&b, "text");
    int eof = 0;
    while (!eof) {
        dsp_batch_reset(&b);
        if (dsp_jsonl_next(r, &b, 4096, 8u << 20, &eof, &err) != DSP_OK)
            die("read input", &err);
        for (size_t i = 0; i < b.n; i++)
            if (fn(ctx, &b.docs[i], &err) != DSP_OK)
                die("process document", &err);
    }
    dv->raw_bytes = dsp_jsonl_get_stats(r)->bytes_in_raw;
    dsp_batch_free(&b);
    dsp_jsonl_close(r);
}

static dsp_dedup_order order_of(const dsp_doc *d)
{
    dsp_dedup_order o = {0, d->offset};
    return o;
}

static dsp_status exact_add(void *ctx, dsp_doc *d, dsp_err *err)
{
    return dsp_dedup_exact_map_add(ctx, d->text ? d->text : "", d->text ? d->text_len : 0,
                                   order_of(d), err);
}

static dsp_status minhash_add(void *ctx, dsp_doc *d, dsp_err *err)
{
    return dsp_dedup_minhash_map_add(ctx, d->text ? d->text : "", d->text ? d->text_len : 0,
                                     order_of(d), err);
}

typedef struct {
    dsp_dedup_drops *drops;
    FILE *out;
    ZSTD_CCtx *cctx;
    dsp_buf line, frame;
    uint64_t kept, dropped;
} filter_ctx;

static void filter_flush(filter_ctx *f, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {f->line.data, f->line.len, 0};
    int finished;
    do {
        dsp_buf_reset(&f->frame);
        dsp_buf_reserve(&f->frame, ZSTD_CStreamOutSize());
        ZSTD_outBuffer out = {f->frame.data, ZSTD_CStreamOutSize(), 0};
        size_t left = ZSTD_compressStream2(f->cctx, &out, &in, mode);
        if (ZSTD_isError(left)) {
            fprintf(stderr, "dedup_driver: zstd: %s\n", ZSTD_getErrorName(left));
            exit(1);
        }
        if (fwrite(f->frame.data, 1, out.pos, f->out) != out.pos)
            die("write output", NULL);
        finished = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
    } while (!finished);
    dsp_buf_reset(&f->line);
}

/* Keep or drop one line that starts at decompressed byte `offset`. */
static dsp_status filter_line(filter_ctx *f, const char *line, size_t len, uint64_t offset,
                              dsp_err *err)
{
    dsp_dedup_order o = {0, offset};
    int drop = dsp_dedup_drops_contains(f->drops, o, err);
    if (drop < 0)
        return err->code;
    if (drop) {
        f->dropped++;
        return DSP_OK;
    }
    f->kept++;
    dsp_buf_append(&f->line, line, len);
    dsp_buf_append_char(&f->line, '\n');
    if (f->line.len >= (1u << 20))
        filter_flush(f, ZSTD_e_continue);
    return DSP_OK;
}

/*
 * The filter pass needs no JSON parsing: it splits the decompressed input
 * into lines, skips blank ones like the JSONL reader, and looks each line's
 * byte offset up in the drop list. Offsets match those of the map pass
 * because both count decompressed bytes from the start of the object.
 * NOTE: a line the JSONL reader rejected (invalid JSON, no text) was never
 * mapped, so this pass keeps it. The runtime's filter must reject it again.
 */
static void filter_lines(driver *dv, filter_ctx *f)
{
    dsp_err err;
    dsp_reader *src;
    dsp_dstream *ds;
    if (dsp_store_reader_open(dv->in_store, dv->in_key, 0, -1, NULL, &src, &err) != DSP_OK)
        die("open input", &err);
    if (dsp_dstream_open(src, dv->in_key, 0, 0, &ds, &err) != DSP_OK)
        die("open input", &err);
    dsp_buf buf = DSP_BUF_INIT;
    size_t chunk = 4u << 20, start = 0;
    uint64_t base = 0; /* decompressed offset of buf.data[0] */
    for (;;) {
        dsp_buf_reserve(&buf, chunk);
        size_t got;
        if (dsp_dstream_read(ds, buf.data + buf.len, chunk, &got, &err) != DSP_OK)
            die("read input", &err);
        size_t scan = buf.len;
        buf.len += got;
        int at_end = got == 0;
        for (;;) {
            char *nl = memchr(buf.data + scan, '\n', buf.len - scan);
            if (!nl && !(at_end && start < buf.len))
                break;
            size_t end = nl ? (size_t)(nl - buf.data) : buf.len;
            size_t i = start;
            while (i < end && (buf.data[i] == ' ' || buf.data[i] == '\t' || buf.data[i] == '\r'))
                i++;
            if (i < end && filter_line(f, buf.data + start, end - start, base + start, &err) != DSP_OK)
                die("filter", &err);
            start = end + 1;
            scan = start;
            if (!nl)
                break;
        }
        if (at_end)
            break;
        /* Move the unfinished line to the front of the buffer. */
        if (start > 0) {
            size_t keep = start < buf.len ? buf.len - start : 0;
            memmove(buf.data, buf.data + start, keep);
            base += start;
            buf.len = keep;
            start = 0;
        }
    }
    dv->raw_bytes = dsp_dstream_bytes_out(ds);
    dsp_buf_free(&buf);
    dsp_dstream_close(ds);
    dsp_reader_close(src);
}

static void run_filter(driver *dv, const char *const *drop_keys, size_t ndrops, const char *out,
                       filter_ctx *f)
{
    dsp_err err;
    memset(f, 0, sizeof *f);
    if (dsp_dedup_drops_open(dv->work, drop_keys, NULL, ndrops, 1, 0, NULL, &f->drops, &err) !=
        DSP_OK)
        die("open drops", &err);
    f->out = fopen(out, "wb");
    if (!f->out)
        die(out, NULL);
    f->cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(f->cctx, ZSTD_c_compressionLevel, 3);
    filter_lines(dv, f);
    filter_flush(f, ZSTD_e_end);
    fclose(f->out);
    ZSTD_freeCCtx(f->cctx);
    dsp_buf_free(&f->line);
    dsp_buf_free(&f->frame);
    dsp_dedup_drops_close(f->drops);
}

static char **part_keys(const char *fmt, uint32_t n)
{
    char **keys = dsp_xcalloc(n, sizeof *keys);
    for (uint32_t i = 0; i < n; i++)
        keys[i] = dsp_xasprintf(fmt, i);
    return keys;
}

static void run_exact(driver *dv, const char *out, filter_ctx *f)
{
    dsp_err err;
    dsp_dedup_exact_map *m;
    const char *map_key = "exact/map-0";
    dsp_dedup_exact_opts o = {.raw = getenv("DEDUP_EXACT_RAW") != NULL};
    double t0 = dsp_cpu_seconds();
    if (dsp_dedup_exact_map_open(dv->work, map_key, dv->parts, 0, &o, &m, &err) != DSP_OK)
        die("exact map", &err);
    for_each_doc(dv, exact_add, m);
    if (dsp_dedup_exact_map_close(m, NULL, &err) != DSP_OK)
        die("exact map close", &err);
    double t1 = dsp_cpu_seconds();
    char **drops = part_keys("exact/drop-%u", dv->parts);
    for (uint32_t p = 0; p < dv->parts; p++)
        if (dsp_dedup_exact_reduce(dv->work, &map_key, NULL, 1, dv->parts, p, drops[p], 1, NULL,
                                   NULL, &err) != DSP_OK)
            die("exact reduce", &err);
    double t2 = dsp_cpu_seconds();
    run_filter(dv, (const char *const *)drops, dv->parts, out, f);
    phase_cpu[0] = t1 - t0;
    phase_cpu[1] = t2 - t1;
    phase_cpu[2] = dsp_cpu_seconds() - t2;
}

/* MinHash options; DEDUP_MARGIN overrides the margin added to the
 * threshold for the signature check (negative = none), DEDUP_SKETCH_BITS
 * the bits per value of the sketches, DEDUP_SEED the permutation seed and
 * DEDUP_SCHEME the signature scheme (one_permutation or k_permutations),
 * for experiments. */
static dsp_dedup_minhash_opts minhash_opts(void)
{
    dsp_dedup_minhash_opts o = {0};
    const char *margin = getenv("DEDUP_MARGIN");
    if (margin)
        o.margin = atof(margin);
    const char *bits = getenv("DEDUP_SKETCH_BITS");
    if (bits)
        o.sketch_bits = atoi(bits);
    const char *scheme = getenv("DEDUP_SCHEME");
    if (scheme) {
        o.params.scheme = dsp_minhash_scheme_parse(scheme);
        if (o.params.scheme == DSP_MINHASH_DEFAULT_SCHEME) {
            fprintf(stderr, "dedup_driver: DEDUP_SCHEME must be one_permutation or "
                            "k_permutations, got \"%s\"\n", scheme);
            exit(2);
        }
    }
    const char *seed = getenv("DEDUP_SEED");
    if (seed)
        o.params.seed = strtoull(seed, NULL, 0);
    return o;
}

static void run_minhash(driver *dv, const char *out, const char *clusters, filter_ctx *f)
{
    dsp_err err;
    dsp_dedup_minhash_opts o = minhash_opts();
    dsp_dedup_minhash_map *m;
    const char *map_key = "minhash/map-0";
    double t0 = dsp_cpu_seconds();
    if (dsp_dedup_minhash_map_open(dv->work, map_key, dv->parts, 0, &o, &m, &err) != DSP_OK)
        die("MinHash map", &err);
    for_each_doc(dv, minhash_add, m);
    if (dsp_dedup_minhash_map_close(m, NULL, &err) != DSP_OK)
        die("MinHash map close", &err);
    double t1 = dsp_cpu_seconds();
    char **edges = part_keys("minhash/edges-%u", dv->parts);
    for (uint32_t p = 0; p < dv->parts; p++)
        if (dsp_dedup_minhash_bands(dv->work, &map_key, NULL, 1, dv->parts, p, edges[p], &o,
                                    NULL, &err) != DSP_OK)
            die("MinHash bands", &err);
    const char *drop = "minhash/drop";
    if (dsp_dedup_minhash_components(dv->work, (const char *const *)edges, NULL, dv->parts, drop,
                                     1, clusters, NULL, NULL, &err) != DSP_OK)
        die("MinHash components", &err);
    double t2 = dsp_cpu_seconds();
    run_filter(dv, &drop, 1, out, f);
    phase_cpu[0] = t1 - t0;
    phase_cpu[1] = t2 - t1;
    phase_cpu[2] = dsp_cpu_seconds() - t2;
}

/* ---- quality: exact Jaccard ground truth with prefix filtering ---- */

typedef struct {
    uint64_t *sh; /* sorted unique shingles, later re-sorted by frequency rank */
    uint32_t n;
    uint64_t offset;
} qdoc;

typedef struct {
    dsp_minhash *mh;
    qdoc *docs;
    size_t n, cap;
} qcorpus;

static int u64_cmp(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

static dsp_status quality_add(void *ctx, dsp_doc *d, dsp_err *err)
{
    (void)err;
    qcorpus *q = ctx;
    const uint64_t *h;
    size_t n = dsp_minhash_shingles(q->mh, d->text ? d->text : "", d->text ? d->text_len : 0, &h);
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 1024;
        q->docs = dsp_xrealloc(q->docs, q->cap * sizeof *q->docs);
    }
    qdoc *qd = &q->docs[q->n++];
    qd->sh = dsp_xmalloc((n + 1) * sizeof *qd->sh);
    memcpy(qd->sh, h, n * sizeof *qd->sh);
    qsort(qd->sh, n, sizeof *qd->sh, u64_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || qd->sh[i] != qd->sh[u - 1])
            qd->sh[u++] = qd->sh[i];
    qd->n = (uint32_t)u;
    qd->offset = d->offset;
    return DSP_OK;
}

/* Shingle -> frequency rank, as an open-addressing table. */
typedef struct {
    uint64_t *keys;
    uint32_t *vals;
    size_t mask;
} u64map;

static size_t u64map_slot(const u64map *m, uint64_t k)
{
    size_t s = (size_t)(k * 0x9e3779b97f4a7c15ull >> 20) & m->mask;
    while (m->vals[s] != UINT32_MAX && m->keys[s] != k)
        s = (s + 1) & m->mask;
    return s;
}

typedef struct {
    uint64_t key;
    uint32_t count;
} freq_entry;

static int freq_cmp(const void *pa, const void *pb)
{
    const freq_entry *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count < b->count ? -1 : 1;
    return a->key < b->key ? -1 : a->key > b->key;
}

static int u32_cmp(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return a < b ? -1 : a > b;
}

static double jaccard_ranks(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
    uint32_t i = 0, j = 0, inter = 0;
    while (i < na && j < nb) {
        if (a[i] < b[j])
            i++;
        else if (a[i] > b[j])
            j++;
        else {
            inter++;
            i++;
            j++;
        }
    }
    uint32_t uni = na + nb - inter;
    return uni ? (double)inter / uni : 0.0;
}

/*
 * Mark truth[i] = 1 when an earlier document reaches Jaccard t with
 * document i, and any[i] = any[j] = 1 for both members of such a pair.
 * ranks[i] contains document i's shingles as frequency ranks, sorted.
 */
static void exact_truth(uint32_t **ranks, const uint32_t *sizes, size_t ndocs, size_t distinct,
                        double t, unsigned char *truth, unsigned char *any, uint64_t *verified)
{
    /* Prefix index: rank -> documents with that rank in their prefix. */
    size_t *head = dsp_xcalloc(distinct + 1, sizeof *head);
    for (size_t i = 0; i < ndocs; i++) {
        uint32_t n = sizes[i], pre = n ? n - (uint32_t)ceil(t * n - 1e-9) + 1 : 0;
        for (uint32_t k = 0; k < pre && k < n; k++)
            head[ranks[i][k] + 1]++;
    }
    for (size_t r = 0; r < distinct; r++)
        head[r + 1] += head[r];
    uint32_t *posting = dsp_xmalloc((head[distinct] + 1) * sizeof *posting);
    size_t *fill = dsp_xmalloc((distinct + 1) * sizeof *fill);
    memcpy(fill, head, (distinct + 1) * sizeof *fill);
    for (size_t i = 0; i < ndocs; i++) {
        uint32_t n = sizes[i], pre = n ? n - (uint32_t)ceil(t * n - 1e-9) + 1 : 0;
        for (uint32_t k = 0; k < pre && k < n; k++)
            posting[fill[ranks[i][k]]++] = (uint32_t)i;
    }

    unsigned char *seen = dsp_xcalloc(ndocs + 1, 1);
    uint32_t *cands = dsp_xmalloc((ndocs + 1) * sizeof *cands);
    for (size_t i = 0; i < ndocs; i++) {
        uint32_t n = sizes[i], pre = n ? n - (uint32_t)ceil(t * n - 1e-9) + 1 : 0;
        size_t nc = 0;
        for (uint32_t k = 0; k < pre && k < n; k++)
            for (size_t p = head[ranks[i][k]]; p < head[ranks[i][k] + 1]; p++) {
                uint32_t j = posting[p];
                if (j >= i || seen[j])
                    continue;
                seen[j] = 1;
                cands[nc++] = j;
            }
        for (size_t c = 0; c < nc; c++) {
            uint32_t j = cands[c];
            seen[j] = 0;
            uint32_t nj = sizes[j];
            /* Length filter: |small| >= t * |large| is necessary. */
            if ((double)(n < nj ? n : nj) < t * (n > nj ? n : nj))
                continue;
            (*verified)++;
            if (jaccard_ranks(ranks[i], n, ranks[j], nj) >= t) {
                truth[i] = 1;
                any[i] = any[j] = 1;
            }
        }
    }
    free(head);
    free(posting);
    free(fill);
    free(seen);
    free(cands);
}

static void run_quality(driver *dv, double t)
{
    dsp_err err;
    qcorpus q = {0};
    if (dsp_minhash_new(NULL, &q.mh, &err) != DSP_OK)
        die("minhash", &err);
    for_each_doc(dv, quality_add, &q);

    /* Frequency of every shingle, then ranks: rarest first. */
    size_t total = 0;
    for (size_t i = 0; i < q.n; i++)
        total += q.docs[i].n;
    u64map map;
    size_t slots = 1;
    while (slots < 2 * total + 2)
        slots <<= 1;
    map.mask = slots - 1;
    map.keys = dsp_xmalloc(slots * sizeof *map.keys);
    map.vals = dsp_xmalloc(slots * sizeof *map.vals);
    memset(map.vals, 0xff, slots * sizeof *map.vals);
    size_t distinct = 0;
    freq_entry *freq = dsp_xmalloc((total + 1) * sizeof *freq);
    for (size_t i = 0; i < q.n; i++)
        for (uint32_t k = 0; k < q.docs[i].n; k++) {
            size_t s = u64map_slot(&map, q.docs[i].sh[k]);
            if (map.vals[s] == UINT32_MAX) {
                map.keys[s] = q.docs[i].sh[k];
                map.vals[s] = (uint32_t)distinct;
                freq[distinct].key = q.docs[i].sh[k];
                freq[distinct++].count = 0;
            }
            freq[map.vals[s]].count++;
        }
    qsort(freq, distinct, sizeof *freq, freq_cmp);
    for (size_t r = 0; r < distinct; r++)
        map.vals[u64map_slot(&map, freq[r].key)] = (uint32_t)r;
    uint32_t **ranks = dsp_xcalloc(q.n, sizeof *ranks);
    for (size_t i = 0; i < q.n; i++) {
        ranks[i] = dsp_xmalloc((q.docs[i].n + 1) * sizeof **ranks);
        for (uint32_t k = 0; k < q.docs[i].n; k++)
            ranks[i][k] = map.vals[u64map_slot(&map, q.docs[i].sh[k])];
        qsort(ranks[i], q.docs[i].n, sizeof **ranks, u32_cmp);
    }

    uint32_t *sizes = dsp_xmalloc((q.n + 1) * sizeof *sizes);
    for (size_t i = 0; i < q.n; i++)
        sizes[i] = q.docs[i].n;
    unsigned char *truth = dsp_xcalloc(q.n + 1, 1), *any = dsp_xcalloc(q.n + 1, 1);
    unsigned char *near = dsp_xcalloc(q.n + 1, 1), *near_any = dsp_xcalloc(q.n + 1, 1);
    uint64_t verified = 0;
    exact_truth(ranks, sizes, q.n, distinct, t, truth, any, &verified);
    /* A looser threshold separates near misses (true Jaccard just below t)
     * from unrelated removals. */
    exact_truth(ranks, sizes, q.n, distinct, t - 0.1, near, near_any, &verified);

    /* MinHash dedup of the same input. */
    filter_ctx f;
    char *out = dsp_xasprintf("%s/quality-out.jsonl.zst", dv->work_dir);
    double cpu0 = dsp_cpu_seconds();
    run_minhash(dv, out, "minhash/clusters.jsonl", &f);
    double cpu = dsp_cpu_seconds() - cpu0;
    free(out);
    /* Read the drop list again to count removed documents. */
    dsp_dedup_drops *drops;
    const char *drop = "minhash/drop";
    if (dsp_dedup_drops_open(dv->work, &drop, NULL, 1, 1, 0, NULL, &drops, &err) != DSP_OK)
        die("open drops", &err);
    uint64_t removed = 0, true_pos = 0, dups = 0, with_later = 0, near_miss = 0;
    for (size_t i = 0; i < q.n; i++) {
        dsp_dedup_order o = {0, q.docs[i].offset};
        int r = dsp_dedup_drops_contains(drops, o, &err);
        if (r < 0)
            die("drops", &err);
        removed += r;
        dups += truth[i];
        true_pos += r && truth[i];
        with_later += r && !truth[i] && any[i];
        near_miss += r && !any[i] && near_any[i];
    }
    dsp_dedup_drops_close(drops);
    double precision = removed ? (double)true_pos / removed : 1.0;
    double recall = dups ? (double)true_pos / dups : 1.0;
    printf("{\"docs\":%zu,\"threshold\":%.2f,\"true_duplicates\":%llu,\"removed\":%llu,"
           "\"true_positives\":%llu,\"precision\":%.4f,\"recall\":%.4f,"
           "\"false_pos_with_later_partner\":%llu,\"false_pos_near_miss\":%llu,"
           "\"exact_pairs_verified\":%llu,\"minhash_cpu_s\":%.2f}\n",
           q.n, t, (unsigned long long)dups, (unsigned long long)removed,
           (unsigned long long)true_pos, precision, recall, (unsigned long long)with_later,
           (unsigned long long)near_miss, (unsigned long long)verified, cpu);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s exact|minhash IN OUT.jsonl.zst [PARTITIONS]\n"
                        "       %s quality IN [THRESHOLD]\n", argv[0], argv[0]);
        return 2;
    }
    dsp_log_init(NULL);
    const char *mode = argv[1];
    dsp_err err;
    driver dv = {.parts = 4};
    char *root, *key;
    char *abs_in = realpath(argv[2], NULL);
    if (!abs_in)
        die(argv[2], NULL);
    if (dsp_uri_split(abs_in, &root, &key, &err) != DSP_OK)
        die("input path", &err);
    if (dsp_store_open(root, NULL, &dv.in_store, &err) != DSP_OK)
        die("open input store", &err);
    dv.in_key = key;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    dv.work_dir = dsp_xasprintf("%s/dedup-driver-XXXXXX", tmp);
    if (!mkdtemp(dv.work_dir))
        die(dv.work_dir, NULL);
    if (dsp_store_open(dv.work_dir, NULL, &dv.work, &err) != DSP_OK)
        die("open work store", &err);

    double cpu0 = dsp_cpu_seconds();
    int64_t wall0 = dsp_mono_ms();
    filter_ctx f = {0};
    if (strcmp(mode, "quality") == 0) {
        run_quality(&dv, argc > 3 ? atof(argv[3]) : 0.8);
    } else {
        if (argc < 4) {
            fprintf(stderr, "dedup_driver: missing output path\n");
            return 2;
        }
        if (argc > 4)
            dv.parts = (uint32_t)atoi(argv[4]);
        if (strcmp(mode, "exact") == 0)
            run_exact(&dv, argv[3], &f);
        else if (strcmp(mode, "minhash") == 0)
            run_minhash(&dv, argv[3], NULL, &f);
        else {
            fprintf(stderr, "dedup_driver: unknown mode '%s'\n", mode);
            return 2;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double cpu = dsp_cpu_seconds() - cpu0;
        printf("{\"mode\":\"%s\",\"docs_out\":%llu,\"dropped\":%llu,\"input_bytes\":%llu,"
               "\"cpu_s\":%.3f,\"map_cpu_s\":%.3f,\"reduce_cpu_s\":%.3f,\"filter_cpu_s\":%.3f,"
               "\"wall_s\":%.3f,\"mb_per_cpu_s\":%.1f,\"max_rss_mib\":%.1f}\n",
               mode, (unsigned long long)f.kept, (unsigned long long)f.dropped,
               (unsigned long long)dv.raw_bytes, cpu, phase_cpu[0], phase_cpu[1], phase_cpu[2],
               (dsp_mono_ms() - wall0) / 1000.0,
               dv.raw_bytes / 1e6 / cpu, ru.ru_maxrss / 1024.0);
    }
    char *cmd = dsp_xasprintf("rm -rf '%s'", dv.work_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "dedup_driver: could not remove %s\n", dv.work_dir);
    free(cmd);
    dsp_store_close(dv.work);
    dsp_store_close(dv.in_store);
    return 0;
}
