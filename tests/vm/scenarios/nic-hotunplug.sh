#!/bin/bash
# PCI hot-unplug of an armed NIC (issue 17): under the installed vfiopmd.service holding 3 NICs (each behind a root port, its own IOMMU group) and 2 vfio-pm-sim devices, all armed, qemu's device_del of one NIC (the host's monitor): the guest ejects it, the daemon closes it on the request IRQ and forgets it (same PID, no restart, its fds out of the daemon, the fd store and the held record), the kernel logs no WARNING, BUG or Call Trace, the others stay armed and suspended with no wake; device_add brings it back and it is armed again; then another NIC unplugged between a SIGKILL and systemd's restart (its fds in the fd store): the next daemon lets it go, no WARNING.
#
# usage: tests/vm/run --kernel 6.1 --nics 3 --hotplug --vfio-pci-opts disable_idle_d3=1 \
#            --env VFIOPM_DAEMON=unit nic-hotunplug [NIC_ID]
#        NIC_ID: the qemu id of the NIC to unplug (default nic1, the second)
#
# --hotplug puts each NIC behind a pcie-root-port (rpN); qemu 7.2's q35 signals the unplug to the
# guest through ACPI, whose acpiphp removes the device: vfio-pci's remove then waits for the
# holder's close and relays the request to the daemon's request eventfd (SPEC §4). Prints the
# times from device_del to the request, to the device gone from sysfs and to the daemon forgetting
# it.
set -u
. "$(dirname "$0")/lib/common.sh"
W=/run/nic-hotunplug
SIMS=(vfio-pm-sim.0 vfio-pm-sim.1)
victim_id=${1:-nic1}
mkdir -p "$W"

[ "$VFIOPM_DAEMON" = unit ] || fail "run it under the installed unit: tests/vm/run --env VFIOPM_DAEMON=unit"
[ "${VFIOPM_HOTPLUG:-0}" = 1 ] || fail "run it with tests/vm/run --hotplug (the NICs behind root ports)"
mapfile -t NICS < <(vfio_pci_devices)
[ ${#NICS[@]} -ge 2 ] || fail "run it with --nics 2 or more (one to unplug, one to stay)"

# The victim's PCI address from qemu's own view (query-pci: the bus numbers the guest gave the
# root ports' secondary buses), not from the order of the slots.
r=$(host_monitor '{"execute": "query-pci"}') || fail "query-pci: $r"
bus_slot=$(jq -r --arg id "$victim_id" '[.. | objects | select(.qdev_id? == $id)][0] | "\(.bus) \(.slot) \(.function)"' <<<"${r#ok }")
read -r b s f <<<"$bus_slot"
[ "$b" != null ] || fail "qemu has no device '$victim_id'"
victim=$(printf '0000:%02x:%02x.%x' "$b" "$s" "$f")
[[ " ${NICS[*]} " == *" $victim "* ]] || fail "$victim_id is $victim, not one of the NICs on vfio-pci: ${NICS[*]}"
vgroup=$(basename "$(readlink "/sys/bus/pci/devices/$victim/iommu_group")")
vdev=$(ls "/sys/bus/pci/devices/$victim/vfio-dev" 2>/dev/null)
[ -e "/dev/vfio/devices/$vdev" ] || vdev=""    # the cdev (6.6 on) only
say "NICs: ${NICS[*]}; unplugging $victim_id = $victim (IOMMU group $vgroup${vdev:+, /dev/vfio/devices/$vdev}), parent $(basename "$(readlink -f "/sys/bus/pci/devices/$victim/..")")"
OTHERS=()
for n in "${NICS[@]}"; do [ "$n" = "$victim" ] || OTHERS+=("$n"); done
OTHERS+=("${SIMS[@]}")

systemctl reload dbus || fail "reloading dbus"      # the bus policy came with the payload
modprobe vfio_pm_sim devices=${#SIMS[@]} || fail "modprobe vfio_pm_sim"
udevadm settle
policy_write 50-hotunplug.json "$(jq -n '[
  { match: { driver: "vfio-pci" }, mode: "wakeup", arm_delay_ms: 0, rearm_delay_ms: 0 },
  { match: { device: "vfio-pm-sim.0" }, mode: "wakeup", arm_delay_ms: 0, rearm_delay_ms: 0 },
  { match: { device: "vfio-pm-sim.1" }, mode: "auto", arm_delay_ms: 0 }
]')"
daemon_start --bus system
n_all=$((${#NICS[@]} + ${#SIMS[@]}))
status_is "$n_all devices: $n_all armed" 60000 || fail "not every device armed"
for d in "${NICS[@]}" "${SIMS[@]}"; do
	wait_state "$d" armed 20000 || fail "$d not armed"
	wait_runtime "$d" suspended 5000 || fail "$d armed but not suspended"
done
pass "$n_all devices armed and suspended: ${NICS[*]} ${SIMS[*]}"

pid=$(daemon_pid) restarts=$(unit_prop NRestarts) store0=$(unit_prop NFileDescriptorStore)
fds0=$(ls "/proc/$pid/fd" | wc -l)
held=/run/vfiopmd/state/held
grep -aq -- "$victim" "$held" || fail "$victim not in the held record $held before the unplug"
# Wakes and Arms of the others: the unplug must not move them
others_counters() {
	vfiopmctl --json status | jq -r --arg v "$victim" \
		'.devices[] | select(.name != $v) | "\(.name) \(.state) wakes=\(.wakes) arms=\(.arms)"' | sort
}
counters0=$(others_counters)
vfiopmctl monitor >"$W/monitor.txt" 2>&1 &
mon=$!
klines0=$(dmesg | wc -l)
sleep 1     # the monitor subscribed (it prints the present devices first)
grep -q "$victim present" "$W/monitor.txt" || fail "vfiopmctl monitor did not start: $(cat "$W/monitor.txt")"

# -- the unplug; times on the realtime clock from just before device_del
now_ms; t0=$NOW_MS
r=$(host_monitor device_del "$victim_id") || fail "device_del $victim_id: $r"
now_ms; t_reply=$((NOW_MS - t0))
say "device_del $victim_id: $r (+$t_reply ms)"
for ((i = 0; i < 6000; i++)); do [ -e "/sys/bus/pci/devices/$victim" ] || break; sleep 0.01; done
[ -e "/sys/bus/pci/devices/$victim" ] && fail "$victim still in sysfs 60 s after device_del"
now_ms; t_gone=$((NOW_MS - t0))
wait_log "^$victim: Gone from its VFIO driver, forgetting it" 30 || fail "the daemon did not forget $victim"
t_forgot=$(($(log_realtime_ms ": $victim: Gone from its VFIO driver") - t0))
# closed on the request IRQ, or (6.12 removes the vfio-dev child first) on its remove event
closed="the vfio-dev remove event"
[ "$(log_count "^$victim: The kernel asks for the device back")" -gt 0 ] &&
	closed="the request IRQ +$(($(log_realtime_ms ": $victim: The kernel asks for the device back") - t0)) ms"
for ((i = 0; i < 100; i++)); do grep -q "$victim removed" "$W/monitor.txt" && break; sleep 0.05; done
removed=$(grep -m1 "$victim removed" "$W/monitor.txt") || fail "vfiopmctl monitor saw no removal of $victim: $(cat "$W/monitor.txt")"
t_removed=$(($(date -d "${removed% "$victim removed"}" +%s%3N) - t0))
deleted=""
for ((i = 0; i < 100; i++)); do
	r=$(host_monitor qmp-events) || fail "qmp-events: $r"
	deleted=$(jq -r --arg id "$victim_id" '.[] | select(.event == "DEVICE_DELETED" and .data.device == $id) | .event' <<<"${r#ok }")
	[ -n "$deleted" ] && break
	sleep 0.1
done
[ -n "$deleted" ] || fail "qemu sent no DEVICE_DELETED for $victim_id: ${r#ok }"
pass "$victim unplugged, after device_del: closed on $closed, gone from sysfs +$t_gone ms (10 ms polls), forgotten by the daemon +$t_forgot ms, DeviceRemoved (vfiopmctl monitor) +$t_removed ms; qemu: DEVICE_DELETED $victim_id"

# -- the daemon: same process, no restart, the device out of its API, fds, store and record
[ "$(daemon_pid)" = "$pid" ] || fail "the daemon's PID changed: $pid → $(daemon_pid)"
[ "$(unit_prop NRestarts)" = "$restarts" ] || fail "systemd restarted the daemon: NRestarts $restarts → $(unit_prop NRestarts)"
[ "$(unit_prop SubState)" = running ] || fail "vfiopmd.service is $(unit_prop ActiveState)/$(unit_prop SubState)"
vfiopmctl --json status | jq -e --arg v "$victim" '[.devices[].name] | index($v) == null' >/dev/null ||
	fail "vfiopmctl status still lists $victim"
vfiopmctl show "$victim" >/dev/null 2>&1 && fail "vfiopmctl show $victim still answers"
kill "$mon"; wait "$mon" 2>/dev/null
fds1=$(ls "/proc/$pid/fd" | wc -l) store1=$(unit_prop NFileDescriptorStore)
ls -l "/proc/$pid/fd" | grep -E "/dev/vfio/$vgroup\$${vdev:+|/dev/vfio/devices/$vdev\$}" &&
	fail "the daemon still has the gone device's group or cdev open"
[ "$fds1" -lt "$fds0" ] || fail "the daemon's fds: $fds0 before, $fds1 after"
[ "$store1" -lt "$store0" ] || fail "the fd store: $store0 fds before, $store1 after"
grep -aq -- "$victim" "$held" && fail "$victim still in the held record"
pass "daemon: pid $pid kept, NRestarts $restarts, $victim not in vfiopmctl status or show; fds $fds0 → $fds1, fd store $store0 → $store1, not in the held record"

# -- the kernel: no WARNING, BUG or trace since the unplug (the rig checks the whole log as well)
dmesg | tail -n +$((klines0 + 1)) >"$W/dmesg-since.txt"
say "kernel, since device_del:"
sed 's/^/    /' "$W/dmesg-since.txt"
grep -Eq 'WARNING:|BUG:|Call Trace|Oops|general protection' "$W/dmesg-since.txt" && fail "the kernel logged a WARNING, BUG or trace"
pass "kernel log since device_del: no WARNING, BUG or Call Trace"

# -- the others: still armed and suspended, no wake, no re-arm
for d in "${OTHERS[@]}"; do
	[ "$(device_state "$d")" = armed ] || fail "$d is $(device_state "$d") after the unplug, not armed"
	[ "$(runtime_status "$d")" = suspended ] || fail "$d is $(runtime_status "$d") after the unplug, not suspended"
done
counters1=$(others_counters)
[ "$counters1" = "$counters0" ] || fail "the others' counters moved: $(diff <(echo "$counters0") <(echo "$counters1") | grep '^[<>]')"
status_is "$((n_all - 1)) devices: $((n_all - 1)) armed" 5000 || fail "STATUS not updated"
pass "others still armed and suspended, Wakes and Arms unmoved: ${OTHERS[*]}; STATUS=$(unit_prop StatusText)"

# -- device_add: the NIC comes back (unbound: e1000e is blacklisted), bound to vfio-pci it is armed
now_ms; t1=$NOW_MS
r=$(host_monitor device_add "e1000e,id=$victim_id,netdev=n${victim_id#nic},bus=rp${victim_id#nic}") ||
	fail "device_add $victim_id: $r"
for ((i = 0; i < 6000; i++)); do [ -e "/sys/bus/pci/devices/$victim" ] && break; sleep 0.01; done
[ -e "/sys/bus/pci/devices/$victim" ] || fail "$victim not back 60 s after device_add"
now_ms; t_back=$((NOW_MS - t1))
echo vfio-pci >"/sys/bus/pci/devices/$victim/driver_override"
echo "$victim" >/sys/bus/pci/drivers_probe
wait_state "$victim" armed 20000 || fail "$victim back on vfio-pci but not armed"
wait_runtime "$victim" suspended 5000 || fail "$victim armed but not suspended"
now_ms; t_armed=$((NOW_MS - t1))
status_is "$n_all devices: $n_all armed" 5000 || fail "STATUS not back to all armed"
[ "$(daemon_pid)" = "$pid" ] || fail "the daemon's PID changed: $pid → $(daemon_pid)"
pass "device_add $victim_id: $victim back in sysfs +${t_back} ms (10 ms polls), on vfio-pci and armed +${t_armed} ms; STATUS=$(unit_prop StatusText)"

# -- the unplug while no daemon runs: SIGKILL, device_del before systemd starts the next one
# (RestartSec=1s). The fd store keeps the NIC open, so the kernel's request waits in the request
# eventfd the store holds; the next daemon adopts the fds, sees the request and lets go.
victim2=${NICS[2]:-${NICS[0]}}
[ "$victim2" = "$victim" ] && victim2=${NICS[0]}
victim2_id=nic$(( $(printf '%d' "0x$(cut -d: -f2 <<<"$victim2")") - 1 ))
wait_state "$victim2" armed 5000 || fail "$victim2 not armed"
pid=$(daemon_pid) restarts=$(unit_prop NRestarts) klines0=$(dmesg | wc -l)
kill -KILL "$pid"
now_ms; t0=$NOW_MS
r=$(host_monitor device_del "$victim2_id") || fail "device_del $victim2_id: $r"
say "SIGKILL $pid, device_del $victim2_id ($victim2): $r (+$((NOW_MS - t0)) ms); daemon $(unit_prop SubState)"
wait_restarted $((restarts + 1)) 20
for ((i = 0; i < 3000; i++)); do [ -e "/sys/bus/pci/devices/$victim2" ] || break; sleep 0.01; done
[ -e "/sys/bus/pci/devices/$victim2" ] && fail "$victim2 still in sysfs 30 s after device_del, with the daemon restarted (pid $(daemon_pid)): $(dmesg | tail -n +$((klines0 + 1)))"
now_ms; t_gone=$((NOW_MS - t0))
for ((i = 0; i < 100; i++)); do [ -z "$(device_state "$victim2")" ] && break; sleep 0.05; done
[ -z "$(device_state "$victim2")" ] || fail "the daemon still lists $victim2: $(device_state "$victim2")"
say "the new daemon on $victim2:"
journalctl -q -b _SYSTEMD_INVOCATION_ID="$(unit_prop InvocationID)" -o short-monotonic --no-pager |
	grep -F "$victim2" | sed 's/^/    /'
dmesg | tail -n +$((klines0 + 1)) >"$W/dmesg-since2.txt"
say "kernel, since the SIGKILL:"
sed 's/^/    /' "$W/dmesg-since2.txt"
grep -Eq 'WARNING:|BUG:|Call Trace|Oops|general protection' "$W/dmesg-since2.txt" && fail "the kernel logged a WARNING, BUG or trace"
n_left=$((n_all - 1))
status_is "$n_left devices: $n_left armed" 20000 || fail "not every remaining device armed after the restart"
for d in "${NICS[@]}" "${SIMS[@]}"; do
	[ "$d" = "$victim2" ] && continue
	wait_runtime "$d" suspended 5000 || fail "$d not suspended after the restart"
done
pass "unplugged while no daemon ran: $victim2 gone from sysfs +$t_gone ms after device_del, the new daemon (pid $(daemon_pid)) does not list it, no WARNING; STATUS=$(unit_prop StatusText)"
