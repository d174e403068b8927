#!/bin/bash
# daemon/vfio.c on the real kernel: hold, wake-up entry, wake, request on unbind (vfio-pci, vfio_pm_sim).
# Inside the guest, as root, after guest-run bound the e1000e NICs to vfio-pci. Runs
# vfio-backend-probe (tests/vm/helpers/) on the first vfio-pci device and, when the vfio_pm_sim
# module is installed, on vfio-pm-sim.0: open through the backend, enter with wake-up →
# suspended, power/control=on → the wake fd fires once, unbind while held → the request fd
# fires → close → the unbind completes promptly. Each device is bound back afterwards.
# Exit: 0 every run passed; 1 a run failed or no vfio-pci device was found.
set -u
. "$(dirname "$0")/lib/vfio-devices.sh"
bin=${VFIOPM_TESTS_DIR:-/usr/lib/vfiopmd-tests}/vfio-backend-probe
[ -x "$bin" ] || { echo "vfio-backend: $bin is missing" >&2; exit 1; }

d3=$(cat /sys/module/vfio_pci/parameters/disable_idle_d3 2>/dev/null || echo '?')
echo "vfio-backend: kernel $(uname -r), vfio-pci disable_idle_d3=$d3," \
	"/dev/vfio/devices $([ -d /dev/vfio/devices ] && echo present || echo absent)"

vfio_devices vfio-backend

# Binds DEV (on BUS) back to DRIVER: the probe leaves it unbound.
rebind() {
	local bus=$1 dev=$2 driver=$3 i
	echo "$dev" > "/sys/bus/$bus/drivers/$driver/bind" 2>/dev/null ||
		echo "$dev" > "/sys/bus/$bus/drivers_probe" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		[ -e "/sys/bus/$bus/devices/$dev/driver" ] && break
		sleep 0.05
	done
	if [ -e "/sys/bus/$bus/devices/$dev/driver" ]; then
		echo "vfio-backend: $dev bound back to $(basename "$(readlink "/sys/bus/$bus/devices/$dev/driver")")"
	else
		echo "vfio-backend: $dev could not be bound back to $driver" >&2
	fi
}

runs=("pci ${pci[0]} vfio-pci")
[ -e "$sim" ] && runs+=("platform vfio-pm-sim.0 vfio-pm-sim")

failed=()
for run in "${runs[@]}"; do
	read -r bus dev driver <<<"$run"
	echo "=== vfio-backend-probe $dev"
	start=$SECONDS
	# The probe's own waits are bounded; this bounds a hang in the kernel (an unbind that never
	# returns would be the bug under test).
	timeout -s KILL 120 "$bin" "$dev"
	rc=$?
	echo "=== $dev: exit $rc after $((SECONDS - start)) s"
	[ "$rc" -eq 0 ] || failed+=("$dev")
	rebind "$bus" "$dev" "$driver"
done
[ -e "$sim" ] || echo "vfio-backend: no $sim, the simulated device was not tested"

if [ ${#failed[@]} -gt 0 ]; then
	echo "vfio-backend: FAILED on ${failed[*]}"
	exit 1
fi
echo "vfio-backend: passed on ${pci[0]}$([ -e "$sim" ] && echo " vfio-pm-sim.0")"
