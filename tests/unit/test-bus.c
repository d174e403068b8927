#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-device.h"
#include "bus-manager.h"
#include "fixture.h"
#include "log.h"
#include "manager.h"
#include "suites.h"

/* The D-Bus API against a private dbus-daemon. The daemon side (a Manager on a scratch copy of
 * the sysfs fixture and a scratch root for the policy directories, with bus-manager.c on top)
 * runs in a child process in its own loop; the test is the client. The child takes commands on a
 * pipe: 'a' adds vfio-pm-sim.0, 'r' removes it (what udev would report); EOF stops it. Every
 * process the test starts dies with it (PR_SET_PDEATHSIG), so a failing test leaves nothing. */

#define PCI_NAME "0000:00:03.0"
#define PCI_PATH "/org/vfiopm1/device/_30000_3a00_3a03_2e0"     /* a leading digit is escaped too */
#define SIM_NAME "vfio-pm-sim.0"
#define NOBODY 65534

typedef struct Harness {
        FixtureTmp *tmp;                /* the bus socket and config */
        FixtureTmp *root;               /* "/" for the policy directories */
        FixtureTmp *sysfs;
        char *address;
        pid_t bus_pid, server_pid;
        int control_fd;                 /* to the server: 'a', 'r' */
        sd_bus *client;
} Harness;

static const char *const policy_dirs[] = {
        "/usr/lib/vfiopmd/policy.d", "/etc/vfiopmd/policy.d", "/run/vfiopmd/policy.d", NULL,
};

/* ---- the bus ---------------------------------------------------------------------------- */

/* open: anyone may connect, own and call anything (the daemon's own checks are under test);
 * else the system bus's default policy with conf/org.vfiopm1.conf on top. */
static void bus_start(Harness *h, bool open_policy) {
        _cleanup_free_ char *config = NULL;
        char buf[512];
        int pipefd[2];
        ssize_t n;

        ck_assert_int_eq(chmod(h->tmp->path, 0755), 0);        /* nobody connects too */
        if (open_policy)
                ck_assert_int_ge(asprintf(&config,
                        "<busconfig><type>session</type><listen>unix:path=%s/bus</listen>"
                        "<auth>EXTERNAL</auth><policy context=\"default\"><allow user=\"*\"/>"
                        "<allow own=\"*\"/><allow send_destination=\"*\"/><allow receive_sender=\"*\"/>"
                        "</policy></busconfig>\n", h->tmp->path), 0);
        else
                ck_assert_int_ge(asprintf(&config,
                        "<busconfig><type>system</type><listen>unix:path=%s/bus</listen>"
                        "<auth>EXTERNAL</auth><policy context=\"default\"><allow user=\"*\"/>"
                        "<deny own=\"*\"/><deny send_type=\"method_call\"/>"
                        "<allow send_type=\"signal\"/>"
                        "<allow send_requested_reply=\"true\" send_type=\"method_return\"/>"
                        "<allow send_requested_reply=\"true\" send_type=\"error\"/>"
                        "<allow receive_type=\"method_call\"/><allow receive_type=\"method_return\"/>"
                        "<allow receive_type=\"error\"/><allow receive_type=\"signal\"/>"
                        "<allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>"
                        "</policy><include>%s/../../conf/org.vfiopm1.conf</include></busconfig>\n",
                        h->tmp->path, fixture_dir()), 0);
        ck_assert_int_eq(fixture_write_string(h->tmp->fd, "bus.conf", config), 0);

        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        h->bus_pid = fork();
        ck_assert_int_ge(h->bus_pid, 0);
        if (h->bus_pid == 0) {
                char arg[PATH_MAX + 32];

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (dup2(pipefd[1], 3) < 0)
                        _exit(127);
                (void) snprintf(arg, sizeof(arg), "--config-file=%s/bus.conf", h->tmp->path);
                execlp("dbus-daemon", "dbus-daemon", "--nofork", "--nosyslog", "--print-address=3", arg,
                       (char *) NULL);
                _exit(127);
        }
        (void) close(pipefd[1]);
        n = read(pipefd[0], buf, sizeof(buf) - 1);
        (void) close(pipefd[0]);
        ck_assert_msg(n > 0, "dbus-daemon did not start");
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        h->address = strdup(buf);
        ck_assert_ptr_nonnull(h->address);
}

static int bus_connect(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* ---- the daemon side -------------------------------------------------------------------- */

static void on_control(evutil_socket_t fd, short what, void *userdata) {
        Manager *m = userdata;
        char c;

        if (read(fd, &c, 1) != 1) {
                manager_stop(m);
                return;
        }
        if (c == 'a')
                (void) manager_add_device(m, "platform", SIM_NAME);
        else if (c == 'r')
                manager_remove_device(m, SIM_NAME);
}

static int server_main(Harness *h, bool with_device, int control_fd, int ready_fd) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(bus_manager_freep) BusManager *b = NULL;
        struct event *control;
        int r;

        log_set_max_level(getenv("VFIOPM_TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);
        r = manager_new(&(ManagerConfig) {
                .policy_dirs = (char **) policy_dirs,
                .root_fd = h->root->fd,
                .sysfs_fd = h->sysfs->fd,
                .dev_fd = h->root->fd,
                .vfio_path = _VFIO_PATH_INVALID,
        }, &m);
        if (r < 0)
                return 10;
        if (manager_reload(m) < 0)
                return 11;
        if (with_device && manager_add_device(m, "pci", PCI_NAME) < 0)
                return 12;
        if (bus_connect(h->address, &bus) < 0)
                return 13;
        if (bus_manager_new(m, bus, &b) < 0)
                return 14;
        if (bus_manager_request_name(b) < 0)
                return 15;
        control = event_new(manager_event_base(m), control_fd, EV_READ|EV_PERSIST, on_control, m);
        if (!control || event_add(control, NULL) < 0)
                return 16;
        if (write(ready_fd, "1", 1) != 1)
                return 17;
        (void) close(ready_fd);
        r = manager_run(m);
        event_free(control);
        b = bus_manager_free(b);
        return r < 0 ? 18 : 0;
}

static void harness_start(Harness *h, bool open_policy, bool with_device) {
        int control[2], ready[2];
        char c;

        *h = (Harness) { .control_fd = -EBADF };
        ck_assert_int_eq(fixture_tmp_new(NULL, &h->tmp), 0);
        ck_assert_int_eq(fixture_tmp_new(NULL, &h->root), 0);
        ck_assert_int_eq(fixture_tmp_new("sysfs", &h->sysfs), 0);
        bus_start(h, open_policy);

        ck_assert_int_eq(pipe2(control, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        h->server_pid = fork();
        ck_assert_int_ge(h->server_pid, 0);
        if (h->server_pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) close(control[1]);
                (void) close(ready[0]);
                _exit(server_main(h, with_device, control[0], ready[1]));
        }
        (void) close(control[0]);
        (void) close(ready[1]);
        h->control_fd = control[1];
        ck_assert_msg(read(ready[0], &c, 1) == 1, "the daemon side did not start");
        (void) close(ready[0]);

        ck_assert_int_eq(bus_connect(h->address, &h->client), 0);
}

static void harness_stop(Harness *h) {
        int status;

        h->client = sd_bus_flush_close_unref(h->client);
        h->control_fd = safe_close(h->control_fd);         /* EOF: the server stops */
        ck_assert_int_eq(waitpid(h->server_pid, &status, 0), h->server_pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the daemon side failed: %d", status);
        (void) kill(h->bus_pid, SIGTERM);
        (void) waitpid(h->bus_pid, NULL, 0);
        free(h->address);
        fixture_tmp_free(h->sysfs);
        fixture_tmp_free(h->root);
        fixture_tmp_free(h->tmp);
}

/* ---- client helpers --------------------------------------------------------------------- */

/* Calls a Manager method; returns 0 or the D-Bus error's name into *ret_error (static storage
 * of the test: copied). */
static int call(sd_bus *bus, char **ret_error, char **ret_message, sd_bus_message **ret_reply,
                const char *member, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &msg, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, member);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(msg, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        r = sd_bus_call(bus, msg, 10 * USEC_PER_SEC, &error, &reply);
        if (ret_error)
                *ret_error = r < 0 && error.name ? strdup(error.name) : NULL;
        if (ret_message)
                *ret_message = r < 0 && error.message ? strdup(error.message) : NULL;
        if (ret_reply && r >= 0)
                *ret_reply = TAKE_PTR(reply);
        return r;
}

static void expect_error(sd_bus *bus, const char *name, const char *member, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        ck_assert_int_ge(sd_bus_message_new_method_call(bus, &msg, BUS_NAME, BUS_MANAGER_PATH,
                                                         BUS_MANAGER_INTERFACE, member), 0);
        if (types) {
                va_start(ap, types);
                ck_assert_int_ge(sd_bus_message_appendv(msg, types, ap), 0);
                va_end(ap);
        }
        r = sd_bus_call(bus, msg, 10 * USEC_PER_SEC, &error, NULL);
        ck_assert_msg(r < 0 && sd_bus_error_has_name(&error, name), "%s: expected %s, got %d %s: %s", member, name,
                      r, error.name ?: "-", error.message ?: "-");
}

static char *get_string(sd_bus *bus, const char *path, const char *interface, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;
        int r;

        r = sd_bus_get_property_string(bus, BUS_NAME, path, interface, property, &error, &s);
        ck_assert_msg(r >= 0, "%s: %s", property, error.message ?: strerror(-r));
        return s;
}

static void expect_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                          const char *value) {
        _cleanup_free_ char *s = get_string(bus, path, interface, property);

        ck_assert_str_eq(s, value);
}

static uint64_t get_u64(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t v = 0;

        ck_assert_int_ge(sd_bus_get_property_trivial(bus, BUS_NAME, path, BUS_DEVICE_INTERFACE, property, &error,
                                                     't', &v), 0);
        return v;
}

/* Never NULL: an empty list is { NULL }. */
static char **get_policy_errors(sd_bus *bus) {
        char **l = NULL;

        ck_assert_int_ge(sd_bus_get_property_strv(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                                  "PolicyErrors", NULL, &l), 0);
        if (!l) {
                l = calloc(1, sizeof(char *));
                ck_assert_ptr_nonnull(l);
        }
        return l;
}

static void strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

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

        harness_start(&h, true, false);

        ck_assert_int_ge(call(h.client, NULL, NULL, &reply, "ListDevices", NULL), 0);
        ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "(so)"), 0);
        ck_assert_int_eq(sd_bus_message_at_end(reply, false), 1);
        expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "GetDevice", "s", PCI_NAME);
        if (geteuid() == 0) {
                expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "Claim", "s", PCI_NAME);
                expect_error(h.client, BUS_ERROR_NO_SUCH_DEVICE, "Release", "s", PCI_NAME);
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

        harness_start(&h, true, true);

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

static char *read_file_at(int root_fd, const char *path) {
        _cleanup_close_ int fd = openat(root_fd, path, O_RDONLY|O_CLOEXEC);
        char buf[4096];
        ssize_t n;

        ck_assert_msg(fd >= 0, "%s: %m", path);
        n = read(fd, buf, sizeof(buf) - 1);
        ck_assert_int_gt(n, 0);
        buf[n] = 0;
        return strdup(buf);
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
        harness_start(&h, true, true);
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
        text = read_file_at(h.root->fd, "run/vfiopmd/policy.d/90-dbus-" PCI_NAME ".json");
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

START_TEST(test_policy_errors) {
        Harness h;
        char **errors;

        if (geteuid() != 0)
                return;         /* the changes need root; test_access_denied covers the rest */
        harness_start(&h, true, false);
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

        harness_start(&h, true, false);
        ck_assert_int_ge(sd_bus_match_signal(h.client, &added, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                             "DeviceAdded", on_device_signal, seen), 0);
        ck_assert_int_ge(sd_bus_match_signal(h.client, &removed, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                             "DeviceRemoved", on_device_signal, seen), 0);
        ck_assert_int_eq(bus_device_path(SIM_NAME, &path), 0);

        ck_assert_int_eq(write(h.control_fd, "a", 1), 1);
        wait_for_text(h.client, seen, "DeviceAdded");
        (void) snprintf(expect, sizeof(expect), "DeviceAdded %s %s;", SIM_NAME, path);
        ck_assert_str_eq(seen, expect);
        expect_string(h.client, path, BUS_DEVICE_INTERFACE, "Vendor", "");
        expect_string(h.client, path, BUS_DEVICE_INTERFACE, "IommuGroup", "13");

        seen[0] = 0;
        ck_assert_int_eq(write(h.control_fd, "r", 1), 1);
        wait_for_text(h.client, seen, "DeviceRemoved");
        (void) snprintf(expect, sizeof(expect), "DeviceRemoved %s %s;", SIM_NAME, path);
        ck_assert_str_eq(seen, expect);
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
        if (bus_connect(address, &bus) < 0)
                return 101;
        if (call(bus, NULL, NULL, NULL, "ListDevices", NULL) < 0)
                return 102;
        if (call(bus, NULL, NULL, NULL, "GetDevice", "s", PCI_NAME) < 0)
                return 103;
        if (sd_bus_get_property_string(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, "Version", NULL,
                                       &version) < 0 || strcmp(version, PACKAGE_VERSION) != 0)
                return 104;
        free(version);
        if (sd_bus_get_property_string(bus, BUS_NAME, PCI_PATH, BUS_DEVICE_INTERFACE, "State", NULL, &version) < 0)
                return 105;
        free(version);

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
        harness_start(&h, true, true);
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
        harness_start(&h, false, true);
        check_nobody(&h, false);
        ck_assert_int_ge(call(h.client, NULL, NULL, NULL, "SetPolicy", "ssb", PCI_NAME, "{\"mode\": \"on\"}", 1), 0);
        expect_string(h.client, PCI_PATH, BUS_DEVICE_INTERFACE, "State", "on");
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
        tcase_add_test(tc, test_policy_errors);
        tcase_add_test(tc, test_device_signals);
        tcase_add_test(tc, test_access_denied);
        tcase_add_test(tc, test_bus_policy_file);
        suite_add_tcase(s, tc);
        return s;
}
