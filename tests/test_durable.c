/* Durability in the library: snapshots (save, load) and the change journal
 * (records, apply), against the guarantees of include/chatstore.h:
 * - a loaded snapshot renders every object, page and token byte for byte as
 *   the saved store did, and continues its counters and SIDs;
 * - records applied in order after a snapshot rebuild the original store;
 *   records already contained are skipped; gaps and foreign records refused;
 * - a refusing journal hook fails the call, changes nothing, notifies
 *   nobody;
 * - damaged images and records give an error with an offset, never a
 *   crash or a leak. */
#include "dump.h"
#include "test_util.h"

#include <stdlib.h>

/* Compares two dumps; on a difference reports where, briefly. */
#define CHECK_DUMP(got, want) check_dump_(got, want, __LINE__)
static void check_dump_(const char *got, const char *want, int line) {
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    if (!got[i] && !want[i]) return;
    size_t from = i > 60 ? i - 60 : 0;
    CHECK_FAIL_("line %d: dumps differ at byte %zu:\n  got  ...%.120s\n  want ...%.120s",
                line, i, got + from, want + from);
}

static char *dump_of(cs_store *s) {
    cs_buf b;
    dump_store(s, &b);
    return b.data; /* libc memory, NUL-terminated */
}

/* ---- a store with one of everything ------------------------------------- */

/* Services (one deleted), channels public/private with unique names and
 * without (one deleted), messages with gaps, edits, LastUpdatedBy, media,
 * attributes, NUL bytes, explicit dates. Returns false on any failure. */
static bool populate(cs_store *s, int rounds) {
    for (int r = 0; r < rounds; r++) {
        char name[32];
        snprintf(name, sizeof name, "svc %d", r);
        cs_service_view sv;
        if (cs_service_create(s, cs_str_c(name), &sv)) return false;
        char is[CS_SID_BUFSZ];
        memcpy(is, sv.sid, sizeof is);
        if (r == 1) {
            if (cs_service_update(s, S(is), S("renamed"), NULL)) return false;
        }
        cs_media_view med[3];
        for (int k = 0; k < 3; k++)
            if (cs_media_create(s, S(is), S("image/png"),
                                k ? S("a.png") : CS_STR_ABSENT, 100u + k,
                                &med[k]))
                return false;
        char chs[4][CS_SID_BUFSZ];
        for (int c = 0; c < 4; c++) {
            cs_channel_params cp = {0};
            char un[32];
            snprintf(un, sizeof un, "room-%d-%d", r, c);
            if (c != 2) cp.unique_name = cs_str_c(un);
            cp.friendly_name = c == 3 ? S("") : S("Room");
            cp.type_value = c == 1 ? CS_CHANNEL_PRIVATE : CS_CHANNEL_PUBLIC;
            if (c == 0) cp.attributes = S("{\"topic\": [1, 2, {\"x\": null}]}");
            if (c == 1) cp.created_by = S("alice");
            if (c == 3) cp.date_created = S("2015-12-16T22:18:37Z");
            cs_channel_view cv;
            if (cs_channel_create(s, S(is), &cp, &cv)) return false;
            memcpy(chs[c], cv.sid, CS_SID_BUFSZ);
        }
        for (int c = 0; c < 3; c++) {
            char sids[40][CS_SID_BUFSZ];
            for (int m = 0; m < 40; m++) {
                cs_message_params mp = {0};
                char body[64];
                snprintf(body, sizeof body, "message %d of %d\n\"q\"", m, c);
                mp.body = cs_str_c(body);
                if (m % 7 == 0) mp.from = S("bob");
                if (m % 5 == 0) mp.attributes = S("{\"n\": 5}");
                if (m == 3) mp.body = (cs_str){"nul\0byte", 8};
                if (m == 4) mp.last_updated_by = S("carol");
                if (m == 6) mp.date_created = S("2016-01-01T00:00:00Z");
                if (m < 3 && c == 0) {
                    mp.media_sid = cs_str_c(med[m].sid);
                    mp.body = CS_STR_ABSENT;
                }
                cs_message_view mv;
                if (cs_message_create(s, S(is), S(chs[c]), &mp, &mv))
                    return false;
                memcpy(sids[m], mv.sid, CS_SID_BUFSZ);
            }
            for (int m = 0; m < 40; m++) {
                if (m % 3 == 1) {
                    cs_message_params up = {0};
                    up.body = m == 1 && c == 0 ? CS_STR_ABSENT : S("edited");
                    up.last_updated_by = m % 2 ? S("dave") : S("");
                    up.attributes = S("[true]");
                    if (cs_message_update(s, S(is), S(chs[c]), S(sids[m]), &up,
                                          NULL))
                        return false;
                }
                if (m % 4 == 2 || (m > 10 && m < 30 && c == 1))
                    if (cs_message_delete(s, S(is), S(chs[c]), S(sids[m]),
                                          CS_STR_ABSENT))
                        return false;
            }
        }
        cs_channel_params up = {0};
        up.friendly_name = S("Renamed room");
        up.unique_name = S("");
        if (cs_channel_update(s, S(is), S(chs[0]), &up, NULL)) return false;
        if (cs_channel_delete(s, S(is), S(chs[2]), CS_STR_ABSENT)) return false;
        if (r == 0 || r == 1) { /* webhook settings, string and typed */
            cs_service_params sp = {0};
            cs_str f[2] = {S("onMessageSent"), S("onMessageUpdated")};
            static const cs_webhook_event fv[] = {CS_WEBHOOK_ON_CHANNEL_ADDED};
            sp.post_webhook_url = S("https://hooks.example.com/p?a=b");
            if (r == 0) {
                sp.webhook_filters = f;
                sp.n_webhook_filters = 2;
                sp.webhook_method = S("GET");
                sp.post_webhook_retry_count = S("3");
            } else {
                sp.pre_webhook_url = S("http://127.0.0.1:8080/pre");
                sp.webhook_filter_values = fv;
                sp.n_webhook_filter_values = 1;
                sp.pre_webhook_retry_count_value = CS_RETRY_COUNT(1);
            }
            if (cs_service_update_with(s, S(is), &sp, NULL)) return false;
        }
        if (r == 2 && cs_service_delete(s, S(is))) return false;
    }
    return true;
}

static cs_store *new_store(uint64_t seed) {
    cs_options o = tu_options(seed);
    cs_store *s = NULL;
    if (cs_store_new(&o, &s)) return NULL;
    return s;
}

static cs_store *load(tu_mem *m, const cs_options *o, cs_err *e,
                      cs_decode_error *err) {
    cs_store *s = NULL;
    m->pos = 0;
    *e = cs_snapshot_load(o, tu_mem_read, m, &s, err);
    return s;
}

/* ---- snapshots ---------------------------------------------------------- */

TEST(snapshot_roundtrip_is_byte_identical) {
    tu_now = TU_T0;
    cs_store *a = new_store(7);
    REQUIRE(a);
    REQUIRE(populate(a, 4));
    tu_mem m = {0};
    CHECK_INT(cs_snapshot_save(a, tu_mem_write, &m), CS_OK);
    cs_options o = tu_options(99); /* another seed: keys come from the image */
    cs_err e;
    cs_decode_error de = {0, NULL};
    cs_store *b = load(&m, &o, &e, &de);
    CHECK_INT(e, CS_OK);
    REQUIRE(b);
    CHECK_INT(cs_store_check(b), CS_OK);
    char *da = dump_of(a), *db = dump_of(b);
    CHECK_DUMP(db, da);
    CHECK_STR(cs_store_account_sid(b), cs_store_account_sid(a));
    /* Saving the loaded store gives the same image. */
    tu_mem m2 = {0};
    CHECK_INT(cs_snapshot_save(b, tu_mem_write, &m2), CS_OK);
    CHECK(m2.n == m.n && memcmp(m2.p, m.p, m.n) == 0);
    /* Read callbacks that return a byte at a time work too. */
    m.chunk = 1;
    cs_store *c = load(&m, &o, &e, NULL);
    CHECK_INT(e, CS_OK);
    if (c) {
        char *dc = dump_of(c);
        CHECK_DUMP(dc, da);
        free(dc);
    }
    free(da);
    free(db);
    cs_store_free(a);
    cs_store_free(b);
    cs_store_free(c);
    tu_mem_free(&m);
    tu_mem_free(&m2);
}

TEST(snapshot_tokens_and_sids_survive_and_continue) {
    tu_now = TU_T0;
    cs_store *a = new_store(8);
    REQUIRE(a);
    REQUIRE(populate(a, 2));
    /* A page token and a message SID issued before the save. */
    cs_page_params q = {0};
    q.page_size_value = 5;
    cs_page pa;
    cs_service_view sv;
    {
        cs_page sp;
        REQUIRE(cs_service_list(a, NULL, &sp) == CS_OK);
        REQUIRE(cs_page_next_service(a, &sp, &sv));
    }
    char is[CS_SID_BUFSZ];
    memcpy(is, sv.sid, sizeof is);
    REQUIRE(cs_message_list(a, S(is), S("room-0-1"), &q, &pa) == CS_OK);
    REQUIRE(pa.next_token[0]);
    cs_message_view first;
    REQUIRE(cs_page_next_message(a, &pa, &first));
    char token[CS_TOKEN_BUFSZ], msid[CS_SID_BUFSZ];
    memcpy(token, pa.next_token, sizeof token);
    memcpy(msid, first.sid, sizeof msid);

    tu_mem m = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &m) == CS_OK);
    cs_err e;
    cs_options o = tu_options(1); /* the test clock */
    cs_store *b = load(&m, &o, &e, NULL);
    CHECK_INT(e, CS_OK);
    REQUIRE(b);
    /* The token and the SID work in the loaded store, with the same page. */
    cs_page_params q2 = {0};
    q2.page_size_value = 5;
    q2.page_token = cs_str_c(token);
    cs_page p1, p2;
    CHECK_INT(cs_message_list(a, S(is), S("room-0-1"), &q2, &p1), CS_OK);
    CHECK_INT(cs_message_list(b, S(is), S("room-0-1"), &q2, &p2), CS_OK);
    cs_buf r1, r2;
    cs_buf_init(&r1, NULL);
    cs_buf_init(&r2, NULL);
    CHECK_INT(cs_render_page(a, &p1, &r1), CS_OK);
    CHECK_INT(cs_render_page(b, &p2, &r2), CS_OK);
    CHECK(r1.len > 0 && r1.len == r2.len && !memcmp(r1.data, r2.data, r1.len));
    cs_message_view fa;
    CHECK_INT(cs_message_fetch(b, S(is), S("room-0-1"), S(msid), &fa), CS_OK);
    /* New objects continue the sequence: the same calls give the same SIDs
     * in both stores, none equal to an existing one. */
    cs_service_view na, nb;
    CHECK_INT(cs_service_create(a, S("new"), &na), CS_OK);
    CHECK_INT(cs_service_create(b, S("new"), &nb), CS_OK);
    CHECK_STR(nb.sid, na.sid);
    cs_message_view ma, mb;
    CHECK_INT(cs_message_create(a, S(is), S("room-0-1"), NULL, &ma), CS_OK);
    CHECK_INT(cs_message_create(b, S(is), S("room-0-1"), NULL, &mb), CS_OK);
    CHECK_STR(mb.sid, ma.sid);
    CHECK(strcmp(mb.sid, msid) != 0);
    char *da = dump_of(a), *db = dump_of(b);
    CHECK_DUMP(db, da);
    free(da);
    free(db);
    cs_buf_free(&r1);
    cs_buf_free(&r2);
    cs_store_free(a);
    cs_store_free(b);
    tu_mem_free(&m);
}

TEST(snapshot_of_empty_and_cleared_stores) {
    cs_store *a = new_store(9);
    REQUIRE(a);
    tu_mem m = {0};
    CHECK_INT(cs_snapshot_save(a, tu_mem_write, &m), CS_OK);
    cs_err e;
    cs_store *b = load(&m, NULL, &e, NULL);
    CHECK_INT(e, CS_OK);
    if (b) {
        char *da = dump_of(a), *db = dump_of(b);
        CHECK_DUMP(db, da);
        free(da);
        free(db);
    }
    cs_store_free(b);
    REQUIRE(populate(a, 1));
    CHECK_INT(cs_store_clear(a), CS_OK);
    tu_mem_free(&m);
    CHECK_INT(cs_snapshot_save(a, tu_mem_write, &m), CS_OK);
    b = load(&m, NULL, &e, NULL);
    CHECK_INT(e, CS_OK);
    if (b) {
        char *da = dump_of(a), *db = dump_of(b);
        CHECK_DUMP(db, da);
        free(da);
        free(db);
    }
    cs_store_free(a);
    cs_store_free(b);
    tu_mem_free(&m);
}

TEST(snapshot_account_sid_option_must_match) {
    cs_store *a = new_store(10);
    REQUIRE(a);
    tu_mem m = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &m) == CS_OK);
    cs_options o = CS_OPTIONS_INIT;
    o.account_sid = "AC00000000000000000000000000000000";
    cs_err e;
    cs_store *b = load(&m, &o, &e, NULL);
    CHECK_INT(e, CS_E_INVALID_ARGUMENT);
    CHECK(b == NULL);
    o.account_sid = cs_store_account_sid(a);
    b = load(&m, &o, &e, NULL);
    CHECK_INT(e, CS_OK);
    cs_store_free(a);
    cs_store_free(b);
    tu_mem_free(&m);
}

static int failing_write(void *ctx, const void *buf, size_t len) {
    (void)buf;
    size_t *left = ctx;
    if (*left < len) return -1;
    *left -= len;
    return 0;
}

static ptrdiff_t failing_read(void *ctx, void *buf, size_t len) {
    (void)ctx;
    (void)buf;
    (void)len;
    return -1;
}

TEST(snapshot_callback_failures_are_io) {
    cs_store *a = new_store(11);
    REQUIRE(a);
    REQUIRE(populate(a, 1));
    size_t left = 1000;
    CHECK_INT(cs_snapshot_save(a, failing_write, &left), CS_E_IO);
    cs_store *b = NULL;
    cs_decode_error de = {0, NULL};
    CHECK_INT(cs_snapshot_load(NULL, failing_read, NULL, &b, &de), CS_E_IO);
    CHECK(b == NULL);
    CHECK(de.reason != NULL);
    cs_store_free(a);
}

/* Every truncation and every single-bit flip (at a stride) of an image is
 * refused with BAD_SNAPSHOT and an offset inside the image. */
TEST(snapshot_damage_is_refused_with_offset) {
    tu_now = TU_T0;
    cs_store *a = new_store(12);
    REQUIRE(a);
    REQUIRE(populate(a, 1));
    tu_mem m = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &m) == CS_OK);
    size_t n = m.n, bad = 0;
    for (size_t cut = 0; cut < n; cut += cut < 300 ? 1 : 37) {
        tu_mem t = {m.p, cut, cut, 0, 0};
        cs_store *b = NULL;
        cs_decode_error de = {0, NULL};
        cs_err e = cs_snapshot_load(NULL, tu_mem_read, &t, &b, &de);
        if (e != CS_E_BAD_SNAPSHOT || b || !de.reason || de.offset > cut) {
            bad++;
            CHECK_FAIL_("cut at %zu: %s, offset %llu", cut, cs_err_name(e),
                        (unsigned long long)de.offset);
        }
        cs_store_free(b);
        if (bad > 3) break;
    }
    for (size_t i = 0; i < n && bad <= 3; i += i < 200 ? 1 : 53) {
        uint8_t *copy = malloc(n);
        memcpy(copy, m.p, n);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        tu_mem t = {copy, n, n, 0, 0};
        cs_store *b = NULL;
        cs_decode_error de = {0, NULL};
        cs_err e = cs_snapshot_load(NULL, tu_mem_read, &t, &b, &de);
        if (e != CS_E_BAD_SNAPSHOT || b || !de.reason || de.offset > n) {
            bad++;
            CHECK_FAIL_("flip at %zu: %s", i, cs_err_name(e));
        }
        cs_store_free(b);
        free(copy);
    }
    cs_store_free(a);
    tu_mem_free(&m);
}

/* ---- journal ------------------------------------------------------------ */

TEST(journal_replay_after_snapshot_rebuilds_the_store) {
    tu_now = TU_T0;
    cs_store *a = new_store(13);
    REQUIRE(a);
    tu_journal j = {0};
    CHECK_INT(cs_store_set_journal(a, tu_journal_hook, &j), CS_OK);
    REQUIRE(populate(a, 1));
    tu_mem m = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &m) == CS_OK);
    size_t at_snapshot = j.n;
    tu_now += 1000;
    REQUIRE(populate(a, 3));
    CHECK_INT(cs_store_clear(a), CS_OK);
    REQUIRE(populate(a, 2));
    /* Every record has the next sequence number. */
    for (size_t i = 0; i < j.n; i++) CHECK_INT(j.seq[i], i + 1);
    cs_err e;
    cs_store *b = load(&m, NULL, &e, NULL);
    REQUIRE(b);
    /* A different clock: replay must not consult it. */
    tu_now = 42;
    /* Replay from the start: the records the snapshot holds are skipped. */
    size_t applied = 0;
    for (size_t i = 0; i < j.n; i++) {
        bool ap = false;
        cs_decode_error de = {0, NULL};
        e = cs_journal_apply(b, j.rec[i], j.len[i], &ap, &de);
        if (e) {
            CHECK_FAIL_("record %zu: %s (%s at %llu)", i, cs_err_name(e),
                        de.reason ? de.reason : "-",
                        (unsigned long long)de.offset);
            break;
        }
        CHECK(ap == (i >= at_snapshot));
        applied += ap;
    }
    CHECK_INT(applied, j.n - at_snapshot);
    char *da = dump_of(a), *db = dump_of(b);
    CHECK_DUMP(db, da);
    free(da);
    free(db);
    cs_store_free(a);
    cs_store_free(b);
    tu_journal_free(&j);
    tu_mem_free(&m);
}

TEST(journal_from_an_empty_store_rebuilds_it) {
    tu_now = TU_T0;
    cs_store *a = new_store(14), *b = new_store(14);
    REQUIRE(a && b);
    tu_journal j = {0};
    REQUIRE(cs_store_set_journal(a, tu_journal_hook, &j) == CS_OK);
    REQUIRE(populate(a, 2));
    /* b has the same seed (keys) but never saw the calls. */
    for (size_t i = 0; i < j.n; i++)
        if (cs_journal_apply(b, j.rec[i], j.len[i], NULL, NULL)) {
            CHECK_FAIL_("record %zu refused", i);
            break;
        }
    char *da = dump_of(a), *db = dump_of(b);
    CHECK_DUMP(db, da);
    free(da);
    free(db);
    cs_store_free(a);
    cs_store_free(b);
    tu_journal_free(&j);
}

TEST(journal_gap_and_mismatch_are_refused) {
    tu_now = TU_T0;
    cs_store *a = new_store(15), *b = new_store(16);
    REQUIRE(a && b);
    tu_journal j = {0};
    REQUIRE(cs_store_set_journal(a, tu_journal_hook, &j) == CS_OK);
    REQUIRE(populate(a, 1));
    REQUIRE(j.n > 3);
    cs_store_stats before;
    cs_store_stats_get(b, &before);
    CHECK_INT(cs_journal_apply(b, j.rec[2], j.len[2], NULL, NULL),
              CS_E_RECORD_GAP);
    /* b made its own first change: the counters agree with a's after its
     * first record, but a's second record addresses a's service, which b
     * does not have. */
    cs_service_view sv;
    REQUIRE(cs_service_create(b, S("other"), &sv) == CS_OK);
    char *d0 = dump_of(b);
    CHECK_INT(cs_journal_apply(b, j.rec[1], j.len[1], NULL, NULL),
              CS_E_RECORD_MISMATCH);
    /* One more change in b: now its SID counter is ahead of a's. */
    cs_media_view mv;
    REQUIRE(cs_media_create(b, S(sv.sid), S("a/b"), CS_STR_ABSENT, 1, &mv) ==
            CS_OK);
    CHECK_INT(cs_journal_apply(b, j.rec[2], j.len[2], NULL, NULL),
              CS_E_RECORD_MISMATCH);
    REQUIRE(cs_media_create(b, S(sv.sid), S("a/b"), CS_STR_ABSENT, 1, &mv) ==
            CS_OK);
    free(d0);
    d0 = dump_of(b);
    CHECK_INT(cs_journal_apply(b, j.rec[3], j.len[3], NULL, NULL),
              CS_E_RECORD_MISMATCH);
    char *d1 = dump_of(b);
    CHECK_DUMP(d1, d0);
    free(d0);
    free(d1);
    uint64_t seq = 0;
    CHECK_INT(cs_journal_record_seq(j.rec[1], j.len[1], &seq), CS_OK);
    CHECK_INT(seq, 2);
    /* The record's header, read back: a's first service create, then a
     * media create in that service. */
    cs_journal_info in0, in1;
    cs_decode_error de = {0, NULL};
    CHECK_INT(cs_journal_record_info(j.rec[0], j.len[0], &in0, NULL), CS_OK);
    CHECK_INT(in0.op, CS_JOURNAL_SERVICE_CREATE);
    CHECK_INT(in0.seq, 1);
    CHECK_STR(in0.service_sid, "");
    CHECK(strncmp(in0.created_sid, "IS", 2) == 0);
    CHECK_INT(cs_journal_record_info(j.rec[1], j.len[1], &in1, NULL), CS_OK);
    CHECK_INT(in1.op, CS_JOURNAL_MEDIA_CREATE);
    CHECK_STR(in1.service_sid, in0.created_sid);
    CHECK(strncmp(in1.created_sid, "ME", 2) == 0);
    CHECK_INT(cs_journal_record_info(j.rec[1], j.len[1] - 1, &in1, &de),
              CS_E_BAD_RECORD);
    CHECK(de.reason != NULL);
    cs_store_free(a);
    cs_store_free(b);
    tu_journal_free(&j);
}

TEST(journal_damage_is_refused_with_offset) {
    tu_now = TU_T0;
    cs_store *a = new_store(17), *b = new_store(17);
    REQUIRE(a && b);
    tu_journal j = {0};
    REQUIRE(cs_store_set_journal(a, tu_journal_hook, &j) == CS_OK);
    REQUIRE(populate(a, 1));
    char *d0 = dump_of(b);
    size_t bad = 0;
    for (size_t r = 0; r < j.n && r < 40 && bad < 3; r++) {
        size_t n = j.len[r];
        for (size_t cut = 0; cut < n; cut++) {
            cs_decode_error de = {0, NULL};
            cs_err e = cs_journal_apply(b, j.rec[r], cut, NULL, &de);
            if (e != CS_E_BAD_RECORD || !de.reason || de.offset > cut) bad++;
        }
        uint8_t *copy = malloc(n);
        for (size_t i = 0; i < n; i++) {
            memcpy(copy, j.rec[r], n);
            copy[i] ^= (uint8_t)(1u << (i % 8));
            cs_decode_error de = {0, NULL};
            cs_err e = cs_journal_apply(b, copy, n, NULL, &de);
            if (e != CS_E_BAD_RECORD || !de.reason) bad++;
        }
        free(copy);
    }
    CHECK_INT(bad, 0);
    char *d1 = dump_of(b);
    CHECK_DUMP(d1, d0);
    free(d0);
    free(d1);
    cs_store_free(a);
    cs_store_free(b);
    tu_journal_free(&j);
}

/* A create record from a store with other keys, or with its created SID
 * altered (CRC fixed), is refused before anything changes. */
TEST(journal_foreign_create_changes_nothing) {
    tu_now = TU_T0;
    cs_store *a = new_store(1), *b = new_store(2);
    REQUIRE(a && b);
    tu_journal j = {0};
    REQUIRE(cs_store_set_journal(a, tu_journal_hook, &j) == CS_OK);
    cs_service_view sv;
    REQUIRE(cs_service_create(a, S("x"), &sv) == CS_OK);
    cs_message_params mp = {0};
    cs_channel_view cv;
    REQUIRE(cs_channel_create(a, S(sv.sid), NULL, &cv) == CS_OK);
    REQUIRE(cs_message_create(a, S(sv.sid), S(cv.sid), &mp, NULL) == CS_OK);
    REQUIRE(j.n == 3);
    tu_events ev;
    memset(&ev, 0, sizeof ev);
    REQUIRE(cs_observer_add(b, tu_record, &ev, NULL) == CS_OK);
    char *d0 = dump_of(b);
    CHECK_INT(cs_journal_apply(b, j.rec[0], j.len[0], NULL, NULL),
              CS_E_RECORD_MISMATCH);
    CHECK_INT(ev.n, 0);
    char *d1 = dump_of(b);
    CHECK_DUMP(d1, d0);
    free(d1);
    /* Same keys, but the created SID of the message create altered. */
    cs_store *c = new_store(1);
    REQUIRE(c);
    for (int i = 0; i < 2; i++)
        REQUIRE(cs_journal_apply(c, j.rec[i], j.len[i], NULL, NULL) == CS_OK);
    uint8_t *r = j.rec[2];
    size_t n = j.len[2];
    r[40 + 2 * 16] ^= 1; /* svc, chan, then created */
    uint32_t crc = cs__crc32c(0, r, n - 4);
    for (int i = 0; i < 4; i++) r[n - 4 + i] = (uint8_t)(crc >> (8 * i));
    char *c0 = dump_of(c);
    CHECK_INT(cs_journal_apply(c, r, n, NULL, NULL), CS_E_RECORD_MISMATCH);
    char *c1 = dump_of(c);
    CHECK_DUMP(c1, c0);
    free(c0);
    free(c1);
    free(d0);
    cs_store_free(a);
    cs_store_free(b);
    cs_store_free(c);
    tu_journal_free(&j);
}

/* ---- crafted message records ------------------------------------------- */

/* A message record rebuilt from a real one: its header, SIDs and fixed
 * fields kept (the message SID replaced when msg is given), its strings
 * replaced, and a correct CRC (docs/journal.md). */
typedef struct crafted {
    uint8_t b[1024];
    size_t n;
} crafted;

static void craft(const uint8_t *base, const uint8_t *msg, const cs_str *str,
                  unsigned nstr, crafted *out) {
    unsigned nsid = 0;
    for (unsigned f = base[2]; f; f >>= 1) nsid += f & 1;
    size_t fixed = 40 + 16 * (size_t)nsid + 18;
    memcpy(out->b, base, fixed);
    if (msg) memcpy(out->b + 40 + 32, msg, 16); /* service, channel, message */
    out->n = fixed;
    for (unsigned i = 0; i < nstr; i++) {
        uint32_t len = str[i].ptr ? (uint32_t)str[i].len : UINT32_MAX;
        for (int k = 0; k < 4; k++) out->b[out->n++] = (uint8_t)(len >> (8 * k));
        if (str[i].ptr) {
            memcpy(out->b + out->n, str[i].ptr, str[i].len);
            out->n += str[i].len;
        }
    }
    uint32_t crc = cs__crc32c(0, out->b, out->n);
    for (int k = 0; k < 4; k++) out->b[out->n++] = (uint8_t)(crc >> (8 * k));
}

/* The last record a store's hook received after making one call on a fresh
 * copy of the image. */
static size_t record_of_call(tu_mem *img, tu_journal *j, int op, const char *is,
                             const char *ch, const char *im) {
    cs_err e;
    cs_store *w = load(img, NULL, &e, NULL);
    if (!w) return SIZE_MAX;
    cs_store_set_journal(w, tu_journal_hook, j);
    cs_message_params p = {0};
    p.body = S("fine");
    if (op == 0)
        e = cs_message_create(w, S(is), S(ch), &p, NULL);
    else if (op == 1)
        e = cs_message_update(w, S(is), S(ch), S(im), &p, NULL);
    else
        e = cs_message_delete(w, S(is), S(ch), S(im), CS_STR_ABSENT);
    cs_store_free(w);
    return e ? SIZE_MAX : j->n - 1;
}

/* Message records with a valid CRC that carry a call the call itself would
 * refuse fail with that call's error (NOT_FOUND and an update that would
 * change nothing: RECORD_MISMATCH) and change nothing; checked against the
 * public calls on a copy of the same state. The apply path finds the
 * objects by SID bytes instead of the calls' SID text. */
TEST(journal_crafted_message_records_fail_as_their_call) {
    tu_now = TU_T0;
    cs_store *a = new_store(31);
    REQUIRE(a);
    cs_service_view sv;
    cs_channel_view c1, c2;
    cs_media_view me1, me2;
    cs_message_view m1, m2, m3, gone;
    REQUIRE(cs_service_create(a, S("s"), &sv) == CS_OK);
    REQUIRE(cs_channel_create(a, S(sv.sid), NULL, &c1) == CS_OK);
    REQUIRE(cs_channel_create(a, S(sv.sid), NULL, &c2) == CS_OK);
    REQUIRE(cs_media_create(a, S(sv.sid), S("image/png"), CS_STR_ABSENT, 5,
                            &me1) == CS_OK);
    REQUIRE(cs_media_create(a, S(sv.sid), S("image/png"), CS_STR_ABSENT, 5,
                            &me2) == CS_OK);
    cs_message_params mp = {0};
    mp.body = S("first");
    REQUIRE(cs_message_create(a, S(sv.sid), S(c1.sid), &mp, &m1) == CS_OK);
    REQUIRE(cs_message_create(a, S(sv.sid), S(c2.sid), &mp, &m3) == CS_OK);
    REQUIRE(cs_message_create(a, S(sv.sid), S(c1.sid), &mp, &gone) == CS_OK);
    REQUIRE(cs_message_delete(a, S(sv.sid), S(c1.sid), S(gone.sid),
                              CS_STR_ABSENT) == CS_OK);
    mp.body = CS_STR_ABSENT;
    mp.media_sid = S(me1.sid);
    REQUIRE(cs_message_create(a, S(sv.sid), S(c1.sid), &mp, &m2) == CS_OK);
    tu_mem img = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &img) == CS_OK);
    cs_err e;
    cs_store *b = load(&img, NULL, &e, NULL), *ref = load(&img, NULL, &e, NULL);
    REQUIRE(b && ref);
    /* Valid records at b's next seq, one per operation, to craft from. */
    tu_journal j = {0};
    size_t rc = record_of_call(&img, &j, 0, sv.sid, c1.sid, NULL);
    size_t ru = record_of_call(&img, &j, 1, sv.sid, c1.sid, m1.sid);
    size_t rd = record_of_call(&img, &j, 2, sv.sid, c1.sid, m1.sid);
    REQUIRE(rc != SIZE_MAX && ru != SIZE_MAX && rd != SIZE_MAX);
    uint8_t m1b[16], m3b[16], goneb[16], flipped[16];
    REQUIRE(cs__sid_parse(m1.sid, 34, 'I', 'M', m1b) == 0);
    REQUIRE(cs__sid_parse(m3.sid, 34, 'I', 'M', m3b) == 0);
    REQUIRE(cs__sid_parse(gone.sid, 34, 'I', 'M', goneb) == 0);
    memcpy(flipped, m1b, 16);
    flipped[15] ^= 0x40;
    char m2sid[CS_SID_BUFSZ];
    memcpy(m2sid, m2.sid, sizeof m2sid);
    uint8_t m2b[16];
    REQUIRE(cs__sid_parse(m2sid, 34, 'I', 'M', m2b) == 0);
    const cs_str bad_long = S("a body long enough for the block check \xE2\x82");
    const cs_str A = CS_STR_ABSENT;
    static const char unused_me[] = "ME0123456789abcdef0123456789abcdef";
    struct {
        int op; /* 0 create, 1 update, 2 delete */
        const uint8_t *msg;
        cs_str s[7]; /* From, Attributes, DateCreated, DateUpdated,
                        LastUpdatedBy, Body, MediaSid */
    } cases[] = {
        {0, NULL, {A, A, A, A, A, bad_long, A}},
        {0, NULL, {A, A, A, A, A, S("\xC3"), A}},
        {0, NULL, {S("\xFF"), A, A, A, A, S("ok"), A}},
        {0, NULL, {A, S("{bad"), A, A, A, S("ok"), A}},
        {0, NULL, {A, A, S("yesterday"), A, A, S("ok"), A}},
        {0, NULL, {A, A, A, S("2020-13-01T00:00:00Z"), A, S("ok"), A}},
        {0, NULL, {A, A, A, A, S("\xED\xA0\x80"), S("ok"), A}},
        {0, NULL, {A, A, A, A, A, A, S("MEnot-a-sid")}},
        {0, NULL, {A, A, A, A, A, A, S(me1.sid)}},
        {0, NULL, {A, A, A, A, A, A, S(unused_me)}},
        {1, NULL, {A, A, A, A, A, bad_long, A}},
        {1, NULL, {A, A, A, A, S("\xC0\x80"), A, A}},
        {1, NULL, {A, S("[1,]"), A, A, A, A, A}},
        {1, NULL, {A, A, A, A, A, A, A}},
        {1, m2b, {A, A, A, A, A, S("new body"), A}},
        {1, m3b, {A, A, A, A, A, S("ok"), A}},
        {1, goneb, {A, A, A, A, A, S("ok"), A}},
        {1, flipped, {A, A, A, A, A, S("ok"), A}},
        {2, m3b, {A}},
        {2, goneb, {A}},
        {2, flipped, {A}},
    };
    char *d0 = dump_of(b);
    cs_store_stats st0;
    cs_store_stats_get(b, &st0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int op = cases[i].op;
        const uint8_t *msg = cases[i].msg ? cases[i].msg : m1b;
        char im[CS_SID_BUFSZ];
        cs__sid_format('I', 'M', msg, im);
        cs_message_params p = {0};
        p.from = cases[i].s[0];
        p.attributes = cases[i].s[1];
        p.date_created = cases[i].s[2];
        p.date_updated = cases[i].s[3];
        p.last_updated_by = cases[i].s[4];
        p.body = cases[i].s[5];
        cs_store_stats rs0, rs1;
        cs_store_stats_get(ref, &rs0);
        cs_err want;
        crafted r;
        if (op == 0) {
            p.media_sid = cases[i].s[6];
            want = cs_message_create(ref, S(sv.sid), S(c1.sid), &p, NULL);
            craft(j.rec[rc], NULL, cases[i].s, 7, &r);
        } else if (op == 1) {
            want = cs_message_update(ref, S(sv.sid), S(c1.sid), S(im), &p, NULL);
            craft(j.rec[ru], msg, cases[i].s, 6, &r);
        } else {
            want = cs_message_delete(ref, S(sv.sid), S(c1.sid), S(im),
                                     CS_STR_ABSENT);
            craft(j.rec[rd], msg, cases[i].s, 0, &r);
        }
        cs_store_stats_get(ref, &rs1);
        if (rs1.commits != rs0.commits) {
            CHECK_FAIL_("case %zu: the call succeeded", i);
            break;
        }
        if (want == CS_OK || want == CS_E_NOT_FOUND) want = CS_E_RECORD_MISMATCH;
        bool applied = true;
        cs_err got = cs_journal_apply(b, r.b, r.n, &applied, NULL);
        if (got != want || applied)
            CHECK_FAIL_("case %zu: apply %s, the call %s", i, cs_err_name(got),
                        cs_err_name(want));
    }
    cs_store_stats st1;
    cs_store_stats_get(b, &st1);
    CHECK_INT(st1.commits, st0.commits);
    CHECK_INT(cs_store_check(b), CS_OK);
    char *d1 = dump_of(b);
    CHECK_DUMP(d1, d0);
    /* The uncrafted records still apply. */
    CHECK_INT(cs_journal_apply(b, j.rec[ru], j.len[ru], NULL, NULL), CS_OK);
    free(d0);
    free(d1);
    cs_store_free(a);
    cs_store_free(b);
    cs_store_free(ref);
    tu_journal_free(&j);
    tu_mem_free(&img);
}

/* A refusing hook: every kind of mutating call fails with JOURNAL_REFUSED,
 * changes nothing and notifies nobody. */
TEST(journal_refusal_changes_nothing) {
    tu_now = TU_T0;
    cs_store *a = new_store(18);
    REQUIRE(a);
    REQUIRE(populate(a, 1));
    tu_journal j = {0};
    REQUIRE(cs_store_set_journal(a, tu_journal_hook, &j) == CS_OK);
    tu_events ev;
    memset(&ev, 0, sizeof ev);
    REQUIRE(cs_observer_add(a, tu_record, &ev, NULL) == CS_OK);
    cs_page sp;
    cs_service_view sv;
    REQUIRE(cs_service_list(a, NULL, &sp) == CS_OK);
    REQUIRE(cs_page_next_service(a, &sp, &sv));
    char is[CS_SID_BUFSZ];
    memcpy(is, sv.sid, sizeof is);
    cs_page mp;
    cs_message_view mv;
    REQUIRE(cs_message_list(a, S(is), S("room-0-1"), NULL, &mp) == CS_OK);
    REQUIRE(cs_page_next_message(a, &mp, &mv));
    char im[CS_SID_BUFSZ];
    memcpy(im, mv.sid, sizeof im);
    cs_media_view med;
    char *d0 = dump_of(a);
    j.refuse = 1;
    cs_channel_params cp = {0};
    cp.unique_name = S("refused");
    cs_message_params up = {0};
    up.body = S("x");
    cs_message_params longer = {0};
    longer.body = S("a body long enough that the record cannot be edited in "
                    "place and a new record is built and then released");
    cs_err got[13] = {
        cs_service_create(a, S("x"), NULL),
        cs_service_update(a, S(is), S("y"), NULL),
        cs_service_delete(a, S(is)),
        cs_channel_create(a, S(is), &cp, NULL),
        cs_channel_update(a, S(is), S("room-0-1"), &cp, NULL),
        cs_channel_delete(a, S(is), S("room-0-1"), CS_STR_ABSENT),
        cs_media_create(a, S(is), S("text/plain"), CS_STR_ABSENT, 1, &med),
        cs_message_create(a, S(is), S("room-0-1"), &up, NULL),
        cs_message_update(a, S(is), S("room-0-1"), S(im), &up, NULL),
        cs_message_update(a, S(is), S("room-0-1"), S(im), &longer, NULL),
        cs_message_delete(a, S(is), S("room-0-1"), S(im), CS_STR_ABSENT),
        cs_store_clear(a),
        cs_store_new_epoch(a, NULL),
    };
    for (int i = 0; i < 13; i++) {
        if (got[i] != CS_E_JOURNAL_REFUSED)
            CHECK_FAIL_("call %d: %s", i, cs_err_name(got[i]));
    }
    CHECK_INT(ev.n, 0);
    CHECK_INT(cs_store_check(a), CS_OK);
    CHECK_INT(cs_store_epoch(a), 0);
    char *d1 = dump_of(a);
    CHECK_DUMP(d1, d0);
    /* The same calls go through once the hook accepts again. */
    j.refuse = 0;
    CHECK_INT(cs_message_update(a, S(is), S("room-0-1"), S(im), &longer, NULL),
              CS_OK);
    CHECK_INT(j.n, 1);
    free(d0);
    free(d1);
    cs_store_free(a);
    tu_journal_free(&j);
}

/* ---- SID epochs ----------------------------------------------------------- */

/* One round of creates, the kinds a crash can lose: a service (with its
 * three roles), a channel and a media item in the kept service, three
 * messages in the kept channel, and two messages in the new channel. */
enum { N_CREATED = 11 };
typedef struct created {
    char sid[N_CREATED][CS_SID_BUFSZ];
    int64_t index[3]; /* of the messages in the kept channel */
} created;
enum { C_SVC = 0, C_ROLES = 1, C_CH = 4, C_ME = 5, C_OLD = 6, C_NEW = 9 };

static bool make_creates(cs_store *s, const char *is, const char *ch,
                         created *c) {
    cs_service_view sv;
    if (cs_service_create(s, S("lost?"), &sv)) return false;
    snprintf(c->sid[C_SVC], CS_SID_BUFSZ, "%s", sv.sid);
    snprintf(c->sid[C_ROLES], CS_SID_BUFSZ, "%s", sv.default_service_role_sid);
    snprintf(c->sid[C_ROLES + 1], CS_SID_BUFSZ, "%s",
             sv.default_channel_role_sid);
    snprintf(c->sid[C_ROLES + 2], CS_SID_BUFSZ, "%s",
             sv.default_channel_creator_role_sid);
    cs_channel_view cv;
    if (cs_channel_create(s, S(is), NULL, &cv)) return false;
    snprintf(c->sid[C_CH], CS_SID_BUFSZ, "%s", cv.sid);
    cs_media_view med;
    if (cs_media_create(s, S(is), S("image/png"), CS_STR_ABSENT, 3, &med))
        return false;
    snprintf(c->sid[C_ME], CS_SID_BUFSZ, "%s", med.sid);
    for (int i = 0; i < 5; i++) {
        cs_message_params mp = {0};
        mp.body = S("maybe lost");
        cs_message_view mv;
        if (cs_message_create(s, S(is), S(i < 3 ? ch : c->sid[C_CH]), &mp,
                              &mv))
            return false;
        snprintf(c->sid[C_OLD + i], CS_SID_BUFSZ, "%s", mv.sid);
        if (i < 3) c->index[i] = mv.index;
    }
    return true;
}

/* The kept store: a service, a channel with five messages, a media item;
 * their SIDs in keep[0..8]. */
static bool make_kept(cs_store *s, char keep[9][CS_SID_BUFSZ]) {
    cs_service_view sv;
    cs_channel_view cv;
    cs_media_view med;
    if (cs_service_create(s, S("kept"), &sv) ||
        cs_channel_create(s, S(sv.sid), NULL, &cv) ||
        cs_media_create(s, S(sv.sid), S("text/plain"), CS_STR_ABSENT, 1, &med))
        return false;
    snprintf(keep[0], CS_SID_BUFSZ, "%s", sv.sid);
    snprintf(keep[1], CS_SID_BUFSZ, "%s", cv.sid);
    snprintf(keep[2], CS_SID_BUFSZ, "%s", med.sid);
    for (int i = 0; i < 5; i++) {
        cs_message_view mv;
        if (cs_message_create(s, S(sv.sid), S(cv.sid), NULL, &mv)) return false;
        snprintf(keep[3 + i], CS_SID_BUFSZ, "%s", mv.sid);
    }
    snprintf(keep[8], CS_SID_BUFSZ, "%s", sv.default_service_role_sid);
    return true;
}

/* Every kept SID still names its object in s. */
static void check_kept(int line, cs_store *s, char keep[9][CS_SID_BUFSZ]) {
    const char *is = keep[0], *ch = keep[1];
    cs_err e[4] = {cs_service_fetch(s, S(is), NULL),
                   cs_channel_fetch(s, S(is), S(ch), NULL),
                   cs_media_fetch(s, S(is), S(keep[2]), NULL), CS_OK};
    for (int i = 0; i < 5 && !e[3]; i++) {
        cs_message_view mv;
        e[3] = cs_message_fetch(s, S(is), S(ch), S(keep[3 + i]), &mv);
        if (!e[3] && mv.index != i) e[3] = CS_E_CORRUPT;
    }
    for (int i = 0; i < 4; i++)
        if (e[i])
            CHECK_FAIL_("line %d: kept SID %d: %s", line, i, cs_err_name(e[i]));
}

/* The scenario of a machine crash that loses the journal's tail: the store
 * is saved at seq N, makes creates, and loses them (it is loaded again from
 * the image). Without a new epoch the same creates reissue the lost SIDs;
 * after cs_store_new_epoch none of them comes back, the lost message SIDs
 * are NOT_FOUND although new messages hold their indices, and every SID
 * from before N still works. Replay and snapshots carry the epoch. */
TEST(epoch_after_a_lost_tail_never_reissues_sids) {
    tu_now = TU_T0;
    cs_store *a = new_store(21);
    REQUIRE(a);
    char keep[9][CS_SID_BUFSZ];
    REQUIRE(make_kept(a, keep));
    const char *is = keep[0], *ch = keep[1];
    tu_mem m = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &m) == CS_OK);
    created lost;
    REQUIRE(make_creates(a, is, ch, &lost));

    /* The defect the epoch exists for: restarted without one, the store
     * gives the lost SIDs to new objects. */
    cs_err e;
    cs_store *ctl = load(&m, NULL, &e, NULL);
    REQUIRE(ctl);
    created again0;
    REQUIRE(make_creates(ctl, is, ch, &again0));
    for (int i = 0; i < N_CREATED; i++) CHECK_STR(again0.sid[i], lost.sid[i]);
    cs_store_free(ctl);

    cs_store *b = load(&m, NULL, &e, NULL);
    REQUIRE(b);
    CHECK_INT(cs_store_epoch(b), 0);
    tu_journal j = {0};
    REQUIRE(cs_store_set_journal(b, tu_journal_hook, &j) == CS_OK);
    tu_events ev;
    memset(&ev, 0, sizeof ev);
    REQUIRE(cs_observer_add(b, tu_record, &ev, NULL) == CS_OK);
    cs_store_stats st0, st1;
    cs_store_stats_get(b, &st0);
    uint64_t counter0 = b->sid_counter;
    uint32_t epoch = 0;
    CHECK_INT(cs_store_new_epoch(b, &epoch), CS_OK);
    CHECK_INT(epoch, 1);
    CHECK_INT(cs_store_epoch(b), 1);
    CHECK_INT(b->sid_counter, counter0); /* the epoch is an input, not a jump */
    cs_store_stats_get(b, &st1);
    CHECK_INT(st1.commits, st0.commits + 1); /* one change, one event */
    CHECK_INT(ev.n, 1);
    if (ev.n == 1) CHECK_INT(ev.type[0], CS_EVENT_EPOCH_STARTED);
    CHECK_INT(j.n, 1);
    CHECK_INT(cs_store_check(b), CS_OK);

    created again;
    REQUIRE(make_creates(b, is, ch, &again));
    for (int i = 0; i < N_CREATED; i++) {
        for (int k = 0; k < N_CREATED; k++)
            if (!strcmp(again.sid[i], lost.sid[k]))
                CHECK_FAIL_("created SID %d reissues lost SID %d: %s", i, k,
                            again.sid[i]);
        for (int k = 0; k < 9; k++)
            if (!strcmp(again.sid[i], keep[k]))
                CHECK_FAIL_("created SID %d equals kept SID %d", i, k);
    }
    /* The new messages took the lost messages' indices ... */
    for (int i = 0; i < 3; i++) CHECK_INT(again.index[i], lost.index[i]);
    /* ... yet the lost SIDs name nothing. */
    cs_message_view mv;
    for (int i = 0; i < 3; i++)
        CHECK_INT(cs_message_fetch(b, S(is), S(ch), S(lost.sid[C_OLD + i]),
                                   &mv),
                  CS_E_NOT_FOUND);
    for (int i = 0; i < 2; i++)
        CHECK_INT(cs_message_fetch(b, S(is), S(again.sid[C_CH]),
                                   S(lost.sid[C_NEW + i]), &mv),
                  CS_E_NOT_FOUND);
    CHECK_INT(cs_message_update(b, S(is), S(ch), S(lost.sid[C_OLD]), NULL,
                                NULL),
              CS_E_NOT_FOUND);
    CHECK_INT(cs_message_delete(b, S(is), S(ch), S(lost.sid[C_OLD]),
                                CS_STR_ABSENT),
              CS_E_NOT_FOUND);
    CHECK_INT(cs_service_fetch(b, S(lost.sid[C_SVC]), NULL), CS_E_NOT_FOUND);
    CHECK_INT(cs_channel_fetch(b, S(is), S(lost.sid[C_CH]), NULL),
              CS_E_NOT_FOUND);
    CHECK_INT(cs_media_fetch(b, S(is), S(lost.sid[C_ME]), NULL),
              CS_E_NOT_FOUND);
    check_kept(__LINE__, b, keep);
    /* Messages of both epochs live side by side in the kept channel. */
    for (int i = 0; i < 3; i++)
        CHECK_INT(cs_message_fetch(b, S(is), S(ch), S(again.sid[C_OLD + i]),
                                   &mv),
                  CS_OK);
    cs_message_params up = {0};
    up.body = S("edited in epoch 1");
    CHECK_INT(cs_message_update(b, S(is), S(ch), S(keep[3]), &up, NULL), CS_OK);
    CHECK_INT(cs_store_check(b), CS_OK);

    /* Replay: the journal (epoch record first) rebuilds b from the image. */
    cs_store *c = load(&m, NULL, &e, NULL);
    REQUIRE(c);
    for (size_t i = 0; i < j.n; i++) {
        bool ap = false;
        CHECK_INT(cs_journal_apply(c, j.rec[i], j.len[i], &ap, NULL), CS_OK);
        CHECK(ap);
    }
    CHECK_INT(cs_store_epoch(c), 1);
    char *db = dump_of(b), *dc = dump_of(c);
    CHECK_DUMP(dc, db);
    free(dc);
    /* The epoch record as journal.md lays it out: a 62-byte record of op
     * 12 with no SIDs and no strings, the new epoch in the index field. */
    const uint8_t *r = j.rec[0];
    REQUIRE(j.len[0] == 62);
    CHECK_INT(r[0], 1);
    CHECK_INT(r[1], 12);
    CHECK_INT(r[2], 0);
    uint64_t f[6];
    for (int k = 0; k < 6; k++) {
        f[k] = 0;
        size_t at = k < 4 ? 8 + 8 * (size_t)k : 42 + 8 * (size_t)(k - 4);
        for (int b8 = 0; b8 < 8; b8++) f[k] |= (uint64_t)r[at + b8] << (8 * b8);
    }
    CHECK_INT(f[0], st0.commits + 1); /* seq */
    CHECK_INT(f[1], 0);               /* now: the call reads no clock */
    CHECK_INT(f[2], counter0);        /* the SID counter before */
    CHECK_INT(f[4], 0);               /* size */
    CHECK_INT(f[5], 1);               /* index: the new epoch */
    uint32_t crc = 0;
    for (int b8 = 0; b8 < 4; b8++) crc |= (uint32_t)r[58 + b8] << (8 * b8);
    CHECK_INT(crc, cs__crc32c(0, r, 58));
    cs_journal_info info;
    CHECK_INT(cs_journal_record_info(r, j.len[0], &info, NULL), CS_OK);
    CHECK_INT(info.op, CS_JOURNAL_NEW_EPOCH);
    CHECK_STR(info.created_sid, "");
    /* A record starting any other epoch does not fit: RECORD_MISMATCH. */
    cs_store *d = load(&m, NULL, &e, NULL);
    REQUIRE(d);
    char *d0 = dump_of(d);
    uint8_t copy[62];
    for (int want = 0; want < 3; want += 2) {
        memcpy(copy, r, sizeof copy);
        copy[50] = (uint8_t)want;
        uint32_t c2 = cs__crc32c(0, copy, 58);
        for (int b8 = 0; b8 < 4; b8++) copy[58 + b8] = (uint8_t)(c2 >> (8 * b8));
        CHECK_INT(cs_journal_apply(d, copy, sizeof copy, NULL, NULL),
                  CS_E_RECORD_MISMATCH);
    }
    char *d1 = dump_of(d);
    CHECK_DUMP(d1, d0);
    free(d0);
    free(d1);
    cs_store_free(d);

    /* A snapshot keeps the epoch and the messages of both epochs. */
    tu_mem m2 = {0};
    REQUIRE(cs_snapshot_save(b, tu_mem_write, &m2) == CS_OK);
    cs_store *g = load(&m2, NULL, &e, NULL);
    CHECK_INT(e, CS_OK);
    REQUIRE(g);
    CHECK_INT(cs_store_epoch(g), 1);
    char *dg = dump_of(g);
    CHECK_DUMP(dg, db);
    free(dg);
    check_kept(__LINE__, g, keep);
    CHECK_INT(cs_message_fetch(g, S(is), S(ch), S(lost.sid[C_OLD]), &mv),
              CS_E_NOT_FOUND);
    /* Clear keeps the epoch: the cleared store makes epoch-1 SIDs, not the
     * ones a new store (epoch 0) makes. */
    CHECK_INT(cs_store_clear(g), CS_OK);
    CHECK_INT(cs_store_epoch(g), 1);
    cs_store *fresh = new_store(21);
    REQUIRE(fresh);
    cs_service_view s1, s2;
    CHECK_INT(cs_service_create(g, S("x"), &s1), CS_OK);
    CHECK_INT(cs_service_create(fresh, S("x"), &s2), CS_OK);
    CHECK(strcmp(s1.sid, s2.sid) != 0);
    CHECK_STR(s2.sid, keep[0]);
    CHECK_INT(cs_store_new_epoch(fresh, NULL), CS_OK);
    CHECK_INT(cs_store_clear(fresh), CS_OK);
    CHECK_INT(cs_service_create(fresh, S("x"), &s2), CS_OK);
    CHECK_STR(s2.sid, s1.sid);
    free(db);
    cs_store_free(fresh);
    cs_store_free(g);
    cs_store_free(c);
    cs_store_free(b);
    cs_store_free(a);
    tu_journal_free(&j);
    tu_mem_free(&m);
    tu_mem_free(&m2);
}

/* ---- an image read as docs/snapshot.md describes it ----------------------- */

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

#define DOC_MAX 64
typedef struct doc_img {
    uint32_t version, epoch;
    uint64_t counter;
    const uint8_t *sid_key;
    size_t nmsg, nchan, nsvc;
    int64_t msg_serial[DOC_MAX];
    uint64_t msg_ix[DOC_MAX];
    size_t chan_next_at[DOC_MAX]; /* image offset of next_index */
    /* version 3: each service's webhook settings, as the page lays them */
    struct {
        const uint8_t *pre, *post; /* the string fields (length first) */
        uint8_t method, pre_retry, post_retry, nf;
        const uint8_t *filters;
    } svc[DOC_MAX];
} doc_img;

/* Skips a string field; false when it runs past the payload. */
static bool doc_str(const uint8_t *p, size_t n, size_t *at) {
    if (n - *at < 4) return false;
    uint32_t len = (uint32_t)le(p + *at, 4);
    *at += 4;
    if (len == UINT32_MAX) return true;
    if (n - *at < len) return false;
    *at += len;
    return true;
}

/* Walks the records of the image per the tables of snapshot.md, checking
 * every CRC. With v2 set, also writes the image as version 2 would hold it
 * (the services' webhook settings left out, blocks and CRCs redone) into
 * v2[0..*v2n) (room for n bytes). */
static bool doc_walk(const uint8_t *p, size_t n, doc_img *d, uint8_t *v2,
                     size_t *v2n) {
    memset(d, 0, sizeof *d);
    if (n < 128 || memcmp(p, "CSSNAP\r\n", 8) ||
        le(p + 124, 4) != cs__crc32c(0, p, 124))
        return false;
    d->version = (uint32_t)le(p + 8, 4);
    d->sid_key = p + 48;
    d->counter = le(p + 64, 8);
    d->epoch = (uint32_t)le(p + 120, 4);
    size_t off = 128, o2 = 128;
    if (v2) {
        memcpy(v2, p, 128);
        put_le(v2 + 8, 2, 4);
        put_le(v2 + 124, cs__crc32c(0, v2, 124), 4);
    }
    bool ended = false;
    while (!ended) {
        if (n - off < 8) return false;
        size_t len = (size_t)le(p + off, 4);
        const uint8_t *q = p + off + 4;
        if (n - off - 8 < len || le(q + len, 4) != cs__crc32c(0, q, len))
            return false;
        size_t at = 0, blk2 = o2;
        o2 += 4;
        while (at < len && !ended) {
            size_t start = at;
            uint8_t t = q[at++];
            size_t fixed = t == 'S' ? 16 * 4 + 24 : t == 'D' ? 16 + 17 + 32
                           : t == 'C' ? 16 + 33 : t == 'M' ? 25 : 32;
            if (len - at < fixed) return false;
            int nstr = t == 'S' ? 1 : t == 'D' ? 2 : t == 'C' ? 4
                       : t == 'M' ? 4 : 0;
            if (t == 'C') {
                if (d->nchan == DOC_MAX) return false;
                d->chan_next_at[d->nchan++] = off + 4 + at + 16 + 24;
                d->msg_serial[d->nmsg] = (int64_t)le(q + at + 16, 8);
            } else if (t == 'M') {
                if (d->nmsg == DOC_MAX) return false;
                d->msg_ix[d->nmsg] = le(q + at, 8);
                d->msg_serial[d->nmsg + 1] = d->msg_serial[d->nmsg];
                d->nmsg++;
                if (q[at + 24] & 2) fixed += 16;
            } else if (t == 'E') {
                ended = true;
            } else if (t != 'S' && t != 'D') {
                return false;
            }
            at += fixed;
            for (int k = 0; k < nstr; k++)
                if (!doc_str(q, len, &at)) return false;
            size_t keep = at; /* a version 2 record ends here */
            if (t == 'S' && d->version >= 3) {
                /* pre_webhook_url, post_webhook_url, method, retry counts,
                 * the number of filters and the filters */
                if (d->nsvc == DOC_MAX) return false;
                d->svc[d->nsvc].pre = q + at;
                if (!doc_str(q, len, &at)) return false;
                d->svc[d->nsvc].post = q + at;
                if (!doc_str(q, len, &at) || len - at < 4) return false;
                d->svc[d->nsvc].method = q[at];
                d->svc[d->nsvc].pre_retry = q[at + 1];
                d->svc[d->nsvc].post_retry = q[at + 2];
                uint8_t nf = q[at + 3];
                at += 4;
                if (len - at < nf) return false;
                d->svc[d->nsvc].nf = nf;
                d->svc[d->nsvc].filters = q + at;
                at += nf;
                d->nsvc++;
            }
            if (v2) {
                memcpy(v2 + o2, q + start, keep - start);
                o2 += keep - start;
            }
        }
        if (v2) {
            size_t l2 = o2 - blk2 - 4;
            put_le(v2 + blk2, l2, 4);
            put_le(v2 + o2, cs__crc32c(0, v2 + blk2 + 4, l2), 4);
            o2 += 4;
        }
        off += 8 + len;
    }
    if (v2) *v2n = o2;
    return off == n;
}

static bool doc_read(const uint8_t *p, size_t n, doc_img *d) {
    return doc_walk(p, n, d, NULL, NULL);
}

static void doc_hex(const char *prefix, const uint8_t b[16],
                    char out[CS_SID_BUFSZ]) {
    int k = snprintf(out, CS_SID_BUFSZ, "%s", prefix);
    for (int i = 0; i < 16; i++)
        k += snprintf(out + k, CS_SID_BUFSZ - (size_t)k, "%02x", b[i]);
}

/* A message SID per "What is not stored": round keys SipHash-2-4-128(K,
 * "msg-r0".."msg-r3"); L = serial, R = index | epoch << 40; four rounds
 * L, R = R, L ^ SipHash-2-4(k_i, R). */
static void doc_msg_sid(const uint8_t key[16], int64_t serial, uint64_t ix,
                        char out[CS_SID_BUFSZ]) {
    uint64_t l = (uint64_t)serial, r = ix;
    for (int i = 0; i < 4; i++) {
        char name[6] = {'m', 's', 'g', '-', 'r', (char)('0' + i)};
        uint8_t k[16], rb[8];
        cs__siphash128(key, name, sizeof name, k);
        put_le(rb, r, 8);
        uint64_t t = l ^ cs__siphash(k, rb, 8);
        l = r;
        r = t;
    }
    uint8_t b[16];
    put_le(b, l, 8);
    put_le(b + 8, r, 8);
    doc_hex("IM", b, out);
}

/* The next generated SID: SipHash-2-4-128(K, counter as 8 bytes [, epoch
 * as 4 bytes when not 0]). */
static void doc_next_sid(const doc_img *d, const char *prefix,
                         char out[CS_SID_BUFSZ]) {
    uint8_t in[12], b[16];
    put_le(in, d->counter, 8);
    put_le(in + 8, d->epoch, 4);
    cs__siphash128(d->sid_key, in, d->epoch ? 12 : 8, b);
    doc_hex(prefix, b, out);
}

/* Recomputes the header's and every block's CRC after an edit. */
static void fix_crcs(uint8_t *p, size_t n) {
    put_le(p + 124, cs__crc32c(0, p, 124), 4);
    for (size_t off = 128; off + 8 <= n;) {
        size_t len = (size_t)le(p + off, 4);
        put_le(p + off + 4 + len, cs__crc32c(0, p + off + 4, len), 4);
        off += 8 + len;
    }
}

static cs_err load_bytes(uint8_t *p, size_t n, cs_store **out,
                         cs_decode_error *de) {
    tu_mem t = {p, n, n, 0, 0};
    *out = NULL;
    *de = (cs_decode_error){0, NULL};
    return cs_snapshot_load(NULL, tu_mem_read, &t, out, de);
}

/* Images of stores with epochs, read with the rules of snapshot.md alone:
 * version 2, the epoch at offset 120, each message's epoch in its index
 * field's top 24 bits, every message SID and the next generated SID
 * derived as the page says. Then the edges: the last epoch, an epoch past
 * it, a version 1 image, a message of an epoch above the header's, a
 * channel at the largest next index. */
TEST(epoch_in_snapshots_as_documented) {
    tu_now = TU_T0;
    cs_store *a = new_store(22);
    REQUIRE(a);
    cs_service_view sv;
    cs_channel_view cv;
    REQUIRE(cs_service_create(a, S("s"), &sv) == CS_OK);
    REQUIRE(cs_channel_create(a, S(sv.sid), NULL, &cv) == CS_OK);
    char is[CS_SID_BUFSZ], ch[CS_SID_BUFSZ];
    memcpy(is, sv.sid, sizeof is);
    memcpy(ch, cv.sid, sizeof ch);
    tu_mem m0 = {0}; /* epoch 0, for the version 1 checks */
    REQUIRE(cs_message_create(a, S(is), S(ch), NULL, NULL) == CS_OK);
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &m0) == CS_OK);
    for (int k = 0; k < 6; k++) {
        if (k == 2 || k == 4) REQUIRE(cs_store_new_epoch(a, NULL) == CS_OK);
        REQUIRE(cs_message_create(a, S(is), S(ch), NULL, NULL) == CS_OK);
    }
    tu_mem m = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &m) == CS_OK);
    doc_img d;
    REQUIRE(doc_read(m.p, m.n, &d));
    CHECK_INT(d.version, 3);
    CHECK_INT(d.epoch, 2);
    REQUIRE(d.nmsg == 7 && d.nchan == 1);
    cs_page pg;
    REQUIRE(cs_message_list(a, S(is), S(ch), NULL, &pg) == CS_OK);
    for (size_t i = 0; i < d.nmsg; i++) {
        cs_message_view mv;
        REQUIRE(cs_page_next_message(a, &pg, &mv));
        uint64_t ix = d.msg_ix[i];
        CHECK_INT((int64_t)(ix & ((UINT64_C(1) << 40) - 1)), mv.index);
        CHECK_INT(ix >> 40, i < 3 ? 0 : i < 5 ? 1 : 2);
        char want[CS_SID_BUFSZ];
        doc_msg_sid(d.sid_key, d.msg_serial[i], ix, want);
        CHECK_STR(mv.sid, want);
    }
    char next[CS_SID_BUFSZ];
    doc_next_sid(&d, "IS", next);
    cs_service_view nv;
    CHECK_INT(cs_service_create(a, S("next"), &nv), CS_OK);
    CHECK_STR(nv.sid, next);
    doc_img d0;
    REQUIRE(doc_read(m0.p, m0.n, &d0));
    CHECK_INT(d0.epoch, 0);
    doc_next_sid(&d0, "CH", next); /* epoch 0: the counter alone */
    cs_store *z;
    cs_decode_error de;
    REQUIRE(load_bytes(m0.p, m0.n, &z, &de) == CS_OK);
    CHECK_INT(cs_channel_create(z, S(is), NULL, &cv), CS_OK);
    CHECK_STR(cv.sid, next);
    cs_store_free(z);

    uint8_t *p = malloc(m.n);
    REQUIRE(p);
    /* The last epoch loads; a new epoch past it is LIMIT_EXCEEDED and
     * changes nothing, while SIDs keep working in it. */
    memcpy(p, m.p, m.n);
    put_le(p + 120, (UINT32_C(1) << 24) - 1, 4);
    fix_crcs(p, m.n);
    cs_store *b;
    CHECK_INT(load_bytes(p, m.n, &b, &de), CS_OK);
    if (b) {
        CHECK_INT(cs_store_epoch(b), (UINT32_C(1) << 24) - 1);
        char *x0 = dump_of(b);
        uint32_t ep = 7;
        CHECK_INT(cs_store_new_epoch(b, &ep), CS_E_LIMIT_EXCEEDED);
        CHECK_INT(ep, 7);
        char *x1 = dump_of(b);
        CHECK_DUMP(x1, x0);
        free(x0);
        free(x1);
        cs_message_view mv, fv;
        CHECK_INT(cs_message_create(b, S(is), S(ch), NULL, &mv), CS_OK);
        CHECK_INT(cs_message_fetch(b, S(is), S(ch), S(mv.sid), &fv), CS_OK);
        CHECK_INT(fv.index, 7);
        CHECK_INT(cs_store_check(b), CS_OK);
        cs_store_free(b);
    }
    /* One past it is refused. */
    put_le(p + 120, UINT32_C(1) << 24, 4);
    fix_crcs(p, m.n);
    CHECK_INT(load_bytes(p, m.n, &b, &de), CS_E_BAD_SNAPSHOT);
    CHECK(b == NULL);
    CHECK_INT(de.offset, 120);
    CHECK_STR(de.reason ? de.reason : "", "epoch out of range");
    /* A message of an epoch above the header's is refused. */
    put_le(p + 120, 1, 4);
    fix_crcs(p, m.n);
    CHECK_INT(load_bytes(p, m.n, &b, &de), CS_E_BAD_SNAPSHOT);
    CHECK_STR(de.reason ? de.reason : "", "message epoch above the store's");
    /* A version 1 image (written before epochs: a version 2 image with
     * the version 1) is read as epoch 0, and one with anything at offset
     * 120 is refused. */
    size_t n1 = 0;
    REQUIRE(doc_walk(m0.p, m0.n, &d0, p, &n1));
    put_le(p + 8, 1, 4);
    fix_crcs(p, n1);
    CHECK_INT(load_bytes(p, n1, &b, &de), CS_OK);
    if (b) {
        CHECK_INT(cs_store_epoch(b), 0);
        cs_store *b0;
        REQUIRE(load_bytes(m0.p, m0.n, &b0, &de) == CS_OK);
        char *x0 = dump_of(b0), *x1 = dump_of(b);
        CHECK_DUMP(x1, x0);
        free(x0);
        free(x1);
        cs_store_free(b0);
        cs_store_free(b);
    }
    put_le(p + 120, 1, 4);
    fix_crcs(p, n1);
    CHECK_INT(load_bytes(p, n1, &b, &de), CS_E_BAD_SNAPSHOT);
    CHECK_INT(de.offset, 12);
    memcpy(p, m0.p, m0.n);
    put_le(p + 8, 4, 4); /* and no version after 3 */
    fix_crcs(p, m0.n);
    CHECK_INT(load_bytes(p, m0.n, &b, &de), CS_E_BAD_SNAPSHOT);
    CHECK_INT(de.offset, 8);
    /* A channel at next index 2^40 loads; its next message would need an
     * index the SIDs cannot hold: LIMIT_EXCEEDED, nothing changes. */
    memcpy(p, m.p, m.n);
    put_le(p + d.chan_next_at[0], UINT64_C(1) << 40, 8);
    fix_crcs(p, m.n);
    CHECK_INT(load_bytes(p, m.n, &b, &de), CS_OK);
    if (b) {
        char *x0 = dump_of(b);
        cs_store_stats st0, st1;
        cs_store_stats_get(b, &st0);
        CHECK_INT(cs_message_create(b, S(is), S(ch), NULL, NULL),
                  CS_E_LIMIT_EXCEEDED);
        cs_store_stats_get(b, &st1);
        CHECK_INT(st1.commits, st0.commits);
        char *x1 = dump_of(b);
        CHECK_DUMP(x1, x0);
        free(x0);
        free(x1);
        CHECK_INT(cs_store_check(b), CS_OK);
        cs_store_free(b);
    }
    put_le(p + d.chan_next_at[0], (UINT64_C(1) << 40) + 1, 8);
    fix_crcs(p, m.n);
    CHECK_INT(load_bytes(p, m.n, &b, &de), CS_E_BAD_SNAPSHOT);
    free(p);
    cs_store_free(a);
    tu_mem_free(&m);
    tu_mem_free(&m0);
}

/* A record made a journal-record for seq: its seq field (bytes 8..15)
 * replaced and its CRC made again (docs/journal.md). */
static void reseq(uint8_t *r, size_t len, uint64_t seq) {
    for (int k = 0; k < 8; k++) r[8 + k] = (uint8_t)(seq >> (8 * k));
    uint32_t crc = cs__crc32c(0, r, len - 4);
    for (int k = 0; k < 4; k++) r[len - 4 + k] = (uint8_t)(crc >> (8 * k));
}

/* Apply finds a message record's message by SID bytes, and only in the
 * epoch the SID names, as a fetch does: after a lost tail and a new epoch,
 * records of the lost history (a create, an update and a delete naming a
 * lost message whose index a message of the new epoch holds) are
 * RECORD_MISMATCH and change nothing, on the store that kept the epoch,
 * while the same records apply on one without it (so the crafting is
 * sound), and the new epoch's records rebuild the writer byte for byte. */
TEST(journal_message_records_find_messages_in_their_epoch) {
    tu_now = TU_T0;
    cs_store *a = new_store(23);
    REQUIRE(a);
    cs_service_view sv;
    cs_channel_view cv;
    cs_message_view kept, lost, now1;
    REQUIRE(cs_service_create(a, S("s"), &sv) == CS_OK);
    REQUIRE(cs_channel_create(a, S(sv.sid), NULL, &cv) == CS_OK);
    cs_message_params mp = {0};
    mp.body = S("kept");
    REQUIRE(cs_message_create(a, S(sv.sid), S(cv.sid), &mp, &kept) == CS_OK);
    tu_mem img = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &img) == CS_OK);
    cs_store_stats st;
    cs_store_stats_get(a, &st);
    const uint64_t c0 = st.commits;

    /* The lost history: create (index 1, epoch 0), update, delete. */
    cs_err e;
    cs_store *l = load(&img, NULL, &e, NULL);
    REQUIRE(l);
    tu_journal jl = {0};
    REQUIRE(cs_store_set_journal(l, tu_journal_hook, &jl) == CS_OK);
    mp.body = S("lost");
    REQUIRE(cs_message_create(l, S(sv.sid), S(cv.sid), &mp, &lost) == CS_OK);
    mp.body = S("lost, edited");
    REQUIRE(cs_message_update(l, S(sv.sid), S(cv.sid), S(lost.sid), &mp,
                              NULL) == CS_OK);
    REQUIRE(cs_message_delete(l, S(sv.sid), S(cv.sid), S(lost.sid),
                              CS_STR_ABSENT) == CS_OK);
    REQUIRE(jl.n == 3);

    /* The writer restarted from the image in a new epoch: index 1 again. */
    cs_store *b = load(&img, NULL, &e, NULL);
    REQUIRE(b);
    tu_journal jb = {0};
    REQUIRE(cs_store_set_journal(b, tu_journal_hook, &jb) == CS_OK);
    REQUIRE(cs_store_new_epoch(b, NULL) == CS_OK);
    mp.body = S("epoch 1");
    REQUIRE(cs_message_create(b, S(sv.sid), S(cv.sid), &mp, &now1) == CS_OK);
    CHECK_INT(now1.index, lost.index);
    CHECK(strcmp(now1.sid, lost.sid) != 0);
    mp.body = S("kept, edited in epoch 1");
    REQUIRE(cs_message_update(b, S(sv.sid), S(cv.sid), S(kept.sid), &mp,
                              NULL) == CS_OK);
    REQUIRE(jb.n == 3);

    /* The replica: the image, then the epoch and the epoch-1 create. */
    cs_store *c = load(&img, NULL, &e, NULL);
    REQUIRE(c);
    for (size_t i = 0; i < 2; i++)
        CHECK_INT(cs_journal_apply(c, jb.rec[i], jb.len[i], NULL, NULL), CS_OK);
    char *d0 = dump_of(c);
    /* Each lost record made the replica's next one: the create expects
     * the epoch-0 SID, the update and delete name the lost message. */
    for (size_t i = 0; i < jl.n; i++) {
        uint8_t *r = malloc(jl.len[i]);
        REQUIRE(r);
        memcpy(r, jl.rec[i], jl.len[i]);
        reseq(r, jl.len[i], c0 + 3);
        bool ap = true;
        CHECK_INT(cs_journal_apply(c, r, jl.len[i], &ap, NULL),
                  CS_E_RECORD_MISMATCH);
        CHECK(!ap);
        free(r);
    }
    /* The public calls agree: the lost SID is not found. */
    cs_message_view mv;
    CHECK_INT(cs_message_fetch(c, S(sv.sid), S(cv.sid), S(lost.sid), &mv),
              CS_E_NOT_FOUND);
    char *d1 = dump_of(c);
    CHECK_DUMP(d1, d0);
    CHECK_INT(cs_store_check(c), CS_OK);
    /* Without the epoch the same records fit (reseq'd as the next ones). */
    cs_store *n = load(&img, NULL, &e, NULL);
    REQUIRE(n);
    for (size_t i = 0; i < jl.n; i++) {
        uint8_t *r = malloc(jl.len[i]);
        REQUIRE(r);
        memcpy(r, jl.rec[i], jl.len[i]);
        reseq(r, jl.len[i], c0 + 1 + i);
        CHECK_INT(cs_journal_apply(n, r, jl.len[i], NULL, NULL), CS_OK);
        free(r);
    }
    char *dl = dump_of(l), *dn = dump_of(n);
    CHECK_DUMP(dn, dl);
    /* The writer's own records go on and rebuild it byte for byte. */
    CHECK_INT(cs_journal_apply(c, jb.rec[2], jb.len[2], NULL, NULL), CS_OK);
    char *db = dump_of(b), *dc = dump_of(c);
    CHECK_DUMP(dc, db);
    CHECK_INT(cs_message_fetch(c, S(sv.sid), S(cv.sid), S(now1.sid), &mv),
              CS_OK);
    free(d0);
    free(d1);
    free(dl);
    free(dn);
    free(db);
    free(dc);
    cs_store_free(a);
    cs_store_free(l);
    cs_store_free(b);
    cs_store_free(c);
    cs_store_free(n);
    tu_journal_free(&jl);
    tu_journal_free(&jb);
    tu_mem_free(&img);
}

/* Webhook settings as docs/snapshot.md (version 3, the service record's
 * last fields) and docs/journal.md (operations 13 and 14, seven strings)
 * lay them out; a version 2 image loads with the default settings; an
 * image or record with settings a call could not set is refused. */
TEST(webhook_settings_in_snapshots_and_journal) {
    tu_now = TU_T0;
    cs_store *a = new_store(23), *b = new_store(23);
    REQUIRE(a && b);
    tu_journal j = {0};
    REQUIRE(cs_store_set_journal(a, tu_journal_hook, &j) == CS_OK);
    cs_service_params sp = {0};
    cs_str f[3] = {S("onChannelDestroyed"), S("onMessageSent"),
                   S("onChannelDestroyed")};
    sp.friendly_name = S("hooks");
    sp.post_webhook_url = S("https://hooks.example.com/chat?env=test");
    sp.webhook_method = S("GET");
    sp.webhook_filters = f;
    sp.n_webhook_filters = 3;
    sp.post_webhook_retry_count = S("2");
    cs_service_view v1, v2;
    REQUIRE(cs_service_create_with(a, &sp, &v1) == CS_OK);
    char is1[CS_SID_BUFSZ];
    memcpy(is1, v1.sid, sizeof is1);
    REQUIRE(cs_service_create(a, S("plain"), &v2) == CS_OK);
    cs_service_params up = {0};
    static const cs_webhook_event fv[] = {CS_WEBHOOK_ON_MESSAGE_REMOVED};
    up.pre_webhook_url = S("http://[::1]:9/pre");
    up.webhook_filter_values = fv;
    up.n_webhook_filter_values = 1;
    up.pre_webhook_retry_count_value = CS_RETRY_COUNT(0);
    REQUIRE(cs_service_update_with(a, S(is1), &up, NULL) == CS_OK);
    cs_service_params only_name = {0};
    only_name.friendly_name = S("plain 2");
    REQUIRE(cs_service_update_with(a, S(v2.sid), &only_name, NULL) == CS_OK);
    REQUIRE(j.n == 4);
    /* Records: ops 13, 1, 14, 2; the seven strings of 13 and 14 in the
     * documented order, the typed forms as their text. */
    CHECK_INT(j.rec[0][1], 13);
    CHECK_INT(j.rec[1][1], 1);
    CHECK_INT(j.rec[2][1], 14);
    CHECK_INT(j.rec[3][1], 2);
    static const char *const want13[7] = {
        "hooks", "", "https://hooks.example.com/chat?env=test", "GET",
        "onChannelDestroyed,onMessageSent", NULL, "2"};
    static const char *const want14[7] = {
        NULL, "http://[::1]:9/pre", NULL, NULL, "onMessageRemoved", "0", NULL};
    for (int r = 0; r < 2; r++) {
        const uint8_t *q = j.rec[r ? 2 : 0];
        size_t at = 40 + 16 + 18; /* header, one SID, fixed fields */
        for (int k = 0; k < 7; k++) {
            const char *want = (r ? want14 : want13)[k];
            uint32_t len = (uint32_t)le(q + at, 4);
            at += 4;
            if (r == 0 && k == 1) {
                CHECK_INT(len, UINT32_MAX); /* pre URL not given */
                continue;
            }
            if (!want) {
                CHECK_INT(len, UINT32_MAX);
                continue;
            }
            CHECK_INT(len, strlen(want));
            CHECK(len != UINT32_MAX && memcmp(q + at, want, strlen(want)) == 0);
            if (len != UINT32_MAX) at += len;
        }
        CHECK_INT(at + 4, j.len[r ? 2 : 0]);
        cs_journal_info info;
        REQUIRE(cs_journal_record_info(q, j.len[r ? 2 : 0], &info, NULL) ==
                CS_OK);
        CHECK_INT(info.op, r ? CS_JOURNAL_SERVICE_UPDATE
                             : CS_JOURNAL_SERVICE_CREATE);
        CHECK_STR(r ? info.service_sid : info.created_sid, is1);
    }
    /* Replayed into a store with the same keys: the same store, and the
     * same records. */
    tu_journal jb = {0};
    REQUIRE(cs_store_set_journal(b, tu_journal_hook, &jb) == CS_OK);
    for (size_t i = 0; i < j.n; i++)
        CHECK_INT(cs_journal_apply(b, j.rec[i], j.len[i], NULL, NULL), CS_OK);
    REQUIRE(jb.n == j.n);
    for (size_t i = 0; i < j.n; i++)
        CHECK(jb.len[i] == j.len[i] && !memcmp(jb.rec[i], j.rec[i], j.len[i]));
    char *da = dump_of(a), *db = dump_of(b);
    CHECK_DUMP(db, da);
    free(db);

    /* The image: version 3, each service record's settings as laid out. */
    tu_mem m = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &m) == CS_OK);
    doc_img d;
    REQUIRE(doc_read(m.p, m.n, &d));
    CHECK_INT(d.version, 3);
    REQUIRE(d.nsvc == 2);
    CHECK_INT(le(d.svc[0].pre, 4), strlen("http://[::1]:9/pre"));
    CHECK(memcmp(d.svc[0].pre + 4, "http://[::1]:9/pre", 18) == 0);
    CHECK_INT(le(d.svc[0].post, 4), 39);
    CHECK_INT(d.svc[0].method, 1); /* GET */
    CHECK_INT(d.svc[0].pre_retry, 0);
    CHECK_INT(d.svc[0].post_retry, 2);
    CHECK_INT(d.svc[0].nf, 1);
    CHECK_INT(d.svc[0].filters[0], 6); /* onMessageRemoved */
    CHECK_INT(le(d.svc[1].pre, 4), UINT32_MAX);
    CHECK_INT(le(d.svc[1].post, 4), UINT32_MAX);
    CHECK_INT(d.svc[1].method, 0);
    CHECK_INT(d.svc[1].nf, 0);
    cs_store *c;
    cs_decode_error de;
    REQUIRE(load_bytes(m.p, m.n, &c, &de) == CS_OK);
    char *dc = dump_of(c);
    CHECK_DUMP(dc, da);
    free(dc);
    cs_store_free(c);

    /* As version 2 (the settings left out): loads, every service with the
     * default settings. */
    uint8_t *p = malloc(m.n);
    REQUIRE(p);
    size_t n2 = 0;
    doc_img d2;
    REQUIRE(doc_walk(m.p, m.n, &d2, p, &n2));
    REQUIRE(load_bytes(p, n2, &c, &de) == CS_OK);
    cs_service_view got;
    REQUIRE(cs_service_fetch(c, S(is1), &got) == CS_OK);
    CHECK(got.post_webhook_url.ptr == NULL && got.pre_webhook_url.ptr == NULL);
    CHECK_INT(got.webhook_method, CS_WEBHOOK_METHOD_UNSET);
    CHECK_INT(got.n_webhook_filters, 0);
    CHECK_INT(got.pre_webhook_retry_count + got.post_webhook_retry_count, 0);
    cs_store_free(c);

    /* Settings a call could not set are refused with the service's offset. */
    size_t fat = (size_t)(d.svc[0].filters - m.p);
    struct {
        size_t at;
        uint8_t val;
    } bad[] = {
        {fat - 4, 3},  /* method */
        {fat - 3, 4},  /* pre retry count */
        {fat - 2, 9},  /* post retry count */
        {fat, 0},      /* filter 0 */
        {fat, 24},     /* filter past the last event */
        {(size_t)(d.svc[0].pre - m.p) + 4, 'f'}, /* "fttp://" */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memcpy(p, m.p, m.n);
        p[bad[k].at] = bad[k].val;
        fix_crcs(p, m.n);
        CHECK_INT(load_bytes(p, m.n, &c, &de), CS_E_BAD_SNAPSHOT);
        CHECK(c == NULL);
        CHECK_STR(de.reason ? de.reason : "", "service webhook settings invalid");
    }
    free(p);
    free(da);
    tu_mem_free(&m);
    cs_store_free(a);
    cs_store_free(b);
    tu_journal_free(&j);
    tu_journal_free(&jb);
}

/* ---- SID tags ------------------------------------------------------------ */

static cs_store *new_tagged(uint64_t seed, int tag) {
    cs_options o = tu_options(seed);
    o.use_sid_tag = tag >= 0;
    o.sid_tag = (uint8_t)(tag >= 0 ? tag : 0);
    cs_store *s = NULL;
    if (cs_store_new(&o, &s)) return NULL;
    return s;
}

/* Every SID-shaped text ("XX" + 32 lower-case hex) in a dump, sorted. */
typedef struct sid_list {
    char (*v)[CS_SID_BUFSZ];
    size_t n, cap;
} sid_list;

static void sid_list_add(sid_list *l, const char *sid) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) abort();
    }
    memcpy(l->v[l->n], sid, CS__SID_STRLEN);
    l->v[l->n++][CS__SID_STRLEN] = '\0';
}

static int cmp_sidtxt(const void *a, const void *b) { return strcmp(a, b); }

static void sids_of_dump(const char *d, sid_list *l) {
    static const char *const pre[] = {"AC", "IS", "RL", "CH", "ME", "IM"};
    for (const char *p = d; *p; p++)
        for (int k = 0; k < 6; k++) {
            char sid[CS_SID_BUFSZ];
            snprintf(sid, sizeof sid, "%.34s", p);
            if (tu_is_sid(sid, pre[k])) sid_list_add(l, sid);
        }
    qsort(l->v, l->n, sizeof *l->v, cmp_sidtxt);
}

static bool sid_listed(const sid_list *l, const char *sid) {
    return l->n && bsearch(sid, l->v, l->n, sizeof *l->v, cmp_sidtxt);
}

static bool has_tag(const char *sid, int tag) {
    char hex[3];
    snprintf(hex, sizeof hex, "%02x", (unsigned)tag);
    return strncmp(sid + 2, hex, 2) == 0;
}

TEST(sid_tag_snapshot_load_continues_tagged_sids) {
    tu_now = TU_T0;
    cs_store *a = new_tagged(21, 0x5c);
    REQUIRE(a);
    REQUIRE(populate(a, 3));
    tu_mem m = {0};
    REQUIRE(cs_snapshot_save(a, tu_mem_write, &m) == CS_OK);
    cs_options o = tu_options(99); /* keys from the image, tag from here */
    o.use_sid_tag = true;
    o.sid_tag = 0x5c;
    cs_err e;
    cs_store *b = load(&m, &o, &e, NULL);
    CHECK_INT(e, CS_OK);
    REQUIRE(b);
    CHECK_INT(cs_store_sid_tag(b), 0x5c);
    char *da = dump_of(a), *db = dump_of(b);
    CHECK_DUMP(db, da);
    sid_list old = {0};
    sids_of_dump(db, &old);
    REQUIRE(old.n > 100);
    free(da);
    free(db);
    /* The same calls in both stores make the same new SIDs, all tagged,
     * none equal to an old one or to another new one. */
    cs_service_view sv;
    {
        cs_page sp;
        REQUIRE(cs_service_list(a, NULL, &sp) == CS_OK);
        REQUIRE(cs_page_next_service(a, &sp, &sv));
    }
    char is[CS_SID_BUFSZ];
    memcpy(is, sv.sid, sizeof is);
    sid_list fresh = {0};
    for (int i = 0; i < 40; i++) {
        cs_service_view na, nb;
        cs_channel_view ca, cb;
        cs_media_view ma, mb;
        CHECK_OK(cs_service_create(a, S("new"), &na));
        CHECK_OK(cs_service_create(b, S("new"), &nb));
        CHECK_OK(cs_channel_create(a, S(i % 2 ? is : na.sid), NULL, &ca));
        CHECK_OK(cs_channel_create(b, S(i % 2 ? is : nb.sid), NULL, &cb));
        CHECK_OK(cs_media_create(a, S(is), S("image/png"), CS_STR_ABSENT, 1,
                                 &ma));
        CHECK_OK(cs_media_create(b, S(is), S("image/png"), CS_STR_ABSENT, 1,
                                 &mb));
        const char *sa[6] = {na.sid, na.default_service_role_sid,
                             na.default_channel_role_sid,
                             na.default_channel_creator_role_sid, ca.sid,
                             ma.sid};
        const char *sb[6] = {nb.sid, nb.default_service_role_sid,
                             nb.default_channel_role_sid,
                             nb.default_channel_creator_role_sid, cb.sid,
                             mb.sid};
        for (int k = 0; k < 6; k++) {
            CHECK_STR(sb[k], sa[k]);
            CHECK(has_tag(sb[k], 0x5c));
            if (sid_listed(&old, sb[k]))
                CHECK_FAIL_("new SID %s was in the image", sb[k]);
            sid_list_add(&fresh, sb[k]);
        }
    }
    qsort(fresh.v, fresh.n, sizeof *fresh.v, cmp_sidtxt);
    for (size_t i = 1; i < fresh.n; i++)
        if (!strcmp(fresh.v[i - 1], fresh.v[i]))
            CHECK_FAIL_("SID %s made twice", fresh.v[i]);
    da = dump_of(a);
    db = dump_of(b);
    CHECK_DUMP(db, da);
    free(da);
    free(db);
    /* The image holds no tag: loaded without one (or with another), the
     * store makes the same SIDs with other first digits. */
    cs_options plain = tu_options(99), other = o;
    other.sid_tag = 0x5d;
    cs_store *c = load(&m, &plain, &e, NULL), *d = load(&m, &other, &e, NULL);
    REQUIRE(c && d);
    CHECK_INT(cs_store_sid_tag(c), -1);
    CHECK_INT(cs_store_sid_tag(d), 0x5d);
    cs_store *a2 = load(&m, &o, &e, NULL);
    REQUIRE(a2);
    cs_service_view x, y, z;
    CHECK_OK(cs_service_create(a2, S("new"), &x));
    CHECK_OK(cs_service_create(c, S("new"), &y));
    CHECK_OK(cs_service_create(d, S("new"), &z));
    CHECK(has_tag(x.sid, 0x5c) && has_tag(z.sid, 0x5d));
    CHECK(strcmp(y.sid, x.sid) != 0);
    CHECK_STR(y.sid + 4, x.sid + 4);
    CHECK_STR(z.sid + 4, x.sid + 4);
    free(old.v);
    free(fresh.v);
    cs_store_free(a);
    cs_store_free(a2);
    cs_store_free(b);
    cs_store_free(c);
    cs_store_free(d);
    tu_mem_free(&m);
}

/* Applies every record of j from the first; returns the first error. */
static cs_err apply_all(cs_store *s, const tu_journal *j, size_t *at) {
    for (size_t i = 0; i < j->n; i++) {
        cs_err e = cs_journal_apply(s, j->rec[i], j->len[i], NULL, NULL);
        if (e) {
            *at = i;
            return e;
        }
    }
    *at = j->n;
    return CS_OK;
}

static bool same_image(cs_store *a, cs_store *b) {
    tu_mem ma = {0}, mb = {0};
    bool ok = cs_snapshot_save(a, tu_mem_write, &ma) == CS_OK &&
              cs_snapshot_save(b, tu_mem_write, &mb) == CS_OK &&
              ma.n == mb.n && !memcmp(ma.p, mb.p, ma.n);
    tu_mem_free(&ma);
    tu_mem_free(&mb);
    return ok;
}

/* A create record names the SID it made, tag included, so only a store
 * with the writer's tag (same keys, same counters) applies it. */
TEST(sid_tag_journal_applies_only_with_the_writers_tag) {
    tu_now = TU_T0;
    cs_store *w = new_tagged(22, 0xab);
    REQUIRE(w);
    tu_journal j = {0}, tail = {0};
    REQUIRE(cs_store_set_journal(w, tu_journal_hook, &j) == CS_OK);
    REQUIRE(populate(w, 2));
    /* A follower with the same keys and tag rebuilds the writer exactly. */
    cs_store *f = new_tagged(22, 0xab);
    REQUIRE(f);
    size_t at;
    CHECK_INT(apply_all(f, &j, &at), CS_OK);
    char *dw = dump_of(w), *df = dump_of(f);
    CHECK_DUMP(df, dw);
    free(df);
    CHECK(same_image(w, f));
    /* Another tag, or none: the first record (a service create) is
     * RECORD_MISMATCH, and the store is as it was, observers untold. */
    const int others[] = {0xaa, 0, -1};
    for (int k = 0; k < 3; k++) {
        cs_store *x = new_tagged(22, others[k]);
        REQUIRE(x);
        tu_events ev;
        memset(&ev, 0, sizeof ev);
        REQUIRE(cs_observer_add(x, tu_record, &ev, NULL) == CS_OK);
        char *d0 = dump_of(x);
        CHECK_INT(apply_all(x, &j, &at), CS_E_RECORD_MISMATCH);
        CHECK_INT(at, 0);
        CHECK_INT(ev.n, 0);
        char *d1 = dump_of(x);
        CHECK_DUMP(d1, d0);
        free(d0);
        free(d1);
        cs_store_free(x);
    }
    /* The same after a snapshot (how a follower starts): loaded with the
     * writer's tag it follows the later records, with another it stops at
     * the first create and changes nothing. */
    tu_mem m = {0};
    REQUIRE(cs_snapshot_save(w, tu_mem_write, &m) == CS_OK);
    REQUIRE(cs_store_set_journal(w, tu_journal_hook, &tail) == CS_OK);
    tu_now += 500;
    REQUIRE(populate(w, 1));
    REQUIRE(tail.n > 0);
    cs_options same = tu_options(5), other = tu_options(5);
    same.use_sid_tag = other.use_sid_tag = true;
    same.sid_tag = 0xab;
    other.sid_tag = 0xac;
    cs_err e;
    cs_store *g = load(&m, &same, &e, NULL), *h = load(&m, &other, &e, NULL);
    REQUIRE(g && h);
    CHECK_INT(apply_all(g, &tail, &at), CS_OK);
    free(dw);
    dw = dump_of(w);
    char *dg = dump_of(g);
    CHECK_DUMP(dg, dw);
    CHECK(same_image(w, g));
    char *h0 = dump_of(h);
    CHECK_INT(apply_all(h, &tail, &at), CS_E_RECORD_MISMATCH);
    CHECK_INT(at, 0);
    char *h1 = dump_of(h);
    CHECK_DUMP(h1, h0);
    /* And an untagged writer's records do not apply to a tagged store. */
    cs_store *u = new_tagged(22, -1), *t = new_tagged(22, 0xab);
    REQUIRE(u && t);
    tu_journal ju = {0};
    REQUIRE(cs_store_set_journal(u, tu_journal_hook, &ju) == CS_OK);
    CHECK_OK(cs_service_create(u, S("x"), NULL));
    REQUIRE(ju.n == 1);
    CHECK_INT(cs_journal_apply(t, ju.rec[0], ju.len[0], NULL, NULL),
              CS_E_RECORD_MISMATCH);
    cs_store_stats st;
    cs_store_stats_get(t, &st);
    CHECK_INT(st.services, 0);
    free(dw);
    free(dg);
    free(h0);
    free(h1);
    cs_store_free(w);
    cs_store_free(f);
    cs_store_free(g);
    cs_store_free(h);
    cs_store_free(u);
    cs_store_free(t);
    tu_journal_free(&j);
    tu_journal_free(&tail);
    tu_journal_free(&ju);
    tu_mem_free(&m);
}

static const check_test TESTS[] = {
    T(snapshot_roundtrip_is_byte_identical),
    T(snapshot_tokens_and_sids_survive_and_continue),
    T(snapshot_of_empty_and_cleared_stores),
    T(snapshot_account_sid_option_must_match),
    T(snapshot_callback_failures_are_io),
    T(snapshot_damage_is_refused_with_offset),
    T(journal_replay_after_snapshot_rebuilds_the_store),
    T(journal_from_an_empty_store_rebuilds_it),
    T(journal_gap_and_mismatch_are_refused),
    T(journal_damage_is_refused_with_offset),
    T(journal_refusal_changes_nothing),
    T(journal_foreign_create_changes_nothing),
    T(epoch_after_a_lost_tail_never_reissues_sids),
    T(epoch_in_snapshots_as_documented),
    T(webhook_settings_in_snapshots_and_journal),
    T(journal_crafted_message_records_fail_as_their_call),
    T(journal_message_records_find_messages_in_their_epoch),
    T(sid_tag_snapshot_load_continues_tagged_sids),
    T(sid_tag_journal_applies_only_with_the_writers_tag),
};

CHECK_MAIN(TESTS)
