"""The library in forked children and worker pools, and Model pickling.

A child made by fork(2) after the parent computed with 2 threads used to hang on its first
call (libgomp's pool does not survive fork). Every child here runs under alarm(60), so a hang
fails the test instead of stalling it.
"""
import multiprocessing
import os
import pickle
import signal
import threading

import pytest

import sentiment

TEXTS = ["a good movie", "dull and boring", "it is charming", "not very good"]


def in_child(work):
    """Runs work() in a forked child; returns its exit status (0: work returned True)."""
    pid = os.fork()
    if pid == 0:
        signal.alarm(60)
        try:
            code = 0 if work() else 1
        except BaseException:   # noqa: BLE001 - any failure in the child is the test's failure
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert not os.WIFSIGNALED(status) or os.WTERMSIG(status) != signal.SIGALRM, "the child hung"
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def two_threads(model_dir):
    with sentiment.Model(model_dir, threads=2) as m:
        yield m


def test_a_forked_child_classifies_as_the_parent(two_threads):
    expected = two_threads.classify(TEXTS)
    assert in_child(lambda: two_threads.classify(TEXTS) == expected) == 0


def test_fork_while_another_thread_is_mid_call(two_threads):
    expected = two_threads.classify(TEXTS)
    stop = threading.Event()
    calls = []

    def busy():
        while not stop.is_set():
            two_threads.classify(TEXTS * 8)
            calls.append(1)
    thread = threading.Thread(target=busy)
    thread.start()
    try:
        for i in range(4):
            while len(calls) < i + 1:
                stop.wait(0.001)
            assert in_child(lambda: two_threads.classify(TEXTS) == expected) == 0
    finally:
        stop.set()
        thread.join()


def test_a_forked_child_trains(two_threads, model_dir, tmp_path):
    two_threads.classify(TEXTS)
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(TEXTS * 2)))
    events = []
    config = {"model_dir": str(model_dir), "train_file": str(train), "max_steps": 2, "train_batch_size": 4,
              "save_strategy": "no", "threads": 2}
    assert in_child(lambda: sentiment.train(config, progress=events.append)["steps"] == 2 and len(events) >= 2) == 0


def _classify_in_worker(args):
    model, texts = args
    return model.classify(texts)


def test_multiprocessing_pool_with_fork(two_threads):
    expected = two_threads.classify(TEXTS)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map_async(_classify_in_worker, [(two_threads, TEXTS)] * 4).get(timeout=120)
    assert results == [expected] * 4


def test_model_pickles_as_its_load_config(model_dir):
    with sentiment.Model(model_dir, max_length=64, threads=1, precision="int8") as m:
        expected = m.classify(TEXTS)
        data = pickle.dumps(m)
        assert len(data) < 1000   # the config, not the weights
    copy = pickle.loads(data)
    try:
        assert copy.info["precision"] == "int8" and copy.info["max_length"] == 64
        assert copy.classify(TEXTS) == expected
    finally:
        copy.close()


def test_spawned_workers_unpickle_their_own_model(model_dir):
    with sentiment.Model(model_dir, threads=1) as m:
        expected = m.classify(TEXTS)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.map_async(_classify_in_worker, [(m, TEXTS)]).get(timeout=120) == [expected]
