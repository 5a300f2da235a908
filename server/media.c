/* Media bytes kept in server memory, up to a total cap. The store holds the
 * metadata; this holds what GET .../Content serves. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

typedef struct blob {
    UT_hash_handle hh;
    char sid[CS_SID_BUFSZ];
    char service_sid[CS_SID_BUFSZ];
    char *data;
    size_t n;
} blob;

struct media_store {
    pthread_mutex_t mu;
    blob *all;
    size_t used, cap;
};

media_store *media_store_new(size_t cap_bytes) {
    media_store *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->cap = cap_bytes;
    return m;
}

void media_store_free(media_store *m) {
    if (!m) return;
    blob *b, *tmp;
    HASH_ITER(hh, m->all, b, tmp) {
        HASH_DEL(m->all, b);
        free(b->data);
        free(b);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int media_store_reserve(media_store *m, size_t n) {
    pthread_mutex_lock(&m->mu);
    int rc = (n <= m->cap - m->used) ? 0 : -1;
    if (!rc) m->used += n;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void media_store_unreserve(media_store *m, size_t n) {
    pthread_mutex_lock(&m->mu);
    m->used -= n;
    pthread_mutex_unlock(&m->mu);
}

int media_store_put(media_store *m, const char *sid, const char *service_sid,
                    char *data, size_t n) {
    blob *b = calloc(1, sizeof *b);
    if (!b) return -1;
    snprintf(b->sid, sizeof b->sid, "%s", sid);
    snprintf(b->service_sid, sizeof b->service_sid, "%s", service_sid);
    b->data = data;
    b->n = n;
    int oom = 0;
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (oom = 1)
    pthread_mutex_lock(&m->mu);
    HASH_ADD_STR(m->all, sid, b);
    pthread_mutex_unlock(&m->mu);
    if (oom) free(b);
    return oom ? -1 : 0;
}

void media_store_drop_service(media_store *m, const char *service_sid) {
    blob *b, *tmp;
    pthread_mutex_lock(&m->mu);
    HASH_ITER(hh, m->all, b, tmp) {
        if (strcmp(b->service_sid, service_sid) != 0) continue;
        HASH_DEL(m->all, b);
        m->used -= b->n;
        free(b->data);
        free(b);
    }
    pthread_mutex_unlock(&m->mu);
}

char *media_store_get(media_store *m, const char *sid, size_t *n) {
    char *copy = NULL;
    pthread_mutex_lock(&m->mu);
    blob *b;
    HASH_FIND_STR(m->all, sid, b);
    if (b && (copy = malloc(b->n ? b->n : 1))) {
        memcpy(copy, b->data, b->n);
        *n = b->n;
    }
    pthread_mutex_unlock(&m->mu);
    return copy;
}
