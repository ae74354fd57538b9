#!/usr/bin/env python3
"""Writes the committed seed corpus hardening/fuzz/corpus/<target>/ from the bad-input catalogue.

    python3 hardening/fuzz/make_corpus.py

safetensors/config/vocab: the intact tiny model's file plus every malformed variant of it
in the catalogue; tensors: the intact model.safetensors, the catalogue's int8 checkpoints
and the library's own int8, bf16 and fp32-from-int8 saves of the tiny model (through the
Python binding, so it needs a built library); request: every catalogue request under 4 KB
that names no temporary path; tokenizer: the tokenizer's hard test strings. Files are named
by content hash.
"""

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hardening" / "catalogue"))
import catalogue  # noqa: E402


def put(target, content):
    content = content if isinstance(content, bytes) else content.encode()
    d = REPO / "hardening" / "fuzz" / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(content).hexdigest()).write_bytes(content)


def library_saves(base, work):
    """model.safetensors of the tiny model saved by the library: at int8, bf16, and fp32 from its int8 save."""
    sys.path.insert(0, str(REPO / "bindings" / "python" / "src"))
    from sentiment import Model

    Model(str(base), precision="int8", max_length=64, threads=1).save(str(work / "lib-int8"), precision="int8")
    Model(str(base), max_length=64, threads=1).save(str(work / "lib-bf16"), precision="bf16")
    Model(str(work / "lib-int8"), precision="int8", max_length=64, threads=1).save(str(work / "lib-fp32"))
    return [work / name / "model.safetensors" for name in ("lib-int8", "lib-bf16", "lib-fp32")]


def main():
    work = Path(tempfile.mkdtemp())
    table = catalogue.build(work)
    shutil.rmtree(REPO / "hardening" / "fuzz" / "corpus", ignore_errors=True)
    for target, name in [("safetensors", "model.safetensors"), ("config", "config.json"), ("vocab", "vocab.txt")]:
        for path in (work / "checkpoints").glob(f"*/{name}"):
            if path.is_file() and path.stat().st_size < 200_000:
                put(target, path.read_bytes())
    checkpoints = work / "checkpoints"
    for path in [checkpoints / "base/model.safetensors", *sorted(checkpoints.glob("int8-*/model.safetensors")),
                 *library_saves(checkpoints / "base", work)]:
        put("tensors", path.read_bytes())
    for case in table["cases"]:
        request = case.get("request")
        if request and len(request) < 4096 and str(work) not in request and "/tmp" not in request:
            put("request", request)
    hard = json.loads((REPO / "Tests/SentimentCoreTests/Fixtures/tokenizer/hard_strings.json").read_text())
    texts = hard if isinstance(hard, list) else [c.get("text", "") for c in hard.get("cases", [])]
    for text in texts:
        if isinstance(text, dict):
            text = text.get("text", "")
        put("tokenizer", text)
    shutil.rmtree(work)
    for d in sorted((REPO / "hardening" / "fuzz" / "corpus").iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
