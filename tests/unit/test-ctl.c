#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus-harness.h"
#include "bus-manager.h"
#include "domain-xml.h"
#include "fileio.h"
#include "fixture.h"
#include "promtool-helpers.h"
#include "suites.h"

/* vfiopmctl and the libvirt hook, the built binaries, against the daemon side of bus-harness.h on
 * a private bus (DBUS_SYSTEM_BUS_ADDRESS points them there), on the fake kernel: what a user
 * types, what comes out (stdout, stderr, exit status), and what it did to the daemon. */

#define PCI HARNESS_PCI_NAME
#define SIM HARNESS_SIM_NAME
#define WAKEUP_POLICY "{ \"mode\": \"wakeup\", \"rearm_delay_ms\": 600000 }"
#define NOBODY 65534

typedef struct Run {
        int status;             /* exit status; 128 + signal if killed */
        char *out, *err;
} Run;

static void run_done(Run *r) {
        free(r->out);
        free(r->err);
        *r = (Run) {};
}

/* Reads both pipes to EOF. */
static void collect(int out_fd, int err_fd, char **ret_out, char **ret_err) {
        struct pollfd p[2] = { { .fd = out_fd, .events = POLLIN }, { .fd = err_fd, .events = POLLIN } };
        char *buf[2] = { NULL, NULL };
        size_t len[2] = { 0, 0 };
        int open_fds = 2;

        while (open_fds > 0) {
                ck_assert_int_ge(poll(p, 2, 30000), 1);
                for (int i = 0; i < 2; i++) {
                        char chunk[4096];
                        ssize_t n;

                        if (p[i].fd < 0 || !p[i].revents)
                                continue;
                        n = read(p[i].fd, chunk, sizeof(chunk));
                        if (n <= 0) {
                                (void) close(p[i].fd);
                                p[i].fd = -1;
                                open_fds--;
                                continue;
                        }
                        buf[i] = realloc(buf[i], len[i] + (size_t) n + 1);
                        ck_assert_ptr_nonnull(buf[i]);
                        memcpy(buf[i] + len[i], chunk, (size_t) n);
                        len[i] += (size_t) n;
                }
        }
        *ret_out = buf[0] ? buf[0] : strdup("");
        *ret_err = buf[1] ? buf[1] : strdup("");
        if (buf[0])
                buf[0][len[0]] = 0;
        if (buf[1])
                buf[1][len[1]] = 0;
}

/* Runs program with argv (NULL-terminated) against address, as uid (0: as is), stdin from input
 * (NULL: /dev/null). */
static Run run_full(const char *address, uid_t uid, const char *input, const char *program, const char *const *argv) {
        int out[2], err[2], in[2];
        Run r = {};
        pid_t pid;

        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) dup2(in[0], STDIN_FILENO);
                (void) dup2(out[1], STDOUT_FILENO);
                (void) dup2(err[1], STDERR_FILENO);
                if (address)
                        (void) setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1);
                (void) setenv("TZ", "UTC", 1);
                if (uid != 0 && (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
                        _exit(120);
                execv(program, (char *const *) argv);
                _exit(127);
        }
        (void) close(out[1]);
        (void) close(err[1]);
        (void) close(in[0]);
        if (input) {
                size_t left = strlen(input);
                const char *p = input;

                (void) signal(SIGPIPE, SIG_IGN);
                while (left > 0) {
                        ssize_t n = write(in[1], p, left);
                        if (n <= 0)
                                break;          /* the program did not read it all: its choice */
                        p += n;
                        left -= (size_t) n;
                }
        }
        (void) close(in[1]);
        collect(out[0], err[0], &r.out, &r.err);
        ck_assert_int_eq(waitpid(pid, &r.status, 0), pid);
        r.status = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + WTERMSIG(r.status);
        return r;
}

#define CTL(h, ...) run_full((h)->address, 0, NULL, VFIOPMCTL_PATH, (const char *const[]) { "vfiopmctl", __VA_ARGS__, NULL })
#define CTL_AS(h, uid, ...) run_full((h)->address, uid, NULL, VFIOPMCTL_PATH, (const char *const[]) { "vfiopmctl", __VA_ARGS__, NULL })

static void expect_run(const Run *r, int status, const char *out, const char *err) {
        ck_assert_msg(r->status == status, "exit %d, expected %d; stdout: %s; stderr: %s", r->status, status, r->out, r->err);
        if (out)
                ck_assert_str_eq(r->out, out);
        if (err)
                ck_assert_str_eq(r->err, err);
}

static json_object *run_json(Harness *h, const char *const *argv) {
        Run r = run_full(h->address, 0, NULL, VFIOPMCTL_PATH, argv);
        json_object *o;

        expect_run(&r, 0, NULL, NULL);
        o = json_tokener_parse(r.out);
        ck_assert_msg(o, "not JSON: %s", r.out);
        run_done(&r);
        return o;
}

static const char *jstr(json_object *o, const char *path) {
        json_object *v = o;
        char buf[256], *save = NULL;

        (void) snprintf(buf, sizeof(buf), "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(v, k, &v))
                        return NULL;
        return v ? json_object_get_string(v) : NULL;
}

static char *device_state(Harness *h, const char *name) {
        json_object *o = run_json(h, (const char *const[]) { "vfiopmctl", "--json", "show", name, NULL });
        char *s = strdup(jstr(o, "state"));

        json_object_put(o);
        return s;
}

/* Polls for up to 5 s: a state may be a delay away (arm_delay_ms, udev events). */
static void expect_state(Harness *h, const char *name, const char *state) {
        for (int i = 0;; i++) {
                _cleanup_free_ char *s = device_state(h, name);

                if (strcmp(s, state) == 0)
                        return;
                ck_assert_msg(i < 100, "%s: state %s, expected %s", name, s, state);
                (void) usleep(50 * 1000);
        }
}

/* The daemon refuses every change to a caller that is not root: the tests that change something
 * say so and pass without running as anyone else (make check as a user, dpkg-buildpackage
 * without root); as root (CI, tools/test-all) they run. */
#define NEEDS_ROOT()                                                                    \
        do {                                                                            \
                if (geteuid() != 0) {                                                   \
                        fprintf(stderr, "%s: skipped, needs root\n", __func__);         \
                        return;                                                         \
                }                                                                       \
        } while (0)

static void start(Harness *h, const char *policy) {
        harness_start(h, &(HarnessOptions) {
                .with_pci = true, .with_sim = true, .fake_kernel = true, .install_defaults = true,
                .etc_policy = policy,
        });
}

/* ---- status, show, policy --------------------------------------------------------------- */

START_TEST(test_status_table) {
        Harness h;
        Run r;
        char *line, *save = NULL;
        size_t col = 0;
        int rows = 0;

        start(&h, WAKEUP_POLICY);
        r = CTL(&h, "status");
        expect_run(&r, 0, NULL, "");
        ck_assert_msg(strstr(r.out, "\n0000:00:03.0  8086:10d3     020000 wakeup armed D3hot       0 "), "%s", r.out);
        /* The header, then one row a device in name order; STATE where the header says. */
        ck_assert_msg(strncmp(r.out, "NAME          VENDOR:DEVICE CLASS  MODE   STATE POWER   WAKES LOW% SAVED\n", 72) == 0,
                      "header: %s", r.out);
        /* no watts declared: no estimate, "-", and so the TOTAL */
        ck_assert_msg(strstr(r.out, "\nTOTAL  ") && strcmp(r.out + strlen(r.out) - 3, " -\n") == 0, "%s", r.out);
        for (line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), rows++) {
                if (rows == 0) {
                        col = (size_t) (strstr(line, "STATE") - line);
                        continue;
                }
                if (rows == 3) {
                        ck_assert_msg(strncmp(line, "TOTAL ", 6) == 0, "row %d: %s", rows, line);
                        continue;
                }
                ck_assert_msg(strncmp(line + col, "armed ", 6) == 0, "row %d: %s", rows, line);
                ck_assert_msg(line[strlen(line) - 1] != ' ', "trailing blank: '%s'", line);
        }
        ck_assert_int_eq(rows, 4);
        run_done(&r);

        /* No argument is status. */
        r = CTL(&h, "--json");
        expect_run(&r, 0, NULL, "");
        run_done(&r);
        harness_stop(&h);
}
END_TEST

/* Every key man/vfiopmctl.1 documents, with its type (null allowed where it says so). */
START_TEST(test_status_json_schema) {
        static const struct {
                const char *key;
                json_type type;
                bool nullable;
        } keys[] = {
                { "name", json_type_string, false }, { "path", json_type_string, false },
                { "vendor", json_type_string, true }, { "device_id", json_type_string, true },
                { "class", json_type_string, true }, { "driver", json_type_string, true },
                { "iommu_group", json_type_int, true }, { "mode", json_type_string, false },
                { "state", json_type_string, false }, { "power_state", json_type_string, false },
                { "runtime_status", json_type_string, true }, { "release_reason", json_type_string, true },
                { "released_by", json_type_string, true }, { "wakes", json_type_int, false },
                { "arms", json_type_int, false }, { "low_power_usec", json_type_int, false },
                { "low_power_percent", json_type_double, true }, { "kernel_suspended_msec", json_type_int, false },
                { "kernel_suspended_since_seen_msec", json_type_int, false },
                { "energy_saved_joules", json_type_double, true },
                { "last_wake_realtime_usec", json_type_int, true }, { "last_error", json_type_string, true },
        };
        json_object *root, *devices, *daemon, *v;
        Harness h;

        start(&h, WAKEUP_POLICY);
        ck_assert_int_eq(harness_command(&h, 'w'), 1);          /* a wake, so that last_wake is set */
        root = run_json(&h, (const char *const[]) { "vfiopmctl", "--json", "status", NULL });
        ck_assert(json_object_object_get_ex(root, "devices", &devices));
        ck_assert(json_object_object_get_ex(root, "daemon", &daemon));
        ck_assert_str_eq(jstr(daemon, "version"), PACKAGE_VERSION);
        ck_assert(json_object_object_get_ex(daemon, "policy_errors", &v) && json_object_is_type(v, json_type_array));
        ck_assert(json_object_object_get_ex(daemon, "uptime_usec", &v) && json_object_is_type(v, json_type_int));
        ck_assert(json_object_object_get_ex(daemon, "energy_saved_joules", &v) && json_object_is_type(v, json_type_double));
        ck_assert_int_eq(json_object_array_length(devices), 2);
        for (size_t i = 0; i < 2; i++) {
                json_object *d = json_object_array_get_idx(devices, i);

                ck_assert_int_eq(json_object_object_length(d), (int) (sizeof(keys) / sizeof(keys[0])));
                for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
                        ck_assert_msg(json_object_object_get_ex(d, keys[k].key, &v), "no key %s", keys[k].key);
                        ck_assert_msg(v ? json_object_is_type(v, keys[k].type) : keys[k].nullable,
                                      "%s: %s", keys[k].key, json_object_to_json_string(v));
                }
        }
        ck_assert_str_eq(jstr(json_object_array_get_idx(devices, 0), "name"), PCI);
        ck_assert_str_eq(jstr(json_object_array_get_idx(devices, 0), "path"), HARNESS_PCI_PATH);
        ck_assert_str_eq(jstr(json_object_array_get_idx(devices, 0), "state"), "woken");
        ck_assert_str_eq(jstr(json_object_array_get_idx(devices, 0), "wakes"), "1");
        ck_assert_str_eq(jstr(json_object_array_get_idx(devices, 0), "iommu_group"), "12");
        ck_assert_str_eq(jstr(json_object_array_get_idx(devices, 1), "name"), SIM);
        ck_assert_str_eq(jstr(json_object_array_get_idx(devices, 1), "state"), "armed");
        ck_assert(json_object_object_get_ex(json_object_array_get_idx(devices, 1), "vendor", &v) && !v);
        json_object_put(root);
        harness_stop(&h);
}
END_TEST

#define PCI_SUSPENDED_TIME "devices/pci0000:00/" PCI "/power/runtime_suspended_time"

/* SAVED and the TOTAL: the kernel's suspended time since the daemon saw the device × the watts
 * the policy declares for it, in Wh (kWh from 10 kWh on), "-" for a device without watts; in
 * --json the joules, null without watts, and the Manager's sum. */
START_TEST(test_status_energy) {
        json_object *root, *devices;
        Harness h;
        Run r;

        start(&h, "{ \"match\": { \"device\": \"" PCI "\" }, \"power_active_w\": 40, \"power_low_w\": 4 }");
        /* 100 s suspended at 36 W: 3600 J, 1 Wh */
        ck_assert_int_eq(fixture_write_string(h.sysfs->fd, PCI_SUSPENDED_TIME, "223456\n"), 0);
        r = CTL(&h, "status");
        expect_run(&r, 0, NULL, "");
        ck_assert_msg(strstr(r.out, " LOW%   SAVED\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, " 1.00 Wh\n" SIM " "), "%s", r.out);
        ck_assert_msg(strstr(r.out, " -\nTOTAL ") && strstr(r.out, " 1.00 Wh\n"), "%s", r.out);
        ck_assert_msg(strncmp(strstr(r.out, "\nTOTAL ") + 1, "TOTAL", 5) == 0 &&
                      strcmp(r.out + strlen(r.out) - 9, " 1.00 Wh\n") == 0, "%s", r.out);
        run_done(&r);

        root = run_json(&h, (const char *const[]) { "vfiopmctl", "--json", "status", NULL });
        ck_assert(json_object_object_get_ex(root, "devices", &devices));
        ck_assert_str_eq(jstr(json_object_array_get_idx(devices, 0), "kernel_suspended_since_seen_msec"), "100000");
        ck_assert_double_eq_tol(atof(jstr(json_object_array_get_idx(devices, 0), "energy_saved_joules")), 3600, 1e-6);
        ck_assert_ptr_null(jstr(json_object_array_get_idx(devices, 1), "energy_saved_joules"));
        ck_assert_double_eq_tol(atof(jstr(root, "daemon.energy_saved_joules")), 3600, 1e-6);
        json_object_put(root);

        /* past 10 kWh: 12 kWh is 1.2e6 s at 36 W */
        ck_assert_int_eq(fixture_write_string(h.sysfs->fd, PCI_SUSPENDED_TIME, "1200123456\n"), 0);
        r = CTL(&h, "status");
        expect_run(&r, 0, NULL, "");
        ck_assert_msg(strstr(r.out, " 12.00 kWh\n" SIM " ") && strstr(r.out, "\nTOTAL") &&
                      strcmp(r.out + strlen(r.out) - 11, " 12.00 kWh\n") == 0, "%s", r.out);
        run_done(&r);
        harness_stop(&h);
}
END_TEST

/* ---- metrics ---------------------------------------------------------------------------- */

/* vfiopmctl metrics: the daemon's figures in Prometheus text format, which promtool accepts; the
 * counters are what the daemon says (a wake counted as Wakes is vfiopmd_wakeups_total). */
START_TEST(test_metrics) {
        _cleanup_free_ char *line = NULL;
        Harness h;
        Run r;

        start(&h, "{ \"mode\": \"wakeup\", \"rearm_delay_ms\": 0, \"power_active_w\": 40, \"power_low_w\": 4 }");
        ck_assert_int_eq(harness_command(&h, 'w'), 1);
        ck_assert_int_eq(harness_command(&h, 'w'), 1);
        ck_assert_int_eq(fixture_write_string(h.sysfs->fd, PCI_SUSPENDED_TIME, "223456\n"), 0);
        r = CTL(&h, "metrics");
        expect_run(&r, 0, NULL, "");
        ck_assert_msg(strstr(r.out, "\nvfiopmd_build_info{version=\"" PACKAGE_VERSION "\"} 1\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nvfiopmd_device_info{name=\"" PCI "\",vendor=\"8086\",device_id=\"10d3\","
                                    "class=\"020000\",driver=\"vfio-pci\",iommu_group=\"12\"} 1\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nvfiopmd_device_state{name=\"" PCI "\",state=\"armed\"} 1\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nvfiopmd_device_state{name=\"" SIM "\",state=\"woken\"} 0\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nvfiopmd_wakeups_total{name=\"" PCI "\"} 2\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nvfiopmd_wakeups_total{name=\"" SIM "\"} 0\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nvfiopmd_arms_total{name=\"" PCI "\"} 3\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nvfiopmd_low_power_seconds_total{name=\"" PCI "\"} 100.000\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nvfiopmd_energy_saved_joules_total{name=\"" PCI "\"} 3600.000000\n"), "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nvfiopmd_policy_errors 0\n"), "%s", r.out);
        expect_promtool_ok(r.out);
        run_done(&r);
        harness_stop(&h);
}
END_TEST

/* --textfile DIR: DIR/vfiopmd.prom replaced atomically (0644, no temporary file left, nothing on
 * stdout); a DIR that is not one, or options that do not go with metrics, said as such. */
START_TEST(test_metrics_textfile) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *dir = NULL;
        _cleanup_free_ char *text = NULL, *missing = NULL, *file = NULL;
        struct stat st;
        Harness h;
        Run r;

        start(&h, WAKEUP_POLICY);
        ck_assert_int_eq(fixture_tmp_new(NULL, &dir), 0);
        ck_assert_int_eq(fixture_write_string(dir->fd, "vfiopmd.prom", "stale\n"), 0);
        r = CTL(&h, "metrics", "--textfile", dir->path);
        expect_run(&r, 0, "", "");
        run_done(&r);
        ck_assert_int_eq(fstatat(dir->fd, "vfiopmd.prom", &st, 0), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0644);
        ck_assert_int_eq(read_file_at(dir->fd, "vfiopmd.prom", 1 << 20, &text), 0);
        ck_assert_msg(strncmp(text, "# HELP vfiopmd_build_info ", 26) == 0, "%s", text);
        ck_assert_msg(strstr(text, "\nvfiopmd_device_state{name=\"" SIM "\",state=\"armed\"} 1\n"), "%s", text);
        expect_promtool_ok(text);
        {
                _cleanup_free_ char *files = harness_list_files(&(Harness) { .root = dir }, "");

                ck_assert_str_eq(files, "vfiopmd.prom\n");
        }

        ck_assert_int_ge(asprintf(&missing, "%s/nonexistent", dir->path), 0);
        r = CTL(&h, "metrics", "--textfile", missing);
        ck_assert_int_ge(asprintf(&file, "vfiopmctl: --textfile %s: No such file or directory\n", missing), 0);
        expect_run(&r, 1, "", file);
        run_done(&r);
        free(file);
        ck_assert_int_ge(asprintf(&file, "%s/vfiopmd.prom", dir->path), 0);
        r = CTL(&h, "metrics", "--textfile", file);
        free(missing);
        ck_assert_int_ge(asprintf(&missing, "vfiopmctl: --textfile %s: not a directory\n", file), 0);
        expect_run(&r, 1, "", missing);
        run_done(&r);
        r = CTL(&h, "metrics", "--textfile", "");
        expect_run(&r, 2, "", "vfiopmctl: --textfile takes a directory, not ''\n");
        run_done(&r);
        r = CTL(&h, "status", "--textfile", dir->path);
        expect_run(&r, 2, "", "vfiopmctl: status: --textfile only applies to metrics\n");
        run_done(&r);
        r = CTL(&h, "--json", "metrics");
        expect_run(&r, 2, "", "vfiopmctl: metrics: --json does not apply (the output is Prometheus text)\n");
        run_done(&r);
        r = CTL(&h, "metrics", "extra");
        expect_run(&r, 2, "", "vfiopmctl: metrics: too many arguments (see vfiopmctl --help)\n");
        run_done(&r);
        harness_stop(&h);
}
END_TEST

/* A monitor of the whole bus (org.freedesktop.DBus.Monitoring), connected before the program
 * that it watches runs. */
static sd_bus *bus_monitor_start(Harness *h) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus = NULL;

        ck_assert_int_ge(sd_bus_new(&bus), 0);
        ck_assert_int_ge(sd_bus_set_address(bus, h->address), 0);
        ck_assert_int_ge(sd_bus_set_bus_client(bus, true), 0);
        ck_assert_int_ge(sd_bus_set_monitor(bus, true), 0);
        ck_assert_int_ge(sd_bus_start(bus), 0);
        ck_assert_msg(sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus.Monitoring", "BecomeMonitor", &error, NULL, "asu",
                                         0, 0) >= 0, "BecomeMonitor: %s", error.message ?: "-");
        return bus;
}

/* The method calls the monitor saw go to destination, "MEMBER PATH " each, until it has seen
 * that many replies sent to their caller (at most 10 s). */
static void bus_monitor_calls(sd_bus *bus, const char *destination, unsigned replies, char *buf, size_t size) {
        unsigned seen = 0;

        buf[0] = 0;
        for (int i = 0; seen < replies && i < 1000;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                uint8_t type;
                int r;

                r = sd_bus_process(bus, &m);
                ck_assert_int_ge(r, 0);
                if (!m) {
                        if (r == 0) {
                                (void) sd_bus_wait(bus, 10 * 1000);
                                i++;
                        }
                        continue;
                }
                ck_assert_int_ge(sd_bus_message_get_type(m, &type), 0);
                if (type == SD_BUS_MESSAGE_METHOD_CALL && sd_bus_message_get_destination(m) &&
                    strcmp(sd_bus_message_get_destination(m), destination) == 0)
                        (void) snprintf(buf + strlen(buf), size - strlen(buf), "%s %s ", sd_bus_message_get_member(m),
                                        sd_bus_message_get_path(m));
                else if (type == SD_BUS_MESSAGE_METHOD_RETURN || type == SD_BUS_MESSAGE_METHOD_ERROR)
                        seen++;
        }
}

/* status reads every device with one call and the manager with one GetAll, sent together: no
 * ListDevices, no call per device, however many there are. The table needs only what
 * ListDeviceStates says (a struct a device); --json shows every property: GetManagedObjects. */
START_TEST(test_status_one_call) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *monitor = NULL;
        char calls[1024];
        Harness h;
        Run r;

        start(&h, WAKEUP_POLICY);
        for (int json = 0; json < 2; json++) {
                monitor = sd_bus_flush_close_unref(monitor);
                monitor = bus_monitor_start(&h);
                r = json ? CTL(&h, "--json", "status") : CTL(&h, "status");
                expect_run(&r, 0, NULL, "");
                run_done(&r);
                /* Hello, the two calls to the daemon and the bus's word on its pid: 4 replies */
                bus_monitor_calls(monitor, BUS_NAME, 4, calls, sizeof(calls));
                ck_assert_str_eq(calls, json ? "GetManagedObjects /org/vfiopm1 GetAll /org/vfiopm1 "
                                             : "ListDeviceStates /org/vfiopm1 GetAll /org/vfiopm1 ");
        }
        harness_stop(&h);
}
END_TEST

START_TEST(test_show_and_policy) {
        json_object *o;
        Harness h;
        Run r;

        start(&h, WAKEUP_POLICY);
        r = CTL(&h, "show", PCI);
        expect_run(&r, 0, NULL, "");
        ck_assert_msg(strstr(r.out, "\n             State: armed\n") && strstr(r.out, "\n            Driver: vfio-pci\n"),
                      "%s", r.out);
        run_done(&r);

        o = run_json(&h, (const char *const[]) { "vfiopmctl", "--json", "show", PCI, NULL });
        ck_assert_str_eq(jstr(o, "policy.mode.value"), "wakeup");
        ck_assert_str_eq(jstr(o, "policy.mode.source"), "/" HARNESS_ETC_POLICY_FILE);
        ck_assert_str_eq(jstr(o, "policy.arm_delay_ms.source"), "/" HARNESS_POLICY_DIR_LIB "/00-defaults.json");
        json_object_put(o);

        r = CTL(&h, "policy", PCI);
        expect_run(&r, 0, NULL, "");
        ck_assert_msg(strncmp(r.out, "KEY              VALUE      SOURCE\n", 35) == 0, "%s", r.out);
        ck_assert_msg(strstr(r.out, "\nmode             \"wakeup\"   /" HARNESS_ETC_POLICY_FILE " (rule 0)\n") &&
                      strstr(r.out, "\nrearm_delay_ms   600000     /" HARNESS_ETC_POLICY_FILE " (rule 0)\n"), "%s", r.out);
        run_done(&r);
        harness_stop(&h);
}
END_TEST

/* ---- set, reset -------------------------------------------------------------------------- */

#define DBUS_FILE_ETC HARNESS_POLICY_DIR_ETC "/90-dbus-" PCI ".json"
#define DBUS_FILE_RUN HARNESS_POLICY_DIR_RUN "/90-dbus-" PCI ".json"

static char *read_root_file(Harness *h, const char *path) {
        char buf[4096];
        ssize_t n;
        int fd = openat(h->root->fd, path, O_RDONLY|O_CLOEXEC);

        if (fd < 0)
                return NULL;
        n = read(fd, buf, sizeof(buf) - 1);
        (void) close(fd);
        ck_assert_int_ge(n, 0);
        buf[n] = 0;
        return strdup(buf);
}

static void expect_rule(Harness *h, const char *path, const char *want) {
        _cleanup_free_ char *text = read_root_file(h, path);
        json_object *o, *w = json_tokener_parse(want);

        ck_assert_msg(text, "%s missing", path);
        o = json_tokener_parse(text);
        ck_assert_msg(o && json_object_equal(o, w), "%s: %s, expected %s", path, text, want);
        json_object_put(o);
        json_object_put(w);
}

START_TEST(test_set_reset) {
        _cleanup_free_ char *before = NULL, *after = NULL;
        Harness h;
        Run r;

        NEEDS_ROOT();
        start(&h, WAKEUP_POLICY);
        r = CTL(&h, "set", PCI, "rearm_delay_ms=2000", "mode=wakeup");
        expect_run(&r, 0, "", "");
        run_done(&r);
        expect_rule(&h, DBUS_FILE_ETC, "{\"match\":{\"device\":\"" PCI "\"},\"rearm_delay_ms\":2000,\"mode\":\"wakeup\"}");

        /* set adds to what the device's file sets; KEY= drops one */
        r = CTL(&h, "set", PCI, "arm_delay_ms=5", "mode=");
        expect_run(&r, 0, "", "");
        run_done(&r);
        expect_rule(&h, DBUS_FILE_ETC, "{\"match\":{\"device\":\"" PCI "\"},\"rearm_delay_ms\":2000,\"arm_delay_ms\":5}");

        /* refused: nothing written, one line naming the device and what was wrong */
        before = harness_list_files(&h, "");
        r = CTL(&h, "set", PCI, "rearm_delay_ms=-1");
        expect_run(&r, 1, "", NULL);
        ck_assert_msg(strstr(r.err, "rearm_delay_ms: expected an integer from 0 to 3600000, got -1") &&
                      strncmp(r.err, "vfiopmctl: ", 11) == 0 && strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
                      "%s", r.err);
        run_done(&r);
        r = CTL(&h, "set", PCI, "nonsense=1");
        expect_run(&r, 1, "", NULL);
        ck_assert_msg(strstr(r.err, "nonsense"), "%s", r.err);
        run_done(&r);
        r = CTL(&h, "set", PCI, "match={}");
        expect_run(&r, 2, "", NULL);
        run_done(&r);
        r = CTL(&h, "set", PCI, "=1");
        expect_run(&r, 2, "", "vfiopmctl: set: expected KEY=VALUE, got '=1'\n");
        run_done(&r);
        r = CTL(&h, "set", "0000:00:1f.7", "mode=on");
        expect_run(&r, 1, "", "vfiopmctl: 0000:00:1f.7: No VFIO device '0000:00:1f.7'\n");
        run_done(&r);
        after = harness_list_files(&h, "");
        ck_assert_str_eq(before, after);

        /* runtime: its own file, which masks the persistent one */
        r = CTL(&h, "--runtime", "set", PCI, "mode=on");
        expect_run(&r, 0, "", "");
        run_done(&r);
        expect_rule(&h, DBUS_FILE_RUN, "{\"match\":{\"device\":\"" PCI "\"},\"rearm_delay_ms\":2000,\"arm_delay_ms\":5,\"mode\":\"on\"}");
        expect_state(&h, PCI, "on");
        r = CTL(&h, "reset", PCI, "--runtime");
        expect_run(&r, 0, "", "");
        run_done(&r);
        ck_assert_ptr_null(read_root_file(&h, DBUS_FILE_RUN));
        expect_state(&h, PCI, "armed");

        /* dropping the last key removes the file */
        r = CTL(&h, "set", PCI, "rearm_delay_ms=", "arm_delay_ms=");
        expect_run(&r, 0, "", "");
        run_done(&r);
        ck_assert_ptr_null(read_root_file(&h, DBUS_FILE_ETC));
        r = CTL(&h, "reset", PCI);              /* nothing to remove: no error */
        expect_run(&r, 0, "", "");
        run_done(&r);
        harness_stop(&h);
}
END_TEST

/* ---- claim, release, wake, reload ------------------------------------------------------- */

START_TEST(test_release_claim_busy) {
        Harness h;
        Run r;

        NEEDS_ROOT();
        start(&h, WAKEUP_POLICY);
        r = CTL(&h, "release", PCI, SIM);
        expect_run(&r, 0, "", "");
        run_done(&r);
        expect_state(&h, PCI, "released");
        expect_state(&h, SIM, "released");
        r = CTL(&h, "show", PCI);
        ck_assert_int_eq(r.status, 0);
        ck_assert_msg(strstr(r.out, "\n          Released: by its own Release\n"), "%s", r.out);
        run_done(&r);

        /* a device in sysfs but on no VFIO driver (the fixture's 0000:00:02.0) is reserved: it is
         * listed as released until Claim, which forgets it */
        r = CTL(&h, "release", "0000:00:02.0");
        expect_run(&r, 0, "", "");
        run_done(&r);
        {
                json_object *o = run_json(&h, (const char *const[]) { "vfiopmctl", "--json", "show", "0000:00:02.0", NULL });

                ck_assert_str_eq(jstr(o, "state"), "released");
                ck_assert_str_eq(jstr(o, "release_reason"), "reservation");
                ck_assert_str_eq(jstr(o, "released_by"), "0000:00:02.0");
                json_object_put(o);
        }
        r = CTL(&h, "show", "0000:00:02.0");
        ck_assert_msg(strstr(r.out, "Released: reserved by a Release before it was on a VFIO driver\n"), "%s", r.out);
        run_done(&r);
        r = CTL(&h, "claim", "0000:00:02.0");
        expect_run(&r, 0, "", "");
        run_done(&r);
        r = CTL(&h, "show", "0000:00:02.0");
        expect_run(&r, 1, "", "vfiopmctl: 0000:00:02.0: No VFIO device '0000:00:02.0'\n");
        run_done(&r);

        /* another process takes the group: Claim says Busy, and the device waits in busy */
        ck_assert_int_eq(harness_command(&h, 'h'), 0);
        r = CTL(&h, "claim", PCI);
        expect_run(&r, 1, "", "vfiopmctl: " PCI ": another process holds the device\n");
        run_done(&r);
        expect_state(&h, PCI, "busy");
        ck_assert_int_eq(harness_command(&h, 'f'), 0);  /* it lets go; udev says change */
        r = CTL(&h, "claim", PCI, SIM);
        expect_run(&r, 0, "", "");
        run_done(&r);
        expect_state(&h, PCI, "armed");
        expect_state(&h, SIM, "armed");

        /* several names: each is tried, the status says one failed */
        r = CTL(&h, "release", "nonexistent", SIM);
        expect_run(&r, 1, "", "vfiopmctl: nonexistent: No device 'nonexistent'\n");
        run_done(&r);
        expect_state(&h, SIM, "released");
        harness_stop(&h);
}
END_TEST

START_TEST(test_wake) {
        Harness h;
        Run r;

        NEEDS_ROOT();
        start(&h, WAKEUP_POLICY);
        r = CTL(&h, "wake", PCI);
        expect_run(&r, 0, "", "");
        run_done(&r);
        expect_state(&h, PCI, "woken");         /* rearm_delay_ms 600000 */
        r = CTL(&h, "--runtime", "set", SIM, "mode=kernel");
        expect_run(&r, 0, "", "");
        run_done(&r);
        r = CTL(&h, "wake", SIM);
        expect_run(&r, 1, "", "vfiopmctl: " SIM ": not held (mode kernel)\n");
        run_done(&r);
        harness_stop(&h);
}
END_TEST

START_TEST(test_reload_reports_errors) {
        Harness h;
        Run r;

        NEEDS_ROOT();
        start(&h, WAKEUP_POLICY);
        r = CTL(&h, "reload");
        expect_run(&r, 0, "", "");
        run_done(&r);
        ck_assert_int_eq(fixture_write_string(h.root->fd, HARNESS_POLICY_DIR_ETC "/60-bad.json", "{ \"mode\": 1 }"), 0);
        r = CTL(&h, "reload");
        expect_run(&r, 1, "", "vfiopmctl: policy error: /" HARNESS_POLICY_DIR_ETC "/60-bad.json: mode: "
                   "expected \"kernel\", \"on\", \"auto\" or \"wakeup\", got 1\n");
        run_done(&r);
        /* status still works, and says it too */
        r = CTL(&h, "status");
        expect_run(&r, 0, NULL, "vfiopmctl: policy error: /" HARNESS_POLICY_DIR_ETC "/60-bad.json: mode: "
                   "expected \"kernel\", \"on\", \"auto\" or \"wakeup\", got 1\n");
        run_done(&r);
        expect_state(&h, PCI, "armed");
        harness_stop(&h);
}
END_TEST

/* ---- access, reachability, usage -------------------------------------------------------- */

START_TEST(test_nobody) {
        static const char *const changes[][4] = {
                { "claim", PCI }, { "release", PCI }, { "wake", PCI }, { "set", PCI, "mode=on" },
                { "reset", PCI }, { "reload" },
        };
        _cleanup_free_ char *before = NULL, *after = NULL;
        Harness h;
        Run r;

        NEEDS_ROOT();           /* to become another user */
        start(&h, WAKEUP_POLICY);
        r = CTL_AS(&h, NOBODY, "status");
        expect_run(&r, 0, NULL, "");
        run_done(&r);
        before = harness_list_files(&h, "");
        for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
                r = run_full(h.address, NOBODY, NULL, VFIOPMCTL_PATH,
                             (const char *const[]) { "vfiopmctl", changes[i][0], changes[i][1], changes[i][2], NULL });
                expect_run(&r, 1, "", NULL);
                ck_assert_msg(strstr(r.err, "needs root (the caller's uid is 65534)"), "%s: %s", changes[i][0], r.err);
                run_done(&r);
        }
        after = harness_list_files(&h, "");
        ck_assert_str_eq(before, after);
        expect_state(&h, PCI, "armed");
        harness_stop(&h);
}
END_TEST

START_TEST(test_unreachable_and_usage) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *tmp = NULL;
        _cleanup_free_ char *nowhere = NULL;
        Run r;

        ck_assert_int_eq(fixture_tmp_new(NULL, &tmp), 0);
        ck_assert_int_ge(asprintf(&nowhere, "unix:path=%s/no-bus", tmp->path), 0);
        r = run_full(nowhere, 0, NULL, VFIOPMCTL_PATH, (const char *const[]) { "vfiopmctl", NULL });
        expect_run(&r, 3, "", "vfiopmctl: connecting to the system bus: cannot reach the system bus: No such file or directory\n");
        run_done(&r);

        /* a bus where nobody owns org.vfiopm1 */
        {
                _cleanup_free_ char *address = NULL;
                char buf[512];
                int out[2];
                ssize_t n;
                pid_t bus;

                ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
                bus = fork();
                ck_assert_int_ge(bus, 0);
                if (bus == 0) {
                        char path[PATH_MAX + 32];

                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                        (void) dup2(out[1], STDOUT_FILENO);
                        (void) snprintf(path, sizeof(path), "--address=unix:path=%s/bus", tmp->path);
                        execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", "--print-address=1", path, NULL);
                        _exit(127);
                }
                (void) close(out[1]);
                n = read(out[0], buf, sizeof(buf) - 1);
                (void) close(out[0]);
                ck_assert_int_gt(n, 0);
                buf[n] = 0;
                buf[strcspn(buf, "\n")] = 0;
                r = run_full(buf, 0, NULL, VFIOPMCTL_PATH, (const char *const[]) { "vfiopmctl", "release", PCI, SIM, NULL });
                expect_run(&r, 3, "", "vfiopmctl: " PCI ": vfiopmd is not running (nobody owns org.vfiopm1 on the system bus)\n");
                run_done(&r);
                (void) kill(bus, SIGTERM);
                (void) waitpid(bus, NULL, 0);
        }

        Harness h;
        harness_start(&h, &(HarnessOptions) { .fake_kernel = true });
        r = CTL(&h, "frobnicate");
        expect_run(&r, 2, "", "vfiopmctl: unknown command 'frobnicate' (see vfiopmctl --help)\n");
        run_done(&r);
        r = CTL(&h, "show");
        expect_run(&r, 2, "", "vfiopmctl: show: too few arguments (see vfiopmctl --help)\n");
        run_done(&r);
        r = CTL(&h, "reload", "x");
        expect_run(&r, 2, "", "vfiopmctl: reload: too many arguments (see vfiopmctl --help)\n");
        run_done(&r);
        r = CTL(&h, "--runtime", "claim", PCI);
        expect_run(&r, 2, "", "vfiopmctl: claim: --runtime only applies to set and reset\n");
        run_done(&r);
        r = CTL(&h, "--timeout", "0", "status");
        expect_run(&r, 2, "", NULL);
        run_done(&r);
        r = CTL(&h, "--bogus");
        expect_run(&r, 2, "", NULL);
        run_done(&r);
        r = CTL(&h, "show", "");
        expect_run(&r, 2, "", "vfiopmctl: show: an empty argument names nothing\n");
        run_done(&r);
        r = CTL(&h, "--help");
        expect_run(&r, 0, NULL, "");
        ck_assert(strstr(r.out, "Exit status: 0 ok, 1 the operation failed, 2 usage error, 3 daemon not reachable."));
        run_done(&r);
        harness_stop(&h);
}
END_TEST

/* ---- monitor ---------------------------------------------------------------------------- */

typedef struct Monitor {
        pid_t pid;
        FILE *out;
} Monitor;

/* vfiopmctl [--json] monitor, its stdout in m->out */
static void monitor_start(Harness *h, Monitor *m, bool json) {
        int out[2];

        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        m->pid = fork();
        ck_assert_int_ge(m->pid, 0);
        if (m->pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) dup2(out[1], STDOUT_FILENO);
                (void) setenv("DBUS_SYSTEM_BUS_ADDRESS", h->address, 1);
                if (json)
                        execl(VFIOPMCTL_PATH, "vfiopmctl", "--json", "monitor", NULL);
                else
                        execl(VFIOPMCTL_PATH, "vfiopmctl", "monitor", NULL);
                _exit(127);
        }
        (void) close(out[1]);
        m->out = fdopen(out[0], "r");
        ck_assert_ptr_nonnull(m->out);
        /* poll() sees the fd: stdio must not read ahead of the line it returns */
        ck_assert_int_eq(setvbuf(m->out, NULL, _IONBF, 0), 0);
}

/* The next event line, as "EVENT NAME KEY=VALUE…" (keys in the order sent), within 10 s. */
static char *monitor_next(Monitor *m) {
        struct pollfd p = { .fd = fileno(m->out), .events = POLLIN };
        char line[4096], out[4096];
        json_object *o, *props;
        size_t len;

        ck_assert_msg(poll(&p, 1, 10000) == 1, "no event from monitor in 10 s");
        ck_assert_ptr_nonnull(fgets(line, sizeof(line), m->out));
        o = json_tokener_parse(line);
        ck_assert_msg(o, "not JSON: %s", line);
        ck_assert_ptr_nonnull(jstr(o, "time_realtime_usec"));
        (void) snprintf(out, sizeof(out), "%s %s", jstr(o, "event"), jstr(o, "name") ?: "-");
        ck_assert(json_object_object_get_ex(o, "properties", &props));
        json_object_object_foreach(props, key, value) {
                len = strlen(out);
                (void) snprintf(out + len, sizeof(out) - len, " %s=%s", key,
                                json_object_is_type(value, json_type_array) ?
                                json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN) : json_object_get_string(value));
        }
        json_object_put(o);
        if (getenv("VFIOPM_TEST_DEBUG"))
                fprintf(stderr, "monitor: %s\n", out);
        return strdup(out);
}

static void expect_event(Monitor *m, const char *want) {
        _cleanup_free_ char *got = monitor_next(m);

        ck_assert_str_eq(got, want);
}

/* SIGINT: monitor exits 0, having printed nothing after the last event read */
static void monitor_stop(Monitor *m) {
        char rest[256];
        int status;

        (void) kill(m->pid, SIGINT);
        ck_assert_int_eq(waitpid(m->pid, &status, 0), m->pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "monitor: %d", status);
        ck_assert_msg(!fgets(rest, sizeof(rest), m->out), "a line after the last event: %s", rest);
        fclose(m->out);
}

/* A syntax error in /etc's 60-bad.json, and vfiopmctl reload: exit 1, PolicyErrors announced */
static void reload_bad_file(Harness *h) {
        Run r;

        ck_assert_int_eq(fixture_write_string(h->root->fd, HARNESS_POLICY_DIR_ETC "/60-bad.json", "{"), 0);
        r = CTL(h, "reload");
        expect_run(&r, 1, "", NULL);
        run_done(&r);
}

START_TEST(test_monitor) {
        Monitor m;
        Harness h;
        Run r;

        NEEDS_ROOT();
        start(&h, WAKEUP_POLICY);
        monitor_start(&h, &m, true);
        expect_event(&m, "present " PCI " Mode=wakeup State=armed PowerState=D3hot");
        expect_event(&m, "present " SIM " Mode=wakeup State=armed PowerState=unknown");

        ck_assert_int_eq(harness_command(&h, 'w'), 1);
        expect_event(&m, "changed " PCI " State=woken");
        expect_event(&m, "wake " PCI " Wakes=1");
        r = CTL(&h, "release", SIM);
        expect_run(&r, 0, "", "");
        run_done(&r);
        expect_event(&m, "changed " SIM " State=released ReleaseReason=release ReleasedBy=" SIM);
        /* a device released by a Release stays until Claim, even off VFIO (manager.h): claimed first */
        r = CTL(&h, "claim", SIM);
        expect_run(&r, 0, "", "");
        run_done(&r);
        /* released → idle → armed in one call (arm_delay_ms 0): one signal a loop turn, one line */
        expect_event(&m, "changed " SIM " State=armed ReleaseReason= ReleasedBy=");
        ck_assert_int_eq(harness_command(&h, 'r'), 0);
        expect_event(&m, "removed " SIM);
        ck_assert_int_eq(harness_command(&h, 'a'), 0);
        expect_event(&m, "added " SIM);
        expect_event(&m, "changed " SIM " Mode=wakeup State=armed");  /* its first decision, idle → armed */

        reload_bad_file(&h);
        expect_event(&m, "policy-errors - PolicyErrors=[\"\\/etc\\/vfiopmd\\/policy.d\\/60-bad.json:1:2: "
                     "unexpected end of file\"]");
        monitor_stop(&m);
        harness_stop(&h);
}
END_TEST

/* The text form's next line without its "YYYY-MM-DD HH:MM:SS.UUUUUU " stamp, within 10 s. */
static char *monitor_next_text(Monitor *m) {
        struct pollfd p = { .fd = fileno(m->out), .events = POLLIN };
        char line[4096];
        int n = -1;
        unsigned y, mo, d, h, mi, sec, us;

        ck_assert_msg(poll(&p, 1, 10000) == 1, "no event from monitor in 10 s");
        ck_assert_ptr_nonnull(fgets(line, sizeof(line), m->out));
        ck_assert_msg(sscanf(line, "%4u-%2u-%2u %2u:%2u:%2u.%6u %n", &y, &mo, &d, &h, &mi, &sec, &us, &n) == 7 &&
                      n == 27, "no time stamp: %s", line);
        line[strcspn(line, "\n")] = 0;
        return strdup(line + n);
}

/* SPEC §6: monitor prints one line per event, also in text: "NAME EVENT KEY=VALUE…" after the
 * time stamp; a wake as "NAME wake Wakes=N"; the policy errors as a JSON array on their event's
 * line, nothing after it. */
START_TEST(test_monitor_text) {
        _cleanup_free_ char *present_pci = NULL, *present_sim = NULL, *reloaded = NULL, *wake = NULL,
                            *errors = NULL;
        Monitor m;
        Harness h;
        Run r;

        NEEDS_ROOT();
        start(&h, WAKEUP_POLICY);
        monitor_start(&h, &m, false);
        present_pci = monitor_next_text(&m);
        ck_assert_str_eq(present_pci, PCI " present Mode=wakeup State=armed PowerState=D3hot");
        present_sim = monitor_next_text(&m);
        ck_assert_str_eq(present_sim, SIM " present Mode=wakeup State=armed PowerState=unknown");

        /* a wake that re-arms in the same loop turn (rearm_delay_ms 0): State ends where it was,
         * the wake has its line */
        r = CTL(&h, "--runtime", "set", SIM, "rearm_delay_ms=0");
        expect_run(&r, 0, "", "");
        run_done(&r);
        reloaded = monitor_next_text(&m);
        ck_assert_str_eq(reloaded, "- policy-errors PolicyErrors=[]");
        ck_assert_int_eq(harness_command(&h, 'W'), 1);
        wake = monitor_next_text(&m);
        ck_assert_str_eq(wake, SIM " wake Wakes=1");

        reload_bad_file(&h);
        errors = monitor_next_text(&m);
        ck_assert_str_eq(errors, "- policy-errors PolicyErrors=[\"/etc/vfiopmd/policy.d/60-bad.json:1:2: "
                         "unexpected end of file\"]");
        monitor_stop(&m);
        harness_stop(&h);
}
END_TEST

/* ---- check (offline) -------------------------------------------------------------------- */

START_TEST(test_check) {
        _cleanup_free_ char *good = NULL, *bad = NULL, *one_bad = NULL;
        json_object *o, *files;
        Run r;

        ck_assert_int_ge(asprintf(&good, "%s/policy/good", fixture_dir()), 0);
        ck_assert_int_ge(asprintf(&bad, "%s/policy/bad", fixture_dir()), 0);
        ck_assert_int_ge(asprintf(&one_bad, "%s/policy/bad/syntax-trailing-comma.json", fixture_dir()), 0);

        r = run_full(NULL, 0, NULL, VFIOPMCTL_PATH, (const char *const[]) { "vfiopmctl", "check", good, NULL });
        expect_run(&r, 0, NULL, "");
        ck_assert_msg(strstr(r.out, " 0 errors\n"), "%s", r.out);
        run_done(&r);

        /* every bad file: one line on stderr each, naming it */
        r = run_full(NULL, 0, NULL, VFIOPMCTL_PATH, (const char *const[]) { "vfiopmctl", "check", bad, NULL });
        expect_run(&r, 1, NULL, NULL);
        {
                int lines = 0;
                for (const char *p = r.err; (p = strstr(p, "vfiopmctl: ")); p++)
                        lines++;
                ck_assert_int_ge(lines, 90);
                ck_assert_msg(strstr(r.err, "/policy/bad/"), "%s", r.err);
        }
        run_done(&r);

        r = run_full(NULL, 0, NULL, VFIOPMCTL_PATH,
                     (const char *const[]) { "vfiopmctl", "--json", "check", one_bad, "/nonexistent", NULL });
        expect_run(&r, 1, NULL, "");
        o = json_tokener_parse(r.out);
        ck_assert_msg(o, "%s", r.out);
        ck_assert_str_eq(jstr(o, "valid"), "false");
        ck_assert(json_object_object_get_ex(o, "files", &files));
        ck_assert_int_eq(json_object_array_length(files), 2);
        ck_assert_str_eq(jstr(json_object_array_get_idx(files, 1), "error"), "/nonexistent: No such file or directory");
        ck_assert_ptr_nonnull(strstr(jstr(json_object_array_get_idx(files, 0), "error"), "syntax-trailing-comma.json:"));
        json_object_put(o);
        run_done(&r);
}
END_TEST

/* ---- the libvirt hook ------------------------------------------------------------------- */

#define HOOK(h, input, ...) run_full((h)->address, 0, input, HOOK_PATH, \
                                     (const char *const[]) { "vfiopmd", __VA_ARGS__, NULL })

static const char domain_xml[] =
        "<domain type='kvm'>\n"
        "  <name>vm1</name>\n"
        "  <devices>\n"
        "    <hostdev mode='subsystem' type='pci' managed='no'>\n"
        "      <source><address domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></source>\n"
        "      <address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/>\n"
        "    </hostdev>\n"
        "    <hostdev mode='subsystem' type='pci' managed='yes'>\n"
        "      <source><address domain='0x0000' bus='0x41' slot='0x00' function='0x0'/></source>\n"
        "    </hostdev>\n"
        "  </devices>\n"
        "</domain>\n";

START_TEST(test_hook) {
        Harness h;
        Run r;

        NEEDS_ROOT();
        start(&h, WAKEUP_POLICY);
        /* other operations: nothing */
        r = HOOK(&h, domain_xml, "vm1", "start", "begin", "-");
        expect_run(&r, 0, "", "");
        run_done(&r);
        expect_state(&h, PCI, "armed");

        /* prepare begin: released, so that qemu can open it; the absent one is not the daemon's */
        r = HOOK(&h, domain_xml, "vm1", "prepare", "begin", "-");
        expect_run(&r, 0, "", "vfiopmd-libvirt-hook: domain vm1: released " PCI "\n");
        run_done(&r);
        expect_state(&h, PCI, "released");
        expect_state(&h, SIM, "armed");

        /* the domain runs; qemu holds the group. A second prepare (a restart) is harmless */
        ck_assert_int_eq(harness_command(&h, 'h'), 0);
        r = HOOK(&h, domain_xml, "vm1", "prepare", "begin", "-");
        expect_run(&r, 0, "", "vfiopmd-libvirt-hook: domain vm1: released " PCI "\n");
        run_done(&r);

        /* release end: qemu has gone, the device is claimed back */
        ck_assert_int_eq(harness_command(&h, 'f'), 0);
        expect_state(&h, PCI, "released");      /* released stays released until Claim */
        r = HOOK(&h, domain_xml, "vm1", "release", "end", "-");
        expect_run(&r, 0, "", "vfiopmd-libvirt-hook: domain vm1: claimed " PCI "\n");
        run_done(&r);
        expect_state(&h, PCI, "armed");

        /* release end while something still holds it: Busy is not the hook's failure */
        r = HOOK(&h, domain_xml, "vm1", "prepare", "begin", "-");
        run_done(&r);
        ck_assert_int_eq(harness_command(&h, 'h'), 0);
        r = HOOK(&h, domain_xml, "vm1", "release", "end", "-");
        expect_run(&r, 0, "", "");
        run_done(&r);
        expect_state(&h, PCI, "busy");
        ck_assert_int_eq(harness_command(&h, 'f'), 0);

        /* bad input: the domain is not stopped for it, nothing changes */
        r = HOOK(&h, "<domain><devices><hostdev", "vm1", "prepare", "begin", "-");
        expect_run(&r, 0, "", "vfiopmd-libvirt-hook: domain vm1: the domain XML on stdin is not usable: "
                   "1:26: Couldn't find end of Start Tag hostdev line 1; nothing released\n");
        run_done(&r);
        expect_state(&h, PCI, "armed");
        r = HOOK(&h, NULL, "vm1", "prepare", "begin", "-");
        expect_run(&r, 0, "", NULL);
        run_done(&r);
        expect_state(&h, PCI, "armed");
        r = HOOK(&h, NULL, "vm1");
        expect_run(&r, 2, "", NULL);
        run_done(&r);
        harness_stop(&h);
}
END_TEST

/* stdin is read up to DOMAIN_XML_SIZE_MAX bytes exactly: a document of that size is read (and
 * has no device, so the hook is done without the bus), one byte more is refused, naming the
 * limit. */
START_TEST(test_hook_input_cap) {
        static const char head[] = "<domain><name>big</name>", tail[] = "</domain>";
        _cleanup_free_ char *xml = malloc(DOMAIN_XML_SIZE_MAX + 2);
        Run r;

        ck_assert_ptr_nonnull(xml);
        memset(xml, ' ', DOMAIN_XML_SIZE_MAX + 1);
        memcpy(xml, head, strlen(head));
        memcpy(xml + DOMAIN_XML_SIZE_MAX - strlen(tail), tail, strlen(tail));
        xml[DOMAIN_XML_SIZE_MAX] = '\0';
        r = run_full(NULL, 0, xml, HOOK_PATH, (const char *const[]) { "vfiopmd", "vm1", "prepare", "begin", "-", NULL });
        expect_run(&r, 0, "", "");
        run_done(&r);

        xml[DOMAIN_XML_SIZE_MAX] = ' ';
        xml[DOMAIN_XML_SIZE_MAX + 1] = '\0';
        r = run_full(NULL, 0, xml, HOOK_PATH, (const char *const[]) { "vfiopmd", "vm1", "prepare", "begin", "-", NULL });
        expect_run(&r, 0, "", "vfiopmd-libvirt-hook: domain vm1: the domain XML on stdin is larger than 16 MiB "
                   "(16777216 bytes); nothing released\n");
        run_done(&r);
}
END_TEST

/* The daemon owns its name but does not answer: the hook gives up within its deadline and lets
 * the domain start. */
START_TEST(test_hook_bounded) {
        struct timespec t0, t1;
        Harness h;
        Run r;
        double took;

        harness_start(&h, &(HarnessOptions) {});
        /* The daemon side stops answering, its name still owned. */
        ck_assert_int_eq(kill(h.server_pid, SIGSTOP), 0);
        r = CTL(&h, "--timeout", "0.5", "status");
        expect_run(&r, 3, "", "vfiopmctl: listing devices: vfiopmd did not answer in time\n");
        run_done(&r);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = HOOK(&h, domain_xml, "vm1", "prepare", "begin", "-");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        took = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        expect_run(&r, 0, "", NULL);
        ck_assert_msg(strstr(r.err, "did not answer in time") || strstr(r.err, "out of time"), "%s", r.err);
        /* The bound: 5 s of deadline; the check allows for a loaded machine. */
        ck_assert_msg(took < 30.0, "the hook took %.1f s", took);
        fprintf(stderr, "hook with a daemon that does not answer: gave up after %.2f s\n", took);
        run_done(&r);
        ck_assert_int_eq(kill(h.server_pid, SIGCONT), 0);
        harness_stop(&h);
}
END_TEST

Suite *ctl_suite(void) {
        Suite *s = suite_create("ctl");
        TCase *tc = tcase_create("vfiopmctl");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_status_table);
        tcase_add_test(tc, test_status_json_schema);
        tcase_add_test(tc, test_status_energy);
        tcase_add_test(tc, test_metrics);
        tcase_add_test(tc, test_metrics_textfile);
        tcase_add_test(tc, test_status_one_call);
        tcase_add_test(tc, test_show_and_policy);
        tcase_add_test(tc, test_set_reset);
        tcase_add_test(tc, test_release_claim_busy);
        tcase_add_test(tc, test_wake);
        tcase_add_test(tc, test_reload_reports_errors);
        tcase_add_test(tc, test_nobody);
        tcase_add_test(tc, test_unreachable_and_usage);
        tcase_add_test(tc, test_monitor);
        tcase_add_test(tc, test_monitor_text);
        tcase_add_test(tc, test_check);
        suite_add_tcase(s, tc);

        tc = tcase_create("libvirt-hook");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_hook);
        tcase_add_test(tc, test_hook_bounded);
        tcase_add_test(tc, test_hook_input_cap);
        suite_add_tcase(s, tc);
        return s;
}
