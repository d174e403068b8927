#!/bin/bash
# vfiopmd policy and loop: flap guard engages and lets go, SIGHUP moves a device between modes, an invalid file keeps its last good content, --check-config, VFIOPM_DEVICE= journal field, an idle daemon sleeps, watchdog.
set -u
. "$(dirname "$0")/lib/common.sh"

modprobe vfio_pm_sim devices=2 || fail "modprobe vfio_pm_sim"
sim=/sys/bus/platform/devices

policy_write 50-sim.json '[
  { "match": { "driver": "vfio-pm-sim" }, "mode": "kernel" },
  { "match": { "device": "vfio-pm-sim.0" }, "mode": "wakeup", "rearm_delay_ms": 0,
    "flap_max_wakes": 3, "flap_window_s": 30, "flap_hold_s": 3 }
]'
daemon_start
wait_log "^vfio-pm-sim.0: idle → armed" || fail "vfio-pm-sim.0 not armed"
wait_runtime vfio-pm-sim.0 suspended || fail "vfio-pm-sim.0 not suspended"

# -- the daemon logs with VFIOPM_DEVICE= in the journal
journalctl -q -b VFIOPM_DEVICE=vfio-pm-sim.0 -o cat | grep -q "idle → armed" ||
	fail "no journal entry with VFIOPM_DEVICE=vfio-pm-sim.0"
pass "journal entries carry VFIOPM_DEVICE="

# -- an idle daemon sleeps: no wake-up in 10 s with devices armed, but for the watchdog's pings
# (none in the transient unit; the installed unit's WatchdogSec=30s pings every 15 s: 1 at most)
pid=$(daemon_pid)
ctx() { awk '/ctxt_switches/ { n += $2 } END { print n }' "/proc/$pid/status"; }
wd=$(tr '\0' '\n' <"/proc/$pid/environ" | sed -n 's/^WATCHDOG_USEC=//p')
pings=0
[ -n "$wd" ] && pings=$(( (10000000 + wd / 2 - 1) / (wd / 2) ))
c0=$(ctx)
sleep 10
c1=$(ctx)
say "daemon context switches in 10 s while idle: $((c1 - c0)) (watchdog pings allowed: $pings, WATCHDOG_USEC=${wd:-unset})"
[ $((c1 - c0)) -le "$pings" ] || fail "an idle daemon woke up $((c1 - c0)) times in 10 s"
pass "an idle daemon slept 10 s with $((c1 - c0)) wake-ups (watchdog pings allowed: $pings)"

# -- flap guard: 3 wakes inside the window are fine, the 4th holds the device in D0 for 3 s
for i in 1 2 3; do
	wait_runtime vfio-pm-sim.0 suspended || fail "vfio-pm-sim.0 not suspended before wake $i"
	echo 1 >"$sim/vfio-pm-sim.0/sim/wake"
	wait_log "^vfio-pm-sim.0: woken → armed" 5 "$i" || fail "wake $i not re-armed"
done
wait_runtime vfio-pm-sim.0 suspended || fail "vfio-pm-sim.0 not suspended before wake 4"
echo 1 >"$sim/vfio-pm-sim.0/sim/wake"
wait_log "^vfio-pm-sim.0: .* → flapping" 5 || fail "flap guard did not engage on the 4th wake"
stays_runtime vfio-pm-sim.0 active 2000 || fail "a flapping device left D0"
wait_log "^vfio-pm-sim.0: flapping → armed" 5 || fail "flap guard did not let go"
wait_runtime vfio-pm-sim.0 suspended || fail "vfio-pm-sim.0 not suspended after flapping"
held=$(( $(log_time_ms "^.*vfio-pm-sim.0: flapping → armed") - $(log_time_ms "^.*vfio-pm-sim.0: .* → flapping") ))
[ "$held" -ge $((3000 - JOURNAL_SLACK_MS)) ] || fail "flapping lasted $held ms, flap_hold_s is 3"
pass "flap guard: engaged on the 4th wake, held D0 for $held ms, armed again"

# -- SIGHUP moves vfio-pm-sim.1 from kernel to wakeup
wait_runtime vfio-pm-sim.1 suspended || fail "kernel mode: vfio-pm-sim.1 not idle"
policy_write 60-hup.json '{ "match": { "device": "vfio-pm-sim.1" }, "mode": "wakeup", "rearm_delay_ms": 0 }'
kill -HUP "$(daemon_pid)"
wait_log "^vfio-pm-sim.1: kernel → idle" 5 || fail "SIGHUP did not move vfio-pm-sim.1 to wakeup"
wait_log "^vfio-pm-sim.1: idle → armed" 5 || fail "vfio-pm-sim.1 not armed after SIGHUP"
pass "SIGHUP: vfio-pm-sim.1 kernel → wakeup, armed"

# -- a file made invalid keeps its last good content, and the error names it
printf '{ "match": { "device": "vfio-pm-sim.1" }, "mode": "sleep" }\n' >"$POLICY_DIR/60-hup.json"
kill -HUP "$(daemon_pid)"
wait_log "60-hup.json: mode: " 5 || fail "no error naming 60-hup.json and its key"
sleep 1
[ "$(log_count "^vfio-pm-sim.1: armed → ")" -eq 0 ] || fail "vfio-pm-sim.1 left armed after an invalid reload"
"${VFIOPM_TESTS_DIR}/vfio-pm-tool" vfio-pm-sim.1 open=EBUSY >/dev/null || fail "vfio-pm-sim.1 no longer held"
pass "invalid 60-hup.json: error logged ($(daemon_log | grep -m1 '60-hup.json: mode')), last good content kept"

# -- --check-config: effective policy of every device, exit 1 while a file is invalid
out=$(vfiopmd --check-config --policy-dirs "$POLICY_DIR" 2>/var/tmp/check.err)
rc=$?
[ "$rc" -eq 1 ] || fail "--check-config exited $rc with an invalid file"
grep -q "60-hup.json: mode" /var/tmp/check.err || fail "--check-config did not name the invalid file"
echo "$out" | grep -q '^vfio-pm-sim.0 .*"mode":{"value":"wakeup"' || fail "--check-config: no effective policy for vfio-pm-sim.0: $out"
rm "$POLICY_DIR/60-hup.json"
vfiopmd --check-config --policy-dirs "$POLICY_DIR" >/dev/null 2>&1 || fail "--check-config failed on valid files"
pass "--check-config: exit 1 naming the invalid file, 0 once it is gone; prints each device's policy"

# -- removing the file: back to kernel mode on the next reload
kill -HUP "$(daemon_pid)"
wait_log "^vfio-pm-sim.1: armed → kernel" 5 || fail "vfio-pm-sim.1 not back to kernel mode"
"${VFIOPM_TESTS_DIR}/vfio-pm-tool" vfio-pm-sim.1 open close >/dev/null || fail "vfio-pm-sim.1 still held"
pass "file removed: vfio-pm-sim.1 back to kernel mode, not held"

# -- watchdog: with WatchdogSec the daemon pings and survives
daemon_stop
daemon_start -p WatchdogSec=2
sleep 5
[ "$(systemctl is-active "$VFIOPMD_UNIT")" = active ] || fail "watchdog: vfiopmd is $(systemctl is-active "$VFIOPMD_UNIT")"
journalctl -q -b -u "$VFIOPMD_UNIT" | grep -qi "watchdog timeout" && fail "watchdog timeout"
pass "watchdog: WatchdogSec=2 for 5 s, still running"
daemon_stop

timeline_dump
say "PASS"
