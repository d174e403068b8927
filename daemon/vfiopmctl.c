/* vfiopmctl: the command line of SPEC §6 over the org.vfiopm1 API (ctl-client.h), plus the
 * offline policy check (policy-file.h). Output formats, --json included, are documented in
 * man/vfiopmctl.1; the JSON keys are a stable interface: add keys, never rename or drop them. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus-device.h"
#include "bus-manager.h"
#include "ctl-client.h"
#include "fileio.h"
#include "metrics.h"
#include "policy-file.h"
#include "policy-set.h"
#include "policy-store.h"
#include "strv.h"
#include "time-util.h"

#define DEFAULT_TIMEOUT_USEC (25ULL * 1000000)

static bool arg_json;
static bool arg_runtime;
static const char *arg_textfile;
static uint64_t arg_timeout_usec = DEFAULT_TIMEOUT_USEC;

/* ---- output helpers --------------------------------------------------------------------- */

static void print_json(json_object *o) {
        fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN|JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
        fputc('\n', stdout);
}

/* An error about one device: "vfiopmctl: NAME: reason", without saying the name twice when the
 * daemon's message starts with it already. */
static void device_error(const char *name, int r, const sd_bus_error *error) {
        const char *text = ctl_error_text(r, error);
        size_t len = strlen(name);

        if (strncmp(text, name, len) == 0 && text[len] == ':')
                fprintf(stderr, "vfiopmctl: %s\n", text);
        else
                fprintf(stderr, "vfiopmctl: %s: %s\n", name, text);
}

static void general_error(const char *what, int r, const sd_bus_error *error) {
        fprintf(stderr, "vfiopmctl: %s: %s\n", what, ctl_error_text(r, error));
}

static json_object *json_string_or_null(const char *s) {
        return s && *s ? json_object_new_string(s) : NULL;
}

/* Joules with a millijoule's precision, printed as such ("236.950", not json-c's %.17g
 * "236.95000000000005"): still a JSON number. */
static json_object *json_joules(double joules) {
        char buf[64];

        (void) snprintf(buf, sizeof(buf), "%.3f", joules);
        return json_object_new_double_s(joules, buf);
}

/* LOW%: the share of the daemon's uptime the device spent armed; NAN when unknown. */
static double low_power_percent(const CtlDevice *d, uint64_t uptime_usec) {
        if (uptime_usec == 0)
                return NAN;
        return fmin(100.0, 100.0 * (double) d->low_power_usec / (double) uptime_usec);
}

static json_object *device_to_json(const CtlDevice *d, uint64_t uptime_usec) {
        json_object *o = json_object_new_object();
        double pct = low_power_percent(d, uptime_usec);

        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(d->name));
        json_object_object_add(o, "path", json_object_new_string(d->path));
        json_object_object_add(o, "vendor", json_string_or_null(d->vendor));
        json_object_object_add(o, "device_id", json_string_or_null(d->device_id));
        json_object_object_add(o, "class", json_string_or_null(d->class));
        json_object_object_add(o, "driver", json_string_or_null(d->driver));
        json_object_object_add(o, "iommu_group", d->iommu_group[0] ? json_object_new_int(atoi(d->iommu_group)) : NULL);
        json_object_object_add(o, "mode", json_object_new_string(d->mode));
        json_object_object_add(o, "state", json_object_new_string(d->state));
        json_object_object_add(o, "power_state", json_object_new_string(d->power_state));
        json_object_object_add(o, "runtime_status", json_string_or_null(d->runtime_status));
        json_object_object_add(o, "release_reason", json_string_or_null(d->release_reason));
        json_object_object_add(o, "released_by", json_string_or_null(d->released_by));
        json_object_object_add(o, "wakes", json_object_new_uint64(d->wakes));
        json_object_object_add(o, "arms", json_object_new_uint64(d->arms));
        json_object_object_add(o, "low_power_usec", json_object_new_uint64(d->low_power_usec));
        json_object_object_add(o, "low_power_percent",
                               isnan(pct) ? NULL : json_object_new_double(round(pct * 10.0) / 10.0));
        json_object_object_add(o, "kernel_suspended_msec", json_object_new_uint64(d->kernel_suspended_msec));
        json_object_object_add(o, "kernel_suspended_since_seen_msec",
                               json_object_new_uint64(d->kernel_suspended_since_seen_msec));
        json_object_object_add(o, "energy_saved_joules",
                               d->energy_estimated ? json_joules(d->energy_saved_joules) : NULL);
        json_object_object_add(o, "last_wake_realtime_usec",
                               d->last_wake_realtime_usec ? json_object_new_uint64(d->last_wake_realtime_usec) : NULL);
        json_object_object_add(o, "last_error", json_string_or_null(d->last_error));
        return o;
}

static const char *dash(const char *s) {
        return s && *s ? s : "-";
}

/* show's "Released:" line: why the device is released. */
static const char *release_text(const CtlDevice *d) {
        static char buf[256];

        if (strcmp(d->release_reason, "release") == 0)
                return "by its own Release";
        if (strcmp(d->release_reason, "group") == 0)
                (void) snprintf(buf, sizeof(buf), "with %s (its Release freed IOMMU group %s)", dash(d->released_by),
                                dash(d->iommu_group));
        else if (strcmp(d->release_reason, "request") == 0)
                return "the kernel asked for it (driver unbind or removal)";
        else if (strcmp(d->release_reason, "reservation") == 0)
                return "reserved by a Release before it was on a VFIO driver";
        else
                (void) snprintf(buf, sizeof(buf), "%s", d->release_reason);
        return buf;
}

/* ---- status ----------------------------------------------------------------------------- */

static int get_policy_errors(sd_bus *bus, char ***ret, sd_bus_error *error) {
        return sd_bus_get_property_strv(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "PolicyErrors",
                                        error, ret);
}

/* SAVED: joules as Wh, as kWh from 10 kWh on; "-" without an estimate (no watts declared). */
static void format_energy(double joules, bool estimated, char *buf, size_t size) {
        double wh = joules / 3600.0;

        if (!estimated)
                (void) snprintf(buf, size, "-");
        else if (wh >= 10000.0)
                (void) snprintf(buf, size, "%.2f kWh", wh / 1000.0);
        else
                (void) snprintf(buf, size, "%.2f Wh", wh);
}

/* status's table row: the text of each cell (the numbers and VENDOR:DEVICE formatted into
 * buf, the rest the device's own strings). */
enum { STATUS_COLUMNS = 9, STATUS_FIRST_NUMERIC = 6 };
typedef struct StatusRow {
        const char *cell[STATUS_COLUMNS];
        char vendor_device[32], wakes[24], low[16], saved[32];
} StatusRow;

static void status_row(const CtlDevice *d, uint64_t uptime, StatusRow *row) {
        double pct = low_power_percent(d, uptime);

        if (*d->vendor || *d->device_id)
                (void) snprintf(row->vendor_device, sizeof(row->vendor_device), "%s:%s", dash(d->vendor),
                                dash(d->device_id));
        else
                strcpy(row->vendor_device, "-");
        (void) snprintf(row->wakes, sizeof(row->wakes), "%llu", (unsigned long long) d->wakes);
        if (isnan(pct))
                strcpy(row->low, "-");
        else
                (void) snprintf(row->low, sizeof(row->low), "%.1f", pct);
        format_energy(d->energy_saved_joules, d->energy_estimated, row->saved, sizeof(row->saved));
        const char *cell[STATUS_COLUMNS] = {
                d->name, row->vendor_device, dash(d->class), dash(d->mode), dash(d->state), dash(d->power_state),
                row->wakes, row->low, row->saved,
        };
        memcpy(row->cell, cell, sizeof(cell));
}

static void put_padding(int n) {
        static const char blanks[] = "                                ";

        for (; n > 0; n -= (int) sizeof(blanks) - 1)
                fwrite(blanks, 1, n < (int) sizeof(blanks) - 1 ? (size_t) n : sizeof(blanks) - 1, stdout);
}

/* The TOTAL row under the devices: the SAVED column's sum ("-" when no device has an
 * estimate), every other cell empty. */
static void status_total_row(const CtlDevice *devices, size_t n, StatusRow *row) {
        double joules = 0;
        bool estimated = false;

        for (size_t i = 0; i < n; i++)
                if (devices[i].energy_estimated) {
                        joules += devices[i].energy_saved_joules;
                        estimated = true;
                }
        format_energy(joules, estimated, row->saved, sizeof(row->saved));
        for (int c = 0; c < STATUS_COLUMNS; c++)
                row->cell[c] = "";
        row->cell[0] = "TOTAL";
        row->cell[STATUS_COLUMNS - 1] = row->saved;
}

/* The table, one device a row, then the TOTAL row when there are devices: numbers right-aligned,
 * text left-aligned; no trailing blanks. -ENOMEM if it cannot be laid out. */
static int print_status_table(const CtlDevice *devices, size_t n, uint64_t uptime) {
        static const char *const headers[STATUS_COLUMNS] = {
                "NAME", "VENDOR:DEVICE", "CLASS", "MODE", "STATE", "POWER", "WAKES", "LOW%", "SAVED",
        };
        _cleanup_free_ StatusRow *rows = calloc(n + 2, sizeof(*rows));
        size_t n_rows = n > 0 ? n + 2 : 1;
        int width[STATUS_COLUMNS];

        if (!rows)
                return -ENOMEM;
        memcpy(rows[0].cell, headers, sizeof(headers));
        for (size_t i = 0; i < n; i++)
                status_row(&devices[i], uptime, &rows[i + 1]);
        if (n > 0)
                status_total_row(devices, n, &rows[n + 1]);
        for (int c = 0; c < STATUS_COLUMNS; c++) {
                width[c] = 0;
                for (size_t i = 0; i < n_rows; i++)
                        if ((int) strlen(rows[i].cell[c]) > width[c])
                                width[c] = (int) strlen(rows[i].cell[c]);
        }
        for (size_t i = 0; i < n_rows; i++) {
                for (int c = 0; c < STATUS_COLUMNS; c++) {
                        const char *cell = rows[i].cell[c];
                        bool numeric = c >= STATUS_FIRST_NUMERIC, last = c == STATUS_COLUMNS - 1;
                        int pad = width[c] - (int) strlen(cell);

                        if (numeric)
                                put_padding(pad);
                        fputs(cell, stdout);
                        if (!numeric && !last)
                                put_padding(pad);
                        if (!last)
                                putchar(' ');
                }
                putchar('\n');
        }
        return 0;
}

static int cmd_status(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(ctl_status_done) CtlStatus status = {};
        const CtlDevice *devices;
        char **errors;
        const char *version;
        uint64_t uptime;
        size_t n;
        int r;

        /* one round trip, however many devices */
        r = ctl_status_get(bus, arg_json, &status, &error);
        if (r < 0) {
                general_error("listing devices", r, &error);
                return ctl_exit_status(r, &error);
        }
        devices = status.devices;
        n = status.n_devices;
        errors = status.policy_errors;
        version = status.version;
        uptime = status.uptime_usec;    /* LOW% shows "-" without it */

        if (arg_json) {
                json_object *root = json_object_new_object(), *daemon = json_object_new_object(),
                            *list = json_object_new_array(), *errs = json_object_new_array();

                for (size_t i = 0; i < n; i++)
                        json_object_array_add(list, device_to_json(&devices[i], uptime));
                for (char **p = errors; p && *p; p++)
                        json_object_array_add(errs, json_object_new_string(*p));
                json_object_object_add(daemon, "version", json_string_or_null(version));
                json_object_object_add(daemon, "uptime_usec", uptime ? json_object_new_uint64(uptime) : NULL);
                json_object_object_add(daemon, "policy_errors", errs);
                json_object_object_add(daemon, "energy_saved_joules",
                                       isnan(status.energy_saved_joules) ? NULL
                                                                         : json_joules(status.energy_saved_joules));
                json_object_object_add(root, "daemon", daemon);
                json_object_object_add(root, "devices", list);
                print_json(root);
                json_object_put(root);
        } else {
                if (print_status_table(devices, n, uptime) < 0) {
                        fprintf(stderr, "vfiopmctl: out of memory\n");
                        return CTL_EXIT_FAILED;
                }
                if (n == 0)
                        printf("(no VFIO devices)\n");
                for (char **p = errors; p && *p; p++)
                        fprintf(stderr, "vfiopmctl: policy error: %s\n", *p);
        }
        return CTL_EXIT_OK;
}

/* ---- show, policy ----------------------------------------------------------------------- */

static void format_realtime(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                (void) snprintf(buf, size, "never");
}

static int cmd_show(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        CtlDevice d;
        uint64_t uptime = 0;
        double pct;
        char when[64], saved[32];
        int r;

        r = ctl_device_get_by_name(bus, args[0], &d, &error);
        if (r < 0) {
                device_error(args[0], r, &error);
                return ctl_exit_status(r, &error);
        }
        (void) ctl_daemon_uptime(bus, &uptime);
        pct = low_power_percent(&d, uptime);

        if (arg_json) {
                json_object *o = device_to_json(&d, uptime);

                json_object_object_add(o, "policy", json_tokener_parse(d.policy));
                print_json(o);
                json_object_put(o);
        } else {
                format_realtime(d.last_wake_realtime_usec, when, sizeof(when));
                printf("%s\n", d.name);
                printf("%18s: %s\n", "Vendor:Device", *d.vendor ? d.vendor : "-");
                if (*d.device_id)
                        printf("%18s: %s\n", "Device", d.device_id);
                printf("%18s: %s\n", "Class", dash(d.class));
                printf("%18s: %s\n", "Driver", dash(d.driver));
                printf("%18s: %s\n", "IOMMU group", dash(d.iommu_group));
                printf("%18s: %s\n", "Mode", dash(d.mode));
                printf("%18s: %s\n", "State", dash(d.state));
                if (*d.release_reason)
                        printf("%18s: %s\n", "Released", release_text(&d));
                printf("%18s: %s (runtime %s)\n", "Power", dash(d.power_state), dash(d.runtime_status));
                printf("%18s: %llu\n", "Wakes", (unsigned long long) d.wakes);
                printf("%18s: %llu\n", "Arms", (unsigned long long) d.arms);
                if (isnan(pct))
                        printf("%18s: %.3f s\n", "Low power", (double) d.low_power_usec / 1e6);
                else
                        printf("%18s: %.3f s (%.1f%% of %.0f s)\n", "Low power", (double) d.low_power_usec / 1e6,
                               pct, (double) uptime / 1e6);
                printf("%18s: %.3f s (%.3f s since first seen)\n", "Kernel suspended",
                       (double) d.kernel_suspended_msec / 1e3, (double) d.kernel_suspended_since_seen_msec / 1e3);
                format_energy(d.energy_saved_joules, d.energy_estimated, saved, sizeof(saved));
                if (d.energy_estimated)
                        printf("%18s: %s (%.1f J)\n", "Energy saved", saved, d.energy_saved_joules);
                else
                        printf("%18s: - (set power_active_w and power_low_w in the policy)\n", "Energy saved");
                printf("%18s: %s\n", "Last wake", when);
                printf("%18s: %s\n", "Last error", dash(d.last_error));
        }
        ctl_device_done(&d);
        return CTL_EXIT_OK;
}

static int cmd_policy(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        json_object *policy;
        CtlDevice d;
        int r;

        r = ctl_device_get_by_name(bus, args[0], &d, &error);
        if (r < 0) {
                device_error(args[0], r, &error);
                return ctl_exit_status(r, &error);
        }
        policy = json_tokener_parse(d.policy);
        if (!policy || !json_object_is_type(policy, json_type_object)) {
                fprintf(stderr, "vfiopmctl: %s: %s\n", d.name,
                        *d.policy ? "the daemon sent a policy that is not a JSON object"
                                  : "no effective policy yet (the policy never loaded)");
                json_object_put(policy);
                ctl_device_done(&d);
                return CTL_EXIT_FAILED;
        }
        if (arg_json)
                print_json(policy);
        else {
                printf("%-16s %-10s %s\n", "KEY", "VALUE", "SOURCE");
                json_object_object_foreach(policy, key, entry) {
                        json_object *value = NULL, *source = NULL, *rule = NULL;

                        (void) json_object_object_get_ex(entry, "value", &value);
                        (void) json_object_object_get_ex(entry, "source", &source);
                        (void) json_object_object_get_ex(entry, "rule", &rule);
                        printf("%-16s %-10s ", key, json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN));
                        if (source && json_object_is_type(source, json_type_string))
                                printf("%s (rule %d)\n", json_object_get_string(source), json_object_get_int(rule));
                        else
                                printf("built-in default\n");
                }
        }
        json_object_put(policy);
        ctl_device_done(&d);
        return CTL_EXIT_OK;
}

/* ---- set, reset ------------------------------------------------------------------------- */

/* The rule set now adds to: the keys in force that came from the device's D-Bus file (runtime or
 * persistent, whichever is in force), so that "set" after "set" accumulates as systemctl
 * set-property does. */
static int current_dbus_rule(const CtlDevice *d, json_object **ret) {
        _cleanup_free_ char *filename = NULL;
        json_object *policy, *rule;

        if (asprintf(&filename, "/" POLICY_STORE_FILE_PREFIX "%s" POLICY_STORE_FILE_SUFFIX, d->name) < 0)
                return -ENOMEM;
        rule = json_object_new_object();
        if (!rule)
                return -ENOMEM;
        policy = json_tokener_parse(d->policy);
        if (policy && json_object_is_type(policy, json_type_object)) {
                json_object_object_foreach(policy, key, entry) {
                        json_object *source = NULL, *value = NULL;
                        const char *s;
                        size_t len;

                        if (!json_object_object_get_ex(entry, "source", &source) ||
                            !json_object_is_type(source, json_type_string) ||
                            !json_object_object_get_ex(entry, "value", &value))
                                continue;
                        s = json_object_get_string(source);
                        len = strlen(s);
                        if (len >= strlen(filename) && strcmp(s + len - strlen(filename), filename) == 0)
                                json_object_object_add(rule, key, json_object_get(value));
                }
        }
        json_object_put(policy);
        *ret = rule;
        return 0;
}

/* "KEY=VALUE": VALUE is JSON if it parses as JSON (500, true, null, "x"), else a string
 * (wakeup); "KEY=" drops the key. */
static int apply_assignment(json_object *rule, const char *arg) {
        _cleanup_free_ char *key = NULL;
        const char *eq = strchr(arg, '=');
        json_object *value;

        if (!eq || eq == arg) {
                fprintf(stderr, "vfiopmctl: set: expected KEY=VALUE, got '%s'\n", arg);
                return -EINVAL;
        }
        key = strndup(arg, (size_t) (eq - arg));
        if (!key)
                return -ENOMEM;
        if (strcmp(key, "match") == 0) {
                fprintf(stderr, "vfiopmctl: set: 'match' cannot be set from here: the rule always matches the device named\n");
                return -EINVAL;
        }
        if (eq[1] == 0) {
                json_object_object_del(rule, key);
                return 0;
        }
        value = json_tokener_parse(eq + 1);
        if (!value && strcmp(eq + 1, "null") != 0)
                value = json_object_new_string(eq + 1);
        json_object_object_add(rule, key, value);
        return 0;
}

static int cmd_set(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name = args[0];
        json_object *rule = NULL;
        CtlDevice d;
        int r;

        r = ctl_device_get_by_name(bus, name, &d, &error);
        if (r < 0) {
                device_error(name, r, &error);
                return ctl_exit_status(r, &error);
        }
        r = current_dbus_rule(&d, &rule);
        ctl_device_done(&d);
        if (r < 0) {
                fprintf(stderr, "vfiopmctl: %s: %s\n", name, strerror(-r));
                return CTL_EXIT_FAILED;
        }
        for (char **a = args + 1; *a; a++)
                if (apply_assignment(rule, *a) < 0) {
                        json_object_put(rule);
                        return CTL_EXIT_USAGE;
                }
        if (json_object_object_length(rule) == 0)
                /* Nothing left to set: the file would say nothing. */
                r = ctl_call(bus, &error, NULL, "ResetPolicy", "sb", name, arg_runtime);
        else
                r = ctl_call(bus, &error, NULL, "SetPolicy", "ssb", name,
                             json_object_to_json_string_ext(rule, JSON_C_TO_STRING_PLAIN|JSON_C_TO_STRING_NOSLASHESCAPE),
                             arg_runtime);
        json_object_put(rule);
        if (r < 0) {
                device_error(name, r, &error);
                return ctl_exit_status(r, &error);
        }
        return CTL_EXIT_OK;
}

static int cmd_reset(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = ctl_call(bus, &error, NULL, "ResetPolicy", "sb", args[0], arg_runtime);
        if (r < 0) {
                device_error(args[0], r, &error);
                return ctl_exit_status(r, &error);
        }
        return CTL_EXIT_OK;
}

/* ---- claim, release, wake, reload ------------------------------------------------------- */

static int each_device(sd_bus *bus, char **names, const char *member) {
        int ret = CTL_EXIT_OK;

        for (char **n = names; *n; n++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int r = ctl_call(bus, &error, NULL, member, "s", *n);

                if (r < 0) {
                        CtlExit e = ctl_exit_status(r, &error);

                        device_error(*n, r, &error);
                        if (e == CTL_EXIT_UNREACHABLE)
                                return e;       /* the next ones would say the same */
                        ret = e;
                }
        }
        return ret;
}

static int cmd_claim(sd_bus *bus, char **args) {
        return each_device(bus, args, "Claim");
}

/* Release, then say which other devices went with each: those its Release released (same IOMMU
 * group), read back from ReleasedBy. */
static int cmd_release(sd_bus *bus, char **args) {
        int ret = each_device(bus, args, "Release");
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        CtlDevice *devices = NULL;
        size_t n = 0;

        if (ret == CTL_EXIT_UNREACHABLE || ctl_devices_get(bus, &devices, &n, &error) < 0)
                return ret;
        for (char **a = args; *a; a++)
                for (size_t i = 0; i < n; i++)
                        if (strcmp(devices[i].release_reason, "group") == 0 &&
                            strcmp(devices[i].released_by, *a) == 0)
                                printf("%s: released with %s (IOMMU group %s)\n", devices[i].name, *a,
                                       dash(devices[i].iommu_group));
        ctl_devices_free(devices, n);
        return ret;
}

static int cmd_wake(sd_bus *bus, char **args) {
        return each_device(bus, args, "Wake");
}

static int cmd_reload(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char **errors = NULL;
        int r, ret = CTL_EXIT_OK;

        r = ctl_call(bus, &error, NULL, "Reload", NULL);
        if (r < 0) {
                general_error("reload", r, &error);
                return ctl_exit_status(r, &error);
        }
        /* The files that failed keep their last good content: the reload worked, the files did not. */
        r = get_policy_errors(bus, &errors, &error);
        if (r < 0) {
                general_error("reading PolicyErrors", r, &error);
                return ctl_exit_status(r, &error);
        }
        for (char **p = errors; p && *p; p++) {
                fprintf(stderr, "vfiopmctl: policy error: %s\n", *p);
                ret = CTL_EXIT_FAILED;
        }
        strv_free(errors);
        return ret;
}

/* ---- monitor ---------------------------------------------------------------------------- */

static volatile sig_atomic_t monitor_stop;

static void on_stop_signal(int sig) {
        monitor_stop = 1;
}

/* One event line: "2026-11-24 10:00:01.123456 NAME EVENT KEY=VALUE…", or its JSON object
 * {"time_realtime_usec":…, "event":…, "name":…|null, "properties":{…}}. props is an object of
 * strings (a string array for PolicyErrors, a number for Wakes), borrowed. */
static void monitor_print(const char *event, const char *name, json_object *props) {
        usec_t t_usec = now(CLOCK_REALTIME);

        if (arg_json) {
                json_object *o = json_object_new_object();

                json_object_object_add(o, "time_realtime_usec", json_object_new_uint64(t_usec));
                json_object_object_add(o, "event", json_object_new_string(event));
                json_object_object_add(o, "name", json_string_or_null(name));
                json_object_object_add(o, "properties", props ? json_object_get(props) : json_object_new_object());
                print_json(o);
                json_object_put(o);
        } else {
                char stamp[32];
                time_t t = (time_t) (t_usec / USEC_PER_SEC);
                struct tm tm;

                if (!localtime_r(&t, &tm) || strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm) == 0)
                        stamp[0] = 0;
                printf("%s.%06llu %s %s", stamp, (unsigned long long) (t_usec % USEC_PER_SEC), name ?: "-", event);
                if (props) {
                        json_object_object_foreach(props, key, value) {
                                /* arrays (PolicyErrors) as compact JSON: one line per event */
                                if (json_object_is_type(value, json_type_array))
                                        printf(" %s=%s", key, json_object_to_json_string_ext(value,
                                               JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                                else
                                        printf(" %s=%s", key, json_object_get_string(value));
                        }
                }
                putchar('\n');
        }
        fflush(stdout);
}

static int monitor_present(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        CtlDevice *devices = NULL;
        size_t n = 0;
        int r;

        r = ctl_devices_get(bus, &devices, &n, &error);
        if (r < 0) {
                general_error("listing devices", r, &error);
                return ctl_exit_status(r, &error);
        }
        for (size_t i = 0; i < n; i++) {
                json_object *p = json_object_new_object();

                json_object_object_add(p, "Mode", json_object_new_string(devices[i].mode));
                json_object_object_add(p, "State", json_object_new_string(devices[i].state));
                json_object_object_add(p, "PowerState", json_object_new_string(devices[i].power_state));
                monitor_print("present", devices[i].name, p);
                json_object_put(p);
        }
        ctl_devices_free(devices, n);
        return 0;
}

static int on_device_signal(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        const char *member = sd_bus_message_get_member(msg), *name, *path;

        if (sd_bus_message_read(msg, "so", &name, &path) < 0)
                return 0;
        monitor_print(strcmp(member, "DeviceAdded") == 0 ? "added" : "removed", name, NULL);
        return 0;
}

/* A device's PropertiesChanged: "changed" with the strings that moved (State, Mode, PowerState,
 * ReleaseReason, ReleasedBy), then "wake" when Wakes moved, which a wake that re-armed in the
 * same loop turn shows alone (State is back where it was). Arms moves with them: not printed. */
static int on_properties_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        _cleanup_free_ char *name = NULL;
        const char *path = sd_bus_message_get_path(msg), *interface, *property;
        json_object *props;
        uint64_t wakes = 0;
        bool manager, woke = false;
        int r;

        if (sd_bus_message_read(msg, "s", &interface) < 0)
                return 0;
        manager = strcmp(interface, BUS_MANAGER_INTERFACE) == 0;
        if (!manager) {
                if (strcmp(interface, BUS_DEVICE_INTERFACE) != 0 ||
                    sd_bus_path_decode(path, BUS_DEVICE_PREFIX, &name) <= 0)
                        return 0;
        }
        props = json_object_new_object();
        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        while (r > 0) {
                const char *contents, *s;

                r = sd_bus_message_enter_container(msg, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(msg, "s", &property);
                if (r >= 0)
                        r = sd_bus_message_peek_type(msg, NULL, &contents);
                if (r < 0)
                        break;
                if (strcmp(contents, "s") == 0) {
                        r = sd_bus_message_read(msg, "v", "s", &s);
                        if (r >= 0)
                                json_object_object_add(props, property, json_object_new_string(s));
                } else if (strcmp(contents, "as") == 0) {
                        json_object *list = json_object_new_array();

                        r = sd_bus_message_enter_container(msg, 'v', "as");
                        if (r >= 0)
                                r = sd_bus_message_enter_container(msg, 'a', "s");
                        while (r > 0 && (r = sd_bus_message_read(msg, "s", &s)) > 0)
                                json_object_array_add(list, json_object_new_string(s));
                        if (r >= 0)
                                r = sd_bus_message_exit_container(msg);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(msg);
                        json_object_object_add(props, property, list);
                } else if (strcmp(contents, "t") == 0 && strcmp(property, "Wakes") == 0) {
                        r = sd_bus_message_read(msg, "v", "t", &wakes);
                        woke = r >= 0;
                } else
                        r = sd_bus_message_skip(msg, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(msg);
                if (r >= 0)
                        r = 1;
        }
        if (json_object_object_length(props) > 0) {
                if (manager) {
                        json_object *errors = NULL;

                        if (json_object_object_get_ex(props, "PolicyErrors", &errors)) {
                                json_object *p = json_object_new_object();

                                json_object_object_add(p, "PolicyErrors", json_object_get(errors));
                                monitor_print("policy-errors", NULL, p);
                                json_object_put(p);
                        }
                } else
                        monitor_print("changed", name, props);
        }
        json_object_put(props);
        if (woke && !manager) {
                props = json_object_new_object();
                json_object_object_add(props, "Wakes", json_object_new_uint64(wakes));
                monitor_print("wake", name, props);
                json_object_put(props);
        }
        return 0;
}

static int on_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (*new_owner)
                monitor_print("daemon-started", NULL, NULL);
        else
                monitor_print("daemon-stopped", NULL, NULL);
        return 0;
}

static int cmd_monitor(sd_bus *bus, char **args) {
        struct sigaction sa = { .sa_handler = on_stop_signal };
        int r;

        /* Subscribe first, then list, so that nothing falls between the two. sd_bus_add_match()
         * waits for the bus to confirm each match. */
        r = sd_bus_match_signal(bus, NULL, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "DeviceAdded",
                                on_device_signal, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                        "DeviceRemoved", on_device_signal, NULL);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='" BUS_NAME "',interface='org.freedesktop.DBus.Properties',"
                                     "member='PropertiesChanged',path_namespace='" BUS_MANAGER_PATH "'",
                                     on_properties_changed, NULL);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                                     "member='NameOwnerChanged',arg0='" BUS_NAME "'",
                                     on_name_owner_changed, NULL);
        if (r < 0) {
                general_error("subscribing to the daemon's signals", r, NULL);
                return ctl_exit_status(r, NULL);
        }
        r = monitor_present(bus);
        if (r != 0)
                return r;

        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGPIPE, &sa, NULL);
        while (!monitor_stop) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        general_error("monitor", r, NULL);
                        return ctl_exit_status(r, NULL);
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR) {
                        general_error("monitor", r, NULL);
                        return ctl_exit_status(r, NULL);
                }
        }
        return CTL_EXIT_OK;
}

/* ---- check (offline) -------------------------------------------------------------------- */

static int check_file(const char *path, json_object *files, int *errors) {
        _cleanup_free_ char *message = NULL;
        _cleanup_(policy_file_unrefp) PolicyFile *file = NULL;
        json_object *o;
        int r;

        r = policy_file_load_at(AT_FDCWD, path, path, &file, &message);
        o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_object_add(o, "rules", r == 0 ? json_object_new_uint64(file->n_rules) : NULL);
        json_object_object_add(o, "masked", json_object_new_boolean(r == 1));
        if (r < 0) {
                if (!message && asprintf(&message, "%s: %s", path, strerror(-r)) < 0)
                        message = NULL;
                json_object_object_add(o, "error", json_object_new_string(message ?: path));
                (*errors)++;
        } else
                json_object_object_add(o, "error", NULL);
        json_object_array_add(files, o);
        return 0;
}

static int check_dirs(char **dirs, json_object *files, int *errors) {
        _cleanup_(policy_set_freep) PolicySet *set = NULL;
        _cleanup_close_ int root = -EBADF;
        int r;

        root = open("/", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (root < 0)
                return -errno;
        r = policy_set_new(&set);
        if (r < 0)
                return r;
        r = policy_set_load(set, root, dirs);
        if (r < 0)
                return r;
        for (size_t i = 0; i < set->n_entries; i++) {
                const PolicySetEntry *e = &set->entries[i];
                json_object *o = json_object_new_object();

                json_object_object_add(o, "path", json_object_new_string(e->path));
                json_object_object_add(o, "rules", !e->error && e->file ? json_object_new_uint64(e->file->n_rules) :
                                                   e->masked ? json_object_new_uint64(0) : NULL);
                json_object_object_add(o, "masked", json_object_new_boolean(e->masked));
                json_object_object_add(o, "error", json_string_or_null(e->error));
                json_object_array_add(files, o);
        }
        /* Errors that belong to no file (a directory that cannot be read) are in set->errors too. */
        for (size_t i = 0; i < set->n_errors; i++) {
                bool of_file = false;

                for (size_t j = 0; j < set->n_entries && !of_file; j++)
                        of_file = set->entries[j].error && strcmp(set->entries[j].error, set->errors[i]) == 0;
                if (!of_file) {
                        json_object *o = json_object_new_object();

                        json_object_object_add(o, "path", NULL);
                        json_object_object_add(o, "rules", NULL);
                        json_object_object_add(o, "masked", json_object_new_boolean(false));
                        json_object_object_add(o, "error", json_object_new_string(set->errors[i]));
                        json_object_array_add(files, o);
                }
        }
        *errors += (int) set->n_errors;
        return 0;
}

/* check [DIR|FILE…]: directories are loaded together, as the daemon would with --policy-dirs
 * (masking across them included); a file is validated on its own. */
static int cmd_check(sd_bus *bus, char **args) {
        _cleanup_(strv_freep) char **dirs = NULL;
        _cleanup_free_ char *cwd = NULL;
        json_object *files;
        size_t n_dirs = 0, n_args = 0;
        int errors = 0, r = 0;

        for (char **a = args; *a; a++)
                n_args++;
        if (n_args == 0) {
                r = policy_dirs_from_string(POLICY_DIRS_DEFAULT, &dirs);
                if (r < 0) {
                        fprintf(stderr, "vfiopmctl: check: %s\n", strerror(-r));
                        return CTL_EXIT_FAILED;
                }
                for (char **d = dirs; *d; d++)
                        n_dirs++;
        } else {
                dirs = calloc(n_args + 1, sizeof(char *));
                cwd = getcwd(NULL, 0);
                if (!dirs || !cwd) {
                        fprintf(stderr, "vfiopmctl: check: %s\n", strerror(errno));
                        return CTL_EXIT_FAILED;
                }
        }

        files = json_object_new_array();
        for (char **a = args; r >= 0 && *a; a++) {
                struct stat st;

                if (stat(*a, &st) < 0) {
                        json_object *o = json_object_new_object();
                        char *message = NULL;

                        if (asprintf(&message, "%s: %s", *a, strerror(errno)) < 0)
                                r = -ENOMEM;
                        json_object_object_add(o, "path", json_object_new_string(*a));
                        json_object_object_add(o, "rules", NULL);
                        json_object_object_add(o, "masked", json_object_new_boolean(false));
                        json_object_object_add(o, "error", json_string_or_null(message));
                        json_object_array_add(files, o);
                        free(message);
                        errors++;
                } else if (S_ISDIR(st.st_mode)) {
                        size_t len = strlen(*a);

                        while (len > 1 && (*a)[len - 1] == '/')
                                len--;
                        if ((*a)[0] == '/')
                                dirs[n_dirs] = strndup(*a, len);
                        else if (asprintf(&dirs[n_dirs], "%s/%.*s", cwd, (int) len, *a) < 0)
                                dirs[n_dirs] = NULL;
                        if (!dirs[n_dirs])
                                r = -ENOMEM;
                        else
                                n_dirs++;
                } else
                        r = check_file(*a, files, &errors);
        }
        if (r >= 0 && n_dirs > 0)
                r = check_dirs(dirs, files, &errors);
        if (r < 0) {
                fprintf(stderr, "vfiopmctl: check: %s\n", strerror(-r));
                json_object_put(files);
                return CTL_EXIT_FAILED;
        }

        if (arg_json) {
                json_object *root = json_object_new_object();

                json_object_object_add(root, "valid", json_object_new_boolean(errors == 0));
                json_object_object_add(root, "files", files);
                print_json(root);
                json_object_put(root);
        } else {
                size_t n = json_object_array_length(files);

                for (size_t i = 0; i < n; i++) {
                        json_object *o = json_object_array_get_idx(files, i), *path, *rules, *masked, *error;

                        json_object_object_get_ex(o, "path", &path);
                        json_object_object_get_ex(o, "rules", &rules);
                        json_object_object_get_ex(o, "masked", &masked);
                        json_object_object_get_ex(o, "error", &error);
                        if (error)
                                fprintf(stderr, "vfiopmctl: %s\n", json_object_get_string(error));
                        else if (json_object_get_boolean(masked))
                                printf("%s: masked\n", json_object_get_string(path));
                        else
                                printf("%s: %d rule%s\n", json_object_get_string(path), json_object_get_int(rules),
                                       json_object_get_int(rules) == 1 ? "" : "s");
                }
                printf("%zu file%s, %d error%s\n", n, n == 1 ? "" : "s", errors, errors == 1 ? "" : "s");
                json_object_put(files);
        }
        return errors ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}

/* ---- metrics --------------------------------------------------------------------------- */

#define METRICS_TEXTFILE "vfiopmd.prom"

/* --textfile DIR: DIR's fd, opened before the daemon is asked anything, so that a wrong DIR is
 * said as such. */
static int textfile_dir_open(const char *dir, int *ret) {
        int fd = open(dir, O_RDONLY|O_DIRECTORY|O_CLOEXEC);

        if (fd < 0) {
                fprintf(stderr, "vfiopmctl: --textfile %s: %s\n", dir,
                        errno == ENOTDIR ? "not a directory" : strerror(errno));
                return -errno;
        }
        *ret = fd;
        return 0;
}

/* Prometheus text format on stdout, or with --textfile into DIR/vfiopmd.prom, replaced
 * atomically (a dot file beside it, renamed over it: node_exporter's textfile collector reads
 * *.prom only, and never half a file). A failure leaves the file as it was. */
static int cmd_metrics(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(ctl_status_done) CtlStatus status = {};
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        int r;

        if (arg_textfile && textfile_dir_open(arg_textfile, &dir_fd) < 0)
                return CTL_EXIT_FAILED;
        /* every device with every property, the manager's, in one round trip */
        r = ctl_status_get(bus, true, &status, &error);
        if (r < 0) {
                general_error("reading the devices", r, &error);
                return ctl_exit_status(r, &error);
        }
        r = metrics_format(&status, &text);
        if (r < 0) {
                fprintf(stderr, "vfiopmctl: out of memory\n");
                return CTL_EXIT_FAILED;
        }
        if (!arg_textfile) {
                fputs(text, stdout);
                return CTL_EXIT_OK;
        }
        r = write_file_atomic(dir_fd, METRICS_TEXTFILE, text, 0);
        if (r < 0) {
                fprintf(stderr, "vfiopmctl: --textfile %s: writing %s: %s\n", arg_textfile, METRICS_TEXTFILE,
                        strerror(-r));
                return CTL_EXIT_FAILED;
        }
        return CTL_EXIT_OK;
}

/* ---- command line ----------------------------------------------------------------------- */

typedef struct Verb {
        const char *name;
        unsigned min_args, max_args;    /* UINT_MAX: any number */
        bool needs_bus;
        int (*run)(sd_bus *bus, char **args);
} Verb;

static const Verb verbs[] = {
        { "status",  0, 0,        true,  cmd_status },
        { "show",    1, 1,        true,  cmd_show },
        { "policy",  1, 1,        true,  cmd_policy },
        { "set",     2, UINT_MAX, true,  cmd_set },
        { "reset",   1, 1,        true,  cmd_reset },
        { "claim",   1, UINT_MAX, true,  cmd_claim },
        { "release", 1, UINT_MAX, true,  cmd_release },
        { "wake",    1, UINT_MAX, true,  cmd_wake },
        { "reload",  0, 0,        true,  cmd_reload },
        { "monitor", 0, 0,        true,  cmd_monitor },
        { "metrics", 0, 0,        true,  cmd_metrics },
        { "check",   0, UINT_MAX, false, cmd_check },
};

static void help(void) {
        printf("vfiopmctl [OPTIONS] [COMMAND]\n\n"
               "Query and control vfiopmd, the power policy daemon for VFIO devices.\n\n"
               "Commands:\n"
               "  status                   every device: NAME VENDOR:DEVICE CLASS MODE STATE POWER WAKES LOW%% SAVED\n"
               "                           (the default)\n"
               "  show NAME                one device's properties\n"
               "  policy NAME              its effective policy, with the file behind each key\n"
               "  set NAME KEY=VALUE...    set policy keys for the device (KEY= drops one)\n"
               "  reset NAME               remove what set wrote\n"
               "  claim NAME...            hold the devices again (after release or busy)\n"
               "  release NAME...          close the devices so that another process can open them\n"
               "  wake NAME...             bring the devices to D0 now\n"
               "  reload                   re-read the policy files\n"
               "  monitor                  print one line per event until interrupted\n"
               "  metrics                  Prometheus text format (--textfile DIR: into DIR/" METRICS_TEXTFILE ")\n"
               "  check [DIR|FILE...]      validate policy files offline (default: %s)\n\n"
               "Options:\n"
               "  --json                   machine-readable output (schema in vfiopmctl(1))\n"
               "  --runtime                set/reset: the runtime file (lost at reboot)\n"
               "  --textfile DIR           metrics: write DIR/" METRICS_TEXTFILE " atomically, for node_exporter\n"
               "  --timeout SEC            wait at most SEC seconds for each answer (default 25)\n"
               "  --version                print the version\n"
               "  -h, --help               print this help\n\n"
               "Exit status: 0 ok, 1 the operation failed, 2 usage error, 3 daemon not reachable.\n",
               POLICY_DIRS_DEFAULT);
}

/* 0: go on; 1: done, exit 0; -1: usage error */
static int parse_argv(int argc, char *argv[]) {
        enum { ARG_JSON = 0x100, ARG_RUNTIME, ARG_TEXTFILE, ARG_TIMEOUT, ARG_VERSION };
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },
                { "runtime", no_argument, NULL, ARG_RUNTIME },
                { "textfile", required_argument, NULL, ARG_TEXTFILE },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        char *end;
        double sec;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_RUNTIME:
                        arg_runtime = true;
                        break;
                case ARG_TEXTFILE:
                        if (!*optarg) {
                                fprintf(stderr, "vfiopmctl: --textfile takes a directory, not ''\n");
                                return -1;
                        }
                        arg_textfile = optarg;
                        break;
                case ARG_TIMEOUT:
                        errno = 0;
                        sec = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !(sec > 0) || sec > 3600) {
                                fprintf(stderr, "vfiopmctl: --timeout takes seconds, more than 0 and at most 3600, not '%s'\n",
                                        optarg);
                                return -1;
                        }
                        arg_timeout_usec = (uint64_t) (sec * 1e6);
                        break;
                case ARG_VERSION:
                        printf("vfiopmctl %s\n", PACKAGE_VERSION);
                        return 1;
                case 'h':
                        help();
                        return 1;
                case '?':
                        return -1;
                default:
                        abort();
                }
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Verb *verb = NULL;
        const char *name;
        unsigned n_args = 0;
        char **args;
        int r;

        r = parse_argv(argc, argv);
        if (r != 0)
                return r > 0 ? CTL_EXIT_OK : CTL_EXIT_USAGE;

        name = optind < argc ? argv[optind] : "status";
        args = optind < argc ? argv + optind + 1 : argv + argc;
        for (char **a = args; *a; a++)
                n_args++;
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        verb = &verbs[i];
        if (!verb) {
                fprintf(stderr, "vfiopmctl: unknown command '%s' (see vfiopmctl --help)\n", name);
                return CTL_EXIT_USAGE;
        }
        if (n_args < verb->min_args || n_args > verb->max_args) {
                fprintf(stderr, "vfiopmctl: %s: %s (see vfiopmctl --help)\n", verb->name,
                        n_args < verb->min_args ? "too few arguments" : "too many arguments");
                return CTL_EXIT_USAGE;
        }
        if (arg_runtime && strcmp(verb->name, "set") != 0 && strcmp(verb->name, "reset") != 0) {
                fprintf(stderr, "vfiopmctl: %s: --runtime only applies to set and reset\n", verb->name);
                return CTL_EXIT_USAGE;
        }
        if (arg_textfile && strcmp(verb->name, "metrics") != 0) {
                fprintf(stderr, "vfiopmctl: %s: --textfile only applies to metrics\n", verb->name);
                return CTL_EXIT_USAGE;
        }
        if (arg_json && strcmp(verb->name, "metrics") == 0) {
                fprintf(stderr, "vfiopmctl: metrics: --json does not apply (the output is Prometheus text)\n");
                return CTL_EXIT_USAGE;
        }
        for (char **a = args; *a; a++)
                if (!**a) {
                        fprintf(stderr, "vfiopmctl: %s: an empty argument names nothing\n", verb->name);
                        return CTL_EXIT_USAGE;
                }

        if (verb->needs_bus) {
                r = ctl_bus_open(arg_timeout_usec, &bus);
                if (r < 0) {
                        general_error("connecting to the system bus", r, NULL);
                        return CTL_EXIT_UNREACHABLE;
                }
        }
        return verb->run(bus, args);
}
