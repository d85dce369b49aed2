#!/usr/bin/env bash
# The data room's tests under AddressSanitizer and UndefinedBehaviorSanitizer: the JPEG decoder
# (libjpeg's longjmp error path, crop decodes, a few hundred mutated files), the resample, the
# epoch loader's threads and buffer pool. host/data has no LibTorch, so this compiles its sources
# and the two test files directly, in about a minute, into build-sanitize/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-sanitize}
mkdir -p "$out"
flags=(-std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
       -Ihost -Itests/support "-DJEPA_SOURCE_DIR=\"$PWD\"")
libs=(-lgtest -lgtest_main -lturbojpeg -ljpeg -lpng -lz -lfmt -lpthread)
for t in data_test jpeg_test; do
  g++ "${flags[@]}" "tests/unit/$t.cpp" host/data/*.cpp -o "$out/$t" "${libs[@]}" &
done
wait
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in data_test jpeg_test; do
  "$out/$t" --gtest_brief=1 2> "$out/$t.log" || { tail -50 "$out/$t.log"; echo "check-sanitize: $t failed" >&2; exit 1; }
done
echo "check-sanitize: data_test and jpeg_test clean under ASan + UBSan"
