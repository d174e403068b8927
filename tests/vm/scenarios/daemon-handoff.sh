#!/bin/bash
# vfiopmd hand-off: busy then claimed on a udev event, unbind of a held device via the request IRQ, vfio-pm-sim fail_next_entry (error, recovery) and remove while armed, SIGKILL and restart.
set -u
. "$(dirname "$0")/lib/common.sh"
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool

modprobe vfio_pm_sim devices=3 || fail "modprobe vfio_pm_sim"
nic=$(vfio_pci_devices | head -n1)
sim=/sys/bus/platform/devices
policy_write 50-all.json '{ "mode": "wakeup", "rearm_delay_ms": 0 }'

# -- a group held by another process: busy, then claimed once it is free and udev says so
"$tool" vfio-pm-sim.1 open ready=/run/held await=/run/release/30000 close >/var/tmp/holder.log 2>&1 &
holder=$!
for ((i = 0; i < 500; i++)); do [ -e /run/held ] && break; sleep 0.01; done
[ -e /run/held ] || fail "the holder did not open vfio-pm-sim.1"
daemon_start
wait_log "^vfio-pm-sim.1: kernel → busy" 5 || fail "vfio-pm-sim.1 not busy while another process holds it"
wait_log "^$nic: idle → armed" 5 || fail "$nic not armed"
pass "vfio-pm-sim.1 busy while held elsewhere"
touch /run/release
wait "$holder" || fail "the holder failed: $(cat /var/tmp/holder.log)"
udevadm trigger --action=change "$sim/vfio-pm-sim.1"
wait_log "^vfio-pm-sim.1: busy → idle" 5 || fail "vfio-pm-sim.1 not claimed after the holder closed"
wait_log "^vfio-pm-sim.1: idle → armed" 5 || fail "vfio-pm-sim.1 not armed after the claim"
pass "vfio-pm-sim.1 claimed on the udev event after the holder closed"

# -- unbinding a held device completes promptly: the daemon closes on the request IRQ
now_ms; t0=$NOW_MS
timeout 10 sh -c "echo $nic >/sys/bus/pci/drivers/vfio-pci/unbind" || fail "unbinding held $nic hung"
now_ms; took=$((NOW_MS - t0))
# Either tells the daemon to let go: the request IRQ, or (6.12 removes the vfio-dev child
# before it waits for the holder) the vfio-dev remove event, whichever it sees first.
wait_log "^$nic: Gone from its VFIO driver" 5 || fail "$nic not forgotten after unbind"
how="vfio-dev remove event"
[ "$(log_count "^$nic: The kernel asks for the device back")" -gt 0 ] && how="request IRQ"
pass "unbinding held $nic took $took ms (closed on the $how)"
echo "$nic" >/sys/bus/pci/drivers_probe
wait_log "^$nic: Found pci device" 5 2 || fail "$nic not found again after rebinding"
wait_log "^$nic: idle → armed" 5 2 || fail "$nic not armed again after rebinding"
pass "$nic bound again: found and armed"

# -- fail_next_entry: the re-entry after a wake fails → error, then the backoff retry recovers
wait_runtime vfio-pm-sim.0 suspended || fail "vfio-pm-sim.0 not suspended"
echo 5 >"$sim/vfio-pm-sim.0/sim/fail_next_entry"
echo 1 >"$sim/vfio-pm-sim.0/sim/wake"
wait_log "^vfio-pm-sim.0: .* → error: .*Input/output error" 5 || fail "a failed entry did not give the error state"
wait_log "^vfio-pm-sim.0: error → " 5 || fail "vfio-pm-sim.0 did not leave the error state"
wait_log "^vfio-pm-sim.0: .* → armed" 5 2 || fail "vfio-pm-sim.0 not armed again after the error"
wait_runtime vfio-pm-sim.0 suspended || fail "vfio-pm-sim.0 not suspended after recovery"
pass "fail_next_entry=5: error with EIO, recovered by the backoff retry"

# -- remove while armed: the daemon lets go and the device disappears
wait_runtime vfio-pm-sim.2 suspended || fail "vfio-pm-sim.2 not suspended"
echo 1 >"$sim/vfio-pm-sim.2/sim/remove"
for ((i = 0; i < 500; i++)); do [ -e /sys/devices/platform/vfio-pm-sim.2 ] || break; sleep 0.01; done
[ -e /sys/devices/platform/vfio-pm-sim.2 ] && fail "vfio-pm-sim.2 still there 5 s after remove"
wait_log "^vfio-pm-sim.2: Gone from its VFIO driver" 5 || fail "vfio-pm-sim.2 not forgotten"
pass "vfio-pm-sim.2 removed while armed: released and gone"

# -- SIGKILL with devices armed. The transient unit has no fd store: the kernel closes the
# devices, the unit stays down and is started again here, and the new daemon opens and arms them
# again (a group opens once at a time, so arming them again also shows the kernel closed them).
# The installed unit keeps their fds in its store (SPEC §9): they stay held while no daemon runs,
# and the daemon Restart=on-failure brings back adopts them as they are.
declare -A armed_before adopted_before
for d in "$nic" vfio-pm-sim.0 vfio-pm-sim.1; do
	armed_before[$d]=$(log_count "^$d: idle → armed")
	adopted_before[$d]=$(log_count "^$d: Adopted from the daemon before")
done
pid=$(daemon_pid) restarts=$(unit_prop NRestarts)
kill -KILL "$pid"
if [ "$VFIOPM_DAEMON" = unit ]; then
	for ((i = 0; i < 500; i++)); do [ "$(daemon_pid)" = "$pid" ] || break; sleep 0.01; done
	[ "$(daemon_pid)" = "$pid" ] && fail "systemd did not see vfiopmd die"
	# in RestartSec=1s, no daemon: the store holds the device
	if [ "$(unit_prop SubState)" = auto-restart ] && "$tool" vfio-pm-sim.0 open close >/dev/null 2>&1; then
		fail "vfio-pm-sim.0 free while no daemon ran: the fd store did not keep it"
	fi
	wait_restarted $((restarts + 1)) 10
	[ "$(unit_prop NRestarts)" = $((restarts + 1)) ] || fail "NRestarts $(unit_prop NRestarts), was $restarts"
	say "vfiopmd.service restarted by systemd: NRestarts $restarts → $(unit_prop NRestarts), pid $pid → $(daemon_pid)"
	for d in "$nic" vfio-pm-sim.0 vfio-pm-sim.1; do
		# --bus none: the journal says what the daemon did
		wait_log "^$d: Adopted from the daemon before" 5 $((adopted_before[$d] + 1)) || fail "$d not adopted after restart"
		wait_log "^$d: kernel → armed" 5 || fail "$d not armed after restart"
		wait_runtime "$d" suspended || fail "$d not suspended after restart"
		[ "$(log_count "^$d: idle → armed")" = "${armed_before[$d]}" ] || fail "$d opened and armed again, not adopted"
	done
	pass "SIGKILL and restart: every device kept held by the fd store and adopted as it was"
else
	for ((i = 0; i < 500; i++)); do [ "$(systemctl is-active "$VFIOPMD_UNIT")" = active ] || break; sleep 0.01; done
	"$tool" vfio-pm-sim.0 open close >/dev/null || fail "vfio-pm-sim.0 still held after SIGKILL"
	daemon_start
	for d in "$nic" vfio-pm-sim.0 vfio-pm-sim.1; do
		wait_log "^$d: idle → armed" 5 $((armed_before[$d] + 1)) || fail "$d not armed after restart"
		wait_runtime "$d" suspended || fail "$d not suspended after restart"
	done
	pass "SIGKILL and restart: every device claimed and armed again"
fi
daemon_stop

timeline_dump
say "PASS"
