#pragma once

/* handoff: what the VM managers' hooks do (SPEC §6), shared by the libvirt hook and
 * vfiopmd-handoff (which the Proxmox hookscript runs): Release a VM's devices before its VMM
 * opens them, Claim them back when it is gone.
 *
 * Everything happens before one deadline, because the VM manager waits for its hook. What the
 * daemon answers decides:
 *   done                             say so ("released NAME", and each device of its IOMMU group
 *                                    released with it)
 *   NoSuchDevice, NotHeld, Busy      not the daemon's to give: nothing to do
 *   unreachable (no org.vfiopm1)     if systemd is starting, stopping or restarting the daemon's
 *                                    unit (ActiveState activating, deactivating or reloading,
 *                                    auto-restart included, or a job queued for it), wait for it,
 *                                    polling every 100 ms:
 *                                    the daemon that comes up would hold the device the VMM is
 *                                    about to open. Else (not running, failed, no systemd) nothing
 *                                    holds anything: nothing to do. At the deadline: give up,
 *                                    nothing more done.
 *   any other error                  a failure: the exit status is 1 for Release (the device may
 *                                    still be held; better the VM manager says so than the VMM
 *                                    fails on it), 0 for Claim (a failed Claim costs power only).
 * One line on stderr for each thing done or not done, "PROGRAM: SUBJECT: …". Never blocks past the
 * deadline (the caller keeps an alarm as a backstop). */

#include <stddef.h>
#include <stdint.h>

#include "time-util.h"

/* The bound of every hook run: a daemon restart under systemd (stop, RestartSec=, start) fits. */
#define HANDOFF_TIMEOUT_SEC 10

/* The unit the daemon runs as; $VFIOPMD_UNIT replaces it (tests). */
#define HANDOFF_UNIT_DEFAULT "vfiopmd.service"

typedef enum HandoffOp {
        HANDOFF_RELEASE,
        HANDOFF_CLAIM,
} HandoffOp;

/* names: n device names. deadline_usec: CLOCK_MONOTONIC. Returns the exit status (0 or 1). */
int handoff_run(HandoffOp op, char *const *names, size_t n, const char *program, const char *subject,
                usec_t deadline_usec);

