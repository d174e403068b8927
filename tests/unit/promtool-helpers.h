#pragma once

/* promtool, Prometheus's own checker, for the suites that produce its text format (test-metrics.c
 * and test-ctl.c's vfiopmctl metrics). Call from a Check test (they assert). */

/* Its path, or NULL and a line on stderr saying the check is skipped: only where it is not
 * installed (Debian's prometheus package; tools/install-deps and CI install it). */
const char *promtool(void);
/* `promtool check metrics` on text, its lint included, exits 0; nothing without promtool. */
void expect_promtool_ok(const char *text);
