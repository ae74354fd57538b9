"""Data-parallel fine-tuning (sentiment.distributed): 2 ranks on localhost, over MPI (mpirun) and
torch.distributed's gloo (torchrun), against one process with the same global batch.

One process with gradient_accumulation_steps 2 runs the micro-batches the two ranks run, with
the same dropout masks, so per-step losses and final weights match to fp32 summation order
(1e-5 relative). The exception is the attention key biases: their gradient is zero in exact
arithmetic, so it is rounding noise, which Adam turns into steps of about the learning rate
whatever the summation order; they are held to steps x learning rate. A killed rank must end
the run within the timeout: mpirun aborts the job and names the rank; a gloo peer raises
DistributedError naming the allreduce.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import sentiment
from conftest import missing

HERE = Path(__file__).resolve().parent
RANK = HERE / "distributed_rank.py"
STEPS, LEARNING_RATE = 20, 1e-4
TIMEOUT = 150   # seconds for one 2-rank run; a hang fails the test instead of stalling CI


def recipe(model_dir, dev_tsv, tmp, output_dir):
    """20 steps of 16 SST-2 sentences, dropout on, evaluated on 200 dev rows at the end."""
    eval_file = tmp / "dev200.tsv"
    if not eval_file.exists():
        lines = dev_tsv.read_text(encoding="utf-8").splitlines()
        eval_file.write_text("\n".join(lines[:201]) + "\n", encoding="utf-8")
    return {"model_dir": str(model_dir), "train_file": str(dev_tsv.parent / "train.tsv"),
            "eval_file": str(eval_file), "max_train_examples": 320, "train_batch_size": 16,
            "max_steps": STEPS, "max_length": 48, "learning_rate": LEARNING_RATE, "threads": 1,
            "save_strategy": "last", "output_dir": str(output_dir)}


@pytest.fixture(scope="module")
def single(model_dir, dev_tsv, tmp_path_factory):
    """The reference: one process, the global batch in 2 micro-batches."""
    tmp = tmp_path_factory.mktemp("single")
    config = dict(recipe(model_dir, dev_tsv, tmp, tmp / "out"), gradient_accumulation_steps=2)
    return sentiment.train(config), tmp / "out"


def environment():
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [
                   str(HERE.parents[0] / "src"), os.environ.get("PYTHONPATH")])))
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(command, out):
    """Runs a launcher command; returns (returncode, output, the ranks' reports)."""
    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=TIMEOUT)
    reports = {int(p.stem[4:]): json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))}
    return done.returncode, done.stdout + done.stderr, reports


def mpirun(config, out, *extra):
    if shutil.which("mpirun") is None:
        missing("mpirun not found: apt-get install openmpi-bin libopenmpi-dev")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        missing("mpi4py not installed: pip install mpi4py")
    return launch(["mpirun", "--oversubscribe", "-n", "2", sys.executable, str(RANK), "mpi",
                   json.dumps(config), str(out), *extra], out)


def torchrun(config, out):
    pytest.importorskip("torch.distributed", reason="PyTorch is not installed (pip install torch)")
    return launch([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                   "--master-addr", "127.0.0.1", "--master-port", str(free_port()), str(RANK), "torch",
                   json.dumps(config), str(out)], out)


def weights(folder):
    from safetensors.numpy import load_file
    return load_file(str(folder / "model.safetensors"))


def assert_matches(reports, single):
    reference, reference_dir = single
    assert sorted(reports) == [0, 1], reports
    results = [reports[r]["result"] for r in (0, 1)]
    for r in results:
        assert r["steps"] == STEPS and r["stop_reason"] == "max_steps"
        losses, expected = r["curve"]["loss"], reference["curve"]["loss"]
        assert len(losses) == STEPS
        assert all(abs(a - b) <= 1e-5 * abs(b) for a, b in zip(losses, expected)), (losses, expected)
        assert [e["eval_accuracy"] for e in r["epochs"]] == [e["eval_accuracy"] for e in reference["epochs"]]
        assert r["epochs"][-1]["eval_loss"] == pytest.approx(reference["epochs"][-1]["eval_loss"], rel=1e-5)
    # Every rank returns the same result (but for its own timings).
    def figures(r):
        return r["curve"], [{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]]
    assert figures(results[0]) == figures(results[1])
    ours, theirs = weights(Path(results[0]["output_dir"])), weights(reference_dir)
    assert ours.keys() == theirs.keys()
    for name, want in theirs.items():
        diff = float(abs(ours[name].astype("float64") - want).max())
        if re.search(r"(key|k_lin)\.bias$", name):
            assert diff <= STEPS * LEARNING_RATE, name
        else:
            assert diff <= 1e-5 * float(abs(want).max()), (name, diff)


def test_two_mpi_ranks_match_one_process(model_dir, dev_tsv, tmp_path, single):
    config = recipe(model_dir, dev_tsv, tmp_path, tmp_path / "ranks")
    code, output, reports = mpirun(config, tmp_path)
    assert code == 0, output
    assert_matches(reports, single)
    # Only rank 0 wrote a checkpoint, into output_dir.
    assert (tmp_path / "ranks" / "model.safetensors").is_file()


def test_two_gloo_ranks_match_one_process(model_dir, dev_tsv, tmp_path, single):
    config = recipe(model_dir, dev_tsv, tmp_path, tmp_path / "ranks")
    code, output, reports = torchrun(config, tmp_path)
    assert code == 0, output
    assert_matches(reports, single)


def killable(model_dir, dev_tsv, tmp):
    return dict(recipe(model_dir, dev_tsv, tmp, tmp / "out"), save_strategy="no", eval_file=None)


def test_a_killed_mpi_rank_ends_the_job(model_dir, dev_tsv, tmp_path):
    code, output, reports = mpirun(killable(model_dir, dev_tsv, tmp_path), tmp_path, "--die-at-step", "3")
    assert code != 0
    assert re.search(r"rank 1 .*(signal 9|Killed)", output), output
    assert 1 not in reports


def test_a_killed_gloo_peer_raises_a_distributed_error(model_dir, dev_tsv, tmp_path):
    pytest.importorskip("torch.distributed", reason="PyTorch is not installed (pip install torch)")
    config = json.dumps(killable(model_dir, dev_tsv, tmp_path))
    env = dict(environment(), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE="2")
    ranks = [subprocess.Popen([sys.executable, str(RANK), "torch", config, str(tmp_path), "--die-at-step", "3"],
                              env=dict(env, RANK=str(r)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for r in (0, 1)]
    try:
        codes = [p.wait(timeout=TIMEOUT) for p in ranks]
    finally:
        for p in ranks:
            if p.poll() is None:
                p.kill()
    assert codes[1] == -signal.SIGKILL
    error = json.loads((tmp_path / "rank0.json").read_text())["error"]
    assert error["type"] == "DistributedError" and error["field"] == "allreduce", error
    assert "rank 0 of 2" in error["message"] and error["cause"], error


class Failing:
    """A communicator of 2 whose allreduce raises, as a collective does when its peer is gone."""
    rank, world_size = 0, 2

    def allreduce(self, array):
        raise RuntimeError("peer vanished")


def test_a_failing_allreduce_is_a_distributed_error_with_its_cause(model_dir, dev_tsv, tmp_path):
    with pytest.raises(sentiment.DistributedError) as caught:
        sentiment.train(killable(model_dir, dev_tsv, tmp_path), distributed=Failing())
    assert caught.value.field == "allreduce" and "set-up" not in caught.value.message
    assert isinstance(caught.value.__cause__, RuntimeError)


class FailsLater:
    """Rank 0 of 2 alone: its allreduce keeps its own figures (as if rank 1 added zeros) until
    the given call, then raises."""
    rank, world_size = 0, 2

    def __init__(self, fail_at):
        self.calls, self.fail_at = 0, fail_at

    def allreduce(self, array):
        self.calls += 1
        if self.calls >= self.fail_at:
            raise RuntimeError("connection lost")


def test_a_failure_after_some_steps_carries_the_partial_result(model_dir, dev_tsv, tmp_path):
    # Calls: 1 set-up vote, then per step the gradient buckets and 1 stop vote.
    config = dict(killable(model_dir, dev_tsv, tmp_path), max_steps=5)
    counting = FailsLater(fail_at=10 ** 9)
    sentiment.train(dict(config, max_steps=1), distributed=counting)
    per_step = counting.calls - 1
    with pytest.raises(sentiment.DistributedError) as caught:
        sentiment.train(config, distributed=FailsLater(fail_at=1 + 2 * per_step + 1))
    partial = caught.value.result
    assert partial["steps"] == 2 and partial["stop_reason"] == "error", partial
    assert len(partial["curve"]["loss"]) == 2


def test_bad_communicators_are_refused(model_dir, dev_tsv, tmp_path):
    config = killable(model_dir, dev_tsv, tmp_path)
    with pytest.raises(ValueError, match="distributed"):
        sentiment.train(config, distributed="spark")
    with pytest.raises(TypeError, match="allreduce"):
        sentiment.train(config, distributed=type("NoReduce", (), {"rank": 0, "world_size": 2})())
    bad_rank = type("BadRank", (Failing,), {"rank": 2})()
    with pytest.raises(sentiment.InvalidArgumentError) as caught:
        sentiment.train(config, distributed=bad_rank)
    assert caught.value.field == "rank"
