/* A journal file written through a shared memory mapping (jfile.h;
 * docs/persistence.md, "Journal files", has the bytes).
 *
 * Invariants:
 * - The file is [0, cap) long, and every byte of it has disk space reserved
 *   (posix_fallocate), so a store into the mapping below cap never needs a
 *   block the filesystem cannot give: a full disk shows up as a failed
 *   extension, which refuses the change, never as SIGBUS on a later store.
 *   A failed extension cuts the file back to cap. Only [0, cap) of the
 *   mapping is ever touched; the mapping itself spans `window` >= cap bytes
 *   (the pages past the end of the file are never accessed).
 * - Frames are copied into the mapping at end, which only the writer
 *   moves; a frame is complete before end passes it. Bytes stored into a
 *   MAP_SHARED mapping are in the kernel's page cache at once, so a crash of
 *   the process loses nothing written; fdatasync (jfile_datasync) puts them
 *   on stable storage. [end, cap) holds only zeros: the file was extended
 *   with zeros and nothing is ever written past end.
 * - The header page is written with pwrite, never through the mapping, so
 *   that recording D (jfile_set_synced) needs no access to the mapping
 *   (which the writer may move with mremap). Its synced length D is only
 *   ever raised to an end that an fdatasync already covered, so every byte
 *   below the D that reaches the disk is on the disk (D lags: it reaches the
 *   disk with the next sync). The two slots alternate (gen & 1), each with
 *   its own CRC.
 * - grow_mu orders everything that changes cap, the mapping's address and
 *   size, or faults pages in (the writer's extension, jfile_prepare); the
 *   writer's copies and reads of cap and end need no lock (cap, end and
 *   ready are atomics; only the writer moves map, under grow_mu, and
 *   jfile_prepare reads it under grow_mu). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* mremap, MADV_POPULATE_*: Linux */
#endif
#include "jfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096u
#define CHUNK_MIN (UINT64_C(1) << 20)  /* first extension: 1 MiB ... */
#define CHUNK_MAX (UINT64_C(64) << 20) /* ... doubling up to 64 MiB */
#define WINDOW_MIN (UINT64_C(256) << 20)
/* jfile_prepare keeps this much faulted in ahead of the end, and is asked
 * for when less than half of it is left. */
#define READY_AHEAD (UINT64_C(4) << 20)

struct jfile {
    int fd;
    uint8_t *map;
    uint64_t window; /* bytes mapped */
    uint64_t cap;    /* file size (atomic) */
    uint64_t end;    /* after the last frame (atomic; the writer's) */
    uint64_t ready;  /* pages below this are faulted in (atomic) */
    uint64_t stuck;  /* the cap at which jfile_prepare could not extend the
                        file (atomic; 0: none): it is not asked again
                        until the writer's own extension moves cap */
    uint64_t chunk;  /* the next extension */
    jfile_head head; /* gen and D as last recorded (datasync and close) */
    int ahead;       /* jfile_ahead (atomic) */
    pthread_mutex_t grow_mu;
};

/* ---- CRC-32C and the header --------------------------------------------------- */

static uint32_t crc_table[256];
static int crc_ready;

uint32_t jfile_crc32c(const void *p, size_t n) {
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            /* the same values from every thread */
            __atomic_store_n(&crc_table[i], c, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
    }
    uint32_t c = 0xFFFFFFFFu;
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        c = __atomic_load_n(&crc_table[(c ^ b[i]) & 0xff], __ATOMIC_RELAXED) ^ (c >> 8);
    return ~c;
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

bool jfile_all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static void slot_fill(uint8_t s[JFILE_SLOT_SIZE], uint64_t gen, uint64_t synced) {
    memset(s, 0, JFILE_SLOT_SIZE);
    put_u64(s, gen);
    put_u64(s + 8, synced);
    put_u32(s + 20, jfile_crc32c(s, 20));
}

static uint64_t slot_offset(uint64_t gen) { return gen & 1 ? JFILE_SLOT1 : JFILE_SLOT0; }

void jfile_head_build(uint8_t hdr[JFILE_HEADER], uint64_t first) {
    memset(hdr, 0, JFILE_HEADER);
    memcpy(hdr, JFILE_MAGIC, 8);
    put_u32(hdr + 8, JFILE_VERSION);
    put_u32(hdr + 12, JFILE_HEADER);
    put_u64(hdr + 16, first);
    put_u32(hdr + 28, jfile_crc32c(hdr, 28));
    slot_fill(hdr + JFILE_SLOT0, 0, JFILE_HEADER);
    slot_fill(hdr + JFILE_SLOT1, 1, JFILE_HEADER);
}

int jfile_head_parse(const uint8_t *p, size_t size, jfile_head *h,
                     const char **why) {
    if (size < JFILE_HEADER) {
        *why = "shorter than its header";
        return -1;
    }
    if (memcmp(p, JFILE_MAGIC, 8) != 0) {
        *why = "not a journal file of this format (no header)";
        return -1;
    }
    if (jfile_crc32c(p, 28) != get_u32(p + 28)) {
        *why = "header fails its checksum";
        return -1;
    }
    if (get_u32(p + 8) != JFILE_VERSION || get_u32(p + 12) != JFILE_HEADER) {
        *why = "journal file of another format version";
        return -1;
    }
    h->first = get_u64(p + 16);
    bool have = false;
    for (int i = 0; i < 2; i++) {
        const uint8_t *s = p + (i ? JFILE_SLOT1 : JFILE_SLOT0);
        uint64_t gen = get_u64(s), d = get_u64(s + 8);
        if (jfile_crc32c(s, 20) != get_u32(s + 20) || get_u32(s + 16) != 0 ||
            slot_offset(gen) != (uint64_t)(s - p) || d < JFILE_HEADER)
            continue;
        if (!have || gen > h->gen) {
            h->gen = gen;
            h->synced = d;
            have = true;
        }
    }
    if (!have) {
        *why = "header holds no readable synced length";
        return -1;
    }
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off) {
    const uint8_t *b = buf;
    while (n) {
        ssize_t k = pwrite(fd, b, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (!k) errno = EIO;
            return -1;
        }
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int jfile_head_set_synced(int fd, jfile_head *h, uint64_t synced) {
    uint8_t s[JFILE_SLOT_SIZE];
    uint64_t gen = h->gen + 1;
    slot_fill(s, gen, synced);
    if (pwrite_all(fd, s, sizeof s, slot_offset(gen))) return -1;
    h->gen = gen;
    h->synced = synced;
    return 0;
}

/* ---- the writer ------------------------------------------------------------------- */

static uint64_t round_up(uint64_t x, uint64_t to) { return (x + to - 1) / to * to; }

static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void st(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* Extends the file from cap to at least want (a whole chunk when the disk
 * allows, else just want rounded to a page), remapping when the window is
 * too small (only the writer may remap: remap false leaves the window
 * alone and extends no further than it). Under grow_mu. 0 or -1 (errno). */
static int grow(jfile *j, uint64_t want, bool remap) {
    uint64_t cap = ld(&j->cap);
    if (want <= cap) return 0;
    uint64_t need = round_up(want, PAGE), big = cap + j->chunk;
    if (big < need) big = need;
    if (big > j->window) {
        if (!remap) {
            big = j->window;
            if (need > big) return 0;
        } else {
            uint64_t w = j->window;
            while (w < big) w *= 2;
            void *m = mremap(j->map, (size_t)j->window, (size_t)w, MREMAP_MAYMOVE);
            if (m == MAP_FAILED) return -1;
            j->map = m;
            j->window = w;
        }
    }
    uint64_t to = big;
    int rc = posix_fallocate(j->fd, (off_t)cap, (off_t)(to - cap));
    if (rc && to > need) {
        to = need;
        rc = posix_fallocate(j->fd, (off_t)cap, (off_t)(to - cap));
    }
    if (rc) {
        /* Whatever part of the space it got is not used: the file goes
         * back to cap (a later extension may succeed). */
        int ignored = ftruncate(j->fd, (off_t)cap);
        (void)ignored;
        errno = rc;
        return -1;
    }
    st(&j->cap, to);
    if (to == big && j->chunk < CHUNK_MAX) j->chunk *= 2;
    return 0;
}

static jfile *jfile_new(int fd) {
    jfile *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->fd = fd;
    j->chunk = CHUNK_MIN;
    j->ahead = JFILE_AHEAD_WRITE;
    pthread_mutex_init(&j->grow_mu, NULL);
    return j;
}

static void jfile_free(jfile *j) {
    if (j->map) munmap(j->map, (size_t)j->window);
    pthread_mutex_destroy(&j->grow_mu);
    free(j);
}

/* Maps the file (cap bytes long, end set) and makes the first space ready.
 * 0 or -1 (errno). */
static int map_and_prepare(jfile *j) {
    uint64_t cap = ld(&j->cap);
    j->window = WINDOW_MIN;
    while (j->window < 2 * cap) j->window *= 2;
    void *m = mmap(NULL, (size_t)j->window, PROT_READ | PROT_WRITE, MAP_SHARED,
                   j->fd, 0);
    if (m == MAP_FAILED) return -1;
    j->map = m;
    /* The page the next frame starts in: when it holds frames already it
     * must be read in, and an I/O error is better reported here than by
     * SIGBUS in the hook (MADV_POPULATE_WRITE returns it). */
    uint64_t end = ld(&j->end);
    uint64_t pg = end / PAGE * PAGE;
    if (pg < cap) {
        if (madvise(j->map + pg, PAGE, MADV_POPULATE_WRITE)) {
            if (errno != EINVAL) return -1;
            /* an older kernel: the writer takes the faults */
            __atomic_store_n(&j->ahead, JFILE_AHEAD_NONE, __ATOMIC_RELAXED);
        }
        st(&j->ready, pg + PAGE);
    }
    /* Space ahead; when the disk cannot give it, appends try again (and
     * refuse while it cannot). */
    pthread_mutex_lock(&j->grow_mu);
    (void)grow(j, end + CHUNK_MIN, true);
    pthread_mutex_unlock(&j->grow_mu);
    return 0;
}

jfile *jfile_create(int dfd, const char *name, uint64_t first) {
    int fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return NULL;
    jfile *j = jfile_new(fd);
    uint8_t *hdr = malloc(JFILE_HEADER);
    int err = ENOMEM;
    if (!j || !hdr) goto fail;
    jfile_head_build(hdr, first);
    /* The header's space first: a disk too full for it fails here. */
    int rc = posix_fallocate(fd, 0, JFILE_HEADER);
    if (rc || pwrite_all(fd, hdr, JFILE_HEADER, 0)) {
        err = rc ? rc : errno;
        goto fail;
    }
    j->head = (jfile_head){first, JFILE_HEADER, 1};
    j->cap = j->end = JFILE_HEADER;
    j->ready = JFILE_HEADER;
    if (map_and_prepare(j)) {
        err = errno;
        goto fail;
    }
    free(hdr);
    return j;
fail:
    free(hdr);
    if (j) jfile_free(j);
    close(fd);
    unlinkat(dfd, name, 0);
    errno = err;
    return NULL;
}

jfile *jfile_reopen(int dfd, const char *name, uint64_t end) {
    int fd = openat(dfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0) return NULL;
    jfile *j = jfile_new(fd);
    uint8_t *hdr = malloc(JFILE_HEADER);
    int err = ENOMEM;
    struct stat sb;
    const char *why;
    if (!j || !hdr) goto fail;
    errno = EIO; /* (a short read) */
    if (fstat(fd, &sb) || pread(fd, hdr, JFILE_HEADER, 0) != (ssize_t)JFILE_HEADER) {
        err = errno;
        goto fail;
    }
    if (jfile_head_parse(hdr, JFILE_HEADER, &j->head, &why) || end < JFILE_HEADER ||
        end > (uint64_t)sb.st_size) {
        err = EINVAL;
        goto fail;
    }
    /* Whatever follows end (zeros: recovery cut them off unless it ran in
     * check mode) goes, so that every byte below cap has its space
     * reserved by this writer (a copied file may be sparse). */
    if ((uint64_t)sb.st_size > end && ftruncate(fd, (off_t)end)) {
        err = errno;
        goto fail;
    }
    j->cap = end;
    j->end = end;
    j->ready = end;
    if (map_and_prepare(j)) {
        err = errno;
        goto fail;
    }
    free(hdr);
    return j;
fail:
    free(hdr);
    if (j) jfile_free(j);
    close(fd);
    errno = err;
    return NULL;
}

int jfile_append(jfile *j, const void *rec, size_t len) {
    if (len > UINT32_MAX - 4) {
        errno = EFBIG;
        return -1;
    }
    uint64_t end = j->end, n = 4 + (uint64_t)len;
    if (end + n > ld(&j->cap)) {
        pthread_mutex_lock(&j->grow_mu);
        int rc = grow(j, end + n, true);
        pthread_mutex_unlock(&j->grow_mu);
        if (rc) return -1;
    }
    uint8_t *p = j->map + end;
    put_u32(p, (uint32_t)len);
    memcpy(p + 4, rec, len);
    st(&j->end, end + n);
    return 0;
}

uint64_t jfile_end(const jfile *j) { return ld(&j->end); }

int jfile_fd(const jfile *j) { return j->fd; }

void jfile_set_ahead(jfile *j, jfile_ahead a) {
    __atomic_store_n(&j->ahead, (int)a, __ATOMIC_RELAXED);
}

bool jfile_wants_prepare(const jfile *j) {
    return j->end + READY_AHEAD / 2 > ld(&j->ready) && ld(&j->stuck) != ld(&j->cap);
}

void jfile_prepare(jfile *j) {
    pthread_mutex_lock(&j->grow_mu);
    uint64_t end = ld(&j->end);
    uint64_t want = round_up(end + READY_AHEAD, PAGE);
    /* Space ahead too (not past the window: only the writer remaps). A
     * failure here is the writer's to report, when it needs the space. */
    if (want + READY_AHEAD > ld(&j->cap)) {
        (void)grow(j, want + READY_AHEAD, false);
        if (ld(&j->cap) < want + READY_AHEAD) st(&j->stuck, ld(&j->cap));
    }
    uint64_t cap = ld(&j->cap), from = ld(&j->ready);
    if (from < end / PAGE * PAGE) from = end / PAGE * PAGE;
    if (want > cap) want = cap;
    int ahead = __atomic_load_n(&j->ahead, __ATOMIC_RELAXED);
    if (want > from && ahead != JFILE_AHEAD_NONE &&
        madvise(j->map + from, (size_t)(want - from),
                ahead == JFILE_AHEAD_WRITE ? MADV_POPULATE_WRITE
                                           : MADV_POPULATE_READ) &&
        errno == EINVAL) /* an older kernel */
        __atomic_store_n(&j->ahead, JFILE_AHEAD_NONE, __ATOMIC_RELAXED);
    /* (other failures: the writer's store will fault the page in, and a
     * real error then shows up there) */
    if (want > from) st(&j->ready, want);
    pthread_mutex_unlock(&j->grow_mu);
}

int jfile_datasync(jfile *j) { return fdatasync(j->fd); }

void jfile_set_synced(jfile *j, uint64_t end) {
    /* Not fatal when it fails: D then only lags further. */
    if (end > j->head.synced) (void)jfile_head_set_synced(j->fd, &j->head, end);
}

int jfile_close(jfile *j, bool sync) {
    int rc = 0;
    uint64_t end = j->end;
    if (ftruncate(j->fd, (off_t)end)) rc = -1;
    /* D only ever covers what an fdatasync already did: the header's
     * write, and its own sync, come after. */
    if (!rc && sync &&
        (fdatasync(j->fd) ||
         (end != j->head.synced &&
          (jfile_head_set_synced(j->fd, &j->head, end) || fdatasync(j->fd)))))
        rc = -1;
    int err = errno;
    close(j->fd);
    jfile_free(j);
    if (rc) errno = err;
    return rc;
}
