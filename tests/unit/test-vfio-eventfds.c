/* vfio.c (vfio.h) on the fake kernel, a held device's two eventfds: the request IRQ (where it is
 * registered, the kernel asking for the device back) and the low-power features (entries with and
 * without wake-up, the exit, and nothing but them on the device fd from the first entry to the
 * close). Opening devices is test-vfio.c. */

#include <errno.h>
#include <poll.h>
#include <stdint.h>

#include "cleanup.h"
#include "fake-kernel.h"
#include "suites.h"
#include "vfio-helpers.h"
#include "vfio-internal.h"
#include "vfio.h"

static bool readable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* ---- the request IRQ ------------------------------------------------------------------- */

static uint32_t registered_index(Env *e, VfioBackend *b, const char *bus, const char *name) {
        _cleanup_(vfio_device_closep) VfioDevice *d = NULL;
        const FakeCall *c;

        fake_kernel_clear_calls(e->k);
        ck_assert_int_eq(vfio_device_open(b, bus, name, &d), 0);
        c = find_ioctl(e->k, 0, VFIO_DEVICE_SET_IRQS);
        ck_assert_int_eq(c->result, 0);
        ck_assert_int_eq(c->data_fd, vfio_device_request_fd(d));
        return c->arg;
}

START_TEST(test_request_index) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = NULL;
        /* device interrupts first (maskable, or several), the request IRQ after them */
        static const FakeIrq platform_irqs[] = {
                { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, 1 },
                { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 4 },
                { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1 },
                { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, 1 },
                { VFIO_IRQ_INFO_MASKABLE, 1 },
        };
        static const FakeIrq no_request[] = {
                { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED, 1 },
                { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 2 },
        };
        VfioDevice *d = NULL;

        sysfs_add_device(e, "platform", "platform", "vfio-pm-sim.1", 14, 3);
        ck_assert_int_eq(fake_kernel_add_group(e->k, 14, false), 0);
        ck_assert_int_eq(fake_kernel_add_device(e->k, "vfio-pm-sim.1", 14, 3, FAKE_DEVICE_PLATFORM), 0);
        b = backend(e, VFIO_PATH_GROUP);

        ck_assert_uint_eq(registered_index(e, b, "pci", PCI), VFIO_PCI_REQ_IRQ_INDEX);
        /* PCI: only the request index is asked about */
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_DEVICE_GET_IRQ_INFO), 1);
        ck_assert_uint_eq(registered_index(e, b, "platform", SIM), 0);

        ck_assert_int_eq(fake_kernel_set_device_irqs(e->k, "vfio-pm-sim.1", platform_irqs,
                                                     sizeof(platform_irqs) / sizeof(platform_irqs[0]), 2), 0);
        ck_assert_uint_eq(registered_index(e, b, "platform", "vfio-pm-sim.1"), 2);

        /* no request channel: the kernel could not ask for the device back, so it is not held */
        ck_assert_int_eq(fake_kernel_set_device_irqs(e->k, "vfio-pm-sim.1", no_request,
                                                     sizeof(no_request) / sizeof(no_request[0]), -1), 0);
        ck_assert_int_eq(vfio_device_open(b, "platform", "vfio-pm-sim.1", &d), -EOPNOTSUPP);
        ck_assert_int_eq(fake_kernel_set_device_irqs(e->k, "vfio-pm-sim.1", NULL, 0, -1), 0);
        ck_assert_int_eq(vfio_device_open(b, "platform", "vfio-pm-sim.1", &d), -EOPNOTSUPP);
        /* a PCI device that lacks the request index */
        ck_assert_int_eq(fake_kernel_set_device_irqs(e->k, PCI, no_request,
                                                     sizeof(no_request) / sizeof(no_request[0]), -1), 0);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EOPNOTSUPP);
        ck_assert_ptr_null(d);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_request_fd) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        _cleanup_(vfio_device_closep) VfioDevice *d = NULL;
        uint64_t n = 99;

        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &d), 0);
        ck_assert(!readable(vfio_device_request_fd(d)));
        ck_assert_int_eq(vfio_device_read_request(d, &n), 0);
        ck_assert_uint_eq(n, 0);

        /* unbind: the kernel asks, the fd turns readable */
        ck_assert_int_eq(fake_kernel_request(e->k, SIM), 0);
        ck_assert(readable(vfio_device_request_fd(d)));
        ck_assert(!readable(vfio_device_wake_fd(d)));
        ck_assert_int_eq(vfio_device_read_request(d, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(vfio_device_read_request(d, &n), 0);
        ck_assert_uint_eq(n, 0);

        /* the kernel asks again every few seconds until the holder lets go */
        ck_assert_int_eq(fake_kernel_request(e->k, SIM), 0);
        ck_assert_int_eq(fake_kernel_request(e->k, SIM), 0);
        ck_assert_int_eq(vfio_device_read_request(d, &n), 0);
        ck_assert_uint_eq(n, 2);

        /* even while armed, and answering costs no ioctl */
        ck_assert_int_eq(vfio_device_enter(d, true), 0);
        fake_kernel_clear_calls(e->k);
        ck_assert_int_eq(fake_kernel_request(e->k, SIM), 0);
        ck_assert_int_eq(vfio_device_read_request(d, &n), 0);
        ck_assert_uint_eq(n, 1);
        d = vfio_device_close(d);
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, 0), 0);
        ck_assert_int_eq(fake_kernel_request(e->k, SIM), -ENOTCONN);
        assert_clean(e->k);

        ck_assert_int_eq(vfio_device_read_request(NULL, &n), -EINVAL);
}
END_TEST

/* ---- low power ------------------------------------------------------------------------- */

START_TEST(test_enter_wakeup) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        _cleanup_(vfio_device_closep) VfioDevice *d = NULL;
        const FakeCall *c;
        uint64_t n = 99;

        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), 0);
        fake_kernel_clear_calls(e->k);

        ck_assert_int_eq(vfio_device_enter(d, true), 0);
        ck_assert_uint_eq(fake_kernel_ncalls(e->k), 1);
        c = fake_kernel_call(e->k, 0);
        ck_assert_uint_eq(c->request, VFIO_DEVICE_FEATURE);
        ck_assert_uint_eq(c->arg, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP);
        ck_assert_uint_eq(c->argsz, VFIO_FEATURE_HEADER_SIZE + sizeof(struct vfio_device_low_power_entry_with_wakeup));
        ck_assert_int_eq(c->data_fd, vfio_device_wake_fd(d));
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, PCI), FAKE_LOW_POWER_WAKEUP);
        ck_assert(fake_kernel_device_suspended(e->k, PCI));
        ck_assert_int_eq(vfio_device_read_wake(d, &n), 0);
        ck_assert_uint_eq(n, 0);

        /* a host access (power/control=on) wakes it: the fd fires once, the entry is over */
        ck_assert_int_eq(fake_kernel_host_access(e->k, PCI), 1);
        ck_assert(readable(vfio_device_wake_fd(d)));
        ck_assert(!readable(vfio_device_request_fd(d)));
        ck_assert_int_eq(vfio_device_read_wake(d, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(vfio_device_read_wake(d, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert(!fake_kernel_device_suspended(e->k, PCI));
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, PCI), FAKE_LOW_POWER_NONE);
        ck_assert_int_eq(fake_kernel_host_access(e->k, PCI), 0);

        /* re-arm with the same fd */
        ck_assert_int_eq(vfio_device_enter(d, true), 0);
        ck_assert_int_eq(fake_kernel_call(e->k, 1)->data_fd, vfio_device_wake_fd(d));
        ck_assert(fake_kernel_device_suspended(e->k, PCI));

        /* an entry while a wake-up entry is in force wakes the device first (SPEC §1) */
        ck_assert_int_eq(vfio_device_enter(d, true), 0);
        ck_assert_int_eq(vfio_device_read_wake(d, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, PCI), FAKE_LOW_POWER_WAKEUP);

        /* an exit on the suspended device may itself fire it */
        ck_assert_int_eq(vfio_device_exit(d), 0);
        ck_assert_int_eq(vfio_device_read_wake(d, &n), 0);
        ck_assert_uint_le(n, 1);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, PCI), FAKE_LOW_POWER_NONE);
        ck_assert_uint_eq(fake_kernel_violations(e->k), 0);
}
END_TEST

START_TEST(test_enter_plain_and_exit) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        _cleanup_(vfio_device_closep) VfioDevice *d = NULL;
        const FakeCall *c;
        uint64_t n = 99;

        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &d), 0);
        fake_kernel_clear_calls(e->k);

        ck_assert_int_eq(vfio_device_enter(d, false), 0);
        c = fake_kernel_call(e->k, 0);
        ck_assert_uint_eq(c->request, VFIO_DEVICE_FEATURE);
        ck_assert_uint_eq(c->arg, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY);
        ck_assert_uint_eq(c->argsz, VFIO_FEATURE_HEADER_SIZE);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, SIM), FAKE_LOW_POWER_PLAIN);
        ck_assert(fake_kernel_device_suspended(e->k, SIM));

        /* a plain entry never fires and re-enters by itself */
        ck_assert_int_eq(fake_kernel_host_access(e->k, SIM), 0);
        ck_assert(fake_kernel_device_suspended(e->k, SIM));
        ck_assert(!readable(vfio_device_wake_fd(d)));

        /* upstream: no second entry while a plain one is in force */
        ck_assert_int_eq(vfio_device_enter(d, true), -EINVAL);
        ck_assert_int_eq(vfio_device_enter(d, false), -EINVAL);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, SIM), FAKE_LOW_POWER_PLAIN);

        ck_assert_int_eq(vfio_device_exit(d), 0);
        c = fake_kernel_call(e->k, fake_kernel_ncalls(e->k) - 1);
        ck_assert_uint_eq(c->arg, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT);
        ck_assert_uint_eq(c->argsz, VFIO_FEATURE_HEADER_SIZE);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, SIM), FAKE_LOW_POWER_NONE);
        ck_assert(!fake_kernel_device_suspended(e->k, SIM));
        ck_assert_int_eq(vfio_device_read_wake(d, &n), 0);
        ck_assert_uint_eq(n, 0);

        /* with nothing in force: 0 */
        ck_assert_int_eq(vfio_device_exit(d), 0);
        /* a failing entry changes nothing */
        fake_kernel_fail_ioctl(e->k, VFIO_DEVICE_FEATURE, EIO);
        ck_assert_int_eq(vfio_device_enter(d, false), -EIO);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, SIM), FAKE_LOW_POWER_NONE);
        ck_assert_int_eq(vfio_device_enter(d, false), 0);
        ck_assert_uint_eq(fake_kernel_violations(e->k), 0);
}
END_TEST

/* SPEC §1: every ioctl on the device fd wakes it. From the first entry to the close, the log
 * holds nothing on the device fd but low-power features, and nothing but them at all. */
START_TEST(test_only_low_power_after_entry) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        VfioDevice *d = NULL, *d2 = NULL;
        uint64_t n;
        long first;
        int fd = -1;

        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), 0);
        for (size_t i = 0; i < fake_kernel_ncalls(e->k); i++)
                if (fake_kernel_call(e->k, i)->kind == FAKE_FD_DEVICE)
                        fd = fake_kernel_call(e->k, i)->fd;
        ck_assert_int_ge(fd, 0);

        ck_assert_int_eq(vfio_device_enter(d, true), 0);
        ck_assert_int_eq(fake_kernel_host_access(e->k, PCI), 1);
        ck_assert_int_eq(vfio_device_read_wake(d, &n), 0);
        ck_assert_int_eq(vfio_device_enter(d, true), 0);
        ck_assert_int_eq(vfio_device_exit(d), 0);
        ck_assert_int_eq(vfio_device_read_wake(d, &n), 0);
        ck_assert_int_eq(vfio_device_enter(d, false), 0);
        ck_assert_int_eq(fake_kernel_host_access(e->k, PCI), 0);
        ck_assert_int_eq(vfio_device_enter(d, false), -EINVAL);
        ck_assert_int_eq(vfio_device_exit(d), 0);
        /* another device opened meanwhile touches only its own fd */
        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &d2), 0);
        d2 = vfio_device_close(d2);
        ck_assert_int_eq(vfio_device_enter(d, true), 0);
        ck_assert_int_eq(fake_kernel_request(e->k, PCI), 0);
        ck_assert_int_eq(vfio_device_read_request(d, &n), 0);
        ck_assert_uint_eq(n, 1);
        /* closed while armed: nothing issued first */
        d = vfio_device_close(d);

        first = fake_kernel_find_call(e->k, 0, FAKE_CALL_IOCTL, VFIO_DEVICE_FEATURE);
        ck_assert_int_ge(first, 0);
        for (size_t i = (size_t) first; i < fake_kernel_ncalls(e->k); i++) {
                const FakeCall *c = fake_kernel_call(e->k, i);
                uint32_t feature = c->arg & VFIO_DEVICE_FEATURE_MASK;

                if (c->type != FAKE_CALL_IOCTL || c->fd != fd)
                        continue;
                if (c->request != VFIO_DEVICE_FEATURE || !(c->arg & VFIO_DEVICE_FEATURE_SET) ||
                    (c->arg & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE)) ||
                    (feature != VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY &&
                     feature != VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP &&
                     feature != VFIO_DEVICE_FEATURE_LOW_POWER_EXIT))
                        dump_and_fail(e->k, "an ioctl other than a low-power feature after the first entry");
        }
        /* the close is the last thing the device fd saw, after the last feature */
        {
                long last_ioctl = -1, close_at = -1;

                for (size_t i = 0; i < fake_kernel_ncalls(e->k); i++) {
                        const FakeCall *c = fake_kernel_call(e->k, i);
                        if (c->fd == fd && c->type == FAKE_CALL_IOCTL && c->kind == FAKE_FD_DEVICE)
                                last_ioctl = (long) i;
                        if (c->fd == fd && c->type == FAKE_CALL_CLOSE && c->kind == FAKE_FD_DEVICE)
                                close_at = (long) i;
                }
                ck_assert_int_gt(close_at, last_ioctl);
                ck_assert_uint_eq(fake_kernel_call(e->k, (size_t) last_ioctl)->arg,
                                  VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP);
        }
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_DEVICE_FEATURE), 7);
        assert_clean(e->k);
}
END_TEST

Suite *vfio_eventfds_suite(void) {
        Suite *s = suite_create("vfio-eventfds");
        TCase *tc;

        tc = tcase_create("eventfds");
        tcase_add_test(tc, test_request_index);
        tcase_add_test(tc, test_request_fd);
        tcase_add_test(tc, test_enter_wakeup);
        tcase_add_test(tc, test_enter_plain_and_exit);
        tcase_add_test(tc, test_only_low_power_after_entry);
        suite_add_tcase(s, tc);

        return s;
}
