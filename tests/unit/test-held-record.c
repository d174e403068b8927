#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "held-record.h"
#include "suites.h"

static HeldRecord *open_record(FixtureTmp *t, bool expect_reset) {
        HeldRecord *r = NULL;
        bool reset = !expect_reset;

        ck_assert_int_eq(held_record_open(t->fd, &r, &reset), 0);
        ck_assert_int_eq(reset, expect_reset);
        return r;
}

static size_t count_names(const HeldRecord *r) {
        const char **names;
        size_t n = 0;

        ck_assert_int_eq(held_record_names(r, &names), 0);
        while (names[n])
                n++;
        free(names);
        return n;
}

/* What is stored is in the file: another mapping sees it at once (no write, no sync: a daemon
 * killed right after leaves it), and the next open finds it. */
START_TEST(test_slots) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_(held_record_freep) HeldRecord *r = NULL, *other = NULL;
        HeldSlot *s, *again;
        const char **names;

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        r = open_record(t, false);
        ck_assert_ptr_null(held_record_get(r, "0000:01:00.0"));
        ck_assert_int_eq(held_record_add(r, "0000:01:00.0", &s), 0);
        ck_assert_str_eq(s->name, "0000:01:00.0");
        ck_assert_uint_eq(s->wakes, 0);
        s->entry = HELD_ENTRY_WAKEUP;
        s->wakes = 7;
        s->arms = 8;
        s->armed_since_usec = 123456;
        ck_assert_int_eq(held_record_add(r, "0000:01:00.0", &again), 0);
        ck_assert_ptr_eq(again, s);
        ck_assert_int_eq(held_record_add(r, "vfio-pm-sim.0", &s), 0);
        s->entry = HELD_ENTRY_PLAIN;

        other = open_record(t, false);
        s = held_record_get(other, "0000:01:00.0");
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(s->entry, HELD_ENTRY_WAKEUP);
        ck_assert_uint_eq(s->wakes, 7);
        held_record_get(r, "0000:01:00.0")->wakes = 9;
        ck_assert_uint_eq(s->wakes, 9);
        other = held_record_free(other);

        r = held_record_free(r);
        r = open_record(t, false);
        ck_assert_int_eq(held_record_names(r, &names), 0);
        ck_assert_str_eq(names[0], "0000:01:00.0");
        ck_assert_str_eq(names[1], "vfio-pm-sim.0");
        ck_assert_ptr_null(names[2]);
        free(names);
        ck_assert_uint_eq(held_record_get(r, "0000:01:00.0")->arms, 8);
        ck_assert_uint_eq(held_record_get(r, "vfio-pm-sim.0")->entry, HELD_ENTRY_PLAIN);

        held_record_remove(r, "0000:01:00.0");
        held_record_remove(r, "0000:01:00.0");
        ck_assert_ptr_null(held_record_get(r, "0000:01:00.0"));
        r = held_record_free(r);
        r = open_record(t, false);
        ck_assert_uint_eq(count_names(r), 1);
        ck_assert_ptr_nonnull(held_record_get(r, "vfio-pm-sim.0"));

        ck_assert_int_eq(held_record_add(r, "", &s), -EINVAL);
        ck_assert_int_eq(held_record_add(r, "0123456789012345678901234567890123456789012345678901234567890123x", &s),
                         -EINVAL);
}
END_TEST

/* Every slot taken: -ENOSPC, and a freed one is used again. */
START_TEST(test_full) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_(held_record_freep) HeldRecord *r = NULL;
        HeldSlot *s;
        char name[32];

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        r = open_record(t, false);
        for (unsigned i = 0; i < HELD_RECORD_SLOTS; i++) {
                (void) snprintf(name, sizeof(name), "vfio-pm-sim.%u", i);
                ck_assert_int_eq(held_record_add(r, name, &s), 0);
        }
        ck_assert_int_eq(held_record_add(r, "one-more", &s), -ENOSPC);
        held_record_remove(r, "vfio-pm-sim.100");
        ck_assert_int_eq(held_record_add(r, "one-more", &s), 0);
        ck_assert_uint_eq(count_names(r), HELD_RECORD_SLOTS);
}
END_TEST

/* A file that is not one is started over, and says so; a slot the format cannot have is freed. */
START_TEST(test_bad_file) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_(held_record_freep) HeldRecord *r = NULL;
        HeldSlot *s;
        struct stat st;
        int fd;

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        ck_assert_int_eq(fixture_write_string(t->fd, HELD_RECORD_FILE, "not a record\n"), 0);
        r = open_record(t, true);
        ck_assert_uint_eq(count_names(r), 0);
        ck_assert_int_eq(held_record_add(r, "a", &s), 0);
        ck_assert_int_eq(held_record_add(r, "b", &s), 0);
        s->entry = HELD_ENTRY_WAKEUP;
        r = held_record_free(r);

        /* the right size, another magic */
        ck_assert_int_eq(fstatat(t->fd, HELD_RECORD_FILE, &st, 0), 0);
        fd = openat(t->fd, HELD_RECORD_FILE, O_WRONLY|O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, "X", 1, 0), 1);
        r = open_record(t, true);
        ck_assert_uint_eq(count_names(r), 0);

        /* a second slot of one name, and a slot with an entry out of range (written from
         * outside: the mapping is the file) */
        ck_assert_int_eq(held_record_add(r, "a", &s), 0);
        s->wakes = 1;
        ck_assert_int_eq(held_record_add(r, "b", &s), 0);
        ck_assert_int_eq(held_record_add(r, "c", &s), 0);
        r = held_record_free(r);
        ck_assert_int_eq(pwrite(fd, "a", 2, HELD_RECORD_HEADER_SIZE + 1 * sizeof(HeldSlot)), 2);
        ck_assert_int_eq(pwrite(fd, &(uint32_t) { 7 }, 4,
                                HELD_RECORD_HEADER_SIZE + 2 * sizeof(HeldSlot) + offsetof(HeldSlot, entry)), 4);
        r = open_record(t, false);
        ck_assert_uint_eq(count_names(r), 1);
        ck_assert_uint_eq(held_record_get(r, "a")->wakes, 1);
        ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* Bytes past the slots in use (the header's used) are no slot: never listed, and taken zeroed
 * (tests/fuzz/corpus/fuzz-held-record/crash-beyond-used: a name there was skipped by the next
 * add, which raised used over it, and then listed without being checked or indexed). */
START_TEST(test_beyond_used) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_(held_record_freep) HeldRecord *r = NULL;
        HeldSlot *s;
        int fd;

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        r = open_record(t, false);
        ck_assert_int_eq(held_record_add(r, "a", &s), 0);
        r = held_record_free(r);
        fd = openat(t->fd, HELD_RECORD_FILE, O_WRONLY|O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, "\x7f", 1, HELD_RECORD_HEADER_SIZE + 1 * sizeof(HeldSlot)), 1);
        ck_assert_int_eq(pwrite(fd, &(uint64_t) { 9 }, 8,
                                HELD_RECORD_HEADER_SIZE + 1 * sizeof(HeldSlot) + offsetof(HeldSlot, wakes)), 8);
        ck_assert_int_eq(close(fd), 0);

        r = open_record(t, false);
        ck_assert_uint_eq(count_names(r), 1);
        ck_assert_int_eq(held_record_add(r, "b", &s), 0);
        ck_assert_ptr_eq(s, held_record_get(r, "a") + 1);
        ck_assert_uint_eq(s->wakes, 0);
        ck_assert_uint_eq(count_names(r), 2);
        held_record_remove(r, "a");
        held_record_remove(r, "b");
        ck_assert_uint_eq(count_names(r), 0);
}
END_TEST

Suite *held_record_suite(void) {
        Suite *s = suite_create("held-record");
        TCase *tc = tcase_create("record");

        tcase_add_test(tc, test_slots);
        tcase_add_test(tc, test_full);
        tcase_add_test(tc, test_bad_file);
        tcase_add_test(tc, test_beyond_used);
        suite_add_tcase(s, tc);
        return s;
}
