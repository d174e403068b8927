# shellcheck shell=bash
# Helpers for the in-guest scenarios: bounded waits on sysfs and on the daemon's journal, a
# timeline, and the daemon run as a transient systemd service (Type=notify, so starting it
# waits for READY=1, and its log lands in the journal with VFIOPM_DEVICE= fields).

VFIOPMD_UNIT=vfiopmd-test
POLICY_DIR=/run/vfiopmd-test/policy.d
T0=$(date +%s%N)

say() { printf '[%6.2f] %s\n' "$(( ($(date +%s%N) - T0) / 10000000 ))e-2" "$*"; }
fail() { say "FAIL: $*"; timeline_dump; exit 1; }
pass() { say "ok: $*"; }

dev_dir() {
	local d
	for d in /sys/bus/pci/devices/"$1" /sys/bus/platform/devices/"$1"; do
		[ -e "$d" ] && { echo "$d"; return 0; }
	done
	return 1
}
runtime_status() { cat "$(dev_dir "$1")/power/runtime_status"; }

# Milliseconds on the realtime clock, without a fork (TCG makes every fork slow).
now_ms() { local t=${EPOCHREALTIME/./}; NOW_MS=$((t / 1000)); }

# wait_runtime DEV STATUS [MS]: bounded poll, 10 ms steps (default 5000 ms)
wait_runtime() {
	local dev=$1 want=$2 f s end
	f=$(dev_dir "$dev")/power/runtime_status
	now_ms; end=$((NOW_MS + ${3:-5000}))
	while :; do
		read -r s <"$f"
		[ "$s" = "$want" ] && return 0
		now_ms; [ "$NOW_MS" -ge "$end" ] && break
		sleep 0.01
	done
	say "$dev: runtime_status is $s, waited ${3:-5000} ms for $want"
	return 1
}

# stays_runtime_until DEV STATUS END_MS: STATUS holds until the realtime clock reads END_MS
stays_runtime_until() {
	local dev=$1 want=$2 end=$3 f s
	f=$(dev_dir "$dev")/power/runtime_status
	while :; do
		read -r s <"$f"
		[ "$s" = "$want" ] || { say "$dev: runtime_status became $s, expected to stay $want"; return 1; }
		now_ms; [ "$NOW_MS" -ge "$end" ] && return 0
		sleep 0.01
	done
}
# stays_runtime DEV STATUS MS: STATUS holds for the next MS
stays_runtime() { now_ms; stays_runtime_until "$1" "$2" $((NOW_MS + $3)); }

vfio_pci_devices() { ls /sys/bus/pci/drivers/vfio-pci | grep '^0000:' ; }

policy_write() { mkdir -p "$POLICY_DIR"; printf '%s\n' "$2" >"$POLICY_DIR/$1"; }

# Type=notify: returns once vfiopmd said READY=1. RemainAfterExit keeps its exit status.
daemon_start() {
	systemctl stop "$VFIOPMD_UNIT" 2>/dev/null
	systemctl reset-failed "$VFIOPMD_UNIT" 2>/dev/null
	systemd-run --quiet --unit "$VFIOPMD_UNIT" -p Type=notify -p NotifyAccess=main -p RemainAfterExit=yes \
		vfiopmd --bus none --log-level debug --policy-dirs "$POLICY_DIR" "$@" ||
		fail "vfiopmd did not start"
	say "vfiopmd started (pid $(daemon_pid))"
}
daemon_pid() { systemctl show -p MainPID --value "$VFIOPMD_UNIT"; }
daemon_stop() { systemctl stop "$VFIOPMD_UNIT"; }
daemon_log() { journalctl -q -b -u "$VFIOPMD_UNIT" -o cat --no-pager; }

# wait_log REGEX [SECONDS] [MIN_COUNT]: the daemon's journal has at least MIN_COUNT lines matching
wait_log() {
	local re=$1 min=${3:-1} end
	now_ms; end=$((NOW_MS + ${2:-10} * 1000))
	while :; do
		[ "$(daemon_log | grep -cE "$re")" -ge "$min" ] && return 0
		now_ms; [ "$NOW_MS" -ge "$end" ] && break
		sleep 0.05
	done
	say "no daemon log line matching '$re' (x$min) after ${2:-10} s"
	return 1
}
# log_time_ms REGEX [N]: the journal's monotonic time (ms) of the N-th matching line (default: last)
log_time_ms() {
	journalctl -q -b -u "$VFIOPMD_UNIT" -o short-monotonic --no-pager |
		grep -E "${1}" | sed -n "${2:-\$}p" | sed -E 's/^\[ *([0-9]+)\.([0-9]{3}).*/\1\2/'
}
log_count() { daemon_log | grep -cE "$1"; }

# The states the daemon went through, with journal timestamps.
timeline_dump() {
	say "timeline:"
	journalctl -q -b -u "$VFIOPMD_UNIT" -o short-monotonic --no-pager | sed 's/^/    /'
}
