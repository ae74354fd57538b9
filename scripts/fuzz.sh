#!/usr/bin/env bash
# Fuzzes the public C API with libFuzzer (clang from the Swift toolchain).
#
#   scripts/fuzz.sh TARGET [SECONDS]     one of: request tokenizer safetensors tensors config vocab
#   scripts/fuzz.sh all [SECONDS]        every target, SECONDS each (default 60)
#
# Builds libsentiment.so with Swift's -sanitize=fuzzer,address (coverage + ASan) into
# .build-fuzz, the harness hardening/fuzz/fuzz_TARGET.c with -fsanitize=fuzzer,address,undefined
# into hardening/fuzz/build/, and runs it on the committed seeds (hardening/fuzz/corpus/TARGET,
# read only) plus the inputs it finds (hardening/fuzz/build/corpus/TARGET). A crash, sanitizer
# report, leak or 10 s hang stops the target and leaves the input in
# hardening/fuzz/build/crashes/. Prints one summary line per target
# ("fuzz TARGET: N executions in S s, C crashes") and exits 1 if any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
targets=(request tokenizer safetensors tensors config vocab)
[ $# -ge 1 ] || { echo "usage: $0 TARGET|all [SECONDS]   (targets: ${targets[*]})" >&2; exit 2; }
[ "$1" = all ] || targets=("$1")
seconds=${2:-60}

clang=$(dirname "$(readlink -f "$(command -v swift)")")/clang
build=$root/hardening/fuzz/build
mkdir -p "$build/crashes"
SENTIMENT_DYNAMIC_STDLIB=1 swift build -c release --product sentiment --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >&2
lib=$root/.build-fuzz/release
rm -rf "$build/work" && python3 hardening/catalogue/catalogue.py "$build/work" >/dev/null
export SENTIMENT_FUZZ_MODEL=$build/work/checkpoints/base
# Leaks are checked per input; the Swift runtime's one-time caches are not leaks of ours.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# The Swift runtime's backtracer, run when a target aborts, reads freed memory and buries the
# finding under an ASan report of its own.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}

failed=0
for t in "${targets[@]}"; do
    [ -f "hardening/fuzz/fuzz_$t.c" ] || { echo "no target $t" >&2; exit 2; }
    "$clang" -g -O1 -fsanitize=fuzzer,address,undefined -fuse-ld=lld -Iinclude $(pkg-config --cflags json-c) \
        "hardening/fuzz/fuzz_$t.c" -o "$build/fuzz_$t" -L"$lib" -Wl,-rpath,"$lib" -lsentiment $(pkg-config --libs json-c) -lm
    mkdir -p "$build/corpus/$t"
    log=$build/fuzz_$t.log
    before=$(ls "$build/crashes" | grep -c "^$t-" || true)
    status=0
    "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=262144 \
        -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" \
        "$build/corpus/$t" "hardening/fuzz/corpus/$t" >"$log" 2>&1 || status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    crashes=$(( $(ls "$build/crashes" | grep -c "^$t-" || true) - before ))
    echo "fuzz $t: $runs executions in $seconds s, $crashes new crash files, exit $status"
    if [ "$status" != 0 ]; then
        failed=1
        grep -m1 -A30 'ERROR\|==ERROR\|deadly signal\|Fatal error' "$log" >&2 || tail -30 "$log" >&2
    fi
done
exit $failed
