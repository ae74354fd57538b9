"""Every matrix-instruction path this CPU can run, each in its own process (SENTIMENT_ISA is
read once per process): what "isa" reports, fp32 against the uncapped run, int8 against the
VNNI kernel bit for bit, bf16 where the level has it and a clear error where it does not.
Levels the CPU lacks (AMX on a Zen 4, say) are skipped, and pytest reports them as skipped.
"""

import json
import os
import subprocess
import sys

import pytest

LEVELS = ["avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx"]

# Runs in a child: loads the model at each precision, prints what it saw as JSON.
CHILD = r"""
import json, os, sys
import sentiment
model, texts = sys.argv[1], json.loads(sys.argv[2])
out = {}
for precision in ("fp32", "int8", "bf16"):
    try:
        with sentiment.Model(model, precision=precision) as m:
            batched = [r["logits"] for r in m.classify(texts, batch_size=32)]
            single = [m.classify([t])[0]["logits"] for t in texts[:4]]
            out[precision] = {"isa": m.info["isa"], "logits": batched, "single": single}
    except sentiment.SentimentError as e:
        out[precision] = {"error": str(e), "code": e.code, "field": e.field}
print(json.dumps(out))
"""


def run_child(model_dir, texts, **env):
    child_env = dict(os.environ)
    for key in ("SENTIMENT_ISA", "SENTIMENT_INT8_GEMM"):
        child_env.pop(key, None)
    child_env.update(env)
    r = subprocess.run([sys.executable, "-c", CHILD, str(model_dir), json.dumps(texts)],
                       env=child_env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def texts(dev_tsv):
    with open(dev_tsv, encoding="utf-8") as f:
        rows = f.read().splitlines()[1:41]
    return [r.split("\t")[0] for r in rows]


@pytest.fixture(scope="module")
def uncapped(model_dir, texts):
    return run_child(model_dir, texts)


def max_diff(a, b):
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


@pytest.mark.parametrize("level", LEVELS)
def test_level(level, model_dir, texts, uncapped):
    best = uncapped["fp32"]["isa"]
    if LEVELS.index(level) > LEVELS.index(best):
        pytest.skip(f"this CPU runs {best}: the {level} path cannot run here")
    got = run_child(model_dir, texts, SENTIMENT_ISA=level)
    assert got["fp32"]["isa"] == level
    # fp32: other kernels, other rounding.
    assert max_diff(got["fp32"]["logits"], uncapped["fp32"]["logits"]) < 1e-4
    # int8: from VNNI up the products are exact, so the logits equal the uncapped run's (the
    # VNNI kernel, or oneDNN on AMX). Below VNNI, oneDNN saturates pairs of products to 16 bits.
    if LEVELS.index(level) >= LEVELS.index("avx512_vnni"):
        assert got["int8"]["logits"] == uncapped["int8"]["logits"]
    else:
        assert max_diff(got["int8"]["logits"], uncapped["fp32"]["logits"]) < 0.1
    assert got["int8"]["single"] == got["int8"]["logits"][:4]
    if LEVELS.index(level) >= LEVELS.index("avx512_bf16"):
        assert got["bf16"]["isa"] == level
        assert max_diff(got["bf16"]["logits"], uncapped["fp32"]["logits"]) < 2e-2
        assert got["bf16"]["single"] == got["bf16"]["logits"][:4]
    else:
        assert got["bf16"]["code"] == "invalid_argument" and got["bf16"]["field"] == "precision"
        assert level in got["bf16"]["error"]


def test_int8_onednn_equals_vnni_kernel(model_dir, texts, uncapped):
    """The oneDNN int8 primitive (what AMX runs) gives the VNNI kernel's logits exactly."""
    if LEVELS.index(uncapped["fp32"]["isa"]) < LEVELS.index("avx512_vnni"):
        pytest.skip("no AVX-512 VNNI on this CPU: no VNNI kernel to compare with")
    got = run_child(model_dir, texts, SENTIMENT_INT8_GEMM="onednn")
    assert got["int8"]["logits"] == uncapped["int8"]["logits"]


def test_bad_isa_names_the_variable(model_dir, texts):
    got = run_child(model_dir, texts, SENTIMENT_ISA="sse2")
    assert got["fp32"]["code"] == "invalid_argument"
    assert got["fp32"]["field"] == "SENTIMENT_ISA"
    assert "avx512_bf16" in got["fp32"]["error"]
