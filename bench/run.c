/* One run of the workload against both engines, in phases:
 *
 *   load (create) -> fetch -> page_asc -> page_desc -> update -> delete
 *   -> create_steady (as many creates as deletes, into the freed memory)
 *
 * Each phase runs the same inputs through chatstore, then through SQLite
 * (engine-major, so neither pollutes the other's caches mid-phase), with
 * clock_gettime around every call. Inputs (text, SIDs, cursors) are prepared
 * before the clock starts; reading every field of every returned message is
 * inside it. Both engines hand their answers to the same sink as a filled
 * cs_message_view, and the sink folds every field into a per-engine digest:
 * after each phase the two digests must agree, so the engines are known to
 * have returned the same answers without any cost inside the timed calls.
 * In smoke mode the sink also writes each answer as a text line, and the
 * lines of both engines are compared one by one.
 */
#include "bench.h"

#include <fcntl.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <unistd.h>

#define DEAD UINT32_MAX
#define T0 INT64_C(1700000000) /* the clock hook's time at the load */

/* The harness's record of a message, indexed by serial number. */
typedef struct msg_ref {
    uint8_t sid[16];
    uint32_t chan;
    uint32_t idx; /* DEAD once deleted (or never created) */
} msg_ref;

/* A page request: channel plus where to start. SQLite gets the keyset bound
 * (the last index seen), chatstore the equivalent PageToken ("" = none). */
typedef struct cursor {
    uint32_t chan;
    uint32_t ord; /* ordinal of the first item in the page's direction */
    int64_t bound;
    char token[CS_TOKEN_BUFSZ];
} cursor;

enum {
    ST_NEXT_IDX,
    ST_INSERT,
    ST_FETCH,
    ST_PAGE_ASC,
    ST_PAGE_DESC,
    ST_UPDATE,
    ST_DELETE,
    ST_BEGIN,
    ST_COMMIT,
    ST_COUNT_ALL,
    ST_COUNT_CHAN,
    ST_SCAN_CHAN,
    ST__COUNT
};

#define COLS                                                                  \
    "channel_id, idx, sid, author, body, attributes, date_created, "         \
    "date_updated, last_updated_by, was_edited, media_sid"

static const char *const SQL[ST__COUNT] = {
    [ST_NEXT_IDX] = "UPDATE channels SET next_idx = next_idx + 1 WHERE id = ?1 "
                    "RETURNING next_idx - 1",
    [ST_INSERT] = "INSERT INTO messages(" COLS ") "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, NULL, 0, NULL)",
    [ST_FETCH] = "SELECT " COLS " FROM messages WHERE sid = ?1 AND "
                 "channel_id = ?2",
    [ST_PAGE_ASC] = "SELECT " COLS " FROM messages WHERE channel_id = ?1 AND "
                    "idx > ?2 ORDER BY idx LIMIT ?3",
    [ST_PAGE_DESC] = "SELECT " COLS " FROM messages WHERE channel_id = ?1 AND "
                     "idx < ?2 ORDER BY idx DESC LIMIT ?3",
    [ST_UPDATE] = "UPDATE messages SET body = ?1, date_updated = ?2, "
                  "was_edited = 1 WHERE sid = ?3 AND channel_id = ?4 "
                  "RETURNING " COLS,
    [ST_DELETE] = "DELETE FROM messages WHERE sid = ?1 AND channel_id = ?2",
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_COUNT_ALL] = "SELECT count(*) FROM messages",
    [ST_COUNT_CHAN] = "SELECT count(*) FROM messages WHERE channel_id = ?1",
    [ST_SCAN_CHAN] = "SELECT " COLS " FROM messages WHERE channel_id = ?1 "
                     "ORDER BY idx",
};

static const char SCHEMA[] =
    "PRAGMA secure_delete = OFF;"
    "CREATE TABLE channels(id INTEGER PRIMARY KEY, sid BLOB NOT NULL UNIQUE,"
    " next_idx INTEGER NOT NULL);"
    "CREATE TABLE messages("
    " channel_id INTEGER NOT NULL,"
    " idx INTEGER NOT NULL,"
    " sid BLOB NOT NULL,"           /* the 16 bytes of the SID, as chatstore */
    " author TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " attributes TEXT,"             /* NULL: the default {} (not stored) */
    " date_created INTEGER NOT NULL,"
    " date_updated INTEGER NOT NULL,"
    " last_updated_by TEXT,"
    " was_edited INTEGER NOT NULL,"
    " media_sid BLOB,"
    " PRIMARY KEY(channel_id, idx)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX messages_sid ON messages(sid);";

typedef struct textlog {
    char *p;
    size_t len, cap;
} textlog;

typedef struct ctx {
    const bench_cfg *c;
    run_result *r;
    int64_t now;
    size_t n_chan;
    /* chatstore */
    cs_store *cs;
    char svc_sid[CS_SID_BUFSZ];
    char acct_sid[CS_SID_BUFSZ];
    char (*chan_sid)[CS_SID_BUFSZ];
    /* SQLite */
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    uint8_t (*chan_sidb)[16];
    uint32_t *cmap; /* open addressing, channel + 1, 0 empty */
    size_t cmap_mask;
    /* harness */
    msg_ref *msgs;
    size_t n_msgs, cap_msgs;
    uint64_t dig[ENG__COUNT];
    textlog log[ENG__COUNT];
    int perf_fd, perf_ack_fd;
    uint64_t loop_t0;
    /* durable variants */
    bool lock;  /* chatstore's mutating calls under its exclusive lock */
    djournal *jf; /* the journal file, when there is one */
} ctx;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "chatstore-bench: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static void fail(const char *what, const char *detail) {
    fprintf(stderr, "chatstore-bench: %s: %s\n", what, detail);
    exit(2);
}

/* ---- the sink: every field of every answer ------------------------------ */

static inline uint64_t str_d(const char *p, size_t n) {
    if (!p) return UINT64_C(0x5bd1e995);
    if (!n) return 1;
    const unsigned char *u = (const unsigned char *)p;
    return (uint64_t)n ^ ((uint64_t)u[0] << 16) ^ ((uint64_t)u[n / 2] << 24) ^
           ((uint64_t)u[n - 1] << 32);
}

static void log_view(textlog *l, const cs_message_view *v);

/* Every field is read and folded in with its own odd multiplier. The
 * products do not depend on each other, so the fold costs a few cycles per
 * field, not a serial chain of multiply-xorshift rounds (which cost about
 * 40 ns per message, as much as chatstore's own work for a page item, and
 * so flattened the ratio between the engines with harness time). */
#define F(k) UINT64_C(0x9e3779b97f4a7c15) * (2 * (k) + 1)
static void sink(ctx *x, int eng, const cs_message_view *v) {
    uint64_t a = 0, b = 0;
    a += str_d(v->sid, CS_SID_BUFSZ - 1) * F(1);
    b += str_d(v->account_sid, CS_SID_BUFSZ - 1) * F(2);
    a += str_d(v->service_sid, CS_SID_BUFSZ - 1) * F(3);
    b += str_d(v->channel_sid, CS_SID_BUFSZ - 1) * F(4);
    a += str_d(v->attributes.ptr, v->attributes.len) * F(5);
    b += (uint64_t)v->date_created * F(6);
    a += (uint64_t)v->date_updated * F(7);
    b += str_d(v->last_updated_by.ptr, v->last_updated_by.len) * F(8);
    a += (uint64_t)v->was_edited * F(9);
    b += str_d(v->from.ptr, v->from.len) * F(10);
    a += str_d(v->body.ptr, v->body.len) * F(11);
    b += (uint64_t)v->index * F(12);
    a += (uint64_t)v->type * F(13);
    b += (uint64_t)v->has_media * F(14);
    if (v->has_media) {
        a += str_d(v->media.sid, CS_SID_BUFSZ - 1) * F(15);
        b += v->media.size * F(16);
        a += str_d(v->media.content_type.ptr, v->media.content_type.len) * F(17);
        b += str_d(v->media.filename.ptr, v->media.filename.len) * F(18);
    }
    uint64_t h = a ^ (b * F(19));
    h ^= h >> 29;
    x->dig[eng] = (x->dig[eng] << 7 | x->dig[eng] >> 57) ^ h;
    if (x->c->smoke) log_view(&x->log[eng], v);
}
#undef F

/* ---- smoke logs: each answer as one line -------------------------------- */

static void log_put(textlog *l, const char *p, size_t n) {
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 65536;
        while (cap < l->len + n + 1) cap *= 2;
        char *np = xmalloc(cap);
        if (l->len) memcpy(np, l->p, l->len);
        free(l->p);
        l->p = np;
        l->cap = cap;
    }
    memcpy(l->p + l->len, p, n);
    l->len += n;
    l->p[l->len] = '\0';
}

static void log_str(textlog *l, const char *p, size_t n) {
    if (!p) {
        log_put(l, "<null>|", 7);
        return;
    }
    log_put(l, p, n);
    log_put(l, "|", 1);
}

static void log_num(textlog *l, long long v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%lld|", v);
    log_put(l, b, (size_t)n);
}

static void log_view(textlog *l, const cs_message_view *v) {
    log_str(l, v->sid, strlen(v->sid));
    log_str(l, v->account_sid, strlen(v->account_sid));
    log_str(l, v->service_sid, strlen(v->service_sid));
    log_str(l, v->channel_sid, strlen(v->channel_sid));
    log_num(l, (long long)v->index);
    log_str(l, v->from.ptr, v->from.len);
    log_str(l, v->body.ptr, v->body.len);
    log_str(l, v->attributes.ptr, v->attributes.len);
    log_num(l, (long long)v->date_created);
    log_num(l, (long long)v->date_updated);
    log_str(l, v->last_updated_by.ptr, v->last_updated_by.len);
    log_num(l, v->was_edited);
    log_num(l, v->type);
    log_num(l, v->has_media);
    if (v->has_media) log_str(l, v->media.sid, strlen(v->media.sid));
    log_put(l, "\n", 1);
}

static void log_note(textlog *l, const char *what, long long v) {
    log_put(l, what, strlen(what));
    log_put(l, "=", 1);
    log_num(l, v);
    log_put(l, "\n", 1);
}

/* Compares the two engines' logs; on a difference prints the first
 * differing line of each. */
static void logs_compare(ctx *x, const char *phase) {
    textlog *a = &x->log[ENG_CS], *b = &x->log[ENG_SQ];
    const char *pa = a->p ? a->p : "", *pb = b->p ? b->p : "";
    if (a->len == b->len && memcmp(pa, pb, a->len) == 0) {
        a->len = b->len = 0;
        return;
    }
    size_t i = 0, line = 0;
    while (i < a->len && i < b->len && pa[i] == pb[i]) i++;
    size_t start = i;
    while (start > 0 && pa[start - 1] != '\n') start--;
    for (size_t k = 0; k < start; k++) line += pa[k] == '\n';
    const char *ea = strchr(pa + start, '\n'), *eb = strchr(pb + start, '\n');
    int la = ea ? (int)(ea - pa - (ptrdiff_t)start) : (int)(a->len - start);
    int lb = eb ? (int)(eb - pb - (ptrdiff_t)start) : (int)(b->len - start);
    fprintf(stderr,
            "MISMATCH in %s at answer %zu:\n  chatstore: %.*s\n  sqlite:    "
            "%.*s\n",
            phase, line + 1, la, pa + start, lb, pb + start);
    x->r->mismatches++;
    a->len = b->len = 0;
}

/* ---- chatstore side ----------------------------------------------------- */

static int64_t bench_clock(void *ctxp) { return ((const ctx *)ctxp)->now; }

static cs_str S(const char *p) { return (cs_str){p, strlen(p)}; }

static void cs_setup(ctx *x) {
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    o.seed = x->c->seed;
    o.clock = bench_clock;
    o.clock_ctx = x;
    if (cs_store_new(&o, &x->cs)) fail("cs_store_new", "failed");
    cs_service_view sv;
    if (cs_service_create(x->cs, S("bench"), &sv))
        fail("cs_service_create", "failed");
    memcpy(x->svc_sid, sv.sid, CS_SID_BUFSZ);
    memcpy(x->acct_sid, cs_store_account_sid(x->cs), CS_SID_BUFSZ);
    for (size_t i = 0; i < x->n_chan; i++) {
        cs_channel_params cp;
        memset(&cp, 0, sizeof cp);
        cs_channel_view cv;
        if (cs_channel_create(x->cs, S(x->svc_sid), &cp, &cv))
            fail("cs_channel_create", "failed");
        memcpy(x->chan_sid[i], cv.sid, CS_SID_BUFSZ);
    }
    x->lock = x->c->dur != DUR_OFF;
    if (x->c->dur >= DUR_NORMAL) {
        /* The empty state (service and channels) as a snapshot; the journal
         * holds every change after it. */
        char path[512];
        dur_path(x->c, "s0", path, sizeof path);
        if (snap_save_file(x->cs, path, false, NULL, NULL))
            fail("snapshot", path);
        dur_path(x->c, "journal", path, sizeof path);
        x->jf = djournal_open(path, x->c->dur, x->c->jdiag);
        if (!x->jf) fail("journal", path);
        if (cs_store_set_journal(x->cs, djournal_hook, x->jf))
            fail("cs_store_set_journal", "failed");
    }
}

static void cs_lock(ctx *x) {
    if (x->lock && cs_store_lock_exclusive(x->cs)) fail("lock", "failed");
}

/* After the lock: with fdatasync per commit, the call returns only once
 * its record is on disk (as the server answers a request). */
static void cs_unlock(ctx *x) {
    if (x->lock) cs_store_unlock(x->cs);
    if (x->jf) djournal_request_end(x->jf);
}

static int cs_create(ctx *x, uint32_t ch, const msg_in *in,
                     cs_message_view *v) {
    cs_message_params p;
    memset(&p, 0, sizeof p);
    p.from = (cs_str){in->from, in->from_len};
    p.body = (cs_str){in->body, in->body_len};
    if (in->attr_len) p.attributes = (cs_str){in->attr, in->attr_len};
    cs_lock(x);
    cs_err e = cs_message_create(x->cs, (cs_str){x->svc_sid, 34},
                                 (cs_str){x->chan_sid[ch], 34}, &p, v);
    if (!e) sink(x, ENG_CS, v);
    cs_unlock(x);
    return (int)e;
}

static int cs_fetch(ctx *x, const char *chan, const char *sid) {
    cs_message_view v;
    cs_err e = cs_message_fetch(x->cs, (cs_str){x->svc_sid, 34},
                                (cs_str){chan, 34}, (cs_str){sid, 34}, &v);
    if (e) return (int)e;
    sink(x, ENG_CS, &v);
    return 0;
}

static int cs_page_run(ctx *x, const char *chan, bool desc, const char *token,
                       const char *page_size, size_t *count) {
    cs_page_params q;
    memset(&q, 0, sizeof q);
    q.order = desc ? (cs_str){"desc", 4} : (cs_str){"asc", 3};
    q.page_size = S(page_size);
    if (token[0]) q.page_token = S(token);
    cs_page pg;
    cs_err e = cs_message_list(x->cs, (cs_str){x->svc_sid, 34},
                               (cs_str){chan, 34}, &q, &pg);
    if (e) return (int)e;
    cs_message_view v;
    size_t n = 0;
    while (cs_page_next_message(x->cs, &pg, &v)) {
        sink(x, ENG_CS, &v);
        n++;
    }
    *count = n;
    return 0;
}

static int cs_update(ctx *x, const char *chan, const char *sid,
                     const char *body, size_t body_len) {
    cs_message_params p;
    memset(&p, 0, sizeof p);
    p.body = (cs_str){body, body_len};
    cs_message_view v;
    cs_lock(x);
    cs_err e = cs_message_update(x->cs, (cs_str){x->svc_sid, 34},
                                 (cs_str){chan, 34}, (cs_str){sid, 34}, &p, &v);
    if (!e) sink(x, ENG_CS, &v);
    cs_unlock(x);
    return (int)e;
}

static int cs_delete(ctx *x, const char *chan, const char *sid) {
    cs_lock(x);
    cs_err e = cs_message_delete(x->cs, (cs_str){x->svc_sid, 34},
                                 (cs_str){chan, 34}, (cs_str){sid, 34},
                                 CS_STR_ABSENT);
    cs_unlock(x);
    return (int)e;
}

/* ---- SQLite side -------------------------------------------------------- */

static void sq_exec(ctx *x, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(x->db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail("sqlite3_exec", err ? err : sqlite3_errmsg(x->db));
}

static void sq_setup(ctx *x) {
    /* Once per process (each run is its own process): a single-threaded
     * library without memory accounting, as a tuned embedder would use it. */
    static bool configured;
    if (!configured) {
        sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        configured = true;
    }
    if (sqlite3_initialize() != SQLITE_OK) fail("sqlite3_initialize", "failed");
    char path[512] = ":memory:";
    if (x->c->dur >= DUR_NORMAL) dur_path(x->c, "db", path, sizeof path);
    if (sqlite3_open_v2(path, &x->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        fail("sqlite3_open_v2", sqlite3_errmsg(x->db));
    if (x->c->dur >= DUR_NORMAL) {
        /* A file in WAL mode, tuned as a single-process embedder would:
         * exclusive locking (no shared-memory index, no per-transaction
         * file locks) and a page cache that holds the whole database, so
         * the numbers are the cost of commits, not of cache misses. */
        sq_exec(x, "PRAGMA locking_mode = EXCLUSIVE;"
                   "PRAGMA journal_mode = WAL;"
                   "PRAGMA cache_size = -4194304;");
        sq_exec(x, x->c->dur == DUR_ALWAYS   ? "PRAGMA synchronous = FULL"
                   : x->c->dur == DUR_NORMAL ? "PRAGMA synchronous = NORMAL"
                                             : "PRAGMA synchronous = OFF");
    }
    sq_exec(x, SCHEMA);
    for (int i = 0; i < ST__COUNT; i++)
        if (sqlite3_prepare_v3(x->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &x->st[i], NULL) != SQLITE_OK)
            fail(SQL[i], sqlite3_errmsg(x->db));
    /* Channels: same SIDs as chatstore's, ids 1..n, and the application's
     * map from channel SID to id. */
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(x->db,
                           "INSERT INTO channels(id, sid, next_idx) "
                           "VALUES(?1, ?2, 0)",
                           -1, &ins, NULL) != SQLITE_OK)
        fail("prepare channels", sqlite3_errmsg(x->db));
    size_t cap = 16;
    while (cap < x->n_chan * 2) cap *= 2;
    x->cmap = xmalloc(cap * sizeof *x->cmap);
    memset(x->cmap, 0, cap * sizeof *x->cmap);
    x->cmap_mask = cap - 1;
    sq_exec(x, "BEGIN");
    for (size_t i = 0; i < x->n_chan; i++) {
        if (sid_parse(x->chan_sid[i], 34, 'C', 'H', x->chan_sidb[i]))
            fail("channel sid", x->chan_sid[i]);
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)i + 1);
        sqlite3_bind_blob(ins, 2, x->chan_sidb[i], 16, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            fail("insert channel", sqlite3_errmsg(x->db));
        sqlite3_reset(ins);
        uint64_t h;
        memcpy(&h, x->chan_sidb[i], 8);
        size_t j = h & x->cmap_mask;
        while (x->cmap[j]) j = (j + 1) & x->cmap_mask;
        x->cmap[j] = (uint32_t)i + 1;
    }
    sq_exec(x, "COMMIT");
    sqlite3_finalize(ins);
}

/* The application's request routing: service check and channel SID -> id,
 * the work chatstore does in cs__resolve_channel. */
static int sq_chan(const ctx *x, const char *svc, const char *chan) {
    if (memcmp(svc, x->svc_sid, 34) != 0) return -1;
    uint8_t b[16];
    if (sid_parse(chan, 34, 'C', 'H', b)) return -1;
    uint64_t h;
    memcpy(&h, b, 8);
    for (size_t j = h & x->cmap_mask;; j = (j + 1) & x->cmap_mask) {
        uint32_t v = x->cmap[j];
        if (!v) return -1;
        if (memcmp(x->chan_sidb[v - 1], b, 16) == 0) return (int)v - 1;
    }
}

static cs_str col_text(sqlite3_stmt *s, int i) {
    const unsigned char *p = sqlite3_column_text(s, i);
    int n = sqlite3_column_bytes(s, i);
    return (cs_str){(const char *)p, (size_t)n};
}

/* One result row as the view chatstore would hand out. */
static void sq_row(const ctx *x, sqlite3_stmt *s, cs_message_view *v) {
    sqlite3_int64 ch = sqlite3_column_int64(s, 0);
    v->index = sqlite3_column_int64(s, 1);
    const void *b = sqlite3_column_blob(s, 2);
    if (b && sqlite3_column_bytes(s, 2) == 16)
        sid_format('I', 'M', b, v->sid);
    else
        v->sid[0] = '\0';
    v->account_sid = x->acct_sid;
    v->service_sid = x->svc_sid;
    v->channel_sid =
        ch >= 1 && (size_t)ch <= x->n_chan ? x->chan_sid[ch - 1] : "";
    v->from = col_text(s, 3);
    v->body = col_text(s, 4);
    v->attributes = sqlite3_column_type(s, 5) == SQLITE_NULL
                        ? (cs_str){"{}", 2}
                        : col_text(s, 5);
    v->date_created = sqlite3_column_int64(s, 6);
    v->date_updated = sqlite3_column_int64(s, 7);
    v->last_updated_by = sqlite3_column_type(s, 8) == SQLITE_NULL
                             ? CS_STR_ABSENT
                             : col_text(s, 8);
    v->was_edited = sqlite3_column_int(s, 9) != 0;
    v->has_media = sqlite3_column_type(s, 10) != SQLITE_NULL;
    v->type = v->has_media ? CS_MESSAGE_MEDIA : CS_MESSAGE_TEXT;
    memset(&v->media, 0, sizeof v->media);
    if (v->has_media) {
        const void *mb = sqlite3_column_blob(s, 10);
        if (mb && sqlite3_column_bytes(s, 10) == 16)
            sid_format('M', 'E', mb, v->media.sid);
    }
}

static int sq_step_done(ctx *x, int st) {
    int rc = sqlite3_step(x->st[st]);
    sqlite3_reset(x->st[st]);
    return rc == SQLITE_DONE ? 0 : rc;
}

static int sq_create(ctx *x, uint32_t ch_in, const msg_in *in,
                     const uint8_t sidb[16], int64_t *idx_out) {
    (void)ch_in;
    int ch = sq_chan(x, x->svc_sid, x->chan_sid[ch_in]);
    if (ch < 0) return -1;
    sqlite3_stmt *s = x->st[ST_NEXT_IDX];
    sqlite3_bind_int64(s, 1, ch + 1);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return -1;
    }
    int64_t idx = sqlite3_column_int64(s, 0);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return rc;
    s = x->st[ST_INSERT];
    sqlite3_bind_int64(s, 1, ch + 1);
    sqlite3_bind_int64(s, 2, idx);
    sqlite3_bind_blob(s, 3, sidb, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, in->from, (int)in->from_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, in->body, (int)in->body_len, SQLITE_STATIC);
    if (in->attr_len)
        sqlite3_bind_text(s, 6, in->attr, (int)in->attr_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_int64(s, 7, x->now);
    if ((rc = sq_step_done(x, ST_INSERT))) return rc;
    /* The created message, as the caller gets it. */
    cs_message_view v;
    sid_format('I', 'M', sidb, v.sid);
    v.account_sid = x->acct_sid;
    v.service_sid = x->svc_sid;
    v.channel_sid = x->chan_sid[ch];
    v.attributes = in->attr_len ? (cs_str){in->attr, in->attr_len}
                                : (cs_str){"{}", 2};
    v.date_created = v.date_updated = x->now;
    v.last_updated_by = CS_STR_ABSENT;
    v.was_edited = false;
    v.from = (cs_str){in->from, in->from_len};
    v.body = (cs_str){in->body, in->body_len};
    v.index = idx;
    v.type = CS_MESSAGE_TEXT;
    v.has_media = false;
    memset(&v.media, 0, sizeof v.media);
    sink(x, ENG_SQ, &v);
    *idx_out = idx;
    return 0;
}

static int sq_fetch(ctx *x, const char *chan, const char *sid) {
    int ch = sq_chan(x, x->svc_sid, chan);
    uint8_t b[16];
    if (ch < 0 || sid_parse(sid, 34, 'I', 'M', b)) return -1;
    sqlite3_stmt *s = x->st[ST_FETCH];
    sqlite3_bind_blob(s, 1, b, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, ch + 1);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        cs_message_view v;
        sq_row(x, s, &v);
        sink(x, ENG_SQ, &v);
        rc = 0;
    }
    sqlite3_reset(s);
    return rc;
}

static int sq_page_run(ctx *x, const char *chan, bool desc, int64_t bound,
                       size_t *count) {
    int ch = sq_chan(x, x->svc_sid, chan);
    if (ch < 0) return -1;
    sqlite3_stmt *s = x->st[desc ? ST_PAGE_DESC : ST_PAGE_ASC];
    sqlite3_bind_int64(s, 1, ch + 1);
    sqlite3_bind_int64(s, 2, bound);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)x->c->page_size);
    size_t n = 0;
    int rc;
    cs_message_view v;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        sq_row(x, s, &v);
        sink(x, ENG_SQ, &v);
        n++;
    }
    sqlite3_reset(s);
    *count = n;
    return rc == SQLITE_DONE ? 0 : rc;
}

static int sq_update(ctx *x, const char *chan, const char *sid,
                     const char *body, size_t body_len) {
    int ch = sq_chan(x, x->svc_sid, chan);
    uint8_t b[16];
    if (ch < 0 || sid_parse(sid, 34, 'I', 'M', b)) return -1;
    sqlite3_stmt *s = x->st[ST_UPDATE];
    sqlite3_bind_text(s, 1, body, (int)body_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, x->now);
    sqlite3_bind_blob(s, 3, b, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, ch + 1);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        cs_message_view v;
        sq_row(x, s, &v);
        sink(x, ENG_SQ, &v);
        rc = sqlite3_step(s);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : rc;
}

static int sq_delete(ctx *x, const char *chan, const char *sid) {
    int ch = sq_chan(x, x->svc_sid, chan);
    uint8_t b[16];
    if (ch < 0 || sid_parse(sid, 34, 'I', 'M', b)) return -1;
    sqlite3_stmt *s = x->st[ST_DELETE];
    sqlite3_bind_blob(s, 1, b, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, ch + 1);
    int rc = sq_step_done(x, ST_DELETE);
    if (rc) return rc;
    return sqlite3_changes(x->db) == 1 ? 0 : -1;
}

static int64_t sq_count(ctx *x, int st, int64_t chan_id) {
    sqlite3_stmt *s = x->st[st];
    if (st == ST_COUNT_CHAN) sqlite3_bind_int64(s, 1, chan_id);
    int64_t n = -1;
    if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return n;
}

/* ---- timing, perf control ----------------------------------------------- */

static bool perf_target(const ctx *x, int op, int eng) {
    return x->perf_fd >= 0 && x->c->perf_op == op && x->c->perf_engine == eng;
}

static void perf_cmd(ctx *x, const char *cmd) {
    if (write(x->perf_fd, cmd, strlen(cmd)) < 0) return;
    if (x->perf_ack_fd >= 0) {
        char buf[16];
        (void)!read(x->perf_ack_fd, buf, sizeof buf);
    }
}

static void loop_begin(ctx *x, int op, int eng) {
    x->dig[eng] = 0;
    if (x->c->dur >= DUR_NORMAL && x->c->dur != DUR_BUILD) {
        /* Each engine's loop starts with no dirty data of the other's
         * waiting for writeback (outside the timed region). */
        dur_quiesce();
    }
    if (x->jf) djournal_phase(x->jf, eng == ENG_CS ? op : -1);
    if (perf_target(x, op, eng)) perf_cmd(x, "enable\n");
    x->loop_t0 = now_ns();
}

static void loop_end(ctx *x, int op, int eng) {
    x->r->h[op][eng].wall_ns += now_ns() - x->loop_t0;
    if (perf_target(x, op, eng)) perf_cmd(x, "disable\n");
}

#define TIMED(x, op, eng, i, stmt)                                            \
    do {                                                                      \
        uint64_t t0_ = now_ns();                                              \
        stmt;                                                                 \
        uint64_t t1_ = now_ns();                                              \
        hist_add(&(x)->r->h[op][eng], t1_ - t0_, (uint64_t)(i));              \
    } while (0)

static void op_error(ctx *x, const char *what, int eng, int e) {
    if (x->r->errors++ < 5)
        fprintf(stderr, "chatstore-bench: %s failed on %s: %d (%s)\n", what,
                eng_names[eng], e,
                eng == ENG_CS ? cs_err_name((cs_err)e) : sqlite3_errmsg(x->db));
}

static int n_eng(const ctx *x) { return x->c->cs_only ? 1 : ENG__COUNT; }

static void phase_check(ctx *x, const char *phase) {
    if (x->c->cs_only) return;
    if (x->dig[ENG_CS] != x->dig[ENG_SQ]) {
        x->r->mismatches++;
        fprintf(stderr, "MISMATCH in %s: the engines returned different answers\n",
                phase);
    }
    if (x->c->smoke) {
        logs_compare(x, phase);
        if (cs_store_check(x->cs) != CS_OK) {
            x->r->mismatches++;
            fprintf(stderr, "cs_store_check failed after %s\n", phase);
        }
    }
}

/* ---- workload pieces ---------------------------------------------------- */

static uint32_t chan_of(const ctx *x, uint64_t serial) {
    return (uint32_t)(hash64(x->c->seed ^ UINT64_C(0xc4a77e1), serial) %
                      x->n_chan);
}

/* Creates serials [first, first + n) in chatstore, recording the SIDs and
 * indices it assigned. */
static void create_cs(ctx *x, int op, size_t first, size_t n) {
    msg_in in;
    cs_message_view v;
    loop_begin(x, op, ENG_CS);
    for (size_t i = 0; i < n; i++) {
        size_t serial = first + i;
        uint32_t ch = chan_of(x, serial);
        gen_message(x->c, serial, &in);
        int e;
        TIMED(x, op, ENG_CS, i, e = cs_create(x, ch, &in, &v));
        msg_ref *m = &x->msgs[serial];
        m->chan = ch;
        if (e || sid_parse(v.sid, 34, 'I', 'M', m->sid)) {
            op_error(x, op_names[op], ENG_CS, e);
            m->idx = DEAD;
            continue;
        }
        m->idx = (uint32_t)v.index;
    }
    loop_end(x, op, ENG_CS);
    if (first + n > x->n_msgs) x->n_msgs = first + n;
}

/* The same creates in SQLite, with the SIDs chatstore assigned (so the
 * SQLite side does not pay for SID generation), batched per transaction;
 * each op's time includes the BEGIN or COMMIT it issues. The index SQLite
 * assigns must equal chatstore's. */
static void create_sq(ctx *x, int op, size_t first, size_t n) {
    if (x->c->cs_only) return;
    msg_in in;
    size_t batch = x->c->sqlite_batch ? x->c->sqlite_batch : 1;
    loop_begin(x, op, ENG_SQ);
    for (size_t i = 0; i < n; i++) {
        size_t serial = first + i;
        msg_ref *m = &x->msgs[serial];
        gen_message(x->c, serial, &in);
        int64_t idx = -1;
        int e;
        bool open = i % batch == 0, close = (i + 1) % batch == 0 || i + 1 == n;
        TIMED(x, op, ENG_SQ, i, {
            if (open) sq_step_done(x, ST_BEGIN);
            e = m->idx == DEAD ? 0 : sq_create(x, m->chan, &in, m->sid, &idx);
            if (close) sq_step_done(x, ST_COMMIT);
        });
        if (e) op_error(x, op_names[op], ENG_SQ, e);
        if (m->idx != DEAD && idx != (int64_t)m->idx) {
            if (x->r->mismatches++ < 5)
                fprintf(stderr, "MISMATCH: index %lld vs %u\n", (long long)idx,
                        m->idx);
        }
    }
    loop_end(x, op, ENG_SQ);
}

/* A uniformly random live message. */
static size_t pick_live(const ctx *x, uint64_t *st) {
    for (;;) {
        size_t s = (size_t)(splitmix64(st) % x->n_msgs);
        if (x->msgs[s].idx != DEAD) return s;
    }
}

static void phase_fetch(ctx *x, size_t n) {
    uint32_t *pick = xmalloc(n * sizeof *pick);
    uint64_t st = hash64(x->c->seed, 0xfe7c4);
    for (size_t i = 0; i < n; i++) pick[i] = (uint32_t)pick_live(x, &st);
    char sid[CS_SID_BUFSZ];
    for (int eng = 0; eng < n_eng(x); eng++) {
        loop_begin(x, OP_FETCH, eng);
        for (size_t i = 0; i < n; i++) {
            const msg_ref *m = &x->msgs[pick[i]];
            const char *chan = x->chan_sid[m->chan];
            sid_format('I', 'M', m->sid, sid);
            int e;
            if (eng == ENG_CS)
                TIMED(x, OP_FETCH, eng, i, e = cs_fetch(x, chan, sid));
            else
                TIMED(x, OP_FETCH, eng, i, e = sq_fetch(x, chan, sid));
            if (e) op_error(x, "fetch", eng, e);
        }
        loop_end(x, OP_FETCH, eng);
    }
    free(pick);
    phase_check(x, "fetch");
}

/* Live indices per channel, in order: live[off[c] .. off[c + 1]). */
typedef struct live_lists {
    size_t *off;
    int64_t *idx;
} live_lists;

static void live_build(const ctx *x, live_lists *L) {
    L->off = xmalloc((x->n_chan + 1) * sizeof *L->off);
    memset(L->off, 0, (x->n_chan + 1) * sizeof *L->off);
    size_t total = 0;
    for (size_t s = 0; s < x->n_msgs; s++)
        if (x->msgs[s].idx != DEAD) {
            L->off[x->msgs[s].chan + 1]++;
            total++;
        }
    for (size_t c = 0; c < x->n_chan; c++) L->off[c + 1] += L->off[c];
    L->idx = xmalloc((total ? total : 1) * sizeof *L->idx);
    size_t *fill = xmalloc(x->n_chan * sizeof *fill);
    memcpy(fill, L->off, x->n_chan * sizeof *fill);
    /* Serial order is creation order, so each channel's indices come out
     * increasing. */
    for (size_t s = 0; s < x->n_msgs; s++)
        if (x->msgs[s].idx != DEAD)
            L->idx[fill[x->msgs[s].chan]++] = x->msgs[s].idx;
    free(fill);
}

static void live_free(live_lists *L) {
    free(L->off);
    free(L->idx);
}

static const cursor *g_sort_cur;
static int cmp_cursor(const void *a, const void *b) {
    const cursor *x = &g_sort_cur[*(const uint32_t *)a];
    const cursor *y = &g_sort_cur[*(const uint32_t *)b];
    if (x->chan != y->chan) return x->chan < y->chan ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* PageTokens for arbitrary start positions, from the public API only.
 *
 * A next-page token carries the last key of the page it came from, and is
 * independent of the page size. Per channel, walk pages of 1000 (the
 * maximum) to get the token A[p] that starts at ordinal 1000p; the token
 * that starts at ordinal o = 1000p + r (r > 0) is then the next_token of a
 * single page of size r requested with A[p]. Cost: messages/1000 + cursors
 * list calls, none of them timed. */
static void cursors_make(ctx *x, const live_lists *L, bool desc, size_t n,
                         cursor *cur) {
    uint64_t st = hash64(x->c->seed, desc ? 0xde5c : 0xa5c);
    size_t nonempty = 0;
    for (size_t c = 0; c < x->n_chan; c++) nonempty += L->off[c + 1] > L->off[c];
    if (!nonempty) fail("cursors", "no messages");
    for (size_t i = 0; i < n; i++) {
        size_t c, cnt;
        do {
            c = (size_t)(splitmix64(&st) % x->n_chan);
            cnt = L->off[c + 1] - L->off[c];
        } while (!cnt);
        size_t o = (size_t)(splitmix64(&st) % cnt);
        const int64_t *live = L->idx + L->off[c];
        cur[i].chan = (uint32_t)c;
        cur[i].ord = (uint32_t)o;
        if (o == 0)
            cur[i].bound = desc ? INT64_MAX : -1;
        else
            cur[i].bound = desc ? live[cnt - o] : live[o - 1];
        cur[i].token[0] = '\0';
    }
    uint32_t *order = xmalloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    g_sort_cur = cur;
    qsort(order, n, sizeof *order, cmp_cursor);
    char aligned[CS_TOKEN_BUFSZ] = "";
    size_t cur_chan = SIZE_MAX, cur_p = 0;
    for (size_t k = 0; k < n; k++) {
        cursor *q = &cur[order[k]];
        const char *chan = x->chan_sid[q->chan];
        if (q->chan != cur_chan) {
            cur_chan = q->chan;
            cur_p = 0;
            aligned[0] = '\0';
        }
        size_t p = q->ord / 1000, r = q->ord % 1000;
        for (; cur_p < p; cur_p++) {
            cs_page_params qp;
            memset(&qp, 0, sizeof qp);
            qp.order = S(desc ? "desc" : "asc");
            qp.page_size = S("1000");
            if (aligned[0]) qp.page_token = S(aligned);
            cs_page pg;
            if (cs_message_list(x->cs, S(x->svc_sid), S(chan), &qp, &pg) ||
                !pg.next_token[0])
                fail("cursor walk", "no next page");
            memcpy(aligned, pg.next_token, CS_TOKEN_BUFSZ);
        }
        if (r == 0) {
            memcpy(q->token, aligned, CS_TOKEN_BUFSZ);
            continue;
        }
        char size[16];
        snprintf(size, sizeof size, "%zu", r);
        cs_page_params qp;
        memset(&qp, 0, sizeof qp);
        qp.order = S(desc ? "desc" : "asc");
        qp.page_size = S(size);
        if (aligned[0]) qp.page_token = S(aligned);
        cs_page pg;
        if (cs_message_list(x->cs, S(x->svc_sid), S(chan), &qp, &pg) ||
            !pg.next_token[0])
            fail("cursor token", "no next page");
        memcpy(q->token, pg.next_token, CS_TOKEN_BUFSZ);
    }
    free(order);
}

static void phase_pages(ctx *x, size_t n) {
    live_lists L;
    live_build(x, &L);
    cursor *cur = xmalloc((n ? n : 1) * sizeof *cur);
    char psize[16];
    snprintf(psize, sizeof psize, "%zu", x->c->page_size);
    for (int d = 0; d < 2; d++) {
        bool desc = d == 1;
        int op = desc ? OP_PAGE_DESC : OP_PAGE_ASC;
        cursors_make(x, &L, desc, n, cur);
        size_t items[ENG__COUNT] = {0, 0};
        for (int eng = 0; eng < n_eng(x); eng++) {
            loop_begin(x, op, eng);
            for (size_t i = 0; i < n; i++) {
                const char *chan = x->chan_sid[cur[i].chan];
                size_t cnt = 0;
                int e;
                if (eng == ENG_CS)
                    TIMED(x, op, eng, i,
                          e = cs_page_run(x, chan, desc, cur[i].token, psize,
                                          &cnt));
                else
                    TIMED(x, op, eng, i,
                          e = sq_page_run(x, chan, desc, cur[i].bound, &cnt));
                if (e) op_error(x, op_names[op], eng, e);
                items[eng] += cnt;
                if (x->c->smoke) log_note(&x->log[eng], "page_items", (long long)cnt);
            }
            loop_end(x, op, eng);
        }
        if (!x->c->cs_only && items[ENG_CS] != items[ENG_SQ]) x->r->mismatches++;
        phase_check(x, op_names[op]);
    }
    free(cur);
    live_free(&L);
}

/* DUR_BUILD only builds the data (its SQLite timings are not reported):
 * SQLite's updates and deletes go in one transaction each. */
static void build_txn(ctx *x, int eng, const char *sql) {
    if (x->c->dur == DUR_BUILD && eng == ENG_SQ) sq_exec(x, sql);
}

static void phase_update(ctx *x, size_t n) {
    uint32_t *pick = xmalloc((n ? n : 1) * sizeof *pick);
    uint64_t st = hash64(x->c->seed, 0x0bda7e);
    for (size_t i = 0; i < n; i++) pick[i] = (uint32_t)pick_live(x, &st);
    char sid[CS_SID_BUFSZ], body[BODY_CAP];
    size_t body_len;
    x->now = T0 + 1000;
    for (int eng = 0; eng < n_eng(x); eng++) {
        build_txn(x, eng, "BEGIN");
        loop_begin(x, OP_UPDATE, eng);
        for (size_t i = 0; i < n; i++) {
            const msg_ref *m = &x->msgs[pick[i]];
            const char *chan = x->chan_sid[m->chan];
            sid_format('I', 'M', m->sid, sid);
            gen_body(x->c, hash64(x->c->seed ^ 0x0bd, i), body, &body_len);
            int e;
            if (eng == ENG_CS)
                TIMED(x, OP_UPDATE, eng, i,
                      e = cs_update(x, chan, sid, body, body_len));
            else
                TIMED(x, OP_UPDATE, eng, i,
                      e = sq_update(x, chan, sid, body, body_len));
            if (e) op_error(x, "update", eng, e);
        }
        loop_end(x, OP_UPDATE, eng);
        build_txn(x, eng, "COMMIT");
    }
    free(pick);
    phase_check(x, "update");
}

/* Deletes n distinct live messages (a random sample). */
static void phase_delete(ctx *x, size_t n) {
    size_t live = 0;
    for (size_t s = 0; s < x->n_msgs; s++) live += x->msgs[s].idx != DEAD;
    if (n > live) n = live;
    uint32_t *all = xmalloc((live ? live : 1) * sizeof *all);
    size_t k = 0;
    for (size_t s = 0; s < x->n_msgs; s++)
        if (x->msgs[s].idx != DEAD) all[k++] = (uint32_t)s;
    uint64_t st = hash64(x->c->seed, 0xde1e7e);
    for (size_t i = 0; i < n; i++) { /* partial Fisher-Yates */
        size_t j = i + (size_t)(splitmix64(&st) % (live - i));
        uint32_t t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    char sid[CS_SID_BUFSZ];
    for (int eng = 0; eng < n_eng(x); eng++) {
        build_txn(x, eng, "BEGIN");
        loop_begin(x, OP_DELETE, eng);
        for (size_t i = 0; i < n; i++) {
            const msg_ref *m = &x->msgs[all[i]];
            const char *chan = x->chan_sid[m->chan];
            sid_format('I', 'M', m->sid, sid);
            int e;
            if (eng == ENG_CS)
                TIMED(x, OP_DELETE, eng, i, e = cs_delete(x, chan, sid));
            else
                TIMED(x, OP_DELETE, eng, i, e = sq_delete(x, chan, sid));
            if (e) op_error(x, "delete", eng, e);
        }
        loop_end(x, OP_DELETE, eng);
        build_txn(x, eng, "COMMIT");
    }
    for (size_t i = 0; i < n; i++) x->msgs[all[i]].idx = DEAD;
    free(all);
    phase_check(x, "delete");
}

/* Smoke only: every channel in full from both engines, and all counts. */
static void compare_all(ctx *x, const char *when) {
    for (size_t c = 0; c < x->n_chan; c++) {
        char tok[CS_TOKEN_BUFSZ] = "";
        size_t total = 0;
        for (;;) {
            cs_page_params qp;
            memset(&qp, 0, sizeof qp);
            qp.page_size = S("1000");
            if (tok[0]) qp.page_token = S(tok);
            cs_page pg;
            if (cs_message_list(x->cs, S(x->svc_sid), S(x->chan_sid[c]), &qp,
                                &pg)) {
                x->r->mismatches++;
                break;
            }
            cs_message_view v;
            while (cs_page_next_message(x->cs, &pg, &v)) {
                sink(x, ENG_CS, &v);
                total++;
            }
            if (!pg.next_token[0]) break;
            memcpy(tok, pg.next_token, CS_TOKEN_BUFSZ);
        }
        cs_channel_view cv;
        if (cs_channel_fetch(x->cs, S(x->svc_sid), S(x->chan_sid[c]), &cv))
            x->r->mismatches++;
        log_note(&x->log[ENG_CS], "listed", (long long)total);
        log_note(&x->log[ENG_CS], "messages_count", (long long)cv.messages_count);

        sqlite3_stmt *s = x->st[ST_SCAN_CHAN];
        sqlite3_bind_int64(s, 1, (sqlite3_int64)c + 1);
        size_t n = 0;
        while (sqlite3_step(s) == SQLITE_ROW) {
            cs_message_view v;
            sq_row(x, s, &v);
            sink(x, ENG_SQ, &v);
            n++;
        }
        sqlite3_reset(s);
        log_note(&x->log[ENG_SQ], "listed", (long long)n);
        log_note(&x->log[ENG_SQ], "messages_count",
                 (long long)sq_count(x, ST_COUNT_CHAN, (int64_t)c + 1));
    }
    cs_store_stats stats;
    cs_store_stats_get(x->cs, &stats);
    log_note(&x->log[ENG_CS], "total", (long long)stats.messages);
    log_note(&x->log[ENG_SQ], "total", sq_count(x, ST_COUNT_ALL, 0));
    phase_check(x, when);
}

/* ---- the run ------------------------------------------------------------ */

static void perf_open(ctx *x) {
    x->perf_fd = x->perf_ack_fd = -1;
    if (!x->c->perf_ctl) return;
    x->perf_fd = open(x->c->perf_ctl, O_WRONLY);
    if (x->perf_fd < 0) fail("open perf control fifo", x->c->perf_ctl);
    if (x->c->perf_ack) {
        x->perf_ack_fd = open(x->c->perf_ack, O_RDONLY);
        if (x->perf_ack_fd < 0) fail("open perf ack fifo", x->c->perf_ack);
    }
}

/* Diagnostic: fault in `mb` MiB of heap and keep it, so that the engines'
 * allocations land on resident pages and the timings show their CPU cost
 * without the kernel's first-touch cost (about 11 us per 4 KiB page on the
 * PVM guest this was written on). RSS deltas are meaningless then. */
void bench_prefault(size_t mb) {
#ifdef __GLIBC__
    if (!mb) return;
    mallopt(M_TRIM_THRESHOLD, INT32_MAX);
    mallopt(M_MMAP_THRESHOLD, 32 << 20); /* the largest allowed */
    mallopt(M_TOP_PAD, 64 << 20);
    size_t n = (mb + 15) / 16;
    char **p = xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = xmalloc((16u << 20) - 4096);
        memset(p[i], 1, (16u << 20) - 4096);
    }
    for (size_t i = n; i-- > 0;) free(p[i]);
    free(p);
#else
    (void)mb;
#endif
}

/* The rest of a durable variant after its creates: updates, deletes, then
 * the checks and (DUR_BUILD) the recovery measurements; removes its files
 * except those the recovery steps read. */
static void durable_rest(ctx *x, size_t n_del) {
    const bench_cfg *c = x->c;
    run_result *r = x->r;
    phase_update(x, c->update_ops);
    if (c->smoke) compare_all(x, "update");
    phase_delete(x, n_del);
    if (c->smoke) compare_all(x, "delete");
    if (x->jf) {
        cs_store_set_journal(x->cs, NULL, NULL);
        djournal_close(x->jf, &r->d);
        x->jf = NULL;
    }
    char s0[512], jp[512], db[512], wal[540];
    dur_path(c, "s0", s0, sizeof s0);
    dur_path(c, "journal", jp, sizeof jp);
    dur_path(c, "db", db, sizeof db);
    if (c->dur == DUR_NORMAL || c->dur == DUR_ALWAYS) {
        /* The journal, replayed onto the empty-state snapshot, must give a
         * store that answers exactly as this one. */
        cs_store *b = NULL;
        char err[160] = "";
        uint64_t recs = 0;
        cs_err e = snap_load_file(s0, &b, err, sizeof err);
        if (!e) e = journal_replay_file(b, jp, &recs, NULL, NULL, err, sizeof err);
        r->d.replay_checked = 1;
        r->d.replay_equal =
            !e && recs == r->d.jrnl_records && store_digest(b) == store_digest(x->cs);
        if (!r->d.replay_equal) {
            r->mismatches++;
            fprintf(stderr, "MISMATCH: journal replay (%s): %s\n",
                    e ? cs_err_name(e) : "digest", err);
        }
        cs_store_free(b);
        unlink(s0);
        unlink(jp);
    }
    if (c->dur == DUR_BUILD) recovery_build_finish(c, x->cs, x->db, r);
    for (int i = 0; i < ST__COUNT; i++) sqlite3_finalize(x->st[i]);
    sqlite3_close(x->db);
    if (c->dur >= DUR_NORMAL) {
        unlink(db);
        snprintf(wal, sizeof wal, "%s-wal", db);
        unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", db);
        unlink(wal);
    }
    r->messages = x->n_msgs;
    cs_store_free(x->cs);
    free(x->cmap);
    free(x->msgs);
    free(x->chan_sid);
    free(x->chan_sidb);
    for (int e = 0; e < ENG__COUNT; e++) free(x->log[e].p);
    if (x->perf_fd >= 0) close(x->perf_fd);
    if (x->perf_ack_fd >= 0) close(x->perf_ack_fd);
    r->ok = 1;
}

void bench_run(const bench_cfg *c, run_result *r) {
    ctx xs;
    ctx *x = &xs;
    memset(x, 0, sizeof *x);
    memset(r, 0, sizeof *r);
    x->c = c;
    x->r = r;
    x->now = T0;
    x->n_chan = c->channels ? c->channels : 1;
    r->channels = x->n_chan;
    perf_open(x);
    bench_prefault(c->prefault_mb);
    r->prefaulted = c->prefault_mb > 0;
    size_t n = c->messages;
    size_t n_del = c->delete_ops ? c->delete_ops
                                 : (size_t)((double)n * c->delete_frac + 0.5);
    if (n_del > n) n_del = n;

    /* Harness memory first, touched, so the RSS deltas below are the
     * engines' alone. */
    x->cap_msgs = n + n_del;
    x->msgs = xmalloc(x->cap_msgs * sizeof *x->msgs);
    memset(x->msgs, 0xff, x->cap_msgs * sizeof *x->msgs);
    x->chan_sid = xmalloc(x->n_chan * sizeof *x->chan_sid);
    x->chan_sidb = xmalloc(x->n_chan * sizeof *x->chan_sidb);

    cs_setup(x);
    sq_setup(x);

    /* Body statistics of the loaded messages (sampled). */
    {
        msg_in in;
        size_t step = n > 20000 ? n / 20000 : 1, k = 0, bytes = 0, mb = 0;
        for (size_t s = 0; s < n; s += step, k++) {
            gen_message(c, s, &in);
            bytes += in.body_len;
            for (size_t i = 0; i < in.body_len; i++)
                if ((unsigned char)in.body[i] >= 0x80) {
                    mb++;
                    break;
                }
        }
        r->body_avg = k ? (double)bytes / (double)k : 0;
        r->multibyte_share = k ? (double)mb / (double)k : 0;
    }

    cs_store_stats st0, st1;
    cs_store_stats_get(x->cs, &st0);
    int cache0 = 0, curhi = 0;
    sqlite3_db_status(x->db, SQLITE_DBSTATUS_CACHE_USED, &cache0, &curhi, 0);
    sqlite3_int64 mem0 = sqlite3_memory_used();

    /* The load: all of chatstore's creates, then all of SQLite's, so that
     * each RSS delta is one engine's alone. */
    size_t rss0 = rss_bytes();
    create_cs(x, OP_CREATE, 0, n);
    size_t rss1 = rss_bytes();
    create_sq(x, OP_CREATE, 0, n);
    size_t rss2 = rss_bytes();
    phase_check(x, "create");
    r->rss_bpm[ENG_CS] = n ? ((double)rss1 - (double)rss0) / (double)n : 0;
    r->rss_bpm[ENG_SQ] = n ? ((double)rss2 - (double)rss1) / (double)n : 0;
    r->messages = n;
    cs_store_stats_get(x->cs, &st1);
    r->cs_alloc_bpm = n ? (double)(st1.bytes_allocated - st0.bytes_allocated) /
                              (double)n
                        : 0;
    int cur1 = 0;
    sqlite3_db_status(x->db, SQLITE_DBSTATUS_CACHE_USED, &cur1, &curhi, 0);
    r->sq_cache_bpm = n ? (double)(cur1 - cache0) / (double)n : 0;
    sqlite3_int64 mem1 = sqlite3_memory_used();
    r->sq_memused_bpm = n ? (double)(mem1 - mem0) / (double)n : 0;

    if (c->smoke) compare_all(x, "load");
    if (c->dur != DUR_OFF) {
        durable_rest(x, n_del);
        return;
    }
    phase_fetch(x, c->fetch_ops);
    phase_pages(x, c->page_ops);
    phase_update(x, c->update_ops);
    if (c->smoke) compare_all(x, "update");
    phase_delete(x, n_del);
    if (c->smoke) compare_all(x, "delete");
    x->now = T0 + 2000;
    create_cs(x, OP_CREATE_STEADY, n, n_del);
    create_sq(x, OP_CREATE_STEADY, n, n_del);
    phase_check(x, "create_steady");
    if (c->smoke) compare_all(x, "create_steady");
    if (c->smoke) {
        /* Pages and fetches again over the holes the deletes left. */
        phase_fetch(x, c->fetch_ops);
        phase_pages(x, c->page_ops);
    }
    cs_store_stats st2;
    cs_store_stats_get(x->cs, &st2);
    r->cs_alloc_after_bpm =
        st2.messages ? (double)(st2.bytes_allocated - st0.bytes_allocated) /
                           (double)st2.messages
                     : 0;
    if (!c->cs_only && (int64_t)st2.messages != sq_count(x, ST_COUNT_ALL, 0)) {
        r->mismatches++;
        fprintf(stderr, "MISMATCH: final message counts differ\n");
    }

    for (int i = 0; i < ST__COUNT; i++) sqlite3_finalize(x->st[i]);
    sqlite3_close(x->db);
    cs_store_free(x->cs);
    free(x->cmap);
    free(x->msgs);
    free(x->chan_sid);
    free(x->chan_sidb);
    for (int e = 0; e < ENG__COUNT; e++) free(x->log[e].p);
    if (x->perf_fd >= 0) close(x->perf_fd);
    if (x->perf_ack_fd >= 0) close(x->perf_ack_fd);
    r->ok = 1;
}
