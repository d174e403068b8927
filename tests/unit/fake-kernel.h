#pragma once

/* fake-kernel: a VfioSys (daemon/vfio.h) that plays the kernel's VFIO side for the unit tests,
 * well enough that daemon/vfio.c cannot tell it from the real one on the paths it takes:
 *
 *   - /dev namespace: vfio/vfio (container), vfio/N and vfio/noiommu-N (groups), and, once
 *     fake_kernel_set_cdev() turned them on, vfio/devices/ (directory), vfio/devices/vfioX
 *     (device cdevs) and iommu (iommufd). The dirfd given to openat is not looked at.
 *   - group + container: VFIO_GROUP_GET_STATUS, VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION,
 *     VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_GROUP_GET_DEVICE_FD; a group has one
 *     opener at a time (a second open is EBUSY, as is a group another process holds).
 *   - cdev + iommufd: VFIO_DEVICE_BIND_IOMMUFD (EBUSY while the group is held), IOMMU_IOAS_ALLOC,
 *     VFIO_DEVICE_ATTACH_IOMMUFD_PT; a cdev fd serves nothing else before its bind.
 *   - device: VFIO_DEVICE_GET_INFO, _GET_IRQ_INFO, _SET_IRQS (eventfd trigger on the request
 *     index only, as vfio-pci and vfio_pm_sim) and the three low-power features with vfio-pci's
 *     semantics and errors (SPEC §1, tests/conformance/README.md). The device suspends at once
 *     on entry; every ioctl on a suspended device resumes it first, firing a wake-up eventfd.
 *
 * Every fd it hands out is a real one (eventfds stand in for the kernel objects), so numbers
 * never clash with the test's own fds and a leak is an fd left open. Every call is logged, and
 * what the kernel would not notice but the daemon must never do is counted as a violation: an
 * fd without O_CLOEXEC, an eventfd without EFD_NONBLOCK|EFD_CLOEXEC, a call on an fd the fake
 * never gave, and any ioctl but a low-power feature on a device while an entry is in force. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cleanup.h"
#include "vfio.h"

typedef struct FakeKernel FakeKernel;

typedef enum FakeFdKind {
        FAKE_FD_CONTAINER,
        FAKE_FD_GROUP,
        FAKE_FD_DEVICE,         /* from VFIO_GROUP_GET_DEVICE_FD */
        FAKE_FD_CDEV,           /* vfio/devices/vfioX */
        FAKE_FD_IOMMUFD,
        FAKE_FD_DIR,            /* vfio/devices */
        FAKE_FD_EVENTFD,
        _FAKE_FD_KIND_MAX,
        _FAKE_FD_KIND_INVALID = -EINVAL,
} FakeFdKind;

typedef enum FakeCallType {
        FAKE_CALL_OPENAT,
        FAKE_CALL_IOCTL,
        FAKE_CALL_EVENTFD,
        FAKE_CALL_CLOSE,
        _FAKE_CALL_TYPE_MAX,
} FakeCallType;

typedef struct FakeCall {
        FakeCallType type;
        int fd;                 /* ioctl, close: the fd acted on; openat, eventfd: the fd made */
        FakeFdKind kind;        /* its kind, _FAKE_FD_KIND_INVALID when unknown or failed */
        char path[64];          /* openat */
        int flags;              /* openat, eventfd */
        unsigned long request;  /* ioctl */
        /* ioctl: what the call said, decoded: VFIO_DEVICE_FEATURE flags, VFIO_SET_IOMMU and
         * VFIO_CHECK_EXTENSION type, VFIO_DEVICE_SET_IRQS and _GET_IRQ_INFO index,
         * VFIO_GROUP_SET_CONTAINER and VFIO_DEVICE_BIND_IOMMUFD fd, ATTACH pt_id */
        uint32_t arg;
        uint32_t argsz;         /* ioctl: the argsz/size field, where the struct has one */
        int32_t data_fd;        /* ioctl: ENTRY_WITH_WAKEUP's wakeup_eventfd, SET_IRQS' fd */
        char device[32];        /* ioctl, close: the device of a device or cdev fd, else "" */
        int result;             /* ≥ 0 or -errno */
} FakeCall;

typedef enum FakeDeviceType {
        FAKE_DEVICE_PCI,        /* vfio-pci: 5 IRQs, the request IRQ at VFIO_PCI_REQ_IRQ_INDEX */
        FAKE_DEVICE_PLATFORM,   /* vfio_pm_sim: 1 IRQ, the request IRQ at index 0 */
} FakeDeviceType;

/* A device's entry state, as vfio-pci keeps it. */
typedef enum FakeLowPower {
        FAKE_LOW_POWER_NONE,
        FAKE_LOW_POWER_PLAIN,   /* LOW_POWER_ENTRY in force */
        FAKE_LOW_POWER_WAKEUP,  /* LOW_POWER_ENTRY_WITH_WAKEUP in force */
} FakeLowPower;

typedef struct FakeIrq {
        uint32_t flags;         /* VFIO_IRQ_INFO_* */
        uint32_t count;
} FakeIrq;

int fake_kernel_new(FakeKernel **ret);
/* Closes whatever fds the fake still has open. */
FakeKernel *fake_kernel_free(FakeKernel *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(FakeKernel *, fake_kernel_free)

const VfioSys *fake_kernel_sys(FakeKernel *k);

/* ---- the model ----------------------------------------------------------------------- */

/* vfio/devices/ and iommu exist (CONFIG_VFIO_DEVICE_CDEV); off by default, as on Debian. */
void fake_kernel_set_cdev(FakeKernel *k, bool on);
/* What VFIO_CHECK_EXTENSION reports; both on by default. */
void fake_kernel_set_iommu_types(FakeKernel *k, bool type1, bool type1v2);
/* VFIO_GET_API_VERSION's answer; VFIO_API_VERSION by default. */
void fake_kernel_set_api_version(FakeKernel *k, int version);

/* A group, viable and free; noiommu: its node is vfio/noiommu-N and it takes only
 * VFIO_NOIOMMU_IOMMU. */
int fake_kernel_add_group(FakeKernel *k, unsigned id, bool noiommu);
int fake_kernel_set_group_viable(FakeKernel *k, unsigned id, bool viable);
/* Another process holds the group: opening it, or binding a device of it, is EBUSY. */
int fake_kernel_set_group_held_elsewhere(FakeKernel *k, unsigned id, bool held);

/* A device in group (which must exist), with cdev vfio/devices/vfio<cdev_index>. */
int fake_kernel_add_device(FakeKernel *k, const char *name, unsigned group, unsigned cdev_index,
                           FakeDeviceType type);
/* Replaces the device's IRQs (at most 8); request_index: where SET_IRQS may register the request
 * eventfd, -1 for nowhere. */
int fake_kernel_set_device_irqs(FakeKernel *k, const char *name, const FakeIrq *irqs, unsigned n,
                                int request_index);
/* Overrides the VFIO_DEVICE_FLAGS_* that VFIO_DEVICE_GET_INFO reports. */
int fake_kernel_set_device_flags(FakeKernel *k, const char *name, uint32_t flags);

/* ---- failure injection: the next matching call fails with -err (err > 0) --------------- */

void fake_kernel_fail_ioctl(FakeKernel *k, unsigned long request, int err);
void fake_kernel_fail_openat(FakeKernel *k, const char *path, int err);
/* The eventfd() call after skip successful ones fails. */
void fake_kernel_fail_eventfd(FakeKernel *k, unsigned skip, int err);

/* ---- the kernel's side ---------------------------------------------------------------- */

/* A host access to the device (power/control=on, a config read of a D3cold device): a suspended
 * device resumes; under a wake-up entry the eventfd fires and the entry ends, under a plain one
 * the device suspends again by itself. Returns 1 if the wake-up eventfd fired, 0 if not,
 * -ENOENT for an unknown device. */
int fake_kernel_host_access(FakeKernel *k, const char *name);
/* The kernel asks for the device back (driver unbind): the request eventfd fires. -ENOENT for an
 * unknown device, -ENOTCONN when none is registered (the real kernel would wait forever). */
int fake_kernel_request(FakeKernel *k, const char *name);

bool fake_kernel_device_open(const FakeKernel *k, const char *name);
bool fake_kernel_device_suspended(const FakeKernel *k, const char *name);
FakeLowPower fake_kernel_device_low_power(const FakeKernel *k, const char *name);
/* The fd number the device's request trigger is registered with, -1 if none. */
int fake_kernel_device_request_fd(const FakeKernel *k, const char *name);

/* Another fd of the same open file as fd (one the fake gave), as the service manager's file
 * descriptor store holds one (SCM_RIGHTS): the object (device, group, container, iommufd,
 * eventfd) stays open until every fd of it is closed, through the VfioSys or fake_close().
 * -EBADF for an fd the fake never gave. Not logged. */
int fake_kernel_dup(FakeKernel *k, int fd);
/* The same for copy, an fd of the same open file as fd made elsewhere (received with
 * SCM_RIGHTS): the fake takes it (closed on failure). Returns copy, or -EBADF. */
int fake_kernel_copy(FakeKernel *k, int fd, int copy);
/* The same, finding the fd of the fake that copy is a copy of (the same file). */
int fake_kernel_copy_of(FakeKernel *k, int copy);

/* ---- inspection ----------------------------------------------------------------------- */

/* fds the fake has handed out and that are still open (eventfds included). */
unsigned fake_kernel_open_fds(const FakeKernel *k);
unsigned fake_kernel_open_fds_of(const FakeKernel *k, FakeFdKind kind);

size_t fake_kernel_ncalls(const FakeKernel *k);
const FakeCall *fake_kernel_call(const FakeKernel *k, size_t i);
/* Forgets the log (not the model), so a test looks at what follows only. */
void fake_kernel_clear_calls(FakeKernel *k);
/* The first call at index ≥ from of this type (and, for ioctls, request unless 0), else -1. */
long fake_kernel_find_call(const FakeKernel *k, size_t from, FakeCallType type, unsigned long request);
/* How many logged calls match. */
unsigned fake_kernel_count_calls(const FakeKernel *k, FakeCallType type, unsigned long request);

unsigned fake_kernel_violations(const FakeKernel *k);
/* The first violation's description, "" if none. */
const char *fake_kernel_violation(const FakeKernel *k);

/* "VFIO_GROUP_GET_STATUS", …, or "0x…". */
const char *fake_kernel_request_name(unsigned long request);
const char *fake_fd_kind_to_string(FakeFdKind kind);
/* The log, one line a call, for failing tests. */
void fake_kernel_dump(const FakeKernel *k, FILE *f);
