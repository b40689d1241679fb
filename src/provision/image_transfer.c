#include "provision/image_transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "provision/digest.h"
#include "common/layout.h"
#include "provision/progress.h"

#define ID_OUTPUT_MAX 4096
#define LOAD_OUTPUT_MAX 65536
#define IMAGE_MAX_BYTES (64ULL << 30) /* no session image comes near this */
#define REMOTE_TMP_FMT "/tmp/convocate-image-%s.tar.gz"

extern char **environ;

bool image_tag_is_valid(const char *tag)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:@-";
    size_t n = strlen(tag);
    return n > 0 && n <= IMAGE_TAG_MAX && tag[0] != '-' && strspn(tag, ok) == n;
}

/* "sha256:<64 hex>" from `docker image inspect --format {{.Id}}` output. */
static int parse_image_id(const char *out, char *id, size_t size)
{
    size_t n = out != NULL ? strcspn(out, "\r\n") : 0;
    if (n < 8 || n >= size || strncmp(out, "sha256:", 7) != 0 ||
        strspn(out + 7, "0123456789abcdef") != n - 7)
        return -1;
    memcpy(id, out, n);
    id[n] = '\0';
    return 0;
}

int image_id(runner *r, const char *tag, char *id, size_t size)
{
    char *argv[] = {"docker", "image", "inspect", "--format", "{{.Id}}", (char *)tag, NULL};
    char *out = NULL, err[512];
    int status = r->ops->run(r, argv, &out, ID_OUTPUT_MAX, err, sizeof err);
    int rc = status == 0 ? parse_image_id(out, id, size) : -1;
    free(out);
    return rc;
}

/* The ID this machine's engine gives tag: image_id through a local runner. */
static int local_image_id(const char *tag, char *id, size_t size)
{
    char err[256];
    runner *here = runner_local_new(NULL, err, sizeof err);
    int rc = here != NULL ? image_id(here, tag, id, size) : -1;
    runner_free(here);
    return rc;
}

/* The ID the target's engine gives tag; "" when it has none (or has no
 * engine: the load step says so precisely). */
static void target_image_id(runner *r, const char *tag, char *id, size_t size)
{
    if (image_id(r, tag, id, size) < 0)
        id[0] = '\0';
}

int image_check_local(plan *p, const char *tag)
{
    char id[128];
    if (local_image_id(tag, id, sizeof id) == 0)
        return 0;
    return plan_fail(p, "image",
                     "%s is not in this machine's docker engine; build it first "
                     "(scripts/build-image.sh) or name another with --image",
                     tag);
}

/* ---- docker save | gzip, hashed on the way to a temporary file ---------- */

/* argv with stdin from in_fd (-1: /dev/null) and stdout to out_fd; stderr
 * stays ours, so the engine's own complaint reaches the operator. */
static pid_t spawn_stage(char *const argv[], int in_fd, int out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in_fd < 0)
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    else
        posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Copies the pipe into fd while hashing; the byte count in *size. */
static int drain_hashed(int in, int fd, char hex[SHA256_HEX_LEN + 1], uint64_t *size, char *err,
                        size_t errlen)
{
    digest_sha256 *d = digest_begin();
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char buf[65536];
    *size = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            break;
        if (n < 0 || write_all(fd, buf, (size_t)n) < 0 || digest_update(d, buf, (size_t)n) < 0) {
            snprintf(err, errlen, "writing the image archive: %s", strerror(errno));
            digest_end(d, hex);
            return -1;
        }
        *size += (uint64_t)n;
        if (*size > IMAGE_MAX_BYTES) {
            snprintf(err, errlen, "the image archive passed %llu bytes; refusing",
                     (unsigned long long)IMAGE_MAX_BYTES);
            digest_end(d, hex);
            return -1;
        }
    }
    if (fsync(fd) < 0 || digest_end(d, hex) < 0) {
        snprintf(err, errlen, "finishing the image archive: %s", strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct {
    char path[64]; /* the local archive */
    char hex[SHA256_HEX_LEN + 1];
    uint64_t size;
} archive;

/* docker save TAG | gzip into a new temporary file: two processes joined
 * by a pipe, no shell. gzip --fast: the CPU, not the link, is what a 2-core
 * host waits on, and the archive is transient. */
static int save_archive(const char *tag, archive *a, char *err, size_t errlen)
{
    const char *tmpdir = getenv("TMPDIR");
    if (tmpdir == NULL || tmpdir[0] != '/' || strlen(tmpdir) > 32)
        tmpdir = "/tmp";
    snprintf(a->path, sizeof a->path, "%s/convocate-image-XXXXXX", tmpdir);
    int fd = mkostemp(a->path, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "mkstemp in %s: %s", tmpdir, strerror(errno));
        a->path[0] = '\0';
        return -1;
    }
    int save_pipe[2] = {-1, -1}, gzip_pipe[2] = {-1, -1};
    pid_t saver = -1, gzipper = -1;
    int rc = -1;
    char *save_argv[] = {"docker", "save", (char *)tag, NULL};
    char *gzip_argv[] = {"gzip", "--fast", "-c", NULL};
    if (pipe2(save_pipe, O_CLOEXEC) < 0 || pipe2(gzip_pipe, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto out;
    }
    saver = spawn_stage(save_argv, -1, save_pipe[1]);
    if (saver > 0)
        gzipper = spawn_stage(gzip_argv, save_pipe[0], gzip_pipe[1]);
    /* Only the children hold the write ends now, so EOF reaches us. */
    close(save_pipe[0]);
    close(save_pipe[1]);
    close(gzip_pipe[1]);
    save_pipe[0] = save_pipe[1] = gzip_pipe[1] = -1;
    if (saver < 0 || gzipper < 0) {
        snprintf(err, errlen, "cannot run %s: %s", saver < 0 ? "docker" : "gzip", strerror(errno));
        goto out;
    }
    rc = drain_hashed(gzip_pipe[0], fd, a->hex, &a->size, err, errlen);
out:
    for (int i = 0; i < 2; i++) {
        if (save_pipe[i] >= 0)
            close(save_pipe[i]);
        if (gzip_pipe[i] >= 0)
            close(gzip_pipe[i]);
    }
    int save_status = saver > 0 ? wait_status(saver) : -1;
    int gzip_status = gzipper > 0 ? wait_status(gzipper) : -1;
    if (rc == 0 && (save_status != 0 || gzip_status != 0)) {
        snprintf(err, errlen, "docker save %s | gzip failed (exit %d, %d)", tag, save_status,
                 gzip_status);
        rc = -1;
    }
    close(fd);
    return rc;
}

/* ---- upload, verify, load ----------------------------------------------- */

static int upload_archive(plan *p, runner *r, const archive *a, const char *dest)
{
    char err[1024];
    if (progress_upload(r, "upload", a->path, dest, 0600, 0, 0, err, sizeof err) < 0)
        return plan_fail(p, "image upload", "%s", err);
    return 0;
}

static int verify_archive(plan *p, runner *r, const archive *a, const char *dest, const char *real)
{
    char hex[SHA256_HEX_LEN + 1], err[1024];
    if (digest_target_file(r, dest, hex, err, sizeof err) < 0)
        return plan_fail(p, "image verify", "%s; the file is kept at %s on %s", err, real,
                         r->where);
    if (strcmp(hex, a->hex) != 0)
        return plan_fail(
            p, "image verify",
            "SHA-256 mismatch: sent %s, the target (%s) holds %s; nothing was loaded or "
            "stamped, the transferred file is kept at %s for inspection",
            a->hex, r->where, hex, real);
    printf("  image verify: sha256 %s matches on the target\n", hex);
    return 0;
}

/* The path goes in as "$1", never into the script text. */
static const char load_script[] = "gunzip -c -- \"$1\" | docker load";

static int load_archive(plan *p, runner *r, const char *real)
{
    char err[512], *out = NULL;
    char *argv[] = {"sh", "-c", (char *)load_script, "sh", (char *)real, NULL};
    int status = r->ops->run(r, argv, &out, LOAD_OUTPUT_MAX, err, sizeof err);
    if (status != 0) {
        char line[600];
        runner_output_last_line(status < 0 ? err : out, line, sizeof line);
        free(out);
        return plan_fail(p, "image load",
                         "gunzip | docker load on %s failed (exit %d): %s; is docker installed "
                         "and running there? The verified file is kept at %s",
                         r->where, status, line, real);
    }
    printf("  image load: %s", out != NULL && *out ? out : "done\n");
    free(out);
    return 0;
}

static void remove_target_file(runner *r, const char *real)
{
    char err[512];
    char *argv[] = {"rm", "-f", "--", (char *)real, NULL};
    if (r->ops->run(r, argv, NULL, 0, err, sizeof err) != 0)
        fprintf(stderr, "  warning: could not remove %s on %s\n", real, r->where);
}

/* Whether current-image on the target already names tag. */
static bool stamped_with(runner *r, const char *tag)
{
    char *text = NULL, err[256];
    size_t len;
    if (r->ops->read_file(r, AGENT_CURRENT_IMAGE, 4096, &text, &len, err, sizeof err) < 0)
        return false;
    text[strcspn(text, "\r\n")] = '\0';
    bool same = strcmp(text, tag) == 0;
    free(text);
    return same;
}

static int ship(plan *p, runner *r, const char *tag, const char *local_id)
{
    char err[1024], dest[128], real[PATH_BUF];
    archive a = {0};
    printf("  image save: docker save %s | gzip\n", tag);
    fflush(stdout);
    int rc = save_archive(tag, &a, err, sizeof err);
    if (rc < 0) {
        rc = plan_fail(p, "image save", "%s", err);
        goto out;
    }
    printf("  image save: %.1f MiB, sha256 %s\n", (double)a.size / (1024.0 * 1024.0), a.hex);
    snprintf(dest, sizeof dest, REMOTE_TMP_FMT, a.hex);
    if (runner_real_path(r, dest, real, sizeof real) < 0) {
        rc = plan_fail(p, "image upload", "the root path is too long");
        goto out;
    }
    printf("  image upload: to %s on %s\n", real, r->where);
    fflush(stdout);
    rc = upload_archive(p, r, &a, dest);
    if (rc == 0)
        rc = verify_archive(p, r, &a, dest, real);
    if (rc == 0)
        rc = load_archive(p, r, real);
    if (rc == 0) {
        char loaded[128];
        target_image_id(r, tag, loaded, sizeof loaded);
        if (strcmp(loaded, local_id) != 0)
            rc = plan_fail(p, "image load",
                           "after the load %s holds %s as %s, not %s; the file is kept at %s",
                           r->where, tag, loaded[0] ? loaded : "nothing", local_id, real);
    }
    if (rc == 0)
        remove_target_file(r, real);
out:
    if (a.path[0] != '\0')
        unlink(a.path);
    return rc;
}

int image_transfer_step(plan *p, runner *r, const char *tag)
{
    char step[IMAGE_TAG_MAX + 16], local_id[128], remote_id[128];
    snprintf(step, sizeof step, "image %s", tag);
    if (local_image_id(tag, local_id, sizeof local_id) < 0)
        return image_check_local(p, tag);
    target_image_id(r, tag, remote_id, sizeof remote_id);
    bool present = strcmp(remote_id, local_id) == 0;
    if (present && stamped_with(r, tag)) {
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    step_outcome outcome = present || remote_id[0] != '\0' ? STEP_UPDATED : STEP_CREATED;
    if (!p->dry_run && ship(p, r, tag, local_id) < 0)
        return -1;
    plan_report(p, step, outcome);
    return 0;
}
