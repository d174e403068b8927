#pragma once

/* pm: the per-device state machine of SPEC §3. It owns one device's held VFIO fd (through
 * vfio.h), its timers (as a single deadline the event loop arms) and the sysfs knobs it changed
 * (power/control, d3cold_allowed), and it counts wakes, arms and time armed.
 *
 * It does no I/O of its own besides what PmEnv and vfio.h give it and never blocks: the daemon
 * passes real ones, the unit tests a fake backend and a fake clock. Events come in through the
 * pm_device_*() calls; what the outside must know comes out through PmEnv callbacks. */

#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "policy.h"
#include "vfio.h"

typedef uint64_t usec_t;
#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)

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

typedef struct PmDevice PmDevice;

/* What the state machine needs from the daemon. */
typedef struct PmEnv {
        VfioBackend *backend;
        /* CLOCK_MONOTONIC and CLOCK_REALTIME, in µs. */
        usec_t (*now)(void *userdata);
        usec_t (*now_realtime)(void *userdata);
        /* The device's deadline changed (pm_device_deadline()); USEC_INFINITY: no timer. */
        void (*deadline_changed)(void *userdata, PmDevice *d);
        /* The device's fds changed: a held device has a wake and a request fd to watch
         * (pm_device_vfio()), a closed one none. */
        void (*fds_changed)(void *userdata, PmDevice *d);
        /* State changed from old to pm_device_state(d); the daemon logs it and signals it. */
        void (*state_changed)(void *userdata, PmDevice *d, PmState old);
        void *userdata;
} PmEnv;

/* bus, name: as for vfio_device_open(); dev_dir_fd: the device's sysfs directory (borrowed),
 * where power/control and d3cold_allowed live. The device starts in PM_STATE_KERNEL, not held,
 * with the default policy; pm_device_set_policy() gives it its first decision. */
int pm_device_new(const PmEnv *env, const char *bus, const char *name, int dev_dir_fd, PmDevice **ret);
/* Closes the device if held and restores what the daemon changed in sysfs. */
PmDevice *pm_device_free(PmDevice *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(PmDevice *, pm_device_free)

/* Events. Each returns ≥ 0 or -errno; a failure is also kept as the device's last error. */
int pm_device_set_policy(PmDevice *d, const PolicyValues *policy);   /* start, reload */
int pm_device_claim(PmDevice *d);       /* D-Bus Claim; udev event for a busy device */
int pm_device_release(PmDevice *d);     /* D-Bus Release: returns once the fd is closed */
int pm_device_wake(PmDevice *d);        /* D-Bus Wake: LOW_POWER_EXIT, then as after a wake */
int pm_device_handle_wake(PmDevice *d);    /* the wake-up eventfd is readable */
int pm_device_handle_request(PmDevice *d); /* the request eventfd is readable: close now */
int pm_device_handle_timer(PmDevice *d);   /* the deadline has passed */

PmState pm_device_state(const PmDevice *d);
const char *pm_device_name(const PmDevice *d);
PolicyMode pm_device_mode(const PmDevice *d);
usec_t pm_device_deadline(const PmDevice *d);
VfioDevice *pm_device_vfio(const PmDevice *d);  /* NULL while not held */
const char *pm_device_last_error(const PmDevice *d); /* "" when none */

typedef struct PmCounters {
        uint64_t wakes;                 /* wake-up eventfd fired */
        uint64_t arms;                  /* successful entries */
        usec_t low_power_usec;          /* time armed, up to now */
        usec_t last_wake_realtime_usec; /* 0: never */
} PmCounters;

void pm_device_counters(const PmDevice *d, PmCounters *ret);
