#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "pm.h"
#include "power-sysfs.h"

struct PmDevice {
        PmEnv env;
        const PmVfioOps *ops;
        void *ops_userdata;
        char *bus;
        char *name;

        PolicyValues policy;
        bool have_policy;               /* set_policy() was called */
        PmRelease release_reason;       /* not NONE exactly while released (until Claim): why */

        PmState state;
        usec_t deadline;
        usec_t phase_start;             /* idle, woken, flapping: when the wait began */
        usec_t backoff_usec;            /* error: the delay before this retry; 0: not in error */

        void *vfio;                     /* the handle while held */
        PmEntry in_force;

        char last_error[128];
        int last_errno;

        /* counters */
        uint64_t wakes;
        uint64_t arms;
        usec_t low_power_usec;          /* finished armed intervals */
        usec_t armed_since;             /* USEC_INFINITY: not armed */
        usec_t last_wake_realtime_usec;

        /* Flap guard: the times of the last wakes, at most flap_max_wakes of them. Filled in
         * order (flap_n < flap_max_wakes), then a ring whose oldest entry is at flap_head. A wake
         * is the (N + 1)-th inside the window when N earlier wakes are stored and the oldest of
         * them is less than flap_window_s old. Grown on demand, so that a large flap_max_wakes
         * costs memory only under a storm. */
        usec_t *flap_times;
        size_t flap_n, flap_head, flap_alloc;

        PowerSysfs power;               /* power/control, d3cold_allowed and their record */
};

static const char *const pm_state_table[_PM_STATE_MAX] = {
        [PM_STATE_KERNEL] = "kernel",
        [PM_STATE_ON] = "on",
        [PM_STATE_BUSY] = "busy",
        [PM_STATE_IDLE] = "idle",
        [PM_STATE_ARMED] = "armed",
        [PM_STATE_WOKEN] = "woken",
        [PM_STATE_FLAPPING] = "flapping",
        [PM_STATE_RELEASED] = "released",
        [PM_STATE_ERROR] = "error",
};

const char *pm_state_to_string(PmState s) {
        if (s < 0 || s >= _PM_STATE_MAX)
                return NULL;
        return pm_state_table[s];
}

char *pm_state_counts_format(const size_t count[_PM_STATE_MAX], char *buf, size_t size) {
        bool listed[_PM_STATE_MAX] = {};
        size_t n = 0, len;
        int w;

        if (size == 0)
                return buf;
        for (int s = 0; s < _PM_STATE_MAX; s++)
                n += count[s];
        w = snprintf(buf, size, "%zu device%s", n, n == 1 ? "" : "s");
        for (bool first = true;; first = false) {
                int best = -1;

                for (int s = 0; s < _PM_STATE_MAX; s++)
                        if (!listed[s] && count[s] > 0 && (best < 0 || count[s] > count[best]))
                                best = s;
                len = w < 0 ? 0 : (size_t) w;
                if (best < 0 || len >= size)
                        break;
                listed[best] = true;
                w = (int) len + snprintf(buf + len, size - len, "%s %zu %s", first ? ":" : ",", count[best],
                                         pm_state_to_string(best));
        }
        return buf;
}

PmState pm_state_from_string(const char *s) {
        if (!s)
                return _PM_STATE_INVALID;
        for (PmState i = 0; i < _PM_STATE_MAX; i++)
                if (strcmp(pm_state_table[i], s) == 0)
                        return i;
        return _PM_STATE_INVALID;
}

static const char *const pm_release_table[_PM_RELEASE_MAX] = {
        [PM_RELEASE_NONE] = "",
        [PM_RELEASE_OWN] = "release",
        [PM_RELEASE_GROUP] = "group",
        [PM_RELEASE_REQUEST] = "request",
        [PM_RELEASE_RESERVATION] = "reservation",
};

const char *pm_release_to_string(PmRelease r) {
        if (r < 0 || r >= _PM_RELEASE_MAX)
                return NULL;
        return pm_release_table[r];
}

PmRelease pm_release_from_string(const char *s) {
        if (!s)
                return _PM_RELEASE_INVALID;
        for (PmRelease i = 0; i < _PM_RELEASE_MAX; i++)
                if (strcmp(pm_release_table[i], s) == 0)
                        return i;
        return _PM_RELEASE_INVALID;
}

/* ---- the default ops: vfio.h ------------------------------------------------------------ */

static int default_open(void *userdata, const char *bus, const char *name, void **ret_handle) {
        VfioDevice *v;
        int r;

        r = vfio_device_open(userdata, bus, name, &v);
        if (r < 0)
                return r;
        *ret_handle = v;
        return 0;
}

static void default_close(void *userdata, void *handle) {
        (void) vfio_device_close(handle);
}

_hot_ static int default_enter(void *userdata, void *handle, bool wakeup) {
        return vfio_device_enter(handle, wakeup);
}

static int default_exit(void *userdata, void *handle) {
        return vfio_device_exit(handle);
}

_hot_ static int default_read_wake(void *userdata, void *handle, uint64_t *ret_count) {
        return vfio_device_read_wake(handle, ret_count);
}

static int default_read_request(void *userdata, void *handle, uint64_t *ret_count) {
        return vfio_device_read_request(handle, ret_count);
}

static int default_wake_fd(void *userdata, void *handle) {
        return vfio_device_wake_fd(handle);
}

static int default_request_fd(void *userdata, void *handle) {
        return vfio_device_request_fd(handle);
}

static const PmVfioOps default_ops = {
        .open = default_open,
        .close = default_close,
        .enter = default_enter,
        .exit = default_exit,
        .read_wake = default_read_wake,
        .read_request = default_read_request,
        .wake_fd = default_wake_fd,
        .request_fd = default_request_fd,
};

const PmVfioOps *pm_vfio_ops_default(void) {
        return &default_ops;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static bool mode_holds(PolicyMode m) {
        return m == POLICY_MODE_AUTO || m == POLICY_MODE_WAKEUP;
}

_hot_ static usec_t now_mono(const PmDevice *d) {
        return d->env.now(d->env.userdata);
}

static usec_t add_ms(usec_t t, uint64_t ms) {
        /* policy limits keep ms small; saturate anyway rather than wrap */
        if (ms > (USEC_INFINITY - 1 - t) / USEC_PER_MSEC)
                return USEC_INFINITY - 1;
        return t + ms * USEC_PER_MSEC;
}

static void set_error(PmDevice *d, const char *what, int r) {
        d->last_errno = r < 0 ? -r : r;
        (void) snprintf(d->last_error, sizeof(d->last_error), "%s: %s", what, strerror(r < 0 ? -r : r));
}

static const char *entry_name(bool wakeup) {
        return wakeup ? "LOW_POWER_ENTRY_WITH_WAKEUP" : "LOW_POWER_ENTRY";
}

/* Leaving armed at now: the time armed goes into low_power_usec. */
static void armed_end(PmDevice *d, usec_t now) {
        if (d->armed_since != USEC_INFINITY && now > d->armed_since)
                d->low_power_usec += now - d->armed_since;
        d->armed_since = USEC_INFINITY;
}

/* Moves to state s with deadline; reports what changed, after both are set. */
static void transition(PmDevice *d, usec_t now, PmState s, usec_t deadline) {
        PmState old = d->state;
        bool deadline_changed = deadline != d->deadline;

        if (old == PM_STATE_ARMED && s != PM_STATE_ARMED)
                armed_end(d, now);
        if (s == PM_STATE_ARMED && old != PM_STATE_ARMED)
                d->armed_since = now;
        if (s != PM_STATE_ERROR)
                d->backoff_usec = 0;

        d->state = s;
        d->deadline = deadline;

        if (deadline_changed && d->env.deadline_changed)
                d->env.deadline_changed(d->env.userdata, d);
        if (old != s && d->env.state_changed)
                d->env.state_changed(d->env.userdata, d, old);
}

/* Error state: retried after 1 s, 2 s, 4 s, … at most 60 s. */
static int enter_error(PmDevice *d, usec_t now, const char *what, int r) {
        usec_t backoff;

        set_error(d, what, r);
        if (d->state != PM_STATE_ERROR || d->backoff_usec == 0)
                backoff = PM_BACKOFF_MIN_USEC;
        else if (d->backoff_usec >= PM_BACKOFF_MAX_USEC / 2)
                backoff = PM_BACKOFF_MAX_USEC;
        else
                backoff = d->backoff_usec * 2;
        transition(d, now, PM_STATE_ERROR, now + backoff);
        d->backoff_usec = backoff;
        return r;
}

/* ---- the held fd ------------------------------------------------------------------------ */

/* Returns > 0 for a device adopted with an entry in force (PmVfioOps.open), else 0. */
static int device_open(PmDevice *d) {
        void *h = NULL;
        int r;

        r = d->ops->open(d->ops_userdata, d->bus, d->name, &h);
        if (r < 0)
                return r;
        d->vfio = h;
        d->in_force = r == PM_ENTRY_PLAIN || r == PM_ENTRY_WAKEUP ? (PmEntry) r : PM_ENTRY_NONE;
        if (d->env.fds_changed)
                d->env.fds_changed(d->env.userdata, d);
        return d->in_force != PM_ENTRY_NONE;
}

/* The watcher drops the fds first, then they are closed. Closing ends any entry in force. */
static void device_close(PmDevice *d) {
        void *h = d->vfio;

        if (!h)
                return;
        d->vfio = NULL;
        d->in_force = PM_ENTRY_NONE;
        if (d->env.fds_changed)
                d->env.fds_changed(d->env.userdata, d);
        d->ops->close(d->ops_userdata, h);
}

/* Drains the wake-up eventfd without counting: after LOW_POWER_EXIT, which may signal it. */
static void drain_wake(PmDevice *d) {
        uint64_t n;

        (void) d->ops->read_wake(d->ops_userdata, d->vfio, &n);
}

/* Ends the entry in force with LOW_POWER_EXIT. On failure the device is closed (which ends any
 * entry) and the error returned: the caller goes to error, and the retry re-opens. */
static int device_disarm(PmDevice *d) {
        int r;

        r = d->ops->exit(d->ops_userdata, d->vfio);
        if (r < 0) {
                device_close(d);
                return r;
        }
        d->in_force = PM_ENTRY_NONE;
        drain_wake(d);
        return 0;
}

/* The entry of the policy's mode, from D0 with nothing in force; r: the result of that entry
 * when the caller made it already (the wake path's, pm_device_handle_wake()), 1 to make it here. */
static int device_arm_after(PmDevice *d, usec_t now, int r) {
        bool wakeup = d->policy.mode == POLICY_MODE_WAKEUP;

        if (r > 0)
                r = d->ops->enter(d->ops_userdata, d->vfio, wakeup);
        if (r == -EINVAL) {
                /* The kernel keeps an entry in force that the daemon believed consumed (a wake
                 * signal that was not this entry's, an entry right before that had not suspended
                 * yet): end it and enter once more. A second EINVAL is a real error. */
                r = device_disarm(d);
                if (r < 0)
                        return enter_error(d, now, "LOW_POWER_EXIT", r);
                r = d->ops->enter(d->ops_userdata, d->vfio, wakeup);
        }
        if (r < 0)
                return enter_error(d, now, entry_name(wakeup), r);

        d->in_force = wakeup ? PM_ENTRY_WAKEUP : PM_ENTRY_PLAIN;
        d->arms++;
        transition(d, now, PM_STATE_ARMED, USEC_INFINITY);
        return 0;
}

static int device_arm(PmDevice *d, usec_t now) {
        return device_arm_after(d, now, 1);
}

/* Waits in a D0 state (idle, woken, flapping) for delay_ms from start, or arms at once when
 * that has passed or the delay is 0 (passing through the state, with no timer). */
static int device_wait_or_arm(PmDevice *d, usec_t now, PmState s, usec_t start, uint64_t delay_ms) {
        usec_t deadline = add_ms(start, delay_ms);

        d->phase_start = start;
        if (deadline > now) {
                transition(d, now, s, deadline);
                return 0;
        }
        transition(d, now, s, USEC_INFINITY);
        return device_arm(d, now);
}

/* ---- the flap guard --------------------------------------------------------------------- */

static void flap_reset(PmDevice *d) {
        d->flap_n = d->flap_head = 0;
}

/* flap_max_wakes changed: the stored times no longer fit the ring. */
static void flap_forget(PmDevice *d) {
        free(d->flap_times);
        d->flap_times = NULL;
        d->flap_alloc = 0;
        flap_reset(d);
}

/* Records a wake at now; true when it is the (flap_max_wakes + 1)-th inside flap_window_s, i.e.
 * the N earlier wakes all lie in (now - window, now]. */
_hot_ static bool flap_record(PmDevice *d, usec_t now) {
        uint64_t max = d->policy.flap_max_wakes;
        usec_t window = d->policy.flap_window_s * USEC_PER_SEC;

        if (max == 0)
                return true;
        if (d->flap_n == max) {
                usec_t oldest = d->flap_times[d->flap_head];

                if (now - oldest < window) {
                        flap_reset(d);
                        return true;
                }
                d->flap_times[d->flap_head] = now;
                d->flap_head = (d->flap_head + 1) % max;
                return false;
        }
        if (d->flap_n == d->flap_alloc) {
                size_t n = d->flap_alloc == 0 ? 16 : d->flap_alloc * 2;
                usec_t *t;

                if (n > max)
                        n = (size_t) max;
                t = reallocarray(d->flap_times, n, sizeof(*t));
                if (!t) {
                        /* out of memory: start the window over rather than fail the wake */
                        flap_reset(d);
                        return false;
                }
                d->flap_times = t;
                d->flap_alloc = n;
        }
        d->flap_times[d->flap_n++] = now;
        return false;
}

/* ---- sysfs ------------------------------------------------------------------------------ */

static void power_record_failed(void *userdata, const char *what, int error) {
        PmDevice *d = userdata;

        if (d->env.record_failed)
                d->env.record_failed(d->env.userdata, d, what, error);
}

/* Applies the policy's d3cold. A write to d3cold_allowed resumes the device (PCI's store calls
 * pm_runtime_resume()), which would fire a wake-up entry: an armed device exits first, so that
 * the resume is not counted as a wake, and reconcile() enters again. Failures are kept as the
 * last error but change no state (holding the device does not depend on them), except a failed
 * exit, which is the device's error (*exit_failed). */
static int apply_d3cold(PmDevice *d, usec_t now, bool *exit_failed) {
        int r;

        *exit_failed = false;
        r = power_sysfs_d3cold_check(&d->power, d->policy.d3cold);
        if (r < 0) {
                set_error(d, POWER_SYSFS_D3COLD, r);
                return r;
        }
        if (r == 0)     /* at most forgets a value already restored */
                return power_sysfs_d3cold_write(&d->power, d->policy.d3cold);
        if (d->vfio && d->in_force != PM_ENTRY_NONE) {
                r = device_disarm(d);
                if (r < 0) {
                        *exit_failed = true;
                        return enter_error(d, now, "LOW_POWER_EXIT", r);
                }
        }
        r = power_sysfs_d3cold_write(&d->power, d->policy.d3cold);
        if (r < 0) {
                set_error(d, POWER_SYSFS_D3COLD, r);
                return r;
        }
        return 0;
}

/* ---- deciding --------------------------------------------------------------------------- */

/* The half of reconcile() for a device that is not held, or must be let go (released, modes
 * kernel and on): closed, then released, on, kernel, or opened for auto and wakeup. */
static int reconcile_held(PmDevice *d, usec_t now);

static int reconcile_unheld(PmDevice *d, usec_t now) {
        PolicyMode m = d->policy.mode;
        int r;

        device_close(d);
        if (d->release_reason != PM_RELEASE_NONE) {
                transition(d, now, PM_STATE_RELEASED, USEC_INFINITY);
                return 0;
        }

        if (m == POLICY_MODE_ON) {
                r = power_sysfs_control_on(&d->power);
                if (r < 0)
                        return enter_error(d, now, POWER_SYSFS_CONTROL, r);
                transition(d, now, PM_STATE_ON, USEC_INFINITY);
                return 0;
        }
        if (!mode_holds(m)) {
                r = power_sysfs_control_restore(&d->power);
                transition(d, now, PM_STATE_KERNEL, USEC_INFINITY);
                if (r < 0) {
                        set_error(d, POWER_SYSFS_CONTROL, r);
                        return r;
                }
                return 0;
        }

        /* leaving mode on: the kernel's setting back before the device is held */
        r = power_sysfs_control_restore(&d->power);
        if (r < 0)
                return enter_error(d, now, POWER_SYSFS_CONTROL, r);
        r = device_open(d);
        if (r == -EBUSY) {
                /* no timer: Claim or a udev event retries */
                set_error(d, "open", r);
                transition(d, now, PM_STATE_BUSY, USEC_INFINITY);
                return r;
        }
        if (r < 0)
                return enter_error(d, now, "open", r);
        if (r > 0) {
                /* adopted in low power: armed as it is, unless the mode wants the other entry */
                transition(d, now, PM_STATE_ARMED, USEC_INFINITY);
                return reconcile_held(d, now);
        }
        return device_wait_or_arm(d, now, PM_STATE_IDLE, now, d->policy.arm_delay_ms);
}

/* The half of reconcile() for a held device its policy still wants held (auto, wakeup): the
 * wait of its state goes on with the policy's delays, or the entry in force becomes the mode's. */
static int reconcile_held(PmDevice *d, usec_t now) {
        int r;

        switch (d->state) {
        case PM_STATE_IDLE:
                return device_wait_or_arm(d, now, PM_STATE_IDLE, d->phase_start, d->policy.arm_delay_ms);
        case PM_STATE_WOKEN:
                return device_wait_or_arm(d, now, PM_STATE_WOKEN, d->phase_start, d->policy.rearm_delay_ms);
        case PM_STATE_FLAPPING:
                return device_wait_or_arm(d, now, PM_STATE_FLAPPING, d->phase_start,
                                          d->policy.flap_hold_s * 1000);
        case PM_STATE_ARMED: {
                PmEntry wanted = d->policy.mode == POLICY_MODE_WAKEUP ? PM_ENTRY_WAKEUP : PM_ENTRY_PLAIN;

                if (d->in_force == wanted)
                        return 0;
                if (d->in_force != PM_ENTRY_NONE) {
                        /* auto ↔ wakeup: never an entry over another */
                        r = device_disarm(d);
                        if (r < 0)
                                return enter_error(d, now, "LOW_POWER_EXIT", r);
                }
                return device_arm(d, now);
        }
        case PM_STATE_ERROR:
                /* held: the entry failed; retry it */
                return device_arm(d, now);
        case PM_STATE_KERNEL:
        case PM_STATE_ON:
        case PM_STATE_BUSY:
        case PM_STATE_RELEASED:
        case _PM_STATE_MAX:
        case _PM_STATE_INVALID:
                break;
        }
        /* held in a state that holds nothing: cannot happen; start over as after an open */
        return device_wait_or_arm(d, now, PM_STATE_IDLE, now, d->policy.arm_delay_ms);
}

/* Brings the device where its policy wants it, from wherever it is. */
static int reconcile(PmDevice *d, usec_t now) {
        if (d->vfio && d->release_reason == PM_RELEASE_NONE && mode_holds(d->policy.mode))
                return reconcile_held(d, now);
        return reconcile_unheld(d, now);
}

/* ---- the object ------------------------------------------------------------------------- */

int pm_device_new(const PmEnv *env, const char *bus, const char *name, int dev_dir_fd, PmDevice **ret) {
        _cleanup_(pm_device_freep) PmDevice *d = NULL;

        if (!env || !env->now || !env->now_realtime || !bus || !name || !ret)
                return -EINVAL;
        if (!env->vfio_ops && !env->backend)
                return -EINVAL;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->env = *env;
        d->ops = env->vfio_ops ?: &default_ops;
        d->ops_userdata = env->vfio_ops ? env->vfio_userdata : env->backend;
        d->policy = *policy_defaults();
        d->state = PM_STATE_KERNEL;
        d->deadline = USEC_INFINITY;
        d->armed_since = USEC_INFINITY;
        d->bus = strdup(bus);
        d->name = strdup(name);
        if (!d->bus || !d->name)
                return -ENOMEM;         /* freed with d->power never set up: nothing touched */
        power_sysfs_init(&d->power, dev_dir_fd, env->state_dir_fd, d->name, power_record_failed, d);

        *ret = TAKE_PTR(d);
        return 0;
}

static PmDevice *device_free(PmDevice *d, bool leave) {
        if (!d)
                return NULL;

        device_close(d);
        if (leave)
                power_sysfs_leave(&d->power);
        else
                power_sysfs_done(&d->power);

        free(d->flap_times);
        free(d->bus);
        free(d->name);
        free(d);
        return NULL;
}

PmDevice *pm_device_free(PmDevice *d) {
        return device_free(d, false);
}

PmDevice *pm_device_leave(PmDevice *d) {
        return device_free(d, true);
}

/* ---- events ----------------------------------------------------------------------------- */

int pm_device_set_policy(PmDevice *d, const PolicyValues *policy) {
        PolicyMode old_mode;
        bool first, exit_failed;
        usec_t now;
        int r, k;

        if (!d || !policy)
                return -EINVAL;
        if (policy->mode < 0 || policy->mode >= _POLICY_MODE_MAX)
                return -EINVAL;

        old_mode = d->policy.mode;
        first = !d->have_policy;
        if (d->policy.flap_max_wakes != policy->flap_max_wakes)
                flap_forget(d);
        d->policy = *policy;
        d->have_policy = true;

        /* released: remembered, applied at Claim */
        if (d->release_reason != PM_RELEASE_NONE)
                return 0;

        now = now_mono(d);

        /* busy waits for Claim, error for its backoff, unless the mode changes */
        if (!first && old_mode == policy->mode &&
            (d->state == PM_STATE_BUSY || d->state == PM_STATE_ERROR))
                return apply_d3cold(d, now, &exit_failed);

        /* d3cold_allowed is written with the device out of low power: closed first when the
         * new mode does not hold it, out of its entry when it does */
        if (!mode_holds(policy->mode)) {
                r = reconcile(d, now);
                k = apply_d3cold(d, now, &exit_failed);
                return r < 0 ? r : k;
        }
        k = apply_d3cold(d, now, &exit_failed);
        if (exit_failed)
                return k;
        r = reconcile(d, now);
        return r < 0 ? r : k;
}

int pm_device_claim(PmDevice *d) {
        usec_t now;
        int r, k;

        if (!d)
                return -EINVAL;
        now = now_mono(d);

        if (d->release_reason != PM_RELEASE_NONE) {
                bool exit_failed;

                d->release_reason = PM_RELEASE_NONE;
                k = apply_d3cold(d, now, &exit_failed);        /* not held: nothing to exit */
                r = reconcile(d, now);
                return r < 0 ? r : k;
        }

        switch (d->state) {
        case PM_STATE_BUSY:
        case PM_STATE_ERROR:
                return reconcile(d, now);
        case PM_STATE_KERNEL:
        case PM_STATE_ON:
        case PM_STATE_IDLE:
        case PM_STATE_ARMED:
        case PM_STATE_WOKEN:
        case PM_STATE_FLAPPING:
        case PM_STATE_RELEASED:
        case _PM_STATE_MAX:
        case _PM_STATE_INVALID:
                break;
        }
        return 0;
}

int pm_device_release(PmDevice *d, PmRelease why) {
        if (!d || (why != PM_RELEASE_OWN && why != PM_RELEASE_GROUP && why != PM_RELEASE_RESERVATION))
                return -EINVAL;
        if (d->release_reason != PM_RELEASE_NONE) {
                /* an own Release or reservation outlasts a Claim of the group's device */
                if (why != PM_RELEASE_GROUP)
                        d->release_reason = why;
                return 0;
        }
        if (d->have_policy && why != PM_RELEASE_RESERVATION && !mode_holds(d->policy.mode))
                return -ENOTCONN;

        device_close(d);
        d->release_reason = why;
        transition(d, now_mono(d), PM_STATE_RELEASED, USEC_INFINITY);
        return 0;
}

PmRelease pm_device_release_reason(const PmDevice *d) {
        return d->release_reason;
}

int pm_device_wake(PmDevice *d) {
        usec_t now;
        int r;

        if (!d)
                return -EINVAL;
        if (!d->vfio)
                return -ENOTCONN;
        if (d->state != PM_STATE_ARMED)
                return 0;       /* in D0 already */

        now = now_mono(d);
        if (d->in_force != PM_ENTRY_NONE) {
                r = device_disarm(d);
                if (r < 0)
                        return enter_error(d, now, "LOW_POWER_EXIT", r);
        }
        return device_wait_or_arm(d, now, PM_STATE_WOKEN, now, d->policy.rearm_delay_ms);
}

/* A wake re-armed at once (rearm_delay_ms 0, no flap hold): armed → woken → armed within this
 * call, so the state ends where it was and only the counters and the low-power time moved. The
 * observers hear of that once (wake_rearmed), not of two state changes: this is the path a
 * stream of wakes takes, kept near the bare re-arm loop's cost (SPEC §8). A failed entry goes the
 * way of every other: through woken, to error. */
_hot_ static int wake_rearm(PmDevice *d, usec_t now) {
        bool wakeup = d->policy.mode == POLICY_MODE_WAKEUP;
        int r;

        d->phase_start = now;
        r = d->ops->enter(d->ops_userdata, d->vfio, wakeup);
        if (r < 0) {
                transition(d, now, PM_STATE_WOKEN, USEC_INFINITY);
                return device_arm_after(d, now, r);
        }
        /* what transition() does for armed → woken → armed */
        armed_end(d, now);
        d->armed_since = now;
        d->in_force = wakeup ? PM_ENTRY_WAKEUP : PM_ENTRY_PLAIN;
        d->arms++;
        d->env.wake_rearmed(d->env.userdata, d);
        return 0;
}

_hot_ int pm_device_handle_wake(PmDevice *d) {
        uint64_t n = 0;
        usec_t now;
        int r;

        if (!d)
                return -EINVAL;
        if (!d->vfio)
                return 0;

        r = d->ops->read_wake(d->ops_userdata, d->vfio, &n);
        if (r < 0) {
                set_error(d, "wake eventfd", r);
                return r;
        }
        /* only a fired wake-up entry is a wake; an exit's signal was drained already */
        if (n == 0 || d->state != PM_STATE_ARMED || d->in_force != PM_ENTRY_WAKEUP)
                return 0;

        now = now_mono(d);
        d->in_force = PM_ENTRY_NONE;    /* one-shot: the kernel ended it */
        d->wakes++;
        d->last_wake_realtime_usec = d->env.now_realtime(d->env.userdata);

        if (flap_record(d, now) && d->policy.flap_hold_s > 0)
                return device_wait_or_arm(d, now, PM_STATE_FLAPPING, now, d->policy.flap_hold_s * 1000);
        if (d->policy.rearm_delay_ms == 0 && d->env.wake_rearmed)
                return wake_rearm(d, now);
        return device_wait_or_arm(d, now, PM_STATE_WOKEN, now, d->policy.rearm_delay_ms);
}

int pm_device_handle_request(PmDevice *d) {
        uint64_t n = 0;
        int r;

        if (!d)
                return -EINVAL;
        if (!d->vfio)
                return 0;

        r = d->ops->read_request(d->ops_userdata, d->vfio, &n);
        if (r >= 0 && n == 0)
                return 0;       /* spurious */

        /* an unbind waits for this close: no exit, nothing else first */
        device_close(d);
        d->release_reason = PM_RELEASE_REQUEST;
        transition(d, now_mono(d), PM_STATE_RELEASED, USEC_INFINITY);
        return 0;
}

int pm_device_handle_timer(PmDevice *d) {
        usec_t now;

        if (!d)
                return -EINVAL;
        if (d->deadline == USEC_INFINITY)
                return 0;

        now = now_mono(d);
        if (now < d->deadline) {
                /* fired early: have it armed again */
                if (d->env.deadline_changed)
                        d->env.deadline_changed(d->env.userdata, d);
                return 0;
        }

        switch (d->state) {
        case PM_STATE_IDLE:
        case PM_STATE_WOKEN:
        case PM_STATE_FLAPPING:
                return device_arm(d, now);
        case PM_STATE_ERROR:
                return reconcile(d, now);
        case PM_STATE_KERNEL:
        case PM_STATE_ON:
        case PM_STATE_BUSY:
        case PM_STATE_ARMED:
        case PM_STATE_RELEASED:
        case _PM_STATE_MAX:
        case _PM_STATE_INVALID:
                break;
        }
        return 0;
}

/* ---- queries ---------------------------------------------------------------------------- */

PmState pm_device_state(const PmDevice *d) {
        return d ? d->state : _PM_STATE_INVALID;
}

const char *pm_device_name(const PmDevice *d) {
        return d ? d->name : NULL;
}

PolicyMode pm_device_mode(const PmDevice *d) {
        return d ? d->policy.mode : _POLICY_MODE_INVALID;
}

usec_t pm_device_deadline(const PmDevice *d) {
        return d ? d->deadline : USEC_INFINITY;
}

_hot_ bool pm_device_held(const PmDevice *d) {
        return d && d->vfio;
}

int pm_device_wake_fd(const PmDevice *d) {
        if (!d || !d->vfio)
                return -EBADF;
        return d->ops->wake_fd(d->ops_userdata, d->vfio);
}

int pm_device_request_fd(const PmDevice *d) {
        if (!d || !d->vfio)
                return -EBADF;
        return d->ops->request_fd(d->ops_userdata, d->vfio);
}

VfioDevice *pm_device_vfio(const PmDevice *d) {
        if (!d || d->ops != &default_ops)
                return NULL;
        return d->vfio;
}

const char *pm_device_last_error(const PmDevice *d) {
        return d ? d->last_error : "";
}

int pm_device_last_errno(const PmDevice *d) {
        return d ? d->last_errno : 0;
}

_hot_ void pm_device_counters_base(const PmDevice *d, PmCounters *ret, usec_t *ret_armed_since) {
        *ret = (PmCounters) {
                .wakes = d->wakes,
                .arms = d->arms,
                .low_power_usec = d->low_power_usec,
                .last_wake_realtime_usec = d->last_wake_realtime_usec,
        };
        *ret_armed_since = d->state == PM_STATE_ARMED ? d->armed_since : USEC_INFINITY;
}

_hot_ PmEntry pm_device_entry(const PmDevice *d) {
        return d->vfio ? d->in_force : PM_ENTRY_NONE;
}

void pm_device_restore_counters(PmDevice *d, const PmCounters *c) {
        d->wakes = c->wakes;
        d->arms = c->arms;
        d->low_power_usec = c->low_power_usec;
        d->last_wake_realtime_usec = c->last_wake_realtime_usec;
}

void pm_device_counters(const PmDevice *d, PmCounters *ret) {
        usec_t since;

        pm_device_counters_base(d, ret, &since);
        if (since != USEC_INFINITY) {
                usec_t now = now_mono(d);

                if (now > since)
                        ret->low_power_usec += now - since;
        }
}

int pm_device_kernel_suspended_msec(PmDevice *d, uint64_t *ret) {
        if (!d || !ret)
                return -EINVAL;
        return power_sysfs_suspended_msec(&d->power, ret);
}
