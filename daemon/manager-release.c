/* manager-release: Release and Claim (SPEC §5), the hand-off of devices to VMs: a whole IOMMU
 * group is released with the device asked for (vfio group opens are exclusive), a device not yet
 * on a VFIO driver is reserved, and release-store.h keeps what was released across restarts. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device-table.h"
#include "log.h"
#include "manager-internal.h"
#include "release-store.h"
#include "strv.h"

/* Released by a Release (its own, a group sibling's, a reservation): what the release directory
 * keeps and Claim ends; not a kernel request. */
static bool released_by_release(PmRelease why) {
        return why == PM_RELEASE_OWN || why == PM_RELEASE_GROUP || why == PM_RELEASE_RESERVATION;
}

/* The release of d as release-store.h keeps it (or forgets it when d is not released by a
 * Release). A failure costs only the restart case: said, and ignored. */
static void release_sync(Manager *m, ManagedDevice *d) {
        PmRelease why = pm_device_release_reason(d->pm);
        int r;

        if (m->release_dir_fd < 0)
                return;
        if (released_by_release(why))
                r = release_store_save(m->release_dir_fd, d->info->name, why, d->released_by ?: d->info->name);
        else
                r = release_store_forget(m->release_dir_fd, d->info->name);
        if (r < 0)
                log_device_warning_errno(d->info->name, r, "Failed to record the release in the release directory "
                                         "(a restarted daemon would not know of it), ignoring: %m");
}

static int set_released_by(ManagedDevice *d, const char *by) {
        char *s = NULL;

        if (by) {
                s = strdup(by);
                if (!s)
                        return -ENOMEM;
        }
        free(d->released_by);
        d->released_by = s;
        return 0;
}

/* What the release directory says of name, applied before its first decision: a restarted daemon
 * leaves released what the one before released. */
void manager_release_adopt(Manager *m, ManagedDevice *d) {
        _cleanup_free_ char *by = NULL;
        PmRelease why;
        int r;

        if (m->release_dir_fd < 0)
                return;
        r = release_store_load(m->release_dir_fd, d->info->name, &why, &by);
        if (r == -ENOENT)
                return;
        if (r < 0) {
                log_device_warning_errno(d->info->name, r, "Failed to read its release record, ignoring: %m");
                return;
        }
        if (set_released_by(d, by) < 0 || pm_device_release(d->pm, why) < 0)
                return;
        log_device_info(d->info->name, "Released (%s, by %s) before this daemon started: stays released until Claim",
                        pm_release_to_string(why), by);
}

/* A device off VFIO with a record in the release directory: in the table, released as it was. */
int manager_add_released(Manager *m, const char *bus, const char *name) {
        ManagedDevice *d;
        int r;

        r = managed_device_new(m, bus, name, &d);
        if (r < 0)
                return r;
        if (m->hooks.device_added)
                m->hooks.device_added(m->hooks.userdata, d);
        manager_release_adopt(m, d);
        return managed_device_apply_policy(m, d);
}

bool manager_release_recorded(Manager *m, const char *name) {
        PmRelease why;

        return m->release_dir_fd >= 0 && release_store_load(m->release_dir_fd, name, &why, NULL) >= 0;
}

/* Whether d stays in the table off its VFIO driver: released by a Release (the caller's Claim
 * will end it), and still in sysfs. */
bool manager_keep_released(Manager *m, ManagedDevice *d) {
        const char *bus;

        if (!released_by_release(pm_device_release_reason(d->pm)))
                return false;
        return device_find_bus(m->config.sysfs_fd, d->info->name, &bus) >= 0;
}

/* ---- hand-off: Release and Claim of IOMMU groups ---------------------------------------- */

static void log_siblings(const char *name, const char *verb, char **also, int group) {
        for (char **p = also; p && *p; p++)
                log_device_info(*p, "%s with %s (IOMMU group %d)", verb, name, group);
}

int manager_release(Manager *m, const char *name, char ***ret_also) {
        ManagedDevice *d = manager_find_device(m, name);
        char **also = NULL;
        size_t n = 0;
        int own, r;

        if (!release_store_name_ok(name))
                return -ENODEV;
        if (!d) {
                const char *bus;

                /* not on a VFIO driver (yet): a reservation, kept until Claim */
                r = device_find_bus(m->config.sysfs_fd, name, &bus);
                if (r < 0)
                        return r;
                r = managed_device_new(m, bus, name, &d);
                if (r < 0)
                        return r;
                log_device_info(name, "Reserved: not on a VFIO driver (%s), released until Claim",
                                d->info->driver ?: "no driver");
                if (m->hooks.device_added)
                        m->hooks.device_added(m->hooks.userdata, d);
                (void) set_released_by(d, name);
                (void) pm_device_release(d->pm, PM_RELEASE_RESERVATION);
                (void) managed_device_apply_policy(m, d);
                own = 0;
        } else {
                /* before the transition, which announces ReleasedBy with State */
                if (set_released_by(d, name) < 0)
                        return -ENOMEM;
                own = pm_device_release(d->pm, d->on_vfio ? PM_RELEASE_OWN : PM_RELEASE_RESERVATION);
        }
        if (own >= 0) {
                release_sync(m, d);
                manager_hook_device_changed(m, d);      /* released already: only the reason may have moved */
        } else if (own == -ENOTCONN)
                (void) set_released_by(d, NULL);
        else
                return own;

        /* vfio group opens are exclusive: what the caller needs free is the whole group */
        if (d->info->iommu_group >= 0) {
                ManagedDevice *s;

                DEVICE_TABLE_FOREACH(s, m->devices, i) {
                        if (s == d || s->info->iommu_group != d->info->iommu_group ||
                            pm_device_release_reason(s->pm) != PM_RELEASE_NONE)
                                continue;
                        r = set_released_by(s, name);
                        if (r >= 0)
                                r = pm_device_release(s->pm, PM_RELEASE_GROUP);
                        if (r == -ENOTCONN) {
                                (void) set_released_by(s, NULL);
                                continue;       /* not held, not wanted */
                        }
                        if (r >= 0) {
                                release_sync(m, s);
                                r = strv_push(&also, &n, s->info->name);
                        }
                        if (r < 0) {
                                strv_free(also);
                                return r;
                        }
                }
        }
        log_siblings(name, "Released", also, d->info->iommu_group);
        if (own == -ENOTCONN && n == 0)
                return -ENOTCONN;
        if (ret_also)
                *ret_also = also ?: calloc(1, sizeof(char *));
        else
                strv_free(also);
        return 0;
}

/* Claim of one device: a reservation off VFIO ends (the device leaves the table), else pm. */
static int device_claim(Manager *m, ManagedDevice *d) {
        int r = 0;

        if (!d->on_vfio) {
                if (m->release_dir_fd >= 0)
                        (void) release_store_forget(m->release_dir_fd, d->info->name);
                log_device_info(d->info->name, "Reservation dropped: not on a VFIO driver");
                manager_forget_device(m, d);
                return 0;
        }
        r = pm_device_claim(d->pm);
        if (pm_device_release_reason(d->pm) == PM_RELEASE_NONE) {
                (void) set_released_by(d, NULL);
                release_sync(m, d);
        }
        return r;
}

/* The records of devices released with name that are not in the table (gone from sysfs, or not
 * present when the daemon started): Claim ends their release too, else they would come back
 * released with nothing left to claim them. */
static unsigned release_forget_absent(Manager *m, const char *name) {
        _cleanup_(strv_freep) char **names = NULL;
        unsigned n = 0;

        if (m->release_dir_fd < 0 || release_store_list(m->release_dir_fd, &names) < 0)
                return 0;
        for (char **p = names; *p; p++) {
                _cleanup_free_ char *by = NULL;
                PmRelease why;

                if (!manager_find_device(m, *p) &&
                    release_store_load(m->release_dir_fd, *p, &why, &by) >= 0 &&
                    why == PM_RELEASE_GROUP && strcmp(by, name) == 0) {
                        (void) release_store_forget(m->release_dir_fd, *p);
                        log_device_info(*p, "Not present; its release with %s ends", name);
                        n++;
                }
        }
        return n;
}

int manager_claim(Manager *m, const char *name, char ***ret_also) {
        ManagedDevice *d = manager_find_device(m, name);
        char **also = NULL, **group = NULL;
        size_t n = 0, n_group = 0;
        ManagedDevice *other;
        int group_id = d ? d->info->iommu_group : -1, r = 0, k;
        unsigned absent;

        if (!release_store_name_ok(name))
                return -ENODEV;
        /* who was released with it, and who waits in busy for the same group (an earlier Claim found
         * it held): names first, claiming may take devices out of the table */
        DEVICE_TABLE_FOREACH(other, m->devices, i) {
                bool with = pm_device_release_reason(other->pm) == PM_RELEASE_GROUP && other->released_by &&
                            strcmp(other->released_by, name) == 0;
                bool waits = group_id >= 0 && other->info->iommu_group == group_id &&
                             pm_device_state(other->pm) == PM_STATE_BUSY;

                if (other != d && (with || waits) && strv_push(&group, &n_group, other->info->name) < 0) {
                        strv_free(group);
                        return -ENOMEM;
                }
        }
        absent = release_forget_absent(m, name);
        if (d)
                r = device_claim(m, d);
        else if (manager_release_recorded(m, name)) {
                /* reserved, and never seen since: the reservation goes */
                (void) release_store_forget(m->release_dir_fd, name);
                log_device_info(name, "Reservation dropped: the device is not present");
        } else if (n_group == 0 && absent == 0) {
                strv_free(group);
                return -ENODEV;
        }

        for (size_t i = 0; i < n_group; i++) {
                ManagedDevice *s = manager_find_device(m, group[i]);

                if (!s)
                        continue;
                if (group_id < 0)
                        group_id = s->info->iommu_group;
                k = device_claim(m, s);
                if (k < 0)
                        log_device_debug(group[i], "Claim with %s failed: %s", name, strerror(-k));
                if (strv_push(&also, &n, group[i]) < 0) {
                        strv_free(group);
                        strv_free(also);
                        return -ENOMEM;
                }
        }
        strv_free(group);
        log_siblings(name, "Claimed", also, group_id);
        if (r < 0) {
                strv_free(also);
                return r;
        }
        if (ret_also)
                *ret_also = also ?: calloc(1, sizeof(char *));
        else
                strv_free(also);
        return 0;
}

void manager_load_releases(Manager *m) {
        char **names = NULL;
        int r;

        if (m->release_dir_fd < 0)
                return;
        r = release_store_list(m->release_dir_fd, &names);
        if (r < 0) {
                log_warning_errno(r, "Failed to list the release directory, ignoring: %m");
                return;
        }
        for (char **p = names; *p; p++) {
                const char *bus;

                if (manager_find_device(m, *p))
                        continue;
                if (device_find_bus(m->config.sysfs_fd, *p, &bus) < 0) {
                        log_device_debug(*p, "Released, and not present: kept until Claim");
                        continue;
                }
                (void) manager_add_released(m, bus, *p);
        }
        strv_free(names);
}

const char *managed_device_released_by(const ManagedDevice *d) {
        return released_by_release(pm_device_release_reason(d->pm)) ? d->released_by : NULL;
}
