#pragma once

/* pm: the per-device state machine of SPEC §3. It owns one device's held VFIO fd (through
 * PmVfioOps, by default vfio.h), its timers (as a single deadline the event loop arms) and the
 * sysfs knobs it changed (power/control, d3cold_allowed, through power-sysfs.h), and it counts
 * wakes, arms and time armed.
 *
 * It does no I/O of its own besides what PmEnv, PmVfioOps and power-sysfs.h (the device's
 * directory) give it, never blocks and never logs: the daemon passes real ones, the unit tests
 * a fake backend and a fake clock. Events come in through the pm_device_*() calls; what the
 * outside must know comes out through PmEnv callbacks, which must not call the event functions
 * back.
 *
 * The rules it keeps:
 *   - kernel and on never open the device; auto and wakeup hold it. A held device goes
 *     idle (arm_delay_ms) → armed; on wakeup a fired eventfd makes it woken (rearm_delay_ms) →
 *     armed, or flapping (flap_hold_s) → armed when the wake is the (flap_max_wakes + 1)-th inside
 *     flap_window_s. Every state passed through is reported, even with a zero delay
 *     (kernel → idle → armed, armed → woken → armed), but a zero delay arms no timer.
 *   - No entry is ever issued while one is in force: a re-entry follows a fired wake-up entry
 *     (consumed by the kernel) or a LOW_POWER_EXIT, and nothing but the low-power features
 *     and close() reaches an armed device. Should the kernel still answer EINVAL (an entry it
 *     keeps in force that the daemon believed consumed, tests/conformance case 26), the entry
 *     is retried once after a LOW_POWER_EXIT instead of being an error.
 *   - The deadline is USEC_INFINITY in armed, kernel, on, busy and released: an idle daemon
 *     sleeps.
 *   - sysfs: power/control = on only in mode on, put back when the mode changes and on free.
 *     d3cold applies in every mode (d3cold_allowed governs the kernel's idle PM of an unopened
 *     device as much as a held one): written as the policy says, put back when it goes back to
 *     null and on free; an armed device exits around the write (the write resumes it). A device
 *     without the attribute (platform) is left alone silently. While released nothing is
 *     touched: the policy of the moment is applied at Claim.
 *   - The values found before the first change are also kept in a record, one file per device
 *     in PmEnv.state_dir_fd, and a record left by a daemon that died gives the originals
 *     (power-sysfs.h, which keeps both knobs and the record for pm). */

#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "policy.h"
#include "time-util.h"
#include "vfio.h"


/* Error backoff: 1 s after the first failure, doubled after each failed retry, at most 60 s;
 * back to 1 s once an operation succeeds. */
#define PM_BACKOFF_MIN_USEC (1 * USEC_PER_SEC)
#define PM_BACKOFF_MAX_USEC (60 * USEC_PER_SEC)

/* SPEC §3, reported everywhere with these exact words. */
typedef enum PmState {
        PM_STATE_KERNEL,        /* not held, kernel idle PM */
        PM_STATE_ON,            /* not held, kept in D0 */
        PM_STATE_BUSY,          /* wanted, but another process holds it */
        PM_STATE_IDLE,          /* held, D0, waiting arm_delay_ms */
        PM_STATE_ARMED,         /* held, entry done */
        PM_STATE_WOKEN,         /* held, eventfd fired, waiting rearm_delay_ms */
        PM_STATE_FLAPPING,      /* held, D0 for flap_hold_s */
        PM_STATE_RELEASED,      /* handed off; not held until Claim */
        PM_STATE_ERROR,         /* last operation failed; retried with backoff */
        _PM_STATE_MAX,
        _PM_STATE_INVALID = -EINVAL,
} PmState;

const char *pm_state_to_string(PmState s);
PmState pm_state_from_string(const char *s);

/* Why a device is released (PM_STATE_RELEASED), shown by vfiopmctl show and over D-Bus
 * (ReleaseReason): a released device is not held until Claim, whatever the reason. */
typedef enum PmRelease {
        PM_RELEASE_NONE,                /* not released */
        PM_RELEASE_OWN,                 /* "release": its own Release */
        PM_RELEASE_GROUP,               /* "group": the Release of another device of its IOMMU group */
        PM_RELEASE_REQUEST,             /* "request": the kernel asked for it (driver unbind, unplug) */
        PM_RELEASE_RESERVATION,         /* "reservation": released before it was on a VFIO driver */
        _PM_RELEASE_MAX,
        _PM_RELEASE_INVALID = -EINVAL,
} PmRelease;

/* "" for PM_RELEASE_NONE, then the words above */
const char *pm_release_to_string(PmRelease r);
PmRelease pm_release_from_string(const char *s);

/* sd_notify's STATUS= text for these counts (count[s]: devices in state s): "3 devices: 2 armed,
 * 1 kernel", the most frequent state first, ties in PmState order, states with none left out;
 * "0 devices". Truncated to size (always terminated). Returns buf. */
char *pm_state_counts_format(const size_t count[_PM_STATE_MAX], char *buf, size_t size);

/* States × events: where each event call may leave a device (pm_device_state() when it returns;
 * the states passed through on the way are reported too, e.g. kernel → idle → armed). "=": stays;
 * k kernel, o on, b busy, i idle, a armed, w woken, f flapping, r released, e error.
 *
 *             set_policy   claim        release  wake   handle_wake  handle_request  handle_timer
 *   kernel    k o b i a e  =            = r      =      =            =               =
 *   on        k o b i a e  =            = r      =      =            =               =
 *   busy      k o b i a e  b i a e      r        =      =            =               =
 *   idle      k o i a e    =            r        =      =            = r             i a e
 *   armed     k o a e      =            r        a w e  a w f e      = r             =
 *   woken     k o w a e    =            r        =      =            = r             w a e
 *   flapping  k o f a e    =            r        =      =            = r             f a e
 *   released  =            k o b i a e  =        =      =            =               =
 *   error     k o b i a e  o b i a e    = r      =      =            = r             o b i a e
 *
 * Which one of a cell: set_policy and claim go where the mode, the delays and the device's
 * answer (EBUSY, a failure) lead; release stays only when refused (-ENOTCONN in kernel and on,
 * and in error from mode on); wake and handle_wake end in armed when there is no rearm delay,
 * handle_wake also on a signal that is no wake; handle_request stays when not held or spurious;
 * handle_timer acts only at its deadline. pm_device_new() gives
 * kernel; pm_device_free() ends any state. tests/unit/test-pm.c keeps the table as data and
 * drives a device into every state and through every event: each result is in its cell, and
 * every entry of every cell is reached. */

typedef struct PmDevice PmDevice;

/* What the kernel has in force on a held device, as far as the daemon knows. */
typedef enum PmEntry {
        PM_ENTRY_NONE,
        PM_ENTRY_PLAIN,         /* LOW_POWER_ENTRY */
        PM_ENTRY_WAKEUP,        /* LOW_POWER_ENTRY_WITH_WAKEUP */
        _PM_ENTRY_MAX,
} PmEntry;

/* How pm reaches the device: the vfio.h calls it makes, behind a table so that the unit tests
 * drive the state machine through a fake. handle is what open gave; userdata is
 * PmEnv.vfio_userdata. Same contracts as the vfio.h functions they stand for, but open's: 0 for
 * a device opened (in D0, nothing in force), or PM_ENTRY_PLAIN/PM_ENTRY_WAKEUP for one adopted
 * as an earlier daemon left it, that entry in force (vfio_device_adopt()): pm takes it as armed,
 * without an entry of its own (which would wake it), unless the mode wants the other one. */
typedef struct PmVfioOps {
        int (*open)(void *userdata, const char *bus, const char *name, void **ret_handle);
        void (*close)(void *userdata, void *handle);
        int (*enter)(void *userdata, void *handle, bool wakeup);
        int (*exit)(void *userdata, void *handle);
        int (*read_wake)(void *userdata, void *handle, uint64_t *ret_count);
        int (*read_request)(void *userdata, void *handle, uint64_t *ret_count);
        int (*wake_fd)(void *userdata, void *handle);
        int (*request_fd)(void *userdata, void *handle);
} PmVfioOps;

/* Forwards to vfio.h: userdata is the VfioBackend, handle the VfioDevice; only open uses the
 * userdata. */
const PmVfioOps *pm_vfio_ops_default(void);

/* What the state machine needs from the daemon. Copied by pm_device_new(). */
typedef struct PmEnv {
        VfioBackend *backend;
        /* NULL: pm_vfio_ops_default() with backend as its userdata. */
        const PmVfioOps *vfio_ops;
        void *vfio_userdata;
        /* CLOCK_MONOTONIC and CLOCK_REALTIME, in µs. */
        usec_t (*now)(void *userdata);
        usec_t (*now_realtime)(void *userdata);
        /* The device's deadline changed (pm_device_deadline()); USEC_INFINITY: no timer. Also
         * called, with the deadline unchanged, when the timer fired before it (re-arm it). */
        void (*deadline_changed)(void *userdata, PmDevice *d);
        /* The device's fds changed: a held device has a wake and a request fd to watch
         * (pm_device_wake_fd(), pm_device_request_fd()), a closed one none. On close it is
         * called before the fds are closed, so the watcher drops them while they are valid. */
        void (*fds_changed)(void *userdata, PmDevice *d);
        /* State changed from old to pm_device_state(d); the daemon logs it and signals it. */
        void (*state_changed)(void *userdata, PmDevice *d, PmState old);
        /* A wake re-armed at once (rearm_delay_ms 0, no flap hold): the state went armed →
         * woken → armed within pm_device_handle_wake(), reported by this call alone, not by two
         * state_changed; Wakes and Arms moved. NULL: the two state_changed calls. */
        void (*wake_rearmed)(void *userdata, PmDevice *d);
        /* The device's record (state_dir_fd) could not be used; what: "read" (error -EBADMSG:
         * a corrupt record, ignored: sysfs shows the originals), "write" or "remove" (the
         * originals are kept in memory only, as without a directory). May be NULL. */
        void (*record_failed)(void *userdata, PmDevice *d, const char *what, int error);
        void *userdata;
        /* The directory of the records of the original sysfs values (borrowed); -EBADF: none,
         * the originals are kept in memory only. Set it: 0 is an fd. */
        int state_dir_fd;
} PmEnv;

/* bus, name: as for vfio_device_open(); dev_dir_fd: the device's sysfs directory (borrowed),
 * where power/control, d3cold_allowed and power/runtime_suspended_time live. The device starts
 * in PM_STATE_KERNEL, not held, with the default policy; pm_device_set_policy() gives it its
 * first decision, which puts back what a record left by an earlier daemon says was changed and
 * the policy does not want (pm_device_free() does, without a decision). */
int pm_device_new(const PmEnv *env, const char *bus, const char *name, int dev_dir_fd, PmDevice **ret);
/* Closes the device if held (calling fds_changed only), restores what the daemon changed in
 * sysfs (power/control, d3cold_allowed) and removes the device's record. */
PmDevice *pm_device_free(PmDevice *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(PmDevice *, pm_device_free)
/* For a daemon that exits for a restart while the service manager keeps the device's fds
 * (fdstore.h): closes the handle (the daemon's own fds: the device stays open in the kernel),
 * writes nothing to sysfs and keeps the record of the originals for the next daemon, which
 * adopts the device as it is — what a SIGKILL would leave. */
PmDevice *pm_device_leave(PmDevice *d);

/* Events. Each returns ≥ 0 or -errno; a failure of the device or the kernel is also kept as the
 * device's last error. The two caller errors are not:
 *   -ENOTCONN  the device is not held and not wanted (mode kernel or on): Release and Wake have
 *              nothing to act on (D-Bus: org.vfiopm1.Error.NotHeld);
 * and -EBUSY from Claim (or a policy that wants the device) means another process holds it:
 * the device is busy (D-Bus: org.vfiopm1.Error.Busy). */

/* Start, reload. A device in busy or error with the same mode keeps waiting (for Claim, for its
 * backoff); released ignores the policy until Claim (it is remembered, and applied then). */
int pm_device_set_policy(PmDevice *d, const PolicyValues *policy);
/* D-Bus Claim, and udev events for a busy device: ends released, retries busy and error at
 * once; 0 and nothing done in any other state. */
int pm_device_claim(PmDevice *d);
/* D-Bus Release (why: OWN, GROUP or RESERVATION; REQUEST is pm_device_handle_request()'s):
 * returns once the fd is closed; the device stays released whatever the policy until
 * pm_device_claim(). From busy and error too (no retry may grab the device the caller is about
 * to open). Released already: 0, and OWN or RESERVATION replaces the reason (a Claim of the
 * group's device must then leave it released). -ENOTCONN in modes kernel and on, except for a
 * reservation (a device not yet on a VFIO driver is reserved whatever its mode) and before the
 * first pm_device_set_policy(): a release known before the device's first decision (the
 * release-store's, after a restart) holds from the start, nothing is opened. */
int pm_device_release(PmDevice *d, PmRelease why);
PmRelease pm_device_release_reason(const PmDevice *d);
/* D-Bus Wake: on an armed device LOW_POWER_EXIT, then woken as after a wake (rearm_delay_ms).
 * Not counted as a wake, and not seen by the flap guard: wakes count what the device did.
 * 0 on a held device already in D0; -ENOTCONN when not held. */
int pm_device_wake(PmDevice *d);
/* The wake-up eventfd is readable: a wake of an armed wakeup device (counted); anything else
 * (a signal from LOW_POWER_EXIT, a stale one) is drained and ignored. */
int pm_device_handle_wake(PmDevice *d);
/* The request eventfd is readable: the kernel wants the device (driver unbind, hot-unplug).
 * Closes it at once and goes released: the device is leaving vfio, and nothing re-opens it
 * unless Claim says so. */
int pm_device_handle_request(PmDevice *d);
/* The deadline has passed. */
int pm_device_handle_timer(PmDevice *d);

PmState pm_device_state(const PmDevice *d);
const char *pm_device_name(const PmDevice *d);
PolicyMode pm_device_mode(const PmDevice *d);
usec_t pm_device_deadline(const PmDevice *d);
bool pm_device_held(const PmDevice *d);
/* The held device's eventfds; -EBADF while not held. */
int pm_device_wake_fd(const PmDevice *d);
int pm_device_request_fd(const PmDevice *d);
/* With the default ops, the held VfioDevice; NULL while not held or with other ops. */
VfioDevice *pm_device_vfio(const PmDevice *d);
/* "LOW_POWER_ENTRY_WITH_WAKEUP: Input/output error"; "" when none. Kept after recovery until
 * the next failure replaces it. */
const char *pm_device_last_error(const PmDevice *d);
/* The errno (positive) behind pm_device_last_error(); 0 when none. */
int pm_device_last_errno(const PmDevice *d);

typedef struct PmCounters {
        uint64_t wakes;                 /* wake-up eventfd fired on an armed device */
        uint64_t arms;                  /* successful entries */
        usec_t low_power_usec;          /* time armed, up to now */
        usec_t last_wake_realtime_usec; /* 0: never */
} PmCounters;

void pm_device_counters(const PmDevice *d, PmCounters *ret);
/* The same without reading a clock (the wake path's): low_power_usec is the time armed before
 * the current arming, and *ret_armed_since when that began (CLOCK_MONOTONIC; USEC_INFINITY: not
 * armed). What the record keeps (held-record.h). */
void pm_device_counters_base(const PmDevice *d, PmCounters *ret, usec_t *ret_armed_since);
/* A device adopted from an earlier daemon (PmVfioOps.open) goes on with that daemon's counts:
 * before its first decision. */
void pm_device_restore_counters(PmDevice *d, const PmCounters *c);
/* The entry in force on a held device (PM_ENTRY_NONE when not held): for the record that lets
 * the next daemon adopt it (held-record.h). */
PmEntry pm_device_entry(const PmDevice *d);

/* The kernel's own residency: power/runtime_suspended_time (ms) of the device. Reading it never
 * wakes the device. */
int pm_device_kernel_suspended_msec(PmDevice *d, uint64_t *ret);
