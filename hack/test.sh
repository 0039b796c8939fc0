#!/usr/bin/env bash
# The whole test suite: unit, golden, and end-to-end tests in network namespaces (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
./hack/setup.sh
npm run --silent typecheck
npm run --silent lint
node --experimental-vm-modules node_modules/jest/bin/jest.js --ci "$@" </dev/null
