"""Fixtures: the built library, the default model folder and SST-2.

A missing piece skips the tests that need it, or fails them when $CI is set.
"""

import os
from pathlib import Path

import pytest

import sentiment

REPO = Path(__file__).resolve().parents[3]
MODEL_NAME = "all-MiniLM-L6-v2"


def missing(reason):
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def default_model_dir():
    if os.environ.get("SENTIMENT_MODEL_DIR"):
        return Path(os.environ["SENTIMENT_MODEL_DIR"])
    cache = os.environ.get("SENTIMENT_CACHE_DIR") or Path.home() / ".cache" / "sentiment"
    return Path(cache) / "models" / MODEL_NAME


@pytest.fixture(scope="session")
def library():
    """The path of the loaded libsentiment.so."""
    try:
        return sentiment.library_path()
    except sentiment.LibraryError as e:
        missing(str(e))


@pytest.fixture(scope="session")
def model_dir(library):
    path = default_model_dir()
    if not (path / "config.json").is_file():
        missing(f"model folder {path} not found: run scripts/fetch_model.sh or set SENTIMENT_MODEL_DIR")
    return path


@pytest.fixture(scope="session")
def model(model_dir):
    m = sentiment.Model(model_dir)
    yield m
    m.close()


@pytest.fixture(scope="session")
def labels(model):
    return model.info["labels"]


@pytest.fixture(scope="session")
def dev_tsv():
    candidates = [Path(os.environ["SENTIMENT_DATA_DIR"])] if os.environ.get("SENTIMENT_DATA_DIR") else []
    candidates += [REPO / "data" / "sst2", REPO.parent / "shared" / "data" / "sst2"]
    for folder in candidates:
        if (folder / "dev.tsv").is_file():
            return folder / "dev.tsv"
    missing("SST-2 dev.tsv not found in $SENTIMENT_DATA_DIR, ./data/sst2 or ../shared/data/sst2")
