# shellcheck shell=bash
# Host side of the VM rig: host packages, kernels, and the cached guest image.
# Sourced by tests/vm/run; every function prints progress on stderr.

VM_CACHE=${VFIOPM_VM_CACHE:-/var/cache/vfiopmd-vm}
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_SUITE=bookworm

vm_log() { printf 'vm: %s\n' "$*" >&2; }
vm_die() { printf 'vm: error: %s\n' "$*" >&2; exit 1; }

# vm_apt_locked CMD...: CMD while no other rig process runs apt (test-all starts VM steps side
# by side; apt itself fails at once on a held lock).
vm_apt_locked() {
	mkdir -p "$VM_CACHE"
	flock "$VM_CACHE/.apt.lock" "$@"
}

# apt-get install only what is missing; `apt-get update` once per process.
vm_apt_install() {
	local missing=() p
	for p in "$@"; do
		[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *'ok installed'* ]] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	vm_log "installing ${missing[*]}"
	if [ -z "${VM_APT_UPDATED:-}" ]; then
		vm_apt_locked apt-get update -qq >&2 || vm_die "apt-get update failed"
		VM_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive vm_apt_locked apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
		vm_die "apt-get install ${missing[*]} failed"
}

# The mirror serving $VM_SUITE, read from the machine's own apt sources.
vm_mirror() {
	apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' |
		awk -v s="$VM_SUITE" '$2 == s { print $1; exit }'
}

# bookworm-backports carries the 6.12 kernel; add it beside the existing
# sources, on the same mirror (apt pins backports low, nothing else moves).
vm_enable_backports() {
	local f=/etc/apt/sources.list.d/vfiopmd-backports.sources uri
	# No `| grep -q` under pipefail: grep leaves at the first match, and a writer still writing
	# dies of SIGPIPE, which fails the pipeline (seen: two steps at once both ran apt-get update).
	[[ $(apt-cache madison linux-image-amd64) == *"$VM_SUITE-backports"* ]] && return 0
	if ! apt-get indextargets --format '$(RELEASE)' 'Created-By: Packages' | grep -x "$VM_SUITE-backports" >/dev/null; then
		uri=$(vm_mirror)
		[ -n "$uri" ] || vm_die "no apt source for $VM_SUITE found to derive the backports mirror from"
		vm_log "adding $VM_SUITE-backports from $uri"
		printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$uri" "$VM_SUITE" >"$f"
	fi
	vm_apt_locked apt-get update -qq >&2 || vm_die "apt-get update failed"
	VM_APT_UPDATED=1
}

# vm_kernel_pkg 6.1|6.12 -> the versioned image package the metapackage
# pulls in, e.g. linux-image-6.1.0-56-amd64 (6.1 from bookworm and its
# security updates, 6.12 from bookworm-backports).
vm_kernel_pkg() {
	local want=$1 ver
	case $want in
	6.1) ver=$(apt-cache madison linux-image-amd64 | awk -F' *[|] *' '$3 !~ /backports/ && $2 ~ /^6[.]1[.]/ { print $2; exit }') ;;
	6.12) ver=$(apt-cache madison linux-image-amd64 | awk -F' *[|] *' '$3 ~ /backports/ && $2 ~ /^6[.]12[.]/ { print $2; exit }') ;;
	*) vm_die "unknown kernel '$want' (known: 6.1, 6.12)" ;;
	esac
	[ -n "$ver" ] || vm_die "no linux-image-amd64 $want in the apt sources"
	apt-cache show "linux-image-amd64=$ver" | sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -n1
}

vm_kernel_release() { echo "${1#linux-image-}"; }
# vm_kernel_headers KERNEL_PKG -> its headers package, e.g. linux-headers-6.1.0-56-amd64
vm_kernel_headers() { echo "linux-headers-$(vm_kernel_release "$1")"; }

# Host packages the rig needs, and the headers of the guest kernels so that
# out-of-tree modules can be built for them.
vm_host_setup() {
	vm_apt_install qemu-system-x86 qemu-utils mmdebstrap e2fsprogs debian-archive-keyring python3
	vm_enable_backports
	local k pkgs=()
	for k in 6.1 6.12; do
		pkgs+=("$(vm_kernel_headers "$(vm_kernel_pkg "$k")")")
	done
	vm_apt_install "${pkgs[@]}"
}

# Everything that goes into the guest image. Changing this list, image/*
# or any resolved package version gives a new image key.
# libvirt-daemon, -driver-qemu, -clients and qemu-system-x86 are for
# scenarios/libvirt-hook.sh (a real libvirtd running the qemu hooks around a
# nested qemu holding a vfio NIC): without libvirt-daemon-system they bring no
# systemd unit, so nothing of them starts at boot (the scenario starts
# libvirtd itself). mmdebstrap installs no Recommends. jq: the scenarios read
# vfiopmctl --json, as scripts would. dkms: scenarios/debs.sh installs vfio-pm-sim-dkms, which
# DKMS builds in the guest, offline: dkms Depends on gcc, make, dpkg-dev, patch and kmod, and
# vm_image_build adds each kernel's linux-headers-KREL (with its -common, linux-kbuild and
# compiler). Bookworm's dkms ships no systemd unit (nothing of it runs at boot). The lib*
# packages are what the host-built binaries link (libxml2: the libvirt hook; libvirt pulls it in
# as well, the hook should not depend on that). strace: scenarios/bench.sh counts the system
# calls of a wake (strace -c). prometheus-node-exporter and curl: scenarios/metrics.sh scrapes the
# real node_exporter's textfile collector (customize-hook keeps it from starting at boot).
VM_GUEST_PKGS=(systemd systemd-sysv dbus udev kmod initramfs-tools procps pciutils
	libevent-2.1-7 libevent-pthreads-2.1-7 libjson-c5 libsystemd0 libudev1 libxml2
	libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
	jq dkms strace prometheus-node-exporter curl)

# vm_image_key KERNEL_PKG...: sha256 over the recipe and the resolved versions of every
# package named in it (the kernels' headers included).
vm_image_key() {
	local k hdrs=()
	for k; do hdrs+=("$(vm_kernel_headers "$k")"); done
	{
		declare -f vm_image_build
		cat "$VM_DIR"/image/*
		printf '%s\n' "${VM_GUEST_PKGS[@]}" "$@" "${hdrs[@]}"
		apt-cache policy "${VM_GUEST_PKGS[@]}" "$@" "${hdrs[@]}" | awk '/Candidate:/ { print $2 }'
	} | sha256sum | cut -c1-16
}

# vm_image_build OUTDIR KERNEL_PKG...: rootfs with the given kernels and their headers (DKMS),
# as OUTDIR/rootfs.img plus each kernel's vmlinuz/initrd beside it.
vm_image_build() {
	local out=$1; shift
	local tmp sources kpkgs k
	tmp=$(mktemp -d "$VM_CACHE/.build.XXXXXX")
	sources=$tmp/sources.list
	apt-get indextargets --format 'deb $(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
		awk '$3 ~ /^'"$VM_SUITE"'(-updates|-security|-backports)?$/' | sort -u >"$sources"
	kpkgs=$(IFS=,; echo "$*")
	for k; do kpkgs+=,$(vm_kernel_headers "$k"); done
	vm_log "building guest image (mmdebstrap, kernels: $*)"
	local exclude=() d
	for d in usr/share/doc usr/share/man usr/share/locale usr/share/info \
		'lib/modules/*/kernel/sound' 'lib/modules/*/kernel/drivers/gpu' \
		'lib/modules/*/kernel/drivers/media' 'lib/modules/*/kernel/drivers/net/wireless' \
		'lib/modules/*/kernel/drivers/infiniband' 'lib/modules/*/kernel/drivers/staging' \
		'lib/modules/*/kernel/drivers/bluetooth' 'lib/modules/*/kernel/net/bluetooth' \
		'lib/modules/*/kernel/drivers/iio' 'lib/modules/*/kernel/drivers/hid' \
		'lib/modules/*/kernel/drivers/usb' 'lib/modules/*/kernel/drivers/scsi' \
		'lib/modules/*/kernel/fs/ocfs2' 'lib/modules/*/kernel/fs/btrfs' 'lib/modules/*/kernel/fs/xfs'; do
		exclude+=("--dpkgopt=path-exclude=/$d/*")
	done
	mmdebstrap --quiet --variant=minbase --mode=root \
		--include="$(IFS=,; echo "${VM_GUEST_PKGS[*]}"),$kpkgs" \
		"${exclude[@]}" --dpkgopt=path-include=/usr/share/doc/*/copyright \
		--essential-hook="sh '$VM_DIR/image/essential-hook' \"\$1\"" \
		--customize-hook="sh '$VM_DIR/image/customize-hook' \"\$1\"" \
		"$VM_SUITE" "$tmp/root" "$sources" >&2 || { rm -rf "$tmp"; vm_die "mmdebstrap failed"; }
	local rel
	for k in "$@"; do
		rel=$(vm_kernel_release "$k")
		cp "$tmp/root/boot/vmlinuz-$rel" "$tmp/root/boot/initrd.img-$rel" "$tmp/" ||
			{ rm -rf "$tmp"; vm_die "kernel $rel missing from the image"; }
	done
	local mb
	mb=$(du -sm "$tmp/root" | cut -f1)
	mkfs.ext4 -q -F -L vfiopm-root -d "$tmp/root" "$tmp/rootfs.img" "$((mb + mb / 2 + 512))M" >/dev/null ||
		{ rm -rf "$tmp"; vm_die "mkfs.ext4 failed"; }
	rm -rf "$tmp/root" "$sources"
	rm -rf "$out"
	mv "$tmp" "$out"
}

# vm_image KERNEL_PKG...: path of the cached image directory, built if absent.
vm_image() {
	local key dir lock
	mkdir -p "$VM_CACHE"
	key=$(vm_image_key "$@")
	dir=$VM_CACHE/image-$key
	# One builder at a time (tools/test-all runs VM steps side by side): the others wait and
	# then find the image built.
	exec {lock}>"$VM_CACHE/.image.lock"
	flock "$lock"
	if [ ! -e "$dir/rootfs.img" ]; then
		local t0=$SECONDS
		vm_image_build "$dir" "$@"
		vm_log "guest image built in $((SECONDS - t0)) s: $dir"
		# Keep only the newest image: a key change replaces the old one.
		find "$VM_CACHE" -maxdepth 1 -name 'image-*' ! -name "image-$key" -exec rm -rf {} +
	fi
	exec {lock}>&-
	echo "$dir"
}
