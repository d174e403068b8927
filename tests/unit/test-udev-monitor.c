#include <errno.h>
#include <stdlib.h>

#include "suites.h"
#include "udev-monitor.h"

START_TEST(test_parent_name) {
        static const struct {
                const char *devpath;
                const char *name;
        } good[] = {
                { "/devices/pci0000:00/0000:00:01.0/vfio-dev/vfio0", "0000:00:01.0" },
                { "/devices/pci0000:00/0000:00:1c.0/0000:01:00.0/vfio-dev/vfio12", "0000:01:00.0" },
                { "/devices/platform/vfio-pm-sim.3/vfio-dev/vfio7", "vfio-pm-sim.3" },
        };
        static const char *const bad[] = {
                "/devices/pci0000:00/0000:00:01.0",
                "/devices/pci0000:00/0000:00:01.0/vfio-dev",
                "/devices/pci0000:00/0000:00:01.0/net/eth0",
                "/vfio-dev/vfio0",
                "vfio0",
                "",
        };

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                char *name = NULL;

                ck_assert_int_eq(vfio_dev_parent_name(good[i].devpath, &name), 0);
                ck_assert_str_eq(name, good[i].name);
                free(name);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *name = NULL;

                ck_assert_msg(vfio_dev_parent_name(bad[i], &name) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_null(name);
        }
        ck_assert_int_eq(vfio_dev_parent_name(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_event_strings) {
        ck_assert_str_eq(device_event_to_string(DEVICE_EVENT_VFIO_ADD), "vfio-add");
        ck_assert_str_eq(device_event_to_string(DEVICE_EVENT_VFIO_REMOVE), "vfio-remove");
        ck_assert_str_eq(device_event_to_string(DEVICE_EVENT_CHANGE), "change");
        ck_assert_ptr_null(device_event_to_string(_DEVICE_EVENT_MAX));
}
END_TEST

Suite *udev_monitor_suite(void) {
        Suite *s = suite_create("udev-monitor");
        TCase *tc = tcase_create("udev-monitor");

        tcase_add_test(tc, test_parent_name);
        tcase_add_test(tc, test_event_strings);
        suite_add_tcase(s, tc);
        return s;
}
