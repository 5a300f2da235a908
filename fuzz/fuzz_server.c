/* Hostile HTTP requests through the server's request handling, in process.
 *
 * Each input is decoded into a short sequence of requests (method, raw path,
 * query string, headers, body cut into chunks) run through exchange_run, the
 * same code libmicrohttpd's handler calls (server/exchange.c), against one
 * server context per input: a real store in memory with a fixed seed and a
 * fixed clock (the --seed / --clock fixture, with --test-endpoints), the
 * media byte store, no --data-dir, no webhook worker, no sockets, no
 * threads. The context is made anew for every input and freed after it, so
 * inputs are independent and nothing grows across runs.
 *
 * Paths are built from fragments: the route words, SIDs the store issued
 * earlier in the same input (read back from the replies, sometimes with
 * their letter case flipped or cut short), unique names, and raw bytes.
 * Query parameters and form fields come from pools of the API's names and
 * values (and the page tokens the replies handed out), or are raw bytes.
 * Headers: Authorization (the right credentials, wrong ones, garbage),
 * Content-Type, Content-Length (right, wrong, huge, given twice),
 * X-Twilio-Webhook-Enabled, Expect, Transfer-Encoding.
 *
 * Checks after every request:
 * - exchange_run answers (no input is long enough to be cut off);
 * - the status is one a request can get without an allocation failure
 *   (200, 201, 204, 400, 401, 404, 405, 409, 413), a 401 asks for
 *   credentials, a 405 names the allowed methods;
 * - the harness's own good credentials are never refused, its bad ones
 *   always are (unless the headers were malformed: 400 first);
 * - a reply the server wrote says application/json and is valid JSON
 *   (cs__json_valid); a 204 has no body; media content is the bytes
 *   uploaded for that SID in this input, byte for byte;
 * - a refused request (not 2xx) and a GET commit nothing (the store's
 *   commit count);
 * - cs_store_check passes.
 * ASan, UBSan and LeakSanitizer (libFuzzer checks leaks per input) do the
 * rest. */
#include "fuzz.h"
#include "fixture.h"
#include "metrics.h"
#include "server.h"
#include "text.h"

#include <string.h>
#include <strings.h>

#define ACCOUNT "AC0123456789abcdef0123456789abcdef"
#define TOKEN "0123456789abcdef0123456789abcdef"
#define MAX_REQUESTS 16
#define MAX_BODY 2048 /* harness-built bodies (--max-body below is 600) */
#define POOL 8

/* ---- the input ----------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static unsigned u8(rd *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

/* Up to want bytes of the input (fewer at its end). */
static size_t take(rd *r, size_t want, const uint8_t **out) {
    if (want > r->n) want = r->n;
    *out = r->p;
    r->p += want;
    r->n -= want;
    return want;
}

/* ---- a growing string ---------------------------------------------------- */

typedef struct sb {
    char *p;
    size_t len, cap;
} sb;

static void sb_addn(sb *s, const void *d, size_t n) {
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->len + n + 1) cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q) abort();
        s->p = q;
        s->cap = cap;
    }
    if (n) memcpy(s->p + s->len, d, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sb_add(sb *s, const char *z) { sb_addn(s, z, strlen(z)); }

/* Raw bytes from the input, without the ones the transport cannot hand
 * over in that place (NUL anywhere but a body; CR, LF; in a path also
 * '?', ' ' and '#'; in a query also '#', ' '). */
static void sb_raw(sb *s, const uint8_t *d, size_t n, const char *drop) {
    for (size_t i = 0; i < n; i++)
        if (d[i] && d[i] != '\r' && d[i] != '\n' && !strchr(drop, d[i]))
            sb_addn(s, &d[i], 1);
}

/* Percent-encodes everything but unreserved characters. */
static void sb_enc(sb *s, const char *z, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)z[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
            c == '~') {
            sb_addn(s, &z[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_addn(s, e, 3);
        }
    }
}

/* ---- what the replies taught the harness --------------------------------- */

enum { K_IS, K_CH, K_IM, K_ME, K_N };
static const char *const kind_prefix[K_N] = {"IS", "CH", "IM", "ME"};

typedef struct learned {
    char sid[K_N][POOL][CS_SID_BUFSZ];
    size_t nsid[K_N];
    char token[POOL][96];
    size_t ntoken;
    /* media uploaded in this input: SID, bytes */
    char media_sid[POOL][CS_SID_BUFSZ];
    char *media_bytes[POOL];
    size_t media_len[POOL];
    size_t nmedia;
} learned;

/* A plain loop, not memcmp: libFuzzer intercepts memcmp and records every
 * call's bytes, which made scanning the replies a third of the run time. */
static int same(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static void learn_sid(learned *l, const char *s) {
    for (int k = 0; k < K_N; k++) {
        if (!same(s, kind_prefix[k], 2)) continue;
        for (size_t i = 0; i < l->nsid[k] && i < POOL; i++)
            if (same(l->sid[k][i], s, 34)) return;
        memcpy(l->sid[k][l->nsid[k] % POOL], s, 34);
        l->sid[k][l->nsid[k] % POOL][34] = '\0';
        l->nsid[k]++;
        return;
    }
}

/* The SIDs and page tokens in a JSON reply the server wrote. */
static void learn(learned *l, const char *b, size_t n) {
    static const char sid_key[] = "sid\": \"";
    static const char tok_key[] = "PageToken=";
    for (size_t i = 0; i + 7 + 34 <= n; i++)
        if (b[i] == 's' && same(b + i, sid_key, 7)) learn_sid(l, b + i + 7);
    for (size_t i = 0; i + 10 < n; i++) {
        if (b[i] != 'P' || !same(b + i, tok_key, 10)) continue;
        size_t j = i + 10, k = 0;
        char t[96];
        while (j < n && k < sizeof t - 1 && b[j] != '"' && b[j] != '&')
            t[k++] = b[j++];
        t[k] = '\0';
        memcpy(l->token[l->ntoken % POOL], t, k + 1);
        l->ntoken++;
    }
}

static const char *pick_sid(learned *l, int kind, unsigned b) {
    size_t n = l->nsid[kind] < POOL ? l->nsid[kind] : POOL;
    if (!n) return NULL;
    return l->sid[kind][b % n];
}

/* A SID of the pool, as issued, case-flipped, cut short or with a wrong
 * prefix; or a well-formed SID nobody issued. */
static void sb_sid(sb *s, learned *l, int kind, unsigned b) {
    const char *sid = pick_sid(l, kind, b >> 3);
    char t[CS_SID_BUFSZ];
    if (!sid) {
        snprintf(t, sizeof t, "%s0123456789abcdef0123456789abcdef",
                 kind_prefix[kind]);
    } else {
        memcpy(t, sid, sizeof t);
    }
    switch (b & 7) {
    case 5: /* other letter case */
        for (char *c = t; *c; c++)
            *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32
                        : *c >= 'A' && *c <= 'Z' ? *c + 32
                                                 : *c);
        break;
    case 6: t[33] = '\0'; break;                    /* cut short */
    case 7: t[0] = kind_prefix[(kind + 1) % K_N][0]; /* wrong prefix */
        t[1] = kind_prefix[(kind + 1) % K_N][1];
        break;
    default: break;
    }
    sb_add(s, t);
}

/* ---- pools ----------------------------------------------------------------- */

static const char *const methods[] = {"GET",  "POST",    "DELETE", "PUT",
                                      "HEAD", "OPTIONS", "get",    "PATCH"};

static const char *const unique_names[] = {
    "general", "room/1", "CH0123456789abcdef0123456789abcdef", "caf\xc3\xa9",
    "a b", "%", ""};

static const char *const query_keys[] = {"PageSize", "Page", "PageToken",
                                         "Order",    "Type", "Filename"};
static const char *const query_values[] = {
    "0", "1", "2", "3", "50", "1000", "-1", "asc", "desc", "public", "private",
    "x.png", "", "01", "9999999999999999999999"};

static const char *const form_keys[] = {
    "FriendlyName", "UniqueName", "Attributes", "Type", "DateCreated",
    "DateUpdated", "CreatedBy", "From", "Body", "MediaSid", "LastUpdatedBy",
    "PreWebhookUrl", "PostWebhookUrl", "WebhookMethod", "WebhookFilters",
    "PreWebhookRetryCount", "PostWebhookRetryCount", "Now", "Step", "Fixture"};
static const char *const form_values[] = {
    "hello", "", "{\"a\": [1, 2.5e3, null]}", "{bad", "public", "private",
    "2020-01-01T00:00:00Z", "2016-03-24T20:37:57.000Z", "9999-12-31T23:59:59Z",
    "not a date", "alice", "caf\xc3\xa9 \xf0\x9f\x98\x80", "\xff\xfe", "true",
    "false", "https://example.com/hook", "POST", "GET", "onMessageSent",
    "onChannelAdded", "3", "-1", "5m", "1d", "x"};

static const char *const content_types[] = {
    "application/x-www-form-urlencoded", "image/png", "application/json",
    "text/plain; charset=utf-8", ""};

/* ---- building requests ----------------------------------------------------- */

static void build_path(sb *path, rd *r, learned *l) {
    unsigned nfrag = 1 + u8(r) % 8;
    for (unsigned i = 0; i < nfrag; i++) {
        unsigned f = u8(r);
        switch (f % 20) {
        case 0: sb_add(path, "/v2/Services"); break;
        case 1: sb_add(path, "/v1/Services"); break;
        case 2: sb_add(path, "/Channels"); break;
        case 3: sb_add(path, "/Messages"); break;
        case 4: sb_add(path, "/Media"); break;
        case 5: sb_add(path, "/Content"); break;
        case 6: case 7: sb_add(path, "/"); sb_sid(path, l, K_IS, u8(r)); break;
        case 8: sb_add(path, "/"); sb_sid(path, l, K_CH, u8(r)); break;
        case 9: sb_add(path, "/"); sb_sid(path, l, K_IM, u8(r)); break;
        case 10: sb_add(path, "/"); sb_sid(path, l, K_ME, u8(r)); break;
        case 11: { /* a unique name, encoded */
            const char *u = unique_names[u8(r) % 7];
            sb_add(path, "/");
            sb_enc(path, u, strlen(u));
            break;
        }
        case 12: { /* raw bytes */
            const uint8_t *d;
            size_t n = take(r, u8(r) % 32, &d);
            sb_raw(path, d, n, "? #");
            break;
        }
        case 13: sb_add(path, "/_chatstore"); break;
        case 14: sb_add(path, "/reset"); break;
        case 15: sb_add(path, "/clock"); break;
        case 16: sb_add(path, "/stats"); break;
        case 17: sb_add(path, "//"); break;
        case 18: sb_add(path, "/v%32"); break; /* "v2", encoded */
        default: /* 19, 39, ...: a bad escape, or the operators' routes */
            sb_add(path, (f / 20) % 3 == 0 ? "/%zz" : (f / 20) % 3 == 1 ? "/healthz" : "/metrics");
            break;
        }
    }
}

static void build_query(sb *q, rd *r, learned *l) {
    unsigned mode = u8(r);
    if (mode % 4 == 0) return;
    if (mode % 4 == 3) { /* raw */
        const uint8_t *d;
        size_t n = take(r, u8(r) % 48, &d);
        sb_raw(q, d, n, " #");
        return;
    }
    unsigned np = 1 + (mode >> 2) % 4;
    for (unsigned i = 0; i < np; i++) {
        if (i) sb_add(q, "&");
        unsigned k = u8(r), v = u8(r);
        sb_add(q, query_keys[k % 6]);
        if (k & 0x80) continue; /* no '=' */
        sb_add(q, "=");
        if (v % 4 == 0 && l->ntoken) {
            const char *t = l->token[(v >> 2) % (l->ntoken < POOL ? l->ntoken : POOL)];
            sb_add(q, t);
            if (v & 0x40) q->len--, q->p[q->len] = '\0'; /* a byte short */
        } else if (v % 4 == 1) {
            const uint8_t *d;
            size_t n = take(r, u8(r) % 16, &d);
            sb_raw(q, d, n, " #&");
        } else {
            const char *z = query_values[(v >> 2) % 15];
            sb_enc(q, z, strlen(z));
        }
    }
}

static void build_form(sb *b, rd *r, learned *l) {
    unsigned nf = u8(r) % 7;
    for (unsigned i = 0; i < nf; i++) {
        if (i) sb_add(b, "&");
        unsigned k = u8(r), v = u8(r);
        if (k % 24 >= 20) {
            const uint8_t *d;
            size_t n = take(r, u8(r) % 16, &d);
            sb_addn(b, d, n); /* raw key, NUL bytes and all */
        } else {
            sb_add(b, form_keys[k % 24]);
        }
        if (k & 0x80) continue;
        sb_add(b, "=");
        switch (v % 8) {
        case 0: { /* raw value */
            const uint8_t *d;
            size_t n = take(r, u8(r) % 64, &d);
            sb_addn(b, d, n);
            break;
        }
        case 1: { /* a SID */
            sb sid = {0};
            sb_sid(&sid, l, (int)((v >> 3) % K_N), u8(r));
            sb_add(b, sid.p);
            free(sid.p);
            break;
        }
        case 2: {
            const char *u = unique_names[(v >> 3) % 7];
            sb_enc(b, u, strlen(u));
            break;
        }
        case 3: { /* a long value: names and bodies have limits */
            unsigned n = u8(r) * 8u;
            for (unsigned j = 0; j < n && b->len < MAX_BODY; j++)
                sb_add(b, (v & 8) ? "a" : "%C3%A9");
            break;
        }
        default: {
            const char *z = form_values[(v >> 3) % 25];
            sb_enc(b, z, strlen(z));
            break;
        }
        }
    }
}

static void build_body(sb *b, rd *r, learned *l) {
    unsigned mode = u8(r);
    switch (mode % 4) {
    case 0: break; /* none */
    case 1: build_form(b, r, l); break;
    case 2: { /* raw bytes */
        const uint8_t *d;
        size_t n = take(r, u8(r), &d);
        sb_addn(b, d, n);
        break;
    }
    default: { /* a pattern repeated: reaches the limits cheaply */
        const uint8_t *d;
        size_t n = take(r, 1 + u8(r) % 8, &d);
        size_t total = (size_t)u8(r) * 8u + (mode >> 2);
        for (size_t i = 0; n && i < total; i++) sb_addn(b, &d[i % n], 1);
        break;
    }
    }
}

static void b64(sb *s, const char *in, size_t n) {
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        char o[4] = {t[v >> 18], t[(v >> 12) & 63],
                     i + 1 < n ? t[(v >> 6) & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        sb_addn(s, o, 4);
    }
}

/* Authorization: *expect is 1 (must pass), 0 (must be refused) or -1. */
static int build_auth(sb *h, rd *r, int *expect) {
    unsigned k = u8(r) % 8;
    static const char good[] = ACCOUNT ":" TOKEN;
    switch (k) {
    case 0: sb_add(h, "Basic "); b64(h, good, sizeof good - 1); *expect = 1; break;
    case 1: *expect = 0; return 0; /* absent */
    case 2: sb_add(h, "Basic "); b64(h, ACCOUNT ":tok", sizeof ACCOUNT + 3);
        *expect = 0; break;
    case 3: { /* right token, another account */
        static const char other[] = "AC0123456789abcdef0123456789abcdee:" TOKEN;
        sb_add(h, "Basic ");
        b64(h, other, sizeof other - 1);
        *expect = 0;
        break;
    }
    case 4: sb_add(h, "bAsIc "); b64(h, good, sizeof good - 1); *expect = 1; break;
    case 5: { /* a NUL inside the decoded credentials */
        static const char nul[] = ACCOUNT ":" TOKEN "\0x";
        sb_add(h, "Basic ");
        b64(h, nul, sizeof nul - 1);
        *expect = 0;
        break;
    }
    case 6: { /* "Basic " and raw bytes */
        const uint8_t *d;
        size_t n = take(r, u8(r) % 80, &d);
        sb_add(h, "Basic ");
        sb_raw(h, d, n, "");
        *expect = -1;
        break;
    }
    default: { /* raw bytes */
        const uint8_t *d;
        size_t n = take(r, u8(r) % 24, &d);
        sb_raw(h, d, n, "");
        *expect = -1;
        break;
    }
    }
    return 1;
}

/* ---- the transport's side ---------------------------------------------------- */

#define MAX_HEADERS 8

typedef struct fake {
    const char *name[MAX_HEADERS];
    sb val[MAX_HEADERS];
    size_t n;
    const char *query; /* raw, without '?' */
} fake;

static const char *fake_header(void *ctx, const char *name) {
    const fake *f = ctx;
    for (size_t i = 0; i < f->n; i++) /* the first of that name */
        if (strcasecmp(f->name[i], name) == 0) return f->val[i].p ? f->val[i].p : "";
    return NULL;
}

/* As libmicrohttpd splits a query (kept raw): at '&', then at the first '='. */
static void fake_args(void *ctx, void (*add)(void *, const char *, const char *),
                      void *sink) {
    const fake *f = ctx;
    if (!f->query || !*f->query) return;
    char *q = fz_dup(f->query, strlen(f->query) + 1);
    for (char *p = q; p;) {
        char *amp = strchr(p, '&');
        if (amp) *amp = '\0';
        char *eq = strchr(p, '=');
        if (eq) *eq = '\0';
        if (*p || eq) add(sink, p, eq ? eq + 1 : NULL);
        p = amp ? amp + 1 : NULL;
    }
    free(q);
}

static sb *add_header(fake *f, const char *name) {
    f->name[f->n] = name;
    return &f->val[f->n++];
}

/* ---- one input ---------------------------------------------------------------- */

static int status_ok(unsigned s) {
    static const unsigned ok[] = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (s == ok[i]) return 1;
    return 0;
}

static uint64_t commits(const server *sv) {
    cs_store_stats st;
    cs_store_stats_get(sv->store, &st);
    return st.commits;
}

/* Media content replies: the bytes uploaded for the SID in the path. */
static void check_media_content(const learned *l, const char *path,
                                const reply *rp) {
    const char *me = strstr(path, "/Media/ME");
    if (!me || !strstr(me, "/Content")) return;
    /* newest first: a reset store issues the same SIDs again */
    size_t n = l->nmedia < POOL ? l->nmedia : POOL;
    for (size_t j = 0; j < n; j++) {
        size_t i = (l->nmedia - 1 - j) % POOL;
        if (strncmp(me + 7, l->media_sid[i], 34) != 0) continue;
        FZ_CHECK(rp->body.len == l->media_len[i] &&
                     (!rp->body.len || memcmp(rp->body.data, l->media_bytes[i],
                                              rp->body.len) == 0),
                 "media content of %s: %zu bytes, uploaded %zu", l->media_sid[i],
                 rp->body.len, l->media_len[i]);
        return;
    }
}

/* FUZZ_TRACE=1: one line per request (method, path, status, the reply's
 * start), for reading what a seed or a finding does. */
static int trace;

static void one_request(server *sv, rd *r, learned *l) {
    fake f;
    memset(&f, 0, sizeof f);
    sb path = {0}, query = {0}, body = {0};
    unsigned mb = u8(r);
    const char *method;
    char raw_method[16];
    if (mb >= 0xf0) { /* raw method bytes */
        const uint8_t *d;
        size_t n = take(r, 1 + mb % 8, &d), k = 0;
        for (size_t i = 0; i < n; i++)
            if (d[i] > ' ' && d[i] < 0x7f) raw_method[k++] = (char)d[i];
        raw_method[k] = '\0';
        method = raw_method;
    } else {
        /* GET, POST and DELETE are what the API takes: most requests */
        method = mb % 16 < 13 ? methods[mb % 3] : methods[3 + mb % 5];
    }
    build_path(&path, r, l);
    if (!path.p) sb_add(&path, "");
    build_query(&query, r, l);
    unsigned hflags = u8(r);
    int auth_expect = 0;
    sb *ah = add_header(&f, "Authorization");
    if (!build_auth(ah, r, &auth_expect)) f.n--;
    build_body(&body, r, l);
    if (hflags & 1) {
        unsigned c = u8(r);
        sb *v = add_header(&f, (c & 0x80) ? "content-type" : "Content-Type");
        if (c % 8 < 5) {
            sb_add(v, content_types[c % 8]);
        } else if (c % 8 == 5) { /* longer than the reply's ct_buf */
            sb_add(v, "image/");
            for (int i = 0; i < 300; i++) sb_add(v, "x");
        } else {
            const uint8_t *d;
            size_t n = take(r, u8(r) % 40, &d);
            sb_raw(v, d, n, "");
            if (!v->p) sb_add(v, "");
        }
    }
    const char *malformed = NULL;
    if (hflags & 2) {
        unsigned c = u8(r);
        char num[48];
        sb *v = add_header(&f, "Content-Length");
        switch (c % 8) {
        case 0: case 1: snprintf(num, sizeof num, "%zu", body.len); break;
        case 2: snprintf(num, sizeof num, "%zu", body.len + 1); break;
        case 3: snprintf(num, sizeof num, "%zu", body.len ? body.len - 1 : 0); break;
        case 4: snprintf(num, sizeof num, "%u", 16777216u + (c >> 3)); break;
        case 5: snprintf(num, sizeof num, "99999999999999999999"); break;
        case 6: snprintf(num, sizeof num, "%u", (c >> 3) * 100u); break;
        default: snprintf(num, sizeof num, "1x"); break;
        }
        sb_add(v, num);
        if (c & 0x80) { /* given twice: conflicting unless equal */
            sb *w = add_header(&f, "Content-Length");
            snprintf(num, sizeof num, "%zu", body.len);
            sb_add(w, num);
            if (strcmp(v->p, w->p) != 0)
                malformed = "Conflicting Content-Length headers";
        }
    }
    if (hflags & 4) {
        static const char *const wh[] = {"true", "false", "TRUE", "", "yes"};
        sb_add(add_header(&f, "X-Twilio-Webhook-Enabled"), wh[u8(r) % 5]);
    }
    if (hflags & 8) {
        static const char *const ex[] = {"100-continue", "100-Continue",
                                         "102-processing"};
        sb_add(add_header(&f, "Expect"), ex[u8(r) % 3]);
    }
    if (hflags & 16) sb_add(add_header(&f, "Transfer-Encoding"), "chunked");
    f.query = query.p;

    /* The body in chunks, cut where the input says. */
    const char *chunks[6];
    size_t lens[6], nch = 0, at = 0;
    unsigned ncut = (hflags >> 5) % 6;
    for (unsigned i = 0; i < ncut && at < body.len; i++) {
        size_t n = u8(r) % (body.len - at + 1);
        chunks[nch] = body.p + at;
        lens[nch++] = n; /* empty chunks too */
        at += n;
    }
    chunks[nch] = body.p ? body.p + at : "";
    lens[nch++] = body.len - at;

    exchange_in in = {method, path.p, fake_header, fake_args, &f, malformed};
    reply rp;
    memset(&rp, 0, sizeof rp);
    cs_buf_init(&rp.body, NULL);
    uint64_t before = commits(sv);
    int rc = exchange_run(sv, &in, chunks, lens, nch, &rp);
    if (trace)
        fprintf(stderr, "%s %s?%s auth %d body %zu in %zu: %u %.*s\n", method,
                path.p, query.p ? query.p : "", auth_expect, body.len, nch,
                rp.status, (int)(rp.body.len < 160 ? rp.body.len : 160),
                rp.body.len ? (const char *)rp.body.data : "");
    FZ_CHECK(rc == 0, "%s %s: closed without a reply", method, path.p);
    FZ_CHECK(status_ok(rp.status), "%s %s: status %u", method, path.p, rp.status);
    if (malformed) FZ_CHECK(rp.status == 400, "malformed headers: %u", rp.status);
    /* /healthz needs no credentials; a method other than GET on /healthz or
     * /metrics is 405 before them (GET /metrics asks for them here) */
    int ops = metrics_route_of(path.p);
    int open_route = ops == ROUTE_HEALTHZ ||
                     (ops == ROUTE_METRICS && strcmp(method, "GET") != 0);
    if (malformed) {
    } else if (auth_expect == 0 && !open_route)
        FZ_CHECK(rp.status == 401, "bad credentials: %u", rp.status);
    else if (auth_expect == 1) FZ_CHECK(rp.status != 401, "good credentials: 401");
    FZ_CHECK((rp.status == 401) == (rp.www_auth != 0), "WWW-Authenticate on %u",
             rp.status);
    FZ_CHECK((rp.status == 405) == (rp.allow != NULL), "Allow on %u", rp.status);
    if (rp.status == 204) FZ_CHECK(rp.body.len == 0, "204 with a body");
    if (ops == ROUTE_METRICS && rp.status == 200) {
        FZ_CHECK(rp.content_type && strncmp(rp.content_type, "text/plain; version=0.0.4", 25) == 0,
                 "/metrics: %s", rp.content_type ? rp.content_type : "(none)");
    } else if (rp.content_type != rp.ct_buf) {
        /* written by the server (not media content) */
        FZ_CHECK(rp.status == 204 || (rp.content_type &&
                 strcmp(rp.content_type, "application/json") == 0),
                 "%s %s: %u without application/json", method, path.p, rp.status);
        if (rp.status != 204)
            FZ_CHECK(cs__json_valid((const char *)rp.body.data, rp.body.len),
                     "%s %s: %u: reply is not JSON: %.*s", method, path.p,
                     rp.status, (int)rp.body.len, (const char *)rp.body.data);
        if (rp.status < 300) learn(l, (const char *)rp.body.data, rp.body.len);
    } else {
        FZ_CHECK(rp.status == 200, "media content with %u", rp.status);
        check_media_content(l, path.p, &rp);
    }
    uint64_t after = commits(sv);
    if (rp.status >= 300 || strcmp(method, "GET") == 0)
        FZ_CHECK(after == before, "%s %s: %u committed %llu change(s)", method,
                 path.p, rp.status, (unsigned long long)(after - before));
    /* A media upload that succeeded: remember its bytes. */
    if (rp.status == 201 && exchange_is_media_upload(method, path.p)) {
        const char *me = strstr((const char *)rp.body.data, "\"sid\": \"ME");
        FZ_CHECK(me != NULL, "media upload without a SID");
        size_t i = l->nmedia++ % POOL;
        memcpy(l->media_sid[i], me + 8, 34);
        l->media_sid[i][34] = '\0';
        free(l->media_bytes[i]);
        l->media_bytes[i] = fz_dup(body.p ? body.p : "", body.len);
        l->media_len[i] = body.len;
    }
    cs_err ce = cs_store_check(sv->store);
    FZ_CHECK(ce == CS_OK, "cs_store_check: %s after %s %s", cs_err_name(ce),
             method, path.p);
    if (rp.media) { /* media content borrows the blob's bytes (SR22) */
        media_store_release(rp.media);
        rp.body.data = NULL;
        rp.body.len = rp.body.cap = 0;
    }
    cs_buf_free(&rp.body);
    free(path.p);
    free(query.p);
    free(body.p);
    for (size_t i = 0; i < f.n; i++) free(f.val[i].p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        const char *t = getenv("FUZZ_TRACE");
        trace = t && *t == '1';
        init = 1;
    }
    server sv;
    memset(&sv, 0, sizeof sv);
    sv.cfg.account_sid = ACCOUNT;
    sv.cfg.auth_token = TOKEN;
    sv.cfg.base_url = "http://127.0.0.1:8080";
    sv.cfg.max_request = 600;
    sv.cfg.media_cap = 1500;
    fixture_config fxc;
    memset(&fxc, 0, sizeof fxc);
    fxc.use_seed = 1;
    fxc.seed = 42;
    fxc.fixed_clock = 1;
    fxc.clock_start = 1600000000;
    fxc.clock_step = 1;
    fxc.test_endpoints = 1;
    sv.cfg.fixture = &fxc;
    cs_options o = CS_OPTIONS_INIT;
    o.account_sid = ACCOUNT;
    o.base_url = sv.cfg.base_url;
    sv.fx = fixture_new(&fxc, &o);
    FZ_CHECK(sv.fx != NULL, "fixture_new");
    FZ_CHECK(cs_store_new(&o, &sv.store) == CS_OK, "cs_store_new");
    sv.media = media_store_new(sv.cfg.media_cap);
    FZ_CHECK(sv.media != NULL, "media_store_new");
    sv.metrics = metrics_new();
    FZ_CHECK(sv.metrics != NULL, "metrics_new");
    sv.cfg.metrics_auth = 1;
    /* small quotas (403 / 20403 within an input's 16 requests), and the
     * media lifecycle's observer, as server_start sets them; --media-ttl
     * stays 0: an expiry would commit during a GET */
    cs_limits lim = *cs_store_limits(sv.store);
    lim.max_services = 3;
    lim.max_channels = 5;
    lim.max_messages = 8;
    FZ_CHECK(cs_store_set_limits(sv.store, &lim) == CS_OK, "cs_store_set_limits");
    FZ_CHECK(media_observe(&sv) == 0, "media_observe");
    FZ_CHECK(fixture_start(sv.fx, &sv) == 0, "fixture_start");

    learned *l = calloc(1, sizeof *l);
    if (!l) abort();
    rd r = {data, size};
    for (int i = 0; i < MAX_REQUESTS && r.n; i++) one_request(&sv, &r, l);

    for (size_t i = 0; i < POOL; i++) free(l->media_bytes[i]);
    free(l);
    media_store_free(sv.media);
    cs_store_free(sv.store);
    metrics_free(sv.metrics);
    fixture_free(sv.fx);
    return 0;
}
