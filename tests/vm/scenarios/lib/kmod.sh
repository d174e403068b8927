# shellcheck shell=bash
# Helpers for the vfio_pm_sim scenarios (kmod-*.sh): checks counted in $failures, bounded polls,
# sysfs attributes of the simulated platform devices, vfio-pm-tool runs in the background and
# scratch files in $tmp. Each scenario calls kmod_require first and kmod_done last.

tool=${VFIOPM_TESTS_DIR:-/usr/lib/vfiopmd-tests}/vfio-pm-tool
tmp=$(mktemp -d)
failures=0

pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { # DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
sysdev() { echo "/sys/bus/platform/devices/$1"; }
attr() { cat "$(sysdev "$1")/$2" 2>/dev/null; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
# wait_for MS COMMAND...: polls COMMAND every 10 ms for at most MS.
wait_for() {
	local end=$(($(now_ms) + $1))
	shift
	until "$@"; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.01
	done
}
# write_attr PATH VALUE: prints "ok" or the error text of the write.
write_attr() {
	local out
	if out=$({ printf '%s' "$2" >"$1"; } 2>&1); then echo ok; else echo "${out##*: }"; fi
}
# The device itself: its /sys/bus link goes first when it is being removed.
gone() { [ ! -e "/sys/devices/platform/$1" ]; }
# A vfio-pm-tool in the background: bg NAME DEVICE STEP...; then wait_bg NAME -> its exit status.
bg() {
	local name=$1
	shift
	"$tool" "$@" >"$tmp/$name.log" 2>&1 &
	echo $! >"$tmp/$name.pid"
}
wait_bg() {
	local rc
	wait "$(cat "$tmp/$1.pid")"
	rc=$?
	sed 's/^/    /' "$tmp/$1.log"
	return $rc
}
# load PARAM...: (re)loads vfio_pm_sim with these module parameters; exits 1 if modprobe fails.
load() {
	modprobe -r vfio_pm_sim 2>/dev/null
	modprobe vfio_pm_sim "$@" || { echo "FAIL: modprobe vfio_pm_sim $*"; exit 1; }
	udevadm settle --timeout=120
}

# kmod_require: exits 1 unless vfio_pm_sim is installed for the running kernel.
kmod_require() {
	if ! modinfo vfio_pm_sim >/dev/null 2>&1; then
		echo "FAIL: vfio_pm_sim is not installed for $(uname -r)"
		exit 1
	fi
}

# kmod_done NAME: removes $tmp and reports; exits 1 if any check failed, else returns 0.
kmod_done() {
	rm -rf "$tmp"
	if [ "$failures" -gt 0 ]; then
		echo "$1: $failures check(s) failed"
		exit 1
	fi
	echo "$1: all checks passed"
}
