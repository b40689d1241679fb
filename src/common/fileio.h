/* Small, careful file helpers: atomic state writes and bounded reads. */
#ifndef CONVOCATE_COMMON_FILEIO_H
#define CONVOCATE_COMMON_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define KEEP_OWNER ((uid_t)-1)

/* Writes a state file atomically (SPEC 4): a temporary file in the same
 * directory, fsync, chmod/chown, rename over, fsync the directory. A crash at
 * any instant leaves the old or the new content. uid/gid KEEP_OWNER = no chown.
 * Returns 0 or -1 with errno set; the temporary file never survives a failure. */
int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
                      gid_t gid);

/* The same for content too large to hold in memory: fill writes up to cap
 * bytes into buf and returns the count, 0 at the end, or -1 with errno to
 * abort (the temporary file is removed). */
typedef ssize_t (*atomic_fill_fn)(void *ctx, char *buf, size_t cap);
int atomic_write_stream(const char *path, mode_t mode, uid_t uid, gid_t gid, atomic_fill_fn fill,
                        void *ctx);

/* Removes the temporaries (<path>.tmp-XXXXXXXX) that atomic writes of path
 * left when their process died between creating and renaming them. Only
 * for start-up, when nothing else writes path. Returns how many went, or
 * -1 with errno when the directory cannot be read. */
int atomic_write_leftovers_remove(const char *path);

/* Reads a whole regular file, refusing symlinks and files over max bytes
 * (errno EFBIG). *out is NUL-terminated and malloc'd; *len may be NULL. */
int read_file_bounded(const char *path, size_t max, char **out, size_t *len);

/* Reads <dirfd>/<name> when something untrusted may have put it there (a
 * session's home, SPEC 14): opened O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC so a
 * symlink is refused and a FIFO cannot hang us, then checked on the
 * descriptor: a regular file with one link, at most max bytes. On failure
 * errno says why: ELOOP symlink, EINVAL not a regular file, EMLINK more than
 * one link, EFBIG too large, or the open's own errno. *out is NUL-terminated
 * and malloc'd; *len may be NULL. */
int read_untrusted_at(int dirfd, const char *name, size_t max, char **out, size_t *len);
/* A short phrase for a read_untrusted_at() errno, for error texts. */
const char *untrusted_read_error(int err);

/* Cuts text (in place) to its first line, trailing whitespace stripped;
 * returns text. */
char *text_first_line(char *text);

/* Reads the first line of a small text file, trailing whitespace stripped. */
int read_line_file(const char *path, char *out, size_t size);

/* Writes all len bytes to fd, resuming after a signal or a short write.
 * 0, or -1 with errno set. */
int write_all(int fd, const void *data, size_t len);
/* Reads from fd until EOF or cap bytes, retrying on EINTR; the count, or -1
 * with errno. With stop_at_newline, stops after the first '\n' (reading a
 * byte at a time, so nothing past the line is consumed). */
ssize_t read_full(int fd, void *buf, size_t cap, bool stop_at_newline);

/* fsync of a directory: makes a rename or a new entry in it durable. */
int fsync_dir(const char *path);

/* mkdir -p; existing directories are left as they are. */
int mkdir_p(const char *path, mode_t mode);

#endif
