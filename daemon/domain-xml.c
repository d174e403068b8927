#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>

#include "domain-xml.h"
#include "macro.h"
#include "strv.h"
#include "utf8.h"

/* libxml2 reads the document, as libvirt does when it writes it; two XPath expressions pick the
 * devices (domain-xml.h says which). */

#define PCI_HOSTDEV_SOURCES "/domain/devices/hostdev[@mode='subsystem'][@type='pci']/source/address"
#define HOSTDEV_INTERFACE_SOURCES "/domain/devices/interface[@type='hostdev']/source/address[@type='pci']"

/* NONET: nothing is fetched. Neither NOENT nor DTDLOAD/DTDATTR: no entity is substituted or
 * loaded (and refuse_doctype() stops at a DOCTYPE before any is declared). NOERROR|NOWARNING:
 * errors come to capture_error(), not stderr. BIG_LINES: lines past 65535 stay right. Not HUGE:
 * libxml2's nesting limit stays (DOMAIN_XML_DEPTH_MAX). */
#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES)

/* The handler's argument is const from libxml2 2.12 on. */
#if LIBXML_VERSION >= 21200
typedef const xmlError *XmlErrorArg;
#else
typedef xmlError *XmlErrorArg;
#endif

/* Names and values quoted in messages are cut after this many bytes; escaping a byte takes at
 * most 4. */
#define QUOTE_MAX 40
#define QUOTE_SIZE (QUOTE_MAX * 4 + sizeof("..."))

static inline void xml_freep(void *p) {
        xmlFree(*(void **) p);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlParserCtxtPtr, xmlFreeParserCtxt)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDocPtr, xmlFreeDoc)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathContextPtr, xmlXPathFreeContext)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathObjectPtr, xmlXPathFreeObject)

/* The parse error to report: the first of the highest rank (libxml2 goes on after the first
 * fatal error and reports what follows from it too). */
typedef struct ParseError {
        int rank;               /* 0: none; else level * 2, plus 1 if it has a line */
        int line;
        int column;
        char *message;          /* without its position */
        bool out_of_memory;     /* the message could not be kept */
} ParseError;

static void capture(ParseError *e, int rank, int line, int column, const char *message) {
        char *m;

        if (rank <= e->rank)
                return;
        m = strdup(message ?: "");
        if (!m) {
                e->out_of_memory = true;
                return;
        }
        /* libxml2's messages end in a newline, some hold one ("…\nBytes: 0xFF …") */
        for (char *s = m; *s; s++)
                if (*s == '\n')
                        *s = ' ';
        for (size_t n = strlen(m); n > 0 && m[n - 1] == ' '; n--)
                m[n - 1] = '\0';

        free(e->message);
        *e = (ParseError) { .rank = rank, .line = line, .column = column, .message = m };
}

static void capture_error(void *userdata, XmlErrorArg error) {
        if (error->level < XML_ERR_ERROR)
                return;
        capture(userdata, error->level * 2 + (error->line > 0), error->line, error->int2, error->message);
}

/* The SAX callback for <!DOCTYPE: libvirt never writes one, and without it no entity but the
 * five predefined ones and character references can appear. */
static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id) {
        xmlParserCtxtPtr ctxt = ctx;

        capture(ctxt->_private, INT_MAX, xmlSAX2GetLineNumber(ctxt), xmlSAX2GetColumnNumber(ctxt),
                "DOCTYPE declarations are not allowed");
        xmlStopParser(ctxt);
}

static int fail(char **ret_error, int line, int column, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char **ret_error, int line, int column, const char *fmt, ...) {
        _cleanup_free_ char *reason = NULL;
        va_list ap;
        int k;

        if (!ret_error)
                return -EINVAL;

        va_start(ap, fmt);
        k = vasprintf(&reason, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        if (line <= 0)
                *ret_error = TAKE_PTR(reason);
        else if ((column > 0 ? asprintf(ret_error, "%d:%d: %s", line, column, reason)
                             : asprintf(ret_error, "%d: %s", line, reason)) < 0)
                return -ENOMEM;
        return -EINVAL;
}

/* A string of valid UTF-8 for a message: control characters, '\'' and '\\' escaped, cut after
 * QUOTE_MAX bytes at a character boundary. */
static const char *quote(char buf[static QUOTE_SIZE], const xmlChar *s) {
        size_t n = strlen((const char *) s), cut = n, k = 0;

        if (cut > QUOTE_MAX) {
                cut = QUOTE_MAX;
                while (cut > 0 && (s[cut] & 0xc0) == 0x80)
                        cut--;
        }
        for (size_t i = 0; i < cut; i++) {
                if (s[i] < 0x20 || s[i] == 0x7f)
                        k += (size_t) sprintf(buf + k, "\\x%02x", s[i]);
                else {
                        if (s[i] == '\'' || s[i] == '\\')
                                buf[k++] = '\\';
                        buf[k++] = (char) s[i];
                }
        }
        strcpy(buf + k, cut < n ? "..." : "");
        return buf;
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

/* The PCI address an <address> element names, packed domain:16 bus:8 slot:5 function:3 so that
 * packed values sort as the addresses do. */
static int pci_address(xmlNodePtr address, uint32_t *ret, char **ret_error) {
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
        int line = (int) xmlGetLineNo(address);
        uint64_t v[ELEMENTSOF(fields)] = {};

        for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                _cleanup_(xml_freep) xmlChar *s = NULL;
                char buf[QUOTE_SIZE];
                uint64_t *u = &v[f];

                s = xmlGetNoNsProp(address, BAD_CAST fields[f].name);
                if (!s && fields[f].required)
                        return fail(ret_error, line, 0, "invalid PCI address: no %s attribute", fields[f].name);
                if (s && parse_number((const char *) s, u) < 0)
                        return fail(ret_error, line, 0, "invalid PCI address: %s='%s' is not a number",
                                    fields[f].name, quote(buf, s));
                if (*u > fields[f].max)
                        return fail(ret_error, line, 0, "invalid PCI address: %s='%s' is out of range (at most %s)",
                                    fields[f].name, quote(buf, s), fields[f].max_text);
        }

        *ret = (uint32_t) (v[0] << 16 | v[1] << 8 | v[2] << 3 | v[3]);
        return 0;
}

static int key_compare(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* The devices once each, in the order of their first appearance. Sorted to find repetitions,
 * not compared pairwise (a document may hold 100000): keys are the packed address above the
 * index, so the first appearance of each comes first. */
static int make_pci_list(const uint32_t *addrs, size_t n, char ***ret, size_t *ret_n) {
        _cleanup_free_ uint64_t *keys = NULL;
        _cleanup_free_ bool *repeated = NULL;
        _cleanup_(strv_freep) char **list = NULL;
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

/* libxml2 takes a NUL byte for the end of the input: "<domain/>\0junk" would pass. */
static int refuse_nul(const char *xml, size_t size, char **ret_error) {
        const char *nul = size > 0 ? memchr(xml, 0, size) : NULL;
        unsigned line, column;

        if (!nul)
                return 0;
        utf8_position(xml, (size_t) (nul - xml), &line, &column);
        return fail(ret_error, (int) line, (int) column, "NUL byte");
}

/* The document, well-formed, or a message. */
static int read_document(const char *xml, size_t size, xmlDocPtr *ret, char **ret_error) {
        _cleanup_(xmlFreeParserCtxtp) xmlParserCtxtPtr ctxt = NULL;
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        ParseError e = {};
        int r = 0;

        ctxt = xmlNewParserCtxt();
        if (!ctxt)
                return -ENOMEM;
        ctxt->_private = &e;
        ctxt->sax->internalSubset = refuse_doctype;

        /* Every error of this thread comes here while it parses, also those libxml2 raises
         * without the context (encoding conversion): none goes to stderr. Then libxml2's default
         * again (nothing else in these programs uses libxml2). */
        xmlSetStructuredErrorFunc(&e, capture_error);
        doc = xmlCtxtReadMemory(ctxt, xml ?: "", (int) size, NULL, NULL, PARSE_OPTIONS);
        xmlSetStructuredErrorFunc(NULL, NULL);

        if (e.out_of_memory)
                r = -ENOMEM;
        else if (e.rank > 0 && (e.rank == INT_MAX || !doc || !ctxt->wellFormed))
                r = fail(ret_error, e.line, e.column, "%s", e.message);
        else if (!doc || !ctxt->wellFormed)
                r = -ENOMEM;    /* refused without a word: only an allocation fails so */
        free(e.message);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(doc);
        return 0;
}

static int xpath_nodes(xmlXPathContextPtr xpath, const char *expression, xmlXPathObjectPtr *ret) {
        xmlXPathObjectPtr o;

        o = xmlXPathEvalExpression(BAD_CAST expression, xpath);
        if (!o)
                return -ENOMEM;
        if (o->type != XPATH_NODESET) {
                xmlXPathFreeObject(o);
                return -EINVAL;
        }
        *ret = o;
        return 0;
}

int domain_xml_parse(const char *xml, size_t size, DomainXml **ret, char **ret_error) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr xpath = NULL;
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr devices = NULL, name = NULL;
        _cleanup_(domain_xml_freep) DomainXml *d = NULL;
        _cleanup_free_ uint32_t *addrs = NULL;
        char buf[QUOTE_SIZE], buf2[QUOTE_SIZE];
        xmlNodePtr root;
        size_t n = 0;
        int r;

        if (!xml && size > 0)
                return -EINVAL;
        if (size > DOMAIN_XML_SIZE_MAX) {
                if (ret_error && asprintf(ret_error, "document is larger than 16 MiB (%d bytes)", DOMAIN_XML_SIZE_MAX) < 0)
                        return -ENOMEM;
                return -E2BIG;
        }

        r = refuse_nul(xml, size, ret_error);
        if (r >= 0)
                r = read_document(xml, size, &doc, ret_error);
        if (r < 0)
                return r;

        root = xmlDocGetRootElement(doc);
        if (!root)
                return -ENOMEM; /* a well-formed document has one */
        if (root->ns && root->ns->prefix)
                return fail(ret_error, (int) xmlGetLineNo(root), 0, "root element is <%s:%s>, expected <domain>",
                            quote(buf, root->ns->prefix), quote(buf2, root->name));
        if (!xmlStrEqual(root->name, BAD_CAST "domain"))
                return fail(ret_error, (int) xmlGetLineNo(root), 0, "root element is <%s>, expected <domain>",
                            quote(buf, root->name));
        if (root->ns)
                return fail(ret_error, (int) xmlGetLineNo(root), 0,
                            "the root element <domain> must not be in a namespace (xmlns='%s')",
                            quote(buf, root->ns->href));

        /* document order as a number in each element: sorting a node set is then no walk */
        if (xmlXPathOrderDocElems(doc) < 0)
                return -ENOMEM;
        xpath = xmlXPathNewContext(doc);
        if (!xpath)
                return -ENOMEM;
        /* a union comes in document order */
        r = xpath_nodes(xpath, PCI_HOSTDEV_SOURCES " | " HOSTDEV_INTERFACE_SOURCES, &devices);
        if (r >= 0)
                r = xpath_nodes(xpath, "/domain/name[1]", &name);
        if (r < 0)
                return r;

        if (devices->nodesetval && devices->nodesetval->nodeNr > 0) {
                addrs = calloc((size_t) devices->nodesetval->nodeNr, sizeof(uint32_t));
                if (!addrs)
                        return -ENOMEM;
                for (; n < (size_t) devices->nodesetval->nodeNr; n++) {
                        r = pci_address(devices->nodesetval->nodeTab[n], &addrs[n], ret_error);
                        if (r < 0)
                                return r;
                }
        }
        if (!ret)
                return 0;

        d = calloc(1, sizeof(DomainXml));
        if (!d)
                return -ENOMEM;
        if (name->nodesetval && name->nodesetval->nodeNr > 0) {
                _cleanup_(xml_freep) xmlChar *text = xmlNodeGetContent(name->nodesetval->nodeTab[0]);

                d->name = text ? strdup((const char *) text) : NULL;
                if (!d->name)
                        return -ENOMEM;
        }
        r = make_pci_list(addrs, n, &d->pci, &d->n_pci);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

DomainXml *domain_xml_free(DomainXml *d) {
        if (!d)
                return NULL;

        free(d->name);
        strv_free(d->pci);
        free(d);
        return NULL;
}
