/* vfiopmd: the command line, and the only place that exits. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "bus-manager.h"
#include "device.h"
#include "log.h"
#include "manager.h"
#include "policy-file.h"
#include "policy-set.h"
#include "strv.h"
#include "udev-monitor.h"

typedef enum BusKind {
        BUS_SYSTEM,
        BUS_SESSION,
        BUS_NONE,
        _BUS_MAX,
        _BUS_INVALID = -EINVAL,
} BusKind;

static const char *const bus_table[_BUS_MAX] = {
        [BUS_SYSTEM] = "system",
        [BUS_SESSION] = "session",
        [BUS_NONE] = "none",
};

static BusKind bus_from_string(const char *s) {
        for (int i = 0; i < _BUS_MAX; i++)
                if (strcmp(s, bus_table[i]) == 0)
                        return (BusKind) i;
        return _BUS_INVALID;
}

static char *arg_policy_dirs;
static BusKind arg_bus = BUS_SYSTEM;
static bool arg_check_config;

static void help(void) {
        printf("vfiopmd [OPTIONS]\n\n"
               "Host-side power policy for VFIO devices.\n\n"
               "  --policy-dirs DIRS   policy directories, ':'-separated (default %s)\n"
               "  --bus system|session|none\n"
               "                       where to offer the org.vfiopm1 D-Bus API (default system)\n"
               "  --check-config       validate the policy files, print every present VFIO device's\n"
               "                       effective policy, exit 0 if all files are valid, 1 if not\n"
               "  --log-level LEVEL    emerg … debug, or 0 … 7 (default info)\n"
               "  --version            print the version\n"
               "  --help               print this help\n", POLICY_DIRS_DEFAULT);
}

/* 0: go on; 1: done, exit 0; -1: usage error, exit 2 */
static int parse_argv(int argc, char *argv[]) {
        enum { ARG_POLICY_DIRS = 0x100, ARG_BUS, ARG_CHECK_CONFIG, ARG_LOG_LEVEL, ARG_VERSION, ARG_HELP };
        static const struct option options[] = {
                { "policy-dirs", required_argument, NULL, ARG_POLICY_DIRS },
                { "bus", required_argument, NULL, ARG_BUS },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, ARG_HELP },
                {}
        };
        int c, level;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_POLICY_DIRS:
                        arg_policy_dirs = optarg;
                        break;
                case ARG_BUS:
                        arg_bus = bus_from_string(optarg);
                        if (arg_bus < 0) {
                                fprintf(stderr, "vfiopmd: --bus takes system, session or none, not '%s'\n", optarg);
                                return -1;
                        }
                        break;
                case ARG_CHECK_CONFIG:
                        arg_check_config = true;
                        break;
                case ARG_LOG_LEVEL:
                        level = log_level_from_string(optarg);
                        if (level < 0) {
                                fprintf(stderr, "vfiopmd: --log-level takes emerg … debug or 0 … 7, not '%s'\n", optarg);
                                return -1;
                        }
                        log_set_max_level(level);
                        break;
                case ARG_VERSION:
                        printf("vfiopmd %s\n", PACKAGE_VERSION);
                        return 1;
                case ARG_HELP:
                        help();
                        return 1;
                default:
                        return -1;
                }

        if (optind < argc) {
                fprintf(stderr, "vfiopmd: unexpected argument '%s'\n", argv[optind]);
                return -1;
        }
        return 0;
}

/* --policy-dirs with relative entries made absolute, so that every directory is opened below the
 * root dir fd. */
static int policy_dirs(char ***ret) {
        _cleanup_free_ char *abs = NULL;
        char cwd[PATH_MAX];
        size_t size = 0;
        FILE *f;

        if (!arg_policy_dirs)
                return policy_dirs_from_string(POLICY_DIRS_DEFAULT, ret);
        if (!getcwd(cwd, sizeof(cwd)))
                return -errno;
        f = open_memstream(&abs, &size);
        if (!f)
                return -ENOMEM;
        for (const char *p = arg_policy_dirs; *p;) {
                size_t n = strcspn(p, ":");

                if (p != arg_policy_dirs)
                        fputc(':', f);
                if (n > 0 && *p != '/')
                        fprintf(f, "%s/", cwd);
                fwrite(p, 1, n, f);
                p += n;
                if (*p == ':') {
                        p++;
                        if (!*p)
                                fputc(':', f);  /* keep a trailing empty element: an error */
                }
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        return policy_dirs_from_string(abs, ret);
}

typedef struct CheckConfig {
        PolicySet *set;
        int sysfs_fd;
        int n_devices;
} CheckConfig;

static void check_config_device(void *userdata, DeviceEvent event, const char *bus, const char *name) {
        CheckConfig *c = userdata;
        _cleanup_(device_info_freep) DeviceInfo *info = NULL;
        _cleanup_(effective_policy_freep) EffectivePolicy *p = NULL;
        _cleanup_free_ char *json = NULL;
        DeviceFacts facts;
        int r;

        r = device_info_read(c->sysfs_fd, bus, name, &info);
        if (r < 0) {
                log_device_warning_errno(name, r, "Failed to read the device's sysfs attributes, ignoring: %m");
                return;
        }
        device_info_facts(info, &facts);
        r = policy_set_evaluate(c->set, &facts, &p);
        if (r >= 0)
                r = effective_policy_to_json(p, &json);
        if (r < 0) {
                log_device_error_errno(name, r, "Failed to evaluate the policy: %m");
                return;
        }
        printf("%s %s\n", name, json);
        c->n_devices++;
}

static int check_config(char **dirs, int root_fd, int sysfs_fd) {
        _cleanup_(policy_set_freep) PolicySet *set = NULL;
        CheckConfig c = { .sysfs_fd = sysfs_fd };
        int r, errors;

        r = policy_set_new(&set);
        if (r < 0) {
                log_oom();
                return EXIT_FAILURE;
        }
        errors = policy_set_load(set, root_fd, dirs);
        if (errors < 0) {
                log_error_errno(errors, "Failed to load the policy: %m");
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < set->n_errors; i++)
                fprintf(stderr, "%s\n", set->errors[i]);
        for (size_t i = 0; i < set->n_entries; i++)
                if (!set->entries[i].error)
                        fprintf(stderr, "%s: %s\n", set->entries[i].path,
                                set->entries[i].masked ? "masked" : "ok");

        c.set = set;
        r = device_enumerate_vfio(check_config_device, &c);
        if (r < 0)
                log_warning_errno(r, "Failed to enumerate VFIO devices: %m");
        fprintf(stderr, "%zu policy file%s, %d invalid; %d VFIO device%s\n", set->n_entries,
                set->n_entries == 1 ? "" : "s", errors, c.n_devices, c.n_devices == 1 ? "" : "s");
        return errors > 0 ? 1 : 0;
}

static int open_dir(const char *path) {
        int fd = open(path, O_RDONLY|O_DIRECTORY|O_CLOEXEC);

        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", path);
        return fd;
}

/* A held device takes about five fds (its sysfs directory, the device, its group, the wake-up and
 * request eventfds): the default soft limit of 1024, systemd's for services too, ends at about 180
 * devices. The hard
 * limit (systemd's default: 524288) is ours to take; select() is used nowhere. The manager says
 * so when even that is too low for the devices present. */
static void raise_fd_limit(void) {
        struct rlimit rl;
        rlim_t old;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
                log_warning_errno(-errno, "Failed to read the limit of open files, ignoring: %m");
                return;
        }
        if (rl.rlim_cur >= rl.rlim_max)
                return;
        old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                log_warning_errno(-errno, "Failed to raise the limit of open files from %ju to %ju, ignoring: %m",
                                  (uintmax_t) old, (uintmax_t) rl.rlim_max);
                return;
        }
        log_debug("Raised the limit of open files from %ju to %ju", (uintmax_t) old, (uintmax_t) rl.rlim_max);
}

int main(int argc, char *argv[]) {
        _cleanup_(strv_freep) char **dirs = NULL;
        _cleanup_close_ int root_fd = -EBADF, sysfs_fd = -EBADF, dev_fd = -EBADF;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(bus_manager_freep) BusManager *bus_manager = NULL;     /* before m */
        int r;

        /* A fixed mmap threshold (setting it also stops glibc from raising it after the first
         * large free): a buffer above it — a GetManagedObjects reply for 1,000 devices is ~800 KB
         * — is a mapping of its own, given back when freed, not heap the daemon keeps resident
         * after the call (VmRSS 6.9 → 8.6 MiB after one `vfiopmctl --json status` without). */
        (void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        log_open();
        r = parse_argv(argc, argv);
        if (r != 0)
                return r > 0 ? EXIT_SUCCESS : 2;

        r = policy_dirs(&dirs);
        if (r < 0) {
                fprintf(stderr, "vfiopmd: --policy-dirs '%s': %s\n", arg_policy_dirs ?: POLICY_DIRS_DEFAULT,
                        r == -EINVAL ? "an empty directory name" : strerror(-r));
                return 2;
        }

        root_fd = open_dir("/");
        sysfs_fd = open_dir("/sys");
        if (root_fd < 0 || sysfs_fd < 0)
                return EXIT_FAILURE;

        if (arg_check_config)
                return check_config(dirs, root_fd, sysfs_fd);

        dev_fd = open_dir("/dev");
        if (dev_fd < 0)
                return EXIT_FAILURE;
        raise_fd_limit();

        r = manager_new(&(ManagerConfig) {
                .policy_dirs = dirs,
                .root_fd = root_fd,
                .sysfs_fd = sysfs_fd,
                .dev_fd = dev_fd,
                .vfio_path = _VFIO_PATH_INVALID,
        }, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                return EXIT_FAILURE;
        }

        /* the objects exist before the manager starts (its first decisions are announced), the
         * name is taken once every present device is known */
        if (arg_bus != BUS_NONE) {
                r = arg_bus == BUS_SYSTEM ? sd_bus_open_system(&bus) : sd_bus_open_user(&bus);
                if (r < 0) {
                        log_error_errno(r, "Failed to connect to the %s bus: %m", bus_table[arg_bus]);
                        return EXIT_FAILURE;
                }
                r = bus_manager_new(m, bus, &bus_manager);
                if (r < 0) {
                        log_error_errno(r, "Failed to offer the D-Bus objects: %m");
                        return EXIT_FAILURE;
                }
        }
        r = manager_start(m);
        if (r < 0)
                return EXIT_FAILURE;
        /* Setting up every device went through many short-lived buffers (sysfs reads, udev
         * records, log lines) between the long-lived ones: give the free pages back, so that
         * what the daemon keeps resident is what it holds (about 1,000 devices in a few MiB). */
        (void) malloc_trim(0);
        if (bus_manager) {
                r = bus_manager_request_name(bus_manager);
                if (r < 0) {
                        log_error_errno(r, "Failed to take the name %s on the %s bus: %m", BUS_NAME,
                                        bus_table[arg_bus]);
                        return EXIT_FAILURE;
                }
        }
        manager_notify_ready(m);
        r = manager_run(m);
        bus_manager = bus_manager_free(bus_manager);
        m = manager_free(m);    /* closes the held devices before we say we are done */
        log_info("Stopped");
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
