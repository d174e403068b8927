#pragma once

/* utf8: checking text for RFC 3629 UTF-8 and pointing into it, as systemd's utf8.c. */

#include <stddef.h>

/* The offset of the first byte that is not valid UTF-8 (no overlong forms, no surrogates,
 * nothing past U+10FFFF) or is NUL, or len if there is none. */
size_t utf8_invalid_offset(const char *text, size_t len);

/* Line and column (both from 1, the column in code points) of a byte offset in valid UTF-8. */
void utf8_position(const char *text, size_t offset, unsigned *ret_line, unsigned *ret_column);
