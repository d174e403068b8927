#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>

#include "bus-device.h"
#include "bus-manager.h"
#include "log.h"
#include "macro.h"
#include "policy-store.h"
#include "time-util.h"

struct BusManager {
        Manager *manager;
        sd_bus *bus;
        BusDevices *devices;
        sd_bus_slot *vtable_slot;
        sd_bus_slot *object_manager_slot;
        struct event *io;
        struct event *timer;
        struct event *flush;            /* made active by a device change: runs at the turn's end */
        struct event *counters;         /* the counters' window: armed while counts wait */
        short io_what;                  /* what io is armed with, 0: not yet */
        bool more;                      /* the last round stopped at BUS_MESSAGES_PER_TURN */
        bool dead;                      /* the connection is gone: stop serving it */
        bool named;                     /* org.vfiopm1 is taken: announcements begin */
};

/* ---- the connection in the loop --------------------------------------------------------- */

static void on_bus_io(evutil_socket_t fd, short what, void *userdata);

/* After every round of sd_bus_process() and every message sent from outside it: watch the fd for
 * what sd-bus waits on, and keep a timer only while it has a deadline, or at once when a round
 * stopped with work left (the timer then runs on the next turn, after the other sources ready
 * on this one). */
static void bus_rearm(BusManager *b) {
        struct event_base *base = manager_event_base(b->manager);
        uint64_t timeout;
        short what;
        int events, fd;

        if (b->dead)
                return;
        fd = sd_bus_get_fd(b->bus);
        events = sd_bus_get_events(b->bus);
        if (fd < 0 || events < 0) {
                log_error_errno(fd < 0 ? fd : events, "The D-Bus connection is gone, stopping: %m");
                b->dead = true;
                (void) event_del(b->io);
                (void) evtimer_del(b->timer);
                manager_fail(b->manager, fd < 0 ? fd : events);
                return;
        }
        what = EV_PERSIST | (events & POLLIN ? EV_READ : 0) | (events & POLLOUT ? EV_WRITE : 0);
        if (what != b->io_what) {
                (void) event_del(b->io);
                if (event_assign(b->io, base, fd, what, on_bus_io, b) < 0 || event_add(b->io, NULL) < 0)
                        log_error("Failed to watch the D-Bus connection");
                else
                        b->io_what = what;
        }

        if (b->more)
                timeout = 0;
        else if (sd_bus_get_timeout(b->bus, &timeout) < 0)
                timeout = UINT64_MAX;
        if (timeout == UINT64_MAX) {
                (void) evtimer_del(b->timer);
        } else {
                usec_t n = now(CLOCK_MONOTONIC);
                struct timeval tv;

                if (evtimer_add(b->timer, timeval_store(&tv, timeout > n ? timeout - n : 0)) < 0)
                        log_error("Failed to arm the D-Bus timer");
        }
}

/* One round: BUS_MESSAGES_PER_TURN at most (bus-manager.h), the rest on the next turn. */
static void bus_process(BusManager *b) {
        int r = 0;

        if (b->dead)
                return;
        manager_readers_batch(b->manager);
        for (unsigned n = 0; n < BUS_MESSAGES_PER_TURN; n++) {
                r = sd_bus_process(b->bus, NULL);
                if (r <= 0)
                        break;
        }
        b->more = r > 0;
        if (r < 0)
                log_error_errno(r, "Failed to process the D-Bus connection: %m");
        bus_rearm(b);
}

static void on_bus_io(evutil_socket_t fd, short what, void *userdata) {
        bus_process(userdata);
}

static void on_bus_timer(evutil_socket_t fd, short what, void *userdata) {
        bus_process(userdata);
}

/* ---- manager hooks ---------------------------------------------------------------------- */

/* DeviceAdded or DeviceRemoved, and the ObjectManager's InterfacesAdded or InterfacesRemoved
 * beside it. Both read the object through its vtable: d must be in the manager's table. */
static void emit_device_signals(BusManager *b, ManagedDevice *d, bool added) {
        const char *name = managed_device_info(d)->name;
        const char *member = added ? "DeviceAdded" : "DeviceRemoved";
        _cleanup_free_ char *path = NULL;
        int r;

        r = bus_device_path(name, &path);
        if (r >= 0)
                r = sd_bus_emit_signal(b->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, member, "so", name, path);
        if (r < 0)
                log_device_warning_errno(name, r, "Failed to send %s, ignoring: %m", member);
        if (!path)
                return;
        member = added ? "InterfacesAdded" : "InterfacesRemoved";
        r = added ? sd_bus_emit_object_added(b->bus, path) : sd_bus_emit_object_removed(b->bus, path);
        if (r < 0)
                log_device_warning_errno(name, r, "Failed to send %s, ignoring: %m", member);
}

/* The devices present at start are not announced one by one (two signals each, a thousand
 * devices' worth of messages queued at once): the name appearing announces them, and a client
 * reads them with GetManagedObjects, as for any ObjectManager that comes up. */
static void hook_device_added(void *userdata, ManagedDevice *d) {
        BusManager *b = userdata;

        bus_devices_added(b->devices, d);
        if (!b->named)
                return;
        emit_device_signals(b, d, true);
        bus_rearm(b);
}

static void hook_device_removed(void *userdata, ManagedDevice *d) {
        BusManager *b = userdata;

        if (b->named)
                emit_device_signals(b, d, false);
        bus_devices_removed(b->devices, d);
        bus_rearm(b);
}

/* A wake with rearm_delay_ms 0 changes a device twice in one callback, and a reload changes every
 * device: the signals wait for the end of the loop turn (on_flush), where they go out once per
 * device, after the callbacks that were queued already. event_active() costs no syscall. The
 * methods that change something flush before they reply, so that a caller has the signals of its
 * call when it has the answer (as when every change was sent at once). */
static void hook_device_changed(void *userdata, ManagedDevice *d) {
        BusManager *b = userdata;

        bus_devices_changed(b->devices, d);
        event_active(b->flush, EV_READ, 0);
}

/* Wakes and Arms alone go out at most once a COUNTERS_WINDOW_USEC a device: under a stream of
 * wakes that re-arm at once, the wake path sends nothing (a signal a wake cost the daemon six times
 * the CPU of the bare re-arm loop, and dbus-daemon its share of the one CPU). The timer runs only
 * while counts wait: an idle daemon sleeps. */
#define COUNTERS_WINDOW_USEC (1 * USEC_PER_SEC)

_hot_ static void counters_wait(BusManager *b) {
        struct timeval tv;

        if (!evtimer_pending(b->counters, NULL))
                (void) evtimer_add(b->counters, timeval_store(&tv, COUNTERS_WINDOW_USEC));
}

/* Returns whether a signal was queued. */
static bool devices_flush(BusManager *b) {
        int flags = bus_devices_flush(b->devices);

        if (flags & BUS_FLUSH_COUNTERS_WAIT)
                counters_wait(b);
        return flags & BUS_FLUSH_SENT;
}

/* A wake re-armed at once: no flush this turn, the counters wait for their window. */
_hot_ static void hook_device_counted(void *userdata, ManagedDevice *d) {
        BusManager *b = userdata;

        if (bus_devices_counted(b->devices, d))
                counters_wait(b);
}

static void on_flush(evutil_socket_t fd, short what, void *userdata) {
        BusManager *b = userdata;

        /* a wake that re-armed sends nothing: the connection's events stay as they are */
        if (devices_flush(b))
                bus_rearm(b);
}

static void on_counters(evutil_socket_t fd, short what, void *userdata) {
        BusManager *b = userdata;

        bus_devices_flush_counters(b->devices);
        bus_rearm(b);
}

static void hook_policy_reloaded(void *userdata) {
        BusManager *b = userdata;
        int r;

        (void) devices_flush(b);        /* what the reload changed, then how it went */
        r = sd_bus_emit_properties_changed(b->bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "PolicyErrors", NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to announce the policy errors, ignoring: %m");
        bus_rearm(b);
}

/* ---- the service manager ---------------------------------------------------------------- */

#define SYSTEMD_NAME "org.freedesktop.systemd1"

/* The object path of the unit this process runs in; -ENXIO outside one. */
static int own_unit_path(char **ret) {
        _cleanup_free_ char *unit = NULL;
        int r;

        r = sd_pid_get_unit(0, &unit);
        if (r < 0)
                return r;
        return sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, ret);
}

/* Whether the unit keeps the held devices across a restart of the daemon: it has a file
 * descriptor store, and restarts the daemon when it fails. Anything that cannot be asked: no. */
static bool unit_keeps_held(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *restart = NULL;
        uint32_t max = 0;
        int r;

        r = own_unit_path(&path);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, SYSTEMD_NAME, path, SYSTEMD_NAME ".Service",
                                                "FileDescriptorStoreMax", &error, 'u', &max);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, SYSTEMD_NAME, path, SYSTEMD_NAME ".Service", "Restart", &error,
                                               &restart);
        if (r < 0) {
                log_debug("Not in a service whose fd store could keep the devices (%s): a restart lets them go",
                          error.message ?: strerror(-r));
                return false;
        }
        log_debug("The unit's fd store holds %" PRIu32 " fds, Restart=%s", max, restart);
        return max > 0 && strcmp(restart, "no") != 0;
}

/* SIGTERM: whether the unit's job is a restart (systemctl restart, try-restart, a package's
 * postinst), not a stop. */
static bool hook_restart_pending(void *userdata) {
        BusManager *b = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL, *type = NULL;
        const char *job_path = NULL;
        uint32_t job = 0;
        int r;

        r = own_unit_path(&path);
        if (r >= 0)
                r = sd_bus_get_property(b->bus, SYSTEMD_NAME, path, SYSTEMD_NAME ".Unit", "Job", &error, &reply,
                                        "(uo)");
        if (r >= 0)
                r = sd_bus_message_read(reply, "(uo)", &job, &job_path);
        if (r >= 0 && job != 0)
                r = sd_bus_get_property_string(b->bus, SYSTEMD_NAME, job_path, SYSTEMD_NAME ".Job", "JobType",
                                               &error, &type);
        if (r < 0) {
                log_warning("Failed to learn whether this stop is a restart (%s): letting the devices go",
                            error.message ?: strerror(-r));
                return false;
        }
        log_debug("The unit's job: %s", type ?: "none");
        return type && strstr(type, "restart");
}

/* ---- access and errors ------------------------------------------------------------------ */

/* 0 if the sender's effective uid is 0, else an AccessDenied error. */
static int check_root(sd_bus_message *msg, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t euid;
        int r;

        r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID|SD_BUS_CREDS_AUGMENT, &creds);
        if (r >= 0)
                r = sd_bus_creds_get_euid(creds, &euid);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Cannot tell who calls %s(): %s", sd_bus_message_get_member(msg),
                                         strerror(-r));
        if (euid != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s() needs root (the caller's uid is %u)",
                                         sd_bus_message_get_member(msg), (unsigned) euid);
        return 0;
}

static int find_device(BusManager *b, const char *name, ManagedDevice **ret, sd_bus_error *error) {
        ManagedDevice *d = manager_find_device(b->manager, name);

        if (!d)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_DEVICE, "No VFIO device '%s'", name);
        *ret = d;
        return 0;
}

/* The device's operation failed with r (pm.h's errors). */
static int device_error(const char *name, const char *what, int r, PmDevice *pm, sd_bus_error *error) {
        const char *last = pm_device_last_error(pm);

        if (r == -ENOTCONN)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_HELD, "%s: not held (mode %s)", name,
                                         policy_mode_to_string(pm_device_mode(pm)));
        if (r == -EBUSY)
                return sd_bus_error_setf(error, BUS_ERROR_BUSY, "%s: another process holds the device", name);
        return sd_bus_error_set_errnof(error, r, "%s: %s failed: %s", name, what,
                                       last && *last ? last : strerror(-r));
}

/* ---- read methods and properties -------------------------------------------------------- */

/* Answers msg with what append puts in a reply. */
static int reply_device_list(sd_bus_message *msg, BusManager *b, int (*append)(BusDevices *, sd_bus_message *)) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = append(b->devices, reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_devices(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return reply_device_list(msg, userdata, bus_devices_append_names);
}

static int method_list_device_states(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return reply_device_list(msg, userdata, bus_devices_append_states);
}

static int method_get_device(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusManager *b = userdata;
        _cleanup_free_ char *path = NULL;
        const char *name;
        ManagedDevice *d = NULL;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = find_device(b, name, &d, error);
        if (r < 0)
                return r;
        r = bus_device_path(name, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "o", path);
}

static int property_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_policy_errors(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusManager *b = userdata;

        return sd_bus_message_append_strv(reply, manager_policy(b->manager)->errors);
}

static int property_energy_saved_joules(sd_bus *bus, const char *path, const char *interface,
                                        const char *property, sd_bus_message *reply, void *userdata,
                                        sd_bus_error *error) {
        BusManager *b = userdata;
        double joules = manager_energy_saved_joules(b->manager);

        return sd_bus_message_append_basic(reply, 'd', &joules);
}

/* ---- Claim, Release, Wake, Reload ------------------------------------------------------- */

typedef int (*DeviceOperation)(PmDevice *pm);

static int device_method(sd_bus_message *msg, BusManager *b, const char *what, DeviceOperation op,
                         sd_bus_error *error) {
        const char *name;
        ManagedDevice *d = NULL;
        int r;

        r = check_root(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = find_device(b, name, &d, error);
        if (r < 0)
                return r;
        log_device_info(name, "%s, asked over D-Bus", what);
        r = op(managed_device_pm(d));
        devices_flush(b);       /* the signals of what it changed before its reply */
        if (r < 0)
                return device_error(name, what, r, managed_device_pm(d), error);
        return sd_bus_reply_method_return(msg, NULL);
}

/* Claim and Release act on IOMMU groups through the manager (manager.h); their errors are pm's
 * for the device itself, or -ENODEV for a name that is no device (and no reservation). */
typedef int (*GroupOperation)(Manager *m, const char *name, char ***ret_also);

static int group_method(sd_bus_message *msg, BusManager *b, const char *what, GroupOperation op,
                        sd_bus_error *error) {
        const char *name;
        ManagedDevice *d;
        char **also = NULL;
        int r;

        r = check_root(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        log_device_info(name, "%s, asked over D-Bus", what);
        r = op(b->manager, name, &also);
        /* The service manager drops its copies of what was let go (FDSTOREREMOVE, a datagram it
         * reads when it gets to it) before the caller hears back: a VM opening the group at once
         * must not find it still held by PID 1. No-op outside systemd. */
        if (r >= 0)
                (void) sd_notify_barrier(0, 5 * USEC_PER_SEC);
        devices_flush(b);       /* the signals of what it changed before its reply */
        for (char **p = also; p && *p; p++)
                free(*p);
        free(also);
        if (r == -ENODEV)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_DEVICE, "No device '%s'", name);
        d = manager_find_device(b->manager, name);
        if (r < 0 && d)
                return device_error(name, what, r, managed_device_pm(d), error);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: %s failed: %s", name, what, strerror(-r));
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_claim(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return group_method(msg, userdata, "Claim", manager_claim, error);
}

/* Every device of the group is closed before it returns: the reply tells the caller it may open
 * the group. */
static int method_release(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return group_method(msg, userdata, "Release", manager_release, error);
}

static int method_wake(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return device_method(msg, userdata, "Wake", pm_device_wake, error);
}

static int reload(BusManager *b, sd_bus_error *error) {
        int r = manager_reload(b->manager);

        devices_flush(b);       /* the signals of what it changed before the reply */
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to reload the policy: %s", strerror(-r));
        return 0;
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusManager *b = userdata;
        int r;

        r = check_root(msg, error);
        if (r < 0)
                return r;
        log_info("Reloading policy, asked over D-Bus");
        r = reload(b, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

/* ---- SetPolicy, ResetPolicy ------------------------------------------------------------- */

/* policy-store.h's errors: -EINVAL a name that cannot name a file, -EOPNOTSUPP no such directory. */
static int target_error(int r, const char *message, sd_bus_error *error) {
        if (r == -ENOMEM)
                return r;
        return sd_bus_error_set(error, r == -EOPNOTSUPP ? SD_BUS_ERROR_NOT_SUPPORTED : SD_BUS_ERROR_INVALID_ARGS,
                                message);
}

/* After policy-store.h changed name's file: a change whose directory could not be fsync'd is in
 * force all the same (in place for every reader, the reload follows), so the call succeeds; that
 * it may not survive a crash goes to the log. */
static void log_stored(const char *name, const char *what, const PolicyStoreTarget *target, int r,
                       const char *message) {
        if (r == POLICY_STORE_UNCHANGED)
                return;
        log_device_info(name, "%s %s, asked over D-Bus; reloading", what, target->path);
        if (r == POLICY_STORE_CHANGED_UNSYNCED)
                log_device_warning(name, "%s; the change is in force, but may not survive a crash",
                                   message ?: "Failed to fsync the policy directory");
}

static int method_set_policy(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusManager *b = userdata;
        _cleanup_(policy_store_target_done) PolicyStoreTarget target = {};
        _cleanup_free_ char *text = NULL, *message = NULL;
        const char *name, *rule_json;
        ManagedDevice *d = NULL;
        int runtime, r;

        r = check_root(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "ssb", &name, &rule_json, &runtime);
        if (r < 0)
                return r;
        r = find_device(b, name, &d, error);
        if (r < 0)
                return r;
        r = policy_store_target(manager_config(b->manager)->policy_dirs, name, runtime, &target, &message);
        if (r < 0)
                return target_error(r, message, error);
        r = policy_store_text(target.path, name, rule_json, &text, &message);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_set(error, BUS_ERROR_INVALID_POLICY, message ?: "invalid");
        r = policy_store_write(manager_config(b->manager)->root_fd, &target, text, &message);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s", message ?: strerror(-r));
        log_stored(name, "Wrote", &target, r, message);

        r = reload(b, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_reset_policy(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusManager *b = userdata;
        _cleanup_(policy_store_target_done) PolicyStoreTarget target = {};
        _cleanup_free_ char *message = NULL;
        const char *name;
        int runtime, r;

        r = check_root(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "sb", &name, &runtime);
        if (r < 0)
                return r;
        r = policy_store_target(manager_config(b->manager)->policy_dirs, name, runtime, &target, &message);
        if (r < 0)
                return target_error(r, message, error);
        r = policy_store_remove(manager_config(b->manager)->root_fd, &target, &message);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s", message ?: strerror(-r));
        log_stored(name, "Removed", &target, r, message);

        r = reload(b, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

/* Every method is UNPRIVILEGED for sd-bus (whose own check would demand CAP_SYS_ADMIN of every
 * caller): the methods that change something check uid 0 themselves. */
static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PolicyErrors", "as", property_policy_errors, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* moves while devices sleep: read it */
        SD_BUS_PROPERTY("EnergySavedJoules", "d", property_energy_saved_joules, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("ListDevices", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(so)", devices),
                                method_list_devices, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListDeviceStates", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(" BUS_DEVICE_STATE_SIGNATURE ")", devices),
                                method_list_device_states, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetDevice", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", path),
                                method_get_device, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Claim", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_claim, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_release, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Wake", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_wake, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetPolicy", SD_BUS_ARGS("s", name, "s", rule_json, "b", runtime), SD_BUS_NO_RESULT,
                                method_set_policy, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ResetPolicy", SD_BUS_ARGS("s", name, "b", runtime), SD_BUS_NO_RESULT,
                                method_reset_policy, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("DeviceAdded", SD_BUS_ARGS("s", name, "o", path), 0),
        SD_BUS_SIGNAL_WITH_ARGS("DeviceRemoved", SD_BUS_ARGS("s", name, "o", path), 0),
        SD_BUS_VTABLE_END
};

/* ---- lifetime --------------------------------------------------------------------------- */

int bus_manager_new(Manager *m, sd_bus *bus, BusManager **ret) {
        _cleanup_(bus_manager_freep) BusManager *b = NULL;
        struct event_base *base = manager_event_base(m);
        int r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->manager = m;
        b->bus = sd_bus_ref(bus);

        r = sd_bus_add_object_vtable(bus, &b->vtable_slot, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                     manager_vtable, b);
        if (r < 0)
                return r;
        /* GetManagedObjects: every device object with its properties in one call (sd-bus walks
         * bus-device.c's enumerator and vtable) */
        r = sd_bus_add_object_manager(bus, &b->object_manager_slot, BUS_MANAGER_PATH);
        if (r < 0)
                return r;
        r = bus_devices_new(bus, m, &b->devices);
        if (r < 0)
                return r;

        b->io = event_new(base, -1, 0, on_bus_io, b);
        b->timer = evtimer_new(base, on_bus_timer, b);
        b->flush = event_new(base, -1, 0, on_flush, b);
        b->counters = evtimer_new(base, on_counters, b);
        if (!b->io || !b->timer || !b->flush || !b->counters)
                return -ENOMEM;
        if (sd_bus_get_fd(bus) < 0)
                return -ENOTCONN;

        manager_set_keep_held(m, unit_keeps_held(bus));
        manager_set_hooks(m, &(ManagerHooks) {
                .restart_pending = hook_restart_pending,
                .device_added = hook_device_added,
                .device_removed = hook_device_removed,
                .device_changed = hook_device_changed,
                .device_counted = hook_device_counted,
                .policy_reloaded = hook_policy_reloaded,
                .userdata = b,
        });
        /* devices the manager has already */
        {
                ManagedDevice **devices;
                size_t n;

                r = manager_devices(m, &devices, &n);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        bus_devices_added(b->devices, devices[i]);
        }
        bus_rearm(b);

        *ret = TAKE_PTR(b);
        return 0;
}

BusManager *bus_manager_free(BusManager *b) {
        if (!b)
                return NULL;
        if (b->manager && b->devices) {
                manager_set_hooks(b->manager, NULL);
                /* the loop may have stopped before the turn's flush: what moved still goes out
                 * (the owner flushes the connection) */
                (void) bus_devices_flush(b->devices);
                bus_devices_flush_counters(b->devices);
        }
        if (b->io)
                event_free(b->io);
        if (b->timer)
                event_free(b->timer);
        if (b->flush)
                event_free(b->flush);
        if (b->counters)
                event_free(b->counters);
        b->devices = bus_devices_free(b->devices);
        sd_bus_slot_unref(b->object_manager_slot);
        sd_bus_slot_unref(b->vtable_slot);
        sd_bus_unref(b->bus);
        free(b);
        return NULL;
}

int bus_manager_request_name(BusManager *b) {
        int r;

        /* what the devices show now is where announcements start from: their first decisions
         * were never announced, and need not be */
        bus_devices_baseline(b->devices);
        r = sd_bus_request_name(b->bus, BUS_NAME, 0);
        if (r >= 0)
                b->named = true;
        bus_rearm(b);           /* the synchronous call may have queued other messages */
        return r;
}
