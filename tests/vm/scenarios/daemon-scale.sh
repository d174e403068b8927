#!/bin/bash
# vfiopmd with more devices than the default fd limit allows: 300 vfio-pm-sim devices under systemd's default LimitNOFILE=1024:524288 are all armed (the daemon raises its soft limit, and its groups share one container); under LimitNOFILE=600 the daemon still starts with every device listed, says once which limit to raise, and the devices it cannot open are in error with the reason; the installed vfiopmd.service restarted with all of them held adopts every one (its fd store passes back more fds than the default soft limit).
# Needs no NIC. Arg: the number of devices (default 300; more than 1024 / 5 fds a held device).
set -u
. "$(dirname "$0")/lib/common.sh"
n=${1:-300}

# The bus policy (org.vfiopm1.conf) came with the payload, after dbus-daemon started.
systemctl reload dbus || fail "reloading dbus"
modprobe vfio_pm_sim devices="$n" || fail "modprobe vfio_pm_sim devices=$n"
policy_write 50-test.json '{ "match": { "driver": "vfio-pm-sim" }, "mode": "wakeup", "rearm_delay_ms": 0 }'

# fds_of PID KIND: how many of the process's fds point at KIND (a /proc/PID/fd link target glob)
fds_of() { find "/proc/$1/fd" -lname "$2" 2>/dev/null | wc -l; }

# -- systemd's default limit for services, 1024 soft: every device armed
daemon_start -p LimitNOFILE=1024:524288 --bus system
pid=$(daemon_pid)
status_is "$n devices: $n armed" || fail "not every device armed"
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")
[ "$soft" = 524288 ] || fail "the soft fd limit is $soft, not raised to the hard one (524288)"
containers=$(fds_of "$pid" /dev/vfio/vfio)
groups=$(fds_of "$pid" '/dev/vfio/[0-9]*')
[ "$containers" = 1 ] || fail "$containers containers for $groups groups, expected one"
[ "$groups" = "$n" ] || fail "$groups group fds for $n devices (one group each)"
pass "$n devices armed under LimitNOFILE=1024:524288: soft limit raised to $soft, $groups groups in $containers container, $(ls /proc/$pid/fd | wc -l) fds"
say "the daemon's fds by kind: $(find /proc/$pid/fd -mindepth 1 -printf '%l\n' | sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | awk '{ printf "%s %s; ", $1, $2 }')"
daemon_log | grep -q "Too many open files" && fail "EMFILE although the limit was raised: $(daemon_log | grep -m1 'Too many')"
last=vfio-pm-sim.$((n - 1))
echo 1 >"/sys/bus/platform/devices/$last/sim/pme"
wait_log "^$last: woken → armed" 10 || fail "$last: the wake was not handled"
[ "$(vfiopmctl --json show "$last" | jq -r .wakes)" = 1 ] || fail "$last: Wakes is not 1"
pass "$last: woken and armed again"
daemon_stop

# -- a hard limit too low for the devices present: every device listed, the warning said once,
#    the devices that could not be opened in error, the daemon ready and serving
daemon_start -p LimitNOFILE=600:600 --bus system
[ "$(unit_prop ActiveState)" = active ] || fail "the daemon is not active under LimitNOFILE=600"
wait_log "The limit of open files \(600\) is too low for the $n devices present" 30 ||
	fail "no warning naming the limit"
[ "$(log_count 'The limit of open files')" = 1 ] || fail "the limit warning was given $(log_count 'The limit of open files') times"
json=$(vfiopmctl --json status) || fail "vfiopmctl --json status"
armed=$(jq '[.devices[] | select(.state == "armed")] | length' <<<"$json")
errors=$(jq '[.devices[] | select(.state == "error")] | length' <<<"$json")
reason=$(jq -r '[.devices[] | select(.state == "error")][0].last_error' <<<"$json")
# STATUS= lists the larger count first
if [ "$armed" -ge "$errors" ]; then want="$armed armed, $errors error"; else want="$errors error, $armed armed"; fi
status_is "$n devices: $want" 5000 || fail "STATUS does not count the devices as vfiopmctl does"
[ "$armed" -gt 0 ] && [ "$errors" -gt 0 ] && [ $((armed + errors)) = "$n" ] ||
	fail "under LimitNOFILE=600: $armed armed, $errors in error of $n"
case $reason in *"Too many open files"*) ;; *) fail "the error says '$reason', not the fd limit" ;; esac
pass "LimitNOFILE=600: active, warned once, $armed armed, $errors in error ('$reason')"
vfiopmctl reload >/dev/null || fail "reload under LimitNOFILE=600: the daemon has no fds left for its policy files"
[ "$(vfiopmctl --json show vfio-pm-sim.0 | jq -r .state)" = armed ] || fail "vfio-pm-sim.0 not armed after the reload"
pass "the daemon still works at its limit: reload, status"
daemon_stop

# -- the installed vfiopmd.service restarted with every device held: its fd store passes back
#    4 fds a device, more than the default soft limit of 1024 (systemd sets the limit before it
#    places them), and the new daemon adopts every one without waking it
policy_write 50-test.json '{ "match": { "driver": "vfio-pm-sim" }, "mode": "wakeup", "rearm_delay_ms": 0 }'
VFIOPM_DAEMON=unit VFIOPMD_UNIT=vfiopmd
daemon_start --bus system
status_is "$n devices: $n armed" 120000 || fail "vfiopmd.service: not every device armed"
restart_adopts "$n"
pass "vfiopmd.service restarted with $n devices held: all adopted, none woken, in $RESTART_MS ms"
systemctl stop vfiopmd || fail "systemctl stop vfiopmd"
"$VFIOPM_TESTS_DIR/vfio-pm-tool" "vfio-pm-sim.$((n - 1))" open close >/dev/null || fail "vfio-pm-sim.$((n - 1)) not free after the stop"
pass "systemctl stop: every device free"
say "PASS"
