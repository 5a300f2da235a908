/* Shared helpers of the test programs (all static, each program takes what
 * it uses).
 *
 * - A fixture: a store with a fixed seed and a controllable clock (tu_now),
 *   one service and one public channel with unique_name "general".
 * - Macros that run the debug invariant checker after every mutation and
 *   check errors through cs_err_http_status / cs_err_twilio_code.
 * - Render-to-string helpers, an exact expected-message builder, a full
 *   store dump (for "a failed call leaves the store unchanged"), an event
 *   recorder for observers, a failing allocator, and a tiny follower for
 *   the page URLs of a rendered page (what twilio-node does).
 * - For the durability and allocation-failure tests: a counting allocator
 *   that fails the N-th allocation (once or from then on) and counts live
 *   bytes, a growable memory image usable as the snapshot write and read
 *   callbacks, and a journal hook that keeps every record (and can refuse
 *   records). */
#ifndef CHATSTORE_TESTS_TEST_UTIL_H
#define CHATSTORE_TESTS_TEST_UTIL_H

#include <chatstore.h>

#include "check.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2016-03-24T20:37:57Z, the date of the seed's examples. */
#define TU_T0 INT64_C(1458851877)
#define TU_T0_STR "2016-03-24T20:37:57Z"
#define TU_BASE "https://chat.twilio.com"
#define TU_SEED UINT64_C(42)

#define S(x) cs_str_c(x)

/* ---- clock ---------------------------------------------------------------- */

static int64_t tu_now = TU_T0;

static inline int64_t tu_clock(void *ctx) {
    (void)ctx;
    return tu_now;
}

/* ---- assertion macros -------------------------------------------------- */

/* The debug invariant checker; run after every mutation. */
#define CHECK_STORE(s)                                                        \
    do {                                                                      \
        cs_err ce_ = cs_store_check(s);                                       \
        if (ce_ != CS_OK)                                                     \
            CHECK_FAIL_("cs_store_check: %s", cs_err_name(ce_));              \
    } while (0)

#define TU_FAIL_ERR_(expr, e)                                                 \
    CHECK_FAIL_("%s -> %s (%d/%d)", #expr, cs_err_name(e),                    \
                cs_err_http_status(e), cs_err_twilio_code(e))

/* Read-only calls. */
#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        cs_err e_ = (expr);                                                   \
        if (e_ != CS_OK) TU_FAIL_ERR_(expr, e_);                              \
    } while (0)

#define REQUIRE_OK(expr)                                                      \
    do {                                                                      \
        cs_err e_ = (expr);                                                   \
        if (e_ != CS_OK) {                                                    \
            TU_FAIL_ERR_(expr, e_);                                           \
            return;                                                           \
        }                                                                     \
    } while (0)

#define TU_CHECK_FAILS_(expr, e_, status, code)                               \
    do {                                                                      \
        if (e_ == CS_OK || cs_err_http_status(e_) != (status) ||              \
            cs_err_twilio_code(e_) != (code))                                 \
            CHECK_FAIL_("%s -> %s (%d/%d), expected %d/%d", #expr,            \
                        cs_err_name(e_), cs_err_http_status(e_),              \
                        cs_err_twilio_code(e_), (int)(status), (int)(code));  \
    } while (0)

/* A call that must fail with this HTTP status and Twilio code. */
#define CHECK_FAILS(expr, status, code)                                       \
    do {                                                                      \
        cs_err ef_ = (expr);                                                  \
        TU_CHECK_FAILS_(expr, ef_, status, code);                             \
    } while (0)

/* Mutations: the store is checked afterwards whatever the outcome. */
#define MUT_OK(s, expr)                                                       \
    do {                                                                      \
        cs_err e_ = (expr);                                                   \
        CHECK_STORE(s);                                                       \
        if (e_ != CS_OK) TU_FAIL_ERR_(expr, e_);                              \
    } while (0)

#define MUT_REQ(s, expr)                                                      \
    do {                                                                      \
        cs_err e_ = (expr);                                                   \
        CHECK_STORE(s);                                                       \
        if (e_ != CS_OK) {                                                    \
            TU_FAIL_ERR_(expr, e_);                                           \
            return;                                                           \
        }                                                                     \
    } while (0)

#define MUT_FAILS(s, expr, status, code)                                      \
    do {                                                                      \
        cs_err ef_ = (expr);                                                  \
        CHECK_STORE(s);                                                       \
        TU_CHECK_FAILS_(expr, ef_, status, code);                             \
    } while (0)

/* Compares a cs_str with a C string (absent counts as a mismatch). */
#define CHECK_CSTR(v, lit) CHECK_MEM((v).ptr, (v).len, (lit))

/* ---- fixture -------------------------------------------------------------- */

#define TU_MAX_MEDIA 32

typedef struct tu_fx {
    cs_store *s;
    char svc[CS_SID_BUFSZ];
    char ch[CS_SID_BUFSZ]; /* channel "general" */
    /* media registered through tu_media, included in tu_dump */
    char media_svc[TU_MAX_MEDIA][CS_SID_BUFSZ];
    char media[TU_MAX_MEDIA][CS_SID_BUFSZ];
    size_t n_media;
} tu_fx;

static inline cs_options tu_options(uint64_t seed) {
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    o.seed = seed;
    o.clock = tu_clock;
    return o;
}

/* Opens a store with these options (clock forced to tu_clock), a service
 * "svc" and a public channel "general". */
static inline bool tu_open_opts(tu_fx *f, const cs_options *opts) {
    memset(f, 0, sizeof *f);
    tu_now = TU_T0;
    cs_options o = *opts;
    o.clock = tu_clock;
    cs_err e = cs_store_new(&o, &f->s);
    if (e != CS_OK) {
        CHECK_FAIL_("cs_store_new: %s", cs_err_name(e));
        return false;
    }
    cs_service_view sv;
    e = cs_service_create(f->s, S("svc"), &sv);
    CHECK_STORE(f->s);
    if (e != CS_OK) {
        CHECK_FAIL_("cs_service_create: %s", cs_err_name(e));
        return false;
    }
    snprintf(f->svc, sizeof f->svc, "%s", sv.sid);
    cs_channel_params cp;
    memset(&cp, 0, sizeof cp);
    cp.unique_name = S("general");
    cp.friendly_name = S("General");
    cs_channel_view cv;
    e = cs_channel_create(f->s, S(f->svc), &cp, &cv);
    CHECK_STORE(f->s);
    if (e != CS_OK) {
        CHECK_FAIL_("cs_channel_create: %s", cs_err_name(e));
        return false;
    }
    snprintf(f->ch, sizeof f->ch, "%s", cv.sid);
    return true;
}

static inline bool tu_open_seed(tu_fx *f, uint64_t seed) {
    cs_options o = tu_options(seed);
    return tu_open_opts(f, &o);
}

static inline bool tu_open(tu_fx *f) { return tu_open_seed(f, TU_SEED); }

static inline void tu_close(tu_fx *f) {
    if (f->s) CHECK_STORE(f->s);
    cs_store_free(f->s);
    f->s = NULL;
}

static inline cs_message_params tu_mp(void) {
    cs_message_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static inline cs_channel_params tu_cp(void) {
    cs_channel_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static inline cs_page_params tu_qp(void) {
    cs_page_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* Creates a text message in channel ch ("general" when NULL); sid_out may
 * be NULL. Returns the error. */
static inline cs_err tu_msg_in(tu_fx *f, const char *ch, const char *body,
                               char *sid_out, int64_t *index_out) {
    cs_message_params p = tu_mp();
    p.body = S(body);
    cs_message_view v;
    cs_err e = cs_message_create(f->s, S(f->svc), S(ch ? ch : f->ch), &p, &v);
    CHECK_STORE(f->s);
    if (e != CS_OK) {
        CHECK_FAIL_("message create: %s", cs_err_name(e));
        return e;
    }
    if (sid_out) snprintf(sid_out, CS_SID_BUFSZ, "%s", v.sid);
    if (index_out) *index_out = v.index;
    return e;
}

static inline cs_err tu_msg(tu_fx *f, const char *body, char *sid_out) {
    return tu_msg_in(f, NULL, body, sid_out, NULL);
}

/* Creates n messages "m<i>" in the general channel. */
static inline bool tu_msgs(tu_fx *f, int n) {
    char body[32];
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "m%d", i);
        if (tu_msg(f, body, NULL) != CS_OK) return false;
    }
    return true;
}

/* Registers a media item in the fixture's service and remembers it. */
static inline cs_err tu_media_in(tu_fx *f, const char *svc, const char *ct,
                                 const char *filename, uint64_t size,
                                 char *sid_out) {
    cs_media_view mv;
    cs_err e = cs_media_create(f->s, S(svc), S(ct), S(filename), size, &mv);
    CHECK_STORE(f->s);
    if (e != CS_OK) {
        CHECK_FAIL_("media create: %s", cs_err_name(e));
        return e;
    }
    if (sid_out) snprintf(sid_out, CS_SID_BUFSZ, "%s", mv.sid);
    if (f->n_media < TU_MAX_MEDIA) {
        snprintf(f->media_svc[f->n_media], CS_SID_BUFSZ, "%s", svc);
        snprintf(f->media[f->n_media], CS_SID_BUFSZ, "%s", mv.sid);
        f->n_media++;
    }
    return e;
}

static inline cs_err tu_media(tu_fx *f, const char *filename, char *sid_out) {
    return tu_media_in(f, f->svc, "application/pdf", filename, 1234, sid_out);
}

/* ---- string builder ------------------------------------------------------- */

typedef struct tu_sb {
    char *p;
    size_t len, cap;
} tu_sb;

static inline void tu_sb_addn(tu_sb *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) abort();
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void tu_sb_add(tu_sb *b, const char *s) {
    tu_sb_addn(b, s, strlen(s));
}

static inline void tu_sb_free(tu_sb *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* A heap string: n copies of unit, then tail (may be NULL). */
static inline char *tu_repeat(const char *head, const char *unit, size_t n,
                              const char *tail) {
    tu_sb b = {NULL, 0, 0};
    tu_sb_add(&b, head ? head : "");
    for (size_t i = 0; i < n; i++) tu_sb_add(&b, unit);
    tu_sb_add(&b, tail ? tail : "");
    return b.p;
}

/* ---- rendering --------------------------------------------------------- */

static inline const char *tu_render_msg(const cs_store *s,
                                        const cs_message_view *v, cs_buf *b) {
    cs_buf_reset(b);
    cs_err e = cs_render_message(s, v, b);
    if (e != CS_OK) {
        CHECK_FAIL_("cs_render_message: %s", cs_err_name(e));
        return "";
    }
    return b->data;
}

static inline const char *tu_render_page(const cs_store *s, cs_page *pg,
                                         cs_buf *b) {
    cs_buf_reset(b);
    cs_err e = cs_render_page(s, pg, b);
    if (e != CS_OK) {
        CHECK_FAIL_("cs_render_page: %s", cs_err_name(e));
        return "";
    }
    return b->data;
}

static inline const char *tu_render_channel(const cs_store *s,
                                            const cs_channel_view *v,
                                            cs_buf *b) {
    cs_buf_reset(b);
    cs_err e = cs_render_channel(s, v, b);
    if (e != CS_OK) {
        CHECK_FAIL_("cs_render_channel: %s", cs_err_name(e));
        return "";
    }
    return b->data;
}

/* Expected message JSON. String fields hold JSON text (quoted, or null). */
typedef struct tu_msg_exp {
    const char *sid, *account_sid, *service_sid, *channel_sid;
    const char *attributes;      /* JSON, e.g. "\"{}\"" */
    const char *date_created, *date_updated;
    const char *last_updated_by; /* JSON: "null" or "\"bob\"" */
    bool was_edited;
    const char *from, *body;     /* JSON */
    long long index;
    const char *media;           /* NULL: text message; else media object */
    const char *base;            /* NULL: TU_BASE */
} tu_msg_exp;

/* The exact rendering of a message, keys in the order of DECISIONS.md. */
static inline char *tu_expect_msg(const tu_msg_exp *x) {
    const char *base = x->base ? x->base : TU_BASE;
    size_t n = 2048 + strlen(x->attributes) + strlen(x->body) +
               strlen(x->from) + strlen(x->last_updated_by) +
               (x->media ? strlen(x->media) : 0);
    char *out = malloc(n);
    if (!out) abort();
    snprintf(out, n,
             "{\"sid\": \"%s\", \"account_sid\": \"%s\", \"attributes\": %s, "
             "\"service_sid\": \"%s\", \"to\": \"%s\", \"channel_sid\": \"%s\", "
             "\"date_created\": \"%s\", \"date_updated\": \"%s\", "
             "\"last_updated_by\": %s, \"was_edited\": %s, \"from\": %s, "
             "\"body\": %s, \"index\": %lld, \"type\": \"%s\", \"media\": %s, "
             "\"url\": \"%s/v2/Services/%s/Channels/%s/Messages/%s\"}",
             x->sid, x->account_sid, x->attributes, x->service_sid,
             x->channel_sid, x->channel_sid, x->date_created, x->date_updated,
             x->last_updated_by, x->was_edited ? "true" : "false", x->from,
             x->body, x->index, x->media ? "media" : "text",
             x->media ? x->media : "null", base, x->service_sid,
             x->channel_sid, x->sid);
    return out;
}

/* Exact "meta" object of a page. URLs are complete JSON values ("null" or
 * a quoted URL). */
static inline void tu_expect_meta(char *out, size_t cap, unsigned long long page,
                                  unsigned page_size, const char *first,
                                  const char *prev, const char *url,
                                  const char *next, const char *key) {
    snprintf(out, cap,
             "\"meta\": {\"page\": %llu, \"page_size\": %u, "
             "\"first_page_url\": %s, \"previous_page_url\": %s, "
             "\"url\": %s, \"next_page_url\": %s, \"key\": \"%s\"}",
             page, page_size, first, prev, url, next, key);
}

/* ---- page walking -------------------------------------------------------- */

/* Indices of the messages on a page, in page order; returns the count. */
static inline size_t tu_page_indices(const cs_store *s, cs_page *pg,
                                     int64_t *out, size_t cap) {
    cs_message_view v;
    size_t n = 0;
    cs_page_rewind(pg);
    while (cs_page_next_message(s, pg, &v)) {
        if (n < cap) out[n] = v.index;
        n++;
    }
    cs_page_rewind(pg);
    return n;
}

/* Lists the general channel with order/size/token (each may be NULL). */
static inline cs_err tu_list(const tu_fx *f, const char *order,
                             const char *page_size, const char *page,
                             const char *token, cs_page *pg) {
    cs_page_params q = tu_qp();
    q.order = S(order);
    q.page_size = S(page_size);
    q.page = S(page);
    q.page_token = S(token);
    return cs_message_list(f->s, S(f->svc), S(f->ch), &q, pg);
}

/* The value of "key": "..." (or null) in rendered JSON. Returns 1 and
 * copies the URL when it is a string, 0 when it is null, -1 when absent. */
static inline int tu_json_url(const char *json, const char *key, char *out,
                              size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    if (!p) return -1;
    p += strlen(pat);
    if (strncmp(p, "null", 4) == 0) return 0;
    if (*p != '"') return -1;
    p++;
    const char *q = strchr(p, '"');
    if (!q || (size_t)(q - p) >= cap) return -1;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return 1;
}

/* Query of a page URL, split into the parameters a list call takes. */
typedef struct tu_query {
    char path[512];
    char order[16], page_size[24], page[32], token[64];
    bool has_order, has_page_size, has_page, has_token;
    char names[8][16]; /* parameter names in URL order */
    int n_names;
} tu_query;

static inline bool tu_parse_url(const char *url, tu_query *q) {
    memset(q, 0, sizeof *q);
    const char *qm = strchr(url, '?');
    if (!qm || (size_t)(qm - url) >= sizeof q->path) return false;
    memcpy(q->path, url, (size_t)(qm - url));
    const char *p = qm + 1;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (!eq) return false;
        size_t kn = (size_t)(eq - p), vn = n - kn - 1;
        char key[16], *dst = NULL;
        size_t dcap = 0;
        bool *flag = NULL;
        if (kn >= sizeof key) return false;
        memcpy(key, p, kn);
        key[kn] = '\0';
        if (q->n_names < 8) {
            snprintf(q->names[q->n_names], sizeof q->names[0], "%s", key);
            q->n_names++;
        }
        if (!strcmp(key, "Order")) {
            dst = q->order, dcap = sizeof q->order, flag = &q->has_order;
        } else if (!strcmp(key, "PageSize")) {
            dst = q->page_size, dcap = sizeof q->page_size;
            flag = &q->has_page_size;
        } else if (!strcmp(key, "Page")) {
            dst = q->page, dcap = sizeof q->page, flag = &q->has_page;
        } else if (!strcmp(key, "PageToken")) {
            dst = q->token, dcap = sizeof q->token, flag = &q->has_token;
        }
        if (dst) {
            if (vn >= dcap) return false;
            memcpy(dst, eq + 1, vn);
            dst[vn] = '\0';
            *flag = true;
        }
        p += n;
        if (*p == '&') p++;
    }
    return true;
}

static inline cs_page_params tu_query_params(const tu_query *q) {
    cs_page_params p = tu_qp();
    if (q->has_order) p.order = S(q->order);
    if (q->has_page_size) p.page_size = S(q->page_size);
    if (q->has_page) p.page = S(q->page);
    if (q->has_token) p.page_token = S(q->token);
    return p;
}

/* ---- full dump of a store ------------------------------------------------ */

#define TU_DUMP_MAX 64

/* Appends every page of a list (PageSize 1000, following next tokens). */
static inline void tu_dump_pages(const cs_store *s, int kind, const char *svc,
                                 const char *ch, tu_sb *out,
                                 char (*sids)[CS_SID_BUFSZ], size_t *n_sids) {
    static const cs_str types[2] = {{"public", 6}, {"private", 7}};
    char token[CS_TOKEN_BUFSZ] = "";
    cs_buf b;
    cs_buf_init(&b, NULL);
    for (int guard = 0; guard < 10000; guard++) {
        cs_page_params q = tu_qp();
        q.page_size = S("1000");
        if (token[0]) q.page_token = S(token);
        cs_page pg;
        cs_err e;
        if (kind == CS_PAGE_SERVICES) {
            e = cs_service_list(s, &q, &pg);
        } else if (kind == CS_PAGE_CHANNELS) {
            q.types = types;
            q.n_types = 2;
            e = cs_channel_list(s, S(svc), &q, &pg);
        } else {
            e = cs_message_list(s, S(svc), S(ch), &q, &pg);
        }
        if (e != CS_OK) {
            char tmp[80];
            snprintf(tmp, sizeof tmp, "<list error %s>\n", cs_err_name(e));
            tu_sb_add(out, tmp);
            break;
        }
        cs_buf_reset(&b);
        e = cs_render_page(s, &pg, &b);
        tu_sb_add(out, e == CS_OK ? b.data : "<render error>");
        tu_sb_add(out, "\n");
        if (sids) {
            cs_page_rewind(&pg);
            for (;;) {
                const char *sid = NULL;
                cs_service_view sv;
                cs_channel_view cv;
                if (kind == CS_PAGE_SERVICES) {
                    if (cs_page_next_service(s, &pg, &sv)) sid = sv.sid;
                } else if (cs_page_next_channel(s, &pg, &cv)) {
                    sid = cv.sid;
                }
                if (!sid) break;
                if (*n_sids < TU_DUMP_MAX)
                    snprintf(sids[(*n_sids)++], CS_SID_BUFSZ, "%s", sid);
            }
        }
        if (!pg.next_token[0]) break;
        snprintf(token, sizeof token, "%s", pg.next_token);
    }
    cs_buf_free(&b);
}

/* Everything a client can observe: counts, every service, channel (public
 * and private), message and registered media, rendered. Returned string is
 * heap-allocated. bytes_allocated is left out: it is monitoring, and
 * reserved capacity is not observable state. */
static inline char *tu_dump(const tu_fx *f) {
    tu_sb out = {NULL, 0, 0};
    cs_store_stats st;
    cs_store_stats_get(f->s, &st);
    char tmp[256];
    snprintf(tmp, sizeof tmp,
             "services=%zu channels=%zu messages=%zu media=%zu identities=%zu\n",
             st.services, st.channels, st.messages, st.media, st.identities);
    tu_sb_add(&out, tmp);
    char svcs[TU_DUMP_MAX][CS_SID_BUFSZ];
    size_t n_svcs = 0;
    tu_dump_pages(f->s, CS_PAGE_SERVICES, NULL, NULL, &out, svcs, &n_svcs);
    for (size_t i = 0; i < n_svcs; i++) {
        char chs[TU_DUMP_MAX][CS_SID_BUFSZ];
        size_t n_chs = 0;
        tu_dump_pages(f->s, CS_PAGE_CHANNELS, svcs[i], NULL, &out, chs, &n_chs);
        for (size_t j = 0; j < n_chs; j++)
            tu_dump_pages(f->s, CS_PAGE_MESSAGES, svcs[i], chs[j], &out, NULL,
                          NULL);
    }
    cs_buf b;
    cs_buf_init(&b, NULL);
    for (size_t i = 0; i < f->n_media; i++) {
        cs_media_view mv;
        cs_err e = cs_media_fetch(f->s, S(f->media_svc[i]), S(f->media[i]), &mv);
        cs_buf_reset(&b);
        if (e == CS_OK && cs_render_media(f->s, &mv, &b) == CS_OK) {
            tu_sb_add(&out, b.data);
            snprintf(tmp, sizeof tmp, " attached=%d\n", (int)mv.attached);
            tu_sb_add(&out, tmp);
        } else {
            snprintf(tmp, sizeof tmp, "media %s: %s\n", f->media[i],
                     cs_err_name(e));
            tu_sb_add(&out, tmp);
        }
    }
    cs_buf_free(&b);
    return out.p;
}

/* ---- observers ------------------------------------------------------------ */

#define TU_MAX_EVENTS 64

typedef struct tu_events {
    int n;
    cs_event_type type[TU_MAX_EVENTS];
    cs_webhook wh[TU_MAX_EVENTS];
    char sid[TU_MAX_EVENTS][CS_SID_BUFSZ];
    char body[TU_MAX_EVENTS][64];
} tu_events;

static inline void tu_record(void *ctx, const cs_event *ev) {
    tu_events *r = ctx;
    if (r->n >= TU_MAX_EVENTS) return;
    int i = r->n++;
    r->type[i] = ev->type;
    r->wh[i] = ev->webhook;
    r->sid[i][0] = '\0';
    r->body[i][0] = '\0';
    if (ev->message) {
        snprintf(r->sid[i], CS_SID_BUFSZ, "%s", ev->message->sid);
        snprintf(r->body[i], sizeof r->body[i], "%.*s",
                 (int)(ev->message->body.len < 63 ? ev->message->body.len : 63),
                 ev->message->body.ptr);
    } else if (ev->channel) {
        snprintf(r->sid[i], CS_SID_BUFSZ, "%s", ev->channel->sid);
    } else if (ev->service) {
        snprintf(r->sid[i], CS_SID_BUFSZ, "%s", ev->service->sid);
    } else if (ev->media) {
        snprintf(r->sid[i], CS_SID_BUFSZ, "%s", ev->media->sid);
    }
}

/* ---- failing allocator ------------------------------------------------- */

typedef struct tu_alloc {
    long budget; /* allocations left before failing; < 0: unlimited */
    long fails;  /* allocations refused */
} tu_alloc;

static inline void *tu_alloc_malloc(void *ctx, size_t n) {
    tu_alloc *a = ctx;
    if (a->budget == 0) {
        a->fails++;
        return NULL;
    }
    if (a->budget > 0) a->budget--;
    return malloc(n);
}

static inline void tu_alloc_free(void *ctx, void *p, size_t n) {
    (void)ctx;
    (void)n;
    free(p);
}

/* ---- counting allocator that fails on demand ----------------------------- */

/* Counts allocations and live bytes. fail_at > 0: allocation number
 * fail_at fails (returns NULL); with persist, every one after it too. */
typedef struct tu_fail_alc {
    long count;   /* allocations so far */
    long fail_at; /* 0: never */
    bool persist; /* fail every allocation from fail_at on */
    long failures;
    size_t live;
} tu_fail_alc;

static inline void *tu_fa_malloc(void *ctx, size_t n) {
    tu_fail_alc *a = ctx;
    a->count++;
    if (a->fail_at &&
        (a->count == a->fail_at || (a->persist && a->count > a->fail_at))) {
        a->failures++;
        return NULL;
    }
    void *p = malloc(n);
    if (p) a->live += n;
    return p;
}

static inline void tu_fa_free(void *ctx, void *p, size_t n) {
    tu_fail_alc *a = ctx;
    if (p) a->live -= n;
    free(p);
}

/* ---- memory images ------------------------------------------------------- */

/* A growable buffer: tu_mem_write appends (a cs_write_fn), tu_mem_read
 * reads from pos on (a cs_read_fn), at most chunk bytes a call when chunk
 * is non-zero. Zero-initialise; free with tu_mem_free. */
typedef struct tu_mem {
    uint8_t *p;
    size_t n, cap, pos;
    size_t chunk; /* read at most this many bytes per call (0: any) */
} tu_mem;

static inline int tu_mem_write(void *ctx, const void *buf, size_t len) {
    tu_mem *m = ctx;
    if (m->n + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->n + len) cap *= 2;
        uint8_t *p = realloc(m->p, cap);
        if (!p) return -1;
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->n, buf, len);
    m->n += len;
    return 0;
}

static inline ptrdiff_t tu_mem_read(void *ctx, void *buf, size_t len) {
    tu_mem *m = ctx;
    size_t k = m->n - m->pos;
    if (k > len) k = len;
    if (m->chunk && k > m->chunk) k = m->chunk;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ptrdiff_t)k;
}

static inline void tu_mem_free(tu_mem *m) {
    free(m->p);
    memset(m, 0, sizeof *m);
}

/* Two buffers (dumps) with the same bytes. */
static inline bool tu_same_buf(const cs_buf *a, const cs_buf *b) {
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* ---- journal capture ----------------------------------------------------- */

/* tu_journal_hook keeps a copy of every record it accepts, in order. It
 * refuses every record (returning refuse) while refuse is non-zero, the
 * call numbered refuse_at (from 1, returning 7), and any record beyond
 * TU_MAX_RECS (returning -1). Zero-initialise; free with tu_journal_free. */
#define TU_MAX_RECS 4096
typedef struct tu_journal {
    uint8_t *rec[TU_MAX_RECS];
    size_t len[TU_MAX_RECS];
    uint64_t seq[TU_MAX_RECS];
    size_t n;
    long calls;     /* hook invocations, refused ones included */
    int refuse;     /* non-zero: refuse every record with this value */
    long refuse_at; /* refuse the call with this number (from 1); 0: never */
} tu_journal;

static inline int tu_journal_hook(void *ctx, uint64_t seq, const void *rec,
                                  size_t len) {
    tu_journal *j = ctx;
    j->calls++;
    if (j->refuse) return j->refuse;
    if (j->refuse_at && j->calls == j->refuse_at) return 7;
    if (j->n == TU_MAX_RECS) return -1;
    j->rec[j->n] = malloc(len);
    if (!j->rec[j->n]) abort();
    memcpy(j->rec[j->n], rec, len);
    j->len[j->n] = len;
    j->seq[j->n] = seq;
    j->n++;
    return 0;
}

static inline void tu_journal_free(tu_journal *j) {
    for (size_t i = 0; i < j->n; i++) free(j->rec[i]);
    memset(j, 0, sizeof *j);
}

/* ---- SIDs ----------------------------------------------------------------- */

static inline bool tu_is_sid(const char *s, const char *prefix) {
    if (!s || strlen(s) != 34 || strncmp(s, prefix, 2) != 0) return false;
    for (int i = 2; i < 34; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A copy of a SID with every hex letter in upper case. */
static inline void tu_upper_hex(const char *sid, char out[CS_SID_BUFSZ]) {
    snprintf(out, CS_SID_BUFSZ, "%s", sid);
    for (int i = 2; out[i]; i++)
        if (out[i] >= 'a' && out[i] <= 'f') out[i] = (char)(out[i] - 32);
}

#endif
