/* Minimal test harness: typed assertions that print both sides on failure.
 * Each test program defines test functions and lists them in a TESTS table;
 * the runner prints "N passed, N failed" and exits non-zero on failure. */
#ifndef CHATSTORE_TESTS_CHECK_H
#define CHATSTORE_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int check_failures_; /* failures in the running test */

#define CHECK_FAIL_(...)                                                      \
    do {                                                                      \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                       \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
        check_failures_++;                                                    \
    } while (0)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) CHECK_FAIL_("CHECK(%s) failed", #cond);                  \
    } while (0)

/* Stops the current test function (it must return void). */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            CHECK_FAIL_("REQUIRE(%s) failed", #cond);                         \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_INT(a, b)                                                       \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_)                                                         \
            CHECK_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);            \
    } while (0)

#define CHECK_STR(a, b)                                                       \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                \
            CHECK_FAIL_("%s == %s:\n  got      \"%s\"\n  expected \"%s\"",    \
                        #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");      \
    } while (0)

/* Compare a (pointer, length) pair against a C string. */
#define CHECK_MEM(p, n, s)                                                    \
    do {                                                                      \
        const char *p_ = (const char *)(p), *s_ = (s);                        \
        size_t n_ = (size_t)(n);                                              \
        if (!p_ || n_ != strlen(s_) || memcmp(p_, s_, n_) != 0)               \
            CHECK_FAIL_("%s == %s:\n  got      \"%.*s\"\n  expected \"%s\"",  \
                        #p, #s, p_ ? (int)n_ : 6, p_ ? p_ : "(null)", s_);    \
    } while (0)

typedef struct check_test {
    const char *name;
    void (*fn)(void);
} check_test;

#define CHECK_MAIN(tests)                                                     \
    int check_failures_;                                                      \
    int main(int argc, char **argv) {                                         \
        int passed = 0, failed = 0;                                           \
        size_t n = sizeof(tests) / sizeof((tests)[0]);                        \
        for (size_t i = 0; i < n; i++) {                                      \
            if (argc > 1 && strstr((tests)[i].name, argv[1]) == NULL)         \
                continue;                                                     \
            check_failures_ = 0;                                              \
            (tests)[i].fn();                                                  \
            if (check_failures_) {                                            \
                failed++;                                                     \
                fprintf(stderr, "FAIL %s\n", (tests)[i].name);                \
            } else {                                                          \
                passed++;                                                     \
                printf("ok   %s\n", (tests)[i].name);                         \
            }                                                                 \
        }                                                                     \
        printf("%d passed, %d failed\n", passed, failed);                     \
        return failed || !passed ? 1 : 0;                                     \
    }

#define TEST(name) static void name(void)
#define T(name) { #name, name }

#endif
