#!/bin/bash
# make check: the generated systemd/vfiopmd.service
#  1. systemd-analyze verify accepts it (ExecStart= pointed at the build's daemon, which is not
#     installed yet; every other line as make wrote it);
#  2. systemd-analyze security --offline=yes rates it 3.0 or lower (--threshold=30);
#  3. every check security marks ✗ (a directive left off, or weaker than it could be) is
#     explained by a comment of the template: "Not KEY" ("Not PrivateNetwork=: ...") or "KEY: why";
#  4. the settings the unit's contract rests on are there (Type=notify, WatchdogSec=,
#     Restart=on-failure, ProtectSystem=strict, DevicePolicy=closed, ...).
# Skipped (77) without systemd-analyze. Run by automake's test driver in the build directory.
set -uo pipefail
unit=systemd/vfiopmd.service
tmpl=${srcdir:-.}/systemd/vfiopmd.service.in
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
[ -f "$unit" ] || { echo "FAIL: $unit not built"; exit 1; }
[ -f "$tmpl" ] || { echo "FAIL: no $tmpl"; exit 1; }
failed=0
nbad=0
bad() { echo "FAIL: $*"; failed=1; nbad=$((nbad + 1)); }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. verify. Its warnings about other units (the host's) are not ours: only lines naming ours count.
sed "s|^ExecStart=.*|ExecStart=$PWD/daemon/vfiopmd|" "$unit" >"$tmp/vfiopmd.service"
out=$(cd "$tmp" && systemd-analyze verify --man=no ./vfiopmd.service 2>&1)
rc=$?
ours=$(grep 'vfiopmd.service' <<<"$out")
if [ $rc -ne 0 ] || [ -n "$ours" ]; then
	bad "systemd-analyze verify (exit $rc): ${ours:-$out}"
else
	echo "ok: systemd-analyze verify"
fi

# 2. the exposure score
report=$(systemd-analyze security --offline=yes --no-pager --threshold=30 "$unit" 2>&1)
rc=$?
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")
[ -n "$score" ] || bad "no overall exposure level in: $report"
if [ $rc -ne 0 ]; then
	bad "systemd-analyze security: exposure ${score:-?} is above 3.0 (exit $rc)"
else
	echo "ok: systemd-analyze security --offline=yes: exposure $score (threshold 3.0)"
fi

# 3. each ✗: "✗ A=/B=" or "✗ RestrictAddressFamilies=~AF_X" -> a comment line of the template
# naming A= (or the address family)
comments=$(grep '^[[:space:]]*#' "$tmpl")
n=0 before=$nbad
while read -r item; do
	n=$((n + 1))
	IFS=/ read -ra names <<<"$item"
	for name in "${names[@]}"; do
		case $name in
		*=~*) key=${name#*=~} ;;   # RestrictAddressFamilies=~AF_NETLINK -> AF_NETLINK
		*=*) key=${name%%=*}= ;;
		*) key=$name ;;
		esac
		# an explanation, not a mention: "Not KEY" (also "Not A=/KEY"), or the comment
		# that is about KEY: "KEY: why" ("DeviceAllow=: ...", "AF_UNIX: ...")
		grep -qE -- "^[[:space:]]*#.*(Not [^[:space:]]*$key|$key:)" <<<"$comments" ||
			bad "security flags '$item' but no comment of $tmpl says why: none has 'Not $key' or '$key:'"
	done
done < <(sed -n 's/^✗ \([^ ]*\).*/\1/p' <<<"$report")
[ $n -gt 0 ] || bad "security listed no ✗ item: its output changed? $report"
[ "$nbad" != "$before" ] || echo "ok: the $n checks security marks ✗ are each explained in $tmpl"

# 4. the contract: each KEY=VALUE as a line of the unit
for want in Type=notify BusName=org.vfiopm1 Restart=on-failure ProtectSystem=strict DevicePolicy=closed \
	CapabilityBoundingSet= NoNewPrivileges=yes SystemCallFilter=@system-service \
	'RestrictAddressFamilies=AF_UNIX AF_NETLINK' 'ExecReload=/bin/kill -HUP $MAINPID'; do
	grep -qxF -- "$want" "$unit" || bad "$unit has no line '$want'"
done
grep -qE '^WatchdogSec=[1-9]' "$unit" || bad "$unit has no WatchdogSec="
grep -qE '^DeviceAllow=char-vfio rw$' "$unit" || bad "$unit does not allow the VFIO group nodes (char-vfio)"
[ "$nbad" = 0 ] && echo "ok: the contract's lines are there"

# 5. vfiopmd-metrics.service and .timer (vfiopmctl metrics --textfile for node_exporter): verify
# accepts them, the service is as closed as vfiopmd.service, the timer runs it every minute and
# nothing enables it but an admin's [Install] (timers.target)
before=$nbad
sed "s|^ExecStart=[^ ]*|ExecStart=$PWD/daemon/vfiopmctl|" systemd/vfiopmd-metrics.service >"$tmp/vfiopmd-metrics.service"
cp "${srcdir:-.}/systemd/vfiopmd-metrics.timer" "$tmp/"
out=$(cd "$tmp" && systemd-analyze verify --man=no ./vfiopmd-metrics.timer ./vfiopmd-metrics.service 2>&1)
rc=$?
ours=$(grep 'vfiopmd-metrics' <<<"$out")
[ $rc -eq 0 ] && [ -z "$ours" ] || bad "systemd-analyze verify vfiopmd-metrics (exit $rc): ${ours:-$out}"
systemd-analyze security --offline=yes --no-pager --threshold=30 systemd/vfiopmd-metrics.service >/dev/null 2>&1 ||
	bad "vfiopmd-metrics.service: exposure above 3.0: $(systemd-analyze security --offline=yes --no-pager \
		systemd/vfiopmd-metrics.service 2>&1 | tail -n1)"
for want in Type=oneshot 'ReadWritePaths=-/var/lib/prometheus/node-exporter' CapabilityBoundingSet= \
	'RestrictAddressFamilies=AF_UNIX'; do
	grep -qxF -- "$want" systemd/vfiopmd-metrics.service || bad "vfiopmd-metrics.service has no line '$want'"
done
grep -qxF 'OnUnitActiveSec=1min' "$tmp/vfiopmd-metrics.timer" || bad "vfiopmd-metrics.timer does not run every minute"
[ "$nbad" = "$before" ] && echo "ok: vfiopmd-metrics.service and .timer: verified, exposure 3.0 or lower, every minute"
exit $failed
