/* Channels: addressed by SID or unique_name within a service; each holds its
 * messages in index order. A channel's delete takes its messages and their
 * media items with it. Creates and updates run inside the byte quota's
 * bracket (cs__quota_begin). */
#include "internal.h"

static cs_channel *find_by_sid(const cs_service *svc, const uint8_t *b) {
    cs_channel *c;
    HASH_FIND_BYHASHVALUE(hh, svc->channels, b, CS__SID_BYTES, cs__sid_hashv(b), c);
    return c;
}

cs_channel *cs__channel_get(const cs_service *svc, const uint8_t *b) {
    return find_by_sid(svc, b);
}

static cs_name_ent *find_by_name(const cs_store *s, const cs_service *svc,
                                 const char *p, size_t n) {
    cs_name_ent *ne;
    HASH_FIND_BYHASHVALUE(hh, svc->names, p, n, cs__keyed_hash(s, p, n), ne);
    return ne;
}

/* The store is needed for the keyed hash of names; services know it only
 * through their caller, so lookups by reference take it explicitly. */
static cs_channel *channel_find(const cs_store *s, const cs_service *svc,
                                cs_str ref) {
    if (!ref.ptr || !ref.len) return NULL;
    uint8_t b[CS__SID_BYTES];
    if (cs__sid_parse(ref.ptr, ref.len, 'C', 'H', b) == 0)
        return find_by_sid(svc, b);
    cs_name_ent *ne = find_by_name(s, svc, ref.ptr, ref.len);
    return ne ? ne->chan : NULL;
}

cs_err cs__resolve_channel(const cs_store *s, cs_str service_sid,
                           cs_str channel, cs_channel **out) {
    const cs_service *svc = cs__service_find(s, service_sid);
    if (!svc) return CS_E_NOT_FOUND;
    *out = channel_find(s, svc, channel);
    return *out ? CS_OK : CS_E_NOT_FOUND;
}

void cs__channel_view(const cs_store *s, const cs_channel *c,
                      cs_channel_view *out) {
    out->sid = c->sid;
    out->account_sid = s->account_sid;
    out->service_sid = c->svc->sid;
    out->friendly_name = (cs_str){c->friendly_name, c->fn_len};
    out->unique_name = (cs_str){c->unique_name, c->un_len};
    out->attributes = c->attributes ? (cs_str){c->attributes, c->attr_len}
                                    : (cs_str){"{}", 2};
    out->type = c->type;
    out->date_created = c->date_created;
    out->date_updated = c->date_updated;
    out->created_by = (cs_str){c->created_by->str, c->created_by->len};
    out->members_count = 0;
    out->messages_count = c->msgs.count;
    int64_t lk = cs__dix_last_key(&c->msgs);
    const cs_msg *last = lk >= 0 ? cs__dix_find(&c->msgs, lk) : NULL;
    out->has_last_message = last != NULL;
    if (last)
        cs__sid_format('I', 'M', last->sidb, out->last_message_sid);
    else
        out->last_message_sid[0] = '\0';
}

/* ---- validation --------------------------------------------------------- */

typedef struct chan_input {
    cs_channel_type type;
    bool has_dc, has_du;
    int64_t dc, du;
    cs_webhook wh;
} chan_input;

static cs_err parse_type(cs_str t, cs_channel_type *out) {
    if (!t.ptr) return CS_OK;
    if (t.len == 6 && memcmp(t.ptr, "public", 6) == 0)
        *out = CS_CHANNEL_PUBLIC;
    else if (t.len == 7 && memcmp(t.ptr, "private", 7) == 0)
        *out = CS_CHANNEL_PRIVATE;
    else
        return CS_E_BAD_CHANNEL_TYPE;
    return CS_OK;
}

/* Checks everything but uniqueness; self is the channel being updated. */
static cs_err validate(const cs_store *s, const cs_channel_params *p,
                       bool create, chan_input *in) {
    const cs_limits *l = &s->lim;
    cs_err e;
    if ((e = cs__webhook_of(p->webhook, p->webhook_value, &in->wh)))
        return e;
    if ((e = cs__check_text(p->friendly_name, l->name_chars,
                            CS_E_FRIENDLY_NAME_TOO_LONG)))
        return e;
    if ((e = cs__check_text(p->unique_name, l->name_chars,
                            CS_E_UNIQUE_NAME_TOO_LONG)))
        return e;
    if (p->unique_name.ptr &&
        cs__sid_match(p->unique_name.ptr, p->unique_name.len, 'C', 'H'))
        return CS_E_UNIQUE_NAME_IS_SID;
    if ((e = cs__check_attributes(s, p->attributes))) return e;
    if ((e = cs__check_text(p->created_by, l->identity_chars,
                            CS_E_IDENTITY_TOO_LONG)))
        return e;
    in->type = CS_CHANNEL_PUBLIC;
    if (create && p->type_value) {
        if (p->type.ptr) return CS_E_INVALID_ARGUMENT;
        if (p->type_value != CS_CHANNEL_PUBLIC &&
            p->type_value != CS_CHANNEL_PRIVATE)
            return CS_E_BAD_CHANNEL_TYPE;
        in->type = p->type_value;
    } else if (create && (e = parse_type(p->type, &in->type))) {
        return e;
    }
    if ((e = cs__check_date(p->date_created, CS_E_BAD_DATE_CREATED, &in->dc)))
        return e;
    if ((e = cs__check_date(p->date_updated, CS_E_BAD_DATE_UPDATED, &in->du)))
        return e;
    in->has_dc = p->date_created.ptr != NULL;
    in->has_du = p->date_updated.ptr != NULL;
    return CS_OK;
}

/* Empty friendly/unique names store null. */
static bool nonempty(cs_str v) { return v.ptr && v.len; }

/* ---- new field values, allocated before anything is linked -------------- */

typedef struct chan_fields {
    char *fn, *un, *attr;
    cs_ident *by;
    cs_name_ent *ne;
} chan_fields;

static void fields_release(cs_store *s, const cs_channel_params *p,
                           chan_fields *f) {
    if (f->fn) cs__free(s, f->fn, p->friendly_name.len + 1);
    if (f->un) cs__free(s, f->un, p->unique_name.len + 1);
    if (f->attr) cs__free(s, f->attr, p->attributes.len + 1);
    if (f->ne) cs__free(s, f->ne, sizeof *f->ne);
    cs__ident_put(s, f->by);
    memset(f, 0, sizeof *f);
}

static cs_err fields_alloc(cs_store *s, const cs_channel_params *p,
                           chan_fields *f) {
    memset(f, 0, sizeof *f);
    if (nonempty(p->friendly_name) &&
        !(f->fn = cs__memdup(s, p->friendly_name.ptr, p->friendly_name.len)))
        goto oom;
    if (nonempty(p->unique_name)) {
        f->un = cs__memdup(s, p->unique_name.ptr, p->unique_name.len);
        f->ne = cs__malloc(s, sizeof *f->ne);
        if (!f->un || !f->ne) goto oom;
    }
    if (p->attributes.ptr &&
        !(f->attr = cs__memdup(s, p->attributes.ptr, p->attributes.len)))
        goto oom;
    if (p->created_by.ptr &&
        cs__ident_get(s, p->created_by.ptr, p->created_by.len, &f->by))
        goto oom;
    return CS_OK;
oom:
    fields_release(s, p, f);
    return CS_E_NOMEM;
}

/* Links the name entry for f->un to c; false when uthash ran out. */
static bool name_link(cs_store *s, cs_service *svc, cs_channel *c,
                      cs_name_ent *ne, const char *un, size_t n) {
    CS__UT(s);
    ne->chan = c;
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, svc->names, un, n, cs__keyed_hash(s, un, n),
                                ne);
    return !CS__UT_FAILED;
}

static void name_unlink(cs_store *s, cs_service *svc, cs_channel *c) {
    if (!c->name_ent) return;
    CS__UT(s);
    HASH_DEL(svc->names, c->name_ent);
    cs__free(s, c->name_ent, sizeof *c->name_ent);
    c->name_ent = NULL;
}

/* ---- create ------------------------------------------------------------- */

/* The parameters a journal record carries, as given. */
static void journal_params(cs__jr *r, const cs_channel_params *p) {
    r->str[0] = p->friendly_name;
    r->str[1] = p->unique_name;
    r->str[2] = p->attributes;
    r->str[3] = p->date_created;
    r->str[4] = p->date_updated;
    r->str[5] = p->created_by;
}

static void new_channel_sid(cs_store *s, const cs_service *svc, uint8_t *b) {
    do
        cs__new_sid(s, b);
    while (find_by_sid(svc, b));
}

static cs_err link_channel(cs_store *s, cs_service *svc, cs_channel *c,
                           chan_fields *f, size_t un_len) {
    CS__UT(s);
    HASH_ADD_BYHASHVALUE(hh, svc->channels, sidb, CS__SID_BYTES,
                         cs__sid_hashv(c->sidb), c);
    if (CS__UT_FAILED) return CS_E_NOMEM;
    if (f->un && !name_link(s, svc, c, f->ne, f->un, un_len)) {
        HASH_DELETE(hh, svc->channels, c);
        return CS_E_NOMEM;
    }
    return CS_OK;
}

static void init_channel(cs_store *s, cs_service *svc, cs_channel *c,
                         const cs_channel_params *p, const chan_input *in,
                         chan_fields *f, cs_ident *system, int64_t now) {
    memset(c, 0, sizeof *c);
    cs__arena_init(&c->arena);
    c->svc = svc;
    new_channel_sid(s, svc, c->sidb);
    cs__sid_format('C', 'H', c->sidb, c->sid);
    c->friendly_name = f->fn;
    c->fn_len = f->fn ? p->friendly_name.len : 0;
    c->unique_name = f->un;
    c->un_len = f->un ? p->unique_name.len : 0;
    c->attributes = f->attr;
    c->attr_len = f->attr ? p->attributes.len : 0;
    c->created_by = f->by ? f->by : system;
    c->type = in->type;
    c->date_created = in->has_dc ? in->dc : now;
    c->date_updated = in->has_du ? in->du : c->date_created;
    c->serial = s->serial + 1;
}

static cs_err channel_create(cs_store *s, cs_str service_sid,
                             const cs_channel_params *p,
                             cs_channel_view *out) {
    cs_service *svc = cs__service_find(s, service_sid);
    if (!svc) return CS_E_NOT_FOUND;
    chan_input in;
    cs_err e = validate(s, p, true, &in);
    if (e) return e;
    if (nonempty(p->unique_name) &&
        find_by_name(s, svc, p->unique_name.ptr, p->unique_name.len))
        return CS_E_UNIQUE_NAME_EXISTS;
    if (cs__at_quota(s, s->n_channels, s->lim.max_channels))
        return CS_E_QUOTA_CHANNELS;
    if ((e = cs__seq_reserve(s, &svc->channel_seq))) return e;
    chan_fields f;
    if ((e = fields_alloc(s, p, &f))) return e;
    cs_ident *system = NULL;
    cs_channel *c = cs__malloc(s, sizeof *c);
    if (!c || (!f.by && cs__ident_get(s, "system", 6, &system))) {
        cs__free(s, c, sizeof *c);
        fields_release(s, p, &f);
        return CS_E_NOMEM;
    }
    uint64_t saved_counter = s->sid_counter;
    int64_t now = cs__now(s);
    init_channel(s, svc, c, p, &in, &f, system, now);
    e = link_channel(s, svc, c, &f, p->unique_name.len);
    if (!e && cs__journaled(s)) {
        cs__jr r = {.op = CS__J_CHANNEL_CREATE, .now = now,
                    .counter0 = saved_counter, .svc = svc->sidb,
                    .created = c->sidb, .wh = in.wh, .type = (uint8_t)in.type};
        journal_params(&r, p);
        if ((e = cs__journal(s, &r))) {
            CS__UT(s);
            HASH_DELETE(hh, svc->channels, c);
            if (f.un) HASH_DEL(svc->names, f.ne);
        }
    }
    if (e) {
        s->sid_counter = saved_counter;
        cs__ident_put(s, system);
        fields_release(s, p, &f);
        cs__free(s, c, sizeof *c);
        return e;
    }
    c->name_ent = f.ne;
    s->serial++;
    s->n_channels++;
    cs__seq_append(&svc->channel_seq, c->serial, c);
    cs_channel_view v;
    cs__channel_view(s, c, &v);
    cs_event ev = {.type = CS_EVENT_CHANNEL_CREATED, .webhook = in.wh,
                   .channel = &v};
    cs__commit(s, &ev);
    if (out) *out = v;
    return CS_OK;
}

cs_err cs__channel_restore(cs_store *s, cs_service *svc,
                           const cs__chan_img *img, cs_channel **out,
                           const char **why) {
    cs_channel_params p = {0};
    p.friendly_name = img->fn;
    p.unique_name = img->un;
    p.attributes = img->attr;
    p.created_by = img->by;
    chan_input in;
    *why = NULL;
    if (validate(s, &p, false, &in) || !img->by.ptr)
        *why = "channel name, attributes or creator invalid";
    else if (img->type != CS_CHANNEL_PUBLIC && img->type != CS_CHANNEL_PRIVATE)
        *why = "channel type invalid";
    else if (!cs__time_ok(img->dc) || !cs__time_ok(img->du))
        *why = "channel date out of range";
    else if (img->next_index < 0 || img->next_index > CS__INDEX_MAX)
        *why = "channel next index out of range";
    else if (find_by_sid(svc, img->sid))
        *why = "channel SID appears twice";
    else if (nonempty(img->un) &&
             find_by_name(s, svc, img->un.ptr, img->un.len))
        *why = "channel unique name appears twice";
    if (*why) return CS_E_BAD_SNAPSHOT;
    cs_err e = cs__seq_reserve(s, &svc->channel_seq);
    if (e) return e;
    chan_fields f;
    if ((e = fields_alloc(s, &p, &f))) return e;
    cs_channel *c = cs__malloc(s, sizeof *c);
    if (!c) {
        fields_release(s, &p, &f);
        return CS_E_NOMEM;
    }
    memset(c, 0, sizeof *c);
    cs__arena_init(&c->arena);
    c->svc = svc;
    memcpy(c->sidb, img->sid, CS__SID_BYTES);
    cs__sid_format('C', 'H', c->sidb, c->sid);
    c->friendly_name = f.fn;
    c->fn_len = f.fn ? p.friendly_name.len : 0;
    c->unique_name = f.un;
    c->un_len = f.un ? p.unique_name.len : 0;
    c->attributes = f.attr;
    c->attr_len = f.attr ? p.attributes.len : 0;
    c->created_by = f.by;
    c->type = (cs_channel_type)img->type;
    c->date_created = img->dc;
    c->date_updated = img->du;
    c->serial = img->serial;
    c->next_index = img->next_index;
    if (link_channel(s, svc, c, &f, p.unique_name.len)) {
        fields_release(s, &p, &f);
        cs__free(s, c, sizeof *c);
        return CS_E_NOMEM;
    }
    c->name_ent = f.ne;
    s->n_channels++;
    cs__seq_append(&svc->channel_seq, c->serial, c);
    *out = c;
    return CS_OK;
}

cs_err cs_channel_fetch(const cs_store *s, cs_str service_sid, cs_str channel,
                        cs_channel_view *out) {
    CS__REQUIRE(s);
    cs_channel *c;
    cs_err e = cs__resolve_channel(s, service_sid, channel, &c);
    if (e) return e;
    if (out) cs__channel_view(s, c, out);
    return CS_OK;
}

/* ---- update ------------------------------------------------------------- */

static bool any_param(const cs_channel_params *p) {
    return p->friendly_name.ptr || p->unique_name.ptr || p->attributes.ptr ||
           p->date_created.ptr || p->date_updated.ptr || p->created_by.ptr;
}

/* Swaps in the new values; nothing here can fail. */
static void apply_update(cs_store *s, cs_channel *c,
                         const cs_channel_params *p, const chan_input *in,
                         chan_fields *f, int64_t now) {
    if (p->friendly_name.ptr) {
        cs__free(s, c->friendly_name, c->fn_len + 1);
        c->friendly_name = f->fn;
        c->fn_len = f->fn ? p->friendly_name.len : 0;
    }
    if (p->unique_name.ptr) {
        name_unlink(s, c->svc, c);
        cs__free(s, c->unique_name, c->un_len + 1);
        c->unique_name = f->un;
        c->un_len = f->un ? p->unique_name.len : 0;
        c->name_ent = f->ne;
    }
    if (p->attributes.ptr) {
        cs__free(s, c->attributes, c->attr_len + 1);
        c->attributes = f->attr;
        c->attr_len = p->attributes.len;
    }
    if (p->created_by.ptr) {
        cs__ident_put(s, c->created_by);
        c->created_by = f->by;
    }
    if (in->has_dc) c->date_created = in->dc;
    c->date_updated = in->has_du ? in->du : now;
}

cs_err cs_channel_create(cs_store *s, cs_str service_sid,
                         const cs_channel_params *p, cs_channel_view *out) {
    CS__REQUIRE(s);
    if (!p) p = &cs__no_channel_params;
    if (s->in_observer) return CS_E_REENTRANT;
    cs__quota_begin(s);
    return cs__quota_end(s, channel_create(s, service_sid, p, out));
}

static cs_err channel_update(cs_store *s, cs_str service_sid, cs_str channel,
                             const cs_channel_params *p,
                             cs_channel_view *out) {
    cs_channel *c;
    cs_err e = cs__resolve_channel(s, service_sid, channel, &c);
    if (e) return e;
    chan_input in;
    if ((e = validate(s, p, false, &in))) return e;
    if (nonempty(p->unique_name)) {
        cs_name_ent *ne =
            find_by_name(s, c->svc, p->unique_name.ptr, p->unique_name.len);
        if (ne && ne->chan != c) return CS_E_UNIQUE_NAME_EXISTS;
    }
    if (any_param(p)) {
        chan_fields f;
        if ((e = fields_alloc(s, p, &f))) return e;
        /* The new name goes in while the old one is still there (a channel
         * renamed to its own name briefly has two entries: harmless). */
        if (f.un && !name_link(s, c->svc, c, f.ne, f.un, p->unique_name.len)) {
            fields_release(s, p, &f);
            return CS_E_NOMEM;
        }
        int64_t now = cs__now(s);
        if (cs__journaled(s)) {
            cs__jr r = {.op = CS__J_CHANNEL_UPDATE, .now = now,
                        .counter0 = s->sid_counter, .svc = c->svc->sidb,
                        .chan = c->sidb, .wh = in.wh};
            journal_params(&r, p);
            if ((e = cs__journal(s, &r))) {
                CS__UT(s);
                if (f.un) HASH_DEL(c->svc->names, f.ne);
                fields_release(s, p, &f);
                return e;
            }
        }
        apply_update(s, c, p, &in, &f, now);
        cs_channel_view v;
        cs__channel_view(s, c, &v);
        cs_event ev = {.type = CS_EVENT_CHANNEL_UPDATED, .webhook = in.wh,
                       .channel = &v};
        cs__commit(s, &ev);
    }
    if (out) cs__channel_view(s, c, out);
    return CS_OK;
}

cs_err cs_channel_update(cs_store *s, cs_str service_sid, cs_str channel,
                         const cs_channel_params *p, cs_channel_view *out) {
    CS__REQUIRE(s);
    if (!p) p = &cs__no_channel_params;
    if (s->in_observer) return CS_E_REENTRANT;
    cs__quota_begin(s);
    return cs__quota_end(s, channel_update(s, service_sid, channel, p, out));
}

/* ---- delete ------------------------------------------------------------- */

/* Frees c's messages with their media items and takes its name entry and
 * counts out of the store; c's own fields, which a view of c borrows, stay.
 * Each message is visited for its LastUpdatedBy and media; the records go
 * with their chunks. Returns how many media items went. */
static uint64_t channel_unlink(cs_store *s, cs_channel *c) {
    uint64_t media = 0;
    for (int64_t k = -1; cs__dix_after(&c->msgs, k, &k);) {
        const cs_msg *m = cs__dix_find(&c->msgs, k);
        cs__ident_put(s, cs__msg_lub(m));
        cs_media *me = cs__msg_media(m);
        if (me) {
            cs__media_unlink(s, me);
            cs__media_destroy(s, me);
            media++;
        }
    }
    s->n_messages -= c->msgs.count;
    cs__dix_free(s, &c->msgs);
    cs__arena_free(s, &c->arena);
    name_unlink(s, c->svc, c);
    s->n_channels--;
    return media;
}

static void channel_free(cs_store *s, cs_channel *c) {
    cs__free(s, c->friendly_name, c->fn_len + 1);
    cs__free(s, c->unique_name, c->un_len + 1);
    cs__free(s, c->attributes, c->attr_len + 1);
    cs__free(s, c, sizeof *c);
}

void cs__channel_destroy(cs_store *s, cs_channel *c) {
    channel_unlink(s, c);
    cs__ident_put(s, c->created_by);
    channel_free(s, c);
}

cs_err cs_channel_delete(cs_store *s, cs_str service_sid, cs_str channel,
                         cs_str webhook) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs_channel *c;
    cs_err e = cs__resolve_channel(s, service_sid, channel, &c);
    if (e) return e;
    cs_webhook wh;
    if ((e = cs__parse_webhook(webhook, &wh))) return e;
    if (cs__journaled(s)) {
        cs__jr r = {.op = CS__J_CHANNEL_DELETE, .counter0 = s->sid_counter,
                    .svc = c->svc->sidb, .chan = c->sidb, .wh = wh};
        if ((e = cs__journal(s, &r))) return e;
    }
    cs_channel_view v;
    cs__channel_view(s, c, &v);
    cs_service *svc = c->svc;
    CS__UT(s);
    HASH_DELETE(hh, svc->channels, c);
    cs__seq_remove(s, &svc->channel_seq, c->serial);
    /* Observers run after the commit: the channel, its messages, its name
     * and its reference to the creator's identity are out of the store by
     * then. Only memory the view borrows (c's fields, the identity string)
     * is freed afterwards. */
    cs_event ev = {.type = CS_EVENT_CHANNEL_DELETED, .webhook = wh,
                   .channel = &v};
    ev.removed_channels = 1;
    ev.removed_messages = c->msgs.count;
    ev.removed_media = channel_unlink(s, c);
    bool free_by = cs__ident_release(s, c->created_by);
    cs__commit(s, &ev);
    if (free_by) cs__ident_free(s, c->created_by);
    channel_free(s, c);
    return CS_OK;
}
