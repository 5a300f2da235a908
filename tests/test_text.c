/* Tests for lib/text.c: UTF-8 validation cross-checked against utf8proc,
 * JSON validation against JSONTestSuite, a recursive reference parser and
 * deep-nesting cases.
 *
 * Inputs are copied into exactly sized heap buffers so that AddressSanitizer
 * flags any read past the end.
 *
 * The JSONTestSuite directory comes from compile definitions: the build
 * (CMake) passes CS_SOURCE_DIR (the repository root) and may pass
 * JSONTESTSUITE_DIR to override the default below. */
#include "check.h"
#include "text.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <utf8proc.h>

#ifndef JSONTESTSUITE_DIR
#ifndef CS_SOURCE_DIR
#error "define CS_SOURCE_DIR (repository root) or JSONTESTSUITE_DIR"
#endif
#define JSONTESTSUITE_DIR \
    CS_SOURCE_DIR "/tests/data/JSONTestSuite/test_parsing"
#endif

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);

/* xorshift64*: deterministic, so failures reproduce. */
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static size_t rnd_below(size_t n) { return (size_t)(rnd() % n); }

/* Exactly sized heap copy (at least 1 byte allocated so n == 0 works). */
static char *dup_exact(const void *s, size_t n) {
    char *d = malloc(n ? n : 1);
    if (!d) abort();
    d[0] = 0; /* defined contents even when n == 0 */
    if (n) memcpy(d, s, n);
    return d;
}

static bool json_mem(const void *s, size_t n) {
    char *d = dup_exact(s, n);
    bool ok = cs__json_valid(d, n);
    free(d);
    return ok;
}

/* Literal including embedded NULs: length from sizeof, not strlen. */
#define JSON_LIT(lit) json_mem(lit, sizeof(lit) - 1)

/* Reference UTF-8 decoder: code points per utf8proc_iterate, SIZE_MAX when
 * utf8proc reports an error anywhere. */
static size_t ref_utf8_length(const unsigned char *s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t r =
            utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (r <= 0) return SIZE_MAX;
        i += (size_t)r;
        count++;
    }
    return count;
}

/* Compare both library functions with the reference; returns mismatches. */
static int utf8_compare(const unsigned char *s, size_t n) {
    size_t want = ref_utf8_length(s, n);
    int bad = 0;
    if (cs__utf8_valid((const char *)s, n) != (want != SIZE_MAX)) bad++;
    if (cs__utf8_length((const char *)s, n) != want) bad++;
    return bad;
}

/* -------------------------------------------------------- UTF-8 tests */

TEST(utf8_known_vectors) {
    static const struct {
        const char *s;
        size_t n;
        bool ok;
    } v[] = {
        {"", 0, true},
        {"abc", 3, true},
        {"\0", 1, true},                    /* U+0000 */
        {"\x7F", 1, true},                  /* U+007F */
        {"\xC2\x80", 2, true},              /* U+0080 */
        {"\xDF\xBF", 2, true},              /* U+07FF */
        {"\xE0\xA0\x80", 3, true},          /* U+0800 */
        {"\xED\x9F\xBF", 3, true},          /* U+D7FF */
        {"\xEE\x80\x80", 3, true},          /* U+E000 */
        {"\xEF\xBF\xBF", 3, true},          /* U+FFFF */
        {"\xF0\x90\x80\x80", 4, true},      /* U+10000 */
        {"\xF4\x8F\xBF\xBF", 4, true},      /* U+10FFFF */
        {"\x80", 1, false},                 /* stray continuation */
        {"\xBF", 1, false},
        {"\xC0\x80", 2, false},             /* overlong NUL */
        {"\xC1\xBF", 2, false},             /* overlong */
        {"\xE0\x80\x80", 3, false},         /* overlong */
        {"\xE0\x9F\xBF", 3, false},         /* overlong U+07FF */
        {"\xED\xA0\x80", 3, false},         /* U+D800 */
        {"\xED\xBF\xBF", 3, false},         /* U+DFFF */
        {"\xF0\x80\x80\x80", 4, false},     /* overlong */
        {"\xF0\x8F\xBF\xBF", 4, false},     /* overlong U+FFFF */
        {"\xF4\x90\x80\x80", 4, false},     /* U+110000 */
        {"\xF5\x80\x80\x80", 4, false},
        {"\xFF", 1, false},
        {"\xFE", 1, false},
        {"\xC3", 1, false},                 /* truncated */
        {"\xE2\x82", 2, false},             /* truncated */
        {"\xF0\x9F\x98", 3, false},         /* truncated */
        {"\xC3\x28", 2, false},             /* bad continuation */
        {"\xF8\x88\x80\x80\x80", 5, false}, /* 5-byte form */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *d = dup_exact(v[i].s, v[i].n);
        if (cs__utf8_valid(d, v[i].n) != v[i].ok)
            CHECK_FAIL_("vector %zu: expected %s", i,
                        v[i].ok ? "valid" : "invalid");
        CHECK_INT(utf8_compare((const unsigned char *)d, v[i].n), 0);
        free(d);
    }
}

/* Every sequence of 1, 2 and 3 bytes (16.8 million), against utf8proc. */
TEST(utf8_exhaustive_1_2_3_bytes) {
    int bad = 0;
    for (unsigned a = 0; a < 256; a++) {
        unsigned char s1[1] = {(unsigned char)a};
        bad += utf8_compare(s1, 1);
        for (unsigned b = 0; b < 256; b++) {
            unsigned char s2[2] = {(unsigned char)a, (unsigned char)b};
            bad += utf8_compare(s2, 2);
            for (unsigned c = 0; c < 256; c++) {
                unsigned char s3[3] = {(unsigned char)a, (unsigned char)b,
                                       (unsigned char)c};
                bad += utf8_compare(s3, 3);
            }
        }
    }
    CHECK_INT(bad, 0);
}

/* 4-byte sequences: every lead F0..F4 with every continuation triple, the
 * leads F0..F7 with every second and third byte and a set of fourth bytes,
 * and random 4-byte strings. */
TEST(utf8_four_byte_sample) {
    static const unsigned char last[] = {0x00, 0x41, 0x7F, 0x80, 0x8F,
                                         0x90, 0xBF, 0xC0, 0xF4, 0xFF};
    int bad = 0;
    long valid = 0;
    for (unsigned a = 0xF0; a <= 0xF4; a++)
        for (unsigned b = 0x80; b < 0xC0; b++)
            for (unsigned c = 0x80; c < 0xC0; c++)
                for (unsigned d = 0x80; d < 0xC0; d++) {
                    unsigned char s[4] = {(unsigned char)a, (unsigned char)b,
                                          (unsigned char)c, (unsigned char)d};
                    bad += utf8_compare(s, 4);
                    valid += cs__utf8_valid((const char *)s, 4);
                }
    /* U+10000..U+10FFFF: exactly 0x100000 four-byte scalar values. */
    CHECK_INT(valid, 0x100000);
    for (unsigned a = 0xF0; a <= 0xF7; a++)
        for (unsigned b = 0; b < 256; b++)
            for (unsigned c = 0; c < 256; c++)
                for (size_t k = 0; k < sizeof last; k++) {
                    unsigned char s[4] = {(unsigned char)a, (unsigned char)b,
                                          (unsigned char)c, last[k]};
                    bad += utf8_compare(s, 4);
                }
    for (long i = 0; i < 2000000; i++) {
        uint64_t r = rnd();
        unsigned char s[4] = {(unsigned char)r, (unsigned char)(r >> 8),
                              (unsigned char)(r >> 16),
                              (unsigned char)(r >> 24)};
        bad += utf8_compare(s, 4);
    }
    CHECK_INT(bad, 0);
}

/* Random byte strings biased towards interesting bytes, and concatenations
 * of valid code points with a random mutation. */
TEST(utf8_random_strings) {
    static const unsigned char pick[] = {
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
        0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3,
        0xF4, 0xF5, 0xF8, 0xFE, 0xFF};
    unsigned char buf[64];
    int bad = 0;
    for (long iter = 0; iter < 300000; iter++) {
        size_t n = rnd_below(48);
        if (iter & 1) {
            for (size_t i = 0; i < n; i++)
                buf[i] = rnd_below(3) ? pick[rnd_below(sizeof pick)]
                                      : (unsigned char)rnd();
        } else {
            /* valid text from random scalar values, then maybe one flip */
            size_t len = 0;
            while (len + 4 <= n) {
                utf8proc_int32_t cp;
                do cp = (utf8proc_int32_t)rnd_below(0x110000);
                while (cp >= 0xD800 && cp <= 0xDFFF);
                if (rnd_below(2)) cp &= 0x7FF; /* more short forms */
                len += (size_t)utf8proc_encode_char(cp, buf + len);
            }
            n = len;
            if (n && rnd_below(2)) buf[rnd_below(n)] = (unsigned char)rnd();
        }
        char *d = dup_exact(buf, n);
        bad += utf8_compare((const unsigned char *)d, n);
        free(d);
    }
    CHECK_INT(bad, 0);
}

/* The word-at-a-time path at every alignment and length 0..64, with one
 * bad or multi-byte item at every position. Exact allocations so that any
 * over-read of the fast path hits the ASan redzone. */
TEST(utf8_fast_path_alignment) {
    static const struct {
        const char *s;
        size_t n;
        bool ok;
    } ins[] = {
        {"\x80", 1, false}, {"\xFF", 1, false}, {"\xC0", 1, false},
        {"\xC3\xA9", 2, true}, {"\xE2\x82\xAC", 3, true},
        {"\xF0\x9F\x98\x80", 4, true}, {"\xED\xA0\x80", 3, false},
        {"\xE2\x82", 2, false}, {"\0", 1, true},
    };
    int bad = 0;
    for (size_t align = 0; align < 16; align++) {
        for (size_t len = 0; len <= 64; len++) {
            char *raw = malloc(align + len ? align + len : 1);
            char *s = raw + align;
            memset(s, 'a', len);
            if (!cs__utf8_valid(s, len)) bad++;
            if (cs__utf8_length(s, len) != len) bad++;
            for (size_t k = 0; k < sizeof ins / sizeof ins[0]; k++) {
                for (size_t pos = 0; pos + ins[k].n <= len; pos++) {
                    memset(s, 'a', len);
                    memcpy(s + pos, ins[k].s, ins[k].n);
                    size_t want = ins[k].ok ? len - ins[k].n + 1 : SIZE_MAX;
                    if (cs__utf8_valid(s, len) != ins[k].ok && bad++ < 5) {
                        fprintf(stderr, "align %zu len %zu pos %zu item %zu\n",
                                align, len, pos, k);
                    }
                    if (cs__utf8_length(s, len) != want) bad++;
                }
            }
            /* truncated sequence as the very last byte(s) */
            if (len >= 1) {
                memset(s, 'a', len);
                s[len - 1] = '\xE2';
                if (cs__utf8_valid(s, len)) bad++;
            }
            free(raw);
        }
    }
    /* exact-size buffers: fast path must not read past n */
    for (size_t len = 0; len <= 64; len++) {
        char *s = malloc(len ? len : 1);
        memset(s, 'z', len);
        if (!cs__utf8_valid(s, len)) bad++;
        free(s);
    }
    CHECK_INT(bad, 0);
}

/* Strings of 16 bytes and more go through SSSE3 blocks where the CPU has
 * them, which judge a byte by its nibbles and the bytes 1 to 3 before it.
 * Every pair of a non-ASCII byte and any byte, then a byte of each class of
 * Table 3-7 (edges included), and 4-byte forms from every lead F0..FF with a
 * second byte around the continuation range, are put inside ASCII across a
 * block edge, across the edge into the zero-padded last block and ending
 * exactly at the end, and checked against the word loop (itself checked
 * against utf8proc above). */
TEST(utf8_blocks_match_word_loop) {
    static const unsigned char cls[] = {
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0,
        0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0,
        0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF};
    static const struct {
        size_t len, at;
    } where3[] = {{33, 14}, {33, 30}, {32, 29}}, where4[] = {{33, 13},
                                                            {33, 29},
                                                            {32, 28}};
    unsigned char s[33];
    long bad = 0, valid = 0;
    for (unsigned a = 0x80; a < 256; a++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t c = 0; c < sizeof cls; c++)
                for (size_t w = 0; w < 3; w++) {
                    size_t len = where3[w].len, at = where3[w].at;
                    memset(s, 'a', len);
                    s[at] = (unsigned char)a;
                    s[at + 1] = (unsigned char)b;
                    if (at + 2 < len) s[at + 2] = cls[c];
                    bool v = cs__utf8_valid((const char *)s, len);
                    bad += v != cs__utf8_valid_sw((const char *)s, len);
                    valid += v;
                }
    for (unsigned a = 0xF0; a < 256; a++)
        for (unsigned b = 0x70; b < 0xC8; b++)
            for (size_t c = 0; c < sizeof cls; c++)
                for (size_t d = 0; d < sizeof cls; d++)
                    for (size_t w = 0; w < 3; w++) {
                        size_t len = where4[w].len, at = where4[w].at;
                        memset(s, 'a', len);
                        s[at] = (unsigned char)a;
                        s[at + 1] = (unsigned char)b;
                        s[at + 2] = cls[c];
                        s[at + 3] = cls[d];
                        bool v = cs__utf8_valid((const char *)s, len);
                        bad += v != cs__utf8_valid_sw((const char *)s, len);
                        valid += v;
                    }
    CHECK_INT(bad, 0);
    CHECK(valid > 0);
}

TEST(utf8_length_multibyte) {
    CHECK_INT(cs__utf8_length("", 0), 0);
    CHECK_INT(cs__utf8_length("h\xC3\xA9llo", 6), 5);
    CHECK_INT(cs__utf8_length("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", 9), 3);
    CHECK_INT(cs__utf8_length("\xF0\x9F\x98\x80", 4), 1);
    CHECK_INT(cs__utf8_length("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 10), 4);
    CHECK_INT(cs__utf8_length("a\0b", 3), 3);
    CHECK(cs__utf8_length("ab\xC3", 3) == SIZE_MAX);
    CHECK(cs__utf8_length("\xED\xA0\x80", 3) == SIZE_MAX);
    /* a long mixed text: 1000 x "x\u65E5\U0001F600 " = 4 code points */
    const char unit[] = "x\xE6\x97\xA5\xF0\x9F\x98\x80 ";
    size_t ulen = sizeof unit - 1, n = 1000 * ulen;
    char *big = malloc(n);
    for (size_t i = 0; i < 1000; i++) memcpy(big + i * ulen, unit, ulen);
    CHECK_INT(cs__utf8_length(big, n), 4000);
    big[n - 5] = '\x80'; /* stray continuation instead of F0 */
    CHECK(cs__utf8_length(big, n) == SIZE_MAX);
    free(big);
}

/* --------------------------------------------------- JSONTestSuite */

/* Implementation-defined (i_) files and the choice made for each. */
#define NUM "numbers are only validated, never converted"
#define ESC "escaped lone/unpaired surrogate: grammatical (RFC 8259 s8.2)"
static const struct {
    const char *name;
    bool accept;
    const char *why;
} i_table[] = {
    {"i_number_double_huge_neg_exp.json", true, NUM},
    {"i_number_huge_exp.json", true, NUM},
    {"i_number_neg_int_huge_exp.json", true, NUM},
    {"i_number_pos_double_huge_exp.json", true, NUM},
    {"i_number_real_neg_overflow.json", true, NUM},
    {"i_number_real_pos_overflow.json", true, NUM},
    {"i_number_real_underflow.json", true, NUM},
    {"i_number_too_big_neg_int.json", true, NUM},
    {"i_number_too_big_pos_int.json", true, NUM},
    {"i_number_very_big_negative_int.json", true, NUM},
    {"i_object_key_lone_2nd_surrogate.json", true, ESC},
    {"i_string_1st_surrogate_but_2nd_missing.json", true, ESC},
    {"i_string_1st_valid_surrogate_2nd_invalid.json", true, ESC},
    {"i_string_UTF-16LE_with_BOM.json", false, "not UTF-8 (FF FE ...)"},
    {"i_string_UTF-8_invalid_sequence.json", false, "invalid UTF-8 (FA lead)"},
    {"i_string_UTF8_surrogate_U+D800.json",
     false, "UTF-8 encoded surrogate (ED A0 80)"},
    {"i_string_incomplete_surrogate_and_escape_valid.json", true, ESC},
    {"i_string_incomplete_surrogate_pair.json", true, ESC},
    {"i_string_incomplete_surrogates_escape_valid.json", true, ESC},
    {"i_string_invalid_lonely_surrogate.json", true, ESC},
    {"i_string_invalid_surrogate.json", true, ESC},
    {"i_string_invalid_utf-8.json", false, "invalid UTF-8 (FF)"},
    {"i_string_inverted_surrogates_U+1D11E.json", true, ESC},
    {"i_string_iso_latin_1.json", false, "Latin-1 byte E9 is not UTF-8"},
    {"i_string_lone_second_surrogate.json", true, ESC},
    {"i_string_lone_utf8_continuation_byte.json",
     false, "stray continuation byte"},
    {"i_string_not_in_unicode_range.json", false, "UTF-8 above U+10FFFF"},
    {"i_string_overlong_sequence_2_bytes.json", false, "overlong UTF-8"},
    {"i_string_overlong_sequence_6_bytes.json",
     false, "6-byte form is not UTF-8"},
    {"i_string_overlong_sequence_6_bytes_null.json",
     false, "6-byte form is not UTF-8"},
    {"i_string_truncated-utf-8.json", false, "truncated UTF-8"},
    {"i_string_utf16BE_no_BOM.json", false, "not UTF-8 (NUL bytes)"},
    {"i_string_utf16LE_no_BOM.json", false, "not UTF-8 (NUL bytes)"},
    {"i_structure_500_nested_arrays.json", true, "any depth is accepted"},
    {"i_structure_UTF-8_BOM_empty_object.json",
     false, "a BOM is not JSON whitespace"},
};

#define I_TABLE_LEN (sizeof i_table / sizeof i_table[0])

/* Reads a whole file into an exactly sized buffer; NULL on error. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    bool err = ferror(f) != 0;
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    char *exact = dup_exact(buf, n);
    free(buf);
    *len = n;
    return exact;
}

/* Calls fn(name, data, len) for every regular entry of the suite directory;
 * returns the number of files, or -1 when the directory cannot be read. */
typedef void suite_fn(const char *name, const char *data, size_t len);

static long for_each_suite_file(suite_fn *fn) {
    DIR *dir = opendir(JSONTESTSUITE_DIR);
    if (!dir) return -1;
    long count = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", JSONTESTSUITE_DIR, e->d_name);
        size_t len = 0;
        char *data = read_file(path, &len);
        if (!data) {
            CHECK_FAIL_("cannot read %s", path);
            continue;
        }
        fn(e->d_name, data, len);
        free(data);
        count++;
    }
    closedir(dir);
    return count;
}

static bool i_seen[I_TABLE_LEN];

static void check_suite_file(const char *name, const char *data, size_t len) {
    bool got = cs__json_valid(data, len);
    if (name[0] == 'y' && name[1] == '_') {
        if (!got) CHECK_FAIL_("%s rejected, must be accepted", name);
    } else if (name[0] == 'n' && name[1] == '_') {
        if (got) CHECK_FAIL_("%s accepted, must be rejected", name);
    } else if (name[0] == 'i' && name[1] == '_') {
        size_t k = 0;
        while (k < I_TABLE_LEN && strcmp(i_table[k].name, name) != 0) k++;
        if (k == I_TABLE_LEN) {
            CHECK_FAIL_("%s: i_ file missing from i_table", name);
            return;
        }
        i_seen[k] = true;
        if (got != i_table[k].accept)
            CHECK_FAIL_("%s %s, expected %s (%s)", name,
                        got ? "accepted" : "rejected",
                        i_table[k].accept ? "accept" : "reject",
                        i_table[k].why);
    } else {
        CHECK_FAIL_("%s: unexpected file name in the suite", name);
    }
}

TEST(json_test_suite) {
    memset(i_seen, 0, sizeof i_seen);
    long count = for_each_suite_file(check_suite_file);
    if (count < 0) CHECK_FAIL_("cannot open %s", JSONTESTSUITE_DIR);
    if (count < 300)
        CHECK_FAIL_("only %ld files in %s (expected >= 300)", count,
                    JSONTESTSUITE_DIR);
    for (size_t k = 0; k < I_TABLE_LEN; k++)
        if (!i_seen[k])
            CHECK_FAIL_("%s not found in the suite", i_table[k].name);
}

/* ------------------------------------------------ JSON grammar cases */

TEST(json_grammar_accept) {
    CHECK(JSON_LIT("0"));
    CHECK(JSON_LIT("-0"));
    CHECK(JSON_LIT("-0.0e-0"));
    CHECK(JSON_LIT("1.5e+10"));
    CHECK(JSON_LIT("-1E-2"));
    CHECK(JSON_LIT("123456789012345678901234567890e999999999999"));
    CHECK(JSON_LIT("true"));
    CHECK(JSON_LIT("false"));
    CHECK(JSON_LIT(" null "));
    CHECK(JSON_LIT("\"\""));
    CHECK(JSON_LIT("\t\n\r 1 \t\n\r"));
    CHECK(JSON_LIT("[]"));
    CHECK(JSON_LIT("{}"));
    CHECK(JSON_LIT("[ ]"));
    CHECK(JSON_LIT("{ }"));
    CHECK(JSON_LIT("[1,[2,{}],[],\"x\",true,false,null,-3.5e2]"));
    CHECK(JSON_LIT("{\"a\":{\"b\":[]},\"a\":1}")); /* duplicate keys: allowed */
    CHECK(JSON_LIT("{ \"a\" : 1 , \"b\" : [ 2 ] }"));
    CHECK(JSON_LIT("\"\\u00e9\\uD83D\\uDE00\\u0000\""));
    CHECK(JSON_LIT("\"\\ud800\""));        /* lone escaped surrogate: ok */
    CHECK(JSON_LIT("\"\\udc00\\ud800\"")); /* inverted pair: ok */
    CHECK(JSON_LIT("\"\\/\\b\\f\\n\\r\\t\\\\\\\"\""));
    CHECK(JSON_LIT("\"\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80\""));
    CHECK(JSON_LIT("\"\x7F\""));           /* DEL is not a control char */
    CHECK(JSON_LIT("\"a very long string with no specials at all ...\""));
    CHECK(JSON_LIT("{\"k\\\"}\":\"[{\"}"));
}

TEST(json_grammar_reject) {
    CHECK(!JSON_LIT(""));
    CHECK(!JSON_LIT(" "));
    CHECK(!JSON_LIT("\t\n\r "));
    CHECK(!JSON_LIT("\0"));
    CHECK(!JSON_LIT("1\0"));
    CHECK(!JSON_LIT("\0 1"));
    CHECK(!JSON_LIT("\"a\0b\""));          /* raw NUL in a string */
    CHECK(!JSON_LIT("\"\x01\""));
    CHECK(!JSON_LIT("\"\x1F\""));
    CHECK(!JSON_LIT("\"a\tb\""));          /* raw tab in a string */
    CHECK(!JSON_LIT("\xEF\xBB\xBF{}"));    /* BOM */
    CHECK(!JSON_LIT("\f1"));               /* form feed is not whitespace */
    CHECK(!JSON_LIT("\v1"));
    CHECK(!JSON_LIT("\xC2\xA0" "1"));      /* NBSP is not whitespace */
    CHECK(!JSON_LIT("\xC3\xA9"));          /* UTF-8 outside a string */
    CHECK(!JSON_LIT("01"));
    CHECK(!JSON_LIT("-01"));
    CHECK(!JSON_LIT("-"));
    CHECK(!JSON_LIT("1."));
    CHECK(!JSON_LIT(".5"));
    CHECK(!JSON_LIT("1e"));
    CHECK(!JSON_LIT("1e+"));
    CHECK(!JSON_LIT("1.e5"));
    CHECK(!JSON_LIT("+1"));
    CHECK(!JSON_LIT("0x1"));
    CHECK(!JSON_LIT("1 2"));
    CHECK(!JSON_LIT("NaN"));
    CHECK(!JSON_LIT("-Infinity"));
    CHECK(!JSON_LIT("tru"));
    CHECK(!JSON_LIT("truex"));
    CHECK(!JSON_LIT("True"));
    CHECK(!JSON_LIT("nul"));
    CHECK(!JSON_LIT("[1,]"));
    CHECK(!JSON_LIT("[,1]"));
    CHECK(!JSON_LIT("[1 2]"));
    CHECK(!JSON_LIT("{,}"));
    CHECK(!JSON_LIT("{\"a\"}"));
    CHECK(!JSON_LIT("{\"a\":}"));
    CHECK(!JSON_LIT("{\"a\":1,}"));
    CHECK(!JSON_LIT("{\"a\" 1}"));
    CHECK(!JSON_LIT("{1:2}"));
    CHECK(!JSON_LIT("{'a':2}"));
    CHECK(!JSON_LIT("[1}"));
    CHECK(!JSON_LIT("{\"a\":1]"));
    CHECK(!JSON_LIT("["));
    CHECK(!JSON_LIT("]"));
    CHECK(!JSON_LIT("[]]"));
    CHECK(!JSON_LIT("[1]x"));
    CHECK(!JSON_LIT("{}{}"));
    CHECK(!JSON_LIT("\"abc"));
    CHECK(!JSON_LIT("\"abc\\\""));
    CHECK(!JSON_LIT("\"\\x\""));
    CHECK(!JSON_LIT("\"\\u12\""));
    CHECK(!JSON_LIT("\"\\u12G4\""));
    CHECK(!JSON_LIT("\"\\U1234\""));
    CHECK(!JSON_LIT("\"\\"));
    CHECK(!JSON_LIT("\"\xED\xA0\x80\""));  /* raw surrogate */
    CHECK(!JSON_LIT("\"\xC0\xAF\""));      /* overlong */
    CHECK(!JSON_LIT("\"\xF4\x90\x80\x80\""));
    CHECK(!JSON_LIT("\"\xE2\x82\""));      /* truncated before the quote */
}

/* A string with one special item at every position and alignment: checks
 * that the word-at-a-time skip inside strings stops exactly where needed. */
TEST(json_string_fast_path) {
    static const struct {
        const char *s;
        size_t n;
        bool ok;
    } ins[] = {
        {"\0", 1, false},   {"\x01", 1, false}, {"\x1F", 1, false},
        {"\x20", 1, true},  {"\x7F", 1, true},  {"\"", 1, false},
        {"\\n", 2, true},   {"\\u00FF", 6, true}, {"\\q", 2, false},
        {"\\", 1, false},   {"\x80", 1, false}, {"\xC3\xA9", 2, true},
        {"\xF0\x9F\x98\x80", 4, true},          {"\xED\xA0\x80", 3, false},
        {"!", 1, true},     {"#", 1, true},     {"[", 1, true},
        {"]", 1, true},     {"^", 1, true},     {"~", 1, true},
        {"\x21\x5B\x5D", 3, true},
    };
    int bad = 0;
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 0; len <= 40; len++) {
            for (size_t k = 0; k < sizeof ins / sizeof ins[0]; k++) {
                for (size_t pos = 0; pos + ins[k].n <= len; pos++) {
                    size_t n = len + 2;
                    char *raw = malloc(align + n);
                    char *s = raw + align;
                    s[0] = '"';
                    memset(s + 1, 'a', len); /* "\a" is no escape */
                    memcpy(s + 1 + pos, ins[k].s, ins[k].n);
                    s[n - 1] = '"';
                    if (cs__json_valid(s, n) != ins[k].ok && bad++ < 5) {
                        fprintf(stderr, "string: align %zu len %zu pos %zu "
                                "item %zu\n", align, len, pos, k);
                    }
                    free(raw);
                }
            }
        }
    }
    CHECK_INT(bad, 0);
}

/* ------------------------------------------------------ deep nesting */

/* n_open '[' then n_close ']' (exactly sized). */
static bool brackets(size_t n_open, size_t n_close, size_t swap_at) {
    size_t n = n_open + n_close;
    char *s = malloc(n);
    memset(s, '[', n_open);
    memset(s + n_open, ']', n_close);
    if (swap_at < n) s[swap_at] = s[swap_at] == '[' ? '{' : '}';
    bool ok = cs__json_valid(s, n);
    free(s);
    return ok;
}

TEST(json_deep_arrays) {
    const size_t D = 1000000;
    CHECK(brackets(D, D, SIZE_MAX));
    CHECK(!brackets(D, D - 1, SIZE_MAX));
    CHECK(!brackets(D - 1, D, SIZE_MAX));
    CHECK(!brackets(D, 0, SIZE_MAX));
    CHECK(!brackets(0, D, SIZE_MAX));
    /* a wrong closer at various depths: innermost, beyond the first ring
     * refill, and the outermost */
    CHECK(!brackets(D, D, D));
    CHECK(!brackets(D, D, D + 70000));
    CHECK(!brackets(D, D, D + 500000));
    CHECK(!brackets(D, D, 2 * D - 1));
    /* an object opener deep inside: "[{]" is wrong, and "{" at the bottom */
    CHECK(!brackets(D, D, 0));
    CHECK(!brackets(D, D, 123456));
    /* exactly at and around the bit-array size */
    for (size_t d = 65530; d <= 65540; d++) {
        CHECK(brackets(d, d, SIZE_MAX));
        CHECK(!brackets(d, d, 2 * d - 1));
        CHECK(!brackets(d, d, d + 5));
    }
    /* trailing whitespace fine, trailing bracket not */
    char *s = malloc(2 * D + 1);
    memset(s, '[', D);
    memset(s + D, ']', D);
    s[2 * D] = ' ';
    CHECK(cs__json_valid(s, 2 * D + 1));
    s[2 * D] = ']';
    CHECK(!cs__json_valid(s, 2 * D + 1));
    free(s);
}

/* Kind of level i in deep_mixed: pseudo-random rather than alternating, so
 * that levels i and i + 65536 (which share a ring slot) often differ and a
 * stale slot cannot pass for a correctly recovered one. */
static bool mixed_is_object(size_t i) {
    return (((uint64_t)i * UINT64_C(0x9E3779B97F4A7C15)) >> 40) & 1;
}

/* Builds {"a\"[{\\":["]}\"{[",{"a\"[{\\": ... "x" ... ,1],"k":1} ...
 * objects and arrays mixed per mixed_is_object, depth levels.
 * The keys and array items contain brackets and escaped quotes, so that the
 * forward re-scan must skip strings correctly. Before each child comes a
 * closed sibling of the other kind, so the re-scan must keep the last
 * opener seen at a level, not the first. After each child closes, the
 * parent continues with a member of its own kind (',"k":1' for an object,
 * ',1' for an array), which is only accepted when the recovered kind is
 * right. `flip_level` (or SIZE_MAX) gets the other kind's continuation;
 * `swap_level` gets the other kind's closing bracket. */
static bool deep_mixed(size_t depth, size_t flip_level, size_t swap_level) {
    static const char obj_open[] = "{\"a\\\"[{\\\\\":";
    static const char arr_open[] = "[\"]}\\\"{[\",";
    static const char obj_more[] = ",\"k\":1";
    static const char arr_more[] = ",1";
    size_t cap = depth * 48 + 16, n = 0;
    char *s = malloc(cap);
    for (size_t i = 0; i < depth; i++) {
        bool obj = mixed_is_object(i);
        /* sibling: the kind the child at level i + 1 does not have */
        const char *sib = i + 1 < depth && !mixed_is_object(i + 1)
                              ? "{\"t\":[]}" : "[{},0]";
        n += (size_t)sprintf(s + n, obj ? "{\"s\":%s,%s" : "[%s,%s", sib,
                             obj ? obj_open + 1 : arr_open + 1);
    }
    s[n++] = '"';
    s[n++] = 'x';
    s[n++] = '"';
    for (size_t i = depth; i-- > 0;) {
        bool obj = mixed_is_object(i);
        const char *m = obj != (i == flip_level) ? obj_more : arr_more;
        size_t len = strlen(m);
        memcpy(s + n, m, len);
        n += len;
        s[n++] = obj != (i == swap_level) ? '}' : ']';
    }
    char *exact = dup_exact(s, n);
    free(s);
    bool ok = cs__json_valid(exact, n);
    free(exact);
    return ok;
}

TEST(json_deep_mixed) {
    const size_t D = 300000;
    CHECK(deep_mixed(10, SIZE_MAX, SIZE_MAX));
    CHECK(deep_mixed(D, SIZE_MAX, SIZE_MAX));
    const size_t levels[] = {0, 1, 2, 3, 1000, 65535, 65536, 100001,
                             D - 65537, D - 65536, D - 2, D - 1};
    for (size_t k = 0; k < sizeof levels / sizeof levels[0]; k++) {
        if (deep_mixed(D, levels[k], SIZE_MAX))
            CHECK_FAIL_("flip at level %zu accepted", levels[k]);
        if (deep_mixed(D, SIZE_MAX, levels[k]))
            CHECK_FAIL_("swap at level %zu accepted", levels[k]);
    }
    CHECK(!deep_mixed(5, 4, SIZE_MAX));
    CHECK(!deep_mixed(5, SIZE_MAX, 0));
}

/* ---------------------------------------- reference parser cross-check */

/* A deliberately plain recursive-descent validator, used only as an
 * oracle on small inputs. Same policy as the library: strict UTF-8 via
 * utf8proc, escaped lone surrogates accepted. */
typedef struct ref_json {
    const unsigned char *p, *end;
} ref_json;

static bool ref_value(ref_json *r);

static void ref_ws(ref_json *r) {
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool ref_peek(ref_json *r, unsigned char c) {
    return r->p < r->end && *r->p == c;
}

static bool ref_string(ref_json *r) {
    if (!ref_peek(r, '"')) return false;
    r->p++;
    while (r->p < r->end) {
        unsigned char c = *r->p;
        if (c == '"') {
            r->p++;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (r->end - r->p < 2) return false;
            unsigned char e = r->p[1];
            if (e == 'u') {
                if (r->end - r->p < 6) return false;
                for (int i = 2; i < 6; i++)
                    if (!strchr("0123456789abcdefABCDEF", r->p[i]) || !r->p[i])
                        return false;
                r->p += 6;
            } else if (e && strchr("\"\\/bfnrt", e)) {
                r->p += 2;
            } else {
                return false;
            }
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(r->p, r->end - r->p, &cp);
        if (k <= 0) return false;
        r->p += k;
    }
    return false;
}

static bool ref_isdigit(ref_json *r) {
    return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

static bool ref_number(ref_json *r) {
    if (ref_peek(r, '-')) r->p++;
    if (!ref_isdigit(r)) return false;
    bool zero = *r->p == '0';
    r->p++;
    if (!zero)
        while (ref_isdigit(r)) r->p++;
    if (ref_peek(r, '.')) {
        r->p++;
        if (!ref_isdigit(r)) return false;
        while (ref_isdigit(r)) r->p++;
    }
    if (ref_peek(r, 'e') || ref_peek(r, 'E')) {
        r->p++;
        if (ref_peek(r, '+') || ref_peek(r, '-')) r->p++;
        if (!ref_isdigit(r)) return false;
        while (ref_isdigit(r)) r->p++;
    }
    return true;
}

static bool ref_word(ref_json *r, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0) return false;
    r->p += n;
    return true;
}

static bool ref_container(ref_json *r, bool obj) {
    r->p++;
    ref_ws(r);
    if (ref_peek(r, obj ? '}' : ']')) {
        r->p++;
        return true;
    }
    for (;;) {
        if (obj) {
            if (!ref_string(r)) return false;
            ref_ws(r);
            if (!ref_peek(r, ':')) return false;
            r->p++;
            ref_ws(r);
        }
        if (!ref_value(r)) return false;
        ref_ws(r);
        if (ref_peek(r, ',')) {
            r->p++;
            ref_ws(r);
            continue;
        }
        if (!ref_peek(r, obj ? '}' : ']')) return false;
        r->p++;
        return true;
    }
}

static bool ref_value(ref_json *r) {
    if (r->p == r->end) return false;
    switch (*r->p) {
    case '{': return ref_container(r, true);
    case '[': return ref_container(r, false);
    case '"': return ref_string(r);
    case 't': return ref_word(r, "true");
    case 'f': return ref_word(r, "false");
    case 'n': return ref_word(r, "null");
    default: return ref_number(r);
    }
}

static bool ref_json_valid(const unsigned char *s, size_t n) {
    ref_json r = {s, s + n};
    ref_ws(&r);
    if (!ref_value(&r)) return false;
    ref_ws(&r);
    return r.p == r.end;
}

#define MAX_SEEDS 400
static char *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static size_t n_seeds;

static void add_seed(const char *s, size_t n) {
    if (n_seeds < MAX_SEEDS && n <= 2048) {
        seeds[n_seeds] = dup_exact(s, n);
        seed_len[n_seeds++] = n;
    }
}

static void collect_seed(const char *name, const char *data, size_t len) {
    (void)name;
    add_seed(data, len);
}

/* Random mutations of suite files and hand-made seeds: the library and the
 * reference must agree on every one. */
TEST(json_mutation_cross_check) {
    static const char *hand[] = {
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\",\"d\":-1.5e3}",
        "[true,false,null,\"\xC3\xA9\xF0\x9F\x98\x80\",{},[],0]",
        "{\"k\":{\"k\":{\"k\":[[[\"v\"]]]}}}",
        "  \"just a string with \\\" and \\\\ \"  ",
    };
    static const unsigned char alphabet[] =
        "{}[]\",:\\ -+.eE0123456789tfnrualsu\t\n\rx\x00\x1F\x7F\x80\xBF"
        "\xC3\xA9\xED\xA0\xF0\xF4\xFF";
    n_seeds = 0;
    for (size_t i = 0; i < sizeof hand / sizeof hand[0]; i++)
        add_seed(hand[i], strlen(hand[i]));
    for_each_suite_file(collect_seed); /* the suite test reports absence */
    REQUIRE(n_seeds >= 4);

    unsigned char buf[4096 + 64];
    int bad = 0;
    long accepted = 0;
    for (long iter = 0; iter < 200000; iter++) {
        size_t k = rnd_below(n_seeds), n = seed_len[k];
        memcpy(buf, seeds[k], n);
        for (size_t m = 1 + rnd_below(3); m > 0; m--) {
            unsigned char c = alphabet[rnd_below(sizeof alphabet - 1)];
            size_t at = rnd_below(n + 1);
            switch (rnd_below(3)) {
            case 0: /* replace */
                if (at < n) buf[at] = c;
                break;
            case 1: /* insert */
                if (n < 4096) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = c;
                    n++;
                }
                break;
            default: /* delete */
                if (at < n) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
                break;
            }
        }
        char *d = dup_exact(buf, n);
        bool want = ref_json_valid((const unsigned char *)d, n);
        bool got = cs__json_valid(d, n);
        accepted += got;
        if (got != want && bad++ < 5)
            fprintf(stderr, "mismatch (lib %d, ref %d): %.*s\n", got, want,
                    (int)n, d);
        free(d);
    }
    /* the reference agrees with the suite's y_/n_ verdicts too */
    for (size_t k = 0; k < n_seeds; k++) {
        if (ref_json_valid((const unsigned char *)seeds[k], seed_len[k]) !=
            cs__json_valid(seeds[k], seed_len[k]))
            bad++;
        free(seeds[k]);
    }
    CHECK_INT(bad, 0);
    CHECK(accepted > 1000); /* the mutations are not all trivially invalid */
}

static const check_test tests[] = {
    T(utf8_known_vectors),
    T(utf8_exhaustive_1_2_3_bytes),
    T(utf8_four_byte_sample),
    T(utf8_random_strings),
    T(utf8_fast_path_alignment),
    T(utf8_blocks_match_word_loop),
    T(utf8_length_multibyte),
    T(json_test_suite),
    T(json_grammar_accept),
    T(json_grammar_reject),
    T(json_string_fast_path),
    T(json_deep_arrays),
    T(json_deep_mixed),
    T(json_mutation_cross_check),
};

CHECK_MAIN(tests)
