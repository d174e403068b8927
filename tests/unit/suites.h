#pragma once

#include <check.h>

/* One suite per daemon module, each in tests/unit/test-MODULE.c; check-vfiopm.c runs them all. */
Suite *sysfs_suite(void);
