/* Messages: create, fetch, update (edit tracking), delete.
 *
 * A message is one allocation: the fixed record followed by its body and,
 * when not the default "{}", its attributes. Identities are interned, so a
 * thousand messages from "alice" hold one copy of the name. An update that
 * changes body or attributes builds a new record and swaps it in; other
 * updates change the record in place. */
#include "internal.h"

#include <stddef.h>

cs_media *cs__media_find(const cs_service *svc, const uint8_t *b);

static size_t msg_bytes(uint32_t body_len, uint32_t attr_len) {
    /* The text starts at data, which may lie inside the struct's padding. */
    return offsetof(cs_msg, data) + body_len + 1 +
           (attr_len ? attr_len + 1 : 0);
}

/* Allocations come in 16-byte steps (malloc's own granularity), so the
 * slack an edit can reuse costs nothing. */
static size_t msg_alloc_bytes(uint32_t body_len, uint32_t attr_len) {
    return (msg_bytes(body_len, attr_len) + 15) & ~(size_t)15;
}

static const char *msg_attr(const cs_msg *m) {
    return m->data + m->body_len + 1;
}

void cs__msg_free(cs_store *s, cs_msg *m) {
    cs__ident_put(s, m->from);
    cs__ident_put(s, m->lub);
    cs__free(s, m, m->cap);
}

void cs__message_view(const cs_store *s, const cs_msg *m,
                      cs_message_view *out) {
    const cs_channel *c = m->chan;
    cs__sid_format('I', 'M', m->sidb, out->sid);
    out->account_sid = s->account_sid;
    out->service_sid = c->svc->sid;
    out->channel_sid = c->sid;
    out->attributes = m->attr_len ? (cs_str){msg_attr(m), m->attr_len}
                                  : (cs_str){"{}", 2};
    out->date_created = m->date_created;
    out->date_updated = m->date_updated;
    out->last_updated_by = m->lub ? (cs_str){m->lub->str, m->lub->len}
                                  : CS_STR_ABSENT;
    out->was_edited = m->was_edited;
    out->from = (cs_str){m->from->str, m->from->len};
    out->body = (cs_str){m->data, m->body_len};
    out->index = m->index;
    out->type = m->media ? CS_MESSAGE_MEDIA : CS_MESSAGE_TEXT;
    out->has_media = m->media != NULL;
    if (m->media) {
        const cs_media *me = m->media;
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
    if ((e = cs__parse_webhook(p->webhook, &in->wh))) return e;
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
static uint32_t stored_attr_len(cs_str a) {
    if (!a.ptr || (a.len == 2 && a.ptr[0] == '{' && a.ptr[1] == '}')) return 0;
    return (uint32_t)a.len;
}

static cs_msg *record_new(cs_store *s, cs_str body, cs_str attr) {
    uint32_t bl = body.ptr ? (uint32_t)body.len : 0;
    uint32_t al = stored_attr_len(attr);
    size_t cap = msg_alloc_bytes(bl, al);
    cs_msg *m = cs__malloc(s, cap);
    if (!m) return NULL;
    memset(m, 0, offsetof(cs_msg, data));
    m->body_len = bl;
    m->attr_len = al;
    m->cap = (uint32_t)cap;
    if (bl) memcpy(m->data, body.ptr, bl);
    m->data[bl] = '\0';
    if (al) {
        memcpy(m->data + bl + 1, attr.ptr, al);
        m->data[bl + 1 + al] = '\0';
    }
    return m;
}

/* Interned identity for a given value; an empty From means "system". */
static cs_err ident_for(cs_store *s, cs_str v, const char *dflt,
                        cs_ident **out) {
    if (!v.len) return cs__ident_get(s, dflt, strlen(dflt), out);
    return cs__ident_get(s, v.ptr, v.len, out);
}

/* ---- create ------------------------------------------------------------- */

static cs_err alloc_message(cs_store *s, const cs_message_params *p,
                            cs_msg **out) {
    cs_msg *m = record_new(s, p->body, p->attributes);
    if (!m) return CS_E_NOMEM;
    if (ident_for(s, p->from, "system", &m->from)) goto oom;
    if (p->last_updated_by.ptr && p->last_updated_by.len &&
        cs__ident_get(s, p->last_updated_by.ptr, p->last_updated_by.len,
                      &m->lub))
        goto oom;
    *out = m;
    return CS_OK;
oom:
    cs__msg_free(s, m);
    return CS_E_NOMEM;
}

cs_err cs_message_create(cs_store *s, cs_str service_sid, cs_str channel,
                         const cs_message_params *p, cs_message_view *out) {
    if (s->in_observer) return CS_E_REENTRANT;
    cs_channel *c;
    cs_err e = cs__resolve_channel(s, service_sid, channel, &c);
    if (e) return e;
    msg_input in;
    if ((e = validate(s, c, p, true, &in))) return e;
    if ((e = cs__msgtab_reserve(s, &s->msgs))) return e;
    if ((e = cs__seq_reserve(s, &c->msgs))) return e;
    cs_msg *m;
    if ((e = alloc_message(s, p, &m))) return e;
    /* Everything is allocated: from here on nothing can fail. A SID that
     * is already taken (never seen: 128 PRF bits) is drawn again. */
    do
        cs__new_sid(s, m->sidb);
    while (!cs__msgtab_insert(s, &s->msgs, m));
    m->chan = c;
    m->index = c->next_index++;
    m->date_created = p->date_created.ptr ? in.dc : cs__now(s);
    m->date_updated = p->date_updated.ptr ? in.du : m->date_created;
    m->media = in.media;
    if (in.media) {
        in.media->attached = true;
        memcpy(in.media->msg_sid, m->sidb, CS__SID_BYTES);
        memcpy(in.media->chan_sid, c->sidb, CS__SID_BYTES);
    }
    cs__seq_append(&c->msgs, m->index, m);
    cs_message_view v;
    cs__message_view(s, m, &v);
    cs__notify(s, CS_EVENT_MESSAGE_CREATED, in.wh, &v, NULL);
    if (out) *out = v;
    return CS_OK;
}

/* ---- fetch -------------------------------------------------------------- */

/* The message with this SID in channel c, or NULL. */
static cs_msg *find_in(const cs_store *s, const cs_channel *c, cs_str sid) {
    uint8_t b[CS__SID_BYTES];
    if (!sid.ptr || cs__sid_parse(sid.ptr, sid.len, 'I', 'M', b)) return NULL;
    cs_msg *m = cs__msgtab_find(&s->msgs, b);
    return (m && m->chan == c) ? m : NULL;
}

static cs_err resolve(const cs_store *s, cs_str service_sid, cs_str channel,
                      cs_str sid, cs_msg **out) {
    cs_channel *c;
    cs_err e = cs__resolve_channel(s, service_sid, channel, &c);
    if (e) return e;
    *out = find_in(s, c, sid);
    return *out ? CS_OK : CS_E_NOT_FOUND;
}

cs_err cs_message_fetch(const cs_store *s, cs_str service_sid, cs_str channel,
                        cs_str message_sid, cs_message_view *out) {
    cs_msg *m;
    cs_err e = resolve(s, service_sid, channel, message_sid, &m);
    if (e) return e;
    if (out) cs__message_view(s, m, out);
    return CS_OK;
}

/* ---- update ------------------------------------------------------------- */

static bool any_param(const cs_message_params *p) {
    return p->body.ptr || p->attributes.ptr || p->date_created.ptr ||
           p->date_updated.ptr || p->last_updated_by.ptr || p->from.ptr;
}

static bool body_changes(const cs_msg *m, cs_str body) {
    return body.ptr &&
           (body.len != m->body_len || memcmp(body.ptr, m->data, body.len));
}

/* New identities for the update, taken before anything changes. */
typedef struct upd_idents {
    cs_ident *from, *lub;
} upd_idents;

static cs_err take_idents(cs_store *s, const cs_message_params *p,
                          upd_idents *u) {
    u->from = u->lub = NULL;
    if (p->from.ptr && ident_for(s, p->from, "system", &u->from))
        return CS_E_NOMEM;
    if (p->last_updated_by.ptr && p->last_updated_by.len &&
        cs__ident_get(s, p->last_updated_by.ptr, p->last_updated_by.len,
                      &u->lub)) {
        cs__ident_put(s, u->from);
        return CS_E_NOMEM;
    }
    return CS_OK;
}

/* A copy of m with the new body and/or attributes, same links. */
static cs_msg *rebuild(cs_store *s, const cs_msg *m,
                       const cs_message_params *p) {
    cs_str body = p->body.ptr ? p->body : (cs_str){m->data, m->body_len};
    cs_str attr = p->attributes.ptr ? p->attributes
                  : m->attr_len     ? (cs_str){msg_attr(m), m->attr_len}
                                    : CS_STR_ABSENT;
    cs_msg *n = record_new(s, body, attr);
    if (!n) return NULL;
    uint32_t bl = n->body_len, al = n->attr_len, cap = n->cap;
    memcpy(n, m, offsetof(cs_msg, data));
    n->body_len = bl;
    n->attr_len = al;
    n->cap = cap;
    return n;
}

/* Rewrites body and/or attributes inside m when they fit its allocation
 * (and would not leave most of it unused). Nothing is allocated, so this
 * cannot fail; false when it does not fit. */
static bool rewrite_in_place(cs_msg *m, const cs_message_params *p) {
    /* New values may point into a view of this very record (views stay
     * valid until the next mutating call): writing over them while reading
     * them would corrupt both. Those edits take the rebuild way, which reads
     * the old record before freeing it. */
    uintptr_t lo = (uintptr_t)m, hi = lo + m->cap;
    if ((p->body.ptr && (uintptr_t)p->body.ptr >= lo &&
         (uintptr_t)p->body.ptr < hi) ||
        (p->attributes.ptr && (uintptr_t)p->attributes.ptr >= lo &&
         (uintptr_t)p->attributes.ptr < hi))
        return false;
    uint32_t bl = p->body.ptr ? (uint32_t)p->body.len : m->body_len;
    uint32_t al = p->attributes.ptr ? stored_attr_len(p->attributes)
                                    : m->attr_len;
    size_t need = msg_alloc_bytes(bl, al);
    if (need > m->cap || need * 2 < m->cap) return false;
    if (al && !p->attributes.ptr && bl != m->body_len) /* keep attributes */
        memmove(m->data + bl + 1, m->data + m->body_len + 1, al + 1);
    if (p->body.ptr) {
        if (bl) memcpy(m->data, p->body.ptr, bl);
        m->data[bl] = '\0';
    }
    if (al && p->attributes.ptr) {
        memcpy(m->data + bl + 1, p->attributes.ptr, al);
        m->data[bl + 1 + al] = '\0';
    }
    m->body_len = bl;
    m->attr_len = al;
    return true;
}

/* Puts n where m was: hash chain and the channel's index. */
static void swap_record(cs_store *s, cs_msg *m, cs_msg *n) {
    cs__msgtab_replace(&s->msgs, m, n);
    cs_seq *q = &m->chan->msgs;
    cs_seq_pos pos;
    if (cs__seq_after(q, m->index - 1, &pos))
        cs__seq_set(q, pos, n);
    cs__free(s, m, m->cap);
}

static void apply_fields(cs_store *s, cs_msg *m, const cs_message_params *p,
                         const msg_input *in, upd_idents *u) {
    if (p->from.ptr) {
        cs__ident_put(s, m->from);
        m->from = u->from;
    }
    if (p->last_updated_by.ptr) {
        cs__ident_put(s, m->lub);
        m->lub = u->lub; /* an empty value clears it */
    }
    if (p->date_created.ptr) m->date_created = in->dc;
    m->date_updated = p->date_updated.ptr ? in->du : cs__now(s);
    m->was_edited = true;
}

cs_err cs_message_update(cs_store *s, cs_str service_sid, cs_str channel,
                         cs_str message_sid, const cs_message_params *p,
                         cs_message_view *out) {
    if (s->in_observer) return CS_E_REENTRANT;
    cs_msg *m;
    cs_err e = resolve(s, service_sid, channel, message_sid, &m);
    if (e) return e;
    msg_input in;
    if ((e = validate(s, m->chan, p, false, &in))) return e;
    if (!any_param(p)) {
        if (out) cs__message_view(s, m, out);
        return CS_OK;
    }
    if (m->media && body_changes(m, p->body)) return CS_E_MEDIA_BODY_IMMUTABLE;
    upd_idents u;
    if ((e = take_idents(s, p, &u))) return e;
    if ((p->body.ptr || p->attributes.ptr) && !rewrite_in_place(m, p)) {
        cs_msg *n = rebuild(s, m, p);
        if (!n) {
            cs__ident_put(s, u.from);
            cs__ident_put(s, u.lub);
            return CS_E_NOMEM;
        }
        swap_record(s, m, n);
        m = n;
    }
    apply_fields(s, m, p, &in, &u);
    cs_message_view v;
    cs__message_view(s, m, &v);
    cs__notify(s, CS_EVENT_MESSAGE_UPDATED, in.wh, &v, NULL);
    if (out) *out = v;
    return CS_OK;
}

/* ---- delete ------------------------------------------------------------- */

cs_err cs_message_delete(cs_store *s, cs_str service_sid, cs_str channel,
                         cs_str message_sid, cs_str webhook) {
    if (s->in_observer) return CS_E_REENTRANT;
    cs_msg *m;
    cs_err e = resolve(s, service_sid, channel, message_sid, &m);
    if (e) return e;
    cs_webhook wh;
    if ((e = cs__parse_webhook(webhook, &wh))) return e;
    cs__msgtab_remove(s, &s->msgs, m);
    cs__seq_remove(s, &m->chan->msgs, m->index);
    if (s->n_obs) {
        /* Observers run after the commit: the message's references to its
         * identities are dropped first; the strings its view borrows are
         * freed afterwards. */
        cs_message_view v;
        cs__message_view(s, m, &v);
        bool free_from = cs__ident_release(s, m->from);
        bool free_lub = cs__ident_release(s, m->lub);
        cs__notify(s, CS_EVENT_MESSAGE_DELETED, wh, &v, NULL);
        if (free_from) cs__ident_free(s, m->from);
        if (free_lub) cs__ident_free(s, m->lub);
        m->from = m->lub = NULL;
    }
    cs__msg_free(s, m);
    return CS_OK;
}
