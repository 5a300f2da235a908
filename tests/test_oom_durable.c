/* Allocation failure and journal refusal, swept over the durability calls
 * (SQLite's method, as tests/test_oom.c does for the other mutating calls):
 *
 * - snapshot_load_every_allocation: cs_snapshot_load of a realistic image
 *   with allocation N failing (once, and from N on) for every N a clean
 *   load makes: NOMEM, *out NULL, the allocator's live bytes back to zero.
 * - journal_apply_every_allocation: every record of a journal captured from
 *   a scripted session (every record kind, both message-update paths),
 *   applied to a store in the right state with allocation N failing for
 *   every N: NOMEM, dump byte-identical, cs_store_check passes, no leak,
 *   no record handed on, no event; then the clean apply succeeds (and,
 *   journaled again, hands on the very same record).
 * - journal_refusal_every_call: the same session with a hook refusing its
 *   k-th call, for every k: that call is JOURNAL_REFUSED, the dump is
 *   byte-identical, no observer ran, cs_store_check passes, the store's
 *   byte count is unchanged; retried, the session ends exactly as a clean
 *   one (same dump, same journal).
 * tests/test_oom.c's oom_*_journaled runs its per-call sweep with an
 * accepting hook installed, so that the record's allocation fails too. */
#include "dump.h"
#include "test_util.h"

/* ---- clocks ------------------------------------------------------------- */

#define T0 INT64_C(1600000000)
static int64_t now_v = T0;
static int64_t script_clock(void *ctx) {
    (void)ctx;
    return now_v;
}
/* The stores records are applied to: replay must never consult it. */
static int64_t wrong_clock(void *ctx) {
    (void)ctx;
    return 42;
}

static cs_options options(tu_fail_alc *a, cs_allocator *alc, cs_clock_fn clock) {
    cs_options o = CS_OPTIONS_INIT;
    if (a) {
        memset(a, 0, sizeof *a);
        *alc = (cs_allocator){tu_fa_malloc, tu_fa_free, a};
        o.allocator = alc;
    }
    o.use_seed = true;
    o.seed = 2024;
    o.clock = clock;
    return o;
}

/* ---- observers and the byte count --------------------------------------- */

static void count_event(void *ctx, const cs_event *ev) {
    (void)ev;
    ++*(long *)ctx;
}

static size_t store_bytes(const cs_store *s) {
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    return st.bytes_allocated;
}

/* ---- the scripted session ------------------------------------------------
 * Every op is exactly one mutating call that commits (one record), and
 * between them the session covers every record kind: service create,
 * update, delete; channel create (public, private, plain with a date,
 * another service), update (rename, dates), delete; media create; message
 * create (From, LastUpdatedBy, attributes, media, NUL byte, explicit
 * dates, a 30000-byte body), update in place and rebuilt, delete (a gap, a
 * media message); a new SID epoch, then creates in it (a message in a
 * channel of the first epoch, a service with webhook settings, channel and
 * message); clear (which keeps the epoch); creates after the clear; and
 * service creates and updates with webhook settings (string and typed
 * forms, settings set back to null); the delete of a never-attached media
 * item. */

typedef struct sc {
    char is[3][CS_SID_BUFSZ];
    char ch[5][CS_SID_BUFSZ];
    char me[4][CS_SID_BUFSZ];
    char im[13][CS_SID_BUFSZ];
} sc;

static char big_body[30001];

static cs_err svc_new(cs_store *s, char *out, const char *name) {
    cs_service_view v;
    cs_err e = cs_service_create(s, cs_str_c(name), &v);
    if (!e) memcpy(out, v.sid, CS_SID_BUFSZ);
    return e;
}

static cs_err media_new(cs_store *s, const char *is, char *out, const char *ct,
                        const char *fn, uint64_t size) {
    cs_media_view v;
    cs_err e = cs_media_create(s, cs_str_c(is), cs_str_c(ct), cs_str_c(fn),
                               size, &v);
    if (!e) memcpy(out, v.sid, CS_SID_BUFSZ);
    return e;
}

static cs_err chan_new(cs_store *s, const char *is, char *out,
                       const cs_channel_params *p) {
    cs_channel_view v;
    cs_err e = cs_channel_create(s, cs_str_c(is), p, &v);
    if (!e) memcpy(out, v.sid, CS_SID_BUFSZ);
    return e;
}

static cs_err msg_new(cs_store *s, const char *is, const char *ch, char *out,
                      const cs_message_params *p) {
    cs_message_view v;
    cs_err e = cs_message_create(s, cs_str_c(is), cs_str_c(ch), p, &v);
    if (!e) memcpy(out, v.sid, CS_SID_BUFSZ);
    return e;
}

static cs_err msg_edit(cs_store *s, const char *is, const char *ch,
                       const char *im, const cs_message_params *p) {
    return cs_message_update(s, cs_str_c(is), cs_str_c(ch), cs_str_c(im), p,
                             NULL);
}

/* Message updates are marked: the path they take is checked. */
enum { UPD_NONE, UPD_IN_PLACE, UPD_REBUILT };

static const struct {
    const char *name;
    int upd;
} SCRIPT[] = {
    {"service_create", 0},
    {"service_create_2", 0},
    {"service_update", 0},
    {"media_create_png", 0},
    {"media_create_no_filename", 0},
    {"media_create_unattached", 0},
    {"channel_create_named", 0},
    {"channel_create_private", 0},
    {"channel_create_plain_dated", 0},
    {"channel_create_other_service", 0},
    {"message_create_plain", 0},
    {"message_create_identities", 0},
    {"message_create_media", 0},
    {"message_create_nul_dates", 0},
    {"message_create_short", 0},
    {"message_create_tail", 0},
    {"message_create_private", 0},
    {"message_create_private_media", 0},
    {"message_create_big", 0},
    {"message_create_plain_channel", 0},
    {"message_create_other_service", 0},
    {"message_update_in_place_body", UPD_IN_PLACE},
    {"message_update_rebuilt_body", UPD_REBUILT},
    {"message_update_in_place_attrs", UPD_IN_PLACE},
    {"message_update_media_lub", 0},
    {"message_update_rebuilt_from", UPD_REBUILT},
    {"message_update_clear_lub", 0},
    {"message_update_rebuilt_shrink", UPD_REBUILT},
    {"message_delete_gap", 0},
    {"message_delete_media", 0},
    {"channel_update_rename", 0},
    {"channel_update_dates", 0},
    {"new_epoch", 0},
    {"message_create_after_rename", 0},
    {"channel_delete", 0},
    {"service_delete", 0},
    {"service_create_3", 0},
    {"channel_create_3", 0},
    {"message_create_3", 0},
    {"store_clear", 0},
    {"service_create_after_clear", 0},
    {"media_create_after_clear", 0},
    {"service_create_webhooks", 0},
    {"service_update_webhooks_typed", 0},
    {"service_update_clear_filters", 0},
    {"media_delete_unattached", 0},
};
#define N_SCRIPT (sizeof SCRIPT / sizeof SCRIPT[0])
#define SCRIPT_BEFORE_CLEAR 39 /* ops before store_clear */

static cs_err run_op(cs_store *s, sc *c, size_t i) {
    cs_channel_params cp = {0};
    cs_message_params mp = {0};
    now_v = T0 + 60 * (int64_t)i; /* every record carries its own time */
    switch (i) {
    case 0: return svc_new(s, c->is[0], "Support");
    case 1: return svc_new(s, c->is[1], "Sales");
    case 2:
        return cs_service_update(s, cs_str_c(c->is[1]), cs_str_c("Sales EU"),
                                 NULL);
    case 3: return media_new(s, c->is[0], c->me[0], "image/png", "cat.png", 1234);
    case 4:
        return media_new(s, c->is[0], c->me[1], "application/pdf", NULL, 99999);
    case 5:
        return media_new(s, c->is[0], c->me[2], "text/plain; charset=utf-8",
                         "notes.txt", 10);
    case 6:
        cp.unique_name = cs_str_c("general");
        cp.friendly_name = cs_str_c("General");
        cp.attributes = cs_str_c("{\"topic\": \"all\"}");
        cp.created_by = cs_str_c("admin");
        return chan_new(s, c->is[0], c->ch[0], &cp);
    case 7:
        cp.unique_name = cs_str_c("secret");
        cp.type = cs_str_c("private");
        cp.created_by = cs_str_c("alice");
        cp.webhook = cs_str_c("false");
        return chan_new(s, c->is[0], c->ch[1], &cp);
    case 8:
        cp.date_created = cs_str_c("2015-12-16T22:18:37Z");
        return chan_new(s, c->is[0], c->ch[2], &cp);
    case 9:
        cp.unique_name = cs_str_c("eu-lobby");
        cp.friendly_name = cs_str_c("Lobby (EU) \xc3\xa9");
        return chan_new(s, c->is[1], c->ch[3], &cp);
    case 10:
        mp.body = cs_str_c("hello");
        return msg_new(s, c->is[0], c->ch[0], c->im[0], &mp);
    case 11:
        mp.body = cs_str_c("second message");
        mp.from = cs_str_c("alice");
        mp.last_updated_by = cs_str_c("bob");
        mp.attributes = cs_str_c("{\"k\": [1, 2]}");
        return msg_new(s, c->is[0], c->ch[0], c->im[1], &mp);
    case 12:
        mp.media_sid = cs_str_c(c->me[0]);
        mp.from = cs_str_c("carol");
        return msg_new(s, c->is[0], c->ch[0], c->im[2], &mp);
    case 13:
        mp.body = (cs_str){"nul\0byte", 8};
        mp.date_created = cs_str_c("2016-01-01T00:00:00Z");
        mp.date_updated = cs_str_c("2016-01-02T00:00:00Z");
        mp.webhook = cs_str_c("true");
        return msg_new(s, c->is[0], c->ch[0], c->im[3], &mp);
    case 14:
        mp.body = cs_str_c("short");
        mp.from = cs_str_c("dave");
        mp.attributes = cs_str_c("{\"a\": 1}");
        return msg_new(s, c->is[0], c->ch[0], c->im[4], &mp);
    case 15:
        mp.body = cs_str_c("x");
        return msg_new(s, c->is[0], c->ch[0], c->im[5], &mp);
    case 16:
        mp.body = cs_str_c("private");
        mp.from = cs_str_c("eve");
        mp.last_updated_by = cs_str_c("eve");
        mp.attributes = cs_str_c("{}");
        return msg_new(s, c->is[0], c->ch[1], c->im[6], &mp);
    case 17:
        mp.media_sid = cs_str_c(c->me[1]);
        return msg_new(s, c->is[0], c->ch[1], c->im[7], &mp);
    case 18:
        mp.body = cs_str_c(big_body);
        mp.from = cs_str_c("frank");
        return msg_new(s, c->is[0], c->ch[1], c->im[8], &mp);
    case 19:
        mp.body = cs_str_c("in the plain channel");
        return msg_new(s, c->is[0], c->ch[2], c->im[9], &mp);
    case 20:
        mp.body = cs_str_c("ciao");
        mp.from = cs_str_c("gino");
        return msg_new(s, c->is[1], c->ch[3], c->im[10], &mp);
    case 21: /* same length: written over the record */
        mp.body = cs_str_c("SHORT");
        return msg_edit(s, c->is[0], c->ch[0], c->im[4], &mp);
    case 22: /* longer: a new record */
        mp.body = cs_str_c("second message, now edited into a much longer one "
                           "that cannot fit where the old one was");
        mp.last_updated_by = cs_str_c("grace");
        return msg_edit(s, c->is[0], c->ch[0], c->im[1], &mp);
    case 23:
        mp.attributes = cs_str_c("{\"b\": 2}");
        return msg_edit(s, c->is[0], c->ch[0], c->im[4], &mp);
    case 24:
        mp.attributes = cs_str_c("{\"edited\": true}");
        mp.last_updated_by = cs_str_c("heidi");
        return msg_edit(s, c->is[0], c->ch[0], c->im[2], &mp);
    case 25: /* From changes length: the body would move */
        mp.from = cs_str_c("ivan the terrible");
        return msg_edit(s, c->is[0], c->ch[0], c->im[3], &mp);
    case 26:
        mp.last_updated_by = cs_str_c("");
        mp.date_updated = cs_str_c("2017-05-05T05:05:05Z");
        return msg_edit(s, c->is[0], c->ch[1], c->im[6], &mp);
    case 27: /* much shorter: the old space would mostly go unused */
        mp.body = cs_str_c("no longer big");
        return msg_edit(s, c->is[0], c->ch[1], c->im[8], &mp);
    case 28:
        return cs_message_delete(s, cs_str_c(c->is[0]), cs_str_c(c->ch[0]),
                                 cs_str_c(c->im[3]), CS_STR_ABSENT);
    case 29:
        return cs_message_delete(s, cs_str_c(c->is[0]), cs_str_c(c->ch[1]),
                                 cs_str_c(c->im[7]), cs_str_c("false"));
    case 30:
        cp.unique_name = cs_str_c("lobby");
        cp.friendly_name = cs_str_c("Lobby");
        cp.attributes = cs_str_c("{}");
        cp.created_by = cs_str_c("judy");
        cp.webhook_value = CS_WEBHOOK_TRUE;
        return cs_channel_update(s, cs_str_c(c->is[0]), cs_str_c(c->ch[0]),
                                 &cp, NULL);
    case 31:
        cp.friendly_name = cs_str_c("Secret");
        cp.date_created = cs_str_c("2014-01-01T00:00:00Z");
        cp.date_updated = cs_str_c("2017-01-01T00:00:00Z");
        return cs_channel_update(s, cs_str_c(c->is[0]), cs_str_c("secret"),
                                 &cp, NULL);
    case 32: return cs_store_new_epoch(s, NULL);
    case 33:
        mp.body = cs_str_c("after the rename");
        mp.from = cs_str_c("kim");
        return msg_new(s, c->is[0], c->ch[0], c->im[11], &mp);
    case 34:
        return cs_channel_delete(s, cs_str_c(c->is[0]), cs_str_c(c->ch[2]),
                                 cs_str_c("true"));
    case 35: return cs_service_delete(s, cs_str_c(c->is[1]));
    case 36: { /* webhook settings in the snapshot image too */
        cs_service_params sp = {0};
        cs_str f[2] = {cs_str_c("onChannelDestroyed"), cs_str_c("onMessageSent")};
        sp.friendly_name = cs_str_c("Third");
        sp.post_webhook_url = cs_str_c("http://localhost:8080/hook");
        sp.webhook_filters = f;
        sp.n_webhook_filters = 2;
        sp.post_webhook_retry_count_value = CS_RETRY_COUNT(2);
        cs_service_view v;
        cs_err e = cs_service_create_with(s, &sp, &v);
        if (!e) memcpy(c->is[2], v.sid, CS_SID_BUFSZ);
        return e;
    }
    case 37:
        cp.unique_name = cs_str_c("t");
        return chan_new(s, c->is[2], c->ch[4], &cp);
    case 38:
        mp.body = cs_str_c("last before the clear");
        mp.from = cs_str_c("lee");
        return msg_new(s, c->is[2], c->ch[4], c->im[12], &mp);
    case 39: return cs_store_clear(s);
    case 40: return svc_new(s, c->is[0], "After the clear");
    case 41: return media_new(s, c->is[0], c->me[3], "audio/ogg", "a.ogg", 5);
    case 42: { /* every webhook setting, in string form */
        cs_service_params sp = {0};
        cs_str f[3] = {cs_str_c("onMessageSent"), cs_str_c("onChannelAdded"),
                       cs_str_c("onMessageSent")};
        sp.friendly_name = cs_str_c("Hooks");
        sp.pre_webhook_url = cs_str_c("http://127.0.0.1:9/pre");
        sp.post_webhook_url = cs_str_c("https://hooks.example.com/chat?x=1");
        sp.webhook_method = cs_str_c("GET");
        sp.webhook_filters = f;
        sp.n_webhook_filters = 3;
        sp.pre_webhook_retry_count = cs_str_c("2");
        sp.post_webhook_retry_count = cs_str_c("3");
        cs_service_view v;
        cs_err e = cs_service_create_with(s, &sp, &v);
        if (!e) memcpy(c->is[1], v.sid, CS_SID_BUFSZ);
        return e;
    }
    case 43: { /* typed forms; a URL back to null */
        cs_service_params sp = {0};
        static const cs_webhook_event f[] = {CS_WEBHOOK_ON_MESSAGE_UPDATED};
        sp.pre_webhook_url = cs_str_c("");
        sp.webhook_method_value = CS_WEBHOOK_METHOD_POST;
        sp.webhook_filter_values = f;
        sp.n_webhook_filter_values = 1;
        sp.post_webhook_retry_count_value = CS_RETRY_COUNT(1);
        return cs_service_update_with(s, cs_str_c(c->is[1]), &sp, NULL);
    }
    case 44: { /* filters back to null, another URL */
        cs_service_params sp = {0};
        cs_str f[1] = {cs_str_c("")};
        sp.post_webhook_url = cs_str_c("https://other.example/x");
        sp.webhook_filters = f;
        sp.n_webhook_filters = 1;
        return cs_service_update_with(s, cs_str_c(c->is[1]), &sp, NULL);
    }
    case 45: return cs_media_delete(s, cs_str_c(c->is[0]), cs_str_c(c->me[3]));
    }
    abort();
}

/* Runs the whole session on a clean store with a journal hook, keeping the
 * records and the final dump. */
static void record_session(tu_journal *j, cs_buf *final_dump) {
    cs_options o = options(NULL, NULL, script_clock);
    cs_store *s;
    if (cs_store_new(&o, &s)) abort();
    memset(j, 0, sizeof *j);
    if (cs_store_set_journal(s, tu_journal_hook, j)) abort();
    sc c;
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < N_SCRIPT; i++) {
        cs_err e = run_op(s, &c, i);
        if (e) {
            fprintf(stderr, "script op %s: %s\n", SCRIPT[i].name, cs_err_name(e));
            abort();
        }
        if (j->n != i + 1) {
            fprintf(stderr, "script op %s: %zu records\n", SCRIPT[i].name, j->n);
            abort();
        }
    }
    if (cs_store_check(s)) abort();
    dump_store(s, final_dump);
    cs_store_free(s);
}

static void init_big_body(void) {
    for (size_t i = 0; i + 1 < sizeof big_body; i++)
        big_body[i] = (char)('a' + i % 26);
    big_body[sizeof big_body - 1] = '\0';
}

/* ---- snapshot images ---------------------------------------------------- */

/* A realistic store: the session up to the clear (two services, three
 * channels, media attached and not, gaps, edits, LastUpdatedBy, two SID
 * epochs), then 600 more messages in the lobby, over two more epochs (an
 * index beyond two index blocks) of
 * which every third is deleted and every fifth edited, one with a
 * 30000-byte body (a block of its own, beyond the loader's first buffer). */
static cs_store *realistic_store(void) {
    cs_options o = options(NULL, NULL, script_clock);
    cs_store *s;
    if (cs_store_new(&o, &s)) abort();
    sc c;
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < SCRIPT_BEFORE_CLEAR; i++)
        if (run_op(s, &c, i)) abort();
    for (int k = 0; k < 600; k++) {
        cs_message_params mp = {0};
        char body[64], sid[CS_SID_BUFSZ];
        snprintf(body, sizeof body, "bulk message %d", k);
        mp.body = cs_str_c(body);
        if (k % 4 == 0) mp.from = cs_str_c(k % 8 ? "mallory" : "niaj");
        if (k % 9 == 0) mp.last_updated_by = cs_str_c("olivia");
        if (k % 10 == 0) mp.attributes = cs_str_c("{\"bulk\": true}");
        if (k == 300) mp.body = cs_str_c(big_body);
        if ((k == 200 || k == 400) && cs_store_new_epoch(s, NULL)) abort();
        if (msg_new(s, c.is[0], c.ch[0], sid, &mp)) abort();
        if (k % 5 == 0 && k != 300) {
            cs_message_params up = {0};
            up.body = cs_str_c(k % 2 ? "edited" : "edited, and longer than it was");
            up.last_updated_by = cs_str_c("peggy");
            if (msg_edit(s, c.is[0], c.ch[0], sid, &up)) abort();
        }
        if (k % 3 == 1 &&
            cs_message_delete(s, cs_str_c(c.is[0]), cs_str_c(c.ch[0]),
                              cs_str_c(sid), CS_STR_ABSENT))
            abort();
    }
    if (cs_store_check(s)) abort();
    return s;
}

TEST(snapshot_load_every_allocation) {
    init_big_body();
    cs_store *orig = realistic_store();
    tu_mem img = {0};
    REQUIRE(cs_snapshot_save(orig, tu_mem_write, &img) == CS_OK);
    cs_buf want;
    dump_store(orig, &want);
    cs_store_free(orig);

    /* The clean load: how many allocations it makes. */
    tu_fail_alc a;
    cs_allocator alc;
    cs_options o = options(&a, &alc, wrong_clock);
    cs_store *s = NULL;
    cs_decode_error de = {0, NULL};
    img.pos = 0;
    CHECK_INT(cs_snapshot_load(&o, tu_mem_read, &img, &s, &de), CS_OK);
    REQUIRE(s);
    long allocs = a.count;
    CHECK_INT(cs_store_check(s), CS_OK);
    cs_buf got;
    dump_store(s, &got);
    CHECK(tu_same_buf(&got, &want));
    cs_buf_free(&got);
    cs_store_free(s);
    CHECK_INT(a.live, 0);

    long loads = 0, bad = 0;
    for (int persist = 0; persist < 2; persist++) {
        for (long n = 1; n <= allocs && bad < 5; n++) {
            o = options(&a, &alc, wrong_clock);
            a.fail_at = n;
            a.persist = persist;
            s = (cs_store *)&a; /* must become NULL */
            de = (cs_decode_error){0, NULL};
            img.pos = 0;
            cs_err e = cs_snapshot_load(&o, tu_mem_read, &img, &s, &de);
            loads++;
            if (e != CS_E_NOMEM || s != NULL || a.failures == 0) {
                bad++;
                CHECK_FAIL_("load n=%ld persist=%d: %s, out %p, %ld failures",
                            n, persist, cs_err_name(e), (void *)s, a.failures);
                if (e == CS_OK && s) cs_store_free(s);
            } else if (!de.reason) {
                bad++;
                CHECK_FAIL_("load n=%ld: NOMEM without a reason", n);
            }
            if (a.live) {
                bad++;
                CHECK_FAIL_("load n=%ld persist=%d: %zu bytes leaked", n,
                            persist, a.live);
            }
        }
    }
    printf("  image of %zu bytes: %ld allocations, %ld failing loads\n", img.n,
           allocs, loads);
    CHECK(allocs > 50);
    cs_buf_free(&want);
    free(img.p);
}

/* ---- journal apply ------------------------------------------------------ */

/* A store in the state before record i: records 0..i-1 applied to a fresh
 * store with the writer's seed (its keys) and a clock that is not the
 * writer's. */
static cs_store *state_before(tu_fail_alc *a, cs_allocator *alc, const tu_journal *j,
                              size_t i) {
    cs_options o = options(a, alc, wrong_clock);
    cs_store *s;
    if (cs_store_new(&o, &s)) abort();
    for (size_t k = 0; k < i; k++) {
        bool ap = false;
        if (cs_journal_apply(s, j->rec[k], j->len[k], &ap, NULL) || !ap) {
            fprintf(stderr, "prefix record %zu refused\n", k);
            abort();
        }
    }
    return s;
}

/* The record of message i's index in its channel, read through the
 * record's SIDs (header 40 bytes, then service, channel, message SIDs). */
static const void *update_target(const cs_store *s, const uint8_t *rec) {
    char is[CS_SID_BUFSZ], ch[CS_SID_BUFSZ];
    cs__sid_format('I', 'S', rec + 40, is);
    cs__sid_format('C', 'H', rec + 56, ch);
    cs_channel *c;
    if (cs__resolve_channel(s, cs_str_c(is), cs_str_c(ch), &c)) return NULL;
    int64_t serial;
    uint64_t ix;
    cs__msg_sid_open(s, rec + 72, &serial, &ix);
    return serial == c->serial ? cs__dix_find(&c->msgs, cs__ix_index(ix))
                               : NULL;
}

/* Sweeps record i: with journaled, the target store has a journal hook
 * (which must hand on exactly the applied record) and an observer. Returns
 * the allocations the clean apply makes; *path the update path taken. */
static long sweep_record(const tu_journal *j, size_t i, bool journaled, int *path,
                         long *sites) {
    tu_fail_alc a;
    cs_allocator alc;
    tu_journal rj;
    long events = 0;
    cs_store *s = state_before(&a, &alc, j, i);
    memset(&rj, 0, sizeof rj);
    if (journaled && (cs_store_set_journal(s, tu_journal_hook, &rj) ||
                      cs_observer_add(s, count_event, &events, NULL)))
        abort();
    cs_buf before, after;
    dump_store(s, &before);
    const void *m0 = j->rec[i][1] == CS__J_MESSAGE_UPDATE
                         ? update_target(s, j->rec[i]) : NULL;
    long base = a.count;
    bool ap = false;
    cs_decode_error de = {0, NULL};
    cs_err e = cs_journal_apply(s, j->rec[i], j->len[i], &ap, &de);
    long allocs = a.count - base;
    if (e || !ap) {
        CHECK_FAIL_("record %zu (%s): clean apply %s (%s)", i, SCRIPT[i].name,
                    cs_err_name(e), de.reason ? de.reason : "-");
        cs_store_free(s);
        cs_buf_free(&before);
        return 0;
    }
    if (m0) {
        const void *m1 = update_target(s, j->rec[i]);
        *path = m1 == m0 ? UPD_IN_PLACE : UPD_REBUILT;
    }
    if (journaled && (rj.n != 1 || rj.len[0] != j->len[i] ||
                      memcmp(rj.rec[0], j->rec[i], j->len[i]) || events != 1))
        CHECK_FAIL_("record %zu (%s): applied, it was journaled as %zu "
                    "record(s), %ld event(s), not as the same record",
                    i, SCRIPT[i].name, rj.n, events);
    CHECK_INT(cs_store_check(s), CS_OK);
    dump_store(s, &after);
    cs_store_free(s);
    tu_journal_free(&rj);
    CHECK_INT(a.live, 0);
    for (int persist = 0; persist < 2; persist++) {
        for (long n = 1; n <= allocs; n++) {
            s = state_before(&a, &alc, j, i);
            events = 0;
            if (journaled && (cs_store_set_journal(s, tu_journal_hook, &rj) ||
                              cs_observer_add(s, count_event, &events, NULL)))
                abort();
            a.fail_at = a.count + n;
            a.persist = persist;
            ap = true;
            e = cs_journal_apply(s, j->rec[i], j->len[i], &ap, NULL);
            a.fail_at = 0;
            CHECK_INT(cs_store_check(s), CS_OK);
            cs_buf now;
            dump_store(s, &now);
            if (e) {
                if (e != CS_E_NOMEM)
                    CHECK_FAIL_("record %zu (%s) n=%ld: %s", i, SCRIPT[i].name,
                                n, cs_err_name(e));
                if (ap) CHECK_FAIL_("record %zu n=%ld: failed but applied", i, n);
                if (!tu_same_buf(&now, &before))
                    CHECK_FAIL_("record %zu (%s) n=%ld persist=%d: store "
                                "changed by a failed apply",
                                i, SCRIPT[i].name, n, persist);
                if (rj.calls || events)
                    CHECK_FAIL_("record %zu (%s) n=%ld: failed apply handed "
                                "on %ld record(s), %ld event(s)",
                                i, SCRIPT[i].name, n, rj.calls, events);
                /* Then the clean apply succeeds on that very store. */
                tu_journal_free(&rj);
                e = cs_journal_apply(s, j->rec[i], j->len[i], &ap, NULL);
                if (e || !ap)
                    CHECK_FAIL_("record %zu (%s) n=%ld: retry %s", i,
                                SCRIPT[i].name, n, cs_err_name(e));
                cs_buf_free(&now);
                dump_store(s, &now);
            }
            if (!tu_same_buf(&now, &after))
                CHECK_FAIL_("record %zu (%s) n=%ld persist=%d: the store "
                            "differs from the clean apply's",
                            i, SCRIPT[i].name, n, persist);
            CHECK_INT(cs_store_check(s), CS_OK);
            cs_buf_free(&now);
            cs_store_free(s);
            tu_journal_free(&rj);
            if (a.live)
                CHECK_FAIL_("record %zu n=%ld: %zu bytes leaked", i, n, a.live);
            ++*sites;
        }
    }
    cs_buf_free(&before);
    cs_buf_free(&after);
    return allocs;
}

TEST(journal_apply_every_allocation) {
    init_big_body();
    tu_journal j;
    cs_buf final_dump;
    record_session(&j, &final_dump);
    REQUIRE(j.n == N_SCRIPT);
    bool kinds[CS__J_OPS] = {false};
    int paths[3] = {0};
    long sites = 0, total = 0, n[2][N_SCRIPT];
    for (int journaled = 0; journaled < 2; journaled++) {
        for (size_t i = 0; i < j.n; i++) {
            int path = UPD_NONE;
            n[journaled][i] = sweep_record(&j, i, journaled, &path, &sites);
            total += n[journaled][i];
            kinds[j.rec[i][1]] = true;
            if (SCRIPT[i].upd && path != SCRIPT[i].upd)
                CHECK_FAIL_("%s took the %s path", SCRIPT[i].name,
                            path == UPD_IN_PLACE ? "in-place" : "rebuild");
            if (!journaled) paths[path]++;
        }
    }
    printf("  record                         allocations (plain, journaled)\n");
    for (size_t i = 0; i < j.n; i++) {
        printf("  %-30s %3ld %3ld\n", SCRIPT[i].name, n[0][i], n[1][i]);
        /* Journaled, the apply also builds the record it hands on. */
        CHECK(n[1][i] >= n[0][i] + 1);
    }
    for (int k = 1; k < CS__J_OPS; k++)
        if (!kinds[k]) CHECK_FAIL_("no record of kind %d swept", k);
    CHECK(paths[UPD_IN_PLACE] >= 2 && paths[UPD_REBUILT] >= 3);
    printf("  %zu records (updates: %d in place, %d rebuilt), %ld allocations, "
           "%ld failing applies\n",
           j.n, paths[UPD_IN_PLACE], paths[UPD_REBUILT], total, sites);
    /* And the whole journal rebuilds the session's store. */
    tu_fail_alc a;
    cs_allocator alc;
    cs_store *s = state_before(&a, &alc, &j, j.n);
    cs_buf got;
    dump_store(s, &got);
    CHECK(tu_same_buf(&got, &final_dump));
    cs_buf_free(&got);
    cs_store_free(s);
    cs_buf_free(&final_dump);
    tu_journal_free(&j);
}

/* ---- journal refusal ---------------------------------------------------- */

/* Allocations each op of the session makes, journaled. */
static void session_allocs(long allocs[N_SCRIPT]) {
    tu_fail_alc a;
    cs_allocator alc;
    cs_options o = options(&a, &alc, script_clock);
    cs_store *s;
    tu_journal j;
    memset(&j, 0, sizeof j);
    long events = 0;
    if (cs_store_new(&o, &s) || cs_store_set_journal(s, tu_journal_hook, &j) ||
        cs_observer_add(s, count_event, &events, NULL))
        abort();
    sc c;
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < N_SCRIPT; i++) {
        long base = a.count;
        if (run_op(s, &c, i)) abort();
        allocs[i] = a.count - base;
    }
    cs_store_free(s);
    tu_journal_free(&j);
}

/* The session on a store whose hook refuses its k-th call, beside a twin
 * whose hook accepts but whose allocation of that call's record (its last
 * allocation) fails: a refusal must be undone exactly like that failure,
 * so both stores hold the same bytes afterwards (the record's buffer is
 * freed). Then the refused call is retried and the session goes on: it
 * must end as the clean session did, with the same journal. */
TEST(journal_refusal_every_call) {
    init_big_body();
    tu_journal clean;
    cs_buf final_dump;
    record_session(&clean, &final_dump);
    long allocs[N_SCRIPT];
    session_allocs(allocs);
    long swept = 0, kept = 0;
    for (size_t k = 1; k <= N_SCRIPT; k++) {
        size_t i0 = k - 1; /* the op refused */
        tu_fail_alc a, ta;
        cs_allocator alc, talc;
        cs_options o = options(&a, &alc, script_clock);
        cs_options to = options(&ta, &talc, script_clock);
        cs_store *s, *twin;
        REQUIRE(cs_store_new(&o, &s) == CS_OK);
        REQUIRE(cs_store_new(&to, &twin) == CS_OK);
        tu_journal j, tj;
        memset(&j, 0, sizeof j);
        memset(&tj, 0, sizeof tj);
        j.refuse_at = (long)k;
        long events = 0, tevents = 0;
        REQUIRE(cs_store_set_journal(s, tu_journal_hook, &j) == CS_OK);
        REQUIRE(cs_observer_add(s, count_event, &events, NULL) == CS_OK);
        REQUIRE(cs_store_set_journal(twin, tu_journal_hook, &tj) == CS_OK);
        REQUIRE(cs_observer_add(twin, count_event, &tevents, NULL) == CS_OK);
        sc c, tc;
        memset(&c, 0, sizeof c);
        memset(&tc, 0, sizeof tc);
        for (size_t i = 0; i < i0; i++)
            if (run_op(s, &c, i) || run_op(twin, &tc, i))
                CHECK_FAIL_("k=%zu op %s failed", k, SCRIPT[i].name);
        const char *name = SCRIPT[i0].name;
        cs_buf before, now;
        dump_store(s, &before);
        size_t bytes = store_bytes(s);
        long ev0 = events;
        cs_err e = run_op(s, &c, i0);
        if (e != CS_E_JOURNAL_REFUSED)
            CHECK_FAIL_("%s refused: %s", name, cs_err_name(e));
        CHECK_INT(cs_store_check(s), CS_OK);
        dump_store(s, &now);
        if (!tu_same_buf(&now, &before))
            CHECK_FAIL_("%s refused: the store changed", name);
        if (events != ev0)
            CHECK_FAIL_("%s refused: %ld event(s)", name, events - ev0);
        if (j.calls != (long)k || j.n != i0)
            CHECK_FAIL_("%s refused: hook called %ld times", name, j.calls);
        /* The twin: the record's allocation fails. */
        ta.fail_at = ta.count + allocs[i0];
        e = run_op(twin, &tc, i0);
        ta.fail_at = 0;
        if (e != CS_E_NOMEM || tj.calls != (long)i0)
            CHECK_FAIL_("%s, record allocation failing: %s, hook called %ld "
                        "times", name, cs_err_name(e), tj.calls);
        if (store_bytes(s) != store_bytes(twin))
            CHECK_FAIL_("%s refused: %zu bytes, %zu when its record could not "
                        "be allocated", name, store_bytes(s), store_bytes(twin));
        if (store_bytes(s) != bytes) {
            /* Capacity reserved before the record (a service or channel
             * sequence slot, a message index block) stays for the retry,
             * as it does after an allocation failure. */
            printf("  %-30s refused: %zu bytes of capacity stay reserved\n",
                   name, store_bytes(s) - bytes);
            kept++;
        }
        cs_buf_free(&before);
        cs_buf_free(&now);
        /* Retried, it goes through as in the clean session. */
        e = run_op(s, &c, i0);
        if (e) CHECK_FAIL_("%s retried: %s", name, cs_err_name(e));
        if (events != ev0 + 1)
            CHECK_FAIL_("%s retried: %ld events", name, events - ev0);
        for (size_t i = k; i < N_SCRIPT; i++)
            if (run_op(s, &c, i))
                CHECK_FAIL_("k=%zu op %s failed", k, SCRIPT[i].name);
        swept++;
        /* The refusal left no trace: same store, same journal. */
        cs_buf got;
        dump_store(s, &got);
        if (!tu_same_buf(&got, &final_dump))
            CHECK_FAIL_("k=%zu: the session ends differently", k);
        cs_buf_free(&got);
        bool same_journal = j.n == clean.n;
        for (size_t i = 0; same_journal && i < j.n; i++)
            same_journal = j.len[i] == clean.len[i] &&
                           j.seq[i] == clean.seq[i] &&
                           !memcmp(j.rec[i], clean.rec[i], j.len[i]);
        if (!same_journal)
            CHECK_FAIL_("k=%zu: the journal differs from the clean one", k);
        CHECK_INT(events, (long)N_SCRIPT);
        cs_store_free(s);
        cs_store_free(twin);
        tu_journal_free(&j);
        tu_journal_free(&tj);
        CHECK_INT(a.live, 0);
        CHECK_INT(ta.live, 0);
    }
    printf("  %ld calls refused, one at a time (%ld kept reserved capacity)\n",
           swept, kept);
    CHECK_INT(swept, (long)N_SCRIPT);
    cs_buf_free(&final_dump);
    tu_journal_free(&clean);
}

static const check_test tests[] = {
    T(snapshot_load_every_allocation),
    T(journal_apply_every_allocation),
    T(journal_refusal_every_call),
};
CHECK_MAIN(tests)
