#pragma once

/* fake-pm-ops: a fake PmVfioOps (pm.h) that keeps vfio-pci's low-power rules (SPEC §1,
 * tests/conformance/README.md) for one device and counts as a violation what the daemon must
 * never do: an entry while one is in force (the kernel answers EINVAL or wakes the device), an
 * open of a device already open. Free of Check: the pm suites (pm-helpers.h) and the pm fuzzer
 * (tests/fuzz/) share it; a misuse of the fake itself (a call on a closed device) aborts. */

#include <stdbool.h>

#include "pm.h"

typedef enum FakeEntry {
        FAKE_NONE,
        FAKE_PLAIN,
        FAKE_WAKEUP,
} FakeEntry;

typedef struct FakeDev {
        bool open;
        int wake_fd;
        int request_fd;
        FakeEntry in_force;
        bool suspended;                 /* the entry in force has suspended the device */
        bool stay_active;               /* entries do not suspend (yet): conformance case 26 */
        bool exit_fires;                /* EXIT on a suspended wake-up entry signals (upstream) */
        int open_error;                 /* > 0: every open fails with it */
        FakeEntry adopt;                /* the next open adopts the device as an earlier daemon
                                         * left it, this entry in force (PmVfioOps.open) */
        int fail_enter;                 /* > 0: every entry fails with it */
        int fail_next_enter;            /* > 0: the next entry fails with it (vfio_pm_sim's) */
        int fail_exit;                  /* > 0: every exit fails with it */
        unsigned violations;
        unsigned opens, closes, enters, exits;
        char log[256];                  /* the calls since the last expect_log(), space-separated */
} FakeDev;

/* vfio-pci's low-power rules for the one FakeDev given as vfio_userdata. */
extern const PmVfioOps fake_ops;
/* Signals an eventfd of the fake (the wake-up or the request one). */
void fake_signal(int fd);

/* The device wakes (a host access, a PME): a suspended wake-up entry fires and ends; a plain one
 * resumes and the kernel suspends it again by itself. Returns whether the eventfd fired. */
bool fake_device_wakes(FakeDev *f);
