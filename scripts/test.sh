#!/usr/bin/env bash
# Runs every test on a fresh machine: installs dependencies, fetches the default model,
# builds the library, then runs
#   1. the library checks (self-contained .so, exported symbols = the header),
#   2. swift test (unit, PyTorch parity, C ABI) in release mode,
#   3. the C examples (classify, evaluate, a 2-step train on 32 rows) and the C ABI test program
#      (hardening/c/abi_test.c), both with json-c,
#   4. the Python binding's pytest suite (with the bad-input catalogue and the hardening tests),
#   4b. the sentiment command (Tests/cli), scripts/install.sh with a pkg-config build, and the wheel
#      of scripts/build_wheel.sh installed in a fresh venv (Tests/packaging),
#   5. hardening: the catalogue, the concurrency, races, fork and signal-storm tests through C (hardening/c), the fault
#      injection ladders over the catalogue and saves (hardening/c/ladder, sampled; INJECT_EVERY=1 for all),
#      the SIGKILL durability test (hardening/durability.py),
#   6. sanitizers: ASan/LSan/UBSan runs (scripts/sanitize.sh), ThreadSanitizer runs (scripts/tsan.sh),
#   7. a fuzz smoke of FUZZ_SECONDS (default 60) per libFuzzer target (scripts/fuzz.sh all),
#   8. valgrind's leak check over 1,000 load/classify/free cycles and a short train (scripts/leaks.sh).
# Stops at the first failing stage; prints each stage's time at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

times=()
last=$SECONDS
stage_name=""
stage() {
    [ -z "$stage_name" ] || times+=("$(printf '%4d s  %s' $((SECONDS - last)) "$stage_name")")
    stage_name=$*
    last=$SECONDS
    printf '\n==> %s\n' "$*"
}

stage "dependencies"
scripts/install_deps.sh
# Plain assignments, so a failed lookup stops the run here (export would hide its status).
SENTIMENT_MODEL_DIR="${SENTIMENT_MODEL_DIR:-$(scripts/fetch_model.sh)}"
SENTIMENT_DATA_DIR="${SENTIMENT_DATA_DIR:-$(scripts/find_data.sh)}"
export SENTIMENT_MODEL_DIR SENTIMENT_DATA_DIR
echo "model: $SENTIMENT_MODEL_DIR"
echo "data:  $SENTIMENT_DATA_DIR"

stage "build libsentiment.so"
swift build -c release --product sentiment
scripts/check_library.sh "$root/.build/release/libsentiment.so"

stage "swift test"
# Test bundles link the toolchain's shared Swift runtime (they cannot link the static one),
# in their own build folder so the shipped .so above stays the static build.
SENTIMENT_DYNAMIC_STDLIB=1 swift test -c release --scratch-path .build-test

stage "C examples and C ABI tests"
make -C examples/c check LIBDIR="$root/.build/release" MODEL="$SENTIMENT_MODEL_DIR" DATA="$SENTIMENT_DATA_DIR/dev.tsv"
make -C hardening/c check LIBDIR="$root/.build/release" MODEL="$SENTIMENT_MODEL_DIR"

stage "Python binding"
python3 -m pip install --quiet --disable-pip-version-check -e bindings/python
SENTIMENT_LIBRARY="$root/.build/release/libsentiment.so" python3 -m pytest -q bindings/python/tests

stage "CLI, install prefix, wheel"
# The sentiment command's subcommands; scripts/install.sh into a temporary prefix and a C program
# built with pkg-config; scripts/build_wheel.sh's wheel in a fresh venv.
swift build -c release --product sentiment-cli
python3 -m pytest -q Tests/cli Tests/packaging

stage "hardening: catalogue, fault injection, concurrency, races, fork and signals through C, durability"
scripts/check_traps.sh
make -s -C hardening/c LIBDIR="$root/.build/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 hardening/catalogue/catalogue.py "$work"
hardening/c/catalogue "$work/cases.json"
# Fault injection (hardening/c/ladder.c), sampled: every Kth point. INJECT_EVERY=1 runs them all.
every=${INJECT_EVERY:-4}
for mode in aligned io rlimit save; do
    if ! hardening/c/ladder "$mode" "$work/cases.json" --every "$every" --timeout 60 >"$work/ladder.out" 2>"$work/ladder.err"; then
        tail -40 "$work/ladder.out"; tail -5 "$work/ladder.err"; exit 1
    fi
    tail -1 "$work/ladder.out"
done
hardening/c/concurrency "$work/checkpoints/base" "$work/data/train.tsv"
hardening/c/races "$work/checkpoints/base" 2 | tail -1
hardening/c/fork "$SENTIMENT_MODEL_DIR" | tail -1
timeout 600 hardening/c/signals "$SENTIMENT_MODEL_DIR" "$SENTIMENT_DATA_DIR/train.tsv" 2 9 | tail -5
SENTIMENT_LIBRARY="$root/.build/release/libsentiment.so" python3 hardening/durability.py --kills 24 | tail -1

stage "sanitizers (ASan, LSan, UBSan, TSan)"
scripts/sanitize.sh
scripts/tsan.sh

stage "fuzz smoke"
scripts/fuzz.sh all "${FUZZ_SECONDS:-60}"

stage "valgrind leak check"
scripts/leaks.sh 1000

stage "done"
printf '%s\n' "${times[@]}"
printf '%4d s  total\n' "$SECONDS"
