#!/bin/bash
# make installcheck (run by make distcheck too): everything SPEC §2, §4-7 and issue 6 name is
# installed where configure's directories say, under $DESTDIR, and works from there:
# the binaries run, the unit starts the installed daemon, the hook runs the installed helper, the
# shipped policy and the examples pass the installed "vfiopmctl check", the DKMS sources carry a
# dkms.conf for vfio-pm-sim/VERSION. Each directory comes from make in the environment
# (installcheck-local in Makefile.am); "no" for the optional ones means not installed.
set -uo pipefail
D=${DESTDIR:-}
failed=0
bad() { echo "FAIL: $*"; failed=1; }
need() { # need TEST PATH WHAT
	if [ "$1" "$D$2" ]; then echo "ok: $3: $2"; else bad "$3: no $2 (test $1)"; fi
}

need -x "$sbindir/vfiopmd" "daemon"
need -x "$bindir/vfiopmctl" "CLI"
need -x "$pkglibexecdir/vfiopmd-libvirt-hook" "libvirt hook helper"
need -x "$libvirthookdir/vfiopmd" "libvirt hook"
need -x "$pkglibexecdir/vfiopmd-handoff" "hand-off helper (Proxmox hookscript)"
need -x "$pkgdatadir/proxmox-hookscript" "Proxmox hookscript"
need -f "$policydir/00-defaults.json" "shipped defaults (SPEC §2)"
need -d "$localpolicydir" "local policy directory"
need -f "$dbussystemdir/org.vfiopm1.conf" "bus policy"
for i in Manager Device; do need -f "$dbusinterfacesdir/org.vfiopm1.$i.xml" "introspection XML"; done
for m in man1/vfiopmctl.1 man5/vfiopmd.policy.5 man8/vfiopmd.8; do need -f "$mandir/$m" "man page"; done
n=$(ls "$D$examplesdir"/*.json 2>/dev/null | wc -l)
[ "$n" -gt 0 ] && echo "ok: $n example policies in $examplesdir" || bad "no example policies in $examplesdir"

# the binaries run from where they are installed
for b in "$sbindir/vfiopmd" "$bindir/vfiopmctl"; do
	out=$("$D$b" --help 2>&1) || bad "$b --help exited $?: $out"
done
# the shipped policy and each example validate with the installed CLI (offline, no daemon)
for f in "$D$policydir/00-defaults.json" "$D$examplesdir"/*.json; do
	out=$("$D$bindir/vfiopmctl" check "$f" 2>&1) || bad "installed vfiopmctl check $f: $out"
done
[ $failed = 0 ] && echo "ok: the installed binaries run; vfiopmctl check accepts the shipped and example policies"

# the hook execs the installed helper (the path make substituted, without DESTDIR)
grep -qxF "helper=$pkglibexecdir/vfiopmd-libvirt-hook" "$D$libvirthookdir/vfiopmd" &&
	grep -qxF 'exec "$helper" "$@"' "$D$libvirthookdir/vfiopmd" &&
	echo "ok: the hook runs $pkglibexecdir/vfiopmd-libvirt-hook" ||
	bad "$libvirthookdir/vfiopmd does not exec $pkglibexecdir/vfiopmd-libvirt-hook"
# the Proxmox hookscript runs the installed hand-off helper, which answers its usage
grep -qF "handoff=\${VFIOPMD_HANDOFF:-$pkglibexecdir/vfiopmd-handoff}" "$D$pkgdatadir/proxmox-hookscript" &&
	echo "ok: the Proxmox hookscript runs $pkglibexecdir/vfiopmd-handoff" ||
	bad "$pkgdatadir/proxmox-hookscript does not run $pkglibexecdir/vfiopmd-handoff"
"$D$pkglibexecdir/vfiopmd-handoff" >/dev/null 2>&1; [ $? = 2 ] && echo "ok: vfiopmd-handoff without arguments: usage, exit 2" ||
	bad "vfiopmd-handoff without arguments does not exit 2"

if [ "$systemdsystemunitdir" != no ]; then
	need -f "$systemdsystemunitdir/vfiopmd.service" "unit"
	grep -qxF "ExecStart=$sbindir/vfiopmd" "$D$systemdsystemunitdir/vfiopmd.service" &&
		echo "ok: the unit starts $sbindir/vfiopmd" ||
		bad "vfiopmd.service has no ExecStart=$sbindir/vfiopmd"
	need -f "$systemdsystemunitdir/vfiopmd-metrics.service" "metrics unit"
	need -f "$systemdsystemunitdir/vfiopmd-metrics.timer" "metrics timer"
	grep -qxF "ExecStart=$bindir/vfiopmctl metrics --textfile /var/lib/prometheus/node-exporter" \
		"$D$systemdsystemunitdir/vfiopmd-metrics.service" &&
		echo "ok: vfiopmd-metrics.service runs $bindir/vfiopmctl metrics --textfile" ||
		bad "vfiopmd-metrics.service has no ExecStart=$bindir/vfiopmctl metrics --textfile ..."
fi
if [ "$tmpfilesdir" != no ]; then
	need -f "$tmpfilesdir/vfiopmd.conf" "tmpfiles entry"
	grep -q '^d /run/vfiopmd/policy.d ' "$D$tmpfilesdir/vfiopmd.conf" ||
		bad "$tmpfilesdir/vfiopmd.conf does not create /run/vfiopmd/policy.d"
fi
if [ "$dkmssourcedir" != no ]; then
	src=$dkmssourcedir/vfio-pm-sim-$VERSION
	for f in Kbuild Makefile vfio_pm_sim.c vfio_pm_sim_compat.h dkms.conf; do need -f "$src/$f" "DKMS sources"; done
	grep -qx 'PACKAGE_NAME="vfio-pm-sim"' "$D$src/dkms.conf" && grep -qx "PACKAGE_VERSION=\"$VERSION\"" "$D$src/dkms.conf" ||
		bad "$src/dkms.conf is not for vfio-pm-sim/$VERSION"
fi
exit $failed
