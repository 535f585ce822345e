/*
 * components_driver.c - generates a duplicate graph as MinHash edge files
 * and runs the components stage on it, for bench/components_bench.sh.
 *
 *   components_driver gen STORE_DIR NODES SEED
 *   components_driver run STORE_DIR BUDGET_BYTES NAME
 *
 * gen writes 4 edge files. A tenth of the nodes form one giant component,
 * a random tree plus as many random extra edges. The other nodes form
 * clusters of 2 to 9 documents, each a random tree plus one extra edge.
 * run prints one JSON line with the stage's counters.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "../storage/store.h"
#include "../tasks/dedup.h"

#define FILES 4
#define TASKS 8

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static dsp_shuffle_writer *writers[FILES];
static uint64_t nedges;

static void add_edge(uint64_t a, uint64_t b)
{
    unsigned char key[32], value[8];
    dsp_dedup_order oa = {a % TASKS, a * 4096}, ob = {b % TASKS, b * 4096};
    dsp_dedup_order_encode(oa, key);
    dsp_dedup_order_encode(ob, key + 16);
    for (int k = 0; k < 4; k++) {
        value[k] = (unsigned char)(oa.input >> (24 - 8 * k));
        value[4 + k] = (unsigned char)(ob.input >> (24 - 8 * k));
    }
    dsp_err err;
    if (dsp_shuffle_writer_add(writers[nedges++ % FILES], 0, key, sizeof key, value,
                               sizeof value, &err) != DSP_OK) {
        fprintf(stderr, "components_driver: %s\n", err.msg);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "gen") != 0 && strcmp(argv[1], "run") != 0)) {
        fprintf(stderr, "usage: components_driver gen STORE_DIR NODES SEED\n"
                        "       components_driver run STORE_DIR BUDGET_BYTES NAME\n");
        return 2;
    }
    dsp_store *s;
    dsp_err err;
    if (dsp_store_open(argv[2], NULL, &s, &err) != DSP_OK) {
        fprintf(stderr, "components_driver: %s\n", err.msg);
        return 1;
    }
    char *keys[FILES];
    for (int f = 0; f < FILES; f++)
        keys[f] = dsp_xasprintf("edges-%d.bin", f);
    if (!strcmp(argv[1], "gen")) {
        uint64_t nodes = strtoull(argv[3], NULL, 10), seed = strtoull(argv[4], NULL, 10) | 1;
        for (int f = 0; f < FILES; f++)
            if (dsp_shuffle_writer_open(s, keys[f], 1, NULL, &writers[f], &err) != DSP_OK)
                goto fail;
        uint64_t giant = nodes / 10;
        for (uint64_t i = 1; i < giant; i++)
            add_edge(rng_next(&seed) % i, i);
        for (uint64_t i = 0; i < giant; i++)
            add_edge(rng_next(&seed) % giant, rng_next(&seed) % giant);
        for (uint64_t first = giant; first < nodes;) {
            uint64_t size = 2 + rng_next(&seed) % 8;
            if (first + size > nodes)
                size = nodes - first;
            for (uint64_t k = 1; k < size; k++)
                add_edge(first + rng_next(&seed) % k, first + k);
            if (size > 2)
                add_edge(first, first + size - 1);
            first += size;
        }
        for (int f = 0; f < FILES; f++)
            if (dsp_shuffle_writer_close(writers[f], NULL, &err) != DSP_OK)
                goto fail;
        printf("{\"nodes\": %llu, \"edges\": %llu}\n", (unsigned long long)nodes,
               (unsigned long long)nedges);
    } else {
        dsp_dedup_io_opts io = {.components_budget = strtoull(argv[3], NULL, 10)};
        char *drop = dsp_xasprintf("%s/drops.bin", argv[4]);
        dsp_dedup_stats st;
        if (dsp_dedup_minhash_components(s, (const char *const *)keys, NULL, FILES, drop, TASKS,
                                         NULL, &io, &st, &err) != DSP_OK)
            goto fail;
        printf("{\"edges\": %llu, \"components\": %llu, \"dropped\": %llu, \"rounds\": %llu, "
               "\"runs_spilled\": %llu}\n",
               (unsigned long long)st.edges, (unsigned long long)st.components,
               (unsigned long long)st.dropped, (unsigned long long)st.rounds,
               (unsigned long long)st.runs_spilled);
        free(drop);
    }
    dsp_store_close(s);
    return 0;
fail:
    fprintf(stderr, "components_driver: %s\n", err.msg);
    return 1;
}
