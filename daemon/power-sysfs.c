#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "power-sysfs.h"
#include "sysfs.h"

#define RUNTIME_SUSPENDED_TIME "power/runtime_suspended_time"

/* ---- the record of the originals -------------------------------------------------------- */

/* One file per device, named after it, in the record directory: the originals of the attributes
 * changed (or about to be), one "attribute=value" line each. It outlives the daemon, so that
 * the next one puts back what this one found rather than what it left. */

static bool record_name_ok(const char *name) {
        /* a kernel name has no '/'; a dot name could be "..", or one of our temporary files */
        return name[0] != '\0' && name[0] != '.' && !strchr(name, '/') && strlen(name) <= NAME_MAX - 32;
}

static bool record_enabled(const PowerSysfs *p) {
        /* no name: never set up */
        return p->name && p->record_dir_fd >= 0 && record_name_ok(p->name);
}

static void record_report(PowerSysfs *p, const char *what, int error) {
        if (p->record_failed)
                p->record_failed(p->userdata, what, error);
}

static bool control_value_ok(const char *v) {
        return strcmp(v, "auto") == 0 || strcmp(v, "on") == 0;
}

static bool d3cold_value_ok(const char *v) {
        return strcmp(v, "0") == 0 || strcmp(v, "1") == 0;
}

/* Parses text into the two originals (NULL: not recorded). Anything but known attributes with
 * values sysfs can hold, each at most once, is -EBADMSG. */
static int record_parse(const char *text, char **ret_control, char **ret_d3cold) {
        _cleanup_free_ char *control = NULL, *d3cold = NULL;
        const char *p = text;

        while (*p) {
                const char *eol = strchr(p, '\n'), *eq;
                char **slot;
                size_t klen;

                if (!eol)
                        return -EBADMSG;        /* cut short */
                eq = memchr(p, '=', (size_t) (eol - p));
                if (!eq)
                        return -EBADMSG;
                klen = (size_t) (eq - p);
                if (klen == strlen(POWER_SYSFS_CONTROL) && strncmp(p, POWER_SYSFS_CONTROL, klen) == 0)
                        slot = &control;
                else if (klen == strlen(POWER_SYSFS_D3COLD) && strncmp(p, POWER_SYSFS_D3COLD, klen) == 0)
                        slot = &d3cold;
                else
                        return -EBADMSG;
                if (*slot)
                        return -EBADMSG;
                *slot = strndup(eq + 1, (size_t) (eol - eq - 1));
                if (!*slot)
                        return -ENOMEM;
                if (slot == &control ? !control_value_ok(control) : !d3cold_value_ok(d3cold))
                        return -EBADMSG;
                p = eol + 1;
        }
        if (!control && !d3cold)
                return -EBADMSG;
        *ret_control = TAKE_PTR(control);
        *ret_d3cold = TAKE_PTR(d3cold);
        return 0;
}

/* Reads the device's record: 0 and both NULL when there is none. */
static int record_read(PowerSysfs *p, char **ret_control, char **ret_d3cold) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_file_at(p->record_dir_fd, p->name, 254, &text);
        if (r == -ENOENT) {
                *ret_control = *ret_d3cold = NULL;
                return 0;
        }
        if (r == -EFBIG)
                return -EBADMSG;        /* far more than a record holds */
        if (r < 0)
                return r;
        return record_parse(text, ret_control, ret_d3cold);
}

/* Replaces the record with text, atomically (fileio.h). */
static int record_write(PowerSysfs *p, const char *text) {
        return write_file_atomic(p->record_dir_fd, p->name, text, NULL);
}

/* Makes the record hold the originals of the attributes that differ from them now, and of
 * those named about to be changed (control, d3cold); removes it when none does. Called before
 * a write that changes an attribute and after one that puts it back. A failure is reported
 * (record_failed) and changes nothing else: the originals are still in memory. */
static void record_sync(PowerSysfs *p, bool control, bool d3cold) {
        char text[128];
        int r;

        if (!record_enabled(p))
                return;
        control = p->saved_control && (control || p->control_written);
        d3cold = p->saved_d3cold && (d3cold || strcmp(p->d3cold_now, p->saved_d3cold) != 0);
        if (control == p->record_control && d3cold == p->record_d3cold && !p->record_stray)
                return;

        if (!control && !d3cold) {
                if (unlinkat(p->record_dir_fd, p->name, 0) < 0 && errno != ENOENT) {
                        record_report(p, "remove", -errno);
                        return;
                }
        } else {
                (void) snprintf(text, sizeof(text), "%s%s%s%s%s%s",
                                control ? POWER_SYSFS_CONTROL "=" : "", control ? p->saved_control : "",
                                control ? "\n" : "",
                                d3cold ? POWER_SYSFS_D3COLD "=" : "", d3cold ? p->saved_d3cold : "",
                                d3cold ? "\n" : "");
                r = record_write(p, text);
                if (r < 0) {
                        record_report(p, "write", r);
                        return;
                }
        }
        p->record_control = control;
        p->record_d3cold = d3cold;
        p->record_stray = false;
}

/* power_sysfs_init(): a record left by an earlier daemon gives the originals, and says what it
 * may have changed: put back by the first decision (or by done) unless the policy wants it so. */
static void record_adopt(PowerSysfs *p) {
        _cleanup_free_ char *control = NULL, *d3cold = NULL, *control_now = NULL, *d3cold_now = NULL;
        int r;

        if (!record_enabled(p))
                return;
        r = record_read(p, &control, &d3cold);
        if (r < 0) {
                /* ignored, but still there: removed or replaced at the first sync */
                p->record_stray = true;
                record_report(p, "read", r);
                return;
        }
        /* what the file holds; the first sync makes it say what is true now */
        p->record_control = control;
        p->record_d3cold = d3cold;

        if (control) {
                r = sysfs_read_attr(p->dir_fd, POWER_SYSFS_CONTROL, &control_now);
                if (r != -ENOENT) {
                        /* unreadable now: written back regardless */
                        p->control_written = r < 0 || strcmp(control_now, control) != 0;
                        p->saved_control = TAKE_PTR(control);
                }
        }
        if (d3cold) {
                r = sysfs_read_attr(p->dir_fd, POWER_SYSFS_D3COLD, &d3cold_now);
                if (r != -ENOENT) {
                        if (r >= 0 && strlen(d3cold_now) < sizeof(p->d3cold_now))
                                strcpy(p->d3cold_now, d3cold_now);
                        else
                                p->d3cold_now[0] = '\0';
                        p->saved_d3cold = TAKE_PTR(d3cold);
                }
        }
}

void power_sysfs_init(PowerSysfs *p, int dir_fd, int record_dir_fd, const char *name,
                      PowerSysfsRecordFailed record_failed, void *userdata) {
        *p = (PowerSysfs) {
                .dir_fd = dir_fd,
                .record_dir_fd = record_dir_fd,
                .name = name,
                .record_failed = record_failed,
                .userdata = userdata,
                .suspended_time = SYSFS_ATTR_NULL,
        };
        record_adopt(p);
}

void power_sysfs_done(PowerSysfs *p) {
        (void) power_sysfs_control_restore(p);  /* the record forgets power/control once it is back */
        if (p->saved_d3cold && strcmp(p->saved_d3cold, p->d3cold_now) != 0) {
                int r = sysfs_write_attr(p->dir_fd, POWER_SYSFS_D3COLD, p->saved_d3cold);

                if (r >= 0 || r == -ENOENT)
                        strcpy(p->d3cold_now, p->saved_d3cold);
                /* else kept in the record: the next daemon to take the device tries again */
        }
        record_sync(p, false, false);
        power_sysfs_leave(p);
}

void power_sysfs_leave(PowerSysfs *p) {
        free(p->saved_control);
        p->saved_control = NULL;
        free(p->saved_d3cold);
        p->saved_d3cold = NULL;
        sysfs_attr_close(&p->suspended_time);
}

/* ---- power/control ---------------------------------------------------------------------- */

/* A device without the attribute has no runtime PM to keep off: nothing to do. */
int power_sysfs_control_on(PowerSysfs *p) {
        int r;

        if (!p->saved_control) {
                _cleanup_free_ char *v = NULL;

                r = sysfs_read_attr(p->dir_fd, POWER_SYSFS_CONTROL, &v);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                p->saved_control = TAKE_PTR(v);
                p->control_written = false;
        }
        if (p->control_written || strcmp(p->saved_control, "on") == 0)
                return 0;
        record_sync(p, true, false);
        r = sysfs_write_attr(p->dir_fd, POWER_SYSFS_CONTROL, "on");
        if (r < 0)
                return r;
        p->control_written = true;
        return 0;
}

int power_sysfs_control_restore(PowerSysfs *p) {
        int r;

        if (!p->saved_control)
                return 0;
        if (p->control_written) {
                r = sysfs_write_attr(p->dir_fd, POWER_SYSFS_CONTROL, p->saved_control);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        free(p->saved_control);
        p->saved_control = NULL;
        p->control_written = false;
        record_sync(p, false, false);
        return 0;
}

/* ---- d3cold_allowed --------------------------------------------------------------------- */

/* Reads d3cold_allowed once, when the policy first sets d3cold. A device without it (platform
 * devices) is left alone silently. */
static int d3cold_load(PowerSysfs *p, PolicyD3cold want) {
        _cleanup_free_ char *v = NULL;
        int r;

        if (p->saved_d3cold || (want != POLICY_D3COLD_ALLOW && want != POLICY_D3COLD_DENY))
                return 0;
        r = sysfs_read_attr(p->dir_fd, POWER_SYSFS_D3COLD, &v);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (strlen(v) >= sizeof(p->d3cold_now))
                return -EBADMSG;
        strcpy(p->d3cold_now, v);
        p->saved_d3cold = TAKE_PTR(v);
        return 0;
}

/* What d3cold_allowed should hold; NULL: nothing to do (untouched, or no such attribute). */
static const char *d3cold_target(const PowerSysfs *p, PolicyD3cold want) {
        if (!p->saved_d3cold)
                return NULL;
        switch (want) {
        case POLICY_D3COLD_ALLOW:
                return "1";
        case POLICY_D3COLD_DENY:
                return "0";
        case POLICY_D3COLD_LEAVE:
        case _POLICY_D3COLD_MAX:
        case _POLICY_D3COLD_INVALID:
                break;
        }
        return p->saved_d3cold;         /* null: back to what it was */
}

int power_sysfs_d3cold_check(PowerSysfs *p, PolicyD3cold want) {
        const char *t;
        int r;

        r = d3cold_load(p, want);
        if (r < 0)
                return r;
        t = d3cold_target(p, want);
        return t && strcmp(t, p->d3cold_now) != 0;
}

/* Once restored (policy null), forgets the saved value. */
int power_sysfs_d3cold_write(PowerSysfs *p, PolicyD3cold want) {
        const char *t = d3cold_target(p, want);
        int r;

        if (!t)
                return 0;
        if (strcmp(t, p->d3cold_now) != 0) {
                record_sync(p, false, strcmp(t, p->saved_d3cold) != 0);
                r = sysfs_write_attr(p->dir_fd, POWER_SYSFS_D3COLD, t);
                if (r == -ENOENT) {
                        /* gone meanwhile: nothing to restore either */
                        free(p->saved_d3cold);
                        p->saved_d3cold = NULL;
                        record_sync(p, false, false);
                        return 0;
                }
                if (r < 0)
                        return r;
                strcpy(p->d3cold_now, t);
        }
        if (t == p->saved_d3cold) {
                free(p->saved_d3cold);
                p->saved_d3cold = NULL;
        }
        record_sync(p, false, false);
        return 0;
}

/* ---- residency -------------------------------------------------------------------------- */

int power_sysfs_suspended_msec(PowerSysfs *p, uint64_t *ret) {
        return sysfs_attr_read_u64(&p->suspended_time, p->dir_fd, RUNTIME_SUSPENDED_TIME, ret);
}
