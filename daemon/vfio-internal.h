#pragma once

/* The VFIO and IOMMUFD uAPI that vfio.c speaks, shared with the unit tests' fake kernel
 * (tests/unit/fake-kernel-sys.c) so both sides agree on every number and layout. Not for other
 * modules: they talk to the kernel through vfio.h only.
 *
 * Debian 12's linux-libc-dev (6.1) has the group/container path and the low-power features but
 * lacks the cdev + iommufd path (VFIO_DEVICE_BIND_IOMMUFD and VFIO_DEVICE_ATTACH_IOMMUFD_PT came
 * in 6.6, <linux/iommufd.h> in 6.2). What is missing is defined here with upstream's values:
 * include/uapi/linux/vfio.h (VFIO_BASE + 18, + 19) and include/uapi/linux/iommufd.h
 * (IOMMUFD_TYPE ';', IOMMUFD_CMD_IOAS_ALLOC 0x81). <linux/iommufd.h> is never included, so the
 * IOMMUFD names below cannot clash with a newer header.
 *
 * The argument structs are our own, with the layout of the first upstream version of each: the
 * kernel reads argsz/size and accepts any size from its first version on, so a struct that later
 * grew (vfio_device_bind_iommufd gained token_uuid_ptr in 6.17, vfio_device_attach_iommufd_pt
 * gained pasid in 6.13) is still served at its old size, and whatever header the build finds
 * cannot change what is sent. */

#include <stdint.h>
#include <linux/ioctl.h>
#include <linux/vfio.h>

/* In <linux/vfio.h> since 5.17 (VFIO_DEVICE_FEATURE) and 6.0 (the low-power features). */
#ifndef VFIO_DEVICE_FEATURE
#define VFIO_DEVICE_FEATURE _IO(VFIO_TYPE, VFIO_BASE + 17)
#define VFIO_DEVICE_FEATURE_MASK (0xffff)
#define VFIO_DEVICE_FEATURE_GET (1 << 16)
#define VFIO_DEVICE_FEATURE_SET (1 << 17)
#define VFIO_DEVICE_FEATURE_PROBE (1 << 18)
#endif
#ifndef VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY
#define VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY 3
#endif
#ifndef VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP
#define VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP 4
#endif
#ifndef VFIO_DEVICE_FEATURE_LOW_POWER_EXIT
#define VFIO_DEVICE_FEATURE_LOW_POWER_EXIT 5
#endif

/* upstream include/uapi/linux/vfio.h, since 6.6 */
#ifndef VFIO_DEVICE_BIND_IOMMUFD
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif
#ifndef VFIO_DEVICE_ATTACH_IOMMUFD_PT
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#endif

/* upstream include/uapi/linux/iommufd.h, since 6.2 */
#ifndef IOMMUFD_TYPE
#define IOMMUFD_TYPE (';')
#endif
#ifndef IOMMU_IOAS_ALLOC
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81)
#endif

/* struct vfio_device_feature without its flexible data[], followed by the feature's data. */
typedef struct VfioFeatureLowPower {
        uint32_t argsz;
        uint32_t flags;
        /* struct vfio_device_low_power_entry_with_wakeup; absent (argsz 8) for entry and exit */
        int32_t wakeup_eventfd;
        uint32_t reserved;
} VfioFeatureLowPower;

#define VFIO_FEATURE_HEADER_SIZE 8u

/* struct vfio_device_bind_iommufd, 6.6 layout */
typedef struct VfioBindIommufd {
        uint32_t argsz;
        uint32_t flags;
        int32_t iommufd;
        uint32_t out_devid;
} VfioBindIommufd;

/* struct vfio_device_attach_iommufd_pt, 6.6 layout */
typedef struct VfioAttachIommufdPt {
        uint32_t argsz;
        uint32_t flags;
        uint32_t pt_id;
} VfioAttachIommufdPt;

/* struct iommu_ioas_alloc */
typedef struct IommuIoasAlloc {
        uint32_t size;
        uint32_t flags;
        uint32_t out_ioas_id;
} IommuIoasAlloc;

/* struct vfio_irq_set without its flexible data[], carrying one eventfd. */
typedef struct VfioIrqSetEventfd {
        uint32_t argsz;
        uint32_t flags;
        uint32_t index;
        uint32_t start;
        uint32_t count;
        int32_t fd;
} VfioIrqSetEventfd;
