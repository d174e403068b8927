/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vfio_pm_sim_compat.h: every kernel-version difference vfio_pm_sim meets, and only
 * those. Supported: Debian 12's 6.1 and bookworm-backports' 6.12 (and what lies
 * between where the same test holds).
 */
#ifndef VFIO_PM_SIM_COMPAT_H
#define VFIO_PM_SIM_COMPAT_H

#include <linux/eventfd.h>
#include <linux/mm.h>
#include <linux/platform_device.h>
#include <linux/vfio.h>
#include <linux/version.h>

/* 6.8: eventfd_signal() lost its count argument (it always added 1). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define vfio_pm_sim_eventfd_signal(ctx) eventfd_signal(ctx)
#else
#define vfio_pm_sim_eventfd_signal(ctx) eventfd_signal(ctx, 1)
#endif

/* 6.3: vma->vm_flags became read-only outside the vm_flags_*() helpers. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}
#endif

/*
 * 6.2: vfio core frees the vfio_device after the release op; before, the op had
 * to call vfio_free_device() itself.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
#define vfio_pm_sim_free_vfio_device(vdev) vfio_free_device(vdev)
#else
#define vfio_pm_sim_free_vfio_device(vdev) do { } while (0)
#endif

/*
 * 6.2: iommufd binding ops (required of emulated devices when CONFIG_IOMMUFD is
 * set; the helpers are NULL otherwise); 6.6 added detach_ioas.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
#define VFIO_PM_SIM_IOMMUFD_OPS						\
	.bind_iommufd = vfio_iommufd_emulated_bind,			\
	.unbind_iommufd = vfio_iommufd_emulated_unbind,			\
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,		\
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define VFIO_PM_SIM_IOMMUFD_OPS						\
	.bind_iommufd = vfio_iommufd_emulated_bind,			\
	.unbind_iommufd = vfio_iommufd_emulated_unbind,			\
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
#else
#define VFIO_PM_SIM_IOMMUFD_OPS
#endif

/*
 * 6.11: platform_driver.remove returns void (int before). Defines @name with
 * the right type, calling the void function @fn.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
#define VFIO_PM_SIM_DEFINE_PLATFORM_REMOVE(name, fn)			\
	static void name(struct platform_device *pdev)			\
	{								\
		fn(pdev);						\
	}
#else
#define VFIO_PM_SIM_DEFINE_PLATFORM_REMOVE(name, fn)			\
	static int name(struct platform_device *pdev)			\
	{								\
		fn(pdev);						\
		return 0;						\
	}
#endif

#endif /* VFIO_PM_SIM_COMPAT_H */
