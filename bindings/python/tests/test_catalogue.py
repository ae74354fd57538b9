"""The bad-input catalogue (hardening/catalogue/catalogue.py) through ctypes: one test per case.

Each case calls the C function directly (NULL pointers and raw bytes included) and checks
the status, that the error document names the field or file, and that the process lives.
"""

import atexit
import json
import shutil
import sys
import tempfile
from ctypes import byref, c_void_p
from pathlib import Path

import pytest

from sentiment import _lib

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hardening" / "catalogue"))
import catalogue  # noqa: E402

_WORKDIR = Path(tempfile.mkdtemp(prefix="sentiment-catalogue-"))
atexit.register(shutil.rmtree, _WORKDIR, True)
TABLE = catalogue.build(_WORKDIR)


@pytest.fixture(scope="module")
def handles(library):
    lib = _lib.lib()
    model, out = c_void_p(), c_void_p()
    config = json.dumps({"model_dir": TABLE["model_dir"], "max_length": 64, "threads": 1}).encode()
    assert lib.sentiment_model_load(config, byref(model), byref(out)) == 0, _lib.take_string(lib, out.value)
    _lib.take_string(lib, out.value)
    stale = c_void_p()
    assert lib.sentiment_model_load(config, byref(stale), byref(out)) == 0
    _lib.take_string(lib, out.value)
    lib.sentiment_model_free(stale)
    yield {"valid": model, "null": None, "stale": stale}
    lib.sentiment_model_free(model)


def run_case(lib, case, handles):
    """Calls the case's function; returns (status, out_json text or None, handle loaded or None)."""
    if "request_file" in case:
        request = Path(case["request_file"]).read_bytes()
    else:
        request = None if case["request"] is None else case["request"].encode()
    out = c_void_p()
    out_ref = None if case.get("null_out") == "out_json" else byref(out)
    model = handles[case.get("model", "valid")]
    call = case["call"]
    loaded = c_void_p()
    if call == "load":
        model_ref = None if case.get("null_out") == "out_model" else byref(loaded)
        status = lib.sentiment_model_load(request, model_ref, out_ref)
    elif call == "info":
        status = lib.sentiment_model_info(model, out_ref)
    elif call in ("tokenize", "classify"):
        status = getattr(lib, "sentiment_" + call)(model, request, out_ref)
    elif call == "evaluate":
        status = lib.sentiment_evaluate(model, request, _lib.PROGRESS_FN(), None, out_ref)
    elif call == "save":
        status = lib.sentiment_model_save(model, request, out_ref)
    elif call == "train":
        status = lib.sentiment_train(request, _lib.PROGRESS_FN(), None, out_ref)
    else:
        raise AssertionError(f"unknown call {call}")
    return status, _lib.take_string(lib, out.value), loaded


@pytest.mark.parametrize("case", TABLE["cases"], ids=[c["id"] for c in TABLE["cases"]])
def test_catalogue_case(case, handles):
    lib = _lib.lib()
    status, text, loaded = run_case(lib, case, handles)
    if loaded.value:
        lib.sentiment_model_free(loaded)
    expected = catalogue.STATUS[case["expect"]]
    assert status == expected, f"{case['id']}: status {status}, expected {expected} ({case['expect']}): {text}"
    if case.get("null_out") == "out_json":
        assert text is None
        return
    assert text is not None, "no out_json document"
    doc = json.loads(text)
    if expected == 0:
        if "results" in case:
            items = doc["results"] if case["call"] == "classify" else doc["input_ids"]
            assert len(items) == case["results"]
            if "max_tokens" in case:
                assert all(len(ids) <= case["max_tokens"] for ids in items)
        return
    error = doc["error"]
    assert error["status"] == expected and error["message"]
    if "names" in case:
        named = (error.get("field") or "") + " " + error["message"]
        assert case["names"] in named, f"{case['names']!r} not in field/message: {error}"
