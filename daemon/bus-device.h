#pragma once

/* bus-device: org.vfiopm1.Device (SPEC §5), one object per managed device at
 * /org/vfiopm1/device/<name escaped with sd_bus_path_encode()>, served by one fallback vtable and
 * a node enumerator over the manager's table: objects come and go with the devices, nothing is
 * registered per device. Mode, State, PowerState, ReleaseReason, ReleasedBy, Wakes and Arms emit
 * PropertiesChanged: bus-manager.c forwards the manager's hooks here, which only mark the device;
 * bus_devices_flush(), once at the end of the loop turn, compares each marked device with what
 * was last announced and sends one signal with what differs. A wake that re-arms in the same turn
 * moves only Wakes and Arms: those wait for the counters' window (bus-manager.c, a second), so a
 * stream of wakes costs the hot path no signal and no sysfs read, and observers still see the
 * counts move. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "manager.h"

#define BUS_DEVICE_PREFIX "/org/vfiopm1/device"
#define BUS_DEVICE_INTERFACE "org.vfiopm1.Device"

/* "/org/vfiopm1/device/_30000_3a01_3a00_2e0" for "0000:01:00.0" (a leading digit is escaped). */
int bus_device_path(const char *name, char **ret);

typedef struct BusDevices BusDevices;

/* Manager.ListDevices()'s answer: the a(so) of every device (name, object path), in name order. */
int bus_devices_append_names(BusDevices *b, sd_bus_message *reply);

/* Manager.ListDeviceStates()'s row: what vfiopmctl status shows of a device (name, vendor,
 * device_id, class, mode, state, power_state, wakes, low_power_usec, energy_saved_joules,
 * energy_estimated), as the Device properties of those names say it. */
#define BUS_DEVICE_STATE_SIGNATURE "sssssssttdb"
/* Appends the a(sssssssttdb) of every device, in name order. */
int bus_devices_append_states(BusDevices *b, sd_bus_message *reply);

/* Adds the objects to bus (they exist at once, for every device the manager has). */
int bus_devices_new(sd_bus *bus, Manager *m, BusDevices **ret);
BusDevices *bus_devices_free(BusDevices *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusDevices *, bus_devices_free)

/* The manager's device hooks: remember what a new device shows, mark a changed one for the next
 * flush, forget a removed one (its unannounced changes too: it is gone). Errors are logged;
 * nothing fails. */
void bus_devices_added(BusDevices *b, ManagedDevice *d);
void bus_devices_changed(BusDevices *b, ManagedDevice *d);
void bus_devices_removed(BusDevices *b, ManagedDevice *d);
/* Announces every device marked since the last flush, in the order marked: one PropertiesChanged
 * each with the properties whose value differs from the last announced (none when nothing does),
 * reading each one's power_state once; but a device whose only change is Wakes/Arms waits for
 * bus_devices_flush_counters(). Returns what happened: BUS_FLUSH_SENT if a signal was queued
 * (the connection's events may have changed), BUS_FLUSH_COUNTERS_WAIT if a device waits. */
enum {
        BUS_FLUSH_SENT = 1 << 0,
        BUS_FLUSH_COUNTERS_WAIT = 1 << 1,
};
int bus_devices_flush(BusDevices *b);
/* What every device shows now becomes the last announced, nothing is marked: before the name is
 * taken, nothing was announced. */
void bus_devices_baseline(BusDevices *b);
/* The manager's hook for a device whose only change is Wakes/Arms (a wake re-armed at once): it
 * waits for bus_devices_flush_counters() without a flush this turn (unless marked for it, which
 * sends them with the rest). Returns BUS_FLUSH_COUNTERS_WAIT if it waits, else 0. */
int bus_devices_counted(BusDevices *b, ManagedDevice *d);
/* Announces the devices that wait with their counters, as bus_devices_flush() would otherwise. */
void bus_devices_flush_counters(BusDevices *b);
