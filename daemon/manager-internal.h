#pragma once

/* What manager.c and manager-release.c share: the structures behind manager.h's opaque types and
 * the steps each file takes for the other. Nothing else includes this. */

#include <event2/event.h>

#include "device-table.h"
#include "device.h"
#include "energy.h"
#include "fdstore.h"
#include "held-record.h"
#include "manager.h"
#include "udev-monitor.h"

struct ManagedDevice {
        Manager *manager;
        DeviceInfo *info;
        PmDevice *pm;
        int dir_fd;                     /* the device's sysfs directory */
        DevicePowerAttrs power_attrs;   /* below dir_fd, kept open once read */
        EffectivePolicy *policy;
        struct event *timer;
        struct event *power_follow;     /* re-reads after a change: POWER_FOLLOW_MS */
        unsigned power_step;            /* the next POWER_FOLLOW_MS entry */
        struct event *wake_event;
        struct event *request_event;
        bool on_vfio;                   /* bound to a VFIO driver; false: a released device kept
                                         * in the table until Claim (a reservation) */
        char *released_by;              /* the device whose Release released this one; NULL when
                                         * not released by a Release */
        PmState counted;                /* the state it is counted under in Manager.count */
        bool gone;                      /* being forgotten or freed: pm's callbacks change nothing */
        HeldSlot *slot;                 /* its slot in the held record while held */
        EnergyMeter energy;             /* from the first reading at managed_device_new() */
        uint64_t energy_batch;          /* Manager.readers_batch of its last reading for a reader */
        void *observer;                 /* managed_device_observer() */
};

struct Manager {
        ManagerConfig config;
        struct event_base *base;
        struct event *sighup, *sigterm, *sigint, *watchdog;
        DeviceMonitor *monitor;
        VfioBackend *backend;
        PolicySet *policy;
        PmEnv pm_env;
        DeviceTable *devices;           /* name → ManagedDevice, owned */
        ManagedDevice **sorted;         /* manager_devices() */
        ManagerHooks hooks;
        uint64_t readers_batch;         /* manager_readers_batch(); 0: none yet, every read fresh */
        bool started;
        bool enumerating;               /* manager_start(): devices go in the table, no decision yet */
        int exit_error;                 /* manager_fail(): what manager_run() returns */
        int state_dir_fd;               /* the records of the originals; -EBADF: none */
        int release_dir_fd;             /* release-store.h; -EBADF: releases die with the daemon */
        bool record_warned;             /* a record could not be written: said once */
        bool fd_limit_warned;           /* a device could not be held for want of fds: said once */
        /* STATUS=: the devices in the table by state, kept as they change (nothing walks the table
         * on a change), sent once a loop turn and only when its text changed */
        size_t count[_PM_STATE_MAX];
        size_t count_sent[_PM_STATE_MAX];       /* the counts status_sent says */
        /* manager-held.c */
        bool keep_held;                 /* manager_set_keep_held() */
        bool keep_held_known;           /* it was called (else the fds go to the store, if any) */
        bool store_used;                /* the fds go to the service manager's store, and leave it:
                                         * not known not to keep them, or the daemon before left some */
        bool leaving;                   /* exiting with the devices kept in the service manager's store */
        FdStore *store;                 /* at start: what the daemon before left */
        HeldRecord *held;
        struct event *status_event;
        char status_sent[256];
};

/* manager.c */
/* Makes d (with its pm, before its first decision) and puts it in the table; no hook called. */
int managed_device_new(Manager *m, const char *bus, const char *name, ManagedDevice **ret);
/* Evaluates the policy for d and gives it to its state machine. */
int managed_device_apply_policy(Manager *m, ManagedDevice *d);
/* The device_changed hook, and the power follow-up reads after a change. */
void manager_hook_device_changed(Manager *m, ManagedDevice *d);
/* Forgets d: out of the table, closed if held. */
void manager_forget_device(Manager *m, ManagedDevice *d);

/* manager-release.c */
/* What the release directory says of d, applied before its first decision: a restarted daemon
 * leaves released what the one before released. */
void manager_release_adopt(Manager *m, ManagedDevice *d);
/* A device off VFIO with a record in the release directory: in the table, released as it was. */
int manager_add_released(Manager *m, const char *bus, const char *name);
/* Whether the release directory has a record of name. */
bool manager_release_recorded(Manager *m, const char *name);
/* Whether d stays in the table off its VFIO driver: released by a Release (the caller's Claim
 * will end it), and still in sysfs. */
bool manager_keep_released(Manager *m, ManagedDevice *d);

/* manager-held.c */
/* The manager's PmVfioOps (vfio_userdata: the Manager): vfio.h's, but open adopts what the daemon
 * before left and hands the fds to the service manager, and close takes them back from it. */
const PmVfioOps *manager_vfio_ops(void);

/* Before d's first decision: the counts of the daemon before, when it left d held. */
void manager_held_restore(Manager *m, ManagedDevice *d);
/* d's state changed: its slot in the record follows (stores to memory only). */
void manager_held_sync(Manager *m, ManagedDevice *d);
void manager_held_free(Manager *m);
