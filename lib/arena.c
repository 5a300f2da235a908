/* Message records live in their channel's arena: a list of chunks that
 * records are appended to in creation order, which is index order. A page of
 * 50 messages is then a few contiguous kilobytes that the hardware prefetcher
 * streams, instead of 50 scattered allocations that each miss the cache; a
 * create is a pointer bump instead of a malloc, and a record carries no
 * allocator header or size-class rounding.
 *
 * Freed records leave holes. A chunk whose records are all gone is freed at
 * once. A chunk that falls below a quarter live is flagged, and at the end
 * of the mutating call (cs__arena_tidy) its remaining records move to the
 * tail and it is freed, so memory follows the live records: at most about
 * four times the live bytes plus one chunk per channel, whatever the order
 * of deletes. */
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

static cs_chunk *chunk_of(const cs_msg *m) {
    return (cs_chunk *)(void *)((char *)(uintptr_t)m - m->off);
}

static void chunk_unlink(cs_arena *a, cs_chunk *k) {
    if (k->prev) k->prev->next = k->next; else a->head = k->next;
    if (k->next) k->next->prev = k->prev; else a->tail = k->prev;
}

static void chunk_free(cs_store *s, cs_arena *a, cs_chunk *k) {
    chunk_unlink(a, k);
    a->nchunks--;
    a->chunk_total -= k->size;
    if (a->sparse == k) a->sparse = NULL;
    cs__free(s, k, chunk_bytes(k->size));
}

cs_msg *cs__arena_alloc(cs_store *s, cs_arena *a, size_t bytes) {
    /* Records are 8-byte aligned; sizes fit 32 bits (limits keep a record
     * far below that, and a caller's limits cannot lift it past 4 GiB). */
    if (bytes > UINT32_MAX - offsetof(cs_chunk, data) - 7) return NULL;
    size_t cap = (bytes + 7) & ~(size_t)7;
    cs_chunk *k = a->tail;
    if (!k || k->size - k->used < cap) {
        size_t want = a->live / 4;
        if (want < CHUNK_MIN) want = CHUNK_MIN;
        if (want > CHUNK_MAX) want = CHUNK_MAX;
        if (want < cap) want = cap;
        want = (want + 7) & ~(size_t)7;
        k = cs__malloc(s, chunk_bytes(want));
        if (!k) return NULL;
        k->size = (uint32_t)want;
        k->used = k->live = 0;
        k->next = NULL;
        k->prev = a->tail;
        if (a->tail) a->tail->next = k; else a->head = k;
        a->tail = k;
        a->nchunks++;
        a->chunk_total += k->size;
    }
    cs_msg *m = (cs_msg *)(void *)(k->data + k->used);
    m->off = (uint32_t)(offsetof(cs_chunk, data) + k->used);
    m->cap = (uint32_t)cap;
    m->flags = CS__M_LIVE;
    k->used += (uint32_t)cap;
    k->live += (uint32_t)cap;
    a->live += cap;
    return m;
}

void cs__arena_release(cs_store *s, cs_arena *a, cs_msg *m) {
    cs_chunk *k = chunk_of(m);
    m->flags &= (uint8_t)~CS__M_LIVE;
    k->live -= m->cap;
    a->live -= m->cap;
    if (k->live == 0)
        chunk_free(s, a, k);
    else if (k != a->tail && (size_t)k->live * 4 < k->used && !a->sparse)
        a->sparse = k;
}

void cs__arena_free(cs_store *s, cs_arena *a) {
    while (a->head) chunk_free(s, a, a->head);
    a->live = 0;
}

/* Moves the flagged chunk's live records to the tail, then frees it. Each
 * move is complete before the next starts (new copy, both indexes pointed
 * at it, old copy released), so running out of memory half-way only leaves
 * some records where they were. */
void cs__arena_tidy(cs_store *s, cs_channel *c) {
    cs_arena *a = &c->arena;
    cs_chunk *k = a->sparse;
    if (!k) return;
    a->sparse = NULL;
    for (uint32_t at = 0; at < k->used;) {
        cs_msg *m = (cs_msg *)(void *)(k->data + at);
        uint32_t cap = m->cap;
        if (m->flags & CS__M_LIVE) {
            bool last = k->live == cap; /* the chunk goes with this one */
            cs_msg *n = cs__arena_alloc(s, a, cap);
            if (!n) return;
            uint32_t ncap = n->cap, noff = n->off;
            memcpy(n, m, cap);
            n->cap = ncap;
            n->off = noff;
            cs__dix_set(&c->msgs, m->index, n);
            cs__arena_release(s, a, m);
            if (last) return;
        }
        at += cap;
    }
}

cs_err cs__arena_check(const cs_channel *c, const cs_msg *dying) {
    const cs_arena *a = &c->arena;
    size_t live = 0, n = 0, chunks = 0, total = 0;
    bool sparse_seen = a->sparse == NULL;
    for (const cs_chunk *k = a->head; k; k = k->next) {
        if (k->next ? k->next->prev != k : a->tail != k) return CS_E_CORRUPT;
        if (k->used > k->size || k->live == 0 || k->live > k->used)
            return CS_E_CORRUPT;
        uint32_t kl = 0;
        for (uint32_t at = 0; at < k->used;) {
            const cs_msg *m = (const cs_msg *)(const void *)(k->data + at);
            if (m->cap < offsetof(cs_msg, data) || m->cap % 8 ||
                m->cap > k->used - at ||
                m->off != offsetof(cs_chunk, data) + at)
                return CS_E_CORRUPT;
            if (m->flags & CS__M_LIVE) {
                kl += m->cap;
                if (m == dying) {
                    at += m->cap;
                    continue;
                }
                n++;
                if (cs__dix_find(&c->msgs, m->index) != m) return CS_E_CORRUPT;
            }
            at += m->cap;
        }
        if (kl != k->live) return CS_E_CORRUPT;
        live += kl;
        total += k->size;
        chunks++;
        if (k == a->sparse) sparse_seen = true;
    }
    if (!sparse_seen || live != a->live || n != c->msgs.count ||
        chunks != a->nchunks || total != a->chunk_total)
        return CS_E_CORRUPT;
    return CS_OK;
}
