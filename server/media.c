/* Media bytes kept in server memory, up to a total cap. The store holds the
 * metadata; this holds what GET .../Content serves.
 *
 * An upload takes two steps around the store's call: media_store_prepare
 * (reserves the cap, copies the bytes, allocates the entry and, best
 * effort, room in the table) before cs_media_create, then media_store_commit
 * (links the entry: cannot fail) or media_store_abort. So either the store
 * and this both know the media, or neither does.
 *
 * Invariants: used is the bytes of the blobs in the table plus those
 * reserved by uploads in progress: live bytes only, since a blob leaves the
 * table (and used) when its media item leaves the store (media_observe: a
 * message, channel or service delete, or an expiry's cs_media_delete). A
 * blob out of the table is freed when its last reader releases it: a GET
 * of the content holds a reference while the reply is sent, so no copy is
 * made and the mutex is held only to find the blob. */
#include "fixture.h"
#include "persist.h"
#include "replica.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct blob {
    struct blob *next; /* bucket chain */
    media_store *owner;
    char sid[CS_SID_BUFSZ];
    char service_sid[CS_SID_BUFSZ];
    char *data;
    size_t n;
    int64_t created;  /* the media item's date_created */
    int attached;     /* known to be attached: never expires */
    unsigned refs;    /* the table's (while linked) and each reader's */
};

struct media_store {
    pthread_mutex_t mu;
    blob **tab; /* chained: an insert only links, whatever the load */
    size_t nb, count;
    size_t used, cap;
};

/* Media SIDs come from the store's keyed generator: no caller chooses them,
 * so a plain FNV-1a spreads them. */
static size_t bucket(const media_store *m, const char *sid) {
    uint64_t h = UINT64_C(14695981039346656037);
    for (const unsigned char *p = (const unsigned char *)sid; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return (size_t)(h & (m->nb - 1));
}

media_store *media_store_new(size_t cap_bytes) {
    media_store *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->nb = 64;
    m->tab = calloc(m->nb, sizeof *m->tab);
    if (!m->tab) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    m->cap = cap_bytes;
    return m;
}

static void blob_free(blob *b) {
    free(b->data);
    free(b);
}

void media_store_free(media_store *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nb; i++)
        for (blob *b = m->tab[i], *nx; b; b = nx) {
            nx = b->next;
            blob_free(b);
        }
    free(m->tab);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Doubles the bucket array when the table is full; on failure the chains
 * just get longer. Under the mutex. */
static void maybe_grow(media_store *m) {
    if (m->count + 1 <= m->nb) return;
    size_t nb = m->nb * 2;
    blob **t = calloc(nb, sizeof *t);
    if (!t) return;
    size_t old = m->nb;
    blob **ot = m->tab;
    m->tab = t;
    m->nb = nb;
    for (size_t i = 0; i < old; i++)
        for (blob *b = ot[i], *nx; b; b = nx) {
            nx = b->next;
            size_t k = bucket(m, b->sid);
            b->next = t[k];
            t[k] = b;
        }
    free(ot);
}

int media_store_prepare(media_store *m, const char *data, size_t n,
                        blob **out) {
    pthread_mutex_lock(&m->mu);
    int full = n > m->cap - m->used;
    if (!full) m->used += n;
    pthread_mutex_unlock(&m->mu);
    if (full) return MEDIA_FULL;
    blob *b = calloc(1, sizeof *b);
    char *copy = malloc(n ? n : 1);
    if (b) b->owner = m;
    if (!b || !copy) {
        free(b);
        free(copy);
        media_store_abort(m, NULL, n);
        return MEDIA_NOMEM;
    }
    if (n) memcpy(copy, data, n);
    b->data = copy;
    b->n = n;
    pthread_mutex_lock(&m->mu);
    maybe_grow(m);
    pthread_mutex_unlock(&m->mu);
    *out = b;
    return 0;
}

void media_store_commit(media_store *m, blob *b, const char *sid,
                        const char *service_sid, int64_t created) {
    snprintf(b->sid, sizeof b->sid, "%s", sid);
    snprintf(b->service_sid, sizeof b->service_sid, "%s", service_sid);
    b->created = created;
    b->refs = 1;
    pthread_mutex_lock(&m->mu);
    size_t k = bucket(m, b->sid);
    b->next = m->tab[k];
    m->tab[k] = b;
    m->count++;
    pthread_mutex_unlock(&m->mu);
}

void media_store_abort(media_store *m, blob *b, size_t n) {
    if (b) blob_free(b);
    pthread_mutex_lock(&m->mu);
    m->used -= n;
    pthread_mutex_unlock(&m->mu);
}

/* Takes *l out of the table: its bytes stop counting, and it is freed now
 * or by its last reader. Under the mutex. */
static void unlink_blob(media_store *m, blob **l) {
    blob *b = *l;
    *l = b->next;
    m->used -= b->n;
    m->count--;
    if (--b->refs == 0) blob_free(b);
}

void media_store_drop_service(media_store *m, const char *service_sid) {
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nb; i++)
        for (blob **l = &m->tab[i]; *l;) {
            if (strcmp((*l)->service_sid, service_sid) != 0) {
                l = &(*l)->next;
                continue;
            }
            unlink_blob(m, l);
        }
    pthread_mutex_unlock(&m->mu);
}

static blob **find(media_store *m, const char *sid) {
    blob **l = &m->tab[bucket(m, sid)];
    while (*l && strcmp((*l)->sid, sid) != 0) l = &(*l)->next;
    return l;
}

int media_store_drop(media_store *m, const char *sid) {
    pthread_mutex_lock(&m->mu);
    blob **l = find(m, sid);
    int found = *l != NULL;
    if (found) unlink_blob(m, l);
    pthread_mutex_unlock(&m->mu);
    return found;
}

size_t media_store_drop_gone(media_store *m, const char *service_sid,
                             const cs_store *s,
                             void (*dropped)(void *ctx, const char *is,
                                             const char *me),
                             void *ctx) {
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nb; i++)
        for (blob **l = &m->tab[i]; *l;) {
            blob *b = *l;
            if (strcmp(b->service_sid, service_sid) != 0 ||
                cs_media_fetch(s, cs_str_c(b->service_sid), cs_str_c(b->sid),
                               NULL) != CS_E_NOT_FOUND) {
                l = &b->next;
                continue;
            }
            if (dropped) dropped(ctx, b->service_sid, b->sid);
            unlink_blob(m, l);
            n++;
        }
    pthread_mutex_unlock(&m->mu);
    return n;
}

void media_store_note(media_store *m, const char *sid, int64_t created,
                      int attached) {
    pthread_mutex_lock(&m->mu);
    blob *b = *find(m, sid);
    if (b) {
        b->created = created;
        b->attached = attached;
    }
    pthread_mutex_unlock(&m->mu);
}

size_t media_store_expired(media_store *m, int64_t before,
                           char (*out)[2][CS_SID_BUFSZ], size_t max) {
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nb && n < max; i++)
        for (const blob *b = m->tab[i]; b && n < max; b = b->next)
            if (!b->attached && b->created <= before) {
                memcpy(out[n][0], b->service_sid, CS_SID_BUFSZ);
                memcpy(out[n][1], b->sid, CS_SID_BUFSZ);
                n++;
            }
    pthread_mutex_unlock(&m->mu);
    return n;
}

size_t media_store_count(media_store *m) {
    pthread_mutex_lock(&m->mu);
    size_t n = m->count;
    pthread_mutex_unlock(&m->mu);
    return n;
}

size_t media_store_used(media_store *m) {
    pthread_mutex_lock(&m->mu);
    size_t u = m->used;
    pthread_mutex_unlock(&m->mu);
    return u;
}

blob *media_store_get(media_store *m, const char *sid, char **data,
                      size_t *n) {
    pthread_mutex_lock(&m->mu);
    blob *b = *find(m, sid);
    if (b) {
        b->refs++;
        *data = b->data;
        *n = b->n;
    }
    pthread_mutex_unlock(&m->mu);
    return b;
}

void media_store_release(void *blob_) {
    blob *b = blob_;
    media_store *m = b->owner;
    pthread_mutex_lock(&m->mu);
    int last = --b->refs == 0;
    pthread_mutex_unlock(&m->mu);
    if (last) blob_free(b);
}

/* ---- the lifecycle ---------------------------------------------------------- */

static void drop_file(void *ctx, const char *is, const char *me) {
    server *sv = ctx;
    if (sv->persist) persist_media_drop(sv->persist, is, me);
}

/* On the mutating thread, under the store's exclusive lock, after the
 * change committed (and, with --data-dir, was journaled by this thread). A
 * service delete's bytes are dropped by its route, after the call. */
static void on_change(void *ctx, const cs_event *ev) {
    server *sv = ctx;
    switch (ev->type) {
    case CS_EVENT_MESSAGE_CREATED:
        if (ev->message->has_media)
            media_store_note(sv->media, ev->message->media.sid,
                             ev->message->date_created, 1);
        break;
    case CS_EVENT_MESSAGE_DELETED:
        if (ev->message->has_media &&
            media_store_drop(sv->media, ev->message->media.sid))
            drop_file(sv, ev->message->service_sid, ev->message->media.sid);
        break;
    case CS_EVENT_MEDIA_DELETED:
        if (media_store_drop(sv->media, ev->media->sid))
            drop_file(sv, ev->media->service_sid, ev->media->sid);
        break;
    case CS_EVENT_CHANNEL_DELETED:
        /* the event names no media: what the store no longer knows went */
        if (ev->removed_media)
            media_store_drop_gone(sv->media, ev->channel->service_sid,
                                  sv->store, drop_file, sv);
        break;
    default:
        break;
    }
}

int media_observe(server *sv) {
    return cs_observer_add(sv->store, on_change, sv, NULL) ? -1 : 0;
}

static int64_t store_now(server *sv) {
    if (sv->fx) return fixture_now(sv->fx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

#define EXPIRE_BATCH 256

void media_expire(server *sv, int force) {
    if (!sv->cfg.media_ttl) return;
    /* --nats: the writer expires uploads (its deletes replicate) */
    const char *why;
    if (sv->replica && !replica_writable(sv->replica, &why)) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t t = (int64_t)ts.tv_sec;
    int64_t next = __atomic_load_n(&sv->next_expiry, __ATOMIC_RELAXED);
    if (!force && (t < next || !__atomic_compare_exchange_n(
                                   &sv->next_expiry, &next, t + 1, 0,
                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED)))
        return;
    if (!media_store_count(sv->media)) return; /* nothing to expire */
    static _Thread_local char cand[EXPIRE_BATCH][2][CS_SID_BUFSZ];
    cs_store *s = sv->store;
    for (;;) {
        /* The store's clock, read under the lock: the fixture's may move. */
        if (cs_store_lock_exclusive(s)) return;
        int64_t before = store_now(sv) - (int64_t)sv->cfg.media_ttl;
        size_t n = media_store_expired(sv->media, before, cand, EXPIRE_BATCH);
        size_t gone = 0;
        for (size_t i = 0; i < n; i++) {
            cs_media_view v;
            cs_str is = cs_str_c(cand[i][0]), me = cs_str_c(cand[i][1]);
            if (cs_media_fetch(s, is, me, &v)) continue; /* going already */
            if (v.attached || v.date_created > before) {
                media_store_note(sv->media, v.sid, v.date_created, v.attached);
                continue;
            }
            /* the observer drops the bytes and the file */
            if (cs_media_delete(s, is, me) == CS_OK) gone++;
        }
        cs_store_unlock(s);
        if (n < EXPIRE_BATCH || !gone) return;
    }
}


void media_store_each(media_store *m,
                      void (*fn)(void *ctx, const char *sid,
                                 const char *service_sid, const char *data,
                                 size_t n, int64_t created),
                      void *ctx) {
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nb; i++)
        for (blob *b = m->tab[i]; b; b = b->next)
            fn(ctx, b->sid, b->service_sid, b->data, b->n, b->created);
    pthread_mutex_unlock(&m->mu);
}
