/*
 * The harness of vfio-lp-conformance (conformance.h): TAP output and expectations, sysfs
 * attributes and runtime_status polling, the VFIO feature calls, touching a mapping that may
 * raise SIGBUS, finding and opening the device, and bringing it back to the known state
 * between cases.
 */
#include "conformance.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* ---- output ---------------------------------------------------------------------- */

void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

bool expect(struct ctx *c, bool ok, const char *fmt, ...)
{
	va_list ap;

	fputs(ok ? "#   ok: " : "#   FAIL: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	if (!ok)
		c->failures++;
	return ok;
}

const char *errname(int e)
{
	static char buf[32];

	if (e < 0)
		e = -e;
	switch (e) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case EBADF: return "EBADF";
	case EBUSY: return "EBUSY";
	case ENOTTY: return "ENOTTY";
	case EFAULT: return "EFAULT";
	case EIO: return "EIO";
	case ENODEV: return "ENODEV";
	case ENOENT: return "ENOENT";
	case EAGAIN: return "EAGAIN";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENXIO: return "ENXIO";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EBADFD: return "EBADFD";
	}
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- sysfs ------------------------------------------------------------------------ */

int read_file(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static int write_file(const char *path, const char *value)
{
	size_t len = strlen(value);
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n < 0)
		r = -errno;
	else if ((size_t)n != len)
		r = -EIO;
	close(fd);
	return r;
}

int read_attr(const struct ctx *c, const char *attr, char *buf, size_t size)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", c->sysfs, attr);
	return read_file(path, buf, size);
}

int write_attr(const struct ctx *c, const char *attr, const char *value)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", c->sysfs, attr);
	return write_file(path, value);
}

bool has_attr(const struct ctx *c, const char *attr)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", c->sysfs, attr);
	return access(path, F_OK) == 0;
}

/* power/runtime_status; "?" when unreadable. */
void rt_status(const struct ctx *c, char out[32])
{
	if (read_attr(c, "power/runtime_status", out, 32) < 0)
		strcpy(out, "?");
}

/* power_state (PCI only); "n/a" when the device has none. */
void power_state(const struct ctx *c, char out[32])
{
	if (read_attr(c, "power_state", out, 32) < 0)
		strcpy(out, "n/a");
}

/*
 * Poll runtime_status every POLL_MS until it reads @want or @timeout_ms pass; every
 * change seen on the way is printed. Returns the ms it took, or -ETIMEDOUT.
 */
int wait_status(const struct ctx *c, const char *want, int timeout_ms)
{
	int64_t start = now_ms(), t;
	char cur[32], last[32] = "", ps[32];

	for (;;) {
		rt_status(c, cur);
		t = now_ms() - start;
		if (strcmp(cur, last) != 0) {
			power_state(c, ps);
			diag("  +%" PRId64 " ms runtime_status %s, power_state %s", t, cur, ps);
			strcpy(last, cur);
		}
		if (strcmp(cur, want) == 0)
			return (int)t;
		if (t >= timeout_ms) {
			diag("  runtime_status still '%s' after %d ms, wanted '%s'", cur, timeout_ms, want);
			return -ETIMEDOUT;
		}
		sleep_ms(POLL_MS);
	}
}

/* Watch runtime_status for @window_ms: 0 if it read @want throughout, else -1. */
int stays_status(const struct ctx *c, const char *want, int window_ms)
{
	int64_t start = now_ms(), t;
	char cur[32], ps[32];

	for (;;) {
		rt_status(c, cur);
		t = now_ms() - start;
		if (strcmp(cur, want) != 0) {
			power_state(c, ps);
			diag("  runtime_status became %s (power_state %s) %" PRId64 " ms into a %d ms window",
			     cur, ps, t, window_ms);
			return -1;
		}
		if (t >= window_ms) {
			power_state(c, ps);
			diag("  runtime_status stayed %s for %d ms (power_state %s)", want, window_ms, ps);
			return 0;
		}
		sleep_ms(POLL_MS);
	}
}

/* ---- VFIO ------------------------------------------------------------------------- */

/* VFIO_DEVICE_FEATURE with @len bytes of @data and an explicit argsz. */
int feature_argsz(const struct ctx *c, uint32_t flags, const void *data, size_t len, uint32_t argsz)
{
	uint64_t buf[8] = { 0 };
	struct feature_hdr *h = (struct feature_hdr *)buf;

	if (len > sizeof(buf) - sizeof(*h))
		return -E2BIG;
	h->argsz = argsz;
	h->flags = flags;
	if (len)
		memcpy((uint8_t *)buf + sizeof(*h), data, len);
	return ioctl(c->device_fd, VFIO_DEVICE_FEATURE, buf) < 0 ? -errno : 0;
}

int feature(const struct ctx *c, uint32_t flags, const void *data, size_t len)
{
	return feature_argsz(c, flags, data, len, (uint32_t)(sizeof(struct feature_hdr) + len));
}

int enter_plain(const struct ctx *c)
{
	return feature(c, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, NULL, 0);
}

int enter_wakeup(const struct ctx *c, int efd)
{
	struct lp_entry_with_wakeup e = { .wakeup_eventfd = efd };

	return feature(c, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
		       &e, sizeof(e));
}

int lp_exit(const struct ctx *c)
{
	return feature(c, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, NULL, 0);
}

int get_info(const struct ctx *c, struct vfio_device_info *ret_info)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };

	if (ioctl(c->device_fd, VFIO_DEVICE_GET_INFO, &info) < 0)
		return -errno;
	if (ret_info)
		*ret_info = info;
	return 0;
}

int get_region(const struct ctx *c, uint32_t index, struct vfio_region_info *ret_info)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	if (ioctl(c->device_fd, VFIO_DEVICE_GET_REGION_INFO, &info) < 0)
		return -errno;
	*ret_info = info;
	return 0;
}

/* A write of the region's first word, with the value it had at open (harmless on config space:
 * vendor and device ID are read-only). */
int region_write(const struct ctx *c)
{
	ssize_t n;

	n = pwrite(c->device_fd, &c->rw_word, sizeof(c->rw_word), (off_t)c->rw_offset);
	if (n < 0)
		return -errno;
	return n == sizeof(c->rw_word) ? 0 : -EIO;
}

/* A read of 4 bytes from the start of the region chosen for region accesses. */
int region_read(const struct ctx *c)
{
	uint32_t v;
	ssize_t n;

	n = pread(c->device_fd, &v, sizeof(v), (off_t)c->rw_offset);
	if (n < 0)
		return -errno;
	return n == sizeof(v) ? 0 : -EIO;
}

int new_eventfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (fd < 0) {
		diag("eventfd: %s", strerror(errno));
		exit(2);
	}
	return fd;
}

/* The eventfd's count, consuming it: 0 when the read gets EAGAIN, -errno on error. */
int64_t efd_take(int efd)
{
	uint64_t v;
	ssize_t n = read(efd, &v, sizeof(v));

	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	return n == sizeof(v) ? (int64_t)v : -EIO;
}

/* ---- mmap touching ---------------------------------------------------------------- */

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read one 32-bit word at @p: 0 (value in *ret_value), or 1 when the read raised SIGBUS. */
int touch(volatile uint32_t *p, uint32_t *ret_value)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	int r = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jmp, 1) == 0) {
		bus_armed = 1;
		*ret_value = *p;
		bus_armed = 0;
	} else {
		bus_armed = 0;
		r = 1;
	}
	sigaction(SIGBUS, &old, NULL);
	return r;
}

/* ---- finding and opening the device ----------------------------------------------- */

int find_device(struct ctx *c, const char *arg)
{
	static const char *const buses[] = { "/sys/bus/pci/devices", "/sys/bus/platform/devices" };
	char path[PATH_MAX], link[PATH_MAX], buf[32];
	const char *slash;
	glob_t g;
	ssize_t n;

	slash = strrchr(arg, '/');
	snprintf(c->name, sizeof(c->name), "%s", slash ? slash + 1 : arg);
	path[0] = '\0';
	if (slash) {
		snprintf(path, sizeof(path), "%s", arg);
	} else {
		for (size_t i = 0; i < sizeof(buses) / sizeof(buses[0]) && !path[0]; i++) {
			snprintf(path, sizeof(path), "%s/%s", buses[i], arg);
			if (access(path, F_OK) < 0)
				path[0] = '\0';
		}
		if (!path[0]) {
			char pattern[PATH_MAX];

			snprintf(pattern, sizeof(pattern), "/sys/bus/*/devices/%s", arg);
			if (glob(pattern, 0, NULL, &g) == 0) {
				snprintf(path, sizeof(path), "%s", g.gl_pathv[0]);
				globfree(&g);
			}
		}
	}
	if (!path[0] || !realpath(path, link) || strlen(link) >= sizeof(c->sysfs)) {
		diag("no device '%s' under /sys/bus/*/devices", arg);
		return -ENOENT;
	}
	strcpy(c->sysfs, link);

	snprintf(path, sizeof(path), "%s/subsystem", c->sysfs);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	c->is_pci = n > 0 && strcmp(strrchr(link, '/') ? strrchr(link, '/') + 1 : link, "pci") == 0;

	snprintf(path, sizeof(path), "%s/driver", c->sysfs);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	snprintf(c->driver, sizeof(c->driver), "%s", n > 0 ? strrchr(link, '/') + 1 : "");
	c->is_vfio_pci = strcmp(c->driver, "vfio-pci") == 0;
	if (c->is_vfio_pci && read_file("/sys/module/vfio_pci/parameters/disable_idle_d3", buf, sizeof(buf)) == 0)
		c->idle_d3_disabled = buf[0] == 'Y' || buf[0] == '1';

	snprintf(path, sizeof(path), "%s/iommu_group", c->sysfs);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0) {
		diag("%s has no iommu_group link", c->sysfs);
		return -ENOENT;
	}
	link[n] = '\0';
	c->group_id = atoi(strrchr(link, '/') + 1);
	snprintf(c->group_path, sizeof(c->group_path), "/dev/vfio/%d", c->group_id);
	if (access(c->group_path, F_OK) < 0)
		snprintf(c->group_path, sizeof(c->group_path), "/dev/vfio/noiommu-%d", c->group_id);

	c->cdev_path[0] = '\0';
	snprintf(path, sizeof(path), "%s/vfio-dev/vfio*", c->sysfs);
	if (glob(path, 0, NULL, &g) == 0) {
		snprintf(link, sizeof(link), "/dev/vfio/devices/%s", strrchr(g.gl_pathv[0], '/') + 1);
		if (access(link, F_OK) == 0)
			snprintf(c->cdev_path, sizeof(c->cdev_path), "%s", link);
		globfree(&g);
	}
	return 0;
}

void close_device(struct ctx *c)
{
	if (c->device_fd >= 0)
		close(c->device_fd);
	if (c->group_fd >= 0)
		close(c->group_fd);
	if (c->container_fd >= 0)
		close(c->container_fd);
	c->device_fd = c->group_fd = c->container_fd = -1;
}

/* Pick the region for plain reads and the first mmap-able one. */
static void probe_regions(struct ctx *c)
{
	struct vfio_region_info ri = { 0 };

	c->rw_index = -1;
	c->mmap_index = -1;
	if ((c->info.flags & VFIO_DEVICE_FLAGS_PCI) && c->info.num_regions > VFIO_PCI_CONFIG_REGION_INDEX &&
	    get_region(c, VFIO_PCI_CONFIG_REGION_INDEX, &ri) == 0 && (ri.flags & VFIO_REGION_INFO_FLAG_READ)) {
		c->rw_index = VFIO_PCI_CONFIG_REGION_INDEX;
		c->rw_offset = ri.offset;
	}
	for (uint32_t i = 0; i < c->info.num_regions; i++) {
		if (get_region(c, i, &ri) < 0 || ri.size == 0)
			continue;
		diag("region %u: size 0x%" PRIx64 " offset 0x%" PRIx64 " flags 0x%x%s%s%s", i,
		     (uint64_t)ri.size, (uint64_t)ri.offset, ri.flags,
		     ri.flags & VFIO_REGION_INFO_FLAG_READ ? " read" : "",
		     ri.flags & VFIO_REGION_INFO_FLAG_WRITE ? " write" : "",
		     ri.flags & VFIO_REGION_INFO_FLAG_MMAP ? " mmap" : "");
		if (c->rw_index < 0 && (ri.flags & VFIO_REGION_INFO_FLAG_READ) && ri.size >= 4) {
			c->rw_index = (int)i;
			c->rw_offset = ri.offset;
		}
		if (c->mmap_index < 0 && (ri.flags & VFIO_REGION_INFO_FLAG_MMAP) &&
		    ri.size >= (uint64_t)sysconf(_SC_PAGESIZE)) {
			c->mmap_index = (int)i;
			c->mmap_offset = ri.offset;
			c->mmap_size = ri.size;
		}
	}
}

int open_device(struct ctx *c)
{
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	int r;

	c->container_fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (c->container_fd < 0) {
		r = -errno;
		diag("open /dev/vfio/vfio: %s", errname(r));
		return r;
	}
	if (ioctl(c->container_fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		diag("unexpected VFIO API version");
		return -EINVAL;
	}
	c->group_fd = open(c->group_path, O_RDWR | O_CLOEXEC);
	if (c->group_fd < 0) {
		r = -errno;
		diag("open %s: %s", c->group_path, errname(r));
		return r;
	}
	if (ioctl(c->group_fd, VFIO_GROUP_GET_STATUS, &gs) < 0 || !(gs.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		diag("group %d is not viable (every device in it must be bound to a vfio driver)", c->group_id);
		return -EINVAL;
	}
	if (ioctl(c->group_fd, VFIO_GROUP_SET_CONTAINER, &c->container_fd) < 0) {
		r = -errno;
		diag("VFIO_GROUP_SET_CONTAINER: %s", errname(r));
		return r;
	}
	if (ioctl(c->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0 &&
	    ioctl(c->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) {
		r = -errno;
		diag("VFIO_SET_IOMMU (type1v2, type1): %s", errname(r));
		return r;
	}
	c->device_fd = ioctl(c->group_fd, VFIO_GROUP_GET_DEVICE_FD, c->name);
	if (c->device_fd < 0) {
		r = -errno;
		diag("VFIO_GROUP_GET_DEVICE_FD %s: %s", c->name, errname(r));
		return r;
	}
	r = get_info(c, &c->info);
	if (r < 0) {
		diag("VFIO_DEVICE_GET_INFO: %s", errname(r));
		return r;
	}
	diag("device fd open: flags 0x%x (%s), %u regions, %u irqs", c->info.flags,
	     c->info.flags & VFIO_DEVICE_FLAGS_PCI ? "pci" :
	     c->info.flags & VFIO_DEVICE_FLAGS_PLATFORM ? "platform" : "other",
	     c->info.num_regions, c->info.num_irqs);
	probe_regions(c);
	if (c->rw_index >= 0) {
		ssize_t n = pread(c->device_fd, &c->rw_word, sizeof(c->rw_word), (off_t)c->rw_offset);

		if (n != sizeof(c->rw_word)) {
			r = n < 0 ? -errno : -EIO;
			diag("reading region %d: %s", c->rw_index, errname(r));
			return r;
		}
		diag("region %d is the one read and written; its first word is 0x%08x", c->rw_index, c->rw_word);
	}
	return 0;
}

/*
 * Bring a held device back to the known state between cases: no entry in force
 * (EXIT), active. EXIT is an ioctl, so a device still suspended is resumed first.
 */
void settle(const struct ctx *c)
{
	char st[32];
	int r;

	if (c->device_fd < 0)
		return;
	r = lp_exit(c);
	if (r < 0)
		diag("  settle: LOW_POWER_EXIT: %s", errname(r));
	rt_status(c, st);
	if (strcmp(st, "active") != 0)
		wait_status(c, "active", WAIT_MS);
}

/* ---- case results ----------------------------------------------------------------- */

enum result skip(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->skip_reason, sizeof(c->skip_reason), fmt, ap);
	va_end(ap);
	return RESULT_SKIP;
}

enum result verdict(const struct ctx *c)
{
	return c->failures ? RESULT_FAIL : RESULT_PASS;
}
