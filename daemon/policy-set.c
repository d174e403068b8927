#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy-file.h"
#include "policy-set.h"
#include "strv.h"

int policy_dirs_from_string(const char *s, char ***ret) {
        _cleanup_(strv_freep) char **dirs = NULL;
        size_t n = 0;

        if (!s || !ret)
                return -EINVAL;

        dirs = calloc(1, sizeof(char *));
        if (!dirs)
                return -ENOMEM;

        for (const char *p = s; *p; ) {
                size_t k = strcspn(p, ":");
                char **a;

                if (k == 0 || p[0] != '/')
                        return -EINVAL;
                /* drop trailing slashes, but "/" stays "/" */
                while (k > 1 && p[k - 1] == '/')
                        k--;

                a = reallocarray(dirs, n + 2, sizeof(char *));
                if (!a)
                        return -ENOMEM;
                dirs = a;
                dirs[n] = strndup(p, k);
                if (!dirs[n])
                        return -ENOMEM;
                dirs[++n] = NULL;

                p += strcspn(p, ":");
                if (*p == '\0')
                        break;
                p++;
                if (*p == '\0')
                        return -EINVAL;         /* "A:" */
        }

        *ret = TAKE_PTR(dirs);
        return 0;
}

static void entry_done(PolicySetEntry *e) {
        free(e->name);
        free(e->dir);
        free(e->path);
        policy_file_unref(e->file);
        free(e->error);
        *e = (PolicySetEntry) {};
}

static void entries_free(PolicySetEntry *entries, size_t n) {
        for (size_t i = 0; i < n; i++)
                entry_done(&entries[i]);
        free(entries);
}

int policy_set_new(PolicySet **ret) {
        PolicySet *set;

        if (!ret)
                return -EINVAL;

        set = calloc(1, sizeof(*set));
        if (!set)
                return -ENOMEM;
        set->errors = calloc(1, sizeof(char *));
        if (!set->errors) {
                free(set);
                return -ENOMEM;
        }

        *ret = set;
        return 0;
}

PolicySet *policy_set_free(PolicySet *set) {
        if (!set)
                return NULL;

        entries_free(set->entries, set->n_entries);
        free(set->files);
        strv_free(set->errors);
        free(set);
        return NULL;
}

/* A file name found in a directory, or an entry kept from the last load because its directory
 * could not be read this time. */
typedef struct Candidate {
        char *name;
        size_t dir;
        const PolicySetEntry *kept;
} Candidate;

typedef struct LoadState {
        size_t n_dirs;
        int *dirfds;
        Candidate *candidates;
        size_t n_candidates;
        char **errors;                  /* NULL-terminated */
        size_t n_errors;
        PolicySetEntry *entries;
        size_t n_entries;
} LoadState;

static void load_state_done(LoadState *s) {
        for (size_t i = 0; s->dirfds && i < s->n_dirs; i++)
                safe_close(s->dirfds[i]);
        free(s->dirfds);
        for (size_t i = 0; i < s->n_candidates; i++)
                free(s->candidates[i].name);
        free(s->candidates);
        strv_free(s->errors);
        entries_free(s->entries, s->n_entries);
}

static int add_error(LoadState *s, char *message) {
        char **a;

        if (!message)
                return -ENOMEM;

        a = reallocarray(s->errors, s->n_errors + 2, sizeof(char *));
        if (!a) {
                free(message);
                return -ENOMEM;
        }
        s->errors = a;
        s->errors[s->n_errors++] = message;
        s->errors[s->n_errors] = NULL;
        return 0;
}

static int add_candidate(LoadState *s, const char *name, size_t dir, const PolicySetEntry *kept) {
        Candidate *a;
        char *copy;

        copy = strdup(name);
        if (!copy)
                return -ENOMEM;

        a = reallocarray(s->candidates, s->n_candidates + 1, sizeof(*a));
        if (!a) {
                free(copy);
                return -ENOMEM;
        }
        s->candidates = a;
        s->candidates[s->n_candidates++] = (Candidate) { .name = copy, .dir = dir, .kept = kept };
        return 0;
}

static bool name_is_policy_file(const char *name) {
        size_t n = strlen(name);

        /* hidden files are editors' and package managers' business (".#50-gpu.json") */
        return name[0] != '.' && n > strlen(".json") && strcmp(name + n - strlen(".json"), ".json") == 0;
}

/* A directory that cannot be read keeps what it had in force: its entries of the last load. */
static int keep_dir(LoadState *s, const PolicySet *old, char *const *dirs, size_t dir, size_t first_candidate,
                    char *message) {
        int r;

        while (s->n_candidates > first_candidate)
                free(s->candidates[--s->n_candidates].name);

        r = add_error(s, message);
        if (r < 0)
                return r;

        for (size_t i = 0; i < old->n_entries; i++) {
                if (strcmp(old->entries[i].dir, dirs[dir]) != 0)
                        continue;
                r = add_candidate(s, old->entries[i].name, dir, &old->entries[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int scan_dir(LoadState *s, const PolicySet *old, int rootfd, char *const *dirs, size_t i) {
        _cleanup_closedir_ DIR *d = NULL;
        const char *rel = dirs[i] + strspn(dirs[i], "/");
        size_t first = s->n_candidates;
        struct dirent *de;
        char *msg = NULL;
        int fd, r;

        fd = openat(rootfd, rel[0] ? rel : ".", O_RDONLY|O_DIRECTORY|O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return 0;
                if (asprintf(&msg, "%s: cannot open directory: %s", dirs[i], strerror(-r)) < 0)
                        return -ENOMEM;
                return keep_dir(s, old, dirs, i, first, msg);
        }
        s->dirfds[i] = fd;

        fd = fcntl(s->dirfds[i], F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                safe_close(fd);
                return r;
        }

        while ((errno = 0, de = readdir(d))) {
                if (!name_is_policy_file(de->d_name))
                        continue;
                r = add_candidate(s, de->d_name, i, NULL);
                if (r < 0)
                        return r;
        }
        if (errno != 0) {
                r = -errno;
                if (asprintf(&msg, "%s: cannot read directory: %s", dirs[i], strerror(-r)) < 0)
                        return -ENOMEM;
                return keep_dir(s, old, dirs, i, first, msg);
        }

        return 0;
}

/* By name; of equal names the later directory's first, so it masks the others. */
static int candidate_compare(const void *a, const void *b) {
        const Candidate *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        if (c != 0)
                return c;
        return x->dir < y->dir ? 1 : x->dir > y->dir ? -1 : 0;
}

static int entry_compare_name(const void *key, const void *e) {
        return strcmp(key, ((const PolicySetEntry *) e)->name);
}

static const PolicySetEntry *old_entry(const PolicySet *old, const char *name, const char *path) {
        const PolicySetEntry *e;

        if (old->n_entries == 0)
                return NULL;
        e = bsearch(name, old->entries, old->n_entries, sizeof(*old->entries), entry_compare_name);
        return e && strcmp(e->path, path) == 0 ? e : NULL;
}

static char *path_join(const char *dir, const char *name) {
        size_t n = strlen(dir);
        char *p;

        if (asprintf(&p, "%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", name) < 0)
                return NULL;
        return p;
}

/* Builds the entry of one file name. Returns 0 if there is none after all (the file went away
 * since the directory was read). */
static int load_entry(LoadState *s, const PolicySet *old, char *const *dirs, const Candidate *c,
                      PolicySetEntry *e) {
        _cleanup_free_ char *msg = NULL;
        const PolicySetEntry *prev;
        PolicyFile *f = NULL;
        struct stat st;
        int r;

        *e = (PolicySetEntry) {
                .name = strdup(c->name),
                .dir = strdup(dirs[c->dir]),
                .path = path_join(dirs[c->dir], c->name),
        };
        if (!e->name || !e->dir || !e->path)
                return -ENOMEM;

        if (c->kept) {
                e->file = policy_file_ref(c->kept->file);
                e->masked = c->kept->masked;
                if (c->kept->error) {
                        e->error = strdup(c->kept->error);
                        if (!e->error)
                                return -ENOMEM;
                }
                return 1;
        }

        r = policy_file_load_at(s->dirfds[c->dir], c->name, e->path, &f, &msg);
        if (r == 1) {
                e->masked = true;
                return 1;
        }
        if (r >= 0) {
                e->file = f;
                return 1;
        }
        if (!msg)
                return r;       /* out of memory */

        if (r == -ENOENT && fstatat(s->dirfds[c->dir], c->name, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                return 0;

        e->error = TAKE_PTR(msg);
        prev = old_entry(old, e->name, e->path);
        if (prev)
                e->file = policy_file_ref(prev->file);
        return 1;
}

static void policy_set_commit(PolicySet *set, LoadState *s, PolicyFile **files, size_t n_files) {
        entries_free(set->entries, set->n_entries);
        set->entries = TAKE_PTR(s->entries);
        set->n_entries = s->n_entries;
        s->n_entries = 0;

        free(set->files);
        set->files = files;
        set->n_files = n_files;

        strv_free(set->errors);
        set->errors = TAKE_PTR(s->errors);
        set->n_errors = s->n_errors;
        s->n_errors = 0;
}

int policy_set_load(PolicySet *set, int rootfd, char *const *dirs) {
        __attribute__((cleanup(load_state_done))) LoadState s = {};
        _cleanup_free_ PolicyFile **files = NULL;
        size_t n_files = 0;
        int r;

        if (!set || !dirs)
                return -EINVAL;

        for (char *const *d = dirs; *d; d++) {
                if ((*d)[0] != '/')
                        return -EINVAL;
                s.n_dirs++;
        }

        s.dirfds = malloc((s.n_dirs ?: 1) * sizeof(int));
        if (!s.dirfds)
                return -ENOMEM;
        for (size_t i = 0; i < s.n_dirs; i++)
                s.dirfds[i] = -EBADF;
        s.errors = calloc(1, sizeof(char *));
        if (!s.errors)
                return -ENOMEM;

        for (size_t i = 0; i < s.n_dirs; i++) {
                r = scan_dir(&s, set, rootfd, dirs, i);
                if (r < 0)
                        return r;
        }

        if (s.n_candidates > 0)
                qsort(s.candidates, s.n_candidates, sizeof(*s.candidates), candidate_compare);

        s.entries = calloc(s.n_candidates ?: 1, sizeof(*s.entries));
        files = calloc(s.n_candidates ?: 1, sizeof(*files));
        if (!s.entries || !files)
                return -ENOMEM;

        for (size_t i = 0; i < s.n_candidates; i++) {
                PolicySetEntry *e = &s.entries[s.n_entries];

                if (i > 0 && strcmp(s.candidates[i].name, s.candidates[i - 1].name) == 0)
                        continue;       /* masked by a later directory */

                r = load_entry(&s, set, dirs, &s.candidates[i], e);
                if (r <= 0) {
                        entry_done(e);
                        if (r < 0)
                                return r;
                        continue;
                }
                s.n_entries++;

                if (e->file)
                        files[n_files++] = e->file;
                if (e->error) {
                        r = add_error(&s, strdup(e->error));
                        if (r < 0)
                                return r;
                }
        }

        r = (int) s.n_errors;
        policy_set_commit(set, &s, TAKE_PTR(files), n_files);
        return r;
}

int policy_set_evaluate(const PolicySet *set, const DeviceFacts *dev, EffectivePolicy **ret) {
        if (!set)
                return -EINVAL;
        return policy_evaluate(set->files, set->n_files, dev, ret);
}

/* Text that reads back as the same double, without noise: 35.5 and 0.1, not json-c's
 * 0.10000000000000001. %.15g never writes a number below 1e15 with an exponent. */
