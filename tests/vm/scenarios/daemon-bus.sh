#!/bin/bash
# vfiopmd on the system bus, driven by vfiopmctl: status, GetManagedObjects, show, policy, wake (D-Bus, and a PME that re-arms at once), set/reset (persistent and runtime), reload with a bad file, release (another process opens at once), claim while held elsewhere (Busy, then success), non-root callers refused, monitor end to end, daemon unreachable.
set -u
. "$(dirname "$0")/lib/common.sh"
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool
ctl=vfiopmctl
ETC=/etc/vfiopmd/policy.d
RUN=/run/vfiopmd/policy.d

# The bus policy (org.vfiopm1.conf) came with the payload, after dbus-daemon started.
systemctl reload dbus || fail "reloading dbus"
modprobe vfio_pm_sim devices=2 || fail "modprobe vfio_pm_sim"
nic=$(vfio_pci_devices | sed -n 1p)
nic2=$(vfio_pci_devices | sed -n 2p)
[ -n "$nic" ] && [ -n "$nic2" ] || fail "two NICs on vfio-pci expected"

mkdir -p "$ETC"
printf '%s\n' '{ "match": { "driver": "vfio-pm-sim" }, "mode": "wakeup", "rearm_delay_ms": 0 }' \
	"{ \"match\": { \"device\": \"$nic\" }, \"mode\": \"wakeup\", \"rearm_delay_ms\": 500 }" |
	jq -s . >"$ETC/50-test.json"

# json_field DEV KEY: a key of the device as vfiopmctl --json show reports it
json_field() { $ctl --json show "$1" | jq -r ".$2"; }
# expect_rc RC CMD...: runs CMD, keeps its stderr in $ERR, checks its exit status
expect_rc() {
	local want=$1 rc
	shift
	ERR=$("$@" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $ERR"
}
# one line only, naming what was wrong
one_line() { [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] || fail "expected one line of error, got: $ERR"; }
policy_listing() { find "$ETC" "$RUN" -type f -printf '%p %s\n' 2>/dev/null | sort | sha256sum; }

daemon_start --bus system --policy-dirs /usr/lib/vfiopmd/policy.d:$ETC:$RUN
for d in "$nic" vfio-pm-sim.0 vfio-pm-sim.1; do wait_state "$d" armed || fail "$d not armed"; done
wait_state "$nic2" kernel || fail "$nic2 not left to the kernel"

# -- monitor, in the background for the whole scenario
$ctl --json monitor >/run/monitor.json 2>/run/monitor.err &
monitor=$!
for ((i = 0; i < 500; i++)); do [ "$(grep -c '"present"' /run/monitor.json)" -ge 4 ] && break; sleep 0.01; done
[ "$(grep -c '"present"' /run/monitor.json)" -ge 4 ] || fail "monitor did not list the 4 devices: $(cat /run/monitor.json /run/monitor.err)"
pass "monitor started: $(grep -c '"present"' /run/monitor.json) devices present"

# -- status: the table and its JSON say the same
$ctl >/run/status.txt || fail "vfiopmctl status failed"
sed 's/^/    /' /run/status.txt
head -n1 /run/status.txt | grep -qE '^NAME +VENDOR:DEVICE +CLASS +MODE +STATE +POWER +WAKES +LOW% +SAVED$' ||
	fail "status header: $(head -n1 /run/status.txt)"
col=$(head -n1 /run/status.txt | grep -bo 'STATE' | cut -d: -f1)
for d in "$nic" "$nic2" vfio-pm-sim.0 vfio-pm-sim.1; do
	row=$(grep "^$d " /run/status.txt) || fail "no status row for $d"
	want=$(json_field "$d" state)
	[ "${row:$col:${#want}}" = "$want" ] || fail "$d: STATE column does not read $want: '$row'"
done
grep "^$nic " /run/status.txt | grep -qE "^$nic +8086:10d3 +(0x)?020000 +wakeup +armed +D3hot +[0-9]+ +[0-9.]+ +-$" ||
	fail "status row of $nic: $(grep "^$nic " /run/status.txt)"
tail -n1 /run/status.txt | grep -qE '^TOTAL +-$' || fail "status: no TOTAL line (no watts declared: -): $(tail -n1 /run/status.txt)"
[ "$($ctl --json | jq '.devices | length')" = 4 ] || fail "status --json does not list 4 devices"
pass "status: aligned table, one row per device, the same states as --json"

# -- the ObjectManager: every device with its properties in one call, to anyone
om() { busctl --system --json=short call org.vfiopm1 /org/vfiopm1 org.freedesktop.DBus.ObjectManager GetManagedObjects; }
[ "$(om | jq '.data[0] | length')" = 4 ] || fail "GetManagedObjects: $(om)"
[ "$(om | jq -r --arg p "$($ctl --json show "$nic" | jq -r .path)" '.data[0][$p]["org.vfiopm1.Device"].State.data')" = armed ] ||
	fail "GetManagedObjects: no State armed for $nic: $(om)"
[ "$(setpriv --reuid=65534 --regid=65534 --clear-groups busctl --system --json=short call org.vfiopm1 /org/vfiopm1 \
	org.freedesktop.DBus.ObjectManager GetManagedObjects | jq '.data[0] | length')" = 4 ] ||
	fail "GetManagedObjects as nobody"
pass "GetManagedObjects: the 4 devices with their properties, also for nobody"

# -- show, policy
$ctl show "$nic" >/run/show.txt || fail "show failed"
grep -qE '^ +State: armed$' /run/show.txt && grep -qE '^ +Driver: vfio-pci$' /run/show.txt ||
	fail "show $nic: $(cat /run/show.txt)"
[ "$($ctl --json show "$nic" | jq -r '.policy.rearm_delay_ms | "\(.value) \(.source) \(.rule)"')" = "500 $ETC/50-test.json 1" ] ||
	fail "show --json: policy provenance of rearm_delay_ms: $($ctl --json show "$nic")"
$ctl policy "$nic" | grep -qE "^rearm_delay_ms +500 +$ETC/50-test.json \(rule 1\)$" ||
	fail "policy $nic: $($ctl policy "$nic")"
$ctl policy "$nic" | grep -qE '^flap_hold_s +300 +/usr/lib/vfiopmd/policy.d/00-defaults.json \(rule 0\)$' || fail "policy: the shipped defaults not shown"
pass "show and policy: state, driver, each key with the file and rule behind it"

# -- wake: D0 now, re-armed after rearm_delay_ms
wakes0=$(json_field "$nic" wakes)
$ctl wake "$nic" || fail "wake failed"
wait_runtime "$nic" active 2000 || fail "$nic not in D0 after wake"
wait_state "$nic" armed 5000 || fail "$nic not re-armed after wake"
wait_runtime "$nic" suspended || fail "$nic not suspended after re-arm"
[ "$(json_field "$nic" wakes)" = "$wakes0" ] || fail "a D-Bus Wake was counted as a wake"
pass "wake: D0, then armed again after rearm_delay_ms"

# -- a wake that re-arms at once (vfio-pm-sim.0, rearm_delay_ms 0): State is armed again when the
# daemon announces it, Wakes says it happened (the monitor's wake line, checked at the end)
simwakes0=$(json_field vfio-pm-sim.0 wakes)
echo 1 >/sys/bus/platform/devices/vfio-pm-sim.0/sim/pme
for ((i = 0; i < 200; i++)); do [ "$(json_field vfio-pm-sim.0 wakes)" -gt "$simwakes0" ] && break; sleep 0.02; done
simwakes=$(json_field vfio-pm-sim.0 wakes)
[ "$simwakes" -gt "$simwakes0" ] || fail "vfio-pm-sim.0: a PME was not counted as a wake"
wait_state vfio-pm-sim.0 armed || fail "vfio-pm-sim.0 not re-armed after its wake"
pass "a PME on vfio-pm-sim.0: Wakes $simwakes0 → $simwakes, armed again at once"

# -- set and reset, persistent and runtime
before=$(policy_listing)
expect_rc 1 $ctl set "$nic" rearm_delay_ms=-1
one_line
grep -q rearm_delay_ms <<<"$ERR" && grep -q -- "-1" <<<"$ERR" || fail "set with -1: error does not name the key and value: $ERR"
expect_rc 1 $ctl set "$nic" bogus_key=1
grep -q bogus_key <<<"$ERR" || fail "set bogus_key: $ERR"
expect_rc 1 $ctl set 0000:00:1f.7 mode=on
grep -q 0000:00:1f.7 <<<"$ERR" || fail "set on an absent device: $ERR"
expect_rc 2 $ctl set "$nic" novalue
[ "$(policy_listing)" = "$before" ] || fail "a refused set changed the policy directories"
pass "set refuses a bad value, an unknown key, an absent device (exit 1) and a bad argument (exit 2), changing nothing"

$ctl set "$nic" rearm_delay_ms=2000 || fail "set rearm_delay_ms"
[ "$(jq -cS . "$ETC/90-dbus-$nic.json")" = "{\"match\":{\"device\":\"$nic\"},\"rearm_delay_ms\":2000}" ] ||
	fail "90-dbus file: $(cat "$ETC/90-dbus-$nic.json")"
$ctl set "$nic" arm_delay_ms=100 || fail "set arm_delay_ms"
[ "$($ctl --json policy "$nic" | jq -r '"\(.rearm_delay_ms.value) \(.arm_delay_ms.value) \(.arm_delay_ms.source)"')" = "2000 100 $ETC/90-dbus-$nic.json" ] ||
	fail "set does not accumulate: $($ctl --json policy "$nic")"
ls -A "$ETC" | grep -v -e '^50-test.json$' -e "^90-dbus-$nic.json$" && fail "set left a stray file in $ETC"
$ctl --runtime set "$nic" mode=on || fail "set --runtime mode=on"
[ -f "$RUN/90-dbus-$nic.json" ] || fail "no runtime file"
wait_state "$nic" on || fail "$nic not on after set --runtime mode=on"
wait_runtime "$nic" active || fail "$nic not in D0 in mode on"
$ctl --runtime reset "$nic" || fail "reset --runtime"
[ -e "$RUN/90-dbus-$nic.json" ] && fail "reset --runtime left the file"
wait_state "$nic" armed || fail "$nic not armed after reset --runtime"
[ "$($ctl --json policy "$nic" | jq -r .rearm_delay_ms.value)" = 2000 ] || fail "the persistent file did not take over again"
$ctl reset "$nic" || fail "reset"
$ctl reset "$nic" || fail "a second reset is no error"
[ "$($ctl --json policy "$nic" | jq -r '"\(.rearm_delay_ms.value) \(.rearm_delay_ms.source)"')" = "500 $ETC/50-test.json" ] ||
	fail "reset did not restore the policy of 50-test.json"
pass "set writes 90-dbus-$nic.json and accumulates; --runtime masks it (mode on) until reset --runtime; reset removes it"

# -- reload with a bad file: exit 1 naming it, the last good policy stays
printf '{ "mode": "sleepy" }\n' >"$ETC/60-bad.json"
expect_rc 1 $ctl reload
grep -q "$ETC/60-bad.json: mode" <<<"$ERR" || fail "reload did not name the bad file: $ERR"
expect_rc 1 $ctl check
grep -q "$ETC/60-bad.json" <<<"$ERR" || fail "check did not name the bad file: $ERR"
[ "$(json_field "$nic" state)" = armed ] || fail "a bad file disturbed $nic"
rm "$ETC/60-bad.json"
$ctl reload || fail "reload after removing the bad file"
$ctl check >/dev/null || fail "check after removing the bad file"
pass "reload and check name a bad file (exit 1); the devices keep their policy"

# -- release: another process opens the device the moment release returns
$ctl release "$nic" || fail "release"
"$tool" "$nic" open close >/run/open.log 2>&1 || fail "open right after release failed: $(cat /run/open.log)"
[ "$(json_field "$nic" state)" = released ] || fail "$nic not released"
pass "release: another process opened $nic at once"

# -- claim while another process holds it: Busy; once it closed, claimed
rm -f /run/held /run/go
"$tool" "$nic" open ready=/run/held await=/run/go/20000 close >/run/holder.log 2>&1 &
holder=$!
for ((i = 0; i < 500; i++)); do [ -e /run/held ] && break; sleep 0.01; done
[ -e /run/held ] || fail "the holder did not open $nic"
expect_rc 1 $ctl claim "$nic"
one_line
grep -q "^vfiopmctl: $nic: another process holds the device$" <<<"$ERR" || fail "claim while held: $ERR"
[ "$(json_field "$nic" state)" = busy ] || fail "$nic not busy while held elsewhere"
touch /run/go
wait "$holder" || fail "the holder failed: $(cat /run/holder.log)"
$ctl claim "$nic" || fail "claim after the holder closed"
wait_state "$nic" armed || fail "$nic not armed after claim"
pass "claim while held elsewhere: Busy (exit 1); claimed after the holder closed"

# -- several names: each is tried, the exit says one failed
expect_rc 1 $ctl wake vfio-pm-sim.0 nonexistent vfio-pm-sim.1
grep -q "^vfiopmctl: nonexistent: " <<<"$ERR" || fail "wake with an absent name: $ERR"

# -- non-root: reads work, every change is refused and changes nothing
before=$(policy_listing)
states=$($ctl --json | jq -c '[.devices[] | .state]')
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
nobody $ctl >/dev/null || fail "status as nobody"
nobody $ctl show "$nic" >/dev/null || fail "show as nobody"
for cmd in "claim $nic" "release $nic" "wake $nic" "set $nic mode=on" "reset $nic" "reload"; do
	# shellcheck disable=SC2086
	expect_rc 1 nobody $ctl $cmd
	grep -qiE 'denied|root' <<<"$ERR" || fail "'$cmd' as nobody: $ERR"
done
[ "$(policy_listing)" = "$before" ] || fail "a refused call changed the policy directories"
[ "$($ctl --json | jq -c '[.devices[] | .state]')" = "$states" ] || fail "a refused call changed a state"
pass "as nobody: status and show work; claim, release, wake, set, reset, reload refused, nothing changed"

# -- the daemon goes away: exit 3, and the monitor says so
daemon_stop
expect_rc 3 $ctl
grep -q "not running" <<<"$ERR" || fail "status without the daemon: $ERR"
expect_rc 3 $ctl release "$nic"
expect_rc 2 $ctl frobnicate
for ((i = 0; i < 200; i++)); do grep -q '"daemon-stopped"' /run/monitor.json && break; sleep 0.01; done
kill -INT "$monitor"
wait "$monitor" || fail "monitor did not exit 0 on SIGINT"

say "monitor saw:"
jq -c '[.event, .name, .properties]' /run/monitor.json | sed 's/^/    /'
for ev in "changed $nic State=woken" "changed $nic State=released" "changed $nic State=busy" \
	"changed $nic Mode=on" "changed $nic PowerState=D0" "changed $nic State=armed"; do
	set -- $ev
	n=$(jq -r --arg e "$1" --arg d "$2" --arg k "${3%%=*}" --arg v "${3#*=}" \
		'select(.event == $e and .name == $d and .properties[$k] == $v) | 1' /run/monitor.json | wc -l)
	[ "$n" -ge 1 ] || fail "monitor missed: $ev"
done
# one announcement a loop turn: the wake that re-armed in its turn is a wake line, and no woken
n=$(jq -r --argjson n "$simwakes" 'select(.event == "wake" and .name == "vfio-pm-sim.0" and .properties.Wakes == $n) | 1' \
	/run/monitor.json | wc -l)
[ "$n" = 1 ] || fail "monitor: $n wake lines of vfio-pm-sim.0 with Wakes $simwakes, expected 1"
[ "$(jq -r 'select(.name == "vfio-pm-sim.0" and .properties.State == "woken") | 1' /run/monitor.json | wc -l)" = 0 ] ||
	fail "monitor: vfio-pm-sim.0 announced woken, though it re-armed in the same loop turn"
# (every reload announces PolicyErrors, changed or not: look at the changes)
[ "$(jq -r 'select(.event == "policy-errors") | .properties.PolicyErrors | length' /run/monitor.json |
	uniq | tail -n2 | tr '\n' ' ')" = "1 0 " ] ||
	fail "monitor: policy-errors events"
grep -q '"daemon-stopped"' /run/monitor.json || fail "monitor missed the daemon stopping"
pass "monitor: every state change above, the re-arming wake as one wake line, the policy errors coming and going, the daemon stopping"

timeline_dump
say "PASS"
