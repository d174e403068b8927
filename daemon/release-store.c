#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "release-store.h"

#define NAME_MAX_LEN 64
#define RECORD_MAX 256

bool release_store_name_ok(const char *name) {
        size_t n;

        if (!name || name[0] == '\0' || name[0] == '.')
                return false;
        n = strlen(name);
        if (n > NAME_MAX_LEN)
                return false;
        for (const char *p = name; *p; p++)
                if (*p <= ' ' || *p > '~' || *p == '/')
                        return false;
        return true;
}

static bool reason_kept(PmRelease reason) {
        return reason == PM_RELEASE_OWN || reason == PM_RELEASE_GROUP || reason == PM_RELEASE_RESERVATION;
}

int release_store_save(int dir_fd, const char *name, PmRelease reason, const char *by) {
        char text[RECORD_MAX];

        if (!release_store_name_ok(name) || !release_store_name_ok(by) || !reason_kept(reason))
                return -EINVAL;
        (void) snprintf(text, sizeof(text), "reason=%s\nby=%s\n", pm_release_to_string(reason), by);
        return write_file_atomic(dir_fd, name, text, NULL);
}

int release_store_load(int dir_fd, const char *name, PmRelease *ret_reason, char **ret_by) {
        _cleanup_free_ char *text = NULL, *by = NULL;
        PmRelease reason = _PM_RELEASE_INVALID;
        char *line, *save = NULL;
        int r;

        if (!release_store_name_ok(name))
                return -EINVAL;
        r = read_file_at(dir_fd, name, RECORD_MAX, &text);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "reason=", 7) == 0 && reason < 0)
                        reason = pm_release_from_string(line + 7);
                else if (strncmp(line, "by=", 3) == 0 && !by && release_store_name_ok(line + 3)) {
                        by = strdup(line + 3);
                        if (!by)
                                return -ENOMEM;
                } else
                        return -EBADMSG;
        }
        if (!reason_kept(reason) || !by)
                return -EBADMSG;
        *ret_reason = reason;
        if (ret_by)
                *ret_by = TAKE_PTR(by);
        return 0;
}

int release_store_forget(int dir_fd, const char *name) {
        if (!release_store_name_ok(name))
                return -EINVAL;
        if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int release_store_list(int dir_fd, char ***ret_names) {
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *dir;
        int fd, r = 0;

        fd = openat(dir_fd, ".", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0)
                return -errno;
        dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(dir))) {
                char **a;

                if (!release_store_name_ok(de->d_name))
                        continue;       /* ".", "..", temporary ".#" files */
                a = realloc(names, (n + 2) * sizeof(*a));
                if (!a) {
                        r = -ENOMEM;
                        break;
                }
                names = a;
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                names[++n] = NULL;
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(dir);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(names[i]);
                free(names);
                return r;
        }
        if (!names) {
                names = calloc(1, sizeof(*names));
                if (!names)
                        return -ENOMEM;
        }
        qsort(names, n, sizeof(*names), compare_names);
        *ret_names = names;
        return 0;
}
