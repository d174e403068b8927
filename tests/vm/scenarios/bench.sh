#!/bin/bash
# SPEC §8 benchmarks (tools/bench runs this): vfiopmd on SMALL and LARGE vfio-pm-sim devices, each figure beside a floor measured in the same run; prints "BENCH|" table rows and fails when a target is missed (ENFORCE=1).
# Args: SMALL LARGE WRITES IDLE_S ENFORCE (default 64 1000 2000 60 1). Needs no NIC; strace in the guest.
set -u
. "$(dirname "$0")/lib/common.sh"
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool
small=${1:-64} large=${2:-1000} writes=${3:-2000} idle_s=${4:-60} enforce=${5:-1}
sim=/sys/bus/platform/devices
missed=0

# The bus policy (org.vfiopm1.conf) came with the payload, after dbus-daemon started.
systemctl reload dbus || fail "reloading dbus"
command -v strace >/dev/null || fail "no strace in the guest"

# row FIGURE VALUE FLOOR TARGET VERDICT: one table row; the ratio is VALUE / FLOOR
row() {
	local ratio
	ratio=$(awk -v v="$2" -v f="$3" 'BEGIN { if (f + 0 > 0 && v ~ /^[0-9.]+$/) printf "%.2f", v / f; else print "-" }')
	echo "BENCH|$1|$2|$3|$ratio|$4|$5"
}
# check FIGURE VALUE FLOOR TARGET CONDITION: a row, judged by the awk CONDITION over v (value)
# and f (floor); a miss fails the run when enforced
check() {
	local verdict
	if [[ $2 =~ ^[0-9.]+$ ]] && awk -v v="$2" -v f="$3" "BEGIN { exit !($5) }"; then verdict=ok
	elif [ "$enforce" = 1 ]; then verdict=MISSED; missed=$((missed + 1))
	else verdict="missed (smoke: not enforced)"; fi
	row "$1" "$2" "$3" "$4" "$verdict"
}
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# cpu_us PID: the process's time on a CPU in µs (schedstat: ns, not 10 ms ticks)
cpu_us() { awk '{ printf "%d", $1 / 1000 }' "/proc/$1/schedstat"; }
# wakeups PID: its context switches so far (each return from epoll_wait/poll is one)
wakeups() { awk '/^(voluntary|nonvoluntary)_ctxt_switches/ { n += $2 } END { print n }' "/proc/$1/status"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
pss_anon_kib() { awk '/^Pss_Anon/ { print $2 }' "/proc/$1/smaps_rollup"; }
heap_kib() { awk '/\[heap\]/ { h = 1; next } h && /^Rss:/ { print $2; exit }' "/proc/$1/smaps"; }
sim_wakes() { cat "$sim/$1/sim/wakes"; }
# wall_us CMD...: the wall time of one run of CMD, in microseconds
wall_us() {
	local t0=${EPOCHREALTIME/./}
	"$@" >/dev/null 2>&1 || fail "'$*' failed"
	echo $((${EPOCHREALTIME/./} - t0))
}
# medians_us N CMD_A -- CMD_B: runs A and B in turn N times and prints the median wall time of
# each, in microseconds: a host that slows down meanwhile weighs on both alike
medians_us() {
	local n=$1 i a=() b=() sep
	shift
	for ((sep = 1; sep <= $#; sep++)); do [ "${!sep}" = -- ] && break; done
	for ((i = 0; i < n; i++)); do
		a+=("$(wall_us "${@:1:sep-1}")") b+=("$(wall_us "${@:sep+1}")")
	done
	echo "$(median "${a[@]}") $(median "${b[@]}")"
}
# strace_calls PID OUT CMD...: the system calls PID makes while CMD runs (strace -c), total
strace_calls() {
	local pid=$1 out=$2 spid
	shift 2
	strace -c -q -f -p "$pid" -o "$out" 2>"$out.err" &
	spid=$!
	# attached (TracerPid set) before the stream starts
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(awk '/^TracerPid/ { print $2 }' "/proc/$pid/status")" != 0 ] && break
		sleep 0.1
	done
	[ "$i" -lt 100 ] || fail "strace did not attach to $pid"
	sleep 0.5
	"$@" >/dev/null || fail "'$*' failed"
	sleep 1
	local rc
	kill -INT "$spid"; wait "$spid"; rc=$?
	# seen once: no summary at all (an empty file): say what strace said
	grep -q 'total$' "$out" || say "strace -p $pid wrote no summary (exit $rc): $(cat "$out.err")" >&2
	awk '$NF == "total" { print $4 }' "$out"
}
# pme DEV N: N device-initiated wakes, written from a shell loop as a script would (each an open,
# write, close of sim/pme); a write that finds DEV not in low power is not a wake
pme() {
	local i f=$sim/$1/sim/pme
	for ((i = 0; i < $2; i++)); do echo 1 >"$f"; done
}
# stream DEV PID N: pme DEV N; adds to CAUGHT (the module's wakes counter moved by) and CPU
# (PID's CPU time, µs)
stream() {
	local w0 t0
	w0=$(sim_wakes "$1") t0=$(cpu_us "$2")
	pme "$1" "$3" || fail "writing $1's sim/pme"
	sleep 1
	CAUGHT=$((CAUGHT + $(sim_wakes "$1") - w0)) CPU=$((CPU + $(cpu_us "$2") - t0))
}
# streams FLOOR_DEV FLOOR_PID DEV PID: WRITES wakes for each, in 8 alternating rounds, so that a
# host that gets busier or quieter meanwhile (TCG: the guest's clock runs on) weighs on both alike;
# sets FLOOR_CAUGHT, DAEMON_CAUGHT (summed) and FLOOR_CPU, DAEMON_CPU: the median round's CPU µs a
# wake caught (a round the host slowed, seen up to 1.4× the others, moves a sum, not the median)
streams() {
	local round fc=0 dc=0 f=() d=()
	for round in 1 2 3 4 5 6 7 8; do
		CAUGHT=0 CPU=0; stream "$1" "$2" $((writes / 8)); fc=$((fc + CAUGHT)) f+=("$(per "$CPU" "$CAUGHT")")
		CAUGHT=0 CPU=0; stream "$3" "$4" $((writes / 8)); dc=$((dc + CAUGHT)) d+=("$(per "$CPU" "$CAUGHT")")
	done
	say "CPU µs a wake, each round: floor ${f[*]}; vfiopmd ${d[*]}"
	FLOOR_CAUGHT=$fc FLOOR_CPU=$(median "${f[@]}") DAEMON_CAUGHT=$dc DAEMON_CPU=$(median "${d[@]}")
}
# median N...: of numbers (the lower middle one of an even count)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
per() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }

# energy FLOOR_DEV: the daemon's devices but FLOOR_DEV, summed: the kernel's suspended time since
# the daemon saw them (ms) and the energy saved (J), as vfiopmctl --json status gives them
watts_active=10 watts_low=1
energy() {
	vfiopmctl --json status | jq -r --arg f "$1" '[.devices[] | select(.name != $f)] |
		"\(map(.kernel_suspended_since_seen_msec) | add) \(map(.energy_saved_joules) | add)"'
}

# run N: vfiopmd on N devices (vfio-pm-sim.0 … N-1) beside the floor, vfio-pm-tool holding
# vfio-pm-sim.N armed with the same ENTRY_WITH_WAKEUP and re-entering on each wake. The daemon's
# policy re-arms at once and without the flap guard (flap_hold_s 0), as the floor does.
run() {
	local n=$1 floor=vfio-pm-sim.$1 start ready armed_at last fpid pid
	systemctl stop "$VFIOPMD_UNIT" 2>/dev/null
	modprobe -r vfio_pm_sim 2>/dev/null
	modprobe vfio_pm_sim devices=$((n + 1)) || fail "modprobe vfio_pm_sim devices=$((n + 1))"
	policy_write 50-bench.json "[
	  { \"match\": { \"driver\": \"vfio-pm-sim\" }, \"mode\": \"wakeup\", \"arm_delay_ms\": 0, \"rearm_delay_ms\": 0,
	    \"flap_hold_s\": 0, \"power_active_w\": $watts_active, \"power_low_w\": $watts_low },
	  { \"match\": { \"device\": \"$floor\" }, \"mode\": \"kernel\" }
	]"
	"$tool" "$floor" open wakeup rearm >/tmp/floor.log 2>&1 &
	fpid=$!
	wait_runtime "$floor" suspended || fail "the floor did not arm $floor"

	# systemd's default fd limit for services; info, as installed; no watchdog
	daemon_start -p LimitNOFILE=1024:524288 --bus system --log-level info
	pid=$(daemon_pid)
	start=$(unit_prop ExecMainStartTimestampMonotonic) ready=$(unit_prop ActiveEnterTimestampMonotonic)
	status_is "$((n + 1)) devices: $n armed, 1 kernel" 120000 || fail "$n devices: not all armed after 120 s"
	# the journal's time of the last first arm (monotonic µs; the daemon logs it at info)
	last=$(journalctl -q -b -u "$VFIOPMD_UNIT" -o short-monotonic --no-pager | grep -E ': idle → armed$' | tail -n 1 |
		sed -E 's/^\[ *([0-9]+)\.([0-9]{6}).*/\1\2/')
	READY_MS[$n]=$(((ready - start) / 1000))
	ARMED_MS[$n]=$(((last - start) / 1000))

	sleep 6         # the last power follow-up reads (5 s after a change) are over
	local d0 f0 e0 e1 t0 t1
	e0=$(energy "$floor") t0=$(uptime_ms)
	d0=$(wakeups "$pid") f0=$(wakeups "$fpid")
	sleep "$idle_s"
	IDLE[$n]=$(( ($(wakeups "$pid") - d0) * 60 / idle_s ))
	IDLE_FLOOR[$n]=$(( ($(wakeups "$fpid") - f0) * 60 / idle_s ))
	e1=$(energy "$floor") t1=$(uptime_ms)
	# over the idle window, every device armed: the share of device time the kernel counted
	# suspended (floor: all of it) and the energy saved (floor: the watts saved × that time)
	read -r SHARE[$n] SHARE_FLOOR[$n] JOULES[$n] JOULES_FLOOR[$n] < <(awk -v a="$e0" -v b="$e1" -v ms=$((t1 - t0)) \
		-v n="$n" -v w="$(awk -v a="$watts_active" -v l="$watts_low" 'BEGIN { print a - l }')" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		printf "%d %d %.1f %.1f\n", y[1] - x[1], n * ms, y[2] - x[2], w * n * ms / 1000 }')
	RSS[$n]=$(rss_kib "$pid") PSS[$n]=$(pss_anon_kib "$pid")
	RSS_FLOOR[$n]=$(rss_kib "$fpid") PSS_FLOOR[$n]=$(pss_anon_kib "$fpid")
	HEAP[$n]=$(heap_kib "$pid") HEAP_FLOOR[$n]=$(heap_kib "$fpid")

	read -r STATUS_US[$n] BUSCTL_US[$n] < <(medians_us 11 vfiopmctl status -- \
		busctl get-property org.vfiopm1 /org/vfiopm1 org.vfiopm1.Manager Version)
	# where a status goes: CPU ms a call of the daemon, dbus-daemon and vfiopmctl itself
	local bpid t_d t_b t_c
	bpid=$(systemctl show -p MainPID --value dbus.service)
	t_d=$(ticks "$pid") t_b=$(ticks "$bpid")
	t_c=$( { TIMEFORMAT='%U %S'; time { for i in 1 2 3 4 5; do vfiopmctl status >/dev/null; done; }; } 2>&1 | awk '{ printf "%d", ($1 + $2) * 1000 / 5 }')
	STATUS_CPU[$n]="vfiopmd $(( ($(ticks "$pid") - t_d) * 10 / 5 )), dbus-daemon $(( ($(ticks "$bpid") - t_b) * 10 / 5 )), vfiopmctl $t_c"
	read -r JSON_US[$n] _ < <(medians_us 5 vfiopmctl --json status -- true)

	if [ "$n" = "$small" ]; then
		local dev=vfio-pm-sim.0 calls wakes0
		streams "$floor" "$fpid" "$dev" "$pid"
		wakes0=$(sim_wakes "$floor")
		calls=$(strace_calls "$fpid" /tmp/floor.strace pme "$floor" "$writes")
		FLOOR_CALLS=$(per "$calls" $(($(sim_wakes "$floor") - wakes0)))
		wakes0=$(sim_wakes "$dev")
		calls=$(strace_calls "$pid" /tmp/daemon.strace pme "$dev" "$writes")
		DAEMON_CALLS=$(per "$calls" $(($(sim_wakes "$dev") - wakes0)))
		say "the daemon's system calls under the stream (strace -c):"
		sed 's/^/    /' /tmp/daemon.strace
		say "the floor's:"
		sed 's/^/    /' /tmp/floor.strace
		[ "$(vfiopmctl --json show "$dev" | jq -r .state)" = armed ] || fail "$dev not armed after the streams"
	fi
	daemon_stop
	kill -TERM "$fpid"; wait "$fpid"
	say "$n devices: READY after ${READY_MS[$n]} ms, all armed after ${ARMED_MS[$n]} ms"
}

# run_store N: the installed vfiopmd.service, whose fd store keeps the held devices across a
# restart (SPEC §9), on N devices: start to READY, beside the transient unit's (no store) of the
# same N from run(); `systemctl restart` (restart_adopts: every device adopted, none woken);
# `systemctl stop`, after which every device is free.
run_store() {
	local n=$1 t0
	systemctl stop "$VFIOPMD_UNIT" 2>/dev/null
	modprobe -r vfio_pm_sim 2>/dev/null
	modprobe vfio_pm_sim devices="$n" || fail "modprobe vfio_pm_sim devices=$n"
	policy_write 50-bench.json '{ "match": { "driver": "vfio-pm-sim" }, "mode": "wakeup", "arm_delay_ms": 0,
	  "rearm_delay_ms": 0, "flap_hold_s": 0 }'
	VFIOPM_DAEMON=unit VFIOPMD_UNIT=vfiopmd
	daemon_start --bus system --log-level info
	STORE_READY_MS=$(ready_ms)
	status_is "$n devices: $n armed" 120000 || fail "vfiopmd.service, $n devices: not all armed after 120 s"
	restart_adopts "$n"
	t0=${EPOCHREALTIME/./}
	systemctl stop vfiopmd || fail "systemctl stop vfiopmd"
	STOP_MS=$(((${EPOCHREALTIME/./} - t0) / 1000))
	"$tool" "vfio-pm-sim.$((n - 1))" open close >/dev/null || fail "vfio-pm-sim.$((n - 1)) not free after the stop"
	say "vfiopmd.service, $n devices: READY after $STORE_READY_MS ms; restart $RESTART_MS ms (READY $RESTART_READY_MS ms after the new start, all adopted, none woken); stop $STOP_MS ms"
	rm -f "$VFIOPMD_DROPIN"
	systemctl daemon-reload
	VFIOPM_DAEMON=transient VFIOPMD_UNIT=vfiopmd-test
}

declare -A SHARE SHARE_FLOOR JOULES JOULES_FLOOR
declare -A READY_MS ARMED_MS IDLE IDLE_FLOOR RSS PSS RSS_FLOOR PSS_FLOOR HEAP HEAP_FLOOR STATUS_US STATUS_CPU JSON_US BUSCTL_US
run "$small"
run "$large"
run_store "$large"

echo "BENCH|figure|vfiopmd|floor|ratio|target|verdict"
for n in "$small" "$large"; do
	check "idle wake-ups a minute, $n armed" "${IDLE[$n]}" "${IDLE_FLOOR[$n]}" "0" "v == 0"
done
for n in "$small" "$large"; do
	row "VmRSS KiB, $n devices" "${RSS[$n]}" "${RSS_FLOOR[$n]}" "" ""
	row "Pss_Anon KiB, $n devices" "${PSS[$n]}" "${PSS_FLOOR[$n]}" "" ""
	row "malloc heap RSS KiB, $n devices" "${HEAP[$n]:-0}" "${HEAP_FLOOR[$n]:-0}" "" ""
done
check "VmRSS KiB, $large devices (≤ 8 MiB)" "${RSS[$large]}" "${RSS_FLOOR[$large]}" "≤ 8192" "v <= 8192"
for n in "$small" "$large"; do
	row "device ms suspended (kernel's runtime_suspended_time) in the idle window, $n devices (floor: all of it)" \
		"${SHARE[$n]}" "${SHARE_FLOOR[$n]}" "" ""
	row "energy saved J in the idle window, $n devices at $watts_active W − $watts_low W (floor: all of it)" \
		"${JOULES[$n]}" "${JOULES_FLOOR[$n]}" "" ""
done
row "start to READY ms, $small devices" "${READY_MS[$small]}" "" "" ""
check "start to READY ms, $large devices" "${READY_MS[$large]}" "90000" "≤ 45000 (systemd's timeout 90 s)" "v <= 45000"
check "start to READY ms, $large devices, vfiopmd.service with its fd store (floor: no store)" "$STORE_READY_MS" \
	"${READY_MS[$large]}" "≤ 45000" "v <= 45000"
row "systemctl restart vfiopmd ms, $large devices adopted, none woken (floor: start to READY)" "$RESTART_MS" \
	"$STORE_READY_MS" "" ""
row "systemctl stop vfiopmd ms, $large devices let go" "$STOP_MS" "" "" ""
row "start to all armed ms, $small devices" "${ARMED_MS[$small]}" "" "" ""
check "start to all armed ms, $large devices (floor: $small devices × $large/$small)" "${ARMED_MS[$large]}" \
	"$(awk -v a="${ARMED_MS[$small]}" -v s="$small" -v l="$large" 'BEGIN { printf "%d", a * l / s }')" "ratio ≤ 1.5" "v <= 1.5 * f"
check "system calls a wake (strace -c)" "$DAEMON_CALLS" "$FLOOR_CALLS" "ratio ≤ 2" "v <= 2 * f"
check "CPU µs a wake (schedstat, median of 8 rounds)" "$DAEMON_CPU" "$FLOOR_CPU" "ratio ≤ 2" "v <= 2 * f"
check "wakes caught of $writes sim/pme writes (a shell loop)" "$DAEMON_CAUGHT" "$FLOOR_CAUGHT" "ratio ≥ 0.9" "v >= 0.9 * f"
for n in "$small" "$large"; do
	row "vfiopmctl status µs, $n devices (floor: busctl get-property)" "${STATUS_US[$n]}" "${BUSCTL_US[$n]}" "" ""
	row "vfiopmctl --json status µs, $n devices" "${JSON_US[$n]}" "${BUSCTL_US[$n]}" "" ""
done
check "vfiopmctl status µs, $large devices" "${STATUS_US[$large]}" "${BUSCTL_US[$large]}" "ratio ≤ 2" "v <= 2 * f"
for n in "$small" "$large"; do
	row "vfiopmctl status, CPU ms a call, $n devices" "${STATUS_CPU[$n]}" "" "" ""
done
[ "$missed" = 0 ] || fail "$missed target(s) missed"
say "PASS"
