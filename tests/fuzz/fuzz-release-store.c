/* release-store.h over a directory of any files (fuzz-tree.h): the releases a restarted daemon
 * reads from /run/vfiopmd/released. The list holds only names a device can have, sorted, each
 * once; a record that loads has a reason that is kept and a valid name, and saving it again
 * loads back the same. */

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "fixture.h"
#include "fuzz-tree.h"
#include "fuzz.h"
#include "release-store.h"
#include "strv.h"

static void check_dir(void *userdata) {
        int dir_fd = *(int *) userdata;
        _cleanup_(strv_freep) char **names = NULL;
        int r;

        r = release_store_list(dir_fd, &names);
        FUZZ_CHECK(r >= 0 || r == -ENOMEM);
        if (r < 0)
                return;
        for (size_t i = 0; names[i]; i++) {
                _cleanup_free_ char *by = NULL, *by2 = NULL;
                PmRelease reason, reason2;

                FUZZ_CHECK(release_store_name_ok(names[i]));
                FUZZ_CHECK(i == 0 || strcmp(names[i - 1], names[i]) < 0);
                r = release_store_load(dir_fd, names[i], &reason, &by);
                if (r < 0) {
                        FUZZ_CHECK(r == -EBADMSG || r == -ENOENT || r == -ENOMEM || r == -EISDIR ||
                                   r == -ELOOP || r == -EFBIG || r == -ENXIO || r == -EBADFD);
                        continue;
                }
                FUZZ_CHECK(reason == PM_RELEASE_OWN || reason == PM_RELEASE_GROUP ||
                           reason == PM_RELEASE_RESERVATION);
                FUZZ_CHECK(by && release_store_name_ok(by));
                FUZZ_CHECK(release_store_save(dir_fd, names[i], reason, by) >= 0);
                FUZZ_CHECK(release_store_load(dir_fd, names[i], &reason2, &by2) >= 0);
                FUZZ_CHECK(reason2 == reason && strcmp(by2, by) == 0);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *tmp = NULL;

        FUZZ_SETUP(fixture_tmp_new(NULL, &tmp));
        (void) fuzz_tree_apply(tmp->fd, data, size, check_dir, &tmp->fd);
        check_dir(&tmp->fd);
        return 0;
}
