#!/usr/bin/env python3
"""Tokenizer speed: our `sentiment-bench tokenizer` vs Hugging Face BertTokenizerFast, single thread.

Both encode every sentence of SST-2 train.tsv with [CLS]/[SEP] and truncation to max_length 128.
HF is timed two ways: one call per sentence (what our bench does) and one batch call over all sentences
(no Python loop; still one thread: TOKENIZERS_PARALLELISM=false, RAYON_NUM_THREADS=1).
Prints each run, medians and ratios. The machine is shared and noisy: compare medians of several reps.

Usage: python3 bench/tokenizer_bench.py [--reps 7] [--bin PATH] [--model DIR] [--data FILE]
Build first: swift build -c release --product sentiment-bench
"""
import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # before tokenizers is imported
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def default_model():
    if os.environ.get("SENTIMENT_MODEL_DIR"):
        return os.environ["SENTIMENT_MODEL_DIR"]
    cache = os.environ.get("SENTIMENT_CACHE_DIR", str(Path.home() / ".cache/sentiment"))
    return f"{cache}/models/all-MiniLM-L6-v2"


def default_data():
    for d in [os.environ.get("SENTIMENT_DATA_DIR"), ROOT / "data/sst2", ROOT.parent / "shared/data/sst2"]:
        if d and (Path(d) / "train.tsv").exists():
            return str(Path(d) / "train.tsv")
    sys.exit("SST-2 train.tsv not found: set SENTIMENT_DATA_DIR or pass --data")


def default_bin():
    for p in [ROOT / ".build/release/sentiment-bench", ROOT / ".build-tok/release/sentiment-bench"]:
        if p.exists():
            return str(p)
    sys.exit("sentiment-bench not built: swift build -c release --product sentiment-bench (or pass --bin)")


def read_sentences(path):
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rsplit("\t", 1)[0] for line in lines[1:]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    data = args.data or default_data()
    binary = args.bin or default_bin()

    from transformers import BertTokenizerFast
    import tokenizers
    tok = BertTokenizerFast.from_pretrained(args.model)
    sentences = read_sentences(data)
    n = len(sentences)

    def hf_per_sentence():
        t = time.perf_counter()
        total = 0
        for s in sentences:
            total += len(tok(s, max_length=128, truncation=True)["input_ids"])
        return time.perf_counter() - t, total

    def hf_batch():
        t = time.perf_counter()
        ids = tok(sentences, max_length=128, truncation=True)["input_ids"]
        return time.perf_counter() - t, sum(map(len, ids))

    def hf_backend_batch():  # the Rust tokenizer alone, without transformers' Python wrapping
        backend = tok.backend_tokenizer
        t = time.perf_counter()
        enc = backend.encode_batch(sentences)
        return time.perf_counter() - t, sum(len(e.ids) for e in enc)

    results = {}
    for name, fn in [("hf_per_sentence", hf_per_sentence), ("hf_batch", hf_batch),
                     ("hf_backend_encode_batch", hf_backend_batch)]:
        times = []
        for _ in range(args.reps):
            dt, total = fn()
            times.append(dt)
        results[name] = times
        print(f"{name:26s} ids={total} times(s)=" + " ".join(f"{t:.3f}" for t in times), flush=True)

    out = subprocess.run([binary, "tokenizer", "--model", args.model, "--data", data, "--reps", str(args.reps)],
                         check=True, capture_output=True, text=True).stdout
    ours = json.loads(out.strip().splitlines()[-1])
    results["ours"] = ours["times_s"]
    print(f"{'ours (sentiment-bench)':26s} ids={ours['ids']} times(s)=" + " ".join(f"{t:.3f}" for t in ours["times_s"]))

    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\n{n} sentences, {args.reps} reps, single thread, tokenizers {tokenizers.__version__}")
    for k, v in med.items():
        print(f"  median {k:26s} {v:8.3f} s  {v / n * 1e6:7.2f} us/sentence")
    for k in ["hf_per_sentence", "hf_batch", "hf_backend_encode_batch"]:
        print(f"  {k} / ours = {med[k] / med['ours']:.1f}x")


if __name__ == "__main__":
    main()
