#pragma once

/* power-sysfs: the two sysfs knobs the daemon changes on a device, power/control and
 * d3cold_allowed, with what they held before the first change, so that they are put back.
 *
 * The values found before the first change are also kept in a record, one file per device in a
 * record directory ("power/control=auto\nd3cold_allowed=1\n", the attributes changed or about to
 * be), written atomically before the write to sysfs and removed once both are back. A device
 * whose record exists when power_sysfs_init() is called takes the record's values as the
 * originals, not what sysfs shows: they are what a daemon that died without putting them back
 * (SIGKILL, watchdog, crash) found, and they are put back as usual.
 *
 * It never logs and never blocks: a record that cannot be used is reported through
 * record_failed. A device without an attribute (platform devices) is left alone silently. */

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "sysfs.h"

#define POWER_SYSFS_CONTROL "power/control"
#define POWER_SYSFS_D3COLD "d3cold_allowed"

/* The record could not be used; what: "read" (error -EBADMSG: a corrupt record, ignored: sysfs
 * shows the originals), "write" or "remove" (the originals are kept in memory only). */
typedef void (*PowerSysfsRecordFailed)(void *userdata, const char *what, int error);

/* Embedded in its owner, set up by power_sysfs_init(). A zeroed one (never set up) does nothing
 * in power_sysfs_done(). */
typedef struct PowerSysfs {
        int dir_fd;                     /* the device's sysfs directory (borrowed) */
        SysfsAttr suspended_time;       /* power/runtime_suspended_time, kept open */
        int record_dir_fd;              /* the records' directory (borrowed); -EBADF: none */
        const char *name;               /* the device's name, the record's (borrowed) */
        PowerSysfsRecordFailed record_failed;
        void *userdata;

        /* sysfs values found before the daemon changed them, restored later; NULL: untouched */
        char *saved_control;            /* power/control, while in mode on */
        bool control_written;           /* "on" was written */
        char *saved_d3cold;             /* d3cold_allowed, while the policy sets d3cold */
        char d3cold_now[2];             /* what d3cold_allowed holds while saved_d3cold is set;
                                         * "": unknown (written whatever the target) */

        /* what the record in record_dir_fd holds, as far as known */
        bool record_control, record_d3cold;
        bool record_stray;              /* a file is there that holds neither (corrupt) */
} PowerSysfs;

/* Sets p up for the device name, whose sysfs directory is dir_fd, and adopts the record an
 * earlier daemon left in record_dir_fd (-EBADF: no records, the originals are kept in memory
 * only): what it says was changed is put back by the first power_sysfs_control_restore() /
 * power_sysfs_d3cold_write() that wants it so, or by power_sysfs_done(). record_failed may be
 * NULL. */
void power_sysfs_init(PowerSysfs *p, int dir_fd, int record_dir_fd, const char *name,
                      PowerSysfsRecordFailed record_failed, void *userdata);
/* Puts back what was changed, ends the record and frees what p holds. A value that cannot be
 * written back stays in the record: the next daemon to take the device tries again. */
void power_sysfs_done(PowerSysfs *p);

/* Frees what p holds and writes nothing: the record stays as it is, for the next daemon (a
 * restart that keeps the devices held, SPEC §9), as a daemon killed now would leave it. */
void power_sysfs_leave(PowerSysfs *p);

/* Mode on: power/control = on, remembering what it was. */
int power_sysfs_control_on(PowerSysfs *p);
/* Leaving mode on: power/control back to what it was (nothing if it was never changed). */
int power_sysfs_control_restore(PowerSysfs *p);

/* Reads d3cold_allowed once, when want first sets it (allow, deny), and returns whether the
 * attribute must be written for want (1) or not (0), or -errno. */
int power_sysfs_d3cold_check(PowerSysfs *p, PolicyD3cold want);
/* Writes what want asks for (leave: the original), then forgets the original once it is back. */
int power_sysfs_d3cold_write(PowerSysfs *p, PolicyD3cold want);

/* power/runtime_suspended_time (ms): the kernel's own residency. Reading it never wakes the
 * device. */
int power_sysfs_suspended_msec(PowerSysfs *p, uint64_t *ret);
