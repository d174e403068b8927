#include <time.h>

#include "suites.h"
#include "time-util.h"

START_TEST(test_conversions) {
        struct timespec ts = { .tv_sec = 12, .tv_nsec = 345678999 };
        struct timeval tv;

        ck_assert_uint_eq(timespec_load(&ts), 12345678);        /* ns rounded down to µs */
        ck_assert_ptr_eq(timeval_store(&tv, 12345678), &tv);
        ck_assert_int_eq(tv.tv_sec, 12);
        ck_assert_int_eq(tv.tv_usec, 345678);
        timeval_store(&tv, 999999);
        ck_assert_int_eq(tv.tv_sec, 0);
        ck_assert_int_eq(tv.tv_usec, 999999);
}
END_TEST

START_TEST(test_now) {
        struct timespec ts;
        usec_t a, b;

        /* the same clock as clock_gettime(), in µs, and monotonic */
        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        a = now(CLOCK_MONOTONIC);
        b = now(CLOCK_MONOTONIC);
        ck_assert_uint_ge(a, timespec_load(&ts));
        ck_assert_uint_ge(b, a);
        ck_assert_uint_gt(now(CLOCK_REALTIME), (usec_t) 1600000000 * USEC_PER_SEC);   /* after 2020 */
        ck_assert_uint_gt(now(CLOCK_BOOTTIME), 0);
        ck_assert_uint_eq(now((clockid_t) 4242), 0);            /* no such clock */
}
END_TEST

Suite *time_util_suite(void) {
        Suite *s = suite_create("time-util");
        TCase *tc = tcase_create("time-util");

        tcase_add_test(tc, test_conversions);
        tcase_add_test(tc, test_now);
        suite_add_tcase(s, tc);
        return s;
}
