"""Batch scoring on Apache Spark: label, score and, optionally, all probabilities for a
DataFrame's text column. Needs pyspark (with pandas and pyarrow), imported on first use.

    import sentiment.spark
    scored = sentiment.spark.classify(df, "/models/sst2", text_col="review")   # + label, score
    # or as one struct column:
    scored = df.withColumn("sentiment", sentiment.spark.classify_udf("/models/sst2")("review"))

model is a checkpoint folder, a load-config dict or a sentiment.Model; what reaches the
executors is its load config, never the weights. Each Python worker process loads the model
once from that folder (which must exist on every executor) and reuses it for every later task
and batch. threads defaults to the CPUs Spark gives the task (spark.task.cpus): Spark runs one
Python worker per concurrent task, so an executor with 8 cores and spark.task.cpus=1 runs 8
one-thread models, and spark.task.cpus=2 gives 4 two-thread ones. Other keywords (precision,
max_length, ...) go to sentiment.Model.
"""

from ._workers import check_columns, load_config, output_names, process_model, require, result_columns, usable_cpus


def classify(df, model, text_col="text", probabilities=False, prefix="", threads=None, batch_size=32,
             **load_options):
    """df with the columns label (string), score (double) and, if probabilities, probabilities
    (array<double>, in the order of Model.info["labels"]) added, through DataFrame.mapInPandas.
    prefix names them differently (e.g. "predicted_" when df has a label column already)."""
    _, types = _pyspark()
    names = output_names(prefix, probabilities)
    check_columns(df.columns, text_col, names)
    scorer = _Scorer(load_config(model, **load_options), threads, text_col, names, batch_size)
    return df.mapInPandas(scorer.frames, types.StructType(df.schema.fields + _fields(types, names)))


def classify_udf(model, probabilities=False, threads=None, batch_size=32, **load_options):
    """A pandas UDF from a text column to a struct<label, score[, probabilities]> column."""
    functions, types = _pyspark()
    from typing import Iterator

    import pandas as pd
    names = output_names("", probabilities)
    scorer = _Scorer(load_config(model, **load_options), threads, None, names, batch_size)

    def classify(texts: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        return scorer.series(texts)
    return functions.pandas_udf(classify, types.StructType(_fields(types, names)))


class _Scorer:
    """The function Spark ships to its Python workers: the load config and options only."""

    def __init__(self, config, threads, text_col, names, batch_size):
        self.config, self.threads, self.text_col, self.names, self.batch_size = (
            config, threads, text_col, names, batch_size)

    def frames(self, frames):
        """mapInPandas: each pandas DataFrame with the result columns added."""
        model = self._model()
        for frame in frames:
            yield frame.assign(**result_columns(model, frame[self.text_col], self.text_col, self.names,
                                                self.batch_size))

    def series(self, batches):
        """An iterator pandas UDF: one DataFrame of results per Series of texts."""
        import pandas as pd
        model = self._model()
        for texts in batches:
            yield pd.DataFrame(result_columns(model, texts, None, self.names, self.batch_size))

    def _model(self):
        threads = self.threads
        if threads is None:
            from pyspark import TaskContext
            context = TaskContext.get()
            threads = context.cpus() if context is not None else usable_cpus()
        return process_model({**self.config, "threads": threads})


def _fields(types, names):
    kinds = [types.StringType(), types.DoubleType(), types.ArrayType(types.DoubleType())]
    return [types.StructField(name, kind) for name, kind in zip(names, kinds)]


def _pyspark():
    """pyspark.sql's functions and types modules; pandas UDFs also need pandas and pyarrow."""
    for module in ("pandas", "pyarrow"):
        require(module, module, "sentiment.spark")
    return tuple(require(module, "pyspark", "sentiment.spark") for module in ("pyspark.sql.functions",
                                                                             "pyspark.sql.types"))
