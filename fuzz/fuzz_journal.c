/* Journal records as untrusted input to cs_journal_apply.
 *
 * At start-up the scripted session of durable.h runs on a store with a
 * capturing journal hook, giving R[0..n): real records of every kind, each
 * written against the state the records before it leave. Replaying them
 * into a new store gives the expected dump after each, DS[0..n].
 *
 * Each input starts a store A (same seed and options as the session's,
 * counting allocator, capturing journal hook, an observer) and a shadow
 * store B, then runs commands, one byte each plus parameters:
 *   0  advance: apply the next 1..64 script records R[commits] unchanged
 *   1  raw: a u16 length, then that many input bytes as the record
 *   2,3  mutate: a base record (R[i], or the next one the store expects),
 *      decoded into its fields and changed structurally (header counters
 *      and times: deltas, edge values or the store's live values; webhook,
 *      channel type, size, index; strings: absent, empty, input bytes, or
 *      one from a pool of the session's strings and edge cases; SIDs from
 *      the session's pool or with a byte changed; the operation itself,
 *      with its layout fixed up), re-encoded with a correct CRC-32C
 *      (computed here), then raw byte edits (set, xor, insert, delete,
 *      truncate) with the CRC fixed up again or not
 *   4  apply R[i] unchanged (an old one is skipped, a later one is a gap)
 *   5  the next apply's k-th allocation fails
 *   6  A's journal hook refuses the next record
 *   7  jump: while nothing was applied, A and B open from the session's
 *      snapshot after k changes instead: deep states without replaying
 *      the records before them. After an apply it ends the input: one
 *      world per input (the rest would be an input of its own, paid for
 *      in every execution of this one)
 *
 * For every apply:
 *  - the result is CS_OK or one of the errors on cs_journal_apply's
 *    "Errors:" line in chatstore.h;
 *  - the seq rules: a record whose header seq (cs_journal_record_seq) is
 *    not above the commit count is skipped (OK, not applied, nothing
 *    changes), a later one than the next is RECORD_GAP; BAD_RECORD has a
 *    reason and an offset <= the record length; NOMEM only when an
 *    allocation failed; JOURNAL_REFUSED exactly when A's hook refused;
 *  - the clock is never read while applying;
 *  - cs_store_check passes after every apply: at once after an applied
 *    record (but for the session's own records on the session's states,
 *    checked at start-up), and for failed ones together, after the next
 *    applied record, before a delete or clear that can apply and at the
 *    end (damage a failure leaves stays until a change removes it);
 *  - a failed or skipped apply commits nothing, notifies no observer,
 *    writes no record, and leaves A's dump byte-identical: compared with
 *    B's (B received exactly the changes A committed), or with the
 *    session's while A follows it, at the end and before the next delete
 *    or clear record that can apply (the next seq and a correct CRC-32C;
 *    such a record could hide a difference; one with a wrong CRC must be
 *    BAD_RECORD). Equal snapshot images and stats (an image holds all a
 *    dump renders) suffice there, and at the end while A follows the
 *    session; the dumps decide otherwise. Not after every failure: dumps
 *    were most of the run time; an update that overwrites exactly what a
 *    failure changed could hide it in one input, not in the inputs
 *    without that update. Capacity a failed call reserved may stay
 *    (tests/test_oom_durable.c): live bytes are checked when the stores
 *    are freed, not after each failure;
 *  - an applied record commits exactly one change with the record's seq:
 *    one event, one record from A's own hook with that seq. That record
 *    applied to B (which saw every change A committed) succeeds; for an
 *    unchanged script record it is byte-identical to the original;
 *  - at the end A and B dump the same (when A followed the session and a
 *    record failed since the last check: A's image and stats are the
 *    session's after k, else the dumps decide), and freeing them returns
 *    every byte. */
#include "durable.h"
#include "dump.h"

/* ---- record layout (docs/journal.md, lib/journal.c) --------------------- */

#define J_HEADER 40
#define J_ABSENT UINT32_MAX
#define N_OPS 15 /* operations 1..14 */
enum { F_SVC = 1, F_CHAN = 2, F_MSG = 4, F_CREATED = 8 };

static const struct {
    uint8_t sids, nstr;
} SHAPE[N_OPS] = {
    [1] = {F_CREATED, 1},                  /* service create */
    [2] = {F_SVC, 1},                      /* service update */
    [3] = {F_SVC, 0},                      /* service delete */
    [4] = {F_SVC | F_CREATED, 6},          /* channel create */
    [5] = {F_SVC | F_CHAN, 6},             /* channel update */
    [6] = {F_SVC | F_CHAN, 0},             /* channel delete */
    [7] = {F_SVC | F_CREATED, 2},          /* media create */
    [8] = {F_SVC | F_CHAN | F_CREATED, 7}, /* message create */
    [9] = {F_SVC | F_CHAN | F_MSG, 6},     /* message update */
    [10] = {F_SVC | F_CHAN | F_MSG, 0},    /* message delete */
    [11] = {0, 0},                         /* clear */
    [12] = {0, 0},                         /* new epoch */
    [13] = {F_CREATED, 7},                 /* service create, webhooks */
    [14] = {F_SVC, 7},                     /* service update, webhooks */
};

#define MAXSTR 7
#define MAXSTRLEN 600
typedef struct jstr {
    bool absent;
    uint32_t len;
    uint8_t b[MAXSTRLEN];
} jstr;

typedef struct jfields {
    uint8_t ver, op, flags, pad1;
    uint32_t pad4;
    uint64_t h[4]; /* seq, now, counter, serial */
    bool has[4];   /* svc, chan, msg, created */
    uint8_t sid[4][16];
    uint8_t wh, type;
    uint64_t size, index;
    unsigned nstr;
    jstr str[MAXSTR];
} jfields;

static bool parse(const uint8_t *p, size_t n, jfields *f) {
    memset(f, 0, sizeof *f);
    if (n < J_HEADER + 4) return false;
    n -= 4;
    f->ver = p[0];
    f->op = p[1];
    f->flags = p[2];
    f->pad1 = p[3];
    f->pad4 = dz_get_u32(p + 4);
    for (int i = 0; i < 4; i++) f->h[i] = dz_get_u64(p + 8 + 8 * i);
    if (f->op == 0 || f->op >= N_OPS) return false;
    size_t off = J_HEADER;
    for (int i = 0; i < 4; i++) {
        f->has[i] = SHAPE[f->op].sids >> i & 1;
        if (!f->has[i]) continue;
        if (n - off < 16) return false;
        memcpy(f->sid[i], p + off, 16);
        off += 16;
    }
    if (n - off < 18) return false;
    f->wh = p[off];
    f->type = p[off + 1];
    f->size = dz_get_u64(p + off + 2);
    f->index = dz_get_u64(p + off + 10);
    off += 18;
    f->nstr = SHAPE[f->op].nstr;
    for (unsigned i = 0; i < f->nstr; i++) {
        if (n - off < 4) return false;
        uint32_t len = dz_get_u32(p + off);
        off += 4;
        if (len == J_ABSENT) {
            f->str[i].absent = true;
            continue;
        }
        if (len > MAXSTRLEN || n - off < len) return false;
        f->str[i].len = len;
        memcpy(f->str[i].b, p + off, len);
        off += len;
    }
    return off == n;
}

/* Encodes f with a correct trailing CRC-32C. */
static void encode(const jfields *f, dz_bytes *out) {
    out->n = 0;
    uint8_t h[J_HEADER];
    h[0] = f->ver;
    h[1] = f->op;
    h[2] = f->flags;
    h[3] = f->pad1;
    dz_put_u32(h + 4, f->pad4);
    for (int i = 0; i < 4; i++) dz_put_u64(h + 8 + 8 * i, f->h[i]);
    dz_put(out, h, sizeof h);
    for (int i = 0; i < 4; i++)
        if (f->has[i]) dz_put(out, f->sid[i], 16);
    uint8_t t[18];
    t[0] = f->wh;
    t[1] = f->type;
    dz_put_u64(t + 2, f->size);
    dz_put_u64(t + 10, f->index);
    dz_put(out, t, sizeof t);
    for (unsigned i = 0; i < f->nstr; i++) {
        uint8_t l[4];
        dz_put_u32(l, f->str[i].absent ? J_ABSENT : f->str[i].len);
        dz_put(out, l, 4);
        if (!f->str[i].absent) dz_put(out, f->str[i].b, f->str[i].len);
    }
    uint8_t c[4];
    dz_put_u32(c, dz_crc32c(out->p, out->n));
    dz_put(out, c, 4);
}

/* ---- the session -------------------------------------------------------- */

static dz_journal SESSION;      /* R[0..n) */
static char *DS[DZ_MAX_RECS + 1]; /* dumps after k records */
static dz_bytes IMG[DZ_MAX_RECS + 1]; /* snapshots after k records */
static cs_store_stats STATS[DZ_MAX_RECS + 1]; /* stats after k records */
static jfields PARSED[DZ_MAX_RECS];
static size_t NREC;

/* Pools for structural mutations. */
#define MAX_POOL 256
static jstr *SPOOL[MAX_POOL];
static size_t NSPOOL;
static uint8_t SIDPOOL[MAX_POOL][16];
static size_t NSIDPOOL;

static char *dump_of(cs_store *s) {
    cs_buf b;
    dump_store(s, &b);
    return b.data;
}

static void add_str(const void *p, size_t n, bool absent) {
    if (NSPOOL == MAX_POOL) return;
    jstr *s = calloc(1, sizeof *s);
    FZ_CHECK(s && n <= MAXSTRLEN, "pool");
    s->absent = absent;
    s->len = (uint32_t)n;
    if (n) memcpy(s->b, p, n);
    SPOOL[NSPOOL++] = s;
}

static void add_sid(const uint8_t *sid) {
    for (size_t i = 0; i < NSIDPOOL; i++)
        if (!memcmp(SIDPOOL[i], sid, 16)) return;
    if (NSIDPOOL < MAX_POOL) memcpy(SIDPOOL[NSIDPOOL++], sid, 16);
}

static void setup(void) {
    dz_heap h;
    memset(&h, 0, sizeof h);
    cs_allocator alc = {dz_malloc, dz_free, &h};
    cs_options o = dz_options(&alc);
    cs_store *w = NULL, *v = NULL;
    dz_must(cs_store_new(&o, &w), "session store");
    dz_must(cs_store_set_journal(w, dz_journal_hook, &SESSION), "hook");
    dz_now = DZ_T0;
    size_t n = dz_script(w, 0);
    FZ_CHECK(SESSION.n == n, "%zu records for %zu changes", SESSION.n, n);
    NREC = n;
    dz_must(cs_store_new(&o, &v), "replay store");
    DS[0] = dump_of(v);
    cs_store_stats_get(v, &STATS[0]);
    dz_must(cs_snapshot_save(v, dz_write, &IMG[0]), "snapshot");
    dz_clock_forbidden = 1;
    for (size_t k = 0; k < n; k++) {
        bool ap = false;
        cs_decode_error de = {0, NULL};
        cs_err e = cs_journal_apply(v, SESSION.rec[k].p, SESSION.rec[k].n, &ap,
                                    &de);
        FZ_CHECK(e == CS_OK && ap, "session record %zu: %s", k, cs_err_name(e));
        FZ_CHECK(cs_store_check(v) == CS_OK, "session state %zu fails its check",
                 k + 1);
        DS[k + 1] = dump_of(v);
        cs_store_stats_get(v, &STATS[k + 1]);
        dz_must(cs_snapshot_save(v, dz_write, &IMG[k + 1]), "snapshot");
        FZ_CHECK(parse(SESSION.rec[k].p, SESSION.rec[k].n, &PARSED[k]),
                 "session record %zu does not parse", k);
        dz_bytes re = {NULL, 0, 0};
        encode(&PARSED[k], &re);
        FZ_CHECK(re.n == SESSION.rec[k].n &&
                     !memcmp(re.p, SESSION.rec[k].p, re.n),
                 "session record %zu re-encodes differently", k);
        dz_bytes_free(&re);
        for (unsigned i = 0; i < PARSED[k].nstr; i++)
            add_str(PARSED[k].str[i].b, PARSED[k].str[i].len,
                    PARSED[k].str[i].absent);
        for (int i = 0; i < 4; i++)
            if (PARSED[k].has[i]) add_sid(PARSED[k].sid[i]);
    }
    dz_clock_forbidden = 0;
    char *dw = dump_of(w);
    FZ_CHECK(!strcmp(dw, DS[n]), "replayed session differs from the session");
    free(dw);
    /* Edge cases the session does not write. */
    static const char *const extra[] = {
        "true", "false", "TRUE", "maybe", "public", "private", "{", "[1,]",
        "{\"a\":1}", "null", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
        "10000-01-01T00:00:00Z", "2016-02-30T00:00:00Z", "1969-12-31T23:59:59Z",
        "CH0123456789abcdef0123456789abcdef", "ME0123456789abcdef0123456789abcdef",
        "text", "a/b", "a/b;c=d", "image/", "general", "again", "b-room",
        "private-one", "\xff", "\xc0\x80", "\xed\xa0\x80", "caf\xc3"};
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        add_str(extra[i], strlen(extra[i]), false);
    char big[MAXSTRLEN];
    memset(big, 'x', sizeof big);
    add_str(big, sizeof big, false);
    uint8_t z[16] = {0};
    add_sid(z);
    cs_store_free(w);
    cs_store_free(v);
    FZ_CHECK(h.live_bytes == 0, "session leaks %zu bytes", h.live_bytes);
}

/* ---- input reader ------------------------------------------------------- */

typedef struct in {
    const uint8_t *p;
    size_t n, pos;
} in;

static uint8_t u8(in *r) { return r->pos < r->n ? r->p[r->pos++] : 0; }
static bool more(const in *r) { return r->pos < r->n; }
static uint16_t u16(in *r) {
    uint16_t lo = u8(r);
    return (uint16_t)(lo | u8(r) << 8);
}

/* ---- the stores under test ---------------------------------------------- */

typedef struct obs {
    unsigned events;
    uint64_t seq;
    cs_store *s;
    const dz_bytes *rec; /* the record being applied */
} obs;

static void observer(void *ctx, const cs_event *ev) {
    obs *o = ctx;
    o->events++;
    o->seq = ev->seq;
    bool ap = true;
    cs_err e = cs_journal_apply(o->s, o->rec->p, o->rec->n, &ap, NULL);
    FZ_CHECK(e == CS_E_REENTRANT && !ap,
             "cs_journal_apply inside an observer: %s", cs_err_name(e));
}

/* A and B are opened when first needed: A at its first apply (so that a
 * run of jumps costs nothing), B when A leaves the session (until then A's
 * records are the session's, byte for byte, and B would hold the session's
 * state, which the checks take from DS instead). */
typedef struct world {
    cs_store *a, *b; /* NULL until opened */
    size_t from;     /* A opens with the session's state after this many */
    dz_heap ha, hb;
    cs_allocator alca, alcb;
    dz_journal ja;
    obs ob;
    bool on_script; /* A holds the session's state after commits records */
    bool pending;   /* failed applies whose "nothing changed" is unchecked */
    bool unchecked; /* failed applies since the last cs_store_check of A */
    bool fresh;     /* nothing applied since opening */
    char *bdump;    /* B's dump, NULL when not computed since B changed */
    long arm_fail;
    bool arm_refuse;
} world;

static void open_store(cs_store **s, const cs_allocator *alc, size_t k);

static void ensure_a(world *w) {
    if (w->a) return;
    open_store(&w->a, &w->alca, w->from);
    dz_must(cs_store_set_journal(w->a, dz_journal_hook, &w->ja), "hook A");
    w->ob.s = w->a;
    dz_must(cs_observer_add(w->a, observer, &w->ob, NULL), "observer A");
}

static uint64_t commits(const cs_store *s) { return s->commits; }

static bool documented(cs_err e) {
    switch (e) {
    case CS_OK:
    case CS_E_BAD_RECORD:
    case CS_E_RECORD_GAP:
    case CS_E_RECORD_MISMATCH:
    case CS_E_REENTRANT:
    case CS_E_NOMEM:
    case CS_E_JOURNAL_REFUSED:
    case CS_E_INVALID_ARGUMENT:
    case CS_E_FRIENDLY_NAME_MISSING:
    case CS_E_BAD_UTF8:
    case CS_E_BAD_WEBHOOK_HEADER:
    case CS_E_BAD_CHANNEL_TYPE:
    case CS_E_FRIENDLY_NAME_TOO_LONG:
    case CS_E_UNIQUE_NAME_TOO_LONG:
    case CS_E_IDENTITY_TOO_LONG:
    case CS_E_ATTRIBUTES_TOO_LONG:
    case CS_E_ATTRIBUTES_INVALID:
    case CS_E_UNIQUE_NAME_IS_SID:
    case CS_E_UNIQUE_NAME_EXISTS:
    case CS_E_BAD_DATE_CREATED:
    case CS_E_BAD_DATE_UPDATED:
    case CS_E_FROM_TOO_LONG:
    case CS_E_BODY_TOO_LONG:
    case CS_E_LAST_UPDATED_BY_TOO_LONG:
    case CS_E_MEDIA_NOT_FOUND:
    case CS_E_MEDIA_IN_USE:
    case CS_E_MEDIA_BODY_IMMUTABLE:
    case CS_E_BAD_MEDIA_SID:
    case CS_E_BAD_MEDIA_CONTENT_TYPE:
    case CS_E_MEDIA_TOO_LARGE:
    case CS_E_LIMIT_EXCEEDED:
    case CS_E_BAD_WEBHOOK_URL:
    case CS_E_BAD_WEBHOOK_METHOD:
    case CS_E_BAD_WEBHOOK_FILTER:
    case CS_E_BAD_RETRY_COUNT:
        return true;
    default:
        return false;
    }
}

static void dumps_equal(const char *got, const char *want, const char *what,
                        const char *ref) {
    if (strcmp(got, want) == 0) return;
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    FZ_CHECK(0, "%s: A's dump differs from %s at byte %zu:\n  A   ...%.160s\n  ref ...%.160s",
             what, ref, i, got + from, want + from);
}

static const char *b_dump(world *w) {
    if (!w->bdump) w->bdump = dump_of(w->b);
    return w->bdump;
}

/* A's snapshot image and stats (all but the byte count) equal the
 * reference's: the same store, so the same dump. A shortcut for the
 * checks before a delete or clear; when it does not hold, the dumps
 * decide. */
static bool stats_equal(const cs_store_stats *x, const cs_store_stats *y) {
    return x->services == y->services && x->channels == y->channels &&
           x->messages == y->messages && x->media == y->media &&
           x->identities == y->identities && x->commits == y->commits;
}

static bool same_image(world *w) {
    dz_bytes ia = {NULL, 0, 0}, ib = {NULL, 0, 0};
    cs_store_stats sa, sb;
    const dz_bytes *ref;
    dz_must(cs_snapshot_save(w->a, dz_write, &ia), "save A");
    cs_store_stats_get(w->a, &sa);
    if (w->on_script) {
        if (sa.commits > NREC) return false;
        ref = &IMG[sa.commits];
        sb = STATS[sa.commits];
    } else {
        dz_must(cs_snapshot_save(w->b, dz_write, &ib), "save B");
        cs_store_stats_get(w->b, &sb);
        ref = &ib;
    }
    bool same = ia.n == ref->n && !memcmp(ia.p, ref->p, ia.n) &&
                stats_equal(&sa, &sb);
    dz_bytes_free(&ia);
    dz_bytes_free(&ib);
    return same;
}

/* A's dump against what it must be: the session's while A follows it,
 * else B's (B received exactly the changes A committed). quick: accept
 * equal images and stats without dumping. */
static void verify(world *w, const char *what, bool quick) {
    if (quick && same_image(w)) {
        w->pending = false;
        return;
    }
    char *d = dump_of(w->a);
    if (w->on_script) {
        dumps_equal(d, DS[commits(w->a)], what, "the session's");
    } else {
        FZ_CHECK(w->b, "off the session without B");
        dumps_equal(d, b_dump(w), what, "its journal's replay B");
    }
    free(d);
    w->pending = false;
}

/* cs_store_check on A; failed applies are checked together, later. */
static void check_a(world *w, const char *when, cs_err e) {
    FZ_CHECK(cs_store_check(w->a) == CS_OK, "cs_store_check fails %s (%s)",
             when, cs_err_name(e));
    w->unchecked = false;
}

/* FUZZ_TRACE=1 in the environment: one line per apply on stderr. */
static bool TRACE;

/* Applies rec to A with every check; script_k is the index of the unchanged
 * script record it is, or -1. */
static void apply(world *w, const dz_bytes *rec, long script_k) {
    ensure_a(w);
    w->fresh = false;
    uint64_t c0 = commits(w->a);
    /* A delete or a clear could hide what a failed apply changed: check
     * before one that can apply, i.e. with the next seq and a correct
     * CRC-32C (docs/journal.md: a record that does not decode is
     * BAD_RECORD whatever its seq, then only seq c0 + 1 applies). */
    bool bad_crc = false;
    if ((w->pending || w->unchecked) && rec->n >= J_HEADER + 4 &&
        (rec->p[1] == 3 || rec->p[1] == 6 || rec->p[1] == 10 ||
         rec->p[1] == 11) &&
        dz_get_u64(rec->p + 8) == c0 + 1) {
        bad_crc = dz_get_u32(rec->p + rec->n - 4) !=
                  dz_crc32c(rec->p, rec->n - 4);
        if (!bad_crc) {
            if (w->unchecked) check_a(w, "after failed applies", CS_OK);
            if (w->pending) verify(w, "a failed apply changed the store", true);
        }
    }
    /* The session's next record on the session's state: the result and the
     * state after are known (checked at start-up). */
    bool script = w->on_script && script_k >= 0 && (uint64_t)script_k == c0;
    size_t j0 = w->ja.n;
    w->ob.events = 0;
    w->ob.rec = rec;
    w->ha.fail_at = w->arm_fail;
    w->ha.fired = false;
    w->ja.refuse = w->arm_refuse;
    w->arm_fail = 0;
    w->arm_refuse = false;
    bool refuse_armed = w->ja.refuse != 0;

    /* An exactly sized copy: reads past the end hit ASan. */
    uint8_t *copy = (uint8_t *)fz_dup(rec->p, rec->n);
    bool ap = true;
    cs_decode_error de = {UINT64_MAX, NULL};
    dz_clock_forbidden = 1;
    cs_err e = cs_journal_apply(w->a, copy, rec->n, &ap, &de);
    dz_clock_forbidden = 0;
    w->ha.fail_at = 0;
    bool refused = refuse_armed && w->ja.refuse == 0;
    w->ja.refuse = 0;

    if (TRACE)
        fprintf(stderr, "apply %zu bytes (script %ld) after %llu commits: %s%s"
                        "%s%s\n", rec->n, script_k, (unsigned long long)c0,
                cs_err_name(e), ap ? ", applied" : "",
                e == CS_E_BAD_RECORD ? ": " : "",
                e == CS_E_BAD_RECORD && de.reason ? de.reason : "");
    FZ_CHECK(documented(e),
             "cs_journal_apply returned %s, not in its Errors list",
             cs_err_name(e));
    FZ_CHECK(!bad_crc || e == CS_E_BAD_RECORD,
             "a record with a wrong CRC-32C: %s", cs_err_name(e));
    /* The session's record on the session's state needs no check (its
     * states were checked at start-up), unless failures came before. */
    if (ap && (!script || w->unchecked)) check_a(w, "after apply", e);
    uint64_t seq = 0;
    cs_err rs = cs_journal_record_seq(copy, rec->n, &seq);
    if (rec->n < J_HEADER + 4) {
        FZ_CHECK(rs == CS_E_BAD_RECORD && e == CS_E_BAD_RECORD,
                 "%zu-byte record: %s, seq %s", rec->n, cs_err_name(e),
                 cs_err_name(rs));
    } else {
        FZ_CHECK(rs == CS_OK && seq == dz_get_u64(copy + 8),
                 "cs_journal_record_seq: %s", cs_err_name(rs));
    }
    if (e == CS_E_BAD_RECORD) {
        FZ_CHECK(de.reason != NULL, "BAD_RECORD without a reason");
        FZ_CHECK(de.offset <= rec->n, "BAD_RECORD (%s) at %llu of %zu bytes",
                 de.reason, (unsigned long long)de.offset, rec->n);
    } else {
        FZ_CHECK(rs == CS_OK, "decoded a record cs_journal_record_seq refuses");
        if (seq <= c0)
            FZ_CHECK(e == CS_OK && !ap, "seq %llu after %llu commits: %s",
                     (unsigned long long)seq, (unsigned long long)c0,
                     cs_err_name(e));
        else if (seq > c0 + 1)
            FZ_CHECK(e == CS_E_RECORD_GAP, "seq %llu after %llu commits: %s",
                     (unsigned long long)seq, (unsigned long long)c0,
                     cs_err_name(e));
        else
            FZ_CHECK(e != CS_E_RECORD_GAP, "the next seq is a gap");
    }
    FZ_CHECK(e != CS_E_NOMEM || w->ha.fired, "NOMEM without a failed allocation");
    FZ_CHECK(refused == (e == CS_E_JOURNAL_REFUSED),
             "%s, journal hook %s", cs_err_name(e),
             refused ? "refused" : "did not refuse");
    FZ_CHECK(e == CS_OK || !ap, "%s but *applied is true", cs_err_name(e));

    if (!ap) {
        FZ_CHECK(commits(w->a) == c0, "%s, not applied, but commits %llu -> %llu",
                 cs_err_name(e), (unsigned long long)c0,
                 (unsigned long long)commits(w->a));
        FZ_CHECK(w->ob.events == 0, "%s, not applied, but %u events",
                 cs_err_name(e), w->ob.events);
        FZ_CHECK(w->ja.n == j0, "%s, not applied, but journal records written",
                 cs_err_name(e));
        w->pending = true;
        w->unchecked = true;
        free(copy);
        return;
    }
    FZ_CHECK(commits(w->a) == c0 + 1,
             "applied seq %llu: commits %llu -> %llu (a change must commit once)",
             (unsigned long long)seq, (unsigned long long)c0,
             (unsigned long long)commits(w->a));
    FZ_CHECK(w->ob.events == 1 && w->ob.seq == c0 + 1,
             "applied: %u events, seq %llu", w->ob.events,
             (unsigned long long)w->ob.seq);
    FZ_CHECK(w->ja.n == j0 + 1 && w->ja.seq[j0] == c0 + 1,
             "applied: %zu journal records", w->ja.n - j0);
    const dz_bytes *out = &w->ja.rec[j0];
    if (script) {
        FZ_CHECK(out->n == rec->n && !memcmp(out->p, rec->p, rec->n),
                 "script record %ld re-journaled differently", script_k);
    } else {
        /* A leaves the session (if it was on it): B opens with the state
         * A had before this record. */
        if (!w->b) {
            FZ_CHECK(w->on_script, "off the session without B");
            open_store(&w->b, &w->alcb, (size_t)c0);
        }
        w->on_script = false;
    }
    /* The record A wrote applies to B, which holds A's state before. */
    if (w->b) {
        bool bap = false;
        cs_decode_error bde = {0, NULL};
        cs_err be = cs_journal_apply(w->b, out->p, out->n, &bap, &bde);
        FZ_CHECK(be == CS_OK && bap,
                 "the record A wrote does not apply to B: %s (%s)",
                 cs_err_name(be), bde.reason ? bde.reason : "-");
        free(w->bdump);
        w->bdump = NULL;
    }
    /* Keep A's journal small. */
    if (w->ja.n > DZ_MAX_RECS - 8) dz_journal_free(&w->ja);
    free(copy);
}

/* ---- mutations ---------------------------------------------------------- */

static const uint64_t EDGE[] = {
    0, 1, 2, UINT64_MAX, (uint64_t)INT64_MAX, (uint64_t)INT64_MIN,
    UINT32_MAX, (uint64_t)1 << 32, 253402300799u, 253402300800u,
    (uint64_t)INT64_C(-62135596800), (uint64_t)INT64_C(-62135596801),
    1458851877u, 157286400u, 157286401u, (uint64_t)1 << 53};

static uint64_t new_value(in *r, uint64_t old, uint64_t live) {
    uint8_t m = u8(r);
    switch (m % 4) {
    case 0:
        return old + (uint64_t)(int64_t)(int8_t)u8(r);
    case 1:
        return EDGE[u8(r) % (sizeof EDGE / sizeof *EDGE)];
    case 2:
        return live + (uint64_t)(int64_t)((int)(m >> 2) - 32);
    default:
        return old ^ (uint64_t)1 << (u8(r) % 64);
    }
}

static void set_op(jfields *f, uint8_t op) {
    f->op = op;
    if (op == 0 || op >= N_OPS) return;
    f->flags = SHAPE[op].sids;
    for (int i = 0; i < 4; i++) {
        bool h = SHAPE[op].sids >> i & 1;
        if (h && !f->has[i]) memcpy(f->sid[i], SIDPOOL[i % NSIDPOOL], 16);
        f->has[i] = h;
    }
    for (unsigned i = f->nstr; i < SHAPE[op].nstr; i++) {
        memset(&f->str[i], 0, sizeof f->str[i]);
        f->str[i].absent = true;
    }
    f->nstr = SHAPE[op].nstr;
}

static void mutate_fields(in *r, world *w, jfields *f) {
    unsigned edits = u8(r) % 6;
    for (unsigned k = 0; k < edits && more(r); k++) {
        uint8_t kind = u8(r);
        uint8_t a = u8(r);
        switch (kind % 12) {
        case 0: { /* header u64: seq, now, counter, serial */
            int i = a % 4;
            uint64_t live = i == 0   ? w->a->commits + 1
                            : i == 1 ? f->h[1]
                            : i == 2 ? w->a->sid_counter
                                     : (uint64_t)w->a->serial;
            f->h[i] = new_value(r, f->h[i], live);
            break;
        }
        case 1:
            f->wh = a % 5 == 4 ? u8(r) : a % 4;
            break;
        case 2:
            f->type = a % 5 == 4 ? u8(r) : a % 4;
            break;
        case 3:
            f->size = new_value(r, f->size, f->size);
            break;
        case 4:
            f->index = new_value(r, f->index, f->index);
            break;
        case 5:
        case 6:
        case 7:
        case 8: {
            if (!f->nstr) break;
            jstr *s = &f->str[a % f->nstr];
            if (kind % 12 == 5) {
                s->absent = true;
                s->len = 0;
            } else if (kind % 12 == 6) {
                s->absent = false;
                s->len = 0;
            } else if (kind % 12 == 7) {
                size_t want = u8(r) % 64;
                s->absent = false;
                s->len = 0;
                while (s->len < want && more(r)) s->b[s->len++] = u8(r);
            } else {
                *s = *SPOOL[u8(r) % NSPOOL];
            }
            break;
        }
        case 9: {
            int i = a % 4;
            if (f->has[i]) memcpy(f->sid[i], SIDPOOL[u8(r) % NSIDPOOL], 16);
            break;
        }
        case 10: {
            int i = a % 4;
            if (f->has[i]) f->sid[i][u8(r) % 16] ^= (uint8_t)(1u << (a >> 2) % 8);
            break;
        }
        default:
            if (a >= 0xF0) { /* raw header bytes, layout unchanged */
                uint8_t v = u8(r);
                switch (a % 4) {
                case 0: f->ver = v; break;
                case 1: f->op = v; break;
                case 2: f->flags = v; break;
                default: f->pad1 = v; break;
                }
            } else {
                set_op(f, (uint8_t)(a % (N_OPS + 1)));
            }
            break;
        }
    }
}

static void mutate_bytes(in *r, dz_bytes *b) {
    unsigned edits = u8(r) % 4;
    for (unsigned k = 0; k < edits && more(r); k++) {
        uint8_t kind = u8(r);
        size_t pos = b->n ? u16(r) % (b->n + 1) : 0;
        uint8_t v = u8(r);
        switch (kind % 5) {
        case 0:
            if (pos < b->n) b->p[pos] = v;
            break;
        case 1:
            if (pos < b->n) b->p[pos] ^= v ? v : 1;
            break;
        case 2: /* insert */
            dz_put(b, "", 1);
            memmove(b->p + pos + 1, b->p + pos, b->n - 1 - pos);
            b->p[pos] = v;
            break;
        case 3: /* delete */
            if (pos < b->n) {
                memmove(b->p + pos, b->p + pos + 1, b->n - pos - 1);
                b->n--;
            }
            break;
        default: /* truncate */
            b->n = pos;
            break;
        }
    }
    if (u8(r) & 1 && b->n >= 4)
        dz_put_u32(b->p + b->n - 4, dz_crc32c(b->p, b->n - 4));
}

/* ---- the entry point ---------------------------------------------------- */

typedef struct rsrc {
    const dz_bytes *img;
    size_t pos;
} rsrc;

static ptrdiff_t img_read(void *ctx, void *buf, size_t len) {
    rsrc *r = ctx;
    size_t k = r->img->n - r->pos;
    if (k > len) k = len;
    memcpy(buf, r->img->p + r->pos, k);
    r->pos += k;
    return (ptrdiff_t)k;
}

/* A new store (k 0) or one loaded from the session's snapshot after k
 * changes. */
static void open_store(cs_store **s, const cs_allocator *alc, size_t k) {
    cs_options o = dz_options(alc);
    if (k == 0) {
        dz_must(cs_store_new(&o, s), "store");
        return;
    }
    rsrc r = {&IMG[k], 0};
    dz_must(cs_snapshot_load(&o, img_read, &r, s, NULL), "load");
    FZ_CHECK(commits(*s) == k, "snapshot after %zu changes has %llu", k,
             (unsigned long long)commits(*s));
}

/* A world whose stores open with the session's state after k changes. */
static void world_open(world *w, size_t k) {
    memset(w, 0, sizeof *w);
    w->alca = (cs_allocator){dz_malloc, dz_free, &w->ha};
    w->alcb = (cs_allocator){dz_malloc, dz_free, &w->hb};
    w->from = k;
    w->on_script = true;
    w->fresh = true;
}

/* The end-of-input checks (unless nothing was applied), then frees. */
static void world_close(world *w) {
    if (w->a && !w->fresh) {
        if (w->unchecked) check_a(w, "after failed applies", CS_OK);
        if (w->on_script) {
            /* Only session records applied since the last check (or since
             * opening): nothing a hostile record could have changed. A
             * failure since: the session's image and stats, which hold
             * all the dump renders, suffice; the dumps decide otherwise. */
            if (w->pending) verify(w, "at the end", true);
        } else {
            FZ_CHECK(w->b, "off the session without B");
            char *da = dump_of(w->a);
            dumps_equal(da, b_dump(w), "at the end", "its journal's replay B");
            free(da);
        }
    }
    free(w->bdump);
    w->bdump = NULL;
    cs_store_free(w->a);
    cs_store_free(w->b);
    dz_journal_free(&w->ja);
    FZ_CHECK(w->ha.live_bytes == 0 && w->ha.live_blocks == 0,
             "store A leaks %zu bytes in %zu blocks", w->ha.live_bytes,
             w->ha.live_blocks);
    FZ_CHECK(w->hb.live_bytes == 0 && w->hb.live_blocks == 0,
             "store B leaks %zu bytes in %zu blocks", w->hb.live_bytes,
             w->hb.live_blocks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!NREC) {
        const char *t = getenv("FUZZ_TRACE");
        TRACE = t && *t && *t != '0';
        setup();
    }
    static world W;
    world *w = &W;
    world_open(w, 0);
    in r = {data, size, 0};
    dz_bytes rec = {NULL, 0, 0};
    for (unsigned applies = 0; more(&r) && applies < 256;) {
        uint8_t cmd = u8(&r);
        switch (cmd % 8) {
        case 0: { /* advance */
            unsigned k = u8(&r) % 64 + 1;
            for (unsigned i = 0; i < k && applies < 256; i++, applies++) {
                ensure_a(w);
                uint64_t c = commits(w->a);
                if (c >= NREC) break;
                apply(w, &SESSION.rec[c], (long)c);
            }
            break;
        }
        case 1: { /* raw bytes */
            size_t len = u16(&r);
            if (len > r.n - r.pos) len = r.n - r.pos;
            rec.n = 0;
            dz_put(&rec, r.p + r.pos, len);
            r.pos += len;
            apply(w, &rec, -1);
            applies++;
            break;
        }
        case 4: { /* a script record unchanged */
            size_t k = u8(&r) % NREC;
            apply(w, &SESSION.rec[k], (long)k);
            applies++;
            break;
        }
        case 5:
            w->arm_fail = u8(&r) % 24 + 1;
            break;
        case 6:
            w->arm_refuse = true;
            break;
        case 7: { /* jump */
            size_t k = u8(&r) % (NREC + 1);
            if (TRACE) fprintf(stderr, "jump to %zu\n", k);
            /* One world per input: a jump after an apply ends the input
             * (what follows would be an input of its own, run after the
             * first at the cost of both). */
            if (!w->fresh) {
                r.pos = r.n;
                break;
            }
            world_close(w);
            world_open(w, k);
            break;
        }
        default: { /* mutate */
            uint8_t b = u8(&r);
            ensure_a(w);
            uint64_t c = commits(w->a);
            size_t k = b & 0x80 && c < NREC ? (size_t)c : b % NREC;
            jfields f = PARSED[k];
            mutate_fields(&r, w, &f);
            encode(&f, &rec);
            mutate_bytes(&r, &rec);
            bool same = rec.n == SESSION.rec[k].n &&
                        !memcmp(rec.p, SESSION.rec[k].p, rec.n);
            apply(w, &rec, same ? (long)k : -1);
            applies++;
            break;
        }
        }
    }
    dz_bytes_free(&rec);
    world_close(w);
    return 0;
}
