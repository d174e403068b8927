/* held_record_open() (held-record.h) on a file of any bytes: the record a killed daemon left in
 * /run, possibly from another version or torn. The first input byte picks whether the file is
 * grown to the record's size (so that the header and slots are read, not refused for their
 * size); the rest is the file from its start. Whatever it held, the record opened lists names
 * that are valid, each once, each found by held_record_get(), and slots can be added and freed. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fixture.h"
#include "fuzz.h"
#include "held-record.h"

#define HELD_FILE_SIZE (HELD_RECORD_HEADER_SIZE + (size_t) HELD_RECORD_SLOTS * sizeof(HeldSlot))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *tmp = NULL;
        _cleanup_(held_record_freep) HeldRecord *rec = NULL;
        _cleanup_free_ const char **names = NULL;
        uint8_t flags = fuzz_take_byte(&data, &size);
        HeldSlot *slot;
        size_t n = 0;
        bool reset, existed;
        int r;

        if (size > HELD_FILE_SIZE)
                return 0;
        FUZZ_SETUP(fixture_tmp_new(NULL, &tmp));
        FUZZ_SETUP(fixture_write(tmp->fd, HELD_RECORD_FILE, data, size));
        if (flags & 1) {
                _cleanup_close_ int fd = openat(tmp->fd, HELD_RECORD_FILE, O_WRONLY|O_CLOEXEC);

                FUZZ_SETUP(fd < 0 || ftruncate(fd, HELD_FILE_SIZE) < 0 ? -errno : 0);
        }

        r = held_record_open(tmp->fd, &rec, &reset);
        FUZZ_CHECK(r >= 0 || r == -ENOMEM);
        if (r < 0)
                return 0;

        FUZZ_CHECK(held_record_names(rec, &names) >= 0);
        for (; names[n]; n++) {
                size_t len = strlen(names[n]);

                FUZZ_CHECK(len > 0 && len <= HELD_RECORD_NAME_MAX);
                slot = held_record_get(rec, names[n]);
                FUZZ_CHECK(slot && strcmp(slot->name, names[n]) == 0);
                for (size_t j = 0; j < n; j++)
                        FUZZ_CHECK(strcmp(names[j], names[n]) != 0);
        }
        if (reset)
                FUZZ_CHECK(n == 0);

        /* a new device's slot, zeroed, then freed; the rest freed one by one */
        existed = held_record_get(rec, "fuzz-new");
        r = held_record_add(rec, "fuzz-new", &slot);
        FUZZ_CHECK(r >= 0 || r == -ENOSPC);
        if (r >= 0 && !existed) {
                FUZZ_CHECK(held_record_get(rec, "fuzz-new") == slot && slot->entry == HELD_ENTRY_NONE &&
                           slot->wakes == 0 && slot->arms == 0);
                held_record_remove(rec, "fuzz-new");
                FUZZ_CHECK(!held_record_get(rec, "fuzz-new"));
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *name = strdup(names[i]);       /* the mapping's is freed */

                FUZZ_SETUP(name ? 0 : -ENOMEM);
                held_record_remove(rec, name);
                FUZZ_CHECK(!held_record_get(rec, name));
        }
        free(names);
        names = NULL;
        FUZZ_CHECK(held_record_names(rec, &names) >= 0 && !names[0]);
        return 0;
}
