/* Recovery of a data directory (chatstore-server --data-dir), its offline
 * check (chatstore-check) and compaction's rebuild of a state from the
 * files (recover_rebuild): the same code reads the directory for all
 * three; only recovery changes files (the checker and a rebuild never do).
 *
 * What recovery relies on (persist.c keeps these; docs/persistence.md):
 * - MANIFEST names the current snapshot and, when there is one, the
 *   previous. A snapshot it names is complete and durable: compaction
 *   fsynced it and the directory before the MANIFEST was replaced
 *   (tmp + fsync + rename + directory fsync).
 * - journal-<F> holds a header (jfile.h: first seq F, the synced length
 *   D), then frames (u32 little-endian length, then the library's record,
 *   whose last 4 bytes are a CRC-32C of the rest) of consecutive seqs
 *   starting at F, then possibly zeros (preallocated space); the journal
 *   files in seq order continue each other. Every record after the previous
 *   snapshot (or the current one when there is none) is in a journal file
 *   still present: a file is deleted only once it is wholly covered by the
 *   oldest snapshot kept.
 * - Every byte below a file's D was on stable storage when D was recorded
 *   (D is raised only after an fdatasync covered it), and only the last
 *   file is written to. So zeros after the last frame are the clean end
 *   (cut off, no warning); in the last file, a frame at or after D that is
 *   not whole and valid is an end that was not synced when a crash came
 *   (the pages of a mapping reach the disk in any order, so frames may
 *   follow a hole): it is truncated to the last whole record, with a
 *   warning; a last file without even its header (empty or all zero) was
 *   being created, and is removed. Any other damage (below D, in an
 *   earlier file, a damaged header, a record that does not fit) stops
 *   recovery with the file, the offset and the cause, unless repair keeps
 *   the longest valid prefix (what it drops is first copied to damaged/,
 *   and a truncated file's D is lowered to its new end).
 * - Anything else (*.tmp files, snapshots the MANIFEST does not name,
 *   journal files wholly covered by the oldest snapshot kept, media of
 *   deleted services or of creates never journaled) is what an interrupted
 *   step left behind, and is removed after a successful recovery.
 * - A directory without MANIFEST and without journal files is new (or its
 *   initialisation was interrupted before anything was journaled): it is
 *   initialised with snapshot-0, which holds the store's keys and account
 *   SID, so that every later record replays onto the same SIDs. */
#include "jfile.h"
#include "persist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- shared helpers ----------------------------------------------------- */

int persist_parse_name(const char *name, const char *prefix, uint64_t *seq) {
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0) return -1;
    const char *d = name + pl;
    if (!*d || (d[0] == '0' && d[1]) || strlen(d) > 20) return -1;
    uint64_t v = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9') return -1;
        unsigned k = (unsigned)(*d - '0');
        if (v > (UINT64_MAX - k) / 10) return -1;
        v = v * 10 + k;
    }
    *seq = v;
    return 0;
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* The service and created media SID of a media-create record, through
 * the library's reading of the record (its CRC checked too). The journal
 * hook asks this of every record, and the library's reading costs about
 * as much as a whole in-memory create (CRC, decoding, four SIDs
 * formatted), so a version 1 record whose operation byte (offset 1, in
 * docs/journal.md) is not a media create is answered from that byte. */
int persist_media_record_sids(const void *rec, size_t len, char is[35],
                              char me[35]) {
    const uint8_t *b = rec;
    if (len >= 2 && b[0] == 1 && b[1] != CS_JOURNAL_MEDIA_CREATE) return -1;
    cs_journal_info in;
    if (cs_journal_record_info(rec, len, &in, NULL) != CS_OK ||
        in.op != CS_JOURNAL_MEDIA_CREATE)
        return -1;
    memcpy(is, in.service_sid, CS_SID_BUFSZ);
    memcpy(me, in.created_sid, CS_SID_BUFSZ);
    return 0;
}

/* ---- messages ------------------------------------------------------------ */

static void say(const recover_opts *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    flockfile(o->log); /* one line, whichever threads log */
    fprintf(o->log, "%s: ", o->prog);
    vfprintf(o->log, fmt, ap);
    fputc('\n', o->log);
    funlockfile(o->log);
    va_end(ap);
}

static double now_secs(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- the directory's files -------------------------------------------- */

typedef struct u64s {
    uint64_t *v;
    size_t n, cap;
} u64s;

static int u64s_push(u64s *a, uint64_t x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        uint64_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct listing {
    u64s snaps, journals;
    bool has_manifest;
} listing;

static int is_tmp_name(const char *n) {
    return strstr(n, ".tmp") != NULL;
}

static int list_dir(const recover_opts *o, int dfd, listing *l, bool clean) {
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        say(o, "%s: %s", o->dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    uint64_t seq;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (!strcmp(n, PERSIST_MANIFEST)) {
            l->has_manifest = true;
        } else if (is_tmp_name(n) && (!strncmp(n, "snapshot-", 9) ||
                                       !strncmp(n, PERSIST_MANIFEST, 8))) {
            /* an interrupted snapshot or MANIFEST write */
            if (clean) unlinkat(dfd, n, 0);
        } else if (!persist_parse_name(n, "snapshot-", &seq)) {
            if (u64s_push(&l->snaps, seq)) goto nomem;
        } else if (!persist_parse_name(n, "journal-", &seq)) {
            if (u64s_push(&l->journals, seq)) goto nomem;
        }
    }
    closedir(d);
    if (l->snaps.n) qsort(l->snaps.v, l->snaps.n, sizeof(uint64_t), cmp_u64);
    if (l->journals.n)
        qsort(l->journals.v, l->journals.n, sizeof(uint64_t), cmp_u64);
    return 0;
nomem:
    closedir(d);
    say(o, "out of memory");
    return -1;
}

/* The MANIFEST: "chatstore data directory 2\nsnapshot snapshot-N\n"
 * [+ "previous snapshot-M\n"]. 0, or -1 with *why, or -2 (with *why) when
 * it is the MANIFEST of another format. */
static int read_manifest(int dfd, uint64_t *cur, bool *has_prev,
                         uint64_t *prev, const char **why) {
    int fd = openat(dfd, PERSIST_MANIFEST, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        *why = strerror(errno);
        return -1;
    }
    buf[n] = '\0';
    *has_prev = false;
    char *save = NULL, *line = strtok_r(buf, "\n", &save);
    if (line && strcmp(line, PERSIST_MANIFEST_MAGIC) != 0 &&
        !strncmp(line, PERSIST_MANIFEST_PREFIX, strlen(PERSIST_MANIFEST_PREFIX))) {
        *why = !strcmp(line, PERSIST_MANIFEST_PREFIX "1")
                   ? "data directory format 1 (journal files without a header), "
                     "written by an earlier chatstore-server, which still "
                     "reads it; this one reads format 2 only"
                   : "a data directory format this chatstore-server does not "
                     "know (a later version wrote it)";
        return -2;
    }
    if (!line || strcmp(line, PERSIST_MANIFEST_MAGIC) != 0) {
        *why = "not a chatstore MANIFEST (first line)";
        return -1;
    }
    int have_cur = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        if (!strncmp(line, "snapshot ", 9) && !have_cur &&
            !persist_parse_name(line + 9, "snapshot-", cur)) {
            have_cur = 1;
        } else if (!strncmp(line, "previous ", 9) && !*has_prev &&
                   !persist_parse_name(line + 9, "snapshot-", prev)) {
            *has_prev = true;
        } else {
            *why = "unreadable line";
            return -1;
        }
    }
    if (!have_cur) {
        *why = "names no snapshot";
        return -1;
    }
    if (*has_prev && *prev >= *cur) {
        *why = "previous snapshot is not older than the current one";
        return -1;
    }
    return 0;
}

static int fsync_dir(int dfd) { return fsync(dfd); }

/* Writes MANIFEST (tmp, fsync, rename, directory fsync). */
int persist_write_manifest(int dfd, uint64_t cur, bool has_prev, uint64_t prev) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s\nsnapshot snapshot-%llu\n",
                     PERSIST_MANIFEST_MAGIC, (unsigned long long)cur);
    if (has_prev)
        n += snprintf(buf + n, sizeof buf - (size_t)n,
                      "previous snapshot-%llu\n", (unsigned long long)prev);
    int fd = openat(dfd, PERSIST_MANIFEST ".tmp",
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int ok = write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || renameat(dfd, PERSIST_MANIFEST ".tmp", dfd, PERSIST_MANIFEST))
        return -1;
    return fsync_dir(dfd);
}

/* ---- snapshots ---------------------------------------------------------- */

typedef struct rbuf {
    int fd;
    uint8_t *buf;
    size_t len, pos, cap;
    int err;
    const int *cancel; /* may be NULL */
} rbuf;

static bool cancelled(const int *cancel) {
    return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED);
}

static ptrdiff_t rbuf_read(void *ctx, void *out, size_t len) {
    rbuf *r = ctx;
    if (r->pos == r->len) {
        if (cancelled(r->cancel)) {
            r->err = ECANCELED;
            return -1;
        }
        ssize_t k;
        do k = read(r->fd, r->buf, r->cap);
        while (k < 0 && errno == EINTR);
        if (k < 0) {
            r->err = errno;
            return -1;
        }
        r->len = (size_t)k;
        r->pos = 0;
        if (!k) return 0;
    }
    size_t k = r->len - r->pos;
    if (k > len) k = len;
    memcpy(out, r->buf + r->pos, k);
    r->pos += k;
    return (ptrdiff_t)k;
}

/* Loads snapshot-<seq>. 0, or -1 with the cause in why/off (off: -1 when
 * there is no offset). cancel: see recover_rebuild. */
static int load_snapshot(const recover_opts *o, int dfd, uint64_t seq,
                         const int *cancel, cs_store **out, uint64_t *bytes,
                         char *why, size_t why_cap, int64_t *off) {
    char name[PERSIST_NAME_MAX];
    snprintf(name, sizeof name, "snapshot-%llu", (unsigned long long)seq);
    *off = -1;
    *out = NULL;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        snprintf(why, why_cap, "%s", strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    *bytes = (uint64_t)st.st_size;
    rbuf r = {fd, malloc(1 << 18), 0, 0, 1 << 18, 0, cancel};
    if (!r.buf) {
        close(fd);
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    cs_decode_error de = {0, NULL};
    cs_err e = cs_snapshot_load(o->opts, rbuf_read, &r, out, &de);
    free(r.buf);
    close(fd);
    if (e == CS_E_BAD_SNAPSHOT) {
        *off = (int64_t)de.offset;
        snprintf(why, why_cap, "%s", de.reason ? de.reason : "damaged");
        return -1;
    }
    if (e == CS_E_IO) {
        snprintf(why, why_cap, "read error: %s", strerror(r.err));
        return -1;
    }
    if (e == CS_E_INVALID_ARGUMENT && o->opts && o->opts->account_sid) {
        snprintf(why, why_cap,
                 "it belongs to another account than --account-sid %s",
                 o->opts->account_sid);
        return -1;
    }
    if (e) {
        snprintf(why, why_cap, "%s", cs_err_message(e));
        return -1;
    }
    cs_store_stats st2;
    cs_store_stats_get(*out, &st2);
    if (st2.commits != seq) {
        snprintf(why, why_cap, "it holds changes up to seq %llu, its name says %llu",
                 (unsigned long long)st2.commits, (unsigned long long)seq);
        cs_store_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* ---- damage bookkeeping ---------------------------------------------------- */

static int damaged_dir(int dfd) {
    mkdirat(dfd, PERSIST_DAMAGED_DIR, 0755);
    return openat(dfd, PERSIST_DAMAGED_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Copies (keep) or moves a file into damaged/<name>.<time>. */
static int set_aside(int dfd, const char *name, int keep) {
    int dd = damaged_dir(dfd);
    if (dd < 0) return -1;
    char to[PERSIST_NAME_MAX + 32];
    snprintf(to, sizeof to, "%s.%lld", name, (long long)time(NULL));
    int rc = -1;
    if (!keep) {
        rc = renameat(dfd, name, dd, to);
    } else {
        int in = openat(dfd, name, O_RDONLY | O_CLOEXEC);
        int outfd = openat(dd, to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (in >= 0 && outfd >= 0) {
            char buf[65536];
            ssize_t k;
            rc = 0;
            while ((k = read(in, buf, sizeof buf)) > 0)
                if (write(outfd, buf, (size_t)k) != k) {
                    rc = -1;
                    break;
                }
            if (k < 0 || fsync(outfd)) rc = -1;
        }
        if (in >= 0) close(in);
        if (outfd >= 0) close(outfd);
    }
    if (!rc) rc = fsync(dd);
    close(dd);
    return rc;
}

/* ---- journal replay ------------------------------------------------------ */

/* J_UNBORN: a file with neither header nor anything else (zeros, or
 * nothing): its creation did not finish. */
typedef enum { J_OK, J_TORN, J_DAMAGED, J_FATAL, J_UNBORN } jstatus;

typedef struct jscan {
    uint64_t stop_off;  /* where the valid prefix ends (torn / damaged / zeros) */
    uint64_t at;        /* offset of the problem */
    char why[200];
    uint64_t expected;  /* next seq expected in this file */
    jfile_head head;    /* the file's header (when it has one) */
    uint64_t data_end;  /* torn or damaged: after the last non-zero byte at
                           or after stop_off (what goes) */
    uint64_t zeros;     /* J_OK: zero bytes after the last frame */
} jscan;

static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* The offset after the last non-zero byte of p[lo..hi), or 0 when they are
 * all zero. */
static uint64_t last_non_zero(const uint8_t *p, uint64_t lo, uint64_t hi) {
    while (hi > lo && hi % 8) {
        if (p[hi - 1]) return hi;
        hi--;
    }
    while (hi >= lo + 8) { /* a word at a time through long runs of zeros */
        uint64_t w;
        memcpy(&w, p + hi - 8, 8);
        if (w) break;
        hi -= 8;
    }
    while (hi > lo) {
        if (p[hi - 1]) return hi;
        hi--;
    }
    return 0;
}

/* The offset after the last non-zero byte of p[from..size) (from when all
 * are zero). Ranges the filesystem reports as holes (SEEK_DATA: holes and
 * preallocated space never written) are not read. */
static uint64_t data_end(int fd, const uint8_t *p, uint64_t from, uint64_t size) {
    uint64_t last = from, pos = from;
    while (pos < size) {
        off_t a = lseek(fd, (off_t)pos, SEEK_DATA);
        if (a < 0) {
            if (errno == ENXIO) break; /* nothing but holes after pos */
            a = (off_t)pos;            /* no SEEK_DATA here: read it all */
        }
        off_t b = lseek(fd, a, SEEK_HOLE);
        if (b < 0 || (uint64_t)b > size) b = (off_t)size;
        if ((uint64_t)a >= size) break;
        /* (what the filesystem calls data can still be zeros: pages
         * faulted in ahead of the writer, written back or not) */
        uint64_t lo = (uint64_t)a > last ? (uint64_t)a : last;
        uint64_t q = last_non_zero(p, lo, (uint64_t)b);
        if (q > last) last = q;
        pos = (uint64_t)b;
    }
    return last;
}

/* Replays one journal file into s: the rules of docs/persistence.md,
 * "Recovery", steps 4 and 5. last: the file a crash can have torn (else an
 * incomplete end is damage). A record after max_seq is damage. cancel: see
 * recover_rebuild (J_FATAL). */
static jstatus replay_file(recover_result *r, cs_store *s, int dfd,
                           uint64_t first, bool last, uint64_t max_seq,
                           const int *cancel, uint64_t *size_out, jscan *js) {
    char name[PERSIST_NAME_MAX];
    snprintf(name, sizeof name, "journal-%llu", (unsigned long long)first);
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        snprintf(js->why, sizeof js->why, "%s", strerror(errno));
        if (fd >= 0) close(fd);
        return J_FATAL;
    }
    size_t size = (size_t)st.st_size;
    *size_out = size;
    js->expected = first;
    js->stop_off = js->at = 0;
    if (!size) {
        close(fd);
        snprintf(js->why, sizeof js->why, "empty (no header)");
        return last ? J_UNBORN : J_DAMAGED;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const uint8_t *p = map;
    if (map == MAP_FAILED) {
        close(fd);
        snprintf(js->why, sizeof js->why, "mmap: %s", strerror(errno));
        return J_FATAL;
    }
    jstatus res = J_OK;
    const char *hwhy = NULL;
    if (jfile_head_parse(p, size, &js->head, &hwhy)) {
        if (data_end(fd, p, 0, size) == 0) {
            snprintf(js->why, sizeof js->why, "nothing but %zu zero bytes (no header)",
                     size);
            res = last ? J_UNBORN : J_DAMAGED;
        } else {
            snprintf(js->why, sizeof js->why, "%s", hwhy);
            res = J_DAMAGED;
        }
        goto done;
    }
    if (js->head.first != first) {
        js->at = 16;
        snprintf(js->why, sizeof js->why,
                 "its header says its first record is seq %llu",
                 (unsigned long long)js->head.first);
        res = J_DAMAGED;
        goto done;
    }
    uint64_t d = js->head.synced; /* below it, anything wrong is damage */
    if (d > size) {
        js->at = size;
        snprintf(js->why, sizeof js->why,
                 "the file ends before its synced length %llu",
                 (unsigned long long)d);
        res = J_DAMAGED;
        goto done;
    }
    size_t off = JFILE_HEADER;
    bool bad = false;
    while (off < size) {
        size_t rem = size - off;
        js->stop_off = off;
        js->at = off;
        if (!((js->expected - first) & 0xffff) && cancelled(cancel)) {
            snprintf(js->why, sizeof js->why, "cancelled");
            res = J_FATAL;
            break;
        }
        uint32_t len = rem >= PERSIST_FRAME_HEADER ? get_u32(p + off) : 0;
        if (len == 0 && data_end(fd, p, off, size) == off) {
            /* the clean end: preallocated space never written */
            if (off < d) {
                snprintf(js->why, sizeof js->why,
                         "zero bytes where records were synced (the synced "
                         "length is %llu)",
                         (unsigned long long)d);
                res = J_DAMAGED;
            } else {
                js->zeros = rem;
            }
            break;
        }
        if (rem < PERSIST_FRAME_HEADER) {
            snprintf(js->why, sizeof js->why,
                     "incomplete frame length (%zu of 4 bytes)", rem);
            bad = true;
            break;
        }
        if (len < PERSIST_RECORD_MIN) {
            snprintf(js->why, sizeof js->why,
                     "frame length %u is shorter than any record", len);
            bad = true;
            break;
        }
        if (len > rem - PERSIST_FRAME_HEADER) {
            snprintf(js->why, sizeof js->why,
                     "incomplete record (%zu of %u bytes)",
                     rem - PERSIST_FRAME_HEADER, len);
            bad = true;
            break;
        }
        const uint8_t *rec = p + off + PERSIST_FRAME_HEADER;
        size_t end = off + PERSIST_FRAME_HEADER + len;
        if (jfile_crc32c(rec, len - 4) != get_u32(rec + len - 4)) {
            snprintf(js->why, sizeof js->why,
                     "record of %u bytes fails its checksum", len);
            bad = true;
            break;
        }
        uint64_t seq = get_u64(rec + 8);
        if (seq != js->expected) {
            js->at = off + PERSIST_FRAME_HEADER + 8;
            snprintf(js->why, sizeof js->why,
                     "record has seq %llu where %llu was expected",
                     (unsigned long long)seq,
                     (unsigned long long)js->expected);
            res = J_DAMAGED;
            break;
        }
        if (seq > max_seq) {
            js->at = off;
            snprintf(js->why, sizeof js->why,
                     "record seq %llu comes after seq %llu, where this file "
                     "was closed",
                     (unsigned long long)seq, (unsigned long long)max_seq);
            res = J_DAMAGED;
            break;
        }
        if (seq > max_seq) {
            snprintf(js->why, sizeof js->why,
                     "record seq %llu comes after seq %llu, where this file "
                     "was closed",
                     (unsigned long long)seq, (unsigned long long)max_seq);
            res = J_DAMAGED;
            break;
        }
        bool applied = false;
        cs_decode_error de = {0, NULL};
        cs_err e = cs_journal_apply(s, rec, len, &applied, &de);
        if (e) {
            if (e == CS_E_BAD_RECORD) {
                js->at = off + PERSIST_FRAME_HEADER + de.offset;
                snprintf(js->why, sizeof js->why, "record seq %llu: %s",
                         (unsigned long long)seq,
                         de.reason ? de.reason : "damaged");
            } else {
                snprintf(js->why, sizeof js->why, "record seq %llu: %s (%s)",
                         (unsigned long long)seq, cs_err_name(e),
                         cs_err_message(e));
            }
            res = e == CS_E_NOMEM ? J_FATAL : J_DAMAGED;
            break;
        }
        if (applied) {
            r->applied++;
            if (!r->first_seq) r->first_seq = seq;
            r->last_seq = seq;
        } else {
            r->skipped++;
        }
        js->expected++;
        off = end;
        js->stop_off = off;
    }
    if (bad) {
        /* At or after the synced length of the last file: an end that was
         * not synced when the machine stopped (or a record the process
         * was writing when it died). Below it, or in an earlier file: the
         * disk lost synced bytes. */
        res = last && off >= d ? J_TORN : J_DAMAGED;
    }
done:
    if (res == J_TORN || res == J_DAMAGED)
        js->data_end = data_end(fd, p, js->stop_off, size);
    munmap(map, size);
    close(fd);
    return res;
}

/* Whether a journal file holds nothing: no bytes but zeros after where its
 * header is (which is all zero, or whole and says that nothing was synced
 * after it). */
static bool journal_empty(int dfd, const char *name) {
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        if (fd >= 0) close(fd);
        return false;
    }
    size_t size = (size_t)st.st_size;
    bool empty = true;
    if (size) {
        void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            empty = false;
        } else {
            jfile_head h;
            const char *why;
            empty = !jfile_head_parse(map, size, &h, &why)
                        ? h.synced == JFILE_HEADER &&
                              data_end(fd, map, JFILE_HEADER, size) == JFILE_HEADER
                        : data_end(fd, map, 0, size) == 0;
            munmap(map, size);
        }
    }
    close(fd);
    return empty;
}

/* Cuts journal file `name` at off (and, when off is below its synced
 * length, lowers that to off), synced. 0, or -1 after saying why. */
static int cut_journal(const recover_opts *o, int dfd, const char *name,
                       uint64_t off, jfile_head *h) {
    int fd = openat(dfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)off) || fsync(fd) ||
        (off < h->synced &&
         (jfile_head_set_synced(fd, h, off) || fsync(fd)))) {
        say(o, "%s/%s: cannot truncate: %s", o->dir, name, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* ---- media --------------------------------------------------------------- */

static int is_sid_name(const char *n, const char *prefix) {
    if (strlen(n) != 34 || strncmp(n, prefix, 2) != 0) return 0;
    for (int i = 2; i < 34; i++)
        if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
            return 0;
    return 1;
}

static void remove_tree(int dfd, const char *name) {
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(fd, e->d_name, 0);
        closedir(d);
    } else if (fd >= 0) {
        close(fd);
    }
    unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Files of one service's media directory. */
static void scan_service_media(const recover_opts *o, recover_result *r,
                               int sfd, const char *is, persist_media_fn fn, void *ctx) {
    int fd = dup(sfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
        cs_media_view v;
        if (!is_sid_name(n, "ME") ||
            cs_media_fetch(r->store, cs_str_c(is), cs_str_c(n), &v)) {
            r->media_orphans++;
            if (!o->check_only) unlinkat(sfd, n, 0);
            continue;
        }
        int mfd = openat(sfd, n, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (mfd < 0 || fstat(mfd, &st) || (uint64_t)st.st_size != v.size) {
            r->media_bad++;
            say(o, "%s: media/%s/%s: %lld bytes where the store says %llu: "
                   "its content is not served",
                o->check_only ? "damage" : "warning", is, n,
                mfd < 0 ? -1LL : (long long)st.st_size,
                (unsigned long long)v.size);
            if (mfd >= 0) close(mfd);
            continue;
        }
        r->media_files++;
        if (fn) {
            size_t sz = (size_t)st.st_size;
            char *data = malloc(sz ? sz : 1);
            size_t got = 0;
            while (data && got < sz) {
                ssize_t k = read(mfd, data + got, sz - got);
                if (k <= 0) break;
                got += (size_t)k;
            }
            if (data && got == sz)
                fn(ctx, is, n, data, sz);
            else
                say(o, "warning: media/%s/%s: cannot read it", is, n);
            free(data);
        }
        close(mfd);
    }
    closedir(d);
}

static void scan_media(const recover_opts *o, recover_result *r, int dfd,
                       persist_media_fn fn, void *ctx) {
    if (!o->check_only) mkdirat(dfd, PERSIST_MEDIA_DIR, 0755);
    int mfd = openat(dfd, PERSIST_MEDIA_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd = mfd >= 0 ? dup(mfd) : -1;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            const char *n = e->d_name;
            if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
            if (!strncmp(n, "tmp-", 4)) { /* a staged upload */
                if (!o->check_only) unlinkat(mfd, n, 0);
                continue;
            }
            if (!is_sid_name(n, "IS") ||
                cs_service_fetch(r->store, cs_str_c(n), NULL)) {
                /* a deleted service's bytes */
                r->media_orphans++;
                if (!o->check_only) remove_tree(mfd, n);
                continue;
            }
            int sfd = openat(mfd, n, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sfd < 0) continue;
            scan_service_media(o, r, sfd, n, fn, ctx);
            close(sfd);
        }
        closedir(d);
    } else if (fd >= 0) {
        close(fd);
    }
    if (mfd >= 0) close(mfd);
    cs_store_stats st;
    cs_store_stats_get(r->store, &st);
    if (st.media > r->media_files) {
        uint64_t missing = st.media - r->media_files - r->media_bad;
        if (missing) {
            r->media_bad += missing;
            say(o, "%s: %llu media item(s) have no bytes in media/: their "
                   "content is not served",
                o->check_only ? "damage" : "warning",
                (unsigned long long)missing);
        }
    }
}

/* ---- recovery ------------------------------------------------------------ */

int persist_write_cb(void *ctx, const void *buf, size_t len) {
    int fd = *(const int *)ctx;
    const char *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* A fresh directory: snapshot-0 of a new store, then the MANIFEST. */
static int initialise(const recover_opts *o, recover_result *r, int dfd) {
    cs_err e = cs_store_new(o->opts, &r->store);
    if (e) {
        say(o, "store: %s", cs_err_message(e));
        return -1;
    }
    int fd = openat(dfd, "snapshot-0.tmp",
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) goto io;
    e = cs_snapshot_save(r->store, persist_write_cb, &fd);
    if (e || fsync(fd)) {
        close(fd);
        goto io;
    }
    if (close(fd) || renameat(dfd, "snapshot-0.tmp", dfd, "snapshot-0") ||
        fsync_dir(dfd) || persist_write_manifest(dfd, 0, false, 0))
        goto io;
    r->created = true;
    snprintf(r->snap_name, sizeof r->snap_name, "snapshot-0");
    struct stat st;
    if (!fstatat(dfd, "snapshot-0", &st, 0)) r->snap_bytes = (uint64_t)st.st_size;
    r->append_next = 1;
    return 0;
io:
    say(o, "%s: cannot initialise: %s", o->dir, strerror(errno));
    return -1;
}

void recover_result_free(recover_result *r) {
    free(r->jfirst);
    free(r->jsize);
    r->jfirst = r->jsize = NULL;
    r->nj = 0;
}

static void fmt_snap(char *out, uint64_t seq) {
    snprintf(out, PERSIST_NAME_MAX, "snapshot-%llu", (unsigned long long)seq);
}

static int recover_in(const recover_opts *o, recover_result *r, int dfd);

int recover(const recover_opts *o, recover_result *r) {
    memset(r, 0, sizeof *r);
    int dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT && !o->check_only) {
        if (mkdir(o->dir, 0755) && errno != EEXIST) {
            say(o, "%s: %s", o->dir, strerror(errno));
            return -1;
        }
        dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (dfd < 0) {
        say(o, "%s: %s", o->dir, strerror(errno));
        return -1;
    }
    int rc = recover_in(o, r, dfd);
    close(dfd);
    if (rc && !o->check_only) {
        cs_store_free(r->store);
        r->store = NULL;
    }
    return rc;
}

static int recover_in(const recover_opts *o, recover_result *r, int dfd) {
    listing l;
    memset(&l, 0, sizeof l);
    int rc = -1;
    if (list_dir(o, dfd, &l, !o->check_only)) goto out;

    /* 1. Which snapshot: the MANIFEST's; candidates in the order to try. */
    uint64_t cand[2];
    size_t ncand = 0;
    uint64_t cur = 0, prev = 0;
    bool has_prev = false;
    const char *mwhy = NULL;
    int mrc = l.has_manifest ? read_manifest(dfd, &cur, &has_prev, &prev, &mwhy)
                             : -1;
    if (mrc == -2) { /* not even --repair: it would drop every journal file */
        say(o, "%s/MANIFEST: %s", o->dir, mwhy);
        r->other_format = true;
        goto out;
    }
    int manifest_ok = l.has_manifest && !mrc;
    if (!l.has_manifest && !l.journals.n) {
        if (o->check_only) {
            say(o, "%s: no MANIFEST and no journal: an empty data directory",
                o->dir);
            rc = l.snaps.n ? -1 : 0;
            goto out;
        }
        /* new, or initialisation interrupted: leftovers go */
        for (size_t i = 0; i < l.snaps.n; i++) {
            char n[PERSIST_NAME_MAX];
            fmt_snap(n, l.snaps.v[i]);
            unlinkat(dfd, n, 0);
        }
        if (initialise(o, r, dfd)) goto out;
        scan_media(o, r, dfd, o->media, o->media_ctx);
        rc = 0;
        goto out;
    }
    bool manifest_rewrite = false;
    if (manifest_ok) {
        cand[ncand++] = cur;
        if (has_prev) cand[ncand++] = prev;
    } else {
        if (!l.has_manifest)
            say(o, "%s: MANIFEST is missing, but journal files exist", o->dir);
        else
            say(o, "%s/MANIFEST: %s", o->dir, mwhy);
        r->damage++;
        if (!o->repair && !o->check_only) {
            say(o, "start with --repair to use the newest snapshot that loads");
            goto out;
        }
        /* repair (and the checker): the newest two snapshot files */
        for (size_t i = l.snaps.n; i-- > 0 && ncand < 2;)
            cand[ncand++] = l.snaps.v[i];
        manifest_rewrite = true;
    }
    if (!ncand) {
        say(o, "%s: no snapshot to start from", o->dir);
        goto out;
    }

    /* 2. Load it; when it is damaged, repair falls back to the previous one
     * (the checker tries both, to report on both). */
    size_t used = ncand; /* index of the candidate loaded */
    for (size_t i = 0; i < ncand; i++) {
        char why[256], name[PERSIST_NAME_MAX];
        int64_t off;
        fmt_snap(name, cand[i]);
        double t0 = now_secs();
        cs_store *s = NULL;
        uint64_t bytes = 0;
        if (!load_snapshot(o, dfd, cand[i], NULL, &s, &bytes, why, sizeof why,
                           &off)) {
            if (used < ncand) { /* check mode: the previous one loads too */
                cs_store_free(s);
                continue;
            }
            used = i;
            r->store = s;
            r->snap_seq = cand[i];
            r->snap_bytes = bytes;
            r->snap_secs = now_secs() - t0;
            snprintf(r->snap_name, sizeof r->snap_name, "%s", name);
            if (!o->check_only) break;
            continue;
        }
        r->damage++;
        if (off >= 0)
            say(o, "%s/%s: damaged at offset %lld: %s", o->dir, name,
                (long long)off, why);
        else
            say(o, "%s/%s: cannot load: %s", o->dir, name, why);
        if (used == ncand && !o->check_only) {
            if (i + 1 == ncand) {
                say(o, "no older snapshot is kept: this cannot be repaired; "
                       "restore the directory from a backup");
                goto out;
            }
            if (!o->repair) {
                say(o, "start with --repair to fall back to snapshot-%llu "
                       "(the journal files since then are kept: nothing is "
                       "lost)",
                    (unsigned long long)cand[i + 1]);
                goto out;
            }
        }
    }
    if (!r->store) {
        say(o, "%s: no snapshot loads", o->dir);
        goto out;
    }
    if (used == 0 && manifest_ok && has_prev) {
        r->has_prev = true;
        r->prev_seq = prev;
        fmt_snap(r->prev_name, prev);
    }
    if (used > 0) {
        if (!o->check_only) {
            for (size_t i = 0; i < used; i++) { /* the damaged ones go aside */
                char name[PERSIST_NAME_MAX];
                fmt_snap(name, cand[i]);
                if (!faccessat(dfd, name, F_OK, 0) && set_aside(dfd, name, 0))
                    say(o, "warning: cannot move %s to %s/: %s", name,
                        PERSIST_DAMAGED_DIR, strerror(errno));
            }
        }
        say(o, "%s %s", o->check_only ? "recovery with --repair would fall back to"
                                       : "repair: fell back to",
            r->snap_name);
        manifest_rewrite = true;
    }
    if (manifest_rewrite && !o->check_only &&
        persist_write_manifest(dfd, r->snap_seq, false, 0)) {
        say(o, "%s: cannot write MANIFEST: %s", o->dir, strerror(errno));
        goto out;
    }

    /* 3. Replay the journal files in seq order. After damage (repair, or
     * the checker) nothing more is replayed: repair sets the rest aside. */
    double t0 = now_secs();
    cs_store_stats st;
    uint64_t *jf = l.journals.v;
    size_t nj = l.journals.n;
    r->jfirst = calloc(nj + 1, sizeof *r->jfirst);
    r->jsize = calloc(nj + 1, sizeof *r->jsize);
    if (!r->jfirst || !r->jsize) {
        say(o, "out of memory");
        goto out;
    }
    size_t kept = 0; /* files present after recovery */
    bool stopped = false;
    for (size_t i = 0; i < nj; i++) {
        char name[PERSIST_NAME_MAX];
        snprintf(name, sizeof name, "journal-%llu", (unsigned long long)jf[i]);
        bool last = i + 1 == nj;
        struct stat fs;
        uint64_t fsize = fstatat(dfd, name, &fs, 0) ? 0 : (uint64_t)fs.st_size;
        if (stopped) {
            if (o->check_only) continue;
            if (set_aside(dfd, name, 0))
                say(o, "warning: cannot move %s to %s/: %s", name,
                    PERSIST_DAMAGED_DIR, strerror(errno));
            say(o, "repair: dropped %s (%llu bytes), which follows the damage",
                name, (unsigned long long)fsize);
            continue;
        }
        cs_store_stats_get(r->store, &st);
        if (!o->check_only && !last && jf[i + 1] - 1 <= st.commits) {
            /* wholly covered by the snapshot: not read */
            r->jfirst[kept] = jf[i];
            r->jsize[kept++] = fsize;
            continue;
        }
        if (jf[i] > st.commits + 1 && last && journal_empty(dfd, name)) {
            /* The previous file lost its end in a crash of the machine
             * (--fsync no) and this one, created by a rotation, holds
             * nothing: a torn end, not a hole. */
            r->torn++;
            say(o, "warning: %s/%s: empty, and records %llu to %llu before "
                   "it were lost in a crash: %s",
                o->dir, name, (unsigned long long)st.commits + 1,
                (unsigned long long)jf[i] - 1,
                o->check_only ? "startup removes it" : "removed");
            if (!o->check_only) unlinkat(dfd, name, 0);
            continue;
        }
        if (jf[i] > st.commits + 1) {
            r->damage++;
            say(o, "%s/%s: records %llu to %llu are missing (no journal file "
                   "holds them); this file and the %zu after it %s",
                o->dir, name, (unsigned long long)st.commits + 1,
                (unsigned long long)jf[i] - 1, nj - i - 1,
                o->repair && !o->check_only ? "are dropped by --repair"
                                            : "cannot be replayed");
            if (!o->repair && !o->check_only) {
                say(o, "start with --repair to keep the records before them");
                goto out;
            }
            stopped = true;
            i--; /* this file goes aside too */
            continue;
        }
        uint64_t size = 0;
        jscan js;
        memset(&js, 0, sizeof js);
        jstatus s = replay_file(r, r->store, dfd, jf[i], last, UINT64_MAX,
                                NULL, &size, &js);
        r->journal_files++;
        if (s == J_FATAL) {
            say(o, "%s/%s: %s", o->dir, name, js.why);
            goto out;
        }
        if (s == J_UNBORN) {
            /* created, then the process or the machine stopped before its
             * header was written: it holds nothing */
            r->torn++;
            say(o, "warning: %s/%s: %s: a journal file whose creation did "
                   "not finish: %s",
                o->dir, name, js.why, o->check_only ? "startup removes it" : "removed");
            if (!o->check_only) unlinkat(dfd, name, 0);
            continue;
        }
        if (s == J_OK && js.zeros) {
            /* preallocated space after the last record: the clean end */
            r->prealloc_bytes += js.zeros;
            if (!o->check_only) {
                int fd = openat(dfd, name, O_WRONLY | O_CLOEXEC);
                if (fd < 0 || ftruncate(fd, (off_t)js.stop_off)) {
                    say(o, "%s/%s: cannot truncate: %s", o->dir, name,
                        strerror(errno));
                    if (fd >= 0) close(fd);
                    goto out;
                }
                close(fd);
            }
            size = js.stop_off;
        } else if (s == J_TORN) {
            r->torn++;
            say(o, "warning: %s/%s: %s at offset %llu (synced length %llu): "
                   "%s %llu bytes",
                o->dir, name, js.why, (unsigned long long)js.at,
                (unsigned long long)js.head.synced,
                o->check_only ? "startup truncates it, dropping"
                              : "truncated to the last whole record, dropped",
                (unsigned long long)(js.data_end - js.stop_off));
            if (!o->check_only) {
                if (cut_journal(o, dfd, name, js.stop_off, &js.head)) goto out;
            }
            size = js.stop_off;
        } else if (s == J_DAMAGED) {
            r->damage++;
            say(o, "%s/%s: damaged at offset %llu: %s", o->dir, name,
                (unsigned long long)js.at, js.why);
            bool whole = js.stop_off < JFILE_HEADER; /* its header */
            if (whole)
                say(o, "%s/%s: this file and the %zu later journal file(s) %s",
                    o->dir, name, nj - i - 1,
                    o->repair && !o->check_only ? "are dropped by --repair"
                                                : "cannot be replayed");
            else
                say(o, "%s/%s: the %llu bytes from offset %llu (the damaged "
                       "record and all after it) and the %zu later journal "
                       "file(s) %s",
                    o->dir, name, (unsigned long long)(js.data_end - js.stop_off),
                    (unsigned long long)js.stop_off, nj - i - 1,
                    o->repair && !o->check_only ? "are dropped by --repair"
                                                : "cannot be replayed");
            if (!o->repair && !o->check_only) {
                if (whole)
                    say(o, "start with --repair to set this file aside");
                else
                    say(o, "start with --repair to keep the %llu records "
                           "before it in this file",
                        (unsigned long long)(js.expected - jf[i]));
                goto out;
            }
            stopped = true;
            if (whole) {
                if (!o->check_only) {
                    if (set_aside(dfd, name, 0))
                        say(o, "warning: cannot move %s to %s/: %s", name,
                            PERSIST_DAMAGED_DIR, strerror(errno));
                    say(o, "repair: moved %s to %s/", name, PERSIST_DAMAGED_DIR);
                }
                continue;
            }
            if (!o->check_only) {
                if (set_aside(dfd, name, 1))
                    say(o, "warning: cannot copy %s to %s/: %s", name,
                        PERSIST_DAMAGED_DIR, strerror(errno));
                if (cut_journal(o, dfd, name, js.stop_off, &js.head)) goto out;
                say(o, "repair: kept %s up to offset %llu (records up to seq "
                       "%llu); the original is in %s/",
                    name, (unsigned long long)js.stop_off,
                    (unsigned long long)js.expected - 1, PERSIST_DAMAGED_DIR);
                size = js.stop_off;
            }
        }
        r->append_next = js.expected;
        r->jfirst[kept] = jf[i];
        r->jsize[kept++] = size;
    }
    r->nj = kept;
    r->replay_secs = now_secs() - t0;
    for (size_t i = 0; i < r->nj; i++) {
        bool covered = i + 1 < r->nj && r->jfirst[i + 1] - 1 <= r->snap_seq;
        if (!covered) r->journal_bytes += r->jsize[i];
    }

    /* 4. Leftovers of interrupted steps go (never in check mode). */
    if (!o->check_only) {
        for (size_t i = 0; i < l.snaps.n; i++) {
            uint64_t q = l.snaps.v[i];
            if (q == r->snap_seq || (r->has_prev && q == r->prev_seq)) continue;
            char n[PERSIST_NAME_MAX];
            fmt_snap(n, q);
            if (faccessat(dfd, n, F_OK, 0)) continue; /* set aside */
            unlinkat(dfd, n, 0);
        }
        uint64_t oldest = r->has_prev ? r->prev_seq : r->snap_seq;
        size_t w = 0;
        for (size_t i = 0; i < r->nj; i++) {
            if (i + 1 < r->nj && r->jfirst[i + 1] - 1 <= oldest) {
                char n[PERSIST_NAME_MAX];
                snprintf(n, sizeof n, "journal-%llu",
                         (unsigned long long)r->jfirst[i]);
                unlinkat(dfd, n, 0);
                continue;
            }
            r->jfirst[w] = r->jfirst[i];
            r->jsize[w++] = r->jsize[i];
        }
        r->nj = w;
    }

    /* 5. Media bytes. */
    scan_media(o, r, dfd, o->media, o->media_ctx);
    rc = o->check_only && (r->damage || r->media_bad) ? -1 : 0;
out:
    free(l.snaps.v);
    free(l.journals.v);
    return rc;
}

/* ---- rebuilding a state (compaction) ------------------------------------ */

int recover_rebuild(const recover_opts *o, int dfd, uint64_t snap,
                    const uint64_t *files, size_t nfiles, uint64_t upto,
                    const int *cancel, cs_store **out, rebuild_info *info) {
    memset(info, 0, sizeof *info);
    *out = NULL;
    char name[PERSIST_NAME_MAX], why[256];
    int64_t off;
    fmt_snap(name, snap);
    double t0 = now_secs();
    cs_store *s = NULL;
    if (load_snapshot(o, dfd, snap, cancel, &s, &info->snap_bytes, why,
                      sizeof why, &off)) {
        if (cancelled(cancel)) return -1;
        if (off >= 0)
            say(o, "%s/%s: damaged at offset %lld: %s", o->dir, name,
                (long long)off, why);
        else
            say(o, "%s/%s: cannot load: %s", o->dir, name, why);
        return -1;
    }
    info->load_secs = now_secs() - t0;
    t0 = now_secs();
    recover_result r;
    memset(&r, 0, sizeof r);
    cs_store_stats st;
    for (size_t i = 0; i < nfiles && files[i] <= upto; i++) {
        if (cancelled(cancel)) goto fail;
        cs_store_stats_get(s, &st);
        snprintf(name, sizeof name, "journal-%llu", (unsigned long long)files[i]);
        if (i + 1 < nfiles && files[i + 1] - 1 <= st.commits)
            continue; /* wholly covered by the snapshot */
        if (files[i] > st.commits + 1) {
            say(o, "%s/%s: records %llu to %llu are missing (no journal file "
                   "holds them)",
                o->dir, name, (unsigned long long)st.commits + 1,
                (unsigned long long)files[i] - 1);
            goto fail;
        }
        uint64_t size = 0;
        jscan js;
        memset(&js, 0, sizeof js);
        /* Closed files: a torn end is damage too. */
        jstatus j = replay_file(&r, s, dfd, files[i], false, upto, cancel,
                                &size, &js);
        if (j == J_FATAL) {
            if (!cancelled(cancel)) say(o, "%s/%s: %s", o->dir, name, js.why);
            goto fail;
        }
        if (j != J_OK) {
            say(o, "%s/%s: damaged at offset %llu: %s", o->dir, name,
                (unsigned long long)js.at, js.why);
            goto fail;
        }
        info->files++;
        info->journal_bytes += size;
    }
    cs_store_stats_get(s, &st);
    if (st.commits != upto) {
        say(o, "%s: snapshot-%llu and the journal files reach seq %llu, not "
               "seq %llu: records are missing",
            o->dir, (unsigned long long)snap, (unsigned long long)st.commits,
            (unsigned long long)upto);
        goto fail;
    }
    info->applied = r.applied;
    info->replay_secs = now_secs() - t0;
    *out = s;
    return 0;
fail:
    cs_store_free(s);
    return -1;
}
