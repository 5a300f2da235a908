/* chatstore-check DIR: verifies a chatstore-server data directory offline
 * and prints what it holds.
 *
 * It runs recovery (recover.c) in check mode: the MANIFEST, the snapshot it
 * names (and the previous one), every journal file's header and every
 * record (framing, CRC, and applied to the loaded snapshot, so a record
 * that does not fit is found too) and the media files. Nothing on disk is
 * changed; it may run while the server runs (it then sees a moment of the
 * directory, and may report as missing a file that a compaction deleted
 * meanwhile: run it again).
 *
 * Journal files are read through mappings: when the running server cuts
 * one while it is read (a rotation drops the previous file's preallocated
 * space), the read raises SIGBUS, and the check stops saying so (exit 1):
 * run it again.
 *
 * Exit status: 0 the directory recovers as it is (zeros after the last
 * record are its clean end; a torn end past the synced length, which
 * startup truncates, is only a warning); 1 damage (startup would refuse
 * without --repair, or media bytes are missing), or a data directory of
 * another format; 2 usage or an unreadable directory. */
#include "persist.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_sigbus(int sig) {
    (void)sig;
    static const char msg[] =
        "chatstore-check: a file shrank while it was read (the server is "
        "running and cut a journal file): run chatstore-check again, or on "
        "a copy or a stopped server\n";
    ssize_t ignored = write(1, msg, sizeof msg - 1);
    (void)ignored;
    _exit(1);
}

int main(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: chatstore-check DIR\n"
                        "Verifies a chatstore-server data directory (--data-dir) "
                        "without changing it.\n");
        return 2;
    }
    const char *dir = argv[1];
    signal(SIGBUS, on_sigbus);
    recover_opts o = {dir, "chatstore-check", stdout, false, true, NULL, NULL,
                      NULL};
    recover_result r;
    int rc = recover(&o, &r);
    if (!r.store && r.other_format) {
        printf("%s: not readable by this version\n", dir);
        recover_result_free(&r);
        return 1;
    }
    if (!r.store) {
        printf("%s: DAMAGED: no state can be recovered\n", dir);
        recover_result_free(&r);
        return rc ? 1 : 0;
    }
    cs_store_stats st;
    cs_store_stats_get(r.store, &st);
    printf("%s:\n", dir);
    printf("  snapshot   %s (%llu bytes, seq %llu) loads in %.3f s\n",
           r.snap_name, (unsigned long long)r.snap_bytes,
           (unsigned long long)r.snap_seq, r.snap_secs);
    if (r.has_prev)
        printf("  previous   %s (kept for --repair)\n", r.prev_name);
    printf("  journal    %zu file(s):", r.nj);
    for (size_t i = 0; i < r.nj; i++)
        printf(" journal-%llu (%llu bytes)", (unsigned long long)r.jfirst[i],
               (unsigned long long)r.jsize[i]);
    printf("\n");
    if (r.prealloc_bytes)
        printf("  zeros      %llu byte(s) of preallocated space after the last "
               "record (the clean end; startup cuts them off)\n",
               (unsigned long long)r.prealloc_bytes);
    if (r.applied)
        printf("  records    %llu replayed (seq %llu to %llu), %llu already in "
               "the snapshot, in %.3f s\n",
               (unsigned long long)r.applied, (unsigned long long)r.first_seq,
               (unsigned long long)r.last_seq, (unsigned long long)r.skipped,
               r.replay_secs);
    else
        printf("  records    none after the snapshot (%llu already in it)\n",
               (unsigned long long)r.skipped);
    printf("  store      seq %llu: %zu services, %zu channels, %zu messages, "
           "%zu media, account %s\n",
           (unsigned long long)st.commits, st.services, st.channels,
           st.messages, st.media, cs_store_account_sid(r.store));
    printf("  media      %llu file(s) verified, %llu missing or wrong size, "
           "%llu orphan(s) (removed at startup)\n",
           (unsigned long long)r.media_files, (unsigned long long)r.media_bad,
           (unsigned long long)r.media_orphans);
    if (r.torn)
        printf("  torn tail  %u (what was not synced when a crash came, or a "
               "journal file whose creation did not finish: startup "
               "truncates or removes it)\n",
               r.torn);
    cs_err ce = cs_store_check(r.store);
    if (ce) printf("  store invariants: %s\n", cs_err_message(ce));
    unsigned damage = r.damage + (unsigned)r.media_bad + (ce != CS_OK);
    if (damage)
        printf("DAMAGED: %u problem(s); chatstore-server refuses to start "
               "without --repair unless only media bytes are missing\n",
               damage);
    else
        printf("OK\n");
    cs_store_free(r.store);
    recover_result_free(&r);
    return damage ? 1 : 0;
}
