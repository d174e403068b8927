#include <errno.h>
#include <string.h>

#include "log.h"
#include "suites.h"

START_TEST(test_levels) {
        ck_assert_int_eq(log_level_from_string("debug"), LOG_DEBUG);
        ck_assert_int_eq(log_level_from_string("warning"), LOG_WARNING);
        ck_assert_int_eq(log_level_from_string("err"), LOG_ERR);
        ck_assert_int_eq(log_level_from_string("3"), LOG_ERR);
        ck_assert_int_eq(log_level_from_string("8"), -EINVAL);
        ck_assert_int_eq(log_level_from_string("loud"), -EINVAL);
        ck_assert_int_eq(log_level_from_string(""), -EINVAL);
        ck_assert_int_eq(log_level_from_string(NULL), -EINVAL);
}
END_TEST

START_TEST(test_errno_and_device) {
        log_capture(true);
        log_set_max_level(LOG_INFO);

        /* returns -|error| and %m prints the error given, not errno */
        errno = EPERM;
        ck_assert_int_eq(log_error_errno(ENOENT, "Failed to open: %m"), -ENOENT);
        ck_assert_str_eq(log_captured(), "Failed to open: No such file or directory");
        ck_assert_int_eq(errno, EPERM);
        ck_assert_int_eq(log_error_errno(-EBUSY, "Busy: %m"), -EBUSY);
        ck_assert_str_eq(log_captured(), "Busy: Device or resource busy");

        ck_assert_int_eq(log_device_info("0000:00:01.0", "armed"), 0);
        ck_assert_str_eq(log_captured(), "0000:00:01.0: armed");
        log_capture(false);
}
END_TEST

START_TEST(test_max_level) {
        log_capture(true);
        log_set_max_level(LOG_INFO);
        ck_assert_int_eq(log_debug_errno(EIO, "hidden"), -EIO);
        ck_assert_str_eq(log_captured(), "");
        log_set_max_level(LOG_DEBUG);
        log_debug("shown %d", 1);
        ck_assert_str_eq(log_captured(), "shown 1");
        log_set_max_level(LOG_INFO);
        log_capture(false);
}
END_TEST

Suite *log_suite(void) {
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("log");

        tcase_add_test(tc, test_levels);
        tcase_add_test(tc, test_errno_and_device);
        tcase_add_test(tc, test_max_level);
        suite_add_tcase(s, tc);
        return s;
}
