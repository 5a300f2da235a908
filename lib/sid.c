/* SID text form: two prefix letters and 32 hex digits. Parsing and formatting
 * run on every request (several SIDs each), so both are branch-light: SSE2
 * vectors on x86-64 (where SSE2 is baseline), tables elsewhere. */
#include "sid.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if !defined(__SSE2__)
/* Hex digit values tagged with 0x10 so that the zero default of every other
 * entry means "not a hex digit". AND-ing the tagged entries of a whole SID
 * leaves 0x10 set only if every digit was valid: one test at the end instead
 * of one branch per character. */
static const uint8_t cs__hex_val[256] = {
    ['0'] = 0x10, ['1'] = 0x11, ['2'] = 0x12, ['3'] = 0x13, ['4'] = 0x14,
    ['5'] = 0x15, ['6'] = 0x16, ['7'] = 0x17, ['8'] = 0x18, ['9'] = 0x19,
    ['a'] = 0x1a, ['b'] = 0x1b, ['c'] = 0x1c, ['d'] = 0x1d, ['e'] = 0x1e,
    ['f'] = 0x1f, ['A'] = 0x1a, ['B'] = 0x1b, ['C'] = 0x1c, ['D'] = 0x1d,
    ['E'] = 0x1e, ['F'] = 0x1f,
};
#endif

#if !defined(__SSE2__)
/* Both lower-case hex digits of every byte value: formatting is one 2-byte
 * copy per input byte. */
static const char cs__hex_pairs[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
#endif

/* ASCII-only case folding: no locale, and only A-Z change, so a prefix
 * letter can never be confused with a punctuation byte that differs from it
 * by 0x20. */
static inline unsigned char cs__ascii_lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static inline int cs__prefix_ok(const char *s, char p0, char p1) {
    return cs__ascii_lower((unsigned char)s[0]) ==
               cs__ascii_lower((unsigned char)p0) &&
           cs__ascii_lower((unsigned char)s[1]) ==
               cs__ascii_lower((unsigned char)p1);
}

#if defined(__SSE2__)
/* 16 hex digits to 8 bytes: each digit's value (0-9 from '0'-'9', 10-15 from
 * 'a'-'f' after folding case with | 0x20), then pairs joined high nibble
 * first. *bad gets 0xffff... where a byte was not a hex digit. */
static inline __m128i hex16(__m128i c, __m128i *bad) {
    __m128i l = _mm_or_si128(c, _mm_set1_epi8(0x20));
    __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('0' - 1)),
                                _mm_cmplt_epi8(c, _mm_set1_epi8('9' + 1)));
    __m128i let = _mm_and_si128(_mm_cmpgt_epi8(l, _mm_set1_epi8('a' - 1)),
                                _mm_cmplt_epi8(l, _mm_set1_epi8('f' + 1)));
    *bad = _mm_or_si128(*bad, _mm_andnot_si128(_mm_or_si128(dig, let),
                                               _mm_set1_epi8(-1)));
    __m128i v = _mm_or_si128(
        _mm_and_si128(dig, _mm_sub_epi8(c, _mm_set1_epi8('0'))),
        _mm_and_si128(let, _mm_sub_epi8(l, _mm_set1_epi8('a' - 10))));
    /* 16-bit lanes hold (high digit, low digit) in memory order */
    return _mm_or_si128(
        _mm_slli_epi16(_mm_and_si128(v, _mm_set1_epi16(0x00ff)), 4),
        _mm_srli_epi16(v, 8));
}
#endif

/* Shared by parse and match. Decodes into tmp unconditionally and reports
 * validity afterwards, so the loop has no early exits. */
static inline int cs__sid_decode(const char *s, size_t n, char p0, char p1,
                                 uint8_t tmp[CS__SID_BYTES]) {
    if (n != CS__SID_STRLEN || !cs__prefix_ok(s, p0, p1)) return -1;
#if defined(__SSE2__)
    __m128i bad = _mm_setzero_si128();
    __m128i a = hex16(_mm_loadu_si128((const __m128i *)(const void *)(s + 2)),
                      &bad);
    __m128i b = hex16(_mm_loadu_si128((const __m128i *)(const void *)(s + 18)),
                      &bad);
    _mm_storeu_si128((__m128i *)(void *)tmp, _mm_packus_epi16(a, b));
    return _mm_movemask_epi8(bad) ? -1 : 0;
#else
    const unsigned char *h = (const unsigned char *)s + 2;
    unsigned ok = 0x10;
    for (size_t i = 0; i < CS__SID_BYTES; i++) {
        unsigned hi = cs__hex_val[h[2 * i]], lo = cs__hex_val[h[2 * i + 1]];
        ok &= hi & lo;
        tmp[i] = (uint8_t)(hi << 4 | (lo & 0x0f)); /* tag bit shifts out */
    }
    return ok ? 0 : -1;
#endif
}

/* out is written only on success, so a failed parse never leaves a half
 * decoded id behind in the caller's struct. */
int cs__sid_parse(const char *s, size_t n, char p0, char p1,
                  uint8_t out[CS__SID_BYTES]) {
    uint8_t tmp[CS__SID_BYTES];
    if (cs__sid_decode(s, n, p0, p1, tmp) != 0) return -1;
    memcpy(out, tmp, CS__SID_BYTES);
    return 0;
}

/* Every message of a page is formatted, so x86-64 (where SSE2 is baseline)
 * does all 32 digits in a few vector steps: split each byte into its two
 * nibbles, interleave them high first, and add '0', plus 'a' - '0' - 10
 * where a nibble exceeds 9. Elsewhere, one 2-byte copy per byte. */
void cs__sid_format(char p0, char p1, const uint8_t in[CS__SID_BYTES],
                    char out[CS__SID_STRLEN + 1]) {
    out[0] = p0;
    out[1] = p1;
#if defined(__SSE2__)
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)in);
    const __m128i low4 = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(v, low4);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
    __m128i d[2] = {_mm_unpacklo_epi8(hi, lo), _mm_unpackhi_epi8(hi, lo)};
    for (int k = 0; k < 2; k++) {
        __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(d[k], _mm_set1_epi8(9)),
                                       _mm_set1_epi8('a' - '0' - 10));
        d[k] = _mm_add_epi8(d[k], _mm_add_epi8(_mm_set1_epi8('0'), letter));
        _mm_storeu_si128((__m128i *)(void *)(out + 2 + 16 * k), d[k]);
    }
#else
    for (size_t i = 0; i < CS__SID_BYTES; i++)
        memcpy(out + 2 + 2 * i, cs__hex_pairs + 2 * in[i], 2);
#endif
    out[CS__SID_STRLEN] = '\0';
}

int cs__sid_match(const char *s, size_t n, char p0, char p1) {
    uint8_t tmp[CS__SID_BYTES];
    return cs__sid_decode(s, n, p0, p1, tmp) == 0;
}
