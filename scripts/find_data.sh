#!/usr/bin/env bash
# Prints the folder holding GLUE SST-2 (train.tsv, dev.tsv): $SENTIMENT_DATA_DIR, then
# ./data/sst2, then ../shared/data/sst2 (relative to the repository root).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
for d in "${SENTIMENT_DATA_DIR:-}" "$root/data/sst2" "$root/../shared/data/sst2"; do
    if [ -n "$d" ] && [ -f "$d/dev.tsv" ]; then
        (cd "$d" && pwd)
        exit 0
    fi
done
cat >&2 <<'MSG'
error: GLUE SST-2 not found. Looked in $SENTIMENT_DATA_DIR, ./data/sst2 and ../shared/data/sst2.
Download the GLUE SST-2 zip (https://dl.fbaipublicfiles.com/glue/data/SST-2.zip), unzip it, and
point SENTIMENT_DATA_DIR at the folder holding train.tsv and dev.tsv.
MSG
exit 1
