/* Edges: every size and count exactly at its limit and one past, 32 KiB
 * bodies of multibyte text, bodies with NUL bytes, page tokens from another
 * channel, direction or store, SIDs in upper case. */
#include "check.h"
#include "internal.h"

#include <stdlib.h>

typedef struct fx {
    cs_store *s;
    char is[CS_SID_BUFSZ], ch[CS_SID_BUFSZ], ch2[CS_SID_BUFSZ];
} fx;

static void open_fx(fx *f, uint64_t seed) {
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    o.seed = seed;
    if (cs_store_new(&o, &f->s)) abort();
    cs_service_view sv;
    cs_channel_view cv;
    cs_channel_params cp = {0};
    if (cs_service_create(f->s, cs_str_c("edges"), &sv)) abort();
    memcpy(f->is, sv.sid, CS_SID_BUFSZ);
    if (cs_channel_create(f->s, cs_str_c(f->is), &cp, &cv)) abort();
    memcpy(f->ch, cv.sid, CS_SID_BUFSZ);
    if (cs_channel_create(f->s, cs_str_c(f->is), &cp, &cv)) abort();
    memcpy(f->ch2, cv.sid, CS_SID_BUFSZ);
}

/* n copies of unit, concatenated (caller frees). */
static char *rep(const char *unit, size_t n, size_t *len) {
    size_t u = strlen(unit);
    char *p = malloc(u * n + 1);
    for (size_t i = 0; i < n; i++) memcpy(p + i * u, unit, u);
    p[u * n] = '\0';
    *len = u * n;
    return p;
}

static cs_err create_body(fx *f, cs_str body, cs_message_view *v) {
    cs_message_params p = {0};
    p.body = body;
    cs_err e = cs_message_create(f->s, cs_str_c(f->is), cs_str_c(f->ch), &p, v);
    CHECK_INT(cs_store_check(f->s), CS_OK);
    return e;
}

TEST(edge_body_32k_of_four_byte_text) {
    fx f;
    open_fx(&f, 1);
    size_t n;
    char *emoji = rep("\xF0\x9F\x98\x80", 8192, &n); /* 32768 bytes */
    cs_message_view v;
    CHECK_INT(create_body(&f, (cs_str){emoji, n}, &v), CS_OK);
    CHECK_INT(v.body.len, 32768);
    CHECK(memcmp(v.body.ptr, emoji, n) == 0);
    /* One byte more, or a multibyte character cut at the limit. */
    char *more = malloc(n + 2);
    memcpy(more, emoji, n);
    more[n] = 'x';
    CHECK_INT(create_body(&f, (cs_str){more, n + 1}, &v), CS_E_BODY_TOO_LONG);
    CHECK_INT(create_body(&f, (cs_str){emoji, n - 1}, &v), CS_E_BAD_UTF8);
    free(more);
    free(emoji);
    cs_store_free(f.s);
}

TEST(edge_body_with_nul_bytes_round_trips) {
    fx f;
    open_fx(&f, 2);
    static const char body[] = "a\0b\0\0c";
    cs_message_view v;
    REQUIRE(create_body(&f, (cs_str){body, sizeof body - 1}, &v) == CS_OK);
    CHECK_INT(v.body.len, 6);
    CHECK(memcmp(v.body.ptr, body, 6) == 0);
    char sid[CS_SID_BUFSZ];
    memcpy(sid, v.sid, sizeof sid);
    REQUIRE(cs_message_fetch(f.s, cs_str_c(f.is), cs_str_c(f.ch), cs_str_c(sid), &v) == CS_OK);
    CHECK_INT(v.body.len, 6);
    CHECK(memcmp(v.body.ptr, body, 6) == 0);
    cs_buf b;
    cs_buf_init(&b, NULL);
    REQUIRE(cs_render_message(f.s, &v, &b) == CS_OK);
    CHECK(strstr(b.data, "\"body\": \"a\\u0000b\\u0000\\u0000c\"") != NULL);
    cs_buf_free(&b);
    /* NUL inside attributes is not JSON whitespace: refused. */
    cs_message_params p = {0};
    p.attributes = (cs_str){"{}\0", 3};
    CHECK_INT(cs_message_create(f.s, cs_str_c(f.is), cs_str_c(f.ch), &p, NULL),
              CS_E_ATTRIBUTES_INVALID);
    cs_store_free(f.s);
}

/* Each text limit: exactly at it (in 4-byte characters for the ones counted
 * in code points), and one past. */
TEST(edge_text_limits_at_and_past) {
    fx f;
    open_fx(&f, 3);
    size_t n;
    char *at = rep("\xF0\x9F\x98\x80", 256, &n);
    char *past = rep("\xF0\x9F\x98\x80", 257, &n);
    cs_str A = cs_str_c(at), P = cs_str_c(past);
    cs_message_params mp = {0};
    mp.from = A;
    mp.last_updated_by = A;
    CHECK_INT(cs_message_create(f.s, cs_str_c(f.is), cs_str_c(f.ch), &mp, NULL), CS_OK);
    mp.from = P;
    CHECK_INT(cs_message_create(f.s, cs_str_c(f.is), cs_str_c(f.ch), &mp, NULL),
              CS_E_FROM_TOO_LONG);
    mp.from = A;
    mp.last_updated_by = P;
    CHECK_INT(cs_message_create(f.s, cs_str_c(f.is), cs_str_c(f.ch), &mp, NULL),
              CS_E_LAST_UPDATED_BY_TOO_LONG);
    cs_channel_params cp = {0};
    cp.friendly_name = A;
    cp.unique_name = A;
    cp.created_by = A;
    CHECK_INT(cs_channel_create(f.s, cs_str_c(f.is), &cp, NULL), CS_OK);
    cp.unique_name = CS_STR_ABSENT;
    cp.friendly_name = P;
    CHECK_INT(cs_channel_create(f.s, cs_str_c(f.is), &cp, NULL), CS_E_FRIENDLY_NAME_TOO_LONG);
    cp.friendly_name = A;
    cp.unique_name = P;
    CHECK_INT(cs_channel_create(f.s, cs_str_c(f.is), &cp, NULL), CS_E_UNIQUE_NAME_TOO_LONG);
    cp.unique_name = CS_STR_ABSENT;
    cp.created_by = P;
    CHECK_INT(cs_channel_create(f.s, cs_str_c(f.is), &cp, NULL), CS_E_IDENTITY_TOO_LONG);
    CHECK_INT(cs_service_create(f.s, A, NULL), CS_OK);
    CHECK_INT(cs_service_create(f.s, P, NULL), CS_E_FRIENDLY_NAME_TOO_LONG);
    free(at);
    free(past);
    /* Attributes: 16384 bytes of valid JSON, then 16385. */
    char *json = malloc(16386);
    json[0] = '"';
    memset(json + 1, 'a', 16382);
    json[16383] = '"';
    json[16384] = '\0';
    mp = (cs_message_params){0};
    mp.attributes = cs_str_c(json);
    CHECK_INT(cs_message_create(f.s, cs_str_c(f.is), cs_str_c(f.ch), &mp, NULL), CS_OK);
    json[16383] = 'a';
    json[16384] = '"';
    json[16385] = '\0';
    mp.attributes = cs_str_c(json);
    CHECK_INT(cs_message_create(f.s, cs_str_c(f.is), cs_str_c(f.ch), &mp, NULL),
              CS_E_ATTRIBUTES_TOO_LONG);
    free(json);
    CHECK_INT(cs_store_check(f.s), CS_OK);
    cs_store_free(f.s);
}

TEST(edge_media_limits_at_and_past) {
    fx f;
    open_fx(&f, 4);
    const cs_limits *l = cs_store_limits(f.s);
    char ct[300], fn[300];
    memset(ct, 'a', sizeof ct);
    memcpy(ct, "image/", 6);
    memset(fn, 'f', sizeof fn);
    cs_str ct_at = {ct, l->content_type_bytes}, ct_past = {ct, l->content_type_bytes + 1};
    cs_str fn_at = {fn, l->filename_bytes}, fn_past = {fn, l->filename_bytes + 1};
    CHECK_INT(cs_media_create(f.s, cs_str_c(f.is), ct_at, fn_at, l->media_bytes, NULL), CS_OK);
    CHECK_INT(cs_media_create(f.s, cs_str_c(f.is), ct_past, fn_at, 1, NULL),
              CS_E_BAD_MEDIA_CONTENT_TYPE);
    CHECK_INT(cs_media_create(f.s, cs_str_c(f.is), ct_at, fn_past, 1, NULL),
              CS_E_INVALID_ARGUMENT);
    CHECK_INT(cs_media_create(f.s, cs_str_c(f.is), ct_at, fn_at, l->media_bytes + 1, NULL),
              CS_E_MEDIA_TOO_LARGE);
    cs_store_free(f.s);
}

static cs_err list(fx *f, const char *ch, const char *order, const char *size,
                   const char *page, const char *token, cs_page *pg) {
    cs_page_params q = {0};
    q.order = cs_str_c(order);
    q.page_size = cs_str_c(size);
    q.page = cs_str_c(page);
    q.page_token = cs_str_c(token);
    return cs_message_list(f->s, cs_str_c(f->is), cs_str_c(ch), &q, pg);
}

TEST(edge_page_size_and_page_limits) {
    fx f;
    open_fx(&f, 5);
    for (int i = 0; i < 1002; i++) REQUIRE(create_body(&f, cs_str_c("x"), NULL) == CS_OK);
    cs_page pg;
    CHECK_INT(list(&f, f.ch, NULL, "1000", NULL, NULL, &pg), CS_OK);
    CHECK_INT(pg.count, 1000);
    CHECK_INT(list(&f, f.ch, NULL, "1001", NULL, NULL, &pg), CS_OK);
    CHECK_INT(pg.page_size, 1000);
    CHECK_INT(list(&f, f.ch, NULL, "99999999999999999999999", NULL, NULL, &pg), CS_OK);
    CHECK_INT(pg.page_size, 1000);
    CHECK_INT(list(&f, f.ch, NULL, "1", NULL, NULL, &pg), CS_OK);
    CHECK_INT(pg.count, 1);
    CHECK_INT(list(&f, f.ch, NULL, "0", NULL, NULL, &pg), CS_E_BAD_PAGE_SIZE);
    CHECK_INT(list(&f, f.ch, NULL, "-1", NULL, NULL, &pg), CS_E_BAD_PAGE_SIZE);
    CHECK_INT(list(&f, f.ch, NULL, "+5", NULL, NULL, &pg), CS_E_BAD_PAGE_SIZE);
    CHECK_INT(list(&f, f.ch, NULL, "", NULL, NULL, &pg), CS_E_BAD_PAGE_SIZE);
    CHECK_INT(list(&f, f.ch, NULL, NULL, "9007199254740991", NULL, &pg), CS_OK);
    CHECK_INT(list(&f, f.ch, NULL, NULL, "9007199254740992", NULL, &pg), CS_E_BAD_PAGE);
    CHECK_INT(list(&f, f.ch, NULL, NULL, "-1", NULL, &pg), CS_E_BAD_PAGE);
    cs_store_free(f.s);
}

TEST(edge_tokens_from_elsewhere_refused) {
    fx f, g;
    open_fx(&f, 6);
    open_fx(&g, 7);
    for (int i = 0; i < 5; i++) {
        REQUIRE(create_body(&f, cs_str_c("x"), NULL) == CS_OK);
        cs_message_params p = {0};
        REQUIRE(cs_message_create(f.s, cs_str_c(f.is), cs_str_c(f.ch2), &p, NULL) == CS_OK);
        REQUIRE(create_body(&g, cs_str_c("x"), NULL) == CS_OK);
    }
    cs_page pg;
    char asc[CS_TOKEN_BUFSZ], desc[CS_TOKEN_BUFSZ], other[CS_TOKEN_BUFSZ];
    REQUIRE(list(&f, f.ch, NULL, "2", NULL, NULL, &pg) == CS_OK);
    memcpy(asc, pg.next_token, sizeof asc);
    REQUIRE(list(&f, f.ch, "desc", "2", NULL, NULL, &pg) == CS_OK);
    memcpy(desc, pg.next_token, sizeof desc);
    REQUIRE(list(&g, g.ch, NULL, "2", NULL, NULL, &pg) == CS_OK);
    memcpy(other, pg.next_token, sizeof other);
    CHECK(asc[0] && desc[0] && other[0]);
    CHECK_INT(list(&f, f.ch, NULL, "2", "1", asc, &pg), CS_OK);
    CHECK_INT(list(&f, f.ch, "desc", "2", "1", desc, &pg), CS_OK);
    CHECK_INT(list(&f, f.ch2, NULL, "2", "1", asc, &pg), CS_E_BAD_PAGE_TOKEN);
    CHECK_INT(list(&f, f.ch, "desc", "2", "1", asc, &pg), CS_E_BAD_PAGE_TOKEN);
    CHECK_INT(list(&f, f.ch, "asc", "2", "1", desc, &pg), CS_E_BAD_PAGE_TOKEN);
    CHECK_INT(list(&f, f.ch, NULL, "2", "1", other, &pg), CS_E_BAD_PAGE_TOKEN);
    /* A channel list or service list does not take a message token. */
    cs_page_params q = {0};
    q.page_token = cs_str_c(asc);
    CHECK_INT(cs_channel_list(f.s, cs_str_c(f.is), &q, &pg), CS_E_BAD_PAGE_TOKEN);
    CHECK_INT(cs_service_list(f.s, &q, &pg), CS_E_BAD_PAGE_TOKEN);
    cs_store_free(f.s);
    cs_store_free(g.s);
}

TEST(edge_sids_in_upper_case) {
    fx f;
    open_fx(&f, 8);
    cs_message_view v;
    REQUIRE(create_body(&f, cs_str_c("hi"), &v) == CS_OK);
    char is[CS_SID_BUFSZ], ch[CS_SID_BUFSZ], im[CS_SID_BUFSZ];
    for (int i = 0; i < CS_SID_BUFSZ; i++) {
        is[i] = (char)(f.is[i] >= 'a' && f.is[i] <= 'f' ? f.is[i] - 32 : f.is[i]);
        ch[i] = (char)(f.ch[i] >= 'a' && f.ch[i] <= 'f' ? f.ch[i] - 32 : f.ch[i]);
        im[i] = (char)(v.sid[i] >= 'a' && v.sid[i] <= 'f' ? v.sid[i] - 32 : v.sid[i]);
    }
    CHECK(strcmp(im, v.sid) != 0);
    char lower_sid[CS_SID_BUFSZ];
    memcpy(lower_sid, v.sid, sizeof lower_sid);
    REQUIRE(cs_message_fetch(f.s, cs_str_c(is), cs_str_c(ch), cs_str_c(im), &v) == CS_OK);
    CHECK_STR(v.sid, lower_sid); /* normalised to lower case on output */
    CHECK_STR(v.channel_sid, f.ch);
    im[0] = 'i';
    im[1] = 'm';
    CHECK_INT(cs_message_fetch(f.s, cs_str_c(is), cs_str_c(ch), cs_str_c(im), &v), CS_OK);
    cs_store_free(f.s);
}

static const check_test tests[] = {
    T(edge_body_32k_of_four_byte_text),
    T(edge_body_with_nul_bytes_round_trips),
    T(edge_text_limits_at_and_past),
    T(edge_media_limits_at_and_past),
    T(edge_page_size_and_page_limits),
    T(edge_tokens_from_elsewhere_refused),
    T(edge_sids_in_upper_case),
};
CHECK_MAIN(tests)
