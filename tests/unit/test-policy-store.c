#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fault-io.h"
#include "fileio.h"
#include "fixture.h"
#include "json-util.h"
#include "policy-file.h"
#include "policy-store.h"
#include "strv.h"
#include "suites.h"

static char *dirs3[] = { (char *) "/usr/lib/vfiopmd/policy.d", (char *) "/etc/vfiopmd/policy.d",
                         (char *) "/run/vfiopmd/policy.d", NULL };

START_TEST(test_target) {
        _cleanup_(policy_store_target_done) PolicyStoreTarget t = {};
        _cleanup_free_ char *error = NULL;
        static char *one[] = { (char *) "/run/p", NULL };
        char long_name[300];

        ck_assert_int_eq(policy_store_target(dirs3, "0000:00:01.0", true, &t, &error), 0);
        ck_assert_str_eq(t.dir, "/run/vfiopmd/policy.d");                       /* the last: runtime */
        ck_assert_str_eq(t.filename, "90-dbus-0000:00:01.0.json");
        ck_assert_str_eq(t.path, "/run/vfiopmd/policy.d/90-dbus-0000:00:01.0.json");
        policy_store_target_done(&t);
        ck_assert_int_eq(policy_store_target(dirs3, "0000:00:01.0", false, &t, &error), 0);
        ck_assert_str_eq(t.dir, "/etc/vfiopmd/policy.d");                       /* the one before: persistent */
        policy_store_target_done(&t);

        ck_assert_int_eq(policy_store_target(one, "x", true, &t, &error), 0);
        policy_store_target_done(&t);
        ck_assert_int_eq(policy_store_target(one, "x", false, &t, &error), -EOPNOTSUPP);
        ck_assert_str_eq(error, "No persistent policy directory: the daemon reads 1");
        free(TAKE_PTR(error));

        ck_assert_int_eq(policy_store_target(dirs3, "../x", true, &t, &error), -EINVAL);
        ck_assert_str_eq(error, "'../x' cannot name a policy file");
        free(TAKE_PTR(error));
        ck_assert_int_eq(policy_store_target(dirs3, "", true, &t, &error), -EINVAL);
        free(TAKE_PTR(error));
        ck_assert_int_eq(policy_store_target(dirs3, "a\tb", true, &t, &error), -EINVAL);
        ck_assert_str_eq(error, "A device name with control characters cannot name a policy file");
        free(TAKE_PTR(error));
        memset(long_name, 'n', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        ck_assert_int_eq(policy_store_target(dirs3, long_name, true, &t, &error), -EINVAL);
        ck_assert_ptr_null(t.path);
}
END_TEST

START_TEST(test_text) {
        _cleanup_free_ char *text = NULL, *error = NULL;
        _cleanup_(policy_file_unrefp) PolicyFile *f = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *match, *v;

        ck_assert_int_eq(policy_store_text("/run/p/f.json", "0000:00:01.0",
                                           "{\"mode\":\"wakeup\",\"match\":{\"vendor\":\"8086\"}}", &text, &error), 0);
        /* what is written parses, names the device, keeps the caller's keys */
        ck_assert_int_eq(policy_file_parse("/run/p/f.json", text, strlen(text), &f, &error), 0);
        o = json_tokener_parse(text);
        ck_assert(json_object_object_get_ex(o, "match", &match));
        ck_assert_int_eq(json_object_object_length(match), 2);
        ck_assert(json_object_object_get_ex(match, "device", &v));
        ck_assert_str_eq(json_object_get_string(v), "0000:00:01.0");
        ck_assert(json_object_object_get_ex(match, "vendor", &v));
        ck_assert_str_eq(json_object_get_string(v), "8086");
        ck_assert(json_object_object_get_ex(o, "mode", &v));
        ck_assert_str_eq(json_object_get_string(v), "wakeup");
        ck_assert_int_eq(json_object_object_length(o), 2);
        ck_assert_int_eq(text[strlen(text) - 1], '\n');
        free(TAKE_PTR(text));

        ck_assert_int_lt(policy_store_text("/run/p/f.json", "x", "{\"mode\":\"sleepy\"}", &text, &error), 0);
        ck_assert_ptr_nonnull(strstr(error, "/run/p/f.json: mode: "));
        ck_assert_ptr_null(text);
        free(TAKE_PTR(error));
        ck_assert_int_eq(policy_store_text("/run/p/f.json", "x", "[]", &text, &error), -EINVAL);
        ck_assert_str_eq(error, "/run/p/f.json: expected one rule object");
}
END_TEST

START_TEST(test_write_remove) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *root = NULL;
        _cleanup_(policy_store_target_done) PolicyStoreTarget t = {};
        _cleanup_free_ char *error = NULL, *back = NULL;
        struct stat st;

        ck_assert_int_eq(fixture_tmp_new(NULL, &root), 0);
        ck_assert_int_eq(policy_store_target(dirs3, "dev", true, &t, &error), 0);
        ck_assert_int_eq(policy_store_remove(root->fd, &t, &error), POLICY_STORE_UNCHANGED);     /* no directory yet */
        ck_assert_int_eq(policy_store_write(root->fd, &t, "{}\n", &error), POLICY_STORE_CHANGED); /* creates it */
        ck_assert_int_eq(read_file_at(root->fd, "run/vfiopmd/policy.d/90-dbus-dev.json", 100, &back), 0);
        ck_assert_str_eq(back, "{}\n");
        ck_assert_int_eq(policy_store_remove(root->fd, &t, &error), POLICY_STORE_CHANGED);
        ck_assert_int_eq(fstatat(root->fd, "run/vfiopmd/policy.d/90-dbus-dev.json", &st, 0), -1);
        ck_assert_int_eq(policy_store_remove(root->fd, &t, &error), POLICY_STORE_UNCHANGED);     /* gone already */
        ck_assert_ptr_null(error);

        /* the directory's fsync fails after the rename or the unlink: the change is made, only
         * its durability across a crash is in doubt, and said to be */
        fault_io_set_dir_fsync_error(EIO);
        ck_assert_int_eq(policy_store_write(root->fd, &t, "{}\n", &error), POLICY_STORE_CHANGED_UNSYNCED);
        ck_assert_str_eq(error, "Failed to fsync /run/vfiopmd/policy.d after changing 90-dbus-dev.json: "
                         "Input/output error");
        free(TAKE_PTR(error));
        free(TAKE_PTR(back));
        ck_assert_int_eq(read_file_at(root->fd, "run/vfiopmd/policy.d/90-dbus-dev.json", 100, &back), 0);
        ck_assert_str_eq(back, "{}\n");
        ck_assert_int_eq(policy_store_remove(root->fd, &t, &error), POLICY_STORE_CHANGED_UNSYNCED);
        ck_assert_str_eq(error, "Failed to fsync /run/vfiopmd/policy.d after changing 90-dbus-dev.json: "
                         "Input/output error");
        free(TAKE_PTR(error));
        ck_assert_int_eq(fstatat(root->fd, "run/vfiopmd/policy.d/90-dbus-dev.json", &st, 0), -1);
        ck_assert_int_eq(policy_store_remove(root->fd, &t, &error), POLICY_STORE_UNCHANGED);     /* no fsync: nothing changed */
        ck_assert_uint_eq(fault_io_dir_fsync_failures(), 2);
        fault_io_set_dir_fsync_error(0);

        /* a directory where the file goes */
        ck_assert_int_eq(mkdirat(root->fd, "run/vfiopmd/policy.d/90-dbus-dev.json", 0755), 0);
        ck_assert_int_eq(policy_store_write(root->fd, &t, "{}\n", &error), -EISDIR);
        ck_assert_str_eq(error, "Failed to write /run/vfiopmd/policy.d/90-dbus-dev.json: Is a directory");
}
END_TEST

Suite *policy_store_suite(void) {
        Suite *s = suite_create("policy-store");
        TCase *tc = tcase_create("policy-store");

        tcase_add_test(tc, test_target);
        tcase_add_test(tc, test_text);
        tcase_add_test(tc, test_write_remove);
        suite_add_tcase(s, tc);
        return s;
}
