/* Shared by fuzz_snapshot.c, fuzz_journal.c and make_durable_seeds.c: a
 * counting allocator, growable byte sinks, CRC-32C computed here (not the
 * library's), and the scripted session whose journal records the journal
 * harness mutates and whose snapshots seed the snapshot harness.
 *
 * Everything is deterministic: a fixed seed and a clock hook that returns
 * dz_now, which the script advances itself. */
#ifndef CHATSTORE_FUZZ_DURABLE_H
#define CHATSTORE_FUZZ_DURABLE_H

#include "fuzz.h"

#include <chatstore.h>

#include <string.h>

#define DZ_SEED UINT64_C(0x5eed5eed)
#define DZ_T0 INT64_C(1458851877) /* 2016-03-24T20:37:57Z */

/* ---- clock ------------------------------------------------------------- */

static int64_t dz_now = DZ_T0;
static int dz_clock_forbidden; /* non-zero: a clock call is a finding */

static inline int64_t dz_clock(void *ctx) {
    (void)ctx;
    FZ_CHECK(!dz_clock_forbidden, "the clock was read while applying a record");
    return dz_now;
}

/* ---- counting allocator ------------------------------------------------ */

/* Each block carries its size in a header, so free can check it receives
 * the size that was allocated (the allocator contract). fail_at > 0: the
 * fail_at-th allocation from now returns NULL (once). */
typedef struct dz_heap {
    size_t live_bytes, live_blocks, peak_bytes;
    long fail_at;
    bool fired;
    size_t budget; /* non-zero: an allocation beyond this many live bytes
                      fails (and counts as fired) */
    bool over;     /* the budget made an allocation fail */
} dz_heap;

#define DZ_HDR 16
static inline void *dz_malloc(void *ctx, size_t n) {
    dz_heap *h = ctx;
    if (h->fail_at > 0 && --h->fail_at == 0) {
        h->fired = true;
        return NULL;
    }
    if (h->budget && (n > h->budget || h->live_bytes > h->budget - n)) {
        h->fired = h->over = true;
        return NULL;
    }
    char *p = malloc(n + DZ_HDR);
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    h->live_bytes += n;
    h->live_blocks++;
    if (h->live_bytes > h->peak_bytes) h->peak_bytes = h->live_bytes;
    return p + DZ_HDR;
}

static inline void dz_free(void *ctx, void *p, size_t n) {
    dz_heap *h = ctx;
    if (!p) return;
    char *b = (char *)p - DZ_HDR;
    size_t had;
    memcpy(&had, b, sizeof had);
    FZ_CHECK(had == n, "free of a %zu-byte block with size %zu", had, n);
    FZ_CHECK(h->live_bytes >= n && h->live_blocks > 0, "free of unknown block");
    h->live_bytes -= n;
    h->live_blocks--;
    free(b);
}

static inline cs_options dz_options(const cs_allocator *alc) {
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    o.seed = DZ_SEED;
    o.clock = dz_clock;
    o.allocator = alc;
    return o;
}

/* ---- byte sinks -------------------------------------------------------- */

typedef struct dz_bytes {
    uint8_t *p;
    size_t n, cap;
} dz_bytes;

static inline void dz_put(dz_bytes *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        FZ_CHECK(q, "realloc");
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static inline void dz_bytes_free(dz_bytes *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* cs_write_fn into a dz_bytes. */
static inline int dz_write(void *ctx, const void *buf, size_t len) {
    dz_put(ctx, buf, len);
    return 0;
}

/* ---- CRC-32C ------------------------------------------------------------ */

/* Castagnoli, reflected polynomial 0x82F63B78, initial value and final XOR
 * 0xFFFFFFFF; crc of "123456789" is 0xE3069283. Bitwise on purpose: an
 * implementation independent of lib/crc32c.c. */
static inline uint32_t dz_crc32c(const void *p, size_t n) {
    const uint8_t *b = p;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= b[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static inline uint32_t dz_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void dz_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t dz_get_u64(const uint8_t *p) {
    return (uint64_t)dz_get_u32(p) | (uint64_t)dz_get_u32(p + 4) << 32;
}

static inline void dz_put_u64(uint8_t *p, uint64_t v) {
    dz_put_u32(p, (uint32_t)v);
    dz_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* ---- journal capture ---------------------------------------------------- */

#define DZ_MAX_RECS 128
typedef struct dz_journal {
    dz_bytes rec[DZ_MAX_RECS];
    uint64_t seq[DZ_MAX_RECS];
    size_t n;
    int refuse; /* non-zero: refuse the next record (then accept again) */
} dz_journal;

static inline int dz_journal_hook(void *ctx, uint64_t seq, const void *rec,
                           size_t len) {
    dz_journal *j = ctx;
    if (j->refuse) {
        j->refuse = 0;
        return 1;
    }
    FZ_CHECK(j->n < DZ_MAX_RECS, "too many journal records");
    memset(&j->rec[j->n], 0, sizeof j->rec[j->n]);
    dz_put(&j->rec[j->n], rec, len);
    j->seq[j->n] = seq;
    j->n++;
    return 0;
}

static inline void dz_journal_free(dz_journal *j) {
    for (size_t i = 0; i < j->n; i++) dz_bytes_free(&j->rec[i]);
    j->n = 0;
    j->refuse = 0;
}

/* ---- the scripted session ----------------------------------------------- */

static inline void dz_must(cs_err e, const char *what) {
    if (e) {
        fprintf(stderr, "script: %s: %s\n", what, cs_err_name(e));
        abort();
    }
}

#define DZ_S(x) cs_str_c(x)

/* A session touching every kind of record: service create / update /
 * delete; channels public and private, with and without unique names,
 * attributes, dates, CreatedBy and webhook values (typed and as strings);
 * media with and without filenames; messages with From, attributes, dates,
 * LastUpdatedBy, media, NUL bytes and non-ASCII text; updates of text and
 * media messages; deletes; a store clear and life after it; service
 * webhook settings (strings, typed, set back to null). Stops after
 * `stop` committed changes (0: the whole script) and returns how many
 * changes it made. The clock is dz_now, advanced here. */
static inline size_t dz_script(cs_store *s, size_t stop) {
#define STEP(expr, what)                                                      \
    do {                                                                      \
        if (stop && n == stop) return n;                                      \
        dz_now += 61;                                                         \
        dz_must((expr), what);                                                \
        n++;                                                                  \
    } while (0)
    size_t n = 0;
    cs_service_view sv;
    char A[CS_SID_BUFSZ], B[CS_SID_BUFSZ], C[CS_SID_BUFSZ];
    STEP(cs_service_create(s, DZ_S("Alpha"), &sv), "service A");
    memcpy(A, sv.sid, sizeof A);
    STEP(cs_service_create(s, DZ_S("Beta \xe2\x98\x83"), &sv), "service B");
    memcpy(B, sv.sid, sizeof B);
    STEP(cs_service_update(s, DZ_S(A), DZ_S("Alpha 2"), NULL), "service update");

    cs_media_view m1, m2, m3;
    STEP(cs_media_create(s, DZ_S(A), DZ_S("image/png"), DZ_S("cat.png"), 2048,
                         &m1), "media 1");
    STEP(cs_media_create(s, DZ_S(A), DZ_S("text/plain; charset=utf-8"),
                         CS_STR_ABSENT, 12, &m2), "media 2");
    STEP(cs_media_create(s, DZ_S(B), DZ_S("application/pdf"), DZ_S("r.pdf"),
                         99, &m3), "media 3");

    cs_channel_view cv;
    char G[CS_SID_BUFSZ], P[CS_SID_BUFSZ], Q[CS_SID_BUFSZ];
    {
        cs_channel_params p = {0};
        p.friendly_name = DZ_S("General");
        p.unique_name = DZ_S("general");
        p.attributes = DZ_S("{\"topic\": \"news\", \"n\": [1, 2.5, null]}");
        p.created_by = DZ_S("alice");
        p.webhook_value = CS_WEBHOOK_TRUE;
        STEP(cs_channel_create(s, DZ_S(A), &p, &cv), "channel G");
        memcpy(G, cv.sid, sizeof G);
    }
    {
        cs_channel_params p = {0};
        p.friendly_name = DZ_S("");
        p.type = DZ_S("private");
        p.date_created = DZ_S("2016-01-02T03:04:05Z");
        p.date_updated = DZ_S("2016-01-03T00:00:00+01:00");
        STEP(cs_channel_create(s, DZ_S(A), &p, &cv), "channel P");
        memcpy(P, cv.sid, sizeof P);
    }
    {
        cs_channel_params p = {0};
        p.unique_name = DZ_S("b-room");
        p.webhook = DZ_S("FALSE");
        p.type_value = CS_CHANNEL_PUBLIC;
        STEP(cs_channel_create(s, DZ_S(B), &p, &cv), "channel Q");
        memcpy(Q, cv.sid, sizeof Q);
    }

    char msg[8][CS_SID_BUFSZ];
    cs_message_view mv;
    for (int i = 0; i < 8; i++) {
        cs_message_params p = {0};
        static const char *const bodies[8] = {
            "hello", "caf\xc3\xa9 \xf0\x9f\x98\x80", "", "line\nbreak \"q\"",
            NULL, "x", "last one", "\\u0000"};
        if (bodies[i]) p.body = DZ_S(bodies[i]);
        if (i == 4) p.body = (cs_str){"nul\0byte", 8};
        if (i % 3 == 0) p.from = DZ_S("bob");
        if (i == 1) p.attributes = DZ_S("{\"k\": {\"deep\": [true, false]}}");
        if (i == 2) p.date_created = DZ_S("2015-12-16T22:18:37Z");
        if (i == 3) p.last_updated_by = DZ_S("carol");
        if (i == 5) {
            p.media_sid = DZ_S(m1.sid);
            p.body = CS_STR_ABSENT;
        }
        if (i == 6) p.webhook = DZ_S("true");
        if (i == 7) p.date_updated = DZ_S("2020-02-29T12:00:00Z");
        STEP(cs_message_create(s, DZ_S(A), DZ_S(i < 6 ? "general" : G), &p, &mv),
             "message G");
        memcpy(msg[i], mv.sid, sizeof msg[i]);
    }
    char pm[2][CS_SID_BUFSZ];
    for (int i = 0; i < 2; i++) {
        cs_message_params p = {0};
        p.body = DZ_S("private");
        if (i == 1) p.media_sid = DZ_S(m2.sid);
        if (i == 1) p.body = CS_STR_ABSENT;
        p.webhook_value = i ? CS_WEBHOOK_FALSE : CS_WEBHOOK_ABSENT;
        STEP(cs_message_create(s, DZ_S(A), DZ_S(P), &p, &mv), "message P");
        memcpy(pm[i], mv.sid, sizeof pm[i]);
    }
    {
        cs_message_params p = {0};
        p.body = DZ_S("in b");
        p.from = DZ_S("\xe2\x98\x83");
        STEP(cs_message_create(s, DZ_S(B), DZ_S("b-room"), &p, &mv), "message Q");
    }
    {
        cs_message_params p = {0};
        p.body = DZ_S("edited");
        p.last_updated_by = DZ_S("bob");
        p.attributes = DZ_S("[true]");
        STEP(cs_message_update(s, DZ_S(A), DZ_S(G), DZ_S(msg[1]), &p, NULL),
             "message update");
    }
    {
        cs_message_params p = {0};
        p.date_updated = DZ_S("2017-05-05T05:05:05Z");
        p.from = DZ_S("eve");
        p.webhook_value = CS_WEBHOOK_TRUE;
        STEP(cs_message_update(s, DZ_S(A), DZ_S("general"), DZ_S(msg[0]), &p,
                               NULL), "message update 2");
    }
    {
        cs_message_params p = {0};
        p.last_updated_by = DZ_S("");
        p.date_created = DZ_S("2014-01-01T00:00:00Z");
        STEP(cs_message_update(s, DZ_S(A), DZ_S(G), DZ_S(msg[5]), &p, NULL),
             "media message update");
    }
    STEP(cs_message_delete(s, DZ_S(A), DZ_S(G), DZ_S(msg[3]), DZ_S("true")),
         "message delete");
    STEP(cs_message_delete(s, DZ_S(A), DZ_S(P), DZ_S(pm[0]), CS_STR_ABSENT),
         "message delete 2");
    {
        cs_channel_params p = {0};
        p.friendly_name = DZ_S("Gen 2");
        p.unique_name = DZ_S("");
        p.attributes = DZ_S("{}");
        p.date_updated = DZ_S("2019-09-09T09:09:09Z");
        STEP(cs_channel_update(s, DZ_S(A), DZ_S(G), &p, NULL), "channel update");
    }
    {
        cs_channel_params p = {0};
        p.created_by = DZ_S("carol");
        p.unique_name = DZ_S("private-one");
        p.webhook_value = CS_WEBHOOK_FALSE;
        STEP(cs_channel_update(s, DZ_S(A), DZ_S(P), &p, NULL),
             "channel update 2");
    }
    {
        cs_message_params p = {0};
        p.body = DZ_S("after rename");
        STEP(cs_message_create(s, DZ_S(A), DZ_S("private-one"), &p, &mv),
             "message by new name");
    }
    STEP(cs_channel_delete(s, DZ_S(B), DZ_S(Q), CS_STR_ABSENT), "channel delete");
    STEP(cs_media_create(s, DZ_S(B), DZ_S("audio/ogg"), DZ_S(""), 1, &m3),
         "media 4");
    STEP(cs_service_delete(s, DZ_S(B)), "service delete");
    STEP(cs_store_clear(s), "clear");
    STEP(cs_service_create(s, DZ_S("After clear"), &sv), "service C");
    memcpy(C, sv.sid, sizeof C);
    {
        cs_channel_params p = {0};
        p.unique_name = DZ_S("again");
        p.friendly_name = DZ_S("Again");
        p.created_by = DZ_S("alice");
        STEP(cs_channel_create(s, DZ_S(C), &p, &cv), "channel after clear");
    }
    STEP(cs_media_create(s, DZ_S(C), DZ_S("image/gif"), DZ_S("a.gif"), 7, &m1),
         "media after clear");
    for (int i = 0; i < 4; i++) {
        cs_message_params p = {0};
        p.body = DZ_S("again");
        if (i == 1) p.from = DZ_S("alice");
        if (i == 2) {
            p.media_sid = DZ_S(m1.sid);
            p.body = CS_STR_ABSENT;
        }
        if (i == 3) p.attributes = DZ_S("{\"last\": 1}");
        STEP(cs_message_create(s, DZ_S(C), DZ_S("again"), &p, &mv),
             "message after clear");
    }
    { /* webhook settings: strings, typed, then back to null */
        cs_service_params p = {0};
        cs_str f[2] = {DZ_S("onMessageSent"), DZ_S("onChannelDestroyed")};
        p.post_webhook_url = DZ_S("https://hooks.example.com/chat?env=test");
        p.pre_webhook_url = DZ_S("http://127.0.0.1:9/pre");
        p.webhook_method = DZ_S("GET");
        p.webhook_filters = f;
        p.n_webhook_filters = 2;
        p.post_webhook_retry_count = DZ_S("3");
        STEP(cs_service_update_with(s, DZ_S(C), &p, NULL), "service webhooks");
    }
    {
        cs_service_params p = {0};
        static const cs_webhook_event f[] = {CS_WEBHOOK_ON_MESSAGE_UPDATED,
                                             CS_WEBHOOK_ON_MEDIA_MESSAGE_SENT};
        p.friendly_name = DZ_S("Hooked");
        p.post_webhook_url = DZ_S("http://localhost:8080/hook");
        p.webhook_method_value = CS_WEBHOOK_METHOD_POST;
        p.webhook_filter_values = f;
        p.n_webhook_filter_values = 2;
        p.pre_webhook_retry_count_value = CS_RETRY_COUNT(1);
        STEP(cs_service_create_with(s, &p, &sv), "service with webhooks");
    }
    {
        cs_service_params p = {0};
        cs_str f[1] = {DZ_S("")};
        p.pre_webhook_url = DZ_S("");
        p.webhook_filters = f;
        p.n_webhook_filters = 1;
        STEP(cs_service_update_with(s, DZ_S(C), &p, NULL),
             "service webhooks back to null");
    }
    return n;
#undef STEP
}

#endif
