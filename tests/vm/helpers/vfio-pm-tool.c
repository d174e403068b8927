/*
 * vfio-pm-tool: drives one VFIO device step by step for the VM scenarios (kmod-*.sh):
 * opens it through /dev/vfio/vfio + its group (type1), enters and leaves low power,
 * waits for the wake-up eventfd, the request IRQ or a runtime_status, touches an mmap.
 * Also writes a sysfs attribute many times in a row (--poke), for wake storms; with --yield it
 * gives the CPU away after each write, so that whoever the write woke (the daemon) runs before the
 * next one (one TCG vCPU: without it most writes of a burst find the device still awake).
 *
 * Needs libc and <linux/vfio.h>; what old headers lack is defined below.
 * Exit: 0 every step did what was expected, 1 a step failed, 2 usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
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
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#ifndef VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY
#define VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY 3
#define VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP 4
#define VFIO_DEVICE_FEATURE_LOW_POWER_EXIT 5
#endif

/* vfio-pm-sim's request IRQ; vfio-pci's is VFIO_PCI_REQ_IRQ_INDEX. */
#define SIM_REQ_IRQ_INDEX 0

struct tool {
	const char *name;
	char sysfs[PATH_MAX];
	int container_fd, group_fd, device_fd;
	int wake_fd, req_fd;
	struct vfio_device_info info;
	uint64_t region_offset;
	volatile uint32_t *map;
};

static volatile sig_atomic_t stop_requested;
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("vfio-pm-tool: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop_requested)
		;
}

static const struct { const char *name; int value; } errnames[] = {
	{ "EPERM", EPERM }, { "ENOENT", ENOENT }, { "EIO", EIO }, { "ENXIO", ENXIO },
	{ "EBADF", EBADF }, { "EAGAIN", EAGAIN }, { "ENOMEM", ENOMEM }, { "EACCES", EACCES },
	{ "EFAULT", EFAULT }, { "EBUSY", EBUSY }, { "ENODEV", ENODEV }, { "EINVAL", EINVAL },
	{ "ENOTTY", ENOTTY }, { "ENOSPC", ENOSPC }, { "ETIMEDOUT", ETIMEDOUT },
	{ "EOPNOTSUPP", EOPNOTSUPP }, { "EREMOTEIO", EREMOTEIO }, { "ENOSYS", ENOSYS },
};

static const char *errname(int e)
{
	static char buf[32];

	if (e < 0)
		e = -e;
	if (e == 0)
		return "0";
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].value == e)
			return errnames[i].name;
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

/* "EIO", "5" or "-5" -> 5; -1 if unknown. */
static int parse_errno(const char *s)
{
	char *end;
	long v;

	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (strcmp(errnames[i].name, s) == 0)
			return errnames[i].value;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < -4095 || v > 4095)
		return -1;
	return (int)(v < 0 ? -v : v);
}

/* ---- sysfs and device ------------------------------------------------------------- */

static int read_attr(const struct tool *t, const char *attr, char *buf, size_t size)
{
	char path[PATH_MAX + 64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", t->sysfs, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int find_device(struct tool *t)
{
	static const char *const buses[] = { "/sys/bus/platform/devices", "/sys/bus/pci/devices" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(buses) / sizeof(buses[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", buses[i], t->name);
		if (realpath(path, t->sysfs))
			return 0;
	}
	return -ENOENT;
}

static void close_device(struct tool *t)
{
	if (t->map) {
		munmap((void *)t->map, (size_t)sysconf(_SC_PAGESIZE));
		t->map = NULL;
	}
	if (t->device_fd >= 0)
		close(t->device_fd);
	if (t->group_fd >= 0)
		close(t->group_fd);
	if (t->container_fd >= 0)
		close(t->container_fd);
	t->device_fd = t->group_fd = t->container_fd = -1;
}

static int open_device(struct tool *t)
{
	char path[PATH_MAX + 32], link[PATH_MAX];
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = 0 };
	ssize_t n;
	int r;

	if (find_device(t) < 0)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/iommu_group", t->sysfs);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return -ENOENT;
	link[n] = '\0';
	snprintf(path, sizeof(path), "/dev/vfio/%s", strrchr(link, '/') + 1);

	t->container_fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (t->container_fd < 0)
		return -errno;
	t->group_fd = open(path, O_RDWR | O_CLOEXEC);
	if (t->group_fd < 0)
		return -errno;
	if (ioctl(t->group_fd, VFIO_GROUP_GET_STATUS, &gs) < 0)
		return -errno;
	if (!(gs.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -EINVAL;
	if (ioctl(t->group_fd, VFIO_GROUP_SET_CONTAINER, &t->container_fd) < 0)
		return -errno;
	if (ioctl(t->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0 &&
	    ioctl(t->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0)
		return -errno;
	t->device_fd = ioctl(t->group_fd, VFIO_GROUP_GET_DEVICE_FD, t->name);
	if (t->device_fd < 0)
		return -errno;
	t->info.argsz = sizeof(t->info);
	if (ioctl(t->device_fd, VFIO_DEVICE_GET_INFO, &t->info) < 0)
		return -errno;
	r = ioctl(t->device_fd, VFIO_DEVICE_GET_REGION_INFO, &ri);
	t->region_offset = r == 0 ? ri.offset : 0;
	return 0;
}

static int feature(const struct tool *t, uint32_t flags, const void *data, size_t size)
{
	char buf[sizeof(struct vfio_device_feature) + 16] __attribute__((aligned(8)));
	struct vfio_device_feature *f = (struct vfio_device_feature *)buf;

	f->argsz = (uint32_t)(sizeof(*f) + size);
	f->flags = flags;
	if (size)
		memcpy(f->data, data, size);
	return ioctl(t->device_fd, VFIO_DEVICE_FEATURE, f) < 0 ? -errno : 0;
}

static int enter_wakeup(const struct tool *t)
{
	struct { int32_t wakeup_eventfd; uint32_t reserved; } e = { .wakeup_eventfd = t->wake_fd };

	return feature(t, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
		       &e, sizeof(e));
}

static int register_request(struct tool *t)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)] __attribute__((aligned(8)));
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	int32_t fd;

	if (t->req_fd < 0) {
		t->req_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (t->req_fd < 0)
			return -errno;
	}
	fd = t->req_fd;
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = (t->info.flags & VFIO_DEVICE_FLAGS_PCI) ? VFIO_PCI_REQ_IRQ_INDEX : SIM_REQ_IRQ_INDEX;
	set->start = 0;
	set->count = 1;
	memcpy(set->data, &fd, sizeof(fd));
	return ioctl(t->device_fd, VFIO_DEVICE_SET_IRQS, set) < 0 ? -errno : 0;
}

/* Waits up to @ms (-1: forever) for @fd to be readable, then reads its count. */
static int64_t efd_wait(int fd, long ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;
	int r;

	r = poll(&p, 1, (int)ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return errno == EAGAIN ? 0 : -errno;
	return (int64_t)v;
}

static void on_sigbus(int sig)
{
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* 0: the word was read; 1: SIGBUS. */
static int touch(volatile uint32_t *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	int r = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jmp, 1) == 0) {
		bus_armed = 1;
		(void)*p;
		bus_armed = 0;
	} else {
		bus_armed = 0;
		r = 1;
	}
	sigaction(SIGBUS, &old, NULL);
	return r;
}

static void on_term(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---- steps -------------------------------------------------------------------------- */

/* True if @s is a decimal integer, optionally negative. */
static bool is_int(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/*
 * Splits "key[=value][/ms]" in place: *value and *ms are NULL when absent. Only a
 * last "/" followed by an integer starts MS, so values may be paths.
 */
static void split_step(char *step, char **value, char **ms)
{
	char *slash = strrchr(step, '/'), *eq;

	*ms = NULL;
	if (slash && is_int(slash + 1)) {
		*slash = '\0';
		*ms = slash + 1;
	}
	eq = strchr(step, '=');
	*value = NULL;
	if (eq) {
		*eq = '\0';
		*value = eq + 1;
	}
}

static bool expect_result(const char *what, int r, const char *want)
{
	int w = want ? parse_errno(want) : 0;

	if (w < 0) {
		say("%s: unknown errno '%s'", what, want);
		return false;
	}
	if (-r != w) {
		say("FAIL %s -> %s, expected %s", what, errname(r), errname(w));
		return false;
	}
	say("%s -> %s", what, errname(r));
	return true;
}

static bool need_open(const struct tool *t, const char *step)
{
	if (t->device_fd >= 0)
		return true;
	say("FAIL %s: the device is not open", step);
	return false;
}

/* Runs @rearm_max rounds (0: until SIGTERM or a request): wait for the wake-up, re-enter. */
static bool rearm_loop(struct tool *t, long rearm_max)
{
	struct sigaction sa = { .sa_handler = on_term }, old;
	long rounds = 0, failures = 0;
	bool requested = false;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old);
	while (!stop_requested && (rearm_max == 0 || rounds < rearm_max)) {
		struct pollfd p[2] = { { .fd = t->wake_fd, .events = POLLIN },
				       { .fd = t->req_fd, .events = POLLIN } };
		uint64_t v;
		int r;

		r = poll(p, t->req_fd >= 0 ? 2 : 1, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			say("FAIL rearm: poll: %s", strerror(errno));
			return false;
		}
		if (t->req_fd >= 0 && (p[1].revents & POLLIN)) {
			requested = true;
			break;
		}
		if (!(p[0].revents & POLLIN) || read(t->wake_fd, &v, sizeof(v)) != sizeof(v))
			continue;
		rounds++;
		r = enter_wakeup(t);
		if (r < 0 && failures++ < 5)
			say("rearm: round %ld: ENTRY_WITH_WAKEUP -> %s", rounds, errname(r));
	}
	sigaction(SIGTERM, &old, NULL);
	say("rearm: %ld wake-ups, %ld re-entries failed%s", rounds, failures,
	    requested ? ", stopped by the request IRQ" : stop_requested ? ", stopped by SIGTERM" : "");
	return failures == 0;
}

static bool run_step(struct tool *t, char *step)
{
	char *value, *ms_s;
	long ms;
	int r;

	split_step(step, &value, &ms_s);
	ms = ms_s ? strtol(ms_s, NULL, 10) : -2;

	if (strcmp(step, "open") == 0) {
		if (t->device_fd >= 0)
			close_device(t);
		r = open_device(t);
		if (r < 0)
			close_device(t);
		return expect_result("open", r, value);
	}
	if (strcmp(step, "close") == 0) {
		close_device(t);
		say("closed");
		return true;
	}
	if (strcmp(step, "sleep") == 0) {
		sleep_ms(value ? strtol(value, NULL, 10) : 0);
		return true;
	}
	if (strcmp(step, "ready") == 0) {
		int fd = value ? open(value, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : -1;

		if (fd < 0) {
			say("FAIL ready: cannot create '%s'", value ? value : "");
			return false;
		}
		close(fd);
		return true;
	}
	if (strcmp(step, "await") == 0) {
		int64_t deadline = now_ms() + (ms >= 0 ? ms : 30000);

		while (!value || access(value, F_OK) < 0) {
			if (!value || (ms != -1 && now_ms() >= deadline) || stop_requested) {
				say("FAIL await: no file '%s'", value ? value : "");
				return false;
			}
			sleep_ms(10);
		}
		return true;
	}
	if (strcmp(step, "status") == 0) {
		int64_t deadline = now_ms() + (ms >= 0 ? ms : 5000);
		char cur[32] = "";

		if (!value || find_device(t) < 0) {
			say("FAIL status: no device or no status given");
			return false;
		}
		do {
			if (read_attr(t, "power/runtime_status", cur, sizeof(cur)) == 0 &&
			    strcmp(cur, value) == 0) {
				say("runtime_status %s", cur);
				return true;
			}
			sleep_ms(10);
		} while (now_ms() < deadline);
		say("FAIL runtime_status is %s, not %s", cur, value);
		return false;
	}
	if (!need_open(t, step))
		return false;

	if (strcmp(step, "info") == 0) {
		struct vfio_device_info info = { .argsz = sizeof(info) };

		r = ioctl(t->device_fd, VFIO_DEVICE_GET_INFO, &info) < 0 ? -errno : 0;
		if (r == 0)
			say("info: flags 0x%x, %u regions, %u irqs", info.flags, info.num_regions,
			    info.num_irqs);
		return expect_result("GET_INFO", r, value);
	}
	if (strcmp(step, "read") == 0) {
		uint32_t v;
		ssize_t n = pread(t->device_fd, &v, sizeof(v), (off_t)t->region_offset);

		return expect_result("region read", n < 0 ? -errno : n == sizeof(v) ? 0 : -EIO, value);
	}
	if (strcmp(step, "entry") == 0)
		return expect_result("LOW_POWER_ENTRY",
				     feature(t, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
					     NULL, 0), value);
	if (strcmp(step, "wakeup") == 0)
		return expect_result("LOW_POWER_ENTRY_WITH_WAKEUP", enter_wakeup(t), value);
	if (strcmp(step, "exit") == 0)
		return expect_result("LOW_POWER_EXIT",
				     feature(t, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
					     NULL, 0), value);
	if (strcmp(step, "req") == 0)
		return expect_result("SET_IRQS request eventfd", register_request(t), value);
	if (strcmp(step, "fired") == 0) {
		int64_t n = efd_wait(t->wake_fd, ms >= 0 ? ms : 5000);
		long want = value ? strtol(value, NULL, 10) : -1;

		if (n <= 0 || (want >= 0 && n != want)) {
			say("FAIL wake-up eventfd count %lld, expected %s", (long long)n, value ? value : ">= 1");
			return false;
		}
		say("wake-up eventfd fired (count %lld)", (long long)n);
		return true;
	}
	if (strcmp(step, "quiet") == 0) {
		int64_t n = efd_wait(t->wake_fd, ms >= 0 ? ms : 1000);

		if (n != 0) {
			say("FAIL wake-up eventfd fired (count %lld)", (long long)n);
			return false;
		}
		say("wake-up eventfd quiet");
		return true;
	}
	if (strcmp(step, "request") == 0) {
		int64_t n;

		if (t->req_fd < 0) {
			say("FAIL request: no request eventfd registered (step req)");
			return false;
		}
		n = efd_wait(t->req_fd, ms >= -1 && ms != -2 ? ms : 30000);
		if (n <= 0) {
			say("FAIL no request IRQ");
			return false;
		}
		say("request IRQ received (count %lld)", (long long)n);
		return true;
	}
	if (strcmp(step, "rearm") == 0)
		return rearm_loop(t, value ? strtol(value, NULL, 10) : 0);
	if (strcmp(step, "mmap") == 0) {
		long page = sysconf(_SC_PAGESIZE);
		void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, t->device_fd,
			       (off_t)t->region_offset);

		if (p == MAP_FAILED)
			return expect_result("mmap", -errno, value);
		t->map = p;
		return expect_result("mmap", 0, value);
	}
	if (strcmp(step, "sigbus") == 0 || strcmp(step, "touch") == 0) {
		bool want_bus = step[0] == 's';
		int bus;

		if (!t->map) {
			say("FAIL %s: nothing mapped (step mmap)", step);
			return false;
		}
		bus = touch(t->map + 2);
		if (bus != want_bus) {
			say("FAIL touching the mapping: %s", bus ? "SIGBUS" : "no SIGBUS");
			return false;
		}
		say("touching the mapping: %s", bus ? "SIGBUS" : "read");
		return true;
	}
	say("unknown step '%s'", step);
	exit(2);
}

/* Writes "1" to @path @count times, with sched_yield() after each if @yield; reports the errors
 * by errno. */
static int poke(const char *path, long count, bool yield)
{
	long ok = 0, failed = 0;
	int64_t t0 = now_ms();
	int fd, first_err = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		say("FAIL open %s: %s", path, strerror(errno));
		return 1;
	}
	for (long i = 0; i < count; i++) {
		if (pwrite(fd, "1", 1, 0) == 1) {
			ok++;
		} else {
			if (!failed++)
				first_err = errno;
		}
		if (yield)
			(void)sched_yield();
	}
	close(fd);
	say("poke %s: %ld writes, %ld failed%s%s, %lld ms", path, ok, failed,
	    failed ? ", first: " : "", failed ? errname(first_err) : "", (long long)(now_ms() - t0));
	return failed ? 1 : 0;
}

static void usage(FILE *f)
{
	fputs("usage: vfio-pm-tool DEVICE STEP...\n"
	      "       vfio-pm-tool --poke PATH COUNT [--yield]\n"
	      "Steps run in order; the first that fails ends the run (exit 1). ERR: EIO, 5, ...\n"
	      "  open[=ERR]       open DEVICE: /dev/vfio/vfio + group, type1, GROUP_GET_DEVICE_FD\n"
	      "  close            close device, group and container\n"
	      "  info[=ERR]       VFIO_DEVICE_GET_INFO (an ioctl: wakes the device)\n"
	      "  read[=ERR]       pread 4 bytes of region 0\n"
	      "  entry[=ERR]      LOW_POWER_ENTRY\n"
	      "  wakeup[=ERR]     LOW_POWER_ENTRY_WITH_WAKEUP with the tool's eventfd\n"
	      "  exit[=ERR]       LOW_POWER_EXIT\n"
	      "  req[=ERR]        register the request eventfd (PCI: index 4, else index 0)\n"
	      "  status=S[/MS]    wait until power/runtime_status is S (default 5000 ms)\n"
	      "  fired[=N][/MS]   wait for the wake-up eventfd; count N (default: any)\n"
	      "  quiet[/MS]       the wake-up eventfd stays silent (default 1000 ms)\n"
	      "  request[/MS]     wait for the request IRQ (default 30000 ms, -1: forever)\n"
	      "  rearm[=N]        N times (0 or none: until SIGTERM or the request IRQ): wait for\n"
	      "                   the wake-up eventfd, enter again with wake-up\n"
	      "  mmap[=ERR]       map the first page of region 0\n"
	      "  sigbus, touch    touching the mapping raises SIGBUS / reads\n"
	      "  ready=FILE       create FILE (tells a script this step is reached)\n"
	      "  await=FILE[/MS]  wait until FILE exists (default 30000 ms, -1: forever)\n"
	      "  sleep=MS\n", f);
}

int main(int argc, char **argv)
{
	struct tool t = { .container_fd = -1, .group_fd = -1, .device_fd = -1, .req_fd = -1 };
	int rc = 0;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if ((argc == 4 || (argc == 5 && strcmp(argv[4], "--yield") == 0)) && strcmp(argv[1], "--poke") == 0)
		return poke(argv[2], strtol(argv[3], NULL, 10), argc == 5);
	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	t.name = argv[1];
	t.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t.wake_fd < 0) {
		perror("eventfd");
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		char step[256];

		snprintf(step, sizeof(step), "%s", argv[i]);
		if (!run_step(&t, step)) {
			rc = 1;
			break;
		}
	}
	close_device(&t);
	return rc;
}
