/* cs__json_valid against an independent reference.
 *
 * The reference is a plain recursive-descent parser written from RFC 8259,
 * with UTF-8 inside strings decoded by utf8proc_iterate, and a depth cap:
 * for inputs nested deeper than the cap it gives no verdict and only the
 * two library copies are compared. Every input also runs through a second
 * copy of the validator built with a 64-level bit ring (json_small.c), which
 * must agree with the library at any depth: with 64 levels, a few KiB of
 * brackets already go through the ring's overwrite and refill paths.
 * Checks: same verdicts, no crash, no read past the end (exact-size copies,
 * ASan), also for the input minus its last byte. */
#include "fuzz.h"
#include "text.h"

#include <stdbool.h>
#include <utf8proc.h>

bool fzj_small_json_valid(const char *s, size_t n);

#define REF_MAX_DEPTH 200

typedef struct ref {
    const unsigned char *p, *end;
    bool too_deep; /* the verdict is void */
} ref;

static void ref_ws(ref *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' ||
                             *r->p == '\r'))
        r->p++;
}

static bool ref_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

static bool ref_string(ref *r) { /* at the opening quote */
    r->p++;
    for (;;) {
        if (r->p >= r->end) return false;
        unsigned char c = *r->p;
        if (c == '"') {
            r->p++;
            return true;
        }
        if (c == '\\') {
            r->p++;
            if (r->p >= r->end) return false;
            switch (*r->p) {
            case '"': case '\\': case '/': case 'b':
            case 'f': case 'n': case 'r': case 't':
                r->p++;
                break;
            case 'u':
                for (int i = 1; i <= 4; i++)
                    if (r->end - r->p <= i || !ref_hex(r->p[i])) return false;
                r->p += 5;
                break;
            default:
                return false;
            }
        } else if (c < 0x20) {
            return false;
        } else if (c < 0x80) {
            r->p++;
        } else {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k =
                utf8proc_iterate(r->p, (utf8proc_ssize_t)(r->end - r->p), &cp);
            if (k <= 0) return false;
            r->p += k;
        }
    }
}

static bool ref_digit(const ref *r) {
    return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

static bool ref_number(ref *r) {
    if (r->p < r->end && *r->p == '-') r->p++;
    if (!ref_digit(r)) return false;
    if (*r->p == '0') {
        r->p++;
    } else {
        while (ref_digit(r)) r->p++;
    }
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!ref_digit(r)) return false;
        while (ref_digit(r)) r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
        if (!ref_digit(r)) return false;
        while (ref_digit(r)) r->p++;
    }
    return true;
}

static bool ref_word(ref *r, const char *w) {
    for (; *w; w++, r->p++)
        if (r->p >= r->end || *r->p != (unsigned char)*w) return false;
    return true;
}

static bool ref_value(ref *r, int depth);

static bool ref_array(ref *r, int depth) {
    r->p++; /* [ */
    ref_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return true;
    }
    for (;;) {
        if (!ref_value(r, depth)) return false;
        ref_ws(r);
        if (r->p >= r->end) return false;
        if (*r->p == ']') {
            r->p++;
            return true;
        }
        if (*r->p != ',') return false;
        r->p++;
    }
}

static bool ref_object(ref *r, int depth) {
    r->p++; /* { */
    ref_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return true;
    }
    for (;;) {
        ref_ws(r);
        if (r->p >= r->end || *r->p != '"' || !ref_string(r)) return false;
        ref_ws(r);
        if (r->p >= r->end || *r->p != ':') return false;
        r->p++;
        if (!ref_value(r, depth)) return false;
        ref_ws(r);
        if (r->p >= r->end) return false;
        if (*r->p == '}') {
            r->p++;
            return true;
        }
        if (*r->p != ',') return false;
        r->p++;
    }
}

/* A value with surrounding whitespace skipped before it; depth counts the
 * containers already open. */
static bool ref_value(ref *r, int depth) {
    ref_ws(r);
    if (r->p >= r->end) return false;
    switch (*r->p) {
    case '[':
    case '{':
        if (depth + 1 > REF_MAX_DEPTH) {
            r->too_deep = true;
            return false;
        }
        return *r->p == '[' ? ref_array(r, depth + 1) : ref_object(r, depth + 1);
    case '"':
        return ref_string(r);
    case 't':
        return ref_word(r, "true");
    case 'f':
        return ref_word(r, "false");
    case 'n':
        return ref_word(r, "null");
    default:
        return ref_number(r);
    }
}

/* 1 valid, 0 invalid, -1 too deep for the reference. */
static int ref_json(const unsigned char *s, size_t n) {
    ref r = {s, s + n, false};
    bool ok = ref_value(&r, 0);
    if (r.too_deep) return -1;
    if (!ok) return 0;
    ref_ws(&r);
    return r.p == r.end;
}

static void check_one(const uint8_t *data, size_t n) {
    char *s = fz_dup(data, n);
    bool lib = cs__json_valid(s, n);
    bool small = fzj_small_json_valid(s, n);
    int want = ref_json((const unsigned char *)s, n);
    free(s);
    FZ_CHECK(lib == small, "library %d, 64-level ring %d (n=%zu)", lib, small,
             n);
    if (want >= 0)
        FZ_CHECK(lib == (want == 1), "library %d, reference %d (n=%zu)", lib,
                 want, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_one(data, size);
    if (size > 0 && size <= 4096) check_one(data, size - 1);
    return 0;
}
