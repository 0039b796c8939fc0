#!/usr/bin/env bash
# Runs hack/bench/ipvs-sync-bench.ts inside the IPVS test VM (this machine's kernel has no IPVS): bundles
# it with esbuild into one file, copies this host's node and its libraries in, boots the guest with
# hack/ipvs-vm/run-in-vm and prints the guest's output (the figures are on the "BENCH {…}" line).
#   hack/bench/ipvs-sync-bench-vm.sh [--services 1000] [--endpoints 10] [--changes 5]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/pw-ipvs-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$root/node_modules/.bin/esbuild" "$root/hack/bench/ipvs-sync-bench.ts" --bundle --platform=node --format=esm \
  --target=node20 --outfile="$work/bench.mjs" --log-level=warning \
  --banner:js="import { createRequire as __pwRequire } from 'node:module'; const require = __pwRequire(import.meta.url);"
node=$(command -v node)
files=("node/node=$node" "bench.mjs=$work/bench.mjs")
while read -r lib; do files+=("node/lib/$(basename "$lib")=$(readlink -f "$lib")"); done < <(ldd "$node" | awk '/=> \// { print $3 }')
printf '%s\n' 'export LD_LIBRARY_PATH=/payload/node/lib' \
  "/payload/node/node --max-old-space-size=384 /payload/bench.mjs $*" >"$work/run.sh"
PORTWAY_IPVS_VM_MEMORY_MB=${PORTWAY_IPVS_VM_MEMORY_MB:-1536} "$root/hack/ipvs-vm/run-in-vm" --timeout 1200 "$work/run.sh" "${files[@]}"
