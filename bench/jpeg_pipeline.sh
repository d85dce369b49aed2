#!/usr/bin/env bash
# The image-folder pipeline against torchvision's ImageFolder + DataLoader (Debian's
# python3-torchvision, PIL), in the same minutes, on ImageNet-like JPEGs cut from real photographs:
# both do the official transforms (RandomResizedCrop(224, scale 0.3-1.0), ToTensor, Normalize) and
# no model. Runs each side with 1 and 2 decoding workers, twice, alternating, and prints images/s,
# images/s per core, the scaling from 1 to 2 workers, the per-core ratio, and the cores a GPU
# eating 2,000-3,500 images/s (ViT-B/16 I-JEPA on an H200, ../shared/DATA_PIPELINE_NOTES.md) needs.
#
#   bench/jpeg_pipeline.sh [BUILD_DIR] [CORPUS_DIR] [IMAGES]   defaults: build /tmp/jepa-photo-corpus 2000
#
# The corpus is made once (bench/make_photo_corpus.py, 3,000 files; it downloads three Debian
# wallpaper packages for their photographs). Take the figures on an idle machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
corpus=${2:-/tmp/jepa-photo-corpus}
images=${3:-2000}
bench=$root/$build/bench/jpeg_pipeline_bench
[ -x "$bench" ] || bench=$build/bench/jpeg_pipeline_bench
[ -x "$bench" ] || { echo "jpeg_pipeline.sh: build first (scripts/build.sh): no $bench" >&2; exit 1; }
# Debian's python3 (a pyenv or venv python3 on PATH may lack Debian's packages).
py=python3
$py -c 'import torchvision, PIL' 2> /dev/null || py=/usr/bin/python3
$py -c 'import torchvision, PIL' 2> /dev/null || {
  echo "jpeg_pipeline.sh: needs torchvision and PIL: sudo apt-get install python3-torchvision python3-pil" >&2
  exit 1
}
[ -d "$corpus/train" ] || $py "$root/bench/make_photo_corpus.py" "$corpus" --files 3000
load=$(cut -d' ' -f1 /proc/loadavg)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $load"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Page cache warm for both: the first pass reads every file.
cat "$corpus"/train/*/* > /dev/null
"$bench" "$corpus" --stages --images 500 | tee -a "$out"
for round in 1 2; do
  for w in 1 2; do
    "$bench" "$corpus" --workers "$w" --images "$images" --u8 | tee -a "$out"
    $py "$root/bench/torchvision_loader.py" "$corpus" --workers "$w" --images "$images" | tee -a "$out"
  done
done
$py - "$out" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def rate(tool, w):
    xs = [r["images_per_s"] for r in rows if r.get("tool") == tool and r.get("workers") == w]
    return statistics.median(xs) if xs else float("nan")
print("\nimages/s (median of 2)      1 worker   2 workers   scaling   per core (2 workers)")
for tool, name in (("jepa", "jepa-lab"), ("torchvision", "torchvision")):
    a, b = rate(tool, 1), rate(tool, 2)
    print(f"{name:26s} {a:9.0f} {b:11.0f} {b / a:9.2f}x {b / 2:12.0f}")
for w in (1, 2):
    print(f"per-core ratio, {w} worker{'s' if w > 1 else ' '}: {rate('jepa', w) / rate('torchvision', w):.2f}x")
per_core = rate("jepa", 2) / 2
print(f"cores for 2,000-3,500 images/s (ViT-B/16 on an H200): {2000 / per_core:.1f}-{3500 / per_core:.1f} "
      f"(torchvision: {2000 / (rate('torchvision', 2) / 2):.1f}-{3500 / (rate('torchvision', 2) / 2):.1f})")
PY
