#!/bin/bash
# The installed, hardened vfiopmd.service with the default policy dirs: start arms, reload is SIGHUP and takes a policy change, stop frees the devices and restores sysfs, start and restart claim them again, SIGKILL and a watchdog timeout (WatchdogSec=5s drop-in) restart it, and the restarted daemon still puts back the values found before the first start (records in /run/vfiopmd/state); systemd-analyze security.
# Needs 2 e1000e NICs; run it with vfio-pci disable_idle_d3=1 (only a holder suspends the NICs).
# Drop-ins, both in /run: 50-test.conf only adds --log-level debug to ExecStart=; 60-watchdog.conf
# (WatchdogSec=5s instead of 30s, for the watchdog step only, to keep the scenario short).
set -u
. "$(dirname "$0")/lib/common.sh"
VFIOPM_DAEMON=unit VFIOPMD_UNIT=vfiopmd       # always the installed unit, whatever the caller set
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool
ETC=/etc/vfiopmd/policy.d
DROPINS=${VFIOPMD_DROPIN%/*}

# The bus policy (org.vfiopm1.conf) came with the payload, after dbus-daemon started.
systemctl reload dbus || fail "reloading dbus"
modprobe vfio_pm_sim devices=2 || fail "modprobe vfio_pm_sim"
nic=$(vfio_pci_devices | sed -n 1p)
nic2=$(vfio_pci_devices | sed -n 2p)
[ -n "$nic" ] && [ -n "$nic2" ] || fail "two NICs on vfio-pci expected"
d3_attr=$(dev_dir "$nic")/d3cold_allowed
ctl_attr=$(dev_dir vfio-pm-sim.1)/power/control
d3_before=$(cat "$d3_attr") ctl_before=$(cat "$ctl_attr")
say "NICs $nic $nic2; $nic d3cold_allowed=$d3_before, vfio-pm-sim.1 power/control=$ctl_before"
[ "$d3_before" = 1 ] && [ "$ctl_before" = auto ] || fail "expected d3cold_allowed 1 and power/control auto to start with"

# The policy in /etc/vfiopmd/policy.d, the unit's own directory (ConfigurationDirectory=);
# $nic2 is left to the shipped default (kernel) until the reload below.
mkdir -p "$ETC"
jq -n --arg nic "$nic" '[
  { match: { device: $nic }, mode: "wakeup", rearm_delay_ms: 0, d3cold: false },
  { match: { device: "vfio-pm-sim.0" }, mode: "wakeup", rearm_delay_ms: 0 },
  { match: { device: "vfio-pm-sim.1" }, mode: "on" }
]' >"$ETC/50-test.json" || fail "writing $ETC/50-test.json"

mkdir -p "$DROPINS"
printf '%s\n' "[Service]" "ExecStart=" "ExecStart=/usr/sbin/vfiopmd --log-level debug" >"$DROPINS/50-test.conf"
systemctl daemon-reload
say "drop-in $DROPINS/50-test.conf: $(grep '^ExecStart=.' "$DROPINS/50-test.conf")"
exposure=$(systemd-analyze security --no-pager vfiopmd 2>&1 | tail -n1)
say "systemd-analyze security: $exposure"
# the unit's hardening holds (issue 15: the fd store and its directives kept it ≤ 3.0)
[[ $exposure =~ exposure\ level\ for\ vfiopmd\.service:\ ([0-9]+\.[0-9]) ]] || fail "no exposure level in '$exposure'"
awk -v e="${BASH_REMATCH[1]}" 'BEGIN { exit !(e <= 3.0) }' || fail "systemd-analyze security: exposure ${BASH_REMATCH[1]} > 3.0"
pass "systemd-analyze security: exposure ${BASH_REMATCH[1]} (≤ 3.0)"

# claimed WHAT: every device in its state, the wakeup ones suspended and held, sysfs as the policy says
claimed() {
	for a in "$nic=armed" vfio-pm-sim.0=armed vfio-pm-sim.1=on "$nic2=$nic2_state"; do
		wait_state "${a%%=*}" "${a#*=}" || fail "$1: not every device in its state"
	done
	for d in "$nic" vfio-pm-sim.0; do
		wait_runtime "$d" suspended || fail "$1: $d armed but not suspended"
		"$tool" "$d" open=EBUSY >/dev/null || fail "$1: $d not held by the daemon"
	done
	[ "$(cat "$d3_attr")" = 0 ] || fail "$1: $nic d3cold_allowed is $(cat "$d3_attr"), the policy says false"
	[ "$(cat "$ctl_attr")" = on ] || fail "$1: vfio-pm-sim.1 power/control is $(cat "$ctl_attr") in mode on"
	pass "$1: $nic and vfio-pm-sim.0 armed (held, suspended), vfio-pm-sim.1 on, $nic2 $nic2_state; d3cold_allowed 0, power/control on"
}
# freed WHAT D3COLD CONTROL: no daemon holds anything, sysfs back to the values given
freed() {
	for d in "$nic" "$nic2" vfio-pm-sim.0 vfio-pm-sim.1; do
		"$tool" "$d" open close >/dev/null || fail "$1: $d still held"
	done
	[ "$(cat "$d3_attr")" = "$2" ] || fail "$1: $nic d3cold_allowed is $(cat "$d3_attr"), not restored to $2"
	[ "$(cat "$ctl_attr")" = "$3" ] || fail "$1: vfio-pm-sim.1 power/control is $(cat "$ctl_attr"), not restored to $3"
	pass "$1: every device opened by another process at once; d3cold_allowed $2, power/control $3 again"
}

# -- start: the installed unit, Type=notify (returns at READY=1), arms the devices
nic2_state=kernel
systemctl start vfiopmd || fail "systemctl start vfiopmd: $(systemctl status --no-pager vfiopmd 2>&1 | tail -n 20)"
pid=$(daemon_pid)
say "started: pid $pid, $(unit_prop ActiveState)/$(unit_prop SubState), STATUS=$(unit_prop StatusText), WatchdogUSec=$(unit_prop WatchdogUSec)"
claimed "start"
[ "$(unit_prop NRestarts)" = 0 ] || fail "NRestarts $(unit_prop NRestarts) after the first start"

# -- reload = SIGHUP: a policy file written before it takes effect
jq -n --arg nic "$nic2" '{ match: { device: $nic }, mode: "wakeup", rearm_delay_ms: 0 }' >"$ETC/60-reload.json"
n=$(daemon_log | grep -c "^Reloading policy (SIGHUP)")
systemctl reload vfiopmd || fail "systemctl reload vfiopmd"
wait_log "^Reloading policy \(SIGHUP\)" 5 $((n + 1)) || fail "no SIGHUP in the journal after systemctl reload"
nic2_state=armed
claimed "reload"
[ "$(daemon_pid)" = "$pid" ] || fail "reload changed the main pid: $pid → $(daemon_pid)"
daemon_log | grep -q "^Reloaded vfiopmd.service" || fail "systemd did not log the reload"
pass "reload: '$(daemon_log | grep -m1 '^Reloading policy')' in the journal, $nic2 kernel → armed, same pid $pid"

# -- stop: SIGTERM, exit 0, every device free the moment stop returns
systemctl stop vfiopmd || fail "systemctl stop vfiopmd"
freed "stop" "$d3_before" "$ctl_before"
[ -z "$(ls -A /run/vfiopmd/state)" ] || fail "stop: records left in /run/vfiopmd/state: $(ls -A /run/vfiopmd/state)"
[ "$(unit_prop Result)" = success ] && [ "$(unit_prop ExecMainStatus)" = 0 ] ||
	fail "stop: Result=$(unit_prop Result), ExecMainStatus=$(unit_prop ExecMainStatus)"
vfiopmctl >/dev/null 2>&1; [ $? = 3 ] || fail "vfiopmctl does not say the daemon is gone (exit 3)"
pass "stop: Result=success, exit status 0, vfiopmctl exit 3"

# -- start again, restart: claimed every time
systemctl start vfiopmd || fail "systemctl start vfiopmd (again)"
[ "$(daemon_pid)" != "$pid" ] || fail "start again: same pid"
pid=$(daemon_pid)
claimed "start again (pid $pid)"
systemctl restart vfiopmd || fail "systemctl restart vfiopmd"
[ "$(daemon_pid)" != "$pid" ] || fail "restart: same pid"
pid=$(daemon_pid)
claimed "restart (pid $pid)"

# -- SIGKILL: Restart=on-failure, after RestartSec=1s; the kernel closed the devices for it
restarts=$(unit_prop NRestarts)
kill -KILL "$pid"
wait_restarted $((restarts + 1))
[ "$(daemon_pid)" != "$pid" ] || fail "SIGKILL: same pid"
daemon_log | grep -q "Main process exited, code=killed, status=9/KILL" || fail "no 'killed, status=9/KILL' in the journal"
say "SIGKILL: NRestarts $restarts → $(unit_prop NRestarts), pid $pid → $(daemon_pid)"
# The killed daemon wrote nothing back; its records in /run/vfiopmd/state (RuntimeDirectory=,
# preserved) hold the values it found, which the restarted one takes as the originals.
for d in "$nic" vfio-pm-sim.1; do
	[ -f "/run/vfiopmd/state/$d" ] || fail "SIGKILL: no record /run/vfiopmd/state/$d"
done
grep -qx "d3cold_allowed=$d3_before" "/run/vfiopmd/state/$nic" &&
	grep -qx "power/control=$ctl_before" /run/vfiopmd/state/vfio-pm-sim.1 ||
	fail "SIGKILL: the records say $(cat "/run/vfiopmd/state/$nic" /run/vfiopmd/state/vfio-pm-sim.1 | tr '\n' ' '), not d3cold_allowed=$d3_before, power/control=$ctl_before"
say "SIGKILL: records $(cd /run/vfiopmd/state && grep -IH . * | tr '\n' ' ')"  # -I: the held record is binary
pid=$(daemon_pid)
claimed "restarted by systemd after SIGKILL"

# -- watchdog: a stopped daemon misses its pings; systemd aborts and restarts it
printf '%s\n' "[Service]" "WatchdogSec=5s" >"$DROPINS/60-watchdog.conf"
systemctl daemon-reload
systemctl restart vfiopmd || fail "restart with WatchdogSec=5s"
[ "$(unit_prop WatchdogUSec)" = 5s ] || fail "WatchdogUSec is $(unit_prop WatchdogUSec)"
pid=$(daemon_pid)
wait_state "$nic" armed || fail "not armed after the restart with WatchdogSec=5s"
sleep 6      # pings every 2.5 s keep it alive past WatchdogSec
[ "$(daemon_pid)" = "$pid" ] && [ "$(unit_prop SubState)" = running ] || fail "watchdog: a healthy daemon did not survive 6 s"
restarts=$(unit_prop NRestarts)
now_ms; t_stop=$NOW_MS
kill -STOP "$pid"
wait_restarted $((restarts + 1))
now_ms
daemon_log | grep -q "Watchdog timeout" || fail "no watchdog timeout in the journal"
daemon_log | grep -q "Failed with result 'watchdog'" || fail "no result 'watchdog' in the journal"
say "watchdog: SIGSTOP at pid $pid, restarted as pid $(daemon_pid) $((NOW_MS - t_stop)) ms later: $(daemon_log | grep -m1 'Watchdog timeout')"
claimed "restarted by systemd after a watchdog timeout"

# -- the hardening denied nothing: no EPERM (SystemCallFilter=, capabilities), EROFS, EACCES
say "NRestarts $(unit_prop NRestarts) since the last systemctl restart"
systemctl stop vfiopmd || fail "systemctl stop vfiopmd (at the end)"
freed "final stop" "$d3_before" "$ctl_before"
left=$(ls -A /run/vfiopmd/state)
[ -z "$left" ] || fail "final stop: records left in /run/vfiopmd/state: $left"
pass "final stop after SIGKILL and watchdog restarts: the true originals back, no record left"
rm "$DROPINS/60-watchdog.conf"
denied=$(sandbox_denials)
[ -z "$denied" ] || fail "denied under the unit's sandbox: $denied"
pass "no EPERM/EROFS/EACCES in vfiopmd.service's journal"

timeline_dump
say "PASS"
