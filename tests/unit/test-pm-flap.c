#include <errno.h>
#include <stdlib.h>

#include "macro.h"
#include "pm-helpers.h"
#include "suites.h"

/* The pm state machine under wakes: the flap guard, its exact counts, and wake storms. */

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

Suite *pm_flap_suite(void) {
        Suite *s = suite_create("pm-flap");
        TCase *tc;

        tc = tcase_create("flap");
        tcase_add_test(tc, test_flap_exact);
        tcase_add_test(tc, test_flap_max_one);
        tcase_add_test(tc, test_flap_hold_zero);
        tcase_add_test(tc, test_flap_policy_change);
        tcase_add_test(tc, test_wake_storm);
        tcase_add_test(tc, test_wake_storm_no_delay);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);

        return s;
}
