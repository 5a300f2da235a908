/* server/exchange.c without a socket: requests given as method, path,
 * headers, query arguments and body chunks (split anywhere) reach the store
 * or are refused exactly as over HTTP, and the transport is told when to
 * answer early or close. This is the entry a fuzz harness drives. */
#include "check.h"
#include "server.h"

#include <strings.h>

#define SID "AC0123456789abcdef0123456789abcdef"
#define AUTH "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0b2s=" /* SID:tok */

typedef struct fake {
    const char *const *headers; /* name, value, ..., NULL */
    const char *const *args;    /* key, value, ..., NULL */
} fake;

static const char *fake_header(void *ctx, const char *name) {
    const fake *f = ctx;
    for (const char *const *h = f->headers; h && *h; h += 2)
        if (strcasecmp(h[0], name) == 0) return h[1];
    return NULL;
}

static void fake_args(void *ctx, void (*add)(void *, const char *, const char *),
                      void *sink) {
    const fake *f = ctx;
    for (const char *const *a = f->args; a && *a; a += 2) add(sink, a[0], a[1]);
}

static server sv;

static void setup(void) {
    memset(&sv, 0, sizeof sv);
    sv.cfg.account_sid = SID;
    sv.cfg.auth_token = "tok";
    sv.cfg.max_request = 100;
    sv.cfg.media_cap = 1000;
    cs_options o = CS_OPTIONS_INIT;
    o.account_sid = SID;
    if (cs_store_new(&o, &sv.store)) abort();
    sv.media = media_store_new(sv.cfg.media_cap);
    if (!sv.media) abort();
}

static void teardown(void) {
    media_store_free(sv.media);
    cs_store_free(sv.store);
}

/* Runs one request with its body cut into pieces of `piece` bytes. Returns
 * exchange_run's result; *rp is filled (and must be freed) when 0. */
static int run(const char *method, const char *url, const char *const *headers,
               const char *const *args, const char *body, size_t len, size_t piece,
               reply *rp) {
    fake f = {headers, args};
    exchange_in in = {method, url, fake_header, fake_args, &f, NULL};
    const char *chunks[4096];
    size_t lens[4096], n = 0;
    for (size_t o = 0; o < len && n < 4096; o += piece, n++) {
        chunks[n] = body + o;
        lens[n] = len - o < piece ? len - o : piece;
    }
    memset(rp, 0, sizeof *rp);
    cs_buf_init(&rp->body, NULL);
    int r = exchange_run(&sv, &in, chunks, lens, n, rp);
    if (r) cs_buf_free(&rp->body);
    return r;
}

static int body_has(const reply *rp, const char *s) {
    char *z = malloc(rp->body.len + 1);
    if (!z) return 0;
    memcpy(z, rp->body.data, rp->body.len);
    z[rp->body.len] = '\0';
    int has = strstr(z, s) != NULL;
    free(z);
    return has;
}

static size_t services(void) {
    reply rp;
    static const char *const h[] = {"Authorization", AUTH, NULL};
    if (run("GET", "/v2/Services", h, NULL, NULL, 0, 1, &rp)) return (size_t)-1;
    size_t n = 0;
    for (size_t i = 0; i + 5 < rp.body.len; i++)
        n += memcmp(rp.body.data + i, "\"sid\"", 5) == 0;
    cs_buf_free(&rp.body);
    return n;
}

TEST(created_from_chunks_of_any_size) {
    setup();
    static const char *const h[] = {"Authorization", AUTH, "Content-Type",
                                    "application/x-www-form-urlencoded", NULL};
    static const char form[] = "FriendlyName=chunked+name%21";
    for (size_t piece = 1; piece <= sizeof form; piece += 3) {
        reply rp;
        REQUIRE(run("POST", "/v2/Services", h, NULL, form, sizeof form - 1, piece, &rp) == 0);
        CHECK_INT(rp.status, 201);
        CHECK(body_has(&rp, "\"friendly_name\": \"chunked name!\""));
        cs_buf_free(&rp.body);
    }
    CHECK_INT(services(), (sizeof form + 2) / 3);
    teardown();
}

TEST(unauthenticated_is_401_whatever_the_body) {
    setup();
    static const char *const none[] = {NULL};
    static const char *const wrong[] = {"Authorization", "Basic QUM6dG9r", NULL};
    static const char body[200] = "FriendlyName=x";
    for (int i = 0; i < 2; i++) {
        reply rp;
        REQUIRE(run("POST", "/v2/Services", i ? wrong : none, NULL, body, sizeof body, 7, &rp) == 0);
        CHECK_INT(rp.status, 401);
        CHECK(rp.www_auth);
        CHECK(body_has(&rp, "\"code\": 20003"));
        cs_buf_free(&rp.body);
    }
    CHECK_INT(services(), 0);
    teardown();
}

TEST(begin_answers_early_with_expect_or_past_the_drain) {
    setup();
    fake f;
    exchange x;
    exchange_in in = {"POST", "/v2/Services", fake_header, fake_args, &f, NULL};
    static const char *const expect_noauth[] = {"Expect", "100-continue", "Content-Length", "5", NULL};
    static const char *const expect_over[] = {"Authorization", AUTH, "Expect", "100-Continue",
                                              "Content-Length", "101", NULL};
    static const char *const expect_ok[] = {"Authorization", AUTH, "Expect", "100-continue",
                                            "Content-Length", "100", NULL};
    static const char *const huge_noauth[] = {"Content-Length", "16777217", NULL};
    static const char *const drain_noauth[] = {"Content-Length", "16777216", NULL};
    static const char *const bad_cl[] = {"Authorization", AUTH, "Content-Length", "1x", NULL};
    struct {
        const char *const *h;
        exchange_next want;
        unsigned status;
    } cases[] = {
        {expect_noauth, EXCHANGE_REPLY, 401}, {expect_over, EXCHANGE_REPLY, 413},
        {expect_ok, EXCHANGE_BODY, 0},        {huge_noauth, EXCHANGE_REPLY, 401},
        {drain_noauth, EXCHANGE_BODY, 401},   {bad_cl, EXCHANGE_REPLY, 413},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f.headers = cases[i].h;
        f.args = NULL;
        CHECK_INT(exchange_begin(&sv, &x, &in), cases[i].want);
        if (cases[i].status) {
            reply rp;
            memset(&rp, 0, sizeof rp);
            cs_buf_init(&rp.body, NULL);
            exchange_reply(&sv, &x, &in, &rp);
            CHECK_INT(rp.status, cases[i].status);
            cs_buf_free(&rp.body);
        }
        exchange_free(&x);
    }
    teardown();
}

TEST(a_refused_body_is_dropped_and_cut_off_past_the_drain) {
    setup();
    static const char *const none[] = {"Transfer-Encoding", "chunked", NULL};
    static const char *const ok[] = {"Authorization", AUTH, "Transfer-Encoding", "chunked", NULL};
    fake f = {none, NULL};
    exchange_in in = {"POST", "/v2/Services", fake_header, fake_args, &f, NULL};
    static char piece[1 << 16];
    memset(piece, 'a', sizeof piece);
    for (int authed = 0; authed < 2; authed++) {
        f.headers = authed ? ok : none;
        exchange x;
        REQUIRE(exchange_begin(&sv, &x, &in) == EXCHANGE_BODY);
        size_t sent = 0;
        exchange_next nx = EXCHANGE_BODY;
        while (nx == EXCHANGE_BODY && sent < ((size_t)64 << 20)) {
            nx = exchange_body(&x, piece, sizeof piece);
            sent += sizeof piece;
            CHECK(x.body == NULL && x.len == 0); /* nothing kept */
        }
        CHECK_INT(nx, EXCHANGE_CLOSE);
        CHECK(sent > EXCHANGE_DRAIN && sent <= EXCHANGE_DRAIN + sizeof piece);
        exchange_free(&x);
    }
    teardown();
}

TEST(limits_by_route_and_the_error_order) {
    setup();
    static const char *const h[] = {"Authorization", AUTH, "Content-Type", "image/png", NULL};
    static char big[600];
    memset(big, 'z', sizeof big);
    reply rp;
    /* over --max-body (100): 413 before the route's 404 */
    REQUIRE(run("POST", "/v2/Nowhere", h, NULL, big, 101, 10, &rp) == 0);
    CHECK_INT(rp.status, 413);
    cs_buf_free(&rp.body);
    /* a media upload is held to the media cap (1000) instead */
    static const char *const fh[] = {"Authorization", AUTH, NULL};
    REQUIRE(run("POST", "/v2/Services", fh, NULL, "FriendlyName=m", 14, 14, &rp) == 0);
    REQUIRE(rp.status == 201);
    char url[80];
    snprintf(url, sizeof url, "/v1/Services/%.34s/Media", strstr((char *)rp.body.data, "IS"));
    cs_buf_free(&rp.body);
    static const char *const args[] = {"Filename", "a%20b.png", NULL};
    REQUIRE(run("POST", url, h, args, big, sizeof big, 64, &rp) == 0);
    CHECK_INT(rp.status, 201);
    CHECK(body_has(&rp, "\"size\": 600"));
    CHECK(body_has(&rp, "\"filename\": \"a b.png\""));
    cs_buf_free(&rp.body);
    REQUIRE(run("POST", url, h, args, big, 101, 64, &rp) == 0);
    CHECK_INT(rp.status, 201);
    cs_buf_free(&rp.body);
    /* query before form, form before route */
    static const char *const badq[] = {"PageSize", "%zz", NULL};
    REQUIRE(run("POST", "/v2/Nowhere", fh, badq, "a=%zz", 5, 2, &rp) == 0);
    CHECK_INT(rp.status, 400);
    CHECK(body_has(&rp, "Malformed query string"));
    cs_buf_free(&rp.body);
    REQUIRE(run("POST", "/v2/Nowhere", fh, NULL, "a=%zz", 5, 2, &rp) == 0);
    CHECK_INT(rp.status, 400);
    CHECK(body_has(&rp, "Malformed form-encoded body"));
    cs_buf_free(&rp.body);
    /* headers the transport flagged come before authentication */
    fake f = {NULL, NULL};
    exchange_in in = {"GET", "/v2/Services", fake_header, fake_args, &f,
                      "Conflicting Content-Length headers"};
    exchange x;
    CHECK_INT(exchange_begin(&sv, &x, &in), EXCHANGE_REPLY);
    memset(&rp, 0, sizeof rp);
    cs_buf_init(&rp.body, NULL);
    exchange_reply(&sv, &x, &in, &rp);
    CHECK_INT(rp.status, 400);
    CHECK(body_has(&rp, "Conflicting Content-Length headers"));
    cs_buf_free(&rp.body);
    exchange_free(&x);
    teardown();
}

TEST(media_upload_route_is_that_path_only) {
    CHECK(exchange_is_media_upload("POST", "/v1/Services/ISx/Media"));
    CHECK(!exchange_is_media_upload("GET", "/v1/Services/ISx/Media"));
    CHECK(!exchange_is_media_upload("POST", "/v1/Services//Media")); /* 3 segments */
    CHECK(!exchange_is_media_upload("POST", "/v1/Services/ISx/Media/ME1"));
    CHECK(!exchange_is_media_upload("POST", "/v1/Services/ISx/Channels"));
    CHECK(!exchange_is_media_upload("POST", "/v2/Services/ISx/Media"));
    CHECK(!exchange_is_media_upload("POST", "/v1/Services/a/b/Media"));
    /* as the router reads paths: empty segments skipped, each decoded */
    CHECK(exchange_is_media_upload("POST", "/v1/Services/ISx/Media/"));
    CHECK(exchange_is_media_upload("POST", "//v1//Services/ISx/Media"));
    CHECK(exchange_is_media_upload("POST", "/%761/Services/ISx/M%65dia"));
    CHECK(!exchange_is_media_upload("POST", "/v1/services/ISx/Media"));
    CHECK(!exchange_is_media_upload("POST", "/v1/Services/ISx/Media%"));
}

static const check_test TESTS[] = {
    T(created_from_chunks_of_any_size),
    T(unauthenticated_is_401_whatever_the_body),
    T(begin_answers_early_with_expect_or_past_the_drain),
    T(a_refused_body_is_dropped_and_cut_off_past_the_drain),
    T(limits_by_route_and_the_error_order),
    T(media_upload_route_is_that_path_only),
};

CHECK_MAIN(TESTS)
