#include "agent/claude_env.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/disk_error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/paths.h"

#define KEY_SHOWN_MAX 64
#define HINT_TAIL 4

static const char *const key_names[CLAUDE_ENV_KEYS] = {
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
};

const char *claude_env_key_name(claude_env_key k)
{
    return k < CLAUDE_ENV_KEYS ? key_names[k] : "";
}

void claude_env_init(claude_env *env)
{
    memset(env, 0, sizeof *env);
}

void claude_env_wipe(claude_env *env)
{
    explicit_bzero(env, sizeof *env);
}

int claude_env_set(claude_env *env, claude_env_key k, const char *value)
{
    size_t len = strlen(value);
    if (k >= CLAUDE_ENV_KEYS || !claude_value_is_valid(value, len))
        return -1;
    memcpy(env->value[k], value, len + 1);
    env->has[k] = true;
    return 0;
}

/* ---- parsing ---- */

/* A key is echoed in an error only when it looks like an environment
 * variable name: a secret pasted before an '=' by mistake is never shown. */
static bool key_is_showable(const char *key, size_t n)
{
    if (n == 0 || n > KEY_SHOWN_MAX || (key[0] >= '0' && key[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static int key_lookup(const char *key, size_t n)
{
    for (int k = 0; k < CLAUDE_ENV_KEYS; k++)
        if (strlen(key_names[k]) == n && memcmp(key_names[k], key, n) == 0)
            return k;
    return -1;
}

typedef struct {
    claude_env *env;
    int line_of[CLAUDE_ENV_KEYS]; /* where each key was set, 0 = not yet */
    char *err;
    size_t errlen;
} parse_state;

static int refuse_key(parse_state *ps, int line, const char *key, size_t n)
{
    if (key_is_showable(key, n))
        snprintf(ps->err, ps->errlen, "claude.env line %d: unknown key \"%.*s\"", line, (int)n,
                 key);
    else
        snprintf(ps->err, ps->errlen,
                 "claude.env line %d: unknown key (not shown: not an environment variable name)",
                 line);
    return -1;
}

static int check_value(parse_state *ps, int line, int k, const char *value, size_t n)
{
    const char *name = key_names[k];
    if (n == 0)
        snprintf(ps->err, ps->errlen, "claude.env line %d: %s has an empty value", line, name);
    else if (n > CLAUDE_VALUE_MAX)
        snprintf(ps->err, ps->errlen, "claude.env line %d: the value of %s is longer than %d bytes",
                 line, name, CLAUDE_VALUE_MAX);
    else if (!claude_value_is_valid(value, n))
        snprintf(ps->err, ps->errlen,
                 "claude.env line %d: the value of %s holds a space, a control character or a "
                 "non-ASCII byte",
                 line, name);
    else
        return 0;
    return -1;
}

/* One line without its '\n'; empty lines and comments are skipped. */
static int parse_line(parse_state *ps, int line, const char *p, size_t n)
{
    if (n == 0 || p[0] == '#')
        return 0;
    const char *eq = memchr(p, '=', n);
    if (eq == NULL) {
        snprintf(ps->err, ps->errlen, "claude.env line %d: no \"=\" (want KEY=VALUE)", line);
        return -1;
    }
    size_t key_len = (size_t)(eq - p);
    int k = key_lookup(p, key_len);
    if (k < 0)
        return refuse_key(ps, line, p, key_len);
    if (ps->line_of[k] != 0) {
        snprintf(ps->err, ps->errlen, "claude.env line %d: key \"%s\" repeated (first on line %d)",
                 line, key_names[k], ps->line_of[k]);
        return -1;
    }
    const char *value = eq + 1;
    size_t value_len = n - key_len - 1;
    if (check_value(ps, line, k, value, value_len) < 0)
        return -1;
    memcpy(ps->env->value[k], value, value_len);
    ps->env->value[k][value_len] = '\0';
    ps->env->has[k] = true;
    ps->line_of[k] = line;
    return 0;
}

int claude_env_parse(const char *text, size_t len, claude_env *out, char *err, size_t errlen)
{
    parse_state ps = {.env = out, .err = err, .errlen = errlen};
    claude_env_init(out);
    if (len > CLAUDE_ENV_FILE_MAX) {
        snprintf(err, errlen, "claude.env is larger than %d bytes", CLAUDE_ENV_FILE_MAX);
        return -1;
    }
    int line = 1;
    for (size_t start = 0; start < len; line++) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t n = nl ? (size_t)(nl - (text + start)) : len - start;
        if (parse_line(&ps, line, text + start, n) < 0)
            goto fail;
        start += n + 1;
    }
    int key_line = ps.line_of[CLAUDE_API_KEY], token_line = ps.line_of[CLAUDE_OAUTH_TOKEN];
    if (key_line && token_line) {
        snprintf(err, errlen,
                 "claude.env line %d: %s and %s cannot both be set (the other is on line %d)",
                 key_line > token_line ? key_line : token_line, key_names[CLAUDE_API_KEY],
                 key_names[CLAUDE_OAUTH_TOKEN], key_line > token_line ? token_line : key_line);
        goto fail;
    }
    return 0;
fail:
    claude_env_wipe(out);
    return -1;
}

/* ---- encoding ---- */

char *claude_env_encode(const claude_env *env, size_t *len)
{
    if (env->has[CLAUDE_API_KEY] && env->has[CLAUDE_OAUTH_TOKEN])
        return NULL;
    size_t cap = 1, used = 0;
    for (int k = 0; k < CLAUDE_ENV_KEYS; k++)
        if (env->has[k])
            cap += strlen(key_names[k]) + 1 + strlen(env->value[k]) + 1;
    char *text = malloc(cap);
    if (text == NULL)
        return NULL;
    for (int k = 0; k < CLAUDE_ENV_KEYS; k++)
        if (env->has[k])
            used +=
                (size_t)snprintf(text + used, cap - used, "%s=%s\n", key_names[k], env->value[k]);
    text[used] = '\0';
    if (len)
        *len = used;
    return text;
}

/* ---- the file ---- */

/* Opens path without following a symlink or blocking on a FIFO, and checks
 * on the descriptor that it is a regular file. 0 absent, 1 open, -1 err. */
static int open_regular(const char *path, int *fd_out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        snprintf(err, errlen, "claude.env: %s: %s", path,
                 errno == ELOOP ? "is a symbolic link (refused)" : strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "claude.env: %s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077)
        log_warn("%s is readable by others (mode %03o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
    *fd_out = fd;
    return 1;
}

int claude_env_load(const char *path, claude_env *out, char *err, size_t errlen)
{
    int fd = -1;
    claude_env_init(out);
    int rc = open_regular(path, &fd, err, errlen);
    if (rc <= 0)
        return rc;
    char *buf = malloc(CLAUDE_ENV_FILE_MAX + 1);
    ssize_t n = buf ? read_full(fd, buf, CLAUDE_ENV_FILE_MAX + 1, false) : -1;
    int saved = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "claude.env: read %s: %s", path, strerror(saved));
        rc = -1;
    } else if (claude_env_parse(buf, (size_t)n, out, err, errlen) < 0) {
        rc = -1;
    }
    if (buf != NULL)
        explicit_bzero(buf, CLAUDE_ENV_FILE_MAX + 1);
    free(buf);
    return rc;
}

int claude_env_save(const char *path, const claude_env *env, char *err, size_t errlen)
{
    size_t len;
    char *text = claude_env_encode(env, &len);
    if (text == NULL) {
        snprintf(err, errlen, "claude.env: out of memory or both secrets given");
        return -1;
    }
    int rc = atomic_write_file(path, text, len, 0600, KEEP_OWNER, 0);
    if (rc < 0)
        disk_error(err, errlen, errno, "write %s", path);
    explicit_bzero(text, len);
    free(text);
    return rc;
}

int claude_env_remove(const char *path, char *err, size_t errlen)
{
    char dir[PATH_BUF];
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "remove %s: %s", path, strerror(errno));
        return -1;
    }
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        snprintf(err, errlen, "remove %s: path too long", path);
        return -1;
    }
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 ? fsync(fd) : -1;
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        snprintf(err, errlen, "remove %s: sync its directory: %s", path, strerror(errno));
    return rc;
}

void claude_env_hint(const char *secret, char *out, size_t size)
{
    size_t len = strlen(secret);
    const char *tail = len >= CLAUDE_ENV_HINT_MIN ? secret + len - HINT_TAIL : "";
    snprintf(out, size, "\xe2\x80\xa6%s", tail); /* U+2026 HORIZONTAL ELLIPSIS */
}
