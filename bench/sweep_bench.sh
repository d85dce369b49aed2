#!/usr/bin/env bash
# Sweep scheduling cost and throughput on this machine's CPU slots.
#   bench/sweep_bench.sh [build-dir]
# 1. Overhead per trial: 8 one-step trials run one at a time; wall time per trial (process
#    start, plugin discovery, model build, one step, checkpoint, teardown) against the time the
#    run itself recorded.
# 2. Throughput: 8 trials of 40 steps with 1 thread each, on 2 slots at once versus one after
#    another.
set -euo pipefail
build=${1:-build}
jepa="$(cd "$build" && pwd)/jepa"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

base() {  # $1 = max_steps
  cat <<TOML
[run]
threads = 1
[data]
dataset = "fashion_mnist"
image_size = 28
batch_size = 32
workers = 1
limit_train = 4096
[masking]
strategy = "multiblock"
[masking.params]
min_keep = 2
[encoder]
plugin = "vit"
[encoder.params]
size = "custom"
embed_dim = 64
depth = 2
num_heads = 2
img_size = 28
patch_size = 4
in_chans = 1
[predictor]
plugin = "vit_predictor"
[predictor.params]
embed_dim = 32
depth = 1
[optimization]
epochs = 1
max_steps = $1
warmup = 0
[logging]
every = 10
TOML
}

seconds() { date +%s.%N; }

{ base 1; printf '[sweep]\nname = "overhead"\nmax_parallel = 1\nseeds = [0, 1, 2, 3, 4, 5, 6, 7]\n'; } > "$work/overhead.toml"
t0=$(seconds)
"$jepa" sweep "$work/overhead.toml" --db "$work/r.db" > /dev/null 2>&1
t1=$(seconds)
run_s=$(sqlite3 "$work/r.db" "select avg((julianday(ended_at) - julianday(started_at)) * 86400) from runs r join sweeps s on s.id = r.sweep_id where s.name = 'overhead'")
per=$(echo "($t1 - $t0) / 8" | bc -l)
printf 'overhead: %.2f s wall per one-step trial; the run itself (model build to end) %.2f s; the rest is process start and teardown: %.2f s\n' \
  "$per" "$run_s" "$(echo "$per - $run_s" | bc -l)"

for mode in serial parallel; do
  if [ $mode = serial ]; then par=1; else par=2; fi
  { base 40; printf '[sweep]\nname = "%s"\nmax_parallel = %d\nseeds = [0, 1, 2, 3, 4, 5, 6, 7]\n' $mode $par; } > "$work/$mode.toml"
  t0=$(seconds)
  "$jepa" sweep "$work/$mode.toml" --db "$work/r.db" > /dev/null 2>&1
  t1=$(seconds)
  eval "${mode}_s=$(echo "$t1 - $t0" | bc -l)"
done
printf 'throughput: 8 trials x 40 steps: one at a time %.1f s, 2 slots %.1f s (%.2fx)\n' \
  "$serial_s" "$parallel_s" "$(echo "$serial_s / $parallel_s" | bc -l)"
