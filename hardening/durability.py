#!/usr/bin/env python3
"""Durability: SIGKILL a training process at random moments and check its checkpoint still loads.

    python3 hardening/durability.py [--kills 24] [--seed 1]

Each round starts a training run (a tiny test model, 8 rows in batches of 4, so 2 steps per
epoch, saving output_dir after every epoch: the process spends most of its time saving) and
kills it with SIGKILL after a random delay, up to twice the time a first run took to its first
save (measured at the start, so that kills land around and after the first saves on a busy
machine too). Odd rounds train the tiny BERT (3 labels) into a new folder (the first save
creates it); even rounds train the tiny DistilBERT (2 labels) into the folder of the round
before, so their first save replaces another architecture's checkpoint (other tensor names and
shapes, one more file) and later saves their own. After each kill the folder, unless empty or
missing, must load and classify with the library: the old checkpoint or the new one, never a
torn one. A new staging folder beside it shows that the kill landed in the middle of a save; at
the end one more save into each folder must remove them all. Exits 1 on any failure, and when
no kill left a checkpoint to load (nothing was tested).

Round pairs cycle through output_dir layouts: a plain folder; a folder with subfolders (as
save_strategy "epoch" and "steps" leave), each of which must after every kill be in the folder
or in a staging folder that the next save moves back, and at the end in the folder; a symlink to
the folder, which must stay a link; and, as root, a folder owned by nobody, which must keep its
owner (without root the save cannot keep another user's ownership, so that layout is skipped).

Then `--resumes` rounds (default 6) kill a run that saves its training state after every step
(R-Drop, EMA and dropout on) at a random moment, resume it with resume_from_checkpoint true, and
require the uninterrupted run's step losses and final weights, bit for bit.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "hardening" / "catalogue"))
sys.path.insert(0, str(REPO / "bindings" / "python" / "src"))
import catalogue  # noqa: E402
import sentiment  # noqa: E402

CHILD = """
import json, sys
sys.path.insert(0, {src!r})
import sentiment
print("started", flush=True)
def report(event):
    if event["event"] == "saved":
        print("saved", flush=True)
sentiment.train(json.loads(sys.argv[1]), progress=report)
"""


LAYOUTS = ["plain", "subfolders", "symlink"] + (["foreign"] if os.geteuid() == 0 else [])
KEPT = ["epoch-1", "checkpoint-7"]                  # subfolders an earlier run left
NOBODY = 65534


def prepare(work, round, layout):
    """A new output_dir in `layout`. Returns (the path to train into, the folder it names)."""
    real = work / f"out-{round}"
    if layout == "symlink":
        real = work / "real" / f"out-{round}"
        real.mkdir(parents=True)
        link = work / f"link-{round}"
        link.symlink_to(real)
        return link, real
    real.mkdir()
    if layout == "subfolders":
        for sub in KEPT:
            (real / sub).mkdir()
            (real / sub / "marker").write_text(sub)
    if layout == "foreign":
        os.chown(real, NOBODY, NOBODY)
    return real, real


def layout_problems(real, layout, final):
    """What the kill (or, when final, the last save) broke in `layout`: lost subfolders, a lost owner or link."""
    problems = []
    if layout == "subfolders":
        for sub in KEPT:
            here = (real / sub / "marker").is_file()
            staged = any((p / sub / "marker").is_file() for p in real.parent.glob(f".{real.name}.saving-*"))
            if not here and (final or not staged):
                problems.append(f"{sub} LOST")
    if layout == "foreign" and real.stat().st_uid != NOBODY:
        problems.append(f"owner changed to uid {real.stat().st_uid}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resumes", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="sentiment-durability-"))
    bert = catalogue.copy_fixture(work, "base")
    distilbert = catalogue.copy_fixture(work, "distilbert", source=catalogue.FIXTURE.parent / "distilbert_f32")
    train3 = work / "train3.tsv"
    train3.write_text("sentence\tlabel\n" + "a good movie\t2\nawful\t0\nthe film\t1\ngreat fun\t2\n" * 2)
    train2 = work / "train2.tsv"
    train2.write_text("sentence\tlabel\n" + "a good movie\t1\nawful\t0\nthe film\t0\ngreat fun\t1\n" * 2)
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def config(model, train, output):
        return {"model_dir": str(model), "train_file": str(train), "output_dir": str(output),
                "num_train_epochs": 10000, "train_batch_size": 4, "max_length": 64, "threads": 1,
                "save_strategy": "best", "logging_steps": 1000}

    def start(config):
        child = subprocess.Popen([sys.executable, "-c", CHILD.format(src=str(REPO / "bindings/python/src")),
                                  json.dumps(config)], stdout=subprocess.PIPE, env=env)
        child.stdout.readline()                     # the library is loaded; training starts now
        return child

    # Kill delays span twice the time to the first save on this machine now (at least 0.4 s),
    # so that on a busy machine the kills still land around and after the first saves.
    child = start(config(bert, train3, work / "calibration"))
    began = time.monotonic()
    child.stdout.readline()                         # "saved"
    first_save = time.monotonic() - began
    child.kill()
    child.wait()
    max_delay = max(0.4, 2 * first_save)
    print(f"first save after {first_save:.2f} s; kills at 0-{max_delay:.2f} s")
    failures = 0
    ended_early = 0
    mid_save = 0
    loaded = 0
    output = None
    outputs = []
    seen_staging = set()
    for round in range(1, args.kills + 1):
        if round % 2 == 1:
            layout = LAYOUTS[(round // 2) % len(LAYOUTS)]
            output, real = prepare(work, round, layout)
            outputs.append((output, real, layout))
        model, train = (bert, train3) if round % 2 == 1 else (distilbert, train2)
        child = start(config(model, train, output))
        time.sleep(rng.uniform(0.0, max_delay))
        child.send_signal(signal.SIGKILL)
        if child.wait() != -signal.SIGKILL:
            print(f"round {round:2d}: the run ended before the kill (exit status {child.returncode})")
            ended_early += 1
        # What a killed save leaves behind (a later save into the folder removes it).
        staging = {p.name for p in real.parent.glob(f".{real.name}.saving-*")} - seen_staging
        seen_staging |= staging
        mid_save += bool(staging)
        state = "no checkpoint yet"
        if any(p.is_file() for p in real.iterdir()):  # the trainer creates it empty at start
            try:
                with sentiment.Model(output, max_length=64, threads=1) as m:
                    result = m.classify(["a good movie"])
                assert len(result) == 1
                state = "loads: " + ", ".join(sorted(p.name for p in real.iterdir()))
                loaded += 1
            except Exception as e:                  # noqa: BLE001 - any failure to load is the bug
                state = f"FAILS TO LOAD: {e}"
                failures += 1
        problems = layout_problems(real, layout, final=False)
        if output.is_symlink() != (layout == "symlink"):
            problems.append("the link was replaced")
        failures += len(problems)
        print(f"round {round:2d} ({layout}): killed{' mid-save' if staging else ''}; {output.name}: {state}"
              + "".join(f"; {p}" for p in problems))
    left = 0
    for output, real, layout in outputs:            # the next save clears what killed saves left
        if any(p.is_file() for p in real.iterdir()):
            with sentiment.Model(output, max_length=64, threads=1) as m:
                m.save(str(output))
            remaining = sorted(p.name for p in real.parent.glob(f".{real.name}.saving-*"))
            if remaining:
                print(f"{output.name}: staging folders left after a new save: {remaining}")
                left += len(remaining)
            problems = layout_problems(real, layout, final=True)
            if problems:
                print(f"{output.name} ({layout}) after a new save: {'; '.join(problems)}")
                failures += len(problems)
    resume_failures, resumed = resume_rounds(work, bert, train3, start, rng, args.resumes)
    shutil.rmtree(work)
    print(f"durability: {args.resumes} killed runs resumed, {resumed} from a checkpoint, {resume_failures} differed "
          "from the uninterrupted run")
    failures += resume_failures
    print(f"durability: layouts {', '.join(LAYOUTS)}")
    print(f"durability: {args.kills} kills, {mid_save} in the middle of a save, {loaded} checkpoints loaded, "
          f"{failures} failed to load, {ended_early} ended before their kill, {len(seen_staging)} staging "
          f"folders left by kills, {left} of them still there after a new save")
    if loaded == 0:
        print("durability: no kill left a checkpoint to load, so nothing was tested")
    sys.exit(1 if failures or ended_early or left or loaded == 0 else 0)


def resume_rounds(work, model, train, start, rng, rounds):
    """Kill, resume, compare with the uninterrupted run. Returns (failures, rounds resumed from a checkpoint)."""
    def config(output):
        return {"model_dir": str(model), "train_file": str(train), "output_dir": str(output), "num_train_epochs": 6,
                "train_batch_size": 4, "max_length": 64, "threads": 1, "save_strategy": "steps", "save_steps": 1,
                "save_total_limit": 2, "rdrop_alpha": 1.0, "ema_decay": 0.9, "logging_steps": 1000}

    began = time.monotonic()
    full = sentiment.train(config(work / "resume-full"))
    duration = time.monotonic() - began
    weights = (work / "resume-full" / "model.safetensors").read_bytes()
    failures = resumed = 0
    for round in range(1, rounds + 1):
        output = work / f"resume-{round}"
        child = start(config(output))
        time.sleep(rng.uniform(0.1 * duration, duration))
        child.send_signal(signal.SIGKILL)
        child.wait()
        try:
            result = sentiment.train(dict(config(output), resume_from_checkpoint=True))
        except sentiment.InvalidArgumentError as e:
            if "holds no checkpoint" not in str(e):
                raise
            print(f"resume {round}: killed before the first checkpoint")
            continue
        resumed += 1
        same = (result["curve"]["loss"] == full["curve"]["loss"]
                and (output / "model.safetensors").read_bytes() == weights)
        failures += not same
        print(f"resume {round}: killed, resumed after step {result['resumed_from_step']} of {result['steps']}: "
              + ("identical to the uninterrupted run" if same else "DIFFERS from the uninterrupted run"))
    return failures, resumed


if __name__ == "__main__":
    main()
