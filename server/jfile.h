/* One journal file of chatstore-server's data directory, written through a
 * shared memory mapping: the layout (a header page, then frames), the
 * writer (preallocation, appending, the synced length) and the reading of
 * the header. Used by persist.c (the running server), recover.c (reading)
 * and chatstore-bench (which measures exactly this write path).
 * docs/persistence.md describes the bytes. */
#ifndef CHATSTORE_JFILE_H
#define CHATSTORE_JFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- layout ---------------------------------------------------------------- */

/* The header takes the file's first 4096 bytes; frames follow it. */
#define JFILE_HEADER 4096u
#define JFILE_MAGIC "CSJOURNL" /* 8 bytes, no NUL */
#define JFILE_VERSION 2u
/* Where the two copies of the synced length live (separate sectors, so a
 * torn write of the header page spoils at most the one being written). */
#define JFILE_SLOT0 512u
#define JFILE_SLOT1 1024u
#define JFILE_SLOT_SIZE 24u

/* What a header says. */
typedef struct jfile_head {
    uint64_t first;  /* the seq of the file's first record */
    uint64_t synced; /* the synced length D: every byte before this offset
                        was on stable storage when it was recorded */
    uint64_t gen;    /* the generation of the slot D came from */
} jfile_head;

/* The header of a new journal file whose first record is seq first (D =
 * JFILE_HEADER in both slots, generations 0 and 1). */
void jfile_head_build(uint8_t hdr[JFILE_HEADER], uint64_t first);
/* Reads the header in p[0..size) (size may be shorter than the header).
 * 0, or -1 with *why (static text): too short, not a journal file (magic),
 * another format version or header size, a header CRC mismatch, or no sync
 * slot that passes its CRC. */
int jfile_head_parse(const uint8_t *p, size_t size, jfile_head *h,
                     const char **why);
/* CRC-32C (Castagnoli, standard inversions), as the library's records use. */
uint32_t jfile_crc32c(const void *p, size_t n);
/* Whether p[0..n) is all zero bytes. */
bool jfile_all_zero(const uint8_t *p, size_t n);
/* Records D = synced in the header of the journal file open for writing
 * as fd, whose header says *h (its gen is advanced); not synced. 0 or -1
 * (errno). */
int jfile_head_set_synced(int fd, jfile_head *h, uint64_t synced);

/* ---- the writer -------------------------------------------------------------- */

typedef struct jfile jfile;

/* Creates journal file `name` in directory dfd (O_EXCL): writes its header
 * (first seq `first`, D = the header's end) and preallocates space. The
 * header is not synced (the caller fdatasyncs jfile_fd when it must be).
 * NULL with errno. */
jfile *jfile_create(int dfd, const char *name, uint64_t first);
/* Opens the existing journal file `name`, whose valid frames end at `end`
 * (recovery found them), to append after them: whatever follows end is cut
 * off first, and space is reserved anew. NULL with errno (EINVAL: not a
 * journal file with a readable header, or end out of range). */
jfile *jfile_reopen(int dfd, const char *name, uint64_t end);

/* Appends one frame (u32 little-endian len, then rec) at the end: a copy
 * into the mapping, no system call unless the preallocated space is
 * exhausted, in which case the file is extended first. 0, or -1 with errno
 * (ENOSPC, EFBIG, ...: the extension failed; nothing was written). One
 * writer at a time. */
int jfile_append(jfile *j, const void *rec, size_t len);
/* Where the next frame goes (= the file offset after the last frame).
 * Exact for the writer's thread; others see a value it stored. */
uint64_t jfile_end(const jfile *j);
int jfile_fd(const jfile *j);
/* How jfile_prepare readies the pages ahead of the end. */
typedef enum jfile_ahead {
    JFILE_AHEAD_NONE,  /* only extends the file: the writer's stores take the
                          page faults (about one per 4 KiB written) */
    JFILE_AHEAD_READ,  /* also maps them readable (MADV_POPULATE_READ): the
                          stores take only a write fault */
    JFILE_AHEAD_WRITE  /* faults them in writable (MADV_POPULATE_WRITE): no
                          faults in the writer, but the pages are dirty, so
                          a sync may write zeros ahead of the end (the
                          default) */
} jfile_ahead;
void jfile_set_ahead(jfile *j, jfile_ahead a);
/* Whether the space made ready ahead of the end (jfile_prepare) runs low:
 * the writer then asks a background thread to call jfile_prepare. */
bool jfile_wants_prepare(const jfile *j);
/* Background work, off the writer's path: extends the file and prefaults
 * the pages of the mapping ahead of the end, so that appending takes
 * neither system calls nor page faults. May run concurrently with append
 * and datasync. */
void jfile_prepare(jfile *j);
/* fdatasync of the file: everything the writer appended before the call
 * is then on stable storage. 0, or -1 (errno). */
int jfile_datasync(jfile *j);
/* After a jfile_datasync that returned 0: records D = end (an end the
 * writer had reached before that jfile_datasync began) in the header, to
 * reach the disk with the next sync; nothing when end is not above the D
 * recorded. Best effort (a failed write only leaves D lower). One caller at
 * a time (not concurrently with close). */
void jfile_set_synced(jfile *j, uint64_t end);
/* Cuts the file to its end (the preallocated space goes); when sync,
 * fdatasyncs it, records D = end and syncs that too (without sync, D stays
 * as it was); then unmaps, closes and frees. No other call may be running
 * on j. 0, or -1 (errno) when the truncation or a sync failed (j is freed
 * either way). */
int jfile_close(jfile *j, bool sync);

#endif
