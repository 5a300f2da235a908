/* The store: options, default hooks, keys and SID generation, create, free,
 * clear, SID epochs, limits and stats.
 *
 * Invariants: everything the store allocates goes through s->alc and is
 * counted in s->bytes; a seeded store derives every key from the seed
 * alone; sid_counter and serial only grow, except that clear resets them
 * (with everything they numbered gone), while commits never resets; the
 * epoch only grows (clear keeps it) and is an input of every generated
 * SID, so no SID made in an earlier epoch, journaled or not, is made again
 * in a later one; with a SID tag, the first byte of every service, role,
 * channel and media SID the store generates is the tag (message SIDs and
 * the account SID carry none), and the store makes the SIDs of an untagged
 * store with the same keys and counters in the other 15 bytes. Options of
 * version 2 are never read past that layout's end. */
#include "internal.h"

#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

static const char DEFAULT_BASE[] = "https://chat.twilio.com";

/* ---- default hooks ------------------------------------------------------ */

static void *libc_malloc(void *ctx, size_t n) {
    (void)ctx;
    return malloc(n);
}

static void libc_free(void *ctx, void *p, size_t n) {
    (void)ctx;
    (void)n;
    free(p);
}

static int64_t real_clock(void *ctx) {
    (void)ctx;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec;
}

static int os_random(void *ctx, void *buf, size_t len) {
    (void)ctx;
    uint8_t *p = buf;
    while (len) {
        ssize_t r = getrandom(p, len, 0);
        if (r <= 0) return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

int64_t cs__now(const cs_store *s) {
    int64_t t = s->replaying ? s->replay_now : s->clock(s->clock_ctx);
    if (t < 0) t = 0; /* the clock is trusted to be sane; keep output valid */
    if (t > CS__TIME_MAX) t = CS__TIME_MAX;
    return t;
}

/* ---- keys and SIDs ------------------------------------------------------ */

/* 32 bytes of key material from the seed alone, so a seeded store is fully
 * reproducible. */
static void keys_from_seed(uint64_t seed, uint8_t out[32]) {
    static const uint8_t k[16] = "chatstore-seed-1";
    uint8_t in[9];
    memcpy(in, &seed, 8);
    in[8] = 0;
    cs__siphash128(k, in, sizeof in, out);
    in[8] = 1;
    cs__siphash128(k, in, sizeof in, out + 16);
}

/* Little-endian 8-byte fields (the generator's counter, a SID's halves):
 * one move each where the byte order is known to be little-endian (the
 * compiler kept the byte loops). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SID_LE 1
#else
#define SID_LE 0
#endif

static void put64(uint8_t *p, uint64_t v) {
    if (SID_LE)
        memcpy(p, &v, sizeof v);
    else
        for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    if (SID_LE)
        memcpy(&v, p, sizeof v);
    else
        for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The generator's input: the counter as 8 little-endian bytes, then, from
 * epoch 1 on, the epoch as 4 (epoch 0 gives the SIDs of a store without
 * epochs). SipHash hashes the length in, so the two forms never meet. */
static void gen_sid(const cs_store *s, uint64_t c, uint8_t out[CS__SID_BYTES]) {
    uint8_t in[12];
    put64(in, c);
    for (int i = 0; i < 4; i++) in[8 + i] = (uint8_t)(s->epoch >> (8 * i));
    cs__siphash128(s->sid_key, in, s->epoch ? 12 : 8, out);
    if (s->use_sid_tag) out[0] = s->sid_tag;
}

void cs__peek_sid(const cs_store *s, uint8_t out[CS__SID_BYTES]) {
    gen_sid(s, s->sid_counter, out);
}

void cs__new_sid(cs_store *s, uint8_t out[CS__SID_BYTES]) {
    gen_sid(s, s->sid_counter++, out);
}

/* Round function of the message-SID permutation: SipHash-2-4 of x under
 * the round's own key (derived from the SID key at store creation). */
static uint64_t feistel_round(const cs_store *s, unsigned round, uint64_t x) {
    return cs__siphash_u64(s->msg_rk[round], x);
}

/* Four rounds: with a pseudo-random round function, a strong pseudo-random
 * permutation (Luby-Rackoff), so SIDs reveal neither number. */
#define FEISTEL_ROUNDS 4u

void cs__msg_sid(const cs_store *s, int64_t serial, uint64_t ix,
                 uint8_t out[CS__SID_BYTES]) {
    uint64_t l = (uint64_t)serial, r = ix;
    for (unsigned i = 0; i < FEISTEL_ROUNDS; i++) {
        uint64_t t = l ^ feistel_round(s, i, r);
        l = r;
        r = t;
    }
    put64(out, l);
    put64(out + 8, r);
}

void cs__msg_sid_open(const cs_store *s, const uint8_t sid[CS__SID_BYTES],
                      int64_t *serial, uint64_t *ix) {
    uint64_t l = get64(sid), r = get64(sid + 8);
    for (unsigned i = FEISTEL_ROUNDS; i-- > 0;) {
        uint64_t t = r ^ feistel_round(s, i, l);
        r = l;
        l = t;
    }
    *serial = (int64_t)l;
    *ix = r;
}

uint32_t cs__keyed_hash(const cs_store *s, const void *p, size_t n) {
    return (uint32_t)cs__siphash(s->hash_key, p, n);
}

/* ---- create / free / clear ---------------------------------------------- */

bool cs__limits_valid(const cs_limits *l) {
    /* the quotas (max_*) take any value, 0 being none */
    return l->body_bytes && l->attributes_bytes && l->name_chars &&
           l->identity_chars && l->page_size_max && l->media_bytes &&
           l->content_type_bytes && l->filename_bytes &&
           l->body_bytes < UINT32_MAX && l->attributes_bytes < UINT32_MAX;
}

void cs__set_keys(cs_store *s, const uint8_t hash_key[16],
                  const uint8_t sid_key[16]) {
    memcpy(s->hash_key, hash_key, 16);
    memcpy(s->sid_key, sid_key, 16);
    /* Round keys of the message-SID permutation: SipHash-128 of "msg-rN"
     * (an input no other SID derivation uses) under the SID key. */
    for (unsigned i = 0; i < 4; i++) {
        char in[6] = {'m', 's', 'g', '-', 'r', (char)('0' + i)};
        uint8_t k[16];
        cs__siphash128(s->sid_key, in, sizeof in, k);
        s->msg_rk[i][0] = get64(k);
        s->msg_rk[i][1] = get64(k + 8);
    }
}

static cs_err setup_keys(cs_store *s, const cs_options *o) {
    uint8_t km[32];
    if (o->use_seed) {
        keys_from_seed(o->seed, km);
    } else {
        cs_random_fn fn = o->random ? o->random : os_random;
        if (fn(o->random_ctx, km, sizeof km) != 0) return CS_E_INVALID_ARGUMENT;
    }
    cs__set_keys(s, km, km + 16);
    return CS_OK;
}

static cs_err setup_account(cs_store *s, const cs_options *o) {
    uint8_t b[CS__SID_BYTES];
    if (o->account_sid) {
        if (cs__sid_parse(o->account_sid, strlen(o->account_sid), 'A', 'C', b))
            return CS_E_INVALID_ARGUMENT;
    } else {
        cs__siphash128(s->sid_key, "account", 7, b);
    }
    cs__sid_format('A', 'C', b, s->account_sid);
    return CS_OK;
}

static cs_err setup_base(cs_store *s, const cs_options *o) {
    const char *base = o->base_url ? o->base_url : DEFAULT_BASE;
    size_t n = strlen(base);
    while (n && base[n - 1] == '/') n--; /* paths add their own '/' */
    if (!n || !cs__utf8_valid(base, n)) return CS_E_INVALID_ARGUMENT;
    s->base_url = cs__memdup(s, base, n);
    s->base_len = n;
    return s->base_url ? CS_OK : CS_E_NOMEM;
}

/* Version 2 ended with seed: the fields after it are version 3's. */
#define OPTIONS_V2_BYTES offsetof(cs_options, use_sid_tag)
_Static_assert(OPTIONS_V2_BYTES ==
                   offsetof(cs_options, seed) + sizeof(uint64_t),
               "version 3 options add fields right after version 2's last");

cs_err cs__options_read(const cs_options *opts, cs_options *out) {
    static const cs_options defaults = CS_OPTIONS_INIT;
    *out = defaults;
    if (!opts) return CS_OK;
    if (opts->version == CS_OPTIONS_VERSION) {
        *out = *opts;
    } else if (opts->version == 2) {
        memcpy(out, opts, OPTIONS_V2_BYTES);
        out->version = CS_OPTIONS_VERSION; /* the tag stays off */
    } else {
        return CS_E_INVALID_ARGUMENT;
    }
    return CS_OK;
}

cs_err cs_store_new(const cs_options *opts, cs_store **out) {
    CS__REQUIRE(out);
    *out = NULL;
    cs_options copy;
    const cs_options *o = &copy;
    if (cs__options_read(opts, &copy) || !cs__limits_valid(&o->limits))
        return CS_E_INVALID_ARGUMENT;
    cs_allocator alc = {libc_malloc, libc_free, NULL};
    if (o->allocator) {
        if (!o->allocator->malloc || !o->allocator->free)
            return CS_E_INVALID_ARGUMENT;
        alc = *o->allocator;
    }
    cs_store *s = alc.malloc(alc.ctx, sizeof *s);
    if (!s) return CS_E_NOMEM;
    memset(s, 0, sizeof *s);
    s->alc = alc;
    s->lim = o->limits;
    s->clock = o->clock ? o->clock : real_clock;
    s->clock_ctx = o->clock_ctx;
    s->use_sid_tag = o->use_sid_tag;
    s->sid_tag = o->sid_tag;
    cs_err e = setup_keys(s, o);
    if (!e) e = setup_account(s, o);
    if (!e) e = setup_base(s, o);
    if (!e) e = cs__lock_init(&s->lock);
    if (e) {
        if (s->base_url) cs__free(s, s->base_url, s->base_len + 1);
        alc.free(alc.ctx, s, sizeof *s);
        return e;
    }
    *out = s;
    return CS_OK;
}

static void drop_content(cs_store *s) {
    cs_service *v, *tmp;
    HASH_ITER(hh, s->services, v, tmp) {
        CS__UT(s);
        HASH_DEL(s->services, v);
        cs__service_destroy(s, v);
    }
    cs__seq_free(s, &s->service_seq);
}

cs_err cs_store_clear(cs_store *s) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    if (cs__journaled(s)) {
        cs__jr r = {.op = CS__J_CLEAR, .counter0 = s->sid_counter};
        cs_err e = cs__journal(s, &r);
        if (e) return e;
    }
    cs_event ev = {.type = CS_EVENT_STORE_CLEARED};
    ev.removed_services = HASH_COUNT(s->services);
    ev.removed_channels = s->n_channels;
    ev.removed_messages = s->n_messages;
    ev.removed_media = s->n_media;
    drop_content(s);
    s->sid_counter = 0;
    s->serial = 0;
    cs__commit(s, &ev);
    return CS_OK;
}

cs_err cs_store_new_epoch(cs_store *s, uint32_t *epoch) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    if (s->epoch >= CS__EPOCH_MAX) return CS_E_LIMIT_EXCEEDED;
    if (cs__journaled(s)) {
        cs__jr r = {.op = CS__J_EPOCH, .counter0 = s->sid_counter,
                    .index = (int64_t)s->epoch + 1};
        cs_err e = cs__journal(s, &r);
        if (e) return e;
    }
    s->epoch++;
    cs_event ev = {.type = CS_EVENT_EPOCH_STARTED};
    cs__commit(s, &ev);
    if (epoch) *epoch = s->epoch;
    return CS_OK;
}

uint32_t cs_store_epoch(const cs_store *s) {
    CS__REQUIRE(s);
    return s->epoch;
}

void cs_store_free(cs_store *s) {
    if (!s) return;
    cs__lock_drop(s);
    drop_content(s);
    cs__free(s, s->obs, s->cap_obs * sizeof(*s->obs));
    cs__free(s, s->base_url, s->base_len + 1);
    pthread_rwlock_destroy(&s->lock);
    cs_allocator alc = s->alc;
    alc.free(alc.ctx, s, sizeof *s);
}

const char *cs_store_account_sid(const cs_store *s) {
    CS__REQUIRE(s);
    return s->account_sid;
}
const char *cs_store_base_url(const cs_store *s) {
    CS__REQUIRE(s);
    return s->base_url;
}
const cs_limits *cs_store_limits(const cs_store *s) {
    CS__REQUIRE(s);
    return &s->lim;
}
int cs_store_sid_tag(const cs_store *s) {
    CS__REQUIRE(s);
    return s->use_sid_tag ? s->sid_tag : -1;
}

cs_err cs_store_set_limits(cs_store *s, const cs_limits *lim) {
    CS__REQUIRE(s);
    CS__REQUIRE(lim);
    if (s->in_observer) return CS_E_REENTRANT;
    if (!cs__limits_valid(lim)) return CS_E_INVALID_ARGUMENT;
    s->lim = *lim;
    return CS_OK;
}

void cs_store_stats_get(const cs_store *s, cs_store_stats *out) {
    CS__REQUIRE(s);
    CS__REQUIRE(out);
    out->services = HASH_COUNT(s->services);
    out->channels = s->n_channels;
    out->messages = s->n_messages;
    out->media = s->n_media;
    out->identities = HASH_COUNT(s->idents);
    out->bytes_allocated = s->bytes;
    out->commits = s->commits;
}
