/* manager-held: held devices across restarts (SPEC §9). Every device the manager holds has its
 * fds in the service manager's store (fdstore.h) and its entry in force and counters in the held
 * record (held-record.h); a starting daemon adopts what the one before left instead of opening
 * it, so that the kernel sees no close, no reset and no wake. The manager's PmVfioOps are
 * vfio.h's but for open and close, which go through here. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdstore.h"
#include "held-record.h"
#include "log.h"
#include "macro.h"
#include "manager-internal.h"
#include "time-util.h"
#include "vfio.h"

_Static_assert((int) HELD_ENTRY_PLAIN == PM_ENTRY_PLAIN && (int) HELD_ENTRY_WAKEUP == PM_ENTRY_WAKEUP,
               "the record keeps pm's entries");

/* ---- the store -------------------------------------------------------------------------- */

static void group_id(unsigned id, char buf[static 16]) {
        (void) snprintf(buf, 16, "%u", id);
}

/* Hands d's fds to the service manager (systemd keeps one copy of a file however often sent). */
static void store_add(const VfioDevice *vd) {
        const char *name = vfio_device_name(vd);
        VfioHeldFds fds;
        char group[16];
        int r;

        vfio_device_held_fds(vd, &fds);
        group_id(fds.group_id, group);
        r = fdstore_add(FDSTORE_DEVICE, name, fds.device);
        if (r >= 0)
                r = fdstore_add(FDSTORE_WAKE, name, fds.wake);
        if (r >= 0)
                r = fdstore_add(FDSTORE_REQUEST, name, fds.request);
        if (r >= 0 && fds.group >= 0)
                r = fdstore_add(FDSTORE_GROUP, group, fds.group);
        if (r >= 0 && fds.container >= 0)
                r = fds.container_shared ? fdstore_add(FDSTORE_CONTAINER, NULL, fds.container) :
                                           fdstore_add(FDSTORE_GROUP_CONTAINER, group, fds.container);
        if (r >= 0 && fds.iommufd >= 0)
                r = fdstore_add(FDSTORE_IOMMUFD, NULL, fds.iommufd);
        if (r < 0)
                log_device_warning_errno(name, r, "Failed to hand the device's fds to the service manager (a "
                                         "restart would wake it), ignoring: %m");
}

/* Has the service manager drop d's fds, and those of its group, container and iommufd when d
 * is their last device: with them gone the kernel sees the close when the daemon closes. */
static void store_remove(const VfioDevice *vd) {
        const char *name = vfio_device_name(vd);
        VfioHeldFds fds;
        char group[16];

        vfio_device_held_fds(vd, &fds);
        group_id(fds.group_id, group);
        (void) fdstore_remove(FDSTORE_DEVICE, name);
        (void) fdstore_remove(FDSTORE_WAKE, name);
        (void) fdstore_remove(FDSTORE_REQUEST, name);
        if (fds.group >= 0 && fds.group_last)
                (void) fdstore_remove(FDSTORE_GROUP, group);
        if (fds.container >= 0 && fds.container_last)
                (void) (fds.container_shared ? fdstore_remove(FDSTORE_CONTAINER, NULL) :
                                               fdstore_remove(FDSTORE_GROUP_CONTAINER, group));
        if (fds.iommufd >= 0 && fds.iommufd_last)
                (void) fdstore_remove(FDSTORE_IOMMUFD, NULL);
}

/* What the earlier daemon left of name: the fds in the store and the entry in the record.
 * Returns the entry in force (PmEntry), or -errno: the fds are closed then, and the caller
 * opens the device afresh. */
static int device_adopt(Manager *m, ManagedDevice *d, VfioDevice **ret) {
        const char *name = d->info->name;
        VfioHeldFds fds = VFIO_HELD_FDS_NULL;
        char group[16];
        int r;

        fds.device = fdstore_take(m->store, FDSTORE_DEVICE, name);
        fds.wake = fdstore_take(m->store, FDSTORE_WAKE, name);
        fds.request = fdstore_take(m->store, FDSTORE_REQUEST, name);
        if (d->info->iommu_group >= 0) {
                fds.group_id = (unsigned) d->info->iommu_group;
                group_id(fds.group_id, group);
                fds.group = fdstore_take(m->store, FDSTORE_GROUP, group);
                fds.container = fdstore_take(m->store, FDSTORE_GROUP_CONTAINER, group);
                fds.container_shared = fds.container < 0;
                if (fds.container_shared)
                        fds.container = fdstore_take(m->store, FDSTORE_CONTAINER, NULL);
        }
        fds.iommufd = fdstore_take(m->store, FDSTORE_IOMMUFD, NULL);
        if (d->slot) {
                fds.entered = d->slot->entry != HELD_ENTRY_NONE;
                fds.entered_wakeup = d->slot->entry == HELD_ENTRY_WAKEUP;
                fds.ioas_id = d->slot->ioas_id;
        }
        /* a missing fd is -ENOENT here: -EBADF for vfio_device_adopt() */
        for (int *fd = &fds.device; fd <= &fds.request; fd++)
                if (*fd < 0)
                        *fd = -EBADF;
        if (fds.group < 0)
                fds.group = -EBADF;
        if (fds.container < 0)
                fds.container = -EBADF;
        if (fds.iommufd < 0)
                fds.iommufd = -EBADF;

        r = vfio_device_adopt(m->backend, name, &fds, ret);
        if (r < 0)
                return r;
        return d->slot ? (int) d->slot->entry : PM_ENTRY_NONE;
}

/* PmVfioOps.open: adopts what the earlier daemon left, else opens, and hands the fds over. */
static int held_open(void *userdata, const char *bus, const char *name, void **ret_handle) {
        Manager *m = userdata;
        ManagedDevice *d = manager_find_device(m, name);
        VfioDevice *vd = NULL;
        int r;

        if (d && m->store && fdstore_has(m->store, FDSTORE_DEVICE, name)) {
                r = device_adopt(m, d, &vd);
                if (r >= 0) {
                        log_device_info(name, "Adopted from the daemon before (%s in force)",
                                        r == PM_ENTRY_WAKEUP ? "the wake-up entry" :
                                        r == PM_ENTRY_PLAIN ? "the plain entry" : "no entry");
                        *ret_handle = vd;
                        return r;
                }
                log_device_warning_errno(name, r, "Failed to adopt the device from the daemon before, opening it "
                                         "again: %m");
        }
        r = vfio_device_open(m->backend, bus, name, &vd);
        if (r < 0)
                return r;
        /* a unit known to keep none would only drop them, a message and a socket a fd later */
        if (m->keep_held || !m->keep_held_known)
                store_add(vd);
        *ret_handle = vd;
        return 0;
}

/* PmVfioOps.close: the store lets go too, unless the daemon is leaving for a restart. */
static void held_close(void *userdata, void *handle) {
        Manager *m = userdata;
        VfioDevice *vd = handle;

        if (!m->leaving) {
                if (m->store_used)
                        store_remove(vd);
                if (m->held)
                        held_record_remove(m->held, vfio_device_name(vd));
                /* the device's slot pointer is dropped by manager_held_sync() */
        }
        (void) vfio_device_close(vd);
}

const PmVfioOps *manager_vfio_ops(void) {
        static PmVfioOps ops;

        /* vfio.h's, which use only the handle, but for open and close */
        if (!ops.open) {
                ops = *pm_vfio_ops_default();
                ops.open = held_open;
                ops.close = held_close;
        }
        return &ops;
}

/* ---- the record ------------------------------------------------------------------------- */

void manager_held_begin(Manager *m) {
        bool reset = false;
        int r;

        if (m->config.fdstore)
                m->store = m->config.fdstore;
        else {
                r = fdstore_collect(&m->store);
                if (r < 0)
                        log_warning_errno(r, "Failed to take the fds the service manager kept, ignoring: %m");
        }
        if (m->store && fdstore_unknown(m->store) > 0)
                log_warning("Closed %zu fds of the service manager's store that are none of ours",
                            fdstore_unknown(m->store));
        m->store_used = m->keep_held || !m->keep_held_known || (m->store && fdstore_left(m->store) > 0);
        /* the record is for the next daemon, which adopts only from the store */
        if (m->state_dir_fd < 0 || !m->store_used)
                return;
        r = held_record_open(m->state_dir_fd, &m->held, &reset);
        if (r < 0)
                log_warning_errno(r, "Failed to open the record of held devices (a restart will wake them), "
                                  "ignoring: %m");
        else if (reset)
                log_warning("The record of held devices was damaged and started over: the devices the daemon "
                            "before held are opened afresh");
}

void manager_held_restore(Manager *m, ManagedDevice *d) {
        HeldSlot *s;
        usec_t low;

        if (!m->held || !m->store || !fdstore_has(m->store, FDSTORE_DEVICE, d->info->name))
                return;
        s = held_record_get(m->held, d->info->name);
        if (!s)
                return;
        /* armed while no daemon ran: that counts */
        low = s->low_power_usec;
        if (s->armed_since_usec > 0) {
                usec_t n = now(CLOCK_MONOTONIC);

                if (n > s->armed_since_usec)
                        low += n - s->armed_since_usec;
        }
        pm_device_restore_counters(d->pm, &(PmCounters) {
                .wakes = s->wakes,
                .arms = s->arms,
                .low_power_usec = low,
                .last_wake_realtime_usec = s->last_wake_realtime_usec,
        });
        d->slot = s;
}

_hot_ void manager_held_sync(Manager *m, ManagedDevice *d) {
        PmDevice *pm = d->pm;
        PmCounters c;
        usec_t since;
        HeldSlot *s;

        if (!m->held || m->leaving)
                return;
        if (!pm_device_held(pm)) {
                d->slot = NULL;         /* held_close() has freed it */
                return;
        }
        if (!d->slot && held_record_add(m->held, d->info->name, &d->slot) < 0)
                return;                 /* full: this device is not adopted after a restart */
        s = d->slot;
        pm_device_counters_base(pm, &c, &since);     /* no clock read on the wake path */
        s->entry = (uint32_t) pm_device_entry(pm);
        s->wakes = c.wakes;
        s->arms = c.arms;
        s->low_power_usec = c.low_power_usec;
        s->armed_since_usec = since == USEC_INFINITY ? 0 : since;
        s->last_wake_realtime_usec = c.last_wake_realtime_usec;
}

void manager_held_end(Manager *m) {
        _cleanup_free_ const char **names = NULL;
        size_t n;

        if (m->store) {
                if (fdstore_devices_left(m->store, &names) >= 0)
                        for (const char **p = names; *p; p++)
                                log_device_info(*p, "Left held by the daemon before, and not held now: let go");
                n = fdstore_forget_left(m->store);
                if (n > 0)
                        log_debug("Dropped %zu fds of the service manager's store", n);
                if (m->store != m->config.fdstore)
                        m->store = fdstore_free(m->store);
                m->store = NULL;
        }
        /* the record's slots of devices not held now */
        free(names);
        names = NULL;
        if (m->held && held_record_names(m->held, &names) >= 0)
                for (const char **p = names; *p; p++) {
                        ManagedDevice *d = manager_find_device(m, *p);

                        if (!d || d->slot != held_record_get(m->held, *p))
                                held_record_remove(m->held, *p);
                }
}

void manager_held_free(Manager *m) {
        if (m->store && m->store != m->config.fdstore)
                fdstore_free(m->store);
        m->store = NULL;
        if (!m->held)
                return;
        m->held = held_record_free(m->held);
        /* a stop that let every device go leaves nothing behind; a daemon that leaves them held
         * leaves the record for the next */
        if (!m->leaving && m->state_dir_fd >= 0)
                (void) unlinkat(m->state_dir_fd, HELD_RECORD_FILE, 0);
}
