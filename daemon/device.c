#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "macro.h"
#include "sysfs.h"

#define DEVICE_PATH_MAX 512

static int device_path(char *buf, size_t size, const char *bus, const char *name, const char *attr) {
        int n;

        if (!bus || !name || !*bus || !*name || strchr(bus, '/') || strchr(name, '/') ||
            strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return -EINVAL;
        n = snprintf(buf, size, "bus/%s/devices/%s%s%s", bus, name, attr ? "/" : "", attr ?: "");
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

/* "0x10de" → "10de" with digits digits; -ENOENT passes through (platform devices have none). */
static int read_hex_id(int sysfs_fd, const char *bus, const char *name, const char *attr,
                       unsigned digits, char **ret) {
        char path[DEVICE_PATH_MAX];
        unsigned v;
        char *s;
        int r;

        r = device_path(path, sizeof(path), bus, name, attr);
        if (r < 0)
                return r;
        r = sysfs_read_hex(sysfs_fd, path, &v);
        if (r < 0)
                return r;
        if (digits < 8 && v >> (4 * digits))
                return -ERANGE;
        if (asprintf(&s, "%0*x", (int) digits, v) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int device_info_read(int sysfs_fd, const char *bus, const char *name, DeviceInfo **ret) {
        static const struct {
                const char *attr;
                unsigned digits;
                size_t offset;
        } ids[] = {
                { "vendor", 4, offsetof(DeviceInfo, vendor) },
                { "device", 4, offsetof(DeviceInfo, device_id) },
                { "subsystem_vendor", 4, offsetof(DeviceInfo, subsystem_vendor) },
                { "subsystem_device", 4, offsetof(DeviceInfo, subsystem_device) },
                { "class", 6, offsetof(DeviceInfo, class) },
        };
        _cleanup_(device_info_freep) DeviceInfo *i = NULL;
        _cleanup_free_ char *group = NULL;
        char path[DEVICE_PATH_MAX];
        int r, fd;

        r = device_path(path, sizeof(path), bus, name, NULL);
        if (r < 0)
                return r;
        r = sysfs_open_dir(sysfs_fd, path, &fd);
        if (r < 0)
                return r == -ENOENT ? -ENODEV : r;
        (void) close(fd);

        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->iommu_group = -1;
        i->name = strdup(name);
        i->bus = strdup(bus);
        if (!i->name || !i->bus)
                return -ENOMEM;

        for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
                r = read_hex_id(sysfs_fd, bus, name, ids[k].attr, ids[k].digits,
                                (char **) ((char *) i + ids[k].offset));
                if (r < 0 && r != -ENOENT)
                        return r;
        }

        r = device_path(path, sizeof(path), bus, name, "driver");
        if (r < 0)
                return r;
        r = sysfs_read_link_name(sysfs_fd, path, &i->driver);
        if (r < 0 && r != -ENOENT)
                return r;

        r = device_path(path, sizeof(path), bus, name, "iommu_group");
        if (r < 0)
                return r;
        r = sysfs_read_link_name(sysfs_fd, path, &group);
        if (r >= 0) {
                char *end;
                long g;

                errno = 0;
                g = strtol(group, &end, 10);
                if (errno != 0 || end == group || *end != '\0' || g < 0 || g > INT_MAX)
                        return -EINVAL;
                i->iommu_group = (int) g;
        } else if (r != -ENOENT)
                return r;

        *ret = TAKE_PTR(i);
        return 0;
}

DeviceInfo *device_info_free(DeviceInfo *i) {
        if (!i)
                return NULL;
        free(i->name);
        free(i->bus);
        free(i->vendor);
        free(i->device_id);
        free(i->subsystem_vendor);
        free(i->subsystem_device);
        free(i->class);
        free(i->driver);
        free(i);
        return NULL;
}

void device_info_facts(const DeviceInfo *i, DeviceFacts *ret) {
        *ret = (DeviceFacts) {
                .name = i->name,
                .vendor = i->vendor,
                .device_id = i->device_id,
                .subsystem_vendor = i->subsystem_vendor,
                .subsystem_device = i->subsystem_device,
                .class = i->class,
                .driver = i->driver,
                .iommu_group = i->iommu_group,
        };
}

int device_find_bus(int sysfs_fd, const char *name, const char **ret_bus) {
        static const char *const buses[] = { "pci", "platform" };
        char path[DEVICE_PATH_MAX];
        int fd;

        for (size_t i = 0; i < ELEMENTSOF(buses); i++) {
                if (device_path(path, sizeof(path), buses[i], name, NULL) < 0)
                        return -ENODEV;
                if (sysfs_open_dir(sysfs_fd, path, &fd) < 0)
                        continue;
                (void) close(fd);
                *ret_bus = buses[i];
                return 0;
        }
        return -ENODEV;
}

bool device_is_vfio(int sysfs_fd, const char *bus, const char *name) {
        char path[DEVICE_PATH_MAX];
        int fd;

        if (device_path(path, sizeof(path), bus, name, "vfio-dev") < 0)
                return false;
        if (sysfs_open_dir(sysfs_fd, path, &fd) < 0)
                return false;
        (void) close(fd);
        return true;
}

static const char *const power_state_table[_DEVICE_POWER_MAX] = {
        [DEVICE_POWER_D0] = "D0",
        [DEVICE_POWER_D3HOT] = "D3hot",
        [DEVICE_POWER_D3COLD] = "D3cold",
        [DEVICE_POWER_UNKNOWN] = "unknown",
};

const char *device_power_state_to_string(DevicePowerState s) {
        if (s < 0 || s >= _DEVICE_POWER_MAX)
                return NULL;
        return power_state_table[s];
}

DevicePowerState device_power_state_from_string(const char *s) {
        if (!s)
                return _DEVICE_POWER_INVALID;
        for (int i = 0; i < _DEVICE_POWER_MAX; i++)
                if (strcmp(s, power_state_table[i]) == 0)
                        return (DevicePowerState) i;
        return _DEVICE_POWER_INVALID;
}

void device_power_attrs_close(DevicePowerAttrs *a) {
        sysfs_attr_close(&a->power_state);
        sysfs_attr_close(&a->runtime_status);
}

DevicePowerState device_power_state_read(DevicePowerAttrs *a, int dir_fd) {
        char buf[16];
        DevicePowerState s;

        if (sysfs_attr_read(&a->power_state, dir_fd, "power_state", buf, sizeof(buf)) < 0)
                return DEVICE_POWER_UNKNOWN;
        s = device_power_state_from_string(buf);
        return s >= 0 ? s : DEVICE_POWER_UNKNOWN;
}

const char *device_runtime_status_read(DevicePowerAttrs *a, int dir_fd, char buf[static DEVICE_RUNTIME_STATUS_MAX]) {
        if (sysfs_attr_read(&a->runtime_status, dir_fd, "power/runtime_status", buf, DEVICE_RUNTIME_STATUS_MAX) < 0)
                strcpy(buf, "unknown");
        return buf;
}
