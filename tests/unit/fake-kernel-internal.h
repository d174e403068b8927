#pragma once

/* fake-kernel's insides, shared by its two halves and nothing else (tests use fake-kernel.h):
 * fake-kernel.c, the model (its objects, how a test sets them up and fails them, the kernel's own
 * events, what a test inspects), and fake-kernel-sys.c, the VfioSys calls daemon/vfio.c makes
 * (openat, eventfd, close and every ioctl), with the fd table and the call log behind them. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake-kernel.h"

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

/* ---- fake-kernel.c --------------------------------------------------------------------- */

FakeGroup *group_find(FakeKernel *k, unsigned id);
FakeDevice *device_find(const FakeKernel *k, const char *name);
/* Drops the fake's own eventfd reference (a device's wake_ctx or request_ctx), if any. */
void ctx_put(int *ctx);
/* A suspended device resumes (the ioctl wrapper, or a host access); true if that fired the
 * wake-up eventfd. */
bool device_resume(FakeDevice *d);

/* ---- fake-kernel-sys.c: the VfioSys that fake_kernel_new() puts in k->sys ------------- */

int fake_openat(void *userdata, int dirfd, const char *path, int flags);
int fake_ioctl(void *userdata, int fd, unsigned long request, void *arg);
int fake_eventfd(void *userdata, unsigned initval, int flags);
int fake_close(void *userdata, int fd);
