#!/usr/bin/env bash
# Our TPE and random search (bench/tpe_bench.cpp) against Optuna's TPESampler
# (bench/tpe_optuna.py) on the same functions and budgets, then the Markdown summary
# (bench/tpe_summary.py) for bench/RESULTS.md.
#   bench/tpe.sh [build-dir] [seeds] [out-dir] [trials]
# Defaults: build, 30 seeds, a new folder under /tmp (kept: the CSVs are the raw data), 100 trials.
# Needs tpe_bench built (ninja -C build tpe_bench) and Debian's python3-optuna. Timings mean
# something only on an otherwise idle machine: the script says when a compiler was running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
seeds=${2:-30}
out=${3:-$(mktemp -d /tmp/tpe_bench.XXXXXX)}
trials=${4:-100}
# Debian's interpreter, where python3-optuna lives (a pyenv python3 may come first on PATH).
python=${PYTHON:-/usr/bin/python3}

bench="$build/bench/tpe_bench"
if [[ ! -x $bench ]]; then
  echo "tpe.sh: $bench not found; build it first: ninja -C $build tpe_bench" >&2
  exit 1
fi
if ! optuna_version=$("$python" -c 'import optuna; print(optuna.__version__)' 2>/dev/null); then
  echo "tpe.sh: Optuna is missing for $python; install it: apt-get install python3-optuna" >&2
  exit 1
fi
mkdir -p "$out"

busy() {
  if pgrep -f 'cc1plus|ninja' >/dev/null; then
    echo "$1: a compiler was running (timings not on an idle machine)" >&2
  fi
}

echo "Optuna $optuna_version ($python); $seeds seeds x $trials trials; CSVs in $out" >&2
busy start
"$bench" --seeds "$seeds" --trials "$trials" --methods tpe,tpe_uni,random --out "$out/ours.csv"
"$bench" --timing --methods tpe,tpe_uni,random --out "$out/ours_timing.csv"
busy "after tpe_bench"
# The _v5 methods: Optuna 3.1 patched to compute what Optuna 5 computes, the like-for-like references.
optuna_methods=optuna_tpe,optuna_tpe_mv,optuna_tpe_v5,optuna_tpe_v5_uni
"$python" "$here/tpe_optuna.py" --seeds "$seeds" --trials "$trials" --methods $optuna_methods --out "$out/optuna.csv"
"$python" "$here/tpe_optuna.py" --timing --methods $optuna_methods --out "$out/optuna_timing.csv"
busy "after tpe_optuna.py"
"$python" "$here/tpe_summary.py" "$out/ours.csv" "$out/ours_timing.csv" "$out/optuna.csv" "$out/optuna_timing.csv"
