/* Operation-sequence fuzzer: chatstore against a reference model.
 *
 * The input bytes decode into a sequence of public API calls (services,
 * channels, messages, media, the three lists, clock ticks, limit changes,
 * injected allocation failures, store clears), every parameter drawn from a
 * small pool of valid and invalid values. Each call runs on the store and on
 * a reference model written here for obviousness: plain arrays, linear
 * scans, no hashing, no blocks. The model does not generate SIDs: it learns
 * each one from the store's create result and checks that it is well formed
 * and new.
 *
 * Compared after every call: acceptance and the exact error code, every
 * field of every returned view, message indices, pages (items in order,
 * page size after clamping, echoed Page/Order/token, whether next and
 * previous tokens exist), the events the observer received (and, inside
 * the observer, that mutations are refused, the store is consistent and
 * the changed object is (not) fetchable), store stats. cs_store_check runs
 * after every mutating call (inside the bulk operations on a store of 64+
 * messages: after every 16th call and at the end of the bulk).
 *
 * Page tokens: the model keeps every token the store issued with what it
 * means (list, direction, bound) and computes pages itself from that
 * meaning; a token is valid exactly for the list and direction it was
 * issued for. The same meaning must always give the same token.
 *
 * A shadow store (same options) receives only the calls that succeeded on
 * the main store; at every full check their canonical dumps (tests/dump.h,
 * which includes the SID counter and serial) must be byte-identical. That
 * is how "a failed call changes nothing, allocation failure included" is
 * checked beyond what the model sees.
 *
 * Durability: the main store's journal hook keeps a copy of every record
 * (one per commit, numbered in order) and, when an operation arms it,
 * refuses one: the call must fail with JOURNAL_REFUSED and change, notify
 * and commit nothing, like an allocation failure. The snapshot operation
 * saves the store, loads the image into a new store (same options) and
 * compares canonical dumps; the replay operation loads the last image (or
 * makes a new store) and applies the records journaled after it, which
 * must give the main store's dump again. Either may replace the main
 * store with the one it built, for the rest of the input: the model and
 * the shadow keep comparing against a loaded or rebuilt store.
 *
 * Small limits (body 64 bytes, attributes 48, names 10 code points,
 * identities 8, page size max 7, ...) make the edges common. */
#include "fuzz.h"
#include "internal.h"
#include "dump.h"

#include <string.h>
#include <utf8proc.h>

/* The model compares SIDs and names by the thousand per input; a plain loop
 * keeps those out of ASan's strcmp interceptor and libFuzzer's strcmp hook
 * (the harness itself is not instrumented for coverage, see CMakeLists). */
static int str_cmp(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

/* ======================================================================== */
/* Pools                                                                     */
/* ======================================================================== */

typedef struct pv {
    const char *p; /* NULL: absent */
    size_t n;
    int ok;     /* pool-specific validity label */
    int64_t v;  /* pool-specific value (dates, webhook) */
} pv;

#define ABS {NULL, 0, 1, 0}
#define L(lit, ok, v) {lit, sizeof(lit) - 1, ok, v}
#define NP(a) (sizeof(a) / sizeof((a)[0]))

static const pv P_BODY[] = {
    ABS,
    L("", 1, 0),
    L("hello", 1, 0),
    L("hi\0there", 1, 0),
    L("h\xc3\xa9llo w\xc3\xb6rld", 1, 0),
    L("\xff\xfe", 1, 0),
    L("\xed\xa0\x80", 1, 0),
    L("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1, 0),
    L("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 1, 0),
    L("cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\xc3\xa9",
      1, 0),
    L("ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\xc3\xa9",
      1, 0),
    L("line\nbreak \"q\" \\ \t\x01\x7f", 1, 0),
    L("\xf0\x9f\x98\x80", 1, 0),
    L("hello", 1, 0),
    L("x", 1, 0),
    L("\xc3", 1, 0),
    L("\b\f\r\x1f", 1, 0),
};

/* ok: valid JSON */
static const pv P_ATTR[] = {
    ABS,
    L("{}", 1, 0),
    L("", 0, 0),
    L("{\"a\":1}", 1, 0),
    L("[1,2,{\"b\":null}]", 1, 0),
    L("null", 1, 0),
    L(" {} ", 1, 0),
    L("{", 0, 0),
    L("{\"a\":}", 0, 0),
    L("\"str\"", 1, 0),
    L("{\"k\":\"\xff\"}", 0, 0),
    L("[\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]", 1, 0), /* 48 */
    L("[\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]", 1, 0), /* 49 */
    L("{\"a\":[[[[[]]]]]}", 1, 0),
    L("  \t\n[]\r\n", 1, 0),
    L("{\"u\":\"\\ud800\\u00e9\"}", 1, 0),
    L("01", 0, 0),
    L("{}{}", 0, 0),
};

static const pv P_IDENT[] = {
    ABS,
    L("", 1, 0),
    L("alice", 1, 0),
    L("bob", 1, 0),
    L("system", 1, 0),
    L("\xc3\xbcn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9", 1, 0), /* 7 code points */
    L("12345678", 1, 0),
    L("123456789", 1, 0),
    L("\xc3\x28", 1, 0),
    L("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
      "\xc3\xa9", 1, 0), /* 9 code points, 18 bytes */
    L("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 1, 0), /* 33 */
    L("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\xff", 1, 0),
    L("Alice", 1, 0),
};

/* ok: parses; v: the value */
static const pv P_DATE[] = {
    ABS,
    L("2020-01-01T00:00:00Z", 1, INT64_C(1577836800)),
    L("2016-03-24T20:37:57Z", 1, INT64_C(1458851877)),
    L("2021-06-01T12:00:00.123+02:00", 1, INT64_C(1622541600)),
    L("1999-12-31t23:59:59z", 1, INT64_C(946684799)),
    L("2020-02-30T00:00:00Z", 0, 0),
    L("", 0, 0),
    L("0001-01-01T00:00:00+01:00", 0, 0),
    L("9999-12-31T23:59:59Z", 1, INT64_C(253402300799)),
    L("0000-12-31T23:30:00-01:00", 1, INT64_C(-62135595000)),
    L("2020-01-01 00:00:00Z", 0, 0),
    L("1970-01-01T00:00:00-0530", 1, INT64_C(19800)),
    L("2000-02-29T12:00:00+14", 1, INT64_C(951775200)),
    L("2016-03-24T20:37:60Z", 0, 0),
};

/* ok: valid; v: cs_webhook */
static const pv P_WEBHOOK[] = {
    {NULL, 0, 1, CS_WEBHOOK_ABSENT},
    L("true", 1, CS_WEBHOOK_TRUE),
    L("false", 1, CS_WEBHOOK_FALSE),
    L("TRUE", 1, CS_WEBHOOK_TRUE),
    L("False", 1, CS_WEBHOOK_FALSE),
    L("tRuE", 1, CS_WEBHOOK_TRUE),
    L("yes", 0, 0),
    L("", 0, 0),
    L("true ", 0, 0),
};

static const pv P_FNAME[] = {
    ABS,
    L("", 1, 0),
    L("Svc", 1, 0),
    L("Service One", 1, 0), /* 11 */
    L("\xc3\x84\xc3\x96\xc3\x9c\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f\xc3\xa0\xc3\xa9",
      1, 0), /* 9 code points */
    L("0123456789", 1, 0),
    L("\xff", 1, 0),
    L("General", 1, 0),
};

static const pv P_UNAME[] = {
    ABS,
    L("", 1, 0),
    L("general", 1, 0),
    L("random", 1, 0),
    L("General", 1, 0),
    L("CH0123456789abcdef0123456789abcdef", 1, 0),
    L("ch0123456789ABCDEF0123456789abcdef", 1, 0),
    L("a/b c", 1, 0),
    L("\xc3\xbcnique", 1, 0),
    L("0123456789a", 1, 0),
    L("\xc0\x80", 1, 0),
    L("CH0123", 1, 0),
};

/* ok: the channel type it names, 0 invalid */
static const pv P_CTYPE[] = {
    {NULL, 0, CS_CHANNEL_PUBLIC, 0},
    L("public", CS_CHANNEL_PUBLIC, 0),
    L("private", CS_CHANNEL_PRIVATE, 0),
    L("Public", 0, 0),
    L("", 0, 0),
};

/* ok: syntax valid (lengths are checked by the model) */
static const pv P_CT[] = {
    {NULL, 0, 0, 0},
    L("", 0, 0),
    L("image/png", 1, 0),
    L("text/plain; charset=utf-8", 1, 0),
    L("bad", 0, 0),
    L("a/", 0, 0),
    L("/b", 0, 0),
    L("a/b;", 1, 0),
    L("a b/c", 0, 0),
    L("x/y\x01", 0, 0),
    L("x/y;\x7f", 0, 0),
    L("application/octet-stream", 1, 0),
    L("a/b/c", 0, 0),
};

static const pv P_FILENAME[] = {
    ABS,
    L("", 1, 0),
    L("a.png", 1, 0),
    L("\xff.png", 1, 0),
    L("long-file-name.jpeg", 1, 0),
    L("\xc3\xbc.txt", 1, 0),
};

static const uint64_t P_SIZE[] = {0, 1, 10, 1000, 1001, UINT64_MAX};

static const pv P_PAGESIZE[] = {
    ABS,
    L("1", 1, 0),
    L("2", 1, 0),
    L("3", 1, 0),
    L("7", 1, 0),
    L("8", 1, 0),
    L("0", 1, 0),
    L("-1", 1, 0),
    L("abc", 1, 0),
    L("", 1, 0),
    L("99999999999999999999", 1, 0),
    L("007", 1, 0),
    L("4294967296", 1, 0),
    L("00", 1, 0),
    L("5", 1, 0),
};

static const pv P_PAGE[] = {
    ABS,
    L("0", 1, 0),
    L("1", 1, 0),
    L("2", 1, 0),
    L("3", 1, 0),
    L("x", 1, 0),
    L("", 1, 0),
    L("1000000000000000", 1, 0),
    L("9007199254740991", 1, 0), /* CS_PAGE_MAX */
    L("9007199254740992", 1, 0),
    L("-1", 1, 0),
    L("01", 1, 0),
};

/* ok: 0 asc, 1 desc, -1 invalid */
static const pv P_ORDER[] = {
    {NULL, 0, 0, 0},
    L("asc", 0, 0),
    L("desc", 1, 0),
    L("ASC", -1, 0),
    L("", -1, 0),
    L("descending", -1, 0),
};

static const pv P_TYPE[] = {
    L("public", CS_CHANNEL_PUBLIC, 0),
    L("private", CS_CHANNEL_PRIVATE, 0),
    L("Public", 0, 0),
    L("", 0, 0),
    {NULL, 0, 0, 0},
};

static const pv P_GARBAGE_TOKEN[] = {
    L("", 0, 0),
    L("PT", 0, 0),
    L("PTA00000000000000000000000000000000", 0, 0),
    L("PTAffffffffffffffff0123456789abcdef", 0, 0),
    L("PTB7fffffffffffffff0000000000000000", 0, 0),
    L("PTD8000000000000000ffffffffffffffff", 0, 0),
    L("pta0000000000000000000000000000000000", 0, 0),
    L("\xff\xfe", 0, 0),
};

static const cs_limits LIMITS[] = {
    {64, 48, 10, 8, 7, 1000, 25, 12, 0, 0, 0, 0},
    {8, 4, 3, 3, 3, 10, 10, 4, 0, 0, 0, 0},
    {32768, 16384, 256, 256, 1000, UINT64_C(157286400), 255, 255, 0, 0, 0, 0},
    {64, 48, 10, 8, 1, 1000, 25, 12, 0, 0, 0, 0},
    {1, 2, 1, 1, 2, 1, 3, 1, 0, 0, 0, 0},
    /* count quotas (the byte quota depends on the allocator's sizes, which
     * the model does not know) */
    {64, 48, 10, 8, 7, 1000, 25, 12, 3, 6, 60, 0},
    {64, 48, 10, 8, 7, 1000, 25, 12, 1, 1, 2, 0},
};

#define T0 INT64_C(1458851877)

/* ======================================================================== */
/* Input                                                                     */
/* ======================================================================== */

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static unsigned u8(rd *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

static unsigned pick(rd *r, size_t n) { return (unsigned)(u8(r) % n); }

static const pv *pool(rd *r, const pv *p, size_t n) { return &p[pick(r, n)]; }

static cs_str str_of(const pv *v) { return (cs_str){v->p, v->n}; }

/* ======================================================================== */
/* Model                                                                     */
/* ======================================================================== */

#define MAX_SVC 8
#define MAX_CHAN 24
#define MAX_MSG 1400
#define MAX_MEDIA 24
#define MAX_TOK 8192
#define SBUF 80
#define MAX_OPS 300

typedef struct mstr {
    bool null;
    size_t n;
    char b[SBUF];
} mstr;

typedef struct msvc {
    char sid[CS_SID_BUFSZ], role[3][CS_SID_BUFSZ];
    bool alive;
    mstr fn;
    int64_t dc, du, serial;
} msvc;

typedef struct mchan {
    char sid[CS_SID_BUFSZ];
    int svc;
    bool alive;
    mstr fn, un, attr, by;
    int type;
    int64_t dc, du, serial, next_index;
} mchan;

typedef struct mmsg {
    char sid[CS_SID_BUFSZ];
    int chan;
    bool alive, edited;
    int64_t index, dc, du;
    mstr attr, body, lub, from;
    int media; /* -1 none */
} mmsg;

typedef struct mmedia {
    char sid[CS_SID_BUFSZ];
    int svc;
    mstr ct, fn;
    uint64_t size;
    int64_t dc;
    bool attached;
    bool gone; /* deleted with its message, or by cs_media_delete */
    int msg, chan;
} mmedia;

enum { TK_NEXT = 0, TK_PREV = 1 };

typedef struct mtok {
    char str[CS_TOKEN_BUFSZ];
    cs_page_kind kind;
    int list; /* services: 0; channels: service index; messages: channel */
    bool desc;
    int tkind;
    int64_t bound;
} mtok;

/* A list call, remembered with a token it returned so it can be followed. */
typedef struct lctx {
    cs_page_kind kind;
    int svc, chan; /* model indices */
    int order, ps, types; /* pool indices / type mask selector */
    uint64_t page;
    int tok; /* index into the token table */
} lctx;

typedef struct model {
    msvc svc[MAX_SVC];
    mchan chan[MAX_CHAN];
    mmsg msg[MAX_MSG];
    mmedia media[MAX_MEDIA];
    int nsvc, nchan, nmsg, nmedia;
    int64_t serial;
    cs_limits lim;
    mtok tok[MAX_TOK];
    int ntok;
    lctx recent[16];
    int nrecent, recent_at;
} model;

/* ---- globals ------------------------------------------------------------ */

static model M;
static cs_store *S, *SH; /* the store under test, its shadow */
static char ACCOUNT[CS_SID_BUFSZ];
static int64_t g_now;
static long g_fail_at = -1; /* allocation to fail, counting down; -1 none */
static bool g_armed;        /* an allocation failure is armed for this call */
static size_t g_base_bytes; /* bytes_allocated of a new store */
static size_t g_op;
static unsigned long g_nalloc; /* allocations through fz_malloc, ever */

/* The journal of S: every record its hook accepted, in order (the hook
 * moves to each store that replaces S, so this is the journal of the
 * whole input since seq 1). Every accepted record commits, so the count
 * always equals the model's commit count. */
typedef struct jcopy {
    uint8_t *p;
    size_t n;
} jcopy;
static jcopy *g_rec;
static size_t g_nrec, g_caprec;
static bool g_refuse;      /* refuse the next record (one-shot, one op) */
static int g_refuse_rc;    /* the non-zero value the hook returns then */
static unsigned g_refused; /* refusals not yet accounted for by a check */

static int64_t fz_clock(void *ctx) {
    (void)ctx;
    return g_now;
}

static int64_t now_eff(void) {
    return g_now < 0 ? 0 : g_now > CS__TIME_MAX ? CS__TIME_MAX : g_now;
}

/* The stores' allocator: each block carries its size in a header, so that
 * free can check it receives the size that was allocated (the allocator
 * contract in chatstore.h). ctx non-NULL: the one whose allocations can be
 * made to fail. */
#define HDR 16
static void *fz_malloc(void *ctx, size_t n) {
    g_nalloc++;
    if (ctx) {
        if (g_fail_at == 0) {
            g_fail_at = -1;
            return NULL;
        }
        if (g_fail_at > 0) g_fail_at--;
    }
    char *p = malloc(n + HDR);
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    return p + HDR;
}

static void fz_free(void *ctx, void *p, size_t n) {
    (void)ctx;
    if (!p) return;
    char *b = (char *)p - HDR;
    size_t had;
    memcpy(&had, b, sizeof had);
    FZ_CHECK(had == n, "free of a %zu-byte block with size %zu", had, n);
    free(b);
}

static int g_failing_tag;
static const cs_allocator FAILING = {fz_malloc, fz_free, &g_failing_tag};
static const cs_allocator CHECKING = {fz_malloc, fz_free, NULL};

#define FAIL(...)                                                             \
    do {                                                                      \
        fprintf(stderr, "op %zu: ", g_op);                                    \
        FZ_CHECK(0, __VA_ARGS__);                                             \
    } while (0)
#define ENSURE(c, ...)                                                        \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "op %zu: %s: ", g_op, #c);                        \
            FZ_CHECK(0, __VA_ARGS__);                                         \
        }                                                                     \
    } while (0)

/* ---- strings ------------------------------------------------------------ */

static mstr ms(cs_str v) {
    mstr m;
    memset(&m, 0, sizeof m);
    m.null = v.ptr == NULL;
    if (v.ptr) {
        FZ_CHECK(v.len < SBUF, "pool string too long");
        m.n = v.len;
        memcpy(m.b, v.ptr, v.len);
    }
    return m;
}

static mstr ms_c(const char *s) { return ms(cs_str_c(s)); }

static bool ms_eq(cs_str v, const mstr *m) {
    if (m->null) return v.ptr == NULL;
    return v.ptr && v.len == m->n && memcmp(v.ptr, m->b, m->n) == 0;
}

static void ms_print(const char *what, cs_str v, const mstr *m) {
    fprintf(stderr, "%s: got ", what);
    if (v.ptr)
        fprintf(stderr, "\"%.*s\" (%zu)", (int)v.len, v.ptr, v.len);
    else
        fprintf(stderr, "null");
    fprintf(stderr, ", model ");
    if (m->null)
        fprintf(stderr, "null\n");
    else
        fprintf(stderr, "\"%.*s\" (%zu)\n", (int)m->n, m->b, m->n);
}

#define ENSURE_STR(v, m, what)                                                \
    do {                                                                      \
        if (!ms_eq((v), (m))) {                                               \
            ms_print(what, (v), (m));                                         \
            FAIL("%s differs", what);                                         \
        }                                                                     \
    } while (0)

/* Code points via utf8proc, SIZE_MAX when not UTF-8. */
static size_t m_chars(cs_str v) {
    size_t count = 0;
    const uint8_t *p = (const uint8_t *)v.ptr;
    for (size_t i = 0; i < v.len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate(p + i, (utf8proc_ssize_t)(v.len - i), &cp);
        if (k <= 0) return SIZE_MAX;
        i += (size_t)k;
        count++;
    }
    return count;
}

static cs_err m_text(cs_str v, size_t max, cs_err too_long) {
    if (!v.ptr) return CS_OK;
    size_t n = m_chars(v);
    if (n == SIZE_MAX) return CS_E_BAD_UTF8;
    return n > max ? too_long : CS_OK;
}

static cs_err m_attr(const pv *a) {
    if (!a->p) return CS_OK;
    if (a->n > M.lim.attributes_bytes) return CS_E_ATTRIBUTES_TOO_LONG;
    return a->ok ? CS_OK : CS_E_ATTRIBUTES_INVALID;
}

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char lowc(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* The canonical form of a SID reference with this prefix, or false. */
static bool m_sid_norm(cs_str v, const char *prefix, char out[CS_SID_BUFSZ]) {
    if (!v.ptr || v.len != 34 || lowc(v.ptr[0]) != lowc(prefix[0]) ||
        lowc(v.ptr[1]) != lowc(prefix[1]))
        return false;
    out[0] = prefix[0];
    out[1] = prefix[1];
    for (int i = 2; i < 34; i++) {
        if (hexv(v.ptr[i]) < 0) return false;
        out[i] = lowc(v.ptr[i]);
    }
    out[34] = '\0';
    return true;
}

static void check_sid_shape(const char *sid, const char *prefix) {
    ENSURE(strlen(sid) == 34 && sid[0] == prefix[0] && sid[1] == prefix[1],
           "malformed SID %s", sid);
    for (int i = 2; i < 34; i++)
        ENSURE((sid[i] >= '0' && sid[i] <= '9') ||
                   (sid[i] >= 'a' && sid[i] <= 'f'),
               "malformed SID %s", sid);
}

/* A SID the store just generated: well formed and never seen before. */
static void learn_sid(const char *sid, const char *prefix) {
    check_sid_shape(sid, prefix);
    bool dup = str_cmp(sid, ACCOUNT) == 0;
    for (int i = 0; i < M.nsvc && !dup; i++) {
        dup = str_cmp(M.svc[i].sid, sid) == 0;
        for (int k = 0; k < 3; k++) dup = dup || str_cmp(M.svc[i].role[k], sid) == 0;
    }
    for (int i = 0; i < M.nchan && !dup; i++) dup = str_cmp(M.chan[i].sid, sid) == 0;
    for (int i = 0; i < M.nmsg && !dup; i++) dup = str_cmp(M.msg[i].sid, sid) == 0;
    for (int i = 0; i < M.nmedia && !dup; i++)
        dup = str_cmp(M.media[i].sid, sid) == 0;
    ENSURE(!dup, "SID %s issued twice", sid);
}

/* ---- lookups ------------------------------------------------------------ */

static int m_service(cs_str ref) {
    char n[CS_SID_BUFSZ];
    if (!m_sid_norm(ref, "IS", n)) return -1;
    for (int i = 0; i < M.nsvc; i++)
        if (M.svc[i].alive && str_cmp(M.svc[i].sid, n) == 0) return i;
    return -1;
}

static int m_channel(int svc, cs_str ref) {
    if (!ref.ptr || !ref.len) return -1;
    char n[CS_SID_BUFSZ];
    if (m_sid_norm(ref, "CH", n)) {
        for (int i = 0; i < M.nchan; i++)
            if (M.chan[i].alive && M.chan[i].svc == svc &&
                str_cmp(M.chan[i].sid, n) == 0)
                return i;
        return -1;
    }
    for (int i = 0; i < M.nchan; i++) {
        const mchan *c = &M.chan[i];
        if (c->alive && c->svc == svc && !c->un.null && c->un.n == ref.len &&
            memcmp(c->un.b, ref.ptr, ref.len) == 0)
            return i;
    }
    return -1;
}

static cs_err m_resolve(cs_str svc, cs_str ch, int *out) {
    int v = m_service(svc);
    if (v < 0) return CS_E_NOT_FOUND;
    *out = m_channel(v, ch);
    return *out < 0 ? CS_E_NOT_FOUND : CS_OK;
}

static int m_message(int chan, cs_str ref) {
    char n[CS_SID_BUFSZ];
    if (!m_sid_norm(ref, "IM", n)) return -1;
    for (int i = 0; i < M.nmsg; i++)
        if (M.msg[i].alive && M.msg[i].chan == chan &&
            str_cmp(M.msg[i].sid, n) == 0)
            return i;
    return -1;
}

/* Whether media item k is in the store. */
static bool m_media_live(int k) {
    return M.svc[M.media[k].svc].alive && !M.media[k].gone;
}

/* Live objects, for the count quotas. */
static size_t m_live_count(cs_page_kind kind) {
    size_t n = 0;
    if (kind == CS_PAGE_SERVICES)
        for (int i = 0; i < M.nsvc; i++) n += M.svc[i].alive;
    if (kind == CS_PAGE_CHANNELS)
        for (int i = 0; i < M.nchan; i++) n += M.chan[i].alive;
    if (kind == CS_PAGE_MESSAGES)
        for (int i = 0; i < M.nmsg; i++) n += M.msg[i].alive;
    return n;
}

static bool m_at_quota(cs_page_kind kind, uint64_t max) {
    return max && m_live_count(kind) >= max;
}

static int m_media(int svc, cs_str ref) {
    char n[CS_SID_BUFSZ];
    if (!m_sid_norm(ref, "ME", n)) return -1;
    for (int i = 0; i < M.nmedia; i++)
        if (M.media[i].svc == svc && m_media_live(i) &&
            str_cmp(M.media[i].sid, n) == 0)
            return i;
    return -1;
}

/* Live messages of model channel c. */
static int m_live_msgs(int c) {
    int n = 0;
    for (int k = 0; k < M.nmsg; k++) n += M.msg[k].alive && M.msg[k].chan == c;
    return n;
}

static bool unique_taken(int svc, const pv *un, int except) {
    for (int i = 0; i < M.nchan; i++) {
        const mchan *c = &M.chan[i];
        if (i != except && c->alive && c->svc == svc && !c->un.null &&
            c->un.n == un->n && memcmp(c->un.b, un->p, un->n) == 0)
            return true;
    }
    return false;
}

static uint64_t m_count(int chan) {
    uint64_t n = 0;
    for (int i = 0; i < M.nmsg; i++) n += M.msg[i].alive && M.msg[i].chan == chan;
    return n;
}

static int m_last(int chan) {
    int last = -1;
    for (int i = 0; i < M.nmsg; i++)
        if (M.msg[i].alive && M.msg[i].chan == chan &&
            (last < 0 || M.msg[i].index > M.msg[last].index))
            last = i;
    return last;
}

/* ---- view comparison ---------------------------------------------------- */

static cs_err r_svc(const cs_store *s, const void *v, cs_buf *b) {
    return cs_render_service(s, v, b);
}
static cs_err r_chan(const cs_store *s, const void *v, cs_buf *b) {
    return cs_render_channel(s, v, b);
}
static cs_err r_msg(const cs_store *s, const void *v, cs_buf *b) {
    return cs_render_message(s, v, b);
}
static cs_err r_media(const cs_store *s, const void *v, cs_buf *b) {
    return cs_render_media(s, v, b);
}

/* Rendering and validating every view is most of the cost of a full check,
 * which renders everything anyway (the dump): off there. */
static bool g_render = true;

static void render_ok(cs_err (*fn)(const cs_store *, const void *, cs_buf *),
                      const void *v) {
    if (!g_render) return;
    cs_buf b;
    cs_buf_init(&b, NULL);
    cs_err e = fn(S, v, &b);
    ENSURE(e == CS_OK, "render: %s", cs_err_name(e));
    ENSURE(cs__json_valid(b.data, b.len), "rendered JSON invalid: %s", b.data);
    /* Fixed buffers after two bytes of earlier output: just big enough
     * (same text), one byte short (BUFFER_TOO_SMALL, earlier output kept,
     * nothing of the object visible). */
    for (size_t shortby = 0; shortby < 2; shortby++) {
        size_t cap = 2 + b.len + 1 - shortby;
        char *mem = malloc(cap);
        FZ_CHECK(mem, "malloc");
        cs_buf f;
        cs_buf_init_fixed(&f, mem, cap);
        memcpy(mem, "xy", 3);
        f.len = 2;
        e = fn(S, v, &f);
        if (!shortby) {
            ENSURE(e == CS_OK && f.len == 2 + b.len &&
                       memcmp(mem + 2, b.data, b.len + 1) == 0,
                   "render into a fixed buffer: %s", cs_err_name(e));
        } else {
            ENSURE(e == CS_E_BUFFER_TOO_SMALL && f.len == 2 &&
                       memcmp(mem, "xy", 3) == 0,
                   "render into a short buffer: %s, len %zu", cs_err_name(e),
                   f.len);
        }
        cs_buf_free(&f); /* a no-op for fixed buffers */
        ENSURE(f.len == 0, "cs_buf_free");
        free(mem);
    }
    cs_buf_reset(&b);
    ENSURE(b.len == 0 && b.data[0] == '\0', "cs_buf_reset");
    cs_buf_free(&b);
}

static void cmp_service(const cs_service_view *v, int i) {
    const msvc *m = &M.svc[i];
    ENSURE(str_cmp(v->sid, m->sid) == 0, "service sid %s vs %s", v->sid, m->sid);
    ENSURE(str_cmp(v->account_sid, ACCOUNT) == 0, "account");
    ENSURE_STR(v->friendly_name, &m->fn, "service friendly_name");
    ENSURE(v->date_created == m->dc, "service dc %lld vs %lld",
           (long long)v->date_created, (long long)m->dc);
    ENSURE(v->date_updated == m->du, "service du %lld vs %lld",
           (long long)v->date_updated, (long long)m->du);
    ENSURE(str_cmp(v->default_service_role_sid, m->role[0]) == 0 &&
               str_cmp(v->default_channel_role_sid, m->role[1]) == 0 &&
               str_cmp(v->default_channel_creator_role_sid, m->role[2]) == 0,
           "role sids");
    render_ok(r_svc, v);
}

static void cmp_channel(const cs_channel_view *v, int i) {
    const mchan *m = &M.chan[i];
    ENSURE(str_cmp(v->sid, m->sid) == 0, "channel sid %s vs %s", v->sid, m->sid);
    ENSURE(str_cmp(v->account_sid, ACCOUNT) == 0, "account");
    ENSURE(str_cmp(v->service_sid, M.svc[m->svc].sid) == 0, "channel service");
    ENSURE_STR(v->friendly_name, &m->fn, "channel friendly_name");
    ENSURE_STR(v->unique_name, &m->un, "channel unique_name");
    ENSURE_STR(v->attributes, &m->attr, "channel attributes");
    ENSURE((int)v->type == m->type, "channel type %d vs %d", v->type, m->type);
    ENSURE(v->date_created == m->dc, "channel dc %lld vs %lld",
           (long long)v->date_created, (long long)m->dc);
    ENSURE(v->date_updated == m->du, "channel du %lld vs %lld",
           (long long)v->date_updated, (long long)m->du);
    ENSURE_STR(v->created_by, &m->by, "channel created_by");
    ENSURE(v->members_count == 0, "members_count");
    uint64_t cnt = m_count(i);
    ENSURE(v->messages_count == cnt, "messages_count %llu vs %llu",
           (unsigned long long)v->messages_count, (unsigned long long)cnt);
    int last = m_last(i);
    ENSURE(v->has_last_message == (last >= 0), "has_last_message");
    ENSURE(str_cmp(v->last_message_sid, last >= 0 ? M.msg[last].sid : "") == 0,
           "last_message_sid %s", v->last_message_sid);
    render_ok(r_chan, v);
}

static void cmp_message(const cs_message_view *v, int i) {
    const mmsg *m = &M.msg[i];
    const mchan *c = &M.chan[m->chan];
    ENSURE(str_cmp(v->sid, m->sid) == 0, "message sid %s vs %s", v->sid, m->sid);
    ENSURE(str_cmp(v->account_sid, ACCOUNT) == 0, "account");
    ENSURE(str_cmp(v->service_sid, M.svc[c->svc].sid) == 0, "message service");
    ENSURE(str_cmp(v->channel_sid, c->sid) == 0, "message channel");
    ENSURE_STR(v->attributes, &m->attr, "message attributes");
    ENSURE(v->date_created == m->dc, "message dc %lld vs %lld",
           (long long)v->date_created, (long long)m->dc);
    ENSURE(v->date_updated == m->du, "message du %lld vs %lld",
           (long long)v->date_updated, (long long)m->du);
    ENSURE_STR(v->last_updated_by, &m->lub, "message last_updated_by");
    ENSURE(v->was_edited == m->edited, "was_edited");
    ENSURE_STR(v->from, &m->from, "message from");
    ENSURE_STR(v->body, &m->body, "message body");
    ENSURE(v->body.ptr[v->body.len] == '\0', "body not NUL-terminated");
    ENSURE(v->index == m->index, "index %lld vs %lld", (long long)v->index,
           (long long)m->index);
    ENSURE(v->type == (m->media >= 0 ? CS_MESSAGE_MEDIA : CS_MESSAGE_TEXT),
           "message type");
    ENSURE(v->has_media == (m->media >= 0), "has_media");
    if (m->media >= 0) {
        const mmedia *me = &M.media[m->media];
        ENSURE(str_cmp(v->media.sid, me->sid) == 0, "media sid");
        ENSURE(v->media.size == me->size, "media size");
        ENSURE_STR(v->media.content_type, &me->ct, "media content_type");
        ENSURE_STR(v->media.filename, &me->fn, "media filename");
    } else {
        ENSURE(v->media.sid[0] == '\0' && v->media.size == 0 &&
                   !v->media.content_type.ptr && !v->media.filename.ptr,
               "media fields of a text message");
    }
    render_ok(r_msg, v);
}

static void cmp_media(const cs_media_view *v, int i) {
    const mmedia *m = &M.media[i];
    ENSURE(str_cmp(v->sid, m->sid) == 0, "media sid %s vs %s", v->sid, m->sid);
    ENSURE(str_cmp(v->account_sid, ACCOUNT) == 0, "account");
    ENSURE(str_cmp(v->service_sid, M.svc[m->svc].sid) == 0, "media service");
    ENSURE_STR(v->content_type, &m->ct, "media content_type");
    ENSURE_STR(v->filename, &m->fn, "media filename");
    ENSURE(v->size == m->size, "media size");
    ENSURE(v->date_created == m->dc && v->date_updated == m->dc, "media dates");
    ENSURE(v->attached == m->attached, "media attached");
    ENSURE(str_cmp(v->channel_sid, m->attached ? M.chan[m->chan].sid : "") == 0,
           "media channel_sid %s", v->channel_sid);
    ENSURE(str_cmp(v->message_sid, m->attached ? M.msg[m->msg].sid : "") == 0,
           "media message_sid %s", v->message_sid);
    render_ok(r_media, v);
}

static void note(const char *what, int err);

/* ======================================================================== */
/* Journal                                                                   */
/* ======================================================================== */

/* S's journal hook: the record names the seq the hook is given, the next
 * after every record accepted so far (each accepted record commits, so
 * none is handed over twice and none is skipped). An armed refusal
 * refuses it; otherwise a copy is kept. */
static int journal_hook(void *ctx, uint64_t seq, const void *rec, size_t len) {
    ENSURE(ctx == &g_rec, "journal hook context");
    uint64_t rs = 0;
    ENSURE(cs_journal_record_seq(rec, len, &rs) == CS_OK && rs == seq,
           "record says seq %llu, hook given %llu", (unsigned long long)rs,
           (unsigned long long)seq);
    ENSURE(seq == g_nrec + 1, "record seq %llu after %zu records",
           (unsigned long long)seq, g_nrec);
    if (g_refuse) {
        g_refuse = false;
        g_refused++;
        note("journal record refused", -1);
        return g_refuse_rc;
    }
    if (g_nrec == g_caprec) {
        size_t cap = g_caprec ? 2 * g_caprec : 256;
        jcopy *n = realloc(g_rec, cap * sizeof *n);
        FZ_CHECK(n, "realloc");
        g_rec = n;
        g_caprec = cap;
    }
    g_rec[g_nrec].p = (uint8_t *)fz_dup(rec, len);
    g_rec[g_nrec].n = len;
    g_nrec++;
    return 0;
}

static void journal_free(void) {
    for (size_t i = 0; i < g_nrec; i++) free(g_rec[i].p);
    free(g_rec);
    g_rec = NULL;
    g_nrec = g_caprec = 0;
}

/* ======================================================================== */
/* Events                                                                    */
/* ======================================================================== */

typedef struct evrec {
    cs_event_type type;
    cs_webhook wh;
    char sid[CS_SID_BUFSZ];
    uint64_t seq;
    uint64_t rm[4]; /* removed services, channels, messages, media */
} evrec;

static evrec g_ev[4];
static size_t g_nev;
static evrec g_want[4];
static size_t g_nwant;

static bool g_obs_on;  /* the observer is registered */
static uint64_t g_obs_id;

/* Commits the store has made (cs_store_stats.commits), and those the
 * current call should make: every expected event is one commit, whether or
 * not the observer is registered to see it. */
static uint64_t g_commits, g_pending;

static void want_event(cs_event_type t, int64_t wh, const char *sid) {
    g_pending++;
    if (!g_obs_on) return;
    FZ_CHECK(g_nwant < 4, "events");
    memset(&g_want[g_nwant], 0, sizeof g_want[g_nwant]);
    g_want[g_nwant].type = t;
    g_want[g_nwant].wh = (cs_webhook)wh;
    snprintf(g_want[g_nwant].sid, CS_SID_BUFSZ, "%s", sid);
    if (t == CS_EVENT_MESSAGE_DELETED) g_want[g_nwant].rm[2] = 1;
    g_nwant++;
}

/* What the last expected event's delete or clear takes with it. */
static void want_removed(uint64_t svcs, uint64_t chans, uint64_t msgs,
                         uint64_t media) {
    if (!g_obs_on || !g_nwant) return;
    uint64_t *rm = g_want[g_nwant - 1].rm;
    rm[0] = svcs;
    rm[1] = chans;
    rm[2] = msgs;
    rm[3] = media;
}

static int m_live_msgs(int c);

/* Runs inside the store's notification: mutations and lock calls must be
 * refused, reads must see the committed change. */
static void observer(void *ctx, const cs_event *ev) {
    cs_store *s = ctx;
    FZ_CHECK(g_nev < 4, "too many events");
    evrec *r = &g_ev[g_nev++];
    r->type = ev->type;
    r->wh = ev->webhook;
    r->seq = ev->seq;
    r->rm[0] = ev->removed_services;
    r->rm[1] = ev->removed_channels;
    r->rm[2] = ev->removed_messages;
    r->rm[3] = ev->removed_media;
    r->sid[0] = '\0';
    int views = (ev->message != NULL) + (ev->channel != NULL) +
                (ev->service != NULL) + (ev->media != NULL);
    FZ_CHECK(views == (ev->type == CS_EVENT_STORE_CLEARED ? 0 : 1),
             "event %d carries %d views", ev->type, views);
    bool is_msg = ev->type == CS_EVENT_MESSAGE_CREATED ||
                  ev->type == CS_EVENT_MESSAGE_UPDATED ||
                  ev->type == CS_EVENT_MESSAGE_DELETED;
    bool is_chan = ev->type == CS_EVENT_CHANNEL_CREATED ||
                   ev->type == CS_EVENT_CHANNEL_UPDATED ||
                   ev->type == CS_EVENT_CHANNEL_DELETED;
    bool is_svc = ev->type == CS_EVENT_SERVICE_CREATED ||
                  ev->type == CS_EVENT_SERVICE_UPDATED ||
                  ev->type == CS_EVENT_SERVICE_DELETED;
    bool is_media = ev->type == CS_EVENT_MEDIA_CREATED ||
                    ev->type == CS_EVENT_MEDIA_DELETED;
    FZ_CHECK(is_msg == (ev->message != NULL) && is_chan == (ev->channel != NULL) &&
                 is_svc == (ev->service != NULL) &&
                 is_media == (ev->media != NULL),
             "view kind matches event %d", ev->type);
    if (is_msg) memcpy(r->sid, ev->message->sid, CS_SID_BUFSZ);
    if (is_chan) memcpy(r->sid, ev->channel->sid, CS_SID_BUFSZ);
    if (is_svc) memcpy(r->sid, ev->service->sid, CS_SID_BUFSZ);
    if (is_media) memcpy(r->sid, ev->media->sid, CS_SID_BUFSZ);
    note("observer event", -1);

    cs_service_view sv;
    FZ_CHECK(cs_service_create(s, cs_str_c("x"), &sv) == CS_E_REENTRANT,
             "service_create inside an observer");
    FZ_CHECK(cs_store_clear(s) == CS_E_REENTRANT, "clear inside an observer");
    FZ_CHECK(cs_store_lock_shared(s) == CS_E_REENTRANT &&
                 cs_store_lock_exclusive(s) == CS_E_REENTRANT &&
                 cs_store_unlock(s) == CS_E_REENTRANT,
             "lock call inside an observer");
    cs_message_params mp = {0};
    if (is_msg) {
        FZ_CHECK(cs_message_create(s, cs_str_c(ev->message->service_sid),
                                   cs_str_c(ev->message->channel_sid), &mp,
                                   NULL) == CS_E_REENTRANT,
                 "message_create inside an observer");
        FZ_CHECK(cs_message_delete(s, cs_str_c(ev->message->service_sid),
                                   cs_str_c(ev->message->channel_sid),
                                   cs_str_c(ev->message->sid),
                                   CS_STR_ABSENT) == CS_E_REENTRANT,
                 "message_delete inside an observer");
    } else if (is_chan) {
        FZ_CHECK(cs_channel_delete(s, cs_str_c(ev->channel->service_sid),
                                   cs_str_c(ev->channel->sid),
                                   CS_STR_ABSENT) == CS_E_REENTRANT,
                 "channel_delete inside an observer");
    } else if (is_svc) {
        FZ_CHECK(cs_service_delete(s, cs_str_c(ev->service->sid)) ==
                     CS_E_REENTRANT,
                 "service_delete inside an observer");
    }
    FZ_CHECK(cs_store_set_limits(s, &LIMITS[0]) == CS_E_REENTRANT,
             "set_limits inside an observer");
    FZ_CHECK(cs_observer_add(s, observer, s, NULL) == CS_E_REENTRANT,
             "observer_add inside an observer");
    FZ_CHECK(cs_store_set_journal(s, journal_hook, &g_rec) == CS_E_REENTRANT,
             "set_journal inside an observer");
    if (g_nrec) {
        bool ap = true;
        FZ_CHECK(cs_journal_apply(s, g_rec[0].p, g_rec[0].n, &ap, NULL) ==
                         CS_E_REENTRANT &&
                     !ap,
                 "journal_apply inside an observer");
    }
    /* O(store) per event: on stores of 64+ messages, every 16th event */
    static unsigned long nth;
    if (M.nmsg < 64 || nth++ % 16 == 0)
        FZ_CHECK(cs_store_check(s) == CS_OK,
                 "store inconsistent inside the observer of event %d",
                 ev->type);

    bool deleted = ev->type == CS_EVENT_MESSAGE_DELETED ||
                   ev->type == CS_EVENT_CHANNEL_DELETED ||
                   ev->type == CS_EVENT_SERVICE_DELETED ||
                   ev->type == CS_EVENT_MEDIA_DELETED;
    cs_err e = CS_OK;
    if (is_msg) {
        cs_message_view mv;
        e = cs_message_fetch(s, cs_str_c(ev->message->service_sid),
                             cs_str_c(ev->message->channel_sid),
                             cs_str_c(ev->message->sid), &mv);
        if (!e)
            FZ_CHECK(mv.index == ev->message->index &&
                         mv.was_edited == ev->message->was_edited &&
                         mv.date_updated == ev->message->date_updated,
                     "fetch inside the observer differs from the event");
    } else if (is_chan) {
        cs_channel_view cv;
        e = cs_channel_fetch(s, cs_str_c(ev->channel->service_sid),
                             cs_str_c(ev->channel->sid), &cv);
        if (!e)
            FZ_CHECK(cv.messages_count == ev->channel->messages_count &&
                         cv.date_updated == ev->channel->date_updated,
                     "fetch inside the observer differs from the event");
    } else if (is_svc) {
        cs_service_view v;
        e = cs_service_fetch(s, cs_str_c(ev->service->sid), &v);
        if (!e)
            FZ_CHECK(v.date_updated == ev->service->date_updated &&
                         v.friendly_name.len == ev->service->friendly_name.len,
                     "fetch inside the observer differs from the event");
    } else if (is_media) {
        cs_media_view v;
        e = cs_media_fetch(s, cs_str_c(ev->media->service_sid),
                           cs_str_c(ev->media->sid), &v);
        if (!e)
            FZ_CHECK(v.size == ev->media->size,
                     "fetch inside the observer differs from the event");
    } else {
        cs_store_stats st;
        cs_store_stats_get(s, &st);
        FZ_CHECK(st.services == 0 && st.messages == 0,
                 "store not empty inside the observer of a clear");
    }
    FZ_CHECK(e == (deleted ? CS_E_NOT_FOUND : CS_OK),
             "fetch inside the observer of event %d: %s", ev->type,
             cs_err_name(e));
}

/* Compares the events seen with those expected, and the store's commit
 * count with the model's; pending commits count when ok (the call
 * succeeded) and are dropped otherwise. */
static void check_commits(bool ok) {
    /* Events of the committed call are numbered right after the commits
     * made before it. */
    if (ok && g_nev)
        ENSURE(g_ev[0].seq == g_commits + 1, "event seq %llu, model %llu",
               (unsigned long long)g_ev[0].seq,
               (unsigned long long)(g_commits + 1));
    if (ok) g_commits += g_pending;
    g_pending = 0;
    cs_store_stats st;
    cs_store_stats_get(S, &st);
    ENSURE(st.commits == g_commits, "%llu commits, model %llu",
           (unsigned long long)st.commits, (unsigned long long)g_commits);
    ENSURE(g_nrec == g_commits, "%zu journal records, %llu commits", g_nrec,
           (unsigned long long)g_commits);
}

static void check_events(void) {
    ENSURE(g_nev == g_nwant, "%zu events, expected %zu", g_nev, g_nwant);
    for (size_t i = 0; i < g_nev; i++) {
        ENSURE(g_ev[i].type == g_want[i].type && g_ev[i].wh == g_want[i].wh &&
                   str_cmp(g_ev[i].sid, g_want[i].sid) == 0,
               "event %zu: type %d wh %d sid %s, expected %d %d %s", i,
               g_ev[i].type, g_ev[i].wh, g_ev[i].sid, g_want[i].type,
               g_want[i].wh, g_want[i].sid);
        ENSURE(memcmp(g_ev[i].rm, g_want[i].rm, sizeof g_ev[i].rm) == 0,
               "event %zu (type %d) removed %llu/%llu/%llu/%llu, model "
               "%llu/%llu/%llu/%llu",
               i, g_ev[i].type, (unsigned long long)g_ev[i].rm[0],
               (unsigned long long)g_ev[i].rm[1],
               (unsigned long long)g_ev[i].rm[2],
               (unsigned long long)g_ev[i].rm[3],
               (unsigned long long)g_want[i].rm[0],
               (unsigned long long)g_want[i].rm[1],
               (unsigned long long)g_want[i].rm[2],
               (unsigned long long)g_want[i].rm[3]);
        ENSURE(i == 0 || g_ev[i].seq == g_ev[i - 1].seq + 1,
               "event seq %llu after %llu", (unsigned long long)g_ev[i].seq,
               (unsigned long long)g_ev[i - 1].seq);
    }
}

/* ======================================================================== */
/* Statistics (FUZZ_OPS_STATS=1: printed at exit, to see what a corpus covers) */
/* ======================================================================== */

typedef struct stat_row {
    const char *what;
    int err; /* cs_err, or -1 for plain counters */
    unsigned long n;
} stat_row;

static stat_row g_stats[512];
static size_t g_nstats;
static int g_stats_on = -1;

static void stats_print(void) {
    for (size_t i = 0; i < g_nstats; i++)
        fprintf(stderr, "stat %-34s %-26s %lu\n", g_stats[i].what,
                g_stats[i].err < 0 ? "" : cs_err_name((cs_err)g_stats[i].err),
                g_stats[i].n);
}

static void note(const char *what, int err) {
    if (g_stats_on < 0) {
        const char *e = getenv("FUZZ_OPS_STATS");
        g_stats_on = e && *e && *e != '0';
        if (g_stats_on) atexit(stats_print);
    }
    if (!g_stats_on) return;
    for (size_t i = 0; i < g_nstats; i++)
        if (g_stats[i].err == err && str_cmp(g_stats[i].what, what) == 0) {
            g_stats[i].n++;
            return;
        }
    if (g_nstats < sizeof g_stats / sizeof g_stats[0])
        g_stats[g_nstats++] = (stat_row){what, err, 1};
}

/* ======================================================================== */
/* Outcome checking                                                          */
/* ======================================================================== */

/* After a mutating call on the main store. got: its result; want: the
 * model's. With an armed allocation failure, NOMEM is allowed where the
 * model expects success (the call must then change nothing). Returns true
 * when the model should apply the change. */
/* Inside bulk operations on a big store, cs_store_check (O(store)) runs
 * after every 16th call and at the end of the bulk, not after each. */
static bool g_bulk;
static unsigned long g_bulk_n;

static bool outcome(const char *what, cs_err got, cs_err want) {
    note(what, got);
    /* An armed refusal: the first change about to commit is refused, and
     * the call fails as if it had run out of memory. A change the model
     * expects must reach the hook. */
    bool refused = g_refused > 0;
    if (refused) {
        g_refused = 0;
        ENSURE(want == CS_OK && g_pending && got == CS_E_JOURNAL_REFUSED,
               "%s with its record refused: %s, model %s (%llu commits)", what,
               cs_err_name(got), cs_err_name(want),
               (unsigned long long)g_pending);
    } else {
        ENSURE(!(g_refuse && want == CS_OK && g_pending && got == CS_OK),
               "%s committed without a journal record", what);
    }
    if (refused || (got == CS_E_NOMEM && want == CS_OK && g_armed)) {
        g_nwant = 0;
        check_events();
        check_commits(false);
        cs_err ce = cs_store_check(S);
        ENSURE(ce == CS_OK, "cs_store_check after %s: %s", what,
               cs_err_name(ce));
        return false;
    }
    ENSURE(got == want, "%s: %s, model %s", what, cs_err_name(got),
           cs_err_name(want));
    if (got != CS_OK) g_nwant = 0;
    check_events();
    check_commits(got == CS_OK);
    if (!g_bulk || M.nmsg < 64 || ++g_bulk_n % 16 == 0) {
        cs_err ce = cs_store_check(S);
        ENSURE(ce == CS_OK, "cs_store_check after %s: %s", what,
               cs_err_name(ce));
    }
    return got == CS_OK;
}

/* ======================================================================== */
/* Choosing references                                                       */
/* ======================================================================== */

typedef struct refbuf {
    char b[SBUF];
} refbuf;

/* A SID in one of the case variants that must all resolve the same. */
static cs_str sid_variant(const char *sid, unsigned v, refbuf *out) {
    memcpy(out->b, sid, CS_SID_BUFSZ);
    for (int i = 0; i < 34; i++) {
        char c = out->b[i];
        bool up = v == 1 || (v == 3 && i % 2) || (v == 2 && i >= 2);
        bool low = (v == 2 && i < 2) || (v == 3 && !(i % 2));
        if (up && c >= 'a' && c <= 'z') c = (char)(c - 32);
        if (low && c >= 'A' && c <= 'Z') c = (char)(c + 32);
        out->b[i] = c;
    }
    return (cs_str){out->b, 34};
}

static cs_str garbage_sid(const char *prefix, unsigned v, refbuf *out) {
    switch (v % 4) {
    case 0: /* well formed, unknown */
        snprintf(out->b, sizeof out->b, "%s%032d", prefix, 0);
        return cs_str_c(out->b);
    case 1:
        snprintf(out->b, sizeof out->b, "%sxyz", prefix);
        return cs_str_c(out->b);
    case 2: /* 33 hex digits */
        snprintf(out->b, sizeof out->b, "%s%033d", prefix, 7);
        return cs_str_c(out->b);
    default: /* a non-hex digit at the end */
        snprintf(out->b, sizeof out->b, "%s%031dg", prefix, 1);
        return cs_str_c(out->b);
    }
}

static cs_str pick_service(rd *r, refbuf *out) {
    unsigned k = u8(r), v = u8(r);
    if (k % 8 < 5 && M.nsvc) {
        const msvc *s = &M.svc[(k / 8) % (unsigned)M.nsvc];
        return sid_variant(s->sid, v % 4, out);
    }
    if (k % 8 == 5) return CS_STR_ABSENT;
    if (k % 8 == 6 && M.nchan) /* the wrong kind of SID */
        return sid_variant(M.chan[v % (unsigned)M.nchan].sid, 0, out);
    return garbage_sid("IS", v, out);
}

static cs_str pick_channel(rd *r, refbuf *out) {
    unsigned k = u8(r), v = u8(r);
    switch (k % 10) {
    case 0: case 1: case 2: case 3: case 4:
        if (M.nchan)
            return sid_variant(M.chan[(k / 10) % (unsigned)M.nchan].sid, v % 4,
                               out);
        return CS_STR_ABSENT;
    case 5: case 6:
        return str_of(&P_UNAME[v % NP(P_UNAME)]);
    case 7:
        return (cs_str){"", 0};
    case 8:
        return CS_STR_ABSENT;
    default:
        return garbage_sid("CH", v, out);
    }
}

static cs_str pick_message(rd *r, refbuf *out) {
    unsigned k = u8(r), v = u8(r), w = u8(r);
    if (k % 8 < 6 && M.nmsg)
        return sid_variant(M.msg[(w | v << 8) % (unsigned)M.nmsg].sid, k / 8 % 4,
                           out);
    if (k % 8 == 6) return CS_STR_ABSENT;
    return garbage_sid("IM", v, out);
}

/* A media SID for MediaSid: mostly one of the given service (-1: any). */
static cs_str pick_media(rd *r, refbuf *out, int svc) {
    unsigned k = u8(r), v = u8(r);
    int in_svc[MAX_MEDIA], n = 0;
    for (int i = 0; i < M.nmedia; i++)
        if (M.media[i].svc == svc) in_svc[n++] = i;
    switch (k % 8) {
    case 0:
        if (M.nmedia)
            return sid_variant(M.media[(k / 8) % (unsigned)M.nmedia].sid, v % 4,
                               out);
        return CS_STR_ABSENT;
    case 1: case 2:
        if (n) return sid_variant(M.media[in_svc[(k / 8) % (unsigned)n]].sid,
                                  v % 4, out);
        return CS_STR_ABSENT;
    case 3: case 4:
        return CS_STR_ABSENT;
    case 5:
        return (cs_str){"", 0};
    default:
        return garbage_sid("ME", v, out);
    }
}

/* A reference to channel c: its SID in some case variant, or its unique
 * name. */
static cs_str channel_ref(int c, unsigned v, refbuf *out) {
    if (v % 3 == 2 && !M.chan[c].un.null) { /* a copy: the model may change */
        memcpy(out->b, M.chan[c].un.b, M.chan[c].un.n);
        return (cs_str){out->b, M.chan[c].un.n};
    }
    return sid_variant(M.chan[c].sid, v / 3 % 4, out);
}

/* Service + channel (+ message) references that mostly belong together (any
 * of them may be deleted by now); one input in four picks each
 * independently instead. *ci / *mi: the model objects targeted, or -1. */
static void pick_target(rd *r, bool with_msg, cs_str *svc, refbuf *rs,
                        cs_str *ch, refbuf *rc, cs_str *msg, refbuf *rm) {
    unsigned mode = u8(r);
    if (mode % 4 == 0 || !M.nchan || (with_msg && !M.nmsg)) {
        *svc = pick_service(r, rs);
        *ch = pick_channel(r, rc);
        if (with_msg) *msg = pick_message(r, rm);
        return;
    }
    int c;
    if (with_msg) {
        unsigned k = u8(r) | u8(r) << 8;
        int m = (int)(k % (unsigned)M.nmsg);
        /* prefer live messages: a few tries */
        for (int t = 0; t < 4 && !M.msg[m].alive; t++)
            m = (int)((unsigned)(m + 1 + u8(r)) % (unsigned)M.nmsg);
        if (mode / 64 == 0) /* a media message, if there is one */
            for (int i = 0; i < M.nmsg; i++)
                if (M.msg[(m + i) % M.nmsg].media >= 0) {
                    m = (m + i) % M.nmsg;
                    break;
                }
        *msg = sid_variant(M.msg[m].sid, mode / 4 % 4, rm);
        c = M.msg[m].chan;
    } else {
        c = (int)(u8(r) % (unsigned)M.nchan);
    }
    *ch = channel_ref(c, u8(r), rc);
    *svc = sid_variant(M.svc[M.chan[c].svc].sid, mode / 16 % 4, rs);
}

/* ======================================================================== */
/* Shadow store: replays what succeeded                                      */
/* ======================================================================== */

static void shadow_ok(cs_err e, const char *what) {
    ENSURE(e == CS_OK, "shadow %s: %s", what, cs_err_name(e));
}

/* ======================================================================== */
/* Operations                                                                */
/* ======================================================================== */

static void op_service_create(rd *r) {
    const pv *fn = pool(r, P_FNAME, NP(P_FNAME));
    cs_err want = CS_OK;
    if (!fn->p || !fn->n)
        want = CS_E_FRIENDLY_NAME_MISSING;
    else
        want = m_text(str_of(fn), M.lim.name_chars, CS_E_FRIENDLY_NAME_TOO_LONG);
    if (want == CS_OK && m_at_quota(CS_PAGE_SERVICES, M.lim.max_services))
        want = CS_E_QUOTA_SERVICES;
    if (want == CS_OK && M.nsvc == MAX_SVC) return;
    if (want == CS_OK) want_event(CS_EVENT_SERVICE_CREATED, 0, "");
    cs_service_view v;
    cs_err got = cs_service_create(S, str_of(fn), &v);
    if (got == CS_OK && g_nwant) memcpy(g_want[0].sid, v.sid, CS_SID_BUFSZ);
    if (!outcome("service_create", got, want)) return;
    msvc *m = &M.svc[M.nsvc];
    memset(m, 0, sizeof *m);
    learn_sid(v.sid, "IS");
    memcpy(m->sid, v.sid, CS_SID_BUFSZ);
    for (int k = 0; k < 3; k++) {
        const char *rs = k == 0   ? v.default_service_role_sid
                         : k == 1 ? v.default_channel_role_sid
                                  : v.default_channel_creator_role_sid;
        learn_sid(rs, "RL");
        memcpy(m->role[k], rs, CS_SID_BUFSZ);
    }
    m->alive = true;
    m->fn = ms(str_of(fn));
    m->dc = m->du = now_eff();
    m->serial = ++M.serial;
    M.nsvc++;
    cmp_service(&v, M.nsvc - 1);
    cs_service_view sv;
    shadow_ok(cs_service_create(SH, str_of(fn), &sv), "service_create");
    ENSURE(str_cmp(sv.sid, v.sid) == 0, "shadow SID differs");
}

static void op_service_fetch(rd *r) {
    refbuf rb;
    cs_str ref = pick_service(r, &rb);
    int i = m_service(ref);
    cs_service_view v;
    cs_err got = cs_service_fetch(S, ref, &v);
    note("service_fetch", got);
    ENSURE(got == (i < 0 ? CS_E_NOT_FOUND : CS_OK), "service_fetch: %s",
           cs_err_name(got));
    if (i >= 0) cmp_service(&v, i);
}

static void op_service_update(rd *r) {
    refbuf rb;
    cs_str ref = pick_service(r, &rb);
    const pv *fn = pool(r, P_FNAME, NP(P_FNAME));
    int i = m_service(ref);
    cs_err want = CS_OK;
    if (i < 0)
        want = CS_E_NOT_FOUND;
    else if (fn->p && !fn->n)
        want = CS_E_FRIENDLY_NAME_MISSING;
    else if (fn->p)
        want = m_text(str_of(fn), M.lim.name_chars, CS_E_FRIENDLY_NAME_TOO_LONG);
    if (want == CS_OK && fn->p)
        want_event(CS_EVENT_SERVICE_UPDATED, 0, M.svc[i].sid);
    cs_service_view v;
    cs_err got = cs_service_update(S, ref, str_of(fn), &v);
    if (!outcome("service_update", got, want)) return;
    if (fn->p) {
        M.svc[i].fn = ms(str_of(fn));
        M.svc[i].du = now_eff();
    }
    cmp_service(&v, i);
    shadow_ok(cs_service_update(SH, ref, str_of(fn), NULL), "service_update");
}

/* Media items of channel c's live messages. */
static uint64_t m_channel_media(int c) {
    uint64_t n = 0;
    for (int k = 0; k < M.nmsg; k++)
        n += M.msg[k].chan == c && M.msg[k].alive && M.msg[k].media >= 0;
    return n;
}

static void m_delete_message(int k) {
    M.msg[k].alive = false;
    if (M.msg[k].media >= 0) M.media[M.msg[k].media].gone = true;
}

static void m_delete_channel(int c) {
    M.chan[c].alive = false;
    for (int k = 0; k < M.nmsg; k++)
        if (M.msg[k].chan == c && M.msg[k].alive) m_delete_message(k);
}

static void op_service_delete(rd *r) {
    refbuf rb;
    cs_str ref = pick_service(r, &rb);
    int i = m_service(ref);
    if (i >= 0) {
        want_event(CS_EVENT_SERVICE_DELETED, 0, M.svc[i].sid);
        uint64_t chans = 0, msgs = 0, media = 0;
        for (int c = 0; c < M.nchan; c++)
            if (M.chan[c].svc == i && M.chan[c].alive) {
                chans++;
                msgs += (uint64_t)m_live_msgs(c);
            }
        for (int k = 0; k < M.nmedia; k++)
            media += M.media[k].svc == i && m_media_live(k);
        want_removed(1, chans, msgs, media);
    }
    cs_err got = cs_service_delete(S, ref);
    if (!outcome("service_delete", got, i < 0 ? CS_E_NOT_FOUND : CS_OK)) return;
    M.svc[i].alive = false;
    for (int c = 0; c < M.nchan; c++)
        if (M.chan[c].svc == i && M.chan[c].alive) m_delete_channel(c);
    shadow_ok(cs_service_delete(SH, ref), "service_delete");
}

typedef struct chan_pick {
    const pv *fn, *un, *attr, *type, *dc, *du, *by, *wh;
} chan_pick;

static void pick_chan_params(rd *r, chan_pick *k, cs_channel_params *p) {
    k->fn = pool(r, P_FNAME, NP(P_FNAME));
    k->un = pool(r, P_UNAME, NP(P_UNAME));
    k->attr = pool(r, P_ATTR, NP(P_ATTR));
    k->type = pool(r, P_CTYPE, NP(P_CTYPE));
    k->dc = pool(r, P_DATE, NP(P_DATE));
    k->du = pool(r, P_DATE, NP(P_DATE));
    k->by = pool(r, P_IDENT, NP(P_IDENT));
    k->wh = pool(r, P_WEBHOOK, NP(P_WEBHOOK));
    /* Mostly absent: a few bits decide which fields are given at all. */
    unsigned mask = u8(r) | u8(r) << 8;
    if (mask & 1) k->fn = &P_FNAME[0];
    if (mask & 2) k->un = &P_UNAME[0];
    if (mask & 4) k->attr = &P_ATTR[0];
    if (mask & 8) k->type = &P_CTYPE[0];
    if (mask & 16) k->dc = &P_DATE[0];
    if (mask & 32) k->du = &P_DATE[0];
    if (mask & 64) k->by = &P_IDENT[0];
    if (mask & 128) k->wh = &P_WEBHOOK[0];
    memset(p, 0, sizeof *p);
    p->friendly_name = str_of(k->fn);
    p->unique_name = str_of(k->un);
    p->attributes = str_of(k->attr);
    p->type = str_of(k->type);
    p->date_created = str_of(k->dc);
    p->date_updated = str_of(k->du);
    p->created_by = str_of(k->by);
    p->webhook = str_of(k->wh);
}

static bool sid_shaped(const pv *v, const char *prefix) {
    char n[CS_SID_BUFSZ];
    return m_sid_norm(str_of(v), prefix, n);
}

/* Validation shared by channel create and update, in the store's order. */
static cs_err m_chan_validate(const chan_pick *k, bool create) {
    cs_err e;
    if (!k->wh->ok) return CS_E_BAD_WEBHOOK_HEADER;
    if ((e = m_text(str_of(k->fn), M.lim.name_chars,
                    CS_E_FRIENDLY_NAME_TOO_LONG)))
        return e;
    if ((e = m_text(str_of(k->un), M.lim.name_chars,
                    CS_E_UNIQUE_NAME_TOO_LONG)))
        return e;
    if (k->un->p && sid_shaped(k->un, "CH")) return CS_E_UNIQUE_NAME_IS_SID;
    if ((e = m_attr(k->attr))) return e;
    if ((e = m_text(str_of(k->by), M.lim.identity_chars,
                    CS_E_IDENTITY_TOO_LONG)))
        return e;
    if (create && !k->type->ok) return CS_E_BAD_CHANNEL_TYPE;
    if (k->dc->p && !k->dc->ok) return CS_E_BAD_DATE_CREATED;
    if (k->du->p && !k->du->ok) return CS_E_BAD_DATE_UPDATED;
    return CS_OK;
}

static mstr nonempty_or_null(const pv *v) {
    return v->p && v->n ? ms(str_of(v)) : ms(CS_STR_ABSENT);
}

static void op_channel_create(rd *r) {
    refbuf rb;
    cs_str svc = pick_service(r, &rb);
    chan_pick k;
    cs_channel_params p;
    pick_chan_params(r, &k, &p);
    int si = m_service(svc);
    cs_err want = si < 0 ? CS_E_NOT_FOUND : m_chan_validate(&k, true);
    if (want == CS_OK && k.un->p && k.un->n && unique_taken(si, k.un, -1))
        want = CS_E_UNIQUE_NAME_EXISTS;
    if (want == CS_OK && m_at_quota(CS_PAGE_CHANNELS, M.lim.max_channels))
        want = CS_E_QUOTA_CHANNELS;
    if (want == CS_OK && M.nchan == MAX_CHAN) return;
    if (want == CS_OK) want_event(CS_EVENT_CHANNEL_CREATED, k.wh->v, "");
    cs_channel_view v;
    cs_err got = cs_channel_create(S, svc, &p, &v);
    if (got == CS_OK && g_nwant) memcpy(g_want[0].sid, v.sid, CS_SID_BUFSZ);
    if (!outcome("channel_create", got, want)) return;
    mchan *c = &M.chan[M.nchan];
    memset(c, 0, sizeof *c);
    learn_sid(v.sid, "CH");
    memcpy(c->sid, v.sid, CS_SID_BUFSZ);
    c->svc = si;
    c->alive = true;
    c->fn = nonempty_or_null(k.fn);
    c->un = nonempty_or_null(k.un);
    c->attr = k.attr->p ? ms(str_of(k.attr)) : ms_c("{}");
    c->by = k.by->p ? ms(str_of(k.by)) : ms_c("system");
    c->type = k.type->ok;
    c->dc = k.dc->p ? k.dc->v : now_eff();
    c->du = k.du->p ? k.du->v : c->dc;
    c->serial = ++M.serial;
    c->next_index = 0;
    M.nchan++;
    cmp_channel(&v, M.nchan - 1);
    cs_channel_view sv;
    shadow_ok(cs_channel_create(SH, svc, &p, &sv), "channel_create");
    ENSURE(str_cmp(sv.sid, v.sid) == 0, "shadow SID differs");
}

static void op_channel_fetch(rd *r) {
    refbuf rb, rc;
    cs_str svc, ch;
    pick_target(r, false, &svc, &rb, &ch, &rc, NULL, NULL);
    int ci;
    cs_err want = m_resolve(svc, ch, &ci);
    cs_channel_view v;
    cs_err got = cs_channel_fetch(S, svc, ch, &v);
    note("channel_fetch", got);
    ENSURE(got == want, "channel_fetch: %s, model %s", cs_err_name(got),
           cs_err_name(want));
    if (!got) cmp_channel(&v, ci);
}

static void op_channel_update(rd *r) {
    refbuf rb, rc;
    cs_str svc, ch;
    pick_target(r, false, &svc, &rb, &ch, &rc, NULL, NULL);
    chan_pick k;
    cs_channel_params p;
    pick_chan_params(r, &k, &p);
    int ci = -1;
    cs_err want = m_resolve(svc, ch, &ci);
    if (!want) want = m_chan_validate(&k, false);
    if (!want && k.un->p && k.un->n && unique_taken(M.chan[ci].svc, k.un, ci))
        want = CS_E_UNIQUE_NAME_EXISTS;
    bool any = k.fn->p || k.un->p || k.attr->p || k.dc->p || k.du->p || k.by->p;
    if (!want && any) want_event(CS_EVENT_CHANNEL_UPDATED, k.wh->v, M.chan[ci].sid);
    cs_channel_view v;
    cs_err got = cs_channel_update(S, svc, ch, &p, &v);
    if (!outcome("channel_update", got, want)) return;
    mchan *c = &M.chan[ci];
    if (any) {
        if (k.fn->p) c->fn = nonempty_or_null(k.fn);
        if (k.un->p) c->un = nonempty_or_null(k.un);
        if (k.attr->p) c->attr = ms(str_of(k.attr));
        if (k.by->p) c->by = ms(str_of(k.by));
        if (k.dc->p) c->dc = k.dc->v;
        c->du = k.du->p ? k.du->v : now_eff();
    }
    cmp_channel(&v, ci);
    shadow_ok(cs_channel_update(SH, svc, ch, &p, NULL), "channel_update");
}

static void op_channel_delete(rd *r) {
    refbuf rb, rc;
    cs_str svc, ch;
    pick_target(r, false, &svc, &rb, &ch, &rc, NULL, NULL);
    const pv *wh = pool(r, P_WEBHOOK, NP(P_WEBHOOK));
    int ci = -1;
    cs_err want = m_resolve(svc, ch, &ci);
    if (!want && !wh->ok) want = CS_E_BAD_WEBHOOK_HEADER;
    if (!want) {
        want_event(CS_EVENT_CHANNEL_DELETED, wh->v, M.chan[ci].sid);
        want_removed(0, 1, (uint64_t)m_live_msgs(ci), m_channel_media(ci));
    }
    cs_err got = cs_channel_delete(S, svc, ch, str_of(wh));
    if (!outcome("channel_delete", got, want)) return;
    m_delete_channel(ci);
    shadow_ok(cs_channel_delete(SH, svc, ch, str_of(wh)), "channel_delete");
}

typedef struct msg_pick {
    const pv *from, *attr, *dc, *du, *lub, *body, *wh;
} msg_pick;

static void pick_msg_params(rd *r, msg_pick *k, cs_message_params *p,
                            refbuf *media, int svc) {
    k->from = pool(r, P_IDENT, NP(P_IDENT));
    k->attr = pool(r, P_ATTR, NP(P_ATTR));
    k->dc = pool(r, P_DATE, NP(P_DATE));
    k->du = pool(r, P_DATE, NP(P_DATE));
    k->lub = pool(r, P_IDENT, NP(P_IDENT));
    k->body = pool(r, P_BODY, NP(P_BODY));
    k->wh = pool(r, P_WEBHOOK, NP(P_WEBHOOK));
    unsigned mask = u8(r);
    if (mask & 1) k->from = &P_IDENT[0];
    if (mask & 2) k->attr = &P_ATTR[0];
    if (mask & 4) k->dc = &P_DATE[0];
    if (mask & 8) k->du = &P_DATE[0];
    if (mask & 16) k->lub = &P_IDENT[0];
    if (mask & 32) k->wh = &P_WEBHOOK[0];
    if ((mask & 192) == 192) { /* plain: only the body (and MediaSid) */
        k->from = k->lub = &P_IDENT[0];
        k->attr = &P_ATTR[0];
        k->dc = k->du = &P_DATE[0];
        k->wh = &P_WEBHOOK[0];
    }
    memset(p, 0, sizeof *p);
    p->from = str_of(k->from);
    p->attributes = str_of(k->attr);
    p->date_created = str_of(k->dc);
    p->date_updated = str_of(k->du);
    p->last_updated_by = str_of(k->lub);
    p->body = str_of(k->body);
    p->webhook = str_of(k->wh);
    p->media_sid = pick_media(r, media, svc);
}

static cs_err m_msg_validate(const msg_pick *k) {
    cs_err e;
    if (!k->wh->ok) return CS_E_BAD_WEBHOOK_HEADER;
    if (k->body->p) {
        if (k->body->n > M.lim.body_bytes) return CS_E_BODY_TOO_LONG;
        if (m_chars(str_of(k->body)) == SIZE_MAX) return CS_E_BAD_UTF8;
    }
    if ((e = m_attr(k->attr))) return e;
    if ((e = m_text(str_of(k->from), M.lim.identity_chars, CS_E_FROM_TOO_LONG)))
        return e;
    if ((e = m_text(str_of(k->lub), M.lim.identity_chars,
                    CS_E_LAST_UPDATED_BY_TOO_LONG)))
        return e;
    if (k->dc->p && !k->dc->ok) return CS_E_BAD_DATE_CREATED;
    if (k->du->p && !k->du->ok) return CS_E_BAD_DATE_UPDATED;
    return CS_OK;
}

static mstr ident_or(const pv *v, const char *dflt) {
    return v->p && v->n ? ms(str_of(v)) : ms_c(dflt);
}

static void op_message_create(rd *r) {
    refbuf rb, rc, rm;
    cs_str svc, ch;
    pick_target(r, false, &svc, &rb, &ch, &rc, NULL, NULL);
    msg_pick k;
    cs_message_params p;
    pick_msg_params(r, &k, &p, &rm, m_service(svc));
    int ci = -1, me = -1;
    cs_err want = m_resolve(svc, ch, &ci);
    if (!want) want = m_msg_validate(&k);
    if (!want && p.media_sid.ptr) {
        char n[CS_SID_BUFSZ];
        if (!m_sid_norm(p.media_sid, "ME", n))
            want = CS_E_BAD_MEDIA_SID;
        else if ((me = m_media(M.chan[ci].svc, p.media_sid)) < 0)
            want = CS_E_MEDIA_NOT_FOUND;
        else if (M.media[me].attached)
            want = CS_E_MEDIA_IN_USE;
    }
    if (want == CS_OK && m_at_quota(CS_PAGE_MESSAGES, M.lim.max_messages))
        want = CS_E_QUOTA_MESSAGES;
    if (want == CS_OK && M.nmsg == MAX_MSG) return;
    if (!want) want_event(CS_EVENT_MESSAGE_CREATED, k.wh->v, "");
    cs_message_view v;
    cs_err got = cs_message_create(S, svc, ch, &p, &v);
    if (got == CS_OK && g_nwant) memcpy(g_want[0].sid, v.sid, CS_SID_BUFSZ);
    if (!outcome("message_create", got, want)) return;
    mmsg *m = &M.msg[M.nmsg];
    memset(m, 0, sizeof *m);
    learn_sid(v.sid, "IM");
    memcpy(m->sid, v.sid, CS_SID_BUFSZ);
    m->chan = ci;
    m->alive = true;
    m->index = M.chan[ci].next_index++;
    m->attr = k.attr->p ? ms(str_of(k.attr)) : ms_c("{}");
    m->body = k.body->p ? ms(str_of(k.body)) : ms_c("");
    m->from = ident_or(k.from, "system");
    m->lub = k.lub->p && k.lub->n ? ms(str_of(k.lub)) : ms(CS_STR_ABSENT);
    m->dc = k.dc->p ? k.dc->v : now_eff();
    m->du = k.du->p ? k.du->v : m->dc;
    m->media = me;
    if (me >= 0) {
        note("message_create with media", -1);
        M.media[me].attached = true;
        M.media[me].msg = M.nmsg;
        M.media[me].chan = ci;
    }
    M.nmsg++;
    cmp_message(&v, M.nmsg - 1);
    cs_message_view sv;
    shadow_ok(cs_message_create(SH, svc, ch, &p, &sv), "message_create");
    ENSURE(str_cmp(sv.sid, v.sid) == 0, "shadow SID differs");
}

/* Several plain messages at once, so that lists span pages. */
static void op_message_bulk(rd *r) {
    refbuf rb, rc;
    cs_str svc, ch;
    pick_target(r, false, &svc, &rb, &ch, &rc, NULL, NULL);
    /* mostly a few; sometimes hundreds: a channel's index spans several
     * blocks of 256 and the message table resizes */
    unsigned sel = u8(r);
    unsigned n = sel < 248 ? 1 + sel % 12 : 64 + (sel - 248) * 64;
    int ci;
    if (m_resolve(svc, ch, &ci)) return;
    g_render = n < 64;
    g_bulk = true;
    for (unsigned i = 0; i < n && M.nmsg < MAX_MSG; i++) {
        char body[16];
        snprintf(body, sizeof body, "m%u", i);
        cs_message_params p = {0};
        p.body = cs_str_c(body);
        cs_err want =
            strlen(body) > M.lim.body_bytes ? CS_E_BODY_TOO_LONG : CS_OK;
        if (!want && m_at_quota(CS_PAGE_MESSAGES, M.lim.max_messages))
            want = CS_E_QUOTA_MESSAGES;
        if (!want) want_event(CS_EVENT_MESSAGE_CREATED, CS_WEBHOOK_ABSENT, "");
        cs_message_view v;
        cs_err got = cs_message_create(S, svc, ch, &p, &v);
        if (got == CS_OK) memcpy(g_want[0].sid, v.sid, CS_SID_BUFSZ);
        bool ok = outcome("message_create (bulk)", got, want);
        g_nev = g_nwant = 0;
        if (!ok) continue;
        mmsg *m = &M.msg[M.nmsg];
        memset(m, 0, sizeof *m);
        learn_sid(v.sid, "IM");
        memcpy(m->sid, v.sid, CS_SID_BUFSZ);
        m->chan = ci;
        m->alive = true;
        m->index = M.chan[ci].next_index++;
        m->attr = ms_c("{}");
        m->body = ms_c(body);
        m->from = ms_c("system");
        m->lub = ms(CS_STR_ABSENT);
        m->dc = m->du = now_eff();
        m->media = -1;
        M.nmsg++;
        cmp_message(&v, M.nmsg - 1);
        shadow_ok(cs_message_create(SH, svc, ch, &p, NULL), "message_create");
    }
    g_render = true;
    g_bulk = false;
    ENSURE(cs_store_check(S) == CS_OK, "cs_store_check after a bulk");
}

/* Deletes every stride-th live message of a channel: blocks of the index
 * empty out and merge, the message table shrinks. */
static void op_message_bulk_delete(rd *r) {
    refbuf rb, rc;
    cs_str svc, ch;
    pick_target(r, false, &svc, &rb, &ch, &rc, NULL, NULL);
    unsigned stride = 1 + pick(r, 6), off = pick(r, stride);
    int ci;
    if (m_resolve(svc, ch, &ci)) return;
    unsigned pos = 0;
    g_bulk = true;
    for (int i = 0; i < M.nmsg; i++) {
        mmsg *m = &M.msg[i];
        if (!m->alive || m->chan != ci || pos++ % stride != off) continue;
        g_nev = g_nwant = 0;
        want_event(CS_EVENT_MESSAGE_DELETED, CS_WEBHOOK_ABSENT, m->sid);
        want_removed(0, 0, 1, m->media >= 0);
        cs_err got = cs_message_delete(S, svc, ch, cs_str_c(m->sid),
                                       CS_STR_ABSENT);
        if (!outcome("message_delete (bulk)", got, CS_OK)) continue;
        m_delete_message(i);
        shadow_ok(cs_message_delete(SH, svc, ch, cs_str_c(m->sid), CS_STR_ABSENT),
                  "message_delete");
    }
    g_nev = g_nwant = 0;
    g_bulk = false;
    ENSURE(cs_store_check(S) == CS_OK, "cs_store_check after a bulk");
}

static void op_message_fetch(rd *r) {
    refbuf rb, rc, rm;
    cs_str svc, ch, sid;
    pick_target(r, true, &svc, &rb, &ch, &rc, &sid, &rm);
    int ci = -1, mi = -1;
    cs_err want = m_resolve(svc, ch, &ci);
    if (!want && (mi = m_message(ci, sid)) < 0) want = CS_E_NOT_FOUND;
    cs_message_view v;
    cs_err got = cs_message_fetch(S, svc, ch, sid, &v);
    note("message_fetch", got);
    ENSURE(got == want, "message_fetch: %s, model %s", cs_err_name(got),
           cs_err_name(want));
    if (!got) cmp_message(&v, mi);
}

static void op_message_update(rd *r) {
    refbuf rb, rc, rm, rme;
    cs_str svc, ch, sid;
    pick_target(r, true, &svc, &rb, &ch, &rc, &sid, &rm);
    msg_pick k;
    cs_message_params p;
    pick_msg_params(r, &k, &p, &rme, m_service(svc)); /* MediaSid: ignored */
    if (u8(r) % 2) {                  /* often leave the body alone */
        k.body = &P_BODY[0];
        p.body = CS_STR_ABSENT;
    }
    int ci = -1, mi = -1;
    cs_err want = m_resolve(svc, ch, &ci);
    if (!want && (mi = m_message(ci, sid)) < 0) want = CS_E_NOT_FOUND;
    if (!want) want = m_msg_validate(&k);
    bool any = k.body->p || k.attr->p || k.dc->p || k.du->p || k.lub->p ||
               k.from->p;
    if (!want && any && M.msg[mi].media >= 0 && k.body->p &&
        !ms_eq(str_of(k.body), &M.msg[mi].body))
        want = CS_E_MEDIA_BODY_IMMUTABLE;
    if (!want && any) want_event(CS_EVENT_MESSAGE_UPDATED, k.wh->v, M.msg[mi].sid);
    cs_message_view v;
    cs_err got = cs_message_update(S, svc, ch, sid, &p, &v);
    if (!outcome("message_update", got, want)) return;
    mmsg *m = &M.msg[mi];
    if (any) {
        if (k.body->p) m->body = ms(str_of(k.body));
        if (k.attr->p) m->attr = ms(str_of(k.attr));
        if (k.from->p) m->from = ident_or(k.from, "system");
        if (k.lub->p) m->lub = k.lub->n ? ms(str_of(k.lub)) : ms(CS_STR_ABSENT);
        if (k.dc->p) m->dc = k.dc->v;
        m->du = k.du->p ? k.du->v : now_eff();
        m->edited = true;
    }
    cmp_message(&v, mi);
    shadow_ok(cs_message_update(SH, svc, ch, sid, &p, NULL), "message_update");
}

/* An update whose parameters point into views the store handed out (of the
 * message itself or another one): views stay valid until the next mutating
 * call, so the store must read them before it overwrites anything. */
static void op_message_update_alias(rd *r) {
    refbuf rb, rc, rm;
    cs_str svc, ch, sid;
    pick_target(r, true, &svc, &rb, &ch, &rc, &sid, &rm);
    int ci, mi;
    if (m_resolve(svc, ch, &ci) || (mi = m_message(ci, sid)) < 0) return;
    int so = mi;
    unsigned k = u8(r) | u8(r) << 8;
    if (k % 2)
        for (int t = 0; t < M.nmsg; t++) {
            int c = (int)((k / 2 + (unsigned)t) % (unsigned)M.nmsg);
            if (M.msg[c].alive) {
                so = c;
                break;
            }
        }
    const mmsg *tm = &M.msg[mi], *sm = &M.msg[so];
    cs_message_view tv, sv;
    ENSURE(cs_message_fetch(S, svc, ch, sid, &tv) == CS_OK, "alias fetch");
    ENSURE(cs_message_fetch(S, cs_str_c(M.svc[M.chan[sm->chan].svc].sid),
                            cs_str_c(M.chan[sm->chan].sid),
                            cs_str_c(sm->sid), &sv) == CS_OK,
           "alias fetch");
    /* candidate sources: the view field and the model's copy of it */
    const cs_str vsrc[6] = {tv.body, tv.attributes, sv.body, sv.attributes,
                            sv.from, sv.last_updated_by};
    const mstr *msrc[6] = {&tm->body, &tm->attr, &sm->body, &sm->attr,
                           &sm->from, &sm->lub};
    /* body: any; attributes: attributes only (valid JSON); identities: any */
    int bsel = (int)pick(r, 7) - 1, asel = (int)pick(r, 3) - 1;
    int fsel = (int)pick(r, 7) - 1, lsel = (int)pick(r, 7) - 1;
    if (asel == 0) asel = 1; /* tv.attributes */
    else if (asel == 1) asel = 3; /* sv.attributes */
    cs_message_params p = {0}, shadow_p = {0};
    mstr body, attr, from, lub; /* the values, copied before the call */
    cs_str *pf[4] = {&p.body, &p.attributes, &p.from, &p.last_updated_by};
    cs_str *sf[4] = {&shadow_p.body, &shadow_p.attributes, &shadow_p.from,
                     &shadow_p.last_updated_by};
    mstr *mf[4] = {&body, &attr, &from, &lub};
    int sel[4] = {bsel, asel, fsel, lsel};
    for (int i = 0; i < 4; i++) {
        *mf[i] = ms(CS_STR_ABSENT);
        if (sel[i] < 0 || vsrc[sel[i]].ptr == NULL) continue; /* absent */
        *pf[i] = vsrc[sel[i]];
        *mf[i] = *msrc[sel[i]];
        ENSURE(ms_eq(vsrc[sel[i]], mf[i]), "alias source differs");
        *sf[i] = (cs_str){mf[i]->b, mf[i]->n};
    }
    cs_err want = CS_OK;
    if (!body.null && body.n > M.lim.body_bytes)
        want = CS_E_BODY_TOO_LONG;
    else if (!attr.null && attr.n > M.lim.attributes_bytes)
        want = CS_E_ATTRIBUTES_TOO_LONG;
    else
        want = m_text((cs_str){from.null ? NULL : from.b, from.n},
                      M.lim.identity_chars, CS_E_FROM_TOO_LONG);
    if (!want)
        want = m_text((cs_str){lub.null ? NULL : lub.b, lub.n},
                      M.lim.identity_chars, CS_E_LAST_UPDATED_BY_TOO_LONG);
    bool any = !body.null || !attr.null || !from.null || !lub.null;
    if (!want && any && tm->media >= 0 && !body.null &&
        !(body.n == tm->body.n && memcmp(body.b, tm->body.b, body.n) == 0))
        want = CS_E_MEDIA_BODY_IMMUTABLE;
    if (!want && any) want_event(CS_EVENT_MESSAGE_UPDATED, 0, tm->sid);
    cs_message_view v;
    cs_err got = cs_message_update(S, svc, ch, sid, &p, &v);
    if (!outcome("message_update (aliased)", got, want)) return;
    mmsg *m = &M.msg[mi];
    if (any) {
        if (!body.null) m->body = body;
        if (!attr.null) m->attr = attr;
        if (!from.null) m->from = from.n ? from : ms_c("system");
        if (!lub.null) m->lub = lub.n ? lub : ms(CS_STR_ABSENT);
        m->du = now_eff();
        m->edited = true;
    }
    cmp_message(&v, mi);
    shadow_ok(cs_message_update(SH, svc, ch, sid, &shadow_p, NULL),
              "message_update");
}

static void op_message_delete(rd *r) {
    refbuf rb, rc, rm;
    cs_str svc, ch, sid;
    pick_target(r, true, &svc, &rb, &ch, &rc, &sid, &rm);
    const pv *wh = pool(r, P_WEBHOOK, NP(P_WEBHOOK));
    int ci = -1, mi = -1;
    cs_err want = m_resolve(svc, ch, &ci);
    if (!want && (mi = m_message(ci, sid)) < 0) want = CS_E_NOT_FOUND;
    if (!want && !wh->ok) want = CS_E_BAD_WEBHOOK_HEADER;
    if (!want) {
        want_event(CS_EVENT_MESSAGE_DELETED, wh->v, M.msg[mi].sid);
        want_removed(0, 0, 1, M.msg[mi].media >= 0);
    }
    cs_err got = cs_message_delete(S, svc, ch, sid, str_of(wh));
    if (!outcome("message_delete", got, want)) return;
    m_delete_message(mi);
    shadow_ok(cs_message_delete(SH, svc, ch, sid, str_of(wh)), "message_delete");
}

static void op_media_create(rd *r) {
    refbuf rb;
    cs_str svc = pick_service(r, &rb);
    const pv *ct = pool(r, P_CT, NP(P_CT));
    const pv *fn = pool(r, P_FILENAME, NP(P_FILENAME));
    uint64_t size = P_SIZE[pick(r, NP(P_SIZE))];
    int si = m_service(svc);
    cs_err want = CS_OK;
    if (si < 0)
        want = CS_E_NOT_FOUND;
    else if (!ct->p || !ct->n || ct->n > M.lim.content_type_bytes || !ct->ok)
        want = CS_E_BAD_MEDIA_CONTENT_TYPE;
    else if (fn->p && m_chars(str_of(fn)) == SIZE_MAX)
        want = CS_E_BAD_UTF8;
    else if (fn->p && fn->n > M.lim.filename_bytes)
        want = CS_E_INVALID_ARGUMENT;
    else if (size > M.lim.media_bytes)
        want = CS_E_MEDIA_TOO_LARGE;
    if (want == CS_OK && M.nmedia == MAX_MEDIA) return;
    if (want == CS_OK) want_event(CS_EVENT_MEDIA_CREATED, 0, "");
    cs_media_view v;
    cs_err got = cs_media_create(S, svc, str_of(ct), str_of(fn), size, &v);
    if (got == CS_OK && g_nwant) memcpy(g_want[0].sid, v.sid, CS_SID_BUFSZ);
    if (!outcome("media_create", got, want)) return;
    mmedia *m = &M.media[M.nmedia];
    memset(m, 0, sizeof *m);
    learn_sid(v.sid, "ME");
    memcpy(m->sid, v.sid, CS_SID_BUFSZ);
    m->svc = si;
    m->ct = ms(str_of(ct));
    m->fn = ms(str_of(fn));
    m->size = size;
    m->dc = now_eff();
    m->msg = m->chan = -1;
    M.nmedia++;
    cmp_media(&v, M.nmedia - 1);
    cs_media_view sv;
    shadow_ok(cs_media_create(SH, svc, str_of(ct), str_of(fn), size, &sv),
              "media_create");
    ENSURE(str_cmp(sv.sid, v.sid) == 0, "shadow SID differs");
}

static void op_media_fetch(rd *r) {
    refbuf rb, rm;
    cs_str svc = pick_service(r, &rb);
    int si = m_service(svc);
    cs_str sid = pick_media(r, &rm, si);
    int mi = si < 0 ? -1 : m_media(si, sid);
    cs_media_view v;
    cs_err got = cs_media_fetch(S, svc, sid, &v);
    note("media_fetch", got);
    ENSURE(got == (mi < 0 ? CS_E_NOT_FOUND : CS_OK), "media_fetch: %s",
           cs_err_name(got));
    if (!got) cmp_media(&v, mi);
}

/* cs_media_delete: never-attached items only. */
static void op_media_delete(rd *r) {
    refbuf rb, rm;
    cs_str svc = pick_service(r, &rb);
    int si = m_service(svc);
    cs_str sid = pick_media(r, &rm, si);
    int mi = si < 0 ? -1 : m_media(si, sid);
    cs_err want = mi < 0                 ? CS_E_NOT_FOUND
                  : M.media[mi].attached ? CS_E_MEDIA_IN_USE
                                         : CS_OK;
    if (!want) {
        want_event(CS_EVENT_MEDIA_DELETED, 0, M.media[mi].sid);
        want_removed(0, 0, 0, 1);
    }
    cs_err got = cs_media_delete(S, svc, sid);
    if (!outcome("media_delete", got, want)) return;
    M.media[mi].gone = true;
    shadow_ok(cs_media_delete(SH, svc, sid), "media_delete");
}

/* ======================================================================== */
/* Lists                                                                     */
/* ======================================================================== */

/* Items of a list in key order, after the type filter. */
typedef struct mitem {
    int64_t key;
    int idx;
} mitem;

static size_t m_items(cs_page_kind kind, int list, unsigned types,
                      mitem *out) {
    size_t n = 0;
    if (kind == CS_PAGE_SERVICES) {
        for (int i = 0; i < M.nsvc; i++)
            if (M.svc[i].alive) out[n++] = (mitem){M.svc[i].serial, i};
    } else if (kind == CS_PAGE_CHANNELS) {
        for (int i = 0; i < M.nchan; i++)
            if (M.chan[i].alive && M.chan[i].svc == list &&
                (M.chan[i].type & (int)types))
                out[n++] = (mitem){M.chan[i].serial, i};
    } else {
        for (int i = 0; i < M.nmsg; i++)
            if (M.msg[i].alive && M.msg[i].chan == list)
                out[n++] = (mitem){M.msg[i].index, i};
    }
    for (size_t i = 1; i < n; i++) /* already ordered; make sure */
        ENSURE(out[i - 1].key < out[i].key, "model keys out of order");
    return n;
}

static int64_t sat(int64_t a, int64_t d) {
    if (d > 0 && a > INT64_MAX - d) return INT64_MAX;
    if (d < 0 && a < INT64_MIN - d) return INT64_MIN;
    return a + d;
}

typedef struct mpage {
    size_t count;
    int idx[MAX_MSG + 8];
    bool has_next, has_prev;
    int64_t next_bound, prev_bound;
} mpage;

/* The page a (direction, kind, bound) request means, from the items alone. */
static void m_page(const mitem *it, size_t n, bool desc, int tkind,
                   int64_t bound, uint32_t ps, uint64_t page, bool token,
                   mpage *out) {
    memset(out, 0, sizeof *out);
    /* beyond: items after the bound in presentation order; before: the
     * items before it, nearest first. */
    int sel[MAX_MSG + 8];
    size_t k = 0;
    if (tkind == TK_NEXT) {
        if (!desc) {
            for (size_t i = 0; i < n && k < ps; i++)
                if (it[i].key > bound) sel[k++] = (int)i;
        } else {
            for (size_t i = n; i-- > 0 && k < ps;)
                if (it[i].key < bound) sel[k++] = (int)i;
        }
    } else {
        int tmp[MAX_MSG + 8];
        size_t t = 0;
        if (!desc) {
            for (size_t i = n; i-- > 0 && t < ps;)
                if (it[i].key < bound) tmp[t++] = (int)i;
        } else {
            for (size_t i = 0; i < n && t < ps; i++)
                if (it[i].key > bound) tmp[t++] = (int)i;
        }
        while (t) sel[k++] = tmp[--t]; /* nearest first -> presentation */
    }
    out->count = k;
    for (size_t i = 0; i < k; i++) out->idx[i] = sel[i];
    int64_t d = desc ? -1 : 1;
    if (k) {
        out->prev_bound = it[sel[0]].key;
        out->next_bound = it[sel[k - 1]].key;
    } else {
        out->next_bound = tkind == TK_NEXT ? bound : sat(bound, -d);
        out->prev_bound = tkind == TK_PREV ? bound : sat(bound, d);
    }
    for (size_t i = 0; i < n; i++)
        if (desc ? it[i].key < out->next_bound : it[i].key > out->next_bound)
            out->has_next = true;
    /* The first page (no token, or Page 0) has no previous page. */
    out->has_prev = page > 0 && token;
}

/* Full-check walks do not fill the table (a list of 1500 messages walked
 * one item a page would issue thousands of tokens): the walker passes the
 * meaning of the one token it presents in g_walk_tok instead. */
static bool g_walking;
static mtok g_walk_tok;

static int tok_find(const char *s, size_t n) {
    for (int i = 0; i < M.ntok; i++)
        if (strlen(M.tok[i].str) == n && memcmp(M.tok[i].str, s, n) == 0)
            return i;
    return -1;
}

/* A token the store just issued, with the meaning the model gives it. */
static int tok_learn(const char *str, cs_page_kind kind, int list, bool desc,
                     int tkind, int64_t bound) {
    ENSURE(strlen(str) == 35 && str[0] == 'P' && str[1] == 'T',
           "token shape %s", str);
    int i = tok_find(str, strlen(str));
    for (int j = 0; j < M.ntok; j++) {
        const mtok *t = &M.tok[j];
        bool same = t->kind == kind && t->list == list && t->desc == desc &&
                    t->tkind == tkind && t->bound == bound;
        if (same)
            ENSURE(j == i, "one position, two tokens: %s and %s", t->str, str);
        else
            ENSURE(j != i, "token %s means two positions", str);
    }
    if (i >= 0) return i;
    FZ_CHECK(M.ntok < MAX_TOK, "token table full");
    mtok *t = &M.tok[M.ntok];
    memcpy(t->str, str, strlen(str) + 1);
    t->kind = kind;
    t->list = list;
    t->desc = desc;
    t->tkind = tkind;
    t->bound = bound;
    return M.ntok++;
}

static void recent_push(const lctx *c) {
    M.recent[M.recent_at] = *c;
    M.recent_at = (M.recent_at + 1) % 16;
    if (M.nrecent < 16) M.nrecent++;
}

/* Decimal PageSize / Page as the store reads them. */
static bool m_decimal(cs_str v, uint64_t max, uint64_t *out, bool *big) {
    *big = false;
    if (!v.len) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') return false;
        if (!*big) {
            x = x * 10 + (uint64_t)(v.ptr[i] - '0');
            if (x > max) *big = true;
        }
    }
    *out = *big ? max : x;
    return true;
}

typedef struct list_args {
    cs_page_kind kind;
    cs_str svc, ch;
    int order;     /* P_ORDER index */
    cs_str ps;     /* PageSize */
    cs_str page;   /* Page */
    cs_str token;  /* PageToken */
    cs_str types[3];
    size_t ntypes;
} list_args;

/* Runs one list call on the store and on the model and compares. The
 * contexts of the next / previous tokens issued, if any, go to nx / pv
 * (tok -1 when there is none). */
static void run_list(const list_args *a, lctx *nx, lctx *pv_out) {
    nx->tok = pv_out->tok = -1;
    cs_page_params q = {0};
    q.order = str_of(&P_ORDER[a->order]);
    q.page_size = a->ps;
    q.page = a->page;
    q.page_token = a->token;
    q.types = a->types;
    q.n_types = a->ntypes;

    /* model */
    cs_err want = CS_OK;
    int list = 0, svc = -1, chan = -1;
    unsigned types = CS_CHANNEL_PUBLIC;
    bool desc = false;
    if (a->kind == CS_PAGE_CHANNELS) {
        svc = m_service(a->svc);
        if (svc < 0) want = CS_E_NOT_FOUND;
        list = svc;
        if (!want && a->ntypes) {
            types = 0;
            for (size_t i = 0; i < a->ntypes && !want; i++) {
                if (ms_eq(a->types[i], &(mstr){false, 6, "public"}))
                    types |= CS_CHANNEL_PUBLIC;
                else if (ms_eq(a->types[i], &(mstr){false, 7, "private"}))
                    types |= CS_CHANNEL_PRIVATE;
                else
                    want = CS_E_BAD_CHANNEL_TYPE;
            }
        }
    } else if (a->kind == CS_PAGE_MESSAGES) {
        want = m_resolve(a->svc, a->ch, &chan);
        list = chan;
        if (!want && P_ORDER[a->order].ok < 0) want = CS_E_BAD_ORDER;
        desc = P_ORDER[a->order].ok == 1;
    }
    uint64_t v = 50;
    bool big;
    uint32_t ps = 50;
    uint64_t page = 0;
    if (!want && a->ps.ptr) {
        if (!m_decimal(a->ps, UINT32_MAX, &v, &big) || v == 0)
            want = CS_E_BAD_PAGE_SIZE;
        else
            ps = (uint32_t)v;
    }
    if (ps > M.lim.page_size_max) ps = (uint32_t)M.lim.page_size_max;
    if (!want && a->page.ptr) {
        if (!m_decimal(a->page, CS_PAGE_MAX, &page, &big) || big)
            want = CS_E_BAD_PAGE;
    }
    int tkind = TK_NEXT;
    int64_t bound = desc ? INT64_MAX : -1;
    if (!want && a->token.ptr) {
        int t = tok_find(a->token.ptr, a->token.len);
        const mtok *k = t >= 0 ? &M.tok[t] : NULL;
        if (g_walking && strlen(g_walk_tok.str) == a->token.len &&
            memcmp(g_walk_tok.str, a->token.ptr, a->token.len) == 0)
            k = &g_walk_tok;
        if (!k || k->kind != a->kind || k->list != list || k->desc != desc)
            want = CS_E_BAD_PAGE_TOKEN;
        else {
            tkind = k->tkind;
            bound = k->bound;
        }
    }

    cs_page pg;
    cs_err got = a->kind == CS_PAGE_SERVICES ? cs_service_list(S, &q, &pg)
                 : a->kind == CS_PAGE_CHANNELS
                     ? cs_channel_list(S, a->svc, &q, &pg)
                     : cs_message_list(S, a->svc, a->ch, &q, &pg);
    ENSURE(got == want, "list kind %d: %s, model %s", a->kind, cs_err_name(got),
           cs_err_name(want));
    static const char *const list_names[2][4] = {
        {"", "services_list", "channels_list", "messages_list"},
        {"", "services_list (token)", "channels_list (token)",
         "messages_list (token)"}};
    note(list_names[a->token.ptr != NULL][a->kind], got);
    if (got) return;

    static mitem items[MAX_MSG + MAX_CHAN + MAX_SVC];
    size_t n = m_items(a->kind, list, types, items);
    mpage mp;
    m_page(items, n, desc, tkind, bound, ps, page, a->token.ptr != NULL, &mp);

    ENSURE(pg.kind == a->kind, "page kind");
    ENSURE(pg.page_size == ps, "page_size %u, model %u", pg.page_size, ps);
    ENSURE(pg.page == page, "page echo");
    ENSURE(pg.order_given == (a->kind == CS_PAGE_MESSAGES && q.order.ptr),
           "order_given");
    ENSURE(pg.descending == desc, "descending");
    ENSURE(a->token.ptr ? strlen(pg.token) == a->token.len &&
                              memcmp(pg.token, a->token.ptr, a->token.len) == 0
                        : pg.token[0] == '\0',
           "token echo");
    ENSURE(pg.count == mp.count, "count %zu, model %zu (kind %d tkind %d bound "
           "%lld desc %d ps %u)", pg.count, mp.count, a->kind, tkind,
           (long long)bound, desc, ps);
    ENSURE((pg.next_token[0] != 0) == mp.has_next, "next exists: %d, model %d",
           pg.next_token[0] != 0, mp.has_next);
    if (mp.count) note(tkind == TK_PREV ? "page via prev token" : "page", -1);
    if (mp.has_next) note("page with next", -1);
    if (mp.has_prev) note("page with prev", -1);
    if (desc) note("page desc", -1);
    ENSURE((pg.prev_token[0] != 0) == mp.has_prev, "prev exists: %d, model %d (page %llu)",
           pg.prev_token[0] != 0, mp.has_prev, (unsigned long long)page);

    /* items, twice (rewind) */
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        for (;;) {
            bool more;
            if (a->kind == CS_PAGE_SERVICES) {
                cs_service_view sv;
                more = cs_page_next_service(S, &pg, &sv);
                if (more) {
                    ENSURE(k < mp.count, "extra item");
                    cmp_service(&sv, items[mp.idx[k]].idx);
                }
            } else if (a->kind == CS_PAGE_CHANNELS) {
                cs_channel_view cv;
                more = cs_page_next_channel(S, &pg, &cv);
                if (more) {
                    ENSURE(k < mp.count, "extra item");
                    cmp_channel(&cv, items[mp.idx[k]].idx);
                }
            } else {
                cs_message_view mv;
                more = cs_page_next_message(S, &pg, &mv);
                if (more) {
                    ENSURE(k < mp.count, "extra item");
                    cmp_message(&mv, items[mp.idx[k]].idx);
                }
            }
            if (!more) break;
            k++;
        }
        ENSURE(k == mp.count, "iterated %zu of %zu", k, mp.count);
        cs_message_view mv;
        cs_service_view sv;
        ENSURE(a->kind == CS_PAGE_MESSAGES || !cs_page_next_message(S, &pg, &mv),
               "wrong-kind iteration");
        ENSURE(a->kind == CS_PAGE_SERVICES || !cs_page_next_service(S, &pg, &sv),
               "wrong-kind iteration");
        cs_page_rewind(&pg);
    }
    if (g_render) {
        cs_buf b;
        cs_buf_init(&b, NULL);
        ENSURE(cs_render_page(S, &pg, &b) == CS_OK, "render page");
        ENSURE(cs__json_valid(b.data, b.len), "rendered page is not JSON");
        cs_buf_free(&b);
    }

    lctx c = {a->kind, svc, chan, a->order, 0, (int)types, 0, -1};
    if (a->kind == CS_PAGE_MESSAGES) c.svc = M.chan[chan].svc;
    if (g_walking) { /* the next token and its meaning, nothing recorded */
        g_walk_tok.str[0] = '\0';
        if (mp.has_next) {
            ENSURE(strlen(pg.next_token) == 35, "token shape");
            memcpy(g_walk_tok.str, pg.next_token, CS_TOKEN_BUFSZ);
            g_walk_tok.kind = a->kind;
            g_walk_tok.list = list;
            g_walk_tok.desc = desc;
            g_walk_tok.tkind = TK_NEXT;
            g_walk_tok.bound = mp.next_bound;
        }
        return;
    }
    if (mp.has_next) {
        *nx = c;
        nx->tok = tok_learn(pg.next_token, a->kind, list, desc, TK_NEXT,
                            mp.next_bound);
        nx->page = page + 1;
        recent_push(nx);
    }
    if (mp.has_prev) {
        *pv_out = c;
        pv_out->tok = tok_learn(pg.prev_token, a->kind, list, desc, TK_PREV,
                                mp.prev_bound);
        pv_out->page = page - 1;
        recent_push(pv_out);
    }
}

static void pick_list_common(rd *r, list_args *a, refbuf *tb) {
    a->order = (int)pick(r, NP(P_ORDER));
    a->ps = str_of(pool(r, P_PAGESIZE, NP(P_PAGESIZE)));
    a->page = str_of(pool(r, P_PAGE, NP(P_PAGE)));
    unsigned t = u8(r), w = u8(r), x = u8(r);
    a->token = CS_STR_ABSENT;
    switch (t % 6) {
    case 1:
    case 2:
        if (M.ntok) {
            const mtok *k = &M.tok[w % (unsigned)M.ntok];
            a->token = cs_str_c(k->str);
        }
        break;
    case 3:
        if (M.ntok) { /* garbled */
            memcpy(tb->b, M.tok[w % (unsigned)M.ntok].str, CS_TOKEN_BUFSZ);
            tb->b[x % 35] = (char)(tb->b[x % 35] ^ (1 + (x >> 6)));
            a->token = (cs_str){tb->b, 35};
        }
        break;
    case 4:
        a->token = str_of(&P_GARBAGE_TOKEN[w % NP(P_GARBAGE_TOKEN)]);
        break;
    case 5:
        if (M.ntok) { /* truncated or case-flipped */
            memcpy(tb->b, M.tok[w % (unsigned)M.ntok].str, CS_TOKEN_BUFSZ);
            if (x % 2) {
                a->token = (cs_str){tb->b, x % 35};
            } else {
                char *c = &tb->b[3 + x % 32];
                if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 32);
                a->token = (cs_str){tb->b, 35};
            }
        }
        break;
    default:
        break;
    }
}

static void op_list(rd *r, cs_page_kind kind) {
    refbuf rb, rc, tb;
    list_args a;
    memset(&a, 0, sizeof a);
    a.kind = kind;
    if (kind == CS_PAGE_CHANNELS) a.svc = pick_service(r, &rb);
    if (kind == CS_PAGE_MESSAGES)
        pick_target(r, false, &a.svc, &rb, &a.ch, &rc, NULL, NULL);
    if (kind == CS_PAGE_CHANNELS) {
        unsigned t = u8(r);
        a.ntypes = t % 4;
        for (size_t i = 0; i < a.ntypes; i++)
            a.types[i] = str_of(&P_TYPE[u8(r) % NP(P_TYPE)]);
    }
    pick_list_common(r, &a, &tb);
    lctx nx, pvc;
    run_list(&a, &nx, &pvc);
}

/* Follows a remembered token with the call that produced it, then keeps
 * going in the same direction for a few pages. */
static void op_follow(rd *r) {
    if (!M.nrecent) return;
    lctx c = M.recent[u8(r) % (unsigned)M.nrecent];
    unsigned steps = 1 + pick(r, 8);
    const pv *ps = pool(r, P_PAGESIZE, 6); /* valid sizes */
    for (unsigned s = 0; s < steps && c.tok >= 0; s++) {
        /* the list may be gone since the token was issued */
        if ((c.kind == CS_PAGE_CHANNELS && !M.svc[c.svc].alive) ||
            (c.kind == CS_PAGE_MESSAGES && !M.chan[c.chan].alive))
            return;
        list_args a;
        memset(&a, 0, sizeof a);
        a.kind = c.kind;
        if (c.kind != CS_PAGE_SERVICES) a.svc = cs_str_c(M.svc[c.svc].sid);
        if (c.kind == CS_PAGE_MESSAGES) a.ch = cs_str_c(M.chan[c.chan].sid);
        if (c.kind == CS_PAGE_CHANNELS) {
            size_t n = 0;
            if (c.types & CS_CHANNEL_PUBLIC) a.types[n++] = cs_str_c("public");
            if (c.types & CS_CHANNEL_PRIVATE) a.types[n++] = cs_str_c("private");
            a.ntypes = n;
        }
        a.order = c.order;
        a.ps = str_of(ps);
        char pnum[24];
        snprintf(pnum, sizeof pnum, "%llu", (unsigned long long)c.page);
        a.page = cs_str_c(pnum);
        a.token = cs_str_c(M.tok[c.tok].str);
        bool back = M.tok[c.tok].tkind == TK_PREV;
        note(back ? "follow prev" : "follow next", -1);
        lctx nx, pvc;
        run_list(&a, &nx, &pvc);
        c = back ? pvc : nx;
    }
}

/* ======================================================================== */
/* Store-wide operations and the full check                                  */
/* ======================================================================== */

static void op_tick(rd *r) {
    static const int64_t deltas[] = {1, 60, 3600, 86400, INT64_C(86400) * 400};
    unsigned k = u8(r);
    if (k % 16 == 14)
        g_now = -5; /* a broken clock: the store clamps to the epoch */
    else if (k % 16 == 15)
        g_now = CS__TIME_MAX + 100;
    else if (g_now < 0 || g_now > CS__TIME_MAX)
        g_now = T0;
    else
        g_now += deltas[k % NP(deltas)];
}

static void op_set_limits(rd *r) {
    const cs_limits *l = &LIMITS[pick(r, NP(LIMITS))];
    ENSURE(cs_store_set_limits(S, l) == CS_OK, "set_limits");
    ENSURE(cs_store_set_limits(SH, l) == CS_OK, "set_limits");
    M.lim = *l;
    cs_limits zero = *l;
    zero.page_size_max = 0;
    ENSURE(cs_store_set_limits(S, &zero) == CS_E_INVALID_ARGUMENT,
           "zero limit accepted");
    ENSURE(memcmp(cs_store_limits(S), l, sizeof *l) == 0, "limits changed");
}

static void model_reset(void) {
    cs_limits lim = M.lim;
    memset(&M, 0, sizeof M);
    M.lim = lim;
}

static void op_clear(void) {
    uint64_t svcs = 0, chans = 0, msgs = 0, media = 0;
    for (int i = 0; i < M.nsvc; i++) svcs += M.svc[i].alive;
    for (int c = 0; c < M.nchan; c++)
        if (M.chan[c].alive) {
            chans++;
            msgs += (uint64_t)m_live_msgs(c);
        }
    for (int k = 0; k < M.nmedia; k++) media += m_media_live(k);
    want_event(CS_EVENT_STORE_CLEARED, 0, "");
    want_removed(svcs, chans, msgs, media);
    cs_err e = cs_store_clear(S);
    /* events, commits and cs_store_check: in outcome */
    if (!outcome("clear", e, CS_OK)) return; /* refused, or out of memory */
    g_nev = g_nwant = 0;
    ENSURE(cs_store_clear(SH) == CS_OK, "clear (shadow)");
    model_reset();
}

static size_t m_identities(void) {
    const mstr *seen[MAX_CHAN + 2 * MAX_MSG];
    size_t n = 0;
    const mstr *cand[MAX_CHAN + 2 * MAX_MSG];
    size_t nc = 0;
    for (int i = 0; i < M.nchan; i++)
        if (M.chan[i].alive) cand[nc++] = &M.chan[i].by;
    for (int i = 0; i < M.nmsg; i++) {
        if (!M.msg[i].alive) continue;
        /* From is stored in the message, not interned */
        if (!M.msg[i].lub.null) cand[nc++] = &M.msg[i].lub;
    }
    for (size_t i = 0; i < nc; i++) {
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = seen[j]->n == cand[i]->n &&
                  memcmp(seen[j]->b, cand[i]->b, cand[i]->n) == 0;
        if (!dup) seen[n++] = cand[i];
    }
    return n;
}

static void check_stats(void) {
    cs_store_stats st;
    cs_store_stats_get(S, &st);
    size_t svc = 0, chan = 0, msg = 0, media = 0;
    for (int i = 0; i < M.nsvc; i++) svc += M.svc[i].alive;
    for (int i = 0; i < M.nchan; i++) chan += M.chan[i].alive;
    for (int i = 0; i < M.nmsg; i++) msg += M.msg[i].alive;
    for (int i = 0; i < M.nmedia; i++) media += m_media_live(i);
    size_t ids = m_identities();
    ENSURE(st.services == svc && st.channels == chan && st.messages == msg &&
               st.media == media && st.identities == ids,
           "stats %zu/%zu/%zu/%zu/%zu, model %zu/%zu/%zu/%zu/%zu", st.services,
           st.channels, st.messages, st.media, st.identities, svc, chan, msg,
           media, ids);
}

/* Walks a whole list with the largest page size, in one direction. */
static void walk_list(cs_page_kind kind, int svc, int chan, int order) {
    char token[CS_TOKEN_BUFSZ] = "";
    g_walking = true;
    for (int page = 0; page < MAX_MSG + MAX_CHAN + MAX_SVC + 2; page++) {
        list_args a;
        memset(&a, 0, sizeof a);
        a.kind = kind;
        if (svc >= 0) a.svc = cs_str_c(M.svc[svc].sid);
        if (chan >= 0) a.ch = cs_str_c(M.chan[chan].sid);
        a.order = order;
        a.ps = cs_str_c("1000");
        char pnum[16];
        snprintf(pnum, sizeof pnum, "%d", page);
        a.page = cs_str_c(pnum);
        a.token = token[0] ? cs_str_c(token) : CS_STR_ABSENT;
        a.types[0] = cs_str_c("private");
        a.types[1] = cs_str_c("public");
        a.ntypes = kind == CS_PAGE_CHANNELS ? 2 : 0;
        lctx nx, pvc;
        run_list(&a, &nx, &pvc);
        if (!g_walk_tok.str[0]) {
            g_walking = false;
            return;
        }
        memcpy(token, g_walk_tok.str, CS_TOKEN_BUFSZ);
    }
    FAIL("list never ends");
}

static void full_check(void) {
    g_render = false;
    ENSURE(cs_store_check(S) == CS_OK, "cs_store_check");
    check_stats();
    for (int i = 0; i < M.nsvc; i++) {
        cs_service_view v;
        cs_err e = cs_service_fetch(S, cs_str_c(M.svc[i].sid), &v);
        ENSURE(e == (M.svc[i].alive ? CS_OK : CS_E_NOT_FOUND), "service fetch");
        if (!e) cmp_service(&v, i);
    }
    for (int i = 0; i < M.nchan; i++) {
        const mchan *c = &M.chan[i];
        cs_channel_view v;
        cs_err e = cs_channel_fetch(S, cs_str_c(M.svc[c->svc].sid),
                                    cs_str_c(c->sid), &v);
        ENSURE(e == (c->alive ? CS_OK : CS_E_NOT_FOUND), "channel fetch");
        if (!e) cmp_channel(&v, i);
        if (c->alive && !c->un.null) {
            e = cs_channel_fetch(S, cs_str_c(M.svc[c->svc].sid),
                                 (cs_str){c->un.b, c->un.n}, &v);
            ENSURE(e == CS_OK, "channel fetch by unique name");
            cmp_channel(&v, i);
        }
    }
    for (int i = 0; i < M.nmsg; i++) {
        const mmsg *m = &M.msg[i];
        const mchan *c = &M.chan[m->chan];
        cs_message_view v;
        cs_err e = cs_message_fetch(S, cs_str_c(M.svc[c->svc].sid),
                                    cs_str_c(c->sid), cs_str_c(m->sid), &v);
        ENSURE(e == (m->alive ? CS_OK : CS_E_NOT_FOUND), "message fetch");
        if (!e) cmp_message(&v, i);
    }
    for (int i = 0; i < M.nmedia; i++) {
        const mmedia *m = &M.media[i];
        cs_media_view v;
        cs_err e = cs_media_fetch(S, cs_str_c(M.svc[m->svc].sid),
                                  cs_str_c(m->sid), &v);
        ENSURE(e == (m_media_live(i) ? CS_OK : CS_E_NOT_FOUND),
               "media fetch");
        if (!e) cmp_media(&v, i);
    }
    walk_list(CS_PAGE_SERVICES, -1, -1, 0);
    for (int i = 0; i < M.nsvc; i++)
        if (M.svc[i].alive) walk_list(CS_PAGE_CHANNELS, i, -1, 0);
    for (int i = 0; i < M.nchan; i++) {
        if (!M.chan[i].alive) continue;
        walk_list(CS_PAGE_MESSAGES, M.chan[i].svc, i, 1);
        walk_list(CS_PAGE_MESSAGES, M.chan[i].svc, i, 2);
    }
    /* Main and shadow: same content, same SID counter and serial. */
    cs_buf a, b;
    dump_store(S, &a);
    dump_store(SH, &b);
    ENSURE(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
           "store and shadow differ:\n%s\n----\n%s", a.data, b.data);
    cs_buf_free(&a);
    cs_buf_free(&b);
    g_render = true;
}

/* ======================================================================== */
/* Durability: snapshots and journal replay                                  */
/* ======================================================================== */

/* The options of every store of an input: S and SH, and the stores loaded
 * from a snapshot or rebuilt from the journal to compare with S or replace
 * it: seed 7, the harness clock, the model's current limits. */
static cs_options store_options(const cs_allocator *alc) {
    cs_options o = CS_OPTIONS_INIT;
    o.limits = M.lim;
    o.clock = fz_clock;
    o.use_seed = true;
    o.seed = 7;
    o.allocator = alc;
    return o;
}

static void new_store(cs_store **out, const cs_allocator *alc) {
    cs_options o = store_options(alc);
    FZ_CHECK(cs_store_new(&o, out) == CS_OK, "store");
}

/* A snapshot image in memory, written and read through the callbacks. */
typedef struct image {
    uint8_t *p;
    size_t n, cap, pos;
    size_t chunk;      /* reads return at most this many bytes (0: any) */
    size_t fail_after; /* writes beyond this many bytes fail */
} image;

static int img_write(void *ctx, const void *buf, size_t len) {
    image *m = ctx;
    if (len > m->fail_after - m->n) return -1;
    if (len > m->cap - m->n) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap - m->n < len) cap *= 2;
        uint8_t *p = realloc(m->p, cap);
        FZ_CHECK(p, "realloc");
        m->p = p;
        m->cap = cap;
    }
    if (len) memcpy(m->p + m->n, buf, len);
    m->n += len;
    return 0;
}

static ptrdiff_t img_read(void *ctx, void *buf, size_t len) {
    image *m = ctx;
    size_t k = m->n - m->pos;
    if (k > len) k = len;
    if (m->chunk && k > m->chunk) k = m->chunk;
    if (k) memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ptrdiff_t)k;
}

static image g_img;       /* the last snapshot of S */
static bool g_have_img;
static size_t g_img_nrec; /* journal records when it was taken */

/* Saves s into *m (emptied first). A save needs no memory: armed to fail
 * the first allocation, it must allocate nothing. */
static void img_save(const cs_store *s, image *m) {
    m->n = 0;
    m->fail_after = SIZE_MAX;
    unsigned long before = g_nalloc;
    g_fail_at = 0;
    cs_err e = cs_snapshot_save(s, img_write, m);
    g_fail_at = -1;
    ENSURE(e == CS_OK, "snapshot_save: %s", cs_err_name(e));
    ENSURE(g_nalloc == before, "snapshot_save made %lu allocations",
           g_nalloc - before);
}

/* Loads *m with S's options; on failure *out must be NULL. */
static cs_err img_load(const image *m, size_t chunk, cs_store **out) {
    image rdr = *m;
    rdr.pos = 0;
    rdr.chunk = chunk;
    cs_options o = store_options(&FAILING);
    cs_decode_error de = {0, NULL};
    *out = S; /* must be overwritten */
    cs_err e = cs_snapshot_load(&o, img_read, &rdr, out, &de);
    if (e) {
        ENSURE(*out == NULL, "snapshot_load failed (%s) with a store",
               cs_err_name(e));
    } else {
        ENSURE(*out && *out != S, "snapshot_load succeeded without a store");
    }
    ENSURE(e == CS_OK || e == CS_E_NOMEM, "snapshot_load: %s (%s at %llu)",
           cs_err_name(e), de.reason ? de.reason : "-",
           (unsigned long long)de.offset);
    return e;
}

/* The canonical dumps of a and b are byte-identical. */
static void same_dump(cs_store *a, cs_store *b, const char *what) {
    cs_buf x, y;
    dump_store(a, &x);
    dump_store(b, &y);
    size_t i = 0;
    while (i < x.len && i < y.len && x.data[i] == y.data[i]) i++;
    if (i < x.len || i < y.len) {
        size_t from = i > 200 ? i - 200 : 0;
        FAIL("%s differ at byte %zu of %zu / %zu:\n%.400s\n----\n%.400s", what,
             i, x.len, y.len, x.data + from, y.data + from);
    }
    cs_buf_free(&x);
    cs_buf_free(&y);
}

/* n replaces S (which is freed): the rest of the input runs on a loaded or
 * rebuilt store, with S's observer and journal hook moved over. */
static void swap_in(cs_store *n) {
    cs_store_free(S);
    S = n;
    ENSURE(cs_store_set_journal(S, journal_hook, &g_rec) == CS_OK,
           "set_journal");
    /* Added even when it is off, as S had it from the start: the final
     * check compares the byte count after a clear with a new store's with
     * one observer (the observer table keeps its memory). */
    ENSURE(cs_observer_add(S, observer, S, &g_obs_id) == CS_OK, "observer");
    if (!g_obs_on)
        ENSURE(cs_observer_remove(S, g_obs_id) == CS_OK, "observer_remove");
    ENSURE(memcmp(cs_store_limits(S), &M.lim, sizeof M.lim) == 0,
           "limits of the new store");
    ENSURE(str_cmp(cs_store_account_sid(S), ACCOUNT) == 0,
           "account of the new store");
    ENSURE(cs_store_check(S) == CS_OK, "cs_store_check of the new store");
}

/* Snapshot: S saved into memory, loaded into L with S's options (read in
 * chunks of some size, sometimes after a load that runs out of memory part
 * way); L's dump is S's, and L saves the same image. The image and the
 * journal length are remembered for op_replay. Sometimes L replaces S. */
static void op_snapshot(rd *r) {
    unsigned k = u8(r), w = u8(r) | u8(r) << 8;
    img_save(S, &g_img);
    g_have_img = false;
    if (k % 4 == 0) { /* a write callback failing part way: IO */
        image f;
        memset(&f, 0, sizeof f);
        f.fail_after = g_img.n ? w % g_img.n : 0;
        cs_err e = cs_snapshot_save(S, img_write, &f);
        ENSURE(e == CS_E_IO, "snapshot_save to a failing writer: %s",
               cs_err_name(e));
        free(f.p);
        note("snapshot_save failing writer", -1);
    }
    static const size_t CHUNK[] = {0, 1, 7, 4096};
    size_t chunk = CHUNK[k / 4 % 4];
    cs_store *L = NULL;
    cs_err e = CS_E_NOMEM;
    if (k / 16 % 2) { /* one allocation of the load fails: mostly early */
        unsigned f = u8(r);
        g_fail_at = (long)(f < 192 ? f % 24 : 24 + (f - 192) * 8);
        e = img_load(&g_img, chunk, &L);
        g_fail_at = -1;
        note("snapshot_load, allocation failure", e);
    }
    if (e) e = img_load(&g_img, chunk, &L);
    ENSURE(e == CS_OK, "snapshot_load: %s", cs_err_name(e));
    note("snapshot", -1);
    cs_err ce = cs_store_check(L);
    ENSURE(ce == CS_OK, "cs_store_check of a loaded store: %s",
           cs_err_name(ce));
    same_dump(S, L, "store and its loaded snapshot");
    image again;
    memset(&again, 0, sizeof again);
    img_save(L, &again);
    ENSURE(again.n == g_img.n && memcmp(again.p, g_img.p, g_img.n) == 0,
           "a loaded store saves another image (%zu bytes, %zu before)",
           again.n, g_img.n);
    free(again.p);
    g_have_img = true;
    g_img_nrec = g_nrec;
    if (k / 32 % 4 == 0) {
        note("store replaced by its loaded snapshot", -1);
        swap_in(L);
    } else {
        cs_store_free(L);
    }
}

/* Applying record g_rp_at to R: R's own hook must be handed the same bytes
 * (the same call on the same state), and its observer one event with the
 * record's seq. */
static size_t g_rp_at;
static unsigned g_rp_records, g_rp_events;

static int replay_hook(void *ctx, uint64_t seq, const void *rec, size_t len) {
    (void)ctx;
    ENSURE(g_rp_at < g_nrec && seq == g_rp_at + 1,
           "replaying record %zu journals seq %llu", g_rp_at,
           (unsigned long long)seq);
    const jcopy *o = &g_rec[g_rp_at];
    ENSURE(len == o->n && memcmp(rec, o->p, len) == 0,
           "replaying record %zu journals another record (%zu bytes, %zu "
           "written)",
           g_rp_at, len, o->n);
    g_rp_records++;
    return 0;
}

static void replay_observer(void *ctx, const cs_event *ev) {
    (void)ctx;
    ENSURE(ev->seq == g_rp_at + 1, "replaying record %zu: event seq %llu",
           g_rp_at, (unsigned long long)ev->seq);
    g_rp_events++;
}

static cs_err replay_apply(cs_store *R, size_t i, bool *applied) {
    g_rp_at = i;
    g_rp_records = g_rp_events = 0;
    *applied = !*applied; /* must be set either way */
    cs_decode_error de = {0, NULL};
    cs_err e = cs_journal_apply(R, g_rec[i].p, g_rec[i].n, applied, &de);
    ENSURE(e != CS_E_BAD_RECORD, "record %zu: BAD_RECORD (%s at %llu)", i,
           de.reason ? de.reason : "-", (unsigned long long)de.offset);
    return e;
}

/* A call that applied nothing: skipped, or refused before any change. */
#define ENSURE_NOT_APPLIED(R, e, want, ap, i, what)                           \
    do {                                                                      \
        ENSURE((e) == (want) && !(ap) && !g_rp_records && !g_rp_events,       \
               "%s record %zu: %s (applied %d, %u records, %u events)", what, \
               (size_t)(i), cs_err_name(e), (ap), g_rp_records, g_rp_events); \
        cs_store_stats st_;                                                   \
        cs_store_stats_get((R), &st_);                                        \
        ENSURE(st_.commits == commits, "%s record %zu: commits %llu, %llu "   \
               "before", what, (size_t)(i),                                   \
               (unsigned long long)st_.commits,                               \
               (unsigned long long)commits);                                  \
    } while (0)

/* Replay check: the last image loaded (a new store with S's seed when
 * there is none), every record journaled after it applied in order, gives
 * S's dump. Along the way: records the image holds again (skipped), the
 * record after next (RECORD_GAP), one record with an allocation failure
 * (NOMEM, nothing applied, then applied), one record twice at the end
 * (skipped). The clock is wrong throughout: replay must not consult it.
 * Sometimes the rebuilt store replaces S. */
static void op_replay(rd *r) {
    unsigned k = u8(r);
    cs_store *R = NULL;
    size_t from = 0;
    if (g_have_img) {
        ENSURE(img_load(&g_img, 0, &R) == CS_OK, "snapshot_load");
        from = g_img_nrec;
    } else {
        new_store(&R, &FAILING);
    }
    note(g_have_img ? "replay from a snapshot" : "replay from a new store",
         -1);
    uint64_t commits = from;
    cs_store_stats st;
    cs_store_stats_get(R, &st);
    ENSURE(st.commits == commits, "%llu commits in the base store, %zu records",
           (unsigned long long)st.commits, from);
    ENSURE(cs_store_set_journal(R, replay_hook, NULL) == CS_OK, "set_journal");
    uint64_t oid;
    ENSURE(cs_observer_add(R, replay_observer, NULL, &oid) == CS_OK,
           "observer");
    int64_t now = g_now;
    g_now = 17;
    bool ap = false;
    cs_err e;
    for (unsigned t = 0; from && t < k % 4; t++) {
        size_t i = (u8(r) | u8(r) << 8) % from;
        e = replay_apply(R, i, &ap);
        ENSURE_NOT_APPLIED(R, e, CS_OK, ap, i, "already applied");
    }
    size_t n = g_nrec - from, w = u8(r) | u8(r) << 8;
    size_t gap_at = n > 1 ? from + w % (n - 1) : SIZE_MAX;
    size_t oom_at = n && k / 4 % 2 ? from + (w >> 3) % n : SIZE_MAX;
    long oom_k = (long)(k >> 3) % 4;
    for (size_t i = from; i < g_nrec; i++) {
        if (i == gap_at) {
            e = replay_apply(R, i + 1, &ap);
            ENSURE_NOT_APPLIED(R, e, CS_E_RECORD_GAP, ap, i + 1, "gap:");
        }
        e = CS_E_NOMEM;
        if (i == oom_at) {
            g_fail_at = oom_k;
            e = replay_apply(R, i, &ap);
            g_fail_at = -1;
            note("journal_apply, allocation failure", e);
            if (e == CS_E_NOMEM) {
                ENSURE_NOT_APPLIED(R, e, CS_E_NOMEM, ap, i, "out of memory:");
                cs_err ce = cs_store_check(R);
                ENSURE(ce == CS_OK, "cs_store_check after NOMEM: %s",
                       cs_err_name(ce));
            }
        }
        if (e == CS_E_NOMEM) e = replay_apply(R, i, &ap);
        ENSURE(e == CS_OK && ap && g_rp_records == 1 && g_rp_events == 1,
               "applying record %zu of %zu: %s (applied %d, %u records, %u "
               "events)",
               i, g_nrec, cs_err_name(e), ap, g_rp_records, g_rp_events);
        commits++;
    }
    if (g_nrec) { /* again: skipped */
        size_t i = (u8(r) | u8(r) << 8) % g_nrec;
        e = replay_apply(R, i, &ap);
        ENSURE_NOT_APPLIED(R, e, CS_OK, ap, i, "applied twice:");
    }
    g_now = now;
    ENSURE(cs_observer_remove(R, oid) == CS_OK, "observer_remove");
    cs_err ce = cs_store_check(R);
    ENSURE(ce == CS_OK, "cs_store_check of a rebuilt store: %s",
           cs_err_name(ce));
    same_dump(S, R, "store and its journal replayed");
    if (k / 16 % 4 == 0) {
        note("store replaced by its journal replayed", -1);
        swap_in(R);
    } else {
        cs_store_free(R);
    }
}

/* ======================================================================== */
/* Driver                                                                    */
/* ======================================================================== */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rd r = {data, size};
    g_now = T0;
    g_fail_at = -1;
    memset(&M, 0, sizeof M);
    M.lim = LIMITS[0];
    g_commits = g_pending = 0;
    g_refuse = false;
    g_refused = 0;
    g_have_img = false;
    new_store(&S, &FAILING);
    new_store(&SH, &CHECKING);
    memcpy(ACCOUNT, cs_store_account_sid(S), CS_SID_BUFSZ);
    check_sid_shape(ACCOUNT, "AC");
    FZ_CHECK(str_cmp(ACCOUNT, cs_store_account_sid(SH)) == 0, "seeded account");
    FZ_CHECK(cs_observer_add(S, observer, S, &g_obs_id) == CS_OK, "observer");
    g_obs_on = true;
    FZ_CHECK(cs_store_set_journal(S, journal_hook, &g_rec) == CS_OK, "journal");
    cs_store_stats st0;
    cs_store_stats_get(S, &st0);
    g_base_bytes = st0.bytes_allocated;

    int n_full = 0, n_snap = 0, n_replay = 0;
    for (g_op = 0; r.n > 0 && g_op < MAX_OPS; g_op++) {
        /* 0-231 as before 29 to 31 existed, 232-255 those three */
        unsigned b = u8(&r), op = b < 232 ? b % 29 : 29 + (b - 232) / 8;
        g_nev = g_nwant = 0;
        bool arm = false, forced = false;
        if (op == 19) { /* fail one allocation of the next call */
            g_fail_at = (long)pick(&r, 12);
            arm = g_armed = true;
            op = u8(&r) % 19;
        }
        if (op == 29) { /* a mutating call: its journal record refused, or
                           one of its allocations failing */
            static const unsigned MUT[] = {0,  2,  3,  4,  6,  7,  8,
                                           10, 11, 15, 16, 17, 23, 25, 26};
            unsigned k = u8(&r);
            if (k % 2) {
                g_refuse = true;
                g_refuse_rc = k % 4 == 1 ? 1 : -1 - (int)(k >> 2);
                note("journal refusal armed", -1);
            } else {
                g_fail_at = (long)(k / 2 % 16);
                arm = g_armed = true;
            }
            op = MUT[pick(&r, NP(MUT))];
            forced = true;
        }
        switch (op) {
        case 0: op_service_create(&r); break;
        case 1: op_service_fetch(&r); break;
        case 2: op_service_update(&r); break;
        case 3: op_service_delete(&r); break;
        case 4: op_channel_create(&r); break;
        case 5: op_channel_fetch(&r); break;
        case 6: op_channel_update(&r); break;
        case 7: op_channel_delete(&r); break;
        case 8: op_message_create(&r); break;
        case 9: op_message_fetch(&r); break;
        case 10: op_message_update(&r); break;
        case 11: op_message_delete(&r); break;
        case 12: op_list(&r, CS_PAGE_MESSAGES); break;
        case 13: op_list(&r, CS_PAGE_CHANNELS); break;
        case 14: op_list(&r, CS_PAGE_SERVICES); break;
        case 15: op_media_create(&r); break;
        case 16:
            if (u8(&r) % 4 == 0)
                op_media_delete(&r);
            else
                op_media_fetch(&r);
            break;
        case 17: op_message_bulk(&r); break;
        case 18: op_follow(&r); break;
        case 20: note("tick", -1); op_tick(&r); break;
        case 21: note("set_limits", -1); op_set_limits(&r); break;
        case 22: /* O(store) with rendering: twice per input at most */
            if (++n_full <= 2) {
                note("full_check", -1);
                full_check();
            }
            break;
        case 23:
            if (forced || u8(&r) % 4 == 0) {
                note("clear", -1);
                op_clear();
            }
            break;
        case 24: op_message_create(&r); break;
        case 25: op_message_bulk_delete(&r); break;
        case 26: op_message_update_alias(&r); break;
        case 27: /* without observers, deletes take another path */
            if (g_obs_on) {
                ENSURE(cs_observer_remove(S, g_obs_id) == CS_OK, "remove");
                ENSURE(cs_observer_remove(S, g_obs_id) == CS_E_NOT_FOUND,
                       "removed twice");
            } else {
                ENSURE(cs_observer_add(S, observer, S, &g_obs_id) == CS_OK,
                       "observer");
            }
            g_obs_on = !g_obs_on;
            note(g_obs_on ? "observer added" : "observer removed", -1);
            break;
        case 28: op_list(&r, CS_PAGE_MESSAGES); break;
        case 30: /* O(store): twice per input at most, like full_check */
            if (++n_snap <= 2) op_snapshot(&r);
            break;
        case 31: /* O(journal + store) */
            if (++n_replay <= 2) op_replay(&r);
            break;
        default: FAIL("op %u", op);
        }
        if (arm) g_fail_at = -1;
        g_armed = false;
        g_refuse = false;
        ENSURE(g_refused == 0, "a refused record no check accounted for");
        check_events();
    }
    g_fail_at = -1;
    full_check();
    /* A cleared store holds what a new one holds: nothing leaked in the
     * store's own byte count either. */
    cs_store_stats st;
    g_nev = 0;
    ENSURE(cs_store_clear(S) == CS_OK, "final clear");
    cs_store_stats_get(S, &st);
    ENSURE(st.bytes_allocated == g_base_bytes,
           "%zu bytes after clear, %zu in a new store", st.bytes_allocated,
           g_base_bytes);
    cs_store_free(S);
    cs_store_free(SH);
    S = SH = NULL;
    journal_free();
    free(g_img.p);
    memset(&g_img, 0, sizeof g_img);
    return 0;
}
