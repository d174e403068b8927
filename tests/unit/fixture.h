#pragma once

#include <stddef.h>
#include <string.h>

#include "cleanup.h"

/* Fixture trees live in $VFIOPM_FIXTURES (set by "make check"), else in the source tree this
 * binary was built from. They may be read-only (make distcheck): write only in a FixtureTmp. */
const char *fixture_dir(void);

/* Opens the fixture directory NAME ("sysfs") read-only. */
int fixture_open(const char *name, int *ret_fd);

/* A writable scratch directory from mkdtemp() in $TMPDIR, removed with its contents when freed.
 * A failing test exits before its cleanups run and leaves its tree behind for inspection. */
typedef struct FixtureTmp {
        char *path;
        int fd;
} FixtureTmp;

/* An empty scratch tree if name is NULL, else a copy of fixture NAME (symlinks kept as links). */
int fixture_tmp_new(const char *name, FixtureTmp **ret);
FixtureTmp *fixture_tmp_free(FixtureTmp *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(FixtureTmp *, fixture_tmp_free)

/* A datagram socket bound to t's "notify", named in $NOTIFY_SOCKET: what sd_notify() sends
 * arrives there, as at the service manager's. */
int fixture_notify_socket(const FixtureTmp *t, int *ret_fd);

/* Creates or replaces the file path below dirfd, creating missing parent directories. */
int fixture_write(int dirfd, const char *path, const void *data, size_t size);

static inline int fixture_write_string(int dirfd, const char *path, const char *s) {
        return fixture_write(dirfd, path, s, strlen(s));
}
