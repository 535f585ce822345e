/*
 * sort_records.c - generator and checker of the GraySort-style records that
 * bench/sort_bench.sh sorts through DSpark.
 *
 * A record is one JSONL line of exactly SORT_RECORD_BYTES bytes, newline
 * included:
 *   {"key":"KKKKKKKKKK","text":"IIIIIIIIIIIIIIIIPPP...P"}\n
 * K is a 10-byte key of printable ASCII without '"' and '\\' (so the JSON
 * string needs no escapes and the decoded key equals the raw bytes), I is
 * the record number in 16 hex digits (every record is distinct) and P is
 * printable filler. Record i depends only on (seed, i), so a range of
 * records can be generated on its own.
 *
 *   sort_records gen SEED START COUNT   write records START..START+COUNT-1
 *   sort_records sum                    read records, print their summary
 *   sort_records check                  like sum, and fail unless the keys
 *                                       are in non-decreasing byte order
 *
 * The summary line is "records=N sum=H1 sum2=H2": N records and two sums
 * (mod 2^64) of XXH3-64 hashes of each line with different seeds. The sums
 * do not depend on the order of the records, so the input and the sorted
 * output of the same multiset of records print the same line. Exit status:
 * 0 success, 1 a malformed or out-of-order record (the message names the
 * record number and byte offset), 2 a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SORT_RECORD_BYTES 100
#define SORT_KEY_BYTES 10
#define SORT_KEY_PREFIX "{\"key\":\""
#define SORT_TEXT_PREFIX "\",\"text\":\""
#define SORT_SUFFIX "\"}\n"
#define SORT_KEY_AT (sizeof SORT_KEY_PREFIX - 1)
#define SORT_TEXT_AT (SORT_KEY_AT + SORT_KEY_BYTES + sizeof SORT_TEXT_PREFIX - 1)
#define SORT_TEXT_BYTES (SORT_RECORD_BYTES - SORT_TEXT_AT - (sizeof SORT_SUFFIX - 1))

/* Printable ASCII from ' ' to '~' without '"' and '\\': 93 characters. */
static char sort_alphabet[96];
static size_t sort_alphabet_len;

static void sort_init_alphabet(void)
{
    for (int c = ' '; c <= '~'; c++)
        if (c != '"' && c != '\\')
            sort_alphabet[sort_alphabet_len++] = (char)c;
}

/* splitmix64: a fast generator whose state can start anywhere. */
static uint64_t sort_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void sort_make_record(uint64_t seed, uint64_t index, char *rec)
{
    uint64_t state = XXH3_64bits_withSeed(&index, sizeof index, seed);
    char *p = rec;

    memcpy(p, SORT_KEY_PREFIX, SORT_KEY_AT);
    p += SORT_KEY_AT;
    /* One 64-bit draw gives 5 characters of 93 (93^5 < 2^33, so the bias is
     * negligible). */
    for (int i = 0; i < SORT_KEY_BYTES; i += 5) {
        uint64_t r = sort_next(&state);
        for (int j = 0; j < 5 && i + j < SORT_KEY_BYTES; j++) {
            *p++ = sort_alphabet[r % sort_alphabet_len];
            r /= sort_alphabet_len;
        }
    }
    memcpy(p, SORT_TEXT_PREFIX, sizeof SORT_TEXT_PREFIX - 1);
    p += sizeof SORT_TEXT_PREFIX - 1;
    snprintf(p, 17, "%016llx", (unsigned long long)index);
    p += 16;
    for (size_t i = 16; i < SORT_TEXT_BYTES; i += 5) {
        uint64_t r = sort_next(&state);
        for (size_t j = 0; j < 5 && i + j < SORT_TEXT_BYTES; j++) {
            *p++ = sort_alphabet[r % sort_alphabet_len];
            r /= sort_alphabet_len;
        }
    }
    memcpy(p, SORT_SUFFIX, sizeof SORT_SUFFIX - 1);
}

static int sort_parse_u64(const char *s, const char *name, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "sort_records: invalid %s '%s': expected a non-negative integer\n", name,
                s);
        return -1;
    }
    *out = v;
    return 0;
}

static int sort_gen(uint64_t seed, uint64_t start, uint64_t count)
{
    static char block[SORT_RECORD_BYTES * 4096];
    size_t used = 0;

    for (uint64_t i = 0; i < count; i++) {
        sort_make_record(seed, start + i, block + used);
        used += SORT_RECORD_BYTES;
        if (used == sizeof block || i + 1 == count) {
            if (fwrite(block, 1, used, stdout) != used) {
                fprintf(stderr, "sort_records: writing stdout failed: %s\n", strerror(errno));
                return 1;
            }
            used = 0;
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "sort_records: writing stdout failed: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

/* Check that rec has the record layout; return NULL or what is wrong. */
static const char *sort_malformed(const char *rec)
{
    if (memcmp(rec, SORT_KEY_PREFIX, SORT_KEY_AT) != 0)
        return "does not start with {\"key\":\"";
    if (memcmp(rec + SORT_KEY_AT + SORT_KEY_BYTES, SORT_TEXT_PREFIX,
               sizeof SORT_TEXT_PREFIX - 1) != 0)
        return "has no 10-byte key followed by \"text\"";
    if (memcmp(rec + SORT_RECORD_BYTES - (sizeof SORT_SUFFIX - 1), SORT_SUFFIX,
               sizeof SORT_SUFFIX - 1) != 0)
        return "does not end with \"}";
    return NULL;
}

static int sort_scan(int check_order)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t n = 0, sum = 0, sum2 = 0, offset = 0;
    char prev[SORT_KEY_BYTES];
    int rc = 0;

    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (len != SORT_RECORD_BYTES || line[len - 1] != '\n') {
            fprintf(stderr, "sort_records: record %llu at byte %llu is %zd bytes, expected %d "
                    "including the newline\n", (unsigned long long)n,
                    (unsigned long long)offset, len, SORT_RECORD_BYTES);
            rc = 1;
            goto out;
        }
        const char *bad = sort_malformed(line);
        if (bad) {
            fprintf(stderr, "sort_records: record %llu at byte %llu %s\n", (unsigned long long)n,
                    (unsigned long long)offset, bad);
            rc = 1;
            goto out;
        }
        const char *key = line + SORT_KEY_AT;
        if (check_order && n > 0 && memcmp(prev, key, SORT_KEY_BYTES) > 0) {
            fprintf(stderr, "sort_records: record %llu at byte %llu has key '%.*s', which sorts "
                    "before the previous key '%.*s'\n", (unsigned long long)n,
                    (unsigned long long)offset, SORT_KEY_BYTES, key, SORT_KEY_BYTES, prev);
            rc = 1;
            goto out;
        }
        memcpy(prev, key, SORT_KEY_BYTES);
        sum += XXH3_64bits(line, SORT_RECORD_BYTES);
        sum2 += XXH3_64bits_withSeed(line, SORT_RECORD_BYTES, 0x5eed);
        n++;
        offset += SORT_RECORD_BYTES;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "sort_records: reading stdin failed at byte %llu: %s\n",
                (unsigned long long)offset, strerror(errno));
        rc = 1;
        goto out;
    }
    printf("records=%llu sum=%016llx sum2=%016llx\n", (unsigned long long)n,
           (unsigned long long)sum, (unsigned long long)sum2);
out:
    free(line);
    return rc;
}

static void sort_usage(void)
{
    fprintf(stderr, "usage: sort_records gen SEED START COUNT\n"
                    "       sort_records sum   < RECORDS\n"
                    "       sort_records check < RECORDS\n");
}

int main(int argc, char **argv)
{
    sort_init_alphabet();
    if (argc == 5 && !strcmp(argv[1], "gen")) {
        uint64_t seed, start, count;
        if (sort_parse_u64(argv[2], "SEED", &seed) || sort_parse_u64(argv[3], "START", &start) ||
            sort_parse_u64(argv[4], "COUNT", &count))
            return 2;
        return sort_gen(seed, start, count);
    }
    if (argc == 2 && !strcmp(argv[1], "sum"))
        return sort_scan(0);
    if (argc == 2 && !strcmp(argv[1], "check"))
        return sort_scan(1);
    sort_usage();
    return 2;
}
