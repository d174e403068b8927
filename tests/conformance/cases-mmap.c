/*
 * Touching an mmap of the device in low power: SIGBUS, and the device stays suspended (cases
 * 28, 29).
 */
#include "conformance.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Map the first page of the mmap-able region and check it reads while in D0. */
static int map_region(struct ctx *c, volatile uint32_t **ret_p)
{
	long page = sysconf(_SC_PAGESIZE);
	uint32_t v;
	void *p;

	p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, c->device_fd, (off_t)c->mmap_offset);
	if (p == MAP_FAILED) {
		int r = -errno;

		expect(c, false, "mmap region %d: %s", c->mmap_index, errname(r));
		return r;
	}
	/* STATUS of an e1000e is at 0x8; any word of the page would do. */
	if (touch((volatile uint32_t *)p + 2, &v) != 0 && c->is_pci) {
		/* A BAR mapping faults while memory decode is off: turn it on and retry. */
		struct vfio_region_info cfg = { 0 };
		uint16_t cmd;

		if (get_region(c, VFIO_PCI_CONFIG_REGION_INDEX, &cfg) == 0 &&
		    pread(c->device_fd, &cmd, 2, (off_t)(cfg.offset + 4)) == 2) {
			diag("  mmap faulted in D0 with COMMAND 0x%04x; enabling memory decode", cmd);
			cmd |= 0x2;
			if (pwrite(c->device_fd, &cmd, 2, (off_t)(cfg.offset + 4)) != 2)
				diag("  writing COMMAND: %s", strerror(errno));
		}
	}
	if (!expect(c, touch((volatile uint32_t *)p + 2, &v) == 0, "mmap'd region %d reads in D0", c->mmap_index)) {
		munmap(p, (size_t)page);
		return -EFAULT;
	}
	diag("  word 2 of region %d: 0x%08x", c->mmap_index, v);
	*ret_p = p;
	return 0;
}

static enum result mmap_case(struct ctx *c, bool with_wakeup)
{
	long page = sysconf(_SC_PAGESIZE);
	volatile uint32_t *p = NULL;
	int efd = -1, r, bus;
	uint32_t v;
	char st[32];
	int64_t n;

	if (c->mmap_index < 0)
		return skip(c, "the device has no mmap-able region");
	if (map_region(c, &p) < 0)
		goto out;
	if (with_wakeup) {
		efd = new_eventfd();
		r = enter_wakeup(c, efd);
		expect(c, r == 0, "ENTRY_WITH_WAKEUP -> %s", errname(r));
	} else {
		r = enter_plain(c);
		expect(c, r == 0, "LOW_POWER_ENTRY -> %s", errname(r));
	}
	if (r < 0 || !expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "suspended"))
		goto out;
	bus = touch(p + 2, &v);
	expect(c, bus == 1, "touching the mapping %s", bus ? "raised SIGBUS" : "did NOT raise SIGBUS");
	bus = touch(p, &v);
	expect(c, bus == 1, "and again at another word: %s", bus ? "SIGBUS" : "no SIGBUS");
	rt_status(c, st);
	expect(c, strcmp(st, "suspended") == 0, "device still suspended (%s)", st);
	if (efd >= 0) {
		n = efd_take(efd);
		expect(c, n == 0, "eventfd quiet (count %" PRId64 ")", n);
	}
	expect(c, stays_status(c, "suspended", WINDOW_MS / 2) == 0, "the faults woke nothing");
	r = lp_exit(c);
	expect(c, r == 0, "LOW_POWER_EXIT -> %s", errname(r));
	if (efd >= 0) {
		n = efd_take(efd);
		diag("  EXIT signalled the eventfd %" PRId64 " time(s)", n);
	}
	expect(c, wait_status(c, "active", WAIT_MS) >= 0, "active");
	bus = touch(p + 2, &v);
	expect(c, bus == 0, "after EXIT the mapping reads again%s", bus ? ": SIGBUS" : "");
out:
	settle(c);
	if (p)
		munmap((void *)p, (size_t)page);
	if (efd >= 0)
		close(efd);
	return verdict(c);
}

enum result case_mmap_plain(struct ctx *c)
{
	return mmap_case(c, false);
}

enum result case_mmap_wakeup(struct ctx *c)
{
	return mmap_case(c, true);
}
