/* The change journal: records of committed changes, and their application.
 *
 * Invariants:
 * - A mutating call hands exactly one record to the hook, after every step
 *   that can fail and before anything becomes visible, so a refusal (or a
 *   failed allocation of the record) is undone like any allocation failure.
 * - A record carries the call (its parameters as given, the SIDs it
 *   addresses) and what the store would otherwise take from its clock and
 *   generators (the time, the SIDs it creates, the new message index). The
 *   store's state before the call is checked on apply (seq, SID counter,
 *   serial, the message index, the epoch a new-epoch record starts), so
 *   applying a record is the same call made again on the same state:
 *   deterministic, and validated like any call. Message calls enter past
 *   the public functions' SID text (the objects looked up by the record's
 *   SID bytes, a message found only in its SID's epoch as by a fetch), into
 *   the same code.
 * - Every record ends with a CRC-32C of all its bytes before the CRC.
 *
 * The format is written down in docs/journal.md. */
#include "internal.h"

/* ---- layout ------------------------------------------------------------- */

#define J_VERSION 1
#define J_HEADER 40 /* version, op, flags, pad, seq, now, counter, serial */
#define J_ABSENT UINT32_MAX

enum { F_SVC = 1, F_CHAN = 2, F_MSG = 4, F_CREATED = 8 };

/* What each op carries: SIDs (F_*) and its number of strings. */
static const struct {
    uint8_t sids;
    uint8_t nstr;
} SHAPE[CS__J_OPS] = {
    [CS__J_SERVICE_CREATE] = {F_CREATED, 1},
    [CS__J_SERVICE_UPDATE] = {F_SVC, 1},
    [CS__J_SERVICE_DELETE] = {F_SVC, 0},
    [CS__J_CHANNEL_CREATE] = {F_SVC | F_CREATED, 6},
    [CS__J_CHANNEL_UPDATE] = {F_SVC | F_CHAN, 6},
    [CS__J_CHANNEL_DELETE] = {F_SVC | F_CHAN, 0},
    [CS__J_MEDIA_CREATE] = {F_SVC | F_CREATED, 2},
    [CS__J_MESSAGE_CREATE] = {F_SVC | F_CHAN | F_CREATED, 7},
    [CS__J_MESSAGE_UPDATE] = {F_SVC | F_CHAN | F_MSG, 6},
    [CS__J_MESSAGE_DELETE] = {F_SVC | F_CHAN | F_MSG, 0},
    [CS__J_CLEAR] = {0, 0},
    [CS__J_EPOCH] = {0, 0},
    /* service records with webhook settings (service.c writes them) */
    [CS__J_SERVICE_CREATE_WH] = {F_CREATED, 7},
    [CS__J_SERVICE_UPDATE_WH] = {F_SVC, 7},
    [CS__J_MEDIA_DELETE] = {F_SVC, 1},
};

/* ---- writing ------------------------------------------------------------ */

static uint8_t *put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

static uint8_t *put_sid(uint8_t *p, const uint8_t *sid) {
    memcpy(p, sid, CS__SID_BYTES);
    return p + CS__SID_BYTES;
}

static int popcount4(unsigned f) {
    return (f & 1) + (f >> 1 & 1) + (f >> 2 & 1) + (f >> 3 & 1);
}

/* The record's size without its CRC. */
static size_t encoded_size(const cs__jr *r) {
    size_t n = J_HEADER + (size_t)popcount4(SHAPE[r->op].sids) * CS__SID_BYTES +
               1 + 1 + 8 + 8;
    for (unsigned i = 0; i < SHAPE[r->op].nstr; i++)
        n += 4 + (r->str[i].ptr ? r->str[i].len : 0);
    return n;
}

static uint8_t *encode(const cs_store *s, const cs__jr *r, uint8_t *p) {
    uint8_t f = SHAPE[r->op].sids;
    *p++ = J_VERSION;
    *p++ = r->op;
    *p++ = f;
    *p++ = 0;
    p = put_u32(p, 0);
    p = put_u64(p, s->commits + 1);
    p = put_u64(p, (uint64_t)r->now);
    p = put_u64(p, r->counter0);
    p = put_u64(p, (uint64_t)s->serial);
    if (f & F_SVC) p = put_sid(p, r->svc);
    if (f & F_CHAN) p = put_sid(p, r->chan);
    if (f & F_MSG) p = put_sid(p, r->msg);
    if (f & F_CREATED) p = put_sid(p, r->created);
    *p++ = (uint8_t)r->wh;
    *p++ = r->type;
    p = put_u64(p, r->size);
    p = put_u64(p, (uint64_t)r->index);
    for (unsigned i = 0; i < SHAPE[r->op].nstr; i++) {
        cs_str v = r->str[i];
        p = put_u32(p, v.ptr ? (uint32_t)v.len : J_ABSENT);
        if (v.ptr && v.len) {
            memcpy(p, v.ptr, v.len);
            p += v.len;
        }
    }
    return p;
}

cs_err cs__journal(cs_store *s, const cs__jr *r) {
    if (!s->journal) return CS_OK;
    for (unsigned i = 0; i < SHAPE[r->op].nstr; i++)
        if (r->str[i].ptr && r->str[i].len >= J_ABSENT) return CS_E_NOMEM;
    size_t body = encoded_size(r), n = body + 4;
    uint8_t *buf = cs__malloc(s, n);
    if (!buf) return CS_E_NOMEM;
    uint8_t *end = encode(s, r, buf);
    put_u32(end, cs__crc32c(0, buf, body));
    int rc = s->journal(s->journal_ctx, s->commits + 1, buf, n);
    cs__free(s, buf, n);
    return rc == 0 ? CS_OK : CS_E_JOURNAL_REFUSED;
}

cs_err cs_store_set_journal(cs_store *s, cs_journal_fn fn, void *ctx) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    s->journal = fn;
    s->journal_ctx = fn ? ctx : NULL;
    return CS_OK;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct jr {
    const uint8_t *p;
    size_t n, off;
    const char *bad; /* first problem, at off */
} jr;

static bool r_need(jr *r, size_t k, const char *what) {
    if (r->bad) return false;
    if (r->n - r->off < k) {
        r->bad = what;
        return false;
    }
    return true;
}

static uint8_t r_u8(jr *r, const char *what) {
    if (!r_need(r, 1, what)) return 0;
    return r->p[r->off++];
}

/* Little-endian loads: one machine load where the byte order is known to
 * be little-endian (the compiler did not merge the byte loops). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define J_LE 1
#else
#define J_LE 0
#endif

static uint32_t le32(const uint8_t *p) {
    uint32_t v = 0;
    if (J_LE)
        memcpy(&v, p, sizeof v);
    else
        for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    if (J_LE)
        memcpy(&v, p, sizeof v);
    else
        for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t r_u32(jr *r, const char *what) {
    if (!r_need(r, 4, what)) return 0;
    uint32_t v = le32(r->p + r->off);
    r->off += 4;
    return v;
}

static uint64_t r_u64(jr *r, const char *what) {
    if (!r_need(r, 8, what)) return 0;
    uint64_t v = le64(r->p + r->off);
    r->off += 8;
    return v;
}

static const uint8_t *r_sid(jr *r, const char *what) {
    if (!r_need(r, CS__SID_BYTES, what)) return NULL;
    const uint8_t *v = r->p + r->off;
    r->off += CS__SID_BYTES;
    return v;
}

static cs_str r_str(jr *r) {
    size_t at = r->off;
    uint32_t len = r_u32(r, "truncated string length");
    if (r->bad || len == J_ABSENT) return CS_STR_ABSENT;
    if (!r_need(r, len, "string runs past the record")) {
        r->off = at;
        return CS_STR_ABSENT;
    }
    cs_str v = {(const char *)r->p + r->off, len};
    r->off += len;
    return v;
}

/* A decoded record. */
typedef struct jrec {
    uint8_t op;
    uint64_t seq, counter;
    int64_t now, serial;
    const uint8_t *svc, *chan, *msg, *created;
    uint8_t wh, type;
    uint64_t size;
    int64_t index;
    cs_str str[CS__J_MAXSTR];
} jrec;

static cs_err decode_fail(const jr *r, cs_decode_error *err) {
    if (err) {
        err->offset = r->off;
        err->reason = r->bad;
    }
    return CS_E_BAD_RECORD;
}

static cs_err decode(const void *rec, size_t len, jrec *d,
                     cs_decode_error *err) {
    jr r = {rec, len, 0, NULL};
    memset(d, 0, sizeof *d);
    if (len < J_HEADER + 4) {
        r.bad = "shorter than a record header";
        r.off = len;
        return decode_fail(&r, err);
    }
    jr c = {r.p + len - 4, 4, 0, NULL};
    uint32_t crc = r_u32(&c, "");
    if (cs__crc32c(0, rec, len - 4) != crc) {
        r.bad = "checksum mismatch";
        r.off = len - 4;
        return decode_fail(&r, err);
    }
    r.n = len - 4; /* the fields end before the CRC */
    if (r_u8(&r, "") != J_VERSION) {
        r.off = 0;
        r.bad = "unknown record version";
        return decode_fail(&r, err);
    }
    d->op = r_u8(&r, "");
    if (d->op == 0 || d->op >= CS__J_OPS) {
        r.off = 1;
        r.bad = "unknown operation";
        return decode_fail(&r, err);
    }
    uint8_t flags = r_u8(&r, "");
    if (flags != SHAPE[d->op].sids || r_u8(&r, "") != 0 || r_u32(&r, "") != 0) {
        r.off = 2;
        r.bad = "flags do not match the operation";
        return decode_fail(&r, err);
    }
    d->seq = r_u64(&r, "");
    d->now = (int64_t)r_u64(&r, "");
    d->counter = r_u64(&r, "");
    d->serial = (int64_t)r_u64(&r, "");
    if (flags & F_SVC) d->svc = r_sid(&r, "truncated service SID");
    if (flags & F_CHAN) d->chan = r_sid(&r, "truncated channel SID");
    if (flags & F_MSG) d->msg = r_sid(&r, "truncated message SID");
    if (flags & F_CREATED) d->created = r_sid(&r, "truncated created SID");
    size_t at = r.off;
    d->wh = r_u8(&r, "truncated webhook value");
    d->type = r_u8(&r, "truncated channel type");
    if (!r.bad && (d->wh > CS_WEBHOOK_FALSE || d->type > CS_CHANNEL_PRIVATE ||
                   (d->op == CS__J_CHANNEL_CREATE) != (d->type != 0))) {
        r.off = at;
        r.bad = "webhook value or channel type out of range";
        return decode_fail(&r, err);
    }
    d->size = r_u64(&r, "truncated size");
    d->index = (int64_t)r_u64(&r, "truncated index");
    for (unsigned i = 0; i < SHAPE[d->op].nstr; i++) d->str[i] = r_str(&r);
    if (r.bad) return decode_fail(&r, err);
    if (r.off != r.n) {
        r.bad = "bytes after the last field";
        return decode_fail(&r, err);
    }
    return CS_OK;
}

cs_err cs_journal_record_seq(const void *rec, size_t len, uint64_t *seq) {
    CS__REQUIRE(rec);
    CS__REQUIRE(seq);
    if (len < J_HEADER + 4) return CS_E_BAD_RECORD;
    jr r = {rec, len, 8, NULL};
    *seq = r_u64(&r, "");
    return CS_OK;
}

cs_err cs_journal_record_info(const void *rec, size_t len,
                              cs_journal_info *out, cs_decode_error *err) {
    CS__REQUIRE(rec);
    CS__REQUIRE(out);
    jrec d;
    cs_err e = decode(rec, len, &d, err);
    if (e) return e;
    memset(out, 0, sizeof *out);
    out->op = (cs_journal_op)d.op;
    out->seq = d.seq;
    static const char created[CS__J_OPS][2] = {
        [CS__J_SERVICE_CREATE] = "IS", [CS__J_CHANNEL_CREATE] = "CH",
        [CS__J_MEDIA_CREATE] = "ME", [CS__J_MESSAGE_CREATE] = "IM",
        [CS__J_SERVICE_CREATE_WH] = "IS"};
    /* the service records with webhook settings are service calls too */
    if (d.op == CS__J_SERVICE_CREATE_WH) out->op = CS_JOURNAL_SERVICE_CREATE;
    if (d.op == CS__J_SERVICE_UPDATE_WH) out->op = CS_JOURNAL_SERVICE_UPDATE;
    if (d.svc) cs__sid_format('I', 'S', d.svc, out->service_sid);
    if (d.chan) cs__sid_format('C', 'H', d.chan, out->channel_sid);
    if (d.msg) cs__sid_format('I', 'M', d.msg, out->message_sid);
    if (d.created)
        cs__sid_format(created[d.op][0], created[d.op][1], d.created,
                       out->created_sid);
    return CS_OK;
}

/* ---- applying ----------------------------------------------------------- */

const cs_limits cs__lifted_limits = {UINT32_MAX - 1, UINT32_MAX - 1,
                                 SIZE_MAX / 8,   SIZE_MAX / 8,
                                 UINT32_MAX,     UINT64_MAX,
                                 SIZE_MAX,       SIZE_MAX,
                                 /* no quotas: recovery never refuses */
                                 0, 0, 0, 0};

typedef struct sidtxt {
    char v[CS_SID_BUFSZ];
} sidtxt;

static cs_str sid_str(sidtxt *t, char a, char b, const uint8_t *sid) {
    cs__sid_format(a, b, sid, t->v);
    return (cs_str){t->v, CS__SID_STRLEN};
}

/* The state before the call must be the writer's, and the SID a create
 * will make the one the record names: checked before anything changes, so
 * a record from another store (other keys) or with an altered SID changes
 * nothing. A create takes the generator's next SID (a store never skips
 * one: SIDs it made never collide with later ones). A message create's
 * channel, found here, goes to *chan for the call. */
static cs_err check_state(const cs_store *s, const jrec *d, cs_channel **chan) {
    if (d->counter != s->sid_counter || d->serial != s->serial)
        return CS_E_RECORD_MISMATCH;
    uint8_t next[CS__SID_BYTES];
    switch (d->op) {
    case CS__J_SERVICE_CREATE:
    case CS__J_SERVICE_CREATE_WH:
    case CS__J_CHANNEL_CREATE:
    case CS__J_MEDIA_CREATE:
        cs__peek_sid(s, next);
        break;
    case CS__J_MESSAGE_CREATE: {
        const cs_service *svc = cs__service_get(s, d->svc);
        cs_channel *c = svc ? cs__channel_get(svc, d->chan) : NULL;
        if (!c || d->index != c->next_index) return CS_E_RECORD_MISMATCH;
        /* the SID the store makes next: this channel and index in the
         * store's epoch */
        cs__msg_sid(s, c->serial, cs__ix(c->next_index, s->epoch), next);
        *chan = c;
        break;
    }
    case CS__J_EPOCH:
        /* the epoch the call starts: the one after the store's */
        return d->index == (int64_t)s->epoch + 1 ? CS_OK
                                                 : CS_E_RECORD_MISMATCH;
    default:
        return CS_OK;
    }
    return memcmp(next, d->created, CS__SID_BYTES) ? CS_E_RECORD_MISMATCH
                                                   : CS_OK;
}

/* Message calls, most of a journal, skip the public calls' SID text: the
 * objects are looked up by the record's SID bytes as the public call looks
 * them up by text (a create's channel already by check_state, with the new
 * SID it checked), then the same code runs from there. */
static cs_err replay_message(cs_store *s, const jrec *d, cs_channel *c) {
    cs_msg *m = NULL;
    if (d->op != CS__J_MESSAGE_CREATE) {
        const cs_service *svc = cs__service_get(s, d->svc);
        c = svc ? cs__channel_get(svc, d->chan) : NULL;
        m = c ? cs__message_find(s, c, d->msg) : NULL;
        if (!m) return CS_E_NOT_FOUND;
        if (d->op == CS__J_MESSAGE_DELETE)
            return cs__message_delete_in(s, c, m, (cs_webhook)d->wh);
    }
    const cs_str *x = d->str;
    cs_message_params p = {0};
    p.from = x[0];
    p.attributes = x[1];
    p.date_created = x[2];
    p.date_updated = x[3];
    p.last_updated_by = x[4];
    p.body = x[5];
    p.webhook_value = (cs_webhook)d->wh;
    if (m) return cs__message_update_in(s, c, m, &p, NULL);
    p.media_sid = x[6];
    return cs__message_create_in(s, c, &p, d->created, NULL);
}

/* The call the record carries, made again (message calls: above). */
static cs_err replay(cs_store *s, const jrec *d) {
    sidtxt ts, tc, tn;
    cs_str svc = d->svc ? sid_str(&ts, 'I', 'S', d->svc) : CS_STR_ABSENT;
    cs_str chan = d->chan ? sid_str(&tc, 'C', 'H', d->chan) : CS_STR_ABSENT;
    const cs_str *x = d->str;
    cs_err e = CS_OK;
    switch (d->op) {
    case CS__J_SERVICE_CREATE: {
        cs_service_view v;
        e = cs_service_create(s, x[0], &v);
        if (!e) e = strcmp(sid_str(&tn, 'I', 'S', d->created).ptr, v.sid)
                        ? CS_E_CORRUPT : CS_OK;
        break;
    }
    case CS__J_SERVICE_UPDATE:
        e = cs_service_update(s, svc, x[0], NULL);
        break;
    case CS__J_SERVICE_DELETE:
        e = cs_service_delete(s, svc);
        break;
    case CS__J_CHANNEL_CREATE:
    case CS__J_CHANNEL_UPDATE: {
        cs_channel_params p = {0};
        p.friendly_name = x[0];
        p.unique_name = x[1];
        p.attributes = x[2];
        p.date_created = x[3];
        p.date_updated = x[4];
        p.created_by = x[5];
        p.webhook_value = (cs_webhook)d->wh;
        cs_channel_view v;
        if (d->op == CS__J_CHANNEL_UPDATE) {
            e = cs_channel_update(s, svc, chan, &p, NULL);
            break;
        }
        p.type_value = (cs_channel_type)d->type;
        e = cs_channel_create(s, svc, &p, &v);
        if (!e) e = strcmp(sid_str(&tn, 'C', 'H', d->created).ptr, v.sid)
                        ? CS_E_CORRUPT : CS_OK;
        break;
    }
    case CS__J_CHANNEL_DELETE:
        e = cs_channel_delete(s, svc, chan, cs_webhook_str((cs_webhook)d->wh));
        break;
    case CS__J_MEDIA_CREATE: {
        cs_media_view v;
        e = cs_media_create(s, svc, x[0], x[1], d->size, &v);
        if (!e) e = strcmp(sid_str(&tn, 'M', 'E', d->created).ptr, v.sid)
                        ? CS_E_CORRUPT : CS_OK;
        break;
    }
    case CS__J_CLEAR:
        e = cs_store_clear(s);
        break;
    case CS__J_EPOCH:
        e = cs_store_new_epoch(s, NULL);
        break;
    case CS__J_SERVICE_CREATE_WH: {
        cs_service_view v;
        e = cs__service_replay(s, CS_STR_ABSENT, x, &v);
        if (!e) e = strcmp(sid_str(&tn, 'I', 'S', d->created).ptr, v.sid)
                        ? CS_E_CORRUPT : CS_OK;
        break;
    }
    case CS__J_SERVICE_UPDATE_WH:
        e = cs__service_replay(s, svc, x, NULL);
        break;
    case CS__J_MEDIA_DELETE:
        e = cs_media_delete(s, svc, x[0]);
        break;
    }
    return e;
}

cs_err cs_journal_apply(cs_store *s, const void *rec, size_t len,
                        bool *applied, cs_decode_error *err) {
    CS__REQUIRE(s);
    CS__REQUIRE(rec);
    if (applied) *applied = false;
    if (s->in_observer) return CS_E_REENTRANT;
    jrec d;
    cs_err e = decode(rec, len, &d, err);
    if (e) return e;
    if (d.seq <= s->commits) return CS_OK;
    if (d.seq != s->commits + 1) return CS_E_RECORD_GAP;
    cs_channel *chan = NULL;
    if ((e = check_state(s, &d, &chan))) return e;
    cs_limits lim = s->lim;
    s->lim = cs__lifted_limits;
    s->replaying = true;
    s->replay_now = d.now;
    e = d.op >= CS__J_MESSAGE_CREATE && d.op <= CS__J_MESSAGE_DELETE
            ? replay_message(s, &d, chan)
            : replay(s, &d);
    if (e == CS_E_NOT_FOUND) e = CS_E_RECORD_MISMATCH; /* not this store's */
    /* A writer journals changes only: a record whose call changed nothing
     * (an update without parameters) was not written by a store. */
    if (!e && s->commits != d.seq) e = CS_E_RECORD_MISMATCH;
    s->replaying = false;
    s->lim = lim;
    if (!e && applied) *applied = true;
    return e;
}
