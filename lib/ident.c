/* Interned identities: a channel's CreatedBy and a message's LastUpdatedBy.
 *
 * Invariants: one entry per distinct string in s->idents (keyed SipHash, so
 * callers cannot flood one chain); refs counts the channels and messages
 * that point to it, and an entry is removed when it drops to zero. */
#include "internal.h"

cs_err cs__ident_get(cs_store *s, const char *p, size_t n, cs_ident **out) {
    uint32_t h = cs__keyed_hash(s, p, n);
    cs_ident *id;
    HASH_FIND_BYHASHVALUE(hh, s->idents, p, n, h, id);
    if (id) {
        id->refs++;
        *out = id;
        return CS_OK;
    }
    id = cs__malloc(s, sizeof *id + n + 1);
    if (!id) return CS_E_NOMEM;
    id->refs = 1;
    id->len = (uint32_t)n;
    memcpy(id->str, p, n);
    id->str[n] = '\0';
    CS__UT(s);
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->idents, id->str, n, h, id);
    if (CS__UT_FAILED) {
        cs__free(s, id, sizeof *id + n + 1);
        return CS_E_NOMEM;
    }
    *out = id;
    return CS_OK;
}

void cs__ident_put(cs_store *s, cs_ident *id) {
    if (cs__ident_release(s, id)) cs__ident_free(s, id);
}

bool cs__ident_release(cs_store *s, cs_ident *id) {
    if (!id || --id->refs) return false;
    CS__UT(s);
    HASH_DEL(s->idents, id);
    return true;
}

void cs__ident_free(cs_store *s, cs_ident *id) {
    cs__free(s, id, sizeof *id + id->len + 1);
}
