/* policy_set_load() (policy-set.h) over directories made from the input (fuzz-tree.h: files,
 * symlinks, masks, FIFOs, removals, reloads between changes): after every load the set is what
 * the header promises. Entries sorted by name, each from the last directory that has its name,
 * masks without rules or errors, a file in force either this load's (which parses again) or the
 * last good one of the same path, the errors counted, and the engine's verdicts sound. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "fixture.h"
#include "fuzz-policy.h"
#include "fuzz-tree.h"
#include "fuzz.h"
#include "macro.h"
#include "policy-set.h"

static char *const dirs[] = { (char *) "/usr", (char *) "/etc", (char *) "/run", NULL };

typedef struct Run {
        int root_fd;
        PolicySet *set;
} Run;

static size_t dir_index(const char *dir) {
        for (size_t i = 0; dirs[i]; i++)
                if (strcmp(dirs[i], dir) == 0)
                        return i;
        FUZZ_CHECK(!"an entry from no directory of the list");
        return 0;
}

/* Whether every directory of the list is a directory or missing: a load that cannot read one
 * keeps what it had, and the masking below does not hold. */
static bool dirs_plain(int root_fd) {
        for (size_t i = 0; dirs[i]; i++) {
                struct stat st;

                if (fstatat(root_fd, dirs[i] + 1, &st, 0) < 0 ? errno != ENOENT : !S_ISDIR(st.st_mode))
                        return false;
        }
        return true;
}

static void check_entry(int root_fd, const PolicySetEntry *e, bool plain) {
        size_t d = dir_index(e->dir), n = strlen(e->name);
        _cleanup_free_ char *rel = NULL;

        FUZZ_CHECK(n > 5 && strcmp(e->name + n - 5, ".json") == 0 && e->name[0] != '.');
        FUZZ_CHECK(strncmp(e->path, e->dir, strlen(e->dir)) == 0 && e->path[strlen(e->dir)] == '/' &&
                   strcmp(e->path + strlen(e->dir) + 1, e->name) == 0);
        if (e->masked)
                FUZZ_CHECK(!e->file && !e->error);
        if (e->file) {
                FUZZ_CHECK(strcmp(e->file->path, e->path) == 0);
                fuzz_check_policy_file(e->file);
        }
        FUZZ_SETUP(asprintf(&rel, "%s/%s", e->dir + 1, e->name) < 0 ? -ENOMEM : 0);
        if (plain) {
                /* the name's last directory */
                for (size_t j = d + 1; dirs[j]; j++) {
                        _cleanup_free_ char *later = NULL;
                        struct stat st;

                        FUZZ_SETUP(asprintf(&later, "%s/%s", dirs[j] + 1, e->name) < 0 ? -ENOMEM : 0);
                        FUZZ_CHECK(fstatat(root_fd, later, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
                }
                /* this load's file, as it is on disk */
                if (e->file && !e->error) {
                        _cleanup_(policy_file_unrefp) PolicyFile *again = NULL;

                        FUZZ_CHECK(policy_file_load_at(root_fd, rel, e->path, &again, NULL) == 0);
                        FUZZ_CHECK(again->n_rules == e->file->n_rules);
                }
        }
}

static void load(void *userdata) {
        Run *run = userdata;
        const PolicySet *set = run->set;
        bool plain = dirs_plain(run->root_fd);
        size_t n_files = 0, n_errors = 0;
        int r;

        r = policy_set_load(run->set, run->root_fd, dirs);
        FUZZ_CHECK(r >= 0 || r == -ENOMEM);
        if (r < 0)
                return;
        FUZZ_CHECK((size_t) r == set->n_errors);
        for (size_t i = 0; i < set->n_entries; i++) {
                const PolicySetEntry *e = set->entries + i;

                FUZZ_CHECK(i == 0 || strcmp(set->entries[i - 1].name, e->name) < 0);
                check_entry(run->root_fd, e, plain);
                if (e->file) {
                        FUZZ_CHECK(n_files < set->n_files && set->files[n_files] == e->file);
                        n_files++;
                }
                n_errors += !!e->error;
        }
        FUZZ_CHECK(n_files == set->n_files);
        /* each entry's error, and a directory's own */
        FUZZ_CHECK(n_errors <= set->n_errors);
        for (size_t i = 0; i < set->n_errors; i++)
                FUZZ_CHECK(set->errors[i]);
        FUZZ_CHECK(!set->errors[set->n_errors]);
        if (plain)
                FUZZ_CHECK(n_errors == set->n_errors);
        fuzz_check_verdicts(set->files, set->n_files);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *tmp = NULL;
        _cleanup_(policy_set_freep) PolicySet *set = NULL;
        Run run;

        FUZZ_SETUP(fixture_tmp_new(NULL, &tmp));
        FUZZ_SETUP(policy_set_new(&set));
        run = (Run) { .root_fd = tmp->fd, .set = set };
        (void) fuzz_tree_apply(tmp->fd, data, size, load, &run);
        load(&run);
        return 0;
}
