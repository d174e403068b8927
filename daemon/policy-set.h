#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"
#include "policy-file.h"
#include "policy.h"

/* The policy directories (SPEC §2): which files are in force, after masking, with the last good
 * version of a file that turned invalid kept, and each file's error. Never logs. */

/* The directories, in order of precedence (a later one masks an earlier one's file of the same
 * name). --policy-dirs replaces the list. */
#define POLICY_DIRS_DEFAULT "/usr/lib/vfiopmd/policy.d:/etc/vfiopmd/policy.d:/run/vfiopmd/policy.d"

/* Splits "A:B:C" (POLICY_DIRS_DEFAULT, --policy-dirs) into a NULL-terminated list. Each directory
 * must be absolute (a relative one gives -EINVAL: make it absolute first); trailing slashes are
 * dropped; "" gives an empty list, an empty element ("A::B") -EINVAL. */
int policy_dirs_from_string(const char *s, char ***ret);

/* What one file name contributes, after masking. */
typedef struct PolicySetEntry {
        char *name;             /* "50-gpu.json": sorts the files and masks across directories */
        char *dir;              /* "/etc/vfiopmd/policy.d", as given */
        char *path;             /* "/etc/vfiopmd/policy.d/50-gpu.json" */
        PolicyFile *file;       /* rules in force: this load's, or when error is set the last good
                                 * version of the same path; NULL: none */
        char *error;            /* why the last load of this file failed, NULL if it did not */
        bool masked;            /* a symlink to /dev/null: no rules, no error */
} PolicySetEntry;

/* The loaded policy. Read-only outside policy-set.c. */
typedef struct PolicySet {
        PolicySetEntry *entries;        /* one per file name, ordered by name (strcmp) */
        size_t n_entries;
        PolicyFile **files;             /* the entries' files in force, in order: the engine's input */
        size_t n_files;
        char **errors;                  /* NULL-terminated: D-Bus PolicyErrors, vfiopmctl check */
        size_t n_errors;
} PolicySet;

int policy_set_new(PolicySet **ret);
PolicySet *policy_set_free(PolicySet *set);
DEFINE_TRIVIAL_CLEANUP_FUNC(PolicySet *, policy_set_free)

/* (Re)loads the policy directories dirs (NULL-terminated, absolute, in precedence order), each
 * opened relative to rootfd: "/etc/x" is "etc/x" below rootfd, which is an fd of "/" in the daemon
 * and a fixture tree in tests. (Symlinks are followed as the kernel does, so an absolute link
 * target leaves rootfd: fine for "/", avoided in fixtures.)
 * - Policy files are the entries named "*.json" not starting with '.' (".#50-gpu.json" is an
 *   editor's); other names are ignored. Every policy file must be, after following symlinks, a
 *   regular file: a directory, FIFO, dangling or looping link named *.json is an error.
 * - A missing directory is fine. One that cannot be opened or read is an error, and the entries
 *   it had at the last load stay as they were.
 * - A name in a later directory masks the same name in earlier ones, whatever the later file
 *   holds; the files left are applied in order of name (strcmp).
 * - A symlink to /dev/null masks the name without error ("disabled"); an empty file is an error.
 * - A file that fails (invalid, unreadable, …) keeps the last good version of the same path in
 *   force, if there was one, and its error is recorded; a removed file is gone.
 * Returns the number of errors (>= 0, also set->n_errors), or a negative errno (-ENOMEM, -EINVAL
 * for a relative dir) with the set unchanged. */
int policy_set_load(PolicySet *set, int rootfd, char *const *dirs);

/* policy_evaluate() over the set's files in force. */
int policy_set_evaluate(const PolicySet *set, const DeviceFacts *dev, EffectivePolicy **ret);
