#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "policy-file.h"
#include "policy.h"
#include "policy-helpers.h"
#include "suites.h"

/* The engine alone: rules are built in memory, no JSON (except for effective_policy_to_json). */

/* as sysfs prints them: 0x prefix, and a vendor in capitals */
static const DeviceFacts nic = {
        .name = "0000:00:03.0",
        .vendor = "0x8086",
        .device_id = "0x10D3",
        .subsystem_vendor = "0x8086",
        .subsystem_device = "0xA01F",
        .class = "0x020000",
        .driver = "vfio-pci",
        .iommu_group = 3,
};

/* a platform device: no PCI IDs, no class */
static const DeviceFacts sim = {
        .name = "vfio-pm-sim.3",
        .driver = "vfio-pm-sim",
        .iommu_group = 13,
};

/* nothing known but the name */
static const DeviceFacts bare = {
        .name = "0000:05:00.0",
        .iommu_group = -1,
};

static PolicyFile *file_new(const char *path) {
        PolicyFile *f = NULL;

        ck_assert_int_eq(policy_file_new(path, &f), 0);
        ck_assert_ptr_nonnull(f);
        return f;
}

static PolicyRule *rule_add(PolicyFile *f) {
        PolicyRule *r = NULL;

        ck_assert_int_eq(policy_file_add_rule(f, &r), 0);
        ck_assert_ptr_nonnull(r);
        return r;
}

#define RULE_SET(rule, key, field, value)                       \
        do {                                                    \
                (rule)->set[key] = true;                        \
                (rule)->values.field = (value);                 \
        } while (0)

static EffectivePolicy *evaluate(PolicyFile *const *files, size_t n, const DeviceFacts *dev) {
        EffectivePolicy *p = NULL;

        ck_assert_int_eq(policy_evaluate(files, n, dev, &p), 0);
        ck_assert_ptr_nonnull(p);
        return p;
}

static bool matches(const PolicyMatch *m, const DeviceFacts *dev) {
        return policy_match_device(m, dev);
}

START_TEST(test_string_tables) {
        static const char *const modes[] = { "kernel", "on", "auto", "wakeup" };
        static const char *const keys[] = {
                "mode", "arm_delay_ms", "rearm_delay_ms", "flap_max_wakes", "flap_window_s",
                "flap_hold_s", "d3cold", "power_active_w", "power_low_w",
        };
        static const char *const match_keys[] = {
                "device", "vendor", "device_id", "subsystem_vendor", "subsystem_device", "class",
                "driver", "iommu_group",
        };
        static const char *const d3cold[] = { "null", "false", "true" };

        ck_assert_uint_eq(ELEMENTSOF(modes), _POLICY_MODE_MAX);
        for (PolicyMode m = 0; m < _POLICY_MODE_MAX; m++) {
                ck_assert_str_eq(policy_mode_to_string(m), modes[m]);
                ck_assert_int_eq(policy_mode_from_string(modes[m]), m);
        }
        ck_assert_uint_eq(ELEMENTSOF(keys), _POLICY_KEY_MAX);
        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++) {
                ck_assert_str_eq(policy_key_to_string(k), keys[k]);
                ck_assert_int_eq(policy_key_from_string(keys[k]), k);
        }
        ck_assert_uint_eq(ELEMENTSOF(match_keys), _POLICY_MATCH_MAX);
        for (PolicyMatchKey k = 0; k < _POLICY_MATCH_MAX; k++) {
                ck_assert_str_eq(policy_match_key_to_string(k), match_keys[k]);
                ck_assert_int_eq(policy_match_key_from_string(match_keys[k]), k);
        }
        ck_assert_uint_eq(ELEMENTSOF(d3cold), _POLICY_D3COLD_MAX);
        for (PolicyD3cold d = 0; d < _POLICY_D3COLD_MAX; d++) {
                ck_assert_str_eq(policy_d3cold_to_string(d), d3cold[d]);
                ck_assert_int_eq(policy_d3cold_from_string(d3cold[d]), d);
        }

        ck_assert_int_eq(policy_mode_from_string("Wakeup"), -EINVAL);
        ck_assert_int_eq(policy_mode_from_string(""), -EINVAL);
        ck_assert_int_eq(policy_mode_from_string(NULL), -EINVAL);
        ck_assert_int_eq(policy_key_from_string("match"), -EINVAL);
        ck_assert_int_eq(policy_match_key_from_string("mode"), -EINVAL);
        ck_assert_ptr_null(policy_mode_to_string(_POLICY_MODE_MAX));
        ck_assert_ptr_null(policy_mode_to_string(_POLICY_MODE_INVALID));
        ck_assert_ptr_null(policy_key_to_string(_POLICY_KEY_MAX));
        ck_assert_ptr_null(policy_match_key_to_string(-1));
        ck_assert_ptr_null(policy_d3cold_to_string(_POLICY_D3COLD_MAX));
}
END_TEST

START_TEST(test_defaults) {
        _cleanup_(effective_policy_freep) EffectivePolicy *none = NULL, *unmatched = NULL;
        _cleanup_(policy_file_unrefp) PolicyFile *f = file_new("/etc/vfiopmd/policy.d/50-x.json");
        const PolicyValues *d = policy_defaults();
        PolicyRule *r;

        /* SPEC §2 */
        ck_assert_int_eq(d->mode, POLICY_MODE_KERNEL);
        ck_assert_uint_eq(d->arm_delay_ms, 0);
        ck_assert_uint_eq(d->rearm_delay_ms, 1000);
        ck_assert_uint_eq(d->flap_max_wakes, 10);
        ck_assert_uint_eq(d->flap_window_s, 60);
        ck_assert_uint_eq(d->flap_hold_s, 300);
        ck_assert_int_eq(d->d3cold, POLICY_D3COLD_LEAVE);
        ck_assert(isnan(d->power_active_w));
        ck_assert(isnan(d->power_low_w));

        none = evaluate(NULL, 0, &policy_test_gpu);
        ck_assert(policy_values_equal(&none->values, d));
        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++)
                assert_policy_source(none, k, NULL, 0);

        /* a rule that does not match changes nothing */
        r = rule_add(f);
        strcpy(r->match.vendor, "1002");
        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_WAKEUP);
        unmatched = evaluate(&f, 1, &policy_test_gpu);
        ck_assert(policy_values_equal(&unmatched->values, d));
        assert_policy_source(unmatched, POLICY_KEY_MODE, NULL, 0);
}
END_TEST

START_TEST(test_match_hex_fields) {
        PolicyMatch m = { .iommu_group = -1 };

        /* each field alone: match, other value, a device without it */
        strcpy(m.vendor, "10de");
        ck_assert(matches(&m, &policy_test_gpu));
        ck_assert(!matches(&m, &nic));
        ck_assert(!matches(&m, &sim));
        ck_assert(!matches(&m, &bare));
        strcpy(m.vendor, "8086");
        ck_assert(matches(&m, &nic));           /* "0x8086" on the device's side */
        m.vendor[0] = '\0';

        strcpy(m.device_id, "2204");
        ck_assert(matches(&m, &policy_test_gpu));
        ck_assert(!matches(&m, &nic));
        ck_assert(!matches(&m, &sim));
        strcpy(m.device_id, "10d3");
        ck_assert(matches(&m, &nic));           /* "0x10D3": any case */
        strcpy(m.device_id, "10D3");
        ck_assert(matches(&m, &nic));
        m.device_id[0] = '\0';

        strcpy(m.subsystem_vendor, "1458");
        ck_assert(matches(&m, &policy_test_gpu));
        ck_assert(!matches(&m, &nic));
        ck_assert(!matches(&m, &sim));
        m.subsystem_vendor[0] = '\0';

        strcpy(m.subsystem_device, "403B");
        ck_assert(matches(&m, &policy_test_gpu));
        ck_assert(!matches(&m, &nic));
        ck_assert(!matches(&m, &sim));
        strcpy(m.subsystem_device, "a01f");
        ck_assert(matches(&m, &nic));
        ck_assert(!matches(&m, &policy_test_gpu));
        m.subsystem_device[0] = '\0';

        /* nothing left: matches all */
        ck_assert(matches(&m, &policy_test_gpu));
        ck_assert(matches(&m, &sim));
        ck_assert(matches(&m, &bare));
}
END_TEST

START_TEST(test_match_class) {
        static const DeviceFacts vga = { .name = "a", .class = "030000", .iommu_group = -1 };
        static const DeviceFacts xgpu = { .name = "b", .class = "0x030200", .iommu_group = -1 };
        static const DeviceFacts usb = { .name = "c", .class = "0C0330", .iommu_group = -1 };
        PolicyMatch m = { .iommu_group = -1 };

        /* 2 digits: the base class */
        strcpy(m.class, "03");
        ck_assert(matches(&m, &vga));
        ck_assert(matches(&m, &xgpu));
        ck_assert(!matches(&m, &usb));
        ck_assert(!matches(&m, &nic));
        ck_assert(!matches(&m, &sim));          /* no class at all */

        /* 4: and the subclass */
        strcpy(m.class, "0302");
        ck_assert(!matches(&m, &vga));
        ck_assert(matches(&m, &xgpu));
        strcpy(m.class, "0c03");
        ck_assert(matches(&m, &usb));
        strcpy(m.class, "0200");
        ck_assert(matches(&m, &nic));

        /* 6: and the programming interface */
        strcpy(m.class, "0c0330");
        ck_assert(matches(&m, &usb));
        strcpy(m.class, "0c0320");
        ck_assert(!matches(&m, &usb));
        strcpy(m.class, "030000");
        ck_assert(matches(&m, &vga));
        ck_assert(!matches(&m, &xgpu));

        /* a prefix of the class, not a substring */
        strcpy(m.class, "00");
        ck_assert(!matches(&m, &vga));
}
END_TEST

START_TEST(test_match_names) {
        static const DeviceFacts unbound = { .name = "0000:02:00.0", .iommu_group = 7 };
        PolicyMatch m = { .iommu_group = -1 };

        m.device = (char *) "0000:01:00.0";
        ck_assert(matches(&m, &policy_test_gpu));
        ck_assert(!matches(&m, &nic));
        ck_assert(!matches(&m, &sim));
        m.device = (char *) "vfio-pm-sim.3";
        ck_assert(matches(&m, &sim));
        m.device = (char *) "vfio-pm-sim";      /* whole names only */
        ck_assert(!matches(&m, &sim));
        m.device = (char *) "0000:01:00.0 ";
        ck_assert(!matches(&m, &policy_test_gpu));
        m.device = NULL;

        m.driver = (char *) "vfio-pci";
        ck_assert(matches(&m, &policy_test_gpu));
        ck_assert(matches(&m, &nic));
        ck_assert(!matches(&m, &sim));
        ck_assert(!matches(&m, &unbound));
        m.driver = (char *) "VFIO-PCI";         /* names are exact */
        ck_assert(!matches(&m, &policy_test_gpu));
        m.driver = (char *) "vfio-pm-sim";
        ck_assert(matches(&m, &sim));
        m.driver = NULL;

        m.iommu_group = 12;
        ck_assert(matches(&m, &policy_test_gpu));
        ck_assert(!matches(&m, &nic));
        ck_assert(!matches(&m, &bare));         /* no group */
        m.iommu_group = 0;
        ck_assert(!matches(&m, &bare));
        ck_assert(!matches(&m, &policy_test_gpu));
        m.iommu_group = 13;
        ck_assert(matches(&m, &sim));
}
END_TEST

START_TEST(test_match_all_fields) {
        PolicyMatch m = {
                .device = (char *) "0000:01:00.0",
                .vendor = "10de",
                .device_id = "2204",
                .subsystem_vendor = "1458",
                .subsystem_device = "403b",
                .class = "0300",
                .driver = (char *) "vfio-pci",
                .iommu_group = 12,
        };
        DeviceFacts d;

        ck_assert(matches(&m, &policy_test_gpu));

        /* every field must match: change any one on the device's side */
        d = policy_test_gpu, d.name = "0000:01:00.1";
        ck_assert(!matches(&m, &d));
        d = policy_test_gpu, d.vendor = "10df";
        ck_assert(!matches(&m, &d));
        d = policy_test_gpu, d.device_id = NULL;
        ck_assert(!matches(&m, &d));
        d = policy_test_gpu, d.subsystem_vendor = "1459";
        ck_assert(!matches(&m, &d));
        d = policy_test_gpu, d.subsystem_device = "403c";
        ck_assert(!matches(&m, &d));
        d = policy_test_gpu, d.class = "030200";
        ck_assert(!matches(&m, &d));
        d = policy_test_gpu, d.driver = "nouveau";
        ck_assert(!matches(&m, &d));
        d = policy_test_gpu, d.iommu_group = 11;
        ck_assert(!matches(&m, &d));
}
END_TEST

START_TEST(test_empty_match_matches_all) {
        _cleanup_(policy_file_unrefp) PolicyFile *f = file_new("/run/vfiopmd/policy.d/10-all.json");
        const DeviceFacts *devs[] = { &policy_test_gpu, &nic, &sim, &bare };
        PolicyRule *r = rule_add(f);

        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_ON);
        for (size_t i = 0; i < ELEMENTSOF(devs); i++) {
                _cleanup_(effective_policy_freep) EffectivePolicy *p = evaluate(&f, 1, devs[i]);

                ck_assert_int_eq(p->values.mode, POLICY_MODE_ON);
                assert_policy_source(p, POLICY_KEY_MODE, "/run/vfiopmd/policy.d/10-all.json", 0);
        }
}
END_TEST

START_TEST(test_every_key) {
        _cleanup_(policy_file_unrefp) PolicyFile *f = file_new("/etc/vfiopmd/policy.d/50-all.json");
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        PolicyRule *r = rule_add(f);

        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_WAKEUP);
        RULE_SET(r, POLICY_KEY_ARM_DELAY_MS, arm_delay_ms, 250);
        RULE_SET(r, POLICY_KEY_REARM_DELAY_MS, rearm_delay_ms, 5000);
        RULE_SET(r, POLICY_KEY_FLAP_MAX_WAKES, flap_max_wakes, 4);
        RULE_SET(r, POLICY_KEY_FLAP_WINDOW_S, flap_window_s, 30);
        RULE_SET(r, POLICY_KEY_FLAP_HOLD_S, flap_hold_s, 600);
        RULE_SET(r, POLICY_KEY_D3COLD, d3cold, POLICY_D3COLD_DENY);
        RULE_SET(r, POLICY_KEY_POWER_ACTIVE_W, power_active_w, 35.5);
        RULE_SET(r, POLICY_KEY_POWER_LOW_W, power_low_w, 2.0);

        p = evaluate(&f, 1, &policy_test_gpu);
        ck_assert_int_eq(p->values.mode, POLICY_MODE_WAKEUP);
        ck_assert_uint_eq(p->values.arm_delay_ms, 250);
        ck_assert_uint_eq(p->values.rearm_delay_ms, 5000);
        ck_assert_uint_eq(p->values.flap_max_wakes, 4);
        ck_assert_uint_eq(p->values.flap_window_s, 30);
        ck_assert_uint_eq(p->values.flap_hold_s, 600);
        ck_assert_int_eq(p->values.d3cold, POLICY_D3COLD_DENY);
        ck_assert_double_eq(p->values.power_active_w, 35.5);
        ck_assert_double_eq(p->values.power_low_w, 2.0);
        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++) {
                assert_policy_source(p, k, "/etc/vfiopmd/policy.d/50-all.json", 0);
                ck_assert(!policy_values_equal_key(&p->values, policy_defaults(), k));
        }
}
END_TEST

START_TEST(test_last_match_wins_in_file) {
        _cleanup_(policy_file_unrefp) PolicyFile *f = file_new("/etc/vfiopmd/policy.d/50-gpu.json");
        _cleanup_(effective_policy_freep) EffectivePolicy *g = NULL, *n = NULL;
        PolicyRule *r;

        /* [0] every device */
        r = rule_add(f);
        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_AUTO);
        RULE_SET(r, POLICY_KEY_REARM_DELAY_MS, rearm_delay_ms, 2000);
        RULE_SET(r, POLICY_KEY_D3COLD, d3cold, POLICY_D3COLD_ALLOW);
        RULE_SET(r, POLICY_KEY_POWER_LOW_W, power_low_w, 1.5);
        /* [1] GPUs */
        r = rule_add(f);
        strcpy(r->match.class, "03");
        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_WAKEUP);
        RULE_SET(r, POLICY_KEY_ARM_DELAY_MS, arm_delay_ms, 100);
        /* [2] not matching the GPU: changes nothing for it */
        r = rule_add(f);
        strcpy(r->match.vendor, "8086");
        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_ON);
        RULE_SET(r, POLICY_KEY_REARM_DELAY_MS, rearm_delay_ms, 9);
        /* [3] GPUs again: an explicit null is a value like any other */
        r = rule_add(f);
        strcpy(r->match.vendor, "10de");
        RULE_SET(r, POLICY_KEY_D3COLD, d3cold, POLICY_D3COLD_LEAVE);
        RULE_SET(r, POLICY_KEY_POWER_LOW_W, power_low_w, NAN);
        RULE_SET(r, POLICY_KEY_ARM_DELAY_MS, arm_delay_ms, 200);

        g = evaluate(&f, 1, &policy_test_gpu);
        ck_assert_int_eq(g->values.mode, POLICY_MODE_WAKEUP);
        assert_policy_source(g, POLICY_KEY_MODE, f->path, 1);
        ck_assert_uint_eq(g->values.arm_delay_ms, 200);
        assert_policy_source(g, POLICY_KEY_ARM_DELAY_MS, f->path, 3);
        ck_assert_uint_eq(g->values.rearm_delay_ms, 2000);
        assert_policy_source(g, POLICY_KEY_REARM_DELAY_MS, f->path, 0);
        ck_assert_int_eq(g->values.d3cold, POLICY_D3COLD_LEAVE);
        assert_policy_source(g, POLICY_KEY_D3COLD, f->path, 3);
        ck_assert(isnan(g->values.power_low_w));
        assert_policy_source(g, POLICY_KEY_POWER_LOW_W, f->path, 3);
        ck_assert_uint_eq(g->values.flap_hold_s, 300);
        assert_policy_source(g, POLICY_KEY_FLAP_HOLD_S, NULL, 0);

        n = evaluate(&f, 1, &nic);
        ck_assert_int_eq(n->values.mode, POLICY_MODE_ON);
        assert_policy_source(n, POLICY_KEY_MODE, f->path, 2);
        ck_assert_uint_eq(n->values.rearm_delay_ms, 9);
        assert_policy_source(n, POLICY_KEY_REARM_DELAY_MS, f->path, 2);
        ck_assert_uint_eq(n->values.arm_delay_ms, 0);
        assert_policy_source(n, POLICY_KEY_ARM_DELAY_MS, NULL, 0);
        ck_assert_int_eq(n->values.d3cold, POLICY_D3COLD_ALLOW);
        assert_policy_source(n, POLICY_KEY_D3COLD, f->path, 0);
        ck_assert_double_eq(n->values.power_low_w, 1.5);
}
END_TEST

START_TEST(test_order_across_files) {
        _cleanup_(policy_file_unrefp) PolicyFile *a = file_new("/usr/lib/vfiopmd/policy.d/10-a.json");
        _cleanup_(policy_file_unrefp) PolicyFile *b = file_new("/etc/vfiopmd/policy.d/20-b.json");
        _cleanup_(effective_policy_freep) EffectivePolicy *ab = NULL, *ba = NULL;
        PolicyRule *r;

        r = rule_add(a);
        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_WAKEUP);
        RULE_SET(r, POLICY_KEY_FLAP_WINDOW_S, flap_window_s, 10);
        r = rule_add(a);
        RULE_SET(r, POLICY_KEY_POWER_ACTIVE_W, power_active_w, 50);

        rule_add(b);    /* sets nothing */
        r = rule_add(b);
        r->match.iommu_group = 12;
        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_AUTO);
        RULE_SET(r, POLICY_KEY_POWER_ACTIVE_W, power_active_w, 60);

        ab = evaluate((PolicyFile *[]) { a, b }, 2, &policy_test_gpu);
        ck_assert_int_eq(ab->values.mode, POLICY_MODE_AUTO);
        assert_policy_source(ab, POLICY_KEY_MODE, b->path, 1);
        ck_assert_double_eq(ab->values.power_active_w, 60);
        assert_policy_source(ab, POLICY_KEY_POWER_ACTIVE_W, b->path, 1);
        ck_assert_uint_eq(ab->values.flap_window_s, 10);
        assert_policy_source(ab, POLICY_KEY_FLAP_WINDOW_S, a->path, 0);
        /* each path once a verdict: the keys one file won share it */
        ck_assert_ptr_eq(ab->source[POLICY_KEY_MODE].file, ab->source[POLICY_KEY_POWER_ACTIVE_W].file);
        ck_assert_ptr_ne(ab->source[POLICY_KEY_MODE].file, ab->source[POLICY_KEY_FLAP_WINDOW_S].file);
        ck_assert_ptr_ne(ab->source[POLICY_KEY_MODE].file, b->path);

        /* the caller's order decides, not the names */
        ba = evaluate((PolicyFile *[]) { b, a }, 2, &policy_test_gpu);
        ck_assert_int_eq(ba->values.mode, POLICY_MODE_WAKEUP);
        assert_policy_source(ba, POLICY_KEY_MODE, a->path, 0);
        ck_assert_double_eq(ba->values.power_active_w, 50);
        assert_policy_source(ba, POLICY_KEY_POWER_ACTIVE_W, a->path, 1);
}
END_TEST

START_TEST(test_result_outlives_files) {
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        PolicyFile *f = file_new("/etc/vfiopmd/policy.d/gone.json");
        PolicyRule *r = rule_add(f);

        r->match.device = strdup("0000:01:00.0");
        ck_assert_ptr_nonnull(r->match.device);
        RULE_SET(r, POLICY_KEY_FLAP_HOLD_S, flap_hold_s, 5);
        p = evaluate(&f, 1, &policy_test_gpu);

        /* a reload drops the file; the verdict keeps its own copy of the name */
        ck_assert_ptr_null(policy_file_unref(f));
        ck_assert_uint_eq(p->values.flap_hold_s, 5);
        assert_policy_source(p, POLICY_KEY_FLAP_HOLD_S, "/etc/vfiopmd/policy.d/gone.json", 0);
}
END_TEST

START_TEST(test_file_refcount) {
        PolicyFile *f = file_new("x.json");

        ck_assert_ptr_eq(policy_file_ref(f), f);
        ck_assert_uint_eq(f->n_ref, 2);
        ck_assert_ptr_null(policy_file_unref(f));
        ck_assert_uint_eq(f->n_ref, 1);
        ck_assert_ptr_null(policy_file_unref(f));
        ck_assert_ptr_null(policy_file_unref(NULL));
        ck_assert_ptr_null(policy_file_ref(NULL));
        ck_assert_ptr_null(effective_policy_free(NULL));
}
END_TEST

START_TEST(test_values_equal) {
        PolicyValues a = *policy_defaults(), b = *policy_defaults();

        ck_assert(policy_values_equal(&a, &b));         /* NAN == NAN: both null */
        b.power_low_w = 0;
        ck_assert(!policy_values_equal(&a, &b));
        ck_assert(!policy_values_equal_key(&a, &b, POLICY_KEY_POWER_LOW_W));
        ck_assert(policy_values_equal_key(&a, &b, POLICY_KEY_POWER_ACTIVE_W));
        policy_values_copy_key(&a, &b, POLICY_KEY_POWER_LOW_W);
        ck_assert(policy_values_equal(&a, &b));

        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++) {
                PolicyValues c = *policy_defaults();

                switch (k) {
                case POLICY_KEY_MODE: c.mode = POLICY_MODE_ON; break;
                case POLICY_KEY_ARM_DELAY_MS: c.arm_delay_ms = 1; break;
                case POLICY_KEY_REARM_DELAY_MS: c.rearm_delay_ms = 1; break;
                case POLICY_KEY_FLAP_MAX_WAKES: c.flap_max_wakes = 1; break;
                case POLICY_KEY_FLAP_WINDOW_S: c.flap_window_s = 1; break;
                case POLICY_KEY_FLAP_HOLD_S: c.flap_hold_s = 1; break;
                case POLICY_KEY_D3COLD: c.d3cold = POLICY_D3COLD_ALLOW; break;
                case POLICY_KEY_POWER_ACTIVE_W: c.power_active_w = 1; break;
                case POLICY_KEY_POWER_LOW_W: c.power_low_w = 1; break;
                case _POLICY_KEY_MAX:
                case _POLICY_KEY_INVALID: break;
                }
                ck_assert_msg(!policy_values_equal_key(&c, policy_defaults(), k), "%s", policy_key_to_string(k));
                for (PolicyKey o = 0; o < _POLICY_KEY_MAX; o++)
                        if (o != k)
                                ck_assert(policy_values_equal_key(&c, policy_defaults(), o));
                a = *policy_defaults();
                policy_values_copy_key(&a, &c, k);
                ck_assert(policy_values_equal(&a, &c));
        }
}
END_TEST

START_TEST(test_evaluate_invalid) {
        EffectivePolicy *p = (EffectivePolicy *) 0x1;

        ck_assert_int_eq(policy_evaluate(NULL, 1, &policy_test_gpu, &p), -EINVAL);
        ck_assert_int_eq(policy_evaluate(NULL, 0, NULL, &p), -EINVAL);
        ck_assert_int_eq(policy_evaluate(NULL, 0, &policy_test_gpu, NULL), -EINVAL);
        ck_assert_ptr_eq(p, (EffectivePolicy *) 0x1);
        ck_assert_int_eq(policy_file_new(NULL, (PolicyFile **) &p), -EINVAL);
}
END_TEST

START_TEST(test_json_defaults) {
        _cleanup_(effective_policy_freep) EffectivePolicy *p = evaluate(NULL, 0, &sim);
        _cleanup_free_ char *json = NULL;

        ck_assert_int_eq(effective_policy_to_json(p, &json), 0);
        ck_assert_str_eq(json,
                "{\"mode\":{\"value\":\"kernel\",\"source\":null,\"rule\":null},"
                "\"arm_delay_ms\":{\"value\":0,\"source\":null,\"rule\":null},"
                "\"rearm_delay_ms\":{\"value\":1000,\"source\":null,\"rule\":null},"
                "\"flap_max_wakes\":{\"value\":10,\"source\":null,\"rule\":null},"
                "\"flap_window_s\":{\"value\":60,\"source\":null,\"rule\":null},"
                "\"flap_hold_s\":{\"value\":300,\"source\":null,\"rule\":null},"
                "\"d3cold\":{\"value\":null,\"source\":null,\"rule\":null},"
                "\"power_active_w\":{\"value\":null,\"source\":null,\"rule\":null},"
                "\"power_low_w\":{\"value\":null,\"source\":null,\"rule\":null}}");
}
END_TEST

START_TEST(test_json_sources) {
        _cleanup_(policy_file_unrefp) PolicyFile *a = file_new("/usr/lib/vfiopmd/policy.d/00-defaults.json");
        _cleanup_(policy_file_unrefp) PolicyFile *b = file_new("/etc/vfiopmd/policy.d/50-gpu.json");
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        _cleanup_free_ char *json = NULL;
        PolicyRule *r;

        r = rule_add(a);
        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_KERNEL);
        RULE_SET(r, POLICY_KEY_FLAP_HOLD_S, flap_hold_s, 300);
        rule_add(b);
        r = rule_add(b);
        strcpy(r->match.vendor, "10de");
        RULE_SET(r, POLICY_KEY_MODE, mode, POLICY_MODE_WAKEUP);
        RULE_SET(r, POLICY_KEY_REARM_DELAY_MS, rearm_delay_ms, 5000);
        RULE_SET(r, POLICY_KEY_D3COLD, d3cold, POLICY_D3COLD_DENY);
        RULE_SET(r, POLICY_KEY_POWER_ACTIVE_W, power_active_w, 35.5);
        RULE_SET(r, POLICY_KEY_POWER_LOW_W, power_low_w, 0.1);
        RULE_SET(r, POLICY_KEY_FLAP_MAX_WAKES, flap_max_wakes, 1000000);

        p = evaluate((PolicyFile *[]) { a, b }, 2, &policy_test_gpu);
        ck_assert_int_eq(effective_policy_to_json(p, &json), 0);
        ck_assert_str_eq(json,
                "{\"mode\":{\"value\":\"wakeup\",\"source\":\"/etc/vfiopmd/policy.d/50-gpu.json\",\"rule\":1},"
                "\"arm_delay_ms\":{\"value\":0,\"source\":null,\"rule\":null},"
                "\"rearm_delay_ms\":{\"value\":5000,\"source\":\"/etc/vfiopmd/policy.d/50-gpu.json\",\"rule\":1},"
                "\"flap_max_wakes\":{\"value\":1000000,\"source\":\"/etc/vfiopmd/policy.d/50-gpu.json\",\"rule\":1},"
                "\"flap_window_s\":{\"value\":60,\"source\":null,\"rule\":null},"
                "\"flap_hold_s\":{\"value\":300,\"source\":\"/usr/lib/vfiopmd/policy.d/00-defaults.json\",\"rule\":0},"
                "\"d3cold\":{\"value\":false,\"source\":\"/etc/vfiopmd/policy.d/50-gpu.json\",\"rule\":1},"
                "\"power_active_w\":{\"value\":35.5,\"source\":\"/etc/vfiopmd/policy.d/50-gpu.json\",\"rule\":1},"
                "\"power_low_w\":{\"value\":0.1,\"source\":\"/etc/vfiopmd/policy.d/50-gpu.json\",\"rule\":1}}");
}
END_TEST

START_TEST(test_json_values) {
        EffectivePolicy p = { .values = *policy_defaults() };
        static const struct {
                double watts;
                const char *text;
        } cases[] = {
                { 0, "0" }, { 150, "150" }, { 12.5, "12.5" }, { 0.1, "0.1" }, { 10000, "10000" },
                { 1.0 / 3, "0.3333333333333333" }, { 0.000001, "1e-06" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *json = NULL, *want = NULL;

                p.values.power_active_w = cases[i].watts;
                p.values.d3cold = POLICY_D3COLD_ALLOW;
                p.values.mode = POLICY_MODE_AUTO;
                ck_assert_int_eq(effective_policy_to_json(&p, &json), 0);
                ck_assert_int_ge(asprintf(&want, "\"power_active_w\":{\"value\":%s,", cases[i].text), 0);
                ck_assert_msg(strstr(json, want), "%s not in %s", want, json);
                ck_assert(strstr(json, "\"d3cold\":{\"value\":true,"));
                ck_assert(strstr(json, "\"mode\":{\"value\":\"auto\","));
        }

        p.values.mode = _POLICY_MODE_MAX;
        {
                char *json = (char *) "untouched";

                ck_assert_int_eq(effective_policy_to_json(&p, &json), -EINVAL);
                ck_assert_str_eq(json, "untouched");
        }
}
END_TEST

Suite *policy_suite(void) {
        Suite *s = suite_create("policy");
        TCase *tc;

        tc = tcase_create("tables");
        tcase_add_test(tc, test_string_tables);
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_values_equal);
        tcase_add_test(tc, test_file_refcount);
        suite_add_tcase(s, tc);

        tc = tcase_create("match");
        tcase_add_test(tc, test_match_hex_fields);
        tcase_add_test(tc, test_match_class);
        tcase_add_test(tc, test_match_names);
        tcase_add_test(tc, test_match_all_fields);
        tcase_add_test(tc, test_empty_match_matches_all);
        suite_add_tcase(s, tc);

        tc = tcase_create("evaluate");
        tcase_add_test(tc, test_every_key);
        tcase_add_test(tc, test_last_match_wins_in_file);
        tcase_add_test(tc, test_order_across_files);
        tcase_add_test(tc, test_result_outlives_files);
        tcase_add_test(tc, test_evaluate_invalid);
        suite_add_tcase(s, tc);

        tc = tcase_create("json");
        tcase_add_test(tc, test_json_defaults);
        tcase_add_test(tc, test_json_sources);
        tcase_add_test(tc, test_json_values);
        suite_add_tcase(s, tc);

        return s;
}
