#!/usr/bin/env python3
"""Fine-tunes a Hugging Face encoder on GLUE SST-2 with PyTorch and transformers, and saves it
with save_pretrained: the "fine-tuned by PyTorch" model of the int8 accuracy figures
(bench/README.md, "int8 that keeps fp32's answers").

    python3 tools/quant/finetune_torch.py MODEL_DIR DATA_DIR OUT_DIR [--steps 400] [--batch 32] [--lr 5e-5]

MODEL_DIR is a BERT or DistilBERT checkpoint (all-MiniLM-L6-v2 by default in the bench); the
head is transformers' own for its type (BertForSequenceClassification: pooler + classifier).
AdamW (0.9, 0.999, 1e-8, weight decay 0.01), linear decay with 10% warmup, gradient-norm clip
1.0, max_length 128, seed 42, data in a seeded shuffle. Prints the dev accuracy at the end.
Needs torch and transformers.
"""
import argparse
import csv
import os
import random
import shutil

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [int(r["label"]) for r in rows]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model_dir, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    texts, labels = read_tsv(os.path.join(args.data_dir, "train.tsv"))
    order = list(range(len(texts)))
    random.Random(args.seed).shuffle(order)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * args.steps), args.steps)
    model.train()
    for step in range(args.steps):
        idx = [order[(step * args.batch + i) % len(order)] for i in range(args.batch)]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=128, return_tensors="pt")
        out = model(**enc, labels=torch.tensor([labels[i] for i in idx]))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}/{args.steps} loss {out.loss.item():.4f}", flush=True)
    model.eval()
    dev_texts, dev_labels = read_tsv(os.path.join(args.data_dir, "dev.tsv"))
    correct = 0
    with torch.no_grad():
        for i in range(0, len(dev_texts), 64):
            enc = tok(dev_texts[i:i + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
            pred = model(**enc).logits.argmax(-1)
            correct += int((pred == torch.tensor(dev_labels[i:i + 64])).sum())
    print(f"dev accuracy {correct / len(dev_texts):.4f}")
    model.save_pretrained(args.out_dir)
    tok.save_pretrained(args.out_dir)
    # transformers 5 writes tokenizer.json only; the library reads vocab.txt.
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if not os.path.exists(os.path.join(args.out_dir, name)) and os.path.exists(os.path.join(args.model_dir, name)):
            shutil.copy(os.path.join(args.model_dir, name), args.out_dir)


if __name__ == "__main__":
    main()
