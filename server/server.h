/* chatstore-server: Twilio Chat v2 on the wire over a chatstore store. */
#ifndef CHATSTORE_SERVER_H
#define CHATSTORE_SERVER_H

#include <chatstore.h>
#include <pthread.h>
#include <stddef.h>

/* ---- form and query parameters ------------------------------------------ */

typedef struct kv {
    char *key, *val;
    size_t key_len, val_len;
} kv;

typedef struct params {
    kv *items;
    size_t n, cap;
} params;

/* Percent-decodes in[0..n) into out (at least n bytes); '+' becomes a space
 * when plus is set. Returns the decoded length, or (size_t)-1 on a bad
 * escape. */
size_t pct_decode(const char *in, size_t n, char *out, int plus);
/* Parses "k=v&k=v" (form body or query), decoding both sides. Returns 0, or
 * -1 on a malformed escape or out of memory. */
int params_parse(params *p, const char *s, size_t n);
int params_add(params *p, const char *k, size_t kn, const char *v, size_t vn);
void params_free(params *p);
/* The first value of key, or the absent string. */
cs_str params_get(const params *p, const char *key);
/* How many times key appears. */
size_t params_count(const params *p, const char *key);
/* Collects every value of key into out[0..max); returns how many. */
size_t params_all(const params *p, const char *key, cs_str *out, size_t max);

/* Decodes standard base64; returns the length or (size_t)-1. */
size_t base64_decode(const char *in, size_t n, char *out, size_t cap);

/* ---- media bytes ---------------------------------------------------------- */

typedef struct media_store media_store;
typedef struct blob blob;
typedef struct server server;
media_store *media_store_new(size_t cap_bytes);
void media_store_free(media_store *m);
enum { MEDIA_FULL = -1, MEDIA_NOMEM = -2 };
/* Before the store registers an upload: reserves n bytes of the cap, copies
 * data and allocates the entry. 0 and *out, MEDIA_FULL (cap exceeded) or
 * MEDIA_NOMEM. */
int media_store_prepare(media_store *m, const char *data, size_t n,
                        blob **out);
/* After it registered the media as sid of service_sid (created: its
 * date_created): keeps the bytes. Cannot fail. */
void media_store_commit(media_store *m, blob *b, const char *sid,
                        const char *service_sid, int64_t created);
/* After it refused: frees b (may be NULL) and gives back n bytes of cap. */
void media_store_abort(media_store *m, blob *b, size_t n);
/* Frees (and unreserves) the bytes of every media of a deleted service. */
void media_store_drop_service(media_store *m, const char *service_sid);
/* Frees the bytes of one media item; 1 if it had bytes here. */
int media_store_drop(media_store *m, const char *sid);
/* Frees the bytes of every media item of service_sid that s no longer
 * knows (a channel delete took them), calling dropped for each first (may
 * be NULL); under s's lock. Returns how many. */
size_t media_store_drop_gone(media_store *m, const char *service_sid,
                             const cs_store *s,
                             void (*dropped)(void *ctx, const char *is,
                                             const char *me),
                             void *ctx);
/* What the store says of sid: its date_created, and whether it is attached
 * to a message (then it never expires). */
void media_store_note(media_store *m, const char *sid, int64_t created,
                      int attached);
/* Up to max items not known to be attached, created at or before `before`:
 * out[i][0] the service SID, out[i][1] the media SID. Returns how many. */
size_t media_store_expired(media_store *m, int64_t before,
                           char (*out)[2][CS_SID_BUFSZ], size_t max);
/* Bytes held and reserved; items held. */
size_t media_store_used(media_store *m);
size_t media_store_count(media_store *m);
/* The bytes of sid without a copy: *data[0..*n) stay valid until
 * media_store_release(the returned blob), even if the item is deleted
 * meanwhile. NULL: no bytes for sid. */
blob *media_store_get(media_store *m, const char *sid, char **data,
                      size_t *n);
void media_store_release(void *blob);

/* The media lifecycle (media.c): an observer that frees the bytes (and,
 * with --data-dir, the files) of media items the store removed, and marks
 * attached ones; media_expire deletes, through cs_media_delete, uploads
 * never attached after --media-ttl seconds (at most once a second unless
 * force). Both need sv->store. */
int media_observe(server *sv);
void media_expire(server *sv, int force);

/* ---- the server --------------------------------------------------------- */

#define MEDIA_TTL_DEFAULT 3600 /* --media-ttl */

typedef struct persist persist; /* persist.h: --data-dir */
typedef struct fixture fixture; /* fixture.h: --seed, --clock, --fixture,
                                   --test-endpoints */
struct fixture_config;

typedef struct server_config {
    const char *host;
    unsigned port;
    const char *account_sid;
    const char *auth_token;
    const char *base_url;
    size_t max_request;   /* bytes of a request body; larger: 413 */
    size_t media_cap;     /* bytes of media kept in memory in total */
    unsigned threads;
    /* --data-dir and its options (persist.h); data_dir NULL: memory only */
    const char *data_dir;
    int fsync_mode; /* persist_fsync */
    double compact_ratio;
    unsigned long long compact_min_bytes;
    int repair;
    /* --seed, --clock, --fixture, --test-endpoints (fixture.h); NULL: none */
    const struct fixture_config *fixture;
    /* --max-services, --max-channels, --max-messages: the store's count
     * quotas; --max-memory: store bytes plus media bytes (0: none) */
    uint64_t max_services, max_channels, max_messages, max_memory;
    unsigned long media_ttl; /* seconds an unattached upload lives; 0: ever */
} server_config;

struct server {
    server_config cfg;
    cs_store *store;
    media_store *media;
    persist *persist; /* NULL without --data-dir */
    fixture *fx;      /* NULL without the test fixture's flags */
    struct MHD_Daemon *daemon;
    unsigned bound_port;
    unsigned long in_flight; /* requests begun and not completed (atomic) */
    int64_t next_expiry;     /* real time of the next media sweep (atomic) */
    int stopping;            /* server_stop began: replies close (atomic) */
};

int server_start(server *sv, const server_config *cfg);
/* With --data-dir: stops accepting, lets the requests in flight finish,
 * then flushes and fsyncs the journal. Returns 0, or -1 when the final
 * flush failed. */
int server_stop(server *sv);

/* A response being built: status, JSON or raw body, content type. */
typedef struct reply {
    unsigned status;
    cs_buf body;
    const char *content_type;
    char ct_buf[256]; /* content_type may point here */
    int www_auth;     /* add WWW-Authenticate */
    const char *allow; /* Allow header of a 405 reply, or NULL */
    int close;         /* add Connection: close */
    char date[40];     /* Date header when not "" (a fixed clock's) */
    blob *media;       /* media content: the reply body borrows its bytes
                          (body.data), released when sent */
} reply;

/* A parsed request, as routes see it. */
typedef struct request {
    const char *method;
    const char *path; /* raw, percent-encoded, without the query */
    params query;
    params form;
    const char *body; /* raw body (media upload) */
    size_t body_len;
    cs_str webhook;   /* X-Twilio-Webhook-Enabled */
    cs_str content_type;
    int bad_query;    /* a query key or value had a malformed %-escape */
} request;

/* Routes a request; fills the reply. */
void route(server *sv, const request *rq, reply *rp);
/* An error reply in Twilio's envelope. */
void reply_error(reply *rp, unsigned status, int code, const char *message);
void reply_cs_error(reply *rp, cs_err e, const char *path);

#endif
