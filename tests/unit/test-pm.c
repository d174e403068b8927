#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "pm-helpers.h"
#include "suites.h"

/* The pm state machine (pm.h): names, the unheld modes, entry and arming, D-Bus Wake, errors and
 * their backoff; over pm-helpers.h's fake device and clock. */

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

/* The same stream with the daemon's wake_rearmed: each wake is told once, as a re-arm, with no
 * state change (armed → woken → armed within the call); the counters and the time armed are what
 * the two changes would have made them. */
START_TEST(test_wakeup_rearm_zero_rearmed) {
        _cleanup_(t_freep) T *t = t_alloc(true);
        unsigned calls;

        t->env.wake_rearmed = t_wake_rearmed;
        t_start(t);
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 0), 0);
        expect_states(t, "idle armed");
        calls = t->state_calls;
        for (int i = 0; i < 5; i++) {
                t_advance(t, 2 * USEC_PER_SEC);
                ck_assert_int_eq(t_device_wakes(t), 0);
                expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
                expect_states(t, "rearmed");
        }
        ck_assert_uint_eq(t->state_calls, calls);
        ck_assert_uint_eq(t->rearmed_calls, 5);
        ck_assert_uint_eq(t->deadline_calls, 0);
        expect_log(t, "open enter:w enter:w enter:w enter:w enter:w enter:w");
        ck_assert_uint_eq(t_counters(t).wakes, 5);
        ck_assert_uint_eq(t_counters(t).arms, 6);
        ck_assert_uint_eq(t_counters(t).low_power_usec, 10 * USEC_PER_SEC);
        ck_assert_uint_eq(t->armed_total, 10 * USEC_PER_SEC);
        ck_assert_uint_eq(t_counters(t).last_wake_realtime_usec, t->now + t->rt_offset);
        ck_assert_int_eq(pm_device_entry(t->pm), PM_ENTRY_WAKEUP);

        /* a re-entry that fails goes the way of every other: woken, then error, no re-arm told */
        t->dev.fail_enter = EIO;
        ck_assert_int_eq(t_device_wakes(t), -EIO);
        expect_states(t, "woken error");
        expect_state(t, PM_STATE_ERROR, t->now + USEC_PER_SEC);
        ck_assert_str_eq(pm_device_last_error(t->pm), "LOW_POWER_ENTRY_WITH_WAKEUP: Input/output error");
        ck_assert_uint_eq(t->rearmed_calls, 5);
        ck_assert_uint_eq(t_counters(t).wakes, 6);
        ck_assert_uint_eq(t_counters(t).arms, 6);
        t->dev.fail_enter = 0;
        ck_assert_int_eq(t_fire(t), 0);
        expect_states(t, "armed");
}
END_TEST

/* The kernel refuses the wake path's re-entry with EINVAL (a stale signal, the entry still in
 * force): through woken, exit, enter again, as the timer's re-arm does below. */
START_TEST(test_wakeup_rearm_zero_einval) {
        _cleanup_(t_freep) T *t = t_alloc(true);

        t->env.wake_rearmed = t_wake_rearmed;
        t_start(t);
        t->dev.stay_active = true;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 0, 0), 0);
        expect_log(t, "open enter:w");
        expect_states(t, "idle armed");
        fake_signal(t->dev.wake_fd);
        t->expected_violations = 1;     /* the one entry over another, which the kernel refused */
        ck_assert_int_eq(pm_device_handle_wake(t->pm), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        expect_log(t, "enter:w exit enter:w");
        expect_states(t, "woken armed");
        ck_assert_uint_eq(t->rearmed_calls, 0);
        ck_assert_str_eq(pm_device_last_error(t->pm), "");
        ck_assert_uint_eq(t_counters(t).arms, 2);
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
        _cleanup_(t_freep) T *t = t_new(), *bare = t_new_full(false);
        uint64_t ms = 0;

        ck_assert_int_eq(pm_device_kernel_suspended_msec(t->pm, &ms), 0);
        ck_assert_uint_eq(ms, 1234);
        /* read again through the fd kept open: what the attribute says now */
        t_set_attr(t, "power/runtime_suspended_time", "5678\n");
        ck_assert_int_eq(pm_device_kernel_suspended_msec(t->pm, &ms), 0);
        ck_assert_uint_eq(ms, 5678);
        /* a device without the attribute */
        ck_assert_int_eq(pm_device_kernel_suspended_msec(bare->pm, &ms), -ENOENT);
        ck_assert_uint_eq(ms, 5678);
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
        tcase_add_test(tc, test_wakeup_rearm_zero_rearmed);
        tcase_add_test(tc, test_wakeup_rearm_zero_einval);
        tcase_add_test(tc, test_wakeup_entry_einval);
        tcase_add_test(tc, test_entry_einval_twice);
        tcase_add_test(tc, test_dbus_wake);
        tcase_add_test(tc, test_held_fds);
        tcase_add_test(tc, test_free_held);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_test(tc, test_entry_error_backoff);
        tcase_add_test(tc, test_open_error_backoff);
        tcase_add_test(tc, test_mode_change_exit_error);
        tcase_add_test(tc, test_kernel_suspended_msec);
        suite_add_tcase(s, tc);

        return s;
}
