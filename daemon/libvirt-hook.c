/* vfiopmd-libvirt-hook: libvirt's qemu hook (SPEC §6), run as /etc/libvirt/hooks/qemu.d/vfiopmd
 * with argv "DOMAIN OPERATION SUB-OPERATION EXTRA" and the domain XML on stdin.
 *
 *   prepare begin   Release every PCI host device of the domain, so that qemu can open it: each
 *                   Release returns once the daemon closed the device.
 *   release end     Claim them back: the domain is gone and its devices are free again.
 *   anything else   nothing.
 *
 * libvirt waits for its hooks and a failing "prepare" hook stops the domain from starting: what is
 * done, within which bound, and what is a failure is handoff.h's (HANDOFF_TIMEOUT_SEC, SIGALRM as
 * the backstop). Every PCI host device is released, managed='yes' or not: libvirt binds a managed
 * one to vfio-pci only after "prepare begin", and the daemon then keeps it released (a
 * reservation) instead of taking it. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl-client.h"
#include "domain-xml.h"
#include "fileio.h"
#include "handoff.h"

static const char *program = "vfiopmd-libvirt-hook";

static void on_alarm(int sig) {
        static const char msg[] = "vfiopmd-libvirt-hook: out of time, leaving the devices as they are\n";

        ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

        (void) n;               /* nothing to do about a failed write on the way out */
        _exit(0);
}

int main(int argc, char *argv[]) {
        _cleanup_(domain_xml_freep) DomainXml *domain = NULL;
        _cleanup_free_ char *input = NULL, *parse_error = NULL, *subject = NULL;
        struct sigaction sa = { .sa_handler = on_alarm };
        uint64_t deadline;
        const char *verb;
        HandoffOp op;
        size_t size = 0;
        int r;

        if (argc < 3) {
                fprintf(stderr, "%s: usage: %s DOMAIN OPERATION SUB-OPERATION [EXTRA] < domain.xml\n"
                        "(run by libvirtd as /etc/libvirt/hooks/qemu.d/vfiopmd)\n", program, program);
                return CTL_EXIT_USAGE;
        }
        if (strcmp(argv[2], "prepare") == 0 && argc > 3 && strcmp(argv[3], "begin") == 0) {
                op = HANDOFF_RELEASE;
                verb = "released";
        } else if (strcmp(argv[2], "release") == 0 && argc > 3 && strcmp(argv[3], "end") == 0) {
                op = HANDOFF_CLAIM;
                verb = "claimed";
        } else
                return 0;

        (void) sigaction(SIGALRM, &sa, NULL);
        (void) alarm(HANDOFF_TIMEOUT_SEC + 1);
        deadline = now(CLOCK_MONOTONIC) + HANDOFF_TIMEOUT_SEC * USEC_PER_SEC;

        /* a domain's XML is a few KiB, the buffer starts there */
        r = read_full_fd(STDIN_FILENO, DOMAIN_XML_SIZE_MAX, 64 * 1024, &input, &size);
        if (r == -EFBIG) {
                fprintf(stderr, "%s: domain %s: the domain XML on stdin is larger than 16 MiB (%d bytes); nothing %s\n",
                        program, argv[1], DOMAIN_XML_SIZE_MAX, verb);
                return 0;
        }
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
        if (asprintf(&subject, "domain %s", argv[1]) < 0)
                return 0;
        return handoff_run(op, domain->pci, domain->n_pci, program, subject, deadline);
}
