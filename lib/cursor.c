/* Pages over ordered sequences (services, channels, messages) with keyset
 * page tokens.
 *
 * A page request is (direction, kind, bound):
 *   next-kind, asc : the items with key > bound, ascending
 *   next-kind, desc: the items with key < bound, descending
 *   prev-kind, asc : the page_size items just below bound, shown ascending
 *   prev-kind, desc: the page_size items just above bound, shown descending
 * A request without token is next-kind from the far end. Tokens carry the
 * kind, direction and bound plus a MAC (SipHash keyed with the store's
 * secret) over those and the list they belong to, so a token from another
 * list, direction or store, or an edited one, is refused. Bounds are keys,
 * not offsets: a token stays exact while items come and go.
 *
 * Token text: "PT" + kind/direction letter + 16 hex bound + 16 hex MAC.
 */
#include "internal.h"

#include <stddef.h>

#define TOKEN_LEN 35

enum { K_NEXT = 0, K_PREV = 1 };

typedef struct page_req {
    bool desc;
    int kind;
    int64_t bound;
} page_req;

/* ---- numbers ------------------------------------------------------------ */

/* Decimal digits only. *big is set when the value exceeds max. */
static bool parse_decimal(cs_str v, uint64_t max, uint64_t *out, bool *big) {
    uint64_t x = 0;
    *big = false;
    if (!v.len) return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned char)v.ptr[i] - '0';
        if (d > 9) return false;
        if (!*big && x > (max - d) / 10) *big = true;
        if (!*big) x = x * 10 + d;
    }
    *out = *big ? max : x;
    return true;
}

/* Page is client state. Its range is JavaScript's safe integers, so every
 * client reads it exactly; next links saturate at the top, so a link the
 * store renders is always one it accepts. */
#define PAGE_MAX CS_PAGE_MAX

static cs_err parse_sizes(const cs_store *s, const cs_page_params *q,
                          cs_page *pg) {
    uint64_t v;
    bool big;
    if ((q->page_size.ptr && q->page_size_value) ||
        (q->page.ptr && q->page_value))
        return CS_E_INVALID_ARGUMENT;
    pg->page_size = 50;
    if (q->page_size_value) pg->page_size = q->page_size_value;
    if (q->page_size.ptr) {
        if (!parse_decimal(q->page_size, UINT32_MAX, &v, &big) || v == 0)
            return CS_E_BAD_PAGE_SIZE;
        pg->page_size = (uint32_t)v;
    }
    if (pg->page_size > s->lim.page_size_max)
        pg->page_size = s->lim.page_size_max;
    pg->page = 0;
    if (q->page_value > PAGE_MAX) return CS_E_BAD_PAGE;
    pg->page = q->page_value;
    if (q->page.ptr) {
        if (!parse_decimal(q->page, PAGE_MAX, &v, &big) || big)
            return CS_E_BAD_PAGE;
        pg->page = v;
    }
    return CS_OK;
}

static cs_err parse_order(cs_str o, cs_order typed, cs_page *pg) {
    pg->order_given = o.ptr != NULL || typed != CS_ORDER_UNSET;
    pg->descending = false;
    if (typed != CS_ORDER_UNSET) {
        if (o.ptr) return CS_E_INVALID_ARGUMENT;
        if (typed != CS_ORDER_ASC && typed != CS_ORDER_DESC)
            return CS_E_BAD_ORDER;
        pg->descending = typed == CS_ORDER_DESC;
        return CS_OK;
    }
    if (!o.ptr) return CS_OK;
    if (o.len == 3 && memcmp(o.ptr, "asc", 3) == 0) return CS_OK;
    if (o.len == 4 && memcmp(o.ptr, "desc", 4) == 0) {
        pg->descending = true;
        return CS_OK;
    }
    return CS_E_BAD_ORDER;
}

/* ---- tokens ------------------------------------------------------------- */

static const char HEX[] = "0123456789abcdef";

static char kind_letter(bool desc, int kind) {
    return desc ? (kind == K_NEXT ? 'D' : 'E') : (kind == K_NEXT ? 'A' : 'B');
}

static uint64_t token_mac(const cs_store *s, cs_page_kind pk, int64_t list,
                          char letter, int64_t bound) {
    uint8_t m[18];
    memcpy(m, &list, 8);
    memcpy(m + 8, &bound, 8);
    m[16] = (uint8_t)pk;
    m[17] = (uint8_t)letter;
    return cs__siphash(s->hash_key, m, sizeof m);
}

static void put_hex64(char *out, uint64_t v) {
    for (int i = 15; i >= 0; i--, v >>= 4) out[i] = HEX[v & 15];
}

static bool get_hex64(const char *p, uint64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

static void token_make(const cs_store *s, cs_page_kind pk, int64_t list,
                       bool desc, int kind, int64_t bound,
                       char out[CS_TOKEN_BUFSZ]) {
    char letter = kind_letter(desc, kind);
    out[0] = 'P';
    out[1] = 'T';
    out[2] = letter;
    put_hex64(out + 3, (uint64_t)bound);
    put_hex64(out + 19, token_mac(s, pk, list, letter, bound));
    out[TOKEN_LEN] = '\0';
}

static cs_err token_parse(const cs_store *s, cs_page_kind pk, int64_t list,
                          cs_str t, bool desc, page_req *r) {
    uint64_t bound, mac;
    if (t.len != TOKEN_LEN || t.ptr[0] != 'P' || t.ptr[1] != 'T' ||
        !get_hex64(t.ptr + 3, &bound) || !get_hex64(t.ptr + 19, &mac))
        return CS_E_BAD_PAGE_TOKEN;
    char letter = t.ptr[2];
    if (letter != kind_letter(desc, K_NEXT) &&
        letter != kind_letter(desc, K_PREV))
        return CS_E_BAD_PAGE_TOKEN; /* another direction */
    if (token_mac(s, pk, list, letter, (int64_t)bound) != mac)
        return CS_E_BAD_PAGE_TOKEN;
    r->desc = desc;
    r->kind = letter == kind_letter(desc, K_NEXT) ? K_NEXT : K_PREV;
    r->bound = (int64_t)bound;
    return CS_OK;
}

/* ---- walking ------------------------------------------------------------ */

static bool matches(const cs_page *pg, const void *val) {
    if (pg->kind != CS_PAGE_CHANNELS) return true;
    return (((const cs_channel *)val)->type & pg->priv_types) != 0;
}

/* The lists: services and channels are cs_seq (keys are serials, with
 * gaps), a channel's messages a cs_dix (keys are dense indices), where a
 * position is the key itself (in .b). */
static bool is_dix(const cs_page *pg) { return pg->kind == CS_PAGE_MESSAGES; }

static bool o_beyond(const void *q, const cs_page *pg, bool fwd, int64_t k,
                     cs_seq_pos *p) {
    if (is_dix(pg)) {
        int64_t x;
        if (!(fwd ? cs__dix_after(q, k, &x) : cs__dix_before(q, k, &x)))
            return false;
        p->b = (size_t)x;
        p->i = 0;
        return true;
    }
    return fwd ? cs__seq_after(q, k, p) : cs__seq_before(q, k, p);
}

static bool o_step(const void *q, const cs_page *pg, bool fwd, cs_seq_pos *p) {
    if (is_dix(pg)) {
        int64_t x;
        if (!cs__dix_step(q, fwd, (int64_t)p->b, &x)) return false;
        p->b = (size_t)x;
        return true;
    }
    return fwd ? cs__seq_next(q, p) : cs__seq_prev(q, p);
}

static int64_t o_key(const void *q, const cs_page *pg, cs_seq_pos p) {
    return is_dix(pg) ? (int64_t)p.b : cs__seq_at(q, p)->key;
}

static const void *o_val(const void *q, const cs_page *pg, cs_seq_pos p) {
    return is_dix(pg) ? cs__dix_find(q, (int64_t)p.b) : cs__seq_at(q, p)->val;
}

/* One step in a direction, skipping items the filter rejects. */
static bool step(const void *q, const cs_page *pg, bool fwd, cs_seq_pos *p) {
    do {
        if (!o_step(q, pg, fwd, p)) return false;
    } while (!matches(pg, o_val(q, pg, *p)));
    return true;
}

/* First matching item strictly beyond bound in a direction. */
static bool seek(const void *q, const cs_page *pg, bool fwd, int64_t bound,
                 cs_seq_pos *p) {
    if (!o_beyond(q, pg, fwd, bound, p)) return false;
    if (matches(pg, o_val(q, pg, *p))) return true;
    return step(q, pg, fwd, p);
}

static int64_t sat_add(int64_t a, int64_t d) {
    if (d > 0 && a > INT64_MAX - d) return INT64_MAX;
    if (d < 0 && a < INT64_MIN - d) return INT64_MIN;
    return a + d;
}

/* Asking for the records a few steps ahead lets their cache misses overlap
 * instead of queueing. A message record spans several cache lines (about
 * 180 bytes with a 100-byte body), all of which the view and its reader
 * touch, so the first four are requested. */
#define PREFETCH_DISTANCE 6u
/* always_inline: GCC otherwise folds the prefetches away. */
static inline __attribute__((always_inline)) void
prefetch_val(const cs_page *pg, const void *v) {
    const char *p = v;
    __builtin_prefetch(p);
    if (pg->kind == CS_PAGE_MESSAGES) {
        __builtin_prefetch(p + 64);
        __builtin_prefetch(p + 128);
        __builtin_prefetch(p + 192);
    }
}

/* Fills count, the first key and both tokens of the page. Scanning starts
 * at the bound: for a next-kind page that is the presentation order, for a
 * prev-kind page the opposite one, so there the first item found is the
 * page's tail and the last one found its head. */
static void compute(const cs_store *s, const void *q, int64_t list,
                    const page_req *r, cs_page *pg) {
    bool fwd = !r->desc; /* presentation direction */
    bool scan = r->kind == K_NEXT ? fwd : !fwd;
    cs_seq_pos a, b;
    size_t n = 0;
    if (seek(q, pg, scan, r->bound, &a)) {
        cs_seq_pos p = a;
        b = a;
        n = 1;
        /* The first items' records start loading while the rest of the
         * page is counted and its tokens signed. */
        if (r->kind == K_NEXT) prefetch_val(pg, o_val(q, pg, a));
        while (n < pg->page_size && step(q, pg, scan, &p)) {
            if (r->kind == K_NEXT && n < PREFETCH_DISTANCE)
                prefetch_val(pg, o_val(q, pg, p));
            n++;
            b = p;
        }
    }
    pg->count = n;
    int64_t next_bound, prev_bound;
    if (n) {
        cs_seq_pos head = r->kind == K_NEXT ? a : b;
        cs_seq_pos tail = r->kind == K_NEXT ? b : a;
        pg->priv_first_key = o_key(q, pg, head);
        pg->priv_b = head.b; /* a hint for the first cs_page_next_* */
        pg->priv_i = head.i;
        next_bound = o_key(q, pg, tail);
        prev_bound = pg->priv_first_key;
    } else {
        int64_t d = r->desc ? -1 : 1; /* one step in presentation order */
        next_bound = r->kind == K_NEXT ? r->bound : sat_add(r->bound, -d);
        prev_bound = r->kind == K_PREV ? r->bound : sat_add(r->bound, d);
    }
    cs_seq_pos peek;
    pg->next_token[0] = pg->prev_token[0] = '\0';
    if (seek(q, pg, fwd, next_bound, &peek))
        token_make(s, pg->kind, list, r->desc, K_NEXT, next_bound,
                   pg->next_token);
    /* The first page (no token, or Page 0) has no previous page. */
    if (pg->page > 0 && pg->token[0])
        token_make(s, pg->kind, list, r->desc, K_PREV, prev_bound,
                   pg->prev_token);
}

/* Common part of the three list calls. */
static cs_err list(const cs_store *s, const void *q, int64_t list_id,
                   cs_page_kind kind, const cs_page_params *qp, cs_page *pg) {
    cs_err e;
    if ((e = parse_sizes(s, qp, pg))) return e;
    page_req r = {pg->descending, K_NEXT, pg->descending ? INT64_MAX : -1};
    pg->token[0] = '\0';
    if (qp->page_token.ptr) {
        if ((e = token_parse(s, kind, list_id, qp->page_token, pg->descending,
                             &r)))
            return e;
        memcpy(pg->token, qp->page_token.ptr, TOKEN_LEN);
        pg->token[TOKEN_LEN] = '\0';
    }
    pg->priv_seq = q;
    pg->priv_yielded = 0;
    compute(s, q, list_id, &r, pg);
    return CS_OK;
}

/* A page remembers the commit it was listed at: a later commit may have
 * freed what it points to, so iteration stops there (PAGE_STALE). */
static const cs_page_params no_params;

static void page_init(const cs_store *s, cs_page *pg, cs_page_kind kind) {
    memset(pg, 0, sizeof *pg);
    pg->kind = kind;
    pg->priv_types = CS_CHANNEL_PUBLIC | CS_CHANNEL_PRIVATE;
    pg->priv_commit = s->commits;
}

cs_err cs_service_list(const cs_store *s, const cs_page_params *q,
                       cs_page *out) {
    CS__REQUIRE(s);
    CS__REQUIRE(out);
    if (!q) q = &no_params;
    page_init(s, out, CS_PAGE_SERVICES);
    return list(s, &s->service_seq, 0, CS_PAGE_SERVICES, q, out);
}

static cs_err parse_types(const cs_page_params *q, cs_page *pg) {
    pg->priv_types = CS_CHANNEL_PUBLIC;
    pg->priv_types_given = q->n_types > 0 || q->types_mask;
    if (q->types_mask) {
        if (q->n_types) return CS_E_INVALID_ARGUMENT;
        if (q->types_mask & ~(unsigned)(CS_CHANNEL_PUBLIC | CS_CHANNEL_PRIVATE))
            return CS_E_BAD_CHANNEL_TYPE;
        pg->priv_types = q->types_mask;
        return CS_OK;
    }
    if (!q->n_types) return CS_OK;
    pg->priv_types = 0;
    for (size_t i = 0; i < q->n_types; i++) {
        cs_str t = q->types[i];
        if (t.ptr && t.len == 6 && memcmp(t.ptr, "public", 6) == 0)
            pg->priv_types |= CS_CHANNEL_PUBLIC;
        else if (t.ptr && t.len == 7 && memcmp(t.ptr, "private", 7) == 0)
            pg->priv_types |= CS_CHANNEL_PRIVATE;
        else
            return CS_E_BAD_CHANNEL_TYPE;
    }
    return CS_OK;
}

cs_err cs_channel_list(const cs_store *s, cs_str service_sid,
                       const cs_page_params *q, cs_page *out) {
    CS__REQUIRE(s);
    CS__REQUIRE(out);
    if (!q) q = &no_params;
    page_init(s, out, CS_PAGE_CHANNELS);
    const cs_service *svc = cs__service_find(s, service_sid);
    if (!svc) return CS_E_NOT_FOUND;
    cs_err e = parse_types(q, out);
    if (e) return e;
    memcpy(out->priv_service_sid, svc->sid, CS_SID_BUFSZ);
    return list(s, &svc->channel_seq, svc->serial, CS_PAGE_CHANNELS, q, out);
}

cs_err cs_message_list(const cs_store *s, cs_str service_sid, cs_str channel,
                       const cs_page_params *q, cs_page *out) {
    CS__REQUIRE(s);
    CS__REQUIRE(out);
    if (!q) q = &no_params;
    page_init(s, out, CS_PAGE_MESSAGES);
    cs_channel *c;
    cs_err e = cs__resolve_channel(s, service_sid, channel, &c);
    if (e) return e;
    if ((e = parse_order(q->order, q->order_value, out))) return e;
    memcpy(out->priv_service_sid, c->svc->sid, CS_SID_BUFSZ);
    memcpy(out->priv_channel_sid, c->sid, CS_SID_BUFSZ);
    return list(s, &c->msgs, c->serial, CS_PAGE_MESSAGES, q, out);
}

/* ---- iteration ---------------------------------------------------------- */

void cs_page_rewind(cs_page *pg) {
    CS__REQUIRE(pg);
    pg->priv_yielded = 0;
}

/* The item PREFETCH_DISTANCE ahead (compute() asked for the first ones);
 * only within the current block: cheap and enough. */
static inline __attribute__((always_inline)) void
prefetch_ahead(const void *q, const cs_page *pg, cs_seq_pos p) {
    if (pg->priv_yielded + PREFETCH_DISTANCE > pg->count) return;
    uint32_t d = PREFETCH_DISTANCE;
    if (is_dix(pg)) {
        int64_t k = (int64_t)p.b + (pg->descending ? -(int64_t)d : (int64_t)d);
        const void *v = cs__dix_find(q, k); /* NULL if deleted: skipped */
        if (v) prefetch_val(pg, v);
        return;
    }
    const cs_seq_blk *b = ((const cs_seq *)q)->blk[p.b];
    if (!pg->descending) {
        if (p.i + d < b->n) prefetch_val(pg, b->e[p.i + d].val);
    } else if (p.i >= d) {
        prefetch_val(pg, b->e[p.i - d].val);
    }
}

/* Whether position p still holds key k (no mutation since it was taken). */
static bool o_holds(const void *q, const cs_page *pg, cs_seq_pos p,
                    int64_t k) {
    if (is_dix(pg)) return (int64_t)p.b == k && cs__dix_find(q, k) != NULL;
    const cs_seq *sq = q;
    return p.b < sq->nblk && p.i < sq->blk[p.b]->n &&
           cs__seq_at(sq, p)->key == k;
}

/* The next item's value, or NULL after the last or on a stale page. */
static const void *page_next(const cs_store *s, cs_page *pg) {
    const void *q = pg->priv_seq;
    if (pg->priv_yielded >= pg->count) return NULL;
    if (pg->priv_commit != s->commits) {
        pg->error = CS_E_PAGE_STALE;
        return NULL;
    }
    cs_seq_pos p;
    if (pg->priv_yielded == 0) {
        /* The position compute() or the last iteration left, if it still
         * holds the first key; else a seek by key (positions move when
         * blocks merge, keys do not). */
        bool fwd = !pg->descending;
        int64_t k = pg->priv_first_key;
        p.b = pg->priv_b;
        p.i = pg->priv_i;
        if (!o_holds(q, pg, p, k) &&
            !seek(q, pg, fwd, sat_add(k, fwd ? -1 : 1), &p))
            return NULL;
    } else {
        p.b = pg->priv_b;
        p.i = pg->priv_i;
        if (!step(q, pg, !pg->descending, &p)) return NULL;
    }
    pg->priv_b = p.b;
    pg->priv_i = p.i;
    pg->priv_yielded++;
    prefetch_ahead(q, pg, p);
    return o_val(q, pg, p);
}

bool cs_page_next_service(const cs_store *s, cs_page *pg,
                          cs_service_view *out) {
    CS__REQUIRE(s);
    CS__REQUIRE(pg);
    CS__REQUIRE(out);
    if (pg->kind != CS_PAGE_SERVICES) return false;
    const cs_service *v = page_next(s, pg);
    if (v) cs__service_view(s, v, out);
    return v != NULL;
}

bool cs_page_next_channel(const cs_store *s, cs_page *pg,
                          cs_channel_view *out) {
    CS__REQUIRE(s);
    CS__REQUIRE(pg);
    CS__REQUIRE(out);
    if (pg->kind != CS_PAGE_CHANNELS) return false;
    const cs_channel *c = page_next(s, pg);
    if (c) cs__channel_view(s, c, out);
    return c != NULL;
}

bool cs_page_next_message(const cs_store *s, cs_page *pg,
                          cs_message_view *out) {
    CS__REQUIRE(s);
    CS__REQUIRE(pg);
    CS__REQUIRE(out);
    if (pg->kind != CS_PAGE_MESSAGES) return false;
    const cs_msg *m = page_next(s, pg);
    if (m) {
        const cs_channel *c = (const cs_channel *)(const void *)(
            (const char *)pg->priv_seq - offsetof(cs_channel, msgs));
        cs__message_view(s, c, m, out);
    }
    return m != NULL;
}
