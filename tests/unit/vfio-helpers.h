#pragma once

/* What the vfio suites share, test-vfio.c (opening devices) and test-vfio-eventfds.c (the request
 * IRQ and the low-power features): daemon/vfio.c on the fake kernel (fake-kernel.h) and a
 * writable copy of the sysfs fixture, and checks on what the fake saw. Must be called from a
 * Check test (they assert). */

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"
#include "fake-kernel.h"
#include "fixture.h"
#include "vfio.h"

/* The fixture sysfs (tests/fixtures/sysfs/README.md): 0000:00:03.0 in group 12 with vfio-dev/vfio0,
 * vfio-pm-sim.0 in group 13 with vfio-dev/vfio1. The fake kernel is given the same. */
#define PCI "0000:00:03.0"
#define SIM "vfio-pm-sim.0"
#define PCI_GROUP 12
#define SIM_GROUP 13

typedef struct Env {
        FixtureTmp *sysfs;      /* a writable copy of the fixture, so tests can add devices */
        FixtureTmp *dev;        /* stands for /dev: the fake kernel keeps its own namespace */
        FakeKernel *k;
} Env;

Env *env_free(Env *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Env *, env_free)
/* Both fixture devices in their groups; cdev: the fake has the cdev + iommufd nodes. */
Env *env_new(bool cdev);
VfioBackend *backend(Env *e, VfioPath path);

/* Adds bus/<bus>/devices/<name> → devices/<parent>/<name> with an iommu_group link and a
 * vfio-dev/vfio<cdev> child, as the kernel lays them out. */
void sysfs_add_device(Env *e, const char *bus, const char *parent, const char *name,
                      unsigned group, unsigned cdev);

/* Dumps the fake's log to stderr, then fails the test with what. */
void dump_and_fail(const FakeKernel *k, const char *what);
/* Nothing the fake handed out is open, and nothing broke the rules. */
void assert_clean(const FakeKernel *k);
/* The first ioctl of this request at index ≥ from; the test fails if there is none. */
const FakeCall *find_ioctl(const FakeKernel *k, size_t from, unsigned long request);
