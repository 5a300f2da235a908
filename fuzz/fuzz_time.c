/* cs__time_parse / cs__time_format against an independent reference: a
 * field-by-field parser written from the grammar in isotime.h, and calendar
 * arithmetic by whole-year day counts (Gregorian, year 0 leap) rather than
 * the library's March-based eras. Checks:
 *  - the library accepts exactly what the reference accepts, with the same
 *    value;
 *  - every accepted value formats as the reference formats it and parses
 *    back to itself;
 *  - any in-range value (taken from the input bytes) formats and parses
 *    back; out-of-range values format as the clamped bound;
 *  - the public wrappers (cs_parse_date, cs_format_date) agree. */
#include "fuzz.h"
#include "internal.h"

#include <string.h>

#define DAYS_0001_TO_1970 INT64_C(719162)

static bool leap(int64_t y) {
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int month_days(int64_t y, int m) {
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : dim[m - 1];
}

/* Days from 0001-01-01 to y-01-01 (y in 0..10000). */
static int64_t days_before_year(int64_t y) {
    if (y == 0) return -366; /* year 0 is a leap year */
    int64_t p = y - 1;
    return 365 * p + p / 4 - p / 100 + p / 400;
}

static int64_t ref_days(int64_t y, int m, int d) {
    int64_t n = days_before_year(y);
    for (int k = 1; k < m; k++) n += month_days(y, k);
    return n + d - 1 - DAYS_0001_TO_1970;
}

static bool digits(const char *s, int k, int *out) {
    int v = 0;
    for (int i = 0; i < k; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool ref_parse(const char *s, size_t n, int64_t *out) {
    int y, mo, d, h, mi, se;
    if (n < 20) return false;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
        s[16] != ':' || !digits(s + 17, 2, &se))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 ||
        mi > 59 || se > 59)
        return false;
    size_t i = 19;
    if (s[i] == '.') {
        size_t j = i + 1;
        while (j < n && s[j] >= '0' && s[j] <= '9') j++;
        if (j == i + 1) return false;
        i = j;
    }
    const char *z = s + i;
    size_t zl = n - i;
    int64_t east;
    if (zl == 1 && (z[0] == 'Z' || z[0] == 'z')) {
        east = 0;
    } else {
        int zh, zm = 0;
        if (zl < 3 || (z[0] != '+' && z[0] != '-') || !digits(z + 1, 2, &zh))
            return false;
        if (zl == 6) {
            if (z[3] != ':' || !digits(z + 4, 2, &zm)) return false;
        } else if (zl == 5) {
            if (!digits(z + 3, 2, &zm)) return false;
        } else if (zl != 3) {
            return false;
        }
        if (zh > 23 || zm > 59) return false;
        east = (z[0] == '-' ? -1 : 1) * (int64_t)(zh * 3600 + zm * 60);
    }
    int64_t t = ref_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - east;
    if (t < CS__TIME_MIN || t > CS__TIME_MAX) return false;
    *out = t;
    return true;
}

/* Formats an in-range t by searching the year, then walking the months. */
static void ref_format(int64_t t, char out[64]) {
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sod = t - days * 86400;
    int64_t dd = days + DAYS_0001_TO_1970; /* days since 0001-01-01 */
    int64_t lo = 1, hi = 9999;             /* last year whose start <= dd */
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (days_before_year(mid) <= dd)
            lo = mid;
        else
            hi = mid - 1;
    }
    int64_t y = lo, rem = dd - days_before_year(y);
    int m = 1;
    while (rem >= month_days(y, m)) rem -= month_days(y, m++);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, m,
             (int)rem + 1, (int)(sod / 3600), (int)(sod / 60 % 60),
             (int)(sod % 60));
}

static void check_format(int64_t t) {
    char got[CS__TIME_STRLEN + 1], want[64], pub[CS_DATE_BUFSZ];
    memset(got, 'x', sizeof got);
    cs__time_format(t, got);
    ref_format(t, want);
    FZ_CHECK(got[CS__TIME_STRLEN] == '\0' && strcmp(got, want) == 0,
             "format(%lld) = %.21s, reference %s", (long long)t, got, want);
    cs_format_date(t, pub);
    FZ_CHECK(strcmp(pub, want) == 0, "cs_format_date(%lld) = %s",
             (long long)t, pub);
    int64_t back = 0;
    FZ_CHECK(cs__time_parse(got, CS__TIME_STRLEN, &back) == 0 && back == t,
             "parse(format(%lld)) = %lld", (long long)t, (long long)back);
    int64_t pb = 0;
    FZ_CHECK(cs_parse_date(cs_str_c(got), &pb) == CS_OK && pb == t,
             "cs_parse_date(%s)", got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fz_dup(data, size);
    int64_t got = INT64_MIN, want = INT64_MIN;
    bool ok = cs__time_parse(s, size, &got) == 0;
    bool rok = ref_parse(s, size, &want);
    FZ_CHECK(ok == rok, "parse accepts %d, reference %d: %.*s", ok, rok,
             (int)size, s);
    if (ok) {
        FZ_CHECK(got == want, "parse %lld, reference %lld: %.*s",
                 (long long)got, (long long)want, (int)size, s);
        check_format(got);
    } else {
        FZ_CHECK(got == INT64_MIN, "a failed parse wrote its output");
    }
    int64_t pub = INT64_MIN;
    cs_err e = cs_parse_date((cs_str){s, size}, &pub);
    FZ_CHECK(e == (ok ? CS_OK : CS_E_INVALID_ARGUMENT) && (!ok || pub == got),
             "cs_parse_date disagrees: %s", cs_err_name(e));
    free(s);

    /* Formatting: the first 8 bytes as a raw value (clamped when out of
     * range), and folded into the range. */
    if (size >= 8) {
        uint64_t u;
        memcpy(&u, data, 8);
        int64_t raw = (int64_t)u;
        uint64_t span = (uint64_t)(CS__TIME_MAX - CS__TIME_MIN) + 1;
        check_format(CS__TIME_MIN + (int64_t)(u % span));
        if (raw >= CS__TIME_MIN && raw <= CS__TIME_MAX) {
            check_format(raw);
        } else {
            char a[CS__TIME_STRLEN + 1], b[CS__TIME_STRLEN + 1];
            cs__time_format(raw, a);
            cs__time_format(raw < 0 ? CS__TIME_MIN : CS__TIME_MAX, b);
            FZ_CHECK(strcmp(a, b) == 0, "out-of-range %lld formats as %s",
                     (long long)raw, a);
        }
    }
    return 0;
}
