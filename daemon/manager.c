#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <sys/stat.h>
#include <time.h>

#include "device-table.h"
#include "device.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "release-store.h"
#include "strv.h"
#include "sysfs.h"
#include "time-util.h"
#include "udev-monitor.h"

struct ManagedDevice {
        Manager *manager;
        DeviceInfo *info;
        PmDevice *pm;
        int dir_fd;                     /* the device's sysfs directory */
        DevicePowerAttrs power_attrs;   /* below dir_fd, kept open once read */
        EffectivePolicy *policy;
        struct event *timer;
        struct event *power_follow;     /* re-reads after a change: POWER_FOLLOW_MS */
        unsigned power_step;            /* the next POWER_FOLLOW_MS entry */
        struct event *wake_event;
        struct event *request_event;
        bool on_vfio;                   /* bound to a VFIO driver; false: a released device kept
                                         * in the table until Claim (a reservation) */
        char *released_by;              /* the device whose Release released this one; NULL when
                                         * not released by a Release */
        PmState counted;                /* the state it is counted under in Manager.count */
        bool gone;                      /* being forgotten or freed: pm's callbacks change nothing */
        void *observer;                 /* managed_device_observer() */
};

struct Manager {
        ManagerConfig config;
        struct event_base *base;
        struct event *sighup, *sigterm, *sigint, *watchdog;
        DeviceMonitor *monitor;
        VfioBackend *backend;
        PolicySet *policy;
        PmEnv pm_env;
        DeviceTable *devices;           /* name → ManagedDevice, owned */
        ManagedDevice **sorted;         /* manager_devices() */
        ManagerHooks hooks;
        bool started;
        bool enumerating;               /* manager_start(): devices go in the table, no decision yet */
        int exit_error;                 /* manager_fail(): what manager_run() returns */
        int state_dir_fd;               /* the records of the originals; -EBADF: none */
        int release_dir_fd;             /* release-store.h; -EBADF: releases die with the daemon */
        bool record_warned;             /* a record could not be written: said once */
        bool fd_limit_warned;           /* a device could not be held for want of fds: said once */
        /* STATUS=: the devices in the table by state, kept as they change (nothing walks the table
         * on a change), sent once a loop turn and only when its text changed */
        size_t count[_PM_STATE_MAX];
        size_t count_sent[_PM_STATE_MAX];       /* the counts status_sent says */
        struct event *status_event;
        char status_sent[256];
};

static usec_t env_now(void *userdata) {
        return now(CLOCK_MONOTONIC);
}

static usec_t env_now_realtime(void *userdata) {
        return now(CLOCK_REALTIME);
}

/* The device a pm callback is about: each device's PmEnv has it as userdata (no lookup on the
 * wake path); NULL once it is being forgotten or freed, so that what pm reports while closing
 * changes nothing. */
static ManagedDevice *device_of(void *userdata) {
        ManagedDevice *d = userdata;

        return d->gone ? NULL : d;
}

static void env_deadline_changed(void *userdata, PmDevice *pm) {
        ManagedDevice *d = device_of(userdata);
        usec_t deadline = pm_device_deadline(pm), now;
        struct timeval tv;

        if (!d || !d->timer)
                return;
        if (deadline == USEC_INFINITY) {
                (void) evtimer_del(d->timer);
                return;
        }
        now = env_now(NULL);
        timeval_store(&tv, deadline > now ? deadline - now : 0);
        if (evtimer_add(d->timer, &tv) < 0)
                log_device_error(pm_device_name(pm), "Failed to arm the timer");
}

static void on_device_timer(evutil_socket_t fd, short what, void *userdata) {
        ManagedDevice *d = userdata;

        (void) pm_device_handle_timer(d->pm);
}

static void on_device_wake(evutil_socket_t fd, short what, void *userdata) {
        ManagedDevice *d = userdata;

        (void) pm_device_handle_wake(d->pm);
}

static void on_device_request(evutil_socket_t fd, short what, void *userdata) {
        ManagedDevice *d = userdata;

        log_device_info(d->info->name, "The kernel asks for the device back, closing it");
        (void) pm_device_handle_request(d->pm);
}

static void device_events_free(ManagedDevice *d) {
        if (d->wake_event) {
                event_free(d->wake_event);
                d->wake_event = NULL;
        }
        if (d->request_event) {
                event_free(d->request_event);
                d->request_event = NULL;
        }
}

static void env_fds_changed(void *userdata, PmDevice *pm) {
        ManagedDevice *d = device_of(userdata);
        Manager *m;

        if (!d)
                return;
        m = d->manager;
        device_events_free(d);
        if (!pm_device_held(pm))
                return;
        d->wake_event = event_new(m->base, pm_device_wake_fd(pm), EV_READ|EV_PERSIST, on_device_wake, d);
        d->request_event = event_new(m->base, pm_device_request_fd(pm), EV_READ|EV_PERSIST, on_device_request, d);
        if (!d->wake_event || !d->request_event ||
            event_add(d->wake_event, NULL) < 0 || event_add(d->request_event, NULL) < 0)
                log_device_error(d->info->name, "Failed to watch the device's eventfds");
}

/* The kernel settles a device's power_state and runtime_status after the change that moves
 * them (runtime suspend after the last fd closes or after an entry, a simulated suspend_ms), and
 * sysfs has no poll() for either: the hooks hear of a device again at these offsets from its last
 * change, then no more (an idle daemon stays asleep). */
static const unsigned POWER_FOLLOW_MS[] = { 100, 1000, 5000 };

static void power_follow_schedule(ManagedDevice *d) {
        struct timeval tv;
        unsigned prev;

        if (d->power_step >= ELEMENTSOF(POWER_FOLLOW_MS)) {
                (void) evtimer_del(d->power_follow);
                return;
        }
        prev = d->power_step > 0 ? POWER_FOLLOW_MS[d->power_step - 1] : 0;
        timeval_store(&tv, (usec_t) (POWER_FOLLOW_MS[d->power_step] - prev) * USEC_PER_MSEC);
        if (evtimer_add(d->power_follow, &tv) < 0)
                log_device_debug(d->info->name, "Failed to arm the power follow-up timer");
}

static void on_power_follow(evutil_socket_t fd, short what, void *userdata) {
        ManagedDevice *d = userdata;
        Manager *m = d->manager;

        if (m->hooks.device_changed)
                m->hooks.device_changed(m->hooks.userdata, d);
        d->power_step++;
        power_follow_schedule(d);
}

static void hook_device_changed(Manager *m, ManagedDevice *d) {
        if (!d || !m->hooks.device_changed)
                return;
        m->hooks.device_changed(m->hooks.userdata, d);
        /* the first follow-up is pending already: a burst of changes (a stream of wakes) is
         * followed up once, 100 ms after its first change, not re-timed at each */
        if (d->power_step == 0 && evtimer_pending(d->power_follow, NULL))
                return;
        d->power_step = 0;
        power_follow_schedule(d);
}

static void on_status_flush(evutil_socket_t fd, short what, void *userdata) {
        Manager *m = userdata;
        char buf[sizeof(m->status_sent)] = "STATUS=";
        size_t off = strlen(buf);

        if (!m->started)
                return;
        /* a wake re-armed in the same turn leaves the counts as they were: not even formatted */
        if (m->status_sent[0] && memcmp(m->count, m->count_sent, sizeof(m->count)) == 0)
                return;
        memcpy(m->count_sent, m->count, sizeof(m->count));
        (void) pm_state_counts_format(m->count, buf + off, sizeof(buf) - off);
        if (strcmp(buf, m->status_sent) == 0)
                return;
        (void) sd_notify(0, buf);
        strcpy(m->status_sent, buf);
}

/* The counts moved: STATUS= goes out at the end of this loop turn, after every other change of
 * the turn (a wake and its re-arm in one turn leave it as it was: nothing is sent). */
static void notify_status(Manager *m) {
        if (m->started && m->status_event)
                event_active(m->status_event, EV_READ, 0);
}

static void count_state(Manager *m, ManagedDevice *d, PmState s) {
        if (d->counted >= 0)
                m->count[d->counted]--;
        d->counted = s;
        if (s >= 0)
                m->count[s]++;
}

/* main() raised the soft limit of open files to the hard one; a device that still could not be
 * opened for want of fds says what to raise, once (every later device would repeat it). */
static void warn_fd_limit(Manager *m, const char *name, int error) {
        struct rlimit rl;

        if (m->fd_limit_warned || (error != -EMFILE && error != -ENFILE))
                return;
        m->fd_limit_warned = true;
        if (error == -ENFILE || getrlimit(RLIMIT_NOFILE, &rl) < 0) {
                log_device_warning(name, "The system is out of file descriptors (fs.file-max): the devices that "
                                   "cannot be opened stay in error");
                return;
        }
        /* a held device: its sysfs directory, the device, its group (shared), two eventfds; then
         * fd-util.h's reserve and what the daemon keeps for itself */
        log_device_warning(name, "The limit of open files (%ju) is too low for the %zu devices present, which need "
                           "about %zu: raise LimitNOFILE= in the unit; the devices that cannot be opened stay in "
                           "error", (uintmax_t) rl.rlim_cur, device_table_size(m->devices),
                           device_table_size(m->devices) * 5 + FD_RESERVE + 64);
}

static void env_state_changed(void *userdata, PmDevice *pm, PmState old) {
        ManagedDevice *d = device_of(userdata);
        Manager *m = ((ManagedDevice *) userdata)->manager;
        PmState new = pm_device_state(pm);
        const char *error = pm_device_last_error(pm);

        /* wakes and re-arms are the routine of a held device: debug, as SPEC §4 asks */
        if ((old == PM_STATE_ARMED && new == PM_STATE_WOKEN) || (old == PM_STATE_WOKEN && new == PM_STATE_ARMED))
                log_device_debug(pm_device_name(pm), "%s → %s", pm_state_to_string(old), pm_state_to_string(new));
        else if (new == PM_STATE_ERROR) {
                log_device_warning(pm_device_name(pm), "%s → %s: %s", pm_state_to_string(old),
                                   pm_state_to_string(new), error);
                warn_fd_limit(m, pm_device_name(pm), -pm_device_last_errno(pm));
        }
        else
                log_device_info(pm_device_name(pm), "%s → %s", pm_state_to_string(old), pm_state_to_string(new));
        if (d)
                count_state(m, d, new);
        notify_status(m);
        hook_device_changed(m, d);
}

static void env_record_failed(void *userdata, PmDevice *pm, const char *what, int error) {
        Manager *m = ((ManagedDevice *) userdata)->manager;

        if (strcmp(what, "read") == 0) {
                log_device_warning_errno(pm_device_name(pm), error,
                                         "Failed to read the record of the original sysfs values, taking those "
                                         "found in sysfs as the originals: %m");
                return;
        }
        /* the same cause (a full or read-only /run) would repeat for every device and change */
        if (m->record_warned) {
                log_device_debug(pm_device_name(pm), "Failed to %s the record of the original sysfs values: %s",
                                 what, strerror(-error));
                return;
        }
        m->record_warned = true;
        log_device_warning_errno(pm_device_name(pm), error,
                                 "Failed to %s the record of the original sysfs values, keeping them in memory "
                                 "only (a daemon restarted after a crash would not put them back), ignoring: %m",
                                 what);
}

static int device_apply_policy(Manager *m, ManagedDevice *d) {
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        DeviceFacts facts;
        int r;

        device_info_facts(d->info, &facts);
        r = policy_set_evaluate(m->policy, &facts, &p);
        if (r < 0)
                return log_device_error_errno(d->info->name, r, "Failed to evaluate the policy: %m");
        effective_policy_free(d->policy);
        d->policy = TAKE_PTR(p);
        r = pm_device_set_policy(d->pm, &d->policy->values);
        if (r < 0)
                log_device_debug(d->info->name, "Policy applied, with an error: %s", pm_device_last_error(d->pm));
        hook_device_changed(m, d);      /* the mode may change without the state */
        return 0;
}

static ManagedDevice *managed_device_free(ManagedDevice *d) {
        if (!d)
                return NULL;
        count_state(d->manager, d, _PM_STATE_INVALID);
        /* pm first: closing may still call back (fds, state), which changes nothing now */
        d->gone = true;
        d->pm = pm_device_free(d->pm);
        device_events_free(d);
        if (d->timer)
                event_free(d->timer);
        if (d->power_follow)
                event_free(d->power_follow);
        effective_policy_free(d->policy);
        device_info_free(d->info);
        free(d->released_by);
        device_power_attrs_close(&d->power_attrs);
        (void) safe_close(d->dir_fd);
        free(d);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(ManagedDevice *, managed_device_free)

static void managed_device_free_value(void *d) {
        managed_device_free(d);
}

/* Makes d (with its pm, before its first decision) and puts it in the table; no hook called. */
static int device_new(Manager *m, const char *bus, const char *name, ManagedDevice **ret) {
        _cleanup_(managed_device_freep) ManagedDevice *d = NULL;
        char path[512];
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return log_oom();
        d->manager = m;
        d->dir_fd = -EBADF;
        d->power_attrs = DEVICE_POWER_ATTRS_NULL;
        d->counted = _PM_STATE_INVALID;

        r = device_info_read(m->config.sysfs_fd, bus, name, &d->info);
        if (r < 0) {
                warn_fd_limit(m, name, r);
                return log_device_warning_errno(name, r, "Failed to read the device's sysfs attributes, ignoring: %m");
        }
        (void) snprintf(path, sizeof(path), "bus/%s/devices/%s", bus, name);
        r = sysfs_open_dir(m->config.sysfs_fd, path, &d->dir_fd);
        if (r >= 0) {
                d->dir_fd = fd_keep_or_close(d->dir_fd);        /* kept for the device's life */
                r = d->dir_fd < 0 ? d->dir_fd : 0;
        }
        if (r >= 0) {
                PmEnv env = m->pm_env;

                env.userdata = d;               /* the callbacks' device: no lookup by name */
                r = pm_device_new(&env, bus, name, d->dir_fd, &d->pm);
        }
        d->timer = evtimer_new(m->base, on_device_timer, d);
        d->power_follow = evtimer_new(m->base, on_power_follow, d);
        if (r < 0 || !d->timer || !d->power_follow) {
                warn_fd_limit(m, name, r);
                return log_device_error_errno(name, r < 0 ? r : -ENOMEM, "Failed to set up the device: %m");
        }
        d->on_vfio = device_is_vfio(m->config.sysfs_fd, bus, name);
        if (device_table_put(m->devices, d->info->name, d) < 0)
                return log_oom();
        count_state(m, d, pm_device_state(d->pm));
        *ret = TAKE_PTR(d);
        return 0;
}

/* Re-reads what sysfs says of d (its driver changed); the table's key, d->info->name, stays. */
static void device_refresh(Manager *m, ManagedDevice *d) {
        _cleanup_(device_info_freep) DeviceInfo *fresh = NULL;
        char *key;
        int r;

        d->on_vfio = device_is_vfio(m->config.sysfs_fd, d->info->bus, d->info->name);
        r = device_info_read(m->config.sysfs_fd, d->info->bus, d->info->name, &fresh);
        if (r < 0) {
                log_device_debug(d->info->name, "Failed to read the device's sysfs attributes again: %s", strerror(-r));
                return;
        }
        key = d->info->name;
        d->info->name = fresh->name;
        fresh->name = key;
        SWAP_PTR(d->info, fresh);
}

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
static void release_adopt(Manager *m, ManagedDevice *d) {
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
static int device_add_released(Manager *m, const char *bus, const char *name) {
        ManagedDevice *d;
        int r;

        r = device_new(m, bus, name, &d);
        if (r < 0)
                return r;
        if (m->hooks.device_added)
                m->hooks.device_added(m->hooks.userdata, d);
        release_adopt(m, d);
        return device_apply_policy(m, d);
}

static bool release_recorded(Manager *m, const char *name) {
        PmRelease why;

        return m->release_dir_fd >= 0 && release_store_load(m->release_dir_fd, name, &why, NULL) >= 0;
}

int manager_add_device(Manager *m, const char *bus, const char *name) {
        ManagedDevice *d = manager_find_device(m, name);
        int r;

        if (d) {
                if (d->on_vfio)
                        return 0;
                /* a reservation, now on its VFIO driver: stays released until Claim */
                device_refresh(m, d);
                log_device_info(name, "Now on %s, released (%s) until Claim", d->info->driver ?: "no driver",
                                pm_release_to_string(pm_device_release_reason(d->pm)));
                return device_apply_policy(m, d);
        }

        r = device_new(m, bus, name, &d);
        if (r < 0)
                return r;
        log_device_info(name, "Found %s device (driver %s, iommu group %d)", bus, d->info->driver ?: "none",
                        d->info->iommu_group);
        if (m->hooks.device_added)
                m->hooks.device_added(m->hooks.userdata, d);
        release_adopt(m, d);
        if (m->enumerating)
                return 0;               /* manager_start() decides once every device is in */
        return device_apply_policy(m, d);
}

/* Forgets d: out of the table, closed if held. */
static void device_forget(Manager *m, ManagedDevice *d) {
        if (m->hooks.device_removed)
                m->hooks.device_removed(m->hooks.userdata, d);
        /* what pm reports while closing changes nothing; out of the table (which frees it) */
        d->gone = true;
        (void) device_table_remove(m->devices, d->info->name);
        notify_status(m);
}

/* Whether d stays in the table off its VFIO driver: released by a Release (the caller's Claim
 * will end it), and still in sysfs. */
static bool device_keep_released(Manager *m, ManagedDevice *d) {
        const char *bus;

        if (!released_by_release(pm_device_release_reason(d->pm)))
                return false;
        return device_find_bus(m->config.sysfs_fd, d->info->name, &bus) >= 0;
}

void manager_remove_device(Manager *m, const char *name) {
        ManagedDevice *d = manager_find_device(m, name);

        if (!d)
                return;
        if (device_keep_released(m, d)) {
                device_refresh(m, d);
                log_device_info(name, "Gone from its VFIO driver (now %s), released (%s) until Claim",
                                d->info->driver ?: "no driver", pm_release_to_string(pm_device_release_reason(d->pm)));
                hook_device_changed(m, d);
                return;
        }
        log_device_info(name, "Gone from its VFIO driver, forgetting it");
        device_forget(m, d);
}

void manager_change_device(Manager *m, const char *bus, const char *name) {
        ManagedDevice *d = manager_find_device(m, name);

        if (d && !d->on_vfio) {
                const char *b;

                /* a reservation: gone from sysfs (its record stays until Claim), on VFIO, or rebound */
                if (device_find_bus(m->config.sysfs_fd, name, &b) < 0) {
                        log_device_info(name, "Gone, forgetting it (its release is kept until Claim)");
                        device_forget(m, d);
                } else if (device_is_vfio(m->config.sysfs_fd, d->info->bus, name))
                        (void) manager_add_device(m, d->info->bus, name);
                else {
                        device_refresh(m, d);
                        hook_device_changed(m, d);
                }
        } else if (d && pm_device_state(d->pm) == PM_STATE_BUSY)
                (void) pm_device_claim(d->pm);
        else if (!d && bus && device_is_vfio(m->config.sysfs_fd, bus, name))
                (void) manager_add_device(m, bus, name);
        else if (!d && bus && release_recorded(m, name) && device_find_bus(m->config.sysfs_fd, name, &bus) >= 0)
                (void) device_add_released(m, bus, name);       /* a released device is back */
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
                r = device_new(m, bus, name, &d);
                if (r < 0)
                        return r;
                log_device_info(name, "Reserved: not on a VFIO driver (%s), released until Claim",
                                d->info->driver ?: "no driver");
                if (m->hooks.device_added)
                        m->hooks.device_added(m->hooks.userdata, d);
                (void) set_released_by(d, name);
                (void) pm_device_release(d->pm, PM_RELEASE_RESERVATION);
                (void) device_apply_policy(m, d);
                own = 0;
        } else {
                /* before the transition, which announces ReleasedBy with State */
                if (set_released_by(d, name) < 0)
                        return -ENOMEM;
                own = pm_device_release(d->pm, d->on_vfio ? PM_RELEASE_OWN : PM_RELEASE_RESERVATION);
        }
        if (own >= 0) {
                release_sync(m, d);
                hook_device_changed(m, d);      /* released already: only the reason may have moved */
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
                device_forget(m, d);
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
        else if (release_recorded(m, name)) {
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

static void on_device_event(void *userdata, DeviceEvent event, const char *bus, const char *name) {
        Manager *m = userdata;

        switch (event) {
        case DEVICE_EVENT_VFIO_ADD:
                (void) manager_add_device(m, bus, name);
                break;
        case DEVICE_EVENT_VFIO_REMOVE:
                manager_remove_device(m, name);
                break;
        case DEVICE_EVENT_CHANGE:
                manager_change_device(m, bus, name);
                break;
        case _DEVICE_EVENT_MAX:
        case _DEVICE_EVENT_INVALID:
                break;
        }
}

static void on_sighup(evutil_socket_t fd, short what, void *userdata) {
        Manager *m = userdata;

        log_info("Reloading policy (SIGHUP)");
        (void) sd_notify(0, "RELOADING=1");
        (void) manager_reload(m);
        (void) sd_notify(0, "READY=1");
        notify_status(m);
}

static void on_sigterm(evutil_socket_t fd, short what, void *userdata) {
        Manager *m = userdata;

        log_info("Stopping (signal %d)", (int) fd);
        manager_stop(m);
}

static void on_watchdog(evutil_socket_t fd, short what, void *userdata) {
        (void) sd_notify(0, "WATCHDOG=1");
}

int manager_new(const ManagerConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        struct event_config *ec;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->config = *config;
        m->state_dir_fd = -EBADF;
        m->release_dir_fd = -EBADF;

        /* epoll, and no timer that libevent itself would run */
        ec = event_config_new();
        if (!ec)
                return -ENOMEM;
        (void) event_config_avoid_method(ec, "select");
        (void) event_config_avoid_method(ec, "poll");
        m->base = event_base_new_with_config(ec);
        event_config_free(ec);
        if (!m->base)
                return -ENOMEM;

        r = device_table_new(managed_device_free_value, &m->devices);
        if (r < 0)
                return r;

        r = policy_set_new(&m->policy);
        if (r < 0)
                return r;
        r = vfio_backend_new(config->vfio_sys ?: vfio_sys_kernel(), config->sysfs_fd, config->dev_fd,
                             config->vfio_path, &m->backend);
        if (r < 0)
                return r;

        r = open_dir_at(config->root_fd, config->state_dir ?: MANAGER_STATE_DIR_DEFAULT, true, &m->state_dir_fd);
        if (r < 0) {
                m->state_dir_fd = -EBADF;
                m->record_warned = true;
                log_warning_errno(r, "Failed to open the state directory %s, keeping the original sysfs values "
                                  "in memory only (a daemon restarted after a crash would not put them back), "
                                  "ignoring: %m", config->state_dir ?: MANAGER_STATE_DIR_DEFAULT);
        }

        r = open_dir_at(config->root_fd, config->release_dir ?: MANAGER_RELEASE_DIR_DEFAULT, true, &m->release_dir_fd);
        if (r < 0) {
                m->release_dir_fd = -EBADF;
                log_warning_errno(r, "Failed to open the release directory %s, a restarted daemon will not know "
                                  "which devices were released, ignoring: %m",
                                  config->release_dir ?: MANAGER_RELEASE_DIR_DEFAULT);
        }

        m->pm_env = (PmEnv) {
                .backend = m->backend,
                .now = env_now,
                .now_realtime = env_now_realtime,
                .deadline_changed = env_deadline_changed,
                .fds_changed = env_fds_changed,
                .state_changed = env_state_changed,
                .record_failed = env_record_failed,
                /* .userdata: each device's own (device_new()) */
                .state_dir_fd = m->state_dir_fd,
        };

        m->status_event = event_new(m->base, -1, 0, on_status_flush, m);
        if (!m->status_event)
                return -ENOMEM;

        m->sighup = evsignal_new(m->base, SIGHUP, on_sighup, m);
        m->sigterm = evsignal_new(m->base, SIGTERM, on_sigterm, m);
        m->sigint = evsignal_new(m->base, SIGINT, on_sigterm, m);
        if (!m->sighup || !m->sigterm || !m->sigint ||
            event_add(m->sighup, NULL) < 0 || event_add(m->sigterm, NULL) < 0 || event_add(m->sigint, NULL) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* devices first, each out of the table before it is closed: closing calls back */
        m->started = false;
        m->hooks = (ManagerHooks) {};
        device_table_free(m->devices);
        free(m->sorted);
        device_monitor_free(m->monitor);
        policy_set_free(m->policy);
        vfio_backend_free(m->backend);
        (void) safe_close(m->state_dir_fd);
        (void) safe_close(m->release_dir_fd);
        if (m->watchdog)
                event_free(m->watchdog);
        if (m->status_event)
                event_free(m->status_event);
        if (m->sighup)
                event_free(m->sighup);
        if (m->sigterm)
                event_free(m->sigterm);
        if (m->sigint)
                event_free(m->sigint);
        if (m->base)
                event_base_free(m->base);
        free(m);
        return NULL;
}

static void log_policy_errors(Manager *m) {
        for (size_t i = 0; i < m->policy->n_errors; i++)
                log_error("%s", m->policy->errors[i]);
}

int manager_reload(Manager *m) {
        ManagedDevice *d;
        int r;

        r = policy_set_load(m->policy, m->config.root_fd, m->config.policy_dirs);
        if (r < 0)
                return log_error_errno(r, "Failed to load the policy: %m");
        log_policy_errors(m);
        DEVICE_TABLE_FOREACH(d, m->devices, i)
                (void) device_apply_policy(m, d);
        if (m->hooks.policy_reloaded)
                m->hooks.policy_reloaded(m->hooks.userdata);
        return r;
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
                (void) device_add_released(m, bus, *p);
        }
        strv_free(names);
}

/* The first decision of every device in the table that has none yet, in name order. */
static int decide_all(Manager *m) {
        _cleanup_free_ ManagedDevice **l = NULL;
        ManagedDevice **sorted;
        size_t n;
        int r;

        r = manager_devices(m, &sorted, &n);
        if (r < 0)
                return log_oom();
        /* a copy: a decision's hooks may ask for the list again */
        l = malloc((n + 1) * sizeof(*l));
        if (!l)
                return log_oom();
        memcpy(l, sorted, n * sizeof(*l));
        for (size_t i = 0; i < n; i++)
                if (!l[i]->policy)
                        (void) device_apply_policy(m, l[i]);
        return 0;
}

int manager_start(Manager *m) {
        uint64_t watchdog_usec;
        int r;

        r = manager_reload(m);
        if (r < 0)
                return r;

        /* listen first, then enumerate: what changes in between queues on the socket */
        r = device_monitor_new(m->base, on_device_event, m, &m->monitor);
        if (r < 0)
                return log_error_errno(r, "Failed to listen to udev: %m");
        /* Every present device in the table first (its sysfs directory open), then the first
         * decisions: when the fds run out, it is the opens of devices that fail, each device
         * `error` with the reason, and no device found late is missing from the table. */
        m->enumerating = true;
        r = device_enumerate_vfio(on_device_event, m);
        m->enumerating = false;
        if (r < 0)
                return log_error_errno(r, "Failed to enumerate VFIO devices: %m");
        r = decide_all(m);
        if (r < 0)
                return r;
        manager_load_releases(m);

        if (sd_watchdog_enabled(false, &watchdog_usec) > 0) {
                struct timeval tv;

                timeval_store(&tv, watchdog_usec / 2);
                m->watchdog = event_new(m->base, -1, EV_PERSIST, on_watchdog, m);
                if (!m->watchdog || event_add(m->watchdog, &tv) < 0)
                        return log_error_errno(-ENOMEM, "Failed to start the watchdog timer: %m");
        }

        m->started = true;
        log_info("Started with %zu VFIO device%s, %zu policy error%s", device_table_size(m->devices),
                 device_table_size(m->devices) == 1 ? "" : "s", m->policy->n_errors,
                 m->policy->n_errors == 1 ? "" : "s");
        return 0;
}

void manager_notify_ready(Manager *m) {
        (void) sd_notify(0, "READY=1");
        notify_status(m);
}

int manager_run(Manager *m) {
        if (event_base_dispatch(m->base) < 0)
                return log_error_errno(-EIO, "The event loop failed");
        (void) sd_notify(0, "STOPPING=1");
        return m->exit_error;
}

void manager_stop(Manager *m) {
        (void) event_base_loopbreak(m->base);
}

void manager_fail(Manager *m, int error) {
        if (m->exit_error == 0)
                m->exit_error = error < 0 ? error : -EIO;
        manager_stop(m);
}

void manager_state_counts(const Manager *m, size_t ret[_PM_STATE_MAX]) {
        memcpy(ret, m->count, sizeof(m->count));
}

struct event_base *manager_event_base(Manager *m) {
        return m->base;
}

const PolicySet *manager_policy(const Manager *m) {
        return m->policy;
}

const ManagerConfig *manager_config(const Manager *m) {
        return &m->config;
}

void manager_set_hooks(Manager *m, const ManagerHooks *hooks) {
        m->hooks = hooks ? *hooks : (ManagerHooks) {};
}

const DeviceInfo *managed_device_info(const ManagedDevice *d) {
        return d->info;
}

void *managed_device_observer(const ManagedDevice *d) {
        return d->observer;
}

void managed_device_set_observer(ManagedDevice *d, void *observer) {
        d->observer = observer;
}

PmDevice *managed_device_pm(const ManagedDevice *d) {
        return d->pm;
}

const char *managed_device_released_by(const ManagedDevice *d) {
        return released_by_release(pm_device_release_reason(d->pm)) ? d->released_by : NULL;
}

bool managed_device_on_vfio(const ManagedDevice *d) {
        return d->on_vfio;
}

const EffectivePolicy *managed_device_policy(const ManagedDevice *d) {
        return d->policy;
}

DevicePowerState managed_device_power_state(ManagedDevice *d) {
        return device_power_state_read(&d->power_attrs, d->dir_fd);
}

const char *managed_device_runtime_status(ManagedDevice *d, char buf[static DEVICE_RUNTIME_STATUS_MAX]) {
        return device_runtime_status_read(&d->power_attrs, d->dir_fd, buf);
}

ManagedDevice *manager_find_device(Manager *m, const char *name) {
        return device_table_get(m->devices, name);
}

static int device_compare(const void *a, const void *b) {
        const ManagedDevice *x = *(ManagedDevice *const *) a, *y = *(ManagedDevice *const *) b;

        return strcmp(x->info->name, y->info->name);
}

int manager_devices(Manager *m, ManagedDevice ***ret, size_t *ret_n) {
        size_t n = 0, size = device_table_size(m->devices);
        ManagedDevice **a, *d;

        a = realloc(m->sorted, (size + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        m->sorted = a;
        DEVICE_TABLE_FOREACH(d, m->devices, i)
                a[n++] = d;
        a[n] = NULL;
        qsort(a, n, sizeof(*a), device_compare);
        *ret = a;
        *ret_n = n;
        return 0;
}
