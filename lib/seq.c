/* Ordered sequence of (key, value) pairs with strictly increasing keys.
 *
 *   directory:  blk[0]      blk[1]      ...  blk[nblk-1]   <- appends
 *               first[0]    first[1]         first[nblk-1]
 *                 |           |
 *               [k v k v]   [k v k v k v]    (n <= cap <= CS__SEQ_BLK)
 *
 * Invariants: no block is empty; keys increase across the whole sequence;
 * first[b] == blk[b]->e[0].key. Only the sole block of a short sequence may
 * have cap < CS__SEQ_BLK (it grows by doubling); every later block is full
 * size, so merging into a neighbour never needs memory.
 */
#include "internal.h"

#define FIRST_CAP 4u

static size_t blk_bytes(uint32_t cap) {
    return sizeof(cs_seq_blk) + (size_t)cap * sizeof(cs_seq_ent);
}

static cs_seq_blk *blk_new(cs_store *s, uint32_t cap) {
    cs_seq_blk *b = cs__malloc(s, blk_bytes(cap));
    if (b) {
        b->n = 0;
        b->cap = cap;
    }
    return b;
}

static void blk_free(cs_store *s, cs_seq_blk *b) {
    if (b) cs__free(s, b, blk_bytes(b->cap));
}

/* Directory room for one more block. */
static cs_err dir_reserve(cs_store *s, cs_seq *q) {
    if (q->nblk < q->dcap) return CS_OK;
    size_t cap = q->dcap ? q->dcap * 2 : 4;
    cs_seq_blk **nb = cs__malloc(s, cap * sizeof(*nb));
    int64_t *nf = cs__malloc(s, cap * sizeof(*nf));
    if (!nb || !nf) {
        cs__free(s, nb, cap * sizeof(*nb));
        cs__free(s, nf, cap * sizeof(*nf));
        return CS_E_NOMEM;
    }
    if (q->nblk) {
        memcpy(nb, q->blk, q->nblk * sizeof(*nb));
        memcpy(nf, q->first, q->nblk * sizeof(*nf));
    }
    cs__free(s, q->blk, q->dcap * sizeof(*q->blk));
    cs__free(s, q->first, q->dcap * sizeof(*q->first));
    q->blk = nb;
    q->first = nf;
    q->dcap = cap;
    return CS_OK;
}

/* Replaces the sole, small block by one twice its size. */
static cs_err grow_last(cs_store *s, cs_seq *q) {
    cs_seq_blk *old = q->blk[q->nblk - 1];
    cs_seq_blk *b = blk_new(s, old->cap * 2);
    if (!b) return CS_E_NOMEM;
    b->n = old->n;
    memcpy(b->e, old->e, old->n * sizeof(cs_seq_ent));
    q->blk[q->nblk - 1] = b;
    blk_free(s, old);
    return CS_OK;
}

cs_err cs__seq_reserve(cs_store *s, cs_seq *q) {
    if (q->nblk) {
        cs_seq_blk *last = q->blk[q->nblk - 1];
        if (last->n < last->cap) return CS_OK;
        if (last->cap < CS__SEQ_BLK && q->nblk == 1) return grow_last(s, q);
    }
    if (q->spare) return dir_reserve(s, q);
    cs_err e = dir_reserve(s, q);
    if (e) return e;
    q->spare = blk_new(s, q->nblk ? CS__SEQ_BLK : FIRST_CAP);
    return q->spare ? CS_OK : CS_E_NOMEM;
}

void cs__seq_append(cs_seq *q, int64_t key, void *val) {
    cs_seq_blk *last = q->nblk ? q->blk[q->nblk - 1] : NULL;
    if (!last || last->n == last->cap) {
        last = q->spare;
        q->spare = NULL;
        q->blk[q->nblk] = last;
        q->first[q->nblk] = key;
        q->nblk++;
    }
    last->e[last->n].key = key;
    last->e[last->n].val = val;
    last->n++;
    q->count++;
}

/* Index of the block that would hold key: the last b with first[b] <= key,
 * or 0 when key precedes everything. */
static size_t find_blk(const cs_seq *q, int64_t key) {
    size_t lo = 0, hi = q->nblk;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (q->first[mid] <= key)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* First index i in block with e[i].key >= key (n when none). Keys are
 * distinct integers, so e[j].key >= e[0].key + j and e[j].key <=
 * e[n-1].key - (n-1-j): that bounds the answer from both sides, and in a
 * block without gaps (the common case: indices are dense until deletes)
 * pins it exactly, with no search. */
static uint32_t lower_bound(const cs_seq_blk *b, int64_t key) {
    uint32_t n = b->n;
    if (!n || key <= b->e[0].key) return 0;
    uint64_t d0 = (uint64_t)key - (uint64_t)b->e[0].key;     /* > 0 */
    /* No gap before the key: one probe, next to the header's line. */
    if (d0 < n && b->e[d0].key == key) return (uint32_t)d0;
    if (key > b->e[n - 1].key) return n;
    uint64_t d1 = (uint64_t)b->e[n - 1].key - (uint64_t)key; /* >= 0 */
    uint32_t hi = d0 < n - 1 ? (uint32_t)d0 : n - 1; /* answer <= hi */
    uint32_t lo = d1 < n - 1 ? (n - 1) - (uint32_t)d1 : 0; /* answer >= lo */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (b->e[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool locate(const cs_seq *q, int64_t key, cs_seq_pos *pos) {
    if (!q->nblk) return false;
    size_t b = find_blk(q, key);
    uint32_t i = lower_bound(q->blk[b], key);
    if (i >= q->blk[b]->n || q->blk[b]->e[i].key != key) return false;
    pos->b = b;
    pos->i = i;
    return true;
}

void *cs__seq_find(const cs_seq *q, int64_t key) {
    cs_seq_pos p;
    return locate(q, key, &p) ? cs__seq_at(q, p)->val : NULL;
}

static void dir_remove(cs_seq *q, size_t b) {
    size_t tail = q->nblk - b - 1;
    memmove(&q->blk[b], &q->blk[b + 1], tail * sizeof(*q->blk));
    memmove(&q->first[b], &q->first[b + 1], tail * sizeof(*q->first));
    q->nblk--;
}

/* Moves all of blk[b + 1] into blk[b] when it fits, freeing blk[b + 1]. */
static void merge_next(cs_store *s, cs_seq *q, size_t b) {
    if (b + 1 >= q->nblk) return;
    cs_seq_blk *a = q->blk[b], *c = q->blk[b + 1];
    if (a->n + c->n > a->cap) return;
    memcpy(&a->e[a->n], c->e, c->n * sizeof(cs_seq_ent));
    a->n += c->n;
    blk_free(s, c);
    dir_remove(q, b + 1);
}

void *cs__seq_remove(cs_store *s, cs_seq *q, int64_t key) {
    cs_seq_pos p;
    if (!locate(q, key, &p)) return NULL;
    cs_seq_blk *b = q->blk[p.b];
    void *val = b->e[p.i].val;
    memmove(&b->e[p.i], &b->e[p.i + 1], (b->n - p.i - 1) * sizeof(cs_seq_ent));
    b->n--;
    q->count--;
    if (b->n == 0) {
        blk_free(s, b);
        dir_remove(q, p.b);
        return val;
    }
    q->first[p.b] = b->e[0].key;
    if (b->n < b->cap / 4) {
        merge_next(s, q, p.b);                /* pull the next one in */
        if (p.b > 0) merge_next(s, q, p.b - 1); /* or join the previous */
    }
    return val;
}

bool cs__seq_after(const cs_seq *q, int64_t k, cs_seq_pos *pos) {
    if (!q->nblk) return false;
    if (k == INT64_MAX) return false;
    size_t b = find_blk(q, k + 1);
    uint32_t i = lower_bound(q->blk[b], k + 1);
    if (i == q->blk[b]->n) {
        if (++b == q->nblk) return false;
        i = 0;
    }
    pos->b = b;
    pos->i = i;
    return true;
}

bool cs__seq_before(const cs_seq *q, int64_t k, cs_seq_pos *pos) {
    if (!q->nblk) return false;
    size_t b = find_blk(q, k);
    uint32_t i = lower_bound(q->blk[b], k); /* first >= k; we want one less */
    if (i == 0) {
        if (b == 0) return false;
        b--;
        i = q->blk[b]->n;
    }
    pos->b = b;
    pos->i = i - 1;
    return true;
}

bool cs__seq_next(const cs_seq *q, cs_seq_pos *pos) {
    if (pos->i + 1 < q->blk[pos->b]->n) {
        pos->i++;
        return true;
    }
    if (pos->b + 1 >= q->nblk) return false;
    pos->b++;
    pos->i = 0;
    return true;
}

bool cs__seq_prev(const cs_seq *q, cs_seq_pos *pos) {
    if (pos->i > 0) {
        pos->i--;
        return true;
    }
    if (pos->b == 0) return false;
    pos->b--;
    pos->i = q->blk[pos->b]->n - 1;
    return true;
}

void cs__seq_free(cs_store *s, cs_seq *q) {
    for (size_t b = 0; b < q->nblk; b++) blk_free(s, q->blk[b]);
    blk_free(s, q->spare);
    cs__free(s, q->blk, q->dcap * sizeof(*q->blk));
    cs__free(s, q->first, q->dcap * sizeof(*q->first));
    memset(q, 0, sizeof(*q));
}

size_t cs__seq_bytes(const cs_seq *q) {
    size_t n = q->dcap * (sizeof(*q->blk) + sizeof(*q->first));
    for (size_t b = 0; b < q->nblk; b++) n += blk_bytes(q->blk[b]->cap);
    return n;
}

cs_err cs__seq_check(const cs_seq *q) {
    size_t total = 0;
    int64_t prev = INT64_MIN;
    bool any = false;
    if (q->nblk > q->dcap) return CS_E_CORRUPT;
    for (size_t b = 0; b < q->nblk; b++) {
        const cs_seq_blk *k = q->blk[b];
        if (k->n == 0 || k->n > k->cap || k->cap > CS__SEQ_BLK)
            return CS_E_CORRUPT;
        if (b > 0 && k->cap != CS__SEQ_BLK) return CS_E_CORRUPT;
        if (q->first[b] != k->e[0].key) return CS_E_CORRUPT;
        for (uint32_t i = 0; i < k->n; i++) {
            if (any && k->e[i].key <= prev) return CS_E_CORRUPT;
            if (!k->e[i].val) return CS_E_CORRUPT;
            prev = k->e[i].key;
            any = true;
        }
        total += k->n;
    }
    return total == q->count ? CS_OK : CS_E_CORRUPT;
}
