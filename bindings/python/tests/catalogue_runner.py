"""Runs one catalogue case through ctypes, in this process or in a child process.

`run_case` is the call itself (test_catalogue.py uses it for every case). A case with
"timeout" runs in a child (`python3 catalogue_runner.py`, the case and the table's model_dir
on stdin, one JSON line back), so a hang fails the case after that many seconds and a crash
fails it with the signal, instead of stalling or killing the suite. A case with "stack_kb"
makes the call on a thread with that stack size (musl's default is 128 KB).
"""

import json
import os
import subprocess
import sys
import threading
from ctypes import byref, c_void_p
from pathlib import Path

from sentiment import _lib


def load_handles(lib, model_dir):
    """{"valid": a loaded model, "null": None, "stale": a freed handle}."""
    config = json.dumps({"model_dir": model_dir, "max_length": 64, "threads": 1}).encode()
    handles = {"null": None}
    for kind in ("valid", "stale"):
        model, out = c_void_p(), c_void_p()
        status = lib.sentiment_model_load(config, byref(model), byref(out))
        text = _lib.take_string(lib, out.value)
        assert status == 0, text
        handles[kind] = model
    lib.sentiment_model_free(handles["stale"])
    return handles


def run_case(lib, case, handles):
    """Calls the case's function; returns (status, out_json text or None, handle loaded or None)."""
    if "stack_kb" in case:
        result = []
        threading.stack_size(case["stack_kb"] * 1024)
        try:
            t = threading.Thread(target=lambda: result.append(_call(lib, case, handles)))
            t.start()
        finally:
            threading.stack_size(0)
        t.join()
        return result[0]
    return _call(lib, case, handles)


def _call(lib, case, handles):
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


def run_in_child(case, model_dir):
    """`run_case` in a child process killed after case["timeout"] seconds; returns (status, text)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        child = subprocess.run([sys.executable, __file__], input=json.dumps({"case": case, "model_dir": model_dir}),
                               capture_output=True, text=True, timeout=case["timeout"], env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{case['id']}: no answer within {case['timeout']} s (a hang)") from None
    assert child.returncode == 0, f"{case['id']}: child exited with {child.returncode}: {child.stderr[-2000:]}"
    answer = json.loads(child.stdout.splitlines()[-1])
    return answer["status"], answer["text"]


def main():
    job = json.loads(sys.stdin.read())
    lib = _lib.lib()
    handles = load_handles(lib, job["model_dir"])
    status, text, loaded = run_case(lib, job["case"], handles)
    if loaded.value:
        lib.sentiment_model_free(loaded)
    lib.sentiment_model_free(handles["valid"])
    print(json.dumps({"status": status, "text": text}))


if __name__ == "__main__":
    main()
