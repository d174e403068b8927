#!/bin/bash
# vfiopmctl metrics through node_exporter, the Debian way: the real prometheus-node-exporter package (in the guest image) serves its textfile directory; the installed vfiopmd-metrics.service (what vfiopmd-metrics.timer runs, which is installed but not enabled) writes vfiopmd.prom there; a scrape of node_exporter's /metrics has every vfiopmd series with the daemon's values (wakes, arms, states, identity labels, energy only where watts are declared), and no textfile scrape error; the timer, once started, writes the file by itself.
# Needs 1 e1000e NIC; any vfio-pci options.
set -u
. "$(dirname "$0")/lib/common.sh"
ETC=/etc/vfiopmd/policy.d
PROM_DIR=/var/lib/prometheus/node-exporter
URL=http://127.0.0.1:9100/metrics
SIM0=/sys/bus/platform/devices/vfio-pm-sim.0/sim

# The bus policy (org.vfiopm1.conf) and the units came with the payload, after boot.
systemctl reload dbus || fail "reloading dbus"
systemctl daemon-reload
modprobe vfio_pm_sim devices=2 || fail "modprobe vfio_pm_sim"
nic=$(vfio_pci_devices | sed -n 1p)
[ -n "$nic" ] || fail "a NIC on vfio-pci expected"
group=$(basename "$(readlink "$(dev_dir "$nic")/iommu_group")")

mkdir -p "$ETC"
jq -n --arg nic "$nic" '[
  { match: { device: $nic }, mode: "wakeup", rearm_delay_ms: 0, power_active_w: 8.5, power_low_w: 1.5 },
  { match: { device: "vfio-pm-sim.0" }, mode: "wakeup", rearm_delay_ms: 0, power_active_w: 300, power_low_w: 20 },
  { match: { device: "vfio-pm-sim.1" }, mode: "kernel" }
]' >"$ETC/50-test.json" || fail "writing $ETC/50-test.json"
daemon_start --bus system --policy-dirs "/usr/lib/vfiopmd/policy.d:$ETC:/run/vfiopmd/policy.d"
for d in "$nic" vfio-pm-sim.0; do wait_state "$d" armed || fail "$d not armed"; done
wait_state vfio-pm-sim.1 kernel || fail "vfio-pm-sim.1 not left to the kernel"

# json_field DEV KEY: a key of the device as vfiopmctl --json show reports it
json_field() { vfiopmctl --json show "$1" | jq -r ".$2"; }

# three device-initiated wakes of vfio-pm-sim.0, each re-armed at once
for i in 1 2 3; do
	echo 1 >"$SIM0/pme" || fail "writing $SIM0/pme"
	for ((t = 0; t < 500; t++)); do [ "$(json_field vfio-pm-sim.0 wakes)" = "$i" ] && break; sleep 0.01; done
	[ "$(json_field vfio-pm-sim.0 wakes)" = "$i" ] || fail "vfio-pm-sim.0: wakes $(json_field vfio-pm-sim.0 wakes), expected $i"
	wait_state vfio-pm-sim.0 armed || fail "vfio-pm-sim.0 not armed again after wake $i"
done
sleep 2         # suspended time to count
pass "vfio-pm-sim.0 woke 3 times and re-armed; $nic armed; vfio-pm-sim.1 kernel"

# -- the units as installed: the timer is not enabled, its service is what it runs
[ "$(systemctl is-enabled vfiopmd-metrics.timer 2>&1)" = disabled ] ||
	fail "vfiopmd-metrics.timer is $(systemctl is-enabled vfiopmd-metrics.timer 2>&1), not disabled"
[ "$(systemctl show -p Unit --value vfiopmd-metrics.timer)" = vfiopmd-metrics.service ] ||
	fail "vfiopmd-metrics.timer does not run vfiopmd-metrics.service"
pass "vfiopmd-metrics.timer installed, disabled, runs vfiopmd-metrics.service"

# -- node_exporter, from Debian's package, started by hand (the image keeps it off at boot)
dpkg-query -W -f='${Version}' prometheus-node-exporter >/dev/null 2>&1 || fail "prometheus-node-exporter is not installed in the guest"
[ -d "$PROM_DIR" ] || fail "$PROM_DIR missing: the package's textfile directory"
systemctl start prometheus-node-exporter || fail "prometheus-node-exporter did not start"
for ((t = 0; t < 600; t++)); do curl -fsS -o /dev/null "$URL" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$URL" || fail "node_exporter does not answer on $URL"
pass "prometheus-node-exporter $(dpkg-query -W -f='${Version}' prometheus-node-exporter) answers on $URL"

rm -f "$PROM_DIR/vfiopmd.prom"
systemctl start vfiopmd-metrics.service ||
	fail "vfiopmd-metrics.service failed: $(journalctl -q -b -u vfiopmd-metrics.service -o cat --no-pager | tail -n 5)"
[ -s "$PROM_DIR/vfiopmd.prom" ] || fail "vfiopmd-metrics.service wrote no $PROM_DIR/vfiopmd.prom"
[ "$(stat -c %a "$PROM_DIR/vfiopmd.prom")" = 644 ] || fail "vfiopmd.prom mode $(stat -c %a "$PROM_DIR/vfiopmd.prom")"
[ "$(ls -A "$PROM_DIR")" = vfiopmd.prom ] || fail "$PROM_DIR holds more than vfiopmd.prom: $(ls -A "$PROM_DIR")"
pass "vfiopmd-metrics.service wrote $PROM_DIR/vfiopmd.prom ($(wc -l <"$PROM_DIR/vfiopmd.prom") lines, 0644, no temporary file left)"

scrape=$(curl -fsS "$URL") || fail "scraping $URL"
# sample METRIC NAME [LABEL=VALUE]: the value of the series of device NAME (node_exporter sorts
# the labels: each is looked for on its own)
sample() {
	local line
	line=$(grep -E "^$1\{" <<<"$scrape" | grep -F "name=\"$2\"" | { [ -n "${3:-}" ] && grep -F "${3%%=*}=\"${3#*=}\"" || cat; })
	[ "$(wc -l <<<"$line")" = 1 ] && [ -n "$line" ] || return 1
	echo "${line##* }"
}
grep -qx 'node_textfile_scrape_error 0' <<<"$scrape" || fail "node_exporter could not read the textfile: $(grep node_textfile <<<"$scrape")"
version=$(vfiopmctl --version | cut -d' ' -f2)
grep -qx "vfiopmd_build_info{version=\"$version\"} 1" <<<"$scrape" || fail "no vfiopmd_build_info $version in the scrape"
grep -qx 'vfiopmd_policy_errors 0' <<<"$scrape" || fail "vfiopmd_policy_errors is not 0: $(grep vfiopmd_policy_errors <<<"$scrape")"
grep -qx '# TYPE vfiopmd_wakeups_total counter' <<<"$scrape" || fail "vfiopmd_wakeups_total is not a counter in the scrape"
info=$(grep -E '^vfiopmd_device_info\{' <<<"$scrape" | grep -F "name=\"$nic\"")
for l in vendor=\"8086\" device_id=\"10d3\" class=\"020000\" driver=\"vfio-pci\" iommu_group=\"$group\"; do
	grep -qF "$l" <<<"$info" || fail "vfiopmd_device_info of $nic has no $l: $info"
done
for d in "$nic" vfio-pm-sim.0 vfio-pm-sim.1; do
	for k in wakes arms; do
		m=vfiopmd_${k/wakes/wakeups}_total
		[ "$(sample "$m" "$d")" = "$(json_field "$d" "$k")" ] ||
			fail "$m of $d is $(sample "$m" "$d"), the daemon says $k $(json_field "$d" "$k")"
	done
	state=$(json_field "$d" state)
	[ "$(sample vfiopmd_device_state "$d" state="$state")" = 1 ] || fail "vfiopmd_device_state of $d: $state is not 1"
	[ "$(grep -E '^vfiopmd_device_state\{' <<<"$scrape" | grep -F "name=\"$d\"" | awk '{ s += $2 } END { print s }')" = 1 ] ||
		fail "vfiopmd_device_state of $d is no state set (not exactly one state at 1)"
done
[ "$(sample vfiopmd_wakeups_total vfio-pm-sim.0)" = 3 ] || fail "vfiopmd_wakeups_total of vfio-pm-sim.0 is not 3"
pass "scrape: build_info $version, policy_errors 0, device_info of $nic (group $group), wakeups, arms and the state sets of the 3 devices are the daemon's (vfio-pm-sim.0: 3 wakes)"

# energy: where watts are declared, more than 0 and at most what the daemon says after; the
# kernel-mode device without watts has none
for d in "$nic" vfio-pm-sim.0; do
	j=$(sample vfiopmd_energy_saved_joules_total "$d") || fail "no vfiopmd_energy_saved_joules_total for $d"
	s=$(sample vfiopmd_low_power_seconds_total "$d") || fail "no vfiopmd_low_power_seconds_total for $d"
	now_j=$(json_field "$d" energy_saved_joules) now_ms=$(json_field "$d" kernel_suspended_since_seen_msec)
	awk -v j="$j" -v s="$s" -v nj="$now_j" -v nms="$now_ms" 'BEGIN { exit !(j > 0 && j <= nj + 1e-6 && s > 0 && s <= nms / 1000 + 1e-6) }' ||
		fail "$d: energy $j J, low power $s s in the scrape; the daemon says $now_j J, $now_ms ms since"
	say "    $d: $s s in low power, $j J saved (the daemon, now: $now_ms ms, $now_j J)"
done
! grep -qE '^vfiopmd_energy_saved_joules_total\{.*name="vfio-pm-sim.1"' <<<"$scrape" ||
	fail "vfio-pm-sim.1 has no watts declared, yet an energy series"
pass "scrape: energy saved and low-power time where watts are declared, within the daemon's figures; none without"

# -- the timer writes the file by itself (OnBootSec=0: at once when started)
rm -f "$PROM_DIR/vfiopmd.prom"
systemctl start vfiopmd-metrics.timer || fail "vfiopmd-metrics.timer did not start"
for ((t = 0; t < 300; t++)); do [ -s "$PROM_DIR/vfiopmd.prom" ] && break; sleep 0.1; done
[ -s "$PROM_DIR/vfiopmd.prom" ] || fail "vfiopmd-metrics.timer started, no vfiopmd.prom within 30 s"
next=$(systemctl show -p NextElapseUSecMonotonic --value vfiopmd-metrics.timer)
systemctl stop vfiopmd-metrics.timer
pass "vfiopmd-metrics.timer wrote vfiopmd.prom once started (next run: $next)"

systemctl stop prometheus-node-exporter
daemon_stop
