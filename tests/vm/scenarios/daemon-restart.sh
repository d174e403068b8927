#!/bin/bash
# Zero-wake restarts (issue 15, SPEC §9): under the installed vfiopmd.service, with a NIC and vfio-pm-sim devices in wakeup and auto modes, systemctl restart, SIGKILL, a watchdog abort, systemctl restart dbus and dpkg -i of the same package (with --debs) each leave every held device suspended (runtime_status sampled every 10 ms), the module's counters unmoved and vfiopmctl's Wakes/Arms kept; a PME while the daemon is SIGSTOPped is counted and re-armed; Release then frees the group at once and stop frees everything.
#
# usage: tests/vm/run --kernel 6.1 --nics 1 --vfio-pci-opts disable_idle_d3=1 --env VFIOPM_DAEMON=unit \
#            --timeout 1200 daemon-restart
#        the same with --debs DIR (tools/build-debs DIR) for the dpkg -i phase as well
#        --env VFIOPM_KEEP_GOING=1: a failed phase does not end the run; every phase runs and a
#        summary says which failed and why (to see each restart kind fail on its own)
#
# Written before the feature (issue 15: the held fds kept in systemd's fd store): it fails on a
# daemon that closes its devices when it exits. tools/test-all runs it on both kernels.
#
# disable_idle_d3=1: a vfio-pci device nobody holds stays in D0, so a restart that closes the
# device fds is seen as the NIC leaving `suspended` (vfio-pm-sim devices suspend unopened, but
# their sim/entries, exits and wakes move). Phases, each with a baseline taken once every device
# is armed and suspended:
#   pme-while-stopped (before)  SIGSTOP, sim/pme on the wakeup sim device, SIGCONT: the wake is
#                               counted (Wakes +1, sim/wakes +1) and the device armed again
#   0 control (no restart)      the checks below around a one-second SIGSTOP instead of a restart:
#                               shows that measuring moves nothing (passes on today's code)
#   1 systemctl-restart         systemctl restart vfiopmd
#   2 sigkill                   kill -KILL MainPID, Restart=on-failure brings it back
#   3 watchdog                  SIGSTOP past the unit's own WatchdogSec=30s: systemd aborts
#                               (SIGABRT) and restarts it
#   4 dbus-restart              systemctl restart dbus: vfiopmd exits on the lost bus, restarted
#   5 dpkg-reinstall            dpkg -i of the same vfiopmd .deb (the postinst restarts the unit);
#                               only with --debs: the scenario then installs both packages first
#                               (DKMS builds vfio_pm_sim in the guest) and the tree is not installed
#   6 pme-while-down            kill -KILL, and a sim/pme on vfio-pm-sim.0 before systemd starts
#                               the next daemon: that one counts the wake (one more Wakes, Arms,
#                               sim/entries, sim/exits, sim/wakes) and re-arms; nothing else moves
#   pme-while-stopped (after)   the same as before, on the fds the last daemon adopted
#   release                     vfiopmctl release NIC: another process opens its group at once
#   stop                        systemctl stop: every device opened by another process at once,
#                               power/control and d3cold_allowed as before the first start
# Each restart phase first wakes every device once (a PME on vfio-pm-sim.0, vfiopmctl wake of the
# others), so that Wakes and Arms differ from what a freshly started daemon shows; then it samples
# every held device's power/runtime_status every 10 ms from before the restart until the new daemon
# has every device armed and suspended again, and requires: no sample other than `suspended`,
# sim/entries, sim/exits, sim/wakes unchanged, and vfiopmctl --json status showing every device
# armed with the same Wakes and Arms.
set -u
. "$(dirname "$0")/lib/common.sh"
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool
W=/run/daemon-restart
SIMS=(vfio-pm-sim.0 vfio-pm-sim.1)
KEEP_GOING=${VFIOPM_KEEP_GOING:-0}
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$W"

[ "$VFIOPM_DAEMON" = unit ] || fail "run it under the installed unit: tests/vm/run --env VFIOPM_DAEMON=unit"
[ "$(cat /sys/module/vfio_pci/parameters/disable_idle_d3)" = Y ] ||
	fail "run it with --vfio-pci-opts disable_idle_d3=1 (else the kernel suspends an unheld NIC and a restart is not seen)"
nic=$(vfio_pci_devices | sed -n 1p)
[ -n "$nic" ] || fail "no NIC on vfio-pci: run with --nics 1 or more"
HELD=("$nic" "${SIMS[@]}")

# -- the packages (--debs) or the tree
daemon_deb=
if [ -n "${VFIOPM_DEBS_DIR:-}" ]; then
	dkms_deb=$(echo "$VFIOPM_DEBS_DIR"/vfio-pm-sim-dkms_*.deb)
	daemon_deb=$(echo "$VFIOPM_DEBS_DIR"/vfiopmd_*.deb)
	[ -f "$dkms_deb" ] && [ -f "$daemon_deb" ] || fail "no vfio-pm-sim-dkms_*.deb and vfiopmd_*.deb in $VFIOPM_DEBS_DIR"
	for deb in "$dkms_deb" "$daemon_deb"; do
		now_ms; t=$NOW_MS
		dpkg -i "$deb" >"$W/dpkg.log" 2>&1 || fail "dpkg -i $(basename "$deb"): $(tail -n 20 "$W/dpkg.log")"
		now_ms; say "dpkg -i $(basename "$deb"): $(((NOW_MS - t) / 1000)) s"
	done
	# the postinst started it with the shipped policy (every device kernel): start again below
	systemctl stop vfiopmd
else
	# The bus policy (org.vfiopm1.conf) came with the payload, after dbus-daemon started.
	systemctl reload dbus || fail "reloading dbus"
fi
modprobe vfio_pm_sim devices=${#SIMS[@]} || fail "modprobe vfio_pm_sim"
udevadm settle

# power/control and d3cold_allowed (PCI only) of every device before any daemon held it
declare -A orig
sysfs_knobs() {
	local d=$1 dir out
	dir=$(dev_dir "$d")
	out="power/control=$(cat "$dir/power/control")"
	[ -e "$dir/d3cold_allowed" ] && out+=" d3cold_allowed=$(cat "$dir/d3cold_allowed")"
	echo "$out"
}
for d in "${HELD[@]}"; do orig[$d]=$(sysfs_knobs "$d"); done
say "before the daemon: $(for d in "${HELD[@]}"; do printf '%s: %s; ' "$d" "${orig[$d]}"; done)"

# The NIC and vfio-pm-sim.0 with the wake-up eventfd, vfio-pm-sim.1 with the plain entry; every
# delay 0, so that a (re)started daemon arms at once. d3cold false: a value stop must put back.
policy_write 50-restart.json "$(jq -n --arg nic "$nic" '[
  { match: { device: $nic }, mode: "wakeup", arm_delay_ms: 0, rearm_delay_ms: 0, d3cold: false },
  { match: { device: "vfio-pm-sim.0" }, mode: "wakeup", arm_delay_ms: 0, rearm_delay_ms: 0 },
  { match: { device: "vfio-pm-sim.1" }, mode: "auto", arm_delay_ms: 0 }
]')"
daemon_start --bus system
say "unit: WatchdogUSec=$(unit_prop WatchdogUSec) Restart=$(unit_prop Restart) RestartUSec=$(unit_prop RestartUSec)" \
	"FileDescriptorStoreMax=$(unit_prop FileDescriptorStoreMax) NFileDescriptorStore=$(unit_prop NFileDescriptorStore)"

# -- phases: checks collect their failures; at the end of a phase they fail the run, or with
# VFIOPM_KEEP_GOING=1 go to the summary
PHASE="" PHASE_FAILS=() SUMMARY=() FAILED=0
phase_begin() { PHASE=$1 PHASE_FAILS=(); say "== phase $PHASE"; }
check_failed() { say "FAIL: $PHASE: $1"; PHASE_FAILS+=("$1"); }
phase_end() {
	if [ ${#PHASE_FAILS[@]} = 0 ]; then
		SUMMARY+=("ok    $PHASE")
		pass "phase $PHASE"
		return
	fi
	local why
	why=$(printf '%s | ' "${PHASE_FAILS[@]}")
	SUMMARY+=("FAIL  $PHASE: ${why% | }")
	FAILED=$((FAILED + 1))
	[ "$KEEP_GOING" = 1 ] || fail "phase $PHASE: ${why% | }"
}

# all_armed [MS]: vfiopmctl shows every held device armed and each is runtime-suspended
all_armed() {
	local d
	for d in "${HELD[@]}"; do wait_state "$d" armed "${1:-20000}" || return 1; done
	for d in "${HELD[@]}"; do wait_runtime "$d" suspended 5000 || return 1; done
}

# snapshot NAME: the associative array NAME gets, for each held device, its state, Wakes and Arms
# as vfiopmctl --json status shows them, and for the simulated ones the module's own counters
snapshot() {
	local -n snap=$1
	local name rest d c v
	snap=()
	while read -r name rest; do snap[$name]=$rest; done < <(vfiopmctl --json status 2>/dev/null |
		jq -r '.devices[] | "\(.name) state=\(.state) Wakes=\(.wakes) Arms=\(.arms)"')
	for d in "${SIMS[@]}"; do
		for c in entries exits wakes; do
			read -r v <"/sys/bus/platform/devices/$d/sim/$c"
			snap[$d]+=" sim/$c=$v"
		done
	done
}
# moved BEFORE AFTER REGEX: "DEV KEY A → B" for every KEY matching REGEX that differs
moved() {
	local -n b=$1 a=$2
	local d kv k v out=()
	for d in "${HELD[@]}"; do
		for kv in ${b[$d]:-}; do
			k=${kv%%=*}
			[[ $k =~ $3 ]] || continue
			[[ " ${a[$d]:-} " == *" $kv "* ]] && continue
			v=$(tr ' ' '\n' <<<"${a[$d]:-}" | sed -n "s|^$k=||p")
			out+=("$d $k ${kv#*=} → ${v:-(none)}")
		done
	done
	local IFS=,
	echo "${out[*]}"
}

# -- the sampler: every held device's power/runtime_status every 10 ms, without a fork (a fork
# costs milliseconds under TCG): a builtin read of sysfs, a builtin sleep (read -t on a FIFO
# nobody writes) for what is left of the 10 ms. $W/samples gets a line for each change away from
# (and back to) suspended, in seconds since the scenario started; $W/sampler.stats the number of
# samples and the largest gap.
rm -f "$W/tick" && mkfifo "$W/tick"
# a fail in the middle of a phase ends the sampler too
trap 'touch "$W/stop"' EXIT
sampler() {
	local files=() prev=() i s n=0 t last max=0 first z begun rest
	for i in "${!HELD[@]}"; do
		files[i]=$(dev_dir "${HELD[i]}")/power/runtime_status
		prev[i]=suspended
	done
	exec {z}<>"$W/tick"
	: >"$W/samples"
	first=${EPOCHREALTIME/./} last=$first
	while [ ! -e "$W/stop" ] && kill -0 "$$" 2>/dev/null; do
		begun=${EPOCHREALTIME/./}
		for i in "${!files[@]}"; do
			read -r s <"${files[i]}"
			[ "$s" = "${prev[i]}" ] && continue
			t=$(((${EPOCHREALTIME/./} * 1000 - T0) / 1000000))
			printf '%d.%03d %s %s → %s\n' $((t / 1000)) $((t % 1000)) "${HELD[i]}" "${prev[i]}" "$s" >>"$W/samples"
			prev[i]=$s
		done
		n=$((n + 1))
		t=${EPOCHREALTIME/./}
		[ $((t - last)) -gt "$max" ] && max=$((t - last))
		last=$t
		[ "$n" = 1 ] && : >"$W/sampling"
		# the rest of the 10 ms since this sample began (at least 1 ms)
		rest=$((10000 - (t - begun)))
		[ "$rest" -ge 1000 ] || rest=1000
		printf -v rest '0.%06d' "$rest"
		read -r -t "$rest" -u "$z" _
	done
	echo "$n $(((last - first) / 1000)) $((max / 1000))" >"$W/sampler.stats"
}
sampler_start() {
	rm -f "$W/stop" "$W/sampling" "$W/samples" "$W/sampler.stats"
	# not on the scenario's output: guest-run's tee would wait for it
	sampler >"$W/sampler.log" 2>&1 &
	SAMPLER=$!
	# before the daemon and systemd when both want the one vCPU; it sleeps most of the time
	chrt -f -p 10 "$SAMPLER" || say "warning: the sampler runs without SCHED_FIFO"
	for ((i = 0; i < 500; i++)); do [ -e "$W/sampling" ] && return 0; sleep 0.01; done
	fail "the runtime_status sampler did not start"
}
# sampler_stop: stops it; SAMPLED says how often it sampled
sampler_stop() {
	local n ms max
	touch "$W/stop"
	wait "$SAMPLER"
	read -r n ms max <"$W/sampler.stats"
	SAMPLED="$n samples of ${#HELD[@]} devices over $ms ms (every $((ms / (n > 1 ? n - 1 : 1))) ms, largest gap $max ms)"
	[ "$max" -le 100 ] || say "warning: the sampler stalled for $max ms: a shorter excursion could be missed"
}

# systemd_says: what PID 1 logged about the unit
systemd_says() {
	journalctl -q -b -u vfiopmd -o short --no-pager | sed -n 's/^.* systemd\[1\]: //p'
}
# prime_counters: a wake of every device (a PME on vfio-pm-sim.0, vfiopmctl wake of the others),
# so that each shows Arms (and vfio-pm-sim.0 Wakes) above what a freshly started daemon shows
prime_counters() {
	local d i
	declare -A arms0=()
	for d in "${HELD[@]}"; do arms0[$d]=$(vfiopmctl --json show "$d" | jq -r .arms); done
	echo 1 >/sys/bus/platform/devices/vfio-pm-sim.0/sim/pme
	vfiopmctl wake "$nic" vfio-pm-sim.1 || fail "vfiopmctl wake $nic vfio-pm-sim.1"
	for d in "${HELD[@]}"; do
		for ((i = 0; i < 100; i++)); do
			[ "$(vfiopmctl --json show "$d" | jq -r .arms)" -gt "${arms0[$d]}" ] && continue 2
			sleep 0.05
		done
		fail "$d: Arms still ${arms0[$d]} after a wake"
	done
}

# one_wake_more NAME DEV: in the snapshot NAME, DEV's counters as one wake and its re-arm move them
one_wake_more() {
	# shellcheck disable=SC2178 # a nameref to an associative array
	local -n snap=$1
	local kv out=()
	for kv in ${snap[$2]}; do
		case ${kv%%=*} in Wakes | Arms | sim/*) kv=${kv%%=*}=$((${kv#*=} + 1)) ;; esac
		out+=("$kv")
	done
	snap[$2]=${out[*]}
}

# [WOKEN=DEV] restart_phase NAME ACTION...: baseline, sampler on, ACTION (which returns once
# systemd runs a new daemon), every device armed and suspended again, 500 ms more, sampler off,
# then the checks. WOKEN: ACTION wakes DEV once, which then may leave suspended and is expected
# with one wake more (Wakes, Arms, sim/entries, sim/exits, sim/wakes each +1). SAME_DAEMON: ACTION
# restarts nothing (the control).
restart_phase() {
	local name=$1 journal_at pid0 t0 took m
	shift
	phase_begin "$name"
	prime_counters
	all_armed || fail "$name: no baseline, not every device armed and suspended"
	# shellcheck disable=SC2034 # both filled through snapshot's nameref
	declare -A before=() after=()
	snapshot before
	say "before: $(for d in "${HELD[@]}"; do printf '%s %s; ' "$d" "${before[$d]}"; done)"
	if [ -n "${WOKEN:-}" ]; then
		one_wake_more before "$WOKEN"
		say "expected of $WOKEN after its wake (compared below): ${before[$WOKEN]}"
	fi
	pid0=$(daemon_pid)
	journal_at=$(systemd_says | wc -l)
	sampler_start
	now_ms; t0=$NOW_MS
	"$@"
	if [ -n "${SAME_DAEMON:-}" ]; then
		[ "$(daemon_pid)" = "$pid0" ] || fail "$name: the daemon was restarted (pid $pid0 → $(daemon_pid))"
	else
		[ "$(daemon_pid)" != "$pid0" ] && [ "$(unit_prop SubState)" = running ] ||
			fail "$name: no new daemon (pid $pid0 → $(daemon_pid), $(unit_prop ActiveState)/$(unit_prop SubState))"
	fi
	now_ms; took=$((NOW_MS - t0))
	all_armed 20000 || say "$name: not every device armed and suspended again within 20 s"
	sleep 0.5
	sampler_stop
	say "$name: pid $pid0 → $(daemon_pid) in $took ms, NRestarts $(unit_prop NRestarts); $SAMPLED"
	say "$name: systemd said: $(systemd_says | tail -n +$((journal_at + 1)) | tr '\n' '|')"
	snapshot after
	m=$(grep -v " ${WOKEN:-/} " "$W/samples" | tr '\n' ';')
	[ -n "$m" ] && check_failed "runtime_status left suspended: $m"
	m=$(moved before after '^sim/')
	[ -n "$m" ] && check_failed "vfio-pm-sim counters moved: $m"
	m=$(moved before after '^(state|Wakes|Arms)$')
	[ -n "$m" ] && check_failed "vfiopmctl: $m"
	phase_end
}

# The control: the daemon paused for a second and nothing else, so every check of the phase sees
# what the measuring itself (the sampler, vfiopmctl, the counters) does: nothing may move
pause_daemon() {
	kill -STOP "$(daemon_pid)"
	sleep 1
	kill -CONT "$(daemon_pid)"
}
restart_systemctl() { systemctl restart vfiopmd || fail "systemctl restart vfiopmd"; }
restart_sigkill() {
	local n
	n=$(unit_prop NRestarts)
	kill -KILL "$(daemon_pid)"
	wait_restarted $((n + 1)) 90
}
# The unit's own WatchdogSec=30s: a stopped daemon pings no more; systemd sends SIGABRT (and
# SIGCONT), then restarts it (RestartSec=1s)
restart_watchdog() {
	local n
	n=$(unit_prop NRestarts)
	kill -STOP "$(daemon_pid)"
	wait_restarted $((n + 1)) 150
	daemon_log | grep -q "Watchdog timeout" || fail "watchdog: restarted, but no watchdog timeout in the journal"
}
# vfiopmd exits 1 on a lost bus (vfiopmd(8)); Restart=on-failure brings it back
restart_dbus() {
	local n
	n=$(unit_prop NRestarts)
	systemctl restart dbus || fail "systemctl restart dbus"
	wait_restarted $((n + 1)) 90
}
# A PME on vfio-pm-sim.0 while no daemon runs (in RestartSec=1s after SIGKILL): the next daemon
# finds the wake (the stored eventfd is readable) and handles it as any wake
restart_sigkill_pme() {
	local n i sub
	n=$(unit_prop NRestarts)
	kill -KILL "$(daemon_pid)"
	for ((i = 0; i < 100; i++)); do
		sub=$(unit_prop SubState)
		[ "$sub" = auto-restart ] && break
		sleep 0.01
	done
	echo 1 >/sys/bus/platform/devices/vfio-pm-sim.0/sim/pme
	[ "$sub" = auto-restart ] && say "sim/pme written while no daemon ran (SubState auto-restart)" ||
		say "warning: sim/pme written with the unit $sub, not between the two daemons"
	wait_restarted $((n + 1)) 90
}
restart_dpkg() {
	dpkg -i "$daemon_deb" >"$W/dpkg.log" 2>&1 || fail "dpkg -i $(basename "$daemon_deb") again: $(tail -n 20 "$W/dpkg.log")"
	say "dpkg -i $(basename "$daemon_deb"): $(tr '\n' '|' <"$W/dpkg.log")"
}

# pme_while_stopped WHEN: SIGSTOP, a device-initiated wake on vfio-pm-sim.0, SIGCONT: counted once
# by the daemon and by the module, armed and suspended again
pme_while_stopped() {
	local d=vfio-pm-sim.0 pid w0 mw0 w mw
	phase_begin "pme-while-stopped ($1)"
	all_armed || fail "pme-while-stopped: no baseline, not every device armed and suspended"
	pid=$(daemon_pid)
	w0=$(vfiopmctl --json show "$d" | jq -r .wakes)
	read -r mw0 <"/sys/bus/platform/devices/$d/sim/wakes"
	kill -STOP "$pid"
	echo 1 >"/sys/bus/platform/devices/$d/sim/pme"
	wait_runtime "$d" active 2000 || check_failed "$d: sim/pme did not wake it"
	sleep 0.2
	[ "$(runtime_status "$d")" = active ] || check_failed "$d: re-armed while the daemon was stopped"
	kill -CONT "$pid"
	for ((i = 0; i < 100; i++)); do
		w=$(vfiopmctl --json show "$d" | jq -r .wakes)
		[ "$w" = $((w0 + 1)) ] && break
		sleep 0.05
	done
	read -r mw <"/sys/bus/platform/devices/$d/sim/wakes"
	[ "$w" = $((w0 + 1)) ] || check_failed "$d: vfiopmctl Wakes $w0 → $w, expected $((w0 + 1))"
	[ "$mw" = $((mw0 + 1)) ] || check_failed "$d: sim/wakes $mw0 → $mw, expected $((mw0 + 1))"
	wait_state "$d" armed || check_failed "$d: not armed again after the wake"
	wait_runtime "$d" suspended || check_failed "$d: not suspended again after the wake"
	[ "$(daemon_pid)" = "$pid" ] || check_failed "the daemon was restarted (pid $pid → $(daemon_pid))"
	say "$d: Wakes $w0 → $w, sim/wakes $mw0 → $mw, $(device_state "$d"), $(runtime_status "$d")"
	phase_end
}

pme_while_stopped "before the restarts"

SAME_DAEMON=1 restart_phase "0 control (no restart)" pause_daemon
restart_phase "1 systemctl-restart" restart_systemctl
restart_phase "2 sigkill" restart_sigkill
restart_phase "3 watchdog" restart_watchdog
restart_phase "4 dbus-restart" restart_dbus
if [ -n "$daemon_deb" ]; then
	restart_phase "5 dpkg-reinstall" restart_dpkg
else
	say "== phase 5 dpkg-reinstall: skipped, no packages (run with --debs DIR)"
	SUMMARY+=("skip  5 dpkg-reinstall (no --debs)")
fi
WOKEN=vfio-pm-sim.0 restart_phase "6 pme-while-down" restart_sigkill_pme
pme_while_stopped "after the restarts"

# -- Release: the NIC's group free the moment the call returns, the sim devices still held
phase_begin "release"
vfiopmctl release "$nic" || check_failed "vfiopmctl release $nic failed"
"$tool" "$nic" open close >"$W/open.log" 2>&1 ||
	check_failed "$nic: its group not free right after Release: $(grep -m1 FAIL "$W/open.log")"
[ "$(device_state "$nic")" = released ] || check_failed "$nic is $(device_state "$nic"), not released"
for d in "${SIMS[@]}"; do
	"$tool" "$d" open=EBUSY >/dev/null 2>&1 || check_failed "$d no longer held after the release of $nic"
done
phase_end

# -- stop: every device free at once, sysfs as before the first start, nothing left in the store
phase_begin "stop"
systemctl stop vfiopmd || check_failed "systemctl stop vfiopmd"
for d in "${HELD[@]}"; do
	"$tool" "$d" open close >"$W/open.log" 2>&1 || check_failed "$d still held after stop: $(grep -m1 FAIL "$W/open.log")"
	knobs=$(sysfs_knobs "$d")
	[ "$knobs" = "${orig[$d]}" ] || check_failed "$d: $knobs after stop, was ${orig[$d]}"
done
n=$(unit_prop NFileDescriptorStore)
[ "${n:-0}" = 0 ] || check_failed "$n fds left in the unit's fd store after stop"
[ "$(unit_prop Result)" = success ] || check_failed "stop: Result=$(unit_prop Result)"
phase_end

denied=$(sandbox_denials)
[ -z "$denied" ] && pass "no EPERM/EROFS/EACCES in vfiopmd.service's journal" || say "sandbox denials: $denied"

say "summary:"
for line in "${SUMMARY[@]}"; do say "  $line"; done
[ "$FAILED" = 0 ] || fail "$FAILED phases failed"
[ -z "$denied" ] || fail "denied under the unit's sandbox"
say "PASS"
