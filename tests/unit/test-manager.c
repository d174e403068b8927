/* manager.c's hand-off (manager.h: manager_release(), manager_claim()): IOMMU groups released
 * and claimed as a whole, reservations of devices not on a VFIO driver, releases that outlive the
 * daemon. A Manager on a scratch copy of the sysfs fixture, with one more PCI device, 0000:00:04.0,
 * in 0000:00:03.0's IOMMU group 12 (two NICs behind one PCIe-to-PCI bridge), holding devices
 * through the fake kernel; no event loop runs: every event is a direct call. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake-kernel.h"
#include "fixture.h"
#include "log.h"
#include "manager.h"
#include "suites.h"

#define PCI "0000:00:03.0"      /* the fixture's, vfio-pci, group 12 */
#define PCI2 "0000:00:04.0"     /* added here, vfio-pci, group 12 */
#define FREE "0000:00:02.0"     /* the fixture's, no driver, group 11 */
#define SIM "vfio-pm-sim.0"     /* the fixture's, group 13 */
#define RELEASE_DIR "run/vfiopmd/released"

typedef struct T {
        FixtureTmp *sysfs, *root;
        FakeKernel *k;
        Manager *m;
        char *policy_dirs[2];
} T;

static void mkdirs(int dirfd, const char *path) {
        char buf[256];

        (void) snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        (void) mkdirat(dirfd, buf, 0755);
                        *p = '/';
                }
        ck_assert(mkdirat(dirfd, buf, 0755) == 0 || errno == EEXIST);
}

/* Binds PCI device name (below devices/pci0000:00) to vfio-pci, as the kernel shows it. */
static void pci_bind_vfio(T *t, const char *name, unsigned vfio_index) {
        char path[256], target[256];

        (void) snprintf(path, sizeof(path), "devices/pci0000:00/%s/vfio-dev/vfio%u", name, vfio_index);
        mkdirs(t->sysfs->fd, path);
        (void) snprintf(path, sizeof(path), "devices/pci0000:00/%s/vfio-dev/vfio%u/dev", name, vfio_index);
        ck_assert_int_eq(fixture_write_string(t->sysfs->fd, path, "241:1\n"), 0);
        (void) snprintf(path, sizeof(path), "devices/pci0000:00/%s/driver", name);
        (void) unlinkat(t->sysfs->fd, path, 0);
        ck_assert_int_eq(symlinkat("../../../bus/pci/drivers/vfio-pci", t->sysfs->fd, path), 0);
        (void) snprintf(path, sizeof(path), "bus/pci/drivers/vfio-pci/%s", name);
        (void) snprintf(target, sizeof(target), "../../../../devices/pci0000:00/%s", name);
        ck_assert_int_eq(symlinkat(target, t->sysfs->fd, path), 0);
}

/* Unbinds it: no driver, no vfio-dev child. */
static void pci_unbind(T *t, const char *name) {
        char path[256];

        (void) snprintf(path, sizeof(path), "devices/pci0000:00/%s/driver", name);
        ck_assert_int_eq(unlinkat(t->sysfs->fd, path, 0), 0);
        (void) snprintf(path, sizeof(path), "bus/pci/drivers/vfio-pci/%s", name);
        (void) unlinkat(t->sysfs->fd, path, 0);
        (void) snprintf(path, sizeof(path), "devices/pci0000:00/%s/vfio-dev", name);
        {
                char cmd[512];

                (void) snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s'", t->sysfs->path, path);
                ck_assert_int_eq(system(cmd), 0);
        }
}

/* 0000:00:04.0: a copy of 0000:00:03.0's attributes, in group 12, unbound. */
static void add_pci2(T *t) {
        static const char *const attrs[] = {
                "class=0x020000", "device=0x10d3", "vendor=0x8086", "subsystem_vendor=0x8086",
                "subsystem_device=0xa01f", "d3cold_allowed=1", "power_state=D3hot", "power/control=auto",
                "power/runtime_status=suspended", "power/runtime_suspended_time=0",
        };
        const char *dir = "devices/pci0000:00/" PCI2;
        char path[256];

        mkdirs(t->sysfs->fd, "devices/pci0000:00/" PCI2 "/power");
        for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
                const char *eq = strchr(attrs[i], '=');
                char value[64];

                (void) snprintf(path, sizeof(path), "%s/%.*s", dir, (int) (eq - attrs[i]), attrs[i]);
                (void) snprintf(value, sizeof(value), "%s\n", eq + 1);
                ck_assert_int_eq(fixture_write_string(t->sysfs->fd, path, value), 0);
        }
        ck_assert_int_eq(symlinkat("../../../kernel/iommu_groups/12", t->sysfs->fd, "devices/pci0000:00/" PCI2 "/iommu_group"), 0);
        ck_assert_int_eq(symlinkat("../../../bus/pci", t->sysfs->fd, "devices/pci0000:00/" PCI2 "/subsystem"), 0);
        ck_assert_int_eq(symlinkat("../../../devices/pci0000:00/" PCI2, t->sysfs->fd, "bus/pci/devices/" PCI2), 0);
}

static void t_policy(T *t, const char *json) {
        ck_assert_int_eq(fixture_write_string(t->root->fd, "policy.d/50-test.json", json), 0);
        ck_assert_int_ge(manager_reload(t->m), 0);
}

static void t_manager_new(T *t) {
        ck_assert_int_eq(manager_new(&(ManagerConfig) {
                .policy_dirs = t->policy_dirs,
                .root_fd = t->root->fd,
                .sysfs_fd = t->sysfs->fd,
                .dev_fd = t->root->fd,
                .vfio_path = _VFIO_PATH_INVALID,
                .vfio_sys = fake_kernel_sys(t->k),
        }, &t->m), 0);
}

static void t_setup(T *t) {
        *t = (T) {};
        log_set_max_level(getenv("VFIOPM_TEST_DEBUG") ? LOG_DEBUG : LOG_CRIT);
        ck_assert_int_eq(fixture_tmp_new("sysfs", &t->sysfs), 0);
        ck_assert_int_eq(fixture_tmp_new(NULL, &t->root), 0);
        add_pci2(t);
        pci_bind_vfio(t, PCI2, 2);
        ck_assert_int_eq(fake_kernel_new(&t->k), 0);
        ck_assert_int_eq(fake_kernel_add_group(t->k, 11, false), 0);
        ck_assert_int_eq(fake_kernel_add_group(t->k, 12, false), 0);
        ck_assert_int_eq(fake_kernel_add_group(t->k, 13, false), 0);
        ck_assert_int_eq(fake_kernel_add_device(t->k, PCI, 12, 0, FAKE_DEVICE_PCI), 0);
        ck_assert_int_eq(fake_kernel_add_device(t->k, SIM, 13, 1, FAKE_DEVICE_PLATFORM), 0);
        ck_assert_int_eq(fake_kernel_add_device(t->k, PCI2, 12, 2, FAKE_DEVICE_PCI), 0);
        ck_assert_int_eq(fake_kernel_add_device(t->k, FREE, 11, 3, FAKE_DEVICE_PCI), 0);
        t->policy_dirs[0] = (char *) "/policy.d";
        mkdirs(t->root->fd, "policy.d");
        ck_assert_int_eq(fixture_write_string(t->root->fd, "policy.d/50-test.json",
                                              "{ \"mode\": \"wakeup\", \"rearm_delay_ms\": 0 }\n"), 0);
        t_manager_new(t);
        ck_assert_int_ge(manager_reload(t->m), 0);
}

/* The counts STATUS= is made of match the table: they are kept as states change, a walk tells. */
static void expect_counts(T *t) {
        size_t kept[_PM_STATE_MAX], walked[_PM_STATE_MAX] = {}, n;
        ManagedDevice **l;

        ck_assert_int_eq(manager_devices(t->m, &l, &n), 0);
        for (size_t i = 0; i < n; i++)
                walked[pm_device_state(managed_device_pm(l[i]))]++;
        manager_state_counts(t->m, kept);
        for (int s = 0; s < _PM_STATE_MAX; s++)
                ck_assert_msg(kept[s] == walked[s], "%s: %zu counted, %zu in the table", pm_state_to_string(s),
                              kept[s], walked[s]);
}

static void t_teardown(T *t) {
        expect_counts(t);
        t->m = manager_free(t->m);
        ck_assert_int_eq(fake_kernel_open_fds(t->k), 0);
        ck_assert_msg(fake_kernel_violations(t->k) == 0, "%s", fake_kernel_violation(t->k));
        fake_kernel_free(t->k);
        fixture_tmp_free(t->sysfs);
        fixture_tmp_free(t->root);
}

static PmDevice *pm_of(T *t, const char *name) {
        ManagedDevice *d = manager_find_device(t->m, name);

        ck_assert_msg(d, "%s is not in the table", name);
        return managed_device_pm(d);
}

static void expect_state(T *t, const char *name, const char *state, const char *reason, const char *by) {
        ManagedDevice *d = manager_find_device(t->m, name);

        ck_assert_msg(d, "%s is not in the table", name);
        ck_assert_str_eq(pm_state_to_string(pm_device_state(managed_device_pm(d))), state);
        ck_assert_str_eq(pm_release_to_string(pm_device_release_reason(managed_device_pm(d))), reason);
        if (by)
                ck_assert_str_eq(managed_device_released_by(d) ?: "(null)", by);
        else
                ck_assert_ptr_null(managed_device_released_by(d));
}

/* The release directory's record of name: its text, or "" when there is none. */
static char *record_of(T *t, const char *name) {
        char path[256], *text = NULL;
        FILE *f;
        size_t n = 0;

        (void) snprintf(path, sizeof(path), "%s/" RELEASE_DIR "/%s", t->root->path, name);
        f = fopen(path, "re");
        if (!f)
                return strdup("");
        ck_assert_int_ge(getdelim(&text, &n, '\0', f), 0);
        fclose(f);
        return text;
}

static void expect_record(T *t, const char *name, const char *want) {
        char *got = record_of(t, name);

        ck_assert_str_eq(got, want);
        free(got);
}

static void expect_list(char **l, const char *want) {
        char buf[256] = "";

        for (char **p = l; p && *p; p++)
                (void) snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", buf[0] ? " " : "", *p);
        ck_assert_str_eq(buf, want);
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

/* ---- group-granular hand-off ------------------------------------------------------------- */

/* Writes msec to PCI2's power/runtime_suspended_time, then expects a reader to see want. */
static void expect_energy_read(T *t, ManagedDevice *d, const char *msec, uint64_t want) {
        EnergyReading e;

        ck_assert_int_eq(fixture_write_string(t->sysfs->fd, "devices/pci0000:00/" PCI2 "/power/runtime_suspended_time",
                                              msec), 0);
        managed_device_energy(d, &e);
        ck_assert_uint_eq(e.suspended_msec, want);
}

/* Readers of the energy read power/runtime_suspended_time afresh each time, but within a batch
 * of them (manager_readers_batch(): the bus's turn) once a device: a GetManagedObjects asks for
 * three such properties a device, and vfiopmctl status's calls come in one batch. */
START_TEST(test_energy_read_once_a_batch) {
        ManagedDevice *d;
        T t;

        t_setup(&t);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        ck_assert_ptr_nonnull(d = manager_find_device(t.m, PCI2));
        /* before any batch: fresh at every call */
        expect_energy_read(&t, d, "1000\n", 1000);
        expect_energy_read(&t, d, "2000\n", 2000);
        /* a batch: its first reader reads, the others see that reading */
        manager_readers_batch(t.m);
        expect_energy_read(&t, d, "3000\n", 3000);
        expect_energy_read(&t, d, "4000\n", 3000);
        /* the next batch reads again */
        manager_readers_batch(t.m);
        expect_energy_read(&t, d, "5000\n", 5000);
        t_teardown(&t);
}
END_TEST

START_TEST(test_release_frees_the_group) {
        T t;
        char **also = NULL;

        t_setup(&t);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI), 0);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        ck_assert_int_eq(manager_add_device(t.m, "platform", SIM), 0);
        expect_state(&t, PCI, "armed", "", NULL);
        expect_state(&t, PCI2, "armed", "", NULL);
        /* one group fd for both devices of group 12, one for the sim's; one container for all */
        ck_assert_int_eq(fake_kernel_open_fds_of(t.k, FAKE_FD_GROUP), 2);
        ck_assert_int_eq(fake_kernel_open_fds_of(t.k, FAKE_FD_CONTAINER), 1);
        expect_counts(&t);

        ck_assert_int_eq(manager_release(t.m, PCI, &also), 0);
        expect_list(also, PCI2);
        expect_state(&t, PCI, "released", "release", PCI);
        expect_state(&t, PCI2, "released", "group", PCI);
        /* the group is free for the next opener the moment Release returns */
        ck_assert(!fake_kernel_device_open(t.k, PCI));
        ck_assert(!fake_kernel_device_open(t.k, PCI2));
        ck_assert_int_eq(fake_kernel_open_fds_of(t.k, FAKE_FD_GROUP), 1);
        ck_assert_int_eq(fake_kernel_open_fds_of(t.k, FAKE_FD_CONTAINER), 1);
        expect_state(&t, SIM, "armed", "", NULL);
        expect_record(&t, PCI, "reason=release\nby=" PCI "\n");
        expect_record(&t, PCI2, "reason=group\nby=" PCI "\n");

        /* released already: nothing more to release, the same answer */
        ck_assert_int_eq(manager_release(t.m, PCI, &also), 0);
        expect_list(also, "");

        /* another process holds the group: Claim is Busy, and both stay unheld */
        ck_assert_int_eq(fake_kernel_set_group_held_elsewhere(t.k, 12, true), 0);
        ck_assert_int_eq(manager_claim(t.m, PCI, &also), -EBUSY);
        expect_state(&t, PCI, "busy", "", NULL);
        expect_state(&t, PCI2, "busy", "", NULL);
        expect_counts(&t);
        expect_record(&t, PCI, "");
        expect_record(&t, PCI2, "");
        /* the holder lets go, no udev event tells: Claim retries the group's busy devices too */
        ck_assert_int_eq(fake_kernel_set_group_held_elsewhere(t.k, 12, false), 0);
        ck_assert_int_eq(manager_claim(t.m, PCI, &also), 0);
        expect_list(also, PCI2);
        expect_state(&t, PCI, "armed", "", NULL);
        expect_state(&t, PCI2, "armed", "", NULL);

        /* Claim brings back what the Release took with it */
        ck_assert_int_eq(manager_release(t.m, PCI2, &also), 0);
        expect_list(also, PCI);
        expect_state(&t, PCI, "released", "group", PCI2);
        ck_assert_int_eq(manager_claim(t.m, PCI2, &also), 0);
        expect_list(also, PCI);
        expect_state(&t, PCI, "armed", "", NULL);
        expect_state(&t, PCI2, "armed", "", NULL);
        ck_assert(fake_kernel_device_open(t.k, PCI) && fake_kernel_device_open(t.k, PCI2));
        expect_record(&t, PCI, "");
        expect_record(&t, PCI2, "");

        /* a device's own Release outlasts the Claim of the one that took it first */
        ck_assert_int_eq(manager_release(t.m, PCI, NULL), 0);
        ck_assert_int_eq(manager_release(t.m, PCI2, &also), 0);
        expect_list(also, "");
        expect_state(&t, PCI2, "released", "release", PCI2);
        ck_assert_int_eq(manager_claim(t.m, PCI, &also), 0);
        expect_list(also, "");
        expect_state(&t, PCI, "armed", "", NULL);
        expect_state(&t, PCI2, "released", "release", PCI2);
        ck_assert_int_eq(manager_claim(t.m, PCI2, NULL), 0);
        expect_state(&t, PCI2, "armed", "", NULL);

        /* a device alone in its group releases nothing else; Claim of an armed one does nothing */
        ck_assert_int_eq(manager_release(t.m, SIM, &also), 0);
        expect_list(also, "");
        expect_state(&t, PCI, "armed", "", NULL);
        ck_assert_int_eq(manager_claim(t.m, SIM, NULL), 0);
        ck_assert_int_eq(manager_claim(t.m, SIM, &also), 0);
        expect_list(also, "");
        expect_state(&t, SIM, "armed", "", NULL);
        t_teardown(&t);
}
END_TEST

START_TEST(test_release_of_an_unheld_device_frees_its_group) {
        T t;
        char **also = NULL;

        t_setup(&t);
        t_policy(&t, "[ { \"mode\": \"wakeup\" }, { \"match\": { \"device\": \"" PCI "\" }, \"mode\": \"kernel\" } ]");
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI), 0);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        expect_state(&t, PCI, "kernel", "", NULL);
        expect_state(&t, PCI2, "armed", "", NULL);

        /* the VM wants PCI, which vfiopmd does not hold: the group is still held through PCI2 */
        ck_assert_int_eq(manager_release(t.m, PCI, &also), 0);
        expect_list(also, PCI2);
        expect_state(&t, PCI, "kernel", "", NULL);
        expect_state(&t, PCI2, "released", "group", PCI);
        ck_assert_int_eq(fake_kernel_open_fds_of(t.k, FAKE_FD_GROUP), 0);
        ck_assert_int_eq(manager_claim(t.m, PCI, &also), 0);
        expect_list(also, PCI2);
        expect_state(&t, PCI2, "armed", "", NULL);

        /* nothing of the group held: NotHeld, as before */
        t_policy(&t, "{ \"mode\": \"kernel\" }");
        ck_assert_int_eq(manager_release(t.m, PCI, &also), -ENOTCONN);
        expect_state(&t, PCI2, "kernel", "", NULL);
        t_teardown(&t);
}
END_TEST

/* ---- reservations -------------------------------------------------------------------------- */

START_TEST(test_reservation) {
        T t;
        char **also = NULL;

        t_setup(&t);
        /* no device at all, or no device name: NoSuchDevice */
        ck_assert_int_eq(manager_release(t.m, "0000:00:1f.7", NULL), -ENODEV);
        ck_assert_int_eq(manager_release(t.m, "../../devices", NULL), -ENODEV);
        ck_assert_int_eq(manager_release(t.m, "", NULL), -ENODEV);
        ck_assert_int_eq(manager_claim(t.m, "0000:00:1f.7", NULL), -ENODEV);
        expect_record(&t, "0000:00:1f.7", "");

        /* present, no driver: reserved, in the table as released, whatever its mode */
        ck_assert_int_eq(manager_release(t.m, FREE, &also), 0);
        expect_list(also, "");
        expect_state(&t, FREE, "released", "reservation", FREE);
        ck_assert(!managed_device_on_vfio(manager_find_device(t.m, FREE)));
        ck_assert_ptr_null(managed_device_info(manager_find_device(t.m, FREE))->driver);
        expect_record(&t, FREE, "reason=reservation\nby=" FREE "\n");

        /* libvirt binds it to vfio-pci: it stays released, nothing opens it */
        fake_kernel_clear_calls(t.k);
        pci_bind_vfio(&t, FREE, 3);
        ck_assert_int_eq(manager_add_device(t.m, "pci", FREE), 0);
        expect_state(&t, FREE, "released", "reservation", FREE);
        ck_assert(managed_device_on_vfio(manager_find_device(t.m, FREE)));
        ck_assert_str_eq(managed_device_info(manager_find_device(t.m, FREE))->driver, "vfio-pci");
        ck_assert_int_eq(fake_kernel_ncalls(t.k), 0);

        /* the VM is gone and libvirt gave it back to no driver: still released until Claim */
        pci_unbind(&t, FREE);
        manager_remove_device(t.m, FREE);
        expect_state(&t, FREE, "released", "reservation", FREE);
        ck_assert(!managed_device_on_vfio(manager_find_device(t.m, FREE)));
        /* Claim ends the reservation: off VFIO, the device leaves the table */
        ck_assert_int_eq(manager_claim(t.m, FREE, NULL), 0);
        ck_assert_ptr_null(manager_find_device(t.m, FREE));
        expect_record(&t, FREE, "");
        ck_assert_int_eq(manager_claim(t.m, FREE, NULL), -ENODEV);

        /* reserved, then on vfio-pci, then claimed: held like any other */
        ck_assert_int_eq(manager_release(t.m, FREE, NULL), 0);
        pci_bind_vfio(&t, FREE, 3);
        manager_change_device(t.m, "pci", FREE);        /* the bind's udev event does as well */
        expect_state(&t, FREE, "released", "reservation", FREE);
        ck_assert_int_eq(manager_claim(t.m, FREE, NULL), 0);
        expect_state(&t, FREE, "armed", "", NULL);
        ck_assert(fake_kernel_device_open(t.k, FREE));
        expect_record(&t, FREE, "");
        t_teardown(&t);
}
END_TEST

START_TEST(test_reservation_of_a_device_that_goes) {
        T t;

        t_setup(&t);
        ck_assert_int_eq(manager_release(t.m, FREE, NULL), 0);
        /* hot-unplugged while reserved: out of the table, the reservation kept until Claim */
        ck_assert_int_eq(unlinkat(t.sysfs->fd, "bus/pci/devices/" FREE, 0), 0);
        manager_change_device(t.m, "pci", FREE);
        ck_assert_ptr_null(manager_find_device(t.m, FREE));
        expect_record(&t, FREE, "reason=reservation\nby=" FREE "\n");
        /* Claim of a reservation whose device never (re)appeared drops it */
        ck_assert_int_eq(manager_claim(t.m, FREE, NULL), 0);
        expect_record(&t, FREE, "");
        ck_assert_int_eq(manager_claim(t.m, FREE, NULL), -ENODEV);
        t_teardown(&t);
}
END_TEST

/* ---- releases across a restart --------------------------------------------------------------- */

START_TEST(test_releases_survive_a_restart) {
        T t;

        t_setup(&t);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI), 0);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        ck_assert_int_eq(manager_add_device(t.m, "platform", SIM), 0);
        ck_assert_int_eq(manager_release(t.m, PCI2, NULL), 0);
        ck_assert_int_eq(manager_release(t.m, FREE, NULL), 0);
        /* a kernel request is not kept: the device is leaving VFIO */
        ck_assert_int_eq(fake_kernel_request(t.k, SIM), 0);
        ck_assert_int_eq(pm_device_handle_request(pm_of(&t, SIM)), 0);
        expect_state(&t, SIM, "released", "request", NULL);
        expect_record(&t, SIM, "");

        /* the daemon stops (SIGTERM, SIGKILL: the same for the records) and a new one starts */
        t.m = manager_free(t.m);
        ck_assert_int_eq(fake_kernel_open_fds(t.k), 0);
        t_manager_new(&t);
        ck_assert_int_eq(manager_reload(t.m), 0);
        fake_kernel_clear_calls(t.k);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI), 0);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        ck_assert_int_eq(manager_add_device(t.m, "platform", SIM), 0);
        manager_load_releases(t.m);
        /* nothing of group 12 was opened; the sim, released by the kernel's request, is armed */
        expect_state(&t, PCI, "released", "group", PCI2);
        expect_state(&t, PCI2, "released", "release", PCI2);
        expect_state(&t, FREE, "released", "reservation", FREE);
        expect_state(&t, SIM, "armed", "", NULL);
        ck_assert(!fake_kernel_device_open(t.k, PCI) && !fake_kernel_device_open(t.k, PCI2));
        ck_assert_int_eq(fake_kernel_open_fds_of(t.k, FAKE_FD_GROUP), 1);

        ck_assert_int_eq(manager_claim(t.m, PCI2, NULL), 0);
        expect_state(&t, PCI, "armed", "", NULL);
        expect_state(&t, PCI2, "armed", "", NULL);
        ck_assert_int_eq(manager_claim(t.m, FREE, NULL), 0);
        ck_assert_ptr_null(manager_find_device(t.m, FREE));
        {
                char *left = record_of(&t, PCI), *left2 = record_of(&t, PCI2), *left3 = record_of(&t, FREE);

                ck_assert_str_eq(left, "");
                ck_assert_str_eq(left2, "");
                ck_assert_str_eq(left3, "");
                free(left);
                free(left2);
                free(left3);
        }
        t_teardown(&t);
}
END_TEST

START_TEST(test_bad_records_are_ignored) {
        T t;

        t_setup(&t);
        mkdirs(t.root->fd, RELEASE_DIR);
        ck_assert_int_eq(fixture_write_string(t.root->fd, RELEASE_DIR "/" PCI, "reason=request\nby=" PCI "\n"), 0);
        ck_assert_int_eq(fixture_write_string(t.root->fd, RELEASE_DIR "/" PCI2, "reason=group\n"), 0);
        ck_assert_int_eq(fixture_write_string(t.root->fd, RELEASE_DIR "/" SIM, "garbage"), 0);
        ck_assert_int_eq(fixture_write_string(t.root->fd, RELEASE_DIR "/.#" FREE ".0123", "reason=release\nby=x\n"), 0);
        manager_load_releases(t.m);
        ck_assert_ptr_null(manager_find_device(t.m, FREE));
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI), 0);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        ck_assert_int_eq(manager_add_device(t.m, "platform", SIM), 0);
        expect_state(&t, PCI, "armed", "", NULL);
        expect_state(&t, PCI2, "armed", "", NULL);
        expect_state(&t, SIM, "armed", "", NULL);
        t_teardown(&t);
}
END_TEST

/* What review found: each of these failed before its fix (seen with a scratch copy of this suite). */

static unsigned changed_count;
static char changed_last[64];

static void count_changed(void *userdata, ManagedDevice *d) {
        changed_count++;
        (void) snprintf(changed_last, sizeof(changed_last), "%s", managed_device_info(d)->name);
}

START_TEST(test_release_reason_change_is_announced) {
        T t;

        t_setup(&t);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI), 0);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        manager_set_hooks(t.m, &(ManagerHooks) { .device_changed = count_changed });
        ck_assert_int_eq(manager_release(t.m, PCI, NULL), 0);
        expect_state(&t, PCI2, "released", "group", PCI);
        /* libvirt releases the domain's second device of the group: no state moves, the reason does */
        changed_count = 0;
        ck_assert_int_eq(manager_release(t.m, PCI2, NULL), 0);
        expect_state(&t, PCI2, "released", "release", PCI2);
        ck_assert_uint_ge(changed_count, 1);
        ck_assert_str_eq(changed_last, PCI2);
        expect_record(&t, PCI2, "reason=release\nby=" PCI2 "\n");
        manager_set_hooks(t.m, NULL);
        t_teardown(&t);
}
END_TEST

START_TEST(test_released_by_is_a_releases_only) {
        T t;

        t_setup(&t);
        t_policy(&t, "{ \"mode\": \"kernel\" }");
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI), 0);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        ck_assert_int_eq(manager_release(t.m, PCI, NULL), -ENOTCONN);
        /* held later, then the kernel asks for it: a request, released by no Release */
        t_policy(&t, "{ \"mode\": \"wakeup\" }");
        expect_state(&t, PCI, "armed", "", NULL);
        ck_assert_int_eq(fake_kernel_request(t.k, PCI), 0);
        ck_assert_int_eq(pm_device_handle_request(pm_of(&t, PCI)), 0);
        expect_state(&t, PCI, "released", "request", NULL);
        t_teardown(&t);
}
END_TEST

START_TEST(test_claim_ends_the_release_of_an_absent_sibling) {
        T t;
        char **also = NULL;

        t_setup(&t);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI), 0);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        ck_assert_int_eq(manager_release(t.m, PCI, NULL), 0);
        /* the sibling is unplugged while released: out of the table, its record kept */
        ck_assert_int_eq(unlinkat(t.sysfs->fd, "bus/pci/devices/" PCI2, 0), 0);
        manager_remove_device(t.m, PCI2);
        ck_assert_ptr_null(manager_find_device(t.m, PCI2));
        expect_record(&t, PCI2, "reason=group\nby=" PCI "\n");
        ck_assert_int_eq(manager_claim(t.m, PCI, &also), 0);
        expect_list(also, "");
        expect_record(&t, PCI2, "");
        /* back: held as any device, nothing keeps it released */
        ck_assert_int_eq(symlinkat("../../../devices/pci0000:00/" PCI2, t.sysfs->fd, "bus/pci/devices/" PCI2), 0);
        ck_assert_int_eq(manager_add_device(t.m, "pci", PCI2), 0);
        expect_state(&t, PCI2, "armed", "", NULL);

        /* only a sibling's record, and the claimed name absent too: still ends it */
        ck_assert_int_eq(manager_release(t.m, PCI2, NULL), 0);
        ck_assert_int_eq(unlinkat(t.sysfs->fd, "bus/pci/devices/" PCI, 0), 0);
        ck_assert_int_eq(unlinkat(t.sysfs->fd, "bus/pci/devices/" PCI2, 0), 0);
        manager_remove_device(t.m, PCI);
        manager_remove_device(t.m, PCI2);
        ck_assert_int_eq(manager_claim(t.m, PCI2, NULL), 0);
        expect_record(&t, PCI, "");
        expect_record(&t, PCI2, "");
        ck_assert_int_eq(manager_claim(t.m, PCI2, NULL), -ENODEV);
        t_teardown(&t);
}
END_TEST

START_TEST(test_reservation_listed_again_after_a_replug) {
        T t;

        t_setup(&t);
        ck_assert_int_eq(manager_release(t.m, FREE, NULL), 0);
        ck_assert_int_eq(unlinkat(t.sysfs->fd, "bus/pci/devices/" FREE, 0), 0);
        manager_change_device(t.m, "pci", FREE);
        ck_assert_ptr_null(manager_find_device(t.m, FREE));
        /* it comes back on no driver: listed, released, as reserved */
        ck_assert_int_eq(symlinkat("../../../devices/pci0000:00/" FREE, t.sysfs->fd, "bus/pci/devices/" FREE), 0);
        manager_change_device(t.m, "pci", FREE);
        expect_state(&t, FREE, "released", "reservation", FREE);
        ck_assert_int_eq(manager_claim(t.m, FREE, NULL), 0);
        ck_assert_ptr_null(manager_find_device(t.m, FREE));
        expect_record(&t, FREE, "");
        t_teardown(&t);
}
END_TEST

Suite *manager_suite(void) {
        Suite *s = suite_create("manager");
        TCase *tc = tcase_create("handoff");

        tcase_add_test(tc, test_release_frees_the_group);
        tcase_add_test(tc, test_release_of_an_unheld_device_frees_its_group);
        tcase_add_test(tc, test_reservation);
        tcase_add_test(tc, test_reservation_of_a_device_that_goes);
        tcase_add_test(tc, test_releases_survive_a_restart);
        tcase_add_test(tc, test_bad_records_are_ignored);
        tcase_add_test(tc, test_release_reason_change_is_announced);
        tcase_add_test(tc, test_released_by_is_a_releases_only);
        tcase_add_test(tc, test_claim_ends_the_release_of_an_absent_sibling);
        tcase_add_test(tc, test_reservation_listed_again_after_a_replug);
        tcase_add_test(tc, test_energy_read_once_a_batch);
        suite_add_tcase(s, tc);
        return s;
}
