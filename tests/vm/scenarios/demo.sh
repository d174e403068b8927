#!/bin/bash
# The main job: vfiopmd holding e1000e NICs (vfio-pci) and vfio-pm-sim devices, their states before, during and after a wake, the energy saved where the policy declares watts, and an excerpt of vfiopmctl metrics (Prometheus).
set -u
. "$(dirname "$0")/lib/common.sh"

modprobe vfio_pm_sim devices=2 || fail "modprobe vfio_pm_sim"
nics=($(vfio_pci_devices))
[ ${#nics[@]} -ge 2 ] || fail "need 2 vfio-pci NICs"
policy_write 50-demo.json "[
  { \"match\": { \"device\": \"${nics[0]}\" }, \"mode\": \"wakeup\", \"rearm_delay_ms\": 3000,
    \"power_active_w\": 8.5, \"power_low_w\": 1.5 },
  { \"match\": { \"device\": \"${nics[1]}\" }, \"mode\": \"auto\" },
  { \"match\": { \"device\": \"vfio-pm-sim.0\" }, \"mode\": \"wakeup\", \"rearm_delay_ms\": 2000,
    \"power_active_w\": 250, \"power_low_w\": 30 },
  { \"match\": { \"device\": \"vfio-pm-sim.1\" }, \"mode\": \"kernel\" }
]"
say "policy ($POLICY_DIR/50-demo.json):"
sed 's/^/    /' "$POLICY_DIR/50-demo.json"

# What vfiopmctl says (over the system bus), and the kernel's own view from sysfs beside it.
show() {
	say "$1"
	vfiopmctl | sed 's/^/    /'
	printf '    kernel: %-14s %-12s %-10s %s\n' DEVICE DRIVER RUNTIME SUSPENDED_MS
	for d in "${nics[@]}" vfio-pm-sim.0 vfio-pm-sim.1; do
		local dir; dir=$(dev_dir "$d")
		printf '            %-14s %-12s %-10s %s\n' "$d" "$(basename "$(readlink "$dir/driver")")" \
			"$(cat "$dir/power/runtime_status")" "$(cat "$dir/power/runtime_suspended_time")"
	done
}

# The bus policy (org.vfiopm1.conf) came with the payload, after dbus-daemon started.
systemctl reload dbus || fail "reloading dbus"
daemon_start --bus system
vfiopmctl monitor >/run/demo-monitor.txt 2>&1 &
monitor=$!
for d in "${nics[0]}" "${nics[1]}" vfio-pm-sim.0; do
	wait_log "^$d: idle → armed" 10 || fail "$d not armed"
	wait_runtime "$d" suspended || fail "$d not suspended"
done
wait_runtime vfio-pm-sim.1 suspended || fail "vfio-pm-sim.1 not idle"
show "armed: vfiopmd holds ${nics[0]}, ${nics[1]} and vfio-pm-sim.0 in low power; vfio-pm-sim.1 is left to the kernel"

say "a host access wakes ${nics[0]} (power/control on, auto); vfio-pm-sim.0 signals a PME"
echo on >"$(dev_dir "${nics[0]}")/power/control"
echo auto >"$(dev_dir "${nics[0]}")/power/control"
echo 1 >/sys/bus/platform/devices/vfio-pm-sim.0/sim/pme
wait_log "^${nics[0]}: armed → woken" 5 || fail "${nics[0]}: wake not handled"
wait_log "^vfio-pm-sim.0: armed → woken" 5 || fail "vfio-pm-sim.0: wake not handled"
show "woken: the wake-up eventfds fired, both stay in D0 for their rearm_delay_ms"

wait_log "^${nics[0]}: woken → armed" 10 || fail "${nics[0]} not re-armed"
wait_log "^vfio-pm-sim.0: woken → armed" 10 || fail "vfio-pm-sim.0 not re-armed"
for d in "${nics[0]}" vfio-pm-sim.0; do wait_runtime "$d" suspended || fail "$d not suspended"; done
show "re-armed after the delay, back in low power"
# SAVED: Wh where the policy declares both watts, "-" where it does not; the TOTAL under it
vfiopmctl >/run/demo-status.txt
for d in "${nics[0]}" vfio-pm-sim.0; do
	grep -qE "^$d .* [0-9]+\.[0-9]+ k?Wh$" /run/demo-status.txt || fail "status: no SAVED figure for $d: $(grep "^$d " /run/demo-status.txt)"
done
for d in "${nics[1]}" vfio-pm-sim.1; do
	grep -qE "^$d .* -$" /run/demo-status.txt || fail "status: SAVED of $d (no watts) is not -: $(grep "^$d " /run/demo-status.txt)"
done
grep -qE '^TOTAL +[0-9]+\.[0-9]+ k?Wh$' /run/demo-status.txt || fail "status: no TOTAL line: $(tail -n1 /run/demo-status.txt)"
say "energy saved (SAVED, Wh): ${nics[0]} at 8.5 - 1.5 W and vfio-pm-sim.0 at 250 - 30 W while suspended; the others declare no watts"
say "vfiopmctl metrics (Prometheus text format; excerpt):"
vfiopmctl metrics >/run/demo-metrics.txt || fail "vfiopmctl metrics failed"
grep -E '^vfiopmd_build_info|^vfiopmd_device_state\{.*state="armed"\}|^vfiopmd_(wakeups|energy_saved_joules|low_power_seconds)_total\{name="(vfio-pm-sim.0|'"${nics[0]}"')"\}|^# (HELP|TYPE) vfiopmd_energy' \
	/run/demo-metrics.txt | sed 's/^/    /'
grep -qE '^vfiopmd_wakeups_total\{name="vfio-pm-sim.0"\} [1-9]' /run/demo-metrics.txt || fail "metrics: no wake counted for vfio-pm-sim.0"
kill -INT "$monitor"; wait "$monitor"
say "vfiopmctl monitor, meanwhile:"
sed 's/^/    /' /run/demo-monitor.txt
for d in "${nics[0]}" vfio-pm-sim.0; do
	grep -qE "^[0-9-]+ [0-9:.]+ $d changed State=woken( .*)?$" /run/demo-monitor.txt || fail "monitor: no woken line for $d"
	grep -qE "^[0-9-]+ [0-9:.]+ $d wake Wakes=[1-9][0-9]*$" /run/demo-monitor.txt || fail "monitor: no wake line for $d"
done

timeline_dump
daemon_stop
say "PASS"
