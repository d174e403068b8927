#!/bin/bash
# vfio_pm_sim fault injection: sim/ wake, pme, fail_next_entry (errno seen by ENTRY), remove, counters, bad input -> EINVAL.
# Inside the guest, as root. Loads vfio_pm_sim itself (the rig installed it); every wait is a
# bounded poll. Exit 0 when every check passed.
set -u
. "$(dirname "$0")/lib/kmod.sh"

attr_is() { [ "$(attr "$1" "$2")" = "$3" ]; }
counters_are() { attr_is "$1" sim/entries "$2" && attr_is "$1" sim/exits "$3"; }

kmod_require
echo "kmod-faults: kernel $(uname -r), $(modinfo -F vermagic vfio_pm_sim)"
load devices=2
d=vfio-pm-sim.0
s=$(sysdev $d)

echo "--- layout"
check "$d bound to vfio-pm-sim" [ "$(basename "$(readlink "$s/driver")")" = vfio-pm-sim ]
check "$d has an iommu_group and /dev/vfio/GROUP" [ -c "/dev/vfio/$(basename "$(readlink "$s/iommu_group")")" ]
check "$d has a vfio-dev/vfioN child" compgen -G "$s/vfio-dev/vfio*"
for a in sim/wake:200 sim/pme:200 sim/remove:200 sim/fail_next_entry:600 sim/entries:444 \
	sim/exits:444 sim/wakes:444 power_state:444; do
	check "mode of ${a%%:*} is ${a##*:}" [ "$(stat -c %a "$s/${a%%:*}")" = "${a##*:}" ]
done
check "unopened $d runtime-suspends" "$tool" $d status=suspended
check "power_state is D3hot" attr_is $d power_state D3hot
check "counters start at 0" [ "$(cat "$s"/sim/{entries,exits,fail_next_entry})" = "$(printf '0\n0\n0')" ]

echo "--- wake and pme on the unopened device"
w=$(attr $d sim/wakes)
check "write 1 to sim/wake" [ "$(write_attr "$s/sim/wake" 1)" = ok ]
check "the host access resumed it once (wakes $w -> $(attr $d sim/wakes))" attr_is $d sim/wakes $((w + 1))
check "and it suspends again" "$tool" $d status=suspended
w=$(attr $d sim/wakes)
check "write 1 to sim/pme" [ "$(write_attr "$s/sim/pme" 1)" = ok ]
check "the PME resumed it once" wait_for 5000 attr_is $d sim/wakes $((w + 1))
check "and it suspends again" "$tool" $d status=suspended

for how in wake pme; do
	echo "--- $how with a wake-up entry in force"
	e=$(attr $d sim/entries) x=$(attr $d sim/exits)
	rm -f "$tmp/ready"
	bg holder $d open wakeup status=suspended ready="$tmp/ready" fired=1/10000 status=active quiet/500 exit close
	if wait_for 10000 test -e "$tmp/ready"; then
		check "write 1 to sim/$how" [ "$(write_attr "$s/sim/$how" 1)" = ok ]
	else
		fail "the holder did not get to low power"
	fi
	check "the holder's eventfd fired once and the device stayed in D0" wait_bg holder
	check "entries +1 ($(attr $d sim/entries)), exits +1 ($(attr $d sim/exits))" \
		counters_are $d $((e + 1)) $((x + 1))
done

echo "--- wake with a plain entry in force"
rm -f "$tmp/ready" "$tmp/go"
bg holder $d open entry status=suspended ready="$tmp/ready" await="$tmp/go" status=suspended exit status=active close
if wait_for 10000 test -e "$tmp/ready"; then
	w=$(attr $d sim/wakes) x=$(attr $d sim/exits)
	check "write 1 to sim/wake" [ "$(write_attr "$s/sim/wake" 1)" = ok ]
	check "the device resumed once" attr_is $d sim/wakes $((w + 1))
	check "the plain entry stays in force (exits $x)" attr_is $d sim/exits "$x"
	touch "$tmp/go"
else
	fail "the holder did not get to low power"
	touch "$tmp/go"
fi
check "the device suspended again by itself, EXIT resumed it" wait_bg holder

echo "--- a stream of PMEs against a holder that re-enters at once: no wake lost"
# A PME that found the device active (re-entered, its suspend not yet done) cancelled the idle
# request the entry's put had queued: the device stayed active with the entry engaged and never
# signalled again (once in ~4,000 PMEs under TCG). Blocks of 1,000; the device's wakes move in each.
bg holder $d open wakeup status=suspended rearm
w0=$(attr $d sim/wakes) lost=""
if wait_for 10000 attr_is $d power/runtime_status suspended; then
	for ((k = 0; k < 30; k++)); do
		w=$(attr $d sim/wakes)
		for ((i = 0; i < 1000; i++)); do echo 1 >"$s/sim/pme"; done
		wait_for 2000 attr_is $d power/runtime_status suspended
		[ "$(attr $d sim/wakes)" != "$w" ] && continue
		lost="block $((k + 1)) (runtime_status $(attr $d power/runtime_status), entries $(attr $d sim/entries), exits $(attr $d sim/exits))"
		break
	done
fi
res=${lost:+"the device stuck at $lost"}
check "30,000 PMEs: $(($(attr $d sim/wakes) - w0)) wakes, ${res:-every block of 1,000 woke the device}" [ -z "$lost" ]
kill -TERM "$(cat "$tmp/holder.pid")"
check "the holder re-entered after every wake and stopped on SIGTERM" wait_bg holder
check "and the device suspends again" "$tool" $d status=suspended

echo "--- fail_next_entry"
e=$(attr $d sim/entries)
check "write 5" [ "$(write_attr "$s/sim/fail_next_entry" 5)" = ok ]
check "reads back 5" attr_is $d sim/fail_next_entry 5
bg holder $d open entry=EIO info entry status=suspended exit close
check "ENTRY fails with EIO, the next ENTRY succeeds" wait_bg holder
check "consumed: reads 0" attr_is $d sim/fail_next_entry 0
check "write -16" [ "$(write_attr "$s/sim/fail_next_entry" -16)" = ok ]
check "reads back 16" attr_is $d sim/fail_next_entry 16
bg holder $d open wakeup=EBUSY quiet/300 wakeup status=suspended info fired=1 exit close
check "ENTRY_WITH_WAKEUP fails with EBUSY and signals nothing, the next succeeds and wakes once" wait_bg holder
check "write 121" [ "$(write_attr "$s/sim/fail_next_entry" 121)" = ok ]
bg holder $d open exit entry=EREMOTEIO exit close
check "EXIT does not consume it; ENTRY fails with EREMOTEIO" wait_bg holder
write_attr "$s/sim/fail_next_entry" 7 >/dev/null
check "write 7, then 0 cancels" [ "$(write_attr "$s/sim/fail_next_entry" 0)" = ok ]
check "reads 0" attr_is $d sim/fail_next_entry 0
bg holder $d open entry status=suspended exit close
check "after 0 the entry succeeds" wait_bg holder
check "failed entries are not counted (entries $e -> $(attr $d sim/entries))" attr_is $d sim/entries $((e + 3))

echo "--- bad input"
for a in wake pme remove; do
	for v in 0 2 abc 1x -1 ' 1' '' $'\n' 99999999999; do
		r=$(write_attr "$s/sim/$a" "$v")
		[ -z "$v" ] && [ "$r" = ok ] && continue # an empty write never reaches the driver
		check "sim/$a <- '${v//$'\n'/\\n}': $r" [ "$r" = "Invalid argument" ]
	done
done
write_attr "$s/sim/fail_next_entry" 9 >/dev/null
for v in abc 5x 4096 -4096 99999999999 1.5 $'\n'; do
	r=$(write_attr "$s/sim/fail_next_entry" "$v")
	check "sim/fail_next_entry <- '${v//$'\n'/\\n}': $r" [ "$r" = "Invalid argument" ]
done
check "fail_next_entry kept 9 through the bad writes" attr_is $d sim/fail_next_entry 9
write_attr "$s/sim/fail_next_entry" 0 >/dev/null
for a in entries exits wakes; do
	r=$(write_attr "$s/sim/$a" 1)
	check "sim/$a is read-only: $r" [ "$r" = "Permission denied" ]
done
check "the device is still suspended and unharmed" "$tool" $d status=suspended open info close

echo "--- remove while held and armed"
d1=vfio-pm-sim.1
rm -f "$tmp/ready"
bg holder $d1 open req wakeup status=suspended ready="$tmp/ready" request/30000 close
if wait_for 10000 test -e "$tmp/ready"; then
	check "write 1 to $d1/sim/remove returns at once" [ "$(write_attr "$(sysdev $d1)/sim/remove" 1)" = ok ]
else
	fail "the holder did not get to low power"
fi
check "the holder got the request IRQ and closed" wait_bg holder
check "$d1 is gone" wait_for 10000 gone $d1
check "the kernel log names the hot-unplug" sh -c "dmesg | grep -q '$d1: hot-unplug'"
check "$d still works" "$tool" $d open info close status=suspended

echo "--- remove an unopened device"
check "write 1 to $d/sim/remove" [ "$(write_attr "$s/sim/remove" 1)" = ok ]
check "$d is gone" wait_for 10000 gone $d
check "rmmod with every device removed" modprobe -r vfio_pm_sim

echo "--- parameters: d3cold, resume_ms"
load devices=1 d3cold=1
check "d3cold=1: an unopened device reports D3cold" wait_for 5000 attr_is $d power_state D3cold
echo 400 >/sys/module/vfio_pm_sim/parameters/resume_ms
t0=$(now_ms)
write_attr "$s/sim/wake" 1 >/dev/null
t=$(($(now_ms) - t0))
check "resume_ms=400: a wake takes ${t} ms" [ "$t" -ge 400 ]
echo 0 >/sys/module/vfio_pm_sim/parameters/resume_ms
echo N >/sys/module/vfio_pm_sim/parameters/d3cold
"$tool" $d status=suspended >/dev/null
write_attr "$s/sim/wake" 1 >/dev/null
check "d3cold=N at run time: D3hot after the next suspend" wait_for 5000 attr_is $d power_state D3hot
check "rmmod" modprobe -r vfio_pm_sim

echo "--- kernel log of vfio_pm_sim (without the iommu group lines)"
dmesg | grep -E 'vfio.pm.sim' | grep -vE 'to iommu group|from iommu group' | tail -n 20 | sed 's/^/    /'
kmod_done kmod-faults
