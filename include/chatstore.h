/*
 * chatstore: an embeddable, in-memory message store with the behaviour of the
 * Message resource of Twilio Programmable Chat (services -> channels ->
 * messages), plus the parts of Services, Channels and Media a message store
 * needs to stand on its own.
 *
 * Conventions
 * -----------
 * - Every function that can fail returns a cs_err: CS_OK (0) or a specific
 *   error. The error table (cs_err_name, cs_err_message, cs_err_http_status,
 *   cs_err_twilio_code) maps each error to its REST form, so a server needs no
 *   switch of its own.
 * - Each such function's comment ends with a line "Errors: A, B." naming
 *   EVERY error it can return besides CS_OK; a comment right above several
 *   prototypes gives each of them its list (a test records the errors the
 *   test suites see each function return and fails on one not listed).
 * - A failed call leaves the store exactly as it was, allocation failure
 *   and a refusing journal hook included, and notifies no observer: every
 *   object, counter, page and token as before. (Capacity a call reserved
 *   before it failed, such as an index block, may stay allocated for the
 *   next call, so cs_store_stats.bytes_allocated can be higher.)
 * - Strings enter as cs_str (pointer + length, not NUL-terminated). A cs_str
 *   whose ptr is NULL is "absent" (the parameter was not given); an empty
 *   string is given-and-empty. All input is validated by the store: UTF-8,
 *   JSON, SIDs, dates, lengths.
 * - Pointer parameters must not be NULL unless their comment says "may be
 *   NULL" and what NULL means. In a checked build (CMake option
 *   CHATSTORE_CHECKED) the library asserts this on entry.
 * - Out-parameters come last. Views (cs_*_view) and pages are filled by the
 *   store and borrow its memory: see "Views" and "Pages" for exactly what
 *   stays valid after a later call.
 * - Threads: a store is not internally synchronised. One thread may use a
 *   store at a time, or many threads may share one by bracketing every call
 *   with cs_store_lock_shared (read-only calls: fetch, list, page iteration,
 *   render, check) or cs_store_lock_exclusive (mutating calls) and
 *   cs_store_unlock; misuse of the lock is reported (see the lock calls).
 *   Read-only calls never modify the store, so any number of readers run in
 *   parallel under the shared lock; views stay valid while the lock is
 *   held. Observers run on the mutating thread, under its lock.
 * - Nothing in the library does I/O. Time and randomness come from hooks in
 *   cs_options (defaults: the real UTC clock and the OS random source).
 */
#ifndef CHATSTORE_H
#define CHATSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CHATSTORE_BUILDING) && defined(__GNUC__)
#define CS_API __attribute__((visibility("default")))
#else
#define CS_API
#endif

#define CHATSTORE_VERSION_MAJOR 0
#define CHATSTORE_VERSION_MINOR 4
#define CHATSTORE_VERSION_PATCH 0
#define CHATSTORE_VERSION "0.4.0"
#define CHATSTORE_VERSION_NUMBER                                              \
    (CHATSTORE_VERSION_MAJOR * 10000 + CHATSTORE_VERSION_MINOR * 100 +        \
     CHATSTORE_VERSION_PATCH)

/* The library's version, to compare with the header's CHATSTORE_VERSION*. */
CS_API const char *cs_version(void);
CS_API int cs_version_number(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* XX(NAME, number, http status, Twilio code, message). One table: the enum
 * and every lookup below come from it. The numbers are part of the ABI:
 * they never change, and a new error takes the next unused number. */
#define CS_ERROR_MAP(XX)                                                      \
    XX(OK, 0, 200, 0, "Success")                                              \
    XX(NOMEM, 1, 500, 20500, "Out of memory")                                 \
    XX(INVALID_ARGUMENT, 2, 400, 20001, "Invalid argument")                   \
    XX(NOT_FOUND, 3, 404, 20404, "The requested resource was not found")      \
    XX(BUFFER_TOO_SMALL, 4, 500, 20500, "Output buffer too small")            \
    XX(REENTRANT, 5, 500, 20500,                                              \
       "The store cannot be changed from inside an observer")                 \
    XX(CORRUPT, 6, 500, 20500, "Store invariant violated")                    \
    XX(LIMIT_EXCEEDED, 7, 400, 20001, "A store-wide count limit was reached") \
    XX(FRIENDLY_NAME_MISSING, 8, 400, 20001,                                  \
       "Missing required parameter FriendlyName in the post body")            \
    XX(BAD_UTF8, 9, 400, 20001, "Parameter is not valid UTF-8")               \
    XX(BAD_ORDER, 10, 400, 20001, "Order must be asc or desc")                \
    XX(BAD_PAGE_SIZE, 11, 400, 20001, "PageSize must be a positive integer")  \
    XX(BAD_PAGE, 12, 400, 20001, "Page must be a non-negative integer")       \
    XX(BAD_PAGE_TOKEN, 13, 400, 20001, "Invalid PageToken")                   \
    XX(BAD_WEBHOOK_HEADER, 14, 400, 20001,                                    \
       "X-Twilio-Webhook-Enabled must be true or false")                      \
    XX(BAD_CHANNEL_TYPE, 15, 400, 20001, "Type must be public or private")    \
    XX(FRIENDLY_NAME_TOO_LONG, 16, 400, 50003, "Friendly name is too long")   \
    XX(UNIQUE_NAME_TOO_LONG, 17, 400, 50004, "Unique name is too long")       \
    XX(IDENTITY_TOO_LONG, 18, 400, 50207, "Identity is too long")             \
    XX(ATTRIBUTES_TOO_LONG, 19, 400, 50303, "Attributes are too long")        \
    XX(ATTRIBUTES_INVALID, 20, 400, 50304, "Attributes not valid JSON")       \
    XX(UNIQUE_NAME_IS_SID, 21, 400, 50306,                                    \
       "Unique name must not look like a Channel SID")                        \
    XX(UNIQUE_NAME_EXISTS, 22, 409, 50307,                                    \
       "Channel with provided unique name already exists")                    \
    XX(BAD_DATE_CREATED, 23, 400, 50308, "Invalid DateCreated")               \
    XX(BAD_DATE_UPDATED, 24, 400, 50309, "Invalid DateUpdated")               \
    XX(FROM_TOO_LONG, 25, 400, 50310, "Author (From) is too long")            \
    XX(BODY_TOO_LONG, 26, 400, 50504, "Message body is too long")             \
    XX(LAST_UPDATED_BY_TOO_LONG, 27, 400, 50505, "LastUpdatedBy is too long") \
    XX(MEDIA_NOT_FOUND, 28, 400, 50507, "Media not found")                    \
    XX(MEDIA_IN_USE, 29, 400, 50508,                                          \
       "Media already sent with another message")                             \
    XX(MEDIA_BODY_IMMUTABLE, 30, 400, 50509,                                  \
       "Media message body cannot be updated")                                \
    XX(BAD_MEDIA_SID, 31, 400, 50510, "Invalid media SID")                    \
    XX(BAD_MEDIA_CONTENT_TYPE, 32, 400, 50511, "Invalid media content type")  \
    XX(MEDIA_TOO_LARGE, 33, 400, 50512, "Media is too large")                 \
    XX(LOCK_HELD, 34, 500, 20500,                                             \
       "This thread already holds the store's lock")                          \
    XX(LOCK_NOT_HELD, 35, 500, 20500,                                         \
       "This thread does not hold the store's lock")                          \
    XX(LOCK_FAILED, 36, 500, 20500, "The store's lock could not be taken")    \
    XX(PAGE_STALE, 37, 500, 20500,                                            \
       "The store changed after the page was listed; list again with its "    \
       "token")                                                               \
    XX(JOURNAL_REFUSED, 38, 503, 20503,                                       \
       "The change could not be journaled; nothing was changed")              \
    XX(BAD_RECORD, 39, 500, 20500, "Damaged journal record")                  \
    XX(RECORD_GAP, 40, 500, 20500,                                            \
       "Journal record does not follow the store's last change")              \
    XX(RECORD_MISMATCH, 41, 500, 20500,                                       \
       "Journal record does not fit the store's state")                       \
    XX(BAD_SNAPSHOT, 42, 500, 20500, "Damaged snapshot")                      \
    XX(IO, 43, 500, 20500, "A read or write callback failed")                \
    XX(BAD_WEBHOOK_URL, 44, 400, 20001,                                       \
       "Webhook URLs must be absolute http or https URLs")                    \
    XX(BAD_WEBHOOK_METHOD, 45, 400, 20001, "WebhookMethod must be GET or POST") \
    XX(BAD_WEBHOOK_FILTER, 46, 400, 20001,                                    \
       "WebhookFilters values must be webhook event names")                   \
    XX(BAD_RETRY_COUNT, 47, 400, 20001,                                       \
       "Webhook retry counts must be integers from 0 to 3")                   \
    XX(QUOTA_SERVICES, 48, 403, 20403,                                        \
       "Service quota reached: delete a service to make room")                \
    XX(QUOTA_CHANNELS, 49, 403, 20403,                                        \
       "Channel quota reached: delete a channel to make room")                \
    XX(QUOTA_MESSAGES, 50, 403, 20403,                                        \
       "Message quota reached: delete messages to make room")                 \
    XX(QUOTA_BYTES, 51, 403, 20403,                                           \
       "Memory quota reached: delete data to make room")

typedef enum cs_err {
#define CS__ERR_ENUM(name, num, status, code, msg) CS_E_##name = num,
    CS_ERROR_MAP(CS__ERR_ENUM)
#undef CS__ERR_ENUM
    CS_E__COUNT /* one past the largest number */
} cs_err;
#define CS_OK CS_E_OK

/* Static strings / numbers; an out-of-range value gives "UNKNOWN" / 500 / 0. */
CS_API const char *cs_err_name(cs_err e);    /* "NOT_FOUND" */
CS_API const char *cs_err_message(cs_err e); /* human text, Twilio's wording */
CS_API int cs_err_http_status(cs_err e);     /* 404 */
CS_API int cs_err_twilio_code(cs_err e);     /* 20404 */

/* ------------------------------------------------------------------------ */
/* Strings, allocator, output buffers                                        */
/* ------------------------------------------------------------------------ */

typedef struct cs_str {
    const char *ptr; /* NULL: absent */
    size_t len;
} cs_str;

/* A cs_str over a NUL-terminated string; NULL gives the absent string. */
CS_API cs_str cs_str_c(const char *s);
#define CS_STR_ABSENT ((cs_str){NULL, 0})

/* All memory the store uses goes through this allocator (NULL in cs_options:
 * the C library). free receives the size that was allocated. realloc is not
 * needed: growth allocates the new block before releasing the old one, so a
 * failed growth keeps the old block intact. */
typedef struct cs_allocator {
    void *(*malloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
    void *ctx;
} cs_allocator;

/* A growable (or fixed) output buffer for the JSON renderers. On any failure
 * a renderer leaves len as it was, so partial output never shows. */
typedef struct cs_buf {
    char *data; /* NUL-terminated after every successful render */
    size_t len;
    size_t cap;
    bool fixed; /* true: never grows; overflow gives CS_E_BUFFER_TOO_SMALL */
    const cs_allocator *alc; /* NULL: the C library */
} cs_buf;

/* A growable buffer (b must not be NULL); alc may be NULL: the C library.
 * Free with cs_buf_free. */
CS_API void cs_buf_init(cs_buf *b, const cs_allocator *alc);
/* A buffer over caller memory mem[0..cap) (b and mem must not be NULL); it
 * never grows, and holds at most cap - 1 bytes of output plus the NUL. */
CS_API void cs_buf_init_fixed(cs_buf *b, char *mem, size_t cap);
/* Releases a growable buffer's memory (no-op for fixed); NULL is a no-op. */
CS_API void cs_buf_free(cs_buf *b);
/* Sets len to 0 and keeps the memory (b must not be NULL). */
CS_API void cs_buf_reset(cs_buf *b);

/* ------------------------------------------------------------------------ */
/* Store                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct cs_store cs_store;

/* Size and count limits; every field adjustable. Lengths of names and
 * identities count Unicode code points, the others bytes.
 *
 * The last four are quotas on the whole store (0: none, the default). A
 * create that would take the store past one fails with its QUOTA_ error
 * and changes nothing: max_services, max_channels, max_messages count the
 * live objects of the store (every service together); max_bytes bounds
 * cs_store_stats.bytes_allocated: a create or update (media item
 * included) is refused with QUOTA_BYTES when any allocation it makes
 * would take the live bytes past it. Deletes, reads and updates that need
 * no new memory work at a quota, and what a delete frees is room again.
 * A count quota is checked after the call's parameters (a missing
 * resource or a bad parameter is reported first); QUOTA_BYTES comes where
 * the memory is needed, after them too. Applying journal records and
 * loading snapshots ignore the quotas: data the store once accepted is
 * never refused on recovery. */
typedef struct cs_limits {
    size_t body_bytes;          /* 32768 */
    size_t attributes_bytes;    /* 16384 */
    size_t name_chars;          /* 256: friendly_name, unique_name */
    size_t identity_chars;      /* 256: From, LastUpdatedBy, CreatedBy */
    uint32_t page_size_max;     /* 1000 */
    uint64_t media_bytes;       /* 157286400 (150 MB, the service default) */
    size_t content_type_bytes;  /* 255 */
    size_t filename_bytes;      /* 255 */
    uint64_t max_services;      /* 0: no quota */
    uint64_t max_channels;      /* 0: no quota */
    uint64_t max_messages;      /* 0: no quota */
    uint64_t max_bytes;         /* 0: no quota */
} cs_limits;

#define CS_LIMITS_DEFAULT                                                     \
    {32768, 16384, 256, 256, 1000, UINT64_C(157286400), 255, 255, 0, 0, 0, 0}

/* Seconds since the Unix epoch, UTC. */
typedef int64_t (*cs_clock_fn)(void *ctx);
/* Fills buf[0..len) with random bytes; returns 0, or non-zero on failure. */
typedef int (*cs_random_fn)(void *ctx, void *buf, size_t len);

/* 3 since 0.4.0, which added use_sid_tag and sid_tag at the end; 2 since
 * 0.3.0, when cs_limits gained the store quotas (max_services,
 * max_channels, max_messages, max_bytes). Options of version 2 are still
 * accepted: the store reads only the fields that layout has (never past
 * its end) and makes untagged SIDs. Any other version is refused with
 * INVALID_ARGUMENT rather than misread. */
#define CS_OPTIONS_VERSION 3

typedef struct cs_options {
    unsigned version;        /* CS_OPTIONS_VERSION */
    const char *account_sid; /* "AC" + 32 hex; may be NULL: generated */
    const char *base_url;    /* may be NULL: "https://chat.twilio.com" */
    cs_limits limits;
    const cs_allocator *allocator; /* may be NULL: C library; copied */
    cs_clock_fn clock;             /* may be NULL: real time */
    void *clock_ctx;               /* passed to clock; may be NULL */
    cs_random_fn random; /* may be NULL: OS random source, read once */
    void *random_ctx;    /* passed to random; may be NULL */
    /* When use_seed is true, seed alone determines every SID, key and token
     * the store produces: same calls, same outputs (golden-file fixtures). */
    bool use_seed;
    uint64_t seed;
    /* When use_sid_tag is true, the first byte of every service, channel,
     * role and media SID the store generates is sid_tag: the SID's first
     * two hex digits are sid_tag in lower case (a shard number a router
     * can read from "IS" + those digits), its other 30 digits are the
     * generator's as ever. Account and message SIDs carry no tag. A store
     * applies only journal records made with its own tag (see
     * cs_journal_apply); cs_snapshot_load takes the tag from its options.
     * Not read in version 2 options (no tag). */
    bool use_sid_tag;
    uint8_t sid_tag;
} cs_options;

#define CS_OPTIONS_INIT                                                       \
    {CS_OPTIONS_VERSION, NULL, NULL, CS_LIMITS_DEFAULT, NULL, NULL, NULL,     \
     NULL, NULL, false, 0, false, 0}

/* Creates a store into *out (out must not be NULL; *out is NULL on error).
 * opts may be NULL: all defaults. INVALID_ARGUMENT: bad version, malformed
 * account_sid, empty base_url, a zero limit (quotas excepted: 0 is none), an
 * allocator without malloc or free, a failing random hook.
 * Errors: NOMEM, INVALID_ARGUMENT. */
CS_API cs_err cs_store_new(const cs_options *opts, cs_store **out);
/* Frees the store and everything in it; NULL is a no-op. No thread may hold
 * the store's lock, except the calling thread, whose hold is released. Not
 * from inside an observer. */
CS_API void cs_store_free(cs_store *s);
/* Deletes every service (and so everything) and resets the SID counter
 * and serial to their initial state: a cleared store produces the same
 * SIDs as a new one created with the same options and brought to the same
 * SID epoch (cs_store_new_epoch; clear keeps the epoch). Observers stay
 * registered and receive one STORE_CLEARED event. The commit sequence
 * number (cs_event.seq) is not reset. Inside an observer: REENTRANT and
 * nothing changes.
 * Errors: REENTRANT, NOMEM, JOURNAL_REFUSED. */
CS_API cs_err cs_store_clear(cs_store *s);

/* Starts a new SID epoch: no call after it can generate a SID (service,
 * role, channel, media or message) that any call before it generated or
 * could have generated, including calls whose journal records were lost.
 * For a store rebuilt from a snapshot and a journal that lost its last
 * records in a crash: made (and its record made durable) before the store
 * serves anything, it keeps the SIDs the lost creates gave out from naming
 * new objects; a message SID of a lost message is NOT_FOUND even when a
 * new message took its index. SIDs made before it keep working. The epoch
 * is an input of every generated SID (epoch 0, a new store's, gives the
 * SIDs of the versions before epochs), it only grows (clear keeps it) and
 * it is saved in snapshots and journaled (one committed change: an
 * EPOCH_STARTED event). *epoch (epoch may be NULL) receives the new epoch.
 * The last epoch is 2^24 - 1: past it, LIMIT_EXCEEDED and nothing changes.
 * Errors: REENTRANT, LIMIT_EXCEEDED, NOMEM, JOURNAL_REFUSED. */
CS_API cs_err cs_store_new_epoch(cs_store *s, uint32_t *epoch);
/* The store's SID epoch (s must not be NULL): 0 until the first
 * cs_store_new_epoch. */
CS_API uint32_t cs_store_epoch(const cs_store *s);

/* The store's account SID, base URL and limits; s must not be NULL. The
 * strings live as long as the store. */
CS_API const char *cs_store_account_sid(const cs_store *s);
CS_API const char *cs_store_base_url(const cs_store *s);
CS_API const cs_limits *cs_store_limits(const cs_store *s);
/* The store's SID tag (s must not be NULL): -1 when its options had none
 * (use_sid_tag false, or version 2 options), else sid_tag (0..255). */
CS_API int cs_store_sid_tag(const cs_store *s);
/* Replaces the limits (lim must not be NULL; every field non-zero but the
 * quotas, where 0 is none). Existing data is not re-checked: a quota below
 * what the store holds refuses creates until deletes bring it under.
 * Errors: REENTRANT, INVALID_ARGUMENT. */
CS_API cs_err cs_store_set_limits(cs_store *s, const cs_limits *lim);

/* The store's shared/exclusive lock, for sharing one store among threads
 * (see the top of this file). It prefers writers: once a writer waits, new
 * shared holders wait behind it. The rules, each enforced with an error
 * that leaves the lock as it was:
 * - A thread holds at most one side of a store's lock at a time. Taking
 *   either side again (recursion, or shared then exclusive) is LOCK_HELD:
 *   a second shared hold would deadlock behind a waiting writer, and an
 *   exclusive one behind the thread's own hold.
 * - Only a thread that holds the lock releases it: cs_store_unlock by any
 *   other thread is LOCK_NOT_HELD.
 * - Observers run while the mutating thread holds the store; every lock
 *   call from inside an observer is REENTRANT.
 * - One thread may hold the locks of up to CS_LOCKS_PER_THREAD stores at a
 *   time; one more is LOCK_FAILED, as is a failure of the system's lock.
 * Calls made without the lock while other threads use it are not detected:
 * bracket every call once a store is shared. */
#define CS_LOCKS_PER_THREAD 16
/* Errors: REENTRANT, LOCK_HELD, LOCK_FAILED. */
CS_API cs_err cs_store_lock_shared(cs_store *s);
/* Errors: REENTRANT, LOCK_HELD, LOCK_FAILED. */
CS_API cs_err cs_store_lock_exclusive(cs_store *s);
/* Releases the side this thread holds.
 * Errors: REENTRANT, LOCK_NOT_HELD, LOCK_FAILED. */
CS_API cs_err cs_store_unlock(cs_store *s);

/* Counts of live objects, for tests and monitoring. identities: distinct
 * interned strings (a channel's CreatedBy, a message's LastUpdatedBy); a
 * message's From is stored with the message. commits: changes committed so
 * far (the seq of the latest event). */
typedef struct cs_store_stats {
    size_t services, channels, messages, media, identities;
    size_t bytes_allocated; /* live bytes through the allocator */
    uint64_t commits;
} cs_store_stats;
/* Fills *out (must not be NULL). */
CS_API void cs_store_stats_get(const cs_store *s, cs_store_stats *out);

/* Debug invariant checker: walks every structure and cross-checks counts,
 * orders, hash tables, back-pointers and reference counts. O(size of the
 * store).
 * Errors: CORRUPT. */
CS_API cs_err cs_store_check(const cs_store *s);

/* ------------------------------------------------------------------------ */
/* Views                                                                     */
/* ------------------------------------------------------------------------ */

#define CS_SID_BUFSZ 35  /* 34 characters + NUL */
#define CS_DATE_BUFSZ 21 /* YYYY-MM-DDTHH:MM:SSZ + NUL */

/* Formats t (seconds since the epoch, UTC) as YYYY-MM-DDTHH:MM:SSZ; out
 * must not be NULL. */
CS_API void cs_format_date(int64_t t, char out[CS_DATE_BUFSZ]);
/* Parses an ISO 8601 date-time (the store's input rule) into *out (must not
 * be NULL). An absent or malformed string is INVALID_ARGUMENT.
 * Errors: INVALID_ARGUMENT. */
CS_API cs_err cs_parse_date(cs_str s, int64_t *out);

/* Views are filled by the store. What stays valid after a later call:
 * - Fields held in the view itself (numbers, bools, the char arrays such as
 *   cs_message_view.sid) stay valid for as long as the view exists.
 * - Pointers and cs_str fields borrow the store's memory: valid until the
 *   next committed change of the store (a mutating call that returns
 *   CS_OK, cs_store_clear, cs_store_free). A call that fails changes
 *   nothing and invalidates nothing. Under the shared lock no change can
 *   happen, so views stay valid while the lock is held. */
/* The 23 webhook event names a service's webhook_filters may hold, in the
 * order of Twilio's table (pre-event, then post-event, per action). */
#define CS_WEBHOOK_EVENT_MAP(XX)                                              \
    XX(ON_MESSAGE_SEND, 1, "onMessageSend")                                   \
    XX(ON_MESSAGE_SENT, 2, "onMessageSent")                                   \
    XX(ON_MESSAGE_UPDATE, 3, "onMessageUpdate")                               \
    XX(ON_MESSAGE_UPDATED, 4, "onMessageUpdated")                             \
    XX(ON_MESSAGE_REMOVE, 5, "onMessageRemove")                               \
    XX(ON_MESSAGE_REMOVED, 6, "onMessageRemoved")                             \
    XX(ON_MEDIA_MESSAGE_SEND, 7, "onMediaMessageSend")                        \
    XX(ON_MEDIA_MESSAGE_SENT, 8, "onMediaMessageSent")                        \
    XX(ON_CHANNEL_ADD, 9, "onChannelAdd")                                     \
    XX(ON_CHANNEL_ADDED, 10, "onChannelAdded")                                \
    XX(ON_CHANNEL_UPDATE, 11, "onChannelUpdate")                              \
    XX(ON_CHANNEL_UPDATED, 12, "onChannelUpdated")                            \
    XX(ON_CHANNEL_DESTROY, 13, "onChannelDestroy")                            \
    XX(ON_CHANNEL_DESTROYED, 14, "onChannelDestroyed")                        \
    XX(ON_MEMBER_ADD, 15, "onMemberAdd")                                      \
    XX(ON_MEMBER_ADDED, 16, "onMemberAdded")                                  \
    XX(ON_MEMBER_UPDATE, 17, "onMemberUpdate")                                \
    XX(ON_MEMBER_UPDATED, 18, "onMemberUpdated")                              \
    XX(ON_MEMBER_REMOVE, 19, "onMemberRemove")                                \
    XX(ON_MEMBER_REMOVED, 20, "onMemberRemoved")                              \
    XX(ON_USER_ADDED, 21, "onUserAdded")                                      \
    XX(ON_USER_UPDATE, 22, "onUserUpdate")                                    \
    XX(ON_USER_UPDATED, 23, "onUserUpdated")

typedef enum cs_webhook_event {
#define CS__EVENT_ENUM(name, num, text) CS_WEBHOOK_##name = num,
    CS_WEBHOOK_EVENT_MAP(CS__EVENT_ENUM)
#undef CS__EVENT_ENUM
} cs_webhook_event;
#define CS_WEBHOOK_EVENTS 23

/* The event's name ("onMessageSent"); NULL for a value outside 1..23. */
CS_API const char *cs_webhook_event_name(cs_webhook_event e);

/* A service's webhook_method: null (which delivery treats as POST), GET
 * or POST. As a parameter, UNSET means "not given". */
typedef enum cs_webhook_method {
    CS_WEBHOOK_METHOD_UNSET = 0,
    CS_WEBHOOK_METHOD_GET = 1,
    CS_WEBHOOK_METHOD_POST = 2
} cs_webhook_method;

typedef struct cs_service_view {
    const char *sid, *account_sid;
    cs_str friendly_name;
    int64_t date_created, date_updated;
    const char *default_service_role_sid, *default_channel_role_sid,
        *default_channel_creator_role_sid;
    /* Webhook settings. URLs: ptr NULL is null. n_webhook_filters 0 is a
     * null list; otherwise webhook_filters[0..n) in the order given, each
     * event once. Retry counts 0..3. */
    cs_str pre_webhook_url, post_webhook_url;
    cs_webhook_method webhook_method; /* UNSET: null */
    size_t n_webhook_filters;
    cs_webhook_event webhook_filters[CS_WEBHOOK_EVENTS];
    unsigned pre_webhook_retry_count, post_webhook_retry_count;
} cs_service_view;

typedef enum cs_channel_type {
    CS_CHANNEL_PUBLIC = 1,
    CS_CHANNEL_PRIVATE = 2
} cs_channel_type;

typedef struct cs_channel_view {
    const char *sid, *account_sid, *service_sid;
    cs_str friendly_name; /* ptr NULL: null */
    cs_str unique_name;   /* ptr NULL: null */
    cs_str attributes;
    cs_channel_type type;
    int64_t date_created, date_updated;
    cs_str created_by;
    uint64_t members_count, messages_count;
    bool has_last_message;
    char last_message_sid[CS_SID_BUFSZ]; /* "" when none */
} cs_channel_view;

typedef struct cs_media_view {
    char sid[CS_SID_BUFSZ];
    const char *account_sid, *service_sid;
    cs_str content_type, filename; /* filename.ptr NULL: null */
    uint64_t size;
    int64_t date_created, date_updated;
    bool attached;
    char channel_sid[CS_SID_BUFSZ]; /* "" until attached */
    char message_sid[CS_SID_BUFSZ]; /* "" until attached */
} cs_media_view;

typedef enum cs_message_type { CS_MESSAGE_TEXT = 0, CS_MESSAGE_MEDIA = 1 } cs_message_type;

typedef struct cs_message_view {
    char sid[CS_SID_BUFSZ];
    const char *account_sid, *service_sid, *channel_sid;
    cs_str attributes;
    int64_t date_created, date_updated;
    cs_str last_updated_by; /* ptr NULL: null */
    bool was_edited;
    cs_str from;
    cs_str body; /* may contain NUL bytes; always NUL-terminated too */
    int64_t index;
    cs_message_type type;
    bool has_media;
    struct {
        char sid[CS_SID_BUFSZ];
        uint64_t size;
        cs_str content_type, filename; /* filename.ptr NULL: null */
    } media;
} cs_message_view;

/* ------------------------------------------------------------------------ */
/* Services                                                                  */
/* ------------------------------------------------------------------------ */

/* In every call below s must not be NULL, and an out view may be NULL (then
 * it is not filled). */

/* The typed form of a retry count n (0..3); 0 in the field: not given. */
#define CS_RETRY_COUNT(n) ((unsigned)(n) + 1u)

/* Service parameters: zero-initialise and set what is given, as for
 * channels; p may be NULL: nothing given. Each webhook setting has a
 * string form (what a server received) and a typed form; giving both
 * forms of one is INVALID_ARGUMENT. Checked in this order, each with its
 * own error: */
typedef struct cs_service_params {
    cs_str friendly_name;
    /* Absolute http or https URL (scheme in any case, a host, printable
     * ASCII only, at most 2048 bytes); empty: null. BAD_WEBHOOK_URL. */
    cs_str pre_webhook_url;
    cs_str post_webhook_url;
    /* "GET" or "POST", exact case. BAD_WEBHOOK_METHOD. */
    cs_str webhook_method;
    /* The whole new list: each value one of the 23 event names, exact case
     * (repeats are kept once, in the order of their first appearance);
     * no value, or one empty value, sets the list back to null. NULL: not
     * given. BAD_WEBHOOK_FILTER. */
    const cs_str *webhook_filters;
    size_t n_webhook_filters;
    /* "0" .. "3". BAD_RETRY_COUNT. */
    cs_str pre_webhook_retry_count;
    cs_str post_webhook_retry_count;
    /* Typed forms. */
    cs_webhook_method webhook_method_value; /* UNSET: not given */
    const cs_webhook_event *webhook_filter_values; /* NULL: not given */
    size_t n_webhook_filter_values;
    unsigned pre_webhook_retry_count_value;  /* CS_RETRY_COUNT(n); 0: not given */
    unsigned post_webhook_retry_count_value;
} cs_service_params;

/* Creates a service. friendly_name is required (FRIENDLY_NAME_MISSING when
 * absent or empty). Notifies SERVICE_CREATED.
 * Errors: REENTRANT, NOMEM, FRIENDLY_NAME_MISSING, BAD_UTF8,
 * FRIENDLY_NAME_TOO_LONG, QUOTA_SERVICES, QUOTA_BYTES, JOURNAL_REFUSED. */
CS_API cs_err cs_service_create(cs_store *s, cs_str friendly_name,
                                cs_service_view *out);
/* Creates a service with its webhook settings (unset ones: null or 0).
 * Notifies SERVICE_CREATED.
 * Errors: REENTRANT, NOMEM, INVALID_ARGUMENT, FRIENDLY_NAME_MISSING,
 * BAD_UTF8, FRIENDLY_NAME_TOO_LONG, BAD_WEBHOOK_URL, BAD_WEBHOOK_METHOD,
 * BAD_WEBHOOK_FILTER, BAD_RETRY_COUNT, QUOTA_SERVICES, QUOTA_BYTES,
 * JOURNAL_REFUSED. */
CS_API cs_err cs_service_create_with(cs_store *s, const cs_service_params *p,
                                     cs_service_view *out);
/* Errors: NOT_FOUND. */
CS_API cs_err cs_service_fetch(const cs_store *s, cs_str service_sid,
                               cs_service_view *out);
/* Updates the friendly name when given (absent: unchanged, nobody notified;
 * empty: FRIENDLY_NAME_MISSING); date_updated becomes now when it was
 * given. Notifies SERVICE_UPDATED.
 * Errors: REENTRANT, NOT_FOUND, NOMEM, FRIENDLY_NAME_MISSING, BAD_UTF8,
 * FRIENDLY_NAME_TOO_LONG, QUOTA_BYTES, JOURNAL_REFUSED. */
CS_API cs_err cs_service_update(cs_store *s, cs_str service_sid,
                                cs_str friendly_name, cs_service_view *out);
/* Sets every parameter given (a given setting counts as a change even when
 * it equals the current value). With at least one, date_updated becomes
 * now and SERVICE_UPDATED is notified; with none the service is returned
 * unchanged and nobody is notified.
 * Errors: REENTRANT, NOT_FOUND, NOMEM, INVALID_ARGUMENT,
 * FRIENDLY_NAME_MISSING, BAD_UTF8, FRIENDLY_NAME_TOO_LONG, BAD_WEBHOOK_URL,
 * BAD_WEBHOOK_METHOD, BAD_WEBHOOK_FILTER, BAD_RETRY_COUNT, QUOTA_BYTES,
 * JOURNAL_REFUSED. */
CS_API cs_err cs_service_update_with(cs_store *s, cs_str service_sid,
                                     const cs_service_params *p,
                                     cs_service_view *out);
/* Deletes the service with all its channels, messages and media. Notifies
 * SERVICE_DELETED once (with the counts of what went with it), not each
 * channel or message.
 * Errors: REENTRANT, NOT_FOUND, NOMEM, JOURNAL_REFUSED. */
CS_API cs_err cs_service_delete(cs_store *s, cs_str service_sid);

/* ------------------------------------------------------------------------ */
/* Channels                                                                  */
/* ------------------------------------------------------------------------ */

/* The X-Twilio-Webhook-Enabled value a change carried: absent, true or
 * false. As a string (what a server forwards verbatim), true/false in any
 * letter case, else BAD_WEBHOOK_HEADER. */
typedef enum cs_webhook {
    CS_WEBHOOK_ABSENT = 0,
    CS_WEBHOOK_TRUE = 1,
    CS_WEBHOOK_FALSE = 2
} cs_webhook;

/* The string form of a webhook value ("true", "false", or the absent
 * string), for the delete calls: cs_message_delete(..., cs_webhook_str(
 * CS_WEBHOOK_TRUE)). An out-of-range value gives the absent string. */
CS_API cs_str cs_webhook_str(cs_webhook w);

/* Channel parameters. Zero-initialise ({0}) and set what is given: an
 * absent cs_str and a zero typed field mean "not given". Typed fields are
 * for embedders; the strings are for servers that forward what they
 * received. Giving both forms of one parameter is INVALID_ARGUMENT. */
typedef struct cs_channel_params {
    cs_str friendly_name; /* empty: null */
    cs_str unique_name;   /* empty: null */
    cs_str attributes;    /* JSON text; absent: "{}" on create */
    cs_str type;          /* create only: "public" (default) or "private" */
    cs_str date_created;  /* ISO 8601 */
    cs_str date_updated;
    cs_str created_by;    /* absent: "system" on create */
    cs_str webhook;       /* X-Twilio-Webhook-Enabled */
    cs_channel_type type_value; /* typed Type; 0: not given */
    cs_webhook webhook_value;   /* typed webhook; ABSENT: not given */
} cs_channel_params;

/* Addressing: a channel argument is the channel SID or its unique_name; a
 * malformed SID is simply not found. p may be NULL: no parameter given. */

/* Creates a channel. Notifies CHANNEL_CREATED.
 * Errors: REENTRANT, NOT_FOUND, NOMEM, INVALID_ARGUMENT, BAD_WEBHOOK_HEADER,
 * BAD_UTF8, FRIENDLY_NAME_TOO_LONG, UNIQUE_NAME_TOO_LONG,
 * UNIQUE_NAME_IS_SID, ATTRIBUTES_TOO_LONG, ATTRIBUTES_INVALID,
 * IDENTITY_TOO_LONG, BAD_CHANNEL_TYPE, BAD_DATE_CREATED, BAD_DATE_UPDATED,
 * UNIQUE_NAME_EXISTS, QUOTA_CHANNELS, QUOTA_BYTES, JOURNAL_REFUSED. */
CS_API cs_err cs_channel_create(cs_store *s, cs_str service_sid,
                                const cs_channel_params *p,
                                cs_channel_view *out);
/* Errors: NOT_FOUND. */
CS_API cs_err cs_channel_fetch(const cs_store *s, cs_str service_sid,
                               cs_str channel, cs_channel_view *out);
/* A parameter given (not absent) counts as a change; type is ignored. With
 * at least one change date_updated becomes DateUpdated or now and
 * CHANNEL_UPDATED is notified; with none the channel is returned unchanged
 * and nobody is notified.
 * Errors: REENTRANT, NOT_FOUND, NOMEM, INVALID_ARGUMENT, BAD_WEBHOOK_HEADER,
 * BAD_UTF8, FRIENDLY_NAME_TOO_LONG, UNIQUE_NAME_TOO_LONG,
 * UNIQUE_NAME_IS_SID, ATTRIBUTES_TOO_LONG, ATTRIBUTES_INVALID,
 * IDENTITY_TOO_LONG, BAD_DATE_CREATED, BAD_DATE_UPDATED, UNIQUE_NAME_EXISTS,
 * QUOTA_BYTES, JOURNAL_REFUSED. */
CS_API cs_err cs_channel_update(cs_store *s, cs_str service_sid,
                                cs_str channel, const cs_channel_params *p,
                                cs_channel_view *out);
/* Deletes the channel and all its messages, with the media items they
 * carry. Notifies CHANNEL_DELETED once (with the counts of messages and
 * media that went with it), not each message.
 * Errors: REENTRANT, NOT_FOUND, BAD_WEBHOOK_HEADER, NOMEM, JOURNAL_REFUSED. */
CS_API cs_err cs_channel_delete(cs_store *s, cs_str service_sid,
                                cs_str channel, cs_str webhook);

/* ------------------------------------------------------------------------ */
/* Media registry (metadata only; the store never holds media bytes)         */
/* ------------------------------------------------------------------------ */

/* A media item lives until its service is deleted, the message it is
 * attached to is deleted (with its channel or alone), or, never attached,
 * it is deleted with cs_media_delete. MEDIA_CREATED and MEDIA_DELETED (and
 * the removed_media counts of the other deletes) let an observer that keeps
 * media bytes drop them. */

/* Registers a media item in the service. content_type must look like
 * "type/subtype[;params]" (BAD_MEDIA_CONTENT_TYPE, also when absent);
 * filename may be absent, over limits.filename_bytes is INVALID_ARGUMENT;
 * size over limits.media_bytes is MEDIA_TOO_LARGE. Notifies MEDIA_CREATED.
 * Errors: REENTRANT, NOT_FOUND, NOMEM, INVALID_ARGUMENT, BAD_UTF8,
 * BAD_MEDIA_CONTENT_TYPE, MEDIA_TOO_LARGE, QUOTA_BYTES, JOURNAL_REFUSED. */
CS_API cs_err cs_media_create(cs_store *s, cs_str service_sid,
                              cs_str content_type, cs_str filename,
                              uint64_t size, cs_media_view *out);
/* Errors: NOT_FOUND. */
CS_API cs_err cs_media_fetch(const cs_store *s, cs_str service_sid,
                             cs_str media_sid, cs_media_view *out);
/* Deletes a media item that was never attached to a message (an upload
 * that expired unused); an attached one is MEDIA_IN_USE (it goes with its
 * message). Journaled like any change. Notifies MEDIA_DELETED.
 * Errors: REENTRANT, NOT_FOUND, MEDIA_IN_USE, NOMEM, JOURNAL_REFUSED. */
CS_API cs_err cs_media_delete(cs_store *s, cs_str service_sid,
                              cs_str media_sid);

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

/* Message parameters: zero-initialise and set what is given, as for
 * channels. p may be NULL in every call: no parameter given. */
typedef struct cs_message_params {
    cs_str from;            /* absent: "system" on create */
    cs_str attributes;      /* JSON text; absent: "{}" on create */
    cs_str date_created;    /* ISO 8601 */
    cs_str date_updated;
    cs_str last_updated_by; /* absent: null on create, unchanged on update */
    cs_str body;            /* absent or empty: "" */
    cs_str media_sid;       /* create only */
    cs_str webhook;         /* X-Twilio-Webhook-Enabled */
    cs_webhook webhook_value; /* typed webhook; ABSENT: not given */
} cs_message_params;

/* Appends a message to the channel with the next index. Notifies
 * MESSAGE_CREATED. Indices stay below 2^40: a channel whose next index
 * would be 2^40 is LIMIT_EXCEEDED.
 * Errors: REENTRANT, NOT_FOUND, NOMEM, INVALID_ARGUMENT, BAD_WEBHOOK_HEADER,
 * BAD_UTF8, BODY_TOO_LONG, ATTRIBUTES_TOO_LONG, ATTRIBUTES_INVALID,
 * FROM_TOO_LONG, LAST_UPDATED_BY_TOO_LONG, BAD_DATE_CREATED,
 * BAD_DATE_UPDATED, BAD_MEDIA_SID, MEDIA_NOT_FOUND, MEDIA_IN_USE,
 * LIMIT_EXCEEDED, QUOTA_MESSAGES, QUOTA_BYTES, JOURNAL_REFUSED. */
CS_API cs_err cs_message_create(cs_store *s, cs_str service_sid,
                                cs_str channel, const cs_message_params *p,
                                cs_message_view *out);
/* Errors: NOT_FOUND. */
CS_API cs_err cs_message_fetch(const cs_store *s, cs_str service_sid,
                               cs_str channel, cs_str message_sid,
                               cs_message_view *out);
/* No parameter given: the message is returned unchanged and nobody is
 * notified. Otherwise was_edited becomes true, date_updated DateUpdated or
 * now, and MESSAGE_UPDATED is notified. media_sid is ignored. Changing the
 * body of a media message: MEDIA_BODY_IMMUTABLE.
 * Errors: REENTRANT, NOT_FOUND, NOMEM, INVALID_ARGUMENT, BAD_WEBHOOK_HEADER,
 * BAD_UTF8, BODY_TOO_LONG, ATTRIBUTES_TOO_LONG, ATTRIBUTES_INVALID,
 * FROM_TOO_LONG, LAST_UPDATED_BY_TOO_LONG, BAD_DATE_CREATED,
 * BAD_DATE_UPDATED, MEDIA_BODY_IMMUTABLE, QUOTA_BYTES, JOURNAL_REFUSED. */
CS_API cs_err cs_message_update(cs_store *s, cs_str service_sid,
                                cs_str channel, cs_str message_sid,
                                const cs_message_params *p,
                                cs_message_view *out);
/* Deletes the message, with its media item if it has one. Notifies
 * MESSAGE_DELETED.
 * Errors: REENTRANT, NOT_FOUND, BAD_WEBHOOK_HEADER, NOMEM, JOURNAL_REFUSED. */
CS_API cs_err cs_message_delete(cs_store *s, cs_str service_sid,
                                cs_str channel, cs_str message_sid,
                                cs_str webhook);

/* ------------------------------------------------------------------------ */
/* Pages                                                                     */
/* ------------------------------------------------------------------------ */

typedef enum cs_order {
    CS_ORDER_UNSET = 0, /* not given: ascending */
    CS_ORDER_ASC = 1,
    CS_ORDER_DESC = 2
} cs_order;

/* List parameters. Zero-initialise and set what is given; q may be NULL
 * (every parameter absent). Each parameter has a string form, exactly as a
 * server received it, and a typed form; giving both forms of one parameter
 * is INVALID_ARGUMENT. */
typedef struct cs_page_params {
    cs_str order;      /* messages only: "asc" (default) or "desc" */
    cs_str page_size;  /* decimal; default 50, 1..; above the max: clamped */
    cs_str page;       /* decimal >= 0; default 0; echoed */
    cs_str page_token; /* opaque, issued by this store */
    const cs_str *types; /* channels only: repeated Type values */
    size_t n_types;      /* 0: public channels only */
    cs_order order_value;     /* typed Order (messages only) */
    uint32_t page_size_value; /* typed PageSize; 0: not given */
    uint64_t page_value;      /* typed Page, <= CS_PAGE_MAX; 0: default */
    unsigned types_mask;      /* typed Types: CS_CHANNEL_* bits; 0: not given */
} cs_page_params;

#define CS_TOKEN_BUFSZ 48
/* Largest accepted Page (2^53 - 1, exact in every JSON reader). */
#define CS_PAGE_MAX UINT64_C(9007199254740991)

typedef enum cs_page_kind {
    CS_PAGE_SERVICES = 1,
    CS_PAGE_CHANNELS = 2,
    CS_PAGE_MESSAGES = 3
} cs_page_kind;

/* A page of results: filled by a list call, then read item by item with the
 * cs_page_next_* call of its kind. Needs no allocation and no freeing.
 * Fields below are read-only.
 *
 * Validity: a page reads the store lazily, so its items can be read only
 * until the next committed change of the store. Any change after the list
 * call stops iteration: cs_page_next_* returns false and sets error to
 * PAGE_STALE, and cs_render_page returns PAGE_STALE, instead of reading
 * memory the change may have freed. The tokens (token, next_token,
 * prev_token) stay valid across changes: to continue after releasing the
 * lock, list again with the token (keyset tokens stay exact while items
 * come and go). */
typedef struct cs_page {
    cs_page_kind kind;
    uint32_t page_size;   /* after clamping */
    uint64_t page;        /* echoed Page */
    bool order_given;     /* the request named Order (it shows in URLs) */
    bool descending;
    size_t count;         /* items on this page */
    char token[CS_TOKEN_BUFSZ];      /* the request's token, "" if none */
    char next_token[CS_TOKEN_BUFSZ]; /* "" when there is no next page */
    char prev_token[CS_TOKEN_BUFSZ]; /* "" when there is no previous page */
    cs_err error;         /* CS_OK, or PAGE_STALE once iteration stopped */
    /* private iteration state */
    const void *priv_seq;
    int64_t priv_first_key;
    size_t priv_yielded;
    size_t priv_b;
    uint32_t priv_i;
    unsigned priv_types;
    bool priv_types_given;
    uint64_t priv_commit;
    char priv_service_sid[CS_SID_BUFSZ];
    char priv_channel_sid[CS_SID_BUFSZ];
} cs_page;

/* Lists a page into *out (must not be NULL; on error *out holds no items).
 * Errors: INVALID_ARGUMENT, BAD_PAGE_SIZE, BAD_PAGE, BAD_PAGE_TOKEN. */
CS_API cs_err cs_service_list(const cs_store *s, const cs_page_params *q,
                              cs_page *out);
/* Types (strings or mask) filter by channel type; default public only.
 * Errors: NOT_FOUND, INVALID_ARGUMENT, BAD_CHANNEL_TYPE, BAD_PAGE_SIZE,
 * BAD_PAGE, BAD_PAGE_TOKEN. */
CS_API cs_err cs_channel_list(const cs_store *s, cs_str service_sid,
                              const cs_page_params *q, cs_page *out);
/* Errors: NOT_FOUND, INVALID_ARGUMENT, BAD_ORDER, BAD_PAGE_SIZE, BAD_PAGE,
 * BAD_PAGE_TOKEN. */
CS_API cs_err cs_message_list(const cs_store *s, cs_str service_sid,
                              cs_str channel, const cs_page_params *q,
                              cs_page *out);

/* Fills the next item's view (s, pg and out must not be NULL); returns
 * false after the last item, for a page of another kind, or when the store
 * changed since the list call (pg->error is then PAGE_STALE). */
CS_API bool cs_page_next_service(const cs_store *s, cs_page *pg,
                                 cs_service_view *out);
CS_API bool cs_page_next_channel(const cs_store *s, cs_page *pg,
                                 cs_channel_view *out);
CS_API bool cs_page_next_message(const cs_store *s, cs_page *pg,
                                 cs_message_view *out);
/* Restarts iteration at the page's first item (pg must not be NULL). */
CS_API void cs_page_rewind(cs_page *pg);

/* ------------------------------------------------------------------------ */
/* JSON rendering                                                            */
/* ------------------------------------------------------------------------ */

/* Each appends one JSON object to b, with the documented key orders and
 * URLs built on the store's base URL; s, the view and b must not be NULL.
 * b is unchanged on error.
 * Errors: NOMEM, BUFFER_TOO_SMALL. */
CS_API cs_err cs_render_service(const cs_store *s, const cs_service_view *v,
                                cs_buf *b);
CS_API cs_err cs_render_channel(const cs_store *s, const cs_channel_view *v,
                                cs_buf *b);
CS_API cs_err cs_render_message(const cs_store *s, const cs_message_view *v,
                                cs_buf *b);
CS_API cs_err cs_render_media(const cs_store *s, const cs_media_view *v,
                              cs_buf *b);
/* Renders a whole page: {"<key>": [...], "meta": {...}}, iterating the page
 * from its first item (the page's iteration state is rewound). A page that
 * outlived a change of the store: PAGE_STALE, b unchanged.
 * Errors: NOMEM, BUFFER_TOO_SMALL, PAGE_STALE. */
CS_API cs_err cs_render_page(const cs_store *s, cs_page *pg, cs_buf *b);

/* ------------------------------------------------------------------------ */
/* Change observers                                                          */
/* ------------------------------------------------------------------------ */

/* Every committed change of the store's data produces exactly one event;
 * a failed call produces none. */
typedef enum cs_event_type {
    CS_EVENT_MESSAGE_CREATED = 1,
    CS_EVENT_MESSAGE_UPDATED = 2,
    CS_EVENT_MESSAGE_DELETED = 3,
    CS_EVENT_CHANNEL_CREATED = 4,
    CS_EVENT_CHANNEL_UPDATED = 5,
    CS_EVENT_CHANNEL_DELETED = 6, /* with its messages */
    CS_EVENT_SERVICE_CREATED = 7,
    CS_EVENT_SERVICE_UPDATED = 8,
    CS_EVENT_SERVICE_DELETED = 9, /* with its channels, messages, media */
    CS_EVENT_MEDIA_CREATED = 10,
    CS_EVENT_STORE_CLEARED = 11,  /* cs_store_clear: everything */
    CS_EVENT_EPOCH_STARTED = 12,  /* cs_store_new_epoch */
    CS_EVENT_MEDIA_DELETED = 13   /* cs_media_delete */
} cs_event_type;

typedef struct cs_event {
    cs_event_type type;
    cs_webhook webhook; /* the header value the call carried (ABSENT for
                           service, media, clear and epoch events) */
    /* Commit sequence number: 1 for the store's first committed change, one
     * more for each later one, never reset (not by clear either). */
    uint64_t seq;
    /* The resource after the change; for deletes, as it was just before.
     * Exactly the one matching the type is non-NULL (none for
     * STORE_CLEARED and EPOCH_STARTED): message events carry the message (with its service
     * and channel SIDs), channel events the channel, and so on. Valid
     * during the callback only. */
    const cs_message_view *message;
    const cs_channel_view *channel;
    const cs_service_view *service;
    const cs_media_view *media;
    /* What a delete or clear took with it (0 for other events): the
     * services, channels, messages and media items removed, the deleted
     * container itself included. */
    uint64_t removed_services, removed_channels, removed_messages,
        removed_media;
} cs_event;

/* Runs after a committed change, on the calling thread, with the change
 * fully visible (fetch and list see it). It must not call a mutating
 * function or a lock function of the same store (they return REENTRANT). */
typedef void (*cs_observer_fn)(void *ctx, const cs_event *ev);

/* Registers an observer (fn must not be NULL: INVALID_ARGUMENT; ctx is
 * passed through and may be NULL); *id (id may be NULL) receives a handle
 * for removal. Observers run in registration order.
 * Errors: INVALID_ARGUMENT, REENTRANT, NOMEM. */
CS_API cs_err cs_observer_add(cs_store *s, cs_observer_fn fn, void *ctx,
                              uint64_t *id);
/* Errors: REENTRANT, NOT_FOUND. */
CS_API cs_err cs_observer_remove(cs_store *s, uint64_t id);

/* ------------------------------------------------------------------------ */
/* Durability: change journal and snapshots                                  */
/* ------------------------------------------------------------------------ */

/* The library still does no I/O: records and images go through the
 * caller's callbacks. Formats: docs/journal.md and docs/snapshot.md.
 *
 * The journal: every change about to commit is handed to the journal hook
 * as one self-contained record with the change's sequence number (the seq
 * its event will carry), before anything becomes visible. The record holds
 * the call and its resolved effect (the clock value the call used, the
 * SIDs it creates, the channel and message it addresses), so applying it
 * never consults a clock or a random source. Applying, in order, the
 * records written after a snapshot to a store loaded from that snapshot
 * gives a store whose every rendering is byte-identical to the original's.
 */

/* Where a damaged image or record went wrong. */
typedef struct cs_decode_error {
    uint64_t offset;    /* byte offset in the image or record */
    const char *reason; /* static text, e.g. "checksum mismatch" */
} cs_decode_error;

/* Journal hook: called on the mutating thread, under its lock, once per
 * change about to commit. rec[0..len) is valid during the call only. Return
 * 0 to accept; anything else refuses the change: the call fails with
 * JOURNAL_REFUSED, the store is exactly as before and no observer runs. The
 * hook must not call the store. */
typedef int (*cs_journal_fn)(void *ctx, uint64_t seq, const void *rec,
                             size_t len);

/* Sets the journal hook (fn may be NULL: none; ctx is passed through).
 * Errors: REENTRANT. */
CS_API cs_err cs_store_set_journal(cs_store *s, cs_journal_fn fn, void *ctx);

/* The sequence number of a record, read from its header (rec must not be
 * NULL); the rest is checked by cs_journal_apply.
 * Errors: BAD_RECORD. */
CS_API cs_err cs_journal_record_seq(const void *rec, size_t len,
                                    uint64_t *seq);

/* What a record is about, read from its header after checking its CRC:
 * for a server that must act on a record before it commits (e.g. put a
 * media item's bytes in place under its SID). A service create or update
 * that set webhook settings (record operations 13 and 14 in
 * docs/journal.md) is reported as SERVICE_CREATE / SERVICE_UPDATE. */
typedef enum cs_journal_op {
    CS_JOURNAL_SERVICE_CREATE = 1,
    CS_JOURNAL_SERVICE_UPDATE = 2,
    CS_JOURNAL_SERVICE_DELETE = 3,
    CS_JOURNAL_CHANNEL_CREATE = 4,
    CS_JOURNAL_CHANNEL_UPDATE = 5,
    CS_JOURNAL_CHANNEL_DELETE = 6,
    CS_JOURNAL_MEDIA_CREATE = 7,
    CS_JOURNAL_MESSAGE_CREATE = 8,
    CS_JOURNAL_MESSAGE_UPDATE = 9,
    CS_JOURNAL_MESSAGE_DELETE = 10,
    CS_JOURNAL_CLEAR = 11,
    CS_JOURNAL_NEW_EPOCH = 12,
    CS_JOURNAL_MEDIA_DELETE = 15 /* its media SID is not reported */
} cs_journal_op;

typedef struct cs_journal_info {
    cs_journal_op op;
    uint64_t seq;
    /* The SIDs the record names ("" when it names none of that kind):
     * the service, channel and message it addresses, and the one it
     * creates (a service, channel, media item or message SID). */
    char service_sid[CS_SID_BUFSZ];
    char channel_sid[CS_SID_BUFSZ];
    char message_sid[CS_SID_BUFSZ];
    char created_sid[CS_SID_BUFSZ];
} cs_journal_info;

/* Fills *out (rec and out must not be NULL; err may be NULL).
 * Errors: BAD_RECORD. */
CS_API cs_err cs_journal_record_info(const void *rec, size_t len,
                                     cs_journal_info *out,
                                     cs_decode_error *err);

/* Applies one record to s. A record whose seq is not above the store's
 * commit count is skipped (CS_OK, *applied false): replaying a journal that
 * overlaps a snapshot is harmless. The next seq is applied (*applied true,
 * observers and s's own journal hook see it as any change); a later one is
 * RECORD_GAP. A damaged record is BAD_RECORD with *err (may be NULL) naming
 * the offset and cause; one that does not fit the store's state (counters,
 * the epoch, a service, channel, message or media item it names missing,
 * or a call that changes nothing) is RECORD_MISMATCH, and so is a create
 * whose SID is not the one s makes next: a record of a store with other
 * keys, or with another SID tag (or none where s has one, or one where s
 * has none). The call a record carries is
 * validated as the call itself (against limits lifted to the maximum, since
 * the store that wrote it accepted it), so a crafted record fails with that
 * call's error and changes nothing. applied may be NULL.
 * Errors: BAD_RECORD, RECORD_GAP, RECORD_MISMATCH, REENTRANT, NOMEM,
 * JOURNAL_REFUSED, INVALID_ARGUMENT, FRIENDLY_NAME_MISSING,
 * BAD_UTF8, BAD_WEBHOOK_HEADER, BAD_CHANNEL_TYPE, FRIENDLY_NAME_TOO_LONG,
 * UNIQUE_NAME_TOO_LONG, IDENTITY_TOO_LONG, ATTRIBUTES_TOO_LONG,
 * ATTRIBUTES_INVALID, UNIQUE_NAME_IS_SID, UNIQUE_NAME_EXISTS,
 * BAD_DATE_CREATED, BAD_DATE_UPDATED, FROM_TOO_LONG, BODY_TOO_LONG,
 * LAST_UPDATED_BY_TOO_LONG, MEDIA_NOT_FOUND, MEDIA_IN_USE,
 * MEDIA_BODY_IMMUTABLE, BAD_MEDIA_SID, BAD_MEDIA_CONTENT_TYPE,
 * MEDIA_TOO_LARGE, LIMIT_EXCEEDED, BAD_WEBHOOK_URL, BAD_WEBHOOK_METHOD,
 * BAD_WEBHOOK_FILTER, BAD_RETRY_COUNT. */
CS_API cs_err cs_journal_apply(cs_store *s, const void *rec, size_t len,
                               bool *applied, cs_decode_error *err);

/* Snapshot callbacks. write: consume buf[0..len), return 0 (else the save
 * stops with IO). read: fill up to len bytes of buf, return how many (0 at
 * the end of the image, negative on failure: IO). */
typedef int (*cs_write_fn)(void *ctx, const void *buf, size_t len);
typedef ptrdiff_t (*cs_read_fn)(void *ctx, void *buf, size_t len);

/* Streams a consistent image of the whole store through fn: every service,
 * channel, message (with its index; gaps stay gaps), media item and
 * identity, every counter and generator, and the keys behind SIDs and page
 * tokens. A read-only call: under the shared lock, or in a forked child.
 * Needs no memory.
 * Errors: IO. */
CS_API cs_err cs_snapshot_save(const cs_store *s, cs_write_fn fn, void *ctx);

/* Builds a new store from an image into *out (NULL on error). opts as for
 * cs_store_new, may be NULL; the keys, account SID and counters come from
 * the image (an opts->account_sid that differs is INVALID_ARGUMENT), the
 * base URL, limits, allocator, clock and SID tag from opts (the image holds
 * no tag: a store loaded with the saving store's tag makes the SIDs it
 * would have made). Every SID and page token
 * the saved store issued works in the loaded one, and new SIDs never
 * collide with old ones. A truncated, damaged or crafted image is
 * BAD_SNAPSHOT with *err (may be NULL) naming the offset and cause; nothing
 * leaks.
 * Errors: NOMEM, INVALID_ARGUMENT, IO, BAD_SNAPSHOT. */
CS_API cs_err cs_snapshot_load(const cs_options *opts, cs_read_fn fn,
                               void *ctx, cs_store **out,
                               cs_decode_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CHATSTORE_H */
