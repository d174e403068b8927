#pragma once

/* bus-device: org.vfiopm1.Device (SPEC §5), one object per managed device at
 * /org/vfiopm1/device/<name escaped with sd_bus_path_encode()>, served by one fallback vtable and
 * a node enumerator over the manager's table: objects come and go with the devices, nothing is
 * registered per device. State, Mode and PowerState emit PropertiesChanged: bus-manager.c
 * forwards the manager's hooks here, and each is compared with what was last announced. */

#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "manager.h"

#define BUS_DEVICE_PREFIX "/org/vfiopm1/device"
#define BUS_DEVICE_INTERFACE "org.vfiopm1.Device"

/* "/org/vfiopm1/device/_30000_3a01_3a00_2e0" for "0000:01:00.0" (a leading digit is escaped). */
int bus_device_path(const char *name, char **ret);

typedef struct BusDevices BusDevices;

/* Adds the objects to bus (they exist at once, for every device the manager has). */
int bus_devices_new(sd_bus *bus, Manager *m, BusDevices **ret);
BusDevices *bus_devices_free(BusDevices *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusDevices *, bus_devices_free)

/* The manager's device hooks: remember what a new device shows, announce what moved (no
 * message when nothing did), forget a removed one. Errors are logged; nothing fails. */
void bus_devices_added(BusDevices *b, ManagedDevice *d);
void bus_devices_changed(BusDevices *b, ManagedDevice *d);
void bus_devices_removed(BusDevices *b, ManagedDevice *d);
