/*
 * zstd_bound.c - the zstd-only cost of a pass-through job: stream-decompress
 * a zstd file and compress the bytes again at one level, with the same
 * streaming calls and frame settings as the shard writer (content checksum
 * on), and discard the output. There is no parsing, hashing or file
 * output, so its CPU time is the zstd work alone: a lower bound for a
 * pass-through job on the same file and level.
 *
 *   zstd_bound FILE.zst LEVEL
 *
 *   zstd_bound -d FILE.zst     decompress only
 *   zstd_bound -c FILE LEVEL   compress a plain file only
 *
 * Prints "cpu_seconds=S raw_bytes=N compressed_bytes=M mb_per_cpu_s=R"
 * (compressed_bytes is 0 with -d). The file is read with fread in both
 * modes, so the three costs add up: bench/dedup_bench.sh sums two -d runs
 * on a job's input and a -c run on its output as the zstd-only cost of a
 * dedup job. bench/pipeline_bench.sh reports the first form next to
 * pass-through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#define IN_BYTES (4u << 20)
#define RAW_BYTES (4u << 20)
#define OUT_BYTES (1u << 20)

static double process_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Compress in with the shard writer's ZSTD_e_continue (or ZSTD_e_end when
 * end is set) calls; adds the compressed size to *total. */
static int compress_chunk(ZSTD_CCtx *cctx, ZSTD_inBuffer *in, char *out, int end, size_t *total)
{
    ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
    for (;;) {
        ZSTD_outBuffer o = {out, OUT_BYTES, 0};
        size_t remaining = ZSTD_compressStream2(cctx, &o, in, mode);
        if (ZSTD_isError(remaining)) {
            fprintf(stderr, "zstd_bound: compression failed: %s\n",
                    ZSTD_getErrorName(remaining));
            return -1;
        }
        *total += o.pos;
        if (end ? remaining == 0 : in->pos == in->size)
            return 0;
    }
}

int main(int argc, char **argv)
{
    int decompress = 1, compress = 1;
    const char *path = NULL, *level = NULL;
    if (argc == 3 && argv[1][0] != '-') {
        path = argv[1];
        level = argv[2];
    } else if (argc == 3 && !strcmp(argv[1], "-d")) {
        compress = 0;
        path = argv[2];
    } else if (argc == 4 && !strcmp(argv[1], "-c")) {
        decompress = 0;
        path = argv[2];
        level = argv[3];
    } else {
        fprintf(stderr, "usage: zstd_bound FILE.zst LEVEL | -d FILE.zst | -c FILE LEVEL\n");
        return 2;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    char *in = malloc(IN_BYTES), *raw = malloc(RAW_BYTES), *out = malloc(OUT_BYTES);
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (!in || !raw || !out || !dctx || !cctx) {
        fprintf(stderr, "zstd_bound: out of memory\n");
        return 1;
    }
    if (compress) {
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, atoi(level));
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    }

    double start = process_cpu_seconds();
    size_t raw_total = 0, compressed_total = 0, n;
    while ((n = fread(in, 1, IN_BYTES, f)) > 0) {
        ZSTD_inBuffer src = {in, n, 0};
        if (!decompress) {
            raw_total += n;
            if (compress_chunk(cctx, &src, out, 0, &compressed_total) != 0)
                return 1;
            continue;
        }
        while (src.pos < src.size) {
            ZSTD_outBuffer dst = {raw, RAW_BYTES, 0};
            size_t ret = ZSTD_decompressStream(dctx, &dst, &src);
            if (ZSTD_isError(ret)) {
                fprintf(stderr, "zstd_bound: %s: decompression failed: %s\n", path,
                        ZSTD_getErrorName(ret));
                return 1;
            }
            raw_total += dst.pos;
            ZSTD_inBuffer chunk = {raw, dst.pos, 0};
            if (compress && compress_chunk(cctx, &chunk, out, 0, &compressed_total) != 0)
                return 1;
        }
    }
    ZSTD_inBuffer none = {NULL, 0, 0};
    if (compress && compress_chunk(cctx, &none, out, 1, &compressed_total) != 0)
        return 1;
    double cpu = process_cpu_seconds() - start;

    printf("cpu_seconds=%.3f raw_bytes=%zu compressed_bytes=%zu mb_per_cpu_s=%.1f\n", cpu,
           raw_total, compressed_total, (double)raw_total / 1e6 / cpu);
    fclose(f);
    ZSTD_freeDCtx(dctx);
    ZSTD_freeCCtx(cctx);
    free(in);
    free(raw);
    free(out);
    return 0;
}
