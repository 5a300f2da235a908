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
} bench_cfg;

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
} run_result;

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
size_t rss_bytes(void);

#endif
