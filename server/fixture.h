/* chatstore-server as a test fixture: --seed, --clock, --fixture FILE and
 * --test-endpoints (fixture.c). */
#ifndef CHATSTORE_FIXTURE_H
#define CHATSTORE_FIXTURE_H

#include "server.h"

#include <stdint.h>

typedef struct fixture_config {
    int use_seed;         /* --seed N */
    uint64_t seed;
    int fixed_clock;      /* --clock DATE[+STEP] */
    int64_t clock_start;  /* seconds since the epoch */
    int64_t clock_step;   /* seconds added by each committed change */
    const char *file;     /* --fixture FILE, NULL: none */
    int test_endpoints;   /* --test-endpoints */
} fixture_config;

/* What fixture_flag did with argv[i] (flag) and argv[i + 1] (value, NULL
 * when there is none). */
enum {
    FIXTURE_FLAG_NONE = 0,  /* not one of these flags */
    FIXTURE_FLAG_ALONE = 1, /* took the flag alone */
    FIXTURE_FLAG_VALUE = 2, /* took the flag and its value */
    FIXTURE_FLAG_BAD = -1   /* one of these flags, with a bad or no value */
};
int fixture_flag(fixture_config *c, const char *flag, const char *value);
/* Any of the flags given. */
int fixture_wanted(const fixture_config *c);

/* "5", "5s", "2m", "1h", "1d": seconds into *out (>= 0). 0 or -1. */
int fixture_parse_step(const char *s, size_t n, int64_t *out);

/* Reads and checks the fixture file's JSON (a syntax error or a wrong key
 * is printed with its place and gives NULL) and fills o's seed and clock
 * hook. The state lives until fixture_free, after the store's. */
fixture *fixture_new(const fixture_config *cfg, cs_options *o);
/* Once sv->store exists, before the server listens: loads the fixture
 * through the store's API (the first failing item is printed with its
 * JSON path and the store's error) and starts the clock's steps. 0 or -1. */
int fixture_start(fixture *fx, server *sv);
void fixture_free(fixture *fx);

/* The store's clock (fixed or real), without stepping it; under the
 * store's lock. */
int64_t fixture_now(fixture *fx);
/* The HTTP Date value of the fixed clock's reading, "" on the real clock
 * (the HTTP library then stamps the real date). */
void fixture_http_date(fixture *fx, char *out, size_t cap);

/* ---- the test endpoints (routes.c) --------------------------------------- */

int fixture_endpoints(const fixture *fx);

/* Empties the store and its media bytes, sets the SID generators back to
 * the seed and the clock back to its start, and loads the fixture file's
 * data again unless reload is 0. Under the store's exclusive lock all
 * through: no request sees a step between. On an error (memory) msg says
 * what failed and whether the store was left as it was (the clear failed)
 * or empty (the reload failed). */
cs_err fixture_reset(fixture *fx, server *sv, int reload, char *msg,
                     size_t cap);
/* Fixes the clock at now, stepping by step per committed change (step < 0:
 * the current step). */
void fixture_set_clock(fixture *fx, server *sv, int64_t now, int64_t step);
/* The clock as JSON, {"now": DATE, "step_seconds": N, "fixed": BOOL}, into
 * out[0..cap) (160 bytes hold it); under the store's lock, either side. */
void fixture_clock_json(fixture *fx, char *out, size_t cap);
/* The store's counts, the seed and the clock as JSON (512 bytes hold it). */
void fixture_stats_json(fixture *fx, server *sv, char *out, size_t cap);

#endif
