#!/usr/bin/env bash
# The fingerprint gate across LibTorch versions, for real: plugins built against one LibTorch are
# offered to a host built against the other, both ways. C++ components (encoders, predictors,
# evaluators) must be refused with both fingerprints named; masking plugins (pure C) must load
# and sample exactly the masks the host's own build samples.
#
#   scripts/check-plugin-gate.sh BUILD_1_13 ROOT BUILD_IN_ROOT
#     BUILD_1_13     a build of jepa-lab on this machine (LibTorch 1.13)
#     ROOT           a Debian 13 root holding a LibTorch 2.6 build (scripts/check-torch2.sh cpu
#                    makes it and mounts /proc, /dev there before calling this)
#     BUILD_IN_ROOT  that build's folder as the root sees it
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(cd "$1" && pwd)
root=$(cd "$2" && pwd)
new_in_root=$3
new=$root$new_in_root
logs=${JEPA_CROSS_LOGS:-$(mktemp -d)}
mkdir -p "$logs"

# A host copied alone into a scratch folder: it then finds no plugins beside itself, only those
# it is given, so each side sees the other side's plugins and nothing else.
scratch=$root/tmp/jepa-gate
rm -rf "$scratch"
mkdir -p "$scratch/host-1.13" "$scratch/host-2.6" "$scratch/plugins-1.13" "$scratch/plugins-2.6"
cp "$old/jepa" "$old/jepa-engine" "$scratch/host-1.13/"
cp "$new/jepa" "$new/jepa-engine" "$scratch/host-2.6/"
cp "$old"/plugins/*.so "$scratch/plugins-1.13/"
cp "$new"/plugins/*.so "$scratch/plugins-2.6/"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

masks_args=(masks --strategy multiblock --grid 14 --batch 8 --seed 7 --json)

# 1.13 host, 2.6 plugins (on this machine)
"$scratch/host-1.13/jepa" --plugin-path "$scratch/plugins-2.6" plugins --json > "$logs/gate-1.13-host.json"
"$scratch/host-1.13/jepa" --plugin-path "$scratch/plugins-2.6" "${masks_args[@]}" > "$logs/masks-1.13-host-2.6-plugin.json"
"$old/jepa" "${masks_args[@]}" > "$logs/masks-1.13-own.json"

# 2.6 host, 1.13 plugins (in the root)
in_root /tmp/jepa-gate/host-2.6/jepa --plugin-path /tmp/jepa-gate/plugins-1.13 plugins --json \
  > "$logs/gate-2.6-host.json"
in_root /tmp/jepa-gate/host-2.6/jepa --plugin-path /tmp/jepa-gate/plugins-1.13 "${masks_args[@]}" \
  > "$logs/masks-2.6-host-1.13-plugin.json"
in_root "$new_in_root/jepa" "${masks_args[@]}" > "$logs/masks-2.6-own.json"

python3 - "$logs" "$old/plugins" "$new/plugins" << 'EOF'
import json, os, sys

logs, old_plugins, new_plugins = sys.argv[1:4]
failures = []

def check_side(report_file, host_torch, plugin_torch, plugin_dir):
    report = json.load(open(os.path.join(logs, report_file)))
    fp = report["host"]["fingerprint"]
    if not fp["torch_version"].startswith(host_torch):
        failures.append(f"{report_file}: host is torch {fp['torch_version']}, expected {host_torch}")
    loaded = {os.path.basename(p["path"]): p for p in report["plugins"]}
    rejected = {os.path.basename(r["path"]): r["reason"] for r in report["rejected"]}
    offered = sorted(f for f in os.listdir(plugin_dir) if f.endswith(".so"))
    n_c = n_cxx = 0
    for lib in offered:
        if lib.startswith("masking_"):
            n_c += 1
            if lib not in loaded:
                failures.append(f"{report_file}: masking plugin {lib} was refused: {rejected.get(lib)}")
        else:
            n_cxx += 1
            reason = rejected.get(lib)
            if reason is None:
                failures.append(f"{report_file}: C++ plugin {lib} built against torch {plugin_torch} was loaded")
                continue
            for want in (f"plugin [torch {plugin_torch}", f"host [torch {host_torch}", "torch version"):
                if want not in reason:
                    failures.append(f"{report_file}: {lib}: reason lacks '{want}': {reason}")
    print(f"{report_file}: host torch {fp['torch_version']}: {n_c} masking plugins of torch {plugin_torch} "
          f"loaded, {n_cxx} C++ plugins refused")
    if n_c == 0 or n_cxx == 0:
        failures.append(f"{report_file}: expected both masking and C++ plugins among {offered}")
    for lib, reason in sorted(rejected.items()):
        print(f"  refused {lib}: {reason}")

check_side("gate-1.13-host.json", "1.13", "2.6", new_plugins)
check_side("gate-2.6-host.json", "2.6", "1.13", old_plugins)

for foreign, own in (("masks-1.13-host-2.6-plugin.json", "masks-1.13-own.json"),
                     ("masks-2.6-host-1.13-plugin.json", "masks-2.6-own.json")):
    a = json.load(open(os.path.join(logs, foreign)))
    b = json.load(open(os.path.join(logs, own)))
    if a != b:
        failures.append(f"{foreign} and {own} differ: the foreign masking plugin sampled other masks")
    else:
        print(f"{foreign}: the same {len(a['target'])} target blocks x {a['batch']} images as {own}")

if failures:
    print("\n".join("FAIL " + f for f in failures), file=sys.stderr)
    sys.exit(1)
print("plugin gate across LibTorch 1.13 and 2.6: ok")
EOF
