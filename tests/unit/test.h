/*
 * test.h - a minimal test harness: each test is a function registered in a
 * table at the bottom of its file, run in order; CHECK records a failure
 * with file and line and continues, REQUIRE stops the current test.
 *
 *   static void test_put_get(void) { CHECK(x == 1); }
 *   TEST_MAIN({"put get round trip", test_put_get}, ...)
 *
 * Run one test by name: ./build/tests/test_store "put get round trip".
 * Output ends with "N passed, N failed" for tests/run.sh to add up.
 */
#ifndef DSP_TEST_H
#define DSP_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

extern int test_failed_checks;
extern const char *test_current;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
            test_failed_checks++;                                                    \
        }                                                                            \
    } while (0)

#define CHECKF(cond, ...)                                                            \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            test_failed_checks++;                                                    \
        }                                                                            \
    } while (0)

#define REQUIRE(cond)                                                                \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  FAIL %s:%d: %s (stopping this test)\n", __FILE__,     \
                    __LINE__, #cond);                                                \
            test_failed_checks++;                                                    \
            return;                                                                  \
        }                                                                            \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                           \
    do {                                                                             \
        long long a_ = (long long)(a), b_ = (long long)(b);                          \
        if (a_ != b_) {                                                              \
            fprintf(stderr, "  FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__,     \
                    __LINE__, #a, #b, a_, b_);                                       \
            test_failed_checks++;                                                    \
        }                                                                            \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                           \
    do {                                                                             \
        const char *a_ = (a), *b_ = (b);                                             \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                     \
            fprintf(stderr, "  FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", __FILE__, \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");       \
            test_failed_checks++;                                                    \
        }                                                                            \
    } while (0)

/* Skip the current test with a reason (counted as skipped, not passed). */
#define SKIP(...)                                                                    \
    do {                                                                             \
        fprintf(stderr, "  SKIP: ");                                                 \
        fprintf(stderr, __VA_ARGS__);                                                \
        fputc('\n', stderr);                                                         \
        test_skipped = 1;                                                            \
        return;                                                                      \
    } while (0)

extern int test_skipped;

#define TEST_MAIN(...)                                                               \
    int test_failed_checks;                                                          \
    int test_skipped;                                                                \
    const char *test_current;                                                        \
    static const test_case test_table[] = {__VA_ARGS__};                             \
    int main(int argc, char **argv)                                                  \
    {                                                                                \
        int passed = 0, failed = 0, skipped = 0;                                     \
        size_t n = sizeof test_table / sizeof test_table[0];                         \
        for (size_t i = 0; i < n; i++) {                                             \
            if (argc > 1 && strcmp(argv[1], test_table[i].name) != 0)                \
                continue;                                                            \
            int before = test_failed_checks;                                         \
            test_skipped = 0;                                                        \
            test_current = test_table[i].name;                                       \
            fprintf(stderr, "[ RUN  ] %s\n", test_table[i].name);                    \
            test_table[i].fn();                                                      \
            if (test_failed_checks != before) {                                      \
                failed++;                                                            \
                fprintf(stderr, "[ FAIL ] %s\n", test_table[i].name);                \
            } else if (test_skipped) {                                               \
                skipped++;                                                           \
                fprintf(stderr, "[ SKIP ] %s\n", test_table[i].name);                \
            } else {                                                                 \
                passed++;                                                            \
                fprintf(stderr, "[  OK  ] %s\n", test_table[i].name);                \
            }                                                                        \
        }                                                                            \
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);       \
        return failed ? 1 : 0;                                                       \
    }

#endif
