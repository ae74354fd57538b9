"""Users' own data: classify options (top_k, long texts in windows, sentence pairs), label names,
DataFrames and lists, and two learnable tasks built from SST-2 (tools/data/make_user_tasks.py):
three named classes in a CSV, and sentence pairs in JSON Lines."""

import json
import math
import subprocess
import sys

import pytest

import sentiment
from conftest import REPO

LONG = "a charming and often affecting journey . " * 40 + "but the ending is a dreadful , boring mess ."


# --- classify options -------------------------------------------------------------------------

def test_top_k_lists_labels_best_first(model, labels):
    plain = model.classify(["a charming journey", "dull"])
    assert all("labels" not in r for r in plain)
    every = model.classify(["a charming journey", "dull"], top_k=None)
    for r, p in zip(every, plain):
        assert [e["label_id"] for e in r["labels"]] == sorted(range(len(labels)), key=lambda k: -p["probabilities"][k])
        assert r["labels"][0]["label"] == p["label"] and r["labels"][0]["score"] == pytest.approx(p["score"], abs=1e-6)
        assert [e["label"] for e in r["labels"]] == [labels[e["label_id"]] for e in r["labels"]]
    assert [len(r["labels"]) for r in model.classify(["a", "b"], top_k=1)] == [1, 1]
    assert len(model.classify("a", top_k=50)[0]["labels"]) == len(labels)
    with pytest.raises(sentiment.InvalidArgumentError) as e:
        model.classify("a", top_k=0)
    assert e.value.field == "top_k"


def test_long_text_windows_cover_the_whole_text(model):
    tokens = len(model.tokenize(LONG, max_length=512)["input_ids"][0]) - 2
    assert 250 < tokens < 510   # all of it fits in 512
    width = model.info["max_length"] - 2
    for stride in (None, 0, 40):
        s = width // 4 if stride is None else stride
        expected = 1 + math.ceil((tokens - width) / (width - s))
        r = model.classify([LONG, "short"], long_text="window", stride=stride)
        assert [x["windows"] for x in r] == [expected, 1]
        assert sum(r[0]["probabilities"]) == pytest.approx(1, abs=1e-5)
    # A text that fits is read exactly as with truncation.
    short = model.classify("a charming journey", long_text="window")[0]
    plain = model.classify("a charming journey")[0]
    assert short["probabilities"] == pytest.approx(plain["probabilities"], abs=1e-6)
    # Truncation reads the first max_length tokens only: another answer than the windows' mean.
    assert model.classify(LONG)[0]["probabilities"] != pytest.approx(
        model.classify(LONG, long_text="window")[0]["probabilities"], abs=1e-4)
    for kwargs, field in [({"long_text": "window", "stride": width}, "stride"), ({"stride": 4}, "stride"),
                          ({"long_text": "chunks"}, "long_text"),
                          ({"long_text": "window", "text_pairs": ["b"]}, "long_text")]:
        with pytest.raises(sentiment.InvalidArgumentError) as e:
            model.classify("a", **kwargs)
        assert e.value.field == field, kwargs


def test_pairs_tokenize_as_bert_tokenizer_fast(model, model_dir):
    transformers = pytest.importorskip("transformers")
    fast = transformers.BertTokenizerFast.from_pretrained(str(model_dir))
    a = ["a charming and often affecting journey about nothing much", "short", "x"]
    b = ["but dull", "a much longer second sentence that goes on and on and on", ""]
    for max_length in (8, 16, 128):
        got = _tokenize_pairs(model, a, b, max_length)
        want = fast(a, b, truncation="longest_first", max_length=max_length)
        assert got["input_ids"] == want["input_ids"] and got["token_type_ids"] == want["token_type_ids"], max_length


def _tokenize_pairs(model, a, b, max_length):
    from sentiment import _lib
    from sentiment.model import _encode
    with model._use() as handle:
        return _lib.call(_lib.lib().sentiment_tokenize, handle,
                         _encode({"texts": a, "text_pairs": b, "max_length": max_length}))


def test_pairs_classify_and_evaluate(model, labels):
    a, b = ["a charming journey", "dull"], ["it is lovely", "and boring"]
    pairs = model.classify(a, text_pairs=b)
    singles = model.classify(a)
    assert [p["probabilities"] for p in pairs] != [s["probabilities"] for s in singles]
    ev = model.evaluate(texts=a, text_pairs=b, labels=[1, 0])
    assert ev["examples"] == 2
    assert ev["loss"] == pytest.approx(-sum(math.log(p["probabilities"][y]) for p, y in zip(pairs, [1, 0])) / 2, rel=1e-5)
    with pytest.raises(sentiment.InvalidArgumentError) as e:
        model.classify(a, text_pairs=b[:1])
    assert e.value.field == "text_pairs"


# --- labels and data as Python values -----------------------------------------------------------

def test_evaluate_takes_label_names_lists_and_dataframes(model, labels):
    texts = ["a charming journey", "dull", "lovely", "a mess"]
    ids = [1, 0, 1, 0]
    by_id = model.evaluate(texts=texts, labels=ids)
    by_name = model.evaluate(texts=texts, labels=[labels[i].lower() for i in ids])
    rows = model.evaluate([(t, labels[i]) for t, i in zip(texts, ids)])
    dicts = model.evaluate([{"review": t, "label": i} for t, i in zip(texts, ids)], text_column="review")
    for other in (by_name, rows, dicts):
        assert other["loss"] == by_id["loss"] and other["confusion_matrix"] == by_id["confusion_matrix"]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"text": texts, "label": pd.Series(ids, dtype="int64")})
    assert model.evaluate(frame)["loss"] == by_id["loss"]
    with pytest.raises(sentiment.InvalidArgumentError) as e:
        model.evaluate(texts=texts, labels=["positive", "neutral", "positive", "negative"])
    assert e.value.field == "labels" and '"neutral" is not one of the model\'s labels' in str(e.value)
    with pytest.raises(sentiment.InvalidArgumentError) as e:
        model.evaluate(pd.DataFrame({"body": texts, "label": ids}))
    assert "no 'sentence' or 'text' column" in str(e.value)


def test_train_takes_dataframes_and_lists(model_dir, tmp_path):
    rows = [("a charming and often affecting journey .", "good"), ("unflinchingly bleak and desperate", "bad"),
            ("one of the best films of the year .", "good"), ("an utterly predictable , lifeless script .", "bad"),
            ("a so-so affair", "meh")] * 4
    config = {"model_dir": str(model_dir), "train_file": rows, "eval_file": rows[:5], "max_steps": 2,
              "train_batch_size": 4, "save_strategy": "no", "threads": 2}
    r = sentiment.train(config)
    assert r["labels"] == ["bad", "good", "meh"] and r["steps"] == 2
    assert "the classifier starts fresh" in r["notes"][0]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(rows, columns=["review", "verdict"])
    again = sentiment.train({**config, "train_file": frame, "eval_file": frame.head(5),
                             "text_column": "review", "label_column": "verdict"})
    assert again["curve"] == r["curve"] and again["epochs"][-1]["eval_loss"] == r["epochs"][-1]["eval_loss"]
    with pytest.raises(sentiment.InvalidArgumentError) as e:
        sentiment.train({**config, "eval_file": str(tmp_path / "dev.tsv")})
    assert e.value.field == "eval_file"


# --- learnable tasks from SST-2, through Python; their files are those of the C check too ---------

@pytest.fixture(scope="module")
def tasks(dev_tsv, tmp_path_factory):
    out = tmp_path_factory.mktemp("tasks")
    subprocess.run([sys.executable, str(REPO / "tools" / "data" / "make_user_tasks.py"), "--sst2", str(dev_tsv.parent),
                    "--out", str(out), "--train", "3000", "--dev", "600"], check=True, capture_output=True)
    return out


def hf_labels(folder):
    """id2label as transformers reads the saved config.json."""
    transformers = pytest.importorskip("transformers")
    return transformers.AutoConfig.from_pretrained(str(folder)).id2label


def test_three_named_classes_in_a_csv_learn(model_dir, tasks, tmp_path):
    out = tmp_path / "three"
    r = sentiment.train({"model_dir": str(model_dir), "train_file": str(tasks / "three_class_train.csv"),
                         "eval_file": str(tasks / "three_class_dev.csv"), "output_dir": str(out),
                         "save_strategy": "best", "metric_for_best_model": "macro_f1", "max_steps": 100,
                         "train_batch_size": 32, "learning_rate": 1e-4, "warmup_ratio": 0.1, "max_length": 64,
                         "threads": 2, "logging_steps": 50})
    names = ["negative", "not_a_review", "positive"]
    assert r["labels"] == names
    best = max(r["epochs"], key=lambda e: e["eval_macro_f1"])
    # Chance is 1/3; measured 0.87 accuracy at 100 steps.
    assert best["eval_accuracy"] > 0.75 and best["eval_macro_f1"] > 0.7, r["epochs"]
    assert hf_labels(out) == dict(enumerate(names))
    with sentiment.Model(out, threads=2, max_length=64) as m:   # as trained and evaluated
        assert m.info["labels"] == names
        ev = m.evaluate(tasks / "three_class_dev.csv")
        assert ev["accuracy"] == pytest.approx(best["eval_accuracy"], abs=1e-9)
        assert [l["label"] for l in ev["per_label"]] == names and len(ev["confusion_matrix"]) == 3
        assert m.classify("Return the number of items in a container.")[0]["label"] == "not_a_review"


def test_sentence_pairs_in_json_lines_learn(model_dir, tasks, tmp_path):
    out = tmp_path / "pairs"
    r = sentiment.train({"model_dir": str(model_dir), "train_file": str(tasks / "pairs_train.jsonl"),
                         "eval_file": str(tasks / "pairs_dev.jsonl"), "text_column": "sentence1",
                         "text_pair_column": "sentence2", "output_dir": str(out), "save_strategy": "last",
                         "max_steps": 150, "train_batch_size": 32, "learning_rate": 1e-4, "warmup_ratio": 0.1,
                         "max_length": 96, "threads": 2, "logging_steps": 50})
    assert r["labels"] == ["other", "part"]
    # Chance is 1/2, and neither text alone tells the label; measured 0.98 at 150 steps.
    assert r["epochs"][-1]["eval_accuracy"] > 0.85, r["epochs"]
    assert hf_labels(out) == {0: "other", 1: "part"}
    with sentiment.Model(out, threads=2, max_length=96) as m:
        ev = m.evaluate(tasks / "pairs_dev.jsonl", text_column="sentence1", text_pair_column="sentence2")
        assert ev["accuracy"] == pytest.approx(r["epochs"][-1]["eval_accuracy"], abs=1e-9)
        review = "the acting is wooden but the score is lovely"
        got = m.classify([review, review], text_pairs=["score is lovely", "a charming journey"])
        assert [g["label"] for g in got] == ["part", "other"]
