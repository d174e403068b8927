#include <errno.h>

#include "strv.h"
#include "suites.h"

START_TEST(test_push_free) {
        _cleanup_(strv_freep) char **l = NULL;
        char name[] = "first";
        size_t n = 0;

        ck_assert_ptr_null(strv_free(NULL));

        ck_assert_int_eq(strv_push(&l, &n, name), 0);
        name[0] = 'F';                  /* a copy was pushed */
        ck_assert_int_eq(strv_push(&l, &n, "second"), 0);
        ck_assert_int_eq(strv_push(&l, &n, ""), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(l[0], "first");
        ck_assert_str_eq(l[1], "second");
        ck_assert_str_eq(l[2], "");
        ck_assert_ptr_null(l[3]);       /* NULL-terminated after each push */
        /* freeing it all: ASan and valgrind see a leak or a double free here */
}
END_TEST

Suite *strv_suite(void) {
        Suite *s = suite_create("strv");
        TCase *tc = tcase_create("strv");

        tcase_add_test(tc, test_push_free);
        suite_add_tcase(s, tc);
        return s;
}
