# shellcheck shell=bash
# Helpers for the in-guest scenarios: bounded waits on sysfs and on the daemon's journal, a
# timeline, and the daemon run as a systemd service (Type=notify, so starting it waits for
# READY=1, and its log lands in the journal with VFIOPM_DEVICE= fields). Two ways, chosen by
# $VFIOPM_DAEMON (tests/vm/run --env VFIOPM_DAEMON=unit):
#   transient (default): a transient unit vfiopmd-test (systemd-run), no hardening;
#   unit: the installed, hardened vfiopmd.service, its ExecStart= replaced by a runtime drop-in
#         ($VFIOPMD_DROPIN) that only adds arguments; Restart=on-failure, WatchdogSec= and every
#         sandboxing setting stay the unit's own.

VFIOPM_DAEMON=${VFIOPM_DAEMON:-transient}
case $VFIOPM_DAEMON in
transient) VFIOPMD_UNIT=vfiopmd-test ;;
unit) VFIOPMD_UNIT=vfiopmd ;;
*) echo "VFIOPM_DAEMON is transient or unit, not '$VFIOPM_DAEMON'" >&2; exit 2 ;;
esac
VFIOPMD_DROPIN=/run/systemd/system/vfiopmd.service.d/50-test.conf
POLICY_DIR=/run/vfiopmd-test/policy.d
# Journal timestamps are journald's receive times, not the daemon's: the distance between two of
# its lines can come out a few ms short of the delay the daemon kept (seen under TCG: 2998 ms for
# a 3000 ms flap hold). Checks of a delay between two lines allow this much.
JOURNAL_SLACK_MS=50
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

# unit_quote ARGS...: ARGS as one systemd command line (ExecStart=): each argument quoted, with
# % (specifiers) and $ (environment variables) escaped.
unit_quote() {
	local a out=()
	for a in "$@"; do
		a=${a//%/%%}; a=${a//\$/\$\$}
		if [[ $a =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then
			out+=("$a")
		else
			a=${a//\\/\\\\}; a=${a//\"/\\\"}
			out+=("\"$a\"")
		fi
	done
	printf '%s' "${out[*]}"
}

# daemon_start [-p PROPERTY=VALUE]... [ARGS...]: starts vfiopmd with --bus none --log-level debug
# --policy-dirs $POLICY_DIR, then ARGS (later options win), and returns once it said READY=1.
# -p sets a unit property: systemd-run's -p for the transient unit, a line of the drop-in for the
# installed one (e.g. -p WatchdogSec=2). The transient unit has RemainAfterExit=yes, so its exit
# status stays readable; the installed unit keeps ExecMainStatus= once inactive as well.
daemon_start() {
	local props=()
	while [ "${1:-}" = -p ]; do props+=("$2"); shift 2; done
	local cmd=(vfiopmd --bus none --log-level debug --policy-dirs "$POLICY_DIR" "$@")
	systemctl stop "$VFIOPMD_UNIT" 2>/dev/null
	systemctl reset-failed "$VFIOPMD_UNIT" 2>/dev/null
	if [ "$VFIOPM_DAEMON" = unit ]; then
		cmd[0]=/usr/sbin/vfiopmd
		local dropin
		dropin=$(printf '%s\n' "# tests/vm/scenarios/lib/common.sh: daemon_start" "[Service]" "ExecStart=" \
			"ExecStart=$(unit_quote "${cmd[@]}")" "${props[@]}")
		# daemon-reload (seconds under TCG) only when the drop-in changed
		if [ "$(cat "$VFIOPMD_DROPIN" 2>/dev/null)" != "$dropin" ]; then
			mkdir -p "${VFIOPMD_DROPIN%/*}"
			printf '%s\n' "$dropin" >"$VFIOPMD_DROPIN"
			systemctl daemon-reload
		fi
		systemctl start vfiopmd || fail "vfiopmd.service did not start: $(systemctl status --no-pager vfiopmd 2>&1 | tail -n 20)"
		say "vfiopmd.service started (pid $(daemon_pid)): $(grep ^ExecStart=. "$VFIOPMD_DROPIN")${props[*]:+, ${props[*]}}"
	else
		systemd-run --quiet --unit "$VFIOPMD_UNIT" -p Type=notify -p NotifyAccess=main -p RemainAfterExit=yes \
			"${props[@]/#/--property=}" "${cmd[@]}" || fail "vfiopmd did not start"
		say "vfiopmd started (pid $(daemon_pid))${props[*]:+, ${props[*]}}"
	fi
}
daemon_pid() { systemctl show -p MainPID --value "$VFIOPMD_UNIT"; }
daemon_stop() { systemctl stop "$VFIOPMD_UNIT"; }
# unit_prop NAME: a property of the daemon's unit (systemctl show)
unit_prop() { systemctl show -p "$1" --value "$VFIOPMD_UNIT"; }
# status_is TEXT [MS]: the unit's STATUS= (systemctl's StatusText) becomes TEXT within MS
status_is() {
	local s end
	now_ms; end=$((NOW_MS + ${2:-60000}))
	while :; do
		s=$(unit_prop StatusText)
		[ "$s" = "$1" ] && return 0
		now_ms; [ "$NOW_MS" -ge "$end" ] && break
		sleep 0.2
	done
	say "STATUS is '$s', waited ${2:-60000} ms for '$1'"
	return 1
}
daemon_log() { journalctl -q -b -u "$VFIOPMD_UNIT" -o cat --no-pager; }
# sandbox_denials: the daemon's journal lines saying the unit's sandbox refused something (EPERM
# from SystemCallFilter= or a capability, EROFS, EACCES, SIGSYS)
sandbox_denials() { daemon_log | grep -E "Operation not permitted|Read-only file system|Permission denied|Bad system call"; }

# device_state DEV: the device's state as the daemon reports it (vfiopmctl --json show), empty
# while the daemon does not know it or cannot be reached
device_state() { vfiopmctl --json show "$1" 2>/dev/null | jq -r .state; }
# wait_state DEV STATE [MS]: the daemon reports DEV in STATE within MS (default 5000) ms
wait_state() {
	local s end
	now_ms; end=$((NOW_MS + ${3:-5000}))
	while :; do
		s=$(device_state "$1")
		[ "$s" = "$2" ] && return 0
		now_ms; [ "$NOW_MS" -ge "$end" ] && break
		sleep 0.05
	done
	say "$1: state is '$s', waited ${3:-5000} ms for $2"
	return 1
}
# wait_restarted N [SECONDS]: systemd has restarted the daemon's unit N times or more
# (NRestarts) and it runs again (READY=1), within SECONDS (default 20); fails otherwise
wait_restarted() {
	local end
	now_ms; end=$((NOW_MS + ${2:-20} * 1000))
	while [ "$NOW_MS" -lt "$end" ]; do
		[ "$(unit_prop NRestarts)" -ge "$1" ] && [ "$(unit_prop SubState)" = running ] && return 0
		sleep 0.05
		now_ms
	done
	fail "NRestarts $(unit_prop NRestarts) (expected $1), $(unit_prop ActiveState)/$(unit_prop SubState) after ${2:-20} s"
}

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
log_time_ms() { journal_ms short-monotonic '^\[ *([0-9]+)\.([0-9]{3}).*' "$@"; }
# log_realtime_ms REGEX [N]: the same on the realtime clock (ms since the epoch, as now_ms's)
log_realtime_ms() { journal_ms short-unix '^([0-9]+)\.([0-9]{3}).*' "$@"; }
journal_ms() {
	journalctl -q -b -u "$VFIOPMD_UNIT" -o "$1" --no-pager |
		grep -E "${3}" | sed -n "${4:-\$}p" | sed -E "s/$2/\\1\\2/"
}
log_count() { daemon_log | grep -cE "$1"; }
# ready_ms: the daemon's unit from its main process's start to READY=1 (its last start), in ms
ready_ms() { echo $((($(unit_prop ActiveEnterTimestampMonotonic) - $(unit_prop ExecMainStartTimestampMonotonic)) / 1000)); }
# ticks PID: the process's user + system CPU time in clock ticks
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# sim_sum COUNTER: vfio_pm_sim's COUNTER (entries, exits, wakes) summed over every device
sim_sum() { cat /sys/bus/platform/devices/vfio-pm-sim.*/sim/"$1" | awk '{ s += $1 } END { print s + 0 }'; }

# restart_adopts N: `systemctl restart` of the installed vfiopmd.service ($VFIOPM_DAEMON=unit)
# holding N armed vfio-pm-sim devices: the new daemon adopts all N from the fd store and wakes none
# (the module's entries and exits do not move), and all are armed again. Sets RESTART_MS (the
# restart's wall time) and RESTART_READY_MS (the new daemon's start to READY).
restart_adopts() {
	local n=$1 e0 x0 t0 adopted
	e0=$(sim_sum entries) x0=$(sim_sum exits)
	t0=${EPOCHREALTIME/./}
	systemctl restart vfiopmd ||
		fail "systemctl restart vfiopmd with $n devices held: $(journalctl -q -b -u vfiopmd -o cat --no-pager | grep -m1 -E 'Failed at step|Failed to')"
	RESTART_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
	RESTART_READY_MS=$(ready_ms)
	status_is "$n devices: $n armed" 120000 || fail "vfiopmd.service, $n devices: not all armed after the restart"
	adopted=$(journalctl -q -b _SYSTEMD_INVOCATION_ID="$(unit_prop InvocationID)" -o cat --no-pager |
		grep -c ': Adopted from the daemon before')
	[ "$adopted" = "$n" ] || fail "$adopted of $n devices adopted after the restart"
	[ "$(sim_sum entries) $(sim_sum exits)" = "$e0 $x0" ] ||
		fail "the restart moved the module's counters: entries $e0 → $(sim_sum entries), exits $x0 → $(sim_sum exits)"
}

# The states the daemon went through, with journal timestamps.
timeline_dump() {
	say "timeline:"
	journalctl -q -b -u "$VFIOPMD_UNIT" -o short-monotonic --no-pager | sed 's/^/    /'
}

# host_monitor COMMAND...: has the host run COMMAND on this guest's qemu monitor and prints the
# reply, "ok[ OUTPUT]" or "error: WHY"; returns 0 on ok. COMMAND is an HMP command line
# ("device_del nic1"), a QMP command as JSON, or qmp-events (the QMP events so far, a JSON array).
# A line "SEQ COMMAND" on the virtio-serial port org.vfiopm.host, read by tests/vm/host-relay on
# the host (tests/vm/run); replies to an earlier, timed-out SEQ are skipped.
HOST_MONITOR_PORT=/dev/virtio-ports/org.vfiopm.host
host_monitor() {
	local port=$HOST_MONITOR_PORT seq=$$.$RANDOM fd line end
	udevadm settle
	[ -e "$port" ] || { echo "error: no $port (the rig's virtio-serial port)"; return 2; }
	exec {fd}<>"$port" || { echo "error: cannot open $port"; return 2; }
	printf '%s %s\n' "$seq" "$*" >&"$fd"
	now_ms; end=$((NOW_MS + 30000))
	while [ "$NOW_MS" -lt "$end" ]; do
		if read -r -t 5 line <&"$fd" && [ "${line%% *}" = "$seq" ]; then
			exec {fd}>&-
			line=${line#* }
			echo "$line"
			[ "${line%% *}" = ok ]
			return
		fi
		now_ms
	done
	exec {fd}>&-
	echo "error: no reply from the host in 30 s"
	return 2
}
