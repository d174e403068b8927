#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "metrics.h"
#include "pm.h"
#include "policy.h"

/* A label value as the format wants it: backslash, double quote and line feed escaped. */
static void put_label_value(FILE *f, const char *v) {
        for (const char *p = v ? v : ""; *p; p++)
                switch (*p) {
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                default:
                        fputc(*p, f);
                }
}

static void put_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{name="DEVICE" — the caller goes on with more labels or closes with "} value". */
static void put_device_series(FILE *f, const char *metric, const CtlDevice *d) {
        fprintf(f, "%s{name=\"", metric);
        put_label_value(f, d->name);
        fputc('"', f);
}

/* One state set: a series a word, 1 for the device's, 0 for the others. */
static void put_state_set(FILE *f, const char *metric, const char *label, const CtlDevice *d, const char *now,
                          const char *(*word)(int), int n_words) {
        for (int i = 0; i < n_words; i++) {
                put_device_series(f, metric, d);
                fprintf(f, ",%s=\"%s\"} %d\n", label, word(i), strcmp(word(i), now) == 0);
        }
}

static const char *state_word(int i) {
        return pm_state_to_string((PmState) i);
}

static const char *mode_word(int i) {
        return policy_mode_to_string((PolicyMode) i);
}

/* The counters of a device: which CtlDevice field, in what unit there. */
typedef enum CounterUnit {
        COUNTER_COUNT,                  /* uint64_t, a count */
        COUNTER_USEC,                   /* uint64_t µs, exported as seconds */
        COUNTER_MSEC,                   /* uint64_t ms, exported as seconds */
        COUNTER_JOULES,                 /* double J; only where energy_estimated */
} CounterUnit;

static const struct {
        const char *metric;
        const char *help;
        size_t offset;
        CounterUnit unit;
} counters[] = {
        { "vfiopmd_wakeups_total", "Wakes of the device while armed.", offsetof(CtlDevice, wakes), COUNTER_COUNT },
        { "vfiopmd_arms_total", "Successful low-power entries.", offsetof(CtlDevice, arms), COUNTER_COUNT },
        { "vfiopmd_armed_seconds_total", "Time the daemon held the device armed.",
          offsetof(CtlDevice, low_power_usec), COUNTER_USEC },
        { "vfiopmd_low_power_seconds_total",
          "Time the kernel kept the device suspended (power/runtime_suspended_time) since vfiopmd first saw it.",
          offsetof(CtlDevice, kernel_suspended_since_seen_msec), COUNTER_MSEC },
        { "vfiopmd_energy_saved_joules_total",
          "Estimated energy saved since vfiopmd first saw the device: low-power time times power_active_w - "
          "power_low_w; only devices whose policy declares both.",
          offsetof(CtlDevice, energy_saved_joules), COUNTER_JOULES },
};

static void put_counter(FILE *f, size_t k, const CtlDevice *d) {
        const void *field = (const uint8_t *) d + counters[k].offset;
        uint64_t v;

        if (counters[k].unit == COUNTER_JOULES && !d->energy_estimated)
                return;         /* no watts: no estimate, rather than a 0 that reads "saved nothing" */
        put_device_series(f, counters[k].metric, d);
        if (counters[k].unit == COUNTER_JOULES) {
                fprintf(f, "} %.6f\n", *(const double *) field);
                return;
        }
        memcpy(&v, field, sizeof(v));
        switch (counters[k].unit) {
        case COUNTER_COUNT:
                fprintf(f, "} %llu\n", (unsigned long long) v);
                break;
        case COUNTER_USEC:
                fprintf(f, "} %.6f\n", (double) v / 1e6);
                break;
        case COUNTER_MSEC:
                fprintf(f, "} %.3f\n", (double) v / 1e3);
                break;
        case COUNTER_JOULES:
                break;
        }
}

int metrics_format(const CtlStatus *s, char **ret) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0, n = s->n_devices;
        const CtlDevice *devices = s->devices;
        size_t errors = 0;
        FILE *f;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;

        put_family(f, "vfiopmd_build_info", "gauge", "The daemon's version, as a label; always 1.");
        fputs("vfiopmd_build_info{version=\"", f);
        put_label_value(f, s->version ?: "unknown");
        fputs("\"} 1\n", f);

        for (char **p = s->policy_errors; p && *p; p++)
                errors++;
        put_family(f, "vfiopmd_policy_errors", "gauge",
                   "Policy files that failed to load (their last good content stays in force).");
        fprintf(f, "vfiopmd_policy_errors %zu\n", errors);

        put_family(f, "vfiopmd_device_info", "gauge", "A VFIO device vfiopmd manages, its identity as labels; always 1.");
        for (size_t i = 0; i < n; i++) {
                const CtlDevice *d = &devices[i];

                put_device_series(f, "vfiopmd_device_info", d);
                fputs(",vendor=\"", f);
                put_label_value(f, d->vendor);
                fputs("\",device_id=\"", f);
                put_label_value(f, d->device_id);
                fputs("\",class=\"", f);
                put_label_value(f, d->class);
                fputs("\",driver=\"", f);
                put_label_value(f, d->driver);
                fputs("\",iommu_group=\"", f);
                put_label_value(f, d->iommu_group);
                fputs("\"} 1\n", f);
        }

        put_family(f, "vfiopmd_device_state", "gauge",
                   "The device's state (a state set: 1 for the state it is in, 0 for the others).");
        for (size_t i = 0; i < n; i++)
                put_state_set(f, "vfiopmd_device_state", "state", &devices[i], devices[i].state, state_word,
                              _PM_STATE_MAX);
        put_family(f, "vfiopmd_device_mode", "gauge",
                   "The effective policy's mode (a state set: 1 for the mode in force, 0 for the others).");
        for (size_t i = 0; i < n; i++)
                put_state_set(f, "vfiopmd_device_mode", "mode", &devices[i], devices[i].mode, mode_word,
                              _POLICY_MODE_MAX);

        for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
                put_family(f, counters[k].metric, "counter", counters[k].help);
                for (size_t i = 0; i < n; i++)
                        put_counter(f, k, &devices[i]);
        }

        if (fclose(f) != 0 || !text)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}
