/* One store shared by writer and reader threads through the store's
 * reader/writer lock. Run under ThreadSanitizer in CI. Writers append to a
 * shared channel and to channels of their own, and edit and delete some of
 * their messages; readers page through the shared channel in both orders
 * and fetch messages by SID, checking order and content as they go. At the
 * end every surviving message is read back exactly once, in index order. */
#include "check.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

enum { WRITERS = 3, READERS = 3, PER_WRITER = 1500 };

static cs_store *store;
static char is[CS_SID_BUFSZ];
static atomic_int writers_done;
static atomic_long reader_pages, reader_errors;
/* SIDs each writer created, in creation order, and which it deleted. */
static char sids[WRITERS][PER_WRITER][CS_SID_BUFSZ];
static bool deleted[WRITERS][PER_WRITER];

static void *writer(void *arg) {
    int w = (int)(intptr_t)arg;
    char own[32], body[64];
    snprintf(own, sizeof own, "own-%d", w);
    for (int i = 0; i < PER_WRITER; i++) {
        cs_message_params p = {0};
        snprintf(body, sizeof body, "w%d-%d", w, i);
        p.body = cs_str_c(body);
        p.from = cs_str_c(own);
        cs_message_view v;
        cs_store_lock_exclusive(store);
        cs_err e = cs_message_create(store, cs_str_c(is), cs_str_c("shared"), &p, &v);
        if (!e) memcpy(sids[w][i], v.sid, CS_SID_BUFSZ);
        if (!e) e = cs_message_create(store, cs_str_c(is), cs_str_c(own), &p, NULL);
        if (!e && i % 7 == 3) { /* edit an earlier one */
            cs_message_params u = {0};
            u.attributes = cs_str_c("{\"edited\": true}");
            e = cs_message_update(store, cs_str_c(is), cs_str_c("shared"),
                                  cs_str_c(sids[w][i - 1]), &u, NULL);
        }
        if (!e && i % 11 == 5) {
            e = cs_message_delete(store, cs_str_c(is), cs_str_c("shared"),
                                  cs_str_c(sids[w][i - 2]), CS_STR_ABSENT);
            deleted[w][i - 2] = true;
        }
        cs_store_unlock(store);
        if (e) {
            fprintf(stderr, "writer %d: %s\n", w, cs_err_name(e));
            atomic_fetch_add(&reader_errors, 1);
            break;
        }
    }
    atomic_fetch_add(&writers_done, 1);
    return NULL;
}

/* Pages through the shared channel; indices must be strictly monotonic
 * within a page and bodies must match their author's pattern. */
static void read_pass(bool desc) {
    char token[CS_TOKEN_BUFSZ] = "";
    int64_t last = desc ? INT64_MAX : -1;
    for (;;) {
        cs_page_params q = {0};
        q.page_size = cs_str_c("37");
        q.order = cs_str_c(desc ? "desc" : "asc");
        if (token[0]) q.page_token = cs_str_c(token);
        cs_page pg;
        cs_store_lock_shared(store);
        cs_err e = cs_message_list(store, cs_str_c(is), cs_str_c("shared"), &q, &pg);
        cs_message_view v;
        while (!e && cs_page_next_message(store, &pg, &v)) {
            bool ok = desc ? v.index < last : v.index > last;
            if (!ok || v.body.len < 4 || v.body.ptr[0] != 'w')
                atomic_fetch_add(&reader_errors, 1);
            last = v.index;
            cs_message_view f;
            if (cs_message_fetch(store, cs_str_c(is), cs_str_c("shared"),
                                 cs_str_c(v.sid), &f) ||
                f.index != v.index)
                atomic_fetch_add(&reader_errors, 1);
        }
        if (!e) memcpy(token, pg.next_token, sizeof token);
        cs_store_unlock(store);
        if (e) atomic_fetch_add(&reader_errors, 1);
        atomic_fetch_add(&reader_pages, 1);
        if (e || !token[0]) break;
    }
}

static void *reader(void *arg) {
    bool desc = ((intptr_t)arg) % 2;
    while (atomic_load(&writers_done) < WRITERS) read_pass(desc);
    read_pass(desc);
    return NULL;
}

TEST(threads_writers_and_readers_share_one_store) {
    REQUIRE(cs_store_new(NULL, &store) == CS_OK);
    cs_service_view sv;
    REQUIRE(cs_service_create(store, cs_str_c("threads"), &sv) == CS_OK);
    memcpy(is, sv.sid, CS_SID_BUFSZ);
    const char *names[] = {"shared", "own-0", "own-1", "own-2"};
    for (int i = 0; i < 4; i++) {
        cs_channel_params p = {0};
        p.unique_name = cs_str_c(names[i]);
        REQUIRE(cs_channel_create(store, cs_str_c(is), &p, NULL) == CS_OK);
    }
    pthread_t t[WRITERS + READERS];
    for (intptr_t i = 0; i < READERS; i++)
        pthread_create(&t[WRITERS + i], NULL, reader, (void *)i);
    for (intptr_t i = 0; i < WRITERS; i++)
        pthread_create(&t[i], NULL, writer, (void *)i);
    for (int i = 0; i < WRITERS + READERS; i++) pthread_join(t[i], NULL);

    CHECK_INT(atomic_load(&reader_errors), 0);
    CHECK(atomic_load(&reader_pages) > READERS);
    CHECK_INT(cs_store_check(store), CS_OK);

    /* Every surviving message exactly once, in index order, with content
     * that matches what its writer created. */
    size_t expected = 0;
    for (int w = 0; w < WRITERS; w++)
        for (int i = 0; i < PER_WRITER; i++) expected += !deleted[w][i];
    cs_channel_view cv;
    REQUIRE(cs_channel_fetch(store, cs_str_c(is), cs_str_c("shared"), &cv) == CS_OK);
    CHECK_INT(cv.messages_count, expected);
    int next_of[WRITERS] = {0};
    size_t seen = 0;
    char token[CS_TOKEN_BUFSZ] = "";
    int64_t last = -1;
    for (;;) {
        cs_page_params q = {0};
        q.page_size = cs_str_c("500");
        if (token[0]) q.page_token = cs_str_c(token);
        cs_page pg;
        REQUIRE(cs_message_list(store, cs_str_c(is), cs_str_c("shared"), &q, &pg) == CS_OK);
        cs_message_view v;
        while (cs_page_next_message(store, &pg, &v)) {
            int w, i;
            REQUIRE(sscanf(v.body.ptr, "w%d-%d", &w, &i) == 2);
            REQUIRE(w >= 0 && w < WRITERS && i >= 0 && i < PER_WRITER);
            while (next_of[w] < i && deleted[w][next_of[w]]) next_of[w]++;
            CHECK_INT(i, next_of[w]); /* each writer's messages in its order */
            CHECK_STR(v.sid, sids[w][i]);
            CHECK(!deleted[w][i]);
            CHECK(v.index > last);
            last = v.index;
            next_of[w] = i + 1;
            seen++;
        }
        memcpy(token, pg.next_token, sizeof token);
        if (!token[0]) break;
    }
    CHECK_INT(seen, expected);
    for (int w = 0; w < WRITERS; w++) {
        char own[32];
        snprintf(own, sizeof own, "own-%d", w);
        REQUIRE(cs_channel_fetch(store, cs_str_c(is), cs_str_c(own), &cv) == CS_OK);
        CHECK_INT(cv.messages_count, PER_WRITER);
    }
    cs_store_free(store);
}

static const check_test tests[] = {
    T(threads_writers_and_readers_share_one_store),
};
CHECK_MAIN(tests)
