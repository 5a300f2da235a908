/* Every message of the store by SID: an intrusive chained hash table that
 * resizes incrementally. While a resize runs, t[0] is the old table and t[1]
 * the new one; buckets of t[0] below `rehash` have been moved. Each insert
 * and remove moves a few more buckets, so no single call pays for the whole
 * table (a 10^7-message store never stalls). Lookups never move anything:
 * readers under a shared lock do not write.
 *
 * The hash is the first 8 bytes of the SID: SIDs come from a keyed PRF, so
 * they are uniform and no caller can choose colliding ones.
 */
#include "internal.h"

#define MIN_SIZE 64u
#define STEP_BUCKETS 32u

static uint64_t sid_hash(const uint8_t *sid) {
    uint64_t h;
    memcpy(&h, sid, sizeof h);
    return h;
}

static bool rehashing(const cs_msgtab *h) { return h->t[1] != NULL; }

static cs_msg **bucket(cs_msg **t, size_t size, const uint8_t *sid) {
    return &t[sid_hash(sid) & (size - 1)];
}

/* The table an element with this SID lives in now. */
static int table_of(const cs_msgtab *h, const uint8_t *sid) {
    if (!rehashing(h)) return 0;
    size_t b = sid_hash(sid) & (h->size[0] - 1);
    return b < h->rehash ? 1 : 0;
}

static void finish_if_done(cs_store *s, cs_msgtab *h) {
    if (h->rehash < h->size[0]) return;
    cs__free(s, h->t[0], h->size[0] * sizeof(cs_msg *));
    h->t[0] = h->t[1];
    h->size[0] = h->size[1];
    h->t[1] = NULL;
    h->size[1] = 0;
    h->rehash = 0;
}

/* The new table is zeroed as the move reaches it, not when allocated: one
 * memset of a 10^7-bucket table would first-touch 80 MB in a single call.
 * Moving old bucket i fills new buckets i, i + size[0], ... (the only ones
 * its elements, and any insert since, can reach), so zero those first. */
static void zero_targets(cs_msgtab *h, size_t i) {
    for (size_t j = i; j < h->size[1]; j += h->size[0]) h->t[1][j] = NULL;
}

static void step(cs_store *s, cs_msgtab *h) {
    if (!rehashing(h)) return;
    for (unsigned k = 0; k < STEP_BUCKETS && h->rehash < h->size[0]; k++) {
        cs_msg *m = h->t[0][h->rehash];
        zero_targets(h, h->rehash);
        h->t[0][h->rehash] = NULL;
        while (m) {
            cs_msg *next = m->hnext;
            cs_msg **b = bucket(h->t[1], h->size[1], m->sidb);
            m->hnext = *b;
            *b = m;
            m = next;
        }
        h->rehash++;
    }
    finish_if_done(s, h);
}

static cs_err start_resize(cs_store *s, cs_msgtab *h, size_t size) {
    cs_msg **t = cs__malloc(s, size * sizeof(cs_msg *));
    if (!t) return CS_E_NOMEM;
    if (!h->t[0]) {
        memset(t, 0, size * sizeof(cs_msg *));
        h->t[0] = t;
        h->size[0] = size;
        return CS_OK;
    }
    h->t[1] = t; /* zeroed bucket by bucket as the move goes (step) */
    h->size[1] = size;
    h->rehash = 0;
    return CS_OK;
}

cs_err cs__msgtab_reserve(cs_store *s, cs_msgtab *h) {
    if (!h->t[0]) return start_resize(s, h, MIN_SIZE);
    if (rehashing(h) || h->count + 1 <= h->size[0]) return CS_OK;
    if (h->size[0] > SIZE_MAX / 2 / sizeof(cs_msg *)) return CS_E_NOMEM;
    return start_resize(s, h, h->size[0] * 2);
}

bool cs__msgtab_insert(cs_store *s, cs_msgtab *h, cs_msg *m) {
    /* An element with this SID can only be in the chain it would go to, so
     * the uniqueness check costs no extra cache miss. */
    int t = table_of(h, m->sidb);
    cs_msg **b = bucket(h->t[t], h->size[t], m->sidb);
    for (const cs_msg *o = *b; o; o = o->hnext)
        if (memcmp(o->sidb, m->sidb, CS__SID_BYTES) == 0) return false;
    m->hnext = *b;
    *b = m;
    h->count++;
    step(s, h);
    return true;
}

cs_msg *cs__msgtab_find(const cs_msgtab *h, const uint8_t *sid) {
    if (!h->t[0]) return NULL;
    int t = table_of(h, sid);
    for (cs_msg *m = *bucket(h->t[t], h->size[t], sid); m; m = m->hnext)
        if (memcmp(m->sidb, sid, CS__SID_BYTES) == 0) return m;
    return NULL;
}

/* The link that points at m. */
static cs_msg **link_of(cs_msgtab *h, const cs_msg *m) {
    int t = table_of(h, m->sidb);
    cs_msg **l = bucket(h->t[t], h->size[t], m->sidb);
    while (*l && *l != m) l = &(*l)->hnext;
    return l;
}

void cs__msgtab_remove(cs_store *s, cs_msgtab *h, cs_msg *m) {
    cs_msg **l = link_of(h, m);
    if (!*l) return;
    *l = m->hnext;
    m->hnext = NULL;
    h->count--;
    step(s, h);
    /* Shrink when mostly empty; a failed allocation just keeps the size. */
    if (!rehashing(h) && h->size[0] > MIN_SIZE && h->count < h->size[0] / 8)
        (void)start_resize(s, h, h->size[0] / 4 < MIN_SIZE ? MIN_SIZE
                                                           : h->size[0] / 4);
}

void cs__msgtab_replace(cs_msgtab *h, cs_msg *old, cs_msg *nw) {
    cs_msg **l = link_of(h, old);
    nw->hnext = old->hnext;
    *l = nw;
}

void cs__msgtab_free(cs_store *s, cs_msgtab *h) {
    cs__free(s, h->t[0], h->size[0] * sizeof(cs_msg *));
    cs__free(s, h->t[1], h->size[1] * sizeof(cs_msg *));
    memset(h, 0, sizeof(*h));
}

cs_err cs__msgtab_check(const cs_msgtab *h) {
    size_t n = 0;
    for (int t = 0; t < 2; t++) {
        if (!h->t[t]) continue;
        for (size_t b = 0; b < h->size[t]; b++) {
            if (t == 0 && rehashing(h) && b < h->rehash && h->t[0][b])
                return CS_E_CORRUPT;
            if (t == 1 && b % h->size[0] >= h->rehash) continue; /* not yet zeroed */
            for (const cs_msg *m = h->t[t][b]; m; m = m->hnext) {
                if ((sid_hash(m->sidb) & (h->size[t] - 1)) != b)
                    return CS_E_CORRUPT;
                if (table_of(h, m->sidb) != t) return CS_E_CORRUPT;
                n++;
            }
        }
    }
    return n == h->count ? CS_OK : CS_E_CORRUPT;
}
