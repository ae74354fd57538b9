#!/usr/bin/env python3
"""Inference speed: sentiment (libsentiment.so) vs PyTorch fp32 vs ONNX Runtime fp32.

Same model, same 872 GLUE SST-2 dev sentences, same thread count, one process, end to
end (tokenization included for everyone). Reports the batch-1 median latency per
sentence and the batch-32 throughput (sentences sorted by length for all three, so
padding is small for the padded runtimes too).

    python3 bench/forward_bench.py                     # default model, 2 threads
    python3 bench/forward_bench.py --size distilbert-base   # random DistilBERT-base-sized weights
    python3 bench/forward_bench.py --repeats 5 --threads 2

Needs: pip install torch transformers onnxruntime, and a built library
(swift build -c release). The machine is shared and noisy: rerun and compare medians.
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_model():
    return subprocess.check_output([os.path.join(ROOT, "scripts", "fetch_model.sh")], text=True).strip()


def read_dev(path):
    with open(path, encoding="utf-8") as f:
        next(f)
        return [line.split("\t")[0] for line in f if line.strip()]


class Ours:
    name = "sentiment"

    def __init__(self, model_dir, threads):
        lib = ctypes.CDLL(os.environ.get("SENTIMENT_LIBRARY", os.path.join(ROOT, ".build/release/libsentiment.so")))
        lib.sentiment_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)]
        lib.sentiment_classify.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.sentiment_model_save.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.sentiment_string_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.handle = ctypes.c_void_p()
        doc = self._call(lib.sentiment_model_load,
                         json.dumps({"model_dir": model_dir, "threads": threads}).encode(), ctypes.byref(self.handle))
        self.load_seconds = doc["load_seconds"]

    def _call(self, fn, *args):
        out = ctypes.c_void_p()
        rc = fn(*args, ctypes.byref(out))
        doc = json.loads(ctypes.string_at(out.value).decode())
        self.lib.sentiment_string_free(out)
        if rc != 0:
            raise RuntimeError(doc)
        return doc

    def save(self, path):
        self._call(self.lib.sentiment_model_save, self.handle, json.dumps({"output_dir": path}).encode())

    def logits(self, texts):
        req = json.dumps({"texts": texts, "batch_size": len(texts)}).encode()
        return [r["logits"] for r in self._call(self.lib.sentiment_classify, self.handle, req)["results"]]


class Torch:
    name = "pytorch"

    def __init__(self, model_dir, threads):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        torch.set_num_threads(threads)
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()

    def logits(self, texts):
        enc = self.tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with self.torch.inference_mode():
            return self.model(**enc).logits.tolist()


class Onnx:
    name = "onnxruntime"

    def __init__(self, model_dir, threads, torch_runtime):
        import onnxruntime as ort
        import torch
        path = os.path.join(model_dir, "model.onnx")
        enc = torch_runtime.tok(["hello world"], return_tensors="pt")
        torch.onnx.export(torch_runtime.model, (enc["input_ids"], enc["attention_mask"]), path,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"},
                                        "logits": {0: "b"}}, opset_version=17, dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.tok = torch_runtime.tok

    def logits(self, texts):
        enc = self.tok(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
        return self.session.run(None, {"input_ids": enc["input_ids"].astype("int64"),
                                       "attention_mask": enc["attention_mask"].astype("int64")})[0].tolist()


def measure(runtime, sentences, repeats):
    for s in sentences[:20]:
        runtime.logits([s])                                   # warm-up
    latencies = []
    for _ in range(repeats):
        for s in sentences:
            t = time.perf_counter()
            runtime.logits([s])
            latencies.append(time.perf_counter() - t)
    by_length = sorted(sentences, key=len)
    throughputs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(0, len(by_length), 32):
            runtime.logits(by_length[i:i + 32])
        throughputs.append(len(by_length) / (time.perf_counter() - t))
    return statistics.median(latencies) * 1e3, statistics.median(throughputs)


def make_distilbert_base(vocab_dir, out_dir):
    import shutil
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072)
    DistilBertForSequenceClassification(cfg).save_pretrained(out_dir)
    for f in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if os.path.exists(os.path.join(vocab_dir, f)):
            shutil.copy(os.path.join(vocab_dir, f), out_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the fetched all-MiniLM-L6-v2)")
    ap.add_argument("--size", choices=["default", "distilbert-base"], default="default")
    ap.add_argument("--data", default=None, help="SST-2 dev.tsv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="sentiment,pytorch,onnxruntime")
    args = ap.parse_args()
    data = args.data or os.path.join(subprocess.check_output([os.path.join(ROOT, "scripts", "find_data.sh")],
                                                              text=True).strip(), "dev.tsv")
    sentences = read_dev(data)
    src = args.model or default_model()
    with tempfile.TemporaryDirectory() as tmp:
        if args.size == "distilbert-base":
            make_distilbert_base(src, tmp)
        else:
            # Our save writes the loaded model (with its head) in HF layout, so all three
            # runtimes run exactly the same weights.
            Ours(src, args.threads).save(tmp)
        ours = Ours(tmp, args.threads)
        torch_rt = Torch(tmp, args.threads)
        runtimes = [ours, torch_rt, Onnx(tmp, args.threads, torch_rt)]
        probe = sentences[:16]
        ref = torch_rt.logits(probe)
        for rt in runtimes:
            diff = max(abs(a - b) for ra, rb in zip(rt.logits(probe), ref) for a, b in zip(ra, rb))
            print(f"{rt.name:12s} max |logit - pytorch| on 16 sentences: {diff:.2e}")
        rows = []
        for rt in runtimes:
            if rt.name not in args.only.split(","):
                continue
            lat, thr = measure(rt, sentences, args.repeats)
            rows.append((rt.name, lat, thr))
            print(f"{rt.name:12s} batch-1 median {lat:6.2f} ms/sentence   batch-32 {thr:7.1f} sentences/s", flush=True)
    print(f"\nmodel: {args.size} ({src}), {len(sentences)} SST-2 dev sentences, {args.threads} threads, "
          f"{args.repeats} repeats")
    print("| runtime | batch-1 median latency | batch-32 throughput |")
    print("|---|---|---|")
    for name, lat, thr in rows:
        print(f"| {name} | {lat:.2f} ms | {thr:.0f} sentences/s |")


if __name__ == "__main__":
    main()
