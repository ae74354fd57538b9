#!/usr/bin/env bash
# The main job on a fresh machine: installs dependencies, builds libsentiment.so and the
# C examples, fetches the default model (all-MiniLM-L6-v2), classifies sample sentences
# and evaluates the GLUE SST-2 dev set through the C example programs.
#
#   scripts/demo.sh [MODEL_DIR]       (default: the fetched all-MiniLM-L6-v2)
#
# Accuracy reflects the model's head: the default model ships no classifier, so it gets
# a fresh seeded head and scores near chance until it is fine-tuned.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/install_deps.sh
model="${1:-${SENTIMENT_MODEL_DIR:-$(scripts/fetch_model.sh)}}"
data="$(scripts/find_data.sh)"
swift build -c release --product sentiment
make -s -C examples/c LIBDIR="$root/.build/release"
echo
echo "== classify (model: $model)"
examples/c/classify "$model" \
    "a charming and often affecting journey ." \
    "the movie is a disaster from start to finish ." \
    "an utterly predictable , lifeless script ." \
    "one of the best films of the year ."
echo
echo "== evaluate on SST-2 dev ($data/dev.tsv)"
examples/c/evaluate "$model" "$data/dev.tsv"
