#!/bin/bash
# Runs the VFIO low-power conformance suite on the first vfio-pci device and on vfio-pm-sim.0.
# Inside the guest, as root, after guest-run bound the e1000e NICs to vfio-pci.
# vfio-pm-sim.0 is tested when it exists (the module is loaded here if it is installed).
# Exit: 0 every run passed; 1 a run failed or no vfio-pci device was found.
set -u
. "$(dirname "$0")/lib/vfio-devices.sh"
bin=${VFIOPM_TESTS_DIR:-/usr/lib/vfiopmd-tests}/vfio-lp-conformance
[ -x "$bin" ] || { echo "conformance: $bin is missing" >&2; exit 1; }

d3=$(cat /sys/module/vfio_pci/parameters/disable_idle_d3 2>/dev/null || echo '?')
echo "conformance: kernel $(uname -r), vfio-pci disable_idle_d3=$d3"

vfio_devices conformance

devs=("${pci[0]}")
[ -e "$sim" ] && devs+=(vfio-pm-sim.0)

failed=()
for dev in "${devs[@]}"; do
	echo "=== vfio-lp-conformance $dev"
	start=$SECONDS
	"$bin" "$dev"
	rc=$?
	echo "=== $dev: exit $rc after $((SECONDS - start)) s"
	[ "$rc" -eq 0 ] || failed+=("$dev")
done
[ -e "$sim" ] || echo "conformance: no $sim, the simulated device was not tested"

if [ ${#failed[@]} -gt 0 ]; then
	echo "conformance: FAILED on ${failed[*]}"
	exit 1
fi
echo "conformance: passed on ${devs[*]}"
