#!/usr/bin/env python3
"""Batch-1 latency of int8 with and without calibration, interleaved in one process.

    python3 bench/int8_latency.py MODEL_DIR [--calibration TRAIN.tsv] [--rounds 7] [--sentences 200]

Saves MODEL_DIR as an int8 checkpoint twice (no calibration; calibrated on the first 512
sentences of --calibration with the defaults), loads both, then classifies the first
--sentences dev sentences one at a time with each in turn, --rounds times, so drift on a shared
machine hits both alike. Prints each form's median latency per sentence (end to end: JSON in,
tokenizer, encoder, JSON out) and the ratio. Needs a built library (swift build -c release).
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_bench import Ours, default_data_dir, interleaved_medians, read_dev  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--data", help="folder with dev.tsv and train.tsv (default: scripts/find_data.sh)")
    ap.add_argument("--calibration", help="calibration sentences (default: DATA/train.tsv)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--outliers", type=int, help="outlier_channels of the calibrated form (default: the library's)")
    args = ap.parse_args()
    data = args.data or default_data_dir()
    texts, _ = read_dev(os.path.join(data, "dev.tsv"))
    texts = texts[:args.sentences]
    calibrated = {"calibration_file": args.calibration or os.path.join(data, "train.tsv")}
    if args.outliers is not None:
        calibrated["outlier_channels"] = args.outliers
    forms = {"int8": {}, "int8 calibrated": calibrated}
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for name, extra in forms.items():
            out = os.path.join(tmp, name.replace(" ", "_"))
            Ours(args.model, args.threads).save(out, precision="int8", **extra)
            models[name] = Ours(out, args.threads, precision="int8")
        for m in models.values():
            for t in texts[:20]:
                m.logits([t])                                     # warm-up
        medians = interleaved_medians(models, [[t] for t in texts], args.rounds)
    for name, (seconds, calls) in medians.items():
        print(f"{name:16s} batch-1 median {seconds * 1e3:.3f} ms over {calls} calls")
    print(f"calibrated / plain: {medians['int8 calibrated'][0] / medians['int8'][0]:.3f}")


if __name__ == "__main__":
    main()
