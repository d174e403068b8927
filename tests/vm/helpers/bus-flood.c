/* bus-flood: a client that never stops reading vfiopmd's properties, for the VM scenario
 * daemon-flood.sh and the host test tests/unit/test-bus-flood.c (issue 17): keeps IN_FLIGHT
 * GetAll calls of OBJECT's INTERFACE (default the manager's) in flight on the system bus
 * ($DBUS_SYSTEM_BUS_ADDRESS) for SECONDS, each one answered sent again at once; with INTERFACE
 * org.freedesktop.DBus.ObjectManager, GetManagedObjects calls of OBJECT (every device's
 * properties in one reply). Prints how many were answered. Exit: 0 every call answered without an
 * error, 1 otherwise, 2 usage error. */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

typedef struct Flood {
        sd_bus *bus;
        const char *path, *interface;
        uint64_t end_usec;
        unsigned long answered, errors;
        unsigned in_flight;
} Flood;

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void send_one(Flood *f);

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Flood *f = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        f->in_flight--;
        if (e) {
                if (f->errors++ == 0)
                        fprintf(stderr, "bus-flood: %s: %s\n", e->name, e->message);
        } else
                f->answered++;
        if (now_usec() < f->end_usec)
                send_one(f);
        return 0;
}

static void send_one(Flood *f) {
        int r;

        if (strcmp(f->interface, "org.freedesktop.DBus.ObjectManager") == 0)
                r = sd_bus_call_method_async(f->bus, NULL, "org.vfiopm1", f->path, f->interface, "GetManagedObjects",
                                             on_reply, f, NULL);
        else
                r = sd_bus_call_method_async(f->bus, NULL, "org.vfiopm1", f->path, "org.freedesktop.DBus.Properties",
                                             "GetAll", on_reply, f, "s", f->interface);
        if (r < 0) {
                if (f->errors++ == 0)
                        fprintf(stderr, "bus-flood: sending a call: %s\n", strerror(-r));
                return;
        }
        f->in_flight++;
}

int main(int argc, char **argv) {
        Flood f = { .path = "/org/vfiopm1", .interface = "org.vfiopm1.Manager" };
        unsigned long seconds, in_flight;
        int r;

        if (argc != 3 && argc != 5) {
                fprintf(stderr, "usage: bus-flood SECONDS IN_FLIGHT [OBJECT INTERFACE]\n");
                return 2;
        }
        seconds = strtoul(argv[1], NULL, 10);
        in_flight = strtoul(argv[2], NULL, 10);
        if (seconds == 0 || in_flight == 0) {
                fprintf(stderr, "bus-flood: SECONDS and IN_FLIGHT must be numbers from 1\n");
                return 2;
        }
        if (argc == 5) {
                f.path = argv[3];
                f.interface = argv[4];
        }

        r = sd_bus_open_system(&f.bus);
        if (r < 0) {
                fprintf(stderr, "bus-flood: connecting to the system bus: %s\n", strerror(-r));
                return 1;
        }
        f.end_usec = now_usec() + seconds * 1000000;
        for (unsigned long i = 0; i < in_flight; i++)
                send_one(&f);
        while (f.in_flight > 0) {
                r = sd_bus_process(f.bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(f.bus, 1000000);
                if (r < 0) {
                        fprintf(stderr, "bus-flood: %s\n", strerror(-r));
                        f.errors++;
                        break;
                }
        }
        printf("%lu answered, %lu errors in %lu s\n", f.answered, f.errors, seconds);
        sd_bus_flush_close_unref(f.bus);
        return f.errors == 0 && f.answered > 0 ? 0 : 1;
}
