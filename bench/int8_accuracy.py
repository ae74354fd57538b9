#!/usr/bin/env python3
"""int8 accuracy against fp32 on fine-tuned models: ours without calibration (activations per
token only), ours calibrated on training sentences (SmoothQuant with the largest-range input
channels in fp32), and ONNX Runtime int8 (`quantize_dynamic`, its defaults), all in one run.

For each model folder: SST-2 dev accuracy of our fp32, then for each int8 form its accuracy, the
difference in points, the share of dev labels equal to fp32's, the label flips, the max and mean
|logit difference| against our fp32, and the int8 file's size as a share of fp32's. ONNX
Runtime's int8 is compared with its own fp32 (the same weights exported), and with ours.

    python3 bench/int8_accuracy.py MODEL_DIR [MODEL_DIR ...] [--calibration TRAIN.tsv] [--samples 512]
                                   [--alpha 0.4] [--outliers 16]

The calibration file defaults to SST-2's train.tsv (its first --samples sentences; dev is never
used). Needs torch, transformers, onnxruntime and onnx (for the ONNX Runtime rows), and a built
library (swift build -c release). bench/README.md has the figures.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_bench import Onnx, Ours, argmax, default_data_dir, export_onnx, read_dev  # noqa: E402


def compare(logits, ref, labels):
    diffs = [abs(a - b) for x, y in zip(logits, ref) for a, b in zip(x, y)]
    flips = sum(argmax(x) != argmax(y) for x, y in zip(logits, ref))
    return {"accuracy": sum(argmax(x) == y for x, y in zip(logits, labels)) / len(labels),
            "agreement": 1 - flips / len(ref), "flips": flips,
            "max_diff": max(diffs), "mean_diff": sum(diffs) / len(diffs)}


def batched(runtime, texts, size=32):
    out = []
    for i in range(0, len(texts), size):
        out += runtime.logits(texts[i:i + size])
    return out


def evaluate_model(model_dir, args, texts, labels):
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32_dir = os.path.join(tmp, "fp32")
        Ours(model_dir, args.threads).save(fp32_dir)    # HF layout with its head: every runtime reads the same weights
        fp32 = batched(Ours(fp32_dir, args.threads), texts)
        size = os.path.getsize(os.path.join(fp32_dir, "model.safetensors"))
        rows["sentiment fp32"] = compare(fp32, fp32, labels)
        forms = {"sentiment int8 (no calibration)": {},
                 f"sentiment int8 (calibrated: alpha {args.alpha}, {args.outliers} fp32 ch.)": {
                     "calibration_file": args.calibration, "calibration_samples": args.samples,
                     "smoothquant_alpha": args.alpha, "outlier_channels": args.outliers}}
        for name, extra in forms.items():
            out = os.path.join(tmp, name.replace(" ", "_"))
            Ours(fp32_dir, args.threads).save(out, precision="int8", **extra)
            rows[name] = compare(batched(Ours(out, args.threads, precision="int8"), texts), fp32, labels)
            rows[name]["size"] = os.path.getsize(os.path.join(out, "model.safetensors")) / size
        if not args.no_onnx:
            export_onnx(fp32_dir, fp32_dir)
            ort_fp32 = batched(Onnx(fp32_dir, args.threads), texts)
            ort_int8 = batched(Onnx(fp32_dir, args.threads, int8=True), texts)
            rows["ONNX Runtime int8 vs its fp32"] = compare(ort_int8, ort_fp32, labels)
            rows["ONNX Runtime int8 vs its fp32"]["size"] = (
                os.path.getsize(os.path.join(fp32_dir, "model.int8.onnx"))
                / os.path.getsize(os.path.join(fp32_dir, "model.onnx")))
            rows["ONNX Runtime fp32 vs ours"] = compare(ort_fp32, fp32, labels)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="fine-tuned model folders")
    ap.add_argument("--data", default=None, help="folder with dev.tsv (and train.tsv, the default calibration)")
    ap.add_argument("--calibration", help="calibration sentences (default: DATA/train.tsv)")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--alpha", type=float, default=0.4, help="smoothquant_alpha")
    ap.add_argument("--outliers", type=int, default=16, help="outlier_channels: input channels per layer in fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime rows")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    data = args.data or default_data_dir()
    args.calibration = args.calibration or os.path.join(data, "train.tsv")
    texts, labels = read_dev(os.path.join(data, "dev.tsv"))
    results = {}
    for model in args.models:
        rows = evaluate_model(model, args, texts, labels)
        results[model] = rows
        base = rows["sentiment fp32"]["accuracy"]
        print(f"\n{model}  (SST-2 dev, {len(texts)} sentences; fp32 accuracy {base:.4f})")
        print(f"  {'':44s} {'accuracy':>8s} {'points':>7s} {'labels = ref':>12s} {'flips':>5s} {'max diff':>8s} "
              f"{'mean diff':>9s} {'size':>5s}")
        for name, r in rows.items():
            if name == "sentiment fp32":
                continue
            ref = base if name.startswith("sentiment") else rows.get("ONNX Runtime fp32 vs ours", r)["accuracy"]
            points = (r["accuracy"] - ref) * 100
            size = f"{r['size'] * 100:4.0f}%" if "size" in r else ""
            print(f"  {name:44s} {r['accuracy']:8.4f} {points:+7.2f} {r['agreement'] * 100:11.2f}% {r['flips']:5d} "
                  f"{r['max_diff']:8.4f} {r['mean_diff']:9.5f} {size:>5s}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
