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
