/* Dense index: a channel's messages by index.
 *
 * A channel gives its messages the indices 0, 1, 2, ... and never reuses
 * one, so the index itself is the position: key k lives in slot k % 256 of
 * block k / 256, found through a directory with one pointer per block. A
 * lookup is a few loads with no search; a delete clears a slot (no
 * shifting); an iteration skips cleared slots. Nothing stores keys, so an
 * entry costs 8 bytes.
 *
 * The directory is paged, pages of 512 block pointers (one page covers
 * 131,072 indices): a growing channel adds a page now and then instead of
 * copying one ever larger array (at 10^7 messages in one channel a flat
 * directory's doubling copied 256 KiB into fresh pages, most of a
 * millisecond). Page 0 starts small and doubles up to the full size, so a
 * channel of a few messages pays a few pointers.
 *
 *   dir entry j = top[j / 512][j % 512] covers keys (off + j) * 256 ...
 *   entries [lo, n) in use; NULL: every key of that block is deleted
 *
 * A block is freed when its last entry goes; leading freed blocks are
 * skipped (lo) and leading pages of them freed, so memory follows the live
 * entries except for sparse blocks: at most one 2 KiB block per live entry
 * in the worst pattern of deletes, 8 bytes per entry when dense. */
#include "internal.h"

#define PAGE CS__DIX_PAGE

static size_t blk_bytes(void) { return sizeof(cs_dix_blk); }

static inline cs_dix_blk **ent(const cs_dix *q, size_t j) {
    return &q->top[j / PAGE][j % PAGE];
}

static size_t capacity(const cs_dix *q) {
    return q->ntop == 0 ? 0 : q->ntop == 1 ? q->cap0 : q->ntop * PAGE;
}

static bool slot_of(const cs_dix *q, int64_t key, size_t *j) {
    if (key < 0) return false;
    uint64_t sl = (uint64_t)key / CS__DIX_BLK;
    if (sl < q->off || sl - q->off >= q->n) return false;
    *j = (size_t)(sl - q->off);
    return true;
}

static cs_dix_blk **page_new(cs_store *s, size_t n) {
    cs_dix_blk **p = cs__malloc(s, n * sizeof *p);
    if (p) memset(p, 0, n * sizeof *p);
    return p;
}

/* Room in the directory for entry j (j >= capacity). Allocates everything
 * first, then links: on failure nothing changed. */
static cs_err dir_grow(cs_store *s, cs_dix *q, size_t j) {
    if (q->ntop <= 1 && j < PAGE) { /* page 0 doubles */
        size_t cap = q->cap0 ? q->cap0 : 4;
        while (cap <= j) cap *= 2;
        cs_dix_blk **p = page_new(s, cap);
        if (!p) return CS_E_NOMEM;
        cs_dix_blk ***top = q->top;
        if (!top) {
            top = cs__malloc(s, 2 * sizeof *top);
            if (!top) {
                cs__free(s, p, cap * sizeof *p);
                return CS_E_NOMEM;
            }
            q->top = top;
            q->tcap = 2;
        }
        if (q->ntop) {
            memcpy(p, top[0], q->cap0 * sizeof *p);
            cs__free(s, top[0], q->cap0 * sizeof *p);
        }
        top[0] = p;
        q->ntop = 1;
        q->cap0 = cap;
        return CS_OK;
    }
    /* Full pages from here: page 0 first grown to full size if needed,
     * then new pages up to the one holding j. */
    size_t want = j / PAGE + 1;
    size_t grow0 = q->ntop == 1 && q->cap0 < PAGE;
    size_t add = want - q->ntop;
    /* Appends add at most one page past the end; a snapshot restore may
     * jump over a gap of deleted messages, hence more. */
    cs_dix_blk **small[4], ***fresh = small;
    size_t nf = grow0 + add;
    if (nf > 4) {
        if (nf > SIZE_MAX / sizeof *fresh ||
            !(fresh = cs__malloc(s, nf * sizeof *fresh)))
            return CS_E_NOMEM;
    }
    size_t k = 0;
    for (; k < nf; k++)
        if (!(fresh[k] = page_new(s, PAGE))) break;
    cs_dix_blk ***ntopv = NULL;
    size_t tcap = q->tcap;
    if (k == nf && want > q->tcap) {
        while (tcap < want) tcap *= 2;
        ntopv = cs__malloc(s, tcap * sizeof *ntopv);
    }
    if (k < nf || (want > q->tcap && !ntopv)) {
        while (k--) cs__free(s, fresh[k], PAGE * sizeof **fresh);
        if (fresh != small) cs__free(s, fresh, nf * sizeof *fresh);
        return CS_E_NOMEM;
    }
    if (ntopv) {
        memcpy(ntopv, q->top, q->ntop * sizeof *ntopv);
        cs__free(s, q->top, q->tcap * sizeof *q->top);
        q->top = ntopv;
        q->tcap = tcap;
    }
    k = 0;
    if (grow0) {
        memcpy(fresh[0], q->top[0], q->cap0 * sizeof **fresh);
        cs__free(s, q->top[0], q->cap0 * sizeof **fresh);
        q->top[0] = fresh[k++];
        q->cap0 = PAGE;
    }
    while (q->ntop < want) q->top[q->ntop++] = fresh[k++];
    if (fresh != small) cs__free(s, fresh, nf * sizeof *fresh);
    return CS_OK;
}

cs_err cs__dix_reserve(cs_store *s, cs_dix *q, int64_t key) {
    if (key < 0) return CS_E_INVALID_ARGUMENT;
    uint64_t sl = (uint64_t)key / CS__DIX_BLK;
    if (q->n == 0) q->off = sl; /* an empty directory starts here */
    if (sl < q->off || sl - q->off > SIZE_MAX / 2)
        return CS_E_INVALID_ARGUMENT; /* keys only grow, by one */
    if (q->tailb && key >= q->tailk && key - q->tailk < (int64_t)CS__DIX_BLK)
        return CS_OK;
    size_t j = (size_t)(sl - q->off);
    if (j < q->n && *ent(q, j)) return CS_OK;
    if (!q->spare) {
        q->spare = cs__malloc(s, blk_bytes());
        if (!q->spare) return CS_E_NOMEM;
        memset(q->spare, 0, blk_bytes());
    }
    return j < capacity(q) ? CS_OK : dir_grow(s, q, j);
}

void cs__dix_append(cs_dix *q, int64_t key, void *val) {
    if (q->tailb && key >= q->tailk && key - q->tailk < (int64_t)CS__DIX_BLK) {
        q->tailb->v[key - q->tailk] = val;
        q->tailb->live++;
        q->count++;
        q->last = key;
        return;
    }
    uint64_t sl = (uint64_t)key / CS__DIX_BLK;
    size_t j = (size_t)(sl - q->off);
    if (q->n <= j) q->n = j + 1; /* entries past n are NULL already */
    cs_dix_blk **e = ent(q, j);
    if (!*e) {
        *e = q->spare;
        q->spare = NULL;
        if (q->lo > j) q->lo = j;
    }
    cs_dix_blk *b = *e;
    b->v[(uint64_t)key % CS__DIX_BLK] = val;
    b->live++;
    q->count++;
    q->last = key;
    q->tailb = b;
    q->tailk = key - (int64_t)((uint64_t)key % CS__DIX_BLK);
}

void cs__dix_set(cs_dix *q, int64_t key, void *val) {
    cs_dix_blk *b = cs__dix_blk_of(q, key);
    if (b) b->v[(uint64_t)key % CS__DIX_BLK] = val;
}

/* Frees the directory pages that hold only entries below lo. */
static void drop_leading_pages(cs_store *s, cs_dix *q) {
    size_t k = q->lo / PAGE;
    if (!k || q->ntop <= k) return;
    for (size_t i = 0; i < k; i++)
        cs__free(s, q->top[i], PAGE * sizeof **q->top);
    memmove(q->top, q->top + k, (q->ntop - k) * sizeof *q->top);
    q->ntop -= k;
    q->off += k * PAGE;
    q->lo -= k * PAGE;
    q->n -= k * PAGE;
}

void *cs__dix_remove(cs_store *s, cs_dix *q, int64_t key) {
    size_t j;
    if (!slot_of(q, key, &j)) return NULL;
    cs_dix_blk **e = ent(q, j);
    cs_dix_blk *b = *e;
    if (!b) return NULL;
    void **slot = &b->v[(uint64_t)key % CS__DIX_BLK];
    void *v = *slot;
    if (!v) return NULL;
    *slot = NULL;
    q->count--;
    if (--b->live == 0) {
        if (b == q->tailb) q->tailb = NULL;
        cs__free(s, b, blk_bytes());
        *e = NULL;
        while (q->lo < q->n && !*ent(q, q->lo)) q->lo++;
        if (q->lo == q->n) /* all gone: the next append starts over */
            q->n = q->lo = 0;
        else
            drop_leading_pages(s, q);
    }
    return v;
}

void cs__dix_free(cs_store *s, cs_dix *q) {
    for (size_t j = q->lo; j < q->n; j++)
        if (*ent(q, j)) cs__free(s, *ent(q, j), blk_bytes());
    for (size_t p = 0; p < q->ntop; p++)
        cs__free(s, q->top[p],
                 (p == 0 && q->ntop == 1 ? q->cap0 : PAGE) * sizeof **q->top);
    cs__free(s, q->top, q->tcap * sizeof *q->top);
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
        const cs_dix_blk *b = *ent(q, j);
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
        const cs_dix_blk *b = *ent(q, j);
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
    if (q->lo > q->n || q->n > capacity(q) || q->ntop > q->tcap ||
        (q->ntop && !q->top) || (q->ntop > 1 && q->cap0 != PAGE) ||
        (q->ntop == 1 && q->cap0 > PAGE) || q->lo >= PAGE)
        return CS_E_CORRUPT;
    size_t count = 0, cap = capacity(q);
    for (size_t j = 0; j < cap; j++) {
        const cs_dix_blk *b = *ent(q, j);
        if ((j < q->lo || j >= q->n) && b) return CS_E_CORRUPT;
        if (!b) continue;
        uint32_t live = 0;
        for (uint32_t i = 0; i < CS__DIX_BLK; i++) live += b->v[i] != NULL;
        if (live == 0 || live != b->live) return CS_E_CORRUPT;
        count += live;
    }
    if (q->lo < q->n && !*ent(q, q->lo)) return CS_E_CORRUPT;
    if (count != q->count || (q->n == 0) != (count == 0)) return CS_E_CORRUPT;
    if (q->tailb && (q->tailk < 0 || (uint64_t)q->tailk % CS__DIX_BLK ||
                     cs__dix_blk_of(q, q->tailk) != q->tailb))
        return CS_E_CORRUPT;
    if (count && (q->off + q->n) * CS__DIX_BLK <= (uint64_t)q->last)
        return CS_E_CORRUPT;
    return CS_OK;
}

size_t cs__dix_bytes(const cs_dix *q) {
    size_t n = q->tcap * sizeof *q->top + (q->spare ? blk_bytes() : 0);
    for (size_t p = 0; p < q->ntop; p++)
        n += (p == 0 && q->ntop == 1 ? q->cap0 : PAGE) * sizeof **q->top;
    for (size_t j = q->lo; j < q->n; j++)
        if (*ent(q, j)) n += blk_bytes();
    return n;
}
