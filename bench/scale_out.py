#!/usr/bin/env python3
"""Batch-scoring throughput on Spark and Ray against one plain process, same texts, same model.

    python3 bench/scale_out.py                         # 100,000 texts, 3 timed runs per mode
    python3 bench/scale_out.py --texts 5000 --repeats 1 --only process,ray   # a quick look

- process: one Python process, sentiment.Model(threads=2).classify(texts).
- spark:   pyspark local[2], sentiment.spark.classify(df) written to Spark's "noop" sink: 2 Python
           workers of 1 thread each (threads = spark.task.cpus = 1), the input cached in 2 partitions.
- ray:     a local Ray cluster of 2 CPUs, map_batches(sentiment.ray.Classifier) over 2 actors of
           1 CPU (1 thread) each, the input materialized in 20 blocks; each run starts its actors
           (Ray Data makes a new actor pool per execution), which is counted.

The texts are SST-2 train.tsv sentences, repeated and cut to --texts. Each mode runs in its own
process, one after the other; before its timed runs each one scores a small warm-up (the JVM,
Python workers, actors and models start). Reports the median texts/s of the timed runs and its
ratio to the plain process. Needs pyspark, pyarrow and ray[data] (scripts/install_deps.sh) and a
built library (swift build -c release --product sentiment). The machine is shared: run it under
`flock /tmp/bench.lock` and note the load (`uptime`).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ["process", "spark", "ray"]


def default_model():
    cache = os.environ.get("SENTIMENT_CACHE_DIR", os.path.expanduser("~/.cache/sentiment"))
    return os.environ.get("SENTIMENT_MODEL_DIR", os.path.join(cache, "models", "all-MiniLM-L6-v2"))


def default_data():
    return subprocess.check_output([os.path.join(REPO, "scripts", "find_data.sh")], text=True).strip()


def read_texts(data_dir, count):
    with open(os.path.join(data_dir, "train.tsv"), encoding="utf-8") as f:
        next(f)
        sentences = [line.split("\t")[0] for line in f]
    return (sentences * (count // len(sentences) + 1))[:count]


def run_process(model, texts, repeats):
    import sentiment
    with sentiment.Model(model, threads=2) as m:
        m.classify(texts[:256])
        return [timed(lambda: m.classify(texts)) for _ in range(repeats)]


def run_spark(model, texts, repeats):
    from pyspark.sql import SparkSession

    import sentiment.spark
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2").config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.createDataFrame([(t,) for t in texts], "text string").repartition(2).cache()
    df.count()

    def score(frame):
        sentiment.spark.classify(frame, model).write.format("noop").mode("overwrite").save()
    score(df.limit(256).repartition(2))
    try:
        return [timed(lambda: score(df)) for _ in range(repeats)]
    finally:
        spark.stop()


def run_ray(model, texts, repeats):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import pandas as pd
    import ray

    import sentiment.ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    ds = ray.data.from_pandas(pd.DataFrame({"text": texts})).repartition(20).materialize()

    def score(data):
        data.map_batches(sentiment.ray.Classifier, fn_constructor_kwargs={"model": model}, batch_format="pandas",
                         compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1, batch_size=1024).materialize()
    score(ds.limit(256))
    try:
        return [timed(lambda: score(ds)) for _ in range(repeats)]
    finally:
        ray.shutdown()


def timed(work):
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=default_model())
    parser.add_argument("--data", help="folder with train.tsv (default: scripts/find_data.sh)")
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)   # one mode, in a child process
    args = parser.parse_args()
    texts = read_texts(args.data or default_data(), args.texts)
    if args.mode:
        seconds = globals()["run_" + args.mode](args.model, texts, args.repeats)
        print(json.dumps({"mode": args.mode, "seconds": seconds}))
        return
    print(f"{len(texts)} texts, {args.repeats} timed runs per mode; load {os.getloadavg()[0]:.2f}", flush=True)
    results = {}
    for mode in args.only.split(","):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--model", args.model, "--data",
                              args.data or default_data(), "--texts", str(args.texts), "--repeats",
                              str(args.repeats)], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{mode} failed:\n{out.stderr[-4000:]}")
        seconds = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
        rates = [len(texts) / s for s in seconds]
        results[mode] = {"seconds": seconds, "texts_per_second": rates, "median": statistics.median(rates)}
        print(f"{mode:8s} median {results[mode]['median']:7.1f} texts/s  (runs: "
              + ", ".join(f"{r:.1f}" for r in rates) + f"; load {os.getloadavg()[0]:.2f})", flush=True)
    base = results.get("process", {}).get("median")
    for mode, result in results.items():
        if base and mode != "process":
            result["ratio_to_process"] = result["median"] / base
            print(f"{mode:8s} / process = {result['ratio_to_process']:.2f}")
    print(json.dumps({"texts": len(texts), "load_after": os.getloadavg()[0], "results": results}))


if __name__ == "__main__":
    main()
