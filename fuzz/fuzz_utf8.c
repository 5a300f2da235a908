/* cs__utf8_valid / cs__utf8_length against a byte-by-byte reference built on
 * utf8proc_iterate, at every alignment of the input (the library reads
 * words), plus cs__check_text (the length-limit check every name and
 * identity goes through) against the same reference, with limits taken from
 * boundary values around the input's length and around overflow. */
#include "fuzz.h"
#include "internal.h"

#include <string.h>
#include <utf8proc.h>

/* Code points, or SIZE_MAX when not well-formed UTF-8. */
static size_t ref_length(const unsigned char *s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return SIZE_MAX;
        i += (size_t)k;
        count++;
    }
    return count;
}

static void check_text(const char *s, size_t n, size_t want, size_t max) {
    cs_err e = cs__check_text((cs_str){s, n}, max, CS_E_IDENTITY_TOO_LONG);
    cs_err exp = want == SIZE_MAX ? CS_E_BAD_UTF8
                 : want > max     ? CS_E_IDENTITY_TOO_LONG
                                  : CS_OK;
    FZ_CHECK(e == exp, "cs__check_text(n=%zu, max=%zu) = %s, expected %s", n,
             max, cs_err_name(e), cs_err_name(exp));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t want = ref_length(data, size);
    /* Each alignment modulo 8, in an exactly sized allocation that starts
     * `off` bytes in: a word read past the end lands outside it. */
    for (size_t off = 0; off < 8; off++) {
        char *buf = malloc(size + off + 1);
        if (!buf) abort();
        memcpy(buf + off, data, size);
        const char *s = buf + off;
        bool valid = cs__utf8_valid(s, size);
        size_t len = cs__utf8_length(s, size);
        free(buf);
        FZ_CHECK(valid == (want != SIZE_MAX), "valid=%d, reference %zu (off %zu)",
                 valid, want, off);
        FZ_CHECK(len == want, "length %zu, reference %zu (off %zu)", len, want,
                 off);
    }
    char *s = fz_dup(data, size);
    const size_t maxes[] = {1,
                            2,
                            3,
                            size / 4,
                            size / 4 + 1,
                            size > 0 ? size - 1 : 1,
                            size + 1,
                            want != SIZE_MAX && want > 1 ? want - 1 : 1,
                            want != SIZE_MAX ? want : 1,
                            want != SIZE_MAX ? want + 1 : 1,
                            SIZE_MAX / 4,
                            SIZE_MAX / 4 + 1,
                            SIZE_MAX / 2,
                            (SIZE_MAX / 4) * 3,
                            SIZE_MAX - 1,
                            SIZE_MAX};
    for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++)
        check_text(s, size, want, maxes[i]);
    free(s);
    return 0;
}
