#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus-device.h"
#include "bus-manager.h"
#include "ctl-client.h"
#include "strv.h"
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

#define OBJECT_MANAGER_INTERFACE "org.freedesktop.DBus.ObjectManager"

/* A call that never auto-starts anything: the daemon is systemd's to start. */
static int new_call(sd_bus *bus, const char *destination, const char *path, const char *interface,
                    const char *member, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &msg, destination, path, interface, member);
        if (r < 0)
                return r;
        r = sd_bus_message_set_auto_start(msg, false);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(msg);
        return 0;
}

int ctl_call(sd_bus *bus, sd_bus_error *error, sd_bus_message **ret_reply, const char *member,
             const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL, *reply = NULL;
        va_list ap;
        int r;

        r = new_call(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, member, &msg);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(msg, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
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

/* CtlDevice's strings, in its order. */
#define DEVICE_STRINGS(d)                                                                          \
        {                                                                                          \
                &(d)->path, &(d)->name, &(d)->vendor, &(d)->device_id, &(d)->class, &(d)->driver,  \
                &(d)->iommu_group, &(d)->mode, &(d)->state, &(d)->power_state, &(d)->runtime_status, \
                &(d)->release_reason, &(d)->released_by, &(d)->last_error, &(d)->policy,           \
        }
#define N_DEVICE_STRINGS 15

void ctl_device_done(CtlDevice *d) {
        char **strings[N_DEVICE_STRINGS] = DEVICE_STRINGS(d);

        for (size_t i = 0; i < N_DEVICE_STRINGS; i++) {
                if (!d->block)
                        free(*strings[i]);
                *strings[i] = NULL;
        }
        free(d->block);
        d->block = NULL;
}

/* Reads one value of a dictionary entry whose key is key, at the reply's read position. */
typedef int (*DictEntryRead)(sd_bus_message *reply, const char *key, void *userdata);

/* The dictionary at the reply's read position, of entries with contents entry ("sv",
 * "sa{sv}", "oa{sa{sv}}": a string or object path key; array is "{" entry "}"), each value
 * read by read. */
static int dict_read(sd_bus_message *reply, const char *array, const char *entry, DictEntryRead read,
                     void *userdata) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', array);
        while (r >= 0) {
                r = sd_bus_message_enter_container(reply, 'e', entry);
                if (r <= 0)
                        break;
                r = sd_bus_message_read_basic(reply, entry[0], &key);
                if (r >= 0)
                        r = read(reply, key, userdata);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        return r;
}

#define DICT_SV "{sv}", "sv"

/* org.vfiopm1.Device's properties as CtlDevice fields: a string (char *), a counter (uint64_t),
 * a double or a boolean (bool). */
static const struct {
        const char *property;
        char type;                      /* 's', 't', 'd' or 'b' */
        size_t offset;
} device_properties[] = {
        { "Name", 's', offsetof(CtlDevice, name) },
        { "Vendor", 's', offsetof(CtlDevice, vendor) },
        { "DeviceId", 's', offsetof(CtlDevice, device_id) },
        { "Class", 's', offsetof(CtlDevice, class) },
        { "Driver", 's', offsetof(CtlDevice, driver) },
        { "IommuGroup", 's', offsetof(CtlDevice, iommu_group) },
        { "Mode", 's', offsetof(CtlDevice, mode) },
        { "State", 's', offsetof(CtlDevice, state) },
        { "PowerState", 's', offsetof(CtlDevice, power_state) },
        { "RuntimeStatus", 's', offsetof(CtlDevice, runtime_status) },
        { "Wakes", 't', offsetof(CtlDevice, wakes) },
        { "Arms", 't', offsetof(CtlDevice, arms) },
        { "LowPowerUsec", 't', offsetof(CtlDevice, low_power_usec) },
        { "KernelSuspendedMsec", 't', offsetof(CtlDevice, kernel_suspended_msec) },
        { "KernelSuspendedSinceSeenMsec", 't', offsetof(CtlDevice, kernel_suspended_since_seen_msec) },
        { "EnergySavedJoules", 'd', offsetof(CtlDevice, energy_saved_joules) },
        { "EnergyEstimated", 'b', offsetof(CtlDevice, energy_estimated) },
        { "LastWakeRealtimeUsec", 't', offsetof(CtlDevice, last_wake_realtime_usec) },
        { "ReleaseReason", 's', offsetof(CtlDevice, release_reason) },
        { "ReleasedBy", 's', offsetof(CtlDevice, released_by) },
        { "LastError", 's', offsetof(CtlDevice, last_error) },
        { "Policy", 's', offsetof(CtlDevice, policy) },
};
#define N_DEVICE_PROPERTIES (sizeof(device_properties) / sizeof(device_properties[0]))

/* A CtlDevice being read, and where the next property is looked for first: the daemon sends
 * them in its vtable's order, which is device_properties' order, so that one comparison finds
 * each (any order works). */
typedef struct DeviceRead {
        CtlDevice *device;
        size_t next;
} DeviceRead;

static int property_index(DeviceRead *dr, const char *property) {
        for (size_t k = 0; k < N_DEVICE_PROPERTIES; k++) {
                size_t i = (dr->next + k) % N_DEVICE_PROPERTIES;

                if (strcmp(property, device_properties[i].property) == 0) {
                        dr->next = i + 1;
                        return (int) i;
                }
        }
        return -1;
}

/* A property of org.vfiopm1.Device into the DeviceRead userdata's device. */
static int read_property(sd_bus_message *reply, const char *property, void *userdata) {
        DeviceRead *dr = userdata;
        int i = property_index(dr, property), r;
        uint8_t *field;
        const char *s;

        /* A property this client does not know (a newer daemon): skip it. */
        if (i < 0) {
                r = sd_bus_message_skip(reply, "v");
                return r < 0 ? r : 0;
        }
        field = (uint8_t *) dr->device + device_properties[i].offset;
        r = sd_bus_message_enter_container(reply, 'v', (char[]) { device_properties[i].type, 0 });
        if (r < 0)
                return r;
        if (device_properties[i].type == 'b') {
                int b;

                r = sd_bus_message_read_basic(reply, 'b', &b);
                if (r >= 0)
                        *(bool *) field = b;
        } else if (device_properties[i].type != 's')
                r = sd_bus_message_read_basic(reply, device_properties[i].type, field);
        else {
                r = sd_bus_message_read_basic(reply, 's', &s);
                if (r >= 0) {
                        free(*(char **) field);
                        *(char **) field = strdup(s);
                        if (!*(char **) field)
                                r = -ENOMEM;
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        return r < 0 ? r : 1;
}

/* A daemon that answered at all has every string property: absent ones become "". -ENOMEM if
 * that fails (a strdup() that failed before leaves a NULL too). */
static int device_fill_strings(CtlDevice *d) {
        char **strings[N_DEVICE_STRINGS] = DEVICE_STRINGS(d);

        for (size_t i = 0; i < N_DEVICE_STRINGS; i++)
                if (!*strings[i] && !(*strings[i] = strdup("")))
                        return -ENOMEM;
        return 0;
}

/* One a{sv} of org.vfiopm1.Device, at the reply's read position, as the device at path. */
static int device_read(sd_bus_message *reply, const char *path, CtlDevice *ret) {
        CtlDevice d = {};
        int r;

        d.path = strdup(path);
        if (!d.path)
                return -ENOMEM;
        r = dict_read(reply, DICT_SV, read_property, &(DeviceRead) { .device = &d });
        if (r >= 0)
                r = device_fill_strings(&d);
        if (r < 0) {
                ctl_device_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

int ctl_device_get(sd_bus *bus, const char *path, CtlDevice *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *policy = NULL;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", error,
                               &reply, "s", BUS_DEVICE_INTERFACE);
        if (r < 0)
                return r;
        /* Policy is an explicit property: GetAll leaves it out */
        r = sd_bus_get_property_string(bus, BUS_NAME, path, BUS_DEVICE_INTERFACE, "Policy", error, &policy);
        if (r < 0)
                return r;
        r = device_read(reply, path, ret);
        if (r < 0)
                return r;
        free(ret->policy);
        ret->policy = TAKE_PTR(policy);
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

typedef struct DeviceList {
        CtlDevice *devices;
        size_t n, allocated;
        const char *path;               /* of the object being read */
} DeviceList;

static int device_list_grow(DeviceList *l) {
        CtlDevice *grown;
        size_t allocated;

        if (l->n < l->allocated)
                return 0;
        allocated = l->allocated ? 2 * l->allocated : 16;
        grown = reallocarray(l->devices, allocated, sizeof(*l->devices));
        if (!grown)
                return -ENOMEM;
        l->devices = grown;
        l->allocated = allocated;
        return 0;
}

/* One interface of an object of GetManagedObjects: org.vfiopm1.Device's properties make a device. */
static int read_interface(sd_bus_message *reply, const char *interface, void *userdata) {
        DeviceList *l = userdata;
        int r;

        if (strcmp(interface, BUS_DEVICE_INTERFACE) != 0)
                return sd_bus_message_skip(reply, "a{sv}");
        r = device_list_grow(l);
        if (r < 0)
                return r;
        r = device_read(reply, l->path, &l->devices[l->n]);
        if (r >= 0)
                l->n++;
        return r;
}

static int read_object(sd_bus_message *reply, const char *path, void *userdata) {
        DeviceList *l = userdata;

        l->path = path;
        return dict_read(reply, "{sa{sv}}", "sa{sv}", read_interface, l);
}

static int device_compare(const void *a, const void *b) {
        return strcmp(((const CtlDevice *) a)->name, ((const CtlDevice *) b)->name);
}

/* Sorted by name: the daemon lists them so already, which is only checked then. */
static void devices_sort(CtlDevice *devices, size_t n) {
        for (size_t i = 1; i < n; i++)
                if (device_compare(&devices[i - 1], &devices[i]) > 0) {
                        qsort(devices, n, sizeof(*devices), device_compare);
                        return;
                }
}

/* GetManagedObjects' reply: every device, sorted by name as ListDevices lists them. */
static int devices_read(sd_bus_message *reply, CtlDevice **ret, size_t *ret_n) {
        DeviceList l = {};
        int r;

        r = dict_read(reply, "{oa{sa{sv}}}", "oa{sa{sv}}", read_object, &l);
        if (r < 0) {
                ctl_devices_free(l.devices, l.n);
                return r;
        }
        devices_sort(l.devices, l.n);
        *ret = l.devices;
        *ret_n = l.n;
        return 0;
}

int ctl_devices_get(sd_bus *bus, CtlDevice **ret, size_t *ret_n, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL, *reply = NULL;
        int r;

        r = new_call(bus, BUS_NAME, BUS_MANAGER_PATH, OBJECT_MANAGER_INTERFACE, "GetManagedObjects", &msg);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, msg, 0, error, &reply);
        if (r < 0)
                return r;
        return devices_read(reply, ret, ret_n);
}

/* Copies the n strings values into one allocation, d->block, as fields (of d); every other string
 * of d is "" there too. */
static int device_strings_block(CtlDevice *d, const char *const *values, char **const *fields, size_t n) {
        char **strings[N_DEVICE_STRINGS] = DEVICE_STRINGS(d);
        size_t size = 1, lengths[N_DEVICE_STRINGS];
        char *p;

        assert(n <= N_DEVICE_STRINGS);
        for (size_t i = 0; i < n; i++)
                size += (lengths[i] = strlen(values[i])) + 1;
        d->block = p = malloc(size);
        if (!p)
                return -ENOMEM;
        *p = 0;
        for (size_t i = 0; i < N_DEVICE_STRINGS; i++)
                *strings[i] = p;                /* "" */
        p++;
        for (size_t i = 0; i < n; i++) {
                memcpy(p, values[i], lengths[i] + 1);
                *fields[i] = p;
                p += lengths[i] + 1;
        }
        return 0;
}

/* ListDeviceStates' reply: every device with what status shows of it (the other fields ""). */
static int device_states_read(sd_bus_message *reply, CtlDevice **ret, size_t *ret_n) {
        DeviceList l = {};
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(" BUS_DEVICE_STATE_SIGNATURE ")");
        while (r >= 0) {
                const char *name, *vendor, *device_id, *class, *mode, *state, *power_state;
                uint64_t wakes, low_power_usec;
                double joules;
                int estimated;
                CtlDevice *d;

                r = sd_bus_message_read(reply, "(" BUS_DEVICE_STATE_SIGNATURE ")", &name, &vendor, &device_id,
                                        &class, &mode, &state, &power_state, &wakes, &low_power_usec, &joules,
                                        &estimated);
                if (r <= 0)
                        break;
                r = device_list_grow(&l);
                if (r < 0)
                        break;
                d = &l.devices[l.n];
                *d = (CtlDevice) { .wakes = wakes, .low_power_usec = low_power_usec,
                                   .energy_saved_joules = joules, .energy_estimated = estimated };
                r = device_strings_block(d, (const char *[]) { name, vendor, device_id, class, mode, state,
                                                               power_state },
                                         (char **[]) { &d->name, &d->vendor, &d->device_id, &d->class,
                                                       &d->mode, &d->state, &d->power_state }, 7);
                if (r < 0)
                        break;
                l.n++;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0) {
                ctl_devices_free(l.devices, l.n);
                return r;
        }
        devices_sort(l.devices, l.n);
        *ret = l.devices;
        *ret_n = l.n;
        return 0;
}

/* How long the process pid has run, from its start time in /proc. */
static int process_uptime(pid_t pid, uint64_t *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], buf[1024], *p;
        unsigned long long start_ticks;
        struct timespec ts;
        usec_t start, up;
        long hz;

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

int ctl_daemon_uptime(sd_bus *bus, uint64_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        pid_t pid;
        int r;

        r = sd_bus_get_name_creds(bus, BUS_NAME, SD_BUS_CREDS_PID, &creds);
        if (r < 0)
                return r == -ENXIO || r == -ESRCH ? -ENXIO : r;
        r = sd_bus_creds_get_pid(creds, &pid);
        if (r < 0)
                return r;
        return process_uptime(pid, ret);
}

/* ---- status: every call at once --------------------------------------------------------- */

typedef struct PendingCall {
        sd_bus_slot *slot;
        sd_bus_message *reply;          /* its method return or error, once it came */
} PendingCall;

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PendingCall *c = userdata;

        c->reply = sd_bus_message_ref(reply);
        return 0;
}

/* Sends member (with one string argument, or none) without waiting for its reply, which comes
 * within the method call timeout of ctl_bus_open() (sd-bus's own default is not it). */
static int call_async(sd_bus *bus, PendingCall *c, const char *destination, const char *path,
                      const char *interface, const char *member, const char *arg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        uint64_t timeout;
        int r;

        r = sd_bus_get_method_call_timeout(bus, &timeout);
        if (r >= 0)
                r = new_call(bus, destination, path, interface, member, &msg);
        if (r >= 0 && arg)
                r = sd_bus_message_append(msg, "s", arg);
        if (r >= 0)
                r = sd_bus_call_async(bus, &c->slot, msg, on_reply, c, timeout);
        return r;
}

static bool all_replied(const PendingCall *calls, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!calls[i].reply)
                        return false;
        return true;
}

/* Until every call has its reply: sd-bus answers a call itself with an error when its timeout
 * passes (sd_bus_process() may then say 0, having delivered it), or the connection breaks. */
static int wait_replies(sd_bus *bus, PendingCall *calls, size_t n) {
        while (!all_replied(calls, n)) {
                int r;

                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0 || all_replied(calls, n))
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        return r;
        }
        return 0;
}

/* 0 for a method return; for an error, error set and -errno, as sd_bus_call() returns them. */
static int reply_error(sd_bus_message *reply, sd_bus_error *error) {
        int r;

        if (!sd_bus_message_is_method_error(reply, NULL))
                return 0;
        r = sd_bus_error_copy(error, sd_bus_message_get_error(reply));
        return r < 0 ? r : -EIO;
}

/* A property of org.vfiopm1.Manager into the CtlStatus userdata: Version, PolicyErrors and
 * EnergySavedJoules. */
static int read_manager_property(sd_bus_message *reply, const char *property, void *userdata) {
        CtlStatus *s = userdata;
        const char *version;
        int r;

        if (strcmp(property, "Version") == 0 && !s->version) {
                r = sd_bus_message_read(reply, "v", "s", &version);
                if (r >= 0 && !(s->version = strdup(version)))
                        r = -ENOMEM;
                return r;
        }
        if (strcmp(property, "PolicyErrors") == 0 && !s->policy_errors) {
                r = sd_bus_message_enter_container(reply, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_read_strv(reply, &s->policy_errors);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                return r;
        }
        if (strcmp(property, "EnergySavedJoules") == 0)
                return sd_bus_message_read(reply, "v", "d", &s->energy_saved_joules);
        return sd_bus_message_skip(reply, "v");
}

/* The daemon's uptime from the bus's word on the name owner's pid. */
static int uptime_read(sd_bus_message *reply, uint64_t *ret) {
        uint32_t pid;
        int r;

        r = sd_bus_message_read(reply, "u", &pid);
        if (r < 0)
                return r;
        return process_uptime((pid_t) pid, ret);
}

int ctl_status_get(sd_bus *bus, bool full, CtlStatus *ret, sd_bus_error *error) {
        enum { CALL_OBJECTS, CALL_MANAGER, CALL_PID, _CALL_MAX };
        PendingCall calls[_CALL_MAX] = {};
        CtlStatus s = { .energy_saved_joules = NAN };
        int r;

        if (full)
                r = call_async(bus, &calls[CALL_OBJECTS], BUS_NAME, BUS_MANAGER_PATH, OBJECT_MANAGER_INTERFACE,
                               "GetManagedObjects", NULL);
        else
                r = call_async(bus, &calls[CALL_OBJECTS], BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                               "ListDeviceStates", NULL);
        if (r >= 0)
                r = call_async(bus, &calls[CALL_MANAGER], BUS_NAME, BUS_MANAGER_PATH,
                               "org.freedesktop.DBus.Properties", "GetAll", BUS_MANAGER_INTERFACE);
        if (r >= 0)
                r = call_async(bus, &calls[CALL_PID], "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetConnectionUnixProcessID", BUS_NAME);
        if (r >= 0)
                r = wait_replies(bus, calls, _CALL_MAX);
        if (r >= 0)
                r = reply_error(calls[CALL_OBJECTS].reply, error);
        if (r >= 0)
                r = (full ? devices_read : device_states_read)(calls[CALL_OBJECTS].reply, &s.devices, &s.n_devices);
        /* the rest is best effort: status shows what it has */
        if (r >= 0 && reply_error(calls[CALL_MANAGER].reply, NULL) == 0 &&
            dict_read(calls[CALL_MANAGER].reply, DICT_SV, read_manager_property, &s) == -ENOMEM)
                r = -ENOMEM;
        if (r >= 0 && reply_error(calls[CALL_PID].reply, NULL) == 0)
                (void) uptime_read(calls[CALL_PID].reply, &s.uptime_usec);
        for (size_t i = 0; i < _CALL_MAX; i++) {
                sd_bus_slot_unref(calls[i].slot);
                sd_bus_message_unref(calls[i].reply);
        }
        if (r < 0) {
                ctl_status_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

void ctl_status_done(CtlStatus *s) {
        ctl_devices_free(s->devices, s->n_devices);
        free(s->version);
        strv_free(s->policy_errors);
        *s = (CtlStatus) {};
}
