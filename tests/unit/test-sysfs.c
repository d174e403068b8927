#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fixture.h"
#include "suites.h"
#include "sysfs.h"

#define PCI_DEV "devices/pci0000:00/0000:00:03.0"
#define PCI_LINK "bus/pci/devices/0000:00:03.0"

/* The fixture /sys, opened read-only as the daemon opens /sys. */
static int sysfs_fixture(void) {
        int fd = -EBADF;

        ck_assert_int_eq(fixture_open("sysfs", &fd), 0);
        return fd;
}

static FixtureTmp *tmp_tree(void) {
        FixtureTmp *t = NULL;

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        return t;
}

START_TEST(test_read_attr_fixture) {
        _cleanup_close_ int root = sysfs_fixture();
        _cleanup_free_ char *vendor = NULL, *status = NULL, *state = NULL;

        ck_assert_int_eq(sysfs_read_attr(root, PCI_DEV "/vendor", &vendor), 0);
        ck_assert_str_eq(vendor, "0x8086");

        /* through sysfs's own relative links */
        ck_assert_int_eq(sysfs_read_attr(root, PCI_LINK "/power/runtime_status", &status), 0);
        ck_assert_str_eq(status, "suspended");
        ck_assert_int_eq(sysfs_read_attr(root, PCI_LINK "/driver/0000:00:03.0/power_state", &state), 0);
        ck_assert_str_eq(state, "D3hot");
}
END_TEST

START_TEST(test_read_attr_newlines) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = tmp_tree();
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        ck_assert_int_eq(fixture_write_string(t->fd, "plain", "auto"), 0);
        ck_assert_int_eq(fixture_write_string(t->fd, "two", "auto\n\n"), 0);
        ck_assert_int_eq(fixture_write_string(t->fd, "inner", "a b\nc\n"), 0);
        ck_assert_int_eq(fixture_write_string(t->fd, "newline", "\n"), 0);

        ck_assert_int_eq(sysfs_read_attr(t->fd, "plain", &a), 0);
        ck_assert_str_eq(a, "auto");
        ck_assert_int_eq(sysfs_read_attr(t->fd, "two", &b), 0);
        ck_assert_str_eq(b, "auto\n");
        ck_assert_int_eq(sysfs_read_attr(t->fd, "inner", &c), 0);
        ck_assert_str_eq(c, "a b\nc");
        ck_assert_int_eq(sysfs_read_attr(t->fd, "newline", &d), 0);
        ck_assert_str_eq(d, "");
}
END_TEST

START_TEST(test_read_attr_empty) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = tmp_tree();
        _cleanup_free_ char *s = NULL;

        ck_assert_int_eq(fixture_write_string(t->fd, "empty", ""), 0);
        ck_assert_int_eq(sysfs_read_attr(t->fd, "empty", &s), 0);
        ck_assert_str_eq(s, "");
}
END_TEST

START_TEST(test_read_attr_errors) {
        _cleanup_close_ int root = sysfs_fixture();
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = tmp_tree();
        char *s = (char *) "untouched";
        const char nul[] = { 'a', '\0', 'b', '\n' };

        ck_assert_int_eq(sysfs_read_attr(root, PCI_DEV "/no_such_attr", &s), -ENOENT);
        ck_assert_int_eq(sysfs_read_attr(root, "devices/nowhere/vendor", &s), -ENOENT);
        /* the final component is not followed: driver is a link, read it as one */
        ck_assert_int_eq(sysfs_read_attr(root, PCI_DEV "/driver", &s), -ELOOP);
        ck_assert_int_eq(sysfs_read_attr(root, PCI_DEV "/power", &s), -EISDIR);
        ck_assert_int_eq(sysfs_read_attr(root, PCI_DEV "/vendor/x", &s), -ENOTDIR);

        ck_assert_int_eq(fixture_write(t->fd, "nul", nul, sizeof(nul)), 0);
        ck_assert_int_eq(sysfs_read_attr(t->fd, "nul", &s), -EBADMSG);

        ck_assert_str_eq(s, "untouched");
}
END_TEST

START_TEST(test_read_attr_size_limit) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = tmp_tree();
        _cleanup_free_ char *big = malloc(SYSFS_ATTR_MAX + 2), *s = NULL;

        ck_assert_ptr_nonnull(big);
        memset(big, 'x', SYSFS_ATTR_MAX + 1);
        big[SYSFS_ATTR_MAX + 1] = '\0';

        ck_assert_int_eq(fixture_write(t->fd, "full", big, SYSFS_ATTR_MAX), 0);
        ck_assert_int_eq(fixture_write(t->fd, "over", big, SYSFS_ATTR_MAX + 1), 0);

        ck_assert_int_eq(sysfs_read_attr(t->fd, "full", &s), 0);
        ck_assert_uint_eq(strlen(s), SYSFS_ATTR_MAX);
        ck_assert_int_eq(sysfs_read_attr(t->fd, "over", &s), -EFBIG);
}
END_TEST

/* A kept-open attribute: one fd for every read, each read what the file holds now. */
START_TEST(test_attr_kept_open) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = tmp_tree();
        SysfsAttr a = SYSFS_ATTR_NULL, bad = SYSFS_ATTR_NULL;
        char buf[8];
        uint64_t v;
        int fd;

        ck_assert_int_eq(sysfs_attr_read(&a, t->fd, "status", buf, sizeof(buf)), -ENOENT);
        ck_assert_int_eq(a.fd, -ENOENT);
        /* missing stays missing (no look again) until closed */
        ck_assert_int_eq(fixture_write_string(t->fd, "status", "active\n"), 0);
        ck_assert_int_eq(sysfs_attr_read(&a, t->fd, "status", buf, sizeof(buf)), -ENOENT);
        sysfs_attr_close(&a);
        ck_assert_int_eq(sysfs_attr_read(&a, t->fd, "status", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "active");
        fd = a.fd;
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fixture_write_string(t->fd, "status", "off\n"), 0);
        ck_assert_int_eq(sysfs_attr_read(&a, t->fd, "status", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "off");
        ck_assert_int_eq(a.fd, fd);

        /* what does not fit is refused, not cut; NUL bytes too */
        ck_assert_int_eq(fixture_write_string(t->fd, "status", "suspended\n"), 0);
        ck_assert_int_eq(sysfs_attr_read(&a, t->fd, "status", buf, sizeof(buf)), -EFBIG);
        ck_assert_int_eq(fixture_write(t->fd, "status", "a\0b\n", 4), 0);
        ck_assert_int_eq(sysfs_attr_read(&a, t->fd, "status", buf, sizeof(buf)), -EBADMSG);
        ck_assert_int_eq(fixture_write_string(t->fd, "status", "123456\n"), 0);
        ck_assert_int_eq(sysfs_attr_read(&a, t->fd, "status", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "123456");
        ck_assert_int_eq(sysfs_attr_read_u64(&a, t->fd, "status", &v), 0);
        ck_assert_uint_eq(v, 123456);
        sysfs_attr_close(&a);
        ck_assert_int_eq(a.fd, -EBADF);

        /* a read that fails closes it (a directory: EISDIR); paths as sysfs_read_attr() wants */
        ck_assert_int_eq(mkdirat(t->fd, "dir", 0755), 0);
        ck_assert_int_eq(sysfs_attr_read(&bad, t->fd, "dir", buf, sizeof(buf)), -EISDIR);
        ck_assert_int_eq(bad.fd, -EBADF);
        ck_assert_int_eq(sysfs_attr_read(&bad, t->fd, "/status", buf, sizeof(buf)), -EINVAL);
        ck_assert_int_eq(sysfs_attr_read(&bad, t->fd, "status", buf, 1), -EINVAL);
}
END_TEST

/* In the upper half of the fd limit an attribute is read, not kept open: fds for holding devices. */
START_TEST(test_attr_not_kept_when_fds_are_few) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = tmp_tree();
        SysfsAttr a = SYSFS_ATTR_NULL;
        struct rlimit rl;
        int fds[128], n = 0;
        char buf[16];

        ck_assert_int_eq(fixture_write_string(t->fd, "status", "active\n"), 0);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        rl.rlim_cur = 128;      /* Check forks each test: this dies with it */
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        while (n < 128) {
                fds[n] = open("/dev/null", O_RDONLY|O_CLOEXEC);
                ck_assert_int_ge(fds[n], 0);
                if (fds[n++] >= 64)
                        break;
        }
        ck_assert_int_eq(sysfs_attr_read(&a, t->fd, "status", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "active");
        ck_assert_int_eq(a.fd, -EBADF);
        while (n > 0)
                ck_assert_int_eq(close(fds[--n]), 0);
        ck_assert_int_eq(sysfs_attr_read(&a, t->fd, "status", buf, sizeof(buf)), 0);
        ck_assert_int_ge(a.fd, 0);
        sysfs_attr_close(&a);
}
END_TEST

START_TEST(test_read_hex) {
        _cleanup_close_ int root = sysfs_fixture();
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = tmp_tree();
        static const struct {
                const char *text;
                int r;
                unsigned value;
        } cases[] = {
                { "0x8086\n",     0,       0x8086 },
                { "10DE\n",       0,       0x10de },
                { "0XaBcD",       0,       0xabcd },
                { "0x0\n",        0,       0 },
                { "0xffffffff\n", 0,       UINT_MAX },
                { "0x100000000",  -ERANGE, 0 },
                { "0xffffffffffffffffff", -ERANGE, 0 },
                { "",             -EINVAL, 0 },
                { "0x\n",         -EINVAL, 0 },
                { "0x0x12",       -EINVAL, 0 },
                { "0xg1",         -EINVAL, 0 },
                { " 0x1",         -EINVAL, 0 },
                { "0x1 ",         -EINVAL, 0 },
                { "-1",           -EINVAL, 0 },
                { "+1",           -EINVAL, 0 },
                { "0x1\n\n",      -EINVAL, 0 },
                { "ffffffffffffffffffffz", -EINVAL, 0 },
        };
        unsigned v;

        ck_assert_int_eq(sysfs_read_hex(root, PCI_DEV "/vendor", &v), 0);
        ck_assert_uint_eq(v, 0x8086);
        ck_assert_int_eq(sysfs_read_hex(root, PCI_LINK "/class", &v), 0);
        ck_assert_uint_eq(v, 0x020000);
        ck_assert_int_eq(sysfs_read_hex(root, PCI_DEV "/missing", &v), -ENOENT);

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                v = 0xdeadbeef;
                ck_assert_int_eq(fixture_write_string(t->fd, "attr", cases[i].text), 0);
                ck_assert_msg(sysfs_read_hex(t->fd, "attr", &v) == cases[i].r,
                              "\"%s\" should give %d", cases[i].text, cases[i].r);
                ck_assert_uint_eq(v, cases[i].r == 0 ? cases[i].value : 0xdeadbeef);
        }
}
END_TEST

START_TEST(test_read_u64) {
        _cleanup_close_ int root = sysfs_fixture();
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = tmp_tree();
        static const struct {
                const char *text;
                int r;
                uint64_t value;
        } cases[] = {
                { "0\n",                    0,       0 },
                { "123456\n",               0,       123456 },
                { "007",                    0,       7 },
                { "18446744073709551615\n", 0,       UINT64_MAX },
                { "18446744073709551616\n", -ERANGE, 0 },
                { "99999999999999999999999", -ERANGE, 0 },
                { "99999999999999999999999x", -EINVAL, 0 },
                { "",                       -EINVAL, 0 },
                { "\n",                     -EINVAL, 0 },
                { "12a",                    -EINVAL, 0 },
                { "0x10",                   -EINVAL, 0 },
                { "-1",                     -EINVAL, 0 },
                { "+1",                     -EINVAL, 0 },
                { " 1",                     -EINVAL, 0 },
                { "1 ",                     -EINVAL, 0 },
        };
        uint64_t v;

        ck_assert_int_eq(sysfs_read_u64(root, PCI_LINK "/power/runtime_suspended_time", &v), 0);
        ck_assert_uint_eq(v, 123456);

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                v = 42;
                ck_assert_int_eq(fixture_write_string(t->fd, "attr", cases[i].text), 0);
                ck_assert_msg(sysfs_read_u64(t->fd, "attr", &v) == cases[i].r,
                              "\"%s\" should give %d", cases[i].text, cases[i].r);
                ck_assert_uint_eq(v, cases[i].r == 0 ? cases[i].value : 42);
        }
}
END_TEST

START_TEST(test_write_attr) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_free_ char *control = NULL, *allowed = NULL;

        ck_assert_int_eq(fixture_tmp_new("sysfs", &t), 0);

        ck_assert_int_eq(sysfs_write_attr(t->fd, PCI_LINK "/power/control", "on"), 0);
        ck_assert_int_eq(sysfs_read_attr(t->fd, PCI_DEV "/power/control", &control), 0);
        ck_assert_str_eq(control, "on");    /* replaced, not "onto\n" over "auto\n" */

        ck_assert_int_eq(sysfs_write_attr(t->fd, PCI_DEV "/d3cold_allowed", "0\n"), 0);
        ck_assert_int_eq(sysfs_read_attr(t->fd, PCI_DEV "/d3cold_allowed", &allowed), 0);
        ck_assert_str_eq(allowed, "0");

        /* attributes are never created, directories and final links are refused */
        ck_assert_int_eq(sysfs_write_attr(t->fd, PCI_DEV "/no_such_attr", "1"), -ENOENT);
        ck_assert_int_eq(faccessat(t->fd, PCI_DEV "/no_such_attr", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        ck_assert_int_eq(sysfs_write_attr(t->fd, PCI_DEV "/power", "1"), -EISDIR);
        ck_assert_int_eq(sysfs_write_attr(t->fd, PCI_DEV "/driver", "1"), -ELOOP);
        ck_assert_int_eq(sysfs_write_attr(t->fd, PCI_DEV "/vendor", NULL), -EINVAL);
}
END_TEST

START_TEST(test_write_attr_errno) {
        _cleanup_close_ int dev = open("/dev", O_RDONLY|O_DIRECTORY|O_CLOEXEC);

        /* the error of write() itself comes back, as a store() error would */
        if (dev < 0 || faccessat(dev, "full", W_OK, 0) < 0)
                return;     /* no /dev/full in this build environment */
        ck_assert_int_eq(sysfs_write_attr(dev, "full", "1"), -ENOSPC);
}
END_TEST

START_TEST(test_read_link_name) {
        _cleanup_close_ int root = sysfs_fixture();
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = tmp_tree();
        _cleanup_free_ char *driver = NULL, *group = NULL, *sim = NULL, *slash = NULL, *plain = NULL;
        char *s = (char *) "untouched";

        ck_assert_int_eq(sysfs_read_link_name(root, PCI_DEV "/driver", &driver), 0);
        ck_assert_str_eq(driver, "vfio-pci");
        ck_assert_int_eq(sysfs_read_link_name(root, PCI_LINK "/iommu_group", &group), 0);
        ck_assert_str_eq(group, "12");
        ck_assert_int_eq(sysfs_read_link_name(root, "bus/platform/devices/vfio-pm-sim.0/driver", &sim), 0);
        ck_assert_str_eq(sim, "vfio-pm-sim");

        /* an unbound device has no driver link */
        ck_assert_int_eq(sysfs_read_link_name(root, "bus/pci/devices/0000:00:02.0/driver", &s), -ENOENT);
        ck_assert_int_eq(sysfs_read_link_name(root, PCI_DEV "/vendor", &s), -EINVAL);

        ck_assert_int_eq(symlinkat("../drivers/foo/", t->fd, "slash"), 0);
        ck_assert_int_eq(symlinkat("bar", t->fd, "plain"), 0);
        ck_assert_int_eq(symlinkat("../..", t->fd, "dots"), 0);
        ck_assert_int_eq(symlinkat("/", t->fd, "root"), 0);
        ck_assert_int_eq(sysfs_read_link_name(t->fd, "slash", &slash), 0);
        ck_assert_str_eq(slash, "foo");
        ck_assert_int_eq(sysfs_read_link_name(t->fd, "plain", &plain), 0);
        ck_assert_str_eq(plain, "bar");
        ck_assert_int_eq(sysfs_read_link_name(t->fd, "dots", &s), -EINVAL);
        ck_assert_int_eq(sysfs_read_link_name(t->fd, "root", &s), -EINVAL);

        ck_assert_str_eq(s, "untouched");
}
END_TEST

START_TEST(test_dirfd_relative) {
        _cleanup_close_ int root = sysfs_fixture(), dev = -EBADF;
        _cleanup_free_ char *vendor = NULL, *vfio = NULL;
        char *s = (char *) "untouched";
        uint64_t u;
        unsigned h;
        int fd = -EBADF;

        /* a device directory works as dirfd as well as the root */
        ck_assert_int_eq(sysfs_open_dir(root, PCI_LINK, &dev), 0);
        ck_assert_int_eq(sysfs_read_attr(dev, "vendor", &vendor), 0);
        ck_assert_str_eq(vendor, "0x8086");
        ck_assert_int_eq(sysfs_read_attr(dev, "vfio-dev/vfio0/dev", &vfio), 0);
        ck_assert_str_eq(vfio, "511:0");

        /* absolute paths would reach the real /sys: refused, whatever exists there */
        ck_assert_int_eq(sysfs_read_attr(root, "/" PCI_DEV "/vendor", &s), -EINVAL);
        ck_assert_int_eq(sysfs_read_attr(AT_FDCWD, "/proc/self/stat", &s), -EINVAL);
        ck_assert_int_eq(sysfs_read_u64(root, "/proc/uptime", &u), -EINVAL);
        ck_assert_int_eq(sysfs_read_hex(root, "/sys/bus/pci/devices/0000:00:00.0/vendor", &h), -EINVAL);
        ck_assert_int_eq(sysfs_write_attr(root, "/dev/null", "1"), -EINVAL);
        ck_assert_int_eq(sysfs_read_link_name(root, "/proc/self/exe", &s), -EINVAL);
        ck_assert_int_eq(sysfs_open_dir(root, "/", &fd), -EINVAL);

        ck_assert_int_eq(sysfs_read_attr(root, "", &s), -EINVAL);
        ck_assert_int_eq(sysfs_read_attr(root, NULL, &s), -EINVAL);
        ck_assert_int_eq(sysfs_read_attr(-EBADF, "vendor", &s), -EBADF);
        ck_assert_int_eq(sysfs_open_dir(root, PCI_DEV "/vendor", &fd), -ENOTDIR);
        ck_assert_int_eq(sysfs_open_dir(root, "devices/nowhere", &fd), -ENOENT);

        ck_assert_str_eq(s, "untouched");
        ck_assert_int_eq(fd, -EBADF);
}
END_TEST

Suite *sysfs_suite(void) {
        Suite *s = suite_create("sysfs");
        TCase *tc;

        tc = tcase_create("read");
        tcase_add_test(tc, test_read_attr_fixture);
        tcase_add_test(tc, test_read_attr_newlines);
        tcase_add_test(tc, test_read_attr_empty);
        tcase_add_test(tc, test_read_attr_errors);
        tcase_add_test(tc, test_read_attr_size_limit);
        tcase_add_test(tc, test_attr_kept_open);
        tcase_add_test(tc, test_attr_not_kept_when_fds_are_few);
        suite_add_tcase(s, tc);

        tc = tcase_create("parse");
        tcase_add_test(tc, test_read_hex);
        tcase_add_test(tc, test_read_u64);
        suite_add_tcase(s, tc);

        tc = tcase_create("write");
        tcase_add_test(tc, test_write_attr);
        tcase_add_test(tc, test_write_attr_errno);
        suite_add_tcase(s, tc);

        tc = tcase_create("link");
        tcase_add_test(tc, test_read_link_name);
        suite_add_tcase(s, tc);

        tc = tcase_create("dirfd");
        tcase_add_test(tc, test_dirfd_relative);
        suite_add_tcase(s, tc);

        return s;
}
