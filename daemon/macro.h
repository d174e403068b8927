#pragma once

/* The number of elements of an array (not of a pointer), as systemd's macro-fundamental.h. */
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
