#!/usr/bin/env python3
"""Inference speed and reduced-precision accuracy: sentiment (libsentiment.so) fp32, bf16 and int8
vs PyTorch (fp32, bf16 and dynamic int8) vs ONNX Runtime (fp32 and dynamic int8).

Same model, same 872 GLUE SST-2 dev sentences, same thread count, end to end (tokenization
included for everyone). Each runtime runs in its own process (so its peak RSS is its own), one
after the other. Reports the batch-1 median latency per sentence, the batch-32 throughput
(sentences sorted by length for everyone, so padding is small for the padded runtimes too),
dev accuracy, label agreement and max/mean |logit difference| against PyTorch fp32, the
checkpoint size relative to fp32, the load time (process start of the runtime to ready), peak
RSS and the RSS at the end of the run (what a loaded model keeps).

    python3 bench/forward_bench.py                          # default model, 2 threads
    python3 bench/forward_bench.py --model /path/to/sst2-finetuned   # accuracy means something
    python3 bench/forward_bench.py --size distilbert-base   # random DistilBERT-base-sized weights
    python3 bench/forward_bench.py --repeats 5 --threads 2 --only sentiment-int8,onnxruntime-int8
    python3 bench/forward_bench.py --only sentiment-int8,sentiment-int8-onednn   # our VNNI kernel vs oneDNN's
    python3 bench/forward_bench.py --only sentiment,sentiment-bf16,pytorch-bf16  # bf16 (AVX512-BF16 or AMX)
    SENTIMENT_ISA=avx512_vnni python3 bench/forward_bench.py --only sentiment-int8   # a lower ISA path
    python3 bench/forward_bench.py --calibration TRAIN.tsv --only sentiment-int8   # int8 calibrated at save

int8 peers: ONNX Runtime `quantize_dynamic` (QInt8 weights, per-tensor dynamic u8 activations,
its defaults) on the exported model; PyTorch `torch.ao.quantization.quantize_dynamic` on every
nn.Linear (qint8). Ours: `precision: "int8"` loaded from the int8 checkpoint our save wrote.
bf16 peers: PyTorch with the model cast to bfloat16 (`model.to(torch.bfloat16)`; its logits are
cast back to fp32). Ours: `precision: "bf16"` loaded from the fp32 checkpoint (rounded once at load).

Needs: pip install torch transformers onnxruntime onnx, and a built library
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
RUNTIMES = ["sentiment", "sentiment-bf16", "sentiment-int8", "pytorch", "pytorch-bf16", "pytorch-int8",
            "onnxruntime", "onnxruntime-int8"]
# Also runnable with --only: our int8 on oneDNN's dnnl_gemm_u8s8s32 instead of our VNNI kernel.
EXTRA_RUNTIMES = ["sentiment-int8-onednn"]


def default_model():
    return subprocess.check_output([os.path.join(ROOT, "scripts", "fetch_model.sh")], text=True).strip()


def default_data_dir():
    return subprocess.check_output([os.path.join(ROOT, "scripts", "find_data.sh")], text=True).strip()


def read_dev(path):
    """(sentences, labels) of a `sentence<TAB>label` file with a header."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            if line.strip():
                text, label = line.rstrip("\n").rsplit("\t", 1)
                texts.append(text)
                labels.append(int(label))
    return texts, labels


def dir_bytes(path, names):
    return sum(os.path.getsize(os.path.join(path, n)) for n in names if os.path.exists(os.path.join(path, n)))


class Ours:
    def __init__(self, model_dir, threads, precision="fp32"):
        lib = ctypes.CDLL(os.environ.get("SENTIMENT_LIBRARY", os.path.join(ROOT, ".build/release/libsentiment.so")))
        lib.sentiment_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)]
        lib.sentiment_classify.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.sentiment_model_save.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.sentiment_string_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.handle = ctypes.c_void_p()
        doc = self._call(lib.sentiment_model_load, json.dumps(
            {"model_dir": model_dir, "threads": threads, "precision": precision}).encode(), ctypes.byref(self.handle))
        self.load_seconds = doc["load_seconds"]
        self.isa = doc.get("isa")   # what the library's kernels run on (SENTIMENT_ISA caps it; None before it reported one)

    def _call(self, fn, *args):
        out = ctypes.c_void_p()
        rc = fn(*args, ctypes.byref(out))
        doc = json.loads(ctypes.string_at(out.value).decode())
        self.lib.sentiment_string_free(out)
        if rc != 0:
            raise RuntimeError(doc)
        return doc

    def save(self, path, precision="fp32", **extra):
        self._call(self.lib.sentiment_model_save, self.handle,
                   json.dumps({"output_dir": path, "precision": precision, **extra}).encode())

    def logits(self, texts):
        req = json.dumps({"texts": texts, "batch_size": len(texts)}).encode()
        return [r["logits"] for r in self._call(self.lib.sentiment_classify, self.handle, req)["results"]]


class Torch:
    def __init__(self, model_dir, threads, int8=False, bf16=False):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        torch.set_num_threads(threads)
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        if int8:
            self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
        if bf16:
            self.model = self.model.to(torch.bfloat16)

    def logits(self, texts):
        enc = self.tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with self.torch.inference_mode():
            return self.model(**enc).logits.float().tolist()


def export_onnx(model_dir, out_dir):
    """model.onnx (fp32) and model.int8.onnx (ONNX Runtime quantize_dynamic, its defaults)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    t = Torch(model_dir, 2)
    enc = t.tok(["hello world"], return_tensors="pt")
    fp32 = os.path.join(out_dir, "model.onnx")
    torch.onnx.export(t.model, (enc["input_ids"], enc["attention_mask"]), fp32,
                      input_names=["input_ids", "attention_mask"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"},
                                    "logits": {0: "b"}}, opset_version=17, dynamo=False)
    quantize_dynamic(fp32, os.path.join(out_dir, "model.int8.onnx"), weight_type=QuantType.QInt8)


class Onnx:
    def __init__(self, model_dir, threads, int8=False):
        import onnxruntime as ort
        from transformers import AutoTokenizer
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        path = os.path.join(model_dir, "model.int8.onnx" if int8 else "model.onnx")
        self.session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.tok = AutoTokenizer.from_pretrained(model_dir)

    def logits(self, texts):
        enc = self.tok(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
        return self.session.run(None, {"input_ids": enc["input_ids"].astype("int64"),
                                       "attention_mask": enc["attention_mask"].astype("int64")})[0].tolist()


def make_runtime(name, model_dir, threads):
    if name == "sentiment":
        return Ours(model_dir, threads)
    if name == "sentiment-bf16":
        return Ours(model_dir, threads, precision="bf16")
    if name.startswith("sentiment-int8"):
        if name.endswith("onednn"):
            os.environ["SENTIMENT_INT8_GEMM"] = "onednn"   # read by the library on its first int8 load
        return Ours(os.path.join(model_dir, "int8"), threads, precision="int8")
    if name.startswith("pytorch"):
        return Torch(model_dir, threads, int8=name.endswith("int8"), bf16=name.endswith("bf16"))
    return Onnx(model_dir, threads, int8=name.endswith("int8"))


def measure(runtime, sentences, repeats):
    """Median batch-1 latency (ms), median batch-32 throughput (sentences/s), batch-32 logits in input order."""
    for s in sentences[:20]:
        runtime.logits([s])                                   # warm-up
    latencies = []
    for _ in range(repeats):
        for s in sentences:
            t = time.perf_counter()
            runtime.logits([s])
            latencies.append(time.perf_counter() - t)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    throughputs = []
    logits = [None] * len(sentences)
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(0, len(order), 32):
            chunk = order[i:i + 32]
            for k, row in zip(chunk, runtime.logits([sentences[j] for j in chunk])):
                logits[k] = row
        throughputs.append(len(order) / (time.perf_counter() - t))
    return statistics.median(latencies) * 1e3, statistics.median(throughputs), logits


def interleaved_medians(models, batches, rounds):
    """{name: (median seconds per call, calls)} of each model's logits over `batches`, the models
    taking turns for `rounds` rounds, so drift on a shared machine hits all of them alike."""
    times = {name: [] for name in models}
    for _ in range(rounds):
        for name, m in models.items():
            for b in batches:
                start = time.perf_counter()
                m.logits(b)
                times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(v), len(v)) for name, v in times.items()}


def rss_mb(field):
    """This process's RSS from /proc/self/status: VmHWM is the peak (ru_maxrss would include the
    parent's peak, kept across exec), VmRSS the current one."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(args):
    """One runtime in this process: prints one JSON line."""
    sentences, _ = read_dev(args.data)
    t = time.perf_counter()
    rt = make_runtime(args.worker, args.model, args.threads)
    load = time.perf_counter() - t
    lat, thr, logits = measure(rt, sentences, args.repeats)
    # Labels must not depend on the batch: batch-1 logits of the first 64 sentences vs the batch-32 run.
    b1 = [rt.logits([s])[0] for s in sentences[:64]]
    flips = sum(max(range(len(a)), key=a.__getitem__) != max(range(len(b)), key=b.__getitem__)
                for a, b in zip(b1, logits[:64]))
    b1diff = max(abs(x - y) for a, b in zip(b1, logits[:64]) for x, y in zip(a, b))
    print(json.dumps({"name": args.worker, "load_seconds": load, "batch1_ms": lat, "batch32_per_s": thr,
                      "logits": logits, "peak_rss_mb": rss_mb("VmHWM"), "end_rss_mb": rss_mb("VmRSS"),
                      "batch1_vs_batch32_max_diff": b1diff, "batch1_vs_batch32_label_flips": flips,
                      "isa": getattr(rt, "isa", "")}))


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


def argmax(row):
    return max(range(len(row)), key=row.__getitem__)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the fetched all-MiniLM-L6-v2)")
    ap.add_argument("--size", choices=["default", "distilbert-base"], default="default")
    ap.add_argument("--data", default=None, help="SST-2 dev.tsv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=",".join(RUNTIMES))
    ap.add_argument("--calibration", help="calibrate our int8 checkpoint on this file's sentences (calibration_file)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--worker", choices=RUNTIMES + EXTRA_RUNTIMES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.data = args.data or os.path.join(default_data_dir(), "dev.tsv")
    if args.worker:
        return worker(args)
    sentences, labels = read_dev(args.data)
    src = args.model or default_model()
    with tempfile.TemporaryDirectory() as tmp:
        if args.size == "distilbert-base":
            make_distilbert_base(src, tmp)
        else:
            # Our save writes the loaded model (with its head) in HF layout, so every runtime
            # runs exactly the same weights.
            Ours(src, args.threads).save(tmp)
        t = time.perf_counter()
        calibration = {"calibration_file": args.calibration} if args.calibration else {}
        Ours(tmp, args.threads).save(os.path.join(tmp, "int8"), precision="int8", **calibration)
        quantize_seconds = time.perf_counter() - t
        export_onnx(tmp, tmp)
        import torch
        from transformers import AutoModelForSequenceClassification
        qt = torch.ao.quantization.quantize_dynamic(AutoModelForSequenceClassification.from_pretrained(tmp).eval(),
                                                    {torch.nn.Linear}, dtype=torch.qint8)
        torch.save(qt.state_dict(), os.path.join(tmp, "dynamic_int8.pt"))
        fp32_bytes = os.path.getsize(os.path.join(tmp, "model.safetensors"))
        sizes = {
            "sentiment": 1.0, "pytorch": 1.0, "sentiment-bf16": 1.0, "pytorch-bf16": 1.0,
            "sentiment-int8": os.path.getsize(os.path.join(tmp, "int8", "model.safetensors")) / fp32_bytes,
            "pytorch-int8": os.path.getsize(os.path.join(tmp, "dynamic_int8.pt")) / fp32_bytes,
            "onnxruntime": 1.0,
            "onnxruntime-int8": os.path.getsize(os.path.join(tmp, "model.int8.onnx")) / os.path.getsize(
                os.path.join(tmp, "model.onnx")),
        }
        sizes["sentiment-int8-onednn"] = sizes["sentiment-int8"]   # the same int8 checkpoint
        results = {}
        for name in [n for n in RUNTIMES + EXTRA_RUNTIMES if n in args.only.split(",")] + (
                ["pytorch"] if "pytorch" not in args.only.split(",") else []):
            if name in results:
                continue
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--model", tmp, "--data", args.data,
                   "--threads", str(args.threads), "--repeats", str(args.repeats)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
            r = results[name]
            print(f"{name:21s} batch-1 median {r['batch1_ms']:6.2f} ms   batch-32 {r['batch32_per_s']:7.1f} sentences/s"
                  f"   load {r['load_seconds']:.2f} s   peak RSS {r['peak_rss_mb']:.0f} MB, at the end {r['end_rss_mb']:.0f} MB"
                  + (f"   isa {r['isa']}" if r["isa"] else ""),
                  flush=True)
    ref = results["pytorch"]["logits"]
    rows = []
    for name, r in results.items():
        if name not in args.only.split(","):
            continue
        diffs = [abs(a - b) for x, y in zip(r["logits"], ref) for a, b in zip(x, y)]
        acc = sum(argmax(x) == y for x, y in zip(r["logits"], labels)) / len(labels)
        agree = sum(argmax(x) == argmax(y) for x, y in zip(r["logits"], ref)) / len(ref)
        rows.append(dict(name=name, acc=acc, agree=agree, max_diff=max(diffs), mean_diff=sum(diffs) / len(diffs),
                         size=sizes[name], **{k: v for k, v in r.items() if k not in ("logits", "name")}))
    print(f"\nmodel: {args.size} ({src}), {len(sentences)} SST-2 dev sentences, {args.threads} threads, "
          f"{args.repeats} repeats; int8 checkpoint written (quantize + save) in {quantize_seconds:.2f} s")
    print("| runtime | batch-1 median | batch-32 | dev accuracy | labels = PyTorch fp32 | max / mean logit diff "
          "| batch 1 vs 32: label flips (first 64) | checkpoint size | load | peak RSS | RSS at the end |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['batch1_ms']:.2f} ms | {r['batch32_per_s']:.0f} sent/s | {r['acc']:.4f} | "
              f"{100 * r['agree']:.1f}% | {r['max_diff']:.3f} / {r['mean_diff']:.4f} | "
              f"{r['batch1_vs_batch32_label_flips']} (max diff {r['batch1_vs_batch32_max_diff']:.1e}) | "
              f"{100 * r['size']:.0f}% | {r['load_seconds']:.2f} s | {r['peak_rss_mb']:.0f} MB | {r['end_rss_mb']:.0f} MB |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
