#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault-io.h"

static int dir_fsync_error;
static unsigned dir_fsync_failures;

int __real_fsync(int fd);
int __wrap_fsync(int fd);

int __wrap_fsync(int fd) {
        struct stat st;

        if (dir_fsync_error != 0 && fstat(fd, &st) >= 0 && S_ISDIR(st.st_mode)) {
                dir_fsync_failures++;
                errno = dir_fsync_error;
                return -1;
        }
        return __real_fsync(fd);
}

void fault_io_set_dir_fsync_error(int error) {
        dir_fsync_error = error;
}

unsigned fault_io_dir_fsync_failures(void) {
        return dir_fsync_failures;
}
