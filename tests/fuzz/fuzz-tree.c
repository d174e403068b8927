/* fuzz-tree: a directory tree made from an input (fuzz-tree.h). */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fuzz-tree.h"

#define HEADER "=== "
#define PATH_MAX_LEN 128

/* Relative, printable ASCII, no empty, "." or ".." component; a trailing '/' names a directory. */
static bool path_ok(const char *p) {
        size_t n = strlen(p);

        if (n == 0 || n > PATH_MAX_LEN || p[0] == '/')
                return false;
        for (const char *c = p; *c; c++)
                if (*c < 0x20 || *c > 0x7e)
                        return false;
        for (const char *c = p; *c; ) {
                size_t len = strcspn(c, "/");

                if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += len;
                if (*c == '/')
                        c++;
        }
        return true;
}

/* /dev/null, or relative with no more ".." than the link has directories above it: the target
 * stays inside the tree (the tree's links all do, so none leads out through another). */
static bool target_ok(const char *link, const char *target) {
        int level = 0;

        if (strcmp(target, "/dev/null") == 0)
                return true;
        if (target[0] == '\0' || target[0] == '/' || strlen(target) > PATH_MAX_LEN)
                return false;
        for (const char *c = link; *c; c++)
                level += *c == '/';
        for (const char *c = target; ; ) {
                size_t len = strcspn(c, "/");

                if (len == 2 && c[0] == '.' && c[1] == '.')
                        level--;
                else if (len > 0 && !(len == 1 && c[0] == '.'))
                        level++;
                if (level < 0)
                        return false;
                if (c[len] == '\0')
                        return true;
                c += len + 1;
        }
}

static void make_parents(int root_fd, char *path) {
        for (char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                (void) mkdirat(root_fd, path, 0755);
                *s = '/';
        }
}

static void remove_entry(int root_fd, const char *path) {
        if (unlinkat(root_fd, path, 0) < 0 && errno == EISDIR)
                (void) unlinkat(root_fd, path, AT_REMOVEDIR);
}

/* Creates or truncates path (never through a symlink, never blocking on a FIFO) and writes body. */
static void write_file(int root_fd, const char *path, const uint8_t *body, size_t size) {
        _cleanup_close_ int fd = -EBADF;

        fd = openat(root_fd, path, O_WRONLY|O_CREAT|O_TRUNC|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC, 0644);
        while (fd >= 0 && size > 0) {
                ssize_t k = write(fd, body, size);

                if (k <= 0)
                        return;
                body += k;
                size -= (size_t) k;
        }
}

/* One entry: the header line hdr (NUL-terminated, without "=== ") and its body. */
static void apply_entry(int root_fd, char *hdr, const uint8_t *body, size_t body_size,
                        FuzzTreeReload reload, void *userdata, int *reloads) {
        size_t n = strlen(hdr);
        char *arrow;

        if (strcmp(hdr, "reload") == 0) {
                reload(userdata);
                (*reloads)++;
                return;
        }
        if (hdr[0] == '-') {
                if (path_ok(hdr + 1))
                        remove_entry(root_fd, hdr + 1);
                return;
        }
        arrow = strstr(hdr, " -> ");
        if (arrow) {
                *arrow = '\0';
                if (!path_ok(hdr) || hdr[strlen(hdr) - 1] == '/' || !target_ok(hdr, arrow + 4))
                        return;
                make_parents(root_fd, hdr);
                remove_entry(root_fd, hdr);
                (void) symlinkat(arrow + 4, root_fd, hdr);
                return;
        }
        if (n > 2 && strcmp(hdr + n - 2, " |") == 0) {
                hdr[n - 2] = '\0';
                if (!path_ok(hdr) || hdr[n - 3] == '/')
                        return;
                make_parents(root_fd, hdr);
                remove_entry(root_fd, hdr);
                (void) mkfifoat(root_fd, hdr, 0644);
                return;
        }
        if (!path_ok(hdr))
                return;
        make_parents(root_fd, hdr);
        if (hdr[n - 1] == '/')
                return;
        write_file(root_fd, hdr, body, body_size);
}

int fuzz_tree_apply(int root_fd, const uint8_t *data, size_t size, FuzzTreeReload reload,
                    void *userdata) {
        const uint8_t *end = data + size, *p;
        int reloads = 0, entries = 0;

        /* the first header: at the start, or after a newline */
        if (size >= strlen(HEADER) && memcmp(data, HEADER, strlen(HEADER)) == 0)
                p = data;
        else {
                p = memmem(data, size, "\n" HEADER, strlen(HEADER) + 1);
                if (!p)
                        return 0;
                p++;
        }
        while (p && entries++ < FUZZ_TREE_ENTRIES_MAX) {
                const uint8_t *line = p + strlen(HEADER), *eol, *body, *next;
                char hdr[PATH_MAX_LEN * 2 + 8];
                size_t hlen;

                eol = memchr(line, '\n', (size_t) (end - line));
                body = eol ? eol + 1 : end;
                if (!eol)
                        eol = end;
                next = memmem(eol, (size_t) (end - eol), "\n" HEADER, strlen(HEADER) + 1);
                hlen = (size_t) (eol - line);
                if (hlen < sizeof(hdr) && !memchr(line, '\0', hlen)) {
                        size_t body_size = !next ? (size_t) (end - body) : next >= body ? (size_t) (next - body) : 0;

                        memcpy(hdr, line, hlen);
                        hdr[hlen] = '\0';
                        apply_entry(root_fd, hdr, body, body_size, reload, userdata, &reloads);
                }
                p = next ? next + 1 : NULL;
        }
        return reloads;
}
