#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"

char **strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
        return NULL;
}

int strv_push(char ***l, size_t *n, const char *s) {
        char *copy = strdup(s), **a;

        if (!copy)
                return -ENOMEM;
        a = realloc(*l, (*n + 2) * sizeof(*a));
        if (!a) {
                free(copy);
                return -ENOMEM;
        }
        *l = a;
        a[(*n)++] = copy;
        a[*n] = NULL;
        return 0;
}
