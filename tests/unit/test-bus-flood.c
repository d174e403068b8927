/* A flood of D-Bus reads while a device is woken again and again (issue 17), on the host: the
 * daemon side of bus-harness.h in this process, holding both fixture devices through the fake
 * kernel, behind a private dbus-daemon; FLOOD_CLIENTS processes of tests/vm/helpers/bus-flood (as
 * nobody when run as root) keep FLOOD_IN_FLIGHT GetManagedObjects calls each in flight for
 * $VFIOPM_FLOOD_SECONDS (default 30; make check sets 10), while a thread wakes 0000:00:03.0 every
 * 100 ms through the fake kernel. Every wake must be re-armed within rearm_delay_ms (0) + 100 ms,
 * systemd's watchdog must never go unfed (WATCHDOG=1 on $NOTIFY_SOCKET, never more than
 * FLOOD_WATCHDOG_USEC apart) and every call must be answered. It fails on a loop that serves the
 * bus until its queue is empty: there a wake waits seconds for its turn.
 *
 * GetManagedObjects (every device's properties in one reply, what vfiopmctl --json status reads)
 * is the heaviest read open to everyone: it keeps the daemon, not dbus-daemon, the slowest of the
 * chain, so the daemon's socket never runs dry. With GetAll of one device the old loop missed only
 * a few wakes in 10 s (3 to 7 of ~90, up to 1.6 s late); with GetManagedObjects it made 8 to 17
 * wakes in 10 s instead of 100, up to 3.4 s late, and the watchdog went 3.9 s without a ping.
 * The bounded loop re-arms within 6 to 14 ms at most (2 shared CPUs), 42 ms under ASan+UBSan.
 *
 * Why on the host and not only in the VM (tests/vm/scenarios/daemon-flood.sh, not in
 * tools/test-all): a TCG guest has one vCPU, which runs the clients, dbus-daemon and the daemon
 * in turn, so the daemon's socket runs dry between its time slices and the old loop passes too.
 * Here dbus-daemon feeds the daemon from another CPU while it works, as on a real host. A Check
 * suite of its own in the one runner: it needs the harness, and CK_RUN_SUITE=bus-flood runs it
 * alone (tools/test-all: 30 s). test-bus-hostile.c's flood case counts the messages a turn. */

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-harness.h"
#include "fake-kernel.h"
#include "fixture.h"
#include "manager.h"
#include "suites.h"
#include "time-util.h"

#define FLOOD_CLIENTS 8
#define FLOOD_IN_FLIGHT 32              /* each; dbus-daemon lets a connection wait for 128 */
#define FLOOD_INTERFACE "org.freedesktop.DBus.ObjectManager"   /* bus-flood: GetManagedObjects */
#define FLOOD_SECONDS_DEFAULT 30
#define FLOOD_WAKE_PERIOD_USEC (100 * USEC_PER_MSEC)
/* rearm_delay_ms (0, FLOOD_POLICY) + 100 ms */
#define FLOOD_REARM_BOUND_USEC (100 * USEC_PER_MSEC)
/* WatchdogSec=2 (the unit's is 30 s): a ping a second, ten in make check's 10 s */
#define FLOOD_WATCHDOG_USEC (2 * USEC_PER_SEC)
/* 10 wakes a second: no flap guard */
#define FLOOD_POLICY "{\"mode\": \"wakeup\", \"rearm_delay_ms\": 0, \"flap_max_wakes\": 1000000, " \
                     "\"flap_window_s\": 1}"

static unsigned flood_seconds(void) {
        const char *s = getenv("VFIOPM_FLOOD_SECONDS");
        unsigned long n = s ? strtoul(s, NULL, 10) : 0;

        return n > 0 && n <= 3600 ? (unsigned) n : FLOOD_SECONDS_DEFAULT;
}

/* ---- the fake kernel behind a lock --------------------------------------------------------- */

/* The daemon's thread calls the fake kernel through sys, the waker's thread wakes the device:
 * each holds the lock. Every call through sys also looks whether it put the device back into
 * low power with the wake-up eventfd: that moment is the re-arm. */
typedef struct LockedKernel {
        pthread_mutex_t lock;
        FakeKernel *kernel;
        const VfioSys *inner;
        VfioSys sys;
        bool armed;                     /* the device is in a wake-up entry */
        usec_t rearmed_usec;            /* when it last went into one */
        int rearmed_fd;                 /* eventfd, written each time */
} LockedKernel;

static LockedKernel *locked_begin(void *userdata) {
        LockedKernel *l = userdata;

        (void) pthread_mutex_lock(&l->lock);
        return l;
}

static int locked_end(LockedKernel *l, int r) {
        if (!l->armed && fake_kernel_device_low_power(l->kernel, HARNESS_PCI_NAME) == FAKE_LOW_POWER_WAKEUP) {
                l->armed = true;
                l->rearmed_usec = now(CLOCK_MONOTONIC);
                (void) eventfd_write(l->rearmed_fd, 1);
        }
        (void) pthread_mutex_unlock(&l->lock);
        return r;
}

static int locked_openat(void *userdata, int dirfd, const char *path, int flags) {
        LockedKernel *l = locked_begin(userdata);
        return locked_end(l, l->inner->openat(l->inner->userdata, dirfd, path, flags));
}

static int locked_ioctl(void *userdata, int fd, unsigned long request, void *arg) {
        LockedKernel *l = locked_begin(userdata);
        return locked_end(l, l->inner->ioctl(l->inner->userdata, fd, request, arg));
}

static int locked_eventfd(void *userdata, unsigned initval, int flags) {
        LockedKernel *l = locked_begin(userdata);
        return locked_end(l, l->inner->eventfd(l->inner->userdata, initval, flags));
}

static int locked_close(void *userdata, int fd) {
        LockedKernel *l = locked_begin(userdata);
        return locked_end(l, l->inner->close(l->inner->userdata, fd));
}

static void locked_kernel_init(LockedKernel *l) {
        *l = (LockedKernel) {
                .sys = { locked_openat, locked_ioctl, locked_eventfd, locked_close, l },
        };
        ck_assert_int_eq(pthread_mutex_init(&l->lock, NULL), 0);
        ck_assert_int_eq(harness_fake_kernel_new(&l->kernel), 0);
        l->inner = fake_kernel_sys(l->kernel);
        l->rearmed_fd = eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK);
        ck_assert_int_ge(l->rearmed_fd, 0);
}

static void locked_kernel_done(LockedKernel *l) {
        ck_assert_msg(fake_kernel_violations(l->kernel) == 0, "fake kernel: %s", fake_kernel_violation(l->kernel));
        ck_assert_uint_eq(fake_kernel_open_fds(l->kernel), 0);
        l->kernel = fake_kernel_free(l->kernel);
        (void) close(l->rearmed_fd);
        (void) pthread_mutex_destroy(&l->lock);
}

/* ---- the waker: a wake every 100 ms, the watchdog's pings ---------------------------------- */

typedef struct Waker {
        LockedKernel *kernel;
        int notify_fd;                  /* $NOTIFY_SOCKET */
        usec_t end;                     /* of the flood */
        usec_t *latencies;              /* of each wake's re-arm */
        unsigned max_wakes, wakes;
        char failure[160];              /* the first thing that went wrong, "" if nothing */
        unsigned pings;
        usec_t last_ping, longest_gap;  /* last_ping: since the watchdog started at first */
} Waker;

static void waker_fail(Waker *w, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void waker_fail(Waker *w, const char *format, ...) {
        va_list ap;

        if (w->failure[0])
                return;
        va_start(ap, format);
        (void) vsnprintf(w->failure, sizeof(w->failure), format, ap);
        va_end(ap);
}

static void waker_ping(Waker *w, usec_t t) {
        if (t - w->last_ping > w->longest_gap)
                w->longest_gap = t - w->last_ping;
        w->last_ping = t;
}

/* Takes the messages waiting on $NOTIFY_SOCKET: a WATCHDOG=1 is a ping. */
static void waker_read_notify(Waker *w) {
        char buf[512];
        ssize_t n;

        while ((n = recv(w->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >= 0) {
                buf[n] = 0;
                if (strstr(buf, "WATCHDOG=1")) {
                        w->pings++;
                        waker_ping(w, now(CLOCK_MONOTONIC));
                }
        }
        if (errno != EAGAIN)
                waker_fail(w, "reading $NOTIFY_SOCKET: %s", strerror(errno));
}

/* Serves the watchdog until `until`; with want_rearm, returns true as soon as the device is in a
 * wake-up entry again, false if it is not by then. */
static bool waker_wait(Waker *w, usec_t until, bool want_rearm) {
        struct pollfd p[] = {
                { .fd = w->notify_fd, .events = POLLIN },
                { .fd = w->kernel->rearmed_fd, .events = POLLIN },
        };

        for (;;) {
                usec_t t = now(CLOCK_MONOTONIC);
                eventfd_t v;
                bool armed;

                if (t >= until)
                        return false;
                if (poll(p, want_rearm ? 2 : 1, (int) ((until - t + 999) / 1000)) < 0 && errno != EINTR) {
                        waker_fail(w, "poll: %s", strerror(errno));
                        return false;
                }
                if (p[0].revents)
                        waker_read_notify(w);
                if (!want_rearm || !p[1].revents)
                        continue;
                (void) eventfd_read(w->kernel->rearmed_fd, &v);
                (void) pthread_mutex_lock(&w->kernel->lock);
                armed = w->kernel->armed;
                (void) pthread_mutex_unlock(&w->kernel->lock);
                if (armed)
                        return true;
        }
}

/* Wakes the device every FLOOD_WAKE_PERIOD_USEC until the flood ends (a host access under the
 * wake-up entry: the eventfd fires), and waits for each re-arm before the next. No Check
 * assertion here: not the test's thread. */
static void *waker_run(void *userdata) {
        Waker *w = userdata;
        LockedKernel *l = w->kernel;

        for (usec_t next = now(CLOCK_MONOTONIC); next < w->end && w->wakes < w->max_wakes;) {
                usec_t woken;
                int r;

                (void) waker_wait(w, next, false);
                (void) pthread_mutex_lock(&l->lock);
                r = fake_kernel_host_access(l->kernel, HARNESS_PCI_NAME);
                woken = now(CLOCK_MONOTONIC);
                if (r == 1)
                        l->armed = false;
                (void) pthread_mutex_unlock(&l->lock);
                if (r != 1) {
                        waker_fail(w, "wake %u: the device was not in a wake-up entry (%d)", w->wakes + 1, r);
                        break;
                }
                /* the clients stop at w->end, a starved loop catches up then: give it 10 s more */
                if (!waker_wait(w, (woken > w->end ? woken : w->end) + 10 * USEC_PER_SEC, true)) {
                        waker_fail(w, "wake %u was not re-armed within %" PRIu64 " s", w->wakes + 1,
                                   ((woken > w->end ? 0 : w->end - woken) + 10 * USEC_PER_SEC) / USEC_PER_SEC);
                        break;
                }
                (void) pthread_mutex_lock(&l->lock);
                w->latencies[w->wakes++] = l->rearmed_usec - woken;
                (void) pthread_mutex_unlock(&l->lock);
                /* a late re-arm skips the ticks it missed: no burst of wakes to catch up */
                next += FLOOD_WAKE_PERIOD_USEC;
                if (next < now(CLOCK_MONOTONIC))
                        next = now(CLOCK_MONOTONIC);
        }
        /* the last stretch counts too */
        (void) waker_wait(w, w->end, false);
        waker_ping(w, now(CLOCK_MONOTONIC));
        return NULL;
}

/* ---- the clients ---------------------------------------------------------------------------- */

typedef struct Client {
        pid_t pid;
        int out_fd;                     /* its stdout */
        struct event *event;
        char out[256];
        size_t n_out;
} Client;

typedef struct Flood {
        struct event_base *base;
        Client clients[FLOOD_CLIENTS];
        unsigned running;
        bool timed_out;
} Flood;

/* bus-flood SECONDS IN_FLIGHT /org/vfiopm1 FLOOD_INTERFACE on the harness's bus, its stdout to a
 * pipe. */
static void client_start(Client *c, const char *address, unsigned seconds) {
        int p[2];

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        c->pid = fork();
        ck_assert_int_ge(c->pid, 0);
        if (c->pid == 0) {
                char secs[16], in_flight[16];
                char *argv[] = { "bus-flood", secs, in_flight, BUS_MANAGER_PATH, FLOOD_INTERFACE, NULL };
                /* opened before the uid changes: the build tree may be out of nobody's reach */
                int fd = open(BUS_FLOOD_PATH, O_PATH|O_CLOEXEC);

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (fd < 0 || dup2(p[1], STDOUT_FILENO) < 0)
                        _exit(127);
                /* the reads are open to every user: the clients are nobody */
                if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                                       setresuid(65534, 65534, 65534) < 0))
                        _exit(126);
                (void) snprintf(secs, sizeof(secs), "%u", seconds);
                (void) snprintf(in_flight, sizeof(in_flight), "%d", FLOOD_IN_FLIGHT);
                if (setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1) < 0)
                        _exit(125);
                (void) fexecve(fd, argv, environ);
                _exit(127);
        }
        (void) close(p[1]);
        c->out_fd = p[0];
}

static void on_client_output(evutil_socket_t fd, short what, void *userdata);

static void flood_start_clients(Flood *f, const char *address, unsigned seconds) {
        for (size_t i = 0; i < FLOOD_CLIENTS; i++) {
                Client *c = &f->clients[i];

                client_start(c, address, seconds);
                c->event = event_new(f->base, c->out_fd, EV_READ|EV_PERSIST, on_client_output, f);
                ck_assert_ptr_nonnull(c->event);
                ck_assert_int_eq(event_add(c->event, NULL), 0);
                f->running++;
        }
}

/* A client's output, in the daemon's loop: at its end, the client is done. */
static void on_client_output(evutil_socket_t fd, short what, void *userdata) {
        Flood *f = userdata;
        Client *c = NULL;
        ssize_t n;

        for (size_t i = 0; i < FLOOD_CLIENTS; i++)
                if (f->clients[i].out_fd == fd)
                        c = &f->clients[i];
        n = read(fd, c->out + c->n_out, sizeof(c->out) - 1 - c->n_out);
        if (n > 0) {
                c->n_out += (size_t) n;
                return;
        }
        (void) event_del(c->event);
        if (--f->running == 0)
                (void) event_base_loopbreak(f->base);
}

static void on_flood_deadline(evutil_socket_t fd, short what, void *userdata) {
        Flood *f = userdata;

        f->timed_out = true;
        (void) event_base_loopbreak(f->base);
}

/* Each client's exit and line ("N answered, E errors in S s"): the calls answered in all. */
static uint64_t flood_reap_clients(Flood *f) {
        uint64_t answered = 0;

        for (size_t i = 0; i < FLOOD_CLIENTS; i++) {
                Client *c = &f->clients[i];
                unsigned long a = 0, e = 0;
                int status;

                if (f->timed_out)
                        (void) kill(c->pid, SIGKILL);
                ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
                c->out[c->n_out] = 0;
                ck_assert_msg(!f->timed_out, "client %zu not done 60 s after the flood: %s", i, c->out);
                ck_assert_msg(sscanf(c->out, "%lu answered, %lu errors", &a, &e) == 2,
                              "client %zu (exit %d): '%s'", i, WIFEXITED(status) ? WEXITSTATUS(status) : -1, c->out);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 && e == 0 && a > 0,
                              "client %zu: not every call answered: %s", i, c->out);
                answered += a;
                event_free(c->event);
                (void) close(c->out_fd);
        }
        return answered;
}

/* ---- the test ------------------------------------------------------------------------------ */

static int compare_usec(const void *a, const void *b) {
        usec_t x = *(const usec_t *) a, y = *(const usec_t *) b;

        return x < y ? -1 : x > y;
}

/* Prints what the flood saw, then fails the test where it went wrong. */
static void flood_report(Waker *w, unsigned seconds, uint64_t answered) {
        usec_t worst = 0;
        unsigned worst_wake = 0, late = 0;

        for (unsigned i = 0; i < w->wakes; i++) {
                if (w->latencies[i] > FLOOD_REARM_BOUND_USEC)
                        late++;
                if (w->latencies[i] > worst) {
                        worst = w->latencies[i];
                        worst_wake = i + 1;
                }
        }
        qsort(w->latencies, w->wakes, sizeof(usec_t), compare_usec);
        printf("bus-flood: %d clients with %d GetManagedObjects each in flight for %u s: %" PRIu64 " calls "
               "answered (%" PRIu64 " a second), no error\n", FLOOD_CLIENTS, FLOOD_IN_FLIGHT, seconds, answered,
               answered / seconds);
        printf("bus-flood: %u wakes, one every %" PRIu64 " ms: re-armed after %.1f ms (median), %.1f ms at most "
               "(wake %u); %u over %" PRIu64 " ms\n", w->wakes, FLOOD_WAKE_PERIOD_USEC / USEC_PER_MSEC,
               w->wakes ? w->latencies[w->wakes / 2] / 1000.0 : 0.0, worst / 1000.0, worst_wake, late,
               FLOOD_REARM_BOUND_USEC / USEC_PER_MSEC);
        printf("bus-flood: %u watchdog pings (WATCHDOG_USEC %" PRIu64 " s), at most %" PRIu64 " ms apart\n",
               w->pings, FLOOD_WATCHDOG_USEC / USEC_PER_SEC, w->longest_gap / USEC_PER_MSEC);
        (void) fflush(stdout);

        ck_assert_msg(!w->failure[0], "%s", w->failure);
        ck_assert_msg(late == 0, "wake %u re-armed after %" PRIu64 " ms, at most %" PRIu64 " allowed (%u of %u "
                      "wakes late)", worst_wake, worst / USEC_PER_MSEC, FLOOD_REARM_BOUND_USEC / USEC_PER_MSEC, late,
                      w->wakes);
        /* a wake every 100 ms, each waiting for its re-arm: nearly all of them were made */
        ck_assert_msg(w->wakes >= w->max_wakes * 9 / 10, "%u wakes in %u s, %u expected", w->wakes, seconds,
                      w->max_wakes - 1);
        ck_assert_msg(w->longest_gap <= FLOOD_WATCHDOG_USEC, "the watchdog would have fired: no ping for %" PRIu64
                      " ms, at most %" PRIu64 " allowed", w->longest_gap / USEC_PER_MSEC,
                      FLOOD_WATCHDOG_USEC / USEC_PER_MSEC);
}

START_TEST(test_flood_wakes) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *notify_dir = NULL;
        unsigned seconds = flood_seconds();
        struct timeval deadline_tv = { .tv_sec = seconds + 60 };
        struct event *deadline;
        char watchdog_usec[32];
        LockedKernel l;
        Flood f = {};
        Waker w;
        pthread_t waker;
        int notify_fd;
        usec_t start;
        Harness h;

        locked_kernel_init(&l);
        harness_start_local(&h, &(HarnessOptions) {
                .with_pci = true,
                .with_sim = true,
                .etc_policy = FLOOD_POLICY,
                .vfio_sys = &l.sys,
        });
        f.base = manager_event_base(h.manager);
        ck_assert_msg(l.armed, HARNESS_PCI_NAME " is not in a wake-up entry after its first decision");

        /* systemd's watchdog, as the unit with WatchdogSec=2 would set it */
        ck_assert_int_eq(fixture_tmp_new(NULL, &notify_dir), 0);
        ck_assert_int_eq(fixture_notify_socket(notify_dir, &notify_fd), 0);
        (void) snprintf(watchdog_usec, sizeof(watchdog_usec), "%" PRIu64, FLOOD_WATCHDOG_USEC);
        ck_assert_int_eq(setenv("WATCHDOG_USEC", watchdog_usec, 1), 0);
        ck_assert_int_eq(unsetenv("WATCHDOG_PID"), 0);
        ck_assert_int_eq(manager_start_watchdog(h.manager), 0);
        start = now(CLOCK_MONOTONIC);

        /* the clients first: no fork once the waker's thread runs */
        flood_start_clients(&f, h.address, seconds);
        w = (Waker) {
                .kernel = &l,
                .notify_fd = notify_fd,
                .end = start + seconds * USEC_PER_SEC,
                .max_wakes = seconds * (unsigned) (USEC_PER_SEC / FLOOD_WAKE_PERIOD_USEC) + 1,
                .last_ping = start,
        };
        w.latencies = calloc(w.max_wakes, sizeof(usec_t));
        ck_assert_ptr_nonnull(w.latencies);
        ck_assert_int_eq(pthread_create(&waker, NULL, waker_run, &w), 0);

        /* the daemon's loop, until every client is done */
        deadline = evtimer_new(f.base, on_flood_deadline, &f);
        ck_assert_ptr_nonnull(deadline);
        ck_assert_int_eq(evtimer_add(deadline, &deadline_tv), 0);
        ck_assert_int_eq(event_base_dispatch(f.base), 0);
        event_free(deadline);
        ck_assert_int_eq(pthread_join(waker, NULL), 0);

        flood_report(&w, seconds, flood_reap_clients(&f));

        free(w.latencies);
        (void) close(notify_fd);
        ck_assert_int_eq(unsetenv("NOTIFY_SOCKET"), 0);
        ck_assert_int_eq(unsetenv("WATCHDOG_USEC"), 0);
        harness_stop(&h);
        locked_kernel_done(&l);
}
END_TEST

Suite *bus_flood_suite(void) {
        Suite *s = suite_create("bus-flood");
        TCase *tc = tcase_create("flood");

        tcase_set_timeout(tc, flood_seconds() + 90);
        tcase_add_test(tc, test_flood_wakes);
        suite_add_tcase(s, tc);
        return s;
}
