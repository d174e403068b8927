#include <errno.h>

#include "macro.h"
#include "pm-helpers.h"
#include "suites.h"

/* The pm state machine handing a device over: busy groups, Release and Claim, the kernel's
 * request (an unbind). */

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

Suite *pm_handoff_suite(void) {
        Suite *s = suite_create("pm-handoff");
        TCase *tc;

        tc = tcase_create("handoff");
        tcase_add_test(tc, test_busy_claim);
        tcase_add_test(tc, test_release_claim);
        tcase_add_test(tc, test_release_busy_and_error);
        tcase_add_test(tc, test_request);
        suite_add_tcase(s, tc);

        return s;
}
