#pragma once

/* fdstore: the held devices' fds in systemd's file descriptor store (SPEC §9). The service
 * manager keeps a copy of each (sd_notify FDSTORE=1), so that a daemon that exits — restarted,
 * killed, aborted by the watchdog, gone with the bus — closes nothing the kernel would notice:
 * vfio-pci neither resets the devices nor brings them to D0, and the next daemon gets the fds
 * back at start ($LISTEN_FDS, $LISTEN_FDNAMES) and adopts the devices as they are.
 *
 * Every fd has a name (FDNAME=) that says what it is:
 *   device.DEV, wake.DEV, request.DEV    a device's own fd and its two eventfds;
 *   group.N                              IOMMU group N (group path);
 *   container.N                          group N's own container (a group the shared type1
 *                                        container refused, a no-IOMMU group);
 *   container                            the container the type1 groups share;
 *   iommufd                              the cdev path's.
 * DEV is the device's kernel name with '%' and ':' written %25 and %3a (':' separates the names
 * in $LISTEN_FDNAMES, which systemd therefore refuses in one).
 *
 * Outside systemd (no $NOTIFY_SOCKET) adding and removing do nothing and return 0; a unit with
 * no store (FileDescriptorStoreMax=0) drops what it is sent. systemd keeps one copy of an open
 * file however often it is sent. */

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

typedef enum FdStoreKind {
        FDSTORE_DEVICE,
        FDSTORE_WAKE,
        FDSTORE_REQUEST,
        FDSTORE_GROUP,
        FDSTORE_GROUP_CONTAINER,
        FDSTORE_CONTAINER,
        FDSTORE_IOMMUFD,
        _FDSTORE_KIND_MAX,
        _FDSTORE_KIND_INVALID = -22,    /* -EINVAL */
} FdStoreKind;

/* The FDNAME of an fd of kind; id is the device's name (device, wake, request), the group's
 * number (group, group container) or NULL (container, iommufd). -EINVAL for an id that does not
 * fit the kind or cannot be named (empty, a control character, non-ASCII, over 64 bytes). */
int fdstore_name(FdStoreKind kind, const char *id, char **ret);
/* The reverse; -EINVAL for a name that is not one of ours. */
int fdstore_name_parse(const char *name, FdStoreKind *ret_kind, char **ret_id);

/* Hands a copy of fd to the service manager under its name (fd stays the caller's). */
int fdstore_add(FdStoreKind kind, const char *id, int fd);
/* Has the service manager close its copies of the fds of that name (none: nothing happens). */
int fdstore_remove(FdStoreKind kind, const char *id);

/* The fds a starting daemon got back, by name, for the caller to take. */
typedef struct FdStore FdStore;

/* From what systemd passed ($LISTEN_FDS and $LISTEN_FDNAMES, unset then): an empty store when
 * nothing was passed. An fd whose name is not one of ours is closed, and counted in
 * fdstore_unknown(). */
int fdstore_collect(FdStore **ret);
/* The same from n fds and their names (what fdstore_collect() does with systemd's): the store
 * owns the fds from here on, also on failure. */
int fdstore_from_fds(const int *fds, char **names, size_t n, FdStore **ret);
/* Closes every fd nobody took. */
FdStore *fdstore_free(FdStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(FdStore *, fdstore_free)

/* The fd of that name, now the caller's; -ENOENT if there is none (left, or taken already). */
int fdstore_take(FdStore *s, FdStoreKind kind, const char *id);
/* Whether an fd of that name is there (not taken). */
bool fdstore_has(const FdStore *s, FdStoreKind kind, const char *id);
/* The fds not taken yet, and the names that were not ours. */
size_t fdstore_left(const FdStore *s);
size_t fdstore_unknown(const FdStore *s);
/* What nobody took: the service manager is told to drop it (FDSTOREREMOVE) and it is closed;
 * returns how many. */
size_t fdstore_forget_left(FdStore *s);
/* The device names (kind device) not taken yet, in the order passed: a NULL-terminated array
 * for the caller to free(), of names borrowed from s. */
int fdstore_devices_left(const FdStore *s, const char ***ret);
