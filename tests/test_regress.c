/* Regression tests for library bugs found by the fuzzers (fuzz/). Each test
 * names the harness that found the bug; the minimised input is in the
 * harness's corpus (fuzz/corpus/<name>/regress-*). */
#include "check.h"

#include <chatstore.h>

#include <stdint.h>

#define S(x) cs_str_c(x)
#define T0 INT64_C(1458851877)

static int64_t fixed_clock(void *ctx) {
    (void)ctx;
    return T0;
}

static cs_store *new_store(const cs_limits *lim) {
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    o.seed = 1;
    o.clock = fixed_clock;
    if (lim) o.limits = *lim;
    cs_store *s = NULL;
    if (cs_store_new(&o, &s) != CS_OK) abort();
    return s;
}

/* fuzz_utf8: the quick length bound of name and identity checks computed
 * limit * 4, which wraps around for limits from 2^62 on (64-bit size_t):
 * with name_chars = 2^62 every non-empty name was "too long". */
TEST(regress_text_limit_times_four_overflow) {
    cs_limits lim = CS_LIMITS_DEFAULT;
    lim.name_chars = SIZE_MAX / 4 + 1;
    lim.identity_chars = SIZE_MAX / 4 + 1;
    cs_store *s = new_store(&lim);
    cs_service_view sv = {0};
    CHECK_INT(cs_service_create(s, S("abc"), &sv), CS_OK);
    REQUIRE(sv.sid != NULL);
    cs_channel_params cp = {0};
    cp.unique_name = S("general");
    cp.created_by = S("alice");
    cs_channel_view cv;
    CHECK_INT(cs_channel_create(s, S(sv.sid), &cp, &cv), CS_OK);
    cs_message_params mp = {0};
    mp.from = S("bob");
    CHECK_INT(cs_message_create(s, S(sv.sid), S("general"), &mp, NULL), CS_OK);
    /* the largest limit: no wrap to a small bound either */
    lim.name_chars = SIZE_MAX;
    CHECK_INT(cs_store_set_limits(s, &lim), CS_OK);
    CHECK_INT(cs_service_update(s, S(sv.sid), S("\xc3\xa9t\xc3\xa9"), NULL),
              CS_OK);
    cs_store_free(s);
}

/* fuzz_ops: observers run "after a committed change", and read-only calls
 * are allowed in them; but during CHANNEL_DELETED the deleted channel was
 * still counted, still reachable by its unique name (with its messages), and
 * cs_store_check reported CORRUPT; during MESSAGE_DELETED the message's
 * identity references were still counted. */
typedef struct seen {
    int events;
    cs_err check;
    cs_err by_name, msg_by_name;
    cs_store_stats stats;
    char friendly[16], unique[16], creator[16], from[16], lub[16];
} seen;

static cs_store *g_store;
static char g_svc[CS_SID_BUFSZ], g_msg[CS_SID_BUFSZ];

static void copy_str(char *dst, cs_str v) {
    size_t n = v.ptr ? (v.len < 15 ? v.len : 15) : 0;
    if (n) memcpy(dst, v.ptr, n);
    dst[n] = '\0';
}

static void on_delete(void *ctx, const cs_event *ev) {
    seen *w = ctx;
    w->events++;
    w->check = cs_store_check(g_store);
    cs_store_stats_get(g_store, &w->stats);
    w->by_name = cs_channel_fetch(g_store, S(g_svc), S("general"), NULL);
    w->msg_by_name =
        cs_message_fetch(g_store, S(g_svc), S("general"), S(g_msg), NULL);
    if (ev->channel) {
        copy_str(w->friendly, ev->channel->friendly_name);
        copy_str(w->unique, ev->channel->unique_name);
        copy_str(w->creator, ev->channel->created_by);
    } else {
        copy_str(w->from, ev->message->from);
        copy_str(w->lub, ev->message->last_updated_by);
    }
}

TEST(regress_channel_delete_observer_sees_commit) {
    cs_store *s = g_store = new_store(NULL);
    cs_service_view sv;
    REQUIRE(cs_service_create(s, S("svc"), &sv) == CS_OK);
    memcpy(g_svc, sv.sid, CS_SID_BUFSZ);
    cs_channel_params cp = {0};
    cp.friendly_name = S("General");
    cp.unique_name = S("general");
    cp.created_by = S("alice"); /* used by this channel only */
    cs_channel_view cv;
    REQUIRE(cs_channel_create(s, S(sv.sid), &cp, &cv) == CS_OK);
    cs_message_params mp = {0};
    mp.from = S("bob");
    cs_message_view mv;
    REQUIRE(cs_message_create(s, S(sv.sid), S("general"), &mp, &mv) == CS_OK);
    memcpy(g_msg, mv.sid, CS_SID_BUFSZ);
    seen w = {0};
    REQUIRE(cs_observer_add(s, on_delete, &w, NULL) == CS_OK);
    CHECK_INT(cs_channel_delete(s, S(sv.sid), S(cv.sid), CS_STR_ABSENT), CS_OK);
    CHECK_INT(w.events, 1);
    CHECK_INT(w.check, CS_OK);
    CHECK_INT(w.by_name, CS_E_NOT_FOUND);
    CHECK_INT(w.msg_by_name, CS_E_NOT_FOUND);
    CHECK_INT(w.stats.channels, 0);
    CHECK_INT(w.stats.messages, 0);
    CHECK_INT(w.stats.identities, 0);
    /* the event's view still reads the deleted channel's fields */
    CHECK_STR(w.friendly, "General");
    CHECK_STR(w.unique, "general");
    CHECK_STR(w.creator, "alice");
    CHECK_INT(cs_store_check(s), CS_OK);
    cs_store_free(s);
}

TEST(regress_message_delete_observer_sees_commit) {
    cs_store *s = g_store = new_store(NULL);
    cs_service_view sv;
    REQUIRE(cs_service_create(s, S("svc"), &sv) == CS_OK);
    memcpy(g_svc, sv.sid, CS_SID_BUFSZ);
    cs_channel_params cp = {0};
    cp.unique_name = S("general");
    REQUIRE(cs_channel_create(s, S(sv.sid), &cp, NULL) == CS_OK);
    cs_message_params mp = {0};
    mp.from = S("carol");          /* both used by this message only */
    mp.last_updated_by = S("dave");
    cs_message_view mv;
    REQUIRE(cs_message_create(s, S(sv.sid), S("general"), &mp, &mv) == CS_OK);
    memcpy(g_msg, mv.sid, CS_SID_BUFSZ);
    seen w = {0};
    REQUIRE(cs_observer_add(s, on_delete, &w, NULL) == CS_OK);
    CHECK_INT(cs_message_delete(s, S(sv.sid), S("general"), S(mv.sid),
                                CS_STR_ABSENT),
              CS_OK);
    CHECK_INT(w.events, 1);
    CHECK_INT(w.check, CS_OK);
    CHECK_INT(w.by_name, CS_OK);
    CHECK_INT(w.msg_by_name, CS_E_NOT_FOUND);
    CHECK_INT(w.stats.messages, 0);
    CHECK_INT(w.stats.identities, 1); /* "system", the channel's creator */
    CHECK_STR(w.from, "carol");
    CHECK_STR(w.lub, "dave");
    CHECK_INT(cs_store_check(s), CS_OK);
    cs_store_free(s);
}

/* fuzz_ops: an edit that fits the record's allocation is written in place;
 * when its new body or attributes pointed into a view of the same message
 * (views stay valid until the next mutating call, e.g. a full update that
 * passes the fetched attributes back with a new body), the body overwrote
 * the attributes before they were copied (overlapping memcpy): corrupted,
 * invalid attributes. */
TEST(regress_update_from_own_view) {
    cs_store *s = new_store(NULL);
    cs_service_view sv;
    REQUIRE(cs_service_create(s, S("svc"), &sv) == CS_OK);
    cs_channel_params cp = {0};
    cp.unique_name = S("general");
    REQUIRE(cs_channel_create(s, S(sv.sid), &cp, NULL) == CS_OK);
    static const char *const bodies[] = {"bbbbbb", "", "b", "bbbbbbbbbbbbbb"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        cs_message_params mp = {0};
        mp.body = S("a");
        mp.attributes = S("{\"k\":\"vv\"}");
        cs_message_view mv;
        REQUIRE(cs_message_create(s, S(sv.sid), S("general"), &mp, &mv) ==
                CS_OK);
        /* new body, attributes passed back from the view */
        cs_message_params up = {0};
        up.body = S(bodies[i]);
        up.attributes = mv.attributes;
        cs_message_view out;
        CHECK_INT(cs_message_update(s, S(sv.sid), S("general"), S(mv.sid), &up,
                                    &out),
                  CS_OK);
        CHECK_MEM(out.body.ptr, out.body.len, bodies[i]);
        CHECK_MEM(out.attributes.ptr, out.attributes.len, "{\"k\":\"vv\"}");
        CHECK_INT(cs_store_check(s), CS_OK);
        /* the body set from the message's own attributes */
        cs_message_params up2 = {0};
        up2.body = out.attributes;
        CHECK_INT(cs_message_update(s, S(sv.sid), S("general"), S(mv.sid),
                                    &up2, &out),
                  CS_OK);
        CHECK_MEM(out.body.ptr, out.body.len, "{\"k\":\"vv\"}");
        CHECK_MEM(out.attributes.ptr, out.attributes.len, "{\"k\":\"vv\"}");
        /* and the attributes from the message's own body */
        cs_message_params up3 = {0};
        up3.attributes = out.body;
        up3.body = S("c");
        CHECK_INT(cs_message_update(s, S(sv.sid), S("general"), S(mv.sid),
                                    &up3, &out),
                  CS_OK);
        CHECK_MEM(out.body.ptr, out.body.len, "c");
        CHECK_MEM(out.attributes.ptr, out.attributes.len, "{\"k\":\"vv\"}");
        CHECK_INT(cs_store_check(s), CS_OK);
    }
    cs_store_free(s);
}

static const check_test TESTS[] = {
    T(regress_text_limit_times_four_overflow),
    T(regress_channel_delete_observer_sees_commit),
    T(regress_message_delete_observer_sees_commit),
    T(regress_update_from_own_view),
};

CHECK_MAIN(TESTS)
