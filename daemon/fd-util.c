/* fd-util: the daemon's file descriptor budget (fd-util.h). */

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-util.h"

/* The soft limit now (it is read each time: main() raises it at start, tests lower it). */
static rlim_t soft_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return RLIM_INFINITY;
        return rl.rlim_cur;
}

bool fd_in_reserve(int fd) {
        rlim_t limit = soft_limit();

        return fd >= 0 && limit != RLIM_INFINITY && (rlim_t) fd + FD_RESERVE >= limit;
}

bool fd_in_lower_half(int fd) {
        rlim_t limit = soft_limit();

        return fd >= 0 && (limit == RLIM_INFINITY || (rlim_t) fd < limit / 2);
}

int fd_keep_or_close(int fd) {
        if (!fd_in_reserve(fd))
                return fd;
        (void) safe_close(fd);
        return -EMFILE;
}
