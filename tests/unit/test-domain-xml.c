#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "domain-xml.h"
#include "fixture.h"
#include "suites.h"

/* libvirt domain XML: the samples in tests/fixtures/domains with their exact results, every
 * prefix of them, which paths count, and what is refused, where: our own messages exactly,
 * libxml2's by their line (its wording is its own). Inputs are copied to buffers of exactly their
 * size, so reading past the end trips ASan or valgrind. */

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

typedef struct Sample {
        const char *file;
        const char *name;
        const char *pci[8];
} Sample;

static const Sample samples[] = {
        { "gpu-passthrough.xml", "win11-gaming", { "0000:0a:00.0", "0000:0a:00.1" } },
        { "nics-sriov.xml", "router", { "0000:3b:02.3", "0000:05:00.0", "0000:05:00.1" } },
        { "metadata-foreign.xml", "db&web-12 caf\xc3\xa9 <prod> &raw", { "0000:41:00.0", "0000:41:00.1" } },
        { "spellings.xml", "spellings",
          { "0000:1f:1f.7", "ffff:ff:1f.0", "ffff:ff:00.0", "0001:08:0a.3", "0002:00:00.0", "0003:00:01.0" } },
        { "no-hostdevs.xml", "plain", {} },
};

static bool has_suffix(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A copy of n bytes in a buffer of exactly n bytes (NULL for 0). */
static char *exact_copy(const char *s, size_t n) {
        char *c;

        if (n == 0)
                return NULL;
        c = malloc(n);
        ck_assert_ptr_nonnull(c);
        memcpy(c, s, n);
        return c;
}

/* A fixture file in a buffer of exactly its size. */
static char *read_sample(const char *name, size_t *ret_size) {
        _cleanup_close_ int dir = -EBADF, fd = -EBADF;
        struct stat st;
        char *buf;
        size_t n = 0;

        ck_assert_int_eq(fixture_open("domains", &dir), 0);
        fd = openat(dir, name, O_RDONLY|O_CLOEXEC);
        ck_assert_msg(fd >= 0, "%s: %m", name);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_gt(st.st_size, 0);
        buf = malloc((size_t) st.st_size);
        ck_assert_ptr_nonnull(buf);
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);

                ck_assert_int_gt(k, 0);
                n += (size_t) k;
        }
        *ret_size = n;
        return buf;
}

static DomainXml *parse_ok_n(const char *xml, size_t size) {
        _cleanup_free_ char *copy = exact_copy(xml, size), *msg = NULL;
        DomainXml *d = NULL;
        int r;

        r = domain_xml_parse(copy, size, &d, &msg);
        ck_assert_msg(r == 0, "%.*s: %d %s", (int) (size < 200 ? size : 200), xml, r, msg);
        ck_assert_ptr_null(msg);
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(d->pci);
        ck_assert_ptr_null(d->pci[d->n_pci]);
        return d;
}

static DomainXml *parse_ok(const char *xml) {
        return parse_ok_n(xml, strlen(xml));
}

/* The device list is exactly expected (NULL-terminated). */
static void assert_pci(const DomainXml *d, const char *const *expected) {
        size_t n = 0;

        while (expected[n])
                n++;
        for (size_t i = 0; i < n && i < d->n_pci; i++)
                ck_assert_str_eq(d->pci[i], expected[i]);
        ck_assert_uint_eq(d->n_pci, n);
        ck_assert_ptr_null(d->pci[n]);
}

static void assert_same(const DomainXml *a, const DomainXml *b) {
        if (a->name || b->name)
                ck_assert_str_eq(a->name, b->name);
        ck_assert_uint_eq(a->n_pci, b->n_pci);
        for (size_t i = 0; i < a->n_pci; i++)
                ck_assert_str_eq(a->pci[i], b->pci[i]);
}

/* The line of a message shaped "LINE:COLUMN: reason" or "LINE: reason", 0 if it is not. */
static unsigned message_line(const char *msg) {
        unsigned line = 0, column = 0;
        int n = 0;

        if (sscanf(msg, "%u:%u: %n", &line, &column, &n) == 2 && n > 0 && column > 0 && msg[n] != '\0')
                return line;
        n = 0;
        if (sscanf(msg, "%u: %n", &line, &n) == 1 && n > 0 && msg[n] != '\0')
                return line;
        return 0;
}

static bool has_position(const char *msg) {
        return message_line(msg) > 0;
}

START_TEST(test_samples) {
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_close_ int dir = -EBADF;
        struct dirent *de;
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                _cleanup_(domain_xml_freep) DomainXml *x = NULL;
                _cleanup_free_ char *text = NULL;
                size_t size;

                text = read_sample(samples[i].file, &size);
                x = parse_ok_n(text, size);
                ck_assert_msg(x->name && strcmp(x->name, samples[i].name) == 0, "%s: name %s",
                              samples[i].file, x->name);
                assert_pci(x, samples[i].pci);

                /* validation only, and without a message pointer */
                ck_assert_int_eq(domain_xml_parse(text, size, NULL, NULL), 0);
        }

        /* every sample in the directory has its expectations here */
        ck_assert_int_eq(fixture_open("domains", &dir), 0);
        d = fdopendir(dup(dir));
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                bool known = false;

                if (!has_suffix(de->d_name, ".xml"))
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(samples); i++)
                        known = known || strcmp(samples[i].file, de->d_name) == 0;
                ck_assert_msg(known, "%s: no expected result in test-domain-xml.c", de->d_name);
                n++;
        }
        ck_assert_uint_eq(n, ELEMENTSOF(samples));
}
END_TEST

START_TEST(test_paths) {
        static const struct {
                const char *xml;
                const char *pci[4];
        } cases[] = {
                /* the source address counts, the guest-side one does not, whichever comes first */
                { "<domain><devices><hostdev mode='subsystem' type='pci'>"
                  "<address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>"
                  "<source><address domain='0x0000' bus='0x0a' slot='0x00' function='0x0'/></source>"
                  "</hostdev></devices></domain>", { "0000:0a:00.0" } },
                /* only directly inside <source> */
                { "<domain><devices><hostdev mode='subsystem' type='pci'><source><x>"
                  "<address bus='1' slot='0' function='0'/></x></source></hostdev></devices></domain>", {} },
                /* children of the address (s390's <zpci>) do not matter */
                { "<domain><devices><hostdev mode='subsystem' type='pci'><source><address bus='1' slot='0' "
                  "function='0'><zpci uid='0x1' fid='0x0'/></address></source></hostdev></devices></domain>",
                  { "0000:01:00.0" } },
                /* hostdev and interface only directly in /domain/devices */
                { "<domain><devices><x><hostdev mode='subsystem' type='pci'><source><address bus='1' slot='0' "
                  "function='0'/></source></hostdev></x></devices></domain>", {} },
                { "<domain><hostdev mode='subsystem' type='pci'><source><address bus='1' slot='0' "
                  "function='0'/></source></hostdev></domain>", {} },
                { "<domain><x><devices><hostdev mode='subsystem' type='pci'><source><address bus='1' slot='0' "
                  "function='0'/></source></hostdev></devices></x></domain>", {} },
                /* both attributes needed, compared exactly */
                { "<domain><devices><hostdev type='pci'><source><address bus='1' slot='0' function='0'/>"
                  "</source></hostdev></devices></domain>", {} },
                { "<domain><devices><hostdev mode='subsystem'><source><address bus='1' slot='0' function='0'/>"
                  "</source></hostdev></devices></domain>", {} },
                { "<domain><devices><hostdev mode='subsystem' type='pci&#10;'><source><address bus='1' slot='0' "
                  "function='0'/></source></hostdev></devices></domain>", {} },
                /* interfaces: type='hostdev' and an address of type='pci' */
                { "<domain><devices><interface type='hostdev'><source><address domain='0x0000' bus='0x3b' "
                  "slot='0x02' function='0x3'/></source></interface></devices></domain>", {} },
                { "<domain><devices><interface type='network'><source><address type='pci' bus='1' slot='0' "
                  "function='0'/></source></interface></devices></domain>", {} },
                { "<domain><devices><interface type=\"hostdev\"><source><address type=\"pci\" bus=\"1\" "
                  "slot=\"2\" function=\"3\"/></source></interface></devices></domain>", { "0000:01:02.3" } },
                /* a default namespace takes an element off the path, xmlns="" puts it back */
                { "<domain><devices xmlns='urn:x'><hostdev xmlns='' mode='subsystem' type='pci'><source>"
                  "<address bus='1' slot='0' function='0'/></source></hostdev></devices></domain>", {} },
                { "<domain xmlns=''><devices><hostdev mode='subsystem' type='pci'><source xmlns='urn:x'>"
                  "<address xmlns='' bus='1' slot='0' function='0'/></source></hostdev></devices></domain>", {} },
                { "<domain xmlns=''><devices xmlns='urn:x'><x/></devices><devices><hostdev mode='subsystem' "
                  "type='pci'><source><address bus='1' slot='0' function='0'/></source></hostdev></devices>"
                  "</domain>", { "0000:01:00.0" } },
                /* attribute values are decoded and normalized before they are compared */
                { "<domain><devices><interface type='host&#100;ev'><source><address type='&#x70;&#x63;&#x69;' "
                  "bus='&#x31;' slot='0' function='0'/></source></interface></devices></domain>",
                  { "0000:01:00.0" } },
                /* two addresses in one source (libvirt writes one): both, as XPath has it */
                { "<domain><devices><hostdev mode='subsystem' type='pci'><source><address bus='1' slot='0' "
                  "function='0'/><address bus='2' slot='0' function='0'/></source></hostdev></devices></domain>",
                  { "0000:01:00.0", "0000:02:00.0" } },
                /* an address off the path is not checked either */
                { "<domain><devices><hostdev mode='subsystem' type='usb'><source><address bus='1' "
                  "device='4'/></source></hostdev><hostdev mode='subsystem' type='pci'><address "
                  "type='pci' bus='0x999'/></hostdev></devices></domain>", {} },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(domain_xml_freep) DomainXml *d = parse_ok(cases[i].xml);

                assert_pci(d, cases[i].pci);
        }
}
END_TEST

START_TEST(test_name) {
        static const struct {
                const char *xml;
                const char *name;
        } cases[] = {
                { "<domain/>", NULL },
                { "<domain><devices/></domain>", NULL },
                { "<domain><name/></domain>", "" },
                { "<domain><name></name></domain>", "" },
                { "<domain><name>a</name><name>b</name></domain>", "a" },
                { "<domain><name>a &amp; b &#x263A;&#128512;</name></domain>", "a & b \xe2\x98\xba\xf0\x9f\x98\x80" },
                { "<domain><name>l1\r\nl2\rl3&#13;</name></domain>", "l1\nl2\nl3\r" },
                { "<domain><name><![CDATA[<x>&amp;]]></name></domain>", "<x>&amp;" },
                { "<domain><name>a<!-- c -->b<?pi x?>c</name></domain>", "abc" },
                /* the element's whole text, as XPath's string() has it */
                { "<domain><name>a<b>c</b>d</name></domain>", "acd" },
                { "<domain><x><name>no</name></x><name>yes</name></domain>", "yes" },
                { "<domain><q:name xmlns:q='urn:q'>no</q:name></domain>", NULL },
                { "<domain><name xmlns='urn:q'>no</name><name>yes</name></domain>", "yes" },
                /* decoded as the declaration says */
                { "<?xml version='1.0' encoding='ISO-8859-1'?><domain><name>caf\xe9</name></domain>", "caf\xc3\xa9" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(domain_xml_freep) DomainXml *d = parse_ok(cases[i].xml);

                if (cases[i].name)
                        ck_assert_msg(d->name && strcmp(d->name, cases[i].name) == 0, "case %zu: %s", i, d->name);
                else
                        ck_assert_msg(!d->name, "case %zu: %s", i, d->name);
                ck_assert_uint_eq(d->n_pci, 0);
        }
}
END_TEST

START_TEST(test_syntax_accepted) {
        static const char *const good[] = {
                "\xef\xbb\xbf<domain/>",
                "\xef\xbb\xbf<?xml version='1.0'?><domain/>",
                "<?xml version=\"1.0\"?>\n<domain/>\n",
                "<?xml version = '1.1' encoding = 'utf-8' standalone = 'yes' ?><domain/>",
                "<?xml version='1.0' standalone='no'?><domain/>",
                "<!-- a --><?pi?><?pi data?>\n<domain\n/>\n<!---->\n",
                "<domain a = '\"' b= \"'\" c =''>text &lt;&gt;&amp;&apos;&quot;&#9;&#xA;&#xd; ]] ]>"
                "<![CDATA[]]><![CDATA[ <a> ]] ]]]></domain >",
                "<domain xmlns:a='urn:a' a:x='1' x='1'><a:b/><_c.d-e:f/><\xc3\xa9/></domain>",
                "<domain>\t\r\n</domain>",
                "<domain><x>\xf4\x8f\xbf\xbd\xef\xbf\xbd</x></domain>",
                /* libxml2 reads what the scanner refused: any 1.x version (with a warning), the
                 * encoding the declaration names, prefixes nobody declared (a namespace error, not
                 * a well-formedness one) */
                "<?xml version='1.'?><domain/>",
                "<?xml version='1.0' encoding='ISO-8859-1'?><domain><x>\xe9</x></domain>",
                "<domain><q:x/></domain>",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(domain_xml_freep) DomainXml *d = parse_ok(good[i]);

                ck_assert_uint_eq(d->n_pci, 0);
        }
}
END_TEST

/* A domain with one PCI hostdev whose source address has attributes attrs. */
#define ADDRESS(attrs) \
        "<domain>\n<devices>\n<hostdev mode='subsystem' type='pci'>\n<source>\n<address " attrs "/>\n" \
        "</source>\n</hostdev>\n</devices>\n</domain>\n"

/* Refused with -EINVAL: our own message exactly, or libxml2's (NULL here) with its line. */
static const struct {
        const char *xml;
        size_t size;            /* 0: strlen(xml) */
        unsigned line;
        const char *message;
} bad[] = {
        /* structure */
        { "", 0, 1, NULL },
        { " \n\t", 0, 2, NULL },
        { "<!-- only a comment -->", 0, 1, NULL },
        { "<domain>", 0, 1, NULL },
        { "<domain>\n  <devices>\n    <hostdev>\n", 0, 4, NULL },
        { "<domain></domian>", 0, 1, NULL },
        { "<domain>\n<devices>\n</domain>", 0, 3, NULL },
        { "<domain><a><b></a></b></domain>", 0, 1, NULL },
        { "<domain><q:a></a></domain>", 0, 1, NULL },
        { "<domain/></domain>", 0, 1, NULL },
        { "</domain>", 0, 1, NULL },
        { "<domain/>x", 0, 1, NULL },
        { "<domain/>\n&amp;", 0, 2, NULL },
        { "<domain/><domain/>", 0, 1, NULL },
        { "x<domain/>", 0, 1, NULL },
        { "<network><name>n</name></network>", 0, 1, "1: root element is <network>, expected <domain>" },
        { "<q:domain xmlns:q='urn:q'/>", 0, 1, "1: root element is <q:domain>, expected <domain>" },
        { "<Domain/>", 0, 1, "1: root element is <Domain>, expected <domain>" },
        { "<domain xmlns='http://libvirt.org/schemas/domain'/>", 0, 1,
          "1: the root element <domain> must not be in a namespace (xmlns='http://libvirt.org/schemas/domain')" },
        { "<![CDATA[x]]><domain/>", 0, 1, NULL },
        { "<domain/><![CDATA[x]]>", 0, 1, NULL },

        /* declarations and entities */
        { "<!DOCTYPE domain>\n<domain/>", 0, 1, "1:17: DOCTYPE declarations are not allowed" },
        { "<?xml version='1.0'?>\n<!DOCTYPE domain [\n<!ENTITY lol 'lol'>\n]>\n<domain>&lol;</domain>", 0, 2,
          "2:18: DOCTYPE declarations are not allowed" },
        { "<domain><!ENTITY x 'y'></domain>", 0, 1, NULL },
        { "<domain><!></domain>", 0, 1, NULL },
        { "<domain><!-x--></domain>", 0, 1, NULL },
        { "<domain>&lol;</domain>", 0, 1, NULL },
        { "<domain><name>&nbsp;</name></domain>", 0, 1, NULL },
        { "<domain a='&x;'/>", 0, 1, NULL },
        { "<domain>a & b</domain>", 0, 1, NULL },
        { "<domain a='&amp'/>", 0, 1, NULL },
        { "<domain>&#;</domain>", 0, 1, NULL },
        { "<domain>&#X41;</domain>", 0, 1, NULL },
        { "<domain>&#x4g;</domain>", 0, 1, NULL },
        { "<domain>&#0;</domain>", 0, 1, NULL },
        { "<domain>&#x1F;</domain>", 0, 1, NULL },
        { "<domain>&#xD800;</domain>", 0, 1, NULL },
        { "<domain>&#xFFFE;</domain>", 0, 1, NULL },
        { "<domain>&#x110000;</domain>", 0, 1, NULL },
        { "<domain a='&#99999999999999999999999999999999999999999;'/>", 0, 1, NULL },

        /* characters */
        { "<domain>\0</domain>", 18, 1, "1:9: NUL byte" },
        { "<domain/>\0", 10, 1, "1:10: NUL byte" },
        { "<domain a='\x01'/>", 0, 1, NULL },
        { "<domain>\x1b[0m</domain>", 0, 1, NULL },
        { "<domain>\n\xc3\xa9\xff</domain>", 0, 2, NULL },
        { "<domain>\xc0\xbc</domain>", 0, 1, NULL },
        { "<domain>\xed\xa0\x80</domain>", 0, 1, NULL },
        { "<domain>\xef\xbf\xbe</domain>", 0, 1, NULL },
        { "<domain>\xef\xbf\xbf</domain>", 0, 1, NULL },
        { "\xff\xfe<\0d\0", 6, 1, "1:4: NUL byte" },
        { "<domain>]]></domain>", 0, 1, NULL },

        /* tags and attributes */
        { "<domain a='1' a='2'/>", 0, 1, NULL },
        { "<domain b='1' a='1' c='1' a='2' b='3'/>", 0, 1, NULL },
        { "<domain><x q:a='1' q:a='1'/></domain>", 0, 1, NULL },
        { "<domain a='1'b='2'/>", 0, 1, NULL },
        { "<domain a=1/>", 0, 1, NULL },
        { "<domain a/>", 0, 1, NULL },
        { "<domain \"a\"/>", 0, 1, NULL },
        { "<domain a='<'/>", 0, 1, NULL },
        { "<domain/x", 0, 1, NULL },
        { "<domain>< a/></domain>", 0, 1, NULL },
        { "<domain><1a/></domain>", 0, 1, NULL },
        { "<domain></ domain>", 0, 1, NULL },
        { "<domain></domain x>", 0, 1, NULL },
        { "<domain><!-- a -- b --></domain>", 0, 1, NULL },
        { "<domain><!-- a ---></domain>", 0, 1, NULL },
        { "<domain><? x?></domain>", 0, 1, NULL },
        { "<domain><?pi\"x?></domain>", 0, 1, NULL },

        /* the XML declaration */
        { "<domain/><?xml version='1.0'?>", 0, 1, NULL },
        { " <?xml version='1.0'?><domain/>", 0, 1, NULL },
        { "<?XML version='1.0'?><domain/>", 0, 1, NULL },
        { "<?xml?><domain/>", 0, 1, NULL },
        { "<?xml encoding='UTF-8'?><domain/>", 0, 1, NULL },
        { "<?xml version='2.0'?><domain/>", 0, 1, NULL },
        { "<?xml version='1.0' encoding='UTF-16'?><domain/>", 0, 1, NULL },
        { "<?xml version='1.0' standalone='maybe'?><domain/>", 0, 1, NULL },
        { "<?xml version='1.0' standalone='yes' encoding='UTF-8'?><domain/>", 0, 1, NULL },
        { "<?xml version='1.0'encoding='UTF-8'?><domain/>", 0, 1, NULL },
        { "<?xml version='1.0' foo='bar'?><domain/>", 0, 1, NULL },
        { "<?xml version='1.0'?", 0, 1, NULL },

        /* the end of input anywhere */
        { "<", 0, 1, NULL },
        { "<domain", 0, 1, NULL },
        { "<domain a='1", 0, 1, NULL },
        { "<domain a='1'/", 0, 1, NULL },
        { "<domain></", 0, 1, NULL },
        { "<domain></domain", 0, 1, NULL },
        { "<domain><!-- x -", 0, 1, NULL },
        { "<domain><!--", 0, 1, NULL },
        { "<domain><!-", 0, 1, NULL },
        { "<domain><![CDATA[ x ]]", 0, 1, NULL },
        { "<domain><![CDA", 0, 1, NULL },
        { "<domain><?pi x ?", 0, 1, NULL },
        { "<domain/><!-- x", 0, 1, NULL },
        { "<domain>&amp", 0, 1, NULL },

        /* line ends: LF, CR LF (libxml2 counts a lone CR as none) */
        { "<domain>\r\n<x>\r\n</y></domain>", 0, 3, NULL },
        { "<domain>\r<x>\r</y></domain>", 0, 1, NULL },
        { "<domain><name>caf\xc3\xa9\t\xe2\x82\xac\xf0\x9f\x98\x80</nom></domain>", 0, 1, NULL },

        /* long names, non-ASCII names */
        { "<domain><aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa></b></domain>", 0,
          1, NULL },
        { "<domain><\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
          "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x></b></domain>", 0, 1, NULL },

        /* PCI addresses: values quoted in messages are cut and escaped */
        { ADDRESS("domain='0x0000' bus='0x100' slot='0x00' function='0x0'"), 0, 5,
          "5: invalid PCI address: bus='0x100' is out of range (at most 0xff)" },
        { ADDRESS("domain='0x0000' bus='256' slot='0x00' function='0x0'"), 0, 5,
          "5: invalid PCI address: bus='256' is out of range (at most 0xff)" },
        { ADDRESS("domain='0x0000' bus='0400' slot='0x00' function='0x0'"), 0, 5,
          "5: invalid PCI address: bus='0400' is out of range (at most 0xff)" },
        { ADDRESS("domain='0x0000' bus='0x00' slot='0x20' function='0x0'"), 0, 5,
          "5: invalid PCI address: slot='0x20' is out of range (at most 0x1f)" },
        { ADDRESS("domain='0x0000' bus='0x00' slot='0x00' function='8'"), 0, 5,
          "5: invalid PCI address: function='8' is out of range (at most 7)" },
        { ADDRESS("domain='0x10000' bus='0x00' slot='0x00' function='0'"), 0, 5,
          "5: invalid PCI address: domain='0x10000' is out of range (at most 0xffff)" },
        { ADDRESS("domain='4294967296' bus='0' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: domain='4294967296' is out of range (at most 0xffff)" },
        { ADDRESS("domain='0xffffffffffffffffffffffff' bus='0' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: domain='0xffffffffffffffffffffffff' is out of range (at most 0xffff)" },
        { ADDRESS("domain='0' bus='-1' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='-1' is not a number" },
        { ADDRESS("domain='0' bus='+1' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='+1' is not a number" },
        { ADDRESS("domain='0' bus='' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='' is not a number" },
        { ADDRESS("domain='0' bus=' 1' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus=' 1' is not a number" },
        { ADDRESS("domain='0' bus='1 ' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='1 ' is not a number" },
        { ADDRESS("domain='0' bus='0x' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='0x' is not a number" },
        { ADDRESS("domain='0' bus='08' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='08' is not a number" },
        { ADDRESS("domain='0' bus='0x1g' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='0x1g' is not a number" },
        { ADDRESS("domain='0' bus='1e1' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='1e1' is not a number" },
        { ADDRESS("domain='0' bus='0b1' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='0b1' is not a number" },
        { ADDRESS("domain='0' bus='&#9;&apos;\\&#x7f;' slot='0' function='0'"), 0, 5,
          "5: invalid PCI address: bus='\\x09\\'\\\\\\x7f' is not a number" },
        { ADDRESS("domain='0' bus='0x000000000000000000000000000000000000000000000000000g' slot='0' function='0'"),
          0, 5,
          "5: invalid PCI address: bus='0x00000000000000000000000000000000000000...' is not a number" },
        { ADDRESS("domain='0x0000' slot='0x00' function='0x0'"), 0, 5,
          "5: invalid PCI address: no bus attribute" },
        { ADDRESS("domain='0x0000' bus='0x01' function='0x0'"), 0, 5,
          "5: invalid PCI address: no slot attribute" },
        { ADDRESS("domain='0x0000' bus='0x01' slot='0x00'"), 0, 5,
          "5: invalid PCI address: no function attribute" },
        { ADDRESS("Bus='1' slot='0' function='0'"), 0, 5, "5: invalid PCI address: no bus attribute" },
        { "<domain><devices><interface type='hostdev'><source><address type='pci' domain='0x0000' slot='0x10' "
          "function='0x2'/></source></interface></devices></domain>", 0, 1,
          "1: invalid PCI address: no bus attribute" },
        { "<domain><devices><interface type='hostdev'><source><address type='pci' domain='0x0000' bus='0x3b' "
          "slot='0x10' function='0x8'/></source></interface></devices></domain>", 0, 1,
          "1: invalid PCI address: function='0x8' is out of range (at most 7)" },
};

START_TEST(test_bad) {
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                size_t size = bad[i].size > 0 ? bad[i].size : strlen(bad[i].xml);
                _cleanup_free_ char *copy = exact_copy(bad[i].xml, size), *msg = NULL;
                DomainXml *d = (DomainXml *) 0x1;
                int r;

                r = domain_xml_parse(copy, size, &d, &msg);
                ck_assert_msg(r == -EINVAL, "case %zu (%s): got %d", i, bad[i].xml, r);
                ck_assert_ptr_eq(d, (DomainXml *) 0x1);
                ck_assert_msg(msg, "case %zu (%s): no message", i, bad[i].xml);
                if (bad[i].message)
                        ck_assert_msg(strcmp(msg, bad[i].message) == 0, "case %zu (%s):\n got      %s\n expected %s",
                                      i, bad[i].xml, msg, bad[i].message);
                ck_assert_msg(message_line(msg) == bad[i].line, "case %zu (%s): %s, expected line %u",
                              i, bad[i].xml, msg, bad[i].line);

                /* the same verdict without a result or a message */
                ck_assert_int_eq(domain_xml_parse(copy, size, NULL, NULL), -EINVAL);
        }
}
END_TEST

START_TEST(test_arguments) {
        _cleanup_(domain_xml_freep) DomainXml *d = NULL;
        const char *xml = "<domain><name>n</name></domain>   garbage";
        char *msg = NULL;

        /* only size bytes count: the text need not be NUL-terminated */
        d = parse_ok_n(xml, strlen(xml) - strlen("garbage"));
        ck_assert_str_eq(d->name, "n");

        ck_assert_int_eq(domain_xml_parse(NULL, 1, NULL, &msg), -EINVAL);
        ck_assert_ptr_null(msg);
        /* nothing is an empty document */
        ck_assert_int_eq(domain_xml_parse(NULL, 0, NULL, &msg), -EINVAL);
        ck_assert_msg(message_line(msg) == 1, "%s", msg);
        free(msg);

        ck_assert_ptr_null(domain_xml_free(NULL));
}
END_TEST

START_TEST(test_size_limit) {
        _cleanup_free_ char *buf = malloc(17 * 1024 * 1024);
        _cleanup_(domain_xml_freep) DomainXml *d = NULL;
        _cleanup_free_ char *msg = NULL, *msg2 = NULL;
        static const char head[] = "<domain><name>big</name>", tail[] = "</domain>";

        ck_assert_ptr_nonnull(buf);

        /* exactly the limit: fine */
        memset(buf, ' ', 17 * 1024 * 1024);
        memcpy(buf, head, strlen(head));
        memcpy(buf + DOMAIN_XML_SIZE_MAX - strlen(tail), tail, strlen(tail));
        ck_assert_int_eq(domain_xml_parse(buf, DOMAIN_XML_SIZE_MAX, &d, NULL), 0);
        ck_assert_str_eq(d->name, "big");

        /* a byte more, even a blank: refused before it is parsed */
        ck_assert_int_eq(domain_xml_parse(buf, DOMAIN_XML_SIZE_MAX + 1, NULL, &msg), -E2BIG);
        ck_assert_str_eq(msg, "document is larger than 16 MiB (16777216 bytes)");
        ck_assert_int_eq(domain_xml_parse(buf, 17 * 1024 * 1024, NULL, &msg2), -E2BIG);
        ck_assert_str_eq(msg2, "document is larger than 16 MiB (16777216 bytes)");
        ck_assert_int_eq(domain_xml_parse(buf, 17 * 1024 * 1024, NULL, NULL), -E2BIG);
}
END_TEST

/* depth elements: <domain> and depth - 1 <e>, closed or not. */
static char *nested(size_t depth, bool closed) {
        size_t n = 8 + (depth - 1) * 3 + (closed ? 9 + (depth - 1) * 4 : 0);
        char *s = malloc(n + 1), *p = s;

        ck_assert_ptr_nonnull(s);
        p = stpcpy(p, "<domain>");
        for (size_t i = 1; i < depth; i++)
                p = stpcpy(p, "<e>");
        if (closed) {
                for (size_t i = 1; i < depth; i++)
                        p = stpcpy(p, "</e>");
                p = stpcpy(p, "</domain>");
        }
        ck_assert_uint_eq((size_t) (p - s), n);
        return s;
}

START_TEST(test_depth) {
        _cleanup_free_ char *max = nested(DOMAIN_XML_DEPTH_MAX, true);
        _cleanup_free_ char *over = nested(DOMAIN_XML_DEPTH_MAX + 1, true), *deep_open = nested(100000, false);
        _cleanup_free_ char *msg = NULL, *msg2 = NULL;
        _cleanup_(domain_xml_freep) DomainXml *d = NULL;

        d = parse_ok(max);
        ck_assert_int_eq(domain_xml_parse(over, strlen(over), NULL, &msg), -EINVAL);
        ck_assert_msg(has_position(msg), "%s", msg);
        ck_assert_int_eq(domain_xml_parse(deep_open, strlen(deep_open), NULL, &msg2), -EINVAL);
        ck_assert_msg(has_position(msg2), "%s", msg2);
}
END_TEST

/* Entities are neither loaded nor substituted: a DOCTYPE, where they would be declared, is
 * refused before anything in it is read, and the files named there are never opened (inotify
 * would see it). */
START_TEST(test_entities) {
        static const char secret[] =
                "<domain><name>from-the-file</name><devices><hostdev mode='subsystem' type='pci'><source>"
                "<address bus='0x33' slot='0' function='0'/></source></hostdev></devices></domain>";
        static const char *const templates[] = {
                "<!DOCTYPE x [<!ENTITY e SYSTEM \"file://%s/secret.xml\">]><domain><name>&e;</name></domain>",
                "<?xml version='1.0'?>\n<!DOCTYPE domain [\n<!ENTITY e SYSTEM '%s/secret.xml'>\n]>\n"
                "<domain><name>x&e;</name><devices>&e;<hostdev mode='subsystem' type='pci'><source>"
                "<address bus='1' slot='0' function='0'/></source></hostdev></devices></domain>",
                "<!DOCTYPE domain SYSTEM \"%s/secret.xml\">\n<domain/>",
                "<!DOCTYPE domain [<!ENTITY % p SYSTEM \"%s/secret.xml\"> %p;]><domain/>",
        };
        _cleanup_(fixture_tmp_freep) FixtureTmp *tmp = NULL;
        _cleanup_close_ int watch = -EBADF;
        _cleanup_free_ char *path = NULL;
        char events[4096];

        ck_assert_int_eq(fixture_tmp_new(NULL, &tmp), 0);
        ck_assert_int_eq(fixture_write_string(tmp->fd, "secret.xml", secret), 0);
        ck_assert_int_ge(asprintf(&path, "%s/secret.xml", tmp->path), 0);
        watch = inotify_init1(IN_NONBLOCK|IN_CLOEXEC);
        ck_assert_int_ge(watch, 0);
        ck_assert_int_ge(inotify_add_watch(watch, path, IN_OPEN|IN_ACCESS), 0);

        for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
                _cleanup_free_ char *xml = NULL, *msg = NULL;
                DomainXml *d = NULL;
                int r;

                /* "%%" would not survive as the parameter entity's '%': put the path in by hand */
                {
                        const char *t = templates[i], *at = strstr(t, "%s");

                        ck_assert_ptr_nonnull(at);
                        ck_assert_int_ge(asprintf(&xml, "%.*s%s%s", (int) (at - t), t, tmp->path, at + 2), 0);
                }
                r = domain_xml_parse(xml, strlen(xml), &d, &msg);
                ck_assert_msg(r == -EINVAL, "case %zu: %d", i, r);
                ck_assert_ptr_null(d);
                ck_assert_msg(strstr(msg, ": DOCTYPE declarations are not allowed") && has_position(msg),
                              "case %zu: %s", i, msg);
                ck_assert_msg(!strstr(msg, "from-the-file"), "case %zu: %s", i, msg);
        }
        ck_assert_msg(read(watch, events, sizeof(events)) < 0 && errno == EAGAIN, "the entity's file was opened");

        /* without a DOCTYPE an entity is not declared: refused, not looked up */
        {
                _cleanup_free_ char *msg = NULL;

                ck_assert_int_eq(domain_xml_parse("<domain><name>&e;</name></domain>", 33, NULL, &msg), -EINVAL);
                ck_assert_msg(message_line(msg) == 1 && strstr(msg, "'e'"), "%s", msg);
        }
}
END_TEST

/* Every prefix of every sample: a clean failure with a positioned message, or (once the root
 * element is closed) the whole document's result. */
START_TEST(test_truncated) {
        for (size_t s = 0; s < ELEMENTSOF(samples); s++) {
                _cleanup_(domain_xml_freep) DomainXml *full = NULL;
                _cleanup_free_ char *text = NULL;
                size_t size, root_end, ok = 0;
                const char *end;

                text = read_sample(samples[s].file, &size);
                full = parse_ok_n(text, size);
                end = memmem(text, size, "</domain>", strlen("</domain>"));
                ck_assert_ptr_nonnull(end);
                root_end = (size_t) (end - text) + strlen("</domain>");

                for (size_t cut = 0; cut <= size; cut++) {
                        _cleanup_free_ char *prefix = exact_copy(text, cut), *msg = NULL;
                        _cleanup_(domain_xml_freep) DomainXml *d = NULL;
                        int r;

                        r = domain_xml_parse(prefix, cut, &d, &msg);
                        if (r == 0) {
                                ck_assert_msg(cut >= root_end, "%s: cut at %zu parses", samples[s].file, cut);
                                ck_assert_ptr_null(msg);
                                assert_same(d, full);
                                ok++;
                        } else {
                                ck_assert_msg(r == -EINVAL, "%s: cut at %zu: %d", samples[s].file, cut, r);
                                ck_assert_msg(msg && has_position(msg), "%s: cut at %zu: %s", samples[s].file, cut, msg);
                                ck_assert_ptr_null(d);
                        }
                        if (cut == root_end)
                                ck_assert_msg(r == 0, "%s: cut after </domain>: %s", samples[s].file, msg);
                }
                ck_assert_uint_ge(ok, 1);
        }
}
END_TEST

/* Each byte of a sample replaced by a few troublemakers: never a crash, a read past the end or a
 * leak; a failure always comes with a positioned message. */
START_TEST(test_mutated) {
        static const char troublemakers[] = { '<', '>', '&', '\'', '/', '\0', '\xc3' };
        _cleanup_free_ char *text = NULL;
        size_t size;

        text = read_sample("metadata-foreign.xml", &size);
        for (size_t i = 0; i < size; i++)
                for (size_t t = 0; t < ELEMENTSOF(troublemakers); t++) {
                        _cleanup_free_ char *copy = exact_copy(text, size), *msg = NULL;
                        _cleanup_(domain_xml_freep) DomainXml *d = NULL;
                        int r;

                        copy[i] = troublemakers[t];
                        r = domain_xml_parse(copy, size, &d, &msg);
                        if (r == 0)
                                ck_assert_ptr_nonnull(d);
                        else
                                ck_assert_msg(r == -EINVAL && msg && has_position(msg), "byte %zu = %#x: %d %s",
                                              i, (unsigned char) troublemakers[t], r, msg);
                }
}
END_TEST

/* Many devices with repetitions: no quadratic work, each once in the order of its first
 * appearance. */
START_TEST(test_many) {
        _cleanup_(domain_xml_freep) DomainXml *d = NULL;
        _cleanup_free_ char *xml = NULL;
        size_t n = 0, alloc = 100000 * 120 + 100;
        char expect[16];

        xml = malloc(alloc);
        ck_assert_ptr_nonnull(xml);
        n += (size_t) sprintf(xml, "<domain><devices>");
        for (unsigned i = 0; i < 100000; i++) {
                unsigned a = (i * 7919u) % 40000u;      /* 40000 distinct addresses, each 2 or 3 times */

                n += (size_t) sprintf(xml + n, "<hostdev mode='subsystem' type='pci'><source><address "
                                      "domain='%u' bus='%u' slot='%u' function='%u'/></source></hostdev>",
                                      a >> 16, (a >> 8) & 0xff, (a >> 3) & 0x1f, a & 7);
        }
        n += (size_t) sprintf(xml + n, "</devices></domain>");
        ck_assert_uint_lt(n, alloc);

        d = parse_ok_n(xml, n);
        ck_assert_uint_eq(d->n_pci, 40000);
        for (unsigned i = 0; i < 40000; i++) {
                unsigned a = (i * 7919u) % 40000u;

                snprintf(expect, sizeof(expect), "%04x:%02x:%02x.%x", a >> 16, (a >> 8) & 0xff, (a >> 3) & 0x1f, a & 7);
                ck_assert_str_eq(d->pci[i], expect);
        }
}
END_TEST

Suite *domain_xml_suite(void) {
        Suite *s = suite_create("domain-xml");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_samples);
        tcase_add_test(tc, test_paths);
        tcase_add_test(tc, test_name);
        tcase_add_test(tc, test_syntax_accepted);
        tcase_add_test(tc, test_bad);
        tcase_add_test(tc, test_arguments);
        suite_add_tcase(s, tc);

        tc = tcase_create("hostile");
        tcase_add_test(tc, test_size_limit);
        tcase_add_test(tc, test_depth);
        tcase_add_test(tc, test_entities);
        tcase_add_test(tc, test_truncated);
        tcase_add_test(tc, test_mutated);
        tcase_add_test(tc, test_many);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);

        return s;
}
