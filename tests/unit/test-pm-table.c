#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "pm-helpers.h"
#include "suites.h"

/* pm.h's state × event table walked: every state, every event, every outcome reached. */

/* ---- the state × event table of pm.h ---------------------------------------------------- */

/* pm.h's table as data: cell [from][event] is the set of states the event may leave a device
 * in that was in from (itself included when it may stay), in pm.h's words. */
typedef enum TableEvent {
        EV_SET_POLICY,
        EV_CLAIM,
        EV_RELEASE,
        EV_WAKE,
        EV_HANDLE_WAKE,
        EV_HANDLE_REQUEST,
        EV_HANDLE_TIMER,
        _EV_MAX,
} TableEvent;

static const char *const ev_names[_EV_MAX] = {
        "set_policy", "claim", "release", "wake", "handle_wake", "handle_request", "handle_timer",
};

/* The cells as pm.h writes them: "=" the row's own state, then one letter a state. */
static const char *const pm_table[_PM_STATE_MAX][_EV_MAX] = {
        /*                       set_policy     claim          release wake     handle_wake handle_request handle_timer */
        [PM_STATE_KERNEL]   = { "k o b i a e", "=",           "= r",  "=",     "=",       "=",   "=" },
        [PM_STATE_ON]       = { "k o b i a e", "=",           "= r",  "=",     "=",       "=",   "=" },
        [PM_STATE_BUSY]     = { "k o b i a e", "b i a e",     "r",    "=",     "=",       "=",   "=" },
        [PM_STATE_IDLE]     = { "k o i a e",   "=",           "r",    "=",     "=",       "= r", "i a e" },
        [PM_STATE_ARMED]    = { "k o a e",     "=",           "r",    "a w e", "a w f e", "= r", "=" },
        [PM_STATE_WOKEN]    = { "k o w a e",   "=",           "r",    "=",     "=",       "= r", "w a e" },
        [PM_STATE_FLAPPING] = { "k o f a e",   "=",           "r",    "=",     "=",       "= r", "f a e" },
        [PM_STATE_RELEASED] = { "=",           "k o b i a e", "=",    "=",     "=",       "=",   "=" },
        [PM_STATE_ERROR]    = { "k o b i a e", "o b i a e",   "= r",  "=",     "=",       "= r", "o b i a e" },
};

/* The states of the cell [from][event], one bit each. */
static unsigned table_cell(PmState from, TableEvent event) {
        static const char letters[_PM_STATE_MAX] = "kobiawfre";
        unsigned set = 0;

        for (const char *c = pm_table[from][event]; *c; c++) {
                const char *l;

                if (*c == ' ')
                        continue;
                if (*c == '=') {
                        set |= 1u << from;
                        continue;
                }
                l = memchr(letters, *c, sizeof(letters));
                ck_assert_msg(l, "pm_table: '%c'", *c);
                set |= 1u << (l - letters);
        }
        return set;
}

/* A device brought into one state: a fresh harness, the policy in force, the fixture broken where
 * the setup needed it. */
typedef struct TableCase {
        T *t;
        PolicyValues policy;
        bool control_broken;            /* power/control is a directory: unreadable, unwritable */
} TableCase;

static void table_break_control(TableCase *c) {
        ck_assert_int_eq(unlinkat(c->t->tmp->fd, "power/control", 0), 0);
        ck_assert_int_eq(mkdirat(c->t->tmp->fd, "power/control", 0755), 0);
        c->control_broken = true;
}

/* What a setup broke works again before the event; the event's own failures come after. */
static void table_heal(TableCase *c) {
        c->t->dev.open_error = c->t->dev.fail_enter = c->t->dev.fail_exit = 0;
        if (c->control_broken) {
                ck_assert_int_eq(unlinkat(c->t->tmp->fd, "power/control", AT_REMOVEDIR), 0);
                t_set_attr(c->t, "power/control", "auto\n");
                c->control_broken = false;
        }
}

static void table_policy(TableCase *c, PolicyMode mode, uint64_t arm_ms, uint64_t rearm_ms) {
        c->policy = policy(mode, arm_ms, rearm_ms);
        (void) pm_device_set_policy(c->t->pm, &c->policy);
}

static void table_wakes(TableCase *c) {
        ck_assert(fake_device_wakes(&c->t->dev));
        (void) pm_device_handle_wake(c->t->pm);
}

typedef struct TableSetup {
        const char *name;
        PmState state;
        void (*run)(TableCase *c);
} TableSetup;

static void setup_fresh(TableCase *c) {
}
static void setup_kernel(TableCase *c) {
        table_policy(c, POLICY_MODE_KERNEL, 0, 0);
}
static void setup_on(TableCase *c) {
        table_policy(c, POLICY_MODE_ON, 0, 0);
}
static void setup_busy(TableCase *c) {
        c->t->dev.open_error = EBUSY;
        table_policy(c, POLICY_MODE_AUTO, 0, 1000);
}
static void setup_busy_delay(TableCase *c) {
        c->t->dev.open_error = EBUSY;
        table_policy(c, POLICY_MODE_AUTO, 1000, 1000);
}
static void setup_idle(TableCase *c) {
        table_policy(c, POLICY_MODE_AUTO, 1000, 1000);
}
static void setup_armed_auto(TableCase *c) {
        table_policy(c, POLICY_MODE_AUTO, 0, 1000);
}
static void setup_armed_wakeup(TableCase *c) {
        table_policy(c, POLICY_MODE_WAKEUP, 0, 1000);
}
static void setup_armed_rearm0(TableCase *c) {
        table_policy(c, POLICY_MODE_WAKEUP, 0, 0);
}
/* one wake stored with flap_max_wakes 1: the next one flaps */
static void setup_armed_flap(TableCase *c) {
        c->policy = policy(POLICY_MODE_WAKEUP, 0, 0);
        c->policy.flap_max_wakes = 1;
        c->policy.flap_hold_s = 10;
        (void) pm_device_set_policy(c->t->pm, &c->policy);
        table_wakes(c);
}
static void setup_woken(TableCase *c) {
        setup_armed_wakeup(c);
        table_wakes(c);
}
static void setup_flapping(TableCase *c) {
        setup_armed_flap(c);
        table_wakes(c);
}
static void setup_released(TableCase *c) {
        setup_armed_auto(c);
        (void) pm_device_release(c->t->pm, PM_RELEASE_OWN);
}
static void setup_released_idle(TableCase *c) {
        setup_idle(c);
        (void) pm_device_release(c->t->pm, PM_RELEASE_OWN);
}
static void setup_released_on(TableCase *c) {
        setup_on(c);
        (void) pm_device_release(c->t->pm, PM_RELEASE_RESERVATION);
}
static void setup_released_fresh(TableCase *c) {
        (void) pm_device_release(c->t->pm, PM_RELEASE_RESERVATION);
}
static void setup_error_held(TableCase *c) {
        c->t->dev.fail_enter = EIO;
        table_policy(c, POLICY_MODE_AUTO, 0, 1000);
}
static void setup_error_open(TableCase *c) {
        c->t->dev.open_error = EIO;
        table_policy(c, POLICY_MODE_AUTO, 1000, 1000);
}
static void setup_error_on(TableCase *c) {
        table_break_control(c);
        table_policy(c, POLICY_MODE_ON, 0, 0);
}

static const TableSetup table_setups[] = {
        { "fresh", PM_STATE_KERNEL, setup_fresh },
        { "kernel", PM_STATE_KERNEL, setup_kernel },
        { "on", PM_STATE_ON, setup_on },
        { "busy", PM_STATE_BUSY, setup_busy },
        { "busy, arm delay", PM_STATE_BUSY, setup_busy_delay },
        { "idle", PM_STATE_IDLE, setup_idle },
        { "armed auto", PM_STATE_ARMED, setup_armed_auto },
        { "armed wakeup", PM_STATE_ARMED, setup_armed_wakeup },
        { "armed wakeup, rearm 0", PM_STATE_ARMED, setup_armed_rearm0 },
        { "armed wakeup, one wake from flapping", PM_STATE_ARMED, setup_armed_flap },
        { "woken", PM_STATE_WOKEN, setup_woken },
        { "flapping", PM_STATE_FLAPPING, setup_flapping },
        { "released", PM_STATE_RELEASED, setup_released },
        { "released, arm delay", PM_STATE_RELEASED, setup_released_idle },
        { "released, mode on", PM_STATE_RELEASED, setup_released_on },
        { "released before the first decision", PM_STATE_RELEASED, setup_released_fresh },
        { "error, held", PM_STATE_ERROR, setup_error_held },
        { "error, open failed", PM_STATE_ERROR, setup_error_open },
        { "error, mode on", PM_STATE_ERROR, setup_error_on },
};

/* The failures an event may meet. */
typedef enum TableFault {
        FAULT_NONE,
        FAULT_ENTER,                    /* every entry fails (EIO) */
        FAULT_EXIT,                     /* every exit fails (EIO) */
        FAULT_OPEN_BUSY,                /* another process holds the device */
        FAULT_CONTROL,                  /* power/control unusable */
} TableFault;

typedef struct TableVariant {
        TableEvent event;
        TableFault fault;
        int arg;                        /* set_policy: the policy (TABLE_POLICY_*); release: why;
                                         * handle_timer: early (1) or at the deadline (0) */
} TableVariant;

enum {
        TABLE_POLICY_SAME,              /* the setup's own */
        TABLE_POLICY_SAME_LATE,         /* the setup's own, once its deadline has passed */
        TABLE_POLICY_SAME_D3COLD,       /* the setup's own with d3cold false */
        TABLE_POLICY_KERNEL,
        TABLE_POLICY_ON,
        TABLE_POLICY_AUTO,              /* no delays */
        TABLE_POLICY_AUTO_DELAY,        /* 1 s delays */
        TABLE_POLICY_WAKEUP,
        TABLE_POLICY_WAKEUP_DELAY,
};

static const TableVariant table_variants[] = {
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_SAME },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_SAME_LATE },
        { EV_SET_POLICY, FAULT_ENTER, TABLE_POLICY_SAME_LATE },
        { EV_SET_POLICY, FAULT_EXIT, TABLE_POLICY_SAME_D3COLD },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_KERNEL },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_ON },
        { EV_SET_POLICY, FAULT_CONTROL, TABLE_POLICY_ON },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_AUTO },
        { EV_SET_POLICY, FAULT_ENTER, TABLE_POLICY_AUTO },
        { EV_SET_POLICY, FAULT_OPEN_BUSY, TABLE_POLICY_AUTO },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_AUTO_DELAY },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_WAKEUP },
        { EV_SET_POLICY, FAULT_ENTER, TABLE_POLICY_WAKEUP },
        { EV_SET_POLICY, FAULT_OPEN_BUSY, TABLE_POLICY_WAKEUP },
        { EV_SET_POLICY, FAULT_NONE, TABLE_POLICY_WAKEUP_DELAY },
        { EV_CLAIM, FAULT_NONE, 0 },
        { EV_CLAIM, FAULT_ENTER, 0 },
        { EV_CLAIM, FAULT_OPEN_BUSY, 0 },
        { EV_CLAIM, FAULT_CONTROL, 0 },
        { EV_RELEASE, FAULT_NONE, PM_RELEASE_OWN },
        { EV_RELEASE, FAULT_NONE, PM_RELEASE_GROUP },
        { EV_RELEASE, FAULT_NONE, PM_RELEASE_RESERVATION },
        { EV_WAKE, FAULT_NONE, 0 },
        { EV_WAKE, FAULT_ENTER, 0 },
        { EV_WAKE, FAULT_EXIT, 0 },
        { EV_HANDLE_WAKE, FAULT_NONE, 0 },
        { EV_HANDLE_WAKE, FAULT_ENTER, 0 },
        { EV_HANDLE_REQUEST, FAULT_NONE, 0 },
        { EV_HANDLE_REQUEST, FAULT_NONE, 1 },   /* spurious: nothing to read */
        { EV_HANDLE_TIMER, FAULT_NONE, 0 },
        { EV_HANDLE_TIMER, FAULT_NONE, 1 },
        { EV_HANDLE_TIMER, FAULT_ENTER, 0 },
        { EV_HANDLE_TIMER, FAULT_OPEN_BUSY, 0 },
};

static PolicyValues table_variant_policy(const TableCase *c, int which) {
        PolicyValues p = c->policy;

        switch (which) {
        case TABLE_POLICY_SAME:
        case TABLE_POLICY_SAME_LATE:
                break;
        case TABLE_POLICY_SAME_D3COLD:
                p.d3cold = POLICY_D3COLD_DENY;
                break;
        case TABLE_POLICY_KERNEL:
                return policy(POLICY_MODE_KERNEL, 0, 0);
        case TABLE_POLICY_ON:
                return policy(POLICY_MODE_ON, 0, 0);
        case TABLE_POLICY_AUTO:
                return policy(POLICY_MODE_AUTO, 0, 0);
        case TABLE_POLICY_AUTO_DELAY:
                return policy(POLICY_MODE_AUTO, 1000, 1000);
        case TABLE_POLICY_WAKEUP:
                return policy(POLICY_MODE_WAKEUP, 0, 0);
        case TABLE_POLICY_WAKEUP_DELAY:
                return policy(POLICY_MODE_WAKEUP, 1000, 1000);
        }
        return p;
}

static void table_apply(TableCase *c, const TableVariant *v) {
        T *t = c->t;
        usec_t dl = pm_device_deadline(t->pm);
        PolicyValues p;

        switch (v->fault) {
        case FAULT_NONE:
                break;
        case FAULT_ENTER:
                t->dev.fail_enter = EIO;
                break;
        case FAULT_EXIT:
                t->dev.fail_exit = EIO;
                break;
        case FAULT_OPEN_BUSY:
                t->dev.open_error = EBUSY;
                break;
        case FAULT_CONTROL:
                table_break_control(c);
                break;
        }

        switch (v->event) {
        case EV_SET_POLICY:
                if (v->arg == TABLE_POLICY_SAME_LATE && dl != USEC_INFINITY)
                        t->now = dl;
                p = table_variant_policy(c, v->arg);
                (void) pm_device_set_policy(t->pm, &p);
                break;
        case EV_CLAIM:
                (void) pm_device_claim(t->pm);
                break;
        case EV_RELEASE:
                (void) pm_device_release(t->pm, v->arg);
                break;
        case EV_WAKE:
                (void) pm_device_wake(t->pm);
                break;
        case EV_HANDLE_WAKE:
                (void) fake_device_wakes(&t->dev);      /* a wake where an entry can fire */
                (void) pm_device_handle_wake(t->pm);
                break;
        case EV_HANDLE_REQUEST:
                if (t->dev.open && v->arg == 0)
                        fake_signal(t->dev.request_fd);
                (void) pm_device_handle_request(t->pm);
                break;
        case EV_HANDLE_TIMER:
                if (dl != USEC_INFINITY)
                        t->now = v->arg ? dl - 1 : dl;
                (void) pm_device_handle_timer(t->pm);
                break;
        case _EV_MAX:
                break;
        }
}

START_TEST(test_state_event_table) {
        unsigned reached[_PM_STATE_MAX][_EV_MAX] = {};

        for (size_t s = 0; s < ELEMENTSOF(table_setups); s++)
                for (size_t v = 0; v < ELEMENTSOF(table_variants); v++) {
                        const TableSetup *setup = &table_setups[s];
                        const TableVariant *var = &table_variants[v];
                        TableCase c = { .t = t_new(), .policy = *policy_defaults() };
                        PmState from, to;

                        setup->run(&c);
                        from = pm_device_state(c.t->pm);
                        ck_assert_msg(from == setup->state, "setup %s: %s", setup->name,
                                      pm_state_to_string(from));
                        table_heal(&c);
                        table_apply(&c, var);
                        to = pm_device_state(c.t->pm);
                        ck_assert_msg(table_cell(from, var->event) & (1u << to),
                                      "%s (setup %s, variant %zu) → %s: not in pm.h's table",
                                      ev_names[var->event], setup->name, v, pm_state_to_string(to));
                        reached[from][var->event] |= 1u << to;
                        table_heal(&c);
                        t_free(c.t);
                }

        /* every cell of the table happens */
        for (int s = 0; s < _PM_STATE_MAX; s++)
                for (int e = 0; e < _EV_MAX; e++)
                        for (int to = 0; to < _PM_STATE_MAX; to++)
                                ck_assert_msg(!(table_cell(s, e) & (1u << to)) || (reached[s][e] & (1u << to)),
                                              "%s → %s on %s: never reached", pm_state_to_string(s),
                                              pm_state_to_string(to), ev_names[e]);
}
END_TEST

Suite *pm_table_suite(void) {
        Suite *s = suite_create("pm-table");
        TCase *tc;

        tc = tcase_create("table");
        tcase_add_test(tc, test_state_event_table);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);

        return s;
}
