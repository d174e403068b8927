/* bus-helpers: what test-bus.c and test-bus-hostile.c share (bus-helpers.h). */

#include <check.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-device.h"
#include "bus-helpers.h"
#include "bus-manager.h"
#include "fileio.h"

int call(sd_bus *bus, char **ret_error, char **ret_message, sd_bus_message **ret_reply,
         const char *member, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &msg, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE, member);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(msg, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        r = sd_bus_call(bus, msg, 10 * USEC_PER_SEC, &error, &reply);
        if (ret_error)
                *ret_error = r < 0 && error.name ? strdup(error.name) : NULL;
        if (ret_message)
                *ret_message = r < 0 && error.message ? strdup(error.message) : NULL;
        if (ret_reply && r >= 0)
                *ret_reply = TAKE_PTR(reply);
        return r;
}

void expect_error(sd_bus *bus, const char *name, const char *member, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        ck_assert_int_ge(sd_bus_message_new_method_call(bus, &msg, BUS_NAME, BUS_MANAGER_PATH,
                                                         BUS_MANAGER_INTERFACE, member), 0);
        if (types) {
                va_start(ap, types);
                ck_assert_int_ge(sd_bus_message_appendv(msg, types, ap), 0);
                va_end(ap);
        }
        r = sd_bus_call(bus, msg, 10 * USEC_PER_SEC, &error, NULL);
        ck_assert_msg(r < 0 && sd_bus_error_has_name(&error, name), "%s: expected %s, got %d %s: %s", member, name,
                      r, error.name ?: "-", error.message ?: "-");
}

char *get_string(sd_bus *bus, const char *path, const char *interface, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;
        int r;

        r = sd_bus_get_property_string(bus, BUS_NAME, path, interface, property, &error, &s);
        ck_assert_msg(r >= 0, "%s: %s", property, error.message ?: strerror(-r));
        return s;
}

void expect_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                   const char *value) {
        _cleanup_free_ char *s = get_string(bus, path, interface, property);

        ck_assert_str_eq(s, value);
}

uint64_t get_u64(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t v = 0;

        ck_assert_int_ge(sd_bus_get_property_trivial(bus, BUS_NAME, path, BUS_DEVICE_INTERFACE, property, &error,
                                                     't', &v), 0);
        return v;
}

char **get_policy_errors(sd_bus *bus) {
        char **l = NULL;

        ck_assert_int_ge(sd_bus_get_property_strv(bus, BUS_NAME, BUS_MANAGER_PATH, BUS_MANAGER_INTERFACE,
                                                  "PolicyErrors", NULL, &l), 0);
        if (!l) {
                l = calloc(1, sizeof(char *));
                ck_assert_ptr_nonnull(l);
        }
        return l;
}

char *read_text_at(int root_fd, const char *path) {
        char *text = NULL;
        int r = read_file_at(root_fd, path, 16384, &text);

        ck_assert_msg(r >= 0, "%s: %s", path, strerror(-r));
        ck_assert_msg(text[0], "%s: empty", path);
        return text;
}
