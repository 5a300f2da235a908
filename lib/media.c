/* Media registry: metadata of uploaded media, per service. The bytes live
 * with whoever serves them; the store records what a message needs.
 *
 * Invariants: an item is in its service's table until the service goes,
 * its message goes (message.c, channel.c unlink it), or, never attached,
 * cs_media_delete removes it; s->n_media counts the items in every table;
 * an attached item is named by exactly one live message. */
#include "internal.h"

cs_media *cs__media_find(const cs_service *svc, const uint8_t *b) {
    cs_media *m;
    HASH_FIND_BYHASHVALUE(hh, svc->media, b, CS__SID_BYTES, cs__sid_hashv(b), m);
    return m;
}

void cs__media_view(const cs_store *s, const cs_media *m, cs_media_view *out) {
    cs__sid_format('M', 'E', m->sidb, out->sid);
    out->account_sid = s->account_sid;
    out->service_sid = m->svc->sid;
    out->content_type = (cs_str){m->content_type, m->ct_len};
    out->filename = (cs_str){m->filename, m->fn_len};
    out->size = m->size;
    out->date_created = out->date_updated = m->date_created;
    out->attached = m->attached;
    if (m->attached) {
        cs__sid_format('C', 'H', m->chan_sid, out->channel_sid);
        cs__sid_format('I', 'M', m->msg_sid, out->message_sid);
    } else {
        out->channel_sid[0] = out->message_sid[0] = '\0';
    }
}

/* "type/subtype": token characters (RFC 7230 tchar) on both sides of one
 * slash, optionally followed by parameters after ';' (printable ASCII). */
static bool tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool valid_content_type(cs_str v) {
    size_t i = 0, n = v.len, t0;
    const unsigned char *p = (const unsigned char *)v.ptr;
    for (t0 = i; i < n && tchar(p[i]); i++) {}
    if (i == t0 || i >= n || p[i] != '/') return false;
    for (t0 = ++i; i < n && tchar(p[i]); i++) {}
    if (i == t0) return false;
    if (i < n && p[i] != ';') return false;
    for (; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e) return false;
    return true;
}

static cs_err validate(const cs_store *s, cs_str ct, cs_str fn, uint64_t size) {
    if (!ct.ptr || !ct.len || ct.len > s->lim.content_type_bytes ||
        !valid_content_type(ct))
        return CS_E_BAD_MEDIA_CONTENT_TYPE;
    if (fn.ptr) {
        if (!cs__utf8_valid(fn.ptr, fn.len)) return CS_E_BAD_UTF8;
        if (fn.len > s->lim.filename_bytes) return CS_E_INVALID_ARGUMENT;
    }
    return size > s->lim.media_bytes ? CS_E_MEDIA_TOO_LARGE : CS_OK;
}

static cs_err media_create(cs_store *s, cs_str service_sid,
                           cs_str content_type, cs_str filename,
                           uint64_t size, cs_media_view *out) {
    cs_service *svc = cs__service_find(s, service_sid);
    if (!svc) return CS_E_NOT_FOUND;
    cs_err e = validate(s, content_type, filename, size);
    if (e) return e;
    cs_media *m = cs__malloc(s, sizeof *m);
    char *ct = cs__memdup(s, content_type.ptr, content_type.len);
    char *fn = filename.ptr ? cs__memdup(s, filename.ptr, filename.len) : NULL;
    if (!m || !ct || (filename.ptr && !fn)) {
        cs__free(s, m, sizeof *m);
        cs__free(s, ct, content_type.len + 1);
        cs__free(s, fn, filename.len + 1);
        return CS_E_NOMEM;
    }
    memset(m, 0, sizeof *m);
    uint64_t saved_counter = s->sid_counter;
    do
        cs__new_sid(s, m->sidb);
    while (cs__media_find(svc, m->sidb));
    m->svc = svc;
    m->content_type = ct;
    m->ct_len = content_type.len;
    m->filename = fn;
    m->fn_len = filename.ptr ? filename.len : 0;
    m->size = size;
    m->date_created = cs__now(s);
    CS__UT(s);
    HASH_ADD_BYHASHVALUE(hh, svc->media, sidb, CS__SID_BYTES,
                         cs__sid_hashv(m->sidb), m);
    e = CS__UT_FAILED ? CS_E_NOMEM : CS_OK;
    if (!e && cs__journaled(s)) {
        cs__jr r = {.op = CS__J_MEDIA_CREATE, .now = m->date_created,
                    .counter0 = saved_counter, .svc = svc->sidb,
                    .created = m->sidb, .size = size};
        r.str[0] = content_type;
        r.str[1] = filename;
        if ((e = cs__journal(s, &r))) HASH_DEL(svc->media, m);
    }
    if (e) {
        s->sid_counter = saved_counter;
        cs__media_destroy(s, m);
        return e;
    }
    s->n_media++;
    cs_media_view mv;
    cs__media_view(s, m, &mv);
    cs_event ev = {.type = CS_EVENT_MEDIA_CREATED, .media = &mv};
    cs__commit(s, &ev);
    if (out) *out = mv;
    return CS_OK;
}

cs_err cs_media_create(cs_store *s, cs_str service_sid, cs_str content_type,
                       cs_str filename, uint64_t size, cs_media_view *out) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs__quota_begin(s);
    return cs__quota_end(
        s, media_create(s, service_sid, content_type, filename, size, out));
}

cs_err cs__media_restore(cs_store *s, cs_service *svc,
                         const cs__media_img *img, const char **why) {
    static const uint8_t zero[CS__SID_BYTES];
    *why = NULL;
    if (validate(s, img->ct, img->fn, img->size))
        *why = "media content type, filename or size invalid";
    else if (!cs__time_ok(img->dc))
        *why = "media date out of range";
    else if (!img->attached && (memcmp(img->chan, zero, CS__SID_BYTES) ||
                                memcmp(img->msg, zero, CS__SID_BYTES)))
        *why = "unattached media names a message";
    else if (cs__media_find(svc, img->sid))
        *why = "media SID appears twice";
    if (*why) return CS_E_BAD_SNAPSHOT;
    cs_media *m = cs__malloc(s, sizeof *m);
    char *ct = cs__memdup(s, img->ct.ptr, img->ct.len);
    char *fn = img->fn.ptr ? cs__memdup(s, img->fn.ptr, img->fn.len) : NULL;
    if (!m || !ct || (img->fn.ptr && !fn)) {
        cs__free(s, m, sizeof *m);
        cs__free(s, ct, img->ct.len + 1);
        cs__free(s, fn, img->fn.len + 1);
        return CS_E_NOMEM;
    }
    memset(m, 0, sizeof *m);
    memcpy(m->sidb, img->sid, CS__SID_BYTES);
    m->svc = svc;
    m->content_type = ct;
    m->ct_len = img->ct.len;
    m->filename = fn;
    m->fn_len = img->fn.ptr ? img->fn.len : 0;
    m->size = img->size;
    m->date_created = img->dc;
    m->attached = img->attached;
    memcpy(m->chan_sid, img->chan, CS__SID_BYTES);
    memcpy(m->msg_sid, img->msg, CS__SID_BYTES);
    CS__UT(s);
    HASH_ADD_BYHASHVALUE(hh, svc->media, sidb, CS__SID_BYTES,
                         cs__sid_hashv(m->sidb), m);
    if (CS__UT_FAILED) {
        cs__media_destroy(s, m);
        return CS_E_NOMEM;
    }
    s->n_media++;
    return CS_OK;
}

static cs_media *find_by_sid(const cs_store *s, cs_str service_sid,
                             cs_str media_sid) {
    const cs_service *svc = cs__service_find(s, service_sid);
    uint8_t b[CS__SID_BYTES];
    if (!svc || !media_sid.ptr ||
        cs__sid_parse(media_sid.ptr, media_sid.len, 'M', 'E', b))
        return NULL;
    return cs__media_find(svc, b);
}

cs_err cs_media_fetch(const cs_store *s, cs_str service_sid, cs_str media_sid,
                      cs_media_view *out) {
    CS__REQUIRE(s);
    const cs_media *m = find_by_sid(s, service_sid, media_sid);
    if (!m) return CS_E_NOT_FOUND;
    if (out) cs__media_view(s, m, out);
    return CS_OK;
}

void cs__media_unlink(cs_store *s, cs_media *m) {
    CS__UT(s);
    HASH_DEL(m->svc->media, m);
    s->n_media--;
}

cs_err cs_media_delete(cs_store *s, cs_str service_sid, cs_str media_sid) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    cs_media *m = find_by_sid(s, service_sid, media_sid);
    if (!m) return CS_E_NOT_FOUND;
    if (m->attached) return CS_E_MEDIA_IN_USE;
    if (cs__journaled(s)) {
        char sid[CS_SID_BUFSZ];
        cs__sid_format('M', 'E', m->sidb, sid);
        cs__jr r = {.op = CS__J_MEDIA_DELETE, .counter0 = s->sid_counter,
                    .svc = m->svc->sidb};
        r.str[0] = (cs_str){sid, CS__SID_STRLEN};
        cs_err e = cs__journal(s, &r);
        if (e) return e;
    }
    cs__media_unlink(s, m);
    /* Observers run after the commit; the view borrows m's strings, so m
     * is freed afterwards. */
    cs_media_view mv;
    cs_event ev = {.type = CS_EVENT_MEDIA_DELETED};
    ev.removed_media = 1;
    if (cs__observed(s)) {
        cs__media_view(s, m, &mv);
        ev.media = &mv;
    }
    cs__commit(s, &ev);
    cs__media_destroy(s, m);
    return CS_OK;
}

void cs__media_destroy(cs_store *s, cs_media *m) {
    cs__free(s, m->content_type, m->ct_len + 1);
    if (m->filename) cs__free(s, m->filename, m->fn_len + 1);
    cs__free(s, m, sizeof *m);
}
