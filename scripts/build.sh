#!/usr/bin/env bash
# Configures and builds jepa-lab into build/ (Release, Ninja, ccache when present).
# Extra arguments go to CMake's configure step, e.g. -DCMAKE_PREFIX_PATH=/path/to/libtorch.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${JEPA_BUILD_DIR:-build}
generator=()
if command -v ninja > /dev/null && [ ! -f "$build_dir/CMakeCache.txt" ]; then generator=(-G Ninja); fi
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" > "$build_dir.configure.log" 2>&1 \
  || { cat "$build_dir.configure.log"; exit 1; }
rm -f "$build_dir.configure.log"
cmake --build "$build_dir" --parallel "$(nproc)"
