#!/usr/bin/env bash
# Data-parallel scaling on this machine: the quickstart model and masks at the same global batch,
# one process with T threads against N Gloo ranks with T/N threads each (masks = "global", so both
# do exactly the same work per step). Prints images/s (steady state: the logged windows after the
# first) and wall time for each, and two ratios: against the one process on the same cores, and
# against N times one rank's work alone (1 process, T/N threads, batch / N: ideal scaling).
#
#   bench/dist_scaling.sh [BUILD_DIR] [STEPS] [RANKS]     defaults: build 120 2
set -euo pipefail
build=${1:-build}
steps=${2:-120}
ranks=${3:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
engine=$root/$build/jepa-engine
[ -x "$engine" ] || engine=$build/jepa-engine
cores=$(nproc)
global_batch=64
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/bench.db
common=(--db "$db" --no-eval --set "optimization.max_steps=$steps" --set logging.every=10
        --set checkpoint.every=0 --set distributed.masks=global --set data.workers=1)

run() {  # label, then extra arguments
  local label=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  "$engine" run "$root/experiments/quickstart.toml" "${common[@]}" "$@" > "$work/$label.log" 2>&1
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc)"
}

wall_one=$(run one --set "run.threads=$cores" --set "data.batch_size=$global_batch")
wall_many=$(run many --nproc "$ranks" --set "run.threads=$((cores / ranks > 0 ? cores / ranks : 1))" \
  --set "data.batch_size=$((global_batch / ranks))")
per=$((cores / ranks > 0 ? cores / ranks : 1))
wall_alone=$(run alone --set "run.threads=$per" --set "data.batch_size=$((global_batch / ranks))")
ips() {  # mean images/s of run $1 over the logged windows after the first
  sqlite3 "$db" "select avg(value) from metrics where run_id = $1 and key = 'train/images_per_s' and step > 10"
}
one=$(ips 1)
many=$(ips 2)
alone=$(ips 3)
printf 'machine: %s, %s cores; LibTorch %s\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$cores" \
  "$(sqlite3 "$db" "select value from environment where run_id = 1 and key = 'torch_version'" 2>/dev/null || echo '?')"
printf 'global batch %d, %d steps (quickstart model, 32x32 Fashion-MNIST)\n' "$global_batch" "$steps"
printf '%-34s %10s %10s\n' "" "images/s" "wall s"
printf '%-34s %10.1f %10.1f\n' "1 process x $cores threads" "$one" "$wall_one"
printf '%-34s %10.1f %10.1f\n' "$ranks Gloo ranks x $((cores / ranks > 0 ? cores / ranks : 1)) thread(s)" "$many" "$wall_many"
printf '%-34s %10.1f %10.1f\n' "1 process x $per thread(s), batch $((global_batch / ranks))" "$alone" "$wall_alone"
printf '%d ranks against 1 process on the same cores: %.2fx\n' "$ranks" "$(echo "$many / $one" | bc -l)"
printf 'scaling efficiency (%d ranks / %d x one rank'"'"'s work alone): %.2f\n' "$ranks" "$ranks" \
  "$(echo "$many / ($ranks * $alone)" | bc -l)"
