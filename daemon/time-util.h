#pragma once

/* time-util: microseconds on the kernel's clocks, as systemd's time-util.h. */

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

typedef uint64_t usec_t;
#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define NSEC_PER_USEC UINT64_C(1000)

/* The clock's time in µs (CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME, …); 0 if it cannot
 * be read (an unknown clock id). */
usec_t now(clockid_t clock);

usec_t timespec_load(const struct timespec *ts);
struct timeval *timeval_store(struct timeval *tv, usec_t u);
