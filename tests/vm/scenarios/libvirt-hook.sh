#!/bin/bash
# A real libvirtd runs the qemu hooks (prepare, start, started, stopped, release) around a nested qemu that opens a vfio-pci NIC as <hostdev managed='no'>, then a NIC on no driver as <hostdev managed='yes'> under a class policy (reserved, left released), then the hook waits for a restarting daemon.
#
# usage: libvirt-hook [DEVICE [MIB]]   (default 0000:00:02.0, a NIC guest-run bound to vfio-pci;
#                                      the nested guest's memory, default 64)
#
# What it does: starts libvirtd (a transient unit; the image enables no libvirt unit), with the
# hooks in /etc/libvirt/hooks/qemu.d placed before it starts (libvirtd looks at the hooks
# directory only at startup): the probe "vfiopmd-test", which appends the time, its argv and the
# PCI host devices of the domain XML on its stdin to $LOG, and beside it the real hook
# "vfiopmd" when the payload installed one (make install puts it there; libvirt runs every
# executable in qemu.d, in name order). Then it defines and starts a tiny domain holding DEVICE,
# checks that the nested qemu holds /dev/vfio/GROUP, destroys it, and checks the five hook calls:
#   DOM prepare begin -   DOM start begin -   DOM started begin -   DOM stopped end -
#   DOM release end -
# each with the full domain XML (and DEVICE in it) on stdin; then that DEVICE is free again.
# vfiopmd runs on the system bus and holds DEVICE (mode wakeup, armed) before the domain starts:
# the real hook must release it at "prepare begin" (else qemu could not open the group: the
# domain would not start), the daemon must leave it alone while qemu holds it, and the hook must
# claim it back at "release end" (armed again).
#
# What it takes (Debian 12: libvirt 9.0.0, whose libvirtd is monolithic, no virtqemud; qemu 7.2;
# qemu TCG inside the rig's TCG guest). Found by running it, each item because it failed without:
# - Packages (tests/vm/lib.sh): libvirt-daemon (libvirtd; ships no systemd unit),
#   libvirt-daemon-driver-qemu, libvirt-clients (virsh), qemu-system-x86 (brings seabios and
#   ipxe-qemu), no Recommends. Not libvirt-daemon-system: it brings polkitd, iptables, the
#   network/nwfilter configs and enabled units, none of which this needs.
# - The user and group "libvirt-qemu" (libvirt-daemon-system's postinst makes them): without
#   them the qemu driver does not initialize ("Failed to parse user 'libvirt-qemu'"), even with
#   user = "root" in qemu.conf (the built-in default is resolved first). With them qemu runs as
#   libvirt-qemu, as on a stock Debian host.
# - qemu.conf: stdio_handler = "file". The default "logd" needs virtlogd ("Failed to connect
#   socket to '/run/libvirt/virtlogd-sock'"); starting virtlogd would do as well.
# Everything else is libvirt's default and works as it is, nothing to switch off:
# - namespaces: qemu gets a private mount namespace with its own /dev; the DAC driver chowns
#   /dev/vfio/GROUP to libvirt-qemu only in there: in the host's /dev it stays root:root 0600
#   throughout (printed below).
# - cgroups: no systemd-machined in the image (systemd-container), so libvirt makes the cgroups
#   itself: /machine/qemu-1-DOM.libvirt-qemu/emulator.
# - seccomp: -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny.
# - security drivers: "none" + "dac" (AppArmor is in the kernel, but with no libvirt profile
#   loaded libvirt does not use it); security_driver needs no setting.
# - locked memory: no <memtune>/<memoryBacking><locked/> and no limits.conf: for a VFIO hostdev
#   libvirt sets qemu's RLIMIT_MEMLOCK to guest RAM + 1 GiB itself, and the type1 IOMMU then
#   pins all guest RAM (VmLck = guest RAM).
# - libvirtd.conf: none; virsh as root connects with the default auth (no polkitd installed).
#   libvirtd's warnings here are harmless: no dnsmasq (network driver), no name resolution.
# - The domain: type='qemu' (TCG), q35, 64 MiB (32 works too), no disk, no NIC but the
#   hostdev, USB controller and balloon off; SeaBIOS finds nothing to boot and idles.
# Time (2-core machine, 6.1 and 6.12 guests alike, ranges over runs with and without other load):
# libvirtd ready 0.6-0.8 s; first qemu capability probe (virsh domcapabilities) 3.5-4.8 s;
# virsh start -> qemu holds /dev/vfio/GROUP 3.1-5.8 s (most of it qemu's own startup after the
# "start" hook), -> running, virsh returns 4.8-7.9 s; virsh destroy 1.4-1.7 s; the scenario
# ~17-20 s after the boot. qemu's RSS ~100 MiB at 64 MiB; the rig's 1024 MiB guest keeps
# ~650 MiB available. `virsh capabilities` (host CPU probe) costs ~10 s: not used.
set -u
. "$(dirname "$0")/lib/common.sh"
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool

dev=${1:-0000:00:02.0}
mem=${2:-64}
DOM=vfiopm-hook-test
HOOKS=/etc/libvirt/hooks/qemu.d
WORK=/run/vfiopmd-test
LOG=$WORK/hook.log
LV_UNIT=vfiopm-libvirtd
virsh() { command virsh -q -c qemu:///system "$@"; }

diag() {
	say "libvirtd journal:"
	journalctl -q -b -u "$LV_UNIT" -o short-monotonic --no-pager | tail -n 60 | sed 's/^/    /'
	[ -r "/var/log/libvirt/qemu/$DOM.log" ] && { say "qemu log:"; sed 's/^/    /' "/var/log/libvirt/qemu/$DOM.log"; }
	[ -r "$LOG" ] && { say "hook log:"; sed 's/^/    /' "$LOG"; }
}
die() { diag; fail "$@"; }
# holds PID: PID has /dev/vfio/$group open
holds() {
	local fd
	for fd in /proc/"$1"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "/dev/vfio/$group" ] && return 0
	done
	return 1
}

dd=$(dev_dir "$dev") || fail "no device $dev"
[ "$(basename "$(readlink "$dd/driver")")" = vfio-pci ] || fail "$dev is not bound to vfio-pci"
group=$(basename "$(readlink "$dd/iommu_group")")
[ "$(ls "$dd/iommu_group/devices" | wc -l)" -eq 1 ] || fail "$dev is not alone in iommu group $group"
say "$dev: iommu group $group, runtime_status $(runtime_status "$dev")"
IFS=: read -r pd pb ps pf <<<"${dev//./:}"

# -- the hooks, before libvirtd starts
mkdir -p "$WORK" /etc/libvirt "$HOOKS"
: >"$LOG"
cat >"$HOOKS/vfiopmd-test" <<EOF
#!/bin/sh
# vfiopmd-test: the rig's probe. One line a call: epoch ms, argv, the domain's PCI host devices.
devs=\$(sed -n '/<hostdev /,/<\/hostdev>/p' | sed -n '/<source/,/<\/source>/p' |
	sed -n "s/.*<address domain='0x\([0-9a-f]*\)' bus='0x\([0-9a-f]*\)' slot='0x\([0-9a-f]*\)' function='0x\([0-9a-f]*\)'.*/\1:\2:\3.\4/p" |
	tr '\n' ' ')
echo "\$(date +%s%3N) \$* | \${devs% }" >>$LOG
EOF
chmod 755 "$HOOKS/vfiopmd-test"
[ -x "$HOOKS/vfiopmd" ] || fail "the payload did not install $HOOKS/vfiopmd"
say "hooks: $HOOKS/vfiopmd (make install's) and the probe"

# -- vfiopmd holds the device
systemctl reload dbus || fail "reloading dbus"      # the bus policy came with the payload
policy_write 50-hook.json "{ \"match\": { \"device\": \"$dev\" }, \"mode\": \"wakeup\", \"rearm_delay_ms\": 0 }"
daemon_start --bus system
wait_state "$dev" armed || fail "vfiopmd did not arm $dev"
wait_runtime "$dev" suspended || fail "$dev not suspended while armed"
pass "vfiopmd holds $dev, armed"

# -- libvirtd: what libvirt-daemon-system would set up, and qemu.conf
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
	useradd --system -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
echo 'stdio_handler = "file"' >/etc/libvirt/qemu.conf
now_ms; t=$NOW_MS
systemd-run --quiet --unit "$LV_UNIT" -p Type=notify libvirtd || die "libvirtd did not start"
now_ms; say "libvirtd ready after $((NOW_MS - t)) ms"
now_ms; t=$NOW_MS
virsh domcapabilities --virttype qemu >/dev/null || die "virsh domcapabilities"
now_ms; say "qemu capabilities probed in $((NOW_MS - t)) ms"

cat >"$WORK/$DOM.xml" <<EOF
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>$mem</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <hostdev mode='subsystem' type='pci' managed='no'>
      <source><address domain='0x$pd' bus='0x$pb' slot='0x$ps' function='0x$pf'/></source>
    </hostdev>
  </devices>
</domain>
EOF
virsh define "$WORK/$DOM.xml" >/dev/null || die "virsh define"
[ -s "$LOG" ] && die "a hook ran at define"

# -- start: virsh in the background, meanwhile poll for the qemu that holds the group
now_ms; t0=$NOW_MS
virsh start "$DOM" >"$WORK/start.out" 2>&1 &
vpid=$!
pid="" t_hold=""
while :; do
	[ -z "$pid" ] && [ -r "/run/libvirt/qemu/$DOM.pid" ] && read -r pid <"/run/libvirt/qemu/$DOM.pid"
	if [ -n "$pid" ] && holds "$pid"; then now_ms; t_hold=$((NOW_MS - t0)); break; fi
	kill -0 "$vpid" 2>/dev/null || break
	now_ms; [ $((NOW_MS - t0)) -ge 120000 ] && break
	sleep 0.05
done
wait "$vpid" || { cat "$WORK/start.out"; die "virsh start failed"; }
now_ms; t_started=$((NOW_MS - t0))
[ -n "$pid" ] || read -r pid <"/run/libvirt/qemu/$DOM.pid"
[ -n "$t_hold" ] || holds "$pid" || die "qemu (pid $pid) does not hold /dev/vfio/$group"
[ "$(virsh domstate "$DOM")" = running ] || die "domain is $(virsh domstate "$DOM"), not running"
pass "virsh start: qemu (pid $pid) held /dev/vfio/$group after ${t_hold:-?} ms, running after $t_started ms"

# What the nested qemu runs with (the defaults of libvirt 9.0 on a systemd host without machined).
st=/proc/$pid/status
say "qemu: uid $(awk '/^Uid:/ { print $2 }' "$st") ($(stat -c %U "/proc/$pid")), /dev/vfio/$group $(stat -c '%U:%G %a' "/dev/vfio/$group" 2>/dev/null || echo "(not in this namespace)") in the host /dev," \
	"mount namespace $([ "$(readlink "/proc/$pid/ns/mnt")" = "$(readlink /proc/1/ns/mnt)" ] && echo shared || echo private)," \
	"seccomp $(awk '/^Seccomp:/ { print $2 }' "$st"), $(awk '/^(VmRSS|VmLck|VmPin):/ { printf "%s %s %s, ", $1, $2, $3 }' "$st")" \
	"RLIMIT_MEMLOCK $(awk '/^Max locked memory/ { print $4 }' "/proc/$pid/limits"), cgroup $(cut -d: -f3 "/proc/$pid/cgroup")"
say "security labels: $(virsh dumpxml "$DOM" | grep -o "<seclabel [^>]*>" | tr '\n' ' ')" \
	"guest MemAvailable $(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo) MiB"
say "$dev runtime_status while held: $(runtime_status "$dev")"
[ "$(device_state "$dev")" = released ] || die "$dev is $(device_state "$dev") in vfiopmd while the domain runs, not released"
[ "$(log_count "^$dev: armed → released")" = 1 ] || die "vfiopmd did not log the release of $dev"
pass "the hook released $dev at prepare begin: vfiopmd has it released while qemu holds it"
say "qemu command line: $(tr '\0' ' ' <"/proc/$pid/cmdline")"

# -- destroy
now_ms; t1=$NOW_MS
virsh destroy "$DOM" >/dev/null || die "virsh destroy"
now_ms; t_destroy=$((NOW_MS - t1))
kill -0 "$pid" 2>/dev/null && die "qemu (pid $pid) still runs after virsh destroy"
pass "virsh destroy: done after $t_destroy ms, qemu gone"
virsh undefine "$DOM" >/dev/null || die "virsh undefine"

# -- the hook calls: these five, in this order, the device in each XML
expect="$DOM prepare begin - | $dev
$DOM start begin - | $dev
$DOM started begin - | $dev
$DOM stopped end - | $dev
$DOM release end - | $dev"
got=$(cut -d' ' -f2- "$LOG")
[ "$got" = "$expect" ] || die "hook calls differ from the expected ones:
$expect"
while read -r ms rest; do
	say "    +$((ms - t0)) ms: $rest"
done <"$LOG"
pass "hooks: prepare, start, started, stopped, release, each with $dev in its XML"

# -- claimed back at release end
wait_state "$dev" armed || die "$dev not armed again after the domain went"
wait_runtime "$dev" suspended || die "$dev not suspended again after the domain went"
say "/dev/vfio/$group after destroy: $(stat -c '%U:%G %a' "/dev/vfio/$group")"
pass "the hook claimed $dev back at release end: armed, runtime_status $(runtime_status "$dev")"

# -- managed='yes' (virsh's, virt-manager's and Nova's default): the NIC starts on no driver, a
# class policy would hold it the moment it is on vfio-pci. libvirt runs "prepare begin" before it
# binds the NIC to vfio-pci: the hook's Release reserves it, vfiopmd leaves it released when it
# appears on vfio-pci, qemu opens it. (Before reservations, Release answered NoSuchDevice, vfiopmd
# armed the NIC as soon as libvirt bound it, and qemu failed: "failed to open /dev/vfio/N: Device
# or resource busy".)
mdev=$(vfio_pci_devices | grep -vx "$dev" | head -n 1)
[ -n "$mdev" ] || die "no second NIC on vfio-pci (run with --nics 2)"
mdd=$(dev_dir "$mdev") || die "no device $mdev"
echo >"$mdd/driver_override"
echo "$mdev" >/sys/bus/pci/drivers/vfio-pci/unbind || die "unbinding $mdev from vfio-pci"
[ -e "$mdd/driver" ] && die "$mdev still has a driver: $(readlink "$mdd/driver")"
mgroup=$(basename "$(readlink "$mdd/iommu_group")")
policy_write 60-class.json '{ "match": { "class": "0200" }, "mode": "wakeup", "rearm_delay_ms": 0 }'
vfiopmctl reload || die "vfiopmctl reload"
wait_state "$dev" armed || die "$dev not armed after the reload"
[ -z "$(device_state "$mdev")" ] || die "vfiopmd lists $mdev, which is on no driver: $(device_state "$mdev")"
say "$mdev: on no driver, iommu group $mgroup; a class 0200 policy holds every NIC on vfio-pci"
IFS=: read -r md mb ms mf <<<"${mdev//./:}"
sed -e "s/<name>$DOM</<name>$DOM-managed</" -e "s/managed='no'/managed='yes'/" \
	-e "s/bus='0x$pb' slot='0x$ps' function='0x$pf'/bus='0x$mb' slot='0x$ms' function='0x$mf'/" \
	"$WORK/$DOM.xml" >"$WORK/$DOM-managed.xml"
grep -q "managed='yes'" "$WORK/$DOM-managed.xml" && grep -q "slot='0x$ms'" "$WORK/$DOM-managed.xml" ||
	die "the managed domain's XML: $(cat "$WORK/$DOM-managed.xml")"
virsh define "$WORK/$DOM-managed.xml" >/dev/null || die "virsh define (managed)"
: >"$LOG"
now_ms; t0=$NOW_MS
virsh start "$DOM-managed" >"$WORK/start.out" 2>&1 || { cat "$WORK/start.out"; die "virsh start of the managed='yes' domain failed"; }
now_ms; t_managed=$((NOW_MS - t0))
read -r pid <"/run/libvirt/qemu/$DOM-managed.pid"
group=$mgroup
holds "$pid" || die "qemu (pid $pid) does not hold /dev/vfio/$mgroup"
[ "$(virsh domstate "$DOM-managed")" = running ] || die "the managed domain is $(virsh domstate "$DOM-managed")"
[ "$(basename "$(readlink "$mdd/driver")")" = vfio-pci ] || die "libvirt did not bind $mdev to vfio-pci"
pass "managed='yes': the domain runs after $t_managed ms, qemu (pid $pid) holds /dev/vfio/$mgroup"
j=$(vfiopmctl --json show "$mdev") || die "vfiopmctl show $mdev"
[ "$(jq -r .state <<<"$j")" = released ] && [ "$(jq -r .release_reason <<<"$j")" = reservation ] &&
	[ "$(jq -r .driver <<<"$j")" = vfio-pci ] ||
	die "$mdev while the managed domain runs: $(jq -c '{state, release_reason, driver}' <<<"$j")"
[ "$(log_count "^$mdev: Reserved: not on a VFIO driver")" = 1 ] || die "vfiopmd did not log the reservation of $mdev"
pass "vfiopmd reserved $mdev at prepare begin and left it released on vfio-pci: $(jq -c '{state, release_reason, driver}' <<<"$j")"
virsh destroy "$DOM-managed" >/dev/null || die "virsh destroy (managed)"
virsh undefine "$DOM-managed" >/dev/null || die "virsh undefine (managed)"
# libvirt gives the NIC back to the driver it had (none), then runs "release end": Claim drops
# the reservation
[ -e "$mdd/driver" ] && die "$mdev has a driver after destroy: $(readlink "$mdd/driver")"
now_ms; end=$((NOW_MS + 5000))
while [ -n "$(device_state "$mdev")" ]; do
	now_ms; [ "$NOW_MS" -lt "$end" ] || die "vfiopmd still lists $mdev after the domain went: $(device_state "$mdev")"
	sleep 0.05
done
[ -z "$(ls -A /run/vfiopmd/released)" ] || die "releases left in /run/vfiopmd/released: $(ls -A /run/vfiopmd/released)"
systemctl is-active -q "$VFIOPMD_UNIT" && [ "$(device_state "$dev")" = armed ] ||
	die "vfiopmd after the managed domain: $(systemctl is-active "$VFIOPMD_UNIT"), $dev $(device_state "$dev")"
pass "after destroy: $mdev back on no driver, its reservation dropped at release end; vfiopmd active, $dev armed"
while read -r ms rest; do
	say "    +$((ms - t0)) ms: $rest"
done <"$LOG"

# -- the hook while systemd restarts the daemon: it waits for it (handoff.h) instead of letting the
# domain start against a daemon that would hold the device when it comes back
daemon_start -p Restart=on-failure -p RestartSec=2 --bus system
wait_state "$dev" armed || die "$dev not armed after the daemon's restart"
kill -KILL "$(daemon_pid)"
# systemd has seen it die: the unit waits RestartSec= in "activating (auto-restart)"
now_ms; end=$((NOW_MS + 5000))
until [ "$(unit_prop ActiveState)" = activating ]; do
	now_ms; [ "$NOW_MS" -lt "$end" ] || die "the unit is $(unit_prop ActiveState)/$(unit_prop SubState) after SIGKILL"
	sleep 0.02
done
now_ms; t0=$NOW_MS
VFIOPMD_UNIT=$VFIOPMD_UNIT.service /usr/libexec/vfiopmd/vfiopmd-libvirt-hook "$DOM" prepare begin - \
	<"$WORK/$DOM.xml" >"$WORK/hook.out" 2>&1
rc=$?
now_ms; took=$((NOW_MS - t0))
sed 's/^/    /' "$WORK/hook.out"
[ "$rc" = 0 ] || die "the hook exited $rc"
grep -q "is activating, waiting for it" "$WORK/hook.out" && grep -q "released $dev" "$WORK/hook.out" ||
	die "the hook did not wait for the restarting daemon and release $dev"
[ "$(device_state "$dev")" = released ] || die "$dev is $(device_state "$dev") after the hook, not released"
pass "hook during a restart (SIGKILL, RestartSec=2): waited, released $dev after $took ms"
/usr/libexec/vfiopmd/vfiopmd-libvirt-hook "$DOM" release end - <"$WORK/$DOM.xml" 2>/dev/null
wait_state "$dev" armed || die "$dev not claimed back"
# systemctl restart (an upgrade's): whether the Release reaches the old daemon, waits through the
# stop-to-start gap or reaches the new one, the device ends up released and stays so
systemctl restart --no-block "$VFIOPMD_UNIT"
VFIOPMD_UNIT=$VFIOPMD_UNIT.service /usr/libexec/vfiopmd/vfiopmd-libvirt-hook "$DOM" prepare begin - \
	<"$WORK/$DOM.xml" >"$WORK/hook.out" 2>&1 || die "the hook during systemctl restart exited $?: $(cat "$WORK/hook.out")"
sed 's/^/    /' "$WORK/hook.out"
grep -q "released $dev" "$WORK/hook.out" || die "the hook during systemctl restart did not release $dev"
now_ms; end=$((NOW_MS + 20000))
until [ "$(unit_prop ActiveState)" = active ] && [ -z "$(unit_prop Job)" ]; do
	now_ms; [ "$NOW_MS" -lt "$end" ] || die "$VFIOPMD_UNIT not back after the restart: $(unit_prop ActiveState)"
	sleep 0.1
done
[ "$(device_state "$dev")" = released ] || die "$dev is $(device_state "$dev") after the restart, not released"
"$tool" "$dev" open close >/dev/null || die "$dev cannot be opened after the hook and the restart"
pass "hook during systemctl restart: $dev released, still released and free once the daemon is back"
/usr/libexec/vfiopmd/vfiopmd-libvirt-hook "$DOM" release end - <"$WORK/$DOM.xml" 2>/dev/null
wait_state "$dev" armed || die "$dev not claimed back after the restart"

say "vfiopmd's view:"
daemon_log | grep -E "^($dev|$mdev): " | sed 's/^/    /'
daemon_stop
"$tool" "$dev" open close >/dev/null || die "$dev cannot be opened after vfiopmd stopped"

now_ms; t=$NOW_MS
systemctl stop "$LV_UNIT"
now_ms; say "libvirtd stopped in $((NOW_MS - t)) ms"
say "timings: start→held ${t_hold:-?} ms, start→running $t_started ms, destroy $t_destroy ms"
say "PASS"
