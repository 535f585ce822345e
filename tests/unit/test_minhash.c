/* Tests of tasks/minhash.c: normalisation, shingles, signature accuracy
 * against exact Jaccard (synthetic edits and real kernel documentation in
 * two versions), and equality of the AVX2 and portable paths. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <zlib.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "../../core/buf.h"
#include "../../tasks/minhash.h"
#include "test.h"

static uint64_t rng_state = 1;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Append n random lower-case words (letters only, so normalisation keeps
 * them as they are) to b. */
static void random_words(dsp_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = 3 + rng_next() % 6;
        if (b->len)
            dsp_buf_append_char(b, ' ');
        for (size_t j = 0; j < len; j++)
            dsp_buf_append_char(b, (char)('a' + rng_next() % 26));
    }
}

static int u64_cmp(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

/* Exact Jaccard similarity of the shingle sets of two texts. */
static double exact_jaccard(dsp_minhash *m, const char *a, const char *b)
{
    const uint64_t *h;
    size_t na = dsp_minhash_shingles(m, a, strlen(a), &h);
    uint64_t *sa = malloc((na + 1) * sizeof *sa);
    memcpy(sa, h, na * sizeof *sa);
    size_t nb = dsp_minhash_shingles(m, b, strlen(b), &h);
    uint64_t *sb = malloc((nb + 1) * sizeof *sb);
    memcpy(sb, h, nb * sizeof *sb);
    qsort(sa, na, sizeof *sa, u64_cmp);
    qsort(sb, nb, sizeof *sb, u64_cmp);
    size_t i = 0, j = 0, inter = 0, uni = 0;
    while (i < na || j < nb) {
        uint64_t x;
        if (j >= nb || (i < na && sa[i] < sb[j]))
            x = sa[i++];
        else if (i >= na || sb[j] < sa[i])
            x = sb[j++];
        else {
            x = sa[i++];
            j++;
            inter++;
        }
        uni++;
        while (i < na && sa[i] == x)
            i++;
        while (j < nb && sb[j] == x)
            j++;
    }
    free(sa);
    free(sb);
    return uni ? (double)inter / (double)uni : 0.0;
}

static const dsp_minhash_scheme schemes[] = {DSP_MINHASH_ONE_PERMUTATION,
                                              DSP_MINHASH_K_PERMUTATIONS};
static const char *const scheme_names[] = {"one_permutation", "k_permutations"};

static dsp_minhash *new_with_scheme(dsp_minhash_scheme scheme)
{
    dsp_minhash_params p = {.scheme = scheme};
    dsp_minhash *m = NULL;
    dsp_err err;
    if (dsp_minhash_new(&p, &m, &err) != DSP_OK) {
        fprintf(stderr, "dsp_minhash_new: %s\n", err.msg);
        abort();
    }
    return m;
}

static double estimate(dsp_minhash *m, const char *a, const char *b)
{
    uint32_t sa[DSP_MINHASH_MAX_PERMS], sb[DSP_MINHASH_MAX_PERMS];
    if (!dsp_minhash_signature(m, a, strlen(a), sa) || !dsp_minhash_signature(m, b, strlen(b), sb))
        return -1;
    return dsp_minhash_similarity(sa, sb, dsp_minhash_perms(m));
}

static void test_normalize_folds_case_digits(void)
{
    dsp_buf out = DSP_BUF_INIT;
    const char *in = "Hello, World! 2024-12-04 \xc3\x9c" "BER\tstra\xc3\x9f" "e \xd0\x9f\xd0\xa0\xd0\x98"
                     "\xd0\x92\xd0\x95\xd0\xa2 \xd9\xa3\xd9\xa4 " "caf\xc3\xa9... end";
    dsp_text_normalize(in, strlen(in), &out);
    CHECK_EQ_STR(out.data, "hello world 0000 00 00 \xc3\xbc" "ber stra\xc3\x9f" "e "
                           "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 00 " "caf\xc3\xa9 end");
    dsp_buf_reset(&out);
    dsp_text_normalize("  ...  ", 7, &out);
    CHECK_EQ_INT(out.len, 0);
    dsp_buf_reset(&out);
    /* An invalid UTF-8 byte separates words instead of failing. */
    dsp_text_normalize("ab\xff" "cd", 5, &out);
    CHECK_EQ_STR(out.data, "ab cd");
    dsp_buf_free(&out);
}

/* Every code point up to U+FFFF, alone between two ASCII words, must
 * normalise exactly as utf8proc's category and lower-case tables define, so
 * the lookup table of the fast path agrees with the slow path. */
static void test_normalize_matches_utf8proc(void)
{
    dsp_buf in = DSP_BUF_INIT, out = DSP_BUF_INIT, want = DSP_BUF_INIT;
    int mismatches = 0;
    for (int32_t cp = 0x80; cp <= 0x10ffff && mismatches < 5; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        if (cp > 0xffff && cp % 97 != 0)
            continue; /* a sample of the supplementary planes */
        unsigned char enc[4];
        utf8proc_ssize_t n = utf8proc_encode_char(cp, enc);
        dsp_buf_reset(&in);
        dsp_buf_append_str(&in, "ab ");
        dsp_buf_append(&in, enc, (size_t)n);
        dsp_buf_append_str(&in, " cd");
        dsp_buf_reset(&out);
        dsp_text_normalize(in.data, in.len, &out);

        dsp_buf_reset(&want);
        dsp_buf_append_str(&want, "ab");
        utf8proc_category_t cat = utf8proc_category(cp);
        int32_t mapped = -1;
        if (cat == UTF8PROC_CATEGORY_ND)
            mapped = '0';
        else if ((cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                 (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME))
            mapped = utf8proc_tolower(cp);
        if (mapped >= 0) {
            unsigned char lower[4];
            utf8proc_ssize_t ln = utf8proc_encode_char(mapped, lower);
            dsp_buf_append_char(&want, ' ');
            dsp_buf_append(&want, lower, (size_t)ln);
        }
        dsp_buf_append_str(&want, " cd");
        if (out.len != want.len || memcmp(out.data, want.data, out.len) != 0) {
            fprintf(stderr, "  U+%04X: got \"%s\", want \"%s\"\n", (unsigned)cp, out.data,
                    want.data);
            mismatches++;
        }
    }
    CHECK_EQ_INT(mismatches, 0);
    dsp_buf_free(&in);
    dsp_buf_free(&out);
    dsp_buf_free(&want);
}

/* Reference normalisation of text made of ASCII, the two-byte letters
 * U+00C9 and U+00E9 (upper and lower e acute) and the em dash U+2014, a
 * separator. */
static void reference_normalize(const char *in, size_t len, dsp_buf *out)
{
    int in_word = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        const char *mapped = NULL;
        char one[2] = {0, 0};
        size_t n = 1;
        if (c == 0xc3) {
            mapped = "\xc3\xa9"; /* both map to lower-case e acute */
            n = 2;
            i++;
        } else if (c == 0xe2) {
            i += 2; /* the em dash separates words */
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            one[0] = c >= '0' && c <= '9' ? '0' : (char)(c | 0x20);
            mapped = one;
        }
        if (!mapped) {
            in_word = 0;
            continue;
        }
        if (!in_word && out->len > 0)
            dsp_buf_append_char(out, ' ');
        dsp_buf_append(out, mapped, n);
        in_word = 1;
    }
}

/* Long texts take the AVX-512 and AVX2 paths where a CPU has them. Words
 * that cross chunks, runs of separators, a word filling a whole chunk and a
 * non-ASCII letter or separator after the ASCII part of a chunk must all
 * come out as the byte-at-a-time reference gives them. */
static void test_normalize_long_texts(void)
{
    static const char *pieces[] = {"Word", "x", "  ", ",", "\t", "2024", "-",
                                   "\xc3\x89t\xc3\xa9", "\xe2\x80\x94",
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop0123456789",
                                   "...", "a", "Zz9"};
    const size_t npieces = sizeof pieces / sizeof pieces[0];
    dsp_buf in = DSP_BUF_INIT, got = DSP_BUF_INIT, want = DSP_BUF_INIT;
    int mismatches = 0;

    /* Each vector path this CPU runs, widest first, then the scalar loop. */
    for (int level = 2; level >= 0; level--) {
        if (dsp_text_normalize_limit_simd(level) != level)
            continue;
        fprintf(stderr, "  vector level %d\n", level);
        rng_state = 4242;
        for (int t = 0; t < 2000 && mismatches < 5; t++) {
            dsp_buf_reset(&in);
            size_t count = rng_next() % 80;
            for (size_t i = 0; i < count; i++)
                dsp_buf_append_str(&in, pieces[rng_next() % npieces]);
            dsp_buf_reset(&got);
            dsp_buf_reset(&want);
            dsp_text_normalize(in.data ? in.data : "", in.len, &got);
            reference_normalize(in.data ? in.data : "", in.len, &want);
            if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0) {
                fprintf(stderr, "  level %d, input \"%.*s\": got \"%s\", want \"%.*s\"\n",
                        level, (int)in.len, in.data, got.data, (int)want.len,
                        want.data ? want.data : "");
                mismatches++;
            }
        }
    }
    dsp_text_normalize_limit_simd(2);
    CHECK_EQ_INT(mismatches, 0);
    dsp_buf_free(&in);
    dsp_buf_free(&got);
    dsp_buf_free(&want);
}

static void test_shingle_counts(void)
{
    dsp_minhash *m;
    dsp_err err;
    REQUIRE(dsp_minhash_new(NULL, &m, &err) == DSP_OK);
    const uint64_t *h;
    CHECK_EQ_INT(dsp_minhash_shingles(m, "", 0, &h), 0);
    CHECK_EQ_INT(dsp_minhash_shingles(m, "!!", 2, &h), 0);
    CHECK_EQ_INT(dsp_minhash_shingles(m, "one two", 7, &h), 1);
    CHECK_EQ_INT(dsp_minhash_shingles(m, "a b c d e", 9, &h), 1);
    CHECK_EQ_INT(dsp_minhash_shingles(m, "a b c d e f g", 13, &h), 3);
    /* Case and punctuation do not change shingles. */
    uint64_t first = 0;
    REQUIRE(dsp_minhash_shingles(m, "A, B. C; D! E", 13, &h) == 1);
    first = h[0];
    REQUIRE(dsp_minhash_shingles(m, "a b c d e", 9, &h) == 1);
    CHECK(first == h[0]);
    uint32_t sig[DSP_MINHASH_MAX_PERMS];
    CHECK_EQ_INT(dsp_minhash_signature(m, "  ", 2, sig), 0);
    CHECK_EQ_INT(dsp_minhash_perms(m), 112);
    dsp_minhash_free(m);
}

/* The hash of the shingle at words[0..span), computed from the definition
 * in minhash.h without the library. */
static uint64_t shingle_hash_by_definition(const uint64_t *words, size_t span)
{
    uint64_t h = span;
    for (size_t j = 0; j < span; j++)
        h = (h ^ words[j]) * 0x9e3779b185ebca87ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* Shingle hashes combine the XXH3-64 hashes of 5 consecutive words of the
 * normalised text as minhash.h defines. Recompute them from that
 * definition, at every vector level, for texts whose words end on and
 * around 64-byte boundaries and whose shingle counts are and are not
 * multiples of 8. */
static void test_shingles_match_definition(void)
{
    dsp_minhash *m;
    dsp_err err;
    REQUIRE(dsp_minhash_new(NULL, &m, &err) == DSP_OK);
    int widest = dsp_minhash_limit_simd(m, 2);
    for (int level = 0; level <= widest; level++) {
        REQUIRE(dsp_minhash_limit_simd(m, level) == level);
        rng_state = 7;
        for (int t = 0; t < 200; t++) {
            dsp_buf text = DSP_BUF_INIT;
            random_words(&text, 1 + (size_t)t % 60);
            const uint64_t *got;
            size_t n = dsp_minhash_shingles(m, text.data, text.len, &got);

            uint64_t words[64];
            size_t nwords = 0;
            const char *p = text.data, *end = text.data + text.len;
            while (p < end) {
                const char *sp = memchr(p, ' ', (size_t)(end - p));
                const char *wend = sp ? sp : end;
                words[nwords++] = XXH3_64bits(p, (size_t)(wend - p));
                p = wend + 1;
            }
            size_t want_n = nwords >= 5 ? nwords - 4 : 1;
            REQUIRE(n == want_n);
            size_t span = nwords < 5 ? nwords : 5;
            for (size_t i = 0; i < n; i++)
                CHECKF(got[i] == shingle_hash_by_definition(&words[i], span),
                       "text %d (%zu bytes), level %d, shingle %zu", t, text.len, level, i);
            dsp_buf_free(&text);
        }
    }
    dsp_minhash_free(m);
}

static void test_invalid_params_rejected(void)
{
    dsp_minhash *m = NULL;
    dsp_err err;
    dsp_minhash_params p = {.bands = 100, .rows = 100};
    CHECK(dsp_minhash_new(&p, &m, &err) == DSP_EINVAL);
    CHECK(strstr(err.msg, "bands") != NULL);
    dsp_minhash_params q = {.ngram = -1};
    CHECK(dsp_minhash_new(&q, &m, &err) == DSP_EINVAL);
}

/* B is A shifted by k words: with n - 4 shingles in each, the exact
 * Jaccard is (n - 4 - k) / (n - 4 + k). */
static void check_controlled_shift(int scheme)
{
    dsp_minhash *m = new_with_scheme(schemes[scheme]);
    rng_state = 12345;
    dsp_buf words = DSP_BUF_INIT;
    random_words(&words, 1400);
    /* Word start offsets, to cut sub-ranges of the word list. */
    size_t starts[1401], nw = 0;
    starts[nw++] = 0;
    for (size_t i = 0; i < words.len; i++)
        if (words.data[i] == ' ')
            starts[nw++] = i + 1;
    const size_t n = 1004;
    const size_t shifts[] = {50, 111, 333};
    const double want[] = {950.0 / 1050.0, 889.0 / 1111.0, 667.0 / 1333.0};
    for (size_t t = 0; t < 3; t++) {
        size_t k = shifts[t];
        char *a = strndup(words.data, starts[n] - 1);
        char *b = strndup(words.data + starts[k], starts[n + k] - 1 - starts[k]);
        double j = exact_jaccard(m, a, b);
        double est = estimate(m, a, b);
        CHECKF(fabs(j - want[t]) < 1e-9, "shift %zu: exact %.4f want %.4f", k, j, want[t]);
        CHECKF(fabs(est - j) < 0.15, "%s, shift %zu: estimate %.3f exact %.3f",
               scheme_names[scheme], k, est, j);
        free(a);
        free(b);
    }
    dsp_buf_free(&words);
    dsp_minhash_free(m);
}

static void test_controlled_shift_jaccard(void)
{
    for (int scheme = 0; scheme < 2; scheme++)
        check_controlled_shift(scheme);
}

/* Over many random pairs the estimate must be unbiased and close on
 * average; a weak permutation family shows up here as bias. */
static void check_estimate_error(int scheme)
{
    dsp_minhash *m = new_with_scheme(schemes[scheme]);
    rng_state = 777;
    double sum_err = 0, sum_abs = 0;
    const int pairs = 200;
    for (int p = 0; p < pairs; p++) {
        dsp_buf a = DSP_BUF_INIT, b = DSP_BUF_INIT, common = DSP_BUF_INIT;
        random_words(&common, 100 + rng_next() % 300);
        dsp_buf_append(&a, common.data, common.len);
        dsp_buf_append(&b, common.data, common.len);
        random_words(&a, rng_next() % 200);
        random_words(&b, rng_next() % 200);
        double j = exact_jaccard(m, a.data, b.data);
        double est = estimate(m, a.data, b.data);
        sum_err += est - j;
        sum_abs += fabs(est - j);
        dsp_buf_free(&a);
        dsp_buf_free(&b);
        dsp_buf_free(&common);
    }
    CHECKF(fabs(sum_err / pairs) < 0.01, "%s: mean error %.4f", scheme_names[scheme],
           sum_err / pairs);
    CHECKF(sum_abs / pairs < 0.05, "%s: mean absolute error %.4f", scheme_names[scheme],
           sum_abs / pairs);
    dsp_minhash_free(m);
}

static void test_estimate_error_small(void)
{
    for (int scheme = 0; scheme < 2; scheme++)
        check_estimate_error(scheme);
}

static void test_simd_matches_portable(void)
{
    dsp_minhash *m;
    dsp_err err;
    /* 112 permutations (the default) fill 16-lane vectors, 27 leaves a
     * partial 8-lane group and 24 a whole 8-lane group after the 16-lane
     * one. */
    dsp_minhash_params shapes[] = {
        {.scheme = DSP_MINHASH_K_PERMUTATIONS, .bands = 14, .rows = 8},
        {.scheme = DSP_MINHASH_K_PERMUTATIONS, .bands = 9, .rows = 3},
        {.scheme = DSP_MINHASH_K_PERMUTATIONS, .bands = 8, .rows = 3}};
    for (size_t shape = 0; shape < sizeof shapes / sizeof shapes[0]; shape++) {
        REQUIRE(dsp_minhash_new(&shapes[shape], &m, &err) == DSP_OK);
        size_t perms = dsp_minhash_perms(m);
        int widest = dsp_minhash_limit_simd(m, 2);
        if (widest < 2)
            fprintf(stderr, "  note: this CPU runs SIMD level %d only\n", widest);
        rng_state = 99 + (uint64_t)shape;
        for (int t = 0; t < 50; t++) {
            dsp_buf text = DSP_BUF_INIT;
            random_words(&text, 1 + rng_next() % 500);
            uint32_t want[DSP_MINHASH_MAX_PERMS];
            REQUIRE(dsp_minhash_limit_simd(m, 0) == 0);
            size_t n_want = dsp_minhash_signature(m, text.data, text.len, want);
            for (int level = 1; level <= widest; level++) {
                uint32_t got[DSP_MINHASH_MAX_PERMS];
                REQUIRE(dsp_minhash_limit_simd(m, level) == level);
                size_t n_got = dsp_minhash_signature(m, text.data, text.len, got);
                CHECK_EQ_INT(n_got, n_want);
                CHECKF(memcmp(got, want, perms * sizeof *got) == 0,
                       "level %d differs from portable, %zu permutations", level, perms);
            }
            dsp_buf_free(&text);
        }
        dsp_minhash_free(m);
    }
}

static void test_band_hashes_follow_signature(void)
{
    dsp_minhash *m;
    dsp_err err;
    REQUIRE(dsp_minhash_new(NULL, &m, &err) == DSP_OK);
    uint32_t a[DSP_MINHASH_MAX_PERMS], b[DSP_MINHASH_MAX_PERMS];
    const char *t = "the quick brown fox jumps over the lazy dog again and again";
    REQUIRE(dsp_minhash_signature(m, t, strlen(t), a) > 0);
    memcpy(b, a, sizeof a);
    b[8] ^= 1; /* changes band 1 only */
    for (int band = 0; band < dsp_minhash_bands(m); band++) {
        uint64_t ha = dsp_minhash_band_hash(m, a, band), hb = dsp_minhash_band_hash(m, b, band);
        if (band == 1)
            CHECK(ha != hb);
        else
            CHECK(ha == hb);
    }
    /* Equal rows in different bands still hash apart (seeded by band). */
    uint32_t same[DSP_MINHASH_MAX_PERMS] = {0};
    CHECK(dsp_minhash_band_hash(m, same, 0) != dsp_minhash_band_hash(m, same, 1));
    dsp_minhash_free(m);
}

/* Sketches with 32 bits agree with the whole signature exactly; with 4 and
 * 8 bits the corrected estimate stays close to it on real pairs. */
static void test_sketch_estimates(void)
{
    dsp_minhash *m;
    dsp_err err;
    REQUIRE(dsp_minhash_new(NULL, &m, &err) == DSP_OK);
    size_t perms = dsp_minhash_perms(m);
    CHECK_EQ_INT(dsp_minhash_sketch_bytes(perms, 4), 56);
    CHECK_EQ_INT(dsp_minhash_sketch_bytes(perms, 1), 14);
    rng_state = 31337;
    double sum_abs[2] = {0, 0};
    const int bits[2] = {4, 8};
    const int pairs = 100;
    for (int p = 0; p < pairs; p++) {
        dsp_buf a = DSP_BUF_INIT, b = DSP_BUF_INIT, common = DSP_BUF_INIT;
        random_words(&common, 200 + rng_next() % 300);
        dsp_buf_append(&a, common.data, common.len);
        dsp_buf_append(&b, common.data, common.len);
        random_words(&a, rng_next() % 150);
        random_words(&b, rng_next() % 150);
        uint32_t sa[DSP_MINHASH_MAX_PERMS], sb[DSP_MINHASH_MAX_PERMS];
        REQUIRE(dsp_minhash_signature(m, a.data, a.len, sa) > 0);
        REQUIRE(dsp_minhash_signature(m, b.data, b.len, sb) > 0);
        double full = dsp_minhash_similarity(sa, sb, perms);
        unsigned char ka[4 * DSP_MINHASH_MAX_PERMS], kb[4 * DSP_MINHASH_MAX_PERMS];
        dsp_minhash_sketch(sa, perms, 32, ka);
        dsp_minhash_sketch(sb, perms, 32, kb);
        double exact32 = dsp_minhash_sketch_similarity(ka, kb, perms, 32);
        CHECKF(fabs(exact32 - full) < 1e-6, "pair %d: 32-bit sketch %.4f, signature %.4f", p,
               exact32, full);
        for (int k = 0; k < 2; k++) {
            dsp_minhash_sketch(sa, perms, bits[k], ka);
            dsp_minhash_sketch(sb, perms, bits[k], kb);
            sum_abs[k] += fabs(dsp_minhash_sketch_similarity(ka, kb, perms, bits[k]) - full);
        }
        /* A sketch compared with itself matches in every field. */
        CHECK(dsp_minhash_sketch_similarity(ka, ka, perms, 8) == 1.0);
        dsp_buf_free(&a);
        dsp_buf_free(&b);
        dsp_buf_free(&common);
    }
    CHECKF(sum_abs[0] / pairs < 0.03, "4 bits: mean absolute difference %.4f", sum_abs[0] / pairs);
    CHECKF(sum_abs[1] / pairs < 0.01, "8 bits: mean absolute difference %.4f", sum_abs[1] / pairs);
    dsp_minhash_free(m);
}

/* Real near duplicates: the same kernel documents in versions 6.1 and
 * 6.12, one record after the other. */
static void check_linux_doc_estimates(int scheme)
{
    gzFile f = gzopen("tests/data/linux-doc/linux-doc-6.1-6.12-sample.jsonl.gz", "rb");
    REQUIRE(f);
    dsp_buf all = DSP_BUF_INIT;
    char chunk[65536];
    int n;
    while ((n = gzread(f, chunk, sizeof chunk)) > 0)
        dsp_buf_append(&all, chunk, (size_t)n);
    gzclose(f);
    dsp_minhash *m = new_with_scheme(schemes[scheme]);
    char *save = NULL;
    char *line = strtok_r(all.data, "\n", &save);
    int pairs = 0, high = 0;
    double sum_abs = 0;
    while (line) {
        char *next = strtok_r(NULL, "\n", &save);
        REQUIRE(next);
        cJSON *ja = cJSON_Parse(line), *jb = cJSON_Parse(next);
        REQUIRE(ja);
        REQUIRE(jb);
        const char *ta = cJSON_GetObjectItem(ja, "text")->valuestring;
        const char *tb = cJSON_GetObjectItem(jb, "text")->valuestring;
        double j = exact_jaccard(m, ta, tb), est = estimate(m, ta, tb);
        sum_abs += fabs(est - j);
        pairs++;
        high += j >= 0.8;
        CHECKF(fabs(est - j) < 0.15, "%s, pair %d: estimate %.3f exact %.3f",
               scheme_names[scheme], pairs, est, j);
        cJSON_Delete(ja);
        cJSON_Delete(jb);
        line = strtok_r(NULL, "\n", &save);
    }
    CHECK_EQ_INT(pairs, 60);
    CHECK(high > 30);
    CHECK(high < 60);
    CHECKF(sum_abs / pairs < 0.04, "%s: mean absolute error %.4f", scheme_names[scheme],
           sum_abs / pairs);
    dsp_minhash_free(m);
    dsp_buf_free(&all);
}

static void test_linux_doc_estimates(void)
{
    for (int scheme = 0; scheme < 2; scheme++)
        check_linux_doc_estimates(scheme);
}

/* With more shingles than bins every bin is filled, and each value is the
 * least lower half of the shingle hashes whose upper half maps to the bin,
 * as minhash.h defines. */
static void test_one_permutation_definition(void)
{
    dsp_minhash *m = new_with_scheme(DSP_MINHASH_ONE_PERMUTATION);
    CHECK(dsp_minhash_get_scheme(m) == DSP_MINHASH_ONE_PERMUTATION);
    size_t k = dsp_minhash_perms(m);
    rng_state = 4242;
    for (int t = 0; t < 20; t++) {
        dsp_buf text = DSP_BUF_INIT;
        random_words(&text, 2000 + rng_next() % 2000);
        const uint64_t *h;
        size_t n = dsp_minhash_shingles(m, text.data, text.len, &h);
        uint32_t want[DSP_MINHASH_MAX_PERMS];
        int filled[DSP_MINHASH_MAX_PERMS] = {0};
        for (size_t i = 0; i < k; i++)
            want[i] = UINT32_MAX;
        for (size_t i = 0; i < n; i++) {
            size_t bin = (size_t)(((h[i] >> 32) * k) >> 32);
            if ((uint32_t)h[i] < want[bin])
                want[bin] = (uint32_t)h[i];
            filled[bin] = 1;
        }
        size_t empty = 0;
        for (size_t i = 0; i < k; i++)
            empty += !filled[i];
        REQUIRE(empty == 0);
        uint32_t got[DSP_MINHASH_MAX_PERMS];
        REQUIRE(dsp_minhash_signature(m, text.data, text.len, got) == n);
        CHECKF(memcmp(got, want, k * sizeof *got) == 0, "text %d: signature differs", t);
        dsp_buf_free(&text);
    }
    dsp_minhash_free(m);
}

/* Short documents leave most bins empty, and densification fills them from
 * the document's own bins. So one shingle gives one value everywhere.
 * Each position must still match with probability equal to the Jaccard
 * similarity: unrelated short documents estimate near 0, and related ones
 * near their exact similarity without bias. */
static void test_one_permutation_short_documents(void)
{
    dsp_minhash *m = new_with_scheme(DSP_MINHASH_ONE_PERMUTATION);
    size_t k = dsp_minhash_perms(m);
    uint32_t a[DSP_MINHASH_MAX_PERMS], b[DSP_MINHASH_MAX_PERMS];
    const char *one = "just five words in here";
    REQUIRE(dsp_minhash_signature(m, one, strlen(one), a) == 1);
    for (size_t i = 1; i < k; i++)
        CHECKF(a[i] == a[0], "bin %zu: %u, bin 0: %u", i, a[i], a[0]);
    REQUIRE(dsp_minhash_signature(m, one, strlen(one), b) == 1);
    CHECK(memcmp(a, b, k * sizeof *a) == 0);

    rng_state = 2024;
    double unrelated = 0, sum_err = 0, sum_abs = 0;
    const int pairs = 300;
    for (int p = 0; p < pairs; p++) {
        dsp_buf x = DSP_BUF_INIT, y = DSP_BUF_INIT, common = DSP_BUF_INIT;
        random_words(&x, 5 + rng_next() % 30);
        random_words(&y, 5 + rng_next() % 30);
        unrelated += estimate(m, x.data, y.data);
        random_words(&common, 10 + rng_next() % 30);
        dsp_buf_reset(&x);
        dsp_buf_reset(&y);
        dsp_buf_append(&x, common.data, common.len);
        dsp_buf_append(&y, common.data, common.len);
        random_words(&x, rng_next() % 10);
        random_words(&y, rng_next() % 10);
        double j = exact_jaccard(m, x.data, y.data), est = estimate(m, x.data, y.data);
        sum_err += est - j;
        sum_abs += fabs(est - j);
        dsp_buf_free(&x);
        dsp_buf_free(&y);
        dsp_buf_free(&common);
    }
    CHECKF(unrelated / pairs < 0.01, "unrelated pairs: mean estimate %.4f", unrelated / pairs);
    CHECKF(fabs(sum_err / pairs) < 0.02, "related pairs: mean error %.4f", sum_err / pairs);
    CHECKF(sum_abs / pairs < 0.08, "related pairs: mean absolute error %.4f", sum_abs / pairs);
    dsp_minhash_free(m);
}

/* The schemes differ, and an unknown scheme is rejected. */
static void test_scheme_selection(void)
{
    dsp_minhash *m = NULL;
    dsp_err err;
    REQUIRE(dsp_minhash_new(NULL, &m, &err) == DSP_OK);
    CHECK(dsp_minhash_get_scheme(m) == DSP_MINHASH_ONE_PERMUTATION);
    dsp_minhash_free(m);
    CHECK(dsp_minhash_scheme_parse("one_permutation") == DSP_MINHASH_ONE_PERMUTATION);
    CHECK(dsp_minhash_scheme_parse("k_permutations") == DSP_MINHASH_K_PERMUTATIONS);
    CHECK(dsp_minhash_scheme_parse("minhash") == DSP_MINHASH_DEFAULT_SCHEME);
    CHECK(dsp_minhash_scheme_parse(NULL) == DSP_MINHASH_DEFAULT_SCHEME);
    dsp_minhash_params bad = {.scheme = (dsp_minhash_scheme)7};
    CHECK(dsp_minhash_new(&bad, &m, &err) == DSP_EINVAL);
    CHECK(strstr(err.msg, "scheme") != NULL);

    dsp_minhash *oph = new_with_scheme(DSP_MINHASH_ONE_PERMUTATION);
    dsp_minhash *kperm = new_with_scheme(DSP_MINHASH_K_PERMUTATIONS);
    const char *t = "the quick brown fox jumps over the lazy dog again and again";
    uint32_t a[DSP_MINHASH_MAX_PERMS], b[DSP_MINHASH_MAX_PERMS];
    REQUIRE(dsp_minhash_signature(oph, t, strlen(t), a) > 0);
    REQUIRE(dsp_minhash_signature(kperm, t, strlen(t), b) > 0);
    CHECK(memcmp(a, b, dsp_minhash_perms(oph) * sizeof *a) != 0);
    dsp_minhash_free(oph);
    dsp_minhash_free(kperm);
}

TEST_MAIN({"normalize folds case digits", test_normalize_folds_case_digits},
          {"normalize matches utf8proc", test_normalize_matches_utf8proc},
          {"normalize long texts", test_normalize_long_texts},
          {"shingle counts", test_shingle_counts},
          {"shingles match definition", test_shingles_match_definition},
          {"invalid params rejected", test_invalid_params_rejected},
          {"controlled shift jaccard", test_controlled_shift_jaccard},
          {"estimate error small", test_estimate_error_small},
          {"simd matches portable", test_simd_matches_portable},
          {"band hashes follow signature", test_band_hashes_follow_signature},
          {"sketch estimates", test_sketch_estimates},
          {"linux-doc estimates", test_linux_doc_estimates},
          {"one permutation definition", test_one_permutation_definition},
          {"one permutation short documents", test_one_permutation_short_documents},
          {"scheme selection", test_scheme_selection})
