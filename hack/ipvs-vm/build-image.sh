#!/usr/bin/env bash
# Builds (once, then cached) the IPVS test guest: Debian's cloud kernel — it has IPVS, ip_set, nf_tables,
# veth, dummy and bridge as modules, which this machine's kernel lacks — plus a base initramfs holding static
# busybox, this host's own ipvsadm/ipset/iptables/ip/conntrack/bash with their libraries, and the kernel's
# netfilter/ipvs/bridge/veth/dummy modules with their dependency closure. run-in-vm appends a small per-run
# archive (the test script and its files) to that base and boots it under QEMU's software emulation.
#
# Prints the image directory (vmlinuz, base.cpio, kernel-release) on stdout, progress on stderr.
# Cache: $PORTWAY_IPVS_VM_CACHE (default /var/cache/portway-ipvs-vm), one directory per kernel package
# version + hash of this directory's scripts + versions of the host packages copied in; older ones are
# removed. Installs missing Debian packages with apt (root, no stdin, `apt-get update` only if needed).
# Exits 3 when the image cannot be made here (not root, apt or the download refused, no kernel package),
# with the reason on stderr: callers skip loudly on 3 and fail on anything else.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${PORTWAY_IPVS_VM_CACHE:-/var/cache/portway-ipvs-vm}
say() { echo "ipvs-vm: $*" >&2; }
unavailable() {
  say "cannot build the IPVS test VM here: $*"
  exit 3
}

# command → Debian package: the emulator, the guest's userland, and the host tools copied into the guest.
declare -A tools=(
  [qemu-system-x86_64]=qemu-system-x86 [busybox]=busybox-static [ipvsadm]=ipvsadm [ipset]=ipset
  [iptables]=iptables [ip]=iproute2 [conntrack]=conntrack [bash]=bash [dpkg-deb]=dpkg [flock]=util-linux
)
apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -qq </dev/null >&2 || unavailable "apt-get update failed"
    apt_updated=1
  fi
}
missing=()
for cmd in "${!tools[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${tools[$cmd]}")
done
# A dynamically linked busybox (package busybox) cannot serve as the guest's libc-free userland.
if command -v busybox >/dev/null && ! dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
  missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  [ "$(id -u)" -eq 0 ] || unavailable "needs root to install $pkgs (or install them yourself)"
  say "installing Debian packages: $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if ! apt-get install -y -qq --no-install-recommends $pkgs </dev/null >/dev/null 2>&1; then
    apt_update_once
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs </dev/null >/dev/null || unavailable "apt-get install $pkgs failed"
  fi
fi

# The kernel: the package linux-image-cloud-amd64 currently points to.
kernel_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }'; }
kpkg=$(kernel_pkg)
if [ -z "$kpkg" ]; then
  apt_update_once
  kpkg=$(kernel_pkg)
fi
[ -n "$kpkg" ] || unavailable "no linux-image-cloud-amd64 package known to apt"
kver=$(apt-cache show --no-all-versions "$kpkg" | awk '/^Version:/ { print $2; exit }')
[ -n "$kver" ] || unavailable "no version of $kpkg known to apt"

host_versions=$(dpkg-query -W -f '${Package}=${Version}\n' busybox-static ipvsadm ipset iptables iproute2 conntrack bash libc6 2>/dev/null | sort)
key=$({
  cat "$here/build-image.sh" "$here/init"
  echo "$host_versions"
} | sha256sum | cut -c1-12)
image="$cache/${kpkg}_${kver}-$key"
if [ -f "$image/ready" ]; then
  touch "$image/ready" 2>/dev/null || true # last use, for the pruning below
  echo "$image"
  exit 0
fi

mkdir -p "$cache" || unavailable "cannot create $cache"
exec 9>"$cache/lock"
flock 9 # one builder at a time; the others find the image ready below
if [ -f "$image/ready" ]; then
  echo "$image"
  exit 0
fi
started=$(date +%s%N)
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

deb_dir="$cache/debs"
mkdir -p "$deb_dir"
deb=$(find "$deb_dir" -name "${kpkg}_${kver//:/%3a}_amd64.deb" -print -quit)
if [ -z "$deb" ]; then
  say "downloading $kpkg $kver"
  rm -f "$deb_dir"/*.deb # the older kernel is of no further use
  download() { (cd "$deb_dir" && apt-get -qq -o APT::Sandbox::User=root download "$kpkg=$kver" </dev/null >&2); }
  if ! download; then
    apt_update_once
    download || unavailable "apt-get download $kpkg=$kver failed"
  fi
  deb=$(find "$deb_dir" -name "${kpkg}_*.deb" -print -quit)
  [ -n "$deb" ] || unavailable "apt-get download left no $kpkg .deb"
fi

say "building the guest image ($kpkg $kver)"
kdir="$work/kernel"
mkdir -p "$kdir"
dpkg-deb -x "$deb" "$kdir"
release=$(basename "$(find "$kdir/lib/modules" -mindepth 1 -maxdepth 1 -type d -print -quit)")
root="$work/root"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,proc,sys,dev,run,tmp,root,payload,var}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
ln -s ../run "$root/var/run"

# Modules: IPVS and netfilter (v4, v6, bridge), veth, dummy; then everything they depend on.
mods="$kdir/lib/modules/$release"
busybox depmod -b "$kdir" "$release"
mapfile -t seeds < <(cd "$mods" && find kernel/net/netfilter kernel/net/ipv4/netfilter kernel/net/ipv6/netfilter \
  kernel/net/bridge kernel/drivers/net/veth.ko kernel/drivers/net/dummy.ko -name '*.ko')
mapfile -t closure < <(awk -v seeds="${seeds[*]}" '
  { sub(":", ""); deps[$1] = ""; for (i = 2; i <= NF; i++) deps[$1] = deps[$1] " " $i }
  END {
    n = split(seeds, queue, " "); for (i = 1; i <= n; i++) want[queue[i]] = 1
    for (i = 1; i <= n; i++) { m = split(deps[queue[i]], d, " "); for (j = 1; j <= m; j++) if (!(d[j] in want)) { want[d[j]] = 1; queue[++n] = d[j] } }
    for (k in want) print k
  }' "$mods/modules.dep")
for m in "${closure[@]}"; do
  mkdir -p "$root/lib/modules/$release/$(dirname "$m")"
  cp "$mods/$m" "$root/lib/modules/$release/$m"
done
cp "$mods/modules.order" "$mods/modules.builtin" "$root/lib/modules/$release/"
busybox depmod -b "$root" "$release"
cp "$kdir/boot/vmlinuz-$release" "$work/vmlinuz"

# Userland: busybox for every applet (also modprobe, which the kernel calls to autoload), then the host's
# tools over it, with every library ldd names.
cp "$(command -v busybox)" "$root/usr/bin/busybox"
for applet in $(busybox --list-full); do
  target="$root/usr/${applet#usr/}"
  [ -e "$target" ] || ln -s /usr/bin/busybox "$target"
done
copy_with_libs() {
  local file=$1 lib
  mkdir -p "$(dirname "$root$file")"
  rm -f "$root$file"
  cp -L "$file" "$root$file"
  { ldd "$file" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
    [ -e "$root$lib" ] || { mkdir -p "$(dirname "$root$lib")" && cp -L "$lib" "$root$lib"; }
  done
}
# ipvsadm-save/-restore are bash scripts; nft is optional (not on every host).
for cmd in ipvsadm ipvsadm-save ipvsadm-restore ipset ip conntrack bash nft; do
  path=$(command -v "$cmd") || continue
  real=$(readlink -f "$path")
  copy_with_libs "$real"
  [ "$real" = "$path" ] || { rm -f "$root$path" && ln -s "$real" "$root$path"; }
done
# iptables: both multi-call binaries, every name pointing at the same backend as on the host, and the extensions.
for multi in xtables-nft-multi xtables-legacy-multi; do copy_with_libs "/usr/sbin/$multi"; done
for link in /usr/sbin/*tables*; do
  [ -L "$link" ] || continue
  target=$(basename "$(readlink -f "$link")")
  case $target in xtables-*-multi) ln -sf "$target" "$root/usr/sbin/$(basename "$link")" ;; esac
done
xt=$(dirname "$(readlink -f /usr/lib/x86_64-linux-gnu/libxtables.so.12)")/xtables
for ext in "$xt"/*.so; do copy_with_libs "$ext"; done
for f in /etc/protocols /etc/services /etc/ethertypes; do [ -f "$f" ] && cp "$f" "$root$f"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
cp "$here/init" "$root/init"
chmod 755 "$root/init"

# Uncompressed: the guest unpacks it without decompressing, which under emulation is the faster boot.
(cd "$root" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null) >"$work/base.cpio"
echo "$release" >"$work/kernel-release"
rm -rf "$kdir" "$root"
# Images not used for a day go (another checkout's scripts may still use a different one meanwhile), and
# so do the leftovers of builds that were killed.
for old in "$cache"/linux-image-* "$cache"/build.*; do
  [ -d "$old" ] && [ "$old" != "$work" ] || continue
  if [ -z "$(find "$old" -maxdepth 1 -name ready -mmin -1440)" ] && [ -n "$(find "$old" -maxdepth 0 -mmin +1440)" ]; then
    rm -rf "$old"
  fi
done
mv "$work" "$image"
trap - EXIT
touch "$image/ready"
say "image built in $((($(date +%s%N) - started) / 1000000)) ms: $image ($(du -sh "$image/base.cpio" | cut -f1) base)"
echo "$image"
