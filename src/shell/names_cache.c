/* See names_cache.h. */
#include "shell/names_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/ids.h"
#include "common/layout.h"
#include "common/paths.h"
#include "shell/sessions.h"
#include "ssh/registry.h"

#define NAME_MAX_LEN 64
#define NAMES_MAX 10000
#define CACHE_FILE_MAX (NAMES_MAX * (NAME_MAX_LEN + 1))
#define EXIT_USAGE 2

/* SPEC 3's session name: ^[A-Za-z0-9_-]{1,64}$. Anything else never
 * reaches a completion list. */
static bool name_is_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= NAME_MAX_LEN &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* FNV-1a of the root: only tells two roots' caches apart. */
static uint64_t root_hash(const char *root)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *c = (const unsigned char *)root; *c; c++)
        h = (h ^ *c) * 1099511628211ULL;
    return h;
}

/* The cache directory for this user and --root; -1 without a home. */
static int cache_dir(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char base[PATH_BUF];
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(base, sizeof base, "%s/convocate", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(base, sizeof base, "%s/.cache/convocate", home);
    else
        return -1;
    if (n < 0 || (size_t)n >= sizeof base)
        return -1;
    const char *root = paths_root();
    if (root[0] == '\0')
        n = snprintf(out, size, "%s/names", base);
    else
        n = snprintf(out, size, "%s/names-%016llx", base, (unsigned long long)root_hash(root));
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* ---- writing ------------------------------------------------------------ */

static char *names_text(json_t *list, size_t *len)
{
    size_t cap = 256, used = 0, i;
    char *text = malloc(cap);
    json_t *s;
    if (text == NULL)
        return NULL;
    json_array_foreach(list, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (name == NULL || !name_is_valid(name) || i >= NAMES_MAX)
            continue;
        size_t n = strlen(name);
        if (used + n + 2 > cap) {
            char *grown = realloc(text, cap * 2 + n);
            if (grown == NULL) {
                free(text);
                return NULL;
            }
            text = grown;
            cap = cap * 2 + n;
        }
        memcpy(text + used, name, n);
        used += n;
        text[used++] = '\n';
    }
    *len = used;
    return text;
}

/* Same bytes: only the time changes (it is what "stale" reads), so the
 * TUI's refresh every few seconds writes nothing. A change is written
 * atomically: a reader sees the old list or the new, never half of one. */
static bool same_content(const char *path, const char *text, size_t len)
{
    char *old = NULL;
    size_t old_len = 0;
    if (read_file_bounded(path, CACHE_FILE_MAX, &old, &old_len) < 0)
        return false;
    bool same = old_len == len && memcmp(old, text, len) == 0;
    free(old);
    return same;
}

void names_cache_store(const char *agent_id, json_t *list)
{
    char dir[PATH_BUF], path[PATH_BUF];
    if (list == NULL || !json_is_array(list) || agent_id == NULL || !agent_id_is_valid(agent_id) ||
        cache_dir(dir, sizeof dir) < 0 || mkdir_p(dir, 0700) < 0)
        return;
    if (snprintf(path, sizeof path, "%s/%s", dir, agent_id) >= (int)sizeof path)
        return;
    size_t len = 0;
    char *text = names_text(list, &len);
    if (text == NULL)
        return;
    if (same_content(path, text, len))
        utimensat(AT_FDCWD, path, NULL, 0);
    else
        atomic_write_file(path, text, len, 0600, KEEP_OWNER, KEEP_OWNER);
    free(text);
}

/* ---- reading ------------------------------------------------------------ */

typedef struct {
    char **items;
    size_t n, cap;
} name_set;

static int add_name(name_set *s, const char *name, size_t n)
{
    if (s->n == NAMES_MAX)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **grown = realloc(s->items, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        s->items = grown;
        s->cap = cap;
    }
    char *copy = strndup(name, n);
    if (copy == NULL)
        return -1;
    s->items[s->n++] = copy;
    return 0;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Still registered with this shell: its agent-keys directory exists. */
static bool agent_registered(const char *id)
{
    char path[PATH_BUF];
    struct stat st;
    return root_path(path, sizeof path, "%s/%s", SHELL_AGENT_KEYS_DIR, id) == 0 &&
           stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int read_agent_file(const char *path, name_set *s)
{
    char *text = NULL;
    size_t len = 0;
    if (read_file_bounded(path, CACHE_FILE_MAX, &text, &len) < 0)
        return 0; /* gone meanwhile, or too big: not ours to judge */
    int rc = 0;
    for (char *line = text; rc == 0 && line < text + len;) {
        char *end = memchr(line, '\n', (size_t)(text + len - line));
        size_t n = end ? (size_t)(end - line) : (size_t)(text + len - line);
        char name[NAME_MAX_LEN + 1];
        if (n >= 1 && n <= NAME_MAX_LEN) {
            memcpy(name, line, n);
            name[n] = '\0';
            if (name_is_valid(name))
                rc = add_name(s, name, n);
        }
        line += n + 1;
    }
    free(text);
    return rc;
}

/* Fills s from every registered agent's file; *newest is the latest
 * mtime seen (0 when there is none). */
static int read_cache(const char *dir, name_set *s, time_t *newest)
{
    *newest = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!agent_id_is_valid(e->d_name) || !agent_registered(e->d_name))
            continue;
        char path[PATH_BUF];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
            lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (st.st_mtime > *newest)
            *newest = st.st_mtime;
        rc = read_agent_file(path, s);
    }
    closedir(d);
    return rc;
}

/* ---- the background refresh --------------------------------------------- */

/* In a detached child: one cluster listing (which stores every answer),
 * unless another refresh holds the lock. Its output goes nowhere: the
 * completion that started it has long printed what it had. */
static void refresh_child(const char *dir)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        _exit(1);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    setsid();
    char lock[PATH_BUF];
    if (mkdir_p(dir, 0700) < 0 ||
        snprintf(lock, sizeof lock, "%s/.refresh.lock", dir) >= (int)sizeof lock)
        _exit(1);
    int fd = open(lock, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
        _exit(0);
    agent_registry r;
    char err[512];
    if (registry_load(&r, err, sizeof err) == 0) {
        cluster_list l;
        cluster_list_load(&r, &l);
        cluster_list_free(&l);
        registry_free(&r);
    }
    _exit(0);
}

static void start_refresh(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0)
        refresh_child(dir);
    /* The parent never waits: the child outlives it, adopted by init. */
}

/* ---- ls --names --------------------------------------------------------- */

bool names_cache_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--names") == 0)
            return true;
    return false;
}

int names_cache_main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "convocate ls: --names takes nothing else (see 'convocate help')\n");
        return EXIT_USAGE;
    }
    char dir[PATH_BUF];
    if (cache_dir(dir, sizeof dir) < 0)
        return 0; /* no home, no cache: nothing to offer */
    name_set s = {0};
    time_t newest;
    int rc = read_cache(dir, &s, &newest);
    if (s.n > 0)
        qsort(s.items, s.n, sizeof *s.items, by_text);
    for (size_t i = 0; i < s.n; i++)
        if (i == 0 || strcmp(s.items[i], s.items[i - 1]) != 0)
            printf("%s\n", s.items[i]);
    for (size_t i = 0; i < s.n; i++)
        free(s.items[i]);
    free(s.items);
    fflush(stdout);
    if (rc < 0) {
        fprintf(stderr, "convocate: out of memory\n");
        return 1;
    }
    if (newest == 0 || time(NULL) - newest > NAMES_CACHE_STALE_S)
        start_refresh(dir);
    return 0;
}
