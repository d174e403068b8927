#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake-kernel.h"
#include "vfio-internal.h"

#define FAKE_MAX_GROUPS 16
#define FAKE_MAX_DEVICES 16
#define FAKE_MAX_IRQS 8
#define FAKE_MAX_FAILS 8

typedef struct FakeContainer {
        unsigned refs;                  /* its fd, and each group set to it */
        unsigned ngroups;
        unsigned long iommu_type;       /* 0 until VFIO_SET_IOMMU */
} FakeContainer;

typedef struct FakeIommufd {
        unsigned refs;                  /* its fd, and each cdev bound to it */
        uint32_t next_id;
        uint32_t ioas[16];
        unsigned nioas;
} FakeIommufd;

typedef struct FakeGroup {
        unsigned id;
        bool noiommu;
        bool viable;
        bool held_elsewhere;
        bool open;                      /* our group fd is open */
        unsigned users;                 /* the group fd, and each device fd got from it */
        FakeContainer *container;
} FakeGroup;

typedef struct FakeDevice {
        char name[32];
        unsigned group;
        unsigned cdev_index;
        uint32_t flags;
        uint32_t num_regions;
        FakeIrq irqs[FAKE_MAX_IRQS];
        unsigned nirqs;
        int request_index;
        unsigned opens;                 /* device fds, and the bound cdev fd */
        bool cdev_bound;
        FakeLowPower low_power;
        bool suspended;
        int wake_ctx;                   /* our dup of the wake-up eventfd (the kernel's ctx ref) */
        int request_ctx;                /* our dup of the request eventfd */
} FakeDevice;

typedef struct FakeFd {
        int fd;
        FakeFdKind kind;
        FakeContainer *container;       /* CONTAINER */
        FakeGroup *group;               /* GROUP, and DEVICE: the group it came from */
        FakeDevice *device;             /* DEVICE, CDEV */
        FakeIommufd *iommufd;           /* IOMMUFD, and CDEV once bound */
        bool bound;                     /* CDEV */
} FakeFd;

struct FakeKernel {
        VfioSys sys;
        bool cdev;
        bool type1;
        bool type1v2;
        int api_version;

        FakeGroup groups[FAKE_MAX_GROUPS];
        unsigned ngroups;
        FakeDevice devices[FAKE_MAX_DEVICES];
        unsigned ndevices;

        FakeFd *fds;
        size_t nfds;
        size_t fds_alloc;

        FakeCall *calls;
        size_t ncalls;
        size_t calls_alloc;

        struct {
                unsigned long request;
                int err;
        } fail_ioctl[FAKE_MAX_FAILS];
        unsigned nfail_ioctl;
        struct {
                char path[64];
                int err;
        } fail_openat[FAKE_MAX_FAILS];
        unsigned nfail_openat;
        int fail_eventfd;
        unsigned fail_eventfd_skip;

        unsigned violations;
        char violation[256];
};

/* ---- bookkeeping ----------------------------------------------------------------------- */

static void violation(FakeKernel *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(FakeKernel *k, const char *fmt, ...) {
        va_list ap;

        if (k->violations++ > 0)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(k->violation, sizeof(k->violation), fmt, ap);
        va_end(ap);
}

static FakeCall *log_call(FakeKernel *k, FakeCallType type) {
        FakeCall *c;

        if (k->ncalls == k->calls_alloc) {
                size_t n = k->calls_alloc ? 2 * k->calls_alloc : 64;
                FakeCall *p = realloc(k->calls, n * sizeof(*p));
                if (!p)
                        abort();
                k->calls = p;
                k->calls_alloc = n;
        }
        c = &k->calls[k->ncalls++];
        *c = (FakeCall) {
                .type = type,
                .fd = -1,
                .kind = _FAKE_FD_KIND_INVALID,
                .data_fd = -1,
        };
        return c;
}

static FakeFd *fd_find(FakeKernel *k, int fd) {
        for (size_t i = 0; i < k->nfds; i++)
                if (k->fds[i].fd == fd)
                        return &k->fds[i];
        return NULL;
}

static int fd_add(FakeKernel *k, int fd, FakeFdKind kind, FakeFd **ret) {
        if (k->nfds == k->fds_alloc) {
                size_t n = k->fds_alloc ? 2 * k->fds_alloc : 32;
                FakeFd *p = realloc(k->fds, n * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                k->fds = p;
                k->fds_alloc = n;
        }
        k->fds[k->nfds] = (FakeFd) { .fd = fd, .kind = kind };
        if (ret)
                *ret = &k->fds[k->nfds];
        k->nfds++;
        return 0;
}

/* A real fd standing for a kernel object: an eventfd nobody reads. */
static int fd_new(FakeKernel *k, FakeFdKind kind, FakeFd **ret) {
        int fd;

        fd = eventfd(0, EFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fd_add(k, fd, kind, ret) < 0) {
                (void) close(fd);
                return -ENOMEM;
        }
        return fd;
}

static void fd_remove(FakeKernel *k, FakeFd *f) {
        size_t i = (size_t) (f - k->fds);

        memmove(&k->fds[i], &k->fds[i + 1], (k->nfds - i - 1) * sizeof(*f));
        k->nfds--;
}

static FakeGroup *group_find(FakeKernel *k, unsigned id) {
        for (unsigned i = 0; i < k->ngroups; i++)
                if (k->groups[i].id == id)
                        return &k->groups[i];
        return NULL;
}

static FakeDevice *device_find(const FakeKernel *k, const char *name) {
        for (unsigned i = 0; i < k->ndevices; i++)
                if (strcmp(k->devices[i].name, name) == 0)
                        return (FakeDevice *) &k->devices[i];
        return NULL;
}

static bool group_has_cdev_bound(const FakeKernel *k, unsigned id) {
        for (unsigned i = 0; i < k->ndevices; i++)
                if (k->devices[i].group == id && k->devices[i].cdev_bound)
                        return true;
        return false;
}

static void container_unref(FakeContainer *c) {
        if (c && --c->refs == 0)
                free(c);
}

static void iommufd_unref(FakeIommufd *i) {
        if (i && --i->refs == 0)
                free(i);
}

static void group_put(FakeGroup *g) {
        if (--g->users > 0)
                return;
        if (g->container) {
                /* the last group out of a container unsets its IOMMU */
                if (--g->container->ngroups == 0)
                        g->container->iommu_type = 0;
                container_unref(g->container);
                g->container = NULL;
        }
}

static void ctx_put(int *ctx) {
        if (*ctx >= 0)
                (void) close(*ctx);
        *ctx = -1;
}

/* vfio_pci_core_close_device(): low power ends, the eventfd references go. */
static void device_put(FakeDevice *d) {
        if (--d->opens > 0)
                return;
        d->low_power = FAKE_LOW_POWER_NONE;
        d->suspended = false;
        ctx_put(&d->wake_ctx);
        ctx_put(&d->request_ctx);
}

static void signal_ctx(int ctx) {
        uint64_t one = 1;

        if (ctx >= 0 && write(ctx, &one, sizeof(one)) != sizeof(one))
                abort();
}

/* eventfd_ctx_fdget(): EBADF for no fd, EINVAL for an fd that is no eventfd (ours, or a real
 * one of the test's); on success our own reference. */
static int eventfd_get(FakeKernel *k, int fd, int *ret_ctx) {
        FakeFd *f;
        int ctx;

        if (fd < 0 || fcntl(fd, F_GETFD) < 0)
                return -EBADF;
        f = fd_find(k, fd);
        if (f && f->kind != FAKE_FD_EVENTFD)
                return -EINVAL;
        if (!f) {
                /* a real eventfd reads 8 bytes; anything else of the test's is not one */
                violation(k, "an eventfd the fake never gave (fd %d) passed to the kernel", fd);
                return -EINVAL;
        }
        ctx = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (ctx < 0)
                return -errno;
        *ret_ctx = ctx;
        return 0;
}

/* ---- the model ------------------------------------------------------------------------- */

static int fake_openat(void *userdata, int dirfd, const char *path, int flags);
static int fake_ioctl(void *userdata, int fd, unsigned long request, void *arg);
static int fake_eventfd(void *userdata, unsigned initval, int flags);
static int fake_close(void *userdata, int fd);

int fake_kernel_new(FakeKernel **ret) {
        FakeKernel *k = calloc(1, sizeof(*k));

        if (!k)
                return -ENOMEM;
        k->sys = (VfioSys) {
                .openat = fake_openat,
                .ioctl = fake_ioctl,
                .eventfd = fake_eventfd,
                .close = fake_close,
                .userdata = k,
        };
        k->type1 = k->type1v2 = true;
        k->api_version = VFIO_API_VERSION;
        *ret = k;
        return 0;
}

FakeKernel *fake_kernel_free(FakeKernel *k) {
        if (!k)
                return NULL;
        /* what the test leaked: release it as the kernel would at exit */
        while (k->nfds > 0)
                (void) fake_close(k, k->fds[k->nfds - 1].fd);
        for (unsigned i = 0; i < k->ndevices; i++) {
                ctx_put(&k->devices[i].wake_ctx);
                ctx_put(&k->devices[i].request_ctx);
        }
        free(k->fds);
        free(k->calls);
        free(k);
        return NULL;
}

const VfioSys *fake_kernel_sys(FakeKernel *k) {
        return &k->sys;
}

void fake_kernel_set_cdev(FakeKernel *k, bool on) {
        k->cdev = on;
}

void fake_kernel_set_iommu_types(FakeKernel *k, bool type1, bool type1v2) {
        k->type1 = type1;
        k->type1v2 = type1v2;
}

void fake_kernel_set_api_version(FakeKernel *k, int version) {
        k->api_version = version;
}

int fake_kernel_add_group(FakeKernel *k, unsigned id, bool noiommu) {
        if (group_find(k, id))
                return -EEXIST;
        if (k->ngroups == FAKE_MAX_GROUPS)
                return -ENOSPC;
        k->groups[k->ngroups++] = (FakeGroup) { .id = id, .noiommu = noiommu, .viable = true };
        return 0;
}

int fake_kernel_set_group_viable(FakeKernel *k, unsigned id, bool viable) {
        FakeGroup *g = group_find(k, id);

        if (!g)
                return -ENOENT;
        g->viable = viable;
        return 0;
}

int fake_kernel_set_group_held_elsewhere(FakeKernel *k, unsigned id, bool held) {
        FakeGroup *g = group_find(k, id);

        if (!g)
                return -ENOENT;
        g->held_elsewhere = held;
        return 0;
}

int fake_kernel_add_device(FakeKernel *k, const char *name, unsigned group, unsigned cdev_index,
                           FakeDeviceType type) {
        FakeDevice *d;

        if (!group_find(k, group))
                return -ENOENT;
        if (device_find(k, name))
                return -EEXIST;
        if (k->ndevices == FAKE_MAX_DEVICES || strlen(name) >= sizeof(d->name))
                return -ENOSPC;
        d = &k->devices[k->ndevices++];
        *d = (FakeDevice) {
                .group = group,
                .cdev_index = cdev_index,
                .wake_ctx = -1,
                .request_ctx = -1,
        };
        strcpy(d->name, name);

        switch (type) {
        case FAKE_DEVICE_PCI:
                /* vfio-pci on an e1000e: INTx, MSI, MSI-X, ERR, REQ */
                d->flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
                d->num_regions = VFIO_PCI_NUM_REGIONS;
                d->irqs[VFIO_PCI_INTX_IRQ_INDEX] = (FakeIrq) {
                        VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, 1 };
                d->irqs[VFIO_PCI_MSI_IRQ_INDEX] = (FakeIrq) { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1 };
                d->irqs[VFIO_PCI_MSIX_IRQ_INDEX] = (FakeIrq) { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 5 };
                d->irqs[VFIO_PCI_ERR_IRQ_INDEX] = (FakeIrq) { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1 };
                d->irqs[VFIO_PCI_REQ_IRQ_INDEX] = (FakeIrq) { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1 };
                d->nirqs = VFIO_PCI_NUM_IRQS;
                d->request_index = VFIO_PCI_REQ_IRQ_INDEX;
                break;
        case FAKE_DEVICE_PLATFORM:
                /* kmod/vfio_pm_sim.c: one region, one IRQ (the request IRQ, index 0) */
                d->flags = VFIO_DEVICE_FLAGS_PLATFORM | VFIO_DEVICE_FLAGS_RESET;
                d->num_regions = 1;
                d->irqs[0] = (FakeIrq) { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1 };
                d->nirqs = 1;
                d->request_index = 0;
                break;
        }
        return 0;
}

int fake_kernel_set_device_irqs(FakeKernel *k, const char *name, const FakeIrq *irqs, unsigned n,
                                int request_index) {
        FakeDevice *d = device_find(k, name);

        if (!d)
                return -ENOENT;
        if (n > FAKE_MAX_IRQS || request_index >= (int) n)
                return -EINVAL;
        if (n > 0)
                memcpy(d->irqs, irqs, n * sizeof(*irqs));
        d->nirqs = n;
        d->request_index = request_index;
        return 0;
}

int fake_kernel_set_device_flags(FakeKernel *k, const char *name, uint32_t flags) {
        FakeDevice *d = device_find(k, name);

        if (!d)
                return -ENOENT;
        d->flags = flags;
        return 0;
}

void fake_kernel_fail_ioctl(FakeKernel *k, unsigned long request, int err) {
        if (k->nfail_ioctl < FAKE_MAX_FAILS) {
                k->fail_ioctl[k->nfail_ioctl].request = request;
                k->fail_ioctl[k->nfail_ioctl++].err = err;
        }
}

void fake_kernel_fail_openat(FakeKernel *k, const char *path, int err) {
        if (k->nfail_openat < FAKE_MAX_FAILS) {
                (void) snprintf(k->fail_openat[k->nfail_openat].path,
                                sizeof(k->fail_openat[0].path), "%s", path);
                k->fail_openat[k->nfail_openat++].err = err;
        }
}

void fake_kernel_fail_eventfd(FakeKernel *k, unsigned skip, int err) {
        k->fail_eventfd = err;
        k->fail_eventfd_skip = skip;
}

static int take_ioctl_failure(FakeKernel *k, unsigned long request) {
        for (unsigned i = 0; i < k->nfail_ioctl; i++)
                if (k->fail_ioctl[i].request == request) {
                        int err = k->fail_ioctl[i].err;

                        memmove(&k->fail_ioctl[i], &k->fail_ioctl[i + 1],
                                (k->nfail_ioctl - i - 1) * sizeof(k->fail_ioctl[0]));
                        k->nfail_ioctl--;
                        return -err;
                }
        return 0;
}

static int take_openat_failure(FakeKernel *k, const char *path) {
        for (unsigned i = 0; i < k->nfail_openat; i++)
                if (strcmp(k->fail_openat[i].path, path) == 0) {
                        int err = k->fail_openat[i].err;

                        memmove(&k->fail_openat[i], &k->fail_openat[i + 1],
                                (k->nfail_openat - i - 1) * sizeof(k->fail_openat[0]));
                        k->nfail_openat--;
                        return -err;
                }
        return 0;
}

/* ---- openat / eventfd / close ---------------------------------------------------------- */

static int parse_id(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        if (*s < '0' || *s > '9')
                return -ENOENT;
        v = strtoul(s, &end, 10);
        if (*end || v > 0xffffffffUL)
                return -ENOENT;
        *ret = (unsigned) v;
        return 0;
}

static int open_node(FakeKernel *k, const char *path, int flags, FakeFdKind *ret_kind) {
        FakeFd *f;
        unsigned id;
        int fd;

        if (strcmp(path, "vfio/vfio") == 0) {
                FakeContainer *c = calloc(1, sizeof(*c));
                if (!c)
                        return -ENOMEM;
                fd = fd_new(k, FAKE_FD_CONTAINER, &f);
                if (fd < 0) {
                        free(c);
                        return fd;
                }
                c->refs = 1;
                f->container = c;
                *ret_kind = FAKE_FD_CONTAINER;
                return fd;
        }

        if (strncmp(path, "vfio/", 5) == 0 && (parse_id(path + 5, &id) == 0 ||
                                               (strncmp(path + 5, "noiommu-", 8) == 0 &&
                                                parse_id(path + 13, &id) == 0))) {
                FakeGroup *g = group_find(k, id);
                bool noiommu_name = path[5] == 'n';

                if (!g || g->noiommu != noiommu_name)
                        return -ENOENT;
                /* vfio_group_fops_open(): one opener at a time; a cdev bind blocks the group */
                if (g->users > 0 || g->held_elsewhere || group_has_cdev_bound(k, id))
                        return -EBUSY;
                fd = fd_new(k, FAKE_FD_GROUP, &f);
                if (fd < 0)
                        return fd;
                f->group = g;
                g->open = true;
                g->users = 1;
                *ret_kind = FAKE_FD_GROUP;
                return fd;
        }

        if (!k->cdev)
                return -ENOENT;

        if (strcmp(path, "vfio/devices") == 0) {
                if (!(flags & O_DIRECTORY))
                        return -EISDIR;
                fd = fd_new(k, FAKE_FD_DIR, NULL);
                *ret_kind = FAKE_FD_DIR;
                return fd;
        }

        if (strncmp(path, "vfio/devices/vfio", 17) == 0 && parse_id(path + 17, &id) == 0) {
                for (unsigned i = 0; i < k->ndevices; i++)
                        if (k->devices[i].cdev_index == id) {
                                /* opening a cdev is free; VFIO_DEVICE_BIND_IOMMUFD claims it */
                                fd = fd_new(k, FAKE_FD_CDEV, &f);
                                if (fd < 0)
                                        return fd;
                                f->device = &k->devices[i];
                                *ret_kind = FAKE_FD_CDEV;
                                return fd;
                        }
                return -ENOENT;
        }

        if (strcmp(path, "iommu") == 0) {
                FakeIommufd *i = calloc(1, sizeof(*i));
                if (!i)
                        return -ENOMEM;
                fd = fd_new(k, FAKE_FD_IOMMUFD, &f);
                if (fd < 0) {
                        free(i);
                        return fd;
                }
                i->refs = 1;
                i->next_id = 1;         /* iommufd's object IDs start at 1 */
                f->iommufd = i;
                *ret_kind = FAKE_FD_IOMMUFD;
                return fd;
        }

        return -ENOENT;
}

static int fake_openat(void *userdata, int dirfd, const char *path, int flags) {
        FakeKernel *k = userdata;
        FakeCall *c = log_call(k, FAKE_CALL_OPENAT);
        FakeFdKind kind = _FAKE_FD_KIND_INVALID;
        int r;

        (void) snprintf(c->path, sizeof(c->path), "%s", path ? path : "(null)");
        c->flags = flags;
        if (!path || path[0] == '/' || path[0] == '\0') {
                violation(k, "openat of '%s': not relative to the dev fd", c->path);
                return c->result = -EINVAL;
        }
        if (!(flags & O_CLOEXEC))
                violation(k, "openat of '%s' without O_CLOEXEC", path);

        r = take_openat_failure(k, path);
        if (r == 0)
                r = open_node(k, path, flags, &kind);
        c->fd = r >= 0 ? r : -1;
        c->kind = r >= 0 ? kind : _FAKE_FD_KIND_INVALID;
        return c->result = r;
}

static int fake_eventfd(void *userdata, unsigned initval, int flags) {
        FakeKernel *k = userdata;
        FakeCall *c = log_call(k, FAKE_CALL_EVENTFD);
        int fd;

        c->flags = flags;
        if ((flags & (EFD_NONBLOCK | EFD_CLOEXEC)) != (EFD_NONBLOCK | EFD_CLOEXEC))
                violation(k, "eventfd without EFD_NONBLOCK|EFD_CLOEXEC (flags 0x%x)", (unsigned) flags);
        if (k->fail_eventfd && k->fail_eventfd_skip-- == 0) {
                c->result = -k->fail_eventfd;
                k->fail_eventfd = 0;
                return c->result;
        }
        fd = eventfd(initval, flags);
        if (fd < 0)
                return c->result = -errno;
        if (fd_add(k, fd, FAKE_FD_EVENTFD, NULL) < 0) {
                (void) close(fd);
                return c->result = -ENOMEM;
        }
        c->fd = fd;
        c->kind = FAKE_FD_EVENTFD;
        return c->result = fd;
}

static int fake_close(void *userdata, int fd) {
        FakeKernel *k = userdata;
        FakeCall *c = log_call(k, FAKE_CALL_CLOSE);
        FakeFd *f = fd_find(k, fd);

        c->fd = fd;
        if (!f) {
                violation(k, "close of fd %d, which the fake never gave (or closed already)", fd);
                return c->result = -EBADF;
        }
        c->kind = f->kind;
        if (f->device)
                (void) snprintf(c->device, sizeof(c->device), "%s", f->device->name);

        switch (f->kind) {
        case FAKE_FD_CONTAINER:
                container_unref(f->container);
                break;
        case FAKE_FD_GROUP:
                f->group->open = false;
                group_put(f->group);
                break;
        case FAKE_FD_DEVICE:
                device_put(f->device);
                group_put(f->group);
                break;
        case FAKE_FD_CDEV:
                if (f->bound) {
                        f->device->cdev_bound = false;
                        device_put(f->device);
                        iommufd_unref(f->iommufd);
                }
                break;
        case FAKE_FD_IOMMUFD:
                iommufd_unref(f->iommufd);
                break;
        case FAKE_FD_DIR:
        case FAKE_FD_EVENTFD:
        case _FAKE_FD_KIND_MAX:
        case _FAKE_FD_KIND_INVALID:
                break;
        }
        fd_remove(k, f);
        (void) close(fd);
        return c->result = 0;
}

/* ---- ioctl ----------------------------------------------------------------------------- */

static int container_ioctl(FakeKernel *k, FakeFd *f, FakeCall *c, unsigned long request, void *arg) {
        FakeContainer *ct = f->container;
        unsigned long value = (unsigned long) (uintptr_t) arg;

        switch (request) {
        case VFIO_GET_API_VERSION:
                return k->api_version;
        case VFIO_CHECK_EXTENSION:
                c->arg = (uint32_t) value;
                if (value == VFIO_TYPE1_IOMMU)
                        return k->type1;
                if (value == VFIO_TYPE1v2_IOMMU)
                        return k->type1v2;
                if (value == VFIO_NOIOMMU_IOMMU) {
                        for (unsigned i = 0; i < k->ngroups; i++)
                                if (k->groups[i].noiommu)
                                        return 1;
                        return 0;
                }
                return 0;
        case VFIO_SET_IOMMU: {
                bool noiommu_group = false;

                c->arg = (uint32_t) value;
                if (ct->ngroups == 0 || ct->iommu_type != 0)
                        return -EINVAL;
                for (unsigned i = 0; i < k->ngroups; i++)
                        if (k->groups[i].container == ct && k->groups[i].noiommu)
                                noiommu_group = true;
                if (noiommu_group ? value != VFIO_NOIOMMU_IOMMU :
                    !((value == VFIO_TYPE1_IOMMU && k->type1) || (value == VFIO_TYPE1v2_IOMMU && k->type1v2)))
                        return -EINVAL;
                ct->iommu_type = value;
                return 0;
        }
        default:
                return -ENOTTY;
        }
}

static int group_ioctl(FakeKernel *k, FakeFd *f, FakeCall *c, unsigned long request, void *arg) {
        FakeGroup *g = f->group;

        switch (request) {
        case VFIO_GROUP_GET_STATUS: {
                struct vfio_group_status *s = arg;

                c->argsz = s->argsz;
                if (s->argsz < sizeof(*s))
                        return -EINVAL;
                /* 6.1: viable unless a host driver owns the group's DMA */
                s->flags = 0;
                if (g->container)
                        s->flags = VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE;
                else if (g->viable)
                        s->flags = VFIO_GROUP_FLAGS_VIABLE;
                return 0;
        }
        case VFIO_GROUP_SET_CONTAINER: {
                int cfd = *(const int *) arg;
                FakeFd *cf;

                c->arg = (uint32_t) cfd;
                if (g->container)
                        return -EINVAL;
                cf = fd_find(k, cfd);
                if (!cf)
                        return fcntl(cfd, F_GETFD) < 0 ? -EBADF : -EINVAL;
                if (cf->kind != FAKE_FD_CONTAINER)
                        return -EINVAL;
                /* iommu_group_claim_dma_owner() */
                if (!g->viable)
                        return -EBUSY;
                if (cf->container->iommu_type != 0 &&
                    (cf->container->iommu_type == VFIO_NOIOMMU_IOMMU) != g->noiommu)
                        return -EPERM;
                g->container = cf->container;
                g->container->refs++;
                g->container->ngroups++;
                return 0;
        }
        case VFIO_GROUP_GET_DEVICE_FD: {
                const char *name = arg;
                FakeDevice *d;
                FakeFd *df;
                int fd;

                if (!g->container || g->container->iommu_type == 0)
                        return -EINVAL;
                d = device_find(k, name);
                if (!d || d->group != g->id)
                        return -ENODEV;
                /* the kernel returns an O_CLOEXEC fd */
                fd = fd_new(k, FAKE_FD_DEVICE, &df);
                if (fd < 0)
                        return fd;
                df->device = d;
                df->group = g;
                g->users++;
                d->opens++;
                return fd;
        }
        default:
                return -ENOTTY;
        }
}

static int iommufd_ioctl(FakeKernel *k, FakeFd *f, FakeCall *c, unsigned long request, void *arg) {
        FakeIommufd *i = f->iommufd;

        switch (request) {
        case IOMMU_IOAS_ALLOC: {
                IommuIoasAlloc *a = arg;

                c->argsz = a->size;
                if (a->size < sizeof(*a))
                        return -EINVAL;
                if (a->flags)
                        return -EOPNOTSUPP;
                if (i->nioas == sizeof(i->ioas) / sizeof(i->ioas[0]))
                        return -ENOMEM;
                a->out_ioas_id = i->ioas[i->nioas++] = i->next_id++;
                return 0;
        }
        default:
                return -ENOTTY;
        }
}

static bool is_low_power_feature(unsigned long request, const void *arg) {
        const VfioFeatureLowPower *f = arg;
        uint32_t feature;

        if (request != VFIO_DEVICE_FEATURE)
                return false;
        feature = f->flags & VFIO_DEVICE_FEATURE_MASK;
        return feature == VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY ||
               feature == VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP ||
               feature == VFIO_DEVICE_FEATURE_LOW_POWER_EXIT;
}

/* The ioctl wrapper's pm_runtime_resume_and_get(): a suspended device resumes; under a wake-up
 * entry vfio_pci_core_runtime_resume() fires the eventfd and ends the entry. Returns whether it
 * fired. */
static bool device_resume(FakeDevice *d) {
        if (!d->suspended)
                return false;
        d->suspended = false;
        if (d->low_power != FAKE_LOW_POWER_WAKEUP)
                return false;
        signal_ctx(d->wake_ctx);
        ctx_put(&d->wake_ctx);
        d->low_power = FAKE_LOW_POWER_NONE;
        return true;
}

static int low_power_feature(FakeKernel *k, FakeDevice *d, FakeCall *c, VfioFeatureLowPower *f) {
        uint32_t feature = f->flags & VFIO_DEVICE_FEATURE_MASK;
        uint32_t size = f->argsz - VFIO_FEATURE_HEADER_SIZE;
        bool wakeup = feature == VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP;
        int ctx = -1, r;

        /* vfio_check_feature() */
        if (f->flags & VFIO_DEVICE_FEATURE_GET)
                return -EINVAL;
        if (!(f->flags & VFIO_DEVICE_FEATURE_SET))
                return -EINVAL;
        if (f->flags & VFIO_DEVICE_FEATURE_PROBE)
                return 0;
        if (wakeup && size < 2 * sizeof(uint32_t))
                return -EINVAL;

        if (feature == VFIO_DEVICE_FEATURE_LOW_POWER_EXIT) {
                d->low_power = FAKE_LOW_POWER_NONE;
                ctx_put(&d->wake_ctx);
                return 0;
        }

        if (wakeup) {
                c->data_fd = f->wakeup_eventfd;
                if (f->wakeup_eventfd < 0)
                        return -EINVAL;
                r = eventfd_get(k, f->wakeup_eventfd, &ctx);
                if (r < 0)
                        return r;
        }
        /* vfio_pci_runtime_pm_entry(): pm_runtime_engaged */
        if (d->low_power != FAKE_LOW_POWER_NONE) {
                ctx_put(&ctx);
                return -EINVAL;
        }
        d->low_power = wakeup ? FAKE_LOW_POWER_WAKEUP : FAKE_LOW_POWER_PLAIN;
        d->wake_ctx = ctx;
        return 0;
}

static int device_ioctl(FakeKernel *k, FakeFd *f, FakeCall *c, unsigned long request, void *arg) {
        FakeDevice *d = f->device;
        bool lp = is_low_power_feature(request, arg);
        int r;

        if (f->kind == FAKE_FD_CDEV) {
                if (request == VFIO_DEVICE_BIND_IOMMUFD) {
                        VfioBindIommufd *b = arg;
                        FakeGroup *g = group_find(k, d->group);
                        FakeFd *i;

                        c->argsz = b->argsz;
                        c->arg = (uint32_t) b->iommufd;
                        if (f->bound)
                                return -EINVAL;
                        if (b->argsz < sizeof(*b) || b->flags || b->iommufd < 0)
                                return -EINVAL;
                        /* vfio_device_block_group() comes before the iommufd is looked at */
                        if (g->users > 0 || g->held_elsewhere || d->cdev_bound)
                                return -EBUSY;
                        i = fd_find(k, b->iommufd);
                        if (!i)
                                return fcntl(b->iommufd, F_GETFD) < 0 ? -EBADF : -EINVAL;
                        if (i->kind != FAKE_FD_IOMMUFD)
                                return -EINVAL;
                        f->bound = true;
                        f->iommufd = i->iommufd;
                        f->iommufd->refs++;
                        d->cdev_bound = true;
                        d->opens++;
                        b->out_devid = 0x100u + d->cdev_index;
                        return 0;
                }
                /* vfio_device_fops_unl_ioctl(): no access before the bind */
                if (!f->bound)
                        return -EINVAL;
        }

        if (d->low_power != FAKE_LOW_POWER_NONE && !lp)
                violation(k, "%s on %s while a low-power entry is in force",
                          fake_kernel_request_name(request), d->name);

        if (request == VFIO_DEVICE_ATTACH_IOMMUFD_PT) {
                VfioAttachIommufdPt *a = arg;

                c->argsz = a->argsz;
                c->arg = a->pt_id;
                if (f->kind != FAKE_FD_CDEV || a->argsz < sizeof(*a) || a->flags)
                        return -EINVAL;
                for (unsigned i = 0; i < f->iommufd->nioas; i++)
                        if (f->iommufd->ioas[i] == a->pt_id)
                                return 0;
                return -ENOENT;
        }

        /* Every device ioctl resumes the device first (vfio_device_pm_runtime_get()). */
        (void) device_resume(d);
        r = -ENOTTY;

        switch (request) {
        case VFIO_DEVICE_GET_INFO: {
                struct vfio_device_info *info = arg;

                c->argsz = info->argsz;
                if (info->argsz < offsetof(struct vfio_device_info, num_irqs) + sizeof(info->num_irqs)) {
                        r = -EINVAL;
                        break;
                }
                info->flags = d->flags;
                info->num_regions = d->num_regions;
                info->num_irqs = d->nirqs;
                if (info->argsz >= sizeof(*info))
                        info->cap_offset = 0;
                r = 0;
                break;
        }
        case VFIO_DEVICE_GET_IRQ_INFO: {
                struct vfio_irq_info *irq = arg;

                c->argsz = irq->argsz;
                c->arg = irq->index;
                if (irq->argsz < sizeof(*irq) || irq->index >= d->nirqs) {
                        r = -EINVAL;
                        break;
                }
                irq->flags = d->irqs[irq->index].flags;
                irq->count = d->irqs[irq->index].count;
                r = 0;
                break;
        }
        case VFIO_DEVICE_SET_IRQS: {
                VfioIrqSetEventfd *s = arg;
                int ctx;

                c->argsz = s->argsz;
                c->arg = s->index;
                if (s->argsz < sizeof(struct vfio_irq_set) || s->index >= d->nirqs ||
                    (int) s->index != d->request_index ||
                    (s->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) != VFIO_IRQ_SET_ACTION_TRIGGER) {
                        r = -EINVAL;
                        break;
                }
                if ((s->flags & VFIO_IRQ_SET_DATA_TYPE_MASK) == VFIO_IRQ_SET_DATA_NONE && s->count == 0) {
                        ctx_put(&d->request_ctx);
                        r = 0;
                        break;
                }
                if ((s->flags & VFIO_IRQ_SET_DATA_TYPE_MASK) != VFIO_IRQ_SET_DATA_EVENTFD ||
                    s->start != 0 || s->count != 1 || s->argsz < sizeof(*s)) {
                        r = -EINVAL;
                        break;
                }
                c->data_fd = s->fd;
                if (s->fd < 0) {
                        ctx_put(&d->request_ctx);
                        r = 0;
                        break;
                }
                r = eventfd_get(k, s->fd, &ctx);
                if (r < 0)
                        break;
                ctx_put(&d->request_ctx);
                d->request_ctx = ctx;
                r = 0;
                break;
        }
        case VFIO_DEVICE_FEATURE: {
                VfioFeatureLowPower *lpf = arg;

                c->argsz = lpf->argsz;
                c->arg = lpf->flags;
                if (lpf->argsz < VFIO_FEATURE_HEADER_SIZE) {
                        r = -EINVAL;
                        break;
                }
                if (!lp) {
                        r = -ENOTTY;
                        break;
                }
                r = low_power_feature(k, d, c, lpf);
                break;
        }
        }

        /* the put after the ioctl: a device with an entry in force suspends again */
        if (d->low_power != FAKE_LOW_POWER_NONE)
                d->suspended = true;
        return r;
}

static int fake_ioctl(void *userdata, int fd, unsigned long request, void *arg) {
        FakeKernel *k = userdata;
        FakeCall *c = log_call(k, FAKE_CALL_IOCTL);
        FakeFd *f = fd_find(k, fd);
        int r;

        c->fd = fd;
        c->request = request;
        if (!f) {
                violation(k, "%s on fd %d, which the fake never gave", fake_kernel_request_name(request), fd);
                return c->result = -EBADF;
        }
        c->kind = f->kind;
        if (f->device)
                (void) snprintf(c->device, sizeof(c->device), "%s", f->device->name);

        r = take_ioctl_failure(k, request);
        if (r < 0) {
                /* still decode the arguments for the log */
                if (request == VFIO_DEVICE_FEATURE)
                        c->arg = ((const VfioFeatureLowPower *) arg)->flags;
                return c->result = r;
        }

        switch (f->kind) {
        case FAKE_FD_CONTAINER:
                r = container_ioctl(k, f, c, request, arg);
                break;
        case FAKE_FD_GROUP:
                r = group_ioctl(k, f, c, request, arg);
                break;
        case FAKE_FD_DEVICE:
        case FAKE_FD_CDEV:
                r = device_ioctl(k, f, c, request, arg);
                break;
        case FAKE_FD_IOMMUFD:
                r = iommufd_ioctl(k, f, c, request, arg);
                break;
        case FAKE_FD_DIR:
        case FAKE_FD_EVENTFD:
        case _FAKE_FD_KIND_MAX:
        case _FAKE_FD_KIND_INVALID:
                r = -ENOTTY;
                break;
        }
        return c->result = r;
}

/* ---- the kernel's side ----------------------------------------------------------------- */

int fake_kernel_host_access(FakeKernel *k, const char *name) {
        FakeDevice *d = device_find(k, name);
        bool fired;

        if (!d)
                return -ENOENT;
        fired = device_resume(d);
        if (d->low_power == FAKE_LOW_POWER_PLAIN)
                d->suspended = true;    /* a plain entry re-enters by itself */
        return fired;
}

int fake_kernel_request(FakeKernel *k, const char *name) {
        FakeDevice *d = device_find(k, name);

        if (!d)
                return -ENOENT;
        if (d->request_ctx < 0)
                return -ENOTCONN;
        signal_ctx(d->request_ctx);
        return 0;
}

bool fake_kernel_device_open(const FakeKernel *k, const char *name) {
        const FakeDevice *d = device_find(k, name);
        return d && d->opens > 0;
}

bool fake_kernel_device_suspended(const FakeKernel *k, const char *name) {
        const FakeDevice *d = device_find(k, name);
        return d && d->suspended;
}

FakeLowPower fake_kernel_device_low_power(const FakeKernel *k, const char *name) {
        const FakeDevice *d = device_find(k, name);
        return d ? d->low_power : FAKE_LOW_POWER_NONE;
}

int fake_kernel_device_request_fd(const FakeKernel *k, const char *name) {
        const FakeDevice *d = device_find(k, name);
        return d ? d->request_ctx : -1;
}

/* ---- inspection ------------------------------------------------------------------------ */

unsigned fake_kernel_open_fds(const FakeKernel *k) {
        return (unsigned) k->nfds;
}

unsigned fake_kernel_open_fds_of(const FakeKernel *k, FakeFdKind kind) {
        unsigned n = 0;

        for (size_t i = 0; i < k->nfds; i++)
                n += k->fds[i].kind == kind;
        return n;
}

size_t fake_kernel_ncalls(const FakeKernel *k) {
        return k->ncalls;
}

const FakeCall *fake_kernel_call(const FakeKernel *k, size_t i) {
        return i < k->ncalls ? &k->calls[i] : NULL;
}

void fake_kernel_clear_calls(FakeKernel *k) {
        k->ncalls = 0;
}

long fake_kernel_find_call(const FakeKernel *k, size_t from, FakeCallType type, unsigned long request) {
        for (size_t i = from; i < k->ncalls; i++)
                if (k->calls[i].type == type && (request == 0 || k->calls[i].request == request))
                        return (long) i;
        return -1;
}

unsigned fake_kernel_count_calls(const FakeKernel *k, FakeCallType type, unsigned long request) {
        unsigned n = 0;

        for (size_t i = 0; i < k->ncalls; i++)
                n += k->calls[i].type == type && (request == 0 || k->calls[i].request == request);
        return n;
}

unsigned fake_kernel_violations(const FakeKernel *k) {
        return k->violations;
}

const char *fake_kernel_violation(const FakeKernel *k) {
        return k->violation;
}

const char *fake_kernel_request_name(unsigned long request) {
        static const struct {
                unsigned long request;
                const char *name;
        } names[] = {
                { VFIO_GET_API_VERSION, "VFIO_GET_API_VERSION" },
                { VFIO_CHECK_EXTENSION, "VFIO_CHECK_EXTENSION" },
                { VFIO_SET_IOMMU, "VFIO_SET_IOMMU" },
                { VFIO_GROUP_GET_STATUS, "VFIO_GROUP_GET_STATUS" },
                { VFIO_GROUP_SET_CONTAINER, "VFIO_GROUP_SET_CONTAINER" },
                { VFIO_GROUP_GET_DEVICE_FD, "VFIO_GROUP_GET_DEVICE_FD" },
                { VFIO_DEVICE_GET_INFO, "VFIO_DEVICE_GET_INFO" },
                { VFIO_DEVICE_GET_IRQ_INFO, "VFIO_DEVICE_GET_IRQ_INFO" },
                { VFIO_DEVICE_SET_IRQS, "VFIO_DEVICE_SET_IRQS" },
                { VFIO_DEVICE_FEATURE, "VFIO_DEVICE_FEATURE" },
                { VFIO_DEVICE_BIND_IOMMUFD, "VFIO_DEVICE_BIND_IOMMUFD" },
                { VFIO_DEVICE_ATTACH_IOMMUFD_PT, "VFIO_DEVICE_ATTACH_IOMMUFD_PT" },
                { IOMMU_IOAS_ALLOC, "IOMMU_IOAS_ALLOC" },
        };
        static char buf[32];

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (names[i].request == request)
                        return names[i].name;
        (void) snprintf(buf, sizeof(buf), "0x%lx", request);
        return buf;
}

const char *fake_fd_kind_to_string(FakeFdKind kind) {
        static const char *const table[_FAKE_FD_KIND_MAX] = {
                [FAKE_FD_CONTAINER] = "container",
                [FAKE_FD_GROUP] = "group",
                [FAKE_FD_DEVICE] = "device",
                [FAKE_FD_CDEV] = "cdev",
                [FAKE_FD_IOMMUFD] = "iommufd",
                [FAKE_FD_DIR] = "dir",
                [FAKE_FD_EVENTFD] = "eventfd",
        };
        return kind >= 0 && kind < _FAKE_FD_KIND_MAX ? table[kind] : "?";
}

void fake_kernel_dump(const FakeKernel *k, FILE *f) {
        static const char *const types[_FAKE_CALL_TYPE_MAX] = {
                [FAKE_CALL_OPENAT] = "openat",
                [FAKE_CALL_IOCTL] = "ioctl",
                [FAKE_CALL_EVENTFD] = "eventfd",
                [FAKE_CALL_CLOSE] = "close",
        };

        for (size_t i = 0; i < k->ncalls; i++) {
                const FakeCall *c = &k->calls[i];

                fprintf(f, "%3zu %-7s fd %3d %-9s", i, types[c->type], c->fd, fake_fd_kind_to_string(c->kind));
                if (c->type == FAKE_CALL_OPENAT)
                        fprintf(f, " %s flags 0x%x", c->path, (unsigned) c->flags);
                if (c->type == FAKE_CALL_IOCTL)
                        fprintf(f, " %s arg 0x%x argsz %u data_fd %d %s", fake_kernel_request_name(c->request),
                                c->arg, c->argsz, c->data_fd, c->device);
                fprintf(f, " -> %d\n", c->result);
        }
        if (k->violations)
                fprintf(f, "%u violation(s), first: %s\n", k->violations, k->violation);
}
