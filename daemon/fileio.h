#pragma once

/* fileio: small file helpers on directory fds, as systemd's fileio.c. Every function returns ≥ 0
 * or -errno, never logs. */

#include <stdbool.h>
#include <stddef.h>

/* write(2) until all n bytes are written, EINTR retried. */
int write_all(int fd, const void *buf, size_t n);

/* Replaces name in dir_fd with text (mode 0644 whatever the umask), atomically: a temporary dot
 * file ".#NAME.RANDOM" beside it (dot files are what a directory reader skips), fsync, rename,
 * then an fsync of the directory. Returns -errno if name is left as it was (the temporary file
 * removed). Else 0, and in *ret_sync_error (if not NULL) 0, or the directory fsync's -errno: the
 * rename is in place for every reader all the same, only its durability across a crash is in
 * doubt, which is for the caller to tell. */
int write_file_atomic(int dir_fd, const char *name, const char *text, int *ret_sync_error);

/* Reads fd to its end, EINTR retried, at most max bytes: -EFBIG beyond (one byte more is asked
 * for, to tell "too large" from "exactly max"). The buffer starts at size_hint + 1 bytes (a
 * file's st_size; at most max + 1) and doubles up to max + 1. Returns the bytes NUL-terminated
 * in *ret and their number, which may include NUL bytes, in *ret_size. */
int read_full_fd(int fd, size_t max, size_t size_hint, char **ret, size_t *ret_size);

/* Reads the regular file name in dir_fd (not following a symlink), at most max bytes: -EFBIG
 * beyond, -EBADMSG if it holds a NUL byte. Returns the text NUL-terminated in *ret. */
int read_file_at(int dir_fd, const char *name, size_t max, char **ret);

/* Opens the directory path below root_fd (a leading "/" is root_fd's own; "" or "/" is root_fd's
 * directory itself), creating what is missing (mode 0755) if create. Returns the fd in *ret. */
int open_dir_at(int root_fd, const char *path, bool create, int *ret);
