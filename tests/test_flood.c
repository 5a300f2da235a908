/* Hash flooding: channel unique names chosen to collide under uthash's
 * default, unkeyed hash (Jenkins) land in one bucket of an unkeyed table; in
 * the store, keyed with a per-store secret, they spread like random names.
 * Asserted: the collisions are real under the unkeyed hash, and the store's
 * name table keeps short chains. Reported, not asserted: the time per insert
 * and lookup against random names. */
#include "check.h"
#include "internal.h"

#include <time.h>

enum { N = 1500, LOW_BITS = 12 };

static unsigned jenkins(const char *k, size_t n) {
    unsigned h;
    HASH_JEN(k, n, h);
    return h;
}

static char names[2][N][24];

/* N names whose unkeyed hashes agree in their low LOW_BITS bits: an unkeyed
 * table with up to 2^LOW_BITS buckets puts them all in one chain. */
static void make_colliding(void) {
    unsigned target = jenkins("seed", 4) & ((1u << LOW_BITS) - 1);
    size_t found = 0;
    for (unsigned long i = 0; found < N; i++) {
        char buf[24];
        int len = snprintf(buf, sizeof buf, "room-%lx", i);
        if ((jenkins(buf, (size_t)len) & ((1u << LOW_BITS) - 1)) == target)
            memcpy(names[0][found++], buf, (size_t)len + 1);
    }
    for (size_t i = 0; i < N; i++)
        snprintf(names[1][i], sizeof names[1][i], "rand-%08zx", i * 2654435761u);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned max_chain(const cs_service *v) {
    const UT_hash_table *t = v->names->hh.tbl;
    unsigned m = 0;
    for (unsigned b = 0; b < t->num_buckets; b++)
        if (t->buckets[b].count > m) m = t->buckets[b].count;
    return m;
}

/* Inserts and looks up every name of set k; returns seconds. */
static double run_set(int k, unsigned *chain) {
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    o.seed = 99;
    cs_store *s;
    if (cs_store_new(&o, &s)) abort();
    cs_service_view sv;
    if (cs_service_create(s, cs_str_c("flood"), &sv)) abort();
    double t0 = now_s();
    for (size_t i = 0; i < N; i++) {
        cs_channel_params p = {0};
        p.unique_name = cs_str_c(names[k][i]);
        if (cs_channel_create(s, cs_str_c(sv.sid), &p, NULL)) abort();
    }
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < N; i++)
            if (cs_channel_fetch(s, cs_str_c(sv.sid), cs_str_c(names[k][i]), NULL))
                abort();
    double t = now_s() - t0;
    *chain = max_chain(cs__service_find(s, cs_str_c(sv.sid)));
    CHECK_INT(cs_store_check(s), CS_OK);
    cs_store_free(s);
    return t;
}

/* The same names in a plain, unkeyed uthash table: one long chain. */
typedef struct plain {
    UT_hash_handle hh;
    const char *name;
} plain;

static unsigned unkeyed_chain(double *secs) {
    static plain items[N];
    plain *head = NULL, *found;
    cs_store *mem; /* uthash allocates through a store here (internal.h) */
    if (cs_store_new(NULL, &mem)) abort();
    CS__UT(mem);
    double t0 = now_s();
    for (size_t i = 0; i < N; i++) {
        items[i].name = names[0][i];
        HASH_ADD_KEYPTR(hh, head, items[i].name, strlen(items[i].name), &items[i]);
    }
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < N; i++)
            HASH_FIND(hh, head, names[0][i], strlen(names[0][i]), found);
    *secs = now_s() - t0;
    unsigned m = 0;
    for (unsigned b = 0; b < head->hh.tbl->num_buckets; b++)
        if (head->hh.tbl->buckets[b].count > m) m = head->hh.tbl->buckets[b].count;
    HASH_CLEAR(hh, head);
    cs_store_free(mem);
    return m;
}

TEST(flood_colliding_unique_names_keep_short_chains) {
    make_colliding();
    double t_plain;
    unsigned chain_plain = unkeyed_chain(&t_plain);
    CHECK(chain_plain > N / 4); /* the attack works on an unkeyed table */
    /* The attack is real: unkeyed, every name shares the low bits. */
    unsigned low = jenkins(names[0][0], strlen(names[0][0])) & ((1u << LOW_BITS) - 1);
    for (size_t i = 1; i < N; i++)
        CHECK_INT(jenkins(names[0][i], strlen(names[0][i])) & ((1u << LOW_BITS) - 1), low);
    unsigned chain_col, chain_rand;
    double t_col = run_set(0, &chain_col);
    double t_rand = run_set(1, &chain_rand);
    /* Keyed: the colliding set spreads like random names. */
    CHECK(chain_col <= 12);
    CHECK(chain_rand <= 12);
    printf("  %d names, 20 lookups each: colliding %.2f ms, random %.2f ms, "
           "ratio %.2f; longest chain %u vs %u (unkeyed uthash: chain %u, "
           "%.2f ms for the table alone)\n",
           N, t_col * 1e3, t_rand * 1e3, t_col / t_rand, chain_col, chain_rand,
           chain_plain, t_plain * 1e3);
}

/* Identities (LastUpdatedBy, CreatedBy) are interned in a keyed table too. */
TEST(flood_colliding_identities_keep_short_chains) {
    make_colliding();
    cs_options o = CS_OPTIONS_INIT;
    o.use_seed = true;
    cs_store *s;
    REQUIRE(cs_store_new(&o, &s) == CS_OK);
    cs_service_view sv;
    cs_channel_view cv;
    cs_channel_params cp = {0};
    REQUIRE(cs_service_create(s, cs_str_c("flood"), &sv) == CS_OK);
    REQUIRE(cs_channel_create(s, cs_str_c(sv.sid), &cp, &cv) == CS_OK);
    for (size_t i = 0; i < N; i++) {
        cs_message_params p = {0};
        p.last_updated_by = cs_str_c(names[0][i]);
        REQUIRE(cs_message_create(s, cs_str_c(sv.sid), cs_str_c(cv.sid), &p, NULL) == CS_OK);
    }
    const UT_hash_table *t = s->idents->hh.tbl;
    unsigned m = 0;
    for (unsigned b = 0; b < t->num_buckets; b++)
        if (t->buckets[b].count > m) m = t->buckets[b].count;
    CHECK(m <= 12);
    CHECK_INT(HASH_COUNT(s->idents), N + 1); /* + the channel's "system" */
    cs_store_free(s);
}

static const check_test tests[] = {
    T(flood_colliding_unique_names_keep_short_chains),
    T(flood_colliding_identities_keep_short_chains),
};
CHECK_MAIN(tests)
