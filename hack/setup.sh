#!/usr/bin/env bash
# Installs everything portway needs on a fresh Debian machine with Node 20 (as root): the system tools
# the agent and its tests drive, the npm packages, the native ARP addon, and the build. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# command → Debian package
declare -A tools=(
  [iptables]=iptables [ip6tables]=iptables [ipset]=ipset [ipvsadm]=ipvsadm [ip]=iproute2
  [arping]=arping [conntrack]=conntrack [curl]=curl [socat]=socat [openssl]=openssl [nft]=nftables
)
missing=()
for cmd in "${!tools[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${tools[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "setup: installing Debian packages: $pkgs"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install $pkgs (or install them yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs </dev/null >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  # Only from the lock file: it lists every platform's optional @swc binaries, so npm ci works anywhere and
  # a lock that drifted from package.json fails here instead of being silently re-resolved.
  npm ci --no-fund --no-audit --loglevel=error </dev/null
fi

# Built when missing, and rebuilt when a source is newer than the module (a checkout that changed the
# addon, e.g. when NDP sockets were added, must not keep loading the old one). arp: ARP/NDP sockets;
# netlink: the NETLINK_NETFILTER socket of nftables mode.
for addon in arp netlink; do
  addon_node=native/$addon/build/Release/$addon.node
  if [ -f native/$addon/binding.gyp ] && { [ ! -f "$addon_node" ] ||
    [ -n "$(find native/$addon/binding.gyp native/$addon/src -newer "$addon_node" -print -quit)" ]; }; then
    echo "setup: building the native $addon addon"
    npx --no-install node-gyp rebuild -C native/$addon --loglevel=warn </dev/null >/dev/null
  fi
done

echo "setup: building portway"
npm run --silent build
