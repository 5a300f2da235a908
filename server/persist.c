/* The running side of chatstore-server --data-dir: the journal hook, group
 * commit, media bytes on disk, compaction, clean shutdown. Recovery is in
 * recover.c; the journal file itself (header, mapping, preallocation) in
 * jfile.c; docs/persistence.md describes the directory.
 *
 * Invariants:
 * - Every change is written to the current journal file by the journal
 *   hook, as one frame (u32 length + the library's record) copied into the
 *   file's shared mapping (jfile_append: in the page cache at once, no
 *   system call), under the store's exclusive lock, before the change
 *   commits; so the order of the frames is the order of the commits, and a
 *   record's seq is next_seq. Only the hook and rotation (both under the
 *   exclusive lock) move jf, jfirst and next_seq. When the file cannot be
 *   extended (disk full) nothing is written and the change is refused
 *   (503).
 * - written (bytes framed so far, over all files) and synced (bytes known
 *   to be on stable storage) are positions on one line; synced <= written,
 *   and both only grow, under mu. A position maps to an offset in the
 *   current file as pos - jbase. The hook leaves the end of the record it
 *   wrote in the thread's tl_pos; with --fsync always a request answers
 *   only once synced >= tl_pos.
 * - One flusher at a time (flushing, under mu): it samples written and jf,
 *   fdatasyncs outside mu, notes the test-only synced offset, records the
 *   synced length D in the file's header (jfile_set_synced: after the
 *   note, so that a simulated power loss never cuts below D), raises synced
 *   to its sample and wakes every waiter, each of which returns if covered
 *   or else becomes the next flusher (group commit).
 * - The journal thread (every mode) runs jfile_prepare when the hook asks
 *   (prepare_wanted): it extends the file and faults in the pages ahead of
 *   the hook, outside the store's lock (preparing, under mu, while it uses
 *   jf). With --fsync everysec it also flushes once a second.
 * - Rotation waits until no flush and no preparation runs and blocks new
 *   ones (flushing and rotating set), fdatasyncs the old file before it
 *   creates the new one (unless --fsync no: a machine crash never leaves a
 *   journal file after one that lost its end), creates and syncs the new
 *   file and the directory, switches jf and raises synced, then cuts the
 *   old file to its end; so a flush or a preparation only ever uses the
 *   current file.
 * - A failed fdatasync or fsync ends the process at once with status
 *   PERSIST_EXIT_SYNC_FAILED: the kernel may have dropped the dirty pages,
 *   and a retry could report success for data that is lost (PostgreSQL's
 *   choice); the promise of --fsync cannot be kept any more.
 * - Before the first request (and before the background threads start),
 *   the store starts a new SID epoch (cs_store_new_epoch) and its record is
 *   fdatasynced, with every journal file recovery read and the directory,
 *   in every --fsync mode; so a start never issues a SID that a record lost
 *   in an earlier machine crash gave out.
 * - Media bytes reach media/<IS>/<ME> (file and directory synced unless
 *   --fsync no) before the media create's record is written; a service's
 *   media directory, or one media file (its message, channel or the item
 *   itself deleted), is removed only once its delete's record is synced
 *   (drops, run by whoever completes a flush; at once with --fsync no).
 * - Compaction (one thread) reads nothing of the live store but its
 *   counts. Under the exclusive lock it takes R, the store's commit count,
 *   and its cs_store_stats, rotates the journal to journal-<R+1> (unless the
 *   current file starts there already) and releases the lock: that is the
 *   only time requests wait for it. (It fdatasyncs the current file just
 *   before, unless --fsync no, so that the rotation's fdatasync under the
 *   lock finds little to write; rotation runs only on this thread, so jf
 *   does not change meanwhile.) Holding no lock, it then rebuilds a
 *   private store from the MANIFEST's current snapshot and the closed
 *   journal files, with recovery's reading (recover_rebuild: bounded at R,
 *   a torn end is damage), and goes on only if the rebuilt counts equal
 *   the live ones at R; so every compaction proves that the files recover
 *   the state at R. It saves that store as snapshot-R.tmp.*, fsyncs it,
 *   renames it to snapshot-R and fsyncs the directory; only then is the
 *   MANIFEST replaced (current R, previous the former current), and only
 *   after that are the snapshot the MANIFEST no longer names and the
 *   journal files wholly covered by the (new) previous snapshot deleted.
 *   A failure before the MANIFEST's rename (disk full, damage, a mismatch,
 *   a clean stop) removes what the compaction wrote, deletes nothing, and
 *   is retried after a back-off of 5 s doubling up to 320 s. At every
 *   instant the MANIFEST's snapshots and the journal files present recover
 *   the store.
 * - Test-only: CHATSTORE_TEST_CRASH=<point>[:<n>] SIGKILLs the process
 *   when the n-th compaction (default 1) reaches <point>; see
 *   crash_point. CHATSTORE_TEST_SYNCED=<file> keeps in
 *   <file> the journal file and offset up to which the journal is known to
 *   be on disk, so a test can cut the journal there after a SIGKILL, as a
 *   power loss could. Never set them in production. */
#include "jfile.h"
#include "persist.h"
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SNAP_BUF (1u << 20) /* the new snapshot's write buffer */
#define SNAP_SYNC_STEP (UINT64_C(4) << 20) /* its writeback, see cw_written */
#define COMPACT_BACKOFF_MIN 5 /* s, after a failed compaction; doubles ... */
#define COMPACT_BACKOFF_MAX 320 /* ... up to this */
#define COMPACT_NICE 10 /* the compaction thread's nice, above the server's */

struct persist {
    persist_config cfg;
    char dir[PATH_MAX];
    int dfd, mfd; /* the data directory, media/ */
    cs_store *store;
    media_store *media;

    /* the journal: hook and rotation only, under the store's exclusive lock
     * (jf is also read under mu by the flusher and the journal thread;
     * rotation holds both) */
    jfile *jf;
    uint64_t jfirst, next_seq;

    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t flushed; /* synced rose, a flush or preparation ended */
    pthread_cond_t wake;    /* compaction wanted, or stopping */
    pthread_cond_t jwake;   /* the journal thread: prepare_wanted, stopping */
    uint64_t written, synced;
    uint64_t jbase; /* the position of the current file's offset 0 */
    bool flushing, rotating, preparing, prepare_wanted;
    bool stopping, compact_wanted;
    uint64_t journal_bytes; /* written since the current snapshot's seq */
    uint64_t rotated_bytes; /* of those, written before the last rotation */
    uint64_t threshold;     /* compact when journal_bytes exceeds it */
    /* for persist_stats_get: written and synced when the server started,
     * flush_to's fdatasyncs, compactions completed */
    uint64_t written0, synced0, syncs, compactions_done;

    /* compaction thread (and open/close): snapshots and journal files */
    uint64_t snap_seq, snap_bytes, prev_seq;
    bool has_prev;
    uint64_t *files; /* first seqs of the journal files present, ascending */
    size_t nfiles, capfiles;
    unsigned compactions;
    bool broken_noted;
    cs_options opts; /* for the store compaction rebuilds */
    int cancel;      /* a clean stop abandons a compaction (atomic) */
    pid_t pid;

    pthread_t compactor, jthread;
    bool have_compactor, have_jthread;

    /* deleted services whose media directory goes, and deleted media
     * items whose file goes (me not ""), once the delete's record is
     * synced (under mu) */
    struct drop {
        char sid[35];
        char me[35];
        uint64_t pos;
    } *drops;
    size_t ndrops, capdrops;

    /* --fsync no: media files placed since start, synced at a clean stop
     * (under the store's exclusive lock, like the hook that adds them) */
    char (*unsynced)[72];
    size_t nunsynced, capunsynced;

    /* test-only crash point */
    char crash_at[64];
    unsigned crash_n;
    /* test-only: CHATSTORE_TEST_SYNCED=<file> receives "journal-<F> <off>"
     * after every sync, under mu: a lower bound of what is on disk */
    int test_synced_fd;
};

/* A staged media upload of this thread's request. */
typedef struct stage {
    char tmp[64];
    bool moved; /* now media/<is>/<me> */
    char is[35], me[35];
} stage;

static _Thread_local uint64_t tl_pos;
static _Thread_local stage *tl_stage;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    flockfile(stderr); /* one line, whichever threads log */
    fputs("chatstore-server: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    funlockfile(stderr);
    va_end(ap);
}

/* The promise of --fsync cannot be kept: stop now (see the top). */
static void sync_failed(const char *what, int err) __attribute__((noreturn));
static void sync_failed(const char *what, int err) {
    logf_("FATAL: %s failed: %s; exiting, since changes already answered "
          "might not be on disk (restart recovers what is)",
          what, strerror(err));
    _exit(PERSIST_EXIT_SYNC_FAILED);
}

static bool syncing(const persist *p) { return p->cfg.fsync != PERSIST_FSYNC_NO; }

/* ---- test-only crash points -------------------------------------------- */

static void crash_now(persist *p, const char *point) {
    char msg[160];
    int n = snprintf(msg, sizeof msg,
                     "chatstore-server: test crash at %s (compaction %u)\n",
                     point, p->compactions);
    if (n > 0) {
        ssize_t ignored = write(2, msg, (size_t)n);
        (void)ignored;
    }
    kill(getpid(), SIGKILL);
    _exit(137);
}

static void crash_point(persist *p, const char *point) {
    if (p->crash_at[0] && !strcmp(p->crash_at, point) &&
        p->compactions == p->crash_n)
        crash_now(p, point);
}

/* ---- writing the journal ------------------------------------------------- */

/* Moves the staged upload to media/<is>/<me>, durably unless --fsync no. */
static int media_place(persist *p, stage *st, const char *is, const char *me) {
    int sfd = openat(p->mfd, is, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0 && errno == ENOENT) {
        if (mkdirat(p->mfd, is, 0755) && errno != EEXIST) return -1;
        if (syncing(p) && fsync(p->mfd)) sync_failed("fsync of media/", errno);
        sfd = openat(p->mfd, is, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (sfd < 0) return -1;
    if (renameat(p->mfd, st->tmp, sfd, me)) {
        close(sfd);
        return -1;
    }
    if (syncing(p) && fsync(sfd)) sync_failed("fsync of a media directory", errno);
    close(sfd);
    memcpy(st->is, is, sizeof st->is);
    memcpy(st->me, me, sizeof st->me);
    return 0;
}

static void media_unplace(persist *p, const stage *st) {
    int sfd = openat(p->mfd, st->is, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0) return;
    unlinkat(sfd, st->me, 0);
    close(sfd);
}

/* --fsync no: a media file to sync at a clean stop. Best effort: without
 * memory for the list, the stop syncs the whole filesystem instead. */
static void remember_unsynced(persist *p, const char *is, const char *me) {
    if (p->capunsynced == SIZE_MAX) return;
    if (p->nunsynced == p->capunsynced) {
        size_t cap = p->capunsynced ? p->capunsynced * 2 : 64;
        void *u = realloc(p->unsynced, cap * sizeof *p->unsynced);
        if (!u) {
            p->capunsynced = SIZE_MAX; /* remembered: syncfs at the stop */
            return;
        }
        p->unsynced = u;
        p->capunsynced = cap;
    }
    snprintf(p->unsynced[p->nunsynced++], sizeof *p->unsynced, "%s/%s", is, me);
}

/* A clean stop in --fsync no: the media files and directories written
 * since start reach the disk. 0 or -1. */
static int sync_media(persist *p) {
    if (p->capunsynced == SIZE_MAX) return syncfs(p->dfd);
    int rc = 0;
    for (size_t i = 0; i < p->nunsynced; i++) {
        char *path = p->unsynced[i];
        int fd = openat(p->mfd, path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) { /* (gone: its service was deleted) */
            if (fsync(fd)) rc = -1;
            close(fd);
        }
        path[34] = '\0'; /* the service's directory */
        fd = openat(p->mfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            if (fsync(fd)) rc = -1;
            close(fd);
        }
    }
    if (p->nunsynced && fsync(p->mfd)) rc = -1;
    return rc;
}

/* The journal hook: see the top. */
static int journal_hook(void *ctx, uint64_t seq, const void *rec, size_t len) {
    persist *p = ctx;
    if (seq != p->next_seq) {
        logf_("journal: record seq %llu where %llu was expected: refused",
              (unsigned long long)seq, (unsigned long long)p->next_seq);
        return -1;
    }
    stage *st = tl_stage;
    char is[35], me[35];
    bool placed = false;
    if (!persist_media_record_sids(rec, len, is, me)) {
        if (!st || st->moved) {
            logf_("journal: a media create without staged bytes: refused");
            return -1;
        }
        if (media_place(p, st, is, me)) {
            logf_("journal: cannot store the bytes of %s: %s", me,
                  strerror(errno));
            return -1;
        }
        placed = true;
    }
    if (jfile_append(p->jf, rec, len)) {
        logf_("journal: cannot extend journal-%llu: %s: change refused",
              (unsigned long long)p->jfirst, strerror(errno));
        if (placed) media_unplace(p, st);
        return -1;
    }
    if (placed) {
        st->moved = true;
        if (!syncing(p)) remember_unsynced(p, is, me);
    }
    uint64_t n = PERSIST_FRAME_HEADER + len;
    p->next_seq++;
    bool prepare = jfile_wants_prepare(p->jf);
    pthread_mutex_lock(&p->mu);
    p->written += n;
    tl_pos = p->written;
    p->journal_bytes += n;
    if (!p->compact_wanted && p->journal_bytes > p->threshold) {
        p->compact_wanted = true;
        pthread_cond_broadcast(&p->wake);
    }
    if (prepare && !p->prepare_wanted) {
        p->prepare_wanted = true;
        pthread_cond_signal(&p->jwake);
    }
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* ---- group commit ---------------------------------------------------------- */

/* Test-only (see test_synced_fd). Under mu. */
static void note_synced(persist *p, uint64_t first, uint64_t off) {
    if (p->test_synced_fd < 0) return;
    char line[64];
    memset(line, ' ', sizeof line);
    int n = snprintf(line, sizeof line, "journal-%llu %llu",
                     (unsigned long long)first, (unsigned long long)off);
    if (n > 0 && n < (int)sizeof line) line[n] = ' ';
    line[sizeof line - 1] = '\n';
    ssize_t ignored = pwrite(p->test_synced_fd, line, sizeof line, 0);
    (void)ignored;
}

static void run_drops(persist *p);

/* Returns once synced >= pos. */
static void flush_to(persist *p, uint64_t pos) {
    pthread_mutex_lock(&p->mu);
    while (p->synced < pos) {
        if (p->flushing) {
            pthread_cond_wait(&p->flushed, &p->mu);
            continue;
        }
        p->flushing = true;
        uint64_t target = p->written, off = target - p->jbase, first = p->jfirst;
        jfile *jf = p->jf;
        pthread_mutex_unlock(&p->mu);
        if (jfile_datasync(jf)) sync_failed("fdatasync of the journal", errno);
        pthread_mutex_lock(&p->mu);
        note_synced(p, first, off);
        pthread_mutex_unlock(&p->mu);
        jfile_set_synced(jf, off);
        pthread_mutex_lock(&p->mu);
        p->flushing = false;
        p->syncs++;
        if (target > p->synced) p->synced = target;
        pthread_cond_broadcast(&p->flushed);
    }
    run_drops(p);
    pthread_mutex_unlock(&p->mu);
}

void persist_stats_get(persist *p, persist_stats *out) {
    pthread_mutex_lock(&p->mu);
    out->written = p->written - p->written0;
    out->synced = p->synced > p->synced0 ? p->synced - p->synced0 : 0;
    out->syncs = p->syncs;
    out->compactions = p->compactions_done;
    pthread_mutex_unlock(&p->mu);
}

void persist_request_begin(persist *p) {
    (void)p;
    tl_pos = 0;
}

void persist_request_end(persist *p) {
    if (tl_pos && p->cfg.fsync == PERSIST_FSYNC_ALWAYS) flush_to(p, tl_pos);
    tl_pos = 0;
}

/* The journal thread: prepares the space ahead of the hook when asked and,
 * with --fsync everysec, fdatasyncs once a second when something was
 * written. */
static void *jthread_main(void *arg) {
    persist *p = arg;
    bool everysec = p->cfg.fsync == PERSIST_FSYNC_EVERYSEC;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    next.tv_sec += 1;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        if (p->prepare_wanted && !p->rotating) {
            p->prepare_wanted = false;
            p->preparing = true;
            jfile *jf = p->jf;
            pthread_mutex_unlock(&p->mu);
            jfile_prepare(jf);
            pthread_mutex_lock(&p->mu);
            p->preparing = false;
            pthread_cond_broadcast(&p->flushed);
            continue;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (everysec && (now.tv_sec > next.tv_sec ||
                         (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec))) {
            next = now;
            next.tv_sec += 1;
            uint64_t w = p->written;
            if (w > p->synced) {
                pthread_mutex_unlock(&p->mu);
                flush_to(p, w);
                pthread_mutex_lock(&p->mu);
            }
            continue;
        }
        if (everysec)
            pthread_cond_timedwait(&p->jwake, &p->mu, &next);
        else
            pthread_cond_wait(&p->jwake, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- media ------------------------------------------------------------------ */

int persist_media_stage(persist *p, const void *data, size_t n) {
    static unsigned long counter;
    stage *st = calloc(1, sizeof *st);
    if (!st) return -1;
    snprintf(st->tmp, sizeof st->tmp, "tmp-%d-%lu", (int)p->pid,
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    int fd = openat(p->mfd, st->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    0644);
    if (fd < 0) {
        logf_("media: cannot create media/%s: %s", st->tmp, strerror(errno));
        free(st);
        return -1;
    }
    int rc = persist_write_cb(&fd, data, n);
    if (rc) logf_("media: cannot write media/%s: %s", st->tmp, strerror(errno));
    if (!rc && syncing(p) && fdatasync(fd)) sync_failed("fdatasync of media", errno);
    close(fd);
    if (rc) {
        unlinkat(p->mfd, st->tmp, 0);
        free(st);
        return -1;
    }
    tl_stage = st;
    return 0;
}

void persist_media_unstage(persist *p) {
    stage *st = tl_stage;
    if (!st) return;
    if (!st->moved) unlinkat(p->mfd, st->tmp, 0);
    free(st);
    tl_stage = NULL;
}

static void remove_service_media(persist *p, const char *service_sid) {
    int sfd = openat(p->mfd, service_sid, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0) return;
    DIR *d = fdopendir(sfd);
    if (!d) {
        close(sfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(sfd, e->d_name, 0);
    closedir(d);
    unlinkat(p->mfd, service_sid, AT_REMOVEDIR);
    /* Not synced: bytes that come back after a crash belong to a deleted
     * service, and recovery removes them. */
}

/* One media item's file, media/<is>/<me>. Not synced, like a service's:
 * a file that comes back after a crash is an orphan recovery removes. */
static void remove_media(persist *p, const char *is, const char *me) {
    char path[80];
    if (!me[0]) {
        remove_service_media(p, is);
        return;
    }
    snprintf(path, sizeof path, "%s/%s", is, me);
    unlinkat(p->mfd, path, 0);
}

/* The bytes go only once the delete's record is on disk (unless --fsync
 * no): removed earlier, a crash that lost the record would bring the
 * service (or the item) back without its media. */
void persist_media_drop_service(persist *p, const char *service_sid) {
    persist_media_drop(p, service_sid, "");
}

void persist_media_drop(persist *p, const char *service_sid,
                        const char *media_sid) {
    if (!syncing(p) || !tl_pos) {
        remove_media(p, service_sid, media_sid);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->synced >= tl_pos) {
        pthread_mutex_unlock(&p->mu);
        remove_media(p, service_sid, media_sid);
        return;
    }
    if (p->ndrops == p->capdrops) {
        size_t cap = p->capdrops ? p->capdrops * 2 : 16;
        void *d = realloc(p->drops, cap * sizeof *p->drops);
        if (!d) { /* the bytes stay until the next start removes them */
            pthread_mutex_unlock(&p->mu);
            return;
        }
        p->drops = d;
        p->capdrops = cap;
    }
    snprintf(p->drops[p->ndrops].sid, sizeof p->drops->sid, "%s", service_sid);
    snprintf(p->drops[p->ndrops].me, sizeof p->drops->me, "%s", media_sid);
    p->drops[p->ndrops++].pos = tl_pos;
    pthread_mutex_unlock(&p->mu);
}

/* Removes the media of deleted services and items whose delete is now
 * synced. Called
 * with mu held; returns with it held. */
static void run_drops(persist *p) {
    while (p->ndrops) {
        size_t i = 0;
        while (i < p->ndrops && p->drops[i].pos > p->synced) i++;
        if (i == p->ndrops) return;
        char sid[35], me[35];
        memcpy(sid, p->drops[i].sid, sizeof sid);
        memcpy(me, p->drops[i].me, sizeof me);
        p->drops[i] = p->drops[--p->ndrops];
        pthread_mutex_unlock(&p->mu);
        remove_media(p, sid, me);
        pthread_mutex_lock(&p->mu);
    }
}

/* ---- compaction -------------------------------------------------------- */

static int files_push(persist *p, uint64_t first) {
    if (p->nfiles == p->capfiles) {
        size_t cap = p->capfiles ? p->capfiles * 2 : 16;
        uint64_t *f = realloc(p->files, cap * sizeof *f);
        if (!f) return -1;
        p->files = f;
        p->capfiles = cap;
    }
    p->files[p->nfiles++] = first;
    return 0;
}

static void update_threshold(persist *p) {
    double t = p->cfg.compact_ratio * (double)p->snap_bytes;
    uint64_t th = t > (double)UINT64_MAX / 2 ? UINT64_MAX / 2 : (uint64_t)t;
    if (th < p->cfg.compact_min_bytes) th = p->cfg.compact_min_bytes;
    pthread_mutex_lock(&p->mu);
    p->threshold = th;
    pthread_mutex_unlock(&p->mu);
}

/* How the journal thread readies the pages ahead of the hook: faulted in
 * writable, except with --fsync always, where pages dirtied ahead would be
 * written (as zeros) by the many fdatasyncs that a request waits for. */
static void set_ahead(persist *p, jfile *jf) {
    jfile_set_ahead(jf, p->cfg.fsync == PERSIST_FSYNC_ALWAYS ? JFILE_AHEAD_READ
                                                             : JFILE_AHEAD_WRITE);
}

/* Creates journal-<first> and makes it current: see the top for the order
 * of a rotation. Under the store's exclusive lock (or before the hook is
 * installed). */
static int open_journal(persist *p, uint64_t first, bool rotate) {
    char name[PERSIST_NAME_MAX];
    snprintf(name, sizeof name, "journal-%llu", (unsigned long long)first);
    if (files_push(p, first)) return -1;
    jfile *old = rotate ? p->jf : NULL;
    uint64_t old_end = old ? jfile_end(old) : 0, old_first = p->jfirst;
    if (old) {
        pthread_mutex_lock(&p->mu);
        while (p->flushing || p->preparing)
            pthread_cond_wait(&p->flushed, &p->mu);
        p->flushing = p->rotating = true;
        pthread_mutex_unlock(&p->mu);
        /* The old file is on disk before the new one exists: a crash
         * never leaves a journal file after one that lost its end. */
        if (syncing(p)) {
            if (jfile_datasync(old)) sync_failed("fdatasync of the journal", errno);
            pthread_mutex_lock(&p->mu);
            note_synced(p, p->jfirst, old_end);
            pthread_mutex_unlock(&p->mu);
            jfile_set_synced(old, old_end);
        }
    }
    jfile *jf = jfile_create(p->dfd, name, first);
    if (!jf) {
        logf_("cannot create %s/%s: %s", p->dir, name, strerror(errno));
        p->nfiles--;
        if (old) {
            pthread_mutex_lock(&p->mu);
            p->flushing = p->rotating = false;
            pthread_cond_broadcast(&p->flushed);
            pthread_cond_signal(&p->jwake); /* (a preparation may be due) */
            pthread_mutex_unlock(&p->mu);
        }
        return -1;
    }
    set_ahead(p, jf);
    /* Its header, then its name, on disk (a file without its header is
     * taken for one whose creation did not finish). */
    if (syncing(p)) {
        if (fdatasync(jfile_fd(jf))) sync_failed("fdatasync of the journal", errno);
        if (fsync(p->dfd)) sync_failed("fsync of the data directory", errno);
    }
    pthread_mutex_lock(&p->mu);
    p->jf = jf;
    p->jfirst = first;
    p->jbase = p->written - JFILE_HEADER;
    if (syncing(p)) {
        p->synced = p->written;
        note_synced(p, first, JFILE_HEADER);
    }
    p->rotated_bytes = p->journal_bytes; /* the snapshot about to be made
                                            covers these */
    p->flushing = p->rotating = false;
    pthread_cond_broadcast(&p->flushed);
    p->prepare_wanted = true;
    pthread_cond_signal(&p->jwake);
    pthread_mutex_unlock(&p->mu);
    /* The old file loses its preallocated space (not synced: zeros after
     * its last frame are its end all the same). */
    if (old && jfile_close(old, false))
        logf_("warning: cannot cut journal-%llu to its end: %s",
              (unsigned long long)old_first, strerror(errno));
    return 0;
}

/* The new snapshot's writer: buffered; refuses (as a failed write would)
 * once a clean stop is under way. */
typedef struct cwriter {
    persist *p;
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t off;    /* bytes written */
    uint64_t queued; /* bytes whose writeback was started */
} cwriter;

/* Writes the snapshot back while it is written, SNAP_SYNC_STEP at a time,
 * waiting for the step before the one it starts: without this, the final
 * fsync sends the whole snapshot (1.5 GB at 10^7 messages) to the disk at
 * once, and every journal fdatasync queued behind it waits (up to a second
 * here, which --fsync always requests wait for). Linux's sync_file_range;
 * the final fsync still makes it durable. */
static void cw_written(cwriter *w, size_t n) {
    w->off += n;
    while (w->off - w->queued >= SNAP_SYNC_STEP) {
        sync_file_range(w->fd, (off_t)w->queued, (off_t)SNAP_SYNC_STEP,
                        SYNC_FILE_RANGE_WRITE);
        if (w->queued >= SNAP_SYNC_STEP)
            sync_file_range(w->fd, (off_t)(w->queued - SNAP_SYNC_STEP),
                            (off_t)SNAP_SYNC_STEP,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER);
        w->queued += SNAP_SYNC_STEP;
    }
}

static bool stop_asked(persist *p) {
    return __atomic_load_n(&p->cancel, __ATOMIC_RELAXED) != 0;
}

static int cw_flush(cwriter *w) {
    int rc = persist_write_cb(&w->fd, w->buf, w->len);
    if (!rc) cw_written(w, w->len);
    w->len = 0;
    return rc;
}

static int cw_write(void *ctx, const void *buf, size_t len) {
    cwriter *w = ctx;
    if (len > SNAP_BUF - w->len) {
        if (stop_asked(w->p)) {
            errno = ECANCELED;
            return -1;
        }
        if (cw_flush(w)) return -1;
        if (len >= SNAP_BUF) {
            if (persist_write_cb(&w->fd, buf, len)) return -1;
            cw_written(w, len);
            return 0;
        }
    }
    memcpy(w->buf + w->len, buf, len);
    w->len += len;
    return 0;
}

/* Steps 3 to 5: b saved as snapshot-<seq> (tmp file, fsync, rename,
 * directory fsync). 0 and *bytes, or -1 after logging why, with neither
 * file left. */
static int save_snapshot(persist *p, const cs_store *b, uint64_t seq,
                         uint64_t *bytes) {
    char tmp[PERSIST_NAME_MAX + 32], final[PERSIST_NAME_MAX];
    snprintf(tmp, sizeof tmp, "snapshot-%llu.tmp.%d.%u",
             (unsigned long long)seq, (int)p->pid, p->compactions);
    snprintf(final, sizeof final, "snapshot-%llu", (unsigned long long)seq);
    const char *what = "create";
    struct stat fs;
    cwriter w = {p, -1, malloc(SNAP_BUF), 0, 0, 0};
    if (!w.buf) {
        logf_("compaction: out of memory; retrying later");
        return -1;
    }
    w.fd = openat(p->dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) goto fail;
    what = "write";
    if (cs_snapshot_save(b, cw_write, &w) || cw_flush(&w)) goto fail;
    crash_point(p, "snapshot-written");
    what = "fsync";
    if (fsync(w.fd) || fstat(w.fd, &fs)) goto fail;
    *bytes = (uint64_t)fs.st_size;
    close(w.fd);
    w.fd = -1;
    what = "rename";
    if (renameat(p->dfd, tmp, p->dfd, final)) goto fail;
    crash_point(p, "snapshot-renamed");
    if (fsync(p->dfd)) {
        what = "fsync the directory after renaming";
        unlinkat(p->dfd, final, 0);
        goto fail;
    }
    free(w.buf);
    crash_point(p, "snapshot-done");
    return 0;
fail:
    if (!stop_asked(p))
        logf_("compaction: cannot %s %s/%s: %s; the journal keeps everything, "
              "retrying later",
              what, p->dir, tmp, strerror(errno));
    if (w.fd >= 0) close(w.fd);
    unlinkat(p->dfd, tmp, 0);
    free(w.buf);
    return -1;
}

/* MANIFEST with a crash point between each step. -1 (nothing changed: the
 * compaction failed) when it cannot be written, e.g. the disk is full; a
 * failed fsync ends the process (see the top). */
static int write_manifest_steps(persist *p, uint64_t cur, uint64_t prev) {
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "%s\nsnapshot snapshot-%llu\nprevious snapshot-%llu\n",
                     PERSIST_MANIFEST_MAGIC, (unsigned long long)cur,
                     (unsigned long long)prev);
    int fd = openat(p->dfd, PERSIST_MANIFEST ".tmp",
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) errno = 0;
    if (fd < 0 || write(fd, buf, (size_t)n) != n) {
        logf_("compaction: cannot write MANIFEST.tmp: %s",
              fd < 0 || errno ? strerror(errno) : "short write");
        if (fd >= 0) close(fd);
        unlinkat(p->dfd, PERSIST_MANIFEST ".tmp", 0);
        return -1;
    }
    if (fsync(fd)) sync_failed("fsync of MANIFEST.tmp", errno);
    close(fd);
    crash_point(p, "manifest-written");
    if (renameat(p->dfd, PERSIST_MANIFEST ".tmp", p->dfd, PERSIST_MANIFEST)) {
        logf_("compaction: cannot rename MANIFEST.tmp: %s", strerror(errno));
        unlinkat(p->dfd, PERSIST_MANIFEST ".tmp", 0);
        return -1;
    }
    crash_point(p, "manifest-renamed");
    if (fsync(p->dfd)) sync_failed("fsync of the data directory", errno);
    crash_point(p, "manifest-synced");
    return 0;
}

static double mono_secs(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The counts a rebuilt store must share with the live one. */
static bool same_counts(const cs_store_stats *a, const cs_store_stats *b) {
    return a->commits == b->commits && a->services == b->services &&
           a->channels == b->channels && a->messages == b->messages &&
           a->media == b->media && a->identities == b->identities;
}

/* One compaction (see the top): 0 done (or nothing to do), -1 failed or
 * abandoned (retried later). */
static int compact(persist *p) {
    /* Step 1, the only one under the lock: R and the live counts, and the
     * rotation. The rotation fdatasyncs the current file: most of its
     * unsynced bytes (up to a second's with everysec) are synced first,
     * outside the lock. */
    if (syncing(p)) {
        pthread_mutex_lock(&p->mu);
        uint64_t w = p->written;
        pthread_mutex_unlock(&p->mu);
        flush_to(p, w); /* a group-commit flush, as a request's */
    }
    double t0 = mono_secs();
    cs_store_lock_exclusive(p->store);
    double t1 = mono_secs();
    cs_store_stats live;
    cs_store_stats_get(p->store, &live);
    uint64_t r = live.commits;
    if (r == p->snap_seq) {
        cs_store_unlock(p->store);
        return 0;
    }
    p->compactions++;
    int rc = p->jfirst != r + 1 ? open_journal(p, r + 1, true) : 0;
    cs_store_unlock(p->store);
    double t2 = mono_secs();
    if (rc) return -1;
    logf_("compaction: started at seq %llu: changes waited %.2f ms for the "
          "rotation to journal-%llu (lock held %.2f ms); rebuilding from "
          "snapshot-%llu",
          (unsigned long long)r, (t2 - t0) * 1e3, (unsigned long long)r + 1,
          (t2 - t1) * 1e3, (unsigned long long)p->snap_seq);
    crash_point(p, "rotated");

    /* Step 2: no lock from here on; the live store is not read again. */
    recover_opts ro = {p->dir, "chatstore-server: compaction", stderr, false,
                       false, &p->opts, NULL, NULL};
    cs_store *b = NULL;
    rebuild_info bi;
    if (recover_rebuild(&ro, p->dfd, p->snap_seq, p->files, p->nfiles, r,
                        &p->cancel, &b, &bi)) {
        if (!stop_asked(p))
            logf_("compaction: ABANDONED: the state at seq %llu could not be "
                  "rebuilt from snapshot-%llu and the journal files (why "
                  "above). Nothing is deleted and the server keeps running; "
                  "if that is damage, a restart would stop at it too: check "
                  "the disk, run chatstore-check %s. Retrying later",
                  (unsigned long long)r, (unsigned long long)p->snap_seq,
                  p->dir);
        return -1;
    }
    cs_store_stats got;
    cs_store_stats_get(b, &got);
    if (!same_counts(&live, &got)) {
        logf_("compaction: ABANDONED: MISMATCH at seq %llu: the live store "
              "holds %zu services, %zu channels, %zu messages, %zu media, "
              "%zu identities; snapshot-%llu and the journal files rebuild "
              "%zu, %zu, %zu, %zu, %zu. Nothing is deleted: the files may not "
              "recover what the server holds; run chatstore-check %s. "
              "Retrying later",
              (unsigned long long)r, live.services, live.channels,
              live.messages, live.media, live.identities,
              (unsigned long long)p->snap_seq, got.services, got.channels,
              got.messages, got.media, got.identities, p->dir);
        cs_store_free(b);
        return -1;
    }
    crash_point(p, "rebuilt");

    /* Steps 3 to 5. */
    double t3 = mono_secs();
    uint64_t bytes = 0;
    rc = save_snapshot(p, b, r, &bytes);
    double t4 = mono_secs();
    cs_store_free(b);
    if (rc) return -1;

    /* Steps 6 to 8. */
    uint64_t old_cur = p->snap_seq, old_prev = p->prev_seq;
    bool had_prev = p->has_prev;
    if (write_manifest_steps(p, r, old_cur)) {
        char n[PERSIST_NAME_MAX];
        snprintf(n, sizeof n, "snapshot-%llu", (unsigned long long)r);
        unlinkat(p->dfd, n, 0); /* not named: useless */
        return -1;
    }
    p->snap_seq = r;
    p->snap_bytes = bytes;
    p->prev_seq = old_cur;
    p->has_prev = true;
    update_threshold(p);
    pthread_mutex_lock(&p->mu);
    p->journal_bytes -= p->rotated_bytes; /* what came after the rotation */
    p->rotated_bytes = 0;
    p->compactions_done++; /* the MANIFEST names the new snapshot */
    pthread_mutex_unlock(&p->mu);
    /* Steps 9 and 10: what the MANIFEST no longer needs. */
    if (had_prev && old_prev != old_cur) {
        char n[PERSIST_NAME_MAX];
        snprintf(n, sizeof n, "snapshot-%llu", (unsigned long long)old_prev);
        unlinkat(p->dfd, n, 0);
        crash_point(p, "deleted-snapshot");
    }
    size_t w = 0;
    for (size_t i = 0; i < p->nfiles; i++) {
        if (i + 1 < p->nfiles && p->files[i + 1] - 1 <= p->prev_seq) {
            char n[PERSIST_NAME_MAX];
            snprintf(n, sizeof n, "journal-%llu", (unsigned long long)p->files[i]);
            unlinkat(p->dfd, n, 0);
            crash_point(p, "deleted-journal");
            continue;
        }
        p->files[w++] = p->files[i];
    }
    p->nfiles = w;
    logf_("compaction: snapshot-%llu (%llu bytes) in %.2f s: loaded "
          "snapshot-%llu in %.2f s, replayed %llu records from %llu journal "
          "file(s) in %.2f s, saved in %.2f s; the files rebuild the live "
          "counts (%zu services, %zu channels, %zu messages, %zu media); a "
          "second store of %.1f MiB meanwhile; changes waited %.2f ms for "
          "the rotation (lock held %.2f ms)",
          (unsigned long long)r, (unsigned long long)bytes, mono_secs() - t0,
          (unsigned long long)old_cur, bi.load_secs,
          (unsigned long long)bi.applied, (unsigned long long)bi.files,
          bi.replay_secs, t4 - t3, got.services, got.channels, got.messages,
          got.media, (double)got.bytes_allocated / 1048576.0,
          (t2 - t0) * 1e3, (t2 - t1) * 1e3);
    crash_point(p, "done");
    return 0;
}

static void *compactor_main(void *arg) {
    persist *p = arg;
    /* Requests come first: the rebuild and the save are CPU work that can
     * wait (Linux: a thread's own nice value; best effort). */
    id_t tid = (id_t)gettid();
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, tid);
    if (!errno) nice = nice + COMPACT_NICE > 19 ? 19 : nice + COMPACT_NICE;
    if (errno || setpriority(PRIO_PROCESS, tid, nice))
        logf_("compaction: cannot lower its priority: %s", strerror(errno));
    time_t backoff = COMPACT_BACKOFF_MIN;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        if (!p->compact_wanted) {
            pthread_cond_wait(&p->wake, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        int rc = compact(p);
        pthread_mutex_lock(&p->mu);
        if (rc) { /* back off before retrying: each try reads everything */
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_sec += backoff;
            while (!p->stopping &&
                   pthread_cond_timedwait(&p->wake, &p->mu, &t) != ETIMEDOUT) {
            }
            if (backoff < COMPACT_BACKOFF_MAX) backoff *= 2;
        } else {
            backoff = COMPACT_BACKOFF_MIN;
        }
        /* (the hook kept asking while the compaction ran) */
        p->compact_wanted = p->journal_bytes > p->threshold;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- open and close ------------------------------------------------------- */

static void load_media(void *ctx, const char *is, const char *me,
                       const void *data, size_t n) {
    persist *p = ctx;
    blob *b = NULL;
    int rc = media_store_prepare(p->media, data, n, &b);
    if (rc) {
        logf_("warning: media/%s/%s: %s: its content is not served", is, me,
              rc == MEDIA_FULL ? "over --media-cap" : "out of memory");
        return;
    }
    /* the date is not known here: the first expiry sweep reads it from the
     * store (media_store_note) */
    media_store_commit(p->media, b, me, is, INT64_MIN);
}

static void parse_crash_env(persist *p) {
    const char *e = getenv("CHATSTORE_TEST_CRASH");
    if (!e || !*e) return;
    snprintf(p->crash_at, sizeof p->crash_at, "%s", e);
    p->crash_n = 1;
    char *colon = strchr(p->crash_at, ':');
    if (colon) {
        *colon = '\0';
        p->crash_n = (unsigned)strtoul(colon + 1, NULL, 10);
    }
    logf_("TEST ONLY: CHATSTORE_TEST_CRASH: crashing at %s of compaction %u",
          p->crash_at, p->crash_n);
}

static void open_test_synced(persist *p) {
    const char *e = getenv("CHATSTORE_TEST_SYNCED");
    if (!e || !*e) return;
    p->test_synced_fd = open(e, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    logf_("TEST ONLY: CHATSTORE_TEST_SYNCED: noting synced offsets in %s", e);
}

/* A new SID epoch before anything is served, its record durable in every
 * mode: the SIDs that records lost in a machine crash gave out are then
 * never issued again. The journal files recovery read are synced first (a
 * process crash leaves them in the page cache, and with --fsync no a
 * rotation does not sync): a power loss that took one of their ends could
 * otherwise leave a gap before the epoch record, and --repair drop it. */
static int start_epoch(persist *p) {
    for (size_t i = 0; i < p->nfiles; i++) {
        if (p->files[i] == p->jfirst) continue; /* flush_to syncs it */
        char name[PERSIST_NAME_MAX];
        snprintf(name, sizeof name, "journal-%llu",
                 (unsigned long long)p->files[i]);
        int fd = openat(p->dfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            logf_("%s/%s: %s", p->dir, name, strerror(errno));
            return -1;
        }
        if (fdatasync(fd)) sync_failed("fdatasync of a journal file", errno);
        close(fd);
    }
    uint32_t epoch;
    cs_err e = cs_store_new_epoch(p->store, &epoch);
    if (e) {
        logf_("cannot start a new SID epoch: %s", cs_err_message(e));
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    uint64_t w = p->written;
    pthread_mutex_unlock(&p->mu);
    flush_to(p, w);
    /* (a journal file created at this start is in the directory too) */
    if (fsync(p->dfd)) sync_failed("fsync of the data directory", errno);
    logf_("SID epoch %lu started and synced", (unsigned long)epoch);
    return 0;
}

persist *persist_open(const persist_config *cfg, media_store *m,
                      cs_store **store) {
    persist *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->cfg = *cfg;
    p->dfd = p->mfd = p->test_synced_fd = -1;
    p->media = m;
    p->pid = getpid();
    snprintf(p->dir, sizeof p->dir, "%s", cfg->dir);
    p->cfg.dir = p->dir;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->flushed, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->jwake, &ca);
    pthread_condattr_destroy(&ca);
    parse_crash_env(p);
    open_test_synced(p);

    cs_options o = CS_OPTIONS_INIT;
    o.account_sid = cfg->account_sid;
    o.base_url = cfg->base_url;
    recover_opts ro = {cfg->dir, "chatstore-server", stderr, cfg->repair, false,
                       &o, load_media, p};
    recover_result r;
    if (recover(&ro, &r)) {
        recover_result_free(&r);
        goto fail;
    }
    p->store = r.store;
    /* The rebuilt stores: the account and keys come from the image; the
     * limits must be the live store's, which the records passed. */
    p->opts = (cs_options)CS_OPTIONS_INIT;
    p->opts.limits = *cs_store_limits(p->store);
    cs_store_stats st;
    cs_store_stats_get(p->store, &st);
    if (r.created)
        logf_("initialised %s: %s", p->dir, r.snap_name);
    else
        logf_("loaded %s (seq %llu) in %.2f s; replayed %llu records (to seq "
              "%llu) from %llu journal file(s) in %.2f s: %zu services, %zu "
              "channels, %zu messages, %zu media",
              r.snap_name, (unsigned long long)r.snap_seq, r.snap_secs,
              (unsigned long long)r.applied, (unsigned long long)st.commits,
              (unsigned long long)r.journal_files, r.replay_secs, st.services,
              st.channels, st.messages, st.media);
    p->snap_seq = r.snap_seq;
    p->snap_bytes = r.snap_bytes;
    p->has_prev = r.has_prev;
    p->prev_seq = r.prev_seq;
    for (size_t i = 0; i < r.nj; i++)
        if (files_push(p, r.jfirst[i])) goto fail_r;

    p->dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->dfd >= 0) p->mfd = openat(p->dfd, PERSIST_MEDIA_DIR,
                                     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->dfd < 0 || p->mfd < 0) {
        logf_("%s: %s", p->dir, strerror(errno));
        goto fail_r;
    }
    /* The file to append to: the last one, if the next record continues
     * it; else a new one. */
    p->next_seq = st.commits + 1;
    if (r.nj && r.append_next == p->next_seq) {
        char name[PERSIST_NAME_MAX];
        p->jfirst = r.jfirst[r.nj - 1];
        snprintf(name, sizeof name, "journal-%llu", (unsigned long long)p->jfirst);
        uint64_t end = r.jsize[r.nj - 1];
        p->jf = jfile_reopen(p->dfd, name, end);
        if (!p->jf) {
            logf_("%s/%s: %s", p->dir, name, strerror(errno));
            goto fail_r;
        }
        set_ahead(p, p->jf);
        p->written = p->synced = end; /* positions = offsets in it */
        p->jbase = 0;
        p->prepare_wanted = true;
        /* What recovery read may still be only in the page cache (a
         * crash of the process before this start): make it durable
         * before anything new is acknowledged on top of it. */
        if (syncing(p)) {
            if (jfile_datasync(p->jf)) sync_failed("fdatasync of the journal", errno);
            note_synced(p, p->jfirst, end);
            jfile_set_synced(p->jf, end);
        }
    } else if (open_journal(p, p->next_seq, false)) {
        goto fail_r;
    }
    p->journal_bytes = r.journal_bytes;
    recover_result_free(&r);
    update_threshold(p);
    if (p->journal_bytes > p->threshold) p->compact_wanted = true;

    p->written0 = p->written; /* no other thread runs yet */
    p->synced0 = p->synced;
    cs_store_set_journal(p->store, journal_hook, p);
    if (start_epoch(p)) goto fail;
    if (pthread_create(&p->compactor, NULL, compactor_main, p)) goto fail;
    p->have_compactor = true;
    if (pthread_create(&p->jthread, NULL, jthread_main, p)) goto fail;
    p->have_jthread = true;
    *store = p->store;
    return p;
fail_r:
    recover_result_free(&r);
fail:
    *store = NULL;
    cs_store *s = p->store;
    persist_close(p); /* stops the threads first */
    cs_store_free(s);
    return NULL;
}

int persist_close(persist *p) {
    if (!p) return 0;
    __atomic_store_n(&p->cancel, 1, __ATOMIC_RELAXED); /* a compaction stops */
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_cond_broadcast(&p->jwake);
    pthread_mutex_unlock(&p->mu);
    if (p->have_compactor) pthread_join(p->compactor, NULL);
    if (p->have_jthread) pthread_join(p->jthread, NULL);
    int rc = 0;
    if (p->jf) {
        /* Whatever the mode: a clean stop leaves everything on disk. */
        pthread_mutex_lock(&p->mu);
        uint64_t w = p->written;
        pthread_mutex_unlock(&p->mu);
        flush_to(p, w);
        if (p->cfg.fsync == PERSIST_FSYNC_NO && sync_media(p)) {
            logf_("syncing the media files of %s: %s", p->dir, strerror(errno));
            rc = -1;
        }
        /* Cut to its end, synced with its header's D (and the
         * directory: a journal file created since start). */
        if (jfile_close(p->jf, true) || fsync(p->dfd)) rc = -1;
        p->jf = NULL;
        if (!rc)
            logf_("journal synced up to seq %llu",
                  (unsigned long long)p->next_seq - 1);
    }
    if (p->store) cs_store_set_journal(p->store, NULL, NULL);
    if (p->mfd >= 0) close(p->mfd);
    if (p->dfd >= 0) close(p->dfd);
    if (p->test_synced_fd >= 0) close(p->test_synced_fd);
    pthread_cond_destroy(&p->flushed);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->jwake);
    pthread_mutex_destroy(&p->mu);
    free(p->files);
    free(p->drops);
    free(p->unsynced);
    free(p);
    return rc;
}
