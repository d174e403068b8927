#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"

/* The policy engine: rules and device facts in, effective policy with provenance out. Pure: no
 * I/O, no logging, no json-c. Files are read and validated by policy-file.h, which also turns an
 * EffectivePolicy into JSON (effective_policy_to_json()); policy-set.h loads the directories. */

typedef enum PolicyMode {
        POLICY_MODE_KERNEL,     /* never open the device, leave it to the kernel's idle runtime PM */
        POLICY_MODE_ON,         /* never open it, keep it in D0 (power/control=on) */
        POLICY_MODE_AUTO,       /* hold it, plain LOW_POWER_ENTRY, the kernel re-enters by itself */
        POLICY_MODE_WAKEUP,     /* hold it, enter with the wake-up eventfd, re-arm per the delays */
        _POLICY_MODE_MAX,
        _POLICY_MODE_INVALID = -EINVAL,
} PolicyMode;

/* "kernel", "on", "auto", "wakeup" */
const char *policy_mode_to_string(PolicyMode m);
PolicyMode policy_mode_from_string(const char *s);

/* The JSON values of "d3cold": null leaves the device's d3cold_allowed as it is. */
typedef enum PolicyD3cold {
        POLICY_D3COLD_LEAVE,    /* null */
        POLICY_D3COLD_DENY,     /* false: write 0 to d3cold_allowed */
        POLICY_D3COLD_ALLOW,    /* true: write 1 */
        _POLICY_D3COLD_MAX,
        _POLICY_D3COLD_INVALID = -EINVAL,
} PolicyD3cold;

/* "null", "false", "true": the JSON literals */
const char *policy_d3cold_to_string(PolicyD3cold d);
PolicyD3cold policy_d3cold_from_string(const char *s);

/* The policy keys of a rule, in the order the effective policy lists them. */
typedef enum PolicyKey {
        POLICY_KEY_MODE,
        POLICY_KEY_ARM_DELAY_MS,
        POLICY_KEY_REARM_DELAY_MS,
        POLICY_KEY_FLAP_MAX_WAKES,
        POLICY_KEY_FLAP_WINDOW_S,
        POLICY_KEY_FLAP_HOLD_S,
        POLICY_KEY_D3COLD,
        POLICY_KEY_POWER_ACTIVE_W,
        POLICY_KEY_POWER_LOW_W,
        _POLICY_KEY_MAX,
        _POLICY_KEY_INVALID = -EINVAL,
} PolicyKey;

/* The JSON key names: "mode", "arm_delay_ms", … */
const char *policy_key_to_string(PolicyKey k);
PolicyKey policy_key_from_string(const char *s);

/* The keys of a rule's "match" object. */
typedef enum PolicyMatchKey {
        POLICY_MATCH_DEVICE,
        POLICY_MATCH_VENDOR,
        POLICY_MATCH_DEVICE_ID,
        POLICY_MATCH_SUBSYSTEM_VENDOR,
        POLICY_MATCH_SUBSYSTEM_DEVICE,
        POLICY_MATCH_CLASS,
        POLICY_MATCH_DRIVER,
        POLICY_MATCH_IOMMU_GROUP,
        _POLICY_MATCH_MAX,
        _POLICY_MATCH_INVALID = -EINVAL,
} PolicyMatchKey;

/* "device", "vendor", "device_id", "subsystem_vendor", "subsystem_device", "class", "driver",
 * "iommu_group" */
const char *policy_match_key_to_string(PolicyMatchKey k);
PolicyMatchKey policy_match_key_from_string(const char *s);

/* Valid ranges, checked by the parser (policy-file.c), inclusive. The limits only catch typos
 * and absurd values: an hour of delay, a day of flap window or hold, 10 kW of draw. */
#define POLICY_DELAY_MS_MAX             UINT64_C(3600000)   /* arm_delay_ms, rearm_delay_ms: 0…1 h */
#define POLICY_FLAP_MAX_WAKES_MIN       UINT64_C(1)         /* flap_max_wakes: 1…1000000 */
#define POLICY_FLAP_MAX_WAKES_MAX       UINT64_C(1000000)
#define POLICY_FLAP_WINDOW_S_MIN        UINT64_C(1)         /* flap_window_s: 1 s…1 day */
#define POLICY_FLAP_WINDOW_S_MAX        UINT64_C(86400)
#define POLICY_FLAP_HOLD_S_MAX          UINT64_C(86400)     /* flap_hold_s: 0…1 day */
#define POLICY_POWER_W_MAX              10000.0             /* power_*_w: finite, 0…10000 W */
/* match.device and match.driver: 1…255 bytes, no '/', no control characters.
 * match.vendor, device_id, subsystem_*: exactly 4 hex digits, no 0x, any case.
 * match.class: 2, 4 or 6 hex digits. match.iommu_group: 0…INT_MAX. */
#define POLICY_NAME_MAX                 255

/* Every key's value. Integers are uint64_t so that "ms * 1000" cannot overflow in a caller. */
typedef struct PolicyValues {
        PolicyMode mode;
        uint64_t arm_delay_ms;
        uint64_t rearm_delay_ms;
        uint64_t flap_max_wakes;
        uint64_t flap_window_s;
        uint64_t flap_hold_s;
        PolicyD3cold d3cold;
        double power_active_w;          /* NAN: null, unknown */
        double power_low_w;             /* NAN: null, unknown */
} PolicyValues;

/* The built-in defaults (SPEC §2): what no rule sets. Written down only in policy.c. */
const PolicyValues *policy_defaults(void);

/* Copies or compares one key's value; NAN equals NAN (both null). */
void policy_values_copy_key(PolicyValues *dst, const PolicyValues *src, PolicyKey key);
bool policy_values_equal_key(const PolicyValues *a, const PolicyValues *b, PolicyKey key);
bool policy_values_equal(const PolicyValues *a, const PolicyValues *b);

/* A rule's match; an unset field matches every device. Hex fields hold lowercase digits. */
typedef struct PolicyMatch {
        char *device;                   /* kernel device name, NULL: any */
        char vendor[5];                 /* 4 hex digits, "": any */
        char device_id[5];
        char subsystem_vendor[5];
        char subsystem_device[5];
        char class[7];                  /* 2, 4 or 6 hex digits: a prefix of the 24-bit class, "": any */
        char *driver;                   /* NULL: any */
        int iommu_group;                /* -1: any */
} PolicyMatch;

/* One rule: the match, and the keys it sets (set[key]) with their values. A key that is not set
 * leaves whatever earlier rules or the defaults gave. */
typedef struct PolicyRule {
        PolicyMatch match;
        bool set[_POLICY_KEY_MAX];
        PolicyValues values;
} PolicyRule;

/* The rules of one policy file, in array order. path is what provenance and errors show
 * ("/etc/vfiopmd/policy.d/50-gpu.json"). Reference-counted: a reloaded PolicySet keeps the
 * last good version of a file that has become invalid. */
typedef struct PolicyFile {
        unsigned n_ref;
        char *path;
        PolicyRule *rules;
        size_t n_rules;
} PolicyFile;

int policy_file_new(const char *path, PolicyFile **ret);
PolicyFile *policy_file_ref(PolicyFile *f);
PolicyFile *policy_file_unref(PolicyFile *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(PolicyFile *, policy_file_unref)

/* Appends a rule that matches every device and sets nothing. The pointer is valid until the next
 * append. */
int policy_file_add_rule(PolicyFile *f, PolicyRule **ret);

/* What the engine knows of a device. Strings are borrowed. Hex fields are lowercase or uppercase
 * digits with or without "0x" (as sysfs prints them); NULL when the device has none (a platform
 * device has no vendor): then a rule that matches on that field does not match the device. */
typedef struct DeviceFacts {
        const char *name;               /* "0000:01:00.0", "vfio-pm-sim.3" */
        const char *vendor;             /* 4 hex digits */
        const char *device_id;
        const char *subsystem_vendor;
        const char *subsystem_device;
        const char *class;              /* 6 hex digits */
        const char *driver;             /* NULL if unbound */
        int iommu_group;                /* -1 if none */
} DeviceFacts;

/* Whether every field the match gives matches the device. Hex fields compare case-insensitively;
 * device and driver names exactly. */
bool policy_match_device(const PolicyMatch *m, const DeviceFacts *dev);

/* Where a key's value came from. */
typedef struct PolicySource {
        const char *file;               /* the file's path, NULL: the built-in default */
        size_t rule;                    /* index in that file's rules (0-based), 0 for the default */
} PolicySource;

typedef struct EffectivePolicy {
        PolicyValues values;
        PolicySource source[_POLICY_KEY_MAX];
        char *paths;                    /* the sources' paths, each once, NUL-separated: one
                                         * allocation a device, not one a key */
} EffectivePolicy;

EffectivePolicy *effective_policy_free(EffectivePolicy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(EffectivePolicy *, effective_policy_free)

/* Applies the files in the given order and each file's rules in array order: for each key, the
 * last matching rule that sets it wins; a key no matching rule sets keeps the default. The
 * result owns its strings and outlives the files. */
int policy_evaluate(PolicyFile *const *files, size_t n_files, const DeviceFacts *dev,
                    EffectivePolicy **ret);
