#!/bin/bash
# Misbehaves on purpose (exit N, kmsg-warning, crash, halt) so that
# tests/vm/selftest can check that the rig reports each failure.
set -eu
case ${1:-} in
exit) echo "exiting ${2:?}"; exit "$2" ;;
kmsg-warning)
	# The same text a WARN_ON() splat starts with, at KERN_WARNING.
	echo "<4>WARNING: CPU: 0 PID: $$ at vfiopm-rig-selftest" >/dev/kmsg
	exit 0 ;;
crash) echo 1 >/proc/sys/kernel/sysrq; echo c >/proc/sysrq-trigger ;;
halt) halt -f ;;
*) echo "usage: rig-selftest exit N|kmsg-warning|crash|halt" >&2; exit 2 ;;
esac
sleep 600
