#!/usr/bin/env python3
"""Peak memory of a training run with and without gradient accumulation.

    python3 bench/accumulation_rss.py [--batch 256] [--parts 1,4] [--steps 3] [--max-length 128] [--long]

Each run is `sentiment.train` in its own process (the default model, SST-2's train.tsv, no
evaluation, nothing saved) and reports that process's peak RSS (ru_maxrss) and its median step
time. `--parts` lists gradient_accumulation_steps values; `--long` trains on SST-2 sentences
joined into texts of about `--max-length` tokens, where activations dominate the memory.
Prints one line per run and the ratio of each to the first.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bindings", "python", "src"))

CHILD = r"""
import json, resource, sys, time
import sentiment
config = json.loads(sys.argv[1])
times = []
last = [time.monotonic()]
def progress(event):
    if event["event"] == "step":
        now = time.monotonic()
        times.append(now - last[0])
        last[0] = now
result = sentiment.train(config, progress=progress)
print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "step_seconds": times[1:] or times, "steps": result["steps"]}))
"""


def default_model():
    cache = os.environ.get("SENTIMENT_CACHE_DIR", os.path.expanduser("~/.cache/sentiment"))
    return os.environ.get("SENTIMENT_MODEL_DIR", os.path.join(cache, "models", "all-MiniLM-L6-v2"))


def default_data():
    found = subprocess.run([os.path.join(REPO, "scripts", "find_data.sh")], capture_output=True, text=True)
    return found.stdout.strip() or os.path.join(REPO, "..", "shared", "data", "sst2")


def long_texts(train, out, examples, words):
    """SST-2 sentences joined into texts of about `words` words, labelled by the first sentence."""
    rows = []
    with open(train, encoding="utf-8") as f:
        next(f)
        for line in f:
            text, label = line.rstrip("\n").split("\t")
            rows.append((text, label))
    with open(out, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        i = 0
        for _ in range(examples):
            text, label = rows[i % len(rows)]
            parts = [text]
            while sum(len(p.split()) for p in parts) < words:
                i += 1
                parts.append(rows[i % len(rows)][0])
            i += 1
            f.write(" ".join(parts) + "\t" + label + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--parts", default="1,4")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--long", action="store_true")
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--data", default=default_data())
    args = ap.parse_args()
    train = os.path.join(args.data, "train.tsv")
    with tempfile.TemporaryDirectory() as tmp:
        if args.long:
            train = os.path.join(tmp, "long.tsv")
            long_texts(os.path.join(args.data, "train.tsv"), train, args.batch * args.steps, args.max_length)
        base = None
        for parts in [int(p) for p in args.parts.split(",")]:
            config = {"model_dir": args.model, "train_file": train, "save_strategy": "no",
                      "train_batch_size": args.batch, "max_steps": args.steps, "max_length": args.max_length,
                      "max_train_examples": args.batch * args.steps, "threads": args.threads,
                      "gradient_accumulation_steps": parts}
            out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(config)], capture_output=True, text=True,
                                 env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "bindings", "python", "src")))
            if out.returncode != 0:
                sys.exit(out.stderr)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            base = base or r
            print(f"batch {args.batch}, {parts} micro-batch(es), max_length {args.max_length}"
                  f"{' (long texts)' if args.long else ''}: peak RSS {r['rss_mb']:.0f} MB "
                  f"({r['rss_mb'] / base['rss_mb']:.2f}x), median step {statistics.median(r['step_seconds']):.2f} s")


if __name__ == "__main__":
    main()
