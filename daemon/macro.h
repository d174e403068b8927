#pragma once

/* The number of elements of an array (not of a pointer), as systemd's macro-fundamental.h. */
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Exchanges two pointers of one type. */
#define SWAP_PTR(a, b)                          \
        do {                                    \
                __typeof__(a) _t = (a);         \
                (a) = (b);                      \
                (b) = _t;                       \
        } while (0)

/* The wake path (a device's eventfd to its re-entry, SPEC §8): gcc places these functions together
 * (.text.hot), so that a wake runs through a page or two of the daemon's code rather than one in
 * each module. Under an emulated CPU, which refills its TLB after every context switch, each page
 * touched costs; on a real one it is a few cache lines fewer. */
#define _hot_ __attribute__((hot))
