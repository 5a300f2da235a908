/* The store's shared/exclusive lock, with misuse reported.
 *
 * Invariants: tl_held lists exactly the stores whose lock this thread holds
 * (at most CS_LOCKS_PER_THREAD), each with the side it holds; so every
 * misuse the header names is caught before it reaches pthreads, where a
 * second shared hold behind a waiting writer deadlocks and an unlock by a
 * non-holder is undefined. A lock call inside an observer of the same store
 * (on this thread) is refused before anything else. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: writer preference */
#include "internal.h"

#include <errno.h>

/* Writers must not starve behind a stream of readers: glibc's default
 * rwlock prefers readers, so ask for writer preference where it exists. */
cs_err cs__lock_init(pthread_rwlock_t *lock) {
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

typedef struct held_lock {
    const cs_store *s;
    bool exclusive;
} held_lock;

static _Thread_local held_lock tl_held[CS_LOCKS_PER_THREAD];
static _Thread_local unsigned tl_nheld;

static int held_find(const cs_store *s) {
    for (unsigned i = 0; i < tl_nheld; i++)
        if (tl_held[i].s == s) return (int)i;
    return -1;
}

static void held_forget(int i) { tl_held[i] = tl_held[--tl_nheld]; }

void cs__lock_drop(cs_store *s) {
    int i = held_find(s);
    if (i < 0) return;
    pthread_rwlock_unlock(&s->lock);
    held_forget(i);
}

static cs_err lock_take(cs_store *s, bool exclusive) {
    CS__REQUIRE(s);
    if (cs__observing(s)) return CS_E_REENTRANT;
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
    if (cs__observing(s)) return CS_E_REENTRANT;
    int i = held_find(s);
    if (i < 0) return CS_E_LOCK_NOT_HELD;
    if (pthread_rwlock_unlock(&s->lock) != 0) return CS_E_LOCK_FAILED;
    held_forget(i);
    return CS_OK;
}
