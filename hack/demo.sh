#!/usr/bin/env bash
# The main job on a fresh machine, no cluster needed: installs what portway needs (./hack/setup.sh), then
# turns the bundled examples/ into two nodes, three pods and a client (network namespaces), runs the
# portway agent on each node and shows a client's requests spread across the pods through the ClusterIP,
# NodePort and LoadBalancer Services ("You've hit hello-7d9f-a1" and a per-pod count). Everything is torn
# down at the end, on Ctrl-C and on failure. Needs root; without root it prints the rules portway would
# program on node-a instead (the dry-run renderer).
set -euo pipefail
cd "$(dirname "$0")/.."
./hack/setup.sh >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: not root, so no network namespaces; here are the rules portway would program on node-a:" >&2
  exec ./bin/portway render -f examples/manifests --config examples/config.yaml
fi
exec node --import tsx hack/demo.ts "$@"
