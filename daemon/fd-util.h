#pragma once

/* fd-util: the daemon's file descriptor budget under RLIMIT_NOFILE. fds are handed out lowest
 * first, so a new fd's number tells how close the process is to its soft limit. What a device
 * keeps for its life (a VFIO fd, its sysfs directory) never takes the last FD_RESERVE below the
 * limit: those stay for what the daemon needs for a moment (sd_notify's socket, a policy file, a
 * udev event, a sysfs read), so that at its limit the daemon keeps working and only devices fail.
 * What only saves system calls (a sysfs attribute kept open) is kept only in the lower half. */

#include <stdbool.h>

#define FD_RESERVE 64

/* fd (≥ 0) is among the last FD_RESERVE below the soft limit. */
bool fd_in_reserve(int fd);
/* fd (≥ 0) is in the lower half of the soft limit. */
bool fd_in_lower_half(int fd);
/* For an fd a device keeps: fd itself, or, when it is in the reserve, closed and -EMFILE (as if
 * the limit were hit); a negative fd is returned as is. */
int fd_keep_or_close(int fd);
