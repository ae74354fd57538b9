"""sentiment.spark in pyspark local[2]: SST-2 dev scored through mapInPandas and through a
pandas UDF gives Model.classify's labels and scores, with one model per Python worker.

Skipped when pyspark, pandas or pyarrow is missing (scripts/install_deps.sh installs them).
"""
import csv
import os
import sys

import pytest

import sentiment
import sentiment.spark

# pyspark 4.x warns that pandas >= 3 is not fully supported; the paths used here work.
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support:FutureWarning")


@pytest.fixture(scope="module")
def spark():
    for module in ("pyspark", "pandas", "pyarrow"):
        pytest.importorskip(module)
    from pyspark.sql import SparkSession
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2]").appName("sentiment-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def dev(spark, dev_tsv):
    """SST-2 dev as (id, sentence, label) rows in 4 partitions."""
    with open(dev_tsv, newline="", encoding="utf-8") as f:
        rows = [(i, r["sentence"], int(r["label"]))
                for i, r in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))]
    return rows, spark.createDataFrame(rows, "id long, sentence string, label long").repartition(4)


@pytest.fixture(scope="module")
def expected(model, dev):
    rows, _ = dev
    return model.classify([sentence for _, sentence, _ in rows])


def assert_same(labels, scores, expected):
    assert len(labels) == len(expected) == 872
    assert labels == [e["label"] for e in expected]
    assert max(abs(s - e["score"]) for s, e in zip(scores, expected)) <= 1e-6


def test_classify_adds_label_score_and_probabilities(dev, model_dir, expected):
    _, df = dev
    scored = sentiment.spark.classify(df, model_dir, text_col="sentence", probabilities=True, prefix="predicted_")
    assert scored.columns == ["id", "sentence", "label", "predicted_label", "predicted_score",
                              "predicted_probabilities"]
    rows = sorted(scored.collect(), key=lambda r: r.id)
    assert_same([r.predicted_label for r in rows], [r.predicted_score for r in rows], expected)
    for r, e in zip(rows, expected):
        assert r.predicted_probabilities == pytest.approx(e["probabilities"], abs=1e-6)


def test_classify_udf_gives_a_struct_column(dev, model_dir, expected):
    _, df = dev
    udf = sentiment.spark.classify_udf(sentiment.Model(model_dir, threads=1))
    rows = sorted(df.select("id", udf("sentence").alias("s")).select("id", "s.*").collect(), key=lambda r: r.id)
    assert rows[0].__fields__ == ["id", "label", "score"]
    from pyspark import cloudpickle
    shipped = cloudpickle.dumps(udf.func)   # built from a Model: its config goes, not the Model
    assert b"_from_config" not in shipped and len(shipped) < 4000
    assert_same([r.label for r in rows], [r.score for r in rows], expected)


def test_one_model_per_worker_process_with_the_tasks_cpus(spark, dev, model_dir):
    """Each Python worker holds one model (threads = spark.task.cpus, 1 here) for all its
    tasks: 8 tasks over 2 workers load at most 2 models."""
    _, df = dev

    def models(frames):
        import pandas as pd
        from sentiment import _workers
        for _ in frames:
            pass
        yield pd.DataFrame({"pid": [os.getpid()],
                            "threads": [[m.info["threads"] for m in _workers._models.values()]]})

    small = df.limit(64).repartition(8)
    assert sentiment.spark.classify(small, model_dir, text_col="sentence", prefix="p_").count() == 64
    workers = spark.range(8, numPartitions=8).mapInPandas(models, "pid long, threads array<long>").collect()
    assert all(r.threads == [1] for r in workers), workers
    assert len({r.pid for r in workers}) <= 2


def test_errors_name_the_column(dev, model_dir):
    _, df = dev
    with pytest.raises(sentiment.InvalidArgumentError, match="'label' exists already") as e:
        sentiment.spark.classify(df, model_dir, text_col="sentence")
    assert e.value.field == "prefix"
    with pytest.raises(sentiment.InvalidArgumentError, match="no column 'text'") as e:
        sentiment.spark.classify(df, model_dir)
    assert e.value.field == "text_col"


def test_without_pyspark_the_error_names_the_package(monkeypatch, model_dir):
    for module in ("pandas", "pyarrow"):
        pytest.importorskip(module)
    monkeypatch.setitem(sys.modules, "pyspark.sql.functions", None)
    with pytest.raises(ImportError, match="pip install pyspark"):
        sentiment.spark.classify_udf(model_dir)
