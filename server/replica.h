/* chatstore-server's replication over NATS JetStream (--nats): a shard's
 * primary publishes every journal record to the shard's stream, followers
 * apply the stream, the log itself fences a deposed primary. The design,
 * the stream's message format and the failure cases are described in
 * docs/replication.md. */
#ifndef CHATSTORE_REPLICA_H
#define CHATSTORE_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "server.h"

#define REPLICA_SHARDS_MAX 256
/* Exit status of a primary that finds another node holding its shard's
 * writer lease at startup. */
#define REPLICA_EXIT_FENCED 4

typedef struct replica_config {
    const char *nats_urls; /* --nats: comma-separated nats:// URLs */
    unsigned shard;        /* --shard K, 0..255 */
    const char *node;      /* --node NAME (never NULL once started) */
    int follow;            /* --follow: start as a follower */
    int sync;              /* --replication sync (1) | async (0) */
    unsigned replicas;     /* --nats-replicas R: of the streams and bucket
                              this server creates */
    unsigned timeout_ms;   /* --replica-timeout: how long a synchronous
                              write waits for its acknowledgement */
    unsigned long long snapshot_records; /* --replica-snapshot-records: a
                              new snapshot in the stream after this many
                              commits (0: never) */
} replica_config;

typedef enum replica_role {
    REPLICA_PRIMARY = 0,
    REPLICA_FOLLOWER = 1,
    REPLICA_FENCED = 2,  /* was the writer; the log refused it */
    REPLICA_BROKEN = 3   /* a follower that could not apply the stream */
} replica_role;

typedef struct replica replica;

/* Connects, checks the writer lease (a primary whose shard's lease names
 * another node prints why and makes the caller exit with
 * REPLICA_EXIT_FENCED: *exit_code), and builds sv->store: from the
 * stream's snapshot when the stream has one, else (a primary of an empty
 * stream) a new store whose snapshot it publishes first. opts gives the
 * store's options (account SID, base URL, SID tag set by the caller).
 * Then the caller registers its observers (quotas, media lifecycle) and
 * calls replica_start. NULL after printing why. */
replica *replica_open(server *sv, const replica_config *cfg,
                      const cs_options *opts, int *exit_code);
/* Applies the rest of the stream, then starts following it (follower) or
 * installs the journal hook and the publisher (primary). 0 or -1. */
int replica_start(replica *r);
/* Clean stop (no request runs any more): a primary publishes what it has
 * queued (bounded), the threads stop, the connection closes; frees r. */
void replica_close(replica *r);

/* Request brackets, on the request's thread, around the store call:
 * end waits, in synchronous mode, until the records the request wrote are
 * acknowledged by JetStream; if they are not (timeout, fenced) the reply
 * becomes 503 / 20503. */
void replica_request_begin(replica *r);
void replica_request_end(replica *r, reply *rp);
/* The same wait without blocking the request's thread, for a transport
 * that can park a request (http.c suspends the connection). After the
 * store call, replica_request_defer returns 0 when the reply can go now
 * (it is final: possibly turned into the 503), or 1 when it must wait:
 * then w->suspend(w->ctx) has been called, and w->wake(w->ctx) will be
 * called once, from another thread, when the outcome is known (acknowledged,
 * timed out, fenced or stopping); replica_request_finish then makes the
 * reply final. */
typedef struct replica_waiter {
    struct replica_waiter *next;
    uint64_t want, dir;
    struct timespec deadline;
    int outcome; /* 0 pending, 1 acknowledged, -1 not (msg says why) */
    char msg[400];
    void (*suspend)(void *ctx);
    void (*wake)(void *ctx);
    void *ctx;
} replica_waiter;
int replica_request_defer(replica *r, reply *rp, replica_waiter *w);
void replica_request_finish(replica *r, replica_waiter *w, reply *rp);
/* Decides every parked request now (503: stopping): before the transport
 * stops. */
void replica_release_waiters(replica *r);
/* A media upload's bytes travel with its record: the upload's thread
 * stages them before cs_media_create and unstages after. stage: 0, or -1
 * when they cannot be carried (larger than one NATS message): 413. */
int replica_media_stage(replica *r, const void *data, size_t n);
void replica_media_unstage(replica *r);

/* May this server change its store now (the writer, not fenced)? When not,
 * *why gets the reply's message. */
bool replica_writable(replica *r, const char **why);
/* Runs once when this server becomes the writer (at start for a primary,
 * at promotion for a follower), with the store's exclusive lock held:
 * main.c attaches the webhooks there, so only the writer delivers. When
 * this server is the writer already, fn runs at once. */
void replica_on_writer(replica *r, void (*fn)(void *ctx, cs_store *s),
                       void *ctx);

/* The replication endpoints: GET /healthz/writer (no credentials),
 * GET /replica and POST /replica/promote (account credentials). */
void replica_healthz_writer(replica *r, reply *rp);
void replica_status(replica *r, reply *rp);
void replica_promote(replica *r, reply *rp);

/* The stream's payloads, applied without NATS (used by the follower, and
 * by fuzz/fuzz_replica.c on bytes of any shape). replica_apply_frames:
 * a `rec` message's frames (docs/replication.md) applied to sv->store
 * under its exclusive lock, media frames into sv->media; *last gets the
 * seq of the last record applied. replica_load_media: a snapshot's media
 * frames (after its image), each for a media item sv->store holds. 0, or
 * -1 with why[0..cap) saying what was wrong (what came before it stays
 * applied: records are applied one by one, each all or nothing). */
int replica_apply_frames(server *sv, const uint8_t *p, size_t n,
                         uint64_t *last, char *why, size_t cap);
int replica_load_media(server *sv, const uint8_t *p, size_t n, char *why,
                       size_t cap);

typedef struct replica_stats {
    int role;                 /* replica_role */
    uint64_t term;
    uint64_t stream_seq;      /* the stream's last sequence, as last seen */
    uint64_t applied_seq;     /* stream sequence applied or published */
    uint64_t commits;         /* store commits published / applied */
    uint64_t lag_records;     /* records in the stream not applied yet */
    double lag_seconds;       /* age of the oldest of them */
    uint64_t published;       /* records published since start */
    uint64_t publish_errors;  /* publishes retried */
    uint64_t snapshots;       /* snapshots published since start */
} replica_stats;
/* Asks the stream for its head (a follower's lag): may take a round trip. */
void replica_stats_get(replica *r, replica_stats *out);

#endif
