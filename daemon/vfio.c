#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fd-util.h"
#include "macro.h"
#include "sysfs.h"
#include "vfio-internal.h"
#include "vfio.h"

_Static_assert(sizeof(VfioIrqSetEventfd) == sizeof(struct vfio_irq_set) + sizeof(int32_t),
               "VfioIrqSetEventfd must be struct vfio_irq_set + one fd");
_Static_assert(offsetof(VfioFeatureLowPower, wakeup_eventfd) == VFIO_FEATURE_HEADER_SIZE,
               "the feature data follows the 8-byte header");

#define VFIO_PATH_BUF 256

/* A container on the group path: the backend's shared one, which every type1 group joins, or a
 * group's own (no-IOMMU groups, and a group the shared container refused). */
typedef struct VfioContainer {
        int fd;
        unsigned groups;                /* the groups set to it; with the last one it is closed */
} VfioContainer;

/* One IOMMU group held on the group path, shared by the held devices in it. */
typedef struct VfioGroup {
        struct VfioGroup *next;
        unsigned id;
        int group_fd;
        VfioContainer *container;
        unsigned users;
} VfioGroup;

struct VfioBackend {
        const VfioSys *sys;
        int sysfs_fd;
        int dev_fd;
        VfioPath path;
        unsigned n_ref;                 /* the owner's, plus one per open device */
        VfioGroup *groups;
        VfioContainer *shared;          /* group path: the type1 container the groups share */
        VfioDevice *devices;
        /* cdev path: one iommufd and one IOAS for every held device */
        int iommufd;
        unsigned iommufd_users;
        bool have_ioas;
        uint32_t ioas_id;
};

struct VfioDevice {
        VfioBackend *backend;
        VfioDevice *next;
        char *name;
        int fd;
        VfioGroup *group;               /* group path; NULL on the cdev path */
        bool uses_iommufd;              /* cdev path: counted in iommufd_users */
        int wake_fd;
        int request_fd;
        /* An entry was issued and no exit since (a fired wake-up entry has ended by itself):
         * only the low-power features may be issued on the fd now (SPEC §1). */
        bool entered;
        bool entered_wakeup;
};

/* ---- the real system calls ------------------------------------------------------------- */

/* A device keeps these fds for as long as it is held: never from fd-util.h's reserve. When fds
 * run out it is then the opens of devices that fail, each device `error` with the reason. */
static int kept_fd(int fd) {
        return fd_keep_or_close(fd < 0 ? -errno : fd);
}

static int kernel_openat(void *userdata, int dirfd, const char *path, int flags) {
        return kept_fd(openat(dirfd, path, flags));
}

static int kernel_ioctl(void *userdata, int fd, unsigned long request, void *arg) {
        int r = ioctl(fd, request, arg);

        if (request == VFIO_GROUP_GET_DEVICE_FD)
                return kept_fd(r);              /* a new fd */
        return r < 0 ? -errno : r;
}

static int kernel_eventfd(void *userdata, unsigned initval, int flags) {
        return kept_fd(eventfd(initval, flags));
}

static int kernel_close(void *userdata, int fd) {
        /* On Linux the fd is released even when close() fails (EINTR included). */
        return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

const VfioSys *vfio_sys_kernel(void) {
        static const VfioSys sys = {
                .openat = kernel_openat,
                .ioctl = kernel_ioctl,
                .eventfd = kernel_eventfd,
                .close = kernel_close,
        };
        return &sys;
}

static int sys_openat(const VfioBackend *b, const char *path, int flags) {
        return b->sys->openat(b->sys->userdata, b->dev_fd, path, flags);
}

static int sys_ioctl(const VfioBackend *b, int fd, unsigned long request, void *arg) {
        return b->sys->ioctl(b->sys->userdata, fd, request, arg);
}

static int sys_close(const VfioBackend *b, int fd) {
        if (fd >= 0)
                (void) b->sys->close(b->sys->userdata, fd);
        return -EBADF;
}

/* Every ioctl on a device fd goes through here. Every one of them resumes the device (SPEC §1),
 * so once an entry is in force only the low-power features pass; nothing in this module issues
 * another after open, and this keeps it so. */
static int device_ioctl(VfioDevice *d, unsigned long request, void *arg) {
        if (d->entered && request != VFIO_DEVICE_FEATURE)
                return -EBUSY;
        return sys_ioctl(d->backend, d->fd, request, arg);
}

/* ---- names ----------------------------------------------------------------------------- */

static const char *const vfio_path_table[_VFIO_PATH_MAX] = {
        [VFIO_PATH_GROUP] = "group",
        [VFIO_PATH_CDEV] = "cdev",
};

const char *vfio_path_to_string(VfioPath p) {
        if (p < 0 || p >= _VFIO_PATH_MAX)
                return NULL;
        return vfio_path_table[p];
}

VfioPath vfio_path_from_string(const char *s) {
        if (!s)
                return _VFIO_PATH_INVALID;
        for (int i = 0; i < _VFIO_PATH_MAX; i++)
                if (strcmp(vfio_path_table[i], s) == 0)
                        return (VfioPath) i;
        return _VFIO_PATH_INVALID;
}

static bool name_ok(const char *s) {
        return s && *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* bus/<bus>/devices/<name>/<attr> */
static int device_attr_path(char *buf, size_t size, const char *bus, const char *name, const char *attr) {
        int n = snprintf(buf, size, "bus/%s/devices/%s/%s", bus, name, attr);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

static int parse_unsigned(const char *s, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > 0x7fffffffUL)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* ---- backend --------------------------------------------------------------------------- */

static VfioPath detect_path(const VfioBackend *b) {
        int fd = sys_openat(b, "vfio/devices", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0)
                return VFIO_PATH_GROUP;
        (void) sys_close(b, fd);
        return VFIO_PATH_CDEV;
}

int vfio_backend_new(const VfioSys *sys, int sysfs_fd, int dev_fd, VfioPath path, VfioBackend **ret) {
        VfioBackend *b;

        if (!sys || !sys->openat || !sys->ioctl || !sys->eventfd || !sys->close || sysfs_fd < 0 ||
            dev_fd < 0 || !ret)
                return -EINVAL;
        if (path != _VFIO_PATH_INVALID && (path < 0 || path >= _VFIO_PATH_MAX))
                return -EINVAL;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->sys = sys;
        b->sysfs_fd = sysfs_fd;
        b->dev_fd = dev_fd;
        b->n_ref = 1;
        b->iommufd = -EBADF;
        b->path = path == _VFIO_PATH_INVALID ? detect_path(b) : path;

        *ret = b;
        return 0;
}

static void backend_unref(VfioBackend *b) {
        if (--b->n_ref > 0)
                return;
        /* Every device has been closed, and with the last user each group and the iommufd. */
        free(b);
}

VfioBackend *vfio_backend_free(VfioBackend *b) {
        if (b)
                backend_unref(b);
        return NULL;
}

VfioPath vfio_backend_path(const VfioBackend *b) {
        return b ? b->path : _VFIO_PATH_INVALID;
}

/* ---- group + container ------------------------------------------------------------------ */

static int iommu_group_of(const VfioBackend *b, const char *bus, const char *name, unsigned *ret) {
        _cleanup_free_ char *s = NULL;
        char path[VFIO_PATH_BUF];
        int r;

        r = device_attr_path(path, sizeof(path), bus, name, "iommu_group");
        if (r < 0)
                return r;
        r = sysfs_read_link_name(b->sysfs_fd, path, &s);
        if (r == -ENOENT || r == -ENOTDIR || r == -EINVAL)
                return -ENODEV;         /* gone, or a device without an IOMMU group: not VFIO's */
        if (r < 0)
                return r;
        return parse_unsigned(s, ret) < 0 ? -ENODEV : 0;
}

static void container_unref(VfioBackend *b, VfioContainer *c) {
        if (!c || --c->groups > 0)
                return;
        /* The last group is out: the kernel has dropped the container's IOMMU, so the next group
         * would have to set it again: start over with a new container. */
        if (b->shared == c)
                b->shared = NULL;
        c->fd = sys_close(b, c->fd);
        free(c);
}

static void group_release(VfioBackend *b, VfioGroup *g) {
        if (!g || --g->users > 0)
                return;
        for (VfioGroup **p = &b->groups; *p; p = &(*p)->next)
                if (*p == g) {
                        *p = g->next;
                        break;
                }
        /* The group first: closing it takes it out of the container. */
        g->group_fd = sys_close(b, g->group_fd);
        container_unref(b, g->container);
        free(g);
}

static int container_iommu_type(const VfioBackend *b, int container_fd, bool noiommu, unsigned long *ret) {
        static const unsigned long types[] = { VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_IOMMU };
        int r;

        if (noiommu) {
                *ret = VFIO_NOIOMMU_IOMMU;
                return 0;
        }
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                r = sys_ioctl(b, container_fd, VFIO_CHECK_EXTENSION, (void *) (uintptr_t) types[i]);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret = types[i];
                        return 0;
                }
        }
        return -EOPNOTSUPP;
}

/* Sets group_fd to a new container and the container's IOMMU: the first group of a container. */
static int container_new(VfioBackend *b, int group_fd, bool noiommu, VfioContainer **ret) {
        _cleanup_free_ VfioContainer *c = NULL;
        unsigned long type;
        int fd, r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        fd = sys_openat(b, "vfio/vfio", O_RDWR|O_CLOEXEC);
        if (fd < 0)
                return fd;

        r = sys_ioctl(b, fd, VFIO_GET_API_VERSION, NULL);
        if (r >= 0 && r != VFIO_API_VERSION)
                r = -EPROTO;
        if (r >= 0)
                r = container_iommu_type(b, fd, noiommu, &type);
        if (r >= 0)
                r = sys_ioctl(b, group_fd, VFIO_GROUP_SET_CONTAINER, &fd);
        if (r >= 0)
                r = sys_ioctl(b, fd, VFIO_SET_IOMMU, (void *) (uintptr_t) type);
        if (r < 0) {
                /* closing the group (the caller's next step) takes it out of the container */
                (void) sys_close(b, fd);
                return r;
        }
        c->fd = fd;
        c->groups = 1;
        *ret = TAKE_PTR(c);
        return 0;
}

/* Puts the group in a container: the shared one, which every type1 group can join (one fd for
 * all held groups, not one each: 1,000 devices on the default fd limit), unless the kernel refuses
 * it there (type1 attaches each group to the container's IOMMU domains or a new one; a group it
 * cannot take gets a container of its own). No-IOMMU groups never mix with IOMMU ones. */
static int group_set_container(VfioBackend *b, VfioGroup *g, bool noiommu) {
        int r;

        if (!noiommu && b->shared) {
                r = sys_ioctl(b, g->group_fd, VFIO_GROUP_SET_CONTAINER, &b->shared->fd);
                if (r >= 0) {
                        g->container = b->shared;
                        g->container->groups++;
                        return 0;
                }
        }
        r = container_new(b, g->group_fd, noiommu, &g->container);
        if (r < 0)
                return r;
        if (!noiommu && !b->shared)
                b->shared = g->container;
        return 0;
}

/* Opens group id and puts it in a container, or takes another reference on it. */
static int group_acquire(VfioBackend *b, unsigned id, VfioGroup **ret) {
        struct vfio_group_status status = { .argsz = sizeof(status) };
        char path[VFIO_PATH_BUF];
        bool noiommu = false;
        VfioGroup *g;
        int r;

        for (g = b->groups; g; g = g->next)
                if (g->id == id) {
                        g->users++;
                        *ret = g;
                        return 0;
                }

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->id = id;
        g->group_fd = -EBADF;
        g->users = 1;
        g->next = b->groups;
        b->groups = g;

        /* A second opener of a held group gets EBUSY from the kernel's open: it passes through. */
        (void) snprintf(path, sizeof(path), "vfio/%u", id);
        r = sys_openat(b, path, O_RDWR|O_CLOEXEC);
        if (r == -ENOENT) {
                /* vfio's no-IOMMU mode names the group noiommu-N */
                (void) snprintf(path, sizeof(path), "vfio/noiommu-%u", id);
                r = sys_openat(b, path, O_RDWR|O_CLOEXEC);
                noiommu = r >= 0;
                if (r == -ENOENT)
                        r = -ENODEV;
        }
        if (r < 0)
                goto fail;
        g->group_fd = r;

        r = sys_ioctl(b, g->group_fd, VFIO_GROUP_GET_STATUS, &status);
        if (r < 0)
                goto fail;
        if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
                /* another device of the group is bound to a host driver */
                r = -EBUSY;
                goto fail;
        }
        r = group_set_container(b, g, noiommu);
        if (r < 0)
                goto fail;

        *ret = g;
        return 0;

fail:
        group_release(b, g);
        return r;
}

static int open_group_path(VfioBackend *b, VfioDevice *d, const char *bus) {
        unsigned id;
        int r;

        r = iommu_group_of(b, bus, d->name, &id);
        if (r < 0)
                return r;
        r = group_acquire(b, id, &d->group);
        if (r < 0)
                return r;

        /* Not a device ioctl: the group's, on a fd no entry ever touches. */
        r = sys_ioctl(b, d->group->group_fd, VFIO_GROUP_GET_DEVICE_FD, d->name);
        if (r < 0)
                return r;
        d->fd = r;
        return 0;
}

/* ---- cdev + iommufd ---------------------------------------------------------------------- */

/* X of the device's vfio-dev/vfioX child in sysfs. */
static int cdev_index_of(const VfioBackend *b, const char *bus, const char *name, unsigned *ret) {
        _cleanup_closedir_ DIR *dir = NULL;
        char path[VFIO_PATH_BUF];
        struct dirent *de;
        int r, fd;

        r = device_attr_path(path, sizeof(path), bus, name, "vfio-dev");
        if (r < 0)
                return r;
        r = sysfs_open_dir(b->sysfs_fd, path, &fd);
        if (r == -ENOENT || r == -ENOTDIR)
                return -ENODEV;
        if (r < 0)
                return r;
        dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                (void) close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(dir)))
                if (strncmp(de->d_name, "vfio", 4) == 0 && parse_unsigned(de->d_name + 4, ret) == 0)
                        return 0;
        return errno > 0 ? -errno : -ENODEV;
}

static void iommufd_release(VfioBackend *b) {
        if (--b->iommufd_users > 0)
                return;
        /* Closing the iommufd destroys the IOAS with it. */
        b->iommufd = sys_close(b, b->iommufd);
        b->have_ioas = false;
        b->ioas_id = 0;
}

/* Upstream's order (Documentation/driver-api/vfio.rst): open the cdev, open /dev/iommu, bind,
 * allocate an IOAS, attach. Later devices bind to the same iommufd and attach to the same IOAS. */
static int open_cdev_path(VfioBackend *b, VfioDevice *d, const char *bus) {
        char path[VFIO_PATH_BUF];
        unsigned index;
        int r;

        r = cdev_index_of(b, bus, d->name, &index);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof(path), "vfio/devices/vfio%u", index);
        r = sys_openat(b, path, O_RDWR|O_CLOEXEC);
        if (r < 0)
                return r == -ENOENT ? -ENODEV : r;
        d->fd = r;

        if (b->iommufd_users == 0) {
                r = sys_openat(b, "iommu", O_RDWR|O_CLOEXEC);
                if (r < 0)
                        return r == -ENOENT ? -ENODEV : r;
                b->iommufd = r;
        }
        b->iommufd_users++;
        d->uses_iommufd = true;

        VfioBindIommufd bind = {
                .argsz = sizeof(bind),
                .iommufd = b->iommufd,
        };
        /* A held group (or an other holder's bind) gives EBUSY here, not at open. */
        r = device_ioctl(d, VFIO_DEVICE_BIND_IOMMUFD, &bind);
        if (r < 0)
                return r;

        if (!b->have_ioas) {
                IommuIoasAlloc alloc = { .size = sizeof(alloc) };

                r = sys_ioctl(b, b->iommufd, IOMMU_IOAS_ALLOC, &alloc);
                if (r < 0)
                        return r;
                b->ioas_id = alloc.out_ioas_id;
                b->have_ioas = true;
        }

        VfioAttachIommufdPt attach = {
                .argsz = sizeof(attach),
                .pt_id = b->ioas_id,
        };
        r = device_ioctl(d, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);
        return r < 0 ? r : 0;
}

/* ---- device ---------------------------------------------------------------------------- */

/* The IRQ index through which the kernel asks for the device back. */
static int request_irq_index(VfioDevice *d, const struct vfio_device_info *info, bool pci, uint32_t *ret) {
        uint32_t first, last;

        if (pci) {
                if (info->num_irqs <= VFIO_PCI_REQ_IRQ_INDEX)
                        return -EOPNOTSUPP;
                first = last = VFIO_PCI_REQ_IRQ_INDEX;
        } else {
                if (info->num_irqs == 0)
                        return -EOPNOTSUPP;
                first = 0;
                last = info->num_irqs - 1;
        }

        /* Highest first: vfio-pci puts its request IRQ last, and device interrupts (maskable)
         * before it; a platform device of vfio_pm_sim has only its request IRQ at 0. */
        for (uint32_t i = last + 1; i-- > first;) {
                struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = i };
                int r;

                r = device_ioctl(d, VFIO_DEVICE_GET_IRQ_INFO, &irq);
                if (r == -EINVAL)
                        continue;       /* vfio-pci: an index this device lacks */
                if (r < 0)
                        return r;
                if (!(irq.flags & VFIO_IRQ_INFO_EVENTFD) || irq.count < 1)
                        continue;
                if (!pci && (irq.count != 1 || (irq.flags & VFIO_IRQ_INFO_MASKABLE)))
                        continue;
                *ret = i;
                return 0;
        }
        return -EOPNOTSUPP;
}

static int setup_eventfds(VfioDevice *d, bool pci) {
        const VfioBackend *b = d->backend;
        struct vfio_device_info info = { .argsz = sizeof(info) };
        uint32_t index = 0;
        int r;

        r = device_ioctl(d, VFIO_DEVICE_GET_INFO, &info);
        if (r < 0)
                return r;
        if (!!(info.flags & VFIO_DEVICE_FLAGS_PCI) != pci)
                return -EPROTO;

        r = request_irq_index(d, &info, pci, &index);
        if (r < 0)
                return r;

        r = b->sys->eventfd(b->sys->userdata, 0, EFD_NONBLOCK|EFD_CLOEXEC);
        if (r < 0)
                return r;
        d->wake_fd = r;
        r = b->sys->eventfd(b->sys->userdata, 0, EFD_NONBLOCK|EFD_CLOEXEC);
        if (r < 0)
                return r;
        d->request_fd = r;

        VfioIrqSetEventfd set = {
                .argsz = sizeof(set),
                .flags = VFIO_IRQ_SET_DATA_EVENTFD|VFIO_IRQ_SET_ACTION_TRIGGER,
                .index = index,
                .start = 0,
                .count = 1,
                .fd = d->request_fd,
        };
        r = device_ioctl(d, VFIO_DEVICE_SET_IRQS, &set);
        return r < 0 ? r : 0;
}

int vfio_device_open(VfioBackend *b, const char *bus, const char *name, VfioDevice **ret) {
        _cleanup_(vfio_device_closep) VfioDevice *d = NULL;
        int r = -EINVAL;

        if (!b || !ret || !name_ok(bus) || !name_ok(name))
                return -EINVAL;
        for (VfioDevice *i = b->devices; i; i = i->next)
                if (i->name && strcmp(i->name, name) == 0)
                        return -EBUSY;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        /* From here on vfio_device_close() undoes whatever got done. */
        d->fd = d->wake_fd = d->request_fd = -EBADF;
        d->backend = b;
        b->n_ref++;
        d->next = b->devices;
        b->devices = d;
        d->name = strdup(name);
        if (!d->name)
                return -ENOMEM;

        switch (b->path) {
        case VFIO_PATH_GROUP:
                r = open_group_path(b, d, bus);
                break;
        case VFIO_PATH_CDEV:
                r = open_cdev_path(b, d, bus);
                break;
        case _VFIO_PATH_MAX:
        case _VFIO_PATH_INVALID:
                r = -EINVAL;
                break;
        }
        if (r < 0)
                return r;

        r = setup_eventfds(d, strcmp(bus, "pci") == 0);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

void vfio_device_held_fds(const VfioDevice *d, VfioHeldFds *ret) {
        *ret = VFIO_HELD_FDS_NULL;
        ret->device = d->fd;
        ret->wake = d->wake_fd;
        ret->request = d->request_fd;
        if (d->group) {
                ret->group_id = d->group->id;
                ret->group = d->group->group_fd;
                ret->container = d->group->container ? d->group->container->fd : -EBADF;
                ret->container_shared = d->group->container && d->group->container == d->backend->shared;
                ret->group_last = d->group->users == 1;
                ret->container_last = ret->group_last && d->group->container && d->group->container->groups == 1;
        }
        if (d->uses_iommufd) {
                ret->iommufd = d->backend->iommufd;
                ret->ioas_id = d->backend->ioas_id;
                ret->iommufd_last = d->backend->iommufd_users == 1;
        }
        ret->entered = d->entered;
        ret->entered_wakeup = d->entered_wakeup;
}

static void held_fds_close(const VfioBackend *b, VfioHeldFds *fds) {
        fds->device = sys_close(b, fds->device);
        fds->wake = sys_close(b, fds->wake);
        fds->request = sys_close(b, fds->request);
        fds->group = sys_close(b, fds->group);
        fds->container = sys_close(b, fds->container);
        fds->iommufd = sys_close(b, fds->iommufd);
}

/* The group of an adopted device: the backend's, or a new one from the fds (group, and the
 * container unless the shared one is held already). Takes what it uses out of fds. */
static int group_adopt(VfioBackend *b, VfioHeldFds *fds, VfioGroup **ret) {
        VfioContainer *c = NULL;
        VfioGroup *g;

        for (g = b->groups; g; g = g->next)
                if (g->id == fds->group_id) {
                        g->users++;
                        *ret = g;
                        return 0;
                }
        if (fds->group < 0)
                return -EBADF;
        if (fds->container_shared && b->shared) {
                c = b->shared;
                c->groups++;
        } else {
                if (fds->container < 0)
                        return -EBADF;
                c = calloc(1, sizeof(*c));
                if (!c)
                        return -ENOMEM;
                c->fd = TAKE_FD(fds->container);
                c->groups = 1;
                if (fds->container_shared)
                        b->shared = c;
        }
        g = calloc(1, sizeof(*g));
        if (!g) {
                container_unref(b, c);
                return -ENOMEM;
        }
        *g = (VfioGroup) {
                .next = b->groups,
                .id = fds->group_id,
                .group_fd = TAKE_FD(fds->group),
                .container = c,
                .users = 1,
        };
        b->groups = g;
        *ret = g;
        return 0;
}

int vfio_device_adopt(VfioBackend *b, const char *name, VfioHeldFds *fds, VfioDevice **ret) {
        _cleanup_(vfio_device_closep) VfioDevice *d = NULL;
        int r;

        if (!b || !fds || !ret || !name_ok(name))
                r = -EINVAL;
        else if (fds->device < 0 || fds->wake < 0 || fds->request < 0)
                r = -EBADF;
        else
                r = 0;
        for (VfioDevice *i = b ? b->devices : NULL; r >= 0 && i; i = i->next)
                if (i->name && strcmp(i->name, name) == 0)
                        r = -EBUSY;
        if (r >= 0) {
                d = calloc(1, sizeof(*d));
                if (!d)
                        r = -ENOMEM;
        }
        if (r < 0) {
                if (fds && b)
                        held_fds_close(b, fds);
                return r;
        }

        /* From here on vfio_device_close() undoes whatever got done. */
        d->backend = b;
        b->n_ref++;
        d->next = b->devices;
        b->devices = d;
        d->fd = TAKE_FD(fds->device);
        d->wake_fd = TAKE_FD(fds->wake);
        d->request_fd = TAKE_FD(fds->request);
        d->entered = fds->entered;
        d->entered_wakeup = fds->entered && fds->entered_wakeup;
        d->name = strdup(name);
        if (!d->name)
                r = -ENOMEM;
        else if (b->path == VFIO_PATH_GROUP)
                r = group_adopt(b, fds, &d->group);
        else if (b->path == VFIO_PATH_CDEV) {
                if (b->iommufd_users == 0 && fds->iommufd < 0)
                        r = -EBADF;
                else {
                        if (b->iommufd_users == 0) {
                                b->iommufd = TAKE_FD(fds->iommufd);
                                b->ioas_id = fds->ioas_id;
                                b->have_ioas = true;
                        }
                        b->iommufd_users++;
                        d->uses_iommufd = true;
                }
        } else
                r = -EINVAL;
        /* what was not needed: copies of what the backend holds already */
        held_fds_close(b, fds);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

VfioDevice *vfio_device_close(VfioDevice *d) {
        VfioBackend *b;

        if (!d)
                return NULL;
        b = d->backend;

        for (VfioDevice **p = &b->devices; *p; p = &(*p)->next)
                if (*p == d) {
                        *p = d->next;
                        break;
                }

        /* The device fd first, with no ioctl before it: the kernel's close ends any low-power
         * entry and drops its references to both eventfds. */
        d->fd = sys_close(b, d->fd);
        d->wake_fd = sys_close(b, d->wake_fd);
        d->request_fd = sys_close(b, d->request_fd);
        if (d->group)
                group_release(b, d->group);
        if (d->uses_iommufd)
                iommufd_release(b);

        free(d->name);
        free(d);
        backend_unref(b);
        return NULL;
}

const char *vfio_device_name(const VfioDevice *d) {
        return d ? d->name : NULL;
}

int vfio_device_wake_fd(const VfioDevice *d) {
        return d ? d->wake_fd : -EBADF;
}

int vfio_device_request_fd(const VfioDevice *d) {
        return d ? d->request_fd : -EBADF;
}

/* VFIO_DEVICE_FEATURE|SET on a low-power feature, argsz and flags as upstream's selftests and
 * tests/conformance: the 8-byte header plus the feature's data, if any. */
_hot_ static int low_power_feature(VfioDevice *d, uint32_t feature) {
        bool wakeup = feature == VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP;
        VfioFeatureLowPower f = {
                .argsz = wakeup ? (uint32_t) sizeof(f) : VFIO_FEATURE_HEADER_SIZE,
                .flags = VFIO_DEVICE_FEATURE_SET | feature,
                .wakeup_eventfd = wakeup ? d->wake_fd : -1,
        };
        int r;

        r = device_ioctl(d, VFIO_DEVICE_FEATURE, &f);
        return r < 0 ? r : 0;
}

_hot_ int vfio_device_enter(VfioDevice *d, bool wakeup) {
        int r;

        if (!d || d->fd < 0)
                return -EBADF;
        r = low_power_feature(d, wakeup ? VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP :
                                          VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY);
        if (r < 0)
                return r;       /* a failed entry changes nothing in force */
        d->entered = true;
        d->entered_wakeup = wakeup;
        return 0;
}

int vfio_device_exit(VfioDevice *d) {
        int r;

        if (!d || d->fd < 0)
                return -EBADF;
        r = low_power_feature(d, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT);
        if (r < 0)
                return r;
        d->entered = d->entered_wakeup = false;
        return 0;
}

/* The eventfd's count, resetting it; 0 when it has not fired (EAGAIN). */
_hot_ static int eventfd_take(int fd, uint64_t *ret) {
        uint64_t v;
        ssize_t n;

        if (fd < 0)
                return -EBADF;
        for (;;) {
                n = read(fd, &v, sizeof(v));
                if (n >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        *ret = 0;
                        return 0;
                }
                return -errno;
        }
        if (n != sizeof(v))
                return -EIO;
        *ret = v;
        return 0;
}

_hot_ int vfio_device_read_wake(VfioDevice *d, uint64_t *ret_count) {
        uint64_t n;
        int r;

        if (!d || !ret_count)
                return -EINVAL;
        r = eventfd_take(d->wake_fd, &n);
        if (r < 0)
                return r;
        /* A wake-up entry is one-shot: once it fired, the device stays in D0 and nothing is in
         * force. (A plain entry never fires it.) */
        if (n > 0 && d->entered_wakeup)
                d->entered = d->entered_wakeup = false;
        *ret_count = n;
        return 0;
}

int vfio_device_read_request(VfioDevice *d, uint64_t *ret_count) {
        uint64_t n;
        int r;

        if (!d || !ret_count)
                return -EINVAL;
        r = eventfd_take(d->request_fd, &n);
        if (r < 0)
                return r;
        *ret_count = n;
        return 0;
}
