/* The error_lists test: every public call's comment lists every error it
 * can return.
 *
 *   check_error_lists HEADER [TRACE_DIR]
 *   check_error_lists --clean TRACE_DIR
 *
 * 1. Reads HEADER (include/chatstore.h) and finds, for each CS_API function
 *    returning cs_err, its documented errors. The rule, applied strictly:
 *    - A comment block that starts a line may hold one line starting
 *      "Errors:" (after the comment's opening, or a later line's " * "), then
 *      error names without the CS_E_ prefix, separated by commas and ended
 *      by "."; the list may wrap, each further line starting with " * ", and
 *      it ends the comment (nothing but the comment's end may follow).
 *    - The list of the nearest preceding comment block applies to each
 *      CS_API prototype after it, until a blank line or any other code
 *      (a #define, a typedef, ...) ends the run. A later comment block
 *      replaces it (then without an Errors line, no list applies).
 *    It fails on: a cs_err function no list applies to; a list that applies
 *    to no cs_err function, or to a function not returning cs_err; a name
 *    that is not an error of CS_ERROR_MAP (or is OK), repeated, or missing
 *    its "."; an Errors list in a trailing comment. It also fails when the
 *    header's cs_err functions and the traced ones (errtrace_funcs.h, the
 *    wrappers the tests are linked with) differ.
 * 2. With TRACE_DIR: reads every *.trace file the traced test programs
 *    wrote (errtrace.c) and fails, printing "function: returned X, not in
 *    its Errors list", on each (function, error) pair that the function's
 *    list does not name. It also fails when there is no trace file or fewer
 *    than MIN_TRACED functions were traced at all (the wrapping would not be
 *    working), and prints the documented errors no test made a function
 *    return (information, not a failure: the lists may promise more).
 * --clean empties TRACE_DIR of trace files (creating it), for the ctest
 * fixture that runs before the traced tests.
 *
 * Ends with "N passed, N failed" like the other tests. */
#include "chatstore.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A test run that traced fewer functions than this is not trusted. */
#define MIN_TRACED 20

static const char *const traced_funcs[] = {
#define ET(name, params, args) #name,
#include "errtrace_funcs.h"
#undef ET
};
#define N_TRACED (sizeof traced_funcs / sizeof traced_funcs[0])
#ifdef CS_ERRTRACE_NFUNCS /* what tests/CMakeLists.txt read from the file */
_Static_assert(N_TRACED == CS_ERRTRACE_NFUNCS,
               "tests/CMakeLists.txt found a different number of ET( lines "
               "in errtrace_funcs.h: start each entry on a line of its own");
#endif

static int passed, failed;
static const char *header_path;

static void check(bool ok, const char *fmt, ...) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A problem of the header's format, at line ln. */
static int format_problems;
static void bad_format(int ln, const char *fmt, ...) {
    format_problems++;
    fprintf(stderr, "%s:%d: ", header_path, ln);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int error_by_name(const char *name, size_t len) {
    for (int e = 0; e < CS_E__COUNT; e++) {
        const char *n = cs_err_name((cs_err)e);
        if (strlen(n) == len && memcmp(n, name, len) == 0) return e;
    }
    return -1;
}

/* --- the header ---------------------------------------------------------- */

#define MAX_LISTS 256
#define MAX_FUNCS 256
#define PROGS_LEN 200

typedef struct err_list {
    int line;
    bool errs[CS_E__COUNT];
    int uses; /* cs_err prototypes it applies to */
} err_list;

typedef struct func {
    char name[64];
    int line;
    bool returns_err;
    int list; /* index into lists, -1: none */
    bool traced;
    bool observed[CS_E__COUNT];
    char progs[CS_E__COUNT][PROGS_LEN]; /* where each pair was seen */
} func;

static err_list lists[MAX_LISTS];
static int n_lists;
static func funcs[MAX_FUNCS];
static int n_funcs;

static func *find_func(const char *name) {
    for (int i = 0; i < n_funcs; i++)
        if (strcmp(funcs[i].name, name) == 0) return &funcs[i];
    return NULL;
}

/* The comment block being read: its text lines, markers removed. */
#define MAX_BLOCK 200
static struct {
    int n;
    int line[MAX_BLOCK];
    char *text[MAX_BLOCK];   /* content, trimmed */
    bool starred[MAX_BLOCK]; /* the raw line started with "* " */
    bool leading;            /* starts its line (not after code) */
} blk;

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

static void block_add(char *content, bool first, int ln) {
    if (blk.n == MAX_BLOCK) {
        bad_format(ln, "comment longer than %d lines", MAX_BLOCK);
        return;
    }
    char *t = content;
    bool starred = false;
    if (!first) {
        while (*t == ' ' || *t == '\t') t++;
        if (*t == '*') {
            starred = t[1] == ' ' || t[1] == '\0';
            t++;
        }
    }
    blk.line[blk.n] = ln;
    blk.text[blk.n] = trim(t);
    blk.starred[blk.n] = starred || first;
    blk.n++;
}

/* Parses the finished block; returns the index of its Errors list or -1. */
static int block_close(void) {
    int found = -1;
    for (int i = 0; i < blk.n; i++) {
        const char *t = blk.text[i];
        if (strncmp(t, "Errors:", 7) != 0) {
            if (strncasecmp(t, "errors:", 7) == 0 ||
                strncasecmp(t, "error:", 6) == 0)
                bad_format(blk.line[i], "write an error list as \"Errors: "
                                        "A, B.\" (found \"%.20s\")",
                           t);
            continue;
        }
        int ln = blk.line[i];
        if (!blk.leading) {
            bad_format(ln, "Errors list in a trailing comment: it must be in "
                           "the comment block above the prototype");
            continue;
        }
        if (found >= 0) {
            bad_format(ln, "second Errors list in one comment (the first at "
                           "line %d)",
                       lists[found].line);
            continue;
        }
        if (n_lists == MAX_LISTS) {
            bad_format(ln, "more than %d Errors lists", MAX_LISTS);
            return -1;
        }
        err_list *L = &lists[n_lists];
        memset(L, 0, sizeof *L);
        L->line = ln;
        found = n_lists++;
        /* Join the lines up to the ".". */
        char joined[4096] = "";
        size_t jl = 0;
        int j = i;
        const char *part = t + 7;
        for (;;) {
            size_t pl = strlen(part);
            if (jl + pl + 2 >= sizeof joined) {
                bad_format(ln, "Errors list too long");
                return found;
            }
            joined[jl++] = ' ';
            memcpy(joined + jl, part, pl + 1);
            jl += pl;
            if (strchr(part, '.')) break;
            if (++j == blk.n) {
                bad_format(ln, "Errors list does not end with \".\"");
                return found;
            }
            if (!blk.starred[j]) {
                bad_format(blk.line[j], "an Errors list continues on lines "
                                        "starting \" * \"");
                return found;
            }
            part = blk.text[j];
        }
        char *dot = strchr(joined, '.');
        if (*trim(dot + 1) != '\0')
            bad_format(blk.line[j], "text after the \".\" of the Errors list");
        for (int k = j + 1; k < blk.n; k++)
            if (blk.text[k][0] != '\0')
                bad_format(blk.line[k], "text after the Errors list: it ends "
                                        "the comment");
        *dot = '\0';
        int names = 0;
        for (char *p = joined;;) {
            char *comma = strchr(p, ',');
            if (comma) *comma = '\0';
            char *name = trim(p);
            size_t nl = strlen(name);
            bool word = nl > 0;
            for (size_t k = 0; k < nl; k++)
                if (!isupper((unsigned char)name[k]) &&
                    !isdigit((unsigned char)name[k]) && name[k] != '_')
                    word = false;
            if (!word) {
                bad_format(ln, "\"%s\" in the Errors list is not an error name "
                               "(names without CS_E_, separated by \", \")",
                           name);
            } else {
                int e = error_by_name(name, nl);
                if (e < 0)
                    bad_format(ln, "%s is not an error of CS_ERROR_MAP", name);
                else if (e == CS_OK)
                    bad_format(ln, "OK is not an error: list only failures");
                else if (L->errs[e])
                    bad_format(ln, "%s listed twice", name);
                else
                    L->errs[e] = true;
                names++;
            }
            if (!comma) break;
            p = comma + 1;
        }
        if (names == 0) bad_format(ln, "empty Errors list");
    }
    return found;
}

/* The start of a comment ("/" "*" or "//") in a line of code, outside
 * string and character literals; NULL if none. */
static char *code_comment(char *s) {
    char quote = 0;
    for (char *p = s; *p; p++) {
        if (quote) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == quote) quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '/' && (p[1] == '*' || p[1] == '/')) {
            return p;
        }
    }
    return NULL;
}

/* A whole prototype "CS_API <type> <name>(...);" starting at line ln. */
static void prototype(char *text, int ln, int applicable) {
    char *p = text + strlen("CS_API");
    char *paren = strchr(p, '(');
    if (!paren || !strchr(paren, ';')) {
        bad_format(ln, "cannot read this CS_API declaration");
        return;
    }
    char *end = paren;
    while (end > p && isspace((unsigned char)end[-1])) end--;
    char *start = end;
    while (start > p &&
           (isalnum((unsigned char)start[-1]) || start[-1] == '_'))
        start--;
    if (start == end || (size_t)(end - start) >= sizeof funcs[0].name) {
        bad_format(ln, "cannot find the function name");
        return;
    }
    char name[64];
    memcpy(name, start, (size_t)(end - start));
    name[end - start] = '\0';
    *start = '\0';
    char *ret = trim(p);
    bool returns_err = strcmp(ret, "cs_err") == 0;
    if (find_func(name)) {
        bad_format(ln, "%s declared twice", name);
        return;
    }
    if (n_funcs == MAX_FUNCS) {
        bad_format(ln, "more than %d functions", MAX_FUNCS);
        return;
    }
    func *f = &funcs[n_funcs++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->line = ln;
    f->returns_err = returns_err;
    f->list = -1;
    if (returns_err) {
        if (applicable >= 0) {
            f->list = applicable;
            lists[applicable].uses++;
        }
    } else if (applicable >= 0) {
        bad_format(ln, "%s does not return cs_err, yet the Errors list of "
                       "line %d applies to it: end the run with a blank line",
                   name, lists[applicable].line);
    }
}

static bool parse_header(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    /* Lines are kept for the whole run: comment texts point into them. */
    static char lines[20000][256];
    int n = 0;
    while (n < 20000 && fgets(lines[n], sizeof lines[n], fp)) {
        size_t l = strlen(lines[n]);
        if (l == sizeof lines[n] - 1 && lines[n][l - 1] != '\n') {
            bad_format(n + 1, "line longer than %zu characters",
                       sizeof lines[n] - 2);
            fclose(fp);
            return false;
        }
        if (l && lines[n][l - 1] == '\n') lines[n][l - 1] = '\0';
        n++;
    }
    fclose(fp);

    bool in_comment = false;
    int applicable = -1;   /* the Errors list that applies, -1: none */
    char proto[4096] = ""; /* a prototype spanning lines */
    int proto_line = 0;
    for (int i = 0; i < n; i++) {
        int ln = i + 1;
        char *s = lines[i];
        bool after_comment = false;
        if (in_comment) {
            char *end = strstr(s, "*/");
            if (end) *end = '\0';
            block_add(s, false, ln);
            if (!end) continue;
            in_comment = false;
            int list = block_close();
            if (blk.leading) applicable = list;
            s = end + 2;
            after_comment = true;
        }
        /* Code, possibly with a comment opening somewhere on the line. */
        while (*s) {
            char *t = s;
            while (isspace((unsigned char)*t)) t++;
            if (*t == '\0') break;
            char *c = code_comment(t);
            if (c == t && c[1] == '/') { /* a "//" comment line */
                if (strstr(c, "Errors:"))
                    bad_format(ln, "Errors list in a // comment");
                if (!proto[0]) applicable = -1;
                break;
            }
            if (c != t || proto[0]) {
                /* Code before any comment (or a prototype continuing). */
                if (c) *c = '\0';
                char *code = trim(t);
                if (proto[0] || strncmp(code, "CS_API", 6) == 0) {
                    if (!proto[0]) proto_line = ln;
                    size_t have = strlen(proto), add = strlen(code);
                    if (have + add + 2 >= sizeof proto) {
                        bad_format(proto_line, "declaration too long");
                        return false;
                    }
                    if (have) proto[have++] = ' ';
                    memcpy(proto + have, code, add + 1);
                    if (strchr(proto, ';')) {
                        prototype(proto, proto_line, applicable);
                        proto[0] = '\0';
                    }
                } else if (*code) {
                    applicable = -1; /* other code ends a run */
                }
                if (!c) break;
                *c = '/';
            }
            /* A comment opens at c. */
            blk.n = 0;
            blk.leading = c == t && !after_comment;
            if (c[1] == '/') { /* trailing "//" comment */
                if (strstr(c, "Errors:"))
                    bad_format(ln, "Errors list in a // comment");
                break;
            }
            char *body = c + 2;
            char *end = strstr(body, "*/");
            if (end) *end = '\0';
            block_add(body, true, ln);
            if (!end) {
                in_comment = true;
                break;
            }
            int list = block_close();
            if (blk.leading) applicable = list;
            s = end + 2;
            after_comment = true;
        }
        if (!in_comment && !after_comment && !proto[0]) {
            const char *t = s;
            while (isspace((unsigned char)*t)) t++;
            if (*t == '\0') applicable = -1; /* a blank line ends a run */
        }
    }
    if (in_comment) bad_format(n, "comment not closed");
    if (proto[0]) bad_format(proto_line, "declaration not ended by \";\"");
    for (int k = 0; k < n_lists; k++)
        if (lists[k].uses == 0)
            bad_format(lists[k].line,
                       "this Errors list applies to no function returning "
                       "cs_err (its comment must be right above the "
                       "prototype, with no blank line or other code between)");
    return true;
}

/* --- traces -------------------------------------------------------------- */

static int trace_files;

static void note_prog(char *progs, const char *prog) {
    size_t pl = strlen(prog);
    for (const char *p = progs; (p = strstr(p, prog)) != NULL; p += pl)
        if ((p == progs || p[-1] == ' ') && (p[pl] == ',' || p[pl] == '\0'))
            return;
    size_t have = strlen(progs);
    if (have + pl + 3 < PROGS_LEN)
        snprintf(progs + have, PROGS_LEN - have, "%s%s", have ? ", " : "",
                 prog);
}

static void read_trace(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        check(false, "cannot open %s: %s", path, strerror(errno));
        return;
    }
    trace_files++;
    char line[512];
    int ln = 0;
    while (fgets(line, sizeof line, fp)) {
        ln++;
        char *save = NULL;
        char *fn = strtok_r(line, " \t\r\n", &save);
        if (!fn || fn[0] == '#') continue;
        char *err = strtok_r(NULL, " \t\r\n", &save);
        const char *prog = strtok_r(NULL, " \t\r\n", &save);
        if (!prog) prog = "?";
        if (!err) {
            check(false, "%s:%d: malformed trace line", path, ln);
            continue;
        }
        func *f = find_func(fn);
        if (!f || !f->returns_err) {
            check(false, "%s:%d: %s is not a function of the header "
                         "returning cs_err",
                  path, ln, fn);
            continue;
        }
        f->traced = true;
        int e = error_by_name(err, strlen(err));
        if (e < 0) {
            check(false, "%s: returned %s, which is not a cs_err (seen in %s)",
                  fn, err, prog);
            continue;
        }
        f->observed[e] = true;
        note_prog(f->progs[e], prog);
    }
    fclose(fp);
}

static bool is_trace(const char *name) {
    size_t n = strlen(name);
    return name[0] != '.' && n > 6 && strcmp(name + n - 6, ".trace") == 0;
}

static bool read_traces(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        check(false, "cannot read the trace directory %s: %s", dir,
              strerror(errno));
        return false;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_trace(de->d_name)) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        read_trace(path);
    }
    closedir(d);
    return true;
}

static int clean(const char *dir) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", dir, strerror(errno));
        puts("0 passed, 1 failed");
        return 1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot read %s: %s\n", dir, strerror(errno));
        puts("0 passed, 1 failed");
        return 1;
    }
    int removed = 0, bad = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_trace(de->d_name)) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) == 0) {
            removed++;
        } else {
            fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
            bad = 1;
        }
    }
    closedir(d);
    printf("removed %d trace files from %s\n", removed, dir);
    printf("%d passed, %d failed\n", !bad, bad);
    return bad;
}

/* --- main ---------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--clean") == 0) return clean(argv[2]);
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s HEADER [TRACE_DIR]\n"
                        "       %s --clean TRACE_DIR\n",
                argv[0], argv[0]);
        return 2;
    }
    header_path = argv[1];
    const char *dir = argc == 3 ? argv[2] : NULL;

    /* The header. */
    bool read = parse_header(header_path);
    check(read && format_problems == 0,
          "%s: %d problems with the Errors lists (above)", header_path,
          format_problems);
    int n_err_funcs = 0;
    for (int i = 0; i < n_funcs; i++) {
        const func *f = &funcs[i];
        if (!f->returns_err) continue;
        n_err_funcs++;
        check(f->list >= 0,
              "%s:%d: %s returns cs_err but no Errors list applies to it",
              header_path, f->line, f->name);
    }
    check(!read || n_err_funcs > 0, "%s: no CS_API function returns cs_err",
          header_path);

    /* The header's cs_err functions are exactly the traced ones. */
    bool same = true;
    for (int i = 0; i < n_funcs; i++) {
        if (!funcs[i].returns_err) continue;
        bool listed = false;
        for (size_t k = 0; k < N_TRACED; k++)
            if (strcmp(traced_funcs[k], funcs[i].name) == 0) listed = true;
        if (!listed) {
            same = false;
            fprintf(stderr, "%s returns cs_err but is not traced: add it to "
                            "tests/errtrace_funcs.h\n",
                    funcs[i].name);
        }
    }
    for (size_t k = 0; k < N_TRACED; k++) {
        const func *f = find_func(traced_funcs[k]);
        if (!f || !f->returns_err) {
            same = false;
            fprintf(stderr, "tests/errtrace_funcs.h lists %s, which is not "
                            "a cs_err function of the header\n",
                    traced_funcs[k]);
        }
    }
    check(same, "the traced functions differ from the header's (above)");

    if (dir && read) {
        read_traces(dir);
        int traced = 0, pairs = 0;
        for (int i = 0; i < n_funcs; i++) {
            func *f = &funcs[i];
            if (!f->returns_err) continue;
            traced += f->traced;
            for (int e = 0; e < CS_E__COUNT; e++) {
                if (!f->observed[e]) continue;
                pairs++;
                if (e == CS_OK) continue;
                check(f->list >= 0 && lists[f->list].errs[e],
                      "%s: returned %s, not in its Errors list (%s:%d; seen "
                      "in %s)",
                      f->name, cs_err_name((cs_err)e), header_path,
                      f->list >= 0 ? lists[f->list].line : f->line,
                      f->progs[e]);
            }
        }
        check(trace_files > 0,
              "no trace files in %s: run the traced tests first (ctest runs "
              "them before this one)",
              dir);
        check(traced >= MIN_TRACED,
              "only %d functions were traced (at least %d expected): is the "
              "--wrap linking working?",
              traced, MIN_TRACED);

        printf("traced %d of %d cs_err functions, %d (function, result) "
               "pairs, from %d trace files\n",
               traced, n_err_funcs, pairs, trace_files);
        printf("documented errors no test made the function return:\n");
        int never = 0;
        for (int i = 0; i < n_funcs; i++) {
            const func *f = &funcs[i];
            if (!f->returns_err || f->list < 0) continue;
            bool first = true;
            for (int e = 1; e < CS_E__COUNT; e++) {
                if (!lists[f->list].errs[e] || f->observed[e]) continue;
                if (first) printf("  %s: %s", f->name, cs_err_name((cs_err)e));
                else printf(", %s", cs_err_name((cs_err)e));
                never++;
                first = false;
            }
            if (!first) printf("\n");
            if (!f->traced) printf("  %s: never called\n", f->name);
        }
        printf("  (%d in all)\n", never);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
