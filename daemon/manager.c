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
#include "manager-internal.h"
#include "release-store.h"
#include "strv.h"
#include "sysfs.h"
#include "time-util.h"
#include "udev-monitor.h"

_hot_ static usec_t env_now(void *userdata) {
        return now(CLOCK_MONOTONIC);
}

_hot_ static usec_t env_now_realtime(void *userdata) {
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

_hot_ static void on_device_wake(evutil_socket_t fd, short what, void *userdata) {
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

/* The power follow-up of a change: when the first is pending already, a burst of changes (a
 * stream of wakes) is followed up once, 100 ms after its first change, not re-timed at each. */
_hot_ static void power_follow_change(ManagedDevice *d) {
        if (d->power_step == 0 && evtimer_pending(d->power_follow, NULL))
                return;
        d->power_step = 0;
        power_follow_schedule(d);
}

void manager_hook_device_changed(Manager *m, ManagedDevice *d) {
        if (!d || !m->hooks.device_changed)
                return;
        m->hooks.device_changed(m->hooks.userdata, d);
        power_follow_change(d);
}

/* Only the counters moved (a wake re-armed at once): the hook for that, else the one for any
 * change. */
_hot_ static void hook_device_counted(Manager *m, ManagedDevice *d) {
        if (!m->hooks.device_counted) {
                manager_hook_device_changed(m, d);
                return;
        }
        m->hooks.device_counted(m->hooks.userdata, d);
        power_follow_change(d);
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
        if (d) {
                count_state(m, d, new);
                manager_held_sync(m, d);
        }
        notify_status(m);
        manager_hook_device_changed(m, d);
}

/* The path of a stream of wakes: no state count or STATUS= moves, only the counters. */
_hot_ static void env_wake_rearmed(void *userdata, PmDevice *pm) {
        ManagedDevice *d = device_of(userdata);

        /* wakes at debug (SPEC §4): the two changes the state went through */
        log_device_debug(pm_device_name(pm), "%s → %s", pm_state_to_string(PM_STATE_ARMED),
                         pm_state_to_string(PM_STATE_WOKEN));
        log_device_debug(pm_device_name(pm), "%s → %s", pm_state_to_string(PM_STATE_WOKEN),
                         pm_state_to_string(PM_STATE_ARMED));
        if (!d)
                return;
        manager_held_sync(d->manager, d);
        hook_device_counted(d->manager, d);
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

/* A reading of the kernel's residency into d's meter; none when it cannot be read (the meter
 * then starts, or goes on, at the next one that can). */
static void energy_update(ManagedDevice *d) {
        uint64_t msec;

        if (pm_device_kernel_suspended_msec(d->pm, &msec) >= 0)
                energy_meter_update(&d->energy, msec);
}

int managed_device_apply_policy(Manager *m, ManagedDevice *d) {
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        DeviceFacts facts;
        int r;

        device_info_facts(d->info, &facts);
        r = policy_set_evaluate(m->policy, &facts, &p);
        if (r < 0)
                return log_device_error_errno(d->info->name, r, "Failed to evaluate the policy: %m");
        effective_policy_free(d->policy);
        d->policy = TAKE_PTR(p);
        energy_update(d);               /* what passed so far at the watts before */
        energy_meter_set_watts(&d->energy, energy_saved_watts(&d->policy->values));
        r = pm_device_set_policy(d->pm, &d->policy->values);
        if (r < 0)
                log_device_debug(d->info->name, "Policy applied, with an error: %s", pm_device_last_error(d->pm));
        manager_hook_device_changed(m, d);      /* the mode may change without the state */
        return 0;
}

static ManagedDevice *managed_device_free(ManagedDevice *d) {
        if (!d)
                return NULL;
        count_state(d->manager, d, _PM_STATE_INVALID);
        /* pm first: closing may still call back (fds, state), which changes nothing now; a daemon
         * leaving for a restart leaves it as it is, in the service manager's store */
        d->gone = true;
        d->pm = d->manager->leaving ? pm_device_leave(d->pm) : pm_device_free(d->pm);
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
int managed_device_new(Manager *m, const char *bus, const char *name, ManagedDevice **ret) {
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
        d->energy = ENERGY_METER_INIT;

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
        energy_update(d);               /* the baseline: energy counts from first sight */
        manager_held_restore(m, d);
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
                return managed_device_apply_policy(m, d);
        }

        r = managed_device_new(m, bus, name, &d);
        if (r < 0)
                return r;
        log_device_info(name, "Found %s device (driver %s, iommu group %d)", bus, d->info->driver ?: "none",
                        d->info->iommu_group);
        if (m->hooks.device_added)
                m->hooks.device_added(m->hooks.userdata, d);
        manager_release_adopt(m, d);
        if (m->enumerating)
                return 0;               /* manager_start() decides once every device is in */
        return managed_device_apply_policy(m, d);
}

/* Forgets d: out of the table, closed if held. */
void manager_forget_device(Manager *m, ManagedDevice *d) {
        if (m->hooks.device_removed)
                m->hooks.device_removed(m->hooks.userdata, d);
        /* what pm reports while closing changes nothing; out of the table (which frees it) */
        d->gone = true;
        (void) device_table_remove(m->devices, d->info->name);
        notify_status(m);
}

void manager_remove_device(Manager *m, const char *name) {
        ManagedDevice *d = manager_find_device(m, name);

        if (!d)
                return;
        if (manager_keep_released(m, d)) {
                device_refresh(m, d);
                log_device_info(name, "Gone from its VFIO driver (now %s), released (%s) until Claim",
                                d->info->driver ?: "no driver", pm_release_to_string(pm_device_release_reason(d->pm)));
                manager_hook_device_changed(m, d);
                return;
        }
        log_device_info(name, "Gone from its VFIO driver, forgetting it");
        manager_forget_device(m, d);
}

void manager_change_device(Manager *m, const char *bus, const char *name) {
        ManagedDevice *d = manager_find_device(m, name);

        if (d && !d->on_vfio) {
                const char *b;

                /* a reservation: gone from sysfs (its record stays until Claim), on VFIO, or rebound */
                if (device_find_bus(m->config.sysfs_fd, name, &b) < 0) {
                        log_device_info(name, "Gone, forgetting it (its release is kept until Claim)");
                        manager_forget_device(m, d);
                } else if (device_is_vfio(m->config.sysfs_fd, d->info->bus, name))
                        (void) manager_add_device(m, d->info->bus, name);
                else {
                        device_refresh(m, d);
                        manager_hook_device_changed(m, d);
                }
        } else if (d && pm_device_state(d->pm) == PM_STATE_BUSY)
                (void) pm_device_claim(d->pm);
        else if (!d && bus && device_is_vfio(m->config.sysfs_fd, bus, name))
                (void) manager_add_device(m, bus, name);
        else if (!d && bus && manager_release_recorded(m, name) && device_find_bus(m->config.sysfs_fd, name, &bus) >= 0)
                (void) manager_add_released(m, bus, name);       /* a released device is back */
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

        m->leaving = m->keep_held && fd == SIGTERM && m->hooks.restart_pending &&
                     m->hooks.restart_pending(m->hooks.userdata);
        if (m->leaving)
                log_info("Stopping for a restart (signal %d): the held devices stay held in the service "
                         "manager's store", (int) fd);
        else
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
                .wake_rearmed = env_wake_rearmed,
                .record_failed = env_record_failed,
                .vfio_ops = manager_vfio_ops(),
                .vfio_userdata = m,
                /* .userdata: each device's own (managed_device_new()) */
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
        manager_held_free(m);
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
                (void) managed_device_apply_policy(m, d);
        if (m->hooks.policy_reloaded)
                m->hooks.policy_reloaded(m->hooks.userdata);
        return r;
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
                        (void) managed_device_apply_policy(m, l[i]);
        return 0;
}

int manager_start_watchdog(Manager *m) {
        uint64_t watchdog_usec;
        struct timeval tv;

        if (m->watchdog || sd_watchdog_enabled(false, &watchdog_usec) <= 0)
                return 0;
        timeval_store(&tv, watchdog_usec / 2);
        m->watchdog = event_new(m->base, -1, EV_PERSIST, on_watchdog, m);
        if (!m->watchdog || event_add(m->watchdog, &tv) < 0)
                return log_error_errno(-ENOMEM, "Failed to start the watchdog timer: %m");
        return 0;
}

int manager_start(Manager *m) {
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
        manager_held_begin(m);
        m->enumerating = true;
        r = device_enumerate_vfio(on_device_event, m);
        m->enumerating = false;
        if (r < 0)
                return log_error_errno(r, "Failed to enumerate VFIO devices: %m");
        r = decide_all(m);
        if (r < 0)
                return r;
        manager_load_releases(m);
        manager_held_end(m);

        r = manager_start_watchdog(m);
        if (r < 0)
                return r;

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
        /* the service manager starts the daemon again (Restart=on-failure) */
        m->leaving = m->keep_held;
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

void manager_set_keep_held(Manager *m, bool keep) {
        m->keep_held = keep;
        m->keep_held_known = true;
}

void manager_set_hooks(Manager *m, const ManagerHooks *hooks) {
        m->hooks = hooks ? *hooks : (ManagerHooks) {};
}

const DeviceInfo *managed_device_info(const ManagedDevice *d) {
        return d->info;
}

_hot_ void *managed_device_observer(const ManagedDevice *d) {
        return d->observer;
}

void managed_device_set_observer(ManagedDevice *d, void *observer) {
        d->observer = observer;
}

PmDevice *managed_device_pm(const ManagedDevice *d) {
        return d->pm;
}

bool managed_device_on_vfio(const ManagedDevice *d) {
        return d->on_vfio;
}

const EffectivePolicy *managed_device_policy(const ManagedDevice *d) {
        return d->policy;
}

void managed_device_energy(ManagedDevice *d, EnergyReading *ret) {
        uint64_t batch = d->manager->readers_batch;

        if (batch == 0 || d->energy_batch != batch) {       /* 0: no batches, always fresh */
                energy_update(d);
                d->energy_batch = batch;
        }
        energy_meter_read(&d->energy, ret);
}

void manager_readers_batch(Manager *m) {
        m->readers_batch++;
}

double manager_energy_saved_joules(Manager *m) {
        ManagedDevice *d;
        double sum = 0;

        DEVICE_TABLE_FOREACH(d, m->devices, i) {
                EnergyReading e;

                managed_device_energy(d, &e);
                sum += e.joules;
        }
        return sum;
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
