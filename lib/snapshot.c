/* Snapshots: a consistent image of the whole store, streamed out through
 * the caller's write callback and read back through a read callback.
 *
 * Invariants:
 * - The image holds everything a store is: the keys behind SIDs and page
 *   tokens, the account SID, the SID counter and epoch, the serial and
 *   commit counters, and every service, media item, channel and message
 *   with all its fields; message SIDs are not stored (they are a keyed
 *   permutation of the channel's serial and the message's index and epoch,
 *   all stored: the epoch in the index field's top bits). A loaded store
 *   renders every object, page and token byte for byte as the saved one
 *   did, and its counters continue where the saved store's stood. Version
 *   1 images (no epochs) load as version 2 ones with every epoch 0, and
 *   version 2 images (no webhook settings) as version 3 ones whose
 *   services have the default settings (null, 0).
 * - Saving reads the store only and allocates nothing: it may run under the
 *   shared lock or in a forked child.
 * - Loading validates every byte it is given: a checksum per block, every
 *   field as the create call would (limits lifted), order and uniqueness
 *   (serials, indices, SIDs, unique names), counts against the header and the
 *   end marker; objects are built by the same code paths as creates, so the
 *   store's invariants hold by construction (fuzz_snapshot runs the full
 *   checker after every load). On any failure the partial store is freed
 *   and the error names the byte offset and the cause.
 *
 * The format is written down in docs/snapshot.md. */
#include "internal.h"

#define SNAP_VERSION 3 /* written; 2 (no webhook settings) and 1 (no
                          epochs either) are read with the defaults */
#define SNAP_VERSION_MIN 1
#define HEADER_BYTES 128
#define BLOCK_BYTES 16384u        /* the writer's block size */
#define BLOCK_MAX (UINT32_C(1) << 30) /* the reader's largest block */
#define ABSENT UINT32_MAX

static const uint8_t MAGIC[8] = {'C', 'S', 'S', 'N', 'A', 'P', '\r', '\n'};

enum { T_SERVICE = 'S', T_MEDIA = 'D', T_CHANNEL = 'C', T_MESSAGE = 'M',
       T_END = 'E' };
enum { MF_EDITED = 1, MF_MEDIA = 2 };

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ======================================================================== */
/* Saving                                                                    */
/* ======================================================================== */

/* Records are gathered into blocks of up to BLOCK_BYTES (length, payload,
 * CRC-32C of the payload); a record larger than that is a block of its own,
 * streamed in pieces. */
typedef struct wr {
    cs_write_fn fn;
    void *ctx;
    cs_err err;
    size_t len;                 /* bytes in buf */
    uint8_t buf[BLOCK_BYTES];
    /* the record being built: pieces (small fields go to rec[], strings are
     * referenced where they are) */
    struct piece {
        const void *p;
        size_t n;
    } pc[16];
    unsigned npc;
    uint8_t rec[256];
    size_t rlen;
} wr;

static void out(wr *w, const void *p, size_t n) {
    if (!w->err && n && w->fn(w->ctx, p, n) != 0) w->err = CS_E_IO;
}

static void flush_block(wr *w) {
    if (!w->len) return;
    uint8_t h[4], t[4];
    put_u32(h, (uint32_t)w->len);
    put_u32(t, cs__crc32c(0, w->buf, w->len));
    out(w, h, 4);
    out(w, w->buf, w->len);
    out(w, t, 4);
    w->len = 0;
}

/* Fixed-size fields go into rec[], in a piece of their own run. */
static void f_bytes(wr *w, const void *p, size_t n) {
    uint8_t *d = w->rec + w->rlen;
    memcpy(d, p, n);
    w->rlen += n;
    if (w->npc && (const uint8_t *)w->pc[w->npc - 1].p +
                          w->pc[w->npc - 1].n == d)
        w->pc[w->npc - 1].n += n;
    else
        w->pc[w->npc++] = (struct piece){d, n};
}
static void f_u8(wr *w, uint8_t v) { f_bytes(w, &v, 1); }
static void f_u64(wr *w, uint64_t v) {
    uint8_t b[8];
    put_u64(b, v);
    f_bytes(w, b, 8);
}
static void f_sid(wr *w, const uint8_t *sid) { f_bytes(w, sid, CS__SID_BYTES); }
/* A string: its length in rec[], its bytes where they are. */
static void f_str(wr *w, const char *p, size_t n) {
    uint8_t b[4];
    put_u32(b, p ? (uint32_t)n : ABSENT);
    f_bytes(w, b, 4);
    if (p && n) w->pc[w->npc++] = (struct piece){p, n};
}

static void rec_begin(wr *w, uint8_t tag) {
    w->npc = 0;
    w->rlen = 0;
    f_u8(w, tag);
}

static void rec_end(wr *w) {
    size_t n = 0;
    for (unsigned i = 0; i < w->npc; i++) n += w->pc[i].n;
    if (n > BLOCK_BYTES) { /* a block of its own, streamed */
        flush_block(w);
        uint8_t h[4], t[4];
        uint32_t crc = 0;
        put_u32(h, (uint32_t)n);
        out(w, h, 4);
        for (unsigned i = 0; i < w->npc; i++) {
            crc = cs__crc32c(crc, w->pc[i].p, w->pc[i].n);
            out(w, w->pc[i].p, w->pc[i].n);
        }
        put_u32(t, crc);
        out(w, t, 4);
        return;
    }
    if (w->len + n > BLOCK_BYTES) flush_block(w);
    for (unsigned i = 0; i < w->npc; i++) {
        memcpy(w->buf + w->len, w->pc[i].p, w->pc[i].n);
        w->len += w->pc[i].n;
    }
}

static void save_header(const cs_store *s, wr *w, const uint64_t counts[4]) {
    uint8_t h[HEADER_BYTES] = {0};
    uint8_t acct[CS__SID_BYTES];
    cs__sid_parse(s->account_sid, CS__SID_STRLEN, 'A', 'C', acct);
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, SNAP_VERSION);
    put_u32(h + 12, HEADER_BYTES);
    memcpy(h + 16, acct, 16);
    memcpy(h + 32, s->hash_key, 16);
    memcpy(h + 48, s->sid_key, 16);
    put_u64(h + 64, s->sid_counter);
    put_u64(h + 72, (uint64_t)s->serial);
    put_u64(h + 80, s->commits);
    for (int i = 0; i < 4; i++) put_u64(h + 88 + 8 * i, counts[i]);
    put_u32(h + 120, s->epoch);
    put_u32(h + 124, cs__crc32c(0, h, 124));
    out(w, h, HEADER_BYTES);
}

static void save_media(wr *w, const cs_media *m) {
    rec_begin(w, T_MEDIA);
    f_sid(w, m->sidb);
    f_u64(w, (uint64_t)m->date_created);
    f_u64(w, m->size);
    f_u8(w, m->attached);
    f_sid(w, m->chan_sid);
    f_sid(w, m->msg_sid);
    f_str(w, m->content_type, m->ct_len);
    f_str(w, m->filename, m->fn_len);
    rec_end(w);
}

static void save_message(wr *w, const cs_msg *m) {
    const cs_media *me = cs__msg_media(m);
    const cs_ident *lub = cs__msg_lub(m);
    rec_begin(w, T_MESSAGE);
    f_u64(w, m->ix); /* index | epoch << 40 */
    f_u64(w, (uint64_t)m->date_created);
    f_u64(w, (uint64_t)m->date_updated);
    f_u8(w, (uint8_t)((m->flags & CS__M_EDITED ? MF_EDITED : 0) |
                      (me ? MF_MEDIA : 0)));
    if (me) f_sid(w, me->sidb);
    f_str(w, cs__msg_from(m), m->from_len);
    f_str(w, cs__msg_body(m), m->body_len);
    f_str(w, m->attr_len ? cs__msg_attr(m) : NULL, m->attr_len);
    f_str(w, lub ? lub->str : NULL, lub ? lub->len : 0);
    rec_end(w);
}

static void save_channel(wr *w, const cs_channel *c) {
    rec_begin(w, T_CHANNEL);
    f_sid(w, c->sidb);
    f_u64(w, (uint64_t)c->serial);
    f_u64(w, (uint64_t)c->date_created);
    f_u64(w, (uint64_t)c->date_updated);
    f_u64(w, (uint64_t)c->next_index);
    f_u8(w, (uint8_t)c->type);
    f_str(w, c->friendly_name, c->fn_len);
    f_str(w, c->unique_name, c->un_len);
    f_str(w, c->attributes, c->attr_len);
    f_str(w, c->created_by->str, c->created_by->len);
    rec_end(w);
    for (int64_t k = -1; !w->err && cs__dix_after(&c->msgs, k, &k);)
        save_message(w, cs__dix_find(&c->msgs, k));
}

static void save_service(wr *w, const cs_service *v) {
    rec_begin(w, T_SERVICE);
    f_sid(w, v->sidb);
    for (int i = 0; i < 3; i++) {
        uint8_t b[CS__SID_BYTES];
        cs__sid_parse(v->role_sid[i], CS__SID_STRLEN, 'R', 'L', b);
        f_sid(w, b);
    }
    f_u64(w, (uint64_t)v->serial);
    f_u64(w, (uint64_t)v->date_created);
    f_u64(w, (uint64_t)v->date_updated);
    f_str(w, v->friendly_name, v->fn_len);
    f_str(w, v->pre_url, v->pre_len);
    f_str(w, v->post_url, v->post_len);
    f_u8(w, v->method);
    f_u8(w, v->pre_retry);
    f_u8(w, v->post_retry);
    f_u8(w, v->n_filters);
    if (v->n_filters) f_bytes(w, v->filters, v->n_filters);
    rec_end(w);
    for (const cs_media *m = v->media; m && !w->err; m = m->hh.next)
        save_media(w, m);
    cs_seq_pos p;
    const cs_seq *q = &v->channel_seq;
    for (bool ok = cs__seq_after(q, INT64_MIN, &p); ok && !w->err;
         ok = cs__seq_next(q, &p))
        save_channel(w, cs__seq_at(q, p)->val);
}

cs_err cs_snapshot_save(const cs_store *s, cs_write_fn fn, void *ctx) {
    CS__REQUIRE(s);
    CS__REQUIRE(fn);
    /* About 17 KiB on the stack: saving allocates nothing, so it changes
     * nothing in the store (not even its byte count) and needs no
     * allocator that is safe beside other readers. */
    wr wbuf, *w = &wbuf;
    w->fn = fn;
    w->ctx = ctx;
    w->err = CS_OK;
    w->len = 0;
    uint64_t counts[4] = {HASH_COUNT(s->services), s->n_channels,
                          s->n_messages, s->n_media};
    save_header(s, w, counts);
    cs_seq_pos p;
    const cs_seq *q = &s->service_seq;
    for (bool ok = cs__seq_after(q, INT64_MIN, &p); ok && !w->err;
         ok = cs__seq_next(q, &p))
        save_service(w, cs__seq_at(q, p)->val);
    rec_begin(w, T_END);
    for (int i = 0; i < 4; i++) f_u64(w, counts[i]);
    rec_end(w);
    flush_block(w);
    return w->err;
}

/* ======================================================================== */
/* Loading                                                                   */
/* ======================================================================== */

typedef struct rd {
    cs_read_fn fn;
    void *ctx;
    cs_store *s;
    uint64_t off;       /* image bytes consumed */
    uint8_t *blk;       /* the current block's payload (store allocator) */
    size_t cap, len, pos;
    uint64_t blk_off;   /* image offset of blk[0] */
    const char *why;    /* first problem */
    uint64_t why_off;
    cs_err err;         /* set with why, or NOMEM / IO */
} rd;

static bool fail(rd *r, cs_err e, uint64_t off, const char *why) {
    if (!r->err) {
        r->err = e;
        r->why = why;
        r->why_off = off;
    }
    return false;
}

/* Reads exactly n bytes, or fewer at the end of the image. */
static size_t read_some(rd *r, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ptrdiff_t k = r->fn(r->ctx, (uint8_t *)buf + got, n - got);
        if (k < 0) {
            fail(r, CS_E_IO, r->off + got, "read callback failed");
            return got;
        }
        if (k == 0 || (size_t)k > n - got) break;
        got += (size_t)k;
    }
    r->off += got;
    return got;
}

static bool read_exact(rd *r, void *buf, size_t n, const char *what) {
    uint64_t at = r->off;
    if (read_some(r, buf, n) == n) return true;
    return fail(r, CS_E_BAD_SNAPSHOT, at, what);
}

/* Grows the block buffer to at least n bytes (keeping its content). */
static bool room(rd *r, size_t n) {
    if (n <= r->cap) return true;
    size_t cap = r->cap ? r->cap : BLOCK_BYTES;
    while (cap < n) cap *= 2;
    uint8_t *b = cs__malloc(r->s, cap);
    if (!b) return fail(r, CS_E_NOMEM, r->off, "out of memory");
    if (r->len) memcpy(b, r->blk, r->len);
    cs__free(r->s, r->blk, r->cap);
    r->blk = b;
    r->cap = cap;
    return true;
}

/* The next block into blk[0..len). false at the end of the image too
 * (r->err unset then). */
static bool next_block(rd *r) {
    uint8_t h[4];
    uint64_t at = r->off;
    size_t got = read_some(r, h, 4);
    if (r->err) return false;
    if (got == 0) return fail(r, CS_E_BAD_SNAPSHOT, at,
                              "image ends before its end marker");
    if (got < 4) return fail(r, CS_E_BAD_SNAPSHOT, at, "truncated block length");
    uint32_t n = get_u32(h);
    if (n == 0 || n > BLOCK_MAX)
        return fail(r, CS_E_BAD_SNAPSHOT, at, "block length out of range");
    r->blk_off = r->off;
    r->len = 0;
    /* The buffer grows with the bytes that arrive, so a damaged length
     * alone cannot make the loader allocate a gigabyte. */
    while (r->len < n) {
        size_t want = n - r->len;
        if (want > (size_t)BLOCK_BYTES * 64) want = (size_t)BLOCK_BYTES * 64;
        if (!room(r, r->len + want)) return false;
        if (!read_exact(r, r->blk + r->len, want, "truncated block"))
            return false;
        r->len += want;
    }
    uint8_t t[4];
    if (!read_exact(r, t, 4, "truncated block checksum")) return false;
    /* The damage is somewhere in the block: name where the block starts. */
    if (get_u32(t) != cs__crc32c(0, r->blk, r->len))
        return fail(r, CS_E_BAD_SNAPSHOT, at,
                    "checksum mismatch in the block starting here");
    r->pos = 0;
    return true;
}

/* ---- fields of a record within the block -------------------------------- */

static bool need(rd *r, size_t n) {
    if (r->err) return false;
    if (r->len - r->pos < n)
        return fail(r, CS_E_BAD_SNAPSHOT, r->blk_off + r->pos,
                    "record runs past its block");
    return true;
}
static uint8_t g_u8(rd *r) { return need(r, 1) ? r->blk[r->pos++] : 0; }
static uint64_t g_u64(rd *r) {
    if (!need(r, 8)) return 0;
    uint64_t v = get_u64(r->blk + r->pos);
    r->pos += 8;
    return v;
}
static const uint8_t *g_sid(rd *r) {
    static const uint8_t zero[CS__SID_BYTES];
    if (!need(r, CS__SID_BYTES)) return zero;
    const uint8_t *v = r->blk + r->pos;
    r->pos += CS__SID_BYTES;
    return v;
}
static cs_str g_str(rd *r) {
    if (!need(r, 4)) return CS_STR_ABSENT;
    uint32_t n = get_u32(r->blk + r->pos);
    r->pos += 4;
    if (n == ABSENT) return CS_STR_ABSENT;
    if (!need(r, n)) return CS_STR_ABSENT;
    cs_str v = {(const char *)r->blk + r->pos, n};
    r->pos += n;
    return v;
}

/* ---- records ------------------------------------------------------------ */

typedef struct ld {
    rd r;
    uint64_t counts[4]; /* services, channels, messages, media: the header's */
    uint64_t seen[4];
    int64_t serial;     /* the header's */
    uint32_t version;   /* the image's format version */
    cs_service *svc;
    cs_channel *chan;
    int64_t svc_serial, chan_serial; /* the last ones, for the order */
    int64_t *serials;   /* every service and channel serial, for uniqueness */
    size_t nserials, capserials;
    bool ended;
} ld;

/* e and why from a restore call made before this one (not as an argument
 * of it: the order in which arguments are evaluated is unspecified). */
static bool restored(ld *l, cs_err e, uint64_t at, const char *why) {
    if (!e) return true;
    return fail(&l->r, e, at,
                e == CS_E_BAD_SNAPSHOT ? why : "out of memory");
}

static bool note_serial(ld *l, int64_t serial, uint64_t at) {
    if (serial < 1 || serial > l->serial)
        return fail(&l->r, CS_E_BAD_SNAPSHOT, at, "serial out of range");
    if (l->nserials == l->capserials) {
        size_t cap = l->capserials ? l->capserials * 2 : 64;
        int64_t *a = cs__malloc(l->r.s, cap * sizeof *a);
        if (!a) return fail(&l->r, CS_E_NOMEM, at, "out of memory");
        if (l->nserials) memcpy(a, l->serials, l->nserials * sizeof *a);
        cs__free(l->r.s, l->serials, l->capserials * sizeof *a);
        l->serials = a;
        l->capserials = cap;
    }
    l->serials[l->nserials++] = serial;
    return true;
}

static bool rec_service(ld *l, uint64_t at) {
    rd *r = &l->r;
    cs__svc_img img;
    img.sid = g_sid(r);
    for (int i = 0; i < 3; i++) img.role[i] = g_sid(r);
    img.serial = (int64_t)g_u64(r);
    img.dc = (int64_t)g_u64(r);
    img.du = (int64_t)g_u64(r);
    img.name = g_str(r);
    img.pre_url = img.post_url = CS_STR_ABSENT;
    img.method = img.pre_retry = img.post_retry = img.n_filters = 0;
    img.filters = NULL;
    if (l->version >= 3) { /* webhook settings; older images: defaults */
        img.pre_url = g_str(r);
        img.post_url = g_str(r);
        img.method = g_u8(r);
        img.pre_retry = g_u8(r);
        img.post_retry = g_u8(r);
        img.n_filters = g_u8(r);
        if (img.n_filters <= CS_WEBHOOK_EVENTS && need(r, img.n_filters)) {
            img.filters = r->blk + r->pos;
            r->pos += img.n_filters;
        }
    }
    if (r->err) return false;
    if (img.serial <= l->svc_serial)
        return fail(r, CS_E_BAD_SNAPSHOT, at, "services out of order");
    if (!note_serial(l, img.serial, at)) return false;
    const char *why;
    cs_service *v;
    cs_err e = cs__service_restore(r->s, &img, &v, &why);
    if (!restored(l, e, at, why)) return false;
    l->svc = v;
    l->chan = NULL;
    l->svc_serial = img.serial;
    l->chan_serial = 0;
    l->seen[0]++;
    return true;
}

static bool rec_media(ld *l, uint64_t at) {
    rd *r = &l->r;
    cs__media_img img;
    img.sid = g_sid(r);
    img.dc = (int64_t)g_u64(r);
    img.size = g_u64(r);
    uint8_t att = g_u8(r);
    img.chan = g_sid(r);
    img.msg = g_sid(r);
    img.ct = g_str(r);
    img.fn = g_str(r);
    if (r->err) return false;
    if (!l->svc || att > 1)
        return fail(r, CS_E_BAD_SNAPSHOT, at,
                    l->svc ? "media attached flag invalid"
                           : "media before any service");
    img.attached = att;
    const char *why;
    cs_err e = cs__media_restore(r->s, l->svc, &img, &why);
    if (!restored(l, e, at, why)) return false;
    l->seen[3]++;
    return true;
}

static bool rec_channel(ld *l, uint64_t at) {
    rd *r = &l->r;
    cs__chan_img img;
    img.sid = g_sid(r);
    img.serial = (int64_t)g_u64(r);
    img.dc = (int64_t)g_u64(r);
    img.du = (int64_t)g_u64(r);
    img.next_index = (int64_t)g_u64(r);
    img.type = g_u8(r);
    img.fn = g_str(r);
    img.un = g_str(r);
    img.attr = g_str(r);
    img.by = g_str(r);
    if (r->err) return false;
    if (!l->svc)
        return fail(r, CS_E_BAD_SNAPSHOT, at, "channel before any service");
    if (img.serial <= l->chan_serial)
        return fail(r, CS_E_BAD_SNAPSHOT, at, "channels out of order");
    if (!note_serial(l, img.serial, at)) return false;
    const char *why;
    cs_channel *c;
    cs_err e = cs__channel_restore(r->s, l->svc, &img, &c, &why);
    if (!restored(l, e, at, why)) return false;
    l->chan = c;
    l->chan_serial = img.serial;
    l->seen[1]++;
    return true;
}

static bool rec_message(ld *l, uint64_t at) {
    rd *r = &l->r;
    cs__msg_img img;
    uint64_t ix = g_u64(r);
    img.index = cs__ix_index(ix);
    img.epoch = cs__ix_epoch(ix);
    img.dc = (int64_t)g_u64(r);
    img.du = (int64_t)g_u64(r);
    uint8_t fl = g_u8(r);
    img.edited = fl & MF_EDITED;
    img.media = fl & MF_MEDIA ? g_sid(r) : NULL;
    img.from = g_str(r);
    img.body = g_str(r);
    img.attr = g_str(r);
    img.lub = g_str(r);
    if (r->err) return false;
    if (!l->chan || fl > (MF_EDITED | MF_MEDIA) || !img.body.ptr)
        return fail(r, CS_E_BAD_SNAPSHOT, at,
                    l->chan ? "message flags or body invalid"
                            : "message before any channel");
    const char *why;
    cs_err e = cs__message_restore(r->s, l->chan, &img, &why);
    if (!restored(l, e, at, why)) return false;
    l->seen[2]++;
    return true;
}

static bool rec_end_marker(ld *l, uint64_t at) {
    rd *r = &l->r;
    uint64_t c[4];
    for (int i = 0; i < 4; i++) c[i] = g_u64(r);
    if (r->err) return false;
    for (int i = 0; i < 4; i++)
        if (c[i] != l->counts[i] || l->seen[i] != l->counts[i])
            return fail(r, CS_E_BAD_SNAPSHOT, at,
                        "counts differ from the header");
    if (r->pos != r->len)
        return fail(r, CS_E_BAD_SNAPSHOT, r->blk_off + r->pos,
                    "bytes after the end marker");
    uint8_t extra;
    uint64_t off = r->off;
    if (read_some(r, &extra, 1) != 0)
        return fail(r, CS_E_BAD_SNAPSHOT, off, "bytes after the end marker");
    l->ended = true;
    return !r->err;
}

static bool load_records(ld *l) {
    rd *r = &l->r;
    while (!l->ended) {
        if (!next_block(r)) return false;
        while (r->pos < r->len && !l->ended) {
            uint64_t at = r->blk_off + r->pos;
            bool ok;
            switch (g_u8(r)) {
            case T_SERVICE: ok = rec_service(l, at); break;
            case T_MEDIA: ok = rec_media(l, at); break;
            case T_CHANNEL: ok = rec_channel(l, at); break;
            case T_MESSAGE: ok = rec_message(l, at); break;
            case T_END: ok = rec_end_marker(l, at); break;
            default:
                ok = fail(r, CS_E_BAD_SNAPSHOT, at, "unknown record type");
            }
            if (!ok) return false;
        }
    }
    return true;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The header; creates the store with the image's keys and account. */
static bool load_header(ld *l, const cs_options *opts, cs_store **out) {
    rd *r = &l->r;
    uint8_t h[HEADER_BYTES];
    if (!read_exact(r, h, HEADER_BYTES, "truncated header")) return false;
    if (memcmp(h, MAGIC, 8))
        return fail(r, CS_E_BAD_SNAPSHOT, 0, "not a chatstore snapshot");
    if (get_u32(h + 124) != cs__crc32c(0, h, 124))
        return fail(r, CS_E_BAD_SNAPSHOT, 124, "header checksum mismatch");
    uint32_t version = get_u32(h + 8);
    if (version < SNAP_VERSION_MIN || version > SNAP_VERSION)
        return fail(r, CS_E_BAD_SNAPSHOT, 8, "unknown snapshot version");
    /* Version 1 had a reserved 0 where 2 has the epoch, and indices below
     * 2^40: it reads as version 2 with every epoch 0. */
    if (get_u32(h + 12) != HEADER_BYTES || (version == 1 && get_u32(h + 120)))
        return fail(r, CS_E_BAD_SNAPSHOT, 12, "header layout unknown");
    if (get_u32(h + 120) > CS__EPOCH_MAX)
        return fail(r, CS_E_BAD_SNAPSHOT, 120, "epoch out of range");
    char acct[CS_SID_BUFSZ];
    cs__sid_format('A', 'C', h + 16, acct);
    cs_options o; /* a version 2 caller's struct is read up to its end */
    if (cs__options_read(opts, &o))
        return fail(r, CS_E_INVALID_ARGUMENT, 0, "store options invalid");
    if (o.account_sid) {
        uint8_t b[CS__SID_BYTES];
        if (cs__sid_parse(o.account_sid, strlen(o.account_sid), 'A', 'C', b) ||
            memcmp(b, h + 16, CS__SID_BYTES))
            return fail(r, CS_E_INVALID_ARGUMENT, 16,
                        "account SID differs from the image's");
    }
    o.account_sid = acct;
    o.use_seed = true; /* no random draw: the keys come from the image */
    o.seed = 0;
    cs_err e = cs_store_new(&o, out);
    if (e)
        return fail(r, e, 0,
                    e == CS_E_NOMEM ? "out of memory" : "store options invalid");
    cs_store *s = *out;
    r->s = s;
    cs__set_keys(s, h + 32, h + 48);
    l->version = version;
    s->sid_counter = get_u64(h + 64);
    s->epoch = get_u32(h + 120);
    l->serial = (int64_t)get_u64(h + 72);
    s->commits = get_u64(h + 80);
    for (int i = 0; i < 4; i++) l->counts[i] = get_u64(h + 88 + 8 * i);
    if (l->serial < 0)
        return fail(r, CS_E_BAD_SNAPSHOT, 72, "serial out of range");
    return true;
}

cs_err cs_snapshot_load(const cs_options *opts, cs_read_fn fn, void *ctx,
                        cs_store **out, cs_decode_error *err) {
    CS__REQUIRE(fn);
    CS__REQUIRE(out);
    *out = NULL;
    ld l;
    memset(&l, 0, sizeof l);
    l.r.fn = fn;
    l.r.ctx = ctx;
    cs_store *s = NULL;
    bool ok = load_header(&l, opts, &s);
    cs_limits lim = s ? s->lim : (cs_limits)CS_LIMITS_DEFAULT;
    if (ok) {
        s->lim = cs__lifted_limits;
        ok = load_records(&l);
        s->lim = lim;
    }
    if (ok) {
        if (l.nserials > 1)
            qsort(l.serials, l.nserials, sizeof *l.serials, cmp_i64);
        for (size_t i = 1; i < l.nserials; i++)
            if (l.serials[i] == l.serials[i - 1])
                ok = fail(&l.r, CS_E_BAD_SNAPSHOT, 72,
                          "a serial appears twice");
    }
    /* No cs_store_check here (O(store), a quarter of the load): every
     * object was built by the code paths the creates use, after the checks
     * above; fuzz_snapshot runs the checker after every load it makes. */
    if (ok) s->serial = l.serial;
    if (s) {
        cs__free(s, l.r.blk, l.r.cap);
        cs__free(s, l.serials, l.capserials * sizeof *l.serials);
    }
    if (!ok) {
        if (err) {
            err->offset = l.r.why_off;
            err->reason = l.r.why;
        }
        cs_store_free(s);
        return l.r.err;
    }
    *out = s;
    return CS_OK;
}
