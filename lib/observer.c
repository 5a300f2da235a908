/* Change observers and the commit point of every change.
 *
 * Invariants: cs__commit runs exactly once per committed change, after the
 * change is complete, so the commit number orders changes and observers see
 * the new state; while observers run, s->in_observer is set (mutating calls
 * refuse) and tl_observing names the store on this thread only (lock calls
 * refuse), so no other thread ever reads what the writer sets here. */
#include "internal.h"

static _Thread_local const cs_store *tl_observing;

bool cs__observing(const cs_store *s) { return tl_observing == s; }

cs_err cs_observer_add(cs_store *s, cs_observer_fn fn, void *ctx,
                       uint64_t *id) {
    CS__REQUIRE(s);
    if (!fn) return CS_E_INVALID_ARGUMENT;
    if (s->in_observer) return CS_E_REENTRANT;
    if (s->n_obs == s->cap_obs) {
        size_t cap = s->cap_obs ? s->cap_obs * 2 : 4;
        cs_observer *o = cs__malloc(s, cap * sizeof *o);
        if (!o) return CS_E_NOMEM;
        if (s->n_obs) memcpy(o, s->obs, s->n_obs * sizeof *o);
        cs__free(s, s->obs, s->cap_obs * sizeof *o);
        s->obs = o;
        s->cap_obs = cap;
    }
    uint64_t nid = ++s->next_obs_id;
    s->obs[s->n_obs++] = (cs_observer){fn, ctx, nid};
    if (id) *id = nid;
    return CS_OK;
}

cs_err cs_observer_remove(cs_store *s, uint64_t id) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    for (size_t i = 0; i < s->n_obs; i++) {
        if (s->obs[i].id != id) continue;
        memmove(&s->obs[i], &s->obs[i + 1], (s->n_obs - i - 1) * sizeof *s->obs);
        s->n_obs--;
        return CS_OK;
    }
    return CS_E_NOT_FOUND;
}

void cs__commit(cs_store *s, cs_event *ev) {
    ev->seq = ++s->commits;
    if (!s->n_obs) return;
    const cs_store *outer = tl_observing; /* another store's, or NULL */
    s->in_observer = true;
    tl_observing = s;
    for (size_t i = 0; i < s->n_obs; i++) s->obs[i].fn(s->obs[i].ctx, ev);
    tl_observing = outer;
    s->in_observer = false;
}
