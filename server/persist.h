/* chatstore-server's data directory (--data-dir): journal files, group
 * commit, compaction (persist.c) and recovery (recover.c, whose reading
 * compaction reuses), shared with the offline checker (check_main.c). The layout and the recovery procedure are
 * described in docs/persistence.md. */
#ifndef CHATSTORE_PERSIST_H
#define CHATSTORE_PERSIST_H

#include <chatstore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- names and framing (shared by the writer, recovery and the checker) -- */

#define PERSIST_MANIFEST "MANIFEST"
/* The MANIFEST's first line: the data directory's format. Format 2 (journal
 * files with a header, written through a mapping) replaced format 1, which
 * this version refuses to open (docs/persistence.md). */
#define PERSIST_MANIFEST_MAGIC "chatstore data directory 2"
#define PERSIST_MANIFEST_PREFIX "chatstore data directory "
#define PERSIST_MEDIA_DIR "media"
#define PERSIST_DAMAGED_DIR "damaged"
/* A journal frame: u32 little-endian length of the record, then the
 * library's record (which ends with its own CRC-32C). Frames follow the
 * journal file's header (jfile.h). */
#define PERSIST_FRAME_HEADER 4
/* No record is shorter than the library's header plus its CRC. */
#define PERSIST_RECORD_MIN 44
#define PERSIST_NAME_MAX 64

/* Parses "snapshot-<seq>" / "journal-<seq>" (decimal, no leading zeros,
 * nothing after): 0 and *seq, or -1. */
int persist_parse_name(const char *name, const char *prefix, uint64_t *seq);
/* A media-create record's service and media SIDs ("IS..."/"ME...", 34
 * characters + NUL), read from the record layout of docs/journal.md
 * (version 1). 0, or -1 when rec is not a media-create record of that
 * version. */
int persist_media_record_sids(const void *rec, size_t len, char is[35],
                              char me[35]);

/* Writes buf whole to the file descriptor *(int *)ctx: a cs_write_fn. */
int persist_write_cb(void *ctx, const void *buf, size_t len);
/* Replaces dfd's MANIFEST (tmp, fsync, rename, directory fsync): 0 or -1
 * (errno). */
int persist_write_manifest(int dfd, uint64_t cur, bool has_prev, uint64_t prev);

/* ---- recovery (recover.c) ------------------------------------------------ */

/* Receives the bytes of each media item found (is, me: SIDs). */
typedef void (*persist_media_fn)(void *ctx, const char *is, const char *me,
                                 const void *data, size_t n);

typedef struct recover_opts {
    const char *dir;
    const char *prog;        /* prefix of every message, e.g. "chatstore-server" */
    FILE *log;               /* where messages go (stderr) */
    bool repair;             /* --repair: keep the longest valid prefix */
    bool check_only;         /* chatstore-check: change nothing, report all */
    const cs_options *opts;  /* for cs_snapshot_load / cs_store_new */
    persist_media_fn media;  /* may be NULL: media files are only checked */
    void *media_ctx;
} recover_opts;

typedef struct recover_result {
    cs_store *store;               /* the recovered store (NULL on failure) */
    char snap_name[PERSIST_NAME_MAX];
    uint64_t snap_seq, snap_bytes;
    bool has_prev;
    char prev_name[PERSIST_NAME_MAX];
    uint64_t prev_seq;
    double snap_secs, replay_secs;
    uint64_t applied, skipped;     /* records replayed / already contained */
    uint64_t journal_files;        /* journal files read */
    uint64_t first_seq, last_seq;  /* seq range of the journal records read (0: none) */
    /* The journal files present after recovery, in seq order (first seqs),
     * the last one being the one to append to (none: create one). */
    uint64_t *jfirst;
    uint64_t *jsize;
    size_t nj;
    uint64_t append_next;          /* seq after the last file's last record
                                      (0: no journal file) */
    uint64_t journal_bytes;        /* bytes of journal not covered by the snapshot */
    bool created;                  /* a fresh directory was initialised */
    /* what was found (the checker reports them; recovery refuses on damage
     * unless repair) */
    unsigned damage;               /* damage found (not counting torn tails) */
    unsigned torn;                 /* torn final records (truncated / would be) */
    uint64_t prealloc_bytes;       /* zeros after the last records (preallocated
                                      space: cut off at startup) */
    bool other_format;             /* a data directory of another format */
    uint64_t media_files, media_orphans, media_bad;
} recover_result;

/* Recovers the store of o->dir into r (r->store; free r with
 * recover_result_free). A missing or empty directory is initialised (not in
 * check_only mode: there it is reported). Returns 0, or -1 after printing
 * why (file, offset, cause). In check_only mode returns 0 when the
 * directory would recover without --repair (torn tails allowed), else -1,
 * and nothing on disk changes. */
int recover(const recover_opts *o, recover_result *r);
void recover_result_free(recover_result *r);

typedef struct rebuild_info {
    uint64_t snap_bytes;    /* of the snapshot loaded */
    uint64_t files;         /* journal files read */
    uint64_t journal_bytes; /* their size */
    uint64_t applied;       /* records applied */
    double load_secs, replay_secs;
} rebuild_info;

/* Compaction's reading of the directory (dfd): builds into *out a new
 * store holding exactly the changes 1 .. upto, from snapshot-<snap> and
 * the journal files whose first seqs are files[0..nfiles) (ascending; those
 * after upto are not read), with recovery's own reading and checks; but
 * nothing is truncated, repaired or removed, and since the writer closed
 * these files, a torn end is damage too, as is a record after upto.
 * Reads o->dir, o->prog, o->log and o->opts. cancel may be NULL: once
 * *cancel is non-zero (read atomically, set by another thread) the rebuild
 * stops quietly. 0, or -1 after printing the file, offset and cause
 * (nothing when cancelled); *out is then NULL. */
int recover_rebuild(const recover_opts *o, int dfd, uint64_t snap,
                    const uint64_t *files, size_t nfiles, uint64_t upto,
                    const int *cancel, cs_store **out, rebuild_info *info);

/* ---- the running journal (persist.c) -------------------------------------- */

typedef enum persist_fsync {
    PERSIST_FSYNC_ALWAYS,   /* a 2xx means on stable storage (group commit) */
    PERSIST_FSYNC_EVERYSEC, /* a background fdatasync once a second */
    PERSIST_FSYNC_NO        /* never fsync while running; the OS decides */
} persist_fsync;

typedef struct persist_config {
    const char *dir;
    persist_fsync fsync;
    double compact_ratio;       /* compact when journal > ratio * snapshot ... */
    uint64_t compact_min_bytes; /* ... and journal > this */
    bool repair;
    const char *account_sid;    /* NULL: the data directory's (or generated) */
    const char *base_url;
} persist_config;

#define PERSIST_COMPACT_RATIO_DEFAULT 1.0
#define PERSIST_COMPACT_MIN_DEFAULT (UINT64_C(64) << 20)
/* Exit status after a failed fdatasync: the promise of --fsync cannot be
 * kept any more. */
#define PERSIST_EXIT_SYNC_FAILED 3

typedef struct persist persist;
struct media_store;

/* Opens (or initialises) the data directory, recovers the store into
 * *store and the media bytes into m, installs the journal hook and starts
 * the background threads. NULL after printing why. */
persist *persist_open(const persist_config *cfg, struct media_store *m,
                      cs_store **store);
/* Request brackets, on the request's thread: begin forgets the previous
 * request's journal position; end (after the store lock is released)
 * waits, in --fsync always, until every record this thread wrote since
 * begin is on stable storage. */
void persist_request_begin(persist *p);
void persist_request_end(persist *p);
/* A media upload: stage writes the bytes to a file (synced unless --fsync
 * no) before cs_media_create; the journal hook moves it to
 * media/<IS>/<ME> before the record is written. unstage (after the call)
 * removes the file if the create did not happen. stage: 0 or -1. */
int persist_media_stage(persist *p, const void *data, size_t n);
void persist_media_unstage(persist *p);
/* After a committed service delete: removes its media bytes. */
void persist_media_drop_service(persist *p, const char *service_sid);
/* For /metrics: since the server started, journal bytes written and of
 * those synced, the group commit's fdatasyncs, compactions completed. */
typedef struct persist_stats {
    uint64_t written, synced, syncs, compactions;
} persist_stats;
void persist_stats_get(persist *p, persist_stats *out);
/* After a committed delete that took one media item (its message, its
 * channel, or cs_media_delete): removes its file, on this thread's journal
 * position like the service's. */
void persist_media_drop(persist *p, const char *service_sid,
                        const char *media_sid);
/* Clean shutdown (no request may run any more): stops a running
 * compaction (abandoned while it reads or writes its snapshot: the journal
 * keeps everything; finished once it replaces the MANIFEST), writes and
 * fsyncs everything, frees p. 0, or -1 if the last fsync failed. */
int persist_close(persist *p);

#endif
