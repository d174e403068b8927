#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "pm-helpers.h"
#include "suites.h"

/* The crash-recovery record of the original sysfs values under a pm device: what a daemon
 * killed with SIGKILL leaves, and what the next one puts back. */

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

/* ---- adopted from an earlier daemon (the service manager kept its fds) ------------------- */

_Static_assert((int) FAKE_PLAIN == PM_ENTRY_PLAIN && (int) FAKE_WAKEUP == PM_ENTRY_WAKEUP, "the fake's entries");

/* In low power as the mode wants: armed at once, no entry of its own (it would wake the device),
 * the earlier daemon's counts go on. */
START_TEST(test_adopt_armed) {
        _cleanup_(t_freep) T *t = t_new();
        PmCounters c;

        t->dev.adopt = FAKE_WAKEUP;
        pm_device_restore_counters(t->pm, &(PmCounters) { .wakes = 3, .arms = 5, .low_power_usec = 7 * USEC_PER_SEC });
        ck_assert_int_eq(t_policy(t, POLICY_MODE_WAKEUP, 5000, 0), 0);
        expect_log(t, "open");
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_int_eq(pm_device_entry(t->pm), PM_ENTRY_WAKEUP);
        t_advance(t, 2 * USEC_PER_SEC);
        c = t_counters(t);
        ck_assert_uint_eq(c.wakes, 3);
        ck_assert_uint_eq(c.arms, 5);
        ck_assert_uint_eq(c.low_power_usec, 9 * USEC_PER_SEC);
        /* what the record keeps: the time before this arming, and when it began */
        {
                PmCounters base;
                usec_t since;

                pm_device_counters_base(t->pm, &base, &since);
                ck_assert_uint_eq(base.low_power_usec, 7 * USEC_PER_SEC);
                ck_assert_uint_eq(base.arms, 5);
                ck_assert_uint_eq(since + 2 * USEC_PER_SEC, t->now);
        }

        /* its wake is a wake like any: counted, re-armed */
        ck_assert_int_eq(t_device_wakes(t), 0);
        expect_log(t, "enter:w");
        c = t_counters(t);
        ck_assert_uint_eq(c.wakes, 4);
        ck_assert_uint_eq(c.arms, 6);
        ck_assert_uint_eq(t->dev.violations, 0);
}
END_TEST

/* In the other entry than the mode wants (the policy changed while no daemon ran): exit first,
 * never an entry over another; with no entry in force, as any open. */
START_TEST(test_adopt_other_entry) {
        _cleanup_(t_freep) T *t = t_new(), *t2 = t_new(), *t3 = t_new();

        t->dev.adopt = FAKE_WAKEUP;
        ck_assert_int_eq(t_policy(t, POLICY_MODE_AUTO, 0, 0), 0);
        expect_log(t, "open exit enter:p");
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_int_eq(pm_device_entry(t->pm), PM_ENTRY_PLAIN);

        t2->dev.adopt = FAKE_PLAIN;
        ck_assert_int_eq(t_policy(t2, POLICY_MODE_WAKEUP, 0, 0), 0);
        expect_log(t2, "open exit enter:w");
        ck_assert_int_eq(pm_device_entry(t2->pm), PM_ENTRY_WAKEUP);

        ck_assert_int_eq(t_policy(t3, POLICY_MODE_WAKEUP, 1000, 0), 0);
        expect_log(t3, "open");
        expect_state(t3, PM_STATE_IDLE, T0 + 1000 * USEC_PER_MSEC);
        ck_assert_int_eq(pm_device_entry(t3->pm), PM_ENTRY_NONE);
        ck_assert_uint_eq(t->dev.violations + t2->dev.violations + t3->dev.violations, 0);
}
END_TEST

/* Leaving for a restart: the handle closed, nothing written to sysfs, the record kept; the next
 * daemon adopts the device and a clean stop of that one puts the originals back. */
START_TEST(test_adopt_after_leave) {
        _cleanup_(t_freep) T *t = t_new(), *t2 = NULL;
        PolicyValues p = policy(POLICY_MODE_WAKEUP, 0, 0);

        p.d3cold = POLICY_D3COLD_DENY;
        ck_assert_int_eq(pm_device_set_policy(t->pm, &p), 0);
        expect_state(t, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        t->dev.log[0] = 0;
        t->pm = pm_device_leave(t->pm);
        expect_log(t, "close");
        ck_assert_str_eq(t_attr(t, "d3cold_allowed"), "0");
        ck_assert_str_eq(t_record(t), "d3cold_allowed=1\n");

        t2 = t_after_crash(t);
        t2->dev.adopt = FAKE_WAKEUP;
        ck_assert_int_eq(pm_device_set_policy(t2->pm, &p), 0);
        expect_log(t2, "open");
        expect_state(t2, PM_STATE_ARMED, USEC_INFINITY);
        ck_assert_str_eq(t_attr(t2, "d3cold_allowed"), "0");
        t2->pm = pm_device_free(t2->pm);
        ck_assert_str_eq(t_attr(t2, "d3cold_allowed"), "1");
        ck_assert_ptr_null(t_record(t2));
        ck_assert_uint_eq(t->dev.violations + t2->dev.violations, 0);
}
END_TEST

Suite *pm_record_suite(void) {
        Suite *s = suite_create("pm-record");
        TCase *tc;

        tc = tcase_create("record");
        tcase_add_test(tc, test_record_crash_restart);
        tcase_add_test(tc, test_record_crash_no_decision);
        tcase_add_test(tc, test_record_crash_held);
        tcase_add_test(tc, test_record_clean);
        tcase_add_test(tc, test_record_corrupt);
        tcase_add_test(tc, test_record_unwritable);
        tcase_add_test(tc, test_record_bad_names);
        suite_add_tcase(s, tc);

        tc = tcase_create("adopt");
        tcase_add_test(tc, test_adopt_armed);
        tcase_add_test(tc, test_adopt_other_entry);
        tcase_add_test(tc, test_adopt_after_leave);
        suite_add_tcase(s, tc);

        return s;
}
