#include <math.h>

#include "energy.h"

double energy_saved_watts(const PolicyValues *v) {
        if (isnan(v->power_active_w) || isnan(v->power_low_w))
                return NAN;
        /* a device that draws more in low power saves nothing; a counter does not go down */
        return v->power_active_w > v->power_low_w ? v->power_active_w - v->power_low_w : 0.0;
}

void energy_meter_update(EnergyMeter *e, uint64_t msec) {
        uint64_t delta;

        if (!e->started) {
                e->started = true;
                e->last_msec = msec;
                return;
        }
        /* below the last reading: the kernel's counter started over, from 0 */
        delta = msec >= e->last_msec ? msec - e->last_msec : msec;
        e->seen_msec += delta;
        if (!isnan(e->watts))
                e->joules += (double) delta / 1000.0 * e->watts;
        e->last_msec = msec;
}

void energy_meter_set_watts(EnergyMeter *e, double watts) {
        e->watts = watts;
        if (!isnan(watts))
                e->estimated = true;
}

void energy_meter_read(const EnergyMeter *e, EnergyReading *ret) {
        *ret = (EnergyReading) {
                .suspended_msec = e->seen_msec,
                .joules = e->joules,
                .estimated = e->estimated,
        };
}
