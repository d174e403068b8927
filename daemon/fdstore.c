#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "device-table.h"
#include "fdstore.h"
#include "strv.h"

static const char *const kind_prefix[_FDSTORE_KIND_MAX] = {
        [FDSTORE_DEVICE] = "device.",
        [FDSTORE_WAKE] = "wake.",
        [FDSTORE_REQUEST] = "request.",
        [FDSTORE_GROUP] = "group.",
        [FDSTORE_GROUP_CONTAINER] = "container.",
        [FDSTORE_CONTAINER] = "container",
        [FDSTORE_IOMMUFD] = "iommufd",
};

static bool kind_has_device(FdStoreKind kind) {
        return kind == FDSTORE_DEVICE || kind == FDSTORE_WAKE || kind == FDSTORE_REQUEST;
}

static bool kind_has_group(FdStoreKind kind) {
        return kind == FDSTORE_GROUP || kind == FDSTORE_GROUP_CONTAINER;
}

#define ID_MAX 64

/* A group number: decimal digits, no leading zero, below 2^31. */
static bool group_id_ok(const char *id) {
        size_t n = strspn(id, "0123456789");

        return n > 0 && n <= 9 && id[n] == 0 && (id[0] != '0' || n == 1);
}

static bool device_id_ok(const char *id) {
        size_t n = strlen(id);

        if (n == 0 || n > ID_MAX)
                return false;
        for (const char *p = id; *p; p++)
                if (*p <= ' ' || *p >= 127)
                        return false;
        return true;
}

int fdstore_name(FdStoreKind kind, const char *id, char **ret) {
        char buf[sizeof("request.") + 3 * ID_MAX], *p;

        if (kind < 0 || kind >= _FDSTORE_KIND_MAX || !ret)
                return -EINVAL;
        if (kind_has_device(kind) ? !id || !device_id_ok(id) :
            kind_has_group(kind) ? !id || !group_id_ok(id) : id != NULL)
                return -EINVAL;
        p = stpcpy(buf, kind_prefix[kind]);
        for (const char *s = id; s && *s; s++)
                if (*s == ':' || *s == '%')
                        p += sprintf(p, "%%%02x", (unsigned char) *s);
                else
                        *p++ = *s;
        *p = 0;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int fdstore_name_parse(const char *name, FdStoreKind *ret_kind, char **ret_id) {
        char id[ID_MAX + 1];

        if (!name || !ret_kind || !ret_id)
                return -EINVAL;
        for (FdStoreKind kind = 0; kind < _FDSTORE_KIND_MAX; kind++) {
                const char *s;
                size_t n = 0;

                if (!kind_has_device(kind) && !kind_has_group(kind)) {
                        if (strcmp(name, kind_prefix[kind]) != 0)
                                continue;
                        *ret_kind = kind;
                        *ret_id = NULL;
                        return 0;
                }
                if (strncmp(name, kind_prefix[kind], strlen(kind_prefix[kind])) != 0)
                        continue;
                for (s = name + strlen(kind_prefix[kind]); *s && n < ID_MAX; n++) {
                        if (s[0] == '%' && (strncmp(s, "%3a", 3) == 0 || strncmp(s, "%25", 3) == 0)) {
                                id[n] = s[1] == '3' ? ':' : '%';
                                s += 3;
                        } else if (*s == '%' || *s == ':')
                                return -EINVAL;
                        else
                                id[n] = *s++;
                }
                id[n] = 0;
                if (*s || (kind_has_device(kind) ? !device_id_ok(id) : !group_id_ok(id)))
                        return -EINVAL;
                *ret_id = strdup(id);
                if (!*ret_id)
                        return -ENOMEM;
                *ret_kind = kind;
                return 0;
        }
        return -EINVAL;
}

/* One message a name: systemd gives every fd of a message the message's FDNAME. */
static int notify(const char *what, FdStoreKind kind, const char *id, const int *fd) {
        _cleanup_free_ char *name = NULL, *msg = NULL;
        int r;

        r = fdstore_name(kind, id, &name);
        if (r < 0)
                return r;
        if (asprintf(&msg, "%s\nFDNAME=%s", what, name) < 0)
                return -ENOMEM;
        r = fd ? sd_pid_notify_with_fds(0, false, msg, fd, 1) : sd_notify(false, msg);
        return r < 0 ? r : 0;
}

int fdstore_add(FdStoreKind kind, const char *id, int fd) {
        if (fd < 0)
                return -EBADF;
        return notify("FDSTORE=1", kind, id, &fd);
}

int fdstore_remove(FdStoreKind kind, const char *id) {
        return notify("FDSTOREREMOVE=1", kind, id, NULL);
}

/* ---- what a starting daemon got back ----------------------------------------------------- */

typedef struct Entry {
        char *name;                     /* the FDNAME: the table's key */
        FdStoreKind kind;
        char *id;
        int fd;
} Entry;

struct FdStore {
        DeviceTable *entries;           /* FDNAME → Entry, in the order passed */
        size_t unknown;
};

static void entry_free(void *p) {
        Entry *e = p;

        if (e->fd >= 0)
                (void) close(e->fd);
        free(e->name);
        free(e->id);
        free(e);
}

int fdstore_from_fds(const int *fds, char **names, size_t n, FdStore **ret) {
        FdStore *s;
        size_t i = 0;
        int r;

        s = calloc(1, sizeof(*s));
        r = s ? device_table_new(entry_free, &s->entries) : -ENOMEM;
        for (; r >= 0 && i < n; i++) {
                Entry *e = calloc(1, sizeof(*e));

                if (!e) {
                        r = -ENOMEM;
                        break;
                }
                e->fd = fds[i];
                e->name = strdup(names && names[i] ? names[i] : "");
                if (!e->name) {
                        entry_free(e);
                        r = -ENOMEM;
                        break;
                }
                if (fdstore_name_parse(e->name, &e->kind, &e->id) < 0 ||
                    device_table_put(s->entries, e->name, e) < 0) {
                        s->unknown++;           /* not ours, or a second fd of one name */
                        entry_free(e);
                }
        }
        if (r < 0) {
                for (; i < n; i++)
                        (void) close(fds[i]);
                fdstore_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int fdstore_collect(FdStore **ret) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_free_ int *fds = NULL;
        int n;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return n;
        if (n > 0) {
                fds = calloc(n, sizeof(int));
                if (!fds) {
                        for (int i = 0; i < n; i++)
                                (void) close(SD_LISTEN_FDS_START + i);
                        return -ENOMEM;
                }
                for (int i = 0; i < n; i++)
                        fds[i] = SD_LISTEN_FDS_START + i;
        }
        return fdstore_from_fds(fds, names, n, ret);
}

FdStore *fdstore_free(FdStore *s) {
        if (!s)
                return NULL;
        device_table_free(s->entries);
        free(s);
        return NULL;
}

static Entry *find(const FdStore *s, FdStoreKind kind, const char *id) {
        _cleanup_free_ char *name = NULL;
        Entry *e;

        if (fdstore_name(kind, id, &name) < 0)
                return NULL;
        e = device_table_get(s->entries, name);
        return e && e->fd >= 0 ? e : NULL;
}

int fdstore_take(FdStore *s, FdStoreKind kind, const char *id) {
        Entry *e = find(s, kind, id);
        int fd;

        if (!e)
                return -ENOENT;
        fd = e->fd;
        e->fd = -EBADF;
        return fd;
}

bool fdstore_has(const FdStore *s, FdStoreKind kind, const char *id) {
        return find(s, kind, id);
}

size_t fdstore_left(const FdStore *s) {
        const Entry *e;
        size_t n = 0;

        DEVICE_TABLE_FOREACH(e, s->entries, i)
                n += e->fd >= 0;
        return n;
}

size_t fdstore_unknown(const FdStore *s) {
        return s->unknown;
}

size_t fdstore_forget_left(FdStore *s) {
        Entry *e;
        size_t n = 0;

        DEVICE_TABLE_FOREACH(e, s->entries, i)
                if (e->fd >= 0) {
                        (void) fdstore_remove(e->kind, e->id);
                        (void) close(e->fd);
                        e->fd = -EBADF;
                        n++;
                }
        return n;
}

int fdstore_devices_left(const FdStore *s, const char ***ret) {
        const Entry *e;
        const char **l;
        size_t n = 0;

        l = calloc(device_table_size(s->entries) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        DEVICE_TABLE_FOREACH(e, s->entries, i)
                if (e->kind == FDSTORE_DEVICE && e->fd >= 0)
                        l[n++] = e->id;
        *ret = l;
        return 0;
}
