/* chatstore-server --access-log FILE|-: one line per answered request
 * (accesslog.c; the format is in README, "Operating the server"). */
#ifndef CHATSTORE_SERVER_ACCESSLOG_H
#define CHATSTORE_SERVER_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct accesslog accesslog;

typedef struct accesslog_entry {
    uint64_t unix_ns;       /* wall clock when the reply was queued */
    const char *client;     /* address text, "-" when unknown */
    const char *request_id; /* RQ + 32 hex digits */
    const char *method;     /* as the client sent it */
    const char *route;      /* route template, or "other" */
    unsigned status;
    size_t bytes;           /* body bytes of the reply */
    uint64_t duration_us;
} accesslog_entry;

/* Opens path for appending (created 0644 if missing); "-" is standard
 * output. NULL after printing why. */
accesslog *accesslog_open(const char *path);
/* Opens the path again (after a rotation moved the file: SIGHUP) and
 * swaps it in without a moment where lines have nowhere to go. 0, or -1
 * after printing why (the old file stays in use). */
int accesslog_reopen(accesslog *a);
/* Writes e's line with one write(2). Never blocks on a lock; a failed or
 * short write is counted and the line dropped. */
void accesslog_request(accesslog *a, const accesslog_entry *e);
/* Lines dropped so far. */
uint64_t accesslog_errors(accesslog *a);
/* NULL is a no-op. */
void accesslog_close(accesslog *a);

#endif
