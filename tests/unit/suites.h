#pragma once

#include <check.h>

/* One suite per daemon module, or per concept where a module's tests are many (pm, vfio, bus),
 * each in tests/unit/test-MODULE[-CONCEPT].c; check-vfiopm.c runs them all. */
Suite *bus_suite(void);
Suite *bus_hostile_suite(void);
Suite *bus_flood_suite(void);
Suite *ctl_suite(void);
Suite *device_suite(void);
Suite *device_table_suite(void);
Suite *domain_xml_suite(void);
Suite *energy_suite(void);
Suite *fd_util_suite(void);
Suite *fdstore_suite(void);
Suite *held_record_suite(void);
Suite *fileio_suite(void);
Suite *log_suite(void);
Suite *manager_suite(void);
Suite *manager_held_suite(void);
Suite *metrics_suite(void);
Suite *pm_suite(void);
Suite *pm_flap_suite(void);
Suite *pm_handoff_suite(void);
Suite *pm_policy_suite(void);
Suite *pm_record_suite(void);
Suite *pm_table_suite(void);
Suite *policy_suite(void);
Suite *policy_file_suite(void);
Suite *policy_store_suite(void);
Suite *power_sysfs_suite(void);
Suite *strv_suite(void);
Suite *sysfs_suite(void);
Suite *time_util_suite(void);
Suite *udev_monitor_suite(void);
Suite *utf8_suite(void);
Suite *vfio_suite(void);
Suite *vfio_adopt_suite(void);
Suite *vfio_eventfds_suite(void);
