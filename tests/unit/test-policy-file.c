#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fixture.h"
#include "policy-file.h"
#include "policy-set.h"
#include "policy.h"
#include "policy-helpers.h"
#include "strv.h"
#include "suites.h"

/* Policy files: parsing, the corpus of bad files (tests/fixtures/policy/bad: each NAME.json
 * with the exact message in NAME.json.expect), the directory loader on fixture trees
 * (tests/fixtures/policy/tree, copied to a scratch dir where a test changes it). */

/* Cases of the corpus kept in git, at least; the generated ones come on top. */
#define CORPUS_MIN 30

static const DeviceFacts nic = {
        .name = "0000:00:03.0",
        .vendor = "0x8086",
        .device_id = "0x10d3",
        .class = "0x020000",
        .driver = "vfio-pci",
        .iommu_group = 3,
};

static const DeviceFacts sim = {
        .name = "vfio-pm-sim.0",
        .driver = "vfio-pm-sim",
        .iommu_group = 13,
};

static bool has_suffix(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Whole file below dirfd; NULL if it does not exist. */
static char *read_at(int dirfd, const char *name, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, size = 4096;

        fd = openat(dirfd, name, O_RDONLY|O_CLOEXEC);
        if (fd < 0) {
                ck_assert_int_eq(errno, ENOENT);
                return NULL;
        }

        buf = malloc(size);
        ck_assert_ptr_nonnull(buf);
        for (;;) {
                ssize_t k;

                if (n + 1 >= size) {
                        size *= 2;
                        buf = realloc(buf, size);
                        ck_assert_ptr_nonnull(buf);
                }
                k = read(fd, buf + n, size - n - 1);
                ck_assert_int_ge(k, 0);
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';
        if (ret_len)
                *ret_len = n;
        return TAKE_PTR(buf);
}

/* The .expect sidecar: one line, the message. */
static char *read_expect(int dirfd, const char *json_name) {
        _cleanup_free_ char *name = NULL;
        char *s;
        size_t n;

        ck_assert_int_ge(asprintf(&name, "%s.expect", json_name), 0);
        s = read_at(dirfd, name, &n);
        ck_assert_msg(s, "%s has no %s: every bad file states its expected error", json_name, name);
        if (n > 0 && s[n - 1] == '\n')
                s[n - 1] = '\0';
        ck_assert_msg(!strchr(s, '\n'), "%s: one line only", name);
        return s;
}

static PolicyFile *parse_ok(const char *text) {
        _cleanup_free_ char *msg = NULL;
        PolicyFile *f = NULL;
        int r;

        r = policy_file_parse("test.json", text, strlen(text), &f, &msg);
        ck_assert_msg(r == 0, "%s: %d %s", text, r, msg);
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_null(msg);
        return f;
}

static char *parse_fail(const char *text, int expected) {
        PolicyFile *f = (PolicyFile *) 0x1;
        char *msg = NULL;
        int r;

        r = policy_file_parse("test.json", text, strlen(text), &f, &msg);
        ck_assert_msg(r == expected, "%s: got %d, expected %d", text, r, expected);
        ck_assert_ptr_eq(f, (PolicyFile *) 0x1);
        ck_assert_ptr_nonnull(msg);
        return msg;
}

static PolicySet *set_new(void) {
        PolicySet *set = NULL;

        ck_assert_int_eq(policy_set_new(&set), 0);
        return set;
}

static char **default_dirs(void) {
        char **dirs = NULL;

        ck_assert_int_eq(policy_dirs_from_string(POLICY_DIRS_DEFAULT, &dirs), 0);
        return dirs;
}

static EffectivePolicy *evaluate(const PolicySet *set, const DeviceFacts *dev) {
        EffectivePolicy *p = NULL;

        ck_assert_int_eq(policy_set_evaluate(set, dev, &p), 0);
        return p;
}

static const PolicySetEntry *find_entry(const PolicySet *set, const char *name) {
        for (size_t i = 0; i < set->n_entries; i++)
                if (strcmp(set->entries[i].name, name) == 0)
                        return &set->entries[i];
        return NULL;
}

#define USR "/usr/lib/vfiopmd/policy.d/"
#define ETC "/etc/vfiopmd/policy.d/"
#define RUN "/run/vfiopmd/policy.d/"

START_TEST(test_parse_object) {
        _cleanup_(policy_file_unrefp) PolicyFile *f = NULL;
        const PolicyRule *r;

        f = parse_ok("{ \"match\": { \"vendor\": \"10DE\", \"class\": \"0C03\", \"device\": \"0000:01:00.0\",\n"
                     "              \"device_id\": \"aBcD\", \"subsystem_vendor\": \"1458\", \"subsystem_device\": \"403b\",\n"
                     "              \"driver\": \"vfio-pci\", \"iommu_group\": 0 },\n"
                     "  \"mode\": \"wakeup\", \"rearm_delay_ms\": 5000, \"d3cold\": false, \"power_low_w\": null }\n");
        ck_assert_str_eq(f->path, "test.json");
        ck_assert_uint_eq(f->n_rules, 1);
        r = &f->rules[0];

        /* hex is kept lowercase */
        ck_assert_str_eq(r->match.vendor, "10de");
        ck_assert_str_eq(r->match.class, "0c03");
        ck_assert_str_eq(r->match.device_id, "abcd");
        ck_assert_str_eq(r->match.subsystem_vendor, "1458");
        ck_assert_str_eq(r->match.subsystem_device, "403b");
        ck_assert_str_eq(r->match.device, "0000:01:00.0");
        ck_assert_str_eq(r->match.driver, "vfio-pci");
        ck_assert_int_eq(r->match.iommu_group, 0);

        ck_assert(r->set[POLICY_KEY_MODE]);
        ck_assert_int_eq(r->values.mode, POLICY_MODE_WAKEUP);
        ck_assert(r->set[POLICY_KEY_REARM_DELAY_MS]);
        ck_assert_uint_eq(r->values.rearm_delay_ms, 5000);
        ck_assert(r->set[POLICY_KEY_D3COLD]);
        ck_assert_int_eq(r->values.d3cold, POLICY_D3COLD_DENY);
        /* an explicit null sets the key */
        ck_assert(r->set[POLICY_KEY_POWER_LOW_W]);
        ck_assert(isnan(r->values.power_low_w));
        ck_assert(!r->set[POLICY_KEY_ARM_DELAY_MS]);
        ck_assert(!r->set[POLICY_KEY_FLAP_MAX_WAKES]);
        ck_assert(!r->set[POLICY_KEY_FLAP_WINDOW_S]);
        ck_assert(!r->set[POLICY_KEY_FLAP_HOLD_S]);
        ck_assert(!r->set[POLICY_KEY_POWER_ACTIVE_W]);
}
END_TEST

START_TEST(test_parse_array) {
        _cleanup_(policy_file_unrefp) PolicyFile *a = NULL, *empty = NULL, *obj = NULL, *one = NULL;

        a = parse_ok("[ { \"mode\": \"on\" }, { \"match\": {}, \"mode\": \"auto\" }, { \"d3cold\": true } ]");
        ck_assert_uint_eq(a->n_rules, 3);
        ck_assert_int_eq(a->rules[0].values.mode, POLICY_MODE_ON);
        ck_assert_int_eq(a->rules[1].values.mode, POLICY_MODE_AUTO);
        ck_assert(!a->rules[2].set[POLICY_KEY_MODE]);
        ck_assert_int_eq(a->rules[2].values.d3cold, POLICY_D3COLD_ALLOW);
        /* no match and {} match every device */
        for (size_t i = 0; i < a->n_rules; i++) {
                ck_assert_ptr_null(a->rules[i].match.device);
                ck_assert_str_eq(a->rules[i].match.vendor, "");
                ck_assert_str_eq(a->rules[i].match.class, "");
                ck_assert_int_eq(a->rules[i].match.iommu_group, -1);
                ck_assert(policy_match_device(&a->rules[i].match, &sim));
        }

        /* an empty array is a file without rules; {} is one rule that sets nothing */
        empty = parse_ok(" \n[ ]\n\n");
        ck_assert_uint_eq(empty->n_rules, 0);
        obj = parse_ok("{}");
        ck_assert_uint_eq(obj->n_rules, 1);
        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++)
                ck_assert(!obj->rules[0].set[k]);
        one = parse_ok("[{}]");
        ck_assert_uint_eq(one->n_rules, 1);
}
END_TEST

START_TEST(test_parse_ranges) {
        static const char *const good[] = {
                "{ \"arm_delay_ms\": 0, \"rearm_delay_ms\": 3600000 }",
                "{ \"arm_delay_ms\": 3600000, \"rearm_delay_ms\": 0 }",
                "{ \"flap_max_wakes\": 1, \"flap_window_s\": 1, \"flap_hold_s\": 0 }",
                "{ \"flap_max_wakes\": 1000000, \"flap_window_s\": 86400, \"flap_hold_s\": 86400 }",
                "{ \"power_active_w\": 0, \"power_low_w\": 10000 }",
                "{ \"power_active_w\": 10000.0, \"power_low_w\": 0.001 }",
                "{ \"power_active_w\": 1.5e2, \"power_low_w\": -0 }",
                "{ \"match\": { \"iommu_group\": 2147483647 } }",
                "{ \"match\": { \"class\": \"03\" } }",
                "{ \"match\": { \"class\": \"0302\" } }",
                "{ \"match\": { \"class\": \"030200\" } }",
                "{ \"match\": { \"driver\": \"vfio-pci-caf\xc3\xa9\" } }",
                "{ \"match\": { \"device\": \"vfio-pm-sim.3\", \"driver\": \"vfio-pm-sim\" } }",
                "{ \"d3cold\": null, \"power_active_w\": null, \"mode\": \"kernel\" }",
        };
        _cleanup_(policy_file_unrefp) PolicyFile *named = NULL;
        _cleanup_free_ char *long_name = NULL;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(policy_file_unrefp) PolicyFile *f = parse_ok(good[i]);

                ck_assert_uint_eq(f->n_rules, 1);
        }

        /* POLICY_NAME_MAX bytes */
        ck_assert_int_ge(asprintf(&long_name, "{ \"match\": { \"device\": \"%0255d\" } }", 0), 0);
        named = parse_ok(long_name);
        ck_assert_uint_eq(strlen(named->rules[0].match.device), POLICY_NAME_MAX);

        {
                _cleanup_(policy_file_unrefp) PolicyFile *f = parse_ok("{ \"power_active_w\": 150, \"power_low_w\": 2.25 }");

                ck_assert_double_eq(f->rules[0].values.power_active_w, 150);
                ck_assert_double_eq(f->rules[0].values.power_low_w, 2.25);
        }
}
END_TEST

START_TEST(test_parse_errors) {
        /* the corpus has the rest; these check return codes and the message shapes */
        static const struct {
                const char *text;
                int r;
                const char *message;
        } cases[] = {
                { "", -ENODATA, "test.json: file is empty" },
                { " \n", -ENODATA, "test.json: file is empty" },
                { "{\n  \"mode\": \"on\",\n}", -EBADMSG, "test.json:2:15: trailing comma before '}'" },
                { "{\"mode\":\"on\"}\xff", -EILSEQ, "test.json:1:14: invalid UTF-8" },
                { "[\n\xc3\xa9\xc3\xa9x]", -EBADMSG, "test.json:2:1: unexpected character" },
                { "[\"\xc3\xa9\xc3\xa9\", x]", -EBADMSG, "test.json:1:8: unexpected character 'x'" },
                { "[{\"mode\":\"on\"},{\"mode\":\"of\"}]", -EINVAL,
                  "test.json: [1].mode: expected \"kernel\", \"on\", \"auto\" or \"wakeup\", got \"of\"" },
                { "{\"match\":{\"vendor\":\"10de\",\"nope\":1}}", -EINVAL, "test.json: match.nope: unknown key" },
                { "{\"\":1}", -EINVAL, "test.json: \"\": unknown key" },
                { "{\"match\":{\"a\\\"b\":1}}", -EINVAL, "test.json: match.\"a\\\"b\": unknown key" },
                { "{\"power_low_w\":1e-400}", 0, NULL },
                { "[1]", -EINVAL, "test.json: [0]: expected a rule object, got 1" },
                { "{\"mode\":\"on\"} // done", -EBADMSG, "test.json:1:15: unexpected data after the JSON value" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *msg = NULL;
                _cleanup_(policy_file_unrefp) PolicyFile *f = NULL;
                int r;

                r = policy_file_parse("test.json", cases[i].text, strlen(cases[i].text), &f, &msg);
                ck_assert_msg(r == cases[i].r, "case %zu: got %d, expected %d (%s)", i, r, cases[i].r, msg);
                if (cases[i].message)
                        ck_assert_str_eq(msg, cases[i].message);
                else
                        ck_assert_ptr_null(msg);
        }
}
END_TEST

START_TEST(test_parse_whole_or_nothing) {
        _cleanup_free_ char *msg = NULL, *msg2 = NULL;
        const char *text = "[ { \"mode\": \"wakeup\" }, { \"mode\": \"auto\" }, { \"rearm_delay_ms\": \"soon\" } ]";
        int r;

        /* two good rules and a bad one: nothing comes back */
        msg = parse_fail(text, -EINVAL);
        ck_assert_str_eq(msg, "test.json: [2].rearm_delay_ms: expected an integer from 0 to 3600000, got \"soon\"");

        /* validation only, with and without a message */
        r = policy_file_parse("x.json", text, strlen(text), NULL, &msg2);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_str_eq(msg2, "x.json: [2].rearm_delay_ms: expected an integer from 0 to 3600000, got \"soon\"");
        ck_assert_int_eq(policy_file_parse("x.json", text, strlen(text), NULL, NULL), -EINVAL);
        ck_assert_int_eq(policy_file_parse("x.json", "{}", 2, NULL, NULL), 0);

        /* the text need not be NUL-terminated: only len bytes count */
        ck_assert_int_eq(policy_file_parse("x.json", "{}garbage", 2, NULL, NULL), 0);

        ck_assert_int_eq(policy_file_parse(NULL, "{}", 2, NULL, NULL), -EINVAL);
        ck_assert_int_eq(policy_file_parse("x.json", NULL, 1, NULL, NULL), -EINVAL);
        ck_assert_int_eq(policy_file_parse("x.json", NULL, 0, NULL, NULL), -ENODATA);
}
END_TEST

START_TEST(test_parse_size_limit) {
        _cleanup_free_ char *buf = malloc(POLICY_FILE_SIZE_MAX + 2);
        _cleanup_(policy_file_unrefp) PolicyFile *f = NULL;
        _cleanup_free_ char *msg = NULL;

        /* exactly the limit: fine */
        ck_assert_ptr_nonnull(buf);
        memset(buf, ' ', POLICY_FILE_SIZE_MAX + 1);
        buf[0] = '[';
        buf[POLICY_FILE_SIZE_MAX - 1] = ']';
        ck_assert_int_eq(policy_file_parse("max.json", buf, POLICY_FILE_SIZE_MAX, &f, NULL), 0);
        ck_assert_uint_eq(f->n_rules, 0);

        /* one byte more, even a blank: refused before parsing */
        ck_assert_int_eq(policy_file_parse("over.json", buf, POLICY_FILE_SIZE_MAX + 1, NULL, &msg), -EFBIG);
        ck_assert_str_eq(msg, "over.json: file is larger than 1 MiB (1048576 bytes)");
}
END_TEST

START_TEST(test_good_fixtures) {
        _cleanup_close_ int dir = -EBADF;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        size_t n = 0;

        ck_assert_int_eq(fixture_open("policy/good", &dir), 0);
        d = fdopendir(dup(dir));
        ck_assert_ptr_nonnull(d);

        while ((de = readdir(d))) {
                _cleanup_(policy_file_unrefp) PolicyFile *f = NULL;
                _cleanup_free_ char *msg = NULL;

                if (!has_suffix(de->d_name, ".json"))
                        continue;
                ck_assert_msg(policy_file_load_at(dir, de->d_name, de->d_name, &f, &msg) == 0,
                              "%s: %s", de->d_name, msg);
                n++;

                if (strcmp(de->d_name, "00-defaults.json") == 0) {
                        /* spells out the built-in defaults, every key */
                        ck_assert_uint_eq(f->n_rules, 1);
                        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++)
                                ck_assert(f->rules[0].set[k]);
                        ck_assert(policy_values_equal(&f->rules[0].values, policy_defaults()));
                } else if (strcmp(de->d_name, "all-keys.json") == 0) {
                        const PolicyRule *r = &f->rules[0];

                        ck_assert_uint_eq(f->n_rules, 4);
                        ck_assert(policy_match_device(&r->match, &policy_test_gpu));
                        ck_assert_int_eq(r->values.mode, POLICY_MODE_WAKEUP);
                        ck_assert_uint_eq(r->values.arm_delay_ms, 3600000);
                        ck_assert_uint_eq(r->values.rearm_delay_ms, 0);
                        ck_assert_uint_eq(r->values.flap_max_wakes, 1);
                        ck_assert_uint_eq(r->values.flap_window_s, 86400);
                        ck_assert_uint_eq(r->values.flap_hold_s, 0);
                        ck_assert_int_eq(r->values.d3cold, POLICY_D3COLD_ALLOW);
                        ck_assert_double_eq(r->values.power_active_w, 35.5);
                        ck_assert_double_eq(r->values.power_low_w, 0);
                        ck_assert(policy_match_device(&f->rules[1].match, &sim));
                        ck_assert(!policy_match_device(&f->rules[1].match, &policy_test_gpu));
                } else if (strcmp(de->d_name, "empty-array.json") == 0)
                        ck_assert_uint_eq(f->n_rules, 0);
        }
        ck_assert_uint_ge(n, 5);
}
END_TEST

START_TEST(test_bad_corpus) {
        _cleanup_close_ int dir = -EBADF;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        size_t n = 0;

        ck_assert_int_eq(fixture_open("policy/bad", &dir), 0);
        d = fdopendir(dup(dir));
        ck_assert_ptr_nonnull(d);

        while ((de = readdir(d))) {
                _cleanup_free_ char *text = NULL, *expect = NULL, *msg = NULL, *msg2 = NULL;
                PolicyFile *f = (PolicyFile *) 0x1;
                size_t len;
                int r, r2;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (has_suffix(de->d_name, ".json.expect")) {
                        char json[NAME_MAX + 1];

                        snprintf(json, sizeof(json), "%.*s", (int) (strlen(de->d_name) - strlen(".expect")), de->d_name);
                        ck_assert_msg(faccessat(dir, json, F_OK, 0) == 0, "%s has no %s", de->d_name, json);
                        continue;
                }
                ck_assert_msg(has_suffix(de->d_name, ".json"), "%s: neither a case nor an expectation", de->d_name);

                text = read_at(dir, de->d_name, &len);
                expect = read_expect(dir, de->d_name);

                r = policy_file_parse(de->d_name, text, len, &f, &msg);
                ck_assert_msg(r < 0, "%s: accepted", de->d_name);
                ck_assert_msg(r != -ENOMEM, "%s", de->d_name);
                ck_assert_ptr_eq(f, (PolicyFile *) 0x1);
                ck_assert_msg(msg && strcmp(msg, expect) == 0, "%s:\n  got      %s\n  expected %s",
                              de->d_name, msg, expect);

                /* validating only says the same */
                r2 = policy_file_parse(de->d_name, text, len, NULL, &msg2);
                ck_assert_int_eq(r2, r);
                ck_assert_str_eq(msg2, msg);
                n++;
        }

        ck_assert_msg(n >= CORPUS_MIN, "only %zu bad files", n);
}
END_TEST

/* The same corpus as one policy directory: each file one error, no rule in force. */
START_TEST(test_bad_corpus_loaded) {
        _cleanup_(policy_set_freep) PolicySet *set = set_new();
        _cleanup_close_ int root = -EBADF, bad = -EBADF;
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        char *dirs[] = { (char *) "/bad", NULL };
        int r;

        ck_assert_int_eq(fixture_open("policy", &root), 0);
        ck_assert_int_eq(fixture_open("policy/bad", &bad), 0);

        r = policy_set_load(set, root, dirs);
        ck_assert_int_ge(r, CORPUS_MIN);
        ck_assert_uint_eq((size_t) r, set->n_errors);
        ck_assert_uint_eq(set->n_entries, set->n_errors);
        ck_assert_uint_eq(set->n_files, 0);
        ck_assert_ptr_null(set->errors[set->n_errors]);

        for (size_t i = 0; i < set->n_entries; i++) {
                const PolicySetEntry *e = &set->entries[i];
                _cleanup_free_ char *expect = read_expect(bad, e->name), *want = NULL;

                ck_assert_int_ge(asprintf(&want, "/bad/%s", expect), 0);
                ck_assert_str_eq(e->error, want);
                ck_assert_str_eq(set->errors[i], want);
                ck_assert_ptr_null(e->file);
                ck_assert(!e->masked);
                if (i > 0)
                        ck_assert_int_lt(strcmp(set->entries[i - 1].name, e->name), 0);
        }

        p = evaluate(set, &policy_test_gpu);
        ck_assert(policy_values_equal(&p->values, policy_defaults()));
}
END_TEST

/* Bad files that cannot live in git: made here. */
START_TEST(test_bad_generated) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_(policy_set_freep) PolicySet *set = set_new();
        _cleanup_free_ char *big = NULL;
        _cleanup_close_ int d = -EBADF;
        char *dirs[] = { (char *) "/policy.d", NULL };
        static const struct {
                const char *name;
                int r;
                const char *message;
        } cases[] = {
                { "big.json", -EFBIG, "big.json: file is larger than 1 MiB (1048576 bytes)" },
                { "loop-a.json", -ELOOP, "loop-a.json: cannot open: Too many levels of symbolic links" },
                { "loop-b.json", -ELOOP, "loop-b.json: cannot open: Too many levels of symbolic links" },
                { "self.json", -ELOOP, "self.json: cannot open: Too many levels of symbolic links" },
                { "dangling.json", -ENOENT, "dangling.json: dangling symbolic link" },
                { "dir.json", -EBADFD, "dir.json: not a regular file" },
                { "fifo.json", -EBADFD, "fifo.json: not a regular file" },
                { "secret.json", -EACCES, "secret.json: cannot open: Permission denied" },
        };
        const size_t big_size = 10 * 1024 * 1024;
        bool root = geteuid() == 0;
        int r;

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        /* The unreadable case runs as nobody when we are root (root reads mode 000 files): the
         * scratch tree must let nobody in. */
        ck_assert_int_eq(fchmod(t->fd, 0755), 0);
        ck_assert_int_eq(mkdirat(t->fd, "policy.d", 0755), 0);
        d = openat(t->fd, "policy.d", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        ck_assert_int_ge(d, 0);

        /* valid JSON, just too large: must fail on the size, not be parsed */
        big = malloc(big_size);
        ck_assert_ptr_nonnull(big);
        memset(big, ' ', big_size);
        big[0] = '[';
        big[big_size - 2] = ']';
        big[big_size - 1] = '\n';
        ck_assert_int_eq(fixture_write(d, "big.json", big, big_size), 0);

        ck_assert_int_eq(symlinkat("loop-b.json", d, "loop-a.json"), 0);
        ck_assert_int_eq(symlinkat("loop-a.json", d, "loop-b.json"), 0);
        ck_assert_int_eq(symlinkat("self.json", d, "self.json"), 0);
        ck_assert_int_eq(symlinkat("nowhere.json", d, "dangling.json"), 0);
        ck_assert_int_eq(mkdirat(d, "dir.json", 0755), 0);
        ck_assert_int_eq(mkfifoat(d, "fifo.json", 0644), 0);
        ck_assert_int_eq(fixture_write_string(d, "secret.json", "{ \"mode\": \"on\" }\n"), 0);
        ck_assert_int_eq(fchmodat(d, "secret.json", 0, 0), 0);
        ck_assert_int_eq(fixture_write_string(d, "ok.json", "{ \"mode\": \"auto\" }\n"), 0);

        if (root)
                ck_assert_msg(seteuid(65534) == 0, "seteuid(65534): %m");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PolicyFile *f = (PolicyFile *) 0x1;
                _cleanup_free_ char *msg = NULL;

                r = policy_file_load_at(d, cases[i].name, cases[i].name, &f, &msg);
                ck_assert_msg(r == cases[i].r, "%s: got %d, expected %d", cases[i].name, r, cases[i].r);
                ck_assert_str_eq(msg, cases[i].message);
                ck_assert_ptr_eq(f, (PolicyFile *) 0x1);
        }

        /* and all of them through the loader, around the one good file */
        r = policy_set_load(set, t->fd, dirs);

        if (root)
                ck_assert_int_eq(seteuid(0), 0);

        ck_assert_int_eq(r, (int) ELEMENTSOF(cases));
        ck_assert_uint_eq(set->n_entries, ELEMENTSOF(cases) + 1);
        ck_assert_uint_eq(set->n_files, 1);
        ck_assert_str_eq(set->files[0]->path, "/policy.d/ok.json");
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *want = NULL;
                const PolicySetEntry *e = find_entry(set, cases[i].name);

                ck_assert_ptr_nonnull(e);
                ck_assert_int_ge(asprintf(&want, "/policy.d/%s", cases[i].message), 0);
                ck_assert_str_eq(e->error, want);
                ck_assert_ptr_null(e->file);
        }
        /* in name order */
        ck_assert_str_eq(set->errors[0], "/policy.d/big.json: file is larger than 1 MiB (1048576 bytes)");
        ck_assert_str_eq(set->errors[ELEMENTSOF(cases) - 1],
                         "/policy.d/self.json: cannot open: Too many levels of symbolic links");
}
END_TEST

/* As many distinct keys as 1 MiB holds, in one object: the duplicate-key check looks at each key
 * a bounded number of times, not at every key before it (10 to 16 s in the event loop, issue 17).
 * Counted, not timed. */
#define MANY_KEYS 87000
#define MANY_KEYS_COMPARISONS_MAX (3 * MANY_KEYS)

/* {"k000000":0,"k000001":0,…}, n keys, then extra (a key and its value) if not NULL. */
static char *many_keys(size_t n, const char *extra, size_t *ret_len) {
        size_t size = 2 + n * 12 + (extra ? strlen(extra) + 1 : 0) + 1, len = 0;
        char *text = malloc(size);

        ck_assert_ptr_nonnull(text);
        text[len++] = '{';
        for (size_t i = 0; i < n; i++)
                len += (size_t) snprintf(text + len, size - len, "%s\"k%06zu\":0", i > 0 ? "," : "", i);
        if (extra)
                len += (size_t) snprintf(text + len, size - len, ",%s", extra);
        len += (size_t) snprintf(text + len, size - len, "}");
        ck_assert_uint_le(len, POLICY_FILE_SIZE_MAX);
        *ret_len = len;
        return text;
}

static void parse_many_keys(const char *extra, const char *expect) {
        _cleanup_free_ char *text = NULL, *msg = NULL;
        uint64_t before;
        size_t len;

        text = many_keys(MANY_KEYS, extra, &len);
        before = policy_file_key_comparisons();
        ck_assert_int_eq(policy_file_parse("many.json", text, len, NULL, &msg), -EINVAL);
        ck_assert_str_eq(msg, expect);
        ck_assert_msg(policy_file_key_comparisons() - before <= MANY_KEYS_COMPARISONS_MAX,
                      "%" PRIu64 " comparisons for %d keys, at most %d allowed",
                      policy_file_key_comparisons() - before, MANY_KEYS, MANY_KEYS_COMPARISONS_MAX);
}

START_TEST(test_many_keys) {
        char expect[80];

        /* no duplicate: the rule's content is checked, and its first key is no policy key */
        parse_many_keys(NULL, "many.json: k000000: unknown key");
        /* the first key again, last: found, where it is */
        snprintf(expect, sizeof(expect), "many.json:1:%d: duplicate key \"k000000\"", 2 + MANY_KEYS * 12);
        parse_many_keys("\"k000000\":1", expect);
        /* an escaped key is the same key */
        snprintf(expect, sizeof(expect), "many.json:1:%d: duplicate key \"k000042\"", 2 + MANY_KEYS * 12);
        parse_many_keys("\"k\\u00300\\u0030042\":1", expect);
}
END_TEST

START_TEST(test_dirs_from_string) {
        _cleanup_(strv_freep) char **def = NULL, **none = NULL, **slash = NULL;
        char **dirs = (char **) 0x1;

        ck_assert_int_eq(policy_dirs_from_string(POLICY_DIRS_DEFAULT, &def), 0);
        ck_assert_str_eq(def[0], "/usr/lib/vfiopmd/policy.d");
        ck_assert_str_eq(def[1], "/etc/vfiopmd/policy.d");
        ck_assert_str_eq(def[2], "/run/vfiopmd/policy.d");
        ck_assert_ptr_null(def[3]);

        ck_assert_int_eq(policy_dirs_from_string("", &none), 0);
        ck_assert_ptr_null(none[0]);

        ck_assert_int_eq(policy_dirs_from_string("/a/:/b//:/", &slash), 0);
        ck_assert_str_eq(slash[0], "/a");
        ck_assert_str_eq(slash[1], "/b");
        ck_assert_str_eq(slash[2], "/");
        ck_assert_ptr_null(slash[3]);

        ck_assert_int_eq(policy_dirs_from_string("/a::/b", &dirs), -EINVAL);
        ck_assert_int_eq(policy_dirs_from_string("/a:", &dirs), -EINVAL);
        ck_assert_int_eq(policy_dirs_from_string(":/a", &dirs), -EINVAL);
        ck_assert_int_eq(policy_dirs_from_string("/a:relative", &dirs), -EINVAL);
        ck_assert_int_eq(policy_dirs_from_string(NULL, &dirs), -EINVAL);
        ck_assert_ptr_eq(dirs, (char **) 0x1);
        ck_assert_ptr_null(strv_free(NULL));
}
END_TEST

START_TEST(test_tree) {
        _cleanup_(policy_set_freep) PolicySet *set = set_new();
        _cleanup_(strv_freep) char **dirs = default_dirs();
        _cleanup_(effective_policy_freep) EffectivePolicy *g = NULL, *n = NULL, *s = NULL;
        _cleanup_close_ int root = -EBADF;
        _cleanup_free_ char *json = NULL;
        static const struct {
                const char *name, *path;
                bool masked;
        } expected[] = {
                { "00-defaults.json", USR "00-defaults.json", false },
                { "10-early.json", RUN "10-early.json", false },
                { "50-gpu.json", ETC "50-gpu.json", false },          /* masks /usr/lib's */
                { "60-sim.json", ETC "60-sim.json", true },           /* -> /dev/null */
                { "70-nic.json", USR "70-nic.json", false },
                { "80-override.json", RUN "80-override.json", false },
        };

        ck_assert_int_eq(fixture_open("policy/tree", &root), 0);
        ck_assert_int_eq(policy_set_load(set, root, dirs), 0);
        ck_assert_uint_eq(set->n_errors, 0);
        ck_assert_ptr_null(set->errors[0]);

        /* README, notes.txt and .hidden.json are not policy files */
        ck_assert_uint_eq(set->n_entries, ELEMENTSOF(expected));
        for (size_t i = 0, j = 0; i < ELEMENTSOF(expected); i++) {
                const PolicySetEntry *e = &set->entries[i];

                ck_assert_str_eq(e->name, expected[i].name);
                ck_assert_str_eq(e->path, expected[i].path);
                ck_assert_int_eq(e->masked, expected[i].masked);
                ck_assert_ptr_null(e->error);
                if (expected[i].masked) {
                        ck_assert_ptr_null(e->file);
                        continue;
                }
                ck_assert_ptr_nonnull(e->file);
                ck_assert_str_eq(e->file->path, expected[i].path);
                ck_assert_ptr_eq(set->files[j++], e->file);
        }
        ck_assert_uint_eq(set->n_files, ELEMENTSOF(expected) - 1);

        /* the GPU: /etc's 50-gpu.json, without /usr/lib's d3cold:false; /run's files apply by
         * name, before and after it */
        g = evaluate(set, &policy_test_gpu);
        ck_assert_int_eq(g->values.mode, POLICY_MODE_WAKEUP);
        assert_policy_source(g, POLICY_KEY_MODE, ETC "50-gpu.json", 0);
        ck_assert_uint_eq(g->values.rearm_delay_ms, 3000);
        assert_policy_source(g, POLICY_KEY_REARM_DELAY_MS, ETC "50-gpu.json", 0);
        ck_assert_int_eq(g->values.d3cold, POLICY_D3COLD_LEAVE);
        assert_policy_source(g, POLICY_KEY_D3COLD, USR "00-defaults.json", 0);
        ck_assert_uint_eq(g->values.flap_max_wakes, 3);
        assert_policy_source(g, POLICY_KEY_FLAP_MAX_WAKES, RUN "80-override.json", 0);
        ck_assert_double_eq(g->values.power_active_w, 20);
        assert_policy_source(g, POLICY_KEY_POWER_ACTIVE_W, RUN "10-early.json", 0);
        ck_assert(isnan(g->values.power_low_w));
        assert_policy_source(g, POLICY_KEY_POWER_LOW_W, USR "00-defaults.json", 0);
        ck_assert_uint_eq(g->values.arm_delay_ms, 0);
        assert_policy_source(g, POLICY_KEY_ARM_DELAY_MS, USR "00-defaults.json", 0);

        /* the NIC: both rules of 70-nic.json */
        n = evaluate(set, &nic);
        ck_assert_int_eq(n->values.mode, POLICY_MODE_WAKEUP);
        assert_policy_source(n, POLICY_KEY_MODE, USR "70-nic.json", 0);
        ck_assert_uint_eq(n->values.rearm_delay_ms, 2000);
        assert_policy_source(n, POLICY_KEY_REARM_DELAY_MS, USR "70-nic.json", 1);
        ck_assert_uint_eq(n->values.flap_max_wakes, 10);
        assert_policy_source(n, POLICY_KEY_FLAP_MAX_WAKES, USR "00-defaults.json", 0);

        /* the simulated device: 60-sim.json is masked, 10-early.json's "on" stays */
        s = evaluate(set, &sim);
        ck_assert_int_eq(s->values.mode, POLICY_MODE_ON);
        assert_policy_source(s, POLICY_KEY_MODE, RUN "10-early.json", 0);

        ck_assert_int_eq(effective_policy_to_json(g, &json), 0);
        ck_assert_ptr_nonnull(strstr(json,
                "{\"mode\":{\"value\":\"wakeup\",\"source\":\"/etc/vfiopmd/policy.d/50-gpu.json\",\"rule\":0},"
                "\"arm_delay_ms\":{\"value\":0,\"source\":\"/usr/lib/vfiopmd/policy.d/00-defaults.json\",\"rule\":0},"));
        ck_assert_ptr_nonnull(strstr(json,
                "\"power_active_w\":{\"value\":20,\"source\":\"/run/vfiopmd/policy.d/10-early.json\",\"rule\":0},"));
}
END_TEST

START_TEST(test_missing_dirs) {
        _cleanup_(policy_set_freep) PolicySet *set = set_new();
        _cleanup_(strv_freep) char **dirs = default_dirs();
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        char *relative[] = { (char *) "/etc/vfiopmd/policy.d", (char *) "etc", NULL };
        char *none[] = { NULL };

        /* no directory at all: no error, the defaults */
        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        ck_assert_int_eq(policy_set_load(set, t->fd, dirs), 0);
        ck_assert_uint_eq(set->n_entries, 0);
        ck_assert_uint_eq(set->n_files, 0);
        p = evaluate(set, &policy_test_gpu);
        ck_assert(policy_values_equal(&p->values, policy_defaults()));
        ck_assert_ptr_null(p->source[POLICY_KEY_MODE].file);

        /* one directory: the others still missing */
        ck_assert_int_eq(fixture_write_string(t->fd, "etc/vfiopmd/policy.d/50-x.json", "{ \"mode\": \"on\" }"), 0);
        ck_assert_int_eq(policy_set_load(set, t->fd, dirs), 0);
        ck_assert_uint_eq(set->n_files, 1);

        /* refused arguments leave the set as it was */
        ck_assert_int_eq(policy_set_load(set, t->fd, relative), -EINVAL);
        ck_assert_int_eq(policy_set_load(set, t->fd, NULL), -EINVAL);
        ck_assert_int_eq(policy_set_load(NULL, t->fd, dirs), -EINVAL);
        ck_assert_uint_eq(set->n_files, 1);

        ck_assert_int_eq(policy_set_load(set, t->fd, none), 0);
        ck_assert_uint_eq(set->n_files, 0);
        ck_assert_uint_eq(set->n_entries, 0);

        ck_assert_ptr_null(policy_set_free(NULL));
}
END_TEST

static int reload(PolicySet *set, int rootfd, char **dirs) {
        int r = policy_set_load(set, rootfd, dirs);

        ck_assert_int_ge(r, 0);
        ck_assert_uint_eq((size_t) r, set->n_errors);
        return r;
}

START_TEST(test_reload) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_(policy_set_freep) PolicySet *set = set_new();
        _cleanup_(strv_freep) char **dirs = default_dirs();
        EffectivePolicy *p;
        const PolicySetEntry *e;

        ck_assert_int_eq(fixture_tmp_new("policy/tree", &t), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 0);

        /* a file becomes invalid: its last good version stays in force, the error is reported */
        ck_assert_int_eq(fixture_write_string(t->fd, "etc/vfiopmd/policy.d/50-gpu.json",
                                              "{ \"match\": { \"vendor\": \"10de\" }, \"rearm_delay_ms\": -1 }\n"), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 1);
        ck_assert_str_eq(set->errors[0],
                         ETC "50-gpu.json: rearm_delay_ms: expected an integer from 0 to 3600000, got -1");
        ck_assert_ptr_null(set->errors[1]);
        e = find_entry(set, "50-gpu.json");
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(e->error, set->errors[0]);
        ck_assert_ptr_nonnull(e->file);
        p = evaluate(set, &policy_test_gpu);
        ck_assert_uint_eq(p->values.rearm_delay_ms, 3000);
        assert_policy_source(p, POLICY_KEY_REARM_DELAY_MS, ETC "50-gpu.json", 0);
        ck_assert_int_eq(p->values.mode, POLICY_MODE_WAKEUP);
        p = effective_policy_free(p);

        /* and stays in force across further failing reloads */
        ck_assert_int_eq(reload(set, t->fd, dirs), 1);
        p = evaluate(set, &policy_test_gpu);
        ck_assert_uint_eq(p->values.rearm_delay_ms, 3000);
        p = effective_policy_free(p);

        /* a new invalid file contributes its error and nothing else */
        ck_assert_int_eq(fixture_write_string(t->fd, "run/vfiopmd/policy.d/55-new.json",
                                              "{ \"mode\": \"sleep\" }\n"), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 2);
        ck_assert_str_eq(set->errors[0],
                         ETC "50-gpu.json: rearm_delay_ms: expected an integer from 0 to 3600000, got -1");
        ck_assert_str_eq(set->errors[1],
                         RUN "55-new.json: mode: expected \"kernel\", \"on\", \"auto\" or \"wakeup\", got \"sleep\"");
        e = find_entry(set, "55-new.json");
        ck_assert_ptr_nonnull(e);
        ck_assert_ptr_null(e->file);
        ck_assert_uint_eq(set->n_files, 5);

        /* fixed: the new content replaces the old one entirely (no mode any more) */
        ck_assert_int_eq(fixture_write_string(t->fd, "etc/vfiopmd/policy.d/50-gpu.json",
                                              "[ {}, { \"match\": { \"vendor\": \"10de\" }, \"rearm_delay_ms\": 7000 } ]\n"), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 1);
        ck_assert_str_eq(set->errors[0],
                         RUN "55-new.json: mode: expected \"kernel\", \"on\", \"auto\" or \"wakeup\", got \"sleep\"");
        p = evaluate(set, &policy_test_gpu);
        ck_assert_uint_eq(p->values.rearm_delay_ms, 7000);
        assert_policy_source(p, POLICY_KEY_REARM_DELAY_MS, ETC "50-gpu.json", 1);
        ck_assert_int_eq(p->values.mode, POLICY_MODE_ON);
        assert_policy_source(p, POLICY_KEY_MODE, RUN "10-early.json", 0);
        ck_assert_uint_eq(p->values.flap_max_wakes, 3);
        p = effective_policy_free(p);

        /* removed files are gone, with their errors */
        ck_assert_int_eq(unlinkat(t->fd, "run/vfiopmd/policy.d/80-override.json", 0), 0);
        ck_assert_int_eq(unlinkat(t->fd, "run/vfiopmd/policy.d/55-new.json", 0), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 0);
        ck_assert_ptr_null(find_entry(set, "80-override.json"));
        ck_assert_ptr_null(find_entry(set, "55-new.json"));
        p = evaluate(set, &policy_test_gpu);
        ck_assert_uint_eq(p->values.flap_max_wakes, 10);
        assert_policy_source(p, POLICY_KEY_FLAP_MAX_WAKES, USR "00-defaults.json", 0);
        p = effective_policy_free(p);

        /* masked with /dev/null: /etc's and /usr/lib's 50-gpu.json both out, no error */
        ck_assert_int_eq(unlinkat(t->fd, "etc/vfiopmd/policy.d/50-gpu.json", 0), 0);
        ck_assert_int_eq(symlinkat("/dev/null", t->fd, "etc/vfiopmd/policy.d/50-gpu.json"), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 0);
        e = find_entry(set, "50-gpu.json");
        ck_assert(e->masked);
        ck_assert_ptr_null(e->file);
        p = evaluate(set, &policy_test_gpu);
        ck_assert_uint_eq(p->values.rearm_delay_ms, 1000);
        assert_policy_source(p, POLICY_KEY_REARM_DELAY_MS, USR "00-defaults.json", 0);
        p = effective_policy_free(p);

        /* unmasked: /usr/lib's comes back */
        ck_assert_int_eq(unlinkat(t->fd, "etc/vfiopmd/policy.d/50-gpu.json", 0), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 0);
        p = evaluate(set, &policy_test_gpu);
        ck_assert_uint_eq(p->values.rearm_delay_ms, 5000);
        assert_policy_source(p, POLICY_KEY_REARM_DELAY_MS, USR "50-gpu.json", 0);
        ck_assert_int_eq(p->values.d3cold, POLICY_D3COLD_DENY);
        p = effective_policy_free(p);

        /* an invalid file in a later directory masks a good one: the last good version kept is
         * that of the same path only, so nothing of 50-gpu.json is in force */
        ck_assert_int_eq(fixture_write_string(t->fd, "run/vfiopmd/policy.d/50-gpu.json", "{ \"mode\": 1 }"), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 1);
        ck_assert_str_eq(set->errors[0],
                         RUN "50-gpu.json: mode: expected \"kernel\", \"on\", \"auto\" or \"wakeup\", got 1");
        p = evaluate(set, &policy_test_gpu);
        ck_assert_uint_eq(p->values.rearm_delay_ms, 1000);
        ck_assert_int_eq(p->values.d3cold, POLICY_D3COLD_LEAVE);
        p = effective_policy_free(p);

        /* a file that was masked and becomes invalid has no last good version either */
        ck_assert_int_eq(unlinkat(t->fd, "etc/vfiopmd/policy.d/60-sim.json", 0), 0);
        ck_assert_int_eq(fixture_write_string(t->fd, "etc/vfiopmd/policy.d/60-sim.json", ""), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 2);
        ck_assert_str_eq(set->errors[1], ETC "60-sim.json: file is empty");
        e = find_entry(set, "60-sim.json");
        ck_assert(!e->masked);
        ck_assert_ptr_null(e->file);
}
END_TEST

START_TEST(test_dir_unreadable) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        _cleanup_(policy_set_freep) PolicySet *set = set_new();
        _cleanup_(strv_freep) char **dirs = default_dirs();
        EffectivePolicy *p;
        const PolicySetEntry *e;

        ck_assert_int_eq(fixture_tmp_new("policy/tree", &t), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 0);

        /* /etc/vfiopmd/policy.d is no directory any more: what it had stays in force */
        ck_assert_int_eq(renameat(t->fd, "etc/vfiopmd/policy.d", t->fd, "etc/vfiopmd/policy.d.off"), 0);
        ck_assert_int_eq(fixture_write_string(t->fd, "etc/vfiopmd/policy.d", "oops"), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 1);
        ck_assert_str_eq(set->errors[0], "/etc/vfiopmd/policy.d: cannot open directory: Not a directory");
        e = find_entry(set, "60-sim.json");
        ck_assert(e && e->masked);
        p = evaluate(set, &policy_test_gpu);
        ck_assert_uint_eq(p->values.rearm_delay_ms, 3000);
        assert_policy_source(p, POLICY_KEY_REARM_DELAY_MS, ETC "50-gpu.json", 0);
        p = effective_policy_free(p);

        /* back: and a directory that is gone is simply empty */
        ck_assert_int_eq(unlinkat(t->fd, "etc/vfiopmd/policy.d", 0), 0);
        ck_assert_int_eq(renameat(t->fd, "etc/vfiopmd/policy.d.off", t->fd, "etc/vfiopmd/policy.d"), 0);
        ck_assert_int_eq(renameat(t->fd, "run/vfiopmd/policy.d", t->fd, "run/vfiopmd/gone"), 0);
        ck_assert_int_eq(reload(set, t->fd, dirs), 0);
        ck_assert_ptr_null(find_entry(set, "10-early.json"));
        ck_assert_uint_eq(set->n_entries, 4);
        p = evaluate(set, &policy_test_gpu);
        ck_assert_uint_eq(p->values.rearm_delay_ms, 3000);
        ck_assert_uint_eq(p->values.flap_max_wakes, 10);
        p = effective_policy_free(p);
}
END_TEST

Suite *policy_file_suite(void) {
        Suite *s = suite_create("policy-file");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_parse_object);
        tcase_add_test(tc, test_parse_array);
        tcase_add_test(tc, test_parse_ranges);
        tcase_add_test(tc, test_parse_errors);
        tcase_add_test(tc, test_parse_whole_or_nothing);
        tcase_add_test(tc, test_parse_size_limit);
        tcase_add_test(tc, test_good_fixtures);
        suite_add_tcase(s, tc);

        tc = tcase_create("corpus");
        tcase_add_test(tc, test_bad_corpus);
        tcase_add_test(tc, test_bad_corpus_loaded);
        tcase_add_test(tc, test_bad_generated);
        tcase_set_timeout(tc, 30);
        suite_add_tcase(s, tc);

        tc = tcase_create("scale");
        tcase_add_test(tc, test_many_keys);
        tcase_set_timeout(tc, 120);     /* what the quadratic check took, to see its count */
        suite_add_tcase(s, tc);

        tc = tcase_create("dirs");
        tcase_add_test(tc, test_dirs_from_string);
        tcase_add_test(tc, test_tree);
        tcase_add_test(tc, test_missing_dirs);
        tcase_add_test(tc, test_reload);
        tcase_add_test(tc, test_dir_unreadable);
        suite_add_tcase(s, tc);

        return s;
}
