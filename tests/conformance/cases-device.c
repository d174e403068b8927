/*
 * The device itself, before, while and after vfio-lp-conformance holds it: its vfio-dev child,
 * the unopened device, the open (cases 1-3); a second open of the held device, the close
 * (cases 30, 31).
 */
#include "conformance.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum result case_vfio_dev_child(struct ctx *c)
{
	char pattern[PATH_MAX];
	glob_t g;

	snprintf(pattern, sizeof(pattern), "%s/vfio-dev/vfio*", c->sysfs);
	if (expect(c, glob(pattern, 0, NULL, &g) == 0, "%s/vfio-dev/vfioN exists", c->sysfs)) {
		diag("  %s, cdev %s", strrchr(g.gl_pathv[0], '/') + 1,
		     c->cdev_path[0] ? c->cdev_path : "absent (no VFIO_DEVICE_CDEV)");
		globfree(&g);
	}
	return verdict(c);
}

enum result case_unopened(struct ctx *c)
{
	char control[32];

	if (read_attr(c, "power/control", control, sizeof(control)) == 0)
		expect(c, strcmp(control, "auto") == 0, "power/control is '%s' (runtime PM allowed)", control);
	if (c->idle_d3_disabled) {
		diag("  vfio-pci disable_idle_d3=Y: the kernel keeps an unopened device in D0");
		expect(c, wait_status(c, "active", WAIT_MS) >= 0, "unopened device is active");
		expect(c, stays_status(c, "active", WINDOW_MS) == 0, "and stays active");
	} else {
		expect(c, wait_status(c, "suspended", WAIT_MS) >= 0, "unopened device is runtime-suspended");
	}
	return verdict(c);
}

enum result case_open(struct ctx *c)
{
	char ps[32];
	int r;

	r = open_device(c);
	if (!expect(c, r == 0, "device opened through %s + container (%s)", c->group_path, errname(r)))
		return RESULT_FAIL;
	expect(c, wait_status(c, "active", WAIT_MS) >= 0, "open resumed the device");
	power_state(c, ps);
	if (c->is_pci)
		expect(c, strcmp(ps, "D0") == 0, "power_state is D0 (%s)", ps);
	expect(c, c->rw_index >= 0, "a readable region exists (region %d)", c->rw_index);
	return verdict(c);
}
enum result case_second_open(struct ctx *c)
{
	int fd, r;

	fd = open(c->group_path, O_RDWR | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	expect(c, r == -EBUSY, "second open of %s -> %s", c->group_path, errname(r));
	if (fd >= 0)
		close(fd);

	if (!c->cdev_path[0]) {
		diag("  no device cdev: only the group path is checked");
		return verdict(c);
	}
	fd = open(c->cdev_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		expect(c, r == -EBUSY, "open %s -> %s", c->cdev_path, errname(r));
	} else {
		/* The group block is checked before the iommufd, so any valid fd number will do. */
		int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		struct bind_iommufd b = { .argsz = sizeof(b), .iommufd = nullfd };

		r = ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &b) < 0 ? -errno : 0;
		expect(c, r == -EBUSY, "open %s succeeds, VFIO_DEVICE_BIND_IOMMUFD -> %s", c->cdev_path, errname(r));
		close(nullfd);
		close(fd);
	}
	return verdict(c);
}

enum result case_close_idles(struct ctx *c)
{
	settle(c);
	close_device(c);
	diag("  device, group and container closed");
	if (c->idle_d3_disabled) {
		diag("  vfio-pci disable_idle_d3=Y: a closed device stays in D0");
		expect(c, wait_status(c, "active", WAIT_MS) >= 0, "active after close");
		expect(c, stays_status(c, "active", WINDOW_MS) == 0, "and stays active");
	} else {
		int t = wait_status(c, "suspended", WAIT_MS);

		expect(c, t >= 0, "idled into runtime suspend after close (%d ms)", t);
	}
	return verdict(c);
}
