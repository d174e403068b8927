#pragma once

#include <stddef.h>

#include "policy.h"

/* What the policy suites share: test-policy.c (the engine) and test-policy-file.c (files and
 * directories). */

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* A discrete GPU as sysfs prints it (hex without 0x, lower case), bound to vfio-pci. */
extern const DeviceFacts policy_test_gpu;

/* Key K of P came from rule RULE of FILE; FILE NULL: from the built-in default. */
void assert_policy_source(const EffectivePolicy *p, PolicyKey k, const char *file, size_t rule);
