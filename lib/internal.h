/* Private structures of the store. Layout of the data:
 *
 *   cs_store
 *    |- services      uthash by SID bytes        -> cs_service
 *    |- service_seq   creation order (serial)    -> cs_service
 *    |  (no table of messages: a message SID is a keyed permutation of
 *    |   its channel's serial, its index and its epoch, see cs__msg_sid)
 *    `- idents        interned identities (From, LastUpdatedBy, CreatedBy),
 *                     uthash keyed with the store's secret hash key
 *   cs_service
 *    |- channels      uthash by SID bytes        -> cs_channel
 *    |- names         uthash by unique_name (keyed hash)
 *    |- channel_seq   creation order (serial)    -> cs_channel
 *    `- media         uthash by SID bytes        -> cs_media
 *   cs_channel
 *    |- msgs          cs_dix by message index    -> cs_msg (dense keys)
 *    `- arena         the channel's message records, in chunks (arena.c)
 *
 * Every mutation first allocates everything it may need (reserve), then
 * links with steps that cannot fail, so a failed call changes nothing.
 */
#ifndef CHATSTORE_INTERNAL_H
#define CHATSTORE_INTERNAL_H

#include "chatstore.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

/* Pointer arguments the header says must not be NULL: asserted in a checked
 * build (CMake option CHATSTORE_CHECKED), trusted otherwise. CMake's Release
 * and RelWithDebInfo (the default) define NDEBUG, which would compile the
 * assert out: a checked build asserts whatever the build type (assert.h
 * redefines assert on every inclusion; the library has no other assert). */
#ifdef CHATSTORE_CHECKED
#undef NDEBUG
#include <assert.h>
#define CS__REQUIRE(p) assert((p) != NULL && "argument must not be NULL")
#else
#define CS__REQUIRE(p) ((void)0)
#endif

#include "isotime.h"
#include "sid.h"
#include "siphash.h"
#include "text.h"

/* ---- allocation --------------------------------------------------------- */

void *cs__malloc(cs_store *s, size_t n);
void cs__free(cs_store *s, void *p, size_t n);
/* Copies s[0..n) into new memory with a NUL after it. */
char *cs__memdup(cs_store *s, const char *p, size_t n);

/* uthash through the store's allocator. Any function using HASH_ADD or
 * HASH_DEL declares CS__UT(store) first; after an add, CS__UT_FAILED tells
 * whether uthash ran out of memory (the element is then not in the table). */
#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) cs__malloc(cs__ut_store, (sz))
#define uthash_free(ptr, sz) cs__free(cs__ut_store, (ptr), (sz))
#define uthash_nonfatal_oom(obj) (cs__ut_oom = 1)
#define CS__UT(st)                                                            \
    cs_store *cs__ut_store = (st);                                            \
    int cs__ut_oom = 0;                                                       \
    (void)cs__ut_store;                                                       \
    (void)cs__ut_oom
#define CS__UT_FAILED (cs__ut_oom != 0)
#include <uthash.h>

/* ---- ordered sequence: (key, value) with strictly increasing keys -------- */

typedef struct cs_seq_ent {
    int64_t key;
    void *val;
} cs_seq_ent;

typedef struct cs_seq_blk {
    uint32_t n, cap;
    cs_seq_ent e[];
} cs_seq_blk;

/* A two-level array: a directory of blocks of at most CS__SEQ_BLK entries.
 * Appends go to the last block; removal shifts within one block and merges
 * sparse neighbours, so memory follows the live entries and a seek costs
 * O(log n) wherever it lands. */
#define CS__SEQ_BLK 256u
typedef struct cs_seq {
    cs_seq_blk **blk;
    int64_t *first; /* first key of each block: binary search stays local */
    size_t nblk, dcap;
    size_t count;
    cs_seq_blk *spare; /* reserved empty block for the next append */
} cs_seq;

typedef struct cs_seq_pos {
    size_t b;
    uint32_t i;
} cs_seq_pos;

cs_err cs__seq_reserve(cs_store *s, cs_seq *q);
void cs__seq_append(cs_seq *q, int64_t key, void *val); /* after reserve */
void *cs__seq_remove(cs_store *s, cs_seq *q, int64_t key);
void *cs__seq_find(const cs_seq *q, int64_t key);
/* First entry with key > k (after) or last with key < k (before). */
bool cs__seq_after(const cs_seq *q, int64_t k, cs_seq_pos *pos);
bool cs__seq_before(const cs_seq *q, int64_t k, cs_seq_pos *pos);
bool cs__seq_next(const cs_seq *q, cs_seq_pos *pos);
bool cs__seq_prev(const cs_seq *q, cs_seq_pos *pos);
static inline const cs_seq_ent *cs__seq_at(const cs_seq *q, cs_seq_pos p) {
    return &q->blk[p.b]->e[p.i];
}
void cs__seq_free(cs_store *s, cs_seq *q);
cs_err cs__seq_check(const cs_seq *q);
size_t cs__seq_bytes(const cs_seq *q);

/* ---- dense index: a channel's messages by index (dix.c) ----------------- */

#define CS__DIX_BLK 256u
typedef struct cs_dix_blk {
    uint32_t live; /* non-NULL entries */
    uint32_t pad_;
    void *v[CS__DIX_BLK];
} cs_dix_blk;

typedef struct cs_dix {
    cs_dix_blk ***top; /* directory pages: entry j = top[j / 512][j % 512] */
    size_t ntop, tcap; /* pages in use, room in top */
    size_t cap0;       /* entries of page 0 while it is the only one */
    size_t lo, n;      /* entries [lo, n) in use; below lo all NULL */
    uint64_t off;      /* entry j holds keys (off + j) * CS__DIX_BLK ... */
    size_t count;
    int64_t last;      /* the last key appended */
    cs_dix_blk *spare; /* reserved for the next append */
    cs_dix_blk *tailb; /* the block appends go to (keys tailk ...), so */
    int64_t tailk;     /* they skip the directory; NULL: none */
} cs_dix;

/* Keys are appended in increasing order and never reused. */
cs_err cs__dix_reserve(cs_store *s, cs_dix *q, int64_t key);
void cs__dix_append(cs_dix *q, int64_t key, void *val); /* after reserve */
/* Lookups and single steps are inline: a page makes a few per item. */
#define CS__DIX_PAGE 512u
static inline cs_dix_blk *cs__dix_blk_of(const cs_dix *q, int64_t key) {
    if (key < 0) return NULL;
    uint64_t sl = (uint64_t)key / CS__DIX_BLK;
    if (sl < q->off || sl - q->off >= q->n) return NULL;
    size_t j = (size_t)(sl - q->off);
    return q->top[j / CS__DIX_PAGE][j % CS__DIX_PAGE];
}
static inline void *cs__dix_find(const cs_dix *q, int64_t key) {
    const cs_dix_blk *b = cs__dix_blk_of(q, key);
    return b ? b->v[(uint64_t)key % CS__DIX_BLK] : NULL;
}
void cs__dix_set(cs_dix *q, int64_t key, void *val); /* existing key */
void *cs__dix_remove(cs_store *s, cs_dix *q, int64_t key);
/* First live key > k (after) or last live key < k (before). */
bool cs__dix_after(const cs_dix *q, int64_t k, int64_t *out);
bool cs__dix_before(const cs_dix *q, int64_t k, int64_t *out);
int64_t cs__dix_last_key(const cs_dix *q); /* -1: empty */
/* cs__dix_after and _before with the common case inline: the neighbouring
 * slot of the same block is live. */
static inline bool cs__dix_step(const cs_dix *q, bool fwd, int64_t k,
                                int64_t *out) {
    uint32_t i = (uint32_t)((uint64_t)k % CS__DIX_BLK);
    if (k >= 0 && (fwd ? i + 1 < CS__DIX_BLK : i > 0)) {
        const cs_dix_blk *b = cs__dix_blk_of(q, k);
        if (b && b->v[fwd ? i + 1 : i - 1]) {
            *out = fwd ? k + 1 : k - 1;
            return true;
        }
    }
    return fwd ? cs__dix_after(q, k, out) : cs__dix_before(q, k, out);
}
void cs__dix_free(cs_store *s, cs_dix *q);
cs_err cs__dix_check(const cs_dix *q);
size_t cs__dix_bytes(const cs_dix *q);

/* ---- objects ------------------------------------------------------------ */

typedef struct cs_ident {
    UT_hash_handle hh;
    uint32_t refs;
    uint32_t len;
    char str[]; /* NUL-terminated */
} cs_ident;

typedef struct cs_media {
    UT_hash_handle hh;
    uint8_t sidb[CS__SID_BYTES];
    struct cs_service *svc;
    char *content_type, *filename; /* filename NULL: none */
    size_t ct_len, fn_len;
    uint64_t size;
    int64_t date_created;
    bool attached; /* an attached item goes with its message */
    uint8_t msg_sid[CS__SID_BYTES], chan_sid[CS__SID_BYTES];
} cs_media;

/* A message record, in its channel's arena. Fixed fields, then
 *   data: From NUL body NUL [attributes NUL]
 * then, 8-byte aligned, the pointers that only some messages have:
 *   [cs_ident *last_updated_by] [cs_media *media]
 * Nothing points from a record to its channel: every way to a record goes
 * through the channel. */
enum {
    CS__M_LIVE = 1,   /* false: a hole in the chunk */
    CS__M_EDITED = 2, /* was_edited */
    CS__M_LUB = 4,    /* has a LastUpdatedBy slot */
    CS__M_MEDIA = 8   /* has a media slot */
};
/* Message indices are below 2^40 (a create past that is LIMIT_EXCEEDED);
 * the 24 bits above hold the SID epoch the message was created in. */
#define CS__IX_BITS 40
#define CS__INDEX_MAX (INT64_C(1) << CS__IX_BITS) /* message indices below this */
#define CS__EPOCH_MAX ((UINT32_C(1) << (64 - CS__IX_BITS)) - 1)
static inline uint64_t cs__ix(int64_t index, uint32_t epoch) {
    return (uint64_t)index | (uint64_t)epoch << CS__IX_BITS;
}
static inline int64_t cs__ix_index(uint64_t ix) {
    return (int64_t)(ix & (((uint64_t)1 << CS__IX_BITS) - 1));
}
static inline uint32_t cs__ix_epoch(uint64_t ix) {
    return (uint32_t)(ix >> CS__IX_BITS);
}
typedef struct cs_msg {
    uint8_t sidb[CS__SID_BYTES];
    uint64_t ix; /* cs__ix(index, epoch): the SID's inputs besides the
                    channel's serial, in the 8 bytes the index needs */
    int64_t date_created, date_updated;
    uint32_t from_len; /* From is kept in the record: reading a page then */
    uint32_t body_len; /* touches no memory outside the channel's chunks */
    uint32_t attr_len; /* 0: the default "{}" (empty JSON is never stored) */
    uint32_t cap;      /* bytes of the record in its chunk: edits reuse them */
    uint32_t chunk;    /* id of its chunk in the channel's arena */
    uint8_t flags;     /* CS__M_* */
    char data[];
} cs_msg;

static inline int64_t cs__msg_index(const cs_msg *m) {
    return cs__ix_index(m->ix);
}
static inline const char *cs__msg_from(const cs_msg *m) { return m->data; }
static inline const char *cs__msg_body(const cs_msg *m) {
    return m->data + m->from_len + 1;
}
static inline const char *cs__msg_attr(const cs_msg *m) {
    return m->data + m->from_len + 1 + m->body_len + 1;
}
/* Offset of the optional pointers from the record's start. */
static inline size_t cs__msg_ext_off(size_t from_len, size_t body_len,
                                     size_t attr_len) {
    size_t end = offsetof(cs_msg, data) + from_len + 1 + body_len + 1 +
                 (attr_len ? attr_len + 1 : 0);
    return (end + 7) & ~(size_t)7;
}
static inline cs_ident *cs__msg_lub(const cs_msg *m) {
    if (!(m->flags & CS__M_LUB)) return NULL;
    cs_ident *v;
    memcpy(&v,
           (const char *)m +
               cs__msg_ext_off(m->from_len, m->body_len, m->attr_len),
           sizeof v);
    return v;
}
static inline cs_media *cs__msg_media(const cs_msg *m) {
    if (!(m->flags & CS__M_MEDIA)) return NULL;
    cs_media *v;
    memcpy(&v,
           (const char *)m +
               cs__msg_ext_off(m->from_len, m->body_len, m->attr_len) +
               (m->flags & CS__M_LUB ? sizeof(cs_ident *) : 0),
           sizeof v);
    return v;
}

/* Per-channel record storage (arena.c). A record names its chunk by a
 * small id; the chunks' live byte counts sit in the arena, so freeing a
 * record touches the record and that (hot) array, not the chunk's header. */
typedef struct cs_chunk {
    uint32_t size; /* bytes of data */
    uint32_t used; /* records are appended at data + used */
    uint32_t id;
    uint32_t pad_;
    _Alignas(8) char data[];
} cs_chunk;

#define CS__NO_CHUNK UINT32_MAX
typedef struct cs_arena {
    cs_chunk **chunk; /* by id; NULL: a free id */
    uint32_t *live;   /* live bytes by id (a free id: the next free id) */
    uint32_t nid;     /* ids [0, nid) have been used; room for cap */
    uint32_t cap;
    uint32_t free_id; /* first free id below nid, or CS__NO_CHUNK */
    uint32_t sparse;  /* under a quarter live: emptied by the next tidy */
    cs_chunk *tail;   /* records are added here; NULL: none yet */
    /* The tail's state lives here while it is the tail (its header's used
     * is written back when another chunk takes over), so a create touches
     * the channel and the new record's line only. */
    char *tail_next;
    uint32_t tail_room, tail_id;
    size_t live_total; /* bytes of live records */
    size_t nchunks, chunk_total;
} cs_arena;

struct cs_channel;
/* A record of at least `bytes` with cap, chunk and CS__M_LIVE set (the rest
 * is the caller's to fill); NULL when out of memory. */
cs_msg *cs__arena_alloc(cs_store *s, cs_arena *a, size_t bytes);
/* Makes m a hole; frees its chunk when nothing in it is live. */
void cs__arena_release(cs_store *s, cs_arena *a, cs_msg *m);
static inline void cs__arena_init(cs_arena *a) {
    memset(a, 0, sizeof *a);
    a->free_id = a->sparse = CS__NO_CHUNK;
}
void cs__arena_free(cs_store *s, cs_arena *a); /* leaves it as _init does */
/* Evacuates a sparse chunk; call at the end of a mutation, when no view of
 * another record of the channel is held. */
void cs__arena_tidy(cs_store *s, struct cs_channel *c);
/* dying: a record out of the indexes whose release waits for the observers
 * of its delete (its view borrows the body), or NULL. */
cs_err cs__arena_check(const struct cs_channel *c, const cs_msg *dying);

/* Entry of service->names. A separate node, so that renaming can add the new
 * entry before removing the old one: either step alone leaves a valid state. */
typedef struct cs_name_ent {
    UT_hash_handle hh;
    struct cs_channel *chan;
} cs_name_ent;

typedef struct cs_channel {
    UT_hash_handle hh;     /* service->channels, by SID bytes */
    cs_name_ent *name_ent; /* NULL when unique_name is null */
    uint8_t sidb[CS__SID_BYTES];
    char sid[CS_SID_BUFSZ];
    struct cs_service *svc;
    int64_t serial;
    char *friendly_name, *unique_name, *attributes; /* NULL: null */
    size_t fn_len, un_len, attr_len;
    cs_ident *created_by;
    cs_channel_type type;
    int64_t date_created, date_updated;
    int64_t next_index;
    cs_dix msgs;
    cs_arena arena;
} cs_channel;

typedef struct cs_service {
    UT_hash_handle hh;
    uint8_t sidb[CS__SID_BYTES];
    char sid[CS_SID_BUFSZ];
    char role_sid[3][CS_SID_BUFSZ];
    int64_t serial;
    int64_t date_created, date_updated;
    char *friendly_name;
    size_t fn_len;
    /* Webhook settings (service.c): URLs NULL when null; filters[0..n)
     * distinct events in the order given, n 0 when null. */
    char *pre_url, *post_url;
    size_t pre_len, post_len;
    uint8_t method; /* cs_webhook_method */
    uint8_t n_filters;
    uint8_t filters[CS_WEBHOOK_EVENTS];
    uint8_t pre_retry, post_retry; /* 0..3 */
    cs_channel *channels;
    cs_name_ent *names;
    cs_seq channel_seq;
    cs_media *media;
} cs_service;

typedef struct cs_observer {
    cs_observer_fn fn;
    void *ctx;
    uint64_t id;
} cs_observer;

struct cs_store {
    cs_allocator alc;
    size_t bytes;
    char account_sid[CS_SID_BUFSZ];
    char *base_url;
    size_t base_len;
    cs_limits lim;
    cs_clock_fn clock;
    void *clock_ctx;
    uint8_t hash_key[16]; /* table hashing and page-token MACs */
    uint8_t sid_key[16];  /* SID generator */
    uint64_t msg_rk[4][2]; /* round keys of the message-SID permutation */
    uint64_t sid_counter;
    uint32_t epoch; /* SID epoch: cs_store_new_epoch; 0..CS__EPOCH_MAX */
    bool use_sid_tag; /* options: the first byte of generated SIDs is... */
    uint8_t sid_tag;  /* ...sid_tag (services, channels, roles, media) */
    int64_t serial;
    cs_service *services;
    cs_seq service_seq;
    size_t n_messages;
    cs_ident *idents;
    size_t n_channels, n_media;
    cs_observer *obs;
    size_t n_obs, cap_obs;
    uint64_t next_obs_id;
    uint64_t commits; /* committed changes so far: the last event's seq */
    cs_journal_fn journal;
    void *journal_ctx;
    /* cs_journal_apply in progress: cs__now gives replay_now */
    bool replaying;
    int64_t replay_now;
    bool in_observer;
    /* The byte quota (lim.max_bytes) applies to this call's allocations;
     * quota_hit: one was refused for it. See cs__quota_begin. */
    bool quota_on, quota_hit;
    const cs_msg *dying; /* see cs__arena_check */
    pthread_rwlock_t lock;
};

/* ---- shared helpers ----------------------------------------------------- */

/* Quotas (the lim.max_* fields; 0: none). Never while a journal record is
 * applied: data a store accepted is not refused on recovery. A count
 * quota: whether a create would take n objects past max. */
static inline bool cs__at_quota(const cs_store *s, size_t n, uint64_t max) {
    return max && !s->replaying && n >= max;
}
/* The byte quota brackets a create or update: between _begin and _end,
 * cs__malloc refuses (as out of memory) any allocation that would take
 * s->bytes past lim.max_bytes, so the call fails through its ordinary
 * allocation-failure path and changes nothing; _end turns that NOMEM into
 * QUOTA_BYTES. Deletes never bracket. */
static inline void cs__quota_begin(cs_store *s) {
    s->quota_on = s->lim.max_bytes && !s->replaying;
    s->quota_hit = false;
}
static inline cs_err cs__quota_end(cs_store *s, cs_err e) {
    if (e == CS_E_NOMEM && s->quota_hit) e = CS_E_QUOTA_BYTES;
    s->quota_on = s->quota_hit = false;
    return e;
}

static inline bool cs__given(cs_str v) { return v.ptr != NULL; }
/* uthash bucket value of a SID: its last four bytes, since SIDs are PRF
 * output and already uniform there (no caller chooses them). Not the
 * first: in a store with a SID tag the first byte is the same in every
 * generated SID, and uthash takes a bucket from the value's low bits, so
 * a tagged store's SIDs would share one bucket of any table of up to 256. */
static inline uint32_t cs__sid_hashv(const uint8_t *sidb) {
    uint32_t h;
    memcpy(&h, sidb + CS__SID_BYTES - sizeof h, sizeof h);
    return h;
}
int64_t cs__now(const cs_store *s);
/* Service, channel, media and role SIDs: SipHash-128 under the SID key of
 * (sid_counter, epoch); the epoch is left out while it is 0. With a SID
 * tag (cs_options.use_sid_tag) the first byte is the tag instead. */
void cs__new_sid(cs_store *s, uint8_t out[CS__SID_BYTES]);
/* The SID cs__new_sid would give next, without taking it. */
void cs__peek_sid(const cs_store *s, uint8_t out[CS__SID_BYTES]);
/* Message SIDs: a keyed 128-bit permutation (a four-round Feistel network
 * over SipHash) of (channel serial, cs__ix(index, epoch)). Unique for the
 * store's life: no serial is reused, an index is reused only after a
 * journal loss and then in a later epoch (cs_store_new_epoch); as
 * unpredictable as the other SIDs. _open inverts it, so a fetch finds the
 * message through its channel's index without a store-wide table. */
void cs__msg_sid(const cs_store *s, int64_t serial, uint64_t ix,
                 uint8_t out[CS__SID_BYTES]);
void cs__msg_sid_open(const cs_store *s, const uint8_t sid[CS__SID_BYTES],
                      int64_t *serial, uint64_t *ix);
/* The caller's options (NULL: the defaults) in this version's layout into
 * *out: version 2 options are read up to their own end (no SID tag), this
 * version's whole; any other version is INVALID_ARGUMENT, with nothing
 * read but the version. */
cs_err cs__options_read(const cs_options *opts, cs_options *out);
uint32_t cs__keyed_hash(const cs_store *s, const void *p, size_t n);

/* Identities: interned, reference-counted strings. */
cs_err cs__ident_get(cs_store *s, const char *p, size_t n, cs_ident **out);
void cs__ident_put(cs_store *s, cs_ident *id);
/* cs__ident_put in two steps, for a delete whose event view still borrows
 * the string: release drops the reference and, when it was the last one,
 * takes the identity out of the store and returns true; the caller then
 * frees it with cs__ident_free once the view is no longer needed. */
bool cs__ident_release(cs_store *s, cs_ident *id);
void cs__ident_free(cs_store *s, cs_ident *id);

/* Validation, each returning the given error code on failure. */
cs_err cs__check_text(cs_str v, size_t max_chars, cs_err too_long);
cs_err cs__check_attributes(const cs_store *s, cs_str v);
cs_err cs__check_date(cs_str v, cs_err bad, int64_t *out);
cs_err cs__parse_webhook(cs_str v, cs_webhook *out);

/* Lookups (a malformed SID is simply not found). */
cs_service *cs__service_find(const cs_store *s, cs_str sid);
cs_err cs__resolve_channel(const cs_store *s, cs_str service_sid,
                           cs_str channel, cs_channel **out);
/* The same lookups by SID bytes (journal replay), NULL when not found. */
cs_service *cs__service_get(const cs_store *s, const uint8_t *sidb);
cs_channel *cs__channel_get(const cs_service *svc, const uint8_t *sidb);
cs_msg *cs__message_find(const cs_store *s, const cs_channel *c,
                         const uint8_t *sidb);

/* The message calls after their lookups (the public calls resolve their
 * SIDs, then run these; journal replay, which has the objects already,
 * runs them directly): the same checks, effects and errors. sid: the new
 * message's SID, already computed by the caller for (c->serial,
 * cs__ix(c->next_index, s->epoch)), or NULL to compute it. */
cs_err cs__message_create_in(cs_store *s, cs_channel *c,
                             const cs_message_params *p, const uint8_t *sid,
                             cs_message_view *out);
cs_err cs__message_update_in(cs_store *s, cs_channel *c, cs_msg *m,
                             const cs_message_params *p, cs_message_view *out);
cs_err cs__message_delete_in(cs_store *s, cs_channel *c, cs_msg *m,
                             cs_webhook wh);

/* Views of internal objects. */
void cs__service_view(const cs_store *s, const cs_service *v,
                      cs_service_view *out);
void cs__channel_view(const cs_store *s, const cs_channel *c,
                      cs_channel_view *out);
void cs__message_view(const cs_store *s, const struct cs_channel *c,
                      const cs_msg *m, cs_message_view *out);
void cs__media_view(const cs_store *s, const cs_media *m, cs_media_view *out);

/* CRC-32C (crc32c.c): extends crc over p[0..n); start with 0. _sw is the
 * table version, always (for tests). */
uint32_t cs__crc32c(uint32_t crc, const void *p, size_t n);
uint32_t cs__crc32c_sw(uint32_t crc, const void *p, size_t n);

/* ---- journal (journal.c) ------------------------------------------------
 * A mutating call describes itself in a cs__jr and hands it to
 * cs__journal after every step that can fail and before anything becomes
 * visible; any error it returns (NOMEM, JOURNAL_REFUSED) must be undone
 * like an allocation failure. Strings are the call's parameters as given. */
enum {
    CS__J_SERVICE_CREATE = 1,
    CS__J_SERVICE_UPDATE,
    CS__J_SERVICE_DELETE,
    CS__J_CHANNEL_CREATE,
    CS__J_CHANNEL_UPDATE,
    CS__J_CHANNEL_DELETE,
    CS__J_MEDIA_CREATE,
    CS__J_MESSAGE_CREATE,
    CS__J_MESSAGE_UPDATE,
    CS__J_MESSAGE_DELETE,
    CS__J_CLEAR,
    CS__J_EPOCH,
    /* service create / update that give a webhook setting: the seven
     * strings of service.c's record (one that gives none is op 1 / 2) */
    CS__J_SERVICE_CREATE_WH,
    CS__J_SERVICE_UPDATE_WH,
    CS__J_MEDIA_DELETE, /* cs_media_delete: the media SID as a string */
    CS__J_OPS
};
#define CS__J_MAXSTR 7
typedef struct cs__jr {
    uint8_t op;
    int64_t now;          /* the clock value the call used */
    uint64_t counter0;    /* s->sid_counter before the call */
    const uint8_t *svc, *chan, *msg, *created; /* SID bytes or NULL */
    cs_webhook wh;
    uint8_t type;         /* channel create: the resolved cs_channel_type */
    uint64_t size;        /* media create */
    int64_t index;        /* message create: the new index; epoch: the
                             new epoch */
    cs_str str[CS__J_MAXSTR];
} cs__jr;
/* CS_OK when no hook is set. */
cs_err cs__journal(cs_store *s, const cs__jr *r);
/* Replays a service create (svc absent) or update record of op 13 / 14:
 * its seven strings back into the call (service.c). */
cs_err cs__service_replay(cs_store *s, cs_str svc, const cs_str str[7],
                          cs_service_view *out);
static inline bool cs__journaled(const cs_store *s) { return s->journal != NULL; }

/* ---- snapshot restore (snapshot.c drives, each resource builds) --------
 * Each builds one object from a snapshot image, validating it like the
 * create call would (the loader lifts the limits) plus what only an image
 * can get wrong; on failure nothing is linked and *why names the problem
 * (BAD_SNAPSHOT) unless it is NOMEM. */
typedef struct cs__svc_img {
    const uint8_t *sid, *role[3];
    int64_t serial, dc, du;
    cs_str name;
    /* webhook settings (snapshot version 3; defaults for older images) */
    cs_str pre_url, post_url; /* absent: null */
    uint8_t method, n_filters, pre_retry, post_retry;
    const uint8_t *filters; /* n_filters event numbers */
} cs__svc_img;
typedef struct cs__chan_img {
    const uint8_t *sid;
    int64_t serial, dc, du, next_index;
    uint8_t type;
    cs_str fn, un, attr, by;
} cs__chan_img;
typedef struct cs__media_img {
    const uint8_t *sid, *chan, *msg;
    int64_t dc;
    uint64_t size;
    bool attached;
    cs_str ct, fn;
} cs__media_img;
typedef struct cs__msg_img {
    int64_t index, dc, du;
    uint32_t epoch; /* the SID epoch it was created in */
    bool edited;
    const uint8_t *media; /* SID bytes or NULL */
    cs_str from, body, attr, lub; /* attr absent: "{}"; lub absent: null */
} cs__msg_img;
cs_err cs__service_restore(cs_store *s, const cs__svc_img *img,
                           cs_service **out, const char **why);
cs_err cs__media_restore(cs_store *s, cs_service *svc,
                         const cs__media_img *img, const char **why);
cs_err cs__channel_restore(cs_store *s, cs_service *svc,
                           const cs__chan_img *img, cs_channel **out,
                           const char **why);
cs_err cs__message_restore(cs_store *s, cs_channel *c, const cs__msg_img *img,
                           const char **why);
cs_media *cs__media_find(const cs_service *svc, const uint8_t *b);
static inline bool cs__time_ok(int64_t t) {
    return t >= CS__TIME_MIN && t <= CS__TIME_MAX;
}

/* store.c: replaces the keys (a snapshot's); checks a limits struct. */
void cs__set_keys(cs_store *s, const uint8_t hash_key[16],
                  const uint8_t sid_key[16]);
bool cs__limits_valid(const cs_limits *l);
/* The largest limits a store takes (journal.c): journal records and
 * snapshots were accepted under the limits of the store that wrote them. */
extern const cs_limits cs__lifted_limits;

/* Output buffer growth (alloc.c). */
cs_err cs__buf_grow(cs_buf *b, size_t extra);

/* Freeing cascades. */
void cs__channel_destroy(cs_store *s, cs_channel *c);
void cs__service_destroy(cs_store *s, cs_service *v);
void cs__media_destroy(cs_store *s, cs_media *m);
/* Takes an attached media item out of its service (its message is being
 * deleted); cs__media_destroy frees it once no view borrows it. */
void cs__media_unlink(cs_store *s, cs_media *m);

/* Every committed change of the store's data ends with exactly one call:
 * it numbers the change (ev->seq), which ends the life of every page
 * listed before it, and hands ev to the observers. A caller may leave the
 * views out of ev when cs__observed is false. */
void cs__commit(cs_store *s, cs_event *ev);
static inline bool cs__observed(const cs_store *s) { return s->n_obs != 0; }
/* Whether this thread is running s's observers. */
bool cs__observing(const cs_store *s);

/* The lock (lock.c): init with writer preference; drop this thread's hold
 * of s, if any (cs_store_free). */
cs_err cs__lock_init(pthread_rwlock_t *lock);
void cs__lock_drop(cs_store *s);

/* A webhook value from the string form or the typed one (giving both is
 * INVALID_ARGUMENT). */
cs_err cs__webhook_of(cs_str v, cs_webhook typed, cs_webhook *out);

/* Params that may be NULL: an all-absent set. */
extern const cs_channel_params cs__no_channel_params;
extern const cs_message_params cs__no_message_params;

#endif
