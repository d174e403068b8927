/* manager-held.c: held devices across a restart of the daemon (SPEC §9). A Manager on the sysfs
 * fixture holds two devices through the fake kernel and hands their fds to a service manager
 * that is this test ($NOTIFY_SOCKET: it keeps what FDSTORE=1 sends, drops what FDSTOREREMOVE
 * names, as systemd does); the daemon fails and leaves; the next adopts them from those fds: no
 * open, no ioctl, the counts kept; and what it lets go leaves the store too. No event loop runs:
 * every event is a direct call. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include "fake-kernel.h"
#include "fdstore.h"
#include "fixture.h"
#include "held-record.h"
#include "log.h"
#include "manager.h"
#include "suites.h"

#define PCI "0000:00:03.0"      /* the fixture's, vfio-pci, group 12 */
#define SIM "vfio-pm-sim.0"     /* the fixture's, group 13 */

/* The service manager's store, as systemd 252 keeps it. */
typedef struct Store {
        FixtureTmp *tmp;
        int sock;
        FakeKernel *k;
        char *names[32];
        int fds[32];
        size_t n;
        char removed[512];      /* the names FDSTOREREMOVE named, space-separated */
} Store;

static void store_start(Store *s, FakeKernel *k) {
        *s = (Store) { .k = k };
        ck_assert_int_eq(fixture_tmp_new(NULL, &s->tmp), 0);
        ck_assert_int_eq(fixture_notify_socket(s->tmp, &s->sock), 0);
}

static void store_drop(Store *s, const char *name) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->names[i], name) == 0) {
                        ck_assert_int_eq(fake_kernel_sys(s->k)->close(fake_kernel_sys(s->k)->userdata, s->fds[i]), 0);
                        free(s->names[i]);
                        s->names[i] = s->names[--s->n];
                        s->fds[i] = s->fds[s->n];
                        return;
                }
}

/* Takes in every message sent so far. */
static void store_process(Store *s) {
        for (;;) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int) * 4)];
                } control = {};
                char buf[512], *name;
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                     .msg_controllen = sizeof(control) };
                ssize_t k = recvmsg(s->sock, &mh, MSG_DONTWAIT|MSG_CMSG_CLOEXEC);
                int fd = -1;

                if (k < 0) {
                        ck_assert_int_eq(errno, EAGAIN);
                        return;
                }
                buf[k] = 0;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                                memcpy(&fd, CMSG_DATA(c), sizeof(int));
                name = strstr(buf, "\nFDNAME=");
                if (!name)
                        continue;       /* READY=1, STATUS=, … */
                name += strlen("\nFDNAME=");
                if (strncmp(buf, "FDSTORE=1\n", 10) == 0) {
                        bool have = false;

                        ck_assert_int_ge(fd, 0);
                        for (size_t i = 0; i < s->n; i++)
                                have = have || strcmp(s->names[i], name) == 0;
                        if (have) {     /* systemd keeps one copy of a file */
                                ck_assert_int_eq(close(fd), 0);
                                continue;
                        }
                        ck_assert_uint_lt(s->n, 32);
                        s->fds[s->n] = fake_kernel_copy_of(s->k, fd);
                        ck_assert_int_ge(s->fds[s->n], 0);
                        s->names[s->n++] = strdup(name);
                } else if (strncmp(buf, "FDSTOREREMOVE=1\n", 16) == 0) {
                        (void) snprintf(s->removed + strlen(s->removed), sizeof(s->removed) - strlen(s->removed),
                                        "%s%s", s->removed[0] ? " " : "", name);
                        store_drop(s, name);
                }
        }
}

/* What a starting daemon gets: copies; the store keeps its own until told to drop them, or the
 * unit stops for good. */
static FdStore *store_pass(Store *s) {
        FdStore *f = NULL;
        int fds[32];

        for (size_t i = 0; i < s->n; i++) {
                fds[i] = fake_kernel_dup(s->k, s->fds[i]);
                ck_assert_int_ge(fds[i], 0);
        }
        ck_assert_int_eq(fdstore_from_fds(fds, s->names, s->n, &f), 0);
        return f;
}

static void store_free(Store *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->names[i]);
        ck_assert_int_eq(close(s->sock), 0);
        fixture_tmp_free(s->tmp);
}

typedef struct T {
        FixtureTmp *sysfs, *root;
        FakeKernel *k;
        char *policy_dirs[2];
} T;

static Manager *t_manager(T *t, FdStore *store, bool keep) {
        Manager *m = NULL;

        ck_assert_int_eq(manager_new(&(ManagerConfig) {
                .policy_dirs = t->policy_dirs,
                .root_fd = t->root->fd,
                .sysfs_fd = t->sysfs->fd,
                .dev_fd = t->root->fd,
                .vfio_path = _VFIO_PATH_INVALID,
                .vfio_sys = fake_kernel_sys(t->k),
                .fdstore = store,
        }, &m), 0);
        ck_assert_int_ge(manager_reload(m), 0);
        manager_set_keep_held(m, keep);
        manager_held_begin(m);
        ck_assert_int_eq(manager_add_device(m, "pci", PCI), 0);
        ck_assert_int_eq(manager_add_device(m, "platform", SIM), 0);
        manager_held_end(m);
        return m;
}

static void t_start(T *t, Store *s) {
        log_set_max_level(getenv("VFIOPM_TEST_DEBUG") ? LOG_DEBUG : LOG_CRIT);
        ck_assert_int_eq(fixture_tmp_new("sysfs", &t->sysfs), 0);
        ck_assert_int_eq(fixture_tmp_new(NULL, &t->root), 0);
        ck_assert_int_eq(fake_kernel_new(&t->k), 0);
        ck_assert_int_eq(fake_kernel_add_group(t->k, 12, false), 0);
        ck_assert_int_eq(fake_kernel_add_group(t->k, 13, false), 0);
        ck_assert_int_eq(fake_kernel_add_device(t->k, PCI, 12, 0, FAKE_DEVICE_PCI), 0);
        ck_assert_int_eq(fake_kernel_add_device(t->k, SIM, 13, 1, FAKE_DEVICE_PLATFORM), 0);
        t->policy_dirs[0] = (char *) "/policy.d";
        ck_assert_int_eq(fixture_write_string(t->root->fd, "policy.d/50-test.json",
                                              "[ { \"mode\": \"wakeup\", \"rearm_delay_ms\": 0 },\n"
                                              "  { \"match\": { \"device\": \"" SIM "\" }, \"mode\": \"auto\" } ]\n"), 0);
        store_start(s, t->k);
}

static void t_end(T *t, Store *s) {
        store_free(s);
        fake_kernel_free(t->k);
        fixture_tmp_free(t->sysfs);
        fixture_tmp_free(t->root);
}

static PmDevice *pm_of(Manager *m, const char *name) {
        ManagedDevice *d = manager_find_device(m, name);

        ck_assert_ptr_nonnull(d);
        return managed_device_pm(d);
}

START_TEST(test_restart_keeps_held) {
        _cleanup_(fdstore_freep) FdStore *passed = NULL;
        Manager *m;
        PmCounters c;
        Store s;
        T t = {};

        t_start(&t, &s);

        /* the first daemon holds both, one wake */
        m = t_manager(&t, NULL, true);
        ck_assert_int_eq(pm_device_state(pm_of(m, PCI)), PM_STATE_ARMED);
        ck_assert_int_eq(pm_device_state(pm_of(m, SIM)), PM_STATE_ARMED);
        ck_assert_int_eq(fake_kernel_host_access(t.k, PCI), 1);
        ck_assert_int_eq(pm_device_handle_wake(pm_of(m, PCI)), 0);
        store_process(&s);
        ck_assert_uint_eq(s.n, 9);      /* 3 a device, 2 groups, the shared container */
        ck_assert_str_eq(s.removed, "");

        /* it fails (a lost bus): leaves them held, as they are */
        manager_fail(m, -ECONNRESET);
        m = manager_free(m);
        store_process(&s);
        ck_assert_str_eq(s.removed, "");
        ck_assert(fake_kernel_device_open(t.k, PCI) && fake_kernel_device_open(t.k, SIM));
        ck_assert_int_eq(fake_kernel_device_low_power(t.k, PCI), FAKE_LOW_POWER_WAKEUP);
        ck_assert_int_eq(fake_kernel_device_low_power(t.k, SIM), FAKE_LOW_POWER_PLAIN);
        ck_assert_int_eq(faccessat(t.root->fd, "run/vfiopmd/state/" HELD_RECORD_FILE, F_OK, 0), 0);

        /* the next adopts them: no open of a device node, no ioctl */
        passed = store_pass(&s);
        fake_kernel_clear_calls(t.k);
        m = t_manager(&t, passed, true);
        for (size_t i = 0; i < fake_kernel_ncalls(t.k); i++) {
                const FakeCall *call = fake_kernel_call(t.k, i);

                /* but the backend's look for /dev/vfio/devices, which is not there */
                if (call->type == FAKE_CALL_IOCTL || (call->type == FAKE_CALL_OPENAT && call->result >= 0)) {
                        fake_kernel_dump(t.k, stderr);
                        ck_abort_msg("adopting issued a call");
                }
        }
        ck_assert_int_eq(pm_device_state(pm_of(m, PCI)), PM_STATE_ARMED);
        ck_assert_int_eq(pm_device_state(pm_of(m, SIM)), PM_STATE_ARMED);
        pm_device_counters(pm_of(m, PCI), &c);
        ck_assert_uint_eq(c.wakes, 1);
        ck_assert_uint_eq(c.arms, 2);
        ck_assert_uint_eq(fdstore_left(passed), 0);
        /* the store keeps its copies */
        store_process(&s);
        ck_assert_uint_eq(s.n, 9);
        ck_assert_str_eq(s.removed, "");

        /* a wake while it runs is as any */
        ck_assert_int_eq(fake_kernel_host_access(t.k, PCI), 1);
        ck_assert_int_eq(pm_device_handle_wake(pm_of(m, PCI)), 0);
        pm_device_counters(pm_of(m, PCI), &c);
        ck_assert_uint_eq(c.wakes, 2);

        /* what it lets go leaves the store: SIM's own fds and its group's, not the container */
        ck_assert_int_eq(manager_release(m, SIM, NULL), 0);
        store_process(&s);
        ck_assert_str_eq(s.removed, "device.vfio-pm-sim.0 wake.vfio-pm-sim.0 request.vfio-pm-sim.0 group.13");
        ck_assert(!fake_kernel_device_open(t.k, SIM));

        /* a stop lets go of everything: the store is empty, every device closed */
        s.removed[0] = 0;
        m = manager_free(m);
        store_process(&s);
        ck_assert_uint_eq(s.n, 0);
        ck_assert(!fake_kernel_device_open(t.k, PCI));
        ck_assert_uint_eq(fake_kernel_open_fds(t.k), 0);
        ck_assert_int_eq(faccessat(t.root->fd, "run/vfiopmd/state/" HELD_RECORD_FILE, F_OK, 0), -1);
        ck_assert_uint_eq(fake_kernel_violations(t.k), 0);

        t_end(&t, &s);
}
END_TEST

/* In a unit the bus says keeps no fds (FileDescriptorStoreMax=0 or Restart=no): nothing
 * is sent, neither when holding nor when letting go, and no record is kept — a 1,000-device
 * start must not pay five messages a device for a store that drops them. */
START_TEST(test_no_store_no_sends) {
        Manager *m;
        Store s;
        T t = {};

        t_start(&t, &s);
        m = t_manager(&t, NULL, false);
        ck_assert_int_eq(pm_device_state(pm_of(m, PCI)), PM_STATE_ARMED);
        ck_assert_int_eq(pm_device_state(pm_of(m, SIM)), PM_STATE_ARMED);
        ck_assert_int_eq(fake_kernel_host_access(t.k, PCI), 1);
        ck_assert_int_eq(pm_device_handle_wake(pm_of(m, PCI)), 0);
        ck_assert_int_eq(manager_release(m, SIM, NULL), 0);
        store_process(&s);
        ck_assert_uint_eq(s.n, 0);
        ck_assert_str_eq(s.removed, "");
        ck_assert_int_eq(faccessat(t.root->fd, "run/vfiopmd/state/" HELD_RECORD_FILE, F_OK, 0), -1);

        m = manager_free(m);
        store_process(&s);
        ck_assert_uint_eq(s.n, 0);
        ck_assert_str_eq(s.removed, "");
        ck_assert_uint_eq(fake_kernel_open_fds(t.k), 0);
        t_end(&t, &s);
}
END_TEST

Suite *manager_held_suite(void) {
        Suite *s = suite_create("manager-held");
        TCase *tc = tcase_create("restart");

        tcase_add_test(tc, test_restart_keeps_held);
        tcase_add_test(tc, test_no_store_no_sends);
        suite_add_tcase(s, tc);
        return s;
}
