/* Messages: create, fetch, update (edit tracking), delete.
 *
 * A message is one record in its channel's arena (arena.c): the fixed
 * fields followed by From, the body and, when not the default "{}", the
 * attributes, then pointers to LastUpdatedBy and media for the messages
 * that have them. From lives in the record rather than as a shared
 * interned string: a short name costs about what the pointer to it would,
 * and reading a page then touches only the channel's chunks. There is no
 * store-wide table of messages: the SID encodes (channel serial, index,
 * epoch) under a keyed permutation, so a fetch opens the SID, looks the
 * index up in the channel and finds the message only if it was created in
 * the SID's epoch (a SID of a message lost with the journal's tail names an
 * index that a later message may hold). Indices stay below 2^40, the epoch
 * sits above them in the record's ix. An update whose new record fits the
 * old one's space rewrites it in place; otherwise a new record is built and
 * swapped in. Each mutating call resolves its SIDs, then runs
 * cs__message_*_in, which journal replay calls directly with the objects it
 * looked up by SID bytes (cs__message_find: the same epoch check as a
 * fetch): everything after the lookups (checks, errors, effects) is one
 * code path. The view of a change is built only for observers or out.
 * A media item goes with its message: the delete unlinks it and frees it
 * once the delete's observers are done with the view. Creates and updates
 * run inside the byte quota's bracket (cs__quota_begin). */
#include "internal.h"

#include <stddef.h>


/* The shape of a record: its texts and which optional pointers it has. */
typedef struct shape {
    cs_str from, body, attr; /* attr.len 0: the default */
    cs_ident *lub;
    cs_media *media;
} shape;

static size_t shape_bytes(const shape *h) {
    return cs__msg_ext_off(h->from.len, h->body.len, h->attr.len) +
           (h->lub ? sizeof(cs_ident *) : 0) +
           (h->media ? sizeof(cs_media *) : 0);
}

static shape shape_of(const cs_msg *m) {
    shape h;
    h.from = (cs_str){cs__msg_from(m), m->from_len};
    h.body = (cs_str){cs__msg_body(m), m->body_len};
    h.attr = (cs_str){cs__msg_attr(m), m->attr_len};
    h.lub = cs__msg_lub(m);
    h.media = cs__msg_media(m);
    return h;
}

/* Writes the shape into m, whose space holds it. Values outside m are
 * copied in; a value inside m (kept from the record itself) must already
 * sit where the new layout puts it, except the attributes, which are moved
 * (before the body is written over their old place). */
static void put_shape(cs_msg *m, const shape *h) {
    uint32_t fl = (uint32_t)h->from.len, bl = (uint32_t)h->body.len;
    uint32_t al = (uint32_t)h->attr.len;
    char *from = m->data, *body = from + fl + 1, *attr = body + bl + 1;
    if (al && h->attr.ptr != attr) memmove(attr, h->attr.ptr, al);
    if (h->from.ptr != from) memcpy(from, h->from.ptr, fl);
    from[fl] = '\0';
    if (bl && h->body.ptr != body) memcpy(body, h->body.ptr, bl);
    body[bl] = '\0';
    if (al) attr[al] = '\0';
    m->from_len = fl;
    m->body_len = bl;
    m->attr_len = al;
    char *ext = (char *)m + cs__msg_ext_off(fl, bl, al);
    m->flags &= (uint8_t) ~(CS__M_LUB | CS__M_MEDIA);
    if (h->lub) {
        memcpy(ext, &h->lub, sizeof h->lub);
        ext += sizeof h->lub;
        m->flags |= CS__M_LUB;
    }
    if (h->media) {
        memcpy(ext, &h->media, sizeof h->media);
        m->flags |= CS__M_MEDIA;
    }
}

static void msg_free(cs_store *s, cs_channel *c, cs_msg *m) {
    cs__ident_put(s, cs__msg_lub(m));
    cs__arena_release(s, &c->arena, m);
}

void cs__message_view(const cs_store *s, const cs_channel *c, const cs_msg *m,
                      cs_message_view *out) {
    cs__sid_format('I', 'M', m->sidb, out->sid);
    out->account_sid = s->account_sid;
    out->service_sid = c->svc->sid;
    out->channel_sid = c->sid;
    out->attributes = m->attr_len ? (cs_str){cs__msg_attr(m), m->attr_len}
                                  : (cs_str){"{}", 2};
    out->date_created = m->date_created;
    out->date_updated = m->date_updated;
    const cs_ident *lub = cs__msg_lub(m);
    out->last_updated_by = lub ? (cs_str){lub->str, lub->len} : CS_STR_ABSENT;
    out->was_edited = (m->flags & CS__M_EDITED) != 0;
    out->from = (cs_str){cs__msg_from(m), m->from_len};
    out->body = (cs_str){cs__msg_body(m), m->body_len};
    out->index = cs__msg_index(m);
    const cs_media *me = cs__msg_media(m);
    out->type = me ? CS_MESSAGE_MEDIA : CS_MESSAGE_TEXT;
    out->has_media = me != NULL;
    if (me) {
        cs__sid_format('M', 'E', me->sidb, out->media.sid);
        out->media.size = me->size;
        out->media.content_type = (cs_str){me->content_type, me->ct_len};
        out->media.filename = (cs_str){me->filename, me->fn_len};
    } else {
        memset(&out->media, 0, sizeof out->media);
    }
}

/* ---- validation --------------------------------------------------------- */

typedef struct msg_input {
    cs_webhook wh;
    int64_t dc, du;
    cs_media *media;
} msg_input;

static cs_err check_body(const cs_store *s, cs_str b) {
    if (!b.ptr) return CS_OK;
    if (b.len > s->lim.body_bytes) return CS_E_BODY_TOO_LONG;
    return cs__utf8_valid(b.ptr, b.len) ? CS_OK : CS_E_BAD_UTF8;
}

static cs_err check_media(const cs_channel *c, cs_str sid, msg_input *in) {
    uint8_t b[CS__SID_BYTES];
    in->media = NULL;
    if (!sid.ptr) return CS_OK;
    if (cs__sid_parse(sid.ptr, sid.len, 'M', 'E', b)) return CS_E_BAD_MEDIA_SID;
    in->media = cs__media_find(c->svc, b);
    if (!in->media) return CS_E_MEDIA_NOT_FOUND;
    return in->media->attached ? CS_E_MEDIA_IN_USE : CS_OK;
}

static cs_err validate(const cs_store *s, const cs_channel *c,
                       const cs_message_params *p, bool create,
                       msg_input *in) {
    const cs_limits *l = &s->lim;
    cs_err e;
    if ((e = cs__webhook_of(p->webhook, p->webhook_value, &in->wh)))
        return e;
    if ((e = check_body(s, p->body))) return e;
    if ((e = cs__check_attributes(s, p->attributes))) return e;
    if ((e = cs__check_text(p->from, l->identity_chars, CS_E_FROM_TOO_LONG)))
        return e;
    if ((e = cs__check_text(p->last_updated_by, l->identity_chars,
                            CS_E_LAST_UPDATED_BY_TOO_LONG)))
        return e;
    if ((e = cs__check_date(p->date_created, CS_E_BAD_DATE_CREATED, &in->dc)))
        return e;
    if ((e = cs__check_date(p->date_updated, CS_E_BAD_DATE_UPDATED, &in->du)))
        return e;
    return create ? check_media(c, p->media_sid, in) : CS_OK;
}

/* ---- record building ---------------------------------------------------- */

/* Attributes equal to the default are not stored: "{}" costs nothing. */
static cs_str stored_attr(cs_str a) {
    if (!a.ptr || (a.len == 2 && a.ptr[0] == '{' && a.ptr[1] == '}'))
        return (cs_str){"", 0};
    return a;
}

/* An empty From means "system". */
static cs_str from_value(cs_str v) {
    return v.len ? v : (cs_str){"system", 6};
}

/* A new record in c's arena with the given shape, other fields zero, not
 * linked anywhere. */
static cs_msg *record_new(cs_store *s, cs_channel *c, const shape *h) {
    cs_msg *m = cs__arena_alloc(s, &c->arena, shape_bytes(h));
    if (!m) return NULL;
    uint32_t cap = m->cap, chunk = m->chunk;
    memset(m, 0, offsetof(cs_msg, data));
    m->cap = cap;
    m->chunk = chunk;
    m->flags = CS__M_LIVE;
    put_shape(m, h);
    return m;
}

/* ---- create ------------------------------------------------------------- */

/* The parameters a journal record carries, as given. */
static void journal_params(cs__jr *r, const cs_message_params *p) {
    r->str[0] = p->from;
    r->str[1] = p->attributes;
    r->str[2] = p->date_created;
    r->str[3] = p->date_updated;
    r->str[4] = p->last_updated_by;
    r->str[5] = p->body;
}

static cs_err message_create(cs_store *s, cs_str service_sid, cs_str channel,
                             const cs_message_params *p,
                             cs_message_view *out) {
    cs_channel *c;
    cs_err e = cs__resolve_channel(s, service_sid, channel, &c);
    if (e) return e;
    return cs__message_create_in(s, c, p, NULL, out);
}

cs_err cs__message_create_in(cs_store *s, cs_channel *c,
                             const cs_message_params *p, const uint8_t *sid,
                             cs_message_view *out) {
    msg_input in;
    cs_err e;
    if ((e = validate(s, c, p, true, &in))) return e;
    /* Indices stay below 2^40: the bits above are the SID epoch's. */
    if (c->next_index >= CS__INDEX_MAX) return CS_E_LIMIT_EXCEEDED;
    if (cs__at_quota(s, s->n_messages, s->lim.max_messages))
        return CS_E_QUOTA_MESSAGES;
    if ((e = cs__dix_reserve(s, &c->msgs, c->next_index))) return e;
    shape h = {from_value(p->from), p->body.ptr ? p->body : (cs_str){"", 0},
               stored_attr(p->attributes), NULL, in.media};
    if (p->last_updated_by.ptr && p->last_updated_by.len &&
        cs__ident_get(s, p->last_updated_by.ptr, p->last_updated_by.len,
                      &h.lub))
        return CS_E_NOMEM;
    /* The record comes last: the reference is the cheaper one to undo. */
    cs_msg *m = record_new(s, c, &h);
    if (!m) {
        cs__ident_put(s, h.lub);
        return CS_E_NOMEM;
    }
    int64_t now = cs__now(s);
    m->ix = cs__ix(c->next_index, s->epoch);
    if (sid) /* replay: the SID its state check computed for this ix */
        memcpy(m->sidb, sid, CS__SID_BYTES);
    else
        cs__msg_sid(s, c->serial, m->ix, m->sidb);
    if (cs__journaled(s)) {
        cs__jr r = {.op = CS__J_MESSAGE_CREATE, .now = now,
                    .counter0 = s->sid_counter, .svc = c->svc->sidb,
                    .chan = c->sidb, .created = m->sidb, .wh = in.wh,
                    .index = c->next_index};
        journal_params(&r, p);
        r.str[6] = p->media_sid;
        if ((e = cs__journal(s, &r))) {
            cs__arena_release(s, &c->arena, m);
            cs__ident_put(s, h.lub);
            return e;
        }
    }
    /* Everything is allocated and journaled: from here on nothing can
     * fail. */
    c->next_index++;
    m->date_created = p->date_created.ptr ? in.dc : now;
    m->date_updated = p->date_updated.ptr ? in.du : m->date_created;
    if (in.media) {
        in.media->attached = true;
        memcpy(in.media->msg_sid, m->sidb, CS__SID_BYTES);
        memcpy(in.media->chan_sid, c->sidb, CS__SID_BYTES);
    }
    cs__dix_append(&c->msgs, cs__msg_index(m), m);
    s->n_messages++;
    cs_message_view v;
    cs_event ev = {.type = CS_EVENT_MESSAGE_CREATED, .webhook = in.wh};
    if (cs__observed(s) || out) {
        cs__message_view(s, c, m, &v);
        ev.message = &v;
    }
    cs__commit(s, &ev);
    if (out) *out = v;
    return CS_OK;
}

cs_err cs_message_create(cs_store *s, cs_str service_sid, cs_str channel,
                         const cs_message_params *p, cs_message_view *out) {
    CS__REQUIRE(s);
    if (!p) p = &cs__no_message_params;
    if (s->in_observer) return CS_E_REENTRANT;
    cs__quota_begin(s);
    return cs__quota_end(s, message_create(s, service_sid, channel, p, out));
}

/* ---- restore (snapshot.c) ----------------------------------------------- */

cs_err cs__message_restore(cs_store *s, cs_channel *c, const cs__msg_img *img,
                           const char **why) {
    const cs_limits *l = &s->lim;
    *why = NULL;
    cs_media *me = NULL;
    uint8_t sid[CS__SID_BYTES];
    cs__msg_sid(s, c->serial, cs__ix(img->index, img->epoch), sid);
    /* Restores only append: the last key appended is the largest. */
    if (img->index < 0 || img->index >= c->next_index ||
        (c->msgs.count && img->index <= c->msgs.last))
        *why = "message index out of order";
    else if (img->epoch > s->epoch)
        *why = "message epoch above the store's";
    else if (check_body(s, img->body) || !img->from.ptr || !img->from.len ||
             cs__check_text(img->from, l->identity_chars, CS_E_FROM_TOO_LONG) ||
             cs__check_text(img->lub, l->identity_chars, CS_E_FROM_TOO_LONG) ||
             (img->lub.ptr && !img->lub.len) ||
             cs__check_attributes(s, img->attr))
        *why = "message text invalid";
    else if (!cs__time_ok(img->dc) || !cs__time_ok(img->du))
        *why = "message date out of range";
    else if (img->media &&
             (!(me = cs__media_find(c->svc, img->media)) || !me->attached ||
              memcmp(me->msg_sid, sid, CS__SID_BYTES) ||
              memcmp(me->chan_sid, c->sidb, CS__SID_BYTES)))
        *why = "message media missing or attached elsewhere";
    if (*why) return CS_E_BAD_SNAPSHOT;
    cs_err e = cs__dix_reserve(s, &c->msgs, img->index);
    if (e == CS_E_NOMEM) return e;
    if (e) {
        *why = "message index out of order";
        return CS_E_BAD_SNAPSHOT;
    }
    shape h = {img->from, img->body.ptr ? img->body : (cs_str){"", 0},
               stored_attr(img->attr), NULL, me};
    if (img->lub.ptr && cs__ident_get(s, img->lub.ptr, img->lub.len, &h.lub))
        return CS_E_NOMEM;
    cs_msg *m = record_new(s, c, &h);
    if (!m) {
        cs__ident_put(s, h.lub);
        return CS_E_NOMEM;
    }
    memcpy(m->sidb, sid, CS__SID_BYTES);
    m->ix = cs__ix(img->index, img->epoch);
    m->date_created = img->dc;
    m->date_updated = img->du;
    if (img->edited) m->flags |= CS__M_EDITED;
    cs__dix_append(&c->msgs, img->index, m);
    s->n_messages++;
    return CS_OK;
}

/* ---- fetch -------------------------------------------------------------- */

cs_msg *cs__message_find(const cs_store *s, const cs_channel *c,
                         const uint8_t *b) {
    int64_t serial;
    uint64_t ix;
    cs__msg_sid_open(s, b, &serial, &ix);
    if (serial != c->serial) return NULL;
    cs_msg *m = cs__dix_find(&c->msgs, cs__ix_index(ix));
    /* A SID of another epoch (a message lost with the journal's tail whose
     * index a later message took) is not this message's: m->ix differs. */
    return m && m->ix == ix ? m : NULL;
}

/* The message with this SID in channel c, or NULL. */
static cs_msg *find_in(const cs_store *s, const cs_channel *c, cs_str sid) {
    uint8_t b[CS__SID_BYTES];
    if (!sid.ptr || cs__sid_parse(sid.ptr, sid.len, 'I', 'M', b)) return NULL;
    return cs__message_find(s, c, b);
}

static cs_err resolve(const cs_store *s, cs_str service_sid, cs_str channel,
                      cs_str sid, cs_channel **c, cs_msg **out) {
    cs_err e = cs__resolve_channel(s, service_sid, channel, c);
    if (e) return e;
    *out = find_in(s, *c, sid);
    return *out ? CS_OK : CS_E_NOT_FOUND;
}

cs_err cs_message_fetch(const cs_store *s, cs_str service_sid, cs_str channel,
                        cs_str message_sid, cs_message_view *out) {
    CS__REQUIRE(s);
    cs_channel *c;
    cs_msg *m;
    cs_err e = resolve(s, service_sid, channel, message_sid, &c, &m);
    if (e) return e;
    if (out) cs__message_view(s, c, m, out);
    return CS_OK;
}

/* ---- update ------------------------------------------------------------- */

static bool any_param(const cs_message_params *p) {
    return p->body.ptr || p->attributes.ptr || p->date_created.ptr ||
           p->date_updated.ptr || p->last_updated_by.ptr || p->from.ptr;
}

static bool body_changes(const cs_msg *m, cs_str body) {
    return body.ptr && (body.len != m->body_len ||
                        memcmp(body.ptr, cs__msg_body(m), body.len));
}

static bool points_into(const cs_msg *m, cs_str v) {
    uintptr_t lo = (uintptr_t)m, hi = lo + m->cap, p = (uintptr_t)v.ptr;
    return v.ptr && p >= lo && p < hi;
}

/* Whether the new shape can be written over m: it fits m's space (and
 * would not leave most of it unused), From and body that stay keep their
 * place, and no new value points into m. New values may point into a view
 * of this very record (views stay valid until the next mutating call):
 * writing over them while reading them would corrupt both. Those edits take
 * the rebuild way, which reads the old record before releasing it. */
static bool fits_in_place(const cs_msg *m, const cs_message_params *p,
                          const shape *h) {
    if (points_into(m, p->from) || points_into(m, p->body) ||
        points_into(m, p->attributes))
        return false;
    if (h->from.len != m->from_len) return false; /* the body would move */
    size_t need = (shape_bytes(h) + 7) & ~(size_t)7;
    return need <= m->cap && need * 2 >= m->cap;
}

/* Puts n where m was in the channel's index and releases m. */
static void swap_record(cs_store *s, cs_channel *c, cs_msg *m, cs_msg *n) {
    cs__dix_set(&c->msgs, cs__msg_index(m), n);
    cs__arena_release(s, &c->arena, m);
}

static cs_err message_update(cs_store *s, cs_str service_sid, cs_str channel,
                             cs_str message_sid, const cs_message_params *p,
                             cs_message_view *out) {
    cs_channel *c;
    cs_msg *m;
    cs_err e = resolve(s, service_sid, channel, message_sid, &c, &m);
    if (e) return e;
    return cs__message_update_in(s, c, m, p, out);
}

cs_err cs__message_update_in(cs_store *s, cs_channel *c, cs_msg *m,
                             const cs_message_params *p,
                             cs_message_view *out) {
    msg_input in;
    cs_err e;
    if ((e = validate(s, c, p, false, &in))) return e;
    if (!any_param(p)) {
        if (out) cs__message_view(s, c, m, out);
        return CS_OK;
    }
    if (cs__msg_media(m) && body_changes(m, p->body))
        return CS_E_MEDIA_BODY_IMMUTABLE;
    shape h = shape_of(m);
    cs_ident *old_lub = h.lub, *taken = NULL;
    if (p->from.ptr) h.from = from_value(p->from);
    if (p->body.ptr) h.body = p->body;
    if (p->attributes.ptr) h.attr = stored_attr(p->attributes);
    if (p->last_updated_by.ptr) {
        /* The new identity is taken before anything changes; an empty
         * value clears it. */
        if (p->last_updated_by.len &&
            cs__ident_get(s, p->last_updated_by.ptr, p->last_updated_by.len,
                          &taken))
            return CS_E_NOMEM;
        h.lub = taken;
    }
    int64_t now = cs__now(s);
    cs__jr r = {.op = CS__J_MESSAGE_UPDATE, .now = now,
                .counter0 = s->sid_counter, .svc = c->svc->sidb,
                .chan = c->sidb, .msg = m->sidb, .wh = in.wh};
    journal_params(&r, p);
    if (fits_in_place(m, p, &h)) {
        if ((e = cs__journal(s, &r))) {
            cs__ident_put(s, taken);
            return e;
        }
        put_shape(m, &h);
    } else {
        cs_msg *n = record_new(s, c, &h);
        if (!n) {
            cs__ident_put(s, taken);
            return CS_E_NOMEM;
        }
        if ((e = cs__journal(s, &r))) {
            cs__arena_release(s, &c->arena, n);
            cs__ident_put(s, taken);
            return e;
        }
        memcpy(n->sidb, m->sidb, CS__SID_BYTES);
        n->ix = m->ix;
        n->date_created = m->date_created;
        n->date_updated = m->date_updated;
        n->flags |= m->flags & CS__M_EDITED;
        swap_record(s, c, m, n);
        m = n;
    }
    if (p->last_updated_by.ptr) cs__ident_put(s, old_lub);
    if (p->date_created.ptr) m->date_created = in.dc;
    m->date_updated = p->date_updated.ptr ? in.du : now;
    m->flags |= CS__M_EDITED;
    cs_message_view v;
    cs_event ev = {.type = CS_EVENT_MESSAGE_UPDATED, .webhook = in.wh};
    if (cs__observed(s) || out) {
        cs__message_view(s, c, m, &v);
        ev.message = &v;
    }
    cs__commit(s, &ev);
    if (out) *out = v;
    /* A rebuilt record is at the tail, which a tidy never moves; an edit in
     * place releases nothing, so there is nothing to tidy. */
    cs__arena_tidy(s, c);
    return CS_OK;
}

cs_err cs_message_update(cs_store *s, cs_str service_sid, cs_str channel,
                         cs_str message_sid, const cs_message_params *p,
                         cs_message_view *out) {
    CS__REQUIRE(s);
    if (!p) p = &cs__no_message_params;
    if (s->in_observer) return CS_E_REENTRANT;
    cs__quota_begin(s);
    return cs__quota_end(
        s, message_update(s, service_sid, channel, message_sid, p, out));
}

/* ---- delete ------------------------------------------------------------- */

cs_err cs_message_delete(cs_store *s, cs_str service_sid, cs_str channel,
                         cs_str message_sid, cs_str webhook) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs_channel *c;
    cs_msg *m;
    cs_err e = resolve(s, service_sid, channel, message_sid, &c, &m);
    if (e) return e;
    cs_webhook wh;
    if ((e = cs__parse_webhook(webhook, &wh))) return e;
    return cs__message_delete_in(s, c, m, wh);
}

cs_err cs__message_delete_in(cs_store *s, cs_channel *c, cs_msg *m,
                             cs_webhook wh) {
    cs_err e;
    if (cs__journaled(s)) {
        cs__jr r = {.op = CS__J_MESSAGE_DELETE, .counter0 = s->sid_counter,
                    .svc = c->svc->sidb, .chan = c->sidb, .msg = m->sidb,
                    .wh = wh};
        if ((e = cs__journal(s, &r))) return e;
    }
    cs__dix_remove(s, &c->msgs, cs__msg_index(m));
    s->n_messages--;
    cs_ident *lub = cs__msg_lub(m);
    cs_media *media = cs__msg_media(m);
    if (media) cs__media_unlink(s, media);
    cs_event ev = {.type = CS_EVENT_MESSAGE_DELETED, .webhook = wh};
    ev.removed_messages = 1;
    ev.removed_media = media != NULL;
    if (cs__observed(s)) {
        /* Observers run after the commit: the message's reference to its
         * identity is dropped first, and the record (whose text the view
         * borrows) is released afterwards. */
        cs_message_view v;
        cs__message_view(s, c, m, &v);
        bool free_lub = cs__ident_release(s, lub);
        ev.message = &v;
        s->dying = m;
        cs__commit(s, &ev);
        s->dying = NULL;
        if (free_lub) cs__ident_free(s, lub);
        cs__arena_release(s, &c->arena, m);
    } else {
        msg_free(s, c, m);
        cs__commit(s, &ev); /* numbers the change; nobody to notify */
    }
    if (media) cs__media_destroy(s, media);
    cs__arena_tidy(s, c);
    return CS_OK;
}
