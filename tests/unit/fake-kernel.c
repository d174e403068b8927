/* fake-kernel: the model behind the fake (fake-kernel.h): setting it up (groups, devices, IRQs,
 * what the kernel supports), failure injection, the kernel's own events (a host access, a request
 * for the device back) and what a test inspects (device states, open fds, the call log,
 * violations). The calls daemon/vfio.c makes are in fake-kernel-sys.c. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake-kernel-internal.h"
#include "vfio-internal.h"

/* ---- the model ------------------------------------------------------------------------- */

FakeGroup *group_find(FakeKernel *k, unsigned id) {
        for (unsigned i = 0; i < k->ngroups; i++)
                if (k->groups[i].id == id)
                        return &k->groups[i];
        return NULL;
}

FakeDevice *device_find(const FakeKernel *k, const char *name) {
        for (unsigned i = 0; i < k->ndevices; i++)
                if (strcmp(k->devices[i].name, name) == 0)
                        return (FakeDevice *) &k->devices[i];
        return NULL;
}

void ctx_put(int *ctx) {
        if (*ctx >= 0)
                (void) close(*ctx);
        *ctx = -1;
}

static void signal_ctx(int ctx) {
        uint64_t one = 1;

        if (ctx >= 0 && write(ctx, &one, sizeof(one)) != sizeof(one))
                abort();
}

/* The ioctl wrapper's pm_runtime_resume_and_get(): a suspended device resumes; under a wake-up
 * entry vfio_pci_core_runtime_resume() fires the eventfd and ends the entry. Returns whether it
 * fired. */
bool device_resume(FakeDevice *d) {
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
