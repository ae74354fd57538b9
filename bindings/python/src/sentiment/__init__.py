"""sentiment: sentiment classification with BERT/DistilBERT encoders, over libsentiment's C ABI.

    import sentiment
    with sentiment.Model("path/to/model") as m:
        print(m.classify(["a charming and often affecting journey"]))

    result = sentiment.train({"model_dir": "path/to/model", "train_file": "train.tsv",
                              "eval_file": "dev.tsv", "output_dir": "out/"},
                             progress=sentiment.TrainingProgress())
    sentiment.write_curves_svg(result, "out/curves.svg")   # or: python -m sentiment.plot

    # one rank of a data-parallel run: mpirun -n 4 python train.py / torchrun ... train.py
    result = sentiment.train(config, distributed="auto")   # see sentiment.distributed

The library is found through $SENTIMENT_LIBRARY, then this package's lib/ folder, then a
repository build folder (.build/release); it is loaded on first use.
"""

from . import _lib
from ._errors import (
    BusyError,
    CancelledError,
    DistributedError,
    FormatError,
    InternalError,
    InvalidArgumentError,
    LibraryError,
    MisuseError,
    SentimentError,
    SentimentIOError,
    SentimentMemoryError,
)
from .model import Model
from .training import TrainingProgress, train

__version__ = "0.1.0"

__all__ = [
    "Model", "train", "TrainingProgress", "write_curves_svg", "library_version", "library_path",
    "SentimentError", "InvalidArgumentError", "SentimentIOError", "FormatError",
    "CancelledError", "DistributedError", "BusyError", "SentimentMemoryError", "MisuseError", "InternalError",
    "LibraryError",
]


def library_version():
    """The loaded libsentiment's version string, e.g. "0.1.0"."""
    return _lib.lib().sentiment_version().decode("utf-8")


def library_path():
    """The file libsentiment was loaded from."""
    return _lib.lib().path


def write_curves_svg(result, path, **options):
    """Draws a train() result's loss and accuracy curves as an SVG file (see sentiment.plot)."""
    from .plot import write_curves_svg as write  # imported on use: `python -m sentiment.plot` runs it as main
    return write(result, path, **options)
