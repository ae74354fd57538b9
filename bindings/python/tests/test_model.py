"""Model: load, info, classify, tokenize, evaluate, save."""

import json
import math

import pytest

import sentiment

SENTENCES = [
    "it 's a charming and often affecting journey . ",
    "unflinchingly bleak and desperate",
    "A gorgeous, witty, seductive movie.",
    "the acting is terrible",
    "",
    "Ünïcödé — naïve café, 日本語 😀",
    "good " * 600,  # far beyond max_length: truncated
    "it is not a bad film",
    "whatever",
]


def argmax(values):
    return max(range(len(values)), key=values.__getitem__)


def check_result(result, labels):
    assert {"label", "score", "label_id", "probabilities", "logits"} <= result.keys()
    assert len(result["probabilities"]) == len(result["logits"]) == len(labels)
    assert result["label_id"] == argmax(result["logits"])
    assert result["label"] == labels[result["label_id"]]
    assert math.fsum(result["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert result["score"] == pytest.approx(max(result["probabilities"]), abs=1e-7)
    assert all(0.0 <= p <= 1.0 for p in result["probabilities"])


def test_info(model, model_dir):
    info = model.info
    assert info["model_type"] in ("bert", "distilbert")
    assert info["max_length"] == 128
    assert info["precision"] == "fp32"
    labels = info["labels"]
    assert isinstance(labels, list) and len(labels) >= 2 and all(isinstance(label, str) for label in labels)
    assert info is not model.info  # a fresh dict each time


def test_load_options_pass_through(model_dir):
    with sentiment.Model(model_dir, max_length=64, threads=1, seed=7) as m:
        info = m.info
        assert info["max_length"] == 64
        assert info["threads"] == 1


def test_classify_single_string(model, labels):
    results = model.classify("a charming and often affecting journey")
    assert isinstance(results, list) and len(results) == 1
    check_result(results[0], labels)


def test_classify_batch(model, labels):
    results = model.classify(SENTENCES, batch_size=4)
    assert len(results) == len(SENTENCES)
    for result in results:
        check_result(result, labels)


def test_classify_accepts_any_iterable(model):
    assert model.classify(iter(SENTENCES[:3])) == model.classify(tuple(SENTENCES[:3]))


def test_classify_empty_list(model):
    assert model.classify([]) == []


def assert_same_predictions(a, b, tol=1e-5):
    """Same labels; logits equal up to GEMM summation order (fp32)."""
    assert [r["label_id"] for r in a] == [r["label_id"] for r in b]
    for ra, rb in zip(a, b):
        assert max(abs(x - y) for x, y in zip(ra["logits"], rb["logits"])) < tol, (ra, rb)


def test_batch_equals_one_by_one(model):
    batched = model.classify(SENTENCES, batch_size=3)
    single = [model.classify(text)[0] for text in SENTENCES]
    assert_same_predictions(batched, single)


def test_classify_is_deterministic(model):
    assert model.classify(SENTENCES) == model.classify(SENTENCES)


def test_tokenize(model):
    result = model.tokenize(["Hello, world!", "it 's a charming journey"])
    assert result["tokens"][0] == ["[CLS]", "hello", ",", "world", "!", "[SEP]"]
    assert result["input_ids"][0] == [101, 7592, 1010, 2088, 999, 102]
    for ids, tokens in zip(result["input_ids"], result["tokens"]):
        assert len(ids) == len(tokens)
        assert (ids[0], ids[-1]) == (101, 102)
        assert (tokens[0], tokens[-1]) == ("[CLS]", "[SEP]")


def test_tokenize_single_string_and_truncation(model):
    result = model.tokenize("good " * 600, max_length=16)
    assert len(result["input_ids"]) == 1
    ids = result["input_ids"][0]
    assert len(ids) == 16 and (ids[0], ids[-1]) == (101, 102)
    assert len(model.tokenize("good " * 600)["input_ids"][0]) == 128  # the model's max_length


def test_evaluate_texts_matches_classify(model):
    texts = SENTENCES[:6]
    labels = [1, 0, 1, 0, 1, 0]
    result = model.evaluate(texts=texts, labels=labels, batch_size=4)
    assert result["examples"] == len(texts)
    predictions = model.classify(texts)
    accuracy = sum(p["label_id"] == y for p, y in zip(predictions, labels)) / len(texts)
    loss = -sum(math.log(p["probabilities"][y]) for p, y in zip(predictions, labels)) / len(texts)
    assert result["accuracy"] == pytest.approx(accuracy)
    assert result["loss"] == pytest.approx(loss, rel=1e-4)
    assert result["seconds"] >= 0


def test_evaluate_dev_set_with_progress(model, dev_tsv, labels):
    events = []
    result = model.evaluate(dev_tsv, batch_size=64, progress=events.append)
    assert result["examples"] == 872
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["loss"] > 0
    # The metrics agree with each other (their values are checked against scikit-learn in Swift).
    matrix = result["confusion_matrix"]
    assert sum(map(sum, matrix)) == 872 and len(matrix) == len(labels)
    assert sum(matrix[i][i] for i in range(len(matrix))) / 872 == pytest.approx(result["accuracy"], abs=1e-12)
    assert [r["label"] for r in result["per_label"]] == labels
    assert [r["support"] for r in result["per_label"]] == [sum(row) for row in matrix] == [428, 444]
    assert -1.0 <= result["mcc"] <= 1.0 and 0.0 <= result["macro_f1"] <= 1.0
    progress = [e for e in events if e.get("event") == "progress"]
    assert progress, events
    done = [e["examples"] for e in progress]
    assert done == sorted(done) and done[-1] == progress[-1]["total"] == 872


def test_evaluate_reads_csv_jsonl_and_windows_files_as_the_tsv(model, dev_tsv, labels, tmp_path):
    """The first 100 dev rows as a CRLF TSV with a BOM, a quoted CSV with label names and a
    JSON Lines file all give the TSV's figures (SST-2 has no quotes: the CSV adds some)."""
    rows = [line.split("\t") for line in dev_tsv.read_text(encoding="utf-8").splitlines()[1:101]]
    rows = [(t, int(y)) for t, y in rows]
    plain = tmp_path / "dev.tsv"
    plain.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    windows = tmp_path / "windows.tsv"
    windows.write_bytes(("\ufeffsentence\tlabel\r\n" + "".join(f"{t}\t{y}\r\n" for t, y in rows)).encode("utf-8"))
    quoted = tmp_path / "dev.csv"
    quoted.write_text("label,text\n" + "".join(f'{labels[y].lower()},"{t}"\n' for t, y in rows), encoding="utf-8")
    lines = tmp_path / "dev.jsonl"
    lines.write_text("".join(json.dumps({"sentence": t, "label": labels[y]}) + "\n" for t, y in rows), encoding="utf-8")
    want = model.evaluate(plain)
    assert want["examples"] == 100
    for path in (windows, quoted, lines):
        got = model.evaluate(path)
        assert (got["examples"], got["accuracy"], got["loss"]) == (want["examples"], want["accuracy"], want["loss"]), path
    same = tmp_path / "dev.data"
    same.write_text("id,review,stars\n" + "".join(f'{i},"{t}",{y}\n' for i, (t, y) in enumerate(rows)), encoding="utf-8")
    got = model.evaluate(same, format="csv", text_column="review", label_column="stars")
    assert (got["accuracy"], got["loss"]) == (want["accuracy"], want["loss"])


def test_evaluate_bad_row_names_file_and_line(model, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('sentence,label\nfine,1\n"never closed,0\n', encoding="utf-8")
    with pytest.raises(sentiment.FormatError) as excinfo:
        model.evaluate(bad)
    assert excinfo.value.field == "data_file"
    assert f"{bad}:3: a quote opened on line 3 is never closed" in excinfo.value.message
    with pytest.raises(sentiment.InvalidArgumentError) as excinfo:
        model.evaluate(bad, format="xlsx")
    assert excinfo.value.field == "format"


def test_save_and_reload_gives_identical_logits(model, tmp_path):
    out = tmp_path / "saved"
    saved = model.save(out)
    assert saved["output_dir"] == str(out)
    assert {"config.json", "vocab.txt", "model.safetensors"} <= {p.rsplit("/", 1)[-1] for p in saved["files"]}
    for name in ("config.json", "vocab.txt", "model.safetensors"):
        assert (out / name).is_file()
    with sentiment.Model(out) as reloaded:
        assert reloaded.info["labels"] == model.info["labels"]
        # A BERT encoder with the DistilBERT head is saved as DistilBERT with token type 0
        # folded into the position table, so sums round differently in the last bits.
        assert_same_predictions(reloaded.classify(SENTENCES), model.classify(SENTENCES))


def test_context_manager_and_close(model_dir):
    with sentiment.Model(model_dir) as m:
        assert not m.closed
        m.classify("fine")
    assert m.closed
    m.close()  # idempotent
    assert "closed" in repr(m)


def test_unclosed_model_is_freed_by_the_garbage_collector(model_dir):
    import gc

    m = sentiment.Model(model_dir)
    m.classify("fine")
    del m
    gc.collect()


# int8 (precision="int8"): quantized at load from the float checkpoint, or loaded from an int8 one.

@pytest.fixture(scope="module")
def int8_model(model_dir):
    with sentiment.Model(model_dir, precision="int8") as m:
        yield m


def test_int8_info_and_results(int8_model, labels):
    assert int8_model.info["precision"] == "int8"
    for result in int8_model.classify(SENTENCES):
        check_result(result, labels)


def test_int8_batch_one_equals_batched_bit_for_bit(int8_model):
    batched = int8_model.classify(SENTENCES, batch_size=32)
    alone = [int8_model.classify([s], batch_size=1)[0] for s in SENTENCES]
    assert [r["logits"] for r in alone] == [r["logits"] for r in batched]


def test_int8_save_and_reload(int8_model, model_dir, tmp_path):
    out = tmp_path / "int8"
    int8_model.save(out, precision="int8")
    assert (out / "model.safetensors").stat().st_size <= 0.30 * (model_dir / "model.safetensors").stat().st_size
    with sentiment.Model(out, precision="int8") as reloaded:
        # The default model (BERT encoder, DistilBERT head) is saved as DistilBERT with token type 0
        # folded into the position table, so this first reload rounds differently in the last bits;
        # from then on an int8 save/load round trip gives identical logits.
        assert_same_predictions(reloaded.classify(SENTENCES), int8_model.classify(SENTENCES))
        reloaded.save(tmp_path / "again", precision="int8")
        with sentiment.Model(tmp_path / "again", precision="int8") as again:
            assert [r["logits"] for r in again.classify(SENTENCES)] == [r["logits"] for r in reloaded.classify(SENTENCES)]


# int8 calibrated with SmoothQuant (calibration_file): the scheme is reported and saved, results stay
# batch-invariant, and a quantizing save writes the same checkpoint as a quantizing load.

@pytest.fixture(scope="module")
def calibration_file(dev_tsv, tmp_path_factory):
    """The first 64 training sentences (dev stays unseen), as a plain text file."""
    train = dev_tsv.parent / "train.tsv"
    if not train.is_file():
        pytest.skip(f"{train} not found")
    lines = train.read_text(encoding="utf-8").splitlines()[1:65]
    path = tmp_path_factory.mktemp("calibration") / "sentences.txt"
    path.write_text("\n".join(line.rsplit("\t", 1)[0] for line in lines) + "\n", encoding="utf-8")
    return path


def test_calibrated_int8(model, model_dir, calibration_file, tmp_path):
    with sentiment.Model(model_dir, precision="int8", calibration_file=calibration_file, calibration_samples=32,
                         smoothquant_alpha=0.6) as m:
        assert m.info["quantization"] == {"method": "smoothquant", "smoothquant_alpha": 0.6, "outlier_channels": 16,
                                          "calibration_samples": 32, "calibration_file": "sentences.txt"}
        batched = [r["logits"] for r in m.classify(SENTENCES, batch_size=32)]
        assert [m.classify([s], batch_size=1)[0]["logits"] for s in SENTENCES] == batched
        m.save(tmp_path / "loaded", precision="int8")
    model.save(tmp_path / "saved", precision="int8", calibration_file=calibration_file, calibration_samples=32,
               smoothquant_alpha=0.6)
    assert (tmp_path / "loaded" / "model.safetensors").read_bytes() == (tmp_path / "saved" / "model.safetensors").read_bytes()
    with sentiment.Model(tmp_path / "saved", precision="int8") as reloaded:
        assert reloaded.info["quantization"]["method"] == "smoothquant"
        # The first reload of the DistilBERT-layout save sees a position table rounded in the last
        # bits (see above), which can move an activation across a quantization step; from then on
        # the round trip is exact.
        first = [r["logits"] for r in reloaded.classify(SENTENCES)]
        assert max(abs(a - b) for x, y in zip(first, batched) for a, b in zip(x, y)) < 1e-2
        reloaded.save(tmp_path / "again", precision="int8")
        with sentiment.Model(tmp_path / "again", precision="int8") as again:
            assert again.info["quantization"] == reloaded.info["quantization"]
            assert [r["logits"] for r in again.classify(SENTENCES)] == first


def test_calibration_keys_are_checked(model_dir, calibration_file):
    with pytest.raises(sentiment.InvalidArgumentError) as e:
        sentiment.Model(model_dir, precision="int8", calibration_samples=8)
    assert e.value.field == "calibration_samples"
    with pytest.raises(sentiment.InvalidArgumentError) as e:
        sentiment.Model(model_dir, calibration_file=calibration_file)
    assert e.value.field == "calibration_file"
    with pytest.raises(sentiment.InvalidArgumentError) as e:
        sentiment.Model(model_dir, precision="int8", calibration_file=calibration_file, smoothquant_alpha=2)
    assert e.value.field == "smoothquant_alpha"


def test_unknown_precision_names_the_field(model_dir):
    with pytest.raises(sentiment.InvalidArgumentError) as e:
        sentiment.Model(model_dir, precision="int4")
    assert e.value.field == "precision"
