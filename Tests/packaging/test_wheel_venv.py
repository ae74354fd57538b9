"""scripts/build_wheel.sh's wheel in a fresh venv: classify and a 3-step train from a folder
outside the repository, with no SENTIMENT_LIBRARY, no PYTHONPATH and no build tree to fall back
on; the library and oneDNN must come from the wheel. Needs SENTIMENT_MODEL_DIR and
SENTIMENT_DATA_DIR.
"""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = os.environ["SENTIMENT_MODEL_DIR"]
DATA = Path(os.environ["SENTIMENT_DATA_DIR"])

CHECK = r'''
import json, sys, sentiment
model, train = sys.argv[1], sys.argv[2]
with sentiment.Model(model, threads=1) as m:
    results = m.classify(["a charming journey", "a tedious mess"])
r = sentiment.train({"model_dir": model, "train_file": train, "max_steps": 3, "train_batch_size": 8,
                     "threads": 1, "save_strategy": "no"})
maps = open("/proc/self/maps").read()
print(json.dumps({"package": sentiment.__file__, "library": sentiment.library_path(),
                  "labels": [x["label"] for x in results], "steps": r["steps"],
                  "dnnl": sorted({l.split()[-1] for l in maps.splitlines() if "libdnnl" in l})}))
'''


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    wheel = Path(subprocess.run([str(ROOT / "scripts/build_wheel.sh"), str(tmp_path / "dist")], check=True,
                                capture_output=True, text=True, timeout=900).stdout.splitlines()[-1])
    print(f"wheel: {wheel.name}, {wheel.stat().st_size / 1e6:.1f} MB")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sentiment/lib/libsentiment.so" in names
    assert any(n.startswith("sentiment.libs/libdnnl") for n in names)
    assert "-py3-none-manylinux_" in wheel.name

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin/python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                    str(wheel)], check=True, timeout=300)

    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "train.tsv").write_text("\n".join((DATA / "train.tsv").read_text().splitlines()[:33]) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SENTIMENT_LIBRARY", "PYTHONPATH", "LD_LIBRARY_PATH")}
    r = subprocess.run([str(python), "-c", CHECK, MODEL, "train.tsv"], cwd=work, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    site = str(venv / "lib")
    assert got["package"].startswith(site) and got["library"].startswith(site)
    assert got["library"].endswith("sentiment/lib/libsentiment.so")
    assert got["dnnl"] and all(p.startswith(site) and "/sentiment.libs/" in p for p in got["dnnl"])
    assert len(got["labels"]) == 2 and got["steps"] == 3
