/* Replays a corpus through a harness without libFuzzer (make check): every file named on the
 * command line, every file in each directory named, or, without arguments, the harness's own
 * corpus: FUZZ_CORPUS_ROOT/NAME, NAME the program's (tests/fuzz/corpus/fuzz-pm). A finding aborts, as under libFuzzer; an empty corpus
 * fails, so a misplaced directory is not a pass. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "fuzz.h"

static int replay_file(int dir_fd, const char *name, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ uint8_t *exact = NULL;
        size_t size;
        int r;

        fd = openat(dir_fd, name, O_RDONLY|O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = read_full_fd(fd, FUZZ_INPUT_MAX, 0, &buf, &size);
        if (r < 0)
                return r;
        /* a copy of exactly size bytes, as libFuzzer gives: ASan sees a read past the end */
        exact = malloc(size ? size : 1);
        if (!exact)
                return -ENOMEM;
        memcpy(exact, buf, size);
        fprintf(stderr, "replay: %s\n", path);
        (void) LLVMFuzzerTestOneInput(exact, size);
        return 1;
}

static int replay_path(const char *path) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int n = 0, r;

        d = opendir(path);
        if (!d) {
                if (errno != ENOTDIR)
                        return -errno;
                return replay_file(AT_FDCWD, path, path);
        }
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *p = NULL;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&p, "%s/%s", path, de->d_name) < 0)
                        return -ENOMEM;
                r = replay_file(dirfd(d), de->d_name, p);
                if (r < 0)
                        return r;
                n += r;
        }
        return errno > 0 ? -errno : n;
}

int main(int argc, char *argv[]) {
        _cleanup_free_ char *own = NULL;
        char *def[] = { NULL, NULL };
        char **paths = argc > 1 ? argv + 1 : def;
        int n = 0;

        if (argc <= 1) {
                if (asprintf(&own, "%s/%s", FUZZ_CORPUS_ROOT, basename(argv[0])) < 0)
                        return 1;
                def[0] = own;
        }

        for (char **p = paths; *p; p++) {
                int r = replay_path(*p);

                if (r < 0) {
                        fprintf(stderr, "replay: %s: %s\n", *p, strerror(-r));
                        return 1;
                }
                n += r;
        }
        if (n == 0) {
                fprintf(stderr, "replay: no input in %s\n", paths[0]);
                return 1;
        }
        printf("replay: %d inputs, no finding\n", n);
        return 0;
}
