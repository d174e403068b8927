#pragma once

/* vfio: the kernel interface. Opens ("holds") a VFIO device, registers its request eventfd, and
 * issues the three low-power features; nothing else talks to /dev/vfio or /dev/iommu.
 *
 * Two paths, one interface:
 *   - group + container: /dev/vfio/vfio, /dev/vfio/N (N from the device's iommu_group link),
 *     VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU, else VFIO_TYPE1_IOMMU), VFIO_GROUP_GET_DEVICE_FD(name);
 *     one group fd shared by the held devices of that group, and one container shared by every
 *     type1 group (a group the kernel will not put there, and each no-IOMMU group, get their own).
 *   - cdev + iommufd: /dev/vfio/devices/vfioX (X from the device's vfio-dev/vfioX child),
 *     /dev/iommu, VFIO_DEVICE_BIND_IOMMUFD, IOMMU_IOAS_ALLOC, VFIO_DEVICE_ATTACH_IOMMUFD_PT;
 *     chosen where /dev/vfio/devices exists (Debian's kernels have neither, so this path is tested
 *     through a fake VfioSys).
 * Every system call goes through a VfioSys, so unit tests run both paths against a fake kernel.
 *
 * The rule the daemon keeps (SPEC §1: every ioctl on the device fd wakes it): while a device is
 * in low power, the only ioctls issued on it are LOW_POWER_EXIT and another entry. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"

/* The system calls vfio.c makes; vfio_sys_kernel() gives the real ones. Each returns ≥ 0 or
 * -errno (not -1/errno). ioctl's arg is the pointer or, for requests that take a value
 * (VFIO_SET_IOMMU, VFIO_CHECK_EXTENSION), the value cast to a pointer.
 * The eventfds made through eventfd() must be real eventfds whatever the VfioSys (a fake makes
 * them with eventfd(2) too): the event loop polls them, and vfio.c reads them with read(2). */
typedef struct VfioSys {
        int (*openat)(void *userdata, int dirfd, const char *path, int flags);
        int (*ioctl)(void *userdata, int fd, unsigned long request, void *arg);
        int (*eventfd)(void *userdata, unsigned initval, int flags);
        int (*close)(void *userdata, int fd);
        void *userdata;
} VfioSys;

const VfioSys *vfio_sys_kernel(void);

typedef enum VfioPath {
        VFIO_PATH_GROUP,        /* group + container */
        VFIO_PATH_CDEV,         /* cdev + iommufd */
        _VFIO_PATH_MAX,
        _VFIO_PATH_INVALID = -EINVAL,
} VfioPath;

/* "group", "cdev" */
const char *vfio_path_to_string(VfioPath p);
VfioPath vfio_path_from_string(const char *s);

typedef struct VfioBackend VfioBackend;
typedef struct VfioDevice VfioDevice;

/* sysfs_fd: /sys (or a fixture tree laid out like it); dev_fd: /dev (or a fixture). The
 * backend borrows both fds and sys. path: _VFIO_PATH_INVALID picks cdev where dev_fd has
 * vfio/devices (looked up through sys->openat), else group.
 * The held devices of one backend share: on the group path one group fd per IOMMU group and one
 * container for the type1 groups, on the cdev path one iommufd with one IOAS (devices of one IOMMU
 * group must share both). Each is opened with the first device that needs it and closed with the
 * last. */
int vfio_backend_new(const VfioSys *sys, int sysfs_fd, int dev_fd, VfioPath path, VfioBackend **ret);
/* Drops the caller's reference: devices still open keep what they need (sys must stay valid
 * until the last is closed), so the order of freeing does not matter. */
VfioBackend *vfio_backend_free(VfioBackend *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(VfioBackend *, vfio_backend_free)
VfioPath vfio_backend_path(const VfioBackend *b);

/* Holds the device named name (its directory is bus/<bus>/devices/<name> under sysfs_fd; bus is
 * "pci" or "platform"): opens it, checks that it is one device of the kind expected, creates
 * the wake-up eventfd and registers the request eventfd (VFIO_PCI_REQ_IRQ_INDEX for PCI, the
 * device's own request index otherwise, found with VFIO_DEVICE_GET_IRQ_INFO: the highest index
 * offering one eventfd that is not a maskable device interrupt — index 0 on vfio_pm_sim).
 * Every ioctl this module issues on the device fd besides the low-power features happens here,
 * before any entry. All fds are O_CLOEXEC, the eventfds also EFD_NONBLOCK.
 * Errors: -EBUSY another process holds the device or its group, this backend holds the device
 * already, or its group is not viable (another device of the group is bound to a host driver:
 * retry when that changes, as for a holder); -ENODEV it has gone or is not bound to a VFIO
 * driver; -EPERM/-EACCES no access; -EOPNOTSUPP no request IRQ (the kernel could not ask for
 * the device back, so an unbind would hang: never held) or no usable IOMMU type; -EPROTO the
 * kernel describes the device unlike its bus (a PCI device without VFIO_DEVICE_FLAGS_PCI);
 * -EINVAL bad bus or name; other -errno from the kernel. On failure nothing stays open. */
int vfio_device_open(VfioBackend *b, const char *bus, const char *name, VfioDevice **ret);

/* The fds a held device hands to the service manager's file descriptor store (fdstore.h), so
 * that the next daemon adopts the device as it is (SPEC §9); and what it needs besides them. */
typedef struct VfioHeldFds {
        int device, wake, request;
        /* group path: the IOMMU group's fd, shared by the group's held devices, and the group's
         * container: the one every type1 group shares (container_shared), else its own */
        unsigned group_id;
        int group, container;
        bool container_shared;
        /* cdev path: the iommufd every held device is bound to, and the IOAS they are attached to */
        int iommufd;
        uint32_t ioas_id;
        /* the low-power entry in force, if any */
        bool entered, entered_wakeup;
        /* vfio_device_held_fds(): d is the only held device of its group, container, iommufd */
        bool group_last, container_last, iommufd_last;
} VfioHeldFds;

#define VFIO_HELD_FDS_NULL                                                                        \
        ((VfioHeldFds) { .device = -EBADF, .wake = -EBADF, .request = -EBADF, .group = -EBADF,  \
                         .container = -EBADF, .iommufd = -EBADF })

/* d's fds and state, borrowed: valid while d is held. */
void vfio_device_held_fds(const VfioDevice *d, VfioHeldFds *ret);

/* Holds name again with the fds a daemon before this one held it with, as it left it (in low
 * power, woken, or in D0): without any ioctl — one on the device fd would wake it (SPEC §1) — or
 * open. The request eventfd is still registered (the kernel keeps the trigger while the device
 * is open), the wake-up eventfd still the one of the entry in force. A group (container,
 * iommufd) the backend holds already, through a device adopted or opened before, is shared: its
 * fd may then be -EBADF, else it is closed (a copy of the same open file); one it does not hold
 * needs its fd (and the container's, unless the shared container is held). Takes every fd in
 * *fds (they are -EBADF after), also on failure, which closes them: -EBADF for a missing one,
 * -EBUSY if name is held already, -EINVAL for a bad name or a path the backend does not use. */
int vfio_device_adopt(VfioBackend *b, const char *name, VfioHeldFds *fds, VfioDevice **ret);

/* Closes the device fd (and the group/container or iommufd when it was the last user): the
 * kernel may give the device to the next opener at once. Nothing is issued first, in low power
 * or not: closing the device fd is enough (vfio_pci_core_close_device() ends any low-power entry
 * and drops the request and wake-up eventfds). Accepts NULL, returns NULL. */
VfioDevice *vfio_device_close(VfioDevice *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(VfioDevice *, vfio_device_close)

const char *vfio_device_name(const VfioDevice *d);

/* Readable when the wake-up eventfd has fired; owned by the device, the same fd for every
 * entry. */
int vfio_device_wake_fd(const VfioDevice *d);

/* Readable when the kernel asks for the device back (driver unbind, hot-unplug): the holder
 * must close it promptly. Owned by the device. */
int vfio_device_request_fd(const VfioDevice *d);

/* VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP with the wake fd (wakeup) or
 * _LOW_POWER_ENTRY. The kernel's rules stand (SPEC §1, tests/conformance/README.md): an entry
 * while a plain entry is in force is -EINVAL (exit first); an entry while a wake-up entry is in
 * force is an ioctl, so it first wakes the device and the wake fd fires once for it. */
int vfio_device_enter(VfioDevice *d, bool wakeup);

/* VFIO_DEVICE_FEATURE_LOW_POWER_EXIT; 0 with nothing in force. May itself fire the wake fd once
 * when a wake-up entry was in force and the device suspended. */
int vfio_device_exit(VfioDevice *d);

/* Reads and resets the wake-up eventfd's count: 0 (and success) when it has not fired. */
int vfio_device_read_wake(VfioDevice *d, uint64_t *ret_count);

/* Reads and resets the request eventfd's count: 0 when the kernel has not asked. */
int vfio_device_read_request(VfioDevice *d, uint64_t *ret_count);
