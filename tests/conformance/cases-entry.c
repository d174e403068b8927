/*
 * The low-power features on the held device: PROBE and GET (cases 4-7), the arguments an
 * entry rejects and what a rejected entry leaves (8-12), and the entries that suspend the
 * device (13-15).
 */
#include "conformance.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

static enum result probe_case(struct ctx *c, uint32_t feat, const char *fname)
{
	int r = feature(c, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | feat, NULL, 0);

	expect(c, r == 0, "PROBE|SET %s -> %s", fname, errname(r));
	return verdict(c);
}

enum result case_probe_entry(struct ctx *c)
{
	return probe_case(c, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, "LOW_POWER_ENTRY");
}

enum result case_probe_wakeup(struct ctx *c)
{
	return probe_case(c, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, "LOW_POWER_ENTRY_WITH_WAKEUP");
}

enum result case_probe_exit(struct ctx *c)
{
	return probe_case(c, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, "LOW_POWER_EXIT");
}

enum result case_get_einval(struct ctx *c)
{
	static const struct {
		uint32_t feat;
		const char *name;
	} feats[] = {
		{ VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, "LOW_POWER_ENTRY" },
		{ VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, "LOW_POWER_ENTRY_WITH_WAKEUP" },
		{ VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, "LOW_POWER_EXIT" },
	};
	struct lp_entry_with_wakeup e = { .wakeup_eventfd = -1 };

	for (size_t i = 0; i < sizeof(feats) / sizeof(feats[0]); i++) {
		int r = feature(c, VFIO_DEVICE_FEATURE_GET | feats[i].feat, &e, sizeof(e));
		int rp = feature(c, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET | feats[i].feat, NULL, 0);

		expect(c, r == -EINVAL, "GET %s -> %s", feats[i].name, errname(r));
		expect(c, rp == -EINVAL, "PROBE|GET %s -> %s", feats[i].name, errname(rp));
	}
	return verdict(c);
}

enum result case_efd_negative(struct ctx *c)
{
	int r = enter_wakeup(c, -1);

	expect(c, r == -EINVAL, "wakeup_eventfd = -1 -> %s", errname(r));
	return verdict(c);
}

enum result case_efd_closed(struct ctx *c)
{
	int efd = new_eventfd();
	int r;

	close(efd); /* the number is now free; nothing else in this process opens files meanwhile */
	r = enter_wakeup(c, efd);
	expect(c, r == -EBADF, "closed fd %d -> %s", efd, errname(r));
	return verdict(c);
}

enum result case_efd_pipe(struct ctx *c)
{
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) < 0) {
		expect(c, false, "pipe: %s", strerror(errno));
		return RESULT_FAIL;
	}
	r = enter_wakeup(c, p[0]);
	expect(c, r == -EINVAL, "pipe fd (no eventfd) -> %s", errname(r));
	close(p[0]);
	close(p[1]);
	return verdict(c);
}

enum result case_argsz_short(struct ctx *c)
{
	struct lp_entry_with_wakeup e;
	int efd = new_eventfd(), r;

	e = (struct lp_entry_with_wakeup){ .wakeup_eventfd = efd };
	r = feature_argsz(c, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
			  &e, sizeof(e), sizeof(struct feature_hdr) + sizeof(e) - 4);
	expect(c, r == -EINVAL, "argsz = header + 4 (payload is 8) -> %s", errname(r));
	r = feature_argsz(c, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
			  &e, sizeof(e), sizeof(struct feature_hdr) - 4);
	expect(c, r == -EINVAL, "argsz shorter than the feature header -> %s", errname(r));
	expect(c, efd_take(efd) == 0, "eventfd not signalled");
	close(efd);
	return verdict(c);
}

enum result case_failed_entries_stay_d0(struct ctx *c)
{
	expect(c, wait_status(c, "active", WAIT_MS) >= 0, "device active after the rejected entries");
	expect(c, stays_status(c, "active", WINDOW_MS) == 0, "and stays active (no entry took effect)");
	return verdict(c);
}

enum result case_reserved(struct ctx *c)
{
	struct lp_entry_with_wakeup e;
	int efd = new_eventfd(), r;
	int64_t n;

	e = (struct lp_entry_with_wakeup){ .wakeup_eventfd = efd, .reserved = 0xdeadbeef };
	r = feature(c, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, &e, sizeof(e));
	if (expect(c, r == 0, "reserved = 0xdeadbeef -> %s", errname(r)))
		expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "the entry took effect: suspended");
	settle(c);
	n = efd_take(efd);
	diag("  cleanup EXIT signalled the eventfd %" PRId64 " time(s)", n);
	close(efd);
	return verdict(c);
}

enum result case_entry_wakeup_suspends(struct ctx *c)
{
	int efd = new_eventfd(), r, t;
	char ps[32];

	r = enter_wakeup(c, efd);
	if (expect(c, r == 0, "ENTRY_WITH_WAKEUP -> %s", errname(r))) {
		t = wait_status(c, "suspended", WAIT_MS);
		expect(c, t >= 0, "runtime-suspended (%d ms)", t);
		power_state(c, ps);
		if (c->is_pci)
			expect(c, strcmp(ps, "D3hot") == 0 || strcmp(ps, "D3cold") == 0, "power_state %s", ps);
		if (c->idle_d3_disabled)
			diag("  with disable_idle_d3=Y: a held device still suspends on entry");
		expect(c, efd_take(efd) == 0, "eventfd quiet while suspended");
	}
	settle(c);
	close(efd);
	return verdict(c);
}

enum result case_attrs_never_wake(struct ctx *c)
{
	static const char *const attrs[] = {
		"power/runtime_status", "power_state", "power/runtime_suspended_time",
		"power/runtime_active_time", "power/control",
	};
	char buf[64], t0[64] = "?", t1[64] = "?";
	int efd = new_eventfd(), r, reads = 0;
	int64_t start;

	r = enter_wakeup(c, efd);
	if (expect(c, r == 0, "ENTRY_WITH_WAKEUP -> %s", errname(r)) &&
	    expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended")) {
		read_attr(c, "power/runtime_suspended_time", t0, sizeof(t0));
		start = now_ms();
		while (now_ms() - start < WINDOW_MS) {
			for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
				if (read_attr(c, attrs[i], buf, sizeof(buf)) == 0)
					reads++;
			sleep_ms(POLL_MS);
		}
		read_attr(c, "power/runtime_suspended_time", t1, sizeof(t1));
		rt_status(c, buf);
		expect(c, strcmp(buf, "suspended") == 0, "still suspended after %d attribute reads", reads);
		expect(c, efd_take(efd) == 0, "eventfd quiet");
		diag("  runtime_suspended_time %s -> %s ms", t0, t1);
	}
	settle(c);
	close(efd);
	return verdict(c);
}
