/* Allocation failure, SQLite's way: for each mutating call of a realistic
 * scenario, fail allocation number N (once, and from N on) for every N the
 * call makes. Each failure must return CS_E_NOMEM, pass the invariant
 * checker and leave a dump byte-identical to the one before the call; each
 * success (an optional allocation failed) must equal the clean result. No
 * byte may leak. */
#include "dump.h"
#include "test_util.h"

static int64_t fixed_clock(void *ctx) {
    (void)ctx;
    return 1700000000;
}

/* ---- scenario ----------------------------------------------------------- */

typedef struct ctx {
    char is[CS_SID_BUFSZ], is2[CS_SID_BUFSZ];
    char im[8][CS_SID_BUFSZ];
    char me[3][CS_SID_BUFSZ];
    int n_im;
} ctx;

typedef cs_err (*op_fn)(cs_store *s, ctx *c);

static cs_err op_service(cs_store *s, ctx *c) {
    cs_service_view v;
    cs_err e = cs_service_create(s, cs_str_c("first"), &v);
    if (!e) memcpy(c->is, v.sid, CS_SID_BUFSZ);
    return e;
}
static cs_err op_service2(cs_store *s, ctx *c) {
    cs_service_view v;
    cs_err e = cs_service_create(s, cs_str_c("second"), &v);
    if (!e) memcpy(c->is2, v.sid, CS_SID_BUFSZ);
    return e;
}
static cs_err op_service_update(cs_store *s, ctx *c) {
    return cs_service_update(s, cs_str_c(c->is2), cs_str_c("renamed"), NULL);
}
/* Every webhook setting, then URLs replaced (the old ones freed). */
static cs_err op_service_webhooks(cs_store *s, ctx *c) {
    cs_service_params p = {0};
    cs_str f[2] = {cs_str_c("onMessageSent"), cs_str_c("onChannelAdded")};
    p.pre_webhook_url = cs_str_c("https://pre.example.com/x");
    p.post_webhook_url = cs_str_c("http://127.0.0.1:9/post");
    p.webhook_method = cs_str_c("GET");
    p.webhook_filters = f;
    p.n_webhook_filters = 2;
    p.post_webhook_retry_count = cs_str_c("2");
    return cs_service_update_with(s, cs_str_c(c->is), &p, NULL);
}
static cs_err op_service_webhooks_again(cs_store *s, ctx *c) {
    cs_service_params p = {0};
    p.friendly_name = cs_str_c("hooks");
    p.pre_webhook_url = cs_str_c("");
    p.post_webhook_url = cs_str_c("https://post.example.com/y");
    return cs_service_update_with(s, cs_str_c(c->is), &p, NULL);
}
static cs_err op_service_with(cs_store *s, ctx *c) {
    (void)c;
    cs_service_params p = {0};
    p.friendly_name = cs_str_c("third");
    p.post_webhook_url = cs_str_c("http://localhost/hook");
    p.webhook_method_value = CS_WEBHOOK_METHOD_POST;
    return cs_service_create_with(s, &p, NULL);
}
static cs_err op_channel(cs_store *s, ctx *c) {
    cs_channel_params p = {0};
    p.unique_name = cs_str_c("general");
    p.friendly_name = cs_str_c("General");
    p.attributes = cs_str_c("{\"topic\": \"all\"}");
    p.created_by = cs_str_c("admin");
    return cs_channel_create(s, cs_str_c(c->is), &p, NULL);
}
static cs_err op_channel_private(cs_store *s, ctx *c) {
    cs_channel_params p = {0};
    p.unique_name = cs_str_c("secret");
    p.type = cs_str_c("private");
    return cs_channel_create(s, cs_str_c(c->is), &p, NULL);
}
static cs_err op_channel_plain(cs_store *s, ctx *c) {
    cs_channel_params p = {0};
    return cs_channel_create(s, cs_str_c(c->is2), &p, NULL);
}
static cs_err op_media(cs_store *s, ctx *c) {
    cs_media_view v;
    int i = c->me[0][0] ? (c->me[1][0] ? 2 : 1) : 0;
    cs_err e = cs_media_create(s, cs_str_c(c->is), cs_str_c("image/png"),
                               cs_str_c("cat.png"), 1234, &v);
    if (!e) memcpy(c->me[i], v.sid, CS_SID_BUFSZ);
    return e;
}
static cs_err msg(cs_store *s, ctx *c, const char *ch, const char *from,
                  const char *lub, const char *attr, const char *media) {
    cs_message_params p = {0};
    p.body = cs_str_c("hello there");
    p.from = cs_str_c(from);
    p.last_updated_by = cs_str_c(lub);
    p.attributes = cs_str_c(attr);
    p.media_sid = cs_str_c(media);
    cs_message_view v;
    cs_err e = cs_message_create(s, cs_str_c(c->is), cs_str_c(ch), &p, &v);
    if (!e && c->n_im < 8) memcpy(c->im[c->n_im++], v.sid, CS_SID_BUFSZ);
    return e;
}
static cs_err op_msg_first(cs_store *s, ctx *c) {
    return msg(s, c, "general", NULL, NULL, NULL, NULL);
}
static cs_err op_msg_idents(cs_store *s, ctx *c) {
    return msg(s, c, "general", "alice", "bob", "{\"k\": [1, 2]}", NULL);
}
static cs_err op_msg_media(cs_store *s, ctx *c) {
    return msg(s, c, "general", "carol", NULL, NULL, c->me[0]);
}
static cs_err op_msg_private(cs_store *s, ctx *c) {
    return msg(s, c, "secret", "dave", NULL, "{}", NULL);
}
/* Prefix steps (not swept): fill the store so that the next create starts
 * a new index block or arena chunk, or the next delete merges blocks or
 * frees or evacuates a chunk. */
static size_t fill_target;
static cs_err prep_fill(cs_store *s, ctx *c) {
    /* The lobby gets no deletes before this: its count is its next index,
     * which decides index blocks and the directory. */
    for (;;) {
        cs_channel_view cv;
        cs_err e = cs_channel_fetch(s, cs_str_c(c->is), cs_str_c("lobby"), &cv);
        if (e || cv.messages_count >= fill_target) return e;
        e = msg(s, c, "lobby", cv.messages_count % 2 ? "alice" : "erin", NULL,
                NULL, NULL);
        if (e) return e;
    }
}
static cs_err prep_fill_then_thin(cs_store *s, ctx *c) {
    cs_err e = prep_fill(s, c);
    /* Delete all but every 16th message of the lobby, keeping the last. */
    cs_page_params q = {0};
    q.page_size = cs_str_c("1000");
    cs_page pg;
    if (e || (e = cs_message_list(s, cs_str_c(c->is), cs_str_c("lobby"), &q, &pg)))
        return e;
    char (*sids)[CS_SID_BUFSZ] = malloc(pg.count * CS_SID_BUFSZ);
    size_t n = 0;
    cs_message_view v;
    while (cs_page_next_message(s, &pg, &v))
        if (v.index % 16 != 0 && v.index > 8) memcpy(sids[n++], v.sid, CS_SID_BUFSZ);
    for (size_t i = 0; i + 1 < n && !e; i++)
        e = cs_message_delete(s, cs_str_c(c->is), cs_str_c("lobby"),
                              cs_str_c(sids[i]), CS_STR_ABSENT);
    if (!e && n) memcpy(c->im[7], sids[n - 1], CS_SID_BUFSZ);
    free(sids);
    return e;
}
static cs_err op_msg_one(cs_store *s, ctx *c) {
    return msg(s, c, "lobby", "zed", "yan", "{\"x\": 1}", NULL);
}
static cs_err op_msg_delete_last_kept(cs_store *s, ctx *c) {
    return cs_message_delete(s, cs_str_c(c->is), cs_str_c("lobby"),
                             cs_str_c(c->im[7]), CS_STR_ABSENT);
}

static cs_err op_update_body(cs_store *s, ctx *c) {
    cs_message_params p = {0};
    p.body = cs_str_c("edited body, longer than before");
    p.last_updated_by = cs_str_c("frank");
    return cs_message_update(s, cs_str_c(c->is), cs_str_c("general"),
                             cs_str_c(c->im[1]), &p, NULL);
}
static cs_err op_update_fields(cs_store *s, ctx *c) {
    cs_message_params p = {0};
    p.from = cs_str_c("grace");
    p.date_updated = cs_str_c("2020-01-01T00:00:00Z");
    return cs_message_update(s, cs_str_c(c->is), cs_str_c("general"),
                             cs_str_c(c->im[0]), &p, NULL);
}
static cs_err op_update_attrs(cs_store *s, ctx *c) {
    cs_message_params p = {0};
    p.attributes = cs_str_c("[true, false, null]");
    return cs_message_update(s, cs_str_c(c->is), cs_str_c("general"),
                             cs_str_c(c->im[2]), &p, NULL);
}
static cs_err op_channel_update(cs_store *s, ctx *c) {
    cs_channel_params p = {0};
    p.unique_name = cs_str_c("lobby");
    p.friendly_name = cs_str_c("Lobby");
    p.attributes = cs_str_c("{}");
    p.created_by = cs_str_c("heidi");
    return cs_channel_update(s, cs_str_c(c->is), cs_str_c("general"), &p, NULL);
}
static cs_err op_msg_delete(cs_store *s, ctx *c) {
    return cs_message_delete(s, cs_str_c(c->is), cs_str_c("lobby"),
                             cs_str_c(c->im[1]), CS_STR_ABSENT);
}
static cs_err op_channel_delete(cs_store *s, ctx *c) {
    return cs_channel_delete(s, cs_str_c(c->is), cs_str_c("secret"),
                             cs_str_c("true"));
}
static cs_err op_media_delete(cs_store *s, ctx *c) { /* never attached */
    return cs_media_delete(s, cs_str_c(c->is), cs_str_c(c->me[1]));
}
static cs_err op_service_delete(cs_store *s, ctx *c) {
    return cs_service_delete(s, cs_str_c(c->is2));
}
static void nop_observer(void *ctx_, const cs_event *ev) {
    (void)ctx_;
    (void)ev;
}
static cs_err op_observer(cs_store *s, ctx *c) {
    (void)c;
    return cs_observer_add(s, nop_observer, NULL, NULL);
}

static const struct {
    const char *name;
    op_fn fn;
} ops[] = {
    {"service_create", op_service},
    {"service_create_2", op_service2},
    {"service_update", op_service_update},
    {"observer_add", op_observer},
    {"channel_create_named", op_channel},
    {"channel_create_private", op_channel_private},
    {"channel_create_plain", op_channel_plain},
    {"media_create", op_media},
    {"media_create_2", op_media},
    {"message_create_first", op_msg_first},
    {"message_create_identities", op_msg_idents},
    {"message_create_media", op_msg_media},
    {"message_create_private", op_msg_private},
    {"message_update_body", op_update_body},
    {"message_update_fields", op_update_fields},
    {"message_update_attributes", op_update_attrs},
    {"channel_update_rename", op_channel_update},
    {"message_delete", op_msg_delete},
    {"media_delete", op_media_delete},
    {"channel_delete", op_channel_delete},
    {"service_delete", op_service_delete},
    {"service_update_webhooks", op_service_webhooks},
    {"service_update_webhooks_again", op_service_webhooks_again},
    {"service_create_with_webhooks", op_service_with},
};
#define N_OPS (sizeof ops / sizeof ops[0])

static op_fn prep; /* extra prefix step after the ops, or NULL */

/* With journaled set, every store has an accepting journal hook: each call
 * also allocates its record, which fails in turn like any allocation. The
 * hook keeps the last record it was handed. */
static bool journaled;
typedef struct jlast {
    long calls;
    uint8_t *rec;
    size_t len;
} jlast;
static jlast jl;

static int keep_last(void *jctx, uint64_t seq, const void *rec, size_t len) {
    jlast *j = jctx;
    (void)seq;
    j->calls++;
    free(j->rec);
    j->rec = malloc(len);
    memcpy(j->rec, rec, len);
    j->len = len;
    return 0;
}

static void jl_reset(void) {
    free(jl.rec);
    memset(&jl, 0, sizeof jl);
}

static cs_store *build(tu_fail_alc *a, ctx *c, size_t upto) {
    cs_allocator alc = {tu_fa_malloc, tu_fa_free, a};
    cs_options o = CS_OPTIONS_INIT;
    o.allocator = &alc;
    o.use_seed = true;
    o.seed = 7;
    o.clock = fixed_clock;
    memset(a, 0, sizeof *a);
    memset(c, 0, sizeof *c);
    cs_store *s;
    if (cs_store_new(&o, &s)) abort();
    for (size_t i = 0; i < upto; i++)
        if (ops[i].fn(s, c)) abort();
    if (prep && prep(s, c)) abort();
    if (journaled && cs_store_set_journal(s, keep_last, &jl)) abort();
    jl_reset();
    return s;
}

static long sweep_sites = 0;

/* Sweeps one op; returns the number of allocations its clean run makes. */
static long sweep(size_t k, op_fn fn, const char *name) {
    tu_fail_alc a;
    ctx c;
    cs_buf before, after;
    cs_store *s = build(&a, &c, k);
    dump_store(s, &before);
    long base = a.count;
    if (fn(s, &c)) {
        CHECK_FAIL_("%s: clean run failed", name);
        return 0;
    }
    long allocs = a.count - base;
    dump_store(s, &after);
    cs_store_free(s);
    CHECK_INT(a.live, 0);
    /* The clean run's record (journaled, a mutating call hands one). */
    jlast want = jl;
    memset(&jl, 0, sizeof jl);
    if (journaled && want.calls != (fn == op_observer ? 0 : 1))
        CHECK_FAIL_("%s: %ld records", name, want.calls);
    for (int persist = 0; persist < 2; persist++) {
        for (long n = 1; n <= allocs; n++) {
            s = build(&a, &c, k);
            a.fail_at = a.count + n;
            a.persist = persist;
            cs_err e = fn(s, &c);
            a.fail_at = 0;
            CHECK_INT(cs_store_check(s), CS_OK);
            cs_buf now;
            dump_store(s, &now);
            if (e) {
                if (e != CS_E_NOMEM)
                    CHECK_FAIL_("%s n=%ld: %s", name, n, cs_err_name(e));
                if (!tu_same_buf(&now, &before))
                    CHECK_FAIL_("%s n=%ld persist=%d: store changed by a failed "
                                "call", name, n, persist);
                /* No record of a change that did not happen. */
                if (jl.calls)
                    CHECK_FAIL_("%s n=%ld: failed call journaled", name, n);
            } else if (!tu_same_buf(&now, &after)) {
                CHECK_FAIL_("%s n=%ld: success differs from clean run", name, n);
            } else if (jl.calls != want.calls ||
                       (jl.calls && (jl.len != want.len ||
                                     memcmp(jl.rec, want.rec, jl.len)))) {
                CHECK_FAIL_("%s n=%ld: success journaled differently", name, n);
            }
            cs_buf_free(&now);
            cs_store_free(s);
            if (a.live) CHECK_FAIL_("%s n=%ld: %zu bytes leaked", name, n, a.live);
            sweep_sites++;
        }
    }
    cs_buf_free(&before);
    cs_buf_free(&after);
    free(want.rec);
    jl_reset();
    return allocs;
}

TEST(oom_every_mutating_call) {
    for (size_t k = 0; k < N_OPS; k++) {
        long n = sweep(k, ops[k].fn, ops[k].name);
        printf("  %-28s %ld allocations swept\n", ops[k].name, n);
        CHECK(n >= 0);
    }
}

/* Creates that start a new index block (every 256), grow the index
 * directory's first page (at 1024) or add a directory page (at 131072:
 * 512 blocks a page), or open a new arena chunk, and deletes that free or
 * evacuate chunks, swept on stores sized to hit them. */
TEST(oom_growth_and_compaction) {
    static const size_t sizes[] = {3,   7,    63,   64,   255,   256,
                                   511, 1000, 1023, 1024, 131072};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fill_target = sizes[i];
        prep = prep_fill;
        long n = sweep(17, op_msg_one, "message_create_at_size");
        CHECK(n >= 1);
        printf("  create at %4zu messages: %ld allocations swept\n", sizes[i], n);
    }
    fill_target = 1500;
    prep = prep_fill_then_thin;
    long n = sweep(17, op_msg_delete_last_kept, "message_delete_compaction");
    printf("  delete after thinning: %ld allocations swept\n", n);
    prep = NULL;
}

TEST(oom_store_new) {
    for (long n = 1; n < 10; n++) {
        tu_fail_alc a;
        memset(&a, 0, sizeof a);
        a.fail_at = n;
        cs_allocator alc = {tu_fa_malloc, tu_fa_free, &a};
        cs_options o = CS_OPTIONS_INIT;
        o.allocator = &alc;
        cs_store *s = NULL;
        cs_err e = cs_store_new(&o, &s);
        if (e == CS_OK) {
            CHECK(s != NULL);
            cs_store_free(s);
            CHECK_INT(a.live, 0);
            return;
        }
        CHECK_INT(e, CS_E_NOMEM);
        CHECK(s == NULL);
        CHECK_INT(a.live, 0);
    }
    CHECK_FAIL_("store_new never succeeded");
}

/* The same sweeps with a journal hook installed (accepting): the record's
 * allocation is one of those that fail, a failed call hands no record on,
 * and a call that succeeds despite a failure hands on the clean run's. */
TEST(oom_every_mutating_call_journaled) {
    journaled = true;
    oom_every_mutating_call();
    journaled = false;
}

TEST(oom_growth_and_compaction_journaled) {
    journaled = true;
    oom_growth_and_compaction();
    journaled = false;
}

static const check_test tests[] = {
    T(oom_store_new),
    T(oom_every_mutating_call),
    T(oom_growth_and_compaction),
    T(oom_every_mutating_call_journaled),
    T(oom_growth_and_compaction_journaled),
};
CHECK_MAIN(tests)
