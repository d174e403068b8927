#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus-device.h"
#include "bus-manager.h"
#include "ctl-client.h"
#include "time-util.h"

int ctl_bus_open(uint64_t timeout_usec, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_method_call_timeout(bus, timeout_usec);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

int ctl_call(sd_bus *bus, sd_bus_error *error, sd_bus_message **ret_reply, const char *member,
             const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL, *reply = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &msg, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                           member);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(msg, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        /* Never auto-start anything: the daemon is systemd's to start. */
        r = sd_bus_message_set_auto_start(msg, false);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, msg, 0, error, &reply);
        if (r < 0)
                return r;
        if (ret_reply)
                *ret_reply = TAKE_PTR(reply);
        return r;
}

static bool error_unreachable(int r, const sd_bus_error *error) {
        static const char *const names[] = {
                SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_NO_REPLY,
                SD_BUS_ERROR_TIMEOUT, "org.freedesktop.DBus.Error.TimedOut", SD_BUS_ERROR_DISCONNECTED,
                SD_BUS_ERROR_NO_SERVER, SD_BUS_ERROR_FILE_NOT_FOUND,
        };

        if (error && sd_bus_error_is_set(error)) {
                for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                        if (sd_bus_error_has_name(error, names[i]))
                                return true;
                return false;
        }
        /* Connecting failed, or the connection broke. */
        switch (-r) {
        case ENOENT: case ECONNREFUSED: case ECONNRESET: case ENOTCONN: case EPIPE:
        case ETIMEDOUT: case ESHUTDOWN: case EACCES: case EHOSTDOWN:
                return true;
        default:
                return false;
        }
}

CtlExit ctl_exit_status(int r, const sd_bus_error *error) {
        if (r >= 0)
                return CTL_EXIT_OK;
        return error_unreachable(r, error) ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAILED;
}

const char *ctl_error_text(int r, const sd_bus_error *error) {
        static char buf[1024];

        if (error && sd_bus_error_is_set(error)) {
                if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        return "vfiopmd is not running (nobody owns org.vfiopm1 on the system bus)";
                if (sd_bus_error_has_names(error, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_TIMEOUT, "org.freedesktop.DBus.Error.TimedOut"))
                        return "vfiopmd did not answer in time";
                if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED) &&
                    (!error->message || strstr(error->message, "Rejected send message")))
                        /* dbus-daemon's refusal (the bus policy), not vfiopmd's: its text is a dump */
                        return "access denied by the bus policy: changing anything needs root";
                (void) snprintf(buf, sizeof(buf), "%s", error->message ?: error->name);
        } else if (error_unreachable(r, NULL))
                (void) snprintf(buf, sizeof(buf), "cannot reach the system bus: %s", strerror(-r));
        else
                (void) snprintf(buf, sizeof(buf), "%s", strerror(-r));
        /* One line, whatever the daemon said. */
        for (char *p = buf; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        return buf;
}

/* ---- devices ---------------------------------------------------------------------------- */

void ctl_device_done(CtlDevice *d) {
        char **strings[] = {
                &d->path, &d->name, &d->vendor, &d->device_id, &d->class, &d->driver, &d->iommu_group,
                &d->mode, &d->state, &d->power_state, &d->runtime_status, &d->release_reason,
                &d->released_by, &d->last_error, &d->policy,
        };

        for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
                free(*strings[i]);
                *strings[i] = NULL;
        }
}

static int read_property(sd_bus_message *reply, const char *property, CtlDevice *d) {
        static const struct {
                const char *property;
                size_t offset;
        } strings[] = {
                { "Name", offsetof(CtlDevice, name) },
                { "Vendor", offsetof(CtlDevice, vendor) },
                { "DeviceId", offsetof(CtlDevice, device_id) },
                { "Class", offsetof(CtlDevice, class) },
                { "Driver", offsetof(CtlDevice, driver) },
                { "IommuGroup", offsetof(CtlDevice, iommu_group) },
                { "Mode", offsetof(CtlDevice, mode) },
                { "State", offsetof(CtlDevice, state) },
                { "PowerState", offsetof(CtlDevice, power_state) },
                { "RuntimeStatus", offsetof(CtlDevice, runtime_status) },
                { "ReleaseReason", offsetof(CtlDevice, release_reason) },
                { "ReleasedBy", offsetof(CtlDevice, released_by) },
                { "LastError", offsetof(CtlDevice, last_error) },
                { "Policy", offsetof(CtlDevice, policy) },
        }, counters[] = {
                { "Wakes", offsetof(CtlDevice, wakes) },
                { "Arms", offsetof(CtlDevice, arms) },
                { "LowPowerUsec", offsetof(CtlDevice, low_power_usec) },
                { "KernelSuspendedMsec", offsetof(CtlDevice, kernel_suspended_msec) },
                { "LastWakeRealtimeUsec", offsetof(CtlDevice, last_wake_realtime_usec) },
        };
        int r;

        for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
                if (strcmp(property, strings[i].property) == 0) {
                        char **field = (char **) ((uint8_t *) d + strings[i].offset);
                        const char *s;

                        r = sd_bus_message_read(reply, "v", "s", &s);
                        if (r < 0)
                                return r;
                        free(*field);
                        *field = strdup(s);
                        return *field ? 1 : -ENOMEM;
                }
        for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
                if (strcmp(property, counters[i].property) == 0) {
                        r = sd_bus_message_read(reply, "v", "t", (uint64_t *) ((uint8_t *) d + counters[i].offset));
                        return r < 0 ? r : 1;
                }
        /* A property this client does not know (a newer daemon): skip it. */
        r = sd_bus_message_skip(reply, "v");
        return r < 0 ? r : 0;
}

int ctl_device_get(sd_bus *bus, const char *path, CtlDevice *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        CtlDevice d = {};
        const char *property;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", error,
                               &reply, "s", BUS_DEVICE_INTERFACE);
        if (r < 0)
                return r;
        d.path = strdup(path);
        if (!d.path)
                return -ENOMEM;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0) {
                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &property);
                if (r >= 0)
                        r = read_property(reply, property, &d);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        /* A daemon that answered at all has every string property: make absent ones "". */
        char **strings[] = {
                &d.name, &d.vendor, &d.device_id, &d.class, &d.driver, &d.iommu_group, &d.mode,
                &d.state, &d.power_state, &d.runtime_status, &d.release_reason, &d.released_by,
                &d.last_error, &d.policy,
        };
        for (size_t i = 0; r >= 0 && i < sizeof(strings) / sizeof(strings[0]); i++)
                if (!*strings[i] && !(*strings[i] = strdup("")))
                        r = -ENOMEM;
        if (r < 0) {
                ctl_device_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

int ctl_device_get_by_name(sd_bus *bus, const char *name, CtlDevice *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = ctl_call(bus, error, &reply, "GetDevice", "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        return ctl_device_get(bus, path, ret, error);
}

void ctl_devices_free(CtlDevice *devices, size_t n) {
        for (size_t i = 0; devices && i < n; i++)
                ctl_device_done(&devices[i]);
        free(devices);
}

int ctl_devices_get(sd_bus *bus, CtlDevice **ret, size_t *ret_n, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        CtlDevice *devices = NULL;
        size_t n = 0;
        const char *name, *path;
        int r;

        r = ctl_call(bus, error, &reply, "ListDevices", NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(so)");
        while (r >= 0) {
                CtlDevice *grown;

                r = sd_bus_message_read(reply, "(so)", &name, &path);
                if (r <= 0)
                        break;
                grown = reallocarray(devices, n + 1, sizeof(*devices));
                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                devices = grown;
                r = ctl_device_get(bus, path, &devices[n], error);
                if (r == -ENXIO || sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                        /* Removed between the list and the read: it is gone, not an error. */
                        sd_bus_error_free(error);
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                ctl_devices_free(devices, n);
                return r;
        }
        *ret = devices;
        *ret_n = n;
        return 0;
}

int ctl_daemon_uptime(sd_bus *bus, uint64_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], buf[1024], *p;
        unsigned long long start_ticks;
        struct timespec ts;
        usec_t start, up;
        long hz;
        pid_t pid;
        int r;

        r = sd_bus_get_name_creds(bus, BUS_NAME, SD_BUS_CREDS_PID, &creds);
        if (r < 0)
                return r == -ENXIO || r == -ESRCH ? -ENXIO : r;
        r = sd_bus_creds_get_pid(creds, &pid);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (!fgets(buf, sizeof(buf), f))
                return -EIO;
        /* Field 22, starttime, counted after the ")" that ends comm (which may hold anything). */
        p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                   &start_ticks) != 1)
                return -EIO;
        hz = sysconf(_SC_CLK_TCK);
        if (hz <= 0)
                return -EIO;
        if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
                return -errno;
        start = (usec_t) start_ticks * USEC_PER_SEC / (usec_t) hz;
        up = timespec_load(&ts);
        *ret = up > start ? up - start : 0;
        return 0;
}
