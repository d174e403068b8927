#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "json-util.h"
#include "policy-file.h"
#include "policy-store.h"

static int errorf(char **ret_error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errorf(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(ret_error, fmt, ap);
        va_end(ap);
        if (k < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return r;
}

void policy_store_target_done(PolicyStoreTarget *t) {
        free(t->filename);
        free(t->path);
        *t = (PolicyStoreTarget) {};
}

int policy_store_target(char *const *dirs, const char *name, bool runtime, PolicyStoreTarget *ret,
                        char **ret_error) {
        _cleanup_free_ char *filename = NULL, *path = NULL;
        size_t n = 0, len = strlen(name);
        const char *dir;

        if (len == 0 || name[0] == '.' || strchr(name, '/') ||
            len + strlen(POLICY_STORE_FILE_PREFIX POLICY_STORE_FILE_SUFFIX) > NAME_MAX)
                return errorf(ret_error, -EINVAL, "'%s' cannot name a policy file", name);
        for (const char *p = name; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return errorf(ret_error, -EINVAL,
                                      "A device name with control characters cannot name a policy file");

        while (dirs && dirs[n])
                n++;
        if (n < (runtime ? 1u : 2u))
                return errorf(ret_error, -EOPNOTSUPP, "No %s policy directory: the daemon reads %zu",
                              runtime ? "runtime" : "persistent", n);
        dir = dirs[runtime ? n - 1 : n - 2];

        if (asprintf(&filename, POLICY_STORE_FILE_PREFIX "%s" POLICY_STORE_FILE_SUFFIX, name) < 0 ||
            asprintf(&path, "%s/%s", dir, filename) < 0)
                return -ENOMEM;
        *ret = (PolicyStoreTarget) { .dir = dir, .filename = TAKE_PTR(filename), .path = TAKE_PTR(path) };
        return 0;
}

int policy_store_text(const char *path, const char *name, const char *rule_json, char **ret,
                      char **ret_error) {
        _cleanup_(json_object_putp) json_object *rule = NULL;
        _cleanup_free_ char *text = NULL;
        json_object *match = NULL, *device;
        int r;

        r = policy_file_parse(path, rule_json, strlen(rule_json), NULL, ret_error);
        if (r < 0)
                return r;

        rule = json_tokener_parse(rule_json);
        if (!json_object_is_type(rule, json_type_object))
                return errorf(ret_error, -EINVAL, "%s: expected one rule object", path);
        if (!json_object_object_get_ex(rule, "match", &match)) {
                match = json_object_new_object();
                if (!match || json_object_object_add(rule, "match", match) < 0) {
                        json_object_put(match);
                        return -ENOMEM;
                }
        }
        device = json_object_new_string(name);
        if (!device || json_object_object_add(match, "device", device) < 0) {
                json_object_put(device);
                return -ENOMEM;
        }
        if (asprintf(&text, "%s\n", json_object_to_json_string_ext(rule, JSON_C_TO_STRING_PRETTY |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
                return -ENOMEM;

        r = policy_file_parse(path, text, strlen(text), NULL, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(text);
        return 0;
}

/* After a change made in dir (rename, unlink): whether its fsync made it durable. */
static int synced(const PolicyStoreTarget *t, int sync_error, char **ret_error) {
        if (sync_error >= 0)
                return POLICY_STORE_CHANGED;
        /* the change is made: without the memory for its message, it is still no failure */
        (void) errorf(ret_error, 0, "Failed to fsync %s after changing %s: %s",
                      t->dir, t->filename, strerror(-sync_error));
        return POLICY_STORE_CHANGED_UNSYNCED;
}

int policy_store_write(int root_fd, const PolicyStoreTarget *t, const char *text, char **ret_error) {
        _cleanup_close_ int dir_fd = -EBADF;
        int r, sync_error = 0;

        r = open_dir_at(root_fd, t->dir, true, &dir_fd);
        if (r >= 0)
                r = write_file_atomic(dir_fd, t->filename, text, &sync_error);
        if (r < 0)
                return errorf(ret_error, r, "Failed to write %s: %s", t->path, strerror(-r));
        return synced(t, sync_error, ret_error);
}

int policy_store_remove(int root_fd, const PolicyStoreTarget *t, char **ret_error) {
        _cleanup_close_ int dir_fd = -EBADF;
        int r;

        r = open_dir_at(root_fd, t->dir, false, &dir_fd);
        if (r == -ENOENT)
                return POLICY_STORE_UNCHANGED;  /* no directory, no file */
        if (r >= 0 && unlinkat(dir_fd, t->filename, 0) < 0)
                r = -errno;
        if (r == -ENOENT)
                return POLICY_STORE_UNCHANGED;
        if (r < 0)
                return errorf(ret_error, r, "Failed to remove %s: %s", t->path, strerror(-r));
        return synced(t, fsync(dir_fd) < 0 ? -errno : 0, ret_error);
}
