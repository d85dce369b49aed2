#!/usr/bin/env bash
# The main job: installs the dependencies (idempotent), builds, trains I-JEPA on Fashion-MNIST
# (experiments/quickstart.toml), evaluates it with a linear probe, and records the run in
# results/jepa.db. Also draws the masks it trained with into results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
mkdir -p results
jepa=./build/jepa
$jepa masks --strategy multiblock --grid 8 --batch 8 --set min_keep=4 -o results/masks_quickstart.png > /dev/null
$jepa run experiments/quickstart.toml --db results/jepa.db
echo
sqlite3 -header -column results/jepa.db \
  "select r.id, r.name, r.status, e.evaluator, e.metric, round(e.value, 2) as value
     from runs r join evaluations e on e.run_id = r.id
    where r.id = (select max(id) from runs) and e.metric in ('top1', 'top1@random_init', 'top1@raw_pixels')"
