"""Lists beyond one request's caps (100,000 texts, 16 MB) go to the library in parts.

The cap is lowered here so the test stays small: the parts must give what one call gives
(fp32 logits may differ in the last bits with batch composition, so they are compared to 1e-5).
"""
import json

import pytest

import sentiment
from sentiment import _lib
from sentiment import model as model_module

TEXTS = ["a good movie", "dull and boring", "it is charming", "not very good", "great fun", "awful", "the film"]
LABELS = [1, 0, 1, 0, 1, 0, 0]


def close(a, b):
    return (a["label"] == b["label"] and len(a["probabilities"]) == len(b["probabilities"])
            and all(abs(x - y) < 1e-5 for x, y in zip(a["probabilities"], b["probabilities"])))


def test_parts_equal_one_call(model, monkeypatch):
    whole = model.classify(TEXTS)
    whole_pairs = model.classify(TEXTS, text_pairs=TEXTS[::-1])
    whole_tokens = model.tokenize(TEXTS)
    whole_eval = model.evaluate(texts=TEXTS, labels=LABELS)
    monkeypatch.setattr(model_module, "_MAX_TEXTS", 3)
    assert model_module._parts(TEXTS, None) == [(0, 3), (3, 6), (6, 7)]
    assert all(close(a, b) for a, b in zip(model.classify(TEXTS), whole)) and len(model.classify(TEXTS)) == 7
    assert all(close(a, b) for a, b in zip(model.classify(TEXTS, text_pairs=TEXTS[::-1]), whole_pairs))
    assert model.tokenize(TEXTS) == whole_tokens
    split_eval = model.evaluate(texts=TEXTS, labels=LABELS)   # through a temporary JSON Lines file
    assert split_eval["examples"] == 7 and split_eval["confusion_matrix"] == whole_eval["confusion_matrix"]
    assert abs(split_eval["loss"] - whole_eval["loss"]) < 1e-5


def test_the_library_refuses_one_request_over_the_cap(model):
    with model._use() as handle:
        with pytest.raises(sentiment.InvalidArgumentError) as e:
            _lib.call(_lib.lib().sentiment_classify, handle, json.dumps({"texts": ["a"] * 100_001}).encode())
    assert e.value.field == "texts" and "100000" in str(e.value)
