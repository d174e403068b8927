#pragma once

/* bus-manager: the D-Bus API of SPEC §5. org.vfiopm1.Manager at /org/vfiopm1, the device objects
 * of bus-device.h below it, and the sd-bus connection served from the manager's libevent loop:
 * one event on the bus fd (EV_READ, plus EV_WRITE while output is queued) and a timer only while
 * sd-bus has a finite timeout (a pending call) or a turn left messages for the next one
 * (BUS_MESSAGES_PER_TURN), so an idle daemon stays asleep.
 *
 * /org/vfiopm1 is also an org.freedesktop.DBus.ObjectManager over the device objects:
 * GetManagedObjects answers with every device and its properties; InterfacesAdded and
 * InterfacesRemoved go out beside DeviceAdded and DeviceRemoved.
 *
 * Reads (properties, ListDevices, ListDeviceStates, GetDevice, GetManagedObjects, Introspect) are
 * open to everyone. Every method that changes something checks the sender's effective uid from
 * its credentials and answers org.freedesktop.DBus.Error.AccessDenied, changing nothing, unless
 * it is 0.
 *
 * SetPolicy(name, rule_json, runtime) writes the per-device file 90-dbus-<name>.json into the last
 * policy directory (runtime) or the one before it (persistent), creating the directory if needed:
 *   - name must be a present device (NoSuchDevice) and usable in a file name
 *     (org.freedesktop.DBus.Error.InvalidArgs otherwise; kernel names always are);
 *   - rule_json must be one valid rule object (InvalidPolicy with the parser's message, which
 *     names the file that would have been written); "match.device" is set to name, replacing
 *     whatever the caller gave, so the file only ever applies to that device; other match keys
 *     stay and narrow it further;
 *   - the file holds exactly that rule, validated again as written; it is written to a temporary
 *     file in the same directory, fsync'd, renamed over the old one and the directory fsync'd
 *     (if that last fsync fails, the file is in place all the same: the call goes on and
 *     succeeds, and a warning in the log says the change may not survive a crash);
 *   - then the policy is reloaded, as by Reload(). A runtime file masks a persistent one of the
 *     same name while it exists (SPEC §2 masking).
 * ResetPolicy(name, runtime) removes that file (the directory fsync'd, as above) and reloads; a
 * missing file is no error, and name
 * need not be a present device, so the file of a device that is gone can be removed too. */

#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "manager.h"

#define BUS_NAME "org.vfiopm1"
#define BUS_MANAGER_PATH "/org/vfiopm1"
#define BUS_MANAGER_INTERFACE "org.vfiopm1.Manager"

#define BUS_ERROR_NO_SUCH_DEVICE "org.vfiopm1.Error.NoSuchDevice"
#define BUS_ERROR_INVALID_POLICY "org.vfiopm1.Error.InvalidPolicy"
#define BUS_ERROR_BUSY "org.vfiopm1.Error.Busy"
#define BUS_ERROR_NOT_HELD "org.vfiopm1.Error.NotHeld"

/* Messages the connection is served a turn of the loop, at most: reads are open to every user,
 * and a client that never stops asking must leave each turn to the other ready sources (the
 * request eventfds, re-arms, udev, the watchdog's ping). What is left waits for the next turn. */
#define BUS_MESSAGES_PER_TURN 16

typedef struct BusManager BusManager;

/* Adds the objects to bus (a started connection, referenced), hooks into the manager and starts
 * serving the connection from the manager's loop. The name is not requested yet. */
int bus_manager_new(Manager *m, sd_bus *bus, BusManager **ret);
/* Unhooks from the manager and the loop; the bus connection is left to its owner. */
BusManager *bus_manager_free(BusManager *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusManager *, bus_manager_free)

/* Requests BUS_NAME: once the devices are known (after manager_start()), so that the first
 * caller sees them. -EEXIST if another connection owns it. */
int bus_manager_request_name(BusManager *b);
