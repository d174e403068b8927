#!/bin/bash
# What systemd's fd store costs a start of the installed vfiopmd.service, by device count (SPEC §9; a benchmark, not a test: `tests/vm/run --nics 0 --memory 2048 bench-store`): start to READY and PID 1's CPU with FileDescriptorStoreMax=0 (nothing stored: the bus tells the daemon the unit keeps nothing) and 8192 (4 fds a vfio-pm-sim device), for each count; prints a Markdown table.
# Args: the device counts (default 250 500 1000).
set -u
. "$(dirname "$0")/lib/common.sh"
counts=("${@:-250 500 1000}")
read -ra counts <<<"${counts[*]}"
systemctl reload dbus || fail "reloading dbus"
VFIOPM_DAEMON=unit VFIOPMD_UNIT=vfiopmd
declare -A ready pid1 daemon
for n in "${counts[@]}"; do
	for max in 0 8192; do
		systemctl stop vfiopmd 2>/dev/null
		modprobe -r vfio_pm_sim 2>/dev/null
		modprobe vfio_pm_sim devices="$n" || fail "modprobe vfio_pm_sim devices=$n"
		policy_write 50-test.json '{ "match": { "driver": "vfio-pm-sim" }, "mode": "wakeup", "rearm_delay_ms": 0 }'
		sleep 2         # udev done with the new devices
		p0=$(ticks 1)
		daemon_start -p "FileDescriptorStoreMax=$max" --bus system --log-level info
		status_is "$n devices: $n armed" 120000 || fail "$n devices, FileDescriptorStoreMax=$max: not all armed"
		pid1[$n,$max]=$(($(ticks 1) - p0))
		daemon[$n,$max]=$(ticks "$(daemon_pid)")
		ready[$n,$max]=$(ready_ms)
		say "$n devices, FileDescriptorStoreMax=$max: READY after ${ready[$n,$max]} ms, PID 1 ${pid1[$n,$max]} ticks, vfiopmd ${daemon[$n,$max]} ticks"
	done
done
systemctl stop vfiopmd
rm -f "$VFIOPMD_DROPIN"
first=${counts[0]}
extra() { echo $((pid1[$1,8192] - pid1[$1,0])); }
echo "STORE|devices|READY ms, no store|READY ms, store|ratio|PID 1 ticks, no store|PID 1 ticks, store|PID 1's extra ticks|extra / ($first devices' × n/$first)"
for n in "${counts[@]}"; do
	echo "STORE|$n|${ready[$n,0]}|${ready[$n,8192]}|$(awk -v a="${ready[$n,8192]}" -v b="${ready[$n,0]}" 'BEGIN { printf "%.2f", a / b }')|${pid1[$n,0]}|${pid1[$n,8192]}|$(extra "$n")|$(awk -v e="$(extra "$n")" -v f="$(extra "$first")" -v n="$n" -v s="$first" 'BEGIN { if (f > 0) printf "%.2f", e / (f * n / s); else print "-" }')"
done
say "PASS"
