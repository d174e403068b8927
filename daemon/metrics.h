#pragma once

/* metrics: what vfiopmctl metrics prints, the Prometheus text exposition format (version 0.0.4),
 * for node_exporter's textfile collector or any scraper: official naming (base units, _total for
 * counters), no timestamps, label values escaped. What it exports and why each is typed as it is
 * is in vfiopmctl(1), METRICS. Pure: a CtlStatus read with every property (ctl_status_get() with
 * full) in, text out; it never logs.
 *
 * Only what vfiopmd knows: the device labels overlap node_exporter's pcidevice collector, the
 * figures do not (no power_state, which the kernel exposes to it already). */

#include "ctl-client.h"

/* The exposition of s: a NUL-terminated text for the caller to free(). */
int metrics_format(const CtlStatus *s, char **ret);
