"""Batch scoring on Ray Data: a callable class for Dataset.map_batches that holds one model
per actor. Needs ray (pip install "ray[data]"), imported on first use.

    import sentiment.ray
    scored = ds.map_batches(sentiment.ray.Classifier, fn_constructor_kwargs={"model": "/models/sst2"},
                            concurrency=4, num_cpus=1, batch_size=1024)

Batches may be pandas DataFrames (batch_format="pandas") or dicts of numpy arrays (the
default); label, score and, with probabilities=True, probabilities (in the order of
Model.info["labels"]) are added under the same format. model is a checkpoint folder, a
load-config dict or a sentiment.Model; each actor loads it from the folder (which must exist
on every node). threads defaults to the CPUs Ray assigned the actor (map_batches' num_cpus).
Other keywords (precision, max_length, ...) go to sentiment.Model.
"""

from ._workers import check_columns, load_config, output_names, process_model, require, result_columns


class Classifier:
    def __init__(self, model, text_col="text", probabilities=False, prefix="", threads=None, batch_size=32,
                 **load_options):
        if threads is None:
            # The actor's CPUs; a fractional num_cpus (e.g. 0.5) still runs one thread.
            ray = require("ray", "ray[data]", "sentiment.ray")
            threads = max(1, round(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
        self.model = process_model({**load_config(model, **load_options), "threads": threads})
        self.text_col, self.names, self.batch_size = text_col, output_names(prefix, probabilities), batch_size

    def __call__(self, batch):
        check_columns(batch.keys() if isinstance(batch, dict) else batch.columns, self.text_col, self.names)
        columns = result_columns(self.model, batch[self.text_col], self.text_col, self.names, self.batch_size)
        if isinstance(batch, dict):
            import numpy as np
            return {**batch, **{name: np.asarray(values) for name, values in columns.items()}}
        return batch.assign(**columns)
