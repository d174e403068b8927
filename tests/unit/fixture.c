#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fixture.h"

const char *fixture_dir(void) {
        const char *d = getenv("VFIOPM_FIXTURES");

        return d && d[0] ? d : VFIOPM_FIXTURES_DEFAULT;
}

int fixture_open(const char *name, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/%s", fixture_dir(), name) < 0)
                return -ENOMEM;

        fd = open(path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0)
                return -errno;

        *ret_fd = fd;
        return 0;
}

static int write_all(int fd, const char *p, size_t size) {
        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= (size_t) k;
        }
        return 0;
}

static int copy_file_at(int src_dirfd, const char *name, int dst_dirfd) {
        _cleanup_close_ int src = -EBADF, dst = -EBADF;
        char buf[8192];

        src = openat(src_dirfd, name, O_RDONLY|O_CLOEXEC|O_NOFOLLOW);
        if (src < 0)
                return -errno;

        /* 0644 whatever the source says: the source may be a read-only srcdir. */
        dst = openat(dst_dirfd, name, O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC|O_NOFOLLOW, 0644);
        if (dst < 0)
                return -errno;

        for (;;) {
                ssize_t k = read(src, buf, sizeof(buf));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return 0;

                int r = write_all(dst, buf, (size_t) k);
                if (r < 0)
                        return r;
        }
}

static int copy_tree_at(int src_dirfd, int dst_dirfd) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        fd = openat(src_dirfd, ".", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }

        while ((errno = 0, de = readdir(d))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;

                if (fstatat(src_dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;

                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub_src = -EBADF, sub_dst = -EBADF;

                        if (mkdirat(dst_dirfd, de->d_name, 0755) < 0)
                                return -errno;
                        sub_src = openat(src_dirfd, de->d_name, O_RDONLY|O_DIRECTORY|O_CLOEXEC|O_NOFOLLOW);
                        if (sub_src < 0)
                                return -errno;
                        sub_dst = openat(dst_dirfd, de->d_name, O_RDONLY|O_DIRECTORY|O_CLOEXEC|O_NOFOLLOW);
                        if (sub_dst < 0)
                                return -errno;
                        r = copy_tree_at(sub_src, sub_dst);
                } else if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t k = readlinkat(src_dirfd, de->d_name, target, sizeof(target) - 1);
                        if (k < 0)
                                return -errno;
                        target[k] = '\0';
                        r = symlinkat(target, dst_dirfd, de->d_name) < 0 ? -errno : 0;
                } else if (S_ISREG(st.st_mode))
                        r = copy_file_at(src_dirfd, de->d_name, dst_dirfd);
                else
                        r = -EBADFD;
                if (r < 0)
                        return r;
        }

        return errno > 0 ? -errno : 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

FixtureTmp *fixture_tmp_free(FixtureTmp *t) {
        if (!t)
                return NULL;

        safe_close(t->fd);
        if (t->path)
                (void) nftw(t->path, remove_one, 16, FTW_DEPTH|FTW_PHYS);
        free(t->path);
        free(t);
        return NULL;
}

int fixture_tmp_new(const char *name, FixtureTmp **ret) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        const char *tmp = getenv("TMPDIR");
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->fd = -EBADF;

        if (asprintf(&t->path, "%s/vfiopm-test.XXXXXX", tmp && tmp[0] ? tmp : "/tmp") < 0) {
                t->path = NULL;
                return -ENOMEM;
        }
        if (!mkdtemp(t->path)) {
                r = -errno;
                free(t->path);
                t->path = NULL;         /* nothing was created: nothing to remove */
                return r;
        }

        t->fd = open(t->path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (t->fd < 0)
                return -errno;

        if (name) {
                _cleanup_close_ int src = -EBADF;

                r = fixture_open(name, &src);
                if (r < 0)
                        return r;
                r = copy_tree_at(src, t->fd);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(t);
        return 0;
}

static int mkdir_parents_at(int dirfd, const char *path) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;

        for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdirat(dirfd, p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

int fixture_write(int dirfd, const char *path, const void *data, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = mkdir_parents_at(dirfd, path);
        if (r < 0)
                return r;

        fd = openat(dirfd, path, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC|O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;

        return write_all(fd, data, size);
}

int fixture_notify_socket(const FixtureTmp *t, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", t->path) >= (int) sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        fd = socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (setenv("NOTIFY_SOCKET", sa.sun_path, 1) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}
