#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "domain-xml.h"
#include "macro.h"

/* A scanner for the well-formed XML 1.0 that libvirt writes, not a general XML library: one
 * pass over the bytes, open elements on a fixed stack (no recursion), every read checked against
 * the input's size. It validates the whole document and keeps only what domain-xml.h counts. */

/* Names and values quoted in messages are cut after this many bytes; escaping a byte takes at
 * most 4. */
#define QUOTE_MAX 40
#define QUOTE_SIZE (QUOTE_MAX * 4 + sizeof("..."))

/* Where an open element is on the paths domain-xml.h counts. */
typedef enum Role {
        ROLE_OTHER,                     /* off the paths: nothing below it counts */
        ROLE_DOMAIN,                    /* the root */
        ROLE_NAME,                      /* the first /domain/name */
        ROLE_DEVICES,                   /* /domain/devices */
        ROLE_PCI_HOSTDEV,               /* devices/hostdev[@mode='subsystem'][@type='pci'] */
        ROLE_HOSTDEV_INTERFACE,         /* devices/interface[@type='hostdev'] */
        ROLE_PCI_HOSTDEV_SOURCE,        /* its <source>: any <address> in it is a device */
        ROLE_HOSTDEV_INTERFACE_SOURCE,  /* its <source>: an <address type='pci'> is a device */
} Role;

typedef struct Frame {
        size_t tag;             /* offset of its '<' */
        size_t name;            /* offset and length of its name */
        size_t name_len;
        Role role;
        bool default_ns;        /* in the scope of a non-empty xmlns="…": no path step matches */
} Frame;

/* One attribute of the start tag being read: offsets into the text, the value undecoded. */
typedef struct Attr {
        size_t name;
        size_t name_len;
        size_t value;
        size_t value_len;
} Attr;

typedef struct Buf {
        char *data;
        size_t len;
        size_t allocated;
} Buf;

typedef struct Parser {
        const char *text;
        size_t size;
        size_t start;           /* past a byte order mark: where the XML declaration may be */
        char **ret_error;

        Frame stack[DOMAIN_XML_DEPTH_MAX];
        size_t depth;
        bool root_done;

        Attr *attrs;            /* of the current start tag */
        size_t n_attrs;
        size_t attrs_allocated;
        size_t *attr_order;     /* scratch for the duplicate check */
        size_t attr_order_allocated;

        bool have_name;
        size_t name_level;      /* depth of the open /domain/name element, 0 if none is open */
        Buf name;

        uint32_t *addrs;        /* devices found, packed as in pci_pack(), with repetitions */
        size_t n_addrs;
        size_t addrs_allocated;
} Parser;

static void parser_done(Parser *p) {
        free(p->attrs);
        free(p->attr_order);
        free(p->name.data);
        free(p->addrs);
}

/* Makes room for need elements of size bytes in *array. */
static int grow(void **array, size_t *allocated, size_t need, size_t size) {
        size_t n;
        void *a;

        if (need <= *allocated)
                return 0;

        n = *allocated > 0 ? *allocated * 2 : 16;
        if (n < need)
                n = need;
        a = reallocarray(*array, n, size);
        if (!a)
                return -ENOMEM;

        *array = a;
        *allocated = n;
        return 0;
}

static int buf_append(Buf *b, const char *s, size_t n) {
        int r;

        r = grow((void **) &b->data, &b->allocated, b->len + n + 1, 1);
        if (r < 0)
                return r;

        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

static int buf_append_code_point(Buf *b, uint32_t cp) {
        char u[4];
        size_t n;

        if (cp < 0x80) {
                u[0] = (char) cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (char) (0xc0 | (cp >> 6));
                u[1] = (char) (0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char) (0xe0 | (cp >> 12));
                u[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
                u[2] = (char) (0x80 | (cp & 0x3f));
                n = 3;
        } else {
                u[0] = (char) (0xf0 | (cp >> 18));
                u[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
                u[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
                u[3] = (char) (0x80 | (cp & 0x3f));
                n = 4;
        }
        return buf_append(b, u, n);
}

/* Line and column (both from 1, the column in code points) of a byte offset in valid UTF-8.
 * CR LF and a lone CR end a line, as XML's end-of-line handling has it. */
static void text_position(const char *text, size_t offset, unsigned *ret_line, unsigned *ret_column) {
        unsigned line = 1, column = 1;

        for (size_t i = 0; i < offset; i++) {
                unsigned char c = (unsigned char) text[i];

                if (c == '\n' && i > 0 && text[i - 1] == '\r')
                        continue;
                if (c == '\n' || c == '\r') {
                        line++;
                        column = 1;
                } else if ((c & 0xc0) != 0x80)
                        column++;
        }

        *ret_line = line;
        *ret_column = column;
}

static int fail(Parser *p, size_t offset, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(Parser *p, size_t offset, const char *fmt, ...) {
        _cleanup_free_ char *reason = NULL;
        unsigned line, column;
        va_list ap;
        char *m;
        int k;

        if (!p->ret_error)
                return -EINVAL;

        va_start(ap, fmt);
        k = vasprintf(&reason, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        text_position(p->text, offset, &line, &column);
        if (asprintf(&m, "%u:%u: %s", line, column, reason) < 0)
                return -ENOMEM;

        *p->ret_error = m;
        return -EINVAL;
}

static int fail_eof(Parser *p, const char *where) {
        return fail(p, p->size, "unexpected end of input in %s", where);
}

/* n bytes of valid UTF-8 for a message: control characters, '\'' and '\\' escaped, cut after
 * QUOTE_MAX bytes at a character boundary. */
static const char *quote(char buf[static QUOTE_SIZE], const char *s, size_t n) {
        size_t cut = n, k = 0;

        if (cut > QUOTE_MAX) {
                cut = QUOTE_MAX;
                while (cut > 0 && ((unsigned char) s[cut] & 0xc0) == 0x80)
                        cut--;
        }

        for (size_t i = 0; i < cut; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c < 0x20 || c == 0x7f)
                        k += (size_t) sprintf(buf + k, "\\x%02x", c);
                else if (c == '\'' || c == '\\') {
                        buf[k++] = '\\';
                        buf[k++] = (char) c;
                } else
                        buf[k++] = (char) c;
        }
        strcpy(buf + k, cut < n ? "..." : "");
        return buf;
}

/* The first offset holding a NUL byte, invalid UTF-8 (RFC 3629) or a character XML 1.0 does not
 * allow (C0 controls but tab, LF and CR; U+FFFE, U+FFFF), or len if there is none. */
static size_t text_invalid_offset(const char *text, size_t len) {
        const unsigned char *s = (const unsigned char *) text;
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i], lo = 0x80, hi = 0xbf;
                size_t n;

                if (c < 0x80) {
                        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                                return i;
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
                if (c == 0xef && s[i + 1] == 0xbf && (s[i + 2] == 0xbe || s[i + 2] == 0xbf))
                        return i;
                i += n + 1;
        }

        return len;
}

static int fail_invalid_char(Parser *p, size_t offset) {
        const unsigned char *s = (const unsigned char *) p->text + offset;

        if (s[0] == 0)
                return fail(p, offset, "NUL byte");
        if (s[0] < 0x20)
                return fail(p, offset, "character U+%04X is not allowed in XML", s[0]);
        if (s[0] == 0xef && p->size - offset >= 3 && s[1] == 0xbf && (s[2] == 0xbe || s[2] == 0xbf))
                return fail(p, offset, "character U+%04X is not allowed in XML", s[2] == 0xbe ? 0xfffe : 0xffff);
        return fail(p, offset, "invalid UTF-8");
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* XML's Name, ASCII exactly; any non-ASCII character is taken as a name character. */
static bool is_name_start(char c) {
        return (unsigned char) c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                c == '_' || c == ':';
}

static bool is_name_char(char c) {
        return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static size_t skip_space(const Parser *p, size_t i) {
        while (i < p->size && is_space(p->text[i]))
                i++;
        return i;
}

/* The end of the name at i, or i if there is none. */
static size_t scan_name(const Parser *p, size_t i) {
        if (i >= p->size || !is_name_start(p->text[i]))
                return i;
        i++;
        while (i < p->size && is_name_char(p->text[i]))
                i++;
        return i;
}

static bool has_at(const Parser *p, size_t i, const char *s) {
        size_t n = strlen(s);

        return p->size - i >= n && memcmp(p->text + i, s, n) == 0;
}

/* The input ends at i within what would be s. */
static bool eof_within(const Parser *p, size_t i, const char *s) {
        size_t n = strlen(s);

        return p->size - i < n && memcmp(p->text + i, s, p->size - i) == 0;
}

static bool name_is(const Parser *p, size_t name, size_t len, const char *s) {
        return strlen(s) == len && memcmp(p->text + name, s, len) == 0;
}

static bool is_xml_char(uint32_t cp) {
        return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
                (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/* The reference at text[i] == '&', which must end before end: its end (past the ';') and the
 * code point it stands for. */
static int parse_reference(Parser *p, size_t i, size_t end, size_t *ret_end, uint32_t *ret_cp) {
        static const struct {
                const char *name;
                char c;
        } entities[] = {
                { "lt", '<' }, { "gt", '>' }, { "amp", '&' }, { "apos", '\'' }, { "quot", '"' },
        };
        char buf[QUOTE_SIZE];
        size_t j = i + 1, k;

        if (j < end && p->text[j] == '#') {
                bool hex = j + 1 < end && p->text[j + 1] == 'x';
                uint32_t cp = 0;

                j += hex ? 2 : 1;
                for (k = j; k < end; k++) {
                        char c = p->text[k];
                        unsigned d;

                        if (c >= '0' && c <= '9')
                                d = (unsigned) (c - '0');
                        else if (hex && c >= 'a' && c <= 'f')
                                d = (unsigned) (c - 'a' + 10);
                        else if (hex && c >= 'A' && c <= 'F')
                                d = (unsigned) (c - 'A' + 10);
                        else
                                break;
                        /* saturates past the last code point, which is not a character */
                        cp = cp > 0x10ffff ? cp : cp * (hex ? 16 : 10) + d;
                }
                if (k == j || k >= end || p->text[k] != ';')
                        goto malformed;
                if (!is_xml_char(cp))
                        return fail(p, i, "character reference '%s' is not allowed in XML",
                                    quote(buf, p->text + i, k + 1 - i));
                *ret_end = k + 1;
                *ret_cp = cp;
                return 0;
        }

        k = scan_name(p, j);
        if (k == j || k >= end || p->text[k] != ';')
                goto malformed;
        for (size_t e = 0; e < ELEMENTSOF(entities); e++)
                if (name_is(p, j, k - j, entities[e].name)) {
                        *ret_end = k + 1;
                        *ret_cp = (unsigned char) entities[e].c;
                        return 0;
                }
        return fail(p, i, "unknown entity '%s'", quote(buf, p->text + i, k + 1 - i));

malformed:
        return fail(p, i, "malformed reference: '&' starts &name;, &#NN; or &#xNN; (a literal '&' is &amp;)");
}

/* Text of an element (the bytes from i to end, no markup): checks its references and "]]>",
 * appends it decoded to out if non-NULL. Line ends become LF, as XML has it. */
static int scan_text(Parser *p, size_t i, size_t end, Buf *out) {
        size_t run = i;
        int r;

        while (i < end) {
                char c = p->text[i];
                uint32_t cp;
                size_t e;

                if (c == '&') {
                        r = parse_reference(p, i, end, &e, &cp);
                        if (r < 0)
                                return r;
                        if (out) {
                                r = buf_append(out, p->text + run, i - run);
                                if (r >= 0)
                                        r = buf_append_code_point(out, cp);
                                if (r < 0)
                                        return r;
                        }
                        i = run = e;
                        continue;
                }
                if (c == ']' && end - i >= 3 && memcmp(p->text + i, "]]>", 3) == 0)
                        return fail(p, i, "']]>' is not allowed in text");
                if (c == '\r' && out) {
                        r = buf_append(out, p->text + run, i - run);
                        if (r >= 0)
                                r = buf_append(out, "\n", 1);
                        if (r < 0)
                                return r;
                        i += i + 1 < end && p->text[i + 1] == '\n' ? 2 : 1;
                        run = i;
                        continue;
                }
                i++;
        }

        return out ? buf_append(out, p->text + run, i - run) : 0;
}

/* An attribute's value decoded: references replaced, each literal tab, LF, CR or CR LF a space
 * (XML's attribute value normalization for CDATA attributes). The value was checked when read. */
static int attr_decode(Parser *p, const Attr *a, char **ret) {
        _cleanup_free_ char *s = NULL;
        size_t i = a->value, end = a->value + a->value_len;
        Buf b = {};
        int r;

        while (i < end) {
                char c = p->text[i];
                uint32_t cp;
                size_t e;

                if (c == '&') {
                        r = parse_reference(p, i, end, &i, &cp);
                        if (r >= 0)
                                r = buf_append_code_point(&b, cp);
                } else if (is_space(c)) {
                        r = buf_append(&b, " ", 1);
                        i += c == '\r' && i + 1 < end && p->text[i + 1] == '\n' ? 2 : 1;
                } else {
                        e = i + 1;
                        while (e < end && p->text[e] != '&' && !is_space(p->text[e]))
                                e++;
                        r = buf_append(&b, p->text + i, e - i);
                        i = e;
                }
                if (r < 0) {
                        free(b.data);
                        return r;
                }
        }

        s = b.data ?: strdup("");
        if (!s)
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

static const Attr *attr_find(const Parser *p, const char *name) {
        for (size_t i = 0; i < p->n_attrs; i++)
                if (name_is(p, p->attrs[i].name, p->attrs[i].name_len, name))
                        return &p->attrs[i];
        return NULL;
}

/* Whether the start tag has attribute name with the value s, after decoding. */
static int attr_equals(Parser *p, const char *name, const char *s, bool *ret) {
        _cleanup_free_ char *v = NULL;
        const Attr *a;
        int r;

        a = attr_find(p, name);
        if (!a) {
                *ret = false;
                return 0;
        }
        r = attr_decode(p, a, &v);
        if (r < 0)
                return r;

        *ret = strcmp(v, s) == 0;
        return 0;
}

static int attr_compare(const void *a, const void *b, void *userdata) {
        const Parser *p = userdata;
        const Attr *x = &p->attrs[*(const size_t *) a], *y = &p->attrs[*(const size_t *) b];
        int c;

        c = memcmp(p->text + x->name, p->text + y->name, x->name_len < y->name_len ? x->name_len : y->name_len);
        if (c != 0)
                return c;
        if (x->name_len != y->name_len)
                return x->name_len < y->name_len ? -1 : 1;
        /* equal names by position, so the first repetition is found */
        return x->name < y->name ? -1 : x->name > y->name;
}

/* The first attribute (in document order) of the start tag whose name came before. Sorted,
 * not compared pairwise: a hostile tag may have a million attributes. Of the neighbours in the
 * sorted order with equal names, the later one is a repetition; the first repetition of each
 * name is among those, so the least of them is the first one. */
static int check_duplicate_attrs(Parser *p) {
        char buf[QUOTE_SIZE];
        size_t first = SIZE_MAX;
        const Attr *a;
        int r;

        if (p->n_attrs < 2)
                return 0;

        r = grow((void **) &p->attr_order, &p->attr_order_allocated, p->n_attrs, sizeof(size_t));
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->n_attrs; i++)
                p->attr_order[i] = i;
        qsort_r(p->attr_order, p->n_attrs, sizeof(size_t), attr_compare, p);

        for (size_t i = 1; i < p->n_attrs; i++) {
                const Attr *x = &p->attrs[p->attr_order[i - 1]], *y = &p->attrs[p->attr_order[i]];

                if (x->name_len == y->name_len &&
                    memcmp(p->text + x->name, p->text + y->name, x->name_len) == 0 &&
                    p->attr_order[i] < first)
                        first = p->attr_order[i];
        }
        if (first == SIZE_MAX)
                return 0;

        a = &p->attrs[first];
        return fail(p, a->name, "duplicate attribute '%s'", quote(buf, p->text + a->name, a->name_len));
}

/* Reads the attributes of the start tag whose name ends at i, up to and including its '>' or
 * '/>': sets *ret_end past it and *ret_empty for '/>'. */
static int parse_attrs(Parser *p, size_t i, size_t *ret_end, bool *ret_empty) {
        char buf[QUOTE_SIZE];
        int r;

        p->n_attrs = 0;
        for (;;) {
                size_t k = skip_space(p, i), name, name_end, value_end;
                const char *close;
                char q;
                Attr *a;

                if (k >= p->size)
                        return fail_eof(p, "a start tag");
                if (p->text[k] == '>') {
                        *ret_end = k + 1;
                        *ret_empty = false;
                        return 0;
                }
                if (p->text[k] == '/') {
                        if (k + 1 >= p->size)
                                return fail_eof(p, "a start tag");
                        if (p->text[k + 1] != '>')
                                return fail(p, k + 1, "expected '>' after '/'");
                        *ret_end = k + 2;
                        *ret_empty = true;
                        return 0;
                }
                if (!is_name_start(p->text[k]))
                        return fail(p, k, "expected an attribute name, '>' or '/>'");
                if (k == i)
                        return fail(p, k, "expected whitespace before an attribute");

                name = k;
                name_end = scan_name(p, k);
                k = skip_space(p, name_end);
                if (k >= p->size)
                        return fail_eof(p, "a start tag");
                if (p->text[k] != '=')
                        return fail(p, k, "expected '=' after attribute '%s'",
                                    quote(buf, p->text + name, name_end - name));
                k = skip_space(p, k + 1);
                if (k >= p->size)
                        return fail_eof(p, "a start tag");
                q = p->text[k];
                if (q != '\'' && q != '"')
                        return fail(p, k, "expected a quoted value for attribute '%s'",
                                    quote(buf, p->text + name, name_end - name));

                r = grow((void **) &p->attrs, &p->attrs_allocated, p->n_attrs + 1, sizeof(Attr));
                if (r < 0)
                        return r;
                a = &p->attrs[p->n_attrs++];
                *a = (Attr) { .name = name, .name_len = name_end - name, .value = k + 1 };

                /* references end before the closing quote */
                close = memchr(p->text + a->value, q, p->size - a->value);
                value_end = close ? (size_t) (close - p->text) : p->size;
                for (k = a->value; k < value_end; k++) {
                        uint32_t cp;
                        size_t e;

                        if (p->text[k] == '<')
                                return fail(p, k, "'<' is not allowed in an attribute value");
                        if (p->text[k] != '&')
                                continue;
                        r = parse_reference(p, k, value_end, &e, &cp);
                        if (r < 0)
                                return r;
                        k = e - 1;
                }
                if (!close)
                        return fail_eof(p, "a start tag");
                a->value_len = value_end - a->value;
                i = value_end + 1;
        }
}

/* libvirt reads domain, bus, slot and function with strtoul(…, 0). Only the spellings it
 * reads completely: 0x/0X and hex digits, 0 and octal digits, decimal digits. Values past
 * UINT32_MAX saturate there. */
static int parse_number(const char *s, uint64_t *ret) {
        unsigned base = 10;
        uint64_t v = 0;

        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                s += 2;
        } else if (s[0] == '0')
                base = 8;
        if (!*s)
                return -EINVAL;

        for (; *s; s++) {
                unsigned d;

                if (*s >= '0' && *s <= '9')
                        d = (unsigned) (*s - '0');
                else if (*s >= 'a' && *s <= 'f')
                        d = (unsigned) (*s - 'a' + 10);
                else if (*s >= 'A' && *s <= 'F')
                        d = (unsigned) (*s - 'A' + 10);
                else
                        return -EINVAL;
                if (d >= base)
                        return -EINVAL;
                v = v > UINT32_MAX ? v : v * base + d;
        }

        *ret = v;
        return 0;
}

/* domain:16 bus:8 slot:5 function:3, so the packed values sort as the addresses do. */
static uint32_t pci_pack(unsigned domain, unsigned bus, unsigned slot, unsigned function) {
        return (uint32_t) domain << 16 | (uint32_t) bus << 8 | (uint32_t) slot << 3 | (uint32_t) function;
}

/* The <address> at tag is a device: records it. */
static int take_pci_address(Parser *p, size_t tag) {
        static const struct {
                const char *name;
                unsigned max;
                const char *max_text;
                bool required;
        } fields[] = {
                { "domain",   0xffff, "0xffff", false },
                { "bus",      0xff,   "0xff",   true },
                { "slot",     0x1f,   "0x1f",   true },
                { "function", 7,      "7",      true },
        };
        unsigned v[ELEMENTSOF(fields)] = {};
        int r;

        for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                _cleanup_free_ char *s = NULL;
                char buf[QUOTE_SIZE];
                const Attr *a;
                uint64_t u;

                a = attr_find(p, fields[f].name);
                if (!a) {
                        if (fields[f].required)
                                return fail(p, tag, "invalid PCI address: no %s attribute", fields[f].name);
                        continue;
                }

                r = attr_decode(p, a, &s);
                if (r < 0)
                        return r;
                if (parse_number(s, &u) < 0)
                        return fail(p, a->name, "invalid PCI address: %s='%s' is not a number",
                                    fields[f].name, quote(buf, s, strlen(s)));
                if (u > fields[f].max)
                        return fail(p, a->name, "invalid PCI address: %s='%s' is out of range (at most %s)",
                                    fields[f].name, quote(buf, s, strlen(s)), fields[f].max_text);
                v[f] = (unsigned) u;
        }

        r = grow((void **) &p->addrs, &p->addrs_allocated, p->n_addrs + 1, sizeof(uint32_t));
        if (r < 0)
                return r;
        p->addrs[p->n_addrs++] = pci_pack(v[0], v[1], v[2], v[3]);
        return 0;
}

/* The role of a new element below parent (NULL for the root), named by its qualified name;
 * takes the device if it is one. */
static int element_role(Parser *p, const Frame *parent, size_t tag, size_t name, size_t len,
                        bool default_ns, Role *ret) {
        bool step = !default_ns && !memchr(p->text + name, ':', len), a = false, b = false;
        int r = 0;

        *ret = ROLE_OTHER;
        if (!parent) {
                *ret = ROLE_DOMAIN;
                return 0;
        }
        if (!step)
                return 0;

        switch (parent->role) {
        case ROLE_DOMAIN:
                if (name_is(p, name, len, "name") && !p->have_name)
                        *ret = ROLE_NAME;
                else if (name_is(p, name, len, "devices"))
                        *ret = ROLE_DEVICES;
                break;

        case ROLE_DEVICES:
                if (name_is(p, name, len, "hostdev")) {
                        r = attr_equals(p, "mode", "subsystem", &a);
                        if (r >= 0)
                                r = attr_equals(p, "type", "pci", &b);
                        if (r >= 0 && a && b)
                                *ret = ROLE_PCI_HOSTDEV;
                } else if (name_is(p, name, len, "interface")) {
                        r = attr_equals(p, "type", "hostdev", &a);
                        if (r >= 0 && a)
                                *ret = ROLE_HOSTDEV_INTERFACE;
                }
                break;

        case ROLE_PCI_HOSTDEV:
                if (name_is(p, name, len, "source"))
                        *ret = ROLE_PCI_HOSTDEV_SOURCE;
                break;

        case ROLE_HOSTDEV_INTERFACE:
                if (name_is(p, name, len, "source"))
                        *ret = ROLE_HOSTDEV_INTERFACE_SOURCE;
                break;

        case ROLE_PCI_HOSTDEV_SOURCE:
                if (name_is(p, name, len, "address"))
                        r = take_pci_address(p, tag);
                break;

        case ROLE_HOSTDEV_INTERFACE_SOURCE:
                if (name_is(p, name, len, "address")) {
                        r = attr_equals(p, "type", "pci", &a);
                        if (r >= 0 && a)
                                r = take_pci_address(p, tag);
                }
                break;

        case ROLE_NAME:
        case ROLE_OTHER:
                break;
        }
        return r;
}

static void pop_element(Parser *p) {
        if (p->depth == p->name_level)
                p->name_level = 0;
        p->depth--;
        if (p->depth == 0)
                p->root_done = true;
}

/* At '<' and a name start. */
static int parse_start_tag(Parser *p, size_t *i) {
        _cleanup_free_ char *ns = NULL;
        const Frame *parent = p->depth > 0 ? &p->stack[p->depth - 1] : NULL;
        size_t tag = *i, name = tag + 1, name_end, end = 0;
        char buf[QUOTE_SIZE];
        bool empty = false, default_ns = parent && parent->default_ns;
        const Attr *xmlns;
        Role role;
        int r;

        name_end = scan_name(p, name);
        if (name_end == name)
                return name >= p->size ? fail_eof(p, "a start tag")
                                       : fail(p, name, "expected an element name after '<'");
        if (p->root_done)
                return fail(p, tag, "element <%s> after the root element",
                            quote(buf, p->text + name, name_end - name));
        if (!parent && !name_is(p, name, name_end - name, "domain"))
                return fail(p, tag, "root element is <%s>, expected <domain>",
                            quote(buf, p->text + name, name_end - name));
        if (p->depth >= DOMAIN_XML_DEPTH_MAX)
                return fail(p, tag, "elements nested deeper than %d levels", DOMAIN_XML_DEPTH_MAX);

        r = parse_attrs(p, name_end, &end, &empty);
        if (r < 0)
                return r;
        r = check_duplicate_attrs(p);
        if (r < 0)
                return r;

        xmlns = attr_find(p, "xmlns");
        if (xmlns) {
                r = attr_decode(p, xmlns, &ns);
                if (r < 0)
                        return r;
                default_ns = ns[0] != '\0';
                if (!parent && default_ns)
                        return fail(p, xmlns->name, "the root element <domain> must not be in a namespace (xmlns='%s')",
                                    quote(buf, ns, strlen(ns)));
        }

        r = element_role(p, parent, tag, name, name_end - name, default_ns, &role);
        if (r < 0)
                return r;

        p->stack[p->depth++] = (Frame) {
                .tag = tag,
                .name = name,
                .name_len = name_end - name,
                .role = role,
                .default_ns = default_ns,
        };
        if (role == ROLE_NAME) {
                p->have_name = true;
                p->name_level = p->depth;
        }
        if (empty)
                pop_element(p);

        *i = end;
        return 0;
}

/* At "</". */
static int parse_end_tag(Parser *p, size_t *i) {
        size_t name = *i + 2, name_end, k;
        char buf[QUOTE_SIZE], buf2[QUOTE_SIZE];
        const Frame *top;

        name_end = scan_name(p, name);
        if (name_end == name)
                return name >= p->size ? fail_eof(p, "an end tag")
                                       : fail(p, name, "expected an element name after '</'");
        k = skip_space(p, name_end);
        if (k >= p->size)
                return fail_eof(p, "an end tag");
        if (p->text[k] != '>')
                return fail(p, k, "expected '>' to end the end tag");

        if (p->depth == 0)
                return fail(p, *i, "end tag </%s> without a start tag",
                            quote(buf, p->text + name, name_end - name));

        top = &p->stack[p->depth - 1];
        if (top->name_len != name_end - name || memcmp(p->text + top->name, p->text + name, top->name_len) != 0) {
                unsigned line, column;

                text_position(p->text, top->tag, &line, &column);
                return fail(p, *i, "end tag </%s> does not match <%s> opened at %u:%u",
                            quote(buf, p->text + name, name_end - name),
                            quote(buf2, p->text + top->name, top->name_len), line, column);
        }

        pop_element(p);
        *i = k + 1;
        return 0;
}

/* Right after "<?xml" at the very start. Pseudo-attributes version, encoding, standalone in
 * this order, version required. */
static int parse_xml_declaration(Parser *p, size_t decl, size_t i, size_t *ret_end) {
        static const char *const names[] = { "version", "encoding", "standalone" };
        char buf[QUOTE_SIZE];
        size_t next = 0;

        for (;;) {
                size_t k = skip_space(p, i), name, name_end, value, value_end, f;
                const char *close;
                char q;

                if (k >= p->size)
                        return fail_eof(p, "the XML declaration");
                if (p->text[k] == '?') {
                        if (k + 1 >= p->size)
                                return fail_eof(p, "the XML declaration");
                        if (p->text[k + 1] != '>')
                                return fail(p, k, "invalid XML declaration");
                        if (next == 0)
                                return fail(p, decl, "XML declaration without a version");
                        *ret_end = k + 2;
                        return 0;
                }
                if (k == i)
                        return fail(p, k, "invalid XML declaration");

                name = k;
                name_end = scan_name(p, k);
                for (f = next; f < ELEMENTSOF(names); f++)
                        if (name_is(p, name, name_end - name, names[f]))
                                break;
                if (f == ELEMENTSOF(names))
                        return fail(p, k, "invalid XML declaration");
                if (next == 0 && f != 0)
                        return fail(p, k, "XML declaration without a version");

                k = skip_space(p, name_end);
                if (k >= p->size)
                        return fail_eof(p, "the XML declaration");
                if (p->text[k] != '=')
                        return fail(p, k, "invalid XML declaration");
                k = skip_space(p, k + 1);
                if (k >= p->size)
                        return fail_eof(p, "the XML declaration");
                q = p->text[k];
                if (q != '\'' && q != '"')
                        return fail(p, k, "invalid XML declaration");
                value = k + 1;
                close = memchr(p->text + value, q, p->size - value);
                if (!close)
                        return fail_eof(p, "the XML declaration");
                value_end = (size_t) (close - p->text);

                switch (f) {
                case 0: {
                        size_t n = value_end - value, d = 2;

                        while (value + d < value_end && p->text[value + d] >= '0' && p->text[value + d] <= '9')
                                d++;
                        if (n < 3 || !has_at(p, value, "1.") || d != n)
                                return fail(p, value, "unsupported XML version '%s'", quote(buf, p->text + value, n));
                        break;
                }
                case 1:
                        if (value_end - value != 5 || strncasecmp(p->text + value, "UTF-8", 5) != 0)
                                return fail(p, value, "unsupported encoding '%s', only UTF-8 is supported",
                                            quote(buf, p->text + value, value_end - value));
                        break;
                case 2:
                        if (!name_is(p, value, value_end - value, "yes") && !name_is(p, value, value_end - value, "no"))
                                return fail(p, value, "invalid XML declaration");
                        break;
                }

                next = f + 1;
                i = value_end + 1;
        }
}

/* At "<?". */
static int parse_pi(Parser *p, size_t *i) {
        size_t target = *i + 2, target_end;
        const char *end;
        char buf[QUOTE_SIZE];

        target_end = scan_name(p, target);
        if (target_end == target)
                return target >= p->size ? fail_eof(p, "a processing instruction")
                                         : fail(p, target, "expected a target name after '<?'");

        if (target_end - target == 3 && strncasecmp(p->text + target, "xml", 3) == 0) {
                if (memcmp(p->text + target, "xml", 3) != 0)
                        return fail(p, target, "processing instruction target '%s' is reserved",
                                    quote(buf, p->text + target, 3));
                if (*i != p->start)
                        return fail(p, *i, "the XML declaration is only allowed at the very start");
                return parse_xml_declaration(p, *i, target_end, i);
        }

        if (target_end >= p->size)
                return fail_eof(p, "a processing instruction");
        if (!is_space(p->text[target_end]) && p->text[target_end] != '?')
                return fail(p, target_end, "expected whitespace or '?>' after the processing instruction target");
        end = memmem(p->text + target_end, p->size - target_end, "?>", 2);
        if (!end)
                return fail_eof(p, "a processing instruction");

        *i = (size_t) (end - p->text) + 2;
        return 0;
}

/* At "<!": a comment, a CDATA section or a declaration, which is refused. */
static int parse_markup(Parser *p, size_t *i) {
        size_t start = *i, name, name_end;
        char buf[QUOTE_SIZE];
        const char *end;

        if (has_at(p, start, "<!--")) {
                end = memmem(p->text + start + 4, p->size - start - 4, "--", 2);
                if (!end)
                        return fail_eof(p, "a comment");
                if ((size_t) (end - p->text) + 2 >= p->size)
                        return fail_eof(p, "a comment");
                if (end[2] != '>')
                        return fail(p, (size_t) (end - p->text), "'--' is not allowed inside a comment");
                *i = (size_t) (end - p->text) + 3;
                return 0;
        }

        if (has_at(p, start, "<![CDATA[")) {
                if (p->depth == 0)
                        return fail(p, start, "CDATA section outside the root element");
                end = memmem(p->text + start + 9, p->size - start - 9, "]]>", 3);
                if (!end)
                        return fail_eof(p, "a CDATA section");
                if (p->name_level > 0) {
                        size_t from = start + 9, to = (size_t) (end - p->text);
                        int r = 0;

                        /* CDATA is literal but for line ends */
                        for (size_t k = from; k < to && r >= 0; k++)
                                if (p->text[k] == '\r') {
                                        r = buf_append(&p->name, p->text + from, k - from);
                                        if (r >= 0)
                                                r = buf_append(&p->name, "\n", 1);
                                        if (k + 1 < to && p->text[k + 1] == '\n')
                                                k++;
                                        from = k + 1;
                                }
                        if (r >= 0)
                                r = buf_append(&p->name, p->text + from, to - from);
                        if (r < 0)
                                return r;
                }
                *i = (size_t) (end - p->text) + 3;
                return 0;
        }

        if (eof_within(p, start, "<!--") || (p->depth > 0 && eof_within(p, start, "<![CDATA[")))
                return fail_eof(p, "markup");

        name = start + 2;
        name_end = scan_name(p, name);
        if (name_end > name)
                return fail(p, start, "<!%s declarations are not allowed", quote(buf, p->text + name, name_end - name));
        return fail(p, start, "invalid markup after '<!'");
}

static int parse_document(Parser *p) {
        size_t i = p->start;
        int r;

        while (i < p->size) {
                char next;

                if (p->text[i] != '<') {
                        const char *lt;
                        size_t end;

                        if (p->depth == 0) {
                                if (!is_space(p->text[i]))
                                        return fail(p, i, p->root_done ? "text after the root element"
                                                                       : "text before the root element");
                                i++;
                                continue;
                        }

                        lt = memchr(p->text + i, '<', p->size - i);
                        end = lt ? (size_t) (lt - p->text) : p->size;
                        r = scan_text(p, i, end, p->name_level > 0 ? &p->name : NULL);
                        if (r < 0)
                                return r;
                        i = end;
                        continue;
                }

                next = i + 1 < p->size ? p->text[i + 1] : '\0';
                if (next == '/')
                        r = parse_end_tag(p, &i);
                else if (next == '?')
                        r = parse_pi(p, &i);
                else if (next == '!')
                        r = parse_markup(p, &i);
                else
                        r = parse_start_tag(p, &i);
                if (r < 0)
                        return r;
        }

        if (p->depth > 0) {
                const Frame *top = &p->stack[p->depth - 1];
                char buf[QUOTE_SIZE];
                unsigned line, column;

                text_position(p->text, top->tag, &line, &column);
                return fail(p, p->size, "unexpected end of input, <%s> opened at %u:%u is not closed",
                            quote(buf, p->text + top->name, top->name_len), line, column);
        }
        if (!p->root_done)
                return fail(p, p->size, "unexpected end of input, expected the root element <domain>");
        return 0;
}

static int key_compare(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

static char **pci_list_free(char **list) {
        if (!list)
                return NULL;
        for (char **s = list; *s; s++)
                free(*s);
        free(list);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, pci_list_free)

/* The devices once each, in the order of their first appearance. Sorted to find repetitions,
 * not compared pairwise, for the same reason as the attributes: keys are the packed address
 * above the index, so the first appearance of each comes first. */
static int make_pci_list(const uint32_t *addrs, size_t n, char ***ret, size_t *ret_n) {
        _cleanup_free_ uint64_t *keys = NULL;
        _cleanup_free_ bool *repeated = NULL;
        _cleanup_(pci_list_freep) char **list = NULL;
        size_t k = 0;

        keys = reallocarray(NULL, n + 1, sizeof(uint64_t));
        repeated = calloc(n + 1, sizeof(bool));
        list = calloc(n + 1, sizeof(char *));
        if (!keys || !repeated || !list)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++)
                keys[i] = (uint64_t) addrs[i] << 32 | i;
        qsort(keys, n, sizeof(uint64_t), key_compare);
        for (size_t i = 1; i < n; i++)
                if (keys[i] >> 32 == keys[i - 1] >> 32)
                        repeated[(uint32_t) keys[i]] = true;

        for (size_t i = 0; i < n; i++) {
                uint32_t a = addrs[i];

                if (repeated[i])
                        continue;
                if (asprintf(&list[k], "%04x:%02x:%02x.%x",
                             a >> 16, (a >> 8) & 0xff, (a >> 3) & 0x1f, a & 0x7) < 0) {
                        list[k] = NULL;
                        return -ENOMEM;
                }
                k++;
        }

        *ret = TAKE_PTR(list);
        *ret_n = k;
        return 0;
}

int domain_xml_parse(const char *xml, size_t size, DomainXml **ret, char **ret_error) {
        _cleanup_(parser_done) Parser p = {
                .text = xml,
                .size = size,
                .ret_error = ret_error,
        };
        _cleanup_(domain_xml_freep) DomainXml *d = NULL;
        size_t bad;
        int r;

        if (!xml && size > 0)
                return -EINVAL;
        if (!xml)
                p.text = "";

        if (size > DOMAIN_XML_SIZE_MAX) {
                char *m;

                if (!ret_error)
                        return -E2BIG;
                if (asprintf(&m, "document is larger than 16 MiB (%d bytes)", DOMAIN_XML_SIZE_MAX) < 0)
                        return -ENOMEM;
                *ret_error = m;
                return -E2BIG;
        }

        bad = text_invalid_offset(p.text, size);
        if (bad < size)
                return fail_invalid_char(&p, bad);

        if (size >= 3 && memcmp(p.text, "\xef\xbb\xbf", 3) == 0)
                p.start = 3;

        r = parse_document(&p);
        if (r < 0)
                return r;

        if (!ret)
                return 0;

        d = calloc(1, sizeof(DomainXml));
        if (!d)
                return -ENOMEM;
        if (p.have_name) {
                d->name = p.name.data ? TAKE_PTR(p.name.data) : strdup("");
                if (!d->name)
                        return -ENOMEM;
        }
        r = make_pci_list(p.addrs, p.n_addrs, &d->pci, &d->n_pci);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

DomainXml *domain_xml_free(DomainXml *d) {
        if (!d)
                return NULL;

        free(d->name);
        pci_list_free(d->pci);
        free(d);
        return NULL;
}
