/* server/directory.c against a real JetStream: the test starts its own
 * nats-server on a free loopback port (and fails when it cannot: the
 * directory cannot be tested without one), opens two directories on two
 * connections as two servers of a cluster would, publishes what two shards
 * would, and checks that both answer GET /v2/Services with the same bytes,
 * and with what a single store holding the same services answers, page
 * tokens aside (their bounds and MAC keys differ by design). */
#include "check.h"
#include "directory.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define BASE "http://cluster.test:8080"
#define ACCOUNT "AC0123456789abcdef0123456789abcdef"

static pid_t nats_pid = -1;
static char nats_dir[64];
static char nats_url[64];

/* ---- the NATS server ---------------------------------------------------- */

static unsigned free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    socklen_t n = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &n)) {
        if (fd >= 0) close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void nats_stop(void) {
    if (nats_pid > 0) {
        kill(nats_pid, SIGTERM);
        waitpid(nats_pid, NULL, 0);
        nats_pid = -1;
    }
    if (nats_dir[0]) nftw(nats_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    nats_dir[0] = '\0';
}

/* Spawns nats-server -js on loopback on a free port; 0 or -1. Its store
 * and log live in nats_dir. */
static int nats_spawn(void) {
    unsigned port = free_port();
    char port_s[16], log[96];
    snprintf(port_s, sizeof port_s, "%u", port);
    snprintf(log, sizeof log, "%s/nats.log", nats_dir);
    snprintf(nats_url, sizeof nats_url, "nats://127.0.0.1:%u", port);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char a0[] = "nats-server", a1[] = "-js", a2[] = "-a", a3[] = "127.0.0.1",
         a4[] = "-p", a6[] = "-sd";
    char *argv[] = {a0, a1, a2, a3, a4, port_s, a6, nats_dir, NULL};
    int rc = posix_spawnp(&nats_pid, "nats-server", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc || !port) {
        nats_pid = -1;
        fprintf(stderr, "FAIL: cannot start nats-server (%s): the directory "
                        "tests need it (Debian package nats-server)\n",
                rc ? strerror(rc) : "no free port");
        return -1;
    }
    return 0;
}

/* A connection once the server answers (at most about 10 s), or NULL when
 * it exited (its port was taken meanwhile, say). */
static natsConnection *try_connect(void) {
    for (int i = 0; i < 200; i++) {
        natsConnection *nc = NULL;
        if (natsConnection_ConnectTo(&nc, nats_url) == NATS_OK) return nc;
        int st;
        if (waitpid(nats_pid, &st, WNOHANG) == nats_pid) {
            nats_pid = -1;
            return NULL;
        }
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Starts the server (three tries at a free port) or exits failing. The
 * directory lives under the current one (ctest runs tests in the build
 * tree). */
static void nats_start(void) {
    strcpy(nats_dir, "directory-nats.XXXXXX");
    if (!mkdtemp(nats_dir)) {
        nats_dir[0] = '\0';
        fprintf(stderr, "FAIL: mkdtemp\n");
        exit(1);
    }
    for (int t = 0; t < 3; t++) {
        if (nats_spawn()) break;
        natsConnection *nc = try_connect();
        if (nc) {
            natsConnection_Destroy(nc);
            return;
        }
    }
    fprintf(stderr, "FAIL: nats-server did not start\n");
    char log[96];
    snprintf(log, sizeof log, "%s/nats.log", nats_dir);
    FILE *f = fopen(log, "r");
    for (int c; f && (c = fgetc(f)) != EOF;) fputc(c, stderr);
    if (f) fclose(f);
    nats_stop();
    exit(1);
}

static natsConnection *connect_nats(void) {
    natsConnection *nc = try_connect();
    if (!nc) {
        fprintf(stderr, "FAIL: nats-server stopped answering on %s\n", nats_url);
        nats_stop();
        exit(1);
    }
    return nc;
}

/* ---- a cluster of two servers and a reference store --------------------- */

typedef struct node {
    natsConnection *nc;
    jsCtx *js;
    directory *d;
} node;

static node a, b;
static cs_store *ref; /* the same services in one store */

static void node_open(node *n) {
    char err[256] = "";
    n->nc = connect_nats();
    if (natsConnection_JetStream(&n->js, n->nc, NULL) != NATS_OK) abort();
    n->d = directory_open(n->js, 1, BASE, err, sizeof err);
    if (!n->d) {
        fprintf(stderr, "directory_open: %s\n", err);
        abort();
    }
}

static void node_close(node *n) {
    directory_close(n->d);
    jsCtx_Destroy(n->js);
    natsConnection_Destroy(n->nc);
    memset(n, 0, sizeof *n);
}

static void at_exit(void) {
    nats_stop();
    nats_Close();
}

/* A fresh cluster: no directory stream, no key yet. The NATS server starts
 * with the first test and stops when the program exits. */
static void setup(void) {
    if (nats_pid < 0) {
        nats_start();
        atexit(at_exit);
    }
    natsConnection *nc = connect_nats();
    jsCtx *js = NULL;
    if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK) abort();
    js_DeleteStream(js, DIRECTORY_STREAM, NULL, NULL);
    js_DeleteKeyValue(js, DIRECTORY_BUCKET);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    node_open(&a);
    node_open(&b);
    cs_options o = CS_OPTIONS_INIT;
    o.account_sid = ACCOUNT;
    o.base_url = BASE;
    if (cs_store_new(&o, &ref)) abort();
}

static void teardown(void) {
    node_close(&a);
    node_close(&b);
    cs_store_free(ref);
    ref = NULL;
}

/* Services created in the reference store in order; service i belongs to
 * shard i % 2, whose server (a or b) publishes it. */
#define MAXSV 64
static char sids[MAXSV][CS_SID_BUFSZ];
static size_t nsv;

static node *server_of(size_t i) { return i % 2 ? &b : &a; }

static int publish_service(size_t i) {
    cs_service_view v;
    cs_buf buf;
    cs_buf_init(&buf, NULL);
    if (cs_service_fetch(ref, cs_str_c(sids[i]), &v) ||
        cs_render_service(ref, &v, &buf))
        abort();
    int rc = directory_put(server_of(i)->d, (unsigned)(i % 2), sids[i],
                           buf.data, buf.len);
    cs_buf_free(&buf);
    return rc;
}

static void create(size_t count) {
    for (size_t k = 0; k < count; k++) {
        char name[32];
        cs_service_view v;
        snprintf(name, sizeof name, "service %zu", nsv);
        if (nsv == MAXSV || cs_service_create(ref, cs_str_c(name), &v)) abort();
        strcpy(sids[nsv], v.sid);
        CHECK_INT(publish_service(nsv), 0);
        nsv++;
    }
}

static void delete(size_t i) {
    CHECK_INT(cs_service_delete(ref, cs_str_c(sids[i])), CS_OK);
    CHECK_INT(directory_del(server_of(i)->d, (unsigned)(i % 2), sids[i]), 0);
}

/* ---- requests ------------------------------------------------------------ */

typedef struct query {
    const char *page_size, *page, *token; /* NULL: absent */
} query;

typedef struct answer {
    unsigned status;
    int code;
    char *body;
} answer;

static void answer_free(answer *x) {
    free(x->body);
    x->body = NULL;
}

static answer dir_list(directory *d, query q) {
    request rq = {0};
    rq.method = "GET";
    rq.path = "/v2/Services";
    if (q.page_size) params_add(&rq.query, "PageSize", 8, q.page_size, strlen(q.page_size));
    if (q.page) params_add(&rq.query, "Page", 4, q.page, strlen(q.page));
    if (q.token) params_add(&rq.query, "PageToken", 9, q.token, strlen(q.token));
    reply rp = {0};
    directory_list(d, &rq, &rp);
    params_free(&rq.query);
    answer x = {rp.status, rp.code, strdup(rp.body.data ? rp.body.data : "")};
    free(rp.body.data);
    return x;
}

/* What routes.c answers for the same query over the reference store. */
static answer ref_list(query q) {
    cs_page_params p = {0};
    if (q.page_size) p.page_size = cs_str_c(q.page_size);
    if (q.page) p.page = cs_str_c(q.page);
    if (q.token) p.page_token = cs_str_c(q.token);
    cs_page pg;
    reply rp = {0};
    cs_err e = cs_service_list(ref, &p, &pg);
    if (!e) e = cs_render_page(ref, &pg, &rp.body);
    if (e)
        reply_cs_error(&rp, e, "/v2/Services");
    else
        rp.status = 200;
    answer x = {rp.status, rp.code, strdup(rp.body.data ? rp.body.data : "")};
    cs_buf_free(&rp.body);
    return x;
}

/* The body with each page token's bound and MAC replaced by '#': what
 * must be equal between the directory and a single store. */
static char *masked(const char *s) {
    char *m = strdup(s);
    for (char *p = m; (p = strstr(p, "PageToken=PT")) != NULL;) {
        p += strlen("PageToken=PT") + 1; /* keep the kind letter */
        for (int i = 0; i < 32 && *p && *p != '"'; i++) *p++ = '#';
    }
    return m;
}

static int same_masked(const char *x, const char *y) {
    char *mx = masked(x), *my = masked(y);
    int same = !strcmp(mx, my);
    if (!same) fprintf(stderr, "  directory: %s\n  store:     %s\n", mx, my);
    free(mx);
    free(my);
    return same;
}

/* The query of a page link ("next_page_url" ...), or 0 when it is null. */
typedef struct plink {
    char page_size[16], page[24], token[48];
} plink;

static int follow(const char *body, const char *key, plink *l, query *q) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(body, pat);
    if (!p) return 0;
    p += strlen(pat);
    if (strncmp(p, "null", 4) == 0) return 0;
    const char *end = strchr(p + 1, '"');
    char url[512];
    snprintf(url, sizeof url, "%.*s", (int)(end - p - 1), p + 1);
    memset(l, 0, sizeof *l);
    char *qs = strchr(url, '?');
    /* strtok_r: the lister threads follow links at the same time */
    char *save = NULL;
    for (char *arg = qs ? strtok_r(qs + 1, "&", &save) : NULL; arg;
         arg = strtok_r(NULL, "&", &save)) {
        if (!strncmp(arg, "PageSize=", 9)) snprintf(l->page_size, sizeof l->page_size, "%s", arg + 9);
        if (!strncmp(arg, "Page=", 5)) snprintf(l->page, sizeof l->page, "%s", arg + 5);
        if (!strncmp(arg, "PageToken=", 10)) snprintf(l->token, sizeof l->token, "%s", arg + 10);
    }
    q->page_size = l->page_size;
    q->page = l->page;
    q->token = l->token[0] ? l->token : NULL;
    return 1;
}

static int count_items(const char *body) {
    int n = 0;
    for (const char *p = body; (p = strstr(p, "\"sid\": \"IS")); p++) n++;
    return n;
}

/* The directory's page for qd and the store's for qr are the same (tokens
 * masked), and so, to `depth` links further, are the pages their previous
 * and next links lead to: a token's bound is checked by following it. */
static void same_pages(directory *d, query qd, query qr, int depth) {
    answer x = dir_list(d, qd), r = ref_list(qr);
    CHECK_INT(x.status, r.status);
    CHECK(same_masked(x.body, r.body));
    static const char *const keys[] = {"previous_page_url", "next_page_url"};
    for (int k = 0; depth > 0 && k < 2; k++) {
        plink ld, lr;
        query nd, nr;
        int fd = follow(x.body, keys[k], &ld, &nd);
        int fr = follow(r.body, keys[k], &lr, &nr);
        CHECK_INT(fd, fr);
        if (fd && fr) same_pages(d, nd, nr, depth - 1);
    }
    answer_free(&x);
    answer_free(&r);
}

/* ---- tests ---------------------------------------------------------------- */

/* Both servers answer every page of a walk with the same bytes, and with
 * the store's page, tokens masked; following previous links back from the
 * last page gives the forward pages in reverse (PG7). */
static void walk_both_ways(void) {
    setup();
    nsv = 0;
    create(11);
    /* an update replaces the entry in place, keeping its position */
    cs_service_view v;
    CHECK_INT(cs_service_update(ref, cs_str_c(sids[3]), cs_str_c("renamed"), &v), CS_OK);
    CHECK_INT(publish_service(3), 0);
    char *pages[8];
    int np = 0;
    plink ld, lr;
    query qd = {"3", NULL, NULL}, qr = qd;
    for (;;) {
        answer x = dir_list(a.d, qd), y = dir_list(b.d, qd), r = ref_list(qr);
        CHECK_INT(x.status, 200);
        CHECK_STR(x.body, y.body);
        CHECK(same_masked(x.body, r.body));
        same_pages(a.d, qd, qr, 2);
        REQUIRE(np < 8);
        pages[np++] = strdup(x.body);
        int more = follow(x.body, "next_page_url", &ld, &qd);
        CHECK_INT(more, follow(r.body, "next_page_url", &lr, &qr));
        answer_free(&x);
        answer_free(&y);
        answer_free(&r);
        if (!more) break;
    }
    CHECK_INT(np, 4); /* 3 + 3 + 3 + 2 */
    /* pages of 5: a last page of one item has no next link */
    query q5 = {"5", NULL, NULL};
    same_pages(b.d, q5, q5, 4);
    CHECK(strstr(pages[1], "\"friendly_name\": \"renamed\"") != NULL);
    CHECK(strstr(pages[0], "\"previous_page_url\": null") != NULL);
    /* the last page back to the first through previous links */
    int k = np - 1;
    const char *cur = pages[k];
    char *held = NULL;
    while (follow(cur, "previous_page_url", &ld, &qd)) {
        answer x = dir_list(b.d, qd);
        REQUIRE(k > 0);
        k--;
        /* a previous page holds the same items as the forward one; its
         * own links and url differ only in their tokens' kinds and bounds */
        char *fx = strstr(x.body, "\"meta\""), *fp = strstr(pages[k], "\"meta\"");
        CHECK(fx && fp && fx - x.body == fp - pages[k] &&
              !memcmp(x.body, pages[k], (size_t)(fx - x.body)));
        /* and previous then next returns to the same place */
        answer n;
        query qn;
        plink ln;
        REQUIRE(follow(x.body, "next_page_url", &ln, &qn));
        n = dir_list(a.d, qn);
        fx = strstr(n.body, "\"meta\"");
        fp = strstr(pages[k + 1], "\"meta\"");
        CHECK(fx && fp && fx - n.body == fp - pages[k + 1] &&
              !memcmp(n.body, pages[k + 1], (size_t)(fx - n.body)));
        answer_free(&n);
        free(held);
        held = x.body;
        cur = held;
    }
    CHECK_INT(k, 0);
    free(held);
    for (int i = 0; i < np; i++) free(pages[i]);
    teardown();
}

/* Keyset tokens stay exact while services come and go on both shards
 * (PG8), exactly as the store's do. */
static void tokens_exact_under_changes(void) {
    setup();
    nsv = 0;
    create(6);
    query q = {"2", NULL, NULL};
    answer x = dir_list(a.d, q), r = ref_list(q);
    plink ld, lr;
    query qd, qr;
    REQUIRE(follow(x.body, "next_page_url", &ld, &qd));
    REQUIRE(follow(r.body, "next_page_url", &lr, &qr));
    answer_free(&x);
    answer_free(&r);
    delete(0);  /* before the bound */
    delete(2);  /* the first item past it */
    create(3);  /* appended: after everything */
    same_pages(b.d, qd, qr, 3);
    x = dir_list(b.d, qd);
    r = ref_list(qr);
    CHECK(strstr(x.body, sids[3]) && strstr(x.body, sids[4]));
    CHECK(!strstr(x.body, sids[2]));
    /* the previous link of that page: the 2 items just before it */
    query qp;
    plink lp, lrp;
    query qrp;
    REQUIRE(follow(x.body, "previous_page_url", &lp, &qp));
    REQUIRE(follow(r.body, "previous_page_url", &lrp, &qrp));
    answer_free(&x);
    answer_free(&r);
    same_pages(a.d, qp, qrp, 3);
    x = dir_list(a.d, qp);
    CHECK_INT(count_items(x.body), 1); /* only service 1 is left before */
    answer_free(&x);
    /* with nothing left before it, that previous page is empty, and its
     * next link leads back to the page (PG7, PG8) */
    delete(1);
    same_pages(a.d, qp, qrp, 3);
    x = dir_list(b.d, qp);
    CHECK(strstr(x.body, "\"services\": []") != NULL);
    answer_free(&x);
    /* a next token whose items are all deleted: an empty page with a
     * previous link and no next (PG8) */
    q.page_size = "5"; /* 3 4 5 6 7 | 8 */
    x = dir_list(a.d, q);
    r = ref_list(q);
    REQUIRE(follow(x.body, "next_page_url", &ld, &qd));
    REQUIRE(follow(r.body, "next_page_url", &lr, &qr));
    answer_free(&x);
    answer_free(&r);
    for (size_t i = 0; i < nsv; i++)
        if (!strcmp(sids[i], qd.token)) abort(); /* (tokens are not SIDs) */
    delete(8);
    same_pages(b.d, qd, qr, 3);
    x = dir_list(b.d, qd);
    CHECK(strstr(x.body, "\"services\": []") != NULL);
    CHECK(strstr(x.body, "\"next_page_url\": null") != NULL);
    CHECK(strstr(x.body, "\"previous_page_url\": null") == NULL);
    answer_free(&x);
    teardown();
}

/* Every server of the cluster accepts every other's tokens; forged,
 * edited and foreign ones are 400 / 20001 like the store's. */
static void tokens_across_servers_and_forged(void) {
    setup();
    nsv = 0;
    create(5);
    query q = {"2", NULL, NULL};
    answer x = dir_list(a.d, q);
    plink l;
    query qn;
    REQUIRE(follow(x.body, "next_page_url", &l, &qn));
    answer y = dir_list(a.d, qn), z = dir_list(b.d, qn);
    CHECK_INT(y.status, 200);
    CHECK_STR(y.body, z.body);
    CHECK_INT(count_items(y.body), 2);
    /* a third server joining later: the same table and the same key */
    node c;
    node_open(&c);
    answer w = dir_list(c.d, qn);
    CHECK_STR(w.body, y.body);
    CHECK_INT(directory_count(c.d), 5);
    answer_free(&w);
    node_close(&c);

    char good[48];
    snprintf(good, sizeof good, "%s", l.token);
    CHECK_INT(strlen(good), 35);
    char bad[10][64];
    int nb = 0;
    snprintf(bad[nb], sizeof bad[nb], "%s", good); bad[nb][10] ^= 1; nb++;           /* bound */
    snprintf(bad[nb], sizeof bad[nb], "%s", good); bad[nb][30] = bad[nb][30] == 'a' ? 'b' : 'a'; nb++; /* MAC */
    snprintf(bad[nb], sizeof bad[nb], "%s", good); bad[nb][2] = 'B'; nb++;           /* kind */
    snprintf(bad[nb], sizeof bad[nb], "%s", good); bad[nb][2] = 'D'; nb++;           /* direction */
    snprintf(bad[nb], sizeof bad[nb], "%.34s", good); nb++;                         /* truncated */
    snprintf(bad[nb], sizeof bad[nb], "%s0", good); nb++;                           /* extended */
    snprintf(bad[nb], sizeof bad[nb], "pt%s", good + 2); nb++;                      /* re-cased */
    snprintf(bad[nb], sizeof bad[nb], "%s", ""); nb++;                              /* empty */
    /* a token of a single store for the same position */
    answer r = ref_list(q);
    plink lr;
    query qr;
    REQUIRE(follow(r.body, "next_page_url", &lr, &qr));
    snprintf(bad[nb], sizeof bad[nb], "%s", lr.token); nb++;
    answer_free(&r);
    for (int i = 0; i < nb; i++) {
        query qb = {"2", "1", bad[i]};
        answer e = dir_list(i % 2 ? a.d : b.d, qb);
        answer s = ref_list(qb); /* the store refuses them too, but its own */
        CHECK_INT(e.status, 400);
        CHECK_INT(e.code, 20001);
        if (i < nb - 1) CHECK_STR(e.body, s.body);
        else CHECK_INT(s.status, 200);
        answer_free(&e);
        answer_free(&s);
    }
    /* and the store refuses the directory's */
    answer s = ref_list(qn);
    CHECK_INT(s.status, 400);
    answer_free(&s);
    answer_free(&x);
    answer_free(&y);
    answer_free(&z);
    teardown();
}

/* PageSize and Page take the store's rules and errors (PG2, PG3). */
static void page_size_and_page_rules(void) {
    setup();
    nsv = 0;
    create(3);
    static const query qs[] = {
        {"0", NULL, NULL},     {"-1", NULL, NULL},   {"", NULL, NULL},
        {"abc", NULL, NULL},   {"1.5", NULL, NULL},  {" 1", NULL, NULL},
        {"0x10", NULL, NULL},  {"+2", NULL, NULL},   {"5000", NULL, NULL},
        {"99999999999999999999", NULL, NULL},        {"0002", NULL, NULL},
        {NULL, NULL, NULL},    {"1", "", NULL},      {"1", "-1", NULL},
        {"1", "7", NULL},      {"1", "9007199254740991", NULL},
        {"1", "9007199254740992", NULL},             {"1", "00", NULL},
    };
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        answer x = dir_list(b.d, qs[i]), r = ref_list(qs[i]);
        CHECK_INT(x.status, r.status);
        CHECK_INT(x.code, r.code);
        if (!same_masked(x.body, r.body))
            CHECK_FAIL_("query %zu differs", i);
        answer_free(&x);
        answer_free(&r);
    }
    answer x = dir_list(a.d, qs[8]);
    CHECK(strstr(x.body, "\"page_size\": 1000") != NULL);
    answer_free(&x);
    teardown();
}

/* A shard's clear removes its services only; deletes of unknown SIDs and
 * malformed messages change nothing; bad arguments are refused. */
static void clear_del_and_bad_input(void) {
    setup();
    nsv = 0;
    create(6);
    CHECK_INT(directory_clear(b.d, 1), 0);
    for (size_t i = 1; i < 6; i += 2)
        CHECK_INT(cs_service_delete(ref, cs_str_c(sids[i])), CS_OK);
    CHECK_INT(directory_del(a.d, 0, "IS00000000000000000000000000000000"), 0);
    /* what no server publishes: skipped by every reader */
    natsMsg *m = NULL;
    REQUIRE(natsMsg_Create(&m, DIRECTORY_SUBJECT, NULL, "{}", 2) == NATS_OK);
    natsMsgHeader_Set(m, "Chatstore-Op", "put");
    natsMsgHeader_Set(m, "Chatstore-Shard", "1");
    natsMsgHeader_Set(m, "Chatstore-Sid", "IS0000");
    CHECK(js_PublishMsg(NULL, a.js, m, NULL, NULL) == NATS_OK);
    natsMsg_Destroy(m);
    CHECK(js_Publish(NULL, a.js, DIRECTORY_SUBJECT, "x", 1, NULL, NULL) == NATS_OK);
    query q = {NULL, NULL, NULL};
    answer x = dir_list(a.d, q), y = dir_list(b.d, q), r = ref_list(q);
    CHECK_STR(x.body, y.body);
    CHECK(same_masked(x.body, r.body));
    CHECK_INT(count_items(x.body), 3);
    CHECK_INT(directory_count(a.d), 3);
    CHECK_INT(directory_applied(a.d), directory_applied(b.d));
    CHECK_INT(directory_applied(a.d), 10); /* 6 puts, clear, del, 2 bad */
    answer_free(&x);
    answer_free(&y);
    answer_free(&r);

    CHECK_INT(directory_put(a.d, 0, "IS123", "{}", 2), -1);
    CHECK_INT(directory_put(a.d, 256, sids[0], "{}", 2), -1);
    CHECK_INT(directory_put(a.d, 0, sids[0], "{}", 0), -1);
    CHECK_INT(directory_put(a.d, 0, NULL, "{}", 2), -1);
    CHECK_INT(directory_del(a.d, 0, "CH00000000000000000000000000000000"), -1);
    CHECK_INT(directory_clear(a.d, 300), -1);
    CHECK_INT(directory_applied(a.d), 10);

    /* an empty directory renders [] with both links null (PG10) */
    CHECK_INT(directory_clear(a.d, 0), 0);
    for (size_t i = 0; i < 6; i += 2)
        CHECK_INT(cs_service_delete(ref, cs_str_c(sids[i])), CS_OK);
    x = dir_list(b.d, q);
    r = ref_list(q);
    CHECK_STR(x.body, r.body);
    answer_free(&x);
    answer_free(&r);
    teardown();
}

/* What one server publishes, the next list of any other shows at once
 * (read your writes across servers), many times over. */
static void read_your_writes_across_servers(void) {
    setup();
    nsv = 0;
    query q = {"1000", NULL, NULL};
    for (int i = 0; i < 20; i++) {
        create(1);
        answer x = dir_list(server_of(nsv)->d, q); /* the other server */
        CHECK_INT(count_items(x.body), (int)nsv);
        CHECK(strstr(x.body, sids[nsv - 1]) != NULL);
        answer_free(&x);
    }
    teardown();
}

/* routes.c answers GET /v2/Services from the directory when the server
 * has one, and from its own store otherwise; creates still go to the
 * store. */
static void routes_use_the_directory(void) {
    setup();
    nsv = 0;
    create(4);
    server sv;
    memset(&sv, 0, sizeof sv);
    sv.store = ref;
    sv.media = media_store_new(1000);
    REQUIRE(sv.media);
    for (int with = 0; with < 2; with++) {
        sv.directory = with ? a.d : NULL;
        /* a service in this store that the directory has not heard of */
        cs_service_view v;
        REQUIRE(cs_service_create(ref, cs_str_c("local only"), &v) == CS_OK);
        char local[CS_SID_BUFSZ];
        strcpy(local, v.sid);
        request rq = {0};
        rq.method = "GET";
        rq.path = "/v2/Services";
        params_add(&rq.query, "PageSize", 8, "1000", 4);
        reply rp = {0};
        route(&sv, &rq, &rp);
        CHECK_INT(rp.status, 200);
        REQUIRE(rp.body.data);
        CHECK_INT(strstr(rp.body.data, local) != NULL, !with);
        answer x = with ? dir_list(a.d, (query){"1000", NULL, NULL})
                        : ref_list((query){"1000", NULL, NULL});
        CHECK_STR(rp.body.data, x.body);
        answer_free(&x);
        free(rp.body.data);
        params_free(&rq.query);
        CHECK_INT(cs_service_delete(ref, cs_str_c(local)), CS_OK);
    }
    /* POST /v2/Services creates in the store, not in the directory */
    request rq = {0};
    rq.method = "POST";
    rq.path = "/v2/Services";
    params_add(&rq.form, "FriendlyName", 12, "posted", 6);
    reply rp = {0};
    route(&sv, &rq, &rp);
    CHECK_INT(rp.status, 201);
    CHECK_INT(directory_count(a.d), 4);
    free(rp.body.data);
    params_free(&rq.form);
    media_store_free(sv.media);
    teardown();
}

/* Lists on both servers from other threads while services are created and
 * deleted: every answer is a whole page (TSan checks the table's locking),
 * and once the writes are in, both servers answer alike. */
static int lister_errors;

static void *lister(void *arg) {
    directory *d = arg;
    int errors = 0;
    for (int i = 0; i < 40; i++) {
        query q = {"5", NULL, NULL};
        answer x = dir_list(d, q);
        if (x.status != 200 || count_items(x.body) > 5 ||
            !strstr(x.body, "\"key\": \"services\"}}"))
            errors++;
        plink l;
        query qn;
        if (follow(x.body, "next_page_url", &l, &qn)) {
            answer y = dir_list(d, qn);
            if (y.status != 200) errors++;
            answer_free(&y);
        }
        answer_free(&x);
    }
    __atomic_add_fetch(&lister_errors, errors, __ATOMIC_RELAXED);
    return NULL;
}

static void concurrent_lists_and_publishes(void) {
    setup();
    nsv = 0;
    lister_errors = 0;
    pthread_t t[2];
    REQUIRE(!pthread_create(&t[0], NULL, lister, a.d));
    if (pthread_create(&t[1], NULL, lister, b.d)) {
        pthread_join(t[0], NULL);
        REQUIRE(0);
    }
    for (int i = 0; i < 12; i++) {
        create(2);
        delete(nsv - 2);
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    CHECK_INT(lister_errors, 0);
    query q = {NULL, NULL, NULL};
    answer x = dir_list(a.d, q), y = dir_list(b.d, q), r = ref_list(q);
    CHECK_STR(x.body, y.body);
    CHECK(same_masked(x.body, r.body));
    CHECK_INT(count_items(x.body), 12);
    answer_free(&x);
    answer_free(&y);
    answer_free(&r);
    teardown();
}

static const check_test tests[] = {
    {"walk_both_ways", walk_both_ways},
    {"tokens_exact_under_changes", tokens_exact_under_changes},
    {"tokens_across_servers_and_forged", tokens_across_servers_and_forged},
    {"page_size_and_page_rules", page_size_and_page_rules},
    {"clear_del_and_bad_input", clear_del_and_bad_input},
    {"read_your_writes_across_servers", read_your_writes_across_servers},
    {"routes_use_the_directory", routes_use_the_directory},
    {"concurrent_lists_and_publishes", concurrent_lists_and_publishes},
};

CHECK_MAIN(tests)
