/*
 * vfio-lp-conformance DEVICE — checks the VFIO low-power uAPI (VFIO_DEVICE_FEATURE
 * LOW_POWER_ENTRY, _ENTRY_WITH_WAKEUP, _EXIT) on one device against SPEC §1, and
 * against upstream vfio-pci where SPEC is silent. Prints TAP; exits 1 on any failure,
 * 2 when the device cannot be found or opened.
 *
 * The device is found by its sysfs name (0000:00:02.0, vfio-pm-sim.0) and opened the
 * classic way: /dev/vfio/vfio + /dev/vfio/GROUP, type1 IOMMU, GROUP_GET_DEVICE_FD.
 * Power states are read from power/runtime_status, which never wakes a device; every
 * wait is a bounded poll, every "stays" check a bounded observation window.
 *
 * Needs libc and <linux/vfio.h> only; what old headers lack is defined in conformance.h.
 * harness.c holds the output, sysfs, VFIO and device helpers, cases-*.c the cases by
 * concept; this file runs them in the order of the table below.
 */
#include "conformance.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct test_case {
	const char *desc;
	enum result (*run)(struct ctx *c);
	bool needs_device; /* runs on the open device fd, settled first */
};

static const struct test_case cases[] = {
	{ "the device has a vfio-dev/vfioN child in sysfs", case_vfio_dev_child, false },
	{ "an unopened device is runtime-suspended (active with vfio-pci disable_idle_d3)", case_unopened, false },
	{ "open through group + container resumes the device to D0", case_open, false },
	{ "PROBE|SET LOW_POWER_ENTRY -> 0", case_probe_entry, true },
	{ "PROBE|SET LOW_POWER_ENTRY_WITH_WAKEUP -> 0", case_probe_wakeup, true },
	{ "PROBE|SET LOW_POWER_EXIT -> 0", case_probe_exit, true },
	{ "GET (and PROBE|GET) on each low-power feature -> EINVAL", case_get_einval, true },
	{ "ENTRY_WITH_WAKEUP with wakeup_eventfd -1 -> EINVAL", case_efd_negative, true },
	{ "ENTRY_WITH_WAKEUP with a closed fd -> EBADF", case_efd_closed, true },
	{ "ENTRY_WITH_WAKEUP with a pipe (no eventfd) -> EINVAL", case_efd_pipe, true },
	{ "ENTRY_WITH_WAKEUP with argsz too short -> EINVAL", case_argsz_short, true },
	{ "rejected entries leave the device in D0", case_failed_entries_stay_d0, true },
	{ "ENTRY_WITH_WAKEUP with reserved != 0 is accepted", case_reserved, true },
	{ "ENTRY_WITH_WAKEUP runtime-suspends the held device", case_entry_wakeup_suspends, true },
	{ "reading power attributes never wakes a suspended device", case_attrs_never_wake, true },
	{ "wake by power/control=on: eventfd fires once, device stays in D0", case_wake_control, true },
	{ "wake by a device ioctl: eventfd fires once, device stays in D0", case_wake_ioctl, true },
	{ "wake by a region read: eventfd fires once, device stays in D0", case_wake_region, true },
	{ "wake by a region write: eventfd fires once, device stays in D0", case_wake_region_write, true },
	{ "wake by sysfs reset: eventfd fires once, device stays in D0", case_wake_reset, true },
	{ "host config-space read wakes only a D3cold device", case_config_read, true },
	{ "plain LOW_POWER_ENTRY re-enters low power by itself after accesses", case_plain_reenters, true },
	{ "LOW_POWER_EXIT after a plain entry: D0, stays in D0", case_exit_plain, true },
	{ "LOW_POWER_EXIT with a wake-up entry armed: D0, eventfd at most once", case_exit_wakeup, true },
	{ "entry while a wake-up entry is in force: first eventfd fires once, call succeeds, suspends again",
	  case_entry_while_armed, true },
	{ "entry right after a wake-up entry, before suspend: succeeds and signals, or EINVAL and quiet",
	  case_entry_while_armed_early, true },
	{ "a second entry while a plain entry is in force -> EINVAL", case_plain_twice, true },
	{ "mmap touch in low power (plain entry) -> SIGBUS, device stays suspended", case_mmap_plain, true },
	{ "mmap touch in low power (wake-up armed) -> SIGBUS, eventfd quiet", case_mmap_wakeup, true },
	{ "a second open of the held group (or its cdev) -> EBUSY", case_second_open, true },
	{ "after close the device idles into suspend (stays in D0 with disable_idle_d3)", case_close_idles, true },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vfio-lp-conformance DEVICE\n"
		"Checks the VFIO low-power uAPI on DEVICE, a sysfs device name such as 0000:00:02.0\n"
		"or vfio-pm-sim.0 (found under /sys/bus/*/devices), bound to a VFIO driver and not held\n"
		"by anyone else. Prints TAP; exit 0 all passed, 1 a case failed, 2 setup failed.\n");
}

int main(int argc, char **argv)
{
	struct ctx c = { .container_fd = -1, .group_fd = -1, .device_fd = -1, .rw_index = -1, .mmap_index = -1 };
	size_t ncases = sizeof(cases) / sizeof(cases[0]);
	unsigned failed = 0, skipped = 0;
	int64_t t_all = now_ms();

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		usage(stderr);
		return 2;
	}

	printf("1..%zu\n", ncases);
	if (find_device(&c, argv[1]) < 0) {
		printf("Bail out! cannot use device %s\n", argv[1]);
		return 2;
	}
	{
		char kernel[128] = "?";

		read_file("/proc/sys/kernel/osrelease", kernel, sizeof(kernel));
		diag("device %s (%s), driver %s, iommu group %d (%s), kernel %s", c.name, c.sysfs,
		     c.driver[0] ? c.driver : "none", c.group_id, c.group_path, kernel);
		if (c.is_vfio_pci)
			diag("vfio-pci disable_idle_d3=%s", c.idle_d3_disabled ? "Y" : "N");
	}

	for (size_t i = 0; i < ncases; i++) {
		const struct test_case *tc = &cases[i];
		enum result res;
		int64_t t0 = now_ms();

		c.failures = 0;
		c.skip_reason[0] = '\0';
		if (tc->needs_device && c.device_fd < 0) {
			printf("not ok %zu - %s\n", i + 1, tc->desc);
			printf("Bail out! the device is not open\n");
			return 2;
		}
		diag("case %zu: %s", i + 1, tc->desc);
		if (tc->needs_device)
			settle(&c);
		res = tc->run(&c);
		diag("  (%" PRId64 " ms)", now_ms() - t0);
		switch (res) {
		case RESULT_PASS:
			printf("ok %zu - %s\n", i + 1, tc->desc);
			break;
		case RESULT_FAIL:
			printf("not ok %zu - %s\n", i + 1, tc->desc);
			failed++;
			break;
		case RESULT_SKIP:
			printf("ok %zu - %s # SKIP %s\n", i + 1, tc->desc, c.skip_reason);
			skipped++;
			break;
		}
	}
	close_device(&c);
	diag("%zu cases: %zu passed, %u failed, %u skipped, %" PRId64 " ms", ncases,
	     ncases - failed - skipped, failed, skipped, now_ms() - t_all);
	/* Only the PCI-only cases (sysfs reset, host config space) may be skipped. */
	if (skipped > MAX_SKIPS) {
		diag("more than %d cases skipped: the device does not offer what the suite needs", MAX_SKIPS);
		return 1;
	}
	return failed ? 1 : 0;
}
