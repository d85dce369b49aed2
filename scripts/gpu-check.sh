#!/usr/bin/env bash
# The prepared GPU check, for a machine with an NVIDIA GPU and a PyTorch (CUDA) install but
# possibly no package access (docs/gpu-check.md). Two calls, each within 300 s, because the GPU
# machine runs one command for at most 600 s and lends 15 minutes in all, start-up included:
#
#   scripts/gpu-check.sh build [OUT]   the environment first (GPU, driver, PyTorch, CUDA, NCCL),
#                                      then unpacks .device-deps/ into .deps/, configures with
#                                      -DJEPA_BUILD_UI=OFF and builds only what `run` needs
#   scripts/gpu-check.sh all [OUT]     both, one after the other, in one command (~560 s)
#   scripts/gpu-check.sh run [OUT] [STAGE...]
#                                      stages, in this order unless named: tests (ctest -L gpu),
#                                      vit-h (ViT-H/14 bf16 train-step benchmark), vit-b (ViT-B/16),
#                                      quickstart (the quickstart on the GPU, a bounded number of
#                                      steps), official (upstream's step in bf16, when .official/
#                                      holds it), nccl (a 2-rank NCCL run, when there are 2 GPUs)
#
# OUT (default: $OUT, else gpu-check/) receives the logs, the benchmark JSON and numbers.txt, the
# summary of every number. Each stage has its own time limit, and no stage may run past the call's
# budget (GPU_CHECK_BUDGET seconds, default 285): a stage that would is cut short or skipped, and
# said so. A failed stage is reported and the next one still runs; the exit status is 1 if any
# failed. Ignored build outputs (.deps/, build-gpu/) stay on the machine between the two calls.
#
# Here, beforehand: scripts/offline/fetch-debs.sh (the .debs into .device-deps/, with the script
# that unpacks them). JEPA_PEAK_TFLOPS sets the GPU's dense bf16 peak for the MFU (default 989.4:
# H100/H200 SXM); JEPA_GPU_BUILD_DIR the build folder (default build-gpu).
set -uo pipefail # not -e: a failing stage must not end the check
cd "$(dirname "$0")/.." || exit 2

phase=${1:-}
case "$phase" in
  build | run) shift ;;
  all)
    # Both in one command (at most 2 x 280 s, under the 600 s a command may run): for when a
    # second call might find the machine handed back, and build-gpu/ gone with it.
    shift
    GPU_CHECK_BUDGET=${GPU_CHECK_BUDGET:-280} bash "$0" build "$@"
    build_rc=$?
    GPU_CHECK_BUDGET=${GPU_CHECK_BUDGET:-280} bash "$0" run "$@"
    run_rc=$?
    exit $((build_rc != 0 || run_rc != 0))
    ;;
  *)
    echo "usage: scripts/gpu-check.sh build|run|all [OUT] [STAGE...]" >&2
    exit 2
    ;;
esac
out=${1:-${OUT:-gpu-check}}
[ $# -gt 0 ] && shift
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/gpu-check-$phase.log") 2>&1
numbers=$out/numbers.txt
build=${JEPA_GPU_BUILD_DIR:-build-gpu}
env_file=$PWD/.deps/jepa-env.sh
budget=${GPU_CHECK_BUDGET:-285}
started=$(date +%s)
failed=()
export PYTHONUNBUFFERED=1

say() { printf '\n== gpu-check %s [%3ds] %s\n' "$phase" "$(($(date +%s) - started))" "$*"; }
note() { echo "$*" | tee -a "$numbers"; }
left() { echo $((budget - ($(date +%s) - started))); }
# stage NAME MAX_SECONDS command...: runs it under a limit of MAX_SECONDS or what is left of the
# budget, whichever is less (5 s kept for the kill and the summary); skipped under 15 s.
stage() {
  local name=$1 limit=$2 rc
  shift 2
  local room=$(($(left) - 10))
  if [ "$room" -lt 15 ]; then
    say "$name: skipped, ${room}s left of the ${budget}s budget"
    failed+=("$name (skipped: no time left)")
    return 99
  fi
  [ "$limit" -gt "$room" ] && limit=$room
  say "$name (at most ${limit}s)"
  # INT first: jepa run and ctest stop cleanly on it; KILL 5 s later if not.
  timeout --signal=INT --kill-after=5 "$limit" "$@"
  rc=$?
  if [ $rc -ne 0 ]; then
    failed+=("$name (exit $rc$([ $rc -eq 124 ] && echo ', timed out'))")
    echo "gpu-check: stage '$name' failed with exit $rc$([ $rc -eq 124 ] && echo ' (timed out)')"
  fi
  return $rc
}
finish() {
  say "summary ($(($(date +%s) - started)) s)"
  cat "$numbers"
  if [ ${#failed[@]} -gt 0 ]; then
    printf 'gpu-check %s: failed: %s\n' "$phase" "${failed[@]}"
    exit 1
  fi
  echo "gpu-check $phase: every stage passed"
  exit 0
}

# ------------------------------------------------------------------------------------ build

log_environment() {
  date -u
  grep -E '^(PRETTY_NAME|VERSION)=' /etc/os-release
  echo "cores: $(nproc), memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1 && cat "$out/nvidia-smi.txt" || echo "no nvidia-smi"
  nvidia-smi --query-gpu=index,name,memory.total,driver_version,compute_cap --format=csv,noheader 2> /dev/null \
    | sed 's/^/gpu: /' | tee -a "$numbers"
  python3 - << 'EOF' 2>&1 | tee -a "$numbers"
import os
import torch
print("python3:", os.path.realpath(os.sys.executable))
print("torch:", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version(),
      "cxx11 ABI", torch._C._GLIBCXX_USE_CXX11_ABI)
n = torch.cuda.device_count() if torch.cuda.is_available() else 0
print("torch sees", n, "CUDA device(s):", ", ".join(torch.cuda.get_device_name(i) for i in range(n)))
try:
    print("torch NCCL:", ".".join(map(str, torch.cuda.nccl.version())))
except Exception as e:  # a torch without NCCL
    print("torch NCCL: none", e)
include = os.path.join(os.path.dirname(torch.__file__), "include")
print("torch gloo headers:", "yes" if os.path.isfile(os.path.join(include, "gloo", "algorithm.h")) else "no", include)
print("torch cmake:", torch.utils.cmake_prefix_path)
EOF
  printf 'nvcc: %s\n' "$(nvcc --version 2> /dev/null | grep -i release || echo missing)" | tee -a "$numbers"
  for tool in c++ cmake ninja; do
    printf '%s: %s\n' "$tool" "$("$tool" --version 2> /dev/null | head -1 || echo missing)" | tee -a "$numbers"
  done
}

configure() {
  local args=(-S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DJEPA_BUILD_UI=OFF)
  # Ninja where there is one (pip's), and only for a new folder: CMake refuses a generator change.
  if command -v ninja > /dev/null && [ ! -f "$build/CMakeCache.txt" ]; then args+=(-G Ninja); fi
  [ -n "${NCCL_ROOT:-}" ] && args+=(-DNCCL_INCLUDE_DIR="$NCCL_ROOT/include")
  echo "cmake ${args[*]}"
  cmake "${args[@]}" > "$out/configure.log" 2>&1
  local rc=$?
  grep -E "jepa: |CUDA|nccl|NCCL" "$out/configure.log" | sort -u
  # The line that says whether data-parallel GPU runs will use NCCL, in the summary.
  grep -E "jepa: (data-parallel runs on GPUs use NCCL|LibTorch has CUDA but nccl.h was not found|Gloo headers)" \
    "$out/configure.log" | sed 's/^CMake Warning.*//' | sort -u >> "$numbers"
  grep -A3 "nccl.h was not found" "$out/configure.log" >> "$numbers"
  [ $rc -eq 0 ] || tail -40 "$out/configure.log"
  return $rc
}

if [ "$phase" = build ]; then
  : > "$numbers"
  say "environment"
  timeout 60 bash -c "$(declare -f log_environment); out='$out' numbers='$numbers' log_environment" \
    || echo "gpu-check: logging the environment failed or timed out"

  if [ -d .device-deps ]; then
    mkdir -p .deps
    # The environment that unpack-debs.sh prints is kept for `run`, and copied to OUT.
    stage unpack 60 bash -c "bash .device-deps/unpack-debs.sh .device-deps .deps > '$env_file.tmp' && mv '$env_file.tmp' '$env_file'"
    [ -f "$env_file" ] && cp "$env_file" "$out/deps-env.sh"
  else
    echo "gpu-check: no .device-deps/: the dependencies must be installed (scripts/install-deps.sh)"
    rm -f "$env_file"
    mkdir -p .deps
    echo "export CMAKE_PREFIX_PATH='$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')'\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}" > "$env_file"
  fi
  # shellcheck disable=SC1090
  [ -f "$env_file" ] && . "$env_file"
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} # no .cu files; only silences the arch probe

  if stage configure 90 bash -c "$(declare -f configure); build='$build' out='$out' numbers='$numbers' configure"; then
    # gpu_test depends on jepa, every plugin and the fixtures, so these four targets are all of it.
    stage build 600 cmake --build "$build" --parallel "$(nproc)" --target jepa jepa-engine gpu_test train_step_bench
    if grep -q "USE_C10D_NCCL" "$build/build.ninja" "$build"/host/CMakeFiles/jepa_dist.dir/flags.make 2> /dev/null; then
      note "build: jepa_dist compiled with NCCL (USE_C10D_NCCL)"
    else
      note "build: jepa_dist compiled WITHOUT NCCL: GPU ranks use Gloo"
    fi
  fi
  [ ${#failed[@]} -gt 0 ] && echo "gpu-check build: a second 'build' call continues where this one stopped"
  finish
fi

# ------------------------------------------------------------------------------------ run

# shellcheck disable=SC1090
[ -f "$env_file" ] && . "$env_file"
if [ ! -x "$build/jepa" ] || [ ! -x "$build/bench/train_step_bench" ]; then
  echo "gpu-check run: $build has no jepa or train_step_bench: run 'scripts/gpu-check.sh build' first"
  exit 2
fi
echo "--- run $(date -u +%FT%TZ)" >> "$numbers"
gpus=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU' || true)
say "$gpus GPU(s); Fashion-MNIST from ${JEPA_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
nvidia-smi --query-gpu=name,memory.used,memory.total,temperature.gpu,clocks.sm --format=csv,noheader 2> /dev/null
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(tests vit-h vit-b quickstart official nccl)

# bench NAME CONFIG MIN_TIME LIMIT: one bf16 train-step benchmark, its numbers into numbers.txt.
bench() {
  local name=$1 config=$2 min_time=$3 limit=$4 json=$out/train_step_$1.json
  rm -f "$json"
  stage "train step $name (bf16)" "$limit" "$build/bench/train_step_bench" --config="$config" --device=cuda \
    --benchmark_filter='bf16:1' --min_time="$min_time" --benchmark_out="$json" --benchmark_out_format=json
  [ -s "$json" ] || return 0
  # A benchmark that skips with an error (no CUDA device, out of memory) still exits 0: exit 3.
  python3 - "$json" "$name" > "$out/.bench_line" << 'EOF'
import json, sys
b = json.load(open(sys.argv[1]))["benchmarks"][0]
name = sys.argv[2]
if b.get("error_occurred"):
    print(f"train step {name}: error: {b.get('error_message')}")
    sys.exit(3)
else:
    print(f"train step {name} bf16: {b['real_time']:.1f} ms/step over {b['iterations']} steps, "
          f"{b['images_per_s']:.0f} images/s, {b['GFLOPs'] / 1e3:.1f} TFLOP/s, MFU {b['MFU_percent']:.1f}% "
          f"of the bf16 peak, peak GPU memory {b['peak_gpu_MiB'] / 1024:.1f} GiB, "
          f"{b['GFLOP_per_step'] / 1e3:.1f} TFLOP/step (upstream's count {b['upstream_GFLOP_per_step'] / 1e3:.1f}), "
          f"MLP hidden {b['encoder_mlp_hidden']:.0f}")
EOF
  [ $? -eq 3 ] && failed+=("train step $name (benchmark error)")
  tee -a "$numbers" < "$out/.bench_line"
  rm -f "$out/.bench_line"
}

# summarise_run DB LABEL: the run's status, steps, last loss and speed, into numbers.txt.
summarise_run() {
  [ -f "$1" ] || return 0
  "$build/jepa" runs --db "$1" 2>&1 | tee -a "$numbers"
  "$build/jepa" show 1 --db "$1" > "$out/$2_show.txt" 2>&1 || true
  "$build/jepa" export 1 --history --metric train/loss --metric train/images_per_s --format csv --db "$1" \
    > "$out/$2_history.csv" 2> /dev/null || true
}

for s in "${stages[@]}"; do
  case "$s" in
    tests)
      # The GPU tests only (the gpu label, and unit tests named Cuda*, which skip themselves
      # elsewhere): the rest of the suite is the CPU's (CI runs it on the same sources).
      # (tee inside the stage: a stage in a pipeline would run in a subshell and lose its failure)
      stage "ctest -L gpu" 110 bash -c "set -o pipefail; cd '$build' && ctest -R '^Gpu\.|Cuda' --output-on-failure --timeout 100 \
        --output-junit '$out/ctest-gpu.xml' 2>&1 | tee '$out/ctest-gpu.log'"
      grep -E "tests passed|Passed|Failed|\*\*\*Skipped|Skipped" "$out/ctest-gpu.log" | sed 's/^/ctest: /' >> "$numbers"
      # On a GPU machine a skipped single-GPU test means CUDA was not usable: that is a failure.
      if [ "$gpus" -ge 1 ] && grep -q "Gpu.TrainsWithBf16AutocastAndResumes .*Skipped" "$out/ctest-gpu.log"; then
        note "ctest: the GPU tests skipped themselves although nvidia-smi lists $gpus GPU(s)"
        failed+=("ctest -L gpu (skipped on a GPU machine)")
      fi
      ;;
    vit-h) bench vit_h14 bench/vit_huge_224.toml 15 100 ;;
    vit-b) bench vit_b16 bench/vit_base_224.toml 10 60 ;;
    quickstart)
      # 1 epoch of 19,200 images at batch 64: 300 steps, then the end of the run (no probe: its
      # linear head trains on the CPU, which would time the CPU).
      rm -f "$out/quickstart.db"
      stage "quickstart on the GPU (300 steps)" 75 "$build/jepa" run experiments/quickstart.toml --db "$out/quickstart.db" \
        --set run.device=cuda --set run.threads=8 --set data.workers=8 --set optimization.epochs=1 \
        --set data.limit_train=19200 --no-eval
      summarise_run "$out/quickstart.db" quickstart
      ;;
    official)
      if [ ! -d .official/src ]; then
        echo "gpu-check: no .official/src (upstream's I-JEPA code, never committed): official stage skipped"
        continue
      fi
      stage "official step ViT-H/14 (bf16)" 90 bash -c "set -o pipefail; python3 bench/official_train_step.py .official \
        --device cuda --bf16 --model vit_huge --patch-size 14 --pred-depth 12 --batch 128 --warmup 2 --steps 5 \
        --threads 8 --peak-tflops '${JEPA_PEAK_TFLOPS:-989.4}' 2>&1 | tee '$out/official_vith14.txt'"
      grep '^RESULT' "$out/official_vith14.txt" | sed 's/^RESULT/official step ViT-H\/14:/' >> "$numbers"
      ;;
    nccl)
      if [ "$gpus" -lt 2 ]; then
        echo "gpu-check: $gpus GPU: the 2-rank NCCL run needs 2 (skipped)"
        continue
      fi
      rm -f "$out/nccl.db"
      stage "2 ranks, NCCL (quickstart, 300 steps)" 75 "$build/jepa" run experiments/quickstart.toml --nproc 2 \
        --db "$out/nccl.db" --set run.device=cuda --set run.threads=4 --set data.workers=4 \
        --set optimization.epochs=1 --set data.limit_train=38400 --no-eval
      summarise_run "$out/nccl.db" nccl
      ;;
    *)
      echo "gpu-check: unknown stage '$s' (tests, vit-h, vit-b, quickstart, official, nccl)"
      failed+=("$s (unknown)")
      ;;
  esac
done
finish
