/* vfiopmd-libvirt-hook: libvirt's qemu hook (SPEC §6), run as /etc/libvirt/hooks/qemu.d/vfiopmd
 * with argv "DOMAIN OPERATION SUB-OPERATION EXTRA" and the domain XML on stdin.
 *
 *   prepare begin   Release every PCI host device of the domain, so that qemu can open it: each
 *                   Release returns once the daemon closed the device.
 *   release end     Claim them back: the domain is gone and its devices are free again.
 *   anything else   nothing.
 *
 * libvirt waits for its hooks and a failing "prepare" hook stops the domain from starting, so:
 * everything is bounded by one deadline (HOOK_TIMEOUT_SEC, SIGALRM as the backstop), and only a
 * device the daemon answered about with a real failure fails the hook. A daemon that is not
 * running, does not answer, or does not manage the device (NoSuchDevice, NotHeld, Busy: it does
 * not hold it) lets the domain start: if the device were still held, qemu would say so itself. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus-manager.h"
#include "ctl-client.h"
#include "domain-xml.h"

#define HOOK_TIMEOUT_SEC 5
#define HOOK_INPUT_MAX (16U * 1024 * 1024)

static const char *program = "vfiopmd-libvirt-hook";

static void on_alarm(int sig) {
        static const char msg[] = "vfiopmd-libvirt-hook: out of time, leaving the devices as they are\n";

        ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

        (void) n;               /* nothing to do about a failed write on the way out */
        _exit(0);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* All of stdin, at most HOOK_INPUT_MAX bytes (-E2BIG beyond). */
static int read_input(char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                ssize_t n;

                if (size == allocated) {
                        size_t grow = allocated ? allocated * 2 : 64 * 1024;
                        char *p;

                        if (allocated > HOOK_INPUT_MAX)
                                return -E2BIG;
                        p = realloc(buf, grow + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        allocated = grow;
                }
                n = read(STDIN_FILENO, buf + size, allocated - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        if (size > HOOK_INPUT_MAX)
                return -E2BIG;
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* What the daemon may answer that means "not holding it": nothing to do. */
static bool not_ours(const sd_bus_error *error) {
        return sd_bus_error_has_names(error, BUS_ERROR_NO_SUCH_DEVICE, BUS_ERROR_NOT_HELD, BUS_ERROR_BUSY);
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(domain_xml_freep) DomainXml *domain = NULL;
        _cleanup_free_ char *input = NULL, *parse_error = NULL;
        struct sigaction sa = { .sa_handler = on_alarm };
        const char *member, *verb;
        uint64_t deadline;
        size_t size = 0;
        int r, failed = 0;

        if (argc < 3) {
                fprintf(stderr, "%s: usage: %s DOMAIN OPERATION SUB-OPERATION [EXTRA] < domain.xml\n"
                        "(run by libvirtd as /etc/libvirt/hooks/qemu.d/vfiopmd)\n", program, program);
                return CTL_EXIT_USAGE;
        }
        if (strcmp(argv[2], "prepare") == 0 && argc > 3 && strcmp(argv[3], "begin") == 0) {
                member = "Release";
                verb = "released";
        } else if (strcmp(argv[2], "release") == 0 && argc > 3 && strcmp(argv[3], "end") == 0) {
                member = "Claim";
                verb = "claimed";
        } else
                return 0;

        (void) sigaction(SIGALRM, &sa, NULL);
        (void) alarm(HOOK_TIMEOUT_SEC + 1);
        deadline = now_usec() + HOOK_TIMEOUT_SEC * 1000000ULL;

        r = read_input(&input, &size);
        if (r < 0) {
                fprintf(stderr, "%s: domain %s: cannot read the domain XML on stdin: %s; nothing %s\n", program,
                        argv[1], strerror(-r), verb);
                return 0;
        }
        r = domain_xml_parse(input, size, &domain, &parse_error);
        if (r < 0) {
                fprintf(stderr, "%s: domain %s: the domain XML on stdin is not usable: %s; nothing %s\n", program,
                        argv[1], parse_error ?: strerror(-r), verb);
                return 0;
        }
        if (domain->n_pci == 0)
                return 0;

        for (size_t i = 0; i < domain->n_pci; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                const char *name = domain->pci[i];
                uint64_t now = now_usec();

                if (now >= deadline) {
                        fprintf(stderr, "%s: domain %s: out of time before %s; left as it is\n", program, argv[1], name);
                        break;
                }
                if (!bus) {
                        r = ctl_bus_open(deadline - now, &bus);
                        if (r < 0) {
                                fprintf(stderr, "%s: domain %s: cannot reach the system bus (%s); nothing %s\n",
                                        program, argv[1], strerror(-r), verb);
                                return 0;
                        }
                } else
                        (void) sd_bus_set_method_call_timeout(bus, deadline - now);

                r = ctl_call(bus, &error, NULL, member, "s", name);
                if (r >= 0)
                        fprintf(stderr, "%s: domain %s: %s %s\n", program, argv[1], verb, name);
                else if (not_ours(&error))
                        continue;
                else if (ctl_exit_status(r, &error) == CTL_EXIT_UNREACHABLE) {
                        fprintf(stderr, "%s: domain %s: %s; nothing %s\n", program, argv[1],
                                ctl_error_text(r, &error), verb);
                        return 0;
                } else {
                        fprintf(stderr, "%s: domain %s: %s %s failed: %s\n", program, argv[1], member, name,
                                ctl_error_text(r, &error));
                        failed++;
                }
        }
        /* A failed Release may leave the device held, and the domain could not use it: say so
         * now rather than let qemu fail on it. A failed Claim only costs power: never fail. */
        return failed && strcmp(member, "Release") == 0 ? 1 : 0;
}
