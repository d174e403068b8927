#include <errno.h>
#include <string.h>

#include "device.h"
#include "fixture.h"
#include "suites.h"

static int sysfs_fixture(void) {
        int fd = -EBADF;

        ck_assert_int_eq(fixture_open("sysfs", &fd), 0);
        return fd;
}

START_TEST(test_info_pci) {
        _cleanup_close_ int root = sysfs_fixture();
        _cleanup_(device_info_freep) DeviceInfo *i = NULL;
        DeviceFacts f;

        ck_assert_int_eq(device_info_read(root, "pci", "0000:00:03.0", &i), 0);
        ck_assert_str_eq(i->name, "0000:00:03.0");
        ck_assert_str_eq(i->bus, "pci");
        ck_assert_str_eq(i->vendor, "8086");
        ck_assert_str_eq(i->device_id, "10d3");
        ck_assert_str_eq(i->subsystem_vendor, "8086");
        ck_assert_str_eq(i->subsystem_device, "a01f");
        ck_assert_str_eq(i->class, "020000");
        ck_assert_str_eq(i->driver, "vfio-pci");
        ck_assert_int_eq(i->iommu_group, 12);

        device_info_facts(i, &f);
        ck_assert_ptr_eq(f.name, i->name);
        ck_assert_ptr_eq(f.vendor, i->vendor);
        ck_assert_ptr_eq(f.class, i->class);
        ck_assert_ptr_eq(f.driver, i->driver);
        ck_assert_int_eq(f.iommu_group, 12);
}
END_TEST

START_TEST(test_info_unbound) {
        _cleanup_close_ int root = sysfs_fixture();
        _cleanup_(device_info_freep) DeviceInfo *i = NULL;

        ck_assert_int_eq(device_info_read(root, "pci", "0000:00:02.0", &i), 0);
        ck_assert_ptr_null(i->driver);
        ck_assert_int_eq(i->iommu_group, 11);
        ck_assert(!device_is_vfio(root, "pci", "0000:00:02.0"));
}
END_TEST

START_TEST(test_info_platform) {
        _cleanup_close_ int root = sysfs_fixture();
        _cleanup_(device_info_freep) DeviceInfo *i = NULL;

        /* a platform device has no vendor, device or class: NULL, so vendor rules skip it */
        ck_assert_int_eq(device_info_read(root, "platform", "vfio-pm-sim.0", &i), 0);
        ck_assert_ptr_null(i->vendor);
        ck_assert_ptr_null(i->device_id);
        ck_assert_ptr_null(i->class);
        ck_assert_str_eq(i->driver, "vfio-pm-sim");
        ck_assert_int_eq(i->iommu_group, 13);
        ck_assert(device_is_vfio(root, "platform", "vfio-pm-sim.0"));
        ck_assert(device_is_vfio(root, "pci", "0000:00:03.0"));
}
END_TEST

START_TEST(test_info_bad_names) {
        _cleanup_close_ int root = sysfs_fixture();
        DeviceInfo *i = NULL;

        ck_assert_int_eq(device_info_read(root, "pci", "0000:00:09.0", &i), -ENODEV);
        ck_assert_int_eq(device_info_read(root, "pci", "../pci", &i), -EINVAL);
        ck_assert_int_eq(device_info_read(root, "pci", "..", &i), -EINVAL);
        ck_assert_int_eq(device_info_read(root, "pci", "", &i), -EINVAL);
        ck_assert_int_eq(device_info_read(root, "../bus", "x", &i), -EINVAL);
        ck_assert_ptr_null(i);
        ck_assert(!device_is_vfio(root, "pci", "../../devices"));
}
END_TEST

START_TEST(test_info_bad_values) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        DeviceInfo *i = NULL;

        ck_assert_int_eq(fixture_tmp_new("sysfs", &t), 0);
        /* a vendor id wider than 4 digits is no PCI id: refuse rather than truncate */
        ck_assert_int_eq(fixture_write_string(t->fd, "devices/pci0000:00/0000:00:03.0/vendor", "0x18086\n"), 0);
        ck_assert_int_eq(device_info_read(t->fd, "pci", "0000:00:03.0", &i), -ERANGE);
        ck_assert_int_eq(fixture_write_string(t->fd, "devices/pci0000:00/0000:00:03.0/vendor", "garbage\n"), 0);
        ck_assert_int_eq(device_info_read(t->fd, "pci", "0000:00:03.0", &i), -EINVAL);
        ck_assert_ptr_null(i);
}
END_TEST

START_TEST(test_power) {
        _cleanup_close_ int root = sysfs_fixture(), pci = -EBADF, sim = -EBADF;
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_close_ int tpci = -EBADF;
        DevicePowerAttrs a = DEVICE_POWER_ATTRS_NULL, b = DEVICE_POWER_ATTRS_NULL;
        char buf[DEVICE_RUNTIME_STATUS_MAX];

        ck_assert_int_eq(sysfs_open_dir(root, "bus/pci/devices/0000:00:03.0", &pci), 0);
        ck_assert_int_eq(device_power_state_read(&a, pci), DEVICE_POWER_D3HOT);
        ck_assert_str_eq(device_runtime_status_read(&a, pci, buf), "suspended");
        ck_assert_int_ge(a.power_state.fd, 0);
        ck_assert_int_ge(a.runtime_status.fd, 0);
        device_power_attrs_close(&a);
        ck_assert_int_eq(a.power_state.fd, -EBADF);

        /* read again through the fds kept open: what the attribute holds now */
        ck_assert_int_eq(fixture_tmp_new("sysfs", &t), 0);
        ck_assert_int_eq(sysfs_open_dir(t->fd, "bus/pci/devices/0000:00:03.0", &tpci), 0);
        ck_assert_int_eq(device_power_state_read(&b, tpci), DEVICE_POWER_D3HOT);
        ck_assert_int_eq(fixture_write_string(t->fd, "devices/pci0000:00/0000:00:03.0/power_state", "D1\n"), 0);
        ck_assert_int_eq(fixture_write_string(t->fd, "devices/pci0000:00/0000:00:03.0/power/runtime_status", "active\n"), 0);
        ck_assert_int_eq(device_power_state_read(&b, tpci), DEVICE_POWER_UNKNOWN);
        ck_assert_str_eq(device_runtime_status_read(&b, tpci, buf), "active");
        ck_assert_int_eq(fixture_write_string(t->fd, "devices/pci0000:00/0000:00:03.0/power_state", "D0\n"), 0);
        ck_assert_int_eq(device_power_state_read(&b, tpci), DEVICE_POWER_D0);
        /* longer than any status: unknown, not cut */
        ck_assert_int_eq(fixture_write_string(t->fd, "devices/pci0000:00/0000:00:03.0/power/runtime_status",
                                              "suspended-and-then-some\n"), 0);
        ck_assert_str_eq(device_runtime_status_read(&b, tpci, buf), "unknown");
        device_power_attrs_close(&b);

        /* the simulated device of the fixture has no power_state attribute */
        ck_assert_int_eq(sysfs_open_dir(root, "bus/platform/devices/vfio-pm-sim.0", &sim), 0);
        ck_assert_int_eq(device_power_state_read(&a, sim), DEVICE_POWER_UNKNOWN);
        ck_assert_int_eq(a.power_state.fd, -ENOENT);
        device_power_attrs_close(&a);
}
END_TEST

START_TEST(test_power_state_strings) {
        for (int s = 0; s < _DEVICE_POWER_MAX; s++)
                ck_assert_int_eq(device_power_state_from_string(device_power_state_to_string(s)), s);
        ck_assert_int_eq(device_power_state_from_string("d3hot"), _DEVICE_POWER_INVALID);
        ck_assert_ptr_null(device_power_state_to_string(_DEVICE_POWER_MAX));
}
END_TEST

Suite *device_suite(void) {
        Suite *s = suite_create("device");
        TCase *tc = tcase_create("device");

        tcase_add_test(tc, test_info_pci);
        tcase_add_test(tc, test_info_unbound);
        tcase_add_test(tc, test_info_platform);
        tcase_add_test(tc, test_info_bad_names);
        tcase_add_test(tc, test_info_bad_values);
        tcase_add_test(tc, test_power);
        tcase_add_test(tc, test_power_state_strings);
        suite_add_tcase(s, tc);
        return s;
}
