/*
 * unionfind.c - disjoint sets keyed by 128-bit keys (see unionfind.h).
 * The key index is an open-addressing hash table of node indices with
 * linear probing, kept at most half full. Guarantee: the root of every
 * component is its smallest key, and with a limit set the node array and
 * index never grow past it.
 */
#include "unionfind.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/util.h"

#define UF_EMPTY UINT32_MAX
#define UF_FIRST_CAP 1024
/* Scratch that the final qsort may allocate, per node (glibc merge sort
 * copies the array being sorted). */
#define UF_SORT_SCRATCH sizeof(uint32_t)

typedef struct {
    uint64_t hi, lo;
    uint32_t parent, tag;
} uf_node;

struct dsp_uf {
    uf_node *nodes;
    size_t n, cap;
    uint32_t *slots; /* node index or UF_EMPTY; the sort output after dsp_uf_sorted */
    size_t nslots;   /* power of two */
    size_t limit;    /* max bytes, 0 = none */
    int sorted;      /* dsp_uf_sorted has reused the slots */
};

dsp_uf *dsp_uf_new(void)
{
    dsp_uf *uf = dsp_xcalloc(1, sizeof *uf);
    uf->nslots = UF_FIRST_CAP;
    uf->slots = dsp_xmalloc(uf->nslots * sizeof *uf->slots);
    memset(uf->slots, 0xff, uf->nslots * sizeof *uf->slots);
    return uf;
}

void dsp_uf_free(dsp_uf *uf)
{
    if (!uf)
        return;
    free(uf->nodes);
    free(uf->slots);
    free(uf);
}

void dsp_uf_set_limit(dsp_uf *uf, size_t max_bytes)
{
    uf->limit = max_bytes;
}

size_t dsp_uf_bytes(const dsp_uf *uf)
{
    return uf->cap * sizeof *uf->nodes + uf->nslots * sizeof *uf->slots;
}

static size_t uf_slot_of(uint64_t hi, uint64_t lo, size_t mask)
{
    uint64_t k[2] = {hi, lo};
    return (size_t)XXH3_64bits(k, sizeof k) & mask;
}

static void uf_grow_slots(dsp_uf *uf)
{
    size_t nslots = uf->nslots * 2;
    uint32_t *slots = dsp_xmalloc(nslots * sizeof *slots);
    memset(slots, 0xff, nslots * sizeof *slots);
    for (size_t i = 0; i < uf->n; i++) {
        size_t s = uf_slot_of(uf->nodes[i].hi, uf->nodes[i].lo, nslots - 1);
        while (slots[s] != UF_EMPTY)
            s = (s + 1) & (nslots - 1);
        slots[s] = (uint32_t)i;
    }
    free(uf->slots);
    uf->slots = slots;
    uf->nslots = nslots;
}

/* Whether one more node fits the limit, counting both arrays of a growth
 * at their peak and the sort scratch of every node. */
static int uf_fits_one_more(const dsp_uf *uf)
{
    if (uf->limit == 0)
        return 1;
    size_t n = uf->n + 1;
    size_t cap = uf->cap;
    size_t peak = dsp_uf_bytes(uf);
    if (uf->n == cap) {
        cap = cap ? 2 * cap : UF_FIRST_CAP;
        peak += cap * sizeof(uf_node);
    }
    size_t steady = cap * sizeof(uf_node) + uf->nslots * sizeof(uint32_t);
    if (2 * n > uf->nslots) {
        size_t grown = steady + 2 * uf->nslots * sizeof(uint32_t);
        if (grown > peak)
            peak = grown;
    }
    return peak + n * UF_SORT_SCRATCH <= uf->limit;
}

uint32_t dsp_uf_node(dsp_uf *uf, uint64_t hi, uint64_t lo, uint32_t tag)
{
    if (uf->sorted)
        abort(); /* the hash index is gone: a caller bug */
    size_t mask = uf->nslots - 1;
    size_t s = uf_slot_of(hi, lo, mask);
    while (uf->slots[s] != UF_EMPTY) {
        const uf_node *nd = &uf->nodes[uf->slots[s]];
        if (nd->hi == hi && nd->lo == lo)
            return uf->slots[s];
        s = (s + 1) & mask;
    }
    if (uf->n >= UINT32_MAX - 1)
        abort(); /* 4 billion nodes: far beyond one task's memory anyway */
    if (!uf_fits_one_more(uf))
        return DSP_UF_FULL;
    if (uf->n == uf->cap) {
        uf->cap = uf->cap ? 2 * uf->cap : UF_FIRST_CAP;
        uf->nodes = dsp_xrealloc(uf->nodes, uf->cap * sizeof *uf->nodes);
    }
    uint32_t idx = (uint32_t)uf->n++;
    uf->nodes[idx] = (uf_node){.hi = hi, .lo = lo, .parent = idx, .tag = tag};
    uf->slots[s] = idx;
    if (2 * uf->n > uf->nslots)
        uf_grow_slots(uf);
    return idx;
}

uint32_t dsp_uf_find(dsp_uf *uf, uint32_t node)
{
    uf_node *nodes = uf->nodes;
    while (nodes[node].parent != node) {
        nodes[node].parent = nodes[nodes[node].parent].parent;
        node = nodes[node].parent;
    }
    return node;
}

static int uf_key_cmp(const uf_node *a, const uf_node *b)
{
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return 0;
}

void dsp_uf_union(dsp_uf *uf, uint32_t a, uint32_t b)
{
    uint32_t ra = dsp_uf_find(uf, a), rb = dsp_uf_find(uf, b);
    if (ra == rb)
        return;
    if (uf_key_cmp(&uf->nodes[rb], &uf->nodes[ra]) < 0)
        uf->nodes[ra].parent = rb;
    else
        uf->nodes[rb].parent = ra;
}

size_t dsp_uf_count(const dsp_uf *uf)
{
    return uf->n;
}

void dsp_uf_key(const dsp_uf *uf, uint32_t node, uint64_t *hi, uint64_t *lo)
{
    *hi = uf->nodes[node].hi;
    *lo = uf->nodes[node].lo;
}

uint32_t dsp_uf_tag(const dsp_uf *uf, uint32_t node)
{
    return uf->nodes[node].tag;
}

/* qsort has no context argument in C11, so the comparators find the nodes
 * through a thread-local pointer set around the call. */
static _Thread_local const uf_node *uf_sort_nodes;

static int uf_index_by_key(const void *pa, const void *pb)
{
    const uf_node *a = &uf_sort_nodes[*(const uint32_t *)pa];
    const uf_node *b = &uf_sort_nodes[*(const uint32_t *)pb];
    return uf_key_cmp(a, b);
}

/* Needs every parent to be its root, which dsp_uf_sorted ensures. */
static int uf_index_by_root(const void *pa, const void *pb)
{
    const uf_node *a = &uf_sort_nodes[*(const uint32_t *)pa];
    const uf_node *b = &uf_sort_nodes[*(const uint32_t *)pb];
    int c = uf_key_cmp(&uf_sort_nodes[a->parent], &uf_sort_nodes[b->parent]);
    return c ? c : uf_key_cmp(a, b);
}

const uint32_t *dsp_uf_sorted(dsp_uf *uf, int by_root)
{
    if (!uf->sorted) {
        /* nslots > n because the index is at most half full. */
        for (size_t i = 0; i < uf->n; i++)
            uf->nodes[i].parent = dsp_uf_find(uf, (uint32_t)i);
        uf->sorted = 1;
    }
    for (size_t i = 0; i < uf->n; i++)
        uf->slots[i] = (uint32_t)i;
    uf_sort_nodes = uf->nodes;
    qsort(uf->slots, uf->n, sizeof *uf->slots, by_root ? uf_index_by_root : uf_index_by_key);
    uf_sort_nodes = NULL;
    return uf->slots;
}
