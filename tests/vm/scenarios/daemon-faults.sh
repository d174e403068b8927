#!/bin/bash
# vfiopmd under faults (issue 17), installed hardened unit (--env VFIOPM_DAEMON=unit, WatchdogSec=5): (a) a vfiopmctl monitor SIGSTOPped while thousands of wakes, Wake, SetPolicy and Reload make signals for it: other clients answered, wakes re-armed and counted, no watchdog, the daemon's VmRSS bounded, the monitor catches up or is dropped; (b) SetPolicy into a full /etc/vfiopmd/policy.d (tmpfs): ENOSPC named, the old file byte for byte, no temp file, policy unchanged; then it succeeds, and ResetPolicy on the full fs; (c) 100,000 PMEs in a burst, then PMEs until 100,000 wakes: the daemon's Wakes equals the module's sim/wakes, armed at the end, same daemon.
# Needs no NIC: tests/vm/run --nics 0 --env VFIOPM_DAEMON=unit daemon-faults [STORM_WRITES [FLOOD_SECONDS]]
# Prints its numbers: call latencies and RSS under the stopped client, wakes/s of the storm.
set -u
. "$(dirname "$0")/lib/common.sh"
storm=${1:-100000} flood_s=${2:-30}
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool
ctl=vfiopmctl
ETC=/etc/vfiopmd/policy.d
RUN=/run/vfiopmd/policy.d
# vfio-pm-sim.0: the storm (c), re-armed at once; .1: the signal source of (a), re-armed after
# 1 ms (a wake is then two state changes on the bus); .2: Wake and SetPolicy calls of (a); .3: (b)
storm_dev=vfio-pm-sim.0 sig_dev=vfio-pm-sim.1 call_dev=vfio-pm-sim.2 fs_dev=vfio-pm-sim.3

[ "$VFIOPM_DAEMON" = unit ] || fail "run with --env VFIOPM_DAEMON=unit: the faults are the installed unit's"
# The bus policy (org.vfiopm1.conf) came with the payload, after dbus-daemon started.
systemctl reload dbus || fail "reloading dbus"
modprobe vfio_pm_sim devices=4 || fail "modprobe vfio_pm_sim"

sim_attr() { cat "/sys/bus/platform/devices/$1/sim/$2"; }
wakes_of() { $ctl --json show "$1" | jq -r .wakes; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
dbus_pid() { systemctl show -p MainPID --value dbus; }
# counted DEV WAKES0 SIM_WAKES0 [MS]: the daemon's Wakes for DEV moved as much as the module's
# sim/wakes since the two baselines, and DEV is armed, within MS (default 20000); sets DW and MW
counted() {
	local end
	now_ms; end=$((NOW_MS + ${4:-20000}))
	while :; do
		DW=$(($(wakes_of "$1") - $2)) MW=$(($(sim_attr "$1" wakes) - $3))
		[ "$DW" = "$MW" ] && [ "$(device_state "$1")" = armed ] && [ "$(runtime_status "$1")" = suspended ] && return 0
		now_ms; [ "$NOW_MS" -ge "$end" ] && break
		sleep 0.2
	done
	say "$1: daemon Wakes +$DW, sim/wakes +$MW, $(device_state "$1"), $(runtime_status "$1")"
	return 1
}
same_daemon() {
	[ "$(daemon_pid)" = "$pid0" ] && [ "$(unit_prop NRestarts)" = 0 ] && [ "$(unit_prop ActiveState)" = active ] ||
		fail "$1: the daemon is pid $(daemon_pid) (was $pid0), NRestarts $(unit_prop NRestarts), $(unit_prop ActiveState)"
	journalctl -q -b -u "$VFIOPMD_UNIT" --no-pager | grep -i "watchdog timeout" && fail "$1: the watchdog fired"
	pass "$1: same daemon (pid $pid0), NRestarts 0, no watchdog timeout"
}

# (b)'s filesystem is mounted before the start (ConfigurationDirectory= makes it writable in the
# unit's namespace); (b) also sees whether one mounted while the daemon runs reaches it.
mkdir -p "$ETC"
mount -t tmpfs -o size=64k,mode=0755 vfiopm-faults "$ETC" || fail "mounting a tmpfs on $ETC"
policy_write 50-test.json "$(jq -n --arg s "$storm_dev" --arg g "$sig_dev" '[
	{ match: { driver: "vfio-pm-sim" }, mode: "wakeup", rearm_delay_ms: 0, flap_hold_s: 0 },
	{ match: { device: $g }, rearm_delay_ms: 1 } ]')"
# info, as installed: the debug lines of 100,000 wakes are not what is tested
daemon_start -p WatchdogSec=5 --bus system --log-level info --policy-dirs "$POLICY_DIR:$ETC:$RUN"
pid0=$(daemon_pid)
for d in $storm_dev $sig_dev $call_dev $fs_dev; do wait_state "$d" armed || fail "$d not armed"; done

# ---- (a) a D-Bus client that stops reading
say "--- (a) vfiopmctl monitor SIGSTOPped for $flood_s s of signals"
$ctl --json monitor >/run/monitor.json 2>/run/monitor.err &
mon=$!
for ((i = 0; i < 500; i++)); do [ "$(grep -c '"present"' /run/monitor.json)" -ge 4 ] && break; sleep 0.01; done
[ "$(grep -c '"present"' /run/monitor.json)" -ge 4 ] || fail "monitor did not list the 4 devices: $(cat /run/monitor.json /run/monitor.err)"
kill -STOP "$mon"
lines0=$(wc -l </run/monitor.json)
rss0=$(rss_kb "$pid0") dbus_rss0=$(rss_kb "$(dbus_pid)") rss_max=$rss0
w0=$(wakes_of $sig_dev) mw0=$(sim_attr $sig_dev wakes)
# the signal source: PMEs on $sig_dev, the CPU given to the daemon after each
"$tool" --poke /sys/bus/platform/devices/$sig_dev/sim/pme 1000000000 --yield >/dev/null &
poker=$!
calls=0 slow=0 total=0 wakes_called=0 sets=0 reloads=0
now_ms; end=$((NOW_MS + flood_s * 1000))
while now_ms; [ "$NOW_MS" -lt "$end" ]; do
	t=${EPOCHREALTIME/./}
	$ctl status >/dev/null || fail "(a) vfiopmctl status failed while the monitor was stopped"
	t=$(((${EPOCHREALTIME/./} - t) / 1000))
	calls=$((calls + 1)) total=$((total + t))
	[ "$t" -gt "$slow" ] && slow=$t
	$ctl wake $call_dev || fail "(a) vfiopmctl wake $call_dev failed"
	wakes_called=$((wakes_called + 1))
	$ctl --runtime set $call_dev rearm_delay_ms=$((calls % 7)) || fail "(a) SetPolicy failed"
	sets=$((sets + 1))
	if [ $((calls % 5)) = 0 ]; then $ctl reload || fail "(a) Reload failed"; reloads=$((reloads + 1)); fi
	r=$(rss_kb "$pid0"); [ "$r" -gt "$rss_max" ] && rss_max=$r
done
kill "$poker"
wait "$poker"
[ "$(awk '{ print $3 }' "/proc/$mon/stat")" = T ] || fail "(a) the monitor is not stopped: $(cat "/proc/$mon/stat")"
rss1=$(rss_kb "$pid0") dbus_rss1=$(rss_kb "$(dbus_pid)")
say "(a) $calls status calls in $flood_s s, slowest $slow ms, mean $((total / calls)) ms; $wakes_called Wake, $sets SetPolicy, $reloads Reload"
say "(a) vfiopmd VmRSS $rss0 → $rss1 kB (max $rss_max); dbus-daemon VmRSS $dbus_rss0 → $dbus_rss1 kB (what it queues for the stopped monitor)"
[ "$slow" -le 5000 ] || fail "(a) a status call took $slow ms while the monitor was stopped"
pass "(a) every other client's call answered, the slowest status in $slow ms"
[ $((rss_max - rss0)) -le 4096 ] || fail "(a) the daemon's VmRSS grew by $((rss_max - rss0)) kB"
pass "(a) the daemon's VmRSS stayed within 4 MiB of its start ($((rss_max - rss0)) kB more at most)"
counted $sig_dev "$w0" "$mw0" || fail "(a) $sig_dev: not every wake counted and re-armed"
pass "(a) $sig_dev: $MW wakes (PMEs), each counted by the daemon (Wakes +$DW) and re-armed"
wait_state $call_dev armed || fail "(a) $call_dev not armed after $wakes_called Wake calls"
same_daemon "(a)"

kill -CONT "$mon"
# the monitor catches up with what dbus-daemon kept for it, or was dropped by it
prev=-1
for ((i = 0; i < 300; i++)); do
	n=$(wc -l </run/monitor.json)
	[ "$n" = "$prev" ] && break
	prev=$n
	kill -0 "$mon" 2>/dev/null || break
	sleep 0.2
done
queued=$(($(wc -l </run/monitor.json) - lines0))
say "(a) after SIGCONT: the monitor printed $queued events more ($(grep -c '"wake"' /run/monitor.json) wake events in all)"
if kill -0 "$mon" 2>/dev/null; then
	# a socket buffer holds a few hundred of them: the rest waited in dbus-daemon
	[ "$queued" -ge 1000 ] || fail "(a) only $queued events were sent to the stopped monitor: too few to fill its socket"
	last=$(jq -r --arg d $sig_dev 'select(.event == "wake" and .name == $d) | .properties.Wakes' /run/monitor.json | tail -n1)
	[ "$last" = "$(wakes_of $sig_dev)" ] || fail "(a) the resumed monitor's last wake of $sig_dev says Wakes $last, the daemon $(wakes_of $sig_dev)"
	# a new wake (a PME: counted, so the monitor prints it, even if it re-armed in the same turn;
	# a D-Bus Wake with rearm_delay_ms 0 moves only Arms, which the monitor does not print)
	echo 1 >/sys/bus/platform/devices/$sig_dev/sim/pme
	counted $sig_dev "$w0" "$mw0" || fail "(a) the PME after SIGCONT was not counted"
	want=$(wakes_of $sig_dev)
	monitor_wakes() { jq -r --arg d $sig_dev 'select(.event == "wake" and .name == $d) | .properties.Wakes' /run/monitor.json | tail -n1; }
	for ((i = 0; i < 100; i++)); do [ "$(monitor_wakes)" = "$want" ] && break; sleep 0.1; done
	[ "$(monitor_wakes)" = "$want" ] || fail "(a) the resumed monitor does not see the new wake of $sig_dev (Wakes $want): $(monitor_wakes)"
	kill -INT "$mon"
	wait "$mon" || fail "(a) the resumed monitor did not exit 0 on SIGINT: $(cat /run/monitor.err)"
	pass "(a) the resumed monitor caught up ($queued events, the last wake of $sig_dev at Wakes $last), saw a new wake (Wakes $want) and exited 0 on SIGINT"
else
	wait "$mon"
	say "(a) the monitor was dropped by the bus (exit $?): $(cat /run/monitor.err)"
fi
timeout 30 $ctl --json monitor >/run/monitor2.json 2>&1 &
mon2=$!
for ((i = 0; i < 500; i++)); do [ "$(grep -c '"present"' /run/monitor2.json)" -ge 4 ] && break; sleep 0.01; done
[ "$(grep -c '"present"' /run/monitor2.json)" -ge 4 ] || fail "(a) a new monitor does not list the devices: $(cat /run/monitor2.json)"
kill -INT "$mon2"; wait "$mon2"
$ctl --runtime reset $call_dev || fail "(a) reset $call_dev"
pass "(a) a new monitor lists the 4 devices"

# ---- (b) SetPolicy into a full filesystem
say "--- (b) SetPolicy with $ETC full ($(findmnt -no SOURCE,FSTYPE,OPTIONS "$ETC"))"
file=$ETC/90-dbus-$fs_dev.json
$ctl set $fs_dev rearm_delay_ms=250 || fail "(b) set on a tmpfs with room"
[ -f "$file" ] || fail "(b) $file not written"
sum0=$(sha256sum <"$file") policy0=$($ctl --json policy $fs_dev)
dd if=/dev/zero of="$ETC/filler" bs=4k 2>/dev/null
: >"$ETC/filler.try" 2>/dev/null && printf x >>"$ETC/filler.try" 2>/dev/null && fail "(b) $ETC is not full"
rm -f "$ETC/filler.try"
say "(b) $ETC: $(df -k --output=used,avail "$ETC" | tail -n1 | awk '{ print $1 " kB used, " $2 " kB free" }')"
ERR=$($ctl set $fs_dev rearm_delay_ms=750 arm_delay_ms=125 flap_max_wakes=40 flap_window_s=120 2>&1) &&
	fail "(b) set succeeded on a full filesystem"
say "(b) vfiopmctl set: $ERR"
grep -q "No space left on device" <<<"$ERR" && grep -q "$file" <<<"$ERR" ||
	fail "(b) the error does not name the file and the lack of space: $ERR"
[ "$(sha256sum <"$file")" = "$sum0" ] || fail "(b) $file changed: $(cat "$file")"
left=$(ls -A "$ETC" | grep -v -e '^filler$' -e "^90-dbus-$fs_dev.json$")
[ -z "$left" ] || fail "(b) left behind in $ETC: $left"
[ "$($ctl --json policy $fs_dev)" = "$policy0" ] || fail "(b) the policy in force changed: $($ctl --json policy $fs_dev)"
[ "$($ctl --json policy $fs_dev | jq -r .rearm_delay_ms.value)" = 250 ] || fail "(b) rearm_delay_ms is not 250"
pass "(b) ENOSPC named, $file byte for byte as before, no temp file, the policy in force unchanged (rearm_delay_ms 250)"
same_daemon "(b) full"
rm -f "$ETC/filler"
$ctl set $fs_dev rearm_delay_ms=750 arm_delay_ms=125 flap_max_wakes=40 flap_window_s=120 || fail "(b) set after freeing space"
[ "$($ctl --json policy $fs_dev | jq -r .rearm_delay_ms.value,.flap_max_wakes.value | paste -sd' ')" = "750 40" ] ||
	fail "(b) the new rule is not in force: $($ctl --json policy $fs_dev)"
[ "$(ls -A "$ETC")" = "90-dbus-$fs_dev.json" ] || fail "(b) $ETC holds: $(ls -A "$ETC")"
pass "(b) with room again, set writes the larger rule and it is in force"
dd if=/dev/zero of="$ETC/filler" bs=4k 2>/dev/null
$ctl reset $fs_dev || fail "(b) ResetPolicy on the full filesystem: removing the file needs no room"
[ -e "$file" ] && fail "(b) reset left $file"
[ "$($ctl --json policy $fs_dev | jq -r .rearm_delay_ms.value)" = 0 ] || fail "(b) reset did not restore the base policy"
wait_state $fs_dev armed || fail "(b) $fs_dev not armed"
rm -f "$ETC/filler"
pass "(b) ResetPolicy on the full filesystem removes the file, the base policy is back"
# A filesystem mounted on it after the start: which one does the unit's namespace write into?
mount -t tmpfs -o size=64k,mode=0755 vfiopm-late "$ETC" || fail "(b) mounting a second tmpfs on $ETC"
$ctl set $fs_dev rearm_delay_ms=333 || fail "(b) set with a tmpfs mounted on $ETC after the start"
[ "$($ctl --json policy $fs_dev | jq -r .rearm_delay_ms.value)" = 333 ] || fail "(b) rearm_delay_ms 333 not in force"
if [ -e "$file" ]; then
	say "(b) a tmpfs mounted on $ETC after the daemon's start: SetPolicy wrote into it (the mount reached the unit's namespace)"
else
	say "(b) a tmpfs mounted on $ETC after the daemon's start: SetPolicy did not write into it (the unit's namespace keeps the filesystem of its start: restart it after mounting)"
fi
$ctl reset $fs_dev || fail "(b) reset"
umount "$ETC"
same_daemon "(b)"

# ---- (c) wake storms through the daemon: $storm PMEs in a burst (most find the device not yet
# back in low power: the writes race the re-arm), then PMEs with the CPU yielded after each until
# the module counted $storm wakes
# storm HOW WRITES: HOW is burst (as fast as one process writes) or --yield
storm() {
	"$tool" --poke /sys/bus/platform/devices/$storm_dev/sim/pme "$2" ${1/burst/} >/run/poke.log 2>&1 ||
		fail "(c) a PME write failed: $(cat /run/poke.log)"
}
for how in burst --yield; do
	say "--- (c) $storm_dev (rearm_delay_ms 0, flap_hold_s 0): $storm $([ $how = burst ] && echo "PMEs in a burst" || echo "wakes, the CPU yielded after each PME")"
	w0=$(wakes_of $storm_dev) mw0=$(sim_attr $storm_dev wakes) rss0=$(rss_kb "$pid0")
	writes=0 t0=${EPOCHREALTIME/./}
	if [ $how = burst ]; then
		storm burst "$storm"
		writes=$storm
	else
		while [ $(($(sim_attr $storm_dev wakes) - mw0)) -lt "$storm" ]; do
			storm --yield 20000
			writes=$((writes + 20000))
		done
	fi
	counted $storm_dev "$w0" "$mw0" 120000 || fail "(c) ${how#--}: the daemon did not count every wake"
	ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	say "(c) ${how#--}: $writes PMEs, $MW wakes (the others found $storm_dev not in low power), the daemon counted $DW; $ms ms, $((MW * 1000 / ms)) wakes/s; VmRSS $rss0 → $(rss_kb "$pid0") kB"
	[ "$MW" -gt 0 ] || fail "(c) no PME woke $storm_dev"
	pass "(c) ${how#--}: the daemon's Wakes equals the module's sim/wakes (+$MW), $storm_dev armed"
	same_daemon "(c) ${how#--}"
done

daemon_stop
umount "$ETC"
say "PASS"
