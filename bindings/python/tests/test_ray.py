"""sentiment.ray on a local Ray cluster of 2 CPUs: SST-2 dev scored through
Dataset.map_batches with 2 actors, in numpy and pandas batches, gives Model.classify's labels
and scores.

Skipped when ray (with ray.data) is missing (scripts/install_deps.sh installs it).
"""
import csv
import os
import sys

import pytest

import sentiment
import sentiment.ray


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def dev(ray, dev_tsv):
    with open(dev_tsv, newline="", encoding="utf-8") as f:
        rows = [{"id": i, "text": r["sentence"]}
                for i, r in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))]
    return rows, ray.data.from_items(rows)


@pytest.fixture(scope="module")
def expected(model, dev):
    rows, _ = dev
    return model.classify([r["text"] for r in rows])


def scored(ray, ds, batch_format, **kwargs):
    """The dataset through 2 one-CPU actors, as a pandas DataFrame in id order."""
    out = ds.map_batches(sentiment.ray.Classifier, fn_constructor_kwargs=kwargs, batch_format=batch_format,
                         compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1, batch_size=128)
    return out.to_pandas().sort_values("id").reset_index(drop=True)


def assert_same(labels, scores, expected):
    assert len(labels) == len(expected) == 872
    assert list(labels) == [e["label"] for e in expected]
    assert max(abs(s - e["score"]) for s, e in zip(scores, expected)) <= 1e-6


def test_numpy_batches_with_probabilities(ray, dev, model_dir, expected):
    _, ds = dev
    frame = scored(ray, ds, "numpy", model=str(model_dir), probabilities=True)
    assert list(frame.columns) == ["id", "text", "label", "score", "probabilities"]
    assert_same(frame["label"], frame["score"], expected)
    for p, e in zip(frame["probabilities"], expected):
        assert list(p) == pytest.approx(e["probabilities"], abs=1e-6)


def test_pandas_batches_from_a_model(ray, dev, model_dir, expected):
    _, ds = dev
    frame = scored(ray, ds, "pandas", model=sentiment.Model(model_dir, threads=2), prefix="predicted_")
    assert list(frame.columns) == ["id", "text", "predicted_label", "predicted_score"]
    assert_same(frame["predicted_label"], frame["predicted_score"], expected)


def test_threads_are_the_actors_cpus(ray, model_dir):
    @ray.remote(num_cpus=2)
    def threads():
        return sentiment.ray.Classifier(model_dir).model.info["threads"]
    assert ray.get(threads.remote(), timeout=120) == 2


def test_errors_name_the_column(model_dir):
    pd = pytest.importorskip("pandas")
    classifier = sentiment.ray.Classifier(model_dir, threads=1)   # a given threads needs no ray
    with pytest.raises(sentiment.InvalidArgumentError, match="no column 'text'"):
        classifier({"review": ["good"]})
    with pytest.raises(sentiment.InvalidArgumentError, match="'label' exists already") as e:
        classifier({"text": ["good"], "label": [1]})
    assert e.value.field == "prefix"
    missing = "column 'text': row 1 of the batch is (None|nan), not a string"   # pandas 3 holds nan
    with pytest.raises(sentiment.InvalidArgumentError, match=missing) as e:
        classifier(pd.DataFrame({"text": ["good", None]}))
    assert e.value.field == "text"


def test_without_ray_the_error_names_the_package(monkeypatch, model_dir):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match="pip install ray\\[data\\]"):
        sentiment.ray.Classifier(model_dir)
