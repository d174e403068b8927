#pragma once

/* fileio: small file helpers on directory fds, as systemd's fileio.c. Every function returns ≥ 0
 * or -errno, never logs. */

#include <stddef.h>

/* write(2) until all n bytes are written, EINTR retried. */
int write_all(int fd, const void *buf, size_t n);

typedef enum WriteFileFlags {
        /* a failed fsync of the directory, after the rename, is an error too */
        WRITE_FILE_DIR_SYNC_FAILS = 1 << 0,
} WriteFileFlags;

/* Replaces name in dir_fd with text (mode 0644 whatever the umask), atomically: a temporary dot
 * file ".#NAME.RANDOM" beside it (dot files are what a directory reader skips), fsync, rename,
 * then an fsync of the directory, whose failure is not an error unless flags say so: the rename
 * is in place for every reader, only its durability across a crash is in doubt. */
int write_file_atomic(int dir_fd, const char *name, const char *text, WriteFileFlags flags);

/* Reads the regular file name in dir_fd (not following a symlink), at most max bytes: -EFBIG
 * beyond, -EBADMSG if it holds a NUL byte. Returns the text NUL-terminated in *ret. */
int read_file_at(int dir_fd, const char *name, size_t max, char **ret);
