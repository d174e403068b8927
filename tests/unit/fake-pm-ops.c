/* fake-pm-ops: the fake device under the pm state machine (fake-pm-ops.h). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake-pm-ops.h"
#include "cleanup.h"

/* A call the fake cannot make sense of is a bug of the caller (or of the fake): stop there. */
#define fake_assert(expr) do {                                                          \
                if (!(expr)) {                                                          \
                        fprintf(stderr, "%s:%d: fake-pm-ops: %s failed\n", __FILE__, __LINE__, #expr); \
                        abort();                                                        \
                }                                                                       \
        } while (0)

static void fake_log(FakeDev *f, const char *what) {
        size_t n = strlen(f->log);

        /* the ring of a long storm: keep the tail readable, never overflow */
        if (n + strlen(what) + 2 > sizeof(f->log)) {
                f->log[0] = 0;
                n = 0;
        }
        (void) snprintf(f->log + n, sizeof(f->log) - n, "%s%s", n ? " " : "", what);
}

void fake_signal(int fd) {
        uint64_t one = 1;

        fake_assert(write(fd, &one, sizeof(one)) == (ssize_t) sizeof(one));
}

static int fake_open(void *userdata, const char *bus, const char *name, void **ret_handle) {
        FakeDev *f = userdata;

        fake_log(f, "open");
        if (f->open) {
                f->violations++;
                return -EBUSY;
        }
        if (f->open_error > 0)
                return -f->open_error;
        f->wake_fd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);
        f->request_fd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);
        fake_assert(f->wake_fd >= 0);
        fake_assert(f->request_fd >= 0);
        f->open = true;
        f->in_force = f->adopt;
        f->suspended = f->adopt != FAKE_NONE;
        f->adopt = FAKE_NONE;
        f->opens++;
        *ret_handle = f;
        return (int) f->in_force;       /* FakeEntry's values are PmEntry's */
}

static void fake_close(void *userdata, void *handle) {
        FakeDev *f = userdata;

        fake_assert(handle == f);
        fake_assert(f->open);
        fake_log(f, "close");
        f->wake_fd = safe_close(f->wake_fd);
        f->request_fd = safe_close(f->request_fd);
        f->open = false;
        f->in_force = FAKE_NONE;
        f->suspended = false;
        f->closes++;
}

static int fake_enter(void *userdata, void *handle, bool wakeup) {
        FakeDev *f = userdata;

        fake_assert(f->open);
        fake_log(f, wakeup ? "enter:w" : "enter:p");
        f->enters++;
        if (f->fail_next_enter > 0) {
                int e = f->fail_next_enter;

                f->fail_next_enter = 0;
                return -e;
        }
        if (f->fail_enter > 0)
                return -f->fail_enter;
        if (f->in_force != FAKE_NONE) {
                f->violations++;
                /* vfio-pci: EINVAL after a plain entry, and after a wake-up entry that has not
                 * suspended yet; a suspended wake-up entry is woken (signalled) first */
                if (f->in_force == FAKE_PLAIN || !f->suspended)
                        return -EINVAL;
                fake_signal(f->wake_fd);
        }
        f->in_force = wakeup ? FAKE_WAKEUP : FAKE_PLAIN;
        f->suspended = !f->stay_active;
        return 0;
}

static int fake_exit(void *userdata, void *handle) {
        FakeDev *f = userdata;

        fake_assert(f->open);
        fake_log(f, "exit");
        f->exits++;
        if (f->fail_exit > 0)
                return -f->fail_exit;
        if (f->in_force == FAKE_WAKEUP && f->suspended && f->exit_fires)
                fake_signal(f->wake_fd);
        f->in_force = FAKE_NONE;
        f->suspended = false;
        return 0;
}

static int fake_take(int fd, uint64_t *ret) {
        uint64_t v;
        ssize_t n = read(fd, &v, sizeof(v));

        if (n < 0 && errno == EAGAIN) {
                *ret = 0;
                return 0;
        }
        if (n < 0)
                return -errno;
        *ret = v;
        return 0;
}

static int fake_read_wake(void *userdata, void *handle, uint64_t *ret) {
        FakeDev *f = userdata;

        fake_assert(f->open);
        return fake_take(f->wake_fd, ret);
}

static int fake_read_request(void *userdata, void *handle, uint64_t *ret) {
        FakeDev *f = userdata;

        fake_assert(f->open);
        return fake_take(f->request_fd, ret);
}

static int fake_wake_fd(void *userdata, void *handle) {
        return ((FakeDev *) userdata)->wake_fd;
}

static int fake_request_fd(void *userdata, void *handle) {
        return ((FakeDev *) userdata)->request_fd;
}

const PmVfioOps fake_ops = {
        .open = fake_open,
        .close = fake_close,
        .enter = fake_enter,
        .exit = fake_exit,
        .read_wake = fake_read_wake,
        .read_request = fake_read_request,
        .wake_fd = fake_wake_fd,
        .request_fd = fake_request_fd,
};

/* The device wakes (a host access, a PME): a suspended wake-up entry fires and ends; a plain one
 * resumes and the kernel suspends it again by itself. Returns whether the eventfd fired. */
bool fake_device_wakes(FakeDev *f) {
        if (f->in_force != FAKE_WAKEUP || !f->suspended)
                return false;
        fake_signal(f->wake_fd);
        f->in_force = FAKE_NONE;
        f->suspended = false;
        return true;
}

