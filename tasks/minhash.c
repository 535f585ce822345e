/*
 * minhash.c - normalisation, shingling and MinHash signatures (see
 * minhash.h for the definitions). Guarantees: the same text, parameters and
 * seed always give the same signature on every x86-64 machine, whether the
 * AVX2 path or the portable path runs. No allocation per document once the
 * scratch buffers have grown to the largest document seen.
 */
#include "minhash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
/* Inline xxHash so the per-word and per-shingle calls on short inputs
 * need no library call; the hash values are the same. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MINHASH_HAVE_AVX2 1
#endif

#include "../core/util.h"

#define MINHASH_DEFAULT_SEED 0x9e3779b97f4a7c15ull

struct dsp_minhash {
    dsp_minhash_scheme scheme;
    int ngram, bands, rows;
    size_t perms, perms_padded; /* padded to a multiple of 8 for AVX2 */
    uint64_t *a_lo, *a_hi, *b;  /* coefficients, a split in 32-bit halves */
    /* The same coefficients in the AVX2 layout, 8 permutations per group g.
     * a_even[4g..4g+3] and b_even contain a_lo and b of permutations 8g,
     * 8g+2, 8g+4 and 8g+6, a_odd and b_odd those of 8g+1, 8g+3, 8g+5 and 8g+7,
     * and a_hi32[8g..8g+7] the a_hi of all eight. */
    uint64_t *a_even, *a_odd, *b_even, *b_odd;
    uint32_t *a_hi32;
    uint64_t seed;
    int simd; /* signature path: 0 portable, 1 AVX2, 2 AVX-512 */
    dsp_buf norm;               /* scratch: normalised text */
    uint64_t *words, *shingles; /* scratch: word and shingle hashes */
    uint32_t *folded;           /* scratch: shingle hashes folded to 32 bits */
    size_t cap_words, cap_shingles;
};

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

dsp_status dsp_minhash_new(const dsp_minhash_params *params, dsp_minhash **out, dsp_err *err)
{
    int ngram = params && params->ngram ? params->ngram : 5;
    int bands = params && params->bands ? params->bands : 14;
    int rows = params && params->rows ? params->rows : 8;
    if (ngram < 1 || ngram > 64)
        return dsp_err_set(err, DSP_EINVAL, "minhash: ngram %d out of range 1..64", ngram);
    if (bands < 1 || rows < 1 || (size_t)bands * (size_t)rows > DSP_MINHASH_MAX_PERMS)
        return dsp_err_set(err, DSP_EINVAL,
                           "minhash: bands %d x rows %d must be positive and at most %d values",
                           bands, rows, DSP_MINHASH_MAX_PERMS);
    dsp_minhash_scheme scheme = params ? params->scheme : DSP_MINHASH_DEFAULT_SCHEME;
    if (scheme == DSP_MINHASH_DEFAULT_SCHEME)
        scheme = DSP_MINHASH_ONE_PERMUTATION;
    if (scheme != DSP_MINHASH_ONE_PERMUTATION && scheme != DSP_MINHASH_K_PERMUTATIONS)
        return dsp_err_set(err, DSP_EINVAL, "minhash: unknown signature scheme %d", (int)scheme);
    dsp_minhash *m = dsp_xcalloc(1, sizeof *m);
    m->scheme = scheme;
    m->ngram = ngram;
    m->bands = bands;
    m->rows = rows;
    m->perms = (size_t)bands * (size_t)rows;
    m->perms_padded = (m->perms + 7) & ~(size_t)7;
    m->seed = params && params->seed ? params->seed : MINHASH_DEFAULT_SEED;
    m->a_lo = aligned_alloc(32, m->perms_padded * sizeof(uint64_t));
    m->a_hi = aligned_alloc(32, m->perms_padded * sizeof(uint64_t));
    m->b = aligned_alloc(32, m->perms_padded * sizeof(uint64_t));
    size_t half = m->perms_padded / 2 * sizeof(uint64_t);
    m->a_even = aligned_alloc(32, half);
    m->a_odd = aligned_alloc(32, half);
    m->b_even = aligned_alloc(32, half);
    m->b_odd = aligned_alloc(32, half);
    m->a_hi32 = aligned_alloc(32, m->perms_padded * sizeof(uint32_t));
    if (!m->a_lo || !m->a_hi || !m->b || !m->a_even || !m->a_odd || !m->b_even || !m->b_odd ||
        !m->a_hi32) {
        dsp_minhash_free(m);
        return dsp_err_set(err, DSP_ENOMEM, "minhash: cannot allocate %zu coefficients",
                           m->perms_padded);
    }
    uint64_t state = m->seed;
    for (size_t i = 0; i < m->perms_padded; i++) {
        uint64_t a = splitmix64(&state);
        m->a_lo[i] = a & 0xffffffffu;
        m->a_hi[i] = a >> 32;
        m->b[i] = splitmix64(&state);
    }
    for (size_t i = 0; i < m->perms_padded; i++) {
        size_t lane = i / 8 * 4 + i % 8 / 2;
        if (i % 2 == 0) {
            m->a_even[lane] = m->a_lo[i];
            m->b_even[lane] = m->b[i];
        } else {
            m->a_odd[lane] = m->a_lo[i];
            m->b_odd[lane] = m->b[i];
        }
        m->a_hi32[i] = (uint32_t)m->a_hi[i];
    }
    dsp_minhash_limit_simd(m, 2);
    *out = m;
    return DSP_OK;
}

void dsp_minhash_free(dsp_minhash *m)
{
    if (!m)
        return;
    free(m->a_lo);
    free(m->a_hi);
    free(m->b);
    free(m->a_even);
    free(m->a_odd);
    free(m->b_even);
    free(m->b_odd);
    free(m->a_hi32);
    dsp_buf_free(&m->norm);
    free(m->words);
    free(m->shingles);
    free(m->folded);
    free(m);
}

size_t dsp_minhash_perms(const dsp_minhash *m)
{
    return m->perms;
}

int dsp_minhash_bands(const dsp_minhash *m)
{
    return m->bands;
}

int dsp_minhash_rows(const dsp_minhash *m)
{
    return m->rows;
}

dsp_minhash_scheme dsp_minhash_get_scheme(const dsp_minhash *m)
{
    return m->scheme;
}

dsp_minhash_scheme dsp_minhash_scheme_parse(const char *name)
{
    if (name && strcmp(name, "one_permutation") == 0)
        return DSP_MINHASH_ONE_PERMUTATION;
    if (name && strcmp(name, "k_permutations") == 0)
        return DSP_MINHASH_K_PERMUTATIONS;
    return DSP_MINHASH_DEFAULT_SCHEME;
}

int dsp_minhash_limit_simd(dsp_minhash *m, int max_level)
{
    int simd = 0;
#ifdef MINHASH_HAVE_AVX2
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        simd = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") ? 2 : 1;
#endif
    if (simd > max_level)
        simd = max_level < 0 ? 0 : max_level;
    m->simd = simd;
    return simd;
}

/* ASCII map: lower-case letter, '0' for digits, 0 for a word separator. */
static unsigned char ascii_map[128];
static int ascii_map_ready;

static void ascii_map_init(void)
{
    if (__atomic_load_n(&ascii_map_ready, __ATOMIC_ACQUIRE))
        return;
    unsigned char map[128] = {0};
    for (int c = 'a'; c <= 'z'; c++)
        map[c] = (unsigned char)c;
    for (int c = 'A'; c <= 'Z'; c++)
        map[c] = (unsigned char)(c - 'A' + 'a');
    for (int c = '0'; c <= '9'; c++)
        map[c] = '0';
    memcpy(ascii_map, map, sizeof map);
    __atomic_store_n(&ascii_map_ready, 1, __ATOMIC_RELEASE);
}

/*
 * Normalised form of every BMP code point, filled lazily from utf8proc:
 * 0 = not looked up yet, 1 = word separator, otherwise the code point to
 * write plus 2. Concurrent fills store the same value, so relaxed atomics
 * suffice. It replaces three utf8proc lookups per code point with one load.
 */
static uint32_t bmp_map[65536];

static uint32_t normalize_lookup(utf8proc_int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return (uint32_t)utf8proc_tolower(cp) + 2;
    case UTF8PROC_CATEGORY_ND:
        return '0' + 2;
    default:
        return 1;
    }
}

/* Decode a 2- or 3-byte UTF-8 sequence at s (n bytes left) with the same
 * validity rules as utf8proc_iterate (no overlongs, no surrogates). Returns
 * its length, or 0 for anything else (4-byte or invalid). */
static size_t decode_bmp(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c >= 0xc2 && c <= 0xdf && n >= 2 && (s[1] & 0xc0) == 0x80) {
        *cp = (uint32_t)(c & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef && n >= 3 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
            return 0;
        *cp = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        return 3;
    }
    return 0;
}

/*
 * State of the normaliser between bytes, shared by the scalar and the
 * vector paths. in_word is 1 when the last input byte was part of a word.
 * tail_word is 1 when the last output byte is part of a word, so the next
 * word needs a space before it. Only the AVX-512 path writes a space after
 * a word, and the end of dsp_text_normalize drops a final one.
 */
typedef struct {
    int in_word, tail_word;
} normalize_state;

#ifdef MINHASH_HAVE_AVX2
/* 0 = scalar only, 1 = AVX2, 2 = AVX2 and AVX-512 VBMI2; -1 = not probed. */
static int normalize_simd = -1;

/*
 * Normalise 32 ASCII bytes at s into *dst: letters to lower case, digits to
 * '0', everything else a separator, with the same output as the scalar
 * loop. Returns 0 without writing when a byte is not ASCII. Each run of
 * word bytes is copied with one 32-byte store, so dst needs 32 bytes of
 * room beyond the normalised output.
 */
__attribute__((target("avx2,bmi"))) static int normalize_chunk_avx2(const unsigned char *s,
                                                                      unsigned char **dst,
                                                                      normalize_state *st)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)s);
    if (_mm256_movemask_epi8(v) != 0)
        return 0;
    __m256i lower = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
    __m256i letter = _mm256_and_si256(_mm256_cmpgt_epi8(lower, _mm256_set1_epi8('a' - 1)),
                                      _mm256_cmpgt_epi8(_mm256_set1_epi8('z' + 1), lower));
    __m256i digit = _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('0' - 1)),
                                     _mm256_cmpgt_epi8(_mm256_set1_epi8('9' + 1), v));
    __m256i mapped = _mm256_blendv_epi8(lower, _mm256_set1_epi8('0'), digit);
    uint32_t mask = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(letter, digit));
    unsigned char tmp[64];
    _mm256_storeu_si256((__m256i *)tmp, mapped);
    _mm256_storeu_si256((__m256i *)(tmp + 32), _mm256_setzero_si256());
    unsigned char *d = *dst;
    int in = st->in_word, tail = st->tail_word;
    uint64_t word = mask;
    while (word) {
        unsigned begin = (unsigned)__builtin_ctzll(word);
        /* word >> begin has ones up to the run's end and zeros from bit 32. */
        unsigned run = (unsigned)__builtin_ctzll(~(word >> begin));
        if ((begin > 0 || !in) && tail)
            *d++ = ' ';
        _mm256_storeu_si256((__m256i *)d, _mm256_loadu_si256((const __m256i *)(tmp + begin)));
        d += run;
        in = 0;
        tail = 1;
        word &= ~(((1ull << run) - 1) << begin);
    }
    /* The next chunk continues a word only when this one ends in a word. */
    st->in_word = (int)(mask >> 31);
    st->tail_word = tail;
    *dst = d;
    return 1;
}

/*
 * The same for the ASCII bytes of a 64-byte window, up to its first
 * non-ASCII byte, without a loop over words: every word byte is kept, and
 * so is the first separator after a word, written as a space. One compress
 * instruction packs the kept bytes and one 64-byte store writes them, so
 * dst needs 64 bytes of room beyond the output. Returns the number of
 * bytes consumed, 0 when the first byte is not ASCII.
 */
__attribute__((target("avx512f,avx512bw,avx512vbmi2,popcnt,bmi"))) static unsigned
normalize_chunk_avx512(const unsigned char *s, unsigned char **dst, normalize_state *st)
{
    __m512i v = _mm512_loadu_si512((const void *)s);
    uint64_t high = _mm512_movepi8_mask(v);
    unsigned n = high ? (unsigned)__builtin_ctzll(high) : 64;
    if (n == 0)
        return 0;
    uint64_t valid = n == 64 ? ~0ull : (1ull << n) - 1;
    __m512i lower = _mm512_or_si512(v, _mm512_set1_epi8(0x20));
    __mmask64 letter = _mm512_cmp_epu8_mask(lower, _mm512_set1_epi8('a'), _MM_CMPINT_NLT) &
                       _mm512_cmp_epu8_mask(lower, _mm512_set1_epi8('z'), _MM_CMPINT_LE);
    __mmask64 digit = _mm512_cmp_epu8_mask(v, _mm512_set1_epi8('0'), _MM_CMPINT_NLT) &
                      _mm512_cmp_epu8_mask(v, _mm512_set1_epi8('9'), _MM_CMPINT_LE);
    __mmask64 word = (letter | digit) & valid;
    unsigned char *d = *dst;
    if (!st->in_word && st->tail_word && word) {
        /* A separator ended the last word before this chunk. */
        *d++ = ' ';
        st->tail_word = 0;
    }
    __mmask64 after_word = (word << 1) | (uint64_t)st->in_word;
    __mmask64 keep = (word | after_word) & valid;
    __m512i mapped = _mm512_mask_blend_epi8(digit, lower, _mm512_set1_epi8('0'));
    mapped = _mm512_mask_blend_epi8(word, _mm512_set1_epi8(' '), mapped);
    _mm512_storeu_si512((void *)d, _mm512_maskz_compress_epi8(keep, mapped));
    d += __builtin_popcountll(keep);
    int last_word = (int)((word >> (n - 1)) & 1);
    if (keep)
        st->tail_word = last_word;
    st->in_word = last_word;
    *dst = d;
    return n;
}
#endif

#ifdef MINHASH_HAVE_AVX2
/* The widest vector path this CPU runs: 0, 1 or 2 as in normalize_simd. */
static int normalize_simd_probe(void)
{
    __builtin_cpu_init();
    int simd = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi");
    if (simd && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vbmi2"))
        simd = 2;
    return simd;
}
#endif

int dsp_text_normalize_limit_simd(int max_level)
{
#ifdef MINHASH_HAVE_AVX2
    int simd = normalize_simd_probe();
    if (simd > max_level)
        simd = max_level < 0 ? 0 : max_level;
    __atomic_store_n(&normalize_simd, simd, __ATOMIC_RELAXED);
    return simd;
#else
    (void)max_level;
    return 0;
#endif
}

void dsp_text_normalize(const char *text, size_t len, dsp_buf *out)
{
    ascii_map_init();
#ifdef MINHASH_HAVE_AVX2
    int simd = __atomic_load_n(&normalize_simd, __ATOMIC_RELAXED);
    if (simd < 0) {
        simd = normalize_simd_probe();
        __atomic_store_n(&normalize_simd, simd, __ATOMIC_RELAXED);
    }
#endif
    /* Lower-casing can grow a code point from 2 to 3 UTF-8 bytes (for
     * example U+023A -> U+2C65), so 3/2 of the input always fits; the
     * 64-byte stores of the vector paths need 64 more. */
    dsp_buf_reserve(out, len + len / 2 + 4 + 64);
    unsigned char *dst = (unsigned char *)out->data + out->len;
    unsigned char *const start = dst;
    const unsigned char *s = (const unsigned char *)text;
    normalize_state st = {0, 0};
    size_t i = 0;
    while (i < len) {
#ifdef MINHASH_HAVE_AVX2
        if (simd == 2 && len - i >= 64) {
            unsigned done = normalize_chunk_avx512(s + i, &dst, &st);
            i += done;
            if (done > 0)
                continue;
        }
        if (simd && len - i >= 32 && normalize_chunk_avx2(s + i, &dst, &st)) {
            i += 32;
            continue;
        }
#endif
        /* ASCII bytes without branches per byte: both stores always happen
         * and the output pointer advances only past what is kept. A space
         * goes before a word when the output ends in a word. At most 32
         * bytes go this way before a vector path is tried again. */
        size_t ascii_end = len - i > 32 ? i + 32 : len;
        while (i < ascii_end && s[i] < 0x80) {
            unsigned char mapped = ascii_map[s[i++]];
            int letter = mapped != 0;
            *dst = ' ';
            dst += letter & !st.in_word & st.tail_word;
            *dst = mapped;
            dst += letter;
            st.in_word = letter;
            st.tail_word |= letter;
        }
        if (i >= len || s[i] < 0x80)
            continue;
        uint32_t bmp, mapped;
        size_t n = decode_bmp(s + i, len - i, &bmp);
        if (n > 0) {
            mapped = __atomic_load_n(&bmp_map[bmp], __ATOMIC_RELAXED);
            if (mapped == 0) {
                mapped = normalize_lookup((utf8proc_int32_t)bmp);
                __atomic_store_n(&bmp_map[bmp], mapped, __ATOMIC_RELAXED);
            }
        } else {
            utf8proc_int32_t cp;
            utf8proc_ssize_t got = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
            if (got <= 0) {
                /* Invalid UTF-8 byte: treat it as a separator. */
                i++;
                st.in_word = 0;
                continue;
            }
            n = (size_t)got;
            mapped = normalize_lookup(cp);
        }
        i += n;
        if (mapped == 1) {
            st.in_word = 0;
            continue;
        }
        if (!st.in_word && st.tail_word)
            *dst++ = ' ';
        st.in_word = 1;
        st.tail_word = 1;
        dst += utf8proc_encode_char((utf8proc_int32_t)(mapped - 2), dst);
    }
    if (dst > start && dst[-1] == ' ')
        dst--;
    out->len += (size_t)(dst - start);
    out->data[out->len] = '\0';
}

/* Bit i is set when p[i] is a space, for i < 64. */
static uint64_t space_mask64(const unsigned char *p)
{
    uint64_t mask = 0;
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(' ');
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        mask |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, space)) << (16 * k);
    }
#else
    for (int i = 0; i < 64; i++)
        mask |= (uint64_t)(p[i] == ' ') << i;
#endif
    return mask;
}

static void words_reserve(dsp_minhash *m, size_t n)
{
    if (n <= m->cap_words)
        return;
    m->cap_words = n > 2 * m->cap_words ? n : 2 * m->cap_words;
    m->words = dsp_xrealloc(m->words, m->cap_words * sizeof *m->words);
}

/*
 * Hash every space-separated word of m->norm into m->words and return the
 * count. Spaces are found 64 bytes at a time, because normalised words are
 * short and a memchr call per word cost more than the search itself.
 */
static size_t hash_words(dsp_minhash *m)
{
    size_t len = m->norm.len;
    dsp_buf_reserve(&m->norm, 64); /* the last window reads up to 63 bytes past len */
    const unsigned char *text = (const unsigned char *)m->norm.data;
    /* Normalised text has one space between words, so len / 2 + 1 words
     * at most, and the loop below grows the array only for other input. */
    words_reserve(m, len / 2 + 1);
    size_t nwords = 0, word_start = 0;
    for (size_t base = 0; base < len; base += 64) {
        uint64_t spaces = space_mask64(text + base);
        if (len - base < 64)
            spaces &= ((uint64_t)1 << (len - base)) - 1;
        for (; spaces; spaces &= spaces - 1) {
            size_t pos = base + (size_t)__builtin_ctzll(spaces);
            if (nwords == m->cap_words)
                words_reserve(m, nwords + 1);
            m->words[nwords++] = XXH3_64bits(text + word_start, pos - word_start);
            word_start = pos + 1;
        }
    }
    if (word_start < len) {
        if (nwords == m->cap_words)
            words_reserve(m, nwords + 1);
        m->words[nwords++] = XXH3_64bits(text + word_start, len - word_start);
    }
    return nwords;
}

#define SHINGLE_PRIME 0x9e3779b185ebca87ull /* xxHash's PRIME64_1, odd */
#define FMIX_C1 0xff51afd7ed558ccdull         /* MurmurHash3's fmix64 constants */
#define FMIX_C2 0xc4ceb9fe1a85ec53ull

uint64_t dsp_minhash_shingle_hash(const uint64_t *words, size_t span)
{
    uint64_t h = (uint64_t)span;
    for (size_t j = 0; j < span; j++)
        h = (h ^ words[j]) * SHINGLE_PRIME;
    h ^= h >> 33;
    h *= FMIX_C1;
    h ^= h >> 33;
    h *= FMIX_C2;
    h ^= h >> 33;
    return h;
}

#ifdef MINHASH_HAVE_AVX2
/* dsp_minhash_shingle_hash for eight shingles per vector; returns how many
 * of the first n shingles it hashed (a multiple of 8). */
__attribute__((target("avx512f,avx512dq"))) static size_t
shingles_avx512(const uint64_t *words, size_t span, size_t n, uint64_t *out)
{
    const __m512i prime = _mm512_set1_epi64((long long)SHINGLE_PRIME);
    const __m512i c1 = _mm512_set1_epi64((long long)FMIX_C1);
    const __m512i c2 = _mm512_set1_epi64((long long)FMIX_C2);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512i h = _mm512_set1_epi64((long long)span);
        for (size_t j = 0; j < span; j++) {
            __m512i w = _mm512_loadu_si512((const void *)(words + i + j));
            h = _mm512_mullo_epi64(_mm512_xor_si512(h, w), prime);
        }
        h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 33));
        h = _mm512_mullo_epi64(h, c1);
        h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 33));
        h = _mm512_mullo_epi64(h, c2);
        h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 33));
        _mm512_storeu_si512((void *)(out + i), h);
    }
    return i;
}
#endif

size_t dsp_minhash_shingles(dsp_minhash *m, const char *text, size_t len,
                            const uint64_t **hashes)
{
    dsp_buf_reset(&m->norm);
    dsp_text_normalize(text, len, &m->norm);

    size_t nwords = hash_words(m);

    size_t k = (size_t)m->ngram;
    size_t nsh = 0;
    if (nwords >= k)
        nsh = nwords - k + 1;
    else if (nwords > 0)
        nsh = 1;
    if (nsh > m->cap_shingles) {
        m->cap_shingles = nsh > 2 * m->cap_shingles ? nsh : 2 * m->cap_shingles;
        m->shingles = dsp_xrealloc(m->shingles, m->cap_shingles * sizeof *m->shingles);
        m->folded = dsp_xrealloc(m->folded, m->cap_shingles * sizeof *m->folded);
    }
    size_t span = nwords < k ? nwords : k;
    size_t done = 0;
#ifdef MINHASH_HAVE_AVX2
    if (m->simd == 2)
        done = shingles_avx512(m->words, span, nsh, m->shingles);
#endif
    for (size_t i = done; i < nsh; i++)
        m->shingles[i] = dsp_minhash_shingle_hash(&m->words[i], span);
    *hashes = m->shingles;
    return nsh;
}

static inline uint32_t fold32(uint64_t x)
{
    return (uint32_t)(x ^ (x >> 32));
}

static void signature_portable(const dsp_minhash *m, const uint64_t *sh, size_t n, uint32_t *sig)
{
    for (size_t i = 0; i < m->perms; i++)
        sig[i] = UINT32_MAX;
    for (size_t s = 0; s < n; s++) {
        uint64_t x = fold32(sh[s]);
        for (size_t i = 0; i < m->perms; i++) {
            uint64_t a = m->a_lo[i] | (m->a_hi[i] << 32);
            uint32_t h = (uint32_t)((a * x + m->b[i]) >> 32);
            if (h < sig[i])
                sig[i] = h;
        }
    }
}

#ifdef MINHASH_HAVE_AVX2
/*
 * Eight permutations per vector, one group at a time from first_group on,
 * each over all shingles, so the accumulator and the coefficients stay in
 * registers. For 32-bit x,
 * ((a*x + b) mod 2^64) >> 32 = (((a_lo*x + b) mod 2^64) >> 32) + a_hi*x
 * modulo 2^32, because a_hi*x*2^32 changes only the upper half. The first
 * term comes from two 32x32->64 multiplies (even and odd permutations), the
 * second from one 32-bit multiply of all eight lanes.
 */
__attribute__((target("avx2"))) static void signature_avx2(const dsp_minhash *m,
                                                           const uint32_t *x, size_t n,
                                                           size_t first_group, uint32_t *out)
{
    size_t groups = m->perms_padded / 8;
    for (size_t g = first_group; g < groups; g++) {
        __m256i ae = _mm256_load_si256((const __m256i *)(m->a_even + 4 * g));
        __m256i ao = _mm256_load_si256((const __m256i *)(m->a_odd + 4 * g));
        __m256i be = _mm256_load_si256((const __m256i *)(m->b_even + 4 * g));
        __m256i bo = _mm256_load_si256((const __m256i *)(m->b_odd + 4 * g));
        __m256i ah = _mm256_load_si256((const __m256i *)(m->a_hi32 + 8 * g));
        __m256i acc = _mm256_set1_epi32(-1);
        for (size_t s = 0; s < n; s++) {
            /* mul_epu32 reads the even 32-bit lanes, so one broadcast serves
             * both multiplies. */
            __m256i xv = _mm256_set1_epi32((int)x[s]);
            __m256i even = _mm256_add_epi64(_mm256_mul_epu32(ae, xv), be);
            __m256i odd = _mm256_add_epi64(_mm256_mul_epu32(ao, xv), bo);
            __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xaa);
            __m256i h = _mm256_add_epi32(high, _mm256_mullo_epi32(ah, xv));
            acc = _mm256_min_epu32(acc, h);
        }
        _mm256_storeu_si256((__m256i *)(out + 8 * g), acc);
    }
}

/*
 * The AVX2 computation on sixteen permutations per vector. The AVX2 groups
 * 2G and 2G + 1 are adjacent in every coefficient array, so one 512-bit
 * load reads both, and lane i of the result is permutation 16G + i.
 * Returns the number of 8-permutation groups done; the AVX2 path does the
 * rest (at most one group).
 */
__attribute__((target("avx512f"))) static size_t signature_avx512(const dsp_minhash *m,
                                                                  const uint32_t *x, size_t n,
                                                                  uint32_t *out)
{
    size_t groups16 = m->perms_padded / 16;
    for (size_t g = 0; g < groups16; g++) {
        __m512i ae = _mm512_loadu_si512((const void *)(m->a_even + 8 * g));
        __m512i ao = _mm512_loadu_si512((const void *)(m->a_odd + 8 * g));
        __m512i be = _mm512_loadu_si512((const void *)(m->b_even + 8 * g));
        __m512i bo = _mm512_loadu_si512((const void *)(m->b_odd + 8 * g));
        __m512i ah = _mm512_loadu_si512((const void *)(m->a_hi32 + 16 * g));
        __m512i acc = _mm512_set1_epi32(-1);
        for (size_t s = 0; s < n; s++) {
            __m512i xv = _mm512_set1_epi32((int)x[s]);
            __m512i even = _mm512_add_epi64(_mm512_mul_epu32(ae, xv), be);
            __m512i odd = _mm512_add_epi64(_mm512_mul_epu32(ao, xv), bo);
            /* Lane 2j takes the upper half of even product j (its halves
             * swapped in), lane 2j + 1 keeps that of odd product j. */
            __m512i high = _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_CDAB);
            __m512i h = _mm512_add_epi32(high, _mm512_mullo_epi32(ah, xv));
            acc = _mm512_min_epu32(acc, h);
        }
        _mm512_storeu_si512((void *)(out + 16 * g), acc);
    }
    return 2 * groups16;
}
#endif

/* Bin j of a densification probe sequence for empty bin `bin` at
 * attempt t (t >= 1), uniform over the k bins. It depends on the seed,
 * the bin and t only, never on the document. */
static size_t densify_probe(uint64_t seed, size_t bin, uint64_t t, size_t k)
{
    uint64_t z = seed ^ ((uint64_t)bin << 32 | (t & 0xffffffffu));
    z = splitmix64(&z);
    return (size_t)(((z >> 32) * (uint64_t)k) >> 32);
}

/* One permutation hashing with optimal densification, as minhash.h
 * describes; n >= 1. */
static void signature_one_permutation(const dsp_minhash *m, const uint64_t *sh, size_t n,
                                      uint32_t *sig)
{
    size_t k = m->perms;
    uint64_t filled[DSP_MINHASH_MAX_PERMS / 64] = {0};
    for (size_t i = 0; i < k; i++)
        sig[i] = UINT32_MAX;
    for (size_t s = 0; s < n; s++) {
        uint64_t h = sh[s];
        size_t bin = (size_t)(((h >> 32) * (uint64_t)k) >> 32);
        uint32_t value = (uint32_t)h;
        if (value < sig[bin])
            sig[bin] = value;
        filled[bin / 64] |= 1ull << (bin % 64);
    }
    for (size_t i = 0; i < k; i++) {
        if (filled[i / 64] >> (i % 64) & 1)
            continue;
        /* At least one bin is filled, so each attempt succeeds with
         * probability at least 1/k. The linear scan after 64 k failed
         * attempts (probability below e^-64) only bounds the loop. */
        size_t j = i;
        for (uint64_t t = 1; t <= 64 * (uint64_t)k; t++) {
            j = densify_probe(m->seed, i, t, k);
            if (filled[j / 64] >> (j % 64) & 1)
                break;
        }
        while (!(filled[j / 64] >> (j % 64) & 1))
            j = (j + 1) % k;
        sig[i] = sig[j];
    }
}

size_t dsp_minhash_signature(dsp_minhash *m, const char *text, size_t len, uint32_t *sig)
{
    const uint64_t *sh;
    size_t n = dsp_minhash_shingles(m, text, len, &sh);
    if (n == 0)
        return 0;
    if (m->scheme == DSP_MINHASH_ONE_PERMUTATION) {
        signature_one_permutation(m, sh, n, sig);
        return n;
    }
#ifdef MINHASH_HAVE_AVX2
    if (m->simd > 0) {
        uint32_t out[DSP_MINHASH_MAX_PERMS];
        for (size_t i = 0; i < n; i++)
            m->folded[i] = fold32(sh[i]);
        size_t done = m->simd == 2 ? signature_avx512(m, m->folded, n, out) : 0;
        signature_avx2(m, m->folded, n, done, out);
        memcpy(sig, out, m->perms * sizeof *sig);
        return n;
    }
#endif
    signature_portable(m, sh, n, sig);
    return n;
}

uint64_t dsp_minhash_band_hash(const dsp_minhash *m, const uint32_t *sig, int band)
{
    return XXH3_64bits_withSeed(sig + (size_t)band * (size_t)m->rows,
                                (size_t)m->rows * sizeof(uint32_t), m->seed + (uint64_t)band);
}

double dsp_minhash_similarity(const uint32_t *a, const uint32_t *b, size_t perms)
{
    if (perms == 0)
        return 0.0;
    size_t same = 0;
    for (size_t i = 0; i < perms; i++)
        same += a[i] == b[i];
    return (double)same / (double)perms;
}

size_t dsp_minhash_sketch_bytes(size_t perms, int bits)
{
    return (perms * (size_t)bits + 7) / 8;
}

void dsp_minhash_sketch(const uint32_t *sig, size_t perms, int bits, unsigned char *out)
{
    memset(out, 0, dsp_minhash_sketch_bytes(perms, bits));
    for (size_t i = 0; i < perms; i++) {
        /* The top bits of an odd multiple: a bijection of 32-bit values, so
         * bits = 32 keeps every value apart. */
        uint32_t field = (uint32_t)(sig[i] * 0x9e3779b1u) >> (32 - bits);
        size_t bit = i * (size_t)bits;
        for (int k = 0; k < bits; k += 8) {
            size_t byte = (bit + (size_t)k) / 8;
            out[byte] |= (unsigned char)((field >> k) << (bit % 8));
        }
    }
}

/* Number of nonzero bits-wide fields in z (bits divides 64). Folding ORs
 * each field's bits into its lowest bit without crossing into the field
 * below, because the shifts add up to bits - 1. */
static int sketch_nonzero_fields(uint64_t z, int bits)
{
    static const uint64_t low_bit[33] = {
        [1] = ~0ull, [2] = 0x5555555555555555ull, [4] = 0x1111111111111111ull,
        [8] = 0x0101010101010101ull, [16] = 0x0001000100010001ull, [32] = 0x0000000100000001ull,
    };
    for (int s = 1; s < bits; s <<= 1)
        z |= z >> s;
    return __builtin_popcountll(z & low_bit[bits]);
}

double dsp_minhash_sketch_similarity(const unsigned char *a, const unsigned char *b, size_t perms,
                                     int bits)
{
    if (perms == 0)
        return 0.0;
    size_t n = dsp_minhash_sketch_bytes(perms, bits), differ = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        differ += (size_t)sketch_nonzero_fields(x ^ y, bits);
    }
    if (i < n) {
        uint64_t x = 0, y = 0;
        memcpy(&x, a + i, n - i);
        memcpy(&y, b + i, n - i);
        differ += (size_t)sketch_nonzero_fields(x ^ y, bits);
    }
    double p = 1.0 - (double)differ / (double)perms;
    double chance = ldexp(1.0, -bits);
    double j = (p - chance) / (1.0 - chance);
    return j > 0 ? j : 0.0;
}
