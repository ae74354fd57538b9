"""The `sentiment` command: every subcommand, bad flags and files, streaming, Ctrl-C on train.

Needs the built command (SENTIMENT_CLI, default .build/release/sentiment-cli), the model
folder (SENTIMENT_MODEL_DIR) and SST-2 (SENTIMENT_DATA_DIR), as scripts/test.sh sets them.
"""

import json
import os
import pty
import select
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = os.environ.get("SENTIMENT_CLI", str(ROOT / ".build/release/sentiment-cli"))
MODEL = os.environ["SENTIMENT_MODEL_DIR"]
DATA = Path(os.environ["SENTIMENT_DATA_DIR"])


def run(*args, stdin="", env=None):
    return subprocess.run([CLI, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=300,
                          env=env)


def run_on_tty(*args, stream="stdout"):
    """Runs with stdout (or stderr) on a pseudo-terminal; returns (exit code, what it showed there)."""
    master, slave = pty.openpty()
    kwargs = {stream: slave, "stdout" if stream == "stderr" else "stderr": subprocess.PIPE}
    p = subprocess.Popen([CLI, *map(str, args)], stdin=subprocess.DEVNULL, **kwargs)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return p.wait(timeout=300), shown.decode()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    train = (DATA / "train.tsv").read_text().splitlines()[:33]
    dev = (DATA / "dev.tsv").read_text().splitlines()[:17]
    (d / "train.tsv").write_text("\n".join(train) + "\n")
    (d / "dev.tsv").write_text("\n".join(dev) + "\n")
    rows = [line.split("\t") for line in dev[1:]]
    (d / "dev.csv").write_text("text,label\n" + "".join(f'"{t.replace(chr(34), chr(34) * 2)}",{y}\n' for t, y in rows))
    (d / "dev.jsonl").write_text("".join(json.dumps({"review": t, "label": int(y)}) + "\n" for t, y in rows))
    (d / "bad.csv").write_text('text,label\n"unclosed,1\n')
    return d


@pytest.mark.parametrize("sub", ["", "classify", "evaluate", "train", "quantize", "tokenize", "info"])
def test_every_subcommand_has_help(sub):
    r = run(*([sub] if sub else []), "--help")
    assert r.returncode == 0
    assert "USAGE: sentiment" in r.stdout


def test_train_help_lists_every_config_key():
    header = (ROOT / "include/sentiment.h").read_text()
    out = run("train", "--help").stdout.replace("\n", " ")
    for key in ["eval_strategy", "save_total_limit", "resume_from_checkpoint", "gradient_accumulation_steps",
                "lr_scheduler_type", "warmup_steps", "early_stopping_patience"]:
        assert f'"{key}"' in header and key in out


def test_info():
    r = run("info")
    assert r.returncode == 0 and r.stdout.startswith("sentiment 0.")
    info = json.loads(run("info", "-m", MODEL, "--json").stdout)
    assert info["labels"] and info["abi_version"] == 1
    assert "hidden_size" in run("info", "-m", MODEL).stdout


def test_classify_arguments_jsonl():
    r = run("classify", "-m", MODEL, "--threads", 1, "a charming journey", "a tedious mess")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["text"] for row in rows] == ["a charming journey", "a tedious mess"]
    assert all(row["label"] in ("NEGATIVE", "POSITIVE") and 0.5 <= row["score"] <= 1 for row in rows)


def test_classify_stdin_keeps_every_line():
    r = run("classify", "-m", MODEL, "--threads", 1, "-o", "tsv", "--batch-size", 2, stdin="good\n\nbad\r\nfine")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "text\tlabel\tscore"
    assert [line.split("\t")[0] for line in lines[1:]] == ["good", "", "bad", "fine"]


@pytest.mark.parametrize("name,extra", [("dev.tsv", []), ("dev.csv", []), ("dev.jsonl", ["--text-column", "review"])])
def test_classify_data_files(data, name, extra):
    r = run("classify", "-m", MODEL, "--threads", 1, "-i", data / name, *extra, "-o", "csv", "--top-k", "all")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "text,label,score,label_1,score_1,label_2,score_2"
    assert len(lines) == 17


def test_classify_table_on_a_terminal():
    code, shown = run_on_tty("classify", "-m", MODEL, "--threads", 1, "a charming journey")
    assert code == 0
    assert shown.splitlines()[0].split() == ["LABEL", "SCORE", "TEXT"]
    assert "a charming journey" in shown


def test_classify_writes_each_batch_as_it_goes():
    p = subprocess.Popen([CLI, "classify", "-m", MODEL, "--threads", "1", "--batch-size", "4", "-o", "jsonl"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    p.stdin.write("one\ntwo\nthree\nfour\n")
    p.stdin.flush()
    ready, _, _ = select.select([p.stdout], [], [], 120)
    assert ready, "no result before stdin was closed"
    assert json.loads(p.stdout.readline())["text"] == "one"
    p.stdin.write("five\n")
    p.stdin.close()
    assert [json.loads(line)["text"] for line in p.stdout.read().splitlines()] == ["two", "three", "four", "five"]
    assert p.wait(timeout=60) == 0


def peak_rss_kb(lines):
    p = subprocess.Popen([CLI, "classify", "-m", MODEL, "--threads", "1", "--precision", "int8", "-o", "tsv"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    p.stdin.write(b"".join(b"good %d\n" % i for i in range(lines)))
    p.stdin.close()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    assert p.returncode == 0
    return usage.ru_maxrss


def test_classify_memory_does_not_grow_with_the_input():
    small, large = peak_rss_kb(500), peak_rss_kb(10_000)
    assert large < small + 20_000, (small, large)


@pytest.mark.parametrize("args,code,field", [
    (["--precision", "fp16", "x"], 2, "precision (--precision)"),
    (["--batch-size", "0", "x"], 2, "batch_size (--batch-size)"),
    (["--top-k", "0", "x"], 2, "top_k (--top-k)"),
    (["--no-such-flag", "x"], 2, None),
    (["--format", "xml", "-i", "f.xml"], 2, "format (--format)"),
    (["-i", "/nonexistent/dev.tsv"], 3, "input (--input)"),
])
def test_classify_bad_flags_and_files(args, code, field):
    r = run("classify", "-m", MODEL, *args)
    assert r.returncode == code, r.stderr
    assert r.stdout == ""
    if field:
        assert f"[field: {field}]" in r.stderr
    else:
        assert "Unknown option" in r.stderr


def test_bad_model_folder_is_io_naming_the_flag():
    r = run("classify", "-m", "/nonexistent", "x")
    assert r.returncode == 3 and "[field: model_dir (--model)]" in r.stderr


def test_malformed_data_and_stdin_are_format_errors(data):
    r = run("classify", "-m", MODEL, "-i", data / "bad.csv")
    assert r.returncode == 4 and "bad.csv:2" in r.stderr
    r = subprocess.run([CLI, "classify", "-m", MODEL], input=b"ok\n\xff\xfe\n", capture_output=True, timeout=120)
    assert r.returncode == 4 and b"stdin:2: not valid UTF-8" in r.stderr


def test_evaluate(data):
    r = run("evaluate", "-m", MODEL, "--threads", 1, data / "dev.tsv")
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "confusion matrix" in r.stdout
    doc = json.loads(run("evaluate", "-m", MODEL, "--threads", 1, data / "dev.jsonl", "--text-column", "review",
                         "--json").stdout)
    assert doc["examples"] == 16 and sum(map(sum, doc["confusion_matrix"])) == 16
    r = run("evaluate", "-m", MODEL, data / "bad.csv")
    assert r.returncode == 4 and "[field: data_file" in r.stderr


def test_tokenize():
    r = run("tokenize", "-m", MODEL, "-o", "jsonl", "unaffected charm")
    assert json.loads(r.stdout)["tokens"] == ["[CLS]", "unaffected", "charm", "[SEP]"]
    assert run("tokenize", "-m", MODEL, stdin="hi\n").stdout.startswith('{"text":"hi"')
    assert run("tokenize", "-m", MODEL, "-o", "xml", "x").returncode == 2


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_quantize(tmp_path, precision):
    r = run("quantize", "-m", MODEL, "-o", tmp_path / precision, "--to", precision)
    assert r.returncode == 0, r.stderr
    size = (tmp_path / precision / "model.safetensors").stat().st_size
    assert size < (0.3 if precision == "int8" else 0.55) * (Path(MODEL) / "model.safetensors").stat().st_size
    load_as = "int8" if precision == "int8" else "fp32"
    assert run("classify", "-m", tmp_path / precision, "--precision", load_as, "fine").returncode == 0
    assert run("quantize", "-m", MODEL, "-o", tmp_path / "x", "--to", "int4").returncode == 2


def test_quantize_calibrated(tmp_path):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("a charming journey\nthe worst film of the year\n")
    r = run("quantize", "-m", MODEL, "-o", tmp_path / "int8", "--calibration-file", sentences, "--outlier-channels", 4,
            "--smoothquant-alpha", 0.5)
    assert r.returncode == 0, r.stderr
    info = json.loads(run("info", "-m", tmp_path / "int8", "--precision", "int8", "--json").stdout)
    assert info["quantization"] == {"method": "smoothquant", "smoothquant_alpha": 0.5, "outlier_channels": 4,
                                    "calibration_samples": 2, "calibration_file": "sentences.txt"}
    r = run("classify", "-m", MODEL, "--precision", "int8", "--calibration-file", tmp_path / "missing.txt", "fine")
    assert r.returncode == 3 and "--calibration-file" in r.stderr, r.stderr


def train_args(data, out, *extra):
    return ["train", "-m", MODEL, "--train-file", data / "train.tsv", "-o", out, "--batch-size", 8,
            "--threads", 1, *extra]


def test_train_flags_and_config(data, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"max_steps": 100, "learning_rate": 1e-4, "eval_file": str(data / "dev.tsv")}))
    r = run(*train_args(data, tmp_path / "out", "--config", config, "--max-steps", 3, "--lr-scheduler-type", "cosine",
                        "--warmup-steps", 1, "--set", "save_total_limit=1", "--eval-strategy", "steps",
                        "--eval-steps", 2, "--no-dropout", "--json"))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["steps"] == 3 and [row["step"] for row in result["epochs"]] == [2, 3]
    assert "step 3/3" in r.stderr  # plain progress lines off a terminal
    assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.parametrize("args,field", [
    (["--warmup-step", "3"], "warmup_step (--warmup-step)"),
    (["--epochs", "two"], "num_train_epochs (--epochs)"),
    (["--set", "learning_rate=-1"], "learning_rate (--learning-rate)"),
    (["--lr-scheduler-type", "wavy"], "lr_scheduler_type (--lr-scheduler-type)"),
])
def test_train_bad_keys_name_the_field(data, tmp_path, args, field):
    r = run(*train_args(data, tmp_path / "out", *args))
    assert r.returncode == 2 and f"[field: {field}]" in r.stderr, r.stderr


def test_train_bad_files(data, tmp_path):
    r = run(*train_args(data, tmp_path / "out", "--config", tmp_path / "missing.json"))
    assert r.returncode == 3 and "[field: config (--config)]" in r.stderr
    (tmp_path / "c.json").write_text("[1]")
    assert run(*train_args(data, tmp_path / "out", "--config", tmp_path / "c.json")).returncode == 4
    r = run("train", "-m", MODEL, "--train-file", data / "bad.csv", "--save-strategy", "no")
    assert r.returncode == 4 and "bad.csv:2" in r.stderr


def test_train_progress_line_on_a_terminal(data, tmp_path):
    code, shown = run_on_tty(*train_args(data, tmp_path / "out", "--max-steps", 3, "--save-strategy", "no"),
                             stream="stderr")
    assert code == 0
    assert "\r\x1b[K[" in shown and "step 3/3" in shown and "ETA" in shown


def test_train_ctrl_c_stops_keeps_checkpoints_and_prints_the_table(data, tmp_path):
    out = tmp_path / "out"
    args = train_args(data, out, "--max-steps", 40, "--eval-file", data / "dev.tsv", "--save-strategy", "steps",
                      "--save-steps", 2)
    p = subprocess.Popen([CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in p.stderr:
        seen.append(line)
        if line.startswith("saved"):
            break
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 5, stderr
    assert stdout.startswith("epoch") and "stopped: cancelled" in stdout
    assert "sentiment: cancelled:" in stderr and "checkpoints saved so far stay" in stderr
    assert (out / "checkpoint-2" / "model.safetensors").is_file()
    # The same command with --resume-from-checkpoint continues from the newest checkpoint.
    r = run(*args, "--resume-from-checkpoint", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["resumed_from_step"] >= 2 and result["steps"] == 40
