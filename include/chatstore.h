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
 * - A failed call leaves the store exactly as it was, allocation failure
 *   included, and notifies no observer.
 * - Strings enter as cs_str (pointer + length, not NUL-terminated). A cs_str
 *   whose ptr is NULL is "absent" (the parameter was not given); an empty
 *   string is given-and-empty. All input is validated by the store: UTF-8,
 *   JSON, SIDs, dates, lengths.
 * - Out-parameters come last. Views (cs_*_view) are filled by the store and
 *   hold pointers BORROWED from it: they stay valid until the next call that
 *   mutates the store (create, update, delete, clear, free). Copy what you
 *   need to keep.
 * - Threads: a store is not internally synchronised. One thread may use a
 *   store at a time, or many threads may share one by bracketing every call
 *   with cs_store_lock_shared (read-only calls: fetch, list, page iteration,
 *   render, check) or cs_store_lock_exclusive (mutating calls) and
 *   cs_store_unlock. Read-only calls never modify the store, so any number of
 *   readers run in parallel under the shared lock; views stay valid while the
 *   lock is held. Observers run on the mutating thread, under its lock.
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
#define CHATSTORE_VERSION_MINOR 1
#define CHATSTORE_VERSION_PATCH 0
#define CHATSTORE_VERSION "0.1.0"
#define CHATSTORE_VERSION_NUMBER                                              \
    (CHATSTORE_VERSION_MAJOR * 10000 + CHATSTORE_VERSION_MINOR * 100 +        \
     CHATSTORE_VERSION_PATCH)

/* The library's version, to compare with the header's CHATSTORE_VERSION*. */
CS_API const char *cs_version(void);
CS_API int cs_version_number(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* XX(NAME, http status, Twilio code, message). One table: the enum and every
 * lookup below come from it. */
#define CS_ERROR_MAP(XX)                                                      \
    XX(OK, 200, 0, "Success")                                                 \
    XX(NOMEM, 500, 20500, "Out of memory")                                    \
    XX(INVALID_ARGUMENT, 400, 20001, "Invalid argument")                      \
    XX(NOT_FOUND, 404, 20404, "The requested resource was not found")         \
    XX(BUFFER_TOO_SMALL, 500, 20500, "Output buffer too small")               \
    XX(REENTRANT, 500, 20500,                                                 \
       "The store cannot be changed from inside an observer")                 \
    XX(CORRUPT, 500, 20500, "Store invariant violated")                      \
    XX(LIMIT_EXCEEDED, 400, 20001, "A store-wide count limit was reached")   \
    XX(FRIENDLY_NAME_MISSING, 400, 20001,                                     \
       "Missing required parameter FriendlyName in the post body")            \
    XX(BAD_UTF8, 400, 20001, "Parameter is not valid UTF-8")                  \
    XX(BAD_ORDER, 400, 20001, "Order must be asc or desc")                    \
    XX(BAD_PAGE_SIZE, 400, 20001, "PageSize must be a positive integer")      \
    XX(BAD_PAGE, 400, 20001, "Page must be a non-negative integer")           \
    XX(BAD_PAGE_TOKEN, 400, 20001, "Invalid PageToken")                       \
    XX(BAD_WEBHOOK_HEADER, 400, 20001,                                        \
       "X-Twilio-Webhook-Enabled must be true or false")                      \
    XX(BAD_CHANNEL_TYPE, 400, 20001, "Type must be public or private")        \
    XX(FRIENDLY_NAME_TOO_LONG, 400, 50003, "Friendly name is too long")       \
    XX(UNIQUE_NAME_TOO_LONG, 400, 50004, "Unique name is too long")           \
    XX(IDENTITY_TOO_LONG, 400, 50207, "Identity is too long")                 \
    XX(ATTRIBUTES_TOO_LONG, 400, 50303, "Attributes are too long")            \
    XX(ATTRIBUTES_INVALID, 400, 50304, "Attributes not valid JSON")           \
    XX(UNIQUE_NAME_IS_SID, 400, 50306,                                        \
       "Unique name must not look like a Channel SID")                        \
    XX(UNIQUE_NAME_EXISTS, 409, 50307,                                        \
       "Channel with provided unique name already exists")                    \
    XX(BAD_DATE_CREATED, 400, 50308, "Invalid DateCreated")                   \
    XX(BAD_DATE_UPDATED, 400, 50309, "Invalid DateUpdated")                   \
    XX(FROM_TOO_LONG, 400, 50310, "Author (From) is too long")                \
    XX(BODY_TOO_LONG, 400, 50504, "Message body is too long")                 \
    XX(LAST_UPDATED_BY_TOO_LONG, 400, 50505, "LastUpdatedBy is too long")     \
    XX(MEDIA_NOT_FOUND, 400, 50507, "Media not found")                        \
    XX(MEDIA_IN_USE, 400, 50508, "Media already sent with another message")   \
    XX(MEDIA_BODY_IMMUTABLE, 400, 50509,                                      \
       "Media message body cannot be updated")                                \
    XX(BAD_MEDIA_SID, 400, 50510, "Invalid media SID")                        \
    XX(BAD_MEDIA_CONTENT_TYPE, 400, 50511, "Invalid media content type")     \
    XX(MEDIA_TOO_LARGE, 400, 50512, "Media is too large")

typedef enum cs_err {
#define CS__ERR_ENUM(name, status, code, msg) CS_E_##name,
    CS_ERROR_MAP(CS__ERR_ENUM)
#undef CS__ERR_ENUM
    CS_E__COUNT
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

/* A growable buffer; alc may be NULL. Free with cs_buf_free. */
CS_API void cs_buf_init(cs_buf *b, const cs_allocator *alc);
/* A buffer over caller memory mem[0..cap); it never grows. */
CS_API void cs_buf_init_fixed(cs_buf *b, char *mem, size_t cap);
/* Releases a growable buffer's memory (no-op for fixed); NULL is a no-op. */
CS_API void cs_buf_free(cs_buf *b);
/* Sets len to 0 and keeps the memory. */
CS_API void cs_buf_reset(cs_buf *b);

/* ------------------------------------------------------------------------ */
/* Store                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct cs_store cs_store;

/* Size and count limits; every field adjustable. Lengths of names and
 * identities count Unicode code points, the others bytes. */
typedef struct cs_limits {
    size_t body_bytes;          /* 32768 */
    size_t attributes_bytes;    /* 16384 */
    size_t name_chars;          /* 256: friendly_name, unique_name */
    size_t identity_chars;      /* 256: From, LastUpdatedBy, CreatedBy */
    uint32_t page_size_max;     /* 1000 */
    uint64_t media_bytes;       /* 157286400 (150 MB, the service default) */
    size_t content_type_bytes;  /* 255 */
    size_t filename_bytes;      /* 255 */
} cs_limits;

#define CS_LIMITS_DEFAULT                                                     \
    {32768, 16384, 256, 256, 1000, UINT64_C(157286400), 255, 255}

/* Seconds since the Unix epoch, UTC. */
typedef int64_t (*cs_clock_fn)(void *ctx);
/* Fills buf[0..len) with random bytes; returns 0, or non-zero on failure. */
typedef int (*cs_random_fn)(void *ctx, void *buf, size_t len);

#define CS_OPTIONS_VERSION 1

typedef struct cs_options {
    unsigned version;        /* CS_OPTIONS_VERSION */
    const char *account_sid; /* "AC" + 32 hex; NULL: generated */
    const char *base_url;    /* NULL: "https://chat.twilio.com" */
    cs_limits limits;
    const cs_allocator *allocator; /* NULL: C library; copied */
    cs_clock_fn clock;             /* NULL: real time */
    void *clock_ctx;
    cs_random_fn random; /* NULL: OS random source, read once per store */
    void *random_ctx;
    /* When use_seed is true, seed alone determines every SID, key and token
     * the store produces: same calls, same outputs (golden-file fixtures). */
    bool use_seed;
    uint64_t seed;
} cs_options;

#define CS_OPTIONS_INIT                                                       \
    {CS_OPTIONS_VERSION, NULL, NULL, CS_LIMITS_DEFAULT, NULL, NULL, NULL,     \
     NULL, NULL, false, 0}

/* Creates a store. opts may be NULL (all defaults). Errors: NOMEM,
 * INVALID_ARGUMENT (bad version, malformed account_sid, empty base_url,
 * zero limit, failing random hook). */
CS_API cs_err cs_store_new(const cs_options *opts, cs_store **out);
/* Frees the store and everything in it; NULL is a no-op. */
CS_API void cs_store_free(cs_store *s);
/* Deletes every service (and so everything) and resets the SID generator
 * and counters to their initial state: a cleared store behaves as a new one
 * created with the same options. Observers stay registered and are not
 * notified. Cannot fail. */
CS_API void cs_store_clear(cs_store *s);

CS_API const char *cs_store_account_sid(const cs_store *s);
CS_API const char *cs_store_base_url(const cs_store *s);
CS_API const cs_limits *cs_store_limits(const cs_store *s);
/* Replaces the limits (all fields must be non-zero). Existing data is not
 * re-checked. */
CS_API cs_err cs_store_set_limits(cs_store *s, const cs_limits *lim);

/* Reader/writer lock for sharing one store among threads (see the top of
 * this file). Not recursive for the exclusive side. */
CS_API void cs_store_lock_shared(cs_store *s);
CS_API void cs_store_lock_exclusive(cs_store *s);
CS_API void cs_store_unlock(cs_store *s);

/* Counts of live objects, for tests and monitoring. identities: distinct
 * interned strings (a channel's CreatedBy, a message's LastUpdatedBy); a
 * message's From is stored with the message. */
typedef struct cs_store_stats {
    size_t services, channels, messages, media, identities;
    size_t bytes_allocated; /* live bytes through the allocator */
} cs_store_stats;
CS_API void cs_store_stats_get(const cs_store *s, cs_store_stats *out);

/* Debug invariant checker: walks every structure and cross-checks counts,
 * orders, hash tables, back-pointers and reference counts. Returns CS_OK or
 * CS_E_CORRUPT. O(size of the store). */
CS_API cs_err cs_store_check(const cs_store *s);

/* ------------------------------------------------------------------------ */
/* Views                                                                     */
/* ------------------------------------------------------------------------ */

#define CS_SID_BUFSZ 35  /* 34 characters + NUL */
#define CS_DATE_BUFSZ 21 /* YYYY-MM-DDTHH:MM:SSZ + NUL */

/* Formats t (seconds since the epoch, UTC) as YYYY-MM-DDTHH:MM:SSZ. */
CS_API void cs_format_date(int64_t t, char out[CS_DATE_BUFSZ]);
/* Parses an ISO 8601 date-time (the store's input rule). */
CS_API cs_err cs_parse_date(cs_str s, int64_t *out);

typedef struct cs_service_view {
    const char *sid, *account_sid;
    cs_str friendly_name;
    int64_t date_created, date_updated;
    const char *default_service_role_sid, *default_channel_role_sid,
        *default_channel_creator_role_sid;
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

/* Creates a service. friendly_name is required (FRIENDLY_NAME_MISSING when
 * absent or empty). Errors: NOMEM, BAD_UTF8, FRIENDLY_NAME_TOO_LONG. */
CS_API cs_err cs_service_create(cs_store *s, cs_str friendly_name,
                                cs_service_view *out);
CS_API cs_err cs_service_fetch(const cs_store *s, cs_str service_sid,
                               cs_service_view *out);
/* Updates the friendly name when given (absent: unchanged; empty:
 * FRIENDLY_NAME_MISSING); date_updated becomes now when anything was given. */
CS_API cs_err cs_service_update(cs_store *s, cs_str service_sid,
                                cs_str friendly_name, cs_service_view *out);
/* Deletes the service with all its channels, messages and media. */
CS_API cs_err cs_service_delete(cs_store *s, cs_str service_sid);

/* ------------------------------------------------------------------------ */
/* Channels                                                                  */
/* ------------------------------------------------------------------------ */

/* The webhook header value as the caller received it (absent or the raw
 * string; true/false in any letter case, else BAD_WEBHOOK_HEADER). */
typedef enum cs_webhook {
    CS_WEBHOOK_ABSENT = 0,
    CS_WEBHOOK_TRUE = 1,
    CS_WEBHOOK_FALSE = 2
} cs_webhook;

typedef struct cs_channel_params {
    cs_str friendly_name; /* empty: null */
    cs_str unique_name;   /* empty: null */
    cs_str attributes;    /* JSON text; absent: "{}" on create */
    cs_str type;          /* create only: "public" (default) or "private" */
    cs_str date_created;  /* ISO 8601 */
    cs_str date_updated;
    cs_str created_by;    /* absent: "system" on create */
    cs_str webhook;       /* X-Twilio-Webhook-Enabled */
} cs_channel_params;

/* Addressing: a channel argument is the channel SID or its unique_name.
 * Errors of all channel calls: NOT_FOUND for a missing service or channel
 * (a malformed SID is simply not found), NOMEM. */
CS_API cs_err cs_channel_create(cs_store *s, cs_str service_sid,
                                const cs_channel_params *p,
                                cs_channel_view *out);
CS_API cs_err cs_channel_fetch(const cs_store *s, cs_str service_sid,
                               cs_str channel, cs_channel_view *out);
/* A parameter given (not absent) counts as a change; type is ignored. With
 * at least one change date_updated becomes DateUpdated or now. */
CS_API cs_err cs_channel_update(cs_store *s, cs_str service_sid,
                                cs_str channel, const cs_channel_params *p,
                                cs_channel_view *out);
/* Deletes the channel and all its messages. */
CS_API cs_err cs_channel_delete(cs_store *s, cs_str service_sid,
                                cs_str channel, cs_str webhook);

/* ------------------------------------------------------------------------ */
/* Media registry (metadata only; the store never holds media bytes)         */
/* ------------------------------------------------------------------------ */

/* Registers a media item in the service. content_type must look like
 * "type/subtype" (BAD_MEDIA_CONTENT_TYPE); filename may be absent; size over
 * limits.media_bytes: MEDIA_TOO_LARGE. */
CS_API cs_err cs_media_create(cs_store *s, cs_str service_sid,
                              cs_str content_type, cs_str filename,
                              uint64_t size, cs_media_view *out);
CS_API cs_err cs_media_fetch(const cs_store *s, cs_str service_sid,
                             cs_str media_sid, cs_media_view *out);

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct cs_message_params {
    cs_str from;            /* absent: "system" on create */
    cs_str attributes;      /* JSON text; absent: "{}" on create */
    cs_str date_created;    /* ISO 8601 */
    cs_str date_updated;
    cs_str last_updated_by; /* absent: null on create, unchanged on update */
    cs_str body;            /* absent or empty: "" */
    cs_str media_sid;       /* create only */
    cs_str webhook;         /* X-Twilio-Webhook-Enabled */
} cs_message_params;

/* Appends a message to the channel with the next index.
 * Errors: NOT_FOUND, NOMEM, BAD_UTF8, BODY_TOO_LONG, ATTRIBUTES_TOO_LONG,
 * ATTRIBUTES_INVALID, FROM_TOO_LONG, LAST_UPDATED_BY_TOO_LONG,
 * BAD_DATE_CREATED, BAD_DATE_UPDATED, BAD_MEDIA_SID, MEDIA_NOT_FOUND,
 * MEDIA_IN_USE, BAD_WEBHOOK_HEADER. */
CS_API cs_err cs_message_create(cs_store *s, cs_str service_sid,
                                cs_str channel, const cs_message_params *p,
                                cs_message_view *out);
CS_API cs_err cs_message_fetch(const cs_store *s, cs_str service_sid,
                               cs_str channel, cs_str message_sid,
                               cs_message_view *out);
/* No parameter given: the message is returned unchanged. Otherwise
 * was_edited becomes true and date_updated DateUpdated or now. media_sid is
 * ignored. Changing the body of a media message: MEDIA_BODY_IMMUTABLE. */
CS_API cs_err cs_message_update(cs_store *s, cs_str service_sid,
                                cs_str channel, cs_str message_sid,
                                const cs_message_params *p,
                                cs_message_view *out);
CS_API cs_err cs_message_delete(cs_store *s, cs_str service_sid,
                                cs_str channel, cs_str message_sid,
                                cs_str webhook);

/* ------------------------------------------------------------------------ */
/* Pages                                                                     */
/* ------------------------------------------------------------------------ */

/* Query parameters exactly as received (absent when not given). */
typedef struct cs_page_params {
    cs_str order;      /* messages only: "asc" (default) or "desc" */
    cs_str page_size;  /* decimal; default 50, 1..; above the max: clamped */
    cs_str page;       /* decimal >= 0; default 0; echoed */
    cs_str page_token; /* opaque, issued by this store */
    const cs_str *types; /* channels only: repeated Type values */
    size_t n_types;      /* 0: public channels only */
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
 * cs_page_next_* call of its kind. Needs no allocation and no freeing; valid
 * until the next mutation of the store. Fields below are read-only. */
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
    /* private iteration state */
    const void *priv_seq;
    int64_t priv_first_key;
    size_t priv_yielded;
    size_t priv_b;
    uint32_t priv_i;
    unsigned priv_types;
    bool priv_types_given;
    char priv_service_sid[CS_SID_BUFSZ];
    char priv_channel_sid[CS_SID_BUFSZ];
} cs_page;

CS_API cs_err cs_service_list(const cs_store *s, const cs_page_params *q,
                              cs_page *out);
CS_API cs_err cs_channel_list(const cs_store *s, cs_str service_sid,
                              const cs_page_params *q, cs_page *out);
CS_API cs_err cs_message_list(const cs_store *s, cs_str service_sid,
                              cs_str channel, const cs_page_params *q,
                              cs_page *out);

/* Fills the next item's view; returns false after the last item. */
CS_API bool cs_page_next_service(const cs_store *s, cs_page *pg,
                                 cs_service_view *out);
CS_API bool cs_page_next_channel(const cs_store *s, cs_page *pg,
                                 cs_channel_view *out);
CS_API bool cs_page_next_message(const cs_store *s, cs_page *pg,
                                 cs_message_view *out);
/* Restarts iteration at the page's first item. */
CS_API void cs_page_rewind(cs_page *pg);

/* ------------------------------------------------------------------------ */
/* JSON rendering                                                            */
/* ------------------------------------------------------------------------ */

/* Each appends one JSON object to b, with the key orders of DECISIONS.md and
 * URLs built on the store's base URL. Errors: NOMEM, BUFFER_TOO_SMALL (b
 * unchanged on error). */
CS_API cs_err cs_render_service(const cs_store *s, const cs_service_view *v,
                                cs_buf *b);
CS_API cs_err cs_render_channel(const cs_store *s, const cs_channel_view *v,
                                cs_buf *b);
CS_API cs_err cs_render_message(const cs_store *s, const cs_message_view *v,
                                cs_buf *b);
CS_API cs_err cs_render_media(const cs_store *s, const cs_media_view *v,
                              cs_buf *b);
/* Renders a whole page: {"<key>": [...], "meta": {...}}, iterating the page
 * from its first item (the page's iteration state is rewound). */
CS_API cs_err cs_render_page(const cs_store *s, cs_page *pg, cs_buf *b);

/* ------------------------------------------------------------------------ */
/* Change observers                                                          */
/* ------------------------------------------------------------------------ */

typedef enum cs_event_type {
    CS_EVENT_MESSAGE_CREATED = 1,
    CS_EVENT_MESSAGE_UPDATED,
    CS_EVENT_MESSAGE_DELETED,
    CS_EVENT_CHANNEL_CREATED,
    CS_EVENT_CHANNEL_UPDATED,
    CS_EVENT_CHANNEL_DELETED
} cs_event_type;

typedef struct cs_event {
    cs_event_type type;
    cs_webhook webhook; /* the header value the call carried */
    /* The resource after the change; for deletes, as it was just before.
     * Exactly one is non-NULL, matching the event type. Valid during the
     * callback only. */
    const cs_message_view *message;
    const cs_channel_view *channel;
} cs_event;

/* Runs after a committed change, on the calling thread. It must not call a
 * mutating function of the same store (such calls return CS_E_REENTRANT). */
typedef void (*cs_observer_fn)(void *ctx, const cs_event *ev);

/* Registers an observer; *id (optional) receives a handle for removal.
 * Observers run in registration order. Deleting a channel notifies
 * CHANNEL_DELETED only (not each of its messages). */
CS_API cs_err cs_observer_add(cs_store *s, cs_observer_fn fn, void *ctx,
                              uint64_t *id);
CS_API cs_err cs_observer_remove(cs_store *s, uint64_t id);

#ifdef __cplusplus
}
#endif
#endif /* CHATSTORE_H */
