/* The pm state machine (pm.h) driven by the input over the fake device of
 * tests/unit/fake-pm-ops.h and a fake clock: each input byte an event (policy changes, Claim,
 * Release, Wake, the device waking, a driver unbind, timers, failing entries and opens, a restart
 * that adopts the device), and after each one what pm.h promises: the kernel never sees an entry
 * over one in force, a device is held exactly in the held states, armed has its entry in force
 * and no timer, the counters never go back, and freeing closes the device and puts sysfs back. */

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "fake-pm-ops.h"
#include "fixture.h"
#include "fuzz.h"
#include "pm.h"
#include "sysfs.h"

typedef struct Run {
        FixtureTmp *sysfs, *state;
        FakeDev dev;
        PmEnv env;
        PmDevice *pm;
        usec_t now;
        bool kernel_refuses;            /* stay_active was set: one refused entry is expected */
        PmCounters last;
        PolicyMode mode;
} Run;

static usec_t run_now(void *userdata) {
        return ((Run *) userdata)->now;
}

static void run_deadline_changed(void *userdata, PmDevice *d) {
        Run *run = userdata;

        FUZZ_CHECK(d == run->pm);
}

static void run_fds_changed(void *userdata, PmDevice *d) {
        Run *run = userdata;

        FUZZ_CHECK(d == run->pm && run->dev.open);
        if (pm_device_held(d))
                FUZZ_CHECK(pm_device_wake_fd(d) == run->dev.wake_fd &&
                           pm_device_request_fd(d) == run->dev.request_fd);
        else
                FUZZ_CHECK(pm_device_wake_fd(d) == -EBADF && pm_device_request_fd(d) == -EBADF);
}

static void run_state_changed(void *userdata, PmDevice *d, PmState old) {
        Run *run = userdata;
        PmState s = pm_device_state(d);

        FUZZ_CHECK(d == run->pm && old != s);
        FUZZ_CHECK(pm_state_to_string(s) && pm_state_to_string(old));
}

/* a wake re-armed at once: armed, with the entry in force again */
static void run_wake_rearmed(void *userdata, PmDevice *d) {
        Run *run = userdata;

        FUZZ_CHECK(d == run->pm && pm_device_state(d) == PM_STATE_ARMED);
        FUZZ_CHECK(run->dev.open && run->dev.in_force != FAKE_NONE);
}

static bool state_held(PmState s) {
        return s == PM_STATE_IDLE || s == PM_STATE_ARMED || s == PM_STATE_WOKEN || s == PM_STATE_FLAPPING;
}

static void check(Run *run) {
        PmState s = pm_device_state(run->pm);
        usec_t dl = pm_device_deadline(run->pm);
        PmCounters c;

        FUZZ_CHECK(s >= 0 && s < _PM_STATE_MAX);
        FUZZ_CHECK(run->kernel_refuses || run->dev.violations == 0);
        FUZZ_CHECK(pm_device_held(run->pm) == run->dev.open);
        if (state_held(s))
                FUZZ_CHECK(run->dev.open);
        if (s == PM_STATE_KERNEL || s == PM_STATE_ON || s == PM_STATE_BUSY || s == PM_STATE_RELEASED)
                FUZZ_CHECK(!run->dev.open);
        if (s == PM_STATE_ARMED) {
                FUZZ_CHECK(run->dev.in_force != FAKE_NONE);
                FUZZ_CHECK(pm_device_entry(run->pm) == (PmEntry) run->dev.in_force);
        }
        if (s == PM_STATE_IDLE || s == PM_STATE_WOKEN || s == PM_STATE_FLAPPING)
                FUZZ_CHECK(run->dev.in_force == FAKE_NONE);
        if (s == PM_STATE_ARMED || s == PM_STATE_KERNEL || s == PM_STATE_ON || s == PM_STATE_BUSY ||
            s == PM_STATE_RELEASED)
                FUZZ_CHECK(dl == USEC_INFINITY);
        if (s == PM_STATE_IDLE || s == PM_STATE_WOKEN || s == PM_STATE_FLAPPING)
                FUZZ_CHECK(dl != USEC_INFINITY);
        FUZZ_CHECK((pm_device_release_reason(run->pm) != PM_RELEASE_NONE) == (s == PM_STATE_RELEASED));
        FUZZ_CHECK(!pm_device_last_errno(run->pm) == !pm_device_last_error(run->pm)[0]);

        pm_device_counters(run->pm, &c);
        FUZZ_CHECK(c.wakes >= run->last.wakes && c.arms >= run->last.arms);
        FUZZ_CHECK(c.low_power_usec >= run->last.low_power_usec);
        FUZZ_CHECK(c.arms <= run->dev.enters);
        run->last = c;
}

static void run_start(Run *run) {
        FUZZ_SETUP(pm_device_new(&run->env, "pci", "0000:01:00.0", run->sysfs->fd, &run->pm));
        FUZZ_CHECK(pm_device_state(run->pm) == PM_STATE_KERNEL);
}

/* A restart that keeps the device (SPEC §9): the old daemon leaves it open in the kernel, the
 * next one adopts it with the entry in force and goes on with the counts. */
static void run_restart(Run *run) {
        FakeEntry in_force = run->dev.in_force;
        bool held = run->dev.open;
        PmCounters c;

        pm_device_counters(run->pm, &c);
        run->pm = pm_device_leave(run->pm);
        FUZZ_CHECK(!run->dev.open);
        run_start(run);
        if (held)
                run->dev.adopt = in_force;
        pm_device_restore_counters(run->pm, &c);
        run->last = (PmCounters) {};
}

static void set_policy(Run *run, uint8_t a, uint8_t b) {
        PolicyValues p = *policy_defaults();
        static const uint64_t delays_ms[] = { 0, 1, 1000, 60000 };

        p.mode = a % _POLICY_MODE_MAX;
        p.arm_delay_ms = delays_ms[(a >> 2) & 3];
        p.rearm_delay_ms = delays_ms[(a >> 4) & 3];
        p.flap_max_wakes = 1 + (b & 3);
        p.flap_window_s = 1 + ((b >> 2) & 7) * 10;
        p.flap_hold_s = (b >> 5) & 3;
        p.d3cold = (b >> 7) ? POLICY_D3COLD_ALLOW : (a >> 6) % _POLICY_D3COLD_MAX;
        run->mode = p.mode;
        (void) pm_device_set_policy(run->pm, &p);
}

static void step(Run *run, uint8_t op, uint8_t arg, uint8_t arg2) {
        static const int errnos[] = { EIO, EBUSY, ENODEV, EINVAL };

        switch (op % 14) {
        case 0:
                set_policy(run, arg, arg2);
                break;
        case 1:
                (void) pm_device_claim(run->pm);
                break;
        case 2: {
                static const PmRelease why[] = { PM_RELEASE_OWN, PM_RELEASE_GROUP, PM_RELEASE_RESERVATION };

                (void) pm_device_release(run->pm, why[arg % 3]);
                break;
        }
        case 3:
                (void) pm_device_wake(run->pm);
                break;
        case 4:
                /* the device wakes (a PME, a host access); the loop sees a fired eventfd */
                if (run->dev.open && fake_device_wakes(&run->dev))
                        (void) pm_device_handle_wake(run->pm);
                break;
        case 5:
                /* a signal that is no wake (stale, spurious) */
                if (run->dev.open)
                        (void) pm_device_handle_wake(run->pm);
                break;
        case 6:
                /* the kernel asks for the device (unbind): only a held device has the eventfd */
                if (run->dev.open) {
                        if (arg & 1)
                                fake_signal(run->dev.request_fd);
                        (void) pm_device_handle_request(run->pm);
                }
                break;
        case 7: {
                usec_t dl = pm_device_deadline(run->pm);

                if (dl != USEC_INFINITY) {
                        if (dl > run->now)
                                run->now = dl;
                        (void) pm_device_handle_timer(run->pm);
                }
                break;
        }
        case 8:
                /* a timer that fires early (the loop's clock is coarser) */
                (void) pm_device_handle_timer(run->pm);
                break;
        case 9:
                run->now += (usec_t) arg * arg2 * USEC_PER_MSEC;
                break;
        case 10:
                run->dev.fail_next_enter = arg & 1 ? errnos[(arg >> 1) & 3] : 0;
                run->dev.fail_enter = arg & 8 ? errnos[(arg >> 4) & 3] : 0;
                run->dev.fail_exit = arg & 64 ? EIO : 0;
                run->dev.exit_fires = arg & 128;
                break;
        case 11:
                run->dev.open_error = arg & 1 ? errnos[(arg >> 1) & 3] : 0;
                break;
        case 12:
                if (arg & 1)
                        run->kernel_refuses = run->dev.stay_active = true;
                else
                        run->dev.stay_active = false;
                break;
        case 13:
                run_restart(run);
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *control = NULL, *d3cold = NULL;
        Run run = {};

        if (size > 4096)
                return 0;       /* long enough for any path through the table; keeps runs fast */
        FUZZ_SETUP(fixture_tmp_new(NULL, &run.sysfs));
        FUZZ_SETUP(fixture_tmp_new(NULL, &run.state));
        FUZZ_SETUP(fixture_write_string(run.sysfs->fd, "power/control", "auto\n"));
        FUZZ_SETUP(fixture_write_string(run.sysfs->fd, "d3cold_allowed", "1\n"));
        FUZZ_SETUP(fixture_write_string(run.sysfs->fd, "power/runtime_suspended_time", "1234\n"));
        run.dev.wake_fd = run.dev.request_fd = -EBADF;
        run.now = 1000 * USEC_PER_SEC;
        run.env = (PmEnv) {
                .vfio_ops = &fake_ops,
                .vfio_userdata = &run.dev,
                .now = run_now,
                .now_realtime = run_now,
                .deadline_changed = run_deadline_changed,
                .fds_changed = run_fds_changed,
                .state_changed = run_state_changed,
                /* both ways of telling a wake re-armed at once: the daemon's, and two changes */
                .wake_rearmed = size % 2 ? run_wake_rearmed : NULL,
                .userdata = &run,
                .state_dir_fd = run.state->fd,
        };
        run_start(&run);

        for (size_t i = 0; i + 2 < size; i += 3) {
                step(&run, data[i], data[i + 1], data[i + 2]);
                check(&run);
        }

        /* freeing closes the device and puts back what was changed */
        run.pm = pm_device_free(run.pm);
        FUZZ_CHECK(!run.dev.open && run.dev.opens == run.dev.closes);
        FUZZ_CHECK(sysfs_read_attr(run.sysfs->fd, "power/control", &control) == 0);
        FUZZ_CHECK(sysfs_read_attr(run.sysfs->fd, "d3cold_allowed", &d3cold) == 0);
        FUZZ_CHECK(strcmp(control, "auto") == 0 && strcmp(d3cold, "1") == 0);
        fixture_tmp_free(run.sysfs);
        fixture_tmp_free(run.state);
        return 0;
}
