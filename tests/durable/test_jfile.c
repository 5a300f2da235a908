/* server/jfile.c, the journal file of chatstore-server --data-dir: its
 * header and sync slots, appending through the mapping across extensions,
 * closing and reopening, refusing when the file cannot grow (a file size
 * limit standing in for a full disk), and the writer, the preparing thread
 * and a syncing thread at once (the TSan build checks them). */
#include "check.h"
#include "jfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static int dfd = -1;

static void setup(void) {
    if (dfd >= 0) return;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/chatstore-jfile-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Reads a whole file; *n its size. */
static uint8_t *slurp(const char *name, size_t *n) {
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) return NULL;
    *n = (size_t)st.st_size;
    uint8_t *b = malloc(*n + 1);
    size_t got = 0;
    while (b && got < *n) {
        ssize_t k = read(fd, b + got, *n - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got != *n) {
        free(b);
        return NULL;
    }
    return b;
}

/* Record i: len 44 + i % 300 bytes, each byte a function of i and its
 * place. */
static size_t rec_len(uint32_t i) { return 44 + i % 300; }
static void rec_fill(uint8_t *r, uint32_t i) {
    for (size_t k = 0; k < rec_len(i); k++) r[k] = (uint8_t)(i * 31 + k * 7 + 1);
}

/* Checks that the file holds a header for `first`, then exactly records
 * 0 .. n-1, then only zeros; returns the offset after the last frame. */
static size_t check_frames(const char *name, uint64_t first, uint32_t n) {
    size_t size = 0;
    uint8_t *b = slurp(name, &size);
    if (!b) {
        CHECK_FAIL_("cannot read %s", name);
        return 0;
    }
    jfile_head h;
    const char *why = "";
    CHECK(jfile_head_parse(b, size, &h, &why) == 0);
    CHECK_INT(h.first, first);
    size_t off = JFILE_HEADER;
    uint8_t r[400];
    for (uint32_t i = 0; i < n; i++) {
        if (off + 4 > size) {
            CHECK_FAIL_("%s: record %u missing", name, i);
            break;
        }
        size_t len = get_u32(b + off);
        rec_fill(r, i);
        if (len != rec_len(i) || off + 4 + len > size ||
            memcmp(b + off + 4, r, len) != 0) {
            CHECK_FAIL_("%s: record %u differs at offset %zu", name, i, off);
            break;
        }
        off += 4 + len;
    }
    CHECK(jfile_all_zero(b + off, size - off));
    free(b);
    return off;
}

TEST(header_and_slots) {
    uint8_t h[JFILE_HEADER];
    jfile_head hd;
    const char *why = "";
    jfile_head_build(h, 1234);
    REQUIRE(jfile_head_parse(h, sizeof h, &hd, &why) == 0);
    CHECK_INT(hd.first, 1234);
    CHECK_INT(hd.synced, JFILE_HEADER);
    CHECK_INT(hd.gen, 1);
    CHECK(memcmp(h, JFILE_MAGIC, 8) == 0);
    CHECK(jfile_head_parse(h, JFILE_HEADER - 1, &hd, &why) != 0);
    uint8_t bad[JFILE_HEADER];
    memcpy(bad, h, sizeof h);
    bad[20] ^= 1; /* the first seq: the header's CRC */
    CHECK(jfile_head_parse(bad, sizeof bad, &hd, &why) != 0);
    CHECK_STR(why, "header fails its checksum");
    memcpy(bad, h, sizeof h);
    bad[0] = 'X';
    CHECK(jfile_head_parse(bad, sizeof bad, &hd, &why) != 0);
    memset(bad, 0, sizeof bad);
    CHECK(jfile_head_parse(bad, sizeof bad, &hd, &why) != 0);

    /* Raising D alternates the slots; a spoiled slot leaves the other. */
    setup();
    int fd = openat(dfd, "slots", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(pwrite(fd, h, sizeof h, 0) == (ssize_t)sizeof h);
    jfile_head w = {1234, JFILE_HEADER, 1};
    REQUIRE(jfile_head_set_synced(fd, &w, 5000) == 0);
    REQUIRE(jfile_head_set_synced(fd, &w, 6000) == 0);
    CHECK_INT(w.gen, 3);
    uint8_t back[JFILE_HEADER];
    REQUIRE(pread(fd, back, sizeof back, 0) == (ssize_t)sizeof back);
    REQUIRE(jfile_head_parse(back, sizeof back, &hd, &why) == 0);
    CHECK_INT(hd.synced, 6000);
    CHECK_INT(hd.gen, 3);
    back[JFILE_SLOT1 + 9] ^= 0x40; /* generation 3 is in slot 1 */
    REQUIRE(jfile_head_parse(back, sizeof back, &hd, &why) == 0);
    CHECK_INT(hd.synced, 5000);
    CHECK_INT(hd.gen, 2);
    back[JFILE_SLOT0 + 3] ^= 0x01;
    CHECK(jfile_head_parse(back, sizeof back, &hd, &why) != 0);
    CHECK_STR(why, "header holds no readable synced length");
    close(fd);
    unlinkat(dfd, "slots", 0);
}

TEST(append_grow_close_reopen) {
    setup();
    unlinkat(dfd, "journal-7", 0);
    jfile *j = jfile_create(dfd, "journal-7", 7);
    REQUIRE(j);
    CHECK(jfile_create(dfd, "journal-7", 7) == NULL && errno == EEXIST);
    uint8_t r[400];
    const uint32_t n1 = 30000; /* about 6 MiB: several extensions */
    uint64_t want = JFILE_HEADER;
    for (uint32_t i = 0; i < n1; i++) {
        rec_fill(r, i);
        REQUIRE(jfile_append(j, r, rec_len(i)) == 0);
        want += 4 + rec_len(i);
        if (jfile_wants_prepare(j)) jfile_prepare(j);
    }
    CHECK_INT(jfile_end(j), want);
    /* Visible to a reader at once (the page cache), before any sync. */
    CHECK_INT(check_frames("journal-7", 7, n1), want);
    REQUIRE(jfile_datasync(j) == 0);
    jfile_set_synced(j, want);
    REQUIRE(jfile_close(j, true) == 0);
    struct stat st;
    REQUIRE(fstatat(dfd, "journal-7", &st, 0) == 0);
    CHECK_INT(st.st_size, want); /* the preallocated space is gone */
    size_t size = 0;
    uint8_t *b = slurp("journal-7", &size);
    jfile_head hd;
    const char *why = "";
    REQUIRE(b && jfile_head_parse(b, size, &hd, &why) == 0);
    CHECK_INT(hd.synced, want);
    free(b);

    /* Reopened at its end (after zeros a crash would leave): appends go on. */
    int fd = openat(dfd, "journal-7", O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0 && ftruncate(fd, (off_t)want + 100000) == 0);
    close(fd);
    j = jfile_reopen(dfd, "journal-7", want);
    REQUIRE(j);
    const uint32_t n2 = 5000;
    for (uint32_t i = n1; i < n1 + n2; i++) {
        rec_fill(r, i);
        REQUIRE(jfile_append(j, r, rec_len(i)) == 0);
        want += 4 + rec_len(i);
    }
    REQUIRE(jfile_close(j, false) == 0);
    CHECK_INT(check_frames("journal-7", 7, n1 + n2), want);
    REQUIRE(fstatat(dfd, "journal-7", &st, 0) == 0);
    CHECK_INT(st.st_size, want);
    /* Not a journal file, or an end out of range: refused. */
    CHECK(jfile_reopen(dfd, "journal-7", want + 1) == NULL && errno == EINVAL);
    CHECK(jfile_reopen(dfd, "journal-7", JFILE_HEADER - 1) == NULL && errno == EINVAL);
    unlinkat(dfd, "journal-7", 0);
}

/* A file size limit makes extensions fail as a full disk does: the append
 * refuses, writes nothing, and the frames before stay whole. */
TEST(refuses_when_it_cannot_grow) {
    setup();
    unlinkat(dfd, "journal-1", 0);
    struct rlimit old;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {64 * 1024, old.rlim_max};
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    jfile *j = jfile_create(dfd, "journal-1", 1);
    uint8_t r[400];
    uint32_t ok = 0;
    int err = 0;
    for (uint32_t i = 0; j && i < 1000; i++) {
        rec_fill(r, i);
        if (jfile_append(j, r, rec_len(i))) {
            err = errno;
            break;
        }
        ok++;
        if (jfile_wants_prepare(j)) jfile_prepare(j);
    }
    uint64_t end = j ? jfile_end(j) : 0;
    if (j) {
        rec_fill(r, ok);
        CHECK(jfile_append(j, r, rec_len(ok)) == -1); /* still refused */
        CHECK_INT(jfile_end(j), end);
    }
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    REQUIRE(j);
    CHECK_INT(err, EFBIG);
    CHECK(ok > 100 && end <= 64 * 1024);
    CHECK_INT(check_frames("journal-1", 1, ok), end);
    /* With room again, the next append extends the file. */
    rec_fill(r, ok);
    CHECK(jfile_append(j, r, rec_len(ok)) == 0);
    REQUIRE(jfile_close(j, true) == 0);
    CHECK_INT(check_frames("journal-1", 1, ok + 1), end + 4 + rec_len(ok));
    unlinkat(dfd, "journal-1", 0);
}

typedef struct shared {
    jfile *j;
    pthread_mutex_t mu;
    uint64_t written; /* under mu */
    int stop;         /* under mu */
    unsigned prepares, syncs;
} shared;

static void *preparer(void *arg) {
    shared *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop) return NULL;
        jfile_prepare(s->j);
        s->prepares++;
        usleep(200);
    }
}

static void *syncer(void *arg) {
    shared *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stop = s->stop;
        uint64_t w = s->written;
        pthread_mutex_unlock(&s->mu);
        if (stop) return NULL;
        if (jfile_datasync(s->j)) return NULL;
        jfile_set_synced(s->j, w);
        s->syncs++;
        usleep(2000);
    }
}

/* The writer, a preparing thread and a syncing thread at once, as in the
 * server (the writer under the store's lock there, alone here). */
TEST(writer_preparer_syncer) {
    setup();
    unlinkat(dfd, "journal-3", 0);
    shared s = {.written = JFILE_HEADER};
    pthread_mutex_init(&s.mu, NULL);
    s.j = jfile_create(dfd, "journal-3", 3);
    REQUIRE(s.j);
    jfile_set_ahead(s.j, JFILE_AHEAD_WRITE);
    pthread_t tp, ts;
    REQUIRE(pthread_create(&tp, NULL, preparer, &s) == 0);
    REQUIRE(pthread_create(&ts, NULL, syncer, &s) == 0);
    uint8_t r[400];
    const uint32_t n = 60000;
    int bad = 0;
    for (uint32_t i = 0; i < n; i++) {
        rec_fill(r, i);
        if (jfile_append(s.j, r, rec_len(i))) bad++;
        pthread_mutex_lock(&s.mu);
        s.written = jfile_end(s.j);
        pthread_mutex_unlock(&s.mu);
    }
    pthread_mutex_lock(&s.mu);
    s.stop = 1;
    pthread_mutex_unlock(&s.mu);
    pthread_join(tp, NULL);
    pthread_join(ts, NULL);
    CHECK_INT(bad, 0);
    CHECK(s.prepares > 0 && s.syncs > 0);
    uint64_t end = jfile_end(s.j);
    REQUIRE(jfile_close(s.j, true) == 0);
    CHECK_INT(check_frames("journal-3", 3, n), end);
    pthread_mutex_destroy(&s.mu);
    unlinkat(dfd, "journal-3", 0);
}

TEST(cleanup) {
    if (dfd < 0) return; /* (no test made the directory) */
    close(dfd);
    CHECK(rmdir(dir) == 0);
}

static const check_test tests[] = {
    T(header_and_slots), T(append_grow_close_reopen), T(refuses_when_it_cannot_grow),
    T(writer_preparer_syncer), T(cleanup)};
CHECK_MAIN(tests)
