#!/bin/bash
# The Debian packages (run --debs DIR): dpkg -i vfio-pm-sim-dkms (DKMS builds vfio_pm_sim for the running kernel, offline) and vfiopmd (service enabled, started, owns org.vfiopm1), a policy in /etc/vfiopmd/policy.d arms a NIC and vfio-pm-sim.0 after systemctl reload, vfiopmctl set writes 90-dbus-*.json; dpkg -r vfiopmd stops the service and leaves a libvirt hook that lets domains start; dpkg --purge frees the devices, removes the module and leaves no file behind.
# Needs 1 e1000e NIC or more; run with tests/vm/run --debs DIR (tools/build-debs DIR): the tree is
# not installed, only its test helpers (vfio-pm-tool). Prints how long dpkg -i (DKMS build under
# TCG included) and dpkg --purge take.
set -u
. "$(dirname "$0")/lib/common.sh"
VFIOPM_DAEMON=unit VFIOPMD_UNIT=vfiopmd       # the packaged unit (daemon_pid, unit_prop)
tool=$VFIOPM_TESTS_DIR/vfio-pm-tool
export DEBIAN_FRONTEND=noninteractive
ETC=/etc/vfiopmd/policy.d
krel=$(uname -r)

[ -n "${VFIOPM_DEBS_DIR:-}" ] || fail "no packages: run this scenario with tests/vm/run --debs DIR"
dkms_deb=$(echo "$VFIOPM_DEBS_DIR"/vfio-pm-sim-dkms_*.deb)
daemon_deb=$(echo "$VFIOPM_DEBS_DIR"/vfiopmd_*.deb)
[ -f "$dkms_deb" ] && [ -f "$daemon_deb" ] || fail "expected one vfio-pm-sim-dkms_*.deb and one vfiopmd_*.deb in $VFIOPM_DEBS_DIR: $(ls "$VFIOPM_DEBS_DIR")"
nic=$(vfio_pci_devices | sed -n 1p)
[ -n "$nic" ] || fail "no NIC on vfio-pci"

# -- before: neither package, nor anything of the tree (guest-run installed only the test helpers)
for p in vfiopmd vfio-pm-sim-dkms; do
	dpkg-query -W "$p" >/dev/null 2>&1 && fail "$p is installed before the test"
done
for f in /usr/sbin/vfiopmd /usr/bin/vfiopmctl /lib/systemd/system/vfiopmd.service /usr/share/dbus-1/system.d/org.vfiopm1.conf; do
	[ -e "$f" ] && fail "$f exists before the packages are installed (the tree was installed?)"
done
modinfo vfio_pm_sim >/dev/null 2>&1 && fail "vfio_pm_sim is already installed for $krel: $(modinfo -n vfio_pm_sim)"
say "DKMS: $(dkms --version); headers for: $(ls -d /lib/modules/*/build | cut -d/ -f4 | tr '\n' ' ')"

# Every path under these, before the install and after the purge: the purge must leave nothing
# new. Left out: dpkg's own database, and the files that come and go with running systemd, udev
# and the journal, and with this rig (payload, runner).
snapshot() {
	find /etc /usr /var/lib /var/cache /run /opt /srv -xdev \
		\( -path /var/lib/dpkg -o -path /run/systemd -o -path /run/udev -o -path /run/user \
		-o -path /run/log -o -path /run/mount -o -path '/run/vfiopm-*' -o -path /run/credentials \) -prune \
		-o -print 2>/dev/null | sort
}
snapshot >/var/tmp/debs-before.txt
# timed VAR CMD...: runs CMD, its output indented and timestamped line by line; VAR = its
# duration in ms; returns CMD's exit status
timed() {
	local var=$1 t0 rc
	shift
	now_ms; t0=$NOW_MS
	"$@" 2>&1 | while IFS= read -r l; do say "    $l"; done
	rc=${PIPESTATUS[0]}
	now_ms; printf -v "$var" %s $((NOW_MS - t0))
	return "$rc"
}
secs() { printf '%d.%d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }
t_dkms=0 t_daemon=0 t_remove=0 t_purge=0

# -- install: the DKMS package first (its postinst builds and installs the module), then the daemon
timed t_dkms dpkg -i "$dkms_deb" || fail "dpkg -i $(basename "$dkms_deb") exited $?"
say "dpkg -i $(basename "$dkms_deb"): $(secs "$t_dkms") (DKMS build and install under TCG)"
# make.log: its second line is the date make started, its mtime when it ended
for l in /var/lib/dkms/vfio-pm-sim/*/*/*/log/make.log; do
	[ -f "$l" ] || continue
	say "  $(echo "$l" | cut -d/ -f7): make $(( $(stat -c %Y "$l") - $(date -d "$(sed -n 2p "$l")" +%s) )) s, $(grep -c 'warning:' "$l") compiler warnings ($l)"
done

timed t_daemon dpkg -i "$daemon_deb" || fail "dpkg -i $(basename "$daemon_deb") exited $?"
say "dpkg -i $(basename "$daemon_deb"): $(secs "$t_daemon") (service enabled and started)"
for p in vfio-pm-sim-dkms vfiopmd; do
	s=$(dpkg-query -W -f='${Status} ${Version}' "$p")
	[[ $s == "install ok installed "* ]] || fail "$p: dpkg status '$s'"
done
[ -z "$(dpkg --audit)" ] || fail "dpkg --audit: $(dpkg --audit)"
pass "both packages installed: $(dpkg-query -W -f='${Package} ${Version}, ' vfio-pm-sim-dkms vfiopmd)dpkg --audit clean"

# -- DKMS: built and installed for the running kernel, in updates/dkms
st=$(dkms status vfio-pm-sim)
say "dkms status: $(echo "$st" | tr '\n' ';')"
grep -q "^vfio-pm-sim/[^,]*, $krel, [^:]*: installed" <<<"$st" || fail "dkms status does not say installed for $krel"
ko=$(modinfo -n vfio_pm_sim 2>&1) || fail "modinfo vfio_pm_sim: $ko"
[[ $ko == /lib/modules/$krel/updates/dkms/vfio_pm_sim.ko* || $ko == /usr/lib/modules/$krel/updates/dkms/vfio_pm_sim.ko* ]] ||
	fail "modinfo finds vfio_pm_sim at $ko, not in /lib/modules/$krel/updates/dkms"
[ "$(modinfo -F vermagic vfio_pm_sim | cut -d' ' -f1)" = "$krel" ] || fail "vermagic $(modinfo -F vermagic vfio_pm_sim), not $krel"
pass "DKMS built and installed vfio_pm_sim for $krel: $ko"
modprobe vfio_pm_sim devices=2 || fail "modprobe vfio_pm_sim devices=2"
udevadm settle
[ -e /sys/bus/platform/devices/vfio-pm-sim.1 ] || fail "no vfio-pm-sim.1 after modprobe"
pass "modprobe vfio_pm_sim devices=2: $(grep '^vfio_pm_sim ' /proc/modules | cut -d' ' -f1-3)"

# -- the service: enabled and started by the package's postinst, owning org.vfiopm1 (the postinst
# had the bus reload its policy: no systemctl reload dbus here)
[ "$(systemctl is-enabled vfiopmd)" = enabled ] || fail "vfiopmd.service is '$(systemctl is-enabled vfiopmd)', not enabled"
[ "$(systemctl is-active vfiopmd)" = active ] || fail "vfiopmd.service is '$(systemctl is-active vfiopmd)': $(systemctl status --no-pager vfiopmd 2>&1 | tail -n 20)"
pid=$(daemon_pid)
owner=$(busctl --system status org.vfiopm1 2>/dev/null | sed -n 's/^PID=//p')
[ "$owner" = "$pid" ] || fail "org.vfiopm1 owned by pid '${owner}', vfiopmd.service's main pid is $pid"
out=$(vfiopmctl status 2>&1) || fail "vfiopmctl status: $out"
echo "$out" | sed 's/^/    /'
pass "vfiopmd.service enabled and active (pid $pid), owns org.vfiopm1, vfiopmctl status works"
# the metrics timer and its service come with the package, neither enabled nor started
for u in vfiopmd-metrics.timer vfiopmd-metrics.service; do
	[ -f "/lib/systemd/system/$u" ] || fail "the package has no /lib/systemd/system/$u"
	[ "$(systemctl is-active "$u")" = inactive ] || fail "$u is $(systemctl is-active "$u") after the install"
done
[ "$(systemctl is-enabled vfiopmd-metrics.timer)" = disabled ] ||
	fail "vfiopmd-metrics.timer is $(systemctl is-enabled vfiopmd-metrics.timer) after the install, not disabled"
pass "vfiopmd-metrics.timer and .service installed, inactive, the timer disabled"

wait_state vfio-pm-sim.0 kernel || fail "vfio-pm-sim.0 (loaded after the daemon started) not seen, or not left to the kernel by the shipped policy"
wait_state "$nic" kernel || fail "$nic not left to the kernel by the shipped policy"

# -- a policy in /etc/vfiopmd/policy.d, taken by systemctl reload
jq -n --arg nic "$nic" '[
  { match: { device: $nic }, mode: "wakeup", rearm_delay_ms: 0 },
  { match: { device: "vfio-pm-sim.0" }, mode: "wakeup", rearm_delay_ms: 0 }
]' >"$ETC/50-debs.json" || fail "writing $ETC/50-debs.json"
systemctl reload vfiopmd || fail "systemctl reload vfiopmd"
for d in "$nic" vfio-pm-sim.0; do
	wait_state "$d" armed || fail "$d not armed after systemctl reload"
	wait_runtime "$d" suspended || fail "$d armed but not suspended"
	"$tool" "$d" open=EBUSY >/dev/null || fail "$d armed but not held by the daemon"
done
[ "$(daemon_pid)" = "$pid" ] || fail "reload changed the main pid"
pass "$ETC/50-debs.json + systemctl reload: $nic and vfio-pm-sim.0 armed (held, suspended), same pid"

# -- vfiopmctl set: persistent policy written by the daemon into /etc/vfiopmd/policy.d
vfiopmctl set vfio-pm-sim.1 mode=wakeup rearm_delay_ms=0 || fail "vfiopmctl set vfio-pm-sim.1 mode=wakeup"
[ -f "$ETC/90-dbus-vfio-pm-sim.1.json" ] || fail "vfiopmctl set wrote no $ETC/90-dbus-vfio-pm-sim.1.json: $(ls -A "$ETC")"
wait_state vfio-pm-sim.1 armed || fail "vfio-pm-sim.1 not armed after vfiopmctl set"
pass "vfiopmctl set vfio-pm-sim.1 mode=wakeup: $ETC/90-dbus-vfio-pm-sim.1.json ($(jq -c . "$ETC/90-dbus-vfio-pm-sim.1.json")), armed"

# -- purge. The administrator's own policy file goes first (a purge leaves such files alone, by
# design: README.Debian); the daemon's 90-dbus-*.json stays for the purge to remove.
rm "$ETC/50-debs.json"
dpkg -L vfiopmd vfio-pm-sim-dkms | sort -u >/var/tmp/debs-files.txt
say "$(wc -l </var/tmp/debs-files.txt) paths in the packages; purging"
modules=$(ls /lib/modules/*/updates/dkms/vfio_pm_sim.ko* 2>/dev/null | tr '\n' ' ')
say "DKMS built modules: $modules"

# -- remove (not purge) the daemon first: its conffiles stay, the libvirt hook among them. libvirt
# runs every qemu.d hook for every domain and fails a start on a failing "prepare begin": the hook
# left without its helper must do nothing and succeed. The purge below then takes the rest.
timed t_remove dpkg -r vfiopmd || fail "dpkg -r vfiopmd exited $?"
s=$(dpkg-query -W -f='${Status}' vfiopmd)
[ "$s" = "deinstall ok config-files" ] || fail "vfiopmd: dpkg status '$s' after dpkg -r"
hook=/etc/libvirt/hooks/qemu.d/vfiopmd
[ -x "$hook" ] || fail "$hook gone after dpkg -r (a conffile: it should stay until the purge)"
[ -e /usr/libexec/vfiopmd/vfiopmd-libvirt-hook ] && fail "the hook's helper is still there after dpkg -r"
xml='<domain type="kvm"><name>g</name><devices><hostdev mode="subsystem" type="pci" managed="yes"><source><address domain="0x0000" bus="0x00" slot="0x02" function="0x0"/></source></hostdev></devices></domain>'
out=$(printf '%s\n' "$xml" | "$hook" g prepare begin - 2>&1)
rc=$?
[ $rc -eq 0 ] || fail "$hook g prepare begin after dpkg -r: exit $rc ($out): libvirt would start no domain"
[ -z "$out" ] || fail "$hook g prepare begin after dpkg -r printed: $out"
pass "dpkg -r vfiopmd ($(secs "$t_remove")): conffiles kept, the libvirt hook left behind exits 0 and says nothing"

timed t_purge dpkg --purge vfiopmd vfio-pm-sim-dkms || fail "dpkg --purge exited $?"
say "dpkg --purge vfiopmd vfio-pm-sim-dkms: $(secs "$t_purge")"

# the service: stopped cleanly and gone; the bus name released
for p in vfiopmd vfio-pm-sim-dkms; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) && [ "$s" != "unknown ok not-installed" ] &&
		fail "$p: dpkg status '$s' after the purge"
done
kill -0 "$pid" 2>/dev/null && fail "vfiopmd (pid $pid) still runs after the purge"
[ "$(systemctl is-active vfiopmd)" != active ] || fail "vfiopmd.service still active"
[ "$(unit_prop LoadState)" = not-found ] || fail "vfiopmd.service LoadState=$(unit_prop LoadState) after the purge (no daemon-reload?)"
busctl --system status org.vfiopm1 >/dev/null 2>&1 && fail "org.vfiopm1 still owned"
j=$(daemon_log)
grep -qE "Main process exited, code=(killed|dumped)|Failed with result|watchdog" <<<"$j" &&
	fail "vfiopmd.service did not stop cleanly: $(grep -E 'exited|Failed|watchdog' <<<"$j")"
denied=$(sandbox_denials)
[ -z "$denied" ] || fail "denied under the unit's sandbox: $denied"
pass "vfiopmd stopped (pid $pid gone, unit not-found, org.vfiopm1 released, a clean stop in the journal)"

# the devices: free, another process opens each at once
for d in "$nic" vfio-pm-sim.0 vfio-pm-sim.1; do
	"$tool" "$d" open close >/dev/null || fail "$d still held after the purge"
done
pass "$nic, vfio-pm-sim.0 and vfio-pm-sim.1 opened by another process after the purge"

# the module: its files gone for every kernel (dkms remove --all); still loaded, dkms remove does
# not unload it: nothing holds it, rmmod works
left=$(ls /lib/modules/*/updates/dkms/vfio_pm_sim.ko* 2>/dev/null)
[ -z "$left" ] || fail "module files left: $left"
modinfo vfio_pm_sim >/dev/null 2>&1 && fail "modinfo still finds vfio_pm_sim: $(modinfo -n vfio_pm_sim)"
[ -z "$(dkms status vfio-pm-sim 2>/dev/null)" ] || fail "dkms status still lists: $(dkms status vfio-pm-sim)"
if grep -q '^vfio_pm_sim ' /proc/modules; then
	rmmod vfio_pm_sim || fail "rmmod vfio_pm_sim after the purge: still in use ($(grep '^vfio_pm_sim ' /proc/modules))"
	say "vfio_pm_sim stayed loaded through the purge (dkms remove only deletes files); rmmod: done"
fi
pass "vfio_pm_sim: ${modules}removed, dkms status empty, modinfo finds nothing, module unloaded"

# the files: nothing of dpkg -L left but shared directories, nothing new anywhere
left=$(while read -r f; do [ -e "$f" ] && [ ! -d "$f" ] && echo "$f"; done </var/tmp/debs-files.txt)
[ -z "$left" ] || fail "files of the packages left after the purge: $left"
for f in /etc/vfiopmd /run/vfiopmd /usr/src/vfio-pm-sim-* /var/lib/dkms/vfio-pm-sim /etc/systemd/system/multi-user.target.wants/vfiopmd.service \
	/var/lib/systemd/deb-systemd-helper-enabled/vfiopmd.service.dsh-also /usr/share/doc/vfiopmd /usr/share/doc/vfio-pm-sim-dkms; do
	[ -e "$f" ] || [ -L "$f" ] && fail "$f left after the purge"
done
snapshot >/var/tmp/debs-after.txt
new=$(comm -13 /var/tmp/debs-before.txt /var/tmp/debs-after.txt)
[ -z "$new" ] || fail "new paths after install + purge: $new"
gone=$(comm -23 /var/tmp/debs-before.txt /var/tmp/debs-after.txt)
[ -z "$gone" ] || fail "paths that were there before the install are gone after the purge: $gone"
pass "no file of either package left, and no path under /etc /usr /var/lib /var/cache /run /opt /srv differs from before the install ($(wc -l </var/tmp/debs-after.txt) paths)"

say "timings: dpkg -i vfio-pm-sim-dkms $(secs "$t_dkms") (DKMS), dpkg -i vfiopmd $(secs "$t_daemon"), dpkg -r vfiopmd $(secs "$t_remove"), dpkg --purge both $(secs "$t_purge")"
say "PASS"
