/* What the policy harnesses check (fuzz-policy.h). */

#include <math.h>
#include <string.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "fuzz-policy.h"
#include "fuzz.h"
#include "json-util.h"
#include "macro.h"
#include "policy-file.h"

static bool lower_hex(const char *s, size_t len) {
        return strlen(s) == len && strspn(s, "0123456789abcdef") == len;
}

static bool watts_ok(double w) {
        return isnan(w) || (isfinite(w) && w >= 0);
}

static void check_values(const PolicyValues *v) {
        FUZZ_CHECK(v->mode >= 0 && v->mode < _POLICY_MODE_MAX);
        FUZZ_CHECK(v->d3cold >= 0 && v->d3cold < _POLICY_D3COLD_MAX);
        FUZZ_CHECK(v->arm_delay_ms <= 3600000 && v->rearm_delay_ms <= 3600000);
        FUZZ_CHECK(v->flap_max_wakes >= 1);
        FUZZ_CHECK(v->flap_window_s >= 1 && v->flap_window_s <= 86400 && v->flap_hold_s <= 86400);
        FUZZ_CHECK(watts_ok(v->power_active_w) && watts_ok(v->power_low_w));
}

void fuzz_check_policy_file(const PolicyFile *f) {
        FUZZ_CHECK(f && f->path && f->n_ref >= 1);
        for (size_t i = 0; i < f->n_rules; i++) {
                const PolicyRule *rule = f->rules + i;
                const PolicyMatch *m = &rule->match;
                size_t class_len = strlen(m->class);

                FUZZ_CHECK(!m->device || (m->device[0] && !strchr(m->device, '/')));
                FUZZ_CHECK(!m->driver || m->driver[0]);
                FUZZ_CHECK(m->iommu_group >= -1);
                FUZZ_CHECK(!m->vendor[0] || lower_hex(m->vendor, 4));
                FUZZ_CHECK(!m->device_id[0] || lower_hex(m->device_id, 4));
                FUZZ_CHECK(!m->subsystem_vendor[0] || lower_hex(m->subsystem_vendor, 4));
                FUZZ_CHECK(!m->subsystem_device[0] || lower_hex(m->subsystem_device, 4));
                FUZZ_CHECK(class_len % 2 == 0 && class_len <= 6 && lower_hex(m->class, class_len));
                /* what a rule does not set is not checked: its value is unused */
                PolicyValues v = *policy_defaults();
                for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++)
                        if (rule->set[k])
                                policy_values_copy_key(&v, &rule->values, k);
                check_values(&v);
        }
}

static void check_verdict(PolicyFile *const *files, size_t n_files, const DeviceFacts *dev) {
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *json = NULL;
        int r;

        r = policy_evaluate(files, n_files, dev, &p);
        FUZZ_CHECK(r >= 0);
        check_values(&p->values);
        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++) {
                bool found = !p->source[k].file;

                for (size_t i = 0; i < n_files && !found; i++)
                        found = strcmp(files[i]->path, p->source[k].file) == 0 &&
                                p->source[k].rule < files[i]->n_rules;
                FUZZ_CHECK(found);
        }
        r = effective_policy_to_json(p, &json);
        FUZZ_CHECK(r >= 0);
        o = json_tokener_parse(json);
        FUZZ_CHECK(o && json_object_is_type(o, json_type_object));
}

void fuzz_check_verdicts(PolicyFile *const *files, size_t n_files) {
        static const DeviceFacts devices[] = {
                { "0000:01:00.0", "10de", "2204", "1458", "403b", "030000", "vfio-pci", 12 },
                { "vfio-pm-sim.3", "1af4", "1000", NULL, NULL, "0200", "vfio-pm-sim", -1 },
                { "x", NULL, NULL, NULL, NULL, NULL, NULL, -1 },
        };

        for (size_t i = 0; i < ELEMENTSOF(devices); i++)
                check_verdict(files, n_files, devices + i);
}
