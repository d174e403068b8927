/* vfiopmd-handoff: "vfiopmd-handoff release|claim NAME..." — the hand-off of handoff.h for VM
 * managers whose hooks are scripts (the Proxmox hookscript, conf/proxmox-hookscript.in): the same
 * bound, the same wait for a restarting daemon, the same idea of failure as the libvirt hook.
 * Exit: 0 done or nothing to do, 1 a Release failed (the device may still be held), 2 usage. */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl-client.h"
#include "handoff.h"

static const char *program = "vfiopmd-handoff";

static void on_alarm(int sig) {
        static const char msg[] = "vfiopmd-handoff: out of time, leaving the devices as they are\n";
        ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

        (void) n;
        _exit(0);
}

int main(int argc, char *argv[]) {
        struct sigaction sa = { .sa_handler = on_alarm };
        const char *subject = getenv("VFIOPMD_HANDOFF_SUBJECT") ?: "hand-off";
        HandoffOp op;

        if (argc < 3 || (strcmp(argv[1], "release") != 0 && strcmp(argv[1], "claim") != 0)) {
                fprintf(stderr, "%s: usage: %s release|claim NAME...\n", program, program);
                return CTL_EXIT_USAGE;
        }
        op = strcmp(argv[1], "release") == 0 ? HANDOFF_RELEASE : HANDOFF_CLAIM;
        (void) sigaction(SIGALRM, &sa, NULL);
        (void) alarm(HANDOFF_TIMEOUT_SEC + 1);
        return handoff_run(op, argv + 2, (size_t) (argc - 2), program, subject,
                           now(CLOCK_MONOTONIC) + HANDOFF_TIMEOUT_SEC * USEC_PER_SEC);
}
