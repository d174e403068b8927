#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device-table.h"
#include "held-record.h"

#define HELD_MAGIC "vfiopmd-held\n"
#define HELD_VERSION 2u

typedef struct HeldHeader {
        char magic[16];
        uint32_t version;
        uint32_t slot_size;
        uint32_t slots;
        uint32_t used;                  /* no slot at or above this index was ever taken */
        uint32_t reserved[8];
} HeldHeader;

_Static_assert(sizeof(HeldHeader) == HELD_RECORD_HEADER_SIZE, "the header is the file's first 64 bytes");

#define HELD_FILE_SIZE (sizeof(HeldHeader) + (size_t) HELD_RECORD_SLOTS * sizeof(HeldSlot))

struct HeldRecord {
        int fd;
        void *map;
        HeldSlot *slots;
        DeviceTable *index;             /* name → HeldSlot, the names in the mapping */
        unsigned next_free;             /* no free slot below it */
};

static bool header_ok(const HeldHeader *h) {
        return memcmp(h->magic, HELD_MAGIC, sizeof(HELD_MAGIC)) == 0 && h->version == HELD_VERSION &&
               h->slot_size == sizeof(HeldSlot) && h->slots == HELD_RECORD_SLOTS;
}

static bool name_ok(const char *name) {
        return name && name[0] && strlen(name) <= HELD_RECORD_NAME_MAX;
}

int held_record_open(int dir_fd, HeldRecord **ret, bool *ret_reset) {
        _cleanup_(held_record_freep) HeldRecord *r = NULL;
        HeldHeader *h;
        struct stat st;
        bool reset = false;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->map = MAP_FAILED;
        r->fd = openat(dir_fd, HELD_RECORD_FILE, O_RDWR|O_CREAT|O_CLOEXEC|O_NOFOLLOW, 0644);
        if (r->fd < 0 || fstat(r->fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((size_t) st.st_size != HELD_FILE_SIZE) {
                reset = st.st_size > 0;
                if (ftruncate(r->fd, 0) < 0 || ftruncate(r->fd, HELD_FILE_SIZE) < 0)
                        return -errno;
        }
        r->map = mmap(NULL, HELD_FILE_SIZE, PROT_READ|PROT_WRITE, MAP_SHARED, r->fd, 0);
        if (r->map == MAP_FAILED)
                return -errno;
        h = r->map;
        r->slots = (HeldSlot *) ((uint8_t *) r->map + sizeof(HeldHeader));
        if (!header_ok(h)) {
                reset = reset || memcmp(h->magic, "\0\0\0\0", 4) != 0;
                /* zeroed by truncating, not by writing: a page of the mapping is memory once
                 * touched, and only the header and the slots in use need to be */
                if (ftruncate(r->fd, 0) < 0 || ftruncate(r->fd, HELD_FILE_SIZE) < 0)
                        return -errno;
                memcpy(h->magic, HELD_MAGIC, sizeof(HELD_MAGIC));
                h->version = HELD_VERSION;
                h->slot_size = sizeof(HeldSlot);
                h->slots = HELD_RECORD_SLOTS;
        }

        if (device_table_new(NULL, &r->index) < 0)
                return -ENOMEM;
        if (h->used > HELD_RECORD_SLOTS)
                h->used = HELD_RECORD_SLOTS;
        for (unsigned i = 0; i < h->used; i++) {
                HeldSlot *s = &r->slots[i];

                if (!s->name[0])
                        continue;
                s->name[sizeof(s->name) - 1] = 0;
                /* a slot the format cannot have (a second of one name, a bad name): freed */
                if (!name_ok(s->name) || s->entry >= _HELD_ENTRY_MAX || device_table_put(r->index, s->name, s) < 0)
                        memset(s, 0, sizeof(*s));
        }
        if (ret_reset)
                *ret_reset = reset;
        *ret = TAKE_PTR(r);
        return 0;
}

HeldRecord *held_record_free(HeldRecord *r) {
        if (!r)
                return NULL;
        device_table_free(r->index);
        if (r->map != MAP_FAILED)
                (void) munmap(r->map, HELD_FILE_SIZE);
        if (r->fd >= 0)
                (void) close(r->fd);
        free(r);
        return NULL;
}

HeldSlot *held_record_get(const HeldRecord *r, const char *name) {
        return name_ok(name) ? device_table_get(r->index, name) : NULL;
}

int held_record_add(HeldRecord *r, const char *name, HeldSlot **ret) {
        HeldSlot *s;
        int k;

        if (!name_ok(name))
                return -EINVAL;
        s = device_table_get(r->index, name);
        if (s) {
                *ret = s;
                return 0;
        }
        /* a slot at or above used is free whatever it holds: never read, zeroed when taken */
        while (r->next_free < HELD_RECORD_SLOTS && r->next_free < ((HeldHeader *) r->map)->used &&
               r->slots[r->next_free].name[0])
                r->next_free++;
        if (r->next_free == HELD_RECORD_SLOTS)
                return -ENOSPC;
        s = &r->slots[r->next_free];
        memset(s, 0, sizeof(*s));
        if (r->next_free >= ((HeldHeader *) r->map)->used)
                ((HeldHeader *) r->map)->used = r->next_free + 1;
        strcpy(s->name, name);
        k = device_table_put(r->index, s->name, s);
        if (k < 0) {
                s->name[0] = 0;
                return k;
        }
        *ret = s;
        return 0;
}

void held_record_remove(HeldRecord *r, const char *name) {
        HeldSlot *s = held_record_get(r, name);
        unsigned i;

        if (!s)
                return;
        (void) device_table_remove(r->index, s->name);
        memset(s, 0, sizeof(*s));
        i = (unsigned) (s - r->slots);
        if (i < r->next_free)
                r->next_free = i;
}

int held_record_names(const HeldRecord *r, const char ***ret) {
        const char **l;
        size_t n = 0;

        l = calloc(device_table_size(r->index) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (unsigned i = 0; i < ((const HeldHeader *) r->map)->used; i++)
                if (r->slots[i].name[0])
                        l[n++] = r->slots[i].name;
        *ret = l;
        return 0;
}
