#pragma once

/* What the fuzz harnesses share (tests/fuzz/README.md). Each harness is one
 * LLVMFuzzerTestOneInput(); built with libFuzzer (tests/fuzz/run) it is fuzzed, built with the
 * normal compiler and replay.c (make check) it replays its corpus. A harness checks what the code
 * promises and stops with FUZZ_CHECK() (abort: a finding) where the promise is broken. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest input replayed, as tests/fuzz/run's -max_len: the limits worth reaching (a policy
 * file's 1 MiB) are reached with a few seeds, not by mutation. */
#define FUZZ_INPUT_MAX (2 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr) do {                                                           \
                if (!(expr)) {                                                          \
                        fprintf(stderr, "%s:%d: %s: broken: %s\n", __FILE__, __LINE__, __func__, #expr); \
                        abort();                                                        \
                }                                                                       \
        } while (0)

/* A failure of the harness's own setup (mkdtemp, malloc): no finding, but nothing to go on. */
#define FUZZ_SETUP(expr) do {                                                           \
                int _r = (expr);                                                        \
                if (_r < 0) {                                                           \
                        fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, strerror(-_r)); \
                        abort();                                                        \
                }                                                                       \
        } while (0)

/* The input as a NUL-terminated string (cut at its first NUL byte); free() it. */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Takes the first byte of the input (0 when empty), for a harness that picks a variant. */
uint8_t fuzz_take_byte(const uint8_t **data, size_t *size);
