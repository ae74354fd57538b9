#!/usr/bin/env bash
# AddressSanitizer + LeakSanitizer over the library, UndefinedBehaviorSanitizer over the C side.
#
#   scripts/sanitize.sh [CYCLES]      (default 200 load/classify/free cycles)
#
# Builds libsentiment.so with Swift's -sanitize=fuzzer,address into .build-fuzz (the same
# build scripts/fuzz.sh uses; Swift has no UBSan, its own checks trap instead, which the
# catalogue and the fuzzers would show as crashes), builds hardening/c with clang
# -fsanitize=address,undefined against it, and runs the catalogue, the concurrency tests,
# the free and save races (with 2 compute threads), the load/classify/free cycles and the C
# ABI test program. Any sanitizer report or leak fails the run. scripts/tsan.sh is the
# ThreadSanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cycles=${1:-200}
clang=$(dirname "$(readlink -f "$(command -v swift)")")/clang
SENTIMENT_DYNAMIC_STDLIB=1 swift build -c release --product sentiment --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >&2
lib=$root/.build-fuzz/release
bin=$root/.build-fuzz/hardening-c
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fuse-ld=lld"
make -s -C hardening/c CC="$clang" BIN="$bin" LIBDIR="$lib" SAN="$san"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 hardening/catalogue/catalogue.py "$work" >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
model=$work/checkpoints/base
"$bin/catalogue" "$work/cases.json"
"$bin/concurrency" "$model" "$work/data/train.tsv" | tail -1
"$bin/races" "$model" 2 | tail -1
"$bin/cycles" "$model" "$work/data/train.tsv" "$cycles"
if [ -n "${SENTIMENT_MODEL_DIR:-}" ]; then
    "$bin/abi_test" "$SENTIMENT_MODEL_DIR" | tail -1
fi
echo "sanitizers: no ASan, LSan or UBSan report"
