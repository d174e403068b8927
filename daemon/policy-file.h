#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"
#include "policy.h"

/* Policy files (SPEC §2): parsing and validating one file's text with json-c, loading the policy
 * directories relative to a root dir fd, and the effective policy as JSON. Never logs: every
 * problem comes back as a message for the caller to log or send.
 *
 * Messages always start with the file's path and take one of three forms:
 *     PATH:LINE:COLUMN: reason     JSON syntax, encoding, duplicate keys: LINE and COLUMN count
 *                                  from 1, COLUMN in characters (UTF-8 code points), a tab is one
 *     PATH: KEY: reason            a rule's content: KEY is the jq-style path of the value,
 *                                  "mode", "match.vendor" in a file of one rule object,
 *                                  "[2].match.vendor" in an array (rules count from 0)
 *     PATH: reason                 the file as a whole: empty, too large, unreadable, …
 * e.g. "/etc/vfiopmd/policy.d/50-gpu.json: [1].rearm_delay_ms: expected an integer from 0 to
 * 3600000, got -1". Values quoted in messages are JSON text, escaped and cut at 40 bytes.
 *
 * The format is strict JSON (RFC 8259, UTF-8 only): no comments, no trailing commas, no byte
 * order mark, nothing after the value; a key given twice in one object is an error. A file is one
 * rule object or an array of them (an empty array is a valid file without rules). */

/* Larger files are refused before they are parsed. */
#define POLICY_FILE_SIZE_MAX (1024 * 1024)

/* Deepest nesting of arrays and objects accepted; valid files need 3 ([ { "match": { } } ]). */
#define POLICY_FILE_DEPTH_MAX 16

/* The directories, in order of precedence (a later one masks an earlier one's file of the same
 * name). --policy-dirs replaces the list. */
#define POLICY_DIRS_DEFAULT "/usr/lib/vfiopmd/policy.d:/etc/vfiopmd/policy.d:/run/vfiopmd/policy.d"

/* Parses and validates one file's text (len bytes, need not be NUL-terminated). path is only
 * recorded: it names the file in messages and in provenance. With ret NULL, only validates
 * (vfiopmctl check, D-Bus SetPolicy).
 * Returns 0 and the file's rules, or a negative errno and, except for -ENOMEM, a message in
 * *reterr_message (if non-NULL): -EFBIG too large, -ENODATA empty (or only whitespace),
 * -EILSEQ not UTF-8 or a NUL byte, -EBADMSG JSON syntax, -EINVAL content. A file is valid as a
 * whole or not at all: nothing is returned for an invalid file. */
int policy_file_parse(const char *path, const char *text, size_t len, PolicyFile **ret,
                      char **reterr_message);

/* Reads and parses the file name below dirfd, following symlinks. path names it in messages and
 * provenance. Returns 0 and the file (ret may be NULL to only validate), 1 if the file is a
 * symlink to /dev/null (masked: no rules, no error; *ret untouched), or a negative errno with a
 * message as policy_file_parse(), plus: -ENOENT missing or a dangling symlink, -ELOOP symlink
 * loop, -EACCES and other open()/read() errors, -EBADFD not a regular file. */
int policy_file_load_at(int dirfd, const char *name, const char *path, PolicyFile **ret,
                        char **reterr_message);

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

/* The loaded policy. Read-only outside policy-file.c. */
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

/* The effective policy as one line of JSON, keys in PolicyKey order, each with the file and rule
 * that set it (null for the built-in default):
 *     {"mode":{"value":"wakeup","source":"/etc/vfiopmd/policy.d/50-gpu.json","rule":0},
 *      "arm_delay_ms":{"value":0,"source":null,"rule":null}, …,
 *      "d3cold":{"value":null,…},"power_active_w":{"value":35.5,…},…}
 * This is D-Bus Device.Policy and what vfiopmctl policy shows. */
int effective_policy_to_json(const EffectivePolicy *p, char **ret);
