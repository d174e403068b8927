#include <string.h>

#include "suites.h"
#include "utf8.h"

#define INVALID(s) utf8_invalid_offset(s, sizeof(s) - 1)

START_TEST(test_valid) {
        ck_assert_uint_eq(INVALID(""), 0);
        ck_assert_uint_eq(INVALID("plain ascii\n"), 12);
        ck_assert_uint_eq(INVALID("\xc3\xa9t\xc3\xa9"), 5);                 /* é: 2 bytes */
        ck_assert_uint_eq(INVALID("\xe2\x82\xac"), 3);                      /* €: 3 bytes */
        ck_assert_uint_eq(INVALID("\xf0\x9f\x98\x80"), 4);                  /* U+1F600: 4 bytes */
        ck_assert_uint_eq(INVALID("\xf4\x8f\xbf\xbf"), 4);                  /* U+10FFFF, the last */
        ck_assert_uint_eq(INVALID("\xed\x9f\xbf"), 3);                      /* U+D7FF, before the surrogates */
}
END_TEST

START_TEST(test_invalid) {
        ck_assert_uint_eq(INVALID("ab\xff"), 2);                            /* never in UTF-8 */
        ck_assert_uint_eq(INVALID("a\x80"), 1);                             /* a lone continuation */
        ck_assert_uint_eq(INVALID("\xc0\xaf"), 0);                          /* overlong '/' */
        ck_assert_uint_eq(INVALID("\xc1\xbf"), 0);                          /* overlong */
        ck_assert_uint_eq(INVALID("\xe0\x80\xaf"), 0);                      /* overlong, 3 bytes */
        ck_assert_uint_eq(INVALID("\xf0\x80\x80\xaf"), 0);                  /* overlong, 4 bytes */
        ck_assert_uint_eq(INVALID("x\xed\xa0\x80"), 1);                     /* U+D800, a surrogate */
        ck_assert_uint_eq(INVALID("\xf4\x90\x80\x80"), 0);                  /* past U+10FFFF */
        ck_assert_uint_eq(INVALID("\xf5\x80\x80\x80"), 0);
        ck_assert_uint_eq(INVALID("ok\xe2\x82"), 2);                        /* cut short at the end */
        ck_assert_uint_eq(INVALID("\xe2\x28\xa1"), 0);                      /* a bad second byte */
        ck_assert_uint_eq(INVALID("\xf0\x9f\x98\x28"), 0);                  /* a bad last byte */
        ck_assert_uint_eq(INVALID("a\0b"), 1);                              /* NUL */
        /* len bounds the scan: the invalid byte past it is not seen */
        ck_assert_uint_eq(utf8_invalid_offset("ab\xff", 2), 2);
}
END_TEST

START_TEST(test_position) {
        const char *t = "{\n  \"k\": \"\xc3\xa9\xc3\xa9x\"\n}";
        unsigned line, column;

        utf8_position(t, 0, &line, &column);
        ck_assert_uint_eq(line, 1);
        ck_assert_uint_eq(column, 1);
        utf8_position(t, 1, &line, &column);                                /* the newline itself */
        ck_assert_uint_eq(line, 1);
        ck_assert_uint_eq(column, 2);
        utf8_position(t, 2, &line, &column);
        ck_assert_uint_eq(line, 2);
        ck_assert_uint_eq(column, 1);
        /* the 'x' after two é: columns count code points, not bytes */
        utf8_position(t, (size_t) (strchr(t, 'x') - t), &line, &column);
        ck_assert_uint_eq(line, 2);
        ck_assert_uint_eq(column, 11);
        utf8_position(t, strlen(t), &line, &column);                        /* the end */
        ck_assert_uint_eq(line, 3);
        ck_assert_uint_eq(column, 2);
}
END_TEST

Suite *utf8_suite(void) {
        Suite *s = suite_create("utf8");
        TCase *tc = tcase_create("utf8");

        tcase_add_test(tc, test_valid);
        tcase_add_test(tc, test_invalid);
        tcase_add_test(tc, test_position);
        suite_add_tcase(s, tc);
        return s;
}
