#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus-manager.h"
#include "ctl-client.h"
#include "handoff.h"

#define WAIT_STEP_USEC (100 * USEC_PER_MSEC)

/* What the daemon may answer that means "not holding it": nothing to do. */
static bool not_ours(const sd_bus_error *error) {
        return sd_bus_error_has_names(error, BUS_ERROR_NO_SUCH_DEVICE, BUS_ERROR_NOT_HELD, BUS_ERROR_BUSY);
}

/* Whether systemd is bringing the daemon's unit up or down: ActiveState activating, deactivating
 * or reloading, or a job queued for it (between the stop and the start of "systemctl restart" the
 * unit reads inactive, its start job waiting). state: what to tell the user. */
static bool unit_in_transition(sd_bus *bus, char *state, size_t size) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *job = NULL;
        _cleanup_free_ char *active = NULL;
        const char *unit = getenv("VFIOPMD_UNIT") ?: HANDOFF_UNIT_DEFAULT, *path, *job_path;
        uint32_t job_id = 0;

        (void) snprintf(state, size, "not running");
        if (sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "GetUnit", NULL, &reply, "s", unit) < 0 ||
            sd_bus_message_read(reply, "o", &path) < 0)
                return false;   /* not loaded: nothing is starting it */
        if (sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                       "ActiveState", NULL, &active) < 0)
                return false;
        (void) snprintf(state, size, "%s", active);
        if (strcmp(active, "activating") == 0 || strcmp(active, "deactivating") == 0 ||
            strcmp(active, "reloading") == 0)
                return true;
        if (sd_bus_get_property(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit", "Job",
                                NULL, &job, "(uo)") < 0 ||
            sd_bus_message_read(job, "(uo)", &job_id, &job_path) < 0 || job_id == 0)
                return false;
        (void) snprintf(state, size, "%s with a job queued", active);
        return true;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / 1000000), .tv_nsec = (long) (usec % 1000000) * 1000 };

        (void) nanosleep(&ts, NULL);
}

/* The devices released (claimed) together with name: read back from their ReleasedBy. */
static void say_group(sd_bus *bus, HandoffOp op, const char *name, const char *program, const char *subject) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        CtlDevice *devices = NULL;
        size_t n = 0;

        if (op != HANDOFF_RELEASE || ctl_devices_get(bus, &devices, &n, &error) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                if (strcmp(devices[i].release_reason, "group") == 0 && strcmp(devices[i].released_by, name) == 0)
                        fprintf(stderr, "%s: %s: released %s with %s (IOMMU group %s)\n", program, subject,
                                devices[i].name, name, devices[i].iommu_group);
        ctl_devices_free(devices, n);
}

int handoff_run(HandoffOp op, char *const *names, size_t n, const char *program, const char *subject,
                usec_t deadline_usec) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *member = op == HANDOFF_RELEASE ? "Release" : "Claim";
        const char *verb = op == HANDOFF_RELEASE ? "released" : "claimed";
        bool waited = false;
        int r, failed = 0;

        for (size_t i = 0; i < n; i++) {
                const char *name = names[i];
                bool came_up = false;

                for (;;) {
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                        usec_t t = now(CLOCK_MONOTONIC), started = t;
                        char state[64];

                        if (t >= deadline_usec) {
                                fprintf(stderr, "%s: %s: out of time before %s; left as it is\n", program, subject, name);
                                return failed && op == HANDOFF_RELEASE ? 1 : 0;
                        }
                        if (!bus) {
                                r = ctl_bus_open(deadline_usec - t, &bus);
                                if (r < 0) {
                                        fprintf(stderr, "%s: %s: cannot reach the system bus (%s); nothing %s\n",
                                                program, subject, strerror(-r), verb);
                                        return 0;
                                }
                        } else
                                (void) sd_bus_set_method_call_timeout(bus, deadline_usec - t);

                        r = ctl_call(bus, &error, NULL, member, "s", name);
                        if (r >= 0) {
                                fprintf(stderr, "%s: %s: %s %s\n", program, subject, verb, name);
                                say_group(bus, op, name, program, subject);
                                break;
                        }
                        if (not_ours(&error))
                                break;
                        if (ctl_exit_status(r, &error) != CTL_EXIT_UNREACHABLE) {
                                fprintf(stderr, "%s: %s: %s %s failed: %s\n", program, subject, member, name,
                                        ctl_error_text(r, &error));
                                failed++;
                                break;
                        }
                        /* no daemon: is systemd bringing one (back) up? */
                        if (!unit_in_transition(bus, state, sizeof(state))) {
                                /* it came up between the call and the look at its unit (the name
                                 * is taken before READY=1): ask it, once */
                                if (waited && !came_up && strcmp(state, "active") == 0) {
                                        came_up = true;
                                        continue;
                                }
                                fprintf(stderr, "%s: %s: %s; nothing %s\n", program, subject,
                                        ctl_error_text(r, &error), verb);
                                return failed && op == HANDOFF_RELEASE ? 1 : 0;
                        }
                        if (!waited)
                                fprintf(stderr, "%s: %s: vfiopmd is %s, waiting for it\n", program, subject, state);
                        waited = true;
                        t = now(CLOCK_MONOTONIC);
                        if (t - started < WAIT_STEP_USEC)
                                sleep_usec(deadline_usec - t < WAIT_STEP_USEC ? deadline_usec - t :
                                           WAIT_STEP_USEC - (t - started));
                }
        }
        return failed && op == HANDOFF_RELEASE ? 1 : 0;
}
