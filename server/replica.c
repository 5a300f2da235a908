/* Replication over NATS JetStream (--nats): one stream per shard holds the
 * shard's history, the primary is its only writer, followers apply it.
 *
 * Invariants:
 * - The stream of shard K (CHATSTORE_S<K>) begins with a snapshot of the
 *   store the first primary started with (`snap` messages), followed by
 *   `rec` batches holding the store's journal records in commit order, and
 *   `term` markers written by promotions. Applying the stream in order from
 *   its first message rebuilds the writer's store byte for byte (the
 *   library's journal contract), media bytes included ('M' frames).
 * - A record reaches the stream only from the journal hook of the current
 *   writer, in commit order: the hook queues it under the store's
 *   exclusive lock, the publisher thread publishes the queue in order, each
 *   message with JetStream's expected-last-sequence set to the sequence the
 *   writer last wrote or applied. Another writer's message in between makes
 *   the publish fail: the log refuses a second writer (fencing), and the
 *   refused server turns FENCED and changes nothing any more.
 * - Synchronous mode: a request that changed the store is answered only
 *   after the message holding its last record was acknowledged by
 *   JetStream (then stored by a majority of the stream's replicas); if that
 *   does not happen in time, the reply is 503 (the outcome is unknown to
 *   the client, as with a timeout). Asynchronous mode answers at once.
 * - The writer lease (KV bucket CHATSTORE, key writer.s<K>: node and term)
 *   names the node that may write. A primary starts only if the lease is
 *   free or names it; a promotion takes the lease (compare-and-set on its
 *   revision), applies everything the stream holds, then writes a `term`
 *   marker, so any message the old writer still tries to publish fails its
 *   expected-last-sequence check.
 * - A synchronous request waits for that acknowledgement parked (its
 *   connection suspended, replica_request_defer) on r->waiters; every
 *   change of the acknowledged position, the role or the stopping state,
 *   and the publisher's 50 ms tick for deadlines, wake the parked requests
 *   whose outcome is known, each exactly once.
 * - Lock order: the store's lock before r->mu, r->mu before the transport's
 *   (a waiter's suspend and wake run under r->mu); nothing waits for the
 *   store while holding r->mu, and no NATS call is made while holding it.
 * - Service changes go to the cluster-wide directory (directory.c) after the
 *   shard's record holding them was acknowledged, in commit order; a new
 *   writer first reconciles the directory with its store.
 * - Compaction: a snapshot published by the publisher thread sits in the
 *   stream exactly after the commit it images (the records queued before
 *   it are published first, under the store's shared lock nothing new is
 *   queued); the stream is purged only below the previous snapshot.
 * - A follower applies messages in stream order, each once (a message at
 *   or below its position is skipped); a consumer that stalls while the
 *   stream has more is replaced by one from the next message.
 */
#include "replica.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "directory.h"

#define KV_BUCKET "CHATSTORE"
/* Bytes of a NATS message kept for the headers */
#define HEADROOM 1024
/* A primary's queue of records not yet published: past it, changes are
 * refused (503) rather than memory growing without bound. */
#define PEND_MAX ((size_t)256 << 20)
#define FRAME_RECORD 'R'
#define FRAME_MEDIA 'M'
#define FRAME_HEADER 5

typedef struct dirop {
    uint64_t seq;
    int op; /* 0 put, 1 delete, 2 clear */
    char sid[CS_SID_BUFSZ];
    char *json;
    size_t n;
} dirop;

struct replica {
    server *sv;
    replica_config cfg;
    char node[128];
    char stream[32], subject[48], lease_key[32];
    size_t max_payload;
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
    natsSubscription *sub; /* bootstrap and follower */
    uint64_t head_at_open; /* the stream's last sequence at open */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int role;
    uint64_t term;
    char fence_msg[400];
    bool stopping;
    bool promoting;

    /* primary: records queued, not yet acknowledged */
    uint8_t *pend;
    size_t pend_len, pend_cap;
    dirop *dq; /* dq[dq_head..dq_n): queued, oldest first */
    size_t dq_head, dq_n, dq_cap;
    uint64_t acked_commit;
    uint64_t dir_done; /* commit seq of the last directory change published */
    uint64_t stream_last; /* the stream sequence this server wrote/applied last */
    pthread_t pub_thr;
    bool pub_started;

    /* follower */
    pthread_t fol_thr;
    bool fol_started, fol_stop;
    uint64_t applied_commit;

    uint64_t published, publish_errors;
    replica_waiter *waiters; /* parked requests (replica_request_defer) */
    bool release;            /* replica_release_waiters: decide them all */
    uint64_t snap_first;      /* stream sequence of the last snapshot's
                                 first message (0: the stream's first) */
    uint64_t snapshots;       /* snapshots published since start */
    uint64_t snap_commit;     /* commit count at the last snapshot */
    void (*on_writer)(void *, cs_store *);
    void *on_writer_ctx;
    uint64_t observer_id;
};

static void fence(replica *r, const char *why);

static _Thread_local uint64_t tl_commit;
static _Thread_local uint64_t tl_dirseq; /* the request's last directory change */
static _Thread_local const void *tl_media;
static _Thread_local size_t tl_media_len;

static void logf_(replica *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(replica *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chatstore-server: shard %u: ", r->cfg.shard);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void deadline_in(struct timespec *t, unsigned ms) {
    clock_gettime(CLOCK_REALTIME, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static void sleep_ms(unsigned ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static const char *role_name(int role) {
    switch (role) {
    case REPLICA_PRIMARY: return "primary";
    case REPLICA_FOLLOWER: return "follower";
    case REPLICA_FENCED: return "fenced";
    default: return "broken";
    }
}

/* ---- parked requests --------------------------------------------------------- */

/* Under r->mu: is w's outcome known? Sets it. */
static bool decided(replica *r, replica_waiter *w) {
    if (r->acked_commit >= w->want && r->dir_done >= w->dir) {
        w->outcome = 1;
    } else if (r->role != REPLICA_PRIMARY) {
        w->outcome = -1;
        snprintf(w->msg, sizeof w->msg, "%s",
                 r->role == REPLICA_FENCED ? r->fence_msg
                                           : "This server stopped being the writer");
    } else if (r->release || r->stopping) {
        w->outcome = -1;
        snprintf(w->msg, sizeof w->msg,
                 "The server is stopping: the change may or may not be kept");
    } else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec > w->deadline.tv_sec ||
            (now.tv_sec == w->deadline.tv_sec && now.tv_nsec >= w->deadline.tv_nsec)) {
            w->outcome = -1;
            snprintf(w->msg, sizeof w->msg,
                     "The change was not acknowledged by the replication log in "
                     "time: it may or may not be kept");
        }
    }
    return w->outcome != 0;
}

/* Under r->mu: wakes every parked request whose outcome is known. */
static void wake_waiters(replica *r) {
    for (replica_waiter **p = &r->waiters; *p;) {
        replica_waiter *w = *p;
        if (decided(r, w)) {
            *p = w->next;
            w->next = NULL;
            w->wake(w->ctx);
        } else {
            p = &w->next;
        }
    }
}

/* ---- the lease ------------------------------------------------------------ */

/* "node=NAME term=T" */
static int lease_parse(const char *v, int n, char *node, size_t cap,
                       uint64_t *term) {
    char buf[300];
    if (n <= 0 || (size_t)n >= sizeof buf) return -1;
    memcpy(buf, v, (size_t)n);
    buf[n] = '\0';
    char *t = strstr(buf, " term=");
    if (strncmp(buf, "node=", 5) != 0 || !t) return -1;
    *t = '\0';
    size_t k = strlen(buf + 5);
    if (k >= cap) return -1;
    memcpy(node, buf + 5, k + 1);
    char *end;
    *term = strtoull(t + 6, &end, 10);
    return *end ? -1 : 0;
}

/* The lease's holder: 0 (node, term, rev filled), 1 (no lease), -1 (error) */
static int lease_get(replica *r, char *node, size_t cap, uint64_t *term,
                     uint64_t *rev) {
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, r->kv, r->lease_key);
    if (s == NATS_NOT_FOUND) return 1;
    if (s != NATS_OK) return -1;
    int rc = lease_parse(kvEntry_ValueString(e), kvEntry_ValueLen(e), node,
                         cap, term);
    *rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    return rc;
}

/* ---- frames and messages ------------------------------------------------- */

/* Room for need bytes in *p (capacity *cap, doubled from 64 KiB). 0, or
 * -1 out of memory (nothing changed). */
static int grow_to(uint8_t **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 65536;
    while (c < need) c *= 2;
    uint8_t *np = realloc(*p, c);
    if (!np) return -1;
    *p = np;
    *cap = c;
    return 0;
}

static int pend_reserve(replica *r, size_t more) {
    if (r->pend_len + more > PEND_MAX) return -1;
    return grow_to(&r->pend, &r->pend_cap, r->pend_len + more);
}

static void frame_put(uint8_t *p, uint8_t type, const void *data, size_t n) {
    p[0] = type;
    p[1] = (uint8_t)n;
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)(n >> 16);
    p[4] = (uint8_t)(n >> 24);
    memcpy(p + FRAME_HEADER, data, n);
}

static uint32_t frame_len(const uint8_t *p) {
    return (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 |
           (uint32_t)p[4] << 24;
}

static const char *hdr(natsMsg *m, const char *key) {
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK) return NULL;
    return v;
}

/* ---- applying the stream --------------------------------------------------- */

/* Puts a media item's bytes in place after its record was applied; a
 * non-empty *why (cap bytes) says what could not be kept. */
static int media_put(server *sv, const void *rec, size_t rlen,
                     const uint8_t *data, size_t n, char *why, size_t cap) {
    cs_journal_info info;
    if (cs_journal_record_info(rec, rlen, &info, NULL) ||
        info.op != CS_JOURNAL_MEDIA_CREATE)
        return 0;
    cs_media_view v;
    if (cs_media_fetch(sv->store, cs_str_c(info.service_sid),
                       cs_str_c(info.created_sid), &v))
        return 0;
    if (v.size != n) {
        snprintf(why, cap, "media %s has %llu bytes, its frame %zu",
                 info.created_sid, (unsigned long long)v.size, n);
        return -1;
    }
    blob *b = NULL;
    if (media_store_prepare(sv->media, (const char *)data, n, &b)) {
        snprintf(why, cap,
                 "media %s (%zu bytes) does not fit this server's media "
                 "memory: its content will be 404 here",
                 info.created_sid, n);
        return 0;
    }
    media_store_commit(sv->media, b, info.created_sid, info.service_sid,
                       v.date_created);
    return 0;
}

int replica_apply_frames(server *sv, const uint8_t *p, size_t n,
                         uint64_t *last, char *why, size_t cap) {
    cs_store *s = sv->store;
    why[0] = '\0';
    if (cs_store_lock_exclusive(s)) {
        snprintf(why, cap, "the store's lock failed");
        return -1;
    }
    int rc = 0;
    size_t i = 0;
    while (i < n) {
        if (n - i < FRAME_HEADER || frame_len(p + i) > n - i - FRAME_HEADER) {
            snprintf(why, cap, "a frame is cut short at byte %zu", i);
            rc = -1;
            break;
        }
        uint8_t type = p[i];
        size_t len = frame_len(p + i);
        const uint8_t *rec = p + i + FRAME_HEADER;
        if (type != FRAME_RECORD && type != FRAME_MEDIA) {
            snprintf(why, cap, "a frame of unknown type %u at byte %zu", type, i);
            rc = -1;
            break;
        }
        i += FRAME_HEADER + len;
        if (type != FRAME_RECORD) continue; /* media frames: with their record */
        bool applied = false;
        cs_decode_error de = {0, ""};
        cs_err e = cs_journal_apply(s, rec, len, &applied, &de);
        if (e) {
            uint64_t seq = 0;
            cs_journal_record_seq(rec, len, &seq);
            snprintf(why, cap, "record %" PRIu64 " cannot be applied: %s%s%s", seq,
                     cs_err_message(e), e == CS_E_BAD_RECORD ? ": " : "",
                     e == CS_E_BAD_RECORD ? de.reason : "");
            rc = -1;
            break;
        }
        if (applied) cs_journal_record_seq(rec, len, last); /* (not a skipped one) */
        if (applied && i < n && n - i >= FRAME_HEADER && p[i] == FRAME_MEDIA &&
            frame_len(p + i) <= n - i - FRAME_HEADER &&
            media_put(sv, rec, len, p + i + FRAME_HEADER, frame_len(p + i), why, cap)) {
            rc = -1;
            break;
        }
    }
    cs_store_unlock(s);
    return rc;
}

/* Applies a `rec` message's frames. 0, or -1 after logging why. */
static int apply_records(replica *r, const uint8_t *p, size_t n,
                         uint64_t sseq) {
    uint64_t last = 0;
    char why[400];
    int rc = replica_apply_frames(r->sv, p, n, &last, why, sizeof why);
    if (why[0]) logf_(r, "stream message %" PRIu64 ": %s", sseq, why);
    if (last) {
        pthread_mutex_lock(&r->mu);
        if (last > r->applied_commit) r->applied_commit = last;
        pthread_mutex_unlock(&r->mu);
    }
    return rc;
}

/* One stream message after the snapshot. 0 or -1 (the follower stops). */
static int apply_msg(replica *r, natsMsg *m, uint64_t sseq, int64_t ts) {
    const char *kind = hdr(m, "Chatstore-Kind");
    int rc = 0;
    if (kind && !strcmp(kind, "rec")) {
        rc = apply_records(r, (const uint8_t *)natsMsg_GetData(m),
                           (size_t)natsMsg_GetDataLength(m), sseq);
    } else if (kind && !strcmp(kind, "term")) {
        const char *t = hdr(m, "Chatstore-Term");
        uint64_t term = t ? strtoull(t, NULL, 10) : 0;
        pthread_mutex_lock(&r->mu);
        if (term > r->term) r->term = term;
        pthread_mutex_unlock(&r->mu);
    } else if (kind && (!strcmp(kind, "snap") || !strcmp(kind, "snap-part"))) {
        /* a later snapshot: the records before it were applied already */
    } else {
        logf_(r, "stream message %" PRIu64 " has an unknown kind", sseq);
        rc = -1;
    }
    pthread_mutex_lock(&r->mu);
    if (!rc && sseq > r->stream_last) r->stream_last = sseq;
    (void)ts;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* The next message of the ordered consumer: 0 with *m, 1 on timeout,
 * -1 on error. */
static int next_msg(replica *r, natsMsg **m, uint64_t *sseq, int64_t *ts,
                    int64_t timeout_ms) {
    natsStatus s = natsSubscription_NextMsg(m, r->sub, timeout_ms);
    if (s == NATS_TIMEOUT) return 1;
    if (s != NATS_OK) return -1;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, *m) != NATS_OK) {
        natsMsg_Destroy(*m);
        return -1;
    }
    *sseq = meta->Sequence.Stream;
    *ts = meta->Timestamp;
    jsMsgMetaData_Destroy(meta);
    return 0;
}

static uint64_t stream_head(replica *r);
static int subscribe_from(replica *r, uint64_t seq);

static void *follow_main(void *arg) {
    replica *r = arg;
    int64_t last_msg = now_ns(), last_check = last_msg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        bool stop = r->fol_stop || r->stopping;
        pthread_mutex_unlock(&r->mu);
        if (stop) break;
        natsMsg *m = NULL;
        uint64_t sseq = 0;
        int64_t ts = 0;
        int k = next_msg(r, &m, &sseq, &ts, 100);
        if (k) {
            /* Nothing for a second while the stream has more (the NATS
             * server this consumer lived on went away, say): a new
             * consumer from the next message. */
            int64_t now = now_ns();
            if (now - last_msg > 1000000000 && now - last_check > 1000000000) {
                last_check = now;
                uint64_t head = stream_head(r);
                if (head > r->stream_last) {
                    logf_(r, "the stream has %" PRIu64 " messages this follower "
                             "has not received: reading again from %" PRIu64,
                          head - r->stream_last, r->stream_last + 1);
                    subscribe_from(r, r->stream_last + 1);
                }
            }
            if (k < 0) sleep_ms(50);
            continue;
        }
        last_msg = now_ns();
        if (sseq <= r->stream_last) { /* delivered again: applied already */
            natsMsg_Destroy(m);
            continue;
        }
        int rc = apply_msg(r, m, sseq, ts);
        natsMsg_Destroy(m);
        if (rc) {
            pthread_mutex_lock(&r->mu);
            r->role = REPLICA_BROKEN;
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            logf_(r, "this follower stopped following: restart it");
            break;
        }
    }
    return NULL;
}

/* ---- snapshot in the stream ------------------------------------------------ */

typedef struct growbuf {
    uint8_t *p;
    size_t n, cap;
} growbuf;

static int grow_write(void *ctx, const void *buf, size_t len) {
    growbuf *g = ctx;
    if (grow_to(&g->p, &g->cap, g->n + len)) return -1;
    memcpy(g->p + g->n, buf, len);
    g->n += len;
    return 0;
}

typedef struct readbuf {
    const uint8_t *p;
    size_t n, off;
} readbuf;

static ptrdiff_t read_buf(void *ctx, void *buf, size_t len) {
    readbuf *rb = ctx;
    size_t k = rb->n - rb->off < len ? rb->n - rb->off : len;
    memcpy(buf, rb->p + rb->off, k);
    rb->off += k;
    return (ptrdiff_t)k;
}

/* Publishes one message with the writer's checks. 0 (*seq: its stream
 * sequence), 1 (refused: another writer's message is in the stream), -1
 * (not acknowledged; retrying may help). */
static int publish_once(replica *r, const char *kind, const void *data,
                        size_t n, uint64_t expect, const char *msg_id,
                        uint64_t commit, uint64_t term, uint64_t *seq,
                        char *why, size_t whycap, const char *image_bytes) {
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, r->subject, NULL, data, (int)n) != NATS_OK) return -1;
    char num[32];
    natsMsgHeader_Set(m, "Chatstore-Kind", kind);
    snprintf(num, sizeof num, "%" PRIu64, commit);
    natsMsgHeader_Set(m, "Chatstore-Commit", num);
    snprintf(num, sizeof num, "%" PRIu64, term);
    natsMsgHeader_Set(m, "Chatstore-Term", num);
    if (image_bytes) natsMsgHeader_Set(m, "Chatstore-Image-Bytes", image_bytes);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.ExpectLastSeq = expect; /* 0: the stream is empty, nothing to check */
    po.MaxWait = 2000;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_PublishMsg(&pa, r->js, m, &po, &jerr);
    natsMsg_Destroy(m);
    if (s == NATS_OK) {
        *seq = pa->Sequence;
        jsPubAck_Destroy(pa);
        return 0;
    }
    if (jerr == JSStreamWrongLastSequenceErr) {
        /* Ours, acknowledged before but the acknowledgement was lost? */
        natsMsg *last = NULL;
        int rc = 1;
        if (js_GetLastMsg(&last, r->js, r->stream, r->subject, NULL, NULL) ==
            NATS_OK) {
            const char *id = hdr(last, "Nats-Msg-Id");
            if (id && !strcmp(id, msg_id)) {
                *seq = natsMsg_GetSequence(last);
                rc = 0;
            } else {
                snprintf(why, whycap,
                         "the stream of shard %u has message %" PRIu64
                         " that this server did not write (it expected %" PRIu64
                         " to be the last)",
                         r->cfg.shard, natsMsg_GetSequence(last), expect);
            }
            natsMsg_Destroy(last);
        } else {
            snprintf(why, whycap,
                     "the stream of shard %u moved past message %" PRIu64,
                     r->cfg.shard, expect);
        }
        return rc;
    }
    snprintf(why, whycap, "%s (JetStream error %d)", natsStatus_GetText(s),
             (int)jerr);
    return -1;
}

/* A media item's bytes after a snapshot image: 'M' frame of
 * [service SID 34][media SID 34][date_created i64le][bytes]. */
#define CS__SIDLEN 34
#define SNAP_MEDIA_HEAD (2 * CS__SIDLEN + 8)

static void snap_media(void *ctx, const char *sid, const char *service_sid,
                       const char *data, size_t n, int64_t created) {
    growbuf *g = ctx;
    if (!g->p && g->cap) return; /* an earlier append failed */
    uint8_t h[FRAME_HEADER + SNAP_MEDIA_HEAD];
    size_t len = SNAP_MEDIA_HEAD + n;
    h[0] = FRAME_MEDIA;
    for (int i = 0; i < 4; i++) h[1 + i] = (uint8_t)(len >> (8 * i));
    memcpy(h + FRAME_HEADER, service_sid, CS__SIDLEN);
    memcpy(h + FRAME_HEADER + CS__SIDLEN, sid, CS__SIDLEN);
    for (int i = 0; i < 8; i++)
        h[FRAME_HEADER + 2 * CS__SIDLEN + i] = (uint8_t)((uint64_t)created >> (8 * i));
    if (grow_write(g, h, sizeof h) || grow_write(g, data, n)) {
        free(g->p);
        g->p = NULL; /* cap stays: marks the failure */
    }
}

/* Publishes g[0..n) (an image of image_len bytes, then media frames) as
 * snapshot messages after the stream's message r->stream_last. 0 or -1. */
static int publish_image(replica *r, const growbuf *g, size_t image_len,
                         uint64_t commit) {
    size_t chunk = r->max_payload - HEADROOM, parts = (g->n + chunk - 1) / chunk;
    if (!parts) parts = 1;
    char id[128], why[400], ib[32];
    snprintf(ib, sizeof ib, "%zu", image_len);
    uint64_t first = 0;
    for (size_t i = 0; i < parts; i++) {
        size_t off = i * chunk, k = g->n - off < chunk ? g->n - off : chunk;
        snprintf(id, sizeof id, "s%u-t%" PRIu64 "-snap%" PRIu64 "-%zu-of-%zu",
                 r->cfg.shard, r->term, commit, i + 1, parts);
        uint64_t seq = 0;
        int rc;
        for (int attempt = 0;; attempt++) {
            rc = publish_once(r, i + 1 == parts ? "snap" : "snap-part",
                              g->p + off, k, r->stream_last, id, commit, r->term,
                              &seq, why, sizeof why, ib);
            if (rc >= 0 || attempt == 100) break;
            sleep_ms(100);
        }
        if (rc == 1) fence(r, why);
        if (rc) {
            logf_(r, "cannot publish a snapshot: %s", why);
            return -1;
        }
        pthread_mutex_lock(&r->mu);
        r->stream_last = seq;
        pthread_mutex_unlock(&r->mu);
        if (!first) first = seq;
    }
    r->snap_first = first;
    return 0;
}

static int publish_snapshot(replica *r) {
    growbuf g = {0};
    cs_err e = cs_snapshot_save(r->sv->store, grow_write, &g);
    if (e) {
        free(g.p);
        logf_(r, "cannot save the first snapshot: %s", cs_err_message(e));
        return -1;
    }
    int rc = publish_image(r, &g, g.n, 0);
    free(g.p);
    return rc;
}

int replica_load_media(server *sv, const uint8_t *p, size_t n, char *why,
                       size_t cap) {
    for (size_t i = 0; i < n;) {
        size_t len = n - i >= FRAME_HEADER ? frame_len(p + i) : 0;
        if (n - i < FRAME_HEADER || p[i] != FRAME_MEDIA || len < SNAP_MEDIA_HEAD ||
            len > n - i - FRAME_HEADER) {
            snprintf(why, cap, "media frames damaged at byte %zu", i);
            return -1;
        }
        const uint8_t *f = p + i + FRAME_HEADER;
        char is[CS_SID_BUFSZ], me[CS_SID_BUFSZ];
        memcpy(is, f, CS__SIDLEN);
        is[CS__SIDLEN] = '\0';
        memcpy(me, f + CS__SIDLEN, CS__SIDLEN);
        me[CS__SIDLEN] = '\0';
        uint64_t created = 0;
        for (int k = 0; k < 8; k++) created |= (uint64_t)f[2 * CS__SIDLEN + k] << (8 * k);
        /* only for a media item the store holds */
        cs_media_view v;
        if (cs_media_fetch(sv->store, cs_str_c(is), cs_str_c(me), &v) != CS_OK) {
            snprintf(why, cap, "media %.34s of the image is not in the store", me);
            return -1;
        }
        if (v.size != len - SNAP_MEDIA_HEAD) {
            snprintf(why, cap, "media %s has %llu bytes, its frame %zu", v.sid,
                     (unsigned long long)v.size, len - SNAP_MEDIA_HEAD);
            return -1;
        }
        blob *b = NULL;
        if (!media_store_prepare(sv->media, (const char *)f + SNAP_MEDIA_HEAD,
                                 len - SNAP_MEDIA_HEAD, &b)) {
            /* the store's SIDs: NUL-safe and canonical */
            media_store_drop(sv->media, v.sid);
            media_store_commit(sv->media, b, v.sid, v.service_sid, (int64_t)created);
        }
        i += FRAME_HEADER + len;
    }
    return 0;
}

/* Reads the stream's leading snapshot into a store. 0 or -1. */
static int load_snapshot(replica *r, const cs_options *opts) {
    growbuf g = {0};
    size_t image_len = SIZE_MAX;
    for (;;) {
        natsMsg *m = NULL;
        uint64_t sseq = 0;
        int64_t ts = 0;
        int k = next_msg(r, &m, &sseq, &ts, 5000);
        if (k) {
            logf_(r, "the stream's snapshot did not arrive");
            free(g.p);
            return -1;
        }
        const char *kind = hdr(m, "Chatstore-Kind");
        bool last = kind && !strcmp(kind, "snap");
        if (!kind || (!last && strcmp(kind, "snap-part"))) {
            logf_(r, "stream message %" PRIu64 " should be the snapshot", sseq);
            natsMsg_Destroy(m);
            free(g.p);
            return -1;
        }
        if (grow_write(&g, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m))) {
            natsMsg_Destroy(m);
            free(g.p);
            return -1;
        }
        const char *t = hdr(m, "Chatstore-Term");
        if (t && strtoull(t, NULL, 10) > r->term) r->term = strtoull(t, NULL, 10);
        const char *ib = hdr(m, "Chatstore-Image-Bytes");
        if (ib) image_len = (size_t)strtoull(ib, NULL, 10);
        if (!r->snap_first) r->snap_first = sseq;
        natsMsg_Destroy(m);
        r->stream_last = sseq;
        (void)ts;
        if (last) break;
    }
    if (image_len > g.n) image_len = g.n;
    readbuf rb = {g.p, image_len, 0};
    cs_decode_error de = {0, ""};
    cs_err e = cs_snapshot_load(opts, read_buf, &rb, &r->sv->store, &de);
    if (e) {
        free(g.p);
        logf_(r, "the stream's snapshot does not load: %s%s%s",
              cs_err_message(e), e == CS_E_BAD_SNAPSHOT ? ": " : "",
              e == CS_E_BAD_SNAPSHOT ? de.reason : "");
        return -1;
    }
    /* the media bytes the snapshot carries after its image */
    char why[400];
    if (replica_load_media(r->sv, g.p + image_len, g.n - image_len, why,
                           sizeof why))
        logf_(r, "the snapshot's media: %s", why);
    free(g.p);
    return 0;
}

/* ---- the primary's side ----------------------------------------------------- */

static int on_journal(void *ctx, uint64_t seq, const void *rec, size_t len) {
    replica *r = ctx;
    size_t media = 0;
    if (tl_media) {
        cs_journal_info info;
        if (!cs_journal_record_info(rec, len, &info, NULL) &&
            info.op == CS_JOURNAL_MEDIA_CREATE)
            media = tl_media_len;
    }
    pthread_mutex_lock(&r->mu);
    int rc = -1;
    if (r->role == REPLICA_PRIMARY && !r->stopping &&
        !pend_reserve(r, 2 * FRAME_HEADER + len + media)) {
        frame_put(r->pend + r->pend_len, FRAME_RECORD, rec, len);
        r->pend_len += FRAME_HEADER + len;
        if (media) {
            frame_put(r->pend + r->pend_len, FRAME_MEDIA, tl_media, media);
            r->pend_len += FRAME_HEADER + media;
        }
        tl_commit = seq;
        pthread_cond_broadcast(&r->cv);
        rc = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Appends to the directory queue (under r->mu). 0, or -1 out of memory. */
static int dq_push(replica *r, dirop d) {
    if (r->dq_head == r->dq_n) r->dq_head = r->dq_n = 0; /* drained: reuse */
    if (r->dq_n == r->dq_cap) {
        if (r->dq_head) { /* room at the front: slide down once */
            memmove(r->dq, r->dq + r->dq_head, (r->dq_n - r->dq_head) * sizeof *r->dq);
            r->dq_n -= r->dq_head;
            r->dq_head = 0;
        } else {
            size_t cap = r->dq_cap ? 2 * r->dq_cap : 64;
            dirop *q = realloc(r->dq, cap * sizeof *q);
            if (!q) return -1;
            r->dq = q;
            r->dq_cap = cap;
        }
    }
    r->dq[r->dq_n++] = d;
    return 0;
}

/* The oldest queued directory change, when its seq is at most upto (under
 * r->mu). */
static const dirop *dq_first(const replica *r, uint64_t upto) {
    return r->dq_head < r->dq_n && r->dq[r->dq_head].seq <= upto ? &r->dq[r->dq_head]
                                                                 : NULL;
}

/* Service changes for the directory, queued in commit order (on the
 * mutating thread, under the store's lock). */
static void on_event(void *ctx, const cs_event *ev) {
    replica *r = ctx;
    int op;
    if (ev->type == CS_EVENT_SERVICE_CREATED || ev->type == CS_EVENT_SERVICE_UPDATED)
        op = 0;
    else if (ev->type == CS_EVENT_SERVICE_DELETED)
        op = 1;
    else if (ev->type == CS_EVENT_STORE_CLEARED)
        op = 2;
    else
        return;
    pthread_mutex_lock(&r->mu);
    bool primary = r->role == REPLICA_PRIMARY;
    pthread_mutex_unlock(&r->mu);
    if (!primary || !r->sv->directory) return;
    dirop d = {ev->seq, op, "", NULL, 0};
    if (op != 2) snprintf(d.sid, sizeof d.sid, "%s", ev->service->sid);
    if (op == 0) {
        cs_buf b;
        cs_buf_init(&b, NULL);
        if (cs_render_service(r->sv->store, ev->service, &b) == CS_OK &&
            (d.json = malloc(b.len + 1))) {
            memcpy(d.json, b.data, b.len);
            d.n = b.len;
        }
        cs_buf_free(&b);
        if (!d.json) {
            logf_(r, "out of memory: service %s is not in the directory",
                  d.sid);
            return;
        }
    }
    pthread_mutex_lock(&r->mu);
    if (dq_push(r, d)) {
        pthread_mutex_unlock(&r->mu);
        free(d.json);
        logf_(r, "out of memory: service %s is not in the directory", d.sid);
        return;
    }
    tl_dirseq = d.seq;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void fence(replica *r, const char *why) {
    pthread_mutex_lock(&r->mu);
    if (r->role == REPLICA_PRIMARY) {
        r->role = REPLICA_FENCED;
        snprintf(r->fence_msg, sizeof r->fence_msg,
                 "This server is fenced: it is no longer the writer of shard %u: %s",
                 r->cfg.shard, why);
        logf_(r, "fenced: %s; this server changes nothing any more: restart "
                 "it with --follow",
              why);
    }
    pthread_cond_broadcast(&r->cv);
    wake_waiters(r);
    pthread_mutex_unlock(&r->mu);
}

/* The lease still names this node? Checked while idle, so a deposed
 * primary stops taking writes even when none arrives. */
static void lease_check(replica *r) {
    char node[200];
    uint64_t term = 0, rev = 0;
    if (lease_get(r, node, sizeof node, &term, &rev) == 0 &&
        (strcmp(node, r->node) != 0 || term != r->term)) {
        char why[400];
        snprintf(why, sizeof why, "the writer lease names node %s (term %" PRIu64 ")",
                 node, term);
        fence(r, why);
    }
}

/* Publishes buf[0..n) (whole frames) as messages of at most max_payload;
 * *last gets the seq of the last record acknowledged. 0, 1 (fenced) or -1
 * (stopping before it was acknowledged). */
static int publish_frames(replica *r, const uint8_t *buf, size_t n,
                          uint64_t *last_out) {
    size_t limit = r->max_payload - HEADROOM, i = 0;
    while (i < n) {
        size_t j = i, records = 0;
        uint64_t first = 0, last = 0;
        while (j < n) {
            size_t f = FRAME_HEADER + frame_len(buf + j);
            if (j > i && j - i + f > limit) break;
            if (buf[j] == FRAME_RECORD) {
                uint64_t seq = 0;
                cs_journal_record_seq(buf + j + FRAME_HEADER, frame_len(buf + j), &seq);
                if (!first) first = seq;
                last = seq;
                records++;
            }
            j += f;
        }
        char id[96], why[400];
        snprintf(id, sizeof id, "s%u-t%" PRIu64 "-c%" PRIu64, r->cfg.shard,
                 r->term, first);
        for (unsigned attempt = 0;; attempt++) {
            uint64_t seq = 0;
            int rc = publish_once(r, "rec", buf + i, j - i, r->stream_last, id,
                                  last, r->term, &seq, why, sizeof why, NULL);
            if (rc == 0) {
                pthread_mutex_lock(&r->mu);
                r->stream_last = seq;
                r->published += records;
                pthread_mutex_unlock(&r->mu);
                if (last) *last_out = last;
                break;
            }
            if (rc == 1) {
                fence(r, why);
                return 1;
            }
            pthread_mutex_lock(&r->mu);
            r->publish_errors++;
            bool stop = r->stopping && attempt >= 20;
            pthread_mutex_unlock(&r->mu);
            if (attempt % 20 == 0)
                logf_(r, "publishing records %" PRIu64 "-%" PRIu64
                         " failed (%s): retrying",
                      first, last, why);
            if (stop) return -1;
            if (attempt % 10 == 9) lease_check(r);
            if (r->role != REPLICA_PRIMARY) return 1;
            sleep_ms(attempt < 10 ? 20 : 200);
        }
        i = j;
    }
    return 0;
}

static void publish_dirops(replica *r, uint64_t upto) {
    for (;;) {
        pthread_mutex_lock(&r->mu);
        const dirop *first = dq_first(r, upto);
        if (!first) {
            pthread_mutex_unlock(&r->mu);
            return;
        }
        dirop d = *first;
        r->dq_head++;
        pthread_mutex_unlock(&r->mu);
        directory *dir = r->sv->directory;
        /* retried like the records (an entry stored twice changes nothing:
         * a put replaces, a delete or clear of what is gone is a no-op) */
        for (unsigned attempt = 0;; attempt++) {
            int rc = d.op == 0   ? directory_put(dir, r->cfg.shard, d.sid, d.json, d.n)
                     : d.op == 1 ? directory_del(dir, r->cfg.shard, d.sid)
                                 : directory_clear(dir, r->cfg.shard);
            if (!rc) break;
            pthread_mutex_lock(&r->mu);
            bool give_up = (r->stopping && attempt >= 3) || r->role != REPLICA_PRIMARY;
            pthread_mutex_unlock(&r->mu);
            if (attempt % 10 == 0 || give_up)
                logf_(r, "the directory did not take the change of %s%s",
                      d.op == 2 ? "a clear" : d.sid, give_up ? "" : ": retrying");
            if (give_up) break;
            sleep_ms(200);
        }
        free(d.json);
        pthread_mutex_lock(&r->mu);
        if (d.seq > r->dir_done) r->dir_done = d.seq;
        pthread_cond_broadcast(&r->cv);
        wake_waiters(r);
        pthread_mutex_unlock(&r->mu);
    }
}

/* One batch taken from the queue: its records published, then the
 * directory entries they carry; the acknowledged position moves and the
 * parked requests it decides wake. Same return as publish_frames. */
static int publish_batch(replica *r, const uint8_t *buf, size_t n,
                         uint64_t *last) {
    *last = 0;
    int rc = n ? publish_frames(r, buf, n, last) : 0;
    if (rc || !*last) return rc;
    publish_dirops(r, *last);
    pthread_mutex_lock(&r->mu);
    if (*last > r->acked_commit) r->acked_commit = *last;
    pthread_cond_broadcast(&r->cv);
    wake_waiters(r);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* A new snapshot in the stream, then the messages before the previous
 * snapshot purged: the stream keeps two snapshots' worth of history, so a
 * follower less than one interval behind never finds its next message
 * gone. Run by the publisher thread: under the store's shared lock it
 * takes the records queued so far (commits up to C) and saves the image of
 * commit C with the media bytes; it publishes those records, then the
 * image, so the image sits in the stream exactly after commit C. */
static void compact(replica *r) {
    cs_store *s = r->sv->store;
    growbuf g = {0};
    if (cs_store_lock_shared(s)) return;
    pthread_mutex_lock(&r->mu);
    uint8_t *pre = r->pend;
    size_t pre_n = r->pend_len;
    r->pend = NULL;
    r->pend_len = r->pend_cap = 0;
    pthread_mutex_unlock(&r->mu);
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    cs_err e = cs_snapshot_save(s, grow_write, &g);
    size_t image_len = g.n;
    if (!e) media_store_each(r->sv->media, snap_media, &g);
    cs_store_unlock(s);
    uint64_t last;
    int rc = publish_batch(r, pre, pre_n, &last);
    free(pre);
    if (rc || e || !g.p) {
        if (e || !g.p) logf_(r, "no snapshot this time: out of memory");
        free(g.p);
        return;
    }
    uint64_t prev = r->snap_first;
    if (publish_image(r, &g, image_len, st.commits) == 0) {
        pthread_mutex_lock(&r->mu);
        r->snapshots++;
        pthread_mutex_unlock(&r->mu);
        if (prev > 1) {
            jsOptions jo;
            jsOptions_Init(&jo);
            jo.Stream.Purge.Sequence = prev; /* up to, not including */
            jsErrCode jerr = 0;
            natsStatus ps = js_PurgeStream(r->js, r->stream, &jo, &jerr);
            if (ps != NATS_OK)
                logf_(r, "purging the stream below %" PRIu64 " failed: %s", prev,
                      natsStatus_GetText(ps));
        }
    }
    free(g.p);
}

static void *publish_main(void *arg) {
    replica *r = arg;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int64_t lease_at = now_ns();
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (r->role != REPLICA_PRIMARY) break;
        if (!r->pend_len && dq_first(r, r->acked_commit)) {
            /* a service change whose record went out before its observer
             * ran: its directory entry follows now */
            uint64_t upto = r->acked_commit;
            pthread_mutex_unlock(&r->mu);
            publish_dirops(r, upto);
            pthread_mutex_lock(&r->mu);
            continue;
        }
        if (!r->pend_len) {
            if (r->stopping) break;
            /* parked requests: their deadlines are checked every 50 ms */
            struct timespec t;
            deadline_in(&t, r->waiters ? 50 : 1000);
            pthread_cond_timedwait(&r->cv, &r->mu, &t);
            wake_waiters(r);
            int64_t now = now_ns();
            if (!r->pend_len && !r->stopping && now - lease_at > 1000000000) {
                lease_at = now;
                pthread_mutex_unlock(&r->mu);
                lease_check(r);
                pthread_mutex_lock(&r->mu);
            }
            continue;
        }
        /* take the queue: the hook goes on filling the other buffer */
        uint8_t *t = r->pend;
        size_t n = r->pend_len, tc = r->pend_cap;
        r->pend = buf;
        r->pend_cap = cap;
        r->pend_len = 0;
        buf = t;
        cap = tc;
        pthread_mutex_unlock(&r->mu);
        uint64_t last;
        int rc = publish_batch(r, buf, n, &last);
        pthread_mutex_lock(&r->mu);
        if (rc) break;
        if (last && r->cfg.snapshot_records) {
            if (last - r->snap_commit >= r->cfg.snapshot_records && !r->stopping) {
                pthread_mutex_unlock(&r->mu);
                compact(r);
                pthread_mutex_lock(&r->mu);
                r->snap_commit = last;
            }
        }
    }
    pthread_cond_broadcast(&r->cv);
    wake_waiters(r);
    pthread_mutex_unlock(&r->mu);
    free(buf);
    return NULL;
}

/* ---- reconciling the directory with the store ---------------------------- */

/* A writer that died between a service change's record and its directory
 * entry left the directory behind its store: a new writer (a promoted
 * follower, or a primary restarted) compares the two before it takes any
 * write, and queues what differs (a put for a service missing or rendered
 * otherwise, a delete for an entry whose service is gone) ahead of every
 * later change. */
typedef struct dirent_ {
    char sid[CS_SID_BUFSZ];
    char *json;
    size_t len;
} dirent_;

typedef struct dirview {
    dirent_ *e; /* sorted by SID once collected */
    size_t n, cap;
    bool failed;
} dirview;

static void dirview_add(void *ctx, const char *sid, const char *json, size_t n) {
    dirview *v = ctx;
    if (v->failed) return;
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        dirent_ *ne = realloc(v->e, cap * sizeof *ne);
        if (!ne) {
            v->failed = true;
            return;
        }
        v->e = ne;
        v->cap = cap;
    }
    dirent_ *d = &v->e[v->n];
    if (!(d->json = malloc(n + 1))) {
        v->failed = true;
        return;
    }
    memcpy(d->json, json, n);
    d->len = n;
    snprintf(d->sid, sizeof d->sid, "%s", sid);
    v->n++;
}

static int dirent_cmp(const void *a, const void *b) {
    return strcmp(((const dirent_ *)a)->sid, ((const dirent_ *)b)->sid);
}

static void dirview_free(dirview *v) {
    for (size_t i = 0; i < v->n; i++) free(v->e[i].json);
    free(v->e);
}

/* Under the store's exclusive lock, before the role changes: queues (with
 * seq = the store's commit count, so they go out first) what the
 * directory misses: a put for each service whose entry is missing or
 * differs, a delete for each entry whose service is gone. */
static void reconcile(replica *r, dirview *v, uint64_t commits) {
    cs_store *s = r->sv->store;
    if (v->n > 1) qsort(v->e, v->n, sizeof *v->e, dirent_cmp);
    cs_page_params q = {0};
    q.page_size_value = 1000;
    cs_page pg;
    cs_buf b;
    cs_buf_init(&b, NULL);
    size_t puts = 0, dels = 0;
    char token[CS_TOKEN_BUFSZ] = "";
    for (;;) {
        q.page_token = token[0] ? cs_str_c(token) : (cs_str){NULL, 0};
        if (cs_service_list(s, &q, &pg)) break;
        cs_service_view sv;
        while (cs_page_next_service(s, &pg, &sv)) {
            dirent_ key;
            snprintf(key.sid, sizeof key.sid, "%s", sv.sid);
            const dirent_ *have =
                v->n ? bsearch(&key, v->e, v->n, sizeof *v->e, dirent_cmp) : NULL;
            cs_buf_reset(&b);
            if (cs_render_service(s, &sv, &b)) continue;
            if (have && have->len == b.len && !memcmp(have->json, b.data, b.len))
                continue;
            dirop d = {commits, 0, "", malloc(b.len + 1), b.len};
            if (!d.json) continue;
            memcpy(d.json, b.data, b.len);
            snprintf(d.sid, sizeof d.sid, "%s", sv.sid);
            pthread_mutex_lock(&r->mu);
            if (dq_push(r, d)) free(d.json); else puts++;
            pthread_mutex_unlock(&r->mu);
        }
        if (!pg.next_token[0]) break;
        memcpy(token, pg.next_token, sizeof token);
    }
    cs_buf_free(&b);
    for (size_t k = 0; k < v->n; k++) {
        cs_service_view sv;
        if (cs_service_fetch(s, cs_str_c(v->e[k].sid), &sv) != CS_E_NOT_FOUND) continue;
        dirop d = {commits, 1, "", NULL, 0};
        snprintf(d.sid, sizeof d.sid, "%s", v->e[k].sid);
        pthread_mutex_lock(&r->mu);
        if (!dq_push(r, d)) dels++;
        pthread_mutex_unlock(&r->mu);
    }
    if (puts || dels)
        logf_(r, "the directory missed changes of this shard: %zu put, %zu deleted again",
              puts, dels);
}

/* The store becomes this server's to write: hook, role, publisher, then
 * the caller's on_writer. Under the store's exclusive lock. */
static int become_writer(replica *r) {
    cs_store *s = r->sv->store;
    dirview v = {0};
    if (r->sv->directory) directory_each(r->sv->directory, r->cfg.shard, dirview_add, &v);
    if (cs_store_lock_exclusive(s)) {
        dirview_free(&v);
        return -1;
    }
    if (r->sv->directory && !v.failed) {
        cs_store_stats st0;
        cs_store_stats_get(s, &st0);
        reconcile(r, &v, st0.commits);
    }
    dirview_free(&v);
    cs_store_set_journal(s, on_journal, r);
    pthread_mutex_lock(&r->mu);
    r->role = REPLICA_PRIMARY;
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    r->acked_commit = st.commits;
    r->snap_commit = st.commits;
    pthread_mutex_unlock(&r->mu);
    if (r->on_writer) r->on_writer(r->on_writer_ctx, s);
    cs_store_unlock(s);
    if (pthread_create(&r->pub_thr, NULL, publish_main, r)) {
        fence(r, "the publisher thread did not start");
        return -1;
    }
    r->pub_started = true;
    return 0;
}

/* ---- opening ----------------------------------------------------------------- */

static int ensure_stream(replica *r) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, r->js, r->stream, NULL, &jerr);
    if (s == NATS_OK) {
        r->head_at_open = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
        return 0;
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subj[1] = {r->subject};
    sc.Name = r->stream;
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = (int64_t)r->cfg.replicas;
    s = js_AddStream(&si, r->js, &sc, NULL, &jerr);
    if (s == NATS_OK || jerr == JSStreamNameExistErr) {
        if (si) jsStreamInfo_Destroy(si);
        si = NULL;
        if (js_GetStreamInfo(&si, r->js, r->stream, NULL, &jerr) == NATS_OK) {
            r->head_at_open = si->State.LastSeq;
            jsStreamInfo_Destroy(si);
            return 0;
        }
    }
    logf_(r, "cannot create stream %s: %s (JetStream error %d)", r->stream,
          natsStatus_GetText(s), (int)jerr);
    return -1;
}

static int ensure_kv(replica *r) {
    natsStatus s = js_KeyValue(&r->kv, r->js, KV_BUCKET);
    if (s == NATS_OK) return 0;
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = KV_BUCKET;
    kc.History = 1;
    kc.Replicas = (int)r->cfg.replicas;
    kc.StorageType = js_FileStorage;
    s = js_CreateKeyValue(&r->kv, r->js, &kc);
    if (s != NATS_OK) s = js_KeyValue(&r->kv, r->js, KV_BUCKET);
    if (s != NATS_OK) {
        logf_(r, "cannot open the key-value bucket %s: %s", KV_BUCKET,
              natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

/* A primary's lease: taken when free, kept when it names this node.
 * 0, or REPLICA_EXIT_FENCED / -1 after printing why. */
static int take_lease(replica *r) {
    for (int attempt = 0; attempt < 50; attempt++) {
        char node[200];
        uint64_t term = 0, rev = 0;
        int g = lease_get(r, node, sizeof node, &term, &rev);
        if (g == 0) {
            if (strcmp(node, r->node) != 0) {
                fprintf(stderr,
                        "chatstore-server: fenced: shard %u's writer is node %s "
                        "(term %" PRIu64 "), not %s: start it with --follow\n",
                        r->cfg.shard, node, term, r->node);
                return REPLICA_EXIT_FENCED;
            }
            r->term = term;
            return 0;
        }
        if (g == 1) {
            char v[300];
            int n = snprintf(v, sizeof v, "node=%s term=1", r->node);
            uint64_t nrev = 0;
            if (kvStore_Create(&nrev, r->kv, r->lease_key, v, n) == NATS_OK) {
                r->term = 1;
                return 0;
            }
        }
        sleep_ms(100);
    }
    logf_(r, "cannot read or take the writer lease %s", r->lease_key);
    return -1;
}

/* An ordered consumer from stream sequence seq (0: the first message),
 * replacing the current one. 0 or -1. */
static int subscribe_from(replica *r, uint64_t seq) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    so.Config.DeliverPolicy = seq ? js_DeliverByStartSequence : js_DeliverAll;
    so.Config.OptStartSeq = seq;
    jsErrCode jerr = 0;
    natsSubscription *sub = NULL;
    natsStatus s = js_SubscribeSync(&sub, r->js, r->subject, NULL, &so, &jerr);
    if (s != NATS_OK) {
        logf_(r, "cannot read stream %s: %s (JetStream error %d)", r->stream,
              natsStatus_GetText(s), (int)jerr);
        return -1;
    }
    if (r->sub) natsSubscription_Destroy(r->sub);
    r->sub = sub;
    return 0;
}

static int subscribe_all(replica *r) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    jsErrCode jerr = 0;
    natsStatus s = js_SubscribeSync(&r->sub, r->js, r->subject, NULL, &so, &jerr);
    if (s != NATS_OK) {
        logf_(r, "cannot read stream %s: %s (JetStream error %d)", r->stream,
              natsStatus_GetText(s), (int)jerr);
        return -1;
    }
    return 0;
}

replica *replica_open(server *sv, const replica_config *cfg,
                      const cs_options *opts, int *exit_code) {
    *exit_code = 1;
    replica *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->sv = sv;
    r->cfg = *cfg;
    snprintf(r->node, sizeof r->node, "%s", cfg->node);
    snprintf(r->stream, sizeof r->stream, "CHATSTORE_S%u", cfg->shard);
    snprintf(r->subject, sizeof r->subject, "chatstore.s%u.log", cfg->shard);
    snprintf(r->lease_key, sizeof r->lease_key, "writer.s%u", cfg->shard);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->role = REPLICA_FOLLOWER;
    r->cfg.node = r->node;

    natsOptions *no = NULL;
    char *urls = strdup(cfg->nats_urls);
    const char *list[16];
    int nl = 0;
    for (char *save = NULL, *u = strtok_r(urls, ",", &save); u && nl < 16;
         u = strtok_r(NULL, ",", &save))
        list[nl++] = u;
    natsStatus s = natsOptions_Create(&no);
    if (s == NATS_OK) s = natsOptions_SetServers(no, list, nl);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(no, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(no, 100);
    if (s == NATS_OK) s = natsOptions_SetTimeout(no, 2000);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(no, true, NULL, NULL);
    if (s == NATS_OK) s = natsConnection_Connect(&r->nc, no);
    natsOptions_Destroy(no);
    free(urls);
    if (s != NATS_OK) {
        logf_(r, "cannot connect to NATS at %s: %s", cfg->nats_urls,
              natsStatus_GetText(s));
        goto fail;
    }
    /* wait for the connection (RetryOnFailedConnect connects in the back) */
    for (int i = 0; i < 100 && natsConnection_Status(r->nc) != NATS_CONN_STATUS_CONNECTED; i++)
        sleep_ms(100);
    r->max_payload = (size_t)natsConnection_GetMaxPayload(r->nc);
    if (r->max_payload < 64 * 1024) r->max_payload = 1024 * 1024;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    if (natsConnection_JetStream(&r->js, r->nc, &jo) != NATS_OK) goto fail;
    /* JetStream may still be electing its leaders: retry for a while */
    int ok = -1;
    for (int i = 0; i < 100 && ok; i++) {
        ok = ensure_stream(r);
        if (!ok) ok = ensure_kv(r);
        if (ok) sleep_ms(200);
    }
    if (ok) goto fail;
    if (!cfg->follow) {
        int lr = take_lease(r);
        if (lr) {
            if (lr == REPLICA_EXIT_FENCED) *exit_code = REPLICA_EXIT_FENCED;
            goto fail;
        }
    }
    char derr[300] = "";
    sv->directory = directory_open(r->js, cfg->replicas, opts->base_url, derr,
                                   sizeof derr);
    if (!sv->directory) {
        logf_(r, "cannot open the service directory: %s", derr);
        goto fail;
    }
    if (r->head_at_open == 0 && !cfg->follow) {
        /* the shard's first primary: the stream starts with its store */
        cs_err e = cs_store_new(opts, &sv->store);
        if (e) {
            logf_(r, "store: %s", cs_err_message(e));
            goto fail;
        }
        if (publish_snapshot(r)) goto fail;
        return r;
    }
    /* a follower of a stream not started yet waits for its primary */
    for (int i = 0; r->head_at_open == 0 && i < 300; i++) {
        sleep_ms(100);
        if (ensure_stream(r)) goto fail;
    }
    if (r->head_at_open == 0) {
        logf_(r, "no primary has started stream %s yet", r->stream);
        goto fail;
    }
    if (subscribe_all(r) || load_snapshot(r, opts)) goto fail;
    return r;
fail:
    if (sv->directory) directory_close(sv->directory);
    sv->directory = NULL;
    if (sv->store) cs_store_free(sv->store);
    sv->store = NULL;
    if (r->sub) natsSubscription_Destroy(r->sub);
    if (r->kv) kvStore_Destroy(r->kv);
    if (r->js) jsCtx_Destroy(r->js);
    if (r->nc) natsConnection_Destroy(r->nc);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return NULL;
}

/* The stream's last sequence, or 0 when it cannot be read. */
static uint64_t stream_head(replica *r) {
    jsStreamInfo *si = NULL;
    uint64_t last = 0;
    if (js_GetStreamInfo(&si, r->js, r->stream, NULL, NULL) == NATS_OK) {
        last = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
    }
    return last;
}

/* Applies the ordered consumer's messages until stream sequence upto. */
static int catch_up(replica *r, uint64_t upto) {
    while (r->stream_last < upto) {
        natsMsg *m = NULL;
        uint64_t sseq = 0;
        int64_t ts = 0;
        int k = next_msg(r, &m, &sseq, &ts, 5000);
        if (k) {
            logf_(r, "the stream stopped delivering at %" PRIu64 " of %" PRIu64,
                  r->stream_last, upto);
            return -1;
        }
        int rc = apply_msg(r, m, sseq, ts);
        natsMsg_Destroy(m);
        if (rc) return -1;
    }
    return 0;
}

int replica_start(replica *r) {
    if (cs_observer_add(r->sv->store, on_event, r, &r->observer_id)) return -1;
    if (r->sub) {
        uint64_t head = stream_head(r);
        if (head > r->stream_last && catch_up(r, head)) return -1;
    }
    cs_store_stats st;
    cs_store_stats_get(r->sv->store, &st);
    r->applied_commit = st.commits;
    if (!r->cfg.follow) {
        /* a primary: it has what the stream holds, and holds the lease */
        if (r->sub) natsSubscription_Destroy(r->sub);
        r->sub = NULL;
        if (become_writer(r)) return -1;
        logf_(r, "primary (node %s, term %" PRIu64 "), stream %s at %" PRIu64
                 " from its snapshot at message %" PRIu64 ", %s replication",
              r->node, r->term, r->stream, r->stream_last, r->snap_first ? r->snap_first : 1,
              r->cfg.sync ? "synchronous" : "asynchronous");
        return 0;
    }
    if (pthread_create(&r->fol_thr, NULL, follow_main, r)) return -1;
    r->fol_started = true;
    logf_(r, "follower (node %s), stream %s applied to %" PRIu64
             " from its snapshot at message %" PRIu64,
          r->node, r->stream, r->stream_last, r->snap_first);
    return 0;
}

void replica_release_waiters(replica *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->release = true;
    pthread_cond_broadcast(&r->cv); /* replica_request_end's waits too */
    wake_waiters(r);
    pthread_mutex_unlock(&r->mu);
}

void replica_close(replica *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->cv);
    wake_waiters(r);
    pthread_mutex_unlock(&r->mu);
    if (r->pub_started) pthread_join(r->pub_thr, NULL);
    if (r->fol_started) pthread_join(r->fol_thr, NULL);
    if (r->sv->store && r->observer_id) cs_observer_remove(r->sv->store, r->observer_id);
    if (r->sv->store) cs_store_set_journal(r->sv->store, NULL, NULL);
    if (r->sv->directory) directory_close(r->sv->directory);
    r->sv->directory = NULL;
    if (r->sub) natsSubscription_Destroy(r->sub);
    kvStore_Destroy(r->kv);
    jsCtx_Destroy(r->js);
    natsConnection_Destroy(r->nc);
    for (size_t i = r->dq_head; i < r->dq_n; i++) free(r->dq[i].json);
    free(r->dq);
    free(r->pend);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    nats_Close();
}

/* ---- requests ------------------------------------------------------------------ */

void replica_request_begin(replica *r) {
    (void)r;
    tl_commit = 0;
    tl_dirseq = 0;
}

/* What the request that just ran must wait for: 0 when nothing (it
 * changed nothing, or --replication async), else 1 with w's position and
 * deadline set. */
static int wait_for(replica *r, replica_waiter *w) {
    uint64_t want = tl_commit, dir = tl_dirseq;
    tl_commit = tl_dirseq = 0;
    if (!want || !r->cfg.sync) return 0;
    w->want = want;
    w->dir = dir;
    w->outcome = 0;
    w->next = NULL;
    deadline_in(&w->deadline, r->cfg.timeout_ms);
    return 1;
}

void replica_request_end(replica *r, reply *rp) {
    replica_waiter w;
    if (!wait_for(r, &w)) return;
    pthread_mutex_lock(&r->mu);
    while (!decided(r, &w))
        pthread_cond_timedwait(&r->cv, &r->mu, &w.deadline);
    pthread_mutex_unlock(&r->mu);
    replica_request_finish(r, &w, rp);
}

int replica_request_defer(replica *r, reply *rp, replica_waiter *w) {
    if (!wait_for(r, w)) return 0;
    pthread_mutex_lock(&r->mu);
    if (decided(r, w)) {
        pthread_mutex_unlock(&r->mu);
        replica_request_finish(r, w, rp);
        return 0;
    }
    w->suspend(w->ctx);
    w->next = r->waiters;
    r->waiters = w;
    pthread_cond_broadcast(&r->cv); /* the publisher now checks deadlines */
    pthread_mutex_unlock(&r->mu);
    return 1;
}

void replica_request_finish(replica *r, replica_waiter *w, reply *rp) {
    (void)r;
    if (w->outcome > 0) return;
    if (rp->media) media_store_release(rp->media);
    rp->media = NULL;
    reply_error(rp, 503, 20503, w->outcome < 0 ? w->msg : "Not acknowledged");
}

int replica_media_stage(replica *r, const void *data, size_t n) {
    if (n + 2 * FRAME_HEADER + 4096 + HEADROOM > r->max_payload) return -1;
    tl_media = data;
    tl_media_len = n;
    return 0;
}

void replica_media_unstage(replica *r) {
    (void)r;
    tl_media = NULL;
    tl_media_len = 0;
}

bool replica_writable(replica *r, const char **why) {
    static _Thread_local char msg[sizeof r->fence_msg];
    pthread_mutex_lock(&r->mu);
    bool ok = r->role == REPLICA_PRIMARY;
    if (!ok) {
        if (r->role == REPLICA_FENCED)
            snprintf(msg, sizeof msg, "%s", r->fence_msg);
        else
            snprintf(msg, sizeof msg,
                     "This server is a follower of shard %u: writes go to its "
                     "primary",
                     r->cfg.shard);
        *why = msg;
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

void replica_on_writer(replica *r, void (*fn)(void *ctx, cs_store *s),
                       void *ctx) {
    /* the store's lock orders this against become_writer */
    cs_store *s = r->sv->store;
    if (cs_store_lock_exclusive(s)) return;
    pthread_mutex_lock(&r->mu);
    bool now = r->role == REPLICA_PRIMARY;
    r->on_writer = fn;
    r->on_writer_ctx = ctx;
    pthread_mutex_unlock(&r->mu);
    if (now) fn(ctx, s);
    cs_store_unlock(s);
}

/* ---- endpoints ---------------------------------------------------------------------- */

static void reply_json(reply *rp, unsigned status, const char *json) {
    cs_buf *b = &rp->body;
    size_t n = strlen(json);
    if (n + 1 > b->cap) {
        char *d = realloc(b->data, n + 1);
        if (!d) {
            reply_error(rp, 500, 20500, "Out of memory");
            return;
        }
        b->data = d;
        b->cap = n + 1;
    }
    memcpy(b->data, json, n + 1);
    b->len = n;
    rp->status = status;
    rp->code = 0;
    rp->content_type = "application/json";
}

void replica_healthz_writer(replica *r, reply *rp) {
    pthread_mutex_lock(&r->mu);
    int role = r->role;
    pthread_mutex_unlock(&r->mu);
    char j[200];
    snprintf(j, sizeof j, "{\"shard\": %u, \"role\": \"%s\"}", r->cfg.shard,
             role_name(role));
    reply_json(rp, role == REPLICA_PRIMARY ? 200 : 503, j);
}

void replica_stats_get(replica *r, replica_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&r->mu);
    out->role = r->role;
    out->term = r->term;
    out->applied_seq = r->stream_last;
    out->commits = r->role == REPLICA_FOLLOWER || r->role == REPLICA_BROKEN
                       ? r->applied_commit
                       : r->acked_commit;
    out->published = r->published;
    out->publish_errors = r->publish_errors;
    out->snapshots = r->snapshots;
    bool follower = r->role != REPLICA_PRIMARY;
    uint64_t applied = r->stream_last, applied_commit = r->applied_commit;
    pthread_mutex_unlock(&r->mu);
    out->stream_seq = applied;
    if (!follower) return;
    /* the stream's head: its last message's commit and the age of the
     * oldest message not applied yet */
    natsMsg *last = NULL;
    if (js_GetLastMsg(&last, r->js, r->stream, r->subject, NULL, NULL) != NATS_OK)
        return;
    out->stream_seq = natsMsg_GetSequence(last);
    const char *c = hdr(last, "Chatstore-Commit");
    uint64_t head_commit = c ? strtoull(c, NULL, 10) : 0;
    natsMsg_Destroy(last);
    if (head_commit > applied_commit) out->lag_records = head_commit - applied_commit;
    if (out->stream_seq > applied) {
        natsMsg *next = NULL;
        if (js_GetMsg(&next, r->js, r->stream, applied + 1, NULL, NULL) == NATS_OK) {
            int64_t age = now_ns() - natsMsg_GetTime(next);
            out->lag_seconds = age > 0 ? (double)age / 1e9 : 0;
            natsMsg_Destroy(next);
        }
    }
}

static void status_json(replica *r, char *j, size_t cap) {
    replica_stats st;
    replica_stats_get(r, &st);
    snprintf(j, cap,
             "{\"shard\": %u, \"node\": \"%s\", \"role\": \"%s\", \"term\": %" PRIu64
             ", \"stream_seq\": %" PRIu64 ", \"applied_seq\": %" PRIu64
             ", \"commits\": %" PRIu64 ", \"lag_records\": %" PRIu64
             ", \"lag_seconds\": %.3f, \"replication\": \"%s\"}",
             r->cfg.shard, r->node, role_name(st.role), st.term, st.stream_seq,
             st.applied_seq, st.commits, st.lag_records, st.lag_seconds,
             r->cfg.sync ? "sync" : "async");
}

void replica_status(replica *r, reply *rp) {
    char j[800];
    status_json(r, j, sizeof j);
    reply_json(rp, 200, j);
}

/* Stops the follower thread once it has applied everything the stream
 * holds now. 0, or -1 (it could not). */
static int stop_following(replica *r) {
    uint64_t head = stream_head(r);
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&r->mu);
        bool done = r->stream_last >= head || r->role == REPLICA_BROKEN;
        pthread_mutex_unlock(&r->mu);
        if (done) break;
        sleep_ms(10);
    }
    pthread_mutex_lock(&r->mu);
    r->fol_stop = true;
    pthread_mutex_unlock(&r->mu);
    if (r->fol_started) pthread_join(r->fol_thr, NULL);
    r->fol_started = false;
    return r->role == REPLICA_BROKEN ? -1 : 0;
}

void replica_promote(replica *r, reply *rp) {
    pthread_mutex_lock(&r->mu);
    int role = r->role;
    bool busy = r->promoting;
    if (!busy && role == REPLICA_FOLLOWER) r->promoting = true;
    pthread_mutex_unlock(&r->mu);
    char j[800];
    if (role == REPLICA_PRIMARY) {
        status_json(r, j, sizeof j);
        reply_json(rp, 200, j);
        return;
    }
    if (busy) {
        reply_error(rp, 409, 20409, "A promotion is already under way");
        return;
    }
    if (role != REPLICA_FOLLOWER) {
        reply_error(rp, 409, 20409,
                    role == REPLICA_FENCED
                        ? "A fenced server cannot be promoted: restart it with --follow"
                        : "This follower could not apply the stream: restart it");
        return;
    }
    const char *fail = NULL;
    /* 1. the lease: compare-and-set on the revision read */
    char node[200], v[300];
    uint64_t term = 0, rev = 0;
    int g = lease_get(r, node, sizeof node, &term, &rev);
    if (g < 0) {
        fail = "The writer lease cannot be read";
        goto out;
    }
    uint64_t nrev = 0;
    int n = snprintf(v, sizeof v, "node=%s term=%" PRIu64, r->node, term + 1);
    natsStatus s = g == 1 ? kvStore_Create(&nrev, r->kv, r->lease_key, v, n)
                          : kvStore_Update(&nrev, r->kv, r->lease_key, v, n, rev);
    if (s != NATS_OK) {
        fail = "The writer lease changed meanwhile: another promotion won";
        goto out;
    }
    pthread_mutex_lock(&r->mu);
    r->term = term + 1;
    pthread_mutex_unlock(&r->mu);
    /* 2. everything the stream holds, applied */
    if (stop_following(r)) {
        fail = "This follower could not apply the stream";
        goto out;
    }
    /* 3. the term marker: written after the last message of the old
     * writer, whose later publishes then fail their check; what the old
     * writer published meanwhile is applied first */
    char id[96], why[400];
    snprintf(id, sizeof id, "s%u-term-%" PRIu64, r->cfg.shard, r->term);
    int rc = -1;
    for (int attempt = 0; attempt < 200 && rc; attempt++) {
        uint64_t seq = 0;
        rc = publish_once(r, "term", "", 0, r->stream_last, id, r->applied_commit,
                          r->term, &seq, why, sizeof why, NULL);
        if (rc == 0) {
            pthread_mutex_lock(&r->mu);
            r->stream_last = seq;
            pthread_mutex_unlock(&r->mu);
        } else if (rc == 1) {
            uint64_t head = stream_head(r);
            if (catch_up(r, head)) break;
        } else {
            sleep_ms(50);
        }
    }
    if (rc) {
        fail = "The term marker could not be written to the stream";
        goto out;
    }
    if (r->sub) natsSubscription_Destroy(r->sub);
    r->sub = NULL;
    if (become_writer(r)) {
        fail = "The publisher could not start";
        goto out;
    }
    logf_(r, "promoted: node %s is the writer (term %" PRIu64 ") from stream "
             "message %" PRIu64,
          r->node, r->term, r->stream_last);
out:
    if (fail && !r->fol_started && r->sub && r->role == REPLICA_FOLLOWER) {
        /* not the writer after all: back to following */
        pthread_mutex_lock(&r->mu);
        r->fol_stop = false;
        pthread_mutex_unlock(&r->mu);
        if (pthread_create(&r->fol_thr, NULL, follow_main, r) == 0)
            r->fol_started = true;
    }
    pthread_mutex_lock(&r->mu);
    r->promoting = false;
    if (fail && r->role == REPLICA_FOLLOWER && !r->fol_started)
        r->role = REPLICA_BROKEN;
    pthread_mutex_unlock(&r->mu);
    if (fail) {
        logf_(r, "promotion failed: %s", fail);
        reply_error(rp, 503, 20503, fail);
        return;
    }
    status_json(r, j, sizeof j);
    reply_json(rp, 200, j);
}
