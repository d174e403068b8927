/* wake-latency: wakes a vfio-pm-sim device again and again and times each re-arm, for the VM
 * scenario daemon-flood.sh (issue 17). For SECONDS, every INTERVAL_MS: a PME (sim/pme), then
 * sim/entries is read every millisecond until it grows (the daemon put the device back into low
 * power), at most 10 s. Prints the wakes, the slowest and the mean re-arm. Exit: 0 every wake
 * re-armed within BOUND_MS, 1 otherwise, 2 usage error. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / 1000000), .tv_nsec = (long) (usec % 1000000) * 1000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* The counter in fd (a sysfs attribute, read again from its start). */
static int read_counter(int fd, unsigned long *ret) {
        char buf[32];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

        if (n <= 0)
                return -1;
        buf[n] = '\0';
        *ret = strtoul(buf, NULL, 10);
        return 0;
}

static int open_attr(const char *device, const char *name, int flags) {
        char path[PATH_MAX];
        int fd;

        snprintf(path, sizeof(path), "/sys/bus/platform/devices/%s/sim/%s", device, name);
        fd = open(path, flags | O_CLOEXEC);
        if (fd < 0)
                fprintf(stderr, "wake-latency: %s: %s\n", path, strerror(errno));
        return fd;
}

int main(int argc, char **argv) {
        unsigned long seconds, interval_ms, bound_ms, wakes = 0, slow = 0, entries, now_entries;
        uint64_t end, next, slowest = 0, total = 0;
        int pme_fd, entries_fd;

        if (argc != 5) {
                fprintf(stderr, "usage: wake-latency DEVICE SECONDS INTERVAL_MS BOUND_MS\n");
                return 2;
        }
        seconds = strtoul(argv[2], NULL, 10);
        interval_ms = strtoul(argv[3], NULL, 10);
        bound_ms = strtoul(argv[4], NULL, 10);
        if (seconds == 0 || interval_ms == 0) {
                fprintf(stderr, "wake-latency: SECONDS and INTERVAL_MS must be numbers from 1\n");
                return 2;
        }
        pme_fd = open_attr(argv[1], "pme", O_WRONLY);
        entries_fd = open_attr(argv[1], "entries", O_RDONLY);
        if (pme_fd < 0 || entries_fd < 0)
                return 1;

        end = now_usec() + seconds * 1000000;
        for (next = now_usec(); next < end; next += interval_ms * 1000) {
                uint64_t t0, latency;

                if (now_usec() < next)
                        sleep_usec(next - now_usec());
                if (read_counter(entries_fd, &entries) < 0) {
                        fprintf(stderr, "wake-latency: reading entries: %s\n", strerror(errno));
                        return 1;
                }
                t0 = now_usec();
                if (pwrite(pme_fd, "1", 1, 0) != 1) {
                        fprintf(stderr, "wake-latency: writing pme: %s\n", strerror(errno));
                        return 1;
                }
                do {
                        sleep_usec(1000);
                        if (read_counter(entries_fd, &now_entries) < 0) {
                                fprintf(stderr, "wake-latency: reading entries: %s\n", strerror(errno));
                                return 1;
                        }
                } while (now_entries == entries && now_usec() - t0 < 10 * 1000000);
                latency = now_usec() - t0;
                if (now_entries == entries) {
                        fprintf(stderr, "wake-latency: wake %lu not re-armed in 10 s\n", wakes + 1);
                        return 1;
                }
                wakes++;
                total += latency;
                if (latency > slowest)
                        slowest = latency;
                if (latency > bound_ms * 1000) {
                        slow++;
                        fprintf(stderr, "wake-latency: wake %lu re-armed after %.1f ms\n", wakes, latency / 1000.0);
                }
                /* a late re-arm does not make the next wakes come faster */
                if (next + interval_ms * 1000 < now_usec())
                        next = now_usec() - interval_ms * 1000;
        }
        printf("%lu wakes, re-armed after %.1f ms at most, %.1f ms on average, %lu after more than %lu ms\n",
               wakes, slowest / 1000.0, wakes ? total / 1000.0 / wakes : 0.0, slow, bound_ms);
        return wakes > 0 && slow == 0 ? 0 : 1;
}
