#pragma once

/* strv: NULL-terminated arrays of strings, as systemd's strv.c. */

#include <stddef.h>

#include "cleanup.h"

/* Frees each string and the array; accepts NULL, returns NULL. */
char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free)

/* Appends a copy of s to *l, which holds *n strings (both may start as NULL/0); keeps it
 * NULL-terminated. -ENOMEM leaves *l as it was. */
int strv_push(char ***l, size_t *n, const char *s);
