#pragma once

#include <stddef.h>

#include "cleanup.h"

/* The PCI devices a libvirt domain passes through, read from its XML: what libvirt writes to
 * /etc/libvirt/hooks/qemu's stdin, or "virsh dumpxml" prints. Never logs: every problem comes
 * back as a message for the caller to log.
 *
 * A device is the <address> directly inside the <source> of
 *     /domain/devices/hostdev[@mode='subsystem'][@type='pci']              (any address type)
 *     /domain/devices/interface[@type='hostdev']     only <address type='pci'>  (SR-IOV VFs)
 * as XPath 1.0 sees it: unprefixed names outside any default namespace (xmlns="…"), attribute
 * values compared after entity decoding. Everything else is skipped: the guest-side <address>
 * directly below <hostdev>/<interface>, usb, scsi, mdev and mode='capabilities' hostdevs, other
 * interface types. So an <interface type='network'> on a network that is a pool of VFs counts
 * only where libvirt writes the VF it picked as <interface type='hostdev'>: at "prepare begin" it
 * has picked none yet.
 *
 * The attributes domain, bus, slot and function are numbers as libvirt's strtoul(…, 0) reads
 * them, "0x1f" hex, "017" octal, "31" decimal (no sign, no blanks); domain is 0 if missing,
 * bus, slot and function are required (libvirt itself always writes all four). Limits:
 * domain 0xffff, bus 0xff, slot 0x1f, function 7.
 *
 * The input must be well-formed XML 1.0 in UTF-8: an optional UTF-8 BOM and XML declaration
 * (version 1.x, encoding UTF-8 if given), comments, processing instructions, CDATA sections,
 * namespaced elements and foreign content anywhere (their names are not checked against
 * declared prefixes). Refused: a DOCTYPE (so no entity but &lt; &gt; &amp; &apos; &quot; and
 * character references), a root element other than <domain> or with a default namespace, NUL
 * and other characters XML forbids, invalid UTF-8, duplicate attributes, nesting deeper than
 * DOMAIN_XML_DEPTH_MAX elements, more than DOMAIN_XML_SIZE_MAX bytes.
 *
 * Messages take the form "LINE:COLUMN: reason", LINE and COLUMN from 1, COLUMN in characters
 * (UTF-8 code points, a tab is one), e.g.
 *     "14:18: invalid PCI address: bus='0x100' is out of range (at most 0xff)"
 *     "9:7: end tag </source> does not match <address> opened at 8:9"
 *     "30:1: unexpected end of input, <devices> opened at 12:3 is not closed"
 * except for a too large input, which has no position. */

/* Larger inputs are refused before they are scanned; a domain with hundreds of devices is well
 * under 1 MiB. */
#define DOMAIN_XML_SIZE_MAX (16 * 1024 * 1024)

/* Deepest element nesting accepted; libvirt's own documents need 6 or 7. */
#define DOMAIN_XML_DEPTH_MAX 256

typedef struct DomainXml {
        char *name;             /* text of the first /domain/name, entities decoded; NULL if absent */
        char **pci;             /* NULL-terminated: "0000:0a:00.1" as sysfs spells it (lower case hex),
                                 * each device once, in the order of its first appearance */
        size_t n_pci;
} DomainXml;

/* Scans size bytes of xml (need not be NUL-terminated; nothing past size is read). With ret
 * NULL, only validates. Returns 0 and the result, or a negative errno and, except for -ENOMEM
 * and a NULL xml with size > 0 (-EINVAL), a message in *ret_error (if non-NULL; free() it):
 * -E2BIG more than DOMAIN_XML_SIZE_MAX bytes, -EINVAL anything else wrong with the input. Nothing
 * comes back for invalid input: a document is read as a whole or not at all. */
int domain_xml_parse(const char *xml, size_t size, DomainXml **ret, char **ret_error);

DomainXml *domain_xml_free(DomainXml *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(DomainXml *, domain_xml_free)
