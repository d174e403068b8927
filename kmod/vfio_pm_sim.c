// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_pm_sim: simulated VFIO devices with the low-power device features
 * (VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY, _ENTRY_WITH_WAKEUP, _EXIT) of vfio-pci,
 * for testing vfiopmd and for anyone without the hardware.
 *
 * Each device is a platform device vfio-pm-sim.N bound to the platform driver
 * vfio-pm-sim, with the kernel's own runtime PM, registered as an emulated-IOMMU
 * VFIO device (opened through a type1 container). It has one 4 KiB region
 * (index 0: read, write, mmap) and one IRQ (index 0: the request IRQ).
 *
 * The low-power paths copy drivers/vfio/pci/vfio_pci_core.c (identical in 6.1 and
 * 6.12 there): the same pm_runtime_engaged and pm_wake_eventfd_ctx, the same
 * runtime-PM usage count moves, the same errors. vfio core resumes the device
 * around every device ioctl because the driver has dev_pm_ops; region reads and
 * writes resume it here, as vfio-pci's do; mmaps are zapped on entry and fault
 * with SIGBUS while low power is engaged.
 *
 * Fault injection lives in the "sim" attribute group (see kmod/README.md).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/eventfd.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/pm_runtime.h>
#include <linux/rwsem.h>
#include <linux/sched/mm.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <linux/workqueue.h>

#include "vfio_pm_sim_compat.h"

#define VFIO_PM_SIM_NAME		"vfio-pm-sim"
#define VFIO_PM_SIM_MAX_DEVICES		4096
#define VFIO_PM_SIM_MAX_TRANSITION_MS	10000

#define VFIO_PM_SIM_REGION_INDEX	0
#define VFIO_PM_SIM_NUM_REGIONS		1
#define VFIO_PM_SIM_REGION_SIZE		SZ_4K
#define VFIO_PM_SIM_REQ_IRQ_INDEX	0
#define VFIO_PM_SIM_NUM_IRQS		1

/* Region offsets in the device fd: index << 40, as vfio-pci and vfio-platform. */
#define VFIO_PM_SIM_OFFSET_SHIFT	40
#define VFIO_PM_SIM_OFFSET_TO_INDEX(off) ((u64)(off) >> VFIO_PM_SIM_OFFSET_SHIFT)
#define VFIO_PM_SIM_INDEX_TO_OFFSET(index) ((u64)(index) << VFIO_PM_SIM_OFFSET_SHIFT)
#define VFIO_PM_SIM_OFFSET_MASK		(VFIO_PM_SIM_INDEX_TO_OFFSET(1) - 1)

static unsigned int devices = 2;
module_param(devices, uint, 0444);
MODULE_PARM_DESC(devices, "Simulated devices created at load (default 2, at most 4096)");

static unsigned int resume_ms;
module_param(resume_ms, uint, 0644);
MODULE_PARM_DESC(resume_ms, "Simulated runtime resume time, ms (default 0, at most 10000)");

static unsigned int suspend_ms;
module_param(suspend_ms, uint, 0644);
MODULE_PARM_DESC(suspend_ms, "Simulated runtime suspend time, ms (default 0, at most 10000)");

static bool d3cold;
module_param(d3cold, bool, 0644);
MODULE_PARM_DESC(d3cold, "Report power_state D3cold instead of D3hot while suspended (default N)");

enum vfio_pm_sim_power_state {
	VFIO_PM_SIM_D0,
	VFIO_PM_SIM_D3HOT,
	VFIO_PM_SIM_D3COLD,
};

struct vfio_pm_sim {
	struct vfio_device vdev;	/* first: vfio_alloc_device() wants it there */
	struct page *region;		/* region 0, also what mmap maps */

	/* As vfio-pci: the low-power flags, written under memory_lock. */
	struct rw_semaphore memory_lock;
	bool pm_runtime_engaged;
	struct eventfd_ctx *pm_wake_eventfd_ctx;

	/* Mappings of region 0 that may hold PTEs; zapped on each entry. */
	struct mutex vma_lock;
	struct list_head vma_list;

	struct mutex igate;		/* protects req_trigger */
	struct eventfd_ctx *req_trigger;

	enum vfio_pm_sim_power_state power_state;
	atomic_t fail_next_entry;	/* errno (> 0) the next entry fails with, 0: none */
	atomic_long_t entries;		/* successful low-power entries */
	atomic_long_t exits;		/* times low power was left (EXIT, wake-up, close) */
	atomic_long_t wakes;		/* runtime resumes, whatever woke the device */
};

struct vfio_pm_sim_mmap_vma {
	struct vm_area_struct *vma;
	struct list_head vma_next;
};

/* The platform devices created at load; "remove" unregisters one from a work item. */
struct vfio_pm_sim_slot {
	struct platform_device *pdev;	/* NULL once unregistered */
	struct work_struct remove_work;
};

static struct vfio_pm_sim_slot *vfio_pm_sim_slots;
static unsigned int vfio_pm_sim_nr_slots;
static DEFINE_MUTEX(vfio_pm_sim_slots_lock);

static struct vfio_pm_sim *vdev_to_sim(struct vfio_device *vdev)
{
	return container_of(vdev, struct vfio_pm_sim, vdev);
}

static unsigned int vfio_pm_sim_transition_ms(const unsigned int *param)
{
	return min_t(unsigned int, READ_ONCE(*param), VFIO_PM_SIM_MAX_TRANSITION_MS);
}

/* "Resetting" the simulated hardware clears its region (on open, close, RESET). */
static void vfio_pm_sim_clear_region(struct vfio_pm_sim *sim)
{
	memset(page_address(sim->region), 0, VFIO_PM_SIM_REGION_SIZE);
}

/* ---- mmap: populated on fault, zapped on low-power entry ------------------------- */

/* Caller holds vma_lock. */
static bool vfio_pm_sim_vma_tracked(struct vfio_pm_sim *sim, struct vm_area_struct *vma)
{
	struct vfio_pm_sim_mmap_vma *mmap_vma;

	list_for_each_entry(mmap_vma, &sim->vma_list, vma_next)
		if (mmap_vma->vma == vma)
			return true;
	return false;
}

/* Caller holds vma_lock. */
static int vfio_pm_sim_track_vma(struct vfio_pm_sim *sim, struct vm_area_struct *vma, gfp_t gfp)
{
	struct vfio_pm_sim_mmap_vma *mmap_vma;

	mmap_vma = kmalloc(sizeof(*mmap_vma), gfp);
	if (!mmap_vma)
		return -ENOMEM;
	mmap_vma->vma = vma;
	list_add(&mmap_vma->vma_next, &sim->vma_list);
	return 0;
}

/*
 * Zap every tracked mapping and return with vma_lock held, so that no fault can
 * populate one again before the caller has taken memory_lock (vfio-pci 6.1's
 * vfio_pci_zap_and_vma_lock()). mmap_lock nests outside vma_lock (the fault
 * handler runs under it), so each mm is pinned, then locked with vma_lock
 * dropped. The write lock keeps a concurrent munmap from freeing page tables
 * under the zap.
 */
static void vfio_pm_sim_zap_and_vma_lock(struct vfio_pm_sim *sim)
{
	struct vfio_pm_sim_mmap_vma *mmap_vma, *tmp;

	for (;;) {
		struct mm_struct *mm = NULL;

		mutex_lock(&sim->vma_lock);
		while (!list_empty(&sim->vma_list)) {
			mmap_vma = list_first_entry(&sim->vma_list, struct vfio_pm_sim_mmap_vma,
						    vma_next);
			mm = mmap_vma->vma->vm_mm;
			if (mmget_not_zero(mm))
				break;
			/* The mm is exiting: its page tables go with it. */
			list_del(&mmap_vma->vma_next);
			kfree(mmap_vma);
			mm = NULL;
		}
		if (!mm)
			return;
		mutex_unlock(&sim->vma_lock);

		mmap_write_lock(mm);
		mutex_lock(&sim->vma_lock);
		list_for_each_entry_safe(mmap_vma, tmp, &sim->vma_list, vma_next) {
			struct vm_area_struct *vma = mmap_vma->vma;

			if (vma->vm_mm != mm)
				continue;
			list_del(&mmap_vma->vma_next);
			kfree(mmap_vma);
			zap_vma_ptes(vma, vma->vm_start, vma->vm_end - vma->vm_start);
		}
		mutex_unlock(&sim->vma_lock);
		mmap_write_unlock(mm);
		mmput(mm);
	}
}

static void vfio_pm_sim_zap_and_down_write_memory_lock(struct vfio_pm_sim *sim)
{
	vfio_pm_sim_zap_and_vma_lock(sim);
	down_write(&sim->memory_lock);
	mutex_unlock(&sim->vma_lock);
}

/*
 * A copy made by split, mremap or fork. Track it now: fork copies PFN-map PTEs
 * after ->open, and ->open cannot fail, hence __GFP_NOFAIL (32 bytes).
 */
static void vfio_pm_sim_mmap_open(struct vm_area_struct *vma)
{
	struct vfio_pm_sim *sim = vma->vm_private_data;

	mutex_lock(&sim->vma_lock);
	vfio_pm_sim_track_vma(sim, vma, GFP_KERNEL | __GFP_NOFAIL);
	mutex_unlock(&sim->vma_lock);
}

static void vfio_pm_sim_mmap_close(struct vm_area_struct *vma)
{
	struct vfio_pm_sim *sim = vma->vm_private_data;
	struct vfio_pm_sim_mmap_vma *mmap_vma;

	mutex_lock(&sim->vma_lock);
	list_for_each_entry(mmap_vma, &sim->vma_list, vma_next) {
		if (mmap_vma->vma == vma) {
			list_del(&mmap_vma->vma_next);
			kfree(mmap_vma);
			break;
		}
	}
	mutex_unlock(&sim->vma_lock);
}

static vm_fault_t vfio_pm_sim_mmap_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct vfio_pm_sim *sim = vma->vm_private_data;
	unsigned long page = vmf->pgoff & (VFIO_PM_SIM_OFFSET_MASK >> PAGE_SHIFT);
	vm_fault_t ret;

	mutex_lock(&sim->vma_lock);
	down_read(&sim->memory_lock);

	/* As vfio-pci: no access while low power is engaged, and no wake either. */
	if (sim->pm_runtime_engaged ||
	    page >= PAGE_ALIGN(VFIO_PM_SIM_REGION_SIZE) >> PAGE_SHIFT) {
		ret = VM_FAULT_SIGBUS;
		goto out_unlock;
	}
	if (!vfio_pm_sim_vma_tracked(sim, vma) &&
	    vfio_pm_sim_track_vma(sim, vma, GFP_KERNEL)) {
		ret = VM_FAULT_OOM;
		goto out_unlock;
	}
	ret = vmf_insert_pfn(vma, vmf->address, page_to_pfn(sim->region) + page);

out_unlock:
	up_read(&sim->memory_lock);
	mutex_unlock(&sim->vma_lock);
	return ret;
}

static const struct vm_operations_struct vfio_pm_sim_mmap_ops = {
	.open = vfio_pm_sim_mmap_open,
	.close = vfio_pm_sim_mmap_close,
	.fault = vfio_pm_sim_mmap_fault,
};

static int vfio_pm_sim_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
	struct vfio_pm_sim *sim = vdev_to_sim(vdev);
	u64 index = VFIO_PM_SIM_OFFSET_TO_INDEX((u64)vma->vm_pgoff << PAGE_SHIFT);
	u64 start = ((u64)vma->vm_pgoff << PAGE_SHIFT) & VFIO_PM_SIM_OFFSET_MASK;

	if (index >= VFIO_PM_SIM_NUM_REGIONS)
		return -EINVAL;
	if (vma->vm_end < vma->vm_start)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (start + (vma->vm_end - vma->vm_start) > PAGE_ALIGN(VFIO_PM_SIM_REGION_SIZE))
		return -EINVAL;

	vma->vm_private_data = sim;
	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &vfio_pm_sim_mmap_ops;
	return 0;
}

/* ---- low power: vfio-pci's feature semantics --------------------------------------- */

static int vfio_pm_sim_runtime_pm_entry(struct vfio_pm_sim *sim, struct eventfd_ctx *efdctx)
{
	struct device *dev = sim->vdev.dev;
	int fail;

	vfio_pm_sim_zap_and_down_write_memory_lock(sim);
	if (sim->pm_runtime_engaged) {
		up_write(&sim->memory_lock);
		return -EINVAL;
	}

	/* The platform refuses: what a real device's D3 entry failing looks like. */
	fail = atomic_xchg(&sim->fail_next_entry, 0);
	if (fail) {
		up_write(&sim->memory_lock);
		dev_info(dev, "low-power entry fails with %d (sim/fail_next_entry)\n", -fail);
		return -fail;
	}

	sim->pm_runtime_engaged = true;
	sim->pm_wake_eventfd_ctx = efdctx;
	atomic_long_inc(&sim->entries);
	/* vfio core's pm_runtime_put() at the end of the ioctl lets it suspend. */
	pm_runtime_put_noidle(dev);
	up_write(&sim->memory_lock);
	return 0;
}

/* Caller holds memory_lock for writing. */
static void __vfio_pm_sim_runtime_pm_exit(struct vfio_pm_sim *sim)
{
	if (!sim->pm_runtime_engaged)
		return;
	sim->pm_runtime_engaged = false;
	pm_runtime_get_noresume(sim->vdev.dev);
	if (sim->pm_wake_eventfd_ctx) {
		eventfd_ctx_put(sim->pm_wake_eventfd_ctx);
		sim->pm_wake_eventfd_ctx = NULL;
	}
	atomic_long_inc(&sim->exits);
}

static void vfio_pm_sim_runtime_pm_exit(struct vfio_pm_sim *sim)
{
	down_write(&sim->memory_lock);
	__vfio_pm_sim_runtime_pm_exit(sim);
	up_write(&sim->memory_lock);
}

static int vfio_pm_sim_pm_entry(struct vfio_device *vdev, u32 flags, void __user *arg,
				size_t argsz)
{
	int ret;

	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
	if (ret != 1)
		return ret;
	return vfio_pm_sim_runtime_pm_entry(vdev_to_sim(vdev), NULL);
}

static int vfio_pm_sim_pm_entry_with_wakeup(struct vfio_device *vdev, u32 flags,
					    struct vfio_device_low_power_entry_with_wakeup __user *arg,
					    size_t argsz)
{
	struct vfio_device_low_power_entry_with_wakeup entry;
	struct eventfd_ctx *efdctx;
	int ret;

	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, sizeof(entry));
	if (ret != 1)
		return ret;
	if (copy_from_user(&entry, arg, sizeof(entry)))
		return -EFAULT;
	if (entry.wakeup_eventfd < 0)
		return -EINVAL;

	efdctx = eventfd_ctx_fdget(entry.wakeup_eventfd);
	if (IS_ERR(efdctx))
		return PTR_ERR(efdctx);

	ret = vfio_pm_sim_runtime_pm_entry(vdev_to_sim(vdev), efdctx);
	if (ret)
		eventfd_ctx_put(efdctx);
	return ret;
}

static int vfio_pm_sim_pm_exit(struct vfio_device *vdev, u32 flags, void __user *arg,
			       size_t argsz)
{
	int ret;

	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
	if (ret != 1)
		return ret;
	/*
	 * vfio core resumed the device for this ioctl; with a wake-up eventfd the
	 * resume has signalled it and left low power already.
	 */
	vfio_pm_sim_runtime_pm_exit(vdev_to_sim(vdev));
	return 0;
}

static int vfio_pm_sim_device_feature(struct vfio_device *vdev, u32 flags, void __user *arg,
				      size_t argsz)
{
	switch (flags & VFIO_DEVICE_FEATURE_MASK) {
	case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
		return vfio_pm_sim_pm_entry(vdev, flags, arg, argsz);
	case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP:
		return vfio_pm_sim_pm_entry_with_wakeup(vdev, flags, arg, argsz);
	case VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
		return vfio_pm_sim_pm_exit(vdev, flags, arg, argsz);
	default:
		return -ENOTTY;
	}
}

/* ---- runtime PM --------------------------------------------------------------------- */

static int vfio_pm_sim_runtime_suspend(struct device *dev)
{
	struct vfio_pm_sim *sim = dev_get_drvdata(dev);
	unsigned int ms = vfio_pm_sim_transition_ms(&suspend_ms);

	if (ms)
		msleep(ms);
	WRITE_ONCE(sim->power_state, READ_ONCE(d3cold) ? VFIO_PM_SIM_D3COLD : VFIO_PM_SIM_D3HOT);
	dev_dbg(dev, "runtime suspended\n");
	return 0;
}

static int vfio_pm_sim_runtime_resume(struct device *dev)
{
	struct vfio_pm_sim *sim = dev_get_drvdata(dev);
	unsigned int ms = vfio_pm_sim_transition_ms(&resume_ms);

	if (ms)
		msleep(ms);
	WRITE_ONCE(sim->power_state, VFIO_PM_SIM_D0);
	atomic_long_inc(&sim->wakes);

	/* As vfio-pci: a wake-up entry is one-shot, the resume signals and leaves it. */
	down_write(&sim->memory_lock);
	if (sim->pm_wake_eventfd_ctx) {
		vfio_pm_sim_eventfd_signal(sim->pm_wake_eventfd_ctx);
		__vfio_pm_sim_runtime_pm_exit(sim);
	}
	up_write(&sim->memory_lock);
	dev_dbg(dev, "runtime resumed\n");
	return 0;
}

static const struct dev_pm_ops vfio_pm_sim_pm_ops = {
	RUNTIME_PM_OPS(vfio_pm_sim_runtime_suspend, vfio_pm_sim_runtime_resume, NULL)
};

/* ---- the VFIO device ------------------------------------------------------------------ */

static int vfio_pm_sim_open_device(struct vfio_device *vdev)
{
	struct vfio_pm_sim *sim = vdev_to_sim(vdev);
	int ret;

	/* As vfio-pci: held devices stay in D0 unless the holder enters low power. */
	ret = pm_runtime_resume_and_get(vdev->dev);
	if (ret < 0)
		return ret;
	vfio_pm_sim_clear_region(sim);
	return 0;
}

static void vfio_pm_sim_close_device(struct vfio_device *vdev)
{
	struct vfio_pm_sim *sim = vdev_to_sim(vdev);

	/* As vfio_pci_core_disable(): undo an entry in force, without signalling. */
	vfio_pm_sim_runtime_pm_exit(sim);
	pm_runtime_resume(vdev->dev);
	vfio_pm_sim_clear_region(sim);

	mutex_lock(&sim->igate);
	if (sim->req_trigger) {
		eventfd_ctx_put(sim->req_trigger);
		sim->req_trigger = NULL;
	}
	mutex_unlock(&sim->igate);

	pm_runtime_put(vdev->dev);
}

static ssize_t vfio_pm_sim_rw(struct vfio_pm_sim *sim, char __user *buf, size_t count,
			      loff_t *ppos, bool iswrite)
{
	struct device *dev = sim->vdev.dev;
	u64 pos = (u64)*ppos & VFIO_PM_SIM_OFFSET_MASK;
	void *base;
	ssize_t ret;
	int r;

	if (VFIO_PM_SIM_OFFSET_TO_INDEX(*ppos) >= VFIO_PM_SIM_NUM_REGIONS ||
	    pos >= VFIO_PM_SIM_REGION_SIZE)
		return -EINVAL;
	count = min_t(size_t, count, VFIO_PM_SIM_REGION_SIZE - pos);

	/* As vfio-pci: a region access is a device access, it wakes the device. */
	r = pm_runtime_resume_and_get(dev);
	if (r) {
		dev_info_ratelimited(dev, "runtime resume failed %d\n", r);
		return -EIO;
	}

	base = page_address(sim->region) + pos;
	if (iswrite)
		ret = copy_from_user(base, buf, count) ? -EFAULT : count;
	else
		ret = copy_to_user(buf, base, count) ? -EFAULT : count;
	if (ret > 0)
		*ppos += ret;

	pm_runtime_put(dev);
	return ret;
}

static ssize_t vfio_pm_sim_read(struct vfio_device *vdev, char __user *buf, size_t count,
				loff_t *ppos)
{
	if (!count)
		return 0;
	return vfio_pm_sim_rw(vdev_to_sim(vdev), buf, count, ppos, false);
}

static ssize_t vfio_pm_sim_write(struct vfio_device *vdev, const char __user *buf,
				 size_t count, loff_t *ppos)
{
	if (!count)
		return 0;
	return vfio_pm_sim_rw(vdev_to_sim(vdev), (char __user *)buf, count, ppos, true);
}

static int vfio_pm_sim_ioctl_get_info(struct vfio_pm_sim *sim, struct vfio_device_info __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_device_info, num_irqs);
	unsigned long capsz = offsetofend(struct vfio_device_info, cap_offset);
	struct vfio_device_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	if (info.argsz >= capsz) {
		minsz = capsz;
		info.cap_offset = 0;
	}

	info.flags = VFIO_DEVICE_FLAGS_PLATFORM | VFIO_DEVICE_FLAGS_RESET;
	info.num_regions = VFIO_PM_SIM_NUM_REGIONS;
	info.num_irqs = VFIO_PM_SIM_NUM_IRQS;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static int vfio_pm_sim_ioctl_get_region_info(struct vfio_pm_sim *sim,
					     struct vfio_region_info __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_region_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || info.index >= VFIO_PM_SIM_NUM_REGIONS)
		return -EINVAL;

	info.offset = VFIO_PM_SIM_INDEX_TO_OFFSET(info.index);
	info.size = VFIO_PM_SIM_REGION_SIZE;
	info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
		     VFIO_REGION_INFO_FLAG_MMAP;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static int vfio_pm_sim_ioctl_get_irq_info(struct vfio_pm_sim *sim, struct vfio_irq_info __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_irq_info, count);
	struct vfio_irq_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || info.index >= VFIO_PM_SIM_NUM_IRQS)
		return -EINVAL;

	info.flags = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE;
	info.count = 1;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

/* vfio-pci's vfio_pci_set_ctx_trigger_single(), for the request IRQ. */
static int vfio_pm_sim_set_req_trigger(struct vfio_pm_sim *sim, unsigned int start,
				       unsigned int count, u32 flags, void *data)
{
	struct eventfd_ctx **ctx = &sim->req_trigger;

	if (start != 0 || count > 1)
		return -EINVAL;

	/* DATA_NONE/DATA_BOOL enable loopback testing */
	if (flags & VFIO_IRQ_SET_DATA_NONE) {
		if (*ctx) {
			if (count) {
				vfio_pm_sim_eventfd_signal(*ctx);
			} else {
				eventfd_ctx_put(*ctx);
				*ctx = NULL;
			}
			return 0;
		}
	} else if (flags & VFIO_IRQ_SET_DATA_BOOL) {
		u8 trigger;

		if (!count)
			return -EINVAL;
		trigger = *(u8 *)data;
		if (trigger && *ctx)
			vfio_pm_sim_eventfd_signal(*ctx);
		return 0;
	} else if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
		s32 fd;

		if (!count)
			return -EINVAL;
		fd = *(s32 *)data;
		if (fd == -1) {
			if (*ctx)
				eventfd_ctx_put(*ctx);
			*ctx = NULL;
		} else if (fd >= 0) {
			struct eventfd_ctx *efdctx = eventfd_ctx_fdget(fd);

			if (IS_ERR(efdctx))
				return PTR_ERR(efdctx);
			if (*ctx)
				eventfd_ctx_put(*ctx);
			*ctx = efdctx;
		}
		return 0;
	}
	return -EINVAL;
}

static int vfio_pm_sim_ioctl_set_irqs(struct vfio_pm_sim *sim, struct vfio_irq_set __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_irq_set, count);
	struct vfio_irq_set hdr;
	size_t data_size = 0;
	u8 *data = NULL;
	int ret;

	if (copy_from_user(&hdr, arg, minsz))
		return -EFAULT;
	ret = vfio_set_irqs_validate_and_prepare(&hdr,
						 hdr.index == VFIO_PM_SIM_REQ_IRQ_INDEX ? 1 : 0,
						 VFIO_PM_SIM_NUM_IRQS, &data_size);
	if (ret)
		return ret;
	if (data_size) {
		data = memdup_user(&arg->data, data_size);
		if (IS_ERR(data))
			return PTR_ERR(data);
	}

	/* As vfio-pci: only TRIGGER exists for the request IRQ. */
	if (hdr.index != VFIO_PM_SIM_REQ_IRQ_INDEX ||
	    (hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) != VFIO_IRQ_SET_ACTION_TRIGGER) {
		ret = -ENOTTY;
		goto out_free_data;
	}
	mutex_lock(&sim->igate);
	ret = vfio_pm_sim_set_req_trigger(sim, hdr.start, hdr.count, hdr.flags, data);
	mutex_unlock(&sim->igate);

out_free_data:
	kfree(data);
	return ret;
}

static long vfio_pm_sim_ioctl(struct vfio_device *vdev, unsigned int cmd, unsigned long arg)
{
	struct vfio_pm_sim *sim = vdev_to_sim(vdev);
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO:
		return vfio_pm_sim_ioctl_get_info(sim, uarg);
	case VFIO_DEVICE_GET_REGION_INFO:
		return vfio_pm_sim_ioctl_get_region_info(sim, uarg);
	case VFIO_DEVICE_GET_IRQ_INFO:
		return vfio_pm_sim_ioctl_get_irq_info(sim, uarg);
	case VFIO_DEVICE_SET_IRQS:
		return vfio_pm_sim_ioctl_set_irqs(sim, uarg);
	case VFIO_DEVICE_RESET:
		vfio_pm_sim_clear_region(sim);
		return 0;
	default:
		return -ENOTTY;
	}
}

/* vfio core asks the holder to let go (device removal); as vfio_pci_core_request(). */
static void vfio_pm_sim_request(struct vfio_device *vdev, unsigned int count)
{
	struct vfio_pm_sim *sim = vdev_to_sim(vdev);

	mutex_lock(&sim->igate);
	if (sim->req_trigger) {
		if (!(count % 10))
			dev_notice_ratelimited(vdev->dev, "Relaying device request to user (#%u)\n",
					       count);
		vfio_pm_sim_eventfd_signal(sim->req_trigger);
	} else if (count == 0) {
		dev_warn(vdev->dev,
			 "No device request channel registered, blocked until released by user\n");
	}
	mutex_unlock(&sim->igate);
}

static int vfio_pm_sim_init_dev(struct vfio_device *vdev)
{
	struct vfio_pm_sim *sim = vdev_to_sim(vdev);

	sim->region = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!sim->region)
		return -ENOMEM;
	init_rwsem(&sim->memory_lock);
	mutex_init(&sim->vma_lock);
	INIT_LIST_HEAD(&sim->vma_list);
	mutex_init(&sim->igate);
	sim->power_state = VFIO_PM_SIM_D0;
	return 0;
}

static void vfio_pm_sim_release_dev(struct vfio_device *vdev)
{
	struct vfio_pm_sim *sim = vdev_to_sim(vdev);

	/* Every mapping holds the device fd, so none can be left. */
	WARN_ON_ONCE(!list_empty(&sim->vma_list));
	mutex_destroy(&sim->igate);
	mutex_destroy(&sim->vma_lock);
	__free_page(sim->region);
	vfio_pm_sim_free_vfio_device(vdev);
}

static const struct vfio_device_ops vfio_pm_sim_dev_ops = {
	.name = VFIO_PM_SIM_NAME,
	.init = vfio_pm_sim_init_dev,
	.release = vfio_pm_sim_release_dev,
	VFIO_PM_SIM_IOMMUFD_OPS
	.open_device = vfio_pm_sim_open_device,
	.close_device = vfio_pm_sim_close_device,
	.read = vfio_pm_sim_read,
	.write = vfio_pm_sim_write,
	.ioctl = vfio_pm_sim_ioctl,
	.mmap = vfio_pm_sim_mmap,
	.request = vfio_pm_sim_request,
	.device_feature = vfio_pm_sim_device_feature,
};

/* ---- sysfs: power_state, and sim/ for fault injection --------------------------------- */

static ssize_t power_state_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	static const char * const names[] = {
		[VFIO_PM_SIM_D0] = "D0",
		[VFIO_PM_SIM_D3HOT] = "D3hot",
		[VFIO_PM_SIM_D3COLD] = "D3cold",
	};
	struct vfio_pm_sim *sim = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", names[READ_ONCE(sim->power_state)]);
}
static DEVICE_ATTR_RO(power_state);

/* The trigger attributes take "1" and nothing else. */
static int vfio_pm_sim_parse_trigger(const char *buf)
{
	unsigned int v;

	if (kstrtouint(buf, 10, &v) || v != 1)
		return -EINVAL;
	return 0;
}

/* A host access, like a config-space read of a D3cold PCI device. */
static ssize_t wake_store(struct device *dev, struct device_attribute *attr, const char *buf,
			  size_t count)
{
	int ret;

	ret = vfio_pm_sim_parse_trigger(buf);
	if (ret)
		return ret;
	ret = pm_runtime_resume_and_get(dev);
	if (ret < 0)
		return ret;
	pm_runtime_put(dev);
	return count;
}
static DEVICE_ATTR_WO(wake);

/*
 * A device-initiated wake (PME): an asynchronous resume request, as pci_pme_wakeup(). A device in
 * D0 raises none (PCI enables PME in its runtime suspend), and must not here: pm_request_resume()
 * of an active device cancels the pending request, such as the idle request vfio core's
 * pm_runtime_put() queued after a low-power entry, which left the device in D0 with its entry
 * engaged, nothing to suspend it and its wake-up eventfd silent for good (seen about once in 4,000
 * PMEs of a stream, 6.1 and 6.12). So nothing is requested while the device is active, and if it
 * became active between that check and the request (1), the idle request is queued again (with the
 * usage count held, no entry in force, it does nothing).
 */
static ssize_t pme_store(struct device *dev, struct device_attribute *attr, const char *buf,
			 size_t count)
{
	int ret;

	ret = vfio_pm_sim_parse_trigger(buf);
	if (ret)
		return ret;
	if (pm_runtime_active(dev))
		return count;
	ret = pm_request_resume(dev);
	if (ret == 1)
		pm_request_idle(dev);
	/* -EINPROGRESS: a resume is already under way, and a PME then is part of that one wake */
	return ret < 0 && ret != -EINPROGRESS ? ret : count;
}
static DEVICE_ATTR_WO(pme);

static ssize_t fail_next_entry_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct vfio_pm_sim *sim = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%d\n", atomic_read(&sim->fail_next_entry));
}

/* An errno, 5 or -5 alike; 0 cancels. Stored positive. */
static ssize_t fail_next_entry_store(struct device *dev, struct device_attribute *attr,
				     const char *buf, size_t count)
{
	struct vfio_pm_sim *sim = dev_get_drvdata(dev);
	int err;

	if (kstrtoint(buf, 10, &err) || err < -MAX_ERRNO || err > MAX_ERRNO)
		return -EINVAL;
	atomic_set(&sim->fail_next_entry, abs(err));
	return count;
}
static DEVICE_ATTR_ADMIN_RW(fail_next_entry);

static void vfio_pm_sim_remove_work(struct work_struct *work)
{
	struct vfio_pm_sim_slot *slot = container_of(work, struct vfio_pm_sim_slot, remove_work);
	struct platform_device *pdev;

	mutex_lock(&vfio_pm_sim_slots_lock);
	pdev = slot->pdev;
	slot->pdev = NULL;
	mutex_unlock(&vfio_pm_sim_slots_lock);
	if (!pdev)
		return;

	dev_info(&pdev->dev, "hot-unplug (sim/remove)\n");
	/* Blocks while the device is held, asking the holder through the request IRQ. */
	platform_device_unregister(pdev);
}

/* Hot-unplug. A sysfs attribute cannot remove its own device: a work item does. */
static ssize_t remove_store(struct device *dev, struct device_attribute *attr, const char *buf,
			    size_t count)
{
	struct platform_device *pdev = to_platform_device(dev);
	int ret;

	ret = vfio_pm_sim_parse_trigger(buf);
	if (ret)
		return ret;

	mutex_lock(&vfio_pm_sim_slots_lock);
	if (pdev->id < 0 || (unsigned int)pdev->id >= vfio_pm_sim_nr_slots ||
	    vfio_pm_sim_slots[pdev->id].pdev != pdev) {
		/* Not one of ours (bound through driver_override): nothing to remove it with. */
		ret = -ENODEV;
	} else {
		queue_work(system_long_wq, &vfio_pm_sim_slots[pdev->id].remove_work);
	}
	mutex_unlock(&vfio_pm_sim_slots_lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_WO(remove);

static ssize_t entries_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct vfio_pm_sim *sim = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%ld\n", atomic_long_read(&sim->entries));
}
static DEVICE_ATTR_RO(entries);

static ssize_t exits_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct vfio_pm_sim *sim = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%ld\n", atomic_long_read(&sim->exits));
}
static DEVICE_ATTR_RO(exits);

static ssize_t wakes_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct vfio_pm_sim *sim = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%ld\n", atomic_long_read(&sim->wakes));
}
static DEVICE_ATTR_RO(wakes);

static struct attribute *vfio_pm_sim_attrs[] = {
	&dev_attr_power_state.attr,
	NULL
};

static const struct attribute_group vfio_pm_sim_group = {
	.attrs = vfio_pm_sim_attrs,
};

static struct attribute *vfio_pm_sim_sim_attrs[] = {
	&dev_attr_wake.attr,
	&dev_attr_pme.attr,
	&dev_attr_fail_next_entry.attr,
	&dev_attr_remove.attr,
	&dev_attr_entries.attr,
	&dev_attr_exits.attr,
	&dev_attr_wakes.attr,
	NULL
};

static const struct attribute_group vfio_pm_sim_sim_group = {
	.name = "sim",
	.attrs = vfio_pm_sim_sim_attrs,
};

/* Created after probe and removed before remove by the driver core. */
static const struct attribute_group *vfio_pm_sim_groups[] = {
	&vfio_pm_sim_group,
	&vfio_pm_sim_sim_group,
	NULL
};

/* ---- the platform driver ---------------------------------------------------------------- */

static int vfio_pm_sim_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct vfio_pm_sim *sim;
	int ret;

	sim = vfio_alloc_device(vfio_pm_sim, vdev, dev, &vfio_pm_sim_dev_ops);
	if (IS_ERR(sim))
		return PTR_ERR(sim);
	platform_set_drvdata(pdev, sim);

	/* The simulated hardware is powered; held in D0 until registered. */
	ret = pm_runtime_set_active(dev);
	if (ret)
		goto err_put_vfio_device;
	pm_runtime_get_noresume(dev);
	pm_runtime_enable(dev);

	ret = vfio_register_emulated_iommu_dev(&sim->vdev);
	if (ret)
		goto err_disable_runtime_pm;

	/* As vfio-pci without disable_idle_d3: an unopened device idles into D3. */
	pm_runtime_put(dev);
	return 0;

err_disable_runtime_pm:
	pm_runtime_disable(dev);
	pm_runtime_put_noidle(dev);
	pm_runtime_set_suspended(dev);
err_put_vfio_device:
	vfio_put_device(&sim->vdev);
	return ret;
}

static void vfio_pm_sim_remove_device(struct platform_device *pdev)
{
	struct vfio_pm_sim *sim = platform_get_drvdata(pdev);
	struct device *dev = &pdev->dev;

	/* Waits until the holder closes the device, calling vfio_pm_sim_request(). */
	vfio_unregister_group_dev(&sim->vdev);

	/* Leave the simulated hardware in D0, runtime PM off, as probe found it. */
	pm_runtime_get_sync(dev);
	pm_runtime_disable(dev);
	pm_runtime_put_noidle(dev);

	vfio_put_device(&sim->vdev);
}

VFIO_PM_SIM_DEFINE_PLATFORM_REMOVE(vfio_pm_sim_remove, vfio_pm_sim_remove_device)

static struct platform_driver vfio_pm_sim_driver = {
	.probe = vfio_pm_sim_probe,
	.remove = vfio_pm_sim_remove,
	.driver = {
		.name = VFIO_PM_SIM_NAME,
		.pm = pm_ptr(&vfio_pm_sim_pm_ops),
		.dev_groups = vfio_pm_sim_groups,
	},
	/* No kernel DMA at all; the emulated IOMMU group is vfio's own. */
	.driver_managed_dma = true,
};

/* ---- module ------------------------------------------------------------------------------- */

/* Unregisters every device still there, after any removal under way. */
static void vfio_pm_sim_destroy_devices(void)
{
	unsigned int i;

	for (i = 0; i < vfio_pm_sim_nr_slots; i++) {
		struct vfio_pm_sim_slot *slot = &vfio_pm_sim_slots[i];
		struct platform_device *pdev;

		mutex_lock(&vfio_pm_sim_slots_lock);
		pdev = slot->pdev;
		slot->pdev = NULL;
		mutex_unlock(&vfio_pm_sim_slots_lock);
		if (pdev)
			platform_device_unregister(pdev);
		/* Now no "remove" can queue it again; wait for one queued before. */
		flush_work(&slot->remove_work);
	}
}

static int __init vfio_pm_sim_init(void)
{
	unsigned int i;
	int ret;

	if (devices > VFIO_PM_SIM_MAX_DEVICES) {
		pr_err("devices=%u: at most %u\n", devices, VFIO_PM_SIM_MAX_DEVICES);
		return -EINVAL;
	}

	vfio_pm_sim_slots = kcalloc(devices, sizeof(*vfio_pm_sim_slots), GFP_KERNEL);
	if (devices && !vfio_pm_sim_slots)
		return -ENOMEM;
	for (i = 0; i < devices; i++)
		INIT_WORK(&vfio_pm_sim_slots[i].remove_work, vfio_pm_sim_remove_work);
	vfio_pm_sim_nr_slots = devices;

	ret = platform_driver_register(&vfio_pm_sim_driver);
	if (ret)
		goto err_free_slots;

	for (i = 0; i < devices; i++) {
		struct platform_device *pdev;

		pdev = platform_device_register_simple(VFIO_PM_SIM_NAME, i, NULL, 0);
		if (IS_ERR(pdev)) {
			ret = PTR_ERR(pdev);
			pr_err("creating %s.%u failed: %d\n", VFIO_PM_SIM_NAME, i, ret);
			goto err_destroy_devices;
		}
		mutex_lock(&vfio_pm_sim_slots_lock);
		vfio_pm_sim_slots[i].pdev = pdev;
		mutex_unlock(&vfio_pm_sim_slots_lock);
	}
	return 0;

err_destroy_devices:
	vfio_pm_sim_destroy_devices();
	platform_driver_unregister(&vfio_pm_sim_driver);
err_free_slots:
	kfree(vfio_pm_sim_slots);
	return ret;
}

static void __exit vfio_pm_sim_exit(void)
{
	vfio_pm_sim_destroy_devices();
	platform_driver_unregister(&vfio_pm_sim_driver);
	kfree(vfio_pm_sim_slots);
}

module_init(vfio_pm_sim_init);
module_exit(vfio_pm_sim_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Simulated VFIO devices with vfio-pci's low-power device features");
