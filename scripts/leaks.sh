#!/usr/bin/env bash
# valgrind --leak-check=full over N load/classify/free cycles, a save and a short train.
#
#   scripts/leaks.sh [CYCLES]        (default 1000)
#
# valgrind 3.19 cannot decode AVX-512, so this uses its own build of the library for
# x86-64-v3 (AVX2) in .build-valgrind and caps oneDNN at AVX2 (DNNL_MAX_CPU_ISA). The
# Swift runtime's type-metadata caches ("possibly lost", a fixed 288 bytes) are suppressed
# by hardening/valgrind.supp, which says why; the run fails if anything else is definitely,
# indirectly or possibly lost. libgomp, oneDNN and ld.so keep their one-time allocations
# reachable ("still reachable", not an error).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cycles=${1:-1000}
SENTIMENT_MARCH=x86-64-v3 swift build -c release --product sentiment --scratch-path .build-valgrind >&2
lib=$root/.build-valgrind/release
bin=$root/.build-valgrind/hardening-c
make -s -C hardening/c BIN="$bin" LIBDIR="$lib" CFLAGS="-O1 -g -march=x86-64-v3" "$bin/cycles"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 hardening/catalogue/catalogue.py "$work" >/dev/null
log=$work/valgrind.log
DNNL_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1 valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --suppressions=hardening/valgrind.supp \
    --log-file="$log" "$bin/cycles" "$work/checkpoints/base" "$work/data/train.tsv" "$cycles" || status=$?
if ! grep -E 'definitely lost|indirectly lost|possibly lost|still reachable|suppressed|ERROR SUMMARY' "$log" | sed 's/^==[0-9]*== */valgrind: /'; then
    echo "valgrind gave no leak summary (status ${status:-0}); the end of its log:" >&2
    tail -30 "$log" >&2
    exit 1
fi
if [ "${status:-0}" != 0 ]; then
    grep -B2 -A25 'definitely lost in\|indirectly lost in\|Invalid read\|Invalid write\|uninitialised' "$log" | head -80 >&2
    exit 1
fi
