#include "utf8.h"

/* The offset of the first byte that is not valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF) or is NUL, or len if there is none. */
size_t utf8_invalid_offset(const char *text, size_t len) {
        const unsigned char *s = (const unsigned char *) text;
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i], lo = 0x80, hi = 0xbf;
                size_t n;

                if (c == 0)
                        return i;
                if (c < 0x80) {
                        i++;
                        continue;
                }

                if (c >= 0xc2 && c <= 0xdf)
                        n = 1;
                else if (c == 0xe0) {
                        n = 2;
                        lo = 0xa0;
                } else if (c == 0xed) {
                        n = 2;
                        hi = 0x9f;
                } else if (c >= 0xe1 && c <= 0xef)
                        n = 2;
                else if (c == 0xf0) {
                        n = 3;
                        lo = 0x90;
                } else if (c >= 0xf1 && c <= 0xf3)
                        n = 3;
                else if (c == 0xf4) {
                        n = 3;
                        hi = 0x8f;
                } else
                        return i;

                if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
                        return i;
                for (size_t k = 2; k <= n; k++)
                        if ((s[i + k] & 0xc0) != 0x80)
                                return i;
                i += n + 1;
        }

        return len;
}

/* Line and column (both from 1, the column in code points) of a byte offset in valid UTF-8. */
void utf8_position(const char *text, size_t offset, unsigned *ret_line, unsigned *ret_column) {
        unsigned line = 1, column = 1;

        for (size_t i = 0; i < offset; i++) {
                unsigned char c = (unsigned char) text[i];

                if (c == '\n') {
                        line++;
                        column = 1;
                } else if ((c & 0xc0) != 0x80)
                        column++;
        }

        *ret_line = line;
        *ret_column = column;
}
