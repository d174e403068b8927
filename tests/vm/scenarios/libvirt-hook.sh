#!/bin/bash
# A real libvirtd runs the qemu hooks (prepare, start, started, stopped, release) around a nested qemu that opens a vfio-pci NIC as <hostdev managed='no'>.
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
say "vfiopmd's view:"
daemon_log | grep "^$dev: " | sed 's/^/    /'
daemon_stop
"$tool" "$dev" open close >/dev/null || die "$dev cannot be opened after vfiopmd stopped"

now_ms; t=$NOW_MS
systemctl stop "$LV_UNIT"
now_ms; say "libvirtd stopped in $((NOW_MS - t)) ms"
say "timings: start→held ${t_hold:-?} ms, start→running $t_started ms, destroy $t_destroy ms"
say "PASS"
