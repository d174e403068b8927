#pragma once

/* release-store: the releases that outlive the daemon. One file per released device in a
 * directory under /run (MANAGER_RELEASE_DIR_DEFAULT), so that a restarted daemon keeps a device
 * released that a VM holds or is about to open, and a reboot forgets them all. The file is named
 * after the device and reads
 *     reason=group
 *     by=0000:01:00.0
 * reason as pm_release_to_string() (release, group or reservation: a kernel request is not
 * kept, the device is leaving VFIO), by the device whose Release it was (the device itself for
 * release and reservation). Written atomically. Never logs. */

#include "pm.h"

/* Whether name can be a device name and a file name here: what sysfs names a PCI or platform
 * device, nothing with '/', no leading '.', printable ASCII, at most 64 bytes. */
bool release_store_name_ok(const char *name);

int release_store_save(int dir_fd, const char *name, PmRelease reason, const char *by);
/* -ENOENT when name has no record; -EBADMSG for a record that is not one. */
int release_store_load(int dir_fd, const char *name, PmRelease *ret_reason, char **ret_by);
/* 0 also when there was none. */
int release_store_forget(int dir_fd, const char *name);
/* The names with a record, sorted, NULL-terminated (free each and the array). */
int release_store_list(int dir_fd, char ***ret_names);
