#include <errno.h>
#include <json-c/linkhash.h>
#include <stdlib.h>

#include "device-table.h"

/* On json-c's linkhash (already linked in): a chained hash table that also keeps its entries in
 * a list, in insertion order. */
struct DeviceTable {
        struct lh_table *table;
        void (*free_value)(void *value);
};

int device_table_new(void (*free_value)(void *value), DeviceTable **ret) {
        _cleanup_free_ DeviceTable *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->table = lh_kchar_table_new(64, NULL);
        if (!t->table)
                return -ENOMEM;
        t->free_value = free_value;
        *ret = TAKE_PTR(t);
        return 0;
}

DeviceTable *device_table_free(DeviceTable *t) {
        if (!t)
                return NULL;
        /* each value out of the table before it is freed: freeing may look the table up */
        while (t->table->head)
                (void) device_table_remove(t, t->table->head->k);
        lh_table_free(t->table);
        free(t);
        return NULL;
}

int device_table_put(DeviceTable *t, const char *name, void *value) {
        if (lh_table_lookup_entry(t->table, name))
                return -EEXIST;
        return lh_table_insert(t->table, name, value) < 0 ? -ENOMEM : 0;
}

void *device_table_get(const DeviceTable *t, const char *name) {
        void *v = NULL;

        if (!name || !lh_table_lookup_ex(t->table, name, &v))
                return NULL;
        return v;
}

bool device_table_remove(DeviceTable *t, const char *name) {
        void *v = device_table_get(t, name);

        if (!v)
                return false;
        (void) lh_table_delete(t->table, name);
        if (t->free_value)
                t->free_value(v);
        return true;
}

size_t device_table_size(const DeviceTable *t) {
        return (size_t) lh_table_length(t->table);
}

void *device_table_first(const DeviceTable *t) {
        return t->table->head ? (void *) lh_entry_v(t->table->head) : NULL;
}

/* *iter: NULL before the first, then the entry to give next, or the table itself at the end (a
 * removed entry forgets its neighbours: the next one is taken before the body runs). */
bool device_table_next(const DeviceTable *t, void **iter, void **ret) {
        struct lh_entry *e = *iter == NULL ? t->table->head : *iter == (void *) t ? NULL : *iter;

        if (!e)
                return false;
        *iter = e->next ? (void *) e->next : (void *) t;
        *ret = (void *) lh_entry_v(e);
        return true;
}
