#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"

int write_all(int fd, const void *buf, size_t n) {
        const char *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int write_file_atomic(int dir_fd, const char *name, const char *text, int *ret_sync_error) {
        _cleanup_close_ int fd = -EBADF;
        char tmp[NAME_MAX + 1];
        int r;

        for (int attempt = 0;; attempt++) {
                uint64_t rnd;

                if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd)) {
                        struct timespec ts;

                        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                        rnd = (uint64_t) ts.tv_nsec ^ ((uint64_t) getpid() << 32) ^ (uint64_t) attempt;
                }
                if (snprintf(tmp, sizeof(tmp), ".#%.200s.%016llx", name, (unsigned long long) rnd) >= (int) sizeof(tmp))
                        return -ENAMETOOLONG;
                fd = openat(dir_fd, tmp, O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC|O_NOFOLLOW, 0644);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || attempt >= 16)
                        return -errno;
        }

        r = write_all(fd, text, strlen(text));
        if (r >= 0 && fchmod(fd, 0644) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        r = fsync(dir_fd) < 0 ? -errno : 0;
        if (ret_sync_error)
                *ret_sync_error = r;
        return 0;
}

int read_full_fd(int fd, size_t max, size_t size_hint, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, size = (size_hint < max ? size_hint : max) + 1;

        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;

                if (n == size) {
                        if (n > max)
                                return -EFBIG;
                        size = size > (max + 1) / 2 ? max + 1 : size * 2;
                        char *p = realloc(buf, size + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                k = read(fd, buf + n, size - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int read_file_at(int dir_fd, const char *name, size_t max, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n;
        int r;

        fd = openat(dir_fd, name, O_RDONLY|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        r = read_full_fd(fd, max, (size_t) st.st_size, &buf, &n);
        if (r < 0)
                return r;
        if (memchr(buf, '\0', n))
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        return 0;
}

int open_dir_at(int root_fd, const char *path, bool create, int *ret) {
        _cleanup_free_ char *rel = NULL;
        int fd;

        while (*path == '/')
                path++;
        rel = strdup(*path ? path : ".");
        if (!rel)
                return -ENOMEM;

        fd = openat(root_fd, rel, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create) {
                for (char *p = rel;; p++) {
                        char c = *p;

                        if (c != '/' && c != '\0')
                                continue;
                        *p = '\0';
                        if (mkdirat(root_fd, rel, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *p = c;
                        if (c == '\0')
                                break;
                }
                fd = openat(root_fd, rel, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        }
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}
