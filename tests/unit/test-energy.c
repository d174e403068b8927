#include <math.h>

#include "energy.h"
#include "policy.h"
#include "suites.h"

static PolicyValues watts(double active, double low) {
        PolicyValues v = *policy_defaults();

        v.power_active_w = active;
        v.power_low_w = low;
        return v;
}

/* active − low where both are declared; nothing where either is null; never below 0 */
START_TEST(test_saved_watts) {
        PolicyValues v;

        v = watts(30, 5);
        ck_assert_double_eq(energy_saved_watts(&v), 25);
        v = watts(30, NAN);
        ck_assert(isnan(energy_saved_watts(&v)));
        v = watts(NAN, 5);
        ck_assert(isnan(energy_saved_watts(&v)));
        ck_assert(isnan(energy_saved_watts(policy_defaults())));
        v = watts(5, 30);
        ck_assert_double_eq(energy_saved_watts(&v), 0);
}
END_TEST

/* The first reading is the baseline: what the kernel counted before the daemon saw the device
 * is not the daemon's. */
START_TEST(test_baseline) {
        EnergyMeter e = ENERGY_METER_INIT;
        EnergyReading r;

        energy_meter_read(&e, &r);
        ck_assert_uint_eq(r.suspended_msec, 0);
        ck_assert_double_eq(r.joules, 0);
        ck_assert(!r.estimated);

        energy_meter_update(&e, 123456);
        energy_meter_set_watts(&e, 10);
        energy_meter_read(&e, &r);
        ck_assert_uint_eq(r.suspended_msec, 0);
        ck_assert_double_eq(r.joules, 0);
        ck_assert(r.estimated);

        energy_meter_update(&e, 125456);        /* 2 s suspended at 10 W */
        energy_meter_read(&e, &r);
        ck_assert_uint_eq(r.suspended_msec, 2000);
        ck_assert_double_eq_tol(r.joules, 20, 1e-9);
        energy_meter_update(&e, 125456);        /* awake meanwhile: nothing more */
        energy_meter_read(&e, &r);
        ck_assert_double_eq_tol(r.joules, 20, 1e-9);
}
END_TEST

/* No watts: time is counted, energy is not, and the reading says it is no estimate. */
START_TEST(test_no_watts) {
        EnergyMeter e = ENERGY_METER_INIT;
        EnergyReading r;

        energy_meter_update(&e, 1000);
        energy_meter_set_watts(&e, NAN);
        energy_meter_update(&e, 61000);
        energy_meter_read(&e, &r);
        ck_assert_uint_eq(r.suspended_msec, 60000);
        ck_assert_double_eq(r.joules, 0);
        ck_assert(!r.estimated);
}
END_TEST

/* New watts apply from the reading before them on; what was saved stays saved, a policy that
 * drops the watts stops the count without taking anything back. */
START_TEST(test_watts_change) {
        EnergyMeter e = ENERGY_METER_INIT;
        EnergyReading r;

        energy_meter_update(&e, 0);
        energy_meter_set_watts(&e, 10);
        energy_meter_update(&e, 1000);          /* 10 J */
        energy_meter_set_watts(&e, 100);
        energy_meter_update(&e, 2000);          /* + 100 J */
        energy_meter_set_watts(&e, NAN);
        energy_meter_update(&e, 5000);          /* + nothing */
        energy_meter_read(&e, &r);
        ck_assert_uint_eq(r.suspended_msec, 5000);
        ck_assert_double_eq_tol(r.joules, 110, 1e-9);
        ck_assert(r.estimated);
}
END_TEST

/* A counter below the last reading started over (the device was made anew): its value is the
 * time since, added to what was counted. */
START_TEST(test_counter_restart) {
        EnergyMeter e = ENERGY_METER_INIT;
        EnergyReading r;

        energy_meter_update(&e, 50000);
        energy_meter_set_watts(&e, 1);
        energy_meter_update(&e, 53000);
        energy_meter_update(&e, 400);
        energy_meter_read(&e, &r);
        ck_assert_uint_eq(r.suspended_msec, 3400);
        ck_assert_double_eq_tol(r.joules, 3.4, 1e-9);
}
END_TEST

Suite *energy_suite(void) {
        Suite *s = suite_create("energy");
        TCase *tc = tcase_create("energy");

        tcase_add_test(tc, test_saved_watts);
        tcase_add_test(tc, test_baseline);
        tcase_add_test(tc, test_no_watts);
        tcase_add_test(tc, test_watts_change);
        tcase_add_test(tc, test_counter_restart);
        suite_add_tcase(s, tc);
        return s;
}
