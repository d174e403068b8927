#include <check.h>

#include "policy-helpers.h"

const DeviceFacts policy_test_gpu = {
        .name = "0000:01:00.0",
        .vendor = "10de",
        .device_id = "2204",
        .subsystem_vendor = "1458",
        .subsystem_device = "403b",
        .class = "030000",
        .driver = "vfio-pci",
        .iommu_group = 12,
};

void assert_policy_source(const EffectivePolicy *p, PolicyKey k, const char *file, size_t rule) {
        if (!file) {
                ck_assert_msg(!p->source[k].file, "%s: expected the default, got %s",
                              policy_key_to_string(k), p->source[k].file);
                return;
        }
        ck_assert_msg(p->source[k].file, "%s: expected %s, got the default", policy_key_to_string(k), file);
        ck_assert_str_eq(p->source[k].file, file);
        ck_assert_uint_eq(p->source[k].rule, rule);
}
