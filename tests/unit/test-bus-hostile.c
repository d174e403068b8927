/* Hostile input to the D-Bus API, against the harness's daemon with held, armed devices: names
 * no device has, calls that do not fit the interface, paths that are no device's object, rules
 * that are no valid rule. Each is refused as it should be and nothing moves: the devices, their
 * state, the policy errors, the files. And a flood of reads, which must leave the loop's other
 * sources their turn. The API itself is test-bus.c. */

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-device.h"
#include "bus-harness.h"
#include "bus-helpers.h"
#include "bus-manager.h"
#include "fixture.h"
#include "manager.h"
#include "suites.h"

/* ---- hostile input ---------------------------------------------------------------------- */

/* What a refused call must leave as it was. */
typedef struct Snapshot {
        char *devices;          /* ListDevices */
        char *states;           /* each device's State, Mode, PowerState, counters, LastError, Policy */
        char *errors;           /* PolicyErrors */
        char *files;            /* everything below the scratch root: no file, no temporary left */
} Snapshot;

static void snapshot_take(Harness *h, Snapshot *ret) {
        static const char *const strings[] = { "State", "Mode", "PowerState", "LastError", "Policy" };
        static const char *const counters[] = { "Wakes", "Arms" };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name, *path;
        char **errors;
        size_t size;
        FILE *f;

        *ret = (Snapshot) {};
        ck_assert_int_ge(call(h->client, NULL, NULL, &reply, "ListDevices", NULL), 0);
        ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "(so)"), 0);
        f = open_memstream(&ret->devices, &size);
        ck_assert_ptr_nonnull(f);
        while (sd_bus_message_read(reply, "(so)", &name, &path) > 0)
                fprintf(f, "%s %s\n", name, path);
        ck_assert_int_eq(fclose(f), 0);

        f = open_memstream(&ret->states, &size);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(sd_bus_message_rewind(reply, true), 0);
        ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "(so)"), 0);
        while (sd_bus_message_read(reply, "(so)", &name, &path) > 0) {
                fprintf(f, "%s:", name);
                for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
                        _cleanup_free_ char *v = get_string(h->client, path, BUS_DEVICE_INTERFACE, strings[i]);

                        fprintf(f, " %s=%s", strings[i], v);
                }
                for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
                        fprintf(f, " %s=%" PRIu64, counters[i], get_u64(h->client, path, counters[i]));
                fputc('\n', f);
        }
        ck_assert_int_eq(fclose(f), 0);

        errors = get_policy_errors(h->client);
        f = open_memstream(&ret->errors, &size);
        ck_assert_ptr_nonnull(f);
        for (char **e = errors; *e; e++)
                fprintf(f, "%s\n", *e);
        ck_assert_int_eq(fclose(f), 0);
        strv_free(errors);

        ret->files = harness_list_files(h, "");
}

static void snapshot_done(Snapshot *s) {
        free(s->devices);
        free(s->states);
        free(s->errors);
        free(s->files);
}

/* A short, printable label of a hostile value for failure messages. */
static const char *label(const char *s, char buf[static 64]) {
        size_t i;

        for (i = 0; s[i] && i < 40; i++)
                buf[i] = (unsigned char) s[i] < 0x20 ? '?' : s[i];
        (void) snprintf(buf + i, 64 - i, "%s (%zu)", s[i] ? "..." : "", strlen(s));
        return buf;
}

/* The daemon still answers and nothing moved since before. */
static void expect_unaffected(Harness *h, const Snapshot *before, const char *hostile) {
        char what[64];
        Snapshot now;

        (void) label(hostile, what);
        snapshot_take(h, &now);
        ck_assert_msg(strcmp(now.devices, before->devices) == 0, "%s: devices: %s", what, now.devices);
        ck_assert_msg(strcmp(now.states, before->states) == 0, "%s: states: %s", what, now.states);
        ck_assert_msg(strcmp(now.errors, before->errors) == 0, "%s: policy errors: %s", what, now.errors);
        ck_assert_msg(strcmp(now.files, before->files) == 0, "%s: files:\n%s\nbefore:\n%s", what, now.files,
                      before->files);
        snapshot_done(&now);
}

/* Calls member, expects the error name (NULL: success) and, in its message, each of the
 * needles (NULL-terminated; a NULL needle list: not looked at). */
static void expect_call(Harness *h, const char *error_name, const char *const *needles, const char *member,
                        const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char buf[64];
        const char *first;
        va_list ap;
        int r;

        ck_assert_int_ge(sd_bus_message_new_method_call(h->client, &msg, BUS_NAME, BUS_MANAGER_PATH,
                                                         BUS_MANAGER_INTERFACE, member), 0);
        va_start(ap, types);
        ck_assert_int_ge(sd_bus_message_appendv(msg, types, ap), 0);
        va_end(ap);
        va_start(ap, types);
        first = va_arg(ap, const char *);       /* every call here starts with a string */
        va_end(ap);

        r = sd_bus_call(h->client, msg, 10 * USEC_PER_SEC, &error, NULL);
        if (!error_name) {
                ck_assert_msg(r >= 0, "%s(%s): expected success, got %s: %s", member, label(first, buf),
                              error.name, error.message);
                return;
        }
        ck_assert_msg(r < 0 && sd_bus_error_has_name(&error, error_name), "%s(%s): expected %s, got %d %s: %s",
                      member, label(first, buf), error_name, r, error.name ?: "-", error.message ?: "-");
        ck_assert_ptr_nonnull(error.message);
        for (const char *const *n = needles; n && *n; n++)
                ck_assert_msg(strstr(error.message, *n), "%s(%s): message without '%s': %s", member,
                              label(first, buf), label(*n, buf), error.message);
}

/* 4096 bytes: a real device's name, then more. */
static char *long_name(void) {
        char *s = malloc(4097);

        ck_assert_ptr_nonnull(s);
        memset(s, 'x', 4096);
        memcpy(s, PCI_NAME, strlen(PCI_NAME));
        s[4096] = 0;
        return s;
}

/* A daemon with held, armed devices, and policy files it must not touch: the dbus file of a
 * device "x" (what ResetPolicy("90-dbus-x") must not take for its own, nor "*" for all). */
static void hostile_harness_start(Harness *h) {
        harness_start(h, &(HarnessOptions) {
                .with_pci = true,
                .with_sim = true,
                .fake_kernel = true,
                .install_defaults = true,
                .etc_policy = "{\"mode\": \"wakeup\"}",
        });
        ck_assert_int_eq(fixture_write_string(h->root->fd, HARNESS_POLICY_DIR_RUN "/90-dbus-x.json",
                                              "{\"match\": {\"device\": \"x\"}, \"mode\": \"on\"}\n"), 0);
        ck_assert_int_eq(fixture_write_string(h->root->fd, HARNESS_POLICY_DIR_ETC "/90-dbus-x.json",
                                              "{\"match\": {\"device\": \"x\"}, \"mode\": \"auto\"}\n"), 0);
        if (geteuid() == 0)
                ck_assert_int_ge(call(h->client, NULL, NULL, NULL, "Reload", NULL), 0);
        expect_string(h->client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "armed");
        expect_string(h->client, SIM_PATH, BUS_DEVICE_INTERFACE, "State", "armed");
}

/* Every Manager method that takes a name, with names no device has: NoSuchDevice naming it, or
 * for ResetPolicy (whose device need not be present) InvalidArgs when the name cannot be part
 * of a file name and success (there is no file to remove) when it can. Nothing else moves. */
START_TEST(test_hostile_names) {
        _cleanup_free_ char *longest = long_name();
        const struct {
                const char *name;
                bool file_name;         /* 90-dbus-<name>.json is a file name in the directory */
                const char *why;        /* in InvalidArgs' message */
        } names[] = {
                { "",                           false, "'' cannot name a policy file" },
                { longest,                      false, "cannot name a policy file" },
                { "../x",                       false, "'../x' cannot name a policy file" },
                { "../../etc/passwd",           false, "'../../etc/passwd' cannot name a policy file" },
                { "a/b",                        false, "'a/b' cannot name a policy file" },
                { ".",                          false, "'.' cannot name a policy file" },
                { "..",                         false, "'..' cannot name a policy file" },
                { "0000:ff:1f.7",               true,  NULL },
                { "0000:00:03.0\n0000:00:03.0", false, "control characters" },
                { "*",                          true,  NULL },
                { "90-dbus-x",                  true,  NULL },
                { "x",                          true,  NULL },       /* removes 90-dbus-x.json: see below */
        };
        static const char *const methods[] = { "GetDevice", "Claim", "Release", "Wake" };
        Snapshot before;
        Harness h;

        if (geteuid() != 0)
                return;         /* the changes need root; test_access_denied covers the rest */
        hostile_harness_start(&h);
        snapshot_take(&h, &before);

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                const char *name = names[i].name;
                const char *const names_it[] = { name, NULL };
                const char *const why[] = { names[i].why, NULL };

                if (strcmp(name, "x") == 0)
                        continue;
                for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++) {
                        expect_call(&h, BUS_ERROR_NO_SUCH_DEVICE, names_it, methods[k], "s", name);
                        expect_unaffected(&h, &before, methods[k]);
                }
                for (int runtime = 0; runtime <= 1; runtime++) {
                        expect_call(&h, BUS_ERROR_NO_SUCH_DEVICE, names_it, "SetPolicy", "ssb", name,
                                    "{\"mode\": \"on\"}", runtime);
                        expect_unaffected(&h, &before, "SetPolicy");
                        if (names[i].file_name)
                                expect_call(&h, NULL, NULL, "ResetPolicy", "sb", name, runtime);
                        else
                                expect_call(&h, SD_BUS_ERROR_INVALID_ARGS, why, "ResetPolicy", "sb", name, runtime);
                        expect_unaffected(&h, &before, "ResetPolicy");
                }
        }

        /* the control: ResetPolicy of device x does remove its files, and only those */
        expect_call(&h, NULL, NULL, "ResetPolicy", "sb", "x", 1);
        expect_call(&h, NULL, NULL, "ResetPolicy", "sb", "x", 0);
        {
                _cleanup_free_ char *files = harness_list_files(&h, "");

                ck_assert_msg(!strstr(files, "90-dbus-x.json"), "%s", files);
                ck_assert_msg(strstr(files, "etc/vfiopmd/policy.d/50-harness.json\n"), "%s", files);
                ck_assert_msg(strstr(files, "usr/lib/vfiopmd/policy.d/00-defaults.json\n"), "%s", files);
        }
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "armed");

        snapshot_done(&before);
        harness_stop(&h);
}
END_TEST

/* Calls that do not fit the interface never reach the daemon's code: sd-bus checks the
 * signature. Strings cannot hold invalid UTF-8 or a NUL on D-Bus at all: libsystemd refuses to
 * put them in a message (and dbus-daemon would drop a message with them), so no test can send
 * one and the daemon's parsers never see one from the bus. */
START_TEST(test_hostile_calls) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        Snapshot before;
        Harness h;

        hostile_harness_start(&h);
        snapshot_take(&h, &before);

        expect_call(&h, SD_BUS_ERROR_INVALID_ARGS, NULL, "GetDevice", "ss", PCI_NAME, PCI_NAME);
        expect_call(&h, SD_BUS_ERROR_INVALID_ARGS, NULL, "Claim", "sb", PCI_NAME, 1);
        expect_call(&h, SD_BUS_ERROR_INVALID_ARGS, NULL, "SetPolicy", "ss", PCI_NAME, "{}");
        expect_call(&h, SD_BUS_ERROR_INVALID_ARGS, NULL, "SetPolicy", "sbs", PCI_NAME, 1, "{}");
        expect_call(&h, SD_BUS_ERROR_INVALID_ARGS, NULL, "ResetPolicy", "s", PCI_NAME);
        expect_call(&h, SD_BUS_ERROR_INVALID_ARGS, NULL, "ListDevices", "s", PCI_NAME);
        expect_call(&h, SD_BUS_ERROR_UNKNOWN_METHOD, NULL, "Destroy", "s", PCI_NAME);
        expect_error(h.client, SD_BUS_ERROR_INVALID_ARGS, "GetDevice", "u", 3);
        {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                ck_assert_int_lt(sd_bus_set_property(h.client, BUS_NAME, PCI_PATH, BUS_DEVICE_INTERFACE, "State",
                                                     &error, "s", "kernel"), 0);
                ck_assert_msg(sd_bus_error_has_name(&error, SD_BUS_ERROR_PROPERTY_READ_ONLY), "%s: %s", error.name,
                              error.message);
        }
        expect_unaffected(&h, &before, "wrong arguments");

        ck_assert_int_ge(sd_bus_message_new_method_call(h.client, &msg, BUS_NAME, BUS_MANAGER_PATH,
                                                         BUS_MANAGER_INTERFACE, "GetDevice"), 0);
        ck_assert_int_eq(sd_bus_message_append(msg, "s", "0000:00:03.0\xff"), -EINVAL);

        snapshot_done(&before);
        harness_stop(&h);
}
END_TEST

/* Property reads on device objects that do not exist: paths of absent devices, of hostile names,
 * and other spellings of a present device's path (sd_bus_path_decode() takes any escape, and
 * "_00" decodes to a NUL that would cut the name short): only the one path of a device is its
 * object. */
START_TEST(test_hostile_paths) {
        _cleanup_free_ char *longest = long_name();
        const char *const hostile[] = {
                "", longest, "../x", "../../etc/passwd", "a/b", ".", "..", "0000:ff:1f.7",
                "0000:00:03.0\n", "*", "90-dbus-x", PCI_NAME "\n", PCI_NAME " ",
        };
        const char *const paths[] = {
                "/org/vfiopm1/device/nope",
                "/org/vfiopm1/device",
                "/org/vfiopm1/device/_",
                PCI_PATH "_00",                                         /* "0000:00:03.0\0" */
                PCI_PATH "_00x",
                "/org/vfiopm1/device/_30_30_30_30_3a00_3a03_2e0",       /* every digit escaped */
                "/org/vfiopm1/device/_30000_3A00_3A03_2E0",             /* upper case hex */
                PCI_PATH "/child",
                "/org/vfiopm1/device/_3",                               /* half an escape */
                "/org/vfiopm1/device/_zz",
                "/org/vfiopm1/Device/" "_30000_3a00_3a03_2e0",
        };
        Snapshot before;
        Harness h;

        hostile_harness_start(&h);
        snapshot_take(&h, &before);

        for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]) + sizeof(paths) / sizeof(paths[0]); i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *path = NULL, *s = NULL;
                char buf[64];

                if (i < sizeof(hostile) / sizeof(hostile[0]))
                        ck_assert_int_ge(bus_device_path(hostile[i], &path), 0);
                else
                        path = strdup(paths[i - sizeof(hostile) / sizeof(hostile[0])]);
                ck_assert_ptr_nonnull(path);

                ck_assert_msg(sd_bus_get_property_string(h.client, BUS_NAME, path, BUS_DEVICE_INTERFACE,
                                                         "Name", &error, &s) < 0,
                              "Get(%s): a device object answers: %s", label(path, buf), s);
                /* sd-bus's errors: no such object, or (the parent node, which exists) no such
                 * interface there */
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT))
                        ck_assert_msg(strstr(error.message, path), "Get(%s): %s", label(path, buf), error.message);
                else
                        ck_assert_msg(sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_PROPERTY) &&
                                      strcmp(path, BUS_DEVICE_PREFIX) == 0,
                                      "Get(%s): %s: %s", label(path, buf), error.name, error.message);
                ck_assert_ptr_null(s);
                sd_bus_error_free(&error);

                ck_assert_int_lt(sd_bus_call_method(h.client, BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                                    "GetAll", &error, &reply, "s", BUS_DEVICE_INTERFACE), 0);
                ck_assert_msg(sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                              (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE) &&
                               strcmp(path, BUS_DEVICE_PREFIX) == 0),
                              "GetAll(%s): %s: %s", label(path, buf), error.name, error.message);
                sd_bus_error_free(&error);

                /* no object to introspect, or one without the device interface */
                reply = sd_bus_message_unref(reply);
                if (sd_bus_call_method(h.client, BUS_NAME, path, "org.freedesktop.DBus.Introspectable",
                                       "Introspect", &error, &reply, NULL) >= 0) {
                        ck_assert_int_ge(sd_bus_message_read(reply, "s", &s), 0);
                        ck_assert_msg(!strstr(s, BUS_DEVICE_INTERFACE), "Introspect(%s): %s", label(path, buf), s);
                        s = NULL;       /* borrowed from reply */
                } else
                        ck_assert_msg(sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT),
                                      "Introspect(%s): %s: %s", label(path, buf), error.name, error.message);
        }
        expect_unaffected(&h, &before, "paths");

        snapshot_done(&before);
        harness_stop(&h);
}
END_TEST

/* depth open brackets, closed again or not. */
static char *nested(size_t depth, bool closed) {
        char *s = malloc(2 * depth + 1);

        ck_assert_ptr_nonnull(s);
        memset(s, '[', depth);
        memset(s + depth, ']', closed ? depth : 0);
        s[closed ? 2 * depth : depth] = 0;
        return s;
}

/* 4 KiB of printable garbage (deterministic), starting with first. */
static char *garbage(char first) {
        char *s = malloc(4097);
        uint32_t x = 12345;

        ck_assert_ptr_nonnull(s);
        for (size_t i = 0; i < 4096; i++) {
                x = x * 1103515245 + 12345;
                s[i] = (char) (0x01 + (x >> 16) % 0x7e);        /* 0x01…0x7e: UTF-8, no NUL */
        }
        s[0] = first;
        s[4096] = 0;
        return s;
}

/* A valid JSON object of 2 MiB: one huge string value. */
static char *huge_object(void) {
        static const char head[] = "{\"mode\": \"on\", \"comment\": \"", tail[] = "\"}";
        size_t n = 2 * 1024 * 1024;
        char *s = malloc(n + 1);

        ck_assert_ptr_nonnull(s);
        memset(s, 'a', n);
        memcpy(s, head, strlen(head));
        memcpy(s + n - strlen(tail), tail, strlen(tail));
        s[n] = 0;
        return s;
}

/* SetPolicy on a present device with rule_json that is not one valid rule: InvalidPolicy, its
 * message naming the file that would have been written and what is wrong; no file, no temporary
 * file, nothing reloaded. */
START_TEST(test_hostile_policy) {
        _cleanup_free_ char *deep_open = nested(10000, false), *deep = nested(10000, true);
        _cleanup_free_ char *junk = garbage('x'), *junk_object = garbage('{'), *huge = huge_object();
        const struct {
                const char *json;
                const char *why;
        } rules[] = {
                { "",                                   ": file is empty" },
                { "   \n\t ",                           ": file is empty" },
                { "{",                                  ":1:2: unexpected end of file" },
                { "}",                                  ":1:1: expected a rule object or an array" },
                { "[]",                                 ": expected one rule object" },
                { "[{\"mode\": \"on\"}]",               ": expected one rule object" },
                { "null",                               ":1:1: expected a rule object or an array" },
                { "\"str\"",                            ":1:1: expected a rule object or an array" },
                { "42",                                 ":1:1: expected a rule object or an array" },
                { "{} {}",                              ":1:4: unexpected data after the JSON value" },
                { "{\"mode\": \"on\"} x",               ": unexpected data after the JSON value" },
                /* unknown keys */
                { "{\"sleepy\": true}",                 ": sleepy: unknown key" },
                { "{\"match\": {\"colour\": \"red\"}}", ": match.colour: unknown key" },
                { "{\"Mode\": \"on\"}",                 ": Mode: unknown key" },
                { "{\"mode\": \"on\", \"mode\": \"on\"}", ":1:16: duplicate key \"mode\"" },
                /* wrong types */
                { "{\"mode\": 1}",                      ": mode: expected \"kernel\", \"on\", \"auto\" or \"wakeup\", got 1" },
                { "{\"mode\": \"sleepy\"}",             ": mode: expected" },
                { "{\"mode\": null}",                   ": mode: expected" },
                { "{\"arm_delay_ms\": \"5\"}",          ": arm_delay_ms: expected an integer from 0 to 3600000, got \"5\"" },
                { "{\"rearm_delay_ms\": 1.5}",          ": rearm_delay_ms: expected an integer" },
                { "{\"rearm_delay_ms\": true}",         ": rearm_delay_ms: expected an integer" },
                { "{\"d3cold\": \"yes\"}",              ": d3cold: expected true, false or null, got \"yes\"" },
                { "{\"d3cold\": 0}",                    ": d3cold: expected true, false or null" },
                { "{\"power_low_w\": \"1\"}",           ": power_low_w: expected a number from 0 to 10000 or null" },
                { "{\"match\": []}",                    ": match: expected an object, got an array" },
                { "{\"match\": \"0000:00:03.0\"}",      ": match: expected an object" },
                { "{\"match\": {\"device\": 5}}",       ": match.device: expected a name" },
                { "{\"match\": {\"vendor\": 8086}}",    ": match.vendor: expected a string of 4 hex digits" },
                { "{\"match\": {\"iommu_group\": \"12\"}}", ": match.iommu_group: expected an integer" },
                { "{\"flap_hold_s\": {}}",              ": flap_hold_s: expected an integer from 0 to 86400, got an object" },
                /* out of range */
                { "{\"rearm_delay_ms\": -1}",           ": rearm_delay_ms: expected an integer from 0 to 3600000, got -1" },
                { "{\"arm_delay_ms\": 3600001}",        ": arm_delay_ms: expected an integer from 0 to 3600000, got 3600001" },
                { "{\"flap_max_wakes\": 0}",            ": flap_max_wakes: expected an integer from 1 to 1000000, got 0" },
                { "{\"flap_window_s\": 86401}",         ": flap_window_s: expected an integer from 1 to 86400" },
                { "{\"flap_window_s\": 18446744073709551616}", ": flap_window_s: expected an integer from 1 to 86400" },
                { "{\"flap_hold_s\": -9223372036854775809}", ": flap_hold_s: expected an integer from 0 to 86400" },
                { "{\"power_active_w\": 10001}",        ": power_active_w: expected a number from 0 to 10000 or null, got 10001" },
                { "{\"power_active_w\": -0.5}",         ": power_active_w: expected a number from 0 to 10000 or null" },
                { "{\"power_active_w\": 1e999}",        ": power_active_w: expected a number" },
                { "{\"match\": {\"vendor\": \"80861\"}}", ": match.vendor: expected a string of 4 hex digits" },
                { "{\"match\": {\"class\": \"0\"}}",    ": match.class: expected a string of 2, 4 or 6 hex digits" },
                { "{\"match\": {\"driver\": \"a/b\"}}", ": match.driver: expected a name" },
                /* not strict JSON */
                { "{\"mode\": \"on\",}",                ":1:14: trailing comma before '}'" },
                { "{'mode': 'on'}",                     ": single quotes are not allowed" },
                { "{\"mode\": \"on\"} // on",           ": unexpected data after the JSON value" },
                { "/* c */ {\"mode\": \"on\"}",         ":1:1: comments are not allowed" },
                { "\xef\xbb\xbf{}",                     ":1:1: byte order mark (BOM) is not allowed" },
                /* size and depth */
                { junk,                                 ":1:1: expected a rule object or an array" },
                { junk_object,                          ":1:" },
                { huge,                                 ": file is larger than 1 MiB" },
                { deep_open,                            ": nesting deeper than 16 levels" },
                { deep,                                 ": nesting deeper than 16 levels" },
        };
        Snapshot before;
        Harness h;

        if (geteuid() != 0)
                return;         /* the changes need root; test_access_denied covers the rest */
        hostile_harness_start(&h);
        snapshot_take(&h, &before);

        for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
                for (int runtime = 0; runtime <= 1; runtime++) {
                        const char *const why[] = {
                                runtime ? "/run/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json"
                                        : "/etc/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json",
                                rules[i].why,
                                NULL,
                        };

                        expect_call(&h, BUS_ERROR_INVALID_POLICY, why, "SetPolicy", "ssb", PCI_NAME, rules[i].json,
                                    runtime);
                        expect_unaffected(&h, &before, rules[i].json);
                }

        /* An empty rule is a valid rule (SPEC §2: no key is required; `vfiopmctl check` takes
         * such a file): the file matches the device and sets nothing, so nothing moves but the
         * file itself. */
        for (int runtime = 0; runtime <= 1; runtime++) {
                const char *file = runtime ? HARNESS_POLICY_DIR_RUN "/90-dbus-" PCI_NAME ".json"
                                           : HARNESS_POLICY_DIR_ETC "/90-dbus-" PCI_NAME ".json";
                _cleanup_free_ char *text = NULL;
                json_object *o, *match;

                expect_call(&h, NULL, NULL, "SetPolicy", "ssb", PCI_NAME, "{}", runtime);
                text = read_text_at(h.root->fd, file);
                o = json_tokener_parse(text);
                ck_assert_msg(json_object_is_type(o, json_type_object) && json_object_object_length(o) == 1 &&
                              json_object_object_get_ex(o, "match", &match) &&
                              json_object_object_length(match) == 1, "%s", text);
                json_object_put(o);
                expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "armed");
                expect_call(&h, NULL, NULL, "ResetPolicy", "sb", PCI_NAME, runtime);
        }
        expect_unaffected(&h, &before, "{}");

        /* the device's name in match is replaced, whatever (valid) name the caller wrote there */
        expect_call(&h, NULL, NULL, "SetPolicy", "ssb", PCI_NAME,
                    "{\"match\": {\"device\": \"" SIM_NAME "\"}, \"mode\": \"on\"}", 1);
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "on");
        expect_string(h.client, SIM_PATH, BUS_DEVICE_INTERFACE, "State", "armed");
        expect_call(&h, NULL, NULL, "ResetPolicy", "sb", PCI_NAME, 1);
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "armed");

        snapshot_done(&before);
        harness_stop(&h);
}
END_TEST

/* ---- a flood of reads -------------------------------------------------------------------- */

/* 8 clients with FLOOD_CALLS_PER_CLIENT reads each in flight (dbus-daemon lets a connection wait
 * for 128 replies at most), all waiting in the daemon side's socket before its loop runs. */
#define FLOOD_CLIENTS 8
#define FLOOD_CALLS_PER_CLIENT 100
#define FLOOD_CALLS (FLOOD_CLIENTS * FLOOD_CALLS_PER_CLIENT)
/* turns of the loop the other source stays ready; then it is quiet, and the rest of the flood
 * must still be served without it */
#define FLOOD_BUSY_TURNS 8

typedef struct Flood {
        struct event_base *base;
        unsigned processed;             /* the flood's calls the daemon side has taken */
        unsigned processed_seen;        /* ... when the other source last ran */
        unsigned most_between;          /* most calls taken between two of its runs */
        unsigned turns;                 /* how often it ran */
        unsigned replies, errors;       /* the clients' */
} Flood;

/* Sees every message the daemon side's connection processes, before its handler. */
static int on_flood_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Flood *f = userdata;

        if (sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "GetAll") &&
            ++f->processed == FLOOD_CALLS)
                (void) event_base_loopbreak(f->base);
        return 0;
}

/* Another source of the loop, ready on every turn while it is busy: a device woken again and
 * again, a watchdog ping. */
static void on_other_source(evutil_socket_t fd, short what, void *userdata) {
        Flood *f = userdata;
        eventfd_t v;

        ck_assert_int_eq(eventfd_read(fd, &v), 0);
        if (f->processed - f->processed_seen > f->most_between)
                f->most_between = f->processed - f->processed_seen;
        f->processed_seen = f->processed;
        if (++f->turns < FLOOD_BUSY_TURNS)
                ck_assert_int_eq(eventfd_write(fd, 1), 0);
}

static void on_flood_deadline(evutil_socket_t fd, short what, void *userdata) {
        Flood *f = userdata;

        (void) event_base_loopbreak(f->base);
}

static int on_flood_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Flood *f = userdata;

        if (sd_bus_message_is_method_error(m, NULL))
                f->errors++;
        f->replies++;
        return 0;
}

/* Bytes waiting in fd's socket. */
static int queued_bytes(int fd) {
        int n = 0;

        ck_assert_int_eq(ioctl(fd, FIONREAD, &n), 0);
        return n;
}

/* The daemon side serves a bounded batch of messages a turn of its loop: the other sources run
 * between two batches, however many reads wait (issue 17: a flood of unprivileged reads delayed
 * the request eventfds, re-arms, udev and the watchdog). The daemon side runs in this process,
 * to count what it does each turn. */
START_TEST(test_flood_yields) {
        sd_bus *clients[FLOOD_CLIENTS] = {};
        struct event *other, *deadline;
        struct timeval ten_s = { .tv_sec = 10 };
        Flood f = {};
        Harness h;
        int efd, queued = -1;

        harness_start_local(&h, &(HarnessOptions) { .with_pci = true });
        f.base = manager_event_base(h.manager);
        ck_assert_int_ge(sd_bus_add_filter(h.server_bus, NULL, on_flood_message, &f), 0);
        efd = eventfd(1, EFD_CLOEXEC|EFD_NONBLOCK);
        ck_assert_int_ge(efd, 0);
        other = event_new(f.base, efd, EV_READ|EV_PERSIST, on_other_source, &f);
        deadline = evtimer_new(f.base, on_flood_deadline, &f);
        ck_assert(other && deadline);
        ck_assert_int_eq(event_add(other, NULL), 0);
        ck_assert_int_eq(evtimer_add(deadline, &ten_s), 0);

        for (size_t i = 0; i < FLOOD_CLIENTS; i++) {
                ck_assert_int_eq(harness_connect(h.address, &clients[i]), 0);
                for (size_t k = 0; k < FLOOD_CALLS_PER_CLIENT; k++)
                        ck_assert_int_ge(sd_bus_call_method_async(clients[i], NULL, BUS_NAME, BUS_MANAGER_PATH,
                                                                  "org.freedesktop.DBus.Properties", "GetAll",
                                                                  on_flood_reply, &f, "s", BUS_MANAGER_INTERFACE), 0);
                ck_assert_int_ge(sd_bus_flush(clients[i]), 0);
        }
        /* all of it in the daemon side's socket (dbus-daemon forwards at its pace) */
        for (int i = 0; i < 500 && queued_bytes(sd_bus_get_fd(h.server_bus)) != queued; i++) {
                queued = queued_bytes(sd_bus_get_fd(h.server_bus));
                (void) usleep(20 * 1000);
        }

        ck_assert_int_eq(event_base_dispatch(f.base), 0);
        ck_assert_msg(f.processed == FLOOD_CALLS, "%u of %d calls served in 10 s", f.processed, FLOOD_CALLS);
        ck_assert_int_eq(f.turns, FLOOD_BUSY_TURNS);
        ck_assert_msg(f.most_between <= BUS_MESSAGES_PER_TURN,
                      "%u calls served in one turn of the loop, at most %d allowed", f.most_between,
                      BUS_MESSAGES_PER_TURN);

        /* and every call had its answer */
        while (f.replies < FLOOD_CALLS) {
                bool busy = false;

                for (size_t i = 0; i < FLOOD_CLIENTS; i++) {
                        int r = sd_bus_process(clients[i], NULL);

                        ck_assert_int_ge(r, 0);
                        busy = busy || r > 0;
                }
                if (!busy)
                        ck_assert_int_ge(sd_bus_wait(clients[0], 10 * 1000), 0);
        }
        ck_assert_int_eq(f.errors, 0);

        for (size_t i = 0; i < FLOOD_CLIENTS; i++)
                sd_bus_flush_close_unref(clients[i]);
        event_free(other);
        event_free(deadline);
        (void) close(efd);
        harness_stop(&h);
}
END_TEST

Suite *bus_hostile_suite(void) {
        Suite *s = suite_create("bus-hostile");
        TCase *tc = tcase_create("hostile");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_hostile_names);
        tcase_add_test(tc, test_hostile_calls);
        tcase_add_test(tc, test_hostile_paths);
        tcase_add_test(tc, test_hostile_policy);
        suite_add_tcase(s, tc);

        tc = tcase_create("flood");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_flood_yields);
        suite_add_tcase(s, tc);
        return s;
}
