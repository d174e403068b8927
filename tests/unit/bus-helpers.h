#pragma once

/* What the bus suites share, test-bus.c (the D-Bus API) and test-bus-hostile.c (hostile input):
 * the client's side of a call to the daemon behind bus-harness.h, and the fixture's devices as
 * they name them. All but call() assert: call them from a Check test. */

#include <stdint.h>
#include <systemd/sd-bus.h>

#include "bus-harness.h"
#include "strv.h"

#define PCI_NAME HARNESS_PCI_NAME
#define PCI_PATH HARNESS_PCI_PATH
#define SIM_NAME HARNESS_SIM_NAME
#define SIM_PATH HARNESS_SIM_PATH

/* Calls a Manager method; returns 0 or the D-Bus error's name into *ret_error (static storage
 * of the test: copied). */
int call(sd_bus *bus, char **ret_error, char **ret_message, sd_bus_message **ret_reply,
         const char *member, const char *types, ...);
void expect_error(sd_bus *bus, const char *name, const char *member, const char *types, ...);
char *get_string(sd_bus *bus, const char *path, const char *interface, const char *property);
void expect_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                   const char *value);
uint64_t get_u64(sd_bus *bus, const char *path, const char *property);
/* Never NULL: an empty list is { NULL }. Freed with strv_free(). */
char **get_policy_errors(sd_bus *bus);
/* The text of the regular file path below root_fd (fileio.h's read_file_at(), at most 16 KiB; it
 * must exist and not be empty). */
char *read_text_at(int root_fd, const char *path);
