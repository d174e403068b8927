#!/bin/bash
# Misbehaves on purpose (exit N, kmsg-warning, crash, halt) so that tests/vm/selftest can check that the rig reports each failure; monitor: the host's monitor answers host_monitor.
set -eu
case ${1:-} in
monitor)
	# shellcheck source=tests/vm/scenarios/lib/common.sh
	. "$(dirname "$0")/lib/common.sh"
	r=$(host_monitor info status) || fail "info status: $r"
	[ "$r" = "ok VM status: running" ] || fail "info status: '$r'"
	pass "host_monitor info status: $r"
	r=$(host_monitor device_del no-such-device) && fail "device_del of no device: '$r'"
	[[ $r == error:* ]] || fail "device_del of no device: '$r'"
	pass "host_monitor device_del no-such-device: $r"
	r=$(host_monitor '{"execute": "query-name"}') || fail "query-name: $r"
	[[ $r == 'ok {"name": "vfiopm-'* ]] || fail "query-name: '$r'"
	pass "host_monitor (QMP) query-name: $r"
	exit 0 ;;
exit) echo "exiting ${2:?}"; exit "$2" ;;
kmsg-warning)
	# The same text a WARN_ON() splat starts with, at KERN_WARNING.
	echo "<4>WARNING: CPU: 0 PID: $$ at vfiopm-rig-selftest" >/dev/kmsg
	exit 0 ;;
crash) echo 1 >/proc/sys/kernel/sysrq; echo c >/proc/sysrq-trigger ;;
halt) halt -f ;;
*) echo "usage: rig-selftest exit N|kmsg-warning|crash|halt|monitor" >&2; exit 2 ;;
esac
sleep 600
