/* chatstore-bench: command line, repeated runs (each in its own process, so
 * every run starts from a clean heap and its RSS deltas mean something),
 * best-of-N aggregation, the table on stdout and the JSON file.
 *
 *   chatstore-bench [--quick] [--smoke] [--json FILE] [--table FILE]
 *                   [--runs N] [--messages N] [--channels N] ...
 *
 * See bench/README.md for every flag and for how to read the output. */
#include "bench.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Goals: chatstore ops/s over SQLite ops/s. */
static const double TARGET[OP__COUNT] = {
    [OP_CREATE] = 10, [OP_CREATE_STEADY] = 20, [OP_FETCH] = 8,
    [OP_PAGE_ASC] = 10, [OP_PAGE_DESC] = 10, [OP_UPDATE] = 10,
    [OP_DELETE] = 10};
#define MEM_TARGET 0.75
#define LAT_LIMIT_NS 1000000u

typedef struct opts {
    bench_cfg cfg;
    int runs;
    bool quick, scale;
    size_t scale_min, scale_max;
    size_t scale_fetch, scale_pages, scale_updates, scale_deletes;
    size_t scale_chan_size; /* messages per channel in the "many" layout */
    int scale_runs;
    const char *json_path, *table_path;
} opts;

/* ---- runs in child processes -------------------------------------------- */

static void run_fn(const void *arg, void *res) { bench_run(arg, res); }

static int run_child(const bench_cfg *c, run_result *r) {
    return bench_fork(run_fn, c, r, sizeof *r);
}

/* Best of N per (op, engine): the run with the highest ops/s supplies that
 * row's numbers; the spread over runs is kept as the noise figure. */
typedef struct agg {
    int nruns;
    run_result *runs; /* nruns results */
    int best[OP__COUNT][ENG__COUNT];
    double min_ops[OP__COUNT][ENG__COUNT], max_ops[OP__COUNT][ENG__COUNT];
    uint64_t worst_max[OP__COUNT][ENG__COUNT];
    uint64_t over_1ms[OP__COUNT][ENG__COUNT]; /* summed over runs */
    size_t mismatches, errors;
} agg;

static int run_many(const bench_cfg *c, int nruns, agg *a, const char *label) {
    memset(a, 0, sizeof *a);
    a->runs = calloc((size_t)nruns, sizeof *a->runs);
    if (!a->runs) return -1;
    for (int i = 0; i < nruns; i++) {
        fprintf(stderr, "  %s: run %d/%d ...", label, i + 1, nruns);
        uint64_t t = now_ns();
        if (run_child(c, &a->runs[a->nruns]) != 0) {
            fprintf(stderr, " failed\n");
            continue;
        }
        fprintf(stderr, " %.1fs\n", (double)(now_ns() - t) / 1e9);
        a->nruns++;
    }
    if (!a->nruns) return -1;
    for (int op = 0; op < OP__COUNT; op++)
        for (int e = 0; e < ENG__COUNT; e++) {
            a->min_ops[op][e] = 1e300;
            for (int i = 0; i < a->nruns; i++) {
                const hist *h = &a->runs[i].h[op][e];
                double r = hist_ops_per_s(h);
                if (r > hist_ops_per_s(&a->runs[a->best[op][e]].h[op][e]))
                    a->best[op][e] = i;
                if (r < a->min_ops[op][e]) a->min_ops[op][e] = r;
                if (r > a->max_ops[op][e]) a->max_ops[op][e] = r;
                if (h->max_ns > a->worst_max[op][e]) a->worst_max[op][e] = h->max_ns;
                a->over_1ms[op][e] += h->over_1ms;
            }
        }
    for (int i = 0; i < a->nruns; i++) {
        a->mismatches += a->runs[i].mismatches;
        a->errors += a->runs[i].errors;
    }
    return 0;
}

static const hist *best_hist(const agg *a, int op, int e) {
    return &a->runs[a->best[op][e]].h[op][e];
}

/* Memory: the smallest RSS delta over runs (a run's delta can only be
 * inflated by the allocator, never deflated, since every run starts in a
 * fresh process). */
static double best_mem(const agg *a, int e) {
    double m = 1e300;
    for (int i = 0; i < a->nruns; i++)
        if (a->runs[i].rss_bpm[e] < m) m = a->runs[i].rss_bpm[e];
    return m;
}

/* Niceness from /proc/self/stat (field 19; nice() is XSI, not POSIX base). */
static int own_nice(void) {
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    /* after ") " come fields 3.. ; nice is field 19 */
    int field = 2;
    long v = 0;
    for (char *t = p + 1; *t && field < 19; t++)
        if (*t == ' ') {
            field++;
            if (field == 19) v = strtol(t + 1, NULL, 10);
        }
    return (int)v;
}

/* ---- timer overhead ------------------------------------------------------ */

static void timer_overhead(double *min_ns, double *med_ns) {
    enum { N = 100001 };
    static uint32_t d[N];
    for (int i = 0; i < N; i++) {
        uint64_t a = now_ns(), b = now_ns();
        d[i] = (uint32_t)(b - a);
    }
    uint32_t mn = UINT32_MAX;
    uint64_t cnt[256] = {0};
    for (int i = 0; i < N; i++) {
        if (d[i] < mn) mn = d[i];
        cnt[d[i] < 255 ? d[i] : 255]++;
    }
    uint64_t seen = 0;
    int med = 255;
    for (int v = 0; v < 256; v++) {
        seen += cnt[v];
        if (seen >= N / 2) {
            med = v;
            break;
        }
    }
    *min_ns = mn;
    *med_ns = med;
}

/* ---- environment stalls -------------------------------------------------- */

/* How often the machine itself holds a thread up: a loop that only reads the
 * clock, for a few seconds, counting gaps over 1 ms. On a virtual machine
 * whose host preempts it, such gaps show up in every operation's tail at
 * random op numbers; this rate tells them apart from the engine's own. */
static double g_probe_s = 5;
static uint64_t g_stalls, g_stall_max_ns;

static void env_probe(void) {
    if (g_probe_s <= 0) return;
    uint64_t end = now_ns() + (uint64_t)(g_probe_s * 1e9), prev = now_ns();
    for (;;) {
        uint64_t t = now_ns(), d = t - prev;
        if (d > 1000000) g_stalls++;
        if (d > g_stall_max_ns) g_stall_max_ns = d;
        prev = t;
        if (t > end) break;
    }
}

/* ---- printing ------------------------------------------------------------ */

/* A run's slow calls (the HIST_SLOW largest over 1 ms) by op number. */
static size_t slow_sorted(const hist *h, uint64_t at[HIST_SLOW],
                          uint64_t ns[HIST_SLOW]) {
    size_t n = h->over_1ms < HIST_SLOW ? (size_t)h->over_1ms : HIST_SLOW;
    for (size_t i = 0; i < n; i++) {
        at[i] = h->slow_at[i];
        ns[i] = h->slow_ns[i];
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && at[j - 1] > at[j]; j--) {
            uint64_t t = at[j]; at[j] = at[j - 1]; at[j - 1] = t;
            t = ns[j]; ns[j] = ns[j - 1]; ns[j - 1] = t;
        }
    return n;
}


static void print_main(const opts *o, const agg *a, double tmin, double tmed,
                       int niceness) {
    const run_result *r0 = &a->runs[0];
    char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
    out("chatstore-bench: %zu messages over %zu channels in 1 service; body "
        "avg %.1f B (%.0f%% with multibyte text), %.0f%% with JSON "
        "attributes\n",
        r0->messages, r0->channels, r0->body_avg, r0->multibyte_share * 100,
        o->cfg.attr_frac * 100);
    out("ops: fetch %zu, pages %zu per direction (size %zu), updates %zu, "
        "deletes %zu + as many steady creates; SQLite creates %zu per txn\n",
        o->cfg.fetch_ops, o->cfg.page_ops, o->cfg.page_size,
        o->cfg.update_ops, (size_t)a->runs[0].h[OP_DELETE][ENG_CS].count,
        o->cfg.sqlite_batch);
    out("best of %d run(s); SQLite %s; timer overhead %.0f ns min / %.0f ns "
        "median per clock_gettime pair (not subtracted); nice %d\n\n",
        a->nruns, sqlite3_libversion(), tmin, tmed, niceness);
    out("%-13s %-9s %9s %8s %8s %8s %8s %8s %7s %6s %4s %s\n", "op", "engine",
        "ops/s", "mean", "p50", "p99", "p99.9", "max", "ratio", "goal",
        "met", "spread");
    for (int op = 0; op < OP__COUNT; op++) {
        double rate[ENG__COUNT];
        for (int e = 0; e < ENG__COUNT; e++)
            rate[e] = hist_ops_per_s(best_hist(a, op, e));
        double ratio = rate[ENG_SQ] > 0 ? rate[ENG_CS] / rate[ENG_SQ] : 0;
        for (int e = 0; e < ENG__COUNT; e++) {
            const hist *h = best_hist(a, op, e);
            double spread = a->max_ops[op][e] > 0
                                ? 100.0 * (a->max_ops[op][e] - a->min_ops[op][e]) /
                                      a->max_ops[op][e]
                                : 0;
            char rs[16] = "", gs[16] = "", ms[8] = "";
            if (e == ENG_CS) {
                snprintf(rs, sizeof rs, "%.1fx", ratio);
                snprintf(gs, sizeof gs, ">=%.0fx", TARGET[op]);
                snprintf(ms, sizeof ms, "%s", ratio >= TARGET[op] ? "yes" : "NO");
            }
            out("%-13s %-9s %9s %8s %8s %8s %8s %8s %7s %6s %4s %.0f%%\n",
                e == ENG_CS ? op_names[op] : "", eng_names[e],
                fmt_rate(rate[e], b1, sizeof b1),
                fmt_ns(h->count ? (double)h->total_ns / (double)h->count : 0,
                       b6, sizeof b6),
                fmt_ns((double)hist_pct(h, 0.50), b2, sizeof b2),
                fmt_ns((double)hist_pct(h, 0.99), b3, sizeof b3),
                fmt_ns((double)hist_pct(h, 0.999), b4, sizeof b4),
                fmt_ns((double)h->max_ns, b5, sizeof b5), rs, gs, ms, spread);
        }
    }
    double m_cs = best_mem(a, ENG_CS), m_sq = best_mem(a, ENG_SQ);
    out("\nmemory per message (RSS delta around the load, /proc/self/statm):%s\n",
        r0->prefaulted ? " [--prefault: RSS deltas NOT meaningful]" : "");
    out("  chatstore %.1f B   (cs_store_stats bytes_allocated: %.1f B at load, "
        "%.1f B after delete + steady creates)\n",
        m_cs, r0->cs_alloc_bpm, r0->cs_alloc_after_bpm);
    out("  sqlite    %.1f B   (SQLITE_DBSTATUS_CACHE_USED: %.1f B; "
        "sqlite3_memory_used: %s)\n",
        m_sq, r0->sq_cache_bpm,
        r0->sq_memused_bpm > 0 ? "see JSON" : "n/a, MEMSTATUS off");
    out("  ratio %.2f (goal <= %.2f): %s\n", m_sq > 0 ? m_cs / m_sq : 0,
        MEM_TARGET, m_sq > 0 && m_cs / m_sq <= MEM_TARGET ? "met" : "NOT met");
    out("\ntail: chatstore ops over 1 ms (all runs): ");
    for (int op = 0; op < OP__COUNT; op++)
        out("%s %llu%s", op_names[op],
            (unsigned long long)a->over_1ms[op][ENG_CS],
            op + 1 < OP__COUNT ? ", " : "\n");
    out("      where the max happened (op number per run, same number in "
        "every run = deterministic):\n");
    for (int op = 0; op < OP__COUNT; op++) {
        out("        %-13s", op_names[op]);
        for (int i = 0; i < a->nruns; i++) {
            const hist *h = &a->runs[i].h[op][ENG_CS];
            out(" #%llu=%s", (unsigned long long)h->max_at,
                fmt_ns((double)h->max_ns, b1, sizeof b1));
        }
        out("\n");
    }
    out("      chatstore calls over 1 ms (run (count): the largest, by op number):\n");
    for (int op = 0; op < OP__COUNT; op++)
        for (int i = 0; i < a->nruns; i++) {
            const hist *h = &a->runs[i].h[op][ENG_CS];
            if (!h->over_1ms) continue;
            uint64_t at[HIST_SLOW], ns[HIST_SLOW];
            size_t n = slow_sorted(h, at, ns), shown = 0;
            out("        %-13s run %d (%llu):", op_names[op], i + 1,
                (unsigned long long)h->over_1ms);
            /* the largest, in op order: those over 2 ms first */
            for (size_t k = 0; k < n && shown < 14; k++)
                if (ns[k] > 2000000 || n <= 14) {
                    out(" #%llu=%s", (unsigned long long)at[k],
                        fmt_ns((double)ns[k], b1, sizeof b1));
                    shown++;
                }
            out("%s\n", h->over_1ms > shown ? " ..." : "");
        }
    if (g_probe_s > 0)
        out("      environment: a loop doing nothing but read the clock for "
            "%.0f s was held up %llu times over 1 ms (longest %s), i.e. "
            "%.2f/s; over-1-ms calls at op numbers that differ between runs "
            "are of that kind\n",
            g_probe_s, (unsigned long long)g_stalls,
            fmt_ns((double)g_stall_max_ns, b1, sizeof b1),
            (double)g_stalls / g_probe_s);
    out("answers compared: %s (%zu mismatches, %zu errors)\n",
        a->mismatches || a->errors ? "DIFFERENCES" : "identical", a->mismatches,
        a->errors);
}

typedef struct scale_point {
    const char *layout;
    size_t messages, channels;
    agg a;
} scale_point;

static const int SCALE_OPS[] = {OP_CREATE, OP_FETCH, OP_PAGE_ASC, OP_PAGE_DESC,
                                OP_UPDATE, OP_DELETE, OP_CREATE_STEADY};
#define N_SCALE_OPS (sizeof SCALE_OPS / sizeof *SCALE_OPS)

static void print_scaling(const scale_point *sp, size_t n) {
    char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
    out("\nscaling (best of %d; many = %s)\n", n ? sp[0].a.nruns : 0,
        "1000 messages per channel");
    out("%-7s %9s %6s %-13s %9s %9s %6s %8s %8s %8s %8s %5s\n", "layout",
        "messages", "chans", "op", "cs ops/s", "sq ops/s", "ratio", "cs p50",
        "cs p99", "cs max", "sq max", ">1ms");
    for (size_t i = 0; i < n; i++) {
        const scale_point *p = &sp[i];
        for (size_t k = 0; k < N_SCALE_OPS; k++) {
            int op = SCALE_OPS[k];
            const hist *hc = best_hist(&p->a, op, ENG_CS);
            const hist *hs = best_hist(&p->a, op, ENG_SQ);
            double rc = hist_ops_per_s(hc), rs = hist_ops_per_s(hs);
            out("%-7s %9zu %6zu %-13s %9s %9s %5.1fx %8s %8s %8s %8s %5llu\n",
                k ? "" : p->layout, p->messages, p->channels, op_names[op],
                fmt_rate(rc, b1, sizeof b1), fmt_rate(rs, b2, sizeof b2),
                rs > 0 ? rc / rs : 0, fmt_ns((double)hist_pct(hc, 0.5), b3, sizeof b3),
                fmt_ns((double)hist_pct(hc, 0.99), b4, sizeof b4),
                fmt_ns((double)p->a.worst_max[op][ENG_CS], b5, sizeof b5),
                fmt_ns((double)p->a.worst_max[op][ENG_SQ], b6, sizeof b6),
                (unsigned long long)p->a.over_1ms[op][ENG_CS]);
        }
        out("%-7s %9s %6s %-13s cs %.1f B/msg, sqlite %.1f B/msg (RSS)\n", "", "",
            "", "memory", best_mem(&p->a, ENG_CS), best_mem(&p->a, ENG_SQ));
    }
}

/* ---- JSON ----------------------------------------------------------------- */

static void json_hist(FILE *f, const char *op, int e, const hist *h) {
    fprintf(f,
            "{\"op\": \"%s\", \"engine\": \"%s\", \"ops_per_s\": %.1f, "
            "\"p50_ns\": %llu, \"p99_ns\": %llu, \"p999_ns\": %llu, "
            "\"max_ns\": %llu",
            op, eng_names[e], hist_ops_per_s(h),
            (unsigned long long)hist_pct(h, 0.5),
            (unsigned long long)hist_pct(h, 0.99),
            (unsigned long long)hist_pct(h, 0.999),
            (unsigned long long)h->max_ns);
}

/* Per run: [[op number, ns], ...] of the largest calls over 1 ms, and
 * "max_at": the op number of each run's slowest call. */
static void json_slow(FILE *f, const agg *a, int op, int e) {
    fprintf(f, "[");
    for (int i = 0; i < a->nruns; i++) {
        uint64_t at[HIST_SLOW], ns[HIST_SLOW];
        size_t n = slow_sorted(&a->runs[i].h[op][e], at, ns);
        fprintf(f, "%s[", i ? ", " : "");
        for (size_t k = 0; k < n; k++)
            fprintf(f, "%s[%llu, %llu]", k ? ", " : "",
                    (unsigned long long)at[k], (unsigned long long)ns[k]);
        fprintf(f, "]");
    }
    fprintf(f, "], \"max_at\": [");
    for (int i = 0; i < a->nruns; i++)
        fprintf(f, "%s%llu", i ? ", " : "",
                (unsigned long long)a->runs[i].h[op][e].max_at);
    fprintf(f, "]");
}

static int write_json(const opts *o, const agg *a, const scale_point *sp,
                      size_t nsp, double tmin, double tmed, int niceness) {
    FILE *f = fopen(o->json_path, "w");
    if (!f) {
        perror(o->json_path);
        return -1;
    }
    const run_result *r0 = &a->runs[0];
    const bench_cfg *c = &o->cfg;
    fprintf(f, "{\n\"workload\": {\"messages\": %zu, \"channels\": %zu, "
               "\"services\": 1, \"body_bytes_avg\": %.1f, "
               "\"body_bytes_range\": [%zu, %zu], "
               "\"bodies_with_multibyte\": %.3f, \"attributes_json_share\": %.3f, "
               "\"authors\": %zu, \"fetch_ops\": %zu, \"page_ops_per_direction\": "
               "%zu, \"page_size\": %zu, \"update_ops\": %zu, \"delete_ops\": "
               "%llu, \"steady_create_ops\": %llu, \"sqlite_creates_per_txn\": "
               "%zu, \"seed\": %llu, \"runs\": %d, \"sqlite_version\": \"%s\", "
               "\"timer_overhead_ns\": {\"min\": %.0f, \"median\": %.0f}, "
               "\"env_probe\": {\"seconds\": %.0f, \"stalls_over_1ms\": %llu, "
               "\"longest_ns\": %llu}, "
               "\"nice\": %d, \"cpus\": %ld},\n",
            r0->messages, r0->channels, r0->body_avg, c->body_min, c->body_max,
            r0->multibyte_share, c->attr_frac, c->authors, c->fetch_ops,
            c->page_ops, c->page_size, c->update_ops,
            (unsigned long long)r0->h[OP_DELETE][ENG_CS].count,
            (unsigned long long)r0->h[OP_CREATE_STEADY][ENG_CS].count,
            c->sqlite_batch, (unsigned long long)c->seed, a->nruns,
            sqlite3_libversion(), tmin, tmed, g_probe_s,
            (unsigned long long)g_stalls, (unsigned long long)g_stall_max_ns,
            niceness,
            sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(f, "\"results\": [\n");
    for (int op = 0; op < OP__COUNT; op++)
        for (int e = 0; e < ENG__COUNT; e++) {
            fprintf(f, "  ");
            json_hist(f, op_names[op], e, best_hist(a, op, e));
            fprintf(f, "}%s\n", op + 1 < OP__COUNT || e + 1 < ENG__COUNT ? "," : "");
        }
    fprintf(f, "],\n\"memory\": [\n");
    fprintf(f,
            "  {\"engine\": \"chatstore\", \"bytes_per_message\": %.1f, "
            "\"rss_bytes_per_message\": %.1f, \"allocated_bytes_per_message\": "
            "%.1f, \"allocated_bytes_per_message_after_churn\": %.1f},\n",
            best_mem(a, ENG_CS), best_mem(a, ENG_CS), r0->cs_alloc_bpm,
            r0->cs_alloc_after_bpm);
    fprintf(f,
            "  {\"engine\": \"sqlite\", \"bytes_per_message\": %.1f, "
            "\"rss_bytes_per_message\": %.1f, \"cache_used_bytes_per_message\": "
            "%.1f, \"memory_used_bytes_per_message\": %s}\n],\n",
            best_mem(a, ENG_SQ), best_mem(a, ENG_SQ), r0->sq_cache_bpm,
            r0->sq_memused_bpm > 0 ? "\"see rss\"" : "null");
    fprintf(f, "\"goals\": [\n");
    for (int op = 0; op < OP__COUNT; op++) {
        double rc = hist_ops_per_s(best_hist(a, op, ENG_CS));
        double rs = hist_ops_per_s(best_hist(a, op, ENG_SQ));
        double ratio = rs > 0 ? rc / rs : 0;
        fprintf(f, "  {\"op\": \"%s\", \"ratio\": %.2f, \"goal\": %.0f, "
                   "\"met\": %s},\n",
                op_names[op], ratio, TARGET[op], ratio >= TARGET[op] ? "true" : "false");
    }
    double mc = best_mem(a, ENG_CS), ms = best_mem(a, ENG_SQ);
    fprintf(f, "  {\"op\": \"memory\", \"ratio\": %.3f, \"goal\": %.2f, "
               "\"met\": %s}\n],\n",
            ms > 0 ? mc / ms : 0, MEM_TARGET, ms > 0 && mc / ms <= MEM_TARGET ? "true" : "false");
    fprintf(f, "\"noise\": [\n");
    for (int op = 0; op < OP__COUNT; op++)
        for (int e = 0; e < ENG__COUNT; e++) {
            fprintf(f, "  {\"op\": \"%s\", \"engine\": \"%s\", "
                       "\"ops_per_s_min\": %.1f, \"ops_per_s_max\": %.1f, "
                       "\"max_ns_worst\": %llu, \"over_1ms_all_runs\": %llu, "
                       "\"max_ns_per_run\": [",
                    op_names[op], eng_names[e], a->min_ops[op][e], a->max_ops[op][e],
                    (unsigned long long)a->worst_max[op][e],
                    (unsigned long long)a->over_1ms[op][e]);
            for (int i = 0; i < a->nruns; i++)
                fprintf(f, "%s%llu", i ? ", " : "",
                        (unsigned long long)a->runs[i].h[op][e].max_ns);
            fprintf(f, "], \"slow_ops\": ");
            json_slow(f, a, op, e);
            fprintf(f, "}%s\n", op + 1 < OP__COUNT || e + 1 < ENG__COUNT ? "," : "");
        }
    fprintf(f, "],\n\"scaling\": [\n");
    bool first = true;
    for (size_t i = 0; i < nsp; i++)
        for (size_t k = 0; k < N_SCALE_OPS; k++)
            for (int e = 0; e < ENG__COUNT; e++) {
                int op = SCALE_OPS[k];
                const hist *h = best_hist(&sp[i].a, op, e);
                fprintf(f, "%s  {\"layout\": \"%s\", \"messages\": %zu, "
                           "\"channels\": %zu, ",
                        first ? "" : ",\n", sp[i].layout, sp[i].messages,
                        sp[i].channels);
                first = false;
                fprintf(f, "\"op\": \"%s\", \"engine\": \"%s\", \"ops_per_s\": %.1f, "
                           "\"p50_ns\": %llu, \"p99_ns\": %llu, \"p999_ns\": %llu, "
                           "\"max_ns\": %llu, \"over_1ms\": %llu, "
                           "\"bytes_per_message\": %.1f, \"slow_ops\": ",
                        op_names[op], eng_names[e], hist_ops_per_s(h),
                        (unsigned long long)hist_pct(h, 0.5),
                        (unsigned long long)hist_pct(h, 0.99),
                        (unsigned long long)hist_pct(h, 0.999),
                        (unsigned long long)sp[i].a.worst_max[op][e],
                        (unsigned long long)sp[i].a.over_1ms[op][e],
                        best_mem(&sp[i].a, e));
                json_slow(f, &sp[i].a, op, e);
                fprintf(f, "}");
            }
    fprintf(f, "\n],\n\"checks\": {\"mismatches\": %zu, \"errors\": %zu}\n}\n",
            a->mismatches, a->errors);
    fclose(f);
    return 0;
}

/* ---- command line ---------------------------------------------------------- */

static void usage(void) {
    fputs(
        "usage: chatstore-bench [options]\n"
        "  --quick              small configuration, under a minute\n"
        "  --smoke              tiny configuration; compare every answer of\n"
        "                       both engines; exit 1 on any difference\n"
        "  --json FILE          write results as JSON\n"
        "  --table FILE         also write the text table to FILE\n"
        "  --runs N             repetitions, best kept (3)\n"
        "  --messages N         messages loaded (1e6)\n"
        "  --channels N         channels (1000)\n"
        "  --fetch N            fetches (200000)\n"
        "  --pages N            pages per direction (20000)\n"
        "  --page-size N        (50)\n"
        "  --updates N          body updates (100000)\n"
        "  --deletes N          deletes, then as many creates (10%% of messages)\n"
        "  --delete-frac F      (0.10)\n"
        "  --body-min N, --body-max N   body length range in bytes (70, 130)\n"
        "  --multibyte F        share of non-ASCII words (0.10)\n"
        "  --attr-frac F        share of messages with JSON attributes (0.10)\n"
        "  --authors N          distinct From identities (10000)\n"
        "  --sqlite-batch N     SQLite creates per transaction (10000)\n"
        "  --seed N             (42)\n"
        "  --prefault MB        diagnostic: fault in MB of heap before the\n"
        "                       load, so creates show engine CPU cost without\n"
        "                       first-touch page faults (RSS then meaningless)\n"
        "  --cs-only            chatstore only (for profiling; no comparison)\n"
        "  --no-scale           skip the scaling series\n"
        "  --scale-only         only the scaling series\n"
        "  --scale-min N, --scale-max N  sizes 10^k between (1e4, 1e6)\n"
        "  --scale-runs N       repetitions per scaling point (= --runs)\n"
        "  --env-probe S        seconds of clock-only loop measuring the\n"
        "                       machine's own stalls (5; 0 = off)\n"
        "  --scale-fetch N, --scale-pages N, --scale-updates N,\n"
        "  --scale-deletes N    ops per scaling point (100000, 10000, 20000,\n"
        "                       min(10%%, 100000))\n"
        "  --perf-ctl FIFO[,ACK] --perf-op OP --perf-engine ENG\n"
        "                       enable `perf record -D -1 --control fifo:...`\n"
        "                       only around one operation's loop (with\n"
        "                       --durable: in the journaled run)\n"
        "durable modes (see bench/README.md, \"Durability\"):\n"
        "  --durable            every op its own commit: chatstore journal\n"
        "                       file vs SQLite WAL file, and the fdatasync pair\n"
        "  --recovery           snapshot save / load, journal replay, sizes\n"
        "  --dir DIR            their files (default: mkdtemp in /tmp)\n"
        "  --dur-creates N, --dur-updates N, --dur-deletes N\n"
        "                       (200000, 100000, 100000)\n"
        "  --always-ops N       fdatasync pair: creates, updates, deletes\n"
        "                       each (2000; 0 = skip)\n"
        "  --recovery-min N, --recovery-max N  sizes 10^k between (1e6, 1e6;\n"
        "                       --recovery-max 1e7 adds 10^7)\n"
        "  --perf-ctl FIFO[,ACK] --perf-step STEP\n"
        "                       profile one recovery step: save, load,\n"
        "                       replay, save-noio, load-noio, load-warm,\n"
        "                       replay-warm\n",
        stderr);
}

static size_t num(const char *s) {
    char *end;
    double d = strtod(s, &end);
    if (*end || d < 0) {
        fprintf(stderr, "bad number: %s\n", s);
        exit(2);
    }
    return (size_t)(d + 0.5);
}

static double real(const char *s) {
    char *end;
    double d = strtod(s, &end);
    if (*end) {
        fprintf(stderr, "bad number: %s\n", s);
        exit(2);
    }
    return d;
}

static int name_index(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    fprintf(stderr, "unknown name: %s\n", s);
    exit(2);
}

int main(int argc, char **argv) {
    opts o;
    memset(&o, 0, sizeof o);
    bench_cfg *c = &o.cfg;
    c->messages = 1000000;
    c->channels = 1000;
    c->fetch_ops = 200000;
    c->page_ops = 20000;
    c->update_ops = 100000;
    c->delete_frac = 0.10;
    c->page_size = 50;
    c->body_min = 70;
    c->body_max = 130;
    c->multibyte_frac = 0.10;
    c->attr_frac = 0.10;
    c->authors = 10000;
    c->sqlite_batch = 10000;
    c->seed = 42;
    c->perf_op = c->perf_engine = -1;
    o.runs = 3;
    o.scale = true;
    o.scale_min = 10000;
    o.scale_max = 1000000;
    o.scale_fetch = 100000;
    o.scale_pages = 10000;
    o.scale_updates = 20000;
    o.scale_deletes = 100000;
    o.scale_chan_size = 1000;
    bool scale_only = false, set_runs = false;
    dur_opts dopt;
    memset(&dopt, 0, sizeof dopt);
    dopt.creates = 200000;
    dopt.updates = 100000;
    dopt.deletes = 100000;
    dopt.always_ops = 2000;
    dopt.rec_min = dopt.rec_max = 1000000;
    dopt.perf_rec = -1;
    /* --quick and --smoke first, so explicit flags override them. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o.quick = true;
            c->messages = 100000;
            c->channels = 100;
            c->fetch_ops = 50000;
            c->page_ops = 5000;
            c->update_ops = 20000;
            o.runs = 1;
            o.scale_max = 100000;
            o.scale_fetch = 20000;
            o.scale_pages = 2000;
            o.scale_updates = 5000;
            o.scale_deletes = 5000;
            dopt.creates = 20000;
            dopt.updates = dopt.deletes = 10000;
            dopt.always_ops = 200;
            dopt.rec_min = dopt.rec_max = 100000;
        } else if (strcmp(argv[i], "--smoke") == 0) {
            c->smoke = true;
            c->messages = 2000;
            c->channels = 10;
            c->fetch_ops = 500;
            c->page_ops = 200;
            c->update_ops = 300;
            c->sqlite_batch = 300;
            o.runs = 1;
            o.scale = false;
            dopt.creates = 2000;
            dopt.updates = dopt.deletes = 300;
            dopt.always_ops = 30;
            dopt.rec_min = dopt.rec_max = 2000;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (strcmp(a, "--quick") == 0 || strcmp(a, "--smoke") == 0) continue;
        if (strcmp(a, "--no-scale") == 0) o.scale = false;
        else if (strcmp(a, "--cs-only") == 0) c->cs_only = true;
        else if (strcmp(a, "--scale-only") == 0) scale_only = true;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        else if (strcmp(a, "--durable") == 0) dopt.durable = true;
        else if (strcmp(a, "--recovery") == 0) dopt.recovery = true;
        else if (ARG("--dir")) dopt.dir = v;
        else if (ARG("--dur-creates")) dopt.creates = num(v);
        else if (ARG("--dur-updates")) dopt.updates = num(v);
        else if (ARG("--dur-deletes")) dopt.deletes = num(v);
        else if (ARG("--always-ops")) dopt.always_ops = num(v);
        else if (ARG("--recovery-min")) dopt.rec_min = num(v);
        else if (ARG("--recovery-max")) dopt.rec_max = num(v);
        else if (ARG("--perf-step")) dopt.perf_rec = name_index(v, rec_names, REC__COUNT);
        else if (ARG("--json")) o.json_path = v;
        else if (ARG("--table")) o.table_path = v;
        else if (ARG("--runs")) { o.runs = (int)num(v); set_runs = true; }
        else if (ARG("--env-probe")) g_probe_s = (double)num(v);
        else if (ARG("--messages")) c->messages = num(v);
        else if (ARG("--channels")) c->channels = num(v);
        else if (ARG("--fetch")) c->fetch_ops = num(v);
        else if (ARG("--pages")) c->page_ops = num(v);
        else if (ARG("--page-size")) c->page_size = num(v);
        else if (ARG("--updates")) c->update_ops = num(v);
        else if (ARG("--deletes")) c->delete_ops = num(v);
        else if (ARG("--delete-frac")) c->delete_frac = real(v);
        else if (ARG("--body-min")) c->body_min = num(v);
        else if (ARG("--body-max")) c->body_max = num(v);
        else if (ARG("--multibyte")) c->multibyte_frac = real(v);
        else if (ARG("--attr-frac")) c->attr_frac = real(v);
        else if (ARG("--authors")) c->authors = num(v);
        else if (ARG("--sqlite-batch")) c->sqlite_batch = num(v);
        else if (ARG("--seed")) c->seed = num(v);
        else if (ARG("--prefault")) c->prefault_mb = num(v);
        else if (ARG("--scale-min")) o.scale_min = num(v);
        else if (ARG("--scale-max")) o.scale_max = num(v);
        else if (ARG("--scale-runs")) o.scale_runs = (int)num(v);
        else if (ARG("--scale-fetch")) o.scale_fetch = num(v);
        else if (ARG("--scale-pages")) o.scale_pages = num(v);
        else if (ARG("--scale-updates")) o.scale_updates = num(v);
        else if (ARG("--scale-deletes")) o.scale_deletes = num(v);
        else if (ARG("--perf-ctl")) {
            static char buf[4096];
            snprintf(buf, sizeof buf, "%s", v);
            char *comma = strchr(buf, ',');
            if (comma) {
                *comma = '\0';
                c->perf_ack = comma + 1;
            }
            c->perf_ctl = buf;
        } else if (ARG("--perf-op")) c->perf_op = name_index(v, op_names, OP__COUNT);
        else if (ARG("--perf-engine"))
            c->perf_engine = name_index(v, eng_names, ENG__COUNT);
        else {
            usage();
            return 2;
        }
#undef ARG
    }
    (void)set_runs;
    if (o.runs < 1) o.runs = 1;
    if (!o.scale_runs) o.scale_runs = o.runs;
    if (c->page_size < 1) c->page_size = 1;
    if (c->body_max < c->body_min) c->body_max = c->body_min;
    if (c->perf_ctl && dopt.perf_rec < 0 && (c->perf_op < 0 || c->perf_engine < 0)) {
        fprintf(stderr, "--perf-ctl needs --perf-op and --perf-engine, or "
                        "--perf-step\n");
        return 2;
    }
    bool durable_only = dopt.durable || dopt.recovery;
    dopt.cfg = *c;
    dopt.runs = o.runs;
    dopt.smoke = c->smoke;
    dopt.quick = o.quick;
    dopt.perf_durable = c->perf_ctl && dopt.perf_rec < 0;
    if (!dopt.perf_durable) dopt.cfg.perf_op = dopt.cfg.perf_engine = -1;

    if (c->smoke) {
        /* The in-memory smoke, then the durable modes' (journal vs SQLite
         * file, replay, snapshot round trips); only --durable / --recovery
         * when given. Correctness only, never timings. */
        bool ok = true;
        if (!durable_only) {
            run_result *r = malloc(sizeof *r);
            if (!r) return 2;
            bench_run(c, r);
            ok = r->ok && !r->mismatches && !r->errors;
            printf("bench_smoke: %zu messages, %zu channels: %zu mismatches, "
                   "%zu errors\n",
                   r->messages, r->channels, r->mismatches, r->errors);
            free(r);
            dopt.durable = dopt.recovery = true;
        }
        fflush(stdout);
        int bad = durable_main(&dopt);
        ok = ok && bad == 0;
        printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
        return ok ? 0 : 1;
    }

    if (o.table_path) {
        bench_table = fopen(o.table_path, "w");
        if (!bench_table) perror(o.table_path);
    }
    if (durable_only) {
        char la[64];
        out("chatstore-bench %s%s: seed %llu, nice %d, load average %s at "
            "start\n\n",
            dopt.durable ? "--durable" : "", dopt.recovery ? " --recovery" : "",
            (unsigned long long)c->seed, own_nice(), load_avg(la, sizeof la));
        int bad = durable_main(&dopt);
        if (bad) out("\nWARNING: %d check(s) failed; see stderr\n", bad);
        if (bench_table) fclose(bench_table);
        return bad ? 1 : 0;
    }
    int niceness = own_nice();
    double tmin, tmed;
    timer_overhead(&tmin, &tmed);
    if (o.quick || c->smoke) g_probe_s = g_probe_s == 5 ? 1 : g_probe_s;
    env_probe();

    agg main_agg;
    memset(&main_agg, 0, sizeof main_agg);
    bool have_main = false;
    if (!scale_only) {
        fprintf(stderr, "main workload: %zu messages, %zu channels\n",
                c->messages, c->channels);
        if (run_many(c, o.runs, &main_agg, "main") != 0) {
            fprintf(stderr, "every run failed\n");
            return 2;
        }
        have_main = true;
        print_main(&o, &main_agg, tmin, tmed, niceness);
    }

    scale_point sp[32];
    size_t nsp = 0;
    if (o.scale) {
        const char *layouts[2] = {"many", "single"};
        for (int l = 0; l < 2; l++)
            for (size_t n = o.scale_min; n <= o.scale_max && nsp < 32; n *= 10) {
                bench_cfg sc = *c;
                sc.messages = n;
                sc.channels = l == 0 ? (n / o.scale_chan_size ? n / o.scale_chan_size : 1)
                                     : 1;
                sc.fetch_ops = o.scale_fetch;
                sc.page_ops = o.scale_pages;
                sc.update_ops = o.scale_updates;
                size_t d = (size_t)((double)n * c->delete_frac + 0.5);
                sc.delete_ops = d < o.scale_deletes ? d : o.scale_deletes;
                if (!sc.delete_ops) sc.delete_ops = 1;
                char label[64];
                snprintf(label, sizeof label, "scale %s %zu", layouts[l], n);
                scale_point *p = &sp[nsp];
                p->layout = layouts[l];
                p->messages = n;
                p->channels = sc.channels;
                if (run_many(&sc, o.scale_runs, &p->a, label) == 0) nsp++;
            }
        print_scaling(sp, nsp);
    }

    size_t mism = 0;
    if (have_main) mism += main_agg.mismatches + main_agg.errors;
    for (size_t i = 0; i < nsp; i++) mism += sp[i].a.mismatches + sp[i].a.errors;
    if (o.json_path) {
        if (have_main)
            write_json(&o, &main_agg, sp, nsp, tmin, tmed, niceness);
        else if (nsp)
            write_json(&o, &sp[nsp - 1].a, sp, nsp, tmin, tmed, niceness);
    }
    if (mism)
        out("\nWARNING: the engines' answers differed %zu time(s); the numbers "
            "above compare unequal work\n",
            mism);
    if (bench_table) fclose(bench_table);
    return 0;
}
