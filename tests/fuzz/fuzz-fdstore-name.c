/* fdstore_name_parse() and fdstore_name() (fdstore.h): the names a starting daemon finds in
 * LISTEN_FDNAMES, which the service manager hands back as they were stored (from any earlier
 * version of the daemon). A name that parses gives parts that make a name parsing back to them,
 * and a name made from any id (or none) parses back to it. */

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "fdstore.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = NULL, *id = NULL, *name = NULL, *made = NULL, *id2 = NULL;
        FdStoreKind kind, kind2;
        uint8_t pick = fuzz_take_byte(&data, &size);
        int r;

        text = fuzz_strndup(data, size);

        r = fdstore_name_parse(text, &kind, &id);
        if (r >= 0) {
                FUZZ_CHECK(kind >= 0 && kind < _FDSTORE_KIND_MAX);
                /* the name made from the parts: the same parts (a spelling may differ: "%3A") */
                FUZZ_CHECK(fdstore_name(kind, id, &name) >= 0);
                FUZZ_CHECK(fdstore_name_parse(name, &kind2, &id2) >= 0);
                FUZZ_CHECK(kind2 == kind && (id ? id2 && strcmp(id2, id) == 0 : !id2));
                free(id2);
                id2 = NULL;
        } else
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);

        /* the other way: the input as the id of a kind */
        kind = pick % _FDSTORE_KIND_MAX;
        r = fdstore_name(kind, pick & 0x80 ? NULL : text, &made);
        if (r >= 0) {
                FUZZ_CHECK(fdstore_name_parse(made, &kind2, &id2) >= 0);
                FUZZ_CHECK(kind2 == kind);
                FUZZ_CHECK(pick & 0x80 ? !id2 : id2 && strcmp(id2, text) == 0);
        }
        return 0;
}
