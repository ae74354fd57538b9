"""scripts/install.sh into a temporary prefix, then a C program built with pkg-config alone.

The prefix is not one of the loader's folders, so the program is run with LD_LIBRARY_PATH set to
PREFIX/lib, and nothing else: no -rpath, no -L or -I of the build tree. It finds the library by
its soname. Needs .build/release built (scripts/test.sh builds it) and SENTIMENT_MODEL_DIR.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = os.environ["SENTIMENT_MODEL_DIR"]


def dynamic(path):
    return subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    p = tmp_path_factory.mktemp("prefix")
    subprocess.run([ROOT / "scripts/install.sh", "--prefix", p, "--no-build"], check=True, timeout=300)
    return p


def test_layout_soname_and_version(prefix):
    lib = prefix / "lib"
    real = sorted(f.name for f in lib.glob("libsentiment.so.*.*.*"))
    assert len(real) == 1
    assert os.readlink(lib / "libsentiment.so") == "libsentiment.so.1"
    assert os.readlink(lib / "libsentiment.so.1") == real[0]
    d = dynamic(lib / real[0])
    assert "Library soname: [libsentiment.so.1]" in d and "RUNPATH" not in d and "RPATH" not in d
    assert (prefix / "include/sentiment.h").is_file()
    assert os.access(prefix / "bin/sentiment", os.X_OK)
    pc = (lib / "pkgconfig/sentiment.pc").read_text()
    assert f"prefix={prefix}" in pc and "rpath" not in pc


def test_pkg_config_build_runs(prefix, tmp_path):
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib/pkgconfig"))
    env.pop("SENTIMENT_LIBRARY", None)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "sentiment"], env=env, capture_output=True,
                           text=True, check=True).stdout.split()
    assert all(str(ROOT) not in f for f in flags)
    app = tmp_path / "app"
    subprocess.run(["cc", str(Path(__file__).with_name("app.c")), *flags, "-o", str(app)], env=env, check=True,
                   cwd=tmp_path)
    d = dynamic(app)
    assert "Shared library: [libsentiment.so.1]" in d and "RPATH" not in d and "RUNPATH" not in d
    run_env = dict(env, LD_LIBRARY_PATH=str(prefix / "lib"))
    r = subprocess.run([str(app), MODEL], env=run_env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["results"][0]["label"] in ("NEGATIVE", "POSITIVE")
    ldd = subprocess.run(["ldd", str(app)], env=run_env, capture_output=True, text=True).stdout
    assert f"{prefix}/lib/libsentiment.so.1" in ldd


def test_installed_command_runs(prefix, tmp_path):
    r = subprocess.run([str(prefix / "bin/sentiment"), "classify", "-m", MODEL, "--threads", "1", "fine"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["text"] == "fine"
    assert "RUNPATH" not in dynamic(prefix / "bin/sentiment")
