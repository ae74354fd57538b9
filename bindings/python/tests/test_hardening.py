"""Hardening through Python on the tiny test model: memory stays flat, threads do not interfere,
a cancel from another thread ends training within one step, freed handles are never reused."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import sentiment

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hardening" / "catalogue"))
import catalogue  # noqa: E402

TEXTS = ["a good movie", "dull and boring", "not very good", "great fun!", "the film was awful", "", "charming"]
TRAIN = "sentence\tlabel\n" + "a good movie\t2\nawful\t0\nthe film\t1\ngreat fun\t2\n" * 2


@pytest.fixture(scope="module")
def tiny_dir(library, tmp_path_factory):
    return catalogue.copy_fixture(tmp_path_factory.mktemp("tiny"), "base")


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    with sentiment.Model(tiny_dir, max_length=64, threads=1) as m:
        yield m


def run_script(script, *args, timeout=120, env=None):
    """`script` in a fresh interpreter with `args` (so a crash or a hang fails one test only);
    `env` replaces the environment (default: this one), PYTHONPATH set to find sentiment."""
    env = {**(os.environ if env is None else env), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_rss_stays_flat_over_10000_classify_calls(tiny):
    def calls(n):
        for i in range(n):
            tiny.classify(TEXTS[i % len(TEXTS)])
            if i % 100 == 0:
                with pytest.raises(sentiment.InvalidArgumentError):
                    tiny.classify(["x"], batch_size=0)
    calls(1000)                       # warm-up: allocator pools, caches
    before = rss_kb()
    calls(10000)
    growth = rss_kb() - before
    # A leak of even 100 bytes per call would add about 1 MB.
    assert growth < 1024, f"RSS grew by {growth} kB over 10,000 classify calls"


def in_threads(count, work):
    """[work(0), ..., work(count - 1)], each in its own thread; re-raises the first error."""
    results, errors = [None] * count, []

    def run(i):
        try:
            results[i] = work(i)
        except BaseException as e:  # noqa: BLE001 - re-raised below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors:
        raise errors[0]
    return results


def test_8_threads_on_one_handle_equal_serial(tiny):
    expected = tiny.classify(TEXTS, batch_size=3)
    results = in_threads(8, lambda i: [tiny.classify(TEXTS, batch_size=3) for _ in range(20)])
    assert all(r == [expected] * 20 for r in results)


def config(tiny_dir, tmp_path, name, **extra):
    train = tmp_path / "train.tsv"
    train.write_text(TRAIN)
    return {"model_dir": str(tiny_dir), "train_file": str(train), "output_dir": str(tmp_path / name),
            "train_batch_size": 4, "max_length": 64, "threads": 1, "learning_rate": 1e-3, **extra}


def test_concurrent_trains_equal_trains_alone(tiny_dir, tmp_path):
    configs = [config(tiny_dir, tmp_path, f"run-{i}", seed=7 + i, max_steps=6, save_strategy="last")
               for i in range(3)]
    alone = [sentiment.train(c)["curve"] for c in configs]
    together = in_threads(3, lambda i: sentiment.train(
        {**configs[i], "output_dir": configs[i]["output_dir"] + "-again"})["curve"])
    assert together == alone and alone[0] != alone[1]


class Stop(Exception):
    pass


def test_cancel_from_another_thread_within_one_step(tiny_dir, tmp_path):
    cfg = config(tiny_dir, tmp_path, "cancelled", num_train_epochs=1000, logging_steps=1, save_strategy="best")
    flag, seen = threading.Event(), {"step": 0, "at_flag": None}

    def progress(event):
        if event["event"] == "step":
            seen["step"] = event["step"]
        if flag.is_set():
            seen["at_flag"] = seen["at_flag"] or seen["step"]
            raise Stop()

    def controller():
        while seen["step"] < 5:
            threading.Event().wait(0.001)
        flag.set()

    threading.Thread(target=controller, daemon=True).start()
    with pytest.raises(Stop) as excinfo:
        sentiment.train(cfg, progress=progress)
    steps = excinfo.value.result["steps"] if hasattr(excinfo.value, "result") else seen["step"]
    assert seen["at_flag"] >= 5 and seen["at_flag"] <= steps <= seen["at_flag"] + 1
    with sentiment.Model(cfg["output_dir"], max_length=64) as m:   # the last checkpoint saved loads
        assert len(m.classify(["fun"])) == 1


STALE_HANDLES = r"""
import json, sys
from ctypes import byref, c_void_p
from sentiment import _lib
lib = _lib.lib()
config = json.dumps({"model_dir": sys.argv[1], "max_length": 64, "threads": 1}).encode()
stale, reused = [], 0
for i in range(200):
    model, out = c_void_p(), c_void_p()
    assert lib.sentiment_model_load(config, byref(model), byref(out)) == 0, _lib.take_string(lib, out.value)
    _lib.take_string(lib, out.value)
    reused += model.value in stale
    for old in stale[-20:] + stale[:5]:
        out = c_void_p()
        status = lib.sentiment_model_info(c_void_p(old), byref(out))
        doc = json.loads(_lib.take_string(lib, out.value))
        assert status == 8 and doc["error"]["field"] == "model", (i, status, doc)
    lib.sentiment_model_free(model)
    stale.append(model.value)
print(json.dumps({"reused": reused, "distinct": len(set(stale))}))
"""


def test_stale_handles_are_never_reused(tiny_dir):
    """200 load/free cycles: no handle value comes back, and every freed one is MISUSE (in a
    child with a timeout, so a crash or hang fails this test only)."""
    child = run_script(STALE_HANDLES, tiny_dir)
    assert child.returncode == 0, child.stderr[-2000:]
    assert json.loads(child.stdout) == {"reused": 0, "distinct": 200}


THREADS = r"""
import json, os, sys
import sentiment
if len(sys.argv) > 2:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
cpus = len(os.sched_getaffinity(0))
with sentiment.Model(sys.argv[1], max_length=64, threads=int(os.environ.get("THREADS", "1024"))) as m:
    results = m.classify(["a good movie"] * 64, batch_size=64)
    print(json.dumps({"cpus": cpus, "threads": m.info["threads"], "results": len(results)}))
"""


@pytest.mark.parametrize("one_cpu", [False, True], ids=["all-cpus", "one-cpu"])
@pytest.mark.parametrize("threads, omp", [("1024", None), ("0", "1024")], ids=["threads-1024", "OMP_NUM_THREADS-1024"])
def test_threads_are_clamped_to_the_cpus(tiny_dir, threads, omp, one_cpu):
    """threads 1024 (or OMP_NUM_THREADS=1024) runs on at most the CPUs of the affinity mask (and
    cgroup quota) instead of asking libgomp for 1024 threads (in a child with a timeout)."""
    env = {**os.environ, "THREADS": threads}
    env.pop("OMP_NUM_THREADS", None)
    if omp:
        env["OMP_NUM_THREADS"] = omp
    child = run_script(THREADS, tiny_dir, *(["one"] if one_cpu else []), env=env)
    assert child.returncode == 0, child.stderr[-2000:]
    doc = json.loads(child.stdout)
    assert doc["results"] == 64 and 1 <= doc["threads"] <= doc["cpus"], doc


SIGNALS = r"""
import json, signal, sys, time
import sentiment
handled = 0
def count(signum, frame):
    global handled
    handled += 1
texts = ["a good movie", "it is charming, witty and far too long for its own good", "dull"] * 6
with sentiment.Model(sys.argv[1], threads=2) as m:
    quiet = m.classify(texts)
    signal.signal(signal.SIGALRM, count)
    signal.setitimer(signal.ITIMER_REAL, 1e-4, 1e-4)
    calls, same, end = 0, True, time.monotonic() + 5
    while time.monotonic() < end:
        same = same and m.classify(texts) == quiet
        calls += 1
    signal.setitimer(signal.ITIMER_REAL, 0)
print(json.dumps({"calls": calls, "same": same, "handled": handled}))
"""


def test_signal_handlers_run_during_classify(model_dir):
    """A Python SIGALRM handler every 100 us during 5 s of classify calls (as a profiler or a
    Ctrl-C handler would run): every answer equals the quiet one and the process survives. oneDNN's
    f32 GEMM runs on a heap workspace as its stack, and a handler's frame there used to corrupt the
    heap within a second (in a child with a timeout)."""
    child = run_script(SIGNALS, model_dir)
    assert child.returncode == 0, child.stderr[-2000:]
    doc = json.loads(child.stdout)
    # Python runs its handler between bytecodes, so the signals of one classify call count once.
    assert doc["same"] and doc["calls"] > 10 and doc["handled"] >= 100, doc


MEMORY_CGROUP = Path("/sys/fs/cgroup/memory")
CONTAINER = r"""
import json, os, sys
import sentiment
model_dir, group, train_file = sys.argv[1:4]
with open(os.path.join(group, "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
doc = {}
try:   # one step of 512 sequences of 512 tokens: activations of several GB
    sentiment.train({"model_dir": model_dir, "train_file": train_file, "train_batch_size": 512, "max_length": 512,
                     "max_steps": 1, "save_strategy": "no", "threads": 2})
    doc["large"] = "ok"
except sentiment.SentimentMemoryError as e:
    doc["large"], doc["field"] = str(e), e.field
with sentiment.Model(model_dir, threads=2) as m:
    doc["after"] = len(m.classify(["a good movie", "dull"]))
print(json.dumps(doc))
"""


def test_a_container_memory_limit_gives_nomem_not_an_oom_kill(model_dir, tmp_path):
    """A real cgroup v1 memory limit of 1 GB (a container's): a training batch that needs far more
    is SentimentMemoryError naming train_batch_size and what the cgroup has left, classify still
    works after it and the process is not OOM-killed (in a child moved into the cgroup, with a
    timeout). Needs root and a writable cgroup v1 memory hierarchy; skipped, and says so,
    elsewhere."""
    group = MEMORY_CGROUP / f"sentiment-test-{os.getpid()}"
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(1 << 30))
    except OSError as e:
        pytest.skip(f"cannot make a memory cgroup under {MEMORY_CGROUP}: {e}")
    try:
        train = tmp_path / "long.tsv"
        train.write_text("sentence\tlabel\n" + "".join(f"{' '.join(['word'] * 600)} {i}\t{i % 2}\n" for i in range(512)))
        child = run_script(CONTAINER, model_dir, group, train, timeout=300)
    finally:
        group.rmdir()
    assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
    doc = json.loads(child.stdout)
    assert doc["after"] == 2 and doc["field"] == "train_batch_size", doc
    assert "MB of memory is available" in doc["large"], doc
