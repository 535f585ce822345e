/*
 * unionfind.c - disjoint sets keyed by 128-bit keys (see unionfind.h).
 * The key index is an open-addressing hash table of node indices with
 * linear probing, kept at most half full.
 */
#include "unionfind.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../core/util.h"

#define UF_EMPTY UINT32_MAX

typedef struct {
    uint64_t hi, lo;
    uint32_t parent, size, min, tag;
} uf_node;

struct dsp_uf {
    uf_node *nodes;
    size_t n, cap;
    uint32_t *slots; /* node index or UF_EMPTY */
    size_t nslots;   /* power of two */
};

dsp_uf *dsp_uf_new(void)
{
    dsp_uf *uf = dsp_xcalloc(1, sizeof *uf);
    uf->nslots = 1024;
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

uint32_t dsp_uf_node(dsp_uf *uf, uint64_t hi, uint64_t lo, uint32_t tag)
{
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
    if (uf->n == uf->cap) {
        uf->cap = uf->cap ? 2 * uf->cap : 1024;
        uf->nodes = dsp_xrealloc(uf->nodes, uf->cap * sizeof *uf->nodes);
    }
    uint32_t idx = (uint32_t)uf->n++;
    uf->nodes[idx] = (uf_node){.hi = hi, .lo = lo, .parent = idx, .size = 1, .min = idx, .tag = tag};
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

static int uf_key_less(const uf_node *a, const uf_node *b)
{
    return a->hi < b->hi || (a->hi == b->hi && a->lo < b->lo);
}

void dsp_uf_union(dsp_uf *uf, uint32_t a, uint32_t b)
{
    uint32_t ra = dsp_uf_find(uf, a), rb = dsp_uf_find(uf, b);
    if (ra == rb)
        return;
    uf_node *nodes = uf->nodes;
    if (nodes[ra].size < nodes[rb].size) {
        uint32_t t = ra;
        ra = rb;
        rb = t;
    }
    nodes[rb].parent = ra;
    nodes[ra].size += nodes[rb].size;
    if (uf_key_less(&nodes[nodes[rb].min], &nodes[nodes[ra].min]))
        nodes[ra].min = nodes[rb].min;
}

uint32_t dsp_uf_min(dsp_uf *uf, uint32_t node)
{
    return uf->nodes[dsp_uf_find(uf, node)].min;
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
