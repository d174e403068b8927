#pragma once

/* udev-monitor: which devices a VFIO driver has, at start (enumeration) and as it changes
 * (netlink monitor), in the daemon's event loop. A device is a VFIO device when it has a
 * "vfio-dev" class child (vfio-pci and its variants, vfio-pm-sim, …): that child's add and
 * remove events are the driver's bind and unbind. Events of the pci and platform buses are
 * passed on too, so that the daemon can retry a busy device when anything happens to it. */

#include <event2/event.h>

#include "cleanup.h"

typedef enum DeviceEvent {
        DEVICE_EVENT_VFIO_ADD,          /* a VFIO driver has the device (bound, or present at start) */
        DEVICE_EVENT_VFIO_REMOVE,       /* it no longer has it (unbound, removed); bus may be NULL */
        DEVICE_EVENT_CHANGE,            /* any other event of a pci or platform device */
        _DEVICE_EVENT_MAX,
        _DEVICE_EVENT_INVALID = -EINVAL,
} DeviceEvent;

const char *device_event_to_string(DeviceEvent e);

typedef void (*DeviceMonitorHandler)(void *userdata, DeviceEvent event, const char *bus, const char *name);

typedef struct DeviceMonitor DeviceMonitor;

/* Starts listening (events that arrive during enumeration are not lost: they queue on the
 * socket). */
int device_monitor_new(struct event_base *base, DeviceMonitorHandler handler, void *userdata,
                       DeviceMonitor **ret);
DeviceMonitor *device_monitor_free(DeviceMonitor *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeviceMonitor *, device_monitor_free)

/* Calls the handler with DEVICE_EVENT_VFIO_ADD for every VFIO device present; returns how many.
 * Needs no monitor (vfiopmd --check-config). */
int device_enumerate_vfio(DeviceMonitorHandler handler, void *userdata);

/* The device a vfio-dev child belongs to, from the child's devpath:
 * "/devices/pci0000:00/0000:00:01.0/vfio-dev/vfio0" → "0000:00:01.0". -EINVAL if it is not one. */
int vfio_dev_parent_name(const char *devpath, char **ret);
