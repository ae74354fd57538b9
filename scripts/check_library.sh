#!/usr/bin/env bash
# Checks the built libsentiment.so is self-contained and exports exactly the C API:
#   - NEEDED only libc/libm/libstdc++/libgcc_s/ld-linux plus oneDNN and libgomp;
#   - no toolchain path in RUNPATH;
#   - dynamic symbols defined = sentiment_* only, and every function in include/sentiment.h.
# Usage: scripts/check_library.sh [path/to/libsentiment.so]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
lib="${1:-$root/.build/release/libsentiment.so}"
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; fi; }

needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort)
unexpected=$(echo "$needed" | grep -Ev '^(libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2|libdnnl\.so\.[0-9]+|libgomp\.so\.1)$' || true)
check "NEEDED has only libc-family, oneDNN and libgomp (got: $(echo $needed))" '[ -z "$unexpected" ]'
runpath=$(readelf -d "$lib" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
check "RUNPATH has no toolchain path (got: '${runpath}')" '! echo "$runpath" | grep -q swift'

exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' | sed 's/@.*//' | sort -u)
others=$(echo "$exported" | grep -v '^sentiment_' | grep -v '^$' || true)
check "only sentiment_* symbols are exported (others: $(echo $others | head -c 200))" '[ -z "$others" ]'
declared=$(grep -oE '^SENTIMENT_API [^(]*\b(sentiment_[a-z0-9_]+)\(' "$root/include/sentiment.h" | grep -oE 'sentiment_[a-z0-9_]+\($' | tr -d '(' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
check "every header function is exported (missing: $(echo $missing))" '[ -z "$missing" ]'
check "every exported function is in the header (extra: $(echo $extra))" '[ -z "$extra" ]'
echo "library: $pass passed, $fail failed"
[ "$fail" = 0 ]
