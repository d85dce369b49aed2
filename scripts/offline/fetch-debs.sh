#!/usr/bin/env bash
# Offline builds, step 1, on a Debian 12 machine that reaches Debian's mirror: downloads the .deb
# files that a machine with a LibTorch install (PyTorch's, with CUDA) but no package access needs
# to build and test jepa-lab, into DIR (default .device-deps/, git-ignored), beside a copy of
# unpack-debs.sh, so that carrying DIR is enough. Step 2 is scripts/offline/unpack-debs.sh, there.
#
#   scripts/offline/fetch-debs.sh [--ui] [--no-dataset] [DIR]
#     --ui          also carry what `jepa ui` needs (cpp-httplib, pkgconf); the GPU check builds
#                   with -DJEPA_BUILD_UI=OFF and does not need it
#     --no-dataset  leave out dataset-fashion-mnist (about 30 MB of the set)
#
# The list comes from scripts/debian-packages.txt: its untagged lines (libraries and the dataset;
# the tags are explained there), plus every package they need, minus what any machine that can
# compile C++ already has (the closure of build-essential: libc6, libstdc++6, libssl3, ...).
# unpack-debs.sh points the -dev packages' links at that machine's own copies of those. Gloo's
# headers ([gloo]) go to DIR/gloo/, for unpack-debs.sh to use only where LibTorch has none.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

ui=0
dataset=1
dir=
for a in "$@"; do
  case "$a" in
    --ui) ui=1 ;;
    --no-dataset) dataset=0 ;;
    -*)
      echo "usage: fetch-debs.sh [--ui] [--no-dataset] [DIR]" >&2
      exit 2
      ;;
    *) dir=$a ;;
  esac
done
dir=${dir:-$repo/.device-deps}

# Which Debian the .debs come from matters: they must be the ones this project is tested with.
if ! grep -q '^VERSION_CODENAME=bookworm' /etc/os-release; then
  echo "fetch-debs: run this on Debian 12 (bookworm): its packages are the ones carried" >&2
  exit 2
fi

# Package names by tag. A line's tags are the bracketed words of its comment.
list() { # list TAG-REGEX: names whose comment's tags match; "" = untagged lines
  awk -v want="$1" '
    /^[[:space:]]*(#|$)/ { next }
    { tags = ""; if (match($0, /#[[:space:]]*\[[^]]*\]/)) tags = substr($0, RSTART, RLENGTH)
      if (/host-only/) next
      if (want == "" ? tags == "" : tags ~ want) print $1 }' "$repo/scripts/debian-packages.txt"
}
mapfile -t wanted < <(list "")
if [ "$dataset" = 0 ]; then
  mapfile -t wanted < <(printf '%s\n' "${wanted[@]}" | grep -v '^dataset-')
fi
if [ "$ui" = 1 ]; then
  # pkgconf rather than the [tool] pkg-config: its binary runs from a prefix with PKG_CONFIG_LIBDIR.
  mapfile -t extra < <(list '\[ui\]' | grep -v -x pkg-config)
  wanted+=("${extra[@]}" pkgconf)
fi
mapfile -t gloo < <(list '\[gloo\]')

# Everything apt would install on an empty system for these, as its resolver picks alternatives.
closure() {
  local empty
  empty=$(mktemp)
  apt-get -s -o Dir::State::Status="$empty" install --no-install-recommends "$@" 2> /dev/null \
    | awk '/^Inst / {print $2}' | sort -u
  rm -f "$empty"
}
mapfile -t base < <(closure build-essential)
mapfile -t carried < <(comm -23 <(closure "${wanted[@]}") <(printf '%s\n' "${base[@]}"))
if [ ${#carried[@]} -eq 0 ]; then
  echo "fetch-debs: apt resolved nothing: is the package list up to date (apt-get update)?" >&2
  exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -f "$dir"/*.deb "$dir"/gloo/*.deb
mkdir -p "$dir/gloo"
echo "fetch-debs: ${#carried[@]} packages into $dir (and ${gloo[*]} into $dir/gloo)"
# apt-get download runs as the _apt user where it can; it needs to write the folder.
(cd "$dir" && apt-get download "${carried[@]}" 2>&1 | grep -v -E '^(Get:|W: Download is performed unsandboxed)' || true)
# Headers only: Gloo's libraries are inside LibTorch, so none of its runtime packages.
(cd "$dir/gloo" && apt-get download "${gloo[@]}" 2>&1 | grep -v -E '^(Get:|W: Download is performed unsandboxed)' || true)

missing=()
for p in "${carried[@]}"; do compgen -G "$dir/${p}_*.deb" > /dev/null || missing+=("$p"); done
for p in "${gloo[@]}"; do compgen -G "$dir/gloo/${p}_*.deb" > /dev/null || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fetch-debs: not downloaded: ${missing[*]}" >&2
  exit 1
fi
cp "$here/unpack-debs.sh" "$dir/"
printf '%s\n' "${carried[@]}" > "$dir/PACKAGES"

bytes=$(du -cb "$dir"/*.deb "$dir"/gloo/*.deb "$dir/unpack-debs.sh" | tail -1 | cut -f1)
printf 'fetch-debs: %d .debs, %.1f MiB in all (the GPU machine takes at most 64 MiB of carried files)\n' \
  "$(find "$dir" -name '*.deb' | wc -l)" "$(echo "$bytes / 1048576" | bc -l)"
# Over 60 MiB leaves no room for the checkout itself, which travels in the same 64 MiB.
if [ "$bytes" -gt $((60 * 1048576)) ]; then
  echo "fetch-debs: too big to carry; the largest:" >&2
  ls -S -l "$dir"/*.deb | head -5 >&2
  exit 1
fi
