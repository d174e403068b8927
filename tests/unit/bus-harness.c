#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-harness.h"
#include "bus-manager.h"
#include "fake-kernel.h"
#include "fault-io.h"
#include "fileio.h"
#include "log.h"
#include "manager.h"

static const char *const policy_dirs[] = {
        "/" HARNESS_POLICY_DIR_LIB, "/" HARNESS_POLICY_DIR_ETC, "/" HARNESS_POLICY_DIR_RUN, NULL,
};

/* ---- the bus ---------------------------------------------------------------------------- */

static void bus_start(Harness *h) {
        _cleanup_free_ char *config = NULL;
        char buf[512];
        int pipefd[2];
        ssize_t n;

        ck_assert_int_eq(chmod(h->tmp->path, 0755), 0);        /* nobody connects too */
        if (!h->options.bus_policy_file)
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

int harness_connect(const char *address, sd_bus **ret) {
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

typedef struct Server {
        Manager *manager;
        FakeKernel *kernel;             /* NULL: the real kernel interface */
        int control_fd;
        int32_t result;                 /* of the command being answered */
} Server;

static void on_answer(evutil_socket_t fd, short what, void *userdata) {
        Server *s = userdata;

        if (send(s->control_fd, &s->result, sizeof(s->result), MSG_NOSIGNAL) != (ssize_t) sizeof(s->result))
                manager_stop(s->manager);
}

static int32_t server_command(Server *s, char c) {
        const char *name = c == 'W' || c == 'Q' ? HARNESS_SIM_NAME : HARNESS_PCI_NAME;

        switch (c) {
        case 'a':
                return manager_add_device(s->manager, "platform", HARNESS_SIM_NAME);
        case 'r':
                manager_remove_device(s->manager, HARNESS_SIM_NAME);
                return 0;
        }
        if (!strchr("hfwWqQR", c))
                return -EINVAL;
        if (!s->kernel)
                return -EOPNOTSUPP;
        switch (c) {
        case 'h':
        case 'f': {
                int r = fake_kernel_set_group_held_elsewhere(s->kernel, HARNESS_PCI_GROUP, c == 'h');

                if (r < 0)
                        return r;
                manager_change_device(s->manager, "pci", HARNESS_PCI_NAME);
                return 0;
        }
        case 'w':
        case 'W':
                return fake_kernel_host_access(s->kernel, name);
        case 'R': {
                ManagedDevice *d = manager_find_device(s->manager, HARNESS_SIM_NAME);
                int r;

                if (!d)
                        return -ENODEV;
                /* both in this callback: the change is still unannounced when the device goes */
                r = pm_device_wake(managed_device_pm(d));
                if (r < 0)
                        return r;
                manager_remove_device(s->manager, HARNESS_SIM_NAME);
                return 0;
        }
        default:
                return fake_kernel_request(s->kernel, name);
        }
}

static void on_control(evutil_socket_t fd, short what, void *userdata) {
        static const struct timeval soon = { .tv_usec = 1 };
        Server *s = userdata;
        char c;

        if (recv(fd, &c, 1, 0) != 1) {
                manager_stop(s->manager);
                return;
        }
        s->result = server_command(s, c);
        /* Answer on a later turn of the loop, after the timer has expired: that turn's epoll_wait
         * sees the eventfds the command fired, and their handlers run before the answer (a timeout
         * of 0 would make the answer active at once, before epoll is asked). What they do is
         * synchronous, so the test then finds it done. */
        if (event_base_once(manager_event_base(s->manager), -1, EV_TIMEOUT, on_answer, s, &soon) < 0)
                manager_stop(s->manager);
}

int harness_fake_kernel_new(FakeKernel **ret) {
        _cleanup_(fake_kernel_freep) FakeKernel *k = NULL;
        int r;

        r = fake_kernel_new(&k);
        if (r >= 0)
                r = fake_kernel_add_group(k, HARNESS_PCI_GROUP, false);
        if (r >= 0)
                r = fake_kernel_add_group(k, HARNESS_SIM_GROUP, false);
        /* cdev indices as the fixture's vfio-dev/vfioN children */
        if (r >= 0)
                r = fake_kernel_add_device(k, HARNESS_PCI_NAME, HARNESS_PCI_GROUP, 0, FAKE_DEVICE_PCI);
        if (r >= 0)
                r = fake_kernel_add_device(k, HARNESS_SIM_NAME, HARNESS_SIM_GROUP, 1, FAKE_DEVICE_PLATFORM);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(k);
        return 0;
}

/* The daemon side up to its loop: the manager with its devices, its connection and bus-manager.c
 * on it, owning org.vfiopm1. Returns 0, or what failed as server_main()'s exit status. */
static int daemon_side_new(Harness *h, const VfioSys *sys, Manager **ret_manager, sd_bus **ret_bus,
                           BusManager **ret_bus_manager) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(bus_manager_freep) BusManager *b = NULL;
        int r;

        r = manager_new(&(ManagerConfig) {
                .policy_dirs = (char **) policy_dirs,
                .root_fd = h->root->fd,
                .sysfs_fd = h->sysfs->fd,
                .dev_fd = h->root->fd,          /* the fake kernel does not look at it */
                .vfio_path = _VFIO_PATH_INVALID,
                .vfio_sys = sys,
        }, &m);
        if (r < 0)
                return 10;
        if (manager_reload(m) < 0)
                return 11;
        if (h->options.with_pci && manager_add_device(m, "pci", HARNESS_PCI_NAME) < 0)
                return 12;
        if (h->options.with_sim && manager_add_device(m, "platform", HARNESS_SIM_NAME) < 0)
                return 12;
        if (harness_connect(h->address, &bus) < 0)
                return 13;
        if (bus_manager_new(m, bus, &b) < 0)
                return 14;
        if (bus_manager_request_name(b) < 0)
                return 15;
        *ret_bus_manager = TAKE_PTR(b);
        *ret_bus = TAKE_PTR(bus);
        *ret_manager = TAKE_PTR(m);
        return 0;
}

/* The exit status tells what failed: harness_start() and harness_stop() report it. */
static int server_main(Harness *h, int control_fd, int ready_fd) {
        _cleanup_(fake_kernel_freep) FakeKernel *k = NULL;     /* freed last: the manager uses it */
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(bus_manager_freep) BusManager *b = NULL;
        struct event *control;
        Server s = { .control_fd = control_fd };
        int r;

        log_set_max_level(getenv("VFIOPM_TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);
        fault_io_set_dir_fsync_error(h->options.dir_fsync_error);
        if (h->options.fake_kernel && harness_fake_kernel_new(&k) < 0)
                return 9;
        r = daemon_side_new(h, k ? fake_kernel_sys(k) : NULL, &m, &bus, &b);
        if (r > 0)
                return r;
        s.manager = m;
        s.kernel = k;
        control = event_new(manager_event_base(m), control_fd, EV_READ|EV_PERSIST, on_control, &s);
        if (!control || event_add(control, NULL) < 0)
                return 16;
        if (write(ready_fd, "1", 1) != 1)
                return 17;
        (void) close(ready_fd);
        r = manager_run(m);
        event_free(control);
        b = bus_manager_free(b);
        m = manager_free(m);
        if (r < 0)
                return 18;
        if (k && fake_kernel_violations(k) > 0) {
                fprintf(stderr, "fake kernel: %s\n", fake_kernel_violation(k));
                return 19;
        }
        if (k && fake_kernel_open_fds(k) > 0) {
                fake_kernel_dump(k, stderr);
                return 20;
        }
        return 0;
}

static void expect_exit_ok(pid_t pid, const char *what) {
        int status;

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s failed: exit %d, signal %d", what,
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* The scratch trees and the bus. */
static void harness_prepare(Harness *h, const HarnessOptions *options) {
        *h = (Harness) { .control_fd = -EBADF, .options = *options };
        ck_assert_int_eq(fixture_tmp_new(NULL, &h->tmp), 0);
        ck_assert_int_eq(fixture_tmp_new(NULL, &h->root), 0);
        ck_assert_int_eq(fixture_tmp_new("sysfs", &h->sysfs), 0);
        if (options->install_defaults) {
                _cleanup_free_ char *path = NULL, *text = NULL;

                ck_assert_int_ge(asprintf(&path, "%s/../../conf/00-defaults.json", fixture_dir()), 0);
                ck_assert_int_eq(read_file_at(AT_FDCWD, path, 16384, &text), 0);
                ck_assert_int_eq(fixture_write_string(h->root->fd, HARNESS_POLICY_DIR_LIB "/00-defaults.json", text), 0);
        }
        if (options->etc_policy)
                ck_assert_int_eq(fixture_write_string(h->root->fd, HARNESS_ETC_POLICY_FILE, options->etc_policy), 0);
        h->options.etc_policy = NULL;   /* borrowed, used only here */
        bus_start(h);
}

void harness_start(Harness *h, const HarnessOptions *options) {
        int control[2], ready[2];
        char c;

        ck_assert_msg(!options->vfio_sys, "harness_start_local() only");
        harness_prepare(h, options);

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, control), 0);
        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        h->server_pid = fork();
        ck_assert_int_ge(h->server_pid, 0);
        if (h->server_pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) close(control[1]);
                (void) close(ready[0]);
                _exit(server_main(h, control[0], ready[1]));
        }
        (void) close(control[0]);
        (void) close(ready[1]);
        h->control_fd = control[1];
        if (read(ready[0], &c, 1) != 1)
                expect_exit_ok(h->server_pid, "the daemon side's start");
        (void) close(ready[0]);

        ck_assert_int_eq(harness_connect(h->address, &h->client), 0);
}

void harness_start_local(Harness *h, const HarnessOptions *options) {
        ck_assert_msg(!options->fake_kernel && !options->dir_fsync_error,
                      "the harness's own daemon side only");
        harness_prepare(h, options);
        log_set_max_level(getenv("VFIOPM_TEST_DEBUG") ? LOG_DEBUG : LOG_WARNING);
        ck_assert_int_eq(daemon_side_new(h, options->vfio_sys, &h->manager, &h->server_bus, &h->bus_manager), 0);
        ck_assert_int_eq(harness_connect(h->address, &h->client), 0);
}

void harness_stop(Harness *h) {
        h->client = sd_bus_flush_close_unref(h->client);
        h->control_fd = safe_close(h->control_fd);         /* EOF: the server stops */
        if (h->server_pid > 0)
                expect_exit_ok(h->server_pid, "the daemon side");
        h->bus_manager = bus_manager_free(h->bus_manager);
        h->server_bus = sd_bus_flush_close_unref(h->server_bus);
        h->manager = manager_free(h->manager);
        (void) kill(h->bus_pid, SIGTERM);
        (void) waitpid(h->bus_pid, NULL, 0);
        free(h->address);
        fixture_tmp_free(h->sysfs);
        fixture_tmp_free(h->root);
        fixture_tmp_free(h->tmp);
        *h = (Harness) { .control_fd = -EBADF };
}

int harness_command(Harness *h, char command) {
        struct pollfd p = { .fd = h->control_fd, .events = POLLIN };
        int32_t result;
        ssize_t n;
        int r;

        if (send(h->control_fd, &command, 1, MSG_NOSIGNAL) != 1)
                return -errno;
        do
                r = poll(&p, 1, 10 * 1000);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        n = recv(h->control_fd, &result, sizeof(result), 0);
        if (n < 0)
                return -errno;
        if (n != (ssize_t) sizeof(result))
                return -EPIPE;          /* the daemon side is gone */
        return result;
}

/* ---- the scratch root ------------------------------------------------------------------- */

typedef struct FileList {
        char **paths;
        size_t n;
} FileList;

static void list_files_at(int dir_fd, const char *prefix, FileList *l) {
        DIR *d;
        struct dirent *de;

        d = fdopendir(dir_fd);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                char *path;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                ck_assert_int_ge(asprintf(&path, "%s%s", prefix, de->d_name), 0);
                l->paths = reallocarray(l->paths, l->n + 1, sizeof(char *));
                ck_assert_ptr_nonnull(l->paths);
                l->paths[l->n++] = path;
                if (de->d_type == DT_DIR) {
                        _cleanup_free_ char *sub = NULL;
                        int fd = openat(dirfd(d), de->d_name, O_RDONLY|O_DIRECTORY|O_CLOEXEC|O_NOFOLLOW);

                        ck_assert_int_ge(fd, 0);
                        ck_assert_int_ge(asprintf(&sub, "%s/", path), 0);
                        list_files_at(fd, sub, l);
                }
        }
        closedir(d);
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

char *harness_list_files(Harness *h, const char *path) {
        FileList l = {};
        size_t size = 1;
        char *s;
        int fd;

        fd = openat(h->root->fd, path[0] ? path : ".", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd >= 0)
                list_files_at(fd, "", &l);
        else
                ck_assert_int_eq(errno, ENOENT);
        qsort(l.paths, l.n, sizeof(char *), compare_strings);
        for (size_t i = 0; i < l.n; i++)
                size += strlen(l.paths[i]) + 1;
        s = calloc(1, size);
        ck_assert_ptr_nonnull(s);
        for (size_t i = 0; i < l.n; i++) {
                strcat(strcat(s, l.paths[i]), "\n");
                free(l.paths[i]);
        }
        free(l.paths);
        return s;
}
