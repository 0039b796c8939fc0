#!/bin/sh
# Deletes from production node_modules the files Node never loads: type declarations and source maps
# (about 35 of 78 MB, most of it @kubernetes/client-node's generated models). Run by the Dockerfile's
# build stage and by hack/image/assemble-rootfs.ts, so the image and CI's check of it hold the same files.
set -eu
dir=${1:?usage: trim-node-modules.sh NODE_MODULES_DIR}
find "$dir" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete
