/* Message records live in their channel's arena: chunks that records are
 * appended to in creation order, which is index order. A page of 50
 * messages is then a few contiguous kilobytes that the hardware prefetcher
 * streams, instead of 50 scattered allocations that each miss the cache; a
 * create is a pointer bump instead of a malloc, and a record carries no
 * allocator header or size-class rounding.
 *
 * A record names its chunk by an id. The arena keeps, by id, the chunk
 * pointer and its live byte count, so a delete adjusts a small hot array
 * instead of reaching the chunk's header (another cache miss and, on a
 * large store, another TLB miss). Freed records leave holes. A chunk whose
 * records are all gone is freed at once. A chunk that falls below a quarter
 * live is flagged, and at the end of the mutating call (cs__arena_tidy) its
 * remaining records move to the tail and it is freed, so memory follows the
 * live records: at most about four times the live bytes plus one chunk per
 * channel, whatever the order of deletes. */
#include "internal.h"

#include <stddef.h>

/* Chunk sizes: a quarter of what the channel holds, so that the unused tail
 * of the newest chunk stays small next to the channel, between these
 * bounds. A record larger than the upper bound gets a chunk of its own. */
#define CHUNK_MIN 512u
#define CHUNK_MAX 16384u

static size_t chunk_bytes(uint32_t size) {
    return offsetof(cs_chunk, data) + size;
}

static void chunk_free(cs_store *s, cs_arena *a, cs_chunk *k) {
    uint32_t id = k->id;
    a->chunk[id] = NULL;
    a->live[id] = a->free_id;
    a->free_id = id;
    a->nchunks--;
    a->chunk_total -= k->size;
    if (a->sparse == id) a->sparse = CS__NO_CHUNK;
    if (a->tail == k) {
        a->tail = NULL;
        a->tail_room = 0;
    }
    cs__free(s, k, chunk_bytes(k->size));
}

/* Room for one more id; false when out of memory. */
static bool id_room(cs_store *s, cs_arena *a) {
    if (a->free_id != CS__NO_CHUNK || a->nid < a->cap) return true;
    if (a->cap > UINT32_MAX / 4) return false;
    uint32_t cap = a->cap ? a->cap * 2 : 4;
    cs_chunk **c = cs__malloc(s, cap * sizeof *c);
    uint32_t *l = cs__malloc(s, cap * sizeof *l);
    if (!c || !l) {
        cs__free(s, c, cap * sizeof *c);
        cs__free(s, l, cap * sizeof *l);
        return false;
    }
    if (a->nid) {
        memcpy(c, a->chunk, a->nid * sizeof *c);
        memcpy(l, a->live, a->nid * sizeof *l);
    }
    cs__free(s, a->chunk, a->cap * sizeof *a->chunk);
    cs__free(s, a->live, a->cap * sizeof *a->live);
    a->chunk = c;
    a->live = l;
    a->cap = cap;
    return true;
}

cs_msg *cs__arena_alloc(cs_store *s, cs_arena *a, size_t bytes) {
    /* Records are 8-byte aligned; sizes fit 32 bits (limits keep a record
     * far below that, and a caller's limits cannot lift it past 4 GiB). */
    if (bytes > UINT32_MAX - offsetof(cs_chunk, data) - 7) return NULL;
    size_t cap = (bytes + 7) & ~(size_t)7;
    if (!a->tail || a->tail_room < cap) {
        size_t want = a->live_total / 4;
        if (want < CHUNK_MIN) want = CHUNK_MIN;
        if (want > CHUNK_MAX) want = CHUNK_MAX;
        if (want < cap) want = cap;
        want = (want + 7) & ~(size_t)7;
        if (!id_room(s, a)) return NULL;
        cs_chunk *k = cs__malloc(s, chunk_bytes((uint32_t)want));
        if (!k) return NULL;
        uint32_t id;
        if (a->free_id != CS__NO_CHUNK) {
            id = a->free_id;
            a->free_id = a->live[id];
        } else {
            id = a->nid++;
        }
        k->size = (uint32_t)want;
        k->used = 0;
        k->id = id;
        a->chunk[id] = k;
        a->live[id] = 0;
        if (a->tail) a->tail->used = a->tail->size - a->tail_room;
        a->tail = k;
        a->tail_next = k->data;
        a->tail_room = k->size;
        a->tail_id = id;
        a->nchunks++;
        a->chunk_total += k->size;
    }
    cs_msg *m = (cs_msg *)(void *)a->tail_next;
    m->chunk = a->tail_id;
    m->cap = (uint32_t)cap;
    m->flags = CS__M_LIVE;
    a->tail_next += cap;
    a->tail_room -= (uint32_t)cap;
    a->live[a->tail_id] += (uint32_t)cap;
    a->live_total += cap;
    return m;
}

void cs__arena_release(cs_store *s, cs_arena *a, cs_msg *m) {
    uint32_t id = m->chunk;
    m->flags &= (uint8_t)~CS__M_LIVE;
    a->live[id] -= m->cap;
    a->live_total -= m->cap;
    if (a->live[id] == 0) {
        chunk_free(s, a, a->chunk[id]);
    } else if (a->sparse == CS__NO_CHUNK && a->chunk[id] != a->tail) {
        /* used is in the chunk's header: look only when the live count is
         * already small next to the largest chunk */
        if ((size_t)a->live[id] * 4 < CHUNK_MAX &&
            (size_t)a->live[id] * 4 < a->chunk[id]->used)
            a->sparse = id;
    }
}

void cs__arena_free(cs_store *s, cs_arena *a) {
    for (uint32_t id = 0; id < a->nid; id++)
        if (a->chunk[id]) cs__free(s, a->chunk[id], chunk_bytes(a->chunk[id]->size));
    cs__free(s, a->chunk, a->cap * sizeof *a->chunk);
    cs__free(s, a->live, a->cap * sizeof *a->live);
    cs__arena_init(a);
}

/* Moves the flagged chunk's live records to the tail, then frees it. Each
 * move is complete before the next starts (new copy, the index pointed at
 * it, old copy released), so running out of memory half-way only leaves
 * some records where they were. */
void cs__arena_tidy(cs_store *s, cs_channel *c) {
    cs_arena *a = &c->arena;
    if (a->sparse == CS__NO_CHUNK) return;
    cs_chunk *k = a->chunk[a->sparse];
    uint32_t id = a->sparse;
    a->sparse = CS__NO_CHUNK;
    for (uint32_t at = 0; at < k->used;) {
        cs_msg *m = (cs_msg *)(void *)(k->data + at);
        uint32_t cap = m->cap;
        if (m->flags & CS__M_LIVE) {
            bool last = a->live[id] == cap; /* the chunk goes with this one */
            cs_msg *n = cs__arena_alloc(s, a, cap);
            if (!n) return;
            uint32_t nchunk = n->chunk;
            memcpy(n, m, cap);
            n->chunk = nchunk;
            cs__dix_set(&c->msgs, cs__msg_index(m), n);
            cs__arena_release(s, a, m);
            if (last) return;
        }
        at += cap;
    }
}

cs_err cs__arena_check(const cs_channel *c, const cs_msg *dying) {
    const cs_arena *a = &c->arena;
    if (a->nid > a->cap || (a->cap && (!a->chunk || !a->live)))
        return CS_E_CORRUPT;
    if (a->nid == 0)
        return a->nchunks == 0 && !a->tail && a->free_id == CS__NO_CHUNK &&
                       a->sparse == CS__NO_CHUNK
                   ? CS_OK
                   : CS_E_CORRUPT;
    size_t live = 0, n = 0, chunks = 0, total = 0, nfree = 0;
    bool tail_seen = a->tail == NULL;
    for (uint32_t f = a->free_id; f != CS__NO_CHUNK; f = a->live[f]) {
        if (f >= a->nid || a->chunk[f] || ++nfree > a->nid) return CS_E_CORRUPT;
    }
    for (uint32_t id = 0; id < a->nid; id++) {
        const cs_chunk *k = a->chunk[id];
        if (!k) continue;
        if (k == a->tail &&
            (a->tail_id != id || a->tail_room > k->size ||
             a->tail_next != k->data + (k->size - a->tail_room)))
            return CS_E_CORRUPT;
        uint32_t used = k == a->tail ? k->size - a->tail_room : k->used;
        if (k->id != id || used > k->size || a->live[id] == 0 ||
            a->live[id] > used)
            return CS_E_CORRUPT;
        uint32_t kl = 0;
        for (uint32_t at = 0; at < used;) {
            const cs_msg *m = (const cs_msg *)(const void *)(k->data + at);
            if (m->cap < offsetof(cs_msg, data) || m->cap % 8 ||
                m->cap > used - at || m->chunk != id)
                return CS_E_CORRUPT;
            if (m->flags & CS__M_LIVE) {
                kl += m->cap;
                if (m != dying) {
                    n++;
                    if (cs__dix_find(&c->msgs, cs__msg_index(m)) != m)
                        return CS_E_CORRUPT;
                }
            }
            at += m->cap;
        }
        if (kl != a->live[id]) return CS_E_CORRUPT;
        live += kl;
        total += k->size;
        chunks++;
        if (k == a->tail) tail_seen = true;
    }
    if (a->sparse != CS__NO_CHUNK &&
        (a->sparse >= a->nid || !a->chunk[a->sparse]))
        return CS_E_CORRUPT;
    if (!tail_seen || live != a->live_total || n != c->msgs.count ||
        chunks != a->nchunks || total != a->chunk_total ||
        chunks + nfree != a->nid)
        return CS_E_CORRUPT;
    return CS_OK;
}
