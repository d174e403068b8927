#pragma once

/* fuzz-tree: a directory tree made from an input, for the harnesses of code that reads
 * directories (policy-set.c, release-store.c). The input is a script of entries, each a header
 * line starting with "=== " followed by what it writes; text before the first header is ignored:
 *
 *     === etc/50-gpu.json          a file: every byte up to the next "\n=== " (or the end)
 *     { "mode": "wakeup" }
 *     === etc/60-sim.json -> /dev/null     a symlink (replacing what is there); the target is
 *                                  /dev/null or relative and stays inside the tree
 *     === run/                     a directory
 *     === run/x.json |             a FIFO
 *     === -etc/50-gpu.json         removes it (an empty directory too)
 *     === reload                   calls back (the harness loads the tree as it is now)
 *
 * Paths are relative, of printable ASCII, without "." or ".." components; missing parent
 * directories are made. What cannot be done (a file where a directory is) is skipped: the
 * harness checks the reader, not the script. At most FUZZ_TREE_ENTRIES_MAX entries are run. */

#include <stddef.h>
#include <stdint.h>

#define FUZZ_TREE_ENTRIES_MAX 64

typedef void (*FuzzTreeReload)(void *userdata);

/* Runs the script in data below root_fd. Returns the number of reloads called back. */
int fuzz_tree_apply(int root_fd, const uint8_t *data, size_t size, FuzzTreeReload reload,
                    void *userdata);
