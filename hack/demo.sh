#!/usr/bin/env bash
# The main job on the embedded default (no cluster needed): render the rules portway would program
# on node-a of the bundled examples/ and print them.
set -euo pipefail
cd "$(dirname "$0")/.."
./hack/setup.sh >&2
exec ./bin/portway render -f examples/manifests --config examples/config.yaml "$@"
