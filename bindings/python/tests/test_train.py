"""sentiment.train: config errors, a tiny run, cancelling (callback, Ctrl-C), BUSY, progress, curves."""

import io
import json
import os
import signal
import threading
import xml.etree.ElementTree as ET

import pytest

import sentiment
from sentiment import plot
from sentiment.training import TrainingProgress, format_duration, format_epoch, format_step

ROWS = [("a charming and often affecting journey .", 1), ("unflinchingly bleak and desperate", 0),
        ("one of the best films of the year .", 1), ("an utterly predictable , lifeless script .", 0)]


def write_tsv(path, rows=16):
    lines = ["sentence\tlabel"] + [f"{ROWS[i % len(ROWS)][0]}\t{ROWS[i % len(ROWS)][1]}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path, model_dir):
    """A config for a 3-step run on a 16-row TSV, evaluated on 6 rows, saving nothing."""
    return {"model_dir": str(model_dir), "train_file": str(write_tsv(tmp_path / "train.tsv")),
            "eval_file": str(write_tsv(tmp_path / "dev.tsv", rows=6)), "max_steps": 3,
            "train_batch_size": 4, "logging_steps": 1, "save_strategy": "no", "threads": 2}


# --- config errors (no model needed: parsing fails first) --------------------------------------

@pytest.mark.parametrize("extra, field", [
    ({"learning_rat": 1e-5}, "learning_rat"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"learning_rate": "2e-5"}, "learning_rate"),
    ({"train_batch_size": 0}, "train_batch_size"),
    ({"num_train_epochs": 1.5}, "num_train_epochs"),
    ({"max_steps": 0}, "max_steps"),
    ({"save_strategy": "sometimes"}, "save_strategy"),
    ({"lr_scheduler_type": "cosine_with_restarts"}, "lr_scheduler_type"),
    ({"warmup_ratio": 2}, "warmup_ratio"),
])
def test_bad_config_names_its_field(library, extra, field):
    config = {"model_dir": "/m", "train_file": "t.tsv", "save_strategy": "no", **extra}
    with pytest.raises(sentiment.InvalidArgumentError) as excinfo:
        sentiment.train(config)
    assert excinfo.value.field == field
    assert field in excinfo.value.message


@pytest.mark.parametrize("config, field", [
    ({"train_file": "t.tsv", "save_strategy": "no"}, "model_dir"),
    ({"model_dir": "/m", "save_strategy": "no"}, "train_file"),
    ({"model_dir": "/m", "train_file": "t.tsv"}, "output_dir"),   # the default save_strategy saves
])
def test_required_keys(library, config, field):
    with pytest.raises(sentiment.InvalidArgumentError) as excinfo:
        sentiment.train(config)
    assert excinfo.value.field == field


def test_non_json_values_are_rejected_before_the_call(library):
    with pytest.raises(sentiment.InvalidArgumentError):
        sentiment.train({"model_dir": "/m", "train_file": "t.tsv", "learning_rate": float("nan")})
    with pytest.raises(TypeError):
        sentiment.train({"model_dir": object()})


# --- files ------------------------------------------------------------------------------------

def test_missing_files_name_their_key(tiny, tmp_path):
    with pytest.raises(sentiment.SentimentIOError) as excinfo:
        sentiment.train({**tiny, "train_file": str(tmp_path / "missing.tsv")})
    assert excinfo.value.field == "train_file" and "missing.tsv" in excinfo.value.message
    with pytest.raises(sentiment.SentimentIOError) as excinfo:
        sentiment.train({**tiny, "eval_file": str(tmp_path / "missing-dev.tsv")})
    assert excinfo.value.field == "eval_file"
    with pytest.raises(sentiment.SentimentIOError) as excinfo:
        sentiment.train({**tiny, "model_dir": str(tmp_path / "no-model")})
    assert excinfo.value.field == "model_dir"


def test_bad_tsv_row_gives_file_and_line(tiny, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nfine\t1\nfine\tpositive\n", encoding="utf-8")
    with pytest.raises(sentiment.FormatError) as excinfo:
        sentiment.train({**tiny, "train_file": str(bad)})
    assert excinfo.value.field == "train_file"
    assert f"{bad}:3" in excinfo.value.message


# --- runs -------------------------------------------------------------------------------------

def test_tiny_run(tiny):
    events = []
    result = sentiment.train(tiny, progress=events.append)
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert all(e["total_steps"] == 3 and e["epoch"] == 1 for e in steps)
    assert all(e["loss"] > 0 and e["learning_rate"] >= 0 and e["examples_per_second"] > 0 for e in steps)
    evals = [e for e in events if e["event"] == "eval"]
    assert len(evals) == 1 and 0.0 <= evals[0]["eval_accuracy"] <= 1.0

    assert result["cancelled"] is False
    assert result["steps"] == 3 and result["train_examples"] == 16
    assert result["train_tokens_per_second"] > 0
    assert result["curve"]["steps"] == [1, 2, 3]
    assert result["curve"]["loss"] == [e["loss"] for e in steps]
    (epoch,) = result["epochs"]
    assert epoch["step"] == 3 and epoch["eval_accuracy"] == evals[0]["eval_accuracy"]
    assert result["best_epoch"] == 1


def test_eval_every_n_steps_and_resume(tiny, tmp_path):
    """Rows at eval_steps reach the progress display as they come; a cancelled run resumes."""
    config = {**tiny, "max_steps": 6, "eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps",
              "save_steps": 2, "output_dir": str(tmp_path / "out"), "gradient_accumulation_steps": 2,
              "lr_scheduler_type": "cosine", "warmup_steps": 1}
    stream = io.StringIO()
    progress = sentiment.TrainingProgress(stream=stream)
    full = sentiment.train({**config, "output_dir": str(tmp_path / "full")}, progress=progress)
    assert [r["step"] for r in full["epochs"]] == [2, 4, 6] and full["stop_reason"] == "max_steps"
    assert stream.getvalue().count("train loss") == 3 and "saved" in stream.getvalue()

    def stop_after_step_4(event):
        if event["event"] == "saved" and event["path"].endswith("checkpoint-4"):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        sentiment.train(config, progress=stop_after_step_4)
    resumed = sentiment.train({**config, "resume_from_checkpoint": True})
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == 6
    assert resumed["curve"] == full["curve"]
    assert [r["eval_loss"] for r in resumed["epochs"]] == [r["eval_loss"] for r in full["epochs"]]
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == (tmp_path / "full" / "model.safetensors").read_bytes()


def test_run_without_progress_or_eval(tiny):
    config = {k: v for k, v in tiny.items() if k != "eval_file"}
    result = sentiment.train({**config, "max_steps": 1})
    assert result["steps"] == 1
    assert result["epochs"][0]["eval_accuracy"] is None


def test_callback_that_raises_cancels_and_reraises(tiny):
    seen = []

    def progress(event):
        seen.append(event)
        if event["event"] == "step" and event["step"] == 2:
            raise ValueError("stop here")

    with pytest.raises(ValueError, match="stop here") as excinfo:
        sentiment.train({**tiny, "max_steps": 5}, progress=progress)
    assert len(seen) == 2  # nothing after the cancel
    result = excinfo.value.result
    assert result["cancelled"] is True and result["steps"] == 2
    assert isinstance(excinfo.value.__context__, sentiment.CancelledError)
    assert excinfo.value.__context__.result == result


@pytest.fixture
def ctrl_c_reaches_python():
    """Python's default SIGINT handler for the test: a shell starts background jobs (`cmd &`)
    with SIGINT ignored, and train() rightly leaves an ignored SIGINT alone."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_stops_after_the_current_step(tiny, ctrl_c_reaches_python):
    before = signal.getsignal(signal.SIGINT)
    seen = []

    def progress(event):
        seen.append(event)
        if event["event"] == "step" and event["step"] == 2:
            os.kill(os.getpid(), signal.SIGINT)   # what Ctrl-C does

    with pytest.raises(KeyboardInterrupt) as excinfo:
        sentiment.train({**tiny, "max_steps": 5}, progress=progress)
    assert [e["step"] for e in seen] == [1, 2]
    assert excinfo.value.result["cancelled"] is True
    assert excinfo.value.result["steps"] == 2
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_without_a_progress_callback(tiny, ctrl_c_reaches_python):
    # With no user callback the library still calls the trampoline, which polls the flag.
    # Long enough (epochs of 4 steps) that the signal always arrives during the run.
    config = {**tiny, "max_steps": 5000, "num_train_epochs": 10000, "eval_file": None}
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as excinfo:
            sentiment.train(config)
    finally:
        timer.join()
    assert excinfo.value.result["cancelled"] is True
    assert 0 < excinfo.value.result["steps"] < 5000


def test_handler_restored_after_errors(library):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(sentiment.InvalidArgumentError):
        sentiment.train({"model_dir": "/m"})
    assert signal.getsignal(signal.SIGINT) is before


def test_train_from_another_thread_leaves_signals_alone(tiny):
    before = signal.getsignal(signal.SIGINT)
    outcome = {}

    def run():
        outcome["result"] = sentiment.train({**tiny, "max_steps": 1, "eval_file": None})

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert outcome["result"]["steps"] == 1
    assert signal.getsignal(signal.SIGINT) is before


def test_busy_output_dir(tiny, tmp_path):
    out = tmp_path / "out"
    first_step, release = threading.Event(), threading.Event()
    outcome = {}

    def hold(event):
        if event["event"] == "step":
            first_step.set()
            release.wait(60)

    def first():
        try:
            outcome["result"] = sentiment.train({**tiny, "max_steps": 1, "eval_file": None, "save_strategy": "last",
                                                 "output_dir": str(out)}, progress=hold)
        except BaseException as e:  # noqa: B036 -- reported by the assertion below
            outcome["error"] = e

    worker = threading.Thread(target=first)
    worker.start()
    try:
        assert first_step.wait(120), "the first run never reached a step"
        with pytest.raises(sentiment.BusyError) as excinfo:
            sentiment.train({**tiny, "save_strategy": "last", "output_dir": str(out) + "/"})
        assert excinfo.value.field == "output_dir"
    finally:
        release.set()
        worker.join()
    assert "error" not in outcome, outcome.get("error")
    assert (out / "model.safetensors").is_file()


# --- progress display -------------------------------------------------------------------------

STEP = {"event": "step", "epoch": 1, "step": 132, "total_steps": 1320, "loss": 0.41234,
        "learning_rate": 1.8e-05, "examples_per_second": 410.4}
EVAL = {"event": "eval", "epoch": 2, "step": 528, "train_loss": 0.3, "eval_loss": 0.32,
        "eval_accuracy": 0.8761, "seconds": 3725.0}


def test_formatting():
    line = format_step(STEP, eta_seconds=3723)
    assert line == "step 132/1320  10% | epoch 1 | loss 0.4123 | lr 1.80e-05 | 410 ex/s | ETA 1:02:03"
    assert format_epoch(EVAL) == "epoch 2: step 528, train loss 0.3000, eval loss 0.3200, accuracy 0.8761 (1:02:05)"
    assert format_epoch({**EVAL, "eval_loss": None, "eval_accuracy": None}).endswith("train loss 0.3000 (1:02:05)")
    assert [format_duration(s) for s in (0, 12.4, 245, 3723)] == ["0s", "12s", "4:05", "1:02:03"]


def test_progress_on_a_pipe_prints_plain_lines():
    stream = io.StringIO()
    progress = TrainingProgress(stream=stream, interval=3600)
    progress(STEP)
    progress({**STEP, "step": 133})                       # within the interval: not shown
    progress({**STEP, "step": 1320})                      # the last step: shown
    progress(EVAL)
    progress({"event": "saved", "path": "/tmp/out"})
    progress({"event": "something-new"})                  # unknown events are ignored
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in stream.getvalue()
    assert lines[0].startswith("step 132/1320") and lines[1].startswith("step 1320/1320")
    assert lines[2].startswith("epoch 2:") and lines[3] == "saved /tmp/out"


def test_progress_on_a_terminal_redraws_one_line():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = TrainingProgress(stream=stream)
    progress(STEP)
    progress({**STEP, "step": 140})
    progress(EVAL)
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and "ETA" in text
    assert text.rstrip("\n").splitlines()[-1].startswith("epoch 2:")


# --- curves -----------------------------------------------------------------------------------

def fake_result(steps=60, epochs=3):
    per_epoch = steps // epochs
    return {
        "epochs": [{"epoch": e, "step": e * per_epoch, "train_loss": 0.5 / e, "eval_loss": 0.4 / e,
                    "eval_accuracy": 0.8 + 0.02 * e, "seconds": 10.0} for e in range(1, epochs + 1)],
        "best_epoch": epochs, "output_dir": "/tmp/x", "train_examples": 1000,
        "train_tokens_per_second": 1500.0, "cancelled": False, "steps": steps,
        "curve": {"steps": list(range(1, steps + 1)), "loss": [0.7 * 0.98 ** s for s in range(steps)]},
    }


@pytest.mark.parametrize("result", [
    fake_result(),
    fake_result(steps=5, epochs=1),
    {**fake_result(), "curve": {"steps": [1, 2, 3], "loss": [0.7, None, 0.5]}},   # a non-finite loss
    {**fake_result(), "epochs": [{**e, "eval_loss": None, "eval_accuracy": None} for e in fake_result()["epochs"]],
     "best_epoch": None},
    {"epochs": [], "curve": {"steps": [], "loss": []}, "cancelled": True},
])
def test_curves_svg_is_well_formed(result, tmp_path):
    path = plot.write_curves_svg(result, tmp_path / "c.svg", title="A <title> & more",
                                 reference=[0.868, 0.876, 0.881, 0.884, 0.883])
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    texts = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert "A <title> & more" in texts
    assert "Loss" in texts and "Eval accuracy" in texts


def test_curves_show_the_data():
    svg = plot.curves_svg(fake_result(), reference=[0.87, 0.88])
    assert svg.count("<polyline") >= 4   # raw + smoothed train loss, eval loss, accuracy (+ reference)
    assert "0.860" in svg                # the best epoch's accuracy label
    assert "best epoch 3" in svg


def test_curves_of_a_real_run(tiny, tmp_path):
    result = sentiment.train(tiny)
    path = sentiment.write_curves_svg(result, tmp_path / "curves.svg")
    assert ET.parse(path).getroot().tag.endswith("svg")


def test_csv_and_jsonl_files_train_as_the_tsv_does(tiny, tmp_path, model):
    """The same rows as CSV (CRLF, quoted, label names) and JSON Lines give the same run."""
    names = model.info["labels"]
    rows = [ROWS[i % len(ROWS)] for i in range(16)]
    csv_path = tmp_path / "train.csv"
    csv_path.write_bytes(("\ufefflabel,review\r\n" + "".join(
        f'{names[y]},"{t.replace(chr(34), chr(34) * 2)}"\r\n' for t, y in rows)).encode("utf-8"))
    jsonl_path = tmp_path / "dev.jsonl"
    jsonl_path.write_text("".join(json.dumps({"review": t, "label": names[y]}) + "\n" for t, y in rows[:6]), encoding="utf-8")
    plain = sentiment.train(tiny)
    other = sentiment.train({**tiny, "train_file": str(csv_path), "eval_file": str(jsonl_path), "text_column": "review"})
    assert other["curve"] == plain["curve"]
    assert other["epochs"][0]["eval_loss"] == plain["epochs"][0]["eval_loss"]
