#pragma once

/* held-record: what the next daemon needs to adopt a held device besides its fds (fdstore.h):
 * the low-power entry in force and the counters worth keeping (SPEC §9). One file,
 * MANAGER_STATE_DIR_DEFAULT/held, mapped shared: keeping it current is a few stores to memory,
 * no system call, so the wake path costs nothing more and a daemon killed by SIGKILL or the
 * watchdog leaves it as current as it was at its last instruction.
 *
 * The file is a header and HELD_RECORD_SLOTS fixed slots, one a held device (sparse: only the
 * pages touched take memory). A file that is not one (another size, magic or version) is started
 * over, empty: its devices are then not adopted but opened afresh. */

#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"

#define HELD_RECORD_FILE "held"
#define HELD_RECORD_HEADER_SIZE 64      /* then the slots, one after the other */
#define HELD_RECORD_SLOTS 8192
#define HELD_RECORD_NAME_MAX 64

typedef enum HeldEntry {
        HELD_ENTRY_NONE,        /* in D0: no entry in force */
        HELD_ENTRY_PLAIN,       /* LOW_POWER_ENTRY */
        HELD_ENTRY_WAKEUP,      /* LOW_POWER_ENTRY_WITH_WAKEUP */
        _HELD_ENTRY_MAX,
} HeldEntry;

/* One device's slot, as it lies in the file. */
typedef struct HeldSlot {
        char name[HELD_RECORD_NAME_MAX + 8];    /* NUL-terminated; "" for a free slot; the index's
                                                 * key: held-record.c's to write */
        uint32_t entry;                         /* HeldEntry */
        uint32_t ioas_id;                       /* cdev path: the IOAS the devices are attached to */
        uint64_t wakes;
        uint64_t arms;
        uint64_t low_power_usec;                /* time armed, up to armed_since */
        uint64_t armed_since_usec;              /* CLOCK_MONOTONIC; 0: not armed */
        uint64_t last_wake_realtime_usec;       /* 0: never */
} HeldSlot;

typedef struct HeldRecord HeldRecord;

/* Opens (creating it, 0644) the file in dir_fd and maps it. Sets *ret_reset when the file was
 * there and had to be started over. */
int held_record_open(int dir_fd, HeldRecord **ret, bool *ret_reset);
/* Unmaps and closes; the file stays for the next daemon. */
HeldRecord *held_record_free(HeldRecord *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(HeldRecord *, held_record_free)

/* name's slot, or NULL. Valid until held_record_remove() of it or held_record_free(). */
HeldSlot *held_record_get(const HeldRecord *r, const char *name);
/* name's slot, a new (zeroed) one if it has none; -ENOSPC when every slot is taken, -EINVAL for a
 * name longer than HELD_RECORD_NAME_MAX or empty. */
int held_record_add(HeldRecord *r, const char *name, HeldSlot **ret);
/* Frees name's slot (nothing if it has none). */
void held_record_remove(HeldRecord *r, const char *name);
/* The names with a slot, in slot order: a NULL-terminated array for the caller to free(), of
 * names borrowed from the mapping. */
int held_record_names(const HeldRecord *r, const char ***ret);
