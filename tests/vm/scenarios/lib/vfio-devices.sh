# shellcheck shell=bash
# The devices of the scenarios that test every vfio backend (vfio-backend.sh, conformance.sh):
# the vfio-pci devices guest-run bound, and vfio-pm-sim.0 when the vfio_pm_sim module is installed.

# vfio_devices NAME: sets pci (the devices bound to vfio-pci) and sim (vfio-pm-sim.0's sysfs
# directory), loading vfio_pm_sim if it is installed and sim is not there yet; messages start
# with NAME. Exits 1 when no device is bound to vfio-pci.
vfio_devices() {
	local name=$1 d

	pci=()
	for d in /sys/bus/pci/drivers/vfio-pci/0000:*; do
		[ -e "$d" ] && pci+=("${d##*/}")
	done
	if [ ${#pci[@]} -eq 0 ]; then
		echo "$name: no device bound to vfio-pci" >&2
		exit 1
	fi

	sim=/sys/bus/platform/devices/vfio-pm-sim.0
	if [ ! -e "$sim" ] && modinfo vfio_pm_sim >/dev/null 2>&1; then
		echo "$name: loading vfio_pm_sim"
		modprobe vfio_pm_sim || echo "$name: modprobe vfio_pm_sim failed" >&2
		udevadm settle
	fi
}
