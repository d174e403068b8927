#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fd-util.h"
#include "suites.h"

/* Check forks each test: the limits set here die with it. */
static void set_soft_limit(rlim_t soft) {
        struct rlimit rl;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_uint_ge(rl.rlim_max, soft);
        rl.rlim_cur = soft;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

START_TEST(test_reserve_and_half) {
        set_soft_limit(256);
        ck_assert(!fd_in_reserve(-EBADF));
        ck_assert(!fd_in_reserve(0));
        ck_assert(!fd_in_reserve(256 - FD_RESERVE - 1));
        ck_assert(fd_in_reserve(256 - FD_RESERVE));
        ck_assert(fd_in_reserve(255));
        ck_assert(fd_in_lower_half(0));
        ck_assert(fd_in_lower_half(127));
        ck_assert(!fd_in_lower_half(128));
        ck_assert(!fd_in_lower_half(-EBADF));
}
END_TEST

/* Opening until the reserve: kept fds stop below it, with -EMFILE, and the reserve is there for
 * whatever needs an fd for a moment. */
START_TEST(test_keep_or_close) {
        int fds[256], n = 0, fd, r;

        set_soft_limit(128);
        for (;;) {
                r = fd_keep_or_close(open("/dev/null", O_RDONLY|O_CLOEXEC));
                if (r < 0)
                        break;
                ck_assert_int_lt(r, 128 - FD_RESERVE);
                ck_assert_int_lt(n, 256);
                fds[n++] = r;
        }
        ck_assert_int_eq(r, -EMFILE);
        ck_assert_int_gt(n, 0);
        fd = open("/dev/null", O_RDONLY|O_CLOEXEC);
        ck_assert_int_eq(fd, 128 - FD_RESERVE);         /* the one just given back */
        ck_assert_int_eq(close(fd), 0);
        ck_assert_int_eq(fd_keep_or_close(-ENOENT), -ENOENT);
        while (n > 0)
                ck_assert_int_eq(close(fds[--n]), 0);
}
END_TEST

Suite *fd_util_suite(void) {
        Suite *s = suite_create("fd-util");
        TCase *tc = tcase_create("budget");

        tcase_add_test(tc, test_reserve_and_half);
        tcase_add_test(tc, test_keep_or_close);
        suite_add_tcase(s, tc);
        return s;
}
