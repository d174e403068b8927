#pragma once

/* device-table: the devices by name (PCI address, mdev UUID), in the order they were added. One
 * hash lookup by name; iteration in insertion order. The table does not own the names: each is
 * the value's own and must live as long as its entry. */

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

typedef struct DeviceTable DeviceTable;

/* free_value (may be NULL) frees a value when its entry is removed or the table freed. */
int device_table_new(void (*free_value)(void *value), DeviceTable **ret);
DeviceTable *device_table_free(DeviceTable *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeviceTable *, device_table_free)

/* -EEXIST if name is in the table already, -ENOMEM. */
int device_table_put(DeviceTable *t, const char *name, void *value);

/* The value, or NULL. */
void *device_table_get(const DeviceTable *t, const char *name);

/* Removes name's entry and frees its value (free_value). Returns whether there was one. */
bool device_table_remove(DeviceTable *t, const char *name);

size_t device_table_size(const DeviceTable *t);

/* The first value added and still there, or NULL. */
void *device_table_first(const DeviceTable *t);

/* Iteration: *iter starts NULL; returns false at the end, else the next value in *ret. In between
 * the table may lose the value just given, and nothing else: no other removal, no addition. */
bool device_table_next(const DeviceTable *t, void **iter, void **ret);

#define DEVICE_TABLE_FOREACH(value, table, iter)                                \
        for (void *iter = NULL; device_table_next((table), &iter, (void **) &(value)); )
