/* Dense index: a channel's messages by index.
 *
 * A channel gives its messages the indices 0, 1, 2, ... and never reuses
 * one, so the index itself is the position: key k lives in slot k % 256 of
 * block k / 256, and the directory holds one pointer per block. A lookup is
 * two loads with no search; a delete clears a slot (no shifting); an
 * iteration skips cleared slots. Nothing stores keys, so an entry costs 8
 * bytes.
 *
 *   dir:  [lo ... n)   entry j covers keys (off + j) * 256 ...
 *          |     `- NULL: every key of that block is deleted
 *          `- blocks before lo are NULL too (trimmed lazily)
 *
 * A block is freed when its last entry goes, and leading freed blocks are
 * dropped from the directory, so memory follows the live entries except
 * for sparse blocks: at most one 2 KiB block per live entry in the worst
 * pattern of deletes, 8 bytes per entry when dense. */
#include "internal.h"

static size_t blk_bytes(void) { return sizeof(cs_dix_blk); }

static bool slot_of(const cs_dix *q, int64_t key, size_t *j) {
    if (key < 0) return false;
    uint64_t sl = (uint64_t)key / CS__DIX_BLK;
    if (sl < q->off || sl - q->off >= q->n) return false;
    *j = (size_t)(sl - q->off);
    return true;
}

cs_err cs__dix_reserve(cs_store *s, cs_dix *q, int64_t key) {
    if (key < 0) return CS_E_INVALID_ARGUMENT;
    uint64_t sl = (uint64_t)key / CS__DIX_BLK;
    if (q->n == 0 && q->lo == 0 && sl != q->off) {
        /* an empty directory starts at the key's block */
        q->off = sl;
    }
    if (sl < q->off) return CS_E_INVALID_ARGUMENT; /* keys only grow */
    uint64_t j = sl - q->off;
    if (j < q->n && q->dir[j]) return CS_OK;
    if (!q->spare) {
        q->spare = cs__malloc(s, blk_bytes());
        if (!q->spare) return CS_E_NOMEM;
        memset(q->spare, 0, blk_bytes());
    }
    if (j < q->cap) return CS_OK;
    /* Directory room: first drop the leading freed blocks, else grow. */
    if (q->lo > 0 && j - q->lo < q->cap) {
        memmove(q->dir, q->dir + q->lo, (q->n - q->lo) * sizeof *q->dir);
        q->n -= q->lo;
        q->off += q->lo;
        q->lo = 0;
        return CS_OK;
    }
    size_t cap = q->cap ? q->cap : 4;
    while (cap <= j - q->lo) cap *= 2;
    cs_dix_blk **d = cs__malloc(s, cap * sizeof *d);
    if (!d) return CS_E_NOMEM;
    size_t keep = q->n - q->lo;
    if (keep) memcpy(d, q->dir + q->lo, keep * sizeof *d);
    cs__free(s, q->dir, q->cap * sizeof *q->dir);
    q->dir = d;
    q->cap = cap;
    q->n = keep;
    q->off += q->lo;
    q->lo = 0;
    return CS_OK;
}

void cs__dix_append(cs_dix *q, int64_t key, void *val) {
    uint64_t sl = (uint64_t)key / CS__DIX_BLK;
    size_t j = (size_t)(sl - q->off);
    while (q->n <= j) q->dir[q->n++] = NULL;
    if (!q->dir[j]) {
        q->dir[j] = q->spare;
        q->spare = NULL;
        if (q->lo > j) q->lo = j;
    }
    cs_dix_blk *b = q->dir[j];
    b->v[(uint64_t)key % CS__DIX_BLK] = val;
    b->live++;
    q->count++;
    q->last = key;
}

void *cs__dix_find(const cs_dix *q, int64_t key) {
    size_t j;
    if (!slot_of(q, key, &j) || !q->dir[j]) return NULL;
    return q->dir[j]->v[(uint64_t)key % CS__DIX_BLK];
}

void cs__dix_set(cs_dix *q, int64_t key, void *val) {
    size_t j;
    if (slot_of(q, key, &j) && q->dir[j])
        q->dir[j]->v[(uint64_t)key % CS__DIX_BLK] = val;
}

void *cs__dix_remove(cs_store *s, cs_dix *q, int64_t key) {
    size_t j;
    if (!slot_of(q, key, &j) || !q->dir[j]) return NULL;
    cs_dix_blk *b = q->dir[j];
    void **slot = &b->v[(uint64_t)key % CS__DIX_BLK];
    void *v = *slot;
    if (!v) return NULL;
    *slot = NULL;
    q->count--;
    if (--b->live == 0) {
        cs__free(s, b, blk_bytes());
        q->dir[j] = NULL;
        while (q->lo < q->n && !q->dir[q->lo]) q->lo++;
        if (q->lo == q->n) { /* all gone: start over at the next key */
            q->n = q->lo = 0;
            q->off = (uint64_t)q->last / CS__DIX_BLK;
        }
    }
    return v;
}

void cs__dix_free(cs_store *s, cs_dix *q) {
    for (size_t j = q->lo; j < q->n; j++)
        if (q->dir[j]) cs__free(s, q->dir[j], blk_bytes());
    cs__free(s, q->dir, q->cap * sizeof *q->dir);
    if (q->spare) cs__free(s, q->spare, blk_bytes());
    memset(q, 0, sizeof *q);
}

/* ---- ordered walks ------------------------------------------------------ */

/* First live key >= k, or false. */
static bool first_from(const cs_dix *q, int64_t k, int64_t *out) {
    if (!q->count) return false;
    if (k < 0) k = 0;
    uint64_t sl = (uint64_t)k / CS__DIX_BLK;
    size_t j;
    uint32_t i;
    if (sl < q->off + q->lo) {
        j = q->lo;
        i = 0;
    } else {
        if (sl - q->off >= q->n) return false;
        j = (size_t)(sl - q->off);
        i = (uint32_t)((uint64_t)k % CS__DIX_BLK);
    }
    for (; j < q->n; j++, i = 0) {
        const cs_dix_blk *b = q->dir[j];
        if (!b) continue;
        for (; i < CS__DIX_BLK; i++) {
            if (b->v[i]) {
                *out = (int64_t)((q->off + j) * CS__DIX_BLK + i);
                return true;
            }
        }
    }
    return false;
}

/* Last live key <= k, or false. */
static bool last_upto(const cs_dix *q, int64_t k, int64_t *out) {
    if (!q->count || k < 0) return false;
    uint64_t sl = (uint64_t)k / CS__DIX_BLK;
    if (sl < q->off + q->lo) return false;
    size_t j;
    uint32_t i;
    if (sl - q->off >= q->n) {
        j = q->n - 1;
        i = CS__DIX_BLK - 1;
    } else {
        j = (size_t)(sl - q->off);
        i = (uint32_t)((uint64_t)k % CS__DIX_BLK);
    }
    for (;; i = CS__DIX_BLK - 1) {
        const cs_dix_blk *b = q->dir[j];
        if (b) {
            for (;; i--) {
                if (b->v[i]) {
                    *out = (int64_t)((q->off + j) * CS__DIX_BLK + i);
                    return true;
                }
                if (i == 0) break;
            }
        }
        if (j == q->lo) return false;
        j--;
    }
}

bool cs__dix_after(const cs_dix *q, int64_t k, int64_t *out) {
    if (k == INT64_MAX) return false;
    return first_from(q, k + 1, out);
}

bool cs__dix_before(const cs_dix *q, int64_t k, int64_t *out) {
    if (k == INT64_MIN) return false;
    return last_upto(q, k - 1, out);
}

int64_t cs__dix_last_key(const cs_dix *q) {
    int64_t k = -1;
    if (!last_upto(q, INT64_MAX, &k)) return -1;
    return k;
}

/* ---- checks ------------------------------------------------------------- */

cs_err cs__dix_check(const cs_dix *q) {
    if (q->lo > q->n || q->n > q->cap || (q->cap && !q->dir))
        return CS_E_CORRUPT;
    size_t count = 0;
    for (size_t j = 0; j < q->n; j++) {
        const cs_dix_blk *b = q->dir[j];
        if (j < q->lo && b) return CS_E_CORRUPT;
        if (!b) continue;
        uint32_t live = 0;
        for (uint32_t i = 0; i < CS__DIX_BLK; i++) live += b->v[i] != NULL;
        if (live == 0 || live != b->live) return CS_E_CORRUPT;
        count += live;
    }
    if (q->lo < q->n && !q->dir[q->lo]) return CS_E_CORRUPT;
    if (count != q->count) return CS_E_CORRUPT;
    if (count && (q->off + q->n) * CS__DIX_BLK <= (uint64_t)q->last)
        return CS_E_CORRUPT;
    return CS_OK;
}

size_t cs__dix_bytes(const cs_dix *q) {
    size_t n = q->cap * sizeof *q->dir + (q->spare ? blk_bytes() : 0);
    for (size_t j = q->lo; j < q->n; j++)
        if (q->dir[j]) n += blk_bytes();
    return n;
}
