#!/usr/bin/env bash
# Installs the SDK from the build tree into a temporary prefix, builds a plugin in its own
# project against it with find_package(JepaSDK), and loads it into the already-built host.
# Usage: out_of_tree_plugin.sh BUILD_DIR JEPA_BINARY PLUGIN_SOURCE_DIR
set -euo pipefail
build_dir=$1 jepa=$2 src=$3
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

test "$host_before" = "$(sha256sum "$jepa")"
echo "out-of-tree plugin built against the installed SDK and loaded: ok"
