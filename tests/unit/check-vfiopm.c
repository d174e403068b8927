#include <stdlib.h>

#include "suites.h"

/* Add a suite here (suites.h) and its test-MODULE[-CONCEPT].c to Makefile.am. CK_RUN_SUITE=sysfs and
 * CK_RUN_CASE=read run a part; CK_FORK=no eases debugging. */
static Suite *(*const suites[])(void) = {
        bus_suite,
        bus_hostile_suite,
        bus_flood_suite,
        ctl_suite,
        device_suite,
        device_table_suite,
        domain_xml_suite,
        energy_suite,
        fd_util_suite,
        fdstore_suite,
        held_record_suite,
        fileio_suite,
        log_suite,
        manager_suite,
        manager_held_suite,
        metrics_suite,
        pm_suite,
        pm_flap_suite,
        pm_handoff_suite,
        pm_policy_suite,
        pm_record_suite,
        pm_table_suite,
        policy_suite,
        policy_file_suite,
        policy_store_suite,
        power_sysfs_suite,
        strv_suite,
        sysfs_suite,
        time_util_suite,
        udev_monitor_suite,
        utf8_suite,
        vfio_suite,
        vfio_adopt_suite,
        vfio_eventfds_suite,
};

int main(void) {
        SRunner *sr = srunner_create(NULL);
        int failed;

        for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
                srunner_add_suite(sr, suites[i]());

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
