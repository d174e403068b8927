#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "domain-xml.h"
#include "fault-io.h"
#include "fileio.h"
#include "fixture.h"
#include "suites.h"

/* How many entries path holds, . and .. aside. */
static size_t count_entries(const char *path) {
        _cleanup_closedir_ DIR *d = opendir(path);
        struct dirent *e;
        size_t n = 0;

        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                        n++;
        return n;
}

START_TEST(test_write_file_atomic) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_free_ char *text = NULL;
        char long_name[NAME_MAX + 2];       /* one byte too long */
        struct stat st;
        mode_t old_mask;
        int sync_error = 1;

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        old_mask = umask(077);
        ck_assert_int_eq(write_file_atomic(t->fd, "a.json", "one\n", NULL), 0);
        umask(old_mask);
        ck_assert_int_eq(fstatat(t->fd, "a.json", &st, 0), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0644);                    /* whatever the umask */
        ck_assert_int_eq(read_file_at(t->fd, "a.json", 100, &text), 0);
        ck_assert_str_eq(text, "one\n");
        free(TAKE_PTR(text));

        /* replaces, and leaves no temporary file behind */
        ck_assert_int_eq(write_file_atomic(t->fd, "a.json", "two", &sync_error), 0);
        ck_assert_int_eq(sync_error, 0);
        ck_assert_int_eq(read_file_at(t->fd, "a.json", 100, &text), 0);
        ck_assert_str_eq(text, "two");
        free(TAKE_PTR(text));
        ck_assert_uint_eq(count_entries(t->path), 1);

        /* the directory's fsync fails after the rename: replaced all the same, and said so */
        fault_io_set_dir_fsync_error(EIO);
        ck_assert_int_eq(write_file_atomic(t->fd, "a.json", "three", &sync_error), 0);
        fault_io_set_dir_fsync_error(0);
        ck_assert_int_eq(sync_error, -EIO);
        ck_assert_uint_eq(fault_io_dir_fsync_failures(), 1);
        ck_assert_int_eq(read_file_at(t->fd, "a.json", 100, &text), 0);
        ck_assert_str_eq(text, "three");
        ck_assert_uint_eq(count_entries(t->path), 1);

        /* a failing rename (onto a directory) removes the temporary file */
        ck_assert_int_eq(mkdirat(t->fd, "dir", 0755), 0);
        ck_assert_int_eq(write_file_atomic(t->fd, "dir", "x", NULL), -EISDIR);
        ck_assert_uint_eq(count_entries(t->path), 2);

        memset(long_name, 'n', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        ck_assert_int_eq(write_file_atomic(t->fd, long_name, "x", NULL), -ENAMETOOLONG);
        ck_assert_uint_eq(count_entries(t->path), 2);          /* the temporary file went too */
}
END_TEST

START_TEST(test_read_full_fd) {
        _cleanup_free_ char *buf = NULL;
        char data[5000];
        int p[2];
        size_t n;

        memset(data, 'x', sizeof(data));
        data[10] = '\0';                                /* NUL bytes are read and counted */
        for (size_t max = 4095; max <= 4097; max++) {
                ck_assert_int_eq(pipe(p), 0);
                ck_assert_int_eq(write_all(p[1], data, 4096), 0);
                close(p[1]);
                /* size_hint 0: the buffer grows from 1 byte */
                int r = read_full_fd(p[0], max, 0, &buf, &n);
                close(p[0]);
                if (max < 4096) {
                        ck_assert_int_eq(r, -EFBIG);    /* one byte too many */
                        continue;
                }
                ck_assert_int_eq(r, 0);                 /* exactly max, and under it */
                ck_assert_uint_eq(n, 4096);
                ck_assert_int_eq(memcmp(buf, data, 4096), 0);
                ck_assert_int_eq(buf[4096], '\0');
                free(TAKE_PTR(buf));
        }

        /* empty */
        ck_assert_int_eq(pipe(p), 0);
        close(p[1]);
        ck_assert_int_eq(read_full_fd(p[0], 10, 100, &buf, &n), 0);
        close(p[0]);
        ck_assert_uint_eq(n, 0);
        ck_assert_str_eq(buf, "");
}
END_TEST

/* The libvirt hook's read of stdin: exactly DOMAIN_XML_SIZE_MAX is read, one byte more is
 * refused, and nothing past that byte is read. */
START_TEST(test_read_full_fd_hook_cap) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_close_ int exact = -EBADF, over = -EBADF;
        _cleanup_free_ char *data = malloc(DOMAIN_XML_SIZE_MAX + 100), *buf = NULL;
        size_t n = 0;

        ck_assert_ptr_nonnull(data);
        memset(data, 'x', DOMAIN_XML_SIZE_MAX + 100);
        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        ck_assert_int_eq(fixture_write(t->fd, "exact", data, DOMAIN_XML_SIZE_MAX), 0);
        ck_assert_int_eq(fixture_write(t->fd, "over", data, DOMAIN_XML_SIZE_MAX + 100), 0);
        exact = openat(t->fd, "exact", O_RDONLY|O_CLOEXEC);
        over = openat(t->fd, "over", O_RDONLY|O_CLOEXEC);
        ck_assert_int_ge(exact, 0);
        ck_assert_int_ge(over, 0);

        ck_assert_int_eq(read_full_fd(exact, DOMAIN_XML_SIZE_MAX, 64 * 1024, &buf, &n), 0);
        ck_assert_uint_eq(n, DOMAIN_XML_SIZE_MAX);
        ck_assert_int_eq(buf[DOMAIN_XML_SIZE_MAX - 1], 'x');
        ck_assert_int_eq(buf[DOMAIN_XML_SIZE_MAX], '\0');

        ck_assert_int_eq(read_full_fd(over, DOMAIN_XML_SIZE_MAX, 64 * 1024, &buf, &n), -EFBIG);
        ck_assert_int_eq(lseek(over, 0, SEEK_CUR), DOMAIN_XML_SIZE_MAX + 1);
        ck_assert_uint_eq(n, DOMAIN_XML_SIZE_MAX);                              /* untouched on error */
}
END_TEST

START_TEST(test_read_file_at) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_free_ char *text = NULL;

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        ck_assert_int_eq(fixture_write_string(t->fd, "f", "12345"), 0);
        ck_assert_int_eq(fixture_write(t->fd, "nul", "a\0b", 3), 0);
        ck_assert_int_eq(symlinkat("f", t->fd, "link"), 0);
        ck_assert_int_eq(mkdirat(t->fd, "dir", 0755), 0);

        ck_assert_int_eq(read_file_at(t->fd, "f", 5, &text), 0);
        ck_assert_str_eq(text, "12345");
        ck_assert_int_eq(read_file_at(t->fd, "f", 4, &text), -EFBIG);
        ck_assert_int_eq(read_file_at(t->fd, "nul", 10, &text), -EBADMSG);
        ck_assert_int_eq(read_file_at(t->fd, "link", 10, &text), -ELOOP);      /* not followed */
        ck_assert_int_eq(read_file_at(t->fd, "dir", 10, &text), -EBADMSG);
        ck_assert_int_eq(read_file_at(t->fd, "none", 10, &text), -ENOENT);
        ck_assert_str_eq(text, "12345");                                        /* untouched on error */
}
END_TEST

START_TEST(test_open_dir_at) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_close_ int fd = -EBADF, fd2 = -EBADF, fd3 = -EBADF;
        struct stat st, root;

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        ck_assert_int_eq(open_dir_at(t->fd, "/run/vfiopmd/released", false, &fd), -ENOENT);
        ck_assert_int_eq(open_dir_at(t->fd, "/run/vfiopmd/released", true, &fd), 0);
        ck_assert_int_eq(fstatat(t->fd, "run/vfiopmd", &st, 0), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0755);
        ck_assert_int_eq(fixture_write_string(fd, "x", "in it"), 0);
        ck_assert_int_eq(fstatat(t->fd, "run/vfiopmd/released/x", &st, 0), 0);

        /* there already: opened, with or without create */
        ck_assert_int_eq(open_dir_at(t->fd, "run/vfiopmd", false, &fd2), 0);
        ck_assert_int_eq(fstatat(fd2, "released/x", &st, 0), 0);

        /* "/" is root_fd's own directory */
        ck_assert_int_eq(open_dir_at(t->fd, "/", false, &fd3), 0);
        ck_assert_int_eq(fstat(fd3, &st), 0);
        ck_assert_int_eq(fstat(t->fd, &root), 0);
        ck_assert_uint_eq(st.st_ino, root.st_ino);

        /* a file in the way */
        ck_assert_int_eq(fixture_write_string(t->fd, "file", ""), 0);
        ck_assert_int_eq(open_dir_at(t->fd, "/file/sub", true, &fd3), -ENOTDIR);
}
END_TEST

Suite *fileio_suite(void) {
        Suite *s = suite_create("fileio");
        TCase *tc = tcase_create("fileio");

        tcase_add_test(tc, test_write_file_atomic);
        tcase_add_test(tc, test_read_full_fd);
        tcase_add_test(tc, test_read_full_fd_hook_cap);
        tcase_add_test(tc, test_read_file_at);
        tcase_add_test(tc, test_open_dir_at);
        suite_add_tcase(s, tc);
        return s;
}
