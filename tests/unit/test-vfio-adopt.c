/* vfio.c (vfio.h) on the fake kernel: a device held by one daemon, its fds kept by the service
 * manager (fake_kernel_dup(): copies of the same open files), the daemon gone, and the next one
 * adopting it: nothing opened, no ioctl, the entry in force still in force, the wake-up eventfd
 * still the one that fires, groups and containers shared as when opened. */

#include <errno.h>
#include <poll.h>
#include <stdint.h>

#include "cleanup.h"
#include "fake-kernel.h"
#include "suites.h"
#include "vfio-helpers.h"
#include "vfio-internal.h"
#include "vfio.h"

/* The service manager's copies of d's fds (each one the fake gave: a copy of the same file). */
static VfioHeldFds stored(Env *e, const VfioDevice *d) {
        VfioHeldFds fds;

        vfio_device_held_fds(d, &fds);
        fds.device = fake_kernel_dup(e->k, fds.device);
        fds.wake = fake_kernel_dup(e->k, fds.wake);
        fds.request = fake_kernel_dup(e->k, fds.request);
        if (fds.group >= 0)
                fds.group = fake_kernel_dup(e->k, fds.group);
        if (fds.container >= 0)
                fds.container = fake_kernel_dup(e->k, fds.container);
        if (fds.iommufd >= 0)
                fds.iommufd = fake_kernel_dup(e->k, fds.iommufd);
        ck_assert_int_ge(fds.device, 0);
        ck_assert_int_ge(fds.wake, 0);
        ck_assert_int_ge(fds.request, 0);
        return fds;
}

static unsigned calls_of(const FakeKernel *k, FakeCallType type) {
        return fake_kernel_count_calls(k, type, 0);
}

START_TEST(test_adopt_armed) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *old = NULL, *new = NULL;
        VfioDevice *d = NULL, *a = NULL;
        VfioHeldFds fds, now;
        uint64_t n;

        old = backend(e, VFIO_PATH_GROUP);
        ck_assert_int_eq(vfio_device_open(old, "pci", PCI, &d), 0);
        ck_assert_int_eq(vfio_device_enter(d, true), 0);
        fds = stored(e, d);
        ck_assert_uint_eq(fds.group_id, PCI_GROUP);
        ck_assert(fds.container_shared);
        ck_assert(fds.entered && fds.entered_wakeup);

        /* the daemon goes: its fds close, the copies keep the device open and in low power */
        d = vfio_device_close(d);
        old = vfio_backend_free(old);
        ck_assert(fake_kernel_device_open(e->k, PCI));
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, PCI), FAKE_LOW_POWER_WAKEUP);

        /* the next one adopts it: nothing opened, no ioctl, nothing closed but what it holds */
        new = backend(e, VFIO_PATH_GROUP);
        fake_kernel_clear_calls(e->k);
        ck_assert_int_eq(vfio_device_adopt(new, PCI, &fds, &a), 0);
        if (calls_of(e->k, FAKE_CALL_IOCTL) + calls_of(e->k, FAKE_CALL_OPENAT) + calls_of(e->k, FAKE_CALL_CLOSE) > 0)
                dump_and_fail(e->k, "adopting issued a call");
        ck_assert_int_eq(fds.device, -EBADF);
        ck_assert_int_eq(fds.group, -EBADF);
        ck_assert_int_eq(fds.container, -EBADF);
        vfio_device_held_fds(a, &now);
        ck_assert(now.entered && now.entered_wakeup);
        ck_assert(now.container_shared);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, PCI), FAKE_LOW_POWER_WAKEUP);

        /* a wake reaches the adopted eventfd; the device re-arms through the adopted fd */
        ck_assert_int_eq(fake_kernel_host_access(e->k, PCI), 1);
        ck_assert_int_eq(vfio_device_read_wake(a, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(vfio_device_enter(a, true), 0);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, PCI), FAKE_LOW_POWER_WAKEUP);
        /* the kernel asks for it back on the adopted request eventfd */
        ck_assert_int_eq(fake_kernel_request(e->k, PCI), 0);
        ck_assert_int_eq(vfio_device_read_request(a, &n), 0);
        ck_assert_uint_eq(n, 1);

        /* closing the adopted device closes it for good */
        a = vfio_device_close(a);
        ck_assert(!fake_kernel_device_open(e->k, PCI));
        new = vfio_backend_free(new);
        assert_clean(e->k);
}
END_TEST

/* Two groups in the shared container, a device each: the first adoption takes the container, the
 * second shares it (its copy closed); a third device opened afterwards joins the same container. */
START_TEST(test_adopt_shared) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *old = NULL, *new = NULL;
        VfioDevice *p = NULL, *s = NULL, *ap = NULL, *as = NULL, *third = NULL;
        VfioHeldFds fp, fs;

        sysfs_add_device(e, "platform", "platform", "vfio-pm-sim.1", 14, 3);
        ck_assert_int_eq(fake_kernel_add_group(e->k, 14, false), 0);
        ck_assert_int_eq(fake_kernel_add_device(e->k, "vfio-pm-sim.1", 14, 3, FAKE_DEVICE_PLATFORM), 0);
        old = backend(e, VFIO_PATH_GROUP);
        ck_assert_int_eq(vfio_device_open(old, "pci", PCI, &p), 0);
        ck_assert_int_eq(vfio_device_open(old, "platform", SIM, &s), 0);
        ck_assert_int_eq(vfio_device_enter(p, true), 0);
        ck_assert_int_eq(vfio_device_enter(s, false), 0);
        fp = stored(e, p);
        fs = stored(e, s);
        p = vfio_device_close(p);
        s = vfio_device_close(s);
        old = vfio_backend_free(old);

        new = backend(e, VFIO_PATH_GROUP);
        fake_kernel_clear_calls(e->k);
        ck_assert_int_eq(vfio_device_adopt(new, PCI, &fp, &ap), 0);
        ck_assert_int_eq(vfio_device_adopt(new, SIM, &fs, &as), 0);
        /* the second copy of the container is not kept: one container fd for both groups */
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CONTAINER), 1);
        ck_assert_int_eq(calls_of(e->k, FAKE_CALL_IOCTL), 0);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, SIM), FAKE_LOW_POWER_PLAIN);

        ck_assert_int_eq(vfio_device_open(new, "platform", "vfio-pm-sim.1", &third), 0);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CONTAINER), 1);

        third = vfio_device_close(third);
        ap = vfio_device_close(ap);
        as = vfio_device_close(as);
        new = vfio_backend_free(new);
        assert_clean(e->k);
}
END_TEST

/* What cannot be adopted: every fd given is closed, the device stays closed (nothing half-held). */
START_TEST(test_adopt_refused) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *old = NULL, *new = NULL;
        VfioDevice *d = NULL, *a = NULL;
        VfioHeldFds fds;

        old = backend(e, VFIO_PATH_GROUP);
        ck_assert_int_eq(vfio_device_open(old, "pci", PCI, &d), 0);
        fds = stored(e, d);
        d = vfio_device_close(d);
        old = vfio_backend_free(old);

        /* a group the backend does not hold, and no fd for it */
        new = backend(e, VFIO_PATH_GROUP);
        ck_assert_int_eq(fake_kernel_sys(e->k)->close(fake_kernel_sys(e->k)->userdata, fds.group), 0);
        fds.group = -EBADF;
        ck_assert_int_eq(vfio_device_adopt(new, PCI, &fds, &a), -EBADF);
        ck_assert_int_eq(fds.device, -EBADF);
        ck_assert_int_eq(fds.container, -EBADF);
        ck_assert(!fake_kernel_device_open(e->k, PCI));
        new = vfio_backend_free(new);
        assert_clean(e->k);

        /* no device fd */
        new = backend(e, VFIO_PATH_GROUP);
        fds = VFIO_HELD_FDS_NULL;
        ck_assert_int_eq(vfio_device_adopt(new, PCI, &fds, &a), -EBADF);
        ck_assert_int_eq(vfio_device_adopt(new, "", &fds, &a), -EINVAL);
        new = vfio_backend_free(new);
        assert_clean(e->k);
}
END_TEST

Suite *vfio_adopt_suite(void) {
        Suite *s = suite_create("vfio-adopt");
        TCase *tc = tcase_create("adopt");

        tcase_add_test(tc, test_adopt_armed);
        tcase_add_test(tc, test_adopt_shared);
        tcase_add_test(tc, test_adopt_refused);
        suite_add_tcase(s, tc);
        return s;
}
