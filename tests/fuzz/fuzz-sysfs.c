/* What the daemon reads from sysfs and from its own records in /run, on any bytes. The first
 * input byte picks the reader:
 *   even: an attribute (sysfs.h): the text read is the file's less one trailing newline, a number
 *         read is what the text spells;
 *   odd:  a device's record of the originals (power-sysfs.h) left by a dead daemon: once the
 *         device is let go, its knobs hold values sysfs can hold. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "fixture.h"
#include "fuzz.h"
#include "power-sysfs.h"
#include "sysfs.h"

static void check_attr(int dir_fd, const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = NULL;
        size_t len = size;
        char buf[32];
        uint64_t u;
        unsigned h;
        int r;

        FUZZ_SETUP(fixture_write(dir_fd, "attr", data, size));
        if (len > 0 && data[len - 1] == '\n')
                len--;

        r = sysfs_read_attr(dir_fd, "attr", &text);
        if (r >= 0)
                FUZZ_CHECK(strlen(text) == len && memcmp(text, data, len) == 0);
        else
                FUZZ_CHECK(r == -EFBIG ? size > SYSFS_ATTR_MAX : r == -EBADMSG && memchr(data, 0, size));

        r = sysfs_read_u64(dir_fd, "attr", &u);
        if (r >= 0) {
                (void) snprintf(buf, sizeof(buf), "%" PRIu64, u);
                /* digits only, the same number (leading zeros aside) */
                FUZZ_CHECK(text && len > 0 && strspn(text, "0123456789") == len);
                FUZZ_CHECK(strtoull(text, NULL, 10) == u);
        }

        r = sysfs_read_hex(dir_fd, "attr", &h);
        if (r >= 0) {
                const char *digits = text && strncasecmp(text, "0x", 2) == 0 ? text + 2 : text;

                FUZZ_CHECK(digits && digits[0] && strspn(digits, "0123456789abcdefABCDEF") == strlen(digits));
                FUZZ_CHECK(strtoul(digits, NULL, 16) == h);
        }

        {
                SysfsAttr a = SYSFS_ATTR_NULL;

                r = sysfs_attr_read(&a, dir_fd, "attr", buf, sizeof(buf));
                if (r >= 0)
                        FUZZ_CHECK(len < sizeof(buf) && strlen(buf) == len && memcmp(buf, data, len) == 0);
                r = sysfs_attr_read_u64(&a, dir_fd, "attr", &u);
                if (r >= 0)
                        FUZZ_CHECK(text && strtoull(text, NULL, 10) == u);
                sysfs_attr_close(&a);
        }
}

static void check_record(int dev_fd, int record_fd, const uint8_t *data, size_t size, uint8_t pick) {
        _cleanup_free_ char *control = NULL, *d3cold = NULL;
        PowerSysfs p = {};

        FUZZ_SETUP(fixture_write_string(dev_fd, "power/control", pick & 2 ? "on\n" : "auto\n"));
        FUZZ_SETUP(fixture_write_string(dev_fd, "d3cold_allowed", pick & 4 ? "0\n" : "1\n"));
        FUZZ_SETUP(fixture_write(record_fd, "0000:01:00.0", data, size));

        power_sysfs_init(&p, dev_fd, record_fd, "0000:01:00.0", NULL, NULL);
        /* what the daemon may do to it before letting it go */
        if (pick & 8)
                (void) power_sysfs_control_on(&p);
        if (pick & 16)
                (void) power_sysfs_d3cold_write(&p, (pick >> 5) % _POLICY_D3COLD_MAX);
        power_sysfs_done(&p);

        FUZZ_CHECK(sysfs_read_attr(dev_fd, "power/control", &control) >= 0);
        FUZZ_CHECK(sysfs_read_attr(dev_fd, "d3cold_allowed", &d3cold) >= 0);
        FUZZ_CHECK(strcmp(control, "auto") == 0 || strcmp(control, "on") == 0);
        FUZZ_CHECK(strcmp(d3cold, "0") == 0 || strcmp(d3cold, "1") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(fixture_tmp_freep) FixtureTmp *dev = NULL, *records = NULL;
        uint8_t pick = fuzz_take_byte(&data, &size);

        if (size > 2 * SYSFS_ATTR_MAX)
                return 0;
        FUZZ_SETUP(fixture_tmp_new(NULL, &dev));
        if (!(pick & 1))
                check_attr(dev->fd, data, size);
        else {
                FUZZ_SETUP(fixture_tmp_new(NULL, &records));
                check_record(dev->fd, records->fd, data, size, pick);
        }
        return 0;
}
