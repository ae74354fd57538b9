"""Fine-tunes a model on GLUE SST-2 with sentiment.train.

    python examples/python/finetune.py MODEL_DIR DATA_DIR OUTPUT_DIR [--recipe NAME] [--max-steps N] [...]

Recipes (--recipe; the other options override single keys):
  reference  the published DistilBERT SST-2 recipe, which is also sentiment_train's defaults:
             lr 2e-5, batch 256, 5 epochs, linear decay, no warmup, no weight decay, seed 42.
             The table shows the PyTorch run of the same recipe next to ours.
  small      the recipe for small encoders such as all-MiniLM-L6-v2 (the default here):
             lr 1.5e-4, batch 256, 2 epochs, 10% warmup, R-Drop with alpha 4 (each batch
             twice under two dropout masks: twice the compute per step), and for BERT
             checkpoints the BERT head (the checkpoint's pretrained pooler, tanh, dropout,
             classifier) instead of the DistilBERT head (DistilBERT checkpoints keep theirs).
             On all-MiniLM-L6-v2 it reached 0.898 / 0.899, 0.898 / 0.898 and 0.899 / 0.907
             dev accuracy after epochs 1 / 2 (seeds 42, 44, 46), against 0.896 / 0.897 and
             0.896 / 0.898 at lr 1e-4 and 0.892 / 0.888 and 0.890 / 0.896 at lr 1e-4 without
             R-Drop; the reference recipe's best in 5 epochs was 0.882 and 0.888 (seeds 42,
             44; bench/README.md has the tables).

Mixed precision ("bf16": true: bf16 GEMMs, fp32 master weights and optimizer) is on where the
CPU has AVX512-BF16 or AMX, and the run says which it used; --fp32 turns it off.

DATA_DIR holds train.tsv and dev.tsv. Shows one updating progress line (step/total, loss,
examples/s, ETA), a line per epoch, then the epochs table (next to the PyTorch run when the
recipe is the reference one; otherwise followed by PyTorch's best figures), and writes OUTPUT_DIR/train_result.json and OUTPUT_DIR/curves.svg. The best epoch's model is
saved in OUTPUT_DIR, with its training state. Ctrl-C stops after the current step; what was done
is still shown. --resume continues a stopped or killed run from the last checkpoint in OUTPUT_DIR
(the best epoch so far): with the same arguments the result is the one the uninterrupted run
would have given, bit for bit. --distributed runs it as one rank of a data-parallel run:
`mpirun -n 4 python finetune.py ... --distributed mpi` or `torchrun --nproc-per-node 4 finetune.py
... --distributed torch` (--batch stays the global batch; rank 0 shows and writes everything).
"""

import argparse
import json
import os
import sys

import sentiment
from sentiment.training import format_duration

# GLUE SST-2 dev accuracy per epoch of all-MiniLM-L6-v2 with the DistilBERT head, fine-tuned
# with PyTorch + transformers on the same recipe (batch 256, 5 epochs, linear decay, seed 42,
# max_length 128), by learning rate: the reference table of docs/DATA.md.
REFERENCES = {2e-5: [0.868, 0.876, 0.881, 0.884, 0.883], 1e-4: [0.890, 0.898, 0.894, 0.889, 0.893]}

# Train config keys each recipe sets on top of sentiment_train's defaults (the reference recipe).
RECIPES = {
    "reference": {},
    "small": {"learning_rate": 1.5e-4, "num_train_epochs": 2, "warmup_ratio": 0.1, "head": "bert", "rdrop_alpha": 4.0},
}
DEFAULT_RECIPE = "small"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="Hugging Face checkpoint folder to start from")
    parser.add_argument("data_dir", help="folder with train.tsv and dev.tsv")
    parser.add_argument("output_dir", help="where the best epoch's model, the result and the curves go")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
                        help=f"training recipe (default {DEFAULT_RECIPE}; see the module docstring)")
    parser.add_argument("--max-steps", type=int, help="stop after N optimizer steps (default: all epochs)")
    parser.add_argument("--epochs", type=int, help="num_train_epochs (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="learning_rate (default: the recipe's)")
    parser.add_argument("--batch", type=int, help="train_batch_size (default: the recipe's)")
    parser.add_argument("--threads", type=int, help="compute threads (default: all cores)")
    parser.add_argument("--config", help="a JSON file of further train config keys")
    parser.add_argument("--fp32", action="store_true",
                        help="train in fp32 even where the CPU runs bf16 (default: bf16 where it can)")
    parser.add_argument("--no-reference", action="store_true", help="do not show the reference run")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in OUTPUT_DIR (a fresh run if there is none)")
    parser.add_argument("--distributed", choices=("auto", "mpi", "torch"),
                        help="one rank of a data-parallel run started by mpirun or torchrun (sentiment.distributed); "
                             "--batch stays the global batch; rank 0 shows the progress and writes the outputs")
    args = parser.parse_args()
    comm = sentiment.distributed.communicator(args.distributed)
    main_rank = comm is None or comm.rank == 0

    config = recipe_config(args.recipe, args.model_dir)
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            config.update(json.load(f))
    config.update({
        "model_dir": args.model_dir,
        "train_file": os.path.join(args.data_dir, "train.tsv"),
        "eval_file": os.path.join(args.data_dir, "dev.tsv"),
        "output_dir": args.output_dir,
    })
    for key, value in (("max_steps", args.max_steps), ("num_train_epochs", args.epochs),
                       ("learning_rate", args.lr), ("train_batch_size", args.batch), ("threads", args.threads)):
        if value is not None:
            config[key] = value
    # Every checkpoint holds the training state, so any run can be resumed.
    config.setdefault("save_optimizer_state", True)
    if args.resume:
        config["resume_from_checkpoint"] = True
    isa = cpu_isa(args.model_dir)
    config.setdefault("bf16", not args.fp32 and isa in BF16_ISAS)
    learning_rate = config.get("learning_rate", 2e-5)
    reference = None if args.no_reference or not main_rank else pytorch_reference(config)
    reference_label = f"all-MiniLM-L6-v2, PyTorch, lr {_format_lr(learning_rate)}"

    ranks = f" on {comm.world_size} ranks" if comm is not None and comm.world_size > 1 else ""
    if main_rank:
        print(f"fine-tuning {args.model_dir} on {config['train_file']}{ranks} in "
              + (f"mixed precision bf16 (CPU: {isa})" if config["bf16"] else f"fp32 (CPU: {isa})"), file=sys.stderr)
    progress = sentiment.TrainingProgress(stream=None if main_rank else open(os.devnull, "w"))
    interrupted = False
    try:
        try:
            result = sentiment.train(config, progress=progress, distributed=comm)
        except sentiment.InvalidArgumentError as e:
            if not args.resume or "holds no checkpoint" not in str(e):
                raise
            print(f"--resume: {args.output_dir} holds no checkpoint yet; starting from the beginning", file=sys.stderr)
            del config["resume_from_checkpoint"]
            result = sentiment.train(config, progress=progress, distributed=comm)
    except KeyboardInterrupt as e:
        interrupted = True
        result = getattr(e, "result", None)
    except sentiment.SentimentError as e:
        progress.close()
        where = f" [{e.field}]" if e.field else ""
        rank = f" (rank {comm.rank})" if comm is not None and comm.world_size > 1 else ""
        sys.exit(f"finetune.py{rank}: {e}{where}")
    finally:
        progress.close()
    if result is None:
        sys.exit("finetune.py: interrupted before any result")
    if not main_rank:
        sys.exit(130 if interrupted else 0)
    if interrupted:
        print("interrupted: showing what was done so far", file=sys.stderr)

    print()
    print_table(result, reference, reference_label, partial=interrupted or args.max_steps is not None)
    if reference is None and not args.no_reference:
        print("for comparison, PyTorch on all-MiniLM-L6-v2 with the reference recipe: best dev accuracy "
              + ", ".join(f"{max(r):.3f} at lr {_format_lr(lr)}" for lr, r in REFERENCES.items()))
    os.makedirs(args.output_dir, exist_ok=True)
    result_path = os.path.join(args.output_dir, "train_result.json")
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    svg = sentiment.write_curves_svg(
        result, os.path.join(args.output_dir, "curves.svg"),
        title=f"Fine-tuning {os.path.basename(os.path.normpath(args.model_dir))} on SST-2",
        reference=reference, reference_label=f"reference: {reference_label}")
    print(f"result: {result_path}")
    print(f"curves: {svg}")
    if interrupted:
        sys.exit(130)


def print_table(result, reference, reference_label, partial=False):
    """The epochs table, with the reference accuracy of the same epoch in the last column."""
    header = f"{'epoch':>5} {'step':>6} {'train loss':>10} {'eval loss':>9} {'accuracy':>8} {'macro F1':>8} {'time':>8}"
    if reference:
        header += f"   {'reference':>9}"
    print(header)
    for row in result.get("epochs", []):
        line = (f"{row['epoch']:>5} {row['step']:>6} {_cell(row.get('train_loss'), 10)} "
                f"{_cell(row.get('eval_loss'), 9)} {_cell(row.get('eval_accuracy'), 8)} "
                f"{_cell(row.get('eval_macro_f1'), 8)} {format_duration(row.get('seconds') or 0):>8}")
        if reference:
            epoch = row["epoch"]
            line += f"   {_cell(reference[epoch - 1] if 0 < epoch <= len(reference) else None, 9, '.3f')}"
        print(line)
    if reference:
        note = "; this run was cut short, so its epochs saw fewer examples" if partial else ""
        print(f"(reference: {reference_label}, same recipe{note})")
    best = result.get("best_epoch")
    speed = result.get("train_tokens_per_second")
    if not result.get("epochs"):
        print(f"{'(no epoch finished)':>30}")
    summary = [f"best epoch {best}" if best is not None else "no best epoch",
               f"{result.get('steps', '?')} steps", f"{result.get('train_examples', '?')} train examples"]
    if isinstance(speed, (int, float)):
        summary.append(f"{speed:.0f} tokens/s")
    if "isa" in result:
        summary.append(("bf16" if result.get("bf16") else "fp32") + f" on {result['isa']}")
    print(", ".join(summary))
    if result.get("resumed_from_step") is not None:
        print(f"resumed after step {result['resumed_from_step']}")
    for note in result.get("notes", []):
        print(f"note: {note}")
    saved = result.get("output_dir")
    if saved and os.path.isfile(os.path.join(saved, "model.safetensors")):
        print(f"model: {saved}")


# The instruction levels (sentiment_model_info's "isa") that run bf16 GEMMs natively.
BF16_ISAS = ("avx512_bf16", "amx")


def cpu_isa(model_dir):
    """The matrix instructions the library uses on this machine (SENTIMENT_ISA caps them), or
    None when the model does not load (train then names the problem)."""
    try:
        with sentiment.Model(model_dir) as m:
            return m.info["isa"]
    except sentiment.SentimentError:
        return None


def recipe_config(recipe, model_dir):
    """The train config keys of `recipe` for the checkpoint in model_dir."""
    config = dict(RECIPES[recipe])
    if config.get("head") == "bert" and _model_type(model_dir) != "bert":
        del config["head"]   # a DistilBERT checkpoint has no pooler: its own head
    return config


def pytorch_reference(config):
    """PyTorch's dev accuracy per epoch for config's schedule, or None: the reference ran the
    reference recipe (at two learning rates) and nothing else."""
    same_recipe = all(config.get(k, v) == v for k, v in (
        ("train_batch_size", 256), ("num_train_epochs", 5), ("warmup_ratio", 0.0), ("weight_decay", 0.0)))
    return REFERENCES.get(config.get("learning_rate", 2e-5)) if same_recipe else None


def _model_type(model_dir):
    """config.json's model_type, or None if it cannot be read (the library then names the problem)."""
    try:
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
            return json.load(f).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _format_lr(lr):
    mantissa, exponent = f"{lr:.6e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"   # 2e-5, 1e-4, 1.5e-4


def _cell(value, width, spec=".4f"):
    return f"{value:>{width}{spec}}" if isinstance(value, (int, float)) else f"{'-':>{width}}"


if __name__ == "__main__":
    main()
