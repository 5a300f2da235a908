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

/* ---- memory sinks and sources ------------------------------------------- */

typedef struct mem {
    uint8_t *p;
    size_t n, cap, pos;
    size_t chunk; /* read at most this many bytes per call (0: any) */
} mem;

static int mem_write(void *ctx, const void *buf, size_t len) {
    mem *m = ctx;
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

static ptrdiff_t mem_read(void *ctx, void *buf, size_t len) {
    mem *m = ctx;
    size_t k = m->n - m->pos;
    if (k > len) k = len;
    if (m->chunk && k > m->chunk) k = m->chunk;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ptrdiff_t)k;
}

static void mem_free(mem *m) {
    free(m->p);
    memset(m, 0, sizeof *m);
}

/* Journal records kept in order. */
#define MAX_RECS 4096
typedef struct journal {
    uint8_t *rec[MAX_RECS];
    size_t len[MAX_RECS];
    uint64_t seq[MAX_RECS];
    size_t n;
    int refuse; /* non-zero: refuse every record */
} journal;

static int journal_hook(void *ctx, uint64_t seq, const void *rec, size_t len) {
    journal *j = ctx;
    if (j->refuse) return j->refuse;
    if (j->n == MAX_RECS) return -1;
    j->rec[j->n] = malloc(len);
    memcpy(j->rec[j->n], rec, len);
    j->len[j->n] = len;
    j->seq[j->n] = seq;
    j->n++;
    return 0;
}

static void journal_free(journal *j) {
    for (size_t i = 0; i < j->n; i++) free(j->rec[i]);
    memset(j, 0, sizeof *j);
}

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

static cs_store *load(mem *m, const cs_options *o, cs_err *e,
                      cs_decode_error *err) {
    cs_store *s = NULL;
    m->pos = 0;
    *e = cs_snapshot_load(o, mem_read, m, &s, err);
    return s;
}

/* ---- snapshots ---------------------------------------------------------- */

TEST(snapshot_roundtrip_is_byte_identical) {
    tu_now = TU_T0;
    cs_store *a = new_store(7);
    REQUIRE(a);
    REQUIRE(populate(a, 4));
    mem m = {0};
    CHECK_INT(cs_snapshot_save(a, mem_write, &m), CS_OK);
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
    mem m2 = {0};
    CHECK_INT(cs_snapshot_save(b, mem_write, &m2), CS_OK);
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
    mem_free(&m);
    mem_free(&m2);
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

    mem m = {0};
    REQUIRE(cs_snapshot_save(a, mem_write, &m) == CS_OK);
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
    mem_free(&m);
}

TEST(snapshot_of_empty_and_cleared_stores) {
    cs_store *a = new_store(9);
    REQUIRE(a);
    mem m = {0};
    CHECK_INT(cs_snapshot_save(a, mem_write, &m), CS_OK);
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
    mem_free(&m);
    CHECK_INT(cs_snapshot_save(a, mem_write, &m), CS_OK);
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
    mem_free(&m);
}

TEST(snapshot_account_sid_option_must_match) {
    cs_store *a = new_store(10);
    REQUIRE(a);
    mem m = {0};
    REQUIRE(cs_snapshot_save(a, mem_write, &m) == CS_OK);
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
    mem_free(&m);
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
    mem m = {0};
    REQUIRE(cs_snapshot_save(a, mem_write, &m) == CS_OK);
    size_t n = m.n, bad = 0;
    for (size_t cut = 0; cut < n; cut += cut < 300 ? 1 : 37) {
        mem t = {m.p, cut, cut, 0, 0};
        cs_store *b = NULL;
        cs_decode_error de = {0, NULL};
        cs_err e = cs_snapshot_load(NULL, mem_read, &t, &b, &de);
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
        mem t = {copy, n, n, 0, 0};
        cs_store *b = NULL;
        cs_decode_error de = {0, NULL};
        cs_err e = cs_snapshot_load(NULL, mem_read, &t, &b, &de);
        if (e != CS_E_BAD_SNAPSHOT || b || !de.reason || de.offset > n) {
            bad++;
            CHECK_FAIL_("flip at %zu: %s", i, cs_err_name(e));
        }
        cs_store_free(b);
        free(copy);
    }
    cs_store_free(a);
    mem_free(&m);
}

/* ---- journal ------------------------------------------------------------ */

TEST(journal_replay_after_snapshot_rebuilds_the_store) {
    tu_now = TU_T0;
    cs_store *a = new_store(13);
    REQUIRE(a);
    journal j = {0};
    CHECK_INT(cs_store_set_journal(a, journal_hook, &j), CS_OK);
    REQUIRE(populate(a, 1));
    mem m = {0};
    REQUIRE(cs_snapshot_save(a, mem_write, &m) == CS_OK);
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
    journal_free(&j);
    mem_free(&m);
}

TEST(journal_from_an_empty_store_rebuilds_it) {
    tu_now = TU_T0;
    cs_store *a = new_store(14), *b = new_store(14);
    REQUIRE(a && b);
    journal j = {0};
    REQUIRE(cs_store_set_journal(a, journal_hook, &j) == CS_OK);
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
    journal_free(&j);
}

TEST(journal_gap_and_mismatch_are_refused) {
    tu_now = TU_T0;
    cs_store *a = new_store(15), *b = new_store(16);
    REQUIRE(a && b);
    journal j = {0};
    REQUIRE(cs_store_set_journal(a, journal_hook, &j) == CS_OK);
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
    journal_free(&j);
}

TEST(journal_damage_is_refused_with_offset) {
    tu_now = TU_T0;
    cs_store *a = new_store(17), *b = new_store(17);
    REQUIRE(a && b);
    journal j = {0};
    REQUIRE(cs_store_set_journal(a, journal_hook, &j) == CS_OK);
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
    journal_free(&j);
}

/* A create record from a store with other keys, or with its created SID
 * altered (CRC fixed), is refused before anything changes. */
TEST(journal_foreign_create_changes_nothing) {
    tu_now = TU_T0;
    cs_store *a = new_store(1), *b = new_store(2);
    REQUIRE(a && b);
    journal j = {0};
    REQUIRE(cs_store_set_journal(a, journal_hook, &j) == CS_OK);
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
    journal_free(&j);
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
static size_t record_of_call(mem *img, journal *j, int op, const char *is,
                             const char *ch, const char *im) {
    cs_err e;
    cs_store *w = load(img, NULL, &e, NULL);
    if (!w) return SIZE_MAX;
    cs_store_set_journal(w, journal_hook, j);
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
    mem img = {0};
    REQUIRE(cs_snapshot_save(a, mem_write, &img) == CS_OK);
    cs_err e;
    cs_store *b = load(&img, NULL, &e, NULL), *ref = load(&img, NULL, &e, NULL);
    REQUIRE(b && ref);
    /* Valid records at b's next seq, one per operation, to craft from. */
    journal j = {0};
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
    journal_free(&j);
    mem_free(&img);
}

/* A refusing hook: every kind of mutating call fails with JOURNAL_REFUSED,
 * changes nothing and notifies nobody. */
TEST(journal_refusal_changes_nothing) {
    tu_now = TU_T0;
    cs_store *a = new_store(18);
    REQUIRE(a);
    REQUIRE(populate(a, 1));
    journal j = {0};
    REQUIRE(cs_store_set_journal(a, journal_hook, &j) == CS_OK);
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
    journal_free(&j);
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
    T(journal_crafted_message_records_fail_as_their_call),
};

CHECK_MAIN(TESTS)
