/* ISO 8601 / RFC 3339 date-times <-> Unix seconds, proleptic Gregorian.
 *
 * Calendar arithmetic follows the shape of Howard Hinnant's days_from_civil /
 * civil_from_days: years are counted from March so the leap day falls at the
 * end of the year, and days are grouped into 400-year eras of 146097 days,
 * inside which everything is small non-negative integer arithmetic. No libc
 * time functions: they depend on TZ, locale and a platform time_t range. */
#include "isotime.h"

#include <string.h>

#define CS__DAY_SECS 86400
#define CS__ERA_DAYS 146097 /* days in 400 Gregorian years */

/* Days from 0000-03-01 to 1970-01-01. */
#define CS__EPOCH_FROM_MAR0 719468
/* Days from 0000-03-01 to 0001-01-01 (March..December of year 0). */
#define CS__JAN1_FROM_MAR0 306

/* Length of the fixed part "YYYY-MM-DDTHH:MM:SS". */
#define CS__FIXED_LEN 19

static inline int cs__is_leap(unsigned y) {
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static inline unsigned cs__days_in_month(unsigned y, unsigned m) {
    static const unsigned char dim[13] = {0,  31, 28, 31, 30, 31, 30,
                                          31, 31, 30, 31, 30, 31};
    return m == 2 ? 28u + (unsigned)cs__is_leap(y) : dim[m];
}

/* Days since 1970-01-01 of a valid y-m-d, y in 0..9999. The year is biased
 * by one era (400 years) so that January and February of year 0, which
 * belong to March-based year -1, still divide as non-negative numbers. */
static int64_t cs__days_from_civil(unsigned y, unsigned m, unsigned d) {
    unsigned my = y + 400 - (m <= 2);            /* March-based, biased */
    unsigned era = my / 400;
    unsigned yoe = my - era * 400;               /* 0..399 */
    unsigned mp = m > 2 ? m - 3 : m + 9;         /* March = 0 */
    unsigned doy = (153 * mp + 2) / 5 + d - 1;   /* 0..365 */
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * CS__ERA_DAYS + doe - CS__ERA_DAYS -
           CS__EPOCH_FROM_MAR0;
}

/* Reads exactly k ASCII digits. Anything else, NUL included, fails. */
static inline int cs__digits(const char *s, unsigned k, unsigned *out) {
    unsigned v = 0;
    for (unsigned i = 0; i < k; i++) {
        unsigned dg = (unsigned)(unsigned char)s[i] - '0';
        if (dg > 9) return -1;
        v = v * 10 + dg;
    }
    *out = v;
    return 0;
}

typedef struct cs__civil {
    unsigned y, mo, d, h, mi, s;
} cs__civil;

/* "YYYY-MM-DDTHH:MM:SS" at the start of s (caller checked the length);
 * digits and separators only, ranges are checked later. */
static int cs__parse_fixed(const char *s, cs__civil *c) {
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    if (cs__digits(s, 4, &c->y) || cs__digits(s + 5, 2, &c->mo) ||
        cs__digits(s + 8, 2, &c->d) || cs__digits(s + 11, 2, &c->h) ||
        cs__digits(s + 14, 2, &c->mi) || cs__digits(s + 17, 2, &c->s))
        return -1;
    return 0;
}

/* Leap seconds (":60") are rejected: Unix time cannot represent them, and
 * folding them into the next second would make parse non-injective. */
static int cs__civil_valid(const cs__civil *c) {
    return c->mo >= 1 && c->mo <= 12 && c->d >= 1 &&
           c->d <= cs__days_in_month(c->y, c->mo) && c->h <= 23 &&
           c->mi <= 59 && c->s <= 59;
}

/* s[0..n) must be exactly one zone designator. Sets *east to the zone's
 * offset east of UTC in seconds (local = UTC + east). */
static int cs__parse_zone(const char *s, size_t n, int32_t *east) {
    if (n == 1 && (s[0] == 'Z' || s[0] == 'z')) {
        *east = 0;
        return 0;
    }
    if (n < 3 || (s[0] != '+' && s[0] != '-')) return -1;
    unsigned hh, mm = 0;
    if (cs__digits(s + 1, 2, &hh)) return -1;
    if (n == 6) { /* +HH:MM */
        if (s[3] != ':' || cs__digits(s + 4, 2, &mm)) return -1;
    } else if (n == 5) { /* +HHMM */
        if (cs__digits(s + 3, 2, &mm)) return -1;
    } else if (n != 3) { /* +HH */
        return -1;
    }
    if (hh > 23 || mm > 59) return -1;
    int32_t v = (int32_t)(hh * 3600 + mm * 60);
    *east = s[0] == '-' ? -v : v;
    return 0;
}

int cs__time_parse(const char *s, size_t n, int64_t *out) {
    cs__civil c;
    if (n <= CS__FIXED_LEN || cs__parse_fixed(s, &c) || !cs__civil_valid(&c))
        return -1;

    /* Optional fraction: at least one digit, any number of them, dropped.
     * Dropping truncates towards the past, as the header asks. */
    size_t i = CS__FIXED_LEN;
    if (s[i] == '.') {
        size_t first = ++i;
        while (i < n && (unsigned)(unsigned char)s[i] - '0' <= 9) i++;
        if (i == first) return -1;
    }

    int32_t east;
    if (i >= n || cs__parse_zone(s + i, n - i, &east)) return -1;

    /* Range is checked on the UTC value: year 0000 late on Dec 31 with a
     * negative offset is 0001-01-01 UTC and is accepted; 0001-01-01T00:00
     * with a positive offset lies before the range and is not. */
    int64_t t = cs__days_from_civil(c.y, c.mo, c.d) * CS__DAY_SECS +
                (int64_t)(c.h * 3600 + c.mi * 60 + c.s) - east;
    if (t < CS__TIME_MIN || t > CS__TIME_MAX) return -1;
    *out = t;
    return 0;
}

/* "00".."99": one 2-byte copy per field instead of a divide-by-10 chain. */
static const char cs__pairs[201] =
    "0001020304050607080910111213141516171819"
    "2021222324252627282930313233343536373839"
    "4041424344454647484950515253545556575859"
    "6061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static inline void cs__put2(char *p, unsigned v) {
    memcpy(p, cs__pairs + 2 * v, 2);
}

void cs__time_format(int64_t t, char out[CS__TIME_STRLEN + 1]) {
    /* Out of range breaks the contract; clamping still yields a well-formed
     * 20-character time instead of a garbled year, at the cost of two
     * predictable compares. */
    if (t < CS__TIME_MIN) t = CS__TIME_MIN;
    if (t > CS__TIME_MAX) t = CS__TIME_MAX;

    /* Counting from 0001-01-01 keeps every quantity non-negative, so plain
     * unsigned division (multiply-by-reciprocal) replaces floor division. */
    uint64_t u = (uint64_t)(t - CS__TIME_MIN);
    uint32_t z = (uint32_t)(u / CS__DAY_SECS) + CS__JAN1_FROM_MAR0;
    uint32_t sod = (uint32_t)(u % CS__DAY_SECS);

    uint32_t era = z / CS__ERA_DAYS;
    uint32_t doe = z - era * CS__ERA_DAYS;                  /* 0..146096 */
    /* Years of era: remove the leap days (every 4th year, except every
     * 100th, except the 400th) then divide by a plain 365. */
    uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* 0..365 */
    uint32_t mp = (5 * doy + 2) / 153;                      /* March = 0 */
    uint32_t d = doy - (153 * mp + 2) / 5 + 1;
    uint32_t m = mp < 10 ? mp + 3 : mp - 9;
    uint32_t y = era * 400 + yoe + (m <= 2);

    uint32_t hh = sod / 3600, rem = sod % 3600;
    cs__put2(out, y / 100);
    cs__put2(out + 2, y % 100);
    out[4] = '-';
    cs__put2(out + 5, m);
    out[7] = '-';
    cs__put2(out + 8, d);
    out[10] = 'T';
    cs__put2(out + 11, hh);
    out[13] = ':';
    cs__put2(out + 14, rem / 60);
    out[16] = ':';
    cs__put2(out + 17, rem % 60);
    out[19] = 'Z';
    out[CS__TIME_STRLEN] = '\0';
}
