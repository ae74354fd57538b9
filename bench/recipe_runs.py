#!/usr/bin/env python3
"""Seed spread of a fine-tuning recipe: full SST-2 runs with several seeds, a table of dev accuracy.

    python3 bench/recipe_runs.py [--recipe small|reference] [--set KEY=VALUE ...] [--seeds 42,44,46]
                                 [--stop-after-epochs N] [--parallel 2] [--model DIR] [--data DIR]
                                 [--out DIR]

Each seed is one `sentiment.train` run of the recipe (examples/python/finetune.py's RECIPES; --set
overrides train config keys, values parsed as JSON where they can be) in its own process, with
save_strategy "no". --stop-after-epochs N ends a run after epoch N's evaluation; the schedule
still spans the recipe's epochs (e.g. the reference recipe's first 2 of 5 epochs). --parallel P
runs P seeds at once with 2 / P threads each and OMP_WAIT_POLICY=passive (two 1-thread runs
take about 11 minutes per epoch at batch 256 here; one 2-thread run about 5.5).

Prints a row per seed (SST-2 dev accuracy after each epoch), the mean, min and max per epoch and,
for the reference recipe, PyTorch's run; writes each run's result JSON and log to --out.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "examples", "python"))   # finetune.py's recipes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="small", help="a recipe of examples/python/finetune.py")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a train config key on top of the recipe (repeatable)")
    parser.add_argument("--seeds", default="42,44,46", help="comma-separated seeds (default 42,44,46)")
    parser.add_argument("--stop-after-epochs", type=int, help="end each run after this epoch's evaluation")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once (default 2, 1 thread each)")
    parser.add_argument("--model", help="model folder (default: scripts/fetch_model.sh's)")
    parser.add_argument("--data", help="folder with train.tsv and dev.tsv (default: scripts/find_data.sh's)")
    parser.add_argument("--out", default=os.path.join(REPO, "runs", "recipe-runs"),
                        help="where results and logs go (default runs/recipe-runs)")
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], args.worker[1], args.stop_after_epochs)

    from finetune import RECIPES, pytorch_reference, recipe_config
    from forward_bench import default_data_dir, default_model
    if args.recipe not in RECIPES:
        sys.exit(f"recipe_runs.py: unknown recipe {args.recipe!r} (known: {', '.join(sorted(RECIPES))})")
    if args.parallel < 1:
        sys.exit("recipe_runs.py: --parallel must be at least 1")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        sys.exit(f"recipe_runs.py: --seeds {args.seeds!r} is not a comma-separated list of integers")
    model = args.model or default_model()
    data = args.data or default_data_dir()

    base = recipe_config(args.recipe, model)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"recipe_runs.py: --set {item!r} is not KEY=VALUE")
        try:
            base[key] = json.loads(value)
        except json.JSONDecodeError:
            base[key] = value
    base.update({
        "model_dir": model, "train_file": os.path.join(data, "train.tsv"),
        "eval_file": os.path.join(data, "dev.tsv"), "save_strategy": "no", "logging_steps": 50,
        "threads": max(1, (os.cpu_count() or 2) // args.parallel),
    })

    os.makedirs(args.out, exist_ok=True)
    env = dict(os.environ)
    if args.parallel > 1:
        env["OMP_WAIT_POLICY"] = "passive"   # spinning barriers stall runs that share the cores
    pending = list(seeds)
    running = {}
    started = time.time()
    while pending or running:
        while pending and len(running) < args.parallel:
            seed = pending.pop(0)
            name = os.path.join(args.out, f"{args.recipe}-seed{seed}")
            with open(name + ".config.json", "w", encoding="utf-8") as f:
                json.dump({**base, "seed": seed}, f, indent=1)
            command = [sys.executable, os.path.abspath(__file__), "--worker", name + ".config.json",
                       name + ".result.json"]
            if args.stop_after_epochs:
                command += ["--stop-after-epochs", str(args.stop_after_epochs)]
            log = open(name + ".log", "w", encoding="utf-8")
            running[seed] = (subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log, name)
            print(f"[{_minutes(started)}] seed {seed}: started (log {name}.log)", file=sys.stderr)
        time.sleep(5)
        for seed, (process, log, name) in list(running.items()):
            if process.poll() is None:
                continue
            log.close()
            del running[seed]
            status = "done" if process.returncode == 0 else f"failed with status {process.returncode}, see {name}.log"
            print(f"[{_minutes(started)}] seed {seed}: {status}", file=sys.stderr)

    rows = []
    for seed in seeds:
        path = os.path.join(args.out, f"{args.recipe}-seed{seed}.result.json")
        try:
            with open(path, encoding="utf-8") as f:
                result = json.load(f)
        except (OSError, json.JSONDecodeError):
            result = {"epochs": []}
        rows.append((f"seed {seed}", [e.get("eval_accuracy") for e in result["epochs"]]))
    # PyTorch's reference ran the DistilBERT head.
    reference = pytorch_reference(base) if base.get("head") != "bert" else None
    print_table(args.recipe, base, rows, reference)


def worker(config_path, result_path, stop_after_epochs):
    """One run: sentiment.train, stopped after `stop_after_epochs` evaluations; writes its result."""
    import sentiment

    class StopAfter(Exception):
        pass

    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    evals = 0

    def progress(event):
        nonlocal evals
        if event.get("event") == "step":
            print(f"epoch {event['epoch']} step {event['step']}/{event['total_steps']} loss {event['loss']:.4f}",
                  flush=True)
        elif event.get("event") == "eval":
            evals += 1
            print(f"epoch {event['epoch']}: eval loss {event.get('eval_loss')}, "
                  f"accuracy {event.get('eval_accuracy')}", flush=True)
            if stop_after_epochs and evals >= stop_after_epochs:
                raise StopAfter()

    try:
        result = sentiment.train(config, progress=progress)
    except StopAfter as e:
        result = getattr(e, "result", None)
        if result is None:
            sys.exit("recipe_runs.py: the run stopped without a result")
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)


def print_table(recipe, config, rows, reference):
    epochs = max((len(accuracies) for _, accuracies in rows), default=0)
    if epochs == 0:
        print("no run finished an epoch")
        return
    shown = {k: v for k, v in config.items()
             if k not in ("model_dir", "train_file", "eval_file", "save_strategy", "logging_steps", "threads")}
    print(f"\nrecipe {recipe}: {json.dumps(shown)}")
    print("| run | " + " | ".join(f"epoch {i + 1}" for i in range(epochs)) + " |")
    print("|---|" + "---|" * epochs)
    for label, accuracies in rows:
        print(f"| {label} | " + " | ".join(_cell(a) for a in accuracies + [None] * (epochs - len(accuracies))) + " |")
    columns = [[a[i] for _, a in rows if i < len(a) and a[i] is not None] for i in range(epochs)]
    for label, f in (("mean", lambda c: sum(c) / len(c)), ("min", min), ("max", max)):
        print(f"| {label} | " + " | ".join(_cell(f(c) if c else None) for c in columns) + " |")
    if reference:
        print("| PyTorch, seed 42 | " + " | ".join(_cell(a) for a in reference[:epochs]) + " |")


def _cell(value):
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _minutes(started):
    return f"{(time.time() - started) / 60:5.1f} min"


if __name__ == "__main__":
    sys.exit(main())
