#pragma once

/* pm-helpers: the harness the pm suites share (test-pm*.c): the pm state machine driven through
 * the fake device of fake-pm-ops.h, a fake clock and a scratch sysfs directory. Must be called
 * from a Check test (they assert). */

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "fake-pm-ops.h"
#include "fixture.h"
#include "pm.h"

#define T0 (UINT64_C(1000) * USEC_PER_SEC)     /* the fake monotonic clock starts here */
#define RT0 (UINT64_C(1700000000) * USEC_PER_SEC)

typedef struct T {
        FixtureTmp *tmp;
        FixtureTmp *state;              /* PmEnv.state_dir_fd: the records of the originals */
        unsigned record_failures;       /* record_failed calls */
        char record_failure[64];        /* the last one: "what: -errno" */
        FakeDev dev;
        usec_t now;
        usec_t rt_offset;
        PmEnv env;
        PmDevice *pm;
        char states[512];               /* states entered since the last expect_states() */
        unsigned state_calls, deadline_calls, fds_calls, rearmed_calls;
        unsigned flaps;                 /* transitions to flapping */
        unsigned expected_violations;
        /* an independent account of the time armed, from the callbacks */
        usec_t armed_start, armed_total;
} T;

#define expect_log(t, s) do {                                   \
                ck_assert_str_eq((t)->dev.log, (s));            \
                (t)->dev.log[0] = 0;                            \
        } while (0)

#define expect_states(t, s) do {                                \
                ck_assert_str_eq((t)->states, (s));             \
                (t)->states[0] = 0;                             \
        } while (0)

#define expect_state(t, st, dl) do {                            \
                ck_assert_str_eq(pm_state_to_string(pm_device_state((t)->pm)), pm_state_to_string(st)); \
                ck_assert_uint_eq(pm_device_deadline((t)->pm), (dl)); \
        } while (0)

/* A harness without its PmDevice yet: a sysfs directory (with the attributes if sysfs) and an
 * empty state directory; t_start() creates the device. */
T *t_alloc(bool sysfs);
/* The fake monotonic clock (PmEnv.now); userdata a T. */
usec_t t_now(void *userdata);
T *t_start(T *t);
/* PmEnv.wake_rearmed for a harness that wants it (set in t->env between t_alloc() and
 * t_start()): counts, appends "rearmed" to states and keeps the account of the time armed. */
void t_wake_rearmed(void *userdata, PmDevice *d);
T *t_new_full(bool sysfs);
T *t_new(void);
void t_free(T *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(T *, t_free)

PolicyValues policy(PolicyMode mode, uint64_t arm_ms, uint64_t rearm_ms);
int t_policy(T *t, PolicyMode mode, uint64_t arm_ms, uint64_t rearm_ms);
void t_advance(T *t, usec_t usec);
/* Moves the clock to the deadline and fires the timer. */
int t_fire(T *t);
/* The device wakes and the loop sees its eventfd. */
int t_device_wakes(T *t);
const char *t_attr(T *t, const char *path);
void t_set_attr(T *t, const char *path, const char *value);
PmCounters t_counters(T *t);
