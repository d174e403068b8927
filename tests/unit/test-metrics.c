#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "promtool-helpers.h"
#include "suites.h"

static CtlDevice device(char *name, char *vendor, char *state, char *mode, bool estimated) {
        return (CtlDevice) {
                .name = name, .vendor = vendor, .device_id = (char *) "10d3", .class = (char *) "020000",
                .driver = (char *) "vfio-pci", .iommu_group = (char *) "12", .mode = mode, .state = state,
                .wakes = 7, .arms = 8, .low_power_usec = 2500000, .kernel_suspended_since_seen_msec = 61500,
                .energy_saved_joules = estimated ? 1234.5 : 0, .energy_estimated = estimated,
        };
}

static void expect_line(const char *text, const char *line) {
        char want[512];

        (void) snprintf(want, sizeof(want), "\n%s\n", line);
        ck_assert_msg(strstr(text, want), "no line '%s' in:\n%s", line, text);
}

START_TEST(test_format) {
        CtlDevice devices[] = {
                device((char *) "0000:01:00.0", (char *) "8086", (char *) "armed", (char *) "wakeup", true),
                device((char *) "vfio-pm-sim.0", (char *) "", (char *) "kernel", (char *) "kernel", false),
        };
        char *errors[] = { (char *) "/etc/vfiopmd/policy.d/60-bad.json: syntax error", NULL };
        CtlStatus s = { .devices = devices, .n_devices = 2, .version = (char *) "0.1.0", .policy_errors = errors };
        char *text = NULL;

        ck_assert_int_eq(metrics_format(&s, &text), 0);
        ck_assert_msg(strncmp(text, "# HELP vfiopmd_build_info ", 26) == 0, "%s", text);
        expect_line(text, "# TYPE vfiopmd_build_info gauge");
        expect_line(text, "vfiopmd_build_info{version=\"0.1.0\"} 1");
        expect_line(text, "vfiopmd_policy_errors 1");
        expect_line(text, "vfiopmd_device_info{name=\"0000:01:00.0\",vendor=\"8086\",device_id=\"10d3\",class=\"020000\","
                          "driver=\"vfio-pci\",iommu_group=\"12\"} 1");
        /* a state set: one series a state, 1 for the device's */
        expect_line(text, "vfiopmd_device_state{name=\"0000:01:00.0\",state=\"armed\"} 1");
        expect_line(text, "vfiopmd_device_state{name=\"0000:01:00.0\",state=\"kernel\"} 0");
        expect_line(text, "vfiopmd_device_state{name=\"vfio-pm-sim.0\",state=\"kernel\"} 1");
        expect_line(text, "vfiopmd_device_state{name=\"vfio-pm-sim.0\",state=\"error\"} 0");
        expect_line(text, "vfiopmd_device_mode{name=\"0000:01:00.0\",mode=\"wakeup\"} 1");
        expect_line(text, "# TYPE vfiopmd_wakeups_total counter");
        expect_line(text, "vfiopmd_wakeups_total{name=\"0000:01:00.0\"} 7");
        expect_line(text, "vfiopmd_arms_total{name=\"vfio-pm-sim.0\"} 8");
        expect_line(text, "vfiopmd_armed_seconds_total{name=\"0000:01:00.0\"} 2.500000");
        expect_line(text, "vfiopmd_low_power_seconds_total{name=\"0000:01:00.0\"} 61.500");
        /* energy only where the watts are declared */
        expect_line(text, "vfiopmd_energy_saved_joules_total{name=\"0000:01:00.0\"} 1234.500000");
        ck_assert_msg(!strstr(text, "vfiopmd_energy_saved_joules_total{name=\"vfio-pm-sim.0\"}"), "%s", text);
        /* base units, no timestamps: every sample line is "name{labels} value" */
        for (char *l = text; *l; l = strchr(l, '\n') + 1) {
                char *eol = strchr(l, '\n'), *after;

                ck_assert_ptr_nonnull(eol);
                if (*l == '#')
                        continue;
                *eol = 0;
                after = strchr(l, '}') ? strchr(l, '}') + 1 : strchr(l, ' ');
                ck_assert_msg(after && after[0] == ' ' && !strchr(after + 1, ' '), "not name{labels} value: %s", l);
                *eol = '\n';
        }
        expect_promtool_ok(text);
        free(text);
}
END_TEST

/* Label values escaped as the format says: backslash, double quote, line feed. */
START_TEST(test_escaping) {
        CtlDevice devices[] = {
                device((char *) "we\\ird\"na\nme", (char *) "8086", (char *) "armed", (char *) "wakeup", true),
        };
        CtlStatus s = { .devices = devices, .n_devices = 1 };
        char *text = NULL;

        ck_assert_int_eq(metrics_format(&s, &text), 0);
        expect_line(text, "vfiopmd_build_info{version=\"unknown\"} 1");
        expect_line(text, "vfiopmd_policy_errors 0");
        expect_line(text, "vfiopmd_wakeups_total{name=\"we\\\\ird\\\"na\\nme\"} 7");
        expect_promtool_ok(text);
        free(text);
}
END_TEST

/* No devices: the families are there, without series; still valid. */
START_TEST(test_no_devices) {
        CtlStatus s = { .version = (char *) "0.1.0" };
        char *text = NULL;

        ck_assert_int_eq(metrics_format(&s, &text), 0);
        expect_line(text, "# TYPE vfiopmd_device_state gauge");
        ck_assert_ptr_null(strstr(text, "{name="));
        expect_promtool_ok(text);
        free(text);
}
END_TEST

Suite *metrics_suite(void) {
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("metrics");

        tcase_add_test(tc, test_format);
        tcase_add_test(tc, test_escaping);
        tcase_add_test(tc, test_no_devices);
        suite_add_tcase(s, tc);
        return s;
}
