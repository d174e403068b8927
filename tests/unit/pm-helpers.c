/* pm-helpers: what the pm suites share (pm-helpers.h). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "pm-helpers.h"
#include "sysfs.h"

/* ---- the harness ------------------------------------------------------------------------ */

usec_t t_now(void *userdata) {
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

/* env.wake_rearmed, for the tests that set it (t_alloc() leaves it NULL): "rearmed" in states */
void t_wake_rearmed(void *userdata, PmDevice *d) {
        T *t = userdata;
        size_t n = strlen(t->states);

        ck_assert_ptr_eq(d, t->pm);
        ck_assert_int_eq(pm_device_state(d), PM_STATE_ARMED);
        ck_assert_uint_eq(pm_device_deadline(d), USEC_INFINITY);
        t->rearmed_calls++;
        t->armed_total += t->now - t->armed_start;
        t->armed_start = t->now;
        if (n + 12 < sizeof(t->states))
                (void) snprintf(t->states + n, sizeof(t->states) - n, "%srearmed", n ? " " : "");
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
T *t_alloc(bool sysfs) {
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

T *t_start(T *t) {
        ck_assert_int_eq(pm_device_new(&t->env, "pci", "0000:01:00.0", t->tmp->fd, &t->pm), 0);
        ck_assert_int_eq(pm_device_state(t->pm), PM_STATE_KERNEL);
        ck_assert_str_eq(pm_device_name(t->pm), "0000:01:00.0");
        return t;
}

T *t_new_full(bool sysfs) {
        return t_start(t_alloc(sysfs));
}

T *t_new(void) {
        return t_new_full(true);
}

void t_free(T *t) {
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

PolicyValues policy(PolicyMode mode, uint64_t arm_ms, uint64_t rearm_ms) {
        PolicyValues p = *policy_defaults();

        p.mode = mode;
        p.arm_delay_ms = arm_ms;
        p.rearm_delay_ms = rearm_ms;
        return p;
}

int t_policy(T *t, PolicyMode mode, uint64_t arm_ms, uint64_t rearm_ms) {
        PolicyValues p = policy(mode, arm_ms, rearm_ms);

        return pm_device_set_policy(t->pm, &p);
}

void t_advance(T *t, usec_t usec) {
        t->now += usec;
}

/* Moves the clock to the deadline and fires the timer. */
int t_fire(T *t) {
        usec_t dl = pm_device_deadline(t->pm);

        ck_assert_uint_ne(dl, USEC_INFINITY);
        ck_assert_uint_ge(dl, t->now);
        t->now = dl;
        return pm_device_handle_timer(t->pm);
}

/* The device wakes and the loop sees its eventfd. */
int t_device_wakes(T *t) {
        ck_assert(fake_device_wakes(&t->dev));
        return pm_device_handle_wake(t->pm);
}

const char *t_attr(T *t, const char *path) {
        static char buf[64];
        _cleanup_free_ char *v = NULL;

        ck_assert_int_eq(sysfs_read_attr(t->tmp->fd, path, &v), 0);
        (void) snprintf(buf, sizeof(buf), "%s", v);
        return buf;
}

PmCounters t_counters(T *t) {
        PmCounters c;

        pm_device_counters(t->pm, &c);
        return c;
}

void t_set_attr(T *t, const char *path, const char *value) {
        ck_assert_int_eq(fixture_write_string(t->tmp->fd, path, value), 0);
}

