#!/bin/bash
# Group-granular hand-off: releasing one of two NICs that share an IOMMU group releases both (vfiopmctl names the other; another process opens either at once), Busy while the group is held elsewhere, claim takes both back; a NIC in its own group is never touched.
#
# usage: tests/vm/run --kernel 6.1 --nics 1 --bridged-nics 2 --vfio-pci-opts disable_idle_d3=1 handoff-group
#
# SPEC §5: Release returns once the device's IOMMU group is free; every device vfiopmd holds in
# that group is released with it. Devices: A and B, the two NICs behind the rig's PCIe-to-PCI
# bridge (one IOMMU group G with the bridge: vfio group opens are exclusive, so whoever holds one
# of them holds the group), and C, a plain NIC alone in its group. vfiopmd on the system bus,
# mode wakeup, rearm_delay_ms 0 for all three.
set -u
. "$(dirname "$0")/lib/common.sh"
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool
ctl=vfiopmctl
W=/run/vfiopmd-test
mkdir -p "$W"

# -- the devices: A, B in the bridge's group G, C alone in group GC
[ "${VFIOPM_NICS:-0}" -ge 1 ] && [ "${VFIOPM_BRIDGED_NICS:-0}" -ge 2 ] ||
	fail "needs tests/vm/run --nics 1 --bridged-nics 2 (got --nics ${VFIOPM_NICS:-?} --bridged-nics ${VFIOPM_BRIDGED_NICS:-0})"
group_of() { basename "$(readlink "$(dev_dir "$1")/iommu_group")"; }
group_members() { ls "/sys/kernel/iommu_groups/$1/devices"; }
A="" B="" C="" G="" GC=""
for d in $(vfio_pci_devices); do
	g=$(group_of "$d")
	if [ "$(group_members "$g" | wc -l)" -eq 1 ]; then
		[ -n "$C" ] || { C=$d; GC=$g; }
	elif [ -z "$A" ]; then
		A=$d G=$g
	elif [ -z "$B" ] && [ "$g" = "$G" ]; then
		B=$d
	fi
done
[ -n "$A" ] && [ -n "$B" ] || fail "no two vfio-pci NICs sharing an IOMMU group: $(vfio_pci_devices | tr '\n' ' ')"
[ -n "$C" ] || fail "no vfio-pci NIC alone in its IOMMU group"
bridge=""
for m in $(group_members "$G"); do
	case $m in
	"$A" | "$B") ;;
	*)
		[[ $(cat "/sys/bus/pci/devices/$m/class") == 0x0604* ]] && [ ! -e "/sys/bus/pci/devices/$m/driver" ] ||
			fail "group $G holds $m, neither A, B nor a driverless PCI bridge"
		bridge=$m ;;
	esac
done
[ -n "$bridge" ] || fail "group $G has no bridge: $(group_members "$G" | tr '\n' ' ')"
say "A=$A B=$B: IOMMU group $G with the bridge $bridge; C=$C: group $GC alone"

# json3 DEV: "state release_reason released_by" as vfiopmctl --json show reports them
json3() { $ctl --json show "$1" | jq -r '"\(.state) \(.release_reason) \(.released_by)"'; }
json_field() { $ctl --json show "$1" | jq -r ".$2"; }
# run_rc RC CMD...: runs CMD with its stdout in $OUT and its stderr in $ERR; it must exit RC
run_rc() {
	local want=$1 rc
	shift
	"$@" >"$W/out" 2>"$W/err"
	rc=$?
	OUT=$(cat "$W/out") ERR=$(cat "$W/err")
	[ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want; stdout: '$OUT'; stderr: '$ERR'"
}
# armed DEV...: each is armed in vfiopmd and runtime-suspended (bounded waits)
armed() {
	local d
	for d; do
		wait_state "$d" armed || fail "$d not armed"
		wait_runtime "$d" suspended || fail "$d armed, but not runtime-suspended"
	done
}
# still_armed DEV...: each is armed and suspended right now (no wait: nothing may have moved it)
still_armed() {
	local d s r
	for d; do
		s=$(device_state "$d") r=$(runtime_status "$d")
		[ "$s" = armed ] && [ "$r" = suspended ] || fail "$d is $s, runtime $r: expected to stay armed, suspended"
	done
}
# counters DEV: "arms wakes" of DEV
counters() { $ctl --json show "$1" | jq -r '"\(.arms) \(.wakes)"'; }
# opens DEV...: another process opens each (its group) and closes it again, at once
opens() {
	local d
	for d; do
		"$tool" "$d" open close >"$W/open.log" 2>&1 || fail "another process cannot open $d: $(tr '\n' ' ' <"$W/open.log")"
	done
}
# wait_released_log DEV BY: the journal has a line of DEV's naming BY as the cause of its release
wait_released_log() {
	local end
	now_ms; end=$((NOW_MS + 5000))
	while :; do
		daemon_log | grep -F "$1: " | grep -F "$2" | grep -qi releas && return 0
		now_ms; [ "$NOW_MS" -ge "$end" ] && break
		sleep 0.05
	done
	fail "no journal line for $1's release naming $2: $(daemon_log | grep -F "$1: " | tail -n 3 | tr '\n' '|')"
}
# open_result LOG RC: what vfio-pm-tool's open step gave ("0", "EBUSY", ...)
open_result() {
	local r
	r=$(grep -o 'open -> [^,]*' "$1" | head -n1)
	if [ -n "$r" ]; then echo "${r#open -> }"; else echo "exit $2"; fi
}
# release_group X Y: vfiopmctl release X also releases Y, which it names; both open at once
release_group() {
	local x=$1 y=$2 rc took ra rb
	now_ms; local t0=$NOW_MS
	$ctl release "$x" >"$W/out" 2>"$W/err"
	rc=$?
	now_ms; took=$((NOW_MS - t0))
	# right away, no wait: another process opens the group through either device
	"$tool" "$x" open close >"$W/open-x.log" 2>&1; ra=$?
	"$tool" "$y" open close >"$W/open-y.log" 2>&1; rb=$?
	OUT=$(cat "$W/out") ERR=$(cat "$W/err")
	say "vfiopmctl release $x: exit $rc in $took ms; stdout: '$OUT'${ERR:+; stderr: '$ERR'}"
	say "    then, at once: open $x: $(open_result "$W/open-x.log" "$ra"), open $y: $(open_result "$W/open-y.log" "$rb")"
	RELEASE_MS=$took
	[ "$rc" = 0 ] || fail "vfiopmctl release $x exited $rc: $ERR"
	[ "$OUT" = "$y: released with $x (IOMMU group $G)" ] && [ "$(wc -l <"$W/out")" = 1 ] ||
		fail "vfiopmctl release $x: stdout is not the one line '$y: released with $x (IOMMU group $G)'"
	[ "$ra" = 0 ] || fail "another process cannot open $x right after release $x returned: $(tr '\n' ' ' <"$W/open-x.log")"
	[ "$rb" = 0 ] || fail "another process cannot open $y right after release $x returned: $(tr '\n' ' ' <"$W/open-y.log")"
	pass "release $x: $y released with it (named on stdout); another process opened $x and $y at once"
	[ "$(json3 "$x")" = "released release $x" ] ||
		fail "$x: state, release_reason, released_by are '$(json3 "$x")', expected 'released release $x'"
	[ "$(json3 "$y")" = "released group $x" ] ||
		fail "$y: state, release_reason, released_by are '$(json3 "$y")', expected 'released group $x'"
	$ctl show "$y" >"$W/show.txt" || fail "vfiopmctl show $y failed"
	grep -E '^ *Released:' "$W/show.txt" | grep -qF "$x" ||
		fail "vfiopmctl show $y has no 'Released:' line naming $x: $(tr '\n' '|' <"$W/show.txt")"
	say "    show $y: $(grep -E '^ *Released:' "$W/show.txt" | sed 's/^ *//')"
	wait_released_log "$y" "$x"
	say "    journal: $(daemon_log | grep -F "$y: " | grep -F "$x" | grep -i releas | tail -n1)"
	pass "--json show: $x released (release, by $x), $y released (group, by $x); show $y and the journal name $x"
}

# -- vfiopmd on the system bus holds all three
systemctl reload dbus || fail "reloading dbus" # the bus policy came with the payload
policy_write 50-group.json "$(jq -n --arg a "$A" --arg b "$B" --arg c "$C" \
	'[$a, $b, $c] | map({ match: { device: . }, mode: "wakeup", rearm_delay_ms: 0 })')"
daemon_start --bus system
armed "$A" "$B" "$C"
c0=$(counters "$C")
pass "$A, $B and $C armed and runtime-suspended (C: arms, wakes $c0)"

# -- release A: B goes with it, the group is free at once; C stays
still_armed "$C"
release_group "$A" "$B"
release_a_ms=$RELEASE_MS
still_armed "$C"
pass "$C (group $GC) stayed armed and suspended"

# -- a daemon restart keeps them released (/run/vfiopmd/released): it must not take back a group
# a VM may be opening
[ "$(cat "/run/vfiopmd/released/$B")" = "reason=group
by=$A" ] || fail "/run/vfiopmd/released/$B: '$(cat "/run/vfiopmd/released/$B" 2>&1)'"
pid=$(daemon_pid)
systemctl restart "$VFIOPMD_UNIT" || fail "systemctl restart $VFIOPMD_UNIT"
[ "$(daemon_pid)" != "$pid" ] || fail "the daemon's pid did not change over the restart"
wait_state "$C" armed || fail "$C not armed after the restart"
[ "$(json3 "$A")" = "released release $A" ] && [ "$(json3 "$B")" = "released group $A" ] ||
	fail "after the restart: $A '$(json3 "$A")', $B '$(json3 "$B")'"
opens "$A" "$B"
pass "systemctl restart: $A and $B still released (records in /run/vfiopmd/released), the group still free"

# -- claim A while another process holds the group: Busy; once it closed, A and B come back
rm -f "$W/held" "$W/go"
"$tool" "$A" open ready="$W/held" await="$W/go/30000" close >"$W/holder.log" 2>&1 &
holder=$!
for ((i = 0; i < 500; i++)); do [ -e "$W/held" ] && break; sleep 0.01; done
[ -e "$W/held" ] || fail "the holder did not open $A: $(cat "$W/holder.log")"
run_rc 1 $ctl claim "$A"
[ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] && grep -qF "$A" <<<"$ERR" && grep -q "another process holds" <<<"$ERR" ||
	fail "claim $A while the group is held elsewhere: expected one line naming $A, 'another process holds': '$ERR'"
say "claim $A while held elsewhere: exit 1, '$ERR'; states now: $A $(device_state "$A"), $B $(device_state "$B")"
touch "$W/go"
wait "$holder" || fail "the holder failed: $(cat "$W/holder.log")"
run_rc 0 $ctl claim "$A"
armed "$A" "$B"
pass "claim $A: Busy (exit 1) while another process held group $G; after it closed, claim $A re-armed $A and $B"

# -- release B: A goes with it; claim B takes both back
release_group "$B" "$A"
release_b_ms=$RELEASE_MS
still_armed "$C"
run_rc 0 $ctl claim "$B"
armed "$A" "$B"
pass "claim $B re-armed $A and $B"

# -- claim C while it is armed: exit 0, nothing changes
lines=$(log_count "^$C: .*→")
run_rc 0 $ctl claim "$C"
still_armed "$C"
[ "$(counters "$C")" = "$c0" ] || fail "$C: arms, wakes $(counters "$C"), were $c0 (claim of an armed device touched it)"
[ "$(log_count "^$C: .*→")" = "$lines" ] || fail "claim of armed $C changed its state: $(daemon_log | grep "^$C: .*→" | tail -n1)"
pass "claim $C (armed): exit 0, still armed and suspended, arms and wakes unchanged, no state change logged"

# -- release C alone: nothing else is released, nothing else named
ab0="$(counters "$A") $(counters "$B")"
now_ms; t0=$NOW_MS
run_rc 0 $ctl release "$C"
now_ms; release_c_ms=$((NOW_MS - t0))
[ -z "$OUT" ] || fail "release $C printed '$OUT'; no other device shares its group"
opens "$C"
still_armed "$A" "$B"
[ "$(counters "$A") $(counters "$B")" = "$ab0" ] || fail "release $C touched $A or $B: arms, wakes $(counters "$A") $(counters "$B"), were $ab0"
[ "$(json3 "$C")" = "released release $C" ] || fail "$C: '$(json3 "$C")', expected 'released release $C'"
pass "release $C ($release_c_ms ms): prints nothing, another process opened it at once, $A and $B untouched"
run_rc 0 $ctl claim "$C"
armed "$C"
pass "claim $C: armed again"

# -- the releases were kept for a restart (/run/vfiopmd/released, writable under the unit's
# sandbox too), and nothing of them is left after the claims
daemon_log | grep -q "Failed to record the release" && fail "a release was not recorded: $(daemon_log | grep 'Failed to record the release')"
denied=$(sandbox_denials)
[ -z "$denied" ] || fail "sandbox denials: $denied"
[ -z "$(ls -A /run/vfiopmd/released)" ] || fail "releases left after the claims: $(ls -A /run/vfiopmd/released)"
pass "every release recorded in /run/vfiopmd/released and removed by its claim; no sandbox denial ($VFIOPM_DAEMON)"

# -- stop: every group free
daemon_stop
opens "$A" "$B" "$C"
pass "vfiopmd stopped: groups $G ($A, $B) and $GC ($C) open"

say "vfiopmctl release $A (2 devices, group $G): $release_a_ms ms; release $B: $release_b_ms ms; release $C (alone): $release_c_ms ms"
timeline_dump
say "PASS"
