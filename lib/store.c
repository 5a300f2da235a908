/* The store: options, hooks, SID generation, identities, observers, locks
 * and the input checks every resource shares.
 *
 * Invariants: every committed change of the data calls cs__commit exactly
 * once, after the change is complete, so observers see the new state and
 * the commit number orders changes; a thread's lock bookkeeping (tl_held)
 * lists exactly the stores whose lock it holds. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: writer preference */
#include "internal.h"

#include <errno.h>
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
    int64_t t = s->clock(s->clock_ctx);
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

void cs__new_sid(cs_store *s, uint8_t out[CS__SID_BYTES]) {
    uint64_t c = s->sid_counter++;
    cs__siphash128(s->sid_key, &c, sizeof c, out);
}

/* Round function of the message-SID permutation: SipHash-2-4 of x under
 * the round's own key (derived from the SID key at store creation). */
static uint64_t feistel_round(const cs_store *s, unsigned round, uint64_t x) {
    return cs__siphash_u64(s->msg_rk[round], x);
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Four rounds: with a pseudo-random round function, a strong pseudo-random
 * permutation (Luby-Rackoff), so SIDs reveal neither number. */
#define FEISTEL_ROUNDS 4u

void cs__msg_sid(const cs_store *s, int64_t serial, int64_t index,
                 uint8_t out[CS__SID_BYTES]) {
    uint64_t l = (uint64_t)serial, r = (uint64_t)index;
    for (unsigned i = 0; i < FEISTEL_ROUNDS; i++) {
        uint64_t t = l ^ feistel_round(s, i, r);
        l = r;
        r = t;
    }
    put64(out, l);
    put64(out + 8, r);
}

void cs__msg_sid_open(const cs_store *s, const uint8_t sid[CS__SID_BYTES],
                      int64_t *serial, int64_t *index) {
    uint64_t l = get64(sid), r = get64(sid + 8);
    for (unsigned i = FEISTEL_ROUNDS; i-- > 0;) {
        uint64_t t = r ^ feistel_round(s, i, l);
        r = l;
        l = t;
    }
    *serial = (int64_t)l;
    *index = (int64_t)r;
}

uint32_t cs__keyed_hash(const cs_store *s, const void *p, size_t n) {
    return (uint32_t)cs__siphash(s->hash_key, p, n);
}

/* ---- create / free / clear ---------------------------------------------- */

static bool limits_valid(const cs_limits *l) {
    return l->body_bytes && l->attributes_bytes && l->name_chars &&
           l->identity_chars && l->page_size_max && l->media_bytes &&
           l->content_type_bytes && l->filename_bytes &&
           l->body_bytes < UINT32_MAX && l->attributes_bytes < UINT32_MAX;
}

static cs_err setup_keys(cs_store *s, const cs_options *o) {
    uint8_t km[32];
    if (o->use_seed) {
        keys_from_seed(o->seed, km);
    } else {
        cs_random_fn fn = o->random ? o->random : os_random;
        if (fn(o->random_ctx, km, sizeof km) != 0) return CS_E_INVALID_ARGUMENT;
    }
    memcpy(s->hash_key, km, 16);
    memcpy(s->sid_key, km + 16, 16);
    /* Round keys of the message-SID permutation: SipHash-128 of "msg-rN"
     * (an input no other SID derivation uses) under the SID key. */
    for (unsigned i = 0; i < 4; i++) {
        char in[6] = {'m', 's', 'g', '-', 'r', (char)('0' + i)};
        uint8_t k[16];
        cs__siphash128(s->sid_key, in, sizeof in, k);
        s->msg_rk[i][0] = get64(k);
        s->msg_rk[i][1] = get64(k + 8);
    }
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

/* Writers must not starve behind a stream of readers: glibc's default
 * rwlock prefers readers, so ask for writer preference where it exists. */
static cs_err init_lock(pthread_rwlock_t *lock) {
    pthread_rwlockattr_t attr;
    if (pthread_rwlockattr_init(&attr) != 0) return CS_E_NOMEM;
#ifdef __GLIBC__
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    int rc = pthread_rwlock_init(lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return rc == 0 ? CS_OK : CS_E_NOMEM;
}

cs_err cs_store_new(const cs_options *opts, cs_store **out) {
    static const cs_options defaults = CS_OPTIONS_INIT;
    const cs_options *o = opts ? opts : &defaults;
    CS__REQUIRE(out);
    *out = NULL;
    if (o->version != CS_OPTIONS_VERSION || !limits_valid(&o->limits))
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
    cs_err e = setup_keys(s, o);
    if (!e) e = setup_account(s, o);
    if (!e) e = setup_base(s, o);
    if (!e) e = init_lock(&s->lock);
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

static void held_drop(cs_store *s);

void cs_store_free(cs_store *s) {
    if (!s) return;
    held_drop(s);
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

cs_err cs_store_set_limits(cs_store *s, const cs_limits *lim) {
    CS__REQUIRE(s);
    CS__REQUIRE(lim);
    if (s->in_observer) return CS_E_REENTRANT;
    if (!limits_valid(lim)) return CS_E_INVALID_ARGUMENT;
    s->lim = *lim;
    return CS_OK;
}

/* ---- the lock ------------------------------------------------------------
 * Each thread keeps the stores whose lock it holds, so every misuse the
 * header names is caught before it reaches pthreads (where a second shared
 * hold behind a waiting writer deadlocks and an unlock by a non-holder is
 * undefined). The observing store is thread-local too: another thread that
 * reads it never races with the writer that sets it. */

typedef struct held_lock {
    const cs_store *s;
    bool exclusive;
} held_lock;

static _Thread_local held_lock tl_held[CS_LOCKS_PER_THREAD];
static _Thread_local unsigned tl_nheld;
static _Thread_local const cs_store *tl_observing;

static int held_find(const cs_store *s) {
    for (unsigned i = 0; i < tl_nheld; i++)
        if (tl_held[i].s == s) return (int)i;
    return -1;
}

static void held_forget(int i) { tl_held[i] = tl_held[--tl_nheld]; }

/* cs_store_free by a holder: release its hold first. */
static void held_drop(cs_store *s) {
    int i = held_find(s);
    if (i < 0) return;
    pthread_rwlock_unlock(&s->lock);
    held_forget(i);
}

static cs_err lock_take(cs_store *s, bool exclusive) {
    CS__REQUIRE(s);
    if (tl_observing == s) return CS_E_REENTRANT;
    if (held_find(s) >= 0) return CS_E_LOCK_HELD;
    if (tl_nheld == CS_LOCKS_PER_THREAD) return CS_E_LOCK_FAILED;
    int rc = exclusive ? pthread_rwlock_wrlock(&s->lock)
                       : pthread_rwlock_rdlock(&s->lock);
    if (rc) return rc == EDEADLK ? CS_E_LOCK_HELD : CS_E_LOCK_FAILED;
    tl_held[tl_nheld++] = (held_lock){s, exclusive};
    return CS_OK;
}

cs_err cs_store_lock_shared(cs_store *s) { return lock_take(s, false); }
cs_err cs_store_lock_exclusive(cs_store *s) { return lock_take(s, true); }

cs_err cs_store_unlock(cs_store *s) {
    CS__REQUIRE(s);
    if (tl_observing == s) return CS_E_REENTRANT;
    int i = held_find(s);
    if (i < 0) return CS_E_LOCK_NOT_HELD;
    if (pthread_rwlock_unlock(&s->lock) != 0) return CS_E_LOCK_FAILED;
    held_forget(i);
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

/* ---- identities --------------------------------------------------------- */

cs_err cs__ident_get(cs_store *s, const char *p, size_t n, cs_ident **out) {
    uint32_t h = cs__keyed_hash(s, p, n);
    cs_ident *id;
    HASH_FIND_BYHASHVALUE(hh, s->idents, p, n, h, id);
    if (id) {
        id->refs++;
        *out = id;
        return CS_OK;
    }
    id = cs__malloc(s, sizeof *id + n + 1);
    if (!id) return CS_E_NOMEM;
    id->refs = 1;
    id->len = (uint32_t)n;
    memcpy(id->str, p, n);
    id->str[n] = '\0';
    CS__UT(s);
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->idents, id->str, n, h, id);
    if (CS__UT_FAILED) {
        cs__free(s, id, sizeof *id + n + 1);
        return CS_E_NOMEM;
    }
    *out = id;
    return CS_OK;
}

void cs__ident_put(cs_store *s, cs_ident *id) {
    if (cs__ident_release(s, id)) cs__ident_free(s, id);
}

bool cs__ident_release(cs_store *s, cs_ident *id) {
    if (!id || --id->refs) return false;
    CS__UT(s);
    HASH_DEL(s->idents, id);
    return true;
}

void cs__ident_free(cs_store *s, cs_ident *id) {
    cs__free(s, id, sizeof *id + id->len + 1);
}

/* ---- observers ---------------------------------------------------------- */

cs_err cs_observer_add(cs_store *s, cs_observer_fn fn, void *ctx,
                       uint64_t *id) {
    CS__REQUIRE(s);
    if (!fn) return CS_E_INVALID_ARGUMENT;
    if (s->in_observer) return CS_E_REENTRANT;
    if (s->n_obs == s->cap_obs) {
        size_t cap = s->cap_obs ? s->cap_obs * 2 : 4;
        cs_observer *o = cs__malloc(s, cap * sizeof *o);
        if (!o) return CS_E_NOMEM;
        if (s->n_obs) memcpy(o, s->obs, s->n_obs * sizeof *o);
        cs__free(s, s->obs, s->cap_obs * sizeof *o);
        s->obs = o;
        s->cap_obs = cap;
    }
    uint64_t nid = ++s->next_obs_id;
    s->obs[s->n_obs++] = (cs_observer){fn, ctx, nid};
    if (id) *id = nid;
    return CS_OK;
}

cs_err cs_observer_remove(cs_store *s, uint64_t id) {
    CS__REQUIRE(s);
    if (s->in_observer) return CS_E_REENTRANT;
    for (size_t i = 0; i < s->n_obs; i++) {
        if (s->obs[i].id != id) continue;
        memmove(&s->obs[i], &s->obs[i + 1], (s->n_obs - i - 1) * sizeof *s->obs);
        s->n_obs--;
        return CS_OK;
    }
    return CS_E_NOT_FOUND;
}

void cs__commit(cs_store *s, cs_event *ev) {
    ev->seq = ++s->commits;
    if (!s->n_obs) return;
    const cs_store *outer = tl_observing;
    s->in_observer = true;
    tl_observing = s;
    for (size_t i = 0; i < s->n_obs; i++) s->obs[i].fn(s->obs[i].ctx, ev);
    tl_observing = outer;
    s->in_observer = false;
}

/* ---- shared input checks ------------------------------------------------ */

cs_err cs__check_text(cs_str v, size_t max_chars, cs_err too_long) {
    if (!v.ptr) return CS_OK;
    /* Each code point takes at most 4 bytes: a quick bound before counting
     * (divided, not multiplied: max_chars * 4 can wrap around). */
    if (v.len / 4 > max_chars) {
        return cs__utf8_valid(v.ptr, v.len) ? too_long : CS_E_BAD_UTF8;
    }
    size_t n = cs__utf8_length(v.ptr, v.len);
    if (n == SIZE_MAX) return CS_E_BAD_UTF8;
    return n > max_chars ? too_long : CS_OK;
}

cs_err cs__check_attributes(const cs_store *s, cs_str v) {
    if (!v.ptr) return CS_OK;
    if (v.len > s->lim.attributes_bytes) return CS_E_ATTRIBUTES_TOO_LONG;
    return cs__json_valid(v.ptr, v.len) ? CS_OK : CS_E_ATTRIBUTES_INVALID;
}

cs_err cs__check_date(cs_str v, cs_err bad, int64_t *out) {
    if (!v.ptr) return CS_OK;
    return cs__time_parse(v.ptr, v.len, out) == 0 ? CS_OK : bad;
}

static bool eq_nocase(cs_str v, const char *lit) {
    size_t n = strlen(lit);
    if (v.len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = v.ptr[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lit[i]) return false;
    }
    return true;
}

cs_err cs__parse_webhook(cs_str v, cs_webhook *out) {
    if (!v.ptr) {
        *out = CS_WEBHOOK_ABSENT;
    } else if (eq_nocase(v, "true")) {
        *out = CS_WEBHOOK_TRUE;
    } else if (eq_nocase(v, "false")) {
        *out = CS_WEBHOOK_FALSE;
    } else {
        return CS_E_BAD_WEBHOOK_HEADER;
    }
    return CS_OK;
}

cs_err cs__webhook_of(cs_str v, cs_webhook typed, cs_webhook *out) {
    if (typed == CS_WEBHOOK_ABSENT) return cs__parse_webhook(v, out);
    if (v.ptr) return CS_E_INVALID_ARGUMENT;
    if (typed != CS_WEBHOOK_TRUE && typed != CS_WEBHOOK_FALSE)
        return CS_E_BAD_WEBHOOK_HEADER;
    *out = typed;
    return CS_OK;
}

cs_str cs_webhook_str(cs_webhook w) {
    if (w == CS_WEBHOOK_TRUE) return (cs_str){"true", 4};
    if (w == CS_WEBHOOK_FALSE) return (cs_str){"false", 5};
    return (cs_str){NULL, 0};
}

const cs_channel_params cs__no_channel_params;
const cs_message_params cs__no_message_params;

void cs_format_date(int64_t t, char out[CS_DATE_BUFSZ]) {
    CS__REQUIRE(out);
    if (t < CS__TIME_MIN) t = CS__TIME_MIN;
    if (t > CS__TIME_MAX) t = CS__TIME_MAX;
    cs__time_format(t, out);
}

cs_err cs_parse_date(cs_str v, int64_t *out) {
    CS__REQUIRE(out);
    if (!v.ptr) return CS_E_INVALID_ARGUMENT;
    return cs__time_parse(v.ptr, v.len, out) == 0 ? CS_OK
                                                  : CS_E_INVALID_ARGUMENT;
}
