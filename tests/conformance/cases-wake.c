/*
 * Waking a suspended device (cases 16-21), a plain entry re-entering by itself (22), the exits
 * (23, 24), and a second entry while one is in force (25-27).
 */
#include "conformance.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef int (*trigger_fn)(const struct ctx *c);

/*
 * The common body of the wake cases: arm with a wake-up eventfd, wait until the device
 * is really suspended, wake it with @trigger, then check that the eventfd fired exactly
 * once and that the device stays in D0, quiet, through further accesses.
 * @after runs once the wake is counted (restores what @trigger changed).
 */
static enum result wake_case(struct ctx *c, const char *what, trigger_fn trigger, trigger_fn after)
{
	int efd = new_eventfd(), r;
	int64_t n, t0;

	r = enter_wakeup(c, efd);
	if (!expect(c, r == 0, "ENTRY_WITH_WAKEUP -> %s", errname(r)) ||
	    !expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended before the wake") ||
	    !expect(c, efd_take(efd) == 0, "eventfd quiet before the wake"))
		goto out;

	t0 = now_ms();
	r = trigger(c);
	expect(c, r == 0, "%s -> %s (%" PRId64 " ms)", what, errname(r), now_ms() - t0);
	expect(c, wait_status(c, "active", WAIT_MS) >= 0, "device resumed");
	n = efd_take(efd);
	expect(c, n == 1, "eventfd count %" PRId64 " (want 1)", n);
	n = efd_take(efd);
	expect(c, n == 0, "a second read gets EAGAIN (count %" PRId64 ")", n);
	if (after) {
		r = after(c);
		expect(c, r == 0, "restore after the wake -> %s", errname(r));
	}

	/* The wake was one-shot: more accesses neither signal nor let it suspend. */
	r = get_info(c, NULL);
	expect(c, r == 0, "VFIO_DEVICE_GET_INFO after the wake -> %s", errname(r));
	r = region_read(c);
	expect(c, r == 0, "region %d read after the wake -> %s", c->rw_index, errname(r));
	expect(c, stays_status(c, "active", WINDOW_MS) == 0, "device stays in D0 until entered again");
	n = efd_take(efd);
	expect(c, n == 0, "eventfd still quiet after waiting and further accesses (count %" PRId64 ")", n);
out:
	settle(c);
	n = efd_take(efd);
	expect(c, n == 0, "the cleanup EXIT did not signal either (count %" PRId64 ")", n);
	close(efd);
	return verdict(c);
}

static int trigger_control_on(const struct ctx *c)
{
	return write_attr(c, "power/control", "on");
}

static int restore_control_auto(const struct ctx *c)
{
	return write_attr(c, "power/control", "auto");
}

enum result case_wake_control(struct ctx *c)
{
	enum result res = wake_case(c, "power/control = on", trigger_control_on, restore_control_auto);
	char control[32] = "?";

	read_attr(c, "power/control", control, sizeof(control));
	if (strcmp(control, "auto") != 0) {
		write_attr(c, "power/control", "auto");
		expect(c, false, "power/control left at '%s', restored to auto", control);
		res = RESULT_FAIL;
	}
	return res;
}

static int trigger_ioctl(const struct ctx *c)
{
	return get_info(c, NULL);
}

enum result case_wake_ioctl(struct ctx *c)
{
	return wake_case(c, "VFIO_DEVICE_GET_INFO", trigger_ioctl, NULL);
}

enum result case_wake_region(struct ctx *c)
{
	char what[64];

	if (c->rw_index < 0)
		return skip(c, "no readable region");
	snprintf(what, sizeof(what), "pread of region %d", c->rw_index);
	return wake_case(c, what, region_read, NULL);
}

enum result case_wake_region_write(struct ctx *c)
{
	char what[64];

	if (c->rw_index < 0)
		return skip(c, "no readable region");
	snprintf(what, sizeof(what), "pwrite of region %d", c->rw_index);
	return wake_case(c, what, region_write, NULL);
}

static int trigger_reset(const struct ctx *c)
{
	return write_attr(c, "reset", "1");
}

enum result case_wake_reset(struct ctx *c)
{
	char methods[128] = "";

	if (!c->is_pci)
		return skip(c, "a %s device has no sysfs reset", c->driver[0] ? c->driver : "non-PCI");
	if (!has_attr(c, "reset"))
		return skip(c, "the device has no reset method (no sysfs reset attribute)");
	read_attr(c, "reset_method", methods, sizeof(methods));
	diag("  reset_method: %s", methods[0] ? methods : "?");
	return wake_case(c, "sysfs reset = 1", trigger_reset, NULL);
}

enum result case_config_read(struct ctx *c)
{
	char ps[32], st[32], path[PATH_MAX];
	uint8_t cfg[256];
	int efd, fd, r;
	ssize_t got;
	int64_t n;

	if (!c->is_pci)
		return skip(c, "a %s device has no host config space", c->driver[0] ? c->driver : "non-PCI");
	efd = new_eventfd();
	r = enter_wakeup(c, efd);
	if (!expect(c, r == 0, "ENTRY_WITH_WAKEUP -> %s", errname(r)) ||
	    !expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended"))
		goto out;
	power_state(c, ps);
	snprintf(path, sizeof(path), "%s/config", c->sysfs);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	got = fd >= 0 ? pread(fd, cfg, sizeof(cfg), 0) : -1;
	if (fd >= 0)
		close(fd);
	expect(c, got == (ssize_t)sizeof(cfg), "read %zd bytes of %s in %s", got, path, ps);
	if (got >= 4)
		diag("  vendor:device %02x%02x:%02x%02x", cfg[1], cfg[0], cfg[3], cfg[2]);
	if (strcmp(ps, "D3cold") == 0) {
		expect(c, wait_status(c, "active", WAIT_MS) >= 0, "a D3cold device resumed");
		n = efd_take(efd);
		expect(c, n == 1, "eventfd count %" PRId64 " (want 1)", n);
	} else {
		rt_status(c, st);
		expect(c, strcmp(st, "suspended") == 0, "a %s device stays suspended (%s)", ps, st);
		n = efd_take(efd);
		expect(c, n == 0, "eventfd quiet (count %" PRId64 ")", n);
	}
out:
	settle(c);
	close(efd);
	return verdict(c);
}

enum result case_plain_reenters(struct ctx *c)
{
	char st[32];
	int r, t;

	r = enter_plain(c);
	if (!expect(c, r == 0, "LOW_POWER_ENTRY -> %s", errname(r)) ||
	    !expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended"))
		goto out;
	r = get_info(c, NULL);
	rt_status(c, st);
	expect(c, r == 0, "VFIO_DEVICE_GET_INFO on the suspended device -> %s", errname(r));
	diag("  runtime_status right after the ioctl: %s (the put after an ioctl is asynchronous)", st);
	t = wait_status(c, "suspended", WAIT_MS);
	expect(c, t >= 0, "re-entered low power by itself (%d ms)", t);
	r = region_read(c);
	expect(c, r == 0, "region %d read on the suspended device -> %s", c->rw_index, errname(r));
	t = wait_status(c, "suspended", WAIT_MS);
	expect(c, t >= 0, "re-entered low power again (%d ms)", t);
out:
	settle(c);
	return verdict(c);
}

enum result case_exit_plain(struct ctx *c)
{
	int r;

	r = lp_exit(c);
	expect(c, r == 0, "LOW_POWER_EXIT with nothing in force -> %s", errname(r));
	r = enter_plain(c);
	if (!expect(c, r == 0, "LOW_POWER_ENTRY -> %s", errname(r)) ||
	    !expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended"))
		goto out;
	r = lp_exit(c);
	expect(c, r == 0, "LOW_POWER_EXIT -> %s", errname(r));
	expect(c, wait_status(c, "active", WAIT_MS) >= 0, "active");
	expect(c, stays_status(c, "active", WINDOW_MS) == 0, "stays active after EXIT");
	r = lp_exit(c);
	expect(c, r == 0, "a second LOW_POWER_EXIT -> %s", errname(r));
out:
	settle(c);
	return verdict(c);
}

enum result case_exit_wakeup(struct ctx *c)
{
	int efd = new_eventfd(), r;
	int64_t n;

	r = enter_wakeup(c, efd);
	if (!expect(c, r == 0, "ENTRY_WITH_WAKEUP -> %s", errname(r)) ||
	    !expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended"))
		goto out;
	r = lp_exit(c);
	expect(c, r == 0, "LOW_POWER_EXIT -> %s", errname(r));
	n = efd_take(efd);
	diag("  EXIT on the suspended device signalled the eventfd %" PRId64 " time(s)", n);
	expect(c, n == 0 || n == 1, "at most once (SPEC: EXIT may itself signal)");
	expect(c, wait_status(c, "active", WAIT_MS) >= 0, "active");
	expect(c, stays_status(c, "active", WINDOW_MS) == 0, "stays active after EXIT");
	n = efd_take(efd);
	expect(c, n == 0, "no later signal (count %" PRId64 ")", n);
out:
	settle(c);
	close(efd);
	return verdict(c);
}

enum result case_entry_while_armed(struct ctx *c)
{
	int efd1 = new_eventfd(), efd2 = new_eventfd(), r;
	int64_t n;

	r = enter_wakeup(c, efd1);
	if (!expect(c, r == 0, "first ENTRY_WITH_WAKEUP -> %s", errname(r)) ||
	    !expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended"))
		goto out;
	r = enter_wakeup(c, efd2);
	expect(c, r == 0, "second ENTRY_WITH_WAKEUP (new eventfd) while the first is in force -> %s",
	       errname(r));
	n = efd_take(efd1);
	expect(c, n == 1, "the first eventfd fired once (count %" PRId64 ")", n);
	if (r == 0) {
		expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended again under the second entry");
		n = efd_take(efd2);
		expect(c, n == 0, "the second eventfd quiet while suspended (count %" PRId64 ")", n);
		r = get_info(c, NULL);
		expect(c, r == 0, "VFIO_DEVICE_GET_INFO -> %s", errname(r));
		expect(c, wait_status(c, "active", WAIT_MS) >= 0, "resumed");
		n = efd_take(efd2);
		expect(c, n == 1, "the second eventfd fired once (count %" PRId64 ")", n);
	}
	n = efd_take(efd1);
	expect(c, n == 0, "the first eventfd fired no more (count %" PRId64 ")", n);
out:
	settle(c);
	close(efd1);
	close(efd2);
	return verdict(c);
}

/*
 * The same, without waiting for "suspended": the put after the first ioctl is
 * asynchronous, so the device may still be active. Then the second call resumes nothing,
 * the first entry stays in force and the call fails. Either outcome is consistent; a
 * mix (success without a signal, or a signal with a failure) is not.
 */
enum result case_entry_while_armed_early(struct ctx *c)
{
	int efd1 = new_eventfd(), efd2 = new_eventfd(), r1, r2;
	char st[32];
	int64_t n;

	r1 = enter_wakeup(c, efd1);
	r2 = enter_wakeup(c, efd2);
	rt_status(c, st);
	n = efd_take(efd1);
	if (!expect(c, r1 == 0, "first ENTRY_WITH_WAKEUP -> %s", errname(r1)))
		goto out;
	diag("  second ENTRY_WITH_WAKEUP right after the first -> %s, first eventfd count %" PRId64
	     ", runtime_status then %s", errname(r2), n, st);
	if (r2 == 0) {
		expect(c, n == 1, "it woke the suspended device: the first eventfd fired once");
	} else {
		expect(c, r2 == -EINVAL, "the device had not suspended yet: EINVAL (%s)", errname(r2));
		expect(c, n == 0, "and nothing fired");
		expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "the first entry is still in force: suspended");
		n = efd_take(efd2);
		expect(c, n == 0, "the rejected eventfd quiet (count %" PRId64 ")", n);
	}
out:
	settle(c);
	n = efd_take(efd2);
	if (r2 != 0)
		expect(c, n == 0, "the rejected eventfd never fires (count %" PRId64 ")", n);
	close(efd1);
	close(efd2);
	return verdict(c);
}

enum result case_plain_twice(struct ctx *c)
{
	int efd = new_eventfd(), r;
	int64_t n;

	r = enter_plain(c);
	if (!expect(c, r == 0, "first LOW_POWER_ENTRY -> %s", errname(r)) ||
	    !expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended"))
		goto out;
	/*
	 * Upstream vfio-pci (6.1 .. 6.12): a resume without a wake-up eventfd leaves
	 * pm_runtime_engaged set, so vfio_pci_runtime_pm_entry() refuses another entry.
	 */
	r = enter_plain(c);
	expect(c, r == -EINVAL, "second LOW_POWER_ENTRY while the first is in force -> %s (upstream: EINVAL)",
	       errname(r));
	expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "the first entry still holds: suspended again");
	r = enter_wakeup(c, efd);
	expect(c, r == -EINVAL, "ENTRY_WITH_WAKEUP while a plain entry is in force -> %s (upstream: EINVAL)",
	       errname(r));
	expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended again");
	n = efd_take(efd);
	expect(c, n == 0, "the rejected eventfd never fires (count %" PRId64 ")", n);
	r = lp_exit(c);
	expect(c, r == 0, "LOW_POWER_EXIT -> %s", errname(r));
	expect(c, stays_status(c, "active", WINDOW_MS) == 0, "active after EXIT");
	n = efd_take(efd);
	expect(c, n == 0, "the rejected eventfd never fires (count %" PRId64 ")", n);
out:
	settle(c);
	close(efd);
	return verdict(c);
}
