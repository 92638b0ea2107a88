#!/usr/bin/env bash
# Run a command as root inside a Debian kernel booted with virtme-ng.
#
# The host kernel lacks ipvlan, dummy, netkit and IPVS; Debian's kernels have
# them as modules. virtme-ng boots such a kernel in QEMU on a copy-on-write view
# of the host's own root filesystem, so host-built binaries run unchanged.
# The current directory, /tmp and every --rwdir are shared read-write.
#
# See tests/guest/README.md for options, requirements and timings.
set -euo pipefail
# Let failures inside $(...) stop the script too.
shopt -s inherit_errexit

SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly SELF
# Not under /var/cache: virtme-ng-init hides that folder (and /var/tmp,
# /var/log) behind a tmpfs in the guest, where the modules must be visible.
readonly CACHE_ROOT=${DPLAB_GUEST_CACHE:-/var/lib/dplab-guest}
readonly VENV=$CACHE_ROOT/venv
# Pinned so that every machine boots guests the same way.
readonly VNG_VERSION=1.42
# qemu + busybox (initramfs) + kmod (depmod/modprobe) + udev: virtme-ng-init
# finds its stdin/stdout/stderr/exit-status ports only through udev's
# /dev/virtio-ports links.
readonly HOST_PACKAGES=(qemu-system-x86 kmod busybox-static udev python3-venv)
# Modules dplab's datapaths need; many are modular in Debian kernels.
readonly GUEST_MODULES=(veth bridge br_netfilter macvlan ipvlan dummy vxlan
	netkit sch_ingress cls_bpf act_bpf nf_conntrack nf_nat nf_tables nft_nat
	nft_chain_nat nft_compat xt_nat xt_conntrack xt_MASQUERADE iptable_nat
	iptable_filter ip_vs ip_vs_rr)
# Modules udev would load for the emulated PC that no test needs. Under TCG
# they cost about half the boot (crypto self-tests, kvm_amd, ATA probing).
# modprobe.blacklist stops only udev's loads by alias: an explicit
# `modprobe NAME` still works.
readonly BOOT_BLACKLIST=kvm,kvm_amd,kvm_intel,sr_mod,cdrom,ahci,libahci,libata,\
snd_pcsp,pcspkr,iTCO_wdt,i2c_i801,i2c_smbus,lpc_ich,joydev,psmouse,serio_raw,\
floppy,evdev,button,qemu_fw_cfg,i6300esb,watchdog,aesni_intel,sha1_ssse3,\
sha256_ssse3,sha512_ssse3,ghash_clmulni_intel,crc32_pclmul,crc32c_intel,\
crct10dif_pclmul

log() { echo "run-in-guest: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# Runs an install step with its chatter sent to the cache's install.log,
# which is shown only if the step fails.
readonly INSTALL_LOG=$CACHE_ROOT/install.log
quietly() {
	if ! "$@" >>"$INSTALL_LOG" 2>&1; then
		tail -n 20 "$INSTALL_LOG" >&2
		die "failed: $* (whole log: $INSTALL_LOG)"
	fi
}

# vng calls its helper virtme-run through PATH; CMD keeps the caller's PATH.
readonly VNG=(env "PATH=$VENV/bin:$PATH" "$VENV/bin/vng")

usage() {
	cat >&2 <<'EOF'
usage: run-in-guest.sh [OPTIONS] -- CMD [ARGS...]

Boots a Debian kernel with virtme-ng and runs CMD as root inside it, in the
current directory; CMD's stdout, stderr and exit status are passed through.

options:
  --kernel VERSION   kernel series: 6.1 (default, newest 6.1.0-N), 6.12, or
                     5.10 (from Debian 11's archive)
  --rwdir DIR        also share DIR read-write (repeatable; cwd and /tmp always are)
  --cpus N           guest CPUs (default 2 with KVM, 1 under TCG)
  --memory SIZE      guest memory (default 2G)
  --no-kvm           use TCG even if KVM works
  --verbose          show the guest's boot log on stderr
  -h, --help         this text
EOF
}

# ---------------------------------------------------------------- host side

ensure_host_packages() {
	local missing=() pkg
	for pkg in "${HOST_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	apt_update_once
	quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		"${missing[@]}"
}

# apt lists may be absent on a fresh machine; one update per script run is
# enough (of the kernel series' own sources with `apt_update_once SERIES`).
APT_UPDATED=0
apt_update_once() {
	((APT_UPDATED)) && return 0
	local opts
	mapfile -t opts < <(apt_opts_for "${1:-}")
	log "apt-get update"
	quietly apt-get "${opts[@]}" update
	APT_UPDATED=1
}

ensure_vng() {
	[[ -x $VENV/bin/vng ]] && "$VENV/bin/vng" --version 2>/dev/null | grep -qF "$VNG_VERSION" &&
		return 0
	log "installing virtme-ng $VNG_VERSION into $VENV"
	# A venv keeps virtme-ng away from the system's and pyenv's site-packages.
	quietly /usr/bin/python3 -m venv "$VENV"
	quietly "$VENV/bin/pip" install --disable-pip-version-check "virtme-ng==$VNG_VERSION"
}

# apt options for a kernel series: Debian 12's own sources, or for the 5.10
# series Debian 11 (bullseye), read through a private list folder under the
# cache so the machine's apt sources are never changed.
readonly BULLSEYE_APT=$CACHE_ROOT/apt-bullseye
apt_opts_for() {
	[[ $1 == 5.10 ]] || return 0
	echo "-oDir::Etc::SourceList=$BULLSEYE_APT/sources.list"
	echo "-oDir::Etc::SourceParts=/dev/null"
	echo "-oDir::State::Lists=$BULLSEYE_APT/lists"
	echo "-oDir::Cache=$BULLSEYE_APT/cache"
}

# Writes the bullseye source list once (Debian 12's archive keyring also
# holds Debian 11's keys).
ensure_series_sources() {
	[[ $1 == 5.10 ]] || return 0
	[[ -e $BULLSEYE_APT/sources.list ]] && return 0
	mkdir -p "$BULLSEYE_APT/lists/partial" "$BULLSEYE_APT/cache/archives/partial"
	local key=/usr/share/keyrings/debian-archive-keyring.gpg
	printf 'deb [signed-by=%s] http://deb.debian.org/%s main\n' \
		"$key" "debian bullseye" "$key" "debian-security bullseye-security" \
		>"$BULLSEYE_APT/sources.list"
}

# Prints the newest linux-image-VERSION*-amd64-unsigned package apt knows of,
# e.g. linux-image-6.1.0-56-amd64-unsigned or linux-image-6.12.117+deb12-amd64-unsigned.
# The pattern leaves out the -rt-, -cloud- and -dbg flavours.
newest_kernel_package() {
	local series_re=${1//./\\.} opts
	mapfile -t opts < <(apt_opts_for "$1")
	apt-cache "${opts[@]}" pkgnames linux-image- |
		grep -E "^linux-image-${series_re}\.[0-9]+(-[0-9]+|\+[a-z0-9]+)?-amd64-unsigned\$" |
		sort -V | tail -n 1 || true
}

# Debian 12 has 6.1 in main and 6.12 in bookworm-security, both already in
# its default sources (bookworm-backports has no kernel packages, checked
# 2026-11); 5.10 comes from Debian 11 (see apt_opts_for).
resolve_kernel_package() {
	local series=$1 pkg
	ensure_series_sources "$series"
	pkg=$(newest_kernel_package "$series")
	if [[ -z $pkg ]]; then
		apt_update_once "$series"
		pkg=$(newest_kernel_package "$series")
	fi
	[[ -n $pkg ]] || die "no linux-image-$series*-amd64-unsigned package in apt's sources"
	echo "$pkg"
}

kernel_dir() { echo "$CACHE_ROOT/kernels/$1"; }
kernel_cached() { [[ -e $(kernel_dir "$1")/.complete ]]; }

# Downloads and unpacks a kernel package into kernel_dir PKG, with
# modules.dep generated so modprobe works in the guest. virtme-ng finds the
# modules beside boot/vmlinuz-* and links them as /lib/modules/$(uname -r) in
# the guest: nothing under the host's /lib/modules is touched.
fetch_kernel() {
	local pkg=$1 series=$2 dir tmp kver opts
	mapfile -t opts < <(apt_opts_for "$series")
	dir=$(kernel_dir "$pkg")
	log "fetching $pkg"
	tmp=$(mktemp -d "$CACHE_ROOT/kernels/.tmp.XXXXXX")
	# -o APT::Sandbox::User=root: _apt cannot write into this root-owned folder.
	(cd "$tmp" && quietly apt-get "${opts[@]}" download -o APT::Sandbox::User=root "$pkg")
	dpkg-deb -x "$tmp"/*.deb "$tmp/root"
	# depmod -b and virtme-ng look under lib/modules; some packages use usr/lib.
	[[ -d $tmp/root/lib/modules ]] || ln -s usr/lib "$tmp/root/lib"
	kver=$(basename "$(ls -d "$tmp"/root/lib/modules/*)")
	depmod -b "$tmp/root" "$kver"
	rm -rf "$dir"
	mv "$tmp/root" "$dir"
	rm -rf "$tmp"
	touch "$dir/.complete"
}

# Each unpacked kernel takes about 400 MB: keep one per series.
prune_other_kernels() {
	local series=$1 keep=$2 dir
	for dir in "$CACHE_ROOT/kernels/linux-image-$series".*; do
		[[ -d $dir && $(basename "$dir") != "$keep" ]] || continue
		log "removing older $(basename "$dir")"
		rm -rf "$dir"
	done
}

vmlinuz_of() { ls "$(kernel_dir "$1")"/boot/vmlinuz-*; }

# KVM is used only if a guest actually boots with it: in some nested setups
# /dev/kvm opens but QEMU aborts (e.g. "failed to set MSR 0x10a") or hangs.
# The verdict is kept beside the kernel so the probe boot happens once.
kvm_works() {
	local pkg=$1 vmlinuz verdict
	vmlinuz=$(vmlinuz_of "$pkg")
	verdict=$(kernel_dir "$pkg")/.kvm-verdict
	[[ -r /dev/kvm && -w /dev/kvm ]] || return 1
	if [[ ! -e $verdict ]]; then
		log "probing KVM with one guest boot"
		if timeout 120 "${VNG[@]}" --run "$vmlinuz" --force-9p --memory 512M --exec true \
			</dev/null >/dev/null 2>&1; then
			echo yes >"$verdict"
		else
			echo no >"$verdict"
			log "KVM unusable here; using TCG (delete $verdict to probe again)"
		fi
	fi
	[[ $(cat "$verdict") == yes ]]
}

# Quotes each argument for the guest's /bin/sh (dash: no $'...' forms).
shell_quote() {
	local arg out=()
	for arg in "$@"; do
		out+=("'${arg//\'/\'\\\'\'}'")
	done
	echo "${out[*]}"
}

# Variables CMD may rely on; virtme-ng gives the guest a bare environment.
guest_env_args() {
	local name
	echo "PATH=$PATH"
	echo "RUN_IN_GUEST_VERBOSE=$VERBOSE"
	for name in $(compgen -e); do
		[[ $name == RUST_* || $name == DPLAB_* ]] && echo "$name=${!name}"
	done
}

run_guest() {
	local vmlinuz=$1 accel=$2
	shift 2
	# /tmp first: a cwd below it is then mounted on top, not hidden.
	local rwdirs=(/tmp "$PWD" "${EXTRA_RWDIRS[@]}") vng_args=() dir env_args=()
	for dir in "${rwdirs[@]}"; do
		vng_args+=(--rwdir "$dir")
	done
	[[ $accel == tcg ]] && vng_args+=(--disable-kvm)
	# Debian's qemu 7.2 ships only the C virtiofsd, which vng cannot drive: without
	# --force-9p vng tries it and waits about 3 s before falling back to 9p.
	vng_args+=(--force-9p)
	((VERBOSE)) && vng_args+=(--verbose)
	mapfile -t env_args < <(guest_env_args)
	local command=("$VENV/bin/vng" --run "$vmlinuz"
		--cpus "$CPUS" --memory "$MEMORY"
		--append "modprobe.blacklist=$BOOT_BLACKLIST"
		"${vng_args[@]}"
		--exec "$(shell_quote "$SELF" --in-guest "$PWD" "${env_args[@]}" -- "$@")")
	((VERBOSE)) && log "$(shell_quote "${command[@]}")"
	through_pipes env "PATH=$VENV/bin:$PATH" "${command[@]}"
}

# Runs a command with its stdout and stderr going through FIFOs and returns
# its status. QEMU reopens /proc/self/fd/1 and /proc/self/fd/2 with O_TRUNC,
# once per guest port: given a file it would truncate it (even one opened
# with >>) and write over its own output from several offsets.
#
# The command (vng, which starts virtme-run, which starts QEMU) runs in a
# session of its own whose process group id is its pid: TERM, INT or HUP sent
# to this script (e.g. by `timeout`) is passed on to that whole group, so no
# QEMU is left running after the script is gone.
FIFO_DIR=
through_pipes() {
	local status=0 out_pid err_pid guest_pid
	FIFO_DIR=$(mktemp -d)
	trap 'rm -rf "$FIFO_DIR"' EXIT
	mkfifo "$FIFO_DIR/out" "$FIFO_DIR/err"
	cat "$FIFO_DIR/out" &
	out_pid=$!
	cat "$FIFO_DIR/err" >&2 &
	err_pid=$!
	# <&0: a background job would otherwise read /dev/null, not our stdin.
	setsid "$@" <&0 >"$FIFO_DIR/out" 2>"$FIFO_DIR/err" &
	guest_pid=$!
	# shellcheck disable=SC2064 # the pid is meant to be fixed now
	trap "kill -TERM -- -$guest_pid 2>/dev/null" TERM INT HUP
	wait "$guest_pid" || status=$?
	# A trapped signal cuts wait short: wait again for the group's real end.
	while kill -0 "$guest_pid" 2>/dev/null; do
		status=0
		wait "$guest_pid" || status=$?
	done
	wait "$out_pid" "$err_pid"
	return "$status"
}

# --------------------------------------------------------------- guest side

load_guest_modules() {
	local mod
	# One modprobe for all: each process start is slow under TCG. It loads
	# what it can; built-in modules count as loaded.
	modprobe -a -q "${GUEST_MODULES[@]}" 2>/dev/null || true
	((RUN_IN_GUEST_VERBOSE)) || return 0
	# A missing module is only noted: dplab itself reports a datapath the
	# kernel cannot do.
	for mod in "${GUEST_MODULES[@]}"; do
		modprobe -q "$mod" 2>/dev/null || log "note: module $mod not available"
	done
}

prepare_guest_mounts() {
	mkdir -p /run/netns
	if ! mountpoint -q /sys/fs/bpf; then
		mount -t bpf bpffs /sys/fs/bpf
	fi
}

# Called by run_guest through vng --exec: --in-guest DIR [NAME=VALUE...] -- CMD...
guest_main() {
	# Loading modules and mounting are meant for the throwaway guest only.
	grep -q virtme /proc/cmdline || die "--in-guest is internal: it runs inside the guest"
	local dir=$1
	shift
	while [[ $1 != -- ]]; do
		export "${1?}"
		shift
	done
	shift
	load_guest_modules
	prepare_guest_mounts
	cd "$dir"
	exec "$@"
}

# ---------------------------------------------------------------- arguments

KERNEL_SERIES=6.1 CPUS='' MEMORY=2G NO_KVM=0 VERBOSE=0
EXTRA_RWDIRS=()

bad_usage() {
	log "$*"
	usage
	exit 2
}

# vng pastes --rwdir paths unquoted into a shell command line, and reads
# "A=B" as guest path A for host path B: accept only plain path characters.
check_shareable() {
	[[ $1 =~ ^[A-Za-z0-9._/+@:,-]+$ ]] ||
		bad_usage "cannot share '$1' with the guest: only letters, digits and ._/+@:,- are allowed"
}

set_option() {
	local name=$1 value=$2
	case $name in
	--kernel)
		[[ $value =~ ^[0-9]+\.[0-9]+$ ]] || bad_usage "--kernel wants a series like 6.1 or 6.12"
		KERNEL_SERIES=$value
		;;
	--rwdir)
		[[ -d $value ]] || bad_usage "--rwdir wants an existing directory: $value"
		EXTRA_RWDIRS+=("$(readlink -f "$value")")
		check_shareable "${EXTRA_RWDIRS[-1]}"
		;;
	--cpus)
		[[ $value =~ ^[1-9][0-9]*$ ]] || bad_usage "--cpus wants a positive number"
		CPUS=$value
		;;
	--memory)
		[[ $value =~ ^[1-9][0-9]*[MG]$ ]] || bad_usage "--memory wants a size like 2G or 1536M"
		MEMORY=$value
		;;
	esac
}

parse_args() {
	while (($#)); do
		case $1 in
		--kernel | --rwdir | --cpus | --memory)
			(($# >= 2)) || bad_usage "$1 needs a value"
			set_option "$1" "$2"
			shift 2
			;;
		--no-kvm) NO_KVM=1 && shift ;;
		--verbose) VERBOSE=1 && shift ;;
		-h | --help) usage && exit 0 ;;
		--) shift && break ;;
		*) bad_usage "unknown argument: $1" ;;
		esac
	done
	(($#)) || bad_usage "missing -- CMD"
	check_shareable "$PWD"
	CMD=("$@")
}

host_main() {
	# virtme-run fails on a closed stdin (CI may start us so): give it /dev/null.
	[[ -e /proc/self/fd/0 ]] || exec </dev/null
	parse_args "$@"
	((EUID == 0)) || die "must run as root (installs packages, boots a root guest)"
	mkdir -p "$CACHE_ROOT/kernels"
	local pkg vmlinuz accel=tcg
	# Runs started together must not install or fetch into the cache at once.
	exec 9>"$CACHE_ROOT/.lock"
	flock 9
	ensure_host_packages
	ensure_vng
	pkg=$(resolve_kernel_package "$KERNEL_SERIES")
	if ! kernel_cached "$pkg"; then
		# A download is due anyway: refresh apt's lists first, since old lists
		# may name a package the mirror has replaced by a newer one.
		apt_update_once "$KERNEL_SERIES"
		pkg=$(resolve_kernel_package "$KERNEL_SERIES")
		if ! kernel_cached "$pkg"; then
			fetch_kernel "$pkg" "$KERNEL_SERIES"
		fi
		prune_other_kernels "$KERNEL_SERIES" "$pkg"
	fi
	vmlinuz=$(vmlinuz_of "$pkg")
	if ((!NO_KVM)) && kvm_works "$pkg"; then
		accel=kvm
	fi
	exec 9>&-
	# Under TCG one vCPU boots about twice as fast as two on a busy 2-core
	# host (module loading makes vCPUs wait for each other) and runs the
	# checks no slower; speeds under TCG mean nothing anyway.
	if [[ -z $CPUS ]]; then
		CPUS=1
		[[ $accel == kvm ]] && CPUS=2
	fi
	run_guest "$vmlinuz" "$accel" "${CMD[@]}"
}

if [[ ${1:-} == --in-guest ]]; then
	shift
	guest_main "$@"
else
	host_main "$@"
fi
