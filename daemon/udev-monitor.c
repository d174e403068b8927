#include <errno.h>
#include <libudev.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "udev-monitor.h"

struct DeviceMonitor {
        struct udev *udev;
        struct udev_monitor *monitor;
        struct event *event;
        DeviceMonitorHandler handler;
        void *userdata;
};

static const char *const device_event_table[_DEVICE_EVENT_MAX] = {
        [DEVICE_EVENT_VFIO_ADD] = "vfio-add",
        [DEVICE_EVENT_VFIO_REMOVE] = "vfio-remove",
        [DEVICE_EVENT_CHANGE] = "change",
};

const char *device_event_to_string(DeviceEvent e) {
        if (e < 0 || e >= _DEVICE_EVENT_MAX)
                return NULL;
        return device_event_table[e];
}

int vfio_dev_parent_name(const char *devpath, char **ret) {
        const char *child, *parent_end, *parent;
        char *s;

        if (!devpath)
                return -EINVAL;
        child = strrchr(devpath, '/');
        if (!child || child == devpath || strncmp(child, "/vfio", 5) != 0)
                return -EINVAL;
        /* …/<parent>/vfio-dev/vfioN */
        parent_end = child - strlen("/vfio-dev");
        if (parent_end <= devpath || strncmp(parent_end, "/vfio-dev", 9) != 0)
                return -EINVAL;
        parent = parent_end;
        while (parent > devpath && parent[-1] != '/')
                parent--;
        if (parent == parent_end || parent == devpath)
                return -EINVAL;
        s = strndup(parent, (size_t) (parent_end - parent));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* A vfio-dev child's parent: the bus (its subsystem) and name. NULL bus if unknown. */
static void dispatch_vfio_dev(DeviceMonitorHandler handler, void *userdata, struct udev_device *dev, bool added) {
        _cleanup_free_ char *name = NULL;
        struct udev_device *parent;
        const char *bus = NULL;
        int r;

        r = vfio_dev_parent_name(udev_device_get_devpath(dev), &name);
        if (r < 0) {
                log_debug_errno(r, "Ignoring vfio-dev event for %s: %m", udev_device_get_devpath(dev));
                return;
        }
        parent = udev_device_get_parent(dev);   /* owned by dev */
        if (parent)
                bus = udev_device_get_subsystem(parent);
        if (added && !bus) {
                log_debug("Ignoring vfio-dev add for %s: parent has no bus", name);
                return;
        }
        handler(userdata, added ? DEVICE_EVENT_VFIO_ADD : DEVICE_EVENT_VFIO_REMOVE, bus, name);
}

static void on_udev_readable(evutil_socket_t fd, short what, void *userdata) {
        DeviceMonitor *m = userdata;
        struct udev_device *dev;

        /* the socket is non-blocking: drain what is there */
        while ((dev = udev_monitor_receive_device(m->monitor))) {
                const char *subsystem = udev_device_get_subsystem(dev);
                const char *action = udev_device_get_action(dev);

                if (!subsystem || !action)
                        ;
                else if (strcmp(subsystem, "vfio-dev") == 0) {
                        if (strcmp(action, "add") == 0)
                                dispatch_vfio_dev(m->handler, m->userdata, dev, true);
                        else if (strcmp(action, "remove") == 0)
                                dispatch_vfio_dev(m->handler, m->userdata, dev, false);
                } else
                        m->handler(m->userdata, DEVICE_EVENT_CHANGE, subsystem, udev_device_get_sysname(dev));
                udev_device_unref(dev);
        }
}

int device_monitor_new(struct event_base *base, DeviceMonitorHandler handler, void *userdata,
                       DeviceMonitor **ret) {
        _cleanup_(device_monitor_freep) DeviceMonitor *m = NULL;
        static const char *const subsystems[] = { "vfio-dev", "pci", "platform" };
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->handler = handler;
        m->userdata = userdata;

        m->udev = udev_new();
        if (!m->udev)
                return -ENOMEM;
        m->monitor = udev_monitor_new_from_netlink(m->udev, "udev");
        if (!m->monitor)
                return errno > 0 ? -errno : -EIO;
        for (size_t i = 0; i < sizeof(subsystems) / sizeof(subsystems[0]); i++) {
                r = udev_monitor_filter_add_match_subsystem_devtype(m->monitor, subsystems[i], NULL);
                if (r < 0)
                        return r;
        }
        /* a burst (1,000 simulated devices loading) must not overflow the socket */
        (void) udev_monitor_set_receive_buffer_size(m->monitor, 16 * 1024 * 1024);
        r = udev_monitor_enable_receiving(m->monitor);
        if (r < 0)
                return r;

        m->event = event_new(base, udev_monitor_get_fd(m->monitor), EV_READ|EV_PERSIST, on_udev_readable, m);
        if (!m->event || event_add(m->event, NULL) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(m);
        return 0;
}

DeviceMonitor *device_monitor_free(DeviceMonitor *m) {
        if (!m)
                return NULL;
        if (m->event)
                event_free(m->event);
        udev_monitor_unref(m->monitor);
        udev_unref(m->udev);
        free(m);
        return NULL;
}

int device_enumerate_vfio(DeviceMonitorHandler handler, void *userdata) {
        struct udev_enumerate *e;
        struct udev_list_entry *entry;
        struct udev *udev;
        int r, n = 0;

        udev = udev_new();
        if (!udev)
                return -ENOMEM;
        e = udev_enumerate_new(udev);
        if (!e) {
                udev_unref(udev);
                return -ENOMEM;
        }
        r = udev_enumerate_add_match_subsystem(e, "vfio-dev");
        if (r >= 0)
                r = udev_enumerate_scan_devices(e);
        if (r < 0) {
                udev_enumerate_unref(e);
                udev_unref(udev);
                return r;
        }
        udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e)) {
                struct udev_device *dev = udev_device_new_from_syspath(udev, udev_list_entry_get_name(entry));

                if (!dev)
                        continue;       /* gone since the scan: its remove event follows */
                dispatch_vfio_dev(handler, userdata, dev, true);
                udev_device_unref(dev);
                n++;
        }
        udev_enumerate_unref(e);
        udev_unref(udev);
        return n;
}
