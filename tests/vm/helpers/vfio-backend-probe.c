/*
 * vfio-backend-probe [--path group|cdev] DEVICE — drives daemon/vfio.c (linked from
 * daemon/libvfiopm.a) against the real kernel, for tests/vm/scenarios/vfio-backend.sh:
 *
 *   open through the backend → the device resumes; wake-up entry → suspended, wake fd quiet;
 *   power/control=on → wake fd readable, count 1, and the device stays in D0; plain entry →
 *   suspended, exit → active; wake-up entry again, then "echo DEVICE > .../driver/unbind" in the
 *   background while held → the unbind blocks, the request fd turns readable; close (nothing
 *   issued first, the entry still in force) → the unbind completes promptly.
 *
 * Run as root on a device bound to a VFIO driver that nobody holds. Prints TAP; exit 0 all
 * passed, 1 a step failed, 2 the device could not be found or opened. The device is left
 * unbound: the caller rebinds it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vfio.h"

#define POLL_MS 10
#define WAIT_MS 5000            /* longest wait for a runtime_status transition or an fd */
#define REQUEST_WAIT_MS 10000   /* the kernel's first request comes at once; be generous */
#define UNBIND_MS 5000          /* "promptly": the unbind must finish this soon after close */

extern char **environ;

static const char *name;
static char bus[16];
static char devdir[PATH_MAX];   /* /sys/bus/BUS/devices/NAME */
static unsigned step, failed;

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* snprintf for paths: a name too long for PATH_MAX is no device of ours. */
static bool path_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool path_fmt(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        return n >= 0 && (size_t) n < size;
}

static bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool check(bool ok, const char *fmt, ...) {
        va_list ap;

        printf("%s %u - ", ok ? "ok" : "not ok", ++step);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        if (!ok)
                failed++;
        return ok;
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void diag(const char *fmt, ...) {
        va_list ap;

        fputs("# ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
}

static int read_attr(const char *attr, char *buf, size_t size) {
        char path[PATH_MAX];
        ssize_t n;
        int fd;

        if (!path_fmt(path, sizeof(path), "%s/%s", devdir, attr))
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -EIO;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                n--;
        buf[n] = '\0';
        return 0;
}

static int write_attr(const char *attr, const char *value) {
        char path[PATH_MAX];
        int fd, r = 0;

        if (!path_fmt(path, sizeof(path), "%s/%s", devdir, attr))
                return -ENAMETOOLONG;
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t w = write(fd, value, strlen(value));
        if (w < 0)
                r = -errno;
        else if ((size_t) w != strlen(value))
                r = -EIO;
        close(fd);
        return r;
}

static void status(char out[32]) {
        if (read_attr("power/runtime_status", out, 32) < 0)
                strcpy(out, "?");
}

/* Polls power/runtime_status (which never wakes the device): ms taken, or -1. */
static int wait_status(const char *want, int timeout_ms) {
        int64_t start = now_ms();
        char cur[32], ps[32];

        for (;;) {
                status(cur);
                if (strcmp(cur, want) == 0) {
                        if (read_attr("power_state", ps, sizeof(ps)) == 0)
                                diag("  runtime_status %s, power_state %s after %" PRId64 " ms", cur, ps,
                                     now_ms() - start);
                        return (int) (now_ms() - start);
                }
                if (now_ms() - start >= timeout_ms) {
                        diag("  runtime_status still '%s' after %d ms, wanted '%s'", cur, timeout_ms, want);
                        return -1;
                }
                sleep_ms(POLL_MS);
        }
}

static bool stays_status(const char *want, int window_ms) {
        int64_t start = now_ms();
        char cur[32];

        while (now_ms() - start < window_ms) {
                status(cur);
                if (strcmp(cur, want) != 0) {
                        diag("  runtime_status became '%s' after %" PRId64 " ms", cur, now_ms() - start);
                        return false;
                }
                sleep_ms(POLL_MS);
        }
        return true;
}

static bool fd_readable(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;

        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        return r == 1 && (p.revents & POLLIN);
}

static int find_device(void) {
        static const char *const buses[] = { "pci", "platform" };
        char path[PATH_MAX], link[PATH_MAX];

        for (size_t i = 0; i < sizeof(buses) / sizeof(buses[0]); i++) {
                if (!path_fmt(devdir, sizeof(devdir), "/sys/bus/%s/devices/%s", buses[i], name))
                        return -ENAMETOOLONG;
                if (access(devdir, F_OK) == 0) {
                        snprintf(bus, sizeof(bus), "%s", buses[i]);
                        if (!path_fmt(path, sizeof(path), "%s/driver", devdir))
                                return -ENAMETOOLONG;
                        ssize_t n = readlink(path, link, sizeof(link) - 1);
                        link[n > 0 ? n : 0] = '\0';
                        diag("device %s on bus %s, driver %s", name, bus, n > 0 ? strrchr(link, '/') + 1 : "none");
                        return n > 0 ? 0 : -ENODEV;
                }
        }
        return -ENOENT;
}

static bool has_driver(void) {
        char path[PATH_MAX];

        return path_fmt(path, sizeof(path), "%s/driver", devdir) && access(path, F_OK) == 0;
}

/* "echo NAME > DEVICE/driver/unbind" through a shell: exec drops every O_CLOEXEC fd, so the
 * shell holds none of ours (a forked copy of the device fd would keep the device held and the
 * unbind blocked for good). */
static pid_t spawn_unbind(void) {
        char cmd[PATH_MAX + 64];
        char *argv[] = { (char *) "sh", (char *) "-c", cmd, NULL };
        pid_t pid;

        if (!path_fmt(cmd, sizeof(cmd), "echo '%s' > '%s/driver/unbind'", name, devdir))
                return -1;
        if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0)
                return -1;
        return pid;
}

/* waitpid with a timeout: the exit status, or -1 while it still runs. */
static int wait_child(pid_t pid, int timeout_ms) {
        int64_t start = now_ms();
        int st;

        for (;;) {
                pid_t r = waitpid(pid, &st, WNOHANG);
                if (r == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
                if (r < 0 || now_ms() - start >= timeout_ms)
                        return -1;
                sleep_ms(POLL_MS);
        }
}

static void usage(FILE *f) {
        fprintf(f, "usage: vfio-backend-probe [--path group|cdev] DEVICE\n"
                   "Drives daemon/vfio.c on DEVICE (bound to a VFIO driver, not held); prints TAP.\n"
                   "Leaves DEVICE unbound from its driver.\n");
}

int main(int argc, char **argv) {
        VfioPath path = _VFIO_PATH_INVALID;
        VfioBackend *b = NULL;
        VfioDevice *d = NULL;
        int sysfs_fd, dev_fd, r;
        int64_t t;
        uint64_t n;
        pid_t child;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
                usage(stdout);
                return 0;
        }
        if (argc == 4 && strcmp(argv[1], "--path") == 0) {
                path = vfio_path_from_string(argv[2]);
                if (path < 0) {
                        usage(stderr);
                        return 2;
                }
                argv += 2;
                argc -= 2;
        }
        if (argc != 2 || argv[1][0] == '-') {
                usage(stderr);
                return 2;
        }
        name = argv[1];

        if (find_device() < 0) {
                printf("Bail out! no device %s bound to a driver under /sys/bus/{pci,platform}\n", name);
                return 2;
        }
        sysfs_fd = open("/sys", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        dev_fd = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sysfs_fd < 0 || dev_fd < 0 || vfio_backend_new(vfio_sys_kernel(), sysfs_fd, dev_fd, path, &b) < 0) {
                printf("Bail out! cannot set up the backend\n");
                return 2;
        }
        diag("backend path: %s", vfio_path_to_string(vfio_backend_path(b)));

        /* 1. open */
        r = vfio_device_open(b, bus, name, &d);
        if (!check(r == 0, "vfio_device_open(%s, %s) -> %s", bus, name, strerror(-r))) {
                printf("Bail out! cannot open the device\n");
                return 2;
        }
        check(wait_status("active", WAIT_MS) >= 0, "the open resumed the device");
        check(!fd_readable(vfio_device_wake_fd(d), 0) && !fd_readable(vfio_device_request_fd(d), 0),
              "wake and request fds quiet after open");

        /* 2. wake-up entry */
        r = vfio_device_enter(d, true);
        check(r == 0, "vfio_device_enter(wakeup) -> %s", strerror(-r));
        check(wait_status("suspended", WAIT_MS) >= 0, "runtime_status suspended");
        check(!fd_readable(vfio_device_wake_fd(d), 0), "wake fd quiet while suspended");

        /* 3. a host-side wake */
        check(write_attr("power/control", "on") == 0, "power/control = on");
        t = now_ms();
        check(fd_readable(vfio_device_wake_fd(d), WAIT_MS), "wake fd readable (%d ms)", (int) (now_ms() - t));
        check(write_attr("power/control", "auto") == 0, "power/control = auto");
        r = vfio_device_read_wake(d, &n);
        check(r == 0 && n == 1, "vfio_device_read_wake -> %s, count %" PRIu64 " (want 1)", strerror(-r), n);
        r = vfio_device_read_wake(d, &n);
        check(r == 0 && n == 0, "a second read -> count %" PRIu64 " (EAGAIN as 0)", n);
        check(wait_status("active", WAIT_MS) >= 0 && stays_status("active", 1000),
              "one-shot: the device stays in D0 after the wake");

        /* 4. plain entry, exit */
        r = vfio_device_enter(d, false);
        check(r == 0, "vfio_device_enter(plain) -> %s", strerror(-r));
        check(wait_status("suspended", WAIT_MS) >= 0, "suspended under the plain entry");
        r = vfio_device_exit(d);
        check(r == 0, "vfio_device_exit -> %s", strerror(-r));
        check(wait_status("active", WAIT_MS) >= 0 && stays_status("active", 500), "active after exit, stays");
        r = vfio_device_read_wake(d, &n);
        check(r == 0 && n == 0, "a plain entry never fires the wake fd (count %" PRIu64 ")", n);

        /* 5. armed again, then the kernel wants the device back */
        r = vfio_device_enter(d, true);
        check(r == 0, "vfio_device_enter(wakeup) again -> %s", strerror(-r));
        check(wait_status("suspended", WAIT_MS) >= 0, "suspended");

        child = spawn_unbind();
        if (!check(child > 0, "unbind spawned in the background")) {
                vfio_device_close(d);
                return 1;
        }
        t = now_ms();
        check(fd_readable(vfio_device_request_fd(d), REQUEST_WAIT_MS), "request fd readable (%d ms after the unbind began)",
              (int) (now_ms() - t));
        r = vfio_device_read_request(d, &n);
        check(r == 0 && n >= 1, "vfio_device_read_request -> %s, count %" PRIu64, strerror(-r), n);
        /* Give the unbind time to finish if it would not wait for us. */
        check(wait_child(child, 200) < 0, "the unbind waits while the device is held");
        /* __device_release_driver() removes the driver link before it calls remove(), which
         * is where vfio waits for the holder: the link is gone while the device is still held. */
        diag("driver link while the unbind waits: %s", has_driver() ? "present" : "already gone");

        /* 6. close with the entry still in force: closing is enough */
        t = now_ms();
        d = vfio_device_close(d);
        r = wait_child(child, UNBIND_MS);
        check(r == 0, "the unbind completed %d ms after close (exit %d)", (int) (now_ms() - t), r);
        if (r < 0) {
                diag("the unbind is still blocked; killing the shell does not free it");
                kill(child, SIGKILL);
        }
        check(!has_driver(), "the device has no driver now");

        b = vfio_backend_free(b);
        close(dev_fd);
        close(sysfs_fd);
        printf("1..%u\n", step);
        diag("%u steps, %u failed", step, failed);
        return failed ? 1 : 0;
}
