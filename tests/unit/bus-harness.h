#pragma once

/* bus-harness: the daemon behind a private dbus-daemon, for tests that talk to it as a client
 * (test-bus.c and test-bus-hostile.c over sd-bus, test-ctl.c through the vfiopmctl binary).
 *
 * harness_start() starts a dbus-daemon on a socket in a scratch directory and forks the daemon
 * side: a Manager on a scratch copy of the sysfs fixture (tests/fixtures/sysfs) and a scratch
 * root for the policy directories, with bus-manager.c on top, owning org.vfiopm1 and running its
 * own loop. The test process is the client: connect with harness_connect(h->address, …), or run
 * vfiopmctl with DBUS_SYSTEM_BUS_ADDRESS=<h->address>. Every process the harness starts dies with
 * the test (PR_SET_PDEATHSIG), so a failing test leaves nothing running; harness_stop() stops
 * both and fails the test if the daemon side did not exit cleanly.
 *
 * The devices are the fixture's: 0000:00:03.0 (PCI, IOMMU group 12, vfio0) and vfio-pm-sim.0
 * (platform, IOMMU group 13, vfio1). By default the daemon side uses the real kernel interface,
 * which cannot open them (only modes kernel and on work). With .fake_kernel they are held
 * through tests/unit/fake-kernel.h, which has both groups and both devices as the fixture lays
 * them out: a policy of mode wakeup or auto takes them to armed. The daemon side then also fails
 * at stop if the fake counted a violation or an fd of it was left open. Either way sysfs is the
 * fixture's copy, which nothing updates: PowerState stays D3hot (PCI) and RuntimeStatus
 * "suspended", whatever the (fake) kernel does.
 *
 * Must be called from a Check test (it asserts). Needs dbus-daemon in $PATH. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "bus-manager.h"
#include "fake-kernel.h"
#include "fixture.h"
#include "manager.h"

#define HARNESS_PCI_NAME "0000:00:03.0"
#define HARNESS_PCI_PATH "/org/vfiopm1/device/_30000_3a00_3a03_2e0"  /* a leading digit is escaped too */
#define HARNESS_PCI_GROUP 12
#define HARNESS_SIM_NAME "vfio-pm-sim.0"
#define HARNESS_SIM_PATH "/org/vfiopm1/device/vfio_2dpm_2dsim_2e0"
#define HARNESS_SIM_GROUP 13

/* The daemon side's policy directories, below h->root: */
#define HARNESS_POLICY_DIR_LIB "usr/lib/vfiopmd/policy.d"
#define HARNESS_POLICY_DIR_ETC "etc/vfiopmd/policy.d"
#define HARNESS_POLICY_DIR_RUN "run/vfiopmd/policy.d"
/* where HarnessOptions.etc_policy is written */
#define HARNESS_ETC_POLICY_FILE HARNESS_POLICY_DIR_ETC "/50-harness.json"

typedef struct HarnessOptions {
        /* false: an open bus (anyone may own and call anything: the daemon's own uid checks are
         * what is tested); true: the system bus's default policy with conf/org.vfiopm1.conf */
        bool bus_policy_file;
        bool with_pci;                  /* 0000:00:03.0 is in the manager from the start */
        bool with_sim;                  /* vfio-pm-sim.0 too (else the 'a' command adds it) */
        bool fake_kernel;               /* hold devices through the fake kernel (above) */
        /* conf/00-defaults.json copied to /usr/lib/vfiopmd/policy.d (the shipped defaults, as
         * installed); without it every key is the built-in default with no file behind it */
        bool install_defaults;
        const char *etc_policy;         /* if set: written to HARNESS_ETC_POLICY_FILE first */
        /* if not 0: on the daemon side, every fsync() of a directory fails with it (a positive
         * errno, tests/unit/fault-io.h) */
        int dir_fsync_error;
        /* harness_start_local() only: the daemon side's kernel interface instead of the real one
         * (a test's own fake, e.g. harness_fake_kernel_new()'s behind a lock); borrowed */
        const VfioSys *vfio_sys;
} HarnessOptions;

typedef struct Harness {
        FixtureTmp *tmp;                /* the bus socket and its config (0755: anyone connects) */
        FixtureTmp *root;               /* "/" of the policy directories; write there, then Reload */
        FixtureTmp *sysfs;              /* the daemon side's /sys */
        char *address;                  /* the bus's address: "unix:path=…,guid=…" */
        pid_t bus_pid, server_pid;
        int control_fd;                 /* harness_command() */
        sd_bus *client;                 /* connected as the test's user */
        HarnessOptions options;
        /* harness_start_local()'s daemon side, else NULL */
        Manager *manager;
        sd_bus *server_bus;
        BusManager *bus_manager;
} Harness;

void harness_start(Harness *h, const HarnessOptions *options);
/* The same daemon side in this process, for a test that looks into it: no child, no loop
 * running and no control socket (harness_command() fails): the test runs the loop itself
 * (manager_event_base(h->manager)) while the daemon side is to answer. Without .fake_kernel and
 * .dir_fsync_error; .vfio_sys gives it a kernel of the test's. */
void harness_start_local(Harness *h, const HarnessOptions *options);
/* The fake kernel of .fake_kernel: both groups and both devices as the fixture lays them out. */
int harness_fake_kernel_new(FakeKernel **ret);
void harness_stop(Harness *h);

/* A client connection to address (a bus client, not a peer): 0 or -errno. */
int harness_connect(const char *address, sd_bus **ret);

/* The daemon side's control socket: one byte a command, each answered once it has been applied
 * (its effects have gone through the daemon side's loop, the D-Bus signals they cause are queued
 * before any later reply). Returns the command's result: ≥ 0, or -errno; -EOPNOTSUPP for a
 * fake-kernel command without .fake_kernel, -EINVAL for an unknown command.
 *   'a'   vfio-pm-sim.0 appears (udev's VFIO add: it is added and gets its first decision)
 *   'r'   vfio-pm-sim.0 goes (udev's VFIO remove: closed if held, forgotten)
 *   'h'   another process holds 0000:00:03.0's IOMMU group (opening it is EBUSY), then udev's
 *         change event for the device (a device in busy tries again, and stays busy). A device
 *         the daemon holds stays held: Release it first, then Claim finds it busy
 *   'f'   that process lets go of the group, then udev's change event: a device in busy is
 *         claimed again (busy → idle → armed with mode wakeup or auto)
 *   'w'   a host access to 0000:00:03.0 (fake_kernel_host_access()): under a wake-up entry the
 *         eventfd fires and the daemon goes the wake path (armed → woken → armed after
 *         rearm_delay_ms). Result: 1 if the eventfd fired, 0 if not (not armed, or a plain entry)
 *   'W'   the same for vfio-pm-sim.0
 *   'q'   the kernel asks for 0000:00:03.0 back (fake_kernel_request(), a driver unbind): the
 *         daemon closes it and it is released. -ENOTCONN when it is not held
 *   'Q'   the same for vfio-pm-sim.0
 *   'R'   vfio-pm-sim.0 is woken as by a D-Bus Wake and goes (as 'r'), both in one loop turn: a
 *         change that is not announced yet when the device is removed. -ENODEV when it is not
 *         there; the Wake's error when it is not held
 * Commands 'h' 'f' 'w' 'W' 'q' 'Q' 'R' need .fake_kernel. One command at a time: this waits (10 s at
 * most, then -ETIMEDOUT) for the answer; -EPIPE if the daemon side has gone. */
int harness_command(Harness *h, char command);

/* The scratch root's files and directories below path (relative to h->root, "" for all of it),
 * dot files included, each as a path relative to path, sorted, one per line; "" when there are
 * none or path does not exist. Freed by the caller. */
char *harness_list_files(Harness *h, const char *path);
