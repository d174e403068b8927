#pragma once

/* device: what sysfs says about one VFIO device: its identity (for the policy engine and D-Bus)
 * and the kernel's view of its power, read without waking it (SPEC §1: reading power_state,
 * power/runtime_status and power/runtime_suspended_time never wakes anything). */

#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "policy.h"
#include "sysfs.h"

typedef struct DeviceInfo {
        char *name;                     /* "0000:01:00.0", "vfio-pm-sim.3" */
        char *bus;                      /* "pci", "platform" */
        char *vendor;                   /* 4 lowercase hex digits, NULL when the bus has none */
        char *device_id;
        char *subsystem_vendor;
        char *subsystem_device;
        char *class;                    /* 6 lowercase hex digits, NULL when the bus has none */
        char *driver;                   /* bound driver, NULL when unbound */
        int iommu_group;                /* -1 when none */
} DeviceInfo;

/* Reads bus/<bus>/devices/<name> below sysfs_fd. -ENODEV if the device is not there. */
int device_info_read(int sysfs_fd, const char *bus, const char *name, DeviceInfo **ret);
DeviceInfo *device_info_free(DeviceInfo *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeviceInfo *, device_info_free)

/* A view for the policy engine; borrows i's strings. */
void device_info_facts(const DeviceInfo *i, DeviceFacts *ret);

/* The bus of the device named name, whatever its driver: "pci" or "platform" (static strings),
 * where bus/<bus>/devices/<name> exists below sysfs_fd; -ENODEV where it is on neither. */
int device_find_bus(int sysfs_fd, const char *name, const char **ret_bus);

/* Whether a VFIO driver has the device: it has a vfio-dev/vfioN child (on 6.1 too). */
bool device_is_vfio(int sysfs_fd, const char *bus, const char *name);

/* The kernel's power view. Missing attributes read as "unknown" / 0. */
typedef enum DevicePowerState {
        DEVICE_POWER_D0,
        DEVICE_POWER_D3HOT,
        DEVICE_POWER_D3COLD,
        DEVICE_POWER_UNKNOWN,
        _DEVICE_POWER_MAX,
        _DEVICE_POWER_INVALID = -EINVAL,
} DevicePowerState;

/* "D0", "D3hot", "D3cold", "unknown" (SPEC §3) */
const char *device_power_state_to_string(DevicePowerState s);
DevicePowerState device_power_state_from_string(const char *s);

/* A device's power attributes, read through fds kept open (sysfs.h's SysfsAttr) below its sysfs
 * directory dir_fd: one pread() a read, and only when someone asks. */
typedef struct DevicePowerAttrs {
        SysfsAttr power_state;          /* power_state (PCI) */
        SysfsAttr runtime_status;       /* power/runtime_status */
} DevicePowerAttrs;

#define DEVICE_POWER_ATTRS_NULL ((DevicePowerAttrs) { SYSFS_ATTR_NULL, SYSFS_ATTR_NULL })

void device_power_attrs_close(DevicePowerAttrs *a);
/* PCI's D1, D2 and "error", a missing or unreadable attribute: "unknown" to SPEC §3's words. */
DevicePowerState device_power_state_read(DevicePowerAttrs *a, int dir_fd);
/* "active", "suspended", "suspending", …; "unknown" when missing or unreadable. Returns buf. */
#define DEVICE_RUNTIME_STATUS_MAX 16
const char *device_runtime_status_read(DevicePowerAttrs *a, int dir_fd, char buf[static DEVICE_RUNTIME_STATUS_MAX]);
