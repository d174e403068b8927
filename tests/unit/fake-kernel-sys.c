/* fake-kernel-sys: the fake's VfioSys (fake-kernel.h), what daemon/vfio.c calls: openat of the
 * /dev nodes, eventfd, close, and the ioctls on containers, groups, device fds, cdevs and
 * iommufds, with vfio-pci's checks and errors and the three low-power features. Behind them: the
 * fd table, the call log, the rule violations and taking an injected failure. The model they act
 * on, and everything a test calls, is fake-kernel.c. */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fake-kernel-internal.h"
#include "vfio-internal.h"

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

/* The fds of the fake (f among them) that stand for f's object: a copy (fake_kernel_dup()) is
 * another fd of the same open file. */
static unsigned fds_of(const FakeKernel *k, const FakeFd *f, FakeFdKind kind) {
        unsigned n = 0;

        for (size_t i = 0; i < k->nfds; i++)
                if (k->fds[i].kind == kind && (kind == FAKE_FD_GROUP ? k->fds[i].group == f->group :
                                               k->fds[i].device == f->device))
                        n++;
        return n;
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

/* vfio_pci_core_close_device(): low power ends, the eventfd references go. */
static void device_put(FakeDevice *d) {
        if (--d->opens > 0)
                return;
        d->low_power = FAKE_LOW_POWER_NONE;
        d->suspended = false;
        ctx_put(&d->wake_ctx);
        ctx_put(&d->request_ctx);
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

/* ---- injected failures: the first one set for this call is taken ---------------------- */

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

int fake_openat(void *userdata, int dirfd, const char *path, int flags) {
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

int fake_eventfd(void *userdata, unsigned initval, int flags) {
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

int fake_kernel_dup(FakeKernel *k, int fd) {
        int r;

        if (!fd_find(k, fd))
                return -EBADF;
        r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (r < 0)
                return -errno;
        return fake_kernel_copy(k, fd, r);
}

/* Whether a and b are fds of one open file (the fake's objects are eventfds: one inode for all). */
static bool same_file(int a, int b) {
        return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, a, b) == 0;
}

int fake_kernel_copy_of(FakeKernel *k, int copy) {
        for (size_t i = 0; i < k->nfds; i++)
                if (same_file(k->fds[i].fd, copy))
                        return fake_kernel_copy(k, k->fds[i].fd, copy);
        (void) close(copy);
        return -EBADF;
}

int fake_kernel_copy(FakeKernel *k, int fd, int r) {
        FakeFd *f = fd_find(k, fd), copy;

        if (!f) {
                (void) close(r);
                return -EBADF;
        }
        copy = *f;
        copy.fd = r;
        switch (copy.kind) {
        case FAKE_FD_CONTAINER:
                copy.container->refs++;
                break;
        case FAKE_FD_GROUP:
                copy.group->users++;
                break;
        case FAKE_FD_DEVICE:
                copy.device->opens++;
                copy.group->users++;
                break;
        case FAKE_FD_CDEV:
                if (copy.bound) {
                        copy.device->opens++;
                        copy.iommufd->refs++;
                }
                break;
        case FAKE_FD_IOMMUFD:
                copy.iommufd->refs++;
                break;
        case FAKE_FD_DIR:
        case FAKE_FD_EVENTFD:
        case _FAKE_FD_KIND_MAX:
        case _FAKE_FD_KIND_INVALID:
                break;
        }
        if (fd_add(k, r, copy.kind, &f) < 0) {
                (void) close(r);
                return -ENOMEM;
        }
        *f = copy;
        return r;
}

int fake_close(void *userdata, int fd) {
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
                f->group->open = fds_of(k, f, FAKE_FD_GROUP) > 1;      /* a copy keeps it open */
                group_put(f->group);
                break;
        case FAKE_FD_DEVICE:
                device_put(f->device);
                group_put(f->group);
                break;
        case FAKE_FD_CDEV:
                if (f->bound) {
                        f->device->cdev_bound = fds_of(k, f, FAKE_FD_CDEV) > 1;
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

int fake_ioctl(void *userdata, int fd, unsigned long request, void *arg) {
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
