/* chatstore-bench --durable and --recovery: chatstore with its change
 * journal in a file against SQLite on a file, and the recovery steps
 * (snapshot save, snapshot load, journal replay).
 *
 * The journal file is written as the server writes it: the bench links the
 * server's own journal file module (server/jfile.c) and mirrors its hook
 * and journal thread (server/persist.c). For every change the hook copies
 * the frame (u32 length, little-endian, then the record) into a shared
 * mapping of the preallocated file, on the mutating thread under the
 * store's exclusive lock, with no system call; then it raises the written
 * position under the flush mutex and, when the space made ready ahead runs
 * low, wakes the journal thread, which extends the file and faults the
 * next pages in (jfile_prepare). Durability comes from fdatasync: once a
 * second from that thread when something was written (DUR_NORMAL, the
 * server's "everysec"), or before each call returns, after the lock is
 * released (DUR_ALWAYS: the server's "always", whose group commit has
 * nothing to group with a single caller).
 *
 * Every variant runs in its own forked process (bench_fork), repeated
 * --runs times in rotating order, the fastest run per (op, variant) kept.
 * Each recovery step runs in a fresh process too, so loads and replays pay
 * for fresh memory as a restarting server does.
 *
 * Diagnostics beside the measured designs: the journal written with one
 * pwritev() per record (the server's write path before the mapping: what
 * the system call costs), the mapping without pages prepared ahead (what
 * the page faults cost), and recovery steps without I/O and without
 * first-touch page faults (what bounds them).
 *
 * Correctness, checked in every run (and all that --smoke reports): the
 * journaled store and SQLite give the same answers (run.c's digests), the
 * journal replayed onto the empty-state snapshot renders exactly as the
 * store that wrote it, a loaded snapshot renders exactly as the saved store
 * and saves to the same bytes. */
#define _GNU_SOURCE /* sync(), pwritev() */
#include "bench.h"
#include "jfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define IO_BUF (1u << 20)

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static uint64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

void dur_quiesce(void) { sync(); }

void dur_path(const bench_cfg *c, const char *kind, char *buf, size_t n) {
    const char *ext = strcmp(kind, "s0") == 0        ? "s0.snap"
                      : strcmp(kind, "snap") == 0    ? "snap"
                      : strcmp(kind, "journal") == 0 ? "journal"
                      : strcmp(kind, "db") == 0      ? "db"
                                                     : kind;
    snprintf(buf, n, "%s/%s.%s", c->dir ? c->dir : "/tmp",
             c->tag ? c->tag : "bench", ext);
}

/* ---- the journal file -------------------------------------------------------- */

/* The server's journal (server/persist.c) reduced to what the bench runs:
 * the same jfile (server/jfile.c), the same hook (jfile_append, then the
 * written position raised under the flush mutex, and the journal thread
 * asked to prepare the space ahead when it runs low), the same thread
 * (prepares when asked; DUR_NORMAL: jfile_datasync and jfile_set_synced
 * once a second when something was written), and for DUR_ALWAYS the same
 * after each call, as a single client's request waits for one. */
struct djournal {
    jfile *jf;
    int fd; /* the pwritev diagnostic's file (jf is NULL then) */
    int dur, phase, diag;
    uint64_t off; /* the pwritev diagnostic's end */
    uint64_t bytes, records, bytes_op[OP__COUNT], recs_op[OP__COUNT];
    /* under mu, as the server keeps them */
    uint64_t written, synced;
    bool prepare_wanted;
    /* fdatasync statistics: the thread's (DUR_NORMAL) or the caller's */
    uint64_t syncs, sync_max, sync_total, prepares;
    pthread_t thr;
    bool thr_on, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void sync_note(djournal *j, uint64_t ns) {
    j->syncs++;
    j->sync_total += ns;
    if (ns > j->sync_max) j->sync_max = ns;
}

static int pwritev_all(int fd, struct iovec *v, int k, uint64_t off) {
    while (k > 0) {
        ssize_t w = pwritev(fd, v, k, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        off += (uint64_t)w;
        size_t left = (size_t)w;
        while (k > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            k--;
        }
        if (k > 0) {
            v->iov_base = (uint8_t *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

/* fdatasync up to what has been written; under mu on entry and exit. */
static void flush_locked(djournal *j) {
    uint64_t target = j->written;
    if (target <= j->synced) return;
    pthread_mutex_unlock(&j->mu);
    uint64_t t0 = now_ns();
    if (j->jf) {
        if (!jfile_datasync(j->jf)) jfile_set_synced(j->jf, JFILE_HEADER + target);
    } else
        (void)fdatasync(j->fd);
    uint64_t dt = now_ns() - t0;
    pthread_mutex_lock(&j->mu);
    sync_note(j, dt);
    if (target > j->synced) j->synced = target;
}

/* The journal thread, as the server's: prepares the space ahead when the
 * hook asks; DUR_NORMAL: once a second, fdatasync if anything was written. */
static void *journal_thread(void *arg) {
    djournal *j = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    next.tv_sec += 1;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        if (j->prepare_wanted) {
            j->prepare_wanted = false;
            j->prepares++;
            pthread_mutex_unlock(&j->mu);
            jfile_prepare(j->jf);
            pthread_mutex_lock(&j->mu);
            continue;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (j->dur == DUR_NORMAL &&
            (now.tv_sec > next.tv_sec ||
             (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec))) {
            next = now;
            next.tv_sec += 1;
            flush_locked(j);
            continue;
        }
        if (j->dur == DUR_NORMAL)
            pthread_cond_timedwait(&j->cv, &j->mu, &next);
        else
            pthread_cond_wait(&j->cv, &j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* diag: JDIAG_PWRITEV writes no mapping and has no journal thread for
 * preparing (only DUR_NORMAL's syncs). */
djournal *djournal_open(const char *path, int dur, int diag) {
    djournal *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->dur = dur;
    j->diag = diag;
    j->phase = -1;
    j->fd = -1;
    char dir[512];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1,
             slash ? path : ".");
    const char *name = slash ? slash + 1 : path;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        free(j);
        return NULL;
    }
    unlinkat(dfd, name, 0);
    if (diag == JDIAG_PWRITEV) {
        /* The write path before the mapping: a header, then one pwritev()
         * per frame that extends the file. */
        uint8_t hdr[JFILE_HEADER];
        jfile_head_build(hdr, 1);
        j->fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (j->fd < 0 || write_all(j->fd, hdr, sizeof hdr)) {
            if (j->fd >= 0) close(j->fd);
            close(dfd);
            free(j);
            return NULL;
        }
        j->off = JFILE_HEADER;
    } else {
        j->jf = jfile_create(dfd, name, 1);
        if (!j->jf) {
            close(dfd);
            free(j);
            return NULL;
        }
        jfile_set_ahead(j->jf, diag == JDIAG_NOPREP ? JFILE_AHEAD_NONE
                               : dur == DUR_ALWAYS  ? JFILE_AHEAD_READ
                                                    : JFILE_AHEAD_WRITE);
    }
    close(dfd);
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (j->jf || dur == DUR_NORMAL) {
        j->thr_on = pthread_create(&j->thr, NULL, journal_thread, j) == 0;
        if (!j->thr_on) {
            if (j->jf) jfile_close(j->jf, false);
            if (j->fd >= 0) close(j->fd);
            free(j);
            return NULL;
        }
    }
    return j;
}

void djournal_phase(djournal *j, int op) { j->phase = op; }

void djournal_request_end(djournal *j) {
    if (j->dur != DUR_ALWAYS) return;
    pthread_mutex_lock(&j->mu);
    flush_locked(j);
    pthread_mutex_unlock(&j->mu);
}

/* The hook, as the server's (server/persist.c): the frame (u32 length,
 * record) copied into the journal's mapping (jfile_append), then the
 * written position raised under the flush mutex, and the journal thread
 * woken when the space prepared ahead runs low. A failed extension refuses
 * the change (the call then fails and changes nothing). */
int djournal_hook(void *ctx, uint64_t seq, const void *rec, size_t len) {
    (void)seq;
    djournal *j = ctx;
    size_t n = 4 + len;
    bool prepare = false;
    if (j->jf) {
        if (jfile_append(j->jf, rec, len)) return -1;
        prepare = jfile_wants_prepare(j->jf);
    } else { /* diagnostic: one pwritev() unless the kernel writes short */
        if (len > UINT32_MAX) return -1;
        uint8_t hdr[4];
        put_u32(hdr, (uint32_t)len);
        struct iovec v[2] = {{hdr, 4}, {(void *)(uintptr_t)rec, len}};
        if (pwritev_all(j->fd, v, 2, j->off)) return -1;
        j->off += n;
    }
    pthread_mutex_lock(&j->mu);
    j->written += n;
    if (prepare && !j->prepare_wanted) {
        j->prepare_wanted = true;
        pthread_cond_signal(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    j->bytes += n;
    j->records++;
    if (j->phase >= 0) {
        j->bytes_op[j->phase] += n;
        j->recs_op[j->phase]++;
    }
    return 0;
}

void djournal_close(djournal *j, struct dur_result *d) {
    if (j->thr_on) {
        pthread_mutex_lock(&j->mu);
        j->stop = true;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thr, NULL);
    }
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    if (j->jf) {
        (void)jfile_close(j->jf, true);
    } else {
        (void)fdatasync(j->fd);
        close(j->fd);
    }
    d->jrnl_bytes = j->bytes;
    d->jrnl_records = j->records;
    memcpy(d->jrnl_bytes_op, j->bytes_op, sizeof j->bytes_op);
    memcpy(d->jrnl_recs_op, j->recs_op, sizeof j->recs_op);
    d->syncs = j->syncs;
    d->sync_max_ns = j->sync_max;
    d->sync_total_ns = j->sync_total;
    d->prepares = j->prepares;
    free(j);
}

/* ---- snapshot files ------------------------------------------------------------ */

typedef struct fwriter {
    int fd, err;
    uint8_t *buf;
    size_t len;
    uint64_t bytes;
} fwriter;

static int fw_flush(fwriter *w) {
    if (w->len && !w->err && write_all(w->fd, w->buf, w->len)) w->err = 1;
    w->len = 0;
    return w->err ? -1 : 0;
}

static int fw_write(void *ctx, const void *p, size_t n) {
    fwriter *w = ctx;
    w->bytes += n;
    if (w->len + n > IO_BUF && fw_flush(w)) return -1;
    if (n >= IO_BUF) {
        if (write_all(w->fd, p, n)) w->err = 1;
        return w->err ? -1 : 0;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

/* Saves s to path (truncating it): open, save through a 1 MiB buffer,
 * close; with sync, an fdatasync before the close, timed apart. */
static int snap_save_timed(const cs_store *s, const char *path, bool sync,
                           uint64_t *bytes, uint64_t *save_ns,
                           uint64_t *save_cpu_ns, uint64_t *sync_ns) {
    uint64_t c0 = cpu_ns(), t0 = now_ns();
    fwriter w = {.fd = -1};
    w.buf = malloc(IO_BUF);
    w.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!w.buf || w.fd < 0) {
        free(w.buf);
        if (w.fd >= 0) close(w.fd);
        return -1;
    }
    cs_err e = cs_snapshot_save(s, fw_write, &w);
    int rc = e || fw_flush(&w) ? -1 : 0;
    uint64_t t1 = now_ns(), c1 = cpu_ns();
    if (sync && !rc && fdatasync(w.fd)) rc = -1;
    uint64_t t2 = now_ns();
    close(w.fd);
    free(w.buf);
    if (bytes) *bytes = w.bytes;
    if (save_ns) *save_ns = t1 - t0;
    if (save_cpu_ns) *save_cpu_ns = c1 - c0;
    if (sync_ns) *sync_ns = sync ? t2 - t1 : 0;
    return rc;
}

int snap_save_file(const cs_store *s, const char *path, bool sync,
                   uint64_t *bytes, uint64_t *sync_ns) {
    return snap_save_timed(s, path, sync, bytes, NULL, NULL, sync_ns);
}

typedef struct freader {
    int fd, err;
    uint8_t *buf;
    size_t pos, len;
} freader;

static ptrdiff_t fr_read(void *ctx, void *dst, size_t n) {
    freader *r = ctx;
    if (r->pos == r->len) {
        ssize_t k;
        do
            k = read(r->fd, r->buf, IO_BUF);
        while (k < 0 && errno == EINTR);
        if (k < 0) return -1;
        r->pos = 0;
        r->len = (size_t)k;
        if (!k) return 0;
    }
    size_t k = r->len - r->pos;
    if (k > n) k = n;
    memcpy(dst, r->buf + r->pos, k);
    r->pos += k;
    return (ptrdiff_t)k;
}

cs_err snap_load_file(const char *path, cs_store **out, char *err, size_t n) {
    freader r = {.fd = -1};
    r.buf = malloc(IO_BUF);
    r.fd = open(path, O_RDONLY | O_CLOEXEC);
    *out = NULL;
    if (!r.buf || r.fd < 0) {
        snprintf(err, n, "open %s: %s", path, strerror(errno));
        free(r.buf);
        if (r.fd >= 0) close(r.fd);
        return CS_E_IO;
    }
    cs_decode_error de = {0, NULL};
    cs_err e = cs_snapshot_load(NULL, fr_read, &r, out, &de);
    if (e)
        snprintf(err, n, "%s: %s at byte %llu", path,
                 de.reason ? de.reason : cs_err_name(e),
                 (unsigned long long)de.offset);
    close(r.fd);
    free(r.buf);
    return e;
}

/* ---- journal replay ------------------------------------------------------------ */

cs_err journal_replay_file(cs_store *s, const char *path, uint64_t *records,
                           uint64_t kind_ns[3], uint64_t kind_n[3], char *err,
                           size_t n) {
    *records = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, n, "open %s: %s", path, strerror(errno));
        return CS_E_IO;
    }
    size_t cap = 4 * (size_t)IO_BUF, have = 0, pos = 0;
    uint8_t *buf = malloc(cap);
    cs_err e = CS_OK;
    bool eof = false;
    /* The header (jfile.h), then frames; zeros after the last frame are
     * preallocated space. */
    jfile_head h;
    const char *why = "";
    if (buf && (pread(fd, buf, JFILE_HEADER, 0) != (ssize_t)JFILE_HEADER ||
                jfile_head_parse(buf, JFILE_HEADER, &h, &why) ||
                lseek(fd, JFILE_HEADER, SEEK_SET) != (off_t)JFILE_HEADER)) {
        snprintf(err, n, "%s: header: %s", path, why);
        free(buf);
        close(fd);
        return CS_E_BAD_RECORD;
    }
    uint64_t off = JFILE_HEADER; /* file offset of buf[pos] */
    while (buf && !e) {
        size_t avail = have - pos;
        if (avail >= 4 && !get_u32(buf + pos)) break; /* the end */
        size_t need = avail >= 4 ? 4 + (size_t)get_u32(buf + pos) : 4;
        if (avail < need) {
            if (eof) {
                if (avail) {
                    snprintf(err, n, "journal truncated at byte %llu",
                             (unsigned long long)off);
                    e = CS_E_BAD_RECORD;
                }
                break;
            }
            memmove(buf, buf + pos, avail);
            have = avail;
            pos = 0;
            if (need > cap) {
                uint8_t *b = realloc(buf, need);
                if (!b) break;
                buf = b;
                cap = need;
            }
            ssize_t k = read(fd, buf + have, cap - have);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) {
                snprintf(err, n, "read %s: %s", path, strerror(errno));
                e = CS_E_IO;
                break;
            }
            if (k == 0) eof = true;
            have += (size_t)k;
            continue;
        }
        bool applied = false;
        cs_decode_error de = {0, NULL};
        if (kind_ns) {
            uint8_t op = need > 5 ? buf[pos + 5] : 0;
            uint64_t t0 = now_ns();
            e = cs_journal_apply(s, buf + pos + 4, need - 4, &applied, &de);
            uint64_t t1 = now_ns();
            if (op >= 8 && op <= 10) {
                kind_ns[op - 8] += t1 - t0;
                kind_n[op - 8]++;
            }
        } else {
            e = cs_journal_apply(s, buf + pos + 4, need - 4, &applied, &de);
        }
        if (e)
            snprintf(err, n, "record %llu (byte %llu): %s (%s at %llu)",
                     (unsigned long long)*records, (unsigned long long)off,
                     cs_err_name(e), de.reason ? de.reason : "-",
                     (unsigned long long)de.offset);
        pos += need;
        off += need;
        ++*records;
    }
    if (!buf) {
        snprintf(err, n, "out of memory");
        e = CS_E_NOMEM;
    }
    free(buf);
    close(fd);
    return e;
}

/* ---- digests ------------------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v) {
    h = (h ^ v) * UINT64_C(0x9e3779b97f4a7c15);
    return h ^ (h >> 29);
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    h = mix(h, n);
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = mix(h, w);
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) t |= (uint64_t)b[i] << (8 * i);
    return mix(h, t);
}

static uint64_t hash_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    uint8_t *buf = malloc(IO_BUF);
    uint64_t h = 1;
    ssize_t k;
    while (buf && (k = read(fd, buf, IO_BUF)) > 0) h = hash_bytes(h, buf, (size_t)k);
    free(buf);
    close(fd);
    return h;
}

static uint64_t render_fold(cs_store *s, cs_page *pg, cs_buf *b, uint64_t h) {
    cs_buf_reset(b);
    cs_err e = cs_render_page(s, pg, b);
    if (e) return mix(h, 0xbad0000u + (unsigned)e);
    return hash_bytes(h, b->data, b->len);
}

uint64_t store_digest(cs_store *s) {
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    uint64_t h = mix(mix(mix(mix(1, st.services), st.channels), st.messages),
                     st.commits);
    h = mix(mix(h, st.media), st.identities);
    cs_buf b;
    cs_buf_init(&b, NULL);
    char stok[CS_TOKEN_BUFSZ] = "";
    for (;;) {
        cs_page_params q;
        memset(&q, 0, sizeof q);
        q.page_size_value = 1000;
        if (stok[0]) q.page_token = cs_str_c(stok);
        cs_page sp;
        if (cs_service_list(s, &q, &sp)) return mix(h, 0xbad);
        h = render_fold(s, &sp, &b, h);
        cs_page_rewind(&sp);
        cs_service_view sv;
        while (cs_page_next_service(s, &sp, &sv)) {
            char svc[CS_SID_BUFSZ];
            memcpy(svc, sv.sid, sizeof svc);
            char ctok[CS_TOKEN_BUFSZ] = "";
            for (;;) {
                cs_page_params cq;
                memset(&cq, 0, sizeof cq);
                cq.page_size_value = 1000;
                cq.types_mask = CS_CHANNEL_PUBLIC | CS_CHANNEL_PRIVATE;
                if (ctok[0]) cq.page_token = cs_str_c(ctok);
                cs_page cp;
                if (cs_channel_list(s, cs_str_c(svc), &cq, &cp))
                    return mix(h, 0xbad1);
                h = render_fold(s, &cp, &b, h);
                cs_page_rewind(&cp);
                cs_channel_view cv;
                while (cs_page_next_channel(s, &cp, &cv)) {
                    char chan[CS_SID_BUFSZ];
                    memcpy(chan, cv.sid, sizeof chan);
                    char mtok[CS_TOKEN_BUFSZ] = "";
                    for (;;) {
                        cs_page_params mq;
                        memset(&mq, 0, sizeof mq);
                        mq.page_size_value = 1000;
                        if (mtok[0]) mq.page_token = cs_str_c(mtok);
                        cs_page mp;
                        if (cs_message_list(s, cs_str_c(svc), cs_str_c(chan),
                                            &mq, &mp))
                            return mix(h, 0xbad2);
                        h = render_fold(s, &mp, &b, h);
                        if (!mp.next_token[0]) break;
                        memcpy(mtok, mp.next_token, sizeof mtok);
                    }
                }
                if (!cp.next_token[0]) break;
                memcpy(ctok, cp.next_token, sizeof ctok);
            }
        }
        if (!sp.next_token[0]) break;
        memcpy(stok, sp.next_token, sizeof stok);
    }
    cs_buf_free(&b);
    return h;
}

/* ---- perf control for the recovery steps --------------------------------------- */

typedef struct perfctl {
    int fd, ack;
} perfctl;

static void perf_open_ctl(const bench_cfg *c, int step, perfctl *p) {
    p->fd = p->ack = -1;
    if (!c->perf_ctl || c->perf_rec != step) return;
    p->fd = open(c->perf_ctl, O_WRONLY);
    if (c->perf_ack) p->ack = open(c->perf_ack, O_RDONLY);
}

static void perf_send(perfctl *p, const char *cmd) {
    if (p->fd < 0) return;
    if (write(p->fd, cmd, strlen(cmd)) < 0) return;
    if (p->ack >= 0) {
        char buf[16];
        (void)!read(p->ack, buf, sizeof buf);
    }
}

static void perf_close_ctl(perfctl *p) {
    if (p->fd >= 0) close(p->fd);
    if (p->ack >= 0) close(p->ack);
}

/* ---- recovery: after the build ------------------------------------------------- */

static uint64_t sq_pragma(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    uint64_t v = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    if (sqlite3_step(st) == SQLITE_ROW) v = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int count_write(void *ctx, const void *p, size_t n) {
    (void)p;
    *(uint64_t *)ctx += n;
    return 0;
}

void recovery_build_finish(const bench_cfg *c, cs_store *s, sqlite3 *db,
                           run_result *r) {
    struct dur_result *d = &r->d;
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    d->live_messages = st.messages;
    d->digest = store_digest(s);
    char s0[512], snap[512];
    dur_path(c, "s0", s0, sizeof s0);
    dur_path(c, "snap", snap, sizeof snap);
    d->snap0_bytes = file_size(s0);
    if (db) {
        sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        d->sq_page_size = sq_pragma(db, "PRAGMA page_size");
        d->sq_pages = sq_pragma(db, "PRAGMA page_count");
        d->sq_freelist = sq_pragma(db, "PRAGMA freelist_count");
    }
    perfctl pc, pn;
    perf_open_ctl(c, REC_SAVE, &pc);
    perf_open_ctl(c, REC_SAVE_NOIO, &pn);
    int reps = c->save_reps < 1 ? 1 : c->save_reps > 8 ? 8 : c->save_reps;
    uint64_t first = 0;
    d->images_equal = 1;
    for (int i = 0; i < reps; i++) {
        unlink(snap); /* freeing the old file's blocks is not the save's cost */
        sync();
        perf_send(&pc, "enable\n");
        int rc = snap_save_timed(s, snap, true, &d->snap_bytes, &d->save_ns[i],
                                 &d->save_cpu_ns[i], &d->save_sync_ns[i]);
        perf_send(&pc, "disable\n");
        if (rc) {
            fprintf(stderr, "chatstore-bench: snapshot save to %s failed\n", snap);
            r->errors++;
            break;
        }
        uint64_t h = hash_file(snap);
        if (i == 0) first = h;
        else if (h != first) d->images_equal = 0;
        /* The library alone: the same save into a callback that counts. */
        uint64_t counted = 0;
        perf_send(&pn, "enable\n");
        uint64_t c0 = cpu_ns(), t0 = now_ns();
        cs_err e = cs_snapshot_save(s, count_write, &counted);
        d->save_noio_ns[i] = now_ns() - t0;
        d->save_noio_cpu_ns[i] = cpu_ns() - c0;
        perf_send(&pn, "disable\n");
        if (e || counted != d->snap_bytes) {
            r->errors++;
            break;
        }
        d->nsave = i + 1;
    }
    perf_close_ctl(&pc);
    perf_close_ctl(&pn);
    if (!d->images_equal) {
        r->mismatches++;
        fprintf(stderr, "MISMATCH: two saves of one store gave different images\n");
    }
}

/* ---- recovery: the steps, each in a fresh process ------------------------------- */

typedef struct rec_arg {
    const bench_cfg *c;
    uint64_t digest;      /* the built store's */
    uint64_t messages;    /* live messages in the image */
    uint64_t records;     /* in the journal */
    size_t warm_mb;       /* > 0: prefault this much heap first */
    int step;             /* REC_*, for perf */
} rec_arg;

static void load_child(const void *argp, void *resp) {
    const rec_arg *a = argp;
    rec_result *res = resp;
    char snap[512], again[540];
    dur_path(a->c, "snap", snap, sizeof snap);
    snprintf(again, sizeof again, "%s.again", snap);
    perfctl pc;
    perf_open_ctl(a->c, REC_LOAD, &pc);
    cs_store *s = NULL;
    size_t rss0 = rss_bytes();
    perf_send(&pc, "enable\n");
    uint64_t c0 = cpu_ns(), t0 = now_ns();
    cs_err e = snap_load_file(snap, &s, res->err, sizeof res->err);
    uint64_t t1 = now_ns();
    res->cpu_ns = cpu_ns() - c0;
    perf_send(&pc, "disable\n");
    perf_close_ctl(&pc);
    res->ns = t1 - t0;
    res->rss_bytes = rss_bytes() - rss0;
    if (e) return;
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    res->items = st.messages;
    res->digest_equal = store_digest(s) == a->digest;
    res->image_equal = snap_save_file(s, again, false, NULL, NULL) == 0 &&
                       hash_file(again) == hash_file(snap);
    unlink(again);
    if (!res->digest_equal)
        snprintf(res->err, sizeof res->err, "loaded store differs (digest)");
    else if (!res->image_equal)
        snprintf(res->err, sizeof res->err, "saving the loaded store gave "
                                            "another image");
    res->ok = res->digest_equal && res->image_equal && st.messages == a->messages;
    /* No cs_store_free: the process ends here. */
}

typedef struct memsrc {
    const uint8_t *p;
    size_t n, pos;
} memsrc;

static ptrdiff_t mem_read(void *ctx, void *dst, size_t n) {
    memsrc *m = ctx;
    size_t k = m->n - m->pos < n ? m->n - m->pos : n;
    memcpy(dst, m->p + m->pos, k);
    m->pos += k;
    return (ptrdiff_t)k;
}

/* Diagnostic: the load without I/O, from the image read into memory first
 * (untimed). The store's memory is still fresh. */
static void load_noio_child(const void *argp, void *resp) {
    const rec_arg *a = argp;
    rec_result *res = resp;
    char snap[512];
    dur_path(a->c, "snap", snap, sizeof snap);
    size_t n = (size_t)file_size(snap);
    uint8_t *img = malloc(n ? n : 1);
    int fd = open(snap, O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    while (img && fd >= 0 && got < n) {
        ssize_t k = read(fd, img + got, n - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    if (fd >= 0) close(fd);
    if (!img || got != n) {
        snprintf(res->err, sizeof res->err, "cannot read the snapshot");
        return;
    }
    memsrc m = {img, n, 0};
    bench_prefault(a->warm_mb);
    perfctl pc;
    perf_open_ctl(a->c, a->step, &pc);
    cs_store *s = NULL;
    cs_decode_error de = {0, NULL};
    size_t rss0 = rss_bytes();
    perf_send(&pc, "enable\n");
    uint64_t c0 = cpu_ns(), t0 = now_ns();
    cs_err e = cs_snapshot_load(NULL, mem_read, &m, &s, &de);
    uint64_t t1 = now_ns();
    res->cpu_ns = cpu_ns() - c0;
    perf_send(&pc, "disable\n");
    perf_close_ctl(&pc);
    res->ns = t1 - t0;
    res->rss_bytes = rss_bytes() - rss0;
    if (e) {
        snprintf(res->err, sizeof res->err, "%s at %llu",
                 de.reason ? de.reason : cs_err_name(e),
                 (unsigned long long)de.offset);
        return;
    }
    cs_store_stats st;
    cs_store_stats_get(s, &st);
    res->items = st.messages;
    res->digest_equal = res->image_equal = 1; /* checked by the file load */
    res->ok = st.messages == a->messages;
    if (!res->ok) snprintf(res->err, sizeof res->err, "message count differs");
}

static void replay_child(const void *argp, void *resp) {
    const rec_arg *a = argp;
    rec_result *res = resp;
    char s0[512], jp[512];
    dur_path(a->c, "s0", s0, sizeof s0);
    dur_path(a->c, "journal", jp, sizeof jp);
    cs_store *s = NULL;
    if (snap_load_file(s0, &s, res->err, sizeof res->err)) return;
    bench_prefault(a->warm_mb);
    perfctl pc;
    perf_open_ctl(a->c, a->step, &pc);
    size_t rss0 = rss_bytes();
    uint64_t recs = 0;
    perf_send(&pc, "enable\n");
    uint64_t c0 = cpu_ns(), t0 = now_ns();
    /* Timing each apply costs two clock reads a record (~5 % of a
     * replay): only the warm diagnostic does it. */
    cs_err e = journal_replay_file(s, jp, &recs, a->warm_mb ? res->kind_ns : NULL,
                                   a->warm_mb ? res->kind_n : NULL, res->err,
                                   sizeof res->err);
    uint64_t t1 = now_ns();
    res->cpu_ns = cpu_ns() - c0;
    perf_send(&pc, "disable\n");
    perf_close_ctl(&pc);
    res->ns = t1 - t0;
    res->items = recs;
    res->rss_bytes = rss_bytes() - rss0;
    if (e) return;
    if (a->warm_mb) { /* a diagnostic: the plain replay checks the result */
        res->digest_equal = res->image_equal = 1;
        res->ok = recs == a->records;
        return;
    }
    res->digest_equal = store_digest(s) == a->digest;
    if (!res->digest_equal)
        snprintf(res->err, sizeof res->err, "replayed store differs (digest)");
    res->image_equal = 1;
    res->ok = res->digest_equal && recs == a->records;
    if (res->digest_equal && recs != a->records)
        snprintf(res->err, sizeof res->err, "%llu records replayed, %llu written",
                 (unsigned long long)recs, (unsigned long long)a->records);
}

/* ---- the orchestration ---------------------------------------------------------- */

static void run_fn(const void *arg, void *res) { bench_run(arg, res); }

enum { V_MEM, V_JRNL, V_SQ, V_CS_ALWAYS, V_SQ_FULL, V_PWRITEV, V_NOPREP, V__COUNT };
static const char *const v_names[V__COUNT] = {
    "chatstore in-memory", "chatstore journal", "SQLite WAL NORMAL",
    "chatstore fdatasync/rec", "SQLite WAL FULL", "chatstore pwritev*",
    "chatstore unprepared*"};
static const int DUR_OPS[3] = {OP_CREATE, OP_UPDATE, OP_DELETE};

#define GOAL_VS_SQLITE 30.0
#define GOAL_VS_MEM 0.5
#define GOAL_LOAD 2e6
#define GOAL_REPLAY 1e6
#define GOAL_SAVE 2e6

typedef struct best {
    hist h[V__COUNT][3];      /* the fastest run's histogram */
    double min_rate[V__COUNT][3], max_rate[V__COUNT][3];
    int runs[V__COUNT];
} best;

static void best_add(best *b, int v, const run_result *r, int eng) {
    for (int k = 0; k < 3; k++) {
        const hist *h = &r->h[DUR_OPS[k]][eng];
        double rate = hist_ops_per_s(h);
        if (!b->runs[v] || rate > hist_ops_per_s(&b->h[v][k])) b->h[v][k] = *h;
        if (!b->runs[v] || rate < b->min_rate[v][k]) b->min_rate[v][k] = rate;
        if (!b->runs[v] || rate > b->max_rate[v][k]) b->max_rate[v][k] = rate;
    }
}

static int check_run(const char *what, int rc, const run_result *r) {
    int bad = 0;
    if (rc != 0 || !r->ok) {
        fprintf(stderr, "chatstore-bench: %s: the run failed\n", what);
        return 1;
    }
    if (r->mismatches || r->errors) {
        fprintf(stderr, "chatstore-bench: %s: %zu mismatches, %zu errors\n",
                what, r->mismatches, r->errors);
        bad++;
    }
    if (r->d.replay_checked && !r->d.replay_equal) bad++;
    return bad;
}

static const char *yes(bool b) { return b ? "yes" : "NO"; }

static void print_pair(const best *b, int vc, int vs, const char *hdr) {
    char r1[16], r2[16], p1[16], p2[16], p3[16], p4[16];
    out("%s\n", hdr);
    out("%-7s %12s %12s %8s %9s %9s %9s %9s  %s\n", "op", "chatstore", "SQLite",
        "ratio", "cs p50", "cs p99", "sq p50", "sq p99", "spread cs / sq");
    for (int k = 0; k < 3; k++) {
        const hist *hc = &b->h[vc][k], *hs = &b->h[vs][k];
        double rc = hist_ops_per_s(hc), rs = hist_ops_per_s(hs);
        out("%-7s %10s/s %10s/s %7.1fx %9s %9s %9s %9s  %.0f%% / %.0f%%\n",
            op_names[DUR_OPS[k]], fmt_rate(rc, r1, sizeof r1),
            fmt_rate(rs, r2, sizeof r2), rs > 0 ? rc / rs : 0,
            fmt_ns((double)hist_pct(hc, 0.5), p1, sizeof p1),
            fmt_ns((double)hist_pct(hc, 0.99), p2, sizeof p2),
            fmt_ns((double)hist_pct(hs, 0.5), p3, sizeof p3),
            fmt_ns((double)hist_pct(hs, 0.99), p4, sizeof p4),
            b->max_rate[vc][k] > 0
                ? 100 * (b->max_rate[vc][k] - b->min_rate[vc][k]) / b->max_rate[vc][k]
                : 0,
            b->max_rate[vs][k] > 0
                ? 100 * (b->max_rate[vs][k] - b->min_rate[vs][k]) / b->max_rate[vs][k]
                : 0);
    }
}

static int durable_part(const dur_opts *o, const char *dir) {
    int bad = 0;
    bench_cfg base = o->cfg;
    base.dir = dir;
    base.messages = o->creates;
    base.update_ops = o->updates;
    base.delete_ops = o->deletes;
    base.sqlite_batch = 1; /* one transaction per create */
    base.smoke = o->smoke;
    base.perf_rec = -1;
    bench_cfg cm = base, cn = base, ca = base, cw = base, cu = base;
    cm.dur = DUR_MEM;
    cm.cs_only = true;
    cw.dur = cu.dur = DUR_NORMAL;
    cw.cs_only = cu.cs_only = true;
    cw.jdiag = JDIAG_PWRITEV;
    cu.jdiag = JDIAG_NOPREP;
    cw.perf_ctl = cu.perf_ctl = NULL;
    cn.dur = DUR_NORMAL;
    ca.dur = DUR_ALWAYS;
    ca.messages = o->always_ops;
    ca.update_ops = o->always_ops;
    ca.delete_ops = o->always_ops;
    if (!o->perf_durable) cn.perf_ctl = NULL;
    cm.perf_ctl = ca.perf_ctl = NULL;
    best *b = calloc(1, sizeof *b);
    run_result *r = malloc(sizeof *r);
    struct dur_result dn, da;
    memset(&dn, 0, sizeof dn);
    memset(&da, 0, sizeof da);
    uint64_t syncs = 0, sync_max = 0, sync_total = 0, a_sync_total = 0, a_syncs = 0;
    uint64_t prepares = 0;
    char la0[64], la1[64];
    load_avg(la0, sizeof la0);
    for (int rep = 0; rep < o->runs && b && r; rep++) {
        int nv = o->smoke ? 3 : 5; /* the smoke: no diagnostic variants */
        for (int k = 0; k < nv; k++) {
            int which = (rep + k) % nv; /* rotating order */
            char tag[64];
            int rc;
            if (which == 0 && o->smoke) continue; /* nothing to check */
            if (which == 0) {
                fprintf(stderr, "  durable: run %d/%d: chatstore in-memory ...",
                        rep + 1, o->runs);
                uint64_t t = now_ns();
                rc = bench_fork(run_fn, &cm, r, sizeof *r);
                fprintf(stderr, " %.1fs\n", (double)(now_ns() - t) / 1e9);
                bad += check_run("in-memory", rc, r);
                if (!rc && r->ok) {
                    best_add(b, V_MEM, r, ENG_CS);
                    b->runs[V_MEM]++;
                }
            } else if (which == 1) {
                snprintf(tag, sizeof tag, "normal-%d", rep);
                cn.tag = tag;
                fprintf(stderr, "  durable: run %d/%d: journal + 1 s fdatasync | "
                                "SQLite NORMAL ...",
                        rep + 1, o->runs);
                uint64_t t = now_ns();
                rc = bench_fork(run_fn, &cn, r, sizeof *r);
                fprintf(stderr, " %.1fs\n", (double)(now_ns() - t) / 1e9);
                bad += check_run("journal/NORMAL", rc, r);
                if (!rc && r->ok) {
                    best_add(b, V_JRNL, r, ENG_CS);
                    best_add(b, V_SQ, r, ENG_SQ);
                    b->runs[V_JRNL]++;
                    b->runs[V_SQ]++;
                    dn = r->d;
                    prepares += r->d.prepares;
                    syncs += r->d.syncs;
                    sync_total += r->d.sync_total_ns;
                    if (r->d.sync_max_ns > sync_max) sync_max = r->d.sync_max_ns;
                }
            } else if (which >= 3) {
                bool pw = which == 3;
                snprintf(tag, sizeof tag, "%s-%d", pw ? "pwritev" : "unprepared", rep);
                bench_cfg *cd = pw ? &cw : &cu;
                cd->tag = tag;
                fprintf(stderr, "  durable: run %d/%d: journal, %s (diagnostic) ...",
                        rep + 1, o->runs,
                        pw ? "pwritev per record" : "no pages prepared ahead");
                uint64_t t = now_ns();
                rc = bench_fork(run_fn, cd, r, sizeof *r);
                fprintf(stderr, " %.1fs\n", (double)(now_ns() - t) / 1e9);
                bad += check_run(pw ? "pwritev" : "unprepared", rc, r);
                if (!rc && r->ok) {
                    int v = pw ? V_PWRITEV : V_NOPREP;
                    best_add(b, v, r, ENG_CS);
                    b->runs[v]++;
                }
            } else {
                if (!o->always_ops) continue;
                snprintf(tag, sizeof tag, "always-%d", rep);
                ca.tag = tag;
                fprintf(stderr, "  durable: run %d/%d: fdatasync per record | "
                                "SQLite FULL ...",
                        rep + 1, o->runs);
                uint64_t t = now_ns();
                rc = bench_fork(run_fn, &ca, r, sizeof *r);
                fprintf(stderr, " %.1fs\n", (double)(now_ns() - t) / 1e9);
                bad += check_run("fdatasync/FULL", rc, r);
                if (!rc && r->ok) {
                    best_add(b, V_CS_ALWAYS, r, ENG_CS);
                    best_add(b, V_SQ_FULL, r, ENG_SQ);
                    b->runs[V_CS_ALWAYS]++;
                    b->runs[V_SQ_FULL]++;
                    da = r->d;
                    a_syncs += r->d.syncs;
                    a_sync_total += r->d.sync_total_ns;
                }
            }
        }
    }
    load_avg(la1, sizeof la1);
    if (!b || !r) {
        free(b);
        free(r);
        return bad + 1;
    }
    if (o->smoke) {
        out("durable smoke: %zu creates, %zu updates, %zu deletes (fdatasync "
            "pair: %zu each): answers %s, journal replay %s\n",
            o->creates, o->updates, o->deletes, o->always_ops,
            bad ? "DIFFER" : "equal", dn.replay_equal && (!o->always_ops || da.replay_equal)
                                          ? "equal"
                                          : "DIFFERS");
        if (!dn.replay_equal || (o->always_ops && !da.replay_equal)) bad++;
        free(b);
        free(r);
        return bad;
    }
    char r1[16], r2[16], r3[16];
    out("== durable: every operation its own commit\n");
    out("%zu creates, %zu updates, %zu deletes over %zu channels (bodies as "
        "the main workload); best of %d runs per variant, variants in "
        "rotating order, each run a fresh process\n",
        o->creates, o->updates, o->deletes, o->cfg.channels, o->runs);
    out("load average (1 5 15 min) before: %s, after: %s; %ld CPUs; SQLite %s\n",
        la0, la1, sysconf(_SC_NPROCESSORS_ONLN), sqlite3_libversion());
    out("chatstore: each call under cs_store_lock_exclusive; the journal "
        "written as chatstore-server writes it (server/jfile.c): the hook "
        "copies u32 length + record into a shared mapping of the "
        "preallocated file (no system call), a thread prepares the pages "
        "ahead (%llu times) and fdatasyncs once a second when something was "
        "written (%llu syncs, mean %s, max %s)\n",
        (unsigned long long)prepares, (unsigned long long)syncs,
        fmt_ns(syncs ? (double)sync_total / (double)syncs : 0, r1, sizeof r1),
        fmt_ns((double)sync_max, r2, sizeof r2));
    out("SQLite: file, journal_mode=WAL, synchronous=NORMAL, "
        "locking_mode=EXCLUSIVE, cache holds the whole database, autocommit "
        "(create = BEGIN, UPDATE channels .. RETURNING, INSERT, COMMIT)\n\n");
    out("%-7s %14s %14s %14s %9s %5s %4s %9s %5s %4s  %s\n", "op",
        "cs in-memory", "cs journal", "SQLite WAL", "jrnl/sq", "goal", "met",
        "jrnl/mem", "goal", "met", "spread mem / jrnl / sq");
    for (int k = 0; k < 3; k++) {
        double rm = hist_ops_per_s(&b->h[V_MEM][k]);
        double rj = hist_ops_per_s(&b->h[V_JRNL][k]);
        double rs = hist_ops_per_s(&b->h[V_SQ][k]);
        double vs = rs > 0 ? rj / rs : 0, vm = rm > 0 ? rj / rm : 0;
        double sp[3];
        const int vv[3] = {V_MEM, V_JRNL, V_SQ};
        for (int i = 0; i < 3; i++)
            sp[i] = b->max_rate[vv[i]][k] > 0
                        ? 100 * (b->max_rate[vv[i]][k] - b->min_rate[vv[i]][k]) /
                              b->max_rate[vv[i]][k]
                        : 0;
        out("%-7s %12s/s %12s/s %12s/s %8.1fx %4.0fx %4s %8.2fx %4.1fx %4s  "
            "%.0f%% / %.0f%% / %.0f%%\n",
            op_names[DUR_OPS[k]], fmt_rate(rm, r1, sizeof r1),
            fmt_rate(rj, r2, sizeof r2), fmt_rate(rs, r3, sizeof r3), vs,
            GOAL_VS_SQLITE, yes(vs >= GOAL_VS_SQLITE), vm, GOAL_VS_MEM,
            yes(vm >= GOAL_VS_MEM), sp[0], sp[1], sp[2]);
    }
    out("p50 ratios (steadier on a shared machine, but blind to SQLite's "
        "checkpoint stalls, which sit in its tail):");
    for (int k = 0; k < 3; k++) {
        double pm = (double)hist_pct(&b->h[V_MEM][k], 0.5);
        double pj = (double)hist_pct(&b->h[V_JRNL][k], 0.5);
        double ps = (double)hist_pct(&b->h[V_SQ][k], 0.5);
        out(" %s %.1fx / %.2fx%s", op_names[DUR_OPS[k]], pj > 0 ? ps / pj : 0,
            pj > 0 ? pm / pj : 0, k < 2 ? ";" : "");
    }
    out(" (jrnl/sq / jrnl/mem)\n");
    out("\nlatency per op (best run): p50 / p99 / p99.9 / max\n");
    for (int k = 0; k < 3; k++) {
        const int vv[3] = {V_MEM, V_JRNL, V_SQ};
        for (int i = 0; i < 3; i++) {
            const hist *h = &b->h[vv[i]][k];
            char a[16], c2[16], d[16], e[16];
            out("  %-7s %-22s %9s %9s %9s %9s  (%llu over 1 ms)\n",
                op_names[DUR_OPS[k]], v_names[vv[i]],
                fmt_ns((double)hist_pct(h, 0.5), a, sizeof a),
                fmt_ns((double)hist_pct(h, 0.99), c2, sizeof c2),
                fmt_ns((double)hist_pct(h, 0.999), d, sizeof d),
                fmt_ns((double)h->max_ns, e, sizeof e),
                (unsigned long long)h->over_1ms);
        }
    }
    for (int v = V_PWRITEV; v <= V_NOPREP; v++) {
        if (!b->runs[v]) continue;
        out("\n* diagnostic, not the server's design: %s\n",
            v == V_PWRITEV
                ? "the journal written with one pwritev() per record at the "
                  "file's end (what the server did before the mapping)"
                : "the mapping without the thread preparing the pages ahead "
                  "(the hook takes a page fault about every 4 KiB)");
        for (int k = 0; k < 3; k++) {
            double rb = hist_ops_per_s(&b->h[v][k]);
            double rm = hist_ops_per_s(&b->h[V_MEM][k]);
            double rs = hist_ops_per_s(&b->h[V_SQ][k]);
            out("  %-7s %12s/s  = %.2fx in-memory, %.1fx SQLite; p50 %s, "
                "p99 %s\n",
                op_names[DUR_OPS[k]], fmt_rate(rb, r1, sizeof r1),
                rm > 0 ? rb / rm : 0, rs > 0 ? rb / rs : 0,
                fmt_ns((double)hist_pct(&b->h[v][k], 0.5), r2, sizeof r2),
                fmt_ns((double)hist_pct(&b->h[v][k], 0.99), r3, sizeof r3));
        }
    }
    out("\njournal: %.1f bytes per record on disk (u32 length included): "
        "create %.1f, update %.1f, delete %.1f\n",
        dn.jrnl_records ? (double)dn.jrnl_bytes / (double)dn.jrnl_records : 0,
        dn.jrnl_recs_op[OP_CREATE]
            ? (double)dn.jrnl_bytes_op[OP_CREATE] / (double)dn.jrnl_recs_op[OP_CREATE]
            : 0,
        dn.jrnl_recs_op[OP_UPDATE]
            ? (double)dn.jrnl_bytes_op[OP_UPDATE] / (double)dn.jrnl_recs_op[OP_UPDATE]
            : 0,
        dn.jrnl_recs_op[OP_DELETE]
            ? (double)dn.jrnl_bytes_op[OP_DELETE] / (double)dn.jrnl_recs_op[OP_DELETE]
            : 0);
    out("checks: answers equal to SQLite's in every run; journal replayed "
        "onto the empty-state snapshot renders as the original: %s\n\n",
        yes(dn.replay_equal && (!o->always_ops || da.replay_equal)));
    if (o->always_ops) {
        char hdr[512];
        snprintf(hdr, sizeof hdr,
                 "-- fdatasync on every commit: chatstore fdatasync at the end of "
                 "each call, after the lock (mean %s) | SQLite WAL "
                 "synchronous=FULL; %zu creates, updates, deletes each",
                 fmt_ns(a_syncs ? (double)a_sync_total / (double)a_syncs : 0, r1,
                        sizeof r1),
                 o->always_ops);
        print_pair(b, V_CS_ALWAYS, V_SQ_FULL, hdr);
        out("\n");
    }
    free(b);
    free(r);
    return bad;
}

/* The timed saves of a build, as step results (best and spread). */
static void saves_of(const struct dur_result *d, int step, const uint64_t *ns,
                     const uint64_t *cpu, rec_result *top, double *mn,
                     double *mx, double *cbest) {
    for (int i = 0; i < d->nsave; i++) {
        double rate = (double)d->live_messages * 1e9 / (double)ns[i];
        double cr = cpu[i] ? (double)d->live_messages * 1e9 / (double)cpu[i] : 0;
        if (cr > cbest[step]) cbest[step] = cr;
        if (rate > mx[step]) {
            mx[step] = rate;
            top[step].ns = ns[i];
        }
        if (rate < mn[step]) mn[step] = rate;
    }
    top[step].items = d->live_messages;
    top[step].ok = d->images_equal && d->nsave > 0;
}

static double per(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0; }

static int recovery_part(const dur_opts *o, const char *dir) {
    int bad = 0;
    run_result *r = malloc(sizeof *r);
    if (!r) return 1;
    if (!o->smoke) {
        out("== recovery: snapshot save, snapshot load, journal replay "
            "(chatstore), each step best of %d\n",
            o->runs);
        out("workload per size N: N creates, N/10 updates, N/10 deletes over "
            "%zu channels, after an empty-state snapshot (service and "
            "channels); the journal holds those 1.2 N records\n",
            o->cfg.channels);
        out("save: unlink + sync (untimed), then open + cs_snapshot_save "
            "through a 1 MiB buffer + write() into the page cache, fdatasync "
            "timed apart; load: read() through a 1 MiB buffer + "
            "cs_snapshot_load in a fresh process (file in the page cache); "
            "replay: the empty-state snapshot loaded (untimed), then read() "
            "+ cs_journal_apply of every record, in a fresh process\n");
        out("diagnostics: save-noio = the same save into a callback that "
            "only counts bytes; load-noio = the load from the image already "
            "read into memory (fresh process, fresh memory for the store); "
            "load-warm, replay-warm = load-noio and replay with the heap "
            "faulted in first (3x the snapshot, untimed; RSS/msg is then "
            "meaningless): the library's CPU without first-touch faults\n");
        out("rate (wall) = items / elapsed time of the best run; (CPU) = "
            "items / the process's CPU time, best run (user + system, so "
            "page faults and read()/write() count, time other jobs held the "
            "CPU does not); met = wall/CPU against the goal\n\n");
        out("%-6s %-11s %14s %8s %7s %6s %9s %9s %7s  %s\n", "N", "step",
            "rate (wall)", "(CPU)", "goal", "met", "time", "RSS/msg", "spread",
            "check");
    }
    static const int ORDER[] = {REC_SAVE,      REC_SAVE_NOIO, REC_LOAD,
                                REC_LOAD_NOIO, REC_LOAD_WARM, REC_REPLAY,
                                REC_REPLAY_WARM};
    static const int CHILD_STEPS[] = {REC_LOAD, REC_REPLAY, REC_LOAD_NOIO,
                                      REC_LOAD_WARM, REC_REPLAY_WARM};
    for (size_t n = o->rec_min; n <= o->rec_max && n; n *= 10) {
        char tag[64], la0[64], la1[64];
        snprintf(tag, sizeof tag, "recovery-%zu", n);
        bench_cfg c = o->cfg;
        c.dir = dir;
        c.tag = tag;
        c.dur = DUR_BUILD;
        c.messages = n;
        c.update_ops = n / 10 ? n / 10 : 1;
        c.delete_ops = n / 10 ? n / 10 : 1;
        c.smoke = o->smoke;
        c.save_reps = o->runs;
        c.perf_op = c.perf_engine = -1; /* only the recovery steps */
        c.perf_rec = o->perf_rec;
        load_avg(la0, sizeof la0);
        fprintf(stderr, "  recovery %zu: build ...", n);
        uint64_t t = now_ns();
        int rc = bench_fork(run_fn, &c, r, sizeof *r);
        fprintf(stderr, " %.1fs\n", (double)(now_ns() - t) / 1e9);
        int b0 = check_run("recovery build", rc, r);
        bad += b0;
        if (b0) continue;
        struct dur_result d = r->d;
        rec_arg a = {&c, d.digest, d.live_messages, d.jrnl_records, 0, REC_LOAD};
        rec_result top[REC__COUNT], cur;
        double mn[REC__COUNT], mx[REC__COUNT], cbest[REC__COUNT];
        memset(top, 0, sizeof top);
        for (int k = 0; k < REC__COUNT; k++) mn[k] = 1e300, mx[k] = cbest[k] = 0;
        saves_of(&d, REC_SAVE, d.save_ns, d.save_cpu_ns, top, mn, mx, cbest);
        saves_of(&d, REC_SAVE_NOIO, d.save_noio_ns, d.save_noio_cpu_ns, top, mn,
                 mx, cbest);
        int fails[REC__COUNT] = {0};
        char errmsg[REC__COUNT][160];
        memset(errmsg, 0, sizeof errmsg);
        int nchild = o->smoke ? 2 : 5; /* the smoke checks, no diagnostics */
        /* Warm steps: the heap faulted in first, 3x the snapshot (the
         * store takes about 1.3x it). */
        size_t warm = (size_t)(d.snap_bytes * 3 >> 20) + 64;
        for (int rep = 0; rep < o->runs; rep++)
            for (int k = 0; k < nchild; k++) {
                int step = CHILD_STEPS[(k + rep) % nchild]; /* rotating */
                fprintf(stderr, "  recovery %zu: %s %d/%d ...", n,
                        rec_names[step], rep + 1, o->runs);
                t = now_ns();
                memset(&cur, 0, sizeof cur);
                a.step = step;
                a.warm_mb = step == REC_LOAD_WARM || step == REC_REPLAY_WARM ? warm : 0;
                rc = bench_fork(step == REC_LOAD || step == REC_LOAD_NOIO ||
                                        step == REC_LOAD_WARM
                                    ? (step == REC_LOAD ? load_child : load_noio_child)
                                    : replay_child,
                                &a, &cur, sizeof cur);
                fprintf(stderr, " %.1fs\n", (double)(now_ns() - t) / 1e9);
                if (rc || !cur.ok) {
                    fails[step]++;
                    snprintf(errmsg[step], sizeof errmsg[step], "%s",
                             rc ? "the process failed" : cur.err);
                    fprintf(stderr, "chatstore-bench: recovery %s: %s\n",
                            rec_names[step], errmsg[step]);
                    continue;
                }
                double rate = (double)cur.items * 1e9 / (double)cur.ns;
                double cr = cur.cpu_ns ? (double)cur.items * 1e9 / (double)cur.cpu_ns : 0;
                if (rate > mx[step]) {
                    mx[step] = rate;
                    top[step] = cur;
                }
                if (rate < mn[step]) mn[step] = rate;
                if (cr > cbest[step]) cbest[step] = cr;
            }
        load_avg(la1, sizeof la1);
        bad += fails[REC_LOAD] + fails[REC_REPLAY] + fails[REC_LOAD_NOIO] +
               !top[REC_SAVE].ok;
        if (o->smoke) {
            out("recovery smoke: %zu messages: snapshot saves identical %s, "
                "load %s, replay %s\n",
                n, yes(top[REC_SAVE].ok), fails[REC_LOAD] ? errmsg[REC_LOAD] : "equal",
                fails[REC_REPLAY] ? errmsg[REC_REPLAY] : "equal");
        } else {
            const double goal[REC__COUNT] = {
                [REC_SAVE] = GOAL_SAVE, [REC_LOAD] = GOAL_LOAD,
                [REC_REPLAY] = GOAL_REPLAY, [REC_SAVE_NOIO] = GOAL_SAVE,
                [REC_LOAD_NOIO] = GOAL_LOAD, [REC_LOAD_WARM] = GOAL_LOAD,
                [REC_REPLAY_WARM] = GOAL_REPLAY};
            char saved[48];
            snprintf(saved, sizeof saved, "%d saves, identical images", d.nsave);
            for (size_t i = 0; i < sizeof ORDER / sizeof *ORDER; i++) {
                int k = ORDER[i];
                char r1[16], g[16], tm[16], rs[16] = "-";
                bool save = k == REC_SAVE || k == REC_SAVE_NOIO;
                if (!save && top[k].items && k != REC_LOAD_WARM &&
                    k != REC_REPLAY_WARM)
                    snprintf(rs, sizeof rs, "%.0f B",
                             (double)top[k].rss_bytes / (double)d.live_messages);
                bool ok = save ? top[k].ok : !fails[k];
                const char *check = !ok ? (save ? "images differ" : errmsg[k])
                                    : k == REC_SAVE   ? saved
                                    : k == REC_LOAD   ? "renders equal, re-save identical"
                                    : k == REC_REPLAY ? "renders equal"
                                                      : "(diagnostic)";
                char c1[16], met[16];
                snprintf(met, sizeof met, "%s/%s", yes(mx[k] >= goal[k]),
                         yes(cbest[k] >= goal[k]));
                out("%-6.0e %-11s %8s %5s %8s %7s %6s %9s %9s %6.0f%%  %s\n",
                    (double)n, rec_names[k], fmt_rate(mx[k], r1, sizeof r1),
                    k == REC_REPLAY || k == REC_REPLAY_WARM ? "rec/s" : "msg/s",
                    fmt_rate(cbest[k], c1, sizeof c1),
                    fmt_rate(goal[k], g, sizeof g), met,
                    fmt_ns((double)top[k].ns, tm, sizeof tm), rs,
                    mx[k] > 0 && mn[k] < 1e300 ? 100 * (mx[k] - mn[k]) / mx[k] : 0,
                    check);
            }
            {
                const rec_result *rr = &top[REC_REPLAY_WARM];
                char k1[16], k2[16], k3[16];
                out("       replay-warm by kind (each apply timed on its own, "
                    "which costs ~5%%): create %s, update %s, delete %s rec/s\n",
                    fmt_rate(rr->kind_ns[0] ? (double)rr->kind_n[0] * 1e9 / (double)rr->kind_ns[0] : 0, k1, sizeof k1),
                    fmt_rate(rr->kind_ns[1] ? (double)rr->kind_n[1] * 1e9 / (double)rr->kind_ns[1] : 0, k2, sizeof k2),
                    fmt_rate(rr->kind_ns[2] ? (double)rr->kind_n[2] * 1e9 / (double)rr->kind_ns[2] : 0, k3, sizeof k3));
            }
            uint64_t best_sync = UINT64_MAX;
            for (int i = 0; i < d.nsave; i++)
                if (d.save_sync_ns[i] < best_sync) best_sync = d.save_sync_ns[i];
            char tm[16];
            double sqb = (double)d.sq_pages * (double)d.sq_page_size;
            out("       live messages %llu; fdatasync after the save: %s; load "
                "average before %s, after %s\n",
                (unsigned long long)d.live_messages,
                fmt_ns(best_sync == UINT64_MAX ? 0 : (double)best_sync, tm, sizeof tm),
                la0, la1);
            out("       on disk: snapshot %.1f B/msg (%.1f MB; empty-state "
                "snapshot %llu B); journal %.1f B/record, %.1f B per created "
                "message (%.1f MB, %llu records: create %.1f, update %.1f, "
                "delete %.1f B)\n",
                per(d.snap_bytes, d.live_messages), (double)d.snap_bytes / 1e6,
                (unsigned long long)d.snap0_bytes, per(d.jrnl_bytes, d.jrnl_records),
                per(d.jrnl_bytes, n), (double)d.jrnl_bytes / 1e6,
                (unsigned long long)d.jrnl_records,
                per(d.jrnl_bytes_op[OP_CREATE], d.jrnl_recs_op[OP_CREATE]),
                per(d.jrnl_bytes_op[OP_UPDATE], d.jrnl_recs_op[OP_UPDATE]),
                per(d.jrnl_bytes_op[OP_DELETE], d.jrnl_recs_op[OP_DELETE]));
            out("       SQLite, same data, after wal_checkpoint(TRUNCATE): "
                "%.1f B/msg (%.1f MB = %llu pages of %llu B, %llu of them on "
                "the freelist); snapshot / SQLite file = %.2f\n\n",
                d.live_messages ? sqb / (double)d.live_messages : 0, sqb / 1e6,
                (unsigned long long)d.sq_pages, (unsigned long long)d.sq_page_size,
                (unsigned long long)d.sq_freelist,
                sqb > 0 ? (double)d.snap_bytes / sqb : 0);
        }
        char p[540];
        const char *kinds[3] = {"s0", "snap", "journal"};
        for (int k = 0; k < 3; k++) {
            dur_path(&c, kinds[k], p, sizeof p);
            unlink(p);
        }
    }
    free(r);
    return bad;
}

int durable_main(const dur_opts *o) {
    char tmpl[] = "/tmp/chatstore-bench-XXXXXX";
    const char *dir = o->dir;
    if (!dir) {
        dir = mkdtemp(tmpl);
        if (!dir) {
            perror("mkdtemp");
            return 1;
        }
    }
    int bad = 0;
    if (o->durable) bad += durable_part(o, dir);
    if (o->recovery) bad += recovery_part(o, dir);
    if (!o->dir) rmdir(dir);
    return bad;
}
