#!/usr/bin/env bash
# The main job on a fresh machine: installs dependencies, builds libsentiment.so and the
# C examples, fetches the default model (all-MiniLM-L6-v2), fine-tunes it on GLUE SST-2
# through the Python binding (examples/python/finetune.py) with the recipe for small encoders
# (lr 1.5e-4, batch 256, 2 epochs, 10% warmup, linear decay, R-Drop alpha 4, BERT pooler head),
# prints the epochs table,
# writes the training curves as an SVG image, then classifies sample sentences with the
# fine-tuned model and evaluates it on the SST-2 dev set with the C examples, in fp32, in
# int8 (precision "int8", quantized at load, calibrated on 512 training sentences) and, where
# the CPU has AVX512-BF16 or AMX, in bf16, with a table of the accuracies and times. Training runs in mixed precision bf16 where
# the CPU has it (--fp32 turns it off) and says which it used.
#
#   scripts/demo.sh [--reference | --quick] [--fp32] [--resume] [MODEL_DIR]
#     --reference             the published DistilBERT recipe instead (lr 2e-5, batch 256,
#                             5 epochs: sentiment_train's defaults), its table shown next to
#                             the PyTorch run of the same recipe on the same model
#     --quick                 30 optimizer steps of the reference recipe at lr 1e-4 (a few
#                             minutes); 1e-4 because 2e-5 decayed over 30 steps barely moves the model
#     --fp32                  train in fp32 even where the CPU runs bf16
#     --resume                continue a stopped run from its last checkpoint (same options)
#     MODEL_DIR               start from this Hugging Face folder (default: all-MiniLM-L6-v2)
#   environment:
#     SENTIMENT_MAX_STEPS=N   stop after N optimizer steps (overrides --quick)
#     SENTIMENT_LEARNING_RATE learning rate (default: the recipe's; 1e-4 with --quick)
#     SENTIMENT_OUTPUT_DIR    where the model, train_result.json and curves.svg go
#                             (default: runs/sst2, runs/sst2-reference or runs/sst2-quick)
#
# bench/README.md gives the measured times of both recipes. Ctrl-C stops a run after the current
# step, shows the epochs finished so far and their curves, and ends the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
recipe=small
model=""
precision_flag=""
resume_flag=""
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1; recipe=reference ;;
        --fp32) precision_flag=--fp32 ;;
        --resume) resume_flag=--resume ;;
        --reference) recipe=reference ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        -*) echo "demo.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
        *) model="$arg" ;;
    esac
done
max_steps="${SENTIMENT_MAX_STEPS:-}"
learning_rate="${SENTIMENT_LEARNING_RATE:-}"
if [ "$quick" = 1 ]; then
    max_steps="${max_steps:-30}"
    learning_rate="${learning_rate:-1e-4}"
fi
default_out="$root/runs/sst2"
if [ "$recipe" = reference ]; then default_out="$root/runs/sst2-reference"; fi
if [ -n "$max_steps" ]; then default_out="$root/runs/sst2-quick"; fi
out="${SENTIMENT_OUTPUT_DIR:-$default_out}"

scripts/install_deps.sh
model="${model:-${SENTIMENT_MODEL_DIR:-$(scripts/fetch_model.sh)}}"
data="$(scripts/find_data.sh)"
swift build -c release --product sentiment
make -s -C examples/c LIBDIR="$root/.build/release"
export SENTIMENT_LIBRARY="$root/.build/release/libsentiment.so"
export PYTHONPATH="$root/bindings/python/src${PYTHONPATH:+:$PYTHONPATH}"

echo
echo "== before fine-tuning: SST-2 dev accuracy of $model"
examples/c/evaluate "$model" "$data/dev.tsv"

echo
echo "== fine-tune on SST-2 ($data/train.tsv) -> $out"
if [ -n "$max_steps" ]; then echo "   (stopping after $max_steps optimizer steps)"; fi
python3 examples/python/finetune.py "$model" "$data" "$out" --recipe "$recipe" $precision_flag $resume_flag \
    ${max_steps:+--max-steps "$max_steps"} ${learning_rate:+--lr "$learning_rate"}

echo
echo "== classify with the fine-tuned model ($out)"
examples/c/classify "$out" \
    "a charming and often affecting journey ." \
    "the movie is a disaster from start to finish ." \
    "an utterly predictable , lifeless script ." \
    "one of the best films of the year ."
echo
precisions="fp32 int8"
# bf16 inference where the CPU runs it (the library refuses it elsewhere, naming the CPU's ISA).
if examples/c/classify --json --precision bf16 "$out" "ok" >/dev/null 2>&1; then precisions="$precisions bf16"; fi
echo "== evaluate the fine-tuned model on SST-2 dev ($data/dev.tsv): ${precisions// /, }"
declare -A reports
for p in $precisions; do
    # int8 calibrated (SmoothQuant) on the first 512 training sentences: the dev set stays unseen.
    calibration=()
    if [ "$p" = int8 ]; then calibration=(--calibration-file "$data/train.tsv"); fi
    reports[$p]=$(examples/c/evaluate --precision "$p" "${calibration[@]}" "$out" "$data/dev.tsv")
    echo "${reports[$p]}"
    echo
done
field() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2"; }
echo "| precision | dev accuracy | seconds for $(field examples "${reports[fp32]}") sentences (batch 32) | load seconds |"
echo "|---|---|---|---|"
for p in $precisions; do
    echo "| $p | $(field accuracy "${reports[$p]}") | $(field seconds "${reports[$p]}") | $(field load "${reports[$p]}") |"
done
echo
echo "training curves: $out/curves.svg"
