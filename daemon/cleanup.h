#pragma once

/* Scope-bound cleanup in the style of systemd's cleanup-fundamental.h:
 *
 *     _cleanup_free_ char *s = NULL;
 *     _cleanup_close_ int fd = -EBADF;
 *     ...
 *     *ret = TAKE_PTR(s);
 *
 * Every helper leaves errno as it found it, so "return -errno" after a failed call stays right
 * while cleanups run on the way out. */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

/* Defines funcp(type *p), which calls func(*p) unless *p is NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                 \
        static inline void func##p(type *p) {                   \
                if (*p) {                                       \
                        int saved_errno_ = errno;               \
                        func(*p);                               \
                        errno = saved_errno_;                   \
                }                                               \
        }

/* Takes any pointer-to-pointer, so one helper serves every type. */
static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes fd if valid and returns -EBADF: "fd = safe_close(fd);". On Linux close() releases the
 * descriptor even when it fails with EINTR, so its result is not worth retrying or reporting. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved_errno = errno;
                (void) close(fd);
                errno = saved_errno;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        (void) safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose)
#define _cleanup_fclose_ _cleanup_(fclosep)

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Hands ownership over: returns the value and leaves NULL (or -EBADF) behind, so the variable's
 * cleanup does nothing. */
#define TAKE_PTR(ptr)                                   \
        ({                                              \
                __typeof__(ptr) *take_ptr_p_ = &(ptr);  \
                __typeof__(ptr) take_ptr_v_ = *take_ptr_p_; \
                *take_ptr_p_ = NULL;                    \
                take_ptr_v_;                            \
        })

#define TAKE_FD(fd)                                     \
        ({                                              \
                int *take_fd_p_ = &(fd);                \
                int take_fd_v_ = *take_fd_p_;           \
                *take_fd_p_ = -EBADF;                   \
                take_fd_v_;                             \
        })
