/*
 * shuffle.c - shuffle file writer and sorted, spilling shuffle reader.
 *
 * The file format is documented in shuffle.h. The writer guarantees one
 * object per map task, written through one streaming upload, and memory
 * bounded by its budget plus one compressed frame. The reader guarantees
 * that the records of the requested partitions come back in a total order
 * (key bytes, then value bytes). Record bytes held in memory stay within
 * its budget, and everything beyond goes to sorted runs on local disk that
 * are merged at the end.
 */
#include "shuffle.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"

#define SHUF_REC_HEADER 6 /* u16 key_len + u32 value_len */

static void le32_put(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void le64_put(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t le32_get(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint16_t le16_get(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Open a temporary spill file and unlink its name at once, so the kernel
 * frees the space when the descriptor closes, even if the process dies. */
static dsp_status spill_open(const char *tmp_dir, int *fd_out, dsp_err *err)
{
    const char *dir = tmp_dir;
    if (!dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char *path = dsp_xasprintf("%s/dsp-shuffle-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        dsp_status st = dsp_err_set(err, DSP_EIO, "creating shuffle spill file in %s: %s", dir,
                                    strerror(errno));
        free(path);
        return st;
    }
    unlink(path);
    free(path);
    *fd_out = fd;
    return DSP_OK;
}

static dsp_status spill_write(int fd, const void *data, size_t len, uint64_t *pos, dsp_err *err)
{
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = pwrite(fd, p, left, (off_t)*pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return dsp_err_set(err, DSP_EIO, "writing shuffle spill file at byte %llu: %s",
                               (unsigned long long)*pos, n < 0 ? strerror(errno) : "no space");
        p += n;
        left -= (size_t)n;
        *pos += (uint64_t)n;
    }
    return DSP_OK;
}

static dsp_status spill_read(int fd, void *data, size_t len, uint64_t pos, dsp_err *err)
{
    char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = pread(fd, p, left, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return dsp_err_set(err, DSP_EIO, "reading shuffle spill file at byte %llu: %s",
                               (unsigned long long)pos, n < 0 ? strerror(errno) : "short read");
        p += n;
        left -= (size_t)n;
        pos += (uint64_t)n;
    }
    return DSP_OK;
}

/* ======================================================================
 * Writer
 * ====================================================================== */

typedef struct {
    uint64_t offset, size;
} shuf_chunk;

typedef struct {
    dsp_buf raw;          /* records not yet compressed */
    shuf_chunk *chunks;   /* frames already in the spill file, in order */
    size_t nchunks, cap_chunks;
    uint64_t records, raw_bytes;
} shuf_part;

struct dsp_shuffle_writer {
    dsp_store *store;
    char *key;
    uint32_t nparts;
    shuf_part *parts;
    size_t budget, buffered;
    int level;
    char *tmp_dir;
    int spill_fd;
    uint64_t spill_pos;
    ZSTD_CCtx *cctx;
    dsp_buf frame;
    dsp_shuffle_write_stats stats;
};

dsp_status dsp_shuffle_writer_open(dsp_store *store, const char *key, uint32_t partitions,
                                   const dsp_shuffle_writer_opts *opts,
                                   dsp_shuffle_writer **out, dsp_err *err)
{
    if (partitions == 0)
        return dsp_err_set(err, DSP_EINVAL, "shuffle %s: partitions must be at least 1", key);
    dsp_shuffle_writer *w = dsp_xcalloc(1, sizeof *w);
    w->store = store;
    w->key = dsp_xstrdup(key);
    w->nparts = partitions;
    w->parts = dsp_xcalloc(partitions, sizeof *w->parts);
    w->budget = opts && opts->memory_budget ? opts->memory_budget : DSP_SHUFFLE_DEFAULT_BUDGET;
    w->level = opts && opts->level ? opts->level : 1;
    w->tmp_dir = opts && opts->tmp_dir ? dsp_xstrdup(opts->tmp_dir) : NULL;
    w->spill_fd = -1;
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx) {
        dsp_shuffle_writer_abort(w);
        return dsp_err_set(err, DSP_ENOMEM, "shuffle %s: cannot create zstd context", key);
    }
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->level);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    *out = w;
    return DSP_OK;
}

/* Compress src into w->frame as one zstd frame. */
static dsp_status writer_compress(dsp_shuffle_writer *w, const dsp_buf *src, dsp_err *err)
{
    size_t bound = ZSTD_compressBound(src->len);
    dsp_buf_reset(&w->frame);
    dsp_buf_reserve(&w->frame, bound);
    size_t n = ZSTD_compress2(w->cctx, w->frame.data, bound, src->data, src->len);
    if (ZSTD_isError(n))
        return dsp_err_set(err, DSP_EIO, "shuffle %s: zstd compression failed: %s", w->key,
                           ZSTD_getErrorName(n));
    w->frame.len = n;
    return DSP_OK;
}

/* Move every partition's buffered records into frames in the spill file. */
static dsp_status writer_spill(dsp_shuffle_writer *w, dsp_err *err)
{
    if (w->spill_fd < 0) {
        dsp_status st = spill_open(w->tmp_dir, &w->spill_fd, err);
        if (st != DSP_OK)
            return st;
    }
    for (uint32_t p = 0; p < w->nparts; p++) {
        shuf_part *part = &w->parts[p];
        if (part->raw.len == 0)
            continue;
        dsp_status st = writer_compress(w, &part->raw, err);
        if (st != DSP_OK)
            return st;
        if (part->nchunks == part->cap_chunks) {
            part->cap_chunks = part->cap_chunks ? 2 * part->cap_chunks : 4;
            part->chunks = dsp_xrealloc(part->chunks, part->cap_chunks * sizeof *part->chunks);
        }
        part->chunks[part->nchunks].offset = w->spill_pos;
        part->chunks[part->nchunks].size = w->frame.len;
        part->nchunks++;
        st = spill_write(w->spill_fd, w->frame.data, w->frame.len, &w->spill_pos, err);
        if (st != DSP_OK)
            return st;
        /* Free the buffer because a spilled partition may stay small later. */
        dsp_buf_free(&part->raw);
        w->stats.spilled_frames++;
    }
    w->buffered = 0;
    return DSP_OK;
}

dsp_status dsp_shuffle_writer_add(dsp_shuffle_writer *w, uint32_t p, const void *key,
                                  size_t key_len, const void *value, size_t value_len,
                                  dsp_err *err)
{
    if (p >= w->nparts)
        return dsp_err_set(err, DSP_EINVAL, "shuffle %s: partition %u out of range (%u partitions)",
                           w->key, p, w->nparts);
    if (key_len > DSP_SHUFFLE_KEY_MAX || value_len > UINT32_MAX)
        return dsp_err_set(err, DSP_EINVAL,
                           "shuffle %s: record too large (key %zu bytes, value %zu bytes)",
                           w->key, key_len, value_len);
    shuf_part *part = &w->parts[p];
    unsigned char hdr[SHUF_REC_HEADER];
    hdr[0] = (unsigned char)key_len;
    hdr[1] = (unsigned char)(key_len >> 8);
    le32_put(hdr + 2, (uint32_t)value_len);
    size_t before = part->raw.len;
    dsp_buf_append(&part->raw, hdr, sizeof hdr);
    dsp_buf_append(&part->raw, key, key_len);
    dsp_buf_append(&part->raw, value, value_len);
    size_t added = part->raw.len - before;
    part->records++;
    part->raw_bytes += added;
    w->stats.records++;
    w->stats.raw_bytes += added;
    w->buffered += added;
    if (w->buffered > w->budget)
        return writer_spill(w, err);
    return DSP_OK;
}

/* Write bytes of the object and add them to its SHA-256. */
static dsp_status writer_emit(dsp_writer *sw, dsp_sha256 *hash, const void *data, size_t len,
                              uint64_t *pos, dsp_err *err)
{
    dsp_status st = dsp_writer_write(sw, data, len, err);
    if (st == DSP_OK) {
        dsp_sha256_update(hash, data, len);
        *pos += len;
    }
    return st;
}

static void writer_free(dsp_shuffle_writer *w)
{
    if (!w)
        return;
    for (uint32_t p = 0; p < w->nparts; p++) {
        dsp_buf_free(&w->parts[p].raw);
        free(w->parts[p].chunks);
    }
    free(w->parts);
    if (w->spill_fd >= 0)
        close(w->spill_fd);
    ZSTD_freeCCtx(w->cctx);
    dsp_buf_free(&w->frame);
    free(w->tmp_dir);
    free(w->key);
    free(w);
}

void dsp_shuffle_writer_abort(dsp_shuffle_writer *w)
{
    writer_free(w);
}

dsp_status dsp_shuffle_writer_close(dsp_shuffle_writer *w, dsp_shuffle_write_stats *stats,
                                    dsp_err *err)
{
    dsp_writer *sw = NULL;
    dsp_buf copy = DSP_BUF_INIT;
    unsigned char *index = dsp_xcalloc(w->nparts, DSP_SHUFFLE_INDEX_ENTRY_SIZE);
    uint64_t pos = 0;
    dsp_sha256 *hash = dsp_sha256_new();
    dsp_status st = dsp_store_writer_open(w->store, w->key, NULL, &sw, err);
    if (st != DSP_OK)
        goto out;

    for (uint32_t p = 0; p < w->nparts; p++) {
        shuf_part *part = &w->parts[p];
        uint64_t start = pos;
        for (size_t c = 0; c < part->nchunks; c++) {
            dsp_buf_reset(&copy);
            dsp_buf_reserve(&copy, part->chunks[c].size);
            st = spill_read(w->spill_fd, copy.data, part->chunks[c].size, part->chunks[c].offset,
                            err);
            if (st != DSP_OK)
                goto out;
            st = writer_emit(sw, hash, copy.data, part->chunks[c].size, &pos, err);
            if (st != DSP_OK)
                goto out;
        }
        if (part->raw.len > 0) {
            st = writer_compress(w, &part->raw, err);
            if (st != DSP_OK)
                goto out;
            st = writer_emit(sw, hash, w->frame.data, w->frame.len, &pos, err);
            if (st != DSP_OK)
                goto out;
        }
        unsigned char *e = index + (size_t)p * DSP_SHUFFLE_INDEX_ENTRY_SIZE;
        le64_put(e, start);
        le64_put(e + 8, pos - start);
        le64_put(e + 16, part->records);
        le64_put(e + 24, part->raw_bytes);
    }

    size_t index_size = (size_t)w->nparts * DSP_SHUFFLE_INDEX_ENTRY_SIZE;
    uint64_t index_offset = pos;
    st = writer_emit(sw, hash, index, index_size, &pos, err);
    if (st != DSP_OK)
        goto out;
    unsigned char footer[DSP_SHUFFLE_FOOTER_SIZE];
    memcpy(footer, DSP_SHUFFLE_MAGIC, 8);
    le32_put(footer + 8, DSP_SHUFFLE_VERSION);
    le32_put(footer + 12, w->nparts);
    le64_put(footer + 16, index_offset);
    le64_put(footer + 24, index_size);
    le64_put(footer + 32, XXH3_64bits(index, index_size));
    st = writer_emit(sw, hash, footer, sizeof footer, &pos, err);
    if (st != DSP_OK)
        goto out;
    dsp_writer *closing = sw;
    sw = NULL;
    st = dsp_writer_close(closing, NULL, err);
    if (st != DSP_OK)
        goto out;
    w->stats.object_bytes = pos;
    dsp_sha256_final_hex(hash, w->stats.sha256);
    hash = NULL;
    if (stats)
        *stats = w->stats;

out:
    if (st != DSP_OK)
        dsp_err_prefix(err, "writing shuffle file %s", w->key);
    if (sw)
        dsp_writer_abort(sw);
    if (hash) {
        char unused[65];
        dsp_sha256_final_hex(hash, unused);
    }
    dsp_buf_free(&copy);
    free(index);
    writer_free(w);
    return st;
}

/* ======================================================================
 * Reader: index fetch, slice fetch, sort with spill, k-way merge
 * ====================================================================== */

typedef struct {
    uint64_t offset, length;
} shuf_range;

typedef struct {
    const char *key;
    uint64_t size;           /* object size, 0 until known */
    uint64_t start, end;     /* contiguous byte range of the requested partitions */
    uint64_t records, raw;   /* sums over the requested partitions */
} shuf_obj;

/* A ranged GET of one object, run in a worker thread. */
typedef struct {
    size_t obj;
    uint64_t offset, length;
    dsp_buf data;
    dsp_status st;
    dsp_err err;
} shuf_fetch;

/* One sorted run in the spill file, read through its own buffer. */
typedef struct {
    uint64_t pos, end;          /* remaining byte range in the spill file */
    unsigned char *buf;
    size_t buf_cap, buf_len, buf_off;
    dsp_shuffle_rec cur;
} shuf_run;

typedef struct {
    uint64_t prefix;  /* first 8 key bytes, big endian, zero padded */
    size_t offset;    /* of the encoded record in the sort buffer */
} shuf_entry;

struct dsp_shuffle_reader {
    dsp_store *store;
    uint32_t nparts, p_begin, p_end;
    size_t budget, max_request;
    int threads;
    char *tmp_dir;
    volatile int *cancel;

    shuf_obj *objs;
    size_t nobjs;

    /* sort buffer */
    dsp_buf data;
    shuf_entry *entries;
    size_t nentries, cap_entries;

    /* spill */
    int spill_fd;
    uint64_t spill_pos;
    shuf_run *runs;
    size_t nruns, cap_runs;
    size_t *heap; /* indices into runs, min-heap by current record */
    size_t nheap;

    size_t next_entry; /* in-memory iteration when nruns == 0 */
    int merging;

    dsp_shuffle_read_stats stats;
    dsp_buf encoded; /* one record encoded by dsp_shuffle_sorter_add */
    int sorter_done; /* dsp_shuffle_sorter_finish has run */
};

static int rec_cmp(const dsp_shuffle_rec *a, const dsp_shuffle_rec *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    n = a->value_len < b->value_len ? a->value_len : b->value_len;
    c = n ? memcmp(a->value, b->value, n) : 0;
    if (c)
        return c;
    if (a->value_len != b->value_len)
        return a->value_len < b->value_len ? -1 : 1;
    return 0;
}

static void rec_decode(const unsigned char *p, dsp_shuffle_rec *rec)
{
    rec->key_len = le16_get(p);
    rec->value_len = le32_get(p + 2);
    rec->key = p + SHUF_REC_HEADER;
    rec->value = p + SHUF_REC_HEADER + rec->key_len;
}

/* qsort has no context argument in C11, so the comparator finds the sort
 * buffer through a thread-local pointer set around the call. */
static _Thread_local const char *sort_base;

static int entry_cmp(const void *pa, const void *pb)
{
    const shuf_entry *a = pa, *b = pb;
    if (a->prefix != b->prefix)
        return a->prefix < b->prefix ? -1 : 1;
    dsp_shuffle_rec ra, rb;
    rec_decode((const unsigned char *)sort_base + a->offset, &ra);
    rec_decode((const unsigned char *)sort_base + b->offset, &rb);
    return rec_cmp(&ra, &rb);
}

/*
 * Sort entries by prefix with a least-significant-digit radix sort, one
 * pass per prefix byte, skipping bytes that every entry shares. Radix
 * passes are stable, and runs of equal prefixes are then ordered by the
 * whole record with entry_cmp, so the order is the one qsort with
 * entry_cmp gives, in time linear in n when prefixes rarely repeat. It
 * needs a scratch array of n entries, as glibc's merge sort does.
 */
static void radix_sort_entries(shuf_entry *e, size_t n)
{
    size_t(*counts)[256] = dsp_xcalloc(8, sizeof *counts);
    for (size_t i = 0; i < n; i++)
        for (int byte = 0; byte < 8; byte++)
            counts[byte][(e[i].prefix >> (8 * byte)) & 0xff]++;
    shuf_entry *tmp = dsp_xmalloc(n * sizeof *tmp);
    shuf_entry *from = e, *to = tmp;
    for (int byte = 0; byte < 8; byte++) {
        size_t *c = counts[byte];
        if (c[(from[0].prefix >> (8 * byte)) & 0xff] == n)
            continue; /* every entry has the same byte here */
        size_t pos = 0;
        for (int v = 0; v < 256; v++) {
            size_t k = c[v];
            c[v] = pos;
            pos += k;
        }
        for (size_t i = 0; i < n; i++)
            to[c[(from[i].prefix >> (8 * byte)) & 0xff]++] = from[i];
        shuf_entry *swap = from;
        from = to;
        to = swap;
    }
    if (from != e)
        memcpy(e, from, n * sizeof *e);
    free(tmp);
    free(counts);
}

static void reader_sort(dsp_shuffle_reader *r)
{
    if (r->nentries < 2)
        return;
    radix_sort_entries(r->entries, r->nentries);
    sort_base = r->data.data;
    for (size_t i = 0; i < r->nentries;) {
        size_t j = i + 1;
        while (j < r->nentries && r->entries[j].prefix == r->entries[i].prefix)
            j++;
        if (j - i > 1)
            qsort(r->entries + i, j - i, sizeof *r->entries, entry_cmp);
        i = j;
    }
    sort_base = NULL;
}

static size_t reader_buffered(const dsp_shuffle_reader *r)
{
    return r->data.len + r->nentries * sizeof(shuf_entry);
}

/* Sort the buffered records and append them to the spill file as a run. */
static dsp_status reader_spill_run(dsp_shuffle_reader *r, dsp_err *err)
{
    if (r->nentries == 0)
        return DSP_OK;
    if (r->spill_fd < 0) {
        dsp_status st = spill_open(r->tmp_dir, &r->spill_fd, err);
        if (st != DSP_OK)
            return st;
    }
    reader_sort(r);
    dsp_buf out = DSP_BUF_INIT;
    uint64_t start = r->spill_pos;
    dsp_status st = DSP_OK;
    for (size_t i = 0; i < r->nentries && st == DSP_OK; i++) {
        dsp_shuffle_rec rec;
        const unsigned char *p = (const unsigned char *)r->data.data + r->entries[i].offset;
        rec_decode(p, &rec);
        dsp_buf_append(&out, p, SHUF_REC_HEADER + rec.key_len + rec.value_len);
        if (out.len >= (1u << 20) || i + 1 == r->nentries) {
            st = spill_write(r->spill_fd, out.data, out.len, &r->spill_pos, err);
            dsp_buf_reset(&out);
        }
    }
    dsp_buf_free(&out);
    if (st != DSP_OK)
        return st;
    if (r->nruns == r->cap_runs) {
        r->cap_runs = r->cap_runs ? 2 * r->cap_runs : 8;
        r->runs = dsp_xrealloc(r->runs, r->cap_runs * sizeof *r->runs);
    }
    shuf_run *run = &r->runs[r->nruns++];
    memset(run, 0, sizeof *run);
    run->pos = start;
    run->end = r->spill_pos;
    r->stats.runs_spilled++;
    dsp_buf_reset(&r->data);
    r->nentries = 0;
    return DSP_OK;
}

/* Add one decoded record (already validated) to the sort buffer. */
static dsp_status reader_add(dsp_shuffle_reader *r, const unsigned char *p, size_t len,
                             dsp_err *err)
{
    if (r->nentries > 0 && reader_buffered(r) + len + sizeof(shuf_entry) > r->budget) {
        dsp_status st = reader_spill_run(r, err);
        if (st != DSP_OK)
            return st;
    }
    if (r->nentries == r->cap_entries) {
        r->cap_entries = r->cap_entries ? 2 * r->cap_entries : 1024;
        r->entries = dsp_xrealloc(r->entries, r->cap_entries * sizeof *r->entries);
    }
    shuf_entry *e = &r->entries[r->nentries++];
    e->offset = r->data.len;
    uint16_t klen = le16_get(p);
    unsigned char pre[8] = {0};
    memcpy(pre, p + SHUF_REC_HEADER, klen < 8 ? klen : 8);
    e->prefix = dsp_be64_get(pre);
    dsp_buf_append(&r->data, p, len);
    size_t now = reader_buffered(r);
    if (now > r->stats.peak_buffered)
        r->stats.peak_buffered = now;
    r->stats.records++;
    r->stats.raw_bytes += len;
    return DSP_OK;
}

/* Split a buffer of decompressed records into records. An incomplete tail
 * stays in `carry` for the next chunk. */
static dsp_status reader_consume(dsp_shuffle_reader *r, dsp_buf *carry, dsp_err *err)
{
    size_t off = 0;
    const unsigned char *base = (const unsigned char *)carry->data;
    while (carry->len - off >= SHUF_REC_HEADER) {
        size_t klen = le16_get(base + off);
        size_t vlen = le32_get(base + off + 2);
        size_t len = SHUF_REC_HEADER + klen + vlen;
        if (carry->len - off < len)
            break;
        dsp_status st = reader_add(r, base + off, len, err);
        if (st != DSP_OK)
            return st;
        off += len;
    }
    if (off > 0) {
        memmove(carry->data, carry->data + off, carry->len - off);
        carry->len -= off;
    }
    return DSP_OK;
}

/* ---- thread pool over fetches ---- */

typedef struct {
    dsp_shuffle_reader *r;
    shuf_fetch *jobs;
    size_t njobs;
    size_t next;
    int index_phase;
    pthread_mutex_t mu;
    dsp_log_ctx log_ctx; /* the caller's, so that fetch threads log the task's ids */
} shuf_pool;

/* DSP_ECANCELLED with a message when the caller's cancel flag is set. */
static dsp_status reader_check_cancel(const dsp_shuffle_reader *r, dsp_err *err)
{
    if (r->cancel && *r->cancel)
        return dsp_err_set(err, DSP_ECANCELLED, "shuffle read of partitions [%u, %u) cancelled",
                           r->p_begin, r->p_end);
    return DSP_OK;
}

static void fetch_index(dsp_shuffle_reader *r, shuf_fetch *f)
{
    shuf_obj *o = &r->objs[f->obj];
    dsp_obj_info info;
    if (o->size == 0) {
        f->st = dsp_store_head(r->store, o->key, &info, &f->err);
        if (f->st != DSP_OK)
            return;
        o->size = info.size;
    }
    uint64_t tail = (uint64_t)r->nparts * DSP_SHUFFLE_INDEX_ENTRY_SIZE + DSP_SHUFFLE_FOOTER_SIZE;
    if (o->size < tail) {
        f->st = dsp_err_set(&f->err, DSP_ECORRUPT,
                            "shuffle file %s: %llu bytes, too small for %u partitions", o->key,
                            (unsigned long long)o->size, r->nparts);
        return;
    }
    f->st = dsp_store_get(r->store, o->key, o->size - tail, (int64_t)tail, &f->data, NULL,
                          &f->err);
    if (f->st != DSP_OK)
        return;
    if (f->data.len != tail) {
        f->st = dsp_err_set(&f->err, DSP_ECORRUPT,
                            "shuffle file %s: short index read (%zu of %llu bytes)", o->key,
                            f->data.len, (unsigned long long)tail);
        return;
    }
    const unsigned char *index = (const unsigned char *)f->data.data;
    const unsigned char *footer = index + tail - DSP_SHUFFLE_FOOTER_SIZE;
    size_t index_size = (size_t)r->nparts * DSP_SHUFFLE_INDEX_ENTRY_SIZE;
    if (memcmp(footer, DSP_SHUFFLE_MAGIC, 8) != 0 || le32_get(footer + 8) != DSP_SHUFFLE_VERSION) {
        f->st = dsp_err_set(&f->err, DSP_ECORRUPT,
                            "shuffle file %s: bad footer magic or version at byte %llu", o->key,
                            (unsigned long long)(o->size - DSP_SHUFFLE_FOOTER_SIZE));
        return;
    }
    if (le32_get(footer + 12) != r->nparts || le64_get(footer + 24) != index_size ||
        le64_get(footer + 16) != o->size - tail) {
        f->st = dsp_err_set(&f->err, DSP_ECORRUPT,
                            "shuffle file %s: footer says %u partitions, reader expects %u",
                            o->key, le32_get(footer + 12), r->nparts);
        return;
    }
    if (le64_get(footer + 32) != XXH3_64bits(index, index_size)) {
        f->st = dsp_err_set(&f->err, DSP_ECORRUPT, "shuffle file %s: index checksum mismatch",
                            o->key);
        return;
    }
    uint64_t index_offset = o->size - tail;
    o->start = UINT64_MAX;
    o->end = 0;
    for (uint32_t p = r->p_begin; p < r->p_end; p++) {
        const unsigned char *e = index + (size_t)p * DSP_SHUFFLE_INDEX_ENTRY_SIZE;
        uint64_t off = le64_get(e), size = le64_get(e + 8);
        if (off > index_offset || size > index_offset - off) {
            f->st = dsp_err_set(&f->err, DSP_ECORRUPT,
                                "shuffle file %s: partition %u range out of bounds", o->key, p);
            return;
        }
        if (off < o->start)
            o->start = off;
        if (off + size > o->end)
            o->end = off + size;
        o->records += le64_get(e + 16);
        o->raw += le64_get(e + 24);
    }
    if (o->start > o->end)
        o->start = o->end = 0;
}

static void *pool_main(void *arg)
{
    shuf_pool *pool = arg;
    dsp_log_context_restore(&pool->log_ctx);
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        size_t i = pool->next++;
        pthread_mutex_unlock(&pool->mu);
        if (i >= pool->njobs)
            return NULL;
        shuf_fetch *f = &pool->jobs[i];
        /* Each ranged GET checks the flag, so a cancel waits for at most
         * the GETs already in flight. */
        f->st = reader_check_cancel(pool->r, &f->err);
        if (f->st != DSP_OK)
            continue;
        if (pool->index_phase) {
            fetch_index(pool->r, f);
        } else {
            f->st = dsp_store_get(pool->r->store, pool->r->objs[f->obj].key, f->offset,
                                  (int64_t)f->length, &f->data, NULL, &f->err);
            if (f->st == DSP_OK && f->data.len != f->length)
                f->st = dsp_err_set(&f->err, DSP_ECORRUPT,
                                    "shuffle file %s: short read at byte %llu (%zu of %llu bytes)",
                                    pool->r->objs[f->obj].key, (unsigned long long)f->offset,
                                    f->data.len, (unsigned long long)f->length);
        }
    }
}

/* Run jobs[0..n) on up to r->threads threads; returns the first failure in
 * job order so the error is deterministic. */
static dsp_status pool_run(dsp_shuffle_reader *r, shuf_fetch *jobs, size_t n, int index_phase,
                           dsp_err *err)
{
    shuf_pool pool = {.r = r, .jobs = jobs, .njobs = n, .index_phase = index_phase};
    dsp_log_context_save(&pool.log_ctx);
    pthread_mutex_init(&pool.mu, NULL);
    int nthreads = r->threads < (int)n ? r->threads : (int)n;
    pthread_t tids[64];
    int started = 0;
    for (int t = 1; t < nthreads && t < 64; t++)
        if (pthread_create(&tids[started], NULL, pool_main, &pool) == 0)
            started++;
    pool_main(&pool);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    pthread_mutex_destroy(&pool.mu);
    for (size_t i = 0; i < n; i++)
        if (jobs[i].st != DSP_OK) {
            *err = jobs[i].err;
            return jobs[i].st;
        }
    return DSP_OK;
}

/* Fetch the slices of every object in windows of `threads` ranged GETs,
 * decompress them in object order and feed the sort buffer. */
static dsp_status reader_fetch_all(dsp_shuffle_reader *r, dsp_err *err)
{
    /* Plan: each object's requested partitions are one contiguous byte
     * range, cut into requests of at most max_request bytes. */
    size_t njobs = 0, cap = 0;
    shuf_fetch *jobs = NULL;
    for (size_t i = 0; i < r->nobjs; i++) {
        for (uint64_t off = r->objs[i].start; off < r->objs[i].end; off += r->max_request) {
            if (njobs == cap) {
                cap = cap ? 2 * cap : 64;
                jobs = dsp_xrealloc(jobs, cap * sizeof *jobs);
            }
            shuf_fetch *f = &jobs[njobs++];
            memset(f, 0, sizeof *f);
            f->obj = i;
            f->offset = off;
            uint64_t left = r->objs[i].end - off;
            f->length = left < r->max_request ? left : r->max_request;
        }
    }

    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    dsp_buf carry = DSP_BUF_INIT;
    size_t out_cap = ZSTD_DStreamOutSize();
    char *outbuf = dsp_xmalloc(out_cap);
    dsp_status st = DSP_OK;
    size_t cur_obj = SIZE_MAX;
    size_t last_ret = 0;
    size_t window = (size_t)r->threads;

    for (size_t w0 = 0; w0 < njobs && st == DSP_OK; w0 += window) {
        size_t wn = njobs - w0 < window ? njobs - w0 : window;
        st = pool_run(r, jobs + w0, wn, 0, err);
        for (size_t j = w0; j < w0 + wn && st == DSP_OK; j++) {
            shuf_fetch *f = &jobs[j];
            st = reader_check_cancel(r, err);
            if (st != DSP_OK)
                break;
            r->stats.requests++;
            r->stats.fetched_bytes += f->data.len;
            if (f->obj != cur_obj) {
                if (cur_obj != SIZE_MAX && (last_ret != 0 || carry.len != 0)) {
                    st = dsp_err_set(err, DSP_ECORRUPT,
                                     "shuffle file %s: partition data ends inside a frame or record",
                                     r->objs[cur_obj].key);
                    break;
                }
                ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
                cur_obj = f->obj;
                last_ret = 0;
            }
            ZSTD_inBuffer in = {f->data.data, f->data.len, 0};
            while (in.pos < in.size && st == DSP_OK) {
                ZSTD_outBuffer out = {outbuf, out_cap, 0};
                size_t ret = ZSTD_decompressStream(dctx, &out, &in);
                if (ZSTD_isError(ret)) {
                    st = dsp_err_set(err, DSP_ECORRUPT,
                                     "shuffle file %s: zstd error in slice at byte %llu: %s",
                                     r->objs[f->obj].key, (unsigned long long)f->offset,
                                     ZSTD_getErrorName(ret));
                    break;
                }
                last_ret = ret;
                dsp_buf_append(&carry, outbuf, out.pos);
                st = reader_consume(r, &carry, err);
            }
            /* Drain output the decoder still holds for this input. */
            while (st == DSP_OK && last_ret != 0) {
                ZSTD_outBuffer out = {outbuf, out_cap, 0};
                size_t ret = ZSTD_decompressStream(dctx, &out, &in);
                if (ZSTD_isError(ret) || out.pos == 0)
                    break;
                last_ret = ret;
                dsp_buf_append(&carry, outbuf, out.pos);
                st = reader_consume(r, &carry, err);
            }
            dsp_buf_free(&f->data);
        }
    }
    if (st == DSP_OK && cur_obj != SIZE_MAX && (last_ret != 0 || carry.len != 0))
        st = dsp_err_set(err, DSP_ECORRUPT,
                         "shuffle file %s: partition data ends inside a frame or record",
                         r->objs[cur_obj].key);

    for (size_t j = 0; j < njobs; j++)
        dsp_buf_free(&jobs[j].data);
    free(jobs);
    free(outbuf);
    dsp_buf_free(&carry);
    ZSTD_freeDCtx(dctx);
    return st;
}

/* ---- merge ---- */

/* Load the run's next record into run->cur; returns 1, 0 at the end, -1 on error. */
static int run_advance(dsp_shuffle_reader *r, shuf_run *run, dsp_err *err)
{
    for (;;) {
        size_t avail = run->buf_len - run->buf_off;
        if (avail >= SHUF_REC_HEADER) {
            const unsigned char *p = run->buf + run->buf_off;
            size_t len = SHUF_REC_HEADER + le16_get(p) + (size_t)le32_get(p + 2);
            if (avail >= len) {
                rec_decode(p, &run->cur);
                run->buf_off += len;
                return 1;
            }
            if (len > run->buf_cap) {
                run->buf_cap = len;
                run->buf = dsp_xrealloc(run->buf, run->buf_cap);
            }
        }
        if (run->pos >= run->end) {
            if (avail != 0) {
                dsp_err_set(err, DSP_ECORRUPT, "shuffle spill run ends inside a record");
                return -1;
            }
            return 0;
        }
        memmove(run->buf, run->buf + run->buf_off, avail);
        run->buf_len = avail;
        run->buf_off = 0;
        size_t want = run->buf_cap - avail;
        if (want > run->end - run->pos)
            want = (size_t)(run->end - run->pos);
        if (spill_read(r->spill_fd, run->buf + avail, want, run->pos, err) != DSP_OK)
            return -1;
        run->pos += want;
        run->buf_len += want;
    }
}

static int heap_less(dsp_shuffle_reader *r, size_t a, size_t b)
{
    int c = rec_cmp(&r->runs[a].cur, &r->runs[b].cur);
    return c < 0 || (c == 0 && a < b);
}

static void heap_down(dsp_shuffle_reader *r, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < r->nheap && heap_less(r, r->heap[l], r->heap[m]))
            m = l;
        if (l + 1 < r->nheap && heap_less(r, r->heap[l + 1], r->heap[m]))
            m = l + 1;
        if (m == i)
            return;
        size_t t = r->heap[i];
        r->heap[i] = r->heap[m];
        r->heap[m] = t;
        i = m;
    }
}

static dsp_status reader_start_merge(dsp_shuffle_reader *r, dsp_err *err)
{
    dsp_status st = reader_spill_run(r, err);
    if (st != DSP_OK)
        return st;
    dsp_buf_free(&r->data);
    free(r->entries);
    r->entries = NULL;
    r->cap_entries = 0;
    /* Share the budget between the run buffers, with a floor of one 4 KiB
     * page per run. NOTE: past budget / 4 KiB runs (the data reaching
     * budget^2 / 4 KiB) the buffers exceed the budget, because the merge
     * has one pass. */
    size_t per_run = r->budget / (r->nruns ? r->nruns : 1);
    if (per_run < (4u << 10))
        per_run = 4u << 10;
    if (per_run > (8u << 20))
        per_run = 8u << 20;
    r->heap = dsp_xcalloc(r->nruns, sizeof *r->heap);
    for (size_t i = 0; i < r->nruns; i++) {
        shuf_run *run = &r->runs[i];
        run->buf_cap = per_run;
        run->buf = dsp_xmalloc(per_run);
        int got = run_advance(r, run, err);
        if (got < 0)
            return err->code;
        if (got)
            r->heap[r->nheap++] = i;
    }
    for (size_t i = r->nheap; i-- > 0;)
        heap_down(r, i);
    r->merging = 1;
    return DSP_OK;
}

dsp_status dsp_shuffle_reader_open(dsp_store *store, const char *const *keys,
                                   const uint64_t *sizes, size_t nkeys, uint32_t partitions,
                                   uint32_t p_begin, uint32_t p_end,
                                   const dsp_shuffle_reader_opts *opts,
                                   dsp_shuffle_reader **out, dsp_err *err)
{
    if (partitions == 0 || p_begin > p_end || p_end > partitions)
        return dsp_err_set(err, DSP_EINVAL,
                           "shuffle reader: invalid partition range [%u, %u) of %u partitions",
                           p_begin, p_end, partitions);
    dsp_shuffle_reader *r = dsp_xcalloc(1, sizeof *r);
    r->store = store;
    r->nparts = partitions;
    r->p_begin = p_begin;
    r->p_end = p_end;
    r->budget = opts && opts->memory_budget ? opts->memory_budget : DSP_SHUFFLE_DEFAULT_BUDGET;
    r->max_request = opts && opts->max_request_bytes ? opts->max_request_bytes : (8u << 20);
    r->threads = opts && opts->threads > 0 ? opts->threads : 4;
    if (r->threads > 64)
        r->threads = 64;
    r->tmp_dir = opts && opts->tmp_dir ? dsp_xstrdup(opts->tmp_dir) : NULL;
    r->cancel = opts ? opts->cancel : NULL;
    r->spill_fd = -1;
    r->nobjs = nkeys;
    r->objs = dsp_xcalloc(nkeys ? nkeys : 1, sizeof *r->objs);
    shuf_fetch *idx = dsp_xcalloc(nkeys ? nkeys : 1, sizeof *idx);
    for (size_t i = 0; i < nkeys; i++) {
        r->objs[i].key = keys[i];
        r->objs[i].size = sizes ? sizes[i] : 0;
        idx[i].obj = i;
        r->stats.index_requests += r->objs[i].size ? 1 : 2;
    }

    dsp_status st = DSP_OK;
    if (p_begin < p_end && nkeys > 0) {
        st = pool_run(r, idx, nkeys, 1, err);
        if (st == DSP_OK)
            st = reader_fetch_all(r, err);
        if (st == DSP_OK)
            st = reader_check_cancel(r, err);
        if (st == DSP_OK && r->nruns > 0)
            st = reader_start_merge(r, err);
        if (st == DSP_OK && r->nruns == 0)
            reader_sort(r);
    }
    for (size_t i = 0; i < nkeys; i++)
        dsp_buf_free(&idx[i].data);
    free(idx);
    if (st != DSP_OK) {
        dsp_shuffle_reader_close(r);
        return st;
    }
    DSP_DEBUG("shuffle_read", "objects=%zu partitions=%u-%u records=%llu requests=%llu runs=%llu",
              nkeys, p_begin, p_end, (unsigned long long)r->stats.records,
              (unsigned long long)r->stats.requests, (unsigned long long)r->stats.runs_spilled);
    *out = r;
    return DSP_OK;
}

int dsp_shuffle_reader_next(dsp_shuffle_reader *r, dsp_shuffle_rec *rec, dsp_err *err)
{
    /* One load of a volatile int per record, so reducers that spend their
     * time between records (the caller's writes) stop within one record. */
    if (reader_check_cancel(r, err) != DSP_OK)
        return -1;
    if (!r->merging) {
        if (r->next_entry >= r->nentries)
            return 0;
        rec_decode((const unsigned char *)r->data.data + r->entries[r->next_entry++].offset, rec);
        return 1;
    }
    if (r->nheap == 0)
        return 0;
    size_t top = r->heap[0];
    shuf_run *run = &r->runs[top];
    *rec = run->cur;
    /* Copy the record out because advancing the run may overwrite its buffer. */
    dsp_buf_reset(&r->data);
    dsp_buf_append(&r->data, rec->key, rec->key_len);
    dsp_buf_append(&r->data, rec->value, rec->value_len);
    rec->key = r->data.data;
    rec->value = r->data.data + rec->key_len;
    int got = run_advance(r, run, err);
    if (got < 0)
        return -1;
    if (!got)
        r->heap[0] = r->heap[--r->nheap];
    if (r->nheap > 0)
        heap_down(r, 0);
    return 1;
}

void dsp_shuffle_reader_stats(const dsp_shuffle_reader *r, dsp_shuffle_read_stats *out)
{
    *out = r->stats;
}

void dsp_shuffle_reader_close(dsp_shuffle_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nruns; i++)
        free(r->runs[i].buf);
    free(r->runs);
    free(r->heap);
    if (r->spill_fd >= 0)
        close(r->spill_fd);
    dsp_buf_free(&r->data);
    dsp_buf_free(&r->encoded);
    free(r->entries);
    free(r->objs);
    free(r->tmp_dir);
    free(r);
}

/* ---- local sorter ---- */

dsp_shuffle_reader *dsp_shuffle_sorter_open(const dsp_shuffle_reader_opts *opts)
{
    dsp_shuffle_reader *r = dsp_xcalloc(1, sizeof *r);
    r->nparts = 1;
    r->budget = opts && opts->memory_budget ? opts->memory_budget : DSP_SHUFFLE_DEFAULT_BUDGET;
    r->tmp_dir = opts && opts->tmp_dir ? dsp_xstrdup(opts->tmp_dir) : NULL;
    r->cancel = opts ? opts->cancel : NULL;
    r->spill_fd = -1;
    r->objs = dsp_xcalloc(1, sizeof *r->objs);
    return r;
}

dsp_status dsp_shuffle_sorter_add(dsp_shuffle_reader *r, const void *key, size_t key_len,
                                  const void *value, size_t value_len, dsp_err *err)
{
    if (r->sorter_done)
        return dsp_err_set(err, DSP_EINVAL, "shuffle sorter: record added after finish");
    if (key_len > DSP_SHUFFLE_KEY_MAX || value_len > UINT32_MAX)
        return dsp_err_set(err, DSP_EINVAL,
                           "shuffle sorter: record of %zu+%zu bytes exceeds the key limit of %d",
                           key_len, value_len, DSP_SHUFFLE_KEY_MAX);
    unsigned char header[SHUF_REC_HEADER];
    header[0] = (unsigned char)key_len;
    header[1] = (unsigned char)(key_len >> 8);
    le32_put(header + 2, (uint32_t)value_len);
    dsp_buf_reset(&r->encoded);
    dsp_buf_append(&r->encoded, header, sizeof header);
    dsp_buf_append(&r->encoded, key, key_len);
    if (value_len)
        dsp_buf_append(&r->encoded, value, value_len);
    return reader_add(r, (const unsigned char *)r->encoded.data, r->encoded.len, err);
}

dsp_status dsp_shuffle_sorter_finish(dsp_shuffle_reader *r, dsp_err *err)
{
    if (r->sorter_done)
        return DSP_OK;
    r->sorter_done = 1;
    dsp_buf_free(&r->encoded);
    if (r->nruns > 0)
        return reader_start_merge(r, err);
    reader_sort(r);
    return DSP_OK;
}
