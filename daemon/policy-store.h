#pragma once

/* policy-store: the policy file written for one device over D-Bus (SetPolicy, ResetPolicy,
 * SPEC §5): "90-dbus-NAME.json" in the last policy directory (runtime, /run/vfiopmd/policy.d by
 * default) or the one before it (persistent, /etc/vfiopmd/policy.d), whose rule is the caller's
 * with match.device set to NAME. Never logs: errors come back as -errno and a message. */

#include <stdbool.h>

#include "cleanup.h"

#define POLICY_STORE_FILE_PREFIX "90-dbus-"
#define POLICY_STORE_FILE_SUFFIX ".json"

typedef struct PolicyStoreTarget {
        const char *dir;        /* absolute, as configured: borrowed from the directory list */
        char *filename;         /* "90-dbus-NAME.json" */
        char *path;             /* dir/filename, for messages */
} PolicyStoreTarget;

void policy_store_target_done(PolicyStoreTarget *t);

/* Where name's file goes among dirs (NULL-terminated, in precedence order). -EINVAL: name cannot
 * name a file (empty, a leading '.', a '/', a control character, too long); -EOPNOTSUPP: too few
 * directories. Both with a message in *ret_error. */
int policy_store_target(char *const *dirs, const char *name, bool runtime, PolicyStoreTarget *ret,
                        char **ret_error);

/* The file's text: rule_json validated as one rule object, match.device set to name, validated
 * again as written (policy-file.h, messages naming path). -ENOMEM, or another -errno with a
 * message in *ret_error: the rule is invalid. */
int policy_store_text(const char *path, const char *name, const char *rule_json, char **ret,
                      char **ret_error);

/* What policy_store_write() and policy_store_remove() did, when they did not fail; a failure
 * (-errno, with a message in *ret_error) changed nothing. */
enum {
        POLICY_STORE_UNCHANGED,         /* remove: there was no file */
        POLICY_STORE_CHANGED,           /* done, and the directory fsync'd */
        /* done, in place for every reader of the directory (the daemon's reload too), but the
         * directory's fsync failed: the change may not survive a crash. *ret_error says so. */
        POLICY_STORE_CHANGED_UNSYNCED,
};

/* Writes text to the target atomically (fileio.h), creating the directory below root_fd.
 * Returns POLICY_STORE_CHANGED or POLICY_STORE_CHANGED_UNSYNCED. */
int policy_store_write(int root_fd, const PolicyStoreTarget *t, const char *text, char **ret_error);

/* Removes the target's file. Returns any of the three. */
int policy_store_remove(int root_fd, const PolicyStoreTarget *t, char **ret_error);
