#!/usr/bin/env bash
# ThreadSanitizer over the C programs that call the library from several threads.
#
#   scripts/tsan.sh
#
# Builds libsentiment.so with Swift's -sanitize=thread into .build-tsan, hardening/c's
# concurrency and races programs with clang -fsanitize=thread against it, and runs them on the
# tiny test model (hardening/catalogue). Any report fails the run.
#
# libgomp (OpenMP) is not instrumented, so TSan does not see its fork and join by itself:
# Parallel.forEach marks them (csystem_tsan_release/acquire, no-ops outside TSan). Without the
# marks, 2 compute threads gave 58 reports, each a parallel region's hand-over of its work.
# concurrency runs with 1 compute thread (its loads and trains say "threads": 1), races with 2,
# so parallel regions are checked too. oneDNN's own threads are not instrumented and not
# checked. No suppression is used.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
clang=$(dirname "$(readlink -f "$(command -v swift)")")/clang
SENTIMENT_DYNAMIC_STDLIB=1 swift build -c release --product sentiment --scratch-path .build-tsan \
    -Xswiftc -sanitize=thread -Xswiftc -parse-as-library >&2
lib=$root/.build-tsan/release
bin=$root/.build-tsan/hardening-c
# The toolchain's TSan runtime intercepts libdispatch, so the programs link it (and its blocks runtime).
swiftlib=$(dirname "$clang")/../lib/swift/linux
san="-fsanitize=thread -fuse-ld=lld -L$swiftlib -Wl,-rpath,$swiftlib -ldispatch -lBlocksRuntime"
make -s -C hardening/c CC="$clang" BIN="$bin" LIBDIR="$lib" SAN="$san" "$bin/concurrency" "$bin/races"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 hardening/catalogue/catalogue.py "$work" >/dev/null
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
model=$work/checkpoints/base
"$bin/concurrency" "$model" "$work/data/train.tsv" | tail -1
"$bin/races" "$model" 2 | tail -1
echo "tsan: no ThreadSanitizer report"
