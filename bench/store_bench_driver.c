/*
 * store_bench_driver.c - many small objects through one store handle, for
 * bench/store_bench.sh (which builds and runs it).
 *
 *   store_bench_driver put URI PREFIX COUNT SIZE THREADS
 *   store_bench_driver get URI PREFIX COUNT THREADS
 *
 * THREADS threads share one dsp_store, so the run also exercises the S3
 * backend's shared connection cache. Prints "seconds=S objects=N" and exits
 * non-zero on the first failed request.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "storage/store.h"

typedef struct {
    dsp_store *store;
    const char *prefix;
    long count;
    size_t size;
    int put;
    _Atomic long next;
    _Atomic int failed;
} bench_job;

static void *bench_worker(void *arg)
{
    bench_job *job = arg;
    char key[512];
    char *data = dsp_xmalloc(job->size ? job->size : 1);
    dsp_buf body = DSP_BUF_INIT;
    dsp_err err;

    memset(data, 'x', job->size);
    for (;;) {
        long i = atomic_fetch_add(&job->next, 1);
        if (i >= job->count || atomic_load(&job->failed))
            break;
        snprintf(key, sizeof key, "%s/obj-%06ld", job->prefix, i);
        dsp_status st = job->put ? dsp_store_put(job->store, key, data, job->size, NULL, NULL, &err)
                                 : dsp_store_get(job->store, key, 0, -1, &body, NULL, &err);
        if (st != DSP_OK) {
            fprintf(stderr, "store_bench_driver: %s\n", err.msg);
            atomic_store(&job->failed, 1);
            break;
        }
    }
    dsp_buf_free(&body);
    free(data);
    return NULL;
}

int main(int argc, char **argv)
{
    int put = argc == 7 && strcmp(argv[1], "put") == 0;
    int get = argc == 6 && strcmp(argv[1], "get") == 0;
    if (!put && !get) {
        fprintf(stderr, "usage: store_bench_driver put URI PREFIX COUNT SIZE THREADS\n"
                        "       store_bench_driver get URI PREFIX COUNT THREADS\n");
        return 2;
    }
    int threads = atoi(argv[put ? 6 : 5]);
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "store_bench_driver: THREADS must be 1..256, got %s\n", argv[put ? 6 : 5]);
        return 2;
    }

    dsp_store *store = NULL;
    dsp_err err;
    if (dsp_store_open(argv[2], NULL, &store, &err) != DSP_OK) {
        fprintf(stderr, "store_bench_driver: %s\n", err.msg);
        return 1;
    }
    bench_job job = {store, argv[3], atol(argv[4]), put ? (size_t)atol(argv[5]) : 0, put, 0, 0};
    pthread_t *tids = dsp_xcalloc((size_t)threads, sizeof *tids);

    int64_t t0 = dsp_mono_ms();
    for (int i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, bench_worker, &job);
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    int64_t ms = dsp_mono_ms() - t0;

    free(tids);
    dsp_store_close(store);
    if (atomic_load(&job.failed))
        return 1;
    printf("seconds=%.3f objects=%ld\n", (double)ms / 1000.0, job.count);
    return 0;
}
