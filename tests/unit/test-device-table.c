#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device-table.h"
#include "suites.h"

typedef struct Item {
        int *freed;                     /* counts the frees */
        char name[16];
} Item;

static void item_free(void *v) {
        Item *it = v;

        (*it->freed)++;
        free(it);
}

static Item *item(const char *name, int *freed) {
        Item *it = calloc(1, sizeof(*it));

        ck_assert_ptr_nonnull(it);
        strcpy(it->name, name);
        it->freed = freed;
        return it;
}

START_TEST(test_put_get_remove) {
        _cleanup_(device_table_freep) DeviceTable *t = NULL;
        int freed = 0;
        Item *a = item("0000:00:01.0", &freed), *b = item("0000:00:02.0", &freed), *dup;

        ck_assert_int_eq(device_table_new(item_free, &t), 0);
        ck_assert_uint_eq(device_table_size(t), 0);
        ck_assert_ptr_null(device_table_first(t));
        ck_assert_int_eq(device_table_put(t, a->name, a), 0);
        ck_assert_int_eq(device_table_put(t, b->name, b), 0);
        dup = item("0000:00:01.0", &freed);
        ck_assert_int_eq(device_table_put(t, dup->name, dup), -EEXIST);        /* by name, not pointer */
        item_free(dup);
        freed = 0;

        ck_assert_uint_eq(device_table_size(t), 2);
        ck_assert_ptr_eq(device_table_get(t, "0000:00:02.0"), b);
        ck_assert_ptr_null(device_table_get(t, "0000:00:03.0"));
        ck_assert_ptr_null(device_table_get(t, NULL));
        ck_assert_ptr_eq(device_table_first(t), a);

        ck_assert(device_table_remove(t, "0000:00:01.0"));
        ck_assert_int_eq(freed, 1);                                             /* its value freed */
        ck_assert(!device_table_remove(t, "0000:00:01.0"));
        ck_assert_int_eq(freed, 1);
        ck_assert_ptr_eq(device_table_first(t), b);
        ck_assert_uint_eq(device_table_size(t), 1);

        device_table_free(TAKE_PTR(t));
        ck_assert_int_eq(freed, 2);                                             /* the rest with the table */
}
END_TEST

START_TEST(test_iteration) {
        _cleanup_(device_table_freep) DeviceTable *t = NULL;
        const char *names[] = { "c", "a", "d", "b" };
        char seen[8] = "";
        int freed = 0;
        Item *it;

        ck_assert_int_eq(device_table_new(item_free, &t), 0);
        DEVICE_TABLE_FOREACH(it, t, i)
                ck_abort_msg("an empty table gave %s", it->name);
        for (size_t k = 0; k < 4; k++) {
                it = item(names[k], &freed);
                ck_assert_int_eq(device_table_put(t, it->name, it), 0);
        }
        DEVICE_TABLE_FOREACH(it, t, i)
                strcat(seen, it->name);
        ck_assert_str_eq(seen, "cadb");                                         /* insertion order */

        /* removing the value just given goes on with the next */
        seen[0] = '\0';
        DEVICE_TABLE_FOREACH(it, t, i) {
                strcat(seen, it->name);
                if (strcmp(it->name, "a") == 0 || strcmp(it->name, "b") == 0)
                        ck_assert(device_table_remove(t, it->name));
        }
        ck_assert_str_eq(seen, "cadb");
        ck_assert_int_eq(freed, 2);
        seen[0] = '\0';
        DEVICE_TABLE_FOREACH(it, t, i)
                strcat(seen, it->name);
        ck_assert_str_eq(seen, "cd");
}
END_TEST

START_TEST(test_many) {
        _cleanup_(device_table_freep) DeviceTable *t = NULL;
        int freed = 0;
        size_t n = 0;
        Item *it;

        /* past the initial 64 buckets: the table grows and keeps every entry and the order */
        ck_assert_int_eq(device_table_new(item_free, &t), 0);
        for (int k = 0; k < 1000; k++) {
                char name[16];

                snprintf(name, sizeof(name), "0000:%02x:%02x.%d", k / 256, (k / 8) % 32, k % 8);
                it = item(name, &freed);
                ck_assert_int_eq(device_table_put(t, it->name, it), 0);
        }
        ck_assert_uint_eq(device_table_size(t), 1000);
        ck_assert_ptr_nonnull(device_table_get(t, "0000:03:1c.7"));
        DEVICE_TABLE_FOREACH(it, t, i) {
                char name[16];

                snprintf(name, sizeof(name), "0000:%02x:%02x.%d", (int) n / 256, ((int) n / 8) % 32, (int) n % 8);
                ck_assert_str_eq(it->name, name);
                n++;
        }
        ck_assert_uint_eq(n, 1000);
}
END_TEST

Suite *device_table_suite(void) {
        Suite *s = suite_create("device-table");
        TCase *tc = tcase_create("device-table");

        tcase_add_test(tc, test_put_get_remove);
        tcase_add_test(tc, test_iteration);
        tcase_add_test(tc, test_many);
        suite_add_tcase(s, tc);
        return s;
}
