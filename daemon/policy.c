#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "policy.h"

/* The one place the built-in defaults are written down (SPEC §2). conf/'s 00-defaults.json
 * repeats them for users to read. */
static const PolicyValues defaults = {
        .mode = POLICY_MODE_KERNEL,
        .arm_delay_ms = 0,
        .rearm_delay_ms = 1000,
        .flap_max_wakes = 10,
        .flap_window_s = 60,
        .flap_hold_s = 300,
        .d3cold = POLICY_D3COLD_LEAVE,
        .power_active_w = NAN,
        .power_low_w = NAN,
};

const PolicyValues *policy_defaults(void) {
        return &defaults;
}

static const char *const policy_mode_table[_POLICY_MODE_MAX] = {
        [POLICY_MODE_KERNEL] = "kernel",
        [POLICY_MODE_ON] = "on",
        [POLICY_MODE_AUTO] = "auto",
        [POLICY_MODE_WAKEUP] = "wakeup",
};

static const char *const policy_d3cold_table[_POLICY_D3COLD_MAX] = {
        [POLICY_D3COLD_LEAVE] = "null",
        [POLICY_D3COLD_DENY] = "false",
        [POLICY_D3COLD_ALLOW] = "true",
};

static const char *const policy_key_table[_POLICY_KEY_MAX] = {
        [POLICY_KEY_MODE] = "mode",
        [POLICY_KEY_ARM_DELAY_MS] = "arm_delay_ms",
        [POLICY_KEY_REARM_DELAY_MS] = "rearm_delay_ms",
        [POLICY_KEY_FLAP_MAX_WAKES] = "flap_max_wakes",
        [POLICY_KEY_FLAP_WINDOW_S] = "flap_window_s",
        [POLICY_KEY_FLAP_HOLD_S] = "flap_hold_s",
        [POLICY_KEY_D3COLD] = "d3cold",
        [POLICY_KEY_POWER_ACTIVE_W] = "power_active_w",
        [POLICY_KEY_POWER_LOW_W] = "power_low_w",
};

static const char *const policy_match_key_table[_POLICY_MATCH_MAX] = {
        [POLICY_MATCH_DEVICE] = "device",
        [POLICY_MATCH_VENDOR] = "vendor",
        [POLICY_MATCH_DEVICE_ID] = "device_id",
        [POLICY_MATCH_SUBSYSTEM_VENDOR] = "subsystem_vendor",
        [POLICY_MATCH_SUBSYSTEM_DEVICE] = "subsystem_device",
        [POLICY_MATCH_CLASS] = "class",
        [POLICY_MATCH_DRIVER] = "driver",
        [POLICY_MATCH_IOMMU_GROUP] = "iommu_group",
};

static const char *table_to_string(const char *const *table, size_t n, int i) {
        return i >= 0 && (size_t) i < n ? table[i] : NULL;
}

static int table_from_string(const char *const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && strcmp(table[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

#define DEFINE_STRING_TABLE(name, type)                                                 \
        const char *name##_to_string(type x) {                                          \
                return table_to_string(name##_table, ELEMENTSOF(name##_table), x);      \
        }                                                                               \
        type name##_from_string(const char *s) {                                        \
                return (type) table_from_string(name##_table, ELEMENTSOF(name##_table), s); \
        }

DEFINE_STRING_TABLE(policy_mode, PolicyMode)
DEFINE_STRING_TABLE(policy_d3cold, PolicyD3cold)
DEFINE_STRING_TABLE(policy_key, PolicyKey)
DEFINE_STRING_TABLE(policy_match_key, PolicyMatchKey)

void policy_values_copy_key(PolicyValues *dst, const PolicyValues *src, PolicyKey key) {
        switch (key) {
        case POLICY_KEY_MODE:
                dst->mode = src->mode;
                break;
        case POLICY_KEY_ARM_DELAY_MS:
                dst->arm_delay_ms = src->arm_delay_ms;
                break;
        case POLICY_KEY_REARM_DELAY_MS:
                dst->rearm_delay_ms = src->rearm_delay_ms;
                break;
        case POLICY_KEY_FLAP_MAX_WAKES:
                dst->flap_max_wakes = src->flap_max_wakes;
                break;
        case POLICY_KEY_FLAP_WINDOW_S:
                dst->flap_window_s = src->flap_window_s;
                break;
        case POLICY_KEY_FLAP_HOLD_S:
                dst->flap_hold_s = src->flap_hold_s;
                break;
        case POLICY_KEY_D3COLD:
                dst->d3cold = src->d3cold;
                break;
        case POLICY_KEY_POWER_ACTIVE_W:
                dst->power_active_w = src->power_active_w;
                break;
        case POLICY_KEY_POWER_LOW_W:
                dst->power_low_w = src->power_low_w;
                break;
        case _POLICY_KEY_MAX:
        case _POLICY_KEY_INVALID:
                break;
        }
}

static bool watts_equal(double a, double b) {
        return (isnan(a) && isnan(b)) || a == b;
}

bool policy_values_equal_key(const PolicyValues *a, const PolicyValues *b, PolicyKey key) {
        switch (key) {
        case POLICY_KEY_MODE:
                return a->mode == b->mode;
        case POLICY_KEY_ARM_DELAY_MS:
                return a->arm_delay_ms == b->arm_delay_ms;
        case POLICY_KEY_REARM_DELAY_MS:
                return a->rearm_delay_ms == b->rearm_delay_ms;
        case POLICY_KEY_FLAP_MAX_WAKES:
                return a->flap_max_wakes == b->flap_max_wakes;
        case POLICY_KEY_FLAP_WINDOW_S:
                return a->flap_window_s == b->flap_window_s;
        case POLICY_KEY_FLAP_HOLD_S:
                return a->flap_hold_s == b->flap_hold_s;
        case POLICY_KEY_D3COLD:
                return a->d3cold == b->d3cold;
        case POLICY_KEY_POWER_ACTIVE_W:
                return watts_equal(a->power_active_w, b->power_active_w);
        case POLICY_KEY_POWER_LOW_W:
                return watts_equal(a->power_low_w, b->power_low_w);
        case _POLICY_KEY_MAX:
        case _POLICY_KEY_INVALID:
                break;
        }
        return false;
}

bool policy_values_equal(const PolicyValues *a, const PolicyValues *b) {
        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++)
                if (!policy_values_equal_key(a, b, k))
                        return false;
        return true;
}

int policy_file_new(const char *path, PolicyFile **ret) {
        PolicyFile *f;

        if (!path || !ret)
                return -EINVAL;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->path = strdup(path);
        if (!f->path) {
                free(f);
                return -ENOMEM;
        }
        f->n_ref = 1;

        *ret = f;
        return 0;
}

PolicyFile *policy_file_ref(PolicyFile *f) {
        if (f)
                f->n_ref++;
        return f;
}

PolicyFile *policy_file_unref(PolicyFile *f) {
        if (!f || --f->n_ref > 0)
                return NULL;

        for (size_t i = 0; i < f->n_rules; i++) {
                free(f->rules[i].match.device);
                free(f->rules[i].match.driver);
        }
        free(f->rules);
        free(f->path);
        free(f);
        return NULL;
}

int policy_file_add_rule(PolicyFile *f, PolicyRule **ret) {
        PolicyRule *rules, *r;

        if (!f || !ret)
                return -EINVAL;

        rules = reallocarray(f->rules, f->n_rules + 1, sizeof(*rules));
        if (!rules)
                return -ENOMEM;
        f->rules = rules;

        r = &rules[f->n_rules++];
        *r = (PolicyRule) {
                .match.iommu_group = -1,
                .values = defaults,
        };

        *ret = r;
        return 0;
}

/* sysfs prints "0x10de": tolerated on the device's side, the rules never have it. */
static const char *skip_0x(const char *s) {
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
                return s + 2;
        return s;
}

static bool hex_matches(const char *want, const char *have) {
        if (want[0] == '\0')
                return true;
        if (!have)
                return false;
        return strcasecmp(want, skip_0x(have)) == 0;
}

static bool class_matches(const char *prefix, const char *have) {
        size_t n = strlen(prefix);

        if (n == 0)
                return true;
        if (!have)
                return false;
        have = skip_0x(have);
        return strlen(have) >= n && strncasecmp(prefix, have, n) == 0;
}

static bool name_matches(const char *want, const char *have) {
        if (!want)
                return true;
        return have && strcmp(want, have) == 0;
}

bool policy_match_device(const PolicyMatch *m, const DeviceFacts *dev) {
        return name_matches(m->device, dev->name) &&
                hex_matches(m->vendor, dev->vendor) &&
                hex_matches(m->device_id, dev->device_id) &&
                hex_matches(m->subsystem_vendor, dev->subsystem_vendor) &&
                hex_matches(m->subsystem_device, dev->subsystem_device) &&
                class_matches(m->class, dev->class) &&
                name_matches(m->driver, dev->driver) &&
                (m->iommu_group < 0 || m->iommu_group == dev->iommu_group);
}

EffectivePolicy *effective_policy_free(EffectivePolicy *p) {
        if (!p)
                return NULL;

        free(p->paths);
        free(p);
        return NULL;
}

/* The first key before k that the same file won; k itself when none. */
static PolicyKey same_winner(const PolicyFile *const winner[_POLICY_KEY_MAX], PolicyKey k) {
        for (PolicyKey i = 0; i < k; i++)
                if (winner[i] == winner[k])
                        return i;
        return k;
}

static bool first_winner(const PolicyFile *const winner[_POLICY_KEY_MAX], PolicyKey k) {
        return same_winner(winner, k) == k;
}

int policy_evaluate(PolicyFile *const *files, size_t n_files, const DeviceFacts *dev,
                    EffectivePolicy **ret) {
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        const PolicyFile *winner[_POLICY_KEY_MAX] = { NULL };

        if ((!files && n_files > 0) || !dev || !ret)
                return -EINVAL;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->values = defaults;

        for (size_t i = 0; i < n_files; i++) {
                const PolicyFile *f = files[i];

                for (size_t j = 0; j < f->n_rules; j++) {
                        const PolicyRule *r = &f->rules[j];

                        if (!policy_match_device(&r->match, dev))
                                continue;

                        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++) {
                                if (!r->set[k])
                                        continue;
                                policy_values_copy_key(&p->values, &r->values, k);
                                winner[k] = f;
                                p->source[k].rule = j;
                        }
                }
        }

        /* the winners' paths, each once, in one block (a few files set every key of thousands of
         * devices) */
        size_t size = 0, off = 0;
        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++)
                if (winner[k] && first_winner(winner, k))
                        size += strlen(winner[k]->path) + 1;
        if (size > 0) {
                p->paths = malloc(size);
                if (!p->paths)
                        return -ENOMEM;
        }
        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++) {
                PolicyKey first;

                if (!winner[k])
                        continue;
                first = same_winner(winner, k);
                if (first == k) {
                        p->source[k].file = strcpy(p->paths + off, winner[k]->path);
                        off += strlen(winner[k]->path) + 1;
                } else
                        p->source[k].file = p->source[first].file;
        }

        *ret = TAKE_PTR(p);
        return 0;
}
