/* The API guarantees of b6dd635, one test each: the checked lock, clear
 * from an observer, stale pages, an event for every committed change (and
 * none for a failed or no-op call), the typed parameters beside the string
 * ones, NULL params, and the stable error numbers.
 *
 * These tests assert the header's contract (include/chatstore.h). When one
 * fails, the library is suspect, not the test. Threads are only ever waited
 * for with a bound: a deadlock ends the program with a failure instead of
 * hanging it. Sleeps only give other threads time to get somewhere; no
 * result depends on how long anything took. */
#include "test_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

/* ---- threads, bounded ----------------------------------------------------- */

/* Far beyond anything a working lock needs; only a deadlock gets there. */
#define HANG_MS 20000

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Waits until *flag >= want, for at most limit_ms. */
static bool wait_flag(atomic_int *flag, int want, int limit_ms) {
    for (int t = 0; t < limit_ms; t += 2) {
        if (atomic_load(flag) >= want) return true;
        sleep_ms(2);
    }
    return atomic_load(flag) >= want;
}

/* The running lock test, for the messages below. */
static const char *volatile g_test = "";

/* A thread is stuck (a deadlock): it cannot be joined, so the program ends
 * here, failing, instead of hanging. */
static void hang(const char *what) {
    fprintf(stderr, "FAIL %s: %s: no progress in %d ms (deadlock)\n", g_test,
            what, HANG_MS);
    fflush(stderr);
    printf("0 passed, 1 failed\n");
    fflush(stdout);
    _exit(1);
}

/* The lock tests also call the lock on the main thread, where a deadlock
 * cannot be waited out: a watchdog alarm ends the program instead. */
static void on_watchdog(int sig) {
    static const char msg[] = "FAIL: a lock test made no progress in 60 s "
                              "(deadlock on the main thread)\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(1);
}

static void watchdog(const char *test) {
    g_test = test;
    signal(SIGALRM, on_watchdog);
    alarm(60);
}

static void watchdog_off(void) {
    alarm(0);
    g_test = "";
}

enum { OP_UNLOCK, OP_SHARED_UNLOCK, OP_EXCLUSIVE_UNLOCK };

typedef struct lock_op {
    cs_store *s;
    int op;
    cs_err r1, r2;
    atomic_int done;
} lock_op;

static void *lock_op_main(void *arg) {
    lock_op *o = arg;
    switch (o->op) {
    case OP_UNLOCK:
        o->r1 = cs_store_unlock(o->s);
        break;
    case OP_SHARED_UNLOCK:
        o->r1 = cs_store_lock_shared(o->s);
        if (o->r1 == CS_OK) o->r2 = cs_store_unlock(o->s);
        break;
    default:
        o->r1 = cs_store_lock_exclusive(o->s);
        if (o->r1 == CS_OK) o->r2 = cs_store_unlock(o->s);
        break;
    }
    atomic_store(&o->done, 1);
    return NULL;
}

/* Runs one lock operation on a new thread and waits for it (bounded). */
static void in_thread(cs_store *s, int op, cs_err *r1, cs_err *r2) {
    lock_op o;
    o.s = s;
    o.op = op;
    o.r1 = o.r2 = CS_E__COUNT; /* "not called" */
    atomic_init(&o.done, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, lock_op_main, &o) != 0) {
        CHECK_FAIL_("pthread_create failed");
        *r1 = *r2 = CS_E__COUNT;
        return;
    }
    if (!wait_flag(&o.done, 1, HANG_MS)) hang("lock call on another thread");
    pthread_join(t, NULL);
    *r1 = o.r1;
    if (r2) *r2 = o.r2;
}

/* Another thread takes and releases the exclusive side: proves that nobody
 * holds the lock (a leaked hold would block it: the bound catches that). */
#define CHECK_LOCK_FREE(s)                                                    \
    do {                                                                      \
        cs_err r1_, r2_;                                                      \
        in_thread((s), OP_EXCLUSIVE_UNLOCK, &r1_, &r2_);                      \
        CHECK_INT(r1_, CS_OK);                                                \
        CHECK_INT(r2_, CS_OK);                                                \
    } while (0)

static cs_store *new_store(void) {
    cs_options o = tu_options(TU_SEED);
    o.clock = tu_clock;
    cs_store *s = NULL;
    cs_err e = cs_store_new(&o, &s);
    if (e != CS_OK) {
        CHECK_FAIL_("cs_store_new: %s", cs_err_name(e));
        return NULL;
    }
    return s;
}

/* ======================================================================== */
/* 1. The lock                                                               */
/* ======================================================================== */

TEST(lock_shared_twice_is_lock_held_and_lock_stays_usable) {
    watchdog(__func__);
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_INT(cs_store_lock_shared(f.s), CS_OK);
    CHECK_INT(cs_store_lock_shared(f.s), CS_E_LOCK_HELD);
    /* still held once: reads work, and exactly one unlock releases it */
    CHECK_OK(cs_service_fetch(f.s, S(f.svc), NULL));
    CHECK_INT(cs_store_unlock(f.s), CS_OK);
    CHECK_INT(cs_store_unlock(f.s), CS_E_LOCK_NOT_HELD);
    /* the refused hold took nothing: a writer gets in */
    CHECK_LOCK_FREE(f.s);
    /* and this thread can take either side again */
    CHECK_INT(cs_store_lock_exclusive(f.s), CS_OK);
    MUT_OK(f.s, tu_msg(&f, "under the lock", NULL));
    CHECK_INT(cs_store_unlock(f.s), CS_OK);
    CHECK_INT(cs_store_lock_shared(f.s), CS_OK);
    CHECK_INT(cs_store_unlock(f.s), CS_OK);
    CHECK_LOCK_FREE(f.s);
    tu_close(&f);
    watchdog_off();
}

TEST(lock_upgrade_and_exclusive_twice_are_lock_held) {
    watchdog(__func__);
    tu_fx f;
    REQUIRE(tu_open(&f));
    /* shared, then exclusive: an upgrade would deadlock behind itself */
    CHECK_INT(cs_store_lock_shared(f.s), CS_OK);
    CHECK_INT(cs_store_lock_exclusive(f.s), CS_E_LOCK_HELD);
    /* still the shared side: another reader gets in beside it */
    cs_err r1, r2;
    in_thread(f.s, OP_SHARED_UNLOCK, &r1, &r2);
    CHECK_INT(r1, CS_OK);
    CHECK_INT(r2, CS_OK);
    CHECK_INT(cs_store_unlock(f.s), CS_OK);
    CHECK_INT(cs_store_unlock(f.s), CS_E_LOCK_NOT_HELD);
    CHECK_LOCK_FREE(f.s);

    /* exclusive twice, and shared under exclusive */
    CHECK_INT(cs_store_lock_exclusive(f.s), CS_OK);
    CHECK_INT(cs_store_lock_exclusive(f.s), CS_E_LOCK_HELD);
    CHECK_INT(cs_store_lock_shared(f.s), CS_E_LOCK_HELD);
    MUT_OK(f.s, tu_msg(&f, "still exclusive", NULL));
    CHECK_INT(cs_store_unlock(f.s), CS_OK);
    CHECK_INT(cs_store_unlock(f.s), CS_E_LOCK_NOT_HELD);
    CHECK_LOCK_FREE(f.s);
    tu_close(&f);
    watchdog_off();
}

TEST(lock_unlock_without_hold_or_by_another_thread_is_not_held) {
    watchdog(__func__);
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_INT(cs_store_unlock(f.s), CS_E_LOCK_NOT_HELD);
    CHECK_LOCK_FREE(f.s);
    cs_err r1;
    /* this thread holds exclusive; another thread's unlock is refused */
    CHECK_INT(cs_store_lock_exclusive(f.s), CS_OK);
    in_thread(f.s, OP_UNLOCK, &r1, NULL);
    CHECK_INT(r1, CS_E_LOCK_NOT_HELD);
    MUT_OK(f.s, tu_msg(&f, "still mine", NULL));
    CHECK_INT(cs_store_unlock(f.s), CS_OK);
    CHECK_LOCK_FREE(f.s);
    /* the same for the shared side */
    CHECK_INT(cs_store_lock_shared(f.s), CS_OK);
    in_thread(f.s, OP_UNLOCK, &r1, NULL);
    CHECK_INT(r1, CS_E_LOCK_NOT_HELD);
    CHECK_INT(cs_store_unlock(f.s), CS_OK);
    CHECK_INT(cs_store_unlock(f.s), CS_E_LOCK_NOT_HELD);
    CHECK_LOCK_FREE(f.s);
    tu_close(&f);
    watchdog_off();
}

/* Thread A holds shared; writer B waits; A asks for shared again. Without
 * the check, A's second rdlock would queue behind B, which waits for A:
 * a deadlock. Reader C is a probe: with writer preference a new reader
 * blocks only when a writer waits, so C blocking shows B is queued. */
typedef struct ww {
    cs_store *s;
    atomic_int a_state, b_state, c_state, go;
    cs_err a1, a2, a3, b1, b2, c1, c2;
} ww;

static void *ww_holder(void *arg) {
    ww *w = arg;
    w->a1 = cs_store_lock_shared(w->s);
    atomic_store(&w->a_state, 1);
    if (!wait_flag(&w->go, 1, HANG_MS)) hang("holder waiting for go");
    w->a2 = cs_store_lock_shared(w->s); /* must not block */
    atomic_store(&w->a_state, 2);
    if (!wait_flag(&w->go, 2, HANG_MS)) hang("holder waiting for go 2");
    w->a3 = cs_store_unlock(w->s);
    atomic_store(&w->a_state, 3);
    return NULL;
}

static void *ww_writer(void *arg) {
    ww *w = arg;
    atomic_store(&w->b_state, 1);
    w->b1 = cs_store_lock_exclusive(w->s);
    atomic_store(&w->b_state, 2);
    w->b2 = cs_store_unlock(w->s);
    atomic_store(&w->b_state, 3);
    return NULL;
}

static void *ww_reader(void *arg) {
    ww *w = arg;
    atomic_store(&w->c_state, 1);
    w->c1 = cs_store_lock_shared(w->s);
    atomic_store(&w->c_state, 2);
    w->c2 = cs_store_unlock(w->s);
    atomic_store(&w->c_state, 3);
    return NULL;
}

static ww g_ww;

TEST(lock_shared_again_while_writer_waits_is_lock_held_not_deadlock) {
    watchdog(__func__);
    tu_fx f;
    REQUIRE(tu_open(&f));
    ww *w = &g_ww;
    memset(w, 0, sizeof *w);
    w->s = f.s;
    atomic_init(&w->a_state, 0);
    atomic_init(&w->b_state, 0);
    atomic_init(&w->c_state, 0);
    atomic_init(&w->go, 0);
    pthread_t ta, tb, tc;
    REQUIRE(pthread_create(&ta, NULL, ww_holder, w) == 0);
    if (!wait_flag(&w->a_state, 1, HANG_MS)) hang("holder's first lock");
    CHECK_INT(w->a1, CS_OK);
    REQUIRE(pthread_create(&tb, NULL, ww_writer, w) == 0);
    if (!wait_flag(&w->b_state, 1, HANG_MS)) hang("writer start");

    /* Give B time to queue; probe with C until a new reader blocks. */
    bool queued = false;
    for (int attempt = 0; attempt < 100 && !queued; attempt++) {
        sleep_ms(20);
        atomic_store(&w->c_state, 0);
        REQUIRE(pthread_create(&tc, NULL, ww_reader, w) == 0);
        if (!wait_flag(&w->c_state, 1, HANG_MS)) hang("probe start");
        sleep_ms(50);
        if (atomic_load(&w->c_state) == 1) {
            queued = true; /* C stays blocked until B is through */
        } else {
            if (!wait_flag(&w->c_state, 3, HANG_MS)) hang("probe reader");
            pthread_join(tc, NULL);
            CHECK_INT(w->c1, CS_OK);
            CHECK_INT(w->c2, CS_OK);
        }
    }
    CHECK(queued); /* the writer was seen waiting */
    /* B waits: A holds shared */
    CHECK_INT(atomic_load(&w->b_state), 1);

    atomic_store(&w->go, 1);
    if (!wait_flag(&w->a_state, 2, HANG_MS))
        hang("second lock_shared while a writer waits");
    CHECK_INT(w->a2, CS_E_LOCK_HELD);
    /* the refused call left A's hold as it was: B still waits */
    CHECK_INT(atomic_load(&w->b_state), 1);

    atomic_store(&w->go, 2);
    if (!wait_flag(&w->a_state, 3, HANG_MS)) hang("holder unlock");
    CHECK_INT(w->a3, CS_OK);
    /* one unlock released A's only hold: B gets the lock */
    if (!wait_flag(&w->b_state, 3, HANG_MS)) hang("writer after unlock");
    CHECK_INT(w->b1, CS_OK);
    CHECK_INT(w->b2, CS_OK);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (queued) {
        if (!wait_flag(&w->c_state, 3, HANG_MS)) hang("probe after writer");
        pthread_join(tc, NULL);
        CHECK_INT(w->c1, CS_OK);
        CHECK_INT(w->c2, CS_OK);
    }
    CHECK_LOCK_FREE(f.s);
    tu_close(&f);
    watchdog_off();
}

typedef struct obs_lock {
    cs_store *s;
    int n;
    cs_err un, sh, ex, un2;
} obs_lock;

static void on_event_lock_calls(void *ctx, const cs_event *ev) {
    obs_lock *o = ctx;
    (void)ev;
    o->n++;
    o->un = cs_store_unlock(o->s);
    o->sh = cs_store_lock_shared(o->s);
    o->ex = cs_store_lock_exclusive(o->s);
    o->un2 = cs_store_unlock(o->s);
}

TEST(lock_calls_inside_observer_are_reentrant) {
    watchdog(__func__);
    tu_fx f;
    REQUIRE(tu_open(&f));
    obs_lock o = {f.s, 0, CS_OK, CS_OK, CS_OK, CS_OK};
    REQUIRE_OK(cs_observer_add(f.s, on_event_lock_calls, &o, NULL));

    /* the mutating thread holds the exclusive side */
    char sid[CS_SID_BUFSZ];
    CHECK_INT(cs_store_lock_exclusive(f.s), CS_OK);
    MUT_OK(f.s, tu_msg(&f, "under exclusive", sid));
    CHECK_INT(o.n, 1);
    CHECK_INT(o.un, CS_E_REENTRANT);
    CHECK_INT(o.sh, CS_E_REENTRANT);
    CHECK_INT(o.ex, CS_E_REENTRANT);
    CHECK_INT(o.un2, CS_E_REENTRANT);
    CHECK_OK(cs_message_fetch(f.s, S(f.svc), S(f.ch), S(sid), NULL));
    /* the observer's unlock released nothing: exactly one hold is left */
    CHECK_INT(cs_store_lock_exclusive(f.s), CS_E_LOCK_HELD);
    CHECK_INT(cs_store_unlock(f.s), CS_OK);
    CHECK_INT(cs_store_unlock(f.s), CS_E_LOCK_NOT_HELD);
    CHECK_LOCK_FREE(f.s);

    /* no lock held at all */
    o.un = o.sh = o.ex = o.un2 = CS_OK;
    MUT_OK(f.s, tu_msg(&f, "without a lock", sid));
    CHECK_INT(o.n, 2);
    CHECK_INT(o.un, CS_E_REENTRANT);
    CHECK_INT(o.sh, CS_E_REENTRANT);
    CHECK_INT(o.ex, CS_E_REENTRANT);
    CHECK_INT(o.un2, CS_E_REENTRANT);
    CHECK_OK(cs_message_fetch(f.s, S(f.svc), S(f.ch), S(sid), NULL));
    /* the observer took no hold */
    CHECK_INT(cs_store_unlock(f.s), CS_E_LOCK_NOT_HELD);
    CHECK_LOCK_FREE(f.s);
    CHECK_INT(cs_store_lock_shared(f.s), CS_OK);
    CHECK_INT(cs_store_unlock(f.s), CS_OK);

    /* other kinds of change run the observer the same way */
    o.un = o.sh = o.ex = o.un2 = CS_OK;
    MUT_OK(f.s, cs_service_create(f.s, S("another"), NULL));
    CHECK_INT(o.n, 3);
    CHECK_INT(o.sh, CS_E_REENTRANT);
    CHECK_INT(o.ex, CS_E_REENTRANT);
    o.un = o.sh = o.ex = o.un2 = CS_OK;
    MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S("general"), CS_STR_ABSENT));
    CHECK_INT(o.n, 4);
    CHECK_INT(o.un, CS_E_REENTRANT);
    CHECK_INT(o.sh, CS_E_REENTRANT);
    CHECK_INT(o.ex, CS_E_REENTRANT);
    CHECK_INT(cs_channel_fetch(f.s, S(f.svc), S("general"), NULL),
              CS_E_NOT_FOUND);
    CHECK_LOCK_FREE(f.s);
    tu_close(&f);
    watchdog_off();
}

TEST(lock_per_thread_limit_is_lock_failed) {
    watchdog(__func__);
    enum { N = CS_LOCKS_PER_THREAD + 1 };
    cs_store *st[N];
    for (int i = 0; i < N; i++) {
        st[i] = new_store();
        if (!st[i]) {
            for (int j = 0; j < i; j++) cs_store_free(st[j]);
            return;
        }
    }
    for (int i = 0; i < CS_LOCKS_PER_THREAD; i++)
        CHECK_INT(i % 2 ? cs_store_lock_exclusive(st[i])
                        : cs_store_lock_shared(st[i]),
                  CS_OK);
    /* every one is held (the thread's bookkeeping knows each) */
    for (int i = 0; i < CS_LOCKS_PER_THREAD; i++)
        CHECK_INT(cs_store_lock_shared(st[i]), CS_E_LOCK_HELD);
    /* one more store: refused, and nothing taken */
    cs_store *extra = st[N - 1];
    CHECK_INT(cs_store_lock_shared(extra), CS_E_LOCK_FAILED);
    CHECK_INT(cs_store_lock_exclusive(extra), CS_E_LOCK_FAILED);
    CHECK_INT(cs_store_unlock(extra), CS_E_LOCK_NOT_HELD);
    CHECK_LOCK_FREE(extra);
    /* releasing all works, once each */
    for (int i = 0; i < CS_LOCKS_PER_THREAD; i++)
        CHECK_INT(cs_store_unlock(st[i]), CS_OK);
    for (int i = 0; i < CS_LOCKS_PER_THREAD; i++) {
        CHECK_INT(cs_store_unlock(st[i]), CS_E_LOCK_NOT_HELD);
        CHECK_LOCK_FREE(st[i]);
    }
    /* the released slots are usable again: the extra store now locks */
    CHECK_INT(cs_store_lock_exclusive(extra), CS_OK);
    CHECK_INT(cs_store_unlock(extra), CS_OK);
    for (int i = 0; i < N; i++) cs_store_free(st[i]);
    watchdog_off();
}

TEST(lock_store_free_by_holder_releases_its_hold) {
    watchdog(__func__);
    /* 20 stores, each freed while this thread holds its lock: a hold left
     * in the thread's table would exhaust it after CS_LOCKS_PER_THREAD, or
     * make a new store at the same address look held. */
    for (int i = 0; i < 20; i++) {
        cs_store *s = new_store();
        REQUIRE(s != NULL);
        cs_err e = i % 2 ? cs_store_lock_shared(s) : cs_store_lock_exclusive(s);
        CHECK_INT(e, CS_OK);
        if (i % 2 == 0) CHECK_INT(cs_service_create(s, S("x"), NULL), CS_OK);
        cs_store_free(s);
    }
    /* a full table's worth at once still works */
    cs_store *st[CS_LOCKS_PER_THREAD];
    for (int i = 0; i < CS_LOCKS_PER_THREAD; i++) {
        st[i] = new_store();
        REQUIRE(st[i] != NULL);
        CHECK_INT(cs_store_lock_exclusive(st[i]), CS_OK);
    }
    for (int i = 0; i < CS_LOCKS_PER_THREAD; i++) cs_store_free(st[i]);
    /* and after freeing them all while held, a new store locks normally */
    cs_store *s = new_store();
    REQUIRE(s != NULL);
    CHECK_INT(cs_store_unlock(s), CS_E_LOCK_NOT_HELD);
    CHECK_INT(cs_store_lock_shared(s), CS_OK);
    CHECK_INT(cs_store_unlock(s), CS_OK);
    CHECK_LOCK_FREE(s);
    cs_store_free(s);
    watchdog_off();
}

/* ======================================================================== */
/* 2. cs_store_clear                                                         */
/* ======================================================================== */

typedef struct obs_clear {
    tu_fx *f;
    int n;
    cs_err r;
    char *before, *after;
    uint64_t commits_before, commits_after;
} obs_clear;

static void on_event_clear(void *ctx, const cs_event *ev) {
    obs_clear *o = ctx;
    (void)ev;
    if (o->n++) return;
    cs_store_stats st;
    o->before = tu_dump(o->f);
    cs_store_stats_get(o->f->s, &st);
    o->commits_before = st.commits;
    o->r = cs_store_clear(o->f->s);
    cs_store_stats_get(o->f->s, &st);
    o->commits_after = st.commits;
    o->after = tu_dump(o->f);
}

static void clear_from_observer_of(tu_fx *f, int which) {
    obs_clear o;
    memset(&o, 0, sizeof o);
    o.f = f;
    o.r = CS_OK;
    uint64_t id;
    REQUIRE_OK(cs_observer_add(f->s, on_event_clear, &o, &id));
    cs_store_stats st0, st1;
    cs_store_stats_get(f->s, &st0);
    if (which == 0) {
        MUT_OK(f->s, tu_msg(f, "trigger", NULL));
    } else {
        MUT_OK(f->s, cs_channel_delete(f->s, S(f->svc), S("doomed"),
                                       CS_STR_ABSENT));
    }
    CHECK_INT(o.n, 1);
    CHECK_INT(o.r, CS_E_REENTRANT);
    REQUIRE(o.before && o.after);
    CHECK_STR(o.after, o.before);
    CHECK_INT(o.commits_after, o.commits_before);
    CHECK(strstr(o.before, "services=0") == NULL);
    cs_store_stats_get(f->s, &st1);
    CHECK_INT(st1.commits, st0.commits + 1); /* the trigger alone */
    CHECK_INT(st1.services, st0.services);
    CHECK(st1.messages > 0);
    /* after the callback the store is as the observer saw it */
    char *now = tu_dump(f);
    CHECK_STR(now, o.after);
    free(now);
    free(o.before);
    free(o.after);
    CHECK_OK(cs_observer_remove(f->s, id));
}

TEST(clear_inside_observer_is_reentrant_and_changes_nothing) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 5));
    REQUIRE(tu_media(&f, "a.pdf", NULL) == CS_OK);
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("doomed");
    cp.type_value = CS_CHANNEL_PRIVATE;
    MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &cp, NULL));
    REQUIRE(tu_msg_in(&f, "doomed", "d1", NULL, NULL) == CS_OK);
    clear_from_observer_of(&f, 0); /* during a create */
    clear_from_observer_of(&f, 1); /* during a delete */
    tu_close(&f);
}

/* cs_store_new_epoch from an observer is REENTRANT: no epoch, no commit. */
static void on_event_epoch(void *ctx, const cs_event *ev) {
    (void)ev;
    obs_clear *o = ctx;
    if (o->n++) return;
    o->before = tu_dump(o->f);
    uint32_t ep = 99;
    o->r = cs_store_new_epoch(o->f->s, &ep);
    if (ep != 99) o->r = CS_E_CORRUPT; /* *epoch written on failure */
    o->after = tu_dump(o->f);
}

TEST(new_epoch_inside_observer_is_reentrant) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    obs_clear o;
    memset(&o, 0, sizeof o);
    o.f = &f;
    REQUIRE_OK(cs_observer_add(f.s, on_event_epoch, &o, NULL));
    cs_store_stats st0, st1;
    cs_store_stats_get(f.s, &st0);
    MUT_OK(f.s, tu_msg(&f, "trigger", NULL));
    CHECK_INT(o.n, 1);
    CHECK_INT(o.r, CS_E_REENTRANT);
    REQUIRE(o.before && o.after);
    CHECK_STR(o.after, o.before);
    CHECK_INT(cs_store_epoch(f.s), 0);
    cs_store_stats_get(f.s, &st1);
    CHECK_INT(st1.commits, st0.commits + 1); /* the trigger alone */
    /* outside an observer it works, and the observer sees its event */
    CHECK_INT(cs_store_new_epoch(f.s, NULL), CS_OK);
    CHECK_INT(cs_store_epoch(f.s), 1);
    CHECK_INT(o.n, 2);
    free(o.before);
    free(o.after);
    tu_close(&f);
}

/* ---- event recorder ------------------------------------------------------ */

#define EV_MAX 256

typedef struct ev_rec {
    cs_event_type type;
    cs_webhook wh;
    uint64_t seq;
    bool msg, ch, svc, med; /* which views were non-NULL */
    char sid[CS_SID_BUFSZ];
    uint64_t rs, rc, rm, rmed;
    cs_err fetch; /* the event's resource, fetched inside the callback */
    cs_err check; /* cs_store_check inside the callback */
} ev_rec;

typedef struct ev_log {
    const cs_store *s;
    int n;
    ev_rec r[EV_MAX];
} ev_log;

static void ev_observe(void *ctx, const cs_event *ev) {
    ev_log *L = ctx;
    if (L->n >= EV_MAX) {
        L->n++;
        return;
    }
    ev_rec *r = &L->r[L->n++];
    memset(r, 0, sizeof *r);
    r->type = ev->type;
    r->wh = ev->webhook;
    r->seq = ev->seq;
    r->msg = ev->message != NULL;
    r->ch = ev->channel != NULL;
    r->svc = ev->service != NULL;
    r->med = ev->media != NULL;
    r->rs = ev->removed_services;
    r->rc = ev->removed_channels;
    r->rm = ev->removed_messages;
    r->rmed = ev->removed_media;
    r->fetch = CS_E__COUNT; /* nothing to fetch */
    if (ev->message) {
        const cs_message_view *m = ev->message;
        snprintf(r->sid, sizeof r->sid, "%s", m->sid);
        r->fetch = cs_message_fetch(L->s, S(m->service_sid), S(m->channel_sid),
                                    S(m->sid), NULL);
    } else if (ev->channel) {
        const cs_channel_view *c = ev->channel;
        snprintf(r->sid, sizeof r->sid, "%s", c->sid);
        r->fetch = cs_channel_fetch(L->s, S(c->service_sid), S(c->sid), NULL);
    } else if (ev->service) {
        snprintf(r->sid, sizeof r->sid, "%s", ev->service->sid);
        r->fetch = cs_service_fetch(L->s, S(ev->service->sid), NULL);
    } else if (ev->media) {
        cs_media_view mv;
        snprintf(r->sid, sizeof r->sid, "%s", ev->media->sid);
        r->fetch = cs_media_fetch(L->s, S(ev->media->service_sid),
                                  S(ev->media->sid), &mv);
    }
    r->check = cs_store_check(L->s);
}

static ev_log *ev_log_new(const cs_store *s) {
    ev_log *L = calloc(1, sizeof *L);
    if (!L) abort();
    L->s = s;
    return L;
}

/* What the one event of a call must be. */
typedef struct ev_exp {
    cs_event_type type;
    const char *sid; /* the SID the call returned */
    cs_webhook wh;
    uint64_t rs, rc, rm, rmed;
    cs_err fetch; /* OK after create/update, NOT_FOUND after delete */
} ev_exp;

/* The call just made produced exactly one event, as x says, numbered one
 * more than the previous commit; *seen and *seq advance. */
static void ev_one(int line, const ev_log *L, const cs_store *s, int *seen,
                   uint64_t *seq, ev_exp x) {
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    if (L->n != *seen + 1) {
        CHECK_FAIL_("line %d: %d events, expected 1", line, L->n - *seen);
        *seen = L->n;
        *seq = st.commits;
        return;
    }
    const ev_rec *r = &L->r[*seen];
    bool want_msg = x.type >= CS_EVENT_MESSAGE_CREATED &&
                    x.type <= CS_EVENT_MESSAGE_DELETED;
    bool want_ch = x.type >= CS_EVENT_CHANNEL_CREATED &&
                   x.type <= CS_EVENT_CHANNEL_DELETED;
    bool want_svc = x.type >= CS_EVENT_SERVICE_CREATED &&
                    x.type <= CS_EVENT_SERVICE_DELETED;
    bool want_med = x.type == CS_EVENT_MEDIA_CREATED ||
                    x.type == CS_EVENT_MEDIA_DELETED;
    if (r->type != x.type)
        CHECK_FAIL_("line %d: event type %d, expected %d", line, r->type,
                    x.type);
    if (r->msg != want_msg || r->ch != want_ch || r->svc != want_svc ||
        r->med != want_med)
        CHECK_FAIL_("line %d: views message=%d channel=%d service=%d "
                    "media=%d, expected %d %d %d %d",
                    line, r->msg, r->ch, r->svc, r->med, want_msg, want_ch,
                    want_svc, want_med);
    if (x.sid && strcmp(r->sid, x.sid) != 0)
        CHECK_FAIL_("line %d: event SID %s, expected %s", line, r->sid, x.sid);
    if (r->wh != x.wh)
        CHECK_FAIL_("line %d: webhook %d, expected %d", line, r->wh, x.wh);
    if (r->seq != *seq + 1)
        CHECK_FAIL_("line %d: seq %llu, expected %llu", line,
                    (unsigned long long)r->seq,
                    (unsigned long long)(*seq + 1));
    if (r->seq != st.commits)
        CHECK_FAIL_("line %d: seq %llu, stats.commits %llu", line,
                    (unsigned long long)r->seq,
                    (unsigned long long)st.commits);
    if (r->rs != x.rs || r->rc != x.rc || r->rm != x.rm || r->rmed != x.rmed)
        CHECK_FAIL_("line %d: removed %llu/%llu/%llu/%llu, expected "
                    "%llu/%llu/%llu/%llu",
                    line, (unsigned long long)r->rs,
                    (unsigned long long)r->rc, (unsigned long long)r->rm,
                    (unsigned long long)r->rmed, (unsigned long long)x.rs,
                    (unsigned long long)x.rc, (unsigned long long)x.rm,
                    (unsigned long long)x.rmed);
    if (x.type != CS_EVENT_STORE_CLEARED &&
        x.type != CS_EVENT_EPOCH_STARTED && r->fetch != x.fetch)
        CHECK_FAIL_("line %d: fetch inside the observer: %s, expected %s",
                    line, cs_err_name(r->fetch), cs_err_name(x.fetch));
    if (r->check != CS_OK)
        CHECK_FAIL_("line %d: cs_store_check inside the observer: %s", line,
                    cs_err_name(r->check));
    *seen = L->n;
    *seq = r->seq;
}

#define EV_ONE(...) ev_one(__LINE__, L, f.s, &seen, &seq, (ev_exp){__VA_ARGS__})

/* A call that must fail with en, notify nobody, commit nothing and leave
 * the store's dump as it was. */
#define QUIET_FAIL(fx, L, expr, en)                                           \
    do {                                                                      \
        int n0_ = (L)->n;                                                     \
        cs_store_stats s0_, s1_;                                              \
        char *d0_ = tu_dump(fx);                                              \
        cs_store_stats_get((fx)->s, &s0_);                                    \
        cs_err e_ = (expr);                                                   \
        cs_store_stats_get((fx)->s, &s1_);                                    \
        CHECK_STORE((fx)->s);                                                 \
        if (e_ != (en))                                                       \
            CHECK_FAIL_("%s -> %s, expected %s", #expr, cs_err_name(e_),      \
                        cs_err_name(en));                                     \
        if ((L)->n != n0_)                                                    \
            CHECK_FAIL_("%s notified %d observers' events", #expr,            \
                        (L)->n - n0_);                                        \
        if (s1_.commits != s0_.commits)                                       \
            CHECK_FAIL_("%s committed (commits %llu -> %llu)", #expr,         \
                        (unsigned long long)s0_.commits,                      \
                        (unsigned long long)s1_.commits);                     \
        char *d1_ = tu_dump(fx);                                              \
        if (strcmp(d0_, d1_) != 0)                                            \
            CHECK_FAIL_("%s changed the store", #expr);                       \
        free(d0_);                                                            \
        free(d1_);                                                            \
    } while (0)

TEST(clear_outside_observer_notifies_once_with_counts) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 4));
    REQUIRE(tu_media(&f, "a.pdf", NULL) == CS_OK);
    cs_service_view sv;
    MUT_REQ(f.s, cs_service_create(f.s, S("second"), &sv));
    char svc2[CS_SID_BUFSZ];
    snprintf(svc2, sizeof svc2, "%s", sv.sid);
    cs_channel_params cp = tu_cp();
    cp.type_value = CS_CHANNEL_PRIVATE;
    cs_channel_view cv;
    MUT_REQ(f.s, cs_channel_create(f.s, S(svc2), &cp, &cv));
    REQUIRE(tu_msg_in(&f, NULL, "x", NULL, NULL) == CS_OK);
    cs_message_params mp = tu_mp();
    MUT_REQ(f.s, cs_message_create(f.s, S(svc2), S(cv.sid), &mp, NULL));
    REQUIRE(tu_media_in(&f, svc2, "image/png", NULL, 5, NULL) == CS_OK);
    REQUIRE(tu_media_in(&f, svc2, "image/png", "b.png", 6, NULL) == CS_OK);

    ev_log *L = ev_log_new(f.s);
    REQUIRE_OK(cs_observer_add(f.s, ev_observe, L, NULL));
    cs_store_stats before, after;
    cs_store_stats_get(f.s, &before);
    CHECK_INT(before.services, 2);
    CHECK_INT(before.channels, 2);
    CHECK_INT(before.messages, 6);
    CHECK_INT(before.media, 3);
    int seen = 0;
    uint64_t seq = before.commits;
    MUT_OK(f.s, cs_store_clear(f.s));
    EV_ONE(.type = CS_EVENT_STORE_CLEARED, .wh = CS_WEBHOOK_ABSENT,
           .rs = before.services, .rc = before.channels,
           .rm = before.messages, .rmed = before.media);
    cs_store_stats_get(f.s, &after);
    CHECK_INT(after.services, 0);
    CHECK_INT(after.channels, 0);
    CHECK_INT(after.messages, 0);
    CHECK_INT(after.media, 0);
    CHECK_INT(after.commits, before.commits + 1); /* not reset */
    /* clearing an empty store is a change too, and numbered */
    MUT_OK(f.s, cs_store_clear(f.s));
    EV_ONE(.type = CS_EVENT_STORE_CLEARED, .wh = CS_WEBHOOK_ABSENT);
    /* the observer stays registered, and numbering goes on */
    MUT_OK(f.s, cs_service_create(f.s, S("after"), &sv));
    EV_ONE(.type = CS_EVENT_SERVICE_CREATED, .sid = sv.sid,
           .wh = CS_WEBHOOK_ABSENT, .fetch = CS_OK);
    free(L);
    tu_close(&f);
}

/* ======================================================================== */
/* 3. Stale pages                                                            */
/* ======================================================================== */

/* The next message of pg: the index, or -1 when iteration stopped. */
static int64_t next_index(const cs_store *s, cs_page *pg) {
    cs_message_view v;
    return cs_page_next_message(s, pg, &v) ? v.index : -1;
}

/* A stale page: no item, error PAGE_STALE, and rendering refuses without
 * touching the buffer. */
static void check_stale(int line, const cs_store *s, cs_page *pg) {
    cs_message_view mv;
    cs_channel_view cv;
    cs_service_view sv;
    bool got = pg->kind == CS_PAGE_MESSAGES ? cs_page_next_message(s, pg, &mv)
               : pg->kind == CS_PAGE_CHANNELS
                   ? cs_page_next_channel(s, pg, &cv)
                   : cs_page_next_service(s, pg, &sv);
    if (got) CHECK_FAIL_("line %d: a stale page yielded an item", line);
    if (pg->error != CS_E_PAGE_STALE)
        CHECK_FAIL_("line %d: page error %s, expected PAGE_STALE", line,
                    cs_err_name(pg->error));
    /* rewinding does not revive it */
    cs_page_rewind(pg);
    got = pg->kind == CS_PAGE_MESSAGES ? cs_page_next_message(s, pg, &mv)
          : pg->kind == CS_PAGE_CHANNELS ? cs_page_next_channel(s, pg, &cv)
                                         : cs_page_next_service(s, pg, &sv);
    if (got) CHECK_FAIL_("line %d: a rewound stale page yielded an item", line);
    if (pg->error != CS_E_PAGE_STALE)
        CHECK_FAIL_("line %d: rewound page error %s", line,
                    cs_err_name(pg->error));
    /* a growable buffer with earlier output, and a fixed one */
    cs_buf b;
    cs_buf_init(&b, NULL);
    cs_service_view any;
    cs_page sp;
    if (cs_service_list(s, NULL, &sp) == CS_OK &&
        cs_page_next_service(s, &sp, &any))
        (void)cs_render_service(s, &any, &b);
    size_t len0 = b.len;
    char *copy = malloc(len0 + 1);
    if (!copy) abort();
    if (len0) memcpy(copy, b.data, len0 + 1);
    cs_err e = cs_render_page(s, pg, &b);
    if (e != CS_E_PAGE_STALE)
        CHECK_FAIL_("line %d: cs_render_page -> %s, expected PAGE_STALE", line,
                    cs_err_name(e));
    if (b.len != len0 || (len0 && memcmp(b.data, copy, len0 + 1) != 0))
        CHECK_FAIL_("line %d: cs_render_page changed the buffer", line);
    free(copy);
    cs_buf_free(&b);
    /* a fixed buffer holding earlier output */
    char mem[64], snap[64];
    cs_buf fb;
    cs_buf_init_fixed(&fb, mem, sizeof mem);
    memset(mem, 'z', sizeof mem);
    mem[10] = '\0';
    fb.len = 10; /* ten bytes of earlier output, NUL-terminated */
    memcpy(snap, mem, sizeof mem);
    e = cs_render_page(s, pg, &fb);
    if (e != CS_E_PAGE_STALE || fb.len != 10)
        CHECK_FAIL_("line %d: fixed buffer: %s, len %zu", line, cs_err_name(e),
                    fb.len);
    if (memcmp(mem, snap, sizeof mem) != 0)
        CHECK_FAIL_("line %d: cs_render_page wrote into the fixed buffer",
                    line);
}

#define CHECK_STALE(s, pg) check_stale(__LINE__, (s), (pg))

TEST(stale_message_page_after_create) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 30));
    cs_page pg;
    REQUIRE_OK(tu_list(&f, NULL, "10", NULL, NULL, &pg));
    CHECK_INT(pg.count, 10);
    CHECK_INT(pg.error, CS_OK);
    for (int i = 0; i < 3; i++) CHECK_INT(next_index(f.s, &pg), i);
    char next[CS_TOKEN_BUFSZ];
    snprintf(next, sizeof next, "%s", pg.next_token);
    REQUIRE(next[0] != '\0');
    MUT_REQ(f.s, tu_msg(&f, "the change", NULL));
    CHECK_STALE(f.s, &pg);
    /* the tokens survive: listing again continues where the page ended */
    CHECK_STR(pg.next_token, next);
    cs_page p2;
    REQUIRE_OK(tu_list(&f, NULL, "10", NULL, next, &p2));
    CHECK_INT(p2.count, 10);
    for (int i = 10; i < 20; i++) CHECK_INT(next_index(f.s, &p2), i);
    /* a page read to its end: false, and no error */
    CHECK_INT(next_index(f.s, &p2), -1);
    CHECK_INT(p2.error, CS_OK);
    /* the last page holds the new message */
    char last[CS_TOKEN_BUFSZ];
    snprintf(last, sizeof last, "%s", p2.next_token);
    cs_page p3;
    REQUIRE_OK(tu_list(&f, NULL, "10", NULL, last, &p3));
    CHECK_INT(p3.count, 10);
    CHECK(p3.next_token[0] != '\0');
    int64_t idx[16];
    CHECK_INT(tu_page_indices(f.s, &p3, idx, 16), 10);
    CHECK_INT(idx[0], 20);
    cs_page p4;
    REQUIRE_OK(tu_list(&f, NULL, "10", NULL, p3.next_token, &p4));
    CHECK_INT(p4.count, 1);
    CHECK_INT(next_index(f.s, &p4), 30);
    CHECK_INT(next_index(f.s, &p4), -1);
    CHECK_INT(p4.error, CS_OK);
    tu_close(&f);
}

TEST(stale_channel_page_after_channel_delete) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sids[13][CS_SID_BUFSZ];
    snprintf(sids[0], CS_SID_BUFSZ, "%s", f.ch);
    for (int i = 1; i < 13; i++) {
        char un[16];
        snprintf(un, sizeof un, "ch%d", i);
        cs_channel_params cp = tu_cp();
        cp.unique_name = S(un);
        cs_channel_view cv;
        MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &cp, &cv));
        snprintf(sids[i], CS_SID_BUFSZ, "%s", cv.sid);
    }
    cs_page_params q = tu_qp();
    q.page_size = S("5");
    cs_page pg;
    REQUIRE_OK(cs_channel_list(f.s, S(f.svc), &q, &pg));
    CHECK_INT(pg.count, 5);
    cs_channel_view cv;
    for (int i = 0; i < 2; i++) {
        REQUIRE(cs_page_next_channel(f.s, &pg, &cv));
        CHECK_STR(cv.sid, sids[i]);
    }
    char next[CS_TOKEN_BUFSZ];
    snprintf(next, sizeof next, "%s", pg.next_token);
    REQUIRE(next[0] != '\0');
    /* delete one already read on this page */
    MUT_REQ(f.s, cs_channel_delete(f.s, S(f.svc), S(sids[1]), CS_STR_ABSENT));
    CHECK_STALE(f.s, &pg);
    q.page_token = S(next);
    cs_page p2;
    REQUIRE_OK(cs_channel_list(f.s, S(f.svc), &q, &p2));
    CHECK_INT(p2.count, 5);
    for (int i = 5; i < 10; i++) {
        REQUIRE(cs_page_next_channel(f.s, &p2, &cv));
        CHECK_STR(cv.sid, sids[i]);
    }
    CHECK(!cs_page_next_channel(f.s, &p2, &cv));
    CHECK_INT(p2.error, CS_OK);
    tu_close(&f);
}

TEST(stale_service_page_after_service_delete) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char sids[9][CS_SID_BUFSZ];
    snprintf(sids[0], CS_SID_BUFSZ, "%s", f.svc);
    for (int i = 1; i < 9; i++) {
        char name[16];
        snprintf(name, sizeof name, "svc%d", i);
        cs_service_view sv;
        MUT_REQ(f.s, cs_service_create(f.s, S(name), &sv));
        snprintf(sids[i], CS_SID_BUFSZ, "%s", sv.sid);
    }
    cs_page_params q = tu_qp();
    q.page_size = S("3");
    cs_page pg;
    REQUIRE_OK(cs_service_list(f.s, &q, &pg));
    CHECK_INT(pg.count, 3);
    cs_service_view sv;
    REQUIRE(cs_page_next_service(f.s, &pg, &sv));
    CHECK_STR(sv.sid, sids[0]);
    char next[CS_TOKEN_BUFSZ];
    snprintf(next, sizeof next, "%s", pg.next_token);
    REQUIRE(next[0] != '\0');
    /* delete one not yet read on this page */
    MUT_REQ(f.s, cs_service_delete(f.s, S(sids[2])));
    CHECK_STALE(f.s, &pg);
    q.page_token = S(next);
    cs_page p2;
    REQUIRE_OK(cs_service_list(f.s, &q, &p2));
    CHECK_INT(p2.count, 3);
    for (int i = 3; i < 6; i++) {
        REQUIRE(cs_page_next_service(f.s, &p2, &sv));
        CHECK_STR(sv.sid, sids[i]);
    }
    CHECK(!cs_page_next_service(f.s, &p2, &sv));
    CHECK_INT(p2.error, CS_OK);
    tu_close(&f);
}

TEST(stale_page_not_caused_by_failed_or_noop_calls) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 30));
    char msid[CS_SID_BUFSZ];
    REQUIRE(tu_msg(&f, "target", msid) == CS_OK);
    cs_page pg;
    REQUIRE_OK(tu_list(&f, NULL, "10", NULL, NULL, &pg));
    cs_buf b;
    cs_buf_init(&b, NULL);
    char *rendered = strdup(tu_render_page(f.s, &pg, &b));
    REQUIRE(rendered != NULL);
    for (int i = 0; i < 3; i++) CHECK_INT(next_index(f.s, &pg), i);
    cs_store_stats st0, st1;
    cs_store_stats_get(f.s, &st0);

    /* failed mutations */
    cs_message_params mp = tu_mp();
    mp.attributes = S("{not json");
    MUT_FAILS(f.s, cs_message_create(f.s, S(f.svc), S(f.ch), &mp, NULL), 400,
              50304);
    MUT_FAILS(f.s,
              cs_message_delete(f.s, S(f.svc), S(f.ch),
                                S("IM00000000000000000000000000000000"),
                                CS_STR_ABSENT),
              404, 20404);
    MUT_FAILS(f.s,
              cs_message_delete(f.s, S(f.svc), S(f.ch), S(msid), S("maybe")),
              400, 20001);
    MUT_FAILS(f.s, cs_channel_delete(f.s, S(f.svc), S("nope"), CS_STR_ABSENT),
              404, 20404);
    MUT_FAILS(f.s, cs_service_delete(f.s, S("IS00000000000000000000000000000000")),
              404, 20404);
    MUT_FAILS(f.s, cs_service_create(f.s, S(""), NULL), 400, 20001);
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("general"); /* taken */
    MUT_FAILS(f.s, cs_channel_create(f.s, S(f.svc), &cp, NULL), 409, 50307);
    MUT_FAILS(f.s, cs_media_create(f.s, S(f.svc), S("nonsense"), CS_STR_ABSENT,
                                   1, NULL),
              400, 50511);
    /* no-op updates */
    MUT_OK(f.s, cs_service_update(f.s, S(f.svc), CS_STR_ABSENT, NULL));
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(f.ch), NULL, NULL));
    cs_channel_params none = tu_cp();
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(f.ch), &none, NULL));
    MUT_OK(f.s, cs_message_update(f.s, S(f.svc), S(f.ch), S(msid), NULL, NULL));
    cs_message_params mnone = tu_mp();
    MUT_OK(f.s,
           cs_message_update(f.s, S(f.svc), S(f.ch), S(msid), &mnone, NULL));
    /* nor do the lock calls */
    CHECK_INT(cs_store_lock_exclusive(f.s), CS_OK);
    CHECK_INT(cs_store_unlock(f.s), CS_OK);

    cs_store_stats_get(f.s, &st1);
    CHECK_INT(st1.commits, st0.commits);
    /* the page reads on, to its end, without error */
    for (int i = 3; i < 10; i++) CHECK_INT(next_index(f.s, &pg), i);
    CHECK_INT(next_index(f.s, &pg), -1);
    CHECK_INT(pg.error, CS_OK);
    CHECK_STR(tu_render_page(f.s, &pg, &b), rendered);
    CHECK_INT(pg.error, CS_OK);
    free(rendered);
    cs_buf_free(&b);
    tu_close(&f);
}

/* ======================================================================== */
/* 4. Events                                                                 */
/* ======================================================================== */

TEST(events_for_every_committed_change) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    ev_log *L = ev_log_new(f.s);
    REQUIRE_OK(cs_observer_add(f.s, ev_observe, L, NULL));
    cs_store_stats st;
    cs_store_stats_get(f.s, &st);
    CHECK_INT(st.commits, 2); /* the fixture's service and channel */
    int seen = 0;
    uint64_t seq = st.commits;

    /* services */
    cs_service_view sv;
    MUT_REQ(f.s, cs_service_create(f.s, S("events"), &sv));
    char svc[CS_SID_BUFSZ];
    snprintf(svc, sizeof svc, "%s", sv.sid);
    EV_ONE(.type = CS_EVENT_SERVICE_CREATED, .sid = svc, .fetch = CS_OK);
    MUT_REQ(f.s, cs_service_update(f.s, S(svc), S("renamed"), &sv));
    EV_ONE(.type = CS_EVENT_SERVICE_UPDATED, .sid = svc, .fetch = CS_OK);

    /* channels, with the webhook in both forms */
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("a");
    cp.webhook = S("TRUE");
    cs_channel_view cv;
    MUT_REQ(f.s, cs_channel_create(f.s, S(svc), &cp, &cv));
    char cha[CS_SID_BUFSZ];
    snprintf(cha, sizeof cha, "%s", cv.sid);
    EV_ONE(.type = CS_EVENT_CHANNEL_CREATED, .sid = cha, .wh = CS_WEBHOOK_TRUE,
           .fetch = CS_OK);
    cp = tu_cp();
    cp.unique_name = S("b");
    cp.type_value = CS_CHANNEL_PRIVATE;
    cp.webhook_value = CS_WEBHOOK_FALSE;
    MUT_REQ(f.s, cs_channel_create(f.s, S(svc), &cp, &cv));
    char chb[CS_SID_BUFSZ];
    snprintf(chb, sizeof chb, "%s", cv.sid);
    EV_ONE(.type = CS_EVENT_CHANNEL_CREATED, .sid = chb,
           .wh = CS_WEBHOOK_FALSE, .fetch = CS_OK);
    cp = tu_cp();
    cp.friendly_name = S("A");
    cp.webhook = S("false");
    MUT_REQ(f.s, cs_channel_update(f.s, S(svc), S("a"), &cp, &cv));
    EV_ONE(.type = CS_EVENT_CHANNEL_UPDATED, .sid = cha,
           .wh = CS_WEBHOOK_FALSE, .fetch = CS_OK);
    cp = tu_cp();
    cp.attributes = S("{\"k\":1}");
    cp.webhook_value = CS_WEBHOOK_TRUE;
    MUT_REQ(f.s, cs_channel_update(f.s, S(svc), S(chb), &cp, &cv));
    EV_ONE(.type = CS_EVENT_CHANNEL_UPDATED, .sid = chb, .wh = CS_WEBHOOK_TRUE,
           .fetch = CS_OK);

    /* media */
    char me[2][CS_SID_BUFSZ];
    for (int i = 0; i < 2; i++) {
        cs_media_view mv;
        MUT_REQ(f.s, cs_media_create(f.s, S(svc), S("image/png"), S("x.png"),
                                     100 + (uint64_t)i, &mv));
        snprintf(me[i], CS_SID_BUFSZ, "%s", mv.sid);
        EV_ONE(.type = CS_EVENT_MEDIA_CREATED, .sid = me[i], .fetch = CS_OK);
    }
    /* a never-attached item deleted alone */
    {
        cs_media_view mv;
        MUT_REQ(f.s, cs_media_create(f.s, S(svc), S("image/png"),
                                     CS_STR_ABSENT, 1, &mv));
        EV_ONE(.type = CS_EVENT_MEDIA_CREATED, .sid = mv.sid, .fetch = CS_OK);
        char gone[CS_SID_BUFSZ];
        snprintf(gone, sizeof gone, "%s", mv.sid);
        MUT_REQ(f.s, cs_media_delete(f.s, S(svc), S(gone)));
        EV_ONE(.type = CS_EVENT_MEDIA_DELETED, .sid = gone, .rmed = 1,
               .fetch = CS_E_NOT_FOUND);
    }

    /* messages: 3 in a, 2 in b (one with media) */
    char ms[5][CS_SID_BUFSZ];
    for (int i = 0; i < 5; i++) {
        cs_message_params mp = tu_mp();
        mp.body = S("hello");
        cs_webhook want = CS_WEBHOOK_ABSENT;
        if (i == 1) mp.webhook = S("true"), want = CS_WEBHOOK_TRUE;
        if (i == 2) mp.webhook_value = CS_WEBHOOK_FALSE, want = CS_WEBHOOK_FALSE;
        if (i == 3) mp.media_sid = S(me[0]);
        cs_message_view mv;
        MUT_REQ(f.s, cs_message_create(f.s, S(svc), S(i < 3 ? cha : chb), &mp,
                                       &mv));
        snprintf(ms[i], CS_SID_BUFSZ, "%s", mv.sid);
        EV_ONE(.type = CS_EVENT_MESSAGE_CREATED, .sid = ms[i], .wh = want,
               .fetch = CS_OK);
    }
    cs_message_params mp = tu_mp();
    mp.body = S("edited");
    mp.webhook = S("true");
    cs_message_view mv;
    MUT_REQ(f.s, cs_message_update(f.s, S(svc), S(cha), S(ms[0]), &mp, &mv));
    EV_ONE(.type = CS_EVENT_MESSAGE_UPDATED, .sid = ms[0],
           .wh = CS_WEBHOOK_TRUE, .fetch = CS_OK);
    mp = tu_mp();
    mp.attributes = S("{}");
    mp.webhook_value = CS_WEBHOOK_FALSE;
    MUT_REQ(f.s, cs_message_update(f.s, S(svc), S(cha), S(ms[1]), &mp, &mv));
    EV_ONE(.type = CS_EVENT_MESSAGE_UPDATED, .sid = ms[1],
           .wh = CS_WEBHOOK_FALSE, .fetch = CS_OK);

    /* a message delete (then a, with 2 live messages left, is deleted) */
    MUT_REQ(f.s, cs_message_delete(f.s, S(svc), S(cha), S(ms[2]),
                                   cs_webhook_str(CS_WEBHOOK_FALSE)));
    EV_ONE(.type = CS_EVENT_MESSAGE_DELETED, .sid = ms[2],
           .wh = CS_WEBHOOK_FALSE, .rm = 1, .fetch = CS_E_NOT_FOUND);
    MUT_REQ(f.s, cs_channel_delete(f.s, S(svc), S("a"),
                                   cs_webhook_str(CS_WEBHOOK_TRUE)));
    EV_ONE(.type = CS_EVENT_CHANNEL_DELETED, .sid = cha, .wh = CS_WEBHOOK_TRUE,
           .rc = 1, .rm = 2, .fetch = CS_E_NOT_FOUND);

    /* a service with 2 channels, 5 messages and 2 media */
    MUT_REQ(f.s, cs_channel_create(f.s, S(svc), NULL, &cv));
    EV_ONE(.type = CS_EVENT_CHANNEL_CREATED, .sid = cv.sid, .fetch = CS_OK);
    char chc[CS_SID_BUFSZ];
    snprintf(chc, sizeof chc, "%s", cv.sid);
    for (int i = 0; i < 3; i++) {
        MUT_REQ(f.s, cs_message_create(f.s, S(svc), S(chc), NULL, &mv));
        EV_ONE(.type = CS_EVENT_MESSAGE_CREATED, .sid = mv.sid,
               .fetch = CS_OK);
    }
    /* a deleted message is not counted again with its container */
    MUT_REQ(f.s, cs_message_delete(f.s, S(svc), S(chc), S(mv.sid),
                                   CS_STR_ABSENT));
    EV_ONE(.type = CS_EVENT_MESSAGE_DELETED, .sid = mv.sid, .rm = 1,
           .fetch = CS_E_NOT_FOUND);
    MUT_REQ(f.s, cs_message_create(f.s, S(svc), S(chc), NULL, &mv));
    EV_ONE(.type = CS_EVENT_MESSAGE_CREATED, .sid = mv.sid, .fetch = CS_OK);
    cs_store_stats_get(f.s, &st);
    CHECK_INT(st.services, 2);
    CHECK_INT(st.channels, 3);  /* general + b + c */
    CHECK_INT(st.messages, 5);  /* b: 2, c: 3 */
    CHECK_INT(st.media, 2);
    MUT_REQ(f.s, cs_service_delete(f.s, S(svc)));
    EV_ONE(.type = CS_EVENT_SERVICE_DELETED, .sid = svc, .rs = 1, .rc = 2,
           .rm = 5, .rmed = 2, .fetch = CS_E_NOT_FOUND);
    cs_store_stats_get(f.s, &st);
    CHECK_INT(st.services, 1);
    CHECK_INT(st.channels, 1);
    CHECK_INT(st.messages, 0);
    CHECK_INT(st.media, 0);

    /* a new SID epoch: no view, nothing removed */
    MUT_REQ(f.s, cs_store_new_epoch(f.s, NULL));
    EV_ONE(.type = CS_EVENT_EPOCH_STARTED);

    /* and the whole store */
    MUT_REQ(f.s, cs_store_clear(f.s));
    EV_ONE(.type = CS_EVENT_STORE_CLEARED, .rs = 1, .rc = 1);
    CHECK_INT(L->n, seen);
    free(L);
    tu_close(&f);
}

TEST(events_none_for_failed_calls) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char msid[CS_SID_BUFSZ], media_msg[CS_SID_BUFSZ], me[CS_SID_BUFSZ];
    REQUIRE(tu_msg(&f, "text", msid) == CS_OK);
    REQUIRE(tu_media(&f, "m.pdf", me) == CS_OK);
    cs_message_params mp = tu_mp();
    mp.media_sid = S(me);
    cs_message_view mv;
    MUT_REQ(f.s, cs_message_create(f.s, S(f.svc), S(f.ch), &mp, &mv));
    snprintf(media_msg, sizeof media_msg, "%s", mv.sid);
    ev_log *L = ev_log_new(f.s);
    REQUIRE_OK(cs_observer_add(f.s, ev_observe, L, NULL));
    const char *no_svc = "IS00000000000000000000000000000000";
    const char *no_msg = "IM00000000000000000000000000000000";

    /* services */
    QUIET_FAIL(&f, L, cs_service_create(f.s, S(""), NULL),
               CS_E_FRIENDLY_NAME_MISSING);
    QUIET_FAIL(&f, L, cs_service_create(f.s, CS_STR_ABSENT, NULL),
               CS_E_FRIENDLY_NAME_MISSING);
    QUIET_FAIL(&f, L, cs_service_create(f.s, S("\xff"), NULL), CS_E_BAD_UTF8);
    QUIET_FAIL(&f, L, cs_service_update(f.s, S(f.svc), S(""), NULL),
               CS_E_FRIENDLY_NAME_MISSING);
    QUIET_FAIL(&f, L, cs_service_update(f.s, S(no_svc), S("x"), NULL),
               CS_E_NOT_FOUND);
    QUIET_FAIL(&f, L, cs_service_delete(f.s, S(no_svc)), CS_E_NOT_FOUND);
    /* channels */
    cs_channel_params cp = tu_cp();
    cp.attributes = S("[1,");
    QUIET_FAIL(&f, L, cs_channel_create(f.s, S(f.svc), &cp, NULL),
               CS_E_ATTRIBUTES_INVALID);
    QUIET_FAIL(&f, L, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL),
               CS_E_ATTRIBUTES_INVALID);
    cp = tu_cp();
    cp.type = S("secret");
    QUIET_FAIL(&f, L, cs_channel_create(f.s, S(f.svc), &cp, NULL),
               CS_E_BAD_CHANNEL_TYPE);
    cp = tu_cp();
    cp.unique_name = S("general");
    QUIET_FAIL(&f, L, cs_channel_create(f.s, S(f.svc), &cp, NULL),
               CS_E_UNIQUE_NAME_EXISTS);
    QUIET_FAIL(&f, L, cs_channel_create(f.s, S(no_svc), NULL, NULL),
               CS_E_NOT_FOUND);
    QUIET_FAIL(&f, L, cs_channel_update(f.s, S(f.svc), S("nope"), &cp, NULL),
               CS_E_NOT_FOUND);
    QUIET_FAIL(&f, L, cs_channel_delete(f.s, S(f.svc), S(f.ch), S("yes")),
               CS_E_BAD_WEBHOOK_HEADER);
    QUIET_FAIL(&f, L,
               cs_channel_delete(f.s, S(f.svc), S("nope"), CS_STR_ABSENT),
               CS_E_NOT_FOUND);
    /* media */
    QUIET_FAIL(&f, L,
               cs_media_create(f.s, S(f.svc), CS_STR_ABSENT, CS_STR_ABSENT, 1,
                               NULL),
               CS_E_BAD_MEDIA_CONTENT_TYPE);
    QUIET_FAIL(&f, L,
               cs_media_create(f.s, S(f.svc), S("image/png"), CS_STR_ABSENT,
                               UINT64_C(157286401), NULL),
               CS_E_MEDIA_TOO_LARGE);
    QUIET_FAIL(&f, L,
               cs_media_create(f.s, S(no_svc), S("image/png"), CS_STR_ABSENT,
                               1, NULL),
               CS_E_NOT_FOUND);
    /* messages */
    mp = tu_mp();
    mp.attributes = S("{\"a\":}");
    QUIET_FAIL(&f, L, cs_message_create(f.s, S(f.svc), S(f.ch), &mp, NULL),
               CS_E_ATTRIBUTES_INVALID);
    QUIET_FAIL(&f, L,
               cs_message_update(f.s, S(f.svc), S(f.ch), S(msid), &mp, NULL),
               CS_E_ATTRIBUTES_INVALID);
    mp = tu_mp();
    mp.media_sid = S(me); /* already sent */
    QUIET_FAIL(&f, L, cs_message_create(f.s, S(f.svc), S(f.ch), &mp, NULL),
               CS_E_MEDIA_IN_USE);
    QUIET_FAIL(&f, L, cs_message_create(f.s, S(f.svc), S("nope"), NULL, NULL),
               CS_E_NOT_FOUND);
    mp = tu_mp();
    mp.body = S("new body");
    QUIET_FAIL(&f, L,
               cs_message_update(f.s, S(f.svc), S(f.ch), S(media_msg), &mp,
                                 NULL),
               CS_E_MEDIA_BODY_IMMUTABLE);
    QUIET_FAIL(&f, L,
               cs_message_update(f.s, S(f.svc), S(f.ch), S(no_msg), &mp, NULL),
               CS_E_NOT_FOUND);
    QUIET_FAIL(&f, L,
               cs_message_delete(f.s, S(f.svc), S(f.ch), S(msid), S("1")),
               CS_E_BAD_WEBHOOK_HEADER);
    QUIET_FAIL(&f, L,
               cs_message_delete(f.s, S(f.svc), S(f.ch), S(no_msg),
                                 CS_STR_ABSENT),
               CS_E_NOT_FOUND);
    CHECK_INT(L->n, 0);
    free(L);
    tu_close(&f);
}

TEST(events_none_for_allocation_failure) {
    tu_alloc ta = {-1, 0};
    cs_allocator alc = {tu_alloc_malloc, tu_alloc_free, &ta};
    cs_options o = tu_options(TU_SEED);
    o.allocator = &alc;
    tu_fx f;
    REQUIRE(tu_open_opts(&f, &o));
    char msid[CS_SID_BUFSZ], svc2[CS_SID_BUFSZ];
    REQUIRE(tu_msg(&f, "short", msid) == CS_OK);
    cs_service_view sv;
    MUT_REQ(f.s, cs_service_create(f.s, S("doomed"), &sv));
    snprintf(svc2, sizeof svc2, "%s", sv.sid);
    ev_log *L = ev_log_new(f.s);
    REQUIRE_OK(cs_observer_add(f.s, ev_observe, L, NULL));
    int failures = 0;
    for (int op = 0; op < 10; op++) {
        bool done = false;
        for (long k = 0; k < 2000 && !done; k++) {
            cs_store_stats st0, st1;
            cs_store_stats_get(f.s, &st0);
            int n0 = L->n;
            char *d0 = tu_dump(&f);
            cs_err e;
            cs_message_params mp = tu_mp();
            cs_channel_params cp = tu_cp();
            ta.budget = k;
            switch (op) {
            case 0:
                e = cs_service_create(f.s, S("oom service"), NULL);
                break;
            case 1:
                e = cs_service_update(f.s, S(f.svc),
                                      S("a much longer service name"), NULL);
                break;
            case 2:
                cp.unique_name = S("oom");
                cp.friendly_name = S("OOM");
                cp.attributes = S("{\"a\":[1,2]}");
                cp.created_by = S("creator");
                cp.webhook_value = CS_WEBHOOK_TRUE;
                e = cs_channel_create(f.s, S(f.svc), &cp, NULL);
                break;
            case 3:
                cp.unique_name = S("oom-renamed");
                cp.friendly_name = S("Renamed");
                e = cs_channel_update(f.s, S(f.svc), S("oom"), &cp, NULL);
                break;
            case 4:
                e = cs_media_create(f.s, S(f.svc), S("image/gif"), S("a.gif"),
                                    10, NULL);
                break;
            case 5:
                mp.body = S("new message");
                mp.from = S("new-identity");
                mp.attributes = S("{\"x\":1}");
                mp.last_updated_by = S("another-identity");
                e = cs_message_create(f.s, S(f.svc), S(f.ch), &mp, NULL);
                break;
            case 6:
                mp.body = S("a changed, much longer body than the short one "
                            "it replaces, long enough to need a new record");
                mp.last_updated_by = S("editor");
                e = cs_message_update(f.s, S(f.svc), S(f.ch), S(msid), &mp,
                                      NULL);
                break;
            case 7:
                e = cs_message_delete(f.s, S(f.svc), S(f.ch), S(msid),
                                      CS_STR_ABSENT);
                break;
            case 8:
                e = cs_channel_delete(f.s, S(f.svc), S("oom-renamed"),
                                      CS_STR_ABSENT);
                break;
            default:
                e = cs_service_delete(f.s, S(svc2));
                break;
            }
            ta.budget = -1;
            cs_store_stats_get(f.s, &st1);
            CHECK_STORE(f.s);
            if (e == CS_OK) {
                done = true;
                CHECK_INT(L->n, n0 + 1);
                CHECK_INT(st1.commits, st0.commits + 1);
                if (L->n == n0 + 1) {
                    CHECK_INT(L->r[n0].seq, st1.commits);
                    CHECK_INT(L->r[n0].check, CS_OK);
                }
            } else {
                failures++;
                if (e != CS_E_NOMEM)
                    CHECK_FAIL_("op %d budget %ld: %s, expected NOMEM", op, k,
                                cs_err_name(e));
                if (L->n != n0)
                    CHECK_FAIL_("op %d budget %ld: failed call notified", op,
                                k);
                if (st1.commits != st0.commits)
                    CHECK_FAIL_("op %d budget %ld: failed call committed", op,
                                k);
                char *d1 = tu_dump(&f);
                if (strcmp(d0, d1) != 0)
                    CHECK_FAIL_("op %d budget %ld: failed call changed the "
                                "store", op, k);
                free(d1);
            }
            free(d0);
        }
        if (!done) CHECK_FAIL_("operation %d never succeeded", op);
    }
    CHECK(failures > 0); /* allocation failures were really exercised */
    CHECK(ta.fails > 0);
    free(L);
    tu_close(&f);
}

TEST(events_none_for_noop_updates) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char msid[CS_SID_BUFSZ];
    REQUIRE(tu_msg(&f, "text", msid) == CS_OK);
    ev_log *L = ev_log_new(f.s);
    REQUIRE_OK(cs_observer_add(f.s, ev_observe, L, NULL));
    cs_store_stats st0, st1;
    cs_store_stats_get(f.s, &st0);
    char *d0 = tu_dump(&f);
    tu_now += 100; /* a real update would move date_updated */

    cs_service_view sv;
    MUT_OK(f.s, cs_service_update(f.s, S(f.svc), CS_STR_ABSENT, &sv));
    CHECK_STR(sv.sid, f.svc);
    CHECK_INT(sv.date_updated, TU_T0);
    cs_channel_view cv;
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(f.ch), NULL, &cv));
    CHECK_STR(cv.sid, f.ch);
    CHECK_INT(cv.date_updated, TU_T0);
    cs_channel_params cp = tu_cp();
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S("general"), &cp, &cv));
    cp.type = S("private"); /* ignored by update */
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, &cv));
    CHECK_INT(cv.type, CS_CHANNEL_PUBLIC);
    cs_message_view mv;
    MUT_OK(f.s, cs_message_update(f.s, S(f.svc), S(f.ch), S(msid), NULL, &mv));
    CHECK_STR(mv.sid, msid);
    CHECK(!mv.was_edited);
    CHECK_INT(mv.date_updated, TU_T0);
    cs_message_params mp = tu_mp();
    MUT_OK(f.s, cs_message_update(f.s, S(f.svc), S(f.ch), S(msid), &mp, &mv));
    CHECK(!mv.was_edited);

    CHECK_INT(L->n, 0);
    cs_store_stats_get(f.s, &st1);
    CHECK_INT(st1.commits, st0.commits);
    char *d1 = tu_dump(&f);
    CHECK_STR(d1, d0);
    free(d0);
    free(d1);
    free(L);
    tu_close(&f);
}

/* ======================================================================== */
/* 5. Typed parameters, NULL params                                          */
/* ======================================================================== */

/* Two pages of the same request in two forms are the same page. */
static void same_page(int line, const cs_store *s, cs_page *a, cs_page *b) {
    if (a->kind != b->kind || a->page_size != b->page_size ||
        a->page != b->page || a->order_given != b->order_given ||
        a->descending != b->descending || a->count != b->count ||
        a->error != b->error)
        CHECK_FAIL_("line %d: pages differ: kind %d/%d size %u/%u page "
                    "%llu/%llu order %d%d/%d%d count %zu/%zu",
                    line, a->kind, b->kind, a->page_size, b->page_size,
                    (unsigned long long)a->page, (unsigned long long)b->page,
                    a->order_given, a->descending, b->order_given,
                    b->descending, a->count, b->count);
    if (strcmp(a->token, b->token) || strcmp(a->next_token, b->next_token) ||
        strcmp(a->prev_token, b->prev_token))
        CHECK_FAIL_("line %d: tokens differ: \"%s\" \"%s\" \"%s\" / \"%s\" "
                    "\"%s\" \"%s\"",
                    line, a->token, a->next_token, a->prev_token, b->token,
                    b->next_token, b->prev_token);
    cs_buf ba, bb;
    cs_buf_init(&ba, NULL);
    cs_buf_init(&bb, NULL);
    cs_err ea = cs_render_page(s, a, &ba), eb = cs_render_page(s, b, &bb);
    if (ea != CS_OK || eb != CS_OK)
        CHECK_FAIL_("line %d: render %s / %s", line, cs_err_name(ea),
                    cs_err_name(eb));
    else if (strcmp(ba.data, bb.data) != 0)
        CHECK_FAIL_("line %d: renderings differ:\n  %s\n  %s", line, ba.data,
                    bb.data);
    cs_buf_free(&ba);
    cs_buf_free(&bb);
}

#define SAME_PAGE(s, a, b) same_page(__LINE__, (s), (a), (b))

TEST(typed_page_params_match_string_forms) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 30));
    struct {
        const char *size, *page, *order;
        uint32_t size_v;
        uint64_t page_v;
        cs_order order_v;
    } cases[] = {
        {"7", NULL, NULL, 7, 0, CS_ORDER_UNSET},
        {NULL, "3", NULL, 0, 3, CS_ORDER_UNSET},
        {NULL, NULL, "desc", 0, 0, CS_ORDER_DESC},
        {NULL, NULL, "asc", 0, 0, CS_ORDER_ASC},
        {"4", "2", "desc", 4, 2, CS_ORDER_DESC},
        {"5000", NULL, NULL, 5000, 0, CS_ORDER_UNSET}, /* clamped alike */
        {"9", "9007199254740991", "asc", 9, CS_PAGE_MAX, CS_ORDER_ASC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cs_page_params qs = tu_qp(), qt = tu_qp();
        qs.page_size = S(cases[i].size);
        qs.page = S(cases[i].page);
        qs.order = S(cases[i].order);
        qt.page_size_value = cases[i].size_v;
        qt.page_value = cases[i].page_v;
        qt.order_value = cases[i].order_v;
        cs_page ps, pt;
        REQUIRE_OK(cs_message_list(f.s, S(f.svc), S(f.ch), &qs, &ps));
        REQUIRE_OK(cs_message_list(f.s, S(f.svc), S(f.ch), &qt, &pt));
        SAME_PAGE(f.s, &ps, &pt);
        CHECK(pt.count > 0);
        /* follow the next token in both forms */
        if (ps.next_token[0]) {
            char tok[CS_TOKEN_BUFSZ];
            snprintf(tok, sizeof tok, "%s", ps.next_token);
            qs.page_token = qt.page_token = S(tok);
            REQUIRE_OK(cs_message_list(f.s, S(f.svc), S(f.ch), &qs, &ps));
            REQUIRE_OK(cs_message_list(f.s, S(f.svc), S(f.ch), &qt, &pt));
            SAME_PAGE(f.s, &ps, &pt);
        }
    }
    /* the typed page size is honoured, not just matched */
    cs_page_params q = tu_qp();
    q.page_size_value = 7;
    q.order_value = CS_ORDER_DESC;
    cs_page pg;
    REQUIRE_OK(cs_message_list(f.s, S(f.svc), S(f.ch), &q, &pg));
    CHECK_INT(pg.page_size, 7);
    CHECK_INT(pg.count, 7);
    CHECK(pg.descending);
    CHECK(pg.order_given);
    CHECK_INT(next_index(f.s, &pg), 29);

    /* services */
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "s%d", i);
        MUT_REQ(f.s, cs_service_create(f.s, S(name), NULL));
    }
    cs_page_params qs = tu_qp(), qt = tu_qp();
    qs.page_size = S("2");
    qs.page = S("1");
    qt.page_size_value = 2;
    qt.page_value = 1;
    cs_page ps, pt;
    REQUIRE_OK(cs_service_list(f.s, &qs, &ps));
    REQUIRE_OK(cs_service_list(f.s, &qt, &pt));
    SAME_PAGE(f.s, &ps, &pt);
    CHECK_INT(pt.count, 2);

    /* channels: types as strings and as a mask */
    for (int i = 0; i < 6; i++) {
        cs_channel_params cp = tu_cp();
        cp.type_value = i % 2 ? CS_CHANNEL_PRIVATE : CS_CHANNEL_PUBLIC;
        MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &cp, NULL));
    }
    static const cs_str priv[1] = {{"private", 7}};
    static const cs_str both[2] = {{"private", 7}, {"public", 6}};
    static const cs_str pub[1] = {{"public", 6}};
    struct {
        const cs_str *types;
        size_t n;
        unsigned mask;
        size_t count;
    } tc[] = {
        {priv, 1, CS_CHANNEL_PRIVATE, 3},
        {pub, 1, CS_CHANNEL_PUBLIC, 4},
        {both, 2, CS_CHANNEL_PUBLIC | CS_CHANNEL_PRIVATE, 7},
    };
    for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
        qs = tu_qp();
        qt = tu_qp();
        qs.types = tc[i].types;
        qs.n_types = tc[i].n;
        qs.page_size = S("50");
        qt.types_mask = tc[i].mask;
        qt.page_size_value = 50;
        REQUIRE_OK(cs_channel_list(f.s, S(f.svc), &qs, &ps));
        REQUIRE_OK(cs_channel_list(f.s, S(f.svc), &qt, &pt));
        SAME_PAGE(f.s, &ps, &pt);
        CHECK_INT(pt.count, tc[i].count);
    }
    tu_close(&f);
}

TEST(typed_page_params_both_forms_and_out_of_range) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    REQUIRE(tu_msgs(&f, 3));
    static const cs_str pub[1] = {{"public", 6}};
    cs_page pg;
    cs_page_params q;
#define MSG_LIST_E(q, en)                                                     \
    CHECK_INT(cs_message_list(f.s, S(f.svc), S(f.ch), &(q), &pg), (en))
#define CH_LIST_E(q, en)                                                      \
    CHECK_INT(cs_channel_list(f.s, S(f.svc), &(q), &pg), (en))
#define SVC_LIST_E(q, en) CHECK_INT(cs_service_list(f.s, &(q), &pg), (en))
    /* both forms of one parameter */
    q = tu_qp();
    q.page_size = S("5");
    q.page_size_value = 5;
    MSG_LIST_E(q, CS_E_INVALID_ARGUMENT);
    CH_LIST_E(q, CS_E_INVALID_ARGUMENT);
    SVC_LIST_E(q, CS_E_INVALID_ARGUMENT);
    q = tu_qp();
    q.page = S("1");
    q.page_value = 1;
    MSG_LIST_E(q, CS_E_INVALID_ARGUMENT);
    CH_LIST_E(q, CS_E_INVALID_ARGUMENT);
    SVC_LIST_E(q, CS_E_INVALID_ARGUMENT);
    q = tu_qp();
    q.order = S("asc");
    q.order_value = CS_ORDER_ASC;
    MSG_LIST_E(q, CS_E_INVALID_ARGUMENT);
    q = tu_qp();
    q.types = pub;
    q.n_types = 1;
    q.types_mask = CS_CHANNEL_PUBLIC;
    CH_LIST_E(q, CS_E_INVALID_ARGUMENT);
    /* on error the page holds no items */
    CHECK_INT(pg.count, 0);
    /* out-of-range typed values */
    q = tu_qp();
    q.order_value = (cs_order)7;
    MSG_LIST_E(q, CS_E_BAD_ORDER);
    q = tu_qp();
    q.types_mask = 4;
    CH_LIST_E(q, CS_E_BAD_CHANNEL_TYPE);
    q.types_mask = 4 | CS_CHANNEL_PUBLIC;
    CH_LIST_E(q, CS_E_BAD_CHANNEL_TYPE);
    q = tu_qp();
    q.page_value = CS_PAGE_MAX + 1;
    MSG_LIST_E(q, CS_E_BAD_PAGE);
    CH_LIST_E(q, CS_E_BAD_PAGE);
    SVC_LIST_E(q, CS_E_BAD_PAGE);
    q.page_value = UINT64_MAX;
    MSG_LIST_E(q, CS_E_BAD_PAGE);
    /* the edges that are fine */
    q.page_value = CS_PAGE_MAX;
    MSG_LIST_E(q, CS_OK);
    CHECK(pg.page == CS_PAGE_MAX);
    q = tu_qp();
    q.page_size_value = UINT32_MAX; /* above the max: clamped */
    MSG_LIST_E(q, CS_OK);
    CHECK_INT(pg.page_size, 1000);
    CHECK_INT(pg.count, 3);
    q = tu_qp();
    q.page_size_value = 1;
    MSG_LIST_E(q, CS_OK);
    CHECK_INT(pg.count, 1);
#undef MSG_LIST_E
#undef CH_LIST_E
#undef SVC_LIST_E
    tu_close(&f);
}

TEST(typed_channel_type) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    cs_channel_params cp = tu_cp();
    cp.unique_name = S("hidden");
    cp.type_value = CS_CHANNEL_PRIVATE;
    cs_channel_view cv;
    MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &cp, &cv));
    CHECK_INT(cv.type, CS_CHANNEL_PRIVATE);
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S("hidden"), &cv));
    CHECK_INT(cv.type, CS_CHANNEL_PRIVATE);
    cs_buf b;
    cs_buf_init(&b, NULL);
    CHECK(strstr(tu_render_channel(f.s, &cv, &b), "\"type\": \"private\"") !=
          NULL);
    cs_buf_free(&b);
    /* not on the default (public) list, on the private one */
    cs_page pg;
    REQUIRE_OK(cs_channel_list(f.s, S(f.svc), NULL, &pg));
    CHECK_INT(pg.count, 1);
    cs_page_params q = tu_qp();
    q.types_mask = CS_CHANNEL_PRIVATE;
    REQUIRE_OK(cs_channel_list(f.s, S(f.svc), &q, &pg));
    CHECK_INT(pg.count, 1);
    REQUIRE(cs_page_next_channel(f.s, &pg, &cv));
    CHECK_CSTR(cv.unique_name, "hidden");
    /* PUBLIC typed makes a public one */
    cp = tu_cp();
    cp.type_value = CS_CHANNEL_PUBLIC;
    MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &cp, &cv));
    CHECK_INT(cv.type, CS_CHANNEL_PUBLIC);
    /* both forms, even agreeing */
    ev_log *L = ev_log_new(f.s);
    REQUIRE_OK(cs_observer_add(f.s, ev_observe, L, NULL));
    cp = tu_cp();
    cp.type = S("private");
    cp.type_value = CS_CHANNEL_PRIVATE;
    QUIET_FAIL(&f, L, cs_channel_create(f.s, S(f.svc), &cp, NULL),
               CS_E_INVALID_ARGUMENT);
    cp.type = S("public");
    QUIET_FAIL(&f, L, cs_channel_create(f.s, S(f.svc), &cp, NULL),
               CS_E_INVALID_ARGUMENT);
    cp = tu_cp();
    cp.type_value = (cs_channel_type)3;
    QUIET_FAIL(&f, L, cs_channel_create(f.s, S(f.svc), &cp, NULL),
               CS_E_BAD_CHANNEL_TYPE);
    free(L);
    tu_close(&f);
}

TEST(typed_webhook_and_webhook_str) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    char msid[CS_SID_BUFSZ];
    REQUIRE(tu_msg(&f, "target", msid) == CS_OK);
    ev_log *L = ev_log_new(f.s);
    REQUIRE_OK(cs_observer_add(f.s, ev_observe, L, NULL));
    cs_store_stats st;
    cs_store_stats_get(f.s, &st);
    int seen = 0;
    uint64_t seq = st.commits;

    /* cs_webhook_str */
    cs_str t = cs_webhook_str(CS_WEBHOOK_TRUE),
           fa = cs_webhook_str(CS_WEBHOOK_FALSE),
           ab = cs_webhook_str(CS_WEBHOOK_ABSENT),
           bad = cs_webhook_str((cs_webhook)99);
    CHECK_CSTR(t, "true");
    CHECK_CSTR(fa, "false");
    CHECK(ab.ptr == NULL);
    CHECK(bad.ptr == NULL);

    /* typed webhook in channel and message params reaches the observer */
    cs_webhook whs[2] = {CS_WEBHOOK_TRUE, CS_WEBHOOK_FALSE};
    for (int i = 0; i < 2; i++) {
        cs_channel_params cp = tu_cp();
        cp.webhook_value = whs[i];
        cs_channel_view cv;
        MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &cp, &cv));
        EV_ONE(.type = CS_EVENT_CHANNEL_CREATED, .sid = cv.sid, .wh = whs[i],
               .fetch = CS_OK);
        cp.friendly_name = S("x");
        MUT_REQ(f.s, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, &cv));
        EV_ONE(.type = CS_EVENT_CHANNEL_UPDATED, .sid = f.ch, .wh = whs[i],
               .fetch = CS_OK);
        cs_message_params mp = tu_mp();
        mp.webhook_value = whs[i];
        cs_message_view mv;
        MUT_REQ(f.s, cs_message_create(f.s, S(f.svc), S(f.ch), &mp, &mv));
        EV_ONE(.type = CS_EVENT_MESSAGE_CREATED, .sid = mv.sid, .wh = whs[i],
               .fetch = CS_OK);
        mp.body = S("edited");
        MUT_REQ(f.s,
                cs_message_update(f.s, S(f.svc), S(f.ch), S(msid), &mp, &mv));
        EV_ONE(.type = CS_EVENT_MESSAGE_UPDATED, .sid = msid, .wh = whs[i],
               .fetch = CS_OK);
    }

    /* both forms; an out-of-range typed value */
    cs_channel_params cp = tu_cp();
    cp.webhook = S("true");
    cp.webhook_value = CS_WEBHOOK_TRUE;
    QUIET_FAIL(&f, L, cs_channel_create(f.s, S(f.svc), &cp, NULL),
               CS_E_INVALID_ARGUMENT);
    cp.friendly_name = S("y");
    QUIET_FAIL(&f, L, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL),
               CS_E_INVALID_ARGUMENT);
    cp = tu_cp();
    cp.webhook_value = (cs_webhook)9;
    QUIET_FAIL(&f, L, cs_channel_create(f.s, S(f.svc), &cp, NULL),
               CS_E_BAD_WEBHOOK_HEADER);
    cp.friendly_name = S("y");
    QUIET_FAIL(&f, L, cs_channel_update(f.s, S(f.svc), S(f.ch), &cp, NULL),
               CS_E_BAD_WEBHOOK_HEADER);
    cs_message_params mp = tu_mp();
    mp.webhook = S("false");
    mp.webhook_value = CS_WEBHOOK_FALSE;
    QUIET_FAIL(&f, L, cs_message_create(f.s, S(f.svc), S(f.ch), &mp, NULL),
               CS_E_INVALID_ARGUMENT);
    mp.body = S("z");
    QUIET_FAIL(&f, L,
               cs_message_update(f.s, S(f.svc), S(f.ch), S(msid), &mp, NULL),
               CS_E_INVALID_ARGUMENT);
    mp = tu_mp();
    mp.webhook_value = (cs_webhook)9;
    QUIET_FAIL(&f, L, cs_message_create(f.s, S(f.svc), S(f.ch), &mp, NULL),
               CS_E_BAD_WEBHOOK_HEADER);
    mp.body = S("z");
    QUIET_FAIL(&f, L,
               cs_message_update(f.s, S(f.svc), S(f.ch), S(msid), &mp, NULL),
               CS_E_BAD_WEBHOOK_HEADER);

    /* cs_webhook_str in the delete calls */
    cs_webhook in[4] = {CS_WEBHOOK_TRUE, CS_WEBHOOK_FALSE, CS_WEBHOOK_ABSENT,
                        (cs_webhook)99};
    cs_webhook out[4] = {CS_WEBHOOK_TRUE, CS_WEBHOOK_FALSE, CS_WEBHOOK_ABSENT,
                         CS_WEBHOOK_ABSENT};
    for (int i = 0; i < 4; i++) {
        char sid[CS_SID_BUFSZ];
        REQUIRE(tu_msg(&f, "bye", sid) == CS_OK);
        seen = L->n;
        cs_store_stats_get(f.s, &st);
        seq = st.commits;
        MUT_OK(f.s, cs_message_delete(f.s, S(f.svc), S(f.ch), S(sid),
                                      cs_webhook_str(in[i])));
        EV_ONE(.type = CS_EVENT_MESSAGE_DELETED, .sid = sid, .wh = out[i],
               .rm = 1, .fetch = CS_E_NOT_FOUND);
        cs_channel_view cv;
        MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), NULL, &cv));
        char csid[CS_SID_BUFSZ];
        snprintf(csid, sizeof csid, "%s", cv.sid);
        seen = L->n;
        seq++;
        MUT_OK(f.s, cs_channel_delete(f.s, S(f.svc), S(csid),
                                      cs_webhook_str(in[i])));
        EV_ONE(.type = CS_EVENT_CHANNEL_DELETED, .sid = csid, .wh = out[i],
               .rc = 1, .fetch = CS_E_NOT_FOUND);
    }
    free(L);
    tu_close(&f);
}

TEST(null_params_mean_nothing_given) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    ev_log *L = ev_log_new(f.s);
    REQUIRE_OK(cs_observer_add(f.s, ev_observe, L, NULL));
    cs_store_stats st;
    cs_store_stats_get(f.s, &st);
    int seen = 0;
    uint64_t seq = st.commits;

    /* channel create: a public channel with no names, the defaults */
    cs_channel_view cv, cz;
    MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), NULL, &cv));
    EV_ONE(.type = CS_EVENT_CHANNEL_CREATED, .sid = cv.sid, .fetch = CS_OK);
    CHECK_INT(cv.type, CS_CHANNEL_PUBLIC);
    CHECK(cv.friendly_name.ptr == NULL);
    CHECK(cv.unique_name.ptr == NULL);
    CHECK_CSTR(cv.attributes, "{}");
    CHECK_CSTR(cv.created_by, "system");
    char nsid[CS_SID_BUFSZ];
    snprintf(nsid, sizeof nsid, "%s", cv.sid);
    /* the same as zeroed params */
    cs_channel_params cp = tu_cp();
    MUT_REQ(f.s, cs_channel_create(f.s, S(f.svc), &cp, &cz));
    seen = L->n;
    seq++;
    cs_buf b1, b2;
    cs_buf_init(&b1, NULL);
    cs_buf_init(&b2, NULL);
    CHECK_OK(cs_channel_fetch(f.s, S(f.svc), S(nsid), &cv));
    {
        const char *r1 = tu_render_channel(f.s, &cv, &b1);
        const char *r2 = tu_render_channel(f.s, &cz, &b2);
        /* identical but for the SIDs */
        CHECK_INT(strlen(r1), strlen(r2));
        CHECK(strstr(r1, "\"friendly_name\": null") != NULL);
        CHECK(strstr(r1, "\"unique_name\": null") != NULL);
        CHECK(strstr(r1, "\"type\": \"public\"") != NULL);
    }

    /* message create */
    cs_message_view mv;
    MUT_REQ(f.s, cs_message_create(f.s, S(f.svc), S(nsid), NULL, &mv));
    EV_ONE(.type = CS_EVENT_MESSAGE_CREATED, .sid = mv.sid, .fetch = CS_OK);
    char msid[CS_SID_BUFSZ];
    snprintf(msid, sizeof msid, "%s", mv.sid);
    CHECK_INT(mv.body.len, 0);
    CHECK_CSTR(mv.from, "system");
    CHECK_CSTR(mv.attributes, "{}");
    CHECK(mv.last_updated_by.ptr == NULL);
    CHECK_INT(mv.type, CS_MESSAGE_TEXT);
    CHECK_INT(mv.index, 0);
    CHECK(!mv.was_edited);

    /* updates: nothing given, nothing changes, nobody is notified */
    tu_now += 60;
    MUT_OK(f.s, cs_message_update(f.s, S(f.svc), S(nsid), S(msid), NULL, &mv));
    CHECK(!mv.was_edited);
    CHECK_INT(mv.date_updated, TU_T0);
    MUT_OK(f.s, cs_channel_update(f.s, S(f.svc), S(nsid), NULL, &cv));
    CHECK_INT(cv.date_updated, TU_T0);
    CHECK_INT(L->n, seen);
    cs_store_stats_get(f.s, &st);
    CHECK_INT(st.commits, seq);

    /* lists with q NULL: every parameter absent */
    for (int i = 0; i < 60; i++) REQUIRE(tu_msg(&f, "m", NULL) == CS_OK);
    cs_page_params z = tu_qp();
    cs_page pn, pz;
    REQUIRE_OK(cs_message_list(f.s, S(f.svc), S(f.ch), NULL, &pn));
    REQUIRE_OK(cs_message_list(f.s, S(f.svc), S(f.ch), &z, &pz));
    SAME_PAGE(f.s, &pn, &pz);
    CHECK_INT(pn.page_size, 50);
    CHECK_INT(pn.count, 50);
    CHECK(!pn.order_given);
    CHECK(!pn.descending);
    CHECK_INT(pn.page, 0);
    CHECK_INT(next_index(f.s, &pn), 0);
    REQUIRE_OK(cs_channel_list(f.s, S(f.svc), NULL, &pn));
    REQUIRE_OK(cs_channel_list(f.s, S(f.svc), &z, &pz));
    SAME_PAGE(f.s, &pn, &pz);
    CHECK_INT(pn.count, 3); /* public only: general and the two above */
    REQUIRE_OK(cs_service_list(f.s, NULL, &pn));
    REQUIRE_OK(cs_service_list(f.s, &z, &pz));
    SAME_PAGE(f.s, &pn, &pz);
    CHECK_INT(pn.count, 1);
    /* NULL q with a missing parent is still NOT_FOUND */
    CHECK_INT(cs_message_list(f.s, S(f.svc), S("nope"), NULL, &pn),
              CS_E_NOT_FOUND);
    CHECK_INT(cs_channel_list(f.s, S("IS00000000000000000000000000000000"),
                              NULL, &pn),
              CS_E_NOT_FOUND);
    cs_buf_free(&b1);
    cs_buf_free(&b2);
    free(L);
    tu_close(&f);
}

/* ======================================================================== */
/* 6. Error numbers                                                          */
/* ======================================================================== */

TEST(error_numbers_are_stable) {
    CHECK_INT(CS_E_OK, 0);
    CHECK_INT(CS_OK, 0);
    CHECK_INT(CS_E_NOMEM, 1);
    CHECK_INT(CS_E_INVALID_ARGUMENT, 2);
    CHECK_INT(CS_E_NOT_FOUND, 3);
    CHECK_INT(CS_E_REENTRANT, 5);
    CHECK_INT(CS_E_UNIQUE_NAME_EXISTS, 22);
    CHECK_INT(CS_E_MEDIA_TOO_LARGE, 33);
    CHECK_INT(CS_E_LOCK_HELD, 34);
    CHECK_INT(CS_E_LOCK_NOT_HELD, 35);
    CHECK_INT(CS_E_LOCK_FAILED, 36);
    CHECK_INT(CS_E_PAGE_STALE, 37);
    CHECK_INT(CS_E_JOURNAL_REFUSED, 38);
    CHECK_INT(CS_E_BAD_SNAPSHOT, 42);
    /* New errors take new numbers at the end. */
    CHECK(CS_E__COUNT >= 44);
    for (int i = 0; i < (int)CS_E__COUNT; i++) {
        const char *n = cs_err_name((cs_err)i);
        if (!n || !n[0] || strcmp(n, "UNKNOWN") == 0)
            CHECK_FAIL_("error %d has no name (%s)", i, n ? n : "(null)");
    }
    CHECK_STR(cs_err_name(CS_E__COUNT), "UNKNOWN");
    CHECK_STR(cs_err_name((cs_err)-1), "UNKNOWN");
    CHECK_STR(cs_err_name(CS_E_NOT_FOUND), "NOT_FOUND");
    CHECK_STR(cs_err_name(CS_E_LOCK_HELD), "LOCK_HELD");
    CHECK_STR(cs_err_name(CS_E_PAGE_STALE), "PAGE_STALE");
    CHECK_INT(cs_err_http_status(CS_E_UNIQUE_NAME_EXISTS), 409);
    CHECK_INT(cs_err_twilio_code(CS_E_MEDIA_TOO_LARGE), 50512);
    CHECK_INT(cs_err_http_status(CS_E__COUNT), 500);
    CHECK_INT(cs_err_twilio_code(CS_E__COUNT), 0);
}

static const check_test TESTS[] = {
    T(lock_shared_twice_is_lock_held_and_lock_stays_usable),
    T(lock_upgrade_and_exclusive_twice_are_lock_held),
    T(lock_unlock_without_hold_or_by_another_thread_is_not_held),
    T(lock_shared_again_while_writer_waits_is_lock_held_not_deadlock),
    T(lock_calls_inside_observer_are_reentrant),
    T(lock_per_thread_limit_is_lock_failed),
    T(lock_store_free_by_holder_releases_its_hold),
    T(clear_inside_observer_is_reentrant_and_changes_nothing),
    T(clear_outside_observer_notifies_once_with_counts),
    T(new_epoch_inside_observer_is_reentrant),
    T(stale_message_page_after_create),
    T(stale_channel_page_after_channel_delete),
    T(stale_service_page_after_service_delete),
    T(stale_page_not_caused_by_failed_or_noop_calls),
    T(events_for_every_committed_change),
    T(events_none_for_failed_calls),
    T(events_none_for_allocation_failure),
    T(events_none_for_noop_updates),
    T(typed_page_params_match_string_forms),
    T(typed_page_params_both_forms_and_out_of_range),
    T(typed_channel_type),
    T(typed_webhook_and_webhook_str),
    T(null_params_mean_nothing_given),
    T(error_numbers_are_stable),
};

CHECK_MAIN(TESTS)
