#!/usr/bin/env python3
"""Checks that Hugging Face transformers loads a checkpoint folder written by this library.

    python3 tools/check_hf_roundtrip.py DIR [--text "a charming journey"] [--reference ORIG_DIR]

Loads DIR with AutoModelForSequenceClassification.from_pretrained, reports missing, unexpected
and mismatched keys (any missing or mismatched key fails), and prints the logits and label
probabilities for the text. With --reference, also runs the original encoder folder (e.g.
all-MiniLM-L6-v2) through AutoModel and compares its last hidden state with the saved model's
encoder: a BERT model saved as DistilBERT (token type 0 folded into the positions) must agree
to float32 rounding. Not a test: it needs torch and transformers. Exit status 0 = all good.
"""
import argparse
import sys

import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, BertTokenizer


def tokenizer_for(path):
    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception:  # a folder with only vocab.txt
        return BertTokenizer(f"{path}/vocab.txt", do_lower_case=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--text", default="a charming and often affecting journey")
    ap.add_argument("--reference", help="original encoder folder to compare hidden states with")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()

    model, info = AutoModelForSequenceClassification.from_pretrained(args.dir, output_loading_info=True)
    model.eval()
    print(f"loaded {type(model).__name__} from {args.dir}")
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        print(f"  {k}: {sorted(map(str, info.get(k, [])))}")
    ok = not info.get("missing_keys") and not info.get("mismatched_keys") and not info.get("error_msgs")

    tok = tokenizer_for(args.dir)
    batch = tok([args.text], return_tensors="pt")
    batch.pop("token_type_ids", None) if model.config.model_type == "distilbert" else None
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    logits = out.logits[0]
    probs = logits.softmax(-1)
    labels = [model.config.id2label[i] for i in range(len(logits))]
    print(f"  text: {args.text!r}")
    print(f"  input_ids: {batch['input_ids'][0].tolist()}")
    print(f"  logits: {[round(float(x), 6) for x in logits]}")
    print(f"  probabilities: {dict(zip(labels, [round(float(p), 6) for p in probs]))}")

    if args.reference:
        ref = AutoModel.from_pretrained(args.reference).eval()
        rbatch = tokenizer_for(args.reference)([args.text], return_tensors="pt")
        with torch.no_grad():
            want = ref(**rbatch).last_hidden_state
        got = out.hidden_states[-1]
        diff = float((got - want).abs().max())
        print(f"  encoder vs {args.reference}: max |diff| of last hidden state = {diff:.3e}")
        ok = ok and diff <= args.tolerance

    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
