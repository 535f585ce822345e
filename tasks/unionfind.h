/*
 * unionfind.h - disjoint sets over 128-bit keys, for connected components
 * of duplicate edges.
 *
 * Nodes are created on first sight of their key and numbered from 0 in
 * creation order. Union by size with path halving keeps finds near
 * constant time. Every root also tracks the node with its component's
 * smallest key (compared as (hi, lo)), so the representative is the same
 * whatever order the edges came in.
 * Memory: about 48 bytes per node; nothing per edge.
 */
#ifndef DSP_UNIONFIND_H
#define DSP_UNIONFIND_H

#include <stddef.h>
#include <stdint.h>

typedef struct dsp_uf dsp_uf;

dsp_uf *dsp_uf_new(void);
void dsp_uf_free(dsp_uf *uf);
/* Index of the node with key (hi, lo), created with `tag` when new (the
 * tag of an existing node is kept). Aborts on out-of-memory like dsp_xmalloc. */
uint32_t dsp_uf_node(dsp_uf *uf, uint64_t hi, uint64_t lo, uint32_t tag);
uint32_t dsp_uf_find(dsp_uf *uf, uint32_t node);
void dsp_uf_union(dsp_uf *uf, uint32_t a, uint32_t b);
/* Node with the smallest key in node's component. */
uint32_t dsp_uf_min(dsp_uf *uf, uint32_t node);
size_t dsp_uf_count(const dsp_uf *uf);
void dsp_uf_key(const dsp_uf *uf, uint32_t node, uint64_t *hi, uint64_t *lo);
uint32_t dsp_uf_tag(const dsp_uf *uf, uint32_t node);

#endif
