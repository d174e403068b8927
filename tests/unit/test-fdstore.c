#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdstore.h"
#include "fixture.h"
#include "suites.h"

/* ---- names ------------------------------------------------------------------------------ */

static void expect_name(FdStoreKind kind, const char *id, const char *expected) {
        _cleanup_free_ char *name = NULL, *back = NULL;
        FdStoreKind k;

        ck_assert_int_eq(fdstore_name(kind, id, &name), 0);
        ck_assert_str_eq(name, expected);
        ck_assert_int_eq(fdstore_name_parse(name, &k, &back), 0);
        ck_assert_int_eq(k, kind);
        if (id)
                ck_assert_str_eq(back, id);
        else
                ck_assert_ptr_null(back);
}

START_TEST(test_names) {
        char *name = NULL, *id = NULL;
        FdStoreKind k;
        char long_id[66];

        expect_name(FDSTORE_DEVICE, "0000:01:00.0", "device.0000%3a01%3a00.0");
        expect_name(FDSTORE_WAKE, "vfio-pm-sim.3", "wake.vfio-pm-sim.3");
        expect_name(FDSTORE_REQUEST, "a%b:c", "request.a%25b%3ac");
        expect_name(FDSTORE_GROUP, "12", "group.12");
        expect_name(FDSTORE_GROUP, "0", "group.0");
        expect_name(FDSTORE_GROUP_CONTAINER, "7", "container.7");
        expect_name(FDSTORE_CONTAINER, NULL, "container");
        expect_name(FDSTORE_IOMMUFD, NULL, "iommufd");
        memset(long_id, 'x', 64);
        long_id[64] = 0;
        ck_assert_int_eq(fdstore_name(FDSTORE_DEVICE, long_id, &name), 0);
        free(name);

        /* what cannot be named */
        long_id[64] = 'x';
        long_id[65] = 0;
        ck_assert_int_eq(fdstore_name(FDSTORE_DEVICE, long_id, &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_DEVICE, "", &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_DEVICE, NULL, &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_DEVICE, "a b", &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_WAKE, "a\nFDSTOREREMOVE=1", &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_REQUEST, "\xc3\xa9", &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_GROUP, "01", &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_GROUP, "1a", &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_GROUP, "1234567890", &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_GROUP_CONTAINER, NULL, &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(FDSTORE_CONTAINER, "1", &name), -EINVAL);
        ck_assert_int_eq(fdstore_name(_FDSTORE_KIND_MAX, NULL, &name), -EINVAL);

        /* what is not one of our names */
        static const char *const bad[] = {
                "", "device.", "device", "group.", "group.x", "group.012", "containers", "container.",
                "iommufd.1", "wake.a%3", "wake.a%3b", "wake.a:b", "stdin", "device.%zz",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert_msg(fdstore_name_parse(bad[i], &k, &id) == -EINVAL, "'%s' parsed", bad[i]);
}
END_TEST

/* ---- what goes to systemd --------------------------------------------------------------- */

typedef struct Notify {
        FixtureTmp *tmp;
        int fd;                         /* $NOTIFY_SOCKET, bound */
} Notify;

static void notify_start(Notify *n) {
        ck_assert_int_eq(fixture_tmp_new(NULL, &n->tmp), 0);
        ck_assert_int_eq(fixture_notify_socket(n->tmp, &n->fd), 0);
}

/* The next message: its text into buf, its fd (or -1) returned. */
static int notify_read(Notify *n, char *buf, size_t size) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control = {};
        struct iovec iov = { .iov_base = buf, .iov_len = size - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        ssize_t k;
        int fd = -1;

        k = recvmsg(n->fd, &mh, MSG_DONTWAIT|MSG_CMSG_CLOEXEC);
        ck_assert_int_ge(k, 0);
        buf[k] = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        ck_assert_uint_eq(c->cmsg_len, CMSG_LEN(sizeof(int)));
                        memcpy(&fd, CMSG_DATA(c), sizeof(int));
                }
        return fd;
}

static bool same_file(int a, int b) {
        struct stat sa, sb;

        ck_assert_int_eq(fstat(a, &sa), 0);
        ck_assert_int_eq(fstat(b, &sb), 0);
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

START_TEST(test_add_remove) {
        char buf[512];
        int p[2], fd;
        Notify n;

        /* outside systemd: nothing to do, no error */
        ck_assert_int_eq(unsetenv("NOTIFY_SOCKET"), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        ck_assert_int_eq(fdstore_add(FDSTORE_WAKE, "0000:01:00.0", p[0]), 0);
        ck_assert_int_eq(fdstore_remove(FDSTORE_WAKE, "0000:01:00.0"), 0);

        notify_start(&n);
        ck_assert_int_eq(fdstore_add(FDSTORE_WAKE, "0000:01:00.0", p[0]), 0);
        fd = notify_read(&n, buf, sizeof(buf));
        ck_assert_str_eq(buf, "FDSTORE=1\nFDNAME=wake.0000%3a01%3a00.0");
        ck_assert_int_ge(fd, 0);
        ck_assert(same_file(fd, p[0]));
        ck_assert_int_eq(close(fd), 0);
        ck_assert_int_ge(fcntl(p[0], F_GETFD), 0);             /* still the caller's */

        ck_assert_int_eq(fdstore_remove(FDSTORE_GROUP, "12"), 0);
        fd = notify_read(&n, buf, sizeof(buf));
        ck_assert_str_eq(buf, "FDSTOREREMOVE=1\nFDNAME=group.12");
        ck_assert_int_eq(fd, -1);

        /* nothing is sent for what cannot be named, or a closed fd */
        ck_assert_int_eq(fdstore_add(FDSTORE_DEVICE, "a b", p[0]), -EINVAL);
        ck_assert_int_eq(fdstore_add(FDSTORE_DEVICE, "x", -EBADF), -EBADF);
        ck_assert_int_eq(recv(n.fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
        ck_assert_int_eq(errno, EAGAIN);

        ck_assert_int_eq(close(p[0]), 0);
        ck_assert_int_eq(close(p[1]), 0);
        ck_assert_int_eq(close(n.fd), 0);
        fixture_tmp_free(n.tmp);
}
END_TEST

/* ---- what a starting daemon gets back --------------------------------------------------- */

static bool fd_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

START_TEST(test_collect) {
        _cleanup_(fdstore_freep) FdStore *s = NULL;
        char *names[] = {
                "device.0000%3a01%3a00.0", "wake.0000%3a01%3a00.0", "group.4", "container", "stdout",
                "device.vfio-pm-sim.0", "device.vfio-pm-sim.0", "",
        };
        enum { N = sizeof(names) / sizeof(names[0]) };
        int fds[N], pd[2];
        const char **left;
        char buf[512];
        Notify n;

        for (size_t i = 0; i < N; i += 2) {
                ck_assert_int_eq(pipe2(pd, O_CLOEXEC), 0);
                fds[i] = pd[0];
                fds[i + 1] = pd[1];
        }
        ck_assert_int_eq(fdstore_from_fds(fds, names, N, &s), 0);
        /* "stdout", "" and the second fd of one name are not ours: closed at once */
        ck_assert_uint_eq(fdstore_unknown(s), 3);
        ck_assert(!fd_open(fds[4]) && !fd_open(fds[6]) && !fd_open(fds[7]));
        ck_assert_uint_eq(fdstore_left(s), 5);

        ck_assert_int_eq(fdstore_devices_left(s, &left), 0);
        ck_assert_str_eq(left[0], "0000:01:00.0");
        ck_assert_str_eq(left[1], "vfio-pm-sim.0");
        ck_assert_ptr_null(left[2]);
        free(left);

        ck_assert(fdstore_has(s, FDSTORE_GROUP, "4"));
        ck_assert(!fdstore_has(s, FDSTORE_GROUP, "5"));
        ck_assert_int_eq(fdstore_take(s, FDSTORE_WAKE, "0000:01:00.0"), fds[1]);
        ck_assert_int_eq(fdstore_take(s, FDSTORE_WAKE, "0000:01:00.0"), -ENOENT);
        ck_assert_int_eq(fdstore_take(s, FDSTORE_REQUEST, "0000:01:00.0"), -ENOENT);
        ck_assert_int_eq(fdstore_take(s, FDSTORE_DEVICE, "0000:01:00.0"), fds[0]);
        ck_assert_int_eq(fdstore_take(s, FDSTORE_CONTAINER, NULL), fds[3]);
        ck_assert_uint_eq(fdstore_left(s), 2);
        ck_assert_int_eq(fdstore_devices_left(s, &left), 0);
        ck_assert_str_eq(left[0], "vfio-pm-sim.0");
        ck_assert_ptr_null(left[1]);
        free(left);

        /* what nobody took is dropped from the service manager's store and closed; what was
         * taken is the taker's */
        notify_start(&n);
        ck_assert_uint_eq(fdstore_forget_left(s), 2);
        (void) notify_read(&n, buf, sizeof(buf));
        ck_assert_str_eq(buf, "FDSTOREREMOVE=1\nFDNAME=group.4");
        (void) notify_read(&n, buf, sizeof(buf));
        ck_assert_str_eq(buf, "FDSTOREREMOVE=1\nFDNAME=device.vfio-pm-sim.0");
        ck_assert_uint_eq(fdstore_left(s), 0);
        ck_assert_int_eq(close(n.fd), 0);
        fixture_tmp_free(n.tmp);
        s = fdstore_free(s);
        ck_assert(!fd_open(fds[2]) && !fd_open(fds[5]));
        ck_assert(fd_open(fds[0]) && fd_open(fds[1]) && fd_open(fds[3]));
        ck_assert_int_eq(close(fds[0]), 0);
        ck_assert_int_eq(close(fds[1]), 0);
        ck_assert_int_eq(close(fds[3]), 0);

        /* nothing passed: an empty store */
        ck_assert_int_eq(fdstore_from_fds(NULL, NULL, 0, &s), 0);
        ck_assert_uint_eq(fdstore_left(s), 0);
        ck_assert_int_eq(unsetenv("LISTEN_FDS"), 0);
        s = fdstore_free(s);
        ck_assert_int_eq(fdstore_collect(&s), 0);
        ck_assert_uint_eq(fdstore_left(s), 0);
}
END_TEST

Suite *fdstore_suite(void) {
        Suite *s = suite_create("fdstore");
        TCase *tc = tcase_create("store");

        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_add_remove);
        tcase_add_test(tc, test_collect);
        suite_add_tcase(s, tc);
        return s;
}
