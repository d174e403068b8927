/* The D-Bus API against a private dbus-daemon: the daemon side and the bus come from
 * bus-harness.h; the test is the client. Reads, SetPolicy and ResetPolicy, the signals, who may
 * change what, and the harness's fake kernel; what hostile callers send is test-bus-hostile.c. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-device.h"
#include "bus-harness.h"
#include "bus-helpers.h"
#include "bus-manager.h"
#include "fixture.h"
#include "suites.h"
#include "time-util.h"

#define NOBODY 65534

/* ---- client helpers --------------------------------------------------------------------- */

/* Processes the client connection until the signal handlers have written needle into seen, at
 * most 10 s. */
static void wait_for_text(sd_bus *bus, const char *seen, const char *needle) {
        for (int i = 0; !strstr(seen, needle) && i < 1000; i++) {
                int r = sd_bus_process(bus, NULL);

                ck_assert_int_ge(r, 0);
                if (r == 0)
                        (void) sd_bus_wait(bus, 10 * USEC_PER_MSEC);
        }
        ck_assert_msg(strstr(seen, needle), "no %s came: %s", needle, seen);
}

/* The names of the directory's entries, sorted, space-separated; "" when empty or missing. */
static void list_dir(int root_fd, const char *path, char *buf, size_t size) {
        struct dirent **names = NULL;
        _cleanup_free_ char *full = NULL;
        int n;

        buf[0] = 0;
        ck_assert_int_ge(asprintf(&full, "/proc/self/fd/%d/%s", root_fd, path), 0);
        n = scandir(full, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0)
                        (void) snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? " " : "",
                                        names[i]->d_name);
                free(names[i]);
        }
        free(names);
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(test_reads_without_devices) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *xml = NULL;
        Harness h;
        char **errors;

        harness_start(&h, &(HarnessOptions) {});

        ck_assert_int_ge(call(h.client, NULL, NULL, &reply, "ListDevices", NULL), 0);
        ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "(so)"), 0);
        ck_assert_int_eq(sd_bus_message_at_end(reply, false), 1);
        expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "GetDevice", "s", PCI_NAME);
        if (geteuid() == 0) {
                /* Release reserves a device present in sysfs (test-manager.c): here, one that is not */
                expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "Claim", "s", "0000:00:1f.7");
                expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "Release", "s", "0000:00:1f.7");
                expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "Wake", "s", PCI_NAME);
                expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "SetPolicy", "ssb", PCI_NAME, "{\"mode\":\"on\"}", 1);
                ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "Reload", NULL), 0);
        } else
                expect_error(h.client, SD_BUS_ERROR_ACCESS_DENIED, "Reload", NULL);
        expect_string(h.client, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "Version", PACKAGE_VERSION);
        errors = get_policy_errors(h.client);
        ck_assert_ptr_nonnull(errors);
        ck_assert_ptr_null(errors[0]);
        strv_free(errors);

        /* the introspection names the interface; an idle daemon answers again after all that */
        reply = sd_bus_message_unref(reply);
        ck_assert_int_ge(sd_bus_call_method(h.client, BUS_NAME, BUS_MANAGER_PATH,
                                            "org.freedesktop.DBus.Introspectable", "Introspect", NULL, &reply,
                                            NULL), 0);
        ck_assert_int_ge(sd_bus_message_read(reply, "s", &xml), 0);
        ck_assert_ptr_nonnull(strstr(xml, "org.vfiopm1.Manager"));
        ck_assert_ptr_nonnull(strstr(xml, "\"device\""));       /* the child node */
        xml = NULL;     /* borrowed from reply */

        harness_stop(&h);
}
END_TEST

START_TEST(test_device_object) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *policy = NULL;
        const char *name, *path;
        Harness h;

        harness_start(&h, &(HarnessOptions) { .with_pci = true });

        ck_assert_int_ge(call(h.client, NULL, NULL, &reply, "ListDevices", NULL), 0);
        ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "(so)"), 0);
        ck_assert_int_gt(sd_bus_message_read(reply, "(so)", &name, &path), 0);
        ck_assert_str_eq(name, PCI_NAME);
        ck_assert_str_eq(path, PCI_PATH);
        ck_assert_int_eq(sd_bus_message_at_end(reply, false), 1);
        reply = sd_bus_message_unref(reply);

        ck_assert_int_ge(call(h.client, NULL, NULL, &reply, "GetDevice", "s", PCI_NAME), 0);
        ck_assert_int_ge(sd_bus_message_read(reply, "o", &path), 0);
        ck_assert_str_eq(path, PCI_PATH);

        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Name", PCI_NAME);
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Vendor", "8086");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "DeviceId", "10d3");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Class", "020000");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Driver", "vfio-pci");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "IommuGroup", "12");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Mode", "kernel");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "kernel");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "PowerState", "D3hot");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "RuntimeStatus", "suspended");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "LastError", "");
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "KernelSuspendedMsec"), 123456);
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "Wakes"), 0);
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "Arms"), 0);
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "LowPowerUsec"), 0);
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "LastWakeRealtimeUsec"), 0);
        policy = get_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Policy");
        ck_assert_msg(strncmp(policy, "{\"mode\":{\"value\":\"kernel\",\"source\":null", 39) == 0, "%s", policy);

        /* an unknown device has no object */
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                char *s = NULL;

                ck_assert_int_lt(sd_bus_get_property_string(h.client, BUS_NAME, "/org/vfiopm1/device/nope",
                                                            BUS_DEVICE_INTERFACE, "Name", &error, &s), 0);
                ck_assert_ptr_null(s);
        }

        /* mode kernel: nothing held, nothing to release or wake; Claim has nothing to do */
        if (geteuid() == 0) {
                expect_error(h.client, BUS_ERROR_NOT_HELD, "Release", "s", PCI_NAME);
                expect_error(h.client, BUS_ERROR_NOT_HELD, "Wake", "s", PCI_NAME);
                ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "Claim", "s", PCI_NAME), 0);
        }

        harness_stop(&h);
}
END_TEST

static int on_properties_changed(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        char *seen = userdata;
        const char *interface, *name;

        if (sd_bus_message_read(msg, "s", &interface) < 0 || strcmp(interface, BUS_DEVICE_INTERFACE) != 0)
                return 0;
        /* the values are not sent (a{sv} empty for EMITS_CHANGE with values: sd-bus sends them) */
        if (sd_bus_message_enter_container(msg, 'a', "{sv}") < 0)
                return 0;
        while (sd_bus_message_enter_container(msg, 'e', "sv") > 0) {
                if (sd_bus_message_read(msg, "s", &name) < 0)
                        return 0;
                (void) snprintf(seen + strlen(seen), 128 - strlen(seen), "%s ", name);
                (void) sd_bus_message_skip(msg, "v");
                (void) sd_bus_message_exit_container(msg);
        }
        return 0;
}

START_TEST(test_set_policy) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *error = NULL, *message = NULL, *text = NULL, *policy = NULL;
        json_object *o, *match, *device, *mode;
        char seen[128] = "", listing[256];
        struct stat st;
        Harness h;

        if (geteuid() != 0)
                return;         /* the changes need root; test_access_denied covers the rest */
        harness_start(&h, &(HarnessOptions) { .with_pci = true });
        ck_assert_int_ge(sd_bus_match_signal(h.client, &slot, BUS_NAME, PCI_PATH, "org.freedesktop.DBus.Properties",
                                             "PropertiesChanged", on_properties_changed, seen), 0);

        /* invalid: the parser's message, naming the file that would have been written; no file */
        ck_assert_int_lt(call(h.client, &error, &message, NULL, "SetPolicy", "ssb", PCI_NAME, "{\"mode\": \"on\",}", 1), 0);
        ck_assert_str_eq(error, BUS_ERROR_INVALID_POLICY);
        ck_assert_msg(strncmp(message, "/run/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json:1:", 47) == 0, "%s", message);
        free(error);
        free(message);
        ck_assert_int_lt(call(h.client, &error, &message, NULL, "SetPolicy", "ssb", PCI_NAME, "{\"mode\": \"sleepy\"}", 0), 0);
        ck_assert_str_eq(error, BUS_ERROR_INVALID_POLICY);
        ck_assert_msg(strstr(message, "/etc/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json: mode: "), "%s", message);
        free(error);
        free(message);
        ck_assert_int_lt(call(h.client, &error, &message, NULL, "SetPolicy", "ssb", PCI_NAME, "[{\"mode\": \"on\"}]", 1), 0);
        ck_assert_str_eq(error, BUS_ERROR_INVALID_POLICY);
        ck_assert_msg(strstr(message, "expected one rule object"), "%s", message);
        list_dir(h.root->fd, "run/vfiopmd/policy.d", listing, sizeof(listing));
        ck_assert_str_eq(listing, "");
        list_dir(h.root->fd, "etc/vfiopmd/policy.d", listing, sizeof(listing));
        ck_assert_str_eq(listing, "");

        /* valid, with another device's match: the file matches only this device */
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "SetPolicy", "ssb", PCI_NAME,
                              "{\"match\": {\"device\": \"0000:00:02.0\"}, \"mode\": \"on\"}", 1), 0);
        list_dir(h.root->fd, "run/vfiopmd/policy.d", listing, sizeof(listing));
        ck_assert_str_eq(listing, "90-dbus-" PCI_NAME ".json");
        ck_assert_int_eq(fstatat(h.root->fd, "run/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json", &st, 0), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0644);
        text = read_text_at(h.root->fd, "run/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json");
        o = json_tokener_parse(text);
        ck_assert_msg(json_object_is_type(o, json_type_object), "%s", text);
        ck_assert(json_object_object_get_ex(o, "match", &match));
        ck_assert_int_eq(json_object_object_length(match), 1);
        ck_assert(json_object_object_get_ex(match, "device", &device));
        ck_assert_str_eq(json_object_get_string(device), PCI_NAME);
        ck_assert(json_object_object_get_ex(o, "mode", &mode));
        ck_assert_str_eq(json_object_get_string(mode), "on");
        ck_assert_int_eq(json_object_object_length(o), 2);
        json_object_put(o);

        /* reloaded: the device went on, and said so */
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Mode", "on");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "on");
        policy = get_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Policy");
        ck_assert_msg(strstr(policy, "\"source\":\"/run/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json\""), "%s", policy);
        wait_for_text(h.client, seen, "State");
        ck_assert_msg(strstr(seen, "Mode ") && strstr(seen, "State "), "PropertiesChanged: %s", seen);

        /* persistent, masked by the runtime file while it exists */
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "SetPolicy", "ssb", PCI_NAME, "{\"mode\": \"auto\", \"d3cold\": false}", 0), 0);
        list_dir(h.root->fd, "etc/vfiopmd/policy.d", listing, sizeof(listing));
        ck_assert_str_eq(listing, "90-dbus-" PCI_NAME ".json");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Mode", "on");

        /* reset: the runtime file goes, the persistent one applies (its mode is auto: the device
         * cannot be opened here, so only the mode is checked) */
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "ResetPolicy", "sb", PCI_NAME, 1), 0);
        list_dir(h.root->fd, "run/vfiopmd/policy.d", listing, sizeof(listing));
        ck_assert_str_eq(listing, "");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Mode", "auto");
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "ResetPolicy", "sb", PCI_NAME, 0), 0);
        list_dir(h.root->fd, "etc/vfiopmd/policy.d", listing, sizeof(listing));
        ck_assert_str_eq(listing, "");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Mode", "kernel");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "kernel");

        /* again: no file, no error; a device that is gone may be reset too */
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "ResetPolicy", "sb", PCI_NAME, 0), 0);
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "ResetPolicy", "sb", "0000:09:00.0", 1), 0);
        expect_error(h.client, SD_BUS_ERROR_INVALID_ARGS, "ResetPolicy", "sb", "../../etc/passwd", 1);
        expect_error(h.client, SD_BUS_ERROR_INVALID_ARGS, "ResetPolicy", "sb", ".hidden", 1);
        expect_error(h.client, SD_BUS_ERROR_INVALID_ARGS, "ResetPolicy", "sb", "", 1);

        harness_stop(&h);
}
END_TEST

/* The directory's fsync after the rename or the removal fails: the change is made all the same
 * (every reader of the directory sees it), so the reply, the file and the policy in force must
 * agree that it is: success, the reload done; only its durability across a crash is in doubt,
 * and the daemon says so in its log (issue 17). */
START_TEST(test_set_policy_dir_sync_fails) {
        _cleanup_free_ char *error = NULL, *message = NULL, *text = NULL, *policy = NULL;
        char listing[256];
        int r;
        Harness h;

        if (geteuid() != 0)
                return;         /* the changes need root */
        harness_start(&h, &(HarnessOptions) { .with_pci = true, .dir_fsync_error = EIO });

        r = call(h.client, &error, &message, NULL, "SetPolicy", "ssb", PCI_NAME, "{\"mode\": \"on\"}", 1);
        ck_assert_msg(r >= 0, "SetPolicy: %s: %s", error, message);
        text = read_text_at(h.root->fd, "run/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json");
        ck_assert_msg(strstr(text, "\"mode\":\"on\""), "%s", text);
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Mode", "on");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "on");
        policy = get_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Policy");
        ck_assert_msg(strstr(policy, "\"source\":\"/run/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json\""), "%s", policy);

        r = call(h.client, &error, &message, NULL, "ResetPolicy", "sb", PCI_NAME, 1);
        ck_assert_msg(r >= 0, "ResetPolicy: %s: %s", error, message);
        list_dir(h.root->fd, "run/vfiopmd/policy.d", listing, sizeof(listing));
        ck_assert_str_eq(listing, "");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Mode", "kernel");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "kernel");

        harness_stop(&h);
}
END_TEST

/* The kernel settles power_state after the change that moves it (runtime suspend or resume comes
 * later), and sysfs cannot be polled for it: the daemon reads it again 0.1, 1 and 5 s after each
 * change of the device and announces what moved. Here the fixture's power_state changes after the
 * device went on; nothing else happens, only the follow-up can see it. */
START_TEST(test_power_state_follow_up) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        char seen[128] = "";
        int fd;
        Harness h;

        if (geteuid() != 0)
                return;         /* SetPolicy needs root */
        harness_start(&h, &(HarnessOptions) { .with_pci = true });
        ck_assert_int_ge(sd_bus_match_signal(h.client, &slot, BUS_NAME, PCI_PATH, "org.freedesktop.DBus.Properties",
                                             "PropertiesChanged", on_properties_changed, seen), 0);
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "PowerState", "D3hot");
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "SetPolicy", "ssb", PCI_NAME, "{\"mode\": \"on\"}", 1), 0);
        wait_for_text(h.client, seen, "State");
        ck_assert_msg(!strstr(seen, "PowerState"), "PowerState announced before it moved: %s", seen);
        seen[0] = 0;

        /* the "kernel" resumes the device now */
        fd = openat(h.sysfs->fd, "devices/pci0000:00/" PCI_NAME "/power_state", O_WRONLY|O_TRUNC|O_CLOEXEC);
        ck_assert_msg(fd >= 0, "power_state: %m");
        ck_assert_int_eq(write(fd, "D0\n", 3), 3);
        ck_assert_int_eq(close(fd), 0);

        wait_for_text(h.client, seen, "PowerState");
        ck_assert_msg(!strstr(seen, "State ") || strstr(seen, "PowerState "), "%s", seen);
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "PowerState", "D0");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "on");
        harness_stop(&h);
}
END_TEST

START_TEST(test_policy_errors) {
        Harness h;
        char **errors;

        if (geteuid() != 0)
                return;         /* the changes need root; test_access_denied covers the rest */
        harness_start(&h, &(HarnessOptions) {});
        ck_assert_int_eq(fixture_write_string(h.root->fd, "etc/vfiopmd/policy.d/50-bad.json", "{\"mode\": 1}"), 0);
        errors = get_policy_errors(h.client);
        ck_assert_ptr_null(errors[0]);
        strv_free(errors);

        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "Reload", NULL), 0);
        errors = get_policy_errors(h.client);
        ck_assert_ptr_nonnull(errors[0]);
        ck_assert_msg(strncmp(errors[0], "/etc/vfiopmd/policy.d/50-bad.json: mode: ", 41) == 0, "%s", errors[0]);
        ck_assert_ptr_null(errors[1]);
        strv_free(errors);

        harness_stop(&h);
}
END_TEST

static int on_device_signal(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        char *seen = userdata;
        const char *name, *path;

        if (sd_bus_message_read(msg, "so", &name, &path) >= 0)
                (void) snprintf(seen + strlen(seen), 256 - strlen(seen), "%s %s %s;", sd_bus_message_get_member(msg),
                                name, path);
        return 0;
}

START_TEST(test_device_signals) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *added = NULL, *removed = NULL;
        _cleanup_free_ char *path = NULL;
        char seen[256] = "", expect[256];
        Harness h;

        harness_start(&h, &(HarnessOptions) {});
        ck_assert_int_ge(sd_bus_match_signal(h.client, &added, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                             "DeviceAdded", on_device_signal, seen), 0);
        ck_assert_int_ge(sd_bus_match_signal(h.client, &removed, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                             "DeviceRemoved", on_device_signal, seen), 0);
        ck_assert_int_eq(bus_device_path(SIM_NAME, &path), 0);

        ck_assert_int_eq(harness_command(&h, 'a'), 0);
        wait_for_text(h.client, seen, "DeviceAdded");
        (void) snprintf(expect, sizeof(expect), "DeviceAdded %s %s;", SIM_NAME, path);
        ck_assert_str_eq(seen, expect);
        expect_string(h.client, path, BUS_DEVICE_INTERFACE, "Vendor", "");
        expect_string(h.client, path, BUS_DEVICE_INTERFACE, "IommuGroup", "13");

        seen[0] = 0;
        ck_assert_int_eq(harness_command(&h, 'r'), 0);
        wait_for_text(h.client, seen, "DeviceRemoved");
        (void) snprintf(expect, sizeof(expect), "DeviceRemoved %s %s;", SIM_NAME, path);
        ck_assert_str_eq(seen, expect);
        expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "GetDevice", "s", SIM_NAME);

        harness_stop(&h);
}
END_TEST

/* ---- org.freedesktop.DBus.ObjectManager ------------------------------------------------- */

/* Every property of org.vfiopm1.Device (the vtable in bus-device.c). */
static const char *const device_properties[] = {
        "Name", "Vendor", "DeviceId", "Class", "Driver", "IommuGroup", "Mode", "State", "PowerState",
        "RuntimeStatus", "Wakes", "Arms", "LowPowerUsec", "KernelSuspendedMsec", "KernelSuspendedSinceSeenMsec",
        "EnergySavedJoules", "EnergyEstimated", "LastWakeRealtimeUsec",
        "ReleaseReason", "ReleasedBy", "LastError", "Policy",
};

#define N_DEVICE_PROPERTIES (sizeof(device_properties) / sizeof(device_properties[0]))

/* One a{sv} of org.vfiopm1.Device (the message at it): every property, each once; Name matches
 * path; with compare, the ones that cannot move in between are what the object's own Get says. */
static void expect_device_properties(sd_bus *bus, sd_bus_message *m, const char *path, bool compare) {
        bool seen[N_DEVICE_PROPERTIES] = {};
        _cleanup_free_ char *name = NULL;
        const char *property, *contents;

        ck_assert_int_ge(sd_bus_path_decode(path, BUS_DEVICE_PREFIX, &name), 1);
        ck_assert_int_gt(sd_bus_message_enter_container(m, 'a', "{sv}"), 0);
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                size_t i;

                ck_assert_int_ge(sd_bus_message_read(m, "s", &property), 0);
                for (i = 0; i < N_DEVICE_PROPERTIES; i++)
                        if (strcmp(property, device_properties[i]) == 0)
                                break;
                ck_assert_msg(i < N_DEVICE_PROPERTIES, "%s: unknown property %s", path, property);
                /* explicit: read on its own, never in a listing */
                ck_assert_msg(strcmp(property, "Policy") != 0, "%s: Policy in GetManagedObjects", path);
                ck_assert_msg(!seen[i], "%s: %s twice", path, property);
                seen[i] = true;
                ck_assert_int_ge(sd_bus_message_peek_type(m, NULL, &contents), 0);
                if (strcmp(contents, "s") == 0) {
                        const char *v;

                        ck_assert_int_ge(sd_bus_message_read(m, "v", "s", &v), 0);
                        if (strcmp(property, "Name") == 0)
                                ck_assert_str_eq(v, name);
                        if (compare && (strcmp(property, "State") == 0 || strcmp(property, "Mode") == 0 ||
                                        strcmp(property, "IommuGroup") == 0 || strcmp(property, "Vendor") == 0))
                                expect_string(bus, path, BUS_DEVICE_INTERFACE, property, v);
                } else if (strcmp(contents, "d") == 0) {
                        double v;

                        ck_assert_str_eq(property, "EnergySavedJoules");
                        ck_assert_int_ge(sd_bus_message_read(m, "v", "d", &v), 0);
                        ck_assert(v >= 0);
                } else if (strcmp(contents, "b") == 0) {
                        int v;

                        ck_assert_str_eq(property, "EnergyEstimated");
                        ck_assert_int_ge(sd_bus_message_read(m, "v", "b", &v), 0);
                } else {
                        uint64_t v;

                        ck_assert_str_eq(contents, "t");
                        ck_assert_int_ge(sd_bus_message_read(m, "v", "t", &v), 0);
                        if (compare && (strcmp(property, "Wakes") == 0 || strcmp(property, "Arms") == 0))
                                ck_assert_uint_eq(v, get_u64(bus, path, property));
                }
                ck_assert_int_ge(sd_bus_message_exit_container(m), 0);
        }
        ck_assert_int_ge(sd_bus_message_exit_container(m), 0);
        for (size_t i = 0; i < N_DEVICE_PROPERTIES; i++)
                ck_assert_msg(seen[i] || strcmp(device_properties[i], "Policy") == 0, "%s: no %s", path,
                              device_properties[i]);
}

static int compare_paths(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* GetManagedObjects on /org/vfiopm1: the object paths, each with org.vfiopm1.Device, sorted,
 * space-separated; each one's properties checked with expect_device_properties(). */
static void get_managed_objects(sd_bus *bus, char *buf, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char *paths[8];
        size_t n = 0;
        const char *path, *interface;

        ck_assert_msg(sd_bus_call_method(bus, BUS_NAME, BUS_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                                         "GetManagedObjects", &error, &reply, NULL) >= 0,
                      "GetManagedObjects: %s", error.message ?: "-");
        ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}"), 0);
        while (sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}") > 0) {
                bool device = false;

                ck_assert_int_ge(sd_bus_message_read(reply, "o", &path), 0);
                ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "{sa{sv}}"), 0);
                while (sd_bus_message_enter_container(reply, 'e', "sa{sv}") > 0) {
                        ck_assert_int_ge(sd_bus_message_read(reply, "s", &interface), 0);
                        if (strcmp(interface, BUS_DEVICE_INTERFACE) == 0) {
                                device = true;
                                expect_device_properties(bus, reply, path, true);
                        } else
                                ck_assert_int_ge(sd_bus_message_skip(reply, "a{sv}"), 0);
                        ck_assert_int_ge(sd_bus_message_exit_container(reply), 0);
                }
                ck_assert_int_ge(sd_bus_message_exit_container(reply), 0);
                ck_assert_int_ge(sd_bus_message_exit_container(reply), 0);
                ck_assert_msg(device, "%s: an object without %s", path, BUS_DEVICE_INTERFACE);
                ck_assert_uint_lt(n, sizeof(paths) / sizeof(paths[0]));
                paths[n++] = strdup(path);
        }
        ck_assert_int_ge(sd_bus_message_exit_container(reply), 0);
        qsort(paths, n, sizeof(char *), compare_paths);
        buf[0] = 0;
        for (size_t i = 0; i < n; i++) {
                (void) snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? " " : "", paths[i]);
                free(paths[i]);
        }
}

/* InterfacesAdded, InterfacesRemoved: "MEMBER PATH IFACE IFACE…;" (the added ones' Device
 * properties checked with expect_device_properties()). */
static int on_object_signal(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        sd_bus *bus = sd_bus_message_get_bus(msg);
        bool added = strcmp(sd_bus_message_get_member(msg), "InterfacesAdded") == 0;
        char *seen = userdata;
        const char *path, *interface;

        ck_assert_int_ge(sd_bus_message_read(msg, "o", &path), 0);
        (void) snprintf(seen + strlen(seen), 512 - strlen(seen), "%s %s", sd_bus_message_get_member(msg), path);
        if (added) {
                ck_assert_int_gt(sd_bus_message_enter_container(msg, 'a', "{sa{sv}}"), 0);
                while (sd_bus_message_enter_container(msg, 'e', "sa{sv}") > 0) {
                        ck_assert_int_ge(sd_bus_message_read(msg, "s", &interface), 0);
                        (void) snprintf(seen + strlen(seen), 512 - strlen(seen), " %s", interface);
                        /* sent as it appeared, before its first decision: Name is all that holds */
                        if (strcmp(interface, BUS_DEVICE_INTERFACE) == 0)
                                expect_device_properties(bus, msg, path, false);
                        else
                                ck_assert_int_ge(sd_bus_message_skip(msg, "a{sv}"), 0);
                        ck_assert_int_ge(sd_bus_message_exit_container(msg), 0);
                }
        } else {
                ck_assert_int_gt(sd_bus_message_enter_container(msg, 'a', "s"), 0);
                while (sd_bus_message_read(msg, "s", &interface) > 0)
                        (void) snprintf(seen + strlen(seen), 512 - strlen(seen), " %s", interface);
        }
        (void) snprintf(seen + strlen(seen), 512 - strlen(seen), ";");
        return 0;
}

START_TEST(test_object_manager) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *added = NULL, *removed = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *xml = NULL;
        char objects[512], seen[512] = "";
        Harness h;

        /* no devices: an empty answer */
        harness_start(&h, &(HarnessOptions) {});
        get_managed_objects(h.client, objects, sizeof(objects));
        ck_assert_str_eq(objects, "");
        ck_assert_int_ge(sd_bus_call_method(h.client, BUS_NAME, BUS_MANAGER_PATH,
                                            "org.freedesktop.DBus.Introspectable", "Introspect", NULL, &reply,
                                            NULL), 0);
        ck_assert_int_ge(sd_bus_message_read(reply, "s", &xml), 0);
        ck_assert_ptr_nonnull(strstr(xml, "\"org.freedesktop.DBus.ObjectManager\""));
        xml = NULL;     /* borrowed from reply */
        harness_stop(&h);

        /* both devices, with every property; then one goes and comes back */
        harness_start(&h, &(HarnessOptions) {
                .with_pci = true, .with_sim = true, .fake_kernel = true, .install_defaults = true,
                .etc_policy = "{\"mode\": \"wakeup\", \"rearm_delay_ms\": 0}",
        });
        ck_assert_int_eq(harness_command(&h, 'w'), 1);          /* Wakes 1, Arms 2 */
        get_managed_objects(h.client, objects, sizeof(objects));
        ck_assert_str_eq(objects, PCI_PATH " " SIM_PATH);
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "Wakes"), 1);

        ck_assert_int_ge(sd_bus_match_signal(h.client, &added, BUS_NAME, BUS_MANAGER_PATH,
                                             "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
                                             on_object_signal, seen), 0);
        ck_assert_int_ge(sd_bus_match_signal(h.client, &removed, BUS_NAME, BUS_MANAGER_PATH,
                                             "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
                                             on_object_signal, seen), 0);
        ck_assert_int_eq(harness_command(&h, 'r'), 0);
        wait_for_text(h.client, seen, "InterfacesRemoved");
        ck_assert_msg(strstr(seen, "InterfacesRemoved " SIM_PATH " ") && strstr(seen, " " BUS_DEVICE_INTERFACE ";"),
                      "%s", seen);
        ck_assert_msg(!strstr(seen, PCI_PATH), "%s", seen);
        get_managed_objects(h.client, objects, sizeof(objects));
        ck_assert_str_eq(objects, PCI_PATH);

        seen[0] = 0;
        ck_assert_int_eq(harness_command(&h, 'a'), 0);
        wait_for_text(h.client, seen, "InterfacesAdded");
        ck_assert_msg(strncmp(seen, "InterfacesAdded " SIM_PATH " ", strlen("InterfacesAdded " SIM_PATH " ")) == 0 &&
                      strstr(seen, " " BUS_DEVICE_INTERFACE), "%s", seen);
        ck_assert_msg(!strstr(seen, "InterfacesRemoved"), "%s", seen);
        get_managed_objects(h.client, objects, sizeof(objects));
        ck_assert_str_eq(objects, PCI_PATH " " SIM_PATH);
        harness_stop(&h);
}
END_TEST

/* ListDeviceStates: a row a device, in name order, each field what the property of its name says
 * (LowPowerUsec grows while the device is armed: at most what is read after). */
START_TEST(test_list_device_states) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *expected[] = { PCI_NAME, SIM_NAME }, *paths[] = { PCI_PATH, SIM_PATH };
        Harness h;

        harness_start(&h, &(HarnessOptions) {});
        ck_assert_int_ge(call(h.client, NULL, NULL, &reply, "ListDeviceStates", NULL), 0);
        ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "(" BUS_DEVICE_STATE_SIGNATURE ")"), 0);
        ck_assert_int_eq(sd_bus_message_at_end(reply, false), 1);
        reply = sd_bus_message_unref(reply);
        harness_stop(&h);

        harness_start(&h, &(HarnessOptions) {
                .with_pci = true, .with_sim = true, .fake_kernel = true, .install_defaults = true,
                .etc_policy = "{\"mode\": \"wakeup\", \"rearm_delay_ms\": 0}",
        });
        ck_assert_int_eq(harness_command(&h, 'w'), 1);          /* the PCI device: Wakes 1 */
        ck_assert_int_ge(call(h.client, NULL, NULL, &reply, "ListDeviceStates", NULL), 0);
        ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "(" BUS_DEVICE_STATE_SIGNATURE ")"), 0);
        for (size_t i = 0; i < 2; i++) {
                const char *field[7];
                static const char *const properties[7] = {
                        "Name", "Vendor", "DeviceId", "Class", "Mode", "State", "PowerState",
                };
                uint64_t wakes, low;
                double joules;
                int estimated;

                ck_assert_int_gt(sd_bus_message_read(reply, "(" BUS_DEVICE_STATE_SIGNATURE ")", &field[0], &field[1],
                                                     &field[2], &field[3], &field[4], &field[5], &field[6], &wakes,
                                                     &low, &joules, &estimated), 0);
                ck_assert_double_eq(joules, 0);         /* the fixture's kernel counters stand still */
                ck_assert(!estimated);                  /* and no watts are declared */
                ck_assert_str_eq(field[0], expected[i]);
                for (size_t k = 0; k < 7; k++)
                        expect_string(h.client, paths[i], BUS_DEVICE_INTERFACE, properties[k], field[k]);
                ck_assert_str_eq(field[5], "armed");
                ck_assert_uint_eq(wakes, get_u64(h.client, paths[i], "Wakes"));
                ck_assert_uint_eq(wakes, i == 0 ? 1 : 0);
                ck_assert_uint_gt(low, 0);
                ck_assert_uint_le(low, get_u64(h.client, paths[i], "LowPowerUsec"));
        }
        ck_assert_int_eq(sd_bus_message_at_end(reply, false), 1);
        harness_stop(&h);
}
END_TEST

static double get_double(sd_bus *bus, const char *path, const char *interface, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        double v = -1;

        ck_assert_int_ge(sd_bus_get_property_trivial(bus, BUS_NAME, path, interface, property, &error, 'd', &v), 0);
        return v;
}

static bool get_bool(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int v = -1;

        ck_assert_int_ge(sd_bus_get_property_trivial(bus, BUS_NAME, path, BUS_DEVICE_INTERFACE, property, &error,
                                                     'b', &v), 0);
        return v;
}

#define PCI_SUSPENDED_TIME "devices/pci0000:00/" PCI_NAME "/power/runtime_suspended_time"
#define SIM_SUSPENDED_TIME "devices/platform/" SIM_NAME "/power/runtime_suspended_time"

/* EnergySavedJoules: the kernel's runtime_suspended_time since the daemon first saw the device
 * (the fixture's 123456 ms then) × (power_active_w − power_low_w); without both watts 0 and not
 * an estimate, although the time is counted; the Manager's is the sum; a device added again
 * starts over. A reload with other watts
 * counts at them from then on, and keeps what was saved. */
START_TEST(test_energy_saved) {
        Harness h;

        harness_start(&h, &(HarnessOptions) {
                .with_pci = true, .with_sim = true, .install_defaults = true,
                .etc_policy = "{ \"match\": { \"device\": \"" PCI_NAME "\" }, \"power_active_w\": 12.5, "
                              "\"power_low_w\": 2.5 }",
        });
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "KernelSuspendedMsec"), 123456);
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "KernelSuspendedSinceSeenMsec"), 0);
        ck_assert_double_eq(get_double(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "EnergySavedJoules"), 0);
        ck_assert(get_bool(h.client, PCI_PATH, "EnergyEstimated"));
        ck_assert(!get_bool(h.client, SIM_PATH, "EnergyEstimated"));

        /* 6 s suspended at 10 W saved; the simulated device 60 s, without watts */
        ck_assert_int_eq(fixture_write_string(h.sysfs->fd, PCI_SUSPENDED_TIME, "129456\n"), 0);
        ck_assert_int_eq(fixture_write_string(h.sysfs->fd, SIM_SUSPENDED_TIME, "60042\n"), 0);
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "KernelSuspendedSinceSeenMsec"), 6000);
        ck_assert_double_eq_tol(get_double(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "EnergySavedJoules"), 60, 1e-9);
        ck_assert_uint_eq(get_u64(h.client, SIM_PATH, "KernelSuspendedSinceSeenMsec"), 60000);
        ck_assert_double_eq(get_double(h.client, SIM_PATH, BUS_DEVICE_INTERFACE, "EnergySavedJoules"), 0);
        ck_assert_double_eq_tol(get_double(h.client, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "EnergySavedJoules"),
                                60, 1e-9);

        /* a device added again is seen anew: its count starts over from the kernel's value then */
        ck_assert_int_eq(harness_command(&h, 'r'), 0);
        ck_assert_int_eq(harness_command(&h, 'a'), 0);
        ck_assert_uint_eq(get_u64(h.client, SIM_PATH, "KernelSuspendedSinceSeenMsec"), 0);
        ck_assert_int_eq(fixture_write_string(h.sysfs->fd, SIM_SUSPENDED_TIME, "61042\n"), 0);
        ck_assert_uint_eq(get_u64(h.client, SIM_PATH, "KernelSuspendedSinceSeenMsec"), 1000);

        /* 100 W saved from the reload on: 2 s more is 200 J more (Reload needs root) */
        if (geteuid() != 0) {
                harness_stop(&h);
                return;
        }
        ck_assert_int_eq(fixture_write_string(h.root->fd, HARNESS_ETC_POLICY_FILE,
                                              "{ \"power_active_w\": 100, \"power_low_w\": 0 }"), 0);
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "Reload", NULL), 0);
        ck_assert_int_eq(fixture_write_string(h.sysfs->fd, PCI_SUSPENDED_TIME, "131456\n"), 0);
        ck_assert_double_eq_tol(get_double(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "EnergySavedJoules"), 260, 1e-9);
        ck_assert(get_bool(h.client, SIM_PATH, "EnergyEstimated"));
        ck_assert_double_eq(get_double(h.client, SIM_PATH, BUS_DEVICE_INTERFACE, "EnergySavedJoules"), 0);
        ck_assert_double_eq_tol(get_double(h.client, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "EnergySavedJoules"),
                                260, 1e-9);
        harness_stop(&h);
}
END_TEST

/* ---- the shipped introspection ---------------------------------------------------------- */

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void append(char *buf, size_t size, const char *s) {
        size_t len = strlen(buf);

        ck_assert_msg(len + strlen(s) < size, "introspection summary longer than %zu", size);
        memcpy(buf + len, s, strlen(s) + 1);
}

static void append_attribute(char *buf, size_t size, xmlNode *node, const char *name) {
        xmlChar *v = xmlGetProp(node, (const xmlChar *) name);

        append(buf, size, v ? (const char *) v : "-");
        xmlFree(v);
}

/* interface's members in the introspection XML xml, one line each, sorted: "method Name(in s
 * name, out o path)", "property Name s read", "signal Name(s name)"; annotations left out. */
static void interface_summary(const char *xml, const char *interface, char *buf, size_t size) {
        _cleanup_free_ char *expression = NULL;
        char *lines[64];
        size_t n = 0;
        xmlDoc *doc;
        xmlXPathContext *ctx;
        xmlXPathObject *members;

        doc = xmlReadMemory(xml, (int) strlen(xml), "introspection.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS);
        ck_assert_msg(doc, "introspection data of %s does not parse", interface);
        ctx = xmlXPathNewContext(doc);
        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_ge(asprintf(&expression, "/node/interface[@name='%s']/*", interface), 0);
        members = xmlXPathEvalExpression((const xmlChar *) expression, ctx);
        ck_assert_msg(members && members->nodesetval && members->nodesetval->nodeNr > 0, "no interface %s", interface);
        for (int i = 0; i < members->nodesetval->nodeNr; i++) {
                xmlNode *m = members->nodesetval->nodeTab[i];
                char line[1024] = "";
                bool first = true;

                if (strcmp((const char *) m->name, "annotation") == 0)
                        continue;
                append(line, sizeof(line), (const char *) m->name);
                append(line, sizeof(line), " ");
                append_attribute(line, sizeof(line), m, "name");
                if (strcmp((const char *) m->name, "property") == 0) {
                        append(line, sizeof(line), " ");
                        append_attribute(line, sizeof(line), m, "type");
                        append(line, sizeof(line), " ");
                        append_attribute(line, sizeof(line), m, "access");
                } else {
                        append(line, sizeof(line), "(");
                        for (xmlNode *a = m->children; a; a = a->next) {
                                if (a->type != XML_ELEMENT_NODE || strcmp((const char *) a->name, "arg") != 0)
                                        continue;
                                if (!first)
                                        append(line, sizeof(line), ", ");
                                first = false;
                                if (strcmp((const char *) m->name, "method") == 0) {
                                        append_attribute(line, sizeof(line), a, "direction");
                                        append(line, sizeof(line), " ");
                                }
                                append_attribute(line, sizeof(line), a, "type");
                                append(line, sizeof(line), " ");
                                append_attribute(line, sizeof(line), a, "name");
                        }
                        append(line, sizeof(line), ")");
                }
                ck_assert_uint_lt(n, sizeof(lines) / sizeof(lines[0]));
                lines[n++] = strdup(line);
        }
        qsort(lines, n, sizeof(lines[0]), compare_strings);
        buf[0] = 0;
        for (size_t i = 0; i < n; i++) {
                append(buf, size, lines[i]);
                append(buf, size, "\n");
                free(lines[i]);
        }
        xmlXPathFreeObject(members);
        xmlXPathFreeContext(ctx);
        xmlFreeDoc(doc);
}

/* What the daemon introspects at path for interface, summarized, against the file shipped for it
 * in conf/ (installed to /usr/share/dbus-1/interfaces): the same members, types and names. */
static void expect_shipped_introspection(sd_bus *bus, const char *path, const char *interface) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *file = NULL, *shipped = NULL;
        char live_summary[8192], shipped_summary[8192];
        const char *live;

        ck_assert_int_ge(sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Introspectable", "Introspect",
                                            NULL, &reply, NULL), 0);
        ck_assert_int_ge(sd_bus_message_read(reply, "s", &live), 0);
        interface_summary(live, interface, live_summary, sizeof(live_summary));
        ck_assert_int_ge(asprintf(&file, "%s/../../conf/%s.xml", fixture_dir(), interface), 0);
        shipped = read_text_at(AT_FDCWD, file);
        interface_summary(shipped, interface, shipped_summary, sizeof(shipped_summary));
        ck_assert_str_eq(shipped_summary, live_summary);
}

START_TEST(test_introspection_shipped) {
        Harness h;

        harness_start(&h, &(HarnessOptions) { .with_pci = true });
        expect_shipped_introspection(h.client, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE);
        expect_shipped_introspection(h.client, PCI_PATH, BUS_DEVICE_INTERFACE);
        harness_stop(&h);
}
END_TEST

/* ---- PropertiesChanged: once a loop turn ------------------------------------------------ */

/* Each PropertiesChanged of org.vfiopm1.Device as "Property=value …;", counters included. */
typedef struct Signals {
        char text[1024];
        unsigned count;
} Signals;

static int on_properties_recorded(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Signals *s = userdata;
        const char *interface, *name, *contents;

        if (sd_bus_message_read(msg, "s", &interface) < 0 || strcmp(interface, BUS_DEVICE_INTERFACE) != 0)
                return 0;
        ck_assert_int_gt(sd_bus_message_enter_container(msg, 'a', "{sv}"), 0);
        while (sd_bus_message_enter_container(msg, 'e', "sv") > 0) {
                size_t len = strlen(s->text);

                ck_assert_int_ge(sd_bus_message_read(msg, "s", &name), 0);
                ck_assert_int_ge(sd_bus_message_peek_type(msg, NULL, &contents), 0);
                if (strcmp(contents, "t") == 0) {
                        uint64_t v;

                        ck_assert_int_ge(sd_bus_message_read(msg, "v", "t", &v), 0);
                        (void) snprintf(s->text + len, sizeof(s->text) - len, "%s=%" PRIu64 " ", name, v);
                } else {
                        const char *v;

                        ck_assert_int_ge(sd_bus_message_read(msg, "v", "s", &v), 0);
                        (void) snprintf(s->text + len, sizeof(s->text) - len, "%s=%s ", name, v);
                }
                ck_assert_int_ge(sd_bus_message_exit_container(msg), 0);
        }
        (void) snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text), ";");
        s->count++;
        return 0;
}

/* Every signal the daemon sent before this returns has been dispatched: it answers the call in a
 * later loop turn than the one a harness command was answered in, and the bus keeps its order. */
static void signals_settle(sd_bus *bus) {
        expect_string(bus, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "Version", PACKAGE_VERSION);
        while (sd_bus_process(bus, NULL) > 0)
                ;
}

/* Waits (at most 5 s) until count signals were recorded. */
static void signals_wait(sd_bus *bus, Signals *sig, unsigned count) {
        usec_t end = now(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;

        while (sig->count < count) {
                ck_assert_msg(now(CLOCK_MONOTONIC) < end, "%u signals after 5 s, expected %u: %s", sig->count,
                              count, sig->text);
                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                (void) sd_bus_wait(bus, 100 * USEC_PER_MSEC);
        }
}

/* A wake with rearm_delay_ms 0 is armed → woken → armed in one callback: State is back where it
 * was, only Wakes and Arms moved, and those wait for the counters' window: one PropertiesChanged
 * a second later, with Wakes and Arms and not State. */
START_TEST(test_properties_changed_once_a_turn) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        Signals sig = {};
        Harness h;

        harness_start(&h, &(HarnessOptions) {
                .with_pci = true, .fake_kernel = true, .install_defaults = true,
                .etc_policy = "{\"mode\": \"wakeup\", \"rearm_delay_ms\": 0}",
        });
        ck_assert_int_ge(sd_bus_match_signal(h.client, &slot, BUS_NAME, PCI_PATH, "org.freedesktop.DBus.Properties",
                                             "PropertiesChanged", on_properties_recorded, &sig), 0);
        signals_settle(h.client);
        ck_assert_str_eq(sig.text, "");

        ck_assert_int_eq(harness_command(&h, 'w'), 1);
        signals_settle(h.client);
        /* nothing on the wake path: the counts wait for their window (a second) */
        ck_assert_str_eq(sig.text, "");
        signals_wait(h.client, &sig, 1);
        ck_assert_str_eq(sig.text, "Wakes=1 Arms=2 ;");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "armed");

        /* the next wake: the next window's signal */
        ck_assert_int_eq(harness_command(&h, 'w'), 1);
        signals_settle(h.client);
        ck_assert_uint_eq(sig.count, 1);
        signals_wait(h.client, &sig, 2);
        ck_assert_str_eq(sig.text, "Wakes=1 Arms=2 ;Wakes=2 Arms=3 ;");

        /* Claim goes released → idle → armed in one call (arm_delay_ms 0), and its reason clears:
         * one signal with all of it, State as it ends */
        if (geteuid() == 0) {
                sig = (Signals) {};
                ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "Release", "s", PCI_NAME), 0);
                signals_settle(h.client);
                ck_assert_str_eq(sig.text, "State=released ReleaseReason=release ReleasedBy=" PCI_NAME " ;");
                ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "Claim", "s", PCI_NAME), 0);
                signals_settle(h.client);
                ck_assert_str_eq(sig.text, "State=released ReleaseReason=release ReleasedBy=" PCI_NAME " ;"
                                           "State=armed ReleaseReason= ReleasedBy= Arms=4 ;");
                ck_assert_uint_eq(sig.count, 2);
        }

        /* the power follow-ups (0.1 and 1 s later) find nothing new: no signal */
        (void) usleep(1200 * 1000);
        signals_settle(h.client);
        ck_assert_uint_eq(sig.count, 2);
        harness_stop(&h);
}
END_TEST

/* A device changed and removed in the same loop turn: DeviceRemoved, and no PropertiesChanged for
 * an object that is gone (nor a read of a freed device). */
START_TEST(test_removed_device_not_announced) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *pci = NULL, *sim = NULL, *removed = NULL;
        Signals pci_sig = {}, sim_sig = {};
        char seen[256] = "";
        Harness h;

        harness_start(&h, &(HarnessOptions) {
                .with_pci = true, .with_sim = true, .fake_kernel = true, .install_defaults = true,
                .etc_policy = "{\"mode\": \"wakeup\", \"rearm_delay_ms\": 600000}",
        });
        ck_assert_int_ge(sd_bus_match_signal(h.client, &pci, BUS_NAME, PCI_PATH, "org.freedesktop.DBus.Properties",
                                             "PropertiesChanged", on_properties_recorded, &pci_sig), 0);
        ck_assert_int_ge(sd_bus_match_signal(h.client, &sim, BUS_NAME, SIM_PATH, "org.freedesktop.DBus.Properties",
                                             "PropertiesChanged", on_properties_recorded, &sim_sig), 0);
        ck_assert_int_ge(sd_bus_match_signal(h.client, &removed, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                             "DeviceRemoved", on_device_signal, seen), 0);
        expect_string(h.client, SIM_PATH, BUS_DEVICE_INTERFACE, "State", "armed");

        /* what the same change shows on a device that stays */
        ck_assert_int_eq(harness_command(&h, 'w'), 1);
        signals_settle(h.client);
        ck_assert_str_eq(pci_sig.text, "State=woken Wakes=1 ;");

        ck_assert_int_eq(harness_command(&h, 'R'), 0);
        signals_settle(h.client);
        ck_assert_str_eq(seen, "DeviceRemoved " SIM_NAME " " SIM_PATH ";");
        ck_assert_str_eq(sim_sig.text, "");
        ck_assert_uint_eq(sim_sig.count, 0);
        ck_assert_uint_eq(pci_sig.count, 1);
        expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "GetDevice", "s", SIM_NAME);
        harness_stop(&h);
}
END_TEST

/* In a child as nobody: reads work, every change is refused with expect (the daemon's
 * AccessDenied, or the bus's). Exit status: 0 if all as expected, else the failed step. */
static int nobody_main(const char *address, bool daemon_check) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        static const char *const denied = SD_BUS_ERROR_ACCESS_DENIED;
        char *error = NULL, *version = NULL;
        int step = 1;

        if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0)
                return 100;
        if (harness_connect(address, &bus) < 0)
                return 101;
        if (call(bus, NULL, NULL, NULL, "ListDevices", NULL) < 0)
                return 102;
        if (call(bus, NULL, NULL, NULL, "ListDeviceStates", NULL) < 0)
                return 107;
        if (call(bus, NULL, NULL, NULL, "GetDevice", "s", PCI_NAME) < 0)
                return 103;
        if (sd_bus_get_property_string(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "Version", NULL,
                                       &version) < 0 || strcmp(version, PACKAGE_VERSION) != 0)
                return 104;
        free(version);
        if (sd_bus_get_property_string(bus, BUS_NAME, PCI_PATH, BUS_DEVICE_INTERFACE, "State", NULL, &version) < 0)
                return 105;
        free(version);
        if (sd_bus_call_method(bus, BUS_NAME, BUS_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", NULL, NULL, NULL) < 0)
                return 106;

#define EXPECT_DENIED(...)                                                                     \
        do {                                                                                    \
                if (call(bus, &error, NULL, NULL, __VA_ARGS__) >= 0 || !error || strcmp(error, denied) != 0) \
                        return step;                                                            \
                free(error);                                                                    \
                error = NULL;                                                                   \
                step++;                                                                         \
        } while (0)
        EXPECT_DENIED("Claim", "s", PCI_NAME);
        EXPECT_DENIED("Release", "s", PCI_NAME);
        EXPECT_DENIED("Wake", "s", PCI_NAME);
        EXPECT_DENIED("SetPolicy", "ssb", PCI_NAME, "{\"mode\": \"on\"}", 1);
        EXPECT_DENIED("SetPolicy", "ssb", PCI_NAME, "{\"mode\": \"on\"}", 0);
        EXPECT_DENIED("ResetPolicy", "sb", PCI_NAME, 1);
        EXPECT_DENIED("Reload", NULL);
        /* the daemon refuses before it looks: an unknown device is no NoSuchDevice for nobody */
        if (daemon_check)
                EXPECT_DENIED("Claim", "s", "nope");
#undef EXPECT_DENIED
        return 0;
}

static void check_nobody(Harness *h, bool daemon_check) {
        char listing[256];
        pid_t pid;
        int status;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(nobody_main(h->address, daemon_check));
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "as nobody: step %d", WEXITSTATUS(status));

        /* nothing changed */
        expect_string(h->client, PCI_PATH, BUS_DEVICE_INTERFACE, "Mode", "kernel");
        list_dir(h->root->fd, "run/vfiopmd/policy.d", listing, sizeof(listing));
        ck_assert_str_eq(listing, "");
        list_dir(h->root->fd, "etc/vfiopmd/policy.d", listing, sizeof(listing));
        ck_assert_str_eq(listing, "");
}

/* The daemon's own check, on a bus that lets everyone call everything. */
START_TEST(test_access_denied) {
        Harness h;

        if (geteuid() != 0)
                return;         /* cannot become nobody; every caller is non-root anyway */
        harness_start(&h, &(HarnessOptions) { .with_pci = true });
        check_nobody(&h, true);
        harness_stop(&h);
}
END_TEST

/* conf/org.vfiopm1.conf on a system-like bus: root owns the name and may change things,
 * everyone else only reads. */
START_TEST(test_bus_policy_file) {
        Harness h;

        if (geteuid() != 0)
                return;
        harness_start(&h, &(HarnessOptions) { .bus_policy_file = true, .with_pci = true });
        check_nobody(&h, false);
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "SetPolicy", "ssb", PCI_NAME, "{\"mode\": \"on\"}", 1), 0);
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "on");
        harness_stop(&h);
}
END_TEST

/* ---- the harness's fake kernel ---------------------------------------------------------- */

/* What test-ctl.c relies on: held devices that arm, wake, go busy and come back, and are asked
 * for back by the kernel, each command done when it is answered. */
START_TEST(test_harness_fake_kernel) {
        _cleanup_free_ char *path = NULL, *policy = NULL;
        Harness h;

        ck_assert_int_eq(bus_device_path(SIM_NAME, &path), 0);
        ck_assert_str_eq(path, SIM_PATH);

        harness_start(&h, &(HarnessOptions) {
                .with_pci = true,
                .fake_kernel = true,
                .install_defaults = true,
                .etc_policy = "{\"mode\": \"wakeup\", \"rearm_delay_ms\": 0}",
        });
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Mode", "wakeup");
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "armed");
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "Arms"), 1);
        policy = get_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "Policy");
        ck_assert_msg(strstr(policy, "\"flap_hold_s\":{\"value\":300,\"source\":\"/usr/lib/vfiopmd/policy.d/00-defaults.json\""),
                      "%s", policy);

        /* the sim device comes and arms too */
        ck_assert_int_eq(harness_command(&h, 'a'), 0);
        expect_string(h.client, SIM_PATH, BUS_DEVICE_INTERFACE, "State", "armed");

        /* a host access: the wake-up eventfd fires, the daemon re-arms at once (rearm 0) */
        ck_assert_int_eq(harness_command(&h, 'w'), 1);
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "Wakes"), 1);
        ck_assert_uint_eq(get_u64(h.client, PCI_PATH, "Arms"), 2);
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "armed");
        ck_assert_int_eq(harness_command(&h, 'W'), 1);
        ck_assert_uint_eq(get_u64(h.client, SIM_PATH, "Wakes"), 1);

        /* another process takes the group while the device is released: Claim finds it busy,
         * udev's change event once it lets go takes it back */
        if (geteuid() == 0) {
                ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "Release", "s", PCI_NAME), 0);
                expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "released");
                ck_assert_int_eq(harness_command(&h, 'h'), 0);
                expect_error(h.client, BUS_ERROR_BUSY, "Claim", "s", PCI_NAME);
                expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "busy");
                ck_assert_int_eq(harness_command(&h, 'f'), 0);
                expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "armed");
        }

        /* the kernel asks for the sim device back: released at once; then it goes */
        ck_assert_int_eq(harness_command(&h, 'Q'), 0);
        expect_string(h.client, SIM_PATH, BUS_DEVICE_INTERFACE, "State", "released");
        ck_assert_int_eq(harness_command(&h, 'Q'), -ENOTCONN);
        ck_assert_int_eq(harness_command(&h, 'W'), 0);
        ck_assert_int_eq(harness_command(&h, 'r'), 0);
        expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "GetDevice", "s", SIM_NAME);
        ck_assert_int_eq(harness_command(&h, '?'), -EINVAL);

        /* the daemon side's timers run: idle for arm_delay_ms, then armed */
        if (geteuid() == 0) {
                _cleanup_free_ char *state = NULL;

                ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "SetPolicy", "ssb", PCI_NAME,
                                      "{\"arm_delay_ms\": 100}", 1), 0);
                ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "Release", "s", PCI_NAME), 0);
                ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "Claim", "s", PCI_NAME), 0);
                expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "idle");
                for (int i = 0; i < 100; i++) {
                        free(state);
                        state = get_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State");
                        if (strcmp(state, "armed") == 0)
                                break;
                        (void) usleep(20 * 1000);
                }
                ck_assert_str_eq(state, "armed");
        }

        harness_stop(&h);

        /* without the fake kernel, its commands are refused */
        harness_start(&h, &(HarnessOptions) { .with_pci = true });
        ck_assert_int_eq(harness_command(&h, 'w'), -EOPNOTSUPP);
        ck_assert_int_eq(harness_command(&h, 'h'), -EOPNOTSUPP);
        harness_stop(&h);
}
END_TEST

Suite *bus_suite(void) {
        Suite *s = suite_create("bus");
        TCase *tc = tcase_create("bus");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_reads_without_devices);
        tcase_add_test(tc, test_device_object);
        tcase_add_test(tc, test_set_policy);
        tcase_add_test(tc, test_set_policy_dir_sync_fails);
        tcase_add_test(tc, test_power_state_follow_up);
        tcase_add_test(tc, test_policy_errors);
        tcase_add_test(tc, test_device_signals);
        tcase_add_test(tc, test_object_manager);
        tcase_add_test(tc, test_list_device_states);
        tcase_add_test(tc, test_energy_saved);
        tcase_add_test(tc, test_introspection_shipped);
        tcase_add_test(tc, test_properties_changed_once_a_turn);
        tcase_add_test(tc, test_removed_device_not_announced);
        tcase_add_test(tc, test_access_denied);
        tcase_add_test(tc, test_bus_policy_file);
        tcase_add_test(tc, test_harness_fake_kernel);
        suite_add_tcase(s, tc);
        return s;
}
