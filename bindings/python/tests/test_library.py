"""Package metadata, library search and loading."""

import os
import subprocess
import sys
from pathlib import Path

import sentiment
from sentiment import _lib

PACKAGE_PARENT = str(Path(sentiment.__file__).resolve().parents[1])


def run_python(code, **env):
    """Runs code in a fresh interpreter (the library is loaded once per process)."""
    full_env = {**os.environ, **env, "PYTHONPATH": PACKAGE_PARENT}
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120)


def test_version_strings(library, model):
    assert isinstance(sentiment.__version__, str) and sentiment.__version__
    assert sentiment.library_version() == model.info["version"]
    assert sentiment.library_path() == library


def test_abi_version_matches(library):
    assert _lib.lib().sentiment_abi_version() == _lib.ABI_VERSION == 1


def test_swift_backtrace_disabled_before_loading(library):
    assert "SWIFT_BACKTRACE" in os.environ


def test_status_strings(library):
    for status in list(range(10)) + [-1, 10, 2**31 - 1]:
        text = _lib.lib().sentiment_status_string(status)
        assert isinstance(text, bytes) and text


def test_search_order_without_override(monkeypatch):
    monkeypatch.delenv("SENTIMENT_LIBRARY", raising=False)
    paths = _lib.candidate_paths()
    assert paths[0] == Path(sentiment.__file__).resolve().parent / "lib" / "libsentiment.so"
    if (Path(PACKAGE_PARENT).parents[2] / "Package.swift").is_file():  # running from the repository
        root = Path(PACKAGE_PARENT).parents[2]
        assert root / ".build" / "release" / "libsentiment.so" in paths
        assert root / ".build" / "x86_64-unknown-linux-gnu" / "release" / "libsentiment.so" in paths


def test_override_is_the_only_candidate(monkeypatch, tmp_path):
    monkeypatch.setenv("SENTIMENT_LIBRARY", str(tmp_path / "libnothing.so"))
    assert _lib.candidate_paths() == [tmp_path / "libnothing.so"]


def test_load_failure_lists_every_path_tried(tmp_path):
    missing = tmp_path / "libmissing.so"
    not_a_library = tmp_path / "libsentiment.so"
    not_a_library.write_text("not an ELF file")
    code = (
        "import sentiment\n"
        "try:\n"
        "    sentiment.library_version()\n"
        "except sentiment.LibraryError as e:\n"
        "    assert isinstance(e, OSError)\n"
        "    print(e)\n"
    )
    result = run_python(code, SENTIMENT_LIBRARY=str(missing))
    assert str(missing) in result.stdout and "not found" in result.stdout, result.stderr
    result = run_python(code, SENTIMENT_LIBRARY=str(not_a_library))
    assert str(not_a_library) in result.stdout, result.stderr


def test_import_does_not_load_the_library():
    result = run_python("import sentiment; print(sentiment.__version__)", SENTIMENT_LIBRARY="/nonexistent.so")
    assert result.returncode == 0 and result.stdout.strip() == sentiment.__version__
