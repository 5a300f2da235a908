/* cs__sid_parse / cs__sid_format / cs__sid_match against the rule of
 * DECISIONS.md: two prefix letters (ASCII case-insensitive) + exactly 32 hex
 * digits (either case), normalised to lower case. The first input byte picks
 * the prefix; the rest is the candidate. Checks:
 *  - parse accepts exactly what the reference accepts, with the same bytes;
 *  - match agrees with parse; a failed parse leaves its output alone;
 *  - format(parse(s)) is s with its prefix as given and its hex lower-cased,
 *    and parses back to the same bytes;
 *  - format of arbitrary 16 bytes (from the input) parses back. */
#include "fuzz.h"
#include "internal.h"

#include <string.h>

static const char PREFIXES[][2] = {{'I', 'S'}, {'C', 'H'}, {'I', 'M'},
                                   {'M', 'E'}, {'A', 'C'}, {'R', 'L'},
                                   {'Z', 'Z'}, {'@', '['}};

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static unsigned char lower(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static bool ref_parse(const unsigned char *s, size_t n, char p0, char p1,
                      uint8_t out[16]) {
    if (n != 34 || lower(s[0]) != lower((unsigned char)p0) ||
        lower(s[1]) != lower((unsigned char)p1))
        return false;
    for (size_t i = 0; i < 16; i++) {
        int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return true;
}

static void check_roundtrip(char p0, char p1, const uint8_t b[16]) {
    char txt[CS__SID_STRLEN + 2];
    memset(txt, 'x', sizeof txt);
    cs__sid_format(p0, p1, b, txt);
    FZ_CHECK(txt[CS__SID_STRLEN] == '\0' && strlen(txt) == CS__SID_STRLEN,
             "format length");
    FZ_CHECK(txt[0] == p0 && txt[1] == p1, "format prefix %.2s", txt);
    for (int i = 2; i < CS__SID_STRLEN; i++)
        FZ_CHECK((txt[i] >= '0' && txt[i] <= '9') ||
                     (txt[i] >= 'a' && txt[i] <= 'f'),
                 "format digit %d of %s", i, txt);
    char *exact = fz_dup(txt, CS__SID_STRLEN);
    uint8_t back[16];
    FZ_CHECK(cs__sid_parse(exact, CS__SID_STRLEN, p0, p1, back) == 0 &&
                 memcmp(back, b, 16) == 0,
             "parse(format) for %s", txt);
    FZ_CHECK(cs__sid_match(exact, CS__SID_STRLEN, p0, p1), "match(format)");
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *pre = PREFIXES[data[0] % (sizeof PREFIXES / sizeof PREFIXES[0])];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    char *s = fz_dup(in, n);

    uint8_t got[16], want[16];
    memset(got, 0xA5, sizeof got);
    bool ok = cs__sid_parse(s, n, pre[0], pre[1], got) == 0;
    bool rok = ref_parse(in, n, pre[0], pre[1], want);
    FZ_CHECK(ok == rok, "parse %d, reference %d: %.*s", ok, rok, (int)n, s);
    FZ_CHECK(cs__sid_match(s, n, pre[0], pre[1]) == ok, "match disagrees");
    if (ok) {
        FZ_CHECK(memcmp(got, want, 16) == 0, "decoded bytes differ");
        char txt[CS__SID_STRLEN + 1];
        cs__sid_format(pre[0], pre[1], got, txt);
        FZ_CHECK(txt[0] == pre[0] && txt[1] == pre[1], "prefix");
        for (size_t i = 2; i < CS__SID_STRLEN; i++)
            FZ_CHECK(txt[i] == (char)lower(in[i]), "format is not the "
                     "lower-cased input at %zu: %s", i, txt);
        check_roundtrip(pre[0], pre[1], got);
    } else {
        for (size_t i = 0; i < 16; i++)
            FZ_CHECK(got[i] == 0xA5, "a failed parse wrote its output");
    }
    free(s);

    if (n >= 16) check_roundtrip(pre[0], pre[1], in);
    return 0;
}
