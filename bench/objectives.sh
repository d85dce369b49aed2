#!/usr/bin/env bash
# Time per training step of each objective on the quickstart model, in the same minutes: each
# objective trains `STEPS` steps of experiments/quickstart.toml (no evaluation, its own database),
# twice, alternating, and the script prints the median images/s over each run's logged windows after
# the first 50 steps, as ms per step and as a ratio to ijepa. Take the figures on an idle machine.
#
#   bench/objectives.sh [BUILD_DIR] [STEPS] [OBJECTIVES...]   defaults: build 300 ijepa sigreg vicreg
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
steps=${2:-300}
shift $(($# > 2 ? 2 : $#))
objectives=("$@")
[ ${#objectives[@]} -gt 0 ] || objectives=(ijepa sigreg vicreg)
jepa=$root/$build/jepa
[ -x "$jepa" ] || jepa=$build/jepa
[ -x "$jepa" ] || { echo "objectives.sh: build first (scripts/build.sh): no $jepa" >&2; exit 1; }
command -v sqlite3 > /dev/null || { echo "objectives.sh: needs sqlite3" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1 /proc/loadavg)"
batch=64
declare -A ips
for round in 1 2; do
  for o in "${objectives[@]}"; do
    db=$tmp/$o-$round.db
    "$jepa" run "$root/experiments/quickstart.toml" --no-eval --db "$db" --set "objective.plugin=$o" \
      --set "optimization.max_steps=$steps" --set "checkpoint.dir=$tmp/runs" > /dev/null 2>&1
    # Median of the logged windows (10 steps each) past the warm-up.
    value=$(sqlite3 "$db" "SELECT value FROM metrics WHERE key = 'train/images_per_s' AND step > 50 ORDER BY value" |
      awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
    ips[$o]="${ips[$o]:-} $value"
    awk -v r="$round" -v o="$o" -v v="$value" -v b="$batch" \
      'BEGIN {printf "round %d  %-8s %8.1f images/s  %6.1f ms/step\n", r, o, v, 1000 * b / v}'
  done
done
echo
base=$(echo "${ips[${objectives[0]}]}" | awk '{print ($1 + $2) / 2}')
for o in "${objectives[@]}"; do
  mean=$(echo "${ips[$o]}" | awk '{print ($1 + $2) / 2}')
  awk -v o="$o" -v m="$mean" -v b="$batch" -v base="$base" -v first="${objectives[0]}" \
    'BEGIN {printf "%-8s mean %8.1f images/s  %6.1f ms/step  time per step x%.2f of %s\n", o, m, 1000 * b / m, base / m, first}'
done
