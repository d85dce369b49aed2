#!/usr/bin/env bash
# Offline builds, step 2, on the machine without package access: unpacks the .debs that
# scripts/offline/fetch-debs.sh downloaded into PREFIX and prints the environment that lets CMake
# find them together with the LibTorch install (PyTorch's, with CUDA) and NCCL:
#
#   eval "$(bash .device-deps/unpack-debs.sh [--torch-include DIR] [DEBS [PREFIX]])"
#
# DEBS defaults to this script's folder, PREFIX to .deps. Notes go to stderr, the exports to stdout.
# LibTorch's include folder (for the Gloo decision below) is asked of python3's torch, or given by
# --torch-include or TORCH_INCLUDE_DIR (a LibTorch without Python, e.g. Debian's: /usr/include).
#
# What it prints, and why:
#   CMAKE_PREFIX_PATH  LibTorch's CMake config (torch.utils.cmake_prefix_path) and PREFIX/usr, where
#                      every find_package/find_path/find_library of CMakeLists.txt looks first
#   CPATH              PREFIX's multiarch include folder (usr/include/x86_64-linux-gnu: only
#                      OpenSSL's opensslconf.h and configuration.h, which the compiler looks for
#                      there by itself only under /usr) and NCCL's include folder. PREFIX's
#                      other headers reach the compiler through CMake's targets, never through
#                      CPATH, which is searched before LibTorch's own include folders and would
#                      shadow them (GPU review, F17)
#   LIBRARY_PATH, LD_LIBRARY_PATH  NCCL's lib folder only. PREFIX's libraries are found by
#                      RUNPATH: CMake writes their folder into every build-tree binary and plugin
#                      that links them. Not in LIBRARY_PATH: CMake takes its folders for the
#                      compiler's own and then writes no RUNPATH for them (the rehearsal's tests
#                      failed to start so). Not in LD_LIBRARY_PATH: Debian 12's libsqlite3,
#                      libpng, ... must not replace newer copies under the machine's own programs
#                      (python3, sqlite3, gnuplot), which may refuse older ones.
#   NCCL_ROOT          pip's nvidia-nccl-cu* package (host/CMakeLists.txt looks for nccl.h there)
#   JEPA_GLOO_INCLUDE_DIR  only when LibTorch has no gloo/ headers of its own: Debian 12's, unpacked
#                      apart (PREFIX/gloo) so that they can never shadow LibTorch's newer ones
#   JEPA_FASHION_MNIST the dataset's folder, for the tests and `jepa run` (docs/offline-build.md)
#   PKG_CONFIG, PKG_CONFIG_LIBDIR, PKG_CONFIG_SYSROOT_DIR  only when pkgconf was carried (--ui)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
note() { echo "unpack-debs: $*" >&2; }

torch_include=${TORCH_INCLUDE_DIR:-}
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --torch-include)
      torch_include=$2
      shift 2
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done
src=${args[0]:-$here}
prefix=${args[1]:-.deps}
src=$(cd "$src" && pwd)
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
multi=$prefix/usr/lib/x86_64-linux-gnu

extract() { # extract DEB DIR: dpkg-deb where there is one, else ar + tar (data.tar.*)
  if command -v dpkg-deb > /dev/null; then
    dpkg-deb -x "$1" "$2"
  else
    local tmp member
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$1")
    member=$(ls "$tmp"/data.tar.*)
    tar -xf "$member" -C "$2"
    rm -rf "$tmp"
  fi
}

shopt -s nullglob
debs=("$src"/*.deb)
if [ ${#debs[@]} -eq 0 ]; then
  note "no .deb files in $src (scripts/offline/fetch-debs.sh downloads them)"
  exit 1
fi
for d in "${debs[@]}"; do extract "$d" "$prefix"; done
note "${#debs[@]} packages unpacked into $prefix"

# The -dev packages' links (libfoo.so -> libfoo.so.N) must resolve, or the link fails at the end
# of the build. Absolute targets are re-rooted into PREFIX; targets that fetch-debs.sh left out
# because every C++ machine has them (libssl3, zlib1g's runtime, ...) point at this machine's copy.
system_lib() { # system_lib NAME: this machine's library of that file name, if any
  local d
  for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/lib /lib; do
    if [ -e "$d/$1" ]; then
      echo "$d/$1"
      return
    fi
  done
  ldconfig -p 2> /dev/null | awk -v n="$1" '$1 == n {print $NF; exit}'
}
unresolved=()
while IFS= read -r link; do
  target=$(readlink "$link")
  if [[ "$target" == /* ]] && [ -e "$prefix$target" ]; then
    ln -sfn "$prefix$target" "$link"
    continue
  fi
  [ -e "$link" ] && continue
  name=$(basename "$target")
  found=$(system_lib "$name")
  # Else the soname's file, when the link names a full version that differs here (libz.so.1.2.13).
  [ -n "$found" ] || found=$(system_lib "$(echo "$name" | sed -E 's/(\.so\.[0-9]+)\..*/\1/')")
  if [ -n "$found" ]; then
    ln -sfn "$found" "$link"
    note "$(basename "$link") -> $found (this machine's)"
  else
    unresolved+=("$(basename "$link") -> $target")
  fi
done < <(find "$prefix/usr/lib" "$prefix/lib" -name 'lib*.so*' -type l 2> /dev/null)
if [ ${#unresolved[@]} -gt 0 ]; then
  note "links to libraries that neither the .debs nor this machine have: ${unresolved[*]}"
  exit 1
fi

py=$(command -v python3 || true)
torch_cmake=
if [ -n "$py" ]; then
  torch_cmake=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2> /dev/null || true)
  if [ -z "$torch_include" ]; then
    torch_include=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))' \
      2> /dev/null || true)
  fi
  # nvidia.nccl is a namespace package in the cu13 wheels (__file__ is None): take __path__. Some
  # layouts put it under nvidia/cu13 instead; take the first folder that holds include/nccl.h.
  nccl=$("$py" - 2> /dev/null << 'EOF' || true
import os
candidates = []
try:
    import nvidia.nccl as m
    candidates += list(m.__path__)
except ImportError:
    pass
try:
    import nvidia
    for p in nvidia.__path__:
        candidates += [os.path.join(p, "nccl"), os.path.join(p, "cu13"), os.path.join(p, "cu13", "nccl")]
except ImportError:
    pass
for c in candidates:
    if os.path.isfile(os.path.join(c, "include", "nccl.h")):
        print(c)
        break
EOF
)
fi
nccl=${nccl:-${NCCL_ROOT:-}}
[ -n "$nccl" ] && note "NCCL: $nccl" || note "NCCL: no pip nvidia-nccl package found (NCCL_ROOT unset)"

gloo_dir=
if [ -n "$torch_include" ] && [ -f "$torch_include/gloo/algorithm.h" ]; then
  note "Gloo: LibTorch's own headers ($torch_include/gloo); the carried libgloo-dev stays unused"
else
  gloo_debs=("$src"/gloo/*.deb)
  if [ ${#gloo_debs[@]} -gt 0 ]; then
    mkdir -p "$prefix/gloo"
    for d in "${gloo_debs[@]}"; do extract "$d" "$prefix/gloo"; done
    gloo_dir=$prefix/gloo/usr/include
    note "Gloo: LibTorch has none${torch_include:+ in $torch_include}; using Debian 12's ($gloo_dir)"
  else
    note "Gloo: LibTorch has none and no gloo/*.deb was carried: configure will ask for GLOO_INCLUDE_DIR"
  fi
fi

q() { printf "'%s'" "$1"; } # the values hold no single quotes: paths made above
echo "export CMAKE_PREFIX_PATH=$(q "${torch_cmake:+$torch_cmake:}$prefix/usr")\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}"
cpath=$prefix/usr/include/x86_64-linux-gnu
if [ -n "$nccl" ]; then
  echo "export NCCL_ROOT=$(q "$nccl")"
  echo "export CPATH=$(q "$cpath:$nccl/include")\${CPATH:+:\$CPATH}"
  echo "export LIBRARY_PATH=$(q "$nccl/lib")\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
  echo "export LD_LIBRARY_PATH=$(q "$nccl/lib")\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
else
  echo "export CPATH=$(q "$cpath")\${CPATH:+:\$CPATH}"
fi
[ -n "$gloo_dir" ] && echo "export JEPA_GLOO_INCLUDE_DIR=$(q "$gloo_dir")"
if [ -d "$prefix/usr/share/datasets/fashion-mnist" ]; then
  echo "export JEPA_FASHION_MNIST=$(q "$prefix/usr/share/datasets/fashion-mnist")"
fi
if [ -x "$prefix/usr/bin/pkgconf" ]; then
  # Only the carried .pc files, their /usr paths read inside PREFIX. pkgconf needs the carried
  # libpkgconf, which is not on LD_LIBRARY_PATH (above): a wrapper gives it to pkgconf alone.
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' \
    "'$multi'" "'$prefix/usr/bin/pkgconf'" > "$prefix/usr/bin/jepa-pkgconf"
  chmod +x "$prefix/usr/bin/jepa-pkgconf"
  echo "export PKG_CONFIG=$(q "$prefix/usr/bin/jepa-pkgconf")"
  echo "export PKG_CONFIG_LIBDIR=$(q "$multi/pkgconfig:$prefix/usr/share/pkgconfig")"
  echo "export PKG_CONFIG_SYSROOT_DIR=$(q "$prefix")"
fi
