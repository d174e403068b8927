#pragma once

/* log: where messages go. To the journal with structured fields (VFIOPM_DEVICE=) when stderr is
 * connected to it (systemd sets $JOURNAL_STREAM), else to stderr as "device: message". Only the
 * edges log (main, the loop, bus handlers, the udev monitor, pm transitions through the
 * manager); modules return -errno. */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

typedef enum LogTarget {
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

/* Picks the journal if stderr is the stream systemd's $JOURNAL_STREAM names, else stderr. */
void log_open(void);
void log_set_target(LogTarget t);
LogTarget log_get_target(void);

/* syslog levels; "emerg" … "debug" or 0 … 7. */
int log_level_from_string(const char *s);
void log_set_max_level(int level);
int log_get_max_level(void);

/* Logs (if level ≤ the max level) and returns -|error| (0 if error is 0), so that
 * "return log_error_errno(r, "Failed to …: %m");" works. %m prints error's message. device may be
 * NULL. */
int log_internal(int level, int error, const char *device, const char *file, int line,
                 const char *func, const char *format, ...) __attribute__((format(printf, 7, 8)));
int log_internalv(int level, int error, const char *device, const char *file, int line,
                  const char *func, const char *format, va_list ap) __attribute__((format(printf, 7, 0)));

/* Read by log_full_errno() only, which skips the call (and its arguments) above it: a debug line
 * on the wake path costs one comparison. Set it with log_set_max_level(). */
extern int log_max_level;

static inline int log_skipped(int error) {
        return error < 0 ? error : -error;
}

#define log_full_errno(level, error, device, ...)                                                  \
        ((level) > log_max_level ? log_skipped(error) :                                             \
         log_internal((level), (error), (device), __FILE__, __LINE__, __func__, __VA_ARGS__))

#define log_debug(...)   log_full_errno(LOG_DEBUG, 0, NULL, __VA_ARGS__)
#define log_info(...)    log_full_errno(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_notice(...)  log_full_errno(LOG_NOTICE, 0, NULL, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_error(...)   log_full_errno(LOG_ERR, 0, NULL, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, (e), NULL, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), NULL, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, (e), NULL, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

/* The same with VFIOPM_DEVICE=name. */
#define log_device_debug(d, ...)   log_full_errno(LOG_DEBUG, 0, (d), __VA_ARGS__)
#define log_device_info(d, ...)    log_full_errno(LOG_INFO, 0, (d), __VA_ARGS__)
#define log_device_warning(d, ...) log_full_errno(LOG_WARNING, 0, (d), __VA_ARGS__)
#define log_device_error(d, ...)   log_full_errno(LOG_ERR, 0, (d), __VA_ARGS__)
#define log_device_warning_errno(d, e, ...) log_full_errno(LOG_WARNING, (e), (d), __VA_ARGS__)
#define log_device_error_errno(d, e, ...)   log_full_errno(LOG_ERR, (e), (d), __VA_ARGS__)

/* For tests: what the last message would have printed on stderr, when capture is on. */
void log_capture(bool on);
const char *log_captured(void);
