#!/bin/bash
# make check: the Proxmox VE hookscript (conf/proxmox-hookscript.in), run on the sample configs
# of tests/fixtures/proxmox (a /etc/pve: qemu-server/*.conf, mapping/pci.cfg) with a fake /sys
# made here and a fake vfiopmd-handoff that records its argv and exits with $FAKE_RC.
# Each case compares the helper's exact argv (or checks it was not run), the exit status, and
# the warnings on stderr. The hookscript runs under every POSIX shell found (dash, bash
# --posix, busybox sh; the first is the one its #! names).
# Usage: tests/proxmox-hook.sh [SCRIPT]; SCRIPT (or $PROXMOX_HOOKSCRIPT) defaults to
# $srcdir/conf/proxmox-hookscript.in. A *.in is substituted here (@pkglibexecdir@ =
# /nonexistent, which also tests the missing helper); any other file is run as it is.
# Exit 0 pass, 1 fail, 77 skip (no awk).
set -uo pipefail
src=${1:-${PROXMOX_HOOKSCRIPT:-${srcdir:-.}/conf/proxmox-hookscript.in}}
fixtures=${srcdir:-.}/tests/fixtures/proxmox
command -v awk >/dev/null || { echo "SKIP: no awk"; exit 77; }
[ -f "$src" ] || { echo "FAIL: no hookscript $src"; exit 1; }
[ -f "$fixtures/qemu-server/100.conf" ] || { echo "FAIL: no fixtures in $fixtures"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
bad() { echo "FAIL: $*"; failed=1; }

hook=$tmp/hookscript
substituted=
if [[ $src == *.in ]]; then
	sed 's|@pkglibexecdir@|/nonexistent|g' "$src" >"$hook"
	substituted=1
else
	cp "$src" "$hook"
fi
chmod 755 "$hook"
if grep -n '@[a-zA-Z_]*@' "$hook"; then bad "$src: unsubstituted @...@"; fi

# The fake /sys: plain directories. 0000:03:01.0, 0000:13:00.0 and 0001:03:00.0 must not
# count for the slot 03:00; nothing is in 0e:00 or 0f:00.
sysfs=$tmp/sys
for d in 0000:01:00.0 0000:01:00.1 0000:02:00.0 0000:02:00.1 0000:03:00.0 0000:03:00.1 \
	0000:03:00.3 0000:03:01.0 0000:13:00.0 0001:03:00.0 0000:04:00.0 0000:04:00.1 \
	0000:08:00.0 0000:08:00.1 0000:0c:00.0 0000:0c:00.1 0000:00:02.0; do
	mkdir -p "$sysfs/bus/pci/devices/$d"
done

# The fake helper: one line per run, each argument in <>.
calls=$tmp/calls
cat >"$tmp/handoff" <<EOF
#!/bin/sh
printf '<%s>' "\$@" >>'$calls'
echo >>'$calls'
exit \${FAKE_RC:-0}
EOF
chmod 755 "$tmp/handoff"

shells=("")	# "": the #! line
for s in dash "bash --posix" "busybox sh"; do
	command -v "${s%% *}" >/dev/null && shells+=("$s")
done

# run [ENV=VALUE...] VMID PHASE: sets $rc, $out (stdout), $err (stderr), $got (the helper's
# runs: one line each; empty when not run).
run() {
	local envs=()
	while [[ ${1-} == *=* ]]; do envs+=("$1"); shift; done
	: >"$calls"
	# shellcheck disable=SC2086 # $sh: a command and its options
	env VFIOPMD_HANDOFF="$tmp/handoff" VFIOPMD_PVE_DIR="$fixtures" VFIOPMD_SYSFS="$sysfs" VFIOPMD_RUN_DIR="$tmp/run" \
		VFIOPMD_NODE=pve1 FAKE_RC=0 ${envs[@]+"${envs[@]}"} $sh "$hook" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(<"$tmp/out") err=$(<"$tmp/err") got=$(<"$calls")
}
argv() { printf '<%s>' "$@"; }

# expect NAME RC CALL NWARN [WARNING...]: after run, the exit status is RC, the helper ran
# once with exactly CALL (from argv; "" = not run), nothing went to stdout but the helper's,
# and stderr holds NWARN lines, each WARNING (fixed strings separated by '|', all on one line)
# on one of them.
expect() {
	local name=$1 want_rc=$2 want=$3 nwarn=$4 w p line ok
	shift 4
	local n=0
	[ -n "$err" ] && n=$(wc -l <<<"$err")
	local fail=
	[ "$rc" = "$want_rc" ] || fail+=" exit $rc, want $want_rc;"
	[ "$got" = "$want" ] || fail+=" helper ran as '$got', want '$want';"
	[ -z "$out" ] || fail+=" stdout '$out';"
	[ "$n" = "$nwarn" ] || fail+=" $n lines on stderr, want $nwarn;"
	for w in "$@"; do
		ok=
		while IFS= read -r line; do
			ok=1
			IFS='|' read -ra parts <<<"$w"
			for p in "${parts[@]}"; do [[ $line == *"$p"* ]] || { ok=; break; }; done
			[ -n "$ok" ] && break
		done <<<"$err"
		[ -n "$ok" ] || fail+=" no stderr line with '${w//|/' and '}';"
	done
	if [ -n "$fail" ]; then
		bad "${sh:-#!}: $name:$fail"
		[ -z "$err" ] || { mapfile -t lines <<<"$err"; printf '    stderr: %s\n' "${lines[@]}"; }
	else
		echo "ok: ${sh:-#!}: $name"
	fi
}

c100=$fixtures/qemu-server/100.conf
c101=$fixtures/qemu-server/101.conf
c110=$fixtures/qemu-server/110.conf
pcicfg=$fixtures/mapping/pci.cfg
forms=(0000:01:00.0 0000:02:00.0 0000:02:00.1 0000:0a:00.0 0000:08:00.0 0000:08:00.1
	0000:03:00.0 0000:03:00.1 0000:03:00.3 0000:06:10.2 0000:05:00.0 1234:f0:1a.3 0000:07:00.0)
slot_warning="VM 100|$c100|\"hostpci13: 0f:00,pcie=1\"|no function of 0000:0f:00"
mapped=(0000:04:00.0 0000:04:00.1 0000:0c:00.0 0000:0c:00.1 0000:00:02.0)
# A pve dir without mapping/pci.cfg.
mkdir -p "$tmp/pve-nomap/qemu-server"
cp "$fixtures"/qemu-server/*.conf "$tmp/pve-nomap/qemu-server/"

for sh in "${shells[@]}"; do
	# Every host form, options after it, uppercase, duplicates, a slot with 3 functions, a
	# slot with none, snapshot/[PENDING]/[special:cloudinit] sections and description ignored.
	run 100 pre-start
	expect "host forms: release" 0 "$(argv release "${forms[@]}")" 1 "$slot_warning"
	run 100 post-stop
	expect "host forms: claim" 0 "$(argv claim "${forms[@]}")" 1 "$slot_warning"
	for phase in post-start pre-stop bogus ""; do
		run 100 "$phase"
		expect "phase '$phase': nothing done" 0 "" 0
	done
	run
	expect "no arguments: nothing done" 0 "" 0

	# The helper's status: pre-start passes it on (Proxmox then aborts the start), post-stop 0.
	run FAKE_RC=1 100 pre-start
	expect "failed release: exit 1" 1 "$(argv release "${forms[@]}")" 1 "$slot_warning"
	run FAKE_RC=3 100 pre-start
	expect "release exiting 3: exit 3" 3 "$(argv release "${forms[@]}")" 1 "$slot_warning"
	run FAKE_RC=1 100 post-stop
	expect "failed claim: exit 0" 0 "$(argv claim "${forms[@]}")" 1 "$slot_warning"

	# Bad entries: each named in one warning, the good ones still released.
	run 101 pre-start
	expect "bad entries skipped" 0 "$(argv release 0000:01:00.0 0000:0b:00.0 0000:01:00.2)" 6 \
		"VM 101|$c101|\"hostpci0: zz:00.0,pcie=1\"|bad PCI ID \"zz:00.0\"" \
		"VM 101|$c101|\"hostpci1: 01:00.0;nonsense\"|bad PCI ID \"nonsense\"" \
		"VM 101|$c101|\"hostpci2: pcie=1,rombar=0\"|no host or mapping" \
		"VM 101|$c101|\"hostpci3: mapping=nosuch\"|no mapping nosuch in $pcicfg" \
		"VM 101|$c101|\"hostpci5: 0e:00\"|no function of 0000:0e:00" \
		"VM 101|$c101|\"hostpci6: host=01:00.1,mapping=gpu\"|both"

	# No hostpci in the current config (one in a snapshot), no config at all.
	run 102 pre-start
	expect "no hostpci: helper not run" 0 "" 0
	run 102 post-stop
	expect "no hostpci at post-stop: helper not run" 0 "" 0
	run 999 pre-start
	expect "no config: exit 0" 0 "" 1 "VM 999|$fixtures/qemu-server/999.conf"
	run 999 post-stop
	expect "no config at post-stop: exit 0" 0 "" 1 "VM 999|$fixtures/qemu-server/999.conf"
	run ../100 pre-start
	expect "a VMID that is not a number: exit 0" 0 "" 1 "VM ../100"

	# mapping=: this node's map lines only (pve1x and xpve1 are not pve1), several per node,
	# ';' paths, uppercase and a whole slot in path=, mdev=, duplicates with host IDs.
	run 110 pre-start
	expect "mappings on pve1" 0 "$(argv release "${mapped[@]}")" 1 \
		"VM 110|$c110|\"hostpci1: mapping=nic-pve2-only\"|no device for node pve1 in $pcicfg"
	run VFIOPMD_NODE=pve1.example.org 110 post-stop
	expect "mappings on pve1.example.org" 0 "$(argv claim "${mapped[@]}")" 1 \
		"VM 110|$c110|\"hostpci1: mapping=nic-pve2-only\"|no device for node pve1 in $pcicfg"
	run VFIOPMD_NODE=pve2 110 pre-start
	expect "mappings on pve2" 0 "$(argv release 0000:09:00.0 0000:0d:00.0 0000:00:02.0 0000:04:00.1)" 0
	run VFIOPMD_PVE_DIR="$tmp/pve-nomap" 110 pre-start
	expect "no pci.cfg: mappings skipped" 0 "$(argv release 0000:04:00.1)" 4 \
		"VM 110|hostpci0: mapping=gpu,pcie=1,x-vga=1\"|cannot read $tmp/pve-nomap/mapping/pci.cfg" \
		"VM 110|hostpci1: mapping=nic-pve2-only\"|cannot read" \
		"VM 110|hostpci2: mapping=vgpu,mdev=i915-GVTg_V5_4\"|cannot read" \
		"VM 110|hostpci4: mapping=gpu\"|cannot read"

	# Pending changes are applied before post-stop: what pre-start released is claimed too, once.
	rm -rf "$tmp/pve-edit" && mkdir -p "$tmp/pve-edit/qemu-server"
	printf 'hostpci0: 01:00.0\nhostpci1: 0000:02:00.1,pcie=1\n' >"$tmp/pve-edit/qemu-server/120.conf"
	run VFIOPMD_PVE_DIR="$tmp/pve-edit" 120 pre-start
	expect "edited config: release" 0 "$(argv release 0000:01:00.0 0000:02:00.1)" 0
	printf 'hostpci0: 01:00.0\n' >"$tmp/pve-edit/qemu-server/120.conf"
	run VFIOPMD_PVE_DIR="$tmp/pve-edit" 120 post-stop
	expect "edited config: claim what pre-start released" 0 "$(argv claim 0000:01:00.0 0000:02:00.1)" 0
	run VFIOPMD_PVE_DIR="$tmp/pve-edit" 120 post-stop
	expect "edited config: the record is used once" 0 "$(argv claim 0000:01:00.0)" 0
	run VFIOPMD_PVE_DIR="$tmp/pve-edit" 120 pre-start
	rm "$tmp/pve-edit/qemu-server/120.conf"
	run VFIOPMD_PVE_DIR="$tmp/pve-edit" 120 post-stop
	expect "config gone at post-stop: the record's devices claimed" 0 "$(argv claim 0000:01:00.0)" 1 \
		"VM 120|cannot read $tmp/pve-edit/qemu-server/120.conf"

	# The built-in helper path, when it does not exist (the package removed, the snippet left).
	if [ -n "$substituted" ]; then
		run VFIOPMD_HANDOFF= 101 pre-start
		expect "no helper: exit 0" 0 "" 7 "VM 101|/nonexistent/vfiopmd-handoff|release"
	fi
done
exit $failed
