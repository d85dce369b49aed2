#!/usr/bin/env bash
# Installs every dependency of jepa-lab from Debian packages. Idempotent: packages already
# present are left alone, so running it twice costs one `apt-get` check.
set -euo pipefail

# One list, shared with scripts/check-torch2.sh: scripts/debian-packages.txt.
mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$(dirname "$0")/debian-packages.txt" | awk '{print $1}')

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
