#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "fixture.h"
#include "power-sysfs.h"
#include "suites.h"
#include "sysfs.h"

/* power-sysfs on its own: a scratch device directory and a scratch record directory, no pm. The
 * same paths through pm's state machine are in test-pm.c ("record", "policy"). */

#define NAME "0000:01:00.0"

typedef struct T {
        FixtureTmp *dev;                /* the device's sysfs directory */
        FixtureTmp *records;
        PowerSysfs power;
        unsigned failures;
        char failure[64];               /* the last record_failed: "what: -errno" */
} T;

static void t_record_failed(void *userdata, const char *what, int error) {
        T *t = userdata;

        ck_assert_int_lt(error, 0);
        t->failures++;
        (void) snprintf(t->failure, sizeof(t->failure), "%s: %d", what, error);
}

/* control, d3cold: the attributes' contents, NULL for none. The PowerSysfs is not set up yet. */
static T *t_new(const char *control, const char *d3cold) {
        T *t = calloc(1, sizeof(*t));

        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(fixture_tmp_new(NULL, &t->dev), 0);
        ck_assert_int_eq(fixture_tmp_new(NULL, &t->records), 0);
        if (control)
                ck_assert_int_eq(fixture_write_string(t->dev->fd, "power/control", control), 0);
        if (d3cold)
                ck_assert_int_eq(fixture_write_string(t->dev->fd, "d3cold_allowed", d3cold), 0);
        return t;
}

static void t_init(T *t) {
        power_sysfs_init(&t->power, t->dev->fd, t->records->fd, NAME, t_record_failed, t);
}

static void t_free(T *t) {
        power_sysfs_done(&t->power);
        ck_assert_ptr_null(t->power.saved_control);
        ck_assert_ptr_null(t->power.saved_d3cold);
        fixture_tmp_free(t->dev);
        fixture_tmp_free(t->records);
        free(t);
}

static const char *t_attr(T *t, const char *path) {
        static char buf[64];
        _cleanup_free_ char *v = NULL;

        ck_assert_int_eq(sysfs_read_attr(t->dev->fd, path, &v), 0);
        (void) snprintf(buf, sizeof(buf), "%s", v);
        return buf;
}

/* The device's record; NULL: none. */
static const char *t_record(T *t) {
        static char buf[256];
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_file_at(t->records->fd, NAME, sizeof(buf) - 1, &text);
        if (r == -ENOENT)
                return NULL;
        ck_assert_int_eq(r, 0);
        (void) snprintf(buf, sizeof(buf), "%s", text);
        return buf;
}

START_TEST(test_control) {
        T *t = t_new("auto\n", "1\n");

        t_init(t);
        ck_assert_ptr_null(t_record(t));
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        ck_assert_str_eq(t_record(t), "power/control=auto\n");
        /* twice: nothing more */
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_str_eq(t_record(t), "power/control=auto\n");

        ck_assert_int_eq(power_sysfs_control_restore(&t->power), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_ptr_null(t_record(t));
        /* nothing saved: nothing to do */
        ck_assert_int_eq(power_sysfs_control_restore(&t->power), 0);

        /* on already: kept, nothing written, nothing recorded */
        ck_assert_int_eq(fixture_write_string(t->dev->fd, "power/control", "on\n"), 0);
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_ptr_null(t_record(t));

        /* done puts back what was written */
        ck_assert_int_eq(fixture_write_string(t->dev->fd, "power/control", "auto\n"), 0);
        ck_assert_int_eq(power_sysfs_control_restore(&t->power), 0);
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        ck_assert_uint_eq(t->failures, 0);
        t_free(t);
}
END_TEST

START_TEST(test_control_done) {
        T *t = t_new("auto\n", "1\n");

        t_init(t);
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        power_sysfs_done(&t->power);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_ptr_null(t_record(t));
        /* done twice (t_free): nothing left to do */
        t_free(t);
}
END_TEST

START_TEST(test_missing) {
        T *t = t_new(NULL, NULL);

        /* a platform device: neither attribute, silently nothing */
        t_init(t);
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_int_eq(power_sysfs_d3cold_check(&t->power, POLICY_D3COLD_DENY), 0);
        ck_assert_int_eq(power_sysfs_d3cold_write(&t->power, POLICY_D3COLD_DENY), 0);
        ck_assert_int_eq(power_sysfs_control_restore(&t->power), 0);
        ck_assert_ptr_null(t_record(t));
        ck_assert_uint_eq(t->failures, 0);
        t_free(t);
}
END_TEST

START_TEST(test_d3cold) {
        T *t = t_new("auto\n", "1\n");

        t_init(t);
        /* null loads nothing, writes nothing */
        ck_assert_int_eq(power_sysfs_d3cold_check(&t->power, POLICY_D3COLD_LEAVE), 0);
        ck_assert_ptr_null(t->power.saved_d3cold);

        ck_assert_int_eq(power_sysfs_d3cold_check(&t->power, POLICY_D3COLD_DENY), 1);
        ck_assert_int_eq(power_sysfs_d3cold_write(&t->power, POLICY_D3COLD_DENY), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        ck_assert_str_eq(t_record(t), "d3cold_allowed=1\n");
        ck_assert_int_eq(power_sysfs_d3cold_check(&t->power, POLICY_D3COLD_DENY), 0);

        /* both recorded, power/control first */
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_str_eq(t_record(t), "power/control=auto\nd3cold_allowed=1\n");
        ck_assert_int_eq(power_sysfs_control_restore(&t->power), 0);
        ck_assert_str_eq(t_record(t), "d3cold_allowed=1\n");

        /* back to null: the original, then forgotten */
        ck_assert_int_eq(power_sysfs_d3cold_check(&t->power, POLICY_D3COLD_LEAVE), 1);
        ck_assert_int_eq(power_sysfs_d3cold_write(&t->power, POLICY_D3COLD_LEAVE), 0);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        ck_assert_ptr_null(t_record(t));
        ck_assert_ptr_null(t->power.saved_d3cold);

        /* what the policy asks for anyway is no change, and no record */
        ck_assert_int_eq(power_sysfs_d3cold_check(&t->power, POLICY_D3COLD_ALLOW), 0);
        ck_assert_int_eq(power_sysfs_d3cold_write(&t->power, POLICY_D3COLD_ALLOW), 0);
        ck_assert_ptr_null(t_record(t));
        ck_assert_str_eq(t->power.saved_d3cold, "1");

        /* not a 0/1 value: -EBADMSG, nothing kept */
        ck_assert_int_eq(fixture_write_string(t->dev->fd, "d3cold_allowed", "10\n"), 0);
        ck_assert_int_eq(power_sysfs_d3cold_write(&t->power, POLICY_D3COLD_LEAVE), 0);
        ck_assert_ptr_null(t->power.saved_d3cold);
        ck_assert_int_eq(power_sysfs_d3cold_check(&t->power, POLICY_D3COLD_DENY), -EBADMSG);
        ck_assert_ptr_null(t->power.saved_d3cold);
        ck_assert_uint_eq(t->failures, 0);
        t_free(t);
}
END_TEST

/* A record left by a daemon that died: its values are the originals, put back by done. */
START_TEST(test_adopt) {
        T *t = t_new("on\n", "0\n");

        ck_assert_int_eq(fixture_write_string(t->records->fd, NAME, "power/control=auto\nd3cold_allowed=1\n"), 0);
        t_init(t);
        ck_assert_uint_eq(t->failures, 0);
        ck_assert_str_eq(t->power.saved_control, "auto");
        ck_assert(t->power.control_written);
        ck_assert_str_eq(t->power.saved_d3cold, "1");
        ck_assert_str_eq(t->power.d3cold_now, "0");
        /* the policy wants d3cold false still: no write, the record stays */
        ck_assert_int_eq(power_sysfs_d3cold_check(&t->power, POLICY_D3COLD_DENY), 0);
        ck_assert_int_eq(power_sysfs_d3cold_write(&t->power, POLICY_D3COLD_DENY), 0);
        ck_assert_str_eq(t_record(t), "power/control=auto\nd3cold_allowed=1\n");
        /* mode on no more */
        ck_assert_int_eq(power_sysfs_control_restore(&t->power), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_str_eq(t_record(t), "d3cold_allowed=1\n");

        power_sysfs_done(&t->power);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        ck_assert_ptr_null(t_record(t));
        t_free(t);
}
END_TEST

START_TEST(test_corrupt) {
        T *t = t_new("auto\n", "1\n");

        ck_assert_int_eq(fixture_write_string(t->records->fd, NAME, "power/control=off\n"), 0);
        t_init(t);
        ck_assert_uint_eq(t->failures, 1);
        ck_assert_str_eq(t->failure, "read: -74");     /* -EBADMSG */
        ck_assert_ptr_null(t->power.saved_control);
        /* still there until the first sync, and gone with it */
        ck_assert_str_eq(t_record(t), "power/control=off\n");
        power_sysfs_done(&t->power);
        ck_assert_ptr_null(t_record(t));
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_uint_eq(t->failures, 1);
        t_free(t);
}
END_TEST

START_TEST(test_no_record_dir) {
        T *t = t_new("auto\n", "1\n");

        power_sysfs_init(&t->power, t->dev->fd, -EBADF, NAME, t_record_failed, t);
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_int_eq(power_sysfs_d3cold_check(&t->power, POLICY_D3COLD_DENY), 1);
        ck_assert_int_eq(power_sysfs_d3cold_write(&t->power, POLICY_D3COLD_DENY), 0);
        ck_assert_ptr_null(t_record(t));
        power_sysfs_done(&t->power);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "1");
        ck_assert_uint_eq(t->failures, 0);
        t_free(t);
}
END_TEST

START_TEST(test_record_unwritable) {
        T *t = t_new("auto\n", "1\n");
        _cleanup_close_ int file_fd = -EBADF;

        /* not a directory: neither read nor written, whoever we are (root ignores modes) */
        ck_assert_int_eq(fixture_write_string(t->records->fd, "file", ""), 0);
        file_fd = openat(t->records->fd, "file", O_RDONLY|O_CLOEXEC);
        ck_assert_int_ge(file_fd, 0);
        power_sysfs_init(&t->power, t->dev->fd, file_fd, NAME, t_record_failed, t);
        ck_assert_str_eq(t->failure, "read: -20");     /* -ENOTDIR */
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_str_eq(t->failure, "write: -20");
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        /* in memory as before */
        power_sysfs_done(&t->power);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_str_eq(t->failure, "remove: -20");
        t_free(t);
}
END_TEST

START_TEST(test_record_bad_name) {
        T *t = t_new("auto\n", "1\n");

        /* a name no record may have (a dot name): no record, no report */
        power_sysfs_init(&t->power, t->dev->fd, t->records->fd, "..", t_record_failed, t);
        ck_assert_int_eq(power_sysfs_control_on(&t->power), 0);
        ck_assert_str_eq(t_attr(t, "power/control"), "on");
        power_sysfs_done(&t->power);
        ck_assert_str_eq(t_attr(t, "power/control"), "auto");
        ck_assert_uint_eq(t->failures, 0);
        t_free(t);
}
END_TEST

START_TEST(test_zeroed) {
        PowerSysfs p = {};

        /* never set up (pm_device_new() failing early): done touches nothing */
        power_sysfs_done(&p);
        ck_assert_ptr_null(p.saved_control);
}
END_TEST

START_TEST(test_suspended_msec) {
        T *t = t_new(NULL, NULL);
        uint64_t ms = 0;

        ck_assert_int_eq(fixture_write_string(t->dev->fd, "power/runtime_suspended_time", "1234\n"), 0);
        t_init(t);
        ck_assert_int_eq(power_sysfs_suspended_msec(&t->power, &ms), 0);
        ck_assert_uint_eq(ms, 1234);
        /* the fd kept open reads what the attribute says now */
        ck_assert_int_eq(fixture_write_string(t->dev->fd, "power/runtime_suspended_time", "5678\n"), 0);
        ck_assert_int_eq(power_sysfs_suspended_msec(&t->power, &ms), 0);
        ck_assert_uint_eq(ms, 5678);
        t_free(t);

        /* a device without it: ENOENT, ms untouched */
        t = t_new(NULL, NULL);
        t_init(t);
        ck_assert_int_eq(power_sysfs_suspended_msec(&t->power, &ms), -ENOENT);
        ck_assert_uint_eq(ms, 5678);
        t_free(t);
}
END_TEST

Suite *power_sysfs_suite(void) {
        Suite *s = suite_create("power-sysfs");
        TCase *tc;

        tc = tcase_create("control");
        tcase_add_test(tc, test_control);
        tcase_add_test(tc, test_control_done);
        tcase_add_test(tc, test_missing);
        suite_add_tcase(s, tc);

        tc = tcase_create("d3cold");
        tcase_add_test(tc, test_d3cold);
        suite_add_tcase(s, tc);

        tc = tcase_create("record");
        tcase_add_test(tc, test_adopt);
        tcase_add_test(tc, test_corrupt);
        tcase_add_test(tc, test_no_record_dir);
        tcase_add_test(tc, test_record_unwritable);
        tcase_add_test(tc, test_record_bad_name);
        tcase_add_test(tc, test_zeroed);
        tcase_add_test(tc, test_suspended_msec);
        suite_add_tcase(s, tc);

        return s;
}
