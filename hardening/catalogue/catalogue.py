#!/usr/bin/env python3
"""The bad-input catalogue: every hostile input the C API must survive, with its expected status.

`build(workdir)` writes the bad files (checkpoints, safetensors, vocabularies, TSVs, big
requests) under `workdir` and returns the cases. Two runners execute the same table:
`hardening/c/catalogue.c` (C, json-c; also run under ASan/UBSan and valgrind) and
`bindings/python/tests/test_catalogue.py` (ctypes). Run as a script to write the table:

    python3 hardening/catalogue/catalogue.py WORKDIR      # -> WORKDIR/cases.json (+ the files it names)

A case:
    id        unique name, "group/what"
    call      load | info | tokenize | classify | evaluate | save | train
    request   the JSON text passed as the request/config argument; None = a NULL pointer
    request_file   a file whose bytes are the request (invalid UTF-8, 1 MB, 100,000 texts)
    model     "valid" (the tiny fixture model, loaded by the runner), "null" or "stale" (freed)
    null_out  "out_model" or "out_json": pass NULL in that position
    expect    status name (OK, INVALID_ARGUMENT, IO, FORMAT, ERROR, MISUSE)
    names     text the error's "field" or "message" must contain (the field or file at fault)
    results   for OK classify/tokenize: the number of results expected
    max_tokens  for OK tokenize: no sequence longer than this
    absent    text the out_json document must not contain (file contents an error must not echo)
    timeout   run the case in a child process and fail it after this many seconds (a hang)
    stack_kb  make the call on a thread with this stack size
"""

import array
import json
import os
import shutil
import socket
import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "Tests" / "SentimentCoreTests" / "Fixtures" / "checkpoints" / "bert_f32"

STATUS = {"OK": 0, "ERROR": 1, "INVALID_ARGUMENT": 2, "IO": 3, "FORMAT": 4, "CANCELLED": 5, "BUSY": 6,
          "NOMEM": 7, "MISUSE": 8, "INTERNAL": 9}


def j(obj):
    return json.dumps(obj)


# ---------------------------------------------------------------------------------------------
# Bad files


def copy_fixture(workdir, name, source=FIXTURE):
    """A copy of a checkpoint fixture, by default the tiny BERT (2 layers, hidden 32, 3 labels,
    64 positions, 100 tokens). The fixtures' vocabularies repeat "a" (a word and a letter); the
    copy renames the word to "an"."""
    d = Path(workdir) / "checkpoints" / name
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(source, d)
    lines = (source / "vocab.txt").read_text().splitlines()
    lines[lines.index("a")] = "an"
    (d / "vocab.txt").write_text("\n".join(lines) + "\n")
    return d


def safetensors_parts():
    raw = (FIXTURE / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def safetensors_bytes(header, data):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def checkpoint_with_safetensors(workdir, name, content):
    d = copy_fixture(workdir, name)
    (d / "model.safetensors").write_bytes(content)
    return d


def checkpoint_with_config(workdir, name, change):
    d = copy_fixture(workdir, name)
    if isinstance(change, (bytes, str)):
        (d / "config.json").write_bytes(change if isinstance(change, bytes) else change.encode())
    else:
        config = json.loads((d / "config.json").read_text())
        config.update(change)
        (d / "config.json").write_text(json.dumps(config))
    return d


def checkpoint_with_vocab(workdir, name, lines=None, raw=None):
    d = copy_fixture(workdir, name)
    (d / "vocab.txt").write_bytes(raw if raw is not None else ("\n".join(lines) + "\n").encode())
    return d


def write(path, content):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def tensors_of(header, data):
    """{name: [dtype, shape, bytes]} in file order, and the metadata."""
    named = [(k, v) for k, v in header.items() if k != "__metadata__"]
    named.sort(key=lambda kv: kv[1]["data_offsets"][0])
    return {k: [v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]] for k, v in named}


def safetensors_from(tensors, metadata):
    """A self-consistent safetensors file of `tensors` (as `tensors_of` returns)."""
    header, data, at = {"__metadata__": metadata}, b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(raw)]}
        data += raw
        at += len(raw)
    return safetensors_bytes(header, data)


def int8_tensors(tensors):
    """The fixture as an int8 checkpoint (Sources/.../QuantizedEncoder.swift): the block linear
    weights and the word embeddings as I8 with one F32 `_scale` per row, the rest F32."""
    out = {}
    for name, (dtype, shape, raw) in tensors.items():
        out[name] = [dtype, shape, raw]
        if not (name.endswith("word_embeddings.weight") or (".layer." in name and name.endswith("dense.weight"))
                or name.endswith(("query.weight", "key.weight", "value.weight"))):
            continue
        values = array.array("f", raw)
        rows, cols = shape
        q, scales = array.array("b"), array.array("f")
        for r in range(rows):
            row = values[r * cols:(r + 1) * cols]
            scale = max(abs(v) for v in row) / 127 or 1.0
            scales.append(scale)
            q.extend(max(-127, min(127, round(v / scale))) for v in row)
        out[name] = ["I8", shape, q.tobytes()]
        out[name + "_scale"] = ["F32", [rows], scales.tobytes()]
    return out


def special_file(path, kind):
    """Replaces `path` with a special file: fifo, socket, dev-zero, dev-urandom (symlinks),
    symlink-loop, or sparse-20GB (a regular file of 20 GB of holes)."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        # bind() takes at most 107 bytes of path: bind by name from the folder, which any depth allows.
        s = socket.socket(socket.AF_UNIX)
        cwd = os.getcwd()
        try:
            os.chdir(path.parent)
            s.bind(path.name)
        finally:
            os.chdir(cwd)
            s.close()
    elif kind in ("dev-zero", "dev-urandom"):
        path.symlink_to("/dev/" + kind[4:])
    elif kind == "symlink-loop":
        path.symlink_to(path.name)
    elif kind == "sparse-20GB":
        with open(path, "wb") as f:
            f.truncate(20 << 30)
    return path


SPECIAL_FILES = ["fifo", "socket", "dev-zero", "dev-urandom", "symlink-loop", "sparse-20GB"]


# ---------------------------------------------------------------------------------------------
# The table


def build(workdir):
    w = Path(workdir)
    w.mkdir(parents=True, exist_ok=True)
    model = str(copy_fixture(w, "base"))
    cases = []

    def case(id, call, request, expect, names=None, **extra):
        c = {"id": id, "call": call, "request": request, "expect": expect}
        if names is not None:
            c["names"] = names
        c.update(extra)
        cases.append(c)

    def load(id, config, expect, names=None, **extra):
        case("load/" + id, "load", config if isinstance(config, str) or config is None else j(config), expect,
             names, **extra)

    def load_dir(id, directory, expect, names):
        load(id, {"model_dir": str(directory), "max_length": 64}, expect, names)

    # --- JSON: malformed ----------------------------------------------------------------------
    for i, text in enumerate(["", " ", "{", "}", "[]", "null", "42", "\"model_dir\"", "{} {}", "{\"model_dir\": }",
                              "{'model_dir': 'x'}", "{\"model_dir\": \"x\",}", "{\"model_dir\": \"x\" \"y\": 1}",
                              "{\"model_dir\": NaN}", "{\"model_dir\": Infinity}", "{\"model_dir\": \"\\x\"}",
                              "{\"model_dir\": \"unterminated}", "{\"a\": 1, \"a\": 2}", "[" * 100000,
                              "{\"model_dir\": \"" + model + "\", \"max_length\": 64}\u0000garbage"]):
        load(f"malformed-json-{i}", text, "INVALID_ARGUMENT" if "\u0000" not in text else "OK")
    case("classify/malformed-json", "classify", "{\"texts\": [\"a\"]", "INVALID_ARGUMENT")
    case("tokenize/malformed-json", "tokenize", "not json", "INVALID_ARGUMENT")
    case("evaluate/malformed-json", "evaluate", "{\"texts\": [\"a\"], \"labels\": [1]", "INVALID_ARGUMENT")
    case("save/malformed-json", "save", "{output_dir: 1}", "INVALID_ARGUMENT")
    case("train/malformed-json", "train", "{\"model_dir\": ", "INVALID_ARGUMENT")
    case("classify/deep-nesting", "classify", "{\"texts\": " + "[" * 5000 + "]" * 5000 + "}", "INVALID_ARGUMENT")

    # --- JSON: wrong types, unknown keys --------------------------------------------------------
    for key, value in [("model_dir", 1), ("model_dir", None), ("model_dir", ["a"]), ("precision", 5),
                       ("precision", "fp64"), ("max_length", "128"), ("max_length", 1.5), ("max_length", True),
                       ("threads", "2"), ("head", "gpt"), ("seed", 1.5)]:
        cfg = {"model_dir": model, "max_length": 64, key: value} if key != "model_dir" else {"model_dir": value}
        load(f"wrong-type-{key}-{json.dumps(value)}", cfg, "INVALID_ARGUMENT", key)
    load("unknown-key", {"model_dir": model, "max_length": 64, "bogus_key": 1}, "INVALID_ARGUMENT", "bogus_key")
    load("missing-model_dir", {}, "INVALID_ARGUMENT", "model_dir")
    for key, value in [("texts", "one string"), ("texts", [1, 2]), ("texts", [None]), ("texts", {"a": 1}),
                       ("batch_size", "8"), ("batch_size", 1.5)]:
        req = {"texts": ["a"], key: value} if key != "texts" else {key: value}
        case(f"classify/wrong-type-{key}-{json.dumps(value)}", "classify", j(req), "INVALID_ARGUMENT", key)
    case("classify/unknown-key", "classify", j({"texts": ["a"], "bogus_key": 1}), "INVALID_ARGUMENT", "bogus_key")
    case("classify/batch_size-null-is-default", "classify", j({"texts": ["a"], "batch_size": None}), "OK", results=1)
    case("classify/missing-texts", "classify", "{}", "INVALID_ARGUMENT", "texts")
    case("tokenize/unknown-key", "tokenize", j({"texts": ["a"], "batch_size": 1}), "INVALID_ARGUMENT", "batch_size")
    case("evaluate/labels-not-ints", "evaluate", j({"texts": ["a"], "labels": ["1"]}), "INVALID_ARGUMENT", "labels")
    case("evaluate/labels-count", "evaluate", j({"texts": ["a", "b"], "labels": [1]}), "INVALID_ARGUMENT", "labels")
    case("evaluate/label-out-of-range", "evaluate", j({"texts": ["a"], "labels": [7]}), "INVALID_ARGUMENT", "label")
    case("evaluate/negative-label", "evaluate", j({"texts": ["a"], "labels": [-1]}), "INVALID_ARGUMENT", "label")
    case("evaluate/no-data", "evaluate", "{}", "INVALID_ARGUMENT", "data_file")
    case("evaluate/both-data", "evaluate", j({"data_file": "x.tsv", "texts": ["a"], "labels": [1]}),
         "INVALID_ARGUMENT", "data_file")
    case("save/unknown-key", "save", j({"output_dir": str(w / "unused"), "bogus_key": 1}), "INVALID_ARGUMENT",
         "bogus_key")
    case("save/missing-output_dir", "save", "{}", "INVALID_ARGUMENT", "output_dir")
    case("save/output_dir-not-string", "save", j({"output_dir": 5}), "INVALID_ARGUMENT", "output_dir")

    # --- JSON: negative, zero, NaN-like and huge numbers -----------------------------------------
    for key, value in [("max_length", 0), ("max_length", 1), ("max_length", -5), ("max_length", 513),
                       ("max_length", 1e30), ("max_length", 9223372036854775808), ("max_length", "1e400"),
                       ("threads", -1), ("threads", 1 << 40), ("seed", -1), ("seed", 1e300)]:
        base = {"model_dir": model} if key == "max_length" else {"model_dir": model, "max_length": 64}
        load(f"bad-number-{key}-{value}", j(base).replace("}", f", \"{key}\": {value}}}"),
             "INVALID_ARGUMENT", key if value != "1e400" else "1e400")
    for value in [0, -1, 65537, 1e300, -0.0]:
        case(f"classify/batch_size-{value}", "classify", "{\"texts\": [\"a\"], \"batch_size\": %s}" % value,
             "INVALID_ARGUMENT", "batch_size")
    case("tokenize/max_length-0", "tokenize", j({"texts": ["a"], "max_length": 0}), "INVALID_ARGUMENT", "max_length")
    case("tokenize/max_length-beyond-positions", "tokenize", j({"texts": ["a"], "max_length": 65}),
         "INVALID_ARGUMENT", "max_length")

    # --- Train config ---------------------------------------------------------------------------
    train_tsv = write(w / "data" / "train.tsv", "sentence\tlabel\n" + "".join(
        f"{t}\t{l}\n" for t, l in [("a good movie", 2), ("a bad film", 0), ("it was fun", 2), ("dull and boring", 0),
                                   ("not very good", 1), ("great fun", 2), ("awful", 0), ("the film", 1)]))

    def train_config(**changes):
        cfg = {"model_dir": model, "train_file": str(train_tsv), "save_strategy": "no", "max_steps": 1,
               "train_batch_size": 4, "threads": 1, "max_length": 64}
        cfg.update(changes)
        return {k: v for k, v in cfg.items() if v is not None}

    def train(id, expect, names=None, raw=None, extra=None, **changes):
        case("train/" + id, "train", raw if raw is not None else j(train_config(**changes)), expect, names,
             **(extra or {}))

    train("tiny-run-ok", "OK")
    train("unknown-key", "INVALID_ARGUMENT", "bogus_key", bogus_key=1)
    train("missing-train_file", "INVALID_ARGUMENT", "train_file", train_file=None)
    train("missing-output_dir", "INVALID_ARGUMENT", "output_dir", save_strategy="last")
    for key, value in [("learning_rate", 0), ("learning_rate", -1), ("learning_rate", 2), ("learning_rate", "fast"),
                       ("train_batch_size", 0), ("train_batch_size", -8), ("eval_batch_size", 0),
                       ("num_train_epochs", 0), ("num_train_epochs", -1), ("max_steps", -2), ("max_length", 0),
                       ("adam_beta1", 1), ("adam_beta2", -0.5), ("adam_epsilon", 0), ("weight_decay", -1),
                       ("warmup_ratio", 2), ("max_grad_norm", -1), ("logging_steps", 0), ("threads", -1),
                       ("save_strategy", "sometimes"), ("lr_scheduler_type", "cosine_with_restarts_bogus"),
                       ("dropout", "yes"), ("max_train_examples", -1), ("seed", "42"),
                       ("layerwise_lr_decay", 0), ("layerwise_lr_decay", 1.5), ("layerwise_lr_decay", "0.8"),
                       ("ema_decay", 1), ("ema_decay", -0.1), ("ema_decay", "0.99"),
                       ("rdrop_alpha", -1), ("rdrop_alpha", 101), ("rdrop_alpha", "1")]:
        train(f"bad-{key}-{json.dumps(value)}", "INVALID_ARGUMENT", key, **{key: value})
    train("rdrop_alpha-without-dropout", "INVALID_ARGUMENT", "rdrop_alpha", rdrop_alpha=1, dropout=False)
    # Out-of-range JSON numbers fail in the parser, which reports the position rather than the key.
    train("learning_rate-1e400", "INVALID_ARGUMENT", "1e400",
          raw=j(train_config()).replace("}", ", \"learning_rate\": 1e400}"))
    train("train_batch_size-huge", "INVALID_ARGUMENT", "train_batch_size",
          raw=j(train_config()).replace("}", ", \"train_batch_size\": 18446744073709551616}"))

    # --- Pointers: NULL in every position, and a stale handle -------------------------------------
    texts = j({"texts": ["a good movie"]})
    labeled = j({"texts": ["a good movie"], "labels": [2]})
    load("null-config_json", None, "MISUSE", "config_json")
    load("null-out_model", {"model_dir": model, "max_length": 64}, "MISUSE", "out_model", null_out="out_model")
    load("null-out_json", {"model_dir": model, "max_length": 64}, "OK", null_out="out_json")
    for call, req in [("info", None), ("tokenize", texts), ("classify", texts), ("evaluate", labeled),
                      ("save", j({"output_dir": str(w / "never-written")}))]:
        case(f"{call}/null-model", call, req, "MISUSE", "model", model="null")
        case(f"{call}/stale-model", call, req, "MISUSE", "model", model="stale")
        if call != "info":
            case(f"{call}/null-request", call, None, "MISUSE", "request_json" if call != "save" else "config_json")
        if call != "save":
            case(f"{call}/null-out_json", call, req, "OK", null_out="out_json")
    case("save/null-out_json", "save", j({"output_dir": str(w / "saved-without-out_json")}), "OK", null_out="out_json")
    case("train/null-config_json", "train", None, "MISUSE", "config_json")
    case("train/null-out_json", "train", j(train_config()), "OK", null_out="out_json")

    # --- Text -----------------------------------------------------------------------------------
    invalid_utf8 = {"lone-continuation": b"\x80", "truncated-2byte": b"\xc3", "overlong-slash": b"\xc0\xaf",
                    "surrogate-bytes": b"\xed\xa0\x80", "beyond-u10ffff": b"\xf4\x90\x80\x80", "ff-fe": b"\xff\xfe",
                    "truncated-4byte": b"\xf0\x9f\x98"}
    for name, bad in invalid_utf8.items():
        for call in ("tokenize", "classify"):
            path = write(w / "requests" / f"utf8-{name}.json", b"{\"texts\": [\"good " + bad + b" movie\"]}")
            case(f"{call}/invalid-utf8-{name}", call, None, "INVALID_ARGUMENT", "UTF-8", request_file=str(path))
    # A lone surrogate escape is replaced by U+FFFD, as Python's json module and HF do with errors="replace".
    case("classify/lone-surrogate-escape", "classify", "{\"texts\": [\"a \\ud800 b\"]}", "OK", results=1)
    case("classify/nul-escape", "classify", j({"texts": ["a\u0000b"]}), "OK", results=1)
    case("classify/empty-string", "classify", j({"texts": [""]}), "OK", results=1)
    case("classify/empty-list", "classify", j({"texts": []}), "OK", results=0)
    case("tokenize/empty-string", "tokenize", j({"texts": [""]}), "OK", results=1, max_tokens=2)
    case("classify/only-spaces-and-controls", "classify", j({"texts": [" \t\r\n\u0001\u200b"]}), "OK", results=1)
    case("classify/combining-marks", "classify", j({"texts": ["e" + "\u0301" * 5000]}), "OK", results=1)
    case("classify/long-word", "classify", j({"texts": ["a" * 100000]}), "OK", results=1)
    case("classify/cjk-and-emoji", "classify", j({"texts": ["\u4e2d\u6587 \U0001F600 \uffff \U0010FFFF"]}), "OK",
         results=1)
    big = write(w / "requests" / "one-megabyte-text.json", j({"texts": ["good movie " * 95326]}))
    case("tokenize/1MB-text-truncated", "tokenize", None, "OK", results=1, max_tokens=64, request_file=str(big))
    case("classify/1MB-text", "classify", None, "OK", results=1, request_file=str(big))
    many = write(w / "requests" / "100000-texts.json", j({"texts": ["a good movie", "dull", ""] * 33333 + ["x"],
                                                          "batch_size": 256}))
    case("classify/100000-texts", "classify", None, "OK", results=100000, request_file=str(many))
    # Caps (include/sentiment.h): 100,000 texts per call, 16 MB of request, 4 MB per data-file line.
    over = j({"texts": ["x"] * 100001})
    for call in ("classify", "tokenize"):
        case(f"{call}/100001-texts", call, over, "INVALID_ARGUMENT", "texts")
    case("classify/100001-text_pairs", "classify", j({"texts": ["x"], "text_pairs": ["y"] * 100001}),
         "INVALID_ARGUMENT", "text_pairs")
    case("evaluate/100001-labels", "evaluate", j({"texts": ["x"], "labels": [0] * 100001}), "INVALID_ARGUMENT", "labels")
    huge = write(w / "requests" / "over-16MB.json", j({"texts": ["good movie " * 1000] * 1526}))
    case("classify/request-over-16MB", "classify", None, "INVALID_ARGUMENT", "request_json", request_file=str(huge))
    long_line = write(w / "data" / "line-over-4MB.tsv", "sentence\tlabel\n" + "good " * (4 << 18) + "\t1\n")
    case("evaluate/data-line-over-4MB", "evaluate", j({"data_file": str(long_line)}), "FORMAT", "line-over-4MB.tsv:2")

    # --- Files: missing, wrong kind, unreadable ---------------------------------------------------
    load_dir("missing-model_dir", w / "does-not-exist", "IO", "model_dir")
    load_dir("model_dir-is-a-file", train_tsv, "IO", "model_dir")
    d = copy_fixture(w, "no-config"); (d / "config.json").unlink()
    load_dir("missing-config.json", d, "IO", "config.json")
    d = copy_fixture(w, "no-vocab"); (d / "vocab.txt").unlink()
    load_dir("missing-vocab.txt", d, "IO", "vocab.txt")
    d = copy_fixture(w, "no-weights"); (d / "model.safetensors").unlink()
    load_dir("missing-model.safetensors", d, "IO", "model.safetensors")
    for name in ("config.json", "vocab.txt", "model.safetensors"):
        d = copy_fixture(w, f"{name}-is-a-directory"); (d / name).unlink(); (d / name).mkdir()
        load_dir(f"{name}-is-a-directory", d, "IO", name)
    if os.geteuid() != 0:   # root reads mode-000 files, so this case exists for other users only
        d = copy_fixture(w, "unreadable-vocab"); (d / "vocab.txt").chmod(0)
        load_dir("unreadable-vocab.txt", d, "IO", "vocab.txt")
    case("evaluate/missing-data_file", "evaluate", j({"data_file": str(w / "nope.tsv")}), "IO", "nope.tsv")
    case("evaluate/data_file-is-a-directory", "evaluate", j({"data_file": str(w)}), "IO", "data_file")
    train("missing-model_dir", "IO", "model_dir", model_dir=str(w / "nope"))
    train("missing-train_file", "IO", "train_file", train_file=str(w / "nope.tsv"))
    train("missing-eval_file", "IO", "eval_file", eval_file=str(w / "nope.tsv"))

    # --- Checkpoints: config.json that lies, bad vocabularies ------------------------------------
    for name, change, expect, names in [
            ("hidden_size-48", {"hidden_size": 48}, "FORMAT", "shape"),
            ("layers-3", {"num_hidden_layers": 3}, "FORMAT", "layer.2"),
            ("vocab_size-200", {"vocab_size": 200}, "FORMAT", "word_embeddings"),
            ("intermediate_size-65", {"intermediate_size": 65}, "FORMAT", "intermediate"),
            ("heads-not-dividing", {"num_attention_heads": 5}, "FORMAT", "num_attention_heads"),
            ("hidden_size-0", {"hidden_size": 0}, "FORMAT", "hidden_size"),
            ("hidden_size-negative", {"hidden_size": -32}, "FORMAT", "hidden_size"),
            ("hidden_size-huge", {"hidden_size": 1 << 62}, "FORMAT", "hidden_size"),
            ("hidden_size-string", {"hidden_size": "32"}, "FORMAT", "hidden_size"),
            ("positions-0", {"max_position_embeddings": 0}, "FORMAT", "max_position_embeddings"),
            ("positions-16", {"max_position_embeddings": 16}, "FORMAT", "position_embeddings"),
            ("type_vocab_size-0", {"type_vocab_size": 0}, "FORMAT", "type_vocab_size"),
            ("layer_norm_eps-string", {"layer_norm_eps": "small"}, "FORMAT", "layer_norm_eps"),
            ("dropout-negative", {"hidden_dropout_prob": -0.5}, "FORMAT", "hidden_dropout_prob"),
            ("dropout-above-1", {"attention_probs_dropout_prob": 1.5}, "FORMAT", "attention_probs_dropout_prob"),
            ("model_type-gpt2", {"model_type": "gpt2"}, "FORMAT", "model_type"),
            ("id2label-wrong-count", {"id2label": {"0": "a"}}, "FORMAT", "id2label"),
            ("not-json", "{\"hidden_size\": 32,", "FORMAT", "config.json"),
            ("json-array", "[1, 2, 3]", "FORMAT", "config.json"),
            ("empty", "", "FORMAT", "config.json"),
            ("invalid-utf8", b"{\"model_type\": \"bert\xff\"}", "FORMAT", "config.json")]:
        load_dir(f"config-{name}", checkpoint_with_config(w, f"config-{name}", change), expect, names)
    base_vocab = (Path(model) / "vocab.txt").read_text().splitlines()
    for name, lines, raw in [
            ("duplicate-tokens", base_vocab[:50] + ["good"] + base_vocab[51:], None),
            ("missing-unk", [t if t != "[UNK]" else "[unk2]" for t in base_vocab], None),
            ("missing-cls", [t if t != "[CLS]" else "[cls2]" for t in base_vocab], None),
            ("missing-sep", [t if t != "[SEP]" else "[sep2]" for t in base_vocab], None),
            ("empty", None, b""),
            ("too-long", base_vocab + [f"extra{i}" for i in range(50)], None),
            ("invalid-utf8", None, ("\n".join(base_vocab[:99]) + "\n\xff\xfe\n").encode("latin-1"))]:
        load_dir(f"vocab-{name}", checkpoint_with_vocab(w, f"vocab-{name}", lines, raw), "FORMAT", "vocab.txt")
    # Fewer tokens than embedding rows is legal (ids stay in range), as in Hugging Face.
    load_dir("vocab-shorter-than-vocab_size", checkpoint_with_vocab(w, "vocab-short", base_vocab[:60]), "OK", None)

    # --- safetensors, byte by byte ---------------------------------------------------------------
    header, data = safetensors_parts()
    first = next(k for k in header if k != "__metadata__")
    second = next(k for k in header if k not in ("__metadata__", first))

    def st(name, content, names="model.safetensors"):
        load_dir(f"safetensors-{name}", checkpoint_with_safetensors(w, f"st-{name}", content), "FORMAT", names)

    def patched(**per_tensor):
        h = json.loads(json.dumps(header))
        for key, value in per_tensor.items():
            h[first][key] = value
        return h

    real = safetensors_bytes(header, data)
    st("empty-file", b"")
    st("7-bytes", b"\x01" * 7)
    st("header-length-0", struct.pack("<Q", 0) + real[8:])
    st("header-length-beyond-file", struct.pack("<Q", len(real)) + real[8:])
    st("header-length-2^63", struct.pack("<Q", 1 << 63) + real[8:])
    st("header-length-2^64-1", b"\xff" * 8 + real[8:])
    st("header-not-json", safetensors_bytes(b"this is not json at all", data))
    st("header-json-array", safetensors_bytes(b"[1, 2, 3]", data))
    st("header-invalid-utf8", safetensors_bytes(b"{\"\xff\xfe\": 1}", data))
    st("header-deep-nesting", safetensors_bytes(b"[" * 10000 + b"]" * 10000, data))
    st("entry-not-object", safetensors_bytes({**header, first: 5}, data), first)
    st("unknown-dtype", safetensors_bytes(patched(dtype="F8_E9M9"), data), first)
    st("dtype-not-string", safetensors_bytes(patched(dtype=32), data), first)
    st("missing-shape", safetensors_bytes({**header, first: {k: v for k, v in header[first].items() if k != "shape"}},
                                          data), first)
    st("negative-dimension", safetensors_bytes(patched(shape=[-32]), data), first)
    st("dimension-overflow", safetensors_bytes(patched(shape=[1 << 62, 1 << 62]), data), first)
    st("shape-offset-mismatch", safetensors_bytes(patched(shape=[33]), data), first)
    lo, hi = header[first]["data_offsets"]
    st("offsets-reversed", safetensors_bytes(patched(data_offsets=[hi, lo]), data), first)
    st("offsets-negative", safetensors_bytes(patched(data_offsets=[-128, 0]), data), first)
    st("offsets-out-of-range", safetensors_bytes(patched(data_offsets=[len(data), len(data) + hi - lo]), data), first)
    st("offsets-huge", safetensors_bytes(patched(data_offsets=[1 << 62, (1 << 62) + hi - lo]), data), first)
    st("offsets-not-pair", safetensors_bytes(patched(data_offsets=[lo]), data), first)
    overlap = json.loads(json.dumps(header))
    overlap[second]["data_offsets"] = list(header[first]["data_offsets"])
    st("offsets-overlap", safetensors_bytes(overlap, data))
    st("data-truncated", real[:-100])
    st("data-truncated-to-header", real[:8 + struct.unpack("<Q", real[:8])[0]])
    st("trailing-bytes", real + b"\x00" * 64)
    st("metadata-not-object", safetensors_bytes({**header, "__metadata__": [1]}, data), "__metadata__")
    st("missing-tensor", safetensors_bytes({k: v for k, v in header.items() if k != first}, data))
    st("wrong-dtype-I64", safetensors_bytes(patched(dtype="I64", shape=[header[first]["shape"][0] // 2]), data),
       first)
    huge_weights = bytearray(data)
    huge_weights[lo:hi] = struct.pack("<f", 1e30) * ((hi - lo) // 4)
    d = checkpoint_with_safetensors(w, "st-huge-weights", safetensors_bytes(header, bytes(huge_weights)))
    load_dir("safetensors-huge-finite-weights-load", d, "OK", None)
    case("train/nan-loss-stops", "train", j(train_config(model_dir=str(d))), "ERROR", "learning_rate")
    # Non-finite weights in any float dtype: refused at load, naming the tensor (one pass).
    tensors = tensors_of(header, data)
    word = next(k for k in tensors if k.endswith("word_embeddings.weight"))
    last = list(tensors)[-1]
    for dtype, bad, size in [("F32", struct.pack("<f", float("nan")), 4), ("F32", struct.pack("<f", float("inf")), 4),
                             ("F32", struct.pack("<f", float("-inf")), 4), ("F16", struct.pack("<H", 0x7C00), 2),
                             ("BF16", struct.pack("<H", 0x7FC0), 2), ("F64", struct.pack("<d", float("inf")), 8)]:
        for name in (first, word, last):
            t = {k: list(v) for k, v in tensors.items()}
            n = len(t[name][2]) // 4
            values = array.array("f", t[name][2])
            if dtype == "F16":
                raw = struct.pack(f"<{n}e", *values)
            elif dtype == "BF16":
                raw = b"".join(struct.pack("<f", v)[2:] for v in values)
            elif dtype == "F64":
                raw = array.array("d", values).tobytes()
            else:
                raw = values.tobytes()
            at = (n // 2) * size
            t[name] = [dtype, t[name][1], raw[:at] + bad + raw[at + size:]]
            label = f"{dtype}-{struct.unpack('<d', bad)[0] if size == 8 else bad.hex()}-in-{name}"
            st(f"non-finite-{label}", safetensors_from(t, {"format": "pt"}), name)

    # --- Training data ---------------------------------------------------------------------------
    for name, content, names in [
            ("no-header", "a good movie\t2\n", "train"),
            ("no-label-column", "sentence\tscore\na good movie\t2\n", "label"),
            ("label-out-of-range", "sentence\tlabel\na good movie\t3\n", ":2"),
            ("label-negative", "sentence\tlabel\na good movie\t-1\n", ":2"),
            ("label-unknown-name", "sentence\tlabel\na good movie\tvery good\n", ":2"),
            ("labels-mixed", "sentence\tlabel\na good movie\t1\na bad one\tpositive\n", ":3"),
            ("label-float", "sentence\tlabel\na good movie\t1.5\n", ":2"),
            ("missing-column", "sentence\tlabel\na good movie\t2\nno tab here\n", ":3"),
            ("extra-column", "sentence\tlabel\na good movie\t2\textra\n", ":2"),
            ("empty-file", "", "train"),
            ("header-only", "sentence\tlabel\n", "train"),
            ("invalid-utf8", b"sentence\tlabel\ngood \xff movie\t2\n", "train"),
            ("csv-unclosed-quote.csv", 'sentence,label\n"a good movie,1\n', ":2"),
            ("csv-extra-field.csv", 'sentence,label\r\n"a good, long movie",1,x\r\n', ":2"),
            ("jsonl-bad-json.jsonl", '{"sentence": "ok", "label": 1}\n{"sentence": \n', ":2"),
            ("jsonl-not-object.jsonl", '["a good movie", 1]\n', ":1"),
            ("jsonl-no-text.jsonl", '{"review": "a good movie", "label": 1}\n', ":1"),
            ("jsonl-label-float.jsonl", '{"sentence": "a good movie", "label": 0.5}\n', ":1")]:
        file = name if "." in name else f"{name}.tsv"
        name = name.split(".")[0]
        path = write(w / "data" / file, content)
        names = f"{file}{names}" if names.startswith(":") else names
        if name == "label-out-of-range":   # training takes labels 0...max: a fourth class
            train(f"data-{name}", "OK", train_file=str(path))
        elif name == "label-unknown-name":   # one name is no label set to train
            train(f"data-{name}", "INVALID_ARGUMENT", "labels", train_file=str(path))
        else:
            train(f"data-{name}", "FORMAT" if name != "header-only" else "INVALID_ARGUMENT", names, train_file=str(path))
        if name == "header-only":   # evaluating nothing is allowed: {"examples": 0}
            case(f"evaluate/data-{name}", "evaluate", j({"data_file": str(path)}), "OK")
        else:
            case(f"evaluate/data-{name}", "evaluate", j({"data_file": str(path)}), "FORMAT",
                 names.replace("train", "data_file"))

    # --- Users' data: labels, sentence pairs, classify options ------------------------------------
    three = write(w / "data" / "three.csv", "text,label\r\n" + "".join(
        f'"{t}",{l}\r\n' for t, l in [("a good movie", "pos"), ("a bad film", "neg"), ("the film", "neutral")] * 3))
    pairs = write(w / "data" / "pairs.jsonl", "".join(json.dumps({"a": a, "b": b, "label": l}) + "\n" for a, b, l in
                  [("a good movie", "good", 1), ("a bad film", "good", 0), ("it was fun", "fun", 1)] * 3))
    train("data-three-names-ok", "OK", train_file=str(three))
    train("labels-given-ok", "OK", train_file=str(three), labels=["neg", "neutral", "pos", "unused"])
    train("labels-one", "INVALID_ARGUMENT", "labels", labels=["only"])
    train("labels-duplicate", "INVALID_ARGUMENT", "labels", labels=["a", "a"])
    train("labels-empty-name", "INVALID_ARGUMENT", "labels", labels=["a", ""])
    train("labels-not-strings", "INVALID_ARGUMENT", "labels", labels=[0, 1])
    train("labels-file-name-not-listed", "FORMAT", "three.csv:", train_file=str(three), labels=["neg", "pos"])
    train("metric-unknown", "INVALID_ARGUMENT", "metric_for_best_model", metric_for_best_model="eval_f2")
    train("metric-f1-three-labels", "INVALID_ARGUMENT", "metric_for_best_model", train_file=str(three),
          metric_for_best_model="f1")
    train("metric-eval-loss-ok", "OK", metric_for_best_model="eval_loss", greater_is_better=False)
    train("greater_is_better-string", "INVALID_ARGUMENT", "greater_is_better", greater_is_better="no")
    train("pairs-ok", "OK", train_file=str(pairs), text_column="a", text_pair_column="b")
    train("pairs-column-missing", "FORMAT", 'pairs.jsonl:1: the object has no "c" key', train_file=str(pairs), text_column="a",
          text_pair_column="c")
    train("pairs-distilbert-head-saving", "INVALID_ARGUMENT", "head", train_file=str(pairs), text_column="a",
          text_pair_column="b", head="distilbert", save_strategy="last", output_dir=str(w / "never-trained"))
    # --- Trainer: schedules, early stopping, resume, micro-batches ---------------------------------
    for key, value in [("eval_strategy", "sometimes"), ("evaluation_strategy", 1), ("eval_steps", 0), ("eval_steps", -1),
                       ("eval_steps", 1.5), ("eval_steps", "10"), ("save_steps", 0), ("save_steps", 1.0),
                       ("save_total_limit", 0), ("save_optimizer_state", "yes"), ("early_stopping_threshold", -1),
                       ("gradient_accumulation_steps", 0), ("gradient_accumulation_steps", 100000),
                       ("max_tokens_per_micro_batch", -1), ("max_tokens_per_micro_batch", 10), ("warmup_steps", -1),
                       ("resume_from_checkpoint", 5), ("resume_from_checkpoint", ""), ("resume_from_checkpoint", [])]:
        train(f"bad-{key}-{json.dumps(value)}", "INVALID_ARGUMENT", key, **{key: value})
    train("both-eval-strategy-names", "INVALID_ARGUMENT", "evaluation_strategy", eval_strategy="no",
          evaluation_strategy="no")
    train("early-stopping-without-eval", "INVALID_ARGUMENT", "early_stopping_patience", early_stopping_patience=2)
    train("early_stopping_patience-0", "INVALID_ARGUMENT", "early_stopping_patience", early_stopping_patience=0,
          eval_file=str(train_tsv))
    train("accumulation-and-token-cap", "INVALID_ARGUMENT", "max_tokens_per_micro_batch", gradient_accumulation_steps=2,
          max_tokens_per_micro_batch=128)
    train("polynomial-lr_end-above-rate", "INVALID_ARGUMENT", "lr_scheduler_kwargs.lr_end",
          lr_scheduler_type="polynomial", lr_scheduler_kwargs={"lr_end": 0.1})
    train("lr_scheduler_kwargs-unknown", "INVALID_ARGUMENT", "lr_scheduler_kwargs", lr_scheduler_kwargs={"gamma": 2})
    train("lr_scheduler_kwargs-not-object", "INVALID_ARGUMENT", "lr_scheduler_kwargs", lr_scheduler_kwargs=[1])
    train("lr_scheduler_kwargs-power-0", "INVALID_ARGUMENT", "lr_scheduler_kwargs.power",
          lr_scheduler_type="polynomial", lr_scheduler_kwargs={"power": 0})
    train("cosine-warmup-steps-ok", "OK", lr_scheduler_type="cosine", warmup_steps=1, lr_scheduler_kwargs={"num_cycles": 1})
    train("eval-steps-early-stopping-ok", "OK", eval_file=str(train_tsv), eval_strategy="steps", eval_steps=1,
          early_stopping_patience=1, max_steps=2)
    train("accumulation-ok", "OK", gradient_accumulation_steps=4)
    train("token-cap-ok", "OK", max_tokens_per_micro_batch=64)
    train("resume-missing-folder", "IO", "resume_from_checkpoint", resume_from_checkpoint=str(w / "no-such-checkpoint"))
    train("resume-folder-without-state", "INVALID_ARGUMENT", "resume_from_checkpoint", resume_from_checkpoint=model)
    train("resume-newest-without-output_dir", "INVALID_ARGUMENT", "resume_from_checkpoint", resume_from_checkpoint=True)
    empty_out = w / "resume-empty-out"
    empty_out.mkdir(exist_ok=True)
    train("resume-newest-none-saved", "INVALID_ARGUMENT", "resume_from_checkpoint", resume_from_checkpoint=True,
          save_strategy="steps", output_dir=str(empty_out))
    torn = w / "resume-torn-state"
    write(torn / "trainer_state.json", '{"global_step": 1, "sentiment": ')
    write(torn / "training_state.safetensors", "not a safetensors file")
    train("resume-state-json-torn", "FORMAT", "trainer_state.json", resume_from_checkpoint=str(torn))
    other = w / "resume-other-run"
    write(other / "trainer_state.json", j({"global_step": 1, "sentiment": {
        "settings": {"learning_rate": 0.5}, "train_data_hash": "0", "state": {}}}))
    write(other / "training_state.safetensors", "not a safetensors file")
    train("resume-state-of-another-run", "INVALID_ARGUMENT", "learning_rate", resume_from_checkpoint=str(other))
    case("evaluate/pairs-ok", "evaluate", j({"data_file": str(pairs), "text_column": "a", "text_pair_column": "b"}), "OK")
    case("evaluate/label-names-unknown", "evaluate", j({"texts": ["a"], "labels": ["very good"]}), "INVALID_ARGUMENT",
         "labels")
    case("evaluate/labels-mixed", "evaluate", j({"texts": ["a", "b"], "labels": [1, "x"]}), "INVALID_ARGUMENT", "labels")
    case("evaluate/text_pairs-count", "evaluate", j({"texts": ["a", "b"], "text_pairs": ["c"], "labels": [0, 1]}),
         "INVALID_ARGUMENT", "text_pairs")
    for req, expect, field in [({"top_k": 0}, "INVALID_ARGUMENT", "top_k"), ({"top_k": -1}, "INVALID_ARGUMENT", "top_k"),
                               ({"top_k": "all"}, "INVALID_ARGUMENT", "top_k"), ({"top_k": 1e10}, "INVALID_ARGUMENT", "top_k"),
                               ({"top_k": None}, "OK", None), ({"top_k": 2147483647}, "OK", None),
                               ({"stride": 4}, "INVALID_ARGUMENT", "stride"),
                               ({"long_text": "window", "stride": -1}, "INVALID_ARGUMENT", "stride"),
                               ({"long_text": "window", "stride": 62}, "INVALID_ARGUMENT", "stride"),
                               ({"long_text": "window", "stride": 61}, "OK", None),
                               ({"long_text": "chunks"}, "INVALID_ARGUMENT", "long_text"),
                               ({"text_pairs": ["b"], "long_text": "window"}, "INVALID_ARGUMENT", "long_text"),
                               ({"text_pairs": ["b", "c"]}, "INVALID_ARGUMENT", "text_pairs"),
                               ({"text_pairs": [1]}, "INVALID_ARGUMENT", "text_pairs"),
                               ({"text_pairs": [""]}, "OK", None)]:
        name = "-".join(f"{k}-{json.dumps(v)}" for k, v in req.items())
        case(f"classify/{name}", "classify", j({"texts": ["a good movie"], **req}), expect, field,
             **({"results": 1} if expect == "OK" else {}))
    # A 100 KB text read in windows: many windows, one result.
    case("classify/window-100KB-text", "classify", j({"texts": ["a good movie , " * 7000], "long_text": "window"}), "OK",
         results=1)
    case("tokenize/text_pairs-count", "tokenize", j({"texts": ["a"], "text_pairs": []}), "INVALID_ARGUMENT", "text_pairs")

    # --- Hardening, round 2 (issue 20) ------------------------------------------------------------
    # Special files as every file the library reads: refused (IO) or over the file's size cap
    # (FORMAT), naming the file, without blocking. Each runs in a child with a timeout.
    for name in ("config.json", "vocab.txt", "tokenizer_config.json", "model.safetensors"):
        for kind in SPECIAL_FILES:
            d = copy_fixture(w, f"special-{name}-{kind}")
            special_file(d / name, kind)
            load(f"{name}-{kind}", {"model_dir": str(d), "max_length": 64}, "FORMAT" if kind == "sparse-20GB" else "IO",
                 name, timeout=60)
    for kind in ("fifo", "socket", "dev-zero", "symlink-loop"):
        path = special_file(w / "data" / f"special-{kind}.tsv", kind)
        case(f"evaluate/data_file-{kind}", "evaluate", j({"data_file": str(path)}), "IO", "data_file", timeout=60)
        train(f"train_file-{kind}", "IO", "train_file", extra={"timeout": 60}, train_file=str(path))
        train(f"eval_file-{kind}", "IO", "eval_file", extra={"timeout": 60}, eval_file=str(path))

    # U+0000 in a path would cut it short and open another file: refused naming the field.
    nul = "\u0000"
    load("model_dir-nul", {"model_dir": model + nul + "x", "max_length": 64}, "INVALID_ARGUMENT", "model_dir")
    case("evaluate/data_file-nul", "evaluate", j({"data_file": "/etc/passwd" + nul + ".tsv"}), "INVALID_ARGUMENT",
         "data_file")
    case("save/output_dir-nul", "save", j({"output_dir": str(w / "out") + nul + "x"}), "INVALID_ARGUMENT", "output_dir")
    for key in ("model_dir", "train_file", "eval_file", "output_dir"):
        value = {"model_dir": model, "train_file": str(train_tsv), "eval_file": str(train_tsv),
                 "output_dir": str(w / "never-trained")}[key]
        train(f"{key}-nul", "INVALID_ARGUMENT", key, **{"save_strategy": "last", "output_dir": str(w / "never-trained"),
                                                      key: value + nul + "x"})
    # A file that is not a data file: the error names the missing column, not the file's text.
    secret = write(w / "data" / "secret.tsv", "SECRET-first-line:x:0:0:root:/root:/bin/bash\nSECRET-second\n")
    case("evaluate/not-a-data-file-no-echo", "evaluate", j({"data_file": str(secret)}), "FORMAT", "'sentence' column",
         absent="SECRET")
    train("train_file-not-a-data-file-no-echo", "FORMAT", "'sentence' column", extra={"absent": "SECRET"},
          train_file=str(secret))

    # Deep recursion: an output_dir of thousands of components; JSON nested to the cap on small stacks.
    deep = "/proc/sentiment-deep/" + "d/" * 20000
    case("save/output_dir-20000-components-128KB-stack", "save", j({"output_dir": deep}), "IO", "/proc/sentiment-deep",
         timeout=60, stack_kb=128)
    train("output_dir-20000-components-128KB-stack", "IO", "/proc/sentiment-deep",
          extra={"timeout": 60, "stack_kb": 128}, output_dir=deep, save_strategy="last")
    cap = 64   # JSON.maxDepth: the top-level object is level 1
    arrays = lambda levels: "[" * levels + "]" * levels  # noqa: E731
    objects = lambda levels: '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1)  # noqa: E731
    for kb in (64, 128):
        for shape, nest in (("arrays", arrays), ("objects", objects)):
            load(f"json-{shape}-at-depth-cap-{kb}KB-stack", '{"model_dir": %s}' % nest(cap - 1), "INVALID_ARGUMENT",
                 "model_dir", timeout=60, stack_kb=kb)
            load(f"json-{shape}-past-depth-cap-{kb}KB-stack", '{"model_dir": %s}' % nest(cap), "INVALID_ARGUMENT",
                 "nesting", timeout=60, stack_kb=kb)
            case(f"classify/json-{shape}-at-depth-cap-{kb}KB-stack", "classify", '{"texts": %s}' % nest(cap - 1),
                 "INVALID_ARGUMENT", "texts", timeout=60, stack_kb=kb)
            train(f"json-{shape}-at-depth-cap-{kb}KB-stack", "INVALID_ARGUMENT", "labels",
                  raw=j(train_config())[:-1] + ', "labels": %s}' % nest(cap - 1), extra={"timeout": 60, "stack_kb": kb})
    d = checkpoint_with_config(w, "config-nested-to-cap", {"task_specific_params": json.loads(nest(cap - 1))})
    load("config-nested-to-depth-cap-128KB-stack", {"model_dir": str(d), "max_length": 64}, "OK", timeout=60,
         stack_kb=128)
    d = checkpoint_with_config(w, "config-nested-past-cap", {"task_specific_params": json.loads(nest(cap))})
    load_dir("config-nested-past-depth-cap", d, "FORMAT", "config.json")

    # int8 checkpoints: a valid one loads at fp32 and int8; a bad `_scale` is refused naming it.
    q8 = int8_tensors(tensors)
    meta8 = {"format": "pt", "quantization": "sentiment-int8"}
    d = checkpoint_with_safetensors(w, "int8-valid", safetensors_from(q8, meta8))
    for precision in ("fp32", "int8"):
        load(f"int8-checkpoint-{precision}-ok", {"model_dir": str(d), "max_length": 64, "precision": precision}, "OK")
    scale = next(k for k in q8 if k.endswith("query.weight_scale"))
    for label, value in [("1e38", 1e38), ("inf", float("inf")), ("nan", float("nan")), ("0", 0.0), ("negative", -0.01),
                         ("3e36", 3e36)]:
        t = {k: list(v) for k, v in q8.items()}
        values = array.array("f", t[scale][2])
        values[len(values) // 2] = value
        t[scale][2] = values.tobytes()
        d = checkpoint_with_safetensors(w, f"int8-scale-{label}", safetensors_from(t, meta8))
        for precision in ("fp32", "int8"):
            load(f"int8-scale-{label}-{precision}", {"model_dir": str(d), "max_length": 64, "precision": precision},
                 "FORMAT", scale)
    t = {k: v for k, v in q8.items() if k != scale}
    d = checkpoint_with_safetensors(w, "int8-scale-missing", safetensors_from(t, meta8))
    load_dir("int8-scale-missing", d, "FORMAT", scale)
    t = {k: list(v) for k, v in q8.items()}
    t[scale] = ["F32", [t[scale][1][0] - 1], t[scale][2][:-4]]
    d = checkpoint_with_safetensors(w, "int8-scale-wrong-shape", safetensors_from(t, meta8))
    load_dir("int8-scale-wrong-shape", d, "FORMAT", scale)
    t = {k: list(v) for k, v in q8.items()}
    t[scale] = ["F16", t[scale][1], struct.pack(f"<{t[scale][1][0]}e", *array.array("f", t[scale][2]))]
    d = checkpoint_with_safetensors(w, "int8-scale-f16", safetensors_from(t, meta8))
    load_dir("int8-scale-f16", d, "FORMAT", scale)

    # int8 calibration (issue 15): the keys' values, files that are not sentences, and a bad
    # `_smoothing` tensor, each refused naming the key or tensor.
    sentences = write(w / "data" / "calibration.txt", "a good movie\nthe film was dull\n")
    calibrated = {"model_dir": model, "max_length": 64, "precision": "int8", "calibration_file": str(sentences)}
    load("calibration-ok", calibrated, "OK")
    case("save/calibration-ok", "save", j({"output_dir": str(w / "calibrated"), "precision": "int8",
                                           "calibration_file": str(sentences), "calibration_samples": 1}), "OK")
    for key, value in [("calibration_file", 5), ("calibration_file", ["a"]), ("calibration_file", ""),
                       ("calibration_file", str(sentences) + nul + "x"), ("calibration_samples", 0),
                       ("calibration_samples", 100001), ("calibration_samples", "5"), ("calibration_samples", 1.5),
                       ("smoothquant_alpha", -0.1), ("smoothquant_alpha", 1.5), ("smoothquant_alpha", "0.5")]:
        load(f"calibration-{key}-{json.dumps(value)}", {**calibrated, key: value}, "INVALID_ARGUMENT", key)
        case(f"save/calibration-{key}-{json.dumps(value)}", "save",
             j({"output_dir": str(w / "never-calibrated"), "precision": "int8", "calibration_file": str(sentences),
                key: value}), "INVALID_ARGUMENT", key)
    load("calibration_samples-without-file", {"model_dir": model, "precision": "int8", "calibration_samples": 8},
         "INVALID_ARGUMENT", "calibration_samples")
    load("calibration-at-fp32", {**calibrated, "precision": "fp32"}, "INVALID_ARGUMENT", "calibration_file")
    case("save/calibration-at-fp32", "save", j({"output_dir": str(w / "never-calibrated"),
                                                "calibration_file": str(sentences)}), "INVALID_ARGUMENT", "calibration_file")
    load("calibration-missing-file", {**calibrated, "calibration_file": str(w / "data" / "nope.txt")}, "IO", "nope.txt")
    load("calibration-empty-file", {**calibrated, "calibration_file": str(write(w / "data" / "empty.txt", "\n\n"))},
         "INVALID_ARGUMENT", "calibration_file")
    bad_utf8 = w / "data" / "calibration-latin1.txt"
    bad_utf8.write_bytes(b"caf\xe9 cr\xe8me\n")
    load("calibration-invalid-utf8", {**calibrated, "calibration_file": str(bad_utf8)}, "FORMAT", "calibration-latin1.txt")
    for kind in ("fifo", "socket", "dev-zero", "symlink-loop"):
        path = special_file(w / "data" / f"special-calibration-{kind}.txt", kind)
        load(f"calibration-file-{kind}", {**calibrated, "calibration_file": str(path)}, "IO", "calibration_file",
             timeout=60)
    d = checkpoint_with_safetensors(w, "int8-valid-for-calibration", safetensors_from(q8, meta8))
    load("calibration-of-an-int8-checkpoint", {**calibrated, "model_dir": str(d)}, "INVALID_ARGUMENT", "calibration_file")
    weight = scale[:-len("_scale")]
    cols = q8[weight][1][1]
    for label, values in [("zero", [0.0] * cols), ("negative", [-1.0] * cols), ("inf", [float("inf")] * cols),
                          ("1e-39", [1e-39] * cols), ("wrong-shape", [1.0] * (cols - 1))]:
        t = {**q8, weight + "_smoothing": ["F32", [len(values)], array.array("f", values).tobytes()]}
        d = checkpoint_with_safetensors(w, f"int8-smoothing-{label}", safetensors_from(t, meta8))
        for precision in ("fp32", "int8"):
            load(f"int8-smoothing-{label}-{precision}", {"model_dir": str(d), "max_length": 64, "precision": precision},
                 "FORMAT", weight + "_smoothing")

    # An fp32 outlier split on FFN in (any layer but Q, K and V, which share one input and so
    # need the same columns).
    weight = next(k for k in q8 if k.endswith("intermediate.dense.weight"))
    rows, cols = q8[weight][1]
    good_columns = array.array("i", [1, 5]).tobytes()
    good_weight = array.array("f", [0.5] * (rows * 2)).tobytes()
    for label, extra in [
            ("valid", {"_outlier_columns": ["I32", [2], good_columns], "_outlier_weight": ["F32", [rows, 2], good_weight]}),
            ("decreasing", {"_outlier_columns": ["I32", [2], array.array("i", [5, 1]).tobytes()],
                            "_outlier_weight": ["F32", [rows, 2], good_weight]}),
            ("out-of-range", {"_outlier_columns": ["I32", [2], array.array("i", [1, cols]).tobytes()],
                              "_outlier_weight": ["F32", [rows, 2], good_weight]}),
            ("negative", {"_outlier_columns": ["I32", [2], array.array("i", [-1, 5]).tobytes()],
                          "_outlier_weight": ["F32", [rows, 2], good_weight]}),
            ("columns-f32", {"_outlier_columns": ["F32", [2], array.array("f", [1, 5]).tobytes()],
                             "_outlier_weight": ["F32", [rows, 2], good_weight]}),
            ("columns-empty", {"_outlier_columns": ["I32", [0], b""], "_outlier_weight": ["F32", [rows, 0], b""]}),
            ("weight-missing", {"_outlier_columns": ["I32", [2], good_columns]}),
            ("columns-missing", {"_outlier_weight": ["F32", [rows, 2], good_weight]}),
            ("weight-wrong-shape", {"_outlier_columns": ["I32", [2], good_columns],
                                    "_outlier_weight": ["F32", [rows, 1], good_weight[:rows * 4]]}),
            ("weight-nan", {"_outlier_columns": ["I32", [2], good_columns],
                            "_outlier_weight": ["F32", [rows, 2], array.array("f", [float("nan")] * (rows * 2)).tobytes()]})]:
        t = {**q8, **{weight + suffix: v for suffix, v in extra.items()}}
        d = checkpoint_with_safetensors(w, f"int8-outliers-{label}", safetensors_from(t, meta8))
        for precision in ("fp32", "int8"):
            load(f"int8-outliers-{label}-{precision}", {"model_dir": str(d), "max_length": 64, "precision": precision},
                 "OK" if label == "valid" else "FORMAT", None if label == "valid" else weight)
    query = scale[:-len("_scale")]
    t = {**q8, query + "_smoothing": ["F32", [q8[query][1][1]], array.array("f", [2.0] * q8[query][1][1]).tobytes()]}
    d = checkpoint_with_safetensors(w, "int8-query-smoothed-alone", safetensors_from(t, meta8))
    load("int8-query-smoothed-alone-fp32", {"model_dir": str(d), "max_length": 64, "precision": "fp32"}, "OK")
    load("int8-query-smoothed-alone-int8", {"model_dir": str(d), "max_length": 64, "precision": "int8"}, "FORMAT",
         "query")
    for value in (-1, 65, "16"):
        load(f"calibration-outlier_channels-{json.dumps(value)}", {**calibrated, "outlier_channels": value},
             "INVALID_ARGUMENT", "outlier_channels")

    # threads 1024 runs on at most the CPUs the process may use (libgomp exits when it cannot
    # create a thread).
    load("threads-1024-clamped", {"model_dir": model, "max_length": 64, "threads": 1024}, "OK", timeout=60)
    train("threads-1024-clamped", "OK", extra={"timeout": 60}, threads=1024)

    # --- Output: a folder that cannot be written --------------------------------------------------
    blocker = write(w / "a-regular-file", "not a folder")
    case("save/output_dir-under-a-file", "save", j({"output_dir": str(blocker / "out")}), "IO", "a-regular-file")
    case("save/output_dir-in-proc", "save", j({"output_dir": "/proc/sentiment-out"}), "IO", "/proc/sentiment-out")
    case("save/output_dir-is-a-file", "save", j({"output_dir": str(blocker)}), "IO", "a-regular-file")
    train("output_dir-under-a-file", "IO", "a-regular-file", output_dir=str(blocker / "out"), save_strategy="last")
    train("output_dir-in-proc", "IO", "/proc", output_dir="/proc/sentiment-out", save_strategy="last")
    return {"model_dir": model, "cases": cases}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: catalogue.py WORKDIR   (writes WORKDIR/cases.json and the files it names)")
    table = build(sys.argv[1])
    Path(sys.argv[1], "cases.json").write_text(json.dumps(table, indent=1) + "\n")
    print(f"{len(table['cases'])} cases -> {Path(sys.argv[1], 'cases.json')}")


if __name__ == "__main__":
    main()
