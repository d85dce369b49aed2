#!/usr/bin/env bash
# The test command: installs the dependencies (idempotent), builds, and runs the whole suite.
# GPU tests carry the ctest label `gpu` and skip themselves on machines without one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd "${JEPA_BUILD_DIR:-build}"
ctest --output-on-failure --parallel "$(nproc)" --timeout 600
