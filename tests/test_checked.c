/* Death tests of the checked build (CMake option CHATSTORE_CHECKED): a
 * NULL where the header says "must not be NULL" aborts on entry (an assert,
 * so SIGABRT) instead of crashing somewhere inside or corrupting the store.
 * Each call runs in a forked child; the parent checks how the child ended.
 * An unchecked library would fault (SIGSEGV) or return: both fail here.
 * Registered only when CHATSTORE_CHECKED is on. */
#include "test_util.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* How a forked child running fn(f) ended: its exit status, or its signal
 * number + 1000. */
static int run_child(void (*fn)(tu_fx *), tu_fx *f) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        CHECK_FAIL_("fork failed");
        return -1;
    }
    if (pid == 0) {
        /* no core files for the expected aborts */
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);
        fn(f);
        _exit(0); /* the call returned: not checked */
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return -1;
}

#define CHECK_ABORTS(fn, f)                                                   \
    do {                                                                      \
        int how_ = run_child((fn), (f));                                      \
        if (how_ != 1000 + SIGABRT)                                           \
            CHECK_FAIL_("%s: child ended with %s %d, expected SIGABRT",       \
                        #fn, how_ >= 1000 ? "signal" : "exit status",         \
                        how_ >= 1000 ? how_ - 1000 : how_);                   \
    } while (0)

/* ---- the calls, each with one NULL it must not get ------------------------ */

static void call_message_create_null_store(tu_fx *f) {
    cs_message_params p = tu_mp();
    p.body = S("x");
    (void)cs_message_create(NULL, S(f->svc), S("general"), &p, NULL);
}

static void call_message_list_null_out(tu_fx *f) {
    (void)cs_message_list(f->s, S(f->svc), S("general"), NULL, NULL);
}

static void call_stats_null_out(tu_fx *f) { cs_store_stats_get(f->s, NULL); }

static void call_render_message_null_view(tu_fx *f) {
    cs_buf b;
    cs_buf_init(&b, NULL);
    (void)cs_render_message(f->s, NULL, &b);
    cs_buf_free(&b);
}

static void call_store_new_null_out(tu_fx *f) {
    cs_options o = tu_options(TU_SEED);
    (void)f;
    (void)cs_store_new(&o, NULL);
}

/* The same calls with valid arguments: the harness tells a return from an
 * abort (and the checks do not fire on valid calls). */
static void call_valid(tu_fx *f) {
    cs_message_params p = tu_mp();
    p.body = S("x");
    cs_message_view mv;
    if (cs_message_create(f->s, S(f->svc), S("general"), &p, &mv) != CS_OK)
        _exit(2);
    cs_page pg;
    if (cs_message_list(f->s, S(f->svc), S("general"), NULL, &pg) != CS_OK)
        _exit(3);
    cs_store_stats st;
    cs_store_stats_get(f->s, &st);
    if (st.messages != 1) _exit(4);
    cs_buf b;
    cs_buf_init(&b, NULL);
    if (cs_render_message(f->s, &mv, &b) != CS_OK) _exit(5);
    cs_buf_free(&b);
    cs_store *t = NULL;
    if (cs_store_new(NULL, &t) != CS_OK) _exit(6);
    cs_store_free(t);
}

TEST(checked_valid_calls_return) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_INT(run_child(call_valid, &f), 0);
    tu_close(&f);
}

TEST(checked_message_create_null_store_aborts) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_ABORTS(call_message_create_null_store, &f);
    tu_close(&f);
}

TEST(checked_message_list_null_out_aborts) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_ABORTS(call_message_list_null_out, &f);
    tu_close(&f);
}

TEST(checked_store_stats_get_null_out_aborts) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_ABORTS(call_stats_null_out, &f);
    tu_close(&f);
}

TEST(checked_render_message_null_view_aborts) {
    tu_fx f;
    REQUIRE(tu_open(&f));
    CHECK_ABORTS(call_render_message_null_view, &f);
    tu_close(&f);
}

TEST(checked_store_new_null_out_aborts) {
    CHECK_ABORTS(call_store_new_null_out, NULL);
}

static const check_test TESTS[] = {
    T(checked_valid_calls_return),
    T(checked_message_create_null_store_aborts),
    T(checked_message_list_null_out_aborts),
    T(checked_store_stats_get_null_out_aborts),
    T(checked_render_message_null_view_aborts),
    T(checked_store_new_null_out_aborts),
};

CHECK_MAIN(TESTS)
