#!/usr/bin/env bash
# Fails if the library's Swift sources contain a construct that traps the host process on
# purpose: try!, a force unwrap (x!), fatalError, precondition, assert, unsafelyUnwrapped.
# (Implicit traps such as overflow or an index out of range are what the catalogue, the
# fuzzers and the sanitizer runs look for.)
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='try!|fatalError\(|precondition(Failure)?\(|assert(ionFailure)?\(|[]A-Za-z0-9_)]!([^=]|$)|unsafelyUnwrapped'
if hits=$(grep -rnE "$pattern" Sources --include='*.swift' | grep -vE '^[^:]+:[0-9]+:\s*//'); then
    echo "trapping constructs in Sources (return a SentimentError instead):" >&2
    echo "$hits" >&2
    exit 1
fi
echo "no try!, force unwrap, fatalError, precondition or assert in Sources"
