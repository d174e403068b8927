#pragma once

/* What the two policy harnesses (fuzz-policy-file.c, fuzz-policy-set.c) check of what they got
 * back: a file's rules hold only what SPEC §2 allows, and the engine's verdict over them comes
 * out as JSON that parses. */

#include <stddef.h>

#include "policy.h"

/* Aborts on a rule no valid file can give. */
void fuzz_check_policy_file(const PolicyFile *f);

/* Evaluates files for a few devices (one that the corpus's matches name, one with nothing
 * known) and checks each verdict and its JSON. */
void fuzz_check_verdicts(PolicyFile *const *files, size_t n_files);
