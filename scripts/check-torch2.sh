#!/usr/bin/env bash
# Builds and tests jepa-lab against LibTorch 2.6 in a Debian 13 ("trixie") root made here with
# debootstrap, without touching this machine's Debian 12 and its LibTorch 1.13.
#
#   scripts/check-torch2.sh cpu    LibTorch 2.6 (CPU): build everything, run the whole suite, and
#                                  cross-load plugins between this 2.6 build and the 1.13 build in
#                                  build/ (the fingerprint gate, both ways)
#   scripts/check-torch2.sh KIND --root-only   make or update the root, build nothing
#   scripts/check-torch2.sh cuda   LibTorch 2.6 with CUDA 12.4 and NCCL, and the offline rehearsal
#                                  of the GPU check: the root holds only the build tools and the
#                                  LibTorch install (CUDA, NCCL, nvcc: what the GPU machine's
#                                  PyTorch stands for); every other dependency comes from the
#                                  Debian 12 .debs that scripts/offline/fetch-debs.sh downloads
#                                  for the GPU machine, unpacked by scripts/offline/unpack-debs.sh,
#                                  and the build runs without network (unshare -n), as there.
#                                  Built with -DJEPA_BUILD_UI=OFF (as the GPU check does) and the
#                                  CUDA and NCCL code paths on; then the suite runs (no device
#                                  here: the GPU tests skip themselves, the rest runs on the CPU)
#
# Either fails on a warning from jepa-lab's own sources (deprecations included). The roots live in
# .torch2/ (git-ignored; JEPA_TORCH2_DIR moves them) and are reused: a second run costs the build.
# Needs root (debootstrap, chroot, mounts, unshare) and the Debian mirror this machine already uses;
# the cuda check runs fetch-debs.sh here, so this machine must be Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

kind=${1:-}
root_only=${2:-}
case "$kind" in
  cpu | cuda) ;;
  *)
    echo "usage: scripts/check-torch2.sh cpu|cuda" >&2
    exit 2
    ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "check-torch2: needs root (debootstrap, chroot and bind mounts)" >&2
  exit 2
fi

top=${JEPA_TORCH2_DIR:-$src/.torch2}
mkdir -p "$top"
top=$(cd "$top" && pwd)
root=$top/trixie-$kind
logs=$top/logs-$kind
mkdir -p "$logs"
started=$(date +%s)
say() { printf 'check-torch2 %s [%4ds] %s\n' "$kind" "$(($(date +%s) - started))" "$*"; }

# ---- the root: made once, its packages brought up to the list on every run

# The cpu root: the same dependencies as scripts/install-deps.sh (one list,
# scripts/debian-packages.txt) with trixie's LibTorch. Lines tagged `host-only` are tools that the
# tests drive on the host (debootstrap itself, SLURM, Chromium): the roots leave them out, and
# there those tests skip themselves.
# The cuda root: only the [tool] lines (what a GPU machine's image brings: compiler, CMake, ninja,
# and the tools some tests run) and trixie's CUDA LibTorch with NCCL and the matching nvcc. No
# Gloo headers: Debian's LibTorch has none of its own, so the build uses the carried Debian 12
# ones, the path unpack-debs.sh takes on a GPU machine whose LibTorch lacks them (F17). Nothing
# else may come from apt: libtorch-cuda-dev itself pulls in zlib1g-dev (through libprotobuf-dev),
# which is why the carried zlib1g-dev must win (CMAKE_PREFIX_PATH is searched first).
if [ "$kind" = cpu ]; then
  mapfile -t packages < <(sed -e '/host-only/d' -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/debian-packages.txt | awk '{print $1}')
  packages+=(python3)
else
  mapfile -t packages < <(awk '/^[[:space:]]*(#|$)/ || /host-only/ {next} /#[[:space:]]*\[[^]]*tool/ {print $1}' scripts/debian-packages.txt)
  packages+=(python3 libtorch-cuda-dev libnccl-dev nvidia-cuda-toolkit)
fi

if [ ! -f "$root/.jepa-root" ]; then
  if ! command -v debootstrap > /dev/null; then
    say "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap > /dev/null
  fi
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2> /dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2> /dev/null || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  say "making the Debian 13 root in $root from $mirror"
  rm -rf "$root"
  debootstrap --variant=minbase --components=main,contrib,non-free trixie "$root" "$mirror" \
    > "$logs/debootstrap.log" 2>&1 || {
    tail -20 "$logs/debootstrap.log"
    exit 1
  }
  printf 'deb %s trixie main contrib non-free non-free-firmware\n' "$mirror" > "$root/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d" # no services start inside
  chmod +x "$root/usr/sbin/policy-rc.d"
  touch "$root/.jepa-root"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2> /dev/null || true; done
}
trap cleanup EXIT
mount_in() { # mount_in SOURCE TARGET [options...]
  local from=$1 to=$2
  shift 2
  mkdir -p "$to"
  mount "$@" "$from" "$to"
  mounted+=("$to")
}
mount_in proc "$root/proc" -t proc
mount_in sysfs "$root/sys" -t sysfs
mount_in /dev "$root/dev" --bind
mount_in devpts "$root/dev/pts" -t devpts
mount_in "$src" "$root/src" --bind

in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 CCACHE_DIR=/ccache TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" "$@"
}

want=$(printf '%s\n' "${packages[@]}" | sort | sha256sum | cut -c1-16)
if [ "$(cat "$root/.jepa-packages" 2> /dev/null || true)" != "$want" ]; then
  say "installing ${#packages[@]} packages into the root (LibTorch 2.6, $kind)"
  # nvidia-cudnn is a downloader that would fetch cuDNN from outside: decline it (see below).
  echo 'nvidia-cudnn nvidia-cudnn/question select I Decline' | in_root debconf-set-selections
  in_root apt-get update -qq > "$logs/apt.log" 2>&1
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" \
    >> "$logs/apt.log" 2>&1 || {
    tail -30 "$logs/apt.log"
    exit 1
  }
  if [ "$kind" = cuda ]; then
    # A root made before the rehearsal (or by hand) may hold our libraries from apt: they would be
    # found instead of the carried ones and prove nothing. Remove what LibTorch does not depend on.
    mapfile -t ours < <(awk '/^[[:space:]]*(#|$)/ {next} /host-only|#[[:space:]]*\[[^]]*(tool|torch)/ {next} {print $1}' \
      scripts/debian-packages.txt)
    present=()
    for p in "${ours[@]}" libgloo-cuda-dev libgloo-dev libfmt-dev libboost1.74-dev libboost1.83-dev libgtest-dev; do
      in_root dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q 'install ok installed' && present+=("$p")
    done
    if [ ${#present[@]} -gt 0 ]; then
      say "removing ${present[*]} from the root (they must come from the carried .debs)"
      in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "${present[@]}" >> "$logs/apt.log" 2>&1
      in_root dpkg-query -W libtorch-cuda-dev > /dev/null
    fi
  fi
  echo "$want" > "$root/.jepa-packages"
fi

if [ "$kind" = cuda ] && ! in_root sh -c 'ls /usr/lib/x86_64-linux-gnu/libcudnn.so.9 || ls /usr/local/lib/libcudnn.so.9' \
  > /dev/null 2>&1; then
  # The CUDA LibTorch links cuDNN, which Debian does not ship. A compile-and-CPU check needs only
  # its symbols: a stub that aborts if ever called (it cannot be: there is no device here).
  say "making a cuDNN stub for linking (cuDNN is not in Debian)"
  in_root bash -c '
    set -euo pipefail
    for lib in /usr/lib/x86_64-linux-gnu/libtorch*.so* /usr/lib/x86_64-linux-gnu/libc10_cuda.so*; do
      nm -D --undefined-only "$lib" 2> /dev/null || true
    done | awk "\$2 ~ /^cudnn/ {sub(/@.*/, \"\", \$2); print \$2}" | sort -u > /tmp/cudnn.syms
    { echo "#include <stdlib.h>"; sed "s/.*/void &(void) { abort(); }/" /tmp/cudnn.syms; } > /tmp/cudnn_stub.c
    # LibTorch binds them with the version node libcudnn.so.9 ("cudnnCreate@libcudnn.so.9").
    echo "libcudnn.so.9 { global: *; };" > /tmp/cudnn.map
    gcc -shared -fPIC -Wl,-soname,libcudnn.so.9 -Wl,--version-script=/tmp/cudnn.map \
      -o /usr/local/lib/libcudnn.so.9 /tmp/cudnn_stub.c
    ln -sf libcudnn.so.9 /usr/local/lib/libcudnn.so
    ldconfig
    echo "$(wc -l < /tmp/cudnn.syms) cuDNN symbols stubbed"'
fi

if [ "$root_only" = --root-only ]; then
  say "root ready: $root"
  exit 0
fi

# ---- build: from an empty build folder, so every warning is seen (ccache replays them)

say "configuring and building against $(in_root dpkg-query -W -f='${Package} ${Version}' \
  "$([ "$kind" = cpu ] && echo libtorch-dev || echo libtorch-cuda-dev)")"
rm -rf "$root/build"
configure=(cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
offline=()
if [ "$kind" = cuda ]; then
  # The carried set, fetched here (Debian 12) as for the GPU machine, unpacked inside the root by
  # the script that runs there; everything after this reads the environment it prints.
  say "fetching the offline set (scripts/offline/fetch-debs.sh) and unpacking it in the root"
  rm -rf "$root/device-deps" "$root/deps"
  bash scripts/offline/fetch-debs.sh "$root/device-deps" > "$logs/fetch-debs.log" 2>&1 || {
    cat "$logs/fetch-debs.log"
    exit 1
  }
  in_root bash /device-deps/unpack-debs.sh --torch-include /usr/include /device-deps /deps \
    > "$root/deps.env" 2> "$logs/unpack-debs.log" || {
    cat "$logs/unpack-debs.log"
    exit 1
  }
  cat "$logs/unpack-debs.log"
  # No network for configure and build: what is not carried or in the root is not there.
  offline=(unshare -n)
  configure=(bash -c '. /deps.env && exec "$@"' configure "${configure[@]}" -DJEPA_BUILD_UI=OFF)
fi
in_root_offline() { "${offline[@]}" chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 CCACHE_DIR=/ccache TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" "$@"; }
in_root_offline "${configure[@]}" > "$logs/configure.log" 2>&1 || {
  cat "$logs/configure.log"
  exit 1
}
if [ "$kind" = cuda ]; then
  grep -q "jepa: data-parallel runs on GPUs use NCCL" "$logs/configure.log" || {
    echo "check-torch2 cuda: NCCL was not enabled:" >&2
    grep -i -E "nccl|cuda" "$logs/configure.log" >&2 || true
    exit 1
  }
  # Every dependency that CMake found must be a carried one (under /deps), LibTorch's or the
  # toolchain's: a path to /usr/include or /usr/lib of ours means the root still had it from apt.
  grep -E "^(fmt|tomlplusplus|CLI11|nlohmann_json|GTest|benchmark|Boost|boost_[a-z]+|PNG|ZLIB|OPENSSL|SQLite3|TURBOJPEG|JPEG|GLOO)[A-Za-z_]*:(PATH|FILEPATH)=" \
    "$root/build/CMakeCache.txt" | grep -v -E "=(/deps/|.*-NOTFOUND$)" > "$logs/not-carried.txt" || true
  if [ -s "$logs/not-carried.txt" ]; then
    echo "check-torch2 cuda: found outside the carried set (/deps):" >&2
    cat "$logs/not-carried.txt" >&2
    exit 1
  fi
fi
build_start=$(date +%s)
in_root_offline bash -c '[ ! -f /deps.env ] || . /deps.env; exec "$@"' build cmake --build /build --parallel "$(nproc)" \
  > "$logs/build.log" 2>&1 || {
  grep -E "error|FAILED" "$logs/build.log" | head -40
  exit 1
}
say "built in $(($(date +%s) - build_start)) s"
# Warnings from jepa-lab's own files (the checkout is /src in the root), not from LibTorch's headers.
if grep -E "^/src/[^:]+:[0-9]+:[0-9]+: warning:" "$logs/build.log" > "$logs/own-warnings.txt"; then
  echo "check-torch2 $kind: jepa-lab's own code warns on LibTorch 2.6:" >&2
  sort -u "$logs/own-warnings.txt" >&2
  exit 1
fi
if [ "$kind" = cuda ]; then
  grep -q "USE_C10D_NCCL" "$root/build/host/CMakeFiles/jepa_dist.dir/flags.make" 2> /dev/null \
    || grep -q "USE_C10D_NCCL" "$root/build/build.ninja" || {
    echo "check-torch2 cuda: the process-group code was not compiled with USE_C10D_NCCL" >&2
    exit 1
  }
fi

# ---- the suite

say "running the test suite"
test_start=$(date +%s)
# The carried libraries and dataset (JEPA_FASHION_MNIST) through deps.env, as on the GPU machine.
if ! in_root bash -c '[ ! -f /deps.env ] || . /deps.env; cd /build && ctest --output-on-failure --parallel "$(nproc)" --timeout 600' \
  > "$logs/ctest.log" 2>&1; then
  grep -E "tests passed|\(Failed\)|\(Timeout\)|Exception" "$logs/ctest.log" >&2 || true
  echo "check-torch2 $kind: the suite failed on LibTorch 2.6; the log is $logs/ctest.log" >&2
  exit 1
fi
say "$(grep -E "tests passed" "$logs/ctest.log") in $(($(date +%s) - test_start)) s"

# ---- the fingerprint gate across LibTorch versions (cpu only: it needs the 1.13 build beside it)

if [ "$kind" = cpu ]; then
  say "cross-loading plugins between LibTorch 1.13 (build/) and 2.6"
  [ -x build/jepa-engine ] || bash scripts/build.sh > "$logs/build-1.13.log" 2>&1
  JEPA_CROSS_LOGS=$logs bash scripts/check-plugin-gate.sh "$src/build" "$root" /build
fi
say "passed"
