#!/usr/bin/env python3
"""Where int8 loses accuracy: each linear layer quantized alone, and whole-model methods compared.

    python3 tools/quant/sensitivity.py MODEL_DIR [--data DIR] [--sentences 400] [--json OUT]

Simulates the library's int8 scheme in PyTorch (docs/ARCHITECTURE.md, "int8"): weights int8 per
output channel, symmetric; activations quantized per token, asymmetric u8 with the range widened
to include 0; word embeddings int8 per row. Same rounding rules, products in fp32 (the library's
s32 products are exact, so the two differ only in float rounding: on the models of
bench/README.md the simulated whole-model int8 gives the library's label flips and mean logit
difference to 3 digits).

1. Per layer: each of the 6 linear layers of each block quantized alone (everything else fp32,
   word embeddings too), then the word embeddings alone: max and mean |logit - fp32 logit| and
   label flips on the first --sentences sentences of train.tsv; the same layer calibrated as the
   library calibrates by default (16 fp32 outlier channels, SmoothQuant alpha 0.4).
2. Whole model on dev.tsv: the methods of the issue, each calibrated on train.tsv sentences
   1000-1511 (disjoint from part 1's): no calibration; SmoothQuant alone; fp32 outlier channels
   alone; both; and mixed precision (the most sensitive layers of part 1 left in fp32).

Needs torch and transformers. bench/README.md has the table and what it showed.
"""
import argparse
import json
import os
import subprocess

import torch
from finetune_torch import read_tsv
from transformers import AutoModelForSequenceClassification, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = {"query": "Q", "q_lin": "Q", "key": "K", "k_lin": "K", "value": "V", "v_lin": "V",
         "attention.output.dense": "attention out", "out_lin": "attention out",
         "intermediate.dense": "FFN in", "lin1": "FFN in", "output.dense": "FFN out", "lin2": "FFN out"}


def quantize_weight(w):
    """Per output channel, symmetric: q = round(w / s), s = max|w| / 127."""
    s = w.abs().amax(dim=1, keepdim=True) / 127
    s[s == 0] = 1
    return torch.clamp(torch.round(w / s), -127, 127) * s


def quantize_rows(x):
    """Per token, asymmetric u8 over [min(x, 0), max(x, 0)]."""
    lo = torch.clamp(x.amin(dim=-1, keepdim=True), max=0)
    hi = torch.clamp(x.amax(dim=-1, keepdim=True), min=0)
    s = (hi - lo) / 255
    s[s == 0] = 1
    z = torch.clamp(torch.round(-lo / s), 0, 255)
    return s * (torch.clamp(torch.round(x / s + z), 0, 255) - z)


class Int8Linear(torch.nn.Module):
    """A linear layer in the library's int8 scheme; with calibration ranges `amax`, `outliers`
    input channels of largest range in fp32 and SmoothQuant with `alpha` on the rest."""

    def __init__(self, linear, amax=None, outliers=0, alpha=None):
        super().__init__()
        w = linear.weight.data.clone()
        self.bias = linear.bias.data.clone()
        self.keep = torch.ones(w.shape[1])
        if outliers:
            self.keep[torch.topk(amax, outliers).indices] = 0
        self.fp32 = w * (1 - self.keep)[None, :]
        w = w * self.keep[None, :]
        self.s = torch.ones(w.shape[1])
        if alpha is not None:
            a = amax.clamp(min=0)
            wmax = w.abs().amax(dim=0)
            s = a.pow(alpha) / wmax.clamp(min=1e-30).pow(1 - alpha)
            ok = (a > 0) & (wmax > 0) & (self.keep > 0)
            self.s = torch.where(ok, s.clamp(1e-3, 1e3), torch.ones_like(s))
        self.w = quantize_weight(w * self.s[None, :])

    def forward(self, x):
        return quantize_rows(x * self.keep / self.s) @ self.w.T + x @ self.fp32.T + self.bias


class Model:
    def __init__(self, model_dir):
        self.dir = model_dir
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        base = self.load()
        self.linears = [n for n, m in base.named_modules() if isinstance(m, torch.nn.Linear) and ".layer." in n]

    def load(self):
        return AutoModelForSequenceClassification.from_pretrained(self.dir).eval()

    def logits(self, model, texts):
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = [None] * len(texts)
        with torch.inference_mode():
            for i in range(0, len(order), 64):
                chunk = order[i:i + 64]
                enc = self.tok([texts[j] for j in chunk], padding=True, truncation=True, max_length=128,
                               return_tensors="pt")
                for j, row in zip(chunk, model(**enc).logits):
                    out[j] = row
        return torch.stack(out)

    def ranges(self, texts):
        """max |input| per channel of every linear layer over the tokens of `texts`."""
        model, amax, hooks = self.load(), {}, []
        for name in self.linears:
            def hook(module, inputs, output, name=name):
                x, mask = inputs[0], self.mask
                a = (x.abs() * mask[..., None]).reshape(-1, x.shape[-1]).amax(dim=0)
                amax[name] = torch.maximum(amax[name], a) if name in amax else a
            hooks.append(model.get_submodule(name).register_forward_hook(hook))
        with torch.inference_mode():
            for i in range(0, len(texts), 64):
                enc = self.tok(texts[i:i + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
                self.mask = enc["attention_mask"].float()
                model(**enc)
        for h in hooks:
            h.remove()
        return amax

    def quantized(self, layers, embeddings=True, **calibration):
        """A copy with `layers` replaced by Int8Linear (calibration: {name: kwargs})."""
        model = self.load()
        if embeddings:
            e = model.base_model.embeddings.word_embeddings
            e.weight.data = quantize_weight(e.weight.data)
        for name in layers:
            parent, attr = name.rsplit(".", 1)
            setattr(model.get_submodule(parent), attr, Int8Linear(model.get_submodule(name),
                                                                   **calibration.get(name, {})))
        return model


def compare(logits, ref, labels=None):
    d = (logits - ref).abs()
    flips = int((logits.argmax(-1) != ref.argmax(-1)).sum())
    row = {"max_diff": float(d.max()), "mean_diff": float(d.mean()), "flips": flips,
           "agreement": 1 - flips / len(ref)}
    if labels is not None:
        row["accuracy"] = float((logits.argmax(-1) == torch.tensor(labels)).float().mean())
    return row


def role(name):
    for key, value in ROLES.items():
        if name.endswith(key):
            return value
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--data", help="folder with train.tsv and dev.tsv (default: scripts/find_data.sh)")
    ap.add_argument("--sentences", type=int, default=400, help="training sentences for the per-layer table")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = args.data or subprocess.check_output([os.path.join(ROOT, "scripts", "find_data.sh")], text=True).strip()
    m = Model(args.model_dir)
    train, _ = read_tsv(os.path.join(data, "train.tsv"))
    probe, calibration_texts = train[:args.sentences], train[1000:1512]
    dev, labels = read_tsv(os.path.join(data, "dev.tsv"))
    amax = m.ranges(calibration_texts)
    default = {n: {"amax": amax[n], "outliers": 16, "alpha": 0.4} for n in m.linears}

    # 1. Each layer alone.
    ref = m.logits(m.load(), probe)
    rows = []
    for name in m.linears:
        depth = int(name.split(".layer.")[1].split(".")[0])
        alone = compare(m.logits(m.quantized([name], embeddings=False), probe), ref)
        calibrated = compare(m.logits(m.quantized([name], embeddings=False, **{name: default[name]}), probe), ref)
        rows.append({"layer": depth, "role": role(name), "name": name, "dynamic": alone, "calibrated": calibrated})
    rows.append({"layer": None, "role": "word embeddings", "name": "word embeddings",
                 "dynamic": compare(m.logits(m.quantized([]), probe), ref), "calibrated": None})
    print(f"\n{m.dir}: each layer quantized alone, {len(probe)} training sentences (mean |logit diff| x 1000, "
          f"max, flips); sorted by the uncalibrated mean")
    print("| layer | role | mean | max | flips | calibrated mean | max | flips |\n|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: -r["dynamic"]["mean_diff"]):
        d, c = r["dynamic"], r["calibrated"]
        cells = f"{c['mean_diff'] * 1000:.2f} | {c['max_diff']:.4f} | {c['flips']}" if c else "- | - | -"
        print(f"| {'' if r['layer'] is None else r['layer']} | {r['role']} | {d['mean_diff'] * 1000:.2f} | "
              f"{d['max_diff']:.4f} | {d['flips']} | {cells} |")

    # 2. Whole-model methods on dev.
    dev_ref = m.logits(m.load(), dev)
    worst = [r["name"] for r in sorted(rows[:-1], key=lambda r: -r["dynamic"]["mean_diff"])[:3]]
    ffn_out = [r["name"] for r in rows[:-1] if r["role"] == "FFN out"]

    def with_(**kw):
        return {n: {"amax": amax[n], **kw} for n in m.linears}
    methods = [
        ("no calibration (per-token activations only)", m.linears, {}),
        ("SmoothQuant alpha 0.4", m.linears, with_(alpha=0.4)),
        ("SmoothQuant alpha 0.5", m.linears, with_(alpha=0.5)),
        ("16 fp32 outlier channels per layer", m.linears, with_(outliers=16)),
        ("16 fp32 outlier channels + SmoothQuant 0.4 (the default)", m.linears, default),
        ("mixed: the 3 most sensitive layers in fp32", [n for n in m.linears if n not in worst], {}),
        ("mixed: every FFN out in fp32", [n for n in m.linears if n not in ffn_out], {}),
    ]
    print(f"\n{m.dir}: whole model on SST-2 dev ({len(dev)} sentences), calibrated on train.tsv sentences 1000-1511")
    print("| method | accuracy | points | labels = fp32 | flips | max diff | mean diff |\n|---|---|---|---|---|---|---|")
    base = compare(dev_ref, dev_ref, labels)["accuracy"]
    results = []
    for title, layers, calibration in methods:
        r = compare(m.logits(m.quantized(layers, **calibration), dev), dev_ref, labels)
        results.append({"method": title, **r})
        print(f"| {title} | {r['accuracy']:.4f} | {(r['accuracy'] - base) * 100:+.2f} | {r['agreement'] * 100:.2f}% | "
              f"{r['flips']} | {r['max_diff']:.4f} | {r['mean_diff']:.4f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": m.dir, "fp32_accuracy": base, "layers": rows, "methods": results}, f, indent=1,
                      default=float)


if __name__ == "__main__":
    main()
