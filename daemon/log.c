#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"

static LogTarget log_target = LOG_TARGET_STDERR;
int log_max_level = LOG_INFO;
static bool log_capturing;
static char log_last[2048];

static const char *const level_table[] = {
        [LOG_EMERG] = "emerg",
        [LOG_ALERT] = "alert",
        [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",
        [LOG_WARNING] = "warning",
        [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",
        [LOG_DEBUG] = "debug",
};

/* systemd's convention: $JOURNAL_STREAM is "DEVICE:INODE" of the stream it connected. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

void log_open(void) {
        log_target = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
}

void log_set_target(LogTarget t) {
        log_target = t;
}

LogTarget log_get_target(void) {
        return log_target;
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(level_table) / sizeof(level_table[0]); i++)
                if (strcmp(s, level_table[i]) == 0)
                        return (int) i;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

void log_capture(bool on) {
        log_capturing = on;
        log_last[0] = '\0';
}

const char *log_captured(void) {
        return log_last;
}

int log_internalv(int level, int error, const char *device, const char *file, int line,
                  const char *func, const char *format, va_list ap) {
        char msg[2048];
        int saved_errno = errno;

        if (error < 0)
                error = -error;
        if (level > log_max_level)
                return -error;

        /* %m prints the error passed in, not whatever errno happens to be. */
        errno = error;
        (void) vsnprintf(msg, sizeof(msg), format, ap);

        if (log_capturing) {
                /* a long message is cut: the return value is used to say truncation is fine */
                if (snprintf(log_last, sizeof(log_last), "%s%s%s", device ?: "", device ? ": " : "", msg) < 0)
                        log_last[0] = '\0';
        }
        else if (log_target == LOG_TARGET_JOURNAL) {
                char code_file[256], code_line[32];

                (void) snprintf(code_file, sizeof(code_file), "CODE_FILE=%s", file);
                (void) snprintf(code_line, sizeof(code_line), "CODE_LINE=%d", line);
                if (device)
                        (void) sd_journal_send_with_location(code_file, code_line, func,
                                                             "MESSAGE=%s: %s", device, msg,
                                                             "PRIORITY=%d", level,
                                                             "VFIOPM_DEVICE=%s", device,
                                                             error ? "ERRNO=%d" : NULL, error,
                                                             NULL);
                else
                        (void) sd_journal_send_with_location(code_file, code_line, func,
                                                             "MESSAGE=%s", msg,
                                                             "PRIORITY=%d", level,
                                                             error ? "ERRNO=%d" : NULL, error,
                                                             NULL);
        } else
                (void) fprintf(stderr, "%s%s%s\n", device ?: "", device ? ": " : "", msg);

        errno = saved_errno;
        return -error;
}

int log_internal(int level, int error, const char *device, const char *file, int line,
                 const char *func, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(level, error, device, file, line, func, format, ap);
        va_end(ap);
        return r;
}
