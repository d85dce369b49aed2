#!/usr/bin/env bash
# Installs the SDK from the build tree into a temporary prefix, builds a plugin in its own
# project against it with find_package(JepaSDK), and loads it into the already-built host.
# Usage: out_of_tree_plugin.sh BUILD_DIR JEPA_BINARY PLUGIN_SOURCE_DIR OBJECTIVE_SOURCE_DIR
set -euo pipefail
build_dir=$1 jepa=$2 src=$3 objective_src=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
host_before=$(sha256sum "$jepa")

cmake --install "$build_dir" --component sdk --prefix "$tmp/sdk" > /dev/null
test -f "$tmp/sdk/include/jepa/sdk/abi.h"
test -f "$tmp/sdk/lib/cmake/JepaSDK/JepaSDKConfig.cmake"

cp -r "$src" "$tmp/src"
cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/sdk" -DCMAKE_BUILD_TYPE=Release > "$tmp/configure.log" \
  || { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/build" > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
test -f "$tmp/build/plugins/masking_stripes.so"

# The host picks it up from --plugin-path, without being rebuilt.
"$jepa" plugins --plugin-path "$tmp/build/plugins" --json > "$tmp/plugins.json"
grep -q '"id": "stripes"' "$tmp/plugins.json" || { echo "stripes not listed"; cat "$tmp/plugins.json"; exit 1; }
if grep -q '"reason"' "$tmp/plugins.json"; then echo "unexpected rejection"; cat "$tmp/plugins.json"; exit 1; fi

"$jepa" masks --plugin-path "$tmp/build/plugins" --strategy stripes --grid 6 --batch 2 --set period=3 --json \
  > "$tmp/masks.json"
grep -q '"context":\[\[\[0,1,2,3,4,5,18,19,20,21,22,23\]' "$tmp/masks.json" \
  || { echo "unexpected masks"; cat "$tmp/masks.json"; exit 1; }

# A bad parameter is caught by the host against the plugin's schema.
if "$jepa" masks --plugin-path "$tmp/build/plugins" --strategy stripes --set period=1 2> "$tmp/err"; then
  echo "period=1 should be rejected"; exit 1
fi
grep -q "outside the allowed range \[2, 16\]" "$tmp/err" || { cat "$tmp/err"; exit 1; }

# An objective (a C++ component: LibTorch, behind the fingerprint gate), built with the host's own
# LibTorch and compiler so that the gate lets it in, then trained with `jepa run`.
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build_dir/CMakeCache.txt"; }
objective_args=(-DCMAKE_PREFIX_PATH="$tmp/sdk" -DCMAKE_BUILD_TYPE=Release)
for var in Torch_DIR CMAKE_CXX_COMPILER CMAKE_CXX_COMPILER_LAUNCHER CMAKE_CUDA_COMPILER CUDAToolkit_ROOT; do
  value=$(cache_value "$var")
  [ -z "$value" ] || objective_args+=("-D$var=$value")
done
cp -r "$objective_src" "$tmp/objective-src"
cmake -S "$tmp/objective-src" -B "$tmp/objective-build" "${objective_args[@]}" > "$tmp/objective-configure.log" 2>&1 \
  || { cat "$tmp/objective-configure.log"; exit 1; }
cmake --build "$tmp/objective-build" > "$tmp/objective-build.log" 2>&1 || { cat "$tmp/objective-build.log"; exit 1; }
plugins=$tmp/objective-build/plugins
"$jepa" plugins --plugin-path "$plugins" --json > "$tmp/objective-plugins.json"
grep -q '"id": "vjepa_l1"' "$tmp/objective-plugins.json" || { echo "vjepa_l1 not listed"; cat "$tmp/objective-plugins.json"; exit 1; }
if grep -q '"reason"' "$tmp/objective-plugins.json"; then echo "unexpected rejection"; cat "$tmp/objective-plugins.json"; exit 1; fi
cat > "$tmp/tiny.toml" << TOML
[run]
seed = 1
threads = 1
[data]
limit_train = 64
batch_size = 16
workers = 0
[masking]
strategy = "multiblock"
[encoder]
plugin = "vit"
[encoder.params]
size = "custom"
embed_dim = 16
depth = 1
num_heads = 2
img_size = 28
patch_size = 4
in_chans = 1
[predictor]
plugin = "vit_predictor"
[predictor.params]
embed_dim = 8
depth = 1
[objective]
plugin = "vjepa_l1"
[objective.params]
loss_exp = 1.0
[optimization]
epochs = 2
[logging]
every = 1
TOML
"$jepa" run "$tmp/tiny.toml" --plugin-path "$plugins" --no-eval --db "$tmp/objective.db" > "$tmp/run.log" 2>&1 \
  || { cat "$tmp/run.log"; exit 1; }
"$jepa" show 1 --db "$tmp/objective.db" > "$tmp/show.log" 2>&1 || { cat "$tmp/show.log"; exit 1; }
grep -q "COMPLETED" "$tmp/show.log" || { cat "$tmp/show.log"; exit 1; }
grep -Eq "train/loss/l1 +8 " "$tmp/show.log" || { echo "train/loss/l1 not logged at every step"; cat "$tmp/show.log"; exit 1; }
grep -q "vjepa_l1 v1" "$tmp/show.log" || { echo "the objective is not among the run's plugins"; cat "$tmp/show.log"; exit 1; }
# A bad parameter is refused against the plugin's schema, before anything runs.
if "$jepa" run "$tmp/tiny.toml" --plugin-path "$plugins" --no-eval --db "$tmp/objective.db" \
  --set objective.params.loss_exp=9 2> "$tmp/err"; then
  echo "loss_exp=9 should be rejected"; exit 1
fi
grep -q "parameter .loss_exp.: 9 is outside the allowed range \[0.5, 4\]" "$tmp/err" || { cat "$tmp/err"; exit 1; }

test "$host_before" = "$(sha256sum "$jepa")"
echo "out-of-tree plugins (a masking strategy, an objective) built against the installed SDK and loaded: ok"
