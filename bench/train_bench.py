#!/usr/bin/env python3
"""Training throughput: ours (`sentiment-bench train`) vs PyTorch on the same batches, each in
fp32 and in mixed precision bf16.

    python3 bench/train_bench.py [--batch 256] [--steps 6] [--warmup 1] [--threads 2] [--bin PATH]
                                 [--model DIR] [--size default|distilbert-base] [--data FILE]
                                 [--only ours,ours-bf16,torch,torch-bf16]

Sides: ours fp32, ours `--bf16` (bf16 GEMMs with fp32 master weights, "bf16": true in a train
config), PyTorch fp32, and PyTorch under `torch.autocast("cpu", dtype=torch.bfloat16)` (its
mixed precision: fp32 weights and optimizer, bf16 linear layers). The bf16 sides need
AVX512-BF16 or AMX (ours refuses it elsewhere; `--only ours,torch` then).

Both sides: all-MiniLM-L6-v2 (or, with --size distilbert-base, a DistilBERT-base-sized model with
random weights: 6 layers, dim 768) with the DistilBERT head (pre_classifier -> ReLU -> dropout 0.2 ->
classifier on [CLS]), train mode (dropout on), batch k = sentences k*B ..< (k+1)*B of SST-2
train.tsv in file order, max_length 128, one optimizer step per batch: forward, cross-entropy,
backward, clip_grad_norm_(1.0), AdamW step. Throughput counts real tokens (attention_mask == 1),
so padding costs PyTorch time but earns it nothing, exactly as in training.

PyTorch pads each batch to its longest sentence (what HF Trainer's DataCollatorWithPadding does);
we pack the batch without padding. Each side runs in its own process; peak RSS is that process's
ru_maxrss (PyTorch's includes the Python interpreter and torch itself). GFLOP/s counts
6 x (non-embedding encoder parameters) FLOP per real token: a nominal figure for comparing
sides, above the work actually done (ours computes the last layer for the [CLS] rows only).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from forward_bench import make_distilbert_base

SIDES = ["ours", "ours-bf16", "torch", "torch-bf16"]
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def default_model():
    if os.environ.get("SENTIMENT_MODEL_DIR"):
        return os.environ["SENTIMENT_MODEL_DIR"]
    cache = os.environ.get("SENTIMENT_CACHE_DIR", os.path.expanduser("~/.cache/sentiment"))
    return os.path.join(cache, "models", "all-MiniLM-L6-v2")


def default_data():
    base = os.environ.get("SENTIMENT_DATA_DIR", os.path.join(REPO, "..", "shared", "data", "sst2"))
    return os.path.join(base, "train.tsv")


def torch_side(args):
    import torch
    from transformers import AutoConfig, BertModel, BertTokenizerFast, DistilBertForSequenceClassification

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tok = BertTokenizerFast.from_pretrained(args.model)
    with open(args.data, encoding="utf-8") as f:
        rows = [r.split("\t") for r in f.read().split("\n")[1:] if r.strip()]
    n = (args.warmup + args.steps) * args.batch
    texts, labels = [r[0] for r in rows[:n]], [int(r[1]) for r in rows[:n]]

    class BertWithDistilBertHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = BertModel.from_pretrained(args.model, add_pooling_layer=False)
            d = self.bert.config.hidden_size
            self.pre_classifier = torch.nn.Linear(d, d)
            self.dropout = torch.nn.Dropout(0.2)
            self.classifier = torch.nn.Linear(d, 2)

        def forward(self, **batch):
            h = self.bert(**batch).last_hidden_state[:, 0]
            return self.classifier(self.dropout(torch.relu(self.pre_classifier(h))))

    if AutoConfig.from_pretrained(args.model).model_type == "distilbert":
        inner = DistilBertForSequenceClassification.from_pretrained(args.model)   # the same head

        def model(**batch):
            batch.pop("token_type_ids", None)
            return inner(**batch).logits
        inner.train()
        named = list(inner.named_parameters())
    else:
        model = BertWithDistilBertHead().train()
        named = list(model.named_parameters())
    parameters = [p for _, p in named]
    opt = torch.optim.AdamW(parameters, lr=2e-5, weight_decay=0.0)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
    tokens, seconds, padded = 0, 0.0, 0
    for k in range(args.warmup + args.steps):
        lo = k * args.batch
        batch = tok(texts[lo:lo + args.batch], padding=True, truncation=True, max_length=128, return_tensors="pt")
        y = torch.tensor(labels[lo:lo + args.batch])
        t0 = time.perf_counter()
        with autocast:
            logits = model(**batch)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        real = int(batch["attention_mask"].sum())
        print(f"torch step {k + 1}{' (warm-up)' if k < args.warmup else ''}: {real} real / "
              f"{batch['input_ids'].numel()} padded tokens, {dt:.3f} s, loss {loss.item():.4f}", flush=True)
        if k >= args.warmup:
            tokens += real
            padded += batch["input_ids"].numel()
            seconds += dt
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    layers = sum(p.numel() for n, p in named if ".layer." in n)   # the encoder layers, as ours counts
    return {"encoder_parameters": layers,
            "tokens_per_second": tokens / seconds, "seconds_per_step": seconds / args.steps,
            "tokens_per_step": tokens // args.steps, "padded_tokens_per_step": padded // args.steps,
            "peak_rss_mb": rss, "threads": args.threads}


def ours_side(args, bf16):
    cmd = [args.bin, "train", "--model", args.model, "--data", args.data, "--batch", str(args.batch),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
           "--max-length", "128"] + (["--bf16"] if bf16 else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = out.strip().split("\n")
    for line in lines[:-1]:
        print("ours-bf16" if bf16 else "ours", line, flush=True)
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--size", choices=["default", "distilbert-base"], default="default",
                    help="distilbert-base: random DistilBERT-base-sized weights instead of --model")
    ap.add_argument("--data", default=default_data())
    ap.add_argument("--bin", default=os.path.join(REPO, ".build", "release", "sentiment-bench"))
    ap.add_argument("--only", default=",".join(SIDES), help="comma-separated sides (default: all four)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)   # the torch child's autocast
    args = ap.parse_args()
    args.only = args.only.split(",")
    if not args.child and not set(args.only) <= set(SIDES):
        ap.error(f"--only takes {', '.join(SIDES)}")

    if args.child:   # PyTorch in its own process, so its RSS is its own
        print(json.dumps(torch_side(args)))
        return
    if args.size == "distilbert-base":
        with tempfile.TemporaryDirectory() as tmp:
            make_distilbert_base(args.model, tmp)
            args.model = tmp
            results = run_sides(args)
    else:
        results = run_sides(args)
    report(args, results)


def run_sides(args):
    """Each side in its own process, one after the other (never two at once)."""
    results = {}
    for side in [s for s in SIDES if s in args.only]:
        if side.startswith("ours"):
            results[side] = ours_side(args, bf16=side == "ours-bf16")
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "--child"] + [
            f"--{k}={v}" for k, v in (("batch", args.batch), ("steps", args.steps), ("warmup", args.warmup),
                                       ("threads", args.threads), ("model", args.model), ("data", args.data))]
        out = subprocess.run(cmd + (["--bf16"] if side == "torch-bf16" else []),
                             check=True, capture_output=True, text=True).stdout.strip().split("\n")
        for line in out[:-1]:
            print(side, line, flush=True)
        results[side] = json.loads(out[-1])
    return results


def report(args, results):
    print()
    print(f"batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up, {args.threads} threads")
    for side, r in results.items():
        extra = f", {r['padded_tokens_per_step']} padded" if "padded_tokens_per_step" in r else ""
        gflops = 6 * r["encoder_parameters"] * r["tokens_per_second"] / 1e9
        print(f"  {side:10s}: {r['tokens_per_second']:8.1f} real tokens/s, {r['seconds_per_step']:.3f} s/step "
              f"({r['tokens_per_step']} real tokens/step{extra}), peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"~{gflops:.0f} nominal GFLOP/s")
    for a, b in (("ours-bf16", "ours"), ("ours", "torch"), ("ours-bf16", "torch-bf16"), ("torch-bf16", "torch")):
        if a in results and b in results:
            print(f"  {a} / {b}: {results[a]['tokens_per_second'] / results[b]['tokens_per_second']:.2f}x")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
