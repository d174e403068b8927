/* vfio-helpers: what test-vfio.c and test-vfio-eventfds.c share (vfio-helpers.h). */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vfio-helpers.h"

Env *env_free(Env *e) {
        if (!e)
                return NULL;
        fake_kernel_free(e->k);
        fixture_tmp_free(e->dev);
        fixture_tmp_free(e->sysfs);
        free(e);
        return NULL;
}

Env *env_new(bool cdev) {
        Env *e = calloc(1, sizeof(*e));

        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(fixture_tmp_new("sysfs", &e->sysfs), 0);
        ck_assert_int_eq(fixture_tmp_new(NULL, &e->dev), 0);
        ck_assert_int_eq(fake_kernel_new(&e->k), 0);
        fake_kernel_set_cdev(e->k, cdev);
        ck_assert_int_eq(fake_kernel_add_group(e->k, PCI_GROUP, false), 0);
        ck_assert_int_eq(fake_kernel_add_group(e->k, SIM_GROUP, false), 0);
        ck_assert_int_eq(fake_kernel_add_device(e->k, PCI, PCI_GROUP, 0, FAKE_DEVICE_PCI), 0);
        ck_assert_int_eq(fake_kernel_add_device(e->k, SIM, SIM_GROUP, 1, FAKE_DEVICE_PLATFORM), 0);
        return e;
}

VfioBackend *backend(Env *e, VfioPath path) {
        VfioBackend *b = NULL;

        ck_assert_int_eq(vfio_backend_new(fake_kernel_sys(e->k), e->sysfs->fd, e->dev->fd, path, &b), 0);
        return b;
}

void sysfs_add_device(Env *e, const char *bus, const char *parent, const char *name,
                      unsigned group, unsigned cdev) {
        char path[256], target[256];

        snprintf(path, sizeof(path), "devices/%s/%s/vfio-dev/vfio%u/dev", parent, name, cdev);
        ck_assert_int_eq(fixture_write_string(e->sysfs->fd, path, "511:0\n"), 0);
        snprintf(path, sizeof(path), "devices/%s/%s/iommu_group", parent, name);
        snprintf(target, sizeof(target), "../../../kernel/iommu_groups/%u", group);
        ck_assert_int_eq(symlinkat(target, e->sysfs->fd, path), 0);
        snprintf(path, sizeof(path), "bus/%s/devices/%s", bus, name);
        snprintf(target, sizeof(target), "../../../devices/%s/%s", parent, name);
        ck_assert_int_eq(symlinkat(target, e->sysfs->fd, path), 0);
}

void dump_and_fail(const FakeKernel *k, const char *what) {
        fake_kernel_dump(k, stderr);
        ck_abort_msg("%s", what);
}

void assert_clean(const FakeKernel *k) {
        if (fake_kernel_open_fds(k) != 0)
                dump_and_fail(k, "fds left open");
        if (fake_kernel_violations(k) != 0) {
                fake_kernel_dump(k, stderr);
                ck_abort_msg("violation: %s", fake_kernel_violation(k));
        }
}

const FakeCall *find_ioctl(const FakeKernel *k, size_t from, unsigned long request) {
        long i = fake_kernel_find_call(k, from, FAKE_CALL_IOCTL, request);

        if (i < 0)
                dump_and_fail(k, fake_kernel_request_name(request));
        return fake_kernel_call(k, (size_t) i);
}
