#pragma once

/* energy: the estimate of energy saved (SPEC §2, §5), per device. Time in low power is the
 * kernel's own power/runtime_suspended_time (reading it wakes nothing), counted from the first
 * reading this daemon took of the device; energy is that time × (power_active_w − power_low_w)
 * of the policy in force while it passed. Pure: the caller reads sysfs and hands the readings in.
 *
 * The meter adds up the increments between readings, so that a change of the watts (a reload)
 * applies from then on and the joules never go down, and a counter that starts over (the kernel
 * made the device anew under the same name) goes on from its new value. */

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

typedef struct EnergyMeter {
        bool started;                   /* a reading was taken: last_msec is one */
        uint64_t last_msec;             /* the last runtime_suspended_time read */
        uint64_t seen_msec;             /* suspended since the first reading */
        double watts;                   /* saved per second suspended now; NAN: not declared */
        double joules;                  /* saved since the first reading, up to last_msec */
        bool estimated;                 /* watts were declared at some time: joules means something */
} EnergyMeter;

#define ENERGY_METER_INIT ((EnergyMeter) { .watts = NAN })

/* The watts a policy says a suspended device saves: power_active_w − power_low_w, 0 when the
 * low figure is the higher, NAN unless both are declared. */
double energy_saved_watts(const PolicyValues *v);

/* A reading of runtime_suspended_time (ms): the first one is the baseline. */
void energy_meter_update(EnergyMeter *e, uint64_t msec);
/* The watts (energy_saved_watts()) from now on: call energy_meter_update() with a fresh reading
 * first, so that what passed before is counted at the old figure. */
void energy_meter_set_watts(EnergyMeter *e, double watts);

/* What the meter says after its last update. */
typedef struct EnergyReading {
        uint64_t suspended_msec;        /* suspended since the device was first seen */
        double joules;                  /* saved since then; 0 when never estimated */
        bool estimated;                 /* watts declared, now or before: joules is an estimate */
} EnergyReading;

void energy_meter_read(const EnergyMeter *e, EnergyReading *ret);
