#!/usr/bin/env python3
"""Data-parallel fine-tuning throughput: one process with N threads against N MPI ranks of one
thread each (sentiment.train(..., distributed="mpi")), same global batch, same machine.

    python3 bench/distributed_train.py [--ranks 2] [--batch 64] [--steps 8] [--repeats 3]
                                       [--model DIR] [--data DIR] [--bf16]

Each run trains all-MiniLM-L6-v2 (dropout on, max_length 128) on SST-2 train.tsv for --steps
optimizer steps of --batch sentences, without evaluation or saving, and reports the result's
train_tokens_per_second (real tokens over training time: the allreduces included, loading and
tokenizing not). The sides alternate, --repeats times each; the table gives medians and the
ratio. Needs mpirun (Debian: openmpi-bin) and mpi4py.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "bindings", "python", "src"))


def config(args, threads):
    return {"model_dir": args.model, "train_file": os.path.join(args.data, "train.tsv"),
            "train_batch_size": args.batch, "max_steps": args.steps, "max_length": 128,
            "threads": threads, "save_strategy": "no", "bf16": args.bf16}


def as_rank(config_json, out):
    """One MPI rank: trains and writes its result (rank 0 only)."""
    import sentiment
    comm = sentiment.distributed.communicator("mpi")
    result = sentiment.train(json.loads(config_json), distributed=comm)
    if comm.rank == 0:
        with open(out, "w") as f:
            json.dump(result, f)


def single(args):
    out = subprocess.run([sys.executable, "-c", (
        "import json, sys; sys.path.insert(0, sys.argv[2]); import sentiment; "
        "print(json.dumps(sentiment.train(json.loads(sys.argv[1]))['train_tokens_per_second']))"),
        json.dumps(config(args, args.ranks)), sys.path[0]], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def ranks(args):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "core", "-n", str(args.ranks), sys.executable,
                        os.path.abspath(__file__), "--as-rank", json.dumps(config(args, 1)), out],
                       check=True, env=env, capture_output=True, text=True)
        with open(out) as f:
            return json.load(f)["train_tokens_per_second"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=os.environ.get("SENTIMENT_MODEL_DIR", os.path.expanduser(
        "~/.cache/sentiment/models/all-MiniLM-L6-v2")))
    parser.add_argument("--data", default=os.environ.get("SENTIMENT_DATA_DIR", os.path.join(REPO, "..", "shared", "data", "sst2")))
    parser.add_argument("--bf16", action="store_true", help="mixed precision (needs AVX512-BF16 or AMX)")
    parser.add_argument("--as-rank", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_rank:
        return as_rank(*args.as_rank)

    figures = {"single": [], "ranks": []}
    for k in range(args.repeats):
        figures["single"].append(single(args))
        figures["ranks"].append(ranks(args))
        print(f"repeat {k + 1}: 1 process x {args.ranks} threads {figures['single'][-1]:.0f} tokens/s, "
              f"{args.ranks} ranks x 1 thread {figures['ranks'][-1]:.0f} tokens/s", file=sys.stderr)
    a, b = statistics.median(figures["single"]), statistics.median(figures["ranks"])
    precision = "bf16" if args.bf16 else "fp32"
    print(f"| side ({precision}, batch {args.batch}, {args.steps} steps) | real tokens/s (median of {args.repeats}) |")
    print("|---|---:|")
    print(f"| 1 process x {args.ranks} threads | {a:.0f} |")
    print(f"| {args.ranks} MPI ranks x 1 thread | {b:.0f} ({b / a:.2f}x) |")


if __name__ == "__main__":
    main()
