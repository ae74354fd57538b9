"""sentiment: sentiment classification with BERT/DistilBERT encoders, over libsentiment's C ABI.

    import sentiment
    with sentiment.Model("path/to/model") as m:
        print(m.classify(["a charming and often affecting journey"]))

The library is found through $SENTIMENT_LIBRARY, then this package's lib/ folder, then a
repository build folder (.build/release); it is loaded on first use.
"""

from . import _lib
from ._errors import (
    BusyError,
    CancelledError,
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

__version__ = "0.1.0"

__all__ = [
    "Model", "library_version", "library_path",
    "SentimentError", "InvalidArgumentError", "SentimentIOError", "FormatError",
    "CancelledError", "BusyError", "SentimentMemoryError", "MisuseError", "InternalError",
    "LibraryError",
]


def library_version():
    """The loaded libsentiment's version string, e.g. "0.1.0"."""
    return _lib.lib().sentiment_version().decode("utf-8")


def library_path():
    """The file libsentiment was loaded from."""
    return _lib.lib().path
