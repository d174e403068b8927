/* vfio.c (vfio.h) on the fake kernel, opening and closing devices: names and arguments, the
 * group + container path, the cdev + iommufd path and which path is taken by itself, and a
 * failure at each step closing all it opened. A held device's eventfds are test-vfio-eventfds.c. */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>

#include "cleanup.h"
#include "fake-kernel.h"
#include "fixture.h"
#include "suites.h"
#include "vfio-helpers.h"
#include "vfio-internal.h"
#include "vfio.h"

typedef struct Expect {
        FakeCallType type;
        unsigned long request;  /* ioctl */
        const char *path;       /* openat */
        FakeFdKind kind;        /* close: the kind of fd closed */
} Expect;

#define E_OPEN(p) { .type = FAKE_CALL_OPENAT, .path = (p) }
#define E_IOCTL(r) { .type = FAKE_CALL_IOCTL, .request = (r) }
#define E_EVENTFD { .type = FAKE_CALL_EVENTFD }
#define E_CLOSE(k) { .type = FAKE_CALL_CLOSE, .kind = (k) }

/* The log from index from on is exactly e[0..n), every call successful. */
static void expect_calls(const FakeKernel *k, size_t from, const Expect *e, size_t n) {
        char msg[256];

        if (fake_kernel_ncalls(k) != from + n) {
                snprintf(msg, sizeof(msg), "expected %zu calls from %zu, got %zu", n, from,
                         fake_kernel_ncalls(k) - from);
                dump_and_fail(k, msg);
        }
        for (size_t i = 0; i < n; i++) {
                const FakeCall *c = fake_kernel_call(k, from + i);
                bool ok = c->type == e[i].type && c->result >= 0;

                if (ok && e[i].type == FAKE_CALL_IOCTL)
                        ok = c->request == e[i].request;
                if (ok && e[i].type == FAKE_CALL_OPENAT)
                        ok = strcmp(c->path, e[i].path) == 0 && c->flags == (O_RDWR|O_CLOEXEC);
                if (ok && e[i].type == FAKE_CALL_EVENTFD)
                        ok = c->flags == (EFD_NONBLOCK|EFD_CLOEXEC);
                if (ok && e[i].type == FAKE_CALL_CLOSE)
                        ok = c->kind == e[i].kind;
                if (!ok) {
                        snprintf(msg, sizeof(msg), "call %zu is not the one expected (%s %s)", from + i,
                                 e[i].type == FAKE_CALL_IOCTL ? fake_kernel_request_name(e[i].request) : "",
                                 e[i].path ? e[i].path : "");
                        dump_and_fail(k, msg);
                }
        }
}

/* ---- names ----------------------------------------------------------------------------- */

START_TEST(test_path_strings) {
        for (int p = 0; p < _VFIO_PATH_MAX; p++)
                ck_assert_int_eq(vfio_path_from_string(vfio_path_to_string(p)), p);
        ck_assert_str_eq(vfio_path_to_string(VFIO_PATH_GROUP), "group");
        ck_assert_str_eq(vfio_path_to_string(VFIO_PATH_CDEV), "cdev");
        ck_assert_ptr_null(vfio_path_to_string(_VFIO_PATH_MAX));
        ck_assert_ptr_null(vfio_path_to_string(_VFIO_PATH_INVALID));
        ck_assert_int_eq(vfio_path_from_string("Group"), _VFIO_PATH_INVALID);
        ck_assert_int_eq(vfio_path_from_string(NULL), _VFIO_PATH_INVALID);
}
END_TEST

START_TEST(test_backend_args) {
        _cleanup_(env_freep) Env *e = env_new(false);
        VfioBackend *b = NULL;
        const VfioSys *sys = fake_kernel_sys(e->k);

        ck_assert_int_eq(vfio_backend_new(NULL, e->sysfs->fd, e->dev->fd, VFIO_PATH_GROUP, &b), -EINVAL);
        ck_assert_int_eq(vfio_backend_new(sys, -1, e->dev->fd, VFIO_PATH_GROUP, &b), -EINVAL);
        ck_assert_int_eq(vfio_backend_new(sys, e->sysfs->fd, -1, VFIO_PATH_GROUP, &b), -EINVAL);
        ck_assert_int_eq(vfio_backend_new(sys, e->sysfs->fd, e->dev->fd, _VFIO_PATH_MAX, &b), -EINVAL);
        ck_assert_ptr_null(b);
        ck_assert_ptr_null(vfio_backend_free(NULL));
        ck_assert_ptr_null(vfio_device_close(NULL));
        ck_assert_int_eq(vfio_backend_path(NULL), _VFIO_PATH_INVALID);
        ck_assert_int_eq(vfio_device_wake_fd(NULL), -EBADF);
        ck_assert_int_eq(vfio_device_enter(NULL, true), -EBADF);
        ck_assert_int_eq(vfio_device_exit(NULL), -EBADF);
        assert_clean(e->k);
}
END_TEST

/* ---- group + container ----------------------------------------------------------------- */

START_TEST(test_group_sequence) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        VfioDevice *d = NULL;
        static const Expect open_seq[] = {
                E_OPEN("vfio/12"),
                E_IOCTL(VFIO_GROUP_GET_STATUS),
                E_OPEN("vfio/vfio"),
                E_IOCTL(VFIO_GET_API_VERSION),
                E_IOCTL(VFIO_CHECK_EXTENSION),
                E_IOCTL(VFIO_GROUP_SET_CONTAINER),
                E_IOCTL(VFIO_SET_IOMMU),
                E_IOCTL(VFIO_GROUP_GET_DEVICE_FD),
                E_IOCTL(VFIO_DEVICE_GET_INFO),
                E_IOCTL(VFIO_DEVICE_GET_IRQ_INFO),
                E_EVENTFD,
                E_EVENTFD,
                E_IOCTL(VFIO_DEVICE_SET_IRQS),
        };
        static const Expect close_seq[] = {
                E_CLOSE(FAKE_FD_DEVICE),
                E_CLOSE(FAKE_FD_EVENTFD),
                E_CLOSE(FAKE_FD_EVENTFD),
                E_CLOSE(FAKE_FD_GROUP),
                E_CLOSE(FAKE_FD_CONTAINER),
        };
        const FakeCall *c;
        size_t n;

        ck_assert_int_eq(vfio_backend_path(b), VFIO_PATH_GROUP);
        ck_assert_uint_eq(fake_kernel_ncalls(e->k), 0);       /* an explicit path probes nothing */

        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), 0);
        expect_calls(e->k, 0, open_seq, sizeof(open_seq) / sizeof(open_seq[0]));
        ck_assert_str_eq(vfio_device_name(d), PCI);
        ck_assert(fake_kernel_device_open(e->k, PCI));

        /* the arguments */
        ck_assert_int_eq(fake_kernel_call(e->k, 1)->argsz, sizeof(struct vfio_group_status));
        c = fake_kernel_call(e->k, 4);
        ck_assert_uint_eq(c->arg, VFIO_TYPE1v2_IOMMU);
        ck_assert_int_eq(fake_kernel_call(e->k, 5)->arg, fake_kernel_call(e->k, 2)->fd); /* the container */
        ck_assert_int_eq(fake_kernel_call(e->k, 5)->fd, fake_kernel_call(e->k, 0)->fd);  /* on the group */
        ck_assert_uint_eq(fake_kernel_call(e->k, 6)->arg, VFIO_TYPE1v2_IOMMU);
        ck_assert_uint_eq(fake_kernel_call(e->k, 9)->arg, VFIO_PCI_REQ_IRQ_INDEX);
        c = fake_kernel_call(e->k, 12);
        ck_assert_uint_eq(c->arg, VFIO_PCI_REQ_IRQ_INDEX);
        ck_assert_uint_eq(c->argsz, sizeof(struct vfio_irq_set) + sizeof(int32_t));
        ck_assert_int_eq(c->data_fd, vfio_device_request_fd(d));
        ck_assert_str_eq(c->device, PCI);

        ck_assert_int_ge(vfio_device_wake_fd(d), 0);
        ck_assert_int_ge(vfio_device_request_fd(d), 0);
        ck_assert_int_ne(vfio_device_wake_fd(d), vfio_device_request_fd(d));
        ck_assert_int_ge(fake_kernel_device_request_fd(e->k, PCI), 0);
        ck_assert_uint_eq(fake_kernel_open_fds(e->k), 5);
        ck_assert_uint_eq(fake_kernel_violations(e->k), 0);

        n = fake_kernel_ncalls(e->k);
        d = vfio_device_close(d);
        ck_assert_ptr_null(d);
        expect_calls(e->k, n, close_seq, sizeof(close_seq) / sizeof(close_seq[0]));
        ck_assert(!fake_kernel_device_open(e->k, PCI));
        ck_assert_int_eq(fake_kernel_device_request_fd(e->k, PCI), -1);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_group_type1_fallback) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        _cleanup_(vfio_device_closep) VfioDevice *d = NULL;
        const FakeCall *c;

        fake_kernel_set_iommu_types(e->k, true, false);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), 0);
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_CHECK_EXTENSION), 2);
        c = find_ioctl(e->k, 0, VFIO_CHECK_EXTENSION);
        ck_assert_uint_eq(c->arg, VFIO_TYPE1v2_IOMMU);
        ck_assert_int_eq(c->result, 0);
        c = find_ioctl(e->k, (size_t) (c - fake_kernel_call(e->k, 0)) + 1, VFIO_CHECK_EXTENSION);
        ck_assert_uint_eq(c->arg, VFIO_TYPE1_IOMMU);
        ck_assert_int_eq(c->result, 1);
        ck_assert_uint_eq(find_ioctl(e->k, 0, VFIO_SET_IOMMU)->arg, VFIO_TYPE1_IOMMU);
        d = vfio_device_close(d);
        assert_clean(e->k);

        /* neither type: nothing to attach the group to */
        fake_kernel_set_iommu_types(e->k, false, false);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EOPNOTSUPP);
        ck_assert_ptr_null(d);
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_SET_IOMMU), 1);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_group_api_version) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        VfioDevice *d = NULL;

        fake_kernel_set_api_version(e->k, VFIO_API_VERSION + 1);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EPROTO);
        ck_assert_ptr_null(d);
        ck_assert_int_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_GROUP_SET_CONTAINER), 0);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_group_not_viable) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        VfioDevice *d = NULL;

        ck_assert_int_eq(fake_kernel_set_group_viable(e->k, PCI_GROUP, false), 0);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EBUSY);
        ck_assert_ptr_null(d);
        /* found out from the status, before any container is made */
        ck_assert_int_eq(fake_kernel_find_call(e->k, 0, FAKE_CALL_OPENAT, 0), 0);
        ck_assert_int_eq(fake_kernel_find_call(e->k, 1, FAKE_CALL_OPENAT, 0), -1);
        ck_assert(!fake_kernel_device_open(e->k, PCI));
        assert_clean(e->k);

        /* once the other device went to vfio too */
        ck_assert_int_eq(fake_kernel_set_group_viable(e->k, PCI_GROUP, true), 0);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), 0);
        d = vfio_device_close(d);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_group_busy) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        _cleanup_(vfio_backend_freep) VfioBackend *other = backend(e, VFIO_PATH_GROUP);
        _cleanup_(vfio_device_closep) VfioDevice *held = NULL;
        VfioDevice *d = NULL;
        const FakeCall *c;

        /* another process (a VM) holds the group: the kernel's open says EBUSY */
        ck_assert_int_eq(fake_kernel_set_group_held_elsewhere(e->k, PCI_GROUP, true), 0);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EBUSY);
        ck_assert_ptr_null(d);
        ck_assert_uint_eq(fake_kernel_ncalls(e->k), 1);
        c = fake_kernel_call(e->k, 0);
        ck_assert_str_eq(c->path, "vfio/12");
        ck_assert_int_eq(c->result, -EBUSY);
        assert_clean(e->k);
        ck_assert_int_eq(fake_kernel_set_group_held_elsewhere(e->k, PCI_GROUP, false), 0);

        /* another holder through vfio.c: the same */
        ck_assert_int_eq(vfio_device_open(other, "pci", PCI, &held), 0);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EBUSY);
        ck_assert_ptr_null(d);
        held = vfio_device_close(held);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), 0);
        d = vfio_device_close(d);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_group_shared) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = NULL;
        VfioDevice *d1 = NULL, *d2 = NULL;
        const FakeCall *c;
        long i;
        int group_fd;

        sysfs_add_device(e, "pci", "pci0000:00", "0000:00:04.0", PCI_GROUP, 2);
        ck_assert_int_eq(fake_kernel_add_device(e->k, "0000:00:04.0", PCI_GROUP, 2, FAKE_DEVICE_PCI), 0);
        b = backend(e, VFIO_PATH_GROUP);

        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d1), 0);
        group_fd = fake_kernel_call(e->k, 0)->fd;
        i = (long) fake_kernel_ncalls(e->k);
        ck_assert_int_eq(vfio_device_open(b, "pci", "0000:00:04.0", &d2), 0);

        /* the second device reuses the group and its container */
        ck_assert_int_eq(fake_kernel_find_call(e->k, (size_t) i, FAKE_CALL_OPENAT, 0), -1);
        c = fake_kernel_call(e->k, (size_t) i);
        ck_assert_uint_eq(c->request, VFIO_GROUP_GET_DEVICE_FD);
        ck_assert_int_eq(c->fd, group_fd);
        ck_assert_int_ge(c->result, 0);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_GROUP), 1);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CONTAINER), 1);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_DEVICE), 2);

        /* the same device twice is refused without asking the kernel */
        {
                VfioDevice *again = NULL;
                size_t n = fake_kernel_ncalls(e->k);

                ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &again), -EBUSY);
                ck_assert_ptr_null(again);
                ck_assert_uint_eq(fake_kernel_ncalls(e->k), n);
        }

        /* the first close leaves the group to the second device */
        d1 = vfio_device_close(d1);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_GROUP), 1);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CONTAINER), 1);
        ck_assert(fake_kernel_device_open(e->k, "0000:00:04.0"));
        ck_assert_int_eq(vfio_device_enter(d2, true), 0);

        /* the last one closes them */
        d2 = vfio_device_close(d2);
        assert_clean(e->k);

        /* and it all starts over */
        ck_assert_int_eq(vfio_device_open(b, "pci", "0000:00:04.0", &d2), 0);
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_SET_IOMMU), 2);
        d2 = vfio_device_close(d2);
        assert_clean(e->k);
}
END_TEST

/* Every type1 group joins one container: one fd for all held groups, one VFIO_SET_IOMMU. */
START_TEST(test_group_one_container) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        VfioDevice *pci = NULL, *sim = NULL;
        const FakeCall *first, *second;
        size_t i;

        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &pci), 0);
        i = fake_kernel_ncalls(e->k);
        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &sim), 0);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_GROUP), 2);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CONTAINER), 1);
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_SET_IOMMU), 1);
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_GROUP_SET_CONTAINER), 2);
        /* the second group opened no container of its own, and joined the first's */
        for (size_t j = i; j < fake_kernel_ncalls(e->k); j++)
                ck_assert_str_ne(fake_kernel_call(e->k, j)->path, "vfio/vfio");
        first = find_ioctl(e->k, 0, VFIO_GROUP_SET_CONTAINER);
        second = find_ioctl(e->k, i, VFIO_GROUP_SET_CONTAINER);
        ck_assert_uint_eq(first->arg, second->arg);

        /* the container outlives the group that made it, and goes with the last group */
        pci = vfio_device_close(pci);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CONTAINER), 1);
        ck_assert_int_eq(vfio_device_enter(sim, true), 0);
        sim = vfio_device_close(sim);
        assert_clean(e->k);

        /* a new container then, with its IOMMU set again */
        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &sim), 0);
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_SET_IOMMU), 2);
        sim = vfio_device_close(sim);
        assert_clean(e->k);
}
END_TEST

/* A group the shared container refuses gets a container of its own. */
START_TEST(test_group_container_refused) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        VfioDevice *pci = NULL, *sim = NULL;

        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &pci), 0);
        fake_kernel_fail_ioctl(e->k, VFIO_GROUP_SET_CONTAINER, EPERM);
        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &sim), 0);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CONTAINER), 2);
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_SET_IOMMU), 2);
        ck_assert_int_eq(vfio_device_enter(sim, true), 0);

        /* the shared one goes with its only group; the other stays with its own */
        pci = vfio_device_close(pci);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CONTAINER), 1);
        ck_assert(fake_kernel_device_open(e->k, SIM));
        sim = vfio_device_close(sim);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_group_noiommu) {
        _cleanup_(env_freep) Env *e = NULL;
        _cleanup_(vfio_backend_freep) VfioBackend *b = NULL;
        VfioDevice *d = NULL;
        long i;

        e = calloc(1, sizeof(*e));
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(fixture_tmp_new("sysfs", &e->sysfs), 0);
        ck_assert_int_eq(fixture_tmp_new(NULL, &e->dev), 0);
        ck_assert_int_eq(fake_kernel_new(&e->k), 0);
        ck_assert_int_eq(fake_kernel_add_group(e->k, PCI_GROUP, true), 0);
        ck_assert_int_eq(fake_kernel_add_device(e->k, PCI, PCI_GROUP, 0, FAKE_DEVICE_PCI), 0);
        b = backend(e, VFIO_PATH_GROUP);

        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), 0);
        ck_assert_str_eq(fake_kernel_call(e->k, 0)->path, "vfio/12");
        ck_assert_int_eq(fake_kernel_call(e->k, 0)->result, -ENOENT);
        ck_assert_str_eq(fake_kernel_call(e->k, 1)->path, "vfio/noiommu-12");
        ck_assert_int_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, VFIO_CHECK_EXTENSION), 0);
        i = fake_kernel_find_call(e->k, 0, FAKE_CALL_IOCTL, VFIO_SET_IOMMU);
        ck_assert_int_ge(i, 0);
        ck_assert_uint_eq(fake_kernel_call(e->k, (size_t) i)->arg, VFIO_NOIOMMU_IOMMU);
        d = vfio_device_close(d);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_open_errors) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        VfioDevice *d = NULL;

        /* bad arguments: nothing asked */
        ck_assert_int_eq(vfio_device_open(b, "pci", "", &d), -EINVAL);
        ck_assert_int_eq(vfio_device_open(b, "pci", "..", &d), -EINVAL);
        ck_assert_int_eq(vfio_device_open(b, "pci", "a/b", &d), -EINVAL);
        ck_assert_int_eq(vfio_device_open(b, "../pci", PCI, &d), -EINVAL);
        ck_assert_int_eq(vfio_device_open(b, NULL, PCI, &d), -EINVAL);
        ck_assert_int_eq(vfio_device_open(NULL, "pci", PCI, &d), -EINVAL);
        ck_assert_uint_eq(fake_kernel_ncalls(e->k), 0);

        /* not in sysfs, or on another bus: gone */
        ck_assert_int_eq(vfio_device_open(b, "pci", "0000:00:09.0", &d), -ENODEV);
        ck_assert_int_eq(vfio_device_open(b, "platform", PCI, &d), -ENODEV);
        ck_assert_uint_eq(fake_kernel_ncalls(e->k), 0);

        /* in sysfs (group 11) but the kernel has no such group */
        ck_assert_int_eq(vfio_device_open(b, "pci", "0000:00:02.0", &d), -ENODEV);
        ck_assert_ptr_null(d);
        assert_clean(e->k);

        /* the group is there but the device is not VFIO's (unbound meanwhile) */
        ck_assert_int_eq(fake_kernel_add_group(e->k, 11, false), 0);
        ck_assert_int_eq(vfio_device_open(b, "pci", "0000:00:02.0", &d), -ENODEV);
        ck_assert_int_eq(find_ioctl(e->k, 0, VFIO_GROUP_GET_DEVICE_FD)->result, -ENODEV);
        ck_assert_ptr_null(d);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_kind_mismatch) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        VfioDevice *d = NULL;

        ck_assert_int_eq(fake_kernel_set_device_flags(e->k, PCI, VFIO_DEVICE_FLAGS_PLATFORM), 0);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EPROTO);
        ck_assert_int_eq(fake_kernel_set_device_flags(e->k, SIM, VFIO_DEVICE_FLAGS_PCI), 0);
        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &d), -EPROTO);
        ck_assert_ptr_null(d);
        assert_clean(e->k);
}
END_TEST

/* ---- cdev + iommufd -------------------------------------------------------------------- */

START_TEST(test_cdev_sequence) {
        _cleanup_(env_freep) Env *e = env_new(true);
        _cleanup_(vfio_backend_freep) VfioBackend *b = NULL;
        VfioDevice *d1 = NULL, *d2 = NULL;
        static const Expect probe_seq[] = {
                { .type = FAKE_CALL_OPENAT, .path = "vfio/devices" },
                E_CLOSE(FAKE_FD_DIR),
        };
        static const Expect open1[] = {
                E_OPEN("vfio/devices/vfio0"),
                E_OPEN("iommu"),
                E_IOCTL(VFIO_DEVICE_BIND_IOMMUFD),
                E_IOCTL(IOMMU_IOAS_ALLOC),
                E_IOCTL(VFIO_DEVICE_ATTACH_IOMMUFD_PT),
                E_IOCTL(VFIO_DEVICE_GET_INFO),
                E_IOCTL(VFIO_DEVICE_GET_IRQ_INFO),
                E_EVENTFD,
                E_EVENTFD,
                E_IOCTL(VFIO_DEVICE_SET_IRQS),
        };
        static const Expect open2[] = {
                E_OPEN("vfio/devices/vfio1"),
                E_IOCTL(VFIO_DEVICE_BIND_IOMMUFD),
                E_IOCTL(VFIO_DEVICE_ATTACH_IOMMUFD_PT),
                E_IOCTL(VFIO_DEVICE_GET_INFO),
                E_IOCTL(VFIO_DEVICE_GET_IRQ_INFO),
                E_EVENTFD,
                E_EVENTFD,
                E_IOCTL(VFIO_DEVICE_SET_IRQS),
        };
        static const Expect close1[] = {
                E_CLOSE(FAKE_FD_CDEV),
                E_CLOSE(FAKE_FD_EVENTFD),
                E_CLOSE(FAKE_FD_EVENTFD),
        };
        static const Expect close2[] = {
                E_CLOSE(FAKE_FD_CDEV),
                E_CLOSE(FAKE_FD_EVENTFD),
                E_CLOSE(FAKE_FD_EVENTFD),
                E_CLOSE(FAKE_FD_IOMMUFD),
        };
        const FakeCall *c;
        int iommufd, cdev;
        size_t n;

        /* chosen by itself where /dev/vfio/devices exists */
        b = backend(e, _VFIO_PATH_INVALID);
        ck_assert_int_eq(vfio_backend_path(b), VFIO_PATH_CDEV);
        ck_assert_uint_eq(fake_kernel_ncalls(e->k), 2);
        ck_assert_str_eq(fake_kernel_call(e->k, 0)->path, probe_seq[0].path);
        ck_assert(fake_kernel_call(e->k, 0)->flags & O_DIRECTORY);
        ck_assert(fake_kernel_call(e->k, 0)->flags & O_CLOEXEC);
        ck_assert_int_eq(fake_kernel_call(e->k, 1)->kind, FAKE_FD_DIR);
        fake_kernel_clear_calls(e->k);

        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d1), 0);
        expect_calls(e->k, 0, open1, sizeof(open1) / sizeof(open1[0]));
        cdev = fake_kernel_call(e->k, 0)->fd;
        iommufd = fake_kernel_call(e->k, 1)->fd;
        c = fake_kernel_call(e->k, 2);
        ck_assert_int_eq(c->fd, cdev);
        ck_assert_int_eq((int) c->arg, iommufd);
        ck_assert_uint_eq(c->argsz, 16);
        c = fake_kernel_call(e->k, 3);
        ck_assert_int_eq(c->fd, iommufd);
        ck_assert_uint_eq(c->argsz, 12);
        c = fake_kernel_call(e->k, 4);
        ck_assert_int_eq(c->fd, cdev);
        ck_assert_uint_eq(c->arg, 1);                   /* the IOAS just made */
        ck_assert_uint_eq(c->argsz, 12);
        ck_assert_uint_eq(fake_kernel_call(e->k, 9)->arg, VFIO_PCI_REQ_IRQ_INDEX);
        ck_assert_int_eq(fake_kernel_call(e->k, 9)->data_fd, vfio_device_request_fd(d1));
        ck_assert(fake_kernel_device_open(e->k, PCI));

        /* the second device: the same iommufd, the same IOAS */
        n = fake_kernel_ncalls(e->k);
        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &d2), 0);
        expect_calls(e->k, n, open2, sizeof(open2) / sizeof(open2[0]));
        ck_assert_int_eq((int) fake_kernel_call(e->k, n + 1)->arg, iommufd);
        ck_assert_uint_eq(fake_kernel_call(e->k, n + 2)->arg, 1);
        ck_assert_uint_eq(fake_kernel_call(e->k, n + 7)->arg, 0);   /* vfio_pm_sim's request IRQ */
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_IOMMUFD), 1);

        /* the low-power features are the same on a cdev */
        ck_assert_int_eq(vfio_device_enter(d1, true), 0);
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, PCI), FAKE_LOW_POWER_WAKEUP);

        n = fake_kernel_ncalls(e->k);
        d1 = vfio_device_close(d1);
        expect_calls(e->k, n, close1, sizeof(close1) / sizeof(close1[0]));
        ck_assert_int_eq(fake_kernel_device_low_power(e->k, PCI), FAKE_LOW_POWER_NONE);
        n = fake_kernel_ncalls(e->k);
        d2 = vfio_device_close(d2);
        expect_calls(e->k, n, close2, sizeof(close2) / sizeof(close2[0]));
        assert_clean(e->k);
}
END_TEST

START_TEST(test_cdev_busy) {
        _cleanup_(env_freep) Env *e = env_new(true);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_CDEV);
        _cleanup_(vfio_backend_freep) VfioBackend *group = backend(e, VFIO_PATH_GROUP);
        VfioDevice *d = NULL, *held = NULL;

        /* the cdev opens, the bind says EBUSY (tests/conformance case 30) */
        ck_assert_int_eq(fake_kernel_set_group_held_elsewhere(e->k, PCI_GROUP, true), 0);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EBUSY);
        ck_assert_int_eq(find_ioctl(e->k, 0, VFIO_DEVICE_BIND_IOMMUFD)->result, -EBUSY);
        ck_assert_ptr_null(d);
        assert_clean(e->k);
        ck_assert_int_eq(fake_kernel_set_group_held_elsewhere(e->k, PCI_GROUP, false), 0);

        /* held through the group path by another holder */
        ck_assert_int_eq(vfio_device_open(group, "pci", PCI, &held), 0);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EBUSY);
        held = vfio_device_close(held);
        assert_clean(e->k);

        /* and the other way round: a bound cdev blocks the group */
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), 0);
        ck_assert_int_eq(vfio_device_open(group, "pci", PCI, &held), -EBUSY);
        d = vfio_device_close(d);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_cdev_missing) {
        _cleanup_(env_freep) Env *e = env_new(true);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_CDEV);
        VfioDevice *d = NULL;

        /* 0000:00:02.0 has no vfio-dev child: not VFIO's */
        ck_assert_int_eq(vfio_device_open(b, "pci", "0000:00:02.0", &d), -ENODEV);
        ck_assert_uint_eq(fake_kernel_ncalls(e->k), 0);
        /* the child is there, the node is not */
        sysfs_add_device(e, "pci", "pci0000:00", "0000:00:05.0", 15, 7);
        ck_assert_int_eq(vfio_device_open(b, "pci", "0000:00:05.0", &d), -ENODEV);
        ck_assert_ptr_null(d);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_auto_group) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, _VFIO_PATH_INVALID);

        ck_assert_int_eq(vfio_backend_path(b), VFIO_PATH_GROUP);
        ck_assert_uint_eq(fake_kernel_ncalls(e->k), 1);
        ck_assert_str_eq(fake_kernel_call(e->k, 0)->path, "vfio/devices");
        ck_assert_int_eq(fake_kernel_call(e->k, 0)->result, -ENOENT);
        assert_clean(e->k);
}
END_TEST

/* ---- failures close everything --------------------------------------------------------- */

typedef struct Failure {
        enum { FAIL_IOCTL, FAIL_OPENAT, FAIL_EVENTFD } what;
        unsigned long request;
        const char *path;
        unsigned skip;
        int err;
        int expect;             /* what vfio_device_open() returns */
} Failure;

static void check_failures(Env *e, VfioBackend *b, const char *bus, const char *name,
                           const Failure *f, size_t n) {
        for (size_t i = 0; i < n; i++) {
                VfioDevice *d = NULL;
                int r;

                switch (f[i].what) {
                case FAIL_IOCTL:
                        fake_kernel_fail_ioctl(e->k, f[i].request, f[i].err);
                        break;
                case FAIL_OPENAT:
                        fake_kernel_fail_openat(e->k, f[i].path, f[i].err);
                        break;
                case FAIL_EVENTFD:
                        fake_kernel_fail_eventfd(e->k, f[i].skip, f[i].err);
                        break;
                }
                fake_kernel_clear_calls(e->k);
                r = vfio_device_open(b, bus, name, &d);
                if (r != f[i].expect) {
                        fake_kernel_dump(e->k, stderr);
                        ck_abort_msg("failure %zu (%s %s): open gave %d, not %d", i,
                                     fake_kernel_request_name(f[i].request), f[i].path ? f[i].path : "",
                                     r, f[i].expect);
                }
                ck_assert_ptr_null(d);
                ck_assert(!fake_kernel_device_open(e->k, name));
                assert_clean(e->k);

                /* nothing stuck: the next open works */
                ck_assert_int_eq(vfio_device_open(b, bus, name, &d), 0);
                d = vfio_device_close(d);
                assert_clean(e->k);
        }
}

START_TEST(test_failures_group) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        static const Failure failures[] = {
                { FAIL_OPENAT, 0, "vfio/12", 0, EACCES, -EACCES },
                { FAIL_IOCTL, VFIO_GROUP_GET_STATUS, NULL, 0, EIO, -EIO },
                { FAIL_OPENAT, 0, "vfio/vfio", 0, EACCES, -EACCES },
                { FAIL_OPENAT, 0, "vfio/vfio", 0, ENOENT, -ENOENT },
                { FAIL_IOCTL, VFIO_GET_API_VERSION, NULL, 0, EIO, -EIO },
                { FAIL_IOCTL, VFIO_CHECK_EXTENSION, NULL, 0, EIO, -EIO },
                { FAIL_IOCTL, VFIO_GROUP_SET_CONTAINER, NULL, 0, EPERM, -EPERM },
                { FAIL_IOCTL, VFIO_SET_IOMMU, NULL, 0, EINVAL, -EINVAL },
                { FAIL_IOCTL, VFIO_GROUP_GET_DEVICE_FD, NULL, 0, ENODEV, -ENODEV },
                { FAIL_IOCTL, VFIO_DEVICE_GET_INFO, NULL, 0, EIO, -EIO },
                { FAIL_IOCTL, VFIO_DEVICE_GET_IRQ_INFO, NULL, 0, EIO, -EIO },
                { FAIL_EVENTFD, 0, NULL, 0, EMFILE, -EMFILE },
                { FAIL_EVENTFD, 0, NULL, 1, EMFILE, -EMFILE },
                { FAIL_IOCTL, VFIO_DEVICE_SET_IRQS, NULL, 0, EINVAL, -EINVAL },
        };

        check_failures(e, b, "pci", PCI, failures, sizeof(failures) / sizeof(failures[0]));
        check_failures(e, b, "platform", SIM, failures + 9, 5);
}
END_TEST

START_TEST(test_failures_group_shared) {
        _cleanup_(env_freep) Env *e = env_new(false);
        _cleanup_(vfio_backend_freep) VfioBackend *b = NULL;
        _cleanup_(vfio_device_closep) VfioDevice *first = NULL;
        VfioDevice *d = NULL;

        sysfs_add_device(e, "pci", "pci0000:00", "0000:00:04.0", PCI_GROUP, 2);
        ck_assert_int_eq(fake_kernel_add_device(e->k, "0000:00:04.0", PCI_GROUP, 2, FAKE_DEVICE_PCI), 0);
        b = backend(e, VFIO_PATH_GROUP);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &first), 0);

        /* a failure on the second device leaves the group to the first */
        fake_kernel_fail_ioctl(e->k, VFIO_GROUP_GET_DEVICE_FD, EIO);
        ck_assert_int_eq(vfio_device_open(b, "pci", "0000:00:04.0", &d), -EIO);
        fake_kernel_fail_ioctl(e->k, VFIO_DEVICE_SET_IRQS, EIO);
        ck_assert_int_eq(vfio_device_open(b, "pci", "0000:00:04.0", &d), -EIO);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_GROUP), 1);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CONTAINER), 1);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_DEVICE), 1);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_EVENTFD), 2);
        ck_assert_int_eq(vfio_device_enter(first, true), 0);
        first = vfio_device_close(first);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_failures_cdev) {
        _cleanup_(env_freep) Env *e = env_new(true);
        _cleanup_(vfio_backend_freep) VfioBackend *b = backend(e, VFIO_PATH_CDEV);
        static const Failure failures[] = {
                { FAIL_OPENAT, 0, "vfio/devices/vfio0", 0, EACCES, -EACCES },
                { FAIL_OPENAT, 0, "iommu", 0, EACCES, -EACCES },
                { FAIL_OPENAT, 0, "iommu", 0, ENOENT, -ENODEV },
                { FAIL_IOCTL, VFIO_DEVICE_BIND_IOMMUFD, NULL, 0, EBUSY, -EBUSY },
                { FAIL_IOCTL, IOMMU_IOAS_ALLOC, NULL, 0, ENOMEM, -ENOMEM },
                { FAIL_IOCTL, VFIO_DEVICE_ATTACH_IOMMUFD_PT, NULL, 0, EINVAL, -EINVAL },
                { FAIL_IOCTL, VFIO_DEVICE_GET_INFO, NULL, 0, EIO, -EIO },
                { FAIL_IOCTL, VFIO_DEVICE_GET_IRQ_INFO, NULL, 0, EIO, -EIO },
                { FAIL_EVENTFD, 0, NULL, 0, EMFILE, -EMFILE },
                { FAIL_EVENTFD, 0, NULL, 1, EMFILE, -EMFILE },
                { FAIL_IOCTL, VFIO_DEVICE_SET_IRQS, NULL, 0, EINVAL, -EINVAL },
        };
        _cleanup_(vfio_device_closep) VfioDevice *first = NULL;
        VfioDevice *d = NULL;

        check_failures(e, b, "pci", PCI, failures, sizeof(failures) / sizeof(failures[0]));

        /* with another device holding the iommufd, a failure leaves it open */
        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &first), 0);
        fake_kernel_clear_calls(e->k);
        fake_kernel_fail_ioctl(e->k, VFIO_DEVICE_BIND_IOMMUFD, EIO);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EIO);
        fake_kernel_fail_ioctl(e->k, VFIO_DEVICE_ATTACH_IOMMUFD_PT, EIO);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), -EIO);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_IOMMUFD), 1);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_CDEV), 1);
        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d), 0);
        /* the IOAS was made once */
        ck_assert_uint_eq(fake_kernel_count_calls(e->k, FAKE_CALL_IOCTL, IOMMU_IOAS_ALLOC), 0);
        d = vfio_device_close(d);
        first = vfio_device_close(first);
        assert_clean(e->k);
}
END_TEST

START_TEST(test_backend_freed_first) {
        _cleanup_(env_freep) Env *e = env_new(false);
        VfioBackend *b = backend(e, VFIO_PATH_GROUP);
        VfioDevice *d1 = NULL, *d2 = NULL;

        ck_assert_int_eq(vfio_device_open(b, "pci", PCI, &d1), 0);
        ck_assert_int_eq(vfio_device_open(b, "platform", SIM, &d2), 0);
        ck_assert_int_eq(vfio_device_enter(d1, true), 0);
        b = vfio_backend_free(b);
        ck_assert_ptr_null(b);
        /* the devices still work and close cleanly (ASan watches the backend) */
        ck_assert_int_eq(vfio_device_exit(d1), 0);
        d1 = vfio_device_close(d1);
        ck_assert_uint_eq(fake_kernel_open_fds_of(e->k, FAKE_FD_DEVICE), 1);
        d2 = vfio_device_close(d2);
        assert_clean(e->k);
}
END_TEST

/* The real VfioSys, where no root is needed: an openat below a directory fd and eventfds. */
START_TEST(test_kernel_sys) {
        const VfioSys *sys = vfio_sys_kernel();
        _cleanup_(fixture_tmp_freep) FixtureTmp *t = NULL;
        int fd;

        ck_assert_int_eq(fixture_tmp_new(NULL, &t), 0);
        ck_assert_ptr_nonnull(sys->openat);
        ck_assert_int_eq(sys->openat(sys->userdata, t->fd, "vfio/devices", O_RDONLY|O_DIRECTORY|O_CLOEXEC), -ENOENT);
        fd = sys->eventfd(sys->userdata, 0, EFD_NONBLOCK|EFD_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(sys->ioctl(sys->userdata, fd, VFIO_GET_API_VERSION, NULL), -ENOTTY);
        ck_assert_int_eq(sys->close(sys->userdata, fd), 0);
        ck_assert_int_eq(sys->close(sys->userdata, fd), -EBADF);
}
END_TEST

/* The real system calls keep the last 64 fds below the soft limit for the rest of the daemon
 * (fd-util.h, whose suite walks the budget): a VFIO fd that would land there is EMFILE, other
 * opens still work, and with room below the reserve the same call succeeds. */
START_TEST(test_kernel_sys_fd_reserve) {
        const VfioSys *sys = vfio_sys_kernel();
        struct rlimit rl;
        int lowest, fd;

        lowest = open("/dev/null", O_RDONLY|O_CLOEXEC);
        ck_assert_int_ge(lowest, 0);
        ck_assert_int_eq(close(lowest), 0);
        /* Check forks each test: the limit dies with this process */
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        rl.rlim_cur = lowest + 8;               /* the next fd is in the reserve */
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_int_eq(sys->eventfd(sys->userdata, 0, EFD_NONBLOCK|EFD_CLOEXEC), -EMFILE);
        ck_assert_int_eq(sys->openat(sys->userdata, AT_FDCWD, "/dev/null", O_RDONLY|O_CLOEXEC), -EMFILE);
        fd = open("/dev/null", O_RDONLY|O_CLOEXEC);     /* what the reserve is for */
        ck_assert_int_eq(fd, lowest);
        ck_assert_int_eq(close(fd), 0);

        rl.rlim_cur = lowest + 64 + 8;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        fd = sys->eventfd(sys->userdata, 0, EFD_NONBLOCK|EFD_CLOEXEC);
        ck_assert_int_eq(fd, lowest);
        ck_assert_int_eq(sys->close(sys->userdata, fd), 0);
}
END_TEST

Suite *vfio_suite(void) {
        Suite *s = suite_create("vfio");
        TCase *tc;

        tc = tcase_create("api");
        tcase_add_test(tc, test_path_strings);
        tcase_add_test(tc, test_backend_args);
        tcase_add_test(tc, test_backend_freed_first);
        tcase_add_test(tc, test_kernel_sys);
        tcase_add_test(tc, test_kernel_sys_fd_reserve);
        suite_add_tcase(s, tc);

        tc = tcase_create("group");
        tcase_add_test(tc, test_group_sequence);
        tcase_add_test(tc, test_group_type1_fallback);
        tcase_add_test(tc, test_group_api_version);
        tcase_add_test(tc, test_group_not_viable);
        tcase_add_test(tc, test_group_busy);
        tcase_add_test(tc, test_group_shared);
        tcase_add_test(tc, test_group_one_container);
        tcase_add_test(tc, test_group_container_refused);
        tcase_add_test(tc, test_group_noiommu);
        tcase_add_test(tc, test_open_errors);
        tcase_add_test(tc, test_kind_mismatch);
        suite_add_tcase(s, tc);

        tc = tcase_create("cdev");
        tcase_add_test(tc, test_cdev_sequence);
        tcase_add_test(tc, test_cdev_busy);
        tcase_add_test(tc, test_cdev_missing);
        tcase_add_test(tc, test_auto_group);
        suite_add_tcase(s, tc);

        tc = tcase_create("failures");
        tcase_add_test(tc, test_failures_group);
        tcase_add_test(tc, test_failures_group_shared);
        tcase_add_test(tc, test_failures_cdev);
        suite_add_tcase(s, tc);

        return s;
}
