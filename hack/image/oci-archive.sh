#!/usr/bin/env bash
# Packs a filesystem assembled by hack/image/assemble-rootfs.ts into an OCI image archive with buildah:
# FROM scratch, one layer, the Dockerfile's entrypoint, workdir and env (from OUT_DIR/image.json). No
# daemon and no registry: buildah runs with a private vfs store in a temporary directory. As root.
#   hack/image/oci-archive.sh OUT_DIR ARCHIVE [NAME:TAG]   (prints the archive's size in bytes)
set -euo pipefail
out=${1:?usage: oci-archive.sh OUT_DIR ARCHIVE [NAME:TAG]}
archive=${2:?usage: oci-archive.sh OUT_DIR ARCHIVE [NAME:TAG]}
ref=${3:-portway:dev}
if ! command -v buildah >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends buildah </dev/null >/dev/null
fi
store=$(mktemp -d)
bh=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
trap '"${bh[@]}" rm --all >/dev/null 2>&1 || true; rm -rf "$store"' EXIT

# A container runtime mounts its own /dev, /proc and /sys: the image carries them empty, as Debian's does.
printf '%s\n' 'dev/*' 'proc/*' 'sys/*' >"$store/ignore"
config() { node -p "$1" "$out/image.json"; }
container=$("${bh[@]}" from scratch)
"${bh[@]}" copy --quiet --contextdir "$out/rootfs" --ignorefile "$store/ignore" "$container" "$out/rootfs/" / >/dev/null
args=(--entrypoint "$(config 'JSON.stringify(require(process.argv[1]).entrypoint)')"
  --workingdir "$(config 'require(process.argv[1]).workdir')")
while IFS= read -r kv; do [ -n "$kv" ] && args+=(--env "$kv"); done < <(
  config 'Object.entries(require(process.argv[1]).env).map(([k, v]) => `${k}=${v}`).join("\n")')
"${bh[@]}" config "${args[@]}" "$container"
rm -f "$archive"
# gzip layers, as a registry would serve them
"${bh[@]}" commit --quiet --disable-compression=false --format oci "$container" "oci-archive:$archive:$ref" >/dev/null
stat -c %s "$archive"
