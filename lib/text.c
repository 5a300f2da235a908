/* Text validation: strict UTF-8 (RFC 3629) and JSON (RFC 8259).
 *
 * Both validators are hand-written byte loops with a word-at-a-time fast
 * path for the common case (plain ASCII); UTF-8 of 16 bytes or more (message
 * bodies) is checked in 16-byte SSSE3 blocks where the CPU has them, with
 * the same verdict as the loop on every input (tests compare the two). They
 * never allocate, never recurse and do no I/O. The UTF-8 rules are the "well-formed byte
 * sequences" table of the Unicode standard (Table 3-7), which is RFC 3629
 * restated as byte ranges; the tests cross-check every 1-, 2- and 3-byte
 * sequence (and a large 4-byte sample) against utf8proc_iterate. The table
 * form is used instead of calling utf8proc here because it is branch-light,
 * inlined into the JSON string loop, and measurably faster than a library
 * call per code point. */
#include "text.h"

#include <stdint.h>
#include <string.h>

#define CS__ONES  UINT64_C(0x0101010101010101)
#define CS__HIGHS UINT64_C(0x8080808080808080)

typedef unsigned char cs__byte;

/* Unaligned 64-bit load; byte order does not matter to the callers, which
 * only ask "does any byte of the word have property X". */
static inline uint64_t cs__load64(const cs__byte *p) {
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* ---------------------------------------------------------------- UTF-8 */

static inline int cs__is_cont(cs__byte b) { return (b & 0xC0) == 0x80; }

/* Length (2..4) of the well-formed multi-byte sequence starting at p, or 0
 * when it is malformed or truncated. Precondition: avail >= 1, p[0] >= 0x80.
 *
 *   C2..DF  80..BF
 *   E0      A0..BF  80..BF          (A0: no overlong 3-byte forms)
 *   E1..EC  80..BF  80..BF
 *   ED      80..9F  80..BF          (9F: no surrogates D800..DFFF)
 *   EE..EF  80..BF  80..BF
 *   F0      90..BF  80..BF  80..BF  (90: no overlong 4-byte forms)
 *   F1..F3  80..BF  80..BF  80..BF
 *   F4      80..8F  80..BF  80..BF  (8F: nothing above U+10FFFF)
 *
 * Everything else is rejected: stray continuation bytes 80..BF, the
 * overlong leads C0/C1, and F5..FF. */
static inline size_t cs__utf8_seq(const cs__byte *p, size_t avail) {
    unsigned c = p[0], lo, hi;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return avail >= 2 && cs__is_cont(p[1]) ? 2 : 0;
    if (c < 0xF0) {
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
        if (avail < 3 || p[1] < lo || p[1] > hi || !cs__is_cont(p[2]))
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
        if (avail < 4 || p[1] < lo || p[1] > hi || !cs__is_cont(p[2]) ||
            !cs__is_cont(p[3]))
            return 0;
        return 4;
    }
    return 0;
}

bool cs__utf8_valid_sw(const char *s, size_t n) {
    const cs__byte *p = (const cs__byte *)s, *end = p + n;
    while (p < end) {
        /* Fast path: skip whole words of ASCII (NUL included). */
        while ((size_t)(end - p) >= 8 && !(cs__load64(p) & CS__HIGHS)) p += 8;
        /* The next word (or the tail) holds a high byte: walk it bytewise,
         * then go back to the fast path. A sequence may run past `stop`. */
        const cs__byte *stop = (size_t)(end - p) >= 8 ? p + 8 : end;
        while (p < stop) {
            if (*p < 0x80) {
                p++;
                continue;
            }
            size_t len = cs__utf8_seq(p, (size_t)(end - p));
            if (!len) return false;
            p += len;
        }
    }
    return true;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <tmmintrin.h>

/* The same rules 16 bytes at a time with SSSE3 byte shuffles, after the
 * "lookup" method of Keiser and Lemire ("Validating UTF-8 in less than one
 * instruction per byte", Software: Practice and Experience, 2021). Every
 * error of a byte pair (the byte before, the byte) shows in three table
 * lookups: by the high and the low nibble of the byte before and by the
 * high nibble of the byte; each names the error classes its nibble allows,
 * and a class present in all three is an error. */
enum {
    U8_SHORT = 0x01,     /* a lead not followed by a continuation */
    U8_LONG = 0x02,      /* a continuation after ASCII */
    U8_OVER3 = 0x04,     /* E0 80..9F: overlong 3-byte form */
    U8_LARGE = 0x08,     /* F4 90..BF, F5..FF + 80..BF: above U+10FFFF */
    U8_SURR = 0x10,      /* ED A0..BF: a surrogate */
    U8_OVER2 = 0x20,     /* C0, C1: overlong 2-byte form */
    U8_L1000 = 0x40,     /* F0 80..8F (overlong 4-byte), F5..FF 80..8F */
    U8_TWO = 0x80,       /* a continuation after a continuation */
    U8_CARRY = U8_SHORT | U8_LONG | U8_TWO /* whatever the low nibble */
};

/* A continuation after a continuation is an error unless it is the third
 * or fourth byte of a sequence: the byte two before is E0..FF or the byte
 * three before is F0..FF. That is told apart by the bytes 2 and 3 back,
 * and the U8_TWO bit is flipped by it. */
__attribute__((target("ssse3"))) static inline __m128i
u8_block(__m128i in, __m128i prev) {
    const __m128i lo4 = _mm_set1_epi8(0x0f);
    const __m128i by_prev_high = _mm_setr_epi8(
        U8_LONG, U8_LONG, U8_LONG, U8_LONG, U8_LONG, U8_LONG, U8_LONG, U8_LONG,
        (char)U8_TWO, (char)U8_TWO, (char)U8_TWO, (char)U8_TWO,
        U8_SHORT | U8_OVER2, U8_SHORT, U8_SHORT | U8_OVER3 | U8_SURR,
        U8_SHORT | U8_LARGE | U8_L1000);
    const __m128i by_prev_low = _mm_setr_epi8(
        (char)(U8_CARRY | U8_OVER3 | U8_OVER2 | U8_L1000),
        (char)(U8_CARRY | U8_OVER2), (char)U8_CARRY, (char)U8_CARRY,
        (char)(U8_CARRY | U8_LARGE), (char)(U8_CARRY | U8_LARGE | U8_L1000),
        (char)(U8_CARRY | U8_LARGE | U8_L1000),
        (char)(U8_CARRY | U8_LARGE | U8_L1000),
        (char)(U8_CARRY | U8_LARGE | U8_L1000),
        (char)(U8_CARRY | U8_LARGE | U8_L1000),
        (char)(U8_CARRY | U8_LARGE | U8_L1000),
        (char)(U8_CARRY | U8_LARGE | U8_L1000),
        (char)(U8_CARRY | U8_LARGE | U8_L1000),
        (char)(U8_CARRY | U8_LARGE | U8_L1000 | U8_SURR),
        (char)(U8_CARRY | U8_LARGE | U8_L1000),
        (char)(U8_CARRY | U8_LARGE | U8_L1000));
    const __m128i by_high = _mm_setr_epi8(
        U8_SHORT, U8_SHORT, U8_SHORT, U8_SHORT, U8_SHORT, U8_SHORT, U8_SHORT,
        U8_SHORT,
        (char)(U8_LONG | U8_OVER2 | U8_TWO | U8_OVER3 | U8_L1000),
        (char)(U8_LONG | U8_OVER2 | U8_TWO | U8_OVER3 | U8_LARGE),
        (char)(U8_LONG | U8_OVER2 | U8_TWO | U8_SURR | U8_LARGE),
        (char)(U8_LONG | U8_OVER2 | U8_TWO | U8_SURR | U8_LARGE), U8_SHORT,
        U8_SHORT, U8_SHORT, U8_SHORT);
    __m128i prev1 = _mm_alignr_epi8(in, prev, 15);
    __m128i err = _mm_and_si128(
        _mm_and_si128(
            _mm_shuffle_epi8(by_prev_high,
                             _mm_and_si128(_mm_srli_epi16(prev1, 4), lo4)),
            _mm_shuffle_epi8(by_prev_low, _mm_and_si128(prev1, lo4))),
        _mm_shuffle_epi8(by_high, _mm_and_si128(_mm_srli_epi16(in, 4), lo4)));
    __m128i third = _mm_subs_epu8(_mm_alignr_epi8(in, prev, 14),
                                  _mm_set1_epi8((char)(0xE0 - 1)));
    __m128i fourth = _mm_subs_epu8(_mm_alignr_epi8(in, prev, 13),
                                   _mm_set1_epi8((char)(0xF0 - 1)));
    /* third and fourth are at most 0x20: positive as signed bytes */
    __m128i must = _mm_and_si128(
        _mm_cmpgt_epi8(_mm_or_si128(third, fourth), _mm_setzero_si128()),
        _mm_set1_epi8((char)U8_TWO));
    return _mm_xor_si128(err, must);
}

/* A block ending inside a sequence: its last byte C0..FF, the one before
 * E0..FF or the one before that F0..FF; nonzero bytes where it does. */
__attribute__((target("ssse3"))) static inline __m128i u8_open_end(__m128i in) {
    return _mm_subs_epu8(in, _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           -1, -1, -1, -1, (char)(0xF0 - 1),
                                           (char)(0xE0 - 1), (char)(0xC0 - 1)));
}

/* n >= 16. An ASCII block only needs the block before it to be complete.
 * The last partial block is validated from a zero-padded copy: the zeros
 * are ASCII, so a sequence cut by the end fails as one cut by ASCII. */
__attribute__((target("ssse3"))) static bool utf8_valid_ssse3(const cs__byte *p,
                                                               size_t n) {
    __m128i prev = _mm_setzero_si128(), err = prev, open = prev;
    size_t i = 0;
    for (;;) {
        __m128i in;
        if (i + 16 <= n) {
            in = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        } else if (i < n) {
            cs__byte last[16] = {0};
            memcpy(last, p + i, n - i);
            in = _mm_loadu_si128((const __m128i *)(const void *)last);
        } else {
            break;
        }
        if (_mm_movemask_epi8(in)) {
            err = _mm_or_si128(err, u8_block(in, prev));
            open = u8_open_end(in);
        } else {
            err = _mm_or_si128(err, open);
            open = _mm_setzero_si128();
        }
        prev = in;
        i += 16;
    }
    err = _mm_or_si128(err, open);
    return _mm_movemask_epi8(_mm_cmpeq_epi8(err, _mm_setzero_si128())) ==
           0xFFFF;
}

static int ssse3_state; /* 0: unknown, 1: yes, 2: no (a benign race) */

static bool have_ssse3(void) {
    int st = __atomic_load_n(&ssse3_state, __ATOMIC_RELAXED);
    if (!st) {
        __builtin_cpu_init();
        st = __builtin_cpu_supports("ssse3") ? 1 : 2;
        __atomic_store_n(&ssse3_state, st, __ATOMIC_RELAXED);
    }
    return st == 1;
}
#endif

bool cs__utf8_valid(const char *s, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* Shorter strings (names, identities) stay on the word loop. */
    if (n >= 16 && have_ssse3())
        return utf8_valid_ssse3((const cs__byte *)s, n);
#endif
    return cs__utf8_valid_sw(s, n);
}

size_t cs__utf8_length(const char *s, size_t n) {
    if (!cs__utf8_valid(s, n)) return SIZE_MAX;
    /* Valid input: every code point has exactly one non-continuation byte,
     * so count = n - (continuation bytes, 10xxxxxx). Per word, a byte is a
     * continuation when bit 7 is set and bit 6 clear; `w << 1` brings bit 6
     * of each byte under bit 7 of the same byte. Summing the 0/1 flags by a
     * multiply needs no popcount builtin (at most 8, no carry across). */
    const cs__byte *p = (const cs__byte *)s;
    size_t cont = 0, i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w = cs__load64(p + i);
        uint64_t flags = (w & ~(w << 1) & CS__HIGHS) >> 7;
        cont += (size_t)((flags * CS__ONES) >> 56);
    }
    for (; i < n; i++) cont += (size_t)cs__is_cont(p[i]);
    return n - cont;
}

/* ------------------------------------------------------- JSON: scalars */

/* Bytes that may appear unescaped in a JSON string and need no further
 * check: 0x20..0x7F except '"' (0x22) and '\\' (0x5C). Control characters
 * are forbidden, and bytes >= 0x80 go through the UTF-8 check. */
static const cs__byte cs__json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 70 */
    /* 80..FF: all zero (UTF-8 lead and continuation bytes) */
};

/* True when none of the 8 bytes of w needs attention inside a string, i.e.
 * all are cs__json_plain. Classic SWAR tests (exact as booleans):
 *   haszero(v)   = (v - 0x01..) & ~v & 0x80..   some byte of v is 0
 *   hasless(v,k) = (v - k*0x01..) & ~v & 0x80.. some byte < k, exact when
 *                  all bytes are < 0x80, which the `w` term covers: if any
 *                  byte is >= 0x80 the word is rejected anyway. */
static inline bool cs__word_plain(uint64_t w) {
    uint64_t q = w ^ (CS__ONES * '"'), b = w ^ (CS__ONES * '\\');
    uint64_t t = w | ((q - CS__ONES) & ~q) | ((b - CS__ONES) & ~b) |
                 ((w - CS__ONES * 0x20) & ~w);
    return !(t & CS__HIGHS);
}

static inline int cs__is_digit(cs__byte c) { return (unsigned)(c - '0') < 10; }

static inline int cs__is_hex(cs__byte c) {
    return cs__is_digit(c) || (unsigned)((c | 0x20) - 'a') < 6;
}

/* p is at a backslash inside a string; returns the byte after the escape
 * or NULL. \uXXXX takes exactly four hex digits. Escaped surrogates are not
 * paired up: RFC 8259 (section 8.2) makes "\ud800" grammatically valid, and
 * this validator checks grammar, so lone or inverted surrogate escapes are
 * accepted. Raw (UTF-8 encoded) surrogates are rejected by the UTF-8 check. */
static inline const cs__byte *cs__json_escape(const cs__byte *p,
                                              const cs__byte *end) {
    if (end - p < 2) return NULL;
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b':
    case 'f': case 'n': case 'r': case 't':
        return p + 2;
    case 'u':
        if (end - p < 6 || !cs__is_hex(p[2]) || !cs__is_hex(p[3]) ||
            !cs__is_hex(p[4]) || !cs__is_hex(p[5]))
            return NULL;
        return p + 6;
    default:
        return NULL;
    }
}

/* p is just after an opening quote; returns the byte after the closing
 * quote, or NULL on a bad escape, raw control character (NUL included),
 * malformed UTF-8 or a missing closing quote. */
static const cs__byte *cs__json_string(const cs__byte *p, const cs__byte *end) {
    for (;;) {
        /* Runs of plain bytes: a word at a time, then bytewise up to the
         * first byte that needs a decision. */
        while ((size_t)(end - p) >= 8 && cs__word_plain(cs__load64(p))) p += 8;
        while (p < end && cs__json_plain[*p]) p++;
        if (p == end) return NULL;
        cs__byte c = *p;
        if (c == '"') return p + 1;
        if (c == '\\') {
            p = cs__json_escape(p, end);
            if (!p) return NULL;
        } else if (c < 0x80) {
            return NULL; /* control character 00..1F */
        } else {
            size_t len = cs__utf8_seq(p, (size_t)(end - p));
            if (!len) return NULL;
            p += len;
        }
    }
}

static inline const cs__byte *cs__json_digits(const cs__byte *p,
                                              const cs__byte *end) {
    while (p < end && cs__is_digit(*p)) p++;
    return p;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?  -- grammar only, never
 * converted, so huge mantissas and exponents are fine. Returns the byte
 * after the number or NULL. Whatever follows (e.g. the "1" of "01") is
 * judged by the caller as the next token, which rejects it. */
static const cs__byte *cs__json_number(const cs__byte *p, const cs__byte *end) {
    if (*p == '-') p++;
    if (p == end) return NULL;
    if (*p == '0')
        p++;
    else if (cs__is_digit(*p))
        p = cs__json_digits(p + 1, end);
    else
        return NULL;
    if (p < end && *p == '.') {
        p++;
        if (p == end || !cs__is_digit(*p)) return NULL;
        p = cs__json_digits(p + 1, end);
    }
    if (p < end && (*p | 0x20) == 'e') { /* 'e' or 'E' */
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p == end || !cs__is_digit(*p)) return NULL;
        p = cs__json_digits(p + 1, end);
    }
    return p;
}

static inline const cs__byte *cs__json_literal(const cs__byte *p,
                                               const cs__byte *end,
                                               const char *lit, size_t len) {
    if ((size_t)(end - p) < len || memcmp(p, lit, len) != 0) return NULL;
    return p + len;
}

/* RFC 8259 whitespace: space, tab, LF, CR. Nothing else (no NUL, no VT/FF,
 * no U+FEFF byte-order mark). */
static inline const cs__byte *cs__json_ws(const cs__byte *p,
                                          const cs__byte *end) {
    const uint64_t ws = (UINT64_C(1) << ' ') | (UINT64_C(1) << '\t') |
                        (UINT64_C(1) << '\n') | (UINT64_C(1) << '\r');
    while (p < end && *p <= ' ' && ((ws >> *p) & 1)) p++;
    return p;
}

/* ---------------------------------------------- JSON: container stack
 *
 * The only thing the parser must remember per nesting level is whether the
 * container is an object or an array (to pick the closing bracket and what
 * follows a comma). That is one bit per level, kept in a fixed bit array on
 * the C stack (CS__STACK_LEVELS bits = 8 KiB), used as a ring: level i lives
 * in slot i % CS__STACK_LEVELS, and the bits of the last CS__STACK_LEVELS
 * open levels, [lo, depth), are always held.
 *
 * Deeper than that, pushing overwrites the slot of the level CS__STACK_LEVELS
 * below and raises `lo`. When a pop uncovers a level below `lo`, the kinds of
 * the innermost CS__STACK_LEVELS open levels are recomputed by re-scanning the
 * already validated input from the start (cs__stack_refill). The prefix is
 * known to be valid, so that scan only has to skip strings and count
 * brackets.
 *
 * Trade-off: memory is constant (no allocation, no recursion) and any depth
 * is handled. Up to CS__STACK_LEVELS (65536) levels -- anything a 16 KiB
 * attribute can hold, and far beyond any realistic document -- no refill
 * ever happens and validation is a single O(n) pass. Beyond it, a refill
 * costs O(position) and is separated from the previous one by at least
 * CS__STACK_LEVELS closing brackets, so the worst case is O(n * n / 65536):
 * a pathological 4 MiB input costs at most ~64 extra linear scans of a
 * simple loop. The alternative, a bounded depth, would reject valid JSON. */

/* Overridable only so that tests can exercise the ring with tiny sizes. */
#ifndef CS__STACK_LEVELS
#define CS__STACK_LEVELS 65536u /* power of two, >= 64 */
#endif

typedef struct cs__stack {
    size_t depth; /* number of open containers */
    size_t lo;    /* lowest level whose bit is held */
    uint64_t bits[CS__STACK_LEVELS / 64];
} cs__stack;

/* Store kind (1 = object, 0 = array) for level i, whose word is known to
 * have been written before (see cs__stack_push). */
static inline void cs__stack_set(cs__stack *st, size_t i, unsigned kind) {
    size_t slot = i & (CS__STACK_LEVELS - 1);
    uint64_t m = UINT64_C(1) << (slot & 63);
    uint64_t *w = &st->bits[slot >> 6];
    *w = kind ? *w | m : *w & ~m;
}

static inline unsigned cs__stack_top(const cs__stack *st) {
    size_t slot = (st->depth - 1) & (CS__STACK_LEVELS - 1);
    return (unsigned)(st->bits[slot >> 6] >> (slot & 63)) & 1;
}

/* The bit array is not zeroed per call (8 KiB of memset would dominate for
 * small documents). Instead, the first pass through each word writes it
 * whole: levels are pushed in order, so level 64k (k < CS__STACK_LEVELS/64)
 * is always pushed before any other level of word k, and at that moment no
 * other level of that word is open, so overwriting the word loses nothing. */
static inline void cs__stack_push(cs__stack *st, unsigned kind) {
    size_t i = st->depth++;
    if (i < CS__STACK_LEVELS && (i & 63) == 0)
        st->bits[i >> 6] = kind;
    else
        cs__stack_set(st, i, kind);
    if (st->depth - st->lo > CS__STACK_LEVELS)
        st->lo = st->depth - CS__STACK_LEVELS;
}

/* Rebuild the bits of the innermost CS__STACK_LEVELS open levels from the
 * valid prefix s[0..pos). The last opener seen at level i before pos is the
 * container open at level i now; later openers at that level overwrite
 * earlier (closed) ones. Levels outside [lo, top] are not written, so ring
 * slots cannot alias. */
static void cs__stack_refill(cs__stack *st, const cs__byte *s,
                             const cs__byte *pos) {
    size_t top = st->depth - 1;
    size_t lo = top + 1 > CS__STACK_LEVELS ? top + 1 - CS__STACK_LEVELS : 0;
    size_t level = 0;
    for (const cs__byte *p = s; p < pos; p++) {
        switch (*p) {
        case '"': /* skip the string; escapes never hide a bare quote */
            for (p++; p < pos && *p != '"'; p++)
                if (*p == '\\') p++;
            break;
        case '[':
        case '{':
            if (level >= lo && level <= top)
                cs__stack_set(st, level, *p == '{');
            level++;
            break;
        case ']':
        case '}':
            level--;
            break;
        default:
            break;
        }
    }
    st->lo = lo;
}

/* Pop the innermost container; p is just past its closing bracket. */
static inline void cs__stack_pop(cs__stack *st, const cs__byte *s,
                                 const cs__byte *p) {
    st->depth--;
    if (st->depth > 0 && st->depth - 1 < st->lo) cs__stack_refill(st, s, p);
}

/* ------------------------------------------------------ JSON: driver */

enum cs__json_state {
    CS__J_VALUE,        /* a value is required */
    CS__J_ARRAY_FIRST,  /* after '[': a value or ']' */
    CS__J_OBJECT_FIRST, /* after '{': a key or '}' */
    CS__J_KEY,          /* after ',' in an object: a key */
    CS__J_COLON,        /* after a key: ':' */
    CS__J_AFTER         /* after a value: ',' or the closer, or the end */
};

/* One value starting at p (not whitespace). Containers are only opened
 * here (pushed) and the state machine continues inside them; scalars are
 * consumed whole. Returns the next position or NULL. */
static inline const cs__byte *cs__json_value(cs__stack *st, const cs__byte *p,
                                             const cs__byte *end,
                                             enum cs__json_state *state) {
    *state = CS__J_AFTER;
    switch (*p) {
    case '[':
        cs__stack_push(st, 0);
        *state = CS__J_ARRAY_FIRST;
        return p + 1;
    case '{':
        cs__stack_push(st, 1);
        *state = CS__J_OBJECT_FIRST;
        return p + 1;
    case '"':
        return cs__json_string(p + 1, end);
    case 't':
        return cs__json_literal(p, end, "true", 4);
    case 'f':
        return cs__json_literal(p, end, "false", 5);
    case 'n':
        return cs__json_literal(p, end, "null", 4);
    default:
        return cs__json_number(p, end); /* rejects non-number starts */
    }
}

/* Iterative: the explicit state plus the bit stack replace the call stack
 * of a recursive-descent parser, so C-stack use is constant at any depth. */
bool cs__json_valid(const char *s, size_t n) {
    const cs__byte *const base = (const cs__byte *)s;
    const cs__byte *p = base, *end = base + n;
    enum cs__json_state state = CS__J_VALUE;
    cs__stack st;
    st.depth = 0;
    st.lo = 0;

    for (;;) {
        p = cs__json_ws(p, end);
        if (p == end) return state == CS__J_AFTER && st.depth == 0;
        cs__byte c = *p;
        if (state == CS__J_ARRAY_FIRST || state == CS__J_OBJECT_FIRST) {
            if (c == (state == CS__J_ARRAY_FIRST ? ']' : '}')) {
                cs__stack_pop(&st, base, ++p); /* empty container */
                state = CS__J_AFTER;
                continue;
            }
            state = state == CS__J_ARRAY_FIRST ? CS__J_VALUE : CS__J_KEY;
        }
        switch (state) {
        case CS__J_VALUE:
            p = cs__json_value(&st, p, end, &state);
            break;
        case CS__J_KEY:
            p = c == '"' ? cs__json_string(p + 1, end) : NULL;
            state = CS__J_COLON;
            break;
        case CS__J_COLON:
            p = c == ':' ? p + 1 : NULL;
            state = CS__J_VALUE;
            break;
        default: /* CS__J_AFTER */
            if (st.depth == 0) return false; /* trailing garbage */
            unsigned obj = cs__stack_top(&st);
            if (c == ',') {
                p++;
                state = obj ? CS__J_KEY : CS__J_VALUE;
            } else if (c == (obj ? '}' : ']')) {
                cs__stack_pop(&st, base, ++p);
            } else {
                return false;
            }
            break;
        }
        if (!p) return false;
    }
}
