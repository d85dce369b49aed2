#!/usr/bin/env bash
# The prepared GPU check: one command for a machine with an NVIDIA GPU and a PyTorch (CUDA) install
# but possibly no package access. Builds jepa-lab against PyTorch's LibTorch with CUDA and NCCL,
# runs the GPU tests, benchmarks a bf16 ViT-B/16 train step at 224 px (images/s, TFLOP/s, MFU,
# peak memory), and trains the quickstart on the GPU for at most 2 minutes. Every stage has its
# own time limit, so the whole check ends within 8 minutes; a failed stage is reported and the
# next one still runs.
#
#   scripts/gpu-check.sh [OUT_DIR]     log and numbers go to OUT_DIR (default: $OUT, else gpu-check/)
#
# Without package access, bring the other dependencies as .deb files first (DEVELOPERS.md):
#   here:  mkdir -p .device-deps && cp ../shared/offline-build/*.sh .device-deps/ &&
#          .device-deps/fetch-debs.sh .device-deps dataset-fashion-mnist libopenblas0-openmp
#   there: this script unpacks .device-deps/*.deb into .deps/ when .device-deps/ exists.
# JEPA_PEAK_TFLOPS sets the GPU's dense bf16 peak for the MFU (default 989.4: H100/H200 SXM).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/gpu-check.log") 2>&1
numbers=$out/numbers.txt
: > "$numbers"
started=$(date +%s)
failed=()
say() { printf '\n== gpu-check [%4ds] %s\n' "$(($(date +%s) - started))" "$*"; }
stage() { # stage NAME SECONDS command...
  local name=$1 limit=$2
  shift 2
  say "$name (at most ${limit}s)"
  timeout --signal=INT --kill-after=10 "$limit" "$@"
  local rc=$?
  if [ $rc -ne 0 ]; then
    failed+=("$name (exit $rc$([ $rc -eq 124 ] && echo ', timed out'))")
    echo "gpu-check: stage '$name' failed with exit $rc"
  fi
  return $rc
}

say "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "gpu-check: no nvidia-smi"
python3 -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "devices", torch.cuda.device_count())' \
  || echo "gpu-check: no PyTorch in python3"
nproc

if [ -d .device-deps ]; then
  say "unpacking .device-deps into .deps"
  eval "$(bash .device-deps/unpack-debs.sh .device-deps .deps)"
fi
torch_cmake=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
export CMAKE_PREFIX_PATH="$torch_cmake${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
data=/usr/share/datasets/fashion-mnist
[ -d "$data" ] || data=$PWD/.deps/usr/share/datasets/fashion-mnist
build=${JEPA_BUILD_DIR:-build-gpu}

if stage build 270 env JEPA_BUILD_DIR="$build" bash scripts/build.sh -DCMAKE_PREFIX_PATH="$CMAKE_PREFIX_PATH" \
  ${NCCL_ROOT:+-DNCCL_INCLUDE_DIR="$NCCL_ROOT/include"}; then
  grep -q "USE_C10D_NCCL" "$build/build.ninja" && echo "gpu-check: built with NCCL" >> "$numbers" \
    || echo "gpu-check: built WITHOUT NCCL (Gloo only)" >> "$numbers"

  stage "gpu tests" 90 bash -c "cd '$build' && ctest -L gpu --output-on-failure --timeout 80"

  stage "train-step benchmark (ViT-B/16, 224, bf16)" 100 "$build/bench/train_step_bench" \
    --config=bench/vit_base_224.toml --device=cuda --benchmark_filter='bf16:1' --benchmark_min_time=15 \
    --benchmark_out="$out/train_step_vit_b16.json" --benchmark_out_format=json
  if [ -f "$out/train_step_vit_b16.json" ]; then
    python3 - "$out/train_step_vit_b16.json" >> "$numbers" << 'EOF'
import json, sys
b = json.load(open(sys.argv[1]))["benchmarks"][0]
if b.get("error_occurred"):
    print("train step ViT-B/16: error:", b.get("error_message"))
else:
    print(f"train step ViT-B/16 224 bf16 batch 128: {b['real_time']:.1f} ms/step, {b['images_per_s']:.0f} images/s, "
          f"{b['GFLOPs'] / 1e3:.1f} TFLOP/s, MFU {b['MFU_percent']:.1f}% of the bf16 peak, "
          f"peak GPU memory {b['peak_gpu_MiB'] / 1024:.1f} GiB ({b['GFLOP_per_step']:.0f} GFLOP/step)")
EOF
  fi

  rm -f "$out/quickstart.db"
  stage "quickstart on the GPU (2 minutes)" 150 "$build/jepa" run experiments/quickstart.toml --db "$out/quickstart.db" \
    --set run.device=cuda --set data.path="$data" --set data.workers=8 --set run.threads=8
  if [ -f "$out/quickstart.db" ]; then
    "$build/jepa" runs --db "$out/quickstart.db" | tee -a "$numbers"
    "$build/jepa" show 1 --db "$out/quickstart.db" > "$out/quickstart_show.txt" 2>&1 || true
  fi
fi

say "summary"
cat "$numbers"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}"
  exit 1
fi
echo "gpu-check: all stages passed in $(($(date +%s) - started)) s"
