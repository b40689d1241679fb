#include "shell/orphans.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/paths.h"
#include "common/ids.h"

#define ERR_LEN 256

/* Reads up to len bytes of fd into a fresh NUL-terminated buffer. */
static char *read_fd_exact(int fd, size_t len, size_t *got)
{
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return NULL;
    *got = 0;
    while (*got < len) {
        ssize_t n = read(fd, buf + *got, len - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a file that shrank meanwhile: parse what is there */
        *got += (size_t)n;
    }
    buf[*got] = '\0';
    return buf;
}

/* Opens <dfd>/<uuid>/session.json without following a symlink at either
 * step (the lstat before it could be raced); O_NONBLOCK so a FIFO planted
 * there cannot hang the open. Returns the fd or -1 with err set. */
static int open_session_json(int dfd, const char *uuid, char *err)
{
    int home = openat(dfd, uuid, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (home < 0) {
        snprintf(err, ERR_LEN, "session directory: %s", strerror(errno));
        return -1;
    }
    int fd = openat(home, "session.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int saved = errno;
    close(home);
    if (fd < 0)
        snprintf(err, ERR_LEN, "session.json: %s", strerror(saved));
    return fd;
}

/* The text of <dfd>/<uuid>/session.json, at most ORPHAN_JSON_MAX bytes, or
 * NULL with err saying why. */
static char *read_session_json(int dfd, const char *uuid, size_t *len, char *err)
{
    int fd = open_session_json(dfd, uuid, err);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *text = NULL;
    if (fstat(fd, &st) < 0)
        snprintf(err, ERR_LEN, "session.json: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(err, ERR_LEN, "session.json: not a regular file");
    else if (st.st_size > ORPHAN_JSON_MAX)
        snprintf(err, ERR_LEN, "session.json: too large (over %d bytes)", ORPHAN_JSON_MAX);
    else if ((text = read_fd_exact(fd, (size_t)st.st_size, len)) == NULL)
        snprintf(err, ERR_LEN, "session.json: out of memory");
    close(fd);
    return text;
}

/* session.json as an object, or NULL with err saying what is wrong with it. */
static json_t *parse_session_json(int dfd, const char *uuid, char *err)
{
    size_t len = 0;
    char *text = read_session_json(dfd, uuid, &len, err);
    if (text == NULL)
        return NULL;
    json_error_t je;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (obj == NULL) {
        snprintf(err, ERR_LEN, "session.json: line %d: %.180s", je.line, je.text);
    } else if (!json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
        snprintf(err, ERR_LEN, "session.json: not a JSON object");
    }
    return obj;
}

/* One orphan's session object, shaped like an agent's list entry. */
static json_t *orphan_object(int dfd, const char *uuid)
{
    char err[ERR_LEN] = "";
    json_t *obj = parse_session_json(dfd, uuid, err);
    if (obj == NULL && (obj = json_object()) == NULL)
        return NULL;
    /* The directory's name is the identity migrate-session acts on, whatever
     * the file inside claims. */
    if (json_object_set_new(obj, "uuid", json_string(uuid)) < 0 ||
        json_object_set_new(obj, "agent", json_string(ORPHAN_AGENT)) < 0 ||
        json_object_set_new(obj, "running", json_false()) < 0 ||
        json_object_set_new(obj, "attached", json_integer(0)) < 0 ||
        json_object_set_new(obj, "locked", json_false()) < 0 ||
        json_object_set_new(obj, "state", json_string("O")) < 0 ||
        (err[0] && json_object_set_new(obj, "error", json_string(err)) < 0)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* A canonical UUIDv4 name (checked before it is used in any path) that is a
 * directory itself, not a symlink to one. */
static bool is_orphan_dir(int dfd, const char *name)
{
    struct stat st;
    return uuid_v4_is_valid(name) && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISDIR(st.st_mode);
}

json_t *orphans_scan_dir(const char *dir)
{
    json_t *out = json_array();
    if (out == NULL)
        return NULL;
    DIR *d = opendir(dir);
    if (d == NULL)
        return out; /* no /home/claude on this shell (the usual case): no orphans */
    struct dirent *de;
    /* Every entry counts toward the bound, matching or not (see ORPHAN_SCAN_MAX). */
    for (size_t seen = 0; seen < ORPHAN_SCAN_MAX && (de = readdir(d)) != NULL; seen++) {
        if (!is_orphan_dir(dirfd(d), de->d_name))
            continue;
        json_t *o = orphan_object(dirfd(d), de->d_name);
        if (o == NULL || json_array_append_new(out, o) < 0) {
            closedir(d);
            json_decref(out);
            return NULL;
        }
    }
    closedir(d);
    return out;
}

json_t *orphans_scan(void)
{
    char dir[PATH_BUF];
    if (root_path(dir, sizeof dir, "/home/claude") < 0)
        return json_array(); /* a root too long for any path holds no orphans we can reach */
    return orphans_scan_dir(dir);
}

bool session_is_orphan(json_t *s)
{
    const char *state = json_string_value(json_object_get(s, "state"));
    return state && strcmp(state, "O") == 0;
}

void orphan_refusal(char *out, size_t size, const char *name, const char *uuid)
{
    snprintf(out, size,
             "session \"%s\" (%s) is an orphan on the shell host: no agent has it, so it cannot "
             "be acted on; move it to an agent with '" ORPHAN_MIGRATE_CMD "%s'",
             name, uuid, uuid);
}
