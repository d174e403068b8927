#pragma once

/* manager: the daemon's one event loop (libevent on epoll) and what hangs off it: the table of
 * VFIO devices (from udev-monitor), their policy (policy-file), their state machines (pm) with
 * their eventfds and deadlines, signals (SIGHUP reload, SIGTERM/SIGINT stop) and sd_notify.
 * No timer runs unless a device waits on a deadline or systemd's watchdog is on. */

#include <event2/event.h>
#include <stdbool.h>

#include "cleanup.h"
#include "device.h"
#include "energy.h"
#include "pm.h"
#include "policy-set.h"

typedef struct Manager Manager;

/* Where the records of the sysfs values found before the daemon changed them live (pm.h), so
 * that a daemon restarted after a crash puts back those and not what the dead one left. */
#define MANAGER_STATE_DIR_DEFAULT "/run/vfiopmd/state"
/* Where the releases live that a restarted daemon must keep (release-store.h). */
#define MANAGER_RELEASE_DIR_DEFAULT "/run/vfiopmd/released"

typedef struct ManagerConfig {
        char **policy_dirs;     /* absolute; borrowed */
        int root_fd;            /* "/": the policy and state directories are opened below it */
        const char *state_dir;  /* absolute; NULL: MANAGER_STATE_DIR_DEFAULT; created (0755) if
                                 * missing; unusable: a warning, and the originals are kept in
                                 * memory only */
        const char *release_dir; /* absolute; NULL: MANAGER_RELEASE_DIR_DEFAULT; created (0755) if
                                  * missing; unusable: a warning, releases end with the daemon */
        int sysfs_fd;           /* "/sys" */
        int dev_fd;             /* "/dev" */
        VfioPath vfio_path;     /* _VFIO_PATH_INVALID: pick */
        const VfioSys *vfio_sys; /* NULL: vfio_sys_kernel(); borrowed, outlives the manager (tests:
                                  * a fake kernel) */
        struct FdStore *fdstore; /* the fds an earlier daemon left; NULL: what the service manager
                                  * passed ($LISTEN_FDS); borrowed (tests) */
} ManagerConfig;

int manager_new(const ManagerConfig *config, Manager **ret);
/* Closes every held device (the kernel takes them back) and restores what was changed in sysfs. */
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free)

/* Loads the policy, starts listening to udev and takes every present device's first decision;
 * manager_notify_ready() then tells systemd. */
int manager_start(Manager *m);
/* What manager_start() does for systemd's watchdog: when $WATCHDOG_USEC asks for it, a timer
 * in the loop sends WATCHDOG=1 every WATCHDOG_USEC/2. For tests that add devices by hand. */
int manager_start_watchdog(Manager *m);

/* Tells systemd READY=1 and the first STATUS=: once every way in is open (the bus name too), so
 * that whoever systemd starts after us finds us. */
void manager_notify_ready(Manager *m);

/* Runs the loop until SIGTERM/SIGINT, manager_stop() (returns 0) or manager_fail() (returns the
 * error given, so that the daemon exits non-zero and systemd's Restart=on-failure applies). */
int manager_run(Manager *m);
void manager_stop(Manager *m);
void manager_fail(Manager *m, int error);

/* What manager_start() does around the first decisions for the held devices of an earlier
 * daemon (SPEC §9): before, take the fds the service manager kept (ManagerConfig.fdstore, else
 * $LISTEN_FDS) and open the held record; after, let go of what it left and this one does not
 * hold. For tests that add devices by hand. */
void manager_held_begin(Manager *m);
void manager_held_end(Manager *m);

/* Re-reads the policy files and applies the result to every device (SIGHUP, D-Bus Reload).
 * Returns the number of policy errors (files keeping their last good content). */
int manager_reload(Manager *m);

struct event_base *manager_event_base(Manager *m);
const PolicySet *manager_policy(const Manager *m);

const ManagerConfig *manager_config(const Manager *m);

/* The devices, for the bus and the CLI: a NULL-terminated array in name order, borrowed until
 * the next turn of the loop. */
typedef struct ManagedDevice ManagedDevice;
int manager_devices(Manager *m, ManagedDevice ***ret, size_t *ret_n);
/* The devices by state, as STATUS= says them; kept as states change, never by a walk. */
void manager_state_counts(const Manager *m, size_t ret[_PM_STATE_MAX]);
ManagedDevice *manager_find_device(Manager *m, const char *name);

/* What udev reports (DEVICE_EVENT_VFIO_ADD/REMOVE), callable directly by tests: adds the device
 * at bus/<bus>/devices/<name> below the sysfs fd and takes its first decision; forgets it. */
int manager_add_device(Manager *m, const char *bus, const char *name);
void manager_remove_device(Manager *m, const char *name);
/* What udev reports as DEVICE_EVENT_CHANGE: a device waiting in busy is claimed again (its holder
 * may have let go), an unknown device that is now bound to a VFIO driver is added. */
void manager_change_device(Manager *m, const char *bus, const char *name);

/* Hand-off (SPEC §5). vfio group opens are exclusive, so both act on IOMMU groups.
 *
 * Release: name (PM_RELEASE_OWN) and every device of its IOMMU group that is held or wanted
 * (PM_RELEASE_GROUP, released by name) are closed when it returns: the group is free. A device
 * present in sysfs but not on a VFIO driver is reserved (PM_RELEASE_RESERVATION): it joins the
 * table as released, and stays released when it comes onto vfio-pci, until Claim. Releases are
 * kept in the release directory, so that a restarted daemon keeps them; a released device that
 * leaves its VFIO driver stays in the table, released, while it is in sysfs. Errors: -ENODEV no
 * such device in sysfs (or not a device name), -ENOTCONN name is not held and not wanted (modes
 * kernel, on) and nothing else of its group was held.
 *
 * Claim: ends name's release (or its reservation: a device off VFIO leaves the table; a
 * reservation of a device that is not present is dropped) and claims every device released by
 * name's Release, and retries the devices of its group that wait in busy (an earlier Claim found
 * the group held). -ENODEV when there is nothing of that name; else pm_device_claim()'s result
 * for name (-EBUSY: another process holds it).
 *
 * ret_also: the other devices released (claimed) with name, NULL-terminated; may be NULL. */
int manager_release(Manager *m, const char *name, char ***ret_also);
int manager_claim(Manager *m, const char *name, char ***ret_also);
/* The released devices of the release directory that are not in the table (not on a VFIO driver)
 * join it, released as they were: manager_start() calls it after the enumeration, tests
 * directly. */
void manager_load_releases(Manager *m);

/* One device, borrowed: valid while the device is in the table. Claim, Release and Wake go
 * straight to its state machine (pm_device_claim() …): what they change comes back through the
 * hooks below. */
const DeviceInfo *managed_device_info(const ManagedDevice *d);
PmDevice *managed_device_pm(const ManagedDevice *d);
/* The device whose Release (or reservation) released d; NULL when d is not released by one. */
const char *managed_device_released_by(const ManagedDevice *d);
/* false: a released device not (or no longer) on a VFIO driver. */
bool managed_device_on_vfio(const ManagedDevice *d);
/* NULL until the first evaluation succeeded. */
const EffectivePolicy *managed_device_policy(const ManagedDevice *d);
/* The estimate of energy saved since the daemon first saw d (energy.h), from a reading of
 * power/runtime_suspended_time (a pread(), wakes nothing): a fresh one, but within one batch of
 * readers (manager_readers_batch()) the batch's first. */
void managed_device_energy(ManagedDevice *d, EnergyReading *ret);
/* The sum of managed_device_energy()'s joules over every device in the table. */
double manager_energy_saved_joules(Manager *m);
/* The bus starts serving a batch of messages (at most a loop turn's): the replies in it read each
 * device's suspended time once, not once a property (a GetManagedObjects asks for three of them a
 * device, `vfiopmctl status` sends ListDeviceStates and the Manager's GetAll together). */
void manager_readers_batch(Manager *m);
/* The kernel's power view now (power_state, power/runtime_status), each a pread() of a sysfs fd
 * kept open after the first read (device.h): wakes nothing. */
DevicePowerState managed_device_power_state(ManagedDevice *d);
const char *managed_device_runtime_status(ManagedDevice *d, char buf[static DEVICE_RUNTIME_STATUS_MAX]);
/* One pointer for the hooks' owner (bus-device.c: what it last announced of d), so that a hook
 * finds its own record of d without a lookup by name; NULL until set, only kept here. */
void *managed_device_observer(const ManagedDevice *d);
void managed_device_set_observer(ManagedDevice *d, void *observer);

/* What the D-Bus side (bus-manager.c) hears of, without manager.c knowing sd-bus. Called from
 * the loop; a hook must not call manager or pm functions that change anything.
 *   device_added     the device is in the table, before its first decision
 *   device_removed   it is still in the table (and still readable), about to be freed
 *   device_changed   its state moved (pm), or a policy was applied (its mode may have moved):
 *                    compare with what was last seen; also 0.1, 1 and 5 s after each such
 *                    change (POWER_FOLLOW_MS in manager.c), for the kernel's power_state and
 *                    runtime_status settling after it (sysfs cannot be polled for them)
 *   policy_reloaded  manager_reload() is done (PolicyErrors may have moved) */
typedef struct ManagerHooks {
        /* SIGTERM: whether the service manager will start the daemon again at once (a restart
         * job): then the devices stay held in its fd store (SPEC §9) instead of being let go.
         * NULL: let go. */
        bool (*restart_pending)(void *userdata);
        void (*device_added)(void *userdata, ManagedDevice *d);
        void (*device_removed)(void *userdata, ManagedDevice *d);
        void (*device_changed)(void *userdata, ManagedDevice *d);
        /* Only the device's Wakes and Arms moved (a wake re-armed at once): the hot path of a
         * stream of wakes. NULL: device_changed. */
        void (*device_counted)(void *userdata, ManagedDevice *d);
        void (*policy_reloaded)(void *userdata);
        void *userdata;
} ManagerHooks;

/* Copies hooks; NULL removes them. */
void manager_set_hooks(Manager *m, const ManagerHooks *hooks);

/* Whether the service manager keeps the held devices' fds across a restart of the daemon (the
 * unit has a file descriptor store and restarts the daemon when it fails): then a daemon that
 * fails, or stops for a restart, leaves them held, as they are (pm_device_leave()). Before
 * manager_start(); default false: every exit lets the devices go, as outside systemd. Until it
 * is called (no bus to ask the service manager), the held devices' fds are sent to the store
 * anyway, for a restart by SIGKILL or the watchdog; once told false, nothing is sent to a store
 * that would drop it. */
void manager_set_keep_held(Manager *m, bool keep);
