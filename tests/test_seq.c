/* The ordered sequence (services, channels) and the dense message index
 * against plain arrays: random appends, removals and seeks, with each
 * structure's own checker along the way; and the message-SID permutation. */
#include "check.h"
#include "internal.h"

static cs_store *new_store(void) {
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    cs_store *s = NULL;
    if (cs_store_new(&o, &s) != CS_OK) abort();
    return s;
}

static uint64_t rng = 88172645463325252u;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Reference: sorted array of live keys. */
typedef struct ref {
    int64_t *k;
    size_t n;
} ref;

static void ref_remove(ref *r, size_t i) {
    memmove(&r->k[i], &r->k[i + 1], (r->n - i - 1) * sizeof *r->k);
    r->n--;
}

/* Positions in the reference: first key > k, first key >= k. */
static size_t ref_first_above(const ref *r, int64_t k) {
    size_t i = 0;
    while (i < r->n && r->k[i] <= k) i++;
    return i;
}
static size_t ref_first_from(const ref *r, int64_t k) {
    size_t j = 0;
    while (j < r->n && r->k[j] < k) j++;
    return j;
}

/* Checks after/before seeks for a key against the reference. */
static void check_seeks(const cs_seq *q, const ref *r, int64_t k) {
    cs_seq_pos p;
    size_t i = ref_first_above(r, k), j = ref_first_from(r, k);
    bool found = cs__seq_after(q, k, &p);
    CHECK_INT(found, i < r->n);
    if (found && i < r->n) CHECK_INT(cs__seq_at(q, p)->key, r->k[i]);
    found = cs__seq_before(q, k, &p);
    CHECK_INT(found, j > 0);
    if (found && j > 0) CHECK_INT(cs__seq_at(q, p)->key, r->k[j - 1]);
}

static void run_seq(size_t ops, unsigned del_pct) {
    cs_store *s = new_store();
    cs_store_stats st0;
    cs_store_stats_get(s, &st0);
    cs_seq q;
    memset(&q, 0, sizeof q);
    ref r = {malloc(ops * sizeof(int64_t)), 0};
    int64_t next = 0;
    for (size_t op = 0; op < ops; op++) {
        if (r.n && next_rand() % 100 < del_pct) {
            size_t i = next_rand() % r.n;
            void *v = cs__seq_remove(s, &q, r.k[i]);
            CHECK(v == (void *)(intptr_t)(r.k[i] + 1));
            ref_remove(&r, i);
        } else {
            REQUIRE(cs__seq_reserve(s, &q) == CS_OK);
            next += 1 + (int64_t)(next_rand() % 3);
            cs__seq_append(&q, next, (void *)(intptr_t)(next + 1));
            r.k[r.n++] = next;
        }
        if (op % 97 == 0) {
            CHECK_INT(cs__seq_check(&q), CS_OK);
            check_seeks(&q, &r, (int64_t)(next_rand() % (uint64_t)(next + 2)) - 1);
        }
    }
    CHECK_INT(q.count, r.n);
    CHECK_INT(cs__seq_check(&q), CS_OK);
    /* Full forward walk equals the reference. */
    cs_seq_pos p;
    size_t i = 0;
    if (cs__seq_after(&q, INT64_MIN, &p)) {
        do {
            REQUIRE(i < r.n);
            CHECK_INT(cs__seq_at(&q, p)->key, r.k[i]);
            i++;
        } while (cs__seq_next(&q, &p));
    }
    CHECK_INT(i, r.n);
    /* Memory follows the live entries: at most 4x the entries plus the
     * directory once blocks are merged. */
    if (r.n > 1000)
        CHECK(cs__seq_bytes(&q) < r.n * sizeof(cs_seq_ent) * 5 + 65536);
    cs__seq_free(s, &q);
    CHECK_INT(cs_store_check(s), CS_OK);
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    CHECK_INT(st.bytes_allocated, st0.bytes_allocated); /* all returned */
    free(r.k);
    cs_store_free(s);
}

TEST(seq_append_only) { run_seq(20000, 0); }
TEST(seq_mixed_light_deletes) { run_seq(50000, 20); }
TEST(seq_mixed_heavy_deletes) { run_seq(50000, 48); }

TEST(seq_delete_everything_then_reuse) {
    cs_store *s = new_store();
    cs_seq q;
    memset(&q, 0, sizeof q);
    for (int round = 0; round < 3; round++) {
        for (int64_t k = 0; k < 3000; k++) {
            REQUIRE(cs__seq_reserve(s, &q) == CS_OK);
            cs__seq_append(&q, round * 10000 + k, &q);
        }
        for (int64_t k = 2999; k >= 0; k -= 2) cs__seq_remove(s, &q, round * 10000 + k);
        CHECK_INT(cs__seq_check(&q), CS_OK);
        for (int64_t k = 0; k < 3000; k += 2) cs__seq_remove(s, &q, round * 10000 + k);
        CHECK_INT(q.count, 0);
        CHECK_INT(q.nblk, 0);
        CHECK_INT(cs__seq_check(&q), CS_OK);
    }
    cs__seq_free(s, &q);
    cs_store_free(s);
}

/* ---- message SIDs ------------------------------------------------------- */

/* ---- dense index -------------------------------------------------------- */

static void check_dix_seeks(const cs_dix *q, const ref *r, int64_t k) {
    size_t i = ref_first_above(r, k), j = ref_first_from(r, k);
    int64_t x = -7;
    bool found = cs__dix_after(q, k, &x);
    CHECK_INT(found, i < r->n);
    if (found && i < r->n) CHECK_INT(x, r->k[i]);
    found = cs__dix_before(q, k, &x);
    CHECK_INT(found, j > 0);
    if (found && j > 0) CHECK_INT(x, r->k[j - 1]);
}

/* Keys 0, 1, 2, ... appended, random or oldest-first deletes, against a
 * sorted array; lookups, seeks both ways, full walks, and the memory bound
 * (blocks freed as they empty, leading ones dropped from the directory). */
static void run_dix(size_t ops, unsigned del_pct, bool fifo) {
    cs_store *s = new_store();
    cs_store_stats st0;
    cs_store_stats_get(s, &st0);
    cs_dix q;
    memset(&q, 0, sizeof q);
    ref r = {malloc(ops * sizeof(int64_t)), 0};
    int64_t next = 0;
    for (size_t op = 0; op < ops; op++) {
        if (r.n && next_rand() % 100 < del_pct) {
            size_t i = fifo ? 0 : next_rand() % r.n;
            void *v = cs__dix_remove(s, &q, r.k[i]);
            CHECK(v == (void *)(intptr_t)(r.k[i] + 1));
            CHECK(cs__dix_find(&q, r.k[i]) == NULL);
            CHECK(cs__dix_remove(s, &q, r.k[i]) == NULL); /* twice: nothing */
            ref_remove(&r, i);
        } else {
            REQUIRE(cs__dix_reserve(s, &q, next) == CS_OK);
            cs__dix_append(&q, next, (void *)(intptr_t)(next + 1));
            r.k[r.n++] = next++;
        }
        if (op % (ops > 100000 ? 4999 : 97) == 0) {
            CHECK_INT(cs__dix_check(&q), CS_OK);
            check_dix_seeks(&q, &r, (int64_t)(next_rand() % (uint64_t)(next + 2)) - 1);
            if (r.n) {
                int64_t k = r.k[next_rand() % r.n];
                CHECK(cs__dix_find(&q, k) == (void *)(intptr_t)(k + 1));
            }
            CHECK_INT(cs__dix_last_key(&q), r.n ? r.k[r.n - 1] : -1);
        }
    }
    CHECK_INT(q.count, r.n);
    CHECK_INT(cs__dix_check(&q), CS_OK);
    check_dix_seeks(&q, &r, INT64_MIN);
    check_dix_seeks(&q, &r, INT64_MAX);
    size_t i = 0;
    for (int64_t k = -1; cs__dix_after(&q, k, &k); i++) {
        REQUIRE(i < r.n);
        CHECK_INT(k, r.k[i]);
    }
    CHECK_INT(i, r.n);
    i = r.n;
    for (int64_t k = INT64_MAX; cs__dix_before(&q, k, &k);) {
        REQUIRE(i > 0);
        CHECK_INT(k, r.k[--i]);
    }
    CHECK_INT(i, 0);
    /* Oldest-first deletes leave only the live blocks and a directory
     * sized for them: memory follows the live entries. */
    if (fifo)
        CHECK(cs__dix_bytes(&q) <=
              (r.n / CS__DIX_BLK + 2) * sizeof(cs_dix_blk) + /* live blocks */
                  ((r.n / CS__DIX_BLK + 2) / 512 + 2) * 512 * sizeof(void *) +
                  q.tcap * sizeof(void *)); /* directory pages, top */
    cs__dix_free(s, &q);
    CHECK_INT(cs_store_check(s), CS_OK);
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    CHECK_INT(st.bytes_allocated, st0.bytes_allocated); /* all returned */
    free(r.k);
    cs_store_free(s);
}

TEST(dix_append_only) { run_dix(20000, 0, false); }
TEST(dix_random_deletes) { run_dix(50000, 40, false); }
TEST(dix_heavy_random_deletes) { run_dix(50000, 49, false); }
TEST(dix_oldest_first_deletes) { run_dix(60000, 45, true); }
/* Past several directory pages (131,072 keys each), leading ones freed. */
TEST(dix_oldest_first_across_pages) { run_dix(400000, 30, true); }

/* Everything deleted, then appends go on at the next keys. */
TEST(dix_empty_then_reuse) {
    cs_store *s = new_store();
    cs_dix q;
    memset(&q, 0, sizeof q);
    int64_t next = 0;
    for (int round = 0; round < 3; round++) {
        int64_t first = next;
        for (int k = 0; k < 700; k++, next++) {
            REQUIRE(cs__dix_reserve(s, &q, next) == CS_OK);
            cs__dix_append(&q, next, &q);
        }
        for (int64_t k = next - 1; k >= first; k -= 2) cs__dix_remove(s, &q, k);
        CHECK_INT(cs__dix_check(&q), CS_OK);
        for (int64_t k = first; k < next; k += 2) cs__dix_remove(s, &q, k);
        CHECK_INT(q.count, 0);
        CHECK_INT(q.n, 0);
        CHECK_INT(cs__dix_bytes(&q), /* directory only, no block */
                  (q.tcap + (q.ntop == 1 ? q.cap0 : q.ntop * 512)) * sizeof(void *));
        CHECK_INT(cs__dix_check(&q), CS_OK);
        int64_t x;
        CHECK(!cs__dix_after(&q, -1, &x));
        CHECK(!cs__dix_before(&q, INT64_MAX, &x));
    }
    cs__dix_free(s, &q);
    cs_store_free(s);
}

static int cmp_sid(const void *a, const void *b) {
    return memcmp(a, b, CS__SID_BYTES);
}

/* cs__msg_sid is a permutation of (serial, index | epoch << 40): it opens
 * back, never collides, and its output bits are balanced whatever the
 * inputs' pattern (consecutive indices of one channel, one index across
 * channels). */
TEST(msg_sid_permutation_opens_back_and_never_collides) {
    cs_store *s = new_store();
    enum { N = 50000 };
    uint8_t(*sid)[CS__SID_BYTES] = calloc(N, sizeof *sid);
    REQUIRE(sid != NULL);
    size_t ones[128] = {0};
    for (size_t i = 0; i < N; i++) {
        /* all pairs distinct: even i walk one channel, odd i one index */
        int64_t serial = i % 2 ? 1000 + (int64_t)i : 3;
        uint64_t ix = i % 2 ? 0 : (uint64_t)i;
        if (i == N - 2) ix = UINT64_MAX; /* extremes open back too */
        if (i == N - 1) serial = INT64_MAX;
        cs__msg_sid(s, serial, ix, sid[i]);
        int64_t a;
        uint64_t b;
        cs__msg_sid_open(s, sid[i], &a, &b);
        CHECK(a == serial && b == ix);
        for (int bit = 0; bit < 128; bit++)
            ones[bit] += (sid[i][bit / 8] >> (bit % 8)) & 1;
    }
    for (int bit = 0; bit < 128; bit++) {
        CHECK(ones[bit] > (size_t)N * 45 / 100);
        CHECK(ones[bit] < (size_t)N * 55 / 100);
    }
    uint8_t first[CS__SID_BYTES];
    memcpy(first, sid[0], CS__SID_BYTES);
    qsort(sid, N, CS__SID_BYTES, cmp_sid);
    size_t collisions = 0;
    for (size_t i = 1; i < N; i++)
        collisions += memcmp(sid[i - 1], sid[i], CS__SID_BYTES) == 0;
    CHECK_INT(collisions, 0);
    /* Another store (another key) gives other SIDs for the same numbers. */
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    o.seed = 8;
    cs_store *t;
    REQUIRE(cs_store_new(&o, &t) == CS_OK);
    uint8_t other[CS__SID_BYTES];
    cs__msg_sid(t, 3, 0, other);
    CHECK(memcmp(other, first, CS__SID_BYTES) != 0);
    cs_store_free(t);
    free(sid);
    cs_store_free(s);
}

static const check_test tests[] = {
    T(seq_append_only),
    T(seq_mixed_light_deletes),
    T(seq_mixed_heavy_deletes),
    T(seq_delete_everything_then_reuse),
    T(dix_append_only),
    T(dix_random_deletes),
    T(dix_heavy_random_deletes),
    T(dix_oldest_first_deletes),
    T(dix_oldest_first_across_pages),
    T(dix_empty_then_reuse),
    T(msg_sid_permutation_opens_back_and_never_collides),
};
CHECK_MAIN(tests)
