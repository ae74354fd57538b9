#!/usr/bin/env bash
# Runs every test on a fresh machine: installs dependencies, fetches the default model,
# builds the library, then runs
#   1. the library checks (self-contained .so, exported symbols = the header),
#   2. swift test (unit, PyTorch parity, C ABI) in release mode,
#   3. the C examples (classify, evaluate, a 2-step train on 32 rows) and the C ABI test program (json-c),
#   4. the Python binding's pytest suite.
# Stops at the first failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

stage() { printf '\n==> %s\n' "$*"; }

stage "dependencies"
scripts/install_deps.sh
export SENTIMENT_MODEL_DIR="${SENTIMENT_MODEL_DIR:-$(scripts/fetch_model.sh)}"
export SENTIMENT_DATA_DIR="${SENTIMENT_DATA_DIR:-$(scripts/find_data.sh)}"
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

stage "Python binding"
python3 -m pip install --quiet --disable-pip-version-check -e bindings/python
SENTIMENT_LIBRARY="$root/.build/release/libsentiment.so" python3 -m pytest -q bindings/python/tests
