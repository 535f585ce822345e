/*
 * minhash.h - text normalisation, word n-gram shingles, MinHash signatures
 * and LSH band hashes for near-duplicate detection.
 *
 * Normalisation (also used by exact dedup): Unicode lower case (utf8proc),
 * every decimal digit becomes '0', letters and combining marks are kept,
 * and every other code point (punctuation, symbols, spaces, controls)
 * separates words. The normalised text is the words joined by one space.
 *
 * Shingles are word n-grams (default 5). Each word is hashed with
 * xxh3-64, and a shingle's hash combines its n word hashes w_j as
 * h = n, then h = (h ^ w_j) * P for each word in order (P odd, mod 2^64),
 * then MurmurHash3's fmix64 finalizer (dsp_minhash_shingle_hash). That is
 * a few multiplies per shingle and runs eight shingles per AVX-512
 * vector. A document with fewer than n words has one shingle made of all
 * its words; a document without words has none and gets no signature.
 *
 * Signatures hold K = bands * rows 32-bit values, made by one of two
 * schemes:
 *
 * - One permutation hashing (the default): the upper 32 bits of a shingle
 *   hash pick one of K bins, and the lower 32 bits are its value. Each bin
 *   keeps its minimum, so a document costs one update per shingle.
 *   A bin that no shingle reached copies the value of the first non-empty
 *   bin on a probe sequence that depends only on the bin and the seed
 *   ("optimal densification"). Two documents then probe alike, and each
 *   position matches with probability equal to their Jaccard similarity,
 *   as with K permutations. Sources: Li, Owen and Zhang, "One Permutation
 *   Hashing", NIPS 2012; Shrivastava, "Optimal Densification for Fast and
 *   Accurate Minwise Hashing", ICML 2017.
 *
 * - K permutations: h_i(x) = ((a_i * x32 + b_i) mod 2^64) >> 32, with x32
 *   the shingle hash folded to 32 bits and a_i, b_i random 64-bit values
 *   from a fixed seed. This is Dietzfelbinger's multiply-add-shift family,
 *   which is 2-independent for 32-bit keys, and it needs only 32-bit
 *   multiplies, so the AVX2 path evaluates eight permutations per vector.
 *   Each value is the minimum of one permutation, at K multiplies per
 *   shingle. The AVX2 and the portable path give identical signatures.
 *
 * Signatures of the two schemes are not comparable with each other.
 */
#ifndef DSP_MINHASH_H
#define DSP_MINHASH_H

#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../core/err.h"

#define DSP_MINHASH_MAX_PERMS 1024

typedef enum {
    DSP_MINHASH_DEFAULT_SCHEME = 0, /* one permutation hashing */
    DSP_MINHASH_ONE_PERMUTATION,
    DSP_MINHASH_K_PERMUTATIONS,
} dsp_minhash_scheme;

typedef struct {
    dsp_minhash_scheme scheme;
    int ngram;     /* words per shingle; 0 = 5 */
    int bands;     /* LSH bands; 0 = 14 */
    int rows;      /* signature values per band; 0 = 8 */
    /* Seed of the permutation coefficients (k_permutations) or of the
     * densification probes (one_permutation, whose bins and values come
     * from the shingle hashes alone); 0 = built-in. */
    uint64_t seed;
} dsp_minhash_params;

typedef struct dsp_minhash dsp_minhash;

dsp_status dsp_minhash_new(const dsp_minhash_params *params, dsp_minhash **out, dsp_err *err);
void dsp_minhash_free(dsp_minhash *m);
/* bands * rows, the number of 32-bit values in a signature. */
size_t dsp_minhash_perms(const dsp_minhash *m);
int dsp_minhash_bands(const dsp_minhash *m);
int dsp_minhash_rows(const dsp_minhash *m);

/* Append the normalised text (words joined by one space) to out. */
void dsp_text_normalize(const char *text, size_t len, dsp_buf *out);

/* Limit dsp_text_normalize to the scalar loop (0), AVX2 (1) or AVX-512
 * VBMI2 (2), never above what the CPU runs, for tests of each path.
 * Returns the level now in effect. Not thread-safe against running
 * normalisations. */
int dsp_text_normalize_limit_simd(int max_level);

/*
 * Compute the shingle hashes of text. Returns their number and points
 * *hashes at an array owned by m, valid until the next call on m.
 */
size_t dsp_minhash_shingles(dsp_minhash *m, const char *text, size_t len,
                            const uint64_t **hashes);

/* Compute the signature of text into sig (dsp_minhash_perms values).
 * Returns the number of shingles; 0 means no signature (sig untouched). */
size_t dsp_minhash_signature(dsp_minhash *m, const char *text, size_t len, uint32_t *sig);

/* Hash of band b of a signature (64 bits, seeded by the band index). */
uint64_t dsp_minhash_band_hash(const dsp_minhash *m, const uint32_t *sig, int band);

/* Fraction of equal positions: the MinHash estimate of Jaccard similarity. */
double dsp_minhash_similarity(const uint32_t *a, const uint32_t *b, size_t perms);

/*
 * b-bit sketch of a signature, for checking candidate pairs with fewer bytes
 * than the signature. Each value is reduced to `bits` bits (1, 2, 4, 8, 16
 * or 32) of a multiplicative hash of it, packed from bit 0 of byte 0 on.
 * Two equal values always give equal fields, and two different values give
 * equal fields with probability about 2^-bits.
 */
size_t dsp_minhash_sketch_bytes(size_t perms, int bits);
void dsp_minhash_sketch(const uint32_t *sig, size_t perms, int bits, unsigned char *out);
/* Jaccard estimate from two sketches: the fraction P of equal fields,
 * corrected for chance matches as (P - 2^-bits) / (1 - 2^-bits), at least 0.
 * Fewer bits widen the spread of the estimate: 4 bits on 112 values
 * increase its standard deviation near 0.8 by about 4%. */
double dsp_minhash_sketch_similarity(const unsigned char *a, const unsigned char *b, size_t perms,
                                     int bits);

/* Hash of the shingle made of the span word hashes at words. */
uint64_t dsp_minhash_shingle_hash(const uint64_t *words, size_t span);

/* The scheme a dsp_minhash_new() result uses (never the default value). */
dsp_minhash_scheme dsp_minhash_get_scheme(const dsp_minhash *m);
/* Scheme named by the option value "one_permutation" or "k_permutations";
 * DSP_MINHASH_DEFAULT_SCHEME for any other name. */
dsp_minhash_scheme dsp_minhash_scheme_parse(const char *name);

/* Limit the shingle and signature code to a vector width: 0 portable,
 * 1 AVX2, 2 AVX-512 F and DQ (the default is the widest the CPU runs). Returns the level
 * in use, which is lower when the CPU lacks the instructions. Every level
 * gives the same shingles and signatures, which the unit tests check. */
int dsp_minhash_limit_simd(dsp_minhash *m, int max_level);

#endif
