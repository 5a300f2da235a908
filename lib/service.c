/* Services: the top level of the store. */
#include "internal.h"

cs_service *cs__service_get(const cs_store *s, const uint8_t *b) {
    cs_service *v;
    HASH_FIND_BYHASHVALUE(hh, s->services, b, CS__SID_BYTES, cs__sid_hashv(b), v);
    return v;
}

cs_service *cs__service_find(const cs_store *s, cs_str sid) {
    uint8_t b[CS__SID_BYTES];
    if (!sid.ptr || cs__sid_parse(sid.ptr, sid.len, 'I', 'S', b)) return NULL;
    return cs__service_get(s, b);
}

void cs__service_view(const cs_store *s, const cs_service *v,
                      cs_service_view *out) {
    out->sid = v->sid;
    out->account_sid = s->account_sid;
    out->friendly_name = (cs_str){v->friendly_name, v->fn_len};
    out->date_created = v->date_created;
    out->date_updated = v->date_updated;
    out->default_service_role_sid = v->role_sid[0];
    out->default_channel_role_sid = v->role_sid[1];
    out->default_channel_creator_role_sid = v->role_sid[2];
}

static cs_err check_name(const cs_store *s, cs_str name) {
    if (!name.ptr || name.len == 0) return CS_E_FRIENDLY_NAME_MISSING;
    return cs__check_text(name, s->lim.name_chars, CS_E_FRIENDLY_NAME_TOO_LONG);
}

/* A fresh SID no live service has. */
static void new_service_sid(cs_store *s, uint8_t b[CS__SID_BYTES]) {
    cs_service *dup;
    do {
        cs__new_sid(s, b);
        HASH_FIND_BYHASHVALUE(hh, s->services, b, CS__SID_BYTES, cs__sid_hashv(b),
                              dup);
    } while (dup);
}

cs_err cs_service_create(cs_store *s, cs_str friendly_name,
                         cs_service_view *out) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs_err e = check_name(s, friendly_name);
    if (e) return e;
    e = cs__seq_reserve(s, &s->service_seq);
    if (e) return e;
    cs_service *v = cs__malloc(s, sizeof *v);
    char *fn = cs__memdup(s, friendly_name.ptr, friendly_name.len);
    if (!v || !fn) {
        cs__free(s, v, sizeof *v);
        cs__free(s, fn, fn ? friendly_name.len + 1 : 0);
        return CS_E_NOMEM;
    }
    memset(v, 0, sizeof *v);
    uint64_t saved_counter = s->sid_counter;
    new_service_sid(s, v->sidb);
    cs__sid_format('I', 'S', v->sidb, v->sid);
    for (int i = 0; i < 3; i++) {
        uint8_t rb[CS__SID_BYTES];
        cs__new_sid(s, rb);
        cs__sid_format('R', 'L', rb, v->role_sid[i]);
    }
    v->friendly_name = fn;
    v->fn_len = friendly_name.len;
    v->date_created = v->date_updated = cs__now(s);
    v->serial = s->serial + 1;
    CS__UT(s);
    HASH_ADD_BYHASHVALUE(hh, s->services, sidb, CS__SID_BYTES,
                         cs__sid_hashv(v->sidb), v);
    e = CS__UT_FAILED ? CS_E_NOMEM : CS_OK;
    if (!e && cs__journaled(s)) {
        cs__jr r = {.op = CS__J_SERVICE_CREATE, .now = v->date_created,
                    .counter0 = saved_counter, .created = v->sidb};
        r.str[0] = friendly_name;
        if ((e = cs__journal(s, &r))) HASH_DEL(s->services, v);
    }
    if (e) {
        s->sid_counter = saved_counter; /* a failed call changes nothing */
        cs__free(s, fn, friendly_name.len + 1);
        cs__free(s, v, sizeof *v);
        return e;
    }
    s->serial++;
    cs__seq_append(&s->service_seq, v->serial, v);
    cs_service_view sv;
    cs__service_view(s, v, &sv);
    cs_event ev = {.type = CS_EVENT_SERVICE_CREATED, .service = &sv};
    cs__commit(s, &ev);
    if (out) *out = sv;
    return CS_OK;
}

cs_err cs_service_fetch(const cs_store *s, cs_str service_sid,
                        cs_service_view *out) {
    CS__REQUIRE(s);
    const cs_service *v = cs__service_find(s, service_sid);
    if (!v) return CS_E_NOT_FOUND;
    if (out) cs__service_view(s, v, out);
    return CS_OK;
}

cs_err cs_service_update(cs_store *s, cs_str service_sid, cs_str friendly_name,
                         cs_service_view *out) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs_service *v = cs__service_find(s, service_sid);
    if (!v) return CS_E_NOT_FOUND;
    if (friendly_name.ptr) {
        cs_err e = check_name(s, friendly_name);
        if (e) return e;
        char *fn = cs__memdup(s, friendly_name.ptr, friendly_name.len);
        if (!fn) return CS_E_NOMEM;
        int64_t now = cs__now(s);
        if (cs__journaled(s)) {
            cs__jr r = {.op = CS__J_SERVICE_UPDATE, .now = now,
                        .counter0 = s->sid_counter, .svc = v->sidb};
            r.str[0] = friendly_name;
            if ((e = cs__journal(s, &r))) {
                cs__free(s, fn, friendly_name.len + 1);
                return e;
            }
        }
        cs__free(s, v->friendly_name, v->fn_len + 1);
        v->friendly_name = fn;
        v->fn_len = friendly_name.len;
        v->date_updated = now;
        cs_service_view sv;
        cs__service_view(s, v, &sv);
        cs_event ev = {.type = CS_EVENT_SERVICE_UPDATED, .service = &sv};
        cs__commit(s, &ev);
    }
    if (out) cs__service_view(s, v, out);
    return CS_OK;
}

cs_err cs__service_restore(cs_store *s, const cs__svc_img *img,
                           cs_service **out, const char **why) {
    *why = NULL;
    if (check_name(s, img->name)) *why = "service friendly name invalid";
    else if (!cs__time_ok(img->dc) || !cs__time_ok(img->du))
        *why = "service date out of range";
    else {
        cs_service *dup;
        HASH_FIND_BYHASHVALUE(hh, s->services, img->sid, CS__SID_BYTES,
                              cs__sid_hashv(img->sid), dup);
        if (dup) *why = "service SID appears twice";
    }
    if (*why) return CS_E_BAD_SNAPSHOT;
    cs_err e = cs__seq_reserve(s, &s->service_seq);
    if (e) return e;
    cs_service *v = cs__malloc(s, sizeof *v);
    char *fn = cs__memdup(s, img->name.ptr, img->name.len);
    if (!v || !fn) {
        cs__free(s, v, sizeof *v);
        cs__free(s, fn, fn ? img->name.len + 1 : 0);
        return CS_E_NOMEM;
    }
    memset(v, 0, sizeof *v);
    memcpy(v->sidb, img->sid, CS__SID_BYTES);
    cs__sid_format('I', 'S', v->sidb, v->sid);
    for (int i = 0; i < 3; i++)
        cs__sid_format('R', 'L', img->role[i], v->role_sid[i]);
    v->friendly_name = fn;
    v->fn_len = img->name.len;
    v->date_created = img->dc;
    v->date_updated = img->du;
    v->serial = img->serial;
    CS__UT(s);
    HASH_ADD_BYHASHVALUE(hh, s->services, sidb, CS__SID_BYTES,
                         cs__sid_hashv(v->sidb), v);
    if (CS__UT_FAILED) {
        cs__free(s, fn, img->name.len + 1);
        cs__free(s, v, sizeof *v);
        return CS_E_NOMEM;
    }
    cs__seq_append(&s->service_seq, v->serial, v);
    *out = v;
    return CS_OK;
}

/* Frees v's channels (with their messages) and media and takes their
 * counts out of the store; v's own fields, which a view of v borrows, stay. */
static void service_empty(cs_store *s, cs_service *v) {
    cs_channel *c, *tmp;
    HASH_ITER(hh, v->channels, c, tmp) {
        CS__UT(s);
        HASH_DELETE(hh, v->channels, c);
        cs__channel_destroy(s, c);
    }
    cs__seq_free(s, &v->channel_seq);
    cs_media *m, *mtmp;
    HASH_ITER(hh, v->media, m, mtmp) {
        CS__UT(s);
        HASH_DEL(v->media, m);
        cs__media_destroy(s, m);
        s->n_media--;
    }
}

static void service_free(cs_store *s, cs_service *v) {
    cs__free(s, v->friendly_name, v->fn_len + 1);
    cs__free(s, v, sizeof *v);
}

void cs__service_destroy(cs_store *s, cs_service *v) {
    service_empty(s, v);
    service_free(s, v);
}

cs_err cs_service_delete(cs_store *s, cs_str service_sid) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs_service *v = cs__service_find(s, service_sid);
    if (!v) return CS_E_NOT_FOUND;
    if (cs__journaled(s)) {
        cs__jr r = {.op = CS__J_SERVICE_DELETE, .counter0 = s->sid_counter,
                    .svc = v->sidb};
        cs_err e = cs__journal(s, &r);
        if (e) return e;
    }
    CS__UT(s);
    HASH_DEL(s->services, v);
    cs__seq_remove(s, &s->service_seq, v->serial);
    /* Observers run after the commit: everything of the service is out of
     * the store by then, and only v itself (which the view borrows) is
     * freed afterwards. */
    size_t channels = s->n_channels, messages = s->n_messages,
           media = s->n_media;
    service_empty(s, v);
    cs_service_view sv;
    cs__service_view(s, v, &sv);
    cs_event ev = {.type = CS_EVENT_SERVICE_DELETED, .service = &sv};
    ev.removed_services = 1;
    ev.removed_channels = channels - s->n_channels;
    ev.removed_messages = messages - s->n_messages;
    ev.removed_media = media - s->n_media;
    cs__commit(s, &ev);
    service_free(s, v);
    return CS_OK;
}
