#!/usr/bin/env python3
"""Builds two small learnable tasks from GLUE SST-2, in the file shapes users bring:

    python3 tools/data/make_user_tasks.py [--sst2 DIR] [--out DIR] [--train N] [--dev N] [--seed S]

  three_class_{train,dev}.csv   CSV (CRLF, quoted), text and string labels "negative",
                                "positive" (SST-2 sentences) and "not_a_review": sentences of a
                                held-out kind, the docstrings of Python's standard library.
  pairs_{train,dev}.jsonl       JSON Lines sentence pairs {"sentence1", "sentence2", "label"}:
                                an SST-2 review and a span of 3 to 6 words, label "part" when
                                the span is the review's, "other" when it is another review's
                                (balanced). Only the pair tells them apart.

Nothing is copied into the repository: the tests run this script into a temporary folder.
SST-2 is found at --sst2, else $SENTIMENT_DATA_DIR, else ../shared/data/sst2.
"""
import argparse
import csv
import importlib
import inspect
import json
import os
import random
import re

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Standard-library modules whose docstrings make the "not_a_review" class.
MODULES = [
    "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "codecs", "collections", "concurrent.futures",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email", "enum", "fnmatch",
    "fractions", "ftplib", "functools", "glob", "gzip", "hashlib", "heapq", "hmac", "html.parser", "http.client",
    "inspect", "io", "ipaddress", "itertools", "json", "logging", "mmap", "multiprocessing", "os", "pathlib",
    "pickle", "platform", "queue", "random", "re", "sched", "secrets", "selectors", "shutil", "signal", "smtplib",
    "socket", "sqlite3", "ssl", "statistics", "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap",
    "threading", "time", "typing", "unicodedata", "urllib.parse", "uuid", "wave", "xml.etree.ElementTree", "zipfile",
]


def read_sst2(path):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(text, int(label)) for text, label in rows[1:]]


def docstring_sentences():
    seen, out = set(), []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        objects = [module] + [v for k, v in sorted(vars(module).items()) if not k.startswith("_")]
        for obj in objects:
            doc = inspect.getdoc(obj) if callable(obj) or inspect.ismodule(obj) else None
            for sentence in re.split(r"(?<=[.!?])\s+", " ".join((doc or "").split())):
                words = sentence.split()
                if 5 <= len(words) <= 40 and sentence not in seen and not re.search(r"[>{}\[\]=]", sentence):
                    seen.add(sentence)
                    out.append(sentence)
    return sorted(out)


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
        w.writerow(["text", "label"])
        w.writerows(rows)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for a, b, label in rows:
            f.write(json.dumps({"sentence1": a, "sentence2": b, "label": label}, ensure_ascii=False) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_sst2 = os.environ.get("SENTIMENT_DATA_DIR") or os.path.join(REPO, "..", "shared", "data", "sst2")
    p.add_argument("--sst2", default=default_sst2)
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=3000, help="training examples per task")
    p.add_argument("--dev", type=int, default=600, help="evaluation examples per task")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    sst2 = read_sst2(os.path.join(a.sst2, "train.tsv"))
    # SST-2's train file holds phrases; whole sentences (5+ words) are the reviews.
    sst2 = [(t, y) for t, y in sst2 if len(t.split()) >= 5]
    rng.shuffle(sst2)
    names = ["negative", "positive"]

    # Three classes, a third each; train and dev from disjoint sentences.
    other = docstring_sentences()
    rng.shuffle(other)
    per_class = (a.train + a.dev) // 3
    if len(other) < per_class:
        raise SystemExit(f"only {len(other)} docstring sentences; ask for fewer examples")
    by_label = {y: [t for t, label in sst2 if label == y][:per_class] for y in (0, 1)}
    examples = [(t, names[y]) for y in (0, 1) for t in by_label[y]] + [(t, "not_a_review") for t in other[:per_class]]
    rng.shuffle(examples)
    dev = a.dev
    write_csv(os.path.join(a.out, "three_class_dev.csv"), examples[:dev])
    write_csv(os.path.join(a.out, "three_class_train.csv"), examples[dev:])

    # Pairs: a review and a span of 3 to 6 of its words ("part"), or a span of another review
    # ("other"), half each; every review is used once.
    pool = [t.split() for t, _ in sst2[2 * per_class:] if len(t.split()) >= 8]
    if len(pool) < 2 * (a.train + a.dev):
        raise SystemExit(f"only {len(pool)} reviews of 8+ words; ask for fewer examples")
    pairs = []
    for i in range(a.train + a.dev):
        review, other = pool[2 * i], pool[2 * i + 1]
        source = review if i % 2 == 0 else other
        n = rng.randint(3, 6)
        start = rng.randrange(len(source) - n + 1)
        pairs.append((" ".join(review), " ".join(source[start:start + n]), "part" if i % 2 == 0 else "other"))
    rng.shuffle(pairs)
    write_jsonl(os.path.join(a.out, "pairs_dev.jsonl"), pairs[:dev])
    write_jsonl(os.path.join(a.out, "pairs_train.jsonl"), pairs[dev:])
    print(f"wrote {a.out}: three_class {len(examples) - dev}/{dev}, pairs {len(pairs) - dev}/{dev}")


if __name__ == "__main__":
    main()
