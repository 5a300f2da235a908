/* The debug invariant checker: cross-checks every structure of the store. */
#include "internal.h"


#define ENSURE(c)                                                             \
    do {                                                                      \
        if (!(c)) return CS_E_CORRUPT;                                        \
    } while (0)

typedef struct tally {
    size_t channels, messages, media, ident_refs;
} tally;

static cs_err check_message(const cs_store *s, const cs_channel *c,
                            int64_t key, const cs_msg *m, tally *t) {
    int64_t index = cs__msg_index(m);
    ENSURE((m->flags & CS__M_LIVE) && index == key && index >= 0 &&
           index < c->next_index && cs__ix_epoch(m->ix) <= s->epoch);
    /* The SID opens to this channel, index and epoch (the permutation is a
     * bijection, so that is the SID cs__msg_sid gives for them). */
    int64_t serial;
    uint64_t ix;
    cs__msg_sid_open(s, m->sidb, &serial, &ix);
    ENSURE(serial == c->serial && ix == m->ix);
    ENSURE(m->cap >= cs__msg_ext_off(m->from_len, m->body_len, m->attr_len) +
                         (m->flags & CS__M_LUB ? sizeof(void *) : 0) +
                         (m->flags & CS__M_MEDIA ? sizeof(void *) : 0));
    ENSURE(cs__msg_from(m)[m->from_len] == '\0' &&
           cs__msg_body(m)[m->body_len] == '\0');
    ENSURE(m->from_len > 0);
    ENSURE(m->date_created >= CS__TIME_MIN && m->date_created <= CS__TIME_MAX);
    ENSURE(m->date_updated >= CS__TIME_MIN && m->date_updated <= CS__TIME_MAX);
    if (m->attr_len)
        ENSURE(cs__json_valid(cs__msg_attr(m), m->attr_len) &&
               cs__msg_attr(m)[m->attr_len] == '\0');
    const cs_media *me = cs__msg_media(m);
    if (m->flags & CS__M_MEDIA) ENSURE(me != NULL);
    if (me) {
        ENSURE(me->attached && me->svc == c->svc);
        ENSURE(memcmp(me->msg_sid, m->sidb, CS__SID_BYTES) == 0);
        ENSURE(cs__media_find(c->svc, me->sidb) == me);
    }
    if (m->flags & CS__M_LUB) ENSURE(cs__msg_lub(m) != NULL);
    t->ident_refs += cs__msg_lub(m) != NULL;
    t->messages++;
    return CS_OK;
}

static cs_err check_channel(const cs_store *s, const cs_service *v,
                            const cs_channel *c, tally *t) {
    ENSURE(c->svc == v && cs__seq_find(&v->channel_seq, c->serial) == c);
    ENSURE(c->created_by != NULL);
    ENSURE((c->unique_name == NULL) == (c->name_ent == NULL));
    if (c->name_ent) {
        const cs_name_ent *ne;
        uint32_t h = cs__keyed_hash(s, c->unique_name, c->un_len);
        HASH_FIND_BYHASHVALUE(hh, v->names, c->unique_name, c->un_len, h, ne);
        ENSURE(ne == c->name_ent && ne->chan == c);
    }
    ENSURE(cs__dix_check(&c->msgs) == CS_OK);
    ENSURE(cs__arena_check(c, s->dying) == CS_OK);
    size_t seen = 0;
    for (int64_t k = -1; cs__dix_after(&c->msgs, k, &k); seen++)
        if (check_message(s, c, k, cs__dix_find(&c->msgs, k), t))
            return CS_E_CORRUPT;
    ENSURE(seen == c->msgs.count);
    ENSURE(c->msgs.count == 0 || c->msgs.last < c->next_index);
    t->ident_refs++;
    t->channels++;
    return CS_OK;
}

static cs_err check_service(const cs_store *s, const cs_service *v, tally *t) {
    ENSURE(cs__seq_find(&s->service_seq, v->serial) == v);
    ENSURE(v->friendly_name && v->fn_len);
    ENSURE(cs__seq_check(&v->channel_seq) == CS_OK);
    ENSURE(v->channel_seq.count == HASH_COUNT(v->channels));
    size_t named = 0;
    for (const cs_channel *c = v->channels; c; c = c->hh.next) {
        if (check_channel(s, v, c, t)) return CS_E_CORRUPT;
        named += c->name_ent != NULL;
    }
    ENSURE(named == HASH_COUNT(v->names));
    for (const cs_media *m = v->media; m; m = m->hh.next) {
        ENSURE(m->svc == v && m->content_type);
        t->media++;
    }
    return CS_OK;
}

cs_err cs_store_check(const cs_store *s) {
    CS__REQUIRE(s);
    tally t = {0, 0, 0, 0};
    ENSURE(s->epoch <= CS__EPOCH_MAX);
    ENSURE(cs__seq_check(&s->service_seq) == CS_OK);
    ENSURE(s->service_seq.count == HASH_COUNT(s->services));
    for (const cs_service *v = s->services; v; v = v->hh.next)
        if (check_service(s, v, &t)) return CS_E_CORRUPT;
    ENSURE(t.channels == s->n_channels && t.media == s->n_media);
    ENSURE(t.messages == s->n_messages);
    size_t refs = 0;
    for (const cs_ident *id = s->idents; id; id = id->hh.next) {
        ENSURE(id->refs > 0 && id->str[id->len] == '\0');
        refs += id->refs;
    }
    ENSURE(refs == t.ident_refs);
    return CS_OK;
}
