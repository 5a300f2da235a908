/* One test per rule of the contract (docs/behaviour.md), each named after the
 * rule it proves. Every mutation goes through MUT_* (the invariant checker
 * runs afterwards), every expected failure is checked as an enum AND as its
 * REST form (HTTP status / Twilio code), and failing mutations are checked
 * to leave the store byte-for-byte as it was (a full dump before and after).
 *
 * These tests assert the CONTRACT. When one fails, the library is suspect,
 * not the test. */
#include "test_util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

/* ---- local assertion helpers -------------------------------------------- */

/* Reports where two dumps first differ. */
static void dec_same_dump(const char *what, const char *before,
                          const char *after, int line) {
    if (strcmp(before, after) == 0) return;
    size_t i = 0;
    while (before[i] && before[i] == after[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    CHECK_FAIL_("line %d: %s changed the store at byte %zu:\n  before "
                "...%.160s\n  after  ...%.160s",
                line, what, i, before + from, after + from);
}

#define DEC_CHECK_ERR_(expr, got, en, status, code)                           \
    do {                                                                      \
        TU_CHECK_FAILS_(expr, got, status, code);                             \
        if ((got) != (en))                                                    \
            CHECK_FAIL_("%s -> %s, expected %s", #expr, cs_err_name(got),     \
                        cs_err_name(en));                                     \
    } while (0)

/* A read-only call that must fail with this error, status and code. */
#define FAILS_E(...) FAILS_E_(__VA_ARGS__)
#define FAILS_E_(expr, en, status, code)                                      \
    do {                                                                      \
        cs_err er_ = (expr);                                                  \
        DEC_CHECK_ERR_(expr, er_, en, status, code);                          \
    } while (0)

/* A mutation of fixture fx that must fail with this error, status and code,
 * pass the invariant checker, and leave the dump of the store unchanged. */
#define MUT_FAILS_E(...) MUT_FAILS_E_(__VA_ARGS__)
#define MUT_FAILS_E_(fx, expr, en, status, code)                              \
    do {                                                                      \
        char *before_ = tu_dump(fx);                                          \
        cs_err er_ = (expr);                                                  \
        CHECK_STORE((fx)->s);                                                 \
        DEC_CHECK_ERR_(expr, er_, en, status, code);                          \
        char *after_ = tu_dump(fx);                                           \
        dec_same_dump(#expr, before_, after_, __LINE__);                      \
        free(before_);                                                        \
        free(after_);                                                         \
    } while (0)

/* Shorthands for the common error kinds (the macros above take them as
 * three arguments). */
#define E_20001(en) en, 400, 20001
#define E_404 CS_E_NOT_FOUND, 404, 20404

/* ---- local call helpers ---------------------------------------------------- */

static cs_err msg_create(tu_fx *f, const cs_message_params *p,
                         cs_message_view *v) {
    return cs_message_create(f->s, S(f->svc), S(f->ch), p, v);
}

static cs_err msg_update(tu_fx *f, const char *sid, const cs_message_params *p,
                         cs_message_view *v) {
    return cs_message_update(f->s, S(f->svc), S(f->ch), S(sid), p, v);
}

static cs_err msg_fetch(const tu_fx *f, const char *sid, cs_message_view *v) {
    return cs_message_fetch(f->s, S(f->svc), S(f->ch), S(sid), v);
}

static cs_err msg_delete(tu_fx *f, const char *sid) {
    return cs_message_delete(f->s, S(f->svc), S(f->ch), S(sid), CS_STR_ABSENT);
}

/* A cs_str over the first n bytes of p (may hold NUL bytes). */
static cs_str bytes(const char *p, size_t n) {
    cs_str r = {p, n};
    return r;
}

/* Creates a channel in the fixture's service; sid_out may be NULL. */
static cs_err chan_create(tu_fx *f, const char *unique, const char *type,
                          char *sid_out) {
    cs_channel_params p = tu_cp();
    p.unique_name = S(unique);
    p.type = S(type);
    cs_channel_view v;
    cs_err e = cs_channel_create(f->s, S(f->svc), &p, &v);
    if (e == CS_OK && sid_out) snprintf(sid_out, CS_SID_BUFSZ, "%s", v.sid);
    return e;
}

/* The rendering of the message with this SID (heap string). */
static char *msg_json(const tu_fx *f, const char *sid) {
    cs_message_view v;
    cs_err e = msg_fetch(f, sid, &v);
    if (e != CS_OK) {
        CHECK_FAIL_("fetch %s: %s", sid, cs_err_name(e));
        return calloc(1, 1);
    }
    cs_buf b;
    cs_buf_init(&b, NULL);
    char *out = strdup(tu_render_msg(f->s, &v, &b));
    cs_buf_free(&b);
    return out;
}

/* ======================================================================== */
/* Messages: index                                                           */
/* ======================================================================== */

TEST(decision_index_first_is_zero) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    int64_t idx = -1;
    char other[CS_SID_BUFSZ];
    CHECK_OK(tu_msg_in(&f, NULL, "a", NULL, &idx));
    CHECK_INT(idx, 0);
    CHECK_OK(tu_msg_in(&f, NULL, "b", NULL, &idx));
    CHECK_INT(idx, 1);
    /* Each channel counts on its own: a second channel starts at 0 too. */
    MUT_OK(f.s, chan_create(&f, "other", NULL, other));
    CHECK_OK(tu_msg_in(&f, other, "c", NULL, &idx));
    CHECK_INT(idx, 0);
    CHECK_OK(tu_msg_in(&f, NULL, "d", NULL, &idx));
    CHECK_INT(idx, 2);
    tu_close(&f);
}

TEST(decision_index_never_reused_after_delete) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[3][CS_SID_BUFSZ];
    int64_t idx = -1;
    for (int i = 0; i < 3; i++) CHECK_OK(tu_msg(&f, "x", sid[i]));
    /* Deleting the highest index must not hand it out again. */
    MUT_OK(f.s, msg_delete(&f, sid[2]));
    CHECK_OK(tu_msg_in(&f, NULL, "y", sid[2], &idx));
    CHECK_INT(idx, 3);
    MUT_OK(f.s, msg_delete(&f, sid[0]));
    CHECK_OK(tu_msg_in(&f, NULL, "z", sid[0], &idx));
    CHECK_INT(idx, 4);
    /* Even an emptied channel continues after the highest index ever given. */
    MUT_OK(f.s, msg_delete(&f, sid[0]));
    MUT_OK(f.s, msg_delete(&f, sid[1]));
    MUT_OK(f.s, msg_delete(&f, sid[2]));
    CHECK_OK(tu_msg_in(&f, NULL, "w", NULL, &idx));
    CHECK_INT(idx, 5);
    tu_close(&f);
}

TEST(decision_index_follows_arrival_not_date_created) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    const char *dates[3] = {"2020-01-01T00:00:00Z", "2010-01-01T00:00:00Z",
                            "2015-01-01T00:00:00Z"};
    char sid[3][CS_SID_BUFSZ];
    for (int i = 0; i < 3; i++) {
        cs_message_params p = tu_mp();
        p.body = S(dates[i]);
        p.date_created = S(dates[i]);
        cs_message_view v;
        MUT_OK(f.s, msg_create(&f, &p, &v));
        CHECK_INT(v.index, i);
        snprintf(sid[i], sizeof sid[i], "%s", v.sid);
    }
    /* The list runs by index, i.e. by arrival. */
    cs_page pg;
    CHECK_OK(tu_list(&f, NULL, NULL, NULL, NULL, &pg));
    cs_message_view v;
    int i = 0;
    while (cs_page_next_message(f.s, &pg, &v)) {
        CHECK_INT(v.index, i);
        if (i < 3) CHECK_CSTR(v.body, dates[i]);
        i++;
    }
    CHECK_INT(i, 3);
    /* Moving DateCreated on update does not move the index. */
    cs_message_params u = tu_mp();
    u.date_created = S("1999-01-01T00:00:00Z");
    MUT_OK(f.s, msg_update(&f, sid[2], &u, &v));
    CHECK_INT(v.index, 2);
    tu_close(&f);
}

/* ======================================================================== */
/* Messages: from, attributes                                                */
/* ======================================================================== */

TEST(decision_from_defaults_to_system) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_message_params p = tu_mp();
    p.body = S("hi");
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_CSTR(v.from, "system");
    char *json = msg_json(&f, v.sid);
    CHECK(strstr(json, "\"from\": \"system\"") != NULL);
    free(json);
    p.from = S("alice");
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_CSTR(v.from, "alice");
    tu_close(&f);
}

TEST(decision_attributes_default_braces) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_message_params p = tu_mp();
    p.body = S("hi");
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_CSTR(v.attributes, "{}");
    char sid[CS_SID_BUFSZ];
    snprintf(sid, sizeof sid, "%s", v.sid);
    /* Returned as a string holding JSON text, on fetch and in lists. */
    char *json = msg_json(&f, sid);
    CHECK(strstr(json, "\"attributes\": \"{}\"") != NULL);
    free(json);
    cs_page pg;
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK_OK(tu_list(&f, NULL, NULL, NULL, NULL, &pg));
    CHECK(strstr(tu_render_page(f.s, &pg, &b), "\"attributes\": \"{}\"") !=
          NULL);
    /* An update that does not name Attributes keeps the default. */
    cs_message_params u = tu_mp();
    u.body = S("edited");
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK_CSTR(v.attributes, "{}");
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(decision_attributes_verbatim_not_reserialised) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* Each one valid JSON text in a form a serialiser would change. */
    static const char *const cases[][2] = {
        {"{ \"foo\": \"bar\" }", "\"{ \\\"foo\\\": \\\"bar\\\" }\""},
        {"{\"b\":1,\"a\":2}", "\"{\\\"b\\\":1,\\\"a\\\":2}\""},
        {"{\"x\": 1.0e+2, \"y\": -0.50}",
         "\"{\\\"x\\\": 1.0e+2, \\\"y\\\": -0.50}\""},
        {"{\"e\":\"\\u00e9\\/\"}", "\"{\\\"e\\\":\\\"\\\\u00e9\\\\/\\\"}\""},
        {"  {}\n", "\"  {}\\n\""},
        {"[1,2]", "\"[1,2]\""},
        {"\"just a string\"", "\"\\\"just a string\\\"\""},
        {"42", "\"42\""},
        {"null", "\"null\""},
        {"{\"k\": \"caf\xc3\xa9\"}", "\"{\\\"k\\\": \\\"caf\xc3\xa9\\\"}\""},
    };
    cs_buf b;
    cs_buf_init(&b, NULL);
    char first[CS_SID_BUFSZ] = "";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cs_message_params p = tu_mp();
        p.attributes = S(cases[i][0]);
        cs_message_view v;
        MUT_OK(f.s, msg_create(&f, &p, &v));
        CHECK_CSTR(v.attributes, cases[i][0]);
        if (!first[0]) snprintf(first, sizeof first, "%s", v.sid);
        cs_message_view g;
        CHECK_OK(msg_fetch(&f, v.sid, &g));
        CHECK_CSTR(g.attributes, cases[i][0]);
        char want[256];
        snprintf(want, sizeof want, "\"attributes\": %s, ", cases[i][1]);
        const char *json = tu_render_msg(f.s, &g, &b);
        if (!strstr(json, want))
            CHECK_FAIL_("case %zu: %s not in %s", i, want, json);
    }
    /* Update keeps the new text verbatim too. */
    cs_message_params u = tu_mp();
    u.attributes = S("{\"z\" :[ true ,false ] }");
    cs_message_view v;
    MUT_OK(f.s, msg_update(&f, first, &u, &v));
    CHECK_CSTR(v.attributes, "{\"z\" :[ true ,false ] }");
    CHECK_OK(msg_fetch(&f, first, &v));
    CHECK_CSTR(v.attributes, "{\"z\" :[ true ,false ] }");
    cs_buf_free(&b);
    tu_close(&f);
}

/* Values that are not RFC 8259 JSON text. */
static const char *const BAD_JSON[] = {
    "{'a':1}", "{\"a\":1,}", "[1,]", "[1 2]", "{\"a\" 1}", "{\"a\":}",
    "{a:1}", "01", "1.", ".5", "+1", "1e", "-", "NaN", "Infinity", "True",
    "nul", "\"\\x\"", "\"\\u12\"", "\"tab\there\"", "{} {}", "{}}", "[",
    "{", "]", "\"unterminated", "\xef\xbb\xbf{}", " ", "{\"a\":1}x", "//{}",
};

TEST(decision_attributes_invalid_json_50304) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    for (size_t i = 0; i < sizeof BAD_JSON / sizeof BAD_JSON[0]; i++) {
        cs_message_params p = tu_mp();
        p.attributes = S(BAD_JSON[i]);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_INVALID,
                    400, 50304);
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL),
                    CS_E_ATTRIBUTES_INVALID, 400, 50304);
    }
    /* A NUL byte inside the text is not JSON either. */
    cs_message_params p = tu_mp();
    p.attributes = bytes("{}\0", 3);
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_INVALID, 400,
                50304);
    /* Channels validate the same way. */
    cs_channel_params cp = tu_cp();
    cp.attributes = S("{'a':1}");
    MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &cp, NULL),
                CS_E_ATTRIBUTES_INVALID, 400, 50304);
    MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL),
                CS_E_ATTRIBUTES_INVALID, 400, 50304);
    tu_close(&f);
}

TEST(decision_attributes_empty_50304) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    cs_message_params p = tu_mp();
    p.attributes = S("");
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_INVALID, 400,
                50304);
    MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL), CS_E_ATTRIBUTES_INVALID,
                400, 50304);
    cs_channel_params cp = tu_cp();
    cp.attributes = S("");
    MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &cp, NULL),
                CS_E_ATTRIBUTES_INVALID, 400, 50304);
    MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL),
                CS_E_ATTRIBUTES_INVALID, 400, 50304);
    tu_close(&f);
}

TEST(decision_attributes_invalid_utf8_50304) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    static const char *const bad[] = {
        "{\"a\":\"\xff\"}",         /* never valid */
        "{\"a\":\"\xc3\"}",         /* truncated sequence */
        "{\"a\":\"\xc0\xaf\"}",     /* overlong */
        "{\"a\":\"\xed\xa0\x80\"}", /* UTF-16 surrogate */
        "{\"a\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
        "{\"\xe2\x82\":1}",         /* inside a key */
        "[\"\x80\"]",               /* stray continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cs_message_params p = tu_mp();
        p.attributes = S(bad[i]);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_INVALID,
                    400, 50304);
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL),
                    CS_E_ATTRIBUTES_INVALID, 400, 50304);
    }
    /* The same text with valid UTF-8 is fine (4-byte sequence included). */
    cs_message_params p = tu_mp();
    p.attributes = S("{\"\xe2\x82\xac\":\"\xf0\x9f\x98\x80\"}");
    MUT_OK(f.s, msg_create(&f, &p, NULL));
    tu_close(&f);
}

TEST(decision_attributes_deep_nesting_accepted) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_message_view v;
    /* 5000 nested arrays, and 8192 = exactly the 16384-byte limit. */
    static const size_t depths[] = {5000, 8192};
    for (size_t i = 0; i < 2; i++) {
        char *open = tu_repeat(NULL, "[", depths[i], NULL);
        char *deep = tu_repeat(open, "]", depths[i], NULL);
        cs_message_params p = tu_mp();
        p.attributes = S(deep);
        MUT_OK(f.s, msg_create(&f, &p, &v));
        CHECK_INT(v.attributes.len, 2 * depths[i]);
        CHECK(v.attributes.len == strlen(deep) &&
              memcmp(v.attributes.ptr, deep, strlen(deep)) == 0);
        /* One bracket missing: still checked to the end. */
        p.attributes = bytes(deep, strlen(deep) - 1);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_INVALID,
                    400, 50304);
        free(open);
        free(deep);
    }
    /* Objects and arrays mixed: {"a":[{"a":[ ... 1 ... ]}]} */
    char *open = tu_repeat(NULL, "{\"a\":[", 2000, "1");
    char *deep = tu_repeat(open, "]}", 2000, NULL);
    cs_message_params p = tu_mp();
    p.attributes = S(deep);
    MUT_OK(f.s, msg_create(&f, &p, NULL));
    /* A closer of the wrong kind deep inside is refused. */
    size_t k = strlen(open) + 2 * 700; /* a ']' of the closing run */
    CHECK(deep[k] == ']');
    deep[k] = '}';
    p.attributes = S(deep);
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_INVALID, 400,
                50304);
    free(open);
    free(deep);
    /* "Any nesting depth": with the size limit raised, 800000 levels (3.2 MB),
     * far beyond anything a recursive validator survives on the C stack. */
    cs_limits lim = *cs_store_limits(f.s);
    lim.attributes_bytes = 1u << 22;
    MUT_OK(f.s, cs_store_set_limits(f.s, &lim));
    open = tu_repeat(NULL, "[{\"k\":", 400000, "0");
    deep = tu_repeat(open, "}]", 400000, NULL);
    p.attributes = S(deep);
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.attributes.len, strlen(deep));
    free(open);
    free(deep);
    tu_close(&f);
}

TEST(decision_attributes_any_number_accepted) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* Numbers are validated by grammar, never converted: no overflow, no
     * precision limit. */
    char *big = tu_repeat("[1", "9", 10000, "]");
    char *frac = tu_repeat("{\"f\": -0.", "0", 5000, "1}");
    static const char *const fixed[] = {
        "1e999999999", "-1E-999999999", "[0, -0, 0.0, 1e0, 1E+2, 123.456e-7]",
        "18446744073709551616", "-9223372036854775809",
    };
    const char *all[7] = {big, frac, fixed[0], fixed[1], fixed[2], fixed[3],
                          fixed[4]};
    for (size_t i = 0; i < 7; i++) {
        cs_message_params p = tu_mp();
        p.attributes = S(all[i]);
        cs_message_view v;
        MUT_OK(f.s, msg_create(&f, &p, &v));
        CHECK(v.attributes.len == strlen(all[i]) &&
              memcmp(v.attributes.ptr, all[i], v.attributes.len) == 0);
    }
    free(big);
    free(frac);
    tu_close(&f);
}

/* The whole file, or NULL. */
static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    tu_sb b = {NULL, 0, 0};
    char chunk[4096];
    size_t n;
    tu_sb_addn(&b, "", 0);
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) tu_sb_addn(&b, chunk, n);
    fclose(fp);
    *len = b.len;
    return b.p;
}

static bool utf8_ok(const char *p, size_t n) {
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)p;
    while (n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(u, (utf8proc_ssize_t)n, &cp);
        if (k <= 0) return false;
        u += k;
        n -= (size_t)k;
    }
    return true;
}

/* JSONTestSuite through the store: y_ files are stored verbatim, n_ files
 * give 50304, and of the implementation-defined i_ files those DECISIONS.md
 * settles: every number is accepted (never converted), deep nesting is
 * accepted, raw invalid UTF-8 gives 50304. */
TEST(decision_attributes_strict_rfc8259_json_test_suite) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_limits lim = *cs_store_limits(f.s);
    lim.attributes_bytes = 1u << 20; /* judge JSON, not size */
    MUT_OK(f.s, cs_store_set_limits(f.s, &lim));
    DIR *dir = opendir(JSONTESTSUITE_DIR);
    if (!dir) {
        CHECK_FAIL_("cannot open %s", JSONTESTSUITE_DIR);
        tu_close(&f);
        return;
    }
    int files = 0, judged = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", JSONTESTSUITE_DIR, name);
        size_t len = 0;
        char *data = slurp(path, &len);
        if (!data) {
            CHECK_FAIL_("cannot read %s", path);
            continue;
        }
        files++;
        int expect = -1; /* 1 accept, 0 reject, -1 not settled */
        if (!strncmp(name, "y_", 2))
            expect = 1;
        else if (!strncmp(name, "n_", 2))
            expect = 0;
        else if (!strncmp(name, "i_number_", 9) ||
                 !strcmp(name, "i_structure_500_nested_arrays.json"))
            expect = 1;
        else if (!utf8_ok(data, len))
            expect = 0;
        if (expect >= 0) {
            judged++;
            cs_message_params p = tu_mp();
            p.attributes = bytes(data, len);
            cs_message_view v;
            cs_err e = msg_create(&f, &p, &v);
            CHECK_STORE(f.s);
            if (expect && e != CS_OK) {
                CHECK_FAIL_("%s: %s, must be accepted", name, cs_err_name(e));
            } else if (expect && (v.attributes.len != len ||
                                  memcmp(v.attributes.ptr, data, len) != 0)) {
                CHECK_FAIL_("%s: not stored verbatim", name);
            } else if (!expect && (cs_err_http_status(e) != 400 ||
                                   cs_err_twilio_code(e) != 50304)) {
                CHECK_FAIL_("%s: %s (%d/%d), expected 400/50304", name,
                            cs_err_name(e), cs_err_http_status(e),
                            cs_err_twilio_code(e));
            }
        }
        free(data);
    }
    closedir(dir);
    CHECK(files >= 300);
    CHECK(judged >= 290);
    tu_close(&f);
}

/* ======================================================================== */
/* Messages: body                                                            */
/* ======================================================================== */

TEST(decision_body_absent_empty_stores_empty) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_message_params p = tu_mp();
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v)); /* absent (null) */
    CHECK(v.body.ptr != NULL);
    CHECK_CSTR(v.body, "");
    CHECK_INT(v.type, CS_MESSAGE_TEXT);
    char *json = msg_json(&f, v.sid);
    CHECK(strstr(json, "\"body\": \"\"") != NULL);
    free(json);
    p.body = S("");
    MUT_OK(f.s, msg_create(&f, &p, &v)); /* empty */
    CHECK(v.body.ptr != NULL);
    CHECK_CSTR(v.body, "");
    json = msg_json(&f, v.sid);
    CHECK(strstr(json, "\"body\": \"\"") != NULL);
    free(json);
    tu_close(&f);
}

static const char *const BAD_UTF8[] = {
    "\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
    "\x80", "\xe2\x82", "ok \xf8\x88\x80\x80\x80",
};

TEST(decision_body_invalid_utf8_20001) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    for (size_t i = 0; i < sizeof BAD_UTF8 / sizeof BAD_UTF8[0]; i++) {
        cs_message_params p = tu_mp();
        p.body = S(BAD_UTF8[i]);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), E_20001(CS_E_BAD_UTF8));
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL),
                    E_20001(CS_E_BAD_UTF8));
    }
    tu_close(&f);
}

TEST(decision_body_stored_verbatim_not_normalised) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* NFD "é" (e + combining acute), NFC "é", a NUL byte, CRLF, spaces,
     * a BOM, and a 4-byte character: all come back byte for byte. */
    static const struct {
        const char *p;
        size_t n;
        const char *json;
    } cases[] = {
        {"Cafe\xcc\x81", 6, "\"body\": \"Cafe\xcc\x81\""},
        {"Caf\xc3\xa9", 5, "\"body\": \"Caf\xc3\xa9\""},
        {"a\0b", 3, "\"body\": \"a\\u0000b\""},
        {"  line1\r\nline2\t ", 16, "\"body\": \"  line1\\r\\nline2\\t \""},
        {"\xef\xbb\xbfhi", 5, "\"body\": \"\xef\xbb\xbfhi\""},
        {"\xf0\x9f\x98\x80 \"q\" \\", 10,
         "\"body\": \"\xf0\x9f\x98\x80 \\\"q\\\" \\\\\""},
    };
    cs_buf b;
    cs_buf_init(&b, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cs_message_params p = tu_mp();
        p.body = bytes(cases[i].p, cases[i].n);
        cs_message_view v;
        MUT_OK(f.s, msg_create(&f, &p, &v));
        CHECK_OK(msg_fetch(&f, v.sid, &v));
        CHECK_INT(v.body.len, cases[i].n);
        CHECK(v.body.len == cases[i].n &&
              memcmp(v.body.ptr, cases[i].p, cases[i].n) == 0);
        CHECK(v.body.ptr[v.body.len] == '\0'); /* NUL-terminated too */
        const char *json = tu_render_msg(f.s, &v, &b);
        if (!strstr(json, cases[i].json))
            CHECK_FAIL_("case %zu: %s not in %s", i, cases[i].json, json);
        /* Update stores verbatim as well (NFD after NFC). */
        cs_message_params u = tu_mp();
        u.body = bytes(cases[0].p, cases[0].n);
        MUT_OK(f.s, msg_update(&f, v.sid, &u, &v));
        CHECK(v.body.len == 6 && memcmp(v.body.ptr, "Cafe\xcc\x81", 6) == 0);
    }
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(decision_body_limit_32768_bytes_50504) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    char *ok = tu_repeat(NULL, "a", 32768, NULL);
    char *over = tu_repeat(NULL, "a", 32769, NULL);
    char *e2 = tu_repeat(NULL, "\xc3\xa9", 16384, NULL);       /* 32768 B */
    char *e3 = tu_repeat(NULL, "\xe2\x82\xac", 10923, NULL);   /* 32769 B */
    char *e4 = tu_repeat(NULL, "\xf0\x9f\x98\x80", 8193, NULL); /* 32772 B */
    cs_message_params p = tu_mp();
    cs_message_view v;
    p.body = S(ok);
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.body.len, 32768);
    p.body = S(e2);
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.body.len, 32768);
    const char *fails[3] = {over, e3, e4};
    for (int i = 0; i < 3; i++) {
        p.body = S(fails[i]);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_BODY_TOO_LONG, 400,
                    50504);
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL), CS_E_BODY_TOO_LONG,
                    400, 50504);
    }
    p.body = S(ok);
    MUT_OK(f.s, msg_update(&f, sid, &p, &v));
    CHECK_INT(v.body.len, 32768);
    free(ok);
    free(over);
    free(e2);
    free(e3);
    free(e4);
    tu_close(&f);
}

/* ======================================================================== */
/* Messages: media                                                           */
/* ======================================================================== */

TEST(decision_type_media_when_media_sid) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char me[CS_SID_BUFSZ];
    REQUIRE(tu_media_in(&f, f.svc, "image/png", "cat.png", 4096, me) == CS_OK);
    cs_message_params p = tu_mp();
    p.media_sid = S(me);
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.type, CS_MESSAGE_MEDIA);
    CHECK(v.has_media);
    CHECK_STR(v.media.sid, me);
    char *json = msg_json(&f, v.sid);
    CHECK(strstr(json, "\"type\": \"media\"") != NULL);
    free(json);
    /* Without MediaSid: text, media null. */
    cs_message_params t = tu_mp();
    t.body = S("plain");
    MUT_OK(f.s, msg_create(&f, &t, &v));
    CHECK_INT(v.type, CS_MESSAGE_TEXT);
    CHECK(!v.has_media);
    json = msg_json(&f, v.sid);
    CHECK(strstr(json, "\"type\": \"text\", \"media\": null") != NULL);
    free(json);
    tu_close(&f);
}

TEST(decision_media_with_body_allowed) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char me[CS_SID_BUFSZ];
    REQUIRE(tu_media(&f, "doc.pdf", me) == CS_OK);
    cs_message_params p = tu_mp();
    p.media_sid = S(me);
    p.body = S("see attached");
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.type, CS_MESSAGE_MEDIA);
    CHECK_CSTR(v.body, "see attached");
    CHECK_OK(msg_fetch(&f, v.sid, &v));
    CHECK_CSTR(v.body, "see attached");
    CHECK(v.has_media);
    tu_close(&f);
}

TEST(decision_media_unknown_50507) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_message_params p = tu_mp();
    p.media_sid = S("ME0123456789abcdef0123456789abcdef");
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_MEDIA_NOT_FOUND, 400,
                50507);
    /* Media registered in another service is unknown here. */
    cs_service_view sv;
    MUT_OK(f.s, cs_service_create(f.s, S("other"), &sv));
    char me[CS_SID_BUFSZ];
    REQUIRE(tu_media_in(&f, sv.sid, "image/png", NULL, 10, me) == CS_OK);
    p.media_sid = S(me);
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_MEDIA_NOT_FOUND, 400,
                50507);
    tu_close(&f);
}

TEST(decision_media_in_use_50508) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char me[CS_SID_BUFSZ], other[CS_SID_BUFSZ];
    REQUIRE(tu_media(&f, "a.pdf", me) == CS_OK);
    MUT_OK(f.s, chan_create(&f, "other", NULL, other));
    cs_message_params p = tu_mp();
    p.media_sid = S(me);
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    /* Again in the same channel, or in another channel. */
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_MEDIA_IN_USE, 400, 50508);
    MUT_FAILS_E(&f,
                cs_message_create(f.s, S(f.svc), S(other), &p, NULL),
                CS_E_MEDIA_IN_USE, 400, 50508);
    /* The registry records which message uses it. */
    cs_media_view mv;
    CHECK_OK(cs_media_fetch(f.s, S(f.svc), S(me), &mv));
    CHECK(mv.attached);
    CHECK_STR(mv.message_sid, v.sid);
    CHECK_STR(mv.channel_sid, f.ch);
    tu_close(&f);
}

TEST(decision_media_malformed_sid_50510) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    static const char *const bad[] = {
        "ME123",
        "ME0123456789abcdef0123456789abcdeg",  /* not hex */
        "ME0123456789abcdef0123456789abcdef0", /* 33 digits */
        "IM0123456789abcdef0123456789abcdef",  /* wrong prefix */
        "hello",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cs_message_params p = tu_mp();
        p.media_sid = S(bad[i]);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_BAD_MEDIA_SID, 400,
                    50510);
    }
    tu_close(&f);
}

/* Observer for the media rules: the last event's type and counts. */
static cs_event dec_last_ev;
static void dec_keep_event(void *ctx, const cs_event *ev) {
    (void)ctx;
    dec_last_ev = *ev;
    dec_last_ev.message = NULL;
    dec_last_ev.channel = NULL;
    dec_last_ev.service = NULL;
    dec_last_ev.media = NULL;
}

TEST(decision_media_goes_with_its_message) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_OK(cs_observer_add(f.s, dec_keep_event, NULL, NULL));
    char me[CS_SID_BUFSZ], me2[CS_SID_BUFSZ], me3[CS_SID_BUFSZ],
        other[CS_SID_BUFSZ];
    REQUIRE(tu_media(&f, "a.pdf", me) == CS_OK);
    REQUIRE(tu_media(&f, "b.pdf", me2) == CS_OK);
    REQUIRE(tu_media(&f, "c.pdf", me3) == CS_OK);
    cs_message_params p = tu_mp();
    p.media_sid = S(me);
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    /* Attached to a live message: in use, and not deletable on its own. */
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_MEDIA_IN_USE, 400, 50508);
    MUT_FAILS_E(&f, cs_media_delete(f.s, S(f.svc), S(me)), CS_E_MEDIA_IN_USE,
                400, 50508);
    cs_store_stats st0, st1;
    cs_store_stats_get(f.s, &st0);
    MUT_OK(f.s, msg_delete(&f, v.sid));
    cs_store_stats_get(f.s, &st1);
    CHECK_INT(st1.media, st0.media - 1);
    CHECK_INT(dec_last_ev.type, CS_EVENT_MESSAGE_DELETED);
    CHECK_INT(dec_last_ev.removed_media, 1);
    FAILS_E(cs_media_fetch(f.s, S(f.svc), S(me), NULL), E_404);
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_MEDIA_NOT_FOUND, 400,
                50507);
    /* With the channel: every media item of its messages. */
    MUT_OK(f.s, chan_create(&f, "other", NULL, other));
    p.media_sid = S(me2);
    MUT_OK(f.s, cs_message_create(f.s, S(f.svc), S(other), &p, NULL));
    MUT_OK(f.s, cs_message_create(f.s, S(f.svc), S(other), NULL, NULL));
    cs_store_stats_get(f.s, &st0);
    MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S(other), CS_STR_ABSENT));
    cs_store_stats_get(f.s, &st1);
    CHECK_INT(st1.media, st0.media - 1);
    CHECK_INT(dec_last_ev.type, CS_EVENT_CHANNEL_DELETED);
    CHECK_INT(dec_last_ev.removed_messages, 2);
    CHECK_INT(dec_last_ev.removed_media, 1);
    FAILS_E(cs_media_fetch(f.s, S(f.svc), S(me2), NULL), E_404);
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_MEDIA_NOT_FOUND, 400,
                50507);
    /* A text message's delete takes no media; the unattached item stays. */
    char im[CS_SID_BUFSZ];
    REQUIRE(tu_msg(&f, "text", im) == CS_OK);
    MUT_OK(f.s, msg_delete(&f, im));
    CHECK_INT(dec_last_ev.removed_media, 0);
    CHECK_OK(cs_media_fetch(f.s, S(f.svc), S(me3), NULL));
    tu_close(&f);
}

TEST(decision_media_delete_unattached_only) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_OK(cs_observer_add(f.s, dec_keep_event, NULL, NULL));
    char me[CS_SID_BUFSZ];
    REQUIRE(tu_media(&f, "a.pdf", me) == CS_OK);
    MUT_FAILS_E(&f, cs_media_delete(f.s, S(f.svc), S("ME0123")), E_404);
    MUT_FAILS_E(&f, cs_media_delete(f.s, S("IS0123"), S(me)), E_404);
    MUT_FAILS_E(&f, cs_media_delete(f.s, S(f.svc), CS_STR_ABSENT), E_404);
    cs_store_stats st0, st1;
    cs_store_stats_get(f.s, &st0);
    MUT_OK(f.s, cs_media_delete(f.s, S(f.svc), S(me)));
    cs_store_stats_get(f.s, &st1);
    CHECK_INT(st1.media, st0.media - 1);
    CHECK(st1.bytes_allocated < st0.bytes_allocated);
    CHECK_INT(st1.commits, st0.commits + 1);
    CHECK_INT(dec_last_ev.type, CS_EVENT_MEDIA_DELETED);
    CHECK_INT(dec_last_ev.removed_media, 1);
    FAILS_E(cs_media_fetch(f.s, S(f.svc), S(me), NULL), E_404);
    MUT_FAILS_E(&f, cs_media_delete(f.s, S(f.svc), S(me)), E_404);
    cs_message_params p = tu_mp();
    p.media_sid = S(me);
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_MEDIA_NOT_FOUND, 400,
                50507);
    tu_close(&f);
}

/* ======================================================================== */
/* Messages: dates                                                           */
/* ======================================================================== */

/* Formats a time the way the store must (independent of cs_format_date). */
static void dec_date(int64_t t, char out[CS_DATE_BUFSZ]) {
    int64_t days = t / 86400, sod = t % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    /* civil_from_days (H. Hinnant), for the years used here. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(out, CS_DATE_BUFSZ, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y,
             (int)m, (int)d, (int)(sod / 3600), (int)(sod / 60 % 60),
             (int)(sod % 60));
}

/* "date_created": "<d>" and "date_updated": "<u>" appear in the rendering
 * of the message with this SID. */
static void check_msg_dates(const tu_fx *f, const char *sid, const char *dc,
                            const char *du, int line) {
    char *json = msg_json(f, sid);
    char want[96];
    snprintf(want, sizeof want,
             "\"date_created\": \"%s\", \"date_updated\": \"%s\"", dc, du);
    if (!strstr(json, want))
        CHECK_FAIL_("line %d: %s not in %s", line, want, json);
    free(json);
}
#define CHECK_MSG_DATES(f, sid, dc, du)                                       \
    check_msg_dates((f), (sid), (dc), (du), __LINE__)

TEST(decision_date_created_import) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    tu_now = TU_T0 + 100;
    char now[CS_DATE_BUFSZ];
    dec_date(tu_now, now);
    cs_message_params p = tu_mp();
    cs_message_view v;
    /* Not given: now. */
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.date_created, tu_now);
    CHECK_MSG_DATES(&f, v.sid, now, now);
    /* Given (history import): kept, even far in the past. */
    p.date_created = S("2001-09-09T01:46:40Z");
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.date_created, 1000000000);
    CHECK_MSG_DATES(&f, v.sid, "2001-09-09T01:46:40Z", "2001-09-09T01:46:40Z");
    p.date_created = S("1969-12-31T23:59:59Z");
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.date_created, -1);
    CHECK_MSG_DATES(&f, v.sid, "1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z");
    tu_close(&f);
}

TEST(decision_date_updated_defaults_to_date_created) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    tu_now = TU_T0 + 5000;
    char now[CS_DATE_BUFSZ];
    dec_date(tu_now, now);
    cs_message_params p = tu_mp();
    cs_message_view v;
    p.date_created = S("2010-05-05T05:05:05Z");
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.date_updated, v.date_created);
    CHECK_MSG_DATES(&f, v.sid, "2010-05-05T05:05:05Z", "2010-05-05T05:05:05Z");
    /* Both given: each its own. */
    p.date_updated = S("2011-06-06T06:06:06Z");
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_MSG_DATES(&f, v.sid, "2010-05-05T05:05:05Z", "2011-06-06T06:06:06Z");
    /* Only DateUpdated: date_created is now. */
    p.date_created = CS_STR_ABSENT;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_MSG_DATES(&f, v.sid, now, "2011-06-06T06:06:06Z");
    /* Neither: both now. */
    p = tu_mp();
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.date_updated, tu_now);
    CHECK_MSG_DATES(&f, v.sid, now, now);
    tu_close(&f);
}

TEST(decision_date_output_format_utc_seconds) {
    static const int64_t ts[] = {0,          -1,          TU_T0,
                                 951782400,  /* 2000-02-29 */
                                 4102444799, /* 2099-12-31T23:59:59 */
                                 253402300799 /* 9999-12-31T23:59:59 */};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        char got[CS_DATE_BUFSZ], want[CS_DATE_BUFSZ];
        memset(got, 'x', sizeof got);
        cs_format_date(ts[i], got);
        dec_date(ts[i], want);
        CHECK_STR(got, want);
        CHECK_INT(strlen(got), 20);
    }
    char got[CS_DATE_BUFSZ];
    cs_format_date(TU_T0, got);
    CHECK_STR(got, TU_T0_STR);
    /* In a message: whole seconds, Z, even from a fractional input. */
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_message_params p = tu_mp();
    p.date_created = S("2016-03-24T20:37:57.987654Z");
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_INT(v.date_created, TU_T0);
    CHECK_MSG_DATES(&f, v.sid, TU_T0_STR, TU_T0_STR);
    tu_close(&f);
}

TEST(decision_date_input_fraction_and_offset_normalised) {
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"2016-03-24T20:37:57Z", "2016-03-24T20:37:57Z"},
        {"2016-03-24T20:37:57.1Z", "2016-03-24T20:37:57Z"},
        {"2016-03-24T20:37:57.999999999Z", "2016-03-24T20:37:57Z"},
        {"2016-03-24T22:37:57+02:00", "2016-03-24T20:37:57Z"},
        {"2016-03-24T15:07:57-05:30", "2016-03-24T20:37:57Z"},
        {"2016-03-25T00:37:57.500+04:00", "2016-03-24T20:37:57Z"},
        {"2016-03-24T23:37:57-03:00", "2016-03-25T02:37:57Z"},
        {"2016-03-01T01:00:00+02:00", "2016-02-29T23:00:00Z"},
        {"2016-03-24T20:37:57+00:00", "2016-03-24T20:37:57Z"},
    };
    tu_fx f;
    REQUIRE(tu_open(&f));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t t = 0;
        CHECK_OK(cs_parse_date(S(cases[i].in), &t));
        char got[CS_DATE_BUFSZ];
        cs_format_date(t, got);
        CHECK_STR(got, cases[i].out);
        cs_message_params p = tu_mp();
        p.date_created = S(cases[i].in);
        p.date_updated = S(cases[i].in);
        cs_message_view v;
        MUT_OK(f.s, msg_create(&f, &p, &v));
        CHECK_MSG_DATES(&f, v.sid, cases[i].out, cases[i].out);
    }
    tu_close(&f);
}

static const char *const BAD_DATES[] = {
    "yesterday",
    "2016-13-01T00:00:00Z",
    "2016-02-30T00:00:00Z",
    "2015-02-29T00:00:00Z",
    "2016-03-24T24:00:00Z",
    "2016-03-24T20:60:00Z",
    "2016-03-24",
    "2016-03-24T20:37Z",
    "2016-03-24T20:37:57.Z",
    "2016-03-24T20:37:57+2:00",
    "2016-03-24T20:37:57+02:00 ",
    " 2016-03-24T20:37:57Z",
    "2016-03-24T20:37:57ZZ",
    "1458851877",
};

TEST(decision_bad_date_created_50308) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    for (size_t i = 0; i < sizeof BAD_DATES / sizeof BAD_DATES[0]; i++) {
        int64_t t;
        CHECK(cs_parse_date(S(BAD_DATES[i]), &t) != CS_OK);
        cs_message_params p = tu_mp();
        p.date_created = S(BAD_DATES[i]);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_BAD_DATE_CREATED, 400,
                    50308);
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL), CS_E_BAD_DATE_CREATED,
                    400, 50308);
        cs_channel_params cp = tu_cp();
        cp.date_created = S(BAD_DATES[i]);
        MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &cp, NULL),
                    CS_E_BAD_DATE_CREATED, 400, 50308);
    }
    tu_close(&f);
}

TEST(decision_bad_date_updated_50309) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    for (size_t i = 0; i < sizeof BAD_DATES / sizeof BAD_DATES[0]; i++) {
        cs_message_params p = tu_mp();
        p.date_updated = S(BAD_DATES[i]);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_BAD_DATE_UPDATED, 400,
                    50309);
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL), CS_E_BAD_DATE_UPDATED,
                    400, 50309);
        cs_channel_params cp = tu_cp();
        cp.date_updated = S(BAD_DATES[i]);
        MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL),
                    CS_E_BAD_DATE_UPDATED, 400, 50309);
    }
    tu_close(&f);
}

/* ======================================================================== */
/* Messages: last_updated_by, update, delete                                 */
/* ======================================================================== */

TEST(decision_last_updated_by_null_until_set) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_message_params p = tu_mp();
    p.body = S("hi");
    p.from = S("alice");
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK(v.last_updated_by.ptr == NULL);
    char sid[CS_SID_BUFSZ];
    snprintf(sid, sizeof sid, "%s", v.sid);
    char *json = msg_json(&f, sid);
    CHECK(strstr(json, "\"last_updated_by\": null") != NULL);
    free(json);
    /* An update without LastUpdatedBy leaves it null (not From, not
     * "system"). */
    cs_message_params u = tu_mp();
    u.body = S("edited");
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK(v.last_updated_by.ptr == NULL);
    /* Set by update. */
    u.last_updated_by = S("bob");
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK_CSTR(v.last_updated_by, "bob");
    json = msg_json(&f, sid);
    CHECK(strstr(json, "\"last_updated_by\": \"bob\"") != NULL);
    free(json);
    /* A later update without it keeps "bob". */
    u = tu_mp();
    u.attributes = S("{\"x\":1}");
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK_CSTR(v.last_updated_by, "bob");
    /* Set on create. */
    p.last_updated_by = S("carol");
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_CSTR(v.last_updated_by, "carol");
    CHECK_OK(msg_fetch(&f, v.sid, &v));
    CHECK_CSTR(v.last_updated_by, "carol");
    tu_close(&f);
}

TEST(decision_update_no_params_unchanged) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "original", sid));
    char *before = msg_json(&f, sid);
    char *dump_before = tu_dump(&f);
    tu_now = TU_T0 + 3600;
    cs_message_params u = tu_mp();
    cs_message_view v;
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK(!v.was_edited);
    CHECK_INT(v.date_updated, TU_T0);
    CHECK_CSTR(v.body, "original");
    char *dump_mid = tu_dump(&f);
    CHECK_STR(dump_mid, dump_before);
    free(dump_mid);
    /* The webhook header and MediaSid (not an update field) are not
     * parameters either. */
    char me[CS_SID_BUFSZ];
    REQUIRE(tu_media(&f, "x.pdf", me) == CS_OK);
    char *dump_media = tu_dump(&f);
    u.webhook = S("true");
    u.media_sid = S(me);
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK(!v.was_edited);
    CHECK_INT(v.type, CS_MESSAGE_TEXT);
    char *after = msg_json(&f, sid);
    CHECK_STR(after, before);
    char *dump_after = tu_dump(&f);
    CHECK_STR(dump_after, dump_media);
    free(before);
    free(after);
    free(dump_before);
    free(dump_media);
    free(dump_after);
    tu_close(&f);
}

TEST(decision_update_sets_was_edited_and_date_updated_now) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* Each single parameter counts as an update. */
    static const char *const which[] = {"Body", "Attributes", "From",
                                        "LastUpdatedBy", "DateCreated",
                                        "Body (same text)"};
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
        char sid[CS_SID_BUFSZ];
        tu_now = TU_T0;
        CHECK_OK(tu_msg(&f, "orig", sid));
        tu_now = TU_T0 + 60 * (int64_t)(i + 1);
        cs_message_params u = tu_mp();
        switch (i) {
        case 0: u.body = S("new"); break;
        case 1: u.attributes = S("{\"a\":1}"); break;
        case 2: u.from = S("zed"); break;
        case 3: u.last_updated_by = S("zed"); break;
        case 4: u.date_created = S("2000-01-01T00:00:00Z"); break;
        default: u.body = S("orig"); break; /* given, though unchanged */
        }
        cs_message_view v;
        MUT_OK(f.s, msg_update(&f, sid, &u, &v));
        if (!v.was_edited) CHECK_FAIL_("%s: was_edited false", which[i]);
        CHECK_INT(v.date_updated, tu_now);
        CHECK_OK(msg_fetch(&f, sid, &v));
        CHECK(v.was_edited);
        CHECK_INT(v.date_updated, tu_now);
        char *json = msg_json(&f, sid);
        CHECK(strstr(json, "\"was_edited\": true") != NULL);
        free(json);
        if (i == 4) {
            CHECK_INT(v.date_created, 946684800);
        } else {
            CHECK_INT(v.date_created, TU_T0);
        }
    }
    /* A fresh message is not edited. */
    cs_message_params p = tu_mp();
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK(!v.was_edited);
    tu_close(&f);
}

TEST(decision_update_date_updated_param) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "orig", sid));
    tu_now = TU_T0 + 999;
    cs_message_params u = tu_mp();
    u.date_updated = S("2030-01-01T00:00:00+01:00");
    cs_message_view v;
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK(v.was_edited); /* DateUpdated alone is a parameter */
    CHECK_MSG_DATES(&f, sid, TU_T0_STR, "2029-12-31T23:00:00Z");
    /* With a body: still DateUpdated, not now. */
    u.body = S("again");
    u.date_updated = S("2031-01-01T00:00:00Z");
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK_MSG_DATES(&f, sid, TU_T0_STR, "2031-01-01T00:00:00Z");
    /* Without it, now again. */
    u = tu_mp();
    u.body = S("third");
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK_INT(v.date_updated, tu_now);
    tu_close(&f);
}

TEST(decision_update_media_body_50509) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char me[CS_SID_BUFSZ], me2[CS_SID_BUFSZ];
    REQUIRE(tu_media(&f, "a.pdf", me) == CS_OK);
    REQUIRE(tu_media(&f, "b.pdf", me2) == CS_OK);
    cs_message_params p = tu_mp();
    p.media_sid = S(me);
    p.body = S("caption");
    cs_message_view v, w;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    p = tu_mp();
    p.media_sid = S(me2);
    MUT_OK(f.s, msg_create(&f, &p, &w)); /* media without body */
    cs_message_params u = tu_mp();
    u.body = S("changed");
    MUT_FAILS_E(&f, msg_update(&f, v.sid, &u, NULL),
                CS_E_MEDIA_BODY_IMMUTABLE, 400, 50509);
    MUT_FAILS_E(&f, msg_update(&f, w.sid, &u, NULL),
                CS_E_MEDIA_BODY_IMMUTABLE, 400, 50509);
    /* Together with other fields: still refused, nothing applied. */
    u.attributes = S("{\"a\":1}");
    u.last_updated_by = S("eve");
    MUT_FAILS_E(&f, msg_update(&f, v.sid, &u, NULL),
                CS_E_MEDIA_BODY_IMMUTABLE, 400, 50509);
    /* Other fields of a media message may change. */
    u.body = CS_STR_ABSENT;
    cs_message_view x;
    MUT_OK(f.s, msg_update(&f, v.sid, &u, &x));
    CHECK_CSTR(x.attributes, "{\"a\":1}");
    CHECK_CSTR(x.body, "caption");
    CHECK_INT(x.type, CS_MESSAGE_MEDIA);
    /* A text message's body may change. */
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "text", sid));
    u = tu_mp();
    u.body = S("changed");
    MUT_OK(f.s, msg_update(&f, sid, &u, NULL));
    tu_close(&f);
}

TEST(decision_delete_decrements_messages_count) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[3][CS_SID_BUFSZ];
    for (int i = 0; i < 3; i++) CHECK_OK(tu_msg(&f, "m", sid[i]));
    cs_channel_view cv;
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(f.ch), &cv));
    CHECK_INT(cv.messages_count, 3);
    CHECK_STR(cv.last_message_sid, sid[2]);
    MUT_OK(f.s, msg_delete(&f, sid[1]));
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(f.ch), &cv));
    CHECK_INT(cv.messages_count, 2);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK(strstr(tu_render_channel(f.s, &cv, &b), "\"messages_count\": 2") !=
          NULL);
    cs_buf_free(&b);
    /* The deleted message is gone, the others stay. */
    FAILS_E(msg_fetch(&f, sid[1], NULL), E_404);
    CHECK_OK(msg_fetch(&f, sid[0], NULL));
    MUT_FAILS_E(&f, msg_delete(&f, sid[1]), E_404);
    MUT_OK(f.s, msg_delete(&f, sid[2]));
    MUT_OK(f.s, msg_delete(&f, sid[0]));
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(f.ch), &cv));
    CHECK_INT(cv.messages_count, 0);
    CHECK(!cv.has_last_message);
    cs_store_stats st;
    cs_store_stats_get(f.s, &st);
    CHECK_INT(st.messages, 0);
    tu_close(&f);
}

/* ======================================================================== */
/* Reading pages: Order, PageSize, Page                                      */
/* ======================================================================== */

/* Indices of a message page as a string "0,1,2". */
static void page_idx(const cs_store *s, cs_page *pg, char *out, size_t cap) {
    int64_t idx[1100];
    size_t n = tu_page_indices(s, pg, idx, 1100);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && i < 1100 && len + 24 < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%lld", i ? "," : "",
                                (long long)idx[i]);
}

/* Lists and returns the indices ("ERR <name>" on error). */
static const char *list_idx(const tu_fx *f, const char *order,
                            const char *size, const char *token, cs_page *pg,
                            char *out, size_t cap) {
    cs_err e = tu_list(f, order, size, NULL, token, pg);
    if (e != CS_OK) {
        snprintf(out, cap, "ERR %s", cs_err_name(e));
        return out;
    }
    page_idx(f->s, pg, out, cap);
    return out;
}

TEST(decision_order_asc_default_desc) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 5));
    char buf[256];
    cs_page pg;
    CHECK_STR(list_idx(&f, NULL, NULL, NULL, &pg, buf, sizeof buf),
              "0,1,2,3,4");
    CHECK(!pg.descending);
    CHECK_STR(list_idx(&f, "asc", NULL, NULL, &pg, buf, sizeof buf),
              "0,1,2,3,4");
    CHECK_STR(list_idx(&f, "desc", NULL, NULL, &pg, buf, sizeof buf),
              "4,3,2,1,0");
    CHECK(pg.descending);
    /* By index, not by date. */
    cs_message_params p = tu_mp();
    p.date_created = S("1990-01-01T00:00:00Z");
    MUT_OK(f.s, msg_create(&f, &p, NULL));
    CHECK_STR(list_idx(&f, "desc", "3", NULL, &pg, buf, sizeof buf),
              "5,4,3");
    tu_close(&f);
}

TEST(decision_order_invalid_20001) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 2));
    static const char *const bad[] = {"ASC",  "Desc",       "",   "up",
                                      "asc ", "descending", "1", "random"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cs_page pg;
        FAILS_E(tu_list(&f, bad[i], NULL, NULL, NULL, &pg),
                E_20001(CS_E_BAD_ORDER));
    }
    tu_close(&f);
}

TEST(decision_page_size_default_50) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 60));
    cs_page pg;
    CHECK_OK(tu_list(&f, NULL, NULL, NULL, NULL, &pg));
    CHECK_INT(pg.page_size, 50);
    CHECK_INT(pg.count, 50);
    int64_t idx[64];
    CHECK_INT(tu_page_indices(f.s, &pg, idx, 64), 50);
    CHECK_INT(idx[49], 49);
    cs_buf b;
    cs_buf_init(&b, NULL);
    const char *json = tu_render_page(f.s, &pg, &b);
    CHECK(strstr(json, "\"page_size\": 50,") != NULL);
    CHECK(strstr(json, "?PageSize=50&Page=0\"") != NULL);
    /* PageSize=1, the minimum, works. */
    CHECK_OK(tu_list(&f, NULL, "1", NULL, NULL, &pg));
    CHECK_INT(pg.count, 1);
    CHECK_INT(pg.page_size, 1);
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(decision_page_size_clamped_1000) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 1003));
    static const char *const sizes[] = {"1001", "5000",
                                        "99999999999999999999999"};
    cs_buf b;
    cs_buf_init(&b, NULL);
    for (size_t i = 0; i < 3; i++) {
        cs_page pg;
        CHECK_OK(tu_list(&f, NULL, sizes[i], NULL, NULL, &pg));
        CHECK_INT(pg.page_size, 1000);
        CHECK_INT(pg.count, 1000);
        const char *json = tu_render_page(f.s, &pg, &b);
        CHECK(strstr(json, "\"page_size\": 1000,") != NULL);
        CHECK(strstr(json, "PageSize=1000&Page=0") != NULL);
        char bad[64];
        snprintf(bad, sizeof bad, "PageSize=%s", sizes[i]);
        CHECK(strstr(json, bad) == NULL);
    }
    cs_page pg;
    CHECK_OK(tu_list(&f, NULL, "1000", NULL, NULL, &pg));
    CHECK_INT(pg.count, 1000);
    CHECK(pg.next_token[0] != '\0');
    /* Services and channels clamp the same way. */
    cs_page_params q = tu_qp();
    q.page_size = S("5000");
    CHECK_OK(cs_service_list(f.s, &q, &pg));
    CHECK_INT(pg.page_size, 1000);
    CHECK_OK(cs_channel_list(f.s, S(f.svc), &q, &pg));
    CHECK_INT(pg.page_size, 1000);
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(decision_page_size_zero_negative_nonnumeric_20001) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 3));
    static const char *const bad[] = {"0",   "00",  "-1",  "-50", "abc",
                                      "1.5", "",    "12a", " 5",  "5 ",
                                      "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cs_page pg;
        FAILS_E(tu_list(&f, NULL, bad[i], NULL, NULL, &pg),
                E_20001(CS_E_BAD_PAGE_SIZE));
        cs_page_params q = tu_qp();
        q.page_size = S(bad[i]);
        FAILS_E(cs_service_list(f.s, &q, &pg), E_20001(CS_E_BAD_PAGE_SIZE));
        FAILS_E(cs_channel_list(f.s, S(f.svc), &q, &pg),
                E_20001(CS_E_BAD_PAGE_SIZE));
    }
    tu_close(&f);
}

TEST(decision_page_echoed) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 5));
    cs_buf b;
    cs_buf_init(&b, NULL);
    static const char *const pages[] = {"0", "7", "123456789"};
    for (size_t i = 0; i < 3; i++) {
        cs_page pg;
        CHECK_OK(tu_list(&f, NULL, "2", pages[i], NULL, &pg));
        CHECK_INT(pg.page, strtoll(pages[i], NULL, 10));
        const char *json = tu_render_page(f.s, &pg, &b);
        char want[64];
        snprintf(want, sizeof want, "\"meta\": {\"page\": %s, ", pages[i]);
        CHECK(strstr(json, want) != NULL);
        char url[512];
        CHECK_INT(tu_json_url(json, "url", url, sizeof url), 1);
        snprintf(want, sizeof want, "&Page=%s", pages[i]);
        CHECK(strstr(url, want) != NULL);
    }
    /* Absent: 0. Not a non-negative integer: 400 / 20001. */
    cs_page pg;
    CHECK_OK(tu_list(&f, NULL, NULL, NULL, NULL, &pg));
    CHECK_INT(pg.page, 0);
    FAILS_E(tu_list(&f, NULL, NULL, "-1", NULL, &pg), E_20001(CS_E_BAD_PAGE));
    FAILS_E(tu_list(&f, NULL, NULL, "x", NULL, &pg), E_20001(CS_E_BAD_PAGE));
    cs_buf_free(&b);
    tu_close(&f);
}

/* ======================================================================== */
/* Reading pages: tokens and URLs                                            */
/* ======================================================================== */

/* The messages URL of the fixture's general channel, without query. */
static void msgs_path(const tu_fx *f, char *out, size_t cap) {
    snprintf(out, cap, "%s/v2/Services/%s/Channels/%s/Messages", TU_BASE,
             f->svc, f->ch);
}

/* Reads one URL of a page's meta: 1 (copied), 0 (null) or -1 (absent). */
static int meta_url(const cs_store *s, cs_page *pg, const char *key,
                    char *out, size_t cap) {
    cs_buf b;
    cs_buf_init(&b, NULL);
    int r = tu_json_url(tu_render_page(s, pg, &b), key, out, cap);
    cs_buf_free(&b);
    return r;
}

/* Lists the page a URL names, as a client GETs it verbatim. */
static cs_err follow(const tu_fx *f, const char *url, cs_page *pg) {
    tu_query q;
    char path[256];
    if (!tu_parse_url(url, &q)) {
        CHECK_FAIL_("unparsable URL %s", url);
        return CS_E_INVALID_ARGUMENT;
    }
    msgs_path(f, path, sizeof path);
    CHECK_STR(q.path, path);
    cs_page_params p = tu_query_params(&q);
    return cs_message_list(f->s, S(f->svc), S(f->ch), &p, pg);
}

/* Follows the page's next (or previous) URL; false when it is null. */
static bool follow_link(const tu_fx *f, cs_page *pg, const char *key) {
    char url[512];
    int r = meta_url(f->s, pg, key, url, sizeof url);
    if (r < 0) CHECK_FAIL_("%s missing", key);
    if (r <= 0) return false;
    cs_err e = follow(f, url, pg);
    if (e != CS_OK) {
        CHECK_FAIL_("following %s: %s", url, cs_err_name(e));
        return false;
    }
    return true;
}

TEST(decision_page_token_stays_exact_under_inserts_and_deletes) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[10][CS_SID_BUFSZ];
    for (int i = 0; i < 10; i++) CHECK_OK(tu_msg(&f, "m", sid[i]));
    char buf[256], next[CS_TOKEN_BUFSZ];
    cs_page pg;
    CHECK_STR(list_idx(&f, NULL, "3", NULL, &pg, buf, sizeof buf), "0,1,2");
    snprintf(next, sizeof next, "%s", pg.next_token);
    REQUIRE(next[0]);
    /* Deletes on both sides of the boundary and inserts at the end. */
    MUT_OK(f.s, msg_delete(&f, sid[3]));
    MUT_OK(f.s, msg_delete(&f, sid[1]));
    REQUIRE(tu_msgs(&f, 2)); /* indices 10, 11 */
    CHECK_STR(list_idx(&f, NULL, "3", next, &pg, buf, sizeof buf), "4,5,6");
    char next2[CS_TOKEN_BUFSZ];
    snprintf(next2, sizeof next2, "%s", pg.next_token);
    MUT_OK(f.s, msg_delete(&f, sid[4]));
    /* The same token again: the page re-forms from the same position. */
    CHECK_STR(list_idx(&f, NULL, "3", next, &pg, buf, sizeof buf), "5,6,7");
    CHECK_STR(list_idx(&f, NULL, "3", next2, &pg, buf, sizeof buf),
              "7,8,9");
    tu_close(&f);

    /* Descending. */
    REQUIRE(tu_open(&f));
    for (int i = 0; i < 10; i++) CHECK_OK(tu_msg(&f, "m", sid[i]));
    CHECK_STR(list_idx(&f, "desc", "3", NULL, &pg, buf, sizeof buf),
              "9,8,7");
    snprintf(next, sizeof next, "%s", pg.next_token);
    REQUIRE(tu_msgs(&f, 1)); /* index 10 goes before the first page */
    MUT_OK(f.s, msg_delete(&f, sid[6]));
    CHECK_STR(list_idx(&f, "desc", "3", next, &pg, buf, sizeof buf),
              "5,4,3");
    /* All later messages deleted: an empty page, no next. */
    for (int i = 0; i < 6; i++) MUT_OK(f.s, msg_delete(&f, sid[i]));
    CHECK_STR(list_idx(&f, "desc", "3", next, &pg, buf, sizeof buf), "");
    CHECK_INT(pg.count, 0);
    CHECK(pg.next_token[0] == '\0');
    CHECK_INT(meta_url(f.s, &pg, "next_page_url", buf, sizeof buf), 0);
    tu_close(&f);
}

TEST(decision_page_token_previous_exact_under_deletes) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[10][CS_SID_BUFSZ];
    for (int i = 0; i < 10; i++) CHECK_OK(tu_msg(&f, "m", sid[i]));
    char buf[256], prev[CS_TOKEN_BUFSZ];
    cs_page pg;
    CHECK_OK(tu_list(&f, NULL, "3", NULL, NULL, &pg));
    REQUIRE(follow_link(&f, &pg, "next_page_url")); /* 3,4,5 */
    REQUIRE(follow_link(&f, &pg, "next_page_url")); /* 6,7,8 */
    page_idx(f.s, &pg, buf, sizeof buf);
    CHECK_STR(buf, "6,7,8");
    snprintf(prev, sizeof prev, "%s", pg.prev_token);
    REQUIRE(prev[0]);
    /* "The 3 messages immediately before index 6", at read time. */
    MUT_OK(f.s, msg_delete(&f, sid[4]));
    REQUIRE(tu_msgs(&f, 1));
    CHECK_STR(list_idx(&f, NULL, "3", prev, &pg, buf, sizeof buf), "2,3,5");
    tu_close(&f);
}

TEST(decision_page_token_malformed_20001) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 6));
    cs_page pg;
    char tok[CS_TOKEN_BUFSZ], dtok[CS_TOKEN_BUFSZ];
    CHECK_OK(tu_list(&f, NULL, "2", NULL, NULL, &pg));
    snprintf(tok, sizeof tok, "%s", pg.next_token);
    REQUIRE(tok[0]);
    CHECK_OK(tu_list(&f, "desc", "2", NULL, NULL, &pg));
    snprintf(dtok, sizeof dtok, "%s", pg.next_token);
    REQUIRE(dtok[0]);
    /* The genuine tokens work. */
    CHECK_OK(tu_list(&f, NULL, "2", NULL, tok, &pg));
    CHECK_OK(tu_list(&f, "asc", "2", NULL, tok, &pg));
    CHECK_OK(tu_list(&f, "desc", "2", NULL, dtok, &pg));
    size_t n = strlen(tok);
    /* Truncated, extended. */
    char t[CS_TOKEN_BUFSZ + 2];
    for (size_t cut = 0; cut < n; cut++) {
        snprintf(t, sizeof t, "%.*s", (int)cut, tok);
        FAILS_E(tu_list(&f, NULL, "2", NULL, t, &pg),
                E_20001(CS_E_BAD_PAGE_TOKEN));
    }
    snprintf(t, sizeof t, "%sx", tok);
    FAILS_E(tu_list(&f, NULL, "2", NULL, t, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    /* Any one character edited (to another hex digit or letter). */
    for (size_t i = 0; i < n; i++) {
        static const char alt[] = "0123456789abcdefABCDEFPTZ";
        for (const char *a = alt; *a; a++) {
            if (*a == tok[i]) continue;
            snprintf(t, sizeof t, "%s", tok);
            t[i] = *a;
            cs_err e = tu_list(&f, NULL, "2", NULL, t, &pg);
            if (e != CS_E_BAD_PAGE_TOKEN) {
                CHECK_FAIL_("token %s (byte %zu edited) -> %s", t, i,
                            cs_err_name(e));
                i = n;
                break;
            }
        }
    }
    /* Another direction. */
    FAILS_E(tu_list(&f, "desc", "2", NULL, tok, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    FAILS_E(tu_list(&f, NULL, "2", NULL, dtok, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    /* Another channel, also one that reuses the unique name. */
    char other[CS_SID_BUFSZ], otok[CS_TOKEN_BUFSZ];
    MUT_OK(f.s, chan_create(&f, "other", NULL, other));
    for (int i = 0; i < 4; i++) CHECK_OK(tu_msg_in(&f, other, "o", NULL, NULL));
    cs_page_params q = tu_qp();
    q.page_size = S("2");
    CHECK_OK(cs_message_list(f.s, S(f.svc), S(other), &q, &pg));
    snprintf(otok, sizeof otok, "%s", pg.next_token);
    REQUIRE(otok[0]);
    FAILS_E(tu_list(&f, NULL, "2", NULL, otok, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    q.page_token = S(tok);
    FAILS_E(cs_message_list(f.s, S(f.svc), S(other), &q, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S("other"), CS_STR_ABSENT));
    MUT_OK(f.s, chan_create(&f, "other", NULL, other));
    for (int i = 0; i < 4; i++) CHECK_OK(tu_msg_in(&f, other, "o", NULL, NULL));
    q.page_token = S(otok);
    FAILS_E(cs_message_list(f.s, S(f.svc), S("other"), &q, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    /* Another list kind: a channel-list token on messages, and back. */
    cs_page_params cq = tu_qp();
    cq.page_size = S("1");
    CHECK_OK(cs_channel_list(f.s, S(f.svc), &cq, &pg));
    REQUIRE(pg.next_token[0]);
    snprintf(t, sizeof t, "%s", pg.next_token);
    FAILS_E(tu_list(&f, NULL, "2", NULL, t, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    cq.page_token = S(tok);
    FAILS_E(cs_channel_list(f.s, S(f.svc), &cq, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    FAILS_E(cs_service_list(f.s, &cq, &pg), E_20001(CS_E_BAD_PAGE_TOKEN));
    /* A channel-list token of another service. */
    cs_service_view sv2;
    MUT_OK(f.s, cs_service_create(f.s, S("second"), &sv2));
    for (int i = 0; i < 2; i++) {
        cs_channel_params cp2 = tu_cp();
        MUT_OK(f.s, cs_channel_create(f.s, S(sv2.sid), &cp2, NULL));
    }
    cq = tu_qp();
    cq.page_size = S("1");
    CHECK_OK(cs_channel_list(f.s, S(sv2.sid), &cq, &pg));
    REQUIRE(pg.next_token[0]);
    snprintf(t, sizeof t, "%s", pg.next_token);
    cq.page_token = S(t);
    CHECK_OK(cs_channel_list(f.s, S(sv2.sid), &cq, &pg));
    FAILS_E(cs_channel_list(f.s, S(f.svc), &cq, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    /* Another store (another seed) with the same content. */
    tu_fx g;
    REQUIRE(tu_open_seed(&g, TU_SEED + 1));
    REQUIRE(tu_msgs(&g, 6));
    CHECK_OK(tu_list(&g, NULL, "2", NULL, NULL, &pg));
    snprintf(t, sizeof t, "%s", pg.next_token);
    REQUIRE(t[0]);
    CHECK(strcmp(t, tok) != 0);
    q = tu_qp();
    q.page_size = S("2");
    q.page_token = S(t);
    FAILS_E(cs_message_list(f.s, S(f.svc), S("general"), &q, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    q.page_token = S(tok);
    FAILS_E(cs_message_list(g.s, S(g.svc), S("general"), &q, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    tu_close(&g);
    /* Things no store issues. */
    static const char *const junk[] = {"", "PT", "PT2", "PT50", "PA1",
                                       "garbage", "PT\xff"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        FAILS_E(tu_list(&f, NULL, "2", NULL, junk[i], &pg),
                E_20001(CS_E_BAD_PAGE_TOKEN));
    tu_close(&f);
}

TEST(decision_next_page_url_null_when_last_page_exactly_full) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char url[512], buf[64];
    cs_page pg;
    /* Empty channel: no next either way. */
    CHECK_OK(tu_list(&f, NULL, NULL, NULL, NULL, &pg));
    CHECK_INT(pg.count, 0);
    CHECK_INT(meta_url(f.s, &pg, "next_page_url", url, sizeof url), 0);
    REQUIRE(tu_msgs(&f, 4));
    static const char *const orders[] = {NULL, "desc"};
    for (int o = 0; o < 2; o++) {
        /* One exactly full page. */
        CHECK_OK(tu_list(&f, orders[o], "4", NULL, NULL, &pg));
        CHECK_INT(pg.count, 4);
        CHECK(pg.next_token[0] == '\0');
        CHECK_INT(meta_url(f.s, &pg, "next_page_url", url, sizeof url), 0);
        /* Two exactly full pages. */
        CHECK_OK(tu_list(&f, orders[o], "2", NULL, NULL, &pg));
        CHECK_INT(meta_url(f.s, &pg, "next_page_url", url, sizeof url), 1);
        REQUIRE(follow_link(&f, &pg, "next_page_url"));
        page_idx(f.s, &pg, buf, sizeof buf);
        CHECK_STR(buf, o ? "1,0" : "2,3");
        CHECK_INT(meta_url(f.s, &pg, "next_page_url", url, sizeof url), 0);
        /* One more page-size worth: a next exists while one is left. */
        CHECK_OK(tu_list(&f, orders[o], "3", NULL, NULL, &pg));
        CHECK_INT(meta_url(f.s, &pg, "next_page_url", url, sizeof url), 1);
    }
    /* A message added later makes the old last page's position continue. */
    CHECK_OK(tu_list(&f, NULL, "2", NULL, NULL, &pg));
    REQUIRE(follow_link(&f, &pg, "next_page_url"));
    char cur[512];
    CHECK_INT(meta_url(f.s, &pg, "url", cur, sizeof cur), 1);
    REQUIRE(tu_msgs(&f, 1));
    CHECK_OK(follow(&f, cur, &pg));
    CHECK_INT(meta_url(f.s, &pg, "next_page_url", url, sizeof url), 1);
    REQUIRE(follow_link(&f, &pg, "next_page_url"));
    page_idx(f.s, &pg, buf, sizeof buf);
    CHECK_STR(buf, "4");
    tu_close(&f);
}

TEST(decision_previous_page_url_null_on_first_page) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 7));
    char url[512];
    static const char *const orders[] = {NULL, "asc", "desc"};
    for (int o = 0; o < 3; o++) {
        cs_page pg;
        CHECK_OK(tu_list(&f, orders[o], "3", NULL, NULL, &pg));
        CHECK(pg.prev_token[0] == '\0');
        CHECK_INT(meta_url(f.s, &pg, "previous_page_url", url, sizeof url), 0);
        REQUIRE(follow_link(&f, &pg, "next_page_url"));
        CHECK_INT(meta_url(f.s, &pg, "previous_page_url", url, sizeof url), 1);
        /* Back on the first page: null again. */
        REQUIRE(follow_link(&f, &pg, "previous_page_url"));
        CHECK_INT(pg.page, 0);
        CHECK_INT(meta_url(f.s, &pg, "previous_page_url", url, sizeof url), 0);
        /* A request without PageToken is the first page whatever Page the
         * client echoes: nothing lies before it. */
        CHECK_OK(tu_list(&f, orders[o], "3", "2", NULL, &pg));
        CHECK_INT(pg.page, 2);
        CHECK_INT(pg.count, 3);
        CHECK(pg.prev_token[0] == '\0');
        CHECK_INT(meta_url(f.s, &pg, "previous_page_url", url, sizeof url), 0);
    }
    tu_close(&f);
}

TEST(decision_previous_then_next_returns_same_place) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 10));
    static const char *const orders[] = {NULL, "desc"};
    char a[256], b[256], c[256];
    for (int o = 0; o < 2; o++) {
        for (int size = 1; size <= 11; size++) {
            char ps[8];
            snprintf(ps, sizeof ps, "%d", size);
            /* Forward to the end, remembering every page. */
            char pages[12][64];
            int n = 0;
            cs_page pg;
            CHECK_OK(tu_list(&f, orders[o], ps, NULL, NULL, &pg));
            do {
                CHECK_INT(pg.page, n);
                page_idx(f.s, &pg, pages[n], sizeof pages[n]);
                n++;
            } while (n < 12 && follow_link(&f, &pg, "next_page_url"));
            CHECK_INT(n, (10 + size - 1) / size);
            /* Back to the start: the same pages in reverse. */
            for (int i = n - 2; i >= 0; i--) {
                if (!follow_link(&f, &pg, "previous_page_url")) {
                    CHECK_FAIL_("order %d size %d: no previous at %d", o,
                                size, i);
                    break;
                }
                CHECK_INT(pg.page, i);
                page_idx(f.s, &pg, a, sizeof a);
                CHECK_STR(a, pages[i]);
                /* ...and next from there returns to page i+1. */
                cs_page fwd = pg;
                REQUIRE(follow_link(&f, &fwd, "next_page_url"));
                page_idx(f.s, &fwd, b, sizeof b);
                CHECK_STR(b, pages[i + 1]);
                CHECK_INT(fwd.page, i + 1);
            }
            CHECK_INT(meta_url(f.s, &pg, "previous_page_url", c, sizeof c),
                      0);
        }
    }
    tu_close(&f);
}

TEST(decision_page_url_query_order) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 7));
    char path[256], want[640], got[640];
    msgs_path(&f, path, sizeof path);
    static const char *const orders[] = {NULL, "asc", "desc"};
    static const char *const sizes[] = {NULL, "2"};
    for (int o = 0; o < 3; o++) {
        for (int z = 0; z < 2; z++) {
            char pre[32] = "";
            if (orders[o]) snprintf(pre, sizeof pre, "Order=%s&", orders[o]);
            const char *ps = sizes[z] ? sizes[z] : "50";
            cs_page pg;
            CHECK_OK(tu_list(&f, orders[o], sizes[z], NULL, NULL, &pg));
            CHECK_INT(pg.order_given, orders[o] != NULL);
            /* First page: first and url without a token. */
            snprintf(want, sizeof want, "%s?%sPageSize=%s&Page=0", path, pre,
                     ps);
            CHECK_INT(meta_url(f.s, &pg, "first_page_url", got, sizeof got), 1);
            CHECK_STR(got, want);
            CHECK_INT(meta_url(f.s, &pg, "url", got, sizeof got), 1);
            CHECK_STR(got, want);
            if (!sizes[z]) continue; /* 7 messages fit one page of 50 */
            snprintf(want, sizeof want, "%s?%sPageSize=2&Page=1&PageToken=%s",
                     path, pre, pg.next_token);
            CHECK_INT(meta_url(f.s, &pg, "next_page_url", got, sizeof got), 1);
            CHECK_STR(got, want);
            /* Page 1 and page 2. */
            REQUIRE(follow_link(&f, &pg, "next_page_url"));
            REQUIRE(follow_link(&f, &pg, "next_page_url"));
            CHECK_INT(pg.page, 2);
            snprintf(want, sizeof want, "%s?%sPageSize=2&Page=0", path, pre);
            CHECK_INT(meta_url(f.s, &pg, "first_page_url", got, sizeof got), 1);
            CHECK_STR(got, want);
            snprintf(want, sizeof want, "%s?%sPageSize=2&Page=1&PageToken=%s",
                     path, pre, pg.prev_token);
            CHECK_INT(meta_url(f.s, &pg, "previous_page_url", got, sizeof got),
                      1);
            CHECK_STR(got, want);
            snprintf(want, sizeof want, "%s?%sPageSize=2&Page=2&PageToken=%s",
                     path, pre, pg.token);
            CHECK_INT(meta_url(f.s, &pg, "url", got, sizeof got), 1);
            CHECK_STR(got, want);
            snprintf(want, sizeof want, "%s?%sPageSize=2&Page=3&PageToken=%s",
                     path, pre, pg.next_token);
            CHECK_INT(meta_url(f.s, &pg, "next_page_url", got, sizeof got), 1);
            CHECK_STR(got, want);
            /* Parameter names in order. */
            tu_query q;
            REQUIRE(tu_parse_url(got, &q));
            int k = 0;
            if (orders[o]) CHECK_STR(q.names[k++], "Order");
            CHECK_STR(q.names[k++], "PageSize");
            CHECK_STR(q.names[k++], "Page");
            CHECK_STR(q.names[k++], "PageToken");
            CHECK_INT(q.n_names, k);
        }
    }
    tu_close(&f);
}

TEST(decision_meta_key_order) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 3));
    char path[256], first[640], next[640], meta[2048];
    msgs_path(&f, path, sizeof path);
    cs_page pg;
    CHECK_OK(tu_list(&f, NULL, "2", NULL, NULL, &pg));
    snprintf(first, sizeof first, "\"%s?PageSize=2&Page=0\"", path);
    snprintf(next, sizeof next, "\"%s?PageSize=2&Page=1&PageToken=%s\"", path,
             pg.next_token);
    tu_expect_meta(meta, sizeof meta, 0, 2, first, "null", first, next,
                   "messages");
    cs_buf b;
    cs_buf_init(&b, NULL);
    const char *json = tu_render_page(f.s, &pg, &b);
    if (!strstr(json, meta)) CHECK_FAIL_("%s\n  not in %s", meta, json);
    CHECK(strstr(json, "\"messages\": [{\"sid\": ") != NULL);
    /* Services and channels pages use the same meta order and their key. */
    cs_page_params q = tu_qp();
    CHECK_OK(cs_service_list(f.s, &q, &pg));
    json = tu_render_page(f.s, &pg, &b);
    snprintf(first, sizeof first, "\"%s/v2/Services?PageSize=50&Page=0\"",
             TU_BASE);
    tu_expect_meta(meta, sizeof meta, 0, 50, first, "null", first, "null",
                   "services");
    if (!strstr(json, meta)) CHECK_FAIL_("%s\n  not in %s", meta, json);
    CHECK(strncmp(json, "{\"services\": [{", 15) == 0);
    CHECK_OK(cs_channel_list(f.s, S(f.svc), &q, &pg));
    json = tu_render_page(f.s, &pg, &b);
    snprintf(first, sizeof first,
             "\"%s/v2/Services/%s/Channels?PageSize=50&Page=0\"", TU_BASE,
             f.svc);
    tu_expect_meta(meta, sizeof meta, 0, 50, first, "null", first, "null",
                   "channels");
    if (!strstr(json, meta)) CHECK_FAIL_("%s\n  not in %s", meta, json);
    cs_buf_free(&b);
    tu_close(&f);
}

/* A model of the channel for the keyset rule: which indices are alive. */
typedef struct model {
    tu_fx *f;
    int n;      /* indices given so far */
    int cap;
    bool *alive;
    char (*sid)[CS_SID_BUFSZ];
    uint64_t rng;
} model;

static uint32_t model_rand(model *m, uint32_t below) {
    m->rng = m->rng * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (uint32_t)(m->rng >> 33) % below;
}

static void model_insert(model *m) {
    if (m->n >= m->cap) return;
    int64_t idx = -1;
    if (tu_msg_in(m->f, NULL, "m", m->sid[m->n], &idx) != CS_OK) return;
    if (idx != m->n) CHECK_FAIL_("index %lld, expected %d", (long long)idx, m->n);
    m->alive[m->n++] = true;
}

static void model_delete_random(model *m) {
    for (int tries = 0; tries < 20; tries++) {
        int i = (int)model_rand(m, (uint32_t)m->n);
        if (!m->alive[i]) continue;
        MUT_OK(m->f->s, msg_delete(m->f, m->sid[i]));
        m->alive[i] = false;
        return;
    }
}

/* Expected page: up to size alive indices strictly beyond bound in the
 * direction (next kind), or strictly before it against the direction and
 * shown in it (prev kind). Returns the count; *more: one exists past the
 * page's end in the direction. */
static int model_page(const model *m, bool desc, bool prev, int64_t bound,
                      int size, int *out, bool *more) {
    int k = 0;
    int step = (desc != prev) ? -1 : 1; /* scan direction */
    int64_t i = bound + step;
    for (; i >= 0 && i < m->n && k < size; i += step)
        if (m->alive[i]) out[k++] = (int)i;
    if (prev) { /* scanned backwards from the page: reverse */
        for (int a = 0, b = k - 1; a < b; a++, b--) {
            int t = out[a];
            out[a] = out[b];
            out[b] = t;
        }
    }
    *more = false;
    if (k) {
        int last = out[k - 1], dir = desc ? -1 : 1;
        for (int64_t j = last + dir; j >= 0 && j < m->n; j += dir)
            if (m->alive[j]) {
                *more = true;
                break;
            }
    }
    return k;
}

static bool same_page(const tu_fx *f, cs_page *pg, const int *want, int n,
                      const char *what, int size, bool desc) {
    int64_t got[1100];
    size_t c = tu_page_indices(f->s, pg, got, 1100);
    bool ok = (int)c == n;
    for (int i = 0; ok && i < n; i++) ok = got[i] == want[i];
    if (!ok)
        CHECK_FAIL_("%s page (size %d, %s): got %zu items starting %lld, "
                    "expected %d starting %d",
                    what, size, desc ? "desc" : "asc", c,
                    c ? (long long)got[0] : -1LL, n, n ? want[0] : -1);
    return ok;
}

TEST(decision_page_token_exact_against_model) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    model m = {&f, 0, 2600, NULL, NULL, UINT64_C(0x9e3779b97f4a7c15)};
    m.alive = calloc((size_t)m.cap, sizeof *m.alive);
    m.sid = calloc((size_t)m.cap, sizeof *m.sid);
    int *want = malloc(1100 * sizeof *want);
    REQUIRE(m.alive && m.sid && want);
    for (int i = 0; i < 1200; i++) model_insert(&m);
    /* Holes: whole blocks and scattered ones. */
    for (int i = 300; i < 620; i++) {
        MUT_OK(f.s, msg_delete(&f, m.sid[i]));
        m.alive[i] = false;
    }
    for (int i = 0; i < 150; i++) model_delete_random(&m);
    static const int sizes[] = {1, 3, 50, 255, 256, 257, 1000};
    int pages = 0;
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        for (int o = 0; o < 2; o++) {
            bool desc = o == 1;
            int size = sizes[z];
            char ps[16], pn[24], tok[CS_TOKEN_BUFSZ] = "";
            snprintf(ps, sizeof ps, "%d", size);
            int64_t bound = desc ? m.n : -1; /* beyond every index */
            bool failed = false;
            for (int page = 0; !failed; page++) {
                snprintf(pn, sizeof pn, "%d", page);
                cs_page pg;
                cs_err e = tu_list(&f, desc ? "desc" : NULL, ps, pn,
                                   tok[0] ? tok : NULL, &pg);
                if (e != CS_OK) {
                    CHECK_FAIL_("list: %s", cs_err_name(e));
                    break;
                }
                bool more;
                int n = model_page(&m, desc, false, bound, size, want, &more);
                failed = !same_page(&f, &pg, want, n, "next", size, desc);
                pages++;
                if (more != (pg.next_token[0] != '\0')) {
                    CHECK_FAIL_("size %d page %d: next token %s, model %s",
                                size, page, pg.next_token[0] ? "set" : "none",
                                more ? "more" : "none");
                    failed = true;
                }
                /* The previous token: the size messages just before. */
                if (page > 0 && n > 0 && pg.prev_token[0]) {
                    char ptok[CS_TOKEN_BUFSZ];
                    snprintf(ptok, sizeof ptok, "%s", pg.prev_token);
                    cs_page pp;
                    snprintf(pn, sizeof pn, "%d", page - 1);
                    CHECK_OK(tu_list(&f, desc ? "desc" : NULL, ps, pn, ptok,
                                     &pp));
                    int pw[1100];
                    bool pmore;
                    int pn2 = model_page(&m, desc, true, want[0], size, pw,
                                         &pmore);
                    if (!same_page(&f, &pp, pw, pn2, "previous", size, desc))
                        failed = true;
                    if (pmore != (pp.next_token[0] != '\0')) {
                        CHECK_FAIL_("size %d previous of page %d: next token "
                                    "%s, model %s",
                                    size, page, pp.next_token[0] ? "set" : "none",
                                    pmore ? "more" : "none");
                        failed = true;
                    }
                } else if (page > 0 && n > 0) {
                    CHECK_FAIL_("page %d has no previous token", page);
                    failed = true;
                }
                if (!more || !pg.next_token[0]) break;
                snprintf(tok, sizeof tok, "%s", pg.next_token);
                bound = want[n - 1];
                /* Change the channel between the pages. */
                uint32_t r = model_rand(&m, 12);
                if (r < 3) {
                    model_delete_random(&m);
                } else if (r < 6) {
                    model_insert(&m);
                } else if (r == 6) {
                    /* Delete exactly the next expected item. */
                    int nx[1];
                    bool x;
                    if (model_page(&m, desc, false, bound, 1, nx, &x) == 1) {
                        MUT_OK(f.s, msg_delete(&f, m.sid[nx[0]]));
                        m.alive[nx[0]] = false;
                    }
                }
            }
        }
    }
    CHECK(pages > 1500); /* the walks really ran */
    free(want);
    free(m.alive);
    free(m.sid);
    tu_close(&f);
}

/* ======================================================================== */
/* The webhook header and observers                                          */
/* ======================================================================== */

/* Runs create, update and delete of a message and of a channel, each with
 * this header value; returns the first error (CS_OK when all passed). */
static cs_err six_calls(tu_fx *f, const char *wh) {
    cs_err e;
    /* Each call, then the invariant checker, then stop on failure. */
#define SIX_STEP(call)                                                        \
    do {                                                                      \
        e = (call);                                                           \
        CHECK_STORE(f->s);                                                    \
        if (e != CS_OK) return e;                                             \
    } while (0)
    cs_message_params p = tu_mp();
    p.body = S("hello");
    p.webhook = S(wh);
    cs_message_view v;
    SIX_STEP(msg_create(f, &p, &v));
    char sid[CS_SID_BUFSZ];
    snprintf(sid, sizeof sid, "%s", v.sid);
    p.body = S("edited");
    SIX_STEP(msg_update(f, sid, &p, NULL));
    SIX_STEP(cs_message_delete(f->s, S(f->svc), S(f->ch), S(sid), S(wh)));
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("hooked");
    cp.webhook = S(wh);
    SIX_STEP(cs_channel_create(f->s, S(f->svc), &cp, NULL));
    cp.friendly_name = S("Hooked");
    SIX_STEP(cs_channel_update(f->s, S(f->svc), S("hooked"), &cp, NULL));
    SIX_STEP(cs_channel_delete(f->s, S(f->svc), S("hooked"), S(wh)));
#undef SIX_STEP
    return CS_OK;
}

static const cs_event_type SIX_EVENTS[6] = {
    CS_EVENT_MESSAGE_CREATED, CS_EVENT_MESSAGE_UPDATED,
    CS_EVENT_MESSAGE_DELETED, CS_EVENT_CHANNEL_CREATED,
    CS_EVENT_CHANNEL_UPDATED, CS_EVENT_CHANNEL_DELETED};

TEST(decision_webhook_header_true_false_any_case) {
    static const struct {
        const char *v;
        cs_webhook want;
    } cases[] = {
        {"true", CS_WEBHOOK_TRUE},   {"TRUE", CS_WEBHOOK_TRUE},
        {"True", CS_WEBHOOK_TRUE},   {"tRuE", CS_WEBHOOK_TRUE},
        {"false", CS_WEBHOOK_FALSE}, {"FALSE", CS_WEBHOOK_FALSE},
        {"False", CS_WEBHOOK_FALSE}, {"fAlSe", CS_WEBHOOK_FALSE},
        {NULL, CS_WEBHOOK_ABSENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_fx f;
        REQUIRE(tu_open(&f));
        tu_events ev;
        memset(&ev, 0, sizeof ev);
        MUT_OK(f.s, cs_observer_add(f.s, tu_record, &ev, NULL));
        CHECK_OK(six_calls(&f, cases[i].v));
        CHECK_INT(ev.n, 6);
        for (int k = 0; k < ev.n && k < 6; k++) {
            CHECK_INT(ev.type[k], SIX_EVENTS[k]);
            CHECK_INT(ev.wh[k], cases[i].want);
        }
        tu_close(&f);
    }
}

TEST(decision_webhook_header_invalid_20001) {
    static const char *const bad[] = {"",      "yes",   "no",    "1",
                                      "0",     " true", "true ", "t",
                                      "on",    "truee", "fals",  "null",
                                      "\"true\"", "true\0"};
    tu_fx f;
    REQUIRE(tu_open(&f));
    tu_events ev;
    memset(&ev, 0, sizeof ev);
    MUT_OK(f.s, cs_observer_add(f.s, tu_record, &ev, NULL));
    char sid[CS_SID_BUFSZ], other[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    MUT_OK(f.s, chan_create(&f, "other", NULL, other));
    ev.n = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cs_str wh = i == 13 ? bytes("true\0", 5) : S(bad[i]);
        cs_message_params p = tu_mp();
        p.body = S("x");
        p.webhook = wh;
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_HEADER));
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_HEADER));
        p.body = CS_STR_ABSENT; /* the header alone */
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_HEADER));
        MUT_FAILS_E(&f,
                    cs_message_delete(f.s, S(f.svc), S(f.ch), S(sid), wh),
                    E_20001(CS_E_BAD_WEBHOOK_HEADER));
        cs_channel_params cp = tu_cp();
        cp.unique_name = S("new");
        cp.webhook = wh;
        MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &cp, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_HEADER));
        MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(other), &cp, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_HEADER));
        MUT_FAILS_E(&f, cs_channel_delete(f.s, S(f.svc), S(other), wh),
                    E_20001(CS_E_BAD_WEBHOOK_HEADER));
    }
    CHECK_INT(ev.n, 0);
    tu_close(&f);
}

TEST(decision_webhook_reaches_observers) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    tu_events a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    uint64_t id_b;
    MUT_OK(f.s, cs_observer_add(f.s, tu_record, &a, NULL));
    MUT_OK(f.s, cs_observer_add(f.s, tu_record, &b, &id_b));
    MUT_OK(f.s, cs_observer_add(f.s, tu_record, &c, NULL));
    cs_message_params p = tu_mp();
    p.body = S("first");
    p.webhook = S("false");
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    /* Every observer sees the event, with the header value and the
     * resource after the change. */
    tu_events *all[3] = {&a, &b, &c};
    for (int i = 0; i < 3; i++) {
        CHECK_INT(all[i]->n, 1);
        CHECK_INT(all[i]->type[0], CS_EVENT_MESSAGE_CREATED);
        CHECK_INT(all[i]->wh[0], CS_WEBHOOK_FALSE);
        CHECK_STR(all[i]->sid[0], v.sid);
        CHECK_STR(all[i]->body[0], "first");
    }
    MUT_OK(f.s, cs_observer_remove(f.s, id_b));
    cs_message_params u = tu_mp();
    u.body = S("second");
    u.webhook = S("TRUE");
    MUT_OK(f.s, msg_update(&f, v.sid, &u, NULL));
    CHECK_INT(a.n, 2);
    CHECK_INT(b.n, 1); /* removed */
    CHECK_INT(c.n, 2);
    CHECK_INT(a.type[1], CS_EVENT_MESSAGE_UPDATED);
    CHECK_INT(a.wh[1], CS_WEBHOOK_TRUE);
    CHECK_STR(a.body[1], "second");
    /* Delete: the message as it was just before. */
    MUT_OK(f.s, cs_message_delete(f.s, S(f.svc), S(f.ch), S(v.sid), S("true")));
    CHECK_INT(a.n, 3);
    CHECK_INT(a.type[2], CS_EVENT_MESSAGE_DELETED);
    CHECK_INT(a.wh[2], CS_WEBHOOK_TRUE);
    CHECK_STR(a.sid[2], v.sid);
    CHECK_STR(a.body[2], "second");
    /* Channel delete notifies the channel only, not each message. */
    CHECK_OK(tu_msg(&f, "x", NULL));
    CHECK_OK(tu_msg(&f, "y", NULL));
    int before = a.n;
    MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S(f.ch), S("false")));
    CHECK_INT(a.n, before + 1);
    CHECK_INT(a.type[before], CS_EVENT_CHANNEL_DELETED);
    CHECK_INT(a.wh[before], CS_WEBHOOK_FALSE);
    CHECK_STR(a.sid[before], f.ch);
    tu_close(&f);
}

TEST(decision_failed_call_notifies_nobody) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ], me[CS_SID_BUFSZ], msid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    REQUIRE(tu_media(&f, "a.pdf", me) == CS_OK);
    cs_message_params mp = tu_mp();
    mp.media_sid = S(me);
    cs_message_view mv;
    MUT_OK(f.s, msg_create(&f, &mp, &mv));
    snprintf(msid, sizeof msid, "%s", mv.sid);
    tu_events ev;
    memset(&ev, 0, sizeof ev);
    MUT_OK(f.s, cs_observer_add(f.s, tu_record, &ev, NULL));
    const char *missing = "IM0123456789abcdef0123456789abcdef";
    /* Every failing call carries a valid "true" header. */
    cs_message_params p = tu_mp();
    p.webhook = S("true");
    p.body = S("\xff");
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), E_20001(CS_E_BAD_UTF8));
    MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL), E_20001(CS_E_BAD_UTF8));
    p.body = S("ok");
    MUT_FAILS_E(&f, msg_update(&f, missing, &p, NULL), E_404);
    MUT_FAILS_E(&f, msg_update(&f, msid, &p, NULL), CS_E_MEDIA_BODY_IMMUTABLE,
                400, 50509);
    p.media_sid = S(me);
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_MEDIA_IN_USE, 400, 50508);
    p = tu_mp();
    p.webhook = S("true");
    p.attributes = S("{");
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_INVALID, 400,
                50304);
    MUT_FAILS_E(&f,
                cs_message_delete(f.s, S(f.svc), S(f.ch), S(missing),
                                  S("true")),
                E_404);
    MUT_FAILS_E(&f,
                cs_message_delete(f.s, S(f.svc), S(f.ch), S(sid), S("x")),
                E_20001(CS_E_BAD_WEBHOOK_HEADER));
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("general");
    cp.webhook = S("true");
    MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &cp, NULL),
                CS_E_UNIQUE_NAME_EXISTS, 409, 50307);
    cp.unique_name = S("CH0123456789abcdef0123456789abcdef");
    MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL),
                CS_E_UNIQUE_NAME_IS_SID, 400, 50306);
    MUT_FAILS_E(&f, cs_channel_delete(f.s, S(f.svc), S("nope"), S("true")),
                E_404);
    MUT_FAILS_E(&f, cs_channel_delete(f.s, S(f.svc), S(f.ch), S("maybe")),
                E_20001(CS_E_BAD_WEBHOOK_HEADER));
    CHECK_INT(ev.n, 0);
    /* And a successful call still does. */
    CHECK_OK(tu_msg(&f, "now", NULL));
    CHECK_INT(ev.n, 1);
    tu_close(&f);
}

/* ======================================================================== */
/* Errors: missing resources                                                 */
/* ======================================================================== */

TEST(decision_missing_resources_20404) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ], other[CS_SID_BUFSZ], osid[CS_SID_BUFSZ];
    char me[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "here", sid));
    MUT_OK(f.s, chan_create(&f, "other", NULL, other));
    CHECK_OK(tu_msg_in(&f, other, "there", osid, NULL));
    REQUIRE(tu_media(&f, "a.pdf", me) == CS_OK);
    /* A second service with its own channel and message. */
    cs_service_view sv2;
    MUT_OK(f.s, cs_service_create(f.s, S("second"), &sv2));
    char svc2[CS_SID_BUFSZ], ch2[CS_SID_BUFSZ];
    snprintf(svc2, sizeof svc2, "%s", sv2.sid);
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("general");
    cs_channel_view cv2;
    MUT_OK(f.s, cs_channel_create(f.s, S(svc2), &cp, &cv2));
    snprintf(ch2, sizeof ch2, "%s", cv2.sid);
    cs_message_view mv2;
    cs_message_params mp = tu_mp();
    MUT_OK(f.s, cs_message_create(f.s, S(svc2), S(ch2), &mp, &mv2));

    cs_page pg;
    cs_page_params q = tu_qp();
    cs_message_params p = tu_mp();
    p.body = S("x");
    cs_channel_params cu = tu_cp();
    cu.friendly_name = S("x");
    /* Missing services: unknown, malformed, empty, another resource's SID. */
    const char *no_svc[] = {"IS0123456789abcdef0123456789abcdef", "ISxyz", "",
                            f.ch, "svc"};
    for (size_t i = 0; i < sizeof no_svc / sizeof no_svc[0]; i++) {
        cs_str s = S(no_svc[i]);
        FAILS_E(cs_service_fetch(f.s, s, NULL), E_404);
        MUT_FAILS_E(&f, cs_service_update(f.s, s, S("n"), NULL), E_404);
        MUT_FAILS_E(&f, cs_service_delete(f.s, s), E_404);
        MUT_FAILS_E(&f, cs_channel_create(f.s, s, &cu, NULL), E_404);
        FAILS_E(cs_channel_fetch(f.s, s, S(f.ch), NULL), E_404);
        FAILS_E(cs_channel_fetch(f.s, s, S("general"), NULL), E_404);
        MUT_FAILS_E(&f, cs_channel_update(f.s, s, S(f.ch), &cu, NULL), E_404);
        MUT_FAILS_E(&f, cs_channel_delete(f.s, s, S(f.ch), CS_STR_ABSENT),
                    E_404);
        FAILS_E(cs_channel_list(f.s, s, &q, &pg), E_404);
        MUT_FAILS_E(&f, cs_message_create(f.s, s, S(f.ch), &p, NULL), E_404);
        FAILS_E(cs_message_fetch(f.s, s, S(f.ch), S(sid), NULL), E_404);
        MUT_FAILS_E(&f, cs_message_update(f.s, s, S(f.ch), S(sid), &p, NULL),
                    E_404);
        MUT_FAILS_E(&f,
                    cs_message_delete(f.s, s, S(f.ch), S(sid), CS_STR_ABSENT),
                    E_404);
        FAILS_E(cs_message_list(f.s, s, S(f.ch), &q, &pg), E_404);
        MUT_FAILS_E(&f,
                    cs_media_create(f.s, s, S("image/png"), S("a.png"), 1, NULL),
                    E_404);
        FAILS_E(cs_media_fetch(f.s, s, S(me), NULL), E_404);
    }
    /* Missing channels: unknown SID, unknown name, a channel of another
     * service (by SID), empty. */
    const char *no_ch[] = {"CH0123456789abcdef0123456789abcdef", "nope", ch2,
                           "", "General"};
    for (size_t i = 0; i < sizeof no_ch / sizeof no_ch[0]; i++) {
        cs_str c = S(no_ch[i]);
        cs_str sv = S(f.svc);
        FAILS_E(cs_channel_fetch(f.s, sv, c, NULL), E_404);
        MUT_FAILS_E(&f, cs_channel_update(f.s, sv, c, &cu, NULL), E_404);
        MUT_FAILS_E(&f, cs_channel_delete(f.s, sv, c, CS_STR_ABSENT), E_404);
        MUT_FAILS_E(&f, cs_message_create(f.s, sv, c, &p, NULL), E_404);
        FAILS_E(cs_message_fetch(f.s, sv, c, S(sid), NULL), E_404);
        MUT_FAILS_E(&f, cs_message_update(f.s, sv, c, S(sid), &p, NULL),
                    E_404);
        MUT_FAILS_E(&f, cs_message_delete(f.s, sv, c, S(sid), CS_STR_ABSENT),
                    E_404);
        FAILS_E(cs_message_list(f.s, sv, c, &q, &pg), E_404);
    }
    /* Missing messages: unknown, malformed, of another channel, of another
     * service, a channel SID. */
    const char *no_msg[] = {"IM0123456789abcdef0123456789abcdef", "IM12", "",
                            osid, mv2.sid, f.ch};
    for (size_t i = 0; i < sizeof no_msg / sizeof no_msg[0]; i++) {
        char m[CS_SID_BUFSZ];
        snprintf(m, sizeof m, "%s", no_msg[i]);
        FAILS_E(msg_fetch(&f, m, NULL), E_404);
        MUT_FAILS_E(&f, msg_update(&f, m, &p, NULL), E_404);
        MUT_FAILS_E(&f, msg_delete(&f, m), E_404);
    }
    /* ...and the message of "other" is found under its own channel. */
    CHECK_OK(cs_message_fetch(f.s, S(f.svc), S("other"), S(osid), NULL));
    /* A deleted message is missing. */
    MUT_OK(f.s, msg_delete(&f, sid));
    FAILS_E(msg_fetch(&f, sid, NULL), E_404);
    MUT_FAILS_E(&f, msg_delete(&f, sid), E_404);
    /* Unknown media. */
    FAILS_E(cs_media_fetch(f.s, S(f.svc), S("ME0123456789abcdef0123456789abcdef"),
                           NULL),
            E_404);
    FAILS_E(cs_media_fetch(f.s, S(svc2), S(me), NULL), E_404);
    tu_close(&f);
}

/* ======================================================================== */
/* Channels: unique_name, addressing, listing                                */
/* ======================================================================== */

TEST(decision_unique_name_exists_409_50307) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char other[CS_SID_BUFSZ];
    MUT_OK(f.s, chan_create(&f, "other", NULL, other));
    cs_channel_params p = tu_cp();
    p.unique_name = S("general");
    MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &p, NULL),
                CS_E_UNIQUE_NAME_EXISTS, 409, 50307);
    p.type = S("private"); /* private channels share the name space */
    MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &p, NULL),
                CS_E_UNIQUE_NAME_EXISTS, 409, 50307);
    p.type = CS_STR_ABSENT;
    MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(other), &p, NULL),
                CS_E_UNIQUE_NAME_EXISTS, 409, 50307);
    /* A channel may be "renamed" to its own name. */
    cs_channel_view v;
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(f.ch), &p, &v));
    CHECK_CSTR(v.unique_name, "general");
    /* Another service has its own name space. */
    cs_service_view sv;
    MUT_OK(f.s, cs_service_create(f.s, S("second"), &sv));
    MUT_OK(f.s, cs_channel_create(f.s, S(sv.sid), &p, NULL));
    /* A freed name (renamed or deleted) can be taken again. */
    cs_channel_params r = tu_cp();
    r.unique_name = S("main");
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S("general"), &r, NULL));
    MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &p, &v));
    char fresh[CS_SID_BUFSZ];
    snprintf(fresh, sizeof fresh, "%s", v.sid);
    CHECK(strcmp(fresh, f.ch) != 0);
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("general"), &v));
    CHECK_STR(v.sid, fresh);
    MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S("general"), CS_STR_ABSENT));
    MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &p, &v));
    CHECK(strcmp(v.sid, fresh) != 0);
    tu_close(&f);
}

static const char HEX32[] = "0123456789abcdef0123456789abcdef";

TEST(decision_unique_name_looks_like_sid_50306) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char up[CS_SID_BUFSZ], name[CS_SID_BUFSZ];
    snprintf(name, sizeof name, "CH%s", HEX32);
    tu_upper_hex(name, up);
    const char *bad[] = {name, up, "CH00000000000000000000000000000000",
                         "CHABCDEFABCDEFABCDEFABCDEFABCDEFAB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cs_channel_params p = tu_cp();
        p.unique_name = S(bad[i]);
        MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &p, NULL),
                    CS_E_UNIQUE_NAME_IS_SID, 400, 50306);
        MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(f.ch), &p, NULL),
                    CS_E_UNIQUE_NAME_IS_SID, 400, 50306);
    }
    /* Near misses are ordinary names, and address their channel. */
    char n31[48], n33[48], im[48], nonhex[48];
    snprintf(n31, sizeof n31, "CH%.31s", HEX32);
    snprintf(n33, sizeof n33, "CH%s0", HEX32);
    snprintf(im, sizeof im, "IM%s", HEX32);
    snprintf(nonhex, sizeof nonhex, "CH%.31sg", HEX32);
    const char *good[] = {n31, n33, im, nonhex};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cs_channel_params p = tu_cp();
        p.unique_name = S(good[i]);
        cs_channel_view v;
        MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &p, &v));
        char sid[CS_SID_BUFSZ];
        snprintf(sid, sizeof sid, "%s", v.sid);
        CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(good[i]), &v));
        CHECK_STR(v.sid, sid);
    }
    tu_close(&f);
}

TEST(decision_unique_name_byte_exact) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* Names differing only in case, normalisation or trailing space are
     * different names. */
    const char *names[] = {"General", "GENERAL", "general ", "caf\xc3\xa9",
                           "cafe\xcc\x81"};
    char sids[5][CS_SID_BUFSZ];
    for (int i = 0; i < 5; i++)
        MUT_OK(f.s, chan_create(&f, names[i], NULL, sids[i]));
    cs_channel_view v;
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("general"), &v));
    CHECK_STR(v.sid, f.ch);
    for (int i = 0; i < 5; i++) {
        CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(names[i]), &v));
        CHECK_STR(v.sid, sids[i]);
        CHECK_CSTR(v.unique_name, names[i]);
    }
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S("gEneral"), NULL), E_404);
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S(" general"), NULL), E_404);
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S("caf\xc3\xa9 "), NULL), E_404);
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), bytes("general\0", 8), NULL),
            E_404);
    tu_close(&f);
}

TEST(decision_channel_by_sid_or_unique_name) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_channel_view v;
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("general"), &v));
    CHECK_STR(v.sid, f.ch);
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(f.ch), &v));
    CHECK_CSTR(v.unique_name, "general");
    /* Every message operation by unique name. */
    cs_message_params p = tu_mp();
    p.body = S("by name");
    cs_message_view m;
    MUT_OK(f.s, cs_message_create(f.s, S(f.svc), S("general"), &p, &m));
    CHECK_STR(m.channel_sid, f.ch);
    char sid[CS_SID_BUFSZ];
    snprintf(sid, sizeof sid, "%s", m.sid);
    CHECK_OK(cs_message_fetch(f.s, S(f.svc), S("general"), S(sid), &m));
    CHECK_OK(cs_message_fetch(f.s, S(f.svc), S(f.ch), S(sid), &m));
    p.body = S("edited by name");
    MUT_OK(f.s, cs_message_update(f.s, S(f.svc), S("general"), S(sid), &p,
                                  &m));
    CHECK_CSTR(m.body, "edited by name");
    cs_page pg;
    cs_page_params q = tu_qp();
    CHECK_OK(cs_message_list(f.s, S(f.svc), S("general"), &q, &pg));
    CHECK_INT(pg.count, 1);
    MUT_OK(f.s, cs_message_delete(f.s, S(f.svc), S("general"), S(sid),
                                  CS_STR_ABSENT));
    /* Channel update by name; after a rename the old name is gone. */
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("lobby");
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S("general"), &cp, &v));
    CHECK_STR(v.sid, f.ch);
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S("general"), NULL), E_404);
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("lobby"), &v));
    CHECK_STR(v.sid, f.ch);
    /* Clearing the unique name (empty) leaves the SID as the only way. */
    cp.unique_name = S("");
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S("lobby"), &cp, &v));
    CHECK(v.unique_name.ptr == NULL);
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S("lobby"), NULL), E_404);
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(f.ch), NULL));
    /* Delete by name. */
    char other[CS_SID_BUFSZ];
    MUT_OK(f.s, chan_create(&f, "bye", NULL, other));
    MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S("bye"), CS_STR_ABSENT));
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S(other), NULL), E_404);
    tu_close(&f);
}

TEST(decision_channel_update_names_and_attributes) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* Create with nothing: public, no names, "{}", created by "system". */
    cs_channel_params p = tu_cp();
    cs_channel_view v;
    MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &p, &v));
    char sid[CS_SID_BUFSZ];
    snprintf(sid, sizeof sid, "%s", v.sid);
    CHECK(tu_is_sid(sid, "CH"));
    CHECK_INT(v.type, CS_CHANNEL_PUBLIC);
    CHECK(v.friendly_name.ptr == NULL);
    CHECK(v.unique_name.ptr == NULL);
    CHECK_CSTR(v.attributes, "{}");
    CHECK_CSTR(v.created_by, "system");
    CHECK_INT(v.messages_count, 0);
    CHECK_INT(v.date_created, TU_T0);
    CHECK_INT(v.date_updated, TU_T0);
    /* Update names and attributes (verbatim); date_updated becomes now. */
    tu_now = TU_T0 + 30;
    p.friendly_name = S("Caf\xc3\xa9 talk");
    p.unique_name = S("cafe");
    p.attributes = S("{ \"topic\" : \"coffee\" }");
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(sid), &p, &v));
    CHECK_CSTR(v.friendly_name, "Caf\xc3\xa9 talk");
    CHECK_CSTR(v.unique_name, "cafe");
    CHECK_CSTR(v.attributes, "{ \"topic\" : \"coffee\" }");
    CHECK_INT(v.date_updated, TU_T0 + 30);
    CHECK_INT(v.date_created, TU_T0);
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("cafe"), &v));
    CHECK_STR(v.sid, sid);
    CHECK_CSTR(v.attributes, "{ \"topic\" : \"coffee\" }");
    cs_buf b;
    cs_buf_init(&b, NULL);
    const char *json = tu_render_channel(f.s, &v, &b);
    CHECK(strstr(json, "\"attributes\": \"{ \\\"topic\\\" : \\\"coffee\\\" }\"") !=
          NULL);
    CHECK(strstr(json, "\"friendly_name\": \"Caf\xc3\xa9 talk\", "
                       "\"unique_name\": \"cafe\"") != NULL);
    cs_buf_free(&b);
    /* Type is fixed at creation. */
    p = tu_cp();
    p.type = S("private");
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(sid), &p, &v));
    CHECK_INT(v.type, CS_CHANNEL_PUBLIC);
    tu_close(&f);
}

/* SIDs of one channel page, joined by ','. */
static void chan_page_sids(const cs_store *s, cs_page *pg, char *out,
                           size_t cap) {
    cs_channel_view v;
    size_t len = 0;
    out[0] = '\0';
    cs_page_rewind(pg);
    while (cs_page_next_channel(s, pg, &v) && len + 40 < cap)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "",
                                v.sid);
}

/* Lists the fixture's channels with these Type values. */
static cs_err chan_list(const tu_fx *f, const char *const *types, size_t n,
                        const char *size, cs_page *pg) {
    cs_str t[4];
    for (size_t i = 0; i < n && i < 4; i++) t[i] = S(types[i]);
    cs_page_params q = tu_qp();
    q.types = t;
    q.n_types = n;
    q.page_size = S(size);
    return cs_channel_list(f->s, S(f->svc), &q, pg);
}

TEST(decision_channel_list_public_only_without_type) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char a[CS_SID_BUFSZ], b[CS_SID_BUFSZ], c[CS_SID_BUFSZ];
    MUT_OK(f.s, chan_create(&f, "secret", "private", a));
    MUT_OK(f.s, chan_create(&f, "open", "public", b));
    MUT_OK(f.s, chan_create(&f, "hidden", "private", c));
    cs_page pg;
    char got[512], want[512];
    CHECK_OK(chan_list(&f, NULL, 0, NULL, &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    snprintf(want, sizeof want, "%s,%s", f.ch, b);
    CHECK_STR(got, want);
    /* Private channels are still reachable directly. */
    cs_channel_view v;
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("secret"), &v));
    CHECK_INT(v.type, CS_CHANNEL_PRIVATE);
    tu_close(&f);
}

TEST(decision_channel_type_repeat) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char a[CS_SID_BUFSZ], b[CS_SID_BUFSZ], c[CS_SID_BUFSZ];
    MUT_OK(f.s, chan_create(&f, "secret", "private", a));
    MUT_OK(f.s, chan_create(&f, "open", "public", b));
    MUT_OK(f.s, chan_create(&f, "hidden", "private", c));
    cs_page pg;
    char got[512], want[512];
    static const char *const both[] = {"public", "private"};
    static const char *const both_r[] = {"private", "public"};
    static const char *const priv2[] = {"private", "private"};
    static const char *const pub[] = {"public"};
    snprintf(want, sizeof want, "%s,%s,%s,%s", f.ch, a, b, c);
    CHECK_OK(chan_list(&f, both, 2, NULL, &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    CHECK_STR(got, want);
    CHECK_OK(chan_list(&f, both_r, 2, NULL, &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    CHECK_STR(got, want);
    snprintf(want, sizeof want, "%s,%s", a, c);
    CHECK_OK(chan_list(&f, priv2, 2, NULL, &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    CHECK_STR(got, want);
    CHECK_OK(chan_list(&f, priv2, 1, NULL, &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    CHECK_STR(got, want);
    snprintf(want, sizeof want, "%s,%s", f.ch, b);
    CHECK_OK(chan_list(&f, pub, 1, NULL, &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    CHECK_STR(got, want);
    /* The filter survives paging: the next URL carries it. */
    CHECK_OK(chan_list(&f, priv2, 1, "1", &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    CHECK_STR(got, a);
    char url[512];
    cs_buf bb;
    cs_buf_init(&bb, NULL);
    CHECK_INT(tu_json_url(tu_render_page(f.s, &pg, &bb), "next_page_url", url,
                          sizeof url),
              1);
    CHECK(strstr(url, "Type=private") != NULL);
    CHECK(strstr(url, "Type=public") == NULL);
    cs_buf_free(&bb);
    cs_page_params q = tu_qp();
    cs_str t1 = S("private");
    q.types = &t1;
    q.n_types = 1;
    q.page_size = S("1");
    char tok[CS_TOKEN_BUFSZ];
    snprintf(tok, sizeof tok, "%s", pg.next_token);
    q.page_token = S(tok);
    CHECK_OK(cs_channel_list(f.s, S(f.svc), &q, &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    CHECK_STR(got, c);
    /* Anything else: 400 / 20001, on list and on create. */
    static const char *const bad[] = {"Private", "PUBLIC", "secret", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *two[2] = {"public", bad[i]};
        FAILS_E(chan_list(&f, two, 2, NULL, &pg),
                E_20001(CS_E_BAD_CHANNEL_TYPE));
        cs_channel_params p = tu_cp();
        p.type = S(bad[i]);
        MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &p, NULL),
                    E_20001(CS_E_BAD_CHANNEL_TYPE));
    }
    tu_close(&f);
}

TEST(decision_lists_in_creation_order) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* Services: the fixture's, then six more; SIDs are random, so creation
     * order is not SID order. */
    char svcs[7][CS_SID_BUFSZ];
    snprintf(svcs[0], CS_SID_BUFSZ, "%s", f.svc);
    for (int i = 1; i < 7; i++) {
        char name[16];
        snprintf(name, sizeof name, "svc%d", i);
        cs_service_view sv;
        MUT_OK(f.s, cs_service_create(f.s, S(name), &sv));
        snprintf(svcs[i], CS_SID_BUFSZ, "%s", sv.sid);
    }
    MUT_OK(f.s, cs_service_delete(f.s, S(svcs[3])));
    char got[1024] = "", want[1024] = "";
    size_t wl = 0;
    for (int i = 0; i < 7; i++)
        if (i != 3)
            wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s%s",
                                   wl ? "," : "", svcs[i]);
    /* Walked in pages of 2 through the tokens. */
    cs_page_params q = tu_qp();
    q.page_size = S("2");
    char tok[CS_TOKEN_BUFSZ] = "";
    size_t gl = 0;
    for (int guard = 0; guard < 10; guard++) {
        cs_page pg;
        q.page_token = tok[0] ? S(tok) : CS_STR_ABSENT;
        CHECK_OK(cs_service_list(f.s, &q, &pg));
        cs_service_view sv;
        while (cs_page_next_service(f.s, &pg, &sv))
            gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s%s",
                                   gl ? "," : "", sv.sid);
        if (!pg.next_token[0]) break;
        snprintf(tok, sizeof tok, "%s", pg.next_token);
    }
    CHECK_STR(got, want);
    /* Channels of a service, public and private mixed. */
    char chs[6][CS_SID_BUFSZ];
    snprintf(chs[0], CS_SID_BUFSZ, "%s", f.ch);
    for (int i = 1; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        MUT_OK(f.s, chan_create(&f, name, i % 2 ? "private" : "public",
                                chs[i]));
    }
    MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S(chs[2]), CS_STR_ABSENT));
    wl = 0;
    for (int i = 0; i < 6; i++)
        if (i != 2)
            wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s%s",
                                   wl ? "," : "", chs[i]);
    static const char *const both[] = {"public", "private"};
    cs_page pg;
    CHECK_OK(chan_list(&f, both, 2, NULL, &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    CHECK_STR(got, want);
    tu_close(&f);
}

/* ======================================================================== */
/* Limits                                                                    */
/* ======================================================================== */

TEST(decision_limits_names_256_code_points) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* 2-, 3- and 4-byte code points and ASCII: counted in code points. */
    static const char *const units[] = {"\xc3\xa9", "\xe2\x82\xac",
                                        "\xf0\x9f\x98\x80", "a"};
    for (int u = 0; u < 4; u++) {
        char *ok = tu_repeat(NULL, units[u], 256, NULL);
        char *over = tu_repeat(NULL, units[u], 257, NULL);
        /* Service friendly_name. */
        cs_service_view sv;
        MUT_OK(f.s, cs_service_create(f.s, S(ok), &sv));
        CHECK_CSTR(sv.friendly_name, ok);
        MUT_FAILS_E(&f, cs_service_create(f.s, S(over), NULL),
                    CS_E_FRIENDLY_NAME_TOO_LONG, 400, 50003);
        MUT_FAILS_E(&f, cs_service_update(f.s, S(f.svc), S(over), NULL),
                    CS_E_FRIENDLY_NAME_TOO_LONG, 400, 50003);
        MUT_OK(f.s, cs_service_update(f.s, S(f.svc), S(ok), NULL));
        /* Channel friendly_name and unique_name. */
        cs_channel_params p = tu_cp();
        p.friendly_name = S(ok);
        p.unique_name = S(ok);
        cs_channel_view cv;
        MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &p, &cv));
        CHECK_CSTR(cv.unique_name, ok);
        char ch[CS_SID_BUFSZ];
        snprintf(ch, sizeof ch, "%s", cv.sid);
        p.unique_name = CS_STR_ABSENT;
        p.friendly_name = S(over);
        MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &p, NULL),
                    CS_E_FRIENDLY_NAME_TOO_LONG, 400, 50003);
        MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(ch), &p, NULL),
                    CS_E_FRIENDLY_NAME_TOO_LONG, 400, 50003);
        p.friendly_name = CS_STR_ABSENT;
        p.unique_name = S(over);
        MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &p, NULL),
                    CS_E_UNIQUE_NAME_TOO_LONG, 400, 50004);
        MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(ch), &p, NULL),
                    CS_E_UNIQUE_NAME_TOO_LONG, 400, 50004);
        free(ok);
        free(over);
    }
    /* Invalid UTF-8 in a name is not a length question: 400 / 20001. */
    MUT_FAILS_E(&f, cs_service_create(f.s, S("bad\xff"), NULL),
                E_20001(CS_E_BAD_UTF8));
    cs_channel_params p = tu_cp();
    p.unique_name = S("bad\xc0\xaf");
    MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &p, NULL),
                E_20001(CS_E_BAD_UTF8));
    tu_close(&f);
}

TEST(decision_limits_identity_256) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    static const char *const units[] = {"\xc3\xbc", "\xf0\x9f\x98\x80", "z"};
    for (int u = 0; u < 3; u++) {
        char *ok = tu_repeat(NULL, units[u], 256, NULL);
        char *over = tu_repeat(NULL, units[u], 257, NULL);
        cs_message_params p = tu_mp();
        cs_message_view v;
        /* From: 50310. */
        p.from = S(ok);
        MUT_OK(f.s, msg_create(&f, &p, &v));
        CHECK_CSTR(v.from, ok);
        MUT_OK(f.s, msg_update(&f, sid, &p, NULL));
        p.from = S(over);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_FROM_TOO_LONG, 400,
                    50310);
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL), CS_E_FROM_TOO_LONG,
                    400, 50310);
        /* LastUpdatedBy: 50505. */
        p = tu_mp();
        p.last_updated_by = S(ok);
        MUT_OK(f.s, msg_create(&f, &p, &v));
        CHECK_CSTR(v.last_updated_by, ok);
        MUT_OK(f.s, msg_update(&f, sid, &p, NULL));
        p.last_updated_by = S(over);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL),
                    CS_E_LAST_UPDATED_BY_TOO_LONG, 400, 50505);
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL),
                    CS_E_LAST_UPDATED_BY_TOO_LONG, 400, 50505);
        /* CreatedBy: 50207. */
        cs_channel_params cp = tu_cp();
        cp.created_by = S(ok);
        cs_channel_view cv;
        MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &cp, &cv));
        CHECK_CSTR(cv.created_by, ok);
        MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL));
        cp.created_by = S(over);
        MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &cp, NULL),
                    CS_E_IDENTITY_TOO_LONG, 400, 50207);
        MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL),
                    CS_E_IDENTITY_TOO_LONG, 400, 50207);
        free(ok);
        free(over);
    }
    tu_close(&f);
}

TEST(decision_limits_attributes_16384) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "keep", sid));
    /* A JSON string of exactly 16384 bytes, and one byte more; the second
     * pair counts multibyte text in bytes (5461 x 3 + 2 + 1 = 16386). */
    char *ok = tu_repeat("\"", "a", 16382, "\"");
    char *over = tu_repeat("\"", "a", 16383, "\"");
    char *ok_mb = tu_repeat("\"", "\xe2\x82\xac", 5460, "ab\"");
    char *over_mb = tu_repeat("\"", "\xe2\x82\xac", 5461, "a\"");
    CHECK_INT(strlen(ok), 16384);
    CHECK_INT(strlen(ok_mb), 16384);
    CHECK_INT(strlen(over_mb), 16386);
    const char *oks[2] = {ok, ok_mb}, *overs[2] = {over, over_mb};
    for (int i = 0; i < 2; i++) {
        cs_message_params p = tu_mp();
        p.attributes = S(oks[i]);
        cs_message_view v;
        MUT_OK(f.s, msg_create(&f, &p, &v));
        CHECK_INT(v.attributes.len, 16384);
        MUT_OK(f.s, msg_update(&f, sid, &p, NULL));
        cs_channel_params cp = tu_cp();
        cp.attributes = S(oks[i]);
        cs_channel_view cv;
        MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &cp, &cv));
        CHECK_INT(cv.attributes.len, 16384);
        MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL));
        p.attributes = S(overs[i]);
        cp.attributes = S(overs[i]);
        MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_TOO_LONG,
                    400, 50303);
        MUT_FAILS_E(&f, msg_update(&f, sid, &p, NULL),
                    CS_E_ATTRIBUTES_TOO_LONG, 400, 50303);
        MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &cp, NULL),
                    CS_E_ATTRIBUTES_TOO_LONG, 400, 50303);
        MUT_FAILS_E(&f, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL),
                    CS_E_ATTRIBUTES_TOO_LONG, 400, 50303);
    }
    free(ok);
    free(over);
    free(ok_mb);
    free(over_mb);
    tu_close(&f);
}

TEST(decision_limits_configurable) {
    /* The defaults are the figures of DECISIONS.md. */
    tu_fx d;
    REQUIRE(tu_open(&d));
    const cs_limits *dl = cs_store_limits(d.s);
    CHECK_INT(dl->body_bytes, 32768);
    CHECK_INT(dl->attributes_bytes, 16384);
    CHECK_INT(dl->name_chars, 256);
    CHECK_INT(dl->identity_chars, 256);
    CHECK_INT(dl->page_size_max, 1000);
    /* Per store, at creation. */
    cs_options o = tu_options(TU_SEED);
    o.limits.body_bytes = 10;
    o.limits.attributes_bytes = 8;
    o.limits.name_chars = 7; /* the fixture's channel is "General" */
    o.limits.identity_chars = 3;
    o.limits.page_size_max = 4;
    tu_fx f;
    REQUIRE(tu_open_opts(&f, &o));
    cs_message_params p = tu_mp();
    p.body = S("0123456789");
    p.attributes = S("[1,2,33]");
    p.from = S("\xc3\xa9\xc3\xa9\xc3\xa9");
    MUT_OK(f.s, msg_create(&f, &p, NULL));
    p.body = S("0123456789a");
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_BODY_TOO_LONG, 400, 50504);
    p.body = S("x");
    p.attributes = S("[1,2,333]");
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_TOO_LONG, 400,
                50303);
    p.attributes = CS_STR_ABSENT;
    p.from = S("abcd");
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_FROM_TOO_LONG, 400, 50310);
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("abcdefg");
    MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &cp, NULL));
    cp.unique_name = S("abcdefgh");
    MUT_FAILS_E(&f, cs_channel_create(f.s, S(f.svc), &cp, NULL),
                CS_E_UNIQUE_NAME_TOO_LONG, 400, 50004);
    REQUIRE(tu_msgs(&f, 6));
    cs_page pg;
    CHECK_OK(tu_list(&f, NULL, "10", NULL, NULL, &pg));
    CHECK_INT(pg.page_size, 4);
    CHECK_INT(pg.count, 4);
    /* The default store is not affected. */
    p = tu_mp();
    p.body = S("0123456789a");
    MUT_OK(d.s, cs_message_create(d.s, S(d.svc), S(d.ch), &p, NULL));
    /* At run time. */
    cs_limits lim = *cs_store_limits(f.s);
    CHECK_INT(lim.body_bytes, 10);
    lim.body_bytes = 11;
    lim.name_chars = 8;
    MUT_OK(f.s, cs_store_set_limits(f.s, &lim));
    CHECK_INT(cs_store_limits(f.s)->body_bytes, 11);
    MUT_OK(f.s, msg_create(&f, &p, NULL));
    MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &cp, NULL));
    /* A zero limit is refused and changes nothing. */
    cs_limits zero = lim;
    zero.identity_chars = 0;
    MUT_FAILS_E(&f, cs_store_set_limits(f.s, &zero), E_20001(CS_E_INVALID_ARGUMENT));
    CHECK_INT(cs_store_limits(f.s)->identity_chars, 3);
    cs_store *bad = NULL;
    o.limits.body_bytes = 0;
    FAILS_E(cs_store_new(&o, &bad), E_20001(CS_E_INVALID_ARGUMENT));
    CHECK(bad == NULL);
    tu_close(&f);
    tu_close(&d);
}

/* ======================================================================== */
/* Identifiers                                                               */
/* ======================================================================== */

TEST(decision_sid_case_insensitive_input_lowercase_output) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char me[CS_SID_BUFSZ], sid[CS_SID_BUFSZ];
    REQUIRE(tu_media(&f, "a.pdf", me) == CS_OK);
    CHECK_OK(tu_msg(&f, "hello", sid));
    /* Every generated SID: prefix + 32 lower-case hex digits. */
    CHECK(tu_is_sid(f.svc, "IS"));
    CHECK(tu_is_sid(f.ch, "CH"));
    CHECK(tu_is_sid(sid, "IM"));
    CHECK(tu_is_sid(me, "ME"));
    CHECK(tu_is_sid(cs_store_account_sid(f.s), "AC"));
    cs_service_view sv;
    CHECK_OK(cs_service_fetch(f.s, S(f.svc), &sv));
    CHECK(tu_is_sid(sv.default_service_role_sid, "RL"));
    CHECK(tu_is_sid(sv.default_channel_role_sid, "RL"));
    CHECK(tu_is_sid(sv.default_channel_creator_role_sid, "RL"));
    char usvc[CS_SID_BUFSZ], uch[CS_SID_BUFSZ], ume[CS_SID_BUFSZ],
        usid[CS_SID_BUFSZ], mixed[CS_SID_BUFSZ];
    tu_upper_hex(f.svc, usvc);
    tu_upper_hex(f.ch, uch);
    tu_upper_hex(me, ume);
    tu_upper_hex(sid, usid);
    snprintf(mixed, sizeof mixed, "%s", sid);
    for (int i = 2; i < 34; i += 2)
        if (mixed[i] >= 'a' && mixed[i] <= 'f') mixed[i] = (char)(mixed[i] - 32);
    REQUIRE(strcmp(usvc, f.svc) != 0 && strcmp(usid, sid) != 0);
    /* Input in upper or mixed case finds the object; output is lower. */
    CHECK_OK(cs_service_fetch(f.s, S(usvc), &sv));
    CHECK_STR(sv.sid, f.svc);
    cs_channel_view cv;
    CHECK_OK(cs_channel_fetch(f.s, S(usvc), S(uch), &cv));
    CHECK_STR(cv.sid, f.ch);
    CHECK_STR(cv.service_sid, f.svc);
    cs_message_view v;
    CHECK_OK(cs_message_fetch(f.s, S(usvc), S(uch), S(usid), &v));
    CHECK_STR(v.sid, sid);
    CHECK_STR(v.channel_sid, f.ch);
    CHECK_OK(cs_message_fetch(f.s, S(f.svc), S(f.ch), S(mixed), &v));
    CHECK_STR(v.sid, sid);
    cs_media_view mv;
    CHECK_OK(cs_media_fetch(f.s, S(usvc), S(ume), &mv));
    CHECK_STR(mv.sid, me);
    /* A media SID in upper case attaches the same media. */
    cs_message_params p = tu_mp();
    p.media_sid = S(ume);
    MUT_OK(f.s, cs_message_create(f.s, S(usvc), S(uch), &p, &v));
    CHECK_STR(v.media.sid, me);
    char *json = msg_json(&f, v.sid);
    CHECK(strstr(json, ume) == NULL && strstr(json, usvc) == NULL &&
          strstr(json, uch) == NULL);
    CHECK(strstr(json, me) != NULL);
    free(json);
    p.media_sid = S(me);
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), CS_E_MEDIA_IN_USE, 400, 50508);
    /* Update, list and delete by upper case too; page URLs are lower. */
    cs_message_params u = tu_mp();
    u.body = S("edited");
    MUT_OK(f.s, cs_message_update(f.s, S(usvc), S(uch), S(usid), &u, &v));
    CHECK_STR(v.sid, sid);
    cs_page pg;
    cs_page_params q = tu_qp();
    CHECK_OK(cs_message_list(f.s, S(usvc), S(uch), &q, &pg));
    cs_buf b;
    cs_buf_init(&b, NULL);
    const char *page = tu_render_page(f.s, &pg, &b);
    CHECK(strstr(page, usvc) == NULL && strstr(page, uch) == NULL);
    CHECK(strstr(page, f.ch) != NULL);
    cs_buf_free(&b);
    MUT_OK(f.s, cs_message_delete(f.s, S(usvc), S(uch), S(usid),
                                  CS_STR_ABSENT));
    FAILS_E(msg_fetch(&f, sid, NULL), E_404);
    tu_close(&f);
}

/* The SIDs produced by the same sequence of calls. */
typedef struct sid_set {
    char ac[CS_SID_BUFSZ], is[CS_SID_BUFSZ], ch[CS_SID_BUFSZ];
    char im[3][CS_SID_BUFSZ], me[CS_SID_BUFSZ], ch2[CS_SID_BUFSZ];
} sid_set;

static void make_sids(tu_fx *f, sid_set *out) {
    snprintf(out->ac, CS_SID_BUFSZ, "%s", cs_store_account_sid(f->s));
    snprintf(out->is, CS_SID_BUFSZ, "%s", f->svc);
    snprintf(out->ch, CS_SID_BUFSZ, "%s", f->ch);
    for (int i = 0; i < 3; i++) CHECK_OK(tu_msg(f, "m", out->im[i]));
    CHECK_OK(tu_media(f, "x.pdf", out->me));
    MUT_OK(f->s, chan_create(f, "second", NULL, out->ch2));
}

static int hex_matches(const char *a, const char *b) {
    int n = 0;
    for (int i = 2; i < 34; i++) n += a[i] == b[i];
    return n;
}

/* A random hook that counts its calls and fills with a fixed pattern. */
typedef struct rnd_ctx {
    int calls;
    unsigned char fill;
    bool fail;
} rnd_ctx;

static int counting_random(void *ctx, void *buf, size_t len) {
    rnd_ctx *r = ctx;
    r->calls++;
    if (r->fail) return -1;
    memset(buf, r->fill, len);
    return 0;
}

TEST(decision_sids_unpredictable_and_seed_reproducible) {
    tu_fx a, b, c;
    sid_set sa, sb, sc;
    REQUIRE(tu_open_seed(&a, 42));
    REQUIRE(tu_open_seed(&b, 42));
    REQUIRE(tu_open_seed(&c, 43));
    make_sids(&a, &sa);
    make_sids(&b, &sb);
    make_sids(&c, &sc);
    /* Same seed, same calls: same SIDs, byte for byte. */
    CHECK(memcmp(&sa, &sb, sizeof sa) == 0);
    char *da = tu_dump(&a), *db = tu_dump(&b);
    CHECK_STR(da, db);
    free(da);
    free(db);
    /* Another seed: every SID differs. */
    const char *la[8] = {sa.ac, sa.is, sa.ch, sa.im[0], sa.im[1], sa.im[2],
                         sa.me, sa.ch2};
    const char *lc[8] = {sc.ac, sc.is, sc.ch, sc.im[0], sc.im[1], sc.im[2],
                         sc.me, sc.ch2};
    for (int i = 0; i < 8; i++) {
        CHECK(strcmp(la[i], lc[i]) != 0);
        CHECK(hex_matches(la[i], lc[i]) < 16);
    }
    /* Unpredictable: consecutive SIDs look unrelated (no counter shows). */
    for (int i = 0; i < 7; i++)
        for (int j = i + 1; j < 8; j++)
            if (hex_matches(la[i], la[j]) >= 16)
                CHECK_FAIL_("%s and %s share %d hex digits", la[i], la[j],
                            hex_matches(la[i], la[j]));
    tu_close(&a);
    tu_close(&b);
    tu_close(&c);
    /* Unseeded stores draw from the OS: two of them differ. */
    cs_options o = tu_options(0);
    o.use_seed = false;
    REQUIRE(tu_open_opts(&a, &o));
    REQUIRE(tu_open_opts(&b, &o));
    CHECK(strcmp(a.svc, b.svc) != 0);
    CHECK(strcmp(a.ch, b.ch) != 0);
    CHECK(strcmp(cs_store_account_sid(a.s), cs_store_account_sid(b.s)) != 0);
    tu_close(&a);
    tu_close(&b);
    /* The random source is read once per store, not per SID; the same
     * bytes give the same SIDs, and a failing source fails the store. */
    rnd_ctx r1 = {0, 0x5a, false}, r2 = {0, 0x5a, false};
    o.random = counting_random;
    o.random_ctx = &r1;
    REQUIRE(tu_open_opts(&a, &o));
    o.random_ctx = &r2;
    REQUIRE(tu_open_opts(&b, &o));
    make_sids(&a, &sa);
    make_sids(&b, &sb);
    CHECK_INT(r1.calls, 1);
    CHECK_INT(r2.calls, 1);
    CHECK(memcmp(&sa, &sb, sizeof sa) == 0);
    tu_close(&a);
    tu_close(&b);
    rnd_ctx bad = {0, 0, true};
    o.random_ctx = &bad;
    cs_store *st = NULL;
    FAILS_E(cs_store_new(&o, &st), E_20001(CS_E_INVALID_ARGUMENT));
    CHECK(st == NULL);
}

/* The SIDs one session makes: a service (with its three role SIDs), a
 * channel, a media item and two messages, and the store's tag. */
typedef struct tag_sids {
    char ac[CS_SID_BUFSZ], is[CS_SID_BUFSZ], rl[3][CS_SID_BUFSZ];
    char ch[CS_SID_BUFSZ], me[CS_SID_BUFSZ], im[2][CS_SID_BUFSZ];
    int tag;
} tag_sids;

static bool tag_session(const cs_options *o, tag_sids *t) {
    tu_fx f;
    memset(t, 0, sizeof *t);
    if (!tu_open_opts(&f, o)) return false;
    t->tag = cs_store_sid_tag(f.s);
    snprintf(t->ac, CS_SID_BUFSZ, "%s", cs_store_account_sid(f.s));
    snprintf(t->is, CS_SID_BUFSZ, "%s", f.svc);
    snprintf(t->ch, CS_SID_BUFSZ, "%s", f.ch);
    cs_service_view sv;
    CHECK_OK(cs_service_fetch(f.s, S(f.svc), &sv));
    snprintf(t->rl[0], CS_SID_BUFSZ, "%s", sv.default_service_role_sid);
    snprintf(t->rl[1], CS_SID_BUFSZ, "%s", sv.default_channel_role_sid);
    snprintf(t->rl[2], CS_SID_BUFSZ, "%s",
             sv.default_channel_creator_role_sid);
    bool ok = tu_media(&f, "x.pdf", t->me) == CS_OK &&
              tu_msg(&f, "a", t->im[0]) == CS_OK &&
              tu_msg(&f, "b", t->im[1]) == CS_OK;
    tu_close(&f);
    return ok;
}

static cs_options tagged_options(uint64_t seed, uint8_t tag) {
    cs_options o = tu_options(seed);
    o.use_sid_tag = true;
    o.sid_tag = tag;
    return o;
}

TEST(decision_sid_tag_in_service_channel_role_media_sids) {
    cs_options uo = tu_options(TU_SEED);
    tag_sids u, t, t2, other;
    REQUIRE(tag_session(&uo, &u));
    CHECK_INT(u.tag, -1);
    /* The tag's byte alone does not turn the tag on. */
    uo.sid_tag = 0xab;
    REQUIRE(tag_session(&uo, &t));
    CHECK(memcmp(&t, &u, sizeof t) == 0);
    static const unsigned tags[] = {0, 1, 0xab, 255};
    for (size_t k = 0; k < sizeof tags / sizeof tags[0]; k++) {
        cs_options o = tagged_options(TU_SEED, (uint8_t)tags[k]);
        REQUIRE(tag_session(&o, &t));
        CHECK_INT(t.tag, tags[k]);
        /* Same seed, same tag: the same SIDs. */
        REQUIRE(tag_session(&o, &t2));
        CHECK(memcmp(&t, &t2, sizeof t) == 0);
        char hex[3];
        snprintf(hex, sizeof hex, "%02x", tags[k]);
        const char *got[6] = {t.is, t.rl[0], t.rl[1], t.rl[2], t.ch, t.me};
        const char *plain[6] = {u.is, u.rl[0], u.rl[1], u.rl[2], u.ch, u.me};
        const char *pre[6] = {"IS", "RL", "RL", "RL", "CH", "ME"};
        for (int i = 0; i < 6; i++) {
            CHECK(tu_is_sid(got[i], pre[i]));
            /* digits 1-2 are the tag in lower case; the other 30 are the
             * untagged store's */
            if (strncmp(got[i] + 2, hex, 2) != 0)
                CHECK_FAIL_("%s does not carry the tag %s", got[i], hex);
            CHECK_STR(got[i] + 4, plain[i] + 4);
        }
        /* Account and message SIDs carry no tag: the untagged store's. */
        CHECK_STR(t.ac, u.ac);
        CHECK_STR(t.im[0], u.im[0]);
        CHECK_STR(t.im[1], u.im[1]);
        /* Another seed with the same tag: the other digits differ. */
        cs_options oo = tagged_options(TU_SEED + 1, (uint8_t)tags[k]);
        REQUIRE(tag_session(&oo, &other));
        CHECK(strncmp(other.is + 2, hex, 2) == 0);
        CHECK(strcmp(other.is + 4, t.is + 4) != 0);
        CHECK(strcmp(other.ch + 4, t.ch + 4) != 0);
    }
}

/* Options of version 2 (0.3.x: no use_sid_tag, sid_tag) still work and
 * make untagged SIDs; any other version but the current one is refused. */
TEST(decision_options_version_2_accepted_without_tag) {
    cs_options uo = tu_options(TU_SEED);
    tag_sids u, t;
    REQUIRE(tag_session(&uo, &u));
    /* The tag fields set, but version 2 says they are not there. */
    cs_options o = tagged_options(TU_SEED, 0xab);
    o.version = 2;
    REQUIRE(tag_session(&o, &t));
    CHECK(memcmp(&t, &u, sizeof t) == 0);
    CHECK_INT(t.tag, -1);
    /* A version 2 struct ends where version 3's new fields start: a heap
     * block of exactly that size, so a build with ASan catches any read
     * past it (store creation and snapshot loading alike). */
    size_t v2 = offsetof(cs_options, use_sid_tag);
    unsigned char *blk = malloc(v2);
    REQUIRE(blk);
    memcpy(blk, &o, v2);
    const cs_options *p2 = (const cs_options *)(void *)blk;
    cs_store *s = NULL, *l = NULL;
    CHECK_OK(cs_store_new(p2, &s));
    REQUIRE(s);
    CHECK_INT(cs_store_sid_tag(s), -1);
    cs_service_view sv;
    CHECK_OK(cs_service_create(s, S("svc"), &sv));
    CHECK_STR(sv.sid, u.is);
    tu_mem m = {0};
    CHECK_OK(cs_snapshot_save(s, tu_mem_write, &m));
    CHECK_OK(cs_snapshot_load(p2, tu_mem_read, &m, &l, NULL));
    REQUIRE(l);
    CHECK_INT(cs_store_sid_tag(l), -1);
    cs_channel_view a, b;
    CHECK_OK(cs_channel_create(s, S(sv.sid), NULL, &a));
    CHECK_OK(cs_channel_create(l, S(sv.sid), NULL, &b));
    CHECK_STR(b.sid, a.sid);
    cs_store_free(l);
    /* The current version takes the tag, in loading too. */
    cs_options o3 = tagged_options(TU_SEED, 0xab);
    m.pos = 0;
    CHECK_OK(cs_snapshot_load(&o3, tu_mem_read, &m, &l, NULL));
    REQUIRE(l);
    CHECK_INT(cs_store_sid_tag(l), 0xab);
    cs_store_free(l);
    /* Versions 0, 1 and 4: INVALID_ARGUMENT, no store, from both calls. */
    static const unsigned bad[] = {0, 1, CS_OPTIONS_VERSION + 1};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        o3.version = bad[k];
        cs_store *n = s;
        FAILS_E(cs_store_new(&o3, &n), E_20001(CS_E_INVALID_ARGUMENT));
        CHECK(n == NULL);
        n = s;
        m.pos = 0;
        FAILS_E(cs_snapshot_load(&o3, tu_mem_read, &m, &n, NULL),
                E_20001(CS_E_INVALID_ARGUMENT));
        CHECK(n == NULL);
        memcpy(blk, &o3, sizeof o3.version);
        n = s;
        FAILS_E(cs_store_new((const cs_options *)(void *)blk, &n),
                E_20001(CS_E_INVALID_ARGUMENT));
        CHECK(n == NULL);
    }
    tu_mem_free(&m);
    cs_store_free(s);
    free(blk);
}

static int cmp_sid(const void *a, const void *b) {
    return strcmp(a, b);
}

TEST(decision_sids_never_collide) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    enum { N = 3000 };
    char(*sids)[CS_SID_BUFSZ] = malloc(N * sizeof *sids);
    REQUIRE(sids != NULL);
    char other[CS_SID_BUFSZ];
    MUT_OK(f.s, chan_create(&f, "other", NULL, other));
    for (int i = 0; i < N; i++) {
        cs_message_params p = tu_mp();
        cs_message_view v;
        cs_err e = cs_message_create(f.s, S(f.svc), S(i % 2 ? other : f.ch),
                                     &p, &v);
        CHECK_STORE(f.s);
        if (e != CS_OK) {
            CHECK_FAIL_("create %d: %s", i, cs_err_name(e));
            break;
        }
        snprintf(sids[i], CS_SID_BUFSZ, "%s", v.sid);
    }
    qsort(sids, N, sizeof *sids, cmp_sid);
    for (int i = 1; i < N; i++)
        if (strcmp(sids[i - 1], sids[i]) == 0)
            CHECK_FAIL_("duplicate SID %s", sids[i]);
    free(sids);
    tu_close(&f);
}

/* ======================================================================== */
/* JSON shape and URLs                                                       */
/* ======================================================================== */

TEST(decision_message_json_field_order) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_buf b;
    cs_buf_init(&b, NULL);
    cs_message_params p = tu_mp();
    p.body = S("Hello \"world\"\n");
    p.from = S("alice");
    p.attributes = S("{\"k\": 1}");
    cs_message_view v;
    MUT_OK(f.s, cs_message_create(f.s, S(f.svc), S("general"), &p, &v));
    tu_msg_exp x = {v.sid, cs_store_account_sid(f.s), f.svc, f.ch,
                    "\"{\\\"k\\\": 1}\"", TU_T0_STR, TU_T0_STR, "null", false,
                    "\"alice\"", "\"Hello \\\"world\\\"\\n\"", 0, NULL, NULL};
    char *want = tu_expect_msg(&x);
    CHECK_STR(tu_render_msg(f.s, &v, &b), want);
    free(want);
    /* After an edit. */
    tu_now = TU_T0 + 61;
    cs_message_params u = tu_mp();
    u.last_updated_by = S("bob");
    MUT_OK(f.s, msg_update(&f, v.sid, &u, &v));
    x.date_updated = "2016-03-24T20:38:58Z";
    x.last_updated_by = "\"bob\"";
    x.was_edited = true;
    want = tu_expect_msg(&x);
    CHECK_STR(tu_render_msg(f.s, &v, &b), want);
    free(want);
    /* A media message, second in the channel. */
    char me[CS_SID_BUFSZ];
    REQUIRE(tu_media_in(&f, f.svc, "image/png", "cat.png", 4096, me) == CS_OK);
    p = tu_mp();
    p.media_sid = S(me);
    MUT_OK(f.s, msg_create(&f, &p, &v));
    char media[256];
    snprintf(media, sizeof media,
             "{\"sid\": \"%s\", \"size\": 4096, \"content_type\": "
             "\"image/png\", \"filename\": \"cat.png\"}",
             me);
    tu_msg_exp y = {v.sid, cs_store_account_sid(f.s), f.svc, f.ch, "\"{}\"",
                    "2016-03-24T20:38:58Z", "2016-03-24T20:38:58Z", "null",
                    false, "\"system\"", "\"\"", 1, media, NULL};
    want = tu_expect_msg(&y);
    CHECK_STR(tu_render_msg(f.s, &v, &b), want);
    /* The same object inside a page. */
    cs_page pg;
    CHECK_OK(tu_list(&f, "desc", "1", NULL, NULL, &pg));
    const char *page = tu_render_page(f.s, &pg, &b);
    if (!strstr(page, want)) CHECK_FAIL_("%s\n  not in %s", want, page);
    free(want);
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(decision_media_json_object_order) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    static const struct {
        const char *ct, *fn;
        uint64_t size;
        const char *json;
    } cases[] = {
        {"image/jpeg", "photo.jpg", 123456,
         "\"size\": 123456, \"content_type\": \"image/jpeg\", \"filename\": "
         "\"photo.jpg\"}"},
        {"application/pdf", NULL, 0,
         "\"size\": 0, \"content_type\": \"application/pdf\", \"filename\": "
         "null}"},
        {"text/plain; charset=utf-8", "say \"hi\".txt", 7,
         "\"size\": 7, \"content_type\": \"text/plain; charset=utf-8\", "
         "\"filename\": \"say \\\"hi\\\".txt\"}"},
    };
    cs_buf b;
    cs_buf_init(&b, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char me[CS_SID_BUFSZ];
        REQUIRE(tu_media_in(&f, f.svc, cases[i].ct, cases[i].fn, cases[i].size,
                            me) == CS_OK);
        cs_message_params p = tu_mp();
        p.media_sid = S(me);
        cs_message_view v;
        MUT_OK(f.s, msg_create(&f, &p, &v));
        char want[512];
        snprintf(want, sizeof want, "\"media\": {\"sid\": \"%s\", %s, \"url\"",
                 me, cases[i].json);
        const char *json = tu_render_msg(f.s, &v, &b);
        if (!strstr(json, want)) CHECK_FAIL_("%s\n  not in %s", want, json);
        CHECK_INT(v.media.size, cases[i].size);
        CHECK_CSTR(v.media.content_type, cases[i].ct);
        if (cases[i].fn)
            CHECK_CSTR(v.media.filename, cases[i].fn);
        else
            CHECK(v.media.filename.ptr == NULL);
    }
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(decision_urls_use_sids_never_unique_names) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_buf b;
    cs_buf_init(&b, NULL);
    /* Everything addressed by the unique name "general". */
    cs_message_params p = tu_mp();
    p.body = S("hi");
    cs_message_view v;
    MUT_OK(f.s, cs_message_create(f.s, S(f.svc), S("general"), &p, &v));
    CHECK_STR(v.channel_sid, f.ch);
    MUT_OK(f.s, cs_message_create(f.s, S(f.svc), S("general"), &p, NULL));
    char url[512];
    snprintf(url, sizeof url,
             "\"url\": \"%s/v2/Services/%s/Channels/%s/Messages/%s\"", TU_BASE,
             f.svc, f.ch, v.sid);
    const char *json = tu_render_msg(f.s, &v, &b);
    CHECK(strstr(json, url) != NULL);
    CHECK(strstr(json, "general") == NULL);
    char to[128];
    snprintf(to, sizeof to, "\"to\": \"%s\", \"channel_sid\": \"%s\"", f.ch,
             f.ch);
    CHECK(strstr(json, to) != NULL);
    cs_channel_view cv;
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("general"), &cv));
    json = tu_render_channel(f.s, &cv, &b);
    char chan_url[256];
    snprintf(chan_url, sizeof chan_url, "%s/v2/Services/%s/Channels/%s",
             TU_BASE, f.svc, f.ch);
    CHECK(strstr(json, chan_url) != NULL);
    CHECK(strstr(json, "/general") == NULL);
    cs_page pg;
    cs_page_params q = tu_qp();
    q.page_size = S("1");
    CHECK_OK(cs_message_list(f.s, S(f.svc), S("general"), &q, &pg));
    json = tu_render_page(f.s, &pg, &b);
    CHECK(strstr(json, "/general") == NULL);
    char path[256];
    msgs_path(&f, path, sizeof path);
    CHECK(strstr(json, path) != NULL);
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(decision_urls_use_configured_base) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_STR(cs_store_base_url(f.s), "https://chat.twilio.com");
    tu_close(&f);
    cs_options o = tu_options(TU_SEED);
    o.base_url = "http://localhost:8080";
    REQUIRE(tu_open_opts(&f, &o));
    CHECK_STR(cs_store_base_url(f.s), "http://localhost:8080");
    char sid[CS_SID_BUFSZ];
    CHECK_OK(tu_msg(&f, "hi", sid));
    cs_message_view v;
    CHECK_OK(msg_fetch(&f, sid, &v));
    tu_msg_exp x = {sid, cs_store_account_sid(f.s), f.svc, f.ch, "\"{}\"",
                    TU_T0_STR, TU_T0_STR, "null", false, "\"system\"",
                    "\"hi\"", 0, NULL, "http://localhost:8080"};
    char *want = tu_expect_msg(&x);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK_STR(tu_render_msg(f.s, &v, &b), want);
    free(want);
    cs_page pg;
    CHECK_OK(tu_list(&f, NULL, NULL, NULL, NULL, &pg));
    const char *json = tu_render_page(f.s, &pg, &b);
    CHECK(strstr(json, "chat.twilio.com") == NULL);
    char first[256];
    snprintf(first, sizeof first,
             "\"first_page_url\": \"http://localhost:8080/v2/Services/%s/"
             "Channels/%s/Messages?PageSize=50&Page=0\"",
             f.svc, f.ch);
    CHECK(strstr(json, first) != NULL);
    /* Services and channels too. */
    cs_service_view sv;
    CHECK_OK(cs_service_fetch(f.s, S(f.svc), &sv));
    cs_buf_reset(&b);
    CHECK_OK(cs_render_service(f.s, &sv, &b));
    char svc_url[128];
    snprintf(svc_url, sizeof svc_url,
             "\"url\": \"http://localhost:8080/v2/Services/%s\"", f.svc);
    CHECK(strstr(b.data, svc_url) != NULL);
    CHECK(strstr(b.data, "chat.twilio.com") == NULL);
    cs_channel_view cv;
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(f.ch), &cv));
    json = tu_render_channel(f.s, &cv, &b);
    CHECK(strstr(json, "chat.twilio.com") == NULL);
    CHECK(strstr(json, "\"url\": \"http://localhost:8080/v2/Services/") !=
          NULL);
    cs_buf_free(&b);
    tu_close(&f);
}

/* ======================================================================== */
/* Errors: failed calls change nothing                                       */
/* ======================================================================== */

/* A store with a bit of everything: two services, public and private
 * channels, text, media and edited messages, free and attached media.
 * Returns the SIDs the failing calls below aim at. */
typedef struct rich {
    char svc2[CS_SID_BUFSZ], priv[CS_SID_BUFSZ];
    char text[CS_SID_BUFSZ], media_msg[CS_SID_BUFSZ];
    char me_used[CS_SID_BUFSZ], me_free[CS_SID_BUFSZ];
} rich;

static bool rich_setup(tu_fx *f, rich *r) {
    cs_service_view sv;
    MUT_OK(f->s, cs_service_create(f->s, S("second"), &sv));
    snprintf(r->svc2, sizeof r->svc2, "%s", sv.sid);
    MUT_OK(f->s, chan_create(f, "priv", "private", r->priv));
    if (tu_msg(f, "text", r->text) != CS_OK) return false;
    cs_message_params u = tu_mp();
    u.body = S("text, edited");
    u.last_updated_by = S("ed");
    MUT_OK(f->s, msg_update(f, r->text, &u, NULL));
    if (tu_msg_in(f, r->priv, "in private", NULL, NULL) != CS_OK) return false;
    if (tu_media(f, "used.pdf", r->me_used) != CS_OK) return false;
    if (tu_media(f, "free.pdf", r->me_free) != CS_OK) return false;
    cs_message_params p = tu_mp();
    p.media_sid = S(r->me_used);
    p.body = S("caption");
    cs_message_view v;
    cs_err e = msg_create(f, &p, &v);
    CHECK_STORE(f->s);
    if (e != CS_OK) return false;
    snprintf(r->media_msg, sizeof r->media_msg, "%s", v.sid);
    return true;
}

TEST(decision_every_failed_call_leaves_store_unchanged) {
    tu_fx f, twin;
    rich r, rt;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_open(&twin));
    REQUIRE(rich_setup(&f, &r));
    REQUIRE(rich_setup(&twin, &rt));
    tu_events ev;
    memset(&ev, 0, sizeof ev);
    MUT_OK(f.s, cs_observer_add(f.s, tu_record, &ev, NULL));
    char *long_name = tu_repeat(NULL, "n", 257, NULL);
    char *long_body = tu_repeat(NULL, "b", 32769, NULL);
    char *long_attr = tu_repeat("\"", "a", 16383, "\"");
    const char *missing_svc = "IS0123456789abcdef0123456789abcdef";
    const char *missing_msg = "IM0123456789abcdef0123456789abcdef";
    const char *missing_me = "ME0123456789abcdef0123456789abcdef";
    cs_str sv = S(f.svc), ch = S(f.ch);

    /* Services. */
    MUT_FAILS_E(&f, cs_service_create(f.s, CS_STR_ABSENT, NULL),
                E_20001(CS_E_FRIENDLY_NAME_MISSING));
    MUT_FAILS_E(&f, cs_service_create(f.s, S(""), NULL),
                E_20001(CS_E_FRIENDLY_NAME_MISSING));
    MUT_FAILS_E(&f, cs_service_create(f.s, S(long_name), NULL),
                CS_E_FRIENDLY_NAME_TOO_LONG, 400, 50003);
    MUT_FAILS_E(&f, cs_service_create(f.s, S("\xff"), NULL),
                E_20001(CS_E_BAD_UTF8));
    MUT_FAILS_E(&f, cs_service_update(f.s, S(missing_svc), S("x"), NULL),
                E_404);
    MUT_FAILS_E(&f, cs_service_update(f.s, sv, S(""), NULL),
                E_20001(CS_E_FRIENDLY_NAME_MISSING));
    MUT_FAILS_E(&f, cs_service_update(f.s, sv, S(long_name), NULL),
                CS_E_FRIENDLY_NAME_TOO_LONG, 400, 50003);
    MUT_FAILS_E(&f, cs_service_delete(f.s, S(missing_svc)), E_404);

    /* Channels: create. */
    cs_channel_params cp = tu_cp();
    cp.friendly_name = S("ok");
    cp.unique_name = S("fresh");
    cs_channel_params c;
#define CH_CASE(field, value, ...)                                            \
    do {                                                                      \
        c = cp;                                                               \
        c.field = value;                                                      \
        MUT_FAILS_E(&f, cs_channel_create(f.s, sv, &c, NULL), __VA_ARGS__);   \
        MUT_FAILS_E(&f, cs_channel_update(f.s, sv, S(r.priv), &c, NULL),      \
                    __VA_ARGS__);                                             \
    } while (0)
    CH_CASE(webhook, S("yes"), E_20001(CS_E_BAD_WEBHOOK_HEADER));
    CH_CASE(friendly_name, S(long_name), CS_E_FRIENDLY_NAME_TOO_LONG, 400,
            50003);
    CH_CASE(friendly_name, S("\xc3"), E_20001(CS_E_BAD_UTF8));
    CH_CASE(unique_name, S(long_name), CS_E_UNIQUE_NAME_TOO_LONG, 400, 50004);
    CH_CASE(unique_name, S("CH0123456789abcdef0123456789abcdef"),
            CS_E_UNIQUE_NAME_IS_SID, 400, 50306);
    CH_CASE(unique_name, S("general"), CS_E_UNIQUE_NAME_EXISTS, 409, 50307);
    CH_CASE(attributes, S("{"), CS_E_ATTRIBUTES_INVALID, 400, 50304);
    CH_CASE(attributes, S(long_attr), CS_E_ATTRIBUTES_TOO_LONG, 400, 50303);
    CH_CASE(created_by, S(long_name), CS_E_IDENTITY_TOO_LONG, 400, 50207);
    CH_CASE(date_created, S("never"), CS_E_BAD_DATE_CREATED, 400, 50308);
    CH_CASE(date_updated, S("never"), CS_E_BAD_DATE_UPDATED, 400, 50309);
#undef CH_CASE
    c = cp;
    c.type = S("secret");
    MUT_FAILS_E(&f, cs_channel_create(f.s, sv, &c, NULL),
                E_20001(CS_E_BAD_CHANNEL_TYPE));
    MUT_FAILS_E(&f, cs_channel_create(f.s, S(missing_svc), &cp, NULL), E_404);
    MUT_FAILS_E(&f, cs_channel_update(f.s, sv, S("nope"), &cp, NULL), E_404);
    MUT_FAILS_E(&f, cs_channel_delete(f.s, sv, S("nope"), CS_STR_ABSENT),
                E_404);
    MUT_FAILS_E(&f, cs_channel_delete(f.s, sv, S(r.priv), S("no")),
                E_20001(CS_E_BAD_WEBHOOK_HEADER));

    /* Media. */
    MUT_FAILS_E(&f,
                cs_media_create(f.s, S(missing_svc), S("image/png"), S("a"),
                                1, NULL),
                E_404);
    MUT_FAILS_E(&f, cs_media_create(f.s, sv, S("png"), S("a"), 1, NULL),
                CS_E_BAD_MEDIA_CONTENT_TYPE, 400, 50511);
    MUT_FAILS_E(&f, cs_media_create(f.s, sv, S(""), S("a"), 1, NULL),
                CS_E_BAD_MEDIA_CONTENT_TYPE, 400, 50511);
    MUT_FAILS_E(&f,
                cs_media_create(f.s, sv, S("image/png"), S("a"),
                                UINT64_C(157286401), NULL),
                CS_E_MEDIA_TOO_LARGE, 400, 50512);
    MUT_FAILS_E(&f, cs_media_create(f.s, sv, S("image/png"), S("\xff"), 1,
                                    NULL),
                E_20001(CS_E_BAD_UTF8));

    /* Messages: create and update with each bad parameter, next to good
     * ones (nothing may be applied half-way). */
    cs_message_params mp = tu_mp();
    mp.body = S("good body");
    mp.from = S("good");
    mp.attributes = S("{\"good\":true}");
    mp.last_updated_by = S("good");
    cs_message_params m;
#define MSG_CASE(field, value, ...)                                           \
    do {                                                                      \
        m = mp;                                                               \
        m.field = value;                                                      \
        MUT_FAILS_E(&f, msg_create(&f, &m, NULL), __VA_ARGS__);               \
        MUT_FAILS_E(&f, msg_update(&f, r.text, &m, NULL), __VA_ARGS__);       \
    } while (0)
    MSG_CASE(webhook, S("nope"), E_20001(CS_E_BAD_WEBHOOK_HEADER));
    MSG_CASE(body, S(long_body), CS_E_BODY_TOO_LONG, 400, 50504);
    MSG_CASE(body, S("\xed\xa0\x80"), E_20001(CS_E_BAD_UTF8));
    MSG_CASE(attributes, S("{\"a\":}"), CS_E_ATTRIBUTES_INVALID, 400, 50304);
    MSG_CASE(attributes, S(""), CS_E_ATTRIBUTES_INVALID, 400, 50304);
    MSG_CASE(attributes, S(long_attr), CS_E_ATTRIBUTES_TOO_LONG, 400, 50303);
    MSG_CASE(from, S(long_name), CS_E_FROM_TOO_LONG, 400, 50310);
    MSG_CASE(last_updated_by, S(long_name), CS_E_LAST_UPDATED_BY_TOO_LONG, 400,
             50505);
    MSG_CASE(date_created, S("2016-02-30T00:00:00Z"), CS_E_BAD_DATE_CREATED,
             400, 50308);
    MSG_CASE(date_updated, S("2016-02-30T00:00:00Z"), CS_E_BAD_DATE_UPDATED,
             400, 50309);
#undef MSG_CASE
    m = mp;
    m.media_sid = S("ME12");
    MUT_FAILS_E(&f, msg_create(&f, &m, NULL), CS_E_BAD_MEDIA_SID, 400, 50510);
    m.media_sid = S(missing_me);
    MUT_FAILS_E(&f, msg_create(&f, &m, NULL), CS_E_MEDIA_NOT_FOUND, 400,
                50507);
    m.media_sid = S(r.me_used);
    MUT_FAILS_E(&f, msg_create(&f, &m, NULL), CS_E_MEDIA_IN_USE, 400, 50508);
    MUT_FAILS_E(&f, msg_update(&f, r.media_msg, &mp, NULL),
                CS_E_MEDIA_BODY_IMMUTABLE, 400, 50509);
    MUT_FAILS_E(&f, cs_message_create(f.s, S(missing_svc), ch, &mp, NULL),
                E_404);
    MUT_FAILS_E(&f, cs_message_create(f.s, sv, S("nope"), &mp, NULL), E_404);
    MUT_FAILS_E(&f, msg_update(&f, missing_msg, &mp, NULL), E_404);
    MUT_FAILS_E(&f, msg_delete(&f, missing_msg), E_404);
    MUT_FAILS_E(&f, cs_message_delete(f.s, sv, ch, S(r.text), S("maybe")),
                E_20001(CS_E_BAD_WEBHOOK_HEADER));

    /* Store-level calls. */
    cs_limits zero = *cs_store_limits(f.s);
    zero.page_size_max = 0;
    MUT_FAILS_E(&f, cs_store_set_limits(f.s, &zero),
                E_20001(CS_E_INVALID_ARGUMENT));
    MUT_FAILS_E(&f, cs_observer_remove(f.s, 999), E_404);
    MUT_FAILS_E(&f, cs_observer_add(f.s, NULL, NULL, NULL),
                E_20001(CS_E_INVALID_ARGUMENT));
    CHECK_INT(ev.n, 0);

    /* The SID generator did not move either: the same next objects as the
     * twin that never saw a failure. */
    sid_set a, b;
    make_sids(&f, &a);
    make_sids(&twin, &b);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    char *da = tu_dump(&f), *db = tu_dump(&twin);
    CHECK_STR(da, db);
    free(da);
    free(db);
    free(long_name);
    free(long_body);
    free(long_attr);
    tu_close(&twin);
    tu_close(&f);
}

TEST(decision_failed_call_out_of_memory_leaves_store_unchanged) {
    tu_alloc ta = {-1, 0};
    cs_allocator alc = {tu_alloc_malloc, tu_alloc_free, &ta};
    cs_options o = tu_options(TU_SEED);
    o.allocator = &alc;
    tu_fx f;
    rich r;
    REQUIRE(tu_open_opts(&f, &o));
    REQUIRE(rich_setup(&f, &r));
    int calls = 0;
    for (int op = 0; op < 9; op++) {
        bool done = false;
        for (long k = 0; k < 500 && !done; k++) {
            char *before = tu_dump(&f);
            ta.budget = k;
            cs_err e;
            cs_message_params p = tu_mp();
            cs_channel_params cp = tu_cp();
            switch (op) {
            case 0:
                p.body = S("new message");
                p.from = S("new-identity");
                p.attributes = S("{\"x\":1}");
                p.last_updated_by = S("another-identity");
                e = msg_create(&f, &p, NULL);
                break;
            case 1:
                p.body = S("a changed, much longer body than before");
                p.from = S("editor");
                e = msg_update(&f, r.text, &p, NULL);
                break;
            case 2:
                cp.unique_name = S("oom-channel");
                cp.friendly_name = S("OOM");
                cp.attributes = S("{\"a\":[1,2]}");
                cp.created_by = S("creator");
                e = cs_channel_create(f.s, S(f.svc), &cp, NULL);
                break;
            case 3:
                cp.unique_name = S("renamed");
                cp.friendly_name = S("Renamed");
                e = cs_channel_update(f.s, S(f.svc), S(r.priv), &cp, NULL);
                break;
            case 4:
                e = cs_service_create(f.s, S("oom service"), NULL);
                break;
            case 5:
                e = cs_media_create(f.s, S(f.svc), S("image/gif"), S("a.gif"),
                                    10, NULL);
                break;
            case 6:
                p.media_sid = S(r.me_free);
                e = msg_create(&f, &p, NULL);
                break;
            case 7:
                e = msg_delete(&f, r.text);
                break;
            default:
                e = cs_channel_delete(f.s, S(f.svc), S("renamed"),
                                      CS_STR_ABSENT);
                break;
            }
            ta.budget = -1;
            CHECK_STORE(f.s);
            if (e == CS_OK) {
                done = true;
            } else {
                calls++;
                DEC_CHECK_ERR_(op, e, CS_E_NOMEM, 500, 20500);
                char *after = tu_dump(&f);
                dec_same_dump("allocation failure", before, after, op);
                free(after);
            }
            free(before);
        }
        if (!done) CHECK_FAIL_("operation %d never succeeded", op);
    }
    CHECK(calls > 0); /* allocation failures were really exercised */
    CHECK(ta.fails > 0);
    tu_close(&f);
}

/* ======================================================================== */
/* Quotas                                                                    */
/* ======================================================================== */

#define E_QUOTA(en) en, 403, 20403

static void dec_set_quota(tu_fx *f, uint64_t svcs, uint64_t chans,
                          uint64_t msgs, uint64_t bytes) {
    cs_limits lim = *cs_store_limits(f->s);
    lim.max_services = svcs;
    lim.max_channels = chans;
    lim.max_messages = msgs;
    lim.max_bytes = bytes;
    CHECK_OK(cs_store_set_limits(f->s, &lim));
}

static size_t dec_bytes(const tu_fx *f) {
    cs_store_stats st;
    cs_store_stats_get(f->s, &st);
    return st.bytes_allocated;
}

/* QT2: each count quota refuses the create past it with its own error,
 * after the call's own checks, and changes nothing; reads, updates and
 * deletes work at the quota and a delete makes room. */
TEST(decision_quota_counts_refuse_past_and_free_on_delete) {
    tu_fx f;
    REQUIRE(tu_open(&f)); /* one service, one channel */
    char im[CS_SID_BUFSZ], ch2[CS_SID_BUFSZ];
    REQUIRE(tu_msg(&f, "one", im) == CS_OK);
    dec_set_quota(&f, 2, 2, 2, 0);
    /* services */
    cs_service_view sv;
    MUT_OK(f.s, cs_service_create(f.s, S("second"), &sv));
    MUT_FAILS_E(&f, cs_service_create(f.s, S("third"), NULL),
                E_QUOTA(CS_E_QUOTA_SERVICES));
    MUT_FAILS_E(&f, cs_service_create(f.s, S(""), NULL),
                E_20001(CS_E_FRIENDLY_NAME_MISSING)); /* the call's checks first */
    CHECK_OK(cs_service_fetch(f.s, S(sv.sid), NULL));
    MUT_OK(f.s, cs_service_update(f.s, S(sv.sid), S("renamed"), NULL));
    MUT_OK(f.s, cs_service_delete(f.s, S(sv.sid)));
    MUT_OK(f.s, cs_service_create(f.s, S("third"), &sv));
    /* channels */
    MUT_OK(f.s, chan_create(&f, "two", NULL, ch2));
    MUT_FAILS_E(&f, chan_create(&f, "three", NULL, NULL),
                E_QUOTA(CS_E_QUOTA_CHANNELS));
    MUT_FAILS_E(&f, chan_create(&f, "two", NULL, NULL),
                CS_E_UNIQUE_NAME_EXISTS, 409, 50307);
    MUT_FAILS_E(&f, cs_channel_create(f.s, S("IS00000000000000000000000000000000"),
                                      NULL, NULL),
                E_404);
    MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S(ch2), CS_STR_ABSENT));
    MUT_OK(f.s, chan_create(&f, "three", NULL, NULL));
    /* messages (store-wide: every channel counts) */
    cs_message_params p = tu_mp();
    p.body = S("two");
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), E_QUOTA(CS_E_QUOTA_MESSAGES));
    MUT_FAILS_E(&f, cs_message_create(f.s, S(f.svc), S("three"), &p, NULL),
                E_QUOTA(CS_E_QUOTA_MESSAGES));
    p.attributes = S("{bad");
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL),
                CS_E_ATTRIBUTES_INVALID, 400, 50304);
    p.attributes = CS_STR_ABSENT;
    cs_message_params up = tu_mp();
    up.body = S("edited at the quota");
    MUT_OK(f.s, msg_update(&f, im, &up, NULL));
    CHECK_OK(msg_fetch(&f, v.sid, NULL));
    cs_page pg;
    cs_page_params q = tu_qp();
    CHECK_OK(cs_message_list(f.s, S(f.svc), S(f.ch), &q, &pg));
    CHECK_INT(pg.count, 2);
    MUT_OK(f.s, msg_delete(&f, im));
    MUT_OK(f.s, msg_create(&f, &p, NULL));
    /* 0 lifts a quota */
    dec_set_quota(&f, 0, 0, 0, 0);
    MUT_OK(f.s, msg_create(&f, &p, NULL));
    MUT_OK(f.s, cs_service_create(f.s, S("fourth"), NULL));
    tu_close(&f);
}

/* QT3: the byte quota refuses what would take the live bytes past it,
 * with the store unchanged, at every kind of create and a growing update;
 * reads, deletes and updates in place work at the quota; a delete frees
 * room. */
TEST(decision_quota_bytes_refuse_unchanged_and_free_on_delete) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char body[2001];
    memset(body, 'x', 2000);
    body[2000] = '\0';
    cs_message_params p = tu_mp();
    p.body = S(body);
    /* room for a few big messages */
    dec_set_quota(&f, 0, 0, 0, dec_bytes(&f) + 5 * 2100 + 4096);
    char sids[64][CS_SID_BUFSZ];
    int n = 0;
    cs_err e = CS_OK;
    while (n < 64) {
        char *before = tu_dump(&f);
        size_t b0 = dec_bytes(&f);
        cs_message_view v;
        e = msg_create(&f, &p, &v);
        if (e) {
            DEC_CHECK_ERR_(msg_create, e, CS_E_QUOTA_BYTES, 403, 20403);
            char *after = tu_dump(&f);
            dec_same_dump("refused create", before, after, __LINE__);
            free(after);
            free(before);
            CHECK(dec_bytes(&f) <= cs_store_limits(f.s)->max_bytes);
            (void)b0;
            break;
        }
        free(before);
        snprintf(sids[n++], CS_SID_BUFSZ, "%s", v.sid);
    }
    CHECK(n >= 3 && n < 64); /* some fit, then the quota refused */
    CHECK(dec_bytes(&f) <= cs_store_limits(f.s)->max_bytes);
    /* every kind of create at the quota */
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), E_QUOTA(CS_E_QUOTA_BYTES));
    cs_limits lim = *cs_store_limits(f.s);
    lim.max_bytes = dec_bytes(&f); /* nothing more fits */
    CHECK_OK(cs_store_set_limits(f.s, &lim));
    MUT_FAILS_E(&f, cs_service_create(f.s, S("more"), NULL),
                E_QUOTA(CS_E_QUOTA_BYTES));
    MUT_FAILS_E(&f, chan_create(&f, "more", NULL, NULL),
                E_QUOTA(CS_E_QUOTA_BYTES));
    MUT_FAILS_E(&f,
                cs_media_create(f.s, S(f.svc), S("image/png"), S("a.png"), 9,
                                NULL),
                E_QUOTA(CS_E_QUOTA_BYTES));
    /* a growing update is refused, one in place is not */
    cs_message_params up = tu_mp();
    up.attributes = S("{\"grown\": \"by quite a few bytes of attributes\"}");
    MUT_FAILS_E(&f, msg_update(&f, sids[0], &up, NULL),
                E_QUOTA(CS_E_QUOTA_BYTES));
    char same[2001];
    memset(same, 'y', 2000);
    same[2000] = '\0';
    cs_message_params in_place = tu_mp();
    in_place.body = S(same);
    MUT_OK(f.s, msg_update(&f, sids[0], &in_place, NULL));
    /* reads work */
    for (int i = 0; i < n; i++) CHECK_OK(msg_fetch(&f, sids[i], NULL));
    cs_page pg;
    cs_page_params q = tu_qp();
    CHECK_OK(cs_message_list(f.s, S(f.svc), S(f.ch), &q, &pg));
    CHECK_INT(pg.count, (size_t)n);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK_OK(cs_render_page(f.s, &pg, &b));
    cs_buf_free(&b);
    /* deletes work and free room */
    lim.max_bytes = dec_bytes(&f) + 64;
    CHECK_OK(cs_store_set_limits(f.s, &lim));
    MUT_FAILS_E(&f, msg_create(&f, &p, NULL), E_QUOTA(CS_E_QUOTA_BYTES));
    size_t b1 = dec_bytes(&f);
    MUT_OK(f.s, msg_delete(&f, sids[1]));
    MUT_OK(f.s, msg_delete(&f, sids[2]));
    CHECK(dec_bytes(&f) < b1);
    MUT_OK(f.s, msg_create(&f, &p, NULL));
    tu_close(&f);
}

/* QT3, swept: every byte quota between "nothing fits" and "it fits" gives
 * either success or QUOTA_BYTES with the store unchanged, for each kind of
 * create (the allocation-failure sweep of test_oom, through the quota). */
TEST(decision_quota_bytes_sweep_every_create) {
    for (int op = 0; op < 5; op++) {
        tu_fx f;
        REQUIRE(tu_open(&f));
        char me[CS_SID_BUFSZ], im[CS_SID_BUFSZ];
        REQUIRE(tu_media(&f, "m.pdf", me) == CS_OK);
        REQUIRE(tu_msg(&f, "short", im) == CS_OK);
        size_t base = dec_bytes(&f);
        bool done = false;
        int refusals = 0;
        for (size_t extra = 0; extra < 200000 && !done; extra += 8) {
            dec_set_quota(&f, 0, 0, 0, base + extra);
            char *before = tu_dump(&f);
            cs_err e;
            cs_message_params mp = tu_mp();
            cs_channel_params cp = tu_cp();
            cs_service_params sp = {0};
            switch (op) {
            case 0:
                mp.media_sid = S(me);
                mp.last_updated_by = S("someone new");
                mp.attributes = S("{\"a\": 1}");
                e = msg_create(&f, &mp, NULL);
                break;
            case 1:
                cp.unique_name = S("swept");
                cp.created_by = S("a new creator");
                e = cs_channel_create(f.s, S(f.svc), &cp, NULL);
                break;
            case 2:
                sp.friendly_name = S("swept");
                sp.post_webhook_url = S("https://example.com/hook");
                e = cs_service_create_with(f.s, &sp, NULL);
                break;
            case 3:
                e = cs_media_create(f.s, S(f.svc), S("image/png"),
                                    S("swept.png"), 10, NULL);
                break;
            default:
                mp.body = S("a body much longer than the one it had before");
                mp.last_updated_by = S("editor");
                e = msg_update(&f, im, &mp, NULL);
                break;
            }
            CHECK_STORE(f.s);
            if (e == CS_OK) {
                done = true;
            } else {
                refusals++;
                DEC_CHECK_ERR_(op, e, CS_E_QUOTA_BYTES, 403, 20403);
                char *after = tu_dump(&f);
                dec_same_dump("byte quota", before, after, op);
                free(after);
                CHECK(dec_bytes(&f) <= base + extra);
            }
            free(before);
        }
        if (!done) CHECK_FAIL_("operation %d never fitted", op);
        CHECK(refusals > 0);
        tu_close(&f);
    }
}

/* QT4: quotas are options, never state: the journal applies, and a
 * snapshot loads, whatever quota the receiving store has. */
TEST(decision_quota_never_refuses_recovery) {
    tu_journal j = {0};
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_OK(cs_store_set_journal(f.s, tu_journal_hook, &j));
    char me[CS_SID_BUFSZ];
    for (int i = 0; i < 5; i++) REQUIRE(tu_msg(&f, "m", NULL) == CS_OK);
    REQUIRE(chan_create(&f, "more", NULL, NULL) == CS_OK);
    REQUIRE(cs_service_create(f.s, S("more"), NULL) == CS_OK);
    REQUIRE(tu_media(&f, "x.pdf", me) == CS_OK);
    char *want = tu_dump(&f);
    /* The same fixture (same seed: the state f had when its hook was set),
     * with every quota already reached. */
    tu_fx g;
    REQUIRE(tu_open(&g));
    cs_limits lim = *cs_store_limits(g.s);
    lim.max_services = 1;
    lim.max_channels = 1;
    lim.max_messages = 1;
    lim.max_bytes = dec_bytes(&g);
    CHECK_OK(cs_store_set_limits(g.s, &lim));
    MUT_FAILS_E(&g, msg_create(&g, NULL, NULL), E_QUOTA(CS_E_QUOTA_BYTES));
    for (size_t i = 0; i < j.n; i++) {
        bool applied = false;
        CHECK_OK(cs_journal_apply(g.s, j.rec[i], j.len[i], &applied, NULL));
        CHECK(applied);
    }
    snprintf(g.media_svc[0], CS_SID_BUFSZ, "%s", f.svc);
    snprintf(g.media[0], CS_SID_BUFSZ, "%s", me);
    g.n_media = 1;
    char *got = tu_dump(&g);
    CHECK_STR(got, want);
    free(got);
    /* the quota still holds for calls */
    MUT_FAILS_E(&g, msg_create(&g, NULL, NULL), E_QUOTA(CS_E_QUOTA_MESSAGES));
    /* a snapshot loads into a store whose quotas it exceeds */
    tu_mem img = {0};
    CHECK_OK(cs_snapshot_save(f.s, tu_mem_write, &img));
    cs_options lo = tu_options(TU_SEED);
    lo.limits.max_messages = 1;
    lo.limits.max_bytes = 1;
    cs_store *l = NULL;
    CHECK_OK(cs_snapshot_load(&lo, tu_mem_read, &img, &l, NULL));
    cs_store_stats st;
    if (l) {
        cs_store_stats_get(l, &st);
        CHECK_INT(st.messages, 5);
        CHECK_INT(cs_message_create(l, S(f.svc), S(f.ch), NULL, NULL),
                  CS_E_QUOTA_MESSAGES);
    }
    cs_store_free(l);
    tu_mem_free(&img);
    free(want);
    tu_close(&g);
    tu_close(&f);
    tu_journal_free(&j);
}

/* QT5: a quota of 0 is none; every other limit still refuses 0; a quota
 * below what the store holds is taken and refuses creates. */
TEST(decision_quota_set_limits_validation) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_limits def = CS_LIMITS_DEFAULT;
    CHECK_INT(def.max_services, 0);
    CHECK_INT(def.max_channels, 0);
    CHECK_INT(def.max_messages, 0);
    CHECK_INT(def.max_bytes, 0);
    cs_limits lim = *cs_store_limits(f.s);
    lim.max_bytes = 1; /* below the live bytes */
    lim.max_services = 1;
    CHECK_OK(cs_store_set_limits(f.s, &lim));
    CHECK_INT(cs_store_limits(f.s)->max_bytes, 1);
    MUT_FAILS_E(&f, cs_service_create(f.s, S("x"), NULL),
                E_QUOTA(CS_E_QUOTA_SERVICES));
    MUT_FAILS_E(&f, msg_create(&f, NULL, NULL), E_QUOTA(CS_E_QUOTA_BYTES));
    cs_limits bad = lim;
    bad.body_bytes = 0;
    CHECK_INT(cs_store_set_limits(f.s, &bad), CS_E_INVALID_ARGUMENT);
    CHECK_INT(cs_store_limits(f.s)->body_bytes, lim.body_bytes);
    cs_options o = tu_options(TU_SEED);
    o.limits.max_messages = 3;
    cs_store *s = NULL;
    CHECK_OK(cs_store_new(&o, &s));
    if (s) CHECK_INT(cs_store_limits(s)->max_messages, 3);
    cs_store_free(s);
    tu_close(&f);
}

/* ======================================================================== */
/* Errors: the table                                                         */
/* ======================================================================== */

TEST(decision_error_table_status_and_codes) {
    /* Every error has a name, a message and a REST form. */
    for (int i = 0; i < (int)CS_E__COUNT; i++) {
        cs_err e = (cs_err)i;
        const char *n = cs_err_name(e), *m = cs_err_message(e);
        CHECK(n != NULL && n[0] != '\0' && strcmp(n, "UNKNOWN") != 0);
        CHECK(m != NULL && m[0] != '\0');
        int st = cs_err_http_status(e);
        CHECK(st == 200 || st == 400 || st == 403 || st == 404 || st == 409 ||
              st == 500 || st == 503);
        if (i) CHECK(cs_err_twilio_code(e) >= 20001);
        for (int j = 0; j < i; j++)
            if (strcmp(cs_err_name((cs_err)j), n) == 0)
                CHECK_FAIL_("name %s used twice", n);
    }
    /* Reference section 9 and DECISIONS.md. */
    static const struct {
        cs_err e;
        const char *name;
        int status, code;
    } rows[] = {
        {CS_E_OK, "OK", 200, 0},
        {CS_E_NOT_FOUND, "NOT_FOUND", 404, 20404},
        {CS_E_INVALID_ARGUMENT, "INVALID_ARGUMENT", 400, 20001},
        {CS_E_FRIENDLY_NAME_MISSING, "FRIENDLY_NAME_MISSING", 400, 20001},
        {CS_E_BAD_UTF8, "BAD_UTF8", 400, 20001},
        {CS_E_BAD_ORDER, "BAD_ORDER", 400, 20001},
        {CS_E_BAD_PAGE_SIZE, "BAD_PAGE_SIZE", 400, 20001},
        {CS_E_BAD_PAGE, "BAD_PAGE", 400, 20001},
        {CS_E_BAD_PAGE_TOKEN, "BAD_PAGE_TOKEN", 400, 20001},
        {CS_E_BAD_WEBHOOK_HEADER, "BAD_WEBHOOK_HEADER", 400, 20001},
        {CS_E_BAD_CHANNEL_TYPE, "BAD_CHANNEL_TYPE", 400, 20001},
        {CS_E_FRIENDLY_NAME_TOO_LONG, "FRIENDLY_NAME_TOO_LONG", 400, 50003},
        {CS_E_UNIQUE_NAME_TOO_LONG, "UNIQUE_NAME_TOO_LONG", 400, 50004},
        {CS_E_IDENTITY_TOO_LONG, "IDENTITY_TOO_LONG", 400, 50207},
        {CS_E_ATTRIBUTES_TOO_LONG, "ATTRIBUTES_TOO_LONG", 400, 50303},
        {CS_E_ATTRIBUTES_INVALID, "ATTRIBUTES_INVALID", 400, 50304},
        {CS_E_UNIQUE_NAME_IS_SID, "UNIQUE_NAME_IS_SID", 400, 50306},
        {CS_E_UNIQUE_NAME_EXISTS, "UNIQUE_NAME_EXISTS", 409, 50307},
        {CS_E_BAD_DATE_CREATED, "BAD_DATE_CREATED", 400, 50308},
        {CS_E_BAD_DATE_UPDATED, "BAD_DATE_UPDATED", 400, 50309},
        {CS_E_FROM_TOO_LONG, "FROM_TOO_LONG", 400, 50310},
        {CS_E_BODY_TOO_LONG, "BODY_TOO_LONG", 400, 50504},
        {CS_E_LAST_UPDATED_BY_TOO_LONG, "LAST_UPDATED_BY_TOO_LONG", 400, 50505},
        {CS_E_MEDIA_NOT_FOUND, "MEDIA_NOT_FOUND", 400, 50507},
        {CS_E_MEDIA_IN_USE, "MEDIA_IN_USE", 400, 50508},
        {CS_E_MEDIA_BODY_IMMUTABLE, "MEDIA_BODY_IMMUTABLE", 400, 50509},
        {CS_E_BAD_MEDIA_SID, "BAD_MEDIA_SID", 400, 50510},
        {CS_E_BAD_MEDIA_CONTENT_TYPE, "BAD_MEDIA_CONTENT_TYPE", 400, 50511},
        {CS_E_MEDIA_TOO_LARGE, "MEDIA_TOO_LARGE", 400, 50512},
        {CS_E_NOMEM, "NOMEM", 500, 20500},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CHECK_STR(cs_err_name(rows[i].e), rows[i].name);
        if (cs_err_http_status(rows[i].e) != rows[i].status ||
            cs_err_twilio_code(rows[i].e) != rows[i].code)
            CHECK_FAIL_("%s: %d/%d, expected %d/%d", rows[i].name,
                        cs_err_http_status(rows[i].e),
                        cs_err_twilio_code(rows[i].e), rows[i].status,
                        rows[i].code);
    }
    /* Twilio's wording where the reference quotes it. */
    CHECK_STR(cs_err_message(CS_E_FRIENDLY_NAME_MISSING),
              "Missing required parameter FriendlyName in the post body");
    CHECK_STR(cs_err_message(CS_E_ATTRIBUTES_INVALID),
              "Attributes not valid JSON");
    /* Out of range: defined answers, no crash. */
    cs_err out[2] = {CS_E__COUNT, (cs_err)-1};
    for (int i = 0; i < 2; i++) {
        CHECK_STR(cs_err_name(out[i]), "UNKNOWN");
        CHECK(cs_err_message(out[i]) != NULL && cs_err_message(out[i])[0]);
        CHECK_INT(cs_err_http_status(out[i]), 500);
        CHECK_INT(cs_err_twilio_code(out[i]), 0);
    }
}

/* ======================================================================== */
/* Services, cascades, clear, media                                          */
/* ======================================================================== */

TEST(decision_service_create_requires_friendly_name) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    MUT_FAILS_E(&f, cs_service_create(f.s, CS_STR_ABSENT, NULL),
                E_20001(CS_E_FRIENDLY_NAME_MISSING));
    MUT_FAILS_E(&f, cs_service_create(f.s, S(""), NULL),
                E_20001(CS_E_FRIENDLY_NAME_MISSING));
    cs_service_view sv;
    MUT_OK(f.s, cs_service_create(f.s, S(" My Service "), &sv));
    CHECK_CSTR(sv.friendly_name, " My Service ");
    CHECK_INT(sv.date_created, TU_T0);
    CHECK(tu_is_sid(sv.sid, "IS"));
    CHECK_STR(sv.account_sid, cs_store_account_sid(f.s));
    /* Update: empty is refused, absent changes nothing, a name is kept. */
    MUT_FAILS_E(&f, cs_service_update(f.s, S(sv.sid), S(""), NULL),
                E_20001(CS_E_FRIENDLY_NAME_MISSING));
    tu_now = TU_T0 + 10;
    MUT_OK(f.s, cs_service_update(f.s, S(sv.sid), CS_STR_ABSENT, &sv));
    CHECK_CSTR(sv.friendly_name, " My Service ");
    CHECK_INT(sv.date_updated, TU_T0);
    MUT_OK(f.s, cs_service_update(f.s, S(sv.sid), S("Renamed"), &sv));
    CHECK_CSTR(sv.friendly_name, "Renamed");
    CHECK_INT(sv.date_updated, TU_T0 + 10);
    CHECK_OK(cs_service_fetch(f.s, S(sv.sid), &sv));
    CHECK_CSTR(sv.friendly_name, "Renamed");
    tu_close(&f);
}

/* The service JSON of f's service, as a string (static buffer). */
static const char *wh_svc_json(tu_fx *f) {
    static char out[4096];
    cs_service_view v;
    cs_buf b;
    cs_buf_init(&b, NULL);
    out[0] = '\0';
    if (cs_service_fetch(f->s, S(f->svc), &v) == CS_OK &&
        cs_render_service(f->s, &v, &b) == CS_OK)
        snprintf(out, sizeof out, "%s", b.data);
    cs_buf_free(&b);
    return out;
}

#define CHECK_HAS(hay, needle)                                                \
    do {                                                                      \
        if (!strstr((hay), (needle)))                                         \
            CHECK_FAIL_("missing %s in %s", (needle), (hay));                 \
    } while (0)

/* Webhook settings are service state: set by update (and create),
 * rendered in their place of the service JSON, each given one a change. */
TEST(decision_service_webhook_settings_set_and_rendered) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    tu_events ev = {0};
    REQUIRE_OK(cs_observer_add(f.s, tu_record, &ev, NULL));
    CHECK_HAS(wh_svc_json(&f),
              "\"limits\": {\"user_channels\": 250, \"channel_members\": 100}, "
              "\"pre_webhook_url\": null, \"post_webhook_url\": null, "
              "\"webhook_method\": null, \"webhook_filters\": null, "
              "\"pre_webhook_retry_count\": 0, \"post_webhook_retry_count\": 0, "
              "\"notifications\": {");
    cs_service_params p = {0};
    cs_str filt[4] = {S("onMessageSent"), S("onChannelDestroyed"),
                      S("onMessageSent"), S("onMessageSend")};
    p.pre_webhook_url = S("https://pre.example.com/a?b=c");
    p.post_webhook_url = S("HTTP://127.0.0.1:3000/post");
    p.webhook_method = S("GET");
    p.webhook_filters = filt;
    p.n_webhook_filters = 4;
    p.pre_webhook_retry_count = S("3");
    p.post_webhook_retry_count = S("1");
    tu_now = TU_T0 + 5;
    cs_service_view v;
    MUT_OK(f.s, cs_service_update_with(f.s, S(f.svc), &p, &v));
    CHECK_INT(v.date_updated, TU_T0 + 5);
    CHECK_CSTR(v.post_webhook_url, "HTTP://127.0.0.1:3000/post");
    CHECK_INT(v.webhook_method, CS_WEBHOOK_METHOD_GET);
    CHECK_INT(v.n_webhook_filters, 3); /* a repeat is kept once */
    CHECK_INT(v.webhook_filters[0], CS_WEBHOOK_ON_MESSAGE_SENT);
    CHECK_INT(v.webhook_filters[2], CS_WEBHOOK_ON_MESSAGE_SEND);
    CHECK_INT(ev.n, 1);
    CHECK_INT(ev.type[0], CS_EVENT_SERVICE_UPDATED);
    CHECK_HAS(wh_svc_json(&f),
              "\"pre_webhook_url\": \"https://pre.example.com/a?b=c\", "
              "\"post_webhook_url\": \"HTTP://127.0.0.1:3000/post\", "
              "\"webhook_method\": \"GET\", \"webhook_filters\": "
              "[\"onMessageSent\", \"onChannelDestroyed\", \"onMessageSend\"], "
              "\"pre_webhook_retry_count\": 3, \"post_webhook_retry_count\": 1, ");
    /* Filters replace the whole list; empty URLs and one empty filter value
     * set null; the method cannot go back to null. A setting equal to the
     * current value is still a change. */
    cs_service_params q = {0};
    cs_str one[1] = {S("onMessageUpdated")};
    q.webhook_filters = one;
    q.n_webhook_filters = 1;
    q.pre_webhook_url = S("");
    q.webhook_method = S("POST");
    tu_now = TU_T0 + 6;
    MUT_OK(f.s, cs_service_update_with(f.s, S(f.svc), &q, &v));
    CHECK_HAS(wh_svc_json(&f),
              "\"pre_webhook_url\": null, \"post_webhook_url\": "
              "\"HTTP://127.0.0.1:3000/post\", \"webhook_method\": \"POST\", "
              "\"webhook_filters\": [\"onMessageUpdated\"], ");
    cs_service_params r = {0};
    cs_str empty[1] = {S("")};
    r.webhook_filters = empty;
    r.n_webhook_filters = 1;
    r.post_webhook_url = S("");
    r.post_webhook_retry_count = S("1");
    tu_now = TU_T0 + 7;
    MUT_OK(f.s, cs_service_update_with(f.s, S(f.svc), &r, &v));
    CHECK_INT(v.date_updated, TU_T0 + 7);
    CHECK(v.post_webhook_url.ptr == NULL);
    CHECK_HAS(wh_svc_json(&f), "\"post_webhook_url\": null, \"webhook_method\": "
                            "\"POST\", \"webhook_filters\": null, ");
    CHECK_INT(ev.n, 3);
    /* Nothing given: unchanged, nobody told. */
    tu_now = TU_T0 + 8;
    cs_service_params none = {0};
    MUT_OK(f.s, cs_service_update_with(f.s, S(f.svc), &none, &v));
    MUT_OK(f.s, cs_service_update_with(f.s, S(f.svc), NULL, &v));
    CHECK_INT(v.date_updated, TU_T0 + 7);
    CHECK_INT(ev.n, 3);
    /* Create takes them too (the server's create reads FriendlyName only). */
    cs_service_params c = p;
    c.friendly_name = S("with hooks");
    MUT_OK(f.s, cs_service_create_with(f.s, &c, &v));
    CHECK_CSTR(v.pre_webhook_url, "https://pre.example.com/a?b=c");
    CHECK_INT(v.pre_webhook_retry_count, 3);
    CHECK_INT(v.post_webhook_retry_count, 1);
    MUT_FAILS_E(&f, cs_service_create_with(f.s, &p, NULL),
                E_20001(CS_E_FRIENDLY_NAME_MISSING));
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S("IS00000000000000000000000000000000"),
                                           &p, NULL),
                E_404);
    CHECK_STR(cs_webhook_event_name(CS_WEBHOOK_ON_MEDIA_MESSAGE_SENT),
              "onMediaMessageSent");
    CHECK_STR(cs_webhook_event_name(CS_WEBHOOK_ON_USER_UPDATED), "onUserUpdated");
    CHECK(cs_webhook_event_name((cs_webhook_event)0) == NULL);
    CHECK(cs_webhook_event_name((cs_webhook_event)24) == NULL);
    tu_close(&f);
}

/* Each setting is checked as DECISIONS.md says (400 / 20001 with its own
 * error); a refused call changes nothing; the first bad one in the order
 * of cs_service_params wins. */
TEST(decision_service_webhook_settings_validation) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    static const char *const bad_urls[] = {
        "ftp://example.com/x", "example.com/hook", "/relative", "http:/x",
        "http://", "http:///path", "https://?q", "http://exa mple.com/",
        "http://example.com/\x01", "http://ex\xc3\xa9.com/", "http://:80/",
        "http://host:port/", "http://host:123456/", "http://host:65536/",
        "http://[::1/", "http://[]/", "http://user@/", "mailto:a@b.c",
        "javascript:alert(1)", " http://example.com/", "http://example.com/ ",
        "http://host:/"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        cs_service_params p = {0};
        p.post_webhook_url = S(bad_urls[i]);
        MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &p, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_URL));
        cs_service_params q = {0};
        q.pre_webhook_url = S(bad_urls[i]);
        MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &q, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_URL));
    }
    static const char *const good_urls[] = {
        "http://a", "HTTPS://Example.COM", "https://h.example.com:8443/p?q=1#f",
        "http://user:pass@127.0.0.1:1/x", "http://[::1]:9/x", "http://[::1]",
        "https://example.com/%E2%98%83?x=%20"};
    for (size_t i = 0; i < sizeof good_urls / sizeof good_urls[0]; i++) {
        cs_service_params p = {0};
        p.post_webhook_url = S(good_urls[i]);
        cs_service_view v;
        MUT_OK(f.s, cs_service_update_with(f.s, S(f.svc), &p, &v));
        CHECK_CSTR(v.post_webhook_url, good_urls[i]);
    }
    /* 2048 bytes at most. */
    char *longu = tu_repeat("https://example.com/", "a", 2048 - 20, "");
    cs_service_params lp = {0};
    lp.post_webhook_url = S(longu);
    MUT_OK(f.s, cs_service_update_with(f.s, S(f.svc), &lp, NULL));
    free(longu);
    longu = tu_repeat("https://example.com/", "a", 2049 - 20, "");
    lp.post_webhook_url = S(longu);
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &lp, NULL),
                E_20001(CS_E_BAD_WEBHOOK_URL));
    free(longu);
    static const char *const bad_methods[] = {"", "get", "Post", "PUT",
                                              "POST ", "GETS", "DELETE"};
    for (size_t i = 0; i < sizeof bad_methods / sizeof bad_methods[0]; i++) {
        cs_service_params p = {0};
        p.webhook_method = S(bad_methods[i]);
        MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &p, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_METHOD));
    }
    static const char *const bad_filters[] = {
        "onmessagesent", "onMessageSent ", "onMessage", "onUserAdd",
        "onMessageSentX", "message.sent"};
    for (size_t i = 0; i < sizeof bad_filters / sizeof bad_filters[0]; i++) {
        cs_service_params p = {0};
        cs_str v[2] = {S("onMessageSent"), S(bad_filters[i])};
        p.webhook_filters = v;
        p.n_webhook_filters = 2;
        MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &p, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_FILTER));
    }
    {   /* an empty value among others, and an absent one */
        cs_service_params p = {0};
        cs_str v[2] = {S("onMessageSent"), S("")};
        p.webhook_filters = v;
        p.n_webhook_filters = 2;
        MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &p, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_FILTER));
        v[1] = CS_STR_ABSENT;
        MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &p, NULL),
                    E_20001(CS_E_BAD_WEBHOOK_FILTER));
    }
    static const char *const bad_counts[] = {"4", "-1", "", "01", "1.0", " 1",
                                             "1 ", "+1", "three", "10"};
    for (size_t i = 0; i < sizeof bad_counts / sizeof bad_counts[0]; i++) {
        cs_service_params p = {0};
        p.pre_webhook_retry_count = S(bad_counts[i]);
        MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &p, NULL),
                    E_20001(CS_E_BAD_RETRY_COUNT));
        cs_service_params q = {0};
        q.post_webhook_retry_count = S(bad_counts[i]);
        MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &q, NULL),
                    E_20001(CS_E_BAD_RETRY_COUNT));
    }
    /* Typed forms: out of range, or both forms of one setting. */
    cs_service_params t = {0};
    t.webhook_method_value = (cs_webhook_method)3;
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &t, NULL),
                E_20001(CS_E_BAD_WEBHOOK_METHOD));
    t.webhook_method_value = CS_WEBHOOK_METHOD_GET;
    t.webhook_method = S("GET");
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &t, NULL),
                E_20001(CS_E_INVALID_ARGUMENT));
    cs_service_params tf = {0};
    static const cs_webhook_event badev[] = {CS_WEBHOOK_ON_MESSAGE_SENT,
                                             (cs_webhook_event)24};
    tf.webhook_filter_values = badev;
    tf.n_webhook_filter_values = 2;
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &tf, NULL),
                E_20001(CS_E_BAD_WEBHOOK_FILTER));
    cs_str sv1[1] = {S("onMessageSent")};
    tf.n_webhook_filter_values = 1;
    tf.webhook_filters = sv1;
    tf.n_webhook_filters = 1;
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &tf, NULL),
                E_20001(CS_E_INVALID_ARGUMENT));
    cs_service_params tr = {0};
    tr.post_webhook_retry_count_value = CS_RETRY_COUNT(4);
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &tr, NULL),
                E_20001(CS_E_BAD_RETRY_COUNT));
    tr.post_webhook_retry_count_value = CS_RETRY_COUNT(3);
    tr.post_webhook_retry_count = S("3");
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &tr, NULL),
                E_20001(CS_E_INVALID_ARGUMENT));
    /* Precedence: FriendlyName, URLs, method, filters, retry counts. */
    cs_service_params all = {0};
    cs_str bf[1] = {S("nope")};
    all.friendly_name = S("");
    all.post_webhook_url = S("nope");
    all.webhook_method = S("PUT");
    all.webhook_filters = bf;
    all.n_webhook_filters = 1;
    all.pre_webhook_retry_count = S("9");
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &all, NULL),
                E_20001(CS_E_FRIENDLY_NAME_MISSING));
    all.friendly_name = CS_STR_ABSENT;
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &all, NULL),
                E_20001(CS_E_BAD_WEBHOOK_URL));
    all.post_webhook_url = CS_STR_ABSENT;
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &all, NULL),
                E_20001(CS_E_BAD_WEBHOOK_METHOD));
    all.webhook_method = CS_STR_ABSENT;
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &all, NULL),
                E_20001(CS_E_BAD_WEBHOOK_FILTER));
    all.webhook_filters = NULL;
    MUT_FAILS_E(&f, cs_service_update_with(f.s, S(f.svc), &all, NULL),
                E_20001(CS_E_BAD_RETRY_COUNT));
    tu_close(&f);
}

TEST(decision_service_delete_cascades) {
    tu_fx f;
    rich r;
    REQUIRE(tu_open(&f));
    REQUIRE(rich_setup(&f, &r));
    /* Something in the second service, which must survive. */
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("general");
    cs_channel_view cv2;
    MUT_OK(f.s, cs_channel_create(f.s, S(r.svc2), &cp, &cv2));
    char ch2[CS_SID_BUFSZ];
    snprintf(ch2, sizeof ch2, "%s", cv2.sid);
    cs_message_params mp = tu_mp();
    mp.body = S("survivor");
    cs_message_view mv2;
    MUT_OK(f.s, cs_message_create(f.s, S(r.svc2), S(ch2), &mp, &mv2));
    char m2[CS_SID_BUFSZ];
    snprintf(m2, sizeof m2, "%s", mv2.sid);
    cs_store_stats before, after;
    cs_store_stats_get(f.s, &before);
    CHECK_INT(before.services, 2);
    CHECK_INT(before.channels, 3);
    CHECK_INT(before.messages, 4);
    CHECK_INT(before.media, 2);
    MUT_OK(f.s, cs_service_delete(f.s, S(f.svc)));
    cs_store_stats_get(f.s, &after);
    CHECK_INT(after.services, 1);
    CHECK_INT(after.channels, 1);
    CHECK_INT(after.messages, 1);
    CHECK_INT(after.media, 0);
    CHECK(after.bytes_allocated < before.bytes_allocated);
    FAILS_E(cs_service_fetch(f.s, S(f.svc), NULL), E_404);
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S(f.ch), NULL), E_404);
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S("general"), NULL), E_404);
    FAILS_E(cs_message_fetch(f.s, S(f.svc), S(f.ch), S(r.text), NULL), E_404);
    FAILS_E(cs_message_fetch(f.s, S(f.svc), S(r.priv), S(r.media_msg), NULL),
            E_404);
    FAILS_E(cs_media_fetch(f.s, S(f.svc), S(r.me_used), NULL), E_404);
    FAILS_E(cs_media_fetch(f.s, S(f.svc), S(r.me_free), NULL), E_404);
    cs_page pg;
    cs_page_params q = tu_qp();
    FAILS_E(cs_channel_list(f.s, S(f.svc), &q, &pg), E_404);
    FAILS_E(cs_message_list(f.s, S(f.svc), S(f.ch), &q, &pg), E_404);
    MUT_FAILS_E(&f, cs_service_delete(f.s, S(f.svc)), E_404);
    CHECK_OK(cs_service_list(f.s, &q, &pg));
    CHECK_INT(pg.count, 1);
    /* The other service is whole. */
    cs_message_view v;
    CHECK_OK(cs_message_fetch(f.s, S(r.svc2), S("general"), S(m2), &v));
    CHECK_CSTR(v.body, "survivor");
    tu_close(&f);
}

TEST(decision_channel_delete_cascades) {
    tu_fx f;
    rich r;
    REQUIRE(tu_open(&f));
    REQUIRE(rich_setup(&f, &r));
    char sids[3][CS_SID_BUFSZ];
    for (int i = 0; i < 3; i++) CHECK_OK(tu_msg(&f, "m", sids[i]));
    cs_store_stats before, after;
    cs_store_stats_get(f.s, &before);
    MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S("general"), CS_STR_ABSENT));
    cs_store_stats_get(f.s, &after);
    CHECK_INT(after.channels, before.channels - 1);
    CHECK_INT(after.messages, before.messages - 5); /* text, media, 3 more */
    CHECK_INT(after.media, before.media - 1); /* the media message's item */
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S(f.ch), NULL), E_404);
    FAILS_E(cs_channel_fetch(f.s, S(f.svc), S("general"), NULL), E_404);
    for (int i = 0; i < 3; i++)
        FAILS_E(cs_message_fetch(f.s, S(f.svc), S(f.ch), S(sids[i]), NULL),
                E_404);
    FAILS_E(cs_message_fetch(f.s, S(f.svc), S(f.ch), S(r.media_msg), NULL),
            E_404);
    cs_page pg;
    cs_page_params q = tu_qp();
    FAILS_E(cs_message_list(f.s, S(f.svc), S(f.ch), &q, &pg), E_404);
    /* The private channel and its message are untouched. */
    CHECK_OK(cs_message_list(f.s, S(f.svc), S(r.priv), &q, &pg));
    CHECK_INT(pg.count, 1);
    /* The unique name is free again; the new channel starts at index 0. */
    char fresh[CS_SID_BUFSZ];
    int64_t idx = -1;
    MUT_OK(f.s, chan_create(&f, "general", NULL, fresh));
    CHECK(strcmp(fresh, f.ch) != 0);
    CHECK_OK(tu_msg_in(&f, fresh, "again", NULL, &idx));
    CHECK_INT(idx, 0);
    FAILS_E(cs_message_fetch(f.s, S(f.svc), S("general"), S(sids[0]), NULL),
            E_404);
    tu_close(&f);
}

TEST(decision_store_clear_reproduces_seed_sids) {
    tu_fx f, g;
    sid_set first, again, fresh;
    REQUIRE(tu_open(&f));
    tu_events ev;
    memset(&ev, 0, sizeof ev);
    MUT_OK(f.s, cs_observer_add(f.s, tu_record, &ev, NULL));
    make_sids(&f, &first);
    char *dump_first = tu_dump(&f);
    int n_events = ev.n;
    CHECK(n_events > 0);
    MUT_OK(f.s, cs_store_clear(f.s));
    CHECK_STORE(f.s);
    CHECK_INT(ev.n, n_events + 1); /* one event for the whole clear */
    CHECK_INT(ev.type[n_events], CS_EVENT_STORE_CLEARED);
    cs_store_stats st;
    cs_store_stats_get(f.s, &st);
    CHECK_INT(st.services, 0);
    CHECK_INT(st.channels, 0);
    CHECK_INT(st.messages, 0);
    CHECK_INT(st.media, 0);
    CHECK_INT(st.identities, 0);
    FAILS_E(cs_service_fetch(f.s, S(first.is), NULL), E_404);
    FAILS_E(cs_media_fetch(f.s, S(first.is), S(first.me), NULL), E_404);
    CHECK_STR(cs_store_account_sid(f.s), first.ac);
    /* The same calls again give the same SIDs and the same store. */
    tu_now = TU_T0;
    cs_service_view sv;
    MUT_OK(f.s, cs_service_create(f.s, S("svc"), &sv));
    snprintf(f.svc, sizeof f.svc, "%s", sv.sid);
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("general");
    cp.friendly_name = S("General");
    cs_channel_view cv;
    MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &cp, &cv));
    snprintf(f.ch, sizeof f.ch, "%s", cv.sid);
    f.n_media = 0;
    make_sids(&f, &again);
    CHECK(memcmp(&first, &again, sizeof first) == 0);
    char *dump_again = tu_dump(&f);
    CHECK_STR(dump_again, dump_first);
    /* ...as a new store with the same seed does. */
    REQUIRE(tu_open(&g));
    make_sids(&g, &fresh);
    CHECK(memcmp(&first, &fresh, sizeof first) == 0);
    /* Observers stay registered. */
    CHECK(ev.n > n_events);
    free(dump_first);
    free(dump_again);
    tu_close(&g);
    tu_close(&f);
}

TEST(decision_media_metadata_only) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    tu_now = TU_T0 + 7;
    cs_media_view mv;
    MUT_OK(f.s, cs_media_create(f.s, S(f.svc), S("image/png"), S("cat.png"),
                                4096, &mv));
    char me[CS_SID_BUFSZ];
    snprintf(me, sizeof me, "%s", mv.sid);
    if (f.n_media < TU_MAX_MEDIA) {
        snprintf(f.media_svc[f.n_media], CS_SID_BUFSZ, "%s", f.svc);
        snprintf(f.media[f.n_media++], CS_SID_BUFSZ, "%s", me);
    }
    CHECK(tu_is_sid(me, "ME"));
    CHECK_CSTR(mv.content_type, "image/png");
    CHECK_CSTR(mv.filename, "cat.png");
    CHECK_INT(mv.size, 4096);
    CHECK_STR(mv.service_sid, f.svc);
    CHECK_INT(mv.date_created, TU_T0 + 7);
    CHECK(!mv.attached);
    CHECK_STR(mv.message_sid, "");
    CHECK_STR(mv.channel_sid, "");
    /* Filename may be absent (null). */
    cs_media_view nf;
    MUT_OK(f.s, cs_media_create(f.s, S(f.svc), S("audio/ogg"), CS_STR_ABSENT,
                                1, &nf));
    CHECK(nf.filename.ptr == NULL);
    /* Size is metadata: up to the limit, counted as given. */
    MUT_OK(f.s, cs_media_create(f.s, S(f.svc), S("video/mp4"), S("v.mp4"),
                                UINT64_C(157286400), &nf));
    CHECK_INT(nf.size, UINT64_C(157286400));
    /* Attaching records which message and channel use it. */
    cs_message_params p = tu_mp();
    p.media_sid = S(me);
    cs_message_view v;
    MUT_OK(f.s, msg_create(&f, &p, &v));
    CHECK_OK(cs_media_fetch(f.s, S(f.svc), S(me), &mv));
    CHECK(mv.attached);
    CHECK_STR(mv.message_sid, v.sid);
    CHECK_STR(mv.channel_sid, f.ch);
    CHECK_INT(v.media.size, 4096);
    CHECK_CSTR(v.media.content_type, "image/png");
    CHECK_CSTR(v.media.filename, "cat.png");
    tu_close(&f);
}

/* ======================================================================== */
/* Rules that had no test (docs/behaviour.md, formerly U1-U21)              */
/* ======================================================================== */

/* CV5: \b and \f take short escapes, other controls \u00xx with lowercase
 * hex; DEL (U+007F) and U+2028 / U+2029 go out raw. Exact bytes. */
TEST(decision_json_escapes_short_b_f_lowercase_hex_raw_del_u2028) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    static const char body[] = "\b|\f|\x01|\x0b|\x1a|\x1f|\x7f|"
                               "\xe2\x80\xa8|\xe2\x80\xa9|\xc2\x85";
    static const char want_body[] =
        "\"\\b|\\f|\\u0001|\\u000b|\\u001a|\\u001f|\x7f|"
        "\xe2\x80\xa8|\xe2\x80\xa9|\xc2\x85\"";
    cs_message_params p = tu_mp();
    p.body = bytes(body, sizeof body - 1);
    p.from = S("\x1b\x7f\xe2\x80\xa8");
    cs_message_view v;
    MUT_REQ(f.s, msg_create(&f, &p, &v));
    tu_msg_exp x = {v.sid, cs_store_account_sid(f.s), f.svc, f.ch, "\"{}\"",
                    TU_T0_STR, TU_T0_STR, "null", false,
                    "\"\\u001b\x7f\xe2\x80\xa8\"", want_body, 0, NULL, NULL};
    char *want = tu_expect_msg(&x);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK_STR(tu_render_msg(f.s, &v, &b), want);
    free(want);
    /* The same writer serves every object: a channel's friendly name. */
    cs_channel_params cp = tu_cp();
    cp.friendly_name = S("\x1e\b\x7f\xe2\x80\xa8");
    cs_channel_view cv;
    MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &cp, &cv));
    const char *cj = tu_render_channel(f.s, &cv, &b);
    if (!strstr(cj, "\"friendly_name\": \"\\u001e\\b\x7f\xe2\x80\xa8\", "))
        CHECK_FAIL_("friendly_name escapes wrong: %s", cj);
    cs_buf_free(&b);
    tu_close(&f);
}

/* ---- error precedence (section 1, "Errors") ------------------------------ */

/* A fault is one wrong parameter; faults[] lists them in the documented
 * order. Every pair of faults on different fields must give the earlier
 * one's error, and change nothing. */
typedef struct msg_fault {
    const char *what;
    int field; /* faults on one field cannot be combined */
    void (*set)(cs_message_params *p);
    cs_err e;
    int status, code;
} msg_fault;

static char *prec_long_body, *prec_long_attr, *prec_long_ident;

static void mf_header(cs_message_params *p) { p->webhook = S("yes"); }
static void mf_body_long(cs_message_params *p) { p->body = S(prec_long_body); }
static void mf_attr_bad(cs_message_params *p) { p->attributes = S("{"); }
static void mf_from_long(cs_message_params *p) { p->from = S(prec_long_ident); }
static void mf_lub_long(cs_message_params *p) {
    p->last_updated_by = S(prec_long_ident);
}
static void mf_dc_bad(cs_message_params *p) { p->date_created = S("nope"); }
static void mf_du_bad(cs_message_params *p) { p->date_updated = S("nope"); }
static void mf_media_bad(cs_message_params *p) { p->media_sid = S("ME12"); }

static const msg_fault msg_faults[] = {
    {"header", 0, mf_header, CS_E_BAD_WEBHOOK_HEADER, 400, 20001},
    {"Body", 1, mf_body_long, CS_E_BODY_TOO_LONG, 400, 50504},
    {"Attributes", 2, mf_attr_bad, CS_E_ATTRIBUTES_INVALID, 400, 50304},
    {"From", 3, mf_from_long, CS_E_FROM_TOO_LONG, 400, 50310},
    {"LastUpdatedBy", 4, mf_lub_long, CS_E_LAST_UPDATED_BY_TOO_LONG, 400,
     50505},
    {"DateCreated", 5, mf_dc_bad, CS_E_BAD_DATE_CREATED, 400, 50308},
    {"DateUpdated", 6, mf_du_bad, CS_E_BAD_DATE_UPDATED, 400, 50309},
    {"MediaSid", 7, mf_media_bad, CS_E_BAD_MEDIA_SID, 400, 50510},
};
#define N_MSG_FAULTS (sizeof msg_faults / sizeof msg_faults[0])

static void prec_strings(void) {
    prec_long_body = tu_repeat(NULL, "a", 32769, NULL);
    prec_long_attr = tu_repeat("\"", "a", 16383, "\""); /* 16385 bytes */
    prec_long_ident = tu_repeat(NULL, "x", 257, NULL);
}

static void prec_strings_free(void) {
    free(prec_long_body);
    free(prec_long_attr);
    free(prec_long_ident);
}

#define CHECK_PREC_(fx, expr, en, st, cd, a, b)                               \
    do {                                                                      \
        char *before_ = tu_dump(fx);                                          \
        cs_err er_ = (expr);                                                  \
        CHECK_STORE((fx)->s);                                                 \
        if (er_ != (en) || cs_err_http_status(er_) != (st) ||                 \
            cs_err_twilio_code(er_) != (cd))                                  \
            CHECK_FAIL_("%s + %s -> %s (%d/%d), expected %s (%d/%d)", (a),    \
                        (b), cs_err_name(er_), cs_err_http_status(er_),       \
                        cs_err_twilio_code(er_), cs_err_name(en), (int)(st),  \
                        (int)(cd));                                           \
        char *after_ = tu_dump(fx);                                           \
        dec_same_dump(#expr, before_, after_, __LINE__);                      \
        free(before_);                                                        \
        free(after_);                                                         \
    } while (0)

TEST(decision_error_precedence_messages) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    prec_strings();
    char sid[CS_SID_BUFSZ], media_msg[CS_SID_BUFSZ], me[CS_SID_BUFSZ];
    REQUIRE(tu_msg(&f, "text", sid) == CS_OK);
    REQUIRE(tu_media(&f, "a.pdf", me) == CS_OK);
    cs_message_params mp = tu_mp();
    mp.media_sid = S(me);
    cs_message_view v;
    MUT_REQ(f.s, msg_create(&f, &mp, &v));
    snprintf(media_msg, sizeof media_msg, "%s", v.sid);
    /* Every pair on create, and (without MediaSid) on update. */
    for (size_t i = 0; i < N_MSG_FAULTS; i++) {
        for (size_t j = i + 1; j < N_MSG_FAULTS; j++) {
            const msg_fault *a = &msg_faults[i], *b = &msg_faults[j];
            cs_message_params p = tu_mp();
            b->set(&p);
            a->set(&p);
            CHECK_PREC_(&f, msg_create(&f, &p, NULL), a->e, a->status,
                        a->code, a->what, b->what);
            if (b->field == 7) continue; /* MediaSid is not for updates */
            CHECK_PREC_(&f, msg_update(&f, sid, &p, NULL), a->e, a->status,
                        a->code, a->what, b->what);
            /* 50509 comes after every other check. */
            if (a->field != 1 && b->field != 1) p.body = S("changed");
            CHECK_PREC_(&f, msg_update(&f, media_msg, &p, NULL), a->e,
                        a->status, a->code, a->what, "changed media body");
        }
    }
    /* Within a field: Body size before UTF-8, Attributes size before JSON,
     * MediaSid shape, then existence, then in use. */
    char *long_bad = tu_repeat("\xff", "a", 32768, NULL);
    cs_message_params p = tu_mp();
    p.body = S(long_bad);
    CHECK_PREC_(&f, msg_create(&f, &p, NULL), CS_E_BODY_TOO_LONG, 400, 50504,
                "Body too long", "Body not UTF-8");
    free(long_bad);
    p = tu_mp();
    p.attributes = S(prec_long_attr);
    prec_long_attr[1] = '\xff'; /* and not even UTF-8 */
    CHECK_PREC_(&f, msg_create(&f, &p, NULL), CS_E_ATTRIBUTES_TOO_LONG, 400,
                50303, "Attributes too long", "Attributes not JSON");
    p = tu_mp();
    p.media_sid = S(me); /* in use */
    p.date_updated = S("nope");
    CHECK_PREC_(&f, msg_create(&f, &p, NULL), CS_E_BAD_DATE_UPDATED, 400,
                50309, "DateUpdated", "MediaSid in use");
    /* The addressed resource comes before every parameter. */
    p = tu_mp();
    mf_header(&p);
    mf_body_long(&p);
    CHECK_PREC_(&f,
                cs_message_create(f.s, S(f.svc), S("nowhere"), &p, NULL),
                CS_E_NOT_FOUND, 404, 20404, "missing channel", "header");
    CHECK_PREC_(&f, msg_update(&f, "IM00000000000000000000000000000000", &p,
                               NULL),
                CS_E_NOT_FOUND, 404, 20404, "missing message", "header");
    CHECK_PREC_(&f,
                cs_message_delete(f.s, S(f.svc), S(f.ch),
                                  S("IM00000000000000000000000000000000"),
                                  S("yes")),
                CS_E_NOT_FOUND, 404, 20404, "missing message", "header");
    prec_strings_free();
    tu_close(&f);
}

typedef struct chan_fault {
    const char *what;
    int field;
    void (*set)(cs_channel_params *p);
    cs_err e;
    int status, code;
} chan_fault;

static void cf_header(cs_channel_params *p) { p->webhook = S("yes"); }
static void cf_fn_long(cs_channel_params *p) {
    p->friendly_name = S(prec_long_ident);
}
static void cf_un_long(cs_channel_params *p) {
    p->unique_name = S(prec_long_ident);
}
static void cf_attr_bad(cs_channel_params *p) { p->attributes = S("{"); }
static void cf_by_long(cs_channel_params *p) {
    p->created_by = S(prec_long_ident);
}
static void cf_type_bad(cs_channel_params *p) { p->type = S("secret"); }
static void cf_dc_bad(cs_channel_params *p) { p->date_created = S("nope"); }
static void cf_du_bad(cs_channel_params *p) { p->date_updated = S("nope"); }
static void cf_un_taken(cs_channel_params *p) { p->unique_name = S("general"); }

static const chan_fault chan_faults[] = {
    {"header", 0, cf_header, CS_E_BAD_WEBHOOK_HEADER, 400, 20001},
    {"FriendlyName", 1, cf_fn_long, CS_E_FRIENDLY_NAME_TOO_LONG, 400, 50003},
    {"UniqueName", 2, cf_un_long, CS_E_UNIQUE_NAME_TOO_LONG, 400, 50004},
    {"Attributes", 3, cf_attr_bad, CS_E_ATTRIBUTES_INVALID, 400, 50304},
    {"CreatedBy", 4, cf_by_long, CS_E_IDENTITY_TOO_LONG, 400, 50207},
    {"Type", 5, cf_type_bad, CS_E_BAD_CHANNEL_TYPE, 400, 20001},
    {"DateCreated", 6, cf_dc_bad, CS_E_BAD_DATE_CREATED, 400, 50308},
    {"DateUpdated", 7, cf_du_bad, CS_E_BAD_DATE_UPDATED, 400, 50309},
    {"UniqueName taken", 2, cf_un_taken, CS_E_UNIQUE_NAME_EXISTS, 409, 50307},
};
#define N_CHAN_FAULTS (sizeof chan_faults / sizeof chan_faults[0])

TEST(decision_error_precedence_channels) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    prec_strings();
    char other[CS_SID_BUFSZ];
    MUT_REQ(f.s, chan_create(&f, "other", NULL, other));
    for (size_t i = 0; i < N_CHAN_FAULTS; i++) {
        for (size_t j = i + 1; j < N_CHAN_FAULTS; j++) {
            const chan_fault *a = &chan_faults[i], *b = &chan_faults[j];
            if (a->field == b->field) continue;
            cs_channel_params p = tu_cp();
            b->set(&p);
            a->set(&p);
            CHECK_PREC_(&f, cs_channel_create(f.s, S(f.svc), &p, NULL), a->e,
                        a->status, a->code, a->what, b->what);
            if (a->field == 5 || b->field == 5) continue; /* update: no Type */
            CHECK_PREC_(&f, cs_channel_update(f.s, S(f.svc), S(other), &p,
                                              NULL),
                        a->e, a->status, a->code, a->what, b->what);
        }
    }
    /* UniqueName: length before the SID shape (a short limit makes a
     * SID-shaped name too long). */
    cs_limits lim = *cs_store_limits(f.s);
    lim.name_chars = 10;
    MUT_OK(f.s, cs_store_set_limits(f.s, &lim));
    cs_channel_params p = tu_cp();
    p.unique_name = S("CH0123456789abcdef0123456789abcdef");
    CHECK_PREC_(&f, cs_channel_create(f.s, S(f.svc), &p, NULL),
                CS_E_UNIQUE_NAME_TOO_LONG, 400, 50004, "UniqueName length",
                "UniqueName SID shape");
    lim.name_chars = 256;
    MUT_OK(f.s, cs_store_set_limits(f.s, &lim));
    CHECK_PREC_(&f, cs_channel_create(f.s, S(f.svc), &p, NULL),
                CS_E_UNIQUE_NAME_IS_SID, 400, 50306, "UniqueName SID shape",
                "-");
    /* The addressed service or channel comes first. */
    p = tu_cp();
    cf_header(&p);
    cf_type_bad(&p);
    CHECK_PREC_(&f,
                cs_channel_create(f.s, S("IS00000000000000000000000000000000"),
                                  &p, NULL),
                CS_E_NOT_FOUND, 404, 20404, "missing service", "header");
    CHECK_PREC_(&f, cs_channel_update(f.s, S(f.svc), S("nowhere"), &p, NULL),
                CS_E_NOT_FOUND, 404, 20404, "missing channel", "header");
    CHECK_PREC_(&f,
                cs_channel_delete(f.s, S(f.svc), S("nowhere"), S("yes")),
                CS_E_NOT_FOUND, 404, 20404, "missing channel", "header");
    prec_strings_free();
    tu_close(&f);
}

TEST(decision_error_precedence_lists_and_media) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 3));
    /* Lists: Type (channels) or Order (messages), then PageSize, Page,
     * PageToken. */
    enum { L_FIRST, L_SIZE, L_PAGE, L_TOKEN, L_N };
    static const cs_err errs[L_N] = {CS_E_BAD_ORDER, CS_E_BAD_PAGE_SIZE,
                                     CS_E_BAD_PAGE, CS_E_BAD_PAGE_TOKEN};
    cs_str bad_type = S("secret");
    for (unsigned mask = 1; mask < (1u << L_N); mask++) {
        cs_page_params q = tu_qp();
        if (mask & 1u << L_FIRST) {
            q.order = S("up");
            q.types = &bad_type;
            q.n_types = 1;
        }
        if (mask & 1u << L_SIZE) q.page_size = S("0");
        if (mask & 1u << L_PAGE) q.page = S("-1");
        if (mask & 1u << L_TOKEN) q.page_token = S("PTnope");
        unsigned first = 0, rest = 1;
        while (!(mask & 1u << first)) first++;
        while (rest < L_N && !(mask & 1u << rest)) rest++;
        char what[32];
        snprintf(what, sizeof what, "faults 0x%x", mask);
        cs_page pg;
        CHECK_PREC_(&f, cs_message_list(f.s, S(f.svc), S(f.ch), &q, &pg),
                    errs[first], 400, 20001, "messages", what);
        CHECK_PREC_(&f, cs_channel_list(f.s, S(f.svc), &q, &pg),
                    first == L_FIRST ? CS_E_BAD_CHANNEL_TYPE : errs[first],
                    400, 20001, "channels", what);
        /* Services take neither Order nor Type (section 6). */
        if (rest < L_N)
            CHECK_PREC_(&f, cs_service_list(f.s, &q, &pg), errs[rest], 400,
                        20001, "services", what);
        else
            CHECK_OK(cs_service_list(f.s, &q, &pg));
        /* A missing channel or service comes before all of them. */
        CHECK_PREC_(&f, cs_message_list(f.s, S(f.svc), S("nowhere"), &q, &pg),
                    CS_E_NOT_FOUND, 404, 20404, "missing channel", what);
        CHECK_PREC_(&f,
                    cs_channel_list(f.s,
                                    S("IS00000000000000000000000000000000"),
                                    &q, &pg),
                    CS_E_NOT_FOUND, 404, 20404, "missing service", what);
    }
    /* Media: the service, then content type, filename (UTF-8, then
     * length), size. */
    char *long_fn = tu_repeat(NULL, "f", 256, NULL);
    char *long_bad_fn = tu_repeat("\xff", "f", 256, NULL);
    uint64_t big = UINT64_C(157286401);
    CHECK_PREC_(&f,
                cs_media_create(f.s, S("IS00000000000000000000000000000000"),
                                S("bad"), S(long_bad_fn), big, NULL),
                CS_E_NOT_FOUND, 404, 20404, "missing service", "all");
    CHECK_PREC_(&f,
                cs_media_create(f.s, S(f.svc), S("bad"), S(long_bad_fn), big,
                                NULL),
                CS_E_BAD_MEDIA_CONTENT_TYPE, 400, 50511, "content type",
                "filename, size");
    CHECK_PREC_(&f,
                cs_media_create(f.s, S(f.svc), S("image/png"), S(long_bad_fn),
                                big, NULL),
                CS_E_BAD_UTF8, 400, 20001, "filename UTF-8",
                "filename length, size");
    CHECK_PREC_(&f,
                cs_media_create(f.s, S(f.svc), S("image/png"), S(long_fn), big,
                                NULL),
                CS_E_INVALID_ARGUMENT, 400, 20001, "filename length", "size");
    CHECK_PREC_(&f,
                cs_media_create(f.s, S(f.svc), S("image/png"), S("a.png"), big,
                                NULL),
                CS_E_MEDIA_TOO_LARGE, 400, 50512, "size", "-");
    free(long_fn);
    free(long_bad_fn);
    tu_close(&f);
}

/* ---- library-only errors ------------------------------------------------- */

TEST(decision_library_only_errors_status_and_codes) {
    static const struct {
        cs_err e;
        const char *name;
        int status, code;
    } rows[] = {
        {CS_E_BUFFER_TOO_SMALL, "BUFFER_TOO_SMALL", 500, 20500},
        {CS_E_REENTRANT, "REENTRANT", 500, 20500},
        {CS_E_CORRUPT, "CORRUPT", 500, 20500},
        {CS_E_LOCK_HELD, "LOCK_HELD", 500, 20500},
        {CS_E_LOCK_NOT_HELD, "LOCK_NOT_HELD", 500, 20500},
        {CS_E_LOCK_FAILED, "LOCK_FAILED", 500, 20500},
        {CS_E_PAGE_STALE, "PAGE_STALE", 500, 20500},
        {CS_E_LIMIT_EXCEEDED, "LIMIT_EXCEEDED", 400, 20001},
        /* quotas: 403 like Twilio's counter limits, never 429 (QT1) */
        {CS_E_QUOTA_SERVICES, "QUOTA_SERVICES", 403, 20403},
        {CS_E_QUOTA_CHANNELS, "QUOTA_CHANNELS", 403, 20403},
        {CS_E_QUOTA_MESSAGES, "QUOTA_MESSAGES", 403, 20403},
        {CS_E_QUOTA_BYTES, "QUOTA_BYTES", 403, 20403},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CHECK_STR(cs_err_name(rows[i].e), rows[i].name);
        if (cs_err_http_status(rows[i].e) != rows[i].status ||
            cs_err_twilio_code(rows[i].e) != rows[i].code)
            CHECK_FAIL_("%s: %d/%d, expected %d/%d", rows[i].name,
                        cs_err_http_status(rows[i].e),
                        cs_err_twilio_code(rows[i].e), rows[i].status,
                        rows[i].code);
    }
    /* The ones a call can be made to return carry that pair too. */
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_service_view sv;
    CHECK_OK(cs_service_fetch(f.s, S(f.svc), &sv));
    char small[16];
    cs_buf b;
    cs_buf_init_fixed(&b, small, sizeof small);
    FAILS_E(cs_render_service(f.s, &sv, &b), CS_E_BUFFER_TOO_SMALL, 500,
            20500);
    CHECK_INT(b.len, 0);
    FAILS_E(cs_store_unlock(f.s), CS_E_LOCK_NOT_HELD, 500, 20500);
    REQUIRE_OK(cs_store_lock_shared(f.s));
    FAILS_E(cs_store_lock_exclusive(f.s), CS_E_LOCK_HELD, 500, 20500);
    CHECK_OK(cs_store_unlock(f.s));
    cs_page pg;
    CHECK_OK(tu_list(&f, NULL, NULL, NULL, NULL, &pg));
    CHECK_OK(tu_msg(&f, "x", NULL));
    cs_buf g;
    cs_buf_init(&g, NULL);
    FAILS_E(cs_render_page(f.s, &pg, &g), CS_E_PAGE_STALE, 500, 20500);
    cs_buf_free(&g);
    tu_close(&f);
}

/* ---- services ------------------------------------------------------------ */

static void svc_json(const tu_fx *f, cs_buf *b) {
    cs_service_view sv;
    cs_buf_reset(b);
    CHECK_OK(cs_service_fetch(f->s, S(f->svc), &sv));
    CHECK_OK(cs_render_service(f->s, &sv, b));
}

TEST(decision_service_consumption_interval_10_media_limit_in_mib) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_buf b;
    cs_buf_init(&b, NULL);
    static const struct {
        uint64_t bytes;
        const char *want;
    } cases[] = {
        {UINT64_C(157286400), "\"size_limit_mb\": 150}"},
        {UINT64_C(200) << 20, "\"size_limit_mb\": 200}"},
        {(UINT64_C(5) << 20) + 1048575, "\"size_limit_mb\": 5}"}, /* whole */
        {UINT64_C(1) << 20, "\"size_limit_mb\": 1}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cs_limits lim = *cs_store_limits(f.s);
        lim.media_bytes = cases[i].bytes;
        MUT_OK(f.s, cs_store_set_limits(f.s, &lim));
        svc_json(&f, &b);
        if (!strstr(b.data, cases[i].want))
            CHECK_FAIL_("media limit %llu: %s not in %s",
                        (unsigned long long)cases[i].bytes, cases[i].want,
                        b.data);
        if (!strstr(b.data, ", \"consumption_report_interval\": 10, "))
            CHECK_FAIL_("consumption_report_interval not 10: %s", b.data);
    }
    cs_buf_free(&b);
    tu_close(&f);
}

/* ---- channels ------------------------------------------------------------ */

TEST(decision_channel_empty_friendly_name_stores_null) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_channel_params p = tu_cp();
    p.friendly_name = S("");
    cs_channel_view v;
    MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &p, &v));
    CHECK(v.friendly_name.ptr == NULL);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK(strstr(tu_render_channel(f.s, &v, &b), "\"friendly_name\": null, ") !=
          NULL);
    /* On update: "" clears a name that was set. */
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("general"), &v));
    CHECK_CSTR(v.friendly_name, "General");
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S("general"), &p, &v));
    CHECK(v.friendly_name.ptr == NULL);
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("general"), &v));
    CHECK(v.friendly_name.ptr == NULL);
    CHECK(strstr(tu_render_channel(f.s, &v, &b), "\"friendly_name\": null, ") !=
          NULL);
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(decision_channel_date_params_on_create_and_update) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    tu_now = TU_T0 + 100;
    int64_t d2010 = 0, d2012 = 0, d2020 = 0;
    REQUIRE_OK(cs_parse_date(S("2010-01-01T00:00:00Z"), &d2010));
    REQUIRE_OK(cs_parse_date(S("2012-06-01T12:00:00Z"), &d2012));
    REQUIRE_OK(cs_parse_date(S("2020-02-29T23:59:59Z"), &d2020));
    /* Create with DateUpdated alone: date_created now, date_updated given. */
    cs_channel_params p = tu_cp();
    p.date_updated = S("2020-02-29T23:59:59Z");
    cs_channel_view v;
    MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &p, &v));
    CHECK_INT(v.date_created, TU_T0 + 100);
    CHECK_INT(v.date_updated, d2020);
    char sid[CS_SID_BUFSZ];
    snprintf(sid, sizeof sid, "%s", v.sid);
    /* With both. */
    p.date_created = S("2010-01-01T00:00:00Z");
    MUT_OK(f.s, cs_channel_create(f.s, S(f.svc), &p, &v));
    CHECK_INT(v.date_created, d2010);
    CHECK_INT(v.date_updated, d2020);
    /* Update with DateCreated alone: it replaces date_created, and
     * date_updated becomes now. */
    tu_now = TU_T0 + 200;
    p = tu_cp();
    p.date_created = S("2012-06-01T12:00:00Z");
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(sid), &p, &v));
    CHECK_INT(v.date_created, d2012);
    CHECK_INT(v.date_updated, TU_T0 + 200);
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(sid), &v));
    CHECK_INT(v.date_created, d2012);
    CHECK_INT(v.date_updated, TU_T0 + 200);
    tu_close(&f);
}

TEST(decision_channel_empty_created_by_stays_empty) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_channel_params p = tu_cp();
    p.created_by = S("");
    cs_channel_view v;
    MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &p, &v));
    CHECK(v.created_by.ptr != NULL);
    CHECK_INT(v.created_by.len, 0);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK(strstr(tu_render_channel(f.s, &v, &b), "\"created_by\": \"\", ") !=
          NULL);
    /* On update too, after a real name. */
    p.created_by = S("alice");
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S("general"), &p, &v));
    CHECK_CSTR(v.created_by, "alice");
    p.created_by = S("");
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S("general"), &p, &v));
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("general"), &v));
    CHECK(v.created_by.ptr != NULL);
    CHECK_INT(v.created_by.len, 0);
    CHECK(strstr(tu_render_channel(f.s, &v, &b), "\"created_by\": \"\", ") !=
          NULL);
    cs_buf_free(&b);
    tu_close(&f);
}

TEST(decision_channel_date_updated_unchanged_by_messages) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_channel_view v;
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(f.ch), &v));
    CHECK_INT(v.date_updated, TU_T0);
    char sid[CS_SID_BUFSZ];
    tu_now = TU_T0 + 10;
    CHECK_OK(tu_msg(&f, "one", sid));
    CHECK_OK(tu_msg(&f, "two", NULL));
    tu_now = TU_T0 + 20;
    cs_message_params u = tu_mp();
    u.body = S("edited");
    MUT_OK(f.s, msg_update(&f, sid, &u, NULL));
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(f.ch), &v));
    CHECK_INT(v.messages_count, 2);
    CHECK_INT(v.date_updated, TU_T0);
    tu_now = TU_T0 + 30;
    MUT_OK(f.s, msg_delete(&f, sid));
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(f.ch), &v));
    CHECK_INT(v.messages_count, 1);
    CHECK_INT(v.date_updated, TU_T0);
    CHECK_INT(v.date_created, TU_T0);
    tu_close(&f);
}

/* ---- messages ------------------------------------------------------------ */

TEST(decision_from_empty_stores_system) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_message_params p = tu_mp();
    p.from = S("");
    cs_message_view v;
    MUT_REQ(f.s, msg_create(&f, &p, &v));
    CHECK_CSTR(v.from, "system");
    /* On update: a real author, then "" again. */
    cs_message_params u = tu_mp();
    u.from = S("alice");
    MUT_OK(f.s, msg_update(&f, v.sid, &u, &v));
    CHECK_CSTR(v.from, "alice");
    u.from = S("");
    MUT_OK(f.s, msg_update(&f, v.sid, &u, &v));
    CHECK_CSTR(v.from, "system");
    char *json = msg_json(&f, v.sid);
    CHECK(strstr(json, "\"from\": \"system\", ") != NULL);
    free(json);
    tu_close(&f);
}

TEST(decision_last_updated_by_empty_is_null_and_counts) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_message_params p = tu_mp();
    p.last_updated_by = S("");
    cs_message_view v;
    MUT_REQ(f.s, msg_create(&f, &p, &v));
    CHECK(v.last_updated_by.ptr == NULL);
    CHECK(!v.was_edited);
    char sid[CS_SID_BUFSZ];
    snprintf(sid, sizeof sid, "%s", v.sid);
    /* An update giving only "" is still an edit. */
    tu_now = TU_T0 + 5;
    MUT_OK(f.s, msg_update(&f, sid, &p, &v));
    CHECK(v.last_updated_by.ptr == NULL);
    CHECK(v.was_edited);
    CHECK_INT(v.date_updated, TU_T0 + 5);
    /* And it clears a name that was set. */
    cs_message_params u = tu_mp();
    u.last_updated_by = S("bob");
    MUT_OK(f.s, msg_update(&f, sid, &u, &v));
    CHECK_CSTR(v.last_updated_by, "bob");
    tu_now = TU_T0 + 9;
    MUT_OK(f.s, msg_update(&f, sid, &p, &v));
    CHECK(v.last_updated_by.ptr == NULL);
    CHECK_INT(v.date_updated, TU_T0 + 9);
    char *json = msg_json(&f, sid);
    CHECK(strstr(json, "\"last_updated_by\": null, \"was_edited\": true") !=
          NULL);
    free(json);
    tu_close(&f);
}

TEST(decision_update_media_same_body_accepted) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char me1[CS_SID_BUFSZ], me2[CS_SID_BUFSZ];
    REQUIRE(tu_media(&f, "a.pdf", me1) == CS_OK);
    REQUIRE(tu_media(&f, "b.pdf", me2) == CS_OK);
    /* Without a body ("") and with a caption. */
    cs_message_params p = tu_mp();
    p.media_sid = S(me1);
    cs_message_view a, c;
    MUT_REQ(f.s, msg_create(&f, &p, &a));
    p.media_sid = S(me2);
    p.body = S("caption");
    MUT_REQ(f.s, msg_create(&f, &p, &c));
    tu_now = TU_T0 + 3;
    cs_message_params u = tu_mp();
    u.body = S("");
    MUT_OK(f.s, msg_update(&f, a.sid, &u, &a));
    CHECK_CSTR(a.body, "");
    CHECK(a.was_edited);
    CHECK_INT(a.type, CS_MESSAGE_MEDIA);
    CHECK_INT(a.date_updated, TU_T0 + 3);
    u.body = S("caption");
    u.attributes = S("{\"k\": 1}");
    MUT_OK(f.s, msg_update(&f, c.sid, &u, &c));
    CHECK_CSTR(c.body, "caption");
    CHECK_CSTR(c.attributes, "{\"k\": 1}");
    CHECK(c.was_edited);
    /* A body that differs, even by one byte, is still refused. */
    u = tu_mp();
    u.body = S("caption ");
    MUT_FAILS_E(&f, msg_update(&f, c.sid, &u, NULL),
                CS_E_MEDIA_BODY_IMMUTABLE, 400, 50509);
    u.body = S("x");
    MUT_FAILS_E(&f, msg_update(&f, a.sid, &u, NULL),
                CS_E_MEDIA_BODY_IMMUTABLE, 400, 50509);
    tu_close(&f);
}

/* ---- pages --------------------------------------------------------------- */

TEST(decision_order_ignored_on_service_and_channel_lists) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char a[CS_SID_BUFSZ], b2[CS_SID_BUFSZ];
    MUT_REQ(f.s, chan_create(&f, "a", NULL, a));
    MUT_REQ(f.s, chan_create(&f, "b", NULL, b2));
    cs_service_view sv;
    MUT_REQ(f.s, cs_service_create(f.s, S("second"), &sv));
    cs_buf b;
    cs_buf_init(&b, NULL);
    static const char *const orders[] = {"desc", "bogus", ""};
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++) {
        cs_page_params q = tu_qp();
        q.order = S(orders[i]);
        q.page_size = S("1");
        cs_page pg;
        /* Services: creation order, no Order in the URLs. */
        CHECK_OK(cs_service_list(f.s, &q, &pg));
        CHECK(!pg.order_given && !pg.descending);
        cs_service_view first;
        CHECK(cs_page_next_service(f.s, &pg, &first));
        CHECK_STR(first.sid, f.svc);
        const char *json = tu_render_page(f.s, &pg, &b);
        if (strstr(json, "Order=")) CHECK_FAIL_("Order in %s", json);
        /* Channels likewise. */
        CHECK_OK(cs_channel_list(f.s, S(f.svc), &q, &pg));
        CHECK(!pg.order_given && !pg.descending);
        cs_channel_view cv;
        CHECK(cs_page_next_channel(f.s, &pg, &cv));
        CHECK_STR(cv.sid, f.ch);
        json = tu_render_page(f.s, &pg, &b);
        if (strstr(json, "Order=")) CHECK_FAIL_("Order in %s", json);
        /* Following the next link (no Order) continues in creation order. */
        char tok[CS_TOKEN_BUFSZ];
        snprintf(tok, sizeof tok, "%s", pg.next_token);
        q.page_token = S(tok);
        q.page = S("1");
        CHECK_OK(cs_channel_list(f.s, S(f.svc), &q, &pg));
        CHECK(cs_page_next_channel(f.s, &pg, &cv));
        CHECK_STR(cv.sid, a);
    }
    /* Messages do validate it. */
    cs_page pg;
    FAILS_E(tu_list(&f, "bogus", NULL, NULL, NULL, &pg),
            E_20001(CS_E_BAD_ORDER));
    cs_buf_free(&b);
    tu_close(&f);
}

/* Checks a token's layout: PT, the letter, 16 + 16 lowercase hex digits;
 * returns the bound. */
static uint64_t token_bound(const char *t, char letter) {
    CHECK_INT(strlen(t), 35);
    if (strlen(t) != 35) return UINT64_MAX;
    CHECK(t[0] == 'P' && t[1] == 'T');
    if (t[2] != letter) CHECK_FAIL_("token %s: letter %c, expected %c", t, t[2],
                                    letter);
    uint64_t v = 0;
    for (int i = 3; i < 35; i++) {
        char c = t[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        if (!hex) CHECK_FAIL_("token %s: byte %d is '%c'", t, i, c);
        if (i < 19) v = v << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return v;
}

TEST(decision_page_token_layout) {
    tu_fx f, g, h;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 40));
    cs_page pg;
    /* Ascending: next 'A' bound = the page's last index; previous 'B' bound
     * = the page's first index. */
    CHECK_OK(tu_list(&f, NULL, "10", NULL, NULL, &pg));
    CHECK_INT(token_bound(pg.next_token, 'A'), 9);
    char tok[CS_TOKEN_BUFSZ];
    snprintf(tok, sizeof tok, "%s", pg.next_token);
    CHECK_OK(tu_list(&f, NULL, "10", "1", tok, &pg));
    CHECK_INT(token_bound(pg.next_token, 'A'), 19);
    CHECK_INT(token_bound(pg.prev_token, 'B'), 10);
    /* Index 26 = 0x1a: lower-case hex. */
    CHECK_OK(tu_list(&f, NULL, "27", NULL, NULL, &pg));
    CHECK_INT(token_bound(pg.next_token, 'A'), 26);
    CHECK(strncmp(pg.next_token + 3, "000000000000001a", 16) == 0);
    /* Descending: 'D' and 'E'. */
    CHECK_OK(tu_list(&f, "desc", "10", NULL, NULL, &pg));
    CHECK_INT(token_bound(pg.next_token, 'D'), 30);
    snprintf(tok, sizeof tok, "%s", pg.next_token);
    CHECK_OK(tu_list(&f, "desc", "10", "1", tok, &pg));
    CHECK_INT(token_bound(pg.next_token, 'D'), 20);
    CHECK_INT(token_bound(pg.prev_token, 'E'), 29);
    /* The MAC is keyed with the store's secret: the same seed gives the
     * same token, another seed the same bound with another MAC. */
    CHECK_OK(tu_list(&f, NULL, "10", NULL, NULL, &pg));
    char mine[CS_TOKEN_BUFSZ];
    snprintf(mine, sizeof mine, "%s", pg.next_token);
    REQUIRE(tu_open_seed(&g, TU_SEED));
    REQUIRE(tu_msgs(&g, 40));
    REQUIRE(tu_open_seed(&h, TU_SEED + 1));
    REQUIRE(tu_msgs(&h, 40));
    CHECK_OK(tu_list(&g, NULL, "10", NULL, NULL, &pg));
    CHECK_STR(pg.next_token, mine);
    CHECK_OK(tu_list(&h, NULL, "10", NULL, NULL, &pg));
    CHECK_INT(token_bound(pg.next_token, 'A'), 9);
    CHECK(strncmp(pg.next_token, mine, 19) == 0);
    CHECK(strcmp(pg.next_token + 19, mine + 19) != 0);
    tu_close(&h);
    tu_close(&g);
    tu_close(&f);
}

TEST(decision_channel_token_bound_to_service_not_type) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* Creation order: general (public), p1, q1 (public), p2, q2 (public). */
    char p1[CS_SID_BUFSZ], q1[CS_SID_BUFSZ], p2[CS_SID_BUFSZ], q2[CS_SID_BUFSZ];
    MUT_REQ(f.s, chan_create(&f, "p1", "private", p1));
    MUT_REQ(f.s, chan_create(&f, "q1", "public", q1));
    MUT_REQ(f.s, chan_create(&f, "p2", "private", p2));
    MUT_REQ(f.s, chan_create(&f, "q2", "public", q2));
    static const char *const priv[] = {"private"};
    static const char *const pub[] = {"public"};
    static const char *const both[] = {"public", "private"};
    cs_page pg;
    char got[512], want[512];
    CHECK_OK(chan_list(&f, priv, 1, "1", &pg));
    chan_page_sids(f.s, &pg, got, sizeof got);
    CHECK_STR(got, p1);
    char tok[CS_TOKEN_BUFSZ];
    snprintf(tok, sizeof tok, "%s", pg.next_token);
    REQUIRE(tok[0]);
    /* The private list's token works under another filter: the public
     * channels after p1, and all channels after p1. */
    cs_page_params q = tu_qp();
    q.page_token = S(tok);
    cs_str t[2];
    for (int k = 0; k < 3; k++) {
        const char *const *ty = k == 0 ? NULL : k == 1 ? pub : both;
        size_t n = k == 0 ? 0 : k == 1 ? 1 : 2;
        for (size_t i = 0; i < n; i++) t[i] = S(ty[i]);
        q.types = n ? t : NULL;
        q.n_types = n;
        CHECK_OK(cs_channel_list(f.s, S(f.svc), &q, &pg));
        chan_page_sids(f.s, &pg, got, sizeof got);
        if (k < 2)
            snprintf(want, sizeof want, "%s,%s", q1, q2);
        else
            snprintf(want, sizeof want, "%s,%s,%s", q1, p2, q2);
        CHECK_STR(got, want);
    }
    /* But not in another service, nor on a message list. */
    cs_service_view sv;
    MUT_REQ(f.s, cs_service_create(f.s, S("other"), &sv));
    cs_channel_params cp = tu_cp();
    for (int i = 0; i < 6; i++)
        MUT_OK(f.s, cs_channel_create(f.s, S(sv.sid), &cp, NULL));
    q = tu_qp();
    q.page_token = S(tok);
    FAILS_E(cs_channel_list(f.s, S(sv.sid), &q, &pg),
            E_20001(CS_E_BAD_PAGE_TOKEN));
    FAILS_E(cs_service_list(f.s, &q, &pg), E_20001(CS_E_BAD_PAGE_TOKEN));
    tu_close(&f);
}

/* ---- observers and threads ----------------------------------------------- */

typedef struct obs_log {
    int order[16];
    pthread_t thread[16];
    int n;
} obs_log;

typedef struct obs_ctx {
    obs_log *log;
    int id;
} obs_ctx;

static void obs_note(void *ctx, const cs_event *ev) {
    (void)ev;
    obs_ctx *c = ctx;
    if (c->log->n < 16) {
        c->log->order[c->log->n] = c->id;
        c->log->thread[c->log->n] = pthread_self();
        c->log->n++;
    }
}

typedef struct obs_job {
    tu_fx *f;
    cs_err e;
} obs_job;

static void *obs_mutate(void *arg) {
    obs_job *j = arg;
    cs_message_params p = tu_mp();
    p.body = S("from a thread");
    j->e = cs_store_lock_exclusive(j->f->s);
    if (!j->e) {
        j->e = cs_message_create(j->f->s, S(j->f->svc), S(j->f->ch), &p, NULL);
        cs_err u = cs_store_unlock(j->f->s);
        if (!j->e) j->e = u;
    }
    return NULL;
}

TEST(decision_observers_registration_order_on_mutating_thread) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    obs_log log;
    memset(&log, 0, sizeof log);
    obs_ctx c[5];
    uint64_t id[5];
    /* Registered 3, 1, 4, 2: they must run in that order, not by id or
     * address. */
    static const int ids[4] = {3, 1, 4, 2};
    for (int i = 0; i < 4; i++) {
        c[i].log = &log;
        c[i].id = ids[i];
        MUT_REQ(f.s, cs_observer_add(f.s, obs_note, &c[i], &id[i]));
    }
    for (int round = 0; round < 2; round++) {
        memset(&log, 0, sizeof log);
        obs_job job = {&f, CS_OK};
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, obs_mutate, &job) == 0);
        REQUIRE(pthread_join(t, NULL) == 0);
        CHECK_STORE(f.s);
        CHECK_OK(job.e);
        const int *want = round == 0 ? (const int[]){3, 1, 4, 2}
                                     : (const int[]){3, 4, 2, 5};
        CHECK_INT(log.n, 4);
        for (int i = 0; i < 4 && i < log.n; i++) {
            CHECK_INT(log.order[i], want[i]);
            /* On the thread that made the change, not the registering one. */
            CHECK(pthread_equal(log.thread[i], t));
            CHECK(!pthread_equal(log.thread[i], pthread_self()));
        }
        /* Removing one and adding another: the newcomer runs last. */
        if (round == 0) {
            MUT_OK(f.s, cs_observer_remove(f.s, id[1]));
            c[4].log = &log;
            c[4].id = 5;
            MUT_OK(f.s, cs_observer_add(f.s, obs_note, &c[4], &id[4]));
        }
    }
    /* The main thread's own changes are observed on the main thread. */
    memset(&log, 0, sizeof log);
    CHECK_OK(tu_msg(&f, "main", NULL));
    CHECK_INT(log.n, 4);
    for (int i = 0; i < log.n; i++)
        CHECK(pthread_equal(log.thread[i], pthread_self()));
    tu_close(&f);
}

/* TH: writer preference. A thread holds the shared lock; a writer then
 * waits for the exclusive lock; a reader that comes after the writer must
 * not get in before it. Whether a thread is blocked is read from
 * /proc/<pid>/task/<tid>/stat (state S after it announced the lock call):
 * no timing assumptions, only a bound on the waits. */
#if defined(__linux__) && defined(__GLIBC__)
#define WP_LINUX 1
#endif

typedef struct wp_thread {
    cs_store *s;
    bool exclusive;
    char stat_path[96];
    atomic_int started; /* set just before the lock call */
    atomic_int got;     /* the order in which it got the lock, 0: not yet */
    cs_err err;
} wp_thread;

static atomic_int wp_order;

static void *wp_run(void *arg) {
    wp_thread *t = arg;
#ifdef WP_LINUX
    char link[64];
    ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
    if (n > 0) {
        link[n] = '\0';
        snprintf(t->stat_path, sizeof t->stat_path, "/proc/%s/stat", link);
    }
#endif
    /* Touch the lock's thread-local state first, so nothing between the
     * announcement and the lock call can sleep. */
    (void)cs_store_unlock(t->s);
    atomic_store(&t->started, 1);
    t->err = t->exclusive ? cs_store_lock_exclusive(t->s)
                          : cs_store_lock_shared(t->s);
    if (t->err) return NULL;
    atomic_store(&t->got, atomic_fetch_add(&wp_order, 1) + 1);
    t->err = cs_store_unlock(t->s);
    return NULL;
}

#ifdef WP_LINUX
/* The scheduler state letter of a thread ('R', 'S', ...), or 0. */
static char wp_state(const wp_thread *t) {
    FILE *fp = fopen(t->stat_path, "r");
    if (!fp) return 0;
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after "tid (comm)" */
    return p && p[1] == ' ' ? p[2] : 0;
}

/* Waits until t announced its lock call and sleeps in it (true: seen
 * asleep on two polls in a row, so not in some passing wait), or got the
 * lock (false). Gives up after about 20 s (false, reported). */
static bool wp_wait_blocked(const wp_thread *t, const char *who) {
    const struct timespec ms = {0, 1000000};
    int asleep = 0;
    for (int i = 0; i < 20000; i++) {
        if (atomic_load(&t->got)) return false;
        if (atomic_load(&t->started) && t->stat_path[0] && wp_state(t) == 'S')
            asleep++;
        else
            asleep = 0;
        if (asleep == 2) return true;
        nanosleep(&ms, NULL);
    }
    CHECK_FAIL_("%s never blocked on the lock", who);
    return false;
}
#endif

TEST(decision_lock_prefers_writers) {
#ifdef WP_LINUX
    tu_fx f;
    REQUIRE(tu_open(&f));
    atomic_store(&wp_order, 0);
    wp_thread w, r;
    memset(&w, 0, sizeof w);
    memset(&r, 0, sizeof r);
    w.s = r.s = f.s;
    w.exclusive = true;
    /* A: this thread holds the shared lock. */
    REQUIRE_OK(cs_store_lock_shared(f.s));
    pthread_t tw, tr;
    REQUIRE(pthread_create(&tw, NULL, wp_run, &w) == 0);
    bool w_waits = wp_wait_blocked(&w, "the writer");
    CHECK(w_waits);
    CHECK_INT(atomic_load(&w.got), 0); /* not while a reader holds it */
    if (pthread_create(&tr, NULL, wp_run, &r) != 0) {
        CHECK_FAIL_("pthread_create");
        cs_store_unlock(f.s);
        pthread_join(tw, NULL);
        tu_close(&f);
        return;
    }
    /* C: the reader arrives after the writer; it must wait too, although
     * only readers hold the lock. */
    bool r_waits = wp_wait_blocked(&r, "the second reader");
    CHECK(r_waits);
    if (atomic_load(&r.got))
        CHECK_FAIL_("a new reader got the shared lock ahead of a waiting "
                    "writer");
    CHECK_OK(cs_store_unlock(f.s));
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    CHECK_OK(w.err);
    CHECK_OK(r.err);
    CHECK_INT(atomic_load(&w.got), 1);
    CHECK_INT(atomic_load(&r.got), 2);
    tu_close(&f);
#else
    printf("     (decision_lock_prefers_writers: needs Linux and glibc)\n");
#endif
}

static const check_test tests[] = {
    T(decision_index_first_is_zero),
    T(decision_index_never_reused_after_delete),
    T(decision_index_follows_arrival_not_date_created),
    T(decision_from_defaults_to_system),
    T(decision_attributes_default_braces),
    T(decision_attributes_verbatim_not_reserialised),
    T(decision_attributes_invalid_json_50304),
    T(decision_attributes_empty_50304),
    T(decision_attributes_invalid_utf8_50304),
    T(decision_attributes_deep_nesting_accepted),
    T(decision_attributes_any_number_accepted),
    T(decision_attributes_strict_rfc8259_json_test_suite),
    T(decision_body_absent_empty_stores_empty),
    T(decision_body_invalid_utf8_20001),
    T(decision_body_stored_verbatim_not_normalised),
    T(decision_body_limit_32768_bytes_50504),
    T(decision_type_media_when_media_sid),
    T(decision_media_with_body_allowed),
    T(decision_media_unknown_50507),
    T(decision_media_in_use_50508),
    T(decision_media_malformed_sid_50510),
    T(decision_media_goes_with_its_message),
    T(decision_quota_counts_refuse_past_and_free_on_delete),
    T(decision_quota_bytes_refuse_unchanged_and_free_on_delete),
    T(decision_quota_bytes_sweep_every_create),
    T(decision_quota_never_refuses_recovery),
    T(decision_quota_set_limits_validation),
    T(decision_media_delete_unattached_only),
    T(decision_date_created_import),
    T(decision_date_updated_defaults_to_date_created),
    T(decision_date_output_format_utc_seconds),
    T(decision_date_input_fraction_and_offset_normalised),
    T(decision_bad_date_created_50308),
    T(decision_bad_date_updated_50309),
    T(decision_last_updated_by_null_until_set),
    T(decision_update_no_params_unchanged),
    T(decision_update_sets_was_edited_and_date_updated_now),
    T(decision_update_date_updated_param),
    T(decision_update_media_body_50509),
    T(decision_delete_decrements_messages_count),
    T(decision_order_asc_default_desc),
    T(decision_order_invalid_20001),
    T(decision_page_size_default_50),
    T(decision_page_size_clamped_1000),
    T(decision_page_size_zero_negative_nonnumeric_20001),
    T(decision_page_echoed),
    T(decision_page_token_stays_exact_under_inserts_and_deletes),
    T(decision_page_token_previous_exact_under_deletes),
    T(decision_page_token_exact_against_model),
    T(decision_page_token_malformed_20001),
    T(decision_next_page_url_null_when_last_page_exactly_full),
    T(decision_previous_page_url_null_on_first_page),
    T(decision_previous_then_next_returns_same_place),
    T(decision_page_url_query_order),
    T(decision_meta_key_order),
    T(decision_webhook_header_true_false_any_case),
    T(decision_webhook_header_invalid_20001),
    T(decision_webhook_reaches_observers),
    T(decision_failed_call_notifies_nobody),
    T(decision_missing_resources_20404),
    T(decision_unique_name_exists_409_50307),
    T(decision_unique_name_looks_like_sid_50306),
    T(decision_unique_name_byte_exact),
    T(decision_channel_by_sid_or_unique_name),
    T(decision_channel_update_names_and_attributes),
    T(decision_channel_list_public_only_without_type),
    T(decision_channel_type_repeat),
    T(decision_lists_in_creation_order),
    T(decision_limits_names_256_code_points),
    T(decision_limits_identity_256),
    T(decision_limits_attributes_16384),
    T(decision_limits_configurable),
    T(decision_sid_case_insensitive_input_lowercase_output),
    T(decision_sids_unpredictable_and_seed_reproducible),
    T(decision_sids_never_collide),
    T(decision_sid_tag_in_service_channel_role_media_sids),
    T(decision_options_version_2_accepted_without_tag),
    T(decision_message_json_field_order),
    T(decision_media_json_object_order),
    T(decision_urls_use_sids_never_unique_names),
    T(decision_urls_use_configured_base),
    T(decision_every_failed_call_leaves_store_unchanged),
    T(decision_failed_call_out_of_memory_leaves_store_unchanged),
    T(decision_error_table_status_and_codes),
    T(decision_service_create_requires_friendly_name),
    T(decision_service_webhook_settings_set_and_rendered),
    T(decision_service_webhook_settings_validation),
    T(decision_service_delete_cascades),
    T(decision_channel_delete_cascades),
    T(decision_store_clear_reproduces_seed_sids),
    T(decision_media_metadata_only),
    T(decision_json_escapes_short_b_f_lowercase_hex_raw_del_u2028),
    T(decision_error_precedence_messages),
    T(decision_error_precedence_channels),
    T(decision_error_precedence_lists_and_media),
    T(decision_library_only_errors_status_and_codes),
    T(decision_service_consumption_interval_10_media_limit_in_mib),
    T(decision_channel_empty_friendly_name_stores_null),
    T(decision_channel_date_params_on_create_and_update),
    T(decision_channel_empty_created_by_stays_empty),
    T(decision_channel_date_updated_unchanged_by_messages),
    T(decision_from_empty_stores_system),
    T(decision_last_updated_by_empty_is_null_and_counts),
    T(decision_update_media_same_body_accepted),
    T(decision_order_ignored_on_service_and_channel_lists),
    T(decision_page_token_layout),
    T(decision_channel_token_bound_to_service_not_type),
    T(decision_observers_registration_order_on_mutating_thread),
    T(decision_lock_prefers_writers),
};

CHECK_MAIN(tests)
