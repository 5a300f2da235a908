/* Shared by the fuzz harnesses: the libFuzzer entry point and a failure macro.
 *
 * Each harness defines LLVMFuzzerTestOneInput. Built with CHATSTORE_FUZZ
 * (clang), libFuzzer supplies main; otherwise replay_main.c does, replaying
 * the checked-in corpus as a ctest test. A harness signals a finding by
 * aborting (FZ_CHECK), which both drivers report as a crash. */
#ifndef CHATSTORE_FUZZ_H
#define CHATSTORE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,  \
                    #cond);                                                   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* Exactly sized heap copy (one byte allocated for n == 0), so that
 * AddressSanitizer flags any read past the end of the input. */
static inline char *fz_dup(const void *p, size_t n) {
    char *d = malloc(n ? n : 1);
    if (!d) abort();
    d[0] = 0;
    for (size_t i = 0; i < n; i++) d[i] = ((const char *)p)[i];
    return d;
}

#endif
