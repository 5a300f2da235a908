/* Standalone driver for builds without libFuzzer (the normal gcc builds):
 * runs LLVMFuzzerTestOneInput over every file of the corpus directories (or
 * single files) given as arguments, in name order, and prints
 * "N passed, 0 failed". A harness reports a finding by aborting, so reaching
 * the end means every input passed. A missing or empty directory fails: a
 * replay test that replays nothing must not pass. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static int replay_file(const char *path, size_t *count) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) abort();
    for (;;) {
        if (n == cap) {
            uint8_t *nb = malloc(cap * 2);
            if (!nb) abort();
            memcpy(nb, buf, n);
            free(buf);
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        return -1;
    }
    /* An exactly sized copy: reads past the end must hit ASan. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) abort();
    if (n) memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    (*count)++;
    return 0;
}

static int replay_dir(const char *dir, size_t *count) {
    struct dirent **names;
    int k = scandir(dir, &names, NULL, alphasort);
    if (k < 0) {
        fprintf(stderr, "replay: cannot read directory %s: %s\n", dir,
                strerror(errno));
        return -1;
    }
    size_t before = *count;
    int rc = 0;
    for (int i = 0; i < k; i++) {
        char path[4096];
        if (names[i]->d_name[0] != '.' &&
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name) <
                (int)sizeof path) {
            struct stat st;
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                replay_file(path, count) != 0)
                rc = -1;
        }
        free(names[i]);
    }
    free(names);
    if (rc == 0 && *count == before) {
        fprintf(stderr, "replay: directory %s holds no input\n", dir);
        rc = -1;
    }
    return rc;
}

int main(int argc, char **argv) {
    size_t count = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        int rc = S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count)
                                     : replay_file(argv[i], &count);
        if (rc != 0) return 1;
    }
    printf("%zu passed, 0 failed\n", count);
    return 0;
}
