/* domain_xml_parse() (domain-xml.h) on any bytes: what libvirtd pipes into the hook. Either the
 * devices, each a PCI address as sysfs spells it and within its limits, each once, or an error
 * with its message; validating alone agrees. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "domain-xml.h"
#include "fuzz.h"

static void check_address(const char *a) {
        unsigned domain, bus, slot, function;
        char again[16];
        int n = -1;

        FUZZ_CHECK(strlen(a) == 12 && strspn(a, "0123456789abcdef:.") == 12);
        FUZZ_CHECK(sscanf(a, "%4x:%2x:%2x.%1x%n", &domain, &bus, &slot, &function, &n) == 4 && n == 12);
        FUZZ_CHECK(slot <= 0x1f && function <= 7);
        (void) snprintf(again, sizeof(again), "%04x:%02x:%02x.%x", domain, bus, slot, function);
        FUZZ_CHECK(strcmp(again, a) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(domain_xml_freep) DomainXml *d = NULL;
        _cleanup_free_ char *error = NULL, *error2 = NULL;
        int r, r2;

        r = domain_xml_parse((const char *) data, size, &d, &error);
        if (r < 0) {
                FUZZ_CHECK(!d);
                FUZZ_CHECK(r == -ENOMEM || r == -E2BIG || r == -EINVAL);
                FUZZ_CHECK(r == -ENOMEM || (error && error[0]));
        } else {
                size_t n = 0;

                FUZZ_CHECK(r == 0 && d && !error && d->pci);
                for (; d->pci[n]; n++) {
                        check_address(d->pci[n]);
                        for (size_t j = 0; j < n; j++)
                                FUZZ_CHECK(strcmp(d->pci[j], d->pci[n]) != 0);
                }
                FUZZ_CHECK(n == d->n_pci);
        }

        r2 = domain_xml_parse((const char *) data, size, NULL, &error2);
        FUZZ_CHECK(r2 == r);
        FUZZ_CHECK((!error && !error2) || (error && error2 && strcmp(error, error2) == 0));
        return 0;
}
