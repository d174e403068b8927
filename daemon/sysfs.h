#pragma once

#include <stdint.h>

/* Attribute access relative to a directory fd. Every sysfs access of the daemon goes through
 * here, so tests point it at a fixture tree instead of /sys.
 *
 * dirfd is normally an fd of /sys (in tests: a fixture tree laid out like /sys) or of a device
 * directory below it. path is relative to dirfd: an absolute or empty path is -EINVAL, so
 * nothing escapes to the real /sys by accident.
 * Symlinks inside path are followed ("bus/pci/devices/0000:01:00.0/vendor" resolves through
 * sysfs's relative links); the final component of an attribute is not: attributes are regular
 * files, and a symlink there (driver, iommu_group) gives -ELOOP and is read with
 * sysfs_read_link_name(). The fd is a convention, not a sandbox: sysfs's own links use "..". */

/* Largest attribute read; sysfs attributes fit in one page. */
#define SYSFS_ATTR_MAX 4096

/* Opens a directory (the final symlink is followed, as in bus/pci/devices/NAME). */
int sysfs_open_dir(int dirfd, const char *path, int *ret_fd);

/* Reads an attribute of at most SYSFS_ATTR_MAX bytes (else -EFBIG) and strips one trailing
 * newline. Embedded NUL bytes give -EBADMSG. */
int sysfs_read_attr(int dirfd, const char *path, char **ret);

/* A decimal unsigned integer ("123\n"): -EINVAL on anything else, -ERANGE past UINT64_MAX. */
int sysfs_read_u64(int dirfd, const char *path, uint64_t *ret);

/* A hexadecimal value with optional 0x prefix ("0x8086\n"): -EINVAL on anything else, -ERANGE
 * past UINT_MAX. */
int sysfs_read_hex(int dirfd, const char *path, unsigned *ret);

/* An attribute kept open for reads that repeat (a device's power state, read on each of its
 * changes and for every D-Bus read): opened at the first read, then one pread() at offset 0 a read
 * (sysfs makes the text anew for each read from the start) instead of openat, read, read, close.
 * Kept only while fds are plenty (fd-util.h's lower half), else opened for each read. A failed
 * read closes it; the next one opens again. A missing attribute stays missing (a
 * device's attributes are there from its registration on): -ENOENT without a look, until
 * sysfs_attr_close(). */
typedef struct SysfsAttr {
        int fd;                         /* -EBADF until the first read; -ENOENT: missing */
} SysfsAttr;

#define SYSFS_ATTR_NULL ((SysfsAttr) { .fd = -EBADF })

/* Reads path below dirfd (the same path every time) into buf: at most size - 1 bytes (else
 * -EFBIG), one trailing newline stripped, NUL-terminated; embedded NUL bytes give -EBADMSG. */
int sysfs_attr_read(SysfsAttr *a, int dirfd, const char *path, char *buf, size_t size);
/* A decimal unsigned integer, as sysfs_read_u64(). */
int sysfs_attr_read_u64(SysfsAttr *a, int dirfd, const char *path, uint64_t *ret);
void sysfs_attr_close(SysfsAttr *a);

/* Writes value as given (no newline added) with one write() to an existing attribute. The kernel's
 * error comes back as -errno; a short write is -EIO. */
int sysfs_write_attr(int dirfd, const char *path, const char *value);

/* The last component of a symlink's target: "driver" gives "vfio-pci", "iommu_group" gives "12".
 * -EINVAL if path is not a symlink. */
int sysfs_read_link_name(int dirfd, const char *path, char **ret);
