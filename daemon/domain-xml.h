#pragma once

#include <stddef.h>

#include "cleanup.h"

/* The PCI devices a libvirt domain passes through, read from its XML: what libvirt writes to
 * /etc/libvirt/hooks/qemu's stdin, or "virsh dumpxml" prints. libxml2 parses it (libvirt writes
 * it with libxml2), two XPath expressions pick the devices. Never logs: every problem comes back
 * as a message for the caller to log.
 *
 * A device is the <address> directly inside the <source> of
 *     /domain/devices/hostdev[@mode='subsystem'][@type='pci']              (any address type)
 *     /domain/devices/interface[@type='hostdev']     only <address type='pci'>  (SR-IOV VFs)
 * as XPath 1.0 sees it: unprefixed names outside any default namespace (xmlns="…"), attribute
 * values compared after entity decoding. Everything else is skipped: the guest-side <address>
 * directly below <hostdev>/<interface>, usb, scsi, mdev and mode='capabilities' hostdevs, other
 * interface types. So an <interface type='network'> on a network that is a pool of VFs counts
 * only where libvirt writes the VF it picked as <interface type='hostdev'>: at "prepare begin" it
 * has picked none yet. managed='yes' or 'no' does not matter.
 *
 * The attributes domain, bus, slot and function are numbers as libvirt's strtoul(…, 0) reads
 * them, "0x1f" hex, "017" octal, "31" decimal (no sign, no blanks); domain is 0 if missing,
 * bus, slot and function are required (libvirt itself always writes all four). Limits:
 * domain 0xffff, bus 0xff, slot 0x1f, function 7.
 *
 * The input must be well-formed XML 1.0 as libxml2 reads it (the encoding its declaration names,
 * UTF-8 without one), with a root element <domain> in no namespace. Refused besides: a DOCTYPE
 * (so no entity but &lt; &gt; &amp; &apos; &quot; and character references, and nothing is ever
 * loaded: libxml2 runs without network access and without substituting entities), a NUL byte,
 * nesting deeper than DOMAIN_XML_DEPTH_MAX elements, more than DOMAIN_XML_SIZE_MAX bytes.
 *
 * Messages take the form "LINE:COLUMN: reason" (libxml2's reason, LINE and COLUMN from 1), or
 * "LINE: reason" for what is wrong in a well-formed document (libxml2 keeps an element's line,
 * not its column), e.g.
 *     "1:18: Opening and ending tag mismatch: domain line 1 and domian"
 *     "14: invalid PCI address: bus='0x100' is out of range (at most 0xff)"
 * except for a too large input, which has no position. */

/* Larger inputs are refused before they are parsed; a domain with hundreds of devices is well
 * under 1 MiB. */
#define DOMAIN_XML_SIZE_MAX (16 * 1024 * 1024)

/* Deepest element nesting accepted: libxml2's own limit without XML_PARSE_HUGE (256 open
 * elements below the one it is reading). libvirt's documents need 6 or 7. */
#define DOMAIN_XML_DEPTH_MAX 257

typedef struct DomainXml {
        char *name;             /* text of the first /domain/name, entities decoded; NULL if absent */
        char **pci;             /* NULL-terminated: "0000:0a:00.1" as sysfs spells it (lower case hex),
                                 * each device once, in the order of its first appearance */
        size_t n_pci;
} DomainXml;

/* Parses size bytes of xml (need not be NUL-terminated; nothing past size is read). With ret
 * NULL, only validates. Returns 0 and the result, or a negative errno and, except for -ENOMEM
 * and a NULL xml with size > 0 (-EINVAL), a message in *ret_error (if non-NULL; free() it):
 * -E2BIG more than DOMAIN_XML_SIZE_MAX bytes, -EINVAL anything else wrong with the input. Nothing
 * comes back for invalid input: a document is read as a whole or not at all. */
int domain_xml_parse(const char *xml, size_t size, DomainXml **ret, char **ret_error);

DomainXml *domain_xml_free(DomainXml *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(DomainXml *, domain_xml_free)
