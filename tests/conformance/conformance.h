#pragma once

/*
 * What vfio-lp-conformance's files share: the uAPI bits old headers lack, the state of a
 * run (struct ctx), the harness (harness.c: output, sysfs, VFIO, mmap touching, finding and
 * opening the device) and the cases (cases-*.c), which vfio-lp-conformance.c runs in order.
 * Include it first: it sets the feature macros (the program does not use config.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- harness.c: output ------------------------------------------------------------ */

void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints one expectation's line; a false @ok counts a failure of the current case. */
bool expect(struct ctx *c, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *errname(int e);
int64_t now_ms(void);
void sleep_ms(unsigned ms);

/* ---- harness.c: sysfs ------------------------------------------------------------- */

int read_file(const char *path, char *buf, size_t size);
int read_attr(const struct ctx *c, const char *attr, char *buf, size_t size);
int write_attr(const struct ctx *c, const char *attr, const char *value);
bool has_attr(const struct ctx *c, const char *attr);
void rt_status(const struct ctx *c, char out[32]);
void power_state(const struct ctx *c, char out[32]);
int wait_status(const struct ctx *c, const char *want, int timeout_ms);
int stays_status(const struct ctx *c, const char *want, int window_ms);

/* ---- harness.c: VFIO -------------------------------------------------------------- */

int feature_argsz(const struct ctx *c, uint32_t flags, const void *data, size_t len, uint32_t argsz);
int feature(const struct ctx *c, uint32_t flags, const void *data, size_t len);
int enter_plain(const struct ctx *c);
int enter_wakeup(const struct ctx *c, int efd);
int lp_exit(const struct ctx *c);
int get_info(const struct ctx *c, struct vfio_device_info *ret_info);
int get_region(const struct ctx *c, uint32_t index, struct vfio_region_info *ret_info);
int region_write(const struct ctx *c);
int region_read(const struct ctx *c);
int new_eventfd(void);
int64_t efd_take(int efd);

/* ---- harness.c: mmap touching ----------------------------------------------------- */

int touch(volatile uint32_t *p, uint32_t *ret_value);

/* ---- harness.c: finding and opening the device ------------------------------------ */

int find_device(struct ctx *c, const char *arg);
void close_device(struct ctx *c);
int open_device(struct ctx *c);
void settle(const struct ctx *c);

/* ---- harness.c: case results ------------------------------------------------------ */

enum result skip(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum result verdict(const struct ctx *c);

/* ---- the cases, in the order vfio-lp-conformance.c runs them ---------------------- */

/* cases-device.c: the device before, while and after it is held */
enum result case_vfio_dev_child(struct ctx *c);
enum result case_unopened(struct ctx *c);
enum result case_open(struct ctx *c);

/* cases-entry.c: the features' probes, argument checks, and entries that suspend */
enum result case_probe_entry(struct ctx *c);
enum result case_probe_wakeup(struct ctx *c);
enum result case_probe_exit(struct ctx *c);
enum result case_get_einval(struct ctx *c);
enum result case_efd_negative(struct ctx *c);
enum result case_efd_closed(struct ctx *c);
enum result case_efd_pipe(struct ctx *c);
enum result case_argsz_short(struct ctx *c);
enum result case_failed_entries_stay_d0(struct ctx *c);
enum result case_reserved(struct ctx *c);
enum result case_entry_wakeup_suspends(struct ctx *c);
enum result case_attrs_never_wake(struct ctx *c);

/* cases-wake.c: the wakes, re-entry, exits, and entries while one is in force */
enum result case_wake_control(struct ctx *c);
enum result case_wake_ioctl(struct ctx *c);
enum result case_wake_region(struct ctx *c);
enum result case_wake_region_write(struct ctx *c);
enum result case_wake_reset(struct ctx *c);
enum result case_config_read(struct ctx *c);
enum result case_plain_reenters(struct ctx *c);
enum result case_exit_plain(struct ctx *c);
enum result case_exit_wakeup(struct ctx *c);
enum result case_entry_while_armed(struct ctx *c);
enum result case_entry_while_armed_early(struct ctx *c);
enum result case_plain_twice(struct ctx *c);

/* cases-mmap.c: touching a mapping in low power */
enum result case_mmap_plain(struct ctx *c);
enum result case_mmap_wakeup(struct ctx *c);

/* cases-device.c, again: the held device refuses a second open; closing it idles it */
enum result case_second_open(struct ctx *c);
enum result case_close_idles(struct ctx *c);
