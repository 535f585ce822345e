/*
 * unionfind.h - disjoint sets over 128-bit keys, for connected components
 * of duplicate edges.
 *
 * Nodes are created on first sight of their key and numbered from 0 in
 * creation order. A union links the root with the larger key (compared as
 * (hi, lo)) under the one with the smaller key, so every root is the node
 * with its component's smallest key, whatever order the edges came in.
 * Path halving keeps finds short.
 *
 * Memory: 24 bytes per node in an array that grows by doubling, plus a
 * hash index of 4-byte slots kept at most half full. dsp_uf_set_limit caps
 * the bytes the table may hold, counting the old and new arrays while one
 * grows and 4 bytes per node of scratch for the final sort.
 */
#ifndef DSP_UNIONFIND_H
#define DSP_UNIONFIND_H

#include <stddef.h>
#include <stdint.h>

typedef struct dsp_uf dsp_uf;

/* Node index returned by dsp_uf_node when the byte limit is reached. */
#define DSP_UF_FULL UINT32_MAX

dsp_uf *dsp_uf_new(void);
void dsp_uf_free(dsp_uf *uf);
/* Cap the bytes held by uf; 0 (the default) means no cap. */
void dsp_uf_set_limit(dsp_uf *uf, size_t max_bytes);
/* Index of the node with key (hi, lo), created with `tag` when new (the tag
 * of an existing node is kept). Returns DSP_UF_FULL when a new node would
 * take the table past its limit; the table is unchanged then. Aborts on
 * out-of-memory like dsp_xmalloc. */
uint32_t dsp_uf_node(dsp_uf *uf, uint64_t hi, uint64_t lo, uint32_t tag);
/* Root of node's component: the node with the component's smallest key. */
uint32_t dsp_uf_find(dsp_uf *uf, uint32_t node);
void dsp_uf_union(dsp_uf *uf, uint32_t a, uint32_t b);
size_t dsp_uf_count(const dsp_uf *uf);
/* Bytes held by the node array and the hash index. */
size_t dsp_uf_bytes(const dsp_uf *uf);
void dsp_uf_key(const dsp_uf *uf, uint32_t node, uint64_t *hi, uint64_t *lo);
uint32_t dsp_uf_tag(const dsp_uf *uf, uint32_t node);

/*
 * Sort all node indices by key (by_root 0) or by (root key, key) (by_root
 * 1) and return them; the array has dsp_uf_count entries and stays owned
 * by uf until the next call. The array reuses the hash index's memory, so
 * after the first call dsp_uf_node must not be called again.
 */
const uint32_t *dsp_uf_sorted(dsp_uf *uf, int by_root);

#endif
