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
 * output. Starts the flusher thread. NULL after printing why. */
accesslog *accesslog_open(const char *path);
/* Writes out every buffered line, then opens the path again (after a
 * rotation moved the file: SIGHUP) and swaps it in without a moment where
 * lines have nowhere to go. 0, or -1 after printing why (the old file stays
 * in use). */
int accesslog_reopen(accesslog *a);
/* Appends e's line to this thread's buffer (written out when full, and by
 * the flusher within a second). Waits for no other request; lines a failed
 * write loses are counted. */
void accesslog_request(accesslog *a, const accesslog_entry *e);
/* Lines dropped so far. */
uint64_t accesslog_errors(accesslog *a);
/* Stops the flusher, writes out every buffer, frees a (no request may
 * log any more). NULL is a no-op. */
void accesslog_close(accesslog *a);

#endif
