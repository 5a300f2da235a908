/* Unit tests for the leaf modules: SipHash, ISO 8601 times and SIDs.
 *
 * Inputs that the library must reject are copied into heap buffers of
 * exactly n bytes first, so AddressSanitizer catches any read past n. */
#include "isotime.h"
#include "sid.h"
#include "siphash.h"

#include "check.h"

#include <time.h>

/* --- helpers ------------------------------------------------------------ */

/* splitmix64: deterministic, so a failure reproduces. */
static uint64_t rng_state = UINT64_C(0x2545f4914f6cdd1d);

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]; the modulo bias is irrelevant for sampling tests. */
static int64_t rng_range(int64_t lo, int64_t hi) {
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

static void to_hex(const uint8_t *p, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Heap copy of exactly n bytes (at least one byte allocated). */
static char *exact_copy(const char *s, size_t n) {
    char *p = malloc(n ? n : 1);
    if (!p) abort();
    if (n) memcpy(p, s, n);
    return p;
}

static int time_parse_exact(const char *s, size_t n, int64_t *out) {
    char *p = exact_copy(s, n);
    int rc = cs__time_parse(p, n, out);
    free(p);
    return rc;
}

static int sid_parse_exact(const char *s, size_t n, char p0, char p1,
                           uint8_t out[CS__SID_BYTES]) {
    char *p = exact_copy(s, n);
    int rc = cs__sid_parse(p, n, p0, p1, out);
    int m = cs__sid_match(p, n, p0, p1);
    free(p);
    /* match must agree with parse on every input. */
    CHECK_INT(m, rc == 0);
    return rc;
}

/* Parses a NUL-terminated string; returns the time or a sentinel. */
#define BAD_TIME INT64_MIN
static int64_t tp(const char *s) {
    int64_t t = BAD_TIME;
    return time_parse_exact(s, strlen(s), &t) == 0 ? t : BAD_TIME;
}

/* --- SipHash ------------------------------------------------------------ */

/* Expected outputs from the reference implementation's vectors.h
 * (github.com/veorq/SipHash): key 00..0f, message 00 01 .. (len-1). Bytes in
 * output order, i.e. the 64-bit value stored little-endian. */
static const char *const sip64_vectors[64] = {
    "310e0edd47db6f72", "fd67dc93c539f874", "5a4fa9d909806c0d",
    "2d7efbd796666785", "b7877127e09427cf", "8da699cd64557618",
    "cee3fe586e46c9cb", "37d1018bf50002ab", "6224939a79f5f593",
    "b0e4a90bdf82009e", "f3b9dd94c5bb5d7a", "a7ad6b22462fb3f4",
    "fbe50e86bc8f1e75", "903d84c02756ea14", "eef27a8e90ca23f7",
    "e545be4961ca29a1", "db9bc2577fcc2a3f", "9447be2cf5e99a69",
    "9cd38d96f0b3c14b", "bd6179a71dc96dbb", "98eea21af25cd6be",
    "c7673b2eb0cbf2d0", "883ea3e395675393", "c8ce5ccd8c030ca8",
    "94af49f6c650adb8", "eab8858ade92e1bc", "f315bb5bb835d817",
    "adcf6b0763612e2f", "a5c91da7acaa4dde", "716595876650a2a6",
    "28ef495c53a387ad", "42c341d8fa92d832", "ce7cf2722f512771",
    "e37859f94623f3a7", "381205bb1ab0e012", "ae97a10fd434e015",
    "b4a31508beff4d31", "81396229f0907902", "4d0cf49ee5d4dcca",
    "5c73336a76d8bf9a", "d0a704536ba93e0e", "925958fcd6420cad",
    "a915c29bc8067318", "952b79f3bc0aa6d4", "f21df2e41d4535f9",
    "87577519048f53a9", "10a56cf5dfcd9adb", "eb75095ccd986cd0",
    "51a9cb9ecba312e6", "96afadfc2ce666c7", "72fe52975a4364ee",
    "5a1645b276d592a1", "b274cb8ebf87870a", "6f9bb4203de7b381",
    "eaecb2a30b22a87f", "9924a43cc1315724", "bd838d3aafbf8db7",
    "0b1a2a3265d51aea", "135079a3231ce660", "932b2846e4d70666",
    "e1915f5cb1eca46c", "f325965ca16d629f", "575ff28e60381be5",
    "724506eb4c328a95",
};

static const char *const sip128_vectors[64] = {
    "a3817f04ba25a8e66df67214c7550293", "da87c1d86b99af44347659119b22fc45",
    "8177228da4a45dc7fca38bdef60affe4", "9c70b60c5267a94e5f33b6b02985ed51",
    "f88164c12d9c8faf7d0f6e7c7bcd5579", "1368875980776f8854527a07690e9627",
    "14eeca338b208613485ea0308fd7a15e", "a1f1ebbed8dbc153c0b84aa61ff08239",
    "3b62a9ba6258f5610f83e264f31497b4", "264499060ad9baabc47f8b02bb6d71ed",
    "00110dc378146956c95447d3f3d0fbba", "0151c568386b6677a2b4dc6f81e5dc18",
    "d626b266905ef35882634df68532c125", "9869e247e9c08b10d029934fc4b952f7",
    "31fcefac66d7de9c7ec7485fe4494902", "5493e99933b0a8117e08ec0f97cfc3d9",
    "6ee2a4ca67b054bbfd3315bf85230577", "473d06e8738db89854c066c47ae47740",
    "a426e5e423bf4885294da481feaef723", "78017731cf65fab074d5208952512eb1",
    "9e25fc833f2290733e9344a5e83839eb", "568e495abe525a218a2214cd3e071d12",
    "4a29b54552d16b9a469c10528eff0aae", "c9d184ddd5a9f5e0cf8ce29a9abf691c",
    "2db479ae78bd50d8882a8a178a6132ad", "8ece5f042d5e447b5051b9eacb8d8f6f",
    "9c0b53b4b3c307e87eaee08678141f66", "abf248af69a6eae4bfd3eb2f129eeb94",
    "0664da1668574b88b935f3027358aef4", "aa4b9dc4bf337de90cd4fd3c467c6ab7",
    "ea5c7f471faf6bde2b1ad7d4686d2287", "2939b0183223fafc1723de4f52c43d35",
    "7c3956ca5eeafc3e363e9d556546eb68", "77c6077146f01c32b6b69d5f4ea9ffcf",
    "37a6986cb8847edf0925f0f1309b54de", "a705f0e69da9a8f907241a2e923c8cc8",
    "3dc47d1f29c448461e9e76ed904f6711", "0d62bf01e6fc0e1a0d3c4751c5d3692b",
    "8c03468bca7c669ee4fd5e084bbee7b5", "528a5bb93baf2c9c4473cce5d0d22bd9",
    "df6a301e95c95dad97ae0cc8c6913bd8", "801189902c857f39e73591285e70b6db",
    "e617346ac9c231bb3650ae34ccca0c5b", "27d93437efb721aa401821dcec5adf89",
    "89237d9ded9c5e78d8b1c9b166cc7342", "4a6d8091bf5e7d651189fa94a250b14c",
    "0e33f96055e7ae893ffc0e3dcf492902", "e61c432b720b19d18ec8d84bdc63151b",
    "f7e5aef549f782cf379055a608269b16", "438d030fd0b7a54fa837f2ad201a6403",
    "a590d3ee4fbf04e3247e0d27f286423f", "5fe2c1a172fe93c4b15cd37caef9f538",
    "2c97325cbd06b36eb2133dd08b3a017c", "92c814227a6bca949ff0659f002ad39e",
    "dce850110bd8328cfbd50841d6911d87", "67f14984c7da791248e32bb5922583da",
    "1938f2cf72d54ee97e94166fa91d2a36", "74481e9646ed49fe0f6224301604698e",
    "57fca5de98a9d6d8006438d0583d8a1d", "9fecde1cefdc1cbed4763674d9575359",
    "e3040c00eb28f15366ca73cbd872e740", "7697009a6a831dfecca91c5993670f7a",
    "5853542321f567a005d547a4f04759bd", "5150d1772f50834a503e069a973fbd7c",
};

static void sip_test_key(uint8_t key[16]) {
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)i;
}

static void sip64_hex(const uint8_t key[16], const void *msg, size_t n,
                      char hex[17]) {
    uint64_t h = cs__siphash(key, msg, n);
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(h >> (8 * i));
    to_hex(b, 8, hex);
}

TEST(siphash64_vectors) {
    uint8_t key[16], msg[64];
    sip_test_key(key);
    for (size_t len = 0; len < 64; len++) {
        char hex[17];
        msg[len] = (uint8_t)len;
        /* Exact-size heap copy: a read past the message trips ASan. */
        char *p = exact_copy((const char *)msg, len);
        sip64_hex(key, p, len, hex);
        free(p);
        CHECK_STR(hex, sip64_vectors[len]);
    }
}

TEST(siphash128_vectors) {
    uint8_t key[16], msg[64], out[16];
    sip_test_key(key);
    for (size_t len = 0; len < 64; len++) {
        char hex[33];
        msg[len] = (uint8_t)len;
        char *p = exact_copy((const char *)msg, len);
        cs__siphash128(key, p, len, out);
        free(p);
        to_hex(out, 16, hex);
        CHECK_STR(hex, sip128_vectors[len]);
    }
}

/* The one-word form gives the reference value of its 8 bytes (vector 8:
 * bytes 00..07 under key 00..0f), and agrees with the general form on
 * other words and keys. */
TEST(siphash_u64_matches_general_form) {
    uint8_t key[16];
    sip_test_key(key);
    uint64_t k[2] = {0, 0};
    for (int i = 0; i < 8; i++) {
        k[0] |= (uint64_t)key[i] << (8 * i);
        k[1] |= (uint64_t)key[8 + i] << (8 * i);
    }
    uint64_t m = UINT64_C(0x0706050403020100);
    uint64_t h = cs__siphash_u64(k, m);
    uint8_t b[8];
    char hex[17];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(h >> (8 * i));
    to_hex(b, 8, hex);
    CHECK_STR(hex, sip64_vectors[8]);
    uint64_t x = UINT64_C(0x9e3779b97f4a7c15);
    for (int t = 0; t < 1000; t++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        k[0] ^= x, k[1] += x;
        uint8_t kb[16], mb[8];
        for (int i = 0; i < 8; i++) {
            kb[i] = (uint8_t)(k[0] >> (8 * i));
            kb[8 + i] = (uint8_t)(k[1] >> (8 * i));
            mb[i] = (uint8_t)(x >> (8 * i));
        }
        CHECK(cs__siphash_u64(k, x) == cs__siphash(kb, mb, 8));
    }
}

/* Same bytes at every alignment give the same hash (and UBSan would flag a
 * misaligned 64-bit load). */
TEST(siphash_unaligned) {
    uint8_t key[16], buf[64 + 8];
    sip_test_key(key);
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len < 64; len++) {
            char hex[17];
            for (size_t i = 0; i < len; i++) buf[off + i] = (uint8_t)i;
            sip64_hex(key, buf + off, len, hex);
            CHECK_STR(hex, sip64_vectors[len]);
        }
    }
}

/* The reference vectors stop at 63 bytes, so the length byte never wraps.
 * These longer ones were computed with OpenSSL 3's independent SIPHASH MAC
 * (openssl mac -macopt hexkey:0001..0f [-macopt size:16] SIPHASH); message
 * byte i is i mod 256. */
TEST(siphash_long_messages) {
    static const struct {
        size_t n;
        const char *h64, *h128;
    } v[] = {
        {64, "d8ca02850bc4d2ac", "1eaf077dc0d4cd3f8cad4d383658a74b"},
        {255, "1ab24dc7fe69c1a9", "1c9bb67528165f8e468248e3799b0eab"},
        {256, "d7bfa7d226059d99", "67a00304d3834c4612eaee7b5f579acb"},
        {1000, "a6c9319ed63e9bdb", "24dafa789ae03d86536a4b57372f0ba6"},
    };
    uint8_t key[16], msg[1000], out[16];
    sip_test_key(key);
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[33];
        sip64_hex(key, msg, v[i].n, hex);
        CHECK_STR(hex, v[i].h64);
        cs__siphash128(key, msg, v[i].n, out);
        to_hex(out, 16, hex);
        CHECK_STR(hex, v[i].h128);
    }
}

/* Every key bit and every message bit reaches the output. */
TEST(siphash_bit_sensitivity) {
    uint8_t key[16], msg[34];
    sip_test_key(key);
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 7);
    uint64_t base = cs__siphash(key, msg, sizeof msg);
    for (size_t bit = 0; bit < 128; bit++) {
        key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(cs__siphash(key, msg, sizeof msg) != base);
        key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t bit = 0; bit < 8 * sizeof msg; bit++) {
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(cs__siphash(key, msg, sizeof msg) != base);
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* Length is part of the input: a trailing zero byte changes the hash. */
    uint8_t z[9] = {0};
    for (size_t n = 0; n < 8; n++)
        CHECK(cs__siphash(key, z, n) != cs__siphash(key, z, n + 1));
}

/* --- ISO times: valid inputs -------------------------------------------- */

TEST(time_known_values) {
    CHECK_INT(tp("1970-01-01T00:00:00Z"), 0);
    CHECK_INT(tp("1969-12-31T23:59:59Z"), -1);
    CHECK_INT(tp("2000-02-29T00:00:00Z"), 951782400);
    CHECK_INT(tp("2024-02-29T12:34:56Z"), 1709210096);
    CHECK_INT(tp("1900-01-01T00:00:00Z"), INT64_C(-2208988800));
    CHECK_INT(tp("2038-01-19T03:14:08Z"), INT64_C(2147483648));
    CHECK_INT(tp("0001-01-01T00:00:00Z"), CS__TIME_MIN);
    CHECK_INT(tp("9999-12-31T23:59:59Z"), CS__TIME_MAX);

    char buf[CS__TIME_STRLEN + 1];
    cs__time_format(0, buf);
    CHECK_STR(buf, "1970-01-01T00:00:00Z");
    cs__time_format(-1, buf);
    CHECK_STR(buf, "1969-12-31T23:59:59Z");
    cs__time_format(1709210096, buf);
    CHECK_STR(buf, "2024-02-29T12:34:56Z");
    cs__time_format(CS__TIME_MIN, buf);
    CHECK_STR(buf, "0001-01-01T00:00:00Z");
    cs__time_format(CS__TIME_MAX, buf);
    CHECK_STR(buf, "9999-12-31T23:59:59Z");
    CHECK_INT(strlen(buf), CS__TIME_STRLEN);
}

TEST(time_offsets) {
    int64_t base = tp("2024-06-01T06:30:00Z");
    CHECK_INT(base, 1717223400);
    CHECK_INT(tp("2024-06-01T12:00:00+05:30"), base);
    CHECK_INT(tp("2024-06-01T12:00:00+0530"), base);
    CHECK_INT(tp("2024-05-31T22:30:00-0800"), base);
    CHECK_INT(tp("2024-05-31T22:30:00-08:00"), base);
    CHECK_INT(tp("2024-05-31T22:30:00-08"), base);
    CHECK_INT(tp("2024-06-01T07:30:00+01"), base);
    CHECK_INT(tp("2024-06-01t06:30:00z"), base);
    CHECK_INT(tp("2024-06-01t06:30:00Z"), base);
    CHECK_INT(tp("2024-06-01T06:30:00z"), base);
    CHECK_INT(tp("2024-06-01T06:30:00+00:00"), base);
    CHECK_INT(tp("2024-06-01T06:30:00-00:00"), base);
    CHECK_INT(tp("2024-06-01T06:30:00+00"), base);
    /* Extremes of the offset range. */
    CHECK_INT(tp("2024-06-02T06:29:00+23:59"), base);
    CHECK_INT(tp("2024-05-31T06:31:00-23:59"), base);
    /* Offsets that move the date across a leap day and a year. */
    CHECK_INT(tp("2024-03-01T00:30:00+01:00"), 1709249400);
    CHECK_INT(tp("2024-02-29T23:30:00Z"), 1709249400);
    CHECK_INT(tp("1969-12-31T19:00:00-05:00"), 0);
    CHECK_INT(tp("1970-01-01T05:00:00+05"), 0);
}

TEST(time_fractions) {
    int64_t base = tp("2024-06-01T06:30:00Z");
    CHECK_INT(tp("2024-06-01T06:30:00.5Z"), base);
    CHECK_INT(tp("2024-06-01T06:30:00.0Z"), base);
    CHECK_INT(tp("2024-06-01T06:30:00.999999999Z"), base);
    CHECK_INT(tp("2024-06-01T06:30:00.123456789Z"), base);
    CHECK_INT(tp("2024-06-01T06:30:00.123456789012345678901234567890Z"),
              base);
    CHECK_INT(tp("2024-06-01T12:00:00.5+05:30"), base);
    CHECK_INT(tp("2024-06-01T12:00:00.123456789+0530"), base);
    CHECK_INT(tp("2024-06-01T07:30:00.75+01"), base);
    CHECK_INT(tp("2024-06-01t06:30:00.5z"), base);
    /* Dropping the fraction truncates towards the past before 1970 too. */
    CHECK_INT(tp("1969-12-31T23:59:59.9Z"), -1);
    CHECK_INT(tp("9999-12-31T23:59:59.999999999Z"), CS__TIME_MAX);
    CHECK_INT(tp("0001-01-01T00:00:00.000000001Z"), CS__TIME_MIN);
}

TEST(time_leap_years) {
    CHECK(tp("2000-02-29T00:00:00Z") != BAD_TIME); /* div by 400 */
    CHECK(tp("1900-02-29T00:00:00Z") == BAD_TIME); /* div by 100 */
    CHECK(tp("2024-02-29T00:00:00Z") != BAD_TIME);
    CHECK(tp("2023-02-29T00:00:00Z") == BAD_TIME);
    CHECK(tp("2100-02-29T00:00:00Z") == BAD_TIME);
    CHECK(tp("2400-02-29T00:00:00Z") != BAD_TIME);
    CHECK(tp("0004-02-29T00:00:00Z") != BAD_TIME);
    CHECK(tp("9996-02-29T00:00:00Z") != BAD_TIME);
    CHECK(tp("2024-02-30T00:00:00Z") == BAD_TIME);
    /* The leap day is a real day: Feb 29 + 1 day is Mar 1. */
    CHECK_INT(tp("2024-03-01T00:00:00Z") - tp("2024-02-29T00:00:00Z"),
              86400);
    CHECK_INT(tp("2000-03-01T00:00:00Z") - tp("2000-02-28T00:00:00Z"),
              2 * 86400);
    CHECK_INT(tp("1900-03-01T00:00:00Z") - tp("1900-02-28T00:00:00Z"),
              86400);
}

TEST(time_month_ends) {
    static const int dim[12] = {31, 28, 31, 30, 31, 30,
                                31, 31, 30, 31, 30, 31};
    static const int years[] = {1, 1900, 1999, 2000, 2023, 2024, 9999};
    for (size_t yi = 0; yi < sizeof years / sizeof years[0]; yi++) {
        int y = years[yi];
        int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        for (int m = 1; m <= 12; m++) {
            int last = dim[m - 1] + (m == 2 && leap);
            char s[32];
            snprintf(s, sizeof s, "%04d-%02d-%02dT23:59:59Z", y, m, last);
            int64_t t = tp(s);
            CHECK(t != BAD_TIME);
            /* The next second is the first of the next month (or year). */
            if (t != BAD_TIME && t < CS__TIME_MAX) {
                char next[CS__TIME_STRLEN + 1], want[32];
                cs__time_format(t + 1, next);
                snprintf(want, sizeof want, "%04d-%02d-01T00:00:00Z",
                         m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1);
                CHECK_STR(next, want);
            }
            snprintf(s, sizeof s, "%04d-%02d-%02dT00:00:00Z", y, m, last + 1);
            CHECK(tp(s) == BAD_TIME);
        }
    }
}

TEST(time_range_ends) {
    CHECK_INT(tp("0001-01-01T00:00:00Z"), CS__TIME_MIN);
    CHECK_INT(tp("0001-01-01T00:00:00+00:00"), CS__TIME_MIN);
    CHECK(tp("0001-01-01T00:00:00+00:01") == BAD_TIME);
    CHECK(tp("0001-01-01T00:00:00+01") == BAD_TIME);
    CHECK_INT(tp("0001-01-01T00:00:00-00:01"), CS__TIME_MIN + 60);
    CHECK_INT(tp("9999-12-31T23:59:59Z"), CS__TIME_MAX);
    CHECK(tp("9999-12-31T23:59:59-00:01") == BAD_TIME);
    CHECK(tp("9999-12-31T23:59:59-01") == BAD_TIME);
    CHECK_INT(tp("9999-12-31T23:59:59+00:01"), CS__TIME_MAX - 60);
    /* Bounds apply after normalisation, so a local time in year 0 or in
     * year 9999 past the UTC maximum is judged by its UTC value. */
    CHECK_INT(tp("0000-12-31T23:00:00-01:00"), CS__TIME_MIN);
    CHECK(tp("0000-12-31T23:59:59Z") == BAD_TIME);
    CHECK(tp("0000-01-01T00:00:00Z") == BAD_TIME);
    CHECK_INT(tp("9999-12-31T23:59:59+23:59"), CS__TIME_MAX - 86340);
}

/* --- ISO times: malformed inputs ---------------------------------------- */

typedef struct bytes {
    const char *s;
    size_t n;
} bytes;

/* Length from sizeof, so literals may contain NUL bytes. */
#define B(lit) { lit, sizeof(lit) - 1 }

static const bytes bad_times[] = {
    B(""),
    B("2024-01-01"),                    /* date only */
    B("2024-01-01T00:00:00"),           /* missing zone */
    B("2024-01-01t00:00:00"),           /* missing zone, lower t */
    B("2024-01-01T00:00Z"),             /* no seconds */
    B("2024-01-01T24:00:00Z"),          /* hour 24 */
    B("2024-01-01T00:60:00Z"),          /* minute 60 */
    B("2024-01-01T00:00:60Z"),          /* leap second */
    B("2016-12-31T23:59:60Z"),          /* a real leap second, still no */
    B("2024-00-01T00:00:00Z"),          /* month 0 */
    B("2024-13-01T00:00:00Z"),          /* month 13 */
    B("2024-01-00T00:00:00Z"),          /* day 0 */
    B("2024-01-32T00:00:00Z"),          /* day 32 */
    B("2024-04-31T00:00:00Z"),          /* day 31 of a 30-day month */
    B("2023-02-29T00:00:00Z"),          /* not a leap year */
    B(" 2024-01-01T00:00:00Z"),         /* leading space */
    B("2024-01-01T00:00:00Z "),         /* trailing space */
    B("2024-01-01 00:00:00Z"),          /* space for T */
    B("2024-01-01T00:00:00 Z"),         /* space before zone */
    B("2024-01-01T00:00:00 +01:00"),    /* space before offset */
    B("2024-01-01T 0:00:00Z"),          /* space as digit */
    B("2024-01-01T00:00:00ZZ"),         /* trailing garbage */
    B("2024-01-01T00:00:00Zx"),         /* trailing garbage */
    B("2024-01-01T00:00:00+05:30x"),    /* trailing garbage */
    B("2024-01-01T00:00:00+01:00Z"),    /* two zones */
    B("2024-01-01T00:00:00UTC"),        /* named zone */
    B("+2024-01-01T00:00:00Z"),         /* signed year */
    B("-2024-01-01T00:00:00Z"),         /* signed year */
    B("+024-01-01T00:00:00Z"),          /* sign in the year digits */
    B("-001-01-01T00:00:00Z"),          /* sign in the year digits */
    B("20240-01-01T00:00:00Z"),         /* 5-digit year */
    B("10000-01-01T00:00:00Z"),         /* 5-digit year */
    B("224-01-01T00:00:00Z"),           /* 3-digit year */
    B("2024-1-01T00:00:00Z"),           /* 1-digit month */
    B("2024-01-1T00:00:00Z"),           /* 1-digit day */
    B("2024-01-01T0:00:00Z"),           /* 1-digit hour */
    B("2024-01-01T00:0:00Z"),           /* 1-digit minute */
    B("2024-01-01T00:00:0Z"),           /* 1-digit second */
    B("2024-01-01T-1:00:00Z"),          /* negative hour */
    B("2024/01/01T00:00:00Z"),          /* wrong date separator */
    B("2024-01-01T00.00.00Z"),          /* wrong time separator */
    B("2024-01-01X00:00:00Z"),          /* wrong T */
    B("20240101T000000Z"),              /* basic format */
    B("2O24-01-01T00:00:00Z"),          /* letter O */
    B("2024-0a-01T00:00:00Z"),          /* hex digit */
    B("2024-01-01T00:00:00.Z"),         /* fraction without digits */
    B("2024-01-01T00:00:00.+01:00"),    /* fraction without digits */
    B("2024-01-01T00:00:00."),          /* fraction without digits, end */
    B("2024-01-01T00:00:00,5Z"),        /* comma fraction */
    B("2024-01-01T00:00:00.5.5Z"),      /* two fractions */
    B("2024-01-01T00:00:00.5"),         /* fraction, no zone */
    B("2024-01-01T00:00:00.5 Z"),       /* space after fraction */
    B("2024-01-01T00:00:00+24:00"),     /* offset hour 24 */
    B("2024-01-01T00:00:00+99"),        /* offset hour 99 */
    B("2024-01-01T00:00:00+05:60"),     /* offset minute 60 */
    B("2024-01-01T00:00:00-0560"),      /* offset minute 60 */
    B("2024-01-01T00:00:00+5:30"),      /* 1-digit offset hour */
    B("2024-01-01T00:00:00+05:3"),      /* 1-digit offset minute */
    B("2024-01-01T00:00:00+053"),       /* 3-digit offset */
    B("2024-01-01T00:00:00+05300"),     /* 5-digit offset */
    B("2024-01-01T00:00:00+05:300"),    /* 3-digit offset minute */
    B("2024-01-01T00:00:00+0530:"),     /* trailing colon */
    B("2024-01-01T00:00:00+05:"),       /* colon, no minute */
    B("2024-01-01T00:00:00+05-30"),     /* wrong offset separator */
    B("2024-01-01T00:00:00+"),          /* sign only */
    B("2024-01-01T00:00:00-"),          /* sign only */
    B("2024-01-01T00:00:00+a5:30"),     /* non-digit offset */
    B("2024-01-01T00:00:00\xef\xbc\xba"), /* fullwidth Z */
    B("2024-01-01T00:00:00\xff"),       /* high byte */
    B("\0" "024-01-01T00:00:00Z"),      /* embedded NUL in year */
    B("2024-01-01T00:0" "\0" ":00Z"),   /* embedded NUL as a digit */
    B("2024-01-01" "\0" "00:00:00Z"),   /* embedded NUL as T */
    B("2024-01-01T00:00:00" "\0" "Z"),  /* NUL before zone */
    B("2024-01-01T00:00:00Z" "\0"),     /* trailing NUL */
    B("2024-01-01T00:00:00.5" "\0" "5Z"), /* NUL inside fraction */
    B("2024-01-01T00:00:00+05" "\0" "30"), /* NUL inside offset */
    B("0001-01-01T00:00:00+00:01"),     /* before the range */
    B("9999-12-31T23:59:59-00:01"),     /* after the range */
    B("0000-01-01T00:00:00Z"),          /* year 0: before the range */
};

TEST(time_malformed) {
    const int64_t sentinel = INT64_C(0x5a5a5a5a5a5a5a5a);
    CHECK(sizeof bad_times / sizeof bad_times[0] >= 30);
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        int64_t out = sentinel;
        int rc = time_parse_exact(bad_times[i].s, bad_times[i].n, &out);
        if (rc != -1 || out != sentinel)
            fprintf(stderr, "bad_times[%zu] \"%.*s\":\n", i,
                    (int)bad_times[i].n, bad_times[i].s);
        CHECK_INT(rc, -1);
        CHECK(out == sentinel);
    }
}

/* Every proper prefix of a valid time is rejected (length is honoured, and
 * with exact-size buffers ASan proves nothing past n is read). */
TEST(time_truncated_prefixes) {
    static const char *const good[] = {
        "2024-01-01T00:00:00.123Z",
        "2024-01-01T00:00:00.5-08:00",
        "2024-01-01T00:00:00+0530",
    };
    for (size_t g = 0; g < sizeof good / sizeof good[0]; g++) {
        size_t len = strlen(good[g]);
        int64_t out = 42;
        CHECK_INT(time_parse_exact(good[g], len, &out), 0);
        for (size_t k = 0; k < len; k++) {
            int64_t o = 42;
            /* "...+05" and "...+0530"'s "+05" prefix are valid on their own */
            int valid_prefix = k >= 3 && (good[g][k - 3] == '+' ||
                                          good[g][k - 3] == '-');
            int rc = time_parse_exact(good[g], k, &o);
            if (valid_prefix) continue;
            if (rc != -1 || o != 42)
                fprintf(stderr, "prefix %zu of \"%s\":\n", k, good[g]);
            CHECK_INT(rc, -1);
            CHECK_INT(o, 42);
        }
    }
}

/* --- ISO times: formatting against independent oracles ------------------ */

static void gm_string(int64_t t, char out[64]) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        strcpy(out, "gmtime_r failed");
        return;
    }
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void check_against_gmtime(int64_t t) {
    char got[CS__TIME_STRLEN + 1], want[64];
    cs__time_format(t, got);
    gm_string(t, want);
    CHECK_STR(got, want);
    int64_t back = BAD_TIME;
    CHECK_INT(cs__time_parse(got, CS__TIME_STRLEN, &back), 0);
    CHECK_INT(back, t);
}

TEST(time_format_vs_gmtime) {
    REQUIRE(sizeof(time_t) >= 8); /* the range ends need a 64-bit time_t */
    const int64_t y1900 = INT64_C(-2208988800);
    const int64_t y2101 = INT64_C(4133980800); /* 2101-01-01T00:00:00Z */
    for (int i = 0; i < 200000 && !check_failures_; i++)
        check_against_gmtime(rng_range(y1900, y2101 - 1));
    /* Around the range ends, the epoch and some calendar edges. */
    static const int64_t anchors[] = {
        CS__TIME_MIN, CS__TIME_MAX, 0, y1900, y2101, 951782400,
        INT64_C(4107542400), /* 2100-03-01 */
        INT64_C(-2203891200), /* 1900-03-01 */
    };
    for (size_t a = 0; a < sizeof anchors / sizeof anchors[0]; a++) {
        for (int64_t d = -90000; d <= 90000 && !check_failures_; d += 97) {
            int64_t t = anchors[a] + d;
            if (t >= CS__TIME_MIN && t <= CS__TIME_MAX) check_against_gmtime(t);
        }
    }
    /* And a sparse sample of the whole range. */
    for (int i = 0; i < 20000 && !check_failures_; i++)
        check_against_gmtime(rng_range(CS__TIME_MIN, CS__TIME_MAX));
}

TEST(time_random_round_trip) {
    for (int i = 0; i < 300000 && !check_failures_; i++) {
        int64_t t = rng_range(CS__TIME_MIN, CS__TIME_MAX);
        char s[CS__TIME_STRLEN + 1];
        cs__time_format(t, s);
        CHECK_INT(strlen(s), CS__TIME_STRLEN);
        int64_t back = BAD_TIME;
        CHECK_INT(cs__time_parse(s, CS__TIME_STRLEN, &back), 0);
        CHECK_INT(back, t);
    }
}

static void put_num(char *p, int width, int v) {
    for (int i = width - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
}

/* Walks every day of the range with a naive calendar counter as the oracle
 * (no shared code with the library), at a varying time of day. */
TEST(time_every_day) {
    static const int dim[12] = {31, 28, 31, 30, 31, 30,
                                31, 31, 30, 31, 30, 31};
    int y = 1, m = 1, d = 1;
    int64_t day = 0;
    char want[CS__TIME_STRLEN + 1] = "0000-00-00T00:00:00Z";
    for (;;) {
        int sod = (int)((day * 7919) % 86400);
        int64_t t = CS__TIME_MIN + day * 86400 + sod;
        put_num(want, 4, y);
        put_num(want + 5, 2, m);
        put_num(want + 8, 2, d);
        put_num(want + 11, 2, sod / 3600);
        put_num(want + 14, 2, sod / 60 % 60);
        put_num(want + 17, 2, sod % 60);
        char got[CS__TIME_STRLEN + 1];
        cs__time_format(t, got);
        if (strcmp(got, want) != 0) {
            CHECK_STR(got, want);
            return;
        }
        int64_t back = BAD_TIME;
        if (cs__time_parse(want, CS__TIME_STRLEN, &back) != 0 || back != t) {
            fprintf(stderr, "parse(\"%s\"):\n", want);
            CHECK_INT(back, t);
            return;
        }
        int leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        if (++d > dim[m - 1] + (m == 2 && leap)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                if (++y > 9999) break;
            }
        }
        day++;
    }
    CHECK_INT(CS__TIME_MIN + day * 86400 + 86399, CS__TIME_MAX);
}

/* --- SIDs --------------------------------------------------------------- */

static const char good_sid[] = "MS0123456789abcdef0011223344556677";
static const uint8_t good_sid_bytes[CS__SID_BYTES] = {
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
};

TEST(sid_round_trip) {
    uint8_t out[CS__SID_BYTES];
    REQUIRE(sizeof good_sid - 1 == CS__SID_STRLEN);
    CHECK_INT(sid_parse_exact(good_sid, CS__SID_STRLEN, 'M', 'S', out), 0);
    CHECK(memcmp(out, good_sid_bytes, CS__SID_BYTES) == 0);

    char s[CS__SID_STRLEN + 1];
    cs__sid_format('M', 'S', good_sid_bytes, s);
    CHECK_STR(s, good_sid);

    for (int i = 0; i < 10000 && !check_failures_; i++) {
        uint8_t in[CS__SID_BYTES], back[CS__SID_BYTES];
        for (int j = 0; j < CS__SID_BYTES; j++) in[j] = (uint8_t)rng_next();
        memset(s, 'x', sizeof s);
        cs__sid_format('C', 'H', in, s);
        CHECK_INT(strlen(s), CS__SID_STRLEN);
        char want[2 * CS__SID_BYTES + 1];
        to_hex(in, CS__SID_BYTES, want);
        CHECK_STR(s + 2, want);
        CHECK(s[0] == 'C' && s[1] == 'H');
        CHECK_INT(sid_parse_exact(s, CS__SID_STRLEN, 'C', 'H', back), 0);
        CHECK(memcmp(in, back, CS__SID_BYTES) == 0);
    }
}

TEST(sid_case_insensitive) {
    uint8_t out[CS__SID_BYTES];
    static const char *const variants[] = {
        "MS0123456789ABCDEF0011223344556677", /* upper-case hex */
        "MS0123456789aBcDeF0011223344556677", /* mixed hex */
        "ms0123456789abcdef0011223344556677", /* lower-case prefix */
        "mS0123456789ABCDEF0011223344556677",
        "Ms0123456789abcdef0011223344556677",
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        memset(out, 0, sizeof out);
        CHECK_INT(sid_parse_exact(variants[i], CS__SID_STRLEN, 'M', 'S', out),
                  0);
        CHECK(memcmp(out, good_sid_bytes, CS__SID_BYTES) == 0);
    }
    /* Every byte value at each prefix position: only the letter in either
     * case passes (no 0x20-bit confusion with punctuation or controls). */
    char s[CS__SID_STRLEN];
    for (int pos = 0; pos < 2; pos++) {
        for (int c = 0; c < 256; c++) {
            memcpy(s, good_sid, CS__SID_STRLEN);
            s[pos] = (char)c;
            char up = pos ? 'S' : 'M', lo = pos ? 's' : 'm';
            int want = (c == up || c == lo) ? 0 : -1;
            CHECK_INT(sid_parse_exact(s, CS__SID_STRLEN, 'M', 'S', out), want);
        }
    }
}

TEST(sid_wrong_prefix) {
    const uint8_t sentinel[CS__SID_BYTES] = {0xa5};
    uint8_t out[CS__SID_BYTES];
    static const char *const bad[] = {
        "SM0123456789abcdef0011223344556677", /* swapped */
        "MX0123456789abcdef0011223344556677",
        "XS0123456789abcdef0011223344556677",
        "M-0123456789abcdef0011223344556677",
        "--0123456789abcdef0011223344556677",
        "0123456789abcdef0011223344556677MS", /* prefix at the end */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(out, sentinel, sizeof out);
        CHECK_INT(sid_parse_exact(bad[i], CS__SID_STRLEN, 'M', 'S', out), -1);
        CHECK(memcmp(out, sentinel, sizeof out) == 0);
    }
    /* Right string, different expected prefix. */
    CHECK_INT(sid_parse_exact(good_sid, CS__SID_STRLEN, 'C', 'H', out), -1);
    CHECK_INT(sid_parse_exact(good_sid, CS__SID_STRLEN, 'S', 'M', out), -1);
}

TEST(sid_wrong_length) {
    uint8_t out[CS__SID_BYTES];
    char s[64];
    memcpy(s, good_sid, CS__SID_STRLEN);
    memcpy(s + CS__SID_STRLEN, "0000", 4);
    /* 33 (one digit short), 35 (one extra digit), and others. */
    static const size_t lens[] = {0, 1, 2, 3, 32, 33, 35, 36, 38};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        CHECK_INT(sid_parse_exact(s, lens[i], 'M', 'S', out), -1);
    /* 33 chars that would be a full SID with a 1-letter prefix. */
    CHECK_INT(sid_parse_exact(good_sid + 1, CS__SID_STRLEN - 1, 'M', 'S', out),
              -1);
    /* 35 with the terminating NUL counted. */
    CHECK_INT(sid_parse_exact(good_sid, sizeof good_sid, 'M', 'S', out), -1);
    CHECK_INT(sid_parse_exact(s, CS__SID_STRLEN, 'M', 'S', out), 0);
}

static int is_hex(int c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* Every byte value at every digit position: accepted iff it is hex, and
 * then decoded to the right nibble. */
TEST(sid_non_hex) {
    uint8_t out[CS__SID_BYTES];
    char s[CS__SID_STRLEN];
    for (int pos = 2; pos < CS__SID_STRLEN; pos++) {
        for (int c = 0; c < 256; c++) {
            memcpy(s, good_sid, CS__SID_STRLEN);
            s[pos] = (char)c;
            int rc = sid_parse_exact(s, CS__SID_STRLEN, 'M', 'S', out);
            CHECK_INT(rc, is_hex(c) ? 0 : -1);
            if (rc == 0) {
                int i = (pos - 2) / 2, hi = (pos - 2) % 2 == 0;
                int v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
                CHECK_INT(hi ? out[i] >> 4 : out[i] & 15, v);
            }
        }
    }
    CHECK_INT(sid_parse_exact("MS0123456789abcdeg0011223344556677",
                              CS__SID_STRLEN, 'M', 'S', out), -1);
    CHECK_INT(sid_parse_exact("MS 123456789abcdef0011223344556677",
                              CS__SID_STRLEN, 'M', 'S', out), -1);
    CHECK_INT(sid_parse_exact("MS0123456789abcdef001122334455667-",
                              CS__SID_STRLEN, 'M', 'S', out), -1);
}

TEST(sid_embedded_nul) {
    uint8_t out[CS__SID_BYTES];
    static const char nul_mid[] = "MS0123456789abcd" "\0"
                                  "f0011223344556677";
    static const char nul_end[] = "MS0123456789abcdef001122334455667" "\0";
    static const char nul_pre[] = "M" "\0" "0123456789abcdef0011223344556677";
    CHECK_INT(sizeof nul_mid - 1, CS__SID_STRLEN);
    CHECK_INT(sizeof nul_end - 1, CS__SID_STRLEN);
    CHECK_INT(sizeof nul_pre - 1, CS__SID_STRLEN);
    CHECK_INT(sid_parse_exact(nul_mid, CS__SID_STRLEN, 'M', 'S', out), -1);
    CHECK_INT(sid_parse_exact(nul_end, CS__SID_STRLEN, 'M', 'S', out), -1);
    CHECK_INT(sid_parse_exact(nul_pre, CS__SID_STRLEN, 'M', 'S', out), -1);
    CHECK(!cs__sid_match(nul_mid, CS__SID_STRLEN, 'M', 'S'));
}

static const check_test tests[] = {
    T(siphash64_vectors),
    T(siphash128_vectors),
    T(siphash_unaligned),
    T(siphash_long_messages),
    T(siphash_u64_matches_general_form),
    T(siphash_bit_sensitivity),
    T(time_known_values),
    T(time_offsets),
    T(time_fractions),
    T(time_leap_years),
    T(time_month_ends),
    T(time_range_ends),
    T(time_malformed),
    T(time_truncated_prefixes),
    T(time_format_vs_gmtime),
    T(time_random_round_trip),
    T(time_every_day),
    T(sid_round_trip),
    T(sid_case_insensitive),
    T(sid_wrong_prefix),
    T(sid_wrong_length),
    T(sid_non_hex),
    T(sid_embedded_nul),
};

CHECK_MAIN(tests)
