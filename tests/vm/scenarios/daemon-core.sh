#!/bin/bash
# vfiopmd --bus none on e1000e and vfio-pm-sim: wakeup arms, a host wake re-arms after rearm_delay_ms, auto, kernel, on, SIGTERM.
# Needs 2 e1000e NICs. With vfio-pci disable_idle_d3=1 only a holder can suspend the NICs.
set -u
. "$(dirname "$0")/lib/common.sh"
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool

modprobe vfio_pm_sim devices=3 || fail "modprobe vfio_pm_sim"
nics=($(vfio_pci_devices))
[ ${#nics[@]} -ge 2 ] || fail "need 2 vfio-pci NICs, have ${#nics[@]}"
wake=${nics[0]} autodev=${nics[1]}
idle_d3=$(cat /sys/module/vfio_pci/parameters/disable_idle_d3)
say "NICs ${nics[*]}, vfio-pci disable_idle_d3=$idle_d3"

policy_write 50-test.json "[
  { \"match\": { \"device\": \"$wake\" }, \"mode\": \"wakeup\", \"rearm_delay_ms\": 3000 },
  { \"match\": { \"device\": \"$autodev\" }, \"mode\": \"auto\" },
  { \"match\": { \"device\": \"vfio-pm-sim.0\" }, \"mode\": \"wakeup\", \"rearm_delay_ms\": 0 },
  { \"match\": { \"device\": \"vfio-pm-sim.1\" }, \"mode\": \"kernel\" },
  { \"match\": { \"device\": \"vfio-pm-sim.2\" }, \"mode\": \"on\" }
]"
daemon_start

# -- wakeup and auto arm; the simulated devices too
for d in "$wake" "$autodev" vfio-pm-sim.0; do
	wait_log "^$d: idle → armed" 10 || fail "$d was not armed"
	wait_runtime "$d" suspended || fail "$d armed but not suspended"
	pass "$d armed and suspended"
done

# -- sd_notify STATUS= counts the devices by state
status=$(systemctl show -p StatusText --value "$VFIOPMD_UNIT")
[ "$status" = "5 devices: 3 armed, 1 kernel, 1 on" ] || fail "STATUS is '$status'"
pass "STATUS=$status"

# -- kernel and on never open the device: another process can
for d in vfio-pm-sim.1 vfio-pm-sim.2; do
	"$tool" "$d" open close >/dev/null || fail "$d: a second process could not open it"
	pass "$d not held by the daemon"
done
wait_runtime vfio-pm-sim.1 suspended || fail "kernel mode: vfio-pm-sim.1 did not idle into suspend"
[ "$(cat /sys/bus/platform/devices/vfio-pm-sim.2/power/control)" = on ] || fail "on mode: power/control is not on"
stays_runtime vfio-pm-sim.2 active 1000 || fail "on mode: vfio-pm-sim.2 left D0"
pass "kernel mode idles, on mode keeps D0"

# -- a held device: a second opener gets EBUSY
"$tool" "$wake" open=EBUSY >/dev/null || fail "$wake: a second opener was not refused"
pass "$wake is held: EBUSY for a second opener"

# -- a host wake: woken, D0 for rearm_delay_ms, then armed again
before=$(log_count "^$wake: woken → armed")
now_ms; t_wake=$NOW_MS
echo on >"$(dev_dir "$wake")/power/control"
echo auto >"$(dev_dir "$wake")/power/control"
wait_log "^$wake: armed → woken" 5 || fail "$wake: the wake was not seen"
stays_runtime_until "$wake" active $((t_wake + 2500)) || fail "$wake re-entered before rearm_delay_ms (3000 ms)"
pass "$wake still in D0 2.5 s after the wake"
wait_log "^$wake: woken → armed" 10 $((before + 1)) || fail "$wake was not armed again"
wait_runtime "$wake" suspended || fail "$wake armed again but not suspended"
woken=$(log_time_ms "^.*$wake: armed → woken")
armed=$(log_time_ms "^.*$wake: woken → armed")
[ $((armed - woken)) -ge $((3000 - JOURNAL_SLACK_MS)) ] || fail "$wake re-armed $((armed - woken)) ms after the wake, before the 3000 ms delay"
pass "$wake woken → armed after $((armed - woken)) ms (rearm_delay_ms 3000), suspended again"

# -- the simulated device: a pme with rearm_delay_ms 0 re-arms at once
echo 1 >/sys/bus/platform/devices/vfio-pm-sim.0/sim/pme
wait_log "^vfio-pm-sim.0: woken → armed" 5 || fail "vfio-pm-sim.0: pme not handled"
wait_runtime vfio-pm-sim.0 suspended || fail "vfio-pm-sim.0 not suspended after re-arm"
pass "vfio-pm-sim.0: pme → woken → armed, suspended again"

# -- auto: the kernel re-enters by itself, the daemon does nothing
n_auto=$(log_count "^$autodev:")
echo on >"$(dev_dir "$autodev")/power/control"
wait_runtime "$autodev" active || fail "$autodev did not resume"
echo auto >"$(dev_dir "$autodev")/power/control"
wait_runtime "$autodev" suspended || fail "auto: $autodev did not re-enter by itself"
[ "$(log_count "^$autodev:")" -eq "$n_auto" ] || fail "auto: the daemon reacted to $autodev's wake"
pass "auto: $autodev re-entered by itself"

# -- SIGTERM: exit 0, devices closed (another process can open them at once)
pid=$(daemon_pid)
kill -TERM "$pid"
for ((i = 0; i < 500; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
kill -0 "$pid" 2>/dev/null && fail "vfiopmd did not stop on SIGTERM"
result=$(systemctl show -p Result --value "$VFIOPMD_UNIT" 2>/dev/null)
status=$(systemctl show -p ExecMainStatus --value "$VFIOPMD_UNIT" 2>/dev/null)
[ "${status:-0}" = 0 ] || fail "vfiopmd exited $status ($result) on SIGTERM"
for d in "$wake" "$autodev" vfio-pm-sim.0; do
	"$tool" "$d" open close >/dev/null || fail "$d still held after SIGTERM"
done
[ "$(cat /sys/bus/platform/devices/vfio-pm-sim.2/power/control)" = auto ] ||
	fail "on mode: power/control not restored to auto at stop"
pass "SIGTERM: exit 0, every device free, power/control restored"

timeline_dump
say "PASS"
