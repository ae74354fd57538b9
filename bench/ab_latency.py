#!/usr/bin/env python3
"""Latency of two builds of libsentiment.so, interleaved in one process.

    python3 bench/ab_latency.py OLD.so NEW.so [--model DIR] [--precision fp32] [--batch 1]
                                [--rounds 7] [--sentences 200] [--threads 2]
                                [--also NAME=LIB.so[@MODEL_DIR] ...]

Loads the model with each library, then classifies the first --sentences dev sentences in
batches of --batch with each library in turn, --rounds times, so drift on a shared machine hits
both alike. Prints each library's median time per call (end to end: JSON in, tokenizer, encoder,
JSON out), the ratio new / old, and whether their logits agree bit for bit. Copy a build aside
before rebuilding (cp .build/release/libsentiment.so /tmp/old.so): both load at once.
Each --also adds one more library (and model, e.g. a calibrated int8 checkpoint) to the same
interleaved rounds, printed with its ratio to old.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward_bench import Ours, default_data_dir, default_model, interleaved_medians, read_dev  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--model", help="model folder (default: scripts/fetch_model.sh)")
    ap.add_argument("--data", help="folder with dev.tsv (default: scripts/find_data.sh)")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--also", action="append", default=[], metavar="NAME=LIB.so[@MODEL_DIR]",
                    help="another library (and model) in the same rounds")
    args = ap.parse_args()
    model = args.model or default_model()
    texts, _ = read_dev(os.path.join(args.data or default_data_dir(), "dev.tsv"))
    batches = [texts[i:i + args.batch] for i in range(0, min(args.sentences, len(texts)), args.batch)]
    runs = [("old", args.old, model), ("new", args.new, model)]
    for spec in args.also:
        name, _, rest = spec.partition("=")
        path, _, other = rest.partition("@")
        if not name or not path:
            ap.error(f"--also wants NAME=LIB.so[@MODEL_DIR], got {spec!r}")
        if name in [r[0] for r in runs]:
            ap.error(f"--also: the name {name!r} is taken")
        runs.append((name, path, other or model))
    libs = {}
    for name, path, folder in runs:
        os.environ["SENTIMENT_LIBRARY"] = os.path.abspath(path)
        libs[name] = Ours(folder, args.threads, precision=args.precision)
    same = all(libs["old"].logits(b) == libs["new"].logits(b) for b in batches[:20])
    for m in libs.values():
        for b in batches[:20]:
            m.logits(b)                                           # warm-up
    medians = interleaved_medians(libs, batches, args.rounds)
    old = medians["old"][0]
    for name, (seconds, calls) in medians.items():
        print(f"{name}: {args.precision} batch {args.batch} median {seconds * 1e3:.3f} ms per call over {calls} calls"
              + ("" if name == "old" else f", {seconds / old:.3f} of old"))
    print(f"new / old: {medians['new'][0] / old:.3f}; logits bit-identical on 20 calls: {same}")


if __name__ == "__main__":
    main()
