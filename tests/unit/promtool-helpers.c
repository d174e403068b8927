#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "promtool-helpers.h"

/* promtool, where installed (Debian's prometheus package: tools/install-deps and CI have it):
 * NULL, and a line on stderr saying the check is skipped, where not. */
const char *promtool(void) {
        static char path[256];
        const char *env = getenv("PATH");
        char *dirs, *save = NULL;

        dirs = strdup(env ? env : "/usr/bin:/bin");
        ck_assert_ptr_nonnull(dirs);
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                (void) snprintf(path, sizeof(path), "%s/promtool", d);
                if (access(path, X_OK) == 0) {
                        free(dirs);
                        return path;
                }
        }
        free(dirs);
        fprintf(stderr, "promtool check metrics: skipped, no promtool in $PATH (Debian: apt-get install prometheus)\n");
        return NULL;
}

/* `promtool check metrics` on text (its lint included): its exit status is 0. */
void expect_promtool_ok(const char *text) {
        const char *tool = promtool();
        char cmd[512];
        FILE *p;

        if (!tool)
                return;
        (void) snprintf(cmd, sizeof(cmd), "'%s' check metrics 2>&1", tool);
        p = popen(cmd, "w");
        ck_assert_ptr_nonnull(p);
        ck_assert_int_ge(fputs(text, p), 0);
        ck_assert_msg(pclose(p) == 0, "promtool check metrics failed on:\n%s", text);
}
