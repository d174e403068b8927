/* policy_file_parse() (policy-file.h) on any bytes: a policy file from /etc, vfiopmctl check's
 * argument, SetPolicy's rule. Valid or not, it answers as promised: a file's rules are sound, an
 * error comes with a message naming the file and nothing else; validating alone agrees with
 * parsing; the rule as SetPolicy writes it (policy-store.h) parses back. */

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "fuzz-policy.h"
#include "fuzz.h"
#include "policy-file.h"
#include "policy-store.h"

#define PATH "/etc/vfiopmd/policy.d/50-fuzz.json"

static void check_store_text(const char *text) {
        _cleanup_free_ char *file = NULL, *error = NULL;
        _cleanup_(policy_file_unrefp) PolicyFile *f = NULL;
        int r;

        r = policy_store_text(PATH, "0000:01:00.0", text, &file, &error);
        if (r < 0) {
                FUZZ_CHECK(r == -ENOMEM || (error && strncmp(error, PATH, strlen(PATH)) == 0));
                return;
        }
        r = policy_file_parse(PATH, file, strlen(file), &f, NULL);
        FUZZ_CHECK(r == 0 && f->n_rules == 1);
        FUZZ_CHECK(f->rules[0].match.device && strcmp(f->rules[0].match.device, "0000:01:00.0") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(policy_file_unrefp) PolicyFile *f = NULL;
        _cleanup_free_ char *error = NULL, *error2 = NULL, *text = NULL;
        int r, r2;

        r = policy_file_parse(PATH, (const char *) data, size, &f, &error);
        if (r < 0) {
                FUZZ_CHECK(!f);
                FUZZ_CHECK(r == -ENOMEM || (error && strncmp(error, PATH, strlen(PATH)) == 0));
                FUZZ_CHECK(r == -ENOMEM || r == -EFBIG || r == -ENODATA || r == -EILSEQ ||
                           r == -EBADMSG || r == -EINVAL);
        } else {
                FUZZ_CHECK(r == 0 && f && !error);
                FUZZ_CHECK(strcmp(f->path, PATH) == 0);
                fuzz_check_policy_file(f);
                fuzz_check_verdicts(&f, 1);
        }

        /* validating only: the same answer, the same message */
        r2 = policy_file_parse(PATH, (const char *) data, size, NULL, &error2);
        FUZZ_CHECK(r2 == r);
        FUZZ_CHECK((!error && !error2) || (error && error2 && strcmp(error, error2) == 0));

        /* D-Bus SetPolicy's rule_json is a string: up to the first NUL */
        text = fuzz_strndup(data, size);
        check_store_text(text);
        return 0;
}
