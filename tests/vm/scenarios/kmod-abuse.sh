#!/bin/bash
# vfio_pm_sim under abuse: rmmod while open, remove while armed and held, devices=0 and 1024, two openers, wake storm.
# Inside the guest, as root. Loads vfio_pm_sim itself (the rig installed it); every wait is a
# bounded poll; the rig fails the run on any kernel WARNING, BUG or hung task. Exit 0 when every
# check passed.
set -u
. "$(dirname "$0")/lib/kmod.sh"
storm=${1:-100000}

# The device's own directory stays until its removal has completed.
present() { [ -d "/sys/devices/platform/$1" ]; }
loaded() { [ -d /sys/module/vfio_pm_sim ]; }
not() { ! "$@"; }
nr_devices() { find /sys/bus/platform/drivers/vfio-pm-sim -maxdepth 1 -name 'vfio-pm-sim.*' 2>/dev/null | wc -l; }
ready() { wait_for "${2:-10000}" test -e "$tmp/$1"; }

kmod_require
echo "kmod-abuse: kernel $(uname -r)"
d=vfio-pm-sim.0

echo "--- devices=0, devices=4097"
check "modprobe devices=0" modprobe vfio_pm_sim devices=0
check "no device" [ "$(nr_devices)" -eq 0 ]
check "rmmod" modprobe -r vfio_pm_sim
check "modprobe devices=4097 is refused" not modprobe vfio_pm_sim devices=4097
check "and leaves nothing loaded" not loaded

echo "--- rmmod while a device is open"
load devices=2
rm -f "$tmp"/ready "$tmp"/go
bg holder $d open ready="$tmp/ready" await="$tmp/go" close
ready ready || fail "the holder did not open $d"
check "rmmod is refused while $d is open" not rmmod vfio_pm_sim
check "the module is still there" loaded
check "and $d still answers" present $d
touch "$tmp/go"
check "the holder closed cleanly" wait_bg holder
rm -f "$tmp"/ready "$tmp"/go
bg holder $d open wakeup status=suspended ready="$tmp/ready" await="$tmp/go" exit close
ready ready || fail "the holder did not arm $d"
check "rmmod is refused while $d is armed" not rmmod vfio_pm_sim
check "$d stays suspended" "$tool" $d status=suspended
touch "$tmp/go"
check "the holder left low power and closed" wait_bg holder
check "rmmod once closed" rmmod vfio_pm_sim

echo "--- remove while armed and held"
load devices=2
rm -f "$tmp"/ready
# Unbinding resumes the device first (driver core), which fires the wake-up as with vfio-pci.
bg holder $d open req wakeup status=suspended ready="$tmp/ready" request/30000 fired=1/5000 ready="$tmp/requested" sleep=1500 close
ready ready || fail "the holder did not arm $d"
check "write 1 to sim/remove returns at once" [ "$(write_attr "$(sysdev $d)/sim/remove" 1)" = ok ]
check "the holder gets the request IRQ" ready requested 30000
check "while it holds on, $d is still there (its sim/ is gone)" eval "present $d && [ ! -e /sys/devices/platform/$d/sim ]"
check "rmmod is refused while the removal waits" not rmmod vfio_pm_sim
check "the holder closed" wait_bg holder
check "then the removal completes" wait_for 10000 gone $d
check "vfio-pm-sim.1 is untouched" "$tool" vfio-pm-sim.1 open wakeup status=suspended info fired=1 close
echo "--- remove while held, no request IRQ registered"
rm -f "$tmp"/ready "$tmp"/go
d1=vfio-pm-sim.1
bg holder $d1 open entry status=suspended ready="$tmp/ready" await="$tmp/go" close
ready ready || fail "the holder did not arm $d1"
check "write 1 to sim/remove" [ "$(write_attr "$(sysdev $d1)/sim/remove" 1)" = ok ]
sleep 1
check "the removal waits for the holder: $d1 is still there" present $d1
touch "$tmp/go"
check "the holder closed" wait_bg holder
check "then $d1 is gone" wait_for 10000 gone $d1
check "rmmod" rmmod vfio_pm_sim

echo "--- two openers"
load devices=1
rm -f "$tmp"/ready "$tmp"/go
bg holder $d open ready="$tmp/ready" await="$tmp/go" close
ready ready || fail "the first opener did not open $d"
check "a second opener gets EBUSY" "$tool" $d open=EBUSY
touch "$tmp/go"
check "the first closes" wait_bg holder
check "then the second can open" "$tool" $d open info close
check "rmmod" rmmod vfio_pm_sim

echo "--- wake storm: $storm writes to sim/wake (and $((storm / 5)) to sim/pme), the holder re-entering after each wake"
load devices=1
e=$(attr $d sim/entries) x=$(attr $d sim/exits)
rm -f "$tmp"/ready
bg holder $d open req wakeup status=suspended ready="$tmp/ready" rearm exit status=active close
if ready ready; then
	t0=$(now_ms)
	"$tool" --poke "$(sysdev $d)/sim/pme" $((storm / 5)) >"$tmp/pme.log" 2>&1 &
	pme=$!
	check "$storm writes to sim/wake succeed" "$tool" --poke "$(sysdev $d)/sim/wake" "$storm"
	check "$((storm / 5)) writes to sim/pme succeed" wait $pme
	sed 's/^/    /' "$tmp/pme.log"
	echo "    storm: $(($(now_ms) - t0)) ms"
	# The last wake may still be re-arming: let the holder settle before it is stopped.
	"$tool" $d status=suspended/10000 >/dev/null
	kill -TERM "$(cat "$tmp/holder.pid")"
	check "the holder re-entered after every wake, then left low power and closed" wait_bg holder
	rounds=$(sed -n 's/.*rearm: \([0-9]*\) wake-ups.*/\1/p' "$tmp/holder.log")
	ne=$(($(attr $d sim/entries) - e)) nx=$(($(attr $d sim/exits) - x))
	echo "    $rounds wake-ups seen, $ne entries, $nx exits, $(attr $d sim/wakes) resumes in all"
	check "the storm woke the holder" [ "${rounds:-0}" -gt 0 ]
	check "every entry was left again (entries $ne = exits $nx = wake-ups + 1)" \
		eval "[ $ne -eq $nx ] && [ $ne -eq $((rounds + 1)) ]"
else
	fail "the holder did not arm $d"
	kill -TERM "$(cat "$tmp/holder.pid")"
	wait_bg holder
fi
echo "--- wake storm against a plain entry: the device re-suspends by itself after each wake"
rm -f "$tmp"/ready "$tmp"/go
bg holder $d open entry status=suspended ready="$tmp/ready" await="$tmp/go"/-1 status=suspended/10000 exit status=active close
if ready ready; then
	w=$(attr $d sim/wakes) x=$(attr $d sim/exits)
	check "$storm writes to sim/wake succeed" "$tool" --poke "$(sysdev $d)/sim/wake" "$storm"
	echo "    $(($(attr $d sim/wakes) - w)) resumes"
	check "the entry stayed in force (exits $x)" eval "[ $(attr $d sim/exits) -eq $x ]"
	touch "$tmp/go"
	check "the device suspends again, EXIT brings it back" wait_bg holder
else
	fail "the holder did not arm $d"
	touch "$tmp/go"
	wait_bg holder
fi
check "afterwards $d idles into suspend" "$tool" $d status=suspended
check "and opens, enters and wakes as before" "$tool" $d open wakeup status=suspended read fired=1 close
check "rmmod" rmmod vfio_pm_sim

echo "--- kernel log of vfio_pm_sim so far (without the iommu group lines)"
dmesg | grep -E 'vfio.pm.sim' | grep -vE 'to iommu group|from iommu group' | tail -n 20 | sed 's/^/    /'

echo "--- devices=1024: every device opens, then unload"
t0=$(now_ms)
load devices=1024
check "1024 devices bound to vfio-pm-sim ($(($(now_ms) - t0)) ms)" [ "$(nr_devices)" -eq 1024 ]
nsusp() { grep -l '^suspended$' /sys/bus/platform/devices/vfio-pm-sim.*/power/runtime_status | wc -l; }
all_suspended() { [ "$(nsusp)" -eq 1024 ]; }
check "all of them runtime-suspend" wait_for 60000 all_suspended
t0=$(now_ms)
opened=0
for ((i = 0; i < 1024; i++)); do
	if "$tool" vfio-pm-sim.$i open info close >"$tmp/open.log" 2>&1; then
		opened=$((opened + 1))
	else
		sed 's/^/    /' "$tmp/open.log"
	fi
done
check "each of the 1024 opens ($opened, $(($(now_ms) - t0)) ms)" [ "$opened" -eq 1024 ]
check "all of them suspend again" wait_for 60000 all_suspended
t0=$(now_ms)
check "rmmod" rmmod vfio_pm_sim
check "every device is gone ($(($(now_ms) - t0)) ms)" eval '! compgen -G "/sys/bus/platform/devices/vfio-pm-sim.*" >/dev/null'

kmod_done kmod-abuse
