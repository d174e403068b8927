#!/bin/bash
# Lists the vfio devices and their power states (no device is opened).
set -eu
found=0
printf '%-16s %-10s %-12s %-6s %-10s %-12s %s\n' DEVICE DRIVER VENDOR:DEV GROUP POWER RUNTIME SUSPENDED_MS
for d in /sys/bus/pci/drivers/vfio-pci/0000:* /sys/bus/platform/drivers/vfio-pm-sim/vfio-pm-sim.*; do
	[ -e "$d" ] || continue
	found=$((found + 1))
	vd=-
	[ -r "$d/vendor" ] && vd="$(cut -c3- "$d/vendor"):$(cut -c3- "$d/device")"
	printf '%-16s %-10s %-12s %-6s %-10s %-12s %s\n' "${d##*/}" "$(basename "$(readlink "$d/driver")")" "$vd" \
		"$(basename "$(readlink "$d/iommu_group")")" "$(cat "$d/power_state" 2>/dev/null || echo unknown)" \
		"$(cat "$d/power/runtime_status")" "$(cat "$d/power/runtime_suspended_time")"
done
ls -l /dev/vfio/
[ "$found" -gt 0 ] || { echo "no vfio device found" >&2; exit 1; }
