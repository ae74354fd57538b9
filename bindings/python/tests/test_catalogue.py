"""The bad-input catalogue (hardening/catalogue/catalogue.py) through ctypes: one test per case.

Each case calls the C function directly (NULL pointers and raw bytes included) and checks
the status, that the error document names the field or file, and that the process lives.
Cases with a "timeout" run in a child process (catalogue_runner.py), so a hang or a crash
fails that case only.
"""

import atexit
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from sentiment import _lib

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hardening" / "catalogue"))
import catalogue  # noqa: E402
import catalogue_runner  # noqa: E402  (beside this file)

_WORKDIR = Path(tempfile.mkdtemp(prefix="sentiment-catalogue-"))
atexit.register(shutil.rmtree, _WORKDIR, True)
TABLE = catalogue.build(_WORKDIR)


@pytest.fixture(scope="module")
def handles(library):
    lib = _lib.lib()
    handles = catalogue_runner.load_handles(lib, TABLE["model_dir"])
    yield handles
    lib.sentiment_model_free(handles["valid"])


@pytest.mark.parametrize("case", TABLE["cases"], ids=[c["id"] for c in TABLE["cases"]])
def test_catalogue_case(case, handles):
    lib = _lib.lib()
    if "timeout" in case:
        status, text = catalogue_runner.run_in_child(case, TABLE["model_dir"])
    else:
        status, text, loaded = catalogue_runner.run_case(lib, case, handles)
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
    if "absent" in case:
        assert case["absent"] not in text, f"the error echoes {case['absent']!r}: {error}"
