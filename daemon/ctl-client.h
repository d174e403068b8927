#pragma once

/* ctl-client: the client side of the org.vfiopm1 API (SPEC §5), shared by vfiopmctl and the
 * libvirt hook. The system bus is the one sd_bus_open_system() finds, so DBUS_SYSTEM_BUS_ADDRESS
 * points a test at a private bus. Every call has a deadline: nothing here waits forever. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "cleanup.h"

/* vfiopmctl's exit statuses (SPEC §6). */
typedef enum CtlExit {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILED = 1,            /* the operation failed */
        CTL_EXIT_USAGE = 2,             /* bad command line */
        CTL_EXIT_UNREACHABLE = 3,       /* no bus, no daemon on it, or no answer in time */
} CtlExit;

/* Connects to the system bus; every method call made through ctl_call() waits at most
 * timeout_usec. */
int ctl_bus_open(uint64_t timeout_usec, sd_bus **ret);

/* Calls method member of org.vfiopm1.Manager with the arguments types/... (types NULL: none).
 * Returns ≥ 0 and the reply (ret_reply may be NULL), or a negative errno with error set when the
 * daemon (or the bus) answered with an error. */
int ctl_call(sd_bus *bus, sd_bus_error *error, sd_bus_message **ret_reply, const char *member,
             const char *types, ...);

/* The exit status a failed call (r < 0, error as it left it) earns: CTL_EXIT_UNREACHABLE when the
 * daemon could not be reached or did not answer, else CTL_EXIT_FAILED. */
CtlExit ctl_exit_status(int r, const sd_bus_error *error);

/* One line for stderr: the error's message, or the errno's text, with the reason why the daemon
 * is unreachable when it is. Static storage: valid until the next call. */
const char *ctl_error_text(int r, const sd_bus_error *error);

/* A device's properties (org.vfiopm1.Device, SPEC §5). */
typedef struct CtlDevice {
        char *path;
        char *name;
        char *vendor;
        char *device_id;
        char *class;
        char *driver;
        char *iommu_group;
        char *mode;
        char *state;
        char *power_state;
        char *runtime_status;
        char *release_reason;           /* "", release, group, request, reservation */
        char *released_by;
        char *last_error;
        char *policy;                   /* JSON */
        uint64_t wakes;
        uint64_t arms;
        uint64_t low_power_usec;
        uint64_t kernel_suspended_msec;
        uint64_t kernel_suspended_since_seen_msec;
        double energy_saved_joules;
        bool energy_estimated;          /* energy_saved_joules is an estimate (watts declared) */
        uint64_t last_wake_realtime_usec;
        char *block;                    /* if set, every string above points into it: one
                                         * allocation, freed alone */
} CtlDevice;

/* Reads every property of the device object at path in one GetAll. */
int ctl_device_get(sd_bus *bus, const char *path, CtlDevice *ret, sd_bus_error *error);
/* Looks the name up with GetDevice first. */
int ctl_device_get_by_name(sd_bus *bus, const char *name, CtlDevice *ret, sd_bus_error *error);
void ctl_device_done(CtlDevice *d);

/* Every device, sorted by name (as ListDevices lists them), from one GetManagedObjects call on
 * /org/vfiopm1. */
int ctl_devices_get(sd_bus *bus, CtlDevice **ret, size_t *ret_n, sd_bus_error *error);
void ctl_devices_free(CtlDevice *devices, size_t n);

/* The daemon's uptime in µs, from the start time of the process that owns org.vfiopm1: the
 * denominator of LOW%. -ENXIO if nobody owns the name. */
int ctl_daemon_uptime(sd_bus *bus, uint64_t *ret);

/* What vfiopmctl status shows. */
typedef struct CtlStatus {
        CtlDevice *devices;             /* as ctl_devices_get() */
        size_t n_devices;
        char *version;                  /* NULL: unknown */
        char **policy_errors;           /* NULL: unknown, or none */
        uint64_t uptime_usec;           /* as ctl_daemon_uptime(); 0: unknown */
        double energy_saved_joules;     /* the Manager's EnergySavedJoules; NAN: unknown */
} CtlStatus;

/* In one round trip: the devices' call, the Manager's GetAll and the bus's word on the daemon's
 * pid go out together, and the replies are awaited together. With full, the devices come from
 * GetManagedObjects with every property (as ctl_devices_get()); without, from ListDeviceStates
 * with what the status table shows (name, vendor, device_id, class, mode, state, power_state,
 * wakes, low_power_usec, energy_saved_joules, energy_estimated; every other string ""). Fails as ctl_devices_get() would; version,
 * policy errors and uptime are left unknown when they cannot be read. */
int ctl_status_get(sd_bus *bus, bool full, CtlStatus *ret, sd_bus_error *error);
void ctl_status_done(CtlStatus *s);
