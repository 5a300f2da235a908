/* chatstore-bench: chatstore against an in-memory SQLite doing the same work.
 * Shared declarations of the harness (bench/ only; nothing here is part of
 * the library). */
#ifndef CHATSTORE_BENCH_H
#define CHATSTORE_BENCH_H

#include <chatstore.h>
#include <sqlite3.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- operations and engines --------------------------------------------- */

enum {
    OP_CREATE,        /* load: creates into a fresh store */
    OP_CREATE_STEADY, /* creates into memory that deletes freed */
    OP_FETCH,
    OP_PAGE_ASC,
    OP_PAGE_DESC,
    OP_UPDATE,
    OP_DELETE,
    OP__COUNT
};
enum { ENG_CS, ENG_SQ, ENG__COUNT };

extern const char *const op_names[OP__COUNT];
extern const char *const eng_names[ENG__COUNT];

/* ---- configuration ------------------------------------------------------ */

typedef struct bench_cfg {
    size_t messages;     /* loaded by OP_CREATE */
    size_t channels;     /* in one service */
    size_t fetch_ops;
    size_t page_ops;     /* per direction */
    size_t update_ops;
    size_t delete_ops;   /* 0: delete_frac of messages */
    double delete_frac;  /* 0.10; create_steady creates as many */
    size_t page_size;    /* 50 */
    size_t body_min, body_max; /* body length target, bytes */
    double multibyte_frac;     /* share of words that are non-ASCII */
    double attr_frac;          /* share of messages with JSON attributes */
    size_t authors;            /* distinct From identities */
    size_t sqlite_batch;       /* creates per SQLite transaction */
    uint64_t seed;
    bool smoke;                /* compare every answer, no timing output */
    bool cs_only;              /* skip SQLite (profiling chatstore) */
    size_t prefault_mb;        /* fault in this much heap first (glibc) */
    /* perf control: enable the profiler around one (op, engine) loop */
    const char *perf_ctl, *perf_ack;
    int perf_op, perf_engine;
    /* The durable workloads (durable.c): DUR_OFF is the in-memory bench. */
    int dur;
    const char *dir;   /* where their files go */
    const char *tag;   /* distinguishes file names (DUR_BUILD: recovery-<tag>) */
    int save_reps;     /* DUR_BUILD: snapshot saves, the fastest kept */
    int perf_rec;      /* DUR_BUILD: profile this REC_* op (-1: none) */
    int jdiag;         /* JDIAG_*: the server's journal, or a diagnostic */
} bench_cfg;

/* Durable variants. All of them run create -> update -> delete only, every
 * operation its own commit, chatstore's calls under its exclusive lock as
 * the server makes them. */
enum {
    DUR_OFF,    /* the in-memory workload of run.c */
    DUR_MEM,    /* chatstore alone, no journal: its in-memory rate */
    DUR_NORMAL, /* journal to a file, fdatasync once a second by a thread |
                   SQLite file, WAL, synchronous=NORMAL, autocommit */
    DUR_ALWAYS, /* journal with fdatasync per record | synchronous=FULL */
    DUR_BUILD   /* recovery: build the data once (journal without syncs,
                   SQLite batched), then time snapshot saves */
};

/* Recovery steps (chatstore side), for perf control and the tables. The
 * others are diagnostics: "noio" saves into a callback that only counts the
 * bytes, or loads from an image already in memory; "warm" is load-noio or
 * replay with the heap faulted in beforehand (no first-touch faults). */
enum { REC_SAVE, REC_LOAD, REC_REPLAY, REC_SAVE_NOIO, REC_LOAD_NOIO,
       REC_LOAD_WARM, REC_REPLAY_WARM, REC__COUNT };
extern const char *const rec_names[REC__COUNT];

/* ---- latency histogram (log-linear, < 0.8 % relative error) ------------ */

#define HIST_SUB_BITS 7
#define HIST_MAX_LOG2 42 /* values clamp below 2^42 ns (73 minutes) */
#define HIST_BUCKETS ((HIST_MAX_LOG2 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

#define HIST_SLOW 48 /* the largest calls over 1 ms (op number, ns) */
typedef struct hist {
    uint64_t count, total_ns, max_ns, max_at, over_1ms, wall_ns;
    uint64_t slow_at[HIST_SLOW], slow_ns[HIST_SLOW];
    uint32_t b[HIST_BUCKETS];
} hist;

void hist_reset(hist *h);
void hist_add(hist *h, uint64_t ns, uint64_t op_no);
uint64_t hist_pct(const hist *h, double p); /* p in [0, 1] */
double hist_ops_per_s(const hist *h);        /* count / sum of latencies */

/* ---- one run's results (sent from the child process to the parent) ---- */

typedef struct run_result {
    int ok;                  /* the run completed */
    size_t mismatches;       /* answers that differed between engines */
    size_t errors;           /* calls that failed */
    size_t messages;         /* loaded */
    size_t channels;
    double body_avg;         /* bytes */
    double multibyte_share;  /* bodies with at least one non-ASCII byte */
    double rss_bpm[ENG__COUNT];  /* RSS delta around the load / messages */
    double cs_alloc_bpm;         /* cs_store_stats bytes_allocated / msg */
    double sq_cache_bpm;         /* SQLITE_DBSTATUS_CACHE_USED / msg */
    double sq_memused_bpm;       /* sqlite3_memory_used / msg (0: off) */
    double cs_alloc_after_bpm;   /* after delete + steady creates */
    bool prefaulted;             /* RSS deltas not meaningful */
    hist h[OP__COUNT][ENG__COUNT];
    struct dur_result {          /* the durable variants (dur != DUR_OFF) */
        uint64_t jrnl_bytes, jrnl_records; /* file bytes, records */
        uint64_t jrnl_bytes_op[OP__COUNT], jrnl_recs_op[OP__COUNT];
        uint64_t syncs, sync_max_ns, sync_total_ns; /* fdatasync calls */
        uint64_t prepares;                          /* jfile_prepare calls */
        int replay_checked, replay_equal; /* snapshot + journal == store */
        /* DUR_BUILD */
        uint64_t live_messages, digest;
        uint64_t snap0_bytes, snap_bytes;
        uint64_t sq_page_size, sq_pages, sq_freelist;
        uint64_t save_ns[8], save_sync_ns[8], save_noio_ns[8];
        uint64_t save_cpu_ns[8], save_noio_cpu_ns[8];
        int nsave;
        int images_equal;           /* every save gave the same bytes */
    } d;
} run_result;

/* One timed recovery step in a fresh process (durable.c). */
typedef struct rec_result {
    int ok;             /* ran and every check passed */
    uint64_t ns;        /* the timed step */
    uint64_t cpu_ns;    /* the process's CPU time over it */
    uint64_t items;     /* messages loaded, or records applied */
    uint64_t rss_bytes; /* RSS growth over the step */
    int digest_equal;   /* the rebuilt store renders as the original */
    int image_equal;    /* load: saving it again gives the same image */
    /* replay: apply time and records per kind (message create, update,
     * delete: ops 8, 9, 10 of docs/journal.md) */
    uint64_t kind_ns[3], kind_n[3];
    char err[160];
} rec_result;

/* Runs the whole workload once in this process. */
void bench_run(const bench_cfg *c, run_result *r);

/* ---- workload generation (deterministic per serial number) ------------- */

#define BODY_CAP 1024
#define ATTR_CAP 128
#define FROM_CAP 24

typedef struct msg_in {
    char body[BODY_CAP];
    size_t body_len;
    char attr[ATTR_CAP];
    size_t attr_len; /* 0: absent (default "{}") */
    char from[FROM_CAP];
    size_t from_len;
} msg_in;

uint64_t splitmix64(uint64_t *state);
uint64_t hash64(uint64_t a, uint64_t b);
void gen_message(const bench_cfg *c, uint64_t serial, msg_in *out);
void gen_body(const bench_cfg *c, uint64_t key, char *buf, size_t *len);

/* ---- SID text helpers (used by the SQLite side and the harness) -------- */

void sid_format(char p0, char p1, const uint8_t in[16], char out[35]);
int sid_parse(const char *s, size_t n, char p0, char p1, uint8_t out[16]);

/* ---- misc --------------------------------------------------------------- */

uint64_t now_ns(void);
/* CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID): unlike the
 * wall clock, it does not count the time other jobs held the CPU. */
uint64_t cpu_ns(void);
size_t rss_bytes(void);
/* Faults in mb MiB of heap and keeps it for later allocations (glibc). */
void bench_prefault(size_t mb);

/* Runs fn(arg, res) in a forked child and copies its res[0..size) back;
 * -1 if the child failed. */
int bench_fork(void (*fn)(const void *arg, void *res), const void *arg,
               void *res, size_t size);

/* Output to stdout and, when set, to bench_table as well. */
extern FILE *bench_table;
void out(const char *fmt, ...);
const char *fmt_ns(double ns, char *buf, size_t n);
const char *fmt_rate(double r, char *buf, size_t n);
/* The load average, "1.23 0.98 0.75" (1, 5, 15 minutes). */
const char *load_avg(char *buf, size_t n);

/* ---- durable workloads (durable.c) ----------------------------------------- */

/* The journal file, written as the server writes it (server/jfile.c and
 * persist.c's hook and journal thread): frames copied into a shared mapping
 * of the preallocated file, the pages ahead prepared by a thread;
 * DUR_NORMAL adds a jfile_datasync once a second from that thread,
 * DUR_ALWAYS one at the end of each call (djournal_request_end, after the
 * store's lock is released). */
enum {
    JDIAG_NONE,    /* the server's write path */
    JDIAG_PWRITEV, /* diagnostic: one pwritev() per frame, extending the
                      file (the server's write path before the mapping) */
    JDIAG_NOPREP   /* diagnostic: the mapping without the pages prepared
                      ahead (the hook takes the page faults) */
};
typedef struct djournal djournal;
djournal *djournal_open(const char *path, int dur, int diag);
int djournal_hook(void *ctx, uint64_t seq, const void *rec, size_t len);
void djournal_request_end(djournal *j);
void djournal_phase(djournal *j, int op); /* attribute bytes to this op */
/* Stops the thread, syncs, closes, and fills the journal part of d. */
void djournal_close(djournal *j, struct dur_result *d);

/* Snapshot to and from files, buffered 1 MiB. Return 0 / CS_OK on success. */
int snap_save_file(const cs_store *s, const char *path, bool sync,
                   uint64_t *bytes, uint64_t *sync_ns);
cs_err snap_load_file(const char *path, cs_store **out, char *err, size_t n);
/* Applies every record of a journal file; *records counts them. With
 * kind_ns and kind_n (may be NULL), each apply is timed and attributed to
 * message create, update or delete (docs/journal.md ops 8, 9, 10). */
cs_err journal_replay_file(cs_store *s, const char *path, uint64_t *records,
                           uint64_t kind_ns[3], uint64_t kind_n[3], char *err,
                           size_t n);
/* Every service, channel and message page rendered, and the counts, folded
 * into one value: equal digests = stores that answer alike. */
uint64_t store_digest(cs_store *s);

/* Called by bench_run after a DUR_BUILD workload: sizes, digest, timed
 * saves. */
void recovery_build_finish(const bench_cfg *c, cs_store *s, sqlite3 *db,
                           run_result *r);
/* sync(): all dirty data written back, so a timed loop does not pay for
 * the writeback of what ran before it. */
void dur_quiesce(void);
/* File names of a build: kind "s0", "snap", "journal", "db". */
void dur_path(const bench_cfg *c, const char *kind, char *buf, size_t n);

typedef struct dur_opts {
    bench_cfg cfg;          /* workload shape (body sizes, seed, ...) */
    int runs;               /* repetitions, best kept */
    bool durable, recovery, smoke, quick;
    size_t creates, updates, deletes; /* DUR_NORMAL and DUR_MEM */
    size_t always_ops;      /* DUR_ALWAYS: creates, updates, deletes each */
    size_t rec_min, rec_max;/* recovery sizes, powers of 10 */
    const char *dir;        /* NULL: a mkdtemp under /tmp */
    int perf_rec;           /* REC_* to profile, -1 none */
    bool perf_durable;      /* --perf-op/--perf-engine apply to DUR_NORMAL */
} dur_opts;

/* Runs the selected durable modes; returns the number of failed checks. */
int durable_main(const dur_opts *o);

#endif
