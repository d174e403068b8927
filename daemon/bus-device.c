#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-device.h"
#include "device-table.h"
#include "log.h"
#include "macro.h"

/* The properties that emit PropertiesChanged, as a device shows them. */
typedef struct DeviceAnnounced {
        PmState state;
        PolicyMode mode;
        DevicePowerState power_state;
        PmRelease release;
        uint64_t wakes;
        uint64_t arms;
} DeviceAnnounced;

/* What was last announced of a device, so that a flush sends only what moved; linked into the
 * dirty list while a hook has said it changed since. */
typedef struct DeviceSeen DeviceSeen;
struct DeviceSeen {
        ManagedDevice *device;          /* whose observer this is, from its added hook to its removed */
        DeviceAnnounced announced;
        DeviceSeen *dirty_prev, *dirty_next;
        bool dirty;
        bool counters_pending;          /* Wakes/Arms moved, nothing else: for the next
                                         * bus_devices_flush_counters() */
        char name[];                    /* the table's key */
};

struct BusDevices {
        sd_bus *bus;
        Manager *manager;
        sd_bus_slot *vtable_slot;
        sd_bus_slot *enumerator_slot;
        DeviceTable *seen;              /* name → DeviceSeen, owned */
        DeviceSeen *dirty_first, *dirty_last;   /* in the order they were marked */
};

int bus_device_path(const char *name, char **ret) {
        return sd_bus_path_encode(BUS_DEVICE_PREFIX, name, ret);
}

static const char *str_or_empty(const char *s) {
        return s ?: "";
}

/* ---- properties ------------------------------------------------------------------------- */

#define DEFINE_INFO_STRING_PROPERTY(function, field)                                             \
        static int function(sd_bus *bus, const char *path, const char *interface,               \
                            const char *property, sd_bus_message *reply, void *userdata,        \
                            sd_bus_error *error) {                                               \
                return sd_bus_message_append_basic(reply, 's',                                   \
                                                   str_or_empty(managed_device_info(userdata)->field)); \
        }

DEFINE_INFO_STRING_PROPERTY(property_name, name)
DEFINE_INFO_STRING_PROPERTY(property_vendor, vendor)
DEFINE_INFO_STRING_PROPERTY(property_device_id, device_id)
DEFINE_INFO_STRING_PROPERTY(property_class, class)
DEFINE_INFO_STRING_PROPERTY(property_driver, driver)

/* A string, so that "no group" can be "" rather than a magic number. */
static int property_iommu_group(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        int group = managed_device_info(userdata)->iommu_group;
        char buf[16] = "";

        if (group >= 0)
                (void) snprintf(buf, sizeof(buf), "%d", group);
        return sd_bus_message_append_basic(reply, 's', buf);
}

static int property_mode(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_basic(reply, 's',
                                           policy_mode_to_string(pm_device_mode(managed_device_pm(userdata))));
}

static int property_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_basic(reply, 's',
                                           pm_state_to_string(pm_device_state(managed_device_pm(userdata))));
}

static int property_power_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_basic(reply, 's',
                                           device_power_state_to_string(managed_device_power_state(userdata)));
}

static int property_runtime_status(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        char buf[DEVICE_RUNTIME_STATUS_MAX];

        return sd_bus_message_append_basic(reply, 's', managed_device_runtime_status(userdata, buf));
}

static int property_counter(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        PmCounters c;
        uint64_t v;

        pm_device_counters(managed_device_pm(userdata), &c);
        if (strcmp(property, "Wakes") == 0)
                v = c.wakes;
        else if (strcmp(property, "Arms") == 0)
                v = c.arms;
        else if (strcmp(property, "LowPowerUsec") == 0)
                v = c.low_power_usec;
        else
                v = c.last_wake_realtime_usec;
        return sd_bus_message_append_basic(reply, 't', &v);
}

static int property_kernel_suspended_msec(sd_bus *bus, const char *path, const char *interface,
                                          const char *property, sd_bus_message *reply, void *userdata,
                                          sd_bus_error *error) {
        uint64_t msec = 0;

        (void) pm_device_kernel_suspended_msec(managed_device_pm(userdata), &msec);
        return sd_bus_message_append_basic(reply, 't', &msec);
}

/* EnergySavedJoules, EnergyEstimated, KernelSuspendedSinceSeenMsec: one fresh reading each. */
static int property_energy(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        EnergyReading e;
        int estimated;

        managed_device_energy(userdata, &e);
        if (strcmp(property, "EnergySavedJoules") == 0)
                return sd_bus_message_append_basic(reply, 'd', &e.joules);
        if (strcmp(property, "EnergyEstimated") == 0) {
                estimated = e.estimated;
                return sd_bus_message_append_basic(reply, 'b', &estimated);
        }
        return sd_bus_message_append_basic(reply, 't', &e.suspended_msec);
}

static int property_last_error(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_basic(reply, 's',
                                           str_or_empty(pm_device_last_error(managed_device_pm(userdata))));
}

static int property_release_reason(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_basic(reply, 's',
                                           pm_release_to_string(pm_device_release_reason(managed_device_pm(userdata))));
}

static int property_released_by(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_basic(reply, 's', str_or_empty(managed_device_released_by(userdata)));
}

static int property_policy(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const EffectivePolicy *p = managed_device_policy(userdata);
        _cleanup_free_ char *json = NULL;
        int r;

        /* no evaluation has succeeded yet: JSON null, still valid JSON for a parser */
        if (!p)
                return sd_bus_message_append_basic(reply, 's', "null");
        r = effective_policy_to_json(p, &json);
        if (r < 0)
                return r;
        return sd_bus_message_append_basic(reply, 's', json);
}

/* ---- the listings ----------------------------------------------------------------------- */

/* Opens reply's array of contents, for every device of the manager (into devices and n). */
static int devices_array_open(BusDevices *b, sd_bus_message *reply, const char *contents, ManagedDevice ***devices,
                              size_t *n) {
        int r;

        r = manager_devices(b->manager, devices, n);
        if (r < 0)
                return r;
        return sd_bus_message_open_container(reply, 'a', contents);
}

int bus_devices_append_names(BusDevices *b, sd_bus_message *reply) {
        ManagedDevice **devices;
        size_t n;
        int r;

        r = devices_array_open(b, reply, "(so)", &devices, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *name = managed_device_info(devices[i])->name;
                _cleanup_free_ char *path = NULL;

                r = bus_device_path(name, &path);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(so)", name, path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

int bus_devices_append_states(BusDevices *b, sd_bus_message *reply) {
        ManagedDevice **devices;
        size_t n;
        int r;

        r = devices_array_open(b, reply, "(" BUS_DEVICE_STATE_SIGNATURE ")", &devices, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const DeviceInfo *info = managed_device_info(devices[i]);
                const PmDevice *pm = managed_device_pm(devices[i]);
                EnergyReading e;
                PmCounters c;

                pm_device_counters(pm, &c);
                managed_device_energy(devices[i], &e);
                r = sd_bus_message_append(reply, "(" BUS_DEVICE_STATE_SIGNATURE ")", info->name,
                                          str_or_empty(info->vendor), str_or_empty(info->device_id),
                                          str_or_empty(info->class), policy_mode_to_string(pm_device_mode(pm)),
                                          pm_state_to_string(pm_device_state(pm)),
                                          device_power_state_to_string(managed_device_power_state(devices[i])),
                                          c.wakes, c.low_power_usec, e.joules, (int) e.estimated);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

/* Identity is constant for an object's life, but for Driver: a device that changes driver leaves
 * VFIO and is removed (DeviceRemoved) first, unless it is released by a Release, which keeps it
 * (manager.h). Wakes and Arms are announced, so that a wake that re-arms at once is seen although
 * State ends where it was; PropertiesChanged goes out at most once a loop turn per device
 * (bus_devices_flush()), which is what keeps that off the wake path's cost. The other counters
 * change all the time: read them. */
static const sd_bus_vtable device_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Vendor", "s", property_vendor, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("DeviceId", "s", property_device_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Class", "s", property_class, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Driver", "s", property_driver, 0, 0),
        SD_BUS_PROPERTY("IommuGroup", "s", property_iommu_group, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Mode", "s", property_mode, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", property_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PowerState", "s", property_power_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RuntimeStatus", "s", property_runtime_status, 0, 0),
        SD_BUS_PROPERTY("Wakes", "t", property_counter, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Arms", "t", property_counter, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LowPowerUsec", "t", property_counter, 0, 0),
        SD_BUS_PROPERTY("KernelSuspendedMsec", "t", property_kernel_suspended_msec, 0, 0),
        SD_BUS_PROPERTY("KernelSuspendedSinceSeenMsec", "t", property_energy, 0, 0),
        SD_BUS_PROPERTY("EnergySavedJoules", "d", property_energy, 0, 0),
        SD_BUS_PROPERTY("EnergyEstimated", "b", property_energy, 0, 0),
        SD_BUS_PROPERTY("LastWakeRealtimeUsec", "t", property_counter, 0, 0),
        SD_BUS_PROPERTY("ReleaseReason", "s", property_release_reason, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ReleasedBy", "s", property_released_by, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastError", "s", property_last_error, 0, 0),
        /* built on demand (JSON, each key with its file): not in GetAll and GetManagedObjects,
         * where a thousand devices would build it for a status that does not show it */
        SD_BUS_PROPERTY("Policy", "s", property_policy, 0, SD_BUS_VTABLE_PROPERTY_EXPLICIT),
        SD_BUS_VTABLE_END
};

/* ---- objects ---------------------------------------------------------------------------- */

static int device_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                       sd_bus_error *error) {
        BusDevices *b = userdata;
        _cleanup_free_ char *name = NULL, *canonical = NULL;
        ManagedDevice *d;
        int r;

        r = sd_bus_path_decode(path, BUS_DEVICE_PREFIX, &name);
        if (r <= 0)
                return r;
        d = manager_find_device(b->manager, name);
        if (!d)
                return 0;
        /* sd_bus_path_decode() takes any spelling ("_30" for "0", an invalid escape literally)
         * and "_00" decodes to a NUL that ends the name early: only the device's own path is its
         * object, not every other path that decodes to its name */
        r = bus_device_path(name, &canonical);
        if (r < 0)
                return r;
        if (strcmp(path, canonical) != 0)
                return 0;
        *ret_found = d;
        return 1;
}

static int device_enumerate(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes, sd_bus_error *error) {
        BusDevices *b = userdata;
        ManagedDevice **devices;
        size_t n, i;
        char **nodes;
        int r;

        r = manager_devices(b->manager, &devices, &n);
        if (r < 0)
                return r;
        nodes = calloc(n + 1, sizeof(*nodes));
        if (!nodes)
                return -ENOMEM;
        for (i = 0; i < n; i++) {
                r = bus_device_path(managed_device_info(devices[i])->name, &nodes[i]);
                if (r < 0) {
                        while (i > 0)
                                free(nodes[--i]);
                        free(nodes);
                        return r;
                }
        }
        *ret_nodes = nodes;
        return 1;
}

int bus_devices_new(sd_bus *bus, Manager *m, BusDevices **ret) {
        _cleanup_(bus_devices_freep) BusDevices *b = NULL;
        int r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->bus = sd_bus_ref(bus);
        b->manager = m;
        r = device_table_new(free, &b->seen);
        if (r < 0)
                return r;

        r = sd_bus_add_fallback_vtable(bus, &b->vtable_slot, BUS_DEVICE_PREFIX, BUS_DEVICE_INTERFACE,
                                       device_vtable, device_find, b);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, &b->enumerator_slot, BUS_DEVICE_PREFIX, device_enumerate, b);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(b);
        return 0;
}

BusDevices *bus_devices_free(BusDevices *b) {
        DeviceSeen *s;

        if (!b)
                return NULL;
        /* the devices may outlive us: no pointer of theirs into what is freed */
        DEVICE_TABLE_FOREACH(s, b->seen, i)
                if (s->device)
                        managed_device_set_observer(s->device, NULL);
        sd_bus_slot_unref(b->enumerator_slot);
        sd_bus_slot_unref(b->vtable_slot);
        device_table_free(b->seen);
        sd_bus_unref(b->bus);
        free(b);
        return NULL;
}

/* What a device shows now; its power_state (a sysfs read) only with power, else unknown. */
static void announced_read(DeviceAnnounced *ret, ManagedDevice *d, bool power) {
        const PmDevice *pm = managed_device_pm(d);
        PmCounters c;

        pm_device_counters(pm, &c);
        *ret = (DeviceAnnounced) {
                .state = pm_device_state(pm),
                .mode = pm_device_mode(pm),
                .power_state = power ? managed_device_power_state(d) : DEVICE_POWER_UNKNOWN,
                .release = pm_device_release_reason(pm),
                .wakes = c.wakes,
                .arms = c.arms,
        };
}

void bus_devices_added(BusDevices *b, ManagedDevice *d) {
        const char *name = managed_device_info(d)->name;
        DeviceSeen *s;

        if (device_table_get(b->seen, name))
                return;
        s = calloc(1, sizeof(*s) + strlen(name) + 1);
        if (!s) {
                log_oom();
                return;
        }
        strcpy(s->name, name);
        announced_read(&s->announced, d, true);
        if (device_table_put(b->seen, s->name, s) < 0) {
                free(s);
                log_oom();
                return;
        }
        s->device = d;
        managed_device_set_observer(d, s);
}

static void dirty_unlink(BusDevices *b, DeviceSeen *s) {
        if (!s->dirty)
                return;
        if (s->dirty_prev)
                s->dirty_prev->dirty_next = s->dirty_next;
        else
                b->dirty_first = s->dirty_next;
        if (s->dirty_next)
                s->dirty_next->dirty_prev = s->dirty_prev;
        else
                b->dirty_last = s->dirty_prev;
        s->dirty_prev = s->dirty_next = NULL;
        s->dirty = false;
}

void bus_devices_changed(BusDevices *b, ManagedDevice *d) {
        DeviceSeen *s;

        s = managed_device_observer(d);
        if (!s) {
                /* a device the hooks missed: announce nothing we cannot compare */
                bus_devices_added(b, d);
                return;
        }
        if (s->dirty)
                return;
        s->dirty = true;
        s->dirty_prev = b->dirty_last;
        if (b->dirty_last)
                b->dirty_last->dirty_next = s;
        else
                b->dirty_first = s;
        b->dirty_last = s;
}

_hot_ int bus_devices_counted(BusDevices *b, ManagedDevice *d) {
        DeviceSeen *s = managed_device_observer(d);

        if (!s) {
                bus_devices_added(b, d);
                return 0;
        }
        if (s->dirty)
                return 0;       /* this turn's flush sees the counters with the rest */
        s->counters_pending = true;
        return BUS_FLUSH_COUNTERS_WAIT;
}

void bus_devices_removed(BusDevices *b, ManagedDevice *d) {
        DeviceSeen *s = managed_device_observer(d);

        /* its changes die with it: DeviceRemoved says all there is to say */
        managed_device_set_observer(d, NULL);
        if (s)
                dirty_unlink(b, s);
        (void) device_table_remove(b->seen, managed_device_info(d)->name);
}

/* One PropertiesChanged with what differs from the last announcement, if anything does. A wake
 * that re-armed in the same turn moves only the counters: unless counters (the flush of the
 * counters' window), that waits for bus_devices_flush_counters(), and costs nothing now, not even
 * the power_state read. Returns bus_devices_flush()'s flags for the device. */
static int device_flush(BusDevices *b, DeviceSeen *s, ManagedDevice *d, bool counters) {
        _cleanup_free_ char *path = NULL;
        DeviceAnnounced now, *was = &s->announced;
        char *changed[8];
        size_t n = 0;
        int r;

        announced_read(&now, d, false);
        if (!counters && now.mode == was->mode && now.state == was->state && now.release == was->release &&
            (now.wakes != was->wakes || now.arms != was->arms)) {
                s->counters_pending = true;
                return BUS_FLUSH_COUNTERS_WAIT;
        }
        s->counters_pending = false;
        now.power_state = managed_device_power_state(d);
        if (now.mode != was->mode)
                changed[n++] = (char *) "Mode";
        if (now.state != was->state)
                changed[n++] = (char *) "State";
        if (now.power_state != was->power_state)
                changed[n++] = (char *) "PowerState";
        if (now.release != was->release) {
                changed[n++] = (char *) "ReleaseReason";
                changed[n++] = (char *) "ReleasedBy";
        }
        if (now.wakes != was->wakes)
                changed[n++] = (char *) "Wakes";
        if (now.arms != was->arms)
                changed[n++] = (char *) "Arms";
        changed[n] = NULL;
        *was = now;
        if (n == 0)
                return 0;

        r = bus_device_path(s->name, &path);
        if (r >= 0)
                r = sd_bus_emit_properties_changed_strv(b->bus, path, BUS_DEVICE_INTERFACE, changed);
        if (r < 0)
                log_device_warning_errno(s->name, r, "Failed to announce the device's new state on the bus, ignoring: %m");
        return BUS_FLUSH_SENT;
}

void bus_devices_baseline(BusDevices *b) {
        DeviceSeen *s;

        while (b->dirty_first)
                dirty_unlink(b, b->dirty_first);
        DEVICE_TABLE_FOREACH(s, b->seen, i) {
                if (!s->device)
                        continue;
                announced_read(&s->announced, s->device, true);
                s->counters_pending = false;
        }
}

int bus_devices_flush(BusDevices *b) {
        int flags = 0;

        while (b->dirty_first) {
                DeviceSeen *s = b->dirty_first;

                dirty_unlink(b, s);
                if (s->device)
                        flags |= device_flush(b, s, s->device, false);
        }
        return flags;
}

void bus_devices_flush_counters(BusDevices *b) {
        DeviceSeen *s;

        DEVICE_TABLE_FOREACH(s, b->seen, i) {
                if (!s->counters_pending)
                        continue;
                if (s->device)
                        (void) device_flush(b, s, s->device, true);
                s->counters_pending = false;
        }
}
