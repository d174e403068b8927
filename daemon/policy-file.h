#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"
#include "policy.h"

/* Policy files (SPEC §2): parsing and validating one file's text with json-c, and the effective
 * policy as JSON (policy-set.h loads the directories). Never logs: every problem comes back as a
 * message for the caller to log or send.
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

/* Parses and validates one file's text (len bytes, need not be NUL-terminated). path is only
 * recorded: it names the file in messages and in provenance. With ret NULL, only validates
 * (vfiopmctl check, D-Bus SetPolicy).
 * Returns 0 and the file's rules, or a negative errno and, except for -ENOMEM, a message in
 * *ret_error (if non-NULL): -EFBIG too large, -ENODATA empty (or only whitespace),
 * -EILSEQ not UTF-8 or a NUL byte, -EBADMSG JSON syntax, -EINVAL content. A file is valid as a
 * whole or not at all: nothing is returned for an invalid file. */
int policy_file_parse(const char *path, const char *text, size_t len, PolicyFile **ret,
                      char **ret_error);

/* How many times the duplicate-key check has looked at a key seen before (one comparison, one
 * slot of its table) in this process: for the unit tests, which bound it against a file's size. */
uint64_t policy_file_key_comparisons(void);

/* Reads and parses the file name below dirfd, following symlinks. path names it in messages and
 * provenance. Returns 0 and the file (ret may be NULL to only validate), 1 if the file is a
 * symlink to /dev/null (masked: no rules, no error; *ret untouched), or a negative errno with a
 * message as policy_file_parse(), plus: -ENOENT missing or a dangling symlink, -ELOOP symlink
 * loop, -EACCES and other open()/read() errors, -EBADFD not a regular file. */
int policy_file_load_at(int dirfd, const char *name, const char *path, PolicyFile **ret,
                        char **ret_error);

/* The effective policy as one line of JSON, keys in PolicyKey order, each with the file and rule
 * that set it (null for the built-in default):
 *     {"mode":{"value":"wakeup","source":"/etc/vfiopmd/policy.d/50-gpu.json","rule":0},
 *      "arm_delay_ms":{"value":0,"source":null,"rule":null}, …,
 *      "d3cold":{"value":null,…},"power_active_w":{"value":35.5,…},…}
 * This is D-Bus Device.Policy and what vfiopmctl policy shows. */
int effective_policy_to_json(const EffectivePolicy *p, char **ret);
