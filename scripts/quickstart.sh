#!/usr/bin/env bash
# The main job: installs the dependencies (idempotent), builds, lists the plugins and draws
# I-JEPA multi-block masks. Everything it produces lands in results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
mkdir -p results
jepa=./build/jepa
$jepa plugins
echo
$jepa masks --strategy multiblock --grid 14 --batch 8 -o results/masks_multiblock.png
$jepa masks --strategy multiblock --grid 14 --batch 8 --json > results/masks_multiblock.json
echo
$jepa masks --strategy random --grid 14 --batch 8 -o results/masks_random.png > /dev/null
$jepa masks --strategy block --grid 14 --batch 8 -o results/masks_block.png > /dev/null
echo "results: $(ls results/masks_* | tr '\n' ' ')"
