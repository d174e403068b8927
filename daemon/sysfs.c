#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"
#include "fileio.h"
#include "sysfs.h"

static int path_check(const char *path) {
        if (!path || path[0] == '\0' || path[0] == '/')
                return -EINVAL;
        return 0;
}

static int digit_value(char c, unsigned base) {
        int d;

        if (c >= '0' && c <= '9')
                d = c - '0';
        else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
        else
                return -EINVAL;

        return (unsigned) d < base ? d : -EINVAL;
}

/* strtoull() would accept blanks, signs and a second "0x"; sysfs prints none of them. Garbage
 * anywhere wins over overflow, so "99…9x" is -EINVAL. */
static int parse_u64(const char *s, unsigned base, uint64_t *ret) {
        uint64_t v = 0;
        bool overflow = false;

        if (*s == '\0')
                return -EINVAL;

        for (; *s; s++) {
                int d = digit_value(*s, base);
                if (d < 0)
                        return d;
                if (v > (UINT64_MAX - (uint64_t) d) / base)
                        overflow = true;
                else
                        v = v * base + (uint64_t) d;
        }

        if (overflow)
                return -ERANGE;
        *ret = v;
        return 0;
}

int sysfs_open_dir(int dirfd, const char *path, int *ret_fd) {
        int fd, r;

        r = path_check(path);
        if (r < 0)
                return r;

        fd = openat(dirfd, path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0)
                return -errno;

        *ret_fd = fd;
        return 0;
}

int sysfs_read_attr(int dirfd, const char *path, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t n;
        int r;

        r = path_check(path);
        if (r < 0)
                return r;

        fd = openat(dirfd, path, O_RDONLY|O_CLOEXEC|O_NOFOLLOW|O_NOCTTY);
        if (fd < 0)
                return -errno;

        /* sysfs hands out the whole attribute in the first read(); read_full_fd() loops anyway,
         * for plain files. */
        r = read_full_fd(fd, SYSFS_ATTR_MAX, SYSFS_ATTR_MAX, &buf, &n);
        if (r < 0)
                return r;
        if (memchr(buf, '\0', n))
                return -EBADMSG;
        if (n > 0 && buf[n - 1] == '\n')
                buf[n - 1] = '\0';

        *ret = TAKE_PTR(buf);
        return 0;
}

int sysfs_attr_read(SysfsAttr *a, int dirfd, const char *path, char *buf, size_t size) {
        _cleanup_close_ int once = -EBADF;
        int fd, r;
        ssize_t n;

        if (size < 2)
                return -EINVAL;
        if (a->fd == -ENOENT)
                return -ENOENT;
        fd = a->fd;
        if (fd < 0) {
                r = path_check(path);
                if (r < 0)
                        return r;
                fd = openat(dirfd, path, O_RDONLY|O_CLOEXEC|O_NOFOLLOW|O_NOCTTY);
                if (fd < 0) {
                        if (errno == ENOENT)
                                a->fd = -ENOENT;
                        return -errno;
                }
                /* kept only while fds are plenty: holding devices comes first (fd-util.h) */
                if (fd_in_lower_half(fd))
                        a->fd = fd;
                else
                        once = fd;
        }
        do
                n = pread(fd, buf, size, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                r = -errno;
                sysfs_attr_close(a);
                return r;
        }
        if ((size_t) n >= size)
                return -EFBIG;
        if (memchr(buf, '\0', n))
                return -EBADMSG;
        if (n > 0 && buf[n - 1] == '\n')
                n--;
        buf[n] = '\0';
        return 0;
}

int sysfs_attr_read_u64(SysfsAttr *a, int dirfd, const char *path, uint64_t *ret) {
        char buf[32];
        int r;

        r = sysfs_attr_read(a, dirfd, path, buf, sizeof(buf));
        if (r < 0)
                return r;
        return parse_u64(buf, 10, ret);
}

void sysfs_attr_close(SysfsAttr *a) {
        a->fd = safe_close(a->fd);
}

int sysfs_read_u64(int dirfd, const char *path, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = sysfs_read_attr(dirfd, path, &s);
        if (r < 0)
                return r;

        return parse_u64(s, 10, ret);
}

int sysfs_read_hex(int dirfd, const char *path, unsigned *ret) {
        _cleanup_free_ char *s = NULL;
        const char *p;
        uint64_t v;
        int r;

        r = sysfs_read_attr(dirfd, path, &s);
        if (r < 0)
                return r;

        p = s;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
                p += 2;

        r = parse_u64(p, 16, &v);
        if (r < 0)
                return r;
        if (v > UINT_MAX)
                return -ERANGE;

        *ret = (unsigned) v;
        return 0;
}

int sysfs_write_attr(int dirfd, const char *path, const char *value) {
        _cleanup_close_ int fd = -EBADF;
        size_t len;
        ssize_t k;
        int r;

        r = path_check(path);
        if (r < 0)
                return r;
        if (!value)
                return -EINVAL;

        /* No O_CREAT: a missing attribute is -ENOENT, as on sysfs. O_TRUNC is what a shell's
         * "echo on >power/control" does; sysfs ignores it, plain files in test trees need it. */
        fd = openat(dirfd, path, O_WRONLY|O_TRUNC|O_CLOEXEC|O_NOFOLLOW|O_NOCTTY);
        if (fd < 0)
                return -errno;

        /* One write() per value: a sysfs store sees each write() as a separate value. */
        len = strlen(value);
        do
                k = write(fd, value, len);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        if ((size_t) k != len)
                return -EIO;

        return 0;
}

int sysfs_read_link_name(int dirfd, const char *path, char **ret) {
        char target[PATH_MAX];
        const char *name;
        ssize_t k;
        char *s;
        int r;

        r = path_check(path);
        if (r < 0)
                return r;

        k = readlinkat(dirfd, path, target, sizeof(target));
        if (k < 0)
                return -errno;
        if ((size_t) k >= sizeof(target))
                return -ENAMETOOLONG;

        while (k > 0 && target[k - 1] == '/')
                k--;
        target[k] = '\0';

        name = strrchr(target, '/');
        name = name ? name + 1 : target;
        if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return -EINVAL;

        s = strdup(name);
        if (!s)
                return -ENOMEM;

        *ret = s;
        return 0;
}
