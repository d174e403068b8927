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
 * Needs libc and <linux/vfio.h> only; what old headers lack is defined below.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#ifndef VFIO_DEVICE_FEATURE
#define VFIO_DEVICE_FEATURE _IO(VFIO_TYPE, VFIO_BASE + 17)
#define VFIO_DEVICE_FEATURE_MASK (0xffff)
#define VFIO_DEVICE_FEATURE_GET (1 << 16)
#define VFIO_DEVICE_FEATURE_SET (1 << 17)
#define VFIO_DEVICE_FEATURE_PROBE (1 << 18)
#endif
#ifndef VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY
#define VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY 3
#endif
#ifndef VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP
#define VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP 4
#endif
#ifndef VFIO_DEVICE_FEATURE_LOW_POWER_EXIT
#define VFIO_DEVICE_FEATURE_LOW_POWER_EXIT 5
#endif
#ifndef VFIO_DEVICE_BIND_IOMMUFD
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif

/* Same layouts as the uAPI structs, which older headers lack. */
struct feature_hdr {
	uint32_t argsz;
	uint32_t flags;
};

struct lp_entry_with_wakeup {
	int32_t wakeup_eventfd;
	uint32_t reserved;
};

struct bind_iommufd {
	uint32_t argsz;
	uint32_t flags;
	int32_t iommufd;
	uint32_t out_devid;
};

#define POLL_MS 10
#define WAIT_MS 5000   /* longest wait for a runtime_status transition */
#define WINDOW_MS 1000 /* how long "stays active/suspended" is watched */
#define MAX_SKIPS 2    /* more skipped cases fail the run */

enum result {
	RESULT_PASS,
	RESULT_FAIL,
	RESULT_SKIP,
};

struct ctx {
	char name[256];
	char sysfs[1024]; /* resolved /sys/devices/... path; short enough to append to */
	char driver[64];
	bool is_pci;
	bool is_vfio_pci;
	bool idle_d3_disabled; /* vfio-pci's disable_idle_d3, only for vfio-pci devices */
	int group_id;
	char group_path[64];
	char cdev_path[PATH_MAX]; /* /dev/vfio/devices/vfioN, "" if absent */

	int container_fd;
	int group_fd;
	int device_fd;
	struct vfio_device_info info;

	int rw_index;          /* region read and written by the "region access" wakes */
	uint64_t rw_offset;
	uint32_t rw_word;      /* its first word, read at open: what the write wake writes back */
	int mmap_index;        /* region mapped by the SIGBUS cases, -1 if none */
	uint64_t mmap_offset;
	uint64_t mmap_size;

	unsigned failures; /* failed expectations in the current case */
	char skip_reason[256];
};

/* ---- output ---------------------------------------------------------------------- */

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

static bool expect(struct ctx *c, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool expect(struct ctx *c, bool ok, const char *fmt, ...)
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

static const char *errname(int e)
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

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- sysfs ------------------------------------------------------------------------ */

static int read_file(const char *path, char *buf, size_t size)
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

static int read_attr(const struct ctx *c, const char *attr, char *buf, size_t size)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", c->sysfs, attr);
	return read_file(path, buf, size);
}

static int write_attr(const struct ctx *c, const char *attr, const char *value)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", c->sysfs, attr);
	return write_file(path, value);
}

static bool has_attr(const struct ctx *c, const char *attr)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", c->sysfs, attr);
	return access(path, F_OK) == 0;
}

/* power/runtime_status; "?" when unreadable. */
static void rt_status(const struct ctx *c, char out[32])
{
	if (read_attr(c, "power/runtime_status", out, 32) < 0)
		strcpy(out, "?");
}

/* power_state (PCI only); "n/a" when the device has none. */
static void power_state(const struct ctx *c, char out[32])
{
	if (read_attr(c, "power_state", out, 32) < 0)
		strcpy(out, "n/a");
}

/*
 * Poll runtime_status every POLL_MS until it reads @want or @timeout_ms pass; every
 * change seen on the way is printed. Returns the ms it took, or -ETIMEDOUT.
 */
static int wait_status(const struct ctx *c, const char *want, int timeout_ms)
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
static int stays_status(const struct ctx *c, const char *want, int window_ms)
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
static int feature_argsz(const struct ctx *c, uint32_t flags, const void *data, size_t len,
			 uint32_t argsz)
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

static int feature(const struct ctx *c, uint32_t flags, const void *data, size_t len)
{
	return feature_argsz(c, flags, data, len, (uint32_t)(sizeof(struct feature_hdr) + len));
}

static int enter_plain(const struct ctx *c)
{
	return feature(c, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, NULL, 0);
}

static int enter_wakeup(const struct ctx *c, int efd)
{
	struct lp_entry_with_wakeup e = { .wakeup_eventfd = efd };

	return feature(c, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
		       &e, sizeof(e));
}

static int lp_exit(const struct ctx *c)
{
	return feature(c, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, NULL, 0);
}

static int get_info(const struct ctx *c, struct vfio_device_info *ret_info)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };

	if (ioctl(c->device_fd, VFIO_DEVICE_GET_INFO, &info) < 0)
		return -errno;
	if (ret_info)
		*ret_info = info;
	return 0;
}

static int get_region(const struct ctx *c, uint32_t index, struct vfio_region_info *ret_info)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	if (ioctl(c->device_fd, VFIO_DEVICE_GET_REGION_INFO, &info) < 0)
		return -errno;
	*ret_info = info;
	return 0;
}

/* A write of the region's first word, with the value it had at open (harmless on config space:
 * vendor and device ID are read-only). */
static int region_write(const struct ctx *c)
{
	ssize_t n;

	n = pwrite(c->device_fd, &c->rw_word, sizeof(c->rw_word), (off_t)c->rw_offset);
	if (n < 0)
		return -errno;
	return n == sizeof(c->rw_word) ? 0 : -EIO;
}

/* A read of 4 bytes from the start of the region chosen for region accesses. */
static int region_read(const struct ctx *c)
{
	uint32_t v;
	ssize_t n;

	n = pread(c->device_fd, &v, sizeof(v), (off_t)c->rw_offset);
	if (n < 0)
		return -errno;
	return n == sizeof(v) ? 0 : -EIO;
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (fd < 0) {
		diag("eventfd: %s", strerror(errno));
		exit(2);
	}
	return fd;
}

/* The eventfd's count, consuming it: 0 when the read gets EAGAIN, -errno on error. */
static int64_t efd_take(int efd)
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
static int touch(volatile uint32_t *p, uint32_t *ret_value)
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

static int find_device(struct ctx *c, const char *arg)
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

static void close_device(struct ctx *c)
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

static int open_device(struct ctx *c)
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
static void settle(const struct ctx *c)
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

/* ---- cases ------------------------------------------------------------------------ */

static enum result skip(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static enum result skip(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->skip_reason, sizeof(c->skip_reason), fmt, ap);
	va_end(ap);
	return RESULT_SKIP;
}

static enum result verdict(const struct ctx *c)
{
	return c->failures ? RESULT_FAIL : RESULT_PASS;
}

static enum result case_vfio_dev_child(struct ctx *c)
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

static enum result case_unopened(struct ctx *c)
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

static enum result case_open(struct ctx *c)
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

static enum result probe_case(struct ctx *c, uint32_t feat, const char *fname)
{
	int r = feature(c, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | feat, NULL, 0);

	expect(c, r == 0, "PROBE|SET %s -> %s", fname, errname(r));
	return verdict(c);
}

static enum result case_probe_entry(struct ctx *c)
{
	return probe_case(c, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, "LOW_POWER_ENTRY");
}

static enum result case_probe_wakeup(struct ctx *c)
{
	return probe_case(c, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, "LOW_POWER_ENTRY_WITH_WAKEUP");
}

static enum result case_probe_exit(struct ctx *c)
{
	return probe_case(c, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT, "LOW_POWER_EXIT");
}

static enum result case_get_einval(struct ctx *c)
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

static enum result case_efd_negative(struct ctx *c)
{
	int r = enter_wakeup(c, -1);

	expect(c, r == -EINVAL, "wakeup_eventfd = -1 -> %s", errname(r));
	return verdict(c);
}

static enum result case_efd_closed(struct ctx *c)
{
	int efd = new_eventfd();
	int r;

	close(efd); /* the number is now free; nothing else in this process opens files meanwhile */
	r = enter_wakeup(c, efd);
	expect(c, r == -EBADF, "closed fd %d -> %s", efd, errname(r));
	return verdict(c);
}

static enum result case_efd_pipe(struct ctx *c)
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

static enum result case_argsz_short(struct ctx *c)
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

static enum result case_failed_entries_stay_d0(struct ctx *c)
{
	expect(c, wait_status(c, "active", WAIT_MS) >= 0, "device active after the rejected entries");
	expect(c, stays_status(c, "active", WINDOW_MS) == 0, "and stays active (no entry took effect)");
	return verdict(c);
}

static enum result case_reserved(struct ctx *c)
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

static enum result case_entry_wakeup_suspends(struct ctx *c)
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

static enum result case_attrs_never_wake(struct ctx *c)
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

static enum result case_wake_control(struct ctx *c)
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

static enum result case_wake_ioctl(struct ctx *c)
{
	return wake_case(c, "VFIO_DEVICE_GET_INFO", trigger_ioctl, NULL);
}

static enum result case_wake_region(struct ctx *c)
{
	char what[64];

	if (c->rw_index < 0)
		return skip(c, "no readable region");
	snprintf(what, sizeof(what), "pread of region %d", c->rw_index);
	return wake_case(c, what, region_read, NULL);
}

static enum result case_wake_region_write(struct ctx *c)
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

static enum result case_wake_reset(struct ctx *c)
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

static enum result case_config_read(struct ctx *c)
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

static enum result case_plain_reenters(struct ctx *c)
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

static enum result case_exit_plain(struct ctx *c)
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

static enum result case_exit_wakeup(struct ctx *c)
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

static enum result case_entry_while_armed(struct ctx *c)
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
static enum result case_entry_while_armed_early(struct ctx *c)
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

static enum result case_plain_twice(struct ctx *c)
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

static enum result case_mmap_plain(struct ctx *c)
{
	return mmap_case(c, false);
}

static enum result case_mmap_wakeup(struct ctx *c)
{
	return mmap_case(c, true);
}

static enum result case_second_open(struct ctx *c)
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

static enum result case_close_idles(struct ctx *c)
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
