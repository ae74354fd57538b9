"""One rank of the data-parallel tests (test_distributed.py), started by mpirun or torchrun.

    python distributed_rank.py BACKEND CONFIG_JSON OUT_DIR [--die-at-step N --die-rank R]

Writes OUT_DIR/rank<R>.json: {"result": ...} or {"error": {"type", "message", "field", "cause"}}.
With --die-at-step, rank R kills itself (SIGKILL) at that step's event, as a crashed node would.
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import sentiment


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("backend")
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--die-at-step", type=int)
    parser.add_argument("--die-rank", type=int, default=1)
    args = parser.parse_args()
    comm = sentiment.distributed.communicator(args.backend)
    config = json.loads(args.config)

    def progress(event):
        if event.get("event") == "step" and event.get("step") == args.die_at_step and comm.rank == args.die_rank:
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        report = {"result": sentiment.train(config, progress=progress, distributed=comm)}
    except sentiment.SentimentError as e:
        cause = e.__cause__
        report = {"error": {"type": type(e).__name__, "message": e.message, "field": e.field,
                            "cause": None if cause is None else f"{type(cause).__name__}: {cause}"}}
    Path(args.out, f"rank{comm.rank}.json").write_text(json.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
