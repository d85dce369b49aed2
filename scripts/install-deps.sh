#!/usr/bin/env bash
# Installs every dependency of jepa-lab from Debian packages. Idempotent: packages already
# present are left alone, so running it twice costs one `apt-get` check.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-openmp libgloo-dev      # LibTorch 1.13 (CPU), fast BLAS, c10d Gloo headers
  libboost-dev libboost-filesystem-dev               # Boost.DLL (header-only, uses Boost.Filesystem)
  libtomlplusplus-dev libfmt-dev libsqlite3-dev sqlite3
  libcli11-dev nlohmann-json3-dev libssl-dev
  libpng-dev libturbojpeg0-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  gnuplot-nox bc                                     # plots (jepa plot); bench/sweep_bench.sh
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
