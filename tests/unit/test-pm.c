#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "macro.h"
#include "pm.h"
#include "suites.h"
#include "sysfs.h"

/* The pm state machine driven through a fake PmVfioOps (below), a fake clock and a scratch sysfs
 * directory. The fake keeps vfio-pci's low-power rules (SPEC §1, tests/conformance/README.md)
 * for one device and counts as a violation what the daemon must never do: an entry while one is
 * in force (the kernel answers EINVAL or wakes the device), an open of a device already open. */

/* ---- the fake device -------------------------------------------------------------------- */

typedef enum FakeEntry {
        FAKE_NONE,
        FAKE_PLAIN,
        FAKE_WAKEUP,
} FakeEntry;

typedef struct FakeDev {
        bool open;
        int wake_fd;
        int request_fd;
        FakeEntry in_force;
        bool suspended;                 /* the entry in force has suspended the device */
        bool stay_active;               /* entries do not suspend (yet): conformance case 26 */
        bool exit_fires;                /* EXIT on a suspended wake-up entry signals (upstream) */
        int open_error;                 /* > 0: every open fails with it */
        int fail_enter;                 /* > 0: every entry fails with it */
        int fail_next_enter;            /* > 0: the next entry fails with it (vfio_pm_sim's) */
        int fail_exit;                  /* > 0: every exit fails with it */
        unsigned violations;
        unsigned opens, closes, enters, exits;
        char log[256];                  /* the calls since the last expect_log(), space-separated */
} FakeDev;

static void fake_log(FakeDev *f, const char *what) {
        size_t n = strlen(f->log);

        /* the ring of a long storm: keep the tail readable, never overflow */
        if (n + strlen(what) + 2 > sizeof(f->log)) {
                f->log[0] = 0;
                n = 0;
        }
        (void) snprintf(f->log + n, sizeof(f->log) - n, "%s%s", n ? " " : "", what);
}

static void fake_signal(int fd) {
        uint64_t one = 1;

        ck_assert_int_eq(write(fd, &one, sizeof(one)), (ssize_t) sizeof(one));
}

static int fake_open(void *userdata, const char *bus, const char *name, void **ret_handle) {
        FakeDev *f = userdata;

        fake_log(f, "open");
        if (f->open) {
                f->violations++;
                return -EBUSY;
        }
        if (f->open_error > 0)
                return -f->open_error;
        f->wake_fd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);
        f->request_fd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);
        ck_assert_int_ge(f->wake_fd, 0);
        ck_assert_int_ge(f->request_fd, 0);
        f->open = true;
        f->in_force = FAKE_NONE;
        f->suspended = false;
        f->opens++;
        *ret_handle = f;
        return 0;
}

static void fake_close(void *userdata, void *handle) {
        FakeDev *f = userdata;

        ck_assert_ptr_eq(handle, f);
        ck_assert(f->open);
        fake_log(f, "close");
        f->wake_fd = safe_close(f->wake_fd);
        f->request_fd = safe_close(f->request_fd);
        f->open = false;
        f->in_force = FAKE_NONE;
        f->suspended = false;
        f->closes++;
}

static int fake_enter(void *userdata, void *handle, bool wakeup) {
        FakeDev *f = userdata;

        ck_assert(f->open);
        fake_log(f, wakeup ? "enter:w" : "enter:p");
        f->enters++;
        if (f->fail_next_enter > 0) {
                int e = f->fail_next_enter;

                f->fail_next_enter = 0;
                return -e;
        }
        if (f->fail_enter > 0)
                return -f->fail_enter;
        if (f->in_force != FAKE_NONE) {
                f->violations++;
                /* vfio-pci: EINVAL after a plain entry, and after a wake-up entry that has not
                 * suspended yet; a suspended wake-up entry is woken (signalled) first */
                if (f->in_force == FAKE_PLAIN || !f->suspended)
                        return -EINVAL;
                fake_signal(f->wake_fd);
        }
        f->in_force = wakeup ? FAKE_WAKEUP : FAKE_PLAIN;
        f->suspended = !f->stay_active;
        return 0;
}

static int fake_exit(void *userdata, void *handle) {
        FakeDev *f = userdata;

        ck_assert(f->open);
        fake_log(f, "exit");
        f->exits++;
        if (f->fail_exit > 0)
                return -f->fail_exit;
        if (f->in_force == FAKE_WAKEUP && f->suspended && f->exit_fires)
                fake_signal(f->wake_fd);
        f->in_force = FAKE_NONE;
        f->suspended = false;
        return 0;
}

static int fake_take(int fd, uint64_t *ret) {
        uint64_t v;
        ssize_t n = read(fd, &v, sizeof(v));

        if (n < 0 && errno == EAGAIN) {
                *ret = 0;
                return 0;
        }
        if (n < 0)
                return -errno;
        *ret = v;
        return 0;
}

static int fake_read_wake(void *userdata, void *handle, uint64_t *ret) {
        FakeDev *f = userdata;

        ck_assert(f->open);
        return fake_take(f->wake_fd, ret);
}

static int fake_read_request(void *userdata, void *handle, uint64_t *ret) {
        FakeDev *f = userdata;

        ck_assert(f->open);
        return fake_take(f->request_fd, ret);
}

static int fake_wake_fd(void *userdata, void *handle) {
        return ((FakeDev *) userdata)->wake_fd;
}

static int fake_request_fd(void *userdata, void *handle) {
        return ((FakeDev *) userdata)->request_fd;
}

static const PmVfioOps fake_ops = {
        .open = fake_open,
        .close = fake_close,
        .enter = fake_enter,
        .exit = fake_exit,
        .read_wake = fake_read_wake,
        .read_request = fake_read_request,
        .wake_fd = fake_wake_fd,
        .request_fd = fake_request_fd,
};

/* The device wakes (a host access, a PME): a suspended wake-up entry fires and ends; a plain one
 * resumes and the kernel suspends it again by itself. Returns whether the eventfd fired. */
static bool fake_device_wakes(FakeDev *f) {
        if (f->in_force != FAKE_WAKEUP || !f->suspended)
                return false;
        fake_signal(f->wake_fd);
        f->in_force = FAKE_NONE;
        f->suspended = false;
        return true;
}

/* ---- the harness ------------------------------------------------------------------------ */

#define T0 (UINT64_C(1000) * USEC_PER_SEC)     /* the fake monotonic clock starts here */
#define RT0 (UINT64_C(1700000000) * USEC_PER_SEC)

typedef struct T {
        FixtureTmp *tmp;
        FixtureTmp *state;              /* PmEnv.state_dir_fd: the records of the originals */
        unsigned record_failures;       /* record_failed calls */
        char record_failure[64];        /* the last one: "what: -errno" */
        FakeDev dev;
        usec_t now;
        usec_t rt_offset;
        PmEnv env;
        PmDevice *pm;
        char states[512];               /* states entered since the last expect_states() */
        unsigned state_calls, deadline_calls, fds_calls;
        unsigned flaps;                 /* transitions to flapping */
        unsigned expected_violations;
        /* an independent account of the time armed, from the callbacks */
        usec_t armed_start, armed_total;
} T;

static usec_t t_now(void *userdata) {
        return ((T *) userdata)->now;
}

static usec_t t_now_realtime(void *userdata) {
        T *t = userdata;

        return t->now + t->rt_offset;
}

static void t_deadline_changed(void *userdata, PmDevice *d) {
        T *t = userdata;

        ck_assert_ptr_eq(d, t->pm);
        t->deadline_calls++;
}

static void t_fds_changed(void *userdata, PmDevice *d) {
        T *t = userdata;

        ck_assert_ptr_eq(d, t->pm);
        t->fds_calls++;
        /* held: the fds are there; closing: reported while the fds are still open */
        ck_assert(t->dev.open);
        if (pm_device_held(d)) {
                ck_assert_int_eq(pm_device_wake_fd(d), t->dev.wake_fd);
                ck_assert_int_eq(pm_device_request_fd(d), t->dev.request_fd);
        } else {
                ck_assert_int_eq(pm_device_wake_fd(d), -EBADF);
                ck_assert_int_eq(pm_device_request_fd(d), -EBADF);
        }
}

static void t_state_changed(void *userdata, PmDevice *d, PmState old) {
        T *t = userdata;
        PmState s = pm_device_state(d);
        size_t n = strlen(t->states);

        ck_assert_ptr_eq(d, t->pm);
        ck_assert_int_ne(old, s);       /* only on a change */
        t->state_calls++;
        if (s == PM_STATE_FLAPPING)
                t->flaps++;
        if (s == PM_STATE_ARMED)
                t->armed_start = t->now;
        if (old == PM_STATE_ARMED)
                t->armed_total += t->now - t->armed_start;
        /* no timer in a state that waits for nothing */
        if (s == PM_STATE_ARMED || s == PM_STATE_KERNEL || s == PM_STATE_ON || s == PM_STATE_BUSY ||
            s == PM_STATE_RELEASED)
                ck_assert_uint_eq(pm_device_deadline(d), USEC_INFINITY);
        if (n + 12 < sizeof(t->states))
                (void) snprintf(t->states + n, sizeof(t->states) - n, "%s%s", n ? " " : "",
                                pm_state_to_string(s));
}

static void t_record_failed(void *userdata, PmDevice *d, const char *what, int error) {
        T *t = userdata;

        ck_assert_str_eq(pm_device_name(d), "0000:01:00.0");
        ck_assert_int_lt(error, 0);
        t->record_failures++;
        (void) snprintf(t->record_failure, sizeof(t->record_failure), "%s: %d", what, error);
}

/* A harness without its PmDevice yet: a sysfs directory (with the attributes if sysfs) and an
 * empty state directory; t_start() creates the device. */
static T *t_alloc(bool sysfs) {
        T *t = calloc(1, sizeof(*t));

        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(fixture_tmp_new(NULL, &t->tmp), 0);
        ck_assert_int_eq(fixture_tmp_new(NULL, &t->state), 0);
        if (sysfs) {
                ck_assert_int_eq(fixture_write_string(t->tmp->fd, "power/control", "auto\n"), 0);
                ck_assert_int_eq(fixture_write_string(t->tmp->fd, "d3cold_allowed", "1\n"), 0);
                ck_assert_int_eq(fixture_write_string(t->tmp->fd, "power/runtime_suspended_time", "1234\n"), 0);
        }
        t->dev.wake_fd = t->dev.request_fd = -EBADF;
        t->dev.exit_fires = true;
        t->now = T0;
        t->rt_offset = RT0 - T0;
        t->env = (PmEnv) {
                .vfio_ops = &fake_ops,
                .vfio_userdata = &t->dev,
                .now = t_now,
                .now_realtime = t_now_realtime,
                .deadline_changed = t_deadline_changed,
                .fds_changed = t_fds_changed,
                .state_changed = t_state_changed,
                .record_failed = t_record_failed,
                .userdata = t,
                .state_dir_fd = t->state->fd,
        };
        return t;
}

static T *t_start(T *t) {
        ck_assert_int_eq(pm_device_new(&t->env, "pci", "0000:01:00.0", t->tmp->fd, &t->pm), 0);
        ck_assert_int_eq(pm_device_state(t->pm), PM_STATE_KERNEL);
        ck_assert_str_eq(pm_device_name(t->pm), "0000:01:00.0");
        return t;
}

static T *t_new_full(bool sysfs) {
        return t_start(t_alloc(sysfs));
}

static T *t_new(void) {
        return t_new_full(true);
}

static void t_free(T *t) {
        if (!t)
                return;
        t->pm = pm_device_free(t->pm);
        /* freeing closes what was held */
        ck_assert(!t->dev.open);
        ck_assert_uint_eq(t->dev.opens, t->dev.closes);
        ck_assert_uint_eq(t->dev.violations, t->expected_violations);
        fixture_tmp_free(t->tmp);
        fixture_tmp_free(t->state);
        free(t);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(T *, t_free)

static PolicyValues policy(PolicyMode mode, uint64_t arm_ms, uint64_t rearm_ms) {
        PolicyValues p = *policy_defaults();

        p.mode = mode;
        p.arm_delay_ms = arm_ms;
        p.rearm_delay_ms = rearm_ms;
        return p;
}

static int t_policy(T *t, PolicyMode mode, uint64_t arm_ms, uint64_t rearm_ms) {
        PolicyValues p = policy(mode, arm_ms, rearm_ms);

        return pm_device_set_policy(t->pm, &p);
}

#define expect_log(t, s) do {                                   \
                ck_assert_str_eq((t)->dev.log, (s));            \
                (t)->dev.log[0] = 0;                            \
        } while (0)

#define expect_states(t, s) do {                                \
                ck_assert_str_eq((t)->states, (s));             \
                (t)->states[0] = 0;                             \
        } while (0)

#define expect_state(t, st, dl) do {                            \
                ck_assert_str_eq(pm_state_to_string(pm_device_state((t)->pm)), pm_state_to_string(st)); \
                ck_assert_uint_eq(pm_device_deadline((t)->pm), (dl)); \
        } while (0)

static void t_advance(T *t, usec_t usec) {
        t->now += usec;
}

/* Moves the clock to the deadline and fires the timer. */
static int t_fire(T *t) {
        usec_t dl = pm_device_deadline(t->pm);

        ck_assert_uint_ne(dl, USEC_INFINITY);
        ck_assert_uint_ge(dl, t->now);
        t->now = dl;
        return pm_device_handle_timer(t->pm);
}

/* The device wakes and the loop sees its eventfd. */
static int t_device_wakes(T *t) {
        ck_assert(fake_device_wakes(&t->dev));
        return pm_device_handle_wake(t->pm);
}

static const char *t_attr(T *t, const char *path) {
        static char buf[64];
        _cleanup_free_ char *v = NULL;

        ck_assert_int_eq(sysfs_read_attr(t->tmp->fd, path, &v), 0);
        (void) snprintf(buf, sizeof(buf), "%s", v);
        return buf;
}

static PmCounters t_counters(T *t) {
        PmCounters c;

        pm_device_counters(t->pm, &c);
        return c;
}

/* ---- names ------------------------------------------------------------------------------ */

START_TEST(test_state_strings) {
        static const char *const names[] = {
                "kernel", "on", "busy", "idle", "armed", "woken", "flapping", "released", "error",
        };

        ck_assert_int_eq(_PM_STATE_MAX, 9);
        for (PmState s = 0; s < _PM_STATE_MAX; s++) {
                ck_assert_str_eq(pm_state_to_string(s), names[s]);
                ck_assert_int_eq(pm_state_from_string(names[s]), s);
        }
        ck_assert_ptr_null(pm_state_to_string(_PM_STATE_MAX));
        ck_assert_ptr_null(pm_state_to_string(_PM_STATE_INVALID));
        ck_assert_int_eq(pm_state_from_string("Armed"), _PM_STATE_INVALID);
        ck_assert_int_eq(pm_state_from_string(""), _PM_STATE_INVALID);
        ck_assert_int_eq(pm_state_from_string(NULL), _PM_STATE_INVALID);
}
END_TEST

/* sd_notify's STATUS=: SPEC §4's "3 devices: 2 armed, 1 kernel" */
START_TEST(test_state_counts_format) {
        size_t count[_PM_STATE_MAX] = {};
        char buf[256], small[12];

        ck_assert_str_eq(pm_state_counts_format(count, buf, sizeof(buf)), "0 devices");
        count[PM_STATE_ARMED] = 1;
        ck_assert_str_eq(pm_state_counts_format(count, buf, sizeof(buf)), "1 device: 1 armed");
        count[PM_STATE_ARMED] = 2;
        count[PM_STATE_KERNEL] = 1;
        ck_assert_str_eq(pm_state_counts_format(count, buf, sizeof(buf)), "3 devices: 2 armed, 1 kernel");
        /* ties in state order: kernel, on, ..., error */
        count[PM_STATE_ERROR] = 1;
        count[PM_STATE_ON] = 1;
        ck_assert_str_eq(pm_state_counts_format(count, buf, sizeof(buf)), "5 devices: 2 armed, 1 kernel, 1 on, 1 error");
        count[PM_STATE_ERROR] = 40;
        ck_assert_str_eq(pm_state_counts_format(count, buf, sizeof(buf)),
                         "44 devices: 40 error, 2 armed, 1 kernel, 1 on");
        for (PmState s = 0; s < _PM_STATE_MAX; s++)
                count[s] = 1000000 + (size_t) s;
        ck_assert_str_eq(pm_state_counts_format(count, buf, sizeof(buf)),
                         "9000036 devices: 1000008 error, 1000007 released, 1000006 flapping, 1000005 woken, "
                         "1000004 armed, 1000003 idle, 1000002 busy, 1000001 on, 1000000 kernel");
        /* truncated, terminated */
        ck_assert_str_eq(pm_state_counts_format(count, small, sizeof(small)), "9000036 dev");
        ck_assert_ptr_eq(pm_state_counts_format(count, small, 0), small);
}
END_TEST

START_TEST(test_new_invalid) {
        PmEnv env = {};
        PmDevice *d = NULL;

        ck_assert_int_eq(pm_device_new(&env, "pci", "x", -EBADF, &d), -EINVAL);
        env.now = t_now;
        env.now_realtime = t_now;
        /* neither ops nor a backend */
        ck_assert_int_eq(pm_device_new(&env, "pci", "x", -EBADF, &d), -EINVAL);
        env.vfio_ops = &fake_ops;
        ck_assert_int_eq(pm_device_new(&env, NULL, "x", -EBADF, &d), -EINVAL);
        ck_assert_int_eq(pm_device_new(&env, "pci", NULL, -EBADF, &d), -EINVAL);
        ck_assert_ptr_null(d);
        ck_assert_ptr_null(pm_device_free(NULL));
        ck_assert(pm_vfio_ops_default()->open && pm_vfio_ops_default()->request_fd);
}
END_TEST

/* ---- kernel and on ---------------------------------------------------------------------- */

START_TEST(test_kernel_mode) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        expect_state(t, PM_STATE_KERNEL, USEC_INFINITY);
        ck_assert_int_eq(pm_device_mode(t->pm), POLICY_MODE_KERNEL);
        ck_assert(!pm_device_held(t->pm));
        ck_assert_ptr_null(pm_device_vfio(t->pm));
        /* no change, so no callback; nothing opened, nothing written */
        ck_assert_uint_eq(t->state_calls, 0);
        ck_assert_uint_eq(t->deadline_calls, 0);
        ck_assert_uint_eq(t->fds_calls, 0);
        expect_log(t, "");
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");

        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), -ENOTCONN);
        ck_assert_int_eq(pm_device_wake(t->pm), -ENOTCONN);
        ck_assert_int_eq(pm_device_claim(t->pm), 0);
        ck_assert_int_eq(pm_device_handle_timer(t->pm), 0);
        ck_assert_int_eq(pm_device_handle_wake(t->pm), 0);
        ck_assert_int_eq(pm_device_handle_request(t->pm), 0);
        expect_state(t, PM_STATE_KERNEL, USEC_INFINITY);
        expect_log(t, "");
        ck_assert_str_eq(pm_device_last_error(t->pm), "");
}
END_TEST

START_TEST(test_on_mode) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(t_policy(t, POLICY_MODE_ON, 0, 0), 0);
        expect_state(t, PM_STATE_ON, USEC_INFINITY);
        expect_states(t, "on");
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        expect_log(t, "");
        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), -ENOTCONN);
        ck_assert_int_eq(pm_device_wake(t->pm), -ENOTCONN);

        /* again: nothing changes */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_ON, 5, 5), 0);
        expect_states(t, "");

        /* leaving on restores what was there */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        expect_states(t, "kernel");
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");

        /* a device kept on by someone else stays on after */
        ck_assert_int_eq(fixture_write_string(t->tmp->fd, "power/control", "on\n"), 0);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_ON, 0, 0), 0);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        expect_log(t, "");
        ck_assert_uint_eq(t->deadline_calls, 0);
}
END_TEST

START_TEST(test_on_mode_free_restores) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(t_policy(t, POLICY_MODE_ON, 0, 0), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        t->pm = pm_device_free(t->pm);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
}
END_TEST

START_TEST(test_on_mode_no_attribute) {
        _cleanup_(t_freep) T *t = t_new_full(false);

        /* a device without runtime PM: nothing to keep on, and no error */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_ON, 0, 0), 0);
        expect_state(t, PM_STATE_ON, USEC_INFINITY);
        ck_assert_str_eq(pm_device_last_error(t->pm), "");
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        expect_state(t, PM_STATE_KERNEL, USEC_INFINITY);
        ck_assert_int_eq(faccessat(t->tmp->fd, "power/control", F_OK, 0), -1);
}
END_TEST

START_TEST(test_on_mode_error_backoff) {
        _cleanup_(t_freep) T *t = t_new();

        /* power/control that cannot be read (a directory): error, retried with backoff */
        ck_assert_int_eq(unlinkat(t->tmp->fd, "power/control", 0), 0);
        ck_assert_int_eq(mkdirat(t->tmp->fd, "power/control", 0755), 0);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_ON, 0, 0), -EISDIR);
        expect_state(t, PM_STATE_ERROR, T0 + 1 * USEC_PER_SEC);
        ck_assert_str_eq(pm_device_last_error(t->pm), "power/control: Is a directory");
        ck_assert_int_eq(t_fire(t), -EISDIR);
        expect_state(t, PM_STATE_ERROR, T0 + 3 * USEC_PER_SEC);
        /* a reload with the same mode keeps the backoff */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_ON, 0, 0), 0);
        expect_state(t, PM_STATE_ERROR, T0 + 3 * USEC_PER_SEC);

        ck_assert_int_eq(unlinkat(t->tmp->fd, "power/control", AT_REMOVEDIR), 0);
        ck_assert_int_eq(fixture_write_string(t->tmp->fd, "power/control", "auto\n"), 0);
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ON, USEC_INFINITY);
        expect_states(t, "error on");
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        expect_log(t, "");
}
END_TEST

/* ---- auto ------------------------------------------------------------------------------- */

START_TEST(test_auto_arm_delay) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 500, 1000), 0);
        expect_state(t, PM_STATE_IDLE, T0 + 500 * USEC_PER_MSEC);
        expect_states(t, "idle");
        expect_log(t, "open");
        ck_assert(pm_device_held(t->pm));
        ck_assert_uint_eq(t->fds_calls, 1);
        ck_assert_uint_eq(t->deadline_calls, 1);

        /* a timer that fires a microsecond early does nothing but ask to be armed again */
        t_advance(t, 500 * USEC_PER_MSEC - 1);
        ck_assert_int_eq(pm_device_handle_timer(t->pm), 0);
        expect_state(t, PM_STATE_IDLE, T0 + 500 * USEC_PER_MSEC);
        ck_assert_uint_eq(t->deadline_calls, 2);
        expect_log(t, "");

        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_states(t, "armed");
        expect_log(t, "enter:p");
        ck_assert_uint_eq(t->deadline_calls, 3);
        ck_assert_uint_eq(t_counters(t).arms, 1);
        ck_assert_uint_eq(t_counters(t).low_power_usec, 0);

        /* the kernel re-enters by itself: a host access fires nothing, the daemon does nothing */
        ck_assert(!fake_device_wakes(&t->dev));
        ck_assert_int_eq(pm_device_handle_wake(t->pm), 0);
        t_advance(t, 7 * USEC_PER_SEC);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_uint_eq(t_counters(t).low_power_usec, 7 * USEC_PER_SEC);
        ck_assert_uint_eq(t_counters(t).wakes, 0);
        ck_assert_uint_eq(t_counters(t).last_wake_realtime_usec, 0);
        ck_assert_int_eq(pm_device_handle_timer(t->pm), 0);    /* no deadline: nothing */
        expect_log(t, "");

        /* leaving: close, and nothing issued before it */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 500, 1000), 0);
        expect_state(t, PM_STATE_KERNEL, USEC_INFINITY);
        expect_states(t, "kernel");
        expect_log(t, "close");
        ck_assert_uint_eq(t->fds_calls, 2);
        ck_assert_uint_eq(t_counters(t).low_power_usec, 7 * USEC_PER_SEC);
        ck_assert_uint_eq(t->armed_total, 7 * USEC_PER_SEC);
}
END_TEST

START_TEST(test_auto_zero_delay) {
        _cleanup_(t_freep) T *t = t_new();

        /* through idle, with no timer */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_states(t, "idle armed");
        expect_log(t, "open enter:p");
        ck_assert_uint_eq(t->deadline_calls, 0);
        ck_assert_int_eq(t->dev.in_force, FAKE_PLAIN);
}
END_TEST

/* ---- wakeup ----------------------------------------------------------------------------- */

START_TEST(test_wakeup_cycle) {
        _cleanup_(t_freep) T *t = t_new();
        PmCounters c;

        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 250, 1000), 0);
        expect_state(t, PM_STATE_IDLE, T0 + 250 * USEC_PER_MSEC);
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_log(t, "open enter:w");

        t_advance(t, 3 * USEC_PER_SEC);
        ck_assert_int_eq(t_device_wakes(t), 0);
        expect_state(t, PM_STATE_WOKEN, t->now + 1000 * USEC_PER_MSEC);
        c = t_counters(t);
        ck_assert_uint_eq(c.wakes, 1);
        ck_assert_uint_eq(c.arms, 1);
        ck_assert_uint_eq(c.low_power_usec, 3 * USEC_PER_SEC);
        ck_assert_uint_eq(c.last_wake_realtime_usec, RT0 + 250 * USEC_PER_MSEC + 3 * USEC_PER_SEC);

        /* no time armed accrues while woken; a second read of the eventfd finds nothing */
        t_advance(t, 400 * USEC_PER_MSEC);
        ck_assert_int_eq(pm_device_handle_wake(t->pm), 0);
        ck_assert_uint_eq(t_counters(t).wakes, 1);
        ck_assert_uint_eq(t_counters(t).low_power_usec, 3 * USEC_PER_SEC);

        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_states(t, "idle armed woken armed");
        expect_log(t, "enter:w");
        t_advance(t, 2 * USEC_PER_SEC);
        c = t_counters(t);
        ck_assert_uint_eq(c.arms, 2);
        ck_assert_uint_eq(c.low_power_usec, 5 * USEC_PER_SEC);
        ck_assert_uint_eq(t->deadline_calls, 4);     /* idle, armed, woken, armed */
}
END_TEST

START_TEST(test_wakeup_rearm_zero) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 0), 0);
        expect_states(t, "idle armed");
        for (int i = 0; i < 5; i++) {
                ck_assert_int_eq(t_device_wakes(t), 0);
                expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
                expect_states(t, "woken armed");
        }
        expect_log(t, "open enter:w enter:w enter:w enter:w enter:w enter:w");
        ck_assert_uint_eq(t->deadline_calls, 0);
        ck_assert_uint_eq(t_counters(t).wakes, 5);
        ck_assert_uint_eq(t_counters(t).arms, 6);
}
END_TEST

/* A signal of the eventfd that was not the entry's end (stale, from before): the daemon takes it
 * for a wake, but the kernel still has the entry in force and, the device not yet suspended,
 * answers the re-entry with EINVAL. Not an error: exit, enter again. */
START_TEST(test_wakeup_entry_einval) {
        _cleanup_(t_freep) T *t = t_new();

        t->dev.stay_active = true;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 100), 0);
        expect_log(t, "open enter:w");
        fake_signal(t->dev.wake_fd);
        ck_assert_int_eq(pm_device_handle_wake(t->pm), 0);
        expect_state(t, PM_STATE_WOKEN, T0 + 100 * USEC_PER_MSEC);
        ck_assert_int_eq(t_fire(t), 0);
        t->expected_violations = 1;     /* the one entry over another, which the kernel refused */
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_log(t, "enter:w exit enter:w");
        expect_states(t, "idle armed woken armed");
        ck_assert_str_eq(pm_device_last_error(t->pm), "");
        ck_assert_uint_eq(t_counters(t).arms, 2);
}
END_TEST

START_TEST(test_entry_einval_twice) {
        _cleanup_(t_freep) T *t = t_new();

        t->dev.fail_enter = EINVAL;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 0), -EINVAL);
        expect_log(t, "open enter:w exit enter:w");
        expect_state(t, PM_STATE_ERROR, T0 + USEC_PER_SEC);
        ck_assert_str_eq(pm_device_last_error(t->pm), "LOW_POWER_ENTRY_WITH_WAKEUP: Invalid argument");
        ck_assert(pm_device_held(t->pm));

        /* EINVAL, and the exit meant to end the stray entry fails: closed, re-opened on retry */
        t->dev.fail_exit = EIO;
        ck_assert_int_eq(t_fire(t), -EIO);
        expect_log(t, "enter:w exit close");
        expect_state(t, PM_STATE_ERROR, t->now + 2 * USEC_PER_SEC);
        ck_assert_str_eq(pm_device_last_error(t->pm), "LOW_POWER_EXIT: Input/output error");
        t->dev.fail_exit = 0;
        t->dev.fail_enter = 0;
        ck_assert_int_eq(t_fire(t), 0);
        expect_log(t, "open enter:w");
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
}
END_TEST

/* ---- the flap guard --------------------------------------------------------------------- */

static PolicyValues flap_policy(uint64_t max, uint64_t window_s, uint64_t hold_s, uint64_t rearm_ms) {
        PolicyValues p = policy(POLICY_MODE_WAKEUP, 0, rearm_ms);

        p.flap_max_wakes = max;
        p.flap_window_s = window_s;
        p.flap_hold_s = hold_s;
        return p;
}

START_TEST(test_flap_exact) {
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = flap_policy(3, 10, 300, 0);
        usec_t t1;

        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_states(t, "idle armed");

        /* wakes at 0, 1, 2 and 10 s: the fourth is exactly a window after the first, so only
         * three lie inside (10 s - window, 10 s]: no flapping */
        ck_assert_int_eq(t_device_wakes(t), 0);
        t_advance(t, 1 * USEC_PER_SEC);
        ck_assert_int_eq(t_device_wakes(t), 0);
        t_advance(t, 1 * USEC_PER_SEC);
        ck_assert_int_eq(t_device_wakes(t), 0);
        t_advance(t, 8 * USEC_PER_SEC);
        ck_assert_int_eq(t_device_wakes(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_uint_eq(t->flaps, 0);
        expect_states(t, "woken armed woken armed woken armed woken armed");

        /* at 11 s - 1 µs the wakes at 1, 2, 10 and now are four inside one window: flapping */
        t_advance(t, 1 * USEC_PER_SEC - 1);
        t1 = t->now;
        ck_assert_int_eq(t_device_wakes(t), 0);
        expect_state(t, PM_STATE_FLAPPING, t1 + 300 * USEC_PER_SEC);
        expect_states(t, "flapping");
        ck_assert_uint_eq(t_counters(t).wakes, 5);
        ck_assert_uint_eq(t->flaps, 1);

        /* held in D0 for flap_hold_s exactly; nothing can wake it */
        t_advance(t, 300 * USEC_PER_SEC - 1);
        ck_assert_int_eq(pm_device_handle_timer(t->pm), 0);
        expect_state(t, PM_STATE_FLAPPING, t1 + 300 * USEC_PER_SEC);
        ck_assert(!fake_device_wakes(&t->dev));
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_states(t, "armed");

        /* the window starts over: three quick wakes are fine, the fourth flaps */
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(t_device_wakes(t), 0);
                expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        }
        ck_assert_int_eq(t_device_wakes(t), 0);
        expect_state(t, PM_STATE_FLAPPING, t->now + 300 * USEC_PER_SEC);
        ck_assert_uint_eq(t->flaps, 2);
        ck_assert_uint_eq(t_counters(t).wakes, 9);
}
END_TEST

START_TEST(test_flap_max_one) {
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = flap_policy(1, 1, 5, 0);

        /* "more than 1 inside 1 s": two wakes 999999 µs apart */
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_int_eq(t_device_wakes(t), 0);
        t_advance(t, USEC_PER_SEC);
        ck_assert_int_eq(t_device_wakes(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        t_advance(t, USEC_PER_SEC - 1);
        ck_assert_int_eq(t_device_wakes(t), 0);
        expect_state(t, PM_STATE_FLAPPING, t->now + 5 * USEC_PER_SEC);
}
END_TEST

START_TEST(test_flap_hold_zero) {
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = flap_policy(2, 60, 0, 0);

        /* no hold: the guard only starts the window over */
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        for (int i = 0; i < 10; i++) {
                ck_assert_int_eq(t_device_wakes(t), 0);
                expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        }
        ck_assert_uint_eq(t->flaps, 0);
        ck_assert_uint_eq(t->deadline_calls, 0);
}
END_TEST

START_TEST(test_flap_policy_change) {
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = flap_policy(3, 60, 100, 0);

        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        for (int i = 0; i < 4; i++)
                ck_assert_int_eq(t_device_wakes(t), 0);
        expect_state(t, PM_STATE_FLAPPING, T0 + 100 * USEC_PER_SEC);

        /* a shorter hold counts from the start of the flapping */
        t_advance(t, 20 * USEC_PER_SEC);
        p.flap_hold_s = 30;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_state(t, PM_STATE_FLAPPING, T0 + 30 * USEC_PER_SEC);
        /* one that has passed already ends it now */
        p.flap_hold_s = 10;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);

        /* a new flap_max_wakes starts the window over */
        ck_assert_int_eq(t_device_wakes(t), 0);
        ck_assert_int_eq(t_device_wakes(t), 0);
        p.flap_max_wakes = 2;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_int_eq(t_device_wakes(t), 0);
        ck_assert_int_eq(t_device_wakes(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_int_eq(t_device_wakes(t), 0);
        expect_state(t, PM_STATE_FLAPPING, t->now + 10 * USEC_PER_SEC);
        ck_assert_uint_eq(t->flaps, 2);
}
END_TEST

static uint64_t lcg(uint64_t *s) {
        *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
        return *s >> 33;
}

/* 10,000 wakes with the default guard (more than 10 inside 60 s → 300 s in D0) at random
 * intervals, checked wake by wake against a plain sliding-window count. */
START_TEST(test_wake_storm) {
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = flap_policy(10, 60, 300, 1000);
        enum { WAKES = 10000 };
        usec_t *window = calloc(WAKES, sizeof(usec_t)), last_rt = 0;
        size_t n_window = 0;
        unsigned model_flaps = 0, rearms = 0;
        uint64_t seed = 42;

        ck_assert_ptr_nonnull(window);
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);

        for (unsigned i = 0; i < WAKES; i++) {
                size_t inside = 1;
                bool flapping;

                /* armed for 0…8 s, then the device wakes */
                t_advance(t, lcg(&seed) % (8 * USEC_PER_SEC));
                ck_assert_int_eq(t_device_wakes(t), 0);
                last_rt = t->now + t->rt_offset;

                for (size_t j = 0; j < n_window; j++)
                        if (t->now - window[j] < 60 * USEC_PER_SEC)
                                inside++;
                flapping = inside > 10;
                if (flapping) {
                        model_flaps++;
                        n_window = 0;
                        expect_state(t, PM_STATE_FLAPPING, t->now + 300 * USEC_PER_SEC);
                } else {
                        window[n_window++] = t->now;
                        expect_state(t, PM_STATE_WOKEN, t->now + 1000 * USEC_PER_MSEC);
                }
                ck_assert_uint_eq(t->flaps, model_flaps);

                ck_assert_int_eq(t_fire(t), 0);
                rearms++;
                expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
                t->states[0] = 0;
                t->dev.log[0] = 0;
        }
        free(window);

        PmCounters c = t_counters(t);
        ck_assert_uint_eq(c.wakes, WAKES);
        ck_assert_uint_eq(c.arms, 1 + rearms);
        ck_assert_uint_eq(c.last_wake_realtime_usec, last_rt);
        ck_assert_uint_eq(c.low_power_usec, t->armed_total + (t->now - t->armed_start));
        ck_assert_uint_gt(model_flaps, 10);
        ck_assert_uint_le(model_flaps, WAKES / 11);
        ck_assert_uint_eq(t->dev.enters, 1 + rearms);
        ck_assert_uint_eq(t->dev.exits, 0);
        ck_assert_uint_eq(t->dev.opens, 1);
}
END_TEST

/* A storm with no timer at all (rearm 0) and a guard too wide to trip: the ring grows to its
 * full size and the counters stay exact. */
START_TEST(test_wake_storm_no_delay) {
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = flap_policy(1000000, 86400, 300, 0);

        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        for (unsigned i = 0; i < 10000; i++) {
                t_advance(t, 10);
                ck_assert_int_eq(t_device_wakes(t), 0);
                t->dev.log[0] = 0;
                t->states[0] = 0;
        }
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_uint_eq(t_counters(t).wakes, 10000);
        ck_assert_uint_eq(t_counters(t).arms, 10001);
        ck_assert_uint_eq(t_counters(t).low_power_usec, 10000 * 10);
        ck_assert_uint_eq(t->flaps, 0);
        ck_assert_uint_eq(t->deadline_calls, 0);
        ck_assert_uint_eq(t->state_calls, 2 + 2 * 10000);
}
END_TEST

/* ---- policy changes --------------------------------------------------------------------- */

static const char *mode_state(PolicyMode m) {
        switch (m) {
        case POLICY_MODE_KERNEL:
                return "kernel";
        case POLICY_MODE_ON:
                return "on";
        case POLICY_MODE_AUTO:
        case POLICY_MODE_WAKEUP:
                return "armed";
        case _POLICY_MODE_MAX:
        case _POLICY_MODE_INVALID:
                break;
        }
        return NULL;
}

static void check_mode(T *t, PolicyMode m) {
        ck_assert_str_eq(pm_state_to_string(pm_device_state(t->pm)), mode_state(m));
        ck_assert_int_eq(pm_device_mode(t->pm), m);
        ck_assert_uint_eq(pm_device_deadline(t->pm), USEC_INFINITY);
        ck_assert_str_eq(t_attr(t, "power/control"), m == POLICY_MODE_ON ? "on" : "auto");
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        ck_assert(pm_device_held(t->pm) == (m == POLICY_MODE_AUTO || m == POLICY_MODE_WAKEUP));
        ck_assert(t->dev.open == pm_device_held(t->pm));
        ck_assert_int_eq(t->dev.in_force, m == POLICY_MODE_WAKEUP ? FAKE_WAKEUP :
                                          m == POLICY_MODE_AUTO ? FAKE_PLAIN : FAKE_NONE);
        ck_assert_str_eq(pm_device_last_error(t->pm), "");
}

/* Every ordered pair of modes, armed devices included, with d3cold false throughout. */
START_TEST(test_policy_pairs) {
        static const char *const expected_log[_POLICY_MODE_MAX][_POLICY_MODE_MAX] = {
                /* from kernel: to kernel, on, auto, wakeup */
                { "", "", "open enter:p", "open enter:w" },
                /* from on */
                { "", "", "open enter:p", "open enter:w" },
                /* from auto */
                { "close", "close", "", "exit enter:w" },
                /* from wakeup */
                { "close", "close", "exit enter:p", "" },
        };

        for (PolicyMode a = 0; a < _POLICY_MODE_MAX; a++)
                for (PolicyMode b = 0; b < _POLICY_MODE_MAX; b++) {
                        _cleanup_(t_freep) T *t = t_new();
                        PolicyValues p = policy(a, 0, 0);

                        p.d3cold = POLICY_D3COLD_DENY;
                        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
                        check_mode(t, a);
                        t->dev.log[0] = 0;
                        p.mode = b;
                        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
                        check_mode(t, b);
                        expect_log(t, expected_log[a][b]);
                        /* an exit on an armed wake-up entry may fire: drained, not a wake */
                        ck_assert_uint_eq(t_counters(t).wakes, 0);
                        ck_assert_int_eq(pm_device_handle_wake(t->pm), 0);
                        ck_assert_uint_eq(t_counters(t).wakes, 0);

                        /* back to the first, and then the sysfs values come back on free */
                        p.mode = a;
                        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
                        check_mode(t, a);
                        t->pm = pm_device_free(t->pm);
                        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
                        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
                }
}
END_TEST

START_TEST(test_policy_delay_changes) {
        _cleanup_(t_freep) T *t = t_new();

        /* idle: a new arm_delay_ms counts from the open */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 1000, 2000), 0);
        expect_state(t, PM_STATE_IDLE, T0 + 1000 * USEC_PER_MSEC);
        t_advance(t, 300 * USEC_PER_MSEC);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 5000, 2000), 0);
        expect_state(t, PM_STATE_IDLE, T0 + 5000 * USEC_PER_MSEC);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 300, 2000), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_states(t, "idle armed");
        expect_log(t, "open enter:w");

        /* woken: a new rearm_delay_ms counts from the wake */
        ck_assert_int_eq(t_device_wakes(t), 0);
        usec_t w = t->now;
        expect_state(t, PM_STATE_WOKEN, w + 2000 * USEC_PER_MSEC);
        t_advance(t, 500 * USEC_PER_MSEC);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 300, 700), 0);
        expect_state(t, PM_STATE_WOKEN, w + 700 * USEC_PER_MSEC);
        /* woken, to auto: the new mode's entry at the deadline */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 300, 700), 0);
        expect_state(t, PM_STATE_WOKEN, w + 700 * USEC_PER_MSEC);
        ck_assert_int_eq(t_fire(t), 0);
        expect_log(t, "enter:p");
        /* armed: delays do not matter */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 9, 9), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_log(t, "");
        /* idle, to kernel: closed, and the timer goes */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 9, 9), 0);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 60000, 9), 0);
        expect_state(t, PM_STATE_IDLE, t->now + 60000 * USEC_PER_MSEC);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 60000, 9), 0);
        expect_state(t, PM_STATE_KERNEL, USEC_INFINITY);
        expect_log(t, "close open close");
}
END_TEST

/* ---- d3cold ----------------------------------------------------------------------------- */

START_TEST(test_d3cold) {
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = policy(POLICY_MODE_WAKEUP, 0, 0);

        /* null leaves it alone */
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        expect_log(t, "open enter:w");

        /* armed: the write would resume the device, so exit, write, enter: no wake counted */
        p.d3cold = POLICY_D3COLD_DENY;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        expect_log(t, "exit enter:w");
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_uint_eq(t_counters(t).wakes, 0);
        ck_assert_int_eq(pm_device_handle_wake(t->pm), 0);
        ck_assert_uint_eq(t_counters(t).wakes, 0);
        expect_states(t, "idle armed");

        /* unchanged: nothing issued, nothing written */
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_log(t, "");

        p.d3cold = POLICY_D3COLD_ALLOW;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        expect_log(t, "exit enter:w");

        /* back to null: what was there before (1), here with nothing to write */
        p.d3cold = POLICY_D3COLD_LEAVE;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        expect_log(t, "");

        p.d3cold = POLICY_D3COLD_DENY;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        p.d3cold = POLICY_D3COLD_LEAVE;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        expect_log(t, "exit enter:w exit enter:w");

        /* kernel mode too: d3cold_allowed matters to the kernel's own idle PM */
        p.mode = POLICY_MODE_KERNEL;
        p.d3cold = POLICY_D3COLD_DENY;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        expect_log(t, "close");
        ck_assert_uint_eq(t_counters(t).wakes, 0);

        /* free restores */
        t->pm = pm_device_free(t->pm);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
}
END_TEST

START_TEST(test_d3cold_missing) {
        _cleanup_(t_freep) T *t = t_new_full(false);
        PolicyValues p = policy(POLICY_MODE_AUTO, 0, 0);

        /* a platform device has no d3cold_allowed: silently nothing */
        p.d3cold = POLICY_D3COLD_DENY;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_str_eq(pm_device_last_error(t->pm), "");
        p.d3cold = POLICY_D3COLD_ALLOW;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_log(t, "open enter:p");
        ck_assert_int_eq(faccessat(t->tmp->fd, "d3cold_allowed", F_OK, 0), -1);
}
END_TEST

/* ---- busy, release, claim, request ------------------------------------------------------ */

START_TEST(test_busy_claim) {
        _cleanup_(t_freep) T *t = t_new();

        t->dev.open_error = EBUSY;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 100, 100), -EBUSY);
        expect_state(t, PM_STATE_BUSY, USEC_INFINITY);
        expect_states(t, "busy");
        expect_log(t, "open");
        ck_assert_uint_eq(t->deadline_calls, 0);      /* no timer: an idle daemon sleeps */
        ck_assert_uint_eq(t->fds_calls, 0);

        /* a reload with the same mode waits for Claim; Wake has nothing to act on */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 100, 200), 0);
        expect_log(t, "");
        ck_assert_int_eq(pm_device_wake(t->pm), -ENOTCONN);

        /* Claim (or a udev event) tries again */
        ck_assert_int_eq(pm_device_claim(t->pm), -EBUSY);
        expect_state(t, PM_STATE_BUSY, USEC_INFINITY);
        expect_log(t, "open");
        expect_states(t, "");
        t->dev.open_error = 0;
        ck_assert_int_eq(pm_device_claim(t->pm), 0);
        expect_state(t, PM_STATE_IDLE, T0 + 100 * USEC_PER_MSEC);
        expect_states(t, "idle");
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_log(t, "open enter:w");
        ck_assert_int_eq(pm_device_claim(t->pm), 0);          /* held: nothing to do */
        expect_log(t, "");

        /* busy, then the mode goes to kernel: busy ends */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        t->dev.open_error = EBUSY;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), -EBUSY);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        expect_state(t, PM_STATE_KERNEL, USEC_INFINITY);
        expect_states(t, "armed kernel busy kernel");
}
END_TEST

START_TEST(test_release_claim) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 1000), 0);
        expect_log(t, "open enter:w");
        t_advance(t, 5 * USEC_PER_SEC);

        /* returns with the fd closed; nothing issued before the close */
        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), 0);
        ck_assert(!t->dev.open);
        expect_log(t, "close");
        expect_state(t, PM_STATE_RELEASED, USEC_INFINITY);
        expect_states(t, "idle armed released");
        ck_assert(!pm_device_held(t->pm));
        ck_assert_uint_eq(t_counters(t).low_power_usec, 5 * USEC_PER_SEC);

        /* whatever the policy says, until Claim */
        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), 0);
        ck_assert_int_eq(pm_device_wake(t->pm), -ENOTCONN);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), 0);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_ON, 0, 0), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 200, 0), 0);
        ck_assert_int_eq(pm_device_handle_timer(t->pm), 0);
        ck_assert_int_eq(pm_device_handle_request(t->pm), 0);
        expect_state(t, PM_STATE_RELEASED, USEC_INFINITY);
        expect_log(t, "");
        expect_states(t, "");

        /* Claim applies the policy of now */
        ck_assert_int_eq(pm_device_claim(t->pm), 0);
        expect_state(t, PM_STATE_IDLE, t->now + 200 * USEC_PER_MSEC);
        ck_assert_int_eq(t_fire(t), 0);
        expect_log(t, "open enter:p");
        expect_states(t, "idle armed");

        /* released with a kernel policy: Claim leaves it to the kernel */
        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), 0);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        expect_state(t, PM_STATE_RELEASED, USEC_INFINITY);
        ck_assert_int_eq(pm_device_claim(t->pm), 0);
        expect_state(t, PM_STATE_KERNEL, USEC_INFINITY);
        expect_log(t, "close");
}
END_TEST

START_TEST(test_release_busy_and_error) {
        _cleanup_(t_freep) T *t = t_new();

        /* busy: released, so that no udev event grabs it for the daemon */
        t->dev.open_error = EBUSY;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), -EBUSY);
        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), 0);
        expect_state(t, PM_STATE_RELEASED, USEC_INFINITY);
        t->dev.open_error = 0;
        ck_assert_int_eq(pm_device_claim(t->pm), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);

        /* error, not held: the retries stop */
        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), 0);
        t->dev.open_error = EACCES;
        ck_assert_int_eq(pm_device_claim(t->pm), -EACCES);
        expect_state(t, PM_STATE_ERROR, t->now + USEC_PER_SEC);
        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), 0);
        expect_state(t, PM_STATE_RELEASED, USEC_INFINITY);

        /* error, held: closed */
        t->dev.open_error = 0;
        t->dev.fail_enter = EIO;
        ck_assert_int_eq(pm_device_claim(t->pm), -EIO);
        expect_state(t, PM_STATE_ERROR, t->now + USEC_PER_SEC);
        ck_assert(t->dev.open);
        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), 0);
        ck_assert(!t->dev.open);
        expect_states(t, "busy released idle armed released error released idle error released");
        expect_log(t, "open open enter:p close open open enter:p close");
}
END_TEST

START_TEST(test_request) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 0), 0);
        expect_log(t, "open enter:w");

        /* readable with nothing to read: not a request */
        ck_assert_int_eq(pm_device_handle_request(t->pm), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);

        /* the kernel asks: closed at once, with no exit first; not re-opened */
        fake_signal(t->dev.request_fd);
        ck_assert_int_eq(pm_device_handle_request(t->pm), 0);
        ck_assert(!t->dev.open);
        expect_log(t, "close");
        expect_state(t, PM_STATE_RELEASED, USEC_INFINITY);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 0), 0);
        ck_assert_int_eq(pm_device_handle_timer(t->pm), 0);
        expect_log(t, "");
        expect_states(t, "idle armed released");

        /* a device that stayed with vfio comes back on Claim */
        ck_assert_int_eq(pm_device_claim(t->pm), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_log(t, "open enter:w");

        /* while woken too */
        t->states[0] = 0;
        PolicyValues p = policy(POLICY_MODE_WAKEUP, 0, 500);
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_int_eq(t_device_wakes(t), 0);
        fake_signal(t->dev.request_fd);
        ck_assert_int_eq(pm_device_handle_request(t->pm), 0);
        expect_state(t, PM_STATE_RELEASED, USEC_INFINITY);
        expect_states(t, "woken released");
        expect_log(t, "close");
}
END_TEST

/* ---- D-Bus Wake ------------------------------------------------------------------------- */

START_TEST(test_dbus_wake) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 1500), 0);
        expect_log(t, "open enter:w");
        t_advance(t, USEC_PER_SEC);

        /* exit (which fires the eventfd here), drained, not a wake */
        ck_assert_int_eq(pm_device_wake(t->pm), 0);
        expect_log(t, "exit");
        expect_state(t, PM_STATE_WOKEN, t->now + 1500 * USEC_PER_MSEC);
        ck_assert_int_eq(pm_device_handle_wake(t->pm), 0);
        ck_assert_uint_eq(t_counters(t).wakes, 0);
        ck_assert_uint_eq(t_counters(t).last_wake_realtime_usec, 0);
        ck_assert_uint_eq(t_counters(t).low_power_usec, USEC_PER_SEC);

        /* already in D0: nothing */
        ck_assert_int_eq(pm_device_wake(t->pm), 0);
        expect_log(t, "");
        ck_assert_int_eq(t_fire(t), 0);
        expect_log(t, "enter:w");
        expect_states(t, "idle armed woken armed");

        /* auto: the plain entry ends with the exit, and comes back after the delay */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 1500), 0);
        expect_log(t, "exit enter:p");
        ck_assert_int_eq(pm_device_wake(t->pm), 0);
        expect_state(t, PM_STATE_WOKEN, t->now + 1500 * USEC_PER_MSEC);
        ck_assert_int_eq(t_fire(t), 0);
        expect_log(t, "exit enter:p");
        ck_assert_uint_eq(t_counters(t).wakes, 0);

        /* an exit that fails: closed, error, re-opened on retry */
        t->dev.fail_exit = EIO;
        ck_assert_int_eq(pm_device_wake(t->pm), -EIO);
        ck_assert(!t->dev.open);
        expect_state(t, PM_STATE_ERROR, t->now + USEC_PER_SEC);
        ck_assert_str_eq(pm_device_last_error(t->pm), "LOW_POWER_EXIT: Input/output error");
        t->dev.fail_exit = 0;
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_log(t, "exit close open enter:p");
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

START_TEST(test_entry_error_backoff) {
        _cleanup_(t_freep) T *t = t_new();
        static const unsigned backoff_s[] = { 1, 2, 4, 8, 16, 32, 60, 60, 60 };
        usec_t start;

        /* vfio_pm_sim's fail_next_entry, every time */
        t->dev.fail_enter = EIO;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 0), -EIO);
        ck_assert_str_eq(pm_device_last_error(t->pm), "LOW_POWER_ENTRY_WITH_WAKEUP: Input/output error");
        for (size_t i = 0; i < sizeof(backoff_s) / sizeof(backoff_s[0]); i++) {
                start = t->now;
                expect_state(t, PM_STATE_ERROR, start + backoff_s[i] * USEC_PER_SEC);
                ck_assert(pm_device_held(t->pm));      /* held while the entry is retried */
                ck_assert_int_eq(t_fire(t), -EIO);
        }
        ck_assert_uint_eq(t->dev.opens, 1);
        ck_assert_uint_eq(t->dev.enters, 10);
        ck_assert_uint_eq(t_counters(t).arms, 0);
        expect_states(t, "idle error");

        /* Claim retries at once, the backoff goes on */
        ck_assert_int_eq(pm_device_claim(t->pm), -EIO);
        expect_state(t, PM_STATE_ERROR, t->now + 60 * USEC_PER_SEC);

        /* recovery, and the backoff starts over */
        t->dev.fail_enter = 0;
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_states(t, "armed");
        ck_assert_uint_eq(t_counters(t).arms, 1);
        t->dev.fail_next_enter = EIO;
        ck_assert_int_eq(t_device_wakes(t), -EIO);
        expect_state(t, PM_STATE_ERROR, t->now + USEC_PER_SEC);
        expect_states(t, "woken error");
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);

        /* a reload with the same mode keeps the error's timer; another mode acts now */
        t->dev.fail_enter = EIO;
        ck_assert_int_eq(t_device_wakes(t), -EIO);
        start = t->now;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 0), 0);
        expect_state(t, PM_STATE_ERROR, start + USEC_PER_SEC);
        t->dev.fail_enter = 0;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_int_eq(t->dev.in_force, FAKE_PLAIN);
}
END_TEST

START_TEST(test_open_error_backoff) {
        _cleanup_(t_freep) T *t = t_new();

        t->dev.open_error = EACCES;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 300, 0), -EACCES);
        expect_state(t, PM_STATE_ERROR, T0 + USEC_PER_SEC);
        ck_assert_str_eq(pm_device_last_error(t->pm), "open: Permission denied");
        ck_assert(!pm_device_held(t->pm));
        ck_assert_int_eq(pm_device_wake(t->pm), -ENOTCONN);
        ck_assert_int_eq(t_fire(t), -EACCES);
        expect_state(t, PM_STATE_ERROR, T0 + 3 * USEC_PER_SEC);
        ck_assert_int_eq(t_fire(t), -EACCES);
        expect_state(t, PM_STATE_ERROR, T0 + 7 * USEC_PER_SEC);

        /* opened at last: as after any open, arm_delay_ms first */
        t->dev.open_error = 0;
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_IDLE, T0 + 7 * USEC_PER_SEC + 300 * USEC_PER_MSEC);
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_states(t, "error idle armed");
        expect_log(t, "open open open open enter:p");
        /* the last error stays until another replaces it */
        ck_assert_str_eq(pm_device_last_error(t->pm), "open: Permission denied");

        /* error, then mode kernel: no more retries */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        t->dev.open_error = ENODEV;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), -ENODEV);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        expect_state(t, PM_STATE_KERNEL, USEC_INFINITY);
}
END_TEST

START_TEST(test_mode_change_exit_error) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), 0);
        t->dev.fail_exit = EIO;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 0), -EIO);
        ck_assert(!t->dev.open);
        expect_state(t, PM_STATE_ERROR, T0 + USEC_PER_SEC);
        t->dev.fail_exit = 0;
        ck_assert_int_eq(t_fire(t), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_log(t, "open enter:p exit close open enter:w");
        expect_states(t, "idle armed error idle armed");
}
END_TEST

/* ---- the rest --------------------------------------------------------------------------- */

START_TEST(test_free_held) {
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = policy(POLICY_MODE_WAKEUP, 0, 0);

        p.d3cold = POLICY_D3COLD_DENY;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        t->dev.log[0] = 0;
        t->pm = pm_device_free(t->pm);
        /* closed with nothing issued first (the close ends the entry), then sysfs restored */
        ck_assert_str_eq(t->dev.log, "close");
        ck_assert(!t->dev.open);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
}
END_TEST

START_TEST(test_kernel_suspended_msec) {
        _cleanup_(t_freep) T *t = t_new();
        uint64_t ms = 0;

        ck_assert_int_eq(pm_device_kernel_suspended_msec(t->pm, &ms), 0);
        ck_assert_uint_eq(ms, 1234);
        ck_assert_int_eq(unlinkat(t->tmp->fd, "power/runtime_suspended_time", 0), 0);
        ck_assert_int_eq(pm_device_kernel_suspended_msec(t->pm, &ms), -ENOENT);
        ck_assert_uint_eq(ms, 1234);
}
END_TEST

START_TEST(test_held_fds) {
        _cleanup_(t_freep) T *t = t_new();

        ck_assert_int_eq(pm_device_wake_fd(t->pm), -EBADF);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), 0);
        ck_assert_int_eq(pm_device_wake_fd(t->pm), t->dev.wake_fd);
        ck_assert_int_eq(pm_device_request_fd(t->pm), t->dev.request_fd);
        ck_assert_int_ge(pm_device_wake_fd(t->pm), 0);
        /* other ops than vfio.h's: no VfioDevice to give */
        ck_assert_ptr_null(pm_device_vfio(t->pm));
        ck_assert_uint_eq(t->fds_calls, 1);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_ON, 0, 0), 0);
        ck_assert_uint_eq(t->fds_calls, 2);
        ck_assert_int_eq(pm_device_wake_fd(t->pm), -EBADF);
}
END_TEST

/* ---- the record of the originals -------------------------------------------------------- */

#define RECORD "0000:01:00.0"

/* The device's record in the state directory; NULL: none. */
static const char *t_record(T *t) {
        static char buf[512];
        _cleanup_close_ int fd = openat(t->state->fd, RECORD, O_RDONLY|O_CLOEXEC);
        ssize_t n;

        if (fd < 0) {
                ck_assert_int_eq(errno, ENOENT);
                return NULL;
        }
        n = read(fd, buf, sizeof(buf) - 1);
        ck_assert_int_ge(n, 0);
        buf[n] = 0;
        return buf;
}

/* The names in the state directory, sorted by the kernel's order, space-separated: no
 * temporary file is ever left. */
static const char *t_state_files(T *t) {
        static char buf[512];
        _cleanup_close_ int fd = openat(t->state->fd, ".", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        struct dirent *de;
        DIR *dir;

        ck_assert_int_ge(fd, 0);
        dir = fdopendir(TAKE_FD(fd));
        ck_assert_ptr_nonnull(dir);
        buf[0] = 0;
        while ((de = readdir(dir))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                (void) snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", buf[0] ? " " : "", de->d_name);
        }
        closedir(dir);
        return buf;
}

static void t_set_attr(T *t, const char *path, const char *value) {
        ck_assert_int_eq(fixture_write_string(t->tmp->fd, path, value), 0);
}

/* A second daemon after the first died without putting anything back (SIGKILL): its device
 * shows in sysfs what the dead one left, and the state directory (/run) kept the record. */
static T *t_after_crash(T *dead) {
        T *t = t_alloc(true);
        const char *record = t_record(dead);

        t_set_attr(t, "power/control", t_attr(dead, "power/control"));
        t_set_attr(t, "d3cold_allowed", t_attr(dead, "d3cold_allowed"));
        if (record)
                ck_assert_int_eq(fixture_write_string(t->state->fd, RECORD, record), 0);
        return t_start(t);
}

static PolicyValues on_deny(void) {
        PolicyValues p = policy(POLICY_MODE_ON, 0, 0);

        p.d3cold = POLICY_D3COLD_DENY;
        return p;
}

START_TEST(test_record_crash_restart) {
        _cleanup_(t_freep) T *t = t_new(), *t2 = NULL, *t3 = NULL;
        PolicyValues p = on_deny();

        /* written before the attributes change, with the values found */
        ck_assert_ptr_null(t_record(t));
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        ck_assert_str_eq(t_record(t), "power/control=auto\nd3cold_allowed=1\n");
        ck_assert_str_eq(t_state_files(t), RECORD);

        /* killed; restarted with the same policy: sysfs shows on and 0, the record says what
         * was there before, and is kept while the daemon keeps the device so */
        t2 = t_after_crash(t);
        ck_assert_str_eq(t_attr(t2, "power/control"), "on");
        ck_assert_int_eq(pm_device_set_policy(t2->pm, &p), 0);
        expect_state(t2, PM_STATE_ON, USEC_INFINITY);
        ck_assert_str_eq(t_attr(t2, "power/control"), "on");
        ck_assert_str_eq(t_attr(t2, "d3cold_allowed"), "0");
        ck_assert_str_eq(t_record(t2), "power/control=auto\nd3cold_allowed=1\n");
        ck_assert_uint_eq(t2->record_failures, 0);

        /* killed again: the third still knows */
        t3 = t_after_crash(t2);
        ck_assert_int_eq(pm_device_set_policy(t3->pm, &p), 0);

        /* a clean stop puts back the true originals and removes the record */
        t2->pm = pm_device_free(t2->pm);
        ck_assert_str_eq(t_attr(t2, "power/control"), "auto");
        ck_assert_str_eq(t_attr(t2, "d3cold_allowed"), "1");
        ck_assert_ptr_null(t_record(t2));
        ck_assert_str_eq(t_state_files(t2), "");

        /* or the policy lets go of both (kernel, d3cold null): put back at once */
        p = policy(POLICY_MODE_KERNEL, 0, 0);
        ck_assert_int_eq(pm_device_set_policy(t3->pm, &p), 0);
        ck_assert_str_eq(t_attr(t3, "power/control"), "auto");
        ck_assert_str_eq(t_attr(t3, "d3cold_allowed"), "1");
        ck_assert_ptr_null(t_record(t3));
        ck_assert_uint_eq(t3->record_failures, 0);
}
END_TEST

START_TEST(test_record_crash_no_decision) {
        _cleanup_(t_freep) T *t = t_new(), *t2 = NULL;
        PolicyValues p = on_deny();

        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        /* the restarted daemon forgets the device before deciding anything (removed) */
        t2 = t_after_crash(t);
        t2->pm = pm_device_free(t2->pm);
        ck_assert_str_eq(t_attr(t2, "power/control"), "auto");
        ck_assert_str_eq(t_attr(t2, "d3cold_allowed"), "1");
        ck_assert_ptr_null(t_record(t2));
}
END_TEST

START_TEST(test_record_crash_held) {
        _cleanup_(t_freep) T *t = t_new(), *t2 = NULL;
        PolicyValues p = policy(POLICY_MODE_WAKEUP, 0, 0);

        /* held: only d3cold_allowed changes, and only it is recorded */
        p.d3cold = POLICY_D3COLD_DENY;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_str_eq(t_record(t), "d3cold_allowed=1\n");
        /* Release lets go of the device, not of its sysfs: the record stays */
        ck_assert_int_eq(pm_device_release(t->pm, PM_RELEASE_OWN), 0);
        ck_assert_str_eq(t_record(t), "d3cold_allowed=1\n");
        ck_assert_int_eq(pm_device_claim(t->pm), 0);

        t2 = t_after_crash(t);
        ck_assert_int_eq(pm_device_set_policy(t2->pm, &p), 0);
        expect_state(t2, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_str_eq(t_attr(t2, "d3cold_allowed"), "0");
        /* the record's value, also for the switch to mode on */
        p = on_deny();
        ck_assert_int_eq(pm_device_set_policy(t2->pm, &p), 0);
        ck_assert_str_eq(t_record(t2), "power/control=auto\nd3cold_allowed=1\n");
        t2->pm = pm_device_free(t2->pm);
        ck_assert_str_eq(t_attr(t2, "power/control"), "auto");
        ck_assert_str_eq(t_attr(t2, "d3cold_allowed"), "1");
        ck_assert_ptr_null(t_record(t2));
}
END_TEST

START_TEST(test_record_clean) {
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = on_deny();

        /* nothing changed, nothing recorded */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), 0);
        ck_assert_str_eq(t_state_files(t), "");

        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_record(t), "power/control=auto\nd3cold_allowed=1\n");
        /* one put back, the other still changed */
        p.d3cold = POLICY_D3COLD_LEAVE;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        ck_assert_str_eq(t_record(t), "power/control=auto\n");
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_ptr_null(t_record(t));

        /* a value the policy asks for anyway is no change (d3cold true on 1) */
        p = on_deny();
        p.d3cold = POLICY_D3COLD_ALLOW;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_record(t), "power/control=auto\n");
        p.d3cold = POLICY_D3COLD_DENY;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        ck_assert_str_eq(t_record(t), "power/control=auto\nd3cold_allowed=1\n");

        /* clean stop: put back, removed, nothing else left */
        t->pm = pm_device_free(t->pm);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        ck_assert_str_eq(t_state_files(t), "");
        ck_assert_uint_eq(t->record_failures, 0);
}
END_TEST

START_TEST(test_record_corrupt) {
        static const char *const garbage[] = {
                "",
                "power/control=auto",                           /* cut short */
                "power/control=maybe\n",
                "d3cold_allowed=2\n",
                "d3cold_allowed=\n",
                "power/control\n",
                "runtime=auto\n",
                "power/control=auto\npower/control=on\n",
                "power/control=auto\nd3cold_allowed=1\n\n",
                "\x7f" "ELF\x02\x01\x01",
        };

        for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]) + 2; i++) {
                _cleanup_(t_freep) T *t = t_alloc(true);
                PolicyValues p = on_deny();

                if (i < sizeof(garbage) / sizeof(garbage[0]))
                        ck_assert_int_eq(fixture_write_string(t->state->fd, RECORD, garbage[i]), 0);
                else if (i == sizeof(garbage) / sizeof(garbage[0])) {
                        char big[4096];

                        memset(big, 'x', sizeof(big));
                        ck_assert_int_eq(fixture_write(t->state->fd, RECORD, big, sizeof(big)), 0);
                } else
                        ck_assert_int_eq(fixture_write(t->state->fd, RECORD, "d3cold_allowed=1\n\0", 18), 0);
                t_start(t);
                /* ignored, said so: the values in sysfs are the originals */
                ck_assert_uint_eq(t->record_failures, 1);
                ck_assert_str_eq(t->record_failure, "read: -74");     /* -EBADMSG */
                ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
                ck_assert_str_eq(t_attr(t, "power/control"), "on");
                ck_assert_str_eq(t_record(t), "power/control=auto\nd3cold_allowed=1\n");
                t->pm = pm_device_free(t->pm);
                ck_assert_str_eq(t_attr(t, "power/control"), "auto");
                ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
                ck_assert_str_eq(t_state_files(t), "");
                ck_assert_uint_eq(t->record_failures, 1);
        }

        /* a corrupt record of a device that nothing changes goes when the device is let go */
        {
                _cleanup_(t_freep) T *t = t_alloc(true);

                ck_assert_int_eq(fixture_write_string(t->state->fd, RECORD, "junk"), 0);
                t_start(t);
                ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
                t->pm = pm_device_free(t->pm);
                ck_assert_str_eq(t_state_files(t), "");
        }
}
END_TEST

START_TEST(test_record_unwritable) {
        _cleanup_(t_freep) T *t = t_alloc(true);
        _cleanup_close_ int file_fd = -EBADF;
        PolicyValues p = on_deny();

        /* not a directory: neither read nor written, whoever we are (root ignores modes) */
        ck_assert_int_eq(fixture_write_string(t->state->fd, "file", ""), 0);
        file_fd = openat(t->state->fd, "file", O_RDONLY|O_CLOEXEC);
        ck_assert_int_ge(file_fd, 0);
        t->env.state_dir_fd = file_fd;
        t_start(t);
        ck_assert_str_eq(t->record_failure, "read: -20");       /* -ENOTDIR */
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_state(t, PM_STATE_ON, USEC_INFINITY);
        ck_assert_str_eq(pm_device_last_error(t->pm), "");
        ck_assert_str_eq(t->record_failure, "write: -20");
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        /* in memory as before */
        ck_assert_int_eq(t_policy(t, POLICY_MODE_KERNEL, 0, 0), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        t->pm = pm_device_free(t->pm);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        ck_assert_str_eq(t_state_files(t), "file");

        /* no directory at all: no records, no reports */
        {
                _cleanup_(t_freep) T *t2 = t_alloc(true);

                t2->env.state_dir_fd = -EBADF;
                t_start(t2);
                ck_assert_int_eq(pm_device_set_policy(t2->pm, &p), 0);
                ck_assert_str_eq(t_attr(t2, "power/control"), "on");
                t2->pm = pm_device_free(t2->pm);
                ck_assert_str_eq(t_attr(t2, "power/control"), "auto");
                ck_assert_uint_eq(t2->record_failures, 0);
        }

        /* a read-only directory, where modes apply */
        if (geteuid() != 0) {
                _cleanup_(t_freep) T *t3 = t_alloc(true);

                ck_assert_int_eq(fchmod(t3->state->fd, 0555), 0);
                t_start(t3);
                ck_assert_uint_eq(t3->record_failures, 0);
                ck_assert_int_eq(pm_device_set_policy(t3->pm, &p), 0);
                ck_assert_str_eq(t3->record_failure, "write: -13");     /* -EACCES */
                ck_assert_str_eq(t_attr(t3, "power/control"), "on");
                t3->pm = pm_device_free(t3->pm);
                ck_assert_str_eq(t_attr(t3, "power/control"), "auto");
                ck_assert_str_eq(t_attr(t3, "d3cold_allowed"), "1");
                ck_assert_int_eq(fchmod(t3->state->fd, 0755), 0);
                ck_assert_str_eq(t_state_files(t3), "");
        }
}
END_TEST

START_TEST(test_record_bad_names) {
        static const char *const names[] = { "..", ".", "../escape", "a/b", "" };
        _cleanup_(t_freep) T *t = t_new();
        PolicyValues p = on_deny();

        /* no file for a name that is none; in memory as before */
        t->pm = pm_device_free(t->pm);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                PmDevice *d = NULL;

                t->env.state_changed = NULL;
                ck_assert_int_eq(pm_device_new(&t->env, "pci", names[i], t->tmp->fd, &d), 0);
                ck_assert_int_eq(pm_device_set_policy(d, &p), 0);
                ck_assert_str_eq(t_attr(t, "power/control"), "on");
                d = pm_device_free(d);
                ck_assert_str_eq(t_attr(t, "power/control"), "auto");
                ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
                ck_assert_str_eq(t_state_files(t), "");
        }
        ck_assert_uint_eq(t->record_failures, 0);
}
END_TEST

/* ---- the state × event table of pm.h ---------------------------------------------------- */

/* pm.h's table as data: cell [from][event] is the set of states the event may leave a device
 * in that was in from (itself included when it may stay), in pm.h's words. */
typedef enum TableEvent {
        EV_SET_POLICY,
        EV_CLAIM,
        EV_RELEASE,
        EV_WAKE,
        EV_HANDLE_WAKE,
        EV_HANDLE_REQUEST,
        EV_HANDLE_TIMER,
        _EV_MAX,
} TableEvent;

static const char *const ev_names[_EV_MAX] = {
        "set_policy", "claim", "release", "wake", "handle_wake", "handle_request", "handle_timer",
};

/* The cells as pm.h writes them: "=" the row's own state, then one letter a state. */
static const char *const pm_table[_PM_STATE_MAX][_EV_MAX] = {
        /*                       set_policy     claim          release wake     handle_wake handle_request handle_timer */
        [PM_STATE_KERNEL]   = { "k o b i a e", "=",           "= r",  "=",     "=",       "=",   "=" },
        [PM_STATE_ON]       = { "k o b i a e", "=",           "= r",  "=",     "=",       "=",   "=" },
        [PM_STATE_BUSY]     = { "k o b i a e", "b i a e",     "r",    "=",     "=",       "=",   "=" },
        [PM_STATE_IDLE]     = { "k o i a e",   "=",           "r",    "=",     "=",       "= r", "i a e" },
        [PM_STATE_ARMED]    = { "k o a e",     "=",           "r",    "a w e", "a w f e", "= r", "=" },
        [PM_STATE_WOKEN]    = { "k o w a e",   "=",           "r",    "=",     "=",       "= r", "w a e" },
        [PM_STATE_FLAPPING] = { "k o f a e",   "=",           "r",    "=",     "=",       "= r", "f a e" },
        [PM_STATE_RELEASED] = { "=",           "k o b i a e", "=",    "=",     "=",       "=",   "=" },
        [PM_STATE_ERROR]    = { "k o b i a e", "o b i a e",   "= r",  "=",     "=",       "= r", "o b i a e" },
};

/* The states of the cell [from][event], one bit each. */
static unsigned table_cell(PmState from, TableEvent event) {
        static const char letters[_PM_STATE_MAX] = "kobiawfre";
        unsigned set = 0;

        for (const char *c = pm_table[from][event]; *c; c++) {
                const char *l;

                if (*c == ' ')
                        continue;
                if (*c == '=') {
                        set |= 1u << from;
                        continue;
                }
                l = memchr(letters, *c, sizeof(letters));
                ck_assert_msg(l, "pm_table: '%c'", *c);
                set |= 1u << (l - letters);
        }
        return set;
}

/* A device brought into one state: a fresh harness, the policy in force, the fixture broken where
 * the setup needed it. */
typedef struct TableCase {
        T *t;
        PolicyValues policy;
        bool control_broken;            /* power/control is a directory: unreadable, unwritable */
} TableCase;

static void table_break_control(TableCase *c) {
        ck_assert_int_eq(unlinkat(c->t->tmp->fd, "power/control", 0), 0);
        ck_assert_int_eq(mkdirat(c->t->tmp->fd, "power/control", 0755), 0);
        c->control_broken = true;
}

/* What a setup broke works again before the event; the event's own failures come after. */
static void table_heal(TableCase *c) {
        c->t->dev.open_error = c->t->dev.fail_enter = c->t->dev.fail_exit = 0;
        if (c->control_broken) {
                ck_assert_int_eq(unlinkat(c->t->tmp->fd, "power/control", AT_REMOVEDIR), 0);
                t_set_attr(c->t, "power/control", "auto\n");
                c->control_broken = false;
        }
}

static void table_policy(TableCase *c, PolicyMode mode, uint64_t arm_ms, uint64_t rearm_ms) {
        c->policy = policy(mode, arm_ms, rearm_ms);
        (void) pm_device_set_policy(c->t->pm, &c->policy);
}

static void table_wakes(TableCase *c) {
        ck_assert(fake_device_wakes(&c->t->dev));
        (void) pm_device_handle_wake(c->t->pm);
}

typedef struct TableSetup {
        const char *name;
        PmState state;
        void (*run)(TableCase *c);
} TableSetup;

static void setup_fresh(TableCase *c) {
}
static void setup_kernel(TableCase *c) {
        table_policy(c, POLICY_MODE_KERNEL, 0, 0);
}
static void setup_on(TableCase *c) {
        table_policy(c, POLICY_MODE_ON, 0, 0);
}
static void setup_busy(TableCase *c) {
        c->t->dev.open_error = EBUSY;
        table_policy(c, POLICY_MODE_AUTO, 0, 1000);
}
static void setup_busy_delay(TableCase *c) {
        c->t->dev.open_error = EBUSY;
        table_policy(c, POLICY_MODE_AUTO, 1000, 1000);
}
static void setup_idle(TableCase *c) {
        table_policy(c, POLICY_MODE_AUTO, 1000, 1000);
}
static void setup_armed_auto(TableCase *c) {
        table_policy(c, POLICY_MODE_AUTO, 0, 1000);
}
static void setup_armed_wakeup(TableCase *c) {
        table_policy(c, POLICY_MODE_WAKEUP, 0, 1000);
}
static void setup_armed_rearm0(TableCase *c) {
        table_policy(c, POLICY_MODE_WAKEUP, 0, 0);
}
/* one wake stored with flap_max_wakes 1: the next one flaps */
static void setup_armed_flap(TableCase *c) {
        c->policy = policy(POLICY_MODE_WAKEUP, 0, 0);
        c->policy.flap_max_wakes = 1;
        c->policy.flap_hold_s = 10;
        (void) pm_device_set_policy(c->t->pm, &c->policy);
        table_wakes(c);
}
static void setup_woken(TableCase *c) {
        setup_armed_wakeup(c);
        table_wakes(c);
}
static void setup_flapping(TableCase *c) {
        setup_armed_flap(c);
        table_wakes(c);
}
static void setup_released(TableCase *c) {
        setup_armed_auto(c);
        (void) pm_device_release(c->t->pm, PM_RELEASE_OWN);
}
static void setup_released_idle(TableCase *c) {
        setup_idle(c);
        (void) pm_device_release(c->t->pm, PM_RELEASE_OWN);
}
static void setup_released_on(TableCase *c) {
        setup_on(c);
        (void) pm_device_release(c->t->pm, PM_RELEASE_RESERVATION);
}
static void setup_released_fresh(TableCase *c) {
        (void) pm_device_release(c->t->pm, PM_RELEASE_RESERVATION);
}
static void setup_error_held(TableCase *c) {
        c->t->dev.fail_enter = EIO;
        table_policy(c, POLICY_MODE_AUTO, 0, 1000);
}
static void setup_error_open(TableCase *c) {
        c->t->dev.open_error = EIO;
        table_policy(c, POLICY_MODE_AUTO, 1000, 1000);
}
static void setup_error_on(TableCase *c) {
        table_break_control(c);
        table_policy(c, POLICY_MODE_ON, 0, 0);
}

static const TableSetup table_setups[] = {
        { "fresh", PM_STATE_KERNEL, setup_fresh },
        { "kernel", PM_STATE_KERNEL, setup_kernel },
        { "on", PM_STATE_ON, setup_on },
        { "busy", PM_STATE_BUSY, setup_busy },
        { "busy, arm delay", PM_STATE_BUSY, setup_busy_delay },
        { "idle", PM_STATE_IDLE, setup_idle },
        { "armed auto", PM_STATE_ARMED, setup_armed_auto },
        { "armed wakeup", PM_STATE_ARMED, setup_armed_wakeup },
        { "armed wakeup, rearm 0", PM_STATE_ARMED, setup_armed_rearm0 },
        { "armed wakeup, one wake from flapping", PM_STATE_ARMED, setup_armed_flap },
        { "woken", PM_STATE_WOKEN, setup_woken },
        { "flapping", PM_STATE_FLAPPING, setup_flapping },
        { "released", PM_STATE_RELEASED, setup_released },
        { "released, arm delay", PM_STATE_RELEASED, setup_released_idle },
        { "released, mode on", PM_STATE_RELEASED, setup_released_on },
        { "released before the first decision", PM_STATE_RELEASED, setup_released_fresh },
        { "error, held", PM_STATE_ERROR, setup_error_held },
        { "error, open failed", PM_STATE_ERROR, setup_error_open },
        { "error, mode on", PM_STATE_ERROR, setup_error_on },
};

/* The failures an event may meet. */
typedef enum TableFault {
        FAULT_NONE,
        FAULT_ENTER,                    /* every entry fails (EIO) */
        FAULT_EXIT,                     /* every exit fails (EIO) */
        FAULT_OPEN_BUSY,                /* another process holds the device */
        FAULT_CONTROL,                  /* power/control unusable */
} TableFault;

typedef struct TableVariant {
        TableEvent event;
        TableFault fault;
        int arg;                        /* set_policy: the policy (TABLE_POLICY_*); release: why;
                                         * handle_timer: early (1) or at the deadline (0) */
} TableVariant;

enum {
        TABLE_POLICY_SAME,              /* the setup's own */
        TABLE_POLICY_SAME_LATE,         /* the setup's own, once its deadline has passed */
        TABLE_POLICY_SAME_D3COLD,       /* the setup's own with d3cold false */
        TABLE_POLICY_KERNEL,
        TABLE_POLICY_ON,
        TABLE_POLICY_AUTO,              /* no delays */
        TABLE_POLICY_AUTO_DELAY,        /* 1 s delays */
        TABLE_POLICY_WAKEUP,
        TABLE_POLICY_WAKEUP_DELAY,
};

static const TableVariant table_variants[] = {
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_SAME },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_SAME_LATE },
        { EV_SET_POLICY, FAULT_ENTER, TABLE_POLICY_SAME_LATE },
        { EV_SET_POLICY, FAULT_EXIT, TABLE_POLICY_SAME_D3COLD },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_KERNEL },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_ON },
        { EV_SET_POLICY, FAULT_CONTROL, TABLE_POLICY_ON },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_AUTO },
        { EV_SET_POLICY, FAULT_ENTER, TABLE_POLICY_AUTO },
        { EV_SET_POLICY, FAULT_OPEN_BUSY, TABLE_POLICY_AUTO },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_AUTO_DELAY },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_WAKEUP },
        { EV_SET_POLICY, FAULT_ENTER, TABLE_POLICY_WAKEUP },
        { EV_SET_POLICY, FAULT_OPEN_BUSY, TABLE_POLICY_WAKEUP },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_WAKEUP_DELAY },
        { EV_CLAIM, FAULT_NONE, 0 },
        { EV_CLAIM, FAULT_ENTER, 0 },
        { EV_CLAIM, FAULT_OPEN_BUSY, 0 },
        { EV_CLAIM, FAULT_CONTROL, 0 },
        { EV_RELEASE, FAULT_NONE, PM_RELEASE_OWN },
        { EV_RELEASE, FAULT_NONE, PM_RELEASE_GROUP },
        { EV_RELEASE, FAULT_NONE, PM_RELEASE_RESERVATION },
        { EV_WAKE, FAULT_NONE, 0 },
        { EV_WAKE, FAULT_ENTER, 0 },
        { EV_WAKE, FAULT_EXIT, 0 },
        { EV_HANDLE_WAKE, FAULT_NONE, 0 },
        { EV_HANDLE_WAKE, FAULT_ENTER, 0 },
        { EV_HANDLE_REQUEST, FAULT_NONE, 0 },
        { EV_HANDLE_REQUEST, FAULT_NONE, 1 },   /* spurious: nothing to read */
        { EV_HANDLE_TIMER, FAULT_NONE, 0 },
        { EV_HANDLE_TIMER, FAULT_NONE, 1 },
        { EV_HANDLE_TIMER, FAULT_ENTER, 0 },
        { EV_HANDLE_TIMER, FAULT_OPEN_BUSY, 0 },
};

static PolicyValues table_variant_policy(const TableCase *c, int which) {
        PolicyValues p = c->policy;

        switch (which) {
        case TABLE_POLICY_SAME:
        case TABLE_POLICY_SAME_LATE:
                break;
        case TABLE_POLICY_SAME_D3COLD:
                p.d3cold = POLICY_D3COLD_DENY;
                break;
        case TABLE_POLICY_KERNEL:
                return policy(POLICY_MODE_KERNEL, 0, 0);
        case TABLE_POLICY_ON:
                return policy(POLICY_MODE_ON, 0, 0);
        case TABLE_POLICY_AUTO:
                return policy(POLICY_MODE_AUTO, 0, 0);
        case TABLE_POLICY_AUTO_DELAY:
                return policy(POLICY_MODE_AUTO, 1000, 1000);
        case TABLE_POLICY_WAKEUP:
                return policy(POLICY_MODE_WAKEUP, 0, 0);
        case TABLE_POLICY_WAKEUP_DELAY:
                return policy(POLICY_MODE_WAKEUP, 1000, 1000);
        }
        return p;
}

static void table_apply(TableCase *c, const TableVariant *v) {
        T *t = c->t;
        usec_t dl = pm_device_deadline(t->pm);
        PolicyValues p;

        switch (v->fault) {
        case FAULT_NONE:
                break;
        case FAULT_ENTER:
                t->dev.fail_enter = EIO;
                break;
        case FAULT_EXIT:
                t->dev.fail_exit = EIO;
                break;
        case FAULT_OPEN_BUSY:
                t->dev.open_error = EBUSY;
                break;
        case FAULT_CONTROL:
                table_break_control(c);
                break;
        }

        switch (v->event) {
        case EV_SET_POLICY:
                if (v->arg == TABLE_POLICY_SAME_LATE && dl != USEC_INFINITY)
                        t->now = dl;
                p = table_variant_policy(c, v->arg);
                (void) pm_device_set_policy(t->pm, &p);
                break;
        case EV_CLAIM:
                (void) pm_device_claim(t->pm);
                break;
        case EV_RELEASE:
                (void) pm_device_release(t->pm, v->arg);
                break;
        case EV_WAKE:
                (void) pm_device_wake(t->pm);
                break;
        case EV_HANDLE_WAKE:
                (void) fake_device_wakes(&t->dev);      /* a wake where an entry can fire */
                (void) pm_device_handle_wake(t->pm);
                break;
        case EV_HANDLE_REQUEST:
                if (t->dev.open && v->arg == 0)
                        fake_signal(t->dev.request_fd);
                (void) pm_device_handle_request(t->pm);
                break;
        case EV_HANDLE_TIMER:
                if (dl != USEC_INFINITY)
                        t->now = v->arg ? dl - 1 : dl;
                (void) pm_device_handle_timer(t->pm);
                break;
        case _EV_MAX:
                break;
        }
}

START_TEST(test_state_event_table) {
        unsigned reached[_PM_STATE_MAX][_EV_MAX] = {};

        for (size_t s = 0; s < ELEMENTSOF(table_setups); s++)
                for (size_t v = 0; v < ELEMENTSOF(table_variants); v++) {
                        const TableSetup *setup = &table_setups[s];
                        const TableVariant *var = &table_variants[v];
                        TableCase c = { .t = t_new(), .policy = *policy_defaults() };
                        PmState from, to;

                        setup->run(&c);
                        from = pm_device_state(c.t->pm);
                        ck_assert_msg(from == setup->state, "setup %s: %s", setup->name,
                                      pm_state_to_string(from));
                        table_heal(&c);
                        table_apply(&c, var);
                        to = pm_device_state(c.t->pm);
                        ck_assert_msg(table_cell(from, var->event) & (1u << to),
                                      "%s (setup %s, variant %zu) → %s: not in pm.h's table",
                                      ev_names[var->event], setup->name, v, pm_state_to_string(to));
                        reached[from][var->event] |= 1u << to;
                        table_heal(&c);
                        t_free(c.t);
                }

        /* every cell of the table happens */
        for (int s = 0; s < _PM_STATE_MAX; s++)
                for (int e = 0; e < _EV_MAX; e++)
                        for (int to = 0; to < _PM_STATE_MAX; to++)
                                ck_assert_msg(!(table_cell(s, e) & (1u << to)) || (reached[s][e] & (1u << to)),
                                              "%s → %s on %s: never reached", pm_state_to_string(s),
                                              pm_state_to_string(to), ev_names[e]);
}
END_TEST

Suite *pm_suite(void) {
        Suite *s = suite_create("pm");
        TCase *tc;

        tc = tcase_create("names");
        tcase_add_test(tc, test_state_strings);
        tcase_add_test(tc, test_state_counts_format);
        tcase_add_test(tc, test_new_invalid);
        suite_add_tcase(s, tc);

        tc = tcase_create("unheld");
        tcase_add_test(tc, test_kernel_mode);
        tcase_add_test(tc, test_on_mode);
        tcase_add_test(tc, test_on_mode_free_restores);
        tcase_add_test(tc, test_on_mode_no_attribute);
        tcase_add_test(tc, test_on_mode_error_backoff);
        suite_add_tcase(s, tc);

        tc = tcase_create("held");
        tcase_add_test(tc, test_auto_arm_delay);
        tcase_add_test(tc, test_auto_zero_delay);
        tcase_add_test(tc, test_wakeup_cycle);
        tcase_add_test(tc, test_wakeup_rearm_zero);
        tcase_add_test(tc, test_wakeup_entry_einval);
        tcase_add_test(tc, test_entry_einval_twice);
        tcase_add_test(tc, test_dbus_wake);
        tcase_add_test(tc, test_held_fds);
        tcase_add_test(tc, test_free_held);
        suite_add_tcase(s, tc);

        tc = tcase_create("flap");
        tcase_add_test(tc, test_flap_exact);
        tcase_add_test(tc, test_flap_max_one);
        tcase_add_test(tc, test_flap_hold_zero);
        tcase_add_test(tc, test_flap_policy_change);
        tcase_add_test(tc, test_wake_storm);
        tcase_add_test(tc, test_wake_storm_no_delay);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);

        tc = tcase_create("policy");
        tcase_add_test(tc, test_policy_pairs);
        tcase_add_test(tc, test_policy_delay_changes);
        tcase_add_test(tc, test_d3cold);
        tcase_add_test(tc, test_d3cold_missing);
        suite_add_tcase(s, tc);

        tc = tcase_create("handoff");
        tcase_add_test(tc, test_busy_claim);
        tcase_add_test(tc, test_release_claim);
        tcase_add_test(tc, test_release_busy_and_error);
        tcase_add_test(tc, test_request);
        suite_add_tcase(s, tc);

        tc = tcase_create("record");
        tcase_add_test(tc, test_record_crash_restart);
        tcase_add_test(tc, test_record_crash_no_decision);
        tcase_add_test(tc, test_record_crash_held);
        tcase_add_test(tc, test_record_clean);
        tcase_add_test(tc, test_record_corrupt);
        tcase_add_test(tc, test_record_unwritable);
        tcase_add_test(tc, test_record_bad_names);
        suite_add_tcase(s, tc);

        tc = tcase_create("table");
        tcase_add_test(tc, test_state_event_table);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_test(tc, test_entry_error_backoff);
        tcase_add_test(tc, test_open_error_backoff);
        tcase_add_test(tc, test_mode_change_exit_error);
        tcase_add_test(tc, test_kernel_suspended_msec);
        suite_add_tcase(s, tc);

        return s;
}
