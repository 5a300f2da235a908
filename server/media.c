/* Media bytes kept in server memory, up to a total cap. The store holds the
 * metadata; this holds what GET .../Content serves.
 *
 * An upload takes two steps around the store's call: media_store_prepare
 * (reserves the cap, copies the bytes, allocates the entry and, best
 * effort, room in the table) before cs_media_create, then media_store_commit
 * (links the entry: cannot fail) or media_store_abort. So either the store
 * and this both know the media, or neither does. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct blob {
    struct blob *next; /* bucket chain */
    char sid[CS_SID_BUFSZ];
    char service_sid[CS_SID_BUFSZ];
    char *data;
    size_t n;
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
                        const char *service_sid) {
    snprintf(b->sid, sizeof b->sid, "%s", sid);
    snprintf(b->service_sid, sizeof b->service_sid, "%s", service_sid);
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

void media_store_drop_service(media_store *m, const char *service_sid) {
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nb; i++)
        for (blob **l = &m->tab[i]; *l;) {
            blob *b = *l;
            if (strcmp(b->service_sid, service_sid) != 0) {
                l = &b->next;
                continue;
            }
            *l = b->next;
            m->used -= b->n;
            m->count--;
            blob_free(b);
        }
    pthread_mutex_unlock(&m->mu);
}

char *media_store_get(media_store *m, const char *sid, size_t *n) {
    char *copy = NULL;
    pthread_mutex_lock(&m->mu);
    for (const blob *b = m->tab[bucket(m, sid)]; b; b = b->next) {
        if (strcmp(b->sid, sid) != 0) continue;
        if ((copy = malloc(b->n ? b->n : 1))) {
            if (b->n) memcpy(copy, b->data, b->n);
            *n = b->n;
        }
        break;
    }
    pthread_mutex_unlock(&m->mu);
    return copy;
}

void media_store_usage(media_store *m, size_t *used, size_t *cap) {
    pthread_mutex_lock(&m->mu);
    *used = m->used;
    *cap = m->cap;
    pthread_mutex_unlock(&m->mu);
}
