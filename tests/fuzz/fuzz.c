/* What the fuzz harnesses share (fuzz.h). */

#include <string.h>

#include "fuzz.h"

char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = strndup((const char *) data, size);

        if (!s)
                abort();
        return s;
}

uint8_t fuzz_take_byte(const uint8_t **data, size_t *size) {
        uint8_t b;

        if (*size == 0)
                return 0;
        b = **data;
        (*data)++;
        (*size)--;
        return b;
}
