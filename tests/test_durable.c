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
    cs_err got[12] = {
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
    };
    for (int i = 0; i < 12; i++) {
        if (got[i] != CS_E_JOURNAL_REFUSED)
            CHECK_FAIL_("call %d: %s", i, cs_err_name(got[i]));
    }
    CHECK_INT(ev.n, 0);
    CHECK_INT(cs_store_check(a), CS_OK);
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
};

CHECK_MAIN(TESTS)
