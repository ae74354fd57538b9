"""What sentiment.spark and sentiment.ray share: a load config from what the user passes, one
Model per worker process, and the result columns of a batch."""

import importlib
import inspect
import json
import os
import threading

from ._errors import InvalidArgumentError
from .model import Model, _from_config

_models = {}                 # load config (JSON) -> Model, for this process
_models_lock = threading.Lock()


def load_config(model, **options):
    """The load config a Model pickles as, from a folder path, a load-config dict (with
    "model_dir") or a Model; options that are not None (precision, max_length, ...) override."""
    if isinstance(model, Model):
        _, (config,) = model.__reduce__()
    elif isinstance(model, dict):
        if "model_dir" not in model:
            raise InvalidArgumentError("the load config has no 'model_dir'", field="model_dir")
        config = dict(model)
    else:
        config = {"model_dir": os.fspath(model)}
    config.update({key: value for key, value in options.items() if value is not None})
    # With Model's defaults filled in, equal loads have equal configs (process_model's key).
    bound = inspect.signature(Model).bind(**config)
    bound.apply_defaults()
    extra = bound.arguments.pop("extra")
    config = {**bound.arguments, **extra}
    config["model_dir"] = os.fspath(config["model_dir"])
    return config


def process_model(config):
    """This process's Model for a load config: loaded on first use, then reused by every task
    and batch (pyspark's Python workers and Ray's actors each run in their own process)."""
    key = json.dumps(config, sort_keys=True, default=str)
    with _models_lock:
        if key not in _models:
            _models[key] = _from_config(config)
        return _models[key]


def usable_cpus():
    """The CPUs this process may run on (its affinity mask, which containers narrow)."""
    return len(os.sched_getaffinity(0))


def output_names(prefix, probabilities):
    names = [prefix + "label", prefix + "score"]
    return names + [prefix + "probabilities"] if probabilities else names


def check_columns(columns, text_col, names):
    """The text column is there and the result columns are not (prefix= renames them)."""
    if text_col not in columns:
        raise InvalidArgumentError(f"no column {text_col!r} (columns: {list(columns)})", field="text_col")
    taken = [name for name in names if name in columns]
    if taken:
        raise InvalidArgumentError(f"column {taken[0]!r} exists already: pass prefix= to name the results "
                                   f"differently, e.g. prefix='predicted_'", field="prefix")


def result_columns(model, texts, text_col, names, batch_size):
    """{name: list} for label, score (and probabilities, in label-id order) of texts, the column
    text_col (None: a UDF's input)."""
    texts = list(texts)
    # Checked here, not left to the library: pandas holds a missing text as NaN, not None.
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            where = "the UDF's input" if text_col is None else f"column {text_col!r}"
            raise InvalidArgumentError(f"{where}: row {row} of the batch is {text!r}, not a string", field=text_col)
    results = model.classify(texts, batch_size=batch_size)
    keys = ["label", "score", "probabilities"][:len(names)]
    return {name: [r[key] for r in results] for name, key in zip(names, keys)}


def require(module, package, what):
    """Imports an optional dependency, or says which pip package provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{what} needs the '{package}' package: pip install {package}") from e
