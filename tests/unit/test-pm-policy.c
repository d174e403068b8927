#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "pm-helpers.h"
#include "suites.h"

/* The pm state machine across policy changes: every mode pair, the delays, d3cold. */

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

Suite *pm_policy_suite(void) {
        Suite *s = suite_create("pm-policy");
        TCase *tc;

        tc = tcase_create("policy");
        tcase_add_test(tc, test_policy_pairs);
        tcase_add_test(tc, test_policy_delay_changes);
        tcase_add_test(tc, test_d3cold);
        tcase_add_test(tc, test_d3cold_missing);
        suite_add_tcase(s, tc);

        return s;
}
