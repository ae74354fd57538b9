#!/usr/bin/env python3
"""Do two builds of libsentiment.so compute the same numbers, bit for bit?

    python3 tools/same_results.py OLD.so NEW.so [--model DIR] [--data DIR] [--threads 2] [--bf16]

For a refactor that must not change behaviour. With each library (in its own process) it
trains 4 steps of three recipes on the first 2,048 SST-2 training rows (the default `small`
recipe with dropout and R-Drop, the reference recipe, and lr 1e-4 without R-Drop), then
classifies the first 200 dev sentences with each trained model in fp32, int8, and at batch 1.
It prints the first difference (losses, eval loss and accuracy, logits, all as exact reprs)
and exits 1, or prints "identical" and exits 0. About 1.5 minutes per library on 2 cores.
`--bf16` trains every recipe in mixed precision ("bf16": true) and classifies in bf16 too
(needs AVX512-BF16 or AMX).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = [
    ("small", {"learning_rate": 1.5e-4, "warmup_ratio": 0.1, "head": "bert", "rdrop_alpha": 4.0}),
    ("reference", {"learning_rate": 2e-5}),
    ("no_rdrop", {"learning_rate": 1e-4, "head": "bert"}),
]


def worker(model, data, threads, out_path, bf16):
    sys.path.insert(0, os.path.join(REPO, "bindings", "python", "src"))
    import sentiment
    tmp = tempfile.mkdtemp()
    try:
        with open(os.path.join(data, "train.tsv"), encoding="utf-8") as f:
            train = f.readlines()[:2049]
        with open(os.path.join(data, "dev.tsv"), encoding="utf-8") as f:
            dev = f.readlines()[:201]
        for name, lines in (("train.tsv", train), ("dev.tsv", dev)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.writelines(lines)
        texts = [line.split("\t")[0] for line in dev[1:]]
        out = {}
        for name, extra in RECIPES:
            config = {"model_dir": model, "train_file": os.path.join(tmp, "train.tsv"),
                      "eval_file": os.path.join(tmp, "dev.tsv"), "output_dir": os.path.join(tmp, name),
                      "train_batch_size": 256, "max_steps": 4, "seed": 42, "threads": threads, **extra,
                      **({"bf16": True} if bf16 else {})}
            result = sentiment.train(config)
            run = {"loss": [repr(x) for x in result["curve"]["loss"]],
                   "eval": [[repr(e["eval_loss"]), repr(e["eval_accuracy"])] for e in result["epochs"]]}
            for precision in ("fp32", "int8") + (("bf16",) if bf16 else ()):
                with sentiment.Model(os.path.join(tmp, name), precision=precision, threads=threads) as m:
                    run[precision] = [repr(x) for r in m.classify(texts, batch_size=32) for x in r["logits"]]
                    run[precision + " batch 1"] = [repr(x) for t in texts[:20] for x in m.classify([t])[0]["logits"]]
            out[name] = run
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(out, f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def first_difference(a, b, path=""):
    if type(a) is not type(b):
        return path, a, b
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            d = first_difference(a.get(k), b.get(k), f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path} (length)", len(a), len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else (path, a, b)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("libraries", nargs="*", help="OLD.so NEW.so")
    parser.add_argument("--model", help="model folder (default: scripts/fetch_model.sh's)")
    parser.add_argument("--data", help="folder with train.tsv and dev.tsv (default: scripts/find_data.sh's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="train in mixed precision bf16, classify in bf16 too")
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = args.model or subprocess.check_output([os.path.join(REPO, "scripts", "fetch_model.sh")], text=True).strip()
    data = args.data or subprocess.check_output([os.path.join(REPO, "scripts", "find_data.sh")], text=True).strip()
    if args.worker:
        worker(model, data, args.threads, args.worker[1], args.bf16)
        return 0
    if len(args.libraries) != 2:
        parser.error("give two libraries: OLD.so NEW.so")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, library in enumerate(args.libraries):
            out = os.path.join(tmp, f"{i}.json")
            env = {**os.environ, "SENTIMENT_LIBRARY": os.path.abspath(library)}
            subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", library, out,
                            "--model", model, "--data", data, "--threads", str(args.threads)]
                           + (["--bf16"] if args.bf16 else []), env=env, check=True)
            with open(out, encoding="utf-8") as f:
                results.append(json.load(f))
    difference = first_difference(*results)
    if difference:
        print(f"different at {difference[0]}: {difference[1]!r} vs {difference[2]!r}")
        return 1
    count = sum(len(v) for run in results[0].values() for v in run.values())
    print(f"identical: {count} losses, eval figures and logits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
